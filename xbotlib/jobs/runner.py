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


def _failure(exc: Exception) -> str:
    """A failed run's ``error``: the exception and the last frames of its traceback (call inside ``except``)."""
    return f"{type(exc).__name__}: {exc}\n{traceback.format_exc(limit=5)}"


def _detail(result: JobResult) -> dict:
    """A finished run's ``detail``: the tick's detail with its reason, if it gave one."""
    return {**result.detail, "reason": result.reason} if result.reason else dict(result.detail)


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
            runs.fail_job_run(conn, run_id, ctx.clock.now(), _failure(exc))
        raise
    with ctx.db.autocommit() as conn:
        runs.finish_job_run(conn, run_id, result.status, ctx.clock.now(), _detail(result),
                           durable=result.status == "failed")
    return result


class TurnRecorder:
    """Runs a simulated daemon's turns — every job due at one instant, for every account — and records them as
    ``run_job`` records each tick, in fewer round trips: all of a turn's start records in one statement before its
    first tick; its ok/skipped ends held back and written in the next turn's start statement (``flush`` writes
    the last ones); a failed run closed at once, durably.

    Only for contexts on one ``SimClock`` (which no tick moves): then every start and end time is the one
    ``run_job`` would have written (each end is read when its tick ends), and the run ids come in the same order;
    one account's quiet post turn costs one round trip for its records instead of two, ten accounts' one instead
    of twenty. The cost: until the next turn (milliseconds of wall time, the simulated minutes to the next due
    entry) a turn's finished runs still show ``running``, and a crash leaves them so (the job queue closes such
    rows as failed)."""

    def __init__(self) -> None:
        self.unwritten: list[tuple[int, str, datetime, dict]] = []
        self._db = None

    def run(self, jobs: list[tuple[str, JobContext, Callable[[JobContext], JobResult]]],
            should_stop: Callable[[], bool] = lambda: False) -> list[JobResult | Exception]:
        """Run each (name, context, tick) of ``jobs`` in order; returns each tick's result or the exception it
        raised. ``should_stop()`` is asked before each tick: once it says yes, the ticks left are not run and
        their records are closed as ``skipped`` (reason ``stop_requested``): announced, never run."""
        if not jobs:
            return []
        clock, db = jobs[0][1].clock, jobs[0][1].db
        if not isinstance(clock, SimClock) or any(c.clock is not clock or c.db is not db for _n, c, _t in jobs):
            raise ValueError("a turn (TurnRecorder, run_jobs_together) needs contexts sharing one SimClock and one "
                             "Database (a real clock moves during a tick: use run_job for each)")
        if self._db is not None and db is not self._db:
            self.flush()
        self._db = db
        with db.autocommit() as conn:
            run_ids = runs.start_job_runs(conn, [(c.account_id, name) for name, c, _t in jobs], clock.now(),
                                          durable=False, finish_first=self.unwritten)
        self.unwritten = []
        results: list[JobResult | Exception] = []
        for (_name, ctx, tick), run_id in zip(jobs, run_ids):
            if should_stop():
                result = JobResult.skipped("stop_requested")
                self.unwritten.append((run_id, result.status, clock.now(), {"reason": result.reason}))
                results.append(result)
                continue
            try:
                result = tick(ctx)
            except Exception as exc:
                with db.autocommit() as conn:
                    runs.fail_job_run(conn, run_id, clock.now(), _failure(exc))
                results.append(exc)
                continue
            detail = _detail(result)
            if result.status == "failed":  # never held back: written now and durably
                with db.autocommit() as conn:
                    runs.finish_job_run(conn, run_id, result.status, clock.now(), detail, durable=True)
            else:
                self.unwritten.append((run_id, result.status, clock.now(), detail))
            results.append(result)
        return results

    def flush(self) -> None:
        """Write the ends still held back (call when the loop ends, however it ends)."""
        if self.unwritten and self._db is not None:
            with self._db.autocommit() as conn:
                runs.finish_job_runs(conn, self.unwritten, durable=False)
        self.unwritten = []


def run_jobs_together(jobs: list[tuple[str, JobContext, Callable[[JobContext], JobResult]]],
                      should_stop: Callable[[], bool] = lambda: False) -> list[JobResult | Exception]:
    """One ``TurnRecorder`` turn with its ends written at once: ``jobs`` run in order, recorded as ``run_job``
    records them, in two round trips for the records of all of them."""
    recorder = TurnRecorder()
    try:
        return recorder.run(jobs, should_stop)
    finally:
        recorder.flush()
