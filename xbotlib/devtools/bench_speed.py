"""`xbot bench speed`: simulated days per second of a campaign through the real jobs and database, where
the time goes (cProfile by area and the top functions), how often it went to PostgreSQL (counts that do not
depend on the machine's load), the CPU a simulated day costs and the resident set in each 30-day window of a run
over 30 days (does a day cost more, or the process hold more, as history grows?), and with ``memory`` the resident
memory per simulated day under tracemalloc, with what grew.

Size: over 400 lines because every figure comes from the same run's hooks (the daemons' progress, their profiles,
the server's /proc) and its one table; split, each part would need the run's internals.
"""
from __future__ import annotations

import cProfile
import importlib
import logging
import multiprocessing
import os
import pstats
import queue
import re
import resource
import tempfile
import time
import traceback
import tracemalloc
from pathlib import Path
from typing import Callable, Iterable

import numpy as np

from xbotlib.config import PROJECT_ROOT, load_settings
from xbotlib.devtools.machine import machine, server_cpu_s
from xbotlib.devtools.testing import TestPostgres
from xbotlib.jobs.campaign import CampaignConfig, run_campaign
from xbotlib.store import outcomes, runs
from xbotlib.store.db import Database

WINDOW_DAYS = 30   # the stretch of simulated days over which a long run's CPU per day and memory are reported

AREAS = (("xbotlib/jobs/plan", "plan job"), ("xbotlib/jobs/post", "post job"), ("xbotlib/jobs/collect", "collect job"),
         ("xbotlib/jobs/learn", "learn job"), ("xbotlib/sim", "sandbox X"), ("xbotlib/core", "learner core"),
         ("xbotlib/store", "store"), ("lightgbm", "LightGBM"), ("sklearn", "scikit-learn"), ("psycopg", "PostgreSQL driver"), ("httpx", "HTTP client"),
         ("starlette", "ASGI app"), ("asyncio", "ASGI transport loop"))


def _area(filename: str) -> str:
    return next((label for key, label in AREAS if key in filename.replace("\\", "/")), "other (python, numpy…)")


def top_functions(profile: pstats.Stats, n: int = 10, key: str = "tottime") -> list[dict]:
    """The profile's ``n`` heaviest functions by ``key`` ('tottime': self time, 'cumtime': with callees):
    ``{"function", "calls", "self_s", "cum_s"}``, heaviest first. The function is ``file:line(name)`` with the
    file shortened to its path inside a package (xbotlib/…, psycopg/…)."""
    rows = []
    for (filename, line, fn), (_cc, nc, tottime, cumtime, _callers) in profile.stats.items():  # type: ignore[attr-defined]
        path = filename.replace("\\", "/").replace(str(PROJECT_ROOT) + "/", "")
        path = re.sub(r".*/(site-packages|lib/python3\.\d+)/", "", path)
        rows.append({"function": f"{path}:{line}({fn})", "calls": nc, "self_s": tottime, "cum_s": cumtime})
    return sorted(rows, key=lambda r: -r["self_s" if key == "tottime" else "cum_s"])[:n]


def warm_process() -> float:
    """What any xbot process pays once, before its first post: twitter-text compiles its URL and emoji patterns
    when imported (``core.text`` imports it on first use, for the CLI's start-up). Seconds taken; 0 when done."""
    t0 = time.perf_counter()
    importlib.import_module("twitter_text")  # imported here: the start-up cost measured apart from the campaign
    return time.perf_counter() - t0


