"""The posting job against the sandbox X: what it sends, what it does when X misbehaves, and that a
decision is published exactly once — whatever X answers and however many workers post at once.

Faults are the sandbox's own (``sandbox.faults.push(route, kind, count)``); where a test needs X to
behave in a way the sandbox has no fault for (slow to answer, or a garbled 200 after creating the
tweet), a small ASGI middleware around the sandbox's app plays that part.
"""
from __future__ import annotations

import asyncio
import logging
import re
import threading
import uuid
from dataclasses import dataclass
from datetime import timedelta

import pytest
from helpers import served_over_http

from xbotlib.clients.generation import Candidate
from xbotlib.config import load_settings
from xbotlib.core import vocab
from xbotlib.store.db import Database
from xbotlib.jobs.context import JobContext
from xbotlib.jobs.runner import run_job
from xbotlib.jobs import plan, post
from xbotlib.jobs.context import build_context
from xbotlib.store.queue import Decision, insert_decision
from xbotlib.sim.xserver import SandboxX
from xbotlib.clients.xapi import XClient

POST_ROUTE = "POST /2/tweets"
TIMELINE_ROUTE = "GET /2/users/:id/tweets"


# ----------------------------------------------------------------------------- helpers

def queue_posts(db, clock, n: int, *, source: str = "template", scheduled_in: timedelta = timedelta(0),
                account: str = "acct1", label: str = "") -> list[uuid.UUID]:
    """``n`` queued posts with distinct texts, due at ``now + scheduled_in``."""
    ids = []
    with db.connection() as conn:
        for i in range(n):
            text = f"Sleep note {label}{i} ({uuid.uuid4().hex[:6]}): seven hours beat any supplement on the shelf."
            d = Decision(account_id=account, content=text, generation_source=source, status="queued",
                         scheduled_at=clock.now() + scheduled_in, hook_pattern="plain", topic="health")
            ids.append(insert_decision(conn, d, clock.now()))
    return ids


def row(db, decision_id) -> dict:
    with db.connection() as conn:
        return conn.execute("SELECT * FROM content_metadata WHERE decision_id = %s", (str(decision_id),)).fetchone()


def posted(db) -> dict[str, dict]:
    """posted_decisions by decision_id (as str)."""
    with db.connection() as conn:
        rows = conn.execute("SELECT * FROM posted_decisions").fetchall()
    return {str(r["decision_id"]): r for r in rows}


def statuses(db) -> dict[str, int]:
    with db.connection() as conn:
        return {r["status"]: r["n"] for r in conn.execute(
            "SELECT status, count(*) AS n FROM content_metadata GROUP BY status").fetchall()}


def lines(caplog, tag: str) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.getMessage().startswith(f"[{tag}]")]


def at_once(workers: list[JobContext], fn) -> list[BaseException]:
    """Run ``fn(worker)`` for every worker in its own thread, all released together; returns what they raised."""
    barrier = threading.Barrier(len(workers))
    errors: list[BaseException] = []

    def work(c):
        barrier.wait()
        try:
            fn(c)
        except BaseException as exc:  # noqa: BLE001 - returned to the test, which asserts on it
            errors.append(exc)
    threads = [threading.Thread(target=work, args=(c,)) for c in workers]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    return errors


def kv(line: str) -> dict[str, str]:
    return dict(re.findall(r"(\w+)=(\S+)", line))


@pytest.fixture
def sandbox(clock):
    return SandboxX(clock=clock, seed=5)


@pytest.fixture
def ctx(settings, db, clock, sandbox):
    return build_context(settings, db, clock, sandbox=sandbox, seed=5, worker_id="worker-a")


@pytest.fixture(autouse=True)
def info_logs(caplog):
    caplog.set_level(logging.INFO, logger="xbot")


class SlowX:
    """ASGI middleware: X takes ``delay_s`` to process POST /2/tweets (before it creates anything)."""

    def __init__(self, app, delay_s: float):
        self.app, self.delay_s = app, delay_s

    async def __call__(self, scope, receive, send):
        if scope["type"] == "http" and scope["method"] == "POST" and scope["path"] == "/2/tweets":
            await asyncio.sleep(self.delay_s)
        await self.app(scope, receive, send)


