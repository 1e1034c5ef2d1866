"""Database access: the embedded PostgreSQL (pgserver) by default, any PostgreSQL 14+ via XBOT_DATABASE_URL.

``Database`` owns a psycopg connection pool. Every xbot process that runs at the same time shares
the same embedded server: pgserver reference-counts the processes using a data directory and
stops the server when the last one exits.

The workspace (XBOT_HOME) holds the embedded server's data (``pgdata/``) and two small files:
``database.json``, the workspace's default database on that server (``xbot demo`` sets it to
``xbot_demo``, so every later command, notebook and the API read the demo's data with no setting;
XBOT_DATABASE_URL still overrides it), and ``db-holder.pid``, the background process
``xbot db start`` leaves holding the server up while a person works (``hold_embedded_server``).

Size: over 400 lines because how xbot reaches PostgreSQL is one concern — the pool, the embedded
server, the workspace's default database and the holder that keeps the server up read the same files.
"""
from __future__ import annotations

import contextlib
import functools
import json
import logging
import math
import os
import re
import shutil
import signal
import threading
import time
import warnings
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterator, Sequence
from urllib.parse import urlsplit, urlunsplit

import psycopg
from psycopg.rows import dict_row
from psycopg_pool import ConnectionPool

from xbotlib.config import ConfigError, Settings

log = logging.getLogger("xbot.db")

MIN_SERVER_VERSION = 140000
# Failing fast when the database is down (issue #18): libpq gives up on a connection attempt after
# CONNECT_TIMEOUT_S, and a caller waits at most ACQUIRE_TIMEOUT_S for a pooled connection (psycopg_pool's
# default is 30 s, so every tick of a daemon hung 30 s during an outage before it failed). Both are short
# because on a healthy server a connection takes milliseconds; a busy pool is sized by XBOT_DB_POOL_MAX.
CONNECT_TIMEOUT_S = 5
ACQUIRE_TIMEOUT_S = 5


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


# The tables the jobs change in place: a decision's status moving on, a post's collection mark and counts, an outcome
# applied to the bandits, an arm's sums, a rate limit's reset. Each change leaves a dead row version behind, which
# the reads of those tables walk until VACUUM clears it.
UPDATED_IN_PLACE = ("content_metadata", "posted_decisions", "outcomes", "bandit_arms", "x_rate_limits")


def vacuum_updated_tables(db: "Database") -> None:
    """``VACUUM`` the ``UPDATED_IN_PLACE`` tables (on an autocommit connection: VACUUM runs outside a transaction; it
    takes no lock the jobs' reads and writes wait for): what autovacuum does on its own clock, for a simulated
    campaign, whose clock autovacuum does not follow (``jobs.campaign.run_campaign``). Its cost follows the pages
    changed since the last one (~0.3 ms a table a simulated day at a year of history). Not ANALYZE: that reads the
    whole table each time (~60 ms at a year, most of it the embeddings' statistics), and the statistics need
    refreshing far less often than daily — autovacuum's own analyzes still come."""
    with db.autocommit() as conn:
        conn.execute(f"VACUUM {', '.join(UPDATED_IN_PLACE)}", prepare=False)


