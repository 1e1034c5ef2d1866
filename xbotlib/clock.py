"""One clock for every job: ``SystemClock`` in production, ``SimClock`` for campaigns and tests.

Nothing in xbot calls ``datetime.now()`` on its own; it asks the clock it was given, so a
60-day simulated campaign runs in minutes and every test controls time.
"""
from __future__ import annotations

import math
import threading
from datetime import datetime, timedelta, timezone
from typing import Protocol


class Clock(Protocol):
    def now(self) -> datetime:
        """The current time, timezone-aware (UTC)."""
        ...


class SystemClock:
    """Wall-clock time in UTC."""

    def now(self) -> datetime:
        return datetime.now(timezone.utc)


class SimClock:
    """A clock that moves only when told to. Thread-safe; never goes backwards."""

    def __init__(self, start: datetime | None = None):
        start = start or datetime(2026, 1, 5, 0, 0, tzinfo=timezone.utc)
        if start.tzinfo is None:
            raise ValueError(f"SimClock start must be timezone-aware: {start!r} (pass tzinfo=timezone.utc)")
        self._now = start.astimezone(timezone.utc)
        self._lock = threading.Lock()

    def now(self) -> datetime:
        with self._lock:
            return self._now

    def advance(self, delta: timedelta | float) -> datetime:
        """Move forward by a timedelta or a number of seconds; returns the new time."""
        if not isinstance(delta, timedelta):
            delta = timedelta(seconds=float(delta))
        if delta < timedelta(0):
            raise ValueError(f"SimClock cannot go backwards: advance({delta!r})")
        with self._lock:
            self._now += delta
            return self._now

    def set(self, when: datetime) -> datetime:
        """Jump forward to ``when`` (must not be earlier than now)."""
        if when.tzinfo is None:
            raise ValueError(f"SimClock.set needs a timezone-aware time: {when!r} (pass tzinfo=timezone.utc)")
        with self._lock:
            when = when.astimezone(timezone.utc)
            if when < self._now:
                raise ValueError(f"SimClock cannot go backwards: {when.isoformat()} < {self._now.isoformat()}")
            self._now = when
            return self._now


class ScaledClock:
    """Wall-clock time run ``scale`` times faster from ``origin``: at real time origin + s it reads
    origin + scale·s. Benches of the real-time path (``bench/bench_workers.py``) use it so that hourly
    schedules and T+1h collection windows pass in minutes while every process — workers on two
    machines, the deferrer — still agrees on the time: they share ``origin`` and ``scale``."""

    def __init__(self, scale: float, origin: datetime):
        if not (scale > 0 and math.isfinite(scale)):  # an infinite scale overflows the first now()
            raise ValueError(f"ScaledClock scale must be a positive finite number, got {scale!r} "
                             "(e.g. 60: an hour a minute)")
        if origin.tzinfo is None:
            raise ValueError(f"ScaledClock origin must be timezone-aware: {origin!r} (pass tzinfo=timezone.utc)")
        self.scale, self.origin = float(scale), origin.astimezone(timezone.utc)

    def now(self) -> datetime:
        return self.origin + (datetime.now(timezone.utc) - self.origin) * self.scale

    def real_seconds(self, clock_seconds: float) -> float:
        """How long ``clock_seconds`` of this clock's time take in real time."""
        return clock_seconds / self.scale
