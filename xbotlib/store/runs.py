"""Runs of jobs and notebooks (tables ``job_runs`` and ``notebook_runs``): every tick and every report
leaves a record, the failed ones included."""
from __future__ import annotations

import json
from datetime import datetime
from typing import Any, Mapping


# ----------------------------------------------------------------------------- job_runs

def start_job_run(conn, account_id: str, job: str, started_at: datetime) -> int:
    """Record that a tick of ``job`` started (status ``running``); returns its ``run_id``."""
    return conn.execute(
        "INSERT INTO job_runs (account_id, job, status, started_at) VALUES (%s, %s, 'running', %s) RETURNING run_id",
        (account_id, job, started_at)).fetchone()["run_id"]


def finish_job_run(conn, run_id: int, status: str, finished_at: datetime, detail: Mapping[str, Any]) -> None:
    """Close a job run as ``ok`` or ``skipped`` with its detail (values that are not JSON become strings)."""
    conn.execute("UPDATE job_runs SET status = %s, finished_at = %s, detail = %s WHERE run_id = %s",
                 (status, finished_at, json.dumps(detail, default=str), run_id))


def fail_job_run(conn, run_id: int, finished_at: datetime, error: str) -> None:
    """Close a job run as ``failed`` with the error text."""
    conn.execute("UPDATE job_runs SET status = 'failed', finished_at = %s, error = %s WHERE run_id = %s",
                 (finished_at, error, run_id))


def last_job_runs(conn, account_id: str, jobs: tuple[str, ...], until: datetime) -> list[dict]:
    """The last run started at or before ``until`` of each of ``jobs`` (in that order) for the account or
    for every account: job, status, started_at, finished_at, error (None for a job that never ran)."""
    return conn.execute(
        """SELECT j.job, r.status, r.started_at, r.finished_at, r.error
             FROM unnest(%s::text[]) WITH ORDINALITY AS j(job, ord)
             LEFT JOIN LATERAL (
                  SELECT status, started_at, finished_at, error FROM job_runs
                   WHERE job = j.job AND (account_id = %s OR account_id IS NULL) AND started_at <= %s
                   ORDER BY started_at DESC LIMIT 1) r ON true
            ORDER BY j.ord""", (list(jobs), account_id, until)).fetchall()


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
