"""X rate limits remembered across processes (table ``x_rate_limits``): when X answers 429, the post
and collect jobs record the reset time so that the next process (a cron tick, another worker) waits
instead of spending its first call on a known refusal."""
from __future__ import annotations

from datetime import datetime


def record_rate_limit(conn, account_id: str, endpoint: str, reset_at: datetime, remaining: int | None = None) -> None:
    """Remember that ``endpoint`` is rate-limited for ``account_id`` until ``reset_at`` (table x_rate_limits)."""
    conn.execute(
        """INSERT INTO x_rate_limits (account_id, endpoint, remaining, reset_at) VALUES (%s, %s, %s, %s)
           ON CONFLICT (account_id, endpoint) DO UPDATE SET remaining = EXCLUDED.remaining, reset_at = EXCLUDED.reset_at""",
        (account_id, endpoint, remaining, reset_at))


def deferred_until(conn, account_id: str, endpoint: str, now: datetime) -> datetime | None:
    """When ``endpoint`` may be called again, or None if it may be called now."""
    row = conn.execute("SELECT reset_at FROM x_rate_limits WHERE account_id = %s AND endpoint = %s",
                       (account_id, endpoint)).fetchone()
    if row is None:
        return None
    reset = row["reset_at"] if isinstance(row, dict) else row[0]
    return reset if reset > now else None


def first_deferral(conn, account_id: str, endpoints: tuple[str, ...], now: datetime) -> tuple[str, datetime] | None:
    """The first of ``endpoints`` (in the order given) that may not be called at ``now``, with its reset time;
    None when all may. One statement for a job that needs several endpoints (``deferred_until`` for each)."""
    return first_deferrals(conn, [account_id], endpoints, now)[0]


def first_deferrals(conn, account_ids: list[str], endpoints: tuple[str, ...], now: datetime
                    ) -> list[tuple[str, datetime] | None]:
    """``first_deferral`` for each of ``account_ids`` (in that order), in one statement: a simulated daemon's collect
    turn asks for all its accounts at once (``jobs.collect.tick_many``)."""
    if not account_ids:
        return []
    if len(account_ids) == 1:   # one account: its own statement, cheaper for PostgreSQL than the join of two unnests
        row = conn.execute(
            """SELECT r.endpoint, r.reset_at FROM unnest(%s::text[]) WITH ORDINALITY AS e(endpoint, ord)
                 JOIN x_rate_limits r ON r.account_id = %s AND r.endpoint = e.endpoint AND r.reset_at > %s
                ORDER BY e.ord LIMIT 1""", (list(endpoints), account_ids[0], now)).fetchone()
        if row is None:
            return [None]
        return [(row["endpoint"], row["reset_at"]) if isinstance(row, dict) else (row[0], row[1])]
    rows = conn.execute(
        """SELECT DISTINCT ON (a.ord) a.ord, r.endpoint, r.reset_at
             FROM unnest(%s::text[]) WITH ORDINALITY AS a(account_id, ord)
             JOIN x_rate_limits r ON r.account_id = a.account_id AND r.reset_at > %s
             JOIN unnest(%s::text[]) WITH ORDINALITY AS e(endpoint, ord) ON e.endpoint = r.endpoint
            ORDER BY a.ord, e.ord""", (list(account_ids), now, list(endpoints))).fetchall()
    found: dict[int, tuple[str, datetime]] = {}
    for r in rows:
        ord_, endpoint, reset = (r["ord"], r["endpoint"], r["reset_at"]) if isinstance(r, dict) else r
        found[int(ord_)] = (endpoint, reset)
    return [found.get(i) for i in range(1, len(account_ids) + 1)]
