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


def run_job_for_accounts(name: str, ctxs: list[JobContext], tick: Callable[[JobContext], JobResult]
                         ) -> list[JobResult | Exception]:
    """One tick of job ``name`` for each context, in order, recorded as ``run_job`` records them but with the
    start records of all of them in one statement before the first tick and the ok/skipped ends in one after
    the last (a failed run is closed at once, durably). Returns each tick's result or the exception it raised.

    Only for contexts on one ``SimClock`` (the simulated campaign's daemon), which no tick moves: then every
    start and end time is the one ``run_job`` would have written (each end is read when its tick ends). With ten accounts this turns 20 round
    trips per job and turn into 2. The cost: a crash part-way leaves the not-yet-run ticks as ``running``."""
    if not ctxs:
        return []
    clock, db = ctxs[0].clock, ctxs[0].db
    if not isinstance(clock, SimClock) or any(c.clock is not clock or c.db is not db for c in ctxs):
        raise ValueError("run_job_for_accounts needs contexts sharing one SimClock and one Database "
                         "(a real clock moves during a tick: use run_job for each)")
    started = clock.now()
    with db.autocommit() as conn:
        run_ids = runs.start_job_runs(conn, [c.account_id for c in ctxs], name, started, durable=False)
    results: list[JobResult | Exception] = []
    finished = []
    for ctx, run_id in zip(ctxs, run_ids):
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
