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
                       description="Randomised experiments of the account: XBOT_ACCOUNT_ID when it is stored, else the "
                                   "account with the most decisions (after `xbot demo`, the demo's).",
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
                    help="probability of the treatment arm, between 0.01 and 0.99 (default 0.5)")
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
    from xbotlib.views.accounts import default_account
    settings, db = _open(args)
    with db, db.connection() as conn:
        account = default_account(conn, settings.account_id)  # after `xbot demo`: the demo's account
        ensure_experiments(conn, account, _now())
        rows = list_experiments(conn, account)
    print(f"experiments of account {account!r}:")
    print(format_table(rows))
    return 0


def cmd_experiment_set(args: argparse.Namespace) -> int:
    # imported here for start-up time: keeps `xbot --help` fast
    from xbotlib.store.experiments import set_experiment
    from xbotlib.views.accounts import default_account
    if args.enabled is None and args.allocation is None:
        raise CliError(f"nothing to change for {args.experiment_id!r}: pass --enable, --disable and/or --allocation P")
    settings, db = _open(args)
    with db:
        try:
            with db.connection() as conn:
                account = default_account(conn, settings.account_id)
                row = set_experiment(conn, account, args.experiment_id, enabled=args.enabled,
                                     allocation=args.allocation, now=_now())
        except ValueError as exc:
            raise CliError(str(exc)) from None
    print(f"experiments of account {account!r}:")
    print(format_table([row]))
    return 0
