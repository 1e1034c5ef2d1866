"""What a long campaign's memory grows by, allocation site by allocation site, C libraries included.

`bench/bench_memory.py` shows the resident set growing; this says what grows. It runs the one-account,
demo-cadence campaign of `xbot bench speed` twice, ``--short`` and ``--long`` simulated days, each under memray
(every allocation with its Python and native stack: PostgreSQL's driver, numpy, LightGBM too) with CPython's
allocator off (``PYTHONMALLOC=malloc``, so each object is its own allocation), and prints, by area and by site,
how much more the longer campaign held

- at its peak (the high-water mark: the largest transient of a long campaign sets the resident set's level), and
- when the campaign returned (what stays).

memray is a development tool, not one of xbot's dependencies: ``pip install memray``. Each campaign runs in a
process of its own; the long one takes ~1.5 s a simulated day under the tracer.

    PYTHONMALLOC=malloc .venv/bin/python bench/bench_memory_holders.py --short 60 --long 240
"""
from __future__ import annotations

import argparse
import collections
import logging
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from xbotlib.app.cli.options import at_least  # noqa: E402

try:
    import memray
except ImportError:   # pragma: no cover - depends on the machine
    raise SystemExit("bench_memory_holders needs memray (a development tool, not an xbot dependency): "
                     "pip install memray") from None


def campaign(days: int, out: str) -> None:
    """One campaign of ``days`` under memray's tracker, started after the database is up and stopped when the
    campaign returns (so set-up and tear-down are not in it)."""
    from xbotlib.config import load_settings
    from xbotlib.devtools.bench_speed import warm_process
    from xbotlib.devtools.testing import TestPostgres
    from xbotlib.jobs.campaign import CampaignConfig, run_campaign
    from xbotlib.store.db import Database

    logging.getLogger("xbot").setLevel(logging.WARNING)
    warm_process()
    pg = TestPostgres()
    try:
        with Database.from_url(pg.fresh_database(), pool_max=3) as db:
            with memray.Tracker(out, native_traces=True, file_format=memray.FileFormat.AGGREGATED_ALLOCATIONS):
                run_campaign(CampaignConfig(days=days, seed=0), load_settings(env={}), db)
    finally:
        pg.drop_all()


def _site(record) -> tuple[str, str]:
    """(area, site) of an allocation: the area is the first of xbot's own packages on its stack (the sandbox X
    counted apart: X's data in production), else the library; the site its innermost Python line."""
    py = [(fn, line) for _func, fn, line in record.hybrid_stack_trace() if fn.endswith(".py")]
    ours = [fn.split("xbotlib/", 1)[1] for fn, _ in py if "/xbotlib/" in fn]
    if any(p.startswith("sim/") for p in ours):
        area = "sandbox X (X's data)"
    elif any("ctypeslib" in fn for fn, _ in py):
        area = "numpy ctypes types (LightGBM's label read-back)"
    elif ours:
        area = "xbot " + ours[0]
    else:
        area = "other"
    if not py:
        return area, "(native)"
    path = py[0][0]
    for prefix in (f"{ROOT}/", "site-packages/", f"/lib/python{sys.version_info[0]}.{sys.version_info[1]}/"):
        path = path.split(prefix)[-1]
    return area, f"{path}:{py[0][1]}"


def held(path: str) -> tuple[float, dict, dict]:
    """Peak MiB, and bytes by (area, site) at the high-water mark and at the end."""
    reader = memray.FileReader(path)
    peak, end = collections.Counter(), collections.Counter()
    for rec in reader.get_high_watermark_allocation_records(merge_threads=True):
        peak[_site(rec)] += rec.size
    for rec in reader.get_leaked_allocation_records(merge_threads=True):
        end[_site(rec)] += rec.size
    return reader.metadata.peak_memory / 2**20, peak, end


def _table(title: str, short: dict, long: dict, span: int, n: int) -> str:
    by_area: collections.Counter = collections.Counter()
    for key in set(short) | set(long):
        by_area[key[0]] += long.get(key, 0) - short.get(key, 0)
    lines = [f"| {title}, by area | KiB | KiB per 100 days |", "| --- | ---: | ---: |"]
    lines += [f"| {area} | {b / 1024:+,.0f} | {b / 1024 * 100 / span:+,.0f} |"
              for area, b in sorted(by_area.items(), key=lambda kv: -abs(kv[1]))[:n]]
    sites = {k: long.get(k, 0) - short.get(k, 0) for k in set(short) | set(long)}
    lines += ["", f"| {title}, largest sites | area | KiB |", "| --- | --- | ---: |"]
    lines += [f"| `{site}` | {area} | {b / 1024:+,.0f} |"
              for (area, site), b in sorted(sites.items(), key=lambda kv: -abs(kv[1]))[:n]]
    return "\n".join(lines)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--short", type=at_least(1), default=60, help="simulated days of the first campaign (default 60)")
    ap.add_argument("--long", type=at_least(1), default=240, help="simulated days of the second campaign (default 240)")
    ap.add_argument("--top", type=at_least(1), default=10, help="rows of each table (default 10)")
    ap.add_argument("--campaign", type=int, help=argparse.SUPPRESS)   # internal: run one campaign
    ap.add_argument("--out", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.campaign is not None:
        campaign(args.campaign, args.out)
        return 0
    if not 1 <= args.short < args.long:
        ap.error(f"--short must be at least 1 and below --long, got --short {args.short} --long {args.long}")
    from xbotlib.jobs.campaign import CampaignConfig   # imported here, as in campaign(): the parent only checks
    try:
        CampaignConfig(days=args.long, seed=0).validate()   # the campaign's own bounds, before either one runs
    except ValueError as exc:
        ap.error(f"--long: {exc}")
    env = {**os.environ, "PYTHONMALLOC": "malloc"}
    with tempfile.TemporaryDirectory() as tmp:
        results = []
        for days in (args.short, args.long):
            out = os.path.join(tmp, f"campaign-{days}.bin")
            print(f"campaign of {days} simulated days under memray …", file=sys.stderr, flush=True)
            subprocess.run([sys.executable, __file__, "--campaign", str(days), "--out", out], env=env, check=True)
            results.append(held(out))
    (peak_s, hwm_s, end_s), (peak_l, hwm_l, end_l) = results
    span = args.long - args.short
    print(f"memray, one account, {args.short} and {args.long} simulated days, PYTHONMALLOC=malloc: peak "
          f"{peak_s:.1f} → {peak_l:.1f} MiB ({(peak_l - peak_s) * 100 / span:+.2f} MiB per 100 days); held at the end "
          f"{sum(end_s.values()) / 2**20:.1f} → {sum(end_l.values()) / 2**20:.1f} MiB "
          f"({(sum(end_l.values()) - sum(end_s.values())) / 2**20 * 100 / span:+.2f} MiB per 100 days)\n")
    print(_table("more at the peak", hwm_s, hwm_l, span, args.top) + "\n")
    print(_table("more held at the end", end_s, end_l, span, args.top))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
