"""Versioned predictors in PostgreSQL (table ``predictors``; keys ``predictor:{kind}:v{N}``).

Versions count per (account, kind). A saved version is served (becomes the active one of its
account, kind, world and target) only if ``core.predictors.serving_verdict`` says it beats the
predict-the-mean baseline and the active version; otherwise it is stored inactive with
``rejected_reason`` (states: active, retired, rejected; ``list_versions`` shows ``status``). A model
remembers the world it was trained on and is only ever loaded for that world: live mode never
serves a sandbox model.
"""
from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Mapping, Sequence

import numpy as np
import psycopg

from xbotlib.store.worlds import check_world
from xbotlib.core.features import feature_matrix
from xbotlib.logs import tagged
from xbotlib.store.locks import lock_name_for_transaction
from xbotlib.core.predictors import (LastVersion, ModelLoadError, ScoreCard, ServingVerdict, TrainedModel, dumps, loads,
                                     serving_verdict)

log = logging.getLogger("xbot.predictors")

PREDICTOR_KINDS = ("content", "timing")


def predictor_key(kind: str, version: int) -> str:
    return f"predictor:{kind}:v{version}"


def _check_kind(kind: str) -> str:
    if kind not in PREDICTOR_KINDS:
        raise ValueError(f"unknown predictor kind {kind!r} (expected 'content' or 'timing')")
    return kind


def _json_safe(value: Any) -> Any:
    """NaN/inf and numpy scalars are not JSON: store None / plain floats."""
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    if isinstance(value, (np.floating, float)):
        return float(value) if np.isfinite(value) else None
    if isinstance(value, np.integer):
        return int(value)
    return value


@dataclass(frozen=True)
class SavedVersion:
    """What ``save_version`` stored: version N and the serving verdict (``served`` = it is now active)."""

    version: int
    verdict: ServingVerdict

    @property
    def served(self) -> bool:
        return self.verdict.serve


def active_score_card(conn: psycopg.Connection, account_id: str, kind: str, world: str,
                      target: str) -> ScoreCard | None:
    """The active version's cross-validated score (what a new version must beat), or None."""
    row = conn.execute(
        """SELECT version, cv_score, baseline_score, (metrics -> 'cv' ->> 'score_se')::float8 AS score_se,
                  (metrics -> 'cv' ->> 'gain_se')::float8 AS gain_se
             FROM predictors WHERE account_id = %s AND kind = %s AND world = %s AND target = %s AND is_active
            ORDER BY version DESC LIMIT 1""", (account_id, kind, world, target)).fetchone()
    if row is None:
        return None
    return ScoreCard(row["cv_score"], row["baseline_score"], row["score_se"], row["gain_se"], int(row["version"]))


def save_version(conn: psycopg.Connection, account_id: str, kind: str, trained: TrainedModel, features: Sequence[str],
                 n_samples: int, world: str, trained_through: int | None, now: datetime) -> SavedVersion:
    """Store ``trained`` as the next version N of ``kind`` with its serving verdict.

    Served (``serving_verdict`` against the active version of the same account, kind, world and
    target): it becomes the active one and the previous one is retired. Rejected: it is stored
    inactive with ``rejected_reason`` and the active version stays. Both in one transaction under
    the (account, kind) writer lock, so the comparison sees the version it replaces.
    ``trained_through`` is the last outcome_id in the training data.
    """
    _check_kind(kind)
    check_world(world)
    with conn.transaction():
        # one writer per (account, kind) at a time, so two learners never pick the same N
        lock_name_for_transaction(conn, f"predictors:{account_id}:{kind}")
        row = conn.execute("SELECT COALESCE(MAX(version), 0) + 1 AS v FROM predictors WHERE account_id = %s AND kind = %s",
                           (account_id, kind)).fetchone()
        version = int(row["v"])
        verdict = serving_verdict(ScoreCard.from_cv(trained.cv, version),
                                  active_score_card(conn, account_id, kind, world, trained.target))
        metrics = _json_safe({"cv": trained.cv, "candidates": trained.candidates,
                              "fallback_reason": trained.fallback_reason, "model_kind": trained.kind,
                              "serving": verdict.as_dict()})
        if verdict.serve:
            conn.execute("""UPDATE predictors SET is_active = false
                             WHERE account_id = %s AND kind = %s AND world = %s AND target = %s AND is_active""",
                         (account_id, kind, world, trained.target))
        conn.execute(
            """INSERT INTO predictors (account_id, kind, version, predictor_key, algorithm, world, target, features,
                                       n_samples, cv_score, baseline_score, metrics, model, is_active, rejected_reason,
                                       trained_through, trained_at)
               VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)""",
            (account_id, kind, version, predictor_key(kind, version), trained.algorithm, world, trained.target,
             json.dumps(list(features)), int(n_samples), _json_safe(trained.cv.get("score")),
             _json_safe(trained.cv.get("baseline_score")), json.dumps(metrics), dumps(trained.model),
             verdict.serve, None if verdict.serve else verdict.detail, trained_through, now),
        )
    return SavedVersion(version, verdict)


