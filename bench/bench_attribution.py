"""Do the follows attributed from follower snapshots add up to the follows posts really earned?

With analytics refused (``[x] analytics = false``: the sandbox answers ``GET /2/tweets/analytics``
with 403, as X does for an access level without it) the collector attributes follows from follower
snapshots (``xbotlib.jobs.collect``: a baseline of organic follows minus churn is estimated from the
account's own history and taken out before the rest is split across the live posts). This runs the
growth benchmark's campaign (the xbot policy, real jobs, a fresh database per campaign, two at a time)
and compares, per seed, the follows attributed at the 24-hour read (pass 2, summed) with the
sandbox's own record of what those posts and replies earned:

    .venv/bin/python bench/bench_attribution.py --scenarios default,afternoon_questions --seeds 10

Prints a Markdown table per scenario and the mean ratio (attributed / true) with its 95% interval.
"""
from __future__ import annotations

import argparse
import logging
import math
import statistics
import sys
import time
from pathlib import Path

from scipy import stats

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from xbotlib.app.cli.options import at_least  # noqa: E402
from xbotlib.devtools.bench import growth  # noqa: E402
from xbotlib.devtools.machine import machine  # noqa: E402


def mean_interval(values: list[float], level: float = 0.95) -> tuple[float, float, float]:
    """Mean with a t interval (a single value: no spread, the interval is the value)."""
    m = statistics.mean(values)
    if len(values) < 2:
        return m, m, m
    half = float(stats.t.ppf(0.5 + level / 2, len(values) - 1)) * statistics.stdev(values) / math.sqrt(len(values))
    return m, m - half, m + half


def table(results: list[dict], scenario: str, days: int) -> str:
    lines = [f"scenario {scenario}, analytics refused, {days} days, xbot policy", "",
             "| seed | attributed (pass 2) | true: posts | true: replies | true (posts+replies) | followers gained "
             "| attributed / true |", "| ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for r in sorted(results, key=lambda r: r["seed"]):
        lines.append(f"| {r['seed']} | {r['attributed']:.1f} | {r['true_posts']} | {r['true_replies']} | {r['true']} "
                     f"| {r['gained']} | {r['attributed'] / max(1, r['true']):.3f} |")
    m, lo, hi = mean_interval([r["attributed"] / max(1, r["true"]) for r in results])
    total = sum(r["attributed"] for r in results) / max(1, sum(r["true"] for r in results))
    lines += ["", f"mean ratio {m:.3f} (95% interval {lo:.3f}–{hi:.3f}); pooled Σattributed/Σtrue {total:.3f}"]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--scenarios", default="default,afternoon_questions",
                    help="comma-separated shipped names or TOML paths (default: default,afternoon_questions)")
    ap.add_argument("--seeds", type=at_least(1), default=10, help="campaigns per scenario, seeds 0..N-1 (default 10)")
    ap.add_argument("--days", type=at_least(1), default=60, help="simulated days per campaign (default 60)")
    ap.add_argument("--workers", type=at_least(1), default=2, help="campaigns run in parallel (default 2)")
    a = ap.parse_args(argv)
    if a.seeds < 1 or a.days < 2:
        ap.error(f"--seeds {a.seeds} / --days {a.days}: expected at least 1 seed and 2 days")
    logging.getLogger("xbot").setLevel(logging.WARNING)
    print(f"snapshot attribution vs the sandbox's truth — {machine()}\n")
    every = []
    for scenario in [s.strip() for s in a.scenarios.split(",") if s.strip()]:
        t0 = time.time()
        results = growth(a.days, a.seeds, scenario, ("xbot",), a.workers, analytics=False)
        every += results
        print(table(results, scenario, a.days))
        print(f"\n({time.time() - t0:.0f} s)\n", flush=True)
    if len({r["seed"] for r in every}) < len(every):
        m, lo, hi = mean_interval([r["attributed"] / max(1, r["true"]) for r in every])
        print(f"all {len(every)} campaigns: mean ratio {m:.3f} (95% interval {lo:.3f}–{hi:.3f})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
