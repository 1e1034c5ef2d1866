"""The poster's pre-flight (``queue.posting_preflight``) for several accounts in one statement.

A simulated daemon runs the post job for every account at each 5-minute turn, and nearly every such tick ends
after its pre-flight (nothing due). ``jobs.post.tick_many`` reads the pre-flights of all the turn's accounts here at
once: one statement a turn instead of one per account (10 accounts: 288 statements a simulated day instead of
2,880). Each account's row is what ``queue.posting_preflight`` returns for it alone: the same three reads, each on
that account's rows only (a test compares the two on the same data)."""
from __future__ import annotations

from datetime import datetime
from typing import Iterable


def posting_preflights(conn, account_ids: list[str], endpoint: str, now: datetime, sources: Iterable[str]) -> list[dict]:
    """``queue.posting_preflight(conn, account_id, endpoint, now, sources)`` for each of ``account_ids`` (in that
    order): ``deferred_until``, ``stuck``, ``ready`` per account."""
    if not account_ids:
        return []
    rows = conn.execute(
        """SELECT (SELECT reset_at FROM x_rate_limits
                    WHERE account_id = a.acc AND endpoint = %(endpoint)s AND reset_at > %(now)s) AS deferred_until,
                  (SELECT count(*) FROM content_metadata WHERE account_id = a.acc AND status = 'posting') AS stuck,
                  (SELECT count(*) FROM content_metadata
                    WHERE account_id = a.acc AND status = 'queued' AND scheduled_at <= %(now)s
                      AND (next_attempt_at IS NULL OR next_attempt_at <= %(now)s)
                      AND generation_source = ANY(%(sources)s)) AS ready
             FROM unnest(%(accs)s::text[]) WITH ORDINALITY AS a(acc, ord)
            ORDER BY a.ord""",
        {"accs": list(account_ids), "endpoint": endpoint, "now": now, "sources": list(sources)}).fetchall()
    return [{"deferred_until": r["deferred_until"], "stuck": int(r["stuck"]), "ready": int(r["ready"])} for r in rows]
