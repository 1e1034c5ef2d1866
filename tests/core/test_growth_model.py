"""The growth model: a Poisson log-linear model of profile visits and of follow-through, fitted to
posts whose true effects are known, and the learner that samples from it."""
from __future__ import annotations

import math
from collections import Counter

import numpy as np
import pytest
import statsmodels.api as sm

from xbotlib.core import bandit, growth_model, vocab
from xbotlib.core.bandit import ArmStats
from xbotlib.core.features import hour_harmonics
from xbotlib.core.growth_model import PostOutcome, design_row, fit, fit_poisson
from xbotlib.core.policies import PlanState, XbotPolicy

HOOKS = list(vocab.HOOK_PATTERNS)
HOURS = [7, 9, 11, 13, 15, 17, 19, 21]
TRUE_HOOK = {"did_you_know": 0.35, "new_study": 0.15, "question": 0.0, "contrarian": 0.05, "cta": -0.1, "plain": -0.3}
TRUE_FOLLOW_THROUGH = {h: 0.12 for h in HOOKS} | {"cta": 0.18}


def true_hour(h: int) -> float:
    return 0.3 * math.cos(2 * math.pi * (h - 11) / 24)   # a morning peak at 11:00


def simulate(n: int, seed: int, *, dispersion: float | None = None, hooks=HOOKS, hours=HOURS,
             fatigue: float = 0.0) -> list[PostOutcome]:
    """Posts with known effects: visits Poisson (or gamma-Poisson) around exp(effects) x followers/200;
    with ``fatigue``, log visits also drop by fatigue x (1 - novelty)."""
    rng = np.random.default_rng(seed)
    posts = []
    for i in range(n):
        hook, hour = hooks[rng.integers(len(hooks))], hours[rng.integers(len(hours))]
        topic = vocab.TOPICS[i % len(vocab.TOPICS)]
        followers = 2000 + 2 * i
        novelty = float(rng.uniform(0.2, 1.0))
        mu = followers / 200 * math.exp(TRUE_HOOK[hook] + true_hour(hour) - fatigue * (1 - novelty))
        if dispersion:
            mu *= rng.gamma(dispersion, 1 / dispersion)
        visits = int(rng.poisson(mu))
        follows = int(rng.binomial(visits, TRUE_FOLLOW_THROUGH[hook]))
        posts.append(PostOutcome(hook, topic, hour, visits, follows, followers, novelty))
    return posts


def test_fit_poisson_agrees_with_statsmodels_when_the_prior_is_weak():
    posts = simulate(600, 1)
    X = np.array([design_row(p.hook, p.topic, p.hour) for p in posts])
    y = np.array([p.profile_visits for p in posts], float)
    off = np.log([p.followers for p in posts])
    ours = fit_poisson(X, y, off, prior_sd=1e3)
    # statsmodels on an identified design (drop one hook and one topic column: the reference levels)
    # (and without the familiarity column, all zeros here)
    keep = [c for c in range(X.shape[1]) if c not in (growth_model.HOOK_COLUMNS.stop - 1, growth_model.TOPIC_COLUMNS.stop - 1,
                                                     growth_model.FAMILIARITY_COLUMN)]
    ref = sm.GLM(y, X[:, keep], family=sm.families.Poisson(), offset=off).fit()
    hook_cols = list(range(growth_model.HOOK_COLUMNS.start, growth_model.HOOK_COLUMNS.stop))
    ours_contrasts = ours.beta[hook_cols[:-1]] - ours.beta[hook_cols[-1]]
    ref_contrasts = ref.params[[keep.index(c) for c in hook_cols[:-1]]]
    assert ours_contrasts == pytest.approx(ref_contrasts, abs=1e-3)
    hour_ours = ours.beta[growth_model.HOUR_COLUMNS]
    hour_ref = ref.params[[keep.index(c) for c in range(growth_model.HOUR_COLUMNS.start, growth_model.HOUR_COLUMNS.stop)]]
    assert hour_ours == pytest.approx(hour_ref, abs=1e-3)
    assert ours.dispersion == pytest.approx(max(1.0, ref.pearson_chi2 / ref.df_resid), rel=0.05)