def speed(days: int = 14, seed: int = 0, accounts: int = 1, profile: bool = True, memory: bool = False,
          daemons: int = 1, progress: Callable[[float], None] | None = None) -> dict:
    """One demo-cadence campaign of ``days`` for ``accounts`` accounts (one database), under cProfile when
    ``profile``; ``memory`` samples the process's resident set size once per simulated day (the daemon's progress
    hook) and traces Python allocations (tracemalloc: slower, so off by default), with a snapshot diff between day
    30 (or the middle of a shorter run) and the end: what grew, by line.

    ``daemons`` > 1 splits the accounts over that many daemons, each in a process of its own on the same database
    (``CampaignConfig.serves``), as ``xbot run --workers N`` spreads accounts over worker processes: both cores work,
    each account stores what it stores under one daemon. Their profiles are merged; the wall time runs from the
    moment every daemon is ready to the moment the last one ends. ``progress(days_done)`` is told how far the
    campaign is (the slowest daemon's simulated days), for a progress bar.

    The process start-up (``warm_process``) is paid before the clock starts and reported as ``startup_s``:
    days/s is the campaign's own pace. ``cpu_s`` is the daemons' own CPU time in the campaign (PostgreSQL's own
    work runs in its server processes and is not in it): unlike the wall time it hardly moves with the load.
    ``server_cpu_s`` is PostgreSQL's, every process of the server, from the daemons' start to their end, when the
    server is this bench's alone (``TestPostgres.private_pgdata``: as root); else None."""
    check_daemons(daemons, accounts, memory)
    logging.getLogger("xbot").setLevel(logging.WARNING)
    pg = TestPostgres()
    try:
        url = pg.fresh_database()
        memory_res: dict = {}
        # the server's CPU over the daemons' lives (their start-up too, when the server idles), when it is ours alone
        server_cpu0 = server_cpu_s(pg.private_pgdata) if pg.private_pgdata else None
        if daemons == 1:
            startup = warm_process()
            profiler = cProfile.Profile() if profile else None
            with Database.from_url(url, pool_max=3) as db:
                one = _run_daemon(db, CampaignConfig(days=days, seed=seed, accounts=accounts), profiler,
                                  memory_res if memory else None, progress, server_pgdata=pg.private_pgdata)
            parts, stats = [one], (pstats.Stats(profiler) if profiler is not None else None)
        else:
            startup, parts, stats = _run_daemons(url, days, seed, accounts, daemons, profile, progress)
        server_cpu1 = server_cpu_s(pg.private_pgdata) if server_cpu0 is not None else None   # their pools closed
        wall = max(p["end"] for p in parts) - min(p["start"] for p in parts)
        with Database.from_url(url, pool_max=1) as db, db.connection() as conn:
            counts = {"posts": 0, "outcomes": 0, "ticks": 0}
            for account_id in [a for p in parts for a in p["account_ids"]]:
                stored = outcomes.account_data_counts(conn, account_id)
                counts["posts"] += stored["posts"]
                counts["outcomes"] += stored["outcomes_pass1"] + stored["outcomes_pass2"]
                counts["ticks"] += runs.count_job_runs(conn, account_id)
    finally:
        pg.drop_all()
    ticks: dict[str, int] = {}
    for p in parts:
        for key, n in p["ticks"].items():
            ticks[key] = ticks.get(key, 0) + n
    res = {"days": days, "accounts": accounts, "daemons": daemons, "wall": wall, "days_per_s": days / wall,
           "ticks": ticks, "startup_s": startup, "cpu_s": sum(p["cpu"] for p in parts), **counts,
           "server_cpu_s": None if server_cpu1 is None else server_cpu1 - server_cpu0,
           "cpu_windows": cpu_windows(p["cpu_marks"] for p in parts),
           "profiled": profile, "rss_by_day": [], "traced_by_day": [], "grown_lines": [], "grown_areas": [],
           "grown_since_day": None, "peak_rss_mib": peak_rss_mib(), "peak_traced_mib": None, **memory_res}
    if stats is None:
        return res
    by_area: dict[str, float] = {}
    total = 0.0
    for (filename, _line, _fn), (_cc, _nc, tottime, _ct, _callers) in stats.stats.items():  # type: ignore[attr-defined]
        total += tottime
        by_area[_area(filename)] = by_area.get(_area(filename), 0.0) + tottime
    return {**res, "areas": sorted(by_area.items(), key=lambda kv: -kv[1]), "profiled_total": total,
            "round_trips": round_trips(stats),
            "waiting": max(0.0, wall - total), "top_self": top_functions(stats, 12, "tottime"),
            "top_cumulative": top_functions(stats, 12, "cumtime")}


def check_daemons(daemons: int, accounts: int, memory: bool = False) -> int:
    """``daemons`` if it can serve ``accounts`` (1 to one per account; 1 with ``memory``, which samples one process);
    else a ValueError naming the value and the fix."""
    if isinstance(daemons, bool) or not isinstance(daemons, int) or not 1 <= daemons <= max(1, accounts):
        raise ValueError(f"--daemons must be a whole number from 1 to --accounts ({accounts}): each daemon process "
                         f"serves at least one account; got {daemons!r}")
    if memory and daemons > 1:
        raise ValueError("--memory samples one process's memory: run it with --daemons 1")
    return daemons


