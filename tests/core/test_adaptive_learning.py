"""The learner when the evidence is noisy or old: the quasi-Poisson fit shrinks by the noise it sees,
old outcomes count less (age weights), and hour choice does not lock an hour out on a few unlucky posts."""
from __future__ import annotations

import math
from collections import Counter
from datetime import datetime, timedelta, timezone

import numpy as np
import pytest

from xbotlib.core import bandit, growth_model, vocab
from xbotlib.core.growth_model import PostOutcome, age_weights, fit, fit_poisson
from xbotlib.core.policies import PlanState, XbotPolicy

HOOKS = list(vocab.HOOK_PATTERNS)
HOURS = [7, 9, 11, 13, 15, 17, 19, 21]
NOW = datetime(2026, 3, 1, 6, tzinfo=timezone.utc)


def noisy_posts(n: int, seed: int, *, shape: float, hook_effect=None, hour_effect=None, start_days_ago: float = 60.0,
                followers: float = 350.0, visits: float = 4.0) -> list[PostOutcome]:
    """``n`` posts spread evenly over the ``start_days_ago`` days before NOW, visits gamma-Poisson with gamma
    ``shape`` (CV 1/sqrt(shape)) around ``visits`` × exp(effects); ``hook_effect(hook, days_ago)`` and
    ``hour_effect(hour)`` give the true log effects (0 when None)."""
    rng = np.random.default_rng(seed)
    posts = []
    for i in range(n):
        days_ago = start_days_ago * (1 - i / n)
        hook, hour = HOOKS[rng.integers(len(HOOKS))], HOURS[rng.integers(len(HOURS))]
        log_mu = math.log(visits) + (hook_effect(hook, days_ago) if hook_effect else 0.0) + (hour_effect(hour) if hour_effect else 0.0)
        seen = int(rng.poisson(math.exp(log_mu) * rng.gamma(shape, 1 / shape)))
        follows = int(rng.binomial(seen, 0.12))
        posts.append(PostOutcome(hook, vocab.TOPICS[i % len(vocab.TOPICS)], hour, seen, follows, followers,
                                 posted_at=NOW - timedelta(days=days_ago)))
    return posts


# ----------------------------------------------------------------------------- quasi-Poisson


def test_a_weight_of_two_is_the_same_row_twice():
    rng = np.random.default_rng(0)
    X = np.column_stack([np.ones(40), rng.normal(size=(40, 3))])
    y = rng.poisson(3.0, size=40).astype(float)
    off = np.zeros(40)
    w = np.ones(40)
    w[:10] = 2.0
    weighted = fit_poisson(X, y, off, 0.5, weights=w, dispersion_rounds=1)
    doubled = fit_poisson(np.vstack([X, X[:10]]), np.concatenate([y, y[:10]]), np.zeros(50), 0.5, dispersion_rounds=1)
    assert weighted.beta == pytest.approx(doubled.beta, abs=1e-6)


def locked_out_posts(seed: int, shape: float = 0.75, n: int = 240) -> list[PostOutcome]:
    """A lock-out's evidence: 95% of the posts at 15-21, a handful at 7-13; no hour effect at all, and
    counts as noisy as a 350-follower account's at twice the default noise (gamma ``shape`` 0.75)."""
    rng = np.random.default_rng(seed)
    share = np.array([0.0125] * 4 + [0.2375] * 4)
    posts = []
    for i in range(n):
        hook, hour = HOOKS[rng.integers(len(HOOKS))], HOURS[rng.choice(len(HOURS), p=share)]
        visits = int(rng.poisson(4.0 * rng.gamma(shape, 1 / shape)))
        posts.append(PostOutcome(hook, vocab.TOPICS[i % len(vocab.TOPICS)], hour, visits,
                                 int(rng.binomial(visits, 0.12)), 350.0))
    return posts


