"""The noise-aware ideal: the best learner this sandbox allows, short of knowing its answers.

It is the ceiling column of ``xbot bench growth``: it knows everything about the sandbox except the
values a learner is there to learn, so the gap between it and the oracle is the price of the noise
(no learner can close it), and the gap between xbot and it is what a better learner could still win.
Benchmarks only, like the oracle: it reads the scenario, so the product never uses it.

What it knows (read from the scenario, or the sandbox's code: ``audience.expected_outcome`` and
``audience.draw_totals``, docs/SCENARIO.md "How a post is simulated")
-----------------------------------------------------------------------------------------------
- The functional form of an original post's expected counts: profile visits =
  (followers × ``impressions_per_follower`` + ``discovery_impressions``) × a hook factor × a topic
  factor × an hour factor (``hours.reach[h]`` × ``hours.quality[h]`` × the late-evening marker's
  multipliers), and P(follow | visit) = a hook factor × a topic factor × a late-evening factor (the
  hour changes reach and quality, never the follow-through, except through the late_evening_slot
  marker the audience reads from the hour). Expected follows are the product of the two.
- The exact noise: visits are Poisson around their expectation times two independent mean-one gamma
  shocks, reach (shape ``reach.dispersion``) and quality (shape ``rates.dispersion``); follows are a
  binomial thinning of the visits with the follow probability times a third gamma shock (shape
  ``rates.dispersion``). Its likelihood is that mixture, integrated by generalised Gauss–Laguerre
  quadrature (``QUADRATURE_NODES`` per gamma), not a Poisson with a fitted dispersion.

- Where each of the scenario's interactions applies (``[interactions]``: the hook and its hours, or
  the hook and its topic), not how large it is.

What it learns (from ``state.outcomes`` only, never from the scenario)
----------------------------------------------------------------------
Every effect value: each hook's, each topic's (no topic is a category of its own), each of the 24
hours' (each hour its own effect, no harmonic form), the late-evening follow-through factor, each
interaction's, and the two base rates. The model is log-linear in those categorical effects with the
known offset. Priors (beliefs about effect sizes, fixed here, not read from any scenario): each effect
N(0, ``VISIT_PRIOR_SD``²) on visits and N(0, ``FOLLOW_PRIOR_SD``²) on the follow-through, the sizes
xbot's growth model also assumes (so the two differ in what they know of the world, not in their
priors); the 24 hour effects are correlated between neighbouring hours (``hour_prior_cov``: an hour
learns from the hours beside it, as audiences do not jump from hour to hour, while any curve can
still be learned); the base rates flat. The posterior is the Laplace approximation at the mode
(Newton's method; the likelihood is log-concave in each post's linear predictor, a gamma scale mixture
of a log-concave count model). The visits part and the follow-through part share no parameter, so
their posteriors are independent.

How it chooses (the same rules as every policy, ``xbotlib.core.policies``)
---------------------------------------------------------------------------
Thompson sampling on the expected follows of a fresh post: one draw from the posterior, then the
(allowed hook, offered hour) pair with the highest drawn log expected follows (``allowed_hooks(state,
hooks)``, the hours the plan offers). The draw is taken at ``DRAW_SD_SCALE`` × the posterior sd:
full-width Thompson sampling explores too long for a 60-day campaign. Measured with
bench/screen_policies.py's campaign on the default scenario, 30 paired seeds (0–29), hours independent:
ratio to the oracle 0.81 at full width, 0.84 at 0.5, 0.85 at 0.35, 0.86 at 0.25; on seeds 30–59, 0.81
at 0.25 and 0.80 at 0.1 (too narrow: it locks in early); xbot 0.82 on both. The hour correlation
(``HOUR_PRIOR_LENGTH`` 2 h against 0, at 0.3) measured 0.857 against 0.840 on seeds 0–29, and
0.873 against 0.818 on evening_contrarian (xbot 0.865). A hook × topic interaction counts for the share of posts on
its topic (the planner rotates the topics). The propensities are the shares of ``PROPENSITY_DRAWS``
more draws (the choosing draw included, so never 0) that pick the same hook, resp. hour: honest, and
in (0, 1].

Why it is a ceiling, and how far it is one
------------------------------------------
With the structure and noise exactly right, its posterior is the most a learner with these priors can
know from the same outcomes, and Thompson sampling is a near-optimal way to act on it. It is *not*
the Bayes-optimal policy, and it is a ceiling only up to that: Thompson sampling has its own regret
(it explores in proportion to its doubt, not by the value of the information, and the width above is
tuned on the screen, not derived), the Laplace posterior is an approximation, and a learner whose
priors happen to fit a scenario better (smoother hour curves, say) can match or beat it there by a
few points. It keeps to the information every policy gets: the outcomes of ``PlanState`` (hook,
topic, hour, final profile visits and follows, follower base), not impressions or engagement. Parts
of the real bench's world the outcomes do not show it treats as noise, as any learner must: the
hashtag_1 and question_cta markers (assigned at random by the experiments, independent of the hook
and hour), fatigue from repeated texts (it scores fresh posts), replies, and the Poisson noise of
impressions (relative variance ~1/E[impressions], under 0.5% of the gamma shocks'). The cap
P(follow | visit) ≤ 1 is ignored (scenarios are refused where it could bind). It needs the profile visits X's
analytics reports: without them (``bench growth --analytics off``) it learns nothing from the outcomes.

This is the **stationary** ceiling. A drifting scenario (``[drift]``: steps, trends, a weekly cycle)
changes effects with the post's time, and a post's time is not in its outcome (``PostOutcome`` has no
posting day), so knowing a step's day would not tell the ideal which outcomes came before it. In a
drifting world it learns as if the world stood still; it is then a reference, not an upper bound.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
from scipy.special import gammaln, logsumexp, roots_genlaguerre

from xbotlib.core.growth_model import PostOutcome, newton_ascent
from xbotlib.core.policies import PlanChoice, PlanState, allowed_hooks
from xbotlib.core.vocab import HOOK_PATTERNS, LATE_EVENING_HOURS
from xbotlib.sim.scenario import Scenario, interaction_applies, load_scenario

VISIT_PRIOR_SD = 0.3       # hook, topic and hour effects on profile visits (log scale)
FOLLOW_PRIOR_SD = 0.15     # hook, topic and late-evening effects on P(follow | visit) (log scale)
FLAT_PRECISION = 1e-4      # the base rates: all but flat
QUADRATURE_NODES = 12      # per gamma shock; 12 nodes integrate its moments to 1e-9
PROPENSITY_DRAWS = 1000
HOUR_PRIOR_LENGTH = 2.0   # hours: the prior's correlation length between hour effects (hour_prior_cov)
DRAW_SD_SCALE = 0.3        # Thompson draws at this share of the posterior sd (module docstring: measured)
HOURS = 24
_P_MAX = 1.0 - 1e-9        # a follow probability must stay below 1 for the binomial's log


@dataclass(frozen=True)
class Shape:
    """Where one of the scenario's interactions applies (its hook, and its hours or its topic; ``none``: no
    topic), without its multipliers."""
    hook: str
    hours: frozenset[int] | None = None
    topic: str | None = None

    def applies(self, hook: str, topic: str | None, hour: int) -> bool:
        return interaction_applies(self.hook, self.hours, self.topic, hook, topic, hour)


@dataclass(frozen=True)
class Knowledge:
    """What the ideal reads from a scenario: the reach offset's constants, the three gamma shapes and
    where each interaction applies. No effect value: no hook, topic, hour, experiment or interaction
    multiplier."""
    impressions_per_follower: float
    discovery_impressions: float
    reach_shape: float
    quality_shape: float
    interactions: tuple[Shape, ...] = ()

    @classmethod
    def of(cls, scenario: Scenario) -> "Knowledge":
        shapes = tuple(Shape(i.hook, i.hours, i.topic) for i in scenario.interactions)
        return cls(scenario.reach.impressions_per_follower, scenario.reach.discovery_impressions,
                   scenario.reach.dispersion, scenario.rates.dispersion, shapes)

    def log_reach(self, followers: np.ndarray) -> np.ndarray:
        """log of a post's base reach: the known offset of its expected visits."""
        return np.log(np.maximum(followers, 0.0) * self.impressions_per_follower + self.discovery_impressions)


