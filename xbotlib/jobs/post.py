"""The posting job: publish due decisions, exactly once each.

Crash safety rests on one order of events:
1. claim the decision (queued -> posting) and COMMIT, before anything is sent;
2. call X;
3. save the tweet id and move posting -> posted in one transaction.
A crash after 1 leaves a row in ``posting``. Every tick first *reconciles* such rows against the
account's own recent posts: found -> saved as posted (``reconciled``); not found -> back to the
queue. A decision is never re-sent while X might already hold it, so a tweet is never published
twice, and never left unknown to the database.

A row in ``posting`` is also what a *live* worker's post looks like while it waits for X. So the
worker holds a session advisory lock on the decision from the claim until the outcome is saved
(it dies with the worker's connection), and reconciliation settles only rows whose lock it can
take: another worker's post in flight is never requeued or marked posted behind its back.

Shadow mode (LIVE_POSTS=shadow) is the rehearsal for live: the world is live, but this job never
writes to X. Each decision a live worker would send now (due, an LLM text) moves ``queued -> skipped``
with ``last_error='shadow'`` and a ``[POSTING] shadow …`` line: the record of what would have been
posted. Template and synthetic text is held back exactly as in live mode.
"""
from __future__ import annotations

import logging
import uuid
from datetime import datetime, timedelta

import httpx
from psycopg.pq import TransactionStatus

from xbotlib.clients.xapi import (XApiError, XConnectionError, XRateLimited, XServerError, XTimeout)
from xbotlib.core.text import weighted_length
from xbotlib.jobs.context import JobContext, JobResult, ensure_account_once
from xbotlib.logs import tagged
from xbotlib.store import locks, queue
from xbotlib.store.db import autocommit_mode
from xbotlib.store.outcomes import known_tweet_ids
from xbotlib.store.ratelimits import record_rate_limit

log = logging.getLogger("xbot.jobs.post")

ENDPOINT = "POST /2/tweets"
BACKOFF_BASE_S = 30.0      # first retry after 30 s, then 60 s, 120 s … (deferred to a later tick, never slept)
BACKOFF_CAP_S = 30 * 60.0
RECONCILE_SLACK = timedelta(minutes=10)  # X's created_at may be slightly before our claimed_at


class PostingAmbiguous(Exception):
    """X may or may not have created the tweet (timeout, lost response, 5xx)."""


def backoff_seconds(attempt: int) -> float:
    return min(BACKOFF_CAP_S, BACKOFF_BASE_S * (2 ** max(0, attempt - 1)))


def _own_user_id(ctx: JobContext, conn) -> str:
    identity = queue.account_identity(conn, ctx.account_id)
    if identity and identity["x_user_id"]:
        return identity["x_user_id"]
    user = ctx.x.me()
    queue.set_account_x_user(conn, ctx.account_id, user.user_id, user.username)
    return user.user_id


def inflight_key(decision_id) -> int:
    """The advisory-lock key a worker holds while its post of ``decision_id`` is in flight (a signed bigint)."""
    return int.from_bytes(uuid.UUID(str(decision_id)).bytes[:8], "big", signed=True)


class _InFlight:
    """The session advisory lock a worker holds on a decision from its claim until the outcome is saved."""

    def __init__(self, conn, decision_id):
        self.conn, self.key, self.held = conn, inflight_key(decision_id), True
        locks.hold_session_lock(conn, self.key)

    def release(self) -> None:
        if not self.held:
            return
        self.held = False
        conn = self.conn
        if conn.info.transaction_status == TransactionStatus.INERROR:
            conn.rollback()
        if conn.info.transaction_status != TransactionStatus.IDLE:   # work still open: it commits with the unlock
            locks.release_session_lock(conn, self.key)
            conn.commit()
            return
        # a session lock is not transactional: the unlock alone, one round trip instead of BEGIN … COMMIT's three
        with autocommit_mode(conn):
            locks.release_session_lock(conn, self.key)