def test_the_model_recovers_known_hook_and_hour_effects_including_follow_through():
    model = fit(simulate(3000, 2))
    mean, cov = model.hook_effects(HOOKS)
    # effects on log expected follows = visits effect + log follow-through (cta converts 1.5x better)
    truth = np.array([TRUE_HOOK[h] + math.log(TRUE_FOLLOW_THROUGH[h]) for h in HOOKS])
    est = mean - mean.mean()
    assert est == pytest.approx(truth - truth.mean(), abs=0.08)
    # hooks share the intercept's uncertainty (a common shift, which no choice depends on); their
    # differences from the average hook are what is precise
    centre = np.eye(len(HOOKS)) - 1.0 / len(HOOKS)
    assert np.all(np.sqrt(np.diag(centre @ cov @ centre.T)) < 0.05)
    hours, _ = model.hour_effects(HOURS)
    assert HOURS[int(np.argmax(hours))] == 11
    assert hours - hours.mean() == pytest.approx(np.array([true_hour(h) for h in HOURS]) - np.mean([true_hour(h) for h in HOURS]),
                                                 abs=0.05)
    assert model.signal == "profile_visits" and model.follow_through is not None and model.n_posts == 3000


def test_familiar_posts_are_accounted_for_not_blamed_on_their_hook():
    # the best hook's posts happen to repeat recent ones (low novelty): its fatigue must not sink it
    posts = simulate(1500, 8, fatigue=1.5)
    posts = [PostOutcome(p.hook, p.topic, p.hour, p.profile_visits, p.follows, p.followers,
                         p.novelty * (0.5 if p.hook == "did_you_know" else 1.0)) for p in posts]
    rng = np.random.default_rng(9)   # re-draw the visits with those novelties
    posts = [PostOutcome(p.hook, p.topic, p.hour,
                         int(rng.poisson(p.followers / 200 * math.exp(TRUE_HOOK[p.hook] + true_hour(p.hour)
                                                                      - 1.5 * (1 - p.novelty)))),
                         p.follows, p.followers, p.novelty) for p in posts]
    model = fit(posts)
    assert model.mean[growth_model.FAMILIARITY_COLUMN] == pytest.approx(-1.5, abs=0.25)
    mean, _ = model.hook_effects(HOOKS)
    assert HOOKS[int(np.argmax(mean))] == "did_you_know"
    # without the novelty, did_you_know looks worse than it is
    blind = fit([PostOutcome(p.hook, p.topic, p.hour, p.profile_visits, p.follows, p.followers) for p in posts])
    blind_mean, _ = blind.hook_effects(HOOKS)
    assert (blind_mean[0] - blind_mean.mean()) < (mean[0] - mean.mean()) - 0.2


def test_more_posts_make_a_tighter_posterior_and_overdispersion_a_wider_one():
    small, large = fit(simulate(100, 3)), fit(simulate(1000, 3))
    assert np.all(np.diag(large.cov) < np.diag(small.cov))
    noisy = fit(simulate(1000, 3, dispersion=3.0))
    assert noisy.counts.dispersion > 2 * large.counts.dispersion
    assert np.all(np.diag(noisy.counts.cov) > np.diag(large.counts.cov))
    assert noisy.log_noise_sd() > large.log_noise_sd()


def test_an_unseen_hook_sits_at_the_average_with_a_wide_posterior():
    model = fit(simulate(400, 4, hooks=[h for h in HOOKS if h != "plain"]))
    mean, cov = model.hook_effects(HOOKS)
    sd = np.sqrt(np.diag(cov))
    assert sd[HOOKS.index("plain")] > 2 * max(s for h, s in zip(HOOKS, sd) if h != "plain")
    assert abs(mean[HOOKS.index("plain")] - np.mean(mean)) < 0.25


def test_without_visits_it_models_follows_and_without_follows_it_skips_follow_through():
    posts = simulate(200, 5)
    no_visits = [PostOutcome(p.hook, p.topic, p.hour, 0, p.follows, p.followers) for p in posts]
    m = fit(no_visits)
    assert m.signal == "follows" and m.follow_through is None
    assert m.mean == pytest.approx(m.counts.beta)
    no_follows = [PostOutcome(p.hook, p.topic, p.hour, p.profile_visits, 0, p.followers) for p in posts]
    m = fit(no_follows)
    assert m.signal == "profile_visits" and m.follow_through is None


@pytest.mark.parametrize("kwargs, match", [
    (dict(hook="clickbait"), r"unknown hook 'clickbait'"),
    (dict(topic=3), r"topic must be a topic name or None, got 3"),
    (dict(hour=24), r"posting hour must be 0-23, got 24"),
    (dict(profile_visits=-1), r"profile_visits must be a finite number >= 0, got -1"),
    (dict(follows=float("nan")), r"follows must be a finite number >= 0"),
    (dict(followers=None), r"followers must be a finite number >= 0, got None"),
    (dict(novelty=1.5), r"novelty must be in \[0, 1\] or None, got 1.5"),
])
def test_a_bad_outcome_is_refused_by_name(kwargs, match):
    base = dict(hook="plain", topic="ai", hour=9, profile_visits=3, follows=1, followers=100)
    with pytest.raises(ValueError, match=match):
        PostOutcome(**(base | kwargs))