def test_over_dispersed_counts_are_shrunk_by_their_noise_not_fitted():
    # where the hour curve has few posts (the morning here), its shape comes from the prior and from a few
    # noisy counts: the quasi-Poisson fit weighs those counts by their real information (1/dispersion), a
    # mode fitted at dispersion 1 (the first round, before the dispersion is known) chases their noise
    H = np.array([growth_model.hour_harmonics(h) for h in HOURS])
    prior = growth_model._prior(growth_model.VISITS_PRIOR_SD)
    quasi_spread, plain_spread = [], []
    for seed in range(1, 11):
        posts = locked_out_posts(seed)
        X = growth_model.design_matrix(posts)
        y = np.array([p.profile_visits for p in posts], float)
        off = np.log([p.followers for p in posts])
        quasi = fit_poisson(X, y, off, prior)
        plain = fit_poisson(X, y, off, prior, dispersion_rounds=1)
        assert quasi.dispersion > 3
        quasi_spread.append(float(np.ptp(H @ quasi.beta[growth_model.HOUR_COLUMNS])))
        plain_spread.append(float(np.ptp(H @ plain.beta[growth_model.HOUR_COLUMNS])))
    assert all(q < p for q, p in zip(quasi_spread, plain_spread))
    assert np.mean(quasi_spread) < 0.75 * np.mean(plain_spread)


def test_with_poisson_counts_the_quasi_fit_is_the_plain_fit():
    rng = np.random.default_rng(4)
    X = np.column_stack([np.ones(300), rng.normal(size=(300, 2))])
    y = rng.poisson(np.exp(1.0 + 0.3 * X[:, 1])).astype(float)
    one, several = fit_poisson(X, y, np.zeros(300), 1.0, dispersion_rounds=1), fit_poisson(X, y, np.zeros(300), 1.0)
    assert several.dispersion == pytest.approx(1.0, abs=0.15)
    assert several.beta == pytest.approx(one.beta, abs=0.02)


def test_fit_poisson_refuses_bad_weights():
    X, y, off = np.ones((3, 2)), np.ones(3), np.zeros(3)
    with pytest.raises(ValueError, match="weights"):
        fit_poisson(X, y, off, 1.0, weights=np.array([1.0, -1.0, 1.0]))
    with pytest.raises(ValueError, match="weights"):
        fit_poisson(X, y, off, 1.0, weights=np.zeros(3))
    with pytest.raises(ValueError, match="weights"):
        fit_poisson(X, y, off, 1.0, weights=np.ones(2))


# ----------------------------------------------------------------------------- old evidence counts less


def test_age_weights_halve_every_half_life_and_leave_unknown_times_whole():
    posts = [PostOutcome("plain", None, 9, 5, 1, 100, posted_at=NOW - timedelta(days=d)) for d in (0, 10, 20)]
    posts.append(PostOutcome("plain", None, 9, 5, 1, 100))                          # time unknown
    posts.append(PostOutcome("plain", None, 9, 5, 1, 100, posted_at=NOW + timedelta(days=1)))  # clock skew
    assert age_weights(posts, NOW, 10.0) == pytest.approx([1.0, 0.5, 0.25, 1.0, 1.0])
    assert age_weights(posts, None, 10.0) == pytest.approx([1.0] * 5)
    assert age_weights(posts, NOW, None) == pytest.approx([1.0] * 5)
    with pytest.raises(ValueError, match="timezone-aware"):
        age_weights(posts, datetime(2026, 3, 1), 10.0)
    with pytest.raises(ValueError, match="half_life_days"):
        age_weights(posts, NOW, 0.0)
    with pytest.raises(ValueError, match="posted_at"):
        PostOutcome("plain", None, 9, 5, 1, 100, posted_at=datetime(2026, 3, 1))


def switched(hook: str, days_ago: float) -> float:
    """did_you_know led until 20 days ago; since then question leads by as much."""
    if days_ago > 20:
        return {"did_you_know": 0.5, "question": 0.0}.get(hook, 0.0)
    return {"did_you_know": 0.0, "question": 0.5}.get(hook, 0.0)


