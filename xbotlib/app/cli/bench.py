"""``xbot bench [growth|lift|speed]``: the benchmarks (``xbotlib.devtools.bench``), the one command of
the product that reaches into devtools."""
from __future__ import annotations

import argparse


def register(sub) -> None:
    p = sub.add_parser("bench", help="benchmarks: growth, lift, speed (results go in BENCHMARKS.md)",
                       description="growth: followers gained per policy over seeds vs the oracle, on one scenario or several "
                                   "(--scenarios a,b), xbot minus each policy paired by seed; library policies a team "
                                   "would use instead (mabwiser_ts, mabwiser_lin, vw: pip install -e '.[bench]') (--analytics off: "
                                   "the sandbox refuses post analytics, follows come from snapshot attribution); lift: bias, "
                                   "RMSE and coverage of DR vs IPW and difference in means; speed: simulated "
                                   "days per second and where the time goes.")
    p.add_argument("name", nargs="?", default="speed", choices=["growth", "lift", "speed"])
    p.add_argument("rest", nargs=argparse.REMAINDER, help="options for the benchmark (see xbot bench NAME --help)")
    p.set_defaults(func=cmd_bench)


def cmd_bench(args: argparse.Namespace) -> int:
    # imported here for start-up time: the benchmarks load the campaign, scipy and the test database helpers
    from xbotlib.devtools import bench
    return bench.main(args.name, args.rest)
