"""Off-policy evaluation where the truth is known: estimate from xbot's logs, then run the candidate.

    PYTHONPATH=$PWD .venv/bin/python bench/bench_ope.py [--seeds 4] [--days 60] [--workers 2] [--scenario S]
                                                        [--save FILE | --load FILE]

Per seed: the xbot learner runs ``--days`` days in the sandbox (the logging policy, the growth bench's setup:
experiments off, the bench cadence); `xbot ope`'s computation (``review_decisions``) estimates three
candidates from that log — ``fixed`` (the scenario's best (hook, hour) in hindsight, as in the growth bench),
``random`` and ``heuristic``; then each candidate runs the same days on the same seed and its true value per
post is the mean of its own posts' follows at the final read (the same reward the estimate is of). The table
gives per seed the estimates (DR, IPW, SNIPW) beside the truth, and over seeds each estimator's interval
coverage (the share of seeds whose 95% interval holds the truth), bias and RMSE.

What "truth" means here: the candidate's value in its own campaign. The estimate is of the candidate's value
on the logger's decisions — the same days, but the follower base and history the logger made. The two differ
where the candidate would have grown the account differently (a better policy earns more per post later
because it has more followers); that gap is part of what the coverage measures, and why DR's intervals,
which only carry the estimate's sampling error, can under-cover.

Each campaign runs in its own database cloned from one migrated template, in a pool of ``--workers``
processes (``xbotlib.devtools.bench``'s pattern); a campaign costs ~40 s per 60 days on one core.
"""
from __future__ import annotations

import argparse
import logging
import math
import pickle
import sys
import time
import uuid
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path

import numpy as np

from xbotlib.app.cli.options import at_least
from xbotlib.app.analysis.ope import review_decisions
from xbotlib.devtools.bench import bench_campaign
from xbotlib.devtools.machine import machine
from xbotlib.devtools.testing import TestPostgres
from xbotlib.sim.oracle import Oracle
from xbotlib.sim.policies import make_policy
from xbotlib.sim.scenario import load_scenario
from xbotlib.store.db import Database, create_database, drop_database
from xbotlib.store.ope import logged_decisions
from xbotlib.store.queue import account_created_at

CANDIDATES = ("fixed", "random", "heuristic")
ESTIMATORS = ("DR", "IPW", "SNIPW")


def _campaign(args: tuple) -> dict:
    """One campaign in a fresh database (a worker process): the candidate's value per post, and for the logger
    (policy xbot) its log, what ``estimate`` needs to replay it."""
    base_url, template, policy, seed, days, scenario, fixed = args
    logging.getLogger("xbot").setLevel(logging.WARNING)
    name = f"xbot_bench_{uuid.uuid4().hex[:10]}"
    url = create_database(base_url, name, template=template)
    t0 = time.process_time()
    try:
        with Database.from_url(url, pool_max=3) as db:
            run = bench_campaign(db, policy, seed, days, scenario, fixed)
            ctx = run.contexts[0]
            with db.connection() as conn:
                decisions = logged_decisions(conn, ctx.account_id, ctx.world)
                created = account_created_at(conn, ctx.account_id)
    finally:
        drop_database(base_url, name)
    follows = np.array([d.follows for d in decisions if d.decision_type == "post" and d.follows is not None])
    out = {"policy": policy, "seed": seed, "value": float(follows.mean()),
           "value_se": float(follows.std(ddof=1) / math.sqrt(follows.size)), "posts": int(follows.size),
           "cpu_s": time.process_time() - t0}
    if policy == "xbot":
        out["log"] = {"decisions": decisions, "created": created, "vocabulary": ctx.vocabulary,
                      "hours": list(ctx.settings.posting_hours), "max_run": ctx.settings.rotation_max_run,
                      "account": ctx.account_id}
    return out


def estimate(logger: dict, fixed) -> dict:
    """Every candidate's estimates from the logger's campaign log (`xbot ope`'s computation)."""
    log, out = logger["log"], {}
    for cand in CANDIDATES:
        review = review_decisions(log["decisions"], make_policy(cand, fixed=fixed), vocabulary=log["vocabulary"],
                                  posting_hours=log["hours"], rotation_max_run=log["max_run"],
                                  account_created_at=log["created"], account_id=log["account"], policy_label=cand,
                                  seed=logger["seed"])
        out[cand] = {"ess": review.overlap.ess, "off_support": review.overlap.off_support, "n": review.overlap.n,
                     "mean_w": review.overlap.mean_weight,
                     **{e.estimator: (e.value, e.ci_low, e.ci_high) for e in review.estimates}}
    return out


