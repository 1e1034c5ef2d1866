"""`xbot bench growth|lift|speed`: how good and how fast xbot's learning is.

- growth: the same simulated campaign for each policy over several seeds (a fresh database per
  run); followers gained, mean and spread, and each policy's ratio to the oracle.
- lift: many simulated randomised experiments with a known true lift, drawn from the scenario's
  audience model; bias, RMSE and 95% interval coverage of DR (AIPW) beside IPW and difference in means.
- speed: simulated days per second of a campaign, and where the time goes (cProfile by area).

Each prints a Markdown table with the machine and date, ready for BENCHMARKS.md.
"""
from __future__ import annotations

import argparse
import logging
import math
import statistics
import shutil
import sys
import tempfile
import time
import tomllib
import uuid
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path

import numpy as np
from scipy import stats

from xbotlib.config import PROJECT_ROOT, load_settings
from xbotlib.devtools.bench_lift import lift, lift_table
from xbotlib.devtools.bench_speed import speed, speed_table
from xbotlib.devtools.machine import machine
from xbotlib.devtools.testing import TestPostgres
from xbotlib.jobs.campaign import CampaignConfig, run_campaign
from xbotlib.sim.oracle import Oracle
from xbotlib.sim.scenario import load_scenario
from xbotlib.store import outcomes
from xbotlib.store.db import Database, create_database, drop_database

GROWTH_POLICIES = ("xbot", "random", "heuristic", "fixed", "oracle")
BENCH_SCHEDULES = PROJECT_ROOT / "bench" / "schedules"


# ----------------------------------------------------------------------------- growth

def bench_campaign(db, policy: str, seed: int, days: int, scenario_path: str | None,
                   fixed: tuple[str, int] | None = None):
    """One growth-bench campaign in ``db`` (migrated, empty): experiments off, the hourly bench cadence.
    Returns the ``campaign.CampaignRun``."""
    cfg = CampaignConfig(days=days, seed=seed, scenario_path=scenario_path, policy=policy, fixed_arm=fixed,
                         experiments=False, schedules_dir=str(BENCH_SCHEDULES))
    return run_campaign(cfg, load_settings(env={}), db)


def scenario_without_analytics(scenario: str | None, directory: str | Path) -> str:
    """A copy of ``scenario`` (a shipped name or a path; None: default) in ``directory`` whose sandbox
    refuses ``GET /2/tweets/analytics`` (``[x] analytics = false``, see docs/SCENARIO.md): the world of an
    access level without analytics, where follows come from follower-snapshot attribution."""
    loaded = load_scenario(scenario)
    if not loaded.x.analytics:
        return loaded.source
    text = Path(loaded.source).read_text(encoding="utf-8")
    if "x" in tomllib.loads(text):
        raise ValueError(f"{loaded.source} sets [x] analytics = true: set it to false in the file itself "
                         "instead of using --analytics off")
    out = Path(directory) / Path(loaded.source).name
    out.write_text(text.rstrip("\n") + "\n\n# added by `xbot bench growth --analytics off`\n[x]\nanalytics = false\n",
                   encoding="utf-8")
    return str(out)


def attribution_figures(run, conn) -> dict:
    """Follows the collector attributed at the 24-hour read, beside the sandbox's truth for the same posts:
    ``attributed`` (pass-2 follows summed), ``true_posts`` and ``true_replies`` (the sandbox's settled
    follows of those originals and replies), ``true`` (both)."""
    account_id, sandbox = run.account_ids[0], run.contexts[0].sandbox
    final = outcomes.final_follows_by_tweet(conn, account_id)
    tweets = [sandbox.audience.tweets[t] for t in final if t in sandbox.audience.tweets]
    posts = sum(t.totals.follows for t in tweets if t.target is None)
    replies = sum(t.totals.follows for t in tweets if t.target is not None)
    return {"attributed": sum(final.values()), "true_posts": posts, "true_replies": replies, "true": posts + replies}


