"""The real-time path on a Postgres job queue (procrastinate): workers for every account, on any number
of machines sharing one PostgreSQL.

- **Ticks are jobs.** One procrastinate task, ``xbot.tick(account_id, job, timestamp)``, runs one tick of
  plan | post | collect | learn for one account through ``jobs.runner.run_job`` (so every tick still
  leaves a ``job_runs`` row, now with the schedule occurrence it ran for in ``scheduled_for``). Scheduled
  notebooks are ``xbot.notebook`` jobs on the same queue.
- **Queues.** Each job has its own queue (``plan``, ``post``, ``collect``, ``learn``, ``notebooks``) and each
  worker process serves them with separate procrastinate workers (``WorkerGroup``): a plan tick waiting
  30 s on the LLM holds a plan slot, never a post or collect slot.
- **Locks in the database.** A tick's job carries ``lock = "xbot:<job>:<account>"``: procrastinate does not
  start a job while another with its lock is ``doing``. The lock is the job row itself, so it survives a
  PostgreSQL restart (a session advisory lock does not). ``queueing_lock`` is the same string: at most one
  tick per job and account waits in the queue, so occurrences that pile up behind a slow tick collapse
  into one (the next tick records the skipped ones as ``missed``).
- **Stalled jobs.** A SIGKILLed worker leaves its job ``doing`` and stops heart-beating; the deferrer retries
  jobs whose worker has been silent for ``STALLED_AFTER_S`` (``recover_stalled``). A worker that cannot
  heart-beat for ``FENCE_AFTER_S`` while a tick runs exits at once (``Fence``): by the time anyone retries
  its job it is gone, so a retried tick never runs beside the original.
- **The deferrer** (``Deferrer``) defers, for every account in ``accounts`` and every job entry of
  ``schedules/``, the latest occurrence that has come (read on the injected clock), once: procrastinate's
  ``defer_periodic_job`` keys it by (periodic id, occurrence), so several deferrers (one per machine) defer
  each occurrence exactly once. New accounts are picked up within ``ACCOUNTS_REFRESH_S``.
- **Failing well.** With the database down, a tick fails within ``store.db``'s connect and pool timeouts
  (seconds); its failure is kept in memory (``Spool``) and written to ``job_runs`` by the next tick that
  reaches the database. Occurrences no tick ran for are written as ``missed`` by the next tick of that job
  and account; ``running`` rows left by a killed worker are closed as ``failed``. Workers whose database
  went away restart their procrastinate workers with backoff until it is back.

The simulated-clock paths (demo, benches, ``jobs.campaign``) keep driving the jobs directly
(``jobs.daemon``); this module is the real-time path of ``xbot run`` and ``xbot worker``.

Size: over 400 lines because the queue's parts (tasks, worker group, fence, deferrer, stalled recovery, the
supervisor of worker processes) share its constants and its promises; split, each would restate them.
"""
from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import os
import signal
import subprocess
import threading
import time
import zlib
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Callable

import procrastinate
import psycopg
import psycopg_pool
from procrastinate import exceptions as pq_exceptions
from procrastinate import jobs as pq_jobs
from procrastinate import manager as pq_manager
from procrastinate.retry import RetryStrategy
from procrastinate.worker import Worker

from xbotlib.clock import Clock
from xbotlib.jobs import collect, learn, plan, post, schedules
from xbotlib.jobs.runner import run_job
from xbotlib.logs import tagged
from xbotlib.store import accounts, locks, runs
from xbotlib.store.db import ACQUIRE_TIMEOUT_S, CONNECT_TIMEOUT_S, Database

log = logging.getLogger("xbot.worker")

TICK_TASK = "xbot.tick"
NOTEBOOK_TASK = "xbot.notebook"
TICKS: dict[str, Callable] = {"plan": plan.tick, "post": post.tick, "collect": collect.tick, "learn": learn.tick}
NOTEBOOK_QUEUE = "notebooks"
# The default worker group of one process: (queues, concurrent jobs). Plan is LLM-bound and slow, post and
# collect are short and due at a time; learn and notebooks are rare and heavy.
DEFAULT_GROUPS: tuple[tuple[tuple[str, ...], int], ...] = (
    (("plan",), 2), (("post",), 2), (("collect",), 2), (("learn", NOTEBOOK_QUEUE), 1))
