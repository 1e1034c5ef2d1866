"""The posting job: publish due decisions, exactly once each.

Crash safety rests on one order of events:
1. claim the decision (queued -> posting) and COMMIT, before anything is sent;
2. call X;
3. save the tweet id and move posting -> posted in one transaction.
A crash after 1 leaves a row in ``posting``. Every tick first *reconciles* such rows against the
account's own recent posts: found -> saved as posted (``reconciled``); not found -> back to the
queue. A decision is never re-sent while X might already hold it, so a tweet is never published
twice, and never left unknown to the database.
"""
from __future__ import annotations

import logging
from datetime import datetime, timedelta

import httpx

from .. import queue
from ..logs import tagged
from ..xapi import (XApiError, XConnectionError, XRateLimited, XServerError, XTimeout, deferred_until,
                    record_rate_limit)
from . import JobContext, JobResult

log = logging.getLogger("xbot.jobs.post")

ENDPOINT = "POST /2/tweets"
BACKOFF_BASE_S = 30.0      # first retry after 30 s, then 60 s, 120 s … (deferred to a later tick, never slept)
BACKOFF_CAP_S = 30 * 60.0
RECONCILE_SLACK = timedelta(minutes=10)  # X's created_at may be slightly before our claimed_at


class PostingAmbiguous(Exception):
    """X may or may not have created the tweet (timeout, lost response, 5xx)."""


def backoff_seconds(attempt: int) -> float:
    return min(BACKOFF_CAP_S, BACKOFF_BASE_S * (2 ** max(0, attempt - 1)))


def _posted_counts(conn, account_id: str, now: datetime) -> tuple[int, int]:
    row = conn.execute(
        """SELECT count(*) FILTER (WHERE posted_at > %(now)s - interval '1 hour') AS hour,
                  count(*) FILTER (WHERE posted_at > %(now)s - interval '1 day') AS day
             FROM posted_decisions WHERE account_id = %(acc)s AND posted_at > %(now)s - interval '1 day'""",
        {"now": now, "acc": account_id}).fetchone()
    return int(row["hour"]), int(row["day"])


def _own_user_id(ctx: JobContext) -> str:
    with ctx.db.connection() as conn:
        row = conn.execute("SELECT x_user_id FROM accounts WHERE account_id = %s", (ctx.account_id,)).fetchone()
    if row and row["x_user_id"]:
        return row["x_user_id"]
    user = ctx.x.me()
    with ctx.db.connection() as conn:
        conn.execute("UPDATE accounts SET x_user_id = %s, handle = COALESCE(handle, %s) WHERE account_id = %s",
                     (user.user_id, user.username, ctx.account_id))
    return user.user_id


def reconcile_stuck(ctx: JobContext) -> dict[str, int]:
    """Settle every decision left in ``posting`` by a crash: posted (found at X) or re-queued."""
    with ctx.db.connection() as conn:
        stuck = queue.stuck_in_posting(conn, ctx.account_id)
    found = requeued = 0
    if not stuck:
        return {"reconciled": 0, "requeued": 0}
    since = min(r["claimed_at"] or r["updated_at"] for r in stuck) - RECONCILE_SLACK
    own = ctx.x.own_recent_tweets(_own_user_id(ctx), since=since)
    known = _known_tweet_ids(ctx, [t.tweet_id for t in own])
    by_text: dict[str, list] = {}
    for t in own:
        if t.tweet_id not in known:
            by_text.setdefault(queue.content_hash(t.text), []).append(t)
    now = ctx.clock.now()
    for row in stuck:
        match = by_text.get(row["content_hash"])
        with ctx.db.connection() as conn:
            if match:
                tweet = match.pop(0)
                queue.record_posted(conn, row["decision_id"], ctx.account_id, tweet.tweet_id,
                                    tweet.created_at or row["claimed_at"], ctx.world, now, reconciled=True)
                found += 1
                tagged(log, "POSTING", "reconciled", decision_id=row["decision_id"], tweet_id=tweet.tweet_id)
            else:
                _retry_or_fail(conn, ctx, row, "interrupted before X confirmed the post; not found at X", now)
                requeued += 1
    return {"reconciled": found, "requeued": requeued}


