"""The account a figure is about, and the UTC day it counts in."""
from __future__ import annotations

from datetime import datetime, timezone

from xbotlib.store import queue


def account(conn, account_id: str) -> dict | None:
    """``account_id`` and ``created_at`` (the start of its exploration schedule) of a stored account, or None."""
    created = queue.account_created_at(conn, account_id)
    return None if created is None else {"account_id": account_id, "created_at": created}


def day_start(now: datetime) -> datetime:
    """Midnight UTC of ``now``'s day: 'today' in these figures is a UTC day, like the LLM budget day."""
    return now.astimezone(timezone.utc).replace(hour=0, minute=0, second=0, microsecond=0)
