"""Coverage of the lift report's intervals when the report is read every day.

Each replicate is one experiment as xbot runs it (the audience model of ``xbot bench lift``: posts in
time order, over-dispersed follows, the learner's hook mix drifting, the account growing, allocation
0.5 for the first half and 0.2 after an operator's change). Every simulated day, once each arm has
``--min-per-arm`` posts, the report is read: DR relative and absolute lift on per-post fpki with the
fixed-n 95% interval and the always-valid one (``xbotlib.core.decision.metric_lift``). A replicate is
covered when the truth lies inside the interval at *every* read; that is what a daily reader needs.
The truth at each read is the mean over the posts so far of E[fpki | treatment] and E[fpki | control]
(a Monte-Carlo population of the same design), so the drifting mix is accounted for.

    .venv/bin/python bench/bench_sequential.py --replicates 300 --days 30 --posts-per-day 12

Prints a Markdown table for BENCHMARKS.md.
"""
from __future__ import annotations

import argparse
import math
import time

import numpy as np
import pandas as pd

from xbotlib.app.cli.options import at_least
from xbotlib.core import decision, vocab

# the experiment simulator of `xbot bench lift`, so both benchmarks draw from the same audience model
from xbotlib.devtools.bench_lift import _draw_fpki, _unit_frame
from xbotlib.devtools.machine import machine
from xbotlib.sim.oracle import Oracle
from xbotlib.sim.scenario import load_scenario


def _row(treated: int, e: float, fpki: float, hook: str, topic: str, hour: int | None, followers: float) -> dict:
    row = {"treatment": treated, "propensity": e, "fpki": fpki, "log_followers": math.log(followers)}
    row.update({f"hook_{k}": float(hook == k) for k in vocab.HOOK_PATTERNS})
    row.update({f"topic_{k}": float(topic == k) for k in vocab.TOPICS})
    if hour is not None:  # None when the hour is the treatment (it would absorb the effect)
        row.update(hour_sin=math.sin(2 * math.pi * hour / 24), hour_cos=math.cos(2 * math.pi * hour / 24))
    return row


