"""What a quiet tick's reads cost as history grows: each statement a daemon sends every tick, timed on one account
with 7, 90 and 365 days of history (``devtools.seed_history``: 6 posts and 2 replies a day, both passes of each,
hourly snapshots, analysed as production's tables would be).

    python bench/bench_tick_reads.py [--days 7 90 365] [--calls 200]
    PYTHONPATH=/tmp/old python bench/bench_tick_reads.py      # another checkout's store (the "before")

A read that walks the account's history grows with the days; one served by an index of what is open stays flat.
Timed: the store function's round trip on an autocommit connection, ``--calls`` times after 10 unmeasured (the
plans cached, the pages in memory), the mean in microseconds:

- ``due posts``: ``outcomes.posts_with_due_passes`` (the collect tick's posts with a pass due, one account);
- ``collect start``: ``outcomes.collection_starts`` (a collect tick's snapshot, due posts and pending rewards);
- ``post pre-flight``: ``queue.posting_preflights`` (every 5-minute post tick);
- ``rate-limit deferrals``: ``ratelimits.first_deferrals`` (every collect tick).
"""
from __future__ import annotations

import argparse
import sys
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

# appended, not put first: PYTHONPATH may name another checkout to time its store (the "before")
sys.path.append(str(Path(__file__).resolve().parents[1]))

from xbotlib.app.cli.options import at_least  # noqa: E402
from xbotlib.devtools.machine import machine  # noqa: E402
from xbotlib.devtools.seed_history import HistorySpec, seed_history  # noqa: E402
from xbotlib.devtools.testing import TestPostgres  # noqa: E402
from xbotlib.jobs import collect, post  # noqa: E402
from xbotlib.store import outcomes, queue, ratelimits  # noqa: E402
from xbotlib.store.db import Database  # noqa: E402

END = datetime(2026, 6, 1, tzinfo=timezone.utc)
ACCOUNT, WORLD = "bench", "sandbox"   # seed_history's posts are the sandbox's


def mean_us(call, calls: int) -> float:
    """Mean wall microseconds of ``call()`` over ``calls`` calls, after 10 that warm the plan and the pages."""
    for _ in range(10):
        call()
    start = time.perf_counter()
    for _ in range(calls):
        call()
    return (time.perf_counter() - start) / calls * 1e6


def reads(conn, now: datetime) -> dict:
    """The quiet tick's statements, each a call with no argument."""
    first_due, second_due = collect.pass_cutoffs(now)
    start = outcomes.CollectionStart(ACCOUNT, WORLD, 100, 10, 10)
    return {
        "due posts": lambda: outcomes.posts_with_due_passes(conn, ACCOUNT, WORLD, first_due, second_due),
        # the snapshot is written by the first call; the others find it there (as a repeated tick would)
        "collect start": lambda: outcomes.collection_starts(conn, [start], now, first_due, second_due),
        "post pre-flight": lambda: queue.posting_preflights(conn, [ACCOUNT], post.ENDPOINT, now,
                                                                  queue.postable_sources("sandbox")),
        "rate-limit deferrals": lambda: ratelimits.first_deferrals(conn, [ACCOUNT], collect.ENDPOINTS, now),
    }


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--days", type=at_least(1), nargs="+", default=[7, 90, 365], help="history lengths (default 7 90 365)")
    ap.add_argument("--calls", type=at_least(1), default=200, help="timed calls per read (default 200)")
    args = ap.parse_args(argv)
    if any(not 1 <= d <= 3660 for d in args.days) or args.calls < 1:
        ap.error(f"--days must be 1..3660 and --calls at least 1, got {args.days} and {args.calls}")
    pg = TestPostgres()
    table: dict[int, dict[str, float]] = {}
    try:
        for days in args.days:
            with Database.from_url(pg.fresh_database(), pool_max=2) as db:
                seed_history(db, HistorySpec(ACCOUNT, END, days=days, seed=1))
                with db.autocommit() as conn:
                    table[days] = {name: mean_us(call, args.calls)
                                   for name, call in reads(conn, END + timedelta(minutes=7)).items()}
            print(f"  {days} days seeded and timed", file=sys.stderr, flush=True)
    finally:
        pg.drop_all()
    names = list(next(iter(table.values())))
    print(f"quiet-tick reads of one account, µs a call (mean of {args.calls}) — {machine()}; "
          f"xbotlib from {Path(outcomes.__file__).resolve().parents[1]}")
    print("| days of history | " + " | ".join(names) + " |\n| ---: |" + " ---: |" * len(names))
    for days, row in table.items():
        print(f"| {days} | " + " | ".join(f"{row[n]:,.0f}" for n in names) + " |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
