"""Coming from xBOT (issue #18, item 4): ``xbot migrate up`` on a database whose ``content_metadata``,
``posted_decisions`` and ``outcomes`` already exist in xBOT's older, narrower shape, with rows.

The legacy tables are built with plain SQL in a plausible xBOT shape (a subset of xbot's columns, a
timestamp without time zone, a nullable column xbot requires); the migrated schema is compared with a
fresh install's through the real catalog, and every legacy row is read back.
"""
from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from xbotlib.core.experiments import MAX_ALLOCATION, MIN_ALLOCATION
from xbotlib.store import migrate
from xbotlib.store.db import Database
from xbotlib.store.migrate import MigrationError
from xbotlib.store.queue import content_hash

from tests.store.test_migrations import snapshot

REPO = Path(__file__).resolve().parents[2]
LEGACY_TABLES = ("content_metadata", "posted_decisions", "outcomes")

D1, D2, D3 = (uuid.UUID(int=n, version=4) for n in (1, 2, 3))
LEGACY_DDL = """
CREATE TABLE content_metadata (
    decision_id  uuid PRIMARY KEY,
    content      text NOT NULL,
    status       text NOT NULL,
    topic        text,
    created_at   timestamp NOT NULL
);
CREATE TABLE posted_decisions (
    decision_id  uuid PRIMARY KEY REFERENCES content_metadata (decision_id),
    tweet_id     text UNIQUE,
    posted_at    timestamptz NOT NULL
);
CREATE TABLE outcomes (
    decision_id   uuid NOT NULL REFERENCES content_metadata (decision_id),
    impressions   integer NOT NULL,
    likes         integer NOT NULL,
    retweets      integer NOT NULL,
    replies       integer NOT NULL,
    collected_at  timestamptz NOT NULL
);
"""
CONTENT = {D1: "Small  habits\tcompound.", D2: "A second post", D3: "Queued but never posted"}
LEGACY_ROWS = [
    ("INSERT INTO content_metadata VALUES (%s, %s, 'posted', 'productivity', '2026-01-10 09:00')", (D1, CONTENT[D1])),
    ("INSERT INTO content_metadata VALUES (%s, %s, 'posted', NULL, '2026-01-11 09:00')", (D2, CONTENT[D2])),
    ("INSERT INTO content_metadata VALUES (%s, %s, 'failed', 'ai', '2026-01-12 09:00')", (D3, CONTENT[D3])),
    ("INSERT INTO posted_decisions VALUES (%s, '1001', '2026-01-10 09:05+00')", (D1,)),
    ("INSERT INTO posted_decisions VALUES (%s, '1002', '2026-01-11 09:05+00')", (D2,)),
    # D1 read twice (T+1h, T+24h), D2 once
    ("INSERT INTO outcomes VALUES (%s, 400, 10, 2, 1, '2026-01-10 10:05+00')", (D1,)),
    ("INSERT INTO outcomes VALUES (%s, 2000, 40, 8, 4, '2026-01-11 09:05+00')", (D1,)),
    ("INSERT INTO outcomes VALUES (%s, 0, 0, 0, 0, '2026-01-12 09:05+00')", (D2,)),
]


def structure(snap: dict[str, list[tuple]]) -> dict[str, list[tuple]]:
    """The catalog of the three legacy tables, without column positions: an adopted table keeps xBOT's
    column order (Postgres appends added columns), which no query of xbot depends on."""
    return {
        "columns": sorted((r[0], r[1], *r[3:]) for r in snap["columns"] if r[0] in LEGACY_TABLES),
        "constraints": [r for r in snap["constraints"] if r[0] in LEGACY_TABLES],
        "indexes": [r for r in snap["indexes"] if r[0] in LEGACY_TABLES],
        "tables": [r for r in snap["tables"] if r[0] != "schema_migrations"],
    }


@pytest.fixture
def legacy_db(pg):
    database = Database.from_url(pg.empty_database(), pool_max=2)
    with database.connection() as conn:
        conn.execute("SET TIME ZONE 'UTC'")
        conn.execute(LEGACY_DDL)
        for sql, params in LEGACY_ROWS:
            conn.execute(sql, params)
        conn.commit()
    yield database
    database.close()


def legacy_row_counts(db: Database) -> dict[str, int]:
    return {t: db.execute(f"SELECT count(*) AS n FROM {t}")[0]["n"] for t in LEGACY_TABLES}


