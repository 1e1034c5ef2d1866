"""Training data for the predictors, read from final (pass-2) outcomes.

One world at a time, never mixed: world 'live' <=> ``outcomes.simulated = false``. Each sample is
weighted by ``exposure_weight(impressions)``. The posting hour is the *actual* local hour the post
went out (``posted_decisions.posted_at`` in the account's timezone), not the planned one.
"""
from __future__ import annotations

from datetime import datetime
from typing import Any, Iterator, NamedTuple, Sequence
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


# Rows libpq holds at once while the training read streams (psycopg's chunked mode, libpq 17+; one at a time
# before). Fetched whole, a year of one account's rows with their decoded feature records was the largest
# transient of a long campaign, and the resident set grew with it (BENCHMARKS.md, issue #19's memory).
STREAM_ROWS = 256


def _rows(conn: psycopg.Connection, account_id: str, world: str, since_outcome_id: int | None,
          chunk_rows: int = STREAM_ROWS) -> Iterator[dict]:
    """The training rows, oldest first, streamed: each is turned into numbers before the next chunk arrives.
    Read them to the end before the connection runs anything else."""
    params = {"account": account_id, "simulated": check_world(world) != "live", "since": since_outcome_id}
    size = chunk_rows if psycopg.pq.version() >= 170000 else 1
    return conn.cursor().stream(_ROWS_SQL, params, size=size)


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


def _check_target(target: str) -> str:
    if target not in TARGETS:
        raise ValueError(f"unknown training target {target!r} (expected one of {TARGETS})")
    return target


class _FrameBuilder:
    """One frame's numbers, gathered a row at a time: the feature rows stacked into blocks as they come, so a
    long read keeps arrays rather than rows. Stacking blocks gives the same array as stacking every row."""

    def __init__(self, names: Sequence[str], targets: Sequence[str], block_rows: int):
        self.names, self.block_rows = list(names), block_rows
        self.blocks: list[np.ndarray] = []
        self.pending: list[np.ndarray] = []
        self.ys: dict[str, list[float]] = {t: [] for t in targets}
        self.w: list[float] = []
        self.max_outcome_id: int | None = None

    def add(self, row: dict[str, Any], x: np.ndarray) -> None:
        self.pending.append(x)
        if len(self.pending) == self.block_rows:
            self.blocks.append(np.vstack(self.pending))
            self.pending = []
        for target, ys in self.ys.items():   # each target (TARGETS) is the name of its column
            ys.append(float(row[target]))
        self.w.append(exposure_weight(row["impressions"]))
        oid = int(row["outcome_id"])
        self.max_outcome_id = oid if self.max_outcome_id is None else max(self.max_outcome_id, oid)

    def y(self, target: str) -> np.ndarray:
        return np.array(self.ys[target], dtype=float)

    def frame(self, target: str) -> TrainingFrame:
        parts = self.blocks + ([np.vstack(self.pending)] if self.pending else [])
        X = np.concatenate(parts) if parts else np.zeros((0, len(self.names)))
        return TrainingFrame(X=X, y=self.y(target), w=np.array(self.w, dtype=float), names=list(self.names),
                             max_outcome_id=self.max_outcome_id)


def _add_content(builder: _FrameBuilder, row: dict[str, Any]) -> None:
    builder.add(row, feature_vector(_content_features(row), builder.names))


def _add_timing(builder: _FrameBuilder, row: dict[str, Any]) -> None:
    if row["posted_at"] is not None:   # never posted: no hour to learn from
        local = _local(row["posted_at"], row["timezone"])
        builder.add(row, timing_vector(local.hour, local.weekday()))


def training_frame(conn: psycopg.Connection, account_id: str, world: str, *, since_outcome_id: int | None = None,
                   names: Sequence[str] | None = None, target: str = "reward_composite",
                   vocabulary: vocab.Vocabulary = vocab.DEFAULT, chunk_rows: int = STREAM_ROWS) -> TrainingFrame:
    """Content-predictor data: one row per pass-2 outcome of ``world`` (after ``since_outcome_id``).

    Features are ``content_metadata.features`` turned into numbers by ``feature_vector(names)``; ``names``
    default to ``feature_names(vocabulary)``, the columns of the account's niche (a stored topic outside it
    sets no topic column). y is ``reward_composite`` (or ``follows`` for the follow model).
    """
    names = feature_names(vocabulary) if names is None else names
    content = _FrameBuilder(names, [_check_target(target)], chunk_rows)
    for row in _rows(conn, account_id, world, since_outcome_id, chunk_rows):
        _add_content(content, row)
    return content.frame(target)


def timing_frame(conn: psycopg.Connection, account_id: str, world: str, *, since_outcome_id: int | None = None,
                 target: str = "reward_composite", chunk_rows: int = STREAM_ROWS) -> TrainingFrame:
    """Timing-predictor data: ``timing_vector(local hour, weekday)`` of each posted pass-2 outcome."""
    timing = _FrameBuilder(TIMING_FEATURE_NAMES, [_check_target(target)], chunk_rows)
    for row in _rows(conn, account_id, world, since_outcome_id, chunk_rows):
        _add_timing(timing, row)
    return timing.frame(target)


class LearnFrames(NamedTuple):
    """The learn job's data: ``content`` (y = reward_composite), ``follows`` (the same X, y = follows) and
    ``timing`` (y = follows)."""

    content: TrainingFrame
    follows: TrainingFrame
    timing: TrainingFrame


def learn_frames(conn: psycopg.Connection, account_id: str, world: str, *,
                 vocabulary: vocab.Vocabulary = vocab.DEFAULT, chunk_rows: int = STREAM_ROWS) -> LearnFrames:
    """``training_frame`` (reward and follows) and ``timing_frame(target='follows')`` of every pass-2 outcome
    of ``world``, from one streamed read of the outcomes with the content features built once: the same frames
    as the three calls (tests/store/test_stores.py compares them), at a third of the reads and half the
    feature building. The two content frames share their X array (read it, do not write to it)."""
    content = _FrameBuilder(feature_names(vocabulary), TARGETS, chunk_rows)
    timing = _FrameBuilder(TIMING_FEATURE_NAMES, ["follows"], chunk_rows)
    for row in _rows(conn, account_id, world, None, chunk_rows):
        _add_content(content, row)
        _add_timing(timing, row)
    reward = content.frame("reward_composite")
    return LearnFrames(reward, reward._replace(y=content.y("follows"), names=list(reward.names)),
                       timing.frame("follows"))


def count_fresh_outcomes(conn: psycopg.Connection, account_id: str, world: str, since_outcome_id: int | None) -> int:
    """Pass-2 outcomes of ``world`` newer than ``since_outcome_id`` (all of them when None)."""
    row = conn.execute(
        """SELECT count(*) AS n FROM outcomes
            WHERE account_id = %(account)s AND collected_pass = 2 AND simulated = %(simulated)s
              AND (%(since)s::bigint IS NULL OR outcome_id > %(since)s::bigint)""",
        {"account": account_id, "simulated": check_world(world) != "live", "since": since_outcome_id},
    ).fetchone()
    return int(row["n"])