HEARTBEAT_S = 2.0        # a worker's heartbeat period
FENCE_AFTER_S = 10.0     # no heartbeat this long while a tick runs: the worker process exits (Fence)
STALLED_AFTER_S = 20.0   # a job whose worker is silent this long is retried (> FENCE_AFTER_S + HEARTBEAT_S)
POLL_S = 1.0             # a worker looks for jobs this often besides LISTEN/NOTIFY (notifications die
                         # with a PostgreSQL restart until the worker reconnects)
ACCOUNTS_REFRESH_S = 10.0
RECOVER_EVERY_S = 5.0
DB_ERRORS = (psycopg.OperationalError, psycopg_pool.PoolTimeout, pq_exceptions.ConnectorException)
# a tick whose database went away is retried by the queue, later, with backoff (2 s, 4 s)
TICK_RETRY = RetryStrategy(max_attempts=3, exponential_wait=2, retry_exceptions={*DB_ERRORS})


def tick_lock(job: str, account_id: str) -> str:
    """The lock (and queueing lock) of a tick: one tick of a job per account at a time, and one waiting."""
    return f"xbot:{job}:{account_id}"


def notebook_lock(entry: schedules.ScheduleEntry) -> str:
    return f"xbot:notebook:{entry.key}"


def _error_text(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {' '.join(str(exc).split())[:500]}"


def _kv(text: str) -> str:
    """A log value without spaces (the log lines are key=value)."""
    return "_".join(str(text).split())[:200]


# ----------------------------------------------------------------------------- the app and its tasks

class FencedJobManager(pq_manager.JobManager):
    """procrastinate's job manager, remembering when this process last heart-beat (``Fence`` reads it)."""

    def __init__(self, connector):
        super().__init__(connector)
        self.last_heartbeat = time.monotonic()

    async def register_worker(self) -> int:
        worker_id = await super().register_worker()
        self.last_heartbeat = time.monotonic()
        return worker_id

    async def update_heartbeat(self, worker_id: int) -> None:
        await super().update_heartbeat(worker_id)
        self.last_heartbeat = time.monotonic()


class _OneLineFormatter(logging.Formatter):
    """procrastinate logs a lost connection with its traceback; our logs say it in one line."""

    def format(self, record: logging.LogRecord) -> str:
        if record.exc_info:
            exc = record.exc_info[1]
            record = logging.makeLogRecord({**record.__dict__, "exc_info": None, "exc_text": None,
                                            "msg": f"{record.getMessage()} error={_kv(_error_text(exc))}", "args": ()})
        return super().format(record)


def quiet_procrastinate_logs(fmt: str = "%(asctime)s %(levelname)s %(name)s %(message)s") -> None:
    """procrastinate's own warnings and errors on stderr, one line each (no tracebacks: a PostgreSQL restart
    is an expected event here; the [WORKER] lines say what happened)."""
    pq_log = logging.getLogger("procrastinate")
    if any(getattr(h, "_xbot", False) for h in pq_log.handlers):
        return
    handler = logging.StreamHandler()
    handler.setFormatter(_OneLineFormatter(fmt))
    handler._xbot = True  # type: ignore[attr-defined]
    pq_log.addHandler(handler)
    pq_log.setLevel(logging.WARNING)
    pq_log.propagate = False


QUEUE_POOL_MAX = 8  # connections of a process's job-queue pool (procrastinate's): its listeners and fetches


def connections_needed(processes: int, db_pool_max: int, deferrer: bool = True) -> tuple[int, int]:
    """PostgreSQL connections ``xbot run --workers processes`` holds: (at rest, at most).

    At rest (measured, 2026-12-05: 9 per process, and 8 or 1 for the supervisor): each worker process's queue pool
    is full (four queue groups, each listening and fetching) and its job pool keeps one; the supervisor holds a
    job connection and, with its deferrer (``xbot run``; not ``xbot worker --no-deferrer``), a queue pool. At
    most: every pool full, the job pools at ``db_pool_max`` (XBOT_DB_POOL_MAX)."""
    supervisor_rest, supervisor_most = _supervisor_connections(db_pool_max, deferrer)
    at_rest = processes * (QUEUE_POOL_MAX + 1) + supervisor_rest
    at_most = processes * (QUEUE_POOL_MAX + db_pool_max) + supervisor_most
    return at_rest, at_most


def _supervisor_connections(db_pool_max: int, deferrer: bool) -> tuple[int, int]:
    return (QUEUE_POOL_MAX, QUEUE_POOL_MAX + db_pool_max) if deferrer else (1, db_pool_max)


def connection_verdict(processes: int, db_pool_max: int, slots, deferrer: bool = True) -> tuple[str | None, str | None]:
    """(error, warning) for starting ``processes`` worker processes (and the supervisor's ``deferrer``) on a server
    with ``slots`` (``store.db.ConnectionSlots``): an error when they would not fit even at rest (the last ones
    would fail to connect and retry for ever), a warning when they fit at rest but not with every pool full."""
    at_rest, at_most = connections_needed(processes, db_pool_max, deferrer)
    supervisor = _supervisor_connections(db_pool_max, deferrer)[0]
    free = slots.free
    where = (f"the server has {free} free (max_connections {slots.max_connections}"
             + (f", {slots.reserved} reserved for superusers" if slots.reserved else "")
             + f", {slots.in_use} held by other sessions)")
    raise_limit = ("raise the server's max_connections (xbot db psql -c \"ALTER SYSTEM SET max_connections = "
                   f"{-(-(at_most + slots.in_use + slots.reserved) // 50) * 50}\", then restart PostgreSQL)")
    if at_rest > free:
        fit = max(0, (free - supervisor) // (QUEUE_POOL_MAX + 1))
        return (f"--workers {processes} needs {at_rest} PostgreSQL connections at rest ({QUEUE_POOL_MAX + 1} a worker "
                f"process, {supervisor} for the supervisor) and {where}. Run at most {fit} worker "
                f"process{'' if fit == 1 else 'es'}, "
                f"or {raise_limit}"), None
    if at_most > free:
        return None, (f"warning: --workers {processes} holds {at_rest} PostgreSQL connections at rest and may open up "
                      f"to {at_most} under load ({QUEUE_POOL_MAX} for the job queue and XBOT_DB_POOL_MAX {db_pool_max} "
                      f"a process), but {where}: under load some ticks may wait for a connection and fail. "
                      f"Lower --workers or XBOT_DB_POOL_MAX, or {raise_limit}")
    return None, None


def make_app(url: str, pool_max: int = QUEUE_POOL_MAX) -> procrastinate.App:
    """A procrastinate app on ``url`` with xbot's two tasks. Its connections fail fast like ours."""
    connector = procrastinate.PsycopgConnector(
        conninfo=url, min_size=1, max_size=pool_max, timeout=ACQUIRE_TIMEOUT_S,
        kwargs={"connect_timeout": CONNECT_TIMEOUT_S})
    app = procrastinate.App(connector=connector)
    app.job_manager = FencedJobManager(connector)
    app.task(name=TICK_TASK, pass_context=True, retry=TICK_RETRY)(_tick_task)
    app.task(name=NOTEBOOK_TASK, pass_context=True)(_notebook_task)
    return app


def _tick_task(context, account_id: str, job: str, timestamp: int) -> dict:
    runtime: WorkerRuntime = context.additional_context["xbot"]
    return runtime.run_tick(account_id, job, timestamp, attempt=context.job.attempts)


def _notebook_task(context, name: str, parameters: dict, timestamp: int) -> None:
    runtime: WorkerRuntime = context.additional_context["xbot"]
    runtime.run_notebook(name, parameters, timestamp)


# ----------------------------------------------------------------------------- running a tick

@dataclass
class Spool:
    """Failures that could not be written while the database was unreachable, written by the next tick."""
    pending: list[dict] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, **record: Any) -> None:
        with self.lock:
            self.pending.append(record)

    def flush(self, db: Database) -> int:
        with self.lock:
            todo, self.pending = self.pending, []
        if not todo:
            return 0
        written = 0
        try:
            with db.connection() as conn:
                for r in todo:
                    runs.record_failed_run(conn, **r)
                    written += 1
        except Exception:
            with self.lock:  # the database went away again: keep them for the next try
                self.pending[:0] = todo
            raise
        if written:
            tagged(log, "WORKER", "recorded failures from the outage", runs=written)
        return written


@dataclass
class WorkerRuntime:
    """What the tasks of one worker process share: the database, the clock, one ``JobContext`` per
    (account, job) built on first use by ``context_for(account_id)``, the schedule entries (to name the
    occurrences a tick finds missed) and the spool of unrecorded failures."""
    db: Database
    clock: Clock
    context_for: Callable[[str], Any]
    entries: list
    notebook_runner: Callable[[str, dict], object] | None = None
    spool: Spool = field(default_factory=Spool)
    contexts: dict = field(default_factory=dict)
    active: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def _context(self, account_id: str, job: str):
        key = (account_id, job)
        with self._lock:
            ctx = self.contexts.get(key)
        if ctx is None:  # built outside the lock: building one opens HTTP clients
            ctx = self.context_for(account_id)
            with self._lock:
                ctx = self.contexts.setdefault(key, ctx)
        return ctx

    def run_tick(self, account_id: str, job: str, timestamp: int, attempt: int = 0) -> dict:
        """Run one tick for the occurrence ``timestamp`` (seconds, on the clock): first write what the
        outage left unrecorded, then the tick through ``run_job``. Raises on failure (the queue records
        the job as failed, or retries it when the database was the cause)."""
        with self._lock:
            self.active += 1
        scheduled_for = datetime.fromtimestamp(timestamp, timezone.utc)
        started, began = self.clock.now(), time.monotonic()
        try:
            self._catch_up(account_id, job, scheduled_for, started)
            result = run_job(job, self._context(account_id, job), TICKS[job], scheduled_for=scheduled_for)
        except DB_ERRORS as exc:
            self.spool.add(account_id=account_id, job=job, started_at=started, finished_at=self.clock.now(),
                           scheduled_for=scheduled_for,
                           error=f"database unreachable (attempt {attempt + 1}): {_error_text(exc)}")
            tagged(log, "WORKER", "tick failed", level=logging.ERROR, account=account_id, job=job,
                   reason="database_unreachable", error=_kv(_error_text(exc)))
            raise
        except Exception as exc:  # run_job recorded it in job_runs
            tagged(log, "WORKER", "tick failed", level=logging.ERROR, account=account_id, job=job,
                   error=_kv(_error_text(exc)))
            raise
        finally:
            with self._lock:
                self.active -= 1
        late = (started - scheduled_for).total_seconds()
        tagged(log, "WORKER", "tick", account=account_id, job=job, status=result.status,
               late_s=f"{late:.1f}", ms=int((time.monotonic() - began) * 1000))  # real time, whatever the clock
        return {"status": result.status, "late_s": round(late, 3)}

    def _catch_up(self, account_id: str, job: str, scheduled_for: datetime, now: datetime) -> None:
        """Write the spooled failures, close ``running`` rows a killed worker left (this tick holds the
        lock: nobody else runs this job for this account) and record the occurrences nobody ran."""
        self.spool.flush(self.db)
        entry = next((e for e in self.entries if e.kind == "job" and e.name == job), None)
        with self.db.connection() as conn:
            closed = runs.close_interrupted_runs(
                conn, account_id, job, now, "interrupted: its worker was killed or lost the database "
                "(closed by the next tick, which holds the job's lock)")
            missed = 0
            previous = runs.last_scheduled_for(conn, account_id, job, scheduled_for)
            if entry is not None and previous is not None:
                missed = runs.record_missed_runs(
                    conn, account_id, job, schedules.runs_between(entry, previous, scheduled_for),
                    "not run at its time: the database was unreachable, no worker was running, or the "
                    "previous tick was still queued (missed runs collapse into the next tick)")
        if closed or missed:
            tagged(log, "WORKER", "caught up", account=account_id, job=job, interrupted=len(closed), missed=missed)

    def run_notebook(self, name: str, parameters: dict, timestamp: int) -> None:
        if self.notebook_runner is None:
            tagged(log, "WORKER", "notebook skipped", name=name, reason="no_notebook_runner")
            return
        self.notebook_runner(name, dict(parameters))
        tagged(log, "WORKER", "notebook", name=name)


# ----------------------------------------------------------------------------- one worker process

class Fence(threading.Thread):
    """Exits the process when a tick runs while the heartbeat has failed for ``FENCE_AFTER_S``: its job
    will be retried elsewhere after ``STALLED_AFTER_S``, and the two must never run together."""

    def __init__(self, app: procrastinate.App, runtime: WorkerRuntime):
        super().__init__(name="xbot-fence", daemon=True)
        self.app, self.runtime = app, runtime

    def run(self) -> None:
        while True:
            time.sleep(1.0)
            silent = time.monotonic() - self.app.job_manager.last_heartbeat
            if self.runtime.active and silent > FENCE_AFTER_S:
                tagged(log, "WORKER", "fenced: exiting", level=logging.ERROR, pid=os.getpid(),
                       silent_s=f"{silent:.0f}", running_ticks=self.runtime.active,
                       reason="no_heartbeat_while_a_tick_runs_(its_job_will_be_retried_elsewhere)")
                logging.shutdown()
                os._exit(75)


class WorkerGroup:
    """One worker process: a procrastinate worker per queue group, restarted with backoff when the
    database goes away, until ``stop()`` (SIGTERM) — which lets running ticks finish."""

    def __init__(self, app: procrastinate.App, runtime: WorkerRuntime,
                 groups=DEFAULT_GROUPS, name: str | None = None, install_signals: bool = True, fence: bool = True):
        self.app, self.runtime, self.groups = app, runtime, tuple(groups)
        self.name = name or f"pid-{os.getpid()}"
        self.install_signals, self.fence = install_signals, fence
        self._stopping = asyncio.Event()
        self._workers: list = []
        self._loop: asyncio.AbstractEventLoop | None = None

    def stop(self, *_args) -> None:
        """Finish the running ticks, then return from ``run`` (callable from any thread)."""
        loop = self._loop
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if loop is not None and running is not loop:
            loop.call_soon_threadsafe(self.stop)
            return
        if not self._stopping.is_set():
            tagged(log, "WORKER", "stop requested: finishing the running ticks", worker=self.name)
        self._stopping.set()
        for w in self._workers:
            w.stop()

    async def run(self) -> None:
        loop = self._loop = asyncio.get_running_loop()
        # sync tasks run in the loop's default executor: one thread per concurrent job
        loop.set_default_executor(ThreadPoolExecutor(max_workers=sum(c for _, c in self.groups) + 2,
                                                     thread_name_prefix="xbot-tick"))
        if self.install_signals:
            for sig in (signal.SIGTERM, signal.SIGINT):
                loop.add_signal_handler(sig, self.stop)
        if self.fence:  # a process-wide exit: only for a worker process of its own, not a thread in a test
            Fence(self.app, self.runtime).start()
        backoff = 1.0
        while not self._stopping.is_set():
            try:
                await self._serve_once()
                backoff = 1.0
            except Exception as exc:
                if self._stopping.is_set():
                    break
                lost = isinstance(exc, (*DB_ERRORS, ConnectionError))
                tagged(log, "WORKER", "database unreachable: retrying" if lost else "worker error: restarting",
                       level=logging.WARNING if lost else logging.ERROR, worker=self.name,
                       in_s=f"{backoff:.0f}", error=_kv(_error_text(exc)))
                try:
                    await asyncio.wait_for(self._stopping.wait(), timeout=backoff)
                except asyncio.TimeoutError:
                    pass
                backoff = min(backoff * 2, 8.0)
        tagged(log, "WORKER", "stopped", worker=self.name)

    async def _serve_once(self) -> None:
        async with self.app.open_async():
            self._workers = [Worker(
                self.app, queues=list(queues), concurrency=concurrency, name=f"xbot-{'+'.join(queues)}",
                install_signal_handlers=False, additional_context={"xbot": self.runtime},
                update_heartbeat_interval=HEARTBEAT_S, stalled_worker_timeout=STALLED_AFTER_S,
                fetch_job_polling_interval=POLL_S, shutdown_graceful_timeout=None)
                for queues, concurrency in self.groups]
            if self._stopping.is_set():
                return
            tagged(log, "WORKER", "started", worker=self.name,
                   queues=",".join(f"{'+'.join(q)}x{c}" for q, c in self.groups))
            tasks = [asyncio.create_task(w.run()) for w in self._workers]
            done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
            for w in self._workers:  # one stopped (a stop request or the database): stop them all
                w.stop()
            results = await asyncio.gather(*tasks, return_exceptions=True)
            errors = [r for r in results if isinstance(r, BaseException)]
            if errors and not self._stopping.is_set():
                raise errors[0]
            if not self._stopping.is_set():  # a worker gave up without an error (its heartbeat failed)
                raise ConnectionError("a worker of the group stopped (lost its database connection)")


# ----------------------------------------------------------------------------- the deferrer

@dataclass
class Deferrer:
    """Defers each schedule occurrence once, for every account (jobs) or once (notebooks)."""
    app: procrastinate.App
    db: Database
    clock: Clock
    entries: list
    account_ids: list = field(default_factory=list)
    _accounts_at: float = -1e9
    _deferred: dict = field(default_factory=dict)   # (entry key, account) -> last occurrence deferred
    deferred_total: int = 0

    def _accounts(self) -> list[str]:
        if time.monotonic() - self._accounts_at >= ACCOUNTS_REFRESH_S:
            with self.db.connection() as conn:
                self.account_ids = accounts.list_account_ids(conn)
            self._accounts_at = time.monotonic()
        return self.account_ids

    def _due(self) -> list[tuple[Any, str | None, datetime]]:
        now = self.clock.now()
        due = []
        for entry in self.entries:
            occurrence = schedules.last_run_at_or_before(entry, now)
            targets = (self._accounts() if entry.account is None else [entry.account]) if entry.kind == "job" else [None]
            due += [(entry, account, occurrence) for account in targets
                    if self._deferred.get((entry.key, account)) != occurrence]
        return due

    async def sweep(self) -> int:
        """Defer what has come due since the last sweep; returns how many jobs were deferred (an occurrence
        another deferrer deferred already, or whose previous tick still waits, counts as done)."""
        due = self._due()
        if not due:
            return 0
        n = 0
        with self.db.connection() as conn:
            # one deferrer sweeps at a time: procrastinate forgets older occurrences of a periodic id when it
            # defers a newer one, so a deferrer lagging by a moment could otherwise defer an old one again
            locks.lock_name_for_transaction(conn, "xbot:deferrer")
            for entry, account, occurrence in due:
                if await self._defer(entry, account, occurrence):
                    n += 1
                self._deferred[(entry.key, account)] = occurrence
        if n:
            self.deferred_total += n
            tagged(log, "DEFERRER", "deferred", jobs=n, at=self.clock.now().isoformat(timespec="seconds"))
        return n

    async def _defer(self, entry, account: str | None, occurrence: datetime) -> bool:
        if entry.kind == "job":
            return await defer_tick(self.app, account, entry.name, occurrence, periodic_id=f"{entry.key}@{account}")
        lock = notebook_lock(entry)
        ts = int(occurrence.timestamp())
        job = pq_jobs.Job(queue=NOTEBOOK_QUEUE, lock=lock, queueing_lock=lock, task_name=NOTEBOOK_TASK,
                          task_kwargs={"name": entry.name, "parameters": dict(entry.parameters), "timestamp": ts})
        return await _defer_once(self.app, job, entry.key, ts)

    async def recover_stalled(self) -> int:
        return await recover_stalled(self.app)


async def defer_tick(app: procrastinate.App, account_id: str, job: str, occurrence: datetime,
                     periodic_id: str | None = None) -> bool:
    """Queue the tick of ``job`` for ``account_id`` at the schedule occurrence ``occurrence``, once per
    (periodic id, occurrence); False when it was queued already or the previous tick still waits."""
    lock = tick_lock(job, account_id)
    ts = int(occurrence.timestamp())
    pq_job = pq_jobs.Job(queue=job, lock=lock, queueing_lock=lock, task_name=TICK_TASK,
                         task_kwargs={"account_id": account_id, "job": job, "timestamp": ts})
    return await _defer_once(app, pq_job, periodic_id or f"job:{job}@{account_id}", ts)


async def _defer_once(app: procrastinate.App, job, periodic_id: str, ts: int) -> bool:
    try:
        return await app.job_manager.defer_periodic_job(job, periodic_id, ts) is not None
    except pq_exceptions.AlreadyEnqueued:  # the previous tick still waits: this occurrence collapses into it
        return False


async def recover_stalled(app: procrastinate.App, stalled_after_s: float = STALLED_AFTER_S) -> int:
    """Retry the jobs whose worker stopped heart-beating for ``stalled_after_s`` (SIGKILLed, or fenced);
    returns how many. Their lock holds until then: nothing else of that job and account starts."""
    stalled = await app.job_manager.get_stalled_jobs(seconds_since_heartbeat=stalled_after_s)
    for job in stalled:
        try:
            await app.job_manager.retry_job(job)
        except pq_exceptions.UniqueViolation:
            # a newer tick of the same job and account already waits (its queueing lock): that one will do the
            # work, so the stalled one ends as failed, which frees the lock it still held
            await app.job_manager.finish_job(job, status=pq_jobs.Status.FAILED, delete_job=False)
            tagged(log, "WORKER", "stalled job closed", job_id=job.id, task=job.task_name, lock=job.lock,
                   worker_id=job.worker_id, reason="a_newer_tick_waits")
            continue
        tagged(log, "WORKER", "stalled job retried", job_id=job.id, task=job.task_name, lock=job.lock,
               worker_id=job.worker_id)
    await app.job_manager.prune_stalled_workers(stalled_after_s)
    return len(stalled)


# ----------------------------------------------------------------------------- the supervisor (`xbot run`, `xbot worker`)

@dataclass
class Supervisor:
    """Starts ``processes`` worker processes (``child_command``), restarts any that dies, runs the deferrer
    and stalled-job recovery (unless ``deferrer`` is None), and on SIGTERM stops the children (each
    finishes its running ticks) and returns."""
    child_command: list[str]
    processes: int
    deferrer: Deferrer | None = None
    env: dict | None = None
    restarts: int = 0
    _stopping: bool = False

    def stop(self, *_args) -> None:
        if not self._stopping:
            tagged(log, "WORKER", "stop requested: stopping the worker processes", processes=self.processes)
        self._stopping = True

    async def run(self) -> int:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self.stop)
        children = [self._spawn(i) for i in range(self.processes)]
        started = [time.monotonic()] * self.processes
        quick_deaths = [0] * self.processes
        restart_at: list[float | None] = [None] * self.processes
        last_recover, db_down = 0.0, False
        try:
            async with (self.deferrer.app.open_async() if self.deferrer else contextlib.nullcontext()):
                while not self._stopping:
                    for i, child in enumerate(children):
                        if child.poll() is None or self._stopping:
                            continue
                        if restart_at[i] is None:
                            # a process that exits with an error within a minute of starting, again and again (a bad
                            # setting), is restarted ever more slowly (4, 8, … 60 s) instead of in a tight loop; one
                            # killed by a signal (negative code) comes back at once
                            lived = time.monotonic() - started[i]
                            quick_deaths[i] = quick_deaths[i] + 1 if lived < 60 and child.returncode > 0 else 0
                            restart_at[i] = time.monotonic() + (min(60.0, 2.0 ** quick_deaths[i]) if quick_deaths[i] > 1
                                                                else 0.0)
                        if time.monotonic() >= restart_at[i]:
                            self.restarts += 1
                            tagged(log, "WORKER", "process died: restarting", level=logging.WARNING, index=i,
                                   pid=child.pid, returncode=child.returncode)
                            children[i], started[i], restart_at[i] = self._spawn(i), time.monotonic(), None
                    if self.deferrer is not None:
                        try:
                            await self.deferrer.sweep()
                            if time.monotonic() - last_recover >= RECOVER_EVERY_S:
                                await self.deferrer.recover_stalled()
                                last_recover = time.monotonic()
                            if db_down:
                                tagged(log, "DEFERRER", "database back")
                            db_down = False
                        except DB_ERRORS as exc:
                            if not db_down:
                                tagged(log, "DEFERRER", "database unreachable: deferring resumes when it is back",
                                       level=logging.WARNING, error=_kv(_error_text(exc)))
                            db_down = True
                    await asyncio.sleep(0.5)
        finally:
            for child in children:
                if child.poll() is None:
                    child.send_signal(signal.SIGTERM)
            for child in children:
                try:
                    child.wait()
                except KeyboardInterrupt:  # a second Ctrl-C: stop waiting for the ticks
                    child.kill()
            tagged(log, "WORKER", "all worker processes stopped", restarts=self.restarts)
        return 0

    def _spawn(self, index: int) -> subprocess.Popen:
        # own process group: a Ctrl-C in the terminal reaches the supervisor, which stops the children in order
        child = subprocess.Popen(self.child_command, env=self.env, start_new_session=True)
        tagged(log, "WORKER", "process started", index=index, pid=child.pid)
        return child


def contexts_for_accounts(settings, db: Database, clock: Clock, build_context: Callable) -> Callable[[str], Any]:
    """``context_for(account_id)``: the settings with that account, wired by ``build_context``; each account
    gets its own seed (accounts must not all draw the same candidates)."""
    def context_for(account_id: str):
        return build_context(dataclasses.replace(settings, account_id=account_id), db, clock,
                             seed=zlib.crc32(account_id.encode()))
    return context_for