def test_fit_refuses_empty_and_mismatched_input():
    with pytest.raises(ValueError, match="no outcomes to learn from yet"):
        fit([])
    with pytest.raises(ValueError, match="one row per post"):
        fit_poisson(np.ones((3, 2)), np.ones(2), np.zeros(3), 1.0)
    with pytest.raises(ValueError, match="counts must be finite and >= 0"):
        fit_poisson(np.ones((2, 2)), np.array([1.0, -1.0]), np.zeros(2), 1.0)
    with pytest.raises(ValueError, match="prior_sd must be > 0"):
        fit_poisson(np.ones((2, 2)), np.ones(2), np.zeros(2), 0.0)
    with pytest.raises(ValueError, match="one per column of X"):
        fit_poisson(np.ones((2, 2)), np.ones(2), np.zeros(2), [1.0, 1.0, 1.0])


def test_design_row_layout():
    row = design_row("cta", None, 13)
    assert row[0] == 1.0
    assert row[growth_model.HOOK_COLUMNS].tolist() == [float(h == "cta") for h in HOOKS]
    assert not row[growth_model.TOPIC_COLUMNS].any()          # no topic: the baseline
    assert row[growth_model.HOUR_COLUMNS] == pytest.approx(hour_harmonics(13))
    assert row[growth_model.FAMILIARITY_COLUMN] == 0.0 and design_row("cta", None, 13, 0.4)[-1] == 0.4


# ----------------------------------------------------------------------------- choosing from the model

def test_thompson_from_the_model_reports_its_true_probabilities():
    mean, cov = np.array([0.3, 0.2, 0.0]), np.diag([0.02, 0.02, 0.05])
    arms, rng, n = ["a", "b", "c"], np.random.default_rng(11), 4000
    counts, props = Counter(), {}
    for _ in range(n):
        ch = bandit.choose_arm_from_model(mean, cov, arms, [10, 10, 10], 30, rng, n_mc=4000)
        counts[ch.arm] += 1
        props.setdefault(ch.arm, []).append(ch.propensity)
        assert sum(ch.probabilities.values()) == pytest.approx(1.0)
        assert not ch.forced and ch.explore_rate == 0.0   # every arm is well observed: no forcing
    for arm, ps in props.items():
        p = float(np.mean(ps))
        assert abs(counts[arm] / n - p) < 4.5 * math.sqrt(p * (1 - p) / n) + 0.01, (arm, counts[arm] / n, p)
    assert counts["a"] > counts["b"] > counts["c"]


def test_halving_the_sd_exploits_more_and_forcing_only_targets_under_observed_arms(caplog):
    mean, cov = np.array([0.3, 0.2, 0.0]), np.diag([0.04, 0.04, 0.04])
    rng = np.random.default_rng(5)
    full = bandit.choose_arm_from_model(mean, cov, ["a", "b", "c"], [10, 10, 10], 30, rng, sd_scale=1.0).probabilities
    half = bandit.choose_arm_from_model(mean, cov, ["a", "b", "c"], [10, 10, 10], 30, rng, sd_scale=0.5).probabilities
    assert half["a"] > full["a"] and half["c"] < full["c"]
    caplog.set_level("INFO", logger="xbot")
    forced = [bandit.choose_arm_from_model(mean, cov, ["a", "b", "c"], [10, 10, 1], 0, rng) for _ in range(400)]
    assert {c.arm for c in forced if c.forced} == {"c"}
    share = sum(c.forced for c in forced) / len(forced)
    assert abs(share - bandit.explore_rate(0)) < 0.07
    assert any("[BANDIT] explore forced arm=c reason=high_uncertainty" in m for m in caplog.messages)
    p = forced[0].probabilities
    assert p["c"] >= bandit.explore_rate(0) and sum(p.values()) == pytest.approx(1.0)


def test_choose_arm_from_model_refuses_mismatched_or_broken_input():
    with pytest.raises(ValueError, match="3 arms but mean"):
        bandit.choose_arm_from_model([0.1, 0.2], np.eye(2), ["a", "b", "c"], [1, 1, 1], 0, 0)
    with pytest.raises(ValueError, match="must be finite"):
        bandit.choose_arm_from_model([0.1, float("nan")], np.eye(2), ["a", "b"], [1, 1], 0, 0)


