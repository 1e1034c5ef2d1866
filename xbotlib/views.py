"""Read models shared by the admin API, the demo's terminal summary and the notebooks.

Each answers one question from the database (through ``xbotlib.store``) and the pure core, so the
API, the summary and a report show the same figures for the same data.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from typing import Sequence

import pandas as pd

from xbotlib.config import Settings
from xbotlib.core import growth_model as growth_models
from xbotlib.core import lift
from xbotlib.core.bandit import ArmStats, explore_rate, posterior
from xbotlib.core.growth_model import Effect
from xbotlib.core.policies import XbotPolicy
from xbotlib.core.predictors import WEEKLY, LastVersion, should_train
from xbotlib.store import arms as arm_store
from xbotlib.store import experiments as experiment_store
from xbotlib.store import gates, ledger, models, outcomes, queue, runs, worlds
from xbotlib.store.training_data import count_fresh_outcomes

JOBS = ("plan", "post", "collect", "learn")
TOP_POSTS_WINDOW_DAYS = 30
TOP_POSTS_LIMIT = 10
DAILY_SERIES_DAYS = 30
EXCERPT_CHARS = 80
OUTCOMES_WINDOW_DAYS = 90
# queue depth counts what is still in the queue; terminal rows (a whole history of posts) are not depth
QUEUE_STATUSES = tuple(s for s in queue.STATUSES if s not in queue.TERMINAL)
POSTERIOR_METHOD = ("xbotlib.core.bandit.posterior: Normal-Inverse-Gamma posterior of each arm's mean reward from "
                    "the exposure-weighted sums in bandit_arms, prior pooled over the arms of the same scope; "
                    "95% interval of the Student-t")


def account(conn, account_id: str) -> dict | None:
    """``account_id`` and ``created_at`` (the start of its exploration schedule) of a stored account, or None."""
    created = queue.account_created_at(conn, account_id)
    return None if created is None else {"account_id": account_id, "created_at": created}


def day_start(now: datetime) -> datetime:
    """Midnight UTC of ``now``'s day: 'today' in these figures is a UTC day, like the LLM budget day."""
    return now.astimezone(timezone.utc).replace(hour=0, minute=0, second=0, microsecond=0)


# ----------------------------------------------------------------------------- learning status

@dataclass
class ArmSummary:
    scope: str
    arm: str
    samples: int
    weight_sum: float
    posterior_mean: float
    posterior_sd: float
    ci95_low: float
    ci95_high: float


@dataclass
class NextTraining:
    world: str
    fresh_outcomes: int
    min_new_samples: int
    retrain_samples: int
    last_trained_at: datetime | None
    weekly_due_at: datetime | None
    due_now: bool
    reason: str
    outcomes_needed: int
    next_learn_run_at: datetime | None
    summary: str


@dataclass
class GrowthModelView:
    """What the learner believes about hooks and hours (``xbotlib.core.growth_model``)."""
    posts: int
    window_days: int
    deciding: bool
    signal: str | None
    hooks: list[Effect]
    hours: list[Effect]


@dataclass
class LearningStatus:
    account_id: str
    world: str
    now: datetime
    account_age_days: float
    explore_rate: float
    active_models: list[dict]
    arms: list[ArmSummary]
    posterior_method: str
    outcomes_window_days: int
    outcomes_by_world: list[dict]
    next_training: NextTraining
    growth_model: GrowthModelView


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


def growth_model_view(conn, settings: Settings, account_id: str, world: str, now: datetime) -> GrowthModelView:
    """The learner's current growth model for the account: hook and hour effects with 95% intervals."""
    posts = outcomes.post_outcomes(conn, account_id, world, now)
    view = dict(posts=len(posts), window_days=outcomes.MODEL_WINDOW_DAYS,
                deciding=len(posts) >= XbotPolicy.MODEL_MIN_POSTS)
    if not posts:
        return GrowthModelView(**view, signal=None, hooks=[], hours=[])
    model = growth_models.fit(posts)
    return GrowthModelView(**view, signal=model.signal, hooks=growth_models.hook_summary(model),
                           hours=growth_models.hour_summary(model, settings.posting_hours))