def truth_by_day(oracle, sc, experiment_id: str, n: int, per_day: int, population: int, seed: int):
    """Running means of fpki under each arm over the first d days' posts: (absolute, relative) per day."""
    rng = np.random.default_rng(10_000 + seed)
    sums = np.zeros((2, n))
    copies = max(1, population // n)
    for _ in range(copies):
        units = _unit_frame(oracle, rng, n, experiment_id)
        sums[0] += [_draw_fpki(sc, u[-2], rng) for u in units]
        sums[1] += [_draw_fpki(sc, u[-1], rng) for u in units]
    days = n // per_day
    cum_t = np.cumsum(sums[0])[per_day - 1::per_day][:days] / copies
    cum_c = np.cumsum(sums[1])[per_day - 1::per_day][:days] / copies
    return (cum_t - cum_c) / np.arange(1, days + 1) / per_day, cum_t / cum_c - 1, copies * n


def run(replicates: int, days: int, per_day: int, experiment_id: str, min_per_arm: int, population: int,
        seed: int, tuning_n: int) -> dict:
    sc = load_scenario(None)
    oracle = Oracle(sc)
    n = days * per_day
    true_abs, true_rel, pop = truth_by_day(oracle, sc, experiment_id, n, per_day, population, seed)
    kinds = ("abs_fixed", "abs_seq", "rel_fixed", "rel_seq")
    every = {k: 0 for k in kinds}       # covered at every read
    last = {k: 0 for k in kinds}        # covered at the last read only (one look)
    wins = {"fixed": 0, "seq": 0}       # replicates with a "wins/loses" call on some day
    reads = 0
    for r in range(replicates):
        rng = np.random.default_rng(seed * 100_000 + r)
        rows = []
        for progress, hook, topic, hour, t_hour, followers, exp_t, exp_c in _unit_frame(oracle, rng, n, experiment_id):
            e = 0.5 if progress < 0.5 else 0.2
            treated = int(rng.random() < e)
            rows.append(_row(treated, e, _draw_fpki(sc, exp_t if treated else exp_c, rng), hook, topic,
                             None if experiment_id == "late_evening_slot" else t_hour if treated else hour,
                             followers))
        df = pd.DataFrame(rows)
        covs = [c for c in df.columns if c not in ("treatment", "propensity", "fpki")]
        ok = {k: True for k in kinds}
        called = {"fixed": False, "seq": False}
        for d in range(days):
            part = df.iloc[:(d + 1) * per_day]
            if min(part["treatment"].sum(), len(part) - part["treatment"].sum()) < min_per_arm:
                continue
            m = decision.metric_lift(part, "fpki", covs, seed=0, tuning_n=tuning_n)
            reads += 1
            hit = {"abs_fixed": m.absolute_ci_low <= true_abs[d] <= m.absolute_ci_high,
                   "abs_seq": m.absolute_cs_low <= true_abs[d] <= m.absolute_cs_high,
                   "rel_fixed": m.relative is not None and m.relative_ci_low <= true_rel[d] <= m.relative_ci_high,
                   "rel_seq": m.relative is not None and m.relative_cs_low <= true_rel[d] <= m.relative_cs_high}
            for k in kinds:
                ok[k] &= hit[k]
            called["fixed"] |= m.relative is not None and (m.relative_ci_low > 0 or m.relative_ci_high < 0)
            called["seq"] |= decision.verdict_of(m) != decision.UNDECIDED
        for k in kinds:
            every[k] += ok[k]
            last[k] += hit[k]
        for k in called:
            wins[k] += called[k]
    return {"experiment": experiment_id, "replicates": replicates, "days": days, "per_day": per_day,
            "true_abs": float(true_abs[-1]), "true_rel": float(true_rel[-1]), "population": pop,
            "reads": reads / replicates, "every": {k: v / replicates for k, v in every.items()},
            "last": {k: v / replicates for k, v in last.items()},
            "called": {k: v / replicates for k, v in wins.items()}, "min_per_arm": min_per_arm,
            "tuning_n": tuning_n}


def table(results: list[dict], elapsed: float) -> str:
    lines = [f"daily reads of simulated experiments — {machine()}, {elapsed:.0f} s", "",
             "| experiment | true lift at the end (abs / rel) | interval | covers the truth at every daily read | "
             "covers it at the last read | some day says wins/loses |",
             "| --- | ---: | --- | ---: | ---: | ---: |"]
    for res in results:
        truth = f"{res['true_abs']:+.3f} / {100 * res['true_rel']:+.1f}%"
        for k, label, call in (("rel_fixed", "relative, fixed-n 95%", "fixed"),
                               ("rel_seq", "relative, always-valid 95%", "seq"),
                               ("abs_fixed", "absolute, fixed-n 95%", None),
                               ("abs_seq", "absolute, always-valid 95%", None)):
            called = f"{res['called'][call]:.3f}" if call else ""
            lines.append(f"| {res['experiment']} | {truth} | {label} | {res['every'][k]:.3f} | {res['last'][k]:.3f} | "
                         f"{called} |")
    r0 = results[0]
    lines += ["", f"{r0['replicates']} replicates per experiment, {r0['days']} days × {r0['per_day']} posts, read "
              f"daily once each arm has {r0['min_per_arm']} posts (~{r0['reads']:.0f} reads each); always-valid "
              f"tuned at n* = {r0['tuning_n']}; truth from a {r0['population']:,}-post Monte-Carlo population."]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--replicates", type=at_least(1), default=300)
    p.add_argument("--days", type=at_least(1), default=30)
    p.add_argument("--posts-per-day", type=at_least(1), default=12)
    p.add_argument("--experiments", default="question_cta,late_evening_slot")
    p.add_argument("--min-per-arm", type=at_least(1), default=10)
    p.add_argument("--population", type=at_least(1), default=40_000)
    p.add_argument("--tuning-n", type=at_least(1), default=decision.CS_TUNING_N)
    p.add_argument("--seed", type=at_least(0), default=0)
    args = p.parse_args(argv)
    t0 = time.perf_counter()
    results = [run(args.replicates, args.days, args.posts_per_day, e, args.min_per_arm, args.population, args.seed,
                   args.tuning_n) for e in args.experiments.split(",")]
    print(table(results, time.perf_counter() - t0))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
