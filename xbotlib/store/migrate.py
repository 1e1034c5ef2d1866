"""Plain-SQL migrations: ``migrations/NNNN_name.up.sql`` and ``NNNN_name.down.sql``.

``up`` applies every pending file in order, each in its own transaction, and records version,
name and checksum in ``schema_migrations``. A Postgres advisory lock makes concurrent runs wait
for each other, so four processes running ``migrate up`` at once end with one correct schema.
An applied file whose checksum changed is refused before anything runs: the schema on disk and
the schema in the database would silently disagree otherwise. The one exception is ``REWRITTEN``:
a file rewritten so that it also adopts an older database, with the same result on every database
that applied its earlier text; ``up`` records the new checksum for those.

Coming from xBOT: 0001 first brings an existing xBOT ``content_metadata``, ``posted_decisions`` and
``outcomes`` to xbot's shape (columns added, rows kept); ``legacy_tables`` says what ``status`` finds
before that has run.
"""
from __future__ import annotations

import hashlib
import logging
import re
from dataclasses import dataclass
from pathlib import Path

from xbotlib.config import PROJECT_ROOT

from xbotlib.store.db import Database

log = logging.getLogger("xbot.migrate")

MIGRATIONS_DIR = PROJECT_ROOT / "migrations"
# an arbitrary constant that names "xbot migrations" among advisory locks
MIGRATION_LOCK_KEY = 0x5842_4F54_4D49_47  # 'XBOTMIG'
_FILE_RE = re.compile(r"^(\d{4})_([a-z0-9_]+)\.(up|down)\.sql$")

SCHEMA_MIGRATIONS_DDL = """
CREATE TABLE IF NOT EXISTS schema_migrations (
    version     integer PRIMARY KEY,
    name        text NOT NULL,
    checksum    text NOT NULL,
    applied_at  timestamptz NOT NULL DEFAULT now()
)"""


# version -> checksums of earlier texts of that file that are still accepted as applied. 0001 gained the
# adoption of xBOT's tables (issue #18): on a database it already ran on, none of those tables predated it,
# so the new text would have done exactly what the old one did.
REWRITTEN: dict[int, frozenset[str]] = {
    1: frozenset({"d8634936993c8024c1904bc708dce9e67b75504b8ea84ddc60e61d79654d260b"}),
}
# the xBOT tables 0001 adopts, and the session setting that names the account their rows belong to
LEGACY_TABLES = ("content_metadata", "posted_decisions", "outcomes")
LEGACY_ACCOUNT_SETTING = "xbot.legacy_account"


class MigrationError(RuntimeError):
    """A migration cannot be applied safely; the message says which file and what to do."""


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    up_path: Path
    down_path: Path

    @property
    def up_sql(self) -> str:
        return self.up_path.read_text()

    @property
    def down_sql(self) -> str:
        return self.down_path.read_text()

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.up_path.read_bytes()).hexdigest()


def discover(directory: Path = MIGRATIONS_DIR) -> list[Migration]:
    """All migrations in ``directory``, by version. Every up file needs its down file."""
    if not directory.is_dir():
        raise MigrationError(f"no migrations directory at {directory} "
                             "(run from the xbot checkout, or pass the right path)")
    ups: dict[int, tuple[str, Path]] = {}
    downs: dict[int, Path] = {}
    for path in sorted(directory.glob("*.sql")):
        m = _FILE_RE.match(path.name)
        if not m:
            raise MigrationError(f"{path.name} is not a migration file name (expected NNNN_name.up.sql or .down.sql)")
        version, name, direction = int(m.group(1)), m.group(2), m.group(3)
        if direction == "up":
            if version in ups:
                raise MigrationError(f"two up migrations share version {version:04d}: "
                                     f"{ups[version][1].name} and {path.name} (renumber one)")
            ups[version] = (name, path)
        else:
            downs[version] = path
    out = []
    for version in sorted(ups):
        name, up = ups[version]
        if version not in downs:
            raise MigrationError(f"{up.name} has no down file (add {version:04d}_{name}.down.sql)")
        out.append(Migration(version, name, up, downs[version]))
    return out


def _locked(conn):
    # lock before any DDL: two concurrent `CREATE TABLE IF NOT EXISTS` can still collide in pg_type
    conn.execute("SELECT pg_advisory_lock(%s)", (MIGRATION_LOCK_KEY,))
    conn.execute(SCHEMA_MIGRATIONS_DDL)
    conn.commit()


