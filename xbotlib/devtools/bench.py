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
import cProfile
import logging
import math
import os
import pstats
import re
import resource
import statistics
import shutil
import sys
import tempfile
import time
import tracemalloc
import tomllib
import uuid
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
from scipy import stats

from xbotlib.config import PROJECT_ROOT, load_settings
from xbotlib.devtools.bench_lift import lift, lift_table
from xbotlib.devtools.machine import machine
from xbotlib.devtools.testing import TestPostgres
from xbotlib.jobs.campaign import CampaignConfig, run_campaign
from xbotlib.sim.oracle import Oracle
from xbotlib.sim.scenario import load_scenario
from xbotlib.store import outcomes, runs
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


def _growth(days: int, seeds: int, scenario: str | None, policies, workers: int) -> list[dict]:
    pg = TestPostgres()
    fixed = Oracle(load_scenario(scenario)).best_choice()
    jobs = [(pg.base_url, pg.template, p, s, days, scenario, fixed if p == "fixed" else None)
            for s in range(seeds) for p in policies]
    results = []
    with ProcessPoolExecutor(max_workers=workers) as pool:
        for i, r in enumerate(pool.map(_campaign_followers, jobs), 1):
            results.append(r)
            print(f"  [{i}/{len(jobs)}] {r['policy']:<9} seed {r['seed']:<2} gained {r['gained']:>5} "
                  f"({r['seconds']:.0f} s)", file=sys.stderr, flush=True)
    pg.drop_all()
    return results


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


# ----------------------------------------------------------------------------- speed

AREAS = (("xbotlib/jobs/plan", "plan job"), ("xbotlib/jobs/post", "post job"), ("xbotlib/jobs/collect", "collect job"),
         ("xbotlib/jobs/learn", "learn job"), ("xbotlib/sim", "sandbox X"), ("lightgbm", "LightGBM"),
         ("sklearn", "scikit-learn"), ("psycopg", "PostgreSQL driver"), ("httpx", "HTTP client"),
         ("starlette", "ASGI app"), ("asyncio", "ASGI transport loop"))


def _area(filename: str) -> str:
    return next((label for key, label in AREAS if key in filename.replace("\\", "/")), "other (python, numpy…)")


def top_functions(profile: pstats.Stats, n: int = 10, key: str = "tottime") -> list[dict]:
    """The profile's ``n`` heaviest functions by ``key`` ('tottime': self time, 'cumtime': with callees):
    ``{"function", "calls", "self_s", "cum_s"}``, heaviest first. The function is ``file:line(name)`` with the
    file shortened to its path inside a package (xbotlib/…, psycopg/…)."""
    rows = []
    for (filename, line, fn), (_cc, nc, tottime, cumtime, _callers) in profile.stats.items():  # type: ignore[attr-defined]
        path = filename.replace("\\", "/").replace(str(PROJECT_ROOT) + "/", "")
        path = re.sub(r".*/(site-packages|lib/python3\.\d+)/", "", path)
        rows.append({"function": f"{path}:{line}({fn})", "calls": nc, "self_s": tottime, "cum_s": cumtime})
    return sorted(rows, key=lambda r: -r["self_s" if key == "tottime" else "cum_s"])[:n]


def speed(days: int = 14, seed: int = 0, accounts: int = 1, profile: bool = True, memory: bool = False) -> dict:
    """One demo-cadence campaign of ``days`` for ``accounts`` accounts together (one daemon, one database),
    under cProfile when ``profile``; ``memory`` samples the process's resident set size once per simulated
    day (the daemon's progress hook) and traces Python allocations (tracemalloc: slower, so off by default)."""
    logging.getLogger("xbot").setLevel(logging.WARNING)
    pg = TestPostgres()
    url = pg.fresh_database()
    profiler = cProfile.Profile()
    rss_by_day: list[tuple[int, float]] = []
    traced_by_day: list[tuple[int, float]] = []
    if memory:
        tracemalloc.start()

    def on_progress(days_done: float) -> None:
        if memory and int(days_done) > len(rss_by_day):
            rss_by_day.append((int(days_done), _rss_mib()))
            traced_by_day.append((int(days_done), tracemalloc.get_traced_memory()[0] / 2**20))

    with Database.from_url(url, pool_max=3) as db:
        t0 = time.perf_counter()
        if profile:
            profiler.enable()
        run = run_campaign(CampaignConfig(days=days, seed=seed, accounts=accounts), load_settings(env={}), db,
                           on_progress=on_progress)
        if profile:
            profiler.disable()
        wall = time.perf_counter() - t0
        with db.connection() as conn:
            counts = {"posts": 0, "outcomes": 0, "ticks": 0}
            for account_id in run.account_ids:
                stored = outcomes.account_data_counts(conn, account_id)
                counts["posts"] += stored["posts"]
                counts["outcomes"] += stored["outcomes_pass1"] + stored["outcomes_pass2"]
                counts["ticks"] += runs.count_job_runs(conn, account_id)
    peak_traced = tracemalloc.get_traced_memory()[1] / 2**20 if memory else None
    if memory:
        tracemalloc.stop()
    pg.drop_all()
    res = {"days": days, "accounts": accounts, "wall": wall, "days_per_s": days / wall, "ticks": dict(run.ticks),
           **counts, "profiled": profile, "rss_by_day": rss_by_day, "traced_by_day": traced_by_day,
           "peak_rss_mib": _peak_rss_mib(), "peak_traced_mib": peak_traced}
    if not profile:
        return res
    prof = pstats.Stats(profiler)
    by_area: dict[str, float] = {}
    total = 0.0
    for (filename, _line, _fn), (_cc, _nc, tottime, _ct, _callers) in prof.stats.items():  # type: ignore[attr-defined]
        total += tottime
        by_area[_area(filename)] = by_area.get(_area(filename), 0.0) + tottime
    return {**res, "areas": sorted(by_area.items(), key=lambda kv: -kv[1]), "profiled_total": total,
            "round_trips": round_trips(prof),
            "waiting": max(0.0, wall - total), "top_self": top_functions(prof, 12, "tottime"),
            "top_cumulative": top_functions(prof, 12, "cumtime")}


