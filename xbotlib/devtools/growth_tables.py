"""The growth bench's statistics and tables (``xbot bench growth``): pure functions of its results.

A result is one campaign: ``{"policy", "seed", "gained", "post_follows", ...}`` (``bench._campaign_followers``).
Policies are compared on the same seeds: the seed fixes the sandbox's organic follows and churn, so the
paired difference removes that shared noise. Every table lists the policies in the order they were run.
"""
from __future__ import annotations

import math
import statistics

import numpy as np
from scipy import stats

from xbotlib.devtools.machine import machine
from xbotlib.sim.oracle import MOVE_WINDOW_DAYS

CEILINGS = ("oracle", "ideal")   # the knows-the-truth policy, and the best any learner could do at the noise


def policy_order(results: list[dict]) -> list[str]:
    """The policies of ``results`` in the order they first appear (the order they were run)."""
    return list(dict.fromkeys(r["policy"] for r in results))


def _per_seed(results: list[dict], key: str = "gained") -> dict[str, dict[int, float]]:
    """policy -> seed -> ``key``: the shape both paired comparisons read."""
    by: dict[str, dict[int, float]] = {}
    for r in results:
        by.setdefault(r["policy"], {})[r["seed"]] = r[key]
    return by


def paired_difference(diffs: list[float]) -> dict | None:
    """Mean of the per-seed differences, its standard error (sample sd / √n), on how many seeds the
    difference is positive, and ``beyond_2se``: +1 when the mean is more than two standard errors above 0,
    −1 when more than two below, 0 otherwise. None with fewer than two seeds (no spread to measure)."""
    if len(diffs) < 2:
        return None
    mean, se = statistics.mean(diffs), statistics.stdev(diffs) / math.sqrt(len(diffs))
    return {"mean": mean, "se": se, "wins": sum(d > 0 for d in diffs), "n": len(diffs),
            "beyond_2se": 1 if mean > 2 * se else -1 if mean < -2 * se else 0}


def seeds_for_two_se(d: dict) -> int | None:
    """How many seeds a paired difference ``d`` (``paired_difference``) would need for its mean to stand two
    standard errors above 0, if the mean and the per-seed spread stayed as measured: n · (2 se / mean)²,
    rounded up (the standard error shrinks as 1/√n). None when the mean is not above 0: more seeds only
    sharpen a difference the other way."""
    if d["mean"] <= 0:
        return None
    return max(d["n"], math.ceil(d["n"] * (2 * d["se"] / d["mean"]) ** 2 - 1e-9))   # 9.000000000000002 is 9


def paired_differences(results: list[dict], learner: str = "xbot") -> dict[str, dict]:
    """Followers gained by ``learner`` minus each other policy of ``results``, seed by seed, on the seeds
    both ran (``paired_difference``)."""
    by = _per_seed(results)
    out = {}
    for p in policy_order(results):
        if p == learner or learner not in by:
            continue
        seeds = sorted(set(by[p]) & set(by[learner]))
        d = paired_difference([by[learner][s] - by[p][s] for s in seeds])
        if d is not None:
            out[p] = d
    return out


def ratio_interval(results: list[dict], policy: str, baseline: str = "oracle", key: str = "gained",
                   level: float = 0.95) -> tuple[float, float, float] | None:
    """``policy``'s total ``key`` over ``baseline``'s on the seeds both ran, with a ``level`` interval.

    Ten seeds leave a ratio uncertain by several points; the interval says by how much. It is the
    ratio estimator's: residuals d = x − r·b per seed, se = sd(d) / (√n · mean(b)), and a t quantile
    with n − 1 degrees of freedom. Pairing by seed removes the sandbox noise the two runs share.
    None with fewer than two paired seeds (no spread to measure).
    """
    estimate = _ratio_se(results, policy, baseline, key)
    if estimate is None:
        return None
    ratio, se, n = estimate
    t = float(stats.t.ppf(0.5 + level / 2, n - 1))
    return ratio, ratio - t * se, ratio + t * se


