"""The posting queue: the status lifecycle, the CHECK constraints, readiness by the injected clock,
concurrent claims with SKIP LOCKED, postable sources per posting mode and recording a post."""
from __future__ import annotations

import threading
import uuid
from datetime import timedelta

import psycopg
import pytest

from xbotlib.store.db import Database
from xbotlib.store.queue import (ALLOWED_TRANSITIONS, STATUSES, Decision, IllegalTransition, claim_for_posting, content_hash, count_active_created_since, count_active_created_since_by_type, ensure_account, insert_decision, postable_sources, queue_depth, ready_decisions, record_posted, stuck_in_posting, transition)

# The lifecycle as DESIGN.md draws it, written out independently of the code under test.
LEGAL = {
    ("draft", "queued"), ("draft", "skipped"), ("draft", "cancelled"),
    ("queued", "posting"), ("queued", "skipped"), ("queued", "cancelled"),
    ("posting", "posted"), ("posting", "failed"), ("posting", "queued"),
    ("failed", "queued"), ("failed", "cancelled"),
}
# how to bring a new draft to each status through legal moves
PATH_TO = {
    "draft": [], "queued": ["queued"], "posting": ["queued", "posting"],
    "posted": ["queued", "posting", "posted"], "failed": ["queued", "posting", "failed"],
    "skipped": ["skipped"], "cancelled": ["cancelled"],
}
ALL_PAIRS = [(a, b) for a in STATUSES for b in STATUSES]


@pytest.fixture(scope="module")
def shared_db(pg):
    """One database for the many lifecycle cases: each inserts and inspects only its own decision."""
    database = Database.from_url(pg.fresh_database(), pool_max=2)
    yield database
    database.close()


def make(conn, clock, *, account="acct1", status="draft", source="llm", at=None, text=None, **kw) -> uuid.UUID:
    d = Decision(account_id=account, content=text or f"post {uuid.uuid4().hex[:8]}", generation_source=source,
                 status=status, scheduled_at=at if at is not None else clock.now(), **kw)
    return insert_decision(conn, d, clock.now())


def row(conn, decision_id) -> dict:
    return conn.execute("SELECT * FROM content_metadata WHERE decision_id = %s", (str(decision_id),)).fetchone()


def status_of(conn, decision_id) -> str:
    return row(conn, decision_id)["status"]


def bring_to(conn, decision_id, status, now) -> None:
    for step in PATH_TO[status]:
        transition(conn, decision_id, step, now)


def test_the_code_allows_exactly_the_designed_lifecycle():
    coded = {(a, b) for a, targets in ALLOWED_TRANSITIONS.items() for b in targets}
    assert coded == LEGAL
    assert set(ALLOWED_TRANSITIONS) == set(STATUSES)


@pytest.mark.parametrize("src, dst", sorted(LEGAL))
def test_every_legal_transition_works(shared_db, clock, src, dst):
    with shared_db.connection() as conn:
        d = make(conn, clock)
        bring_to(conn, d, src, clock.now())
        later = clock.advance(60)
        assert transition(conn, d, dst, later, last_error="why") == src
        after = row(conn, d)
    assert after["status"] == dst
    assert after["updated_at"] == later
    assert after["last_error"] == "why"


@pytest.mark.parametrize("src, dst", [p for p in ALL_PAIRS if p not in LEGAL])
def test_every_illegal_transition_is_refused_and_changes_nothing(shared_db, clock, src, dst):
    with shared_db.connection() as conn:
        d = make(conn, clock)
        bring_to(conn, d, src, clock.now())
        before = row(conn, d)
        with pytest.raises(IllegalTransition, match=rf"{src} -> {dst}"):
            transition(conn, d, dst, clock.advance(60), last_error="must not be written")
        assert row(conn, d) == before


def test_unknown_status_and_unknown_decision(db, clock):
    with db.connection() as conn:
        d = make(conn, clock)
        with pytest.raises(IllegalTransition, match=r"unknown status 'published' \(expected one of draft, queued"):
            transition(conn, d, "published", clock.now())
        missing = uuid.uuid4()
        with pytest.raises(LookupError, match=str(missing)):
            transition(conn, missing, "queued", clock.now())
        with pytest.raises(ValueError, match=r"cannot set column\(s\) \['content'\]"):
            transition(conn, d, "queued", clock.now(), content="rewritten")
        assert status_of(conn, d) == "draft"


