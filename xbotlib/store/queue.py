"""The posting queue: decisions in ``content_metadata`` and their status lifecycle.

    draft -> queued -> posting -> posted
                           \\-> failed        (gave up; an operator may requeue)
                           \\-> queued        (transient error: retry later)
    draft | queued -> skipped | cancelled   (skipped with last_error 'shadow': shadow mode's stand-in for posted)

The CHECK constraint keeps status values valid; ``transition`` keeps the *moves* valid: it
updates only rows that are in an allowed source state and refuses anything else with an error
naming both states. Every query takes ``now`` from the caller's clock, never from ``now()``.

Size: one table's lifecycle — insert, moves, claims, shadowing and the planner's and poster's reads of
``content_metadata`` — kept together so every status rule is in one place.
"""
from __future__ import annotations

import hashlib
import json
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Iterable

import psycopg

from xbotlib.core.text import x_text_problem
from xbotlib.store.db import array_in_statement

STATUSES = ("draft", "queued", "posting", "posted", "failed", "skipped", "cancelled")
TERMINAL = frozenset({"posted", "skipped", "cancelled"})
# decisions that are (or are about to be) on the account: what the planner's rotation, caps and
# novelty look at
ACTIVE_STATUSES = ("queued", "posting", "posted")
# shadow mode (LIVE_POSTS=shadow) ends a due decision 'skipped' with this last_error: what it would have posted
SHADOW_REASON = "shadow"
# in SQL: an active decision, or one shadow mode stood in for (it counts as posted for the planner's
# rotation, day plan and novelty, so a shadow run plans what a live run would plan)
_ACTIVE_SQL = f"(status = ANY(%(active)s) OR (status = 'skipped' AND last_error = '{SHADOW_REASON}'))"
ALLOWED_TRANSITIONS: dict[str, frozenset[str]] = {
    "draft": frozenset({"queued", "skipped", "cancelled"}),
    "queued": frozenset({"posting", "skipped", "cancelled"}),
    "posting": frozenset({"posted", "failed", "queued"}),
    "failed": frozenset({"queued", "cancelled"}),
    "posted": frozenset(),
    "skipped": frozenset(),
    "cancelled": frozenset(),
}

# Which generation sources may be sent in which posting mode. Template and synthetic text is
# for the sandbox only: it must never reach live X.
POSTABLE_SOURCES: dict[str, frozenset[str]] = {
    "disabled": frozenset(),
    "sandbox": frozenset({"llm", "template", "synthetic"}),
    "live": frozenset({"llm"}),
    "shadow": frozenset({"llm"}),  # what live would send: shadow records exactly that, and sends nothing
}


class IllegalTransition(ValueError):
    """A decision cannot move from its current status to the requested one."""


class TextRejected(ValueError):
    """A decision's text is one X would refuse (blank, over 280 weighted characters, invalid characters)."""


def postable_sources(mode: str) -> frozenset[str]:
    try:
        return POSTABLE_SOURCES[mode]
    except KeyError:
        raise ValueError(f"unknown posting mode {mode!r} (expected one of {sorted(POSTABLE_SOURCES)})") from None


def content_hash(text: str) -> str:
    """Hash of the normalised text: case and whitespace do not make a post new."""
    norm = " ".join(text.lower().split())
    return hashlib.sha256(norm.encode()).hexdigest()


def check_transition(current: str, new: str) -> None:
    if current not in ALLOWED_TRANSITIONS:
        raise IllegalTransition(f"unknown status {current!r} (expected one of {', '.join(STATUSES)})")
    if new not in ALLOWED_TRANSITIONS:
        raise IllegalTransition(f"unknown status {new!r} (expected one of {', '.join(STATUSES)})")
    if new not in ALLOWED_TRANSITIONS[current]:
        allowed = ", ".join(sorted(ALLOWED_TRANSITIONS[current])) or "nothing (terminal)"
        raise IllegalTransition(f"illegal transition {current} -> {new} (from {current} a decision may go to {allowed})")