def _unlock(conn):
    conn.execute("SELECT pg_advisory_unlock(%s)", (MIGRATION_LOCK_KEY,))
    conn.commit()


def _applied(conn) -> dict[int, dict]:
    rows = conn.execute("SELECT version, name, checksum, applied_at FROM schema_migrations ORDER BY version").fetchall()
    conn.commit()
    return {r["version"]: r for r in rows}


def _verify_checksums(migrations: list[Migration], applied: dict[int, dict], directory: Path) -> None:
    by_version = {m.version: m for m in migrations}
    for version, row in applied.items():
        m = by_version.get(version)
        if m is None:
            raise MigrationError(f"migration {version:04d}_{row['name']} is applied but its file is missing "
                                 f"from {directory} (restore it; never delete an applied migration)")
        if m.checksum != row["checksum"] and row["checksum"] not in REWRITTEN.get(version, ()):
            raise MigrationError(
                f"{m.up_path.name} changed after it was applied (checksum {m.checksum[:12]} != recorded "
                f"{row['checksum'][:12]}); restore the original file and put the change in a new migration")


def _record_rewritten(conn, migrations: list[Migration], applied: dict[int, dict]) -> None:
    """Record the current checksum of applied files listed in ``REWRITTEN`` (their earlier text was applied)."""
    for m in migrations:
        row = applied.get(m.version)
        if row is not None and row["checksum"] != m.checksum and row["checksum"] in REWRITTEN.get(m.version, ()):
            conn.execute("UPDATE schema_migrations SET checksum = %s WHERE version = %s", (m.checksum, m.version))
            log.info("migration %04d_%s: recorded the checksum of its rewritten text", m.version, m.name)
    conn.commit()


def up(db: Database, directory: Path = MIGRATIONS_DIR, target: int | None = None,
       legacy_account: str | None = None) -> list[Migration]:
    """Apply pending migrations (up to ``target``); returns those applied.

    ``legacy_account`` (XBOT_ACCOUNT_ID) is the account that rows of adopted xBOT tables are given when
    they carry none (default ``'default'``)."""
    migrations = discover(directory)
    done: list[Migration] = []
    with db.connection() as conn:
        _locked(conn)
        try:
            applied = _applied(conn)
            _verify_checksums(migrations, applied, directory)
            _record_rewritten(conn, migrations, applied)
            if legacy_account:
                conn.execute("SELECT set_config(%s, %s, false)", (LEGACY_ACCOUNT_SETTING, legacy_account))
                conn.commit()
            for m in migrations:
                if m.version in applied or (target is not None and m.version > target):
                    continue
                try:
                    with conn.transaction():
                        conn.execute(m.up_sql)
                        conn.execute("INSERT INTO schema_migrations (version, name, checksum) VALUES (%s, %s, %s)",
                                     (m.version, m.name, m.checksum))
                except Exception as exc:
                    raise MigrationError(f"{m.up_path.name} failed and was rolled back: {exc}") from exc
                conn.commit()
                log.info("applied migration %04d_%s", m.version, m.name)
                done.append(m)
        finally:
            conn.rollback()
            if legacy_account:  # the pooled connection goes back without it
                conn.execute("SELECT set_config(%s, '', false)", (LEGACY_ACCOUNT_SETTING,))
            _unlock(conn)
    return done


def down(db: Database, directory: Path = MIGRATIONS_DIR, target: int = 0, steps: int | None = None) -> list[Migration]:
    """Revert applied migrations, newest first, down to version ``target`` (or ``steps`` of them)."""
    migrations = {m.version: m for m in discover(directory)}
    undone: list[Migration] = []
    with db.connection() as conn:
        _locked(conn)
        try:
            applied = _applied(conn)
            _verify_checksums(list(migrations.values()), applied, directory)
            for version in sorted(applied, reverse=True):
                if version <= target or (steps is not None and len(undone) >= steps):
                    break
                m = migrations[version]
                try:
                    with conn.transaction():
                        conn.execute(m.down_sql)
                        conn.execute("DELETE FROM schema_migrations WHERE version = %s", (version,))
                except Exception as exc:
                    raise MigrationError(f"{m.down_path.name} failed and was rolled back: {exc}") from exc
                conn.commit()
                log.info("reverted migration %04d_%s", m.version, m.name)
                undone.append(m)
        finally:
            conn.rollback()
            _unlock(conn)
    return undone