def test_expected_narrows_the_source_states(db, clock):
    with db.connection() as conn:
        d = make(conn, clock)
        bring_to(conn, d, "failed", clock.now())
        # failed -> queued is legal in general, but this step only takes decisions from posting
        with pytest.raises(IllegalTransition, match=r"failed -> queued .*only moves decisions from posting"):
            transition(conn, d, "queued", clock.now(), expected="posting")
        assert status_of(conn, d) == "failed"
        assert transition(conn, d, "queued", clock.now(), expected=["failed"]) == "failed"


@pytest.mark.parametrize("sql, constraint", [
    ("UPDATE content_metadata SET status = 'published'", "content_metadata_status_check"),
    ("UPDATE content_metadata SET generation_source = 'random'", "content_metadata_source_check"),
    ("UPDATE content_metadata SET decision_type = 'reply', target_tweet_id = NULL", "content_metadata_reply_target"),
    ("UPDATE content_metadata SET decision_type = 'story'", "content_metadata_type_check"),
])
def test_check_constraints_reject_raw_sql(db, clock, sql, constraint):
    with db.connection() as conn:
        d = make(conn, clock)
    with pytest.raises(psycopg.errors.CheckViolation, match=constraint):
        with db.connection() as conn:
            conn.execute(sql)
    with db.connection() as conn:
        assert status_of(conn, d) == "draft"


@pytest.mark.parametrize("kw, error, message", [
    ({"status": "posting"}, IllegalTransition, r"starts as draft or queued, not 'posting'"),
    ({"status": "queued", "at": None}, ValueError, r"queued without scheduled_at"),
    ({"decision_type": "reply"}, ValueError, r"reply decision .* has no target_tweet_id"),
])
def test_insert_decision_refuses_bad_decisions(db, clock, kw, error, message):
    d = Decision(account_id="acct1", content="x", generation_source="llm",
                 status=kw.get("status", "draft"), decision_type=kw.get("decision_type", "post"),
                 scheduled_at=kw.get("at", clock.now()))
    with db.connection() as conn:
        with pytest.raises(error, match=message):
            insert_decision(conn, d, clock.now())
        assert conn.execute("SELECT count(*) AS n FROM content_metadata").fetchone()["n"] == 0


def test_insert_decision_stores_the_fields(db, clock):
    d = Decision(account_id="acct1", content="  Hello   World ", generation_source="template", status="queued",
                 scheduled_at=clock.now(), features={"len": 11}, experiment_arms={"exp1": "treatment"},
                 embedding=[0.5, 0.25], decision_type="reply", target_tweet_id="123")
    with db.connection() as conn:
        insert_decision(conn, d, clock.now())
        r = row(conn, d.decision_id)
    assert r["content_hash"] == content_hash("hello world") == content_hash("HELLO WORLD")
    assert r["features"] == {"len": 11} and r["experiment_arms"] == {"exp1": "treatment"}
    assert r["embedding"] == [0.5, 0.25] and r["target_tweet_id"] == "123"
    assert r["created_at"] == r["updated_at"] == clock.now() and r["attempts"] == 0


def test_ready_decisions_follow_the_injected_clock_per_account_oldest_first(db, clock):
    t0 = clock.now()
    with db.connection() as conn:
        late = make(conn, clock, status="queued", at=t0 - timedelta(minutes=5))
        early = make(conn, clock, status="queued", at=t0 - timedelta(hours=2))
        exactly_now = make(conn, clock, status="queued", at=t0)
        future = make(conn, clock, status="queued", at=t0 + timedelta(hours=1))
        make(conn, clock, status="queued", account="acct2", at=t0 - timedelta(hours=3))
        make(conn, clock, status="draft", at=t0 - timedelta(hours=3))
        backing_off = make(conn, clock, status="queued", at=t0 - timedelta(hours=4))
        conn.execute("UPDATE content_metadata SET next_attempt_at = %s WHERE decision_id = %s",
                     (t0 + timedelta(minutes=30), str(backing_off)))

        assert [r["decision_id"] for r in ready_decisions(conn, "acct1", t0)] == [early, late, exactly_now]
        assert [r["decision_id"] for r in ready_decisions(conn, "acct1", t0, limit=1)] == [early]
        clock.advance(timedelta(hours=1))
        assert [r["decision_id"] for r in ready_decisions(conn, "acct1", clock.now())] == [
            backing_off, early, late, exactly_now, future]
        assert len(ready_decisions(conn, "acct2", clock.now())) == 1
        assert ready_decisions(conn, "nobody", clock.now()) == []


