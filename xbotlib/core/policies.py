"""Plan policies: how a decision's content arm (hook pattern) and posting hour are chosen.

Every policy returns a ``PlanChoice`` with the probability with which it chose each part, so that
any policy's decisions can be evaluated off-policy later.

- ``xbot``: the learner. Once posts have final outcomes, it fits the growth model
  (``xbotlib.core.growth_model``: expected follows per post from hook, topic and hour, through profile
  visits) and takes Thompson sampling with uncertainty-epsilon over its hook effects and UCB1 over its
  hour effects, with an exploration floor on the hour (with probability ``bandit.HOUR_FLOOR`` a uniform
  draw from the free hours, so every hour keeps some posts and off-policy evaluation has support there).
  Outcomes count less as they age (half-life ``growth_model.HALF_LIFE_DAYS``, read at ``PlanState.now``),
  so the learner follows an audience that moves and an hour whose unlucky posts are old returns towards
  the average (no permanent lock-out). (``change_alpha`` gates the ageing of the hooks by a change test:
  tried, off by default; see ``growth_model``.) Before that, the same two rules on the per-arm statistics of
  ``bandit_arms``;
- ``random``: uniform over hooks and hours;
- ``heuristic``: the old system's rule — 60% exploit the best observed arm, 25% a moderate arm
  (the next best two), 15% an aggressive one (the least tried);
- ``fixed``: always one (hook, hour) — the bench fills in the best fixed arm in hindsight.

``POLICIES`` maps each name to a factory taking keyword options (``fixed=(hook, hour)``; others are
ignored); ``make_policy(name, **options)`` builds one. A policy that needs more than the core — the
``oracle``, which reads the sandbox's ground truth (benchmarks and the demo summary only) — lives
with what it needs and passes its own registry: ``xbotlib.sim.policies`` extends ``POLICIES`` with it
and provides the ``make_policy``/``POLICY_NAMES`` a simulated campaign uses.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Callable, Mapping, Protocol, Sequence

import numpy as np

from xbotlib.core import bandit, growth_model
from xbotlib.core.vocab import DEFAULT, HOOK_PATTERNS, Vocabulary
from xbotlib.logs import tagged

log = logging.getLogger("xbot.policy")

@dataclass(frozen=True)
class PlanChoice:
    hook: str
    hook_propensity: float
    hour: int
    hour_propensity: float
    forced: bool = False
    explore_rate: float | None = None


@dataclass(frozen=True)
class PlanState:
    """What a policy may look at: arm statistics (pulls, reward sums) and the account's age."""
    content_arms: Mapping[str, object]   # arm_id -> bandit.ArmStats
    timing_arms: Mapping[str, object]    # str(hour) -> bandit.ArmStats
    account_age_days: float
    hour_prior_means: Mapping[int, float] | None = None  # from the timing predictor, when trained
    outcomes: Sequence[object] = ()      # growth_model.PostOutcome of this account's recent posts
    vocabulary: Vocabulary = DEFAULT     # the account's niche: its topics (growth model columns), allowed hooks
    now: datetime | None = None          # the plan tick's time (UTC-aware); None where no clock is known


# the parts of ``PlanState`` that cost the plan tick a read beyond the arm statistics: the growth model's
# outcomes (``store.outcomes.post_outcomes``) and the timing predictor's hour prior. A policy says which it
# reads in ``reads``; the plan job leaves the others out (empty, None). A policy that does not say gets all.
COSTLY_STATE = frozenset({"outcomes", "hour_prior_means"})


def state_reads(policy) -> frozenset[str]:
    """The costly ``PlanState`` parts ``policy`` reads (``COSTLY_STATE`` unless it declares ``reads``)."""
    return frozenset(getattr(policy, "reads", COSTLY_STATE))


def allowed_hooks(state: PlanState, hooks: Sequence[str]) -> list[str]:
    """The hooks a policy may choose: those offered (the rotation rule's) that the account's vocabulary
    allows. When rotation has ruled out every allowed hook, the vocabulary wins: a post must not take a
    hook its profile forbids, and rotation is a soft rule (the rotation gate still checks the text)."""
    offered = [h for h in hooks if h in state.vocabulary.hooks]
    return offered or list(state.vocabulary.hooks)


class Policy(Protocol):
    name: str

    def choose(self, state: PlanState, hooks: Sequence[str], hours: Sequence[int],
               rng: np.random.Generator) -> PlanChoice: ...


