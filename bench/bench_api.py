"""Admin API latency on a year of simulated history.

Seeds a fresh embedded PostgreSQL (``xbotlib.devtools.testing.TestPostgres``) with a year of synthetic
history (``xbotlib.devtools.seed_history``: ``--accounts`` accounts, so every query has to select by
account), serves the admin API with uvicorn on 127.0.0.1 in a separate process, and runs a bounded
load: ``--clients`` concurrent clients each send ``--requests`` requests to one route at a time,
client i asking about account i mod ``--accounts`` (``?account_id=``), so no single account's figures
stay warm. Prints p50/p99 latency per route as a Markdown table, with the machine and date.

    .venv/bin/python bench/bench_api.py [--clients 8] [--requests 200] [--days 365] [--accounts 10]

Latency is measured by the client (request sent -> body read), so it includes HTTP and JSON work on
both sides; client and server share the machine's cores.
"""
from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import os
import secrets
import socket
import statistics
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import httpx
import uvicorn

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from xbotlib.app.api.app import create_app  # noqa: E402
from xbotlib.app.api.auth import FailureThrottle  # noqa: E402
from xbotlib.clock import SimClock, SystemClock  # noqa: E402
from xbotlib.config import load_settings  # noqa: E402
from xbotlib.devtools.bench import machine  # noqa: E402
from xbotlib.devtools.seed_history import HistorySpec, seed_history  # noqa: E402
from xbotlib.devtools.testing import TestPostgres  # noqa: E402
from xbotlib.store.db import Database  # noqa: E402

END = datetime(2026, 3, 2, 8, 0, tzinfo=timezone.utc)  # the seeded world's "now"
ACCOUNT = "bench"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def serve(db_url: str, port: int, token: str) -> None:
    """Child process: the admin API over ``db_url`` with a clock fixed at the end of the history."""
    settings = load_settings(env={"XBOT_DATABASE_URL": db_url, "ADMIN_TOKEN": token, "XBOT_ACCOUNT_ID": ACCOUNT,
                                  "POSTING_DISABLED": "false", "LIVE_POSTS": "false"})
    db = Database.from_url(db_url, pool_max=settings.db_pool_max)
    # the failure throttle slows a client down after a few wrong tokens (30 s per request after 16): on,
    # the 401 row would time the throttle's own waits, so it is off here and the row times the refusal itself
    app = create_app(settings, db, SimClock(END), auth_throttle=FailureThrottle(free=10**9))
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)


async def wait_ready(base: str, headers: dict, timeout_s: float = 60.0) -> None:
    async with httpx.AsyncClient(base_url=base, headers=headers) as client:
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                if (await client.get("/api/experiments")).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"the admin API did not answer at {base} within {timeout_s:.0f} s")
            await asyncio.sleep(0.2)


def account_ids(n: int) -> list[str]:
    """The seeded accounts: the measured one first, then its neighbours."""
    return [ACCOUNT] + [f"neighbour-{i}" for i in range(1, n)]


async def load(base: str, method: str, path: str, headers: dict, body: dict | None, clients: int,
               requests: int, accounts: list[str]) -> tuple[list[float], dict[int, int]]:
    """``clients`` concurrent clients × ``requests`` each, client i asking about ``accounts[i % len]``;
    returns latencies (ms) and status counts."""
    latencies: list[float] = []
    statuses: dict[int, int] = {}

    async def client_loop(i: int) -> None:
        params = {"account_id": accounts[i % len(accounts)]}
        async with httpx.AsyncClient(base_url=base, headers=headers, timeout=30) as client:
            for _ in range(requests):
                t0 = time.perf_counter()
                r = await client.request(method, path, json=body, params=params)
                await r.aread()
                latencies.append((time.perf_counter() - t0) * 1000)
                statuses[r.status_code] = statuses.get(r.status_code, 0) + 1

    await asyncio.gather(*(client_loop(i) for i in range(clients)))
    return latencies, statuses


def percentile(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=1000, method="inclusive")[int(q * 1000) - 1] if len(values) > 1 else values[0]



