"""`xbot bench speed`'s accounting: round trips counted from the profile, top functions, memory growth."""
from __future__ import annotations

import cProfile
import os
import pstats

import psycopg
import pytest

from xbotlib.devtools import machine
from xbotlib.devtools.bench_speed import memory_growth, round_trips, top_functions
from xbotlib.devtools.testing import TestPostgres


def _profiled(fn) -> pstats.Stats:
    profiler = cProfile.Profile()
    profiler.enable()
    try:
        fn()
    finally:
        profiler.disable()
    return pstats.Stats(profiler)


def test_a_transaction_costs_two_more_round_trips_than_autocommit(db):
    def in_transaction():
        with db.connection() as conn:
            conn.execute("SELECT 1")
            conn.execute("SELECT 2")

    def autocommit():
        with db.autocommit() as conn:
            conn.execute("SELECT 1")
            conn.execute("SELECT 2")

    assert round_trips(_profiled(in_transaction)) == {"statements": 2, "transactions": 1, "round_trips": 4}
    assert round_trips(_profiled(autocommit)) == {"statements": 2, "transactions": 0, "round_trips": 2}
    # the pool lends the connection out again as an ordinary transactional one
    with db.connection() as conn:
        assert conn.autocommit is False


def test_autocommit_statements_are_committed_one_by_one(db):
    db.execute("CREATE TABLE IF NOT EXISTS bench_probe (x int)")
    with pytest.raises(RuntimeError):
        with db.autocommit() as conn:
            conn.execute("INSERT INTO bench_probe VALUES (1)")
            raise RuntimeError("after the first statement")
    assert db.execute("SELECT count(*) AS n FROM bench_probe")[0]["n"] == 1  # no transaction to roll back


def test_top_functions_are_sorted_and_named_by_package_path(db):
    stats = _profiled(lambda: [db.execute("SELECT 1") for _ in range(3)])
    by_self = top_functions(stats, 5, "tottime")
    by_cum = top_functions(stats, 5, "cumtime")
    assert [r["self_s"] for r in by_self] == sorted((r["self_s"] for r in by_self), reverse=True)
    assert [r["cum_s"] for r in by_cum] == sorted((r["cum_s"] for r in by_cum), reverse=True)
    assert any(r["function"].startswith("xbotlib/store/db.py:") and r["calls"] == 3 for r in top_functions(stats, 500))
    assert not any("site-packages" in r["function"] for r in top_functions(stats, 500))


@pytest.mark.parametrize("samples, expected", [
    ([(d, 250.0) for d in range(1, 91)], 0.0),                  # flat
    ([(d, 200.0 + d) for d in range(1, 91)], 100.0),            # 1 MiB a day after warm-up
    ([(d, 300.0 - 2 * min(d, 30)) for d in range(1, 91)], 0.0),  # warm-up changes do not count
    ([(d, 250.0) for d in range(1, 31)], None),                 # nothing after the warm-up
])
def test_memory_growth_per_100_days_after_warm_up(samples, expected):
    got = memory_growth(samples)
    assert got == (None if expected is None else pytest.approx(expected, abs=1e-6))


def test_memory_growth_in_a_window_of_days():
    levelling = [(d, 250.0 + min(d, 120) / 10) for d in range(1, 366)]   # grows until day 120, then flat
    assert memory_growth(levelling, 30, 120) == pytest.approx(10.0)
    assert memory_growth(levelling, 120) == pytest.approx(0.0, abs=1e-9)
    assert memory_growth(levelling, 120, 121) is None


def test_the_snapshot_diff_names_the_line_that_kept_allocating():
    import tracemalloc  # imported here: only this test traces allocations

    from xbotlib.devtools.bench_speed import _grown_lines  # imported here: a helper of the memory report

    kept: list = []
    tracemalloc.start(1)
    try:
        before = tracemalloc.take_snapshot()
        for i in range(2000):
            kept.append(bytearray(256))  # the line that grows
        after = tracemalloc.take_snapshot()
    finally:
        tracemalloc.stop()
    top = _grown_lines(before, after, n=3)
    assert top[0]["line"].startswith("tests/devtools/test_bench_speed.py:") and top[0]["kib"] >= 2000 * 256 / 1024
    assert top[0]["blocks"] >= 2000 and [r["kib"] for r in top] == sorted((r["kib"] for r in top), reverse=True)


def test_the_growth_by_area_puts_the_sandboxs_allocations_apart_from_the_rest():
    import tracemalloc  # imported here: only these tests trace allocations

    from xbotlib.devtools.bench_speed import grown_by_area  # imported here: a helper of the memory report
    from xbotlib.sim.scenario import load_scenario  # imported here: a sandbox function that allocates what it returns

    kept: list = []
    tracemalloc.start(1)
    try:
        before = tracemalloc.take_snapshot()
        kept.extend(load_scenario("evening_contrarian") for _ in range(20))
        kept.append(bytearray(300_000))
        after = tracemalloc.take_snapshot()
    finally:
        tracemalloc.stop()
    areas = grown_by_area(before, after)
    by_name = dict(areas)
    assert by_name["sandbox X"] > 10 and by_name["other (python, numpy…)"] >= 290   # the bytearray is the test's
    assert [kib for _, kib in areas] == sorted((kib for _, kib in areas), reverse=True)


