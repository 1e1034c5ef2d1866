"""``xbot doctor``, ``xbot db url`` and ``xbot migrate up|down|status``: configuration and schema."""
from __future__ import annotations

import argparse
import sys

from xbotlib.config import ConfigError, Settings, load_settings


def register(sub) -> None:
    p = sub.add_parser("doctor", help="print the effective configuration, database and posting mode")
    p.add_argument("--no-db", action="store_true", help="do not connect to the database")
    p.set_defaults(func=cmd_doctor)

    p = sub.add_parser("db", help="database helpers")
    p.add_argument("action", choices=["url"], help="url: print the connection URL (and how to use psql)")
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
    if args.no_db:
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
        pending = [r for r in rows if r["state"] != "applied"]
        names = ", ".join(f"{r['version']:04d}_{r['name']}" for r in pending)
        print(f"migrations: {len(rows) - len(pending)}/{len(rows)} applied"
              + (f"; pending: {names} (run `xbot migrate up`)" if pending else ""))
    return 0


def cmd_db(args: argparse.Namespace) -> int:
    settings = load_settings()
    # imported here for start-up time: keeps `xbot --help` fast
    from xbotlib.store.db import psql_command
    with _open_db(settings) as db:
        if args.action == "url":
            print(db.url)
            print(f"# connect with: {psql_command(db.url)}", file=sys.stderr)
            if db.embedded:
                print("# the embedded server stops when the last xbot process using it exits;"
                      " keep one running (e.g. `xbot lab` or `xbot run`) while you use psql", file=sys.stderr)
    return 0


def cmd_migrate(args: argparse.Namespace) -> int:
    # imported here for start-up time: keeps `xbot --help` fast
    from xbotlib.store import migrate
    settings = load_settings()
    with _open_db(settings) as db:
        if args.action == "up":
            done = migrate.up(db, target=args.to)
            print(f"applied {len(done)} migration(s)" + "".join(f"\n  {m.version:04d}_{m.name}" for m in done))
        elif args.action == "down":
            target = args.to if args.to is not None else None
            if target is None and not args.all:
                undone = migrate.down(db, steps=1)
            else:
                undone = migrate.down(db, target=target or 0)
            print(f"reverted {len(undone)} migration(s)" + "".join(f"\n  {m.version:04d}_{m.name}" for m in undone))
        for r in migrate.status(db):
            at = r["applied_at"].isoformat(timespec="seconds") if r["applied_at"] else ""
            print(f"  {r['version']:04d}  {r['name']:<28} {r['state']:<8} {at}")
    return 0