class GarbledAfterCreate:
    """ASGI middleware: X creates the tweet, then answers 200 with a body cut short (not JSON)."""

    def __init__(self, app, times: int = 1):
        self.app, self.times = app, times

    async def __call__(self, scope, receive, send):
        if not (scope["type"] == "http" and scope["method"] == "POST" and scope["path"] == "/2/tweets" and self.times):
            return await self.app(scope, receive, send)
        self.times -= 1

        async def garble(message):
            if message["type"] == "http.response.start":
                headers = [(k, v) for k, v in message.get("headers", []) if k.lower() != b"content-length"]
                await send({**message, "status": 200, "headers": headers})
            elif message["type"] == "http.response.body":
                await send({"type": "http.response.body", "body": b'{"data": {"id": "20', "more_body": False})
        await self.app(scope, receive, garble)


# ----------------------------------------------------------------------------- the happy path

def test_posts_what_is_due_and_saves_the_tweet_ids(ctx, db, clock, sandbox, caplog):
    due = queue_posts(db, clock, 2)
    (later,) = queue_posts(db, clock, 1, scheduled_in=timedelta(hours=2), label="later")
    result = run_job("post", ctx, post.tick)
    assert result.status == "ok" and result.detail["sent"] == 2
    saved = posted(db)
    assert set(saved) == {str(d) for d in due}
    assert {t.tweet_id: t.text for t in sandbox.tweets} == {
        saved[str(d)]["tweet_id"]: row(db, d)["content"] for d in due}
    for d in due:
        r = row(db, d)
        assert r["status"] == "posted" and r["attempts"] == 1 and r["claimed_by"] == "worker-a"
        assert saved[str(d)]["world"] == "sandbox" and saved[str(d)]["reconciled"] is False
    assert row(db, later)["status"] == "queued"
    assert len(lines(caplog, "POSTING")) == 2 and all("posted decision_id=" in ln for ln in lines(caplog, "POSTING"))
    with db.connection() as conn:
        run = conn.execute("SELECT status, detail FROM job_runs WHERE job = 'post'").fetchone()
    assert run["status"] == "ok" and run["detail"]["sent"] == 2


def test_posting_disabled_sends_nothing_anywhere(settings, db, clock, sandbox, caplog):
    ctx = build_context(settings.replace(posting_disabled=True), db, clock, sandbox=sandbox)
    ids = queue_posts(db, clock, 3)
    result = run_job("post", ctx, post.tick)
    assert result.status == "skipped" and result.reason == "POSTING_DISABLED=true"
    assert sum(sandbox.requests.values()) == 0 and sum(ctx.x.calls.values()) == 0 and sandbox.tweets == []
    assert ["[POSTING] disabled reason=POSTING_DISABLED=true sent=0"] == lines(caplog, "POSTING")
    assert all(row(db, d)["status"] == "queued" and row(db, d)["attempts"] == 0 for d in ids)


def test_live_mode_never_sends_template_or_synthetic_text(settings, db, clock, sandbox, caplog):
    live = settings.replace(live_posts=True, x_access_token="live-token")
    assert live.posting_mode == "live" and live.world == "live"
    # built by hand so that "live X" is the sandbox: nothing leaves this machine
    ctx = JobContext(settings=live, db=db, clock=clock, account_id="acct1", world="live", x=XClient.in_process(sandbox),
                     worker_id="live-worker")
    (template,) = queue_posts(db, clock, 1, source="template", label="t")
    (synthetic,) = queue_posts(db, clock, 1, source="synthetic", label="s")
    (llm,) = queue_posts(db, clock, 1, source="llm", label="l")
    result = post.tick(ctx)
    assert result.detail["sent"] == 1 and result.detail["held_not_llm"] == 2
    assert sandbox.requests[POST_ROUTE] == 1
    assert [t.text for t in sandbox.tweets] == [row(db, llm)["content"]]
    assert posted(db)[str(llm)]["world"] == "live"
    for d in (template, synthetic):
        assert row(db, d)["status"] == "queued" and row(db, d)["attempts"] == 0, "never even claimed"
    assert "[POSTING] held reason=template_or_synthetic_never_posted_live count=2" in lines(caplog, "POSTING")
    post.tick(ctx)
    assert sandbox.requests[POST_ROUTE] == 1


