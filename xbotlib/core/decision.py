"""The decision an experiment report leads with: relative lift with fixed-n and always-valid intervals,
a verdict, the posts still needed, guardrails and a sample-ratio-mismatch check.

Pure functions over the frame ``xbotlib.core.lift`` takes (``treatment``, ``propensity``, the metric
columns, the covariates). Everything rests on the doubly-robust (AIPW) values of the two potential-outcome
means from ``lift.aipw_potential_outcomes``, per row i::

    phi1_i = mu1(x_i) + t_i (y_i - mu1(x_i)) / e_i        phi0_i = mu0(x_i) + (1 - t_i)(y_i - mu0(x_i)) / (1 - e_i)

**Relative lift** is the ratio of the DR potential-outcome means, r = m1 / m0 - 1 with m1 = mean(phi1),
m0 = mean(phi0). Its interval comes from the influence function of log(m1 / m0) (the delta method
applied to both means jointly), back-transformed::

    psi_log_i = (phi1_i - m1) / m1 - (phi0_i - m0) / m0     interval = exp(log(m1/m0) ± z sd(psi_log)/sqrt(n)) - 1

Why the ratio of DR means and not "DR estimate / raw control mean": the denominator is estimated from
the same rows as the numerator, and the joint influence function carries their covariance; the raw
control mean ignores it and the covariate adjustment the numerator got, and with a changed allocation
it is biased (like the difference in means). Why on the log scale: per-post fpki is a few
over-dispersed counts, and at tens of posts per arm the ratio's sampling distribution is right-skewed;
the symmetric delta interval on the ratio itself (GrowthBook's) then covered the truth at every daily
read only ~90% of the time against ~97% for the log form (``bench/bench_sequential.py``, BENCHMARKS.md).
The log interval is asymmetric and never goes below -100%. It needs both means positive; otherwise the
lift is given in absolute units only.

**Always-valid interval.** A report read every day tests every day; a 95% fixed-n interval then
excludes the truth on *some* day far more often than 5% of the time. Beside it we give the asymptotic
confidence sequence of Waudby-Smith, Arbour, Sinha, Kennedy & Ramdas (2023, "Time-uniform central limit
theory and asymptotic confidence sequences", Ann. Statist., Thm 2.2; the normal-mixture boundary of
Robbins as in Howard, Ramdas, McAuliffe & Sekhon 2021, eq. 14), applied to the DR influence values
(their section on doubly-robust sequential estimation)::

    estimate  ±  sd(psi) * sqrt( 2 (n rho^2 + 1) / (n^2 rho^2) * log( sqrt(n rho^2 + 1) / alpha ) )

valid simultaneously for all n (asymptotically), so it may be read daily. ``rho`` sets the n where the
sequence is tightest: rho^2 = (-2 log alpha + log(-2 log alpha + 1)) / n*  with n* = ``CS_TUNING_N``.

**Posts needed.** The total sample at which a two-sided 5% test of the current relative effect has 80%
power is n_req = ((z_.975 + z_.8) sd(psi_log) / log(1 + r))^2 (the variance per post from the influence values,
so the current allocation and covariate adjustment are in it); ``more_posts_per_arm`` is
ceil((n_req - n) / 2). It is a fixed-n figure: the always-valid interval needs somewhat more.

**Sample ratio.** Under randomisation the number of treated posts has mean sum(e_i) (the stored
propensities, so an allocation changed mid-experiment is accounted for). Pearson's chi-square of the
arm counts against (sum e_i, sum (1 - e_i)), 1 degree of freedom, flags a mismatch at p < 0.001
(GrowthBook's default threshold: checked on every read, so a stricter level keeps false alarms rare).
A mismatch means assignment, posting or outcome collection treats the arms differently, and no estimate
can be trusted until that is fixed.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any, Sequence

import numpy as np
import pandas as pd
from scipy import stats

from xbotlib.core import lift

ALPHA = 0.05
POWER = 0.80
SRM_P_VALUE = 0.001
# Where the always-valid interval is tightest: around a month of one experiment's posts. Its width
# changes slowly with this choice (at most 8% wider than the best over n* in [n/4, 4n]); it is ~1.6x the fixed-n one.
CS_TUNING_N = 200
PRIMARY = "fpki"
GUARDRAILS = ("impressions", "reward_composite", "replies")
METRIC_LABELS = {"fpki": "follows per 1,000 impressions", "impressions": "impressions per post",
                 "reward_composite": "composite reward", "replies": "replies per post"}
WINS, LOSES, UNDECIDED = "treatment wins", "treatment loses", "no detectable difference yet"


@dataclass(frozen=True)
class MetricLift:
    """One metric's DR lift. Absolute figures are in the metric's units (treatment minus control);
    relative ones are fractions (0.12 = +12%), None unless both arms' means are positive."""
    metric: str
    role: str                      # "primary" or "guardrail"
    n_treatment: int
    n_control: int
    treatment_mean: float          # DR estimate of E[Y(1)]
    control_mean: float            # DR estimate of E[Y(0)]
    absolute: float
    absolute_ci_low: float         # fixed-n 95%
    absolute_ci_high: float
    absolute_cs_low: float         # always-valid 95%
    absolute_cs_high: float
    relative: float | None
    relative_ci_low: float | None
    relative_ci_high: float | None
    relative_cs_low: float | None
    relative_cs_high: float | None
    more_posts_per_arm: int | None  # to detect the current effect with 80% power; 0 when already powered

    @property
    def label(self) -> str:
        return METRIC_LABELS.get(self.metric, self.metric)

    def interval(self, always_valid: bool) -> tuple[float, float]:
        """The interval the verdict reads: relative when defined, else absolute."""
        if self.relative is not None:
            return (self.relative_cs_low, self.relative_cs_high) if always_valid else \
                (self.relative_ci_low, self.relative_ci_high)
        return (self.absolute_cs_low, self.absolute_cs_high) if always_valid else \
            (self.absolute_ci_low, self.absolute_ci_high)

    def describe(self) -> str:
        """'+12.3% [-4.0%, +28.6%] (always-valid [-9.9%, +34.5%])', or absolute units without a control mean."""
        if self.relative is not None:
            return (f"{_pct(self.relative)} [{_pct(self.relative_ci_low)}, {_pct(self.relative_ci_high)}] "
                    f"(always-valid [{_pct(self.relative_cs_low)}, {_pct(self.relative_cs_high)}])")
        return (f"{self.absolute:+.3g} [{self.absolute_ci_low:+.3g}, {self.absolute_ci_high:+.3g}] "
                f"(always-valid [{self.absolute_cs_low:+.3g}, {self.absolute_cs_high:+.3g}]; absolute: an arm's "
                f"mean is not positive)")

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "label": self.label}