def reconcile_stuck(ctx: JobContext, conn=None) -> dict[str, int]:
    """Settle every decision left in ``posting`` by a crash: posted (found at X) or re-queued.

    Rows whose in-flight lock is held belong to a live worker and are left alone. The locks taken
    here last until this transaction ends, so two reconcilers never settle the same row. ``conn``:
    an idle connection to use (the posting loop's own, so a tick needs one connection, not three).
    """
    if conn is None:
        with ctx.db.connection() as own_conn:
            return reconcile_stuck(ctx, own_conn)
    with conn.transaction():
        guard = conn
        mine = {r["decision_id"] for r in queue.stuck_in_posting(guard, ctx.account_id)
                if locks.try_transaction_lock(guard, inflight_key(r["decision_id"]))}
        # read again under the locks: a worker may have saved its post since the first read
        stuck = [r for r in queue.stuck_in_posting(guard, ctx.account_id) if r["decision_id"] in mine]
        found = requeued = failed = 0
        if not stuck:
            return {"reconciled": 0, "requeued": 0, "failed": 0}
        since = min(r["claimed_at"] or r["updated_at"] for r in stuck) - RECONCILE_SLACK
        own = ctx.x.own_recent_tweets(_own_user_id(ctx, guard), since=since)
        known = known_tweet_ids(guard, [t.tweet_id for t in own])
        by_text: dict[str, list] = {}
        for t in own:
            if t.tweet_id not in known:
                by_text.setdefault(queue.content_hash(t.text), []).append(t)
        now = ctx.clock.now()
        for row in stuck:
            match = by_text.get(row["content_hash"])
            if match:
                tweet = match.pop(0)
                queue.record_posted(guard, row["decision_id"], ctx.account_id, tweet.tweet_id,
                                    tweet.created_at or row["claimed_at"], ctx.world, now, reconciled=True)
                found += 1
                tagged(log, "POSTING", "reconciled", decision_id=row["decision_id"], tweet_id=tweet.tweet_id)
            elif _retry_or_fail(guard, ctx, row, "interrupted before X confirmed the post; not found at X",
                                now) == "failed":
                failed += 1
            else:
                requeued += 1
    return {"reconciled": found, "requeued": requeued, "failed": failed}


def _retry_or_fail(conn, ctx: JobContext, row: dict, reason: str, now: datetime,
                   not_before: datetime | None = None) -> str:
    attempt = int(row["attempts"])
    if attempt >= ctx.settings.post_max_attempts:
        queue.transition(conn, row["decision_id"], "failed", now, expected="posting",
                         last_error=f"gave up after {attempt} attempts: {reason}")
        tagged(log, "POSTING", "failed", level=logging.WARNING, decision_id=row["decision_id"],
               attempts=attempt, reason=_kv(reason))
        return "failed"
    wait = timedelta(seconds=backoff_seconds(attempt))
    when = max(now + wait, not_before or now)
    queue.transition(conn, row["decision_id"], "queued", now, expected="posting",
                     last_error=reason, next_attempt_at=when)
    tagged(log, "POST_RETRY", decision_id=row["decision_id"], attempt=attempt,
           wait_ms=int((when - now).total_seconds() * 1000), reason=_kv(reason))
    return "retry"


def _kv(text: str) -> str:
    return text.replace(" ", "_")[:120]


def tick(ctx: JobContext) -> JobResult:
    """Publish what is due, within the caps and the switches. Returns counts in ``detail``."""
    return _tick(ctx, None)


def tick_many(ctxs: list[JobContext]) -> list[JobResult | Exception]:
    """``tick`` for each of ``ctxs`` in order (a simulated daemon's post turn: one clock, one database), each tick's
    result or the exception it raised. The pre-flights of the accounts that post (sandbox or live) are read together,
    one statement for all of them (``queue.posting_preflights``) instead of one each: at the 5-minute cadence nearly every
    tick ends there. Each account's pre-flight is what its own tick would read at that point of the turn: the
    ticks before it in the turn touch only their own accounts' rows, and the clock stands still. When that read
    fails, each of those ticks fails with its error, as each would have failed at its own."""
    preflights: dict[int, dict | Exception] = {}
    for mode in ("sandbox", "live"):
        group = [c for c in ctxs if c.settings.posting_mode == mode]
        if len(group) < 2 or len({c.account_id for c in group}) < len(group):
            continue   # one account (or one twice): each tick reads its own
        try:
            with group[0].db.autocommit() as conn:
                for c in group:
                    ensure_account_once(c, conn)
                rows = queue.posting_preflights(conn, [c.account_id for c in group], ENDPOINT, group[0].clock.now(),
                                          queue.postable_sources(mode))
            preflights.update({id(c): row for c, row in zip(group, rows)})
        except Exception as exc:  # each of these ticks fails with it, the others go on
            preflights.update({id(c): exc for c in group})
    results: list[JobResult | Exception] = []
    for ctx in ctxs:
        read = preflights.get(id(ctx))
        if isinstance(read, Exception):
            results.append(read)
            continue
        try:
            results.append(_tick(ctx, read))
        except Exception as exc:  # recorded as this tick's failure; the turn goes on
            results.append(exc)
    return results