@dataclass
class Decision:
    """A decision to write: one post, thread or reply. Fields map to ``content_metadata`` columns."""
    account_id: str
    content: str
    generation_source: str
    decision_type: str = "post"
    status: str = "draft"
    topic: str | None = None
    hook_pattern: str | None = None
    novelty: float | None = None
    readability: float | None = None
    sentiment: float | None = None
    dup_penalty: float = 0.0
    features: dict[str, Any] = field(default_factory=dict)
    embedding: list[float] | None = None
    policy: str | None = None
    bandit_arm: str | None = None
    bandit_propensity: float | None = None
    timing_arm: str | None = None
    timing_propensity: float | None = None
    experiment_id: str | None = None
    experiment_arms: dict[str, Any] = field(default_factory=dict)
    predicted_reward: float | None = None
    predictor_version: str | None = None
    scheduled_at: datetime | None = None
    target_tweet_id: str | None = None
    decision_id: uuid.UUID = field(default_factory=uuid.uuid4)


_INSERT_COLUMNS = (
    "decision_id", "account_id", "decision_type", "status", "content", "content_hash", "generation_source",
    "topic", "hook_pattern", "novelty", "readability", "sentiment", "dup_penalty", "features", "embedding",
    "policy", "bandit_arm", "bandit_propensity", "timing_arm", "timing_propensity", "experiment_id",
    "experiment_arms", "predicted_reward", "predictor_version", "scheduled_at", "target_tweet_id",
    "created_at", "updated_at",
)


def insert_decision(conn: psycopg.Connection, d: Decision, now: datetime) -> uuid.UUID:
    """Insert a decision (status draft or queued). A queued decision needs ``scheduled_at``.

    Text X would refuse is never stored (``TextRejected``): blank, longer than 280 weighted characters
    (twitter-text v3: URLs 23, CJK and most emoji 2), or with characters X calls invalid.
    """
    if d.status not in ("draft", "queued"):
        raise IllegalTransition(f"a new decision starts as draft or queued, not {d.status!r}")
    if d.status == "queued" and d.scheduled_at is None:
        raise ValueError(f"decision {d.decision_id} is queued without scheduled_at (set the posting time)")
    if d.decision_type == "reply" and not d.target_tweet_id:
        raise ValueError(f"reply decision {d.decision_id} has no target_tweet_id")
    problem = x_text_problem(d.content)
    if problem is not None:
        raise TextRejected(f"decision {d.decision_id} not stored: its text is {problem}; "
                           "X would refuse it — shorten or rewrite the text")
    values = {
        **{k: getattr(d, k) for k in _INSERT_COLUMNS if hasattr(d, k)},
        "content_hash": content_hash(d.content),
        "features": json.dumps(d.features),
        "experiment_arms": json.dumps(d.experiment_arms),
        "created_at": now,
        "updated_at": now,
    }
    cols = ", ".join(_INSERT_COLUMNS)
    params = ", ".join(f"%({c})s" for c in _INSERT_COLUMNS)
    conn.execute(f"INSERT INTO content_metadata ({cols}) VALUES ({params})", values)
    return d.decision_id


