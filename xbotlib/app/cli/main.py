"""The ``xbot`` command. Each subcommand is a thin shell over xbotlib; see ``xbot --help``.

``COMMAND_GROUPS`` is the command table: one module per group, each with ``register(subparsers)``
adding its subcommands (a missing module is an ImportError, never skipped). The heavy imports
happen inside each handler so ``xbot --help`` and ``xbot doctor`` stay fast.
"""
from __future__ import annotations

import argparse
import logging
import sys
from typing import Callable

from xbotlib.app.cli import account, admin, api, auth, bench, demo, experiments, jobs, notebooks, ope, sandbox
from xbotlib.app.cli.errors import CliError
from xbotlib.config import ConfigError
from xbotlib.logs import setup_logging

EPILOG = """\
Posting is off by default (POSTING_DISABLED=true). `xbot doctor` shows the effective configuration.
The contract (commands, log tags, API routes, tables) is described in README_OPERATIONS.md."""

Handler = Callable[[argparse.Namespace], int]

# the command table, in `xbot --help` order: module -> its subcommands
COMMAND_GROUPS = (
    admin,        # doctor, db, migrate
    jobs,         # job, run
    experiments,  # experiment
    sandbox,      # sandbox
    auth,         # auth login|status|logout
    account,      # account add|list|show|check
    notebooks,    # notebook, schedule, lab
    api,          # api
    demo,         # demo
    bench,        # bench
    ope,          # ope (off-policy evaluation of a candidate policy)
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="xbot", description="xbot: a self-learning X account — jobs, "
                                     "database, sandbox, notebooks and admin API.", epilog=EPILOG,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for group in COMMAND_GROUPS:
        group.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 0
    setup_logging(logging.DEBUG if args.verbose else logging.INFO)
    try:
        return int(args.func(args) or 0)
    except (ConfigError, CliError) as exc:
        print(f"xbot: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    except Exception as exc:  # known failure types print cleanly; others keep their traceback
        # imported here for start-up time: only on the failure path (psycopg is slow to import)
        from xbotlib.store.db import DatabaseError
        from xbotlib.store.migrate import MigrationError  # start-up time, as above
        from xbotlib.store.queue import IllegalTransition  # start-up time, as above
        if isinstance(exc, (DatabaseError, MigrationError, IllegalTransition)):
            print(f"xbot: error: {exc}", file=sys.stderr)
            return 2
        raise


if __name__ == "__main__":
    sys.exit(main())
