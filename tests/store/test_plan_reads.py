"""What the plan tick reads, read cheaply: the follower count before each post is one index probe per outcome,
and each recent embedding is read once per context."""
from __future__ import annotations

from datetime import timedelta

import numpy as np

from xbotlib.jobs.context import JobContext
from xbotlib.jobs.plan import _recent_embeddings
from xbotlib.store.outcomes import record_follower_snapshot
from xbotlib.store.queue import Decision, active_embeddings_since, insert_decision, transition


def test_the_follower_count_before_a_post_is_one_index_probe(db, clock):
    """post_outcomes asks, per final outcome, for the newest snapshot of (account, simulated) at or before
    the post: by idx_snapshots_account_simulated_time (migration 0014) that is a backward probe in index
    order, not a fetch-and-sort of every earlier snapshot (which grew with history)."""
    with db.connection() as conn:
        for h in range(48):
            record_follower_snapshot(conn, "acct1", clock.now() + timedelta(hours=h), 100 + h, None, None, True)
        plan = "\n".join(r["QUERY PLAN"] for r in conn.execute(
            """EXPLAIN SELECT fs.followers_count FROM follower_snapshots fs
                WHERE fs.account_id = %s AND fs.simulated = true AND fs.taken_at <= %s
                ORDER BY fs.taken_at DESC LIMIT 1""", ("acct1", clock.now() + timedelta(hours=30))).fetchall())
    assert "idx_snapshots_account_simulated_time" in plan and "Sort" not in plan, plan


def test_recent_embeddings_come_from_the_context_once_read_and_follow_the_window(settings, db, clock):
    """The plan job reads each decision's embedding once: later ticks send only new decisions' arrays, and
    the result is the same array a fresh read gives (same rows, same order, same values), through a new
    decision, a cancelled one and the 30-day window moving past the oldest."""
    rng = np.random.default_rng(5)
    ctx = JobContext(settings=settings, db=db, clock=clock, account_id="acct1", world="sandbox")

    def add(text: str, status: str = "queued") -> str:
        with db.connection() as conn:
            return str(insert_decision(conn, Decision(account_id="acct1", content=text, generation_source="llm",
                                                      status=status, scheduled_at=clock.now(),
                                                      embedding=[float(v) for v in rng.normal(size=8)]), clock.now()))

    def read(context) -> np.ndarray | None:
        with db.connection() as conn:
            return _recent_embeddings(context, conn, clock.now())

    def fresh() -> np.ndarray | None:
        return read(JobContext(settings=settings, db=db, clock=clock, account_id="acct1", world="sandbox"))

    first = add("the first post of the account")
    clock.advance(timedelta(days=10))
    second = add("a second post, ten days later")
    assert read(ctx).shape == (2, 8) and set(ctx.recent_embeddings) == {first, second}
    with db.connection() as conn:   # what is known is not sent again
        rows = {i: e for i, e, _ in active_embeddings_since(conn, "acct1", clock.now() - timedelta(days=30),
                                                             known=[first])}
    assert rows[first] is None and np.array_equal(rows[second], ctx.recent_embeddings[second])
    assert np.array_equal(read(ctx), fresh())

    third = add("a third post arrives")                                  # a new decision
    assert np.array_equal(read(ctx), fresh()) and len(ctx.recent_embeddings) == 3
    with db.connection() as conn:                                        # one leaves the active statuses
        transition(conn, second, "cancelled", clock.now())
    got = read(ctx)
    assert np.array_equal(got, fresh()) and set(ctx.recent_embeddings) == {first, third} and len(got) == 2
    clock.advance(timedelta(days=21))                                    # the window moves past the first
    got = read(ctx)
    assert np.array_equal(got, fresh()) and set(ctx.recent_embeddings) == {third} and len(got) == 1
    clock.advance(timedelta(days=31))
    assert read(ctx) is None and fresh() is None and ctx.recent_embeddings == {}


def test_recent_embeddings_are_read_oldest_first_wherever_the_rows_lie(db, clock):
    """The novelty computed against the recent embeddings can differ in its last bit with their order, so they are
    read in creation order, not in the table's: a row updated after a newer one was inserted lies after it, and
    VACUUM (a simulated campaign runs it daily) lets new rows fill freed space anywhere. Read here by a sequential
    scan, the plan that returns rows as they lie."""
    ids = []
    for i in range(4):
        with db.connection() as conn:
            ids.append(str(insert_decision(conn, Decision(account_id="acct1", content=f"post number {i} of four",
                                                          generation_source="llm", status="queued",
                                                          scheduled_at=clock.now(), embedding=[float(i)] * 8),
                                           clock.now())))
        clock.advance(timedelta(hours=1))
    with db.connection() as conn:
        transition(conn, ids[0], "posting", clock.now())   # the oldest's new row version now lies after the others
        conn.execute("SET LOCAL enable_indexscan = off")
        conn.execute("SET LOCAL enable_bitmapscan = off")
        as_they_lie = [r["decision_id"] for r in conn.execute(
            "SELECT decision_id::text AS decision_id FROM content_metadata WHERE account_id = 'acct1'").fetchall()]
        read = [i for i, _, _ in active_embeddings_since(conn, "acct1", clock.now() - timedelta(days=1))]
    assert as_they_lie != ids   # the table's order is not the creation order here
    assert read == ids