class Database:
    """A pool of connections to xbot's PostgreSQL.

    Use ``Database.open(settings)``; ``db.connection()`` lends a connection whose rows are dicts
    and which commits on clean exit (rolls back on error).
    """

    def __init__(self, url: str, *, embedded: bool, server: Any = None, pool_max: int = 8,
                 check_connections: bool = False):
        self.url = url
        self.embedded = embedded
        self._server = server  # keeps the embedded server referenced while we live
        _probe(url)
        # check_connections: test each connection as it leaves the pool (one round trip), so a long-lived
        # worker gets a fresh connection after a PostgreSQL restart instead of a dead one; off by default,
        # the short-lived commands and the simulated campaigns do not need the extra round trip
        self.pool = ConnectionPool(url, min_size=1, max_size=pool_max,
                                   kwargs={"row_factory": dict_row, "connect_timeout": CONNECT_TIMEOUT_S},
                                   open=False, name="xbot", timeout=ACQUIRE_TIMEOUT_S,
                                   check=ConnectionPool.check_connection if check_connections else None)
        try:
            self.pool.open(wait=True, timeout=30)
        except Exception as exc:
            self.pool.close()
            raise DatabaseError(f"cannot connect to PostgreSQL at {redact(url)}: {exc} "
                                "(is the server running and the URL right? check XBOT_DATABASE_URL)") from exc
        self._check_version()

    @classmethod
    def open(cls, settings: Settings, *, dbname: str | None = None, check_connections: bool = False) -> "Database":
        """XBOT_DATABASE_URL when set; else the embedded server under XBOT_HOME (started or joined), on
        ``dbname`` or else the workspace's default database (``default_database``)."""
        if settings.database_url:
            return cls(settings.database_url, embedded=False, pool_max=settings.db_pool_max,
                       check_connections=check_connections)
        if dbname is None:
            dbname = workspace_database(settings)
        server = embedded_server(settings.home_path)
        return cls(server.get_uri(dbname), embedded=True, server=server, pool_max=settings.db_pool_max,
                   check_connections=check_connections)

    @classmethod
    def from_url(cls, url: str, pool_max: int = 8, check_connections: bool = False) -> "Database":
        if not re.match(r"^postgres(ql)?://", url):
            raise ConfigError(f"not a postgres URL: {url!r} (expected postgresql://…)")
        return cls(url, embedded=False, pool_max=pool_max, check_connections=check_connections)

    def _check_version(self) -> None:
        with self.connection() as conn:
            version = conn.execute("SHOW server_version_num").fetchone()["server_version_num"]
        if int(version) < MIN_SERVER_VERSION:
            raise DatabaseError(f"PostgreSQL {version} is too old at {redact(self.url)} (xbot needs 14 or newer)")

    @contextlib.contextmanager
    def connection(self) -> Iterator[psycopg.Connection]:
        with self.pool.connection() as conn:
            yield conn

    @contextlib.contextmanager
    def autocommit(self) -> Iterator[psycopg.Connection]:
        """A connection in autocommit mode: each statement is its own transaction, in one round trip.

        For work that is one statement (a job run's start or end, a read that needs no snapshot): the
        same effect as ``connection()``'s BEGIN … COMMIT, which costs two more round trips. Several
        statements that must agree or land together belong in ``connection()``."""
        with self.pool.connection() as conn, autocommit_mode(conn):
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


@contextlib.contextmanager
def autocommit_mode(conn: psycopg.Connection) -> Iterator[psycopg.Connection]:
    """``conn`` (idle, from the pool) in autocommit mode for the block, transactional again after: the pool lends
    it next as an ordinary connection. A connection the block broke is left as it is; the pool discards it."""
    conn.autocommit = True
    try:
        yield conn
    finally:
        if conn.info.transaction_status == psycopg.pq.TransactionStatus.IDLE:
            conn.autocommit = False


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


def psql_executable(embedded: bool) -> str:
    """The psql to run: the embedded server's own (shipped in the pgserver package), else the one on PATH."""
    if embedded:
        warnings.filterwarnings("ignore", message=".*XDG_RUNTIME_DIR.*")  # pgserver's import-time notice
        try:  # imported here: pgserver loads slowly and is needed only for the embedded server (start-up)
            from pgserver._commands import POSTGRES_BIN_PATH
        except ImportError:  # pragma: no cover - a broken install
            pass
        else:
            if (POSTGRES_BIN_PATH / "psql").is_file():
                return str(POSTGRES_BIN_PATH / "psql")
    found = shutil.which("psql")
    if not found:
        raise DatabaseError("no psql on PATH (install the PostgreSQL client, e.g. `apt-get install "
                            "postgresql-client`, or unset XBOT_DATABASE_URL to use the embedded server's psql)")
    return found


# ----------------------------------------------------------------------------- the workspace's database

