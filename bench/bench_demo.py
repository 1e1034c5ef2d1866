"""`make demo`'s wall time, split into start-up, campaign, reports and summary: python bench/bench_demo.py [options].

It runs `xbot demo` as a new user would (a fresh process, a fresh XBOT_HOME: the embedded Postgres
is initialised too) and reads the phases from the demo's own output: the campaign's simulating time
from the summary line, the reports' time from the `reports:` line. It prints a Markdown table with
the machine, the date and the load average at the start (the figures depend on what else runs).

    python bench/bench_demo.py                 # the default demo (30 days, seed 7)
    python bench/bench_demo.py --days 10 --runs 2
"""
from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from xbotlib.devtools.machine import machine  # noqa: E402  (after the path: runs from a checkout)

_SIMULATING = re.compile(r"\(([\d.]+) s simulating\)")
_REPORTS = re.compile(r"reports: (\d+) notebooks? in ([\d.]+) s")


def run_demo(days: int, seed: int, extra: list[str]) -> dict:
    """One `xbot demo` in a fresh XBOT_HOME; the phases in seconds (reports None if the demo did not say)."""
    home = Path(tempfile.mkdtemp(prefix="xbot_bench_demo_"))
    # PYTHONPATH: the demo and its notebook kernels import this checkout's xbotlib (a worktree's, too)
    env = {**os.environ, "XBOT_HOME": str(home), "PYTHONPATH": str(ROOT)}
    env.pop("XBOT_DATABASE_URL", None)  # the demo's own embedded database, as after `make demo`
    cmd = [sys.executable, "-m", "xbotlib.app.cli.main", "demo", "--days", str(days), "--seed", str(seed), *extra]
    try:
        t0 = time.perf_counter()
        proc = subprocess.run(cmd, env=env, cwd=ROOT, capture_output=True, text=True)
        total = time.perf_counter() - t0
        subprocess.run([sys.executable, "-m", "xbotlib.app.cli.main", "db", "stop"], env=env, cwd=ROOT,
                       capture_output=True)
    finally:
        shutil.rmtree(home, ignore_errors=True)
    if proc.returncode != 0:
        raise SystemExit(f"`{' '.join(cmd)}` failed ({proc.returncode}):\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}")
    sim = _SIMULATING.search(proc.stdout)
    rep = _REPORTS.search(proc.stdout)
    return {"total": total, "campaign": float(sim.group(1)) if sim else None,
            "reports": float(rep.group(2)) if rep else None, "notebooks": int(rep.group(1)) if rep else None,
            "failed": proc.stdout.count("FAILED")}


def table(results: list[dict], days: int, label: str) -> str:
    load = os.getloadavg()
    lines = [f"`xbot demo --days {days}` {label}— {machine()}, {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC, "
             f"load average {load[0]:.2f} at the end", "",
             "| run | total | campaign (simulating) | reports | notebooks | failed | rest (start-up, database, summary) |",
             "| ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for i, r in enumerate(results, 1):
        rest = r["total"] - (r["campaign"] or 0) - (r["reports"] or 0)
        rep = f"{r['reports']:.1f} s" if r["reports"] is not None else "n/a"
        lines.append(f"| {i} | {r['total']:.1f} s | {r['campaign']:.1f} s | {rep} | {r['notebooks'] or 'n/a'} | "
                     f"{r['failed']} | {rest:.1f} s |")
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--days", type=int, default=30, help="simulated days (default 30, the demo's)")
    p.add_argument("--seed", type=int, default=7, help="seed (default 7, the demo's)")
    p.add_argument("--runs", type=int, default=1, help="demos to run one after another (default 1)")
    p.add_argument("--label", default="", help="a word for the table's title, e.g. before or after")
    a, extra = p.parse_known_args(argv)
    results = []
    for i in range(a.runs):
        results.append(run_demo(a.days, a.seed, extra))
        print(f"  run {i + 1}/{a.runs}: {results[-1]['total']:.1f} s", file=sys.stderr, flush=True)
    print(table(results, a.days, f"{a.label} " if a.label else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
