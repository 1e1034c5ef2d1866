"""Learning status: what the learner knows for an account (models, exploration, arms, outcomes, next
training) and its growth model (``GET /api/learning/status``; the demo summary shows the growth model)."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Callable, Iterable

from pydantic import BaseModel, Field

from xbotlib.config import Settings
from xbotlib.core import growth_model as growth_models
from xbotlib.core import vocab
from xbotlib.core.bandit import ArmStats, explore_rate, posterior
from xbotlib.core.growth_model import Effect
from xbotlib.core.policies import XbotPolicy
from xbotlib.core.predictors import WEEKLY, LastVersion, should_train
from xbotlib.store import accounts
from xbotlib.store import arms as arm_store
from xbotlib.store import outcomes, read_models, worlds
from xbotlib.views.accounts import now_of

OUTCOMES_WINDOW_DAYS = 90
REJECTED_SHOWN = 10
POSTERIOR_METHOD = ("xbotlib.core.bandit.posterior: Normal-Inverse-Gamma posterior of each arm's mean reward from "
                    "the exposure-weighted sums in bandit_arms, prior pooled over the arms of the same scope; "
                    "95% interval of the Student-t")


class ModelVersion(BaseModel):
    kind: str = Field(description="content or timing")
    version: str = Field(description="v{N}", examples=["v3"])
    predictor_key: str
    algorithm: str
    world: str = Field(description="the world the model was trained on (live or sandbox)")
    cv_score: float | None
    baseline_score: float | None
    trained_at: datetime
    n_samples: int
    trained_through: int | None = Field(description="last outcome_id in the training data")
    status: str = Field("active", description="active (served), retired (replaced) or rejected (never served: it "
                                              "did not beat the predict-the-mean baseline or the active version)")
    rejected_reason: str | None = Field(None, description="why a rejected version is not served, with the scores")


class ArmSummary(BaseModel):
    scope: str = Field(description="content (hook pattern) or timing (posting hour)")
    arm: str
    samples: int = Field(description="pass-2 rewards folded into this arm (bandit_arms.pulls)")
    weight_sum: float
    posterior_mean: float
    posterior_sd: float
    ci95_low: float
    ci95_high: float


class OutcomesByWorld(BaseModel):
    world: str = Field(description="world of the post (posted_decisions.world); 'unknown' if not recorded")
    outcomes: int
    real: int = Field(description="outcomes from the real X (simulated=false)")
    simulated: int


class NextTraining(BaseModel):
    world: str
    fresh_outcomes: int = Field(description="pass-2 outcomes of this world not yet in the active model")
    min_new_samples: int
    retrain_samples: int
    last_trained_at: datetime | None
    weekly_due_at: datetime | None
    due_now: bool = Field(description="the next learn run will train")
    reason: str = Field(description="the learn job's reason: first_version, new_samples, weekly, "
                                    "insufficient_new_samples or waiting_for_retrain")
    outcomes_needed: int = Field(description="more fresh outcomes before the count rule alone triggers training")
    next_learn_run_at: datetime | None = Field(description="next scheduled learn job (schedules/), if known")
    summary: str


class ModelEffect(BaseModel):
    arm: str = Field(description="hook pattern, or local posting hour")
    relative_follows: float = Field(description="expected follows per post against the average arm (1.0 = average)")
    low: float = Field(description="95% interval, lower end")
    high: float = Field(description="95% interval, upper end")


# What the learner believes about hooks and hours (``xbotlib.core.growth_model``). A comment, not a
# docstring: a docstring would become the description of this schema in the API's OpenAPI document.
class GrowthModelView(BaseModel):
    posts: int = Field(description="final post outcomes of the last window_days the model learnt from")
    window_days: int
    deciding: bool = Field(description="true once the learner chooses from this model (enough outcomes)")
    signal: str | None = Field(description="profile_visits (the funnel) or follows (when X reports no visits)")
    hooks: list[ModelEffect]
    hours: list[ModelEffect] = Field(description="the configured posting hours")


class LearningStatus(BaseModel):
    account_id: str
    world: str
    now: datetime
    account_age_days: float
    explore_rate: float
    active_models: list[ModelVersion]
    rejected_models: list[ModelVersion] = Field(description="versions trained since the active one of their kind "
                                                            "(or since the start, when none is served) and not "
                                                            f"served, newest first, at most {REJECTED_SHOWN}")
    arms: list[ArmSummary]
    posterior_method: str
    outcomes_window_days: int
    outcomes_by_world: list[OutcomesByWorld] = Field(description="outcomes collected in the last "
                                                                 "outcomes_window_days days, by the post's world")
    next_training: NextTraining
    growth_model: GrowthModelView = Field(description="what the learner believes about hooks and hours "
                                                      "(xbotlib.core.growth_model)")


def arm_summaries(arms: dict[str, dict[str, ArmStats]]) -> list[ArmSummary]:
    """Posterior of each arm from its stats (``{scope: {arm_id: ArmStats}}``), arms of a scope compared
    with each other."""
    out = []
    for scope in sorted(arms):
        stats = arms[scope]
        for arm, post in posterior(stats).items():
            s = stats[arm]
            out.append(ArmSummary(scope=scope, arm=arm, samples=s.pulls, weight_sum=s.weight_sum,
                                  posterior_mean=post.mean, posterior_sd=post.sd, ci95_low=post.ci_low,
                                  ci95_high=post.ci_high))
    return out


def next_training(*, world: str, fresh: int, last: LastVersion | None, min_new: int, retrain_at: int,
                  now: datetime, next_learn_run_at: datetime | None = None) -> NextTraining:
    """When the learn job will next train, by its own rule (``xbotlib.core.predictors.should_train``).

    ``fresh`` counts pass-2 outcomes after ``last`` (the newest content model of ``world``, or None).
    """
    last_trained_at = last.trained_at if last else None
    decision = should_train(fresh, last, now, min_new=min_new, retrain_at=retrain_at)
    weekly_due_at = last_trained_at + WEEKLY if last_trained_at else None
    needed = 0 if decision.train else max(0, decision.need - fresh)
    run = f" at the next learn run ({next_learn_run_at.isoformat()})" if next_learn_run_at else " at the next learn run"
    if decision.train:
        summary = f"due{run}: {decision.reason}, {fresh} fresh outcomes"
    elif decision.reason == "waiting_for_retrain":
        summary = (f"after {needed} more outcomes ({fresh}/{retrain_at} fresh), or weekly from "
                   f"{weekly_due_at.isoformat()} with >= {min_new} fresh")
    else:
        summary = f"after {needed} more outcomes ({fresh}/{min_new} fresh needed to train)"
    return NextTraining(world=world, fresh_outcomes=fresh, min_new_samples=min_new, retrain_samples=retrain_at,
                        last_trained_at=last_trained_at, weekly_due_at=weekly_due_at, due_now=decision.train,
                        reason=decision.reason, outcomes_needed=needed, next_learn_run_at=next_learn_run_at,
                        summary=summary)


def model_effects(effects: Iterable[Effect]) -> list[ModelEffect]:
    """The core's effects (``xbotlib.core.growth_model.Effect``) as the read model shows them."""
    return [ModelEffect(arm=e.arm, relative_follows=e.relative_follows, low=e.low, high=e.high) for e in effects]