def learning_status(conn, settings: Settings, account: dict, world: str, now: datetime,
                    next_learn_run_at: datetime | None = None) -> LearningStatus:
    """What the learner knows for ``account`` in ``world``: models, exploration, arms, outcomes, next training."""
    acc = account["account_id"]
    age = max(0.0, (now - account["created_at"]).total_seconds() / 86400)
    active = sorted((m for m in models.list_versions(conn, acc) if m["is_active"] and m["trained_at"] <= now),
                    key=lambda m: (m["kind"], m["world"]))
    arms = {scope: stats for scope in arm_store.SCOPES
            if (stats := arm_store.load_arms(conn, acc, world, scope))}
    last = models.last_version(conn, acc, world)  # the learn job counts fresh outcomes from here
    fresh = count_fresh_outcomes(conn, acc, world, last.trained_through if last else None)
    return LearningStatus(
        account_id=acc, world=world, now=now, account_age_days=round(age, 4), explore_rate=explore_rate(age),
        active_models=[{**m, "version": f"v{m['version']}"} for m in active],
        arms=arm_summaries(arms), posterior_method=POSTERIOR_METHOD, outcomes_window_days=OUTCOMES_WINDOW_DAYS,
        outcomes_by_world=worlds.outcomes_by_world(conn, acc, now - timedelta(days=OUTCOMES_WINDOW_DAYS), now),
        next_training=next_training(world=world, fresh=fresh, last=last, min_new=settings.learn_min_new_samples,
                                    retrain_at=settings.learn_retrain_samples, now=now,
                                    next_learn_run_at=next_learn_run_at),
        growth_model=growth_model_view(conn, settings, acc, world, now))


# ----------------------------------------------------------------------------- growth

@dataclass
class Growth:
    account_id: str
    world: str
    simulated: bool
    now: datetime
    followers_now: int | None
    followers_at: datetime | None
    change_1d: int | None
    change_7d: int | None
    daily: list[dict]  # day, followers
    fpki_avg_7d: float | None
    novelty_avg_7d: float | None
    outcomes_7d: int
    top_posts: list[dict]


def followers_now(conn, account_id: str, simulated: bool, now: datetime) -> dict | None:
    """The latest follower snapshot of the last ``DAILY_SERIES_DAYS`` days (followers_count, taken_at)."""
    return outcomes.latest_follower_snapshot(conn, account_id, simulated, now, timedelta(days=DAILY_SERIES_DAYS))


def final_outcomes_7d(conn, account_id: str, simulated: bool, now: datetime) -> dict:
    """Mean fpki and novelty of the pass-2 outcomes of the last 7 days, and how many (fpki, novelty, n)."""
    return outcomes.final_outcome_averages(conn, account_id, simulated, now - timedelta(days=7), now)


def growth(conn, account: dict, world: str, now: datetime) -> Growth:
    """Followers and their change, the daily series, 7-day FPKI and novelty, top posts of ``world``."""
    acc, simulated = account["account_id"], world != "live"
    latest = followers_now(conn, acc, simulated, now)
    changes = {}
    for key, days in (("change_1d", 1), ("change_7d", 7)):
        before = outcomes.latest_follower_snapshot(conn, acc, simulated, now - timedelta(days=days),
                                                   timedelta(days=1))
        changes[key] = latest["followers_count"] - before["followers_count"] if latest and before else None
    first_day = day_start(now) - timedelta(days=DAILY_SERIES_DAYS - 1)
    daily = outcomes.daily_followers(conn, acc, simulated, first_day, now)
    avg = final_outcomes_7d(conn, acc, simulated, now)
    top = outcomes.top_posts(conn, acc, simulated, now - timedelta(days=TOP_POSTS_WINDOW_DAYS), now,
                             limit=TOP_POSTS_LIMIT, excerpt_chars=EXCERPT_CHARS)
    return Growth(
        account_id=acc, world=world, simulated=simulated, now=now,
        followers_now=latest["followers_count"] if latest else None,
        followers_at=latest["taken_at"] if latest else None, **changes,
        daily=[{"day": r["day"], "followers": r["followers_count"]} for r in daily],
        fpki_avg_7d=avg["fpki"], novelty_avg_7d=avg["novelty"], outcomes_7d=avg["n"], top_posts=top)


