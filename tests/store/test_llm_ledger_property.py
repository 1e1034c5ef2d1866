"""Property: whatever the API answers, and however calls interleave, the ledger stays honest.

Random sequences of calls meet random answers (success, huge usage, rate limits, quota, server and
client errors); some steps run 2-3 calls at once in threads, each on its own pooled connection.
After every step: the day's spent is within [0, budget], no reservation is left open, every
refund is at most its reservation, and a refused or circuit-broken call never reached the server.
One fake server and one database serve all examples; the ledger is emptied between examples.
"""
from __future__ import annotations

import threading
from datetime import datetime, timezone

import pytest
from hypothesis import HealthCheck, given, settings as hsettings, strategies as st

from xbotlib.clock import SimClock
from xbotlib.config import Settings
from xbotlib.store.db import Database
from xbotlib.devtools.fake_openai import FakeOpenAI
from xbotlib.clients.llm import LLMClient
from xbotlib.clients.llm_rules import estimate_chat_usd
from xbotlib.store import ledger as store_ledger
from xbotlib.store.ledger import spent_today

ACCOUNT = "prop"
NOW = datetime(2026, 3, 2, 12, 0, tzinfo=timezone.utc)
KINDS = ["200", "200", "200:20000,3000", "429_rate", "429_rate:none", "429_quota", "500", "503", "400"]


@pytest.fixture(scope="module")
def fake():
    with FakeOpenAI() as server:
        yield server


@pytest.fixture(scope="module")
def world(pg, fake):
    db = Database.from_url(pg.fresh_database(), pool_max=6)
    base = Settings(openai_api_key="sk-test", openai_base_url=fake.base_url, openai_model="gpt-4o",
                    openai_timeout_s=5.0)
    # one SDK client (thread-safe) shared by every LLMClient, so examples stay fast
    sdk = LLMClient(base, db, SimClock(NOW), ACCOUNT, ledger=store_ledger).client
    yield db, base, sdk
    db.close()


call = st.tuples(st.sampled_from(["complete", "embed"]), st.sampled_from(KINDS), st.integers(50, 400))
step = st.one_of(
    st.tuples(st.just("seq"), st.lists(call, min_size=1, max_size=1)),
    st.tuples(st.just("par"), st.lists(call, min_size=2, max_size=3)),
)


def run_call(llm: LLMClient, what: str, max_tokens: int):
    if what == "embed":
        return llm.embed(["deep work beats busy work", "sleep well"])
    return llm.complete("You write posts.", "Hook pattern: plain\nTopic: ai\nCount: 1", purpose="post",
                        max_tokens=max_tokens)


def check_ledger(db: Database, budget: float) -> None:
    day = NOW.date()
    with db.connection() as conn:
        spent = spent_today(conn, ACCOUNT, day)
        rows = conn.execute("SELECT status, reserved_usd, cost_usd FROM llm_ledger WHERE account_id = %s",
                            (ACCOUNT,)).fetchall()
    assert -1e-12 <= spent <= budget + 1e-12, (spent, budget)
    assert not [r for r in rows if r["status"] == "reserved"], "a reservation was left open"
    for r in rows:
        assert r["cost_usd"] >= 0
        if r["status"] in ("refunded", "quota_exhausted"):
            assert r["cost_usd"] == 0 <= r["reserved_usd"]  # the refund is exactly the reservation, never more


@hsettings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                  HealthCheck.too_slow])
@given(budget=st.sampled_from([0.0, 0.001, 0.004, 0.01, 0.05]), steps=st.lists(step, min_size=1, max_size=5))
def test_ledger_stays_within_budget_under_any_answers(world, fake, budget, steps):
    db, base, sdk = world
    db.execute("DELETE FROM llm_ledger")
    fake.reset()
    cfg = base.replace(openai_daily_budget_usd=budget)
    clock = SimClock(NOW)

    def client() -> LLMClient:
        return LLMClient(cfg, db, clock, ACCOUNT, ledger=store_ledger, sleep=lambda s: None, client=sdk)

    for mode, calls in steps:
        fake.script([kind for _, kind, _ in calls])
        before = len(fake.requests)
        if mode == "seq":
            what, _, max_tokens = calls[0]
            llm = client()
            run_call(llm, what, max_tokens)
            if llm.last_outcome in ("refused", "circuit_open"):
                assert len(fake.requests) == before  # refused without calling the server
            if llm.last_outcome == "quota_exhausted":
                assert len(fake.requests) == before + 1  # insufficient_quota is never retried
        else:
            errors: list[BaseException] = []

            def worker(what: str, max_tokens: int) -> None:
                try:
                    run_call(client(), what, max_tokens)
                except BaseException as exc:  # surfaced below: a call must never raise
                    errors.append(exc)

            threads = [threading.Thread(target=worker, args=(what, mt)) for what, _, mt in calls]
            for t in threads:
                t.start()
            for t in threads:
                t.join(timeout=30)
            assert errors == []
        check_ledger(db, budget)
    if budget == 0.0:
        assert fake.requests == []  # a zero budget never spends a request


def test_simultaneous_reservations_never_overbook(world, fake):
    """12 calls start at once (a barrier) against a budget that fits 3 estimates; the slow answers keep
    every reservation open together, so without the (account, day) lock they would overbook."""
    db, base, sdk = world
    db.execute("DELETE FROM llm_ledger")
    fake.reset()
    clock = SimClock(NOW)
    estimate = estimate_chat_usd("gpt-4o", [{"role": "system", "content": "You write posts."},
                                            {"role": "user", "content": "Hook pattern: plain\nTopic: ai\nCount: 1"}], 200)
    cfg = base.replace(openai_daily_budget_usd=estimate * 3.5)
    fake.script(["slow:1.5"] * 12)  # long enough that all 12 reserve before any settles
    barrier = threading.Barrier(12)
    outcomes: list[str] = []
    lock = threading.Lock()
    with Database.from_url(db.url, pool_max=12) as wide_db:

        def worker() -> None:
            llm = LLMClient(cfg, wide_db, clock, ACCOUNT, ledger=store_ledger, sleep=lambda s: None, client=sdk)
            barrier.wait()
            run_call(llm, "complete", 200)
            with lock:
                outcomes.append(llm.last_outcome)

        threads = [threading.Thread(target=worker) for _ in range(12)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=30)
    assert sorted(outcomes) == ["ok"] * 3 + ["refused"] * 9
    assert len(fake.requests) == 3
    check_ledger(db, cfg.openai_daily_budget_usd)