class GrowthModelCache:
    """Fitted growth-model views by account, world and posting hours, each with the fingerprint of the data it
    was fitted from (``read_models.growth_model_fingerprint``). A request whose data is unchanged gets the
    stored view, the very object a refit would equal; any write of the account's outcomes, posts or follower
    snapshots, a post leaving the window, or a new profile for the account, changes the fingerprint and the
    view is fitted again. Memory: one view per (account, world, hours), at most ``max_entries`` (the oldest
    is dropped first)."""

    def __init__(self, max_entries: int = 1024):
        self.max_entries = max_entries
        self._views: dict[tuple, tuple[tuple, GrowthModelView]] = {}
        self.fits = 0  # how many times a view was fitted (tests read it)

    def get(self, conn, settings: Settings, account_id: str, world: str, now: datetime,
            fingerprints: dict | None = None) -> GrowthModelView:
        """The view for these arguments; ``fingerprints``: ``read_models.learning_fingerprints`` when the caller
        has read them already (else they are read here)."""
        if fingerprints is None:
            niche = account_niche(conn, settings, account_id)
            data = read_models.growth_model_fingerprint(conn, account_id, world, now)
        else:
            niche = account_niche(conn, settings, account_id, fingerprints["profile"])
            data = fingerprints["growth_model"]
        key = (account_id, world, tuple(settings.posting_hours))
        # a new profile (hooks, topics, hours) changes the view as new data does
        fingerprint = (niche[2], data)
        if self.holds(account_id, world, settings, fingerprint):
            return self._views[key][1]
        view = fit_growth_model_view(conn, settings, account_id, world, now, niche)
        self.fits += 1
        self._views.pop(key, None)
        while len(self._views) >= self.max_entries:
            self._views.pop(next(iter(self._views)))
        self._views[key] = (fingerprint, view)
        return view

    def holds(self, account_id: str, world: str, settings: Settings, fingerprint: tuple) -> bool:
        """Whether the view for these arguments is held for ``fingerprint`` (the profile's sha256, the data's)."""
        hit = self._views.get((account_id, world, tuple(settings.posting_hours)))
        return hit is not None and hit[0] == fingerprint


