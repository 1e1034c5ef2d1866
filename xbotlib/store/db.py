"""Database access: the embedded PostgreSQL (pgserver) by default, any PostgreSQL 14+ via XBOT_DATABASE_URL.

``Database`` owns a psycopg connection pool. Every xbot process that runs at the same time shares
the same embedded server: pgserver reference-counts the processes using a data directory and
stops the server when the last one exits.
"""
from __future__ import annotations

import contextlib
import logging
import os
import re
import warnings
from pathlib import Path
from typing import Any, Iterator

import psycopg
from psycopg.rows import dict_row
from psycopg_pool import ConnectionPool

from xbotlib.config import ConfigError, Settings

log = logging.getLogger("xbot.db")

MIN_SERVER_VERSION = 140000


class DatabaseError(RuntimeError):
    """The database could not be reached or is unsuitable; the message says what to do."""


def embedded_server(home: Path, cleanup_mode: str = "stop"):
    """Start (or join) the embedded PostgreSQL under ``home/pgdata``; returns the pgserver handle.

    ``cleanup_mode`` is pgserver's: 'stop' when the last process using it exits, 'delete' to also
    remove the data directory (throwaway test servers).
    """
    warnings.filterwarnings("ignore", message=".*XDG_RUNTIME_DIR.*")
    try:
        import pgserver
    except ImportError as exc:  # pragma: no cover - a broken install
        raise DatabaseError("the embedded database needs the 'pgserver' package: run `make env` "
                            "or set XBOT_DATABASE_URL to an existing PostgreSQL") from exc
    home.mkdir(parents=True, exist_ok=True)
    # pgserver runs postgres as a separate 'pgserver' user when we are root: it must be able to enter home
    if os.geteuid() == 0:
        for p in [home, *home.parents]:
            try:
                mode = p.stat().st_mode
                if not mode & 0o001:
                    p.chmod(mode | 0o001)
            except OSError:
                break
    try:
        return pgserver.get_server(home / "pgdata", cleanup_mode=cleanup_mode)
    except Exception as exc:
        raise DatabaseError(f"could not start the embedded PostgreSQL under {home / 'pgdata'}: {exc} "
                            f"(see {home / 'pgdata' / 'log'}; or set XBOT_DATABASE_URL)") from exc


def embedded_url(server) -> str:
    return server.get_uri()


class Database:
    """A pool of connections to xbot's PostgreSQL.

    Use ``Database.open(settings)``; ``db.connection()`` lends a connection whose rows are dicts
    and which commits on clean exit (rolls back on error).
    """

    def __init__(self, url: str, *, embedded: bool, server: Any = None, pool_max: int = 8):
        self.url = url
        self.embedded = embedded
        self._server = server  # keeps the embedded server referenced while we live
        _probe(url)
        self.pool = ConnectionPool(url, min_size=1, max_size=pool_max, kwargs={"row_factory": dict_row},
                                   open=False, name="xbot")
        try:
            self.pool.open(wait=True, timeout=30)
        except Exception as exc:
            self.pool.close()
            raise DatabaseError(f"cannot connect to PostgreSQL at {redact(url)}: {exc} "
                                "(is the server running and the URL right? check XBOT_DATABASE_URL)") from exc
        self._check_version()

    @classmethod
    def open(cls, settings: Settings) -> "Database":
        if settings.database_url:
            return cls(settings.database_url, embedded=False, pool_max=settings.db_pool_max)
        server = embedded_server(settings.home_path)
        return cls(embedded_url(server), embedded=True, server=server, pool_max=settings.db_pool_max)

    @classmethod
    def from_url(cls, url: str, pool_max: int = 8) -> "Database":
        if not re.match(r"^postgres(ql)?://", url):
            raise ConfigError(f"not a postgres URL: {url!r} (expected postgresql://…)")
        return cls(url, embedded=False, pool_max=pool_max)

    def _check_version(self) -> None:
        with self.connection() as conn:
            version = conn.execute("SHOW server_version_num").fetchone()["server_version_num"]
        if int(version) < MIN_SERVER_VERSION:
            raise DatabaseError(f"PostgreSQL {version} is too old at {redact(self.url)} (xbot needs 14 or newer)")

    @contextlib.contextmanager
    def connection(self) -> Iterator[psycopg.Connection]:
        with self.pool.connection() as conn:
            yield conn

    def execute(self, sql: str, params: Any = None) -> list[dict]:
        """Run one statement in its own transaction; returns the rows (if any)."""
        with self.connection() as conn:
            cur = conn.execute(sql, params)
            return cur.fetchall() if cur.description else []

    def describe(self) -> str:
        kind = "embedded PostgreSQL (pgserver)" if self.embedded else "external PostgreSQL (XBOT_DATABASE_URL)"
        return f"{kind} at {redact(self.url)}"

    def close(self) -> None:
        self.pool.close()

    def __enter__(self) -> "Database":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _probe(url: str, timeout_s: int = 10) -> None:
    """One direct connection attempt, so a wrong URL fails at once with libpq's own reason
    (the pool would retry for its whole timeout and then report only that it timed out)."""
    try:
        psycopg.connect(url, connect_timeout=timeout_s).close()
    except psycopg.Error as exc:
        reason = " ".join(str(exc).split())
        raise DatabaseError(f"cannot connect to PostgreSQL at {redact(url)}: {reason} "
                            "(is the server running and the URL right? check XBOT_DATABASE_URL)") from exc


def redact(url: str) -> str:
    """The URL with its password (user:PASSWORD@ or ?password=) replaced by ****."""
    url = re.sub(r"(://[^:/@]*:)[^@]*@", r"\1****@", url)
    return re.sub(r"(?i)([?&]password=)[^&]*", r"\1****", url)


def psql_command(url: str) -> str:
    return f"psql '{url}'"
