"""The real-time path on the PostgreSQL job queue (procrastinate): real workers (threads of this process,
and one worker process we SIGKILL), real plan and post ticks, a fake OpenAI over HTTP for a slow LLM,
and a PostgreSQL of its own for the restart and outage tests."""
from __future__ import annotations

import asyncio
import os
import re
import signal
import subprocess
import sys
import threading
import time
from contextlib import contextmanager
from datetime import datetime, timedelta, timezone
from pathlib import Path

import procrastinate
import pytest

from xbotlib.clock import SimClock, SystemClock
from xbotlib.config import load_settings
from xbotlib.devtools.fake_openai import FakeOpenAI
from xbotlib.devtools.pgcontrol import RestartablePostgres
from xbotlib.jobs import worker
from xbotlib.jobs.context import build_context
from xbotlib.jobs.schedules import ScheduleEntry
from xbotlib.store import queue, runs
from xbotlib.store.db import Database

ROOT = Path(__file__).resolve().parents[2]
JOBS = [ScheduleEntry("job", "plan", "0 * * * *"), ScheduleEntry("job", "post", "*/5 * * * *"),
        ScheduleEntry("job", "collect", "*/15 * * * *")]


def wait_for(predicate, timeout: float = 60.0, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


def job_runs(db, job: str) -> list[dict]:
    with db.connection() as conn:
        return runs.runs_of_job(conn, job)


def defer(url: str, account: str, job: str, occurrence: datetime) -> bool:
    async def go():
        app = worker.make_app(url, pool_max=2)
        async with app.open_async():
            return await worker.defer_tick(app, account, job, occurrence)
    return asyncio.run(go())


def recover(url: str, stalled_after_s: float) -> int:
    async def go():
        app = worker.make_app(url, pool_max=2)
        async with app.open_async():
            return await worker.recover_stalled(app, stalled_after_s)
    return asyncio.run(go())


def queue_job_statuses(url: str) -> list[str]:
    async def go():
        app = worker.make_app(url, pool_max=2)
        async with app.open_async():
            return [j.status for j in await app.job_manager.list_jobs_async()]
    return asyncio.run(go())


@contextmanager
def worker_thread(settings, db, groups, clock=None, name="w"):
    """A worker group serving ``groups`` in a thread of this process (no signals, no fence)."""
    clock = clock or SystemClock()
    runtime = worker.WorkerRuntime(db=db, clock=clock, entries=JOBS,
                                   context_for=worker.contexts_for_accounts(settings, db, clock, build_context))
    group = worker.WorkerGroup(worker.make_app(db.url, pool_max=4), runtime, groups=groups, name=name,
                               install_signals=False, fence=False)
    thread = threading.Thread(target=asyncio.run, args=(group.run(),), daemon=True, name=f"worker-{name}")
    thread.start()
    try:
        yield runtime
    finally:
        wait_for(lambda: group._loop is not None, 30, "the worker loop")
        group.stop()
        thread.join(60)
        assert not thread.is_alive(), "the worker did not stop after its running ticks"


def this_hour() -> datetime:
    return datetime.now(timezone.utc).replace(minute=0, second=0, microsecond=0)


@pytest.fixture
def slow_llm():
    with FakeOpenAI(delay_s=3.0) as fake:
        yield fake


@pytest.fixture
def llm_settings(db_url, tmp_path, slow_llm):
    return load_settings(env={"XBOT_DATABASE_URL": db_url, "XBOT_HOME": str(tmp_path / ".xbot"),
                              "POSTING_DISABLED": "false", "LIVE_POSTS": "false", "XBOT_ACCOUNT_ID": "acct1",
                              "OPENAI_API_KEY": "sk-test", "OPENAI_BASE_URL": slow_llm.base_url,
                              "OPENAI_TIMEOUT_S": "60"})


# ----------------------------------------------------------------------------- schema

def test_migration_0008_holds_the_installed_procrastinate_schema():
    """The job queue's schema goes in through our migrations: 0008 embeds procrastinate's own schema.sql
    verbatim, so upgrading procrastinate past it fails here (and needs a new migration)."""
    installed = (Path(procrastinate.__file__).parent / "sql" / "schema.sql").read_text()
    up = (ROOT / "migrations" / "0008_job_queue.up.sql").read_text()
    embedded = re.search(r"\$procrastinate_schema\$\n(.*)\$procrastinate_schema\$", up, re.S).group(1)
    assert embedded == installed


def test_migrate_up_installs_the_queue_and_it_can_be_rerun(db):
    with db.connection() as conn:
        before = conn.execute("SELECT count(*) AS n FROM pg_proc WHERE proname LIKE 'procrastinate%%'").fetchone()["n"]
        conn.execute((ROOT / "migrations" / "0008_job_queue.up.sql").read_text())  # re-runnable
        after = conn.execute("SELECT count(*) AS n FROM pg_proc WHERE proname LIKE 'procrastinate%%'").fetchone()["n"]
    assert before == after > 10
    assert queue_job_statuses(db.url) == []


# ----------------------------------------------------------------------------- deferring

def test_two_deferrers_queue_each_occurrence_once_and_a_waiting_tick_absorbs_the_next(db):
    clock = SimClock(datetime(2026, 3, 2, 10, 2, tzinfo=timezone.utc))
    with db.connection() as conn:
        for a in ("acct1", "acct2"):
            queue.ensure_account(conn, a, clock.now())

    async def sweeps():
        app = worker.make_app(db.url, pool_max=2)
        async with app.open_async():
            first, second = (worker.Deferrer(app, db, clock, JOBS) for _ in range(2))
            counts = [await first.sweep(), await second.sweep()]
            clock.advance(timedelta(minutes=5))  # post is due again; its previous tick still waits
            counts += [await first.sweep(), await second.sweep()]
            return counts, await app.job_manager.list_jobs_async()

    counts, jobs = asyncio.run(sweeps())
    assert counts == [6, 0, 0, 0]  # 2 accounts x 3 jobs, once; the 10:05 post collapsed into the waiting one
    assert sorted((j.task_kwargs["account_id"], j.queue) for j in jobs) == sorted(
        (a, q) for a in ("acct1", "acct2") for q in ("plan", "post", "collect"))
    assert {j.lock for j in jobs if j.task_kwargs["account_id"] == "acct1"} == {
        "xbot:plan:acct1", "xbot:post:acct1", "xbot:collect:acct1"}


# ----------------------------------------------------------------------------- locks and queues

def test_two_workers_never_run_two_plan_ticks_of_one_account_at_once(llm_settings, db):
    """The second plan tick of acct1 is queued while the first runs; a second worker is free, yet the
    tick's lock keeps it waiting until the first has finished."""
    groups = ((("plan",), 2),)
    with worker_thread(llm_settings, db, groups, name="a"), worker_thread(llm_settings, db, groups, name="b"):
        hour = this_hour()
        assert defer(db.url, "acct1", "plan", hour - timedelta(hours=1))
        wait_for(lambda: any(r["status"] == "running" for r in job_runs(db, "plan")), 60, "the first plan tick")
        assert defer(db.url, "acct1", "plan", hour)
        done = wait_for(lambda: [r for r in job_runs(db, "plan") if r["finished_at"]] if len(
            [r for r in job_runs(db, "plan") if r["finished_at"]]) == 2 else None, 120, "both plan ticks")
    first, second = sorted(done, key=lambda r: r["started_at"])
    assert second["started_at"] >= first["finished_at"]
    with db.connection() as conn:
        assert runs.overlapping_runs(conn, "plan") == []
    assert queue_job_statuses(db.url) == ["succeeded", "succeeded"]


def test_a_slow_llm_does_not_delay_posts(llm_settings, db, slow_llm):
    """A plan tick waits on an LLM answering in 6 s; post ticks of three accounts queued meanwhile run
    and finish while it still waits: separate queues, separate workers."""
    slow_llm.delay_s = 6.0
    groups = ((("plan",), 1), (("post",), 1))
    with worker_thread(llm_settings, db, groups):
        now = datetime.now(timezone.utc).replace(second=0, microsecond=0)
        assert defer(db.url, "acct1", "plan", this_hour())
        wait_for(lambda: any(r["status"] == "running" for r in job_runs(db, "plan")), 60, "the plan tick")
        for account in ("acct1", "acct2", "acct3"):
            assert defer(db.url, account, "post", now)
        posts = wait_for(lambda: (lambda rs: rs if len(rs) == 3 else None)(
            [r for r in job_runs(db, "post") if r["finished_at"]]), 60, "three post ticks")
        plan_now = job_runs(db, "plan")
        wait_for(lambda: job_runs(db, "plan")[0]["finished_at"], 120, "the plan tick to end")
    assert [r["status"] for r in plan_now] == ["running"]  # the posts were done while the LLM was still thinking
    assert {r["status"] for r in posts} <= {"ok", "skipped"}
    assert max(r["finished_at"] for r in posts) < job_runs(db, "plan")[0]["finished_at"]


# ----------------------------------------------------------------------------- a SIGKILLed worker

def test_a_sigkilled_workers_tick_is_retried_once_its_heartbeat_stops_and_never_beside_it(llm_settings, db_url, db,
                                                                                         slow_llm, tmp_path):
    slow_llm.delay_s = 30.0  # the killed worker is mid-tick, waiting on the LLM
    env = {**os.environ, "XBOT_DATABASE_URL": db_url, "XBOT_HOME": str(tmp_path / "machine"),
           "POSTING_DISABLED": "false", "LIVE_POSTS": "false", "OPENAI_API_KEY": "sk-test",
           "OPENAI_BASE_URL": slow_llm.base_url, "OPENAI_TIMEOUT_S": "60", "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen([sys.executable, "-m", "xbotlib.app.cli.main", "worker", "--child", "--no-notebooks"],
                            cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        assert defer(db_url, "acct1", "plan", this_hour())
        wait_for(lambda: any(r["status"] == "running" for r in job_runs(db, "plan")), 120, "the worker's plan tick")
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    slow_llm.delay_s = 0.0
    # while its heartbeat is fresh the job is not stalled: nothing retries it, its lock holds
    assert recover(db_url, stalled_after_s=60) == 0
    time.sleep(3.0)
    assert recover(db_url, stalled_after_s=2) == 1
    with worker_thread(llm_settings, db, ((("plan",), 1),)):
        wait_for(lambda: any(r["status"] in ("ok", "skipped") for r in job_runs(db, "plan")), 120, "the retried tick")
    killed, retried = sorted(job_runs(db, "plan"), key=lambda r: r["started_at"])
    assert killed["status"] == "failed" and killed["error"].startswith("interrupted")
    assert killed["scheduled_for"] == retried["scheduled_for"]
    with db.connection() as conn:
        assert runs.overlapping_runs(conn, "plan") == []
    assert queue_job_statuses(db_url) == ["succeeded"]


# ----------------------------------------------------------------------------- PostgreSQL restarts and outages

@pytest.fixture(scope="module")
def own_pg():
    return RestartablePostgres(dbname="xbot_restart")


def own_settings(url, tmp_path):
    return load_settings(env={"XBOT_DATABASE_URL": url, "XBOT_HOME": str(tmp_path / ".xbot"),
                              "POSTING_DISABLED": "false", "LIVE_POSTS": "false", "XBOT_ACCOUNT_ID": "acct1"})


def test_workers_come_back_after_a_postgres_restart(own_pg, tmp_path):
    settings = own_settings(own_pg.url, tmp_path)
    with Database.from_url(own_pg.url, pool_max=4, check_connections=True) as db:
        with worker_thread(settings, db, ((("post",), 1),)):
            now = datetime.now(timezone.utc).replace(second=0, microsecond=0)
            assert defer(db.url, "acct1", "post", now - timedelta(minutes=5))
            wait_for(lambda: len(job_runs(db, "post")) == 1 and job_runs(db, "post")[0]["finished_at"], 60,
                     "a post tick before the restart")
            own_pg.restart()
            assert defer(db.url, "acct1", "post", now)  # after the restart: the worker must reconnect and take it
            try:
                # (a `missed` row may sit between the two: the occurrences between them were never queued)
                wait_for(lambda: len([r for r in job_runs(db, "post") if r["status"] in ("ok", "skipped")]) == 2, 120,
                         "a post tick after the restart")
            except AssertionError as exc:  # say where it stuck: our runs and the queue's jobs
                raise AssertionError(f"{exc}; job_runs={job_runs(db, 'post')}; "
                                     f"queue={queue_job_statuses(db.url)}") from None
        assert {r["status"] for r in job_runs(db, "post")} <= {"ok", "skipped", "missed"}
        assert queue_job_statuses(db.url) == ["succeeded", "succeeded"]


def test_with_the_database_down_a_tick_fails_at_once_and_is_recorded_when_it_is_back(own_pg, tmp_path):
    settings = own_settings(own_pg.url, tmp_path)
    clock = SimClock(datetime(2026, 3, 2, 10, 0, tzinfo=timezone.utc))
    at = lambda minute: datetime(2026, 3, 2, 10, minute, tzinfo=timezone.utc)  # noqa: E731
    with Database.from_url(own_pg.url, pool_max=4, check_connections=True) as db:
        runtime = worker.WorkerRuntime(db=db, clock=clock, entries=JOBS,
                                       context_for=worker.contexts_for_accounts(settings, db, clock, build_context))
        runtime.run_tick("acct2", "post", int(at(0).timestamp()))
        own_pg.stop()
        try:
            clock.set(at(5))
            began = time.monotonic()
            with pytest.raises(worker.DB_ERRORS):
                runtime.run_tick("acct2", "post", int(at(5).timestamp()))
            print(f"the tick failed after {time.monotonic() - began:.1f} s")  # seconds, not a 30-s pool wait
            assert len(runtime.spool.pending) == 1
        finally:
            own_pg.start()
        clock.set(at(15))  # 10:10 passed with no tick at all
        runtime.run_tick("acct2", "post", int(at(15).timestamp()))
        with db.connection() as conn:
            rows = [r for r in runs.runs_of_job(conn, "post") if r["account_id"] == "acct2"]
    by_time = {r["scheduled_for"]: r for r in rows}
    assert by_time[at(0)]["status"] in ("ok", "skipped")
    assert by_time[at(5)]["status"] == "failed" and "database unreachable" in by_time[at(5)]["error"]
    assert by_time[at(10)]["status"] == "missed" and by_time[at(10)]["error"].startswith("not run at its time")
    assert by_time[at(15)]["status"] in ("ok", "skipped")
    assert runtime.spool.pending == []



# ----------------------------------------------------------------------------- the pool from the command line

def test_xbot_worker_serves_and_sigterm_ends_it_cleanly(db_url, db, tmp_path):
    """`xbot worker --workers 1`: the pool (supervisor and deferrer) and one worker process; a queued tick is
    run; SIGTERM stops both with code 0 and no traceback."""
    with db.connection() as conn:
        queue.ensure_account(conn, "acct1", datetime.now(timezone.utc))
    env = {**os.environ, "XBOT_DATABASE_URL": db_url, "XBOT_HOME": str(tmp_path / "machine"),
           "POSTING_DISABLED": "false", "LIVE_POSTS": "false", "PYTHONPATH": str(ROOT)}
    env.pop("OPENAI_API_KEY", None)
    log = tmp_path / "worker.log"
    with log.open("w") as out:
        proc = subprocess.Popen([sys.executable, "-m", "xbotlib.app.cli.main", "worker", "--workers", "1",
                                 "--no-notebooks"], cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
        try:
            # the deferrer queues acct1's occurrences that have come; the worker process runs them
            wait_for(lambda: any(r["finished_at"] for r in job_runs(db, "post")), 180, "a post tick from the pool")
            # the pool holds no more connections than `xbot run` counts on when it checks the server's limit
            with db.connection() as conn:
                held = conn.execute("SELECT count(*) AS n FROM pg_stat_activity WHERE datname = current_database() "
                                    "AND backend_type = 'client backend'").fetchone()["n"]
            ours = db.pool.get_stats()["pool_size"]
            assert 0 < held - ours <= worker.connections_needed(1, load_settings(env={}).db_pool_max)[1]
        finally:
            proc.send_signal(signal.SIGTERM)
            rc = proc.wait(timeout=120)
    text = log.read_text()
    assert rc == 0, text
    assert "Traceback" not in text
    assert "[WORKER] stopped" in text and "[WORKER] all worker processes stopped restarts=0" in text


# ----------------------------------------------------------------------------- the server's connection limit

def _slots(max_connections=100, reserved=0, in_use=0):
    from xbotlib.store.db import ConnectionSlots
    return ConnectionSlots(max_connections, reserved, in_use)


def test_worker_processes_that_fit_the_servers_connections_start_without_a_word():
    assert worker.connection_verdict(2, 8, _slots()) == (None, None)   # 26 at rest, 48 at most, 100 free


def test_worker_processes_that_fit_only_at_rest_start_with_a_warning_naming_the_numbers_and_the_fixes():
    error, warning = worker.connection_verdict(6, 8, _slots())        # 62 at rest, 112 at most
    assert error is None
    text = " ".join(warning.split())
    assert all(w in text for w in ("--workers 6 holds 62", "up to 112", "100 free", "XBOT_DB_POOL_MAX 8",
                                   "Lower --workers", "max_connections = 150"))


def test_worker_processes_that_cannot_all_connect_are_refused_with_how_many_fit():
    error, _ = worker.connection_verdict(11, 8, _slots(in_use=0))     # 107 at rest: the eleventh never connects
    assert "--workers 11 needs 107 PostgreSQL connections at rest" in error and "at most 10 worker" in error
    # a non-superuser cannot use the reserved slots, and other sessions' connections count
    error, _ = worker.connection_verdict(8, 8, _slots(reserved=3, in_use=20))
    assert "the server has 77 free" in error and "3 reserved for superusers, 20 held by other sessions" in error
    assert "at most 7 worker" in error
    # `xbot worker --no-deferrer` (more workers on another machine): its supervisor holds one connection, not 8
    error, _ = worker.connection_verdict(12, 8, _slots(), deferrer=False)
    assert "needs 109 PostgreSQL connections at rest (9 a worker process, 1 for the supervisor)" in error
    assert "at most 11 worker" in error and worker.connection_verdict(11, 8, _slots(), deferrer=False)[0] is None
    # a small managed server (25 connections, 3 reserved, a non-superuser): the default 2 workers do not fit
    error, _ = worker.connection_verdict(2, 8, _slots(max_connections=25, reserved=3))
    assert "needs 26 PostgreSQL connections at rest" in error and "Run at most 1 worker process," in error


def test_connection_slots_reads_the_servers_limit_and_the_other_sessions(db):
    from xbotlib.store.db import connection_slots
    with db.connection() as conn:
        slots = connection_slots(conn)
        limit = int(conn.execute("SHOW max_connections").fetchone()["max_connections"])
    assert slots.max_connections == limit and 0 <= slots.in_use < limit
    assert slots.free == limit - slots.reserved - slots.in_use

