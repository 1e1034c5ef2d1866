"""Running one job tick and recording it in ``job_runs`` (running -> ok | skipped | failed), so every run
leaves an honest record, including the failed ones."""
from __future__ import annotations

import json
import traceback
from typing import Callable

from xbotlib.jobs.context import JobContext, JobResult


def run_job(name: str, ctx: JobContext, tick: Callable[[JobContext], JobResult]) -> JobResult:
    """Run one tick of job ``name`` and record it in ``job_runs`` (running -> ok|skipped|failed)."""
    started = ctx.clock.now()
    with ctx.db.connection() as conn:
        run_id = conn.execute(
            "INSERT INTO job_runs (account_id, job, status, started_at) VALUES (%s, %s, 'running', %s) RETURNING run_id",
            (ctx.account_id, name, started)).fetchone()["run_id"]
    try:
        result = tick(ctx)
    except Exception as exc:
        with ctx.db.connection() as conn:
            conn.execute("UPDATE job_runs SET status = 'failed', finished_at = %s, error = %s WHERE run_id = %s",
                         (ctx.clock.now(), f"{type(exc).__name__}: {exc}\n{traceback.format_exc(limit=5)}", run_id))
        raise
    detail = dict(result.detail)
    if result.reason:
        detail["reason"] = result.reason
    with ctx.db.connection() as conn:
        conn.execute("UPDATE job_runs SET status = %s, finished_at = %s, detail = %s WHERE run_id = %s",
                     (result.status, ctx.clock.now(), json.dumps(detail, default=str), run_id))
    return result
