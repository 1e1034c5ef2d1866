"""Several notebook runs at once: kernels side by side in worker processes, records kept in one place.

A report's time is mostly its kernel's: start-up, imports, then the notebook's own queries and plots.
Run one after another, a demo's eight reports pay that eight times on one core while the other waits.
``run_notebooks`` keeps ``workers`` kernels busy instead, and each run is still exactly what
``run_notebook`` makes of it — the same phases (``runner.prepare_run`` … ``finish_run``), one immutable
record per run: notebook + parameters in, executed notebook + HTML out, a ``notebook_runs`` row.

Who does what:
- this process checks every job's parameters before anything runs (a typo in the eighth refuses the
  batch before the first kernel starts), and owns every record: it starts a run (``running`` row, its
  ``.json``) just before a worker takes it and finishes it when the worker is done. Runs are therefore
  started in job order, so their ids and start times — what the reports index sorts by — follow the
  job order however the kernels race;
- a worker process (``spawn``: a clean interpreter, nothing inherited from this one's database pool or
  threads) executes the notebook and renders its HTML (``runner.execute_run``);
- each worker keeps one **warm kernel** (XBOT_DATABASE_URL in its own environment) from run to run. Most
  of a cold report is the kernel importing pandas, scipy, scikit-learn and matplotlib; a warm kernel pays
  that once per worker instead of once per report. Between runs the worker closes the databases the last
  notebook opened, drops its figures and starts a new IPython session (empty namespace, execution count
  1), so each notebook still runs top to bottom from its parameters alone; only imported modules are
  shared, which the notebooks only read. A kernel that died or did not reset is replaced by a new one.

A failed notebook still leaves its executed copy, its HTML with the error and a ``failed`` record; a
worker that dies is a ``failed`` record saying so. The index is rebuilt when a run starts and when it
finishes, from this process only, so its last version lists every run with its final status.
"""
from __future__ import annotations

import multiprocessing
import os
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

from xbotlib.app.reports.html import build_index
from xbotlib.app.reports.records import NotebookRun, collect_runs
from xbotlib.app.reports.records import reports_dir as workspace_reports_dir
from xbotlib.app.reports.runner import (KERNEL_ARGUMENTS, NOTEBOOKS_DIR, NotebookFailed, NotebookInfo, RunOutcome,
                                        check_named_objects_in, ensure_kernel, execute_run, finish_run,
                                        open_run_database, prepare_run, start_run)


@dataclass(frozen=True)
class BatchResult:
    """One job's result, in job order: the finished record (ok or failed) and the reports index."""
    run: NotebookRun
    index_path: Path

    @property
    def ok(self) -> bool:
        return self.run.status == "ok"


def default_workers() -> int:
    """Kernels side by side: one per core (a kernel's work is CPU-bound), at least one."""
    return max(1, os.cpu_count() or 1)


def run_notebooks(jobs: Sequence[tuple[str, Mapping[str, Any]]], *, db_url: str | None = None,
                  reports_dir: Path | None = None, workers: int | None = None, kernel: str | None = None,
                  notebooks_dir: Path = NOTEBOOKS_DIR, execution_timeout: float | None = None,
                  on_finished: Callable[[NotebookRun], None] | None = None) -> list[BatchResult]:
    """Run every ``(name, parameters)`` job, ``workers`` at a time; the results in job order.

    Each job is checked first (``NotebookNotFound`` / ``NotebookParameterError`` / ``NotebookError``
    before anything runs or is written, as ``run_notebook``); then a failed notebook does not stop the
    others: its result has status ``failed`` (``NotebookFailed`` is not raised). ``on_finished`` is
    called with each finished record as it finishes (for a progress bar). ``workers``: None = one
    per core; 1 still uses a worker process, so the kernel's environment never touches this one's.
    A KeyboardInterrupt records the unfinished runs as failed ("interrupted") and is raised again.
    """
    workers = default_workers() if workers is None else workers
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise ValueError(f"workers must be a whole number of processes, at least 1: got {workers!r}")
    prepared = [prepare_run(name, params, notebooks_dir) for name, params in jobs]
    kernel = kernel or ensure_kernel()
    reports_dir = Path(reports_dir) if reports_dir is not None else workspace_reports_dir()
    finished: dict[int, NotebookRun] = {}

    with open_run_database(db_url) as db:
        for info, values in prepared:
            check_named_objects_in(db, info, values)
        if not prepared:
            return []
        # spawn: a worker must not inherit this process's database pool, threads or signal handlers
        context = multiprocessing.get_context("spawn")
        in_flight: dict[Future, tuple[int, NotebookRun]] = {}
        queue = list(enumerate(prepared))
        with ProcessPoolExecutor(max_workers=min(workers, len(prepared)), mp_context=context) as pool:
            try:
                while queue or in_flight:
                    while queue and len(in_flight) < workers:
                        i, (info, values) = queue.pop(0)
                        run = start_run(db, info, values, _utc_now(), reports_dir)
                        build_index(reports_dir, collect_runs(reports_dir))
                        in_flight[_submit(pool, info, values, run, kernel, db.url, execution_timeout)] = (i, run)
                    done, _ = wait(in_flight, return_when=FIRST_COMPLETED)
                    for future in sorted(done, key=lambda f: in_flight[f][0]):
                        i, run = in_flight.pop(future)
                        finished[i] = finish_run(db, run, _outcome(future), reports_dir)
                        build_index(reports_dir, collect_runs(reports_dir))
                        if on_finished is not None:
                            on_finished(finished[i])
            except KeyboardInterrupt:
                pool.shutdown(wait=False, cancel_futures=True)
                stopped = RunOutcome("interrupted (KeyboardInterrupt) before the notebook finished", True, _utc_now())
                for i, run in in_flight.values():
                    finish_run(db, run, stopped, reports_dir)
                build_index(reports_dir, collect_runs(reports_dir))
                raise
        index = build_index(reports_dir, collect_runs(reports_dir))
    return [BatchResult(replace(finished[i], index_path=str(index)), index) for i in range(len(prepared))]