EMBEDDED_MAINTENANCE_DB = "postgres"  # pgserver's own database: the default until a demo sets another
DEFAULT_DB_FILE = "database.json"
HOLDER_PID_FILE = "db-holder.pid"


def default_database(home: Path) -> dict | None:
    """The workspace's recorded default database: ``{"database", "set_by", "set_at"}``, or None.
    A file that cannot be read is an error naming it (delete it to go back to ``postgres``)."""
    path = Path(home) / DEFAULT_DB_FILE
    if not path.is_file():
        return None
    try:
        record = json.loads(path.read_text())
        if not isinstance(record.get("database"), str) or not _DBNAME_RE.fullmatch(record["database"]):
            raise ValueError(f"no valid database name: {record.get('database')!r}")
        return record
    except (ValueError, AttributeError) as exc:
        raise DatabaseError(f"cannot read the workspace's default database from {path}: {exc} "
                            f"(delete the file to use the embedded server's {EMBEDDED_MAINTENANCE_DB!r} database)") from None


def set_default_database(home: Path, database: str, set_by: str, now: datetime | None = None) -> Path:
    """Record ``database`` (on the embedded server) as the workspace's default; returns the file written."""
    if not _DBNAME_RE.fullmatch(database):
        raise ValueError(f"not a database name: {database!r} (expected letters, digits and _, at most 63)")
    home = Path(home)
    home.mkdir(parents=True, exist_ok=True)
    path = home / DEFAULT_DB_FILE
    record = {"database": database, "set_by": set_by,
              "set_at": (now or datetime.now(timezone.utc)).isoformat(timespec="seconds")}
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(record, indent=1) + "\n")
    os.replace(tmp, path)
    return path


def workspace_database(settings: Settings) -> str:
    """The database name on the embedded server this workspace uses: the recorded default, else ``postgres``.

    Live (or shadow) posting never runs on a database a demo set as the default: that is an error
    saying how to go back."""
    record = default_database(settings.home_path)
    if record is None:
        return EMBEDDED_MAINTENANCE_DB
    if settings.world == "live" and record.get("set_by") == "xbot demo":
        raise DatabaseError(
            f"the workspace's default database is {record['database']!r}, set by `xbot demo` (a simulated campaign); "
            f"live posting never uses it: delete {settings.home_path / DEFAULT_DB_FILE} to use the embedded "
            f"{EMBEDDED_MAINTENANCE_DB!r} database, or set XBOT_DATABASE_URL")
    return record["database"]


_DBNAME_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,62}")


# ----------------------------------------------------------------------------- keeping the server up

def process_alive(pid: int) -> bool:
    """Whether a process ``pid`` exists (signal 0)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else (postgres runs as 'pgserver' under root)
        return True
    try:  # an exited child nobody reaped yet (a container's init may never reap) is gone for our purposes
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return True


def _read_pid(path: Path) -> int | None:
    try:
        return int(path.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def postmaster_pid(pgdata: Path) -> int | None:
    """The pid the server of the data directory ``pgdata`` wrote in its ``postmaster.pid`` (None: no such file; the
    process may have exited since: ``process_alive``)."""
    return _read_pid(Path(pgdata) / "postmaster.pid")


def holder_pid(home: Path) -> int | None:
    """The pid of the live ``xbot db start`` holder of this workspace's server, or None (a stale file is removed)."""
    path = Path(home) / HOLDER_PID_FILE
    pid = _read_pid(path)
    if pid is None or not process_alive(pid):
        path.unlink(missing_ok=True)
        return None
    return pid


