"""Running one job tick and recording it in ``job_runs`` (running -> ok | skipped | failed), so every run
leaves an honest record, including the failed ones.

Each record is one statement on an autocommit connection (one round trip, not BEGIN … COMMIT's three):
the daemon runs about 400 ticks a simulated day, so these two writes are a large part of a quiet tick. The
start and the ok/skipped end commit without waiting for the WAL flush (``durable=False``; why that is safe:
``xbotlib.store.runs``); a failed run's record always commits durably."""
from __future__ import annotations

import traceback
from datetime import datetime
from typing import Callable

from xbotlib.jobs.context import JobContext, JobResult
from xbotlib.store import runs


def run_job(name: str, ctx: JobContext, tick: Callable[[JobContext], JobResult],
            scheduled_for: datetime | None = None) -> JobResult:
    """Run one tick of job ``name`` and record it in ``job_runs`` (running -> ok|skipped|failed).
    ``scheduled_for``: the schedule occurrence the job queue runs it for (recorded with the run)."""
    started = ctx.clock.now()
    with ctx.db.autocommit() as conn:
        run_id = runs.start_job_run(conn, ctx.account_id, name, started, scheduled_for, durable=False)
    try:
        result = tick(ctx)
    except Exception as exc:
        with ctx.db.autocommit() as conn:
            runs.fail_job_run(conn, run_id, ctx.clock.now(),
                              f"{type(exc).__name__}: {exc}\n{traceback.format_exc(limit=5)}")
        raise
    detail = dict(result.detail)
    if result.reason:
        detail["reason"] = result.reason
    with ctx.db.autocommit() as conn:
        runs.finish_job_run(conn, run_id, result.status, ctx.clock.now(), detail,
                           durable=result.status == "failed")
    return result