@dataclass(frozen=True)
class SampleRatio:
    """Arm counts against the counts the stored propensities lead to expect."""
    n_treatment: int
    n_control: int
    expected_treatment: float
    expected_control: float
    chi2: float
    p_value: float
    flagged: bool

    def describe(self) -> str:
        what = "SAMPLE RATIO MISMATCH" if self.flagged else "sample ratio ok"
        return (f"{what}: {self.n_treatment} treatment / {self.n_control} control posts where the allocation "
                f"leads to expect {self.expected_treatment:.0f} / {self.expected_control:.0f} "
                f"(chi-square {self.chi2:.2f}, p = {self.p_value:.3g}; flagged below {SRM_P_VALUE})")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Decision:
    """What a growth lead acts on: the verdict on the primary metric, guardrails, sample ratio."""
    verdict: str                   # WINS, LOSES or UNDECIDED
    line: str                      # the one-line verdict as every surface prints it
    primary: MetricLift
    guardrails: list[MetricLift]
    srm: SampleRatio
    warnings: list[str] = field(default_factory=list)

    @property
    def metrics(self) -> list[MetricLift]:
        return [self.primary, *self.guardrails]

    def to_dict(self) -> dict[str, Any]:
        return {"verdict": self.verdict, "line": self.line, "primary": self.primary.to_dict(),
                "guardrails": [g.to_dict() for g in self.guardrails], "srm": self.srm.to_dict(),
                "warnings": list(self.warnings)}


# ----------------------------------------------------------------------------- pieces

