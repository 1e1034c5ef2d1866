"""Exploration: the epsilon schedule, Thompson sampling with honest propensities, UCB1 hours, replay."""
from __future__ import annotations

import logging

import numpy as np
import pytest

from xbotlib.core.bandit import (ArmStats, choose_content_arm, choose_hour, explore_rate, policy_probabilities, posterior, thompson_probabilities, timing_arm_id, ucb1_hour, update, with_floor)
from xbotlib.core.vocab import DEFAULT_POSTING_HOURS, HOOK_PATTERNS

ARMS = ["did_you_know", "new_study", "question"]


def observed(arm: str, rewards, weight: float = 1.0) -> ArmStats:
    s = ArmStats(arm)
    for r in rewards:
        s = update(s, r, weight)
    return s


def run_content(seed: int, means: dict[str, float], rounds: int, age_days: float = 30, n_mc: int = 300):
    """A seeded campaign: choose, observe a noisy reward from a seeded world, update."""
    rng, world = np.random.default_rng(seed), np.random.default_rng(seed + 1000)
    stats: dict[str, ArmStats] = {}
    choices = []
    for _ in range(rounds):
        ch = choose_content_arm(stats, list(means), age_days, rng, n_mc=n_mc)
        stats[ch.arm] = update(stats.get(ch.arm, ArmStats(ch.arm)), world.normal(means[ch.arm], 0.3))
        choices.append(ch)
    return stats, choices


@pytest.mark.parametrize("day, eps", [(0, 0.20), (7, 0.125), (14, 0.05), (30, 0.05), (3.5, 0.1625)])
def test_explore_rate_schedule(day, eps):
    assert explore_rate(day) == pytest.approx(eps)


def test_explore_rate_rejects_negative_age():
    with pytest.raises(ValueError, match="account age must be a number of days >= 0, got -1"):
        explore_rate(-1)


def test_forced_exploration_frequency_matches_epsilon_and_logs(caplog):
    # 'question' has never been tried, so it is the most uncertain arm
    stats = {"did_you_know": observed("did_you_know", [0.4, 0.6, 0.5, 0.7]),
             "new_study": observed("new_study", [0.2, 0.3, 0.25])}
    rng = np.random.default_rng(7)
    n = 2000
    with caplog.at_level(logging.INFO, logger="xbot.bandit"):
        choices = [choose_content_arm(stats, ARMS, 0, rng, n_mc=50) for _ in range(n)]
    forced = [c for c in choices if c.forced]
    assert abs(len(forced) / n - 0.20) < 0.03  # binomial sd ≈ 0.009
    assert {c.arm for c in forced} == {"question"}
    lines = [r.getMessage() for r in caplog.records if "[BANDIT]" in r.getMessage()]
    assert len(lines) == len(forced)
    assert lines[0] == "[BANDIT] explore forced arm=question reason=high_uncertainty"
    # at day 30 the schedule has decayed to 5%
    late = [choose_content_arm(stats, ARMS, 30, rng, n_mc=50).forced for _ in range(n)]
    assert abs(np.mean(late) - 0.05) < 0.02


def test_thompson_concentrates_on_the_best_arm():
    means = {"did_you_know": 0.2, "new_study": 0.5, "question": 1.0}
    stats, choices = run_content(seed=1, means=means, rounds=300)
    last = [c.arm for c in choices[-100:]]
    assert last.count("question") >= 85
    assert stats["question"].pulls > stats["new_study"].pulls + stats["did_you_know"].pulls
    probs = thompson_probabilities(stats, list(means), np.random.default_rng(0))
    assert probs["question"] > 0.95
    post = posterior(stats)
    assert post["question"].ci_low < 1.0 < post["question"].ci_high
    assert post["question"].mean > post["new_study"].mean > post["did_you_know"].mean


