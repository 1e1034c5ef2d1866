"""How much audience fatigue each policy's posts suffered in real growth-bench campaigns.

The sandbox audience reaches fewer people with a post that repeats the account's recent ones
(``fatigue`` in the scenario; docs/SCENARIO.md). The oracle ignores this: it knows each hook's and
hour's expected follows for a *fresh* post. This runs the growth benchmark's campaign (real jobs, a
fresh database each) and reads the sandbox's own record of every original post's similarity to
recent ones, to show how much each policy lost to it:

- fatigued: the share of posts above the scenario's similarity onset;
- visits ×: the mean multiplier fatigue put on their expected profile visits (it scales both reach
  and engagement per impression, so visits take it squared).

    .venv/bin/python bench/fatigue_by_policy.py --scenario default --policies oracle,xbot --seeds 0,1
"""
from __future__ import annotations

import argparse
import logging
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from xbotlib.devtools.bench import bench_campaign  # noqa: E402
from xbotlib.sim.policies import POLICY_NAMES  # noqa: E402
from xbotlib.store.db import Database  # noqa: E402
from xbotlib.store.outcomes import first_and_last_followers  # noqa: E402
from xbotlib.sim.audience import fatigue_multiplier  # noqa: E402
from xbotlib.sim.oracle import Oracle  # noqa: E402
from xbotlib.devtools.testing import TestPostgres  # noqa: E402


def campaign_fatigue(db: Database, scenario: str | None, policy: str, seed: int, days: int = 60) -> dict:
    """Run one bench campaign in ``db`` (migrated, empty) and summarise its original posts' fatigue."""
    oracle = Oracle(scenario)
    run = bench_campaign(db, policy, seed, days, scenario, oracle.best_choice() if policy == "fixed" else None)
    with db.connection() as conn:
        first, last = first_and_last_followers(conn, run.account_ids[0])
    posts = [t for t in run.contexts[0].sandbox.audience.tweets.values() if t.target is None]
    fatigue = np.array([fatigue_multiplier(oracle.scenario, t.similarity) for t in posts])
    return {"policy": policy, "seed": seed, "gained": last - first, "posts": len(posts),
            "post_follows": sum(t.totals.follows for t in posts),
            "fatigued": float(np.mean(fatigue < 1)) if posts else 0.0,
            "visits_multiplier": float(np.mean(fatigue ** 2)) if posts else 1.0}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--scenario", default=None, help="shipped name or TOML path (default: default)")
    ap.add_argument("--policies", default="oracle,xbot", help=f"comma-separated, from {', '.join(POLICY_NAMES)}")
    ap.add_argument("--seeds", default="0,1", help="comma-separated seeds (default 0,1)")
    ap.add_argument("--days", type=int, default=60, help="simulated days per campaign (default 60)")
    a = ap.parse_args(argv)
    policies = [p.strip() for p in a.policies.split(",") if p.strip()]
    unknown = [p for p in policies if p not in POLICY_NAMES]
    if unknown or not policies:
        ap.error(f"--policies {a.policies!r}: expected names from {', '.join(POLICY_NAMES)}")
    try:
        seeds = [int(s) for s in a.seeds.split(",")]
    except ValueError:
        ap.error(f"--seeds {a.seeds!r}: expected comma-separated integers, e.g. 0,1")
    logging.getLogger("xbot").setLevel(logging.WARNING)
    pg = TestPostgres()
    print(f"scenario {a.scenario or 'default'}, {a.days} days\n")
    print("| policy | seed | followers gained | posts | follows earned by posts | share fatigued | visits × |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    try:
        for policy in policies:
            for seed in seeds:
                started = time.time()
                with Database.from_url(pg.fresh_database(), pool_max=3) as db:
                    r = campaign_fatigue(db, a.scenario, policy, seed, a.days)
                print(f"| {policy} | {seed} | {r['gained']} | {r['posts']} | {r['post_follows']} | "
                      f"{r['fatigued']:.2f} | {r['visits_multiplier']:.3f} |", flush=True)
                print(f"  ({time.time() - started:.0f} s)", file=sys.stderr)
    finally:
        pg.drop_all()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
