"""The admin API's cheap reads (issue #19) give the figures the full computations give.

- the growth model is fitted once per change of its data, and what is served equals a fresh fit, before
  and after a new outcome, a changed outcome and a new follower snapshot;
- ``experiment_arm_counts`` (kept by a trigger) equals a count of the assignments after inserts,
  COPY, an update and a delete;
- the rewritten reads (outcomes by world, open queue depth, default account) equal the queries they replace;
- every read of a route over history tables is served by an index: with sequential scans priced out
  (``enable_seqscan = off``) Postgres still counts no sequential scan of them;
- the count of fresh outcomes reads the account's fresh outcomes only, also where the planner prices the table
  as not yet vacuumed.
"""
from __future__ import annotations

import uuid
from datetime import timedelta

import pytest

from xbotlib import views
from xbotlib.devtools.seed_history import HistorySpec, seed_history
from xbotlib.store import queue, read_models, worlds
from xbotlib.store.db import Database
from xbotlib.views.learning import GROWTH_MODELS, fit_growth_model_view
from helpers import API_ACCOUNT, admin_client, seed_api_history

ACC = API_ACCOUNT
HISTORY_TABLES = ("outcomes", "content_metadata", "posted_decisions", "follower_snapshots",
                  "experiment_assignments", "job_runs", "llm_ledger", "gate_rejections", "predictors")


@pytest.fixture
def seeded(db, clock):
    return seed_api_history(db, clock)


@pytest.fixture
def client(settings, seeded, clock):
    return admin_client(settings, seeded, clock)


def served_growth_model(client, world="sandbox") -> dict:
    r = client.get("/api/learning/status", params={"account_id": ACC, "world": world})
    assert r.status_code == 200, r.text
    return r.json()["growth_model"]


def fresh_fit(db, settings, now, world="sandbox") -> dict:
    with db.connection() as conn:
        return fit_growth_model_view(conn, settings, ACC, world, now).model_dump(mode="json")


def latest_pass2(db) -> dict:
    return db.execute("""SELECT o.outcome_id, o.decision_id, o.follows FROM outcomes o
                          JOIN content_metadata cm USING (decision_id)
                         WHERE o.account_id = %s AND o.collected_pass = 2 AND cm.decision_type = 'post'
                           AND cm.timing_arm IS NOT NULL ORDER BY o.collected_at DESC LIMIT 1""", (ACC,))[0]


def test_the_growth_model_is_fitted_once_per_change_and_always_equals_a_fresh_fit(client, seeded, settings, clock):
    now = clock.now()
    first = served_growth_model(client)
    assert first["posts"] > 0 and first == fresh_fit(seeded, settings, now)
    fits = GROWTH_MODELS.fits
    for _ in range(3):
        assert served_growth_model(client) == first
    assert GROWTH_MODELS.fits == fits  # unchanged data: no refit per request

    # an outcome changes (a late collection raising follows): refitted, equal to a fresh fit, different
    row = latest_pass2(seeded)
    seeded.execute("UPDATE outcomes SET follows = follows + 40 WHERE outcome_id = %s", (row["outcome_id"],))
    changed = served_growth_model(client)
    assert GROWTH_MODELS.fits == fits + 1
    assert changed == fresh_fit(seeded, settings, now) and changed != first

    # a follower snapshot written late, inside the window: refitted (a post's follower count is the snapshot
    # before it)
    seeded.execute("INSERT INTO follower_snapshots (account_id, taken_at, followers_count, simulated) "
                   "VALUES (%s, %s, 99999, true)", (ACC, now - timedelta(days=5, seconds=1)))
    assert served_growth_model(client) == fresh_fit(seeded, settings, now)
    assert GROWTH_MODELS.fits == fits + 2

    # the other world and another account have their own entries
    assert served_growth_model(client, "live") == fresh_fit(seeded, settings, now, "live")


