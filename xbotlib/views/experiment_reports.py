"""Experiments: the account's experiments with their assignments (``GET /api/experiments``) and each
one's lift report (``GET /api/experiments/{id}/lift``, the demo summary, the notebooks)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import pandas as pd

from xbotlib.core import lift
from xbotlib.store import experiments as experiment_store


def experiments(conn, account_id: str) -> list[dict]:
    """The account's experiments with assignments so far per arm, by experiment id
    (``xbotlib.store.experiments.list_experiments`` rows)."""
    return sorted(experiment_store.list_experiments(conn, account_id), key=lambda r: r["experiment_id"])


# ----------------------------------------------------------------------------- experiment lift

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


def experiment_lift(conn, account_id: str, experiment_id: str, world: str, *, seed: int = 0,
                    outcomes: Sequence[str] = ("reward_composite", "fpki")) -> LiftReport:
    """DR (AIPW), IPW and difference-in-means lift with balance and overlap diagnostics.

    An unknown ``experiment_id`` raises ``ValueError`` listing the valid ids; too little data gives a
    report with ``reason`` (the estimator's own message) and empty tables — no numbers are made up.
    """
    frame = experiment_store.lift_frame(conn, account_id, experiment_id, world)
    covariates = list(frame.attrs.get("covariates", []))
    empty = LiftReport(experiment_id, world, frame, covariates, pd.DataFrame(columns=_LIFT_COLUMNS),
                       pd.DataFrame(columns=["covariate", "mean_treatment", "mean_control", "smd", "smd_weighted"]),
                       pd.DataFrame(columns=["arm", "n", "propensity_min", "propensity_median", "propensity_max",
                                             "ess", "max_weight_share"]))
    try:
        table = lift.lift_table(frame, outcomes, covariates, seed=seed)
    except ValueError as exc:
        empty.reason = str(exc)
        return empty
    return LiftReport(experiment_id, world, frame, covariates, table, lift.balance_table(frame, covariates),
                      lift.overlap_summary(frame))


_LIFT_COLUMNS = ["outcome", "estimator", "estimate", "se", "ci_low", "ci_high", "n_treatment", "n_control",
                 "control_mean"]
