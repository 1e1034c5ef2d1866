"""Migrations: idempotent, reversible, safe under concurrency, and refusing tampered files.

Every check compares a catalog snapshot (tables, columns, constraints, indexes) taken from the
real PostgreSQL, so "the same schema" means the same down to column defaults and index definitions.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path

import psycopg
import pytest

from xbotlib.store import migrate
from xbotlib.store.db import Database
from xbotlib.store.migrate import MigrationError
from xbotlib.store.queue import ensure_account

REPO = Path(__file__).resolve().parents[2]
NOW = datetime(2026, 3, 2, 8, 0, tzinfo=timezone.utc)


def catalog_snapshot(conn: psycopg.Connection) -> dict[str, list[tuple]]:
    """Everything that defines the public schema, as sorted tuples that compare with ``==``."""
    q = {
        "tables": """SELECT c.relname, c.relkind FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
                      WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p', 'v', 'm', 'S')""",
        # a column's rank, not its attnum: a column dropped and added back (down, then up) keeps its
        # place among the others while Postgres gives it a new attnum
        "columns": """SELECT table_name, column_name,
                             row_number() OVER (PARTITION BY table_name ORDER BY ordinal_position) AS position,
                             data_type, udt_name, column_default,
                             is_nullable, character_maximum_length, numeric_precision
                        FROM information_schema.columns WHERE table_schema = 'public'""",
        "constraints": """SELECT cl.relname, co.conname, co.contype, pg_get_constraintdef(co.oid)
                            FROM pg_constraint co JOIN pg_class cl ON cl.oid = co.conrelid
                            JOIN pg_namespace n ON n.oid = cl.relnamespace WHERE n.nspname = 'public'""",
        "indexes": "SELECT tablename, indexname, indexdef FROM pg_indexes WHERE schemaname = 'public'",
    }
    snap = {}
    for key, sql in q.items():
        rows = conn.execute(sql).fetchall()
        snap[key] = sorted(tuple(r.values()) if isinstance(r, dict) else tuple(r) for r in rows)
    return snap


def snapshot(db: Database) -> dict[str, list[tuple]]:
    with db.connection() as conn:
        return catalog_snapshot(conn)


def without_schema_migrations(snap: dict[str, list[tuple]]) -> dict[str, list[tuple]]:
    return {k: [r for r in rows if r[0] != "schema_migrations"] for k, rows in snap.items()}


@pytest.fixture(scope="module")
def reference_snapshot(pg) -> dict[str, list[tuple]]:
    """The schema of a database migrated once, the normal way."""
    with Database.from_url(pg.fresh_database(), pool_max=1) as ref:
        return snapshot(ref)


@pytest.fixture
def empty_db(pg):
    database = Database.from_url(pg.empty_database(), pool_max=2)
    yield database
    database.close()


def test_reference_schema_has_the_contract_tables_and_indexes(reference_snapshot):
    tables = {name for name, kind in reference_snapshot["tables"] if kind == "r"}
    for t in ("content_metadata", "posted_decisions", "outcomes", "follower_snapshots", "bandit_arms",
              "predictors", "experiments", "experiment_assignments", "llm_ledger", "job_runs",
              "notebook_runs", "schema_migrations"):
        assert t in tables
    indexes = {name for _t, name, _d in reference_snapshot["indexes"]}
    assert {"idx_outcomes_real", "idx_cm_sched"} <= indexes


def test_up_three_times_gives_one_identical_schema(empty_db, reference_snapshot):
    first = migrate.up(empty_db)
    assert [m.version for m in first] == [m.version for m in migrate.discover()]
    after_first = snapshot(empty_db)
    assert migrate.up(empty_db) == []
    assert migrate.up(empty_db) == []
    assert snapshot(empty_db) == after_first == reference_snapshot
    assert {r["state"] for r in migrate.status(empty_db)} == {"applied"}


def test_down_to_zero_then_up_restores_the_same_schema(db, reference_snapshot):
    undone = migrate.down(db, target=0)
    assert [m.version for m in undone] == sorted((m.version for m in migrate.discover()), reverse=True)
    tables = [name for name, kind in snapshot(db)["tables"] if kind == "r"]
    assert tables == ["schema_migrations"]
    assert db.execute("SELECT count(*) AS n FROM schema_migrations")[0]["n"] == 0
    assert {r["state"] for r in migrate.status(db)} == {"pending"}
    migrate.up(db)
    assert snapshot(db) == reference_snapshot


def test_down_one_step_at_a_time(db, reference_snapshot):
    versions = [m.version for m in migrate.discover()]
    for expected in reversed(versions):
        assert [m.version for m in migrate.down(db, steps=1)] == [expected]
    assert migrate.down(db, steps=1) == []
    migrate.up(db)
    assert snapshot(db) == reference_snapshot


def test_up_to_a_target_stops_there(empty_db):
    applied = migrate.up(empty_db, target=1)
    assert [m.version for m in applied] == [1]
    states = {r["version"]: r["state"] for r in migrate.status(empty_db)}
    assert states[1] == "applied" and all(s == "pending" for v, s in states.items() if v > 1)