def test_ucb1_hour_tries_untried_hours_first_then_trades_mean_for_bonus():
    rng = np.random.default_rng(0)
    assert bandit.ucb1_hour([9, 11, 13], [0.1, 0.5, 0.2], [3, 0, 0], rng, scale=1.0, c=0.3).hour == 11
    # equal means: the less tried hour wins on its bonus; a large enough mean gap beats the bonus
    assert bandit.ucb1_hour([9, 11], [0.2, 0.2], [40, 5], rng, scale=1.0, c=0.3).hour == 11
    assert bandit.ucb1_hour([9, 11], [0.9, 0.2], [40, 5], rng, scale=1.0, c=0.3).hour == 9
    with pytest.raises(ValueError, match="scale must be > 0"):
        bandit.ucb1_hour([9, 11], [0.2, 0.2], [1, 1], rng, scale=0.0, c=0.3)
    with pytest.raises(ValueError, match="2 hours but 1 means"):
        bandit.ucb1_hour([9, 11], [0.2], [1, 1], rng, scale=1.0, c=0.3)


def test_the_learner_switches_to_the_model_and_finds_the_best_hook_and_hour():
    posts = simulate(240, 6)
    state = PlanState(content_arms={}, timing_arms={}, account_age_days=30, outcomes=posts)
    rng = np.random.default_rng(1)
    picks = [XbotPolicy(hour_floor=0.0).choose(state, HOOKS, HOURS, rng) for _ in range(300)]
    hooks = Counter(c.hook for c in picks)
    assert hooks.most_common(1)[0][0] == "did_you_know"
    # UCB1 alone is deterministic in a given state: one hour, a morning one (9 and 13 are within 0.04 of 11)
    assert {c.hour for c in picks} <= {9, 11, 13} and len({c.hour for c in picks}) == 1
    assert all(0 < c.hook_propensity <= 1 and c.hour_propensity == 1.0 for c in picks)
    # the shipped learner adds the exploration floor: UCB1's hour most of the time, each other hour floor / 8
    ucb_hour, floor = picks[0].hour, bandit.HOUR_FLOOR
    floored = [XbotPolicy().choose(state, HOOKS, HOURS, rng) for _ in range(300)]
    assert Counter(c.hour for c in floored).most_common(1)[0][0] == ucb_hour
    assert all(c.hour_propensity == pytest.approx(floor / 8 + (1 - floor) * (c.hour == ucb_hour)) for c in floored)
    # rotation forbids the best hook: the model's choice stays among the allowed ones
    allowed = ["question", "plain"]
    assert {XbotPolicy().choose(state, allowed, [9, 21], rng).hook for _ in range(50)} <= set(allowed)


def test_the_learner_uses_the_arm_statistics_until_enough_outcomes_exist():
    # the arms say 'plain' and hour 21 are best; 7 outcomes say otherwise but are not enough for the model
    arms = {h: ArmStats(h, pulls=20, reward_sum=20.0 * (h == "plain"), reward_sq_sum=20.0 * (h == "plain"), weight_sum=20)
            for h in HOOKS}
    hours = {str(h): ArmStats(str(h), pulls=20, reward_sum=40.0 * (h == 21), reward_sq_sum=80.0 * (h == 21), weight_sum=20)
             for h in HOURS}
    few = simulate(XbotPolicy.MODEL_MIN_POSTS - 1, 7)
    state = PlanState(content_arms=arms, timing_arms=hours, account_age_days=30, outcomes=few)
    rng = np.random.default_rng(2)
    picks = [XbotPolicy().choose(state, HOOKS, HOURS, rng) for _ in range(100)]
    assert Counter(c.hook for c in picks).most_common(1)[0][0] == "plain"
    assert Counter(c.hour for c in picks).most_common(1)[0][0] == 21


def test_outcomes_the_model_cannot_fit_fall_back_to_the_arm_statistics(caplog):
    caplog.set_level("WARNING", logger="xbot")
    absurd = [PostOutcome("plain", "ai", 9, 1e300, 1, 2000) for _ in range(XbotPolicy.MODEL_MIN_POSTS)]
    state = PlanState(content_arms={}, timing_arms={}, account_age_days=30, outcomes=absurd)
    choice = XbotPolicy().choose(state, HOOKS, HOURS, np.random.default_rng(0))
    assert choice.hook in HOOKS and choice.hour in HOURS and 0 < choice.hook_propensity <= 1
    assert any("[BANDIT] growth model unusable" in m and "fallback=arm_statistics" in m for m in caplog.messages)