def embedded_status(home: Path) -> dict:
    """What the embedded server under ``home`` is doing, without starting it: ``running`` (bool),
    ``pid`` (postmaster), ``url`` (of the workspace's default database, when running), ``holder``
    (pid of the ``xbot db start`` holder or None) and ``clients`` (live pids of xbot processes using it)."""
    home = Path(home)
    pgdata = home / "pgdata"
    info = {"running": False, "pid": None, "url": None, "holder": holder_pid(home), "clients": [],
            "pgdata": str(pgdata)}
    pid = postmaster_pid(pgdata)
    if pid is None or not process_alive(pid):
        return info
    warnings.filterwarnings("ignore", message=".*XDG_RUNTIME_DIR.*")  # pgserver's import-time notice
    try:  # imported here: pgserver loads slowly and is needed only for the embedded server (start-up)
        from pgserver.utils import PostmasterInfo
        postmaster = PostmasterInfo.read_from_pgdata(pgdata)
    except (ImportError, OSError, AssertionError, ValueError):
        return info
    if postmaster is None or not postmaster.is_running():
        return info
    record = default_database(home)
    info.update(running=True, pid=postmaster.pid,
                url=postmaster.get_uri(database=record["database"] if record else EMBEDDED_MAINTENANCE_DB))
    try:
        handles = json.loads((pgdata / ".handle_pids.json").read_text())
    except (OSError, ValueError):
        handles = []
    info["clients"] = [p for p in handles if isinstance(p, int) and process_alive(p)]
    return info


def hold_embedded_server(home: Path, *, on_ready=None, stop: threading.Event | None = None) -> None:
    """Start (or join) the embedded server under ``home`` and hold it up until SIGTERM/SIGINT (or ``stop``).

    What ``xbot db start`` runs in a detached process: pgserver keeps a server up while any process
    holds it, so this process is that holder. It writes ``home/db-holder.pid`` once the server
    answers and removes it on the way out; the server then stops unless another xbot process still
    uses it. ``on_ready(url)`` is called once the server is up.
    """
    home = Path(home)
    server = embedded_server(home)
    stop = stop or threading.Event()
    previous = {}
    for sig in (signal.SIGTERM, signal.SIGINT):
        try:
            previous[sig] = signal.signal(sig, lambda *_: stop.set())
        except ValueError:  # not the main thread: the caller stops us through ``stop``
            pass
    pid_file = home / HOLDER_PID_FILE
    pid_file.write_text(f"{os.getpid()}\n")
    try:
        if on_ready:
            on_ready(server.get_uri())
        while not stop.wait(1.0):
            pass
    finally:
        pid_file.unlink(missing_ok=True)
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        _forget_dead_handles(server)


def _forget_dead_handles(server) -> None:
    """Drop pids of processes that died without releasing the server (a kill -9) from pgserver's list,
    so the last live process that lets go really stops it. Uses pgserver's own lock and list."""
    try:
        with server._lock:
            handles = server.global_process_id_list
            handles.put([p for p in handles.get() if p == os.getpid() or process_alive(p)])
    except (AttributeError, OSError, ValueError) as exc:  # another pgserver version: leave its list alone
        log.debug("could not prune pgserver's handle list: %s", exc)


def wait_for(predicate, timeout_s: float, interval_s: float = 0.2) -> bool:
    """Poll ``predicate()`` until it is true or ``timeout_s`` passes; returns its last value."""
    deadline = time.monotonic() + timeout_s
    while True:
        if predicate():
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(interval_s)


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


_NUMBER_TYPES = (int, float, type(None))


def array_literal(values: Sequence[Any]) -> str:
    """``values`` as a Postgres array literal (``{1,2.5,NULL,"text"}``), to be cast in SQL (``%s::float8[]``).

    psycopg's own list adapter inspects every element (about 0.1 ms per row of a 25-column batch); this
    writes each the way Postgres reads it back exactly: ints and bools as such, floats by ``repr`` (the
    shortest text that round-trips), datetimes in ISO 8601 with their offset, anything else (text, UUIDs) quoted.
    A column of only ints, or of only finite numbers and NULLs (most of an outcome batch), is written in one
    pass with the same text ``array_literal_by_element`` writes; anything else goes element by element."""
    values = values if isinstance(values, list) else list(values)
    if all(type(v) is int for v in values):
        return "{" + ",".join(map(str, values)) + "}"
    if all(type(v) in _NUMBER_TYPES for v in values) and all(v is None or math.isfinite(v) for v in values):
        return "{" + ",".join("NULL" if v is None else repr(v) for v in values) + "}"
    return array_literal_by_element(values)