def gamma_nodes(shape: float, n: int = QUADRATURE_NODES) -> tuple[np.ndarray, np.ndarray]:
    """Nodes and log weights integrating over a mean-one gamma of ``shape``: E[f(G)] ≈ Σ exp(logw) f(x).

    Generalised Gauss–Laguerre integrates x^(shape−1) e^(−x) exactly against polynomials; G = x / shape.
    """
    if not shape > 0:
        raise ValueError(f"gamma shape must be > 0, got {shape!r} (the scenario's dispersion)")
    x, w = roots_genlaguerre(n, shape - 1.0)
    return x / shape, np.log(w) - gammaln(shape)


# ----------------------------------------------------------------------------- the model

@dataclass(frozen=True)
class Design:
    """Columns of the two parts. visits: base, hooks, topics (+ no topic), 24 hours, one per interaction.
    follow-through: base, hooks, topics (+ no topic), late evening, one per interaction."""
    topics: tuple[str, ...]
    interactions: tuple[Shape, ...] = ()

    @property
    def n_topic(self) -> int:
        return len(self.topics) + 1

    def hook_col(self, hook: str) -> int:
        return 1 + HOOK_PATTERNS.index(hook)

    def topic_col(self, topic: str | None) -> int:
        start = 1 + len(HOOK_PATTERNS)
        return start + (self.topics.index(topic) if topic in self.topics else len(self.topics))

    def hour_col(self, hour: int) -> int:  # visits part
        return 1 + len(HOOK_PATTERNS) + self.n_topic + int(hour)

    @property
    def late_col(self) -> int:  # follow-through part
        return 1 + len(HOOK_PATTERNS) + self.n_topic

    def visits_inter_col(self, i: int) -> int:
        return 1 + len(HOOK_PATTERNS) + self.n_topic + HOURS + i

    def follow_inter_col(self, i: int) -> int:
        return 2 + len(HOOK_PATTERNS) + self.n_topic + i

    @property
    def n_visits(self) -> int:
        return 1 + len(HOOK_PATTERNS) + self.n_topic + HOURS + len(self.interactions)

    @property
    def n_follow(self) -> int:
        return 2 + len(HOOK_PATTERNS) + self.n_topic + len(self.interactions)

    def matrices(self, posts: Sequence[PostOutcome]) -> tuple[np.ndarray, np.ndarray]:
        xv, xf = np.zeros((len(posts), self.n_visits)), np.zeros((len(posts), self.n_follow))
        for i, p in enumerate(posts):
            for x in (xv, xf):
                x[i, 0] = x[i, self.hook_col(p.hook)] = x[i, self.topic_col(p.topic)] = 1.0
            xv[i, self.hour_col(p.hour)] = 1.0
            xf[i, self.late_col] = float(int(p.hour) in LATE_EVENING_HOURS)
            for j, shape in enumerate(self.interactions):
                if shape.applies(p.hook, p.topic if p.topic in self.topics else None, p.hour):
                    xv[i, self.visits_inter_col(j)] = xf[i, self.follow_inter_col(j)] = 1.0
        return xv, xf

    def prior_precisions(self) -> tuple[np.ndarray, np.ndarray]:
        """Prior precision matrices of the two parts: base rates all but flat, every effect N(0, sd²), the
        24 hours jointly (``hour_prior_cov``)."""
        v = np.diag(np.r_[FLAT_PRECISION, np.full(self.n_visits - 1, VISIT_PRIOR_SD ** -2.0)])
        f = np.diag(np.r_[FLAT_PRECISION, np.full(self.n_follow - 1, FOLLOW_PRIOR_SD ** -2.0)])
        hours = slice(self.hour_col(0), self.hour_col(0) + HOURS)
        v[hours, hours] = np.linalg.inv(hour_prior_cov())
        return v, f

    def weights(self, hooks: Sequence[str], hours: Sequence[int]) -> np.ndarray:
        """(interactions, hooks, hours): how much of each interaction's effect a post with that hook at that
        hour can expect. A hook × hour one applies or not; a hook × topic one applies to the share of posts
        on its topic (the planner rotates the vocabulary's topics, so 1 / their number; none: 0)."""
        w = np.zeros((len(self.interactions), len(hooks), len(hours)))
        for j, shape in enumerate(self.interactions):
            for a, hook in enumerate(hooks):
                for b, hour in enumerate(hours):
                    if shape.hours is not None:
                        w[j, a, b] = float(shape.applies(hook, None, hour))
                    elif hook == shape.hook and shape.topic in self.topics:
                        w[j, a, b] = 1.0 / len(self.topics)
        return w


