"""The ``xbot`` command. Each subcommand is a thin shell over xbotlib; see ``xbot --help``.

Subcommands register themselves in ``COMMANDS`` via ``build_parser``; the heavy imports happen
inside each handler so ``xbot --help`` and ``xbot doctor`` stay fast.
"""
from __future__ import annotations

import argparse
import logging
import sys
from typing import Callable

from xbotlib.config import ConfigError, Settings, load_settings

EPILOG = """\
Posting is off by default (POSTING_DISABLED=true). `xbot doctor` shows the effective configuration.
The contract (commands, log tags, API routes, tables) is described in README_OPERATIONS.md."""


class CliError(RuntimeError):
    """A user-facing error: printed without a traceback, exit code 2."""


def _settings() -> Settings:
    return load_settings()


def _open_db(settings: Settings):
    from xbotlib.store.db import Database
    return Database.open(settings)


# ----------------------------------------------------------------------------- doctor / db / migrate

def cmd_doctor(args: argparse.Namespace) -> int:
    settings = _settings()
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
    from xbotlib.store.db import Database, DatabaseError
    from xbotlib.store import migrate
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
    settings = _settings()
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
    from xbotlib.store import migrate
    settings = _settings()
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


# ----------------------------------------------------------------------------- registry

Handler = Callable[[argparse.Namespace], int]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="xbot", description="xbot: a self-learning X account — jobs, "
                                     "database, sandbox, notebooks and admin API.", epilog=EPILOG,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

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

    for register in _extensions():
        register(sub)
    return parser


def _extensions() -> list[Callable]:
    """Subcommands defined next to the code they drive (jobs, sandbox, notebooks, api, demo…)."""
    import importlib
    regs = []
    for mod, fn in (("xbotlib.app.cli.jobs", "register"), ("xbotlib.app.cli.experiments", "register_experiment_commands"),
                    ("xbotlib.app.cli.sandbox", "register"), ("xbotlib.app.cli.notebooks", "register"),
                    ("xbotlib.app.cli.api", "register"), ("xbotlib.app.cli.demo", "register")):
        try:
            m = importlib.import_module(mod)
        except ModuleNotFoundError as exc:
            if exc.name == mod:
                continue
            raise
        regs.append(getattr(m, fn))
    return regs


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 0
    from xbotlib.logs import setup_logging
    setup_logging(logging.DEBUG if args.verbose else logging.INFO)
    try:
        return int(args.func(args) or 0)
    except (ConfigError, CliError) as exc:
        print(f"xbot: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    except Exception as exc:  # known failure types print cleanly; others keep their traceback
        from xbotlib.store.db import DatabaseError
        from xbotlib.store.migrate import MigrationError
        from xbotlib.store.queue import IllegalTransition
        if isinstance(exc, (DatabaseError, MigrationError, IllegalTransition)):
            print(f"xbot: error: {exc}", file=sys.stderr)
            return 2
        raise


if __name__ == "__main__":
    # run the imported module's main: under `python -m xbotlib.app.cli.main` this file is also __main__, and
    # subcommands raising xbotlib.app.cli.main.CliError must meet the same class in the except clause
    from xbotlib.app.cli.main import main as _main
    sys.exit(_main())
