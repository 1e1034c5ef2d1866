"""``xbot doctor``, ``xbot db url|start|stop|status|psql`` and ``xbot migrate up|down|status``: configuration,
the workspace's database and schema."""
from __future__ import annotations

import argparse
import os
import sys

from xbotlib.app.cli.errors import CliError
from xbotlib.config import ConfigError, Settings, load_settings


def register(sub) -> None:
    p = sub.add_parser("doctor", help="print the effective configuration, database and posting mode")
    p.add_argument("--no-db", action="store_true", help="do not connect to the database")
    p.set_defaults(func=cmd_doctor)

    p = sub.add_parser("db", help="the workspace's database: url, start|stop|status of the embedded server, psql",
                       description=DB_DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("action", choices=["url", "start", "stop", "status", "psql", "hold"], metavar="ACTION",
                   help="url | start | stop | status | psql [PSQL ARGS…] (hold: what `start` runs in the background)")
    p.add_argument("psql_args", nargs=argparse.REMAINDER, help="with psql: passed through, e.g. -c \"select 1\"")
    p.set_defaults(func=cmd_db)

    p = sub.add_parser("migrate", help="apply, revert or list schema migrations",
                       description="Plain-SQL migrations in migrations/. `up` applies pending ones; `down` "
                                   "reverts the newest (or down to --to N, or --all); `status` lists them.")
    p.add_argument("action", choices=["up", "down", "status"])
    p.add_argument("--to", type=int, default=None, help="target version (up: stop after it; down: stop above it)")
    p.add_argument("--all", action="store_true", help="with down: revert every migration")
    p.set_defaults(func=cmd_migrate)


def _open_db(settings: Settings):
    # imported here for start-up time: psycopg is not needed for `xbot --help` or `xbot doctor --no-db`
    from xbotlib.store.db import Database
    return Database.open(settings)


def cmd_doctor(args: argparse.Namespace) -> int:
    settings = load_settings()
    print("xbot doctor — effective configuration (secrets masked)\n")
    width = max(len(r[0]) for r in settings.masked())
    for env, shown, source, _help in settings.masked():
        print(f"  {env:<{width}}  {shown:<40} [{source}]")
    print()
    print(f"posting mode: {settings.posting_mode}")
    print(f"  {settings.posting_mode_reason()}")
    print(f"world for outcomes: {settings.world} (simulated={'false' if settings.world == 'live' else 'true'})")
    print(f"content generation: {'OpenAI (' + settings.openai_model + ')' if settings.openai_api_key else 'offline template generator (OPENAI_API_KEY unset)'}")
    for warning in doctor_warnings(settings):
        print(f"WARNING: {warning}")
    if args.no_db:
        if settings.world == "live" or settings.x_sandbox_url:
            print("X: not probed (--no-db: the jobs' X client and its tokens need the database)")
        return 0
    # imported here for start-up time: psycopg is not needed for `xbot doctor --no-db`
    from xbotlib.store import migrate
    from xbotlib.store.db import Database, DatabaseError  # start-up time, as above
    try:
        db = Database.open(settings)
    except (DatabaseError, ConfigError) as exc:
        print(f"database: UNAVAILABLE — {exc}")
        return 1
    with db:
        print(f"database: {db.describe()}")
        rows = migrate.status(db)
        pending = [r for r in rows if r["state"] == "pending"]
        names = ", ".join(f"{r['version']:04d}_{r['name']}" for r in pending)
        applied = sum(r["state"] == "applied" for r in rows)
        print(f"migrations: {applied}/{len(rows)} applied"
              + (f"; pending: {names} (run `xbot migrate up`)" if pending else ""))
        for problem in migrate.problems(rows):
            print(f"  migration {problem}")
        if pending and (settings.world == "live" or settings.x_sandbox_url):
            print("X: not probed until the schema is current (the X client reads its tokens from the database)")
            return 0
        return probe_x(settings, db)


def doctor_warnings(settings: Settings) -> list[str]:
    """What in these settings means posting can never work, each with the fix."""
    warnings = []
    if settings.live_posts and not settings.openai_api_key:
        flag = "shadow" if settings.live_posts == "shadow" else "true"
        outcome = ("nothing will ever be posted" if flag == "true"
                   else "shadow mode records nothing, and going live would post nothing")
        warnings.append(f"LIVE_POSTS={flag} without OPENAI_API_KEY: live X never gets template posts, so the plan "
                        f"job plans nothing against live X and {outcome}; set OPENAI_API_KEY "
                        "(and OPENAI_BASE_URL for an OpenAI-compatible server)")
    return warnings


PROBE_POST_ID = "20"  # a public post: without posts of its own, the access level is probed with it
ATTRIBUTION = {
    "analytics": "follows_source='analytics' (X's per-post follows)",
    "snapshot_attribution": "follows_source='snapshot_attribution' (follows attributed from follower-count "
                            "snapshots; see README_OPERATIONS.md)",
}


def probe_x(settings: Settings, db) -> int:
    """Reach X as the jobs do, and say whether GET /2/tweets/analytics is granted: that decides how the
    collect job attributes follows. Returns the exit code (1 when X cannot be reached)."""
    if settings.world != "live" and not settings.x_sandbox_url:
        print("X: the in-process sandbox (not probed; LIVE_POSTS=shadow|true or X_SANDBOX_URL name an X to probe)")
        return 0
    # imported here for start-up time: the jobs bring numpy, httpx and the OpenAI SDK
    from datetime import timedelta

    import httpx

    from xbotlib.clients.xapi import XApiError
    from xbotlib.clock import SystemClock
    from xbotlib.jobs.context import build_context
    where = settings.x_api_base_url if settings.world == "live" else settings.x_sandbox_url
    clock = SystemClock()
    try:
        x = build_context(settings, db, clock).x
        me = x.me()
        print(f"X: reached {where} as @{me.username} (user id {me.user_id}), {me.followers_count} followers")
        now = clock.now()
        own = x.own_recent_tweets(me.user_id, since=now - timedelta(days=30), max_results=5)
        probe_id = own[0].tweet_id if own else PROBE_POST_ID
        analytics = x.tweet_analytics([probe_id], now - timedelta(days=1), now)
    except (XApiError, httpx.HTTPError) as exc:  # messages name the endpoint and X's answer, never a token
        print(f"X: UNAVAILABLE at {where} — {type(exc).__name__}: {exc}")
        return 1
    probed = (f"probed with the account's newest post {probe_id}" if own else
              f"probed with public post {probe_id}: the account has no posts in the last 30 days, so the "
              "first collect pass confirms it")
    if analytics is None:
        print("per-post analytics (GET /2/tweets/analytics): NOT granted to this access level "
              f"({probed})")
        mode = "snapshot_attribution"
    else:
        print(f"per-post analytics (GET /2/tweets/analytics): granted ({probed})")
        mode = "analytics"
    print(f"collect job attribution: {ATTRIBUTION[mode]}")
    return 0


DB_DESCRIPTION = """\
The workspace (XBOT_HOME, default the checkout's .xbot) holds the embedded PostgreSQL and its default
database (`xbot demo` makes that its own xbot_demo; XBOT_DATABASE_URL overrides all of this).

  url      print the connection URL of the database every command uses
  start    keep the embedded server up in the background while you work (psql, DuckDB, notebooks)
  stop     let it go: the server stops once no other xbot process uses it
  status   is it running, who holds it, the URL (exit 3 when it is not running)
  psql     run psql on that database; anything after it goes to psql: xbot db psql -c "select 1"
"""

HOLDER_START_TIMEOUT_S = 60


def cmd_db(args: argparse.Namespace) -> int:
    settings = load_settings()
    if args.psql_args and args.action != "psql":
        raise CliError(f"`xbot db {args.action}` takes no further arguments: {' '.join(args.psql_args)!r} "
                       "(only `xbot db psql` passes arguments on, to psql)")
    if args.action in ("start", "stop", "status", "hold") and settings.database_url:
        raise CliError(f"`xbot db {args.action}` manages the embedded server, but XBOT_DATABASE_URL is set "
                       "(that server is run by whoever runs it; unset XBOT_DATABASE_URL to use the embedded one)")
    return {"url": _db_url, "start": _db_start, "stop": _db_stop, "status": _db_status, "psql": _db_psql,
            "hold": _db_hold}[args.action](settings, args)


def _db_url(settings: Settings, args: argparse.Namespace) -> int:
    # imported here for start-up time: keeps `xbot --help` fast
    from xbotlib.store.db import holder_pid, psql_command
    with _open_db(settings) as db:
        print(db.url)
        print(f"# connect with: {psql_command(db.url)} (or `xbot db psql`)", file=sys.stderr)
        if db.embedded and holder_pid(settings.home_path) is None:
            print("# the embedded server stops when the last xbot process using it exits;"
                  " run `xbot db start` to keep it up while you use psql or DuckDB", file=sys.stderr)
    return 0


def _db_start(settings: Settings, args: argparse.Namespace) -> int:
    # imported here for start-up time: keeps `xbot --help` fast
    import subprocess

    from xbotlib.store.db import embedded_status, holder_pid, wait_for  # start-up time, as above
    home = settings.home_path
    pid = holder_pid(home)
    if pid is None:
        log_file = settings.log_path
        log_file.parent.mkdir(parents=True, exist_ok=True)
        env = dict(os.environ, XBOT_HOME=str(home))  # the holder finds the same workspace from any folder
        with open(log_file, "ab") as out:
            proc = subprocess.Popen([sys.executable, "-m", "xbotlib.app.cli.main", "db", "hold"], env=env,
                                    stdin=subprocess.DEVNULL, stdout=out, stderr=out, start_new_session=True)
        started = wait_for(lambda: holder_pid(home) is not None or proc.poll() is not None, HOLDER_START_TIMEOUT_S)
        pid = holder_pid(home)
        if not started or pid is None:
            if proc.poll() is None:
                proc.terminate()
            raise CliError(f"the embedded PostgreSQL did not start within {HOLDER_START_TIMEOUT_S} s "
                           f"(exit code {proc.poll()}); see {log_file} and {home / 'pgdata' / 'log'}")
        print(f"started: the embedded PostgreSQL stays up (holder pid {pid}) until `xbot db stop`")
    else:
        print(f"already running (holder pid {pid})")
    status = embedded_status(home)
    print(f"url: {status['url']}")
    return 0


def _db_stop(settings: Settings, args: argparse.Namespace) -> int:
    # imported here for start-up time: keeps `xbot --help` fast
    import signal

    from xbotlib.store.db import embedded_status, holder_pid, process_alive, wait_for  # start-up time, as above
    home = settings.home_path
    pid = holder_pid(home)
    if pid is None:
        print("nothing to stop: no `xbot db start` holder is running for this workspace")
    else:
        os.kill(pid, signal.SIGTERM)
        # the holder removes its pid file, then (the last user) stops the server before it exits
        if not wait_for(lambda: not process_alive(pid), 30):
            raise CliError(f"the holder (pid {pid}) did not exit within 30 s; stop it with `kill {pid}`")
        print(f"stopped the holder (pid {pid})")
    status = embedded_status(home)
    if status["running"]:
        others = ", ".join(map(str, status["clients"])) or "unknown"
        print(f"the server stays up while other xbot processes use it (pids {others}); it stops when the last exits")
    else:
        print("the embedded PostgreSQL is stopped")
    return 0


def _db_status(settings: Settings, args: argparse.Namespace) -> int:
    # imported here for start-up time: keeps `xbot --help` fast
    from xbotlib.store.db import EMBEDDED_MAINTENANCE_DB, default_database, embedded_status
    home = settings.home_path
    record = default_database(home)
    status = embedded_status(home)
    print(f"workspace: {home}")
    print("default database: " + (f"{record['database']} (set by {record['set_by']} at {record['set_at']})" if record
                                  else f"{EMBEDDED_MAINTENANCE_DB} (the embedded server's own)"))
    if not status["running"]:
        print(f"embedded PostgreSQL: not running (data in {status['pgdata']}); `xbot db start` starts it")
        return 3
    holder = f"held up by `xbot db start` (pid {status['holder']})" if status["holder"] else "no holder: it stops when the last xbot process exits"
    print(f"embedded PostgreSQL: running (pid {status['pid']}); {holder}")
    print(f"xbot processes using it: {', '.join(map(str, status['clients'])) or 'none'}")
    print(f"url: {status['url']}")
    return 0


def _db_psql(settings: Settings, args: argparse.Namespace) -> int:
    # imported here for start-up time: keeps `xbot --help` fast
    import subprocess

    from xbotlib.store.db import psql_executable  # start-up time, as above
    with _open_db(settings) as db:  # holds the embedded server up while psql runs
        return subprocess.call([psql_executable(db.embedded), db.url, *args.psql_args])


def _db_hold(settings: Settings, args: argparse.Namespace) -> int:
    # imported here for start-up time: keeps `xbot --help` fast
    from xbotlib.store.db import hold_embedded_server
    hold_embedded_server(settings.home_path, on_ready=lambda url: print(f"holding the embedded PostgreSQL: {url}",
                                                                        flush=True))
    return 0


def check_migrate_options(args: argparse.Namespace, versions: list[int]) -> None:
    """Refuse options the action ignores and versions that are not on disk: `down --to -5` would revert
    everything, `up --to 999` or `down --all --to 3` would silently do something else than asked."""
    if args.all and args.action != "down":
        raise CliError(f"--all is only for `xbot migrate down` (it reverts every migration); drop it from "
                       f"`xbot migrate {args.action}`")
    if args.to is None:
        return
    if args.action == "status":
        raise CliError("--to is only for `xbot migrate up` and `down`; `xbot migrate status` lists every migration")
    if args.all:
        raise CliError(f"--to {args.to} and --all contradict each other: pass --to N to stop above version N, "
                       "or --all to revert every migration")
    if args.to not in versions and not (args.action == "down" and args.to == 0):  # down --to 0: revert all
        known = f"{min(versions)}..{max(versions)}" if versions else "none"
        raise CliError(f"--to {args.to} is not a migration version (on disk: {known}"
                       + ("; 0 reverts every migration" if args.action == "down" else "")
                       + "); `xbot migrate status` lists them")


def cmd_migrate(args: argparse.Namespace) -> int:
    # imported here for start-up time: keeps `xbot --help` fast
    from xbotlib.store import migrate
    settings = load_settings()
    check_migrate_options(args, [m.version for m in migrate.discover()])  # before the database: refuse, change nothing
    with _open_db(settings) as db:
        legacy = migrate.legacy_tables(db)
        for t in legacy:  # an xBOT database: say what was found and what `up` does (or did) with it
            missing = t["missing_columns"]
            print(f"found xBOT table {t['table']}: {t['rows']} row(s), {len(missing)} column(s) missing"
                  + (f" ({', '.join(missing)})" if missing else ""))
        if legacy:
            print(f"  `xbot migrate up` adds the missing columns and keeps "
                  f"every row; rows without an account go to {settings.account_id!r} (XBOT_ACCOUNT_ID); "
                  "see README_OPERATIONS.md, \"Coming from xBOT\"")
        if args.action == "up":
            done = migrate.up(db, target=args.to, legacy_account=settings.account_id)
            print(f"applied {len(done)} migration(s)" + "".join(f"\n  {m.version:04d}_{m.name}" for m in done))
        elif args.action == "down":
            target = args.to if args.to is not None else None
            if target is None and not args.all:
                undone = migrate.down(db, steps=1)
            else:
                undone = migrate.down(db, target=target or 0)
            print(f"reverted {len(undone)} migration(s)" + "".join(f"\n  {m.version:04d}_{m.name}" for m in undone))
        rows = migrate.status(db)
        for r in rows:
            at = r["applied_at"].isoformat(timespec="seconds") if r["applied_at"] else ""
            print(f"  {r['version']:04d}  {r['name']:<28} {r['state']:<8} {at}")
    problems = migrate.problems(rows)
    for problem in problems:
        print(f"error: migration {problem}", file=sys.stderr)
    return 1 if problems else 0  # a changed applied file fails `status` too, so scripts and CI notice
