"""The lift report's decision: relative lift and its intervals, verdict, posts needed, guardrails and the
sample-ratio check, on simulated randomised experiments with a known effect."""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from xbotlib.core import decision, lift
from xbotlib.core.decision import LOSES, UNDECIDED, WINS

COVARIATES = ["x0", "x1", "x2"]
BASE_FPKI = 2.0


def experiment(seed: int, n: int = 600, lift_factor: float = 1.3, allocations=(0.5, 0.3),
               replies_factor: float = 1.0) -> pd.DataFrame:
    """fpki-like counts whose mean is BASE_FPKI * exp(0.4 x0 + 0.2 x1) * lift_factor under treatment.

    Every unit's treated mean is ``lift_factor`` times its control mean, so the true relative lift is
    exactly ``lift_factor - 1``. The allocation changes half-way (the stored propensities follow).
    Guardrails: impressions (no effect), composite reward (half the fpki effect), replies (``replies_factor``).
    """
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 3))
    e = np.where(np.arange(n) < n // 2, allocations[0], allocations[1])
    t = (rng.random(n) < e).astype(int)
    mean = BASE_FPKI * np.exp(0.4 * x[:, 0] + 0.2 * x[:, 1])
    df = pd.DataFrame(x, columns=COVARIATES)
    df["treatment"], df["propensity"] = t, e
    df["fpki"] = rng.poisson(mean * np.where(t == 1, lift_factor, 1.0)).astype(float)
    df["impressions"] = rng.gamma(4.0, 250.0, n) * np.exp(0.3 * x[:, 0])
    df["reward_composite"] = 0.5 * df["fpki"] + rng.normal(0, 0.3, n)
    df["replies"] = rng.poisson(3.0 * np.where(t == 1, replies_factor, 1.0), n).astype(float)
    return df


def test_known_effect_verdict_relative_lift_and_interval():
    """+30% on fpki, 600 posts: treatment wins, the relative lift is near +30% and both intervals cover it."""
    d = decision.decide(experiment(8), COVARIATES)
    m = d.primary
    assert d.verdict == WINS and d.line.startswith("treatment wins: follows per 1,000 impressions +")
    assert m.relative == pytest.approx(0.30, abs=0.08)
    assert m.relative_ci_low <= 0.30 <= m.relative_ci_high
    assert m.relative_cs_low <= m.relative_ci_low and m.relative_cs_high >= m.relative_ci_high  # wider
    assert m.relative_cs_low > 0
    assert [g.metric for g in d.guardrails] == ["impressions", "reward_composite", "replies"]
    assert not d.srm.flagged and not d.warnings


def test_relative_lift_is_the_ratio_of_the_dr_means_and_the_absolute_is_aipw():
    df = experiment(3)
    m = decision.metric_lift(df, "fpki", COVARIATES, seed=4)
    dr = lift.aipw(df, "fpki", COVARIATES, seed=4)
    phi1, phi0 = lift.aipw_potential_outcomes(df, "fpki", COVARIATES, seed=4)
    assert m.absolute == pytest.approx(dr.estimate, rel=1e-12)
    assert (m.absolute_ci_low, m.absolute_ci_high) == pytest.approx((dr.ci_low, dr.ci_high), rel=1e-12)
    assert m.relative == pytest.approx(phi1.mean() / phi0.mean() - 1, rel=1e-12)
    # the interval is symmetric on the log scale around log(m1/m0), never below -100%
    centre = math.log(phi1.mean() / phi0.mean())
    assert math.log1p(m.relative_ci_low) + math.log1p(m.relative_ci_high) == pytest.approx(2 * centre)
    assert math.log1p(m.relative_cs_low) + math.log1p(m.relative_cs_high) == pytest.approx(2 * centre)
    assert m.relative_cs_low > -1
    assert (m.treatment_mean, m.control_mean) == pytest.approx((phi1.mean(), phi0.mean()))
    assert (m.n_treatment, m.n_control) == (dr.n_treatment, dr.n_control)


def test_relative_interval_covers_the_known_lift_at_the_nominal_rate():
    seeds = range(120)  # fixed: reproducible, not a flaky draw
    lifts = [decision.metric_lift(experiment(s, n=400), "fpki", COVARIATES, seed=s) for s in seeds]
    fixed = np.mean([m.relative_ci_low <= 0.3 <= m.relative_ci_high for m in lifts])
    always = np.mean([m.relative_cs_low <= 0.3 <= m.relative_cs_high for m in lifts])
    assert 0.90 <= fixed <= 0.99, fixed
    assert always >= fixed and always >= 0.97, always
    assert abs(np.mean([m.relative for m in lifts]) - 0.3) < 0.02  # the ratio estimate is near unbiased


def test_no_effect_is_no_detectable_difference_and_says_how_many_more_posts():
    d = decision.decide(experiment(5, n=200, lift_factor=1.0), COVARIATES)
    assert d.verdict == UNDECIDED
    assert d.primary.more_posts_per_arm is not None and d.primary.more_posts_per_arm > 0
    assert f"about {d.primary.more_posts_per_arm:,} more posts per arm would detect" in d.line
    assert "with 80% power" in d.line


def test_a_harmful_treatment_loses():
    assert decision.decide(experiment(2, n=800, lift_factor=0.6), COVARIATES).verdict == LOSES


def test_posts_needed_reach_80_percent_power():
    """At the sample the formula asks for, a fixed-n 5% test detects the effect about 80% of the time."""
    small = decision.metric_lift(experiment(0, n=200, lift_factor=1.15), "fpki", COVARIATES)
    # the per-post spread of a larger pilot, so the target n is not itself a noisy draw
    pilot = decision.metric_lift(experiment(1, n=3000, lift_factor=1.15), "fpki", COVARIATES)
    sd_log = (math.log1p(pilot.relative_ci_high) - math.log1p(pilot.relative_ci_low)) / (2 * lift.Z95) * math.sqrt(3000)
    n_needed = 200 + 2 * decision.more_posts_per_arm(math.log(1.15), sd_log, 200)
    assert small.more_posts_per_arm > 0
    detected = [decision.metric_lift(experiment(100 + s, n=n_needed, lift_factor=1.15, allocations=(0.5, 0.5)),
                                     "fpki", COVARIATES).relative_ci_low > 0 for s in range(80)]
    assert 0.65 <= np.mean(detected) <= 0.92, (n_needed, np.mean(detected))


def test_more_posts_per_arm_formula():
    z = 1.959963984540054 + 0.8416212335729143
    assert decision.more_posts_per_arm(0.1, 1.0, 100) == math.ceil(((z / 0.1) ** 2 - 100) / 2)
    assert decision.more_posts_per_arm(0.1, 1.0, 10_000) == 0  # already powered
    assert decision.more_posts_per_arm(0.0, 1.0, 100) is None
    assert decision.more_posts_per_arm(float("nan"), 1.0, 100) is None


def test_always_valid_radius_is_wider_than_fixed_and_shrinks():
    radii = [decision.always_valid_radius(1.0, n) for n in (10, 100, 1000, 10_000)]
    assert all(r > lift.Z95 / math.sqrt(n) for r, n in zip(radii, (10, 100, 1000, 10_000)))
    assert radii == sorted(radii, reverse=True)
    # the normal-mixture boundary of the module docstring, by hand at n = 200 = n*
    la = -2 * math.log(0.05)
    rho2 = (la + math.log(la + 1)) / 200
    want = math.sqrt(2 * (200 * rho2 + 1) / (200 ** 2 * rho2) * math.log(math.sqrt(200 * rho2 + 1) / 0.05))
    assert decision.always_valid_radius(1.0, 200) == pytest.approx(want)


@pytest.mark.parametrize("kwargs, match", [({"sd": 1.0, "n": 0}, "n=0"), ({"sd": 1.0, "n": 5, "alpha": 1.5}, "alpha=1.5"),
                                           ({"sd": 1.0, "n": 5, "tuning_n": 0}, "tuning_n=0")])
def test_always_valid_radius_rejects_bad_inputs(kwargs, match):
    with pytest.raises(ValueError, match=match):
        decision.always_valid_radius(**kwargs)


def test_srm_flags_a_skewed_split_and_not_a_fair_one():
    rng = np.random.default_rng(0)
    fair = pd.DataFrame({"propensity": 0.5, "treatment": (rng.random(600) < 0.5).astype(int)})
    assert not decision.sample_ratio(fair).flagged
    skewed = pd.DataFrame({"propensity": 0.5, "treatment": [1] * 360 + [0] * 240})  # 60/40 under a 50/50 allocation
    srm = decision.sample_ratio(skewed)
    assert srm.flagged and srm.p_value < 0.001 and srm.chi2 == pytest.approx(24.0)
    assert (srm.expected_treatment, srm.expected_control) == (300.0, 300.0)
    assert "SAMPLE RATIO MISMATCH: 360 treatment / 240 control" in srm.describe()


def test_srm_reads_a_changed_allocation_from_the_stored_propensities():
    df = experiment(7, n=1000, allocations=(0.5, 0.2))  # assigned as stored: fine
    assert not decision.sample_ratio(df).flagged
    wrong = df.assign(propensity=0.5)  # the allocation change was not recorded
    assert decision.sample_ratio(wrong).flagged


def test_srm_and_harmed_guardrails_lead_the_line():
    df = experiment(9, n=800, replies_factor=0.5)
    skew = df.assign(treatment=np.where(np.arange(len(df)) % 5 == 0, 0, df["treatment"]))  # drop treated rows
    d = decision.decide(skew, COVARIATES)
    assert d.srm.flagged and d.line.startswith("[SAMPLE RATIO MISMATCH")
    assert any(w.startswith("guardrail replies per post worse:") for w in d.warnings)
    assert "guardrail replies per post worse" in d.line


def test_a_non_positive_control_mean_gives_an_absolute_lift():
    df = experiment(4).assign(reward_composite=lambda f: f["reward_composite"] - 10)
    m = decision.metric_lift(df, "reward_composite", COVARIATES, role="guardrail")
    assert m.relative is None and m.relative_ci_low is None and m.control_mean < 0
    assert m.absolute_cs_low < m.absolute_ci_low < m.absolute < m.absolute_ci_high < m.absolute_cs_high
    assert "absolute: an arm's mean is not positive" in m.describe()


def test_estimator_note_says_when_they_disagree():
    rows = [("difference_in_means", 0.5, 0.2, 0.1, 0.9), ("ipw_hajek", 0.5, 0.2, 0.1, 0.9),
            ("aipw_ridge", 0.3, 0.2, -0.1, 0.7)]
    table = pd.DataFrame([{"outcome": "fpki", "estimator": e, "estimate": x, "se": s, "ci_low": lo, "ci_high": hi}
                          for e, x, s, lo, hi in rows])
    note = decision.estimator_note(table)
    assert note.startswith("All three estimate the same average effect.")
    assert "Here difference in means and IPW exclude 0 while DR does not: trust DR" in note
    agree = table.assign(ci_low=-0.1)
    assert "Here" not in decision.estimator_note(agree)
    far = table.assign(estimate=[2.0, 2.0, 0.3])
    assert "more than two of DR's standard errors" in decision.estimator_note(far)
