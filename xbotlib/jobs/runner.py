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

from xbotlib.clock import SimClock
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


def run_jobs_together(jobs: list[tuple[str, JobContext, Callable[[JobContext], JobResult]]],
                      should_stop: Callable[[], bool] = lambda: False) -> list[JobResult | Exception]:
    """Run each (name, context, tick) of ``jobs`` in order, recorded as ``run_job`` records them, but with all
    their start records in one statement before the first tick and their ok/skipped ends in one after the last
    (a failed run is closed at once, durably). Returns each tick's result or the exception it raised.

    Only for contexts on one ``SimClock`` (the simulated campaign's daemon, one turn of its loop), which no tick
    moves: then every start and end time is the one ``run_job`` would have written (each end is read when its
    tick ends), and the run ids come in the same order. Ten accounts' post ticks: 2 round trips, not 20. The
    cost: a crash part-way leaves the ticks not yet run as ``running`` (the job queue closes such rows).
    ``should_stop()`` is asked before each tick: once it says yes, the ticks left are not run and their records
    are closed as ``skipped`` (reason ``stop_requested``): they were announced but never ran."""
    if not jobs:
        return []
    clock, db = jobs[0][1].clock, jobs[0][1].db
    if not isinstance(clock, SimClock) or any(c.clock is not clock or c.db is not db for _n, c, _t in jobs):
        raise ValueError("run_jobs_together needs contexts sharing one SimClock and one Database "
                         "(a real clock moves during a tick: use run_job for each)")
    with db.autocommit() as conn:
        run_ids = runs.start_job_runs(conn, [(c.account_id, name) for name, c, _t in jobs], clock.now(),
                                      durable=False)
    results: list[JobResult | Exception] = []
    finished = []
    for (_name, ctx, tick), run_id in zip(jobs, run_ids):
        if should_stop():
            result = JobResult.skipped("stop_requested")
            finished.append((run_id, result.status, clock.now(), {"reason": result.reason}))
            results.append(result)
            continue
        try:
            result = tick(ctx)
        except Exception as exc:
            with db.autocommit() as conn:
                runs.fail_job_run(conn, run_id, clock.now(),
                                  f"{type(exc).__name__}: {exc}\n{traceback.format_exc(limit=5)}")
            results.append(exc)
            continue
        detail = dict(result.detail)
        if result.reason:
            detail["reason"] = result.reason
        if result.status == "failed":  # never held back: written now and durably
            with db.autocommit() as conn:
                runs.finish_job_run(conn, run_id, result.status, clock.now(), detail, durable=True)
        else:
            finished.append((run_id, result.status, clock.now(), detail))
        results.append(result)
    with db.autocommit() as conn:
        runs.finish_job_runs(conn, finished, durable=False)
    return results