def round_trips(profile: pstats.Stats) -> dict:
    """How often the profiled run went to PostgreSQL: ``statements`` (psycopg ``Cursor.execute`` and
    ``executemany`` calls), ``transactions`` (explicit BEGINs: each adds a BEGIN and a COMMIT round trip)
    and ``round_trips`` = statements + 2 × transactions. Counts, so they do not depend on the machine's load."""
    n = {"statements": 0, "transactions": 0}
    for (filename, _line, fn), (_cc, nc, _tt, _ct, _callers) in profile.stats.items():  # type: ignore[attr-defined]
        path = filename.replace("\\", "/")
        if path.endswith("psycopg/cursor.py") and fn in ("execute", "executemany"):
            n["statements"] += nc
        elif path.endswith("psycopg/_connection_base.py") and fn == "_get_tx_start_command":
            n["transactions"] += nc
    return {**n, "round_trips": n["statements"] + 2 * n["transactions"]}


def _rss_mib() -> float:
    """This process's resident set size now, in MiB (Linux /proc; 0 where unavailable)."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20
    except (OSError, ValueError, IndexError):
        return 0.0


def _peak_rss_mib() -> float:
    """This process's peak resident set size so far, in MiB (getrusage: KiB on Linux)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def memory_growth(by_day: list[tuple[int, float]], warm_up_days: int = 30) -> float | None:
    """MiB per 100 simulated days after ``warm_up_days`` (least squares slope of the samples), or None with
    fewer than two samples after warm-up: flat memory shows as a slope near 0."""
    pts = [(d, m) for d, m in by_day if d > warm_up_days]
    if len(pts) < 2:
        return None
    x = np.array([d for d, _ in pts], float)
    y = np.array([m for _, m in pts], float)
    return float(np.polyfit(x, y, 1)[0] * 100)


def speed_table(res: dict) -> str:
    who = "one account" if res["accounts"] == 1 else f"{res['accounts']} accounts together"
    profiled = "under the profiler" if res["profiled"] else "without the profiler"
    lines = [f"campaign speed, {res['days']} simulated days, {who} — {machine()}", "",
             f"{res['wall']:.1f} s wall {profiled} = **{res['days_per_s']:.2f} simulated days/s**; "
             f"{res['ticks']} job ticks recorded, {res['posts']} posts, {res['outcomes']} outcomes."]
    if res["profiled"]:
        rt = res["round_trips"]
        lines += ["", f"PostgreSQL: {rt['statements']:,} statements in {rt['transactions']:,} explicit transactions = "
                  f"{rt['round_trips']:,} round trips, {rt['round_trips'] / res['days']:,.0f} per simulated day, "
                  f"{rt['round_trips'] / max(1, res['ticks']):.1f} per job tick (counts: they do not depend on the load).",
                  "", "| where the time goes (self time) | seconds | share |", "| --- | ---: | ---: |"]
        for area, t in res["areas"]:
            lines.append(f"| {area} | {t:.1f} | {t / res['wall']:.0%} |")
        for key, title in (("top_self", "self time"), ("top_cumulative", "cumulative time")):
            lines += ["", f"| top functions by {title} | calls | self s | cumulative s |", "| --- | ---: | ---: | ---: |"]
            lines += [f"| `{r['function']}` | {r['calls']:,} | {r['self_s']:.2f} | {r['cum_s']:.2f} |" for r in res[key]]
    if res["rss_by_day"]:
        samples = res["rss_by_day"]
        marks = sorted({d for d, _ in samples if d in (1, 7, 30, 60, 90, 180, 270) or d == samples[-1][0]})
        rss, traced = dict(samples), dict(res["traced_by_day"])
        lines += ["", "| after day | resident set (MiB) | Python heap traced (MiB) |", "| ---: | ---: | ---: |"]
        lines += [f"| {d} | {rss[d]:.0f} | {traced[d]:.1f} |" for d in marks]
        slope_rss, slope_traced = memory_growth(samples), memory_growth(res["traced_by_day"])
        lines += ["", f"Peak resident set {res['peak_rss_mib']:.0f} MiB, peak traced Python heap "
                  f"{res['peak_traced_mib']:.0f} MiB; after a 30-day warm-up the resident set grows "
                  + (f"{slope_rss:+.1f} MiB and the traced heap {slope_traced:+.1f} MiB per 100 simulated days."
                     if slope_rss is not None else "— (run longer than 31 days to measure it).")]
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
        p.add_argument("--workers", type=int, default=2, help="campaigns run in parallel (default 2)")
        p.add_argument("--analytics", choices=("on", "off"), default="on",
                       help="off: the sandbox refuses GET /2/tweets/analytics (as X does for an access level "
                            "without it), so follows come from follower-snapshot attribution (default on)")
        a = p.parse_args(argv)
        policies = tuple(x.strip() for x in a.policies.split(",") if x.strip())
        bad = [x for x in policies if x not in GROWTH_POLICIES]
        if bad:
            p.error(f"unknown policies {bad} (expected some of {', '.join(GROWTH_POLICIES)})")
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