def transition(conn: psycopg.Connection, decision_id: uuid.UUID | str, new: str, now: datetime,
               *, expected: str | Iterable[str] | None = None, **fields: Any) -> str:
    """Move a decision to ``new`` if that move is legal from its current status.

    ``expected`` narrows the allowed source states (e.g. only ``posting`` -> ``posted``).
    ``fields`` are extra columns to set in the same UPDATE (last_error, attempts, next_attempt_at …).
    Returns the previous status. Raises ``IllegalTransition`` naming both states, and changes nothing.
    """
    allowed_from = [s for s, targets in ALLOWED_TRANSITIONS.items() if new in targets]
    if new not in ALLOWED_TRANSITIONS:
        check_transition("draft", new)  # raises with the list of valid statuses
    if expected is not None:
        expected = [expected] if isinstance(expected, str) else list(expected)
        allowed_from = [s for s in allowed_from if s in expected]
    bad = set(fields) - {"last_error", "attempts", "next_attempt_at", "claimed_by", "claimed_at", "scheduled_at"}
    if bad:
        raise ValueError(f"transition cannot set column(s) {sorted(bad)}")
    sets = ", ".join(["status = %(new)s", "updated_at = %(now)s"] + [f"{k} = %({k})s" for k in fields])
    row = conn.execute(
        f"""UPDATE content_metadata cm SET {sets}
              FROM (SELECT decision_id, status AS old_status FROM content_metadata
                     WHERE decision_id = %(id)s FOR UPDATE) old
             WHERE cm.decision_id = old.decision_id AND old.old_status = ANY(%(allowed)s)
         RETURNING old.old_status""",
        {"new": new, "now": now, "id": str(decision_id), "allowed": allowed_from, **fields},
    ).fetchone()
    if row is not None:
        return _val(row, "old_status")
    current_status = decision_status(conn, decision_id)
    if current_status is None:
        raise LookupError(f"no decision with id {decision_id}")
    check_transition(current_status, new)
    raise IllegalTransition(f"illegal transition {current_status} -> {new} for decision {decision_id} "
                            f"(this step only moves decisions from {', '.join(expected or allowed_from)})")


def _val(row: Any, key: str) -> Any:
    return row[key] if isinstance(row, dict) else row[0]


def ready_decisions(conn: psycopg.Connection, account_id: str, now: datetime, limit: int = 50) -> list[dict]:
    """Queued decisions of ``account_id`` whose time has come (scheduled_at <= now), oldest first."""
    return conn.execute(
        """SELECT * FROM content_metadata
            WHERE account_id = %s AND status = 'queued' AND scheduled_at <= %s
              AND (next_attempt_at IS NULL OR next_attempt_at <= %s)
            ORDER BY scheduled_at, created_at LIMIT %s""",
        (account_id, now, now, limit),
    ).fetchall()


def claim_for_posting(conn: psycopg.Connection, account_id: str, now: datetime, worker: str,
                      sources: Iterable[str], limit: int = 1) -> list[dict]:
    """Atomically move up to ``limit`` ready decisions to ``posting`` and return them.

    ``FOR UPDATE SKIP LOCKED`` lets several workers claim at once without ever taking the same
    row. Returned oldest first (UPDATE … RETURNING alone has no order). The caller commits; the
    decision is ``posting`` *before* anything is sent to X, so a crash leaves a row that
    reconciliation finds.
    """
    return _take_due(conn, account_id, now, worker, sources, limit, "posting")


def shadow_due(conn: psycopg.Connection, account_id: str, now: datetime, worker: str,
               sources: Iterable[str], limit: int = 50) -> list[dict]:
    """Shadow mode's stand-in for posting: the decisions a live worker would claim now move straight
    ``queued -> skipped`` with ``last_error = 'shadow'`` (claimed_by/claimed_at say who and when) and are
    returned, oldest first. Nothing is sent anywhere; SKIP LOCKED keeps two workers off the same row."""
    return _take_due(conn, account_id, now, worker, sources, limit, "shadow")


# the two ways a due decision leaves the queue: claimed for posting, or shadowed
_TAKE: dict[str, str] = {"posting": "status = 'posting', attempts = cm.attempts + 1",
                         "shadow": "status = 'skipped', last_error = %(reason)s"}


