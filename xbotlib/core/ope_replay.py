"""Replaying an account's logged post decisions for off-policy evaluation (``xbotlib.core.ope``).

For every logged post decision this rebuilds what a candidate policy would have seen at that moment and
asks the candidate for its probability of each (hook, hour) action. Pure: it takes the decisions as
``LoggedDecision`` rows (``xbotlib.store.ope`` reads them) and returns arrays.

What is reconstructed, and what is assumed (the log does not store the offered sets):

- **time**: the decision's ``created_at`` (the plan tick's time);
- **outcomes the learner sees**: the posts whose final (pass-2) outcome was collected before the decision
  and that went out within the growth model's window (``window_days``, 90) — what ``post_outcomes`` read
  then; the follower count is the snapshot before each post, as there;
- **arm statistics** (``bandit_arms``, read by the learner before it has 8 outcomes and by ``heuristic``):
  rebuilt from the same final outcomes as ``apply_pass2_rewards`` folds them (composite reward per content
  arm, follows per timing arm, one pull each). Assumed: every final outcome had been folded in by the
  decision (the collect job folds them in the tick that stores them);
- **hooks offered**: the rotation rule (``gates.allowed_by_rotation``, ``rotation_max_run``) on the hooks of
  the 20 newest earlier post decisions that were active then. Assumed: a decision that is active, failed or
  skipped now was active at the time (it failed or was skipped later, when it was due); cancelled ones never
  count (when they were cancelled is not stored);
- **hours offered**: the posting hours not already booked by an earlier post scheduled in the next 24 hours
  (all of them when every hour is booked). Assumed as for the hooks. If the logged hour is not in the set
  rebuilt this way, it is added (``Replay.hour_added`` counts how often: a sign the assumption failed);
- **not reconstructed**: the timing predictor's prior (``hour_prior_means``), which the learner reads only
  before the growth model has 8 outcomes (the first two or three days): taken as None. Where a predictor was
  active then, the learner's hour is deterministic in the log but tied among untried hours in the replay
  (measured: 3 of 16 decisions of a 5-day campaign, weights 0.25-0.5 where 1 is right; none after the
  growth model takes over). Other candidates do not read it.

Decisions whose hour was drawn by the ``late_evening_slot`` experiment, not by the policy, are left out:
their stored timing propensity is the experiment's, and assignment is random, so the rest is still a fair
sample of the policy's decisions. So are decisions without a final outcome or without propensities (counted
in ``Replay.dropped``).

The candidate's action distribution: policies that choose the hook and the hour independently given the
state (the core's ``xbot``, ``random``, ``heuristic``, ``fixed``, and the sim's ``oracle``) report the
probability of what they drew; ``draws`` calls of ``choose`` give each component's distribution over the
arms drawn (the mean reported probability of each), and the product of the two is the joint. That is exact
for deterministic and uniform rules and for the heuristic's mixture; for Thompson sampling the reported
probabilities are the policy's own Monte-Carlo win rates. Probability left unaccounted (arms not drawn) is
spread evenly over the arms not drawn — for the learner's hour (UCB1 with the exploration floor,
``bandit.with_floor``) that is exact: every hour UCB1 does not take has probability floor / k. Any other policy (a library's, over joint arms) gets the empirical
joint frequencies of ``draws`` calls.
"""
from __future__ import annotations

import contextlib
import copy
import logging
import threading
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Callable, Sequence

import numpy as np

from xbotlib.core import bandit, growth_model
from xbotlib.core.gates import allowed_by_rotation
from xbotlib.core.policies import FixedPolicy, HeuristicPolicy, PlanState, RandomPolicy, XbotPolicy
from xbotlib.core.vocab import DEFAULT, HOOK_PATTERNS, Vocabulary

RECENT_LIMIT = 20  # the planner's rotation reads the 20 newest decisions (queue.recent_hooks_and_topics)
INDEPENDENT_POLICIES = (XbotPolicy, RandomPolicy, HeuristicPolicy, FixedPolicy)
NOT_ACTIVE = ("cancelled", "draft")