def test_the_growth_model_window_moves_with_now(seeded, settings, clock):
    """A later 'now' drops the oldest posts from the window: the fingerprint changes with it."""
    with seeded.connection() as conn:
        now = clock.now()
        at_now = views.growth_model_view(conn, settings, ACC, "sandbox", now)
        later = now + timedelta(days=70)  # the 90-day window then starts 20 days in
        at_later = views.growth_model_view(conn, settings, ACC, "sandbox", later)
        assert at_later.model_dump() == fit_growth_model_view(conn, settings, ACC, "sandbox", later).model_dump()
        assert at_later.posts < at_now.posts


def assignment_counts(db) -> dict:
    direct = {(r["account_id"], r["experiment_id"], r["arm"]): (r["n"], r["last"]) for r in db.execute(
        "SELECT account_id, experiment_id, arm, count(*) AS n, max(assigned_at) AS last "
        "FROM experiment_assignments GROUP BY 1, 2, 3")}
    kept = {(r["account_id"], r["experiment_id"], r["arm"]): (r["n"], r["last_assigned_at"]) for r in db.execute(
        "SELECT * FROM experiment_arm_counts WHERE n > 0")}
    return {"direct": direct, "kept": kept}


def test_experiment_arm_counts_follow_every_write_of_the_assignments(seeded, clock):
    counts = assignment_counts(seeded)  # seeded by COPY: the statement trigger saw it
    assert counts["kept"] == counts["direct"] and counts["direct"]
    decision = seeded.execute("SELECT decision_id FROM content_metadata WHERE account_id = %s LIMIT 1", (ACC,))[0]
    seeded.execute("INSERT INTO experiment_assignments (account_id, experiment_id, decision_id, arm, propensity, "
                   "assigned_at) VALUES (%s, 'brand_new', %s, 'treatment', 0.5, %s)",
                   (ACC, decision["decision_id"], clock.now() + timedelta(hours=1)))
    seeded.execute("UPDATE experiment_assignments SET arm = 'control' WHERE experiment_id = 'hashtag_1' "
                   "AND account_id = %s AND assignment_id IN (SELECT assignment_id FROM experiment_assignments "
                   "WHERE experiment_id = 'hashtag_1' AND arm = 'treatment' LIMIT 3)", (ACC,))
    seeded.execute("DELETE FROM experiment_assignments WHERE assignment_id IN (SELECT max(assignment_id) "
                   "FROM experiment_assignments WHERE account_id = 'neighbour' GROUP BY experiment_id)")
    counts = assignment_counts(seeded)
    assert counts["kept"] == counts["direct"]
    assert counts["direct"][(ACC, "brand_new", "treatment")][0] == 1


def test_rewritten_reads_equal_the_queries_they_replace(seeded, settings, clock):
    now = clock.now()
    with seeded.connection() as conn:
        joined = conn.execute(
            """SELECT coalesce(p.world, 'unknown') AS world, count(*) AS outcomes,
                      count(*) FILTER (WHERE NOT o.simulated) AS real, count(*) FILTER (WHERE o.simulated) AS simulated
                 FROM outcomes o LEFT JOIN posted_decisions p ON p.decision_id = o.decision_id
                WHERE o.account_id = %s AND o.collected_at > %s AND o.collected_at <= %s
                GROUP BY 1 ORDER BY 1""", (ACC, now - timedelta(days=90), now)).fetchall()
        assert worlds.outcomes_by_world(conn, ACC, now - timedelta(days=90), now) == joined
        open_statuses = views.QUEUE_STATUSES
        full = queue.queue_depth(conn, ACC)
        assert read_models.open_queue_depth(conn, ACC, open_statuses) == {s: full[s] for s in open_statuses}
        assert views.default_account(conn, ACC) == ACC
        assert views.default_account(conn, "not-stored") == ACC  # the busiest account, as before


def seq_scans(db: Database) -> dict[str, int]:
    with db.connection() as conn:
        conn.execute("SELECT pg_stat_force_next_flush()")  # this backend's counts are read below
        conn.commit()
        conn.execute("SELECT pg_stat_clear_snapshot()")
        rows = conn.execute("SELECT relname, seq_scan FROM pg_stat_user_tables WHERE relname = ANY(%s)",
                            (list(HISTORY_TABLES),)).fetchall()
        conn.commit()
    return {r["relname"]: r["seq_scan"] for r in rows}


