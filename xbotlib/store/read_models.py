"""Cheap reads behind the admin API's figures: each answers from an index range that does not grow with
the account's history (issue #19: "never a scan that grows with history").

- ``growth_model_fingerprint``: what the growth model of ``views.learning`` was fitted from, as one
  number, so an unchanged model is served from memory instead of being refitted per request;
- ``open_queue_depth``: decisions still in the queue by status (``idx_cm_status``; terminal rows, a
  whole history of posts, are not read);
- ``account_if_stored``: one primary-key probe, so the default account needs no count of every decision.
"""
from __future__ import annotations

from datetime import datetime, timedelta
from typing import Sequence

from xbotlib.store.outcomes import MODEL_WINDOW_DAYS
from xbotlib.store.worlds import check_world


def growth_model_fingerprint(conn, account_id: str, world: str, now: datetime) -> tuple:
    """A fingerprint of every input of ``outcomes.post_outcomes`` for these arguments: equal fingerprints,
    equal inputs (up to a 64-bit hash collision).

    It covers the posts of the model's window with a final outcome, each one's changing values (visits,
    follows, posted_at, outcome_id) through an order-free sum of 64-bit hashes, and the newest follower snapshot row of the world (a post's follower count is the
    snapshot before it; snapshots are only ever inserted, and any insert, whatever its taken_at, raises
    the newest ``snapshot_id``; ``idx_snapshots_account_seq`` of migration 0010 reads it).
    Reads the window's posts by index, not the follower-snapshot probes nor the fit."""
    simulated = check_world(world) != "live"
    row = conn.execute(
        # driven by the account's posts in the window (idx_posted_account_time), then one probe of
        # outcomes_decision_pass_key each (OFFSET 0 keeps the planner from turning the probes into a hash join
        # over every pass-2 outcome of the account): bounded by the window, whatever the history. A post's row
        # carries its decision's account (the post job writes both), so pd.account_id selects post_outcomes'
        # rows. content_metadata is not read: a decision's hook, topic, hour and novelty are fixed when it is
        # planned, before it is posted, so the posts and outcomes of the window determine them.
        """SELECT count(*) AS n,
                  coalesce(sum(hashtextextended(concat_ws('|', o.outcome_id, o.profile_visits, o.follows,
                                                          pd.decision_id, pd.posted_at, pd.tweet_id), 0)::numeric),
                           0) AS h,
                  (SELECT max(fs.snapshot_id) FROM follower_snapshots fs
                    WHERE fs.account_id = %(acc)s AND fs.simulated = %(sim)s) AS last_snapshot
             FROM posted_decisions pd
             CROSS JOIN LATERAL (SELECT o.outcome_id, o.profile_visits, o.follows FROM outcomes o
                                  WHERE o.decision_id = pd.decision_id AND o.collected_pass = 2
                                    AND o.account_id = %(acc)s AND o.simulated = %(sim)s OFFSET 0) o
            WHERE pd.account_id = %(acc)s AND pd.posted_at > %(since)s""",
        {"acc": account_id, "sim": simulated, "since": now - timedelta(days=MODEL_WINDOW_DAYS)}).fetchone()
    return int(row["n"]), str(row["h"]), row["last_snapshot"]


def open_queue_depth(conn, account_id: str, statuses: Sequence[str]) -> dict[str, int]:
    """Decisions of the account in each of ``statuses`` (0 for none), counted on ``idx_cm_status``."""
    rows = conn.execute(
        """SELECT status, count(*) AS n FROM content_metadata
            WHERE account_id = %s AND status = ANY(%s) GROUP BY status""", (account_id, list(statuses))).fetchall()
    depth = {s: 0 for s in statuses}
    depth.update({r["status"]: int(r["n"]) for r in rows})
    return depth


def account_if_stored(conn, account_id: str) -> bool:
    """Whether ``accounts`` has a row for ``account_id``."""
    return conn.execute("SELECT 1 FROM accounts WHERE account_id = %s", (account_id,)).fetchone() is not None