# the process's cache: the admin API serves every account's learning status from it
GROWTH_MODELS = GrowthModelCache()


def growth_model_view(conn, settings: Settings, account_id: str, world: str, now: datetime,
                      fingerprints: dict | None = None) -> GrowthModelView:
    """The learner's current growth model for the account: hook and hour effects with 95% intervals
    (fitted once per change of its data or its profile: ``GROWTH_MODELS``)."""
    return GROWTH_MODELS.get(conn, settings, account_id, world, now, fingerprints)


_UNREAD = object()  # account_niche: the caller did not read the profile's version


def account_niche(conn, settings: Settings, account_id: str,
                  version: tuple | None | object = _UNREAD) -> tuple[vocab.Vocabulary, list[int], str | None]:
    """The account's niche as the plan job sees it: its stored profile's vocabulary and posting hours (the
    built-in niche and ``settings`` when it has none), with the profile's sha256 (None without one).

    The stored profile is read and parsed once per version of the account's row (``PROFILES``): a request
    reads only the row's version (``read_models.profile_version``, or ``version`` when the caller read it),
    not the profile."""
    if version is _UNREAD:
        version = read_models.profile_version(conn, account_id)
    key = (account_id, version)
    niche = PROFILES.get(key, _MISSING) if version is not None else None
    if niche is _MISSING:
        profile = accounts.load_profile(conn, account_id)
        niche = None if profile is None else (profile.vocabulary(), list(profile.posting_hours), profile.sha256)
        if len(PROFILES) >= PROFILES_KEPT:
            PROFILES.pop(next(iter(PROFILES)))  # the oldest entry: an account that changed or is not asked about
        PROFILES[key] = niche
    if niche is None:
        return vocab.DEFAULT, list(settings.posting_hours), None
    vocabulary, hours, sha256 = niche
    return vocabulary, list(hours or settings.posting_hours), sha256


# each account's niche from its stored profile (vocabulary, the profile's posting hours, sha256; None without a
# profile) by (account, row version): a changed row has a new key, so a stale niche is never served
PROFILES: dict[tuple, tuple | None] = {}
PROFILES_KEPT = 1024
_MISSING = object()


def fit_growth_model_view(conn, settings: Settings, account_id: str, world: str, now: datetime,
                          niche: tuple[vocab.Vocabulary, list[int], str | None] | None = None) -> GrowthModelView:
    """``growth_model_view`` fitted from the data now, without the cache, read in the account's niche
    (``account_niche``): its topics, allowed hooks and posting hours."""
    vocabulary, hours, _ = niche or account_niche(conn, settings, account_id)
    posts = outcomes.post_outcomes(conn, account_id, world, now, vocabulary=vocabulary)
    view = dict(posts=len(posts), window_days=outcomes.MODEL_WINDOW_DAYS,
                deciding=len(posts) >= XbotPolicy.MODEL_MIN_POSTS)
    if not posts:
        return GrowthModelView(**view, signal=None, hooks=[], hours=[])
    # aged as the learner ages it (growth_model.age_weights), so the page shows the model the plan uses; a cached
    # view keeps its fit time's ages until the data changes (hours of a 14-day half-life: < 1% in any weight)
    model = growth_models.fit(posts, vocabulary, now=now)
    return GrowthModelView(**view, signal=model.signal,
                           hooks=model_effects(growth_models.hook_summary(model, vocabulary.hooks)),
                           hours=model_effects(growth_models.hour_summary(model, hours)))