def test_propensities_sum_to_one_and_match_selection_frequency():
    stats = {"did_you_know": observed("did_you_know", [0.5, 0.6, 0.4]),
             "new_study": observed("new_study", [0.45, 0.5, 0.55, 0.5]),
             "question": observed("question", [0.1, 0.9])}
    rng = np.random.default_rng(3)
    for arms in (ARMS, list(HOOK_PATTERNS), ["plain"]):
        ch = choose_content_arm(stats, arms, 2, rng)
        assert sum(ch.probabilities.values()) == pytest.approx(1.0)
        assert 0 < ch.propensity <= 1 and ch.propensity == ch.probabilities[ch.arm]
        assert sum(thompson_probabilities(stats, arms, rng).values()) == pytest.approx(1.0)
        assert sum(policy_probabilities(stats, arms, 2, rng).values()) == pytest.approx(1.0)
    assert choose_content_arm(stats, ["plain"], 2, rng).propensity == 1.0
    # the propensity is the real selection probability: empirical frequencies agree with it
    policy = policy_probabilities(stats, ARMS, 2, np.random.default_rng(4), n_mc=20000)
    picks = [choose_content_arm(stats, ARMS, 2, rng, n_mc=50).arm for _ in range(3000)]
    for arm in ARMS:
        assert abs(picks.count(arm) / 3000 - policy[arm]) < 0.03, arm


def test_replay_same_seed_same_choices():
    means = {a: m for a, m in zip(HOOK_PATTERNS, (0.1, 0.3, 0.5, 0.2, 0.4, 0.0))}
    _, a = run_content(seed=11, means=means, rounds=60, age_days=0)
    _, b = run_content(seed=11, means=means, rounds=60, age_days=0)
    _, c = run_content(seed=12, means=means, rounds=60, age_days=0)
    assert [(x.arm, x.propensity, x.forced) for x in a] == [(x.arm, x.propensity, x.forced) for x in b]
    assert [x.arm for x in a] != [x.arm for x in c]
    hours = list(DEFAULT_POSTING_HOURS)
    def run_hours(seed):
        rng, stats, out = np.random.default_rng(seed), {}, []
        for i in range(30):
            h = choose_hour(stats, hours, rng).hour
            stats[timing_arm_id(h)] = update(stats.get(timing_arm_id(h), ArmStats(timing_arm_id(h))), (h % 5) / 5)
            out.append(h)
        return out
    assert run_hours(5) == run_hours(5)


def test_ucb1_tries_every_hour_then_favours_the_best():
    true = {7: 0.1, 9: 0.3, 11: 0.2, 13: 0.5, 15: 0.2, 17: 0.9, 19: 0.4, 21: 0.3}
    rng, world = np.random.default_rng(2), np.random.default_rng(3)
    stats: dict[str, ArmStats] = {}
    seq = []
    for i in range(200):
        ch = choose_hour(stats, list(true), rng)
        if i < len(true):
            assert ch.bonus is None and ch.propensity == pytest.approx(1 / (len(true) - i))
        arm = timing_arm_id(ch.hour)
        stats[arm] = update(stats.get(arm, ArmStats(arm)), world.normal(true[ch.hour], 0.3))
        seq.append(ch.hour)
    assert sorted(seq[:len(true)]) == sorted(true)
    pulls = {h: stats[str(h)].pulls for h in true}
    assert max(pulls, key=pulls.get) == 17 and pulls[17] > 100


def test_ucb1_prior_means_and_keys():
    rng = np.random.default_rng(0)
    # untried hours: the timing predictor's favourite goes first
    assert choose_hour({}, [9, 13, 21], rng, prior_means={9: 0.1, 13: 0.8, 21: 0.3}).hour == 13
    tried = {9: observed("9", [0.5] * 5), 13: observed("13", [0.5] * 5)}
    ch = choose_hour(tried, [9, 13], rng)
    assert ch.propensity == 0.5  # an exact tie is broken at random, and the propensity says so
    by_str = {timing_arm_id(h): s for h, s in tried.items()}
    pm = {9: 1.0, 13: 0.0}
    assert choose_hour(tried, [9, 13], rng, prior_means=pm) == choose_hour(by_str, [9, 13], rng, prior_means=pm)
    assert choose_hour(tried, [9, 13], rng, prior_means=pm).hour == 9
    with pytest.raises(ValueError, match="posting hour must be 0-23, got 24"):
        choose_hour({}, [9, 24], rng)


