"""`xbot job …` and `xbot run`: the operational commands."""
from __future__ import annotations

import argparse
import json
import sys
from datetime import datetime
from pathlib import Path

from xbotlib.app.cli.errors import CliError
from xbotlib.clock import ScaledClock, SystemClock
from xbotlib.config import load_settings
from xbotlib.jobs.schedules import SCHEDULES_DIR, ScheduleError, load_schedules
from xbotlib.logs import setup_logging

DEFAULT_WORKERS = 2  # worker processes per machine: each already runs 7 ticks at once across its queues


def _context(settings, db, clock=None):
    # imported here for start-up time: the job context pulls in the clients, numpy and psycopg
    from xbotlib.jobs.context import build_context
    return build_context(settings, db, clock or SystemClock())


def _open(settings):
    # imported here for start-up time: keeps `xbot --help` fast
    from xbotlib.store import migrate
    from xbotlib.store.db import Database  # start-up time, as above
    db = Database.open(settings)
    migrate.up(db, legacy_account=settings.account_id)  # jobs always run on the current schema
    return db


def cmd_job(args: argparse.Namespace) -> int:
    # imported here for start-up time: the jobs load scikit-learn, pandas and the clients
    from xbotlib.jobs import collect, learn, plan, post
    from xbotlib.jobs.daemon import Daemon  # start-up time, as above
    from xbotlib.jobs.runner import run_job  # start-up time, as above

    settings = load_settings()
    ticks = {"plan": plan.tick, "post": post.tick, "collect": collect.tick, "learn": learn.tick}
    with _open(settings) as db:
        ctx = _context(settings, db)
        if not args.once:
            entries = [e for e in load_schedules(SCHEDULES_DIR) if e.kind == "job" and e.name == args.name]
            if not entries:
                raise CliError(f"no schedule for job {args.name!r} in {SCHEDULES_DIR} (use --once for one tick)")
            Daemon(ctx, entries).run()
            return 0
        result = run_job(args.name, ctx, ticks[args.name])
    detail = json.dumps(result.detail, default=str, sort_keys=True)
    print(f"{args.name}: {result.status}" + (f" ({result.reason})" if result.reason else "") + f" {detail}")
    return 0


def clock_from_args(args):
    """The system clock, or with --clock-scale a ``ScaledClock`` every process of a bench shares."""
    if args.clock_scale is None:
        return SystemClock()
    if not args.clock_origin:
        raise CliError("--clock-scale needs --clock-origin (an ISO time shared by every process, e.g. "
                       "2026-01-05T00:00:00+00:00), so that workers on several machines agree on the time")
    try:
        origin = datetime.fromisoformat(args.clock_origin)
    except ValueError:
        raise CliError(f"--clock-origin {args.clock_origin!r} is not an ISO time (e.g. 2026-01-05T00:00:00+00:00)") \
            from None
    if origin.tzinfo is None:  # workers in other time zones would read it differently
        raise CliError(f"--clock-origin {args.clock_origin!r} has no time zone (e.g. 2026-01-05T00:00:00+00:00)")
    try:
        clock = ScaledClock(args.clock_scale, origin)
        clock.now()  # a huge scale overflows datetime here, not later inside a worker or the sandbox
    except ValueError as exc:
        raise CliError(f"--clock-scale {args.clock_scale}: {exc}") from None
    except OverflowError:
        raise CliError(f"--clock-scale {args.clock_scale} runs the clock past the year 9999 from --clock-origin "
                       f"{args.clock_origin}: pass a smaller scale (e.g. 60: an hour a minute)") from None
    return clock


def schedules_from_args(args):
    """The entries of --schedules, or a CliError naming the folder or the bad entry (before any worker starts)."""
    directory = Path(args.schedules)
    if not directory.is_dir():  # the library's message names `xbot schedule list`'s --dir
        raise CliError(f"--schedules {args.schedules!r} is not a directory (pass the folder of schedule TOML files, "
                       f"default {SCHEDULES_DIR})")
    try:
        return load_schedules(directory)
    except ScheduleError as exc:
        raise CliError(str(exc)) from None


def _child_command(args) -> list[str]:
    cmd = [sys.executable, "-m", "xbotlib.app.cli.main", "worker", "--child", "--schedules", args.schedules]
    if args.no_notebooks:
        cmd.append("--no-notebooks")
    if args.clock_scale is not None:
        cmd += ["--clock-scale", str(args.clock_scale), "--clock-origin", args.clock_origin]
    return cmd


