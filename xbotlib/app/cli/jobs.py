"""`xbot job …` and `xbot run`: the operational commands."""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from xbotlib.app.cli.errors import CliError
from xbotlib.clock import SystemClock
from xbotlib.config import load_settings
from xbotlib.jobs.schedules import SCHEDULES_DIR, load_schedules
from xbotlib.logs import setup_logging


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


def cmd_run(args: argparse.Namespace) -> int:
    # imported here for start-up time: the daemon loads every job (scikit-learn, pandas, the clients)
    from xbotlib.app.reports.runner import run_notebook
    from xbotlib.jobs.daemon import Daemon, DaemonLocked  # start-up time, as above

    settings = load_settings()
    setup_logging(log_file=settings.home_path / "logs" / "xbot.log")
    entries = load_schedules(Path(args.schedules))
    runner = None
    if not args.no_notebooks:
        def runner(name, params):
            return run_notebook(name, params, db_url=db.url)
    with _open(settings) as db:
        ctx = _context(settings, db)
        try:
            counts = Daemon(ctx, entries, notebook_runner=runner).run()
        except DaemonLocked as exc:
            raise CliError(str(exc)) from None
    print("ticks: " + ", ".join(f"{k}={v}" for k, v in sorted(counts.items())))
    return 0


def register(sub) -> None:
    p = sub.add_parser("job", help="run one job: plan, post, collect or learn",
                       description="Run a job for XBOT_ACCOUNT_ID. With --once: one tick, recorded in job_runs. "
                                   "Without: loop that job on its schedule in schedules/ until stopped.")
    p.add_argument("name", choices=["plan", "post", "collect", "learn"])
    p.add_argument("--once", action="store_true", help="run a single tick and exit")
    p.set_defaults(func=cmd_job)

    p = sub.add_parser("run", help="the daemon: every job and scheduled notebook on its schedule",
                       description="Runs plan, post, collect, learn and the scheduled notebooks on the cron "
                                   "expressions in schedules/. One daemon per account; SIGTERM finishes the "
                                   "current tick and exits. Logs also go to XBOT_HOME/logs/xbot.log.")
    p.add_argument("--schedules", default=str(SCHEDULES_DIR), help="directory of schedule TOML files")
    p.add_argument("--no-notebooks", action="store_true", help="run only the jobs, not the scheduled notebooks")
    p.set_defaults(func=cmd_run)
