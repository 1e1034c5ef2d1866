"""The resident set of a long campaign without the tracer, and whether handing freed memory back changes it.

`xbot bench speed --days 365 --memory` samples the resident set under tracemalloc, which itself keeps a record
per live allocation: its slope is the tracer's as much as the campaign's. This runs the same one-account,
demo-cadence campaign with nothing traced, samples the resident set once per simulated day, and with
``--release`` hands freed memory back to the system once a simulated day (``trim``: glibc's
``malloc_trim(0)``; ``gc+trim``: a full garbage collection first), to tell memory the process still uses from
memory its allocators keep (the learn job itself trims after each training: ``jobs.learn.hand_back_freed_memory``).
Run it again with ``PYTHONMALLOC=malloc`` to take CPython's own arenas (pymalloc, which frees an arena only when
every object in it is gone) out of the picture. The slope is printed after day 30 and by window (30-120, 120-240,
240-end), which tells a growth that levels off from one that goes on. What the growth is made of, site by
site: ``bench/bench_memory_holders.py``.

The campaign's X is the in-process sandbox, whose posts (X's data, held by X in production) are part of this
process's memory. ``--x-forgets-after DAYS`` takes them out of the picture: a measurement device, not X, the
sandbox drops its records of posts older than DAYS (at least 31: the collector reads posts up to 30 days old), so
what the resident set still gains is xbot's own.

    .venv/bin/python bench/bench_memory.py --days 365
    PYTHONMALLOC=malloc .venv/bin/python bench/bench_memory.py --days 365 --release gc+trim
    PYTHONMALLOC=malloc .venv/bin/python bench/bench_memory.py --days 240 --release gc+trim --x-forgets-after 35
"""
from __future__ import annotations

import argparse
import gc
import logging
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from xbotlib.app.cli.options import at_least  # noqa: E402
from xbotlib.config import load_settings  # noqa: E402
from xbotlib.devtools.bench_speed import memory_growth, peak_rss_mib, rss_mib, warm_process  # noqa: E402
from xbotlib.devtools.machine import machine  # noqa: E402
from xbotlib.devtools.testing import TestPostgres  # noqa: E402
from xbotlib.jobs.campaign import CampaignConfig, run_campaign  # noqa: E402
from xbotlib.jobs.learn import hand_back_freed_memory  # noqa: E402
from xbotlib.store.db import Database  # noqa: E402

RELEASES = ("none", "trim", "gc+trim")


def releaser(kind: str):
    """What runs once a simulated day: nothing, ``malloc_trim(0)`` (the learn job's own hand-back), or a full
    collection and then the trim."""
    if kind == "none":
        return lambda: None
    if not hand_back_freed_memory():
        raise SystemExit(f"--release {kind}: this C library has no malloc_trim (glibc only); use --release none")
    if kind == "trim":
        return hand_back_freed_memory
    return lambda: (gc.collect(), hand_back_freed_memory())


def forget_old_posts(days: int) -> None:
    """From now on, the in-process sandbox drops its records of posts older than ``days`` every 25 posts (the
    arrays of times and follows its reads need stay). For ``--x-forgets-after`` only: X itself keeps every post."""
    from xbotlib.sim.world import AudienceModel

    add = AudienceModel._add

    def add_then_forget(self, tweet) -> None:
        add(self, tweet)
        if self._n % 25:
            return
        cut = tweet.posted_at.timestamp() - days * 86400
        old = {i for i in self._order if self.tweets[i].posted_at.timestamp() < cut}
        if old:
            for i in old:
                del self.tweets[i]
            self._order = [i for i in self._order if i not in old]

    AudienceModel._add = add_then_forget


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--days", type=at_least(1), default=365, help="simulated days (default 365; the slope needs > 31)")
    ap.add_argument("--release", choices=RELEASES, default="none",
                    help="what to do once a simulated day (default none; see above)")
    ap.add_argument("--x-forgets-after", type=at_least(31), default=None, metavar="DAYS",
                    help="the in-process sandbox drops its posts older than DAYS: xbot's own memory without X's "
                         "data (a measurement device; see above)")
    args = ap.parse_args(argv)
    if args.days < 32:
        ap.error(f"--days must be at least 32 (the slope is taken after a 30-day warm-up), got {args.days}")
    config = CampaignConfig(days=args.days, seed=0)
    try:
        config.validate()   # the campaign's own bounds (at most a simulated year), before anything starts
    except ValueError as exc:
        ap.error(str(exc))
    if args.x_forgets_after is not None:
        forget_old_posts(args.x_forgets_after)
    release = releaser(args.release)
    logging.getLogger("xbot").setLevel(logging.WARNING)
    warm_process()
    pg = TestPostgres()
    url = pg.fresh_database()
    rss: list[tuple[int, float]] = []

    def on_progress(days_done: float) -> None:
        if int(days_done) > len(rss):
            release()
            rss.append((int(days_done), rss_mib()))

    t0 = time.perf_counter()
    try:
        with Database.from_url(url, pool_max=3) as db:
            run_campaign(config, load_settings(env={}), db, on_progress=on_progress)
    finally:
        pg.drop_all()
    by_day = dict(rss)
    marks = [d for d in (1, 30, 60, 120, 180, 240, 300, args.days - 1) if d in by_day]
    x_data = "all of X's posts held" if args.x_forgets_after is None else \
        f"X's posts older than {args.x_forgets_after} days dropped"
    print(f"resident set, {args.days} simulated days, one account, release {args.release}, {x_data}, "
          f"PYTHONMALLOC={os.environ.get('PYTHONMALLOC', '(pymalloc)')} — {machine()}; {time.perf_counter() - t0:.0f} s")
    print("| after day | " + " | ".join(map(str, marks)) + " |\n| --- |" + " ---: |" * len(marks))
    print("| MiB | " + " | ".join(f"{by_day[d]:.0f}" for d in marks) + " |")
    print(f"after day 30: {memory_growth(rss):+.2f} MiB per 100 simulated days; peak resident set {peak_rss_mib():.0f} MiB "
          "(the process's highest, start-up included)")
    windows = [(lo, hi) for lo, hi in ((30, 120), (120, 240), (240, args.days)) if hi - lo >= 30 and hi <= args.days]
    if windows:   # a growth that levels off (caches and allocators filling) shows here, one that goes on too
        slopes = "; ".join(f"days {lo}-{hi} {memory_growth(rss, lo, hi):+.2f}" for lo, hi in windows)
        print(f"by window: {slopes} MiB per 100 simulated days")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