def _ratio_se(results: list[dict], policy: str, baseline: str, key: str = "gained") -> tuple[float, float, int] | None:
    """``ratio_interval``'s ratio, its standard error and the number of paired seeds (None: fewer than two)."""
    by = _per_seed(results, key)
    seeds = sorted(set(by.get(policy, {})) & set(by.get(baseline, {})))
    if len(seeds) < 2:
        return None
    x = np.array([by[policy][s] for s in seeds], float)
    b = np.array([by[baseline][s] for s in seeds], float)
    if b.sum() <= 0:
        return None
    ratio = float(x.sum() / b.sum())
    return ratio, float(np.std(x - ratio * b, ddof=1) / (math.sqrt(len(seeds)) * b.mean())), len(seeds)


def drift_table(by_scenario: dict[str, list[dict]], sources: dict[str, str], learner: str = "xbot",
                baseline: str = "oracle", tolerance: float = 0.05) -> str:
    """For each scenario of ``sources`` (label -> the label of the scenario it was derived from) whose source also
    ran: the learner's ratio to ``baseline`` on both, the difference (changing world minus its source) with a 95%
    interval, and whether it is within ``tolerance`` — issue #20's target for worlds that change. The two ratios
    come from different worlds, so their errors add (independent; the shared seed numbers draw different audiences).
    "" when no pair ran."""
    rows = []
    for label, source in sources.items():
        if label not in by_scenario or source not in by_scenario:
            continue
        changed = _ratio_se(by_scenario[label], learner, baseline)
        stationary = _ratio_se(by_scenario[source], learner, baseline)
        if changed is None or stationary is None:
            continue
        diff, se = changed[0] - stationary[0], math.hypot(changed[1], stationary[1])
        within = "yes" if diff >= -tolerance else "no"
        if abs(diff + tolerance) < 1.96 * se:
            within += " (within noise of the line)"
        rows.append(f"| {label} | {source} | {changed[0]:.3f} | {stationary[0]:.3f} | {diff:+.3f} "
                    f"({diff - 1.96 * se:+.3f} to {diff + 1.96 * se:+.3f}) | {within} |")
    if not rows:
        return ""
    head = [f"| changing world | derived from | {learner} / {baseline} there | on its source | difference (95%) | "
            f"within {tolerance:g} |", "| --- | --- | ---: | ---: | ---: | --- |"]
    note = (f"Changing worlds (a scenario's `derived_from`): {learner}'s ratio to {baseline} there minus on the world it "
            f"was derived from, with a 95% interval from both worlds' seeds; issue #20 asks for the difference to be "
            f"within {tolerance:g}. 'Within noise of the line': the interval also reaches the other side of it.")
    return "\n".join(head + rows + ["", note])


def _ratio(value: float, baseline: float) -> str:
    """``value / baseline`` to three places; "—" where the baseline gained nothing (a campaign of a day or two)
    or did not run: no ratio to show, rather than a division by zero."""
    return f"{value / baseline:.3f}" if baseline > 0 else "—"


def _beyond(d: dict) -> str:
    return {1: "yes", -1: "no, behind by > 2 SE", 0: "no"}[d["beyond_2se"]]


