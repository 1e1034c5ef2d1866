"""Many accounts served by worker processes on the PostgreSQL job queue, as if on two machines.

    python bench/bench_workers.py [--accounts 100] [--duration 600] [--scale 20] [--chaos] [--llm-delay 30]

Setup: a PostgreSQL of its own (so ``--chaos`` may restart it), ``--accounts`` accounts with mixed profiles
(``--profiles``, cycled over the accounts: by default the built-in niche and the cooking account, each copy
with its own id, handle and one of six time zones), one ``xbot sandbox`` served over HTTP, and two "machines":
``xbot run --workers 2`` and ``xbot worker --workers 2``, each in its own process group with its own
XBOT_HOME, all on the same XBOT_DATABASE_URL and X_SANDBOX_URL. Both machines run a deferrer (each
occurrence is queued once however many run).

Time: the schedules of ``schedules/jobs.toml`` and the T+1h / T+24h windows stay as they are; every
process (the workers, both deferrers, the sandbox) reads one ``ScaledClock`` running ``--scale`` times
faster than real time from a shared origin (20: ``post`` every 15 s, ``collect`` every 45 s, ``plan``
every 3 min, a post's T+1h outcome due 3 real minutes after it went out; 10 minutes are 3.3 clock hours).
Shortening the periods instead would leave the 1-hour collection window out of the run. 100 accounts at
×20 ask for ~9 ticks a second; at ×60, ~28.

``--chaos``: SIGKILLs a random worker process every 15-40 s (its supervisor restarts it) and restarts
PostgreSQL once, halfway. ``--llm-delay S``: the plan job's LLM is the fake OpenAI server answering
each completion after S seconds (OPENAI_TIMEOUT_S raised above it so answers arrive).

Reported (all times in real seconds): posts sent exactly once (the database's posted_decisions against the
sandbox's own timeline, read over HTTP: 0 duplicates, 0 lost), due posts never sent, collection lateness
p50/p99 (collected_at − (posted_at + 1 h)), tick lateness per queue (start − schedule occurrence), ticks
per second, missed/failed runs, overlapping ticks of one job for one account (from job_runs intervals),
worker restarts and the time to the first good tick after the PostgreSQL restart. Prints a Markdown
block for BENCHMARKS.md.
"""
from __future__ import annotations

import argparse
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import dataclasses

import httpx
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from xbotlib.app.cli.options import at_least  # noqa: E402
from xbotlib.clock import ScaledClock  # noqa: E402
from xbotlib.devtools.bench import machine  # noqa: E402
from xbotlib.devtools.fake_openai import FakeOpenAI  # noqa: E402
from xbotlib.devtools.pgcontrol import RestartablePostgres  # noqa: E402
from xbotlib.core.profile import load_profile  # noqa: E402
from xbotlib.store import accounts, queue_report, runs  # noqa: E402
from xbotlib.store.db import Database  # noqa: E402

TIMEZONES = ("UTC", "Europe/Berlin", "America/New_York", "Asia/Tokyo", "America/Sao_Paulo", "Australia/Sydney")
XBOT = [sys.executable, "-m", "xbotlib.app.cli.main"]


def pct(values, q) -> str:
    return f"{np.percentile(values, q):.1f}" if len(values) else "–"


def start_sandbox(scale: float, origin: str, seed: int, log_path: Path) -> tuple[subprocess.Popen, str]:
    proc = subprocess.Popen([*XBOT, "sandbox", "--port", "0", "--seed", str(seed), "--clock-scale", str(scale),
                             "--clock-origin", origin], cwd=ROOT, stdout=subprocess.PIPE, stderr=log_path.open("w"),
                            text=True, start_new_session=True)
    for line in proc.stdout:
        if line.startswith("base URL:"):
            return proc, line.split()[-1]
    raise RuntimeError(f"the sandbox did not start (see {log_path})")