def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clients", type=int, default=8, help="concurrent clients per route (default 8)")
    parser.add_argument("--requests", type=int, default=200, help="requests per client per route (default 200)")
    parser.add_argument("--days", type=int, default=365, help="days of history to seed (default 365)")
    parser.add_argument("--accounts", type=int, default=10, help="accounts with that history (default 10)")
    args = parser.parse_args(argv)
    if args.clients < 1 or args.requests < 1 or args.accounts < 1:
        parser.error(f"--clients, --requests and --accounts must be >= 1, got {args.clients}, {args.requests} "
                     f"and {args.accounts}")
    accounts = account_ids(args.accounts)

    pg = TestPostgres()
    server = None
    try:
        url = pg.fresh_database()
        t0 = time.perf_counter()
        with Database.from_url(url, pool_max=2) as db:
            counts = seed_history(db, HistorySpec(ACCOUNT, END, days=args.days, seed=1))
            for seed, acc in enumerate(accounts[1:], start=2):
                seed_history(db, HistorySpec(acc, END, days=args.days, seed=seed))
            pg_version = db.execute("SHOW server_version")[0]["server_version"]
        seed_s = time.perf_counter() - t0
        print(f"seeded {args.days} days for each of {len(accounts)} accounts in {seed_s:.1f} s: "
              + ", ".join(f"{t}={n}" for t, n in counts.items()), file=sys.stderr)

        token = secrets.token_urlsafe(32)
        port = free_port()
        server = multiprocessing.get_context("spawn").Process(target=serve, args=(url, port, token), daemon=True)
        server.start()
        base = f"http://127.0.0.1:{port}"
        auth = {"Authorization": f"Bearer {token}"}
        asyncio.run(wait_ready(base, auth))

        routes = [
            ("GET", "/api/learning/status", auth, None),
            ("GET", "/api/growth", auth, None),
            ("GET", "/api/metrics", auth, None),
            ("GET", "/metrics", auth, None),
            ("GET", "/api/experiments", auth, None),
            ("PATCH", "/api/experiments/question_cta", auth, {"allocation": 0.3}),
            ("GET", "/api/metrics (no token: 401)", {}, None),
        ]
        rows = []
        for method, label, headers, body in routes:
            path = label.split(" ")[0]
            asyncio.run(load(base, method, path, headers, body, args.clients, 5, accounts))  # warm-up, not measured
            t0 = time.perf_counter()
            lat, statuses = asyncio.run(load(base, method, path, headers, body, args.clients, args.requests,
                                            accounts))
            wall = time.perf_counter() - t0
            rows.append((f"{method} {label}", len(lat), statuses, percentile(lat, 0.50), percentile(lat, 0.99),
                         len(lat) / wall))
            print(f"  {method} {label}: p50 {rows[-1][3]:.1f} ms, p99 {rows[-1][4]:.1f} ms", file=sys.stderr)
    finally:
        if server is not None:
            server.terminate()
            server.join(10)
        pg.drop_all()

    now = SystemClock().now()
    load1, load5, _ = os.getloadavg()
    print(f"\n### Admin API latency — {args.days} days of synthetic history × {len(accounts)} accounts, "
          f"{args.clients} clients × "
          f"{args.requests} requests per route\n")
    print(f"Machine: {machine()}; "
          f"PostgreSQL {pg_version} (embedded pgserver), uvicorn 1 worker; date {now.date().isoformat()}; "
          f"load average at the end {load1:.1f} (1 min) / {load5:.1f} (5 min) — other work on the machine "
          "shows up in the tail\n")
    print("| route | requests | status | p50 ms | p99 ms | req/s |")
    print("|---|---:|---|---:|---:|---:|")
    for route, n, statuses, p50, p99, rps in rows:
        st = ", ".join(f"{k}×{v}" for k, v in sorted(statuses.items()))
        print(f"| `{route}` | {n} | {st} | {p50:.1f} | {p99:.1f} | {rps:.0f} |")
    bad = [r for r in rows if any(code >= 500 for code in r[2])]
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