def run(seeds: int, days: int, scenario: str | None, workers: int) -> list[dict]:
    pg = TestPostgres()
    fixed = Oracle(load_scenario(scenario)).best_choice()
    jobs = [(pg.base_url, pg.template, p, s, days, scenario, fixed) for s in range(seeds) for p in ("xbot", *CANDIDATES)]
    results = []
    t0 = time.perf_counter()
    try:
        with ProcessPoolExecutor(max_workers=workers) as pool:
            for fut in as_completed([pool.submit(_campaign, j) for j in jobs]):
                r = fut.result()
                results.append(r)
                print(f"[{len(results)}/{len(jobs)}] {r['policy']} seed {r['seed']}: {r['value']:.3f} follows/post, "
                      f"cpu {r['cpu_s']:.0f} s, {time.perf_counter() - t0:.0f} s elapsed", file=sys.stderr)
    finally:
        pg.drop_all()
    return results


def table(results: list[dict], days: int, seeds: int, scenario: str | None, fixed) -> str:
    by = {(r["policy"], r["seed"]): r for r in results}
    estimates = {s: estimate(by[("xbot", s)], fixed) for s in range(seeds)}
    lines = [f"Off-policy estimates from {days}-day xbot logs vs the candidate's own {days}-day run, "
             f"{seeds} seeds, scenario {scenario or 'default'} (fixed = {fixed[0]}:{fixed[1]}); {machine()}", "",
             "| candidate | seed | truth (± se) | DR [95% CI] | IPW [95% CI] | SNIPW [95% CI] | ESS / n | mean w | off-support |",
             "|---|---|---|---|---|---|---|---|---|"]
    summary = {c: {e: [] for e in ESTIMATORS} for c in CANDIDATES}
    for cand in CANDIDATES:
        for s in range(seeds):
            est, truth = estimates[s][cand], by[(cand, s)]
            cells = []
            for e in ESTIMATORS:
                v, lo, hi = est[e]
                cells.append(f"{v:.2f} [{lo:.2f}, {hi:.2f}]" if math.isfinite(v) else "—")
                summary[cand][e].append((v, lo, hi, truth["value"]))
            lines.append(f"| {cand} | {s} | {truth['value']:.2f} ± {truth['value_se']:.2f} | {' | '.join(cells)} | "
                         f"{est['ess']:.0f} / {est['n']} | {est['mean_w']:.2f} | {est['off_support']:.0%} |")
    lines += ["", "| candidate | estimator | coverage | bias | RMSE |", "|---|---|---|---|---|"]
    for cand in CANDIDATES:
        for e in ESTIMATORS:
            rows = [r for r in summary[cand][e] if math.isfinite(r[0])]
            if not rows:
                lines.append(f"| {cand} | {e} | — | — | — |")
                continue
            err = np.array([v - t for v, _, _, t in rows])
            cover = np.mean([lo <= t <= hi for _, lo, hi, t in rows])
            lines.append(f"| {cand} | {e} | {cover:.0%} ({len(rows)} seeds) | {err.mean():+.2f} | "
                         f"{math.sqrt((err ** 2).mean()):.2f} |")
    logged = [by[("xbot", s)]["value"] for s in range(seeds)]
    lines.append(f"\nThe logger (xbot) earned {np.mean(logged):.2f} follows/post on average over these seeds.")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seeds", type=at_least(1), default=4, help="seeds 0..N-1 (default 4)")
    ap.add_argument("--days", type=at_least(1), default=60, help="simulated days per campaign (default 60)")
    ap.add_argument("--scenario", default=None, help="a shipped scenario name or a path (default: the default one)")
    ap.add_argument("--workers", type=at_least(1), default=2, help="campaigns in parallel (default 2)")
    ap.add_argument("--save", type=Path, default=None, help="keep the campaigns' results and logs in this file")
    ap.add_argument("--load", type=Path, default=None, help="estimate again from a --save file, running nothing")
    args = ap.parse_args(argv)
    load0 = open("/proc/loadavg").read().split()[:3]
    t0 = time.perf_counter()
    if args.load:
        results = pickle.loads(args.load.read_bytes())
    else:
        results = run(args.seeds, args.days, args.scenario, args.workers)
        if args.save:
            args.save.write_bytes(pickle.dumps(results))
    fixed = Oracle(load_scenario(args.scenario)).best_choice()
    print(table(results, args.days, args.seeds, args.scenario, fixed))
    cpu = sum(r["cpu_s"] for r in results)
    print(f"\nwall {time.perf_counter() - t0:.0f} s, campaigns' CPU {cpu:.0f} s, {args.workers} workers; "
          f"load before {' '.join(load0)}, after {' '.join(open('/proc/loadavg').read().split()[:3])}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