def test_hourly_cap(settings, db, clock, sandbox):
    ctx = build_context(settings.replace(posts_per_hour_cap=2, posts_per_day_cap=100), db, clock, sandbox=sandbox)
    queue_posts(db, clock, 5)
    sent = []
    for minutes in (0, 30, 31):  # at t=0, t=30 min, t=61 min
        clock.advance(timedelta(minutes=minutes))
        sent.append(post.tick(ctx).detail["sent"])
    assert sent == [2, 0, 2]
    assert len(sandbox.tweets) == 4 and statuses(db) == {"posted": 4, "queued": 1}


def test_daily_cap(settings, db, clock, sandbox):
    ctx = build_context(settings.replace(posts_per_hour_cap=100, posts_per_day_cap=3), db, clock, sandbox=sandbox)
    queue_posts(db, clock, 5)
    first = post.tick(ctx)
    assert first.detail["sent"] == 3 and first.detail["capped"] is True
    clock.advance(timedelta(hours=23, minutes=59))
    assert post.tick(ctx).detail["sent"] == 0
    clock.advance(timedelta(minutes=2))
    assert post.tick(ctx).detail["sent"] == 2
    assert len(sandbox.tweets) == 5


# ----------------------------------------------------------------------------- X misbehaves

@pytest.mark.parametrize("fault", ["server_error", "timeout"])
def test_transient_errors_retry_with_backoff_then_fail_with_the_reason(ctx, db, clock, sandbox, caplog, fault):
    (d,) = queue_posts(db, clock, 1)
    sandbox.faults.push(POST_ROUTE, fault, 3)
    waits = []
    for attempt in (1, 2):
        before = sandbox.requests[POST_ROUTE]
        assert post.tick(ctx).detail["retried"] == 1
        assert sandbox.requests[POST_ROUTE] == before + 1
        r = row(db, d)
        assert r["status"] == "queued" and r["attempts"] == attempt and r["last_error"]
        retry = kv(lines(caplog, "POST_RETRY")[-1])
        assert retry["decision_id"] == str(d) and int(retry["attempt"]) == attempt
        wait = timedelta(milliseconds=int(retry["wait_ms"]))
        assert r["next_attempt_at"] == clock.now() + wait
        waits.append(wait)
        # not before its time: a tick now sends nothing
        assert post.tick(ctx).detail["sent"] == 0 and sandbox.requests[POST_ROUTE] == before + 1
        clock.advance(wait)
    assert waits[1] > waits[0] > timedelta(0), "backoff grows"
    result = post.tick(ctx)
    r = row(db, d)
    assert r["status"] == "failed" and r["attempts"] == 3
    assert r["last_error"].startswith("gave up after 3 attempts: ")
    assert any(f"failed decision_id={d}" in ln and "attempts=3" in ln for ln in lines(caplog, "POSTING"))
    assert result.detail["failed"] == 1 and result.detail["retried"] == 0 and result.detail["requeued"] == 0
    assert sandbox.tweets == [] and sandbox.requests[POST_ROUTE] == 3
    post.tick(ctx)
    assert sandbox.requests[POST_ROUTE] == 3, "a failed decision is not sent again"


def test_a_retry_that_succeeds_posts_once(ctx, db, clock, sandbox):
    (d,) = queue_posts(db, clock, 1)
    sandbox.faults.push(POST_ROUTE, "server_error", 2)
    for _ in range(3):
        post.tick(ctx)
        clock.advance(timedelta(minutes=5))
    assert row(db, d)["status"] == "posted" and row(db, d)["attempts"] == 3
    assert [t.text for t in sandbox.tweets] == [row(db, d)["content"]]


