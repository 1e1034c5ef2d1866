"""The account a figure is about, the time its figures are read at ("now") and the UTC day it counts in."""
from __future__ import annotations

from datetime import datetime, timezone

from xbotlib.store import queue, read_models
from xbotlib.store.worlds import check_world, latest_event_at


def account(conn, account_id: str) -> dict | None:
    """``account_id`` and ``created_at`` (the start of its exploration schedule) of a stored account, or None."""
    created = queue.account_created_at(conn, account_id)
    return None if created is None else {"account_id": account_id, "created_at": created}


def default_account(conn, preferred: str) -> str:
    """The account a figure is about when none is asked for: ``preferred`` (XBOT_ACCOUNT_ID) when it is
    stored, else the account with the most decisions (after ``xbot demo`` that is demo-1), else ``preferred``."""
    if read_models.account_if_stored(conn, preferred):  # one probe; the count below reads every decision
        return preferred
    counts = queue.decisions_per_account(conn)
    if preferred in counts or not counts:
        return preferred
    return max(sorted(counts), key=lambda a: counts[a])


def day_start(now: datetime) -> datetime:
    """Midnight UTC of ``now``'s day: 'today' in these figures is a UTC day, like the LLM budget day."""
    return now.astimezone(timezone.utc).replace(hour=0, minute=0, second=0, microsecond=0)


def world_now(conn, account_id: str, world: str, wall_now: datetime) -> datetime:
    """'Now' for figures of ``world``: the wall clock (``wall_now``) for the live world; for a simulated
    world its own clock, the account's latest event there (a demo that ran in simulated January is read
    at its end, not at today's date), or ``wall_now`` when it has none yet."""
    if check_world(world) == "live":
        return wall_now
    return now_of(world, latest_event_at(conn, account_id, world), wall_now)


def now_of(world: str, latest: datetime | None, wall_now: datetime) -> datetime:
    """``world_now`` from the world's latest event ``latest`` (however it was read: one statement may read it with
    the figures), in UTC; ``wall_now`` for the live world or a world with no event yet."""
    return latest.astimezone(timezone.utc) if check_world(world) != "live" and latest is not None else wall_now


def account_at(conn, account_id: str, world: str, wall_now: datetime) -> tuple[dict | None, datetime]:
    """``account(conn, account_id)`` and ``world_now(conn, account_id, world, wall_now)`` in one statement (the
    admin API asks both on every route); (None, ``wall_now``) when the account is not stored."""
    simulated = check_world(world) != "live"
    row = read_models.account_with_latest_event(conn, account_id, world if simulated else None)
    if row is None:
        return None, wall_now
    return {"account_id": account_id, "created_at": row["created_at"]}, now_of(world, row["latest"], wall_now)