def outcomes_by_world(conn, account_id: str, since: datetime, until: datetime,
                      fingerprint: tuple | None = None) -> list[dict]:
    """``worlds.outcomes_by_world``, counted once per change of its data (``OUTCOMES_BY_WORLD``, keyed by
    ``read_models.outcomes_window_fingerprint``, or ``fingerprint`` when the caller read it): a 90-day window is
    ~1,500 outcomes, each with a probe of its post's world, and the status page is read far more often than
    outcomes arrive."""
    if fingerprint is None:
        fingerprint = read_models.outcomes_window_fingerprint(conn, account_id, since, until)
    key = (account_id, fingerprint)
    counts = OUTCOMES_BY_WORLD.get(key)
    if counts is None:
        counts = worlds.outcomes_by_world(conn, account_id, since, until)
        if len(OUTCOMES_BY_WORLD) >= OUTCOMES_BY_WORLD_KEPT:
            OUTCOMES_BY_WORLD.pop(next(iter(OUTCOMES_BY_WORLD)))  # the oldest: superseded or not asked about
        OUTCOMES_BY_WORLD[key] = counts
    return counts


# outcomes_by_world's rows by (account, fingerprint); an entry is never stale: changed data has another key
OUTCOMES_BY_WORLD: dict[tuple, list[dict]] = {}
OUTCOMES_BY_WORLD_KEPT = 1024


def learning_status(conn, settings: Settings, account: dict, world: str, now: datetime,
                    next_learn_run_at: datetime | None = None) -> LearningStatus:
    """What the learner knows for ``account`` in ``world``: models, exploration, arms, outcomes, next training."""
    acc = account["account_id"]
    # in one round trip: the versions shown (not every version the account ever trained, ~100 a year, each with
    # its jsonb), the arms, the newest content model and the fresh outcomes the learn job counts after it, and
    # what the caches are keyed on
    reads = read_models.learning_reads(conn, acc, world, now, now - OUTCOMES_WINDOW, REJECTED_SHOWN, arm_store.SCOPES)
    return _status(conn, settings, acc, account["created_at"], world, now, next_learn_run_at, reads)


OUTCOMES_WINDOW = timedelta(days=OUTCOMES_WINDOW_DAYS)
# learning_status_at's answer when ``cached_only`` and a part is not in memory: read again (in one snapshot)
NOT_IN_MEMORY = object()


@dataclass(frozen=True)
class StatusReads:
    """What ``learning_status_at`` reads in its one statement (``read_models.account_learning_row``): the account,
    the world, its "now" and the statement's ``row``. ``key`` holds every value the status is made of, with a
    process's settings and caches, except the next learn run: equal keys, equal statuses (a caller may keep what it
    made of one)."""
    account_id: str
    world: str
    now: datetime
    row: dict

    @property
    def key(self) -> tuple:
        return (self.account_id, self.world, self.now, *self.row.values())

    @property
    def version_key(self) -> tuple | None:  # what learning_version_at gives while nothing changed since
        return version_key(self.account_id, self.world, self.row)


def version_key(account_id: str, world: str, row: dict) -> tuple | None:
    """A key equal for two rows of ``read_models.learning_version`` (or ``account_learning_row``) only when all the
    status reads is, except the next learn run; None when "now" is the wall clock (live, or no event yet)."""
    return None if world == "live" or row["latest"] is None else (
        account_id, world, *(row[k] for k in read_models.LEARNING_VERSION))


def learning_version_at(conn, account_id: str, world: str, wall_now: datetime) -> tuple[datetime, tuple | None] | None:
    """The account's "now" in ``world`` and its ``version_key``: one small statement. None: the account is unknown."""
    row = read_models.learning_version(conn, account_id, world, wall_now)
    return None if row is None else (now_of(world, row["latest"], wall_now), version_key(account_id, world, row))


