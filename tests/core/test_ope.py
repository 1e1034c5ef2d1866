"""Off-policy estimators (xbotlib.core.ope) and the candidate's distribution at a replayed decision
(xbotlib.core.ope_replay): hand-computed values, unbiasedness where the truth is known, clear errors."""
from __future__ import annotations

import math
from datetime import datetime, timedelta, timezone

import numpy as np
import pytest

from xbotlib.core import bandit, ope, ope_replay
from xbotlib.core.policies import FixedPolicy, HeuristicPolicy, PlanState, RandomPolicy, XbotPolicy
from xbotlib.core.vocab import DEFAULT

# three decisions, two actions: every figure below is worked by hand in the test's comments
REWARD = np.array([1.0, 0.0, 2.0])
ACTION = np.array([0, 1, 0])
PSCORE = np.array([0.5, 0.5, 0.25])
DIST = np.array([[1.0, 0.0], [0.5, 0.5], [0.5, 0.5]])
Q_HAT = np.array([[1.0, 0.0], [0.0, 1.0], [2.0, 2.0]])


def test_estimators_on_hand_computed_arrays():
    # weights 1/0.5 = 2, 0.5/0.5 = 1, 0.5/0.25 = 2
    assert ope.importance_weights(ACTION, PSCORE, DIST).tolist() == [2.0, 1.0, 2.0]
    # IPW: terms 2·1, 1·0, 2·2 -> mean 2, sd 2 -> se 2/sqrt(3)
    e = ope.ipw(REWARD, ACTION, PSCORE, DIST)
    assert e.value == pytest.approx(2.0) and e.se == pytest.approx(2 / math.sqrt(3)) and e.n == 3
    assert (e.ci_low, e.ci_high) == pytest.approx((2.0 - ope.Z95 * e.se, 2.0 + ope.Z95 * e.se))
    # SNIPW: (2 + 0 + 4) / (2 + 1 + 2) = 1.2; influence terms w (r - 1.2) / mean(w) = [-.24, -.72, .96] / (5/3)
    e = ope.snipw(REWARD, ACTION, PSCORE, DIST)
    psi = np.array([2 * (1 - 1.2), 1 * (0 - 1.2), 2 * (2 - 1.2)]) / (5 / 3)
    assert e.value == pytest.approx(1.2) and e.se == pytest.approx(np.std(psi, ddof=1) / math.sqrt(3))
    # DR: model value 1, .5, 2 plus weighted residuals 2·0, 1·(0 - 1), 2·0 -> terms 1, -.5, 2 -> 2.5 / 3
    e = ope.dr(REWARD, ACTION, PSCORE, DIST, Q_HAT)
    assert e.value == pytest.approx(2.5 / 3) and e.se == pytest.approx(np.std([1, -0.5, 2], ddof=1) / math.sqrt(3))
    ests, ov = ope.evaluate(REWARD, ACTION, PSCORE, DIST, Q_HAT)
    assert [x.estimator for x in ests] == list(ope.ESTIMATORS)
    # ESS (2+1+2)^2 / (4+1+4) = 25/9; both actions were logged, so no mass off the logged support
    assert ov.ess == pytest.approx(25 / 9) and ov.max_weight == 2.0 and ov.off_support == 0.0


def test_overlap_counts_the_candidates_mass_on_actions_never_logged_and_warns():
    dist = np.array([[0.2, 0.8, 0.0], [0.2, 0.8, 0.0]])  # action 1 is never logged
    ov = ope.overlap(np.array([0, 0]), np.array([0.5, 0.5]), dist)
    assert ov.off_support == pytest.approx(0.8) and ov.mean_weight == pytest.approx(0.4)
    text = " ".join(ope.warnings(ov))
    assert "80% of its probability" in text and "weights average 0.40" in text
    assert ope.warnings(ope.Overlap(n=100, ess=90.0, max_weight=1.5, mean_weight=1.0, off_support=0.0)) == []
    assert "effective sample size 4.0 of 100" in " ".join(ope.warnings(ope.Overlap(100, 4.0, 30.0, 1.0, 0.0)))


