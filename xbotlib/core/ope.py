"""Off-policy evaluation: the value a candidate policy would have had, estimated from logged decisions.

The data are those of a contextual bandit with ``K`` actions (here a (hook, hour) pair, see
``xbotlib.core.ope_replay``), in the shapes Open Bandit Pipeline (obp 0.5.7, ``obp.ope``) uses, so the
two can be fed the same arrays (``bench/obp_check.py`` checks the point estimates agree to 1e-12):

- ``reward`` (n,): the outcome of each logged decision (here follows at the final 24-hour read);
- ``action`` (n,) int: the index of the logged action;
- ``pscore`` (n,): the logging policy's probability of that action (stored with the decision);
- ``action_dist`` (n, K): the candidate policy's probability of every action at each decision;
- ``q_hat`` (n, K): a reward model's prediction for every action at each decision (DR only).

With the importance weight ``w_i = action_dist[i, action_i] / pscore_i``:

- IPW   V = mean(w r)                              unbiased when pscore is right and > 0 wherever the
  candidate puts mass; variance grows with the weights;
- SNIPW V = sum(w r) / sum(w)                      self-normalised: a little bias, much less variance
  when the weights' mean drifts from 1;
- DR    V = mean(sum_a pi(a) q(a) + w (r - q(a_i)))  the reward model's value plus IPW on its residuals:
  unbiased if either the propensities or the model is right, and low variance when the model is good.

Intervals are normal, value ± 1.96·SE, with the SE from each estimator's influence function (the sandwich
estimate, ``sd(psi) / sqrt(n)``): psi = w r for IPW, the per-decision DR term for DR, and
w (r − V) / mean(w) for SNIPW (the delta method for a ratio). Why not the bootstrap: it resamples the
same terms and gives the same width at these n (~240 posts) for 1000× the work; the influence-function
form also has the martingale justification an adaptive logger needs (each weight is computed from the
propensity known at the decision, so the terms are martingale differences — the CLT holds as long as the
weights stay bounded, which the overlap diagnostics watch).

Overlap: ``overlap`` reports the effective sample size (sum w)² / sum w², the largest weight, and the share
of the candidate's probability on actions the logger never took in these data. When that share is large
or the ESS small, IPW and SNIPW cannot see what the candidate would do, and DR leans on its reward model
there: the estimates are then a model's extrapolation, not evidence (``warnings`` says so).

DR's reward model (``crossfit_q_hat``): a Poisson regression of follows on hook and hour with the log follower
base as offset (the growth model's form and fitting routine), cross-fitted over 5 folds. A linear ridge on the
same features plus the follower count was the first choice; on 60-day sandbox logs it left DR biased low
(−0.30 follows/post for the random candidate, 0 of 4 seeds covered: BENCHMARKS.md), because follows scale
multiplicatively with reach and a linear model extrapolates badly to the hours the logger rarely used.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from xbotlib.core import growth_model

Z95 = 1.959963984540054  # the normal 97.5% quantile: two-sided 95% intervals
ESTIMATORS = ("DR", "IPW", "SNIPW")
# overlap thresholds for a warning: fewer than 10% of the decisions' worth of effective sample, or more
# than 5% of the candidate's mass where the logger never went (a rule of thumb, not a test)
MIN_ESS_SHARE = 0.10
MAX_OFF_SUPPORT = 0.05


@dataclass(frozen=True)
class Estimate:
    """One estimator's value per decision with its standard error and 95% interval."""
    estimator: str
    value: float
    se: float
    ci_low: float
    ci_high: float
    n: int


@dataclass(frozen=True)
class Overlap:
    """How well the logged decisions cover the candidate: ``ess`` (effective sample size of the weights),
    ``max_weight``, ``off_support`` (mean share of the candidate's probability on actions never logged)."""
    n: int
    ess: float
    max_weight: float
    mean_weight: float
    off_support: float