@dataclass(frozen=True)
class LoggedDecision:
    """One logged decision with what the replay needs (``xbotlib.store.ope.logged_decisions`` reads them)."""
    decision_id: str
    decision_type: str
    status: str
    created_at: datetime
    scheduled_at: datetime | None
    posted_at: datetime | None
    bandit_arm: str | None         # the hook the policy chose (its propensity is the hook's)
    hook_pattern: str | None       # the hook the text carries (what the growth model learns from)
    topic: str | None
    novelty: float | None
    timing_arm: str | None
    hook_propensity: float | None
    hour_propensity: float | None
    hour_from_experiment: bool
    followers: float | None        # the follower snapshot before the post went out
    final_at: datetime | None      # when the final (pass-2) outcome was collected
    follows: float | None
    profile_visits: float | None
    reward_composite: float | None


@dataclass(frozen=True)
class ActionSpace:
    """The (hook, hour) actions, indexed hook-major: index = hook_index * len(hours) + hour_index."""
    hooks: tuple[str, ...]
    hours: tuple[int, ...]

    @property
    def size(self) -> int:
        return len(self.hooks) * len(self.hours)

    def index(self, hook: str, hour: int) -> int:
        return self.hooks.index(hook) * len(self.hours) + self.hours.index(int(hour))

    def label(self, i: int) -> str:
        return f"{self.hooks[i // len(self.hours)]}:{self.hours[i % len(self.hours)]}"


@dataclass(frozen=True)
class ReplayPoint:
    """One evaluable decision: its logged action, reward and propensity, and what the candidate would see."""
    decision: LoggedDecision
    action: int
    reward: float
    pscore: float
    state: PlanState
    hooks: list[str]
    hours: list[int]


@dataclass
class Replay:
    space: ActionSpace
    points: list[ReplayPoint]
    dropped: dict[str, int] = field(default_factory=dict)
    hour_added: int = 0


def _was_active(d: LoggedDecision) -> bool:
    return d.status not in NOT_ACTIVE


def _post_outcome(d: LoggedDecision, vocabulary: Vocabulary):
    topic = d.topic if d.topic in vocabulary.topics else None
    novelty = None if d.novelty is None else min(1.0, max(0.0, float(d.novelty)))
    return growth_model.PostOutcome(hook=d.hook_pattern, topic=topic, hour=int(d.timing_arm),
                                    profile_visits=float(d.profile_visits), follows=float(d.follows),
                                    followers=float(d.followers), novelty=novelty,
                                    posted_at=d.posted_at)  # the learner ages its evidence by it