@dataclass
class LoadedPredictor:
    """A stored predictor, ready to use. ``fallback_from`` names the version that failed to load
    when an older linear version is served instead."""

    version: int
    key: str
    kind: str
    algorithm: str
    world: str
    target: str
    features: list[str]
    model: Any
    n_samples: int
    cv_score: float | None
    baseline_score: float | None
    metrics: dict[str, Any]
    trained_through: int | None
    trained_at: datetime
    fallback_from: str | None = None
    predictor_id: int | None = None   # the stored row's id (``load_active(known=...)`` reuses the model by it)

    def predict(self, X) -> np.ndarray:
        """Predict for rows of X, shape (n, len(features))."""
        X = np.asarray(X, dtype=float)
        if X.ndim != 2 or X.shape[1] != len(self.features):
            raise ValueError(f"{self.key} expects (n, {len(self.features)}) features, got shape {X.shape}")
        return self.model.predict(X)

    def predict_features(self, rows: Sequence[Mapping[str, Any]]) -> np.ndarray:
        """Predict from stored-style feature dicts (``ContentFeatures.to_dict()``)."""
        return self.predict(feature_matrix(rows, self.features))


_COLUMNS = """predictor_id, version, predictor_key, kind, algorithm, world, target, features, n_samples, cv_score,
              baseline_score, metrics, trained_through, trained_at, is_active, rejected_reason,
              CASE WHEN rejected_reason IS NOT NULL THEN 'rejected' WHEN is_active THEN 'active'
                   ELSE 'retired' END AS status"""


def _loaded(row: Mapping[str, Any], model: Any, fallback_from: str | None = None) -> LoadedPredictor:
    return LoadedPredictor(version=row["version"], key=row["predictor_key"], kind=row["kind"], algorithm=row["algorithm"],
                           world=row["world"], target=row["target"], features=list(row["features"]), model=model,
                           n_samples=row["n_samples"], cv_score=row["cv_score"], baseline_score=row["baseline_score"],
                           metrics=row["metrics"], trained_through=row["trained_through"], trained_at=row["trained_at"],
                           fallback_from=fallback_from, predictor_id=row["predictor_id"])