def check_inputs(reward, action, pscore, action_dist, q_hat=None) -> tuple[np.ndarray, ...]:
    """The arrays as float/int numpy arrays of matching shapes; a ValueError naming the bad input otherwise."""
    reward = np.asarray(reward, dtype=float)
    action = np.asarray(action)
    pscore = np.asarray(pscore, dtype=float)
    action_dist = np.asarray(action_dist, dtype=float)
    if reward.ndim != 1 or reward.size == 0:
        raise ValueError(f"reward must be a non-empty 1-d array, got shape {reward.shape}")
    n = reward.size
    if action.shape != (n,) or pscore.shape != (n,):
        raise ValueError(f"action and pscore must have shape ({n},) like reward, got {action.shape} and {pscore.shape}")
    if action_dist.ndim != 2 or action_dist.shape[0] != n:
        raise ValueError(f"action_dist must have shape ({n}, K), got {action_dist.shape}")
    if not np.issubdtype(action.dtype, np.integer):
        raise ValueError(f"action must hold integer action indices, got dtype {action.dtype}")
    k = action_dist.shape[1]
    if action.min() < 0 or action.max() >= k:
        raise ValueError(f"action indices must be in 0..{k - 1} (K = action_dist.shape[1]), found {int(action.max())}")
    if not np.all(np.isfinite(reward)):
        raise ValueError("reward has a missing or infinite value: drop the decisions without a final outcome")
    bad = ~((pscore > 0) & (pscore <= 1))
    if bad.any():
        raise ValueError(f"pscore must be in (0, 1], found {float(pscore[bad][0])!r} at decision {int(np.argmax(bad))}: "
                         "a logged action needs the probability it was chosen with")
    if np.any(action_dist < -1e-12) or not np.allclose(action_dist.sum(axis=1), 1.0, atol=1e-6):
        raise ValueError("action_dist rows must be probability distributions (non-negative, summing to 1)")
    out = (reward, action.astype(int), pscore, action_dist)
    if q_hat is not None:
        q_hat = np.asarray(q_hat, dtype=float)
        if q_hat.shape != action_dist.shape or not np.all(np.isfinite(q_hat)):
            raise ValueError(f"q_hat must be finite with the shape of action_dist {action_dist.shape}, got {q_hat.shape}")
        out += (q_hat,)
    return out


def importance_weights(action, pscore, action_dist) -> np.ndarray:
    """w_i = candidate's probability of the logged action / logger's probability of it, shape (n,)."""
    action = np.asarray(action, dtype=int)
    return np.asarray(action_dist, dtype=float)[np.arange(action.size), action] / np.asarray(pscore, dtype=float)


def _estimate(name: str, value: float, psi: np.ndarray) -> Estimate:
    n = psi.size
    se = float(np.std(psi, ddof=1) / math.sqrt(n)) if n > 1 else math.nan
    return Estimate(name, float(value), se, float(value - Z95 * se), float(value + Z95 * se), n)


def ipw(reward, action, pscore, action_dist) -> Estimate:
    """Inverse propensity weighting: mean(w r)."""
    reward, action, pscore, action_dist = check_inputs(reward, action, pscore, action_dist)
    psi = importance_weights(action, pscore, action_dist) * reward
    return _estimate("IPW", psi.mean(), psi)


def snipw(reward, action, pscore, action_dist) -> Estimate:
    """Self-normalised IPW: sum(w r) / sum(w); 0 weight everywhere (the candidate never takes a logged
    action) has no estimate and raises."""
    reward, action, pscore, action_dist = check_inputs(reward, action, pscore, action_dist)
    w = importance_weights(action, pscore, action_dist)
    if w.sum() <= 0:
        raise ValueError("SNIPW: the candidate gives probability 0 to every logged action (no overlap at all)")
    value = float((w * reward).sum() / w.sum())
    return _estimate("SNIPW", value, w * (reward - value) / w.mean())


def dr(reward, action, pscore, action_dist, q_hat) -> Estimate:
    """Doubly robust: mean over decisions of sum_a pi(a) q(a) + w (r − q(logged action))."""
    reward, action, pscore, action_dist, q_hat = check_inputs(reward, action, pscore, action_dist, q_hat)
    w = importance_weights(action, pscore, action_dist)
    idx = np.arange(reward.size)
    psi = (action_dist * q_hat).sum(axis=1) + w * (reward - q_hat[idx, action])
    return _estimate("DR", psi.mean(), psi)


def overlap(action, pscore, action_dist) -> Overlap:
    """Overlap diagnostics of the candidate's weights on these logged decisions (see the module docstring)."""
    action = np.asarray(action, dtype=int)
    action_dist = np.asarray(action_dist, dtype=float)
    w = importance_weights(action, pscore, action_dist)
    logged = np.zeros(action_dist.shape[1], dtype=bool)
    logged[np.unique(action)] = True
    ess = float(w.sum() ** 2 / (w ** 2).sum()) if (w ** 2).sum() > 0 else 0.0
    return Overlap(n=int(action.size), ess=ess, max_weight=float(w.max()), mean_weight=float(w.mean()),
                   off_support=float(action_dist[:, ~logged].sum(axis=1).mean()))


