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
    """A failed run's ``error``: the exception and the first frames of its traceback (from where it was caught; what
    ``traceback.format_exc`` gives inside the ``except``, also for an exception a ``tick_many`` handed back)."""
    return f"{type(exc).__name__}: {exc}\n{''.join(traceback.format_exception(exc, limit=5))}"


def _detail(result: JobResult) -> dict:
    """A finished run's ``detail``: the tick's detail with its reason, if it gave one."""
    return {**result.detail, "reason": result.reason} if result.reason else dict(result.detail)


def _run_record(name: str, ctx: JobContext, result: JobResult | Exception, started: datetime, ended: datetime
                ) -> tuple[str, str, str, datetime, datetime, dict, str | None]:
    """An ended run's ``runs.record_job_runs`` row: its result's status and detail, or ``failed`` with the error."""
    if isinstance(result, Exception):
        return ctx.account_id, name, "failed", started, ended, {}, _failure(result)
    return ctx.account_id, name, result.status, started, ended, _detail(result), None


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
    """Runs a simulated daemon's turns — every job due at one instant, for every account — and records each run as
    ``run_job`` records it, in far fewer round trips: a run's record is written whole once the run has ended
    (status, start, end, detail), the ok/skipped ones held back and written together, ``batch`` runs per statement
    (``flush`` writes what is left); a failed run is written at once and durably, with the runs held back before
    it, so the records keep the order the runs ran in and their run ids are the ones ``run_job`` would give.

    Only for contexts on one ``SimClock`` (which no tick moves): then every start and end time is the one
    ``run_job`` would have written (each end is read when its tick ends). A quiet post turn costs no round trip for
    its record instead of one to two (a simulated day is ~290 turns at the production cadence). The cost: while a
    campaign runs, its last runs (at most ``batch - 1``, hours of simulated time) are not yet in ``job_runs``, and a
    crash loses them; a simulated campaign has nobody reading them meanwhile (the notebooks it runs are given the
    records first: the daemon flushes before each). If the records cannot be written (the database away) they stay
    held and go with the next write; the ticks go on as before."""

    BATCH = 64

    def __init__(self, batch: int = BATCH) -> None:
        if batch < 1:
            raise ValueError(f"TurnRecorder(batch={batch}): at least 1 run per statement")
        self.batch = batch
        self.unwritten: list[tuple[str, str, str, datetime, datetime, dict, str | None]] = []
        self._looked_at, self._failed_seen = 0, False   # write_if_due's: runs looked at, a failed one among them
        self._db = None

    def run(self, jobs: list[tuple[str, JobContext, Callable[[JobContext], JobResult]]],
            should_stop: Callable[[], bool] = lambda: False) -> list[JobResult | Exception]:
        """Run each (name, context, tick) of ``jobs`` in order; returns each tick's result or the exception it
        raised. ``should_stop()`` is asked before each tick: once it says yes, the ticks left are not run and
        their records are closed as ``skipped`` (reason ``stop_requested``): announced, never run.
        Writes nothing: the caller writes with ``write_if_due`` (at once after a failed run, else every ``batch``
        runs) and ``flush``."""
        if not jobs:
            return []
        self._check_turn(jobs)
        clock = jobs[0][1].clock
        results: list[JobResult | Exception] = []
        for name, ctx, tick in jobs:
            started = clock.now()
            result: JobResult | Exception
            if should_stop():
                result = JobResult.skipped("stop_requested")
            else:
                try:
                    result = tick(ctx)
                except Exception as exc:
                    result = exc
            self.unwritten.append(_run_record(name, ctx, result, started, clock.now()))
            results.append(result)
        return results

    def run_many(self, name: str, contexts: list[JobContext],
                 tick_many: Callable[[list[JobContext]], list[JobResult | Exception]],
                 should_stop: Callable[[], bool] = lambda: False) -> list[JobResult | Exception]:
        """One job for several contexts at once — ``tick_many(contexts)`` gives each context's result or exception, in
        order (``collect.tick_many``, ``post.tick_many``: reads shared across the accounts) — recorded as ``run``
        records the same ticks one by one: a run per context, in that order, with the same start and end (the clock
        stands still). ``should_stop()`` is asked once, before: a stop requested while the ticks run lets them finish
        (as a stop lets the current tick finish); asked before, none runs and each is closed as ``skipped``."""
        if not contexts:
            return []
        self._check_turn([(name, c, None) for c in contexts])
        clock = contexts[0].clock
        started = clock.now()
        if should_stop():
            results: list[JobResult | Exception] = [JobResult.skipped("stop_requested") for _ in contexts]
        else:
            try:
                results = list(tick_many(contexts))
            except Exception as exc:  # the shared part failed: each tick fails with it
                results = [exc] * len(contexts)
            if len(results) != len(contexts):
                raise ValueError(f"{name}: tick_many gave {len(results)} results for {len(contexts)} contexts")
        ended = clock.now()
        self.unwritten += [_run_record(name, ctx, result, started, ended) for ctx, result in zip(contexts, results)]
        return results

    def _check_turn(self, jobs: list) -> None:
        """The turn's contexts share one SimClock and one Database; runs held for another database are written first."""
        clock, db = jobs[0][1].clock, jobs[0][1].db
        if not isinstance(clock, SimClock) or any(c.clock is not clock or c.db is not db for _n, c, _t in jobs):
            raise ValueError("a turn (TurnRecorder, run_jobs_together) needs contexts sharing one SimClock and one "
                             "Database (a real clock moves during a tick: use run_job for each)")
        if self._db is not None and db is not self._db:
            self.flush()
        self._db = db

    def write_if_due(self) -> None:
        """Write the held runs when a failed run is among them (its record at once) or ``batch`` have gathered.
        When the write fails they stay held (and the error is raised): the next write takes them. Only the runs
        held since the last call are looked at (this runs every turn; a failed one seen before is remembered)."""
        self._failed_seen = self._failed_seen or self._failed_held(self.unwritten[self._looked_at:])
        self._looked_at = len(self.unwritten)
        if self._failed_seen or len(self.unwritten) >= self.batch:
            self.flush()

    def _failed_held(self, held: list | None = None) -> bool:
        """A failed run is among the held ones (or among ``held``): they are written at once, durably."""
        return any(run[2] == "failed" for run in (self.unwritten if held is None else held))

    def flush(self) -> None:
        """Write the runs still held back (call before anything reads ``job_runs`` and when the loop ends): one
        statement, durable when a failed run is among them."""
        if self.unwritten and self._db is not None:
            with self._db.autocommit() as conn:
                runs.record_job_runs(conn, self.unwritten, durable=self._failed_held())
        self.unwritten = []
        self._looked_at, self._failed_seen = 0, False


def run_jobs_together(jobs: list[tuple[str, JobContext, Callable[[JobContext], JobResult]]],
                      should_stop: Callable[[], bool] = lambda: False) -> list[JobResult | Exception]:
    """One ``TurnRecorder`` turn with its records written at once: ``jobs`` run in order, recorded as ``run_job``
    records them, in one round trip for the records of all of them."""
    recorder = TurnRecorder()
    try:
        return recorder.run(jobs, should_stop)
    finally:
        recorder.flush()