def _pool(args, deferrer: bool, notebooks: bool) -> int:
    # imported here for start-up time: the worker loads procrastinate and every job
    import asyncio
    from xbotlib.jobs import worker  # start-up time, as above
    from xbotlib.store.accounts import list_account_ids  # start-up time, as above
    from xbotlib.store.db import connection_slots  # start-up time, as above

    settings = load_settings()
    setup_logging(log_file=settings.home_path / "logs" / "xbot.log")
    worker.quiet_procrastinate_logs()
    clock = clock_from_args(args)
    entries = schedules_from_args(args)
    if not notebooks:
        entries = [e for e in entries if e.kind == "job"]
    if args.workers < 1:
        raise CliError(f"--workers {args.workers}: needs at least 1 worker process")
    with _open(settings) as db:
        with db.connection() as conn:
            n_accounts = len(list_account_ids(conn))
            slots = connection_slots(conn)
        error, warning = worker.connection_verdict(args.workers, settings.db_pool_max, slots, deferrer)
        if error:
            raise CliError(error)
        if warning:
            print(warning, file=sys.stderr)
        if n_accounts == 0:
            print("note: no accounts in the database yet; the workers pick up accounts as they are added "
                  "(each account's first `xbot job ... --once` or `xbot account add` creates it)", file=sys.stderr)
        d = worker.Deferrer(worker.make_app(db.url), db, clock, entries) if deferrer else None
        sup = worker.Supervisor(_child_command(args), args.workers, deferrer=d)
        asyncio.run(sup.run())
    print(f"workers stopped (restarts: {sup.restarts})")
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    return _pool(args, deferrer=True, notebooks=not args.no_notebooks)


def cmd_worker(args: argparse.Namespace) -> int:
    if args.child:
        return _worker_process(args)
    return _pool(args, deferrer=not args.no_deferrer, notebooks=not args.no_notebooks)


def _worker_process(args) -> int:
    """One worker process (started by `xbot run` / `xbot worker`): serves the queues until SIGTERM."""
    # imported here for start-up time: the worker loads procrastinate and every job
    import asyncio
    import time
    from xbotlib.app.reports.runner import run_notebook  # start-up time, as above
    from xbotlib.jobs import worker  # start-up time, as above
    from xbotlib.jobs.context import build_context  # start-up time, as above
    from xbotlib.store.db import Database, DatabaseError  # start-up time, as above

    settings = load_settings()
    setup_logging(log_file=settings.home_path / "logs" / "xbot.log")
    worker.quiet_procrastinate_logs()
    clock = clock_from_args(args)
    entries = schedules_from_args(args)
    while True:  # the database may be down when the supervisor (re)starts us: wait for it
        try:
            db = Database.open(settings, check_connections=True)
            break
        except DatabaseError as exc:
            print(f"[WORKER] database unreachable at start: retrying in 2 s ({exc})", file=sys.stderr, flush=True)
            time.sleep(2)
    with db:
        runner = None if args.no_notebooks else (lambda name, params: run_notebook(name, params, db_url=db.url))
        runtime = worker.WorkerRuntime(db=db, clock=clock, entries=entries, notebook_runner=runner,
                                       context_for=worker.contexts_for_accounts(settings, db, clock, build_context))
        group = worker.WorkerGroup(worker.make_app(db.url), runtime)
        asyncio.run(group.run())
    return 0


def _pool_options(p, workers_default: int) -> None:
    p.add_argument("--workers", type=int, default=workers_default,
                   help=f"worker processes on this machine (default {workers_default}); each runs plan, post, "
                        "collect, learn and notebooks in separate queues and holds 9 PostgreSQL connections at rest "
                        "(checked against the server's max_connections before starting)")
    p.add_argument("--schedules", default=str(SCHEDULES_DIR), help="directory of schedule TOML files")
    p.add_argument("--no-notebooks", action="store_true", help="run only the jobs, not the scheduled notebooks")
    p.add_argument("--clock-scale", type=float, default=None,
                   help="benches: run the schedules this many times faster than real time (needs --clock-origin)")
    p.add_argument("--clock-origin", default=None, help="benches: the ISO time from which --clock-scale counts")


def register(sub) -> None:
    p = sub.add_parser("job", help="run one job: plan, post, collect or learn",
                       description="Run a job for XBOT_ACCOUNT_ID. With --once: one tick, recorded in job_runs. "
                                   "Without: loop that job on its schedule in schedules/ until stopped.")
    p.add_argument("name", choices=["plan", "post", "collect", "learn"])
    p.add_argument("--once", action="store_true", help="run a single tick and exit")
    p.set_defaults(func=cmd_job)

    p = sub.add_parser("run", help="the worker pool for every account, and the scheduler",
                       description="Starts worker processes serving every account in the database from the "
                                   "PostgreSQL job queue (plan, post, collect, learn and notebooks in separate "
                                   "queues), plus the deferrer that queues each occurrence of the schedules in "
                                   "schedules/. SIGTERM lets the running ticks finish, then exits. Other machines "
                                   "join with `xbot worker`. Logs also go to XBOT_HOME/logs/xbot.log.")
    _pool_options(p, DEFAULT_WORKERS)
    p.set_defaults(func=cmd_run)

    p = sub.add_parser("worker", help="join the worker pool (from this or another machine)",
                       description="Worker processes on the same job queue as `xbot run` (same XBOT_DATABASE_URL): "
                                   "they take ticks of any account. A deferrer runs here too (each schedule "
                                   "occurrence is queued once, however many run); --no-deferrer turns it off.")
    _pool_options(p, DEFAULT_WORKERS)
    p.add_argument("--no-deferrer", action="store_true", help="only serve the queues; do not queue schedule ticks")
    p.add_argument("--child", action="store_true", help=argparse.SUPPRESS)  # one worker process, started by the pool
    p.set_defaults(func=cmd_worker)
