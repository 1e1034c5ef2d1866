"""What the plan tick reads, read cheaply and still the same: the recent embeddings (a binary read that
keeps the text read's values) and the follower count before each post (one index probe per outcome)."""
from __future__ import annotations

from datetime import timedelta

import numpy as np

from xbotlib.store.queue import Decision, active_embeddings_since, insert_decision
from xbotlib.store.outcomes import record_follower_snapshot


def test_recent_embeddings_have_the_values_a_text_read_gives(db, clock):
    """``embedding`` is real[]: each float4 must come back as its shortest decimal read as a float8 (what the
    text read gave, and what novelty was measured against), not widened exactly (0.1 -> 0.10000000149)."""
    rng = np.random.default_rng(7)
    vectors = [[0.1, 1 / 3, -2 / 7, 1e-8], list(rng.normal(size=4)), [0.0, -0.0, 123456.789, 2.0 ** -20]]
    with db.connection() as conn:
        for i, v in enumerate(vectors):
            insert_decision(conn, Decision(account_id="acct1", content=f"post number {i}", generation_source="llm",
                                           status="queued", scheduled_at=clock.now(), embedding=v), clock.now())
        got = active_embeddings_since(conn, "acct1", clock.now() - timedelta(days=1))
        text = [r["embedding"] for r in conn.execute(
            "SELECT embedding FROM content_metadata WHERE account_id = 'acct1'").fetchall()]
    # the text read's values, written out independently: the float4's shortest repr parsed as a float
    want = sorted([float(str(np.float32(x))) for x in v] for v in vectors)
    assert sorted(got) == sorted(text) == want
    assert all(type(x) is float for row in got for x in row)
    assert [0.1, 1 / 3 + 0.0, -2 / 7, 1e-8] != [float(np.float32(x)) for x in vectors[0]]  # widening would differ
    assert float(str(np.float32(0.1))) == 0.1 in [row[0] for row in got]


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
