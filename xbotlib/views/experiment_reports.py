"""Experiments: the account's experiments with their assignments (``GET /api/experiments``) and each
one's lift report (``GET /api/experiments/{id}/lift``, the demo summary, the notebooks).

One computation, one seed: ``experiment_lift`` is the only place a lift is computed for display, and
``LIFT_SEED`` is the cross-fitting seed every surface uses unless a caller asks for another.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import pandas as pd

from xbotlib.core import decision as lift_decision
from xbotlib.core import lift
from xbotlib.store import experiments as experiment_store


def experiments(conn, account_id: str) -> list[dict]:
    """The account's experiments with assignments so far per arm, by experiment id
    (``xbotlib.store.experiments.list_experiments`` rows)."""
    return sorted(experiment_store.list_experiments(conn, account_id), key=lambda r: r["experiment_id"])


# ----------------------------------------------------------------------------- experiment lift

LIFT_SEED = 0  # the DR cross-fitting seed of the demo summary, the report and the API alike
METRICS = (lift_decision.PRIMARY, *lift_decision.GUARDRAILS)  # fpki first, then the guardrails

@dataclass
class LiftReport:
    """Everything ``experiment_lift`` shows. ``reason`` is set (and ``table`` empty) when not estimable."""
    experiment_id: str
    world: str
    frame: pd.DataFrame
    covariates: list[str]
    table: pd.DataFrame
    balance: pd.DataFrame
    overlap: pd.DataFrame
    reason: str | None = None
    decision: lift_decision.Decision | None = None  # verdict, relative lifts, SRM; None when not estimable
    seed: int = 0

    @property
    def estimable(self) -> bool:
        return self.reason is None

    def arm_sizes(self) -> pd.DataFrame:
        """Units per arm and their mean outcomes (the raw numbers under every estimate)."""
        cols = ["arm", "n", "reward_composite_mean", "fpki_mean", "impressions_mean"]
        if self.frame.empty:
            return pd.DataFrame({"arm": ["control", "treatment"], "n": [0, 0]}).reindex(columns=cols)
        g = self.frame.groupby("arm")
        out = pd.DataFrame({"n": g.size(), "reward_composite_mean": g["reward_composite"].mean(),
                            "fpki_mean": g["fpki"].mean(), "impressions_mean": g["impressions"].mean()})
        return out.reindex(["control", "treatment"]).fillna({"n": 0}).astype({"n": int}).rename_axis("arm") \
            .reset_index()[cols]

    def summary(self) -> str:
        n_t = int(self.frame["treatment"].sum()) if len(self.frame) else 0
        head = (f"experiment {self.experiment_id} ({self.world}): {len(self.frame)} posts with a final outcome, "
                f"treatment {n_t}, control {len(self.frame) - n_t}")
        if not self.estimable:
            return f"{head}\nnot estimable yet: {self.reason}"
        sim = " (simulated outcomes)" if bool(self.frame["simulated"].any()) else ""
        return f"{head}{sim}\ncovariates: {', '.join(self.covariates) or 'none'}"

    def metrics_table(self) -> pd.DataFrame:
        """The decision's metrics as people read them: relative lift and intervals in %, DR means.

        Columns: metric, role, control, treatment (DR means), lift (%), 95% interval, always-valid 95%,
        more posts per arm (for 80% power at the current effect; blank once detected)."""
        cols = ["metric", "role", "control", "treatment", "lift", "95% interval", "always-valid 95%",
                "more posts per arm"]
        if self.decision is None:
            return pd.DataFrame(columns=cols)
        rows = []
        for m in self.decision.metrics:
            if m.relative is not None:
                lift_, ci, cs = _pct(m.relative), _pair(m.relative_ci_low, m.relative_ci_high, _pct), \
                    _pair(m.relative_cs_low, m.relative_cs_high, _pct)
            else:
                lift_, ci, cs = f"{m.absolute:+.3g}", _pair(m.absolute_ci_low, m.absolute_ci_high, _num), \
                    _pair(m.absolute_cs_low, m.absolute_cs_high, _num)
            detected = lift_decision.verdict_of(m) != lift_decision.UNDECIDED
            more = "" if detected or m.more_posts_per_arm is None else f"{m.more_posts_per_arm:,}"
            rows.append([m.label, m.role, f"{m.control_mean:.3g}", f"{m.treatment_mean:.3g}", lift_, ci, cs, more])
        return pd.DataFrame(rows, columns=cols)

    def estimator_note(self, metric: str = lift_decision.PRIMARY) -> str:
        """When DR, IPW and difference in means disagree, and whether they do here (the appendix's sentence)."""
        return lift_decision.estimator_note(self.table, metric)


def experiment_lift(conn, account_id: str, experiment_id: str, world: str, *, seed: int | None = None,
                    outcomes: Sequence[str] = METRICS) -> LiftReport:
    """The decision (verdict, relative lift with fixed-n and always-valid intervals on fpki and the
    guardrails, sample-ratio check), DR (AIPW), IPW and difference-in-means lift (the appendix) with
    balance and overlap diagnostics. ``seed`` (default ``LIFT_SEED``) sets the DR cross-fitting folds.

    An unknown ``experiment_id`` raises ``ValueError`` listing the valid ids; too little data gives a
    report with ``reason`` (the estimator's own message) and empty tables — no numbers are made up.
    """
    seed = LIFT_SEED if seed is None else seed
    frame = experiment_store.lift_frame(conn, account_id, experiment_id, world)
    covariates = list(frame.attrs.get("covariates", []))
    empty = LiftReport(experiment_id, world, frame, covariates, pd.DataFrame(columns=_LIFT_COLUMNS),
                       pd.DataFrame(columns=["covariate", "mean_treatment", "mean_control", "smd", "smd_weighted"]),
                       pd.DataFrame(columns=["arm", "n", "propensity_min", "propensity_median", "propensity_max",
                                             "ess", "max_weight_share"]), seed=seed)
    try:
        table = lift.lift_table(frame, outcomes, covariates, seed=seed)
        verdict = lift_decision.decide(frame, covariates, seed=seed, primary=lift_decision.PRIMARY,
                                       guardrails=[o for o in outcomes if o != lift_decision.PRIMARY])
    except ValueError as exc:
        empty.reason = str(exc)
        return empty
    return LiftReport(experiment_id, world, frame, covariates, table, lift.balance_table(frame, covariates),
                      lift.overlap_summary(frame), decision=verdict, seed=seed)


def _pct(x: float) -> str:
    return f"{100 * x:+.1f}%"


def _num(x: float) -> str:
    return f"{x:+.3g}"


def _pair(low: float, high: float, fmt) -> str:
    return f"[{fmt(low)}, {fmt(high)}]"


_LIFT_COLUMNS = ["outcome", "estimator", "estimate", "se", "ci_low", "ci_high", "n_treatment", "n_control",
                 "control_mean"]
