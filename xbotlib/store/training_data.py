"""Training data for the predictors, read from final (pass-2) outcomes.

One world at a time, never mixed: world 'live' <=> ``outcomes.simulated = false``. Each sample is
weighted by ``exposure_weight(impressions)``. The posting hour is the *actual* local hour the post
went out (``posted_decisions.posted_at`` in the account's timezone), not the planned one.
"""
from __future__ import annotations

from datetime import datetime
from typing import Any, NamedTuple, Sequence
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import numpy as np
import psycopg

from xbotlib.store.worlds import check_world
from xbotlib.core import vocab
from xbotlib.core.features import TIMING_FEATURE_NAMES, feature_names, feature_vector, timing_vector
from xbotlib.core.reward import exposure_weight

TARGETS = ("reward_composite", "follows")


class TrainingFrame(NamedTuple):
    """X (n, len(names)), y (n,), w (n,), the feature names, and the last outcome_id included
    (None when empty) — store it as the model's ``trained_through``."""

    X: np.ndarray
    y: np.ndarray
    w: np.ndarray
    names: list[str]
    max_outcome_id: int | None


_ROWS_SQL = """
SELECT o.outcome_id, o.reward_composite, o.follows, o.impressions,
       cm.features, cm.hook_pattern, cm.topic, cm.novelty, cm.dup_penalty, cm.readability, cm.sentiment,
       cm.decision_type, COALESCE(pd.posted_at, cm.scheduled_at) AS posted_at, COALESCE(a.timezone, 'UTC') AS timezone
  FROM outcomes o
  JOIN content_metadata cm ON cm.decision_id = o.decision_id
  LEFT JOIN posted_decisions pd ON pd.decision_id = o.decision_id
  LEFT JOIN accounts a ON a.account_id = o.account_id
 WHERE o.account_id = %(account)s AND o.collected_pass = 2 AND o.simulated = %(simulated)s
   AND (%(since)s::bigint IS NULL OR o.outcome_id > %(since)s::bigint)
 ORDER BY o.outcome_id
"""


def _rows(conn: psycopg.Connection, account_id: str, world: str, since_outcome_id: int | None) -> list[dict]:
    return conn.execute(_ROWS_SQL, {"account": account_id, "simulated": check_world(world) != "live",
                                    "since": since_outcome_id}).fetchall()


def _local(ts: datetime | None, tz: str) -> datetime | None:
    if ts is None:
        return None
    try:
        return ts.astimezone(ZoneInfo(tz))
    except ZoneInfoNotFoundError:
        raise ValueError(f"account timezone {tz!r} is not a known IANA zone (fix accounts.timezone)") from None


def _content_features(row: dict[str, Any]) -> dict[str, Any]:
    """The stored feature record, completed from the decision's own columns where it lacks them."""
    f = dict(row["features"] or {})
    f.setdefault("hook", row["hook_pattern"])
    f.setdefault("topic", row["topic"])
    for col in ("novelty", "dup_penalty", "readability", "sentiment"):
        if f.get(col) is None:
            f[col] = row[col]
    f.setdefault("is_reply", row["decision_type"] == "reply")
    local = _local(row["posted_at"], row["timezone"])
    if local is not None:
        f["hour"] = local.hour
    return f


def _target(rows: list[dict], target: str) -> np.ndarray:
    if target not in TARGETS:
        raise ValueError(f"unknown training target {target!r} (expected one of {TARGETS})")
    col = "reward_composite" if target == "reward_composite" else "follows"
    return np.array([float(r[col]) for r in rows])


def _frame(rows: list[dict], X: np.ndarray, names: Sequence[str], target: str) -> TrainingFrame:
    return TrainingFrame(X=X, y=_target(rows, target), w=np.array([exposure_weight(r["impressions"]) for r in rows]),
                         names=list(names), max_outcome_id=max((int(r["outcome_id"]) for r in rows), default=None))


def training_frame(conn: psycopg.Connection, account_id: str, world: str, *, since_outcome_id: int | None = None,
                   names: Sequence[str] | None = None, target: str = "reward_composite",
                   vocabulary: vocab.Vocabulary = vocab.DEFAULT) -> TrainingFrame:
    """Content-predictor data: one row per pass-2 outcome of ``world`` (after ``since_outcome_id``).

    Features are ``content_metadata.features`` turned into numbers by ``feature_vector(names)``; ``names``
    default to ``feature_names(vocabulary)``, the columns of the account's niche (a stored topic outside it
    sets no topic column). y is ``reward_composite`` (or ``follows`` for the follow model).
    """
    names = feature_names(vocabulary) if names is None else names
    return _content_frame(_rows(conn, account_id, world, since_outcome_id), names, target)


def _content_frame(rows: list[dict], names: Sequence[str], target: str) -> TrainingFrame:
    X = np.vstack([feature_vector(_content_features(r), names) for r in rows]) if rows else np.zeros((0, len(names)))
    return _frame(rows, X, names, target)


def timing_frame(conn: psycopg.Connection, account_id: str, world: str, *, since_outcome_id: int | None = None,
                 target: str = "reward_composite") -> TrainingFrame:
    """Timing-predictor data: ``timing_vector(local hour, weekday)`` of each posted pass-2 outcome."""
    return _timing_frame(_rows(conn, account_id, world, since_outcome_id), target)


def _timing_frame(rows: list[dict], target: str) -> TrainingFrame:
    rows = [r for r in rows if r["posted_at"] is not None]
    vecs = []
    for r in rows:
        local = _local(r["posted_at"], r["timezone"])
        vecs.append(timing_vector(local.hour, local.weekday()))
    X = np.vstack(vecs) if vecs else np.zeros((0, len(TIMING_FEATURE_NAMES)))
    return _frame(rows, X, TIMING_FEATURE_NAMES, target)


class LearnFrames(NamedTuple):
    """The learn job's data: ``content`` (y = reward_composite), ``follows`` (the same X, y = follows) and
    ``timing`` (y = follows)."""

    content: TrainingFrame
    follows: TrainingFrame
    timing: TrainingFrame


def learn_frames(conn: psycopg.Connection, account_id: str, world: str, *,
                 vocabulary: vocab.Vocabulary = vocab.DEFAULT) -> LearnFrames:
    """``training_frame`` (reward and follows) and ``timing_frame(target='follows')`` of every pass-2 outcome
    of ``world``, from one read of the outcomes with the content features built once: the same frames as
    the three calls (tests/store/test_stores.py compares them), at a third of the reads and half the
    feature building. The two content frames share their X array (read it, do not write to it)."""
    names = feature_names(vocabulary)
    rows = _rows(conn, account_id, world, None)
    content = _content_frame(rows, names, "reward_composite")
    follows = content._replace(y=_target(rows, "follows"), names=list(names))
    return LearnFrames(content, follows, _timing_frame(rows, "follows"))


def count_fresh_outcomes(conn: psycopg.Connection, account_id: str, world: str, since_outcome_id: int | None) -> int:
    """Pass-2 outcomes of ``world`` newer than ``since_outcome_id`` (all of them when None)."""
    row = conn.execute(
        """SELECT count(*) AS n FROM outcomes
            WHERE account_id = %(account)s AND collected_pass = 2 AND simulated = %(simulated)s
              AND (%(since)s::bigint IS NULL OR outcome_id > %(since)s::bigint)""",
        {"account": account_id, "simulated": check_world(world) != "live", "since": since_outcome_id},
    ).fetchone()
    return int(row["n"])