@pytest.mark.parametrize("name,own,others", [("speed", "simulated days per second", ("RMSE", "paired by seed")),
                                             ("lift", "RMSE", ("simulated days per second", "paired by seed")),
                                             ("growth", "paired by seed", ("RMSE", "simulated days per second"))])
def test_each_bench_help_describes_that_bench_only(name, own, others, capsys):
    from xbotlib.devtools import bench  # imported here: the CLI module, only for its --help

    with pytest.raises(SystemExit) as stop:
        bench.main(name, ["--help"])
    out = " ".join(capsys.readouterr().out.split())
    assert stop.value.code == 0 and f"{name}: " in out and own in out
    assert not any(other in out for other in others), out


def test_the_host_reference_does_the_same_work_everywhere_and_reports_its_cpu():
    # a fixed checksum: the workload is the same on every host, so only the host's speed moves the figure
    assert machine.reference_workload(1000) == machine.reference_workload(1000) == 17_741
    assert machine.host_reference(rounds=1) > 0
    assert "Host reference: 250 ms of CPU" in machine.host_line(0.25)
    with pytest.raises(ValueError, match="rounds must be at least 1, got 0"):
        machine.host_reference(rounds=0)


def test_accounts_split_over_two_daemon_processes_do_the_same_work_and_merge_their_profiles():
    """``--daemons 2``: the accounts run in two processes on one database; the same posts, outcomes and job ticks as
    one daemon serving both, and one profile holding both processes' work (two campaigns, one per daemon)."""
    from xbotlib.devtools.bench_speed import speed, speed_table  # imported here: the campaigns it runs

    split_progress: list[float] = []
    alone_progress: list[float] = []
    split = speed(days=1, accounts=2, daemons=2, progress=split_progress.append)
    alone = speed(days=1, accounts=2, daemons=1, profile=False, progress=alone_progress.append)
    # the progress bar's feed: simulated days, forward only, the whole day by the end (two daemons: polled)
    assert alone_progress == sorted(alone_progress) and 0.95 < alone_progress[-1] <= 1
    assert split_progress == sorted(split_progress) and all(0 <= d <= 1 for d in split_progress)
    assert split["posts"] > 0 and split["outcomes"] > 0
    assert (split["posts"], split["outcomes"], split["ticks"]) == (alone["posts"], alone["outcomes"], alone["ticks"])
    runs = [r for r in split["top_cumulative"] if r["function"].endswith("(run_campaign)")]
    assert [r["calls"] for r in runs] == [2] and split["round_trips"]["statements"] > 0
    assert "2 accounts together in 2 daemon processes" in speed_table(split)
    # PostgreSQL's CPU beside the daemons', when the bench's server is its own (as root; CI runs as root)
    for res in (split, alone):
        assert (res["server_cpu_s"] is None) == (os.geteuid() != 0)
        if res["server_cpu_s"] is not None:
            assert res["server_cpu_s"] > 0 and "s of CPU per simulated day" in speed_table(res)
        else:
            assert "PostgreSQL's CPU: not measured" in speed_table(res)
    assert "PostgreSQL's CPU: not measured" in speed_table({**split, "server_cpu_s": None})
    # a day's run is one window (day 0 to 1): the daemons' CPU, and the server's where one daemon read it as root
    for res in (split, alone):
        [window] = res["cpu_windows"]
        assert (window["from_day"], window["to_day"]) == (0, 1) and window["campaign_ms"] > 0
        assert window["rss_mib"] > 50 * res["daemons"]   # each daemon process holds its libraries (~250 MiB)
    assert split["cpu_windows"][0]["server_ms"] is None
    assert (alone["cpu_windows"][0]["server_ms"] or 0) > 0 if os.geteuid() == 0 else \
        alone["cpu_windows"][0]["server_ms"] is None


def test_the_servers_cpu_counts_its_backends_living_and_gone():
    """``server_cpu_s`` sums every process of a local server: a backend's work shows while it runs and still after
    its connection closed (the postmaster's reaped children); a directory with no server gives None."""
    pg = TestPostgres()
    if pg.private_pgdata is None:
        pytest.skip("the server is shared (not root) or external: its CPU is not this test's alone")
    try:
        before = machine.server_cpu_s(pg.private_pgdata)
        conn = psycopg.connect(pg.empty_database(), autocommit=True)
        conn.execute("SELECT sum(g) FROM generate_series(1, 3000000) g")   # ~0.3 s of a backend's CPU
        during = machine.server_cpu_s(pg.private_pgdata)
        conn.close()
        after = machine.server_cpu_s(pg.private_pgdata)
    finally:
        pg.drop_all()
    assert before is not None and during - before >= 0.05 and after >= during
    assert machine.server_cpu_s(pg.private_pgdata.parent / "no-such-pgdata") is None