def hour_prior_cov(length: float | None = None) -> np.ndarray:
    """Prior covariance of the 24 hour effects: sd ``VISIT_PRIOR_SD`` each; neighbouring hours correlated,
    exp(−d²/2ℓ²) at a circular distance of d hours (ℓ = ``HOUR_PRIOR_LENGTH``; 0: independent), a tenth
    of the variance always each hour's own, so any curve can be learned."""
    length = HOUR_PRIOR_LENGTH if length is None else length
    d = np.abs(np.subtract.outer(np.arange(HOURS), np.arange(HOURS)))
    d = np.minimum(d, HOURS - d)
    corr = np.exp(-0.5 * (d / length) ** 2) if length > 0 else np.eye(HOURS)
    return VISIT_PRIOR_SD ** 2 * (0.9 * corr + 0.1 * np.eye(HOURS))


@dataclass(frozen=True)
class Gaussian:
    mean: np.ndarray
    cov: np.ndarray


def _visit_terms(eta, visits, log_z, log_w):
    """Per post: log-likelihood (up to a constant), its first derivative and minus its second in eta,
    for visits ~ Poisson(exp(eta) · Z), Z the product of the two gamma shocks (nodes log_z, log_w)."""
    mu = np.exp(np.clip(eta[:, None] + log_z[None, :], -50, 50))
    terms = log_w[None, :] + visits[:, None] * (eta[:, None] + log_z[None, :]) - mu
    ll = logsumexp(terms, axis=1)
    r = np.exp(terms - ll[:, None])  # each node's posterior weight for the post
    d = visits[:, None] - mu
    g = np.sum(r * d, axis=1)
    h = np.sum(r * mu, axis=1) - (np.sum(r * d * d, axis=1) - g * g)
    return ll, g, h


