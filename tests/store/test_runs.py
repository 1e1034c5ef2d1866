"""Job-run records (``store/runs.py``) on the real database: the relaxed commit of a run's start and ok/skipped
end covers the run record alone and never a failed run, and the records read back the same either way."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from xbotlib.store import runs
from xbotlib.store.db import Database

T0 = datetime(2026, 3, 2, 8, 0, tzinfo=timezone.utc)


def test_relaxed_run_records_are_written_and_the_setting_does_not_outlive_them(db):
    with db.autocommit() as conn:
        run_id = runs.start_job_run(conn, "acct1", "post", T0, durable=False)
        # set_config(..., true) lasted for that statement's own transaction: the pooled connection is back
        # to synchronous commits for whatever it does next (a post, an outcome)
        assert conn.execute("SHOW synchronous_commit").fetchone()["synchronous_commit"] == "on"
        runs.finish_job_run(conn, run_id, "skipped", T0 + timedelta(seconds=1), {"reason": "nothing_due"},
                            durable=False)
        assert conn.execute("SHOW synchronous_commit").fetchone()["synchronous_commit"] == "on"
    with db.connection() as conn:  # another transaction sees both records committed
        [row] = runs.runs_of_job(conn, "post")
        detail = conn.execute("SELECT detail FROM job_runs WHERE run_id = %s", (run_id,)).fetchone()["detail"]
    assert (row["run_id"], row["status"], row["started_at"]) == (run_id, "skipped", T0)
    assert detail == {"reason": "nothing_due"}


def test_durable_and_relaxed_records_read_back_the_same(db):
    with db.autocommit() as conn:
        for durable, job in ((True, "plan"), (False, "collect")):
            run_id = runs.start_job_run(conn, "acct1", job, T0, T0, durable=durable)
            runs.finish_job_run(conn, run_id, "ok", T0 + timedelta(seconds=2), {"stored": 3}, durable=durable)
    with db.connection() as conn:
        rows = conn.execute("SELECT job, status, started_at, finished_at, scheduled_for, detail FROM job_runs "
                            "ORDER BY run_id").fetchall()
    assert [r["job"] for r in rows] == ["plan", "collect"]
    assert [{k: v for k, v in r.items() if k != "job"} for r in rows][0] == \
           [{k: v for k, v in r.items() if k != "job"} for r in rows][1]


def test_a_relaxed_commit_inside_a_transaction_is_refused_naming_the_fix(db):
    # inside BEGIN … COMMIT the relaxed setting would cover the transaction's other writes too
    with db.connection() as conn:
        with pytest.raises(ValueError, match=r"autocommit connection.*Database.autocommit\(\).*durable=True"):
            runs.start_job_run(conn, "acct1", "post", T0, durable=False)
        run_id = runs.start_job_run(conn, "acct1", "post", T0)  # durable: fine in a transaction
        with pytest.raises(ValueError, match="autocommit connection"):
            runs.finish_job_run(conn, run_id, "ok", T0, {}, durable=False)


def test_a_failed_run_is_never_recorded_with_the_relaxed_commit(db):
    with db.autocommit() as conn:
        run_id = runs.start_job_run(conn, "acct1", "post", T0, durable=False)
        with pytest.raises(ValueError, match=r"status='failed'.*durable=True"):
            runs.finish_job_run(conn, run_id, "failed", T0, {}, durable=False)
        runs.finish_job_run(conn, run_id, "failed", T0, {"error": "x"}, durable=True)
        assert runs.runs_of_job(conn, "post")[0]["status"] == "failed"


def test_ended_runs_are_written_whole_in_the_order_given_with_ids_in_that_order(db):
    t1, t2 = T0 + timedelta(seconds=1), T0 + timedelta(seconds=2)
    with db.autocommit() as conn:
        ids = runs.record_job_runs(conn, [("b", "post", "ok", T0, t1, {"sent": 1}, None),
                                          ("a", "post", "skipped", T0, t2, {"reason": "nothing_due"}, None),
                                          ("b", "collect", "ok", t2, t2, {}, None)], durable=False)
        assert conn.execute("SHOW synchronous_commit").fetchone()["synchronous_commit"] == "on"
        assert runs.record_job_runs(conn, [], durable=False) == []
        rows = conn.execute("SELECT run_id, account_id, job, status, started_at, finished_at, detail, error "
                            "FROM job_runs ORDER BY run_id").fetchall()
    assert ids == sorted(ids) == [r["run_id"] for r in rows]  # as one start after the other would number them
    assert [tuple(r.values())[1:] for r in rows] == [
        ("b", "post", "ok", T0, t1, {"sent": 1}, None), ("a", "post", "skipped", T0, t2, {"reason": "nothing_due"}, None),
        ("b", "collect", "ok", t2, t2, {}, None)]


def test_ended_runs_keep_every_value_exactly(db):
    """Times to the microsecond whatever their offset, a detail as json.dumps(detail, default=str) gives it (a time
    in it as its text, quotes, nesting), an error's text with its line breaks."""
    import json  # imported here: the expected detail is json's reading of it
    from datetime import timezone  # imported here: a time with another offset

    start = (T0 + timedelta(microseconds=123457)).astimezone(timezone(timedelta(hours=2)))
    detail = {"until": T0, "n": [1, 2.5, None], "text": "it's \"quoted\"\n", "nested": {"ok": True}}
    with db.autocommit() as conn:
        runs.record_job_runs(conn, [("c", "plan", "failed", start, start, detail, "RuntimeError: x\nTraceback …")])
        row = conn.execute("SELECT started_at, finished_at, detail, error FROM job_runs").fetchone()
    assert row == {"started_at": start, "finished_at": start, "detail": json.loads(json.dumps(detail, default=str)),
                   "error": "RuntimeError: x\nTraceback …"}