def test_status_reports_the_xbot_tables_it_found(legacy_db):
    found = {t["table"]: t for t in migrate.legacy_tables(legacy_db)}
    assert set(found) == set(LEGACY_TABLES)
    assert (found["content_metadata"]["rows"], found["posted_decisions"]["rows"], found["outcomes"]["rows"]) == (3, 2, 3)
    assert "account_id" in found["content_metadata"]["missing_columns"]
    assert "content" not in found["content_metadata"]["missing_columns"]
    assert {"outcome_id", "collected_pass", "simulated", "fpki"} <= set(found["outcomes"]["missing_columns"])
    assert set(found["posted_decisions"]["missing_columns"]) == {
        "account_id", "world", "reconciled", "profile_visits", "link_clicks", "bookmarks"}


def test_migrate_up_adopts_the_legacy_tables_with_every_row(legacy_db, pg):
    migrate.up(legacy_db, legacy_account="cooking")
    assert {r["state"] for r in migrate.status(legacy_db)} == {"applied"}
    assert migrate.legacy_tables(legacy_db) == []  # adopted: nothing left to report
    assert legacy_row_counts(legacy_db) == {"content_metadata": 3, "posted_decisions": 2, "outcomes": 3}

    # same columns (types, defaults, nullability), constraints and indexes as a fresh install
    with Database.from_url(pg.fresh_database(), pool_max=1) as fresh:
        assert structure(snapshot(legacy_db)) == structure(snapshot(fresh))

    cm = {r["decision_id"]: r for r in legacy_db.execute("SELECT * FROM content_metadata")}
    for d, text in CONTENT.items():
        assert cm[d]["content"] == text and cm[d]["account_id"] == "cooking"
        assert cm[d]["content_hash"] == content_hash(text)  # the duplicate gate knows xBOT's posts
        assert cm[d]["generation_source"] == "llm" and cm[d]["decision_type"] == "post"
        assert cm[d]["updated_at"] == cm[d]["created_at"]
    assert [cm[d]["status"] for d in (D1, D2, D3)] == ["posted", "posted", "failed"]
    assert cm[D1]["topic"] == "productivity" and cm[D1]["created_at"].isoformat() == "2026-01-10T09:00:00+00:00"

    posted = {r["decision_id"]: r for r in legacy_db.execute("SELECT * FROM posted_decisions")}
    assert {d: (r["tweet_id"], r["world"], r["account_id"]) for d, r in posted.items()} == {
        D1: ("1001", "live", "cooking"), D2: ("1002", "live", "cooking")}

    out = legacy_db.execute("SELECT * FROM outcomes ORDER BY decision_id, collected_at")
    assert [(r["decision_id"], r["collected_pass"], r["impressions"], r["likes"]) for r in out] == [
        (D1, 1, 400, 10), (D1, 2, 2000, 40), (D2, 2, 0, 0)]
    assert all(r["simulated"] and r["account_id"] == "cooking" for r in out)  # not vouched for as real X data
    final = out[1]
    assert final["er"] == pytest.approx((40 + 8 + 4) / 2000)
    assert final["retweet_rate"] == pytest.approx(8 / 2000) and final["reply_rate"] == pytest.approx(4 / 2000)
    assert final["sample_weight"] == pytest.approx(0.5) and out[2]["sample_weight"] == 1.0
    assert final["reward_composite"] == pytest.approx(0.3 * 8 / 2000 + 0.15 * 4 / 2000)
    assert len({r["outcome_id"] for r in out}) == 3

    # the account exists from its first decision on, and new rows go in the usual way
    assert legacy_db.execute("SELECT account_id, created_at FROM accounts") == [
        {"account_id": "cooking", "created_at": cm[D1]["created_at"]}]
    new = legacy_db.execute("INSERT INTO outcomes (decision_id, account_id, collected_pass, simulated, collected_at) "
                            "VALUES (%s, 'cooking', 1, false, now()) RETURNING outcome_id", (D2,))
    assert new[0]["outcome_id"] > max(r["outcome_id"] for r in out)
    assert migrate.up(legacy_db) == []