def _synthetic(n: int, rng: np.random.Generator, noise: float = 1.0):
    """A logged contextual bandit with known value: 4 actions, a binary context, a softmax logger, a candidate
    that prefers action 3 where the context is 1; rewards normal around a known mean table."""
    means = np.array([[1.0, 2.0, 0.5, 1.5], [0.0, 1.0, 2.0, 3.0]])
    x = rng.integers(0, 2, size=n)
    logits = np.where(x[:, None] == 1, [0.5, 0.0, 0.0, -0.5], [0.0, 0.5, 0.0, 0.0])
    logger = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    cand = np.where(x[:, None] == 1, [0.1, 0.1, 0.1, 0.7], [0.1, 0.6, 0.2, 0.1])
    action = np.array([rng.choice(4, p=p) for p in logger])
    reward = means[x, action] + noise * rng.standard_normal(n)
    truth = 0.5 * (cand[x == 0][0] @ means[0]) + 0.5 * (cand[x == 1][0] @ means[1])
    return reward, action, logger[np.arange(n), action], cand, means[x], truth


def test_ipw_and_snipw_are_unbiased_on_a_synthetic_logged_bandit():
    reward, action, pscore, cand, _, truth = _synthetic(20_000, np.random.default_rng(11))
    for est in (ope.ipw(reward, action, pscore, cand), ope.snipw(reward, action, pscore, cand)):
        # truth = 0.5·(0.1+1.2+0.1+0.15) + 0.5·(0+0.1+0.2+2.1) = 1.975; 4 SE is far beyond a seeded fluke
        assert abs(est.value - truth) < 4 * est.se, (est, truth)
        assert est.se < 0.03  # and the test can fail: at n = 20000 the estimate is tight
    assert truth == pytest.approx(1.975)


def test_dr_with_the_exact_reward_model_is_the_truth_and_snipw_agrees_within_its_interval():
    reward, action, pscore, cand, q_true, truth = _synthetic(20_000, np.random.default_rng(5), noise=0.0)
    dr = ope.dr(reward, action, pscore, cand, q_true)
    # noiseless rewards and the exact model: every residual is 0, DR is the model's value per decision
    assert dr.value == pytest.approx((cand * q_true).sum(axis=1).mean(), abs=1e-12)
    assert abs(dr.value - truth) < 4 * dr.se + 1e-12
    sn = ope.snipw(reward, action, pscore, cand)
    assert sn.ci_low <= dr.value <= sn.ci_high


def test_crossfit_ridge_recovers_an_additive_reward():
    rng = np.random.default_rng(3)
    n, k = 2000, 3
    feats = np.zeros((n, k, 2))
    feats[:, 1, 0] = 1.0
    feats[:, 2, 1] = 1.0
    action = rng.integers(0, k, size=n)
    reward = np.array([1.0, 2.0, 4.0])[action] + 0.1 * rng.standard_normal(n)
    q = ope.crossfit_q_hat(feats, action, reward, model="ridge", alpha=1e-6)
    assert q.shape == (n, k) and np.allclose(q.mean(axis=0), [1.0, 2.0, 4.0], atol=0.02)


def test_crossfit_poisson_recovers_a_multiplicative_count_model_with_its_offset():
    """Follows scale with the follower base: mean = base/100 · (1, 2, 4) by action; the Poisson model with
    log(base) as offset predicts every (decision, action), including actions that decision did not take."""
    rng = np.random.default_rng(4)
    n, k = 4000, 3
    feats = np.zeros((n, k, 2))
    feats[:, 1, 0] = 1.0
    feats[:, 2, 1] = 1.0
    base = rng.uniform(200, 2000, size=n)
    action = rng.integers(0, k, size=n)
    truth = base[:, None] / 100 * np.array([1.0, 2.0, 4.0])
    reward = rng.poisson(truth[np.arange(n), action]).astype(float)
    q = ope.crossfit_q_hat(feats, action, reward, offset=np.log(base))
    assert np.allclose(q / truth, 1.0, atol=0.05)
    assert not ope.crossfit_q_hat(feats, action, np.zeros(n), offset=np.log(base)).any()  # nothing to learn: 0
    with pytest.raises(ValueError, match="reward model must be 'poisson' or 'ridge', got 'tree'"):
        ope.crossfit_q_hat(feats, action, reward, model="tree")


