"""Exploration: Thompson sampling over content arms, UCB1 over posting hours. Pure, seeded, replayable.

Content arms (hook patterns) get a Normal model with unknown mean *and* variance, because the
reward is continuous and its spread is unknown: a Normal-Inverse-Gamma prior whose posterior
for the mean is a Student-t. The prior is empirical-Bayes and weak: centred on the pooled mean of
the arms being compared, expecting the pooled variance, worth ``kappa0`` = 1 pseudo-observation.

The content policy mixes two things: with probability ``explore_rate(account_age_days)`` it
forces the arm whose mean is most uncertain (and logs ``[BANDIT] explore forced …``), otherwise it
takes a Thompson draw. ``propensity`` is the probability the *mixed* policy had of choosing the
arm it chose, which off-policy evaluation needs.

Two sources of beliefs, one set of rules:

- **per-arm** (``choose_content_arm``, ``choose_hour``): the statistics of each arm alone, from
  ``bandit_arms``. The learner uses these until the growth model has data (its first 8 outcomes).
- **from a joint model** (``choose_arm_from_model``, ``ucb1_hour``): arm effects with a joint Gaussian
  posterior, from ``xbotlib.core.growth_model``. Thompson draws use the posterior sd halved
  (``MODEL_SD_SCALE``) and forced exploration only targets arms with fewer than ``MODEL_FORCE_BELOW``
  outcomes; UCB1's bonus is in the model's log-count units with c = ``UCB_C_MODEL``.

Hours have an exploration floor (``with_floor``, ``HOUR_FLOOR`` = 0.20): with that probability the hour
is drawn uniformly from the free hours, otherwise UCB1's hour is taken. UCB1 alone is deterministic given
the state (propensity 1), which had two costs (issue #20): an hour whose first posts were unlucky could
be locked out for good, and off-policy evaluation of a candidate that spreads hours leaned on the reward
model where the logs had no support. With the floor every free hour has probability >= 0.20 / k (k <= 8:
>= 0.025), and the stored timing propensity is the mixture's. ``bench/bench_ope.py --seeds 4 --days 60``
(default world, the same candidates' own runs; loggers: this learner with and without the floor; load 6-8):
DR's interval covered the truth on 4/4/4 seeds for the fixed, random and heuristic candidates with the
floor, 4/3/3 without; for random the mean importance weight rose from 0.16-0.21 to 0.78-1.38 (it is 1
with full support) and IPW's bias fell from −0.98 to +0.12 follows/post: the logs now support it. The price is variance where the candidate sits
on the logger's rare choices: for ``fixed`` the effective sample fell from 11-48 to 2-5 of 236 and DR's
RMSE rose from 0.14 to 0.81 (a floor half as large would double those weights).

Why 0.20, from the replay screen (``bench/screen_policies.py``, 60 days, seeds 0-39, machine B, 2026-12-03;
follows earned by posts, UCB1 alone minus the floored learner, mean ± se of the paired difference: positive
means the floor cost follows; lock-outs: seeds whose best hour got fewer than 10 of 240 posts)

| world | floor 0.05 | floor 0.10 | floor 0.20 | lock-outs (0 / 0.05 / 0.10 / 0.20) |
| --- | ---: | ---: | ---: | --- |
| default | +0.9 ± 6.9 | −3.9 ± 6.9 | −4.1 ± 5.9 | 0 / 0 / 0 / 0 |
| bench/scenarios/small_noisy | +9.2 ± 5.1 | +6.5 ± 4.6 | +0.5 ± 4.8 | 0 / 0 / 0 / 0 |
| afternoon_questions | −2.6 ± 6.7 | −1.3 ± 8.1 | +3.6 ± 8.6 | 0 / 0 / 0 / 0 |
| default_step | +4.0 ± 6.4 | −2.5 ± 6.8 | +4.8 ± 6.3 | 1 / 0 / 0 / 0 |
| afternoon_questions_drift | +4.4 ± 6.6 | −6.5 ± 5.6 | +7.2 ± 6.6 | 0 / 0 / 0 / 0 |
| pooled, per world | +3.2 ± 2.9 | −1.5 ± 2.9 | +2.4 ± 2.9 | |

No floor costs follows beyond noise on any world (0.20: +2.4 ± 2.9 of ~380 per campaign pooled, so at
most ~2% at two standard errors), because the slots already spread posts (four a day over eight hours,
one post per hour) and an hour's effect is small beside the hook's; the floor's value is the support it
gives the logs, which grows with it, so the largest floor tried that costs nothing measurable is shipped
(0.10 was as free, −1.5 ± 2.9, with half the support). The lock-outs of issue #20 were already gone on this screen with the quasi-Poisson fit and evidence ageing
(``growth_model``); the floor raises the least-posted hour on small_noisy from 14.2 to 17.7 posts of
240 and, unlike the model's ageing, does not depend on the model being right. Days to move to the new
best hook after default_step's step (median over seeds; never within 60 days): 0 (8 never) without the
floor, 4 (14 never) at 0.20 — that step is small (1.51 vs 1.27) and the count is noisy (0.05: 12, 7
never; 0.10: 2, 11 never).

Every function takes its randomness from a numpy ``Generator`` (or a seed): the same seed and
the same observations give the same choices.

Size: over 400 lines because the evidence for the exploration rules is kept beside them (the table above);
the code is the two choices (content arms, hours) and their posterior, which share their propensity rules.
"""
from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field, replace
from typing import Mapping, Sequence

