"""``xbot notebook list|run|sync``, ``xbot schedule list [--crontab]`` and ``xbot lab``."""
from __future__ import annotations

import argparse
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from xbotlib.app.cli.errors import CliError
from xbotlib.app.cli.options import check_port, positive_seconds
from xbotlib.app.reports.runner import (NOTEBOOKS_DIR, NotebookError, NotebookFailed, coerce_parameters, ensure_kernel,
                                        list_notebooks, run_notebook)
from xbotlib.clock import SystemClock
from xbotlib.config import file_in_the_way, load_settings
from xbotlib.jobs.schedules import SCHEDULES_DIR, ScheduleError, load_schedules, next_run, notebook_problems, to_crontab

LAB_READY_TIMEOUT_S = 120


def register(sub) -> None:
    # ------------------------------------------------------------------ notebook
    p = sub.add_parser("notebook", help="list, run or sync the parameterised notebooks",
                       description="Notebooks live in notebooks/NAME.py (jupytext py:percent) paired with "
                                   "NAME.ipynb. A run writes XBOT_HOME/reports/runs/<date>/<name>-<time>-<id>.ipynb "
                                   "and .html, a notebook_runs row, and regenerates XBOT_HOME/reports/index.html.")
    nsub = p.add_subparsers(dest="notebook_action", metavar="ACTION", required=True)

    q = nsub.add_parser("list", help="list notebooks with their parameters")
    q.add_argument("--notebooks-dir", type=Path, default=NOTEBOOKS_DIR, help="default: %(default)s")
    q.set_defaults(func=cmd_notebook_list)

    q = nsub.add_parser("run", help="run a notebook with papermill and render its HTML report",
                        description="Run notebooks/NAME.ipynb in the xbot kernel with XBOT_DATABASE_URL set. "
                                    "Values are converted to the type of the parameter's default; unknown or "
                                    "mistyped parameters are refused before anything runs. Exit 1 if the "
                                    "notebook fails (its report still shows the error).",
                        epilog="example: xbot notebook run experiment_lift -p experiment_id question_cta")
    q.add_argument("name", help="notebook name (see `xbot notebook list`)")
    q.add_argument("-p", "--parameter", nargs=2, action="append", default=[], metavar=("KEY", "VALUE"),
                   help="set a parameter; repeat for several")
    q.add_argument("--reports-dir", type=Path, default=None, help="default: XBOT_HOME/reports (the workspace's)")
    q.add_argument("--notebooks-dir", type=Path, default=NOTEBOOKS_DIR, help="default: %(default)s")
    q.add_argument("--timeout", type=positive_seconds, default=None,
                   help="seconds any one cell may run (default: no limit)")
    q.set_defaults(func=cmd_notebook_run)

    q = nsub.add_parser("sync", help="regenerate NAME.ipynb from NAME.py (or check that they agree)")
    q.add_argument("names", nargs="*", help="notebooks to sync (default: every NAME.py)")
    q.add_argument("--check", action="store_true", help="change nothing; exit 1 if a pair differs")
    q.add_argument("--notebooks-dir", type=Path, default=NOTEBOOKS_DIR, help="default: %(default)s")
    q.set_defaults(func=cmd_notebook_sync)

    # ------------------------------------------------------------------ schedule
    p = sub.add_parser("schedule", help="show when jobs and notebooks run (schedules/*.toml)",
                       description="Schedules are cron expressions in schedules/*.toml (UTC unless an entry "
                                   "sets timezone). `xbot run` follows them; --crontab exports them for "
                                   "system cron instead.")
    ssub = p.add_subparsers(dest="schedule_action", metavar="ACTION", required=True)
    q = ssub.add_parser("list", help="each entry with its next run (or --crontab lines)")
    q.add_argument("--crontab", action="store_true", help="print crontab lines instead")
    q.add_argument("--dir", type=Path, default=SCHEDULES_DIR, help="schedules directory (default: %(default)s)")
    q.add_argument("--xbot", default=None, help="with --crontab: path of the xbot command (default: this one)")
    q.add_argument("--workdir", default=None, help="with --crontab: directory to run in (default: current)")
    q.add_argument("--notebooks-dir", type=Path, default=NOTEBOOKS_DIR, help="default: %(default)s")
    q.set_defaults(func=cmd_schedule_list)

    # ------------------------------------------------------------------ lab
    p = sub.add_parser("lab", help="JupyterLab on notebooks/ with the xbot kernel and database",
                       description="Start JupyterLab on 127.0.0.1 with a generated token, the xbot kernel and "
                                   "XBOT_DATABASE_URL set (the embedded database stays up while lab runs). "
                                   "Prints the URL to open. Ctrl-C stops it.")
    p.add_argument("--port", type=int, default=8888, help="port (default 8888; a free one if busy; 0 = any free)")
    p.add_argument("--token", default=None, help="access token (default: generated)")
    p.add_argument("--notebook-dir", type=Path, default=NOTEBOOKS_DIR, help="default: %(default)s")
    p.set_defaults(func=cmd_lab)


