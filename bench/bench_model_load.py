"""What the plan job pays, each plan, to get its active content predictor: the stored model read and unpickled
again (``store.models.load_active`` without ``known``, what every plan did before), or the one loaded at an
earlier tick reused while it is still the active one (``known=``, what the plan job does now: the row's other
columns are still read).

    python bench/bench_model_load.py [--calls 300] [--rows 600]

Both kinds the learn job stores are timed: a ridge model (a few KiB) and a LightGBM one trained on ``--rows``
rows of a non-linear signal (a few hundred KiB: the trees as text). Client CPU (``time.process_time``) of one
``load_active`` on an open connection, the mean of ``--calls`` after 20 unmeasured; PostgreSQL's side (sending the
bytes) is not in it.
"""
from __future__ import annotations

import argparse
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

sys.path.append(str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402

from xbotlib.app.cli.options import at_least  # noqa: E402
from xbotlib.core.features import FEATURE_NAMES  # noqa: E402
from xbotlib.core.predictors import train_with_fallback  # noqa: E402
from xbotlib.devtools.machine import machine  # noqa: E402
from xbotlib.devtools.testing import TestPostgres  # noqa: E402
from xbotlib.store.db import Database  # noqa: E402
from xbotlib.store.models import load_active, save_version  # noqa: E402
from xbotlib.store.queue import ensure_account  # noqa: E402

T0 = datetime(2026, 1, 1, tzinfo=timezone.utc)
ACCOUNT = "bench-model-load"


def cpu_us(call, calls: int) -> float:
    """Mean client CPU of ``call()`` in microseconds, after 20 unmeasured calls."""
    for _ in range(20):
        call()
    start = time.process_time()
    for _ in range(calls):
        call()
    return 1e6 * (time.process_time() - start) / calls


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--calls", type=at_least(1), default=300, help="timed calls per case (default 300)")
    ap.add_argument("--rows", type=at_least(1), default=600, help="training rows of each model (default 600)")
    args = ap.parse_args(argv)
    if args.calls < 1 or args.rows < 50:
        ap.error(f"--calls must be >= 1 and --rows >= 50, got {args.calls} and {args.rows}")
    print(f"load_active, client CPU a call (mean of {args.calls}) — {machine()}\n")
    print("| active model | stored | read and unpickled every plan | reused while active |\n| --- | ---: | ---: | ---: |")
    pg = TestPostgres()
    try:
        with Database.from_url(pg.fresh_database(), pool_max=2) as db, db.connection() as conn:
            ensure_account(conn, ACCOUNT, T0, "UTC")
            rng = np.random.default_rng(3)
            for use_lightgbm in (False, True):
                X = rng.uniform(-2, 2, size=(args.rows, len(FEATURE_NAMES)))
                y = np.where(X[:, 0] * X[:, 1] > 0, 1.0, -1.0)   # an interaction: LightGBM wins when it may
                trained = train_with_fallback("reward", X, y, np.ones(args.rows), use_lightgbm, None)
                save_version(conn, ACCOUNT, "content", trained, FEATURE_NAMES, args.rows, "sandbox", 1, T0)
                # this model active, whatever the serving rule said of it on this data
                conn.execute("UPDATE predictors SET rejected_reason = NULL, is_active = (version = "
                             "(SELECT max(version) FROM predictors WHERE account_id = %s))", (ACCOUNT,))
                size = conn.execute("SELECT octet_length(model) AS n FROM predictors WHERE is_active").fetchone()["n"]
                known = load_active(conn, ACCOUNT, "content", "sandbox")
                reload = cpu_us(lambda: load_active(conn, ACCOUNT, "content", "sandbox"), args.calls)
                reuse = cpu_us(lambda: load_active(conn, ACCOUNT, "content", "sandbox", known=known), args.calls)
                print(f"| {trained.algorithm} | {size / 1024:.0f} KiB | {reload:,.0f} µs | {reuse:,.0f} µs |")
    finally:
        pg.drop_all()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