import numpy as np
from scipy.special import stdtrit

from xbotlib.logs import tagged

log = logging.getLogger("xbot.bandit")

EXPLORE_START = 0.20
EXPLORE_FLOOR = 0.05
EXPLORE_DECAY_DAYS = 14.0


@dataclass(frozen=True)
class ArmStats:
    """Sufficient statistics of one arm (the ``bandit_arms`` row). Sums are weighted by the
    exposure weight of each reward; ``pulls`` counts rewards, ``weight_sum`` their total weight."""

    arm_id: str
    pulls: int = 0
    reward_sum: float = 0.0
    reward_sq_sum: float = 0.0
    weight_sum: float = 0.0

    @property
    def mean(self) -> float | None:
        return self.reward_sum / self.weight_sum if self.weight_sum > 0 else None

    @property
    def variance(self) -> float | None:
        if self.weight_sum <= 0:
            return None
        m = self.reward_sum / self.weight_sum
        return max(0.0, self.reward_sq_sum / self.weight_sum - m * m)


def update(stats: ArmStats, reward: float, weight: float = 1.0) -> ArmStats:
    """The arm after one more (weighted) reward. Pure: returns a new ``ArmStats``."""
    if not math.isfinite(reward):
        raise ValueError(f"reward must be finite, got {reward!r} for arm {stats.arm_id!r}")
    if not (math.isfinite(weight) and weight > 0):
        raise ValueError(f"weight must be a finite number > 0, got {weight!r} for arm {stats.arm_id!r}")
    return replace(stats, pulls=stats.pulls + 1, reward_sum=stats.reward_sum + weight * reward,
                   reward_sq_sum=stats.reward_sq_sum + weight * reward * reward,
                   weight_sum=stats.weight_sum + weight)


def _stats_for(stats: Mapping, arm) -> ArmStats:
    s = stats.get(arm)
    if s is None:
        s = stats.get(str(arm))
    return s if s is not None else ArmStats(str(arm))


# ----------------------------------------------------------------------------- posterior


@dataclass(frozen=True)
class Prior:
    """Normal-Inverse-Gamma prior. ``mu0``/``var0`` None -> pooled from the arms being compared."""

    kappa0: float = 1.0
    alpha0: float = 2.0
    mu0: float | None = None
    var0: float | None = None
    min_var: float = 1e-6

    def __post_init__(self) -> None:
        if self.kappa0 <= 0 or self.alpha0 <= 1:
            raise ValueError(f"prior needs kappa0 > 0 and alpha0 > 1, got kappa0={self.kappa0}, alpha0={self.alpha0}")


@dataclass(frozen=True)
class Posterior:
    """Posterior of an arm's mean reward: Student-t(df, loc=mean, scale); sd and 95% interval."""

    mean: float
    sd: float
    ci_low: float
    ci_high: float
    df: float
    scale: float
    n: float


def _pooled(arm_stats: Sequence[ArmStats]) -> tuple[float, float]:
    w = sum(s.weight_sum for s in arm_stats)
    if w <= 0:
        return 0.0, 1.0  # no data at all: a unit-scale prior around 0
    m = sum(s.reward_sum for s in arm_stats) / w
    var = max(0.0, sum(s.reward_sq_sum for s in arm_stats) / w - m * m)
    return m, var


