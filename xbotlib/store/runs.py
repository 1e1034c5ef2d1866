"""Runs of jobs and notebooks (tables ``job_runs`` and ``notebook_runs``): every tick and every report
leaves a record, the failed ones included."""
from __future__ import annotations

import json
import re
from datetime import datetime
from typing import Any, Mapping


# ----------------------------------------------------------------------------- job_runs

# A job run's start and its ok/skipped end are the run *log*, not data the bot acts on: they may commit
# without waiting for the WAL flush (``synchronous_commit`` off for that one statement's transaction, via
# ``set_config(..., true)``, which ends with it). A PostgreSQL crash may then lose the last few milliseconds of
# run records — never a post or an outcome (those commit synchronously, and a synchronous commit flushes every
# earlier record with it) and never a failed run's record (``fail_job_run`` stays synchronous). A run whose end
# was lost stays ``running``; the job queue closes such rows as failed (``close_interrupted_runs``). On this
# machine the flush made each record ~5 ms instead of ~0.5 ms, at about 824 records a simulated day.
# the setting itself, also used for a sandbox's follower snapshots (store/outcomes.collection_start); kept here,
# not in store/db, so that the CLI's start-up, which imports this module, does not load psycopg
RELAXED_COMMIT_SQL = "set_config('synchronous_commit', 'off', true)"
_ASYNC_COMMIT = f"{RELAXED_COMMIT_SQL} IS NOT NULL"


def _check_own_transaction(conn, what: str) -> None:
    """The relaxed commit must cover the run record alone: refuse a connection inside a transaction, whose
    other writes (a post, an outcome) would lose their synchronous commit with it."""
    if not conn.autocommit:
        raise ValueError(f"{what} with durable=False needs an autocommit connection (Database.autocommit()), "
                         "so that its relaxed commit covers the run record alone; pass durable=True inside a "
                         "transaction")


def start_job_run(conn, account_id: str, job: str, started_at: datetime,
                  scheduled_for: datetime | None = None, *, durable: bool = True) -> int:
    """Record that a tick of ``job`` started (status ``running``); returns its ``run_id``.
    ``scheduled_for``: the schedule occurrence the job queue ran it for (None outside the queue).
    ``durable=False`` (autocommit connections only): commit without waiting for the WAL flush (see above)."""
    if not durable:
        _check_own_transaction(conn, "start_job_run")
    return conn.execute(
        "INSERT INTO job_runs (account_id, job, status, started_at, scheduled_for) "
        f"SELECT %s, %s, 'running', %s, %s {'' if durable else 'WHERE ' + _ASYNC_COMMIT} "
        "RETURNING run_id", (account_id, job, started_at, scheduled_for)).fetchone()["run_id"]


def finish_job_run(conn, run_id: int, status: str, finished_at: datetime, detail: Mapping[str, Any], *,
                   durable: bool = True) -> None:
    """Close a job run with its status (``ok``, ``skipped``; ``failed`` when a tick reports a failure without
    raising) and detail (values that are not JSON become strings). ``durable=False`` (autocommit connections
    only): commit without waiting for the WAL flush (see above) — refused for a failed run, whose record is
    never to be lost."""
    if not durable and status == "failed":
        raise ValueError("finish_job_run(status='failed') must commit durably (pass durable=True): a failed "
                         "run's record is never to be lost")
    if not durable:
        _check_own_transaction(conn, "finish_job_run")
    conn.execute("UPDATE job_runs SET status = %s, finished_at = %s, detail = %s WHERE run_id = %s"
                 + ("" if durable else " AND " + _ASYNC_COMMIT),
                 (status, finished_at, json.dumps(detail, default=str), run_id))