def _follow_terms(phi, follows, visits, log_y, log_w):
    """The same for follows ~ Binomial(visits, exp(phi) · Y), Y the follow-through's gamma shock."""
    lp = np.minimum(phi[:, None] + log_y[None, :], math.log(_P_MAX))
    p = np.exp(lp)
    rest = (visits - follows)[:, None]
    terms = log_w[None, :] + follows[:, None] * lp + rest * np.log1p(-p)
    ll = logsumexp(terms, axis=1)
    r = np.exp(terms - ll[:, None])
    d = follows[:, None] - rest * p / (1.0 - p)
    g = np.sum(r * d, axis=1)
    h = np.sum(r * rest * p / (1.0 - p) ** 2, axis=1) - (np.sum(r * d * d, axis=1) - g * g)
    return ll, g, h


def laplace(X: np.ndarray, offset: np.ndarray, terms, prior_precision: np.ndarray, start: float, *, max_iter: int = 60,
            tol: float = 1e-9) -> Gaussian:
    """Posterior mode and Laplace covariance of beta for per-post log-likelihoods ``terms(X·beta + offset)``
    (returning values, first derivatives and minus second derivatives), beta ~ N(0, prior_precision⁻¹).

    Newton's method with step halving; the objective is concave (see the module docstring), so it
    converges; it starts with every effect at 0 and the base rate at ``start`` (the data's mean rate, so
    few steps are needed)."""
    precision = prior_precision
    beta = np.zeros(X.shape[1])

    def objective(b):
        return float(np.sum(terms(X @ b + offset)[0]) - 0.5 * float(b @ precision @ b))

    beta[0] = start

    def newton_step(b):
        _, g, h = terms(X @ b + offset)
        grad = X.T @ g - precision @ b
        hess = (X * np.maximum(h, 0.0)[:, None]).T @ X + precision
        return np.linalg.solve(hess, grad)

    beta = newton_ascent(objective, newton_step, beta, max_iter=max_iter, tol=tol, min_step=1e-6)
    _, _, h = terms(X @ beta + offset)
    hess = (X * np.maximum(h, 0.0)[:, None]).T @ X + precision
    cov = np.linalg.inv(hess)
    return Gaussian(beta, (cov + cov.T) / 2)


@dataclass(frozen=True)
class Posterior:
    """What the ideal believes after some outcomes: the two independent parts' Gaussians."""
    design: Design
    visits: Gaussian
    follow: Gaussian

    def draws(self, hooks: Sequence[str], hours: Sequence[int], n: int, rng: np.random.Generator,
              sd_scale: float = 1.0) -> np.ndarray:
        """``n`` draws of each (hook, hour)'s log expected follows, up to a common constant: shape
        (n, len(hooks), len(hours)). Each draw is the posterior mean plus ``sd_scale`` × a posterior deviation."""
        d, m = self.design, len(self.design.interactions)
        v_idx = ([d.hook_col(h) for h in hooks] + [d.hour_col(h) for h in hours]
                 + [d.visits_inter_col(j) for j in range(m)])
        f_idx = [d.hook_col(h) for h in hooks] + [d.late_col] + [d.follow_inter_col(j) for j in range(m)]
        v = _sample(self.visits, v_idx, n, rng, sd_scale)
        f = _sample(self.follow, f_idx, n, rng, sd_scale)
        k, t = len(hooks), len(hours)
        late = np.array([float(h in LATE_EVENING_HOURS) for h in hours])
        hook = v[:, :k] + f[:, :k]
        hour = v[:, k:k + t] + f[:, k:k + 1] * late[None, :]
        inter = v[:, k + t:] + f[:, k + 1:]                       # (n, m)
        joint = hook[:, :, None] + hour[:, None, :]
        if m:
            joint = joint + np.einsum("nj,jab->nab", inter, d.weights(hooks, hours))
        return joint