def _known_tweet_ids(ctx: JobContext, ids: list[str]) -> set[str]:
    if not ids:
        return set()
    with ctx.db.connection() as conn:
        rows = conn.execute("SELECT tweet_id FROM posted_decisions WHERE tweet_id = ANY(%s)", (ids,)).fetchall()
    return {r["tweet_id"] for r in rows}


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
    settings = ctx.settings
    mode = settings.posting_mode
    if mode == "disabled":
        tagged(log, "POSTING", "disabled", reason="POSTING_DISABLED=true", sent=0)
        return JobResult.skipped("POSTING_DISABLED=true", sent=0)
    now = ctx.clock.now()
    with ctx.db.connection() as conn:
        queue.ensure_account(conn, ctx.account_id, now, settings.timezone)
        until = deferred_until(conn, ctx.account_id, ENDPOINT, now)
    if until is not None:
        tagged(log, "POSTING", "deferred", reason="rate_limited", until=until.isoformat())
        return JobResult.skipped("rate_limited", until=until.isoformat())

    detail = {"sent": 0, "failed": 0, "retried": 0, "reconciled": 0, "requeued": 0}
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

    sources = queue.postable_sources(mode)
    while True:
        now = ctx.clock.now()
        with ctx.db.connection() as conn:
            per_hour, per_day = _posted_counts(conn, ctx.account_id, now)
            if per_hour >= settings.posts_per_hour_cap or per_day >= settings.posts_per_day_cap:
                detail["capped"] = True
                tagged(log, "POSTING", "cap reached", posts_hour=per_hour, posts_day=per_day,
                       cap_hour=settings.posts_per_hour_cap, cap_day=settings.posts_per_day_cap)
                break
            claimed = queue.claim_for_posting(conn, ctx.account_id, now, ctx.worker_id, sources, limit=1)
        if not claimed:
            break
        outcome = _publish(ctx, claimed[0])
        detail[outcome] = detail.get(outcome, 0) + 1
        if outcome in ("retried", "rate_limited"):
            break  # X is unhappy: leave the rest for a later tick
    if mode == "live":
        with ctx.db.connection() as conn:
            n = conn.execute("""SELECT count(*) AS n FROM content_metadata WHERE account_id = %s AND status = 'queued'
                                  AND scheduled_at <= %s AND generation_source <> ALL(%s)""",
                             (ctx.account_id, ctx.clock.now(), list(sources))).fetchone()["n"]
        if n:
            tagged(log, "POSTING", "held", reason="template_or_synthetic_never_posted_live", count=n)
            detail["held_not_llm"] = int(n)
    return JobResult(detail=detail)


def _publish(ctx: JobContext, row: dict) -> str:
    decision_id = row["decision_id"]
    reply_to = row["target_tweet_id"] if row["decision_type"] == "reply" else None
    try:
        tweet_id = ctx.x.create_tweet(row["content"], reply_to=reply_to)
    except XRateLimited as exc:
        now = ctx.clock.now()
        with ctx.db.connection() as conn:
            record_rate_limit(conn, ctx.account_id, exc.endpoint or ENDPOINT, exc.reset_at)
            # a 429 means X refused the request: nothing was created, so it is safe to requeue
            _retry_or_fail(conn, ctx, row, f"rate limited until {exc.reset_at.isoformat()}", now,
                           not_before=exc.reset_at)
        return "rate_limited"
    except (XServerError, XTimeout, XConnectionError, httpx.TransportError) as exc:
        # ambiguous: X may hold the tweet. Reconcile right away; never resend blindly.
        tagged(log, "POSTING", "ambiguous", level=logging.WARNING, decision_id=decision_id,
               error=_kv(f"{type(exc).__name__}: {exc}"))
        try:
            rec = reconcile_stuck(ctx)
        except (XApiError, httpx.TransportError):
            return "retried"  # stays in posting; the next tick reconciles before anything else
        return "sent" if rec["reconciled"] else "retried"
    except XApiError as exc:
        # a definite refusal (400/403: duplicate content, policy…): retrying would not help
        with ctx.db.connection() as conn:
            queue.transition(conn, decision_id, "failed", ctx.clock.now(), expected="posting",
                             last_error=f"X refused the post: {exc}")
        tagged(log, "POSTING", "failed", level=logging.WARNING, decision_id=decision_id, reason=_kv(str(exc)))
        return "failed"
    now = ctx.clock.now()
    with ctx.db.connection() as conn:
        queue.record_posted(conn, decision_id, ctx.account_id, tweet_id, now, ctx.world, now)
    tagged(log, "POSTING", "posted", decision_id=decision_id, tweet_id=tweet_id, world=ctx.world,
           type=row["decision_type"], source=row["generation_source"])
    return "sent"