# ----------------------------------------------------------------------------- notebook

def cmd_notebook_list(args: argparse.Namespace) -> int:
    try:
        infos = list_notebooks(args.notebooks_dir)
    except NotebookError as exc:
        raise CliError(str(exc)) from None
    if not infos:
        print(f"no notebooks in {args.notebooks_dir}")
    for info in infos:
        print(f"{info.name}  — {info.description}")
        for key, p in info.parameters.items():
            print(f"    -p {key:<16} {p.default!r:<24} ({p.type.__name__})")
    return 0


def cmd_notebook_run(args: argparse.Namespace) -> int:
    params = dict(args.parameter)
    if args.reports_dir is not None:  # under a file, creating runs/<date>/ would fail after the run is recorded
        existing = file_in_the_way(args.reports_dir)
        if existing is not None:
            raise CliError(f"--reports-dir '{args.reports_dir}' is not a folder ({existing} exists and is not a folder); "
                           "pass a folder (it is created if missing), or leave it out for XBOT_HOME/reports")
    settings = load_settings()
    try:
        run = run_notebook(args.name, params, db_url=settings.database_url, reports_dir=args.reports_dir,
                           notebooks_dir=args.notebooks_dir, execution_timeout=args.timeout)
    except NotebookFailed as exc:
        print(f"FAILED {exc.run.name} (run {exc.run.run_id}): {exc.run.error}", file=sys.stderr)
        print(f"report:   {exc.run.html_path}\nnotebook: {exc.run.output_path}", file=sys.stderr)
        return 1
    except NotebookError as exc:  # not found, bad parameters, no schema: nothing ran
        raise CliError(str(exc)) from None
    print(f"ok {run.name} (run {run.run_id})")
    print(f"report:   {run.html_path}\nnotebook: {run.output_path}\nindex:    {run.index_path}")
    return 0


def cmd_notebook_sync(args: argparse.Namespace) -> int:
    # imported here for start-up time: jupytext and nbformat are slow to import
    from xbotlib.app.reports.pairing import pair_differences, sync_notebook
    directory = Path(args.notebooks_dir)
    if not directory.is_dir():  # else nothing is found to sync and `--check` passes
        raise CliError(f"notebooks directory not found: '{directory}' (run from the project root, or pass "
                       "--notebooks-dir)")
    sources = [directory / f"{n}.py" for n in args.names] or sorted(directory.glob("*.py"))
    missing = [str(p) for p in sources if not p.is_file()]
    if missing:
        raise CliError(f"no such notebook source: {', '.join(missing)} (expected notebooks/NAME.py)")
    out_of_sync = 0
    for py in sources:
        problems = pair_differences(py)
        if args.check:
            for problem in problems:
                print(problem)
            out_of_sync += bool(problems)
        elif problems:
            print(f"wrote {sync_notebook(py)}")
        else:
            print(f"in sync {py.with_suffix('.ipynb')}")
    if out_of_sync:
        print(f"{out_of_sync} notebook(s) out of sync: run `xbot notebook sync`", file=sys.stderr)
        return 1
    return 0


# ----------------------------------------------------------------------------- schedule

