"""The reward calculator: DESIGN.md's definitions, on a table of real-looking outcomes."""
from __future__ import annotations

import math

import pytest

from xbotlib.config import Settings
from xbotlib.core.reward import composite_reward, derived_rates, exposure_weight, outcome_reward

W = Settings().reward_weights()

# impressions, likes, retweets, replies, quotes, bookmarks, follows -> er, fpki, retweet_rate, reply_rate
RATE_CASES = [
    pytest.param((1000, 20, 5, 3, 1, 1, 2), (0.030, 2.0, 0.005, 0.003), id="typical-post"),
    pytest.param((0, 0, 0, 0, 0, 0, 0), (0.0, 0.0, 0.0, 0.0), id="zero-impressions-nothing"),
    pytest.param((0, 2, 1, 0, 0, 0, 1), (3.0, 1000.0, 1.0, 0.0), id="zero-impressions-max1-denominator"),
    pytest.param((1, 1, 0, 0, 0, 0, 0), (1.0, 0.0, 0.0, 0.0), id="one-impression"),
    pytest.param((250_000, 5000, 1200, 800, 100, 900, 75), (0.032, 0.3, 0.0048, 0.0032), id="viral"),
    pytest.param((400, 0, 0, 0, 0, 0, 0.5), (0.0, 1.25, 0.0, 0.0), id="fractional-attributed-follow"),
]


@pytest.mark.parametrize("counts, expected", RATE_CASES)
def test_derived_rates(counts, expected):
    got = derived_rates(*counts)
    for key, want in zip(("er", "fpki", "retweet_rate", "reply_rate"), expected):
        assert got[key] == pytest.approx(want), key


# fpki, retweet_rate, reply_rate, novelty, dup_penalty -> reward with the default weights
REWARD_CASES = [
    pytest.param((2.0, 0.005, 0.003, 0.8, 0.0), 0.5 * 2 + 0.3 * 0.005 + 0.15 * 0.003 + 0.05 * 0.8, id="typical"),
    pytest.param((0.0, 0.0, 0.0, 0.1, 1.0), 0.05 * 0.1 - 0.1, id="duplicate-nothing-else"),
    pytest.param((0.0, 0.0, 0.0, None, 0.0), 0.0, id="novelty-unknown"),
    pytest.param((10.0, 0.0, 0.0, 1.0, 0.0), 5.05, id="follow-heavy"),
]


@pytest.mark.parametrize("args, expected", REWARD_CASES)
def test_composite_reward_default_weights(args, expected):
    assert composite_reward(*args, weights=W) == pytest.approx(expected)


def test_composite_reward_uses_configured_weights():
    weights = {**W, "fpki": 1.0, "dup_penalty": 0.0}
    assert composite_reward(3.0, 0, 0, 0, 1.0, weights) == pytest.approx(3.0)


@pytest.mark.parametrize("weights, match", [
    ({k: v for k, v in W.items() if k != "fpki"}, r"missing \['fpki'\]"),
    ({k: v for k, v in W.items() if k not in ("novelty", "dup_penalty")}, r"missing \['novelty', 'dup_penalty'\]"),
    ({**W, "likes": 1.0}, r"unknown \['likes'\]"),
    ({**W, "fpki": float("nan")}, "fpki must be a finite number"),
])
def test_composite_reward_rejects_bad_weights(weights, match):
    with pytest.raises(ValueError, match=match):
        composite_reward(1.0, 0, 0, 0, 0, weights)


@pytest.mark.parametrize("counts, match", [
    ((-1, 0, 0, 0, 0, 0, 0), "impressions must be a finite number >= 0, got -1"),
    ((100, 0, -2, 0, 0, 0, 0), "retweets must be a finite number >= 0, got -2"),
    ((100, 0, 0, 0, 0, 0, math.inf), "follows must be a finite number"),
    ((100, "many", 0, 0, 0, 0, 0), "likes must be a number, got 'many'"),
])
def test_derived_rates_rejects_bad_counts(counts, match):
    with pytest.raises(ValueError, match=match):
        derived_rates(*counts)


@pytest.mark.parametrize("impressions, weight", [(0, 1.0), (1, 1.0), (500, 1.0), (1000, 1.0), (2000, 0.5), (100_000, 0.01)])
def test_exposure_weight(impressions, weight):
    assert exposure_weight(impressions) == pytest.approx(weight)


def test_outcome_reward_bundles_what_the_collector_stores():
    got = outcome_reward({"impressions": 2000, "likes": 30, "retweets": 10, "replies": 4, "quotes": 0,
                          "bookmarks": 6, "follows": 3}, novelty=0.6, dup_penalty=0.0, weights=W)
    assert got["er"] == pytest.approx(0.025)
    assert got["fpki"] == pytest.approx(1.5)
    assert got["reward_composite"] == pytest.approx(0.5 * 1.5 + 0.3 * 0.005 + 0.15 * 0.002 + 0.05 * 0.6)
    assert got["sample_weight"] == pytest.approx(0.5)
    with pytest.raises(ValueError, match=r"missing \['follows'\]"):
        outcome_reward({"impressions": 1, "likes": 0, "retweets": 0, "replies": 0, "quotes": 0, "bookmarks": 0},
                       novelty=0.5, dup_penalty=0, weights=W)


def test_checked_weights_are_checked_once_and_score_alike():
    """The collector checks the weights once per tick; a ``RewardWeights`` is taken as it is, and gives the
    same reward as the plain mapping it came from."""
    from xbotlib.core.reward import RewardWeights, check_weights
    checked = check_weights(W)
    assert isinstance(checked, RewardWeights) and check_weights(checked) is checked and dict(checked) == W
    for args, _ in [(c.values[0], None) for c in REWARD_CASES]:
        assert composite_reward(*args, weights=checked) == composite_reward(*args, weights=dict(W))
    with pytest.raises(TypeError):
        checked["fpki"] = 2.0   # read-only: what was checked cannot change afterwards
