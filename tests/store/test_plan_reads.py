"""What the plan tick reads, read cheaply: the follower count before each post is one index probe per outcome."""
from __future__ import annotations

from datetime import timedelta

from xbotlib.store.outcomes import record_follower_snapshot


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
