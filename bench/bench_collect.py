"""One collect pass over many due posts: outcomes upserted per second and X calls per outcome.

    python bench/bench_collect.py [--posts 10000] [--no-analytics] [--seed 0] [--profile 25]
    python bench/bench_collect.py --before /tmp/xbot-main --rounds 3    # before/after in one run

``--profile N`` prints the N costliest functions of the timed tick (cProfile, by own time; the profiler
slows Python code more than the database, so the table's figures come from the unprofiled rounds; the
batches are stored on the collector's writer thread, which cProfile does not follow: there they show as
the tick waiting on a lock).
``--before DIR`` runs the same benchmark from another checkout (e.g. ``git worktree add /tmp/xbot-main main``)
in a subprocess, alternating with this one round by round, and prints both with the load average: before
and after measured under the same conditions.

Setup (not timed): a fresh database on the embedded PostgreSQL (or XBOT_TEST_DATABASE_URL), N posts
recorded in the in-process sandbox X (its audience model, spread over the last 2..29 days so both
passes are due) and in ``content_metadata`` / ``posted_decisions`` (COPY), plus hourly follower
snapshots for the attribution path. Timed: ``xbotlib.jobs.collect.tick`` — every lookup through the
real XClient over the ASGI transport, every outcome upserted in PostgreSQL — then a second tick
(nothing due: the idempotent no-op). Prints a Markdown table with machine and date.
"""
from __future__ import annotations

import argparse
import cProfile
import dataclasses
import io
import os
import pstats
import re
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np

from xbotlib.app.cli.options import at_least
from xbotlib.store import queue
from xbotlib.core import vocab
from xbotlib.clock import SimClock
from xbotlib.config import load_settings
from xbotlib.store.db import Database
from xbotlib.jobs import collect
from xbotlib.jobs.context import build_context
from xbotlib.sim.candidates import snowflake
from xbotlib.sim.scenario import load_scenario
from xbotlib.sim.xserver import SandboxX
from xbotlib.devtools.bench import machine
from xbotlib.clients.generation import TemplateGenerator
from xbotlib.devtools.testing import TestPostgres

NOW = datetime(2026, 3, 2, 12, 0, tzinfo=timezone.utc)
ACCOUNT = "bench"


def texts(n: int, seed: int) -> list[str]:
    gen, rng = TemplateGenerator(seed), np.random.default_rng(seed)
    pool = [c.text for h in vocab.HOOK_PATTERNS for t in vocab.TOPICS for c in gen.candidates(h, t, 30, rng=rng)]
    return [pool[i % len(pool)] for i in range(n)]


def setup(db: Database, sandbox: SandboxX, n: int, seed: int) -> None:
    """Record n posts in the sandbox and the database, and hourly follower snapshots."""
    first, last = NOW - timedelta(days=29), NOW - timedelta(days=2)
    step = (last - first) / n
    rows_cm, rows_pd = [], []
    for i, text in enumerate(texts(n, seed)):
        at = first + i * step
        tweet_id = snowflake(at, i)
        sandbox.audience.post(tweet_id, text, at)
        did = uuid.UUID(int=i + 1)
        rows_cm.append((did, ACCOUNT, "post", "posted", text, queue.content_hash(text), "template",
                        vocab.detect_hook(text), at, at, at))
        rows_pd.append((did, ACCOUNT, tweet_id, "sandbox", at))
    with db.connection() as conn:
        queue.ensure_account(conn, ACCOUNT, first - timedelta(days=1))
        with conn.cursor().copy("COPY content_metadata (decision_id, account_id, decision_type, status, content, "
                                "content_hash, generation_source, hook_pattern, scheduled_at, created_at, updated_at) "
                                "FROM STDIN") as cp:
            for r in rows_cm:
                cp.write_row(r)
        with conn.cursor().copy("COPY posted_decisions (decision_id, account_id, tweet_id, world, posted_at) "
                                "FROM STDIN") as cp:
            for r in rows_pd:
                cp.write_row(r)
        with conn.cursor().copy("COPY follower_snapshots (account_id, taken_at, followers_count, simulated) "
                                "FROM STDIN") as cp:
            at = first - timedelta(hours=1)
            while at < NOW:
                cp.write_row((ACCOUNT, at, sandbox.audience.followers_at(at), True))
                at += timedelta(hours=1)