def test_rate_limit_defers_through_the_database_without_sleeping(settings, ctx, db, clock, sandbox, caplog):
    ids = queue_posts(db, clock, 2)
    sandbox.faults.push(POST_ROUTE, "rate_limit")
    start = clock.now()
    result = post.tick(ctx)
    assert result.detail["rate_limited"] == 1 and result.detail["sent"] == 0
    assert clock.now() == start
    with db.connection() as conn:
        limit = conn.execute("SELECT * FROM x_rate_limits WHERE account_id = 'acct1'").fetchone()
    assert limit["endpoint"] == POST_ROUTE and limit["reset_at"] > start
    reset = limit["reset_at"]
    first = row(db, ids[0])
    assert first["status"] == "queued" and first["next_attempt_at"] >= reset
    retry = kv(lines(caplog, "POST_RETRY")[-1])
    assert retry["decision_id"] == str(ids[0]) and int(retry["wait_ms"]) == (first["next_attempt_at"] - start) / \
        timedelta(milliseconds=1)
    assert row(db, ids[1])["attempts"] == 0, "after a 429 the rest waits for a later tick"

    # any process (a fresh context) honours the deferral: no request reaches X until the reset
    other = build_context(settings, db, clock, sandbox=sandbox, worker_id="worker-b")
    seen = sum(sandbox.requests.values())
    clock.set(reset - timedelta(seconds=1))
    for c in (ctx, other):
        r = post.tick(c)
        assert r.status == "skipped" and r.reason == "rate_limited"
    assert sum(sandbox.requests.values()) == seen
    assert any("deferred reason=rate_limited" in ln for ln in lines(caplog, "POSTING"))

    clock.set(first["next_attempt_at"])
    assert post.tick(ctx).detail["sent"] == 2
    assert len(sandbox.tweets) == 2


def test_lost_response_is_reconciled_not_resent(ctx, db, clock, sandbox, caplog):
    (d,) = queue_posts(db, clock, 1)
    sandbox.faults.push(POST_ROUTE, "lost_response")
    result = post.tick(ctx)
    assert result.detail["sent"] == 1
    text = row(db, d)["content"]
    assert [t.text for t in sandbox.tweets] == [text]
    saved = posted(db)[str(d)]
    assert saved["tweet_id"] == sandbox.tweets[0].tweet_id and saved["reconciled"] is True
    assert row(db, d)["status"] == "posted"
    assert any(f"reconciled decision_id={d}" in ln for ln in lines(caplog, "POSTING"))
    clock.advance(timedelta(hours=1))
    post.tick(ctx)
    assert sandbox.requests[POST_ROUTE] == 1 and len(sandbox.tweets) == 1


def test_lost_response_while_x_cannot_say_what_it_holds_waits_then_reconciles(ctx, db, clock, sandbox):
    (d,) = queue_posts(db, clock, 1)
    queue_posts(db, clock, 1, label="second")
    sandbox.faults.push(POST_ROUTE, "lost_response")
    sandbox.faults.push(TIMELINE_ROUTE, "server_error", 2)  # the immediate check and the next tick's
    post.tick(ctx)
    assert row(db, d)["status"] == "posting", "unknown outcome: left for reconciliation, never resent"
    assert sandbox.requests[POST_ROUTE] == 1
    r = post.tick(ctx)
    assert r.status == "skipped" and r.reason == "reconciliation unavailable"
    assert sandbox.requests[POST_ROUTE] == 1, "nothing is sent while X might hold an unsaved post"
    result = post.tick(ctx)
    assert result.detail["reconciled"] == 1 and result.detail["sent"] == 1
    assert posted(db)[str(d)]["reconciled"] is True
    assert sorted(t.text for t in sandbox.tweets) == sorted(
        row(db, x)["content"] for x in posted(db))
    assert len(sandbox.tweets) == 2 and sandbox.requests[POST_ROUTE] == 2


def test_a_garbled_success_is_reconciled_not_marked_failed(settings, db, clock, sandbox):
    # X created the tweet but its 200 was cut short: the post exists, so the database must learn its id
    sandbox.app = GarbledAfterCreate(sandbox.app)
    ctx = build_context(settings, db, clock, sandbox=sandbox)
    (d,) = queue_posts(db, clock, 1)
    post.tick(ctx)
    assert len(sandbox.tweets) == 1
    assert row(db, d)["status"] == "posted"
    saved = posted(db)[str(d)]
    assert saved["tweet_id"] == sandbox.tweets[0].tweet_id and saved["reconciled"] is True


def test_a_definite_refusal_fails_at_once(ctx, db, clock, sandbox, caplog):
    (d,) = queue_posts(db, clock, 1)
    with XClient.in_process(sandbox) as x:  # the same text is already at X: X refuses duplicates with 403
        x.create_tweet(row(db, d)["content"])
    post.tick(ctx)
    r = row(db, d)
    assert r["status"] == "failed" and r["last_error"].startswith("X refused the post: ")
    assert "duplicate content" in r["last_error"]
    assert len(sandbox.tweets) == 1 and str(d) not in posted(db)