def always_valid_radius(sd: float, n: int, alpha: float = ALPHA, tuning_n: int = CS_TUNING_N) -> float:
    """Half-width of the asymptotic confidence sequence (module docstring) for a mean of n values with sd ``sd``."""
    if n < 1 or tuning_n < 1 or not 0 < alpha < 1:
        raise ValueError(f"need n >= 1, tuning_n >= 1 and 0 < alpha < 1, got n={n!r}, tuning_n={tuning_n!r}, "
                         f"alpha={alpha!r}")
    la = -2.0 * math.log(alpha)
    rho2 = (la + math.log(la + 1.0)) / tuning_n
    return float(sd * math.sqrt(2.0 * (n * rho2 + 1.0) / (n * n * rho2) * math.log(math.sqrt(n * rho2 + 1.0) / alpha)))


def more_posts_per_arm(effect: float, sd: float, n: int, alpha: float = ALPHA, power: float = POWER) -> int | None:
    """More posts per arm until a two-sided ``alpha`` test of ``effect`` has ``power`` (module docstring);
    None when the effect is 0 or not finite (nothing to detect)."""
    if not math.isfinite(effect) or not math.isfinite(sd) or effect == 0:
        return None
    z = stats.norm.ppf(1 - alpha / 2) + stats.norm.ppf(power)
    n_required = (z * sd / effect) ** 2
    return math.ceil(max(0.0, n_required - n) / 2)


def sample_ratio(df: pd.DataFrame) -> SampleRatio:
    """Chi-square of the arm counts against the stored propensities (module docstring)."""
    lift.validate(df, "treatment")
    t = df["treatment"].to_numpy(dtype=float)
    e = df["propensity"].to_numpy(dtype=float)
    observed = np.array([t.sum(), len(t) - t.sum()])
    expected = np.array([e.sum(), (1 - e).sum()])
    chi2 = float(np.sum((observed - expected) ** 2 / expected))
    p = float(stats.chi2.sf(chi2, df=1))
    return SampleRatio(int(observed[0]), int(observed[1]), float(expected[0]), float(expected[1]), chi2, p,
                       p < SRM_P_VALUE)


def metric_lift(df: pd.DataFrame, metric: str, covariates: Sequence[str] = (), *, seed: int = 0,
                role: str = "primary", n_folds: int = 5, model: Any = "ridge",
                tuning_n: int = CS_TUNING_N) -> MetricLift:
    """DR absolute and relative lift of ``metric`` with fixed-n and always-valid 95% intervals."""
    phi1, phi0 = lift.aipw_potential_outcomes(df, metric, covariates, n_folds=n_folds, seed=seed, model=model)
    n = len(phi1)
    n_t = int(df["treatment"].sum())
    m1, m0 = float(phi1.mean()), float(phi0.mean())
    psi = phi1 - phi0
    tau, sd = float(psi.mean()), float(np.std(psi, ddof=1))
    z = lift.Z95
    fixed, seq = z * sd / math.sqrt(n), always_valid_radius(sd, n, tuning_n=tuning_n)
    rel = None
    more = more_posts_per_arm(tau, sd, n)
    rel_ci = rel_cs = (None, None)
    if m0 > 0 and m1 > 0:
        psi_log = (phi1 - m1) / m1 - (phi0 - m0) / m0
        sd_log, log_ratio = float(np.std(psi_log, ddof=1)), math.log(m1 / m0)
        rel = m1 / m0 - 1.0
        rel_ci = _back(log_ratio, z * sd_log / math.sqrt(n))
        rel_cs = _back(log_ratio, always_valid_radius(sd_log, n, tuning_n=tuning_n))
        more = more_posts_per_arm(log_ratio, sd_log, n)
    return MetricLift(metric, role, n_t, n - n_t, m1, m0, tau, tau - fixed, tau + fixed, tau - seq, tau + seq, rel,
                      *rel_ci, *rel_cs, more)


def _back(log_ratio: float, radius: float) -> tuple[float, float]:
    """A log-ratio interval as a relative-lift interval (fractions)."""
    return math.expm1(log_ratio - radius), math.expm1(log_ratio + radius)


def verdict_of(m: MetricLift) -> str:
    """WINS / LOSES when the always-valid interval excludes 0, else UNDECIDED."""
    low, high = m.interval(always_valid=True)
    return WINS if low > 0 else LOSES if high < 0 else UNDECIDED


# ----------------------------------------------------------------------------- the decision

