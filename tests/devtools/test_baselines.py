"""The library policies a team would use instead of xbot (xbotlib/sim/baselines.py): xbot's rules, honest
propensities, learning from outcomes, and a clear error when the bench-only extra is missing."""
from __future__ import annotations

import dataclasses
import subprocess
import sys

import numpy as np
import pytest

from xbotlib.core import vocab
from xbotlib.core.growth_model import PostOutcome
from xbotlib.core.policies import PlanState
from xbotlib.sim import baselines
from xbotlib.sim.policies import POLICY_NAMES, make_policy

LIBRARY = ("mabwiser_ts", "mabwiser_lin", "vw")
HOURS = (9, 12, 15, 21)


def outcomes(n: int, seed: int, best=("question", 15), hours=HOURS) -> list[PostOutcome]:
    """``n`` posts cycling through every hook x hour; follows Poisson with mean 1, doubled for the ``best``
    hook, doubled for the best hour, and 6 at the ``best`` pair (profile visits eight times the mean)."""
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        hook, hour = vocab.HOOK_PATTERNS[i % 6], hours[(i // 6) % len(hours)]
        mean = 6.0 if (hook, hour) == best else 2.0 if hook == best[0] or hour == best[1] else 1.0
        out.append(PostOutcome(hook, vocab.TOPICS[i % len(vocab.TOPICS)], hour, float(rng.poisson(8 * mean)),
                               float(rng.poisson(mean)), 2000.0 + i, 0.8))
    return out


def state(posts, vocabulary=vocab.DEFAULT) -> PlanState:
    return PlanState({}, {}, 30.0, outcomes=posts, vocabulary=vocabulary)


def test_the_library_policies_are_registered_for_campaigns():
    assert set(LIBRARY) <= set(POLICY_NAMES)


@pytest.mark.parametrize("name", LIBRARY)
def test_a_library_policy_chooses_only_allowed_hooks_and_offered_hours(name):
    policy = make_policy(name)
    narrow = dataclasses.replace(vocab.DEFAULT, hooks=("plain", "question", "cta"))
    rng = np.random.default_rng(1)
    for posts in ([], outcomes(60, seed=2)):
        for vocabulary, offered in ((vocab.DEFAULT, ["question", "contrarian"]), (narrow, ["contrarian", "cta", "plain"])):
            allowed = [h for h in offered if h in vocabulary.hooks]
            for _ in range(5):
                c = policy.choose(state(posts, vocabulary), offered, [12, 21], rng)
                assert c.hook in allowed and c.hour in (12, 21)
                assert 0 < c.hook_propensity <= 1 and 0 < c.hour_propensity <= 1
    # rotation ruled out every allowed hook: the vocabulary wins, as for xbot
    c = policy.choose(state([], narrow), ["contrarian"], [9], rng)
    assert c.hook in narrow.hooks and c.hour == 9 and c.hour_propensity == 1.0


@pytest.mark.parametrize("name", LIBRARY)
def test_a_library_policy_is_seeded_by_the_campaigns_generator(name):
    posts = outcomes(48, seed=3)
    runs = [[make_policy(name).choose(state(posts), list(vocab.HOOK_PATTERNS), list(HOURS), np.random.default_rng(7))
             for _ in range(3)] for _ in range(2)]
    assert runs[0] == runs[1]


def test_before_any_outcome_the_mabwiser_policies_are_uniform():
    for name in ("mabwiser_ts", "mabwiser_lin"):
        c = make_policy(name).choose(state([]), ["plain", "question"], [9, 12, 15], np.random.default_rng(0))
        assert c.hook_propensity == pytest.approx(1 / 2) and c.hour_propensity == pytest.approx(1 / 3)


@pytest.mark.parametrize("name", LIBRARY)
def test_the_logged_propensities_are_the_probabilities_the_choices_were_made_with(name):
    # Inverse-propensity identity: if each choice's logged p is the probability it had, then for any hook h
    # (and any pair) chosen with positive probability, mean(1{chosen = h} / p) over many choices is 1,
    # whether or not the distribution changes from choice to choice (it does for the Thompson-type ones).
    # A policy logging p = 1, or the pair's probability as the hook's, fails it.
    policy, posts, rng, n = make_policy(name), outcomes(36, seed=4), np.random.default_rng(5), 300
    choices = [policy.choose(state(posts), list(vocab.HOOK_PATTERNS), [12, 21], rng) for _ in range(n)]
    checked = 0
    for key, p_of in ((lambda c: c.hook, lambda c: c.hook_propensity),
                      (lambda c: (c.hook, c.hour), lambda c: c.hook_propensity * c.hour_propensity)):
        for value in {key(c) for c in choices}:
            f = np.mean([key(c) == value for c in choices])
            if f < 0.1:   # rare ones: 1/p too noisy to test at this n
                continue
            weighted = np.mean([(key(c) == value) / p_of(c) for c in choices])
            assert weighted == pytest.approx(1.0, abs=4 * np.sqrt((1 - f) / (f * n))), (value, f)
            checked += 1
    assert checked >= 2


@pytest.mark.parametrize("name", LIBRARY)
def test_a_library_policy_learns_the_clearly_best_pair(name):
    policy, rng = make_policy(name), np.random.default_rng(11)
    posts = outcomes(24 * 20, seed=6)   # twenty posts per pair; (question, 15) earns 6, its hook or hour alone 2, the rest 1
    choices = [policy.choose(state(posts), list(vocab.HOOK_PATTERNS), list(HOURS), rng) for _ in range(40)]
    share = np.mean([(c.hook, c.hour) == ("question", 15) for c in choices])
    assert share >= 0.6, f"{name} chose (question, 15) in {share:.0%} of 40 plans"
    best = [c for c in choices if (c.hook, c.hour) == ("question", 15)]
    assert np.mean([c.hook_propensity * c.hour_propensity for c in best]) > 0.5


def test_the_thompson_reward_is_follows_per_follower_above_the_median():
    posts = [PostOutcome("plain", None, 9, 10.0, f, base, None) for f, base in ((2, 1000), (2, 2000), (5, 2000), (0, 0))]
    # rates 0.002, 0.001, 0.0025, 0 (no followers counts as one): median 0.0015
    assert baselines.successes(posts).tolist() == [1, 0, 1, 0]
    assert baselines.successes([]).tolist() == []


def test_lin_features_lay_out_hook_hour_topic_novelty_and_followers():
    x = baselines.lin_features("question", 15, "ai", None, 2500.0, ("ai", "data"))
    assert x[:6] == [float(h == "question") for h in vocab.HOOK_PATTERNS]
    assert x[10:] == [1.0, 0.0, 1.0, 2.5]   # topic one-hot, novelty (unknown: fresh), followers in thousands


@pytest.mark.parametrize("name, module", [("mabwiser_ts", "mabwiser"), ("mabwiser_lin", "mabwiser"), ("vw", "vowpalwabbit")])
def test_a_missing_library_is_named_with_the_extra_that_installs_it(name, module, monkeypatch):
    monkeypatch.setitem(sys.modules, module, None)   # what Python does for a package that is not installed
    with pytest.raises(baselines.MissingDependency, match=rf"{module}.*pip install -e '\.\[bench\]'"):
        make_policy(name)


def test_the_product_imports_without_the_bench_libraries():
    code = ("import sys, xbotlib.sim.policies, xbotlib.jobs.campaign; "
            "print(sorted(m for m in ('mabwiser', 'vowpalwabbit') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