def learning_reads_at(conn, account_id: str, world: str, wall_now: datetime) -> StatusReads | None:
    """The account ``account_id``, its world's "now" (``accounts.world_now``: ``wall_now`` for the live world, a
    simulated world's latest event) and everything ``learning_status`` reads at that now, in one statement; None
    when the account is not stored."""
    row = read_models.account_learning_row(conn, account_id, world, wall_now, OUTCOMES_WINDOW, REJECTED_SHOWN,
                                           arm_store.SCOPES)
    if row is None:
        return None
    return StatusReads(account_id, world, now_of(world, row["latest"], wall_now), row)


def status_of(conn, settings: Settings, reads: StatusReads, next_learn_run_at: datetime | None = None, *,
              cached_only: bool = False) -> LearningStatus | object:
    """``learning_status`` from ``reads``. The growth model, the outcomes by world and the profile's niche come from
    memory when their fingerprints match, else they are read; with ``cached_only`` they are not read, and
    ``NOT_IN_MEMORY`` is returned instead: the caller reads again inside one snapshot (a transaction), so what is
    read next agrees with the statement."""
    values = read_models.learning_result(reads.row, arm_store.SCOPES)
    if cached_only and not in_memory(settings, reads.account_id, reads.world, values["fingerprints"]):
        return NOT_IN_MEMORY
    return _status(conn, settings, reads.account_id, reads.row["created_at"], reads.world, reads.now,
                   next_learn_run_at, values)


def learning_status_at(conn, settings: Settings, account_id: str, world: str, wall_now: datetime,
                       next_learn_run: Callable[[datetime], datetime | None] = lambda now: None, *,
                       cached_only: bool = False) -> LearningStatus | None | object:
    """``learning_status`` of ``account_id`` at its world's "now", the next learn run from ``next_learn_run(now)``:
    ``learning_reads_at`` (one statement), then ``status_of``; None when the account is not stored."""
    reads = learning_reads_at(conn, account_id, world, wall_now)
    if reads is None:
        return None
    return status_of(conn, settings, reads, next_learn_run(reads.now), cached_only=cached_only)


def in_memory(settings: Settings, account_id: str, world: str, fingerprints: dict) -> bool:
    """Whether ``learning_status`` with these fingerprints (``read_models.learning_fingerprints``) reads nothing more:
    the account's niche (``PROFILES``), its outcomes by world (``OUTCOMES_BY_WORLD``) and its growth model
    (``GROWTH_MODELS``) are all held for them."""
    version = fingerprints["profile"]
    niche = PROFILES.get((account_id, version), _MISSING) if version is not None else None
    if niche is _MISSING:
        return False
    return ((account_id, fingerprints["outcomes"]) in OUTCOMES_BY_WORLD
            and GROWTH_MODELS.holds(account_id, world, settings, (None if niche is None else niche[2],
                                                                 fingerprints["growth_model"])))


def _status(conn, settings: Settings, acc: str, created_at: datetime, world: str, now: datetime,
            next_learn_run_at: datetime | None, reads: dict) -> LearningStatus:
    age = max(0.0, (now - created_at).total_seconds() / 86400)
    active, rejected, arms, last, fresh = (reads[k] for k in ("active", "rejected", "arms", "last", "fresh"))
    fingerprints = reads["fingerprints"]
    return LearningStatus(
        account_id=acc, world=world, now=now, account_age_days=round(age, 4), explore_rate=explore_rate(age),
        active_models=[{**m, "version": f"v{m['version']}"} for m in active],
        rejected_models=[{**m, "version": f"v{m['version']}"} for m in rejected],
        arms=arm_summaries(arms), posterior_method=POSTERIOR_METHOD, outcomes_window_days=OUTCOMES_WINDOW_DAYS,
        outcomes_by_world=outcomes_by_world(conn, acc, now - OUTCOMES_WINDOW, now, fingerprints["outcomes"]),
        next_training=next_training(world=world, fresh=fresh, last=last, min_new=settings.learn_min_new_samples,
                                    retrain_at=settings.learn_retrain_samples, now=now,
                                    next_learn_run_at=next_learn_run_at),
        growth_model=growth_model_view(conn, settings, acc, world, now, fingerprints))
