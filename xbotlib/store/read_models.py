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

    It covers the rows in the model's window (the same joins and filters), each row's fitted values
    (hook, topic, hour, novelty, visits, follows, posted_at, outcome_id) through an order-free sum of
    64-bit hashes, and the newest follower snapshot of the world (a post's follower count is the snapshot
    before it; snapshots are appended in time order, so an unchanged newest one means unchanged counts).
    Reads the window's ~6 posts a day by index, not the follower-snapshot probes nor the fit."""
    simulated = check_world(world) != "live"
    row = conn.execute(
        """SELECT count(*) AS n,
                  coalesce(sum(hashtextextended(concat_ws('|', o.outcome_id, o.profile_visits, o.follows,
                                                          cm.hook_pattern, cm.topic, cm.timing_arm, cm.novelty,
                                                          pd.posted_at, pd.tweet_id), 0)::numeric), 0) AS h,
                  (SELECT max(fs.taken_at) FROM follower_snapshots fs
                    WHERE fs.account_id = %(acc)s AND fs.simulated = %(sim)s) AS last_snapshot
             FROM outcomes o
             JOIN content_metadata cm ON cm.decision_id = o.decision_id
             JOIN posted_decisions pd ON pd.decision_id = o.decision_id
            WHERE o.account_id = %(acc)s AND o.collected_pass = 2 AND o.simulated = %(sim)s
              AND cm.decision_type = 'post' AND cm.timing_arm IS NOT NULL AND pd.posted_at > %(since)s""",
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