# ----------------------------------------------------------------------------- operating metrics

@dataclass
class OpenAISpend:
    budget_day: date
    spent_usd: float
    reserved_usd: float
    budget_usd: float
    remaining_usd: float
    calls_today: int
    backoffs_today: int
    circuit_open: bool


@dataclass
class Metrics:
    account_id: str
    world: str
    simulated: bool
    now: datetime
    followers_today: int | None
    fpki_avg_7d: float | None
    posts_today: int
    queue_depth: dict[str, int]
    gate_rejections_24h: dict[str, int]
    openai: OpenAISpend
    jobs: list[dict]  # job, status, started_at, finished_at, error


def openai_spend(conn, settings: Settings, account_id: str, day: date) -> OpenAISpend:
    """The OpenAI budget day of ``account_id``: settled, reserved, remaining, calls, backoffs, circuit."""
    d = ledger.ledger_day(conn, account_id, day)
    budget = settings.openai_daily_budget_usd
    return OpenAISpend(budget_day=day, spent_usd=d.settled_usd, reserved_usd=d.reserved_usd, budget_usd=budget,
                       remaining_usd=budget - d.settled_usd - d.reserved_usd, calls_today=d.total_calls,
                       backoffs_today=d.rate_limit_refunds, circuit_open=d.circuit_open)


def metrics(conn, settings: Settings, account: dict, world: str, now: datetime) -> Metrics:
    """Today's operating figures (the JSON of /api/metrics; the API renders them as Prometheus text too)."""
    acc, simulated = account["account_id"], world != "live"
    today = day_start(now)
    latest = followers_now(conn, acc, simulated, now)
    depth = queue.queue_depth(conn, acc)
    return Metrics(
        account_id=acc, world=world, simulated=simulated, now=now,
        followers_today=latest["followers_count"] if latest else None,
        fpki_avg_7d=final_outcomes_7d(conn, acc, simulated, now)["fpki"],
        posts_today=outcomes.count_posts(conn, acc, world, today, now),
        queue_depth={s: depth.get(s, 0) for s in QUEUE_STATUSES},
        gate_rejections_24h=gates.gate_rejection_counts(conn, acc, now - timedelta(hours=24), now),
        openai=openai_spend(conn, settings, acc, today.date()),
        jobs=runs.last_job_runs(conn, acc, JOBS, now))


# ----------------------------------------------------------------------------- experiments

def experiments(conn, account_id: str) -> list[dict]:
    """The account's experiments with assignments so far per arm, by experiment id
    (``xbotlib.store.experiments.list_experiments`` rows)."""
    return sorted(experiment_store.list_experiments(conn, account_id), key=lambda r: r["experiment_id"])


# ----------------------------------------------------------------------------- experiment lift

@dataclass
class LiftReport:
    """Everything ``experiment_lift`` shows. ``reason`` is set (and ``table`` empty) when not estimable."""
    experiment_id: str
    world: str
    frame: pd.DataFrame
    covariates: list[str]
    table: pd.DataFrame
    balance: pd.DataFrame
    overlap: pd.DataFrame
    reason: str | None = None

    @property
    def estimable(self) -> bool:
        return self.reason is None

    def arm_sizes(self) -> pd.DataFrame:
        """Units per arm and their mean outcomes (the raw numbers under every estimate)."""
        cols = ["arm", "n", "reward_composite_mean", "fpki_mean", "impressions_mean"]
        if self.frame.empty:
            return pd.DataFrame({"arm": ["control", "treatment"], "n": [0, 0]}).reindex(columns=cols)
        g = self.frame.groupby("arm")
        out = pd.DataFrame({"n": g.size(), "reward_composite_mean": g["reward_composite"].mean(),
                            "fpki_mean": g["fpki"].mean(), "impressions_mean": g["impressions"].mean()})
        return out.reindex(["control", "treatment"]).fillna({"n": 0}).astype({"n": int}).rename_axis("arm") \
            .reset_index()[cols]

    def summary(self) -> str:
        n_t = int(self.frame["treatment"].sum()) if len(self.frame) else 0
        head = (f"experiment {self.experiment_id} ({self.world}): {len(self.frame)} posts with a final outcome, "
                f"treatment {n_t}, control {len(self.frame) - n_t}")
        if not self.estimable:
            return f"{head}\nnot estimable yet: {self.reason}"
        sim = " (simulated outcomes)" if bool(self.frame["simulated"].any()) else ""
        return f"{head}{sim}\ncovariates: {', '.join(self.covariates) or 'none'}"