def load_active(conn: psycopg.Connection, account_id: str, kind: str, world: str, *, target: str = "reward_composite",
                logger: logging.Logger | None = None, known: LoadedPredictor | None = None) -> LoadedPredictor | None:
    """The active predictor of this account, kind and world, or None when there is none (a rejected
    version is never active, nor served as a fallback).

    If the active model cannot be loaded (corrupt bytes, LightGBM missing), the newest loadable
    linear model of the same world is served instead and ``[LEARN_JOB] lightgbm_failed
    fallback=ridge failed=<key> served=<key> error=…`` is logged (``model_load_failed`` when the
    broken model was not LightGBM); None if there is no loadable model. Stored rows are not changed.

    ``known``: what an earlier call returned (a daemon's plan job keeps it between ticks). When that stored model is
    still the active one, its bytes are neither sent again nor unpickled: a stored model never changes (a new one is
    a new version), so the same object serves. The row's other columns (``trained_through``, ``metrics``, which the
    learn job updates) are read fresh every time. A served fallback is not reused: the active row is looked at again.
    """
    _check_kind(kind)
    check_world(world)
    logger = logger or log
    reuse = known.predictor_id if known is not None and known.fallback_from is None else None
    active = conn.execute(
        f"""SELECT {_COLUMNS}, CASE WHEN predictor_id = %s THEN NULL ELSE model END AS model FROM predictors
             WHERE account_id = %s AND kind = %s AND world = %s AND target = %s AND is_active
             ORDER BY version DESC LIMIT 1""",
        (reuse, account_id, kind, world, target),
    ).fetchone()
    if active is None:
        return None
    if reuse is not None and active["predictor_id"] == reuse:
        return _loaded(active, known.model)   # type: ignore[union-attr]  (reuse is set only with known)
    try:
        return _loaded(active, loads(active["model"]))
    except ModelLoadError as exc:
        error = str(exc)
    # the contract tag names LightGBM; a corrupt linear model is reported under its own name
    message = "lightgbm_failed" if active["algorithm"] == "lightgbm" else "model_load_failed"
    older = conn.execute(
        f"""SELECT {_COLUMNS}, model FROM predictors
             WHERE account_id = %s AND kind = %s AND world = %s AND target = %s AND version < %s
               AND algorithm IN ('ridge', 'logistic') AND rejected_reason IS NULL
             ORDER BY version DESC""",
        (account_id, kind, world, target, active["version"]),
    ).fetchall()
    for row in older:
        try:
            model = loads(row["model"])
        except ModelLoadError:
            continue
        tagged(logger, "LEARN_JOB", message, level=logging.WARNING, fallback=row["algorithm"],
               failed=active["predictor_key"], served=row["predictor_key"], error=error)
        return _loaded(row, model, fallback_from=active["predictor_key"])
    tagged(logger, "LEARN_JOB", message, level=logging.WARNING, fallback="none",
           failed=active["predictor_key"], error=error)
    return None


def list_versions(conn: psycopg.Connection, account_id: str, kind: str | None = None,
                  world: str | None = None) -> list[dict[str, Any]]:
    """Every stored version (without model bytes), by kind, newest first: for status pages and notebooks.
    ``status`` is active, retired or rejected (then ``rejected_reason`` says why)."""
    sql = f"SELECT {_COLUMNS} FROM predictors WHERE account_id = %s"
    params: list[Any] = [account_id]
    if kind is not None:
        sql += " AND kind = %s"
        params.append(_check_kind(kind))
    if world is not None:
        sql += " AND world = %s"
        params.append(check_world(world))
    return conn.execute(sql + " ORDER BY kind, version DESC", params).fetchall()


def last_version(conn, account_id: str, world: str) -> LastVersion | None:
    """The newest content predictor of ``world`` for the account, or None before the first."""
    row = conn.execute(
        """SELECT version, trained_through, trained_at FROM predictors
            WHERE account_id = %s AND kind = 'content' AND world = %s AND target = 'reward_composite' ORDER BY version DESC LIMIT 1""",
        (account_id, world)).fetchone()
    return None if row is None else LastVersion(int(row["version"]), row["trained_through"], row["trained_at"])


def backfill_trained_through(conn, account_id: str) -> None:
    """Set each of the account's predictor versions' ``trained_through`` to the last pass-2 outcome collected
    by its ``trained_at``: for histories written in bulk (devtools.seed_history), whose outcome ids the
    database assigns only as they are copied in."""
    conn.execute(
        """UPDATE predictors p SET trained_through = (
               SELECT max(o.outcome_id) FROM outcomes o
                WHERE o.account_id = p.account_id AND o.collected_pass = 2 AND o.collected_at <= p.trained_at)
            WHERE p.account_id = %s""", (account_id,))


def add_metrics(conn, account_id: str, kind: str, version: int, extra: Mapping[str, Any]) -> None:
    """Merge ``extra`` into the ``metrics`` of a stored version (NaN/inf become null)."""
    conn.execute("UPDATE predictors SET metrics = metrics || %s::jsonb WHERE account_id = %s AND kind = %s AND version = %s",
                 (json.dumps(_json_safe(dict(extra))), account_id, _check_kind(kind), version))