def test_an_open_claim_is_skipped_by_another_connection(db, clock):
    with db.connection() as setup:
        ids = [make(setup, clock, status="queued", at=clock.now() - timedelta(minutes=i)) for i in range(3)]
    sources = postable_sources("sandbox")
    with db.connection() as a, db.connection() as b:
        first = claim_for_posting(a, "acct1", clock.now(), "worker-a", sources)  # not committed yet
        second = claim_for_posting(b, "acct1", clock.now(), "worker-b", sources)
        assert [r["decision_id"] for r in first] == [ids[2]]  # oldest first
        assert [r["decision_id"] for r in second] == [ids[1]]
        a.rollback()  # a crash before commit leaves the decision queued, claimable again
        b.commit()
    with db.connection() as conn:
        assert status_of(conn, ids[2]) == "queued" and status_of(conn, ids[1]) == "posting"
        again = claim_for_posting(conn, "acct1", clock.now(), "worker-c", sources, limit=5)
        assert {r["decision_id"] for r in again} == {ids[0], ids[2]}


def test_concurrent_workers_claim_each_decision_exactly_once(db, clock):
    n_decisions, n_workers = 200, 4
    t0 = clock.now()
    with db.connection() as conn:
        ids = {make(conn, clock, status="queued", at=t0 - timedelta(seconds=i)) for i in range(n_decisions)}
        make(conn, clock, status="queued", at=t0 + timedelta(hours=1))  # not due: must stay queued
    sources = postable_sources("sandbox")
    claims: dict[str, list[uuid.UUID]] = {f"w{i}": [] for i in range(n_workers)}
    errors: list[BaseException] = []
    start = threading.Barrier(n_workers)

    def worker(name: str, batch: int) -> None:
        try:
            start.wait()
            while True:
                with db.connection() as conn:  # each worker its own pooled connection and transactions
                    got = claim_for_posting(conn, "acct1", t0, name, sources, limit=batch)
                if not got:
                    return
                claims[name].extend(r["decision_id"] for r in got)
        except BaseException as exc:  # surfaced in the main thread
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(name, 1 + i % 3)) for i, name in enumerate(claims)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not errors
    everything = [d for got in claims.values() for d in got]
    assert len(everything) == len(set(everything)) == n_decisions
    assert set(everything) == ids
    with db.connection() as conn:
        rows = conn.execute("SELECT decision_id, status, claimed_by, attempts FROM content_metadata "
                            "WHERE status <> 'queued'").fetchall()
        assert queue_depth(conn, "acct1")["queued"] == 1
    assert len(rows) == n_decisions
    for r in rows:
        assert r["status"] == "posting" and r["attempts"] == 1
        assert r["decision_id"] in claims[r["claimed_by"]]


def test_postable_sources_per_mode_and_template_never_goes_live(db, clock):
    assert postable_sources("disabled") == frozenset()
    assert postable_sources("sandbox") == {"llm", "template", "synthetic"}
    assert postable_sources("live") == {"llm"}
    with pytest.raises(ValueError, match=r"unknown posting mode 'prod'"):
        postable_sources("prod")
    with db.connection() as conn:
        llm = make(conn, clock, status="queued", source="llm")
        template = make(conn, clock, status="queued", source="template", at=clock.now() - timedelta(hours=1))
        synthetic = make(conn, clock, status="queued", source="synthetic", at=clock.now() - timedelta(hours=2))
        assert claim_for_posting(conn, "acct1", clock.now(), "w", postable_sources("disabled"), limit=10) == []
        live = claim_for_posting(conn, "acct1", clock.now(), "w", postable_sources("live"), limit=10)
        assert [r["decision_id"] for r in live] == [llm]
        assert status_of(conn, template) == status_of(conn, synthetic) == "queued"
        sandbox = claim_for_posting(conn, "acct1", clock.now(), "w", postable_sources("sandbox"), limit=10)
        assert [r["decision_id"] for r in sandbox] == [synthetic, template]