def test_a_legacy_status_xbot_does_not_know_stops_the_migration_naming_it(legacy_db):
    legacy_db.execute("UPDATE content_metadata SET status = 'published' WHERE decision_id = %s", (D1,))
    with pytest.raises(MigrationError, match=r"0001_core\.up\.sql failed.*status has values xbot does not know: "
                                             r"'published'.*UPDATE content_metadata SET status"):
        migrate.up(legacy_db)
    # rolled back: the legacy tables are as they were, nothing recorded as applied
    assert legacy_row_counts(legacy_db) == {"content_metadata": 3, "posted_decisions": 2, "outcomes": 3}
    assert [t["table"] for t in migrate.legacy_tables(legacy_db)] == list(LEGACY_TABLES)
    assert "account_id" in next(t for t in migrate.legacy_tables(legacy_db)
                                if t["table"] == "content_metadata")["missing_columns"]


def test_more_than_two_readings_of_a_post_stop_the_migration_naming_the_post(legacy_db):
    legacy_db.execute("INSERT INTO outcomes VALUES (%s, 2100, 41, 8, 4, '2026-01-12 09:05+00')", (D1,))
    with pytest.raises(MigrationError, match=f"more than two readings of decision\\(s\\) {D1}.*keep the two"):
        migrate.up(legacy_db)
    assert legacy_row_counts(legacy_db)["outcomes"] == 4


def test_migrate_status_and_up_on_the_command_line_say_what_they_found(legacy_db, pg, tmp_path):
    url = legacy_db.url
    env = {k: v for k, v in os.environ.items() if not k.startswith(("XBOT_", "X_", "OPENAI_"))}
    env.update(XBOT_DATABASE_URL=url, XBOT_HOME=str(tmp_path / ".xbot"), PYTHONPATH=str(REPO),
               XBOT_ACCOUNT_ID="cooking")

    def cli(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "xbotlib.app.cli.main", *args], cwd=tmp_path, env=env,
                              capture_output=True, text=True, timeout=120)

    status = cli("migrate", "status")
    assert status.returncode == 0, status.stderr
    assert "found xBOT table content_metadata: 3 row(s)" in status.stdout
    assert "found xBOT table outcomes: 3 row(s)" in status.stdout
    assert "rows without an account go to 'cooking'" in status.stdout
    up = cli("migrate", "up")
    assert up.returncode == 0, up.stderr
    assert "applied " in up.stdout
    assert "found xBOT" not in cli("migrate", "status").stdout
    assert {r["account_id"] for r in legacy_db.execute("SELECT account_id FROM content_metadata")} == {"cooking"}


def test_a_database_that_applied_the_earlier_0001_text_is_accepted_and_its_checksum_updated(db):
    earlier = next(iter(migrate.REWRITTEN[1]))
    db.execute("UPDATE schema_migrations SET checksum = %s WHERE version = 1", (earlier,))
    assert {r["state"] for r in migrate.status(db)} == {"applied"}
    assert migrate.problems(migrate.status(db)) == []
    assert migrate.up(db) == []
    current = next(m for m in migrate.discover() if m.version == 1).checksum
    assert db.execute("SELECT checksum FROM schema_migrations WHERE version = 1")[0]["checksum"] == current


def test_the_database_refuses_an_allocation_the_code_refuses(db):
    """0009: experiments_allocation_check is [0.01, 0.99], like xbotlib.core.experiments.check_allocation."""
    ins = ("INSERT INTO experiments (account_id, experiment_id, allocation, applies_to, created_at, updated_at) "
           "VALUES ('a', %s, %s, 'post', now(), now())")
    db.execute(ins, ("edge_low", MIN_ALLOCATION))
    db.execute(ins, ("edge_high", MAX_ALLOCATION))
    for i, allocation in enumerate((0.005, 0.995)):
        with pytest.raises(Exception, match="experiments_allocation_check"):
            db.execute(ins, (f"out_{i}", allocation))


def test_0009_names_an_experiment_outside_the_bounds(db):
    migrate.down(db, target=8)
    db.execute("INSERT INTO experiments (account_id, experiment_id, allocation, applies_to, created_at, updated_at) "
               "VALUES ('a', 'hashtag_1', 0.001, 'post', now(), now())")
    with pytest.raises(MigrationError, match=r"outside \[0\.01, 0\.99\]: a/hashtag_1=0\.001"):
        migrate.up(db)
    db.execute("UPDATE experiments SET allocation = 0.2")
    assert 9 in [m.version for m in migrate.up(db)]