CHANGED = "CHANGED"  # applied, but its up file differs from the one applied (checksum recorded at apply time)
MISSING = "MISSING"  # applied, but its file is gone from the migrations directory


def status(db: Database, directory: Path = MIGRATIONS_DIR) -> list[dict]:
    """One row per migration: version, name, state (applied | pending | CHANGED | MISSING), applied_at.

    CHANGED and MISSING are the states ``up`` refuses to run with; ``problems`` picks them out."""
    migrations = discover(directory)
    with db.connection() as conn:
        # read-only: a status check (e.g. `xbot doctor`) must not create tables or race a running `up`
        exists = conn.execute("SELECT to_regclass('schema_migrations') IS NOT NULL AS e").fetchone()["e"]
        applied = _applied(conn) if exists else {}
    rows = []
    for m in migrations:
        row = applied.get(m.version)
        if row is None:
            state = "pending"
        elif row["checksum"] != m.checksum and row["checksum"] not in REWRITTEN.get(m.version, ()):
            state = CHANGED
        else:
            state = "applied"
        rows.append({"version": m.version, "name": m.name, "state": state,
                     "applied_at": row["applied_at"] if row else None})
    on_disk = {m.version for m in migrations}
    rows += [{"version": v, "name": r["name"], "state": MISSING, "applied_at": r["applied_at"]}
             for v, r in applied.items() if v not in on_disk]
    rows.sort(key=lambda r: r["version"])
    return rows


def problems(rows: list[dict]) -> list[str]:
    """What is wrong with the migration ``rows`` of ``status``, one sentence each ([] when nothing is).

    A pending migration is not a problem (``up`` applies it); a changed or missing applied file is:
    the schema in the database no longer matches the files on disk."""
    out = []
    for r in rows:
        label = f"{r['version']:04d}_{r['name']}"
        if r["state"] == CHANGED:
            out.append(f"{label} changed after it was applied (restore the original file and put the change "
                       "in a new migration)")
        elif r["state"] == MISSING:
            out.append(f"{label} is applied but its file is missing (restore it; never delete an applied migration)")
    return out


def _created_columns(sql: str) -> dict[str, list[str]]:
    """Table -> column names of each ``CREATE TABLE IF NOT EXISTS`` in ``sql`` (a migration's text)."""
    out = {}
    for m in re.finditer(r"CREATE TABLE IF NOT EXISTS (\w+) \((.*?)\n\);", sql, re.S):
        out[m.group(1)] = [c.group(1) for c in re.finditer(r"^    (\w+)\s", m.group(2), re.M)
                           if c.group(1) not in ("CONSTRAINT", "PRIMARY", "UNIQUE")]
    return out


def legacy_tables(db: Database, directory: Path = MIGRATIONS_DIR) -> list[dict]:
    """What ``up`` will adopt: one row per xBOT table found before 0001 has run (table, rows, missing columns).

    [] when 0001 is applied or none of ``LEGACY_TABLES`` exists (a fresh database). Read-only."""
    first = next((m for m in discover(directory) if m.version == 1), None)
    if first is None:
        return []
    expected = _created_columns(first.up_sql)
    found = []
    with db.connection() as conn:
        done = conn.execute("SELECT to_regclass('schema_migrations') IS NOT NULL AS e").fetchone()["e"] and \
            conn.execute("SELECT 1 FROM schema_migrations WHERE version = 1").fetchone() is not None
        if done:
            return []
        for table in LEGACY_TABLES:
            if conn.execute("SELECT to_regclass(%s) IS NOT NULL AS e", (f"public.{table}",)).fetchone()["e"]:
                have = {r["column_name"] for r in conn.execute(
                    "SELECT column_name FROM information_schema.columns WHERE table_schema = 'public' "
                    "AND table_name = %s", (table,)).fetchall()}
                rows = conn.execute(f"SELECT count(*) AS n FROM public.{table}").fetchone()["n"]
                found.append({"table": table, "rows": rows,
                              "missing_columns": [c for c in expected.get(table, []) if c not in have]})
        conn.rollback()
    return found
