"""The reads a simulated turn makes for all its accounts at once give each account what its own read gives: the
poster's pre-flight (``queue.posting_preflights`` against ``queue.posting_preflight``) and the collector's
rate-limit deferrals (``ratelimits.first_deferrals`` against ``first_deferral``), on accounts in every state."""
from __future__ import annotations

from datetime import timedelta

from xbotlib.store import queue
from xbotlib.store.queue import Decision, insert_decision, transition
from xbotlib.store.ratelimits import first_deferral, first_deferrals, record_rate_limit

ENDPOINT = "POST /2/tweets"


def _decision(conn, clock, account: str, status: str, *, source: str = "llm", due_in: timedelta = timedelta(0)):
    d = insert_decision(conn, Decision(account_id=account, content=f"{account} {status} {source} {due_in}",
                                       generation_source=source, status="draft", scheduled_at=clock.now() + due_in),
                        clock.now())
    for step in {"draft": [], "queued": ["queued"], "posting": ["queued", "posting"]}[status]:
        transition(conn, d, step, clock.now())


def test_posting_preflights_are_each_accounts_posting_preflight(db, clock):
    now = clock.now()
    with db.connection() as conn:
        _decision(conn, clock, "ready", "queued")
        _decision(conn, clock, "ready", "queued")
        _decision(conn, clock, "ready", "queued", due_in=timedelta(hours=1))      # not yet due
        _decision(conn, clock, "template", "queued", source="template")          # due, not postable live
        _decision(conn, clock, "stuck", "posting")
        _decision(conn, clock, "stuck", "draft")
        record_rate_limit(conn, "limited", ENDPOINT, now + timedelta(minutes=7))
        record_rate_limit(conn, "expired", ENDPOINT, now - timedelta(minutes=1))
        record_rate_limit(conn, "other-endpoint", "GET /2/tweets", now + timedelta(minutes=7))
        _decision(conn, clock, "limited", "queued")
    accounts = ["ready", "template", "stuck", "limited", "expired", "other-endpoint", "nobody"]
    for mode in ("sandbox", "live"):
        sources = queue.postable_sources(mode)
        with db.autocommit() as conn:
            together = queue.posting_preflights(conn, accounts, ENDPOINT, now, sources)
            alone = [queue.posting_preflight(conn, a, ENDPOINT, now, sources) for a in accounts]
        assert together == alone
    assert [(p["deferred_until"] is not None, p["stuck"], p["ready"]) for p in together] == [
        (False, 0, 2), (False, 0, 0), (False, 1, 0), (True, 0, 1), (False, 0, 0), (False, 0, 0), (False, 0, 0)]
    with db.autocommit() as conn:
        assert queue.posting_preflights(conn, [], ENDPOINT, now, sources) == []


def test_first_deferrals_are_each_accounts_first_deferral(db, clock):
    now = clock.now()
    endpoints = ("GET /2/users/me", "GET /2/tweets", "GET /2/tweets/analytics")
    with db.connection() as conn:
        record_rate_limit(conn, "both", "GET /2/tweets/analytics", now + timedelta(minutes=3))
        record_rate_limit(conn, "both", "GET /2/tweets", now + timedelta(minutes=9))   # first in the endpoints' order
        record_rate_limit(conn, "one", "GET /2/tweets/analytics", now + timedelta(minutes=5))
        record_rate_limit(conn, "past", "GET /2/users/me", now)                      # reset now: may call
        record_rate_limit(conn, "posting", "POST /2/tweets", now + timedelta(minutes=5))  # not one of these
    accounts = ["both", "one", "past", "posting", "nobody", "one"]
    with db.autocommit() as conn:
        together = first_deferrals(conn, accounts, endpoints, now)
        alone = [first_deferral(conn, a, endpoints, now) for a in accounts]
        assert first_deferrals(conn, [], endpoints, now) == []
    assert together == alone
    assert together == [("GET /2/tweets", now + timedelta(minutes=9)),
                        ("GET /2/tweets/analytics", now + timedelta(minutes=5)), None, None, None,
                        ("GET /2/tweets/analytics", now + timedelta(minutes=5))]