def sandbox_timeline(url: str) -> list[dict]:
    """Every tweet of the sandbox account, newest first, over HTTP (GET /2/users/:id/tweets, paginated)."""
    headers = {"Authorization": "Bearer sandbox-token"}
    with httpx.Client(base_url=url, headers=headers, timeout=30) as http:
        me = http.get("/2/users/me").json()["data"]["id"]
        out, token = [], None
        while True:
            params = {"max_results": 100, **({"pagination_token": token} if token else {})}
            body = http.get(f"/2/users/{me}/tweets", params=params).json()
            out += body.get("data", [])
            token = body.get("meta", {}).get("next_token")
            if not token:
                return out


def child_pids(pid: int) -> list[int]:
    """The processes whose parent is ``pid`` (the worker processes of a supervisor)."""
    out = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            out.append(int(stat.parent.name))
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--accounts", type=at_least(1), default=100)
    ap.add_argument("--duration", type=float, default=600, help="real seconds of serving (default 600)")
    ap.add_argument("--scale", type=float, default=20, help="clock seconds per real second (default 20)")
    ap.add_argument("--workers-per-machine", type=at_least(1), default=2)
    ap.add_argument("--chaos", action="store_true", help="SIGKILL workers at random and restart PostgreSQL once")
    ap.add_argument("--llm-delay", type=float, default=None, help="the LLM answers after this many seconds")
    ap.add_argument("--seed", type=at_least(0), default=0)
    ap.add_argument("--profiles", default="accounts/default.toml,accounts/cooking.toml",
                    help="profile files cycled over the accounts (default: the built-in niche and the cooking one)")
    ap.add_argument("--keep", action="store_true", help="print where the logs are and keep them")
    args = ap.parse_args()
    rng = random.Random(args.seed)
    profiles = [load_profile(ROOT / f) for f in args.profiles.split(",") if f]  # an absolute path stays itself
    if not profiles:
        raise SystemExit("--profiles: give at least one profile file, e.g. accounts/cooking.toml")
    work = Path(tempfile.mkdtemp(prefix="xbot-bench-workers-"))
    started_wall = datetime.now(timezone.utc)

    print(f"[bench] PostgreSQL, {args.accounts} accounts, sandbox; logs in {work}", file=sys.stderr)
    pg = RestartablePostgres()
    origin = datetime.now(timezone.utc).replace(microsecond=0)
    clock = ScaledClock(args.scale, origin)
    origin_s = origin.isoformat()
    with Database.from_url(pg.url, pool_max=4) as db, db.connection() as conn:
        for i in range(args.accounts):
            base = profiles[i % len(profiles)]
            accounts.save_profile(conn, dataclasses.replace(base, id=f"acct{i:03d}", handle=f"bench_{i:03d}",
                                                            timezone=TIMEZONES[i % len(TIMEZONES)]), clock.now())
    sandbox, sandbox_url = start_sandbox(args.scale, origin_s, args.seed, work / "sandbox.log")

    fake = None
    env = {**os.environ, "XBOT_DATABASE_URL": pg.url, "X_SANDBOX_URL": sandbox_url, "X_ACCESS_TOKEN": "sandbox-token",
           "POSTING_DISABLED": "false", "LIVE_POSTS": "false", "PYTHONPATH": str(ROOT)}
    env.pop("OPENAI_API_KEY", None)
    if args.llm_delay is not None:
        fake = FakeOpenAI(delay_s=args.llm_delay)
        env.update(OPENAI_API_KEY="sk-bench", OPENAI_BASE_URL=fake.start(),
                   OPENAI_TIMEOUT_S=str(max(30.0, args.llm_delay * 2 + 10)))
    clock_args = ["--no-notebooks", "--clock-scale", str(args.scale), "--clock-origin", origin_s]
    machines = {}
    for name, command in (("A", "run"), ("B", "worker")):
        home = work / f"machine-{name}"
        home.mkdir()
        err = (work / f"machine-{name}.log").open("w")
        machines[name] = (subprocess.Popen([*XBOT, command, "--workers", str(args.workers_per_machine), *clock_args],
                                           cwd=ROOT, env={**env, "XBOT_HOME": str(home)}, stdout=err, stderr=err,
                                           start_new_session=True), err)

    # the measured window opens when every worker process serves its queues (imports take a while)
    ready_by = time.monotonic() + 300
    while sum((work / f"machine-{n}.log").read_text(errors="replace").count("[WORKER] started") for n in machines) \
            < 2 * args.workers_per_machine:
        if time.monotonic() > ready_by:
            raise SystemExit(f"the worker processes did not start within 300 s; see {work}")
        time.sleep(0.5)
    window_start = clock.now()
    print(f"[bench] workers ready after {(window_start - origin).total_seconds() / args.scale:.0f} s; "
          f"measuring {args.duration:g} s", file=sys.stderr)

    kills, restart_at = 0, None
    t0 = time.monotonic()
    next_kill = t0 + rng.uniform(15, 40)
    restart_due = t0 + args.duration / 2
    while time.monotonic() - t0 < args.duration:
        time.sleep(0.5)
        for name, (proc, _) in machines.items():
            if proc.poll() is not None:
                raise SystemExit(f"machine {name}'s supervisor exited early (rc {proc.returncode}); "
                                 f"see {work}/machine-{name}.log")
        if args.chaos and time.monotonic() >= next_kill:
            pids = [p for proc, _ in machines.values() for p in child_pids(proc.pid)]
            if pids:
                victim = rng.choice(pids)
                os.kill(victim, signal.SIGKILL)
                kills += 1
                print(f"[bench] SIGKILL worker pid {victim} at {time.monotonic() - t0:.0f}s", file=sys.stderr)
            next_kill = time.monotonic() + rng.uniform(15, 40)
        if args.chaos and restart_at is None and time.monotonic() >= restart_due:
            print(f"[bench] restarting PostgreSQL at {time.monotonic() - t0:.0f}s", file=sys.stderr)
            pg.restart()
            restart_at = clock.now()
    end_clock = clock.now()
    elapsed = time.monotonic() - t0

    print("[bench] SIGTERM to both machines; waiting for running ticks", file=sys.stderr)
    for proc, _ in machines.values():
        proc.send_signal(signal.SIGTERM)
    clean = True
    for name, (proc, err) in machines.items():
        try:
            rc = proc.wait(timeout=180)
        except subprocess.TimeoutExpired:
            proc.kill()
            rc = "killed after 180 s"
        err.close()
        text = (work / f"machine-{name}.log").read_text(errors="replace")
        if rc != 0 or "Traceback" in text:
            clean = False
            print(f"[bench] machine {name}: rc={rc}, traceback={'Traceback' in text}", file=sys.stderr)
    if fake:
        fake.stop()

    tweets = sandbox_timeline(sandbox_url)
    sandbox.send_signal(signal.SIGTERM)
    sandbox.wait(timeout=30)

    with Database.from_url(pg.url, pool_max=2) as db, db.connection() as conn:
        posted = queue_report.posted_tweets(conn)
        statuses = queue_report.decision_status_counts(conn)
        failed_why = queue_report.failed_decisions_by_reason(conn)
        # a post due more than a post period (5 clock minutes) plus a margin before the end must have been sent
        unsent = queue_report.due_unsent(conn, end_clock - timedelta(minutes=10))
        late = {job: queue_report.tick_lateness_s(conn, job, window_start) for job in ("plan", "post", "collect", "learn")}
        coll1 = queue_report.collection_lateness_s(conn, 1, 3600)
        counts = queue_report.job_run_counts(conn, window_start)
        overlaps = {job: runs.overlapping_runs(conn, job) for job in ("plan", "post", "collect", "learn")}
        topics = queue_report.posted_topics_by_profile(conn)
        back_after = None
        if restart_at is not None:
            first = queue_report.first_tick_after(conn, restart_at)
            back_after = (first - restart_at).total_seconds() / args.scale if first else None

    db_ids = [p["tweet_id"] for p in posted]
    x_ids = [t["id"] for t in tweets]
    # a post sent twice leaves a tweet the database does not know (or the same id twice)
    duplicates = (len(x_ids) - len(set(x_ids))) + len(set(x_ids) - set(db_ids))
    lost = len(set(db_ids) - set(x_ids))
    real = (lambda xs: [x / args.scale for x in xs])
    ticks_done = sum(c["runs"] for c in counts if c["status"] in ("ok", "skipped", "failed"))
    by = {(c["job"], c["status"]): c["runs"] for c in counts}
    mode = ("chaos" if args.chaos else "steady") + (f", LLM +{args.llm_delay:.0f}s" if args.llm_delay else "")

    m = machine()
    print(f"\n### Workers on the job queue ({mode}): {args.accounts} accounts, 2 machines × "
          f"{args.workers_per_machine} worker processes, {elapsed:.0f} s\n")
    print(f"{m} · {started_wall:%Y-%m-%d %H:%M} UTC · clock ×{args.scale:g} "
          f"({elapsed * args.scale / 3600:.1f} clock hours) · `python bench/bench_workers.py --accounts {args.accounts} "
          f"--duration {args.duration:g}{' --chaos' if args.chaos else ''}"
          f"{f' --llm-delay {args.llm_delay:g}' if args.llm_delay is not None else ''}`\n")
    print("| measure | value |")
    print("|---|---|")
    print(f"| posts sent (database / sandbox timeline) | {len(db_ids)} / {len(x_ids)} |")
    print(f"| duplicate posts · lost posts | {duplicates} · {lost} |")
    print(f"| due posts never sent (due > 10 clock min before the end) | {len(unsent)} |")
    print(f"| decisions by status | {', '.join(f'{k} {v}' for k, v in sorted(statuses.items()))} |")
    if failed_why:
        # the accounts share one sandbox user, and X refuses a text that user already posted
        print(f"| failed decisions, why | {'; '.join(f'{v}× {k}' for k, v in failed_why.items())} |")
    print(f"| collection lateness T+1h, p50 / p99 (real s; collect runs every 15 clock min = {900 / args.scale:.0f} s) "
          f"| {pct(real(coll1), 50)} / {pct(real(coll1), 99)} (n={len(coll1)}) |")
    for job in ("post", "collect", "plan"):
        print(f"| {job} tick lateness p50 / p99 (real s, start − schedule) | {pct(real(late[job]), 50)} / "
              f"{pct(real(late[job]), 99)} (n={len(late[job])}) |")
    for name in sorted({t["profile"] for t in topics}):
        counts_by_topic = ", ".join(f"{t['topic']} {t['n']}" for t in topics if t["profile"] == name)
        print(f"| posts by topic, profile {Path(name).name} | {counts_by_topic} |")
    print(f"| ticks per second (all queues) | {ticks_done / elapsed:.1f} |")
    missed_failed = " · ".join(f"{by.get((j, 'missed'), 0)}/{by.get((j, 'failed'), 0)}" for j in ("post", "collect", "plan"))
    print(f"| missed / failed runs (post · collect · plan) | {missed_failed} |")
    print(f"| overlapping ticks of one job for one account | "
          f"{', '.join(f'{j} {len(v)}' for j, v in overlaps.items())} |")
    if args.chaos:
        print(f"| workers SIGKILLed (and restarted) | {kills} |")
        print(f"| first good tick after the PostgreSQL restart | "
              f"{'%.1f s' % back_after if back_after is not None else 'none'} |")
    print(f"| clean shutdown on SIGTERM (rc 0, no traceback) | {'yes' if clean else 'NO'} |")
    if unsent:
        print(f"\nunsent examples: {json.dumps(unsent[:3], default=str)}", file=sys.stderr)
    ok = duplicates == 0 and lost == 0 and not any(overlaps.values()) and clean
    print(f"\n[bench] logs kept in {work}" if args.keep else "", file=sys.stderr)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