@pytest.mark.parametrize("seed", [5, 6, 7])
def test_a_model_fitted_after_the_best_hook_switched_prefers_the_new_one(seed):
    # counts near Poisson on a larger account: the test is of the weighting, not of the noise
    posts = noisy_posts(240, seed, shape=50.0, hook_effect=switched, start_days_ago=60, visits=30.0)
    hl = growth_model.HALF_LIFE_DAYS
    recent = fit(posts, now=NOW, half_life_days=hl)
    everything = fit(posts, now=NOW, half_life_days=None)
    at = {h: i for i, h in enumerate(HOOKS)}
    m_recent, _ = recent.hook_effects(HOOKS)
    m_all, _ = everything.hook_effects(HOOKS)
    # 40 days of did_you_know against 20 of question: counted alike, the old leader still leads
    assert m_all[at["did_you_know"]] > m_all[at["question"]]
    assert m_recent[at["question"]] > m_recent[at["did_you_know"]] + 0.1


def test_the_learner_reads_the_plan_ticks_time_and_follows_the_switch():
    posts = noisy_posts(240, 8, shape=50.0, hook_effect=switched, start_days_ago=60, visits=30.0)
    state = PlanState(content_arms={}, timing_arms={}, account_age_days=60, outcomes=posts, now=NOW)
    rng = np.random.default_rng(9)
    picks = Counter(XbotPolicy().choose(state, HOOKS, HOURS, rng).hook for _ in range(60))
    assert picks["question"] > 2 * picks["did_you_know"]
    # without the tick's time nothing is old: the learner stays with did_you_know
    timeless = PlanState(content_arms={}, timing_arms={}, account_age_days=60, outcomes=posts)
    rng = np.random.default_rng(9)
    picks = Counter(XbotPolicy().choose(timeless, HOOKS, HOURS, rng).hook for _ in range(60))
    assert picks["did_you_know"] > picks["question"]


# ----------------------------------------------------------------------------- no lock-outs


UNLUCKY = 6


def evening_heavy(seed: int) -> list[PostOutcome]:
    """``UNLUCKY`` posts without a visit at each morning hour 45 days ago, then 200 posts at 15-21 over the
    last 50 days: the shape of a lock-out, on a noisy 350-follower account."""
    rng = np.random.default_rng(seed)
    posts = [PostOutcome(HOOKS[i % len(HOOKS)], None, h, 0, 0, 350.0, posted_at=NOW - timedelta(days=45, hours=i))
             for h in (7, 9, 11, 13) for i in range(UNLUCKY)]
    for i in range(200):
        seen = int(rng.poisson(4.0 * rng.gamma(0.75, 1 / 0.75)))
        posts.append(PostOutcome(HOOKS[rng.integers(len(HOOKS))], None, (15, 17, 19, 21)[i % 4], seen,
                                 int(rng.binomial(seen, 0.12)), 350.0, posted_at=NOW - timedelta(days=50 * (1 - i / 200))))
    return posts


def morning_share(policy: XbotPolicy, posts, seed: int, n: int = 40) -> float:
    state = PlanState(content_arms={}, timing_arms={}, account_age_days=60, outcomes=posts, now=NOW)
    rng = np.random.default_rng(seed)
    return sum(policy.choose(state, HOOKS, HOURS, rng).hour < 15 for _ in range(n)) / n


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_an_hour_whose_unlucky_posts_are_old_is_tried_again(seed):
    posts = evening_heavy(seed)
    # counted by age, six posts 45 days old weigh 0.65 of a post in all: the morning's estimate is back near the
    # average, its interval wide, and UCB1 tries it
    # UCB1 alone (no hour floor), so what is measured is the ageing: the floor's uniform draws would blur it
    assert morning_share(XbotPolicy(half_life_days=14.0, hour_floor=0.0), posts, seed) == 1.0
    # counted forever, they keep the morning out
    assert morning_share(XbotPolicy(half_life_days=None, hour_floor=0.0), posts, seed) == 0.0