def experiment_lift(conn, account_id: str, experiment_id: str, world: str, *, seed: int = 0,
                    outcomes: Sequence[str] = ("reward_composite", "fpki")) -> LiftReport:
    """DR (AIPW), IPW and difference-in-means lift with balance and overlap diagnostics.

    An unknown ``experiment_id`` raises ``ValueError`` listing the valid ids; too little data gives a
    report with ``reason`` (the estimator's own message) and empty tables — no numbers are made up.
    """
    frame = experiment_store.lift_frame(conn, account_id, experiment_id, world)
    covariates = list(frame.attrs.get("covariates", []))
    empty = LiftReport(experiment_id, world, frame, covariates, pd.DataFrame(columns=_LIFT_COLUMNS),
                       pd.DataFrame(columns=["covariate", "mean_treatment", "mean_control", "smd", "smd_weighted"]),
                       pd.DataFrame(columns=["arm", "n", "propensity_min", "propensity_median", "propensity_max",
                                             "ess", "max_weight_share"]))
    try:
        table = lift.lift_table(frame, outcomes, covariates, seed=seed)
    except ValueError as exc:
        empty.reason = str(exc)
        return empty
    return LiftReport(experiment_id, world, frame, covariates, table, lift.balance_table(frame, covariates),
                      lift.overlap_summary(frame))


_LIFT_COLUMNS = ["outcome", "estimator", "estimate", "se", "ci_low", "ci_high", "n_treatment", "n_control",
                 "control_mean"]


# ----------------------------------------------------------------------------- campaign summary (xbot demo)

@dataclass
class AccountSummary:
    """What ``xbot demo`` prints for one account at the end of a campaign."""
    followers_first: int
    followers_last: int
    weekly_fpki: list[tuple[int, float, int]]  # (week from 1, mean pass-2 fpki, posts)
    model_versions: int
    latest_models: list[dict]                  # the newest version of each predictor kind
    growth_model: GrowthModelView | None       # hooks and hours ranked by expected follows; None before any post
    lifts: list[LiftReport]                    # one per experiment, on per-post fpki


def account_summary(conn, settings: Settings, account_id: str, world: str, now: datetime, *,
                    experiment_ids: Sequence[str], seed: int = 0) -> AccountSummary:
    """Followers, FPKI by week, model versions, the growth model (the admin API's view of it, hooks
    and hours ranked against the average arm) and each experiment's lift on per-post fpki."""
    first, last = outcomes.first_and_last_followers(conn, account_id)
    versions = models.list_versions(conn, account_id)  # by kind, newest first
    latest: dict[str, dict] = {}
    for v in versions:
        latest.setdefault(v["kind"], v)
    view = growth_model_view(conn, settings, account_id, world, now)
    if view.posts:
        rank = lambda effects: sorted(effects, key=lambda e: -e.relative_follows)  # noqa: E731
        view = GrowthModelView(view.posts, view.window_days, view.deciding, view.signal, rank(view.hooks),
                               rank(view.hours))
    lifts = [experiment_lift(conn, account_id, e, world, seed=seed, outcomes=("fpki",)) for e in experiment_ids]
    return AccountSummary(first, last, outcomes.weekly_fpki(conn, account_id), len(versions), list(latest.values()),
                          view if view.posts else None, lifts)


def fpki_estimates(report: LiftReport) -> dict[str, float]:
    """From an estimable report's table: DR (AIPW, ridge) with its 95% interval, IPW (Hajek) and
    difference in means on per-post fpki."""
    table = report.table[report.table["outcome"] == "fpki"].set_index("estimator")
    dr = table.loc["aipw_ridge"]
    return {"dr": dr["estimate"], "ci_low": dr["ci_low"], "ci_high": dr["ci_high"],
            "ipw": table.at["ipw_hajek", "estimate"], "dim": table.at["difference_in_means", "estimate"]}