def test_record_posted_saves_the_tweet_and_moves_posting_to_posted(db, clock):
    with db.connection() as conn:
        d = make(conn, clock, status="queued")
        transition(conn, d, "posting", clock.now(), last_error="earlier failure")
        posted_at = clock.advance(5)
        record_posted(conn, d, "acct1", "1790000000000000001", posted_at, "sandbox", posted_at)
    with db.connection() as conn:
        r = row(conn, d)
        p = conn.execute("SELECT * FROM posted_decisions WHERE decision_id = %s", (str(d),)).fetchone()
        assert stuck_in_posting(conn, "acct1") == []
    assert r["status"] == "posted" and r["last_error"] is None
    assert p["tweet_id"] == "1790000000000000001" and p["world"] == "sandbox" and p["posted_at"] == posted_at
    assert p["reconciled"] is False


def test_record_posted_on_a_decision_not_posting_writes_nothing(db, clock):
    with db.connection() as conn:
        d = make(conn, clock, status="queued")
        with pytest.raises(IllegalTransition, match=r"queued -> posted"):
            record_posted(conn, d, "acct1", "555", clock.now(), "sandbox", clock.now())
        conn.commit()  # even a caller that swallows the error and commits leaves no stray row
        assert conn.execute("SELECT count(*) AS n FROM posted_decisions").fetchone()["n"] == 0
        assert status_of(conn, d) == "queued"


def test_record_posted_refuses_another_accounts_decision(db, clock):
    with db.connection() as conn:
        d = make(conn, clock, status="queued")
        transition(conn, d, "posting", clock.now())
        with pytest.raises(ValueError, match=r"belongs to account 'acct1', not 'acct2'"):
            record_posted(conn, d, "acct2", "777", clock.now(), "sandbox", clock.now())
        conn.commit()
        assert conn.execute("SELECT count(*) AS n FROM posted_decisions").fetchone()["n"] == 0
        assert status_of(conn, d) == "posting"


def test_tweet_id_is_unique(db, clock):
    with db.connection() as conn:
        a, b = make(conn, clock, status="queued"), make(conn, clock, status="queued")
        for d in (a, b):
            transition(conn, d, "posting", clock.now())
        record_posted(conn, a, "acct1", "42", clock.now(), "sandbox", clock.now())
    with pytest.raises(psycopg.errors.UniqueViolation, match="tweet_id"):
        with db.connection() as conn:
            record_posted(conn, b, "acct1", "42", clock.now(), "sandbox", clock.now())
    with db.connection() as conn:  # the failed save rolled back whole: b is still posting, found by reconciliation
        assert status_of(conn, b) == "posting"
        assert [r["decision_id"] for r in stuck_in_posting(conn, "acct1")] == [b]


def test_ensure_account_is_idempotent_and_keeps_its_start(db, clock):
    with db.connection() as conn:
        first = ensure_account(conn, "acct1", clock.now(), timezone="Europe/Berlin", handle="me")
        again = ensure_account(conn, "acct1", clock.advance(timedelta(days=3)), timezone="UTC")
    assert first == again
    assert again["created_at"] == clock.now() - timedelta(days=3) and again["timezone"] == "Europe/Berlin"


def test_queue_depth_counts_every_status(db, clock):
    with db.connection() as conn:
        for status in ("draft", "draft", "queued"):
            make(conn, clock, status=status)
        make(conn, clock, status="queued", account="acct2")
        depth = queue_depth(conn, "acct1")
    assert depth == {"draft": 2, "queued": 1, "posting": 0, "posted": 0, "failed": 0, "skipped": 0, "cancelled": 0}


def test_the_days_plan_counts_posts_and_replies_in_one_read_as_one_count_each_would(db, clock):
    with db.connection() as conn:
        ensure_account(conn, "acct1", clock.now())
        for status in ("queued", "posted", "cancelled", "draft"):
            bring_to(conn, make(conn, clock), status, clock.now())
        bring_to(conn, make(conn, clock, decision_type="reply", target_tweet_id="77"), "queued", clock.now())
        make(conn, clock, account="acct2")
        since = clock.now() - timedelta(hours=24)
        together = count_active_created_since_by_type(conn, "acct1", ("post", "reply", "thread"), since)
        assert together == {t: count_active_created_since(conn, "acct1", t, since) for t in ("post", "reply", "thread")}
        assert together["reply"] == 1 and together["thread"] == 0 and together["post"] >= 2
        assert count_active_created_since_by_type(conn, "acct1", ("post",), clock.now()) == {"post": 0}
