"""`make demo`'s wall time, split into start-up, campaign, reports and summary: python bench/bench_demo.py [options].

It runs `xbot demo` as a new user would (a fresh process, a fresh XBOT_HOME: the embedded Postgres
is initialised too) and reads the phases from the demo's own output: the campaign's simulating time
from the summary line, the reports' time from the `reports:` line. It prints a Markdown table with
the machine, the date and the load average at the start (the figures depend on what else runs).

    python bench/bench_demo.py                 # the default demo (30 days, seed 7)
    python bench/bench_demo.py --days 10 --runs 2
    python bench/bench_demo.py --compare-reports   # the demo's 8 reports on one campaign: one cold kernel
                                                   # per report, one after another (before issue #19), then
                                                   # `reports.batch` (kernels side by side, warm)
"""
from __future__ import annotations

import argparse
import json
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

from xbotlib.app.cli.options import at_least  # noqa: E402
from xbotlib.devtools.machine import machine  # noqa: E402  (after the path: runs from a checkout)

_SIMULATING = re.compile(r"\(([\d.]+) s simulating\)")
_REPORTS = re.compile(r"reports: (\d+) notebooks? in ([\d.]+) s")


def notebook_profile(reports_dir: Path) -> list[dict]:
    """Where each report's time went, from its run record and papermill's timings in the executed notebook:
    ``start`` (run recorded -> first cell: a worker taking it, the kernel starting), ``imports`` (the first
    code cell after the parameters: imports and the database), ``cells`` (the rest), the slowest cell."""
    rows = []
    records = [json.loads(p.read_text()) for p in reports_dir.glob("runs/*/*.json")]
    for run in sorted(records, key=lambda r: r["run_id"]):
        nb = json.loads((reports_dir / run["output_path"]).read_text())
        timed = [c for c in nb["cells"] if c["cell_type"] == "code" and c["metadata"].get("papermill", {}).get("start_time")]
        if not timed:
            continue
        tags = lambda c: c["metadata"].get("tags", [])  # noqa: E731
        body = [c for c in timed if not {"parameters", "injected-parameters"} & set(tags(c))]
        first_start = _time(timed[0]["metadata"]["papermill"]["start_time"])
        dur = lambda c: c["metadata"]["papermill"].get("duration") or 0.0  # noqa: E731
        slow = max(body[1:], key=dur, default=None)
        rows.append({"name": run["name"], "parameters": run["parameters"], "status": run["status"],
                     "total": (_time(run["finished_at"]) - _time(run["started_at"])).total_seconds(),
                     "start": (first_start - _time(run["started_at"])).total_seconds(),
                     "imports": dur(body[0]) if body else 0.0, "cells": sum(dur(c) for c in body[1:]),
                     "slowest": (dur(slow), "".join(slow["source"]).strip().splitlines()[0][:60]) if slow else (0.0, "")})
    return rows


def _time(text: str) -> datetime:
    stamp = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return stamp if stamp.tzinfo else stamp.replace(tzinfo=timezone.utc)


def profile_table(rows: list[dict]) -> str:
    lines = ["| report | status | recorded run | worker + kernel start | imports cell | other cells | slowest cell |",
             "| --- | --- | ---: | ---: | ---: | ---: | --- |"]
    for r in rows:
        label = r["name"] + "".join(f" {v}" for k, v in r["parameters"].items() if k != "account_id")
        lines.append(f"| {label} | {r['status']} | {r['total']:.1f} s | {r['start']:.1f} s | {r['imports']:.1f} s | "
                     f"{r['cells']:.1f} s | {r['slowest'][0]:.1f} s `{r['slowest'][1]}` |")
    return "\n".join(lines)


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
        profile = notebook_profile(home / "reports")
    finally:
        shutil.rmtree(home, ignore_errors=True)
    if proc.returncode != 0:
        raise SystemExit(f"`{' '.join(cmd)}` failed ({proc.returncode}):\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}")
    sim = _SIMULATING.search(proc.stdout)
    rep = _REPORTS.search(proc.stdout)
    return {"total": total, "campaign": float(sim.group(1)) if sim else None,
            "reports": float(rep.group(2)) if rep else None, "notebooks": int(rep.group(1)) if rep else None,
            "failed": proc.stdout.count("FAILED"), "profile": profile}