def _tick(ctx: JobContext, preflight: dict | None) -> JobResult:
    """``tick``, with its pre-flight already read (``tick_many``) or, when None, reading it."""
    settings = ctx.settings
    mode = settings.posting_mode
    if mode == "disabled":
        tagged(log, "POSTING", "disabled", reason="POSTING_DISABLED=true", sent=0)
        return JobResult.skipped("POSTING_DISABLED=true", sent=0)
    if mode == "shadow":
        return shadow_tick(ctx)
    now = ctx.clock.now()
    sources = queue.postable_sources(mode)
    if preflight is None:
        # the pre-flight checks in one statement on an autocommit connection: this tick runs every few minutes
        # and most often finds nothing due, so its cost is mostly this round trip
        with ctx.db.autocommit() as conn:
            ensure_account_once(ctx, conn)
            preflight = queue.posting_preflight(conn, ctx.account_id, ENDPOINT, now, sources)
    until, stuck = preflight["deferred_until"], preflight["stuck"] > 0
    if until is not None:
        tagged(log, "POSTING", "deferred", reason="rate_limited", until=until.isoformat())
        return JobResult.skipped("rate_limited", until=until.isoformat())

    detail = {"sent": 0, "failed": 0, "retried": 0, "reconciled": 0, "requeued": 0}
    if not stuck and not preflight["ready"]:
        # nothing to settle and nothing due: the claim loop would only take the cap lock to find that out
        if mode == "live":
            _count_held(ctx, sources, detail)
        return JobResult(detail=detail)
    if stuck:
        try:
            detail.update(reconcile_stuck(ctx))
        except XRateLimited as exc:
            with ctx.db.connection() as conn:
                record_rate_limit(conn, ctx.account_id, exc.endpoint, exc.reset_at)
            return JobResult.skipped("rate_limited during reconciliation", until=exc.reset_at.isoformat())
        except (XServerError, XTimeout, XConnectionError, httpx.TransportError) as exc:
            # without knowing what X holds we must not send anything: try again next tick
            tagged(log, "POSTING", "reconcile_unavailable", level=logging.WARNING, error=_kv(str(exc)))
            return JobResult.skipped("reconciliation unavailable", error=str(exc))

    while True:
        now = ctx.clock.now()
        # this connection stays out of the pool until the outcome is saved: its session holds the in-flight lock
        with ctx.db.connection() as conn:
            # caps are per account: one worker at a time counts and claims (released when this transaction ends)
            locks.lock_name_for_transaction(conn, f"xbot.post_cap:{ctx.account_id}")
            per_hour, per_day, ready = queue.posting_counts(conn, ctx.account_id, now, sources)
            if not ready:
                break
            if per_hour >= settings.posts_per_hour_cap or per_day >= settings.posts_per_day_cap:
                detail["capped"] = True
                tagged(log, "POSTING", "cap reached", posts_hour=per_hour, posts_day=per_day,
                       cap_hour=settings.posts_per_hour_cap, cap_day=settings.posts_per_day_cap)
                break
            claimed = queue.claim_for_posting(conn, ctx.account_id, now, ctx.worker_id, sources, limit=1)
            if not claimed:
                break
            lock = _InFlight(conn, claimed[0]["decision_id"])  # taken before the claim is visible
            conn.commit()
            try:
                outcome = _publish(ctx, claimed[0], lock)
            finally:
                lock.release()
        detail[outcome] = detail.get(outcome, 0) + 1
        if outcome in ("retried", "rate_limited"):
            break  # X is unhappy: leave the rest for a later tick
    if mode == "live":
        _count_held(ctx, sources, detail)
    return JobResult(detail=detail)