def array_literal_by_element(values: Sequence[Any]) -> str:
    """``array_literal`` without its one-pass paths: each value written (or refused, by name) on its own."""
    out = []
    for v in values:
        if v is None:
            out.append("NULL")
        elif isinstance(v, bool):
            out.append("t" if v else "f")
        elif isinstance(v, (int, float)):
            if isinstance(v, float) and not math.isfinite(v):
                raise ValueError(f"array_literal: {v!r} is not a finite number (outcome values are checked before)")
            out.append(repr(v))
        elif isinstance(v, datetime):
            if v.tzinfo is None:
                raise ValueError(f"array_literal: {v!r} has no timezone (xbot stores aware UTC times)")
            out.append(f'"{v.isoformat()}"')
        else:
            text = str(v)
            out.append('"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"')
    return "{" + ",".join(out) + "}"


def analyze(conn, table: str) -> None:
    """Refresh the planner's statistics of ``table`` (after a bulk load, as production would have them)."""
    conn.execute(psycopg.sql.SQL("ANALYZE {}").format(psycopg.sql.Identifier(table)))


def array_in_statement(values: Sequence[str | bool], sql_type: str = "text") -> str:
    """``values`` as an array of ``sql_type`` written into a statement's text, for psycopg to send with the
    statement's other parameters (its ``%`` doubled, so psycopg reads none of it as a placeholder).

    For the reads a simulated daemon sends for all its accounts every few minutes (``unnest`` of the accounts): sent
    as a parameter, the array is unknown to the generic plan PostgreSQL keeps with the prepared statement, which
    then counts on unnest's default of 100 rows; for five accounts it found that plan dearer than one for the
    accounts actually sent and planned every execution anew, which cost the server more than running the
    statement (the collect start: ~0.6 ms of a backend's CPU a call against ~0.12 ms, BENCHMARKS.md). Written into
    the text, the accounts are part of the statement: a daemon sends the same ones every time, so it is planned once.
    Only for values that repeat (an account list): each new text is a new statement to prepare."""
    return _array_literal_text(tuple(values), sql_type)


@functools.lru_cache(maxsize=256)   # a daemon's few account lists, every few simulated minutes
def _array_literal_text(values: tuple, sql_type: str) -> str:
    # the array's text as ``array_literal`` writes it for a parameter, quoted by psycopg as a string literal, cast here
    quoted = psycopg.sql.Literal(array_literal(values)).as_string(None).strip()
    return f"{quoted.replace('%', '%%')}::{sql_type}[]"


def read_only_snapshot(conn) -> None:
    """Make the connection's transaction one REPEATABLE READ, READ ONLY snapshot: every read after this
    sees the same data, so figures read one after another agree with each other. Call it first."""
    conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")


def server_identity(conn) -> dict:
    """Which server and database the connection reached: ``database`` (its name) and ``version`` (the
    server's version string)."""
    return conn.execute("SELECT current_database() AS database, version() AS version").fetchone()


@dataclass(frozen=True)
class ConnectionSlots:
    """How many more connections the server takes from this role: ``max_connections``, the ones only
    superusers may use (``reserved``: 0 for a superuser), and the ones other sessions hold (``in_use``,
    every database's, this session's not counted)."""
    max_connections: int
    reserved: int
    in_use: int

    @property
    def free(self) -> int:
        return max(0, self.max_connections - self.reserved - self.in_use)


def connection_slots(conn) -> ConnectionSlots:
    """The server's connection limit and what other sessions use of it now (``ConnectionSlots``)."""
    row = conn.execute(
        "SELECT current_setting('max_connections')::int AS max_connections, "
        "CASE WHEN (SELECT rolsuper FROM pg_roles WHERE rolname = current_user) THEN 0 "
        "ELSE current_setting('superuser_reserved_connections')::int END AS reserved, "
        "(SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend' "
        "AND pid <> pg_backend_pid())::int AS in_use").fetchone()
    return ConnectionSlots(row["max_connections"], row["reserved"], row["in_use"])