def decide(df: pd.DataFrame, covariates: Sequence[str] = (), *, seed: int = 0, primary: str = PRIMARY,
           guardrails: Sequence[str] = GUARDRAILS, tuning_n: int = CS_TUNING_N) -> Decision:
    """The verdict on ``primary`` from its always-valid interval, guardrails that got significantly
    worse, and the sample-ratio check, with the one line every surface prints.

    Raises ``ValueError`` (from ``lift.validate``) when the frame cannot be estimated.
    """
    main = metric_lift(df, primary, covariates, seed=seed, role="primary", tuning_n=tuning_n)
    guards = [metric_lift(df, g, covariates, seed=seed, role="guardrail", tuning_n=tuning_n)
              for g in guardrails if g != primary]
    srm = sample_ratio(df)
    verdict = verdict_of(main)
    line = f"{verdict}: {main.label} {main.describe()}, {main.n_treatment} treatment vs {main.n_control} control posts"
    warnings = []
    if verdict == UNDECIDED:
        low, high = main.interval(always_valid=False)
        if low > 0 or high < 0:
            line += ("; the fixed-n interval excludes 0, but a report read every day does that by chance — "
                     "wait for the always-valid one")
        effect = main.relative if main.relative is not None else main.absolute
        if main.more_posts_per_arm is None:
            line += "; the estimate is exactly 0, so there is no effect to power for"
        else:
            size = _pct(effect) if main.relative is not None else f"{effect:+.3g}"
            line += f"; about {main.more_posts_per_arm:,} more posts per arm would detect {size} with 80% power"
            if main.more_posts_per_arm > 100 * (main.n_treatment + main.n_control):
                line += " (too small an effect to detect at this volume)"
    harmed = [g for g in guards if verdict_of(g) == LOSES]
    if harmed:
        warnings.append("guardrail " + "; ".join(f"{g.label} worse: {g.describe()}" for g in harmed))
    if srm.flagged:
        warnings.insert(0, srm.describe() + " — fix assignment or collection before trusting these figures")
    if warnings:
        line = " ".join(f"[{w}]" for w in warnings) + " " + line
    return Decision(verdict, line, main, guards, srm, warnings)


def estimator_note(table: pd.DataFrame, metric: str = PRIMARY) -> str:
    """A sentence on when DR, IPW and difference in means disagree, and what this table shows.

    ``table`` is ``lift.lift_table`` output (rows difference_in_means, ipw_hajek, aipw_*)."""
    general = ("All three estimate the same average effect. Difference in means is biased when the allocation "
               "changed while outcomes drifted; IPW removes that bias with the stored propensities but is noisier; "
               "DR adds outcome models on pre-treatment covariates, stays unbiased when they are wrong and is "
               "tighter when they predict well, which is why it leads. They disagree by more than noise only when "
               "propensities were stored wrong, the allocation changed during a trend, or a few posts dominate.")
    rows = table[table["outcome"] == metric].set_index("estimator")
    dr_name = next((e for e in rows.index if e.startswith("aipw")), None)
    if dr_name is None or rows.empty:
        return general
    dr = rows.loc[dr_name]
    excludes = {e: bool(r["ci_low"] > 0 or r["ci_high"] < 0) for e, r in rows.iterrows()}
    names = {"difference_in_means": "difference in means", "ipw_hajek": "IPW", dr_name: "DR"}
    odd = [names.get(e, e) for e, x in excludes.items() if x != excludes[dr_name] and e != dr_name]
    specific = []
    if odd:
        plural = len(odd) > 1
        verb = ("exclude" if plural else "excludes") if not excludes[dr_name] else \
            ("do not exclude" if plural else "does not exclude")
        specific.append(f"Here {' and '.join(odd)} {verb} 0 while DR {'does' if excludes[dr_name] else 'does not'}: "
                        "trust DR, whose interval accounts for the covariates and the stored propensities; at this "
                        "sample size the others' normal intervals are as likely to be lucky as right.")
    gap = max(abs(rows.loc[e, "estimate"] - dr["estimate"]) for e in rows.index)
    if dr["se"] > 0 and gap > 2 * dr["se"]:
        specific.append("The estimates differ by more than two of DR's standard errors: check the balance and "
                        "overlap tables below before trusting any of them.")
    return " ".join([general, *specific])


def _pct(x: float | None) -> str:
    return "n/a" if x is None else f"{100 * x:+.1f}%"