def test_a_daemon_process_that_fails_fails_the_bench_with_its_error():
    from xbotlib.devtools.bench_speed import speed  # imported here: the campaigns it runs

    # each daemon's campaign refuses the days after the daemons are started: the error comes back from a process
    with pytest.raises(RuntimeError, match=r"(?s)a daemon process failed:.*--days must be between 1 and 365, got 400"):
        speed(days=400, accounts=2, daemons=2, profile=False)


def test_a_daemon_process_killed_without_a_word_fails_the_bench_at_once():
    import multiprocessing  # imported here: to find and kill the bench's daemon processes
    import os
    import signal
    import threading
    import time

    from xbotlib.devtools.bench_speed import speed  # imported here: the campaigns it runs

    outcome: dict = {}

    def bench() -> None:
        try:
            speed(days=60, accounts=2, daemons=2, profile=False)
        except Exception as exc:   # what the test looks at
            outcome["error"] = exc

    runner = threading.Thread(target=bench)
    runner.start()
    deadline = time.monotonic() + 120
    victims: list = []
    while not victims and time.monotonic() < deadline:
        victims = [p for p in multiprocessing.active_children() if p.name == "xbot-speed-daemon-1"]
        time.sleep(0.2)
    assert victims, "the bench started no daemon process"
    os.kill(victims[0].pid, signal.SIGKILL)
    runner.join(timeout=60)
    assert not runner.is_alive(), "the bench kept waiting for a dead daemon"
    assert "exited with code -9 and no report" in str(outcome.get("error")), outcome


@pytest.mark.parametrize("argv,words", [
    (["--accounts", "2", "--daemons", "3"], ["--daemons must be a whole number from 1 to --accounts (2)", "got 3"]),
    (["--accounts", "2", "--daemons", "0"], ["--daemons must be a whole number from 1 to --accounts (2)", "got 0"]),
    (["--accounts", "2", "--daemons", "2", "--memory"], ["--memory samples one process's memory", "--daemons 1"]),
    (["--seed", "-1"], ["--seed must be 0 or more, got -1"]),
])
def test_a_bad_daemon_count_is_refused_with_its_range(argv, words, capsys):
    from xbotlib.devtools import bench  # imported here: the CLI module

    with pytest.raises(SystemExit) as stop:
        bench.main("speed", argv)
    err = " ".join(capsys.readouterr().err.split())
    assert stop.value.code == 2 and all(w in err for w in words), err


def test_cpu_windows_give_each_stretchs_cpu_per_simulated_day_summed_over_the_daemons():
    """Marks at days 0, 30, 60 and the end (65): the CPU each stretch cost per simulated day, the daemons' summed,
    the server's where it was read (one daemon's marks only: it reads the whole server); a day one daemon did not
    mark is not a window's edge."""
    from xbotlib.devtools.bench_speed import cpu_windows, speed_table

    one = [(0, 0.0, 10.0, 200.0), (30, 9.0, 13.0, 250.0), (60, 21.0, 16.0, 251.0), (65, 23.0, 16.5, 252.0)]
    assert cpu_windows([one]) == [
        {"from_day": 0, "to_day": 30, "campaign_ms": 300.0, "server_ms": 100.0, "rss_mib": 250.0},
        {"from_day": 30, "to_day": 60, "campaign_ms": 400.0, "server_ms": 100.0, "rss_mib": 251.0},
        {"from_day": 60, "to_day": 65, "campaign_ms": 400.0, "server_ms": 100.0, "rss_mib": 252.0}]
    other = [(0, 0.0, None, 190.0), (30, 3.0, None, 230.0), (65, 10.0, None, 231.0)]
    unread = [(d, c, None, r) for d, c, _, r in one]
    assert cpu_windows([unread, other]) == [
        {"from_day": 0, "to_day": 30, "campaign_ms": 400.0, "server_ms": None, "rss_mib": 480.0},
        {"from_day": 30, "to_day": 65, "campaign_ms": (14.0 + 7.0) / 35 * 1000, "server_ms": None, "rss_mib": 483.0}]
    assert cpu_windows([]) == []
    res = {"days": 65, "accounts": 1, "daemons": 1, "wall": 30.0, "days_per_s": 65 / 30, "ticks": 10, "posts": 1,
           "outcomes": 2, "cpu_s": 23.0, "startup_s": 0.3, "profiled": False, "rss_by_day": [],
           "cpu_windows": cpu_windows([one])}
    table = speed_table(res)
    assert "| 31–60 | 400 | 100 | 251 |" in table and "| 61–65 | 400 | 100 | 252 |" in table
    assert "PostgreSQL's, ms a simulated day" not in speed_table({**res, "cpu_windows": cpu_windows([unread, other])})
    assert "ms a simulated day" not in speed_table({**res, "cpu_windows": cpu_windows([one])[:1]})   # one window