def run(n: int, analytics: bool, seed: int, pg: TestPostgres, profile: int = 0) -> dict:
    url = pg.fresh_database()
    clock = SimClock(NOW - timedelta(days=31))
    # a 1-day fatigue window only keeps the (untimed) recording of 10k posts quick
    scenario = load_scenario(None)
    scenario = dataclasses.replace(scenario, fatigue=dataclasses.replace(scenario.fatigue, window_days=1.0))
    sandbox = SandboxX(scenario, clock=clock, seed=seed, analytics_enabled=analytics)
    settings = load_settings(env={"XBOT_DATABASE_URL": url, "XBOT_HOME": tempfile.mkdtemp(prefix="xbot-bench-"),
                                  "POSTING_DISABLED": "false", "LIVE_POSTS": "false", "XBOT_ACCOUNT_ID": ACCOUNT})
    with Database.from_url(url, pool_max=4) as db:
        t = time.perf_counter()
        setup(db, sandbox, n, seed)
        setup_s = time.perf_counter() - t
        clock.set(NOW)
        ctx = build_context(settings, db, clock, sandbox=sandbox, seed=seed, generator=TemplateGenerator(seed))
        prof = cProfile.Profile() if profile else None
        t = time.perf_counter()
        if prof:
            prof.enable()
        result = collect.tick(ctx)
        if prof:
            prof.disable()
        tick_s = time.perf_counter() - t
        if prof:
            out = io.StringIO()
            pstats.Stats(prof, stream=out).sort_stats("tottime").print_stats(profile)
            print(f"profile of the tick (analytics={'on' if analytics else 'off'}, {n:,} posts, by own time):")
            print("\n".join(line for line in out.getvalue().splitlines() if line.strip()))
        calls = sum(ctx.x.calls.values())
        t = time.perf_counter()
        again = collect.tick(ctx)
        noop_s = time.perf_counter() - t
        stored = db.execute("SELECT count(*) AS n, count(DISTINCT follows_source) AS sources FROM outcomes")[0]
    assert result.status == "ok", result
    assert stored["n"] == result.detail["stored"] == 2 * n, (stored, result.detail)
    assert again.detail["stored"] == 0
    return {"posts": n, "analytics": analytics, "outcomes": result.detail["stored"], "tick_s": tick_s,
            "per_s": result.detail["stored"] / tick_s, "x_calls": calls, "calls_per_outcome": calls / result.detail["stored"],
            "noop_s": noop_s, "setup_s": setup_s}


def table(results: list[dict]) -> str:
    lines = [f"collect: one tick over N due posts (pass 1 + pass 2 each) — {machine()}", "",
             "| posts | follows from | outcomes upserted | tick (s) | outcomes/s | X calls | X calls/outcome | repeat tick (s) |",
             "|---:|---|---:|---:|---:|---:|---:|---:|"]
    for r in results:
        src = "analytics endpoint" if r["analytics"] else "snapshot attribution"
        lines.append(f"| {r['posts']:,} | {src} | {r['outcomes']:,} | {r['tick_s']:.2f} | {r['per_s']:,.0f} | "
                     f"{r['x_calls']} | {r['calls_per_outcome']:.4f} | {r['noop_s']:.2f} |")
    return "\n".join(lines)


_ROW = re.compile(r"^\| ([\d,]+) \| (analytics endpoint|snapshot attribution) \| ([\d,]+) \| ([\d.]+) \| ([\d,]+) \| "
                  r"(\d+) \| ([\d.]+) \| ([\d.]+) \|$")


