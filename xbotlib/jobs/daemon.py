"""The daemon (`xbot run`): plan, post, collect and learn — and the scheduled notebooks — on the
cron expressions in ``schedules/``.

- One daemon per account: a session-level advisory lock, held for the daemon's lifetime.
- Each job tick is recorded in ``job_runs`` (``jobs.run_job``); a failing tick is logged and the
  loop goes on (the next tick retries), so one bad answer from X never stops the bot.
- SIGTERM / SIGINT finish the current tick, then exit.
- Time comes from the injected clock and waiting from the injected ``sleep_until``: with a
  ``SimClock`` the daemon jumps straight to the next due entry, so a simulated week takes seconds.
  There, where time stands still during a turn, the run records (every due job, every account) go out through
  ``jobs.runner.TurnRecorder``: written whole once ended, many turns' runs per statement (a failed run's at
  once), the same rows ``run_job`` would write one by one. With several accounts, the plan, post and collect ticks
  of a turn read for all of them at once (``plan.tick_many``, ``post.tick_many``, ``collect.tick_many``: one
  statement per kind of read, not one per account; ten accounts: ~210 statements per account and simulated day
  instead of ~960), and store what each account's own tick stores.
"""
from __future__ import annotations

import logging
import signal
import threading
import time
import zlib
from dataclasses import dataclass, field
from datetime import datetime
from typing import Callable

from xbotlib.clock import SimClock
from xbotlib.jobs import collect, learn, plan, post, schedules
from xbotlib.jobs.runner import TurnRecorder, run_job
from xbotlib.logs import tagged
from xbotlib.store import locks

log = logging.getLogger("xbot.daemon")

TICKS = {"plan": plan.tick, "post": post.tick, "collect": collect.tick, "learn": learn.tick}
# the jobs whose ticks for several accounts share their reads (a simulated turn, ``TurnRecorder.run_many``)
TURN_TICKS = {"plan": plan.tick_many, "post": post.tick_many, "collect": collect.tick_many}


def _error_kv(exc: Exception) -> str:
    """An error as one log value: its type and the start of its text, without spaces."""
    return f"{type(exc).__name__}:{str(exc)[:200]}".replace(" ", "_")


def _log_unwritten(recorder: TurnRecorder, exc: Exception) -> None:
    tagged(log, "DAEMON", "run records not written", level=logging.ERROR, held=len(recorder.unwritten),
           error=_error_kv(exc))


class DaemonLocked(RuntimeError):
    """Another daemon already runs for this account."""


def daemon_lock_key(account_id: str) -> int:
    return 0x58424F54_00000000 | zlib.crc32(f"daemon:{account_id}".encode())