def test_the_hour_floor_keeps_a_locked_out_hour_in_play_even_without_ageing():
    """The floor does not depend on the model being right: with the evidence counted forever (UCB1 keeps the
    morning out, above) each free hour still has probability floor / 8, and the logged propensity says so."""
    posts = evening_heavy(1)
    state = PlanState(content_arms={}, timing_arms={}, account_age_days=60, outcomes=posts, now=NOW)
    rng, floor = np.random.default_rng(5), bandit.HOUR_FLOOR
    picks = [XbotPolicy(half_life_days=None).choose(state, HOOKS, HOURS, rng) for _ in range(400)]
    morning = [c for c in picks if c.hour < 15]
    assert morning and all(c.hour_propensity == pytest.approx(floor / len(HOURS)) for c in morning)
    # UCB1's hour (one evening hour: the state is fixed) carries the rest of the mass
    top = [c for c in picks if c.hour_propensity > floor / len(HOURS) + 1e-9]
    assert len({c.hour for c in top}) == 1 and top[0].hour >= 15
    assert all(c.hour_propensity == pytest.approx(floor / len(HOURS) + 1 - floor) for c in top)
    assert len(morning) / len(picks) == pytest.approx(floor / 2, abs=4 * np.sqrt(floor / 2 / len(picks)))



# ----------------------------------------------------------------------------- ageing only when the world moved


def steady(hook: str, days_ago: float) -> float:
    """did_you_know leads by 0.5 throughout."""
    return 0.5 if hook == "did_you_know" else 0.0


@pytest.mark.parametrize("seed", [5, 6, 7])
def test_the_change_test_finds_a_switch_and_not_a_steady_world(seed):
    moved = growth_model.change_test(noisy_posts(240, seed, shape=50.0, hook_effect=switched, visits=30.0), NOW, 14.0)
    still = growth_model.change_test(noisy_posts(240, seed, shape=50.0, hook_effect=steady, visits=30.0), NOW, 14.0)
    assert moved.p_value < 0.01 and still.p_value > 0.05
    assert moved.recent == still.recent > 40  # the posts of the last 14 of 60 days


def test_a_level_shift_of_the_recent_posts_is_not_a_change():
    # reach moving as a whole (every hook and hour alike) changes no choice: the null model absorbs it
    posts = noisy_posts(240, 3, shape=50.0, hook_effect=lambda h, d: 0.5 if d < 14 else 0.0, visits=30.0)
    assert growth_model.change_test(posts, NOW, 14.0).p_value > 0.05


def test_in_a_steady_world_every_outcome_counts_and_after_a_switch_old_ones_fade():
    hl = growth_model.HALF_LIFE_DAYS
    posts = noisy_posts(240, 6, shape=50.0, hook_effect=steady, visits=30.0)
    gated = fit(posts, now=NOW, half_life_days=hl, change_alpha=0.05)
    assert not gated.aged and gated.mean == pytest.approx(fit(posts, now=NOW, half_life_days=None).mean)
    assert not np.allclose(gated.mean, fit(posts, now=NOW, half_life_days=hl).mean)  # the default: always aged
    posts = noisy_posts(240, 6, shape=50.0, hook_effect=switched, visits=30.0)
    moved = fit(posts, now=NOW, half_life_days=hl, change_alpha=0.05)
    assert moved.aged and moved.mean == pytest.approx(fit(posts, now=NOW, half_life_days=hl).mean)


def test_in_a_steady_world_the_learner_reads_hooks_from_all_the_evidence_and_hours_from_the_aged():
    # hooks: the full evidence (no change found); hours: aged as always, which is how an hour whose unlucky
    # posts are old comes back (test_an_hour_whose_unlucky_posts_are_old_is_tried_again)
    posts = noisy_posts(240, 6, shape=50.0, hook_effect=steady, visits=30.0)
    state = PlanState(content_arms={}, timing_arms={}, account_age_days=60, outcomes=posts, now=NOW)
    for seed in range(5):
        gated = XbotPolicy(change_alpha=0.05).choose(state, HOOKS, HOURS, np.random.default_rng(seed))
        unaged = XbotPolicy(half_life_days=None).choose(state, HOOKS, HOURS, np.random.default_rng(seed))
        aged = XbotPolicy(change_alpha=None).choose(state, HOOKS, HOURS, np.random.default_rng(seed))
        assert (gated.hook, gated.hook_propensity) == (unaged.hook, unaged.hook_propensity)
        assert (gated.hour, gated.hour_propensity) == (aged.hour, aged.hour_propensity)
