"""Admin API latency on a year of simulated history.

Seeds a fresh embedded PostgreSQL (``xbotlib.devtools.testing.TestPostgres``) with a year of synthetic
history (``xbotlib.devtools.seed_history``: ``--accounts`` accounts, so every query has to select by
account), serves the admin API with uvicorn on 127.0.0.1 in a separate process, and runs a bounded
load: ``--clients`` concurrent clients each send ``--requests`` requests to one route at a time,
client i asking about account i mod ``--accounts`` (``?account_id=``), so no single account's figures
stay warm. Prints p50/p99 latency per route as a Markdown table, with the machine and date.

    .venv/bin/python bench/bench_api.py [--clients 8] [--requests 200] [--days 365] [--accounts 10]
                                        [--baseline DIR] [--database-url URL] [--routes TEXT]
                                        [--client httpx|raw]

Latency is measured by the client (request sent -> body read), so it includes HTTP and JSON work on
both sides; client and server share the machine's cores. On Linux the table also gives the CPU each request
cost the server process and its PostgreSQL sessions (/proc): the work itself, which other load on a shared
machine delays but does not add to; and the CPU the clients' own process spent per request (httpx, 8 clients in one
event loop: ~1.5-2.5 ms a request, as much as the server's, on the same two cores, so part of every latency here is
the client's own queue).

``--baseline DIR`` also serves the API from another source tree (e.g. ``git archive <commit> | tar -x -C DIR``)
over the same database, first checks that both servers answer every route with the same bytes for every
account and world, then measures both route by route, taking ``--turns`` turns (baseline, this tree,
baseline, ...), so "before" and "after" share one run and the same machine load. ``--database-url`` reuses a database seeded by an earlier run
(``--keep`` prints its URL and leaves it) instead of seeding 365 days x 10 accounts again (~1 min).
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import socket
import statistics
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path
from urllib.parse import urlencode

import httpx
import uvicorn
from psycopg.conninfo import conninfo_to_dict

# the server of --baseline imports xbotlib from its own tree (XBOT_BENCH_SRC); everything else from this one
sys.path.insert(0, os.environ.get("XBOT_BENCH_SRC") or str(Path(__file__).resolve().parent.parent))

from xbotlib.app.cli.options import at_least  # noqa: E402
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
    """Child process: the admin API over ``db_url`` with a clock fixed at the end of the history (the xbotlib
    it imports is this tree's, or XBOT_BENCH_SRC's for --baseline)."""
    settings = load_settings(env={"XBOT_DATABASE_URL": db_url, "ADMIN_TOKEN": token, "XBOT_ACCOUNT_ID": ACCOUNT,
                                  "POSTING_DISABLED": "false", "LIVE_POSTS": "false"})
    db = Database.from_url(db_url, pool_max=settings.db_pool_max)
    # the failure throttle slows a client down after a few wrong tokens (30 s per request after 16): on,
    # the 401 row would time the throttle's own waits, so it is off here and the row times the refusal itself
    app = create_app(settings, db, SimClock(END), auth_throttle=FailureThrottle(free=10**9))
    try:  # served as `xbot api` serves it; a --baseline tree from before serving.serve ran uvicorn itself
        from xbotlib.app.api.serving import serve as serve_app
    except ImportError:
        serve_app = uvicorn.run
    serve_app(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)


def start_server(db_url: str, token: str, src: Path | None, name: str) -> tuple[subprocess.Popen, str]:
    """A server process (``serve``) on a free port, importing xbotlib from ``src`` (None: this tree); its database
    sessions carry the application_name ``xbot-bench-<name>`` (``backend_pids``)."""
    port = free_port()
    env = {**os.environ, "XBOT_BENCH_SRC": str(src.resolve()) if src else ""}
    url = f"{db_url}{'&' if '?' in db_url else '?'}application_name=xbot-bench-{name}"
    proc = subprocess.Popen([sys.executable, str(Path(__file__).resolve()), "--serve", url, str(port), token],
                            env=env)
    return proc, f"http://127.0.0.1:{port}"


def cpu_seconds(pid: int) -> float | None:
    """User + system CPU seconds the process has used (Linux /proc; None elsewhere or when it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def backend_pids(db: Database, name: str) -> list[int]:
    """The PostgreSQL backends serving the server ``name`` (same machine: their CPU is read from /proc)."""
    return [r["pid"] for r in db.execute("SELECT pid FROM pg_stat_activity WHERE application_name = %s",
                                         (f"xbot-bench-{name}",))]


def cpu_used(before: dict[int, float | None], after: dict[int, float | None]) -> float | None:
    """CPU seconds between two readings of {pid: cpu_seconds} (a pid new in ``after`` counts from 0)."""
    if not after or any(v is None for v in after.values()):
        return None
    return sum(v - (before.get(pid) or 0.0) for pid, v in after.items())


def same_bodies(bases: dict[str, str], headers: dict, accounts: list[str]) -> list[str]:
    """GET every route of every server for every account and world: the differences, by request (none: [])."""
    differences = []
    with httpx.Client(headers=headers, timeout=60) as client:
        for path in ("/api/learning/status", "/api/growth", "/api/metrics", "/metrics", "/api/experiments",
                     "/api/experiments/question_cta/lift"):
            for acc in accounts[:2] if path.endswith("/lift") else accounts:  # a lift refits: two accounts
                for world in ("sandbox", "live"):
                    params = {"account_id": acc, "world": world}
                    bodies = {name: (r.status_code, r.content) for name, base in bases.items()
                              for r in [client.get(base + path, params=params)]}
                    if len(set(bodies.values())) > 1:
                        differences.append(f"{path}?account_id={acc}&world={world}")
    return differences


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
    returns latencies (ms) and status counts.

    Every client is created and has sent one untimed request (its connection open) before any timed request:
    creating an httpx client costs ~30 ms of CPU (its SSL context) in this one event loop, and when the clients
    were created as they started, that time fell inside the others' timed requests — the first 8 requests of
    every turn took 200–500 ms, enough to make a route's p99. A dashboard polling the API keeps its connection."""
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    pool = [httpx.AsyncClient(base_url=base, headers=headers, timeout=30) for _ in range(clients)]

    async def request(i: int) -> httpx.Response:
        r = await pool[i].request(method, path, json=body, params={"account_id": accounts[i % len(accounts)]})
        await r.aread()
        return r

    async def client_loop(i: int) -> None:
        for _ in range(requests):
            t0 = time.perf_counter()
            r = await request(i)
            latencies.append((time.perf_counter() - t0) * 1000)
            statuses[r.status_code] = statuses.get(r.status_code, 0) + 1

    try:
        await asyncio.gather(*(request(i) for i in range(clients)))  # untimed: each client's connection opened
        await asyncio.gather(*(client_loop(i) for i in range(clients)))
    finally:
        await asyncio.gather(*(c.aclose() for c in pool))
    return latencies, statuses


async def load_raw(base: str, method: str, path: str, headers: dict, body: dict | None, clients: int,
                   requests: int, accounts: list[str]) -> tuple[list[float], dict[int, int]]:
    """``load`` with a minimal HTTP/1.1 client (``--client raw``): one keep-alive connection per client, the request's
    bytes written once and the response read by its Content-Length. ~0.1 ms of CPU a request where httpx spends
    1.5-2.5 ms, on the cores the server runs on: with it the table measures the server, not the load generator."""
    host, port = base.removeprefix("http://").rsplit(":", 1)
    payload = json.dumps(body).encode() if body is not None else b""
    latencies: list[float] = []
    statuses: dict[int, int] = {}

    async def client(i: int) -> None:
        lines = [f"{method} {path}?{urlencode({'account_id': accounts[i % len(accounts)]})} HTTP/1.1", f"Host: {host}",
                 *(f"{k}: {v}" for k, v in headers.items()), f"Content-Length: {len(payload)}"]
        if body is not None:
            lines.append("Content-Type: application/json")
        request = ("\r\n".join(lines) + "\r\n\r\n").encode() + payload
        reader, writer = await asyncio.open_connection(host, int(port))

        async def exchange() -> int:
            writer.write(request)
            head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1").split("\r\n")
            fields = {k.strip().lower(): v.strip() for k, _, v in (h.partition(":") for h in head[1:] if h)}
            if "content-length" not in fields:
                raise RuntimeError(f"{method} {path}: a response without Content-Length ({head[0]}): --client raw "
                                   "reads only those; use --client httpx")
            await reader.readexactly(int(fields["content-length"]))
            return int(head[0].split()[1])

        try:
            await exchange()  # untimed: the connection opened, as in load
            for _ in range(requests):
                t0 = time.perf_counter()
                code = await exchange()
                latencies.append((time.perf_counter() - t0) * 1000)
                statuses[code] = statuses.get(code, 0) + 1
        finally:
            writer.close()

    await asyncio.gather(*(client(i) for i in range(clients)))
    return latencies, statuses


def percentile(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=1000, method="inclusive")[int(q * 1000) - 1] if len(values) > 1 else values[0]



def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clients", type=at_least(1), default=8, help="concurrent clients per route (default 8)")
    parser.add_argument("--requests", type=at_least(1), default=200, help="requests per client per route (default 200)")
    parser.add_argument("--days", type=at_least(1), default=365, help="days of history to seed (default 365)")
    parser.add_argument("--accounts", type=at_least(1), default=10, help="accounts with that history (default 10)")
    parser.add_argument("--turns", type=at_least(1), default=4,
                        help="with --baseline, the servers take this many turns per route (default 4)")
    parser.add_argument("--baseline", type=Path, metavar="DIR",
                        help="also serve from the xbotlib under DIR (another commit) and measure it first")
    parser.add_argument("--database-url", metavar="URL", help="a database seeded by an earlier run (--keep)")
    parser.add_argument("--keep", action="store_true", help="leave the seeded database and print its URL")
    parser.add_argument("--routes", metavar="TEXT", help="only the routes whose label contains TEXT, e.g. learning")
    parser.add_argument("--client", choices=("httpx", "raw"), default="httpx",
                        help="the load's HTTP client: httpx (default, as before), or raw, a minimal HTTP/1.1 client "
                             "costing ~0.1 ms of CPU a request instead of ~2 ms on the server's cores")
    parser.add_argument("--serve", nargs=3, metavar=("URL", "PORT", "TOKEN"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve:
        serve(args.serve[0], int(args.serve[1]), args.serve[2])
        return 0
    if args.baseline is not None and not (args.baseline / "xbotlib" / "app" / "api" / "app.py").is_file():
        parser.error(f"--baseline {args.baseline}: no xbotlib/app/api/app.py there (unpack a commit into it, e.g. "
                     f"`git archive <commit> | tar -x -C {args.baseline}`)")
    if args.clients < 1 or args.requests < 1 or args.accounts < 1 or args.turns < 1:
        parser.error(f"--clients, --requests, --accounts and --turns must be >= 1, got {args.clients}, "
                     f"{args.requests}, {args.accounts} and {args.turns}")
    if args.turns > args.requests:
        parser.error(f"--turns {args.turns} is more than --requests {args.requests}: each turn needs a request")
    accounts = account_ids(args.accounts)
    run_load = load_raw if args.client == "raw" else load

    pg = None if args.database_url else TestPostgres()
    servers: dict[str, tuple[subprocess.Popen, str]] = {}
    loads = [os.getloadavg()]
    try:
        url = args.database_url or pg.fresh_database()
        with Database.from_url(url, pool_max=2) as db:
            if not args.database_url:
                t0 = time.perf_counter()
                counts = seed_history(db, HistorySpec(ACCOUNT, END, days=args.days, seed=1))
                for seed, acc in enumerate(accounts[1:], start=2):
                    seed_history(db, HistorySpec(acc, END, days=args.days, seed=seed))
                print(f"seeded {args.days} days for each of {len(accounts)} accounts in "
                      f"{time.perf_counter() - t0:.1f} s: " + ", ".join(f"{t}={n}" for t, n in counts.items()),
                      file=sys.stderr)
            pg_version = db.execute("SHOW server_version")[0]["server_version"]
        if args.keep and pg is not None:
            pg._created.remove(conninfo_to_dict(url)["dbname"])  # drop_all leaves it (an embedded server run as
            # root is deleted at exit all the same: point XBOT_TEST_DATABASE_URL at a server that stays)
            print(f"seeded database kept: --database-url '{url}'", file=sys.stderr)

        token = secrets.token_urlsafe(32)
        auth = {"Authorization": f"Bearer {token}"}
        if args.baseline is not None:
            servers["before"] = start_server(url, token, args.baseline, "before")
        servers["after"] = start_server(url, token, None, "after")
        for _, base in servers.values():
            asyncio.run(wait_ready(base, auth))
        if len(servers) > 1:
            differences = same_bodies({n: b for n, (_, b) in servers.items()}, auth, accounts)
            print(f"bodies: {'identical' if not differences else f'{len(differences)} differ: {differences[:5]}'} "
                  f"(every GET route for {len(accounts)} accounts and the lift for 2, both worlds, before vs after)",
                  file=sys.stderr)

        routes = [
            ("GET", "/api/learning/status", auth, None),
            ("GET", "/api/growth", auth, None),
            ("GET", "/api/metrics", auth, None),
            ("GET", "/metrics", auth, None),
            ("GET", "/api/experiments", auth, None),
            ("PATCH", "/api/experiments/question_cta", auth, {"allocation": 0.3}),
            ("GET", "/api/metrics (no token: 401)", {}, None),
        ]
        routes = [r for r in routes if args.routes is None or args.routes in f"{r[0]} {r[1]}"]
        rows = []
        for method, label, headers, body in routes:
            path = label.split(" ")[0]
            measured = {name: {"lat": [], "statuses": {}, "wall": 0.0, "server": 0.0, "db": 0.0, "client": 0.0}
                        for name in servers}
            for name, (_, base) in servers.items():
                asyncio.run(run_load(base, method, path, headers, body, args.clients, 5, accounts))  # warm-up
            # the servers take turns, a slice of the requests each, so a change in the machine's load during
            # the run falls on both alike
            for turn in range(args.turns):
                share = args.requests // args.turns + (turn < args.requests % args.turns)
                for name, (proc, base) in servers.items():
                    m = measured[name]
                    with Database.from_url(url, pool_max=1) as probe:
                        cpu0 = {pid: cpu_seconds(pid) for pid in [proc.pid, *backend_pids(probe, name)]}
                        t0, c0 = time.perf_counter(), time.process_time()
                        lat, statuses = asyncio.run(run_load(base, method, path, headers, body, args.clients, share,
                                                        accounts))
                        m["wall"] += time.perf_counter() - t0
                        m["client"] += time.process_time() - c0
                        cpu1 = {pid: cpu_seconds(pid) for pid in [proc.pid, *backend_pids(probe, name)]}
                    # CPU of the server process and of its database sessions: the work the requests cost, which
                    # other load on the machine does not add to (it only delays it); None where /proc is not
                    server = cpu_used({proc.pid: cpu0.pop(proc.pid)}, {proc.pid: cpu1.pop(proc.pid)})
                    db_cpu = cpu_used(cpu0, cpu1)
                    m["server"] = None if server is None or m["server"] is None else m["server"] + server
                    m["db"] = None if db_cpu is None or m["db"] is None else m["db"] + db_cpu
                    m["lat"] += lat
                    for code, n in statuses.items():
                        m["statuses"][code] = m["statuses"].get(code, 0) + n
                    loads.append(os.getloadavg())
            row = [f"{method} {label}"]
            for name, m in measured.items():
                n = len(m["lat"])
                row.append((name, n, m["statuses"], percentile(m["lat"], 0.50), percentile(m["lat"], 0.99),
                            n / m["wall"], None if m["server"] is None else 1000 * m["server"] / n,
                            None if m["db"] is None else 1000 * m["db"] / n, 1000 * m["client"] / n))
                print(f"  {name}: {method} {label}: p50 {row[-1][3]:.1f} ms, p99 {row[-1][4]:.1f} ms, "
                      f"load {os.getloadavg()[0]:.1f}", file=sys.stderr)
            rows.append(row)
    finally:
        for proc, _ in servers.values():
            proc.terminate()
            proc.wait(10)
        if pg is not None:
            pg.drop_all()

    now = SystemClock().now()
    load1 = [lo[0] for lo in loads]
    print(f"\n### Admin API latency — {args.days} days of synthetic history × {len(accounts)} accounts, "
          f"{args.clients} clients × {args.requests} requests per route\n")
    print(f"Machine: {machine()}; PostgreSQL {pg_version} (embedded pgserver), uvicorn 1 worker; {args.client} clients; "
          f"date {now.date().isoformat()}; 1-min load average {min(load1):.1f}–{max(load1):.1f} during the run "
          f"(2 cores) — other work on the machine shows up in the tail\n")
    names = list(servers)

    def ms(value: float | None) -> str:
        return "–" if value is None else f"{value:.2f}"

    print("| route | status | " + " | ".join(f"{n} p50 ms | {n} p99 ms | {n} req/s | {n} server CPU ms/req | "
                                           f"{n} PostgreSQL CPU ms/req | {n} client CPU ms/req" for n in names) + " |")
    print("|---|---|" + "---:|---:|---:|---:|---:|---:|" * len(names))
    for label, *measured in rows:
        st = ", ".join(f"{k}×{v}" for k, v in sorted(measured[-1][2].items()))
        cells = " | ".join(f"{p50:.1f} | {p99:.1f} | {rps:.0f} | {ms(server)} | {ms(pg_)} | {client:.2f}"
                           for _, _, _, p50, p99, rps, server, pg_, client in measured)
        print(f"| `{label}` | {st} | {cells} |")
    bad = [r for r in rows if any(code >= 500 for m in r[1:] for code in m[2])]
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
