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
from urllib.parse import urlsplit, urlunsplit

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
    try:  # imported here: pgserver is needed only for the embedded server, and loads slowly (start-up)
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


# ----------------------------------------------------------------------------- databases on a server

def with_dbname(url: str, dbname: str) -> str:
    """``url`` pointing at database ``dbname`` on the same server."""
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, "/" + dbname, parts.query, parts.fragment))


def create_database(server_url: str, name: str, *, template: str | None = None) -> str:
    """Create database ``name`` on the server behind ``server_url`` (a copy of ``template`` if given);
    returns its URL."""
    sql = f'CREATE DATABASE "{name}"' + (f' TEMPLATE "{template}"' if template else "")
    with psycopg.connect(server_url, autocommit=True) as conn:
        conn.execute(sql)
    return with_dbname(server_url, name)


def drop_database(server_url: str, name: str) -> None:
    """Drop database ``name`` (if it exists) on the server behind ``server_url``, closing its sessions."""
    with psycopg.connect(server_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def recreate_database(server_url: str, name: str) -> str:
    """Drop and create database ``name`` (empty); returns its URL. ``DatabaseError`` when the role
    may not create databases."""
    try:
        drop_database(server_url, name)
        return create_database(server_url, name)
    except psycopg.errors.InsufficientPrivilege as exc:
        raise DatabaseError(str(exc)) from exc


def copy_rows(conn, table: str, columns: tuple[str, ...], rows: list[tuple]) -> int:
    """COPY ``rows`` (values in ``columns`` order) into ``table`` in the caller's transaction; returns
    the rows written. Bulk loads only: the seeded test and benchmark histories (devtools.seed_history)."""
    stmt = psycopg.sql.SQL("COPY {} ({}) FROM STDIN").format(
        psycopg.sql.Identifier(table), psycopg.sql.SQL(", ").join(map(psycopg.sql.Identifier, columns)))
    n = 0
    with conn.cursor().copy(stmt) as copy:
        for row in rows:
            copy.write_row(row)
            n += 1
    return n


def analyze(conn, table: str) -> None:
    """Refresh the planner's statistics of ``table`` (after a bulk load, as production would have them)."""
    conn.execute(psycopg.sql.SQL("ANALYZE {}").format(psycopg.sql.Identifier(table)))


def read_only_snapshot(conn) -> None:
    """Make the connection's transaction one REPEATABLE READ, READ ONLY snapshot: every read after this
    sees the same data, so figures read one after another agree with each other. Call it first."""
    conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")


def server_identity(conn) -> dict:
    """Which server and database the connection reached: ``database`` (its name) and ``version`` (the
    server's version string)."""
    return conn.execute("SELECT current_database() AS database, version() AS version").fetchone()