def record_job_runs(conn, finished: list[tuple[str, str, str, datetime, datetime, Mapping[str, Any], str | None]],
                    *, durable: bool = True) -> list[int]:
    """Runs that already ended, written whole in one statement (the simulated clock's daemon, ``TurnRecorder``):
    ``finished`` holds (account_id, job, status, started_at, finished_at, detail, error) in the order the runs
    ran; their run ids come back in that order, as one ``start_job_run`` after the other would number them.
    ``durable=False`` (autocommit connections only) is refused when a run is ``failed``: a failed run's record is
    never to be lost."""
    if not finished:
        return []
    statuses = [run[2] for run in finished]
    if not durable and "failed" in statuses:
        raise ValueError("record_job_runs: a 'failed' run must commit durably (pass durable=True): a failed "
                         "run's record is never to be lost")
    if not durable:
        _check_own_transaction(conn, "record_job_runs")
    # the runs travel as one JSON document (one text parameter, encoded by the json module in C), not as seven
    # arrays that psycopg would dump element by element in Python; each detail is the jsonb that
    # json.dumps(detail, default=str) gives, each time the text str() gives, read back as timestamptz
    rows = conn.execute(
        "INSERT INTO job_runs (account_id, job, status, started_at, finished_at, detail, error) "
        "SELECT r->>0, r->>1, r->>2, (r->>3)::timestamptz, (r->>4)::timestamptz, r->5, r->>6 "
        "  FROM jsonb_array_elements(%s::jsonb) WITH ORDINALITY AS t(r, ord) "
        f"{'' if durable else 'WHERE ' + _ASYNC_COMMIT} ORDER BY t.ord RETURNING run_id",
        (json.dumps([list(run) for run in finished], default=str),)).fetchall()
    return [r["run_id"] for r in rows]


def fail_job_run(conn, run_id: int, finished_at: datetime, error: str) -> None:
    """Close a job run as ``failed`` with the error text; always a synchronous commit (never lost)."""
    conn.execute("UPDATE job_runs SET status = 'failed', finished_at = %s, error = %s WHERE run_id = %s",
                 (finished_at, error, run_id))


def last_job_runs(conn, account_id: str, jobs: tuple[str, ...], until: datetime) -> list[dict]:
    """The last run started at or before ``until`` of each of ``jobs`` (in that order) for the account or
    for every account: job, status, started_at, finished_at, error (None for a job that never ran).

    Two probes per job on ``idx_job_runs_account_job_started`` (migration 0013), the account's newest run and the
    newest run of no account, the later one kept: ``account_id = a OR account_id IS NULL`` in one scan could only
    walk the job's runs of every account backwards until one matched, which grows with the other accounts' runs
    since this account's last one. The job names (checked) are written into the text, not sent as an array
    parameter: with the parameter PostgreSQL priced the generic plan above a custom one and planned the statement
    on every request."""
    bad = [j for j in jobs if not re.fullmatch(r"[a-z][a-z0-9_]*", j)]
    if bad:
        raise ValueError(f"job names must be lowercase identifiers, got {bad}")
    return conn.execute(
        f"""SELECT j.job, r.status, r.started_at, r.finished_at, r.error
             FROM unnest(ARRAY[{", ".join(f"'{j}'" for j in jobs)}]::text[]) WITH ORDINALITY AS j(job, ord)
             LEFT JOIN LATERAL (
                  SELECT * FROM ((SELECT status, started_at, finished_at, error FROM job_runs
                                   WHERE account_id = %(acc)s AND job = j.job AND started_at <= %(until)s
                                   ORDER BY started_at DESC LIMIT 1)
                                 UNION ALL
                                 (SELECT status, started_at, finished_at, error FROM job_runs
                                   WHERE account_id IS NULL AND job = j.job AND started_at <= %(until)s
                                   ORDER BY started_at DESC LIMIT 1)) both_
                   ORDER BY started_at DESC LIMIT 1) r ON true
            ORDER BY j.ord""", {"acc": account_id, "until": until}).fetchall()


# ----------------------------------------------------------------------------- job_runs of the job queue

def close_interrupted_runs(conn, account_id: str, job: str, now: datetime, error: str) -> list[int]:
    """Close as ``failed`` the ``running`` rows of ``job`` for the account, returning their run ids.

    Called only by the job queue under the tick's own lock, so no tick of this job and account is
    running: such a row is one whose worker was killed or lost the database before it could close it.
    """
    return [r["run_id"] for r in conn.execute(
        """UPDATE job_runs SET status = 'failed', finished_at = %s, error = %s
            WHERE account_id = %s AND job = %s AND status = 'running' RETURNING run_id""",
        (now, error, account_id, job)).fetchall()]


def last_scheduled_for(conn, account_id: str, job: str, before: datetime) -> datetime | None:
    """The latest schedule occurrence before ``before`` that has a row for this job and account."""
    return conn.execute(
        "SELECT max(scheduled_for) AS t FROM job_runs WHERE account_id = %s AND job = %s AND scheduled_for < %s",
        (account_id, job, before)).fetchone()["t"]