def _campaign_followers(args: tuple) -> dict:
    """Run one campaign in a fresh database; returns followers gained (runs in a worker process)."""
    base_url, template, policy, seed, days, scenario_path, fixed = args
    logging.getLogger("xbot").setLevel(logging.WARNING)
    name = f"xbot_bench_{uuid.uuid4().hex[:10]}"
    url = create_database(base_url, name, template=template)
    try:
        with Database.from_url(url, pool_max=3) as db:
            t0 = time.perf_counter()
            run = bench_campaign(db, policy, seed, days, scenario_path, fixed)
            with db.connection() as conn:
                first, last = outcomes.first_and_last_followers(conn, run.account_ids[0])
                earned = outcomes.follows_earned_by_posts(conn, run.account_ids[0])
                truth = attribution_figures(run, conn)
            return {"policy": policy, "seed": seed, "gained": last - first, "post_follows": earned,
                    "seconds": time.perf_counter() - t0, **truth}
    finally:
        drop_database(base_url, name)


def growth(days: int = 60, seeds: int = 10, scenario: str | None = None, policies=GROWTH_POLICIES,
           workers: int = 2, analytics: bool = True) -> list[dict]:
    """Run every policy on seeds 0..seeds-1; ``analytics=False`` runs on a copy of the scenario whose
    sandbox refuses analytics (``scenario_without_analytics``)."""
    tmp = None if analytics else tempfile.mkdtemp(prefix="xbot_bench_scenario_")
    try:
        if tmp is not None:
            scenario = scenario_without_analytics(scenario, tmp)
        return _growth(days, seeds, scenario, policies, workers)
    finally:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)


def check_workers(workers: int) -> int:
    """``workers`` if it is a usable process count; else a ValueError naming the value and the fix."""
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise ValueError(f"--workers must be a whole number of processes, at least 1 (1 runs the campaigns "
                         f"one after another in this process): got {workers!r}")
    return workers


def growth_jobs(seeds: int, policies) -> list[tuple[str, int]]:
    """(policy, seed) in the order the campaigns are handed out and the results listed: seed by seed, every
    policy of a seed before the next seed, so two workers share the policies of each seed and a cut-short
    run still holds complete seeds."""
    return [(p, s) for s in range(seeds) for p in policies]


def _growth(days: int, seeds: int, scenario: str | None, policies, workers: int, pg: TestPostgres | None = None,
            out=sys.stderr) -> list[dict]:
    """Every (policy, seed) campaign, each in its own database cloned from one migrated template; the
    results in ``growth_jobs`` order whatever order they finish in, so ``workers`` changes the wall time
    and never the numbers (``tests/devtools/test_bench.py`` checks workers=1 against workers=2).
    ``workers=1`` runs them one after another in this process; more, in a pool of processes.
    ``pg``: the server to use (default a new ``TestPostgres``, dropped at the end)."""
    check_workers(workers)
    own = pg is None
    pg = pg or TestPostgres()
    fixed = Oracle(load_scenario(scenario)).best_choice()
    order = growth_jobs(seeds, policies)
    jobs = [(pg.base_url, pg.template, p, s, days, scenario, fixed if p == "fixed" else None) for p, s in order]
    progress = GrowthProgress(len(jobs), workers, out)
    results: dict[tuple[str, int], dict] = {}
    try:
        if workers == 1:
            for job in jobs:
                r = _campaign_followers(job)
                results[(r["policy"], r["seed"])] = r
                progress.done(r)
        else:
            with ProcessPoolExecutor(max_workers=min(workers, len(jobs))) as pool:
                for future in as_completed([pool.submit(_campaign_followers, job) for job in jobs]):
                    r = future.result()
                    results[(r["policy"], r["seed"])] = r
                    progress.done(r)
    finally:
        if own:
            pg.drop_all()
    return [results[key] for key in order]


class GrowthProgress:
    """One line per finished campaign on ``out``: how many are done, the campaign's own figures, the
    elapsed time and an ETA (the mean wall time per finished campaign so far, times the ones left)."""

    def __init__(self, total: int, workers: int, out=sys.stderr):
        self.total, self.workers, self.out = total, workers, out
        self.finished = 0
        self.t0 = time.perf_counter()
        print(f"  {total} campaigns on {workers} worker(s)", file=out, flush=True)

    def done(self, r: dict) -> None:
        self.finished += 1
        elapsed = time.perf_counter() - self.t0
        eta = elapsed / self.finished * (self.total - self.finished)
        print(f"  [{self.finished}/{self.total}] {r['policy']:<9} seed {r['seed']:<2} gained {r['gained']:>5} "
              f"({r['seconds']:.0f} s)  elapsed {_clock(elapsed)}, ETA {_clock(eta)}", file=self.out, flush=True)