@dataclass
class Daemon:
    """Run schedule entries for one or more accounts (one ``JobContext`` each) on one clock.

    ``notebook_runner(name, parameters)`` runs a scheduled notebook (None: notebook entries are skipped
    with a log line). ``on_tick(now)`` is called after each loop turn (progress bars use it).
    """
    contexts: list
    entries: list
    notebook_runner: Callable[[str, dict], object] | None = None
    on_tick: Callable[[datetime], None] | None = None
    record_batch: int = TurnRecorder.BATCH  # simulated clock: run records per statement (jobs.runner.TurnRecorder)
    last_run: dict = field(default_factory=dict)
    stop_requested: bool = False
    ticks: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not isinstance(self.contexts, (list, tuple)):
            self.contexts = [self.contexts]
        if not self.contexts:
            raise ValueError("Daemon needs at least one JobContext")
        self.clock = self.contexts[0].clock

    def request_stop(self, *_args) -> None:
        self.stop_requested = True
        tagged(log, "DAEMON", "stop requested: finishing the current tick")

    def run(self, until: datetime | None = None, sleep_until: Callable[[datetime], None] | None = None,
            install_signals: bool = True) -> dict:
        """Loop until ``until`` (or a stop request). Returns run counts per entry key."""
        sleep_until = sleep_until or self._default_sleeper()
        previous = {}
        if install_signals and threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGTERM, signal.SIGINT):
                previous[sig] = signal.signal(sig, self.request_stop)
        try:
            return self._run_locked(until, sleep_until)
        finally:  # the process outlives the daemon (tests, notebooks): give the signals back
            for sig, handler in previous.items():
                signal.signal(sig, handler)

    def _run_locked(self, until, sleep_until) -> dict:
        db = self.contexts[0].db
        accounts = [c.account_id for c in self.contexts]
        with db.connection() as lock_conn:
            held = []
            try:
                for account in accounts:
                    got = locks.try_session_lock(lock_conn, daemon_lock_key(account))
                    lock_conn.commit()
                    if not got:
                        raise DaemonLocked(f"another `xbot run` already holds account {account!r} "
                                           "(one daemon per account; stop the other one first)")
                    held.append(account)
                tagged(log, "DAEMON", "started", accounts=",".join(accounts), entries=len(self.entries))
                self._loop(until, sleep_until)
            finally:
                for account in held:
                    locks.release_session_lock(lock_conn, daemon_lock_key(account))
                lock_conn.commit()
        tagged(log, "DAEMON", "stopped", accounts=",".join(accounts))
        return dict(self.ticks)

    def _loop(self, until, sleep_until) -> None:
        start = self.clock.now()
        # next due time per entry, computed once per run of that entry (cron parsing is not free);
        # an entry never run is due at once, and missed runs collapse into one
        next_due = {e.key: (schedules.next_run(e, self.last_run[e.key]) if e.key in self.last_run else start)
                    for e in self.entries}
        recorder = TurnRecorder(self.record_batch) if isinstance(self.clock, SimClock) else None
        try:
            self._turns(until, sleep_until, next_due, recorder)
        finally:
            if recorder is not None:
                try:
                    recorder.flush()  # the runs still held
                except Exception as exc:  # never hide the error that ended the loop, if there was one
                    _log_unwritten(recorder, exc)

    def _turns(self, until, sleep_until, next_due: dict, recorder: TurnRecorder | None) -> None:
        while not self.stop_requested:
            now = self.clock.now()
            if until is not None and now >= until:
                break
            due = [e for e in self.entries if next_due[e.key] <= now]
            if recorder is not None:  # the clock stands still: run records written whole, many turns at a time
                self._run_turn_together(due, recorder)
            else:
                for entry in due:
                    for ctx in self.contexts:
                        if self.stop_requested:
                            break
                        if entry.kind == "job" or ctx is self.contexts[0]:  # notebooks run once, not per account
                            self._run_entry(ctx, entry)
            for entry in due:
                self.last_run[entry.key] = now
                next_due[entry.key] = schedules.next_run(entry, now)
            if self.on_tick:
                self.on_tick(self.clock.now())
            wake = min(next_due.values())
            if until is not None:
                wake = min(wake, until)
            if wake > self.clock.now():
                sleep_until(wake)

    def _run_turn_together(self, due: list, recorder: TurnRecorder) -> None:
        """The due entries of one turn, in the same order as one by one: each stretch of job entries runs as one
        ``TurnRecorder`` turn (entry by entry, every account for each; post and collect for all the accounts at
        once, their reads shared: ``TURN_TICKS``); a notebook runs on its own, once."""
        i = 0
        while i < len(due) and not self.stop_requested:
            if due[i].kind != "job":
                recorder.flush()  # a report reads the runs as they are: ended ones ended
                self._run_entry(self.contexts[0], due[i])
                i += 1
                continue
            stretch = []
            while i < len(due) and due[i].kind == "job":
                stretch.append(due[i])
                i += 1
            for entry in stretch:
                self.ticks[entry.key] = self.ticks.get(entry.key, 0) + len(self.contexts)
            for entry in stretch:
                if entry.name in TURN_TICKS and len(self.contexts) > 1:   # the accounts' reads shared
                    results = recorder.run_many(entry.name, self.contexts, TURN_TICKS[entry.name],
                                                should_stop=lambda: self.stop_requested)
                else:
                    results = recorder.run([(entry.name, ctx, TICKS[entry.name]) for ctx in self.contexts],
                                           should_stop=lambda: self.stop_requested)
                for ctx, result in zip(self.contexts, results):
                    if isinstance(result, Exception):  # recorded in job_runs; the loop must go on
                        self._log_failure(entry, ctx, result)
            try:
                recorder.write_if_due()
            except Exception as exc:  # the database is away: the records stay held for the next write
                _log_unwritten(recorder, exc)

    def _log_failure(self, entry, ctx, exc: Exception) -> None:
        tagged(log, "DAEMON", "tick failed", level=logging.ERROR, entry=entry.key, account=ctx.account_id,
               error=_error_kv(exc))

    def _run_entry(self, ctx, entry) -> None:
        self.ticks[entry.key] = self.ticks.get(entry.key, 0) + 1
        try:
            if entry.kind == "job":
                run_job(entry.name, ctx, TICKS[entry.name])
            elif self.notebook_runner is not None:
                self.notebook_runner(entry.name, dict(entry.parameters or {}))
            else:
                tagged(log, "DAEMON", "notebook skipped", name=entry.name, reason="no_notebook_runner")
        except Exception as exc:  # recorded in job_runs by run_job; the loop must go on
            self._log_failure(entry, ctx, exc)

    def _default_sleeper(self) -> Callable[[datetime], None]:
        clock = self.clock
        if isinstance(clock, SimClock):
            return clock.set

        def sleep_until(when: datetime) -> None:
            # short naps so SIGTERM is honoured promptly
            while not self.stop_requested:
                remaining = (when - clock.now()).total_seconds()
                if remaining <= 0:
                    return
                time.sleep(min(remaining, 1.0))
        return sleep_until