class XbotPolicy:
    """The learner: Thompson + uncertainty-epsilon on hooks, UCB1 with an exploration floor on hours
    (``bandit.with_floor``: every free hour keeps probability >= ``hour_floor`` / its number), over the
    growth model once ``MODEL_MIN_POSTS`` outcomes exist (over the per-arm statistics before that)."""
    name = "xbot"
    reads = COSTLY_STATE  # the growth model's outcomes; before them, the hour prior
    MODEL_MIN_POSTS = 8

    def __init__(self, fit=None, half_life_days: float | None = growth_model.HALF_LIFE_DAYS,
                 hour_floor: float = bandit.HOUR_FLOOR, sd_scale: float = bandit.MODEL_SD_SCALE,
                 ucb_c: float = bandit.UCB_C_MODEL, change_alpha: float | None = growth_model.CHANGE_ALPHA,
                 hours_always_aged: bool = True):
        """``fit``: outcomes -> ``growth_model.GrowthModel``; ``growth_model.fit`` unless a benchmark
        tries another model of the same effects (bench/screen_information.py). ``half_life_days``: how
        fast old outcomes stop counting (``growth_model.age_weights``; None: never), read at the plan
        tick's time ``PlanState.now``. ``hour_floor``: the probability of drawing the hour uniformly
        from the free hours instead of taking UCB1's (``bandit.with_floor``; 0: UCB1 alone). ``sd_scale``: the
        width of the Thompson draws over hooks, as a multiple of the model's posterior sd
        (``bandit.choose_arm_from_model``); ``ucb_c``: UCB1's constant on the model's hour effects
        (``bandit.ucb1_hour``). Both default to the shipped values; benchmarks screen others. ``change_alpha``: the
        evidence is aged only when ``growth_model.change_test`` finds a change at this level (None: always aged,
        the default); ``hours_always_aged``: with a level, the hours are still read from the aged fit."""
        if not (isinstance(hour_floor, (int, float)) and 0.0 <= hour_floor <= 1.0):
            raise ValueError(f"xbot policy: hour_floor must be a probability in [0, 1], got {hour_floor!r}")
        if not (isinstance(sd_scale, (int, float)) and sd_scale > 0) or not (isinstance(ucb_c, (int, float))
                                                                              and ucb_c >= 0):
            raise ValueError(f"xbot policy: sd_scale must be > 0 and ucb_c >= 0, got {sd_scale!r} and {ucb_c!r}")
        self.fit = fit
        self.half_life_days = half_life_days
        self.hour_floor = float(hour_floor)
        self.sd_scale, self.ucb_c = float(sd_scale), float(ucb_c)
        self.change_alpha, self.hours_always_aged = change_alpha, bool(hours_always_aged)

    def choose(self, state, hooks, hours, rng):
        hooks, hours = allowed_hooks(state, hooks), [int(h) for h in hours]
        if len(state.outcomes) >= self.MODEL_MIN_POSTS:
            try:
                return self._choose_with_model(state, hooks, hours, rng)
            except (ValueError, np.linalg.LinAlgError) as exc:
                # outcomes the model cannot fit (absurd counts, say) must not stop planning
                tagged(log, "BANDIT", "growth model unusable", level=logging.WARNING, fallback="arm_statistics",
                       error=str(exc)[:100].replace(" ", "_"))
        arm = bandit.choose_content_arm({h: s for h, s in state.content_arms.items() if h in hooks}, hooks,
                                        state.account_age_days, rng, logger=log)
        timing = {int(k): v for k, v in state.timing_arms.items() if int(k) in hours}
        hour = bandit.choose_hour(timing, hours, rng, prior_means=state.hour_prior_means)
        hour = bandit.with_floor(hour, hours, self.hour_floor, rng)
        return PlanChoice(arm.arm, float(arm.propensity), int(hour.hour), float(hour.propensity),
                          forced=bool(arm.forced), explore_rate=float(arm.explore_rate))

    def _choose_with_model(self, state, hooks, hours, rng):
        if self.fit is None:
            model = growth_model.fit(state.outcomes, state.vocabulary, now=state.now, half_life_days=self.half_life_days,
                                     change_alpha=self.change_alpha)
        else:  # another model of the same effects (a benchmark's): it must have been learned for this niche
            model = self.fit(state.outcomes).check_vocabulary(state.vocabulary)
        hook_pulls = [sum(o.hook == h for o in state.outcomes) for h in hooks]
        mean, cov = model.hook_effects(hooks)
        arm = bandit.choose_arm_from_model(mean, cov, hooks, hook_pulls, state.account_age_days, rng,
                                           sd_scale=self.sd_scale, logger=log)
        # UCB1's pull counts are not aged: the model's ageing already brings an hour whose (unlucky) evidence is
        # old back towards the average; aged counts as well (discounted UCB) re-explored every hour and cost
        # 21 ± 7 follows per campaign on afternoon_questions (screen, 50 seeds; see growth_model.HALF_LIFE_DAYS)
        hour_pulls = [sum(int(o.hour) == h for o in state.outcomes) for h in hours]
        if self.fit is None and self.hours_always_aged and not model.aged and self.half_life_days is not None:
            model = growth_model.fit(state.outcomes, state.vocabulary, now=state.now,
                                     half_life_days=self.half_life_days, change_alpha=None)
        hour_means, _ = model.hour_effects(hours)
        hour = bandit.ucb1_hour(hours, list(hour_means), hour_pulls, rng,
                                scale=model.log_noise_sd(), c=self.ucb_c)
        hour = bandit.with_floor(hour, hours, self.hour_floor, rng)
        return PlanChoice(arm.arm, float(arm.propensity), int(hour.hour), float(hour.propensity),
                          forced=bool(arm.forced), explore_rate=float(arm.explore_rate))


