"""The OpenAI spend ledger (table ``llm_ledger``): reservations, settled costs, refunds and the
daily budget's circuit, per account. The client in ``xbotlib.clients.llm`` decides; this module
reads and writes.

A call's row goes ``reserved`` -> ``settled`` | ``refunded`` | ``quota_exhausted``. Every write
runs in the caller's transaction after ``lock_day`` for (account, budget day), so reservations and
settlements of one day are serialised across processes.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime


@dataclass(frozen=True)
class LedgerDay:
    """One account's ledger for one budget day."""
    calls: dict[str, int] = field(default_factory=dict)  # status -> number of calls
    reserved_usd: float = 0.0        # open reservations (status 'reserved')
    settled_usd: float = 0.0         # billed cost of settled calls
    rate_limit_refunds: int = 0      # refunded calls whose error was a rate limit

    @property
    def circuit_open(self) -> bool:
        """An insufficient_quota answer closed OpenAI for the rest of the day."""
        return "quota_exhausted" in self.calls

    @property
    def total_calls(self) -> int:
        return sum(self.calls.values())


def spent_today(conn, account_id: str, day: date) -> float:
    """Σ reserved_usd of open reservations + Σ cost_usd of settled calls, for (account, day)."""
    row = conn.execute(
        "SELECT COALESCE(SUM(CASE WHEN status = 'reserved' THEN reserved_usd "
        "                         WHEN status = 'settled' THEN cost_usd ELSE 0 END), 0) AS spent "
        "FROM llm_ledger WHERE account_id = %s AND budget_day = %s", (account_id, day)).fetchone()
    return float(row["spent"])


def lock_day(conn, account_id: str, day: date) -> None:
    """Hold the (account, day) ledger lock until the caller's transaction ends."""
    # one lock per (account, day): reservations and settlements of that day are serialised
    conn.execute("SELECT pg_advisory_xact_lock(hashtext(%s), %s)", (f"xbot.llm_ledger:{account_id}", day.toordinal()))


def quota_exhausted_call(conn, account_id: str, day: date) -> dict | None:
    """The row (call_id, error) that opened the day's circuit on insufficient_quota, or None."""
    return conn.execute("SELECT call_id, error FROM llm_ledger WHERE account_id = %s AND budget_day = %s "
                        "AND status = 'quota_exhausted' LIMIT 1", (account_id, day)).fetchone()


def ledger_day(conn, account_id: str, day: date) -> LedgerDay:
    """Calls per status, open reservations, settled cost and rate-limit refunds of (account, day)."""
    rows = conn.execute("SELECT status, COUNT(*) AS n, COALESCE(SUM(reserved_usd), 0) AS reserved, "
                        "COALESCE(SUM(cost_usd), 0) AS cost, "
                        "COUNT(*) FILTER (WHERE status = 'refunded' AND error ILIKE %s) AS rate_limited "
                        "FROM llm_ledger WHERE account_id = %s AND budget_day = %s GROUP BY status",
                        ("%rate_limit%", account_id, day)).fetchall()
    return ledger_of(rows)


def ledger_of(rows: list[dict]) -> LedgerDay:
    """``ledger_day`` of its grouped rows (status, n, reserved, cost, rate_limited; read in one statement with
    other figures by ``read_models.metrics_reads``)."""
    by = {r["status"]: r for r in rows}
    return LedgerDay(calls={s: int(r["n"]) for s, r in by.items()},
                     reserved_usd=float(by["reserved"]["reserved"]) if "reserved" in by else 0.0,
                     settled_usd=float(by["settled"]["cost"]) if "settled" in by else 0.0,
                     rate_limit_refunds=sum(int(r["rate_limited"]) for r in rows))


def reserve_call(conn, call_id: str, account_id: str, day: date, model: str, purpose: str, usd: float,
                 at: datetime) -> None:
    """A new row with status 'reserved' holding ``usd`` against the day's budget."""
    conn.execute("INSERT INTO llm_ledger (call_id, account_id, budget_day, model, purpose, status, "
                 "reserved_usd, created_at) VALUES (%s, %s, %s, %s, %s, 'reserved', %s, %s)",
                 (call_id, account_id, day, model, purpose, usd, at))


def reserved_usd(conn, call_id: str) -> float:
    """What the call reserved."""
    row = conn.execute("SELECT reserved_usd FROM llm_ledger WHERE call_id = %s", (call_id,)).fetchone()
    return float(row["reserved_usd"])


def settle_call(conn, call_id: str, cost_usd: float, prompt_tokens: int | None, completion_tokens: int | None,
                at: datetime) -> None:
    """The call succeeded: it now counts ``cost_usd``; the real token counts are kept (None = not reported)."""
    conn.execute("UPDATE llm_ledger SET status = 'settled', cost_usd = %s, prompt_tokens = %s, "
                 "completion_tokens = %s, settled_at = %s WHERE call_id = %s",
                 (cost_usd, prompt_tokens, completion_tokens, at, call_id))


def refund_call(conn, call_id: str, error: str, at: datetime) -> float | None:
    """An open reservation ends without a bill (cost 0); returns what it had reserved, None when the
    call was not open (a refund never touches a settled row)."""
    row = conn.execute("UPDATE llm_ledger SET status = 'refunded', cost_usd = 0, error = %s, settled_at = %s "
                       "WHERE call_id = %s AND status = 'reserved' RETURNING reserved_usd",
                       (error[:500], at, call_id)).fetchone()
    return float(row["reserved_usd"]) if row else None


def mark_quota_exhausted(conn, call_id: str, error: str, at: datetime) -> float | None:
    """The call's own row becomes the day's circuit marker (cost 0: nothing was billed); returns what
    it had reserved, None when there is no such call."""
    row = conn.execute("UPDATE llm_ledger SET status = 'quota_exhausted', cost_usd = 0, error = %s, "
                       "settled_at = %s WHERE call_id = %s RETURNING reserved_usd",
                       (error[:500], at, call_id)).fetchone()
    return float(row["reserved_usd"]) if row else None