def _take_due(conn: psycopg.Connection, account_id: str, now: datetime, worker: str, sources: Iterable[str],
              limit: int, transition: str) -> list[dict]:
    """Move up to ``limit`` due decisions (queued, scheduled_at <= now, not backing off, from ``sources``) out
    of the queue by ``transition`` ('posting' or 'shadow'), stamped with the worker; returned oldest first."""
    set_clause = _TAKE[transition]
    return conn.execute(
        """WITH due AS (
               SELECT decision_id FROM content_metadata
                WHERE account_id = %(acc)s AND status = 'queued' AND scheduled_at <= %(now)s
                  AND (next_attempt_at IS NULL OR next_attempt_at <= %(now)s)
                  AND generation_source = ANY(%(sources)s)
                ORDER BY scheduled_at, created_at
                LIMIT %(limit)s
                FOR UPDATE SKIP LOCKED
           ), taken AS (
           UPDATE content_metadata cm
              SET """ + set_clause + """, claimed_by = %(worker)s, claimed_at = %(now)s, updated_at = %(now)s
             FROM due WHERE cm.decision_id = due.decision_id
           RETURNING cm.*)
           SELECT * FROM taken ORDER BY scheduled_at, created_at""",
        {"acc": account_id, "now": now, "sources": list(sources), "limit": limit, "worker": worker,
         "reason": SHADOW_REASON},
    ).fetchall()


def stuck_in_posting(conn: psycopg.Connection, account_id: str) -> list[dict]:
    """Decisions left in ``posting`` (a crash between claim and save). They need reconciliation."""
    return conn.execute(
        "SELECT * FROM content_metadata WHERE account_id = %s AND status = 'posting' ORDER BY claimed_at",
        (account_id,),
    ).fetchall()


def record_posted(conn: psycopg.Connection, decision_id: uuid.UUID | str, account_id: str, tweet_id: str,
                  posted_at: datetime, world: str, now: datetime, reconciled: bool = False) -> None:
    """Save the tweet id and mark the decision posted, in the caller's transaction.

    The status moves first: a decision that is not ``posting`` raises ``IllegalTransition`` before
    any row is written, so a caller that catches the error cannot commit a stray posted row.
    """
    owner = conn.execute("SELECT account_id FROM content_metadata WHERE decision_id = %s",
                         (str(decision_id),)).fetchone()
    if owner is not None and _val(owner, "account_id") != account_id:
        raise ValueError(f"decision {decision_id} belongs to account {_val(owner, 'account_id')!r}, "
                         f"not {account_id!r} (record the post for the account that planned it)")
    transition(conn, decision_id, "posted", now, expected="posting", last_error=None)
    conn.execute(
        """INSERT INTO posted_decisions (decision_id, account_id, tweet_id, world, posted_at, reconciled)
           VALUES (%s, %s, %s, %s, %s, %s)""",
        (str(decision_id), account_id, tweet_id, world, posted_at, reconciled),
    )


def ensure_account(conn: psycopg.Connection, account_id: str, now: datetime, timezone: str = "UTC",
                   handle: str | None = None) -> dict:
    """Create the account row on first use; returns it. ``created_at`` starts the exploration schedule."""
    conn.execute(
        """INSERT INTO accounts (account_id, handle, timezone, created_at) VALUES (%s, %s, %s, %s)
           ON CONFLICT (account_id) DO NOTHING""",
        (account_id, handle, timezone, now),
    )
    return conn.execute("SELECT * FROM accounts WHERE account_id = %s", (account_id,)).fetchone()


def queue_depth(conn: psycopg.Connection, account_id: str) -> dict[str, int]:
    rows = conn.execute("SELECT status, count(*) AS n FROM content_metadata WHERE account_id = %s GROUP BY status",
                        (account_id,)).fetchall()
    depth = {s: 0 for s in STATUSES}
    depth.update({_val(r, "status"): int(r["n"] if isinstance(r, dict) else r[1]) for r in rows})
    return depth


def decision_status(conn: psycopg.Connection, decision_id: uuid.UUID | str) -> str | None:
    """The current status of a decision, or None when there is no such decision."""
    row = conn.execute("SELECT status FROM content_metadata WHERE decision_id = %s", (str(decision_id),)).fetchone()
    return None if row is None else _val(row, "status")


# ----------------------------------------------------------------------------- accounts

def account_created_at(conn: psycopg.Connection, account_id: str) -> datetime | None:
    """When the account row was created (the start of its exploration schedule), or None."""
    row = conn.execute("SELECT created_at FROM accounts WHERE account_id = %s", (account_id,)).fetchone()
    return None if row is None else row["created_at"]


