"""Predictors for the notebooks: the stored model versions, and every candidate model cross-validated
against its predict-the-mean (or base-rate) baseline. Read-only: training and storing a version is the
learn job's work (``xbotlib.jobs.once.persist_predictors`` runs it on a notebook's behalf).
"""
from __future__ import annotations

from typing import Any

import pandas as pd

from xbotlib.core.predictors import LightGBMFollows, LightGBMReward, LogisticFollows, RidgeReward, cross_validated_score
from xbotlib.store import training_data
from xbotlib.store.models import list_versions


def beats(score: float | None, baseline: float | None, tol: float = 1e-6) -> bool | None:
    """True when ``score`` is better than ``baseline`` by more than float noise; None when either is missing.

    A model that learned nothing (LightGBM on a few samples makes no split) reproduces the baseline
    up to rounding: that is not a win.
    """
    if score is None or baseline is None or pd.isna(score) or pd.isna(baseline):
        return None
    return bool(score - baseline > tol * max(1.0, abs(baseline)))


def predictor_comparison(conn, account_id: str, world: str, *, seed: int = 0, folds: int = 5) -> pd.DataFrame:
    """Cross-validated scores of ridge and LightGBM (reward) and logistic and LightGBM (P(follows≥1))
    against the predict-the-mean / base-rate baseline, on the account's final outcomes of ``world``.

    Columns: target, model, metric (r2 | neg_log_loss; higher is better), score, baseline_score,
    beats_baseline, loss, baseline_loss, n, folds, note. A model that cannot be scored (too few
    samples, a single class) has NaN scores and says why in ``note``.
    """
    content = training_data.training_frame(conn, account_id, world)
    follows = training_data.training_frame(conn, account_id, world, target="follows")
    specs = [("reward_composite", "ridge", RidgeReward, content, "reward"),
             ("reward_composite", "lightgbm", LightGBMReward, content, "reward"),
             ("follows>=1", "logistic", LogisticFollows, follows, "follows"),
             ("follows>=1", "lightgbm", LightGBMFollows, follows, "follows")]
    rows = []
    for target, name, factory, frame, kind in specs:
        row: dict[str, Any] = {"target": target, "model": name, "n": len(frame.y)}
        if len(frame.y) == 0:
            rows.append({**row, "note": "no final outcomes yet"})
            continue
        try:
            cv = cross_validated_score(factory, frame.X, frame.y, frame.w, folds=folds, seed=seed, kind=kind)
        except ValueError as exc:  # e.g. LightGBMFollows with one class only
            rows.append({**row, "note": str(exc)})
            continue
        row.update(metric=cv["metric"], score=cv["score"], baseline_score=cv["baseline_score"], loss=cv["loss"],
                   baseline_loss=cv["baseline_loss"], folds=cv["folds"], note=cv.get("reason", ""))
        rows.append(row)
    df = pd.DataFrame(rows, columns=["target", "model", "metric", "score", "baseline_score", "beats_baseline",
                                     "loss", "baseline_loss", "n", "folds", "note"])
    df["score"] = pd.to_numeric(df["score"])
    df["baseline_score"] = pd.to_numeric(df["baseline_score"])
    df["beats_baseline"] = [beats(s, b) for s, b in zip(df["score"], df["baseline_score"])]
    df["note"] = df["note"].fillna("")
    return df


def model_versions(conn, account_id: str) -> pd.DataFrame:
    """Every stored predictor version, newest first per kind: key, status, algorithm, world, samples,
    cross-validated score vs baseline, and why a rejected one was not served.

    ``status`` is active (it serves), retired (served once, replaced) or rejected (never served:
    ``rejected_reason`` says which bar it missed, the baseline or the active version).
    """
    # no "beats_baseline" here: serving asks more (beat the baseline by a margin, and the active version),
    # so ``status`` and ``rejected_reason`` are the answer and a bare comparison would contradict them
    cols = ["predictor_key", "status", "algorithm", "world", "target", "n_samples", "cv_score", "baseline_score",
            "trained_at", "rejected_reason", "is_active"]
    rows = list_versions(conn, account_id)
    df = pd.DataFrame(rows)
    if df.empty:
        return pd.DataFrame(columns=cols)
    df["rejected_reason"] = df["rejected_reason"].fillna("")
    return df[cols]