def posterior(stats: Mapping[str, ArmStats], arms: Sequence[str] | None = None, prior: Prior | None = None) -> dict[str, Posterior]:
    """Posterior of each arm's mean (arms default to the keys of ``stats``)."""
    prior = prior or Prior()
    arms = list(stats) if arms is None else list(arms)
    arm_stats = [_stats_for(stats, a) for a in arms]
    pooled_mean, pooled_var = _pooled(arm_stats)
    mu0 = pooled_mean if prior.mu0 is None else prior.mu0
    var0 = max(prior.min_var, pooled_var if prior.var0 is None else prior.var0)
    beta0 = var0 * (prior.alpha0 - 1)  # prior expected variance = var0
    rows = []
    for arm, s in zip(arms, arm_stats):
        n = s.weight_sum
        xbar = s.mean if n > 0 else 0.0
        ss = s.variance * n if n > 0 else 0.0
        kappa = prior.kappa0 + n
        mu = (prior.kappa0 * mu0 + n * xbar) / kappa
        alpha = prior.alpha0 + n / 2
        beta = beta0 + 0.5 * ss + prior.kappa0 * n * (xbar - mu0) ** 2 / (2 * kappa)
        df = 2 * alpha
        scale = math.sqrt(beta / (alpha * kappa))
        rows.append((str(arm), mu, scale * math.sqrt(df / (df - 2)), df, scale, n))
    qs = stdtrit([r[3] for r in rows], 0.975) if rows else []  # Student-t 97.5% quantiles, one ufunc call
    return {arm: Posterior(mean=mu, sd=sd, ci_low=mu - q * scale, ci_high=mu + q * scale, df=df, scale=scale, n=n)
            for (arm, mu, sd, df, scale, n), q in zip(rows, map(float, qs))}


# ----------------------------------------------------------------------------- content arms (Thompson)


def explore_rate(account_age_days: float) -> float:
    """Forced-exploration probability: 0.20 on day 0, falling linearly to 0.05 on day 14, then 0.05.

    Linear (rather than exponential) so the schedule is easy to read off a dashboard.
    """
    if account_age_days is None or not math.isfinite(account_age_days) or account_age_days < 0:
        raise ValueError(f"account age must be a number of days >= 0, got {account_age_days!r} "
                         "(is accounts.created_at in the future of the clock?)")
    if account_age_days >= EXPLORE_DECAY_DAYS:
        return EXPLORE_FLOOR
    return EXPLORE_START + (EXPLORE_FLOOR - EXPLORE_START) * account_age_days / EXPLORE_DECAY_DAYS


@dataclass(frozen=True)
class ArmChoice:
    """The chosen content arm and the probability the mixed policy gave it."""

    arm: str
    propensity: float
    forced: bool
    explore_rate: float
    probabilities: dict[str, float] = field(default_factory=dict)


def _check_arms(arms: Sequence) -> list:
    arms = list(arms)
    if not arms:
        raise ValueError("no arms to choose from (pass at least one arm id)")
    if len(set(map(str, arms))) != len(arms):
        raise ValueError(f"arm ids must be unique, got {arms!r}")
    return arms


def _posterior_draws(post: Sequence[Posterior], rng: np.random.Generator, n_mc: int) -> np.ndarray:
    df = np.array([p.df for p in post])
    loc = np.array([p.mean for p in post])
    scale = np.array([p.scale for p in post])
    return loc + scale * rng.standard_t(df, size=(n_mc, len(post)))


def _win_rates(draws: np.ndarray) -> np.ndarray:
    return np.bincount(draws.argmax(axis=1), minlength=draws.shape[1]) / draws.shape[0]


def most_uncertain(post: Mapping[str, Posterior], arms: Sequence[str]) -> list[str]:
    """The arms whose posterior sd is highest (several when tied)."""
    sds = np.array([post[str(a)].sd for a in arms])
    top = np.isclose(sds, sds.max(), rtol=1e-9, atol=0.0)
    return [str(a) for a, t in zip(arms, top) if t]


def thompson_probabilities(stats: Mapping[str, ArmStats], arms: Sequence[str], rng, *, n_mc: int = 2000,
                           prior: Prior | None = None) -> dict[str, float]:
    """Monte-Carlo estimate of P(arm has the highest posterior draw), for each arm; sums to 1."""
    arms = _check_arms(arms)
    rng = np.random.default_rng(rng)
    post = posterior(stats, arms, prior)
    rates = _win_rates(_posterior_draws([post[str(a)] for a in arms], rng, n_mc))
    return {str(a): float(p) for a, p in zip(arms, rates)}