def run_checkout(path: str, posts: int, analytics: bool, seed: int) -> dict:
    """This benchmark as another checkout runs it (its own code, its own bench script): its table row."""
    cmd = [sys.executable, os.path.join(path, "bench", "bench_collect.py"), "--posts", str(posts), "--seed", str(seed)]
    if not analytics:
        cmd.append("--no-analytics")
    env = {**os.environ, "PYTHONPATH": os.path.abspath(path)}
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
    rows = [m for line in done.stdout.splitlines() if (m := _ROW.match(line.strip()))]
    if done.returncode or not rows:
        raise SystemExit(f"--before {path}: the benchmark there failed (exit {done.returncode}): "
                         f"{(done.stderr or done.stdout)[-400:]}")
    m = rows[-1]
    outcomes = int(m.group(3).replace(",", ""))
    return {"posts": posts, "analytics": analytics, "outcomes": outcomes, "tick_s": float(m.group(4)),
            "per_s": outcomes / float(m.group(4)), "x_calls": int(m.group(6)),
            "calls_per_outcome": float(m.group(7)), "noop_s": float(m.group(8))}


def compare(before: str, posts: int, analytics: bool, seed: int, rounds: int) -> str:
    """Before (``before``'s checkout) and after (this one), alternating, ``rounds`` each: medians and load."""
    pairs, loads = [], []
    for _ in range(rounds):
        loads.append(os.getloadavg()[0])
        b = run_checkout(before, posts, analytics, seed)
        a = run_checkout(str(Path(__file__).resolve().parents[1]), posts, analytics, seed)
        pairs.append((b, a))
    loads.append(os.getloadavg()[0])
    med = lambda key, i: statistics.median(p[i][key] for p in pairs)  # noqa: E731
    src = "analytics endpoint" if analytics else "snapshot attribution"
    return "\n".join([
        f"collect before/after: {rounds} alternating rounds, medians — {machine()}, "
        f"load average (1 min) {min(loads):.1f}–{max(loads):.1f}", "",
        "| posts | follows from | before: tick (s) | outcomes/s | after: tick (s) | outcomes/s | X calls/outcome (after) |",
        "|---:|---|---:|---:|---:|---:|---:|",
        f"| {posts:,} | {src} | {med('tick_s', 0):.2f} | {med('per_s', 0):,.0f} | {med('tick_s', 1):.2f} | "
        f"{med('per_s', 1):,.0f} | {pairs[-1][1]['calls_per_outcome']:.4f} |",
        "", "rounds (before / after outcomes/s): " + ", ".join(f"{b['per_s']:,.0f} / {a['per_s']:,.0f}" for b, a in pairs)])


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--posts", type=at_least(1), default=10_000, help="due posts (each gets pass 1 and pass 2)")
    ap.add_argument("--no-analytics", action="store_true", help="only the follower-snapshot attribution path")
    ap.add_argument("--both", action="store_true", help="run with and without the analytics endpoint")
    ap.add_argument("--seed", type=at_least(0), default=0)
    ap.add_argument("--profile", type=at_least(0), default=0, metavar="N", help="print the tick's N costliest functions")
    ap.add_argument("--before", metavar="DIR", help="also run this benchmark from another checkout, alternating")
    ap.add_argument("--rounds", type=at_least(1), default=3, help="rounds of each with --before (medians)")
    args = ap.parse_args(argv)
    if args.posts < 1:
        ap.error(f"--posts must be at least 1, got {args.posts}")
    modes = [True, False] if args.both else [not args.no_analytics]
    if args.before:
        if not os.path.isfile(os.path.join(args.before, "bench", "bench_collect.py")):
            ap.error(f"--before {args.before}: no bench/bench_collect.py there (give a checkout, e.g. "
                     "`git worktree add /tmp/xbot-main main`)")
        if args.rounds < 1:
            ap.error(f"--rounds must be at least 1, got {args.rounds}")
        for m in modes:
            print(compare(args.before, args.posts, m, args.seed, args.rounds))
        return 0
    pg = TestPostgres()
    try:
        results = [run(args.posts, m, args.seed, pg, profile=args.profile) for m in modes]
    finally:
        pg.drop_all()
    print(table(results))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