def replay(decisions: Sequence[LoggedDecision], *, vocabulary: Vocabulary = DEFAULT, posting_hours: Sequence[int],
           rotation_max_run: int, account_created_at: datetime, window_days: int = 90) -> Replay:
    """The evaluable post decisions of one account (``decisions``: all of its decisions, any order)."""
    decisions = sorted(decisions, key=lambda d: (d.created_at, d.decision_id))
    hours_all = sorted({int(h) for h in posting_hours})
    space = ActionSpace(tuple(vocabulary.hooks), tuple(hours_all))
    # outcomes and arm rewards in the order they became final
    finals = sorted((d for d in decisions if d.final_at is not None and d.follows is not None),
                    key=lambda d: d.final_at)
    dropped = {"no final outcome": 0, "no propensities": 0, "hour from an experiment": 0, "action outside the space": 0}
    points, hour_added = [], 0
    for i, d in enumerate(decisions):
        if d.decision_type != "post":
            continue
        if d.bandit_arm is None or d.timing_arm is None or d.hook_propensity is None or d.hour_propensity is None:
            dropped["no propensities"] += 1
            continue
        if d.hour_from_experiment:
            dropped["hour from an experiment"] += 1
            continue
        if d.final_at is None or d.follows is None:
            dropped["no final outcome"] += 1
            continue
        hour = int(d.timing_arm)
        if d.bandit_arm not in space.hooks or hour not in space.hours:
            dropped["action outside the space"] += 1
            continue
        now = d.created_at
        seen = [f for f in finals if f.final_at <= now]
        earlier = [e for e in decisions[:i] if e.decision_type == "post" and _was_active(e)]
        recent_hooks = [e.hook_pattern for e in reversed(earlier)][:RECENT_LIMIT]
        hooks = allowed_by_rotation(recent_hooks, list(vocabulary.hooks), rotation_max_run)
        booked = {int(e.timing_arm) for e in earlier if e.scheduled_at is not None and e.timing_arm is not None
                  and now < e.scheduled_at <= now + timedelta(hours=24)}
        offered = [h for h in hours_all if h not in booked] or list(hours_all)
        if hour not in offered:
            offered = sorted([*offered, hour])
            hour_added += 1
        state = PlanState(content_arms=_arm_stats(seen, "content"), timing_arms=_arm_stats(seen, "timing"),
                          account_age_days=max(0.0, (now - account_created_at).total_seconds() / 86400.0),
                          hour_prior_means=None,
                          outcomes=[_post_outcome(f, vocabulary) for f in seen
                                    if f.decision_type == "post" and f.timing_arm is not None and f.followers is not None
                                    and f.hook_pattern in HOOK_PATTERNS and f.posted_at is not None
                                    and f.posted_at > now - timedelta(days=window_days)],
                          vocabulary=vocabulary, now=now)
        points.append(ReplayPoint(d, space.index(d.bandit_arm, hour), float(d.follows),
                                  float(d.hook_propensity) * float(d.hour_propensity), state, hooks, offered))
    return Replay(space, points, dropped, hour_added)


def _arm_stats(finals: Sequence[LoggedDecision], scope: str) -> dict:
    """``bandit_arms`` as ``apply_pass2_rewards`` would have left them after these final outcomes."""
    arms: dict[str, bandit.ArmStats] = {}
    for f in finals:
        arm, value = ((f.bandit_arm, f.reward_composite) if scope == "content" else (f.timing_arm, f.follows))
        if arm is None or value is None:
            continue
        arms[arm] = bandit.update(arms.get(arm, bandit.ArmStats(arm)), float(value))
    return arms


# ----------------------------------------------------------------------------- the candidate's distribution

def _one_fit(policy, state: PlanState):
    """The learner fits its growth model on every ``choose``; the state is fixed within one decision, so a
    copy that fits once and reuses the model gives the same choices at 1/draws of the cost. The fit is the
    learner's own: its evidence aged at the decision's time (``state.now``, ``XbotPolicy.half_life_days``)."""
    if not isinstance(policy, XbotPolicy):
        return policy
    base, cache = policy.fit, {}

    def fit_once(outcomes):
        if "model" not in cache:
            cache["model"] = base(outcomes) if base is not None else growth_model.fit(
                outcomes, state.vocabulary, now=state.now, half_life_days=policy.half_life_days)
        return cache["model"]

    clone = copy.copy(policy)
    clone.fit = fit_once
    return clone


MAX_DRAWS = 10_000  # a probability read from this many draws has a standard error of at most 0.005


def check_draws(draws: int) -> None:
    """A ValueError naming ``draws`` unless it is a whole number in 1..MAX_DRAWS."""
    if isinstance(draws, bool) or not isinstance(draws, int) or not 1 <= draws <= MAX_DRAWS:
        raise ValueError(f"draws must be between 1 and {MAX_DRAWS}, got {draws!r} (the candidate's probability of "
                         f"each action is read to within ±{0.5 / MAX_DRAWS ** 0.5:.3f} at {MAX_DRAWS}; more only costs "
                         "time)")


_asking = threading.local()


