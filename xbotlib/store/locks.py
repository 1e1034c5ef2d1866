"""PostgreSQL advisory locks: what may not happen twice at the same time.

- a worker's post in flight: a session lock on the decision (``jobs.post.inflight_key``), held from
  the claim until the outcome is saved, so reconciliation never settles a post another worker is
  still sending (it tries the same key as a transaction lock);
- the per-account posting caps: a transaction lock on a name, so one worker at a time counts and claims;
- one in-process daemon per account (``xbot job NAME`` looping, and the simulated-clock paths): a session lock
  (``jobs.daemon.daemon_lock_key``) for the daemon's lifetime. It dies with its connection, so a PostgreSQL
  restart silently frees it: the real-time path (``xbot run``/``xbot worker``) does not use it, its per-account
  locks are the job queue's rows (``jobs.worker.tick_lock``), which a restart keeps;
- one predictor writer per (account, kind): a transaction lock on a name (``store.models.save_version``).

Session locks outlive transactions and die with the connection; transaction locks end with the
caller's transaction. Keys are signed 64-bit integers; names are hashed by PostgreSQL (``hashtext``).
"""
from __future__ import annotations


def hold_session_lock(conn, key: int) -> None:
    """Wait for and take the session lock ``key`` (released by ``release_session_lock`` or disconnect)."""
    conn.execute("SELECT pg_advisory_lock(%s)", (key,))


def try_session_lock(conn, key: int) -> bool:
    """Take the session lock ``key`` if nobody holds it; True when taken."""
    return bool(conn.execute("SELECT pg_try_advisory_lock(%s) AS ok", (key,)).fetchone()["ok"])


def release_session_lock(conn, key: int) -> None:
    """Give back a session lock taken with ``hold_session_lock`` or ``try_session_lock``."""
    conn.execute("SELECT pg_advisory_unlock(%s)", (key,))


def try_transaction_lock(conn, key: int) -> bool:
    """Take the lock ``key`` until the current transaction ends, if nobody holds it; True when taken."""
    return bool(conn.execute("SELECT pg_try_advisory_xact_lock(%s) AS ok", (key,)).fetchone()["ok"])


def lock_name_for_transaction(conn, name: str) -> None:
    """Wait for and take the lock named ``name`` until the current transaction ends."""
    conn.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (name,))
