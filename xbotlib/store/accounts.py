"""Accounts in the database (table ``accounts``).

Minimal version from the workers branch (issue #18 item 2): the job queue schedules every account
listed here. The profiles work (issue #18 item 1) writes the full module; on merge, theirs is kept.
"""
from __future__ import annotations


def list_account_ids(conn) -> list[str]:
    """Every account's id, sorted."""
    return [r["account_id"] for r in conn.execute("SELECT account_id FROM accounts ORDER BY 1").fetchall()]