def growth_table(results: list[dict], days: int, seeds: int, scenario: str | None, analytics: bool = True) -> str:
    """One scenario's table: each policy's followers gained, its ratio to the oracle (with the paired
    interval) and, when ``ideal`` ran, to the noise-aware ceiling; then xbot minus each policy by seed, and the
    ceiling minus each policy but xbot and the oracle (what the seeds could show at best)."""
    by, earned = {}, {}
    for r in results:
        by.setdefault(r["policy"], []).append(r["gained"])
        earned.setdefault(r["policy"], []).append(r["post_follows"])
    oracle = statistics.mean(by["oracle"]) if "oracle" in by else float("nan")
    oracle_earned = statistics.mean(earned["oracle"]) if "oracle" in earned else float("nan")
    ideal = statistics.mean(by["ideal"]) if "ideal" in by else None
    refused = "" if analytics else " (analytics refused: follows by snapshot attribution)"
    profile = next((r["profile"] for r in results if r.get("profile")), None)
    written_for = f", account profile {profile}" if profile else ""
    lines = [f"followers gained over {days} days, {seeds} seeds, scenario {scenario or 'default'}{written_for}{refused} "
             f"— {machine()}", "",
             "| policy | followers gained: mean | sd | min | max | ratio to oracle | its 95% interval "
             "| follows earned by posts (pass 2): mean | ratio to oracle |" + (" ratio to ideal |" if ideal is not None else ""),
             "| --- | ---: | ---: | ---: | ---: | ---: | :---: | ---: | ---: |" + (" ---: |" if ideal is not None else "")]
    for p in policy_order(results):
        v, e = by[p], earned[p]
        sd = statistics.stdev(v) if len(v) > 1 else 0.0
        ci = ratio_interval(results, p) if p != "oracle" else None
        interval = f"{ci[1]:.3f}–{ci[2]:.3f}" if ci else "—"
        lines.append(f"| {p} | {statistics.mean(v):.1f} | {sd:.1f} | {min(v)} | {max(v)} | "
                     f"{_ratio(statistics.mean(v), oracle)} | {interval} | {statistics.mean(e):.1f} | "
                     f"{_ratio(statistics.mean(e), oracle_earned)} |" + (f" {_ratio(statistics.mean(v), ideal)} |" if ideal is not None else ""))
    paired = paired_differences(results)
    if paired:
        lines += ["", "| xbot minus … (same seeds) | mean difference | se | xbot ahead on | ahead by > 2 SE |",
                  "| --- | ---: | ---: | ---: | :---: |"]
        lines += [f"| {p} | {d['mean']:+.1f} | {d['se']:.1f} | {d['wins']}/{d['n']} seeds | {_beyond(d)} |"
                  for p, d in paired.items()]
    # the ceiling against the same policies: where even it is not 2 SE ahead, these seeds cannot show any learner is
    ceiling = {p: d for p, d in paired_differences(results, "ideal").items() if p not in CEILINGS and p != "xbot"}
    if ceiling:
        lines += ["", "| ideal minus … (same seeds) | mean difference | se | ideal ahead on | ahead by > 2 SE |",
                  "| --- | ---: | ---: | ---: | :---: |"]
        lines += [f"| {p} | {d['mean']:+.1f} | {d['se']:.1f} | {d['wins']}/{d['n']} seeds | {_beyond(d)} |"
                  for p, d in ceiling.items()]
        lines += ["", "The noise-aware ceiling minus each policy: where it is not 2 SE ahead, these seeds are too few to "
                  "show that any learner is."]
    lines += ["", "Followers gained = last minus first follower snapshot (posts' follows + organic − churn); "
              "follows earned by posts = the collector's pass-2 follows. The interval is the ratio's, paired by seed "
              "(`ratio_interval`). Experiments off; the hourly bench cadence (bench/schedules/)."]
    return "\n".join(lines)