def _run_daemon(db: Database, config: CampaignConfig, profiler: cProfile.Profile | None,
                memory: dict | None = None, progress: Callable[[float], None] | None = None,
                server_pgdata: Path | None = None) -> dict:
    """Run one daemon's campaign on ``db``: its ``start``/``end`` (perf_counter, comparable across the processes of
    one machine), CPU seconds, job ticks and account ids; with ``memory`` (a dict) the memory figures go into it.
    ``cpu_marks``: (simulated day, this process's CPU seconds since the start, the server's CPU seconds or None, this
    process's resident set in MiB) at the start, every ``WINDOW_DAYS`` simulated days and at the end; the server's
    (one /proc pass each, a dozen a simulated year) when ``server_pgdata`` names the bench's own server."""
    rss_by_day: list[tuple[int, float]] = []
    cpu_marks: list[tuple[int, float, float | None, float]] = []
    traced_by_day: list[tuple[int, float]] = []
    snapshots: dict[str, tracemalloc.Snapshot] = {}
    snapshot_day = min(30, max(1, config.days // 2))
    if memory is not None:
        tracemalloc.start(1)

    def mark(day: int) -> None:
        cpu_marks.append((day, time.process_time() - cpu0,
                          server_cpu_s(server_pgdata, settle=False) if server_pgdata is not None else None,
                          rss_mib()))

    def on_progress(days_done: float) -> None:
        if progress is not None:
            progress(days_done)
        if int(days_done) % WINDOW_DAYS == 0 and int(days_done) > cpu_marks[-1][0]:
            mark(int(days_done))
        if memory is not None and int(days_done) > len(rss_by_day):
            rss_by_day.append((int(days_done), rss_mib()))
            traced_by_day.append((int(days_done), tracemalloc.get_traced_memory()[0] / 2**20))
            if int(days_done) == snapshot_day:
                snapshots["warm"] = tracemalloc.take_snapshot()

    cpu0 = time.process_time()
    mark(0)
    start = time.perf_counter()
    if profiler is not None:
        profiler.enable()
    run = run_campaign(config, load_settings(env={}), db, on_progress=on_progress)
    if profiler is not None:
        profiler.disable()
    end = time.perf_counter()
    if cpu_marks[-1][0] < config.days:
        mark(config.days)
    cpu = time.process_time() - cpu0
    if memory is not None:
        snapshots["end"] = tracemalloc.take_snapshot()
        both = "warm" in snapshots
        memory.update(rss_by_day=rss_by_day, traced_by_day=traced_by_day, grown_since_day=snapshot_day,
                      grown_lines=_grown_lines(snapshots["warm"], snapshots["end"]) if both else [],
                      grown_areas=grown_by_area(snapshots["warm"], snapshots["end"]) if both else [],
                      peak_traced_mib=tracemalloc.get_traced_memory()[1] / 2**20)
        tracemalloc.stop()
    return {"start": start, "end": end, "cpu": cpu, "ticks": dict(run.ticks), "account_ids": run.account_ids,
            "cpu_marks": cpu_marks}


def _run_daemons(url: str, days: int, seed: int, accounts: int, daemons: int, profile: bool,
                 progress: Callable[[float], None] | None = None) -> tuple[float, list[dict], pstats.Stats | None]:
    """The campaign's accounts split over ``daemons`` processes (contiguous shares, ``CampaignConfig.serves``), each
    warmed up and connected before a barrier releases them all at once. Returns the slowest start-up, each
    daemon's part (``_run_daemon``) and their merged profile (None without ``profile``)."""
    shares = [tuple(int(i) for i in share) for share in np.array_split(np.arange(accounts), daemons)]
    mp = multiprocessing.get_context("spawn")   # a fresh interpreter each: no pool or thread inherited by a fork
    # the daemons start together (a barrier among them) and report here; this process only watches: a daemon that
    # dies without a word (an import error, killed, out of memory) is noticed within half a second
    ready, results = mp.Barrier(daemons), mp.Queue()
    done = mp.Array("d", daemons, lock=False)   # each daemon's simulated days so far (one writer each)
    with tempfile.TemporaryDirectory(prefix="xbot-speed-") as tmp:
        paths = [os.path.join(tmp, f"daemon-{k}.prof") if profile else None for k in range(daemons)]
        procs = [mp.Process(target=_daemon_process, args=(url, days, seed, accounts, share, path, ready, results,
                                                                     done, k),
                            name=f"xbot-speed-daemon-{k}") for k, (share, path) in enumerate(zip(shares, paths))]
        for proc in procs:
            proc.start()
        parts: list[dict] = []
        while len(parts) < len(procs):
            try:
                kind, value = results.get(timeout=0.5)
            except queue.Empty:   # still running, unless one died without a word (killed, out of memory)
                if progress is not None:
                    progress(min(done))
                dead = [p for p in procs if p.exitcode not in (None, 0)]
                if not dead or not results.empty():
                    continue
                kind, value = "error", f"{dead[0].name} exited with code {dead[0].exitcode} and no report"
            if kind == "error":
                for proc in procs:
                    proc.terminate()
                raise RuntimeError(f"a daemon process failed:\n{value}")
            parts.append(value)
        for proc in procs:
            proc.join()
        stats = pstats.Stats(*paths) if profile else None
    return max(p["startup"] for p in parts), parts, stats


DAEMON_START_TIMEOUT_S = 300   # importing the stack and connecting: seconds, even on a loaded machine


def _daemon_process(url: str, days: int, seed: int, accounts: int, serves: tuple[int, ...], profile_path: str | None,
                    ready, results, done, k: int) -> None:
    """A ``_run_daemons`` process: warm up, connect, wait for the others, run its accounts, report."""
    try:
        logging.getLogger("xbot").setLevel(logging.WARNING)
        startup = warm_process()
        profiler = cProfile.Profile() if profile_path else None
        with Database.from_url(url, pool_max=3) as db:
            ready.wait(timeout=DAEMON_START_TIMEOUT_S)
            part = _run_daemon(db, CampaignConfig(days=days, seed=seed, accounts=accounts, serves=serves), profiler,
                               progress=lambda days_done: done.__setitem__(k, days_done))
        if profiler is not None:
            profiler.dump_stats(profile_path)
        results.put(("ok", {**part, "startup": startup}))
    except BaseException:   # the parent raises it, with this traceback; the barrier broken so no daemon waits for us
        ready.abort()
        results.put(("error", traceback.format_exc()))


def round_trips(profile: pstats.Stats) -> dict:
    """How often the profiled run went to PostgreSQL: ``statements`` (psycopg ``Cursor.execute`` and
    ``executemany`` calls), ``transactions`` (explicit BEGINs: each adds a BEGIN and a COMMIT round trip)
    and ``round_trips`` = statements + 2 × transactions. Counts, so they do not depend on the machine's load."""
    n = {"statements": 0, "transactions": 0}
    for (filename, _line, fn), (_cc, nc, _tt, _ct, _callers) in profile.stats.items():  # type: ignore[attr-defined]
        path = filename.replace("\\", "/")
        if path.endswith("psycopg/cursor.py") and fn in ("execute", "executemany"):
            n["statements"] += nc
        elif path.endswith("psycopg/_connection_base.py") and fn == "_get_tx_start_command":
            n["transactions"] += nc
    return {**n, "round_trips": n["statements"] + 2 * n["transactions"]}


def _grown_lines(before: tracemalloc.Snapshot, after: tracemalloc.Snapshot, n: int = 8) -> list[dict]:
    """The ``n`` source lines whose live allocations grew most between two snapshots: ``{"line", "kib",
    "blocks"}`` (the growth; the line shortened to its path inside a package)."""
    rows = []
    for stat in after.compare_to(before, "lineno")[: n * 4]:
        if stat.size_diff <= 0:
            continue
        frame = stat.traceback[0]
        path = frame.filename.replace("\\", "/").replace(str(PROJECT_ROOT) + "/", "")
        path = re.sub(r".*/(site-packages|lib/python3\.\d+)/", "", path)
        rows.append({"line": f"{path}:{frame.lineno}", "kib": stat.size_diff / 1024, "blocks": stat.count_diff})
    return sorted(rows, key=lambda r: -r["kib"])[:n]


def grown_by_area(before: tracemalloc.Snapshot, after: tracemalloc.Snapshot) -> list[tuple[str, float]]:
    """The live allocations' growth between two snapshots summed by area (``AREAS``: the sandbox X apart from
    the jobs and the libraries), KiB, largest growth first: whether what grows with history is the product's
    or the simulated X's (whose tweet store is X's data, kept by X in production, not by the daemon)."""
    by_area: dict[str, float] = {}
    for stat in after.compare_to(before, "filename"):
        area = _area(stat.traceback[0].filename)
        by_area[area] = by_area.get(area, 0.0) + stat.size_diff / 1024
    return sorted(by_area.items(), key=lambda kv: -kv[1])


def rss_mib() -> float:
    """This process's resident set size now, in MiB (Linux /proc; 0 where unavailable)."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20
    except (OSError, ValueError, IndexError):
        return 0.0


def peak_rss_mib() -> float:
    """This process's peak resident set size so far, in MiB (getrusage: KiB on Linux)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def memory_growth(by_day: list[tuple[int, float]], warm_up_days: int = 30,
                  until_day: int | None = None) -> float | None:
    """MiB per 100 simulated days after ``warm_up_days`` (and up to ``until_day``, when given; least squares slope
    of the samples), or None with fewer than two samples there: flat memory shows as a slope near 0."""
    pts = [(d, m) for d, m in by_day if d > warm_up_days and (until_day is None or d <= until_day)]
    if len(pts) < 2:
        return None
    x = np.array([d for d, _ in pts], float)
    y = np.array([m for _, m in pts], float)
    return float(np.polyfit(x, y, 1)[0] * 100)


def cpu_windows(marks_by_daemon: Iterable[list[tuple[int, float, float | None, float]]]) -> list[dict]:
    """CPU per simulated day in each stretch between two marks (``_run_daemon``'s ``cpu_marks``): ``from_day``,
    ``to_day``, ``campaign_ms`` (the daemons' CPU summed, ms a simulated day), ``server_ms`` (PostgreSQL's, or
    None where it was not read) and ``rss_mib`` (the daemons' resident sets summed at ``to_day``, untraced). Only
    the days every daemon marked count. A campaign whose work does not grow with its history shows the same
    figures window after window once the models' windows have filled."""
    by_daemon = [{day: (cpu, server, rss) for day, cpu, server, rss in marks} for marks in marks_by_daemon]
    if not by_daemon:
        return []
    days = sorted(set.intersection(*(set(m) for m in by_daemon)))
    windows = []
    for a, b in zip(days, days[1:]):
        campaign = sum(m[b][0] - m[a][0] for m in by_daemon)
        servers = [m[b][1] - m[a][1] for m in by_daemon if m[a][1] is not None and m[b][1] is not None]
        windows.append({"from_day": a, "to_day": b, "campaign_ms": campaign / (b - a) * 1000,
                        "server_ms": servers[0] / (b - a) * 1000 if len(servers) == 1 else None,
                        "rss_mib": sum(m[b][2] for m in by_daemon)})
    return windows


def speed_table(res: dict) -> str:
    daemons = res["daemons"]
    who = "one account" if res["accounts"] == 1 else f"{res['accounts']} accounts together"
    if daemons > 1:
        who += f" in {daemons} daemon processes (the accounts split between them, one database)"
    profiled = "under the profiler" if res["profiled"] else "without the profiler"
    whose = "The daemons'" if daemons > 1 else "This process's"
    lines = [f"campaign speed, {res['days']} simulated days, {who} — {machine()}", "",
             f"{res['wall']:.1f} s wall {profiled} = **{res['days_per_s']:.2f} simulated days/s**; "
             f"{res['ticks']} job ticks recorded, {res['posts']} posts, {res['outcomes']} outcomes.", "",
             f"{whose} CPU time in the campaign {res['cpu_s']:.1f} s (PostgreSQL's is in its own processes); "
             f"start-up before the clock started (twitter-text compiling its patterns, once per process): "
             f"{res['startup_s']:.2f} s."]
    if res.get("server_cpu_s") is not None:
        per_day = (res["cpu_s"] + res["server_cpu_s"]) / res["days"]
        cores = os.cpu_count() or 1
        lines += ["", f"PostgreSQL's server (its own, every process) used {res['server_cpu_s']:.1f} s of CPU meanwhile: "
                  f"with the daemons', **{per_day:.2f} s of CPU per simulated day**, so {cores} core(s) kept busy "
                  f"could run at most {cores / per_day:.2f} simulated days/s (CPU moves less with the host's load "
                  "than the wall time)."]
    elif "server_cpu_s" in res:
        lines += ["", "PostgreSQL's CPU: not measured (the bench's server is shared with other processes or is not on "
                  "this machine; as root the bench starts a server of its own and reads it from /proc)."]
    windows = res.get("cpu_windows") or []
    if len(windows) > 1:   # a run of two windows or more: does a simulated day cost more as history grows?
        has_server = all(w["server_ms"] is not None for w in windows)
        lines += ["", "| simulated days | the campaign's CPU, ms a simulated day |"
                  + (" PostgreSQL's, ms a simulated day |" if has_server else "")
                  + (" resident set at the end, MiB |" if daemons == 1 else
                     " daemons' resident sets at the end, MiB |"),
                  "| --- | ---: | ---: |" + (" ---: |" if has_server else "")]
        lines += [f"| {w['from_day'] + 1}–{w['to_day']} | {w['campaign_ms']:,.0f} |"
                  + (f" {w['server_ms']:,.0f} |" if has_server else "") + f" {w['rss_mib']:,.0f} |" for w in windows]
    if res["profiled"]:
        rt = res["round_trips"]
        lines += ["", f"PostgreSQL: {rt['statements']:,} statements in {rt['transactions']:,} explicit transactions = "
                  f"{rt['round_trips']:,} round trips, {rt['round_trips'] / res['days']:,.0f} per simulated day, "
                  f"{rt['round_trips'] / max(1, res['ticks']):.1f} per job tick (counts: they do not depend on the load).",
                  "", ("| where the time goes (self time) | seconds | share |" if daemons == 1 else
                       "| where the time goes (self time, the daemons summed) | seconds | share of daemons × wall |"),
                  "| --- | ---: | ---: |"]
        for area, t in res["areas"]:
            lines.append(f"| {area} | {t:.1f} | {t / (res['wall'] * daemons):.0%} |")
        for key, title in (("top_self", "self time"), ("top_cumulative", "cumulative time")):
            lines += ["", f"| top functions by {title} | calls | self s | cumulative s |", "| --- | ---: | ---: | ---: |"]
            lines += [f"| `{r['function']}` | {r['calls']:,} | {r['self_s']:.2f} | {r['cum_s']:.2f} |" for r in res[key]]
    if res["rss_by_day"]:
        samples = res["rss_by_day"]
        marks = sorted({d for d, _ in samples if d in (1, 7, 30, 60, 90, 180, 270) or d == samples[-1][0]})
        rss, traced = dict(samples), dict(res["traced_by_day"])
        lines += ["", "| after day | resident set (MiB) | Python heap traced (MiB) |", "| ---: | ---: | ---: |"]
        lines += [f"| {d} | {rss[d]:.0f} | {traced[d]:.1f} |" for d in marks]
        slope_rss, slope_traced = memory_growth(samples), memory_growth(res["traced_by_day"])
        lines += ["", f"Peak resident set {res['peak_rss_mib']:.0f} MiB, peak traced Python heap "
                  f"{res['peak_traced_mib']:.0f} MiB; after a 30-day warm-up the resident set grows "
                  + (f"{slope_rss:+.1f} MiB and the traced heap {slope_traced:+.1f} MiB per 100 simulated days."
                     if slope_rss is not None else "— (run longer than 31 days to measure it).")]
        if res.get("grown_areas"):
            span = max(1, samples[-1][0] - res["grown_since_day"])
            lines += ["", f"| grew between day {res['grown_since_day']} and the end (tracemalloc, by area) | KiB | "
                      "KiB per 100 days |", "| --- | ---: | ---: |"]
            lines += [f"| {area} | {kib:+,.0f} | {kib / span * 100:+,.0f} |" for area, kib in res["grown_areas"]]
        if res["grown_lines"]:
            lines += ["", f"| grew between day {res['grown_since_day']} and the end (tracemalloc, by line) | KiB | blocks |",
                      "| --- | ---: | ---: |"]
            lines += [f"| `{r['line']}` | {r['kib']:+,.0f} | {r['blocks']:+,} |" for r in res["grown_lines"]]
    return "\n".join(lines)
