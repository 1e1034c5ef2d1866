"""What a short campaign stores, as JSON without the columns that differ from run to run (random ids): run it
from two checkouts and compare, to show a speed change leaves the jobs doing and storing the same.

    PYTHONPATH=<checkout A> python bench/campaign_store.py --days 3 --accounts 2 --out a.json
    PYTHONPATH=<checkout B> python bench/campaign_store.py --days 3 --accounts 2 --out b.json
    python bench/campaign_store.py --compare a.json b.json      # every table the same, job_runs in run-id order

``--cadence bench --policy heuristic --accounts 1 --days 20`` runs a growth-bench campaign instead (the hourly
cadence of bench/schedules/, experiments off, the policy given): the path ``xbot bench growth`` times.

Used for issue #19's second pass (BENCHMARKS.md, *Campaign speed (issue #19, second pass)*).
"""
from __future__ import annotations

import argparse
import json
import logging
import sys

from xbotlib.app.cli.options import at_least
from xbotlib.config import load_settings
from xbotlib.devtools.bench import bench_campaign
from xbotlib.devtools.testing import TestPostgres
from xbotlib.jobs.campaign import CampaignConfig, run_campaign
from xbotlib.store.db import Database

# table -> ORDER BY; random ids (decision_id, snapshot_id, …) are dropped, rows are compared as sorted sets
TABLES = {"content_metadata": "account_id, created_at, content", "outcomes": "account_id, collected_at, collected_pass",
          "posted_decisions": "account_id, posted_at, tweet_id", "follower_snapshots": "account_id, taken_at",
          "bandit_arms": "1, 2, 3", "experiment_assignments": "1, 2, 3",
          "predictors": "account_id, kind, version"}
RANDOM_IDS = {"decision_id", "snapshot_id", "outcome_id", "updated_at", "id", "assignment_id",
              "predictor_id"}


def dump(days: int, accounts: int, seed: int, cadence: str = "speed", policy: str = "xbot") -> dict:
    logging.getLogger("xbot").setLevel(logging.WARNING)
    pg = TestPostgres()
    url = pg.fresh_database()
    out: dict = {}
    with Database.from_url(url, pool_max=3) as db:
        if cadence == "bench":
            if accounts != 1:
                raise SystemExit("--cadence bench runs one account (pass --accounts 1)")
            bench_campaign(db, policy, seed, days, None)
        else:
            run_campaign(CampaignConfig(days=days, seed=seed, accounts=accounts, policy=policy),
                         load_settings(env={}), db)
        with db.connection() as conn:
            out["job_runs"] = conn.execute("SELECT run_id, account_id, job, status, started_at, finished_at, detail, "
                                           "error FROM job_runs ORDER BY run_id").fetchall()
            for table, order in TABLES.items():
                out[table] = [{k: v for k, v in r.items() if k not in RANDOM_IDS}
                              for r in conn.execute(f"SELECT * FROM {table} ORDER BY {order}").fetchall()]
    pg.drop_all()
    return json.loads(json.dumps(out, default=str))


def compare(a: dict, b: dict) -> list[str]:
    """The tables that differ (job_runs compared in run-id order, the others as sets of rows)."""
    bad = [] if a["job_runs"] == b["job_runs"] else ["job_runs"]
    for table in TABLES:
        if sorted(json.dumps(r, sort_keys=True) for r in a[table]) != sorted(json.dumps(r, sort_keys=True) for r in b[table]):
            bad.append(table)
    return bad


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--days", type=at_least(1), default=3)
    ap.add_argument("--accounts", type=at_least(1), default=2)
    ap.add_argument("--seed", type=at_least(0), default=3)
    ap.add_argument("--cadence", choices=("speed", "bench"), default="speed",
                    help="speed: the production schedules/ (xbot bench speed); bench: the growth bench's hourly one")
    ap.add_argument("--policy", default="xbot", help="the campaign's policy (default xbot)")
    ap.add_argument("--out", help="write the dump here")
    ap.add_argument("--compare", nargs=2, metavar=("A", "B"), help="compare two dumps")
    args = ap.parse_args(argv)
    if args.compare:
        a, b = (json.load(open(path)) for path in args.compare)
        bad = compare(a, b)
        print("the same in every table" if not bad else f"differ: {', '.join(bad)}")
        return 1 if bad else 0
    if not args.out:
        ap.error("--out FILE (or --compare A B)")
    data = dump(args.days, args.accounts, args.seed, args.cadence, args.policy)
    with open(args.out, "w") as f:
        json.dump(data, f, indent=0, sort_keys=True)
    print(args.out, {k: len(v) for k, v in data.items()})
    return 0


if __name__ == "__main__":
    sys.exit(main())