def _mixed(thompson: np.ndarray, forced_set: list[int], eps: float) -> np.ndarray:
    forced = np.zeros_like(thompson)
    forced[forced_set] = 1.0 / len(forced_set)
    return eps * forced + (1 - eps) * thompson


def choose_content_arm(stats: Mapping[str, ArmStats], arms: Sequence[str], account_age_days: float, rng, *,
                       logger: logging.Logger | None = None, n_mc: int = 2000, prior: Prior | None = None) -> ArmChoice:
    """Choose a content arm: forced exploration with probability ``explore_rate``, else Thompson.

    The Thompson choice is the first of the ``n_mc`` posterior draws used to estimate the
    Thompson probabilities, so the estimate always counts the chosen arm and its propensity is > 0.
    Forced exploration picks uniformly among the most uncertain arms.

    Returns ``ArmChoice(arm, propensity, forced, explore_rate, probabilities)``; ``probabilities``
    is the full mixed policy (sums to 1).
    """
    arms = [str(a) for a in _check_arms(arms)]
    if n_mc < 1:
        raise ValueError(f"n_mc must be >= 1, got {n_mc!r}")
    rng = np.random.default_rng(rng)
    eps = explore_rate(account_age_days)
    post = posterior(stats, arms, prior)
    explore = rng.random() < eps
    draws = _posterior_draws([post[a] for a in arms], rng, n_mc)
    thompson = _win_rates(draws)
    uncertain = most_uncertain(post, arms)
    forced_idx = [arms.index(a) for a in uncertain]
    if explore:
        idx = forced_idx[int(rng.integers(len(forced_idx)))] if len(forced_idx) > 1 else forced_idx[0]
        tagged(logger or log, "BANDIT", "explore forced", arm=arms[idx], reason="high_uncertainty")
    else:
        idx = int(draws[0].argmax())
    probs = _mixed(thompson, forced_idx, eps)
    return ArmChoice(arm=arms[idx], propensity=float(probs[idx]), forced=bool(explore), explore_rate=eps,
                     probabilities={a: float(p) for a, p in zip(arms, probs)})


def policy_probabilities(stats: Mapping[str, ArmStats], arms: Sequence[str], account_age_days: float, rng, *,
                         n_mc: int = 2000, prior: Prior | None = None) -> dict[str, float]:
    """The mixed policy's probability of each arm (forced exploration + Thompson); sums to 1."""
    arms = [str(a) for a in _check_arms(arms)]
    post = posterior(stats, arms, prior)
    thompson = np.array(list(thompson_probabilities(stats, arms, rng, n_mc=n_mc, prior=prior).values()))
    forced_idx = [arms.index(a) for a in most_uncertain(post, arms)]
    probs = _mixed(thompson, forced_idx, explore_rate(account_age_days))
    return {a: float(p) for a, p in zip(arms, probs)}


# ----------------------------------------------------------------------------- posting hours (UCB1)


def timing_arm_id(hour: int) -> str:
    """The ``bandit_arms.arm_id`` / ``content_metadata.timing_arm`` of a local posting hour."""
    if not 0 <= int(hour) <= 23:
        raise ValueError(f"posting hour must be 0-23, got {hour!r}")
    return str(int(hour))


@dataclass(frozen=True)
class HourChoice:
    """The chosen posting hour. UCB1 is deterministic given the stats, so its ``propensity`` is 1, or
    1/k when k hours tie (the tie is broken at random); ``with_floor`` mixes in a uniform draw and
    the propensity is then the mixture's. ``probabilities``: the rule's probability of every hour
    offered (sums to 1). ``bonus`` is None (and ``scores`` empty) while untried hours are being tried
    first: their UCB score is infinite, which JSON cannot store. ``explored``: the uniform draw chose."""

    hour: int
    propensity: float
    bonus: float | None
    scores: dict[int, float] = field(default_factory=dict)
    probabilities: dict[int, float] = field(default_factory=dict)
    explored: bool = False


def reward_scale(arm_stats: Sequence[ArmStats]) -> float:
    """The spread rewards move on: the pooled sd of observed rewards, floored at 1e-6.

    Rewards are not in [0, 1] (fpki dominates), so UCB1's sqrt(2 ln N / n) bonus is multiplied by
    this scale to be in reward units.
    """
    _, var = _pooled(arm_stats)
    return max(1e-6, math.sqrt(var)) if any(s.weight_sum > 0 for s in arm_stats) else 1.0