@pytest.mark.parametrize("kwargs, match", [
    ({"reward": [1.0, np.nan, 2.0]}, "reward has a missing"),
    ({"pscore": [0.5, 0.0, 0.25]}, r"pscore must be in \(0, 1\], found 0.0 at decision 1"),
    ({"pscore": [0.5, 1.5, 0.25]}, "pscore must be in"),
    ({"action": [0, 2, 0]}, r"action indices must be in 0..1"),
    ({"action": [0.0, 1.0, 0.0]}, "integer action indices"),
    ({"action_dist": [[1.0, 0.0], [0.5, 0.4], [0.5, 0.5]]}, "probability distributions"),
    ({"action_dist": [[1.0, 0.0]]}, r"action_dist must have shape \(3, K\)"),
    ({"q_hat": [[1.0], [0.0], [2.0]]}, "q_hat must be finite with the shape"),
    ({"reward": []}, "non-empty"),
])
def test_invalid_inputs_name_the_problem(kwargs, match):
    args = {"reward": REWARD, "action": ACTION, "pscore": PSCORE, "action_dist": DIST, "q_hat": Q_HAT, **kwargs}
    with pytest.raises(ValueError, match=match):
        ope.dr(**{k: np.asarray(v) for k, v in args.items()})


def test_snipw_without_any_overlap_is_an_error_and_evaluate_reports_it_as_missing():
    dist = np.array([[0.0, 1.0], [1.0, 0.0], [0.0, 1.0]])  # never the logged action
    with pytest.raises(ValueError, match="probability 0 to every logged action"):
        ope.snipw(REWARD, ACTION, PSCORE, dist)
    ests, ov = ope.evaluate(REWARD, ACTION, PSCORE, dist, Q_HAT)
    assert math.isnan(ests[2].value) and ests[1].value == 0.0 and ov.ess == 0.0


# ----------------------------------------------------------------------------- the candidate's distribution

SPACE = ope_replay.ActionSpace(tuple(DEFAULT.hooks), (9, 12, 19))


def _state(pulls: int = 3) -> PlanState:
    rng = np.random.default_rng(0)
    content = {}
    for h in DEFAULT.hooks:
        s = bandit.ArmStats(h)
        for _ in range(pulls):
            s = bandit.update(s, float(rng.normal(1.0, 0.3)))
        content[h] = s
    timing = {str(t): bandit.update(bandit.ArmStats(str(t)), float(t) / 10) for t in SPACE.hours}
    return PlanState(content_arms=content, timing_arms=timing, account_age_days=3.0)


def _hook_marginal(dist):
    return dist.reshape(len(SPACE.hooks), len(SPACE.hours)).sum(axis=1)


def test_fixed_and_random_candidates_are_exact():
    rng = np.random.default_rng(0)
    fixed = ope_replay.action_distribution(FixedPolicy("question", 19), _state(), list(SPACE.hooks), [9, 12, 19],
                                           SPACE, rng)
    assert fixed[SPACE.index("question", 19)] == 1.0 and fixed.sum() == 1.0
    # rotation rules the fixed hook out: uniform over the hooks offered, at the fixed hour
    offered = [h for h in SPACE.hooks if h != "question"]
    ruled = ope_replay.action_distribution(FixedPolicy("question", 19), _state(), offered, [9, 12, 19], SPACE, rng)
    assert ruled[SPACE.index(offered[0], 19)] == pytest.approx(1 / len(offered))
    assert ruled[SPACE.index("question", 19)] == 0.0
    # random over 2 offered hours: 1/(hooks·2), and never an hour not offered
    rand = ope_replay.action_distribution(RandomPolicy(), _state(), list(SPACE.hooks), [9, 19], SPACE, rng, draws=3)
    assert rand[SPACE.index("plain", 9)] == pytest.approx(1 / (2 * len(SPACE.hooks)))
    assert rand[SPACE.index("plain", 12)] == 0.0


@pytest.mark.parametrize("draws", [0, ope_replay.MAX_DRAWS + 1, 2.5, True])
def test_a_draw_count_out_of_range_is_refused_naming_it(draws):
    with pytest.raises(ValueError, match=f"draws must be between 1 and 10000, got {draws!r}"):
        ope_replay.action_distribution(RandomPolicy(), _state(), list(SPACE.hooks), [9], SPACE,
                                       np.random.default_rng(0), draws=draws)