def decisions_per_account(conn: psycopg.Connection) -> dict[str, int]:
    """Every account (with a row in ``accounts`` or with decisions) and its number of decisions, by account_id."""
    rows = conn.execute(
        """SELECT account_id, sum(n)::int8 AS n FROM (
               SELECT account_id, count(*) AS n FROM content_metadata GROUP BY account_id
               UNION ALL SELECT account_id, 0 FROM accounts) x
            GROUP BY account_id ORDER BY account_id""").fetchall()
    return {r["account_id"]: int(r["n"]) for r in rows}


def account_identity(conn: psycopg.Connection, account_id: str) -> dict | None:
    """The account's X identity as stored: ``x_user_id`` and ``handle`` (either may be None); None without a row."""
    return conn.execute("SELECT x_user_id, handle FROM accounts WHERE account_id = %s", (account_id,)).fetchone()


def set_account_x_user(conn: psycopg.Connection, account_id: str, user_id: str, username: str | None) -> None:
    """Remember the account's X user id (and its handle, unless one is set already)."""
    conn.execute("UPDATE accounts SET x_user_id = %s, handle = COALESCE(handle, %s) WHERE account_id = %s",
                 (user_id, username, account_id))


# ----------------------------------------------------------------------------- what the planner reads

def recent_hooks_and_topics(conn: psycopg.Connection, account_id: str, decision_type: str,
                            limit: int = 20) -> list[dict]:
    """``hook_pattern`` and ``topic`` of the newest active (or shadowed) decisions of this type, newest first."""
    return conn.execute(
        f"""SELECT hook_pattern, topic FROM content_metadata
             WHERE account_id = %(acc)s AND decision_type = %(type)s AND {_ACTIVE_SQL}
             ORDER BY created_at DESC LIMIT %(limit)s""",
        {"acc": account_id, "type": decision_type, "active": list(ACTIVE_STATUSES), "limit": limit}).fetchall()


def count_active_created_since(conn: psycopg.Connection, account_id: str, decision_type: str,
                               since: datetime) -> int:
    """Active (or shadowed) decisions of this type created after ``since``."""
    return conn.execute(
        f"""SELECT count(*) AS n FROM content_metadata
             WHERE account_id = %(acc)s AND decision_type = %(type)s AND {_ACTIVE_SQL} AND created_at > %(since)s""",
        {"acc": account_id, "type": decision_type, "active": list(ACTIVE_STATUSES), "since": since}).fetchone()["n"]


def count_active_created_since_by_type(conn: psycopg.Connection, account_id: str, decision_types: tuple[str, ...],
                                       since: datetime) -> dict[str, int]:
    """``count_active_created_since`` for several decision types in one statement: ``{type: count}``, 0 for a
    type with none (filled in here: a plain GROUP BY plans and runs in about half the server time of the
    unnest-and-outer-join that listed the missing types itself; the plan job sends it every tick)."""
    rows = conn.execute(
        f"""SELECT decision_type, count(*) AS n FROM content_metadata
             WHERE account_id = %(acc)s AND decision_type = ANY(%(types)s) AND {_ACTIVE_SQL} AND created_at > %(since)s
             GROUP BY decision_type""",
        {"acc": account_id, "types": list(decision_types), "active": list(ACTIVE_STATUSES), "since": since}).fetchall()
    counts = {r["decision_type"]: int(r["n"]) for r in rows}
    return {t: counts.get(t, 0) for t in decision_types}


def count_active_created_since_by_type_many(conn: psycopg.Connection, account_ids: list[str],
                                            decision_types: tuple[str, ...], since: datetime) -> list[dict[str, int]]:
    """``count_active_created_since_by_type`` for several accounts in one statement (a simulated daemon's plan turn,
    ``jobs.plan.tick_many``): one ``{type: count}`` per account, in the order given."""
    rows = conn.execute(
        f"""SELECT account_id, decision_type, count(*) AS n FROM content_metadata
             WHERE account_id = ANY(%(accs)s) AND decision_type = ANY(%(types)s) AND {_ACTIVE_SQL}
               AND created_at > %(since)s
             GROUP BY account_id, decision_type""",
        {"accs": list(account_ids), "types": list(decision_types), "active": list(ACTIVE_STATUSES),
         "since": since}).fetchall()
    counts = {(r["account_id"], r["decision_type"]): int(r["n"]) for r in rows}
    return [{t: counts.get((a, t), 0) for t in decision_types} for a in account_ids]