def _count_held(ctx: JobContext, sources, detail: dict) -> None:
    with ctx.db.connection() as conn:
        n = queue.count_due_not_postable(conn, ctx.account_id, ctx.clock.now(), sources)
    if n:
        tagged(log, "POSTING", "held", reason="template_or_synthetic_never_posted_live", count=n)
        detail["held_not_llm"] = int(n)


def shadow_tick(ctx: JobContext) -> JobResult:
    """Shadow mode: record what live mode would post now, and send nothing to X (no client call at all)."""
    sources = queue.postable_sources("shadow")
    with ctx.db.connection() as conn:
        ensure_account_once(ctx, conn)
        shadowed = queue.shadow_due(conn, ctx.account_id, ctx.clock.now(), ctx.worker_id, sources)
    for row in shadowed:
        tagged(log, "POSTING", "shadow", decision_id=row["decision_id"], type=row["decision_type"],
               source=row["generation_source"], scheduled_at=row["scheduled_at"].isoformat(),
               weighted_length=weighted_length(row["content"]), sent=0)
    detail = {"sent": 0, "shadowed": len(shadowed)}
    _count_held(ctx, sources, detail)
    return JobResult(detail=detail)


def _publish(ctx: JobContext, row: dict, lock: _InFlight) -> str:
    """Send one claimed decision and save what happened, on the connection that holds its in-flight lock."""
    decision_id, conn = row["decision_id"], lock.conn
    reply_to = row["target_tweet_id"] if row["decision_type"] == "reply" else None
    try:
        tweet_id = ctx.x.create_tweet(row["content"], reply_to=reply_to)
    except XRateLimited as exc:
        now = ctx.clock.now()
        with conn.transaction():
            record_rate_limit(conn, ctx.account_id, exc.endpoint or ENDPOINT, exc.reset_at)
            # a 429 means X refused the request: nothing was created, so it is safe to requeue — and
            # it does not use up one of the decision's attempts (X never saw the post)
            attempt = int(row["attempts"])
            queue.transition(conn, decision_id, "queued", now, expected="posting", attempts=max(0, attempt - 1),
                             last_error=f"rate limited until {exc.reset_at.isoformat()}",
                             next_attempt_at=max(exc.reset_at, now))
            tagged(log, "POST_RETRY", decision_id=decision_id, attempt=attempt, reason="rate_limited",
                   wait_ms=int(max(0.0, (exc.reset_at - now).total_seconds()) * 1000))
        return "rate_limited"
    except (XServerError, XTimeout, XConnectionError, httpx.TransportError) as exc:
        return _ambiguous(ctx, decision_id, exc, lock)
    except XApiError as exc:
        if exc.status is None or exc.status < 400:
            # a success status with an unreadable body: X most likely created the tweet
            return _ambiguous(ctx, decision_id, exc, lock)
        # a definite refusal (400/403: duplicate content, policy…): retrying would not help
        with conn.transaction():
            queue.transition(conn, decision_id, "failed", ctx.clock.now(), expected="posting",
                             last_error=f"X refused the post: {exc}")
        tagged(log, "POSTING", "failed", level=logging.WARNING, decision_id=decision_id, reason=_kv(str(exc)))
        return "failed"
    now = ctx.clock.now()
    with conn.transaction():
        queue.record_posted(conn, decision_id, ctx.account_id, tweet_id, now, ctx.world, now)
    tagged(log, "POSTING", "posted", decision_id=decision_id, tweet_id=tweet_id, world=ctx.world,
           type=row["decision_type"], source=row["generation_source"])
    return "sent"


def _ambiguous(ctx: JobContext, decision_id, exc: Exception, lock: _InFlight) -> str:
    """X may hold the tweet: reconcile right away (our own lock released first); never resend blindly."""
    tagged(log, "POSTING", "ambiguous", level=logging.WARNING, decision_id=decision_id,
           error=_kv(f"{type(exc).__name__}: {exc}"))
    lock.release()
    try:
        reconcile_stuck(ctx, lock.conn)
    except (XApiError, httpx.TransportError):
        return "retried"  # stays in posting; the next tick reconciles before anything else
    with lock.conn.transaction():  # what reconciliation made of this decision (it may have settled others too)
        status = queue.decision_status(lock.conn, decision_id)
    return {"posted": "sent", "failed": "failed"}.get(status, "retried")