def choose_hour(stats: Mapping, hours: Sequence[int], rng, *, prior_means: Mapping[int, float] | None = None,
                prior_strength: float = 2.0, c: float = 1.0) -> HourChoice:
    """UCB1 over posting hours, from the timing arms alone (the learner's choice before the growth
    model has data; see ``ucb1_hour`` for the score).

    mean_h is the observed mean, blended with ``prior_means[h]`` (e.g. the timing predictor) as if
    the prior were worth ``prior_strength`` pulls; untried hours come in ``prior_means`` order; the
    bonus is scaled by ``reward_scale``. ``stats`` may be keyed by hour or by ``timing_arm_id(hour)``.
    """
    hours = [int(h) for h in _check_arms(hours)]
    prior_means = dict(prior_means or {})
    arm_stats = [_stats_for(stats, h) for h in hours]
    means = []
    for h, s in zip(hours, arm_stats):
        mean = s.mean if s.weight_sum > 0 else prior_means.get(h, 0.0)
        if h in prior_means and s.weight_sum > 0:
            mean = (prior_strength * prior_means[h] + s.weight_sum * mean) / (prior_strength + s.weight_sum)
        means.append(mean)
    return ucb1_hour(hours, means, [s.pulls for s in arm_stats], rng, scale=reward_scale(arm_stats), c=c)


HOUR_FLOOR = 0.20  # P(the hour is drawn uniformly from the free hours): see the module docstring for the evidence
UCB_C_MODEL = 0.3  # with model means (already pooled over hooks and neighbouring hours), a smaller bonus


def ucb1_hour(hours: Sequence[int], means: Sequence[float], pulls: Sequence[int], rng, *, scale: float,
              c: float) -> HourChoice:
    """UCB1: untried hours first (the best ``means`` among them, ties at random); then
    score = mean_h + c · scale · sqrt(2 ln N / n_h) with N the total pulls, the highest wins."""
    hours = [int(h) for h in _check_arms(hours)]
    for h in hours:
        timing_arm_id(h)
    if len(means) != len(hours) or len(pulls) != len(hours):
        raise ValueError(f"ucb1_hour: {len(hours)} hours but {len(means)} means and {len(pulls)} pull counts")
    if not (math.isfinite(scale) and scale > 0) or not (math.isfinite(c) and c >= 0):
        raise ValueError(f"ucb1_hour: scale must be > 0 and c >= 0, got scale={scale!r}, c={c!r}")
    rng = np.random.default_rng(rng)
    untried = [i for i, n in enumerate(pulls) if n <= 0]
    if untried:
        score = np.array([means[i] for i in untried], dtype=float)
        best = [untried[j] for j in np.flatnonzero(np.isclose(score, score.max(), rtol=1e-12, atol=1e-12))]
        idx = best[int(rng.integers(len(best)))] if len(best) > 1 else best[0]
        return HourChoice(hour=hours[idx], propensity=1.0 / len(best), bonus=None,
                          probabilities=_tie_probabilities(hours, best))
    total = sum(pulls)
    bonuses = [c * scale * math.sqrt(2 * math.log(total) / n) for n in pulls]
    arr = np.array(means, dtype=float) + np.array(bonuses)
    best = np.flatnonzero(np.isclose(arr, arr.max(), rtol=1e-12, atol=1e-12))
    idx = int(best[rng.integers(len(best))]) if len(best) > 1 else int(best[0])
    return HourChoice(hour=hours[idx], propensity=1.0 / len(best), bonus=bonuses[idx],
                      scores={h: float(v) for h, v in zip(hours, arr)},
                      probabilities=_tie_probabilities(hours, best))


def _tie_probabilities(hours: Sequence[int], best) -> dict[int, float]:
    """UCB1's probability of each hour: the tied best (indices ``best``) share it, the others have none."""
    return {h: (1.0 / len(best) if i in best else 0.0) for i, h in enumerate(hours)}