def growth_summary(by_scenario: dict[str, list[dict]], learner: str = "xbot") -> str:
    """One row per scenario: the learner's ratio to each ceiling that ran (with its 95% interval), and the
    learner minus every other policy, mean ± se over the paired seeds, marked where it exceeds 2 SE."""
    policies = list(dict.fromkeys(p for results in by_scenario.values() for p in policy_order(results)))
    ceilings = [c for c in CEILINGS if c in policies]
    others = [p for p in policies if p != learner and p not in CEILINGS]
    head = ["scenario"] + [f"{learner} / {c} (95% interval)" for c in ceilings] + [f"{learner} − {p}" for p in others]
    lines = ["| " + " | ".join(head) + " |", "| --- |" + " ---: |" * (len(head) - 1)]
    for name, results in by_scenario.items():
        cells = [name]
        for c in ceilings:
            ci = ratio_interval(results, learner, baseline=c)
            cells.append(f"{ci[0]:.3f} ({ci[1]:.3f}–{ci[2]:.3f})" if ci else "—")
        paired = paired_differences(results, learner)
        for p in others:
            d = paired.get(p)
            mark = {1: " **> 2 SE**", -1: " (behind, > 2 SE)", 0: ""}[d["beyond_2se"]] if d else ""
            if d is not None and d["beyond_2se"] == 0:   # not yet decided: how many seeds would decide it
                need = seeds_for_two_se(d)
                mark = f" (2 SE at ~{need} seeds)" if need is not None else " (behind in the mean)"
            cells.append("—" if d is None else f"{d['mean']:+.1f} ± {d['se']:.1f}{mark}")
        lines.append("| " + " | ".join(cells) + " |")
    lines += ["", f"{learner} − policy: followers gained, mean ± standard error of the per-seed difference; "
              f"**> 2 SE**: {learner} ahead by more than two standard errors; (behind, > 2 SE): the policy ahead of "
              f"{learner} by more than two; (2 SE at ~N seeds): where neither, how many seeds would put {learner} two "
              f"standard errors ahead if the mean and the spread per seed stayed as measured (n · (2 se / mean)²)."]
    return "\n".join(lines)


def moves_table(day: float, before: str, after: str, moved: dict[str, list[int | None]], days: int) -> str:
    """Days each policy took to move to a step's new best hook (``oracle.days_to_move``), per seed: the
    median and mean over the seeds that moved, how many never did within ``days``, and each seed's figure."""
    lines = [f"days to move to the new best hook after the step at day {day:g} ({before} -> {after}): the first day "
             f"from which {after} is the most-posted hook over {MOVE_WINDOW_DAYS} days; per seed ('-': never within "
             f"{days} days)", "| policy | median | mean | never | per seed |", "| --- | ---: | ---: | ---: | --- |"]
    for name, seeds in moved.items():
        found = [m for m in seeds if m is not None]
        median = f"{np.median(found):.0f}" if found else "-"
        mean = f"{np.mean(found):.1f}" if found else "-"
        per_seed = " ".join("-" if m is None else str(m) for m in seeds)
        lines.append(f"| {name} | {median} | {mean} | {len(seeds) - len(found)}/{len(seeds)} | {per_seed} |")
    return "\n".join(lines)


def growth_moves(results: list[dict], days: int) -> str:
    """``moves_table`` for each step of a scenario that moves the best hook (the campaigns' ``moves``, from
    ``bench.hook_moves``), policies in table order; empty for a stationary world."""
    steps = next((r["moves"] for r in results if r.get("moves")), [])
    tables = []
    for i, step in enumerate(steps):
        moved = {p: [r["moves"][i]["days"] for r in results if r["policy"] == p] for p in policy_order(results)}
        tables.append(moves_table(step["day"], step["before"], step["after"], moved, days))
    return "\n\n".join(tables)


def timing_table(by_scenario: dict[str, list[dict]]) -> str:
    """Seconds per campaign by policy over every scenario: wall time, and the CPU time of the process that
    ran it (the jobs and the policy; not the database server's): CPU time is what a noisy machine changes least."""
    rows: dict[str, list[dict]] = {}
    for results in by_scenario.values():
        for r in results:
            rows.setdefault(r["policy"], []).append(r)
    lines = ["| policy | campaigns | wall s per campaign: mean | CPU s per campaign (its process): mean |",
             "| --- | ---: | ---: | ---: |"]
    for p, rs in rows.items():
        cpu = [r["cpu_seconds"] for r in rs if "cpu_seconds" in r]
        lines.append(f"| {p} | {len(rs)} | {statistics.mean(r['seconds'] for r in rs):.1f} | "
                     f"{statistics.mean(cpu):.1f} |" if cpu else f"| {p} | {len(rs)} | "
                     f"{statistics.mean(r['seconds'] for r in rs):.1f} | — |")
    return "\n".join(lines)