def test_ended_runs_refuse_a_relaxed_failed_run_and_a_relaxed_commit_inside_a_transaction(db):
    failed = [("a", "plan", "failed", T0, T0, {}, "RuntimeError: boom")]
    with db.autocommit() as conn:
        with pytest.raises(ValueError, match=r"'failed' run must commit durably \(pass durable=True\)"):
            runs.record_job_runs(conn, failed, durable=False)
        runs.record_job_runs(conn, failed, durable=True)
    with db.connection() as conn:
        with pytest.raises(ValueError, match=r"record_job_runs with durable=False needs an autocommit connection"):
            runs.record_job_runs(conn, [("a", "post", "ok", T0, T0, {}, None)], durable=False)
        conn.rollback()
        assert [(r["status"], r["error"]) for r in conn.execute("SELECT status, error FROM job_runs").fetchall()] == \
               [("failed", "RuntimeError: boom")]


def reference_last_runs(conn, account_id: str, jobs: tuple[str, ...], until: datetime) -> list[dict]:
    """What ``last_job_runs`` must answer, by its definition: every run of the job for the account or for no
    account, started at or before ``until``, the latest kept."""
    out = []
    for job in jobs:
        rows = conn.execute("SELECT status, started_at, finished_at, error FROM job_runs WHERE job = %s "
                            "AND (account_id = %s OR account_id IS NULL) AND started_at <= %s",
                            (job, account_id, until)).fetchall()
        latest = max(rows, key=lambda r: r["started_at"], default=None)
        out.append({"job": job, **(latest or dict.fromkeys(("status", "started_at", "finished_at", "error")))})
    return out


def job_run_index_reads(db) -> int:
    with db.connection() as conn:
        conn.execute("SELECT pg_stat_force_next_flush()")  # this backend's counts are read below
        conn.commit()
        conn.execute("SELECT pg_stat_clear_snapshot()")
        n = conn.execute("SELECT sum(idx_tup_read) AS n FROM pg_stat_user_indexes "
                         "WHERE relname = 'job_runs'").fetchone()["n"]
        conn.commit()
    return int(n)


def test_the_last_run_of_each_job_is_the_latest_of_the_account_or_of_no_account(db_url):
    """The account's own runs, runs of no account (account_id NULL) newer or older than them, a job that never
    ran, ``until`` before some runs; and the read grows neither with other accounts' runs (an account whose
    'learn' stopped long ago while another account kept running it) nor with the account's own (3,000 'collect'
    runs): a handful of index entries."""
    with Database.from_url(db_url, pool_max=1) as db:
        with db.connection() as conn:
            rows = [("acct1", "plan", T0 - timedelta(hours=5), "ok"), ("acct1", "plan", T0 - timedelta(hours=1), "failed"),
                    (None, "plan", T0 - timedelta(hours=2), "ok"), ("acct1", "post", T0 - timedelta(hours=3), "ok"),
                    (None, "post", T0 - timedelta(hours=2), "skipped"), (None, "collect", T0 + timedelta(hours=1), "ok"),
                    ("acct1", "learn", T0 - timedelta(days=30), "ok")]
            rows += [("acct2", "learn", T0 - timedelta(days=30) + timedelta(minutes=m), "ok") for m in range(1, 3000)]
            # and a long history of the account's own: the read must not grow with it either
            rows += [("acct1", "collect", T0 - timedelta(days=30) + timedelta(minutes=m), "ok") for m in range(1, 3000)]
            for acc, job, started, status in rows:
                conn.execute("INSERT INTO job_runs (account_id, job, started_at, finished_at, status) "
                             "VALUES (%s, %s, %s, %s, %s)", (acc, job, started, started + timedelta(seconds=5), status))
            conn.execute("ANALYZE job_runs")
        jobs = ("plan", "post", "collect", "learn", "report")
        with db.connection() as conn:
            for acc, until in (("acct1", T0), ("acct1", T0 + timedelta(hours=2)), ("acct1", T0 - timedelta(hours=4)),
                               ("acct2", T0), ("nobody", T0)):
                assert runs.last_job_runs(conn, acc, jobs, until) == reference_last_runs(conn, acc, jobs, until)
            got = runs.last_job_runs(conn, "acct1", jobs, T0)
        assert [(r["job"], r["status"]) for r in got] == [("plan", "failed"), ("post", "skipped"), ("collect", "ok"),
                                                           ("learn", "ok"), ("report", None)]
        before = job_run_index_reads(db)
        with db.connection() as conn:
            runs.last_job_runs(conn, "acct1", jobs, T0)
        assert job_run_index_reads(db) - before <= 2 * len(jobs)  # at most one entry per probe