# ----------------------------------------------------------------------------- two workers at once

def test_two_workers_post_every_decision_exactly_once(settings, db_url, db, clock, sandbox):
    settings = settings.replace(posts_per_hour_cap=100, posts_per_day_cap=1000, post_max_attempts=10)
    sandbox.app = SlowX(sandbox.app, delay_s=0.01)  # calls overlap: X takes a moment to answer
    sandbox.faults.push(POST_ROUTE, "server_error", 2)  # makes workers reconcile while the other one posts
    ids = queue_posts(db, clock, 24)
    dbs = [Database.from_url(db_url, pool_max=4) for _ in range(2)]
    workers = [build_context(settings, dbs[i], clock, sandbox=sandbox, seed=i, worker_id=f"worker-{i}")
               for i in range(2)]
    errors: list[BaseException] = []
    sent_by: dict[str, int] = {"worker-0": 0, "worker-1": 0}

    def tick(c):
        sent_by[c.worker_id] += run_job("post", c, post.tick).detail.get("sent", 0)
    try:
        for _ in range(8):
            errors += at_once(workers, tick)
            if statuses(db).get("posted", 0) == len(ids):
                break
            clock.advance(timedelta(minutes=10))
    finally:
        for d in dbs:
            d.close()
    assert errors == []
    assert statuses(db) == {"posted": len(ids)}
    saved = posted(db)
    assert set(saved) == {str(d) for d in ids}
    texts = [t.text for t in sandbox.tweets]
    assert len(texts) == len(set(texts)) == len(ids), "no duplicate tweets"
    assert {s["tweet_id"] for s in saved.values()} == {t.tweet_id for t in sandbox.tweets}
    assert {t.text for t in sandbox.tweets} == {row(db, d)["content"] for d in ids}
    assert sandbox.requests[POST_ROUTE] == len(ids) + 2, "each decision sent once, plus the two refused calls"
    assert min(sent_by.values()) > 0, f"both workers posted: {sent_by}"


@pytest.mark.parametrize("cap", ["hour", "day"])
def test_concurrent_workers_share_one_cap(settings, db_url, db, clock, sandbox, cap):
    """Caps are per account, not per worker: four workers posting at once send no more than the cap."""
    limit = 3
    settings = settings.replace(posts_per_hour_cap=limit if cap == "hour" else 100,
                                posts_per_day_cap=limit if cap == "day" else 100)
    sandbox.app = SlowX(sandbox.app, delay_s=0.05)  # every worker is mid-call while the others count
    queue_posts(db, clock, 12)
    dbs = [Database.from_url(db_url, pool_max=2) for _ in range(4)]
    workers = [build_context(settings, dbs[i], clock, sandbox=sandbox, seed=i, worker_id=f"worker-{i}")
               for i in range(4)]
    try:
        errors = at_once(workers, post.tick)
    finally:
        for d in dbs:
            d.close()
    assert errors == []
    assert len(sandbox.tweets) == limit and statuses(db) == {"posted": limit, "queued": 12 - limit}


def test_a_tick_needs_a_single_database_connection(settings, db_url, clock, sandbox):
    # the daemon keeps one connection for its lock; small pools (the benchmark runs with 3) must not stall
    one = Database.from_url(db_url, pool_max=1)
    try:
        ctx = build_context(settings.replace(posts_per_hour_cap=10), one, clock, sandbox=sandbox)
        ids = queue_posts(one, clock, 4)
        sandbox.faults.push(POST_ROUTE, "lost_response")
        sandbox.faults.push(POST_ROUTE, "server_error")
        sandbox.faults.push(POST_ROUTE, "rate_limit")
        for _ in range(4):
            post.tick(ctx)
            clock.advance(timedelta(minutes=20))
        assert statuses(one) == {"posted": 4}
        assert sorted(t.text for t in sandbox.tweets) == sorted(row(one, d)["content"] for d in ids)
    finally:
        one.close()