def _clock(seconds: float) -> str:
    """``m:ss`` (or ``h:mm:ss``) for progress lines."""
    m, s = divmod(int(round(seconds)), 60)
    h, m = divmod(m, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


def _per_seed(results: list[dict], key: str = "gained") -> dict[str, dict[int, float]]:
    """policy -> seed -> ``key``: the shape both paired comparisons read."""
    by: dict[str, dict[int, float]] = {}
    for r in results:
        by.setdefault(r["policy"], {})[r["seed"]] = r[key]
    return by


def paired_differences(results: list[dict], learner: str = "xbot") -> dict[str, dict]:
    """Followers gained by ``learner`` minus each other policy, seed by seed (the seed fixes the sandbox's
    organic follows and churn, so pairing removes that shared noise): mean, its standard error, and on
    how many seeds the learner was ahead."""
    by = _per_seed(results)
    out = {}
    for p in GROWTH_POLICIES:
        if p == learner or p not in by or learner not in by:
            continue
        seeds = sorted(set(by[p]) & set(by[learner]))
        diffs = [by[learner][s] - by[p][s] for s in seeds]
        if len(diffs) < 2:
            continue
        out[p] = {"mean": statistics.mean(diffs), "se": statistics.stdev(diffs) / math.sqrt(len(diffs)),
                  "wins": sum(d > 0 for d in diffs), "n": len(diffs)}
    return out


def ratio_interval(results: list[dict], policy: str, baseline: str = "oracle", key: str = "gained",
                   level: float = 0.95) -> tuple[float, float, float] | None:
    """``policy``'s total ``key`` over ``baseline``'s on the seeds both ran, with a ``level`` interval.

    Ten seeds leave a ratio uncertain by several points; the interval says by how much. It is the
    ratio estimator's: residuals d = x − r·b per seed, se = sd(d) / (√n · mean(b)), and a t quantile
    with n − 1 degrees of freedom. Pairing by seed removes the sandbox noise the two runs share.
    None with fewer than two paired seeds (no spread to measure).
    """
    by = _per_seed(results, key)
    seeds = sorted(set(by.get(policy, {})) & set(by.get(baseline, {})))
    if len(seeds) < 2:
        return None
    x = np.array([by[policy][s] for s in seeds], float)
    b = np.array([by[baseline][s] for s in seeds], float)
    if b.sum() <= 0:
        return None
    ratio = float(x.sum() / b.sum())
    se = float(np.std(x - ratio * b, ddof=1) / (math.sqrt(len(seeds)) * b.mean()))
    t = float(stats.t.ppf(0.5 + level / 2, len(seeds) - 1))
    return ratio, ratio - t * se, ratio + t * se


def growth_table(results: list[dict], days: int, seeds: int, scenario: str | None, analytics: bool = True) -> str:
    by, earned = {}, {}
    for r in results:
        by.setdefault(r["policy"], []).append(r["gained"])
        earned.setdefault(r["policy"], []).append(r["post_follows"])
    oracle = statistics.mean(by["oracle"]) if "oracle" in by else float("nan")
    oracle_earned = statistics.mean(earned["oracle"]) if "oracle" in earned else float("nan")
    refused = "" if analytics else " (analytics refused: follows by snapshot attribution)"
    lines = [f"followers gained over {days} days, {seeds} seeds, scenario {scenario or 'default'}{refused} — {machine()}", "",
             "| policy | followers gained: mean | sd | min | max | ratio to oracle | its 95% interval "
             "| follows earned by posts (pass 2): mean | ratio to oracle |",
             "| --- | ---: | ---: | ---: | ---: | ---: | :---: | ---: | ---: |"]
    for p in GROWTH_POLICIES:
        if p not in by:
            continue
        v, e = by[p], earned[p]
        sd = statistics.stdev(v) if len(v) > 1 else 0.0
        ci = ratio_interval(results, p) if p != "oracle" else None
        interval = f"{ci[1]:.3f}–{ci[2]:.3f}" if ci else "—"
        lines.append(f"| {p} | {statistics.mean(v):.1f} | {sd:.1f} | {min(v)} | {max(v)} | "
                     f"{statistics.mean(v) / oracle:.3f} | {interval} | {statistics.mean(e):.1f} | "
                     f"{statistics.mean(e) / oracle_earned:.3f} |")
    paired = paired_differences(results)
    if paired:
        lines += ["", "| xbot minus … (same seeds) | mean difference | se | xbot ahead on |", "| --- | ---: | ---: | ---: |"]
        lines += [f"| {p} | {d['mean']:+.1f} | {d['se']:.1f} | {d['wins']}/{d['n']} seeds |" for p, d in paired.items()]
    lines += ["", "Followers gained = last minus first follower snapshot (posts' follows + organic − churn); "
              "follows earned by posts = the collector's pass-2 follows. The interval is the ratio's, paired by seed "
              "(`bench.ratio_interval`). Experiments off; the hourly bench cadence (bench/schedules/)."]
    return "\n".join(lines)


# ----------------------------------------------------------------------------- entry point

def main(name: str, argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog=f"xbot bench {name}", description=__doc__.split("\n\n")[1],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    if name == "growth":
        p.add_argument("--days", type=int, default=60, help="simulated days per campaign (default 60)")
        p.add_argument("--seeds", type=int, default=10, help="campaigns per policy, seeds 0..N-1 (default 10)")
        p.add_argument("--scenario", default=None, help="scenario TOML (default scenarios/default.toml)")
        p.add_argument("--policies", default=",".join(GROWTH_POLICIES),
                       help=f"comma-separated, from {', '.join(GROWTH_POLICIES)} (default all)")
        p.add_argument("--workers", type=int, default=2,
                       help="processes running campaigns side by side; 1 runs them one after another in this "
                            "process; the numbers are the same either way (default 2)")
        p.add_argument("--analytics", choices=("on", "off"), default="on",
                       help="off: the sandbox refuses GET /2/tweets/analytics (as X does for an access level "
                            "without it), so follows come from follower-snapshot attribution (default on)")
        a = p.parse_args(argv)
        policies = tuple(x.strip() for x in a.policies.split(",") if x.strip())
        bad = [x for x in policies if x not in GROWTH_POLICIES]
        if bad:
            p.error(f"unknown policies {bad} (expected some of {', '.join(GROWTH_POLICIES)})")
        try:
            check_workers(a.workers)
        except ValueError as exc:
            p.error(str(exc))
        res = growth(a.days, a.seeds, a.scenario, policies, a.workers, analytics=a.analytics == "on")
        print(growth_table(res, a.days, a.seeds, a.scenario, analytics=a.analytics == "on"))
    elif name == "lift":
        p.add_argument("--replicates", type=int, default=200, help="simulated experiments per cell (default 200)")
        p.add_argument("--n", type=int, default=400, help="posts per experiment (default 400)")
        p.add_argument("--experiments", default="question_cta,hashtag_1,late_evening_slot",
                       help="comma-separated experiment ids")
        p.add_argument("--scenario", default=None, help="scenario TOML (default scenarios/default.toml)")
        p.add_argument("--accounts", default="1,4", help="designs: accounts pooled per experiment (1 = one account)")
        a = p.parse_args(argv)
        results = [lift(a.replicates, a.n, e.strip(), a.scenario, accounts=int(k))
                   for k in a.accounts.split(",") for e in a.experiments.split(",") if e.strip()]
        print(lift_table(results))
    else:
        p.add_argument("--days", type=int, default=14, help="simulated days of the profiled campaign (default 14)")
        p.add_argument("--accounts", type=int, default=1, help="accounts run together by one daemon (default 1)")
        p.add_argument("--seed", type=int, default=0, help="campaign seed (default 0)")
        p.add_argument("--no-profile", action="store_true", help="time the campaign without cProfile (the "
                       "profiler itself costs about a third of the wall time)")
        p.add_argument("--memory", action="store_true", help="sample resident memory once per simulated day and "
                       "trace Python allocations (tracemalloc; slower): peak and growth after a 30-day warm-up")
        a = p.parse_args(argv)
        if not 1 <= a.days <= 365:
            p.error(f"--days must be between 1 and 365, got {a.days}")
        if not 1 <= a.accounts <= 20:
            p.error(f"--accounts must be between 1 and 20, got {a.accounts}")
        print(speed_table(speed(a.days, a.seed, a.accounts, profile=not a.no_profile, memory=a.memory)))
    return 0