def _sample(g: Gaussian, idx: list[int], n: int, rng: np.random.Generator, sd_scale: float = 1.0) -> np.ndarray:
    cov = g.cov[np.ix_(idx, idx)]
    chol = np.linalg.cholesky(cov + 1e-12 * np.eye(len(idx)))
    return g.mean[idx][None, :] + sd_scale * (rng.standard_normal((n, len(idx))) @ chol.T)


def posterior(posts: Sequence[PostOutcome], known: Knowledge, topics: Sequence[str]) -> Posterior:
    """The ideal's posterior after ``posts`` (none: the prior) in a world it knows as ``known``, for an
    account whose vocabulary has ``topics``."""
    design = Design(tuple(topics), known.interactions)
    xv, xf = design.matrices(posts)
    visits = np.array([p.profile_visits for p in posts], float)
    follows = np.array([p.follows for p in posts], float)
    offset = known.log_reach(np.array([p.followers for p in posts], float))
    g1, w1 = gamma_nodes(known.reach_shape)
    g2, w2 = gamma_nodes(known.quality_shape)
    log_z = np.log(np.outer(g1, g2)).ravel()  # nodes of the product of the two shocks
    log_wz = np.add.outer(w1, w2).ravel()
    y, wy = gamma_nodes(known.quality_shape)
    vprior, fprior = design.prior_precisions()
    vstart = math.log(max(visits.sum(), 0.5) / max(np.exp(offset).sum(), 1.0))  # the shocks have mean 1
    vpost = laplace(xv, offset, lambda eta: _visit_terms(eta, visits, log_z, log_wz), vprior, vstart)
    seen = visits > 0  # a post without visits says nothing about the follow-through
    fpost = laplace(xf[seen], np.zeros(int(seen.sum())),
                    lambda phi: _follow_terms(phi, follows[seen], visits[seen], np.log(y), wy), fprior,
                    math.log(min(0.5, max(follows.sum(), 0.5) / max(visits.sum(), 1.0))))
    return Posterior(design, vpost, fpost)


# ----------------------------------------------------------------------------- the policy

class IdealPolicy:
    """Thompson sampling on the correctly specified posterior (module docstring)."""
    name = "ideal"

    def __init__(self, known: Knowledge, sd_scale: float = DRAW_SD_SCALE):
        self.known, self.sd_scale = known, sd_scale
        self._last: tuple[tuple, Posterior] | None = None  # a day's plans share their outcomes: fit once

    def belief(self, state: PlanState) -> Posterior:
        """The posterior after ``state.outcomes`` (the last one again when they have not changed)."""
        key = (tuple(state.outcomes), tuple(state.vocabulary.topics))
        if self._last is None or self._last[0] != key:
            self._last = (key, posterior(key[0], self.known, key[1]))
        return self._last[1]

    def choose(self, state: PlanState, hooks, hours, rng: np.random.Generator) -> PlanChoice:
        hooks, hours = allowed_hooks(state, hooks), [int(h) for h in hours]
        if not hours:
            raise ValueError("ideal policy: no hour offered (expected at least one free posting hour)")
        joint = self.belief(state).draws(hooks, hours, PROPENSITY_DRAWS, rng, self.sd_scale)
        pick = np.argmax(joint.reshape(len(joint), -1), axis=1)
        hook_pick, hour_pick = pick // len(hours), pick % len(hours)
        k, h = int(hook_pick[0]), int(hour_pick[0])  # the choosing draw; the others measure its probability
        return PlanChoice(hooks[k], float(np.mean(hook_pick == k)), hours[h], float(np.mean(hour_pick == h)))


def make_ideal(scenario: Scenario | str | Path | None = None, **_options) -> IdealPolicy:
    """The ideal learner of ``scenario``'s world (the default scenario when None)."""
    world = scenario if isinstance(scenario, Scenario) else load_scenario(scenario)
    return IdealPolicy(Knowledge.of(world))