def warnings(ov: Overlap) -> list[str]:
    """Plain-language warnings when the logged decisions cannot support the candidate's estimate."""
    out = []
    if ov.off_support > MAX_OFF_SUPPORT:
        out.append(f"the candidate puts {ov.off_support:.0%} of its probability on (hook, hour) actions the logger "
                   "never took: IPW/SNIPW cannot see those, and DR there is the reward model's guess")
    if ov.ess < MIN_ESS_SHARE * ov.n:
        out.append(f"effective sample size {ov.ess:.1f} of {ov.n} decisions (max weight {ov.max_weight:.1f}): "
                   "a few decisions carry the estimate; its interval is optimistic")
    if abs(ov.mean_weight - 1.0) > 0.2:
        out.append(f"the weights average {ov.mean_weight:.2f} (1 expected): the candidate rarely agrees with the "
                   "logger, or the propensities are off; prefer SNIPW or DR to IPW")
    return out


def evaluate(reward, action, pscore, action_dist, q_hat) -> tuple[list[Estimate], Overlap]:
    """DR, IPW and SNIPW (in ``ESTIMATORS`` order) with the overlap diagnostics."""
    ests = [dr(reward, action, pscore, action_dist, q_hat), ipw(reward, action, pscore, action_dist)]
    try:
        ests.append(snipw(reward, action, pscore, action_dist))
    except ValueError:  # no overlap at all: SNIPW is undefined, the warnings say why
        ests.append(Estimate("SNIPW", math.nan, math.nan, math.nan, math.nan, int(np.size(reward))))
    return ests, overlap(action, pscore, action_dist)


# ----------------------------------------------------------------------------- the reward model for DR

def ridge_fit(x: np.ndarray, y: np.ndarray, alpha: float = 1.0) -> np.ndarray:
    """Ridge coefficients (intercept first, not penalised) of y on x; x (n, p), y (n,) -> (p + 1,)."""
    x = np.column_stack([np.ones(len(x)), np.asarray(x, dtype=float)])
    pen = alpha * np.eye(x.shape[1])
    pen[0, 0] = 0.0
    return np.linalg.solve(x.T @ x + pen, x.T @ np.asarray(y, dtype=float))


def ridge_predict(coef: np.ndarray, x: np.ndarray) -> np.ndarray:
    return coef[0] + np.asarray(x, dtype=float) @ coef[1:]


def poisson_fit(x: np.ndarray, y: np.ndarray, offset: np.ndarray, prior_sd: float = 1.0) -> np.ndarray:
    """Coefficients (intercept first) of y ~ Poisson(exp(b0 + x·b + offset)), effects shrunk by N(0, prior_sd²):
    ``growth_model.fit_poisson``, the learner's own fitting routine."""
    x = np.column_stack([np.ones(len(x)), np.asarray(x, dtype=float)])
    return growth_model.fit_poisson(x, np.asarray(y, dtype=float), np.asarray(offset, dtype=float), prior_sd).beta


def crossfit_q_hat(features_by_action: np.ndarray, action, reward, *, offset=None, model: str = "poisson",
                   n_folds: int = 5, seed: int = 0, alpha: float = 1.0) -> np.ndarray:
    """q_hat (n, K): each decision's predicted reward under every action, from a model of reward on the logged
    action's features, cross-fitted: decision i's predictions come from a model fitted on the other folds,
    so DR's residuals are honest (the same model on its own data would shrink them).

    ``features_by_action`` (n, K, p): the features of each decision under each action (one-hot hook and hour,
    ``ope_replay.action_features``). ``model``: "poisson" (default) — follows are counts whose mean scales with
    the follower base, so a log link with ``offset`` = log(followers) (n,), the growth model's form;
    "ridge" — a linear ridge (``alpha``) with ``offset`` ignored (add the base as a feature instead).
    """
    if model not in ("poisson", "ridge"):
        raise ValueError(f"reward model must be 'poisson' or 'ridge', got {model!r}")
    feats = np.asarray(features_by_action, dtype=float)
    action = np.asarray(action, dtype=int)
    reward = np.asarray(reward, dtype=float)
    n = reward.size
    offset = np.zeros(n) if offset is None else np.asarray(offset, dtype=float)
    logged = feats[np.arange(n), action]
    folds = np.random.default_rng(seed).permutation(n) % max(1, min(n_folds, n))
    q_hat = np.empty(feats.shape[:2])
    for f in np.unique(folds):
        test, train = folds == f, folds != f
        if not train.any():  # one decision only: fit on it (nothing else to learn from)
            train = test
        flat = feats[test].reshape(-1, feats.shape[2])
        if model == "ridge":
            q_hat[test] = ridge_predict(ridge_fit(logged[train], reward[train], alpha), flat).reshape(test.sum(), -1)
        elif reward[train].sum() <= 0:  # no follows at all to learn from (a young account): the model says 0
            q_hat[test] = 0.0
        else:
            coef = poisson_fit(logged[train], reward[train], offset[train])
            q_hat[test] = np.exp(ridge_predict(coef, flat).reshape(test.sum(), -1) + offset[test][:, None])
    return q_hat