class _AskedNotDecided(logging.Filter):
    """Drops the policy's records (``[BANDIT] explore forced …``) on the thread that is asking a candidate what it
    would choose: those choices were never made, and the tag's readers (operators, checks) count real ones."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not getattr(_asking, "on", False)


logging.getLogger("xbot.policy").addFilter(_AskedNotDecided())


@contextlib.contextmanager
def _asking_the_candidate():
    before = getattr(_asking, "on", False)
    _asking.on = True
    try:
        yield
    finally:
        _asking.on = before


def action_distribution(policy, state: PlanState, hooks: Sequence[str], hours: Sequence[int], space: ActionSpace,
                        rng: np.random.Generator, draws: int = 40) -> np.ndarray:
    """The candidate's probability of every action of ``space`` at this state, shape (K,); see the module
    docstring for how (exact for deterministic, uniform and mixture rules, Monte Carlo for Thompson)."""
    check_draws(draws)
    policy = _one_fit(policy, state)
    with _asking_the_candidate():
        choices = [policy.choose(state, list(hooks), list(hours), rng) for _ in range(draws)]
    dist = np.zeros(space.size)
    if not isinstance(policy, INDEPENDENT_POLICIES) and getattr(policy, "name", None) != "oracle":
        for c in choices:
            dist[space.index(c.hook, c.hour)] += 1.0 / draws
        return dist
    hook_p = _marginal([(c.hook, c.hook_propensity) for c in choices], space.hooks)
    hour_p = _marginal([(c.hour, c.hour_propensity) for c in choices], space.hours)
    return np.outer(hook_p, hour_p).ravel()


def _marginal(drawn: list[tuple[object, float]], arms: Sequence) -> np.ndarray:
    """One component's distribution over ``arms`` from (drawn arm, its reported probability) pairs."""
    reported: dict[object, list[float]] = {}
    for arm, p in drawn:
        reported.setdefault(arm, []).append(float(p))
    p = np.array([np.mean(reported[a]) if a in reported else 0.0 for a in arms])
    total = p.sum()
    unseen = [i for i, a in enumerate(arms) if a not in reported]
    if total < 1.0 and unseen:
        p[unseen] = (1.0 - total) / len(unseen)
    return p / p.sum()


def candidate_matrix(policy, points: Sequence[ReplayPoint], space: ActionSpace, *, seed: int = 0, draws: int = 40,
                     on_progress: Callable[[int], None] | None = None) -> np.ndarray:
    """``action_dist`` (n, K): the candidate's distribution at every replayed decision (seeded)."""
    rng = np.random.default_rng(seed)
    out = np.empty((len(points), space.size))
    for i, pt in enumerate(points):
        out[i] = action_distribution(policy, pt.state, pt.hooks, pt.hours, space, rng, draws)
        if on_progress:
            on_progress(i + 1)
    return out


def action_features(points: Sequence[ReplayPoint], space: ActionSpace) -> np.ndarray:
    """The DR reward model's features of every decision under every action, shape (n, K, p): one-hot hook and
    one-hot hour (the first of each left out: the intercept carries it). The follower base enters as the
    model's offset (``log_followers``)."""
    n, nh, nt = len(points), len(space.hooks), len(space.hours)
    feats = np.zeros((n, space.size, (nh - 1) + (nt - 1)))
    for a in range(space.size):
        h, t = divmod(a, nt)
        if h > 0:
            feats[:, a, h - 1] = 1.0
        if t > 0:
            feats[:, a, nh - 1 + t - 1] = 1.0
    return feats


def log_followers(points: Sequence[ReplayPoint]) -> np.ndarray:
    """log(follower base) of each decision's post, shape (n,): reach, and so follows, scale with it."""
    return np.log(np.array([max(1.0, p.decision.followers or 0.0) for p in points]))


def arrays(rp: Replay) -> dict[str, np.ndarray]:
    """``reward``, ``action`` and ``pscore`` of the replayed decisions."""
    return {"reward": np.array([p.reward for p in rp.points]), "action": np.array([p.action for p in rp.points], dtype=int),
            "pscore": np.array([p.pscore for p in rp.points])}