def test_the_hour_floor_gives_every_free_hour_its_share_and_logs_the_mixtures_propensity():
    hours = [7, 9, 11, 13]
    ucb = ucb1_hour(hours, [0.0, 0.9, 0.1, 0.2], [10, 10, 10, 10], np.random.default_rng(0), scale=1.0, c=0.3)
    assert ucb.hour == 9 and ucb.probabilities == {7: 0.0, 9: 1.0, 11: 0.0, 13: 0.0}
    rng, n, floor = np.random.default_rng(4), 8000, 0.2
    picks = [with_floor(ucb, hours, floor, rng) for _ in range(n)]
    want = {7: 0.05, 9: 0.85, 11: 0.05, 13: 0.05}  # floor / 4 each, plus 1 - floor on UCB1's hour
    for c in picks:
        assert c.propensity == pytest.approx(want[c.hour]) and c.probabilities == pytest.approx(want)
        assert c.explored or c.hour == 9
    for h, p in want.items():  # the logged propensity is the frequency the rule really has
        freq = sum(c.hour == h for c in picks) / n
        assert abs(freq - p) < 4 * np.sqrt(p * (1 - p) / n), (h, freq, p)
    # a tie in UCB1 is part of the mixture: 0.1 / 2 + 0.9 / 2 on each tied hour
    tie = ucb1_hour([9, 13], [0.5, 0.5], [5, 5], np.random.default_rng(1), scale=1.0, c=0.3)
    assert with_floor(tie, [9, 13], 0.1, np.random.default_rng(2)).propensity == pytest.approx(0.5)
    # no floor: UCB1's choice unchanged, no randomness drawn
    assert with_floor(ucb, hours, 0.0, np.random.default_rng(3)) is ucb


@pytest.mark.parametrize("floor, hours, match", [
    (-0.1, [7, 9], r"floor must be in \[0, 1\], got -0.1"),
    (1.5, [7, 9], r"floor must be in \[0, 1\], got 1.5"),
    (float("nan"), [7, 9], "floor must be in"),
    (0.1, [7, 11], r"UCB1's hour 9 is not among the hours offered \[7, 11\]"),
])
def test_the_hour_floor_rejects_bad_inputs(floor, hours, match):
    ucb = ucb1_hour([7, 9], [0.0, 1.0], [3, 3], np.random.default_rng(0), scale=1.0, c=0.3)
    with pytest.raises(ValueError, match=match):
        with_floor(ucb, hours, floor, np.random.default_rng(0))


def test_update_is_pure_and_validates():
    s0 = ArmStats("cta")
    s1 = update(s0, 2.0, weight=0.5)
    assert s0.pulls == 0 and (s1.pulls, s1.reward_sum, s1.reward_sq_sum, s1.weight_sum) == (1, 1.0, 2.0, 0.5)
    assert s1.mean == 2.0 and s1.variance == 0.0
    with pytest.raises(ValueError, match="reward must be finite, got nan for arm 'cta'"):
        update(s0, float("nan"))
    with pytest.raises(ValueError, match="weight must be a finite number > 0, got 0"):
        update(s0, 1.0, weight=0)


def test_posterior_narrows_with_data_and_untried_arms_are_most_uncertain():
    few, many = observed("a", [0.4, 0.6]), observed("b", list(np.linspace(0.3, 0.7, 50)))
    post = posterior({"a": few, "b": many, "c": ArmStats("c")})
    assert post["b"].sd < post["a"].sd < post["c"].sd
    assert post["c"].mean == pytest.approx(posterior({"a": few, "b": many}, ["a", "b", "c"])["c"].mean)
    assert post["b"].ci_low < 0.5 < post["b"].ci_high


@pytest.mark.parametrize("arms, match", [([], "no arms to choose from"), (["a", "a"], "arm ids must be unique")])
def test_choose_content_arm_rejects_bad_arms(arms, match):
    with pytest.raises(ValueError, match=match):
        choose_content_arm({}, arms, 0, np.random.default_rng(0))