def test_each_in_flight_lock_is_released_and_the_connection_lent_back_as_it_was(settings, db_url, clock, sandbox):
    # the unlock runs alone in autocommit (one round trip): the pool's one connection must come back
    # transactional, holding no advisory lock, after a plain post and after an ambiguous one (released early)
    one = Database.from_url(db_url, pool_max=1)
    try:
        ctx = build_context(settings.replace(posts_per_hour_cap=10), one, clock, sandbox=sandbox)
        queue_posts(one, clock, 2)
        sandbox.faults.push(POST_ROUTE, "lost_response")
        for _ in range(2):
            post.tick(ctx)
            with one.connection() as conn:
                assert conn.autocommit is False
                held = conn.execute("SELECT count(*) AS n FROM pg_locks WHERE locktype = 'advisory' "
                                    "AND pid = pg_backend_pid()").fetchone()["n"]
            assert held == 0
        assert statuses(one) == {"posted": 2} and sandbox.requests[POST_ROUTE] == 2
    finally:
        one.close()


def test_rate_limits_do_not_use_up_attempts(ctx, db, clock, sandbox):
    """X never saw a post it answered 429 to: however many rate limits, the post still goes out."""
    (d,) = queue_posts(db, clock, 1)
    sandbox.faults.push(POST_ROUTE, "rate_limit", ctx.settings.post_max_attempts + 2)
    for _ in range(ctx.settings.post_max_attempts + 2):
        assert post.tick(ctx).detail["rate_limited"] == 1
        r = row(db, d)
        assert r["status"] == "queued" and r["attempts"] == 0
        clock.set(r["next_attempt_at"])
    assert post.tick(ctx).detail["sent"] == 1
    assert row(db, d)["status"] == "posted" and [t.text for t in sandbox.tweets] == [row(db, d)["content"]]


# ----------------------------------------------------------------------------- shadow mode (LIVE_POSTS=shadow)

@pytest.fixture
def served_sandbox(clock):
    """The sandbox X served over HTTP on loopback: to xbot it is 'live X' at X_API_BASE_URL."""
    sandbox = SandboxX(clock=clock, seed=7)
    with served_over_http(sandbox.socket_app()) as url:
        yield sandbox, url


@dataclass
class LLMTexts:
    """A content generator whose posts say generation_source='llm' (what live mode may post), no OpenAI needed."""
    texts: list

    def candidates(self, hook, topic, n, *, angle=None, reply_to_text=None, rng=None):
        text = self.texts.pop(0) if self.texts else None
        return [Candidate(text, "llm", vocab.detect_hook(text), topic)] if text else []


def shadow_settings(settings, x_url: str):
    """LIVE_POSTS=shadow through the real configuration path, 'live X' being the served sandbox."""
    return load_settings(env={
        "XBOT_DATABASE_URL": settings.database_url, "XBOT_HOME": settings.home, "XBOT_ACCOUNT_ID": "acct1",
        "POSTING_DISABLED": "false", "LIVE_POSTS": "shadow", "X_API_BASE_URL": x_url,
        "X_ACCESS_TOKEN": "shadow-user-token", "PLAN_POSTS_PER_DAY": "1", "PLAN_REPLIES_PER_DAY": "0"})


SHADOW_TEXT = "Sleep is the cheapest performance upgrade there is: seven hours beats any supplement on the shelf."