def with_floor(choice: HourChoice, hours: Sequence[int], floor: float, rng) -> HourChoice:
    """The hour rule with an exploration floor: with probability ``floor`` the hour is drawn uniformly
    from ``hours`` (the free hours offered), otherwise it is ``choice`` (UCB1's). Every offered hour then
    has probability >= floor / len(hours), and ``propensity`` is the mixture's probability of the hour
    taken, which is what off-policy evaluation needs:

        p(h) = floor / k + (1 - floor) * p_ucb(h)

    ``floor`` = 0 returns ``choice`` unchanged (no randomness drawn). See ``HOUR_FLOOR`` for the value."""
    hours = [int(h) for h in _check_arms(hours)]
    if not (math.isfinite(floor) and 0.0 <= floor <= 1.0):
        raise ValueError(f"hour exploration floor must be in [0, 1], got {floor!r}")
    if choice.hour not in hours:
        raise ValueError(f"with_floor: UCB1's hour {choice.hour} is not among the hours offered {hours}")
    if floor == 0.0:
        return choice
    rng = np.random.default_rng(rng)
    base = choice.probabilities or {choice.hour: 1.0}
    probs = {h: floor / len(hours) + (1.0 - floor) * base.get(h, 0.0) for h in hours}
    explored = bool(rng.random() < floor)
    hour = hours[int(rng.integers(len(hours)))] if explored else choice.hour
    return replace(choice, hour=hour, propensity=float(probs[hour]), probabilities=probs, explored=explored)


# ----------------------------------------------------------------------------- arms from a joint model

MODEL_SD_SCALE = 0.5   # Thompson draws from the model's posterior with its sd halved (see choose_arm_from_model)
MODEL_FORCE_BELOW = 3  # an arm with fewer outcomes than this is "highly uncertain" and may be forced


def choose_arm_from_model(mean: Sequence[float], cov: np.ndarray, arms: Sequence[str], pulls: Sequence[int],
                          account_age_days: float, rng, *, sd_scale: float = MODEL_SD_SCALE,
                          min_pulls: int = MODEL_FORCE_BELOW, n_mc: int = 2000,
                          logger: logging.Logger | None = None) -> ArmChoice:
    """Thompson sampling over arms whose effects have a joint Gaussian posterior (the growth model),
    with uncertainty-epsilon: while some arm has fewer than ``min_pulls`` outcomes, with probability
    ``explore_rate`` one of the least-observed arms is forced (``[BANDIT] explore forced``).

    Draws use the posterior sd × ``sd_scale``. Full-width draws keep re-trying arms whose small
    differences 240 posts cannot resolve; at this horizon that costs more than it teaches (measured
    with ``xbot bench growth``, see BENCHMARKS.md). ``propensity`` is the mixed policy's probability
    of the chosen arm (forced share + Thompson win rate from ``n_mc`` draws, the first of which is
    the choice).
    """
    arms = [str(a) for a in _check_arms(arms)]
    mean = np.asarray(mean, dtype=float)
    cov = np.asarray(cov, dtype=float)
    if mean.shape != (len(arms),) or cov.shape != (len(arms), len(arms)) or len(pulls) != len(arms):
        raise ValueError(f"choose_arm_from_model: {len(arms)} arms but mean {mean.shape}, cov {cov.shape}, "
                         f"{len(pulls)} pull counts")
    if not (np.all(np.isfinite(mean)) and np.all(np.isfinite(cov))):
        raise ValueError("choose_arm_from_model: the model's mean and covariance must be finite (refit the model)")
    if n_mc < 1 or not sd_scale > 0:
        raise ValueError(f"n_mc must be >= 1 and sd_scale > 0, got n_mc={n_mc!r}, sd_scale={sd_scale!r}")
    rng = np.random.default_rng(rng)
    fewest = min(pulls)
    under = [i for i, n in enumerate(pulls) if n < min_pulls and n == fewest]
    eps = explore_rate(account_age_days) if under else 0.0
    explore = bool(under) and rng.random() < eps
    # eigen-decomposition rather than Cholesky: a ridge posterior is PSD but may be near-singular
    vals, vecs = np.linalg.eigh(cov)
    root = vecs * np.sqrt(np.clip(vals, 0.0, None))
    draws = mean + sd_scale * rng.standard_normal((n_mc, len(arms))) @ root.T
    thompson = _win_rates(draws)
    if explore:
        idx = under[int(rng.integers(len(under)))] if len(under) > 1 else under[0]
        tagged(logger or log, "BANDIT", "explore forced", arm=arms[idx], reason="high_uncertainty")
    else:
        idx = int(draws[0].argmax())
    probs = _mixed(thompson, under, eps) if under else thompson
    return ArmChoice(arm=arms[idx], propensity=float(probs[idx]), forced=explore, explore_rate=eps,
                     probabilities={a: float(p) for a, p in zip(arms, probs)})