class RandomPolicy:
    name = "random"
    reads = frozenset()  # uniform draws: neither outcomes nor the hour prior

    def choose(self, state, hooks, hours, rng):
        hooks = allowed_hooks(state, hooks)
        return PlanChoice(str(rng.choice(hooks)), 1.0 / len(hooks), int(rng.choice(list(hours))), 1.0 / len(hours))


class HeuristicPolicy:
    """60% exploit / 25% moderate / 15% aggressive exploration, on hooks and hours alike."""
    name = "heuristic"
    reads = frozenset()  # the arm statistics only
    MIX = (0.60, 0.25, 0.15)

    def _pick(self, arms: Sequence, stats: Mapping, rng) -> tuple[object, float]:
        arms = list(arms)
        means = {a: (stats[str(a)].mean if str(a) in stats else None) for a in arms}  # bandit.ArmStats.mean
        ranked = sorted(arms, key=lambda a: (means[a] is None, -(means[a] or 0.0)))
        exploit = ranked[:1]
        moderate = ranked[1:3] or exploit
        pulls = {a: getattr(stats.get(str(a)), "pulls", 0) for a in arms}
        least = min(pulls.values())
        aggressive = [a for a in arms if pulls[a] == least]
        groups = (exploit, moderate, aggressive)
        g = int(rng.choice(3, p=self.MIX))
        choice = groups[g][int(rng.integers(len(groups[g])))]
        prop = sum(p * (choice in grp) / len(grp) for p, grp in zip(self.MIX, groups))
        return choice, float(prop)

    def choose(self, state, hooks, hours, rng):
        hook, hp = self._pick(allowed_hooks(state, hooks), state.content_arms, rng)
        hour, tp = self._pick(hours, state.timing_arms, rng)
        return PlanChoice(str(hook), hp, int(hour), tp)


class FixedPolicy:
    """Always the same (hook, hour) when allowed; the nearest allowed otherwise."""
    name = "fixed"
    reads = frozenset()  # its own (hook, hour)

    def __init__(self, hook: str, hour: int):
        if hook not in HOOK_PATTERNS:
            raise ValueError(f"fixed policy: unknown hook {hook!r} (expected one of {', '.join(HOOK_PATTERNS)})")
        if isinstance(hour, bool) or not isinstance(hour, (int, np.integer)) or not 0 <= hour <= 23:
            raise ValueError(f"fixed policy: hour {hour!r} is not a local hour (expected 0-23)")
        self.hook, self.hour = hook, int(hour)

    def choose(self, state, hooks, hours, rng):
        hooks = allowed_hooks(state, hooks)
        if self.hook in hooks:
            hook, hook_p = self.hook, 1.0
        else:  # rotation (or the vocabulary) forbids the fixed hook: a uniform draw, and its propensity says so
            hook, hook_p = str(rng.choice(list(hooks))), 1.0 / len(hooks)
        hour = self.hour if self.hour in hours else min(hours, key=lambda h: abs(h - self.hour))
        return PlanChoice(hook, hook_p, int(hour), 1.0)


def _fixed(fixed: tuple[str, int] | None = None, **_options) -> FixedPolicy:
    if fixed is None:
        raise ValueError("policy 'fixed' needs a (hook, hour), e.g. make_policy('fixed', fixed=('question', 19))")
    return FixedPolicy(*fixed)


PolicyFactory = Callable[..., Policy]

# name -> factory(**options); options a policy does not use (``scenario``, say) are ignored
POLICIES: dict[str, PolicyFactory] = {
    "xbot": lambda **_options: XbotPolicy(),
    "random": lambda **_options: RandomPolicy(),
    "heuristic": lambda **_options: HeuristicPolicy(),
    "fixed": _fixed,
}
POLICY_NAMES = tuple(POLICIES)


def make_policy(name: str, *, registry: Mapping[str, PolicyFactory] = POLICIES, **options) -> Policy:
    """Build the policy ``name`` of ``registry`` (the core's ``POLICIES`` unless told otherwise) with
    ``options``: ``fixed`` needs ``fixed=(hook, hour)``; a registry may take more (``xbotlib.sim.policies``:
    ``scenario`` for the oracle)."""
    factory = registry.get(name)
    if factory is None:
        raise ValueError(f"unknown policy {name!r} (expected one of {', '.join(registry)})")
    return factory(**options)