def test_shadow_mode_plans_against_live_x_and_never_posts(settings, db, clock, served_sandbox, caplog):
    sandbox, x_url = served_sandbox
    shadow = shadow_settings(settings, x_url)
    assert (shadow.posting_mode, shadow.world) == ("shadow", "live")
    ctx = build_context(shadow, db, clock, generator=LLMTexts([SHADOW_TEXT]), seed=7, worker_id="shadow-worker")
    assert ctx.world == "live" and not ctx.simulated and ctx.sandbox is None  # the live client, over HTTP

    planned = plan.tick(ctx)
    assert planned.status == "ok" and planned.detail["queued"] == 1
    (template,) = queue_posts(db, clock, 1, source="template", label="t")
    (llm,) = queue_posts(db, clock, 1, source="llm", label="l")
    with db.connection() as conn:
        (planned_id,) = [r["decision_id"] for r in conn.execute(
            "SELECT decision_id FROM content_metadata WHERE content = %s", (SHADOW_TEXT,)).fetchall()]
    clock.set(row(db, planned_id)["scheduled_at"])

    result = post.tick(ctx)
    assert result.status == "ok"
    assert result.detail == {"sent": 0, "shadowed": 2, "held_not_llm": 1}
    assert sandbox.requests.get(POST_ROUTE, 0) == 0 and sandbox.tweets == [], "nothing reached POST /2/tweets"
    assert posted(db) == {}
    for d in (planned_id, llm):
        r = row(db, d)
        assert (r["status"], r["last_error"], r["claimed_by"], r["claimed_at"]) == (
            "skipped", "shadow", "shadow-worker", clock.now())
        assert r["attempts"] == 0  # never claimed for X
    assert row(db, planned_id)["content"] == SHADOW_TEXT  # what it would have posted is kept
    assert row(db, template)["status"] == "queued", "template text is held back as in live mode"
    shadow_lines = [kv(x) for x in lines(caplog, "POSTING") if x.startswith("[POSTING] shadow ")]
    assert sorted(x["decision_id"] for x in shadow_lines) == sorted([str(planned_id), str(llm)])
    assert {x["sent"] for x in shadow_lines} == {"0"}
    assert next(x for x in shadow_lines if x["decision_id"] == str(planned_id))["weighted_length"] == str(
        len(SHADOW_TEXT))

    # a later tick finds nothing new to shadow, and still sends nothing
    assert post.tick(ctx).detail["shadowed"] == 0
    # the shadowed post counts as the day's post: the planner plans what live mode would, no more
    assert plan.tick(ctx).status == "skipped"
    assert sandbox.requests.get(POST_ROUTE, 0) == 0


def test_shadow_mode_with_the_template_generator_plans_nothing(settings, db, clock):
    # no OPENAI_API_KEY: templates would be queued only to be held forever; X is never even asked
    shadow = shadow_settings(settings, "http://127.0.0.1:9")
    ctx = build_context(shadow, db, clock, seed=1)
    result = plan.tick(ctx)
    assert result.status == "skipped" and result.reason.startswith("no OPENAI_API_KEY: live X never gets template posts")
    with db.connection() as conn:
        assert conn.execute("SELECT count(*) AS n FROM content_metadata").fetchone()["n"] == 0


def test_tick_many_posts_for_each_account_what_its_own_tick_posts(settings, db, clock, caplog):
    """The post turn of a simulated daemon: the pre-flights of the accounts that post are read together; each account
    then sends what its own tick would send (acct1 two due posts, acct2 none due, acct3 posting disabled, acct4 with
    X refusing its post once with a 503 — its decision goes back to the queue)."""
    caplog.set_level(logging.INFO, logger="xbot")
    base = settings.replace(posts_per_hour_cap=100, posts_per_day_cap=1000)
    ctxs = [build_context(base.replace(account_id=f"acct{i}", posting_disabled=i == 3), db, clock,
                          sandbox=SandboxX(clock=clock, seed=60 + i), seed=60 + i) for i in (1, 2, 3, 4)]
    first = queue_posts(db, clock, 2, account="acct1", label="a")
    queue_posts(db, clock, 1, account="acct2", label="b", scheduled_in=timedelta(hours=1))
    queue_posts(db, clock, 1, account="acct3", label="c")
    fourth = queue_posts(db, clock, 1, account="acct4", label="d")
    ctxs[3].sandbox.faults.push(POST_ROUTE, "server_error")
    results = post.tick_many(ctxs)
    assert [(r.status, r.detail.get("sent"), r.reason) for r in results] == [
        ("ok", 2, None), ("ok", 0, None), ("skipped", 0, "POSTING_DISABLED=true"), ("ok", 0, None)]
    assert {str(d) for d in first} == set(posted(db)) and len(ctxs[0].sandbox.tweets) == 2
    assert row(db, fourth[0])["status"] == "queued" and ctxs[1].sandbox.tweets == [] == ctxs[2].sandbox.tweets
    # the pre-flight is read again for each account as its own tick would: a later turn sends acct4's retry
    clock.advance(timedelta(hours=1))
    assert [r.detail.get("sent") for r in post.tick_many(ctxs)] == [0, 1, 0, 1]
