"""Gate rejections (table ``gate_rejections``): candidates the planner's gates refused
(``xbotlib.core.gates``). They never became decisions; the metrics and the growth review count them."""
from __future__ import annotations

from datetime import datetime

import psycopg

from xbotlib.store.queue import content_hash


def record_gate_rejection(conn: psycopg.Connection, account_id: str, gate: str, reason: str, text: str,
                          now: datetime) -> None:
    """A candidate a gate refused (table ``gate_rejections``): it never became a decision."""
    conn.execute("""INSERT INTO gate_rejections (account_id, gate, reason, content_hash, rejected_at)
                    VALUES (%s, %s, %s, %s, %s)""",
                 (account_id, gate, reason, content_hash(text), now))


def gate_rejection_counts(conn: psycopg.Connection, account_id: str, since: datetime, until: datetime) -> dict[str, int]:
    """Candidates each gate refused in (since, until], by gate name."""
    rows = conn.execute(
        """SELECT gate, count(*) AS n FROM gate_rejections
            WHERE account_id = %s AND rejected_at > %s AND rejected_at <= %s GROUP BY gate ORDER BY gate LIMIT 100""",
        (account_id, since, until)).fetchall()
    return {r["gate"]: r["n"] for r in rows}


def gate_rejections_by_reason(conn: psycopg.Connection, account_id: str) -> list[dict]:
    """Every rejection of the account counted by gate and reason: gate, reason, rejections, latest
    (rejected_at), most rejections first."""
    return conn.execute(
        """SELECT gate, reason, count(*) AS rejections, max(rejected_at) AS latest
             FROM gate_rejections WHERE account_id = %s GROUP BY gate, reason
            ORDER BY rejections DESC, gate, reason""", (account_id,)).fetchall()