def record_missed_runs(conn, account_id: str, job: str, occurrences: list[datetime], error: str) -> int:
    """A ``missed`` row for each occurrence that has no row yet (started_at = finished_at = the
    occurrence); returns how many were written."""
    if not occurrences:
        return 0
    return conn.execute(
        """INSERT INTO job_runs (account_id, job, status, started_at, finished_at, scheduled_for, error)
           SELECT %s, %s, 'missed', t, t, t, %s FROM unnest(%s::timestamptz[]) AS t
            WHERE NOT EXISTS (SELECT 1 FROM job_runs r WHERE r.account_id = %s AND r.job = %s
                                                         AND r.scheduled_for = t)""",
        (account_id, job, error, list(occurrences), account_id, job)).rowcount


def record_failed_run(conn, account_id: str, job: str, started_at: datetime, finished_at: datetime,
                      scheduled_for: datetime | None, error: str) -> int:
    """Record after the fact a tick that failed while the database was unreachable: its own ``running`` row
    (same job, account and occurrence) becomes ``failed`` if it got one, else a ``failed`` row is added.
    Returns the run id."""
    row = conn.execute(
        """UPDATE job_runs SET status = 'failed', finished_at = %s, error = %s
            WHERE run_id = (SELECT max(run_id) FROM job_runs WHERE account_id = %s AND job = %s
                              AND scheduled_for = %s AND status = 'running')
           RETURNING run_id""", (finished_at, error, account_id, job, scheduled_for)).fetchone()
    if row is not None:
        return row["run_id"]
    return conn.execute(
        """INSERT INTO job_runs (account_id, job, status, started_at, finished_at, scheduled_for, error)
           VALUES (%s, %s, 'failed', %s, %s, %s, %s) RETURNING run_id""",
        (account_id, job, started_at, finished_at, scheduled_for, error)).fetchone()["run_id"]


def runs_of_job(conn, job: str) -> list[dict]:
    """Every run of ``job`` (all accounts), in the order they were written."""
    return conn.execute("SELECT run_id, account_id, job, status, started_at, finished_at, scheduled_for, error "
                        "FROM job_runs WHERE job = %s ORDER BY run_id", (job,)).fetchall()


def overlapping_runs(conn, job: str) -> list[dict]:
    """Pairs of runs of ``job`` for one account whose [started_at, finished_at] intervals overlap
    (an open run counts as still running): rows account_id, run_a, run_b. The job queue's locks
    promise none for any job."""
    return conn.execute(
        """SELECT a.account_id, a.run_id AS run_a, b.run_id AS run_b
             FROM job_runs a JOIN job_runs b
               ON a.account_id = b.account_id AND a.job = b.job AND a.run_id < b.run_id
            WHERE a.job = %s AND a.status <> 'missed' AND b.status <> 'missed'
              AND a.started_at < coalesce(b.finished_at, 'infinity')
              AND b.started_at < coalesce(a.finished_at, 'infinity')
            ORDER BY 1, 2, 3""", (job,)).fetchall()


# ----------------------------------------------------------------------------- notebook_runs

def start_notebook_run(conn, notebook: str, parameters: Mapping[str, Any], started_at: datetime,
                       output_path: str, html_path: str) -> int:
    """Record that a run of ``notebook`` started (status ``running``) and where its files will be;
    returns its ``run_id``. Raises psycopg's ``UndefinedTable`` on a database that was never migrated."""
    return int(conn.execute(
        "INSERT INTO notebook_runs (notebook, parameters, status, started_at, output_path, html_path) "
        "VALUES (%s, %s::jsonb, 'running', %s, %s, %s) RETURNING run_id",
        (notebook, json.dumps(parameters), started_at, output_path, html_path)).fetchone()["run_id"])


def finish_notebook_run(conn, run_id: int, status: str, finished_at: datetime, error: str | None) -> None:
    """Close a notebook run as ``ok`` or ``failed`` (with the error text)."""
    conn.execute("UPDATE notebook_runs SET status = %s, finished_at = %s, error = %s WHERE run_id = %s",
                 (status, finished_at, error, run_id))


def notebook_runs_by_status(conn) -> list[dict[str, Any]]:
    """How many notebook runs ended in each status: rows ``{status, runs}``, by status."""
    return conn.execute("SELECT status, count(*) AS runs FROM notebook_runs GROUP BY status ORDER BY status").fetchall()


def count_job_runs(conn, account_id: str) -> int:
    """Job ticks recorded for the account, whatever their status."""
    return int(conn.execute("SELECT count(*) AS n FROM job_runs WHERE account_id = %s", (account_id,)).fetchone()["n"])
