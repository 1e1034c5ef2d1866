"""What a team would use instead of xbot's learner: off-the-shelf bandit libraries as plan policies.

Benchmarks only (``xbot bench growth --policies xbot,mabwiser_ts,mabwiser_lin,vw``); the product never
needs them, so the libraries are an optional extra (``pip install -e '.[bench]'``) imported when a policy
is built. They live beside the oracle in ``sim`` because a simulated campaign builds its policy from
``xbotlib.sim.policies``, which may import only the simulator and the core (tests/test_architecture.py).

The rules are xbot's (``xbotlib.core.policies``): choose among ``allowed_hooks(state, hooks)`` and the
``hours`` offered (the free slots), learn only from ``state.outcomes`` (the account's posts with final
counts, in posting order) and draw every random choice from the campaign's ``rng`` (the library's own
generator is seeded from it), so a campaign's seed fixes its run.

Arms and propensities. Each policy picks a (hook, hour) pair jointly; ``PlanChoice`` stores the hook's
marginal probability and the hour's probability given that hook, so their product is the probability of
the pair, as for xbot (which draws them independently). Where the library gives the choice distribution
(Vowpal Wabbit's pmf) it is logged as is. For the Thompson-type policies it has no closed form: the
policy draws ``DRAWS`` Thompson samples from the library, counts how often each pair wins, and draws its
choice from those frequencies, so the logged propensity is exactly the probability the choice was drawn
with (never 0; within about ±0.02 of the Thompson rule's own probability at ``DRAWS`` = 500).

- ``mabwiser_ts``: MABWiser ``ThompsonSampling`` over the hook x hour pairs (48 arms on the default
  eight hours). MABWiser's Thompson sampling is Beta-Bernoulli (it needs 0/1 rewards), so a post counts
  as a success when its follows per follower beat the median of the account's posts so far: a post
  "better than usual", per follower so that a growing account's later posts are not all successes. For
  Poisson-like counts the chance of beating a fixed threshold rises with the mean, so the best pair in
  follows is the best in success rate.
- ``mabwiser_lin``: MABWiser ``LinTS`` (linear Thompson sampling, its defaults alpha = 1, l2 = 1) on
  the post's features: hook (one-hot), the hour's two harmonics (``features.hour_harmonics``, as the
  growth model), and as controls the topic (one-hot), novelty and the follower base in thousands;
  reward: the post's follows. One shared model (a single MABWiser arm) scores every candidate pair, so
  a post at one hour teaches every hook and a post with one hook every hour. A candidate is scored as a
  fresh post (novelty 1) on no particular topic (the topic is chosen after the hook, by rotation).
  MABWiser samples the coefficients afresh for each scored row, so each pair's score is a draw from its
  own posterior (not one draw shared by all pairs).
- ``vw``: Vowpal Wabbit ``--cb_explore_adf --epsilon 0.1`` (between VW's default 0.05 and its
  tutorial's 0.2): each allowed pair an action (features: hook, hour, hour harmonics), the post's topic,
  novelty and follower base shared; cost = −follows. ``PostOutcome`` holds no propensity, so every
  logged post is learned with probability 1: with VW's default ``mtr`` cost model that is a regression of
  the cost on the chosen action's features, which is what a team without logged propensities gets.
  The model is learned afresh from the outcomes in posting order at each choice, one pass: the same
  examples in the same order as an online learner that kept its state.

Before the first outcome the two MABWiser policies are uniform over the allowed pairs (what their
symmetric priors give); VW runs as it is (with no data, epsilon-greedy on equal costs).
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

from xbotlib.core import vocab
from xbotlib.core.features import hour_harmonics
from xbotlib.core.policies import PlanChoice, PlanState, allowed_hooks

EXTRA = "bench"
INSTALL = f"pip install -e '.[{EXTRA}]'"
DRAWS = 500           # Thompson samples per choice: the logged propensity is exact for the drawn choice; 500
                      # keeps a choice at ~30 ms (MABWiser builds a dict per sample) and its frequencies within ~0.02
VW_EPSILON = 0.1


class MissingDependency(RuntimeError):
    """A library policy was asked for without its library installed."""


def require(policy: str) -> None:
    """Import the library ``policy`` needs, or raise ``MissingDependency`` naming the extra to install."""
    module = {"mabwiser_ts": "mabwiser", "mabwiser_lin": "mabwiser", "vw": "vowpalwabbit"}[policy]
    try:
        # imported on demand: the library is a bench-only extra the product must run without
        __import__(module)
    except ImportError as exc:
        raise MissingDependency(f"policy {policy!r} needs the {module} package, a bench-only extra: "
                                f"install it with `{INSTALL}` (from the repository root)") from exc


def _pairs(state: PlanState, hooks: Sequence[str], hours: Sequence[int]) -> list[tuple[str, int]]:
    return [(h, int(t)) for h in allowed_hooks(state, hooks) for t in hours]


def _choice(pairs: list[tuple[str, int]], probs: np.ndarray, rng: np.random.Generator) -> PlanChoice:
    """Draw a pair from ``probs`` (over ``pairs``); the hook's marginal and the hour's conditional
    probability as propensities (their product is the pair's)."""
    probs = np.asarray(probs, float)
    probs = probs / probs.sum()
    i = int(rng.choice(len(pairs), p=probs))
    hook, hour = pairs[i]
    hook_p = float(sum(p for (h, _), p in zip(pairs, probs) if h == hook))
    return PlanChoice(hook, hook_p, hour, float(probs[i] / hook_p))


def _uniform(pairs, rng) -> PlanChoice:
    return _choice(pairs, np.full(len(pairs), 1.0 / len(pairs)), rng)


def _win_frequencies(scores: np.ndarray) -> np.ndarray:
    """scores: draws x pairs -> how often each pair has the highest score."""
    wins = np.bincount(np.argmax(scores, axis=1), minlength=scores.shape[1])
    return wins / scores.shape[0]


def _seed(rng: np.random.Generator) -> int:
    return int(rng.integers(2**31 - 1))


def successes(outcomes: Sequence) -> np.ndarray:
    """1 where a post's follows per follower beat the median of ``outcomes``' (the binarised reward of
    ``mabwiser_ts``), else 0."""
    rate = np.array([o.follows / max(o.followers, 1.0) for o in outcomes], float)
    return (rate > np.median(rate)).astype(int) if len(rate) else rate.astype(int)


class _MabwiserPolicy:
    """What the MABWiser policies share: the library check, a uniform choice before any outcome, and the choice
    by the win frequencies of ``DRAWS`` sampled scores of every allowed pair (``_scores``: DRAWS × pairs)."""
    name = ""

    def __init__(self):
        require(self.name)

    def choose(self, state, hooks, hours, rng):
        pairs = _pairs(state, hooks, hours)
        if not state.outcomes:
            return _uniform(pairs, rng)
        return _choice(pairs, _win_frequencies(self._scores(state, pairs, rng)), rng)

    def _scores(self, state, pairs, rng) -> np.ndarray:
        raise NotImplementedError


class MabwiserThompson(_MabwiserPolicy):
    """MABWiser Thompson sampling over (hook, hour) arms, success = follows per follower above the median."""
    name = "mabwiser_ts"

    def _scores(self, state, pairs, rng):
        # imported here: the library is a bench-only extra (``require`` has checked it is installed)
        from mabwiser.mab import MAB, LearningPolicy
        seen = [f"{o.hook}@{int(o.hour)}" for o in state.outcomes]
        names = [f"{h}@{t}" for h, t in pairs]
        mab = MAB(arms=list(dict.fromkeys(names + seen)), learning_policy=LearningPolicy.ThompsonSampling(),
                  seed=_seed(rng))
        mab.fit(decisions=seen, rewards=successes(state.outcomes))
        draws = mab.predict_expectations(np.zeros((DRAWS, 1)))   # one Beta draw per arm per row
        return np.array([[d[n] for n in names] for d in draws])


def lin_features(hook: str, hour: int, topic: str | None, novelty: float | None, followers: float,
                 topics: Sequence[str]) -> list[float]:
    """The ``mabwiser_lin`` context of a post: hook one-hot, hour harmonics, topic one-hot, novelty
    (1 when unknown: a fresh post), follower base in thousands."""
    return ([float(hook == h) for h in vocab.HOOK_PATTERNS] + list(hour_harmonics(int(hour)))
            + [float(topic == t) for t in topics] + [1.0 if novelty is None else float(novelty), followers / 1000.0])


class MabwiserLinear(_MabwiserPolicy):
    """MABWiser LinTS on the post's features, one shared model scoring every allowed (hook, hour)."""
    name = "mabwiser_lin"

    def _scores(self, state, pairs, rng):
        # imported here: the library is a bench-only extra (``require`` has checked it is installed)
        from mabwiser.mab import MAB, LearningPolicy
        topics = state.vocabulary.topics
        x = np.array([lin_features(o.hook, o.hour, o.topic, o.novelty, o.followers, topics) for o in state.outcomes])
        mab = MAB(arms=["post"], learning_policy=LearningPolicy.LinTS(), seed=_seed(rng))
        mab.fit(decisions=["post"] * len(x), rewards=np.array([o.follows for o in state.outcomes], float), contexts=x)
        followers = state.outcomes[-1].followers
        candidates = np.array([lin_features(h, t, None, 1.0, followers, topics) for h, t in pairs])
        rows = np.tile(candidates, (DRAWS, 1))                    # DRAWS blocks of every pair
        expectations = mab.predict_expectations(rows)
        return np.array([e["post"] for e in expectations]).reshape(DRAWS, len(pairs))


def _vw_action(hook: str, hour: int) -> str:
    s1, c1, s2, c2 = hour_harmonics(int(hour))
    return f"|a hook_{hook} hour_{int(hour)} hs1:{s1:.6f} hc1:{c1:.6f} hs2:{s2:.6f} hc2:{c2:.6f}"


def _vw_shared(topic: str | None, novelty: float | None, followers: float) -> str:
    topic_feature = f" topic_{topic}" if topic else ""
    return f"shared |s{topic_feature} novelty:{1.0 if novelty is None else float(novelty):.6f} followers:{followers / 1000.0:.6f}"


class VowpalWabbit:
    """Vowpal Wabbit ``cb_explore_adf``: each allowed (hook, hour) an action, cost = −follows."""
    name = "vw"

    def __init__(self):
        require(self.name)

    def choose(self, state, hooks, hours, rng):
        # imported here: the library is a bench-only extra (``require`` has checked it is installed)
        import vowpalwabbit
        pairs = _pairs(state, hooks, hours)
        vw = vowpalwabbit.Workspace(f"--cb_explore_adf --epsilon {VW_EPSILON} --quiet --random_seed {_seed(rng)}")
        try:
            for o in state.outcomes:   # the chosen action alone, labelled (cost, probability 1): see the docstring
                vw.learn([_vw_shared(o.topic, o.novelty, o.followers),
                          f"0:{-float(o.follows):.6f}:1.0 {_vw_action(o.hook, o.hour)}"])
            followers = state.outcomes[-1].followers if state.outcomes else 0.0
            pmf = vw.predict([_vw_shared(None, 1.0, followers)] + [_vw_action(h, t) for h, t in pairs])
        finally:
            vw.finish()
        return _choice(pairs, np.asarray(pmf, float), rng)


POLICIES = {
    "mabwiser_ts": lambda **_options: MabwiserThompson(),
    "mabwiser_lin": lambda **_options: MabwiserLinear(),
    "vw": lambda **_options: VowpalWabbit(),
}