def test_the_heuristics_distribution_matches_the_probability_it_reports_for_what_it_draws():
    state, rng = _state(), np.random.default_rng(1)
    dist = ope_replay.action_distribution(HeuristicPolicy(), state, list(SPACE.hooks), list(SPACE.hours), SPACE, rng,
                                          draws=300)
    hooks = _hook_marginal(dist)
    for _ in range(30):
        c = HeuristicPolicy().choose(state, list(SPACE.hooks), list(SPACE.hours), rng)
        assert hooks[SPACE.hooks.index(c.hook)] == pytest.approx(c.hook_propensity)


def test_the_learners_distribution_is_its_thompson_mixture_within_monte_carlo_error():
    state = _state(pulls=6)
    dist = ope_replay.action_distribution(XbotPolicy(), state, list(SPACE.hooks), list(SPACE.hours), SPACE,
                                          np.random.default_rng(2), draws=200)
    want = bandit.policy_probabilities(state.content_arms, list(SPACE.hooks), state.account_age_days,
                                       np.random.default_rng(3), n_mc=20000)
    assert dist.sum() == pytest.approx(1.0)
    assert np.allclose(_hook_marginal(dist), [want[h] for h in SPACE.hooks], atol=0.03)


def test_asking_the_learner_what_it_would_choose_logs_no_decision(caplog):
    """A young account's learner forces exploration and logs ``[BANDIT] explore forced`` for each choice it makes;
    the draws that read its probabilities are not choices made, and `xbot ope` printed dozens of them."""
    state = _state(pulls=1)
    with caplog.at_level("INFO", logger="xbot.policy"):
        ope_replay.action_distribution(XbotPolicy(), state, list(SPACE.hooks), list(SPACE.hours), SPACE,
                                       np.random.default_rng(4), draws=200)
        assert not [r for r in caplog.records if "[BANDIT]" in r.getMessage()]
        for seed in range(50):   # a real choice still logs, on the same thread, after the replay
            XbotPolicy().choose(state, list(SPACE.hooks), list(SPACE.hours), np.random.default_rng(seed))
    assert any("[BANDIT] explore forced" in r.getMessage() for r in caplog.records)


def _decision(i: int, t0: datetime, hook: str, hour: int, *, final: bool = True, **kw) -> ope_replay.LoggedDecision:
    created = t0 + timedelta(hours=6 * i)
    fields = dict(decision_id=f"d{i:03d}", decision_type="post", status="posted", created_at=created,
                  scheduled_at=created + timedelta(hours=2), posted_at=created + timedelta(hours=2), bandit_arm=hook,
                  hook_pattern=hook, topic=None, novelty=0.5, timing_arm=str(hour), hook_propensity=0.5,
                  hour_propensity=1.0, hour_from_experiment=False, followers=500.0,
                  final_at=created + timedelta(hours=26) if final else None, follows=float(i % 3),
                  profile_visits=10.0, reward_composite=1.0)
    fields.update(kw)
    return ope_replay.LoggedDecision(**fields)


def test_replay_sees_only_outcomes_final_before_each_decision_and_drops_what_it_cannot_evaluate():
    t0 = datetime(2026, 1, 5, tzinfo=timezone.utc)
    decisions = [_decision(i, t0, "question" if i % 2 else "plain", 9) for i in range(10)]
    decisions.append(_decision(10, t0, "plain", 12, hook_propensity=None))
    decisions.append(_decision(11, t0, "plain", 12, hour_from_experiment=True))
    decisions.append(_decision(12, t0, "plain", 12, final=False))
    rp = ope_replay.replay(decisions, posting_hours=[9, 12, 19], rotation_max_run=2, account_created_at=t0)
    assert len(rp.points) == 10
    assert rp.dropped == {"no final outcome": 1, "no propensities": 1, "hour from an experiment": 1,
                          "action outside the space": 0}
    # decision 5 is made 30 h in: only decision 0's outcome (final at 26 h) is known then
    assert len(rp.points[5].state.outcomes) == 1 and rp.points[5].state.content_arms["plain"].pulls == 1
    assert rp.points[0].state.outcomes == [] and rp.points[0].action == SPACE.index("plain", 9)
    assert rp.points[0].pscore == 0.5

