"""The one clock: SystemClock is UTC and tz-aware; SimClock moves only forward and only when told."""
from __future__ import annotations

import threading
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest

from xbotlib.clock import SimClock, SystemClock

START = datetime(2026, 3, 2, 8, 0, tzinfo=timezone.utc)


def test_system_clock_is_timezone_aware_utc():
    now = SystemClock().now()
    assert now.tzinfo is not None and now.utcoffset() == timedelta(0)


def test_system_clock_readings_do_not_decrease():
    clock = SystemClock()
    readings = [clock.now() for _ in range(1000)]
    assert readings == sorted(readings)


def test_sim_clock_stands_still_until_told():
    clock = SimClock(START)
    assert clock.now() == clock.now() == START


def test_sim_clock_default_start_is_aware():
    now = SimClock().now()
    assert now.tzinfo is not None and now.utcoffset() == timedelta(0)


def test_sim_clock_start_in_another_zone_is_stored_as_utc():
    clock = SimClock(datetime(2026, 3, 2, 9, 0, tzinfo=ZoneInfo("Europe/Berlin")))
    assert clock.now() == START and clock.now().tzinfo == timezone.utc


def test_sim_clock_refuses_a_naive_start():
    with pytest.raises(ValueError, match=r"must be timezone-aware: datetime\.datetime\(2026, 3, 2, 8, 0\)"):
        SimClock(datetime(2026, 3, 2, 8, 0))


def test_advance_by_timedelta_or_seconds():
    clock = SimClock(START)
    assert clock.advance(timedelta(hours=1)) == START + timedelta(hours=1)
    assert clock.advance(90) == START + timedelta(hours=1, seconds=90)
    assert clock.advance(0.5) == START + timedelta(hours=1, seconds=90.5)
    assert clock.advance(0) == clock.now()


@pytest.mark.parametrize("delta", [timedelta(seconds=-1), -0.001, -3600])
def test_advance_never_goes_backwards(delta):
    clock = SimClock(START)
    with pytest.raises(ValueError, match="cannot go backwards"):
        clock.advance(delta)
    assert clock.now() == START


def test_set_jumps_forward_only():
    clock = SimClock(START)
    later = START + timedelta(days=60)
    assert clock.set(later) == later
    assert clock.set(later) == later  # standing still is allowed
    with pytest.raises(ValueError, match=r"cannot go backwards: 2026-03-02T08:00:00\+00:00 < 2026-05-01"):
        clock.set(START)
    assert clock.now() == later
    assert clock.set(later.astimezone(ZoneInfo("Asia/Tokyo")) + timedelta(hours=1)).tzinfo == timezone.utc


def test_sim_clock_is_thread_safe():
    clock = SimClock(START)
    n_threads, steps = 8, 500

    def tick():
        for _ in range(steps):
            clock.advance(1)

    threads = [threading.Thread(target=tick) for _ in range(n_threads)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert clock.now() == START + timedelta(seconds=n_threads * steps)