def failures(results: Sequence[BatchResult]) -> list[NotebookFailed]:
    """The failed runs as ``NotebookFailed`` (their message names the error and the report), in job order."""
    return [NotebookFailed(r.run) for r in results if not r.ok]


def _submit(pool: ProcessPoolExecutor, info: NotebookInfo, values: dict, run: NotebookRun, kernel: str, db_url: str,
            execution_timeout: float | None) -> Future:
    try:
        return pool.submit(_execute_in_worker, info, values, run, kernel, db_url, execution_timeout)
    except RuntimeError as exc:  # the pool broke (a worker died): this run fails, recorded like any other
        future: Future = Future()
        future.set_exception(exc)
        return future


def _outcome(future: Future) -> RunOutcome:
    """The worker's outcome; a worker that died or raised outside the notebook is a failed run saying so."""
    try:
        return future.result()
    except Exception as exc:  # a broken pool, an unrenderable notebook: still a recorded failure, never a stuck "running"
        return RunOutcome(f"the worker running this notebook failed: {type(exc).__name__}: {exc}", False, _utc_now())


def _execute_in_worker(info: NotebookInfo, values: dict, run: NotebookRun, kernel: str, db_url: str,
                       execution_timeout: float | None) -> RunOutcome:
    """In a worker process: execute and render one run (``runner.execute_run``) in this worker's warm
    kernel. A kernel that will not start is left to ``execute_run`` with a new one, which records why."""
    try:
        km = _warm_kernel(kernel, db_url)
    except Exception:  # NoSuchKernel, a kernel that dies at start: the cold path below records the reason
        km = None
    return execute_run(info, values, run, kernel, db_url, execution_timeout, _utc_now, km=km)


# This worker process's kernel, reused from one run to the next: {"km": KernelManager, "key": (kernel, db_url)}.
_WARM: dict[str, Any] = {}

# Before a run in a used kernel: close the databases the last notebook opened (their pools would stay
# open), drop its figures, then a new IPython session — an empty namespace and the execution count
# back at 1, as in a new kernel. Imported modules stay: that is what makes the kernel warm.
_RESET = """
from xbotlib.store.db import Database as _Database
for _value in list(get_ipython().user_ns.values()):
    if isinstance(_value, _Database):
        _value.close()
import matplotlib.pyplot as _plt
_plt.close("all")
get_ipython().reset(new_session=True)
"""


def _warm_kernel(kernel: str, db_url: str):
    """This worker's kernel for ``kernel`` with XBOT_DATABASE_URL=``db_url``, reset for a new run; started
    on first use (or after the last one died or failed to reset) and shut down when the worker exits."""
    # imported here: jupyter_client loads only in the worker processes that run kernels
    from jupyter_client.manager import KernelManager
    from multiprocessing.util import Finalize  # imported here: as above, only in a worker process

    key = (kernel, db_url)
    km = _WARM.get("km")
    if km is not None and _WARM.get("key") == key and km.is_alive() and _reset(km):
        return km
    if km is not None:
        km.shutdown_kernel(now=True)
        _WARM.clear()
    # a kernel binds the ports its manager picked only once it runs, so two workers starting kernels at the same
    # moment can pick the same free port and one kernel dies at start ("Address already in use", seen in CI): it
    # is checked by a first reset and, dead, started once more on new ports; a second failure goes to the cold path
    for attempt in (1, 2):
        km = KernelManager(kernel_name=kernel)
        # the environment is this kernel's own: the worker's os.environ stays as it is
        km.start_kernel(extra_arguments=list(KERNEL_ARGUMENTS), env={**os.environ, "XBOT_DATABASE_URL": db_url})
        if _reset(km):
            break
        km.shutdown_kernel(now=True)
        if attempt == 2:
            raise RuntimeError(f"kernel {kernel!r} did not answer after starting twice")
    Finalize(km, km.shutdown_kernel, kwargs={"now": True}, exitpriority=10)
    _WARM.update(km=km, key=key)
    return km


def _reset(km) -> bool:
    """Run ``_RESET`` in ``km``; False when it did not succeed (the caller then starts a new kernel)."""
    kc = km.client()
    try:
        kc.start_channels()
        kc.wait_for_ready(timeout=60)
        reply = kc.execute_interactive(_RESET, silent=True, store_history=False, timeout=60)
        return reply["content"]["status"] == "ok"
    except Exception:  # a timeout or a dead channel: a new kernel is the safe answer
        return False
    finally:
        kc.stop_channels()


def _utc_now() -> datetime:
    # module level (not a lambda) so a worker process can receive it
    return datetime.now(timezone.utc)