def test_every_route_reads_history_tables_by_index(db_url, seeded, settings, clock):
    """Priced out, a sequential scan still happens where no index can serve a read: none may."""
    name = seeded.execute("SELECT current_database() AS d")[0]["d"]
    seeded.execute(f'ALTER DATABASE "{name}" SET enable_seqscan = off')
    with Database.from_url(db_url, pool_max=1) as one:  # one backend: the counts it flushes are its own
        client = admin_client(settings, one, clock)
        paths = ["/api/learning/status", "/api/growth", "/api/metrics", "/metrics", "/api/experiments"]
        for path in paths:  # warm-up, and the growth model is fitted once (the fit's own reads are not per request)
            assert client.get(path, params={"account_id": ACC}).status_code == 200
        before = seq_scans(one)
        for path in paths:
            for world in ("sandbox", "live"):
                assert client.get(path, params={"account_id": ACC, "world": world}).status_code == 200
        after = seq_scans(one)
    assert {t: after[t] - before[t] for t in HISTORY_TABLES if after[t] != before[t]} == {}


def test_a_write_outside_the_models_inputs_does_not_refit_it(seeded, settings, clock):
    """Writes that do not touch the model's inputs (a planned draft, older than the world's latest event so
    the sandbox's 'now' stays put) do not refit it."""
    client = admin_client(settings, seeded, clock)
    served_growth_model(client)
    fits = GROWTH_MODELS.fits
    seeded.execute("INSERT INTO content_metadata (decision_id, account_id, content, content_hash, generation_source, "
                   "created_at, updated_at) VALUES (%s, %s, 'draft', 'h', 'template', %s, %s)",
                   (uuid.uuid4(), ACC, clock.now() - timedelta(days=1), clock.now() - timedelta(days=1)))
    served_growth_model(client)
    assert GROWTH_MODELS.fits == fits


def outcome_index_reads(db: Database) -> dict[str, int]:
    with db.connection() as conn:
        conn.execute("SELECT pg_stat_force_next_flush()")  # this backend's counts are read below
        conn.commit()
        conn.execute("SELECT pg_stat_clear_snapshot()")
        rows = conn.execute("SELECT indexrelname, idx_tup_read FROM pg_stat_user_indexes "
                            "WHERE relname = 'outcomes'").fetchall()
        conn.commit()
    return {r["indexrelname"]: r["idx_tup_read"] for r in rows}


def test_the_fresh_outcome_count_reads_only_the_accounts_new_outcomes(db_url, seeded, settings, clock):
    """The learning status counts the pass-2 outcomes newer than the active model's ``trained_through``. Where the
    table's pages are not yet all-visible (freshly written, before autovacuum; here: index-only scans priced out,
    which is how the planner sees such a table), ``outcome_id > t`` was served from ``outcomes_pkey``: every
    account's outcomes newer than ``t``, read and thrown away, a cost that grows with the other accounts' history.
    Served from ``idx_outcomes_fresh``, it reads the account's fresh outcomes and nothing else."""
    seed_history(seeded, HistorySpec("late-neighbour", clock.now(), days=30, seed=13, job_runs=False))
    name = seeded.execute("SELECT current_database() AS d")[0]["d"]
    seeded.execute(f'ALTER DATABASE "{name}" SET enable_indexonlyscan = off')
    with Database.from_url(db_url, pool_max=1) as one:  # one backend: the counts it flushes are its own
        with one.connection() as conn:
            expected = {world: read_models.last_version_and_fresh(conn, ACC, world)[1] for world in ("sandbox", "live")}
        assert expected["sandbox"] > 0  # the seed leaves outcomes newer than the last model
        before = outcome_index_reads(one)
        with one.connection() as conn:
            for world in ("sandbox", "live"):
                read_models.last_version_and_fresh(conn, ACC, world)
        after = outcome_index_reads(one)
    read = {index: after[index] - before[index] for index in after if after[index] != before[index]}
    assert read == {"idx_outcomes_fresh": sum(expected.values())}
