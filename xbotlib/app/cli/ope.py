"""``xbot ope``: estimate a candidate policy's value from the account's logged decisions (off-policy).

Wire it in with ``register(sub)``; the work is ``xbotlib.app.analysis.ope.review_policy``.
"""
from __future__ import annotations

import argparse
import contextlib
import sys

from xbotlib.app.cli.errors import CliError
from xbotlib.config import load_settings

OPE_HELP = """\
The value is follows per post at the final (24-hour) read, estimated three ways from the posts the
account's policy actually made, each with the probability it was chosen with:
  DR     the reward model's value plus weighted residuals (the one to read first)
  IPW    the follows reweighted by candidate/logger probability of each logged (hook, hour)
  SNIPW  IPW divided by the mean weight (less variance, a little bias)
Intervals are 95%, from each estimator's influence function. ESS is the effective sample size of the
weights; "mass on never-logged actions" is how much of the candidate's choice the log never shows:
when it is large, only DR's reward model speaks for those choices, and a WARNING says so.
For a learner candidate (xbot), the estimate is what it would have chosen given the history the
logger made, not what running it from the start would earn.

examples:
  xbot ope --policy random
  xbot ope --policy fixed --fixed question:19
  xbot ope --account demo-1 --policy heuristic --draws 100"""


@contextlib.contextmanager
def decisions_bar():
    """A progress bar on stderr (a terminal only) over the decisions the candidate is asked about."""
    from tqdm import tqdm  # imported here for start-up time, as below
    with tqdm(desc="decisions", unit="decision", file=sys.stderr, mininterval=0.5, disable=None, leave=False) as bar:
        def on_progress(done: int, total: int) -> None:
            bar.total = total
            bar.update(done - bar.n)
        yield on_progress


def register(sub) -> None:
    """Add ``ope`` to ``sub``."""
    p = sub.add_parser("ope", help="off-policy evaluation: a candidate policy's value from the logged decisions",
                       description="Estimate what a candidate policy would have earned per post on the account's "
                                   "logged decisions (DR, IPW, SNIPW with 95% intervals and overlap diagnostics).",
                       epilog=OPE_HELP, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--account", default=None, help="account id (default: XBOT_ACCOUNT_ID when stored, else the "
                                                   "account with the most decisions)")
    p.add_argument("--policy", required=True, metavar="NAME",
                   help="candidate policy: xbot, random, heuristic, fixed (with --fixed), oracle (sandbox only), or "
                        "any other name of the registry (xbotlib.sim.policies.POLICIES)")
    p.add_argument("--fixed", default=None, metavar="HOOK:HOUR", help="the (hook, hour) of --policy fixed, "
                                                                     "e.g. question:19")
    p.add_argument("--draws", type=int, default=40, help="calls of the candidate per decision to read its "
                                                         "probabilities (default 40, at most 10000: each is then "
                                                         "read to within ±0.005)")
    p.add_argument("--seed", type=int, default=0, help="seed of the candidate's draws and the DR folds (default 0)")
    p.set_defaults(func=cmd_ope)


def cmd_ope(args: argparse.Namespace) -> int:
    # imported here for start-up time: keeps `xbot --help` fast (pandas, psycopg, the simulator)
    from xbotlib.app.analysis.ope import parse_arm, review_policy
    from xbotlib.core.ope_replay import check_draws
    from xbotlib.store.db import Database
    from xbotlib.views.accounts import default_account
    try:
        fixed = parse_arm(args.fixed)
    except ValueError as exc:
        raise CliError(f"--fixed: {exc}") from exc
    if args.policy == "fixed" and fixed is None:
        raise CliError("--policy fixed needs --fixed HOOK:HOUR, e.g. --fixed question:19")
    if args.policy != "fixed" and fixed is not None:  # else the arm is ignored and another policy's value printed
        raise CliError(f"--fixed {args.fixed} is only for --policy fixed (got --policy {args.policy}); "
                       f"pass --policy fixed --fixed {args.fixed}, or drop --fixed")
    try:
        check_draws(args.draws)
    except ValueError as exc:
        raise CliError(f"--{exc}") from exc
    if args.seed < 0:  # numpy's generators take none, and its message names neither --seed nor the value
        raise CliError(f"--seed must be 0 or more, got {args.seed}")
    settings = load_settings()
    with Database.open(settings) as db, db.connection() as conn:
        account = args.account or default_account(conn, settings.account_id)
        try:
            with decisions_bar() as on_progress:
                review = review_policy(conn, settings, account, args.policy, fixed=fixed, draws=args.draws,
                                       seed=args.seed, on_progress=on_progress)
        except ValueError as exc:  # unknown account or policy, nothing to evaluate: the message says which
            raise CliError(str(exc)) from exc
    print(review.text())
    return 0