def booked_post_times(conn: psycopg.Connection, account_id: str, after: datetime, until: datetime) -> list[datetime]:
    """``scheduled_at`` of the posts queued (or being posted) for the span (after, until]."""
    rows = conn.execute(
        """SELECT scheduled_at FROM content_metadata
            WHERE account_id = %s AND decision_type = 'post' AND status IN ('queued', 'posting')
              AND scheduled_at > %s AND scheduled_at <= %s""",
        (account_id, after, until)).fetchall()
    return [r["scheduled_at"] for r in rows]


def active_embeddings_since(conn: psycopg.Connection, account_id: str, since: datetime,
                            known: Iterable[str] = ()) -> list[tuple[str, list[float] | None, datetime]]:
    """(decision_id as text, text embedding, created_at) of the active (or shadowed) decisions created after
    ``since`` (novelty is measured against them), oldest first; the embedding is None for the decisions in ``known``
    (ids whose embedding the caller read before: it never changes once stored).

    Ordered, not as the table happens to lie: the novelty computed against them can differ in its last bit with
    their order (the matrix product's blocking), and where a row lies changes when VACUUM frees space (a campaign
    vacuums daily), so without the order a campaign split over daemons stored other novelties than one daemon.

    Why ``known``: 30 days of 256-float ``real[]`` arrays cost ~15 ms of CPU a call (the server's float4
    output ~7 ms, the client's parse ~8 ms), for rows the plan job had read at every tick before. Sent as text
    as always: a binary read would widen each float4 exactly (0.1 -> 0.10000000149…, other novelties) and a
    cast to float8[] on the server costs more than it saves (its strtod: +10 ms)."""
    rows = conn.execute(
        f"""SELECT decision_id::text AS decision_id,
                   CASE WHEN decision_id = ANY(%(known)s::uuid[]) THEN NULL ELSE embedding END AS embedding,
                   created_at
              FROM content_metadata
             WHERE account_id = %(acc)s AND embedding IS NOT NULL AND {_ACTIVE_SQL} AND created_at > %(since)s
             ORDER BY created_at, decision_id""",
        {"acc": account_id, "active": list(ACTIVE_STATUSES), "since": since, "known": list(known)}).fetchall()
    return [(r["decision_id"], r["embedding"], r["created_at"]) for r in rows]


def used_content_hashes(conn: psycopg.Connection, account_id: str, hashes: Iterable[str]) -> set[str]:
    """Those of ``hashes`` that a decision of this account already has (in any status)."""
    return {r["content_hash"] for r in conn.execute(
        "SELECT content_hash FROM content_metadata WHERE account_id = %s AND content_hash = ANY(%s)",
        (account_id, list(hashes))).fetchall()}


def replied_tweet_ids(conn: psycopg.Connection, account_id: str) -> set[str]:
    """Tweets this account has a reply decision for (in any status)."""
    return {r["target_tweet_id"] for r in conn.execute(
        "SELECT target_tweet_id FROM content_metadata WHERE account_id = %s AND decision_type = 'reply'",
        (account_id,)).fetchall()}


# ----------------------------------------------------------------------------- what the poster reads