def test_every_up_file_run_twice_directly_is_harmless(empty_db, reference_snapshot):
    with empty_db.connection() as conn:
        for m in migrate.discover():
            conn.execute(m.up_sql)
            conn.execute(m.up_sql)
        conn.commit()
    assert without_schema_migrations(snapshot(empty_db)) == without_schema_migrations(reference_snapshot)


def test_every_up_file_rerun_on_a_migrated_database_changes_nothing(db, reference_snapshot):
    with db.connection() as conn:
        for m in migrate.discover():
            conn.execute(m.up_sql)
    assert snapshot(db) == reference_snapshot


def test_every_down_file_run_twice_directly_is_harmless(db):
    with db.connection() as conn:
        for m in reversed(migrate.discover()):
            conn.execute(m.down_sql)
            conn.execute(m.down_sql)
    tables = [name for name, kind in snapshot(db)["tables"] if kind == "r"]
    assert tables == ["schema_migrations"]


def _clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("XBOT_", "X_", "OPENAI_"))}
    env.update(extra)
    return env


def test_four_concurrent_migrate_up_processes_end_with_one_schema(pg, tmp_path, reference_snapshot):
    url = pg.empty_database()
    env = _clean_env(XBOT_DATABASE_URL=url, XBOT_HOME=str(tmp_path / ".xbot"), PYTHONPATH=str(REPO))
    procs = [subprocess.Popen([sys.executable, "-m", "xbotlib.app.cli.main", "migrate", "up"], cwd=tmp_path, env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(4)]
    results = [(p.wait(timeout=120), *p.communicate()) for p in procs]
    for rc, out, err in results:
        assert rc == 0, f"migrate up failed:\n{out}\n{err}"
    # exactly one process applied each migration; the others found nothing pending
    applied = [int(out.split("applied ")[1].split()[0]) for _rc, out, _err in results]
    assert sorted(applied) == [0, 0, 0, len(migrate.discover())]
    with Database.from_url(url, pool_max=1) as db:
        assert snapshot(db) == reference_snapshot
        rows = db.execute("SELECT version FROM schema_migrations ORDER BY version")
    assert [r["version"] for r in rows] == [m.version for m in migrate.discover()]


@pytest.fixture
def migrations_copy(tmp_path) -> Path:
    directory = tmp_path / "migrations"
    shutil.copytree(migrate.MIGRATIONS_DIR, directory)
    return directory


def _table_counts(db: Database) -> tuple[int, int]:
    rows = db.execute("SELECT (SELECT count(*) FROM accounts) AS a, (SELECT count(*) FROM schema_migrations) AS m")
    return rows[0]["a"], rows[0]["m"]


def test_tampered_migration_is_refused_and_nothing_changes(empty_db, migrations_copy):
    migrate.up(empty_db, directory=migrations_copy)
    with empty_db.connection() as conn:
        ensure_account(conn, "acct1", NOW)
    before, counts = snapshot(empty_db), _table_counts(empty_db)

    tampered = migrations_copy / "0002_indexes.up.sql"
    tampered.write_text(tampered.read_text() + "\nCREATE INDEX IF NOT EXISTS idx_sneaky ON accounts (handle);\n")
    # a new pending migration next to the tampered one must not run either
    (migrations_copy / "0099_extra.up.sql").write_text("CREATE TABLE IF NOT EXISTS extra (x int);")
    (migrations_copy / "0099_extra.down.sql").write_text("DROP TABLE IF EXISTS extra;")

    with pytest.raises(MigrationError, match=r"0002_indexes\.up\.sql changed after it was applied"):
        migrate.up(empty_db, directory=migrations_copy)
    with pytest.raises(MigrationError, match=r"0002_indexes\.up\.sql"):
        migrate.down(empty_db, directory=migrations_copy, target=0)
    assert snapshot(empty_db) == before
    assert _table_counts(empty_db) == counts
    states = {r["version"]: r["state"] for r in migrate.status(empty_db, directory=migrations_copy)}
    assert states[2] == "CHANGED" and states[99] == "pending"


def test_deleted_applied_migration_is_refused_naming_it_and_the_directory(empty_db, migrations_copy):
    migrate.up(empty_db, directory=migrations_copy)
    (migrations_copy / "0003_backfill_scheduled_at.up.sql").unlink()
    (migrations_copy / "0003_backfill_scheduled_at.down.sql").unlink()
    with pytest.raises(MigrationError, match=r"0003_backfill_scheduled_at is applied but its file is missing") as exc:
        migrate.up(empty_db, directory=migrations_copy)
    assert str(migrations_copy) in str(exc.value)


def test_failing_migration_is_rolled_back_whole(db, migrations_copy, reference_snapshot):
    (migrations_copy / "0098_broken.up.sql").write_text(
        "CREATE TABLE IF NOT EXISTS half_done (x int);\nSELECT 1 / 0;\n")
    (migrations_copy / "0098_broken.down.sql").write_text("DROP TABLE IF EXISTS half_done;")
    with pytest.raises(MigrationError, match=r"0098_broken\.up\.sql failed and was rolled back: .*division by zero"):
        migrate.up(db, directory=migrations_copy)
    assert snapshot(db) == reference_snapshot
    # the advisory lock was released: a later run proceeds (and fails the same way, not by hanging)
    with pytest.raises(MigrationError, match="0098_broken"):
        migrate.up(db, directory=migrations_copy)


@pytest.mark.parametrize("files, message", [
    ({"0001_a.up.sql": "", "0001_a.down.sql": "", "notes.sql": ""}, r"notes\.sql is not a migration file name"),
    ({"0001_a.up.sql": ""}, r"0001_a\.up\.sql has no down file \(add 0001_a\.down\.sql\)"),
    ({"0001_a.up.sql": "", "0001_b.up.sql": "", "0001_a.down.sql": "", "0001_b.down.sql": ""},
     r"two up migrations share version 0001"),
    ({"1_a.up.sql": "", "1_a.down.sql": ""}, r"1_a\.(up|down)\.sql is not a migration file name"),
])
def test_discover_rejects_malformed_directories(tmp_path, files, message):
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    with pytest.raises(MigrationError, match=message):
        migrate.discover(tmp_path)


def test_discover_rejects_a_missing_directory(tmp_path):
    with pytest.raises(MigrationError, match=r"no migrations directory"):
        migrate.discover(tmp_path / "nope")


def test_status_on_an_empty_database_creates_nothing(empty_db):
    assert {r["state"] for r in migrate.status(empty_db)} == {"pending"}
    assert snapshot(empty_db)["tables"] == []


def test_migrate_cli_status_down_up(db_url, tmp_path, monkeypatch, capsys, reference_snapshot):
    from xbotlib.app.cli import main as cli
    monkeypatch.chdir(tmp_path)  # no stray .env
    monkeypatch.setenv("XBOT_DATABASE_URL", db_url)
    newest = migrate.discover()[-1]
    assert cli.main(["migrate", "status"]) == 0
    assert capsys.readouterr().out.count(" applied ") == len(migrate.discover())
    assert cli.main(["migrate", "down"]) == 0
    out = capsys.readouterr().out
    assert f"reverted 1 migration(s)\n  {newest.version:04d}_{newest.name}" in out
    assert f"{newest.version:04d}  {newest.name:<28} pending" in out
    assert cli.main(["migrate", "up"]) == 0
    assert f"applied 1 migration(s)\n  {newest.version:04d}_{newest.name}" in capsys.readouterr().out
    with Database.from_url(db_url, pool_max=1) as db:
        assert snapshot(db) == reference_snapshot


def test_status_lists_changed_and_missing_applied_files_as_problems(empty_db, migrations_copy):
    migrate.up(empty_db, directory=migrations_copy)
    assert migrate.problems(migrate.status(empty_db, directory=migrations_copy)) == []
    changed = migrations_copy / "0002_indexes.up.sql"
    changed.write_text(changed.read_text() + "\n-- edited\n")
    (migrations_copy / "0003_backfill_scheduled_at.up.sql").unlink()
    (migrations_copy / "0003_backfill_scheduled_at.down.sql").unlink()
    rows = migrate.status(empty_db, directory=migrations_copy)
    assert {r["version"]: r["state"] for r in rows}[3] == "MISSING"
    assert [r["version"] for r in rows] == sorted(r["version"] for r in rows)
    assert migrate.problems(rows) == [
        "0002_indexes changed after it was applied (restore the original file and put the change in a new migration)",
        "0003_backfill_scheduled_at is applied but its file is missing (restore it; never delete an applied migration)",
    ]


def test_migrate_status_fails_and_doctor_says_changed_when_an_applied_file_changed(db_url, tmp_path, monkeypatch,
                                                                                   capsys):
    from xbotlib.app.cli import main as cli
    monkeypatch.chdir(tmp_path)  # no stray .env
    monkeypatch.setenv("XBOT_DATABASE_URL", db_url)
    assert cli.main(["doctor"]) == 0
    assert "changed after it was applied" not in capsys.readouterr().out
    # the checksum recorded at apply time no longer matches the file: what an edit of 0002 looks like
    with Database.from_url(db_url, pool_max=1) as db:
        db.execute("UPDATE schema_migrations SET checksum = 'edited' WHERE version = 2")
    assert cli.main(["migrate", "status"]) == 1
    captured = capsys.readouterr()
    assert "0002  indexes                      CHANGED" in captured.out
    assert "error: migration 0002_indexes changed after it was applied" in captured.err
    assert cli.main(["doctor"]) == 0
    out = capsys.readouterr().out
    n = len(migrate.discover())
    assert f"migrations: {n - 1}/{n} applied\n" in out and "pending" not in out.split("migrations:")[1]
    assert "migration 0002_indexes changed after it was applied" in out
