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
import math
import os
import platform
import pstats
import statistics
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from datetime import date
from pathlib import Path

import numpy as np

from xbotlib.config import PROJECT_ROOT

GROWTH_POLICIES = ("xbot", "random", "heuristic", "fixed", "oracle")
BENCH_SCHEDULES = PROJECT_ROOT / "bench" / "schedules"


def machine() -> str:
    """CPU model, cores, Python version and today's date: the line every benchmark table carries."""
    cpu = platform.processor() or ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{cpu or platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, {date.today()}"


# ----------------------------------------------------------------------------- growth

def bench_campaign(db, policy: str, seed: int, days: int, scenario_path: str | None,
                   fixed: tuple[str, int] | None = None):
    """One growth-bench campaign in ``db`` (migrated, empty): experiments off, the hourly bench cadence.
    Returns the ``demo.CampaignRun``."""
    from xbotlib.config import load_settings
    from xbotlib.jobs.campaign import CampaignConfig, run_campaign

    cfg = CampaignConfig(days=days, seed=seed, scenario_path=scenario_path, policy=policy, fixed_arm=fixed,
                         experiments=False, schedules_dir=str(BENCH_SCHEDULES))
    return run_campaign(cfg, load_settings(env={}), db)


def _campaign_followers(args: tuple) -> dict:
    """Run one campaign in a fresh database; returns followers gained (runs in a worker process)."""
    base_url, template, policy, seed, days, scenario_path, fixed = args
    import logging
    import uuid

    import psycopg

    from xbotlib.store.db import Database
    from xbotlib.jobs.campaign import followers_gained
    from xbotlib.devtools.testing import with_dbname

    logging.getLogger("xbot").setLevel(logging.WARNING)
    name = f"xbot_bench_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(base_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template}"')
    try:
        with Database.from_url(with_dbname(base_url, name), pool_max=3) as db:
            t0 = time.perf_counter()
            run = bench_campaign(db, policy, seed, days, scenario_path, fixed)
            first, last = followers_gained(db, run.account_ids[0])
            with db.connection() as conn:
                earned = conn.execute("SELECT coalesce(sum(follows), 0) AS f FROM outcomes WHERE collected_pass = 2"
                                      ).fetchone()["f"]
            return {"policy": policy, "seed": seed, "gained": last - first, "post_follows": float(earned),
                    "seconds": time.perf_counter() - t0}
    finally:
        with psycopg.connect(base_url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def growth(days: int = 60, seeds: int = 10, scenario: str | None = None, policies=GROWTH_POLICIES,
           workers: int = 2) -> list[dict]:
    from xbotlib.sim.oracle import Oracle
    from xbotlib.sim.scenario import load_scenario
    from xbotlib.devtools.testing import TestPostgres

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
    from scipy import stats

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


def growth_table(results: list[dict], days: int, seeds: int, scenario: str | None) -> str:
    by, earned = {}, {}
    for r in results:
        by.setdefault(r["policy"], []).append(r["gained"])
        earned.setdefault(r["policy"], []).append(r["post_follows"])
    oracle = statistics.mean(by["oracle"]) if "oracle" in by else float("nan")
    oracle_earned = statistics.mean(earned["oracle"]) if "oracle" in earned else float("nan")
    lines = [f"followers gained over {days} days, {seeds} seeds, scenario {scenario or 'default'} — {machine()}", "",
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


# ----------------------------------------------------------------------------- lift

def _unit_frame(oracle, rng: np.random.Generator, n: int, experiment_id: str, drift: bool = True,
                followers0: float | None = None):
    """n posts in time order, as a learner makes them: the hook mix drifts from uniform towards the
    best hooks (``drift``), the account grows; expected outcomes under both arms of ``experiment_id``."""
    from xbotlib.core import vocab

    hooks, topics = list(vocab.HOOK_PATTERNS), vocab.TOPICS
    day_hours = [h for h in vocab.DEFAULT_POSTING_HOURS if h not in vocab.LATE_EVENING_HOURS]
    best = np.array([oracle.expected_follows(h, 11) for h in hooks])
    learned = best ** 6 / (best ** 6).sum()  # where a learner ends up: mostly the best hooks
    rows = []
    for i in range(n):
        progress = i / max(1, n - 1)
        mix = (1 - progress) / len(hooks) + progress * learned if drift else np.full(len(hooks), 1 / len(hooks))
        hook = hooks[int(rng.choice(len(hooks), p=mix / mix.sum()))]
        topic = str(rng.choice(topics))
        hour = int(rng.choice(day_hours))
        base = followers0 or oracle.scenario.account.initial_followers
        followers = float(base * (1.0 + progress) * rng.uniform(0.9, 1.1))
        if experiment_id == "late_evening_slot":
            t_hour = int(rng.choice(vocab.LATE_EVENING_HOURS))
            exp_t = oracle.expected(hook, t_hour, topic, followers=followers)
            exp_c = oracle.expected(hook, hour, topic, followers=followers)
        else:
            t_hour = hour
            exp_t = oracle.expected(hook, hour, topic, {experiment_id: "treatment"}, followers=followers)
            exp_c = oracle.expected(hook, hour, topic, {experiment_id: "control"}, followers=followers)
        rows.append((progress, hook, topic, hour, t_hour, followers, exp_t, exp_c))
    return rows


def _draw_fpki(scenario, exp, rng, follow_factor: float = 1.0) -> float:
    """Realised fpki of one post; ``follow_factor`` scales the account's follow rate (pooled designs)."""
    import dataclasses

    from xbotlib.sim.audience import draw_totals
    if follow_factor != 1.0:
        exp = dataclasses.replace(exp, follows=exp.follows * follow_factor)
    t = draw_totals(scenario, exp, rng)
    return 1000.0 * t.follows / max(1, t.impressions)


def lift(replicates: int = 200, n: int = 400, experiment_id: str = "question_cta", scenario: str | None = None,
         allocations: tuple[float, float] = (0.5, 0.2), seed: int = 0, followers: float | None = None,
         accounts: int = 1, account_spread: float = 0.5) -> dict:
    """DR vs IPW vs DiM on simulated experiments with a known true lift in per-post fpki.

    Each replicate is one experiment as xbot runs it: n posts in time order, randomised with the
    first allocation for the first half and the second after an operator changes it (the stored
    propensity follows), while the learner's hook mix drifts and the account grows. With
    ``accounts`` > 1 the experiment is pooled over that many accounts whose follow rates differ
    (log-normal, sd ``account_spread``; drawn once per benchmark, the same accounts in every replicate);
    the account is a covariate.
    """
    import pandas as pd

    from xbotlib.core import lift as estimators, vocab
    from xbotlib.sim.oracle import Oracle
    from xbotlib.sim.scenario import load_scenario

    sc = load_scenario(scenario)
    oracle = Oracle(sc)
    factors = np.exp(np.random.default_rng(7_000 + seed).normal(0.0, account_spread, accounts)) if accounts > 1 \
        else np.ones(1)
    factors = factors / factors.mean()
    # the truth: the mean over the same population of posts of realised fpki under treatment minus
    # control, by a large Monte-Carlo population (independent noise); its standard error is reported
    pop_rng = np.random.default_rng(10_000 + seed)
    diffs = []
    for _ in range(max(1, 20_000 // n)):
        units = _unit_frame(oracle, pop_rng, n, experiment_id, followers0=followers)
        which = pop_rng.integers(len(factors), size=len(units))
        diffs += [_draw_fpki(sc, t, pop_rng, factors[a]) - _draw_fpki(sc, c, pop_rng, factors[a])
                  for a, (*_, t, c) in zip(which, units)]
    diffs = np.array(diffs)
    truth, truth_se = float(diffs.mean()), float(diffs.std(ddof=1) / math.sqrt(len(diffs)))

    est = {"dr": [], "ipw": [], "dim": []}
    for r in range(replicates):
        rng = np.random.default_rng(seed * 100_000 + r)
        rows = []
        for progress, hook, topic, hour, t_hour, size, exp_t, exp_c in _unit_frame(oracle, rng, n, experiment_id,
                                                                                     followers0=followers):
            e = allocations[0] if progress < 0.5 else allocations[1]
            treated = int(rng.random() < e)
            account = int(rng.integers(len(factors)))
            fpki = _draw_fpki(sc, exp_t if treated else exp_c, rng, factors[account])
            h = t_hour if treated else hour
            row = {"treatment": treated, "propensity": e, "fpki": fpki, "log_followers": math.log(size),
                   "progress": progress}
            row.update({f"hook_{k}": float(hook == k) for k in vocab.HOOK_PATTERNS})
            row.update({f"topic_{k}": float(topic == k) for k in vocab.TOPICS})
            if len(factors) > 1:
                row.update({f"account_{k}": float(account == k) for k in range(len(factors))})
            if experiment_id != "late_evening_slot":  # the hour is the treatment there
                row.update(hour_sin=math.sin(2 * math.pi * h / 24), hour_cos=math.cos(2 * math.pi * h / 24))
            rows.append(row)
        df = pd.DataFrame(rows)
        covs = [c for c in df.columns if c not in ("treatment", "propensity", "fpki")]
        est["dr"].append(estimators.aipw(df, "fpki", covs, seed=r))
        est["ipw"].append(estimators.ipw(df, "fpki"))
        est["dim"].append(estimators.difference_in_means(df, "fpki"))
    out = {"truth": truth, "truth_se": truth_se, "replicates": replicates, "n": n, "experiment": experiment_id,
           "allocations": allocations, "followers": followers or sc.account.initial_followers, "accounts": accounts}
    for name, es in est.items():
        values = np.array([e.estimate for e in es])
        out[name] = {"bias": float(values.mean() - truth), "rmse": float(np.sqrt(((values - truth) ** 2).mean())),
                     "coverage": float(np.mean([e.ci_low <= truth <= e.ci_high for e in es])),
                     "mean_width": float(np.mean([e.ci_high - e.ci_low for e in es]))}
    return out


def lift_table(results: list[dict]) -> str:
    lines = [f"simulated experiments with a known true lift on per-post fpki — {machine()}", "",
             "| design | experiment | true lift (MC se) | estimator | bias | RMSE | 95% coverage | mean CI width |",
             "| --- | --- | ---: | --- | ---: | ---: | ---: | ---: |"]
    for res in results:
        for name, label in (("dr", "DR (AIPW)"), ("ipw", "IPW (Hajek)"), ("dim", "diff. in means")):
            m = res[name]
            design = "one account" if res["accounts"] == 1 else f"pooled over {res['accounts']} accounts"
            lines.append(f"| {design} | {res['experiment']} | {res['truth']:+.4f} ({res['truth_se']:.4f}) | {label} | "
                         f"{m['bias']:+.4f} | {m['rmse']:.4f} | {m['coverage']:.3f} | {m['mean_width']:.4f} |")
    lines.append("")
    a = results[0]["allocations"]
    lines.append(f"{results[0]['replicates']} replicates of n={results[0]['n']} posts each; allocation {a[0]} for the "
                 f"first half, {a[1]} after (an operator's change; stored propensities follow); the learner's hook "
                 "mix drifts from uniform to the best hooks and the account doubles over the experiment.")
    return "\n".join(lines)


# ----------------------------------------------------------------------------- speed

AREAS = (("xbotlib/jobs/plan", "plan job"), ("xbotlib/jobs/post", "post job"), ("xbotlib/jobs/collect", "collect job"),
         ("xbotlib/jobs/learn", "learn job"), ("xbotlib/sim", "sandbox X"), ("lightgbm", "LightGBM"),
         ("sklearn", "scikit-learn"), ("psycopg", "PostgreSQL driver"), ("httpx", "HTTP client"),
         ("starlette", "ASGI app"), ("asyncio", "ASGI transport loop"))


def speed(days: int = 14, seed: int = 0) -> dict:
    import logging

    from xbotlib.config import load_settings
    from xbotlib.store.db import Database
    from xbotlib.jobs.campaign import CampaignConfig, run_campaign
    from xbotlib.devtools.testing import TestPostgres

    logging.getLogger("xbot").setLevel(logging.WARNING)
    pg = TestPostgres()
    url = pg.fresh_database()
    profiler = cProfile.Profile()
    with Database.from_url(url, pool_max=3) as db:
        t0 = time.perf_counter()
        profiler.enable()
        run = run_campaign(CampaignConfig(days=days, seed=seed), load_settings(env={}), db)
        profiler.disable()
        wall = time.perf_counter() - t0
        with db.connection() as conn:
            counts = conn.execute("""SELECT (SELECT count(*) FROM posted_decisions) AS posts,
                                            (SELECT count(*) FROM outcomes) AS outcomes,
                                            (SELECT count(*) FROM job_runs) AS ticks""").fetchone()
    pg.drop_all()
    stats = pstats.Stats(profiler)
    by_area: dict[str, float] = {}
    total = 0.0
    for (filename, _line, _fn), (_cc, _nc, tottime, _ct, _callers) in stats.stats.items():  # type: ignore[attr-defined]
        total += tottime
        area = next((label for key, label in AREAS if key in filename.replace("\\", "/")), "other (python, numpy…)")
        by_area[area] = by_area.get(area, 0.0) + tottime
    waiting = max(0.0, wall - total)
    return {"days": days, "wall": wall, "days_per_s": days / wall, "ticks": dict(run.ticks), **counts,
            "areas": sorted(by_area.items(), key=lambda kv: -kv[1]), "profiled_total": total, "waiting": waiting}


def speed_table(res: dict) -> str:
    lines = [f"campaign speed, {res['days']} simulated days — {machine()}", "",
             f"{res['wall']:.1f} s wall = **{res['days_per_s']:.2f} simulated days/s**; "
             f"{res['ticks']} job ticks recorded, {res['posts']} posts, {res['outcomes']} outcomes.", "",
             "| where the time goes (self time) | seconds | share |", "| --- | ---: | ---: |"]
    for area, t in res["areas"]:
        lines.append(f"| {area} | {t:.1f} | {t / res['wall']:.0%} |")
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
        a = p.parse_args(argv)
        policies = tuple(x.strip() for x in a.policies.split(",") if x.strip())
        bad = [x for x in policies if x not in GROWTH_POLICIES]
        if bad:
            p.error(f"unknown policies {bad} (expected some of {', '.join(GROWTH_POLICIES)})")
        res = growth(a.days, a.seeds, a.scenario, policies, a.workers)
        print(growth_table(res, a.days, a.seeds, a.scenario))
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
        a = p.parse_args(argv)
        print(speed_table(speed(a.days)))
    return 0
