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