def table(results: list[dict], days: int, label: str) -> str:
    load = os.getloadavg()
    lines = [f"`xbot demo --days {days}` {label}— {machine()} {datetime.now(timezone.utc):%H:%M} UTC, "
             f"load average {load[0]:.2f} at the end", "",
             "| run | total | campaign (simulating) | reports | notebooks | failed | rest (start-up, database, summary) |",
             "| ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for i, r in enumerate(results, 1):
        rest = r["total"] - (r["campaign"] or 0) - (r["reports"] or 0)
        rep = f"{r['reports']:.1f} s" if r["reports"] is not None else "n/a"
        lines.append(f"| {i} | {r['total']:.1f} s | {r['campaign']:.1f} s | {rep} | {r['notebooks'] or 'n/a'} | "
                     f"{r['failed']} | {rest:.1f} s |")
    return "\n".join(lines)


def compare_reports(days: int, seed: int) -> str:
    """The demo's report step twice on the same campaign: as before (``run_notebook`` per report, a cold
    kernel each, one after another) and as now (``batch.run_notebooks``); a table of both."""
    from xbotlib.app.cli.demo import DEMO_LIFT_EXPERIMENTS, DEMO_NOTEBOOKS  # imported here: after sys.path
    from xbotlib.app.reports.batch import default_workers, run_notebooks  # imported here: as above
    from xbotlib.app.reports.runner import NotebookFailed, run_notebook  # imported here: as above

    home = Path(tempfile.mkdtemp(prefix="xbot_bench_demo_"))
    env = {**os.environ, "XBOT_HOME": str(home), "PYTHONPATH": str(ROOT)}
    env.pop("XBOT_DATABASE_URL", None)
    xbot = [sys.executable, "-m", "xbotlib.app.cli.main"]
    try:
        demo = subprocess.run([*xbot, "demo", "--days", str(days), "--seed", str(seed), "--no-notebooks"], env=env,
                              cwd=ROOT, capture_output=True, text=True, check=True)
        url = re.search(r"^database: (\S+)", demo.stdout, re.M).group(1)
        account = re.search(r"^account (\S+):", demo.stdout, re.M).group(1)
        subprocess.run([*xbot, "db", "start"], env=env, cwd=ROOT, capture_output=True, check=True)
        jobs = [(n, {"account_id": account}) for n in DEMO_NOTEBOOKS]
        jobs += [("experiment_lift", {"account_id": account, "experiment_id": e}) for e in DEMO_LIFT_EXPERIMENTS]
        t0 = time.perf_counter()
        failed_before = 0
        for name, params in jobs:
            try:
                run_notebook(name, params, db_url=url, reports_dir=home / "before")
            except NotebookFailed:
                failed_before += 1
        before = time.perf_counter() - t0
        t0 = time.perf_counter()
        results = run_notebooks(jobs, db_url=url, reports_dir=home / "after")
        after = time.perf_counter() - t0
        profile = profile_table(notebook_profile(home / "after"))
    finally:
        subprocess.run([*xbot, "db", "stop"], env=env, cwd=ROOT, capture_output=True)
        shutil.rmtree(home, ignore_errors=True)
    load = os.getloadavg()
    return "\n".join([
        f"the demo's {len(jobs)} reports on one {days}-day campaign — {machine()} "
        f"{datetime.now(timezone.utc):%H:%M} UTC, load average {load[0]:.2f} at the end", "",
        "| report step | wall | failed |", "| --- | ---: | ---: |",
        f"| before: a cold kernel per report, one after another | {before:.1f} s | {failed_before} |",
        f"| after: `reports.batch`, {default_workers()} workers with warm kernels | {after:.1f} s | "
        f"{sum(not r.ok for r in results)} |", "", "after, each report:", "", profile])


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--days", type=at_least(1), default=30, help="simulated days (default 30, the demo's)")
    p.add_argument("--seed", type=at_least(0), default=7, help="seed (default 7, the demo's)")
    p.add_argument("--runs", type=at_least(1), default=1, help="demos to run one after another (default 1)")
    p.add_argument("--profile", type=Path, default=None,
                   help="only print the per-report table of an existing reports folder (e.g. reports/)")
    p.add_argument("--compare-reports", action="store_true",
                   help="time the demo's report step before and after issue #19 on one campaign (no full demos)")
    p.add_argument("--label", default="", help="a word for the table's title, e.g. before or after")
    a, extra = p.parse_known_args(argv)
    if a.compare_reports:
        print(compare_reports(a.days, a.seed))
        return 0
    if a.profile:
        print(profile_table(notebook_profile(a.profile)))
        return 0
    results = []
    for i in range(a.runs):
        results.append(run_demo(a.days, a.seed, extra))
        print(f"  run {i + 1}/{a.runs}: {results[-1]['total']:.1f} s", file=sys.stderr, flush=True)
    print(table(results, a.days, f"{a.label} " if a.label else ""))
    for i, r in enumerate(results, 1):
        print(f"\nrun {i}, each report (times from its record and papermill's cell timings):\n")
        print(profile_table(r["profile"]))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
