"""The machine line every benchmark table carries (``xbot bench``, bench/*.py), and the host's speed at the time.

The machines these benches run on are shared virtual machines: the same code on the same "2 cores" has taken
1.35–1.8× the CPU from one hour to the next (BENCHMARKS.md, issue #19's fifth pass), which no CPU model or
load average shows. ``host_reference`` times a fixed workload beside a bench, so figures from different days
can be read against the host's speed at the time."""
from __future__ import annotations

import os
import platform
import time
from datetime import date
from pathlib import Path

from xbotlib.store.db import postmaster_pid

REFERENCE_ROWS = 60_000  # the reference workload's size: ~0.2 s of CPU on machine B (BENCHMARKS.md), 2026-12-03


def machine() -> str:
    """CPU model, cores, Python version and today's date: the line every benchmark table carries."""
    cpu = platform.processor() or ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{cpu or platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, {date.today()}"


def reference_workload(rows: int = REFERENCE_ROWS) -> int:
    """What the campaigns spend most of their interpreter time on — small dicts built, formatted, sorted and
    summed — in a fixed amount; returns a checksum (the same on every host) so the work cannot be skipped."""
    table = [{"id": i, "name": f"post-{i:06d}", "score": (i * 7919) % 1000} for i in range(rows)]
    table.sort(key=lambda r: (r["score"], r["name"]))
    return sum(r["id"] % 97 for r in table[::7]) + sum(len(r["name"]) for r in table)


def host_reference(rounds: int = 3) -> float:
    """Seconds of this process's CPU that ``reference_workload`` takes now: the best of ``rounds`` (the least
    disturbed). A slower or more contended host shows a larger figure for the same work."""
    if rounds < 1:
        raise ValueError(f"host_reference: rounds must be at least 1, got {rounds}")
    best = float("inf")
    for _ in range(rounds):
        start = time.process_time()
        reference_workload()
        best = min(best, time.process_time() - start)
    return best


def host_line(seconds: float | None = None) -> str:
    """The line a bench prints beside its figures: the host reference now (measured unless given)."""
    seconds = host_reference() if seconds is None else seconds
    return (f"Host reference: {seconds * 1000:.0f} ms of CPU for a fixed Python workload (devtools/machine."
            "reference_workload, best of 3) — the same code takes more CPU on a slower or busier host; compare "
            "figures from different days against it.")


def server_cpu_s(pgdata: Path, settle: bool = True) -> float | None:
    """CPU seconds (user + system) that the PostgreSQL server of the data directory ``pgdata`` has used so far, in all
    its processes: the postmaster's own, its living children's (backends, writers, autovacuum) and its exited
    children's (a closed connection's backend, reaped by the postmaster). From /proc, so only for a server running
    on this machine; None where there is no such server or no /proc. Read until two readings 50 ms apart agree
    (at most a second), so a backend that exits while it is read is counted once — for an idle server; a busy one
    never agrees, so a reading in the middle of its work is one pass (``settle=False``: no wait)."""
    pid = postmaster_pid(pgdata)
    if pid is None:
        return None
    last = _process_tree_ticks(pid)
    for _ in range(19 if settle else 0):
        if last is None:
            break
        time.sleep(0.05)
        ticks = _process_tree_ticks(pid)
        if ticks == last:
            break
        last = ticks
    return None if last is None else last / os.sysconf("SC_CLK_TCK")


def _process_tree_ticks(pid: int) -> int | None:
    """Clock ticks of CPU of process ``pid``, of its children and of its reaped children (None: no such process)."""
    own = _proc_stat(str(pid))
    if own is None:
        return None
    total = _ticks(own)
    with os.scandir("/proc") as entries:
        for entry in entries:
            if entry.name.isdigit() and entry.name != str(pid):
                fields = _proc_stat(entry.name)
                if fields is not None and fields[1] == str(pid):
                    total += _ticks(fields)
    return total


def _proc_stat(pid: str) -> list[str] | None:
    """/proc/PID/stat's fields after the command name (state, ppid, …), or None when the process is gone."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None


def _ticks(fields: list[str]) -> int:
    """utime + stime + cutime + cstime (stat fields 14–17)."""
    return sum(int(x) for x in fields[11:15])
