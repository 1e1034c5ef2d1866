"""``xbot experiment list|set``: see and switch the account's randomised experiments.

Wire it in with ``register(sub)`` where ``sub`` is the argparse subparsers object of the ``xbot``
command.
"""
from __future__ import annotations

import argparse

from xbotlib.app.cli.errors import CliError
from xbotlib.clock import SystemClock
from xbotlib.config import load_settings
from xbotlib.core.experiments import REGISTRY

EXPERIMENT_HELP = """\
Experiments are registered for every account but disabled until enabled here (the demo enables
all). Each post or reply is randomised independently into each enabled experiment that applies to
it: treatment with probability ALLOCATION. The arm and its probability are stored with the decision,
so changing an allocation later keeps the lift estimates valid.

examples:
  xbot experiment list
  xbot experiment set hashtag_1 --enable --allocation 0.3
  xbot experiment set late_evening_slot --disable"""


def register(sub) -> None:
    """Add ``experiment list`` and ``experiment set ID [--enable|--disable] [--allocation P]`` to ``sub``."""
    p = sub.add_parser("experiment", help="list experiments, enable/disable them, set their allocation",
                       description="Randomised experiments of the account (XBOT_ACCOUNT_ID).",
                       epilog=EXPERIMENT_HELP, formatter_class=argparse.RawDescriptionHelpFormatter)
    actions = p.add_subparsers(dest="experiment_action", metavar="ACTION", required=True)
    ls = actions.add_parser("list", help="experiments with their state and assignment counts per arm")
    ls.set_defaults(func=cmd_experiment_list)
    st = actions.add_parser("set", help="enable/disable an experiment or change its allocation",
                            description=f"Valid ids: {', '.join(REGISTRY)}.")
    st.add_argument("experiment_id", metavar="ID", help=f"one of: {', '.join(REGISTRY)}")
    onoff = st.add_mutually_exclusive_group()
    onoff.add_argument("--enable", dest="enabled", action="store_const", const=True, default=None,
                       help="start randomising decisions into it")
    onoff.add_argument("--disable", dest="enabled", action="store_const", const=False,
                       help="stop randomising (past assignments and outcomes are kept)")
    st.add_argument("--allocation", type=float, default=None, metavar="P",
                    help="probability of the treatment arm, strictly between 0 and 1 (default 0.5)")
    st.set_defaults(func=cmd_experiment_set)




def _open(args: argparse.Namespace):
    # imported here for start-up time: keeps `xbot --help` fast
    from xbotlib.store.db import Database
    settings = load_settings()
    return settings, Database.open(settings)


def _now():
    return SystemClock().now()  # the CLI is the shell: the one place that reads the wall clock


def format_table(rows: list[dict]) -> str:
    header = f"{'experiment':<18} {'applies_to':<10} {'enabled':<8} {'alloc':>5} {'treat':>6} {'ctrl':>6}  description"
    lines = [header]
    for r in rows:
        lines.append(f"{r['experiment_id']:<18} {r['applies_to']:<10} {('yes' if r['enabled'] else 'no'):<8} "
                     f"{r['allocation']:>5.2f} {r['n_treatment']:>6} {r['n_control']:>6}  {r['description']}"
                     + ("" if r["registered"] else "  (not in the registry: ignored)"))
    return "\n".join(lines)


def cmd_experiment_list(args: argparse.Namespace) -> int:
    # imported here for start-up time: keeps `xbot --help` fast
    from xbotlib.store.experiments import ensure_experiments, list_experiments
    settings, db = _open(args)
    with db, db.connection() as conn:
        ensure_experiments(conn, settings.account_id, _now())
        rows = list_experiments(conn, settings.account_id)
    print(f"experiments of account {settings.account_id!r}:")
    print(format_table(rows))
    return 0


def cmd_experiment_set(args: argparse.Namespace) -> int:
    # imported here for start-up time: keeps `xbot --help` fast
    from xbotlib.store.experiments import set_experiment
    if args.enabled is None and args.allocation is None:
        raise CliError(f"nothing to change for {args.experiment_id!r}: pass --enable, --disable and/or --allocation P")
    settings, db = _open(args)
    with db:
        try:
            with db.connection() as conn:
                row = set_experiment(conn, settings.account_id, args.experiment_id, enabled=args.enabled,
                                     allocation=args.allocation, now=_now())
        except ValueError as exc:
            raise CliError(str(exc)) from None
    print(format_table([row]))
    return 0