def posting_counts(conn: psycopg.Connection, account_id: str, now: datetime,
                   sources: Iterable[str]) -> tuple[int, int, int]:
    """(posts in the last hour, posts in the last day, decisions ready to post now).

    A post another worker has claimed but not yet saved (status 'posting') counts against both caps:
    it is about to be published."""
    row = conn.execute(
        f"""WITH inflight AS (SELECT 1 FROM content_metadata WHERE account_id = %(acc)s AND status = 'posting')
           SELECT count(*) FILTER (WHERE posted_at > %(now)s - interval '1 hour') + (SELECT count(*) FROM inflight) AS hour,
                  count(*) + (SELECT count(*) FROM inflight) AS day,
                  ({_READY_SQL}) AS ready
             FROM posted_decisions WHERE account_id = %(acc)s AND posted_at > %(now)s - interval '1 day'""",
        {"now": now, "acc": account_id, "sources": list(sources)}).fetchone()
    return int(row["hour"]), int(row["day"]), int(row["ready"])


# queued decisions of {acc} the poster may send at %(now)s (one reading for the pre-flight and the claim loop);
# {acc} is the SQL that names the account
_READY = """SELECT count(*) FROM content_metadata
             WHERE account_id = {acc} AND status = 'queued' AND scheduled_at <= %(now)s
               AND (next_attempt_at IS NULL OR next_attempt_at <= %(now)s)
               AND generation_source = ANY(%(sources)s)"""
_READY_SQL = _READY.format(acc="%(acc)s")
# the pre-flight's three columns for the account {acc} names (one account's, or each of a turn's accounts')
_PREFLIGHT = f"""(SELECT reset_at FROM x_rate_limits
                    WHERE account_id = {{acc}} AND endpoint = %(endpoint)s AND reset_at > %(now)s) AS deferred_until,
                  (SELECT count(*) FROM content_metadata WHERE account_id = {{acc}} AND status = 'posting') AS stuck,
                  ({_READY}) AS ready"""


def posting_preflight(conn: psycopg.Connection, account_id: str, endpoint: str, now: datetime,
                      sources: Iterable[str]) -> dict:
    """What the poster checks before it claims anything, in one statement: ``deferred_until`` (the reset
    time of a rate limit on ``endpoint`` still in force at ``now``, else None; the x_rate_limits row
    ``store.ratelimits`` writes), ``stuck`` (decisions left in ``posting``) and ``ready`` (decisions it may
    send now). Most ticks find nothing to do; this lets them end after one round trip."""
    row = conn.execute(f"SELECT {_PREFLIGHT.format(acc='%(acc)s')}",
                       {"now": now, "acc": account_id, "endpoint": endpoint, "sources": list(sources)}).fetchone()
    return _preflight(row)


def posting_preflights(conn: psycopg.Connection, account_ids: list[str], endpoint: str, now: datetime,
                       sources: Iterable[str]) -> list[dict]:
    """``posting_preflight`` for each of ``account_ids`` (in that order), in one statement, each row by the same
    columns on that account's rows. A simulated daemon runs the post job for every account each 5-minute turn and
    nearly every such tick ends after its pre-flight: ``jobs.post.tick_many`` reads the turn's at once (10
    accounts: 288 statements a simulated day instead of 2,880)."""
    if not account_ids:
        return []
    rows = conn.execute(   # the accounts in the text: planned once per daemon (store.db.array_in_statement)
        f"""SELECT {_PREFLIGHT.format(acc='a.acc')}
              FROM unnest({array_in_statement(account_ids)}) WITH ORDINALITY AS a(acc, ord)
             ORDER BY a.ord""",
        {"endpoint": endpoint, "now": now, "sources": list(sources)}).fetchall()
    return [_preflight(r) for r in rows]


def _preflight(row: dict) -> dict:
    return {"deferred_until": row["deferred_until"], "stuck": int(row["stuck"]), "ready": int(row["ready"])}


def count_due_not_postable(conn: psycopg.Connection, account_id: str, now: datetime, sources: Iterable[str]) -> int:
    """Queued decisions whose time has come but whose generation source is not in ``sources`` (held back)."""
    return int(conn.execute(
        """SELECT count(*) AS n FROM content_metadata WHERE account_id = %s AND status = 'queued'
              AND scheduled_at <= %s AND generation_source <> ALL(%s)""",
        (account_id, now, list(sources))).fetchone()["n"])