def cmd_schedule_list(args: argparse.Namespace) -> int:
    if not args.crontab and (args.xbot or args.workdir):  # else they are ignored without a word
        raise CliError("--xbot and --workdir shape the --crontab lines: add --crontab, or drop them")
    try:
        entries = load_schedules(args.dir)
    except ScheduleError as exc:
        raise CliError(str(exc)) from None
    if args.crontab:
        xbot = args.xbot or str(Path(sys.executable).with_name("xbot"))
        print(to_crontab(entries, xbot, args.workdir or os.getcwd()), end="")
        return 0
    now = SystemClock().now()
    print(f"{len(entries)} schedule entries; next runs after {now:%Y-%m-%d %H:%M} UTC")
    for e in entries:
        when = next_run(e, now)
        tz = "" if e.timezone == "UTC" else f" ({e.timezone})"
        print(f"  {when:%Y-%m-%d %H:%M} UTC  {e.cron:<14}{tz}  {e.describe()}")
    try:
        problems = notebook_problems(entries, {i.name: i for i in list_notebooks(args.notebooks_dir)},
                                     coerce_parameters)
    except NotebookError as exc:
        problems = [str(exc)]
    for problem in problems:
        print(f"warning: {problem}", file=sys.stderr)
    return 0


# ----------------------------------------------------------------------------- lab

def free_port(preferred: int = 0, host: str = "127.0.0.1") -> int:
    """``preferred`` if it can be bound on ``host``, else a free port the OS picks."""
    for port in ([preferred] if preferred else []) + [0]:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            try:
                s.bind((host, port))
            except OSError:
                continue
            return s.getsockname()[1]
    raise CliError(f"no free port on {host}")


def lab_command(notebook_dir: Path, port: int, kernel: str) -> list[str]:
    return [sys.executable, "-m", "jupyterlab", f"--notebook-dir={notebook_dir}", "--no-browser",
            "--ip=127.0.0.1", f"--port={port}", "--port-retries=0",
            f"--MappingKernelManager.default_kernel_name={kernel}",
            # containers and CI often run as root; the server still listens on localhost with a token only
            *(["--allow-root"] if hasattr(os, "geteuid") and os.geteuid() == 0 else [])]


def cmd_lab(args: argparse.Namespace) -> int:
    # imported here for start-up time: httpx and psycopg are slow to import
    import httpx

    from xbotlib.store.db import Database  # start-up time, as above

    notebook_dir = Path(args.notebook_dir).resolve()
    if not notebook_dir.is_dir():
        raise CliError(f"notebook directory not found: '{args.notebook_dir}' (run from the project root or "
                       "pass --notebook-dir)")
    check_port(args.port)   # before the kernel and the database
    settings = load_settings()
    kernel = ensure_kernel()
    port = free_port(args.port)
    if args.port and port != args.port:
        print(f"port {args.port} is busy; using {port}", file=sys.stderr)
    token = args.token or secrets.token_urlsafe(24)
    url = f"http://127.0.0.1:{port}/lab?token={token}"
    with Database.open(settings) as db:  # holds the embedded server up while lab runs
        # the token travels in the environment, not the command line other users can read in `ps`
        # the kernel reads the same workspace and database whatever its working folder (notebooks/)
        env = dict(os.environ, XBOT_DATABASE_URL=db.url, XBOT_HOME=str(settings.home_path), JUPYTER_TOKEN=token)
        proc = subprocess.Popen(lab_command(notebook_dir, port, kernel), env=env)
        previous = _stop_on_sigterm()
        try:
            ready = _wait_ready(proc, f"http://127.0.0.1:{port}/api/status", token, httpx)
            if proc.poll() is not None:
                raise CliError(f"JupyterLab exited with code {proc.returncode} before it was ready "
                               "(see its messages above)")
            print(f"JupyterLab {'ready' if ready else 'starting (not answering yet)'}: {url}", flush=True)
            print(f"kernel: {kernel} ({sys.executable}); database: {db.describe()}; Ctrl-C stops", flush=True)
            return proc.wait()
        except KeyboardInterrupt:
            return 0
        finally:
            _stop(proc)
            if previous is not None:
                signal.signal(signal.SIGTERM, previous)


def _wait_ready(proc, status_url: str, token: str, httpx) -> bool:
    deadline = time.monotonic() + LAB_READY_TIMEOUT_S
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            if httpx.get(status_url, params={"token": token}, timeout=2).status_code == 200:
                return True
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    return False


def _stop_on_sigterm():
    def handler(signum, frame):
        raise KeyboardInterrupt
    try:
        return signal.signal(signal.SIGTERM, handler)
    except ValueError:  # not the main thread: leave signals alone
        return None


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
