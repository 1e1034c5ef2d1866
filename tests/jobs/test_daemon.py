"""The daemon (`xbot run`) on a simulated clock against the sandbox X: a week of posting, collecting
and learning; every tick recorded at the cron cadence; one daemon per account; a stop request (or
SIGTERM) finishes the current tick and exits; a failing tick does not stop the loop."""
from __future__ import annotations

import dataclasses
import logging
import os
import signal
from collections import Counter
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import pytest

from xbotlib.clock import SimClock, SystemClock
from xbotlib.jobs import schedules
from xbotlib.jobs.daemon import Daemon, DaemonLocked
from xbotlib.jobs.context import JobResult, build_context
from xbotlib.jobs.runner import run_jobs_together
from xbotlib.sim.xserver import SandboxX
from xbotlib.clients.generation import TemplateGenerator

ROOT = Path(__file__).resolve().parents[2]
PRODUCTION = ROOT / "schedules"
HOURLY = ROOT / "bench" / "schedules"


def job_entries(directory: Path):
    return [e for e in schedules.load_schedules(directory) if e.kind == "job"]


def make_ctx(settings, db, clock, seed: int = 21, **kw):
    return build_context(settings, db, clock, sandbox=SandboxX(clock=clock, seed=seed), seed=seed, **kw)


def job_run_counts(db) -> dict[str, Counter]:
    with db.connection() as conn:
        rows = conn.execute("SELECT job, status, count(*) AS n FROM job_runs GROUP BY job, status").fetchall()
    out: dict[str, Counter] = {}
    for r in rows:
        out.setdefault(r["job"], Counter())[r["status"]] = r["n"]
    return out


def expected_runs(entry, start, until) -> int:
    """Cron occurrences in [start, until): the daemon runs each entry at once, then on its cron."""
    n, t = 1, start
    while True:
        t = schedules.next_run(entry, t)
        if t >= until:
            return n
        n += 1


def test_a_simulated_week_posts_collects_and_learns(settings, db, clock, caplog):
    caplog.set_level(logging.INFO, logger="xbot")
    ctx = make_ctx(settings, db, clock)
    entries = job_entries(HOURLY)
    start = clock.now()
    until = start + timedelta(days=7)
    ticks = Daemon([ctx], entries).run(until=until, install_signals=False)

    assert clock.now() == until
    runs = job_run_counts(db)
    for e in entries:  # every tick recorded, at the cadence of its cron
        assert ticks[e.key] == sum(runs[e.name].values()) == expected_runs(e, start, until), e.name
        assert set(runs[e.name]) <= {"ok", "skipped"}, f"{e.name}: {runs[e.name]}"
    assert ticks["job:post"] == 7 * 24

    with db.connection() as conn:
        posted = conn.execute("""SELECT pd.decision_id, pd.tweet_id, pd.posted_at, cm.content, cm.decision_type
                                   FROM posted_decisions pd JOIN content_metadata cm USING (decision_id)""").fetchall()
        collected = {(r["decision_id"], r["collected_pass"]) for r in conn.execute(
            "SELECT decision_id, collected_pass FROM outcomes WHERE simulated").fetchall()}
        real = conn.execute("SELECT count(*) AS n FROM outcomes WHERE NOT simulated").fetchone()["n"]
        predictors = conn.execute("SELECT kind, version, world FROM predictors ORDER BY kind").fetchall()
        snapshots = conn.execute("SELECT count(*) AS n FROM follower_snapshots").fetchone()["n"]
    assert len(posted) >= 7 * 4, f"only {len(posted)} posts in a week"
    assert {p["decision_type"] for p in posted} == {"post", "reply"}
    assert {t.tweet_id: t.text for t in ctx.sandbox.tweets} == {p["tweet_id"]: p["content"] for p in posted}
    # pass 1 at T+1h and pass 2 at T+24h, read by the hourly collect tick after them
    for p in posted:
        if p["posted_at"] <= until - timedelta(hours=2):
            assert (p["decision_id"], 1) in collected, p
        if p["posted_at"] <= until - timedelta(hours=25):
            assert (p["decision_id"], 2) in collected, p
    assert sum(1 for _, n in collected if n == 2) >= 20
    assert real == 0, "sandbox outcomes are marked simulated"
    assert [(p["kind"], p["world"]) for p in predictors if p["version"] == 1] == [("content", "sandbox"),
                                                                                   ("timing", "sandbox")]
    assert snapshots > 0
    messages = [r.getMessage() for r in caplog.records]
    assert any(m.startswith(("[LEARN_JOB] coeffs_updated=v1", "[LEARN_JOB] rejected version=v1")) for m in messages)
    assert any(m.startswith("[ANALYTICS_COLLECTOR] stored outcome decision_id=") for m in messages)


def test_two_days_on_the_production_schedule(settings, db, clock):
    ctx = make_ctx(settings, db, clock, seed=22)
    entries = job_entries(PRODUCTION)
    start = clock.now()
    until = start + timedelta(days=2)
    ticks = Daemon([ctx], entries).run(until=until, install_signals=False)

    runs = job_run_counts(db)
    assert {e.name: ticks[e.key] for e in entries} == {"plan": 48, "post": 576, "collect": 192, "learn": 9}
    for e in entries:
        assert sum(runs[e.name].values()) == ticks[e.key] == expected_runs(e, start, until)
    with db.connection() as conn:
        rows = conn.execute("""SELECT cm.scheduled_at, pd.posted_at FROM posted_decisions pd
                                 JOIN content_metadata cm USING (decision_id)""").fetchall()
    assert len(rows) >= 8
    # posted at the first post tick after its slot (every 5 minutes): never early, never a day late
    for r in rows:
        assert timedelta(0) <= r["posted_at"] - r["scheduled_at"] < timedelta(minutes=5), r


def test_one_daemon_per_account(settings, db, clock):
    ctx = make_ctx(settings, db, clock)
    other_account = make_ctx(settings.replace(account_id="acct2"), db, clock)
    seen: list = []
    first = None

    def on_tick(now):
        try:
            Daemon([make_ctx(settings, db, clock, seed=1)], job_entries(HOURLY)).run(
                until=now + timedelta(hours=1), install_signals=False)
            seen.append("second ran")
        except DaemonLocked as exc:
            seen.append(str(exc))
        # another account is free to run at the same time
        Daemon([other_account], job_entries(HOURLY)).run(until=now, install_signals=False)
        first.request_stop()

    first = Daemon([ctx], job_entries(HOURLY), on_tick=on_tick)
    first.run(until=clock.now() + timedelta(days=1), install_signals=False)
    assert seen == ["another `xbot run` already holds account 'acct1' (one daemon per account; stop the other one first)"]
    # the lock goes with the daemon: a new one may start
    Daemon([make_ctx(settings, db, clock, seed=2)], job_entries(HOURLY)).run(until=clock.now(), install_signals=False)


def test_request_stop_finishes_the_current_tick_and_exits(settings, db, clock):
    ctx = make_ctx(settings, db, clock)
    turns: list = []
    daemon = None

    def on_tick(now):
        turns.append(now)
        if len(turns) == 3:
            daemon.request_stop()

    daemon = Daemon([ctx], job_entries(HOURLY), on_tick=on_tick)
    start = clock.now()
    ticks = daemon.run(until=start + timedelta(days=7), install_signals=False)
    assert len(turns) == 3
    with db.connection() as conn:
        statuses = Counter(r["status"] for r in conn.execute("SELECT status FROM job_runs").fetchall())
    assert statuses["running"] == 0, "the tick in progress was finished, not abandoned"
    assert sum(statuses.values()) == sum(ticks.values())
    assert clock.now() < start + timedelta(hours=3), "stopped after the third loop turn"


def test_sigterm_stops_the_daemon_after_the_tick(settings, db, clock):
    ctx = make_ctx(settings, db, clock)
    turns: list = []
    before = signal.getsignal(signal.SIGTERM)

    def on_tick(now):
        turns.append(now)
        if len(turns) == 2:
            os.kill(os.getpid(), signal.SIGTERM)

    ticks = Daemon([ctx], job_entries(HOURLY), on_tick=on_tick).run(until=clock.now() + timedelta(days=7))
    assert len(turns) == 2 and sum(ticks.values()) > 0
    assert signal.getsignal(signal.SIGTERM) is before, "the daemon gives the signal handlers back"


@dataclass
class FailsOnce:
    """A content generator whose first call fails as a broken dependency would."""
    inner: TemplateGenerator
    failed: bool = False

    def candidates(self, *args, **kwargs):
        if not self.failed:
            self.failed = True
            raise RuntimeError("generator exploded")
        return self.inner.candidates(*args, **kwargs)


def test_a_failing_tick_is_recorded_and_the_loop_goes_on(settings, db, clock, caplog):
    caplog.set_level(logging.INFO, logger="xbot")
    ctx = make_ctx(settings, db, clock, generator=FailsOnce(TemplateGenerator(3)))
    notebooks: list = []
    entries = job_entries(HOURLY) + schedules.parse_schedules(
        '[[notebook]]\nname = "growth_review"\ncron = "0 */12 * * *"\n', source="test")

    def runner(name, params):
        notebooks.append(name)
        if len(notebooks) == 1:
            raise RuntimeError("kernel died")

    Daemon([ctx], entries, notebook_runner=runner).run(until=clock.now() + timedelta(days=1), install_signals=False)
    runs = job_run_counts(db)
    assert runs["plan"]["failed"] == 1 and runs["plan"]["ok"] >= 4
    with db.connection() as conn:
        failed = conn.execute("SELECT error FROM job_runs WHERE status = 'failed'").fetchone()
    assert failed["error"].startswith("RuntimeError: generator exploded")
    assert notebooks == ["growth_review"] * 3  # at once, 12:00, 00:00: the failure did not stop its schedule
    failures = [r.getMessage() for r in caplog.records if r.getMessage().startswith("[DAEMON] tick failed")]
    assert len(failures) == 2 and "entry=job:plan" in failures[0] and "entry=notebook:growth_review" in failures[1]
    assert len(ctx.sandbox.tweets) >= 4, "posting went on after the failures"


# ----------------------------------------------------------------------------- the commands

@pytest.fixture
def cli_env(db_url, tmp_path, monkeypatch):
    """`xbot` reads its settings from the environment (and a .env in the working directory)."""
    for key in [k for k in os.environ if k.startswith(("XBOT_", "OPENAI_", "X_", "POSTING_", "LIVE_"))]:
        monkeypatch.delenv(key)
    monkeypatch.chdir(tmp_path)
    for key, value in {"XBOT_DATABASE_URL": db_url, "XBOT_HOME": str(tmp_path / ".xbot"),
                       "XBOT_ACCOUNT_ID": "acct1", "POSTING_DISABLED": "false"}.items():
        monkeypatch.setenv(key, value)


@pytest.mark.parametrize("argv, expected", [
    (["job", "--help"], ["--once", "plan", "post", "collect", "learn", "job_runs"]),
    (["run", "--help"], ["--schedules", "--no-notebooks", "--workers", "every account", "job queue", "SIGTERM",
                         "xbot worker"]),
    (["worker", "--help"], ["--workers", "--no-deferrer", "XBOT_DATABASE_URL", "once"]),
])
def test_help_helps(argv, expected, capsys):
    from xbotlib.app.cli import main as cli
    with pytest.raises(SystemExit) as exit_:
        cli.main(argv)
    assert exit_.value.code == 0
    out = " ".join(capsys.readouterr().out.split())
    assert all(word in out for word in expected), out


def test_xbot_job_once_runs_one_recorded_tick(cli_env, db, capsys):
    from xbotlib.app.cli import main as cli
    assert cli.main(["job", "plan", "--once"]) == 0
    assert capsys.readouterr().out.startswith("plan: ok {")
    with db.connection() as conn:
        runs = conn.execute("SELECT job, status FROM job_runs").fetchall()
        queued = conn.execute("SELECT count(*) AS n FROM content_metadata WHERE status = 'queued'").fetchone()["n"]
    assert runs == [{"job": "plan", "status": "ok"}] and queued >= 1


@pytest.mark.parametrize("argv, words", [
    (["run", "--no-notebooks", "--clock-scale", "60"], ["--clock-scale needs --clock-origin", "shared by every process"]),
    (["run", "--clock-scale", "60", "--clock-origin", "yesterday"], ["--clock-origin 'yesterday' is not an ISO time"]),
    (["worker", "--workers", "0"], ["--workers 0", "at least 1"]),
    # more processes than any server has connections for: refused before one is started
    (["worker", "--no-notebooks", "--workers", "5000"], ["--workers 5000 needs 45008 PostgreSQL connections",
                                                        "max_connections", "Run at most"]),
])
def test_xbot_run_and_worker_name_a_bad_option_and_its_fix(cli_env, argv, words, capsys):
    from xbotlib.app.cli import main as cli
    assert cli.main(argv) == 2
    err = " ".join(capsys.readouterr().err.split())
    assert all(w in err for w in words), err


# ----------------------------------------------------------------------------- several accounts, one simulated clock

def _stored_runs(db) -> list[tuple]:
    with db.connection() as conn:
        return [tuple(r.values()) for r in conn.execute(
            "SELECT account_id, job, status, started_at, finished_at, detail, left(error, 40) AS error "
            "FROM job_runs ORDER BY account_id, started_at, job, run_id").fetchall()]


def _stored_data(db) -> dict[str, list[dict]]:
    """What the collector stored, without the ids that differ from database to database."""
    with db.connection() as conn:
        return {table: [{k: v for k, v in r.items() if k not in ("outcome_id", "snapshot_id", "decision_id")}
                        for r in conn.execute(f"SELECT * FROM {table} ORDER BY {order}").fetchall()]
                for table, order in (("follower_snapshots", "account_id, taken_at"),
                                     ("outcomes", "account_id, collected_at, collected_pass, impressions, likes"))}


def test_accounts_run_together_store_the_runs_each_would_store_alone(settings, db, clock, pg, caplog):
    """With several accounts on a simulated clock the daemon writes each job's run records for all of them in one
    statement each way; what it stores is what one daemon per account stores, a failed tick included."""
    from xbotlib.store.db import Database  # imported here: the second database of the comparison

    caplog.set_level(logging.INFO, logger="xbot")
    start = clock.now()
    until = start + timedelta(days=1)

    def account(i, database, a_clock):
        if i == 1:
            return make_ctx(settings, database, a_clock, seed=31)
        return make_ctx(settings.replace(account_id="acct2"), database, a_clock, seed=32,
                        generator=FailsOnce(TemplateGenerator(3)))

    together = Daemon([account(1, db, clock), account(2, db, clock)], job_entries(HOURLY)).run(
        until=until, install_signals=False)
    alone_db = Database.from_url(pg.fresh_database(), pool_max=4)
    try:
        alone_ticks: Counter = Counter()
        for i in (1, 2):  # one daemon per account, each on its own clock from the same start
            alone_ticks.update(Daemon([account(i, alone_db, SimClock(start))], job_entries(HOURLY)).run(
                until=until, install_signals=False))
        assert _stored_runs(db) == _stored_runs(alone_db) != []
        # post and collect ran for both accounts at once (their reads shared): the same snapshots and outcomes
        assert _stored_data(db) == _stored_data(alone_db) and all(_stored_data(db).values())
    finally:
        alone_db.close()
    assert together == dict(alone_ticks)
    runs = job_run_counts(db)
    assert runs["plan"]["failed"] == 1  # acct2's first plan tick, recorded durably at once
    failures = [r.getMessage() for r in caplog.records if r.getMessage().startswith("[DAEMON] tick failed")]
    assert len(failures) == 2 and all("entry=job:plan account=acct2" in f for f in failures)


def test_a_stop_part_way_through_a_turn_leaves_the_ticks_not_run_skipped_not_running(settings, db, clock):
    ctxs = [make_ctx(settings, db, clock), make_ctx(settings.replace(account_id="acct2"), db, clock, seed=2)]
    ran: list = []
    stop = []

    def tick(ctx):
        ran.append(ctx.account_id)
        stop.append(True)  # the daemon is asked to stop while this tick runs
        return JobResult(detail={"sent": 0})

    results = run_jobs_together([("post", ctxs[0], tick), ("post", ctxs[1], tick)], should_stop=lambda: bool(stop))
    assert ran == ["acct1"] and [r.status for r in results] == ["ok", "skipped"]
    with db.connection() as conn:
        rows = conn.execute("SELECT account_id, status, detail FROM job_runs ORDER BY run_id").fetchall()
    assert [(r["account_id"], r["status"], r["detail"]) for r in rows] == [
        ("acct1", "ok", {"sent": 0}), ("acct2", "skipped", {"reason": "stop_requested"})]
    with pytest.raises(ValueError, match="one SimClock.*use run_job for each"):
        run_jobs_together([("post", dataclasses.replace(ctxs[0], clock=SystemClock()), tick)])


def test_a_job_run_for_several_accounts_at_once_is_recorded_as_one_run_each(settings, db, clock):
    """``TurnRecorder.run_many``: a run per account in order, each with its own result; one account's exception is
    its own failed run (with its traceback); a stop asked before leaves every run skipped, never run."""
    from xbotlib.jobs.runner import TurnRecorder  # imported here: the recorder, driven directly

    ctxs = [make_ctx(settings, db, clock), make_ctx(settings.replace(account_id="acct2"), db, clock, seed=2)]
    ran: list = []

    def tick_many(contexts):
        ran.append([c.account_id for c in contexts])
        try:
            raise RuntimeError("acct2 broke")
        except RuntimeError as exc:
            return [JobResult(detail={"sent": 1}), exc]

    recorder = TurnRecorder()
    results = recorder.run_many("post", ctxs, tick_many)
    assert ran == [["acct1", "acct2"]] and results[0].status == "ok" and isinstance(results[1], RuntimeError)
    assert recorder.run_many("post", ctxs, tick_many, should_stop=lambda: True)[1].reason == "stop_requested"
    assert len(ran) == 1, "asked to stop before: nothing ran"
    recorder.flush()
    with db.connection() as conn:
        rows = conn.execute("SELECT account_id, status, detail, error FROM job_runs ORDER BY run_id").fetchall()
    assert [(r["account_id"], r["status"], r["detail"]) for r in rows] == [
        ("acct1", "ok", {"sent": 1}), ("acct2", "failed", {}),
        ("acct1", "skipped", {"reason": "stop_requested"}), ("acct2", "skipped", {"reason": "stop_requested"})]
    assert rows[1]["error"].startswith("RuntimeError: acct2 broke\nTraceback") and "in tick_many" in rows[1]["error"]


def test_runs_are_held_until_a_batch_gathers_a_failed_one_is_written_at_once_and_all_by_the_end(settings, db,
                                                                                                   clock):
    from xbotlib.jobs.runner import TurnRecorder  # imported here: the recorder, driven directly

    ctx = make_ctx(settings, db, clock)
    recorder = TurnRecorder(batch=3)

    def stored():
        with db.connection() as conn:
            return [tuple(r.values()) for r in conn.execute(
                "SELECT job, status, started_at, finished_at, left(error, 22) FROM job_runs ORDER BY run_id")]

    quiet = lambda c: JobResult(detail={"sent": 0})  # noqa: E731 - a tick that finds nothing to do

    def broken(c):
        raise RuntimeError("boom")

    t0 = clock.now()
    recorder.run([("post", ctx, quiet), ("collect", ctx, quiet)])
    recorder.write_if_due()
    assert stored() == [] and len(recorder.unwritten) == 2  # held: fewer than a batch
    clock.advance(300)
    recorder.run([("post", ctx, quiet)])
    recorder.write_if_due()
    t1 = clock.now()
    assert stored() == [("post", "ok", t0, t0, None), ("collect", "ok", t0, t0, None), ("post", "ok", t1, t1, None)]
    clock.advance(300)
    recorder.run([("plan", ctx, broken), ("post", ctx, quiet)])
    recorder.write_if_due()  # a failed run: written at once, with what ran before it and after it in its turn
    t2 = clock.now()
    assert stored()[3:] == [("plan", "failed", t2, t2, "RuntimeError: boom\nTra"), ("post", "ok", t2, t2, None)]
    clock.advance(300)
    recorder.run([("post", ctx, quiet)])
    recorder.flush()
    assert stored()[5:] == [("post", "ok", clock.now(), clock.now(), None)] and recorder.unwritten == []
    with pytest.raises(ValueError, match=r"TurnRecorder\(batch=0\): at least 1"):
        TurnRecorder(batch=0)


def test_when_the_run_records_cannot_be_written_they_are_held_logged_and_written_when_the_table_is_back(
        settings, db, clock, caplog):
    # the ticks go on (their records are not theirs to write); the records that could not be written stay held and
    # go with the next write, so none is lost
    caplog.set_level(logging.INFO, logger="xbot")
    ctxs = [make_ctx(settings, db, clock), make_ctx(settings.replace(account_id="acct2"), db, clock, seed=2)]
    turns: list = []

    def on_tick(now):
        turns.append(now)
        if len(turns) in (1, 2):  # away for the second turn's write, back for the third's
            db.execute("ALTER TABLE job_runs RENAME TO job_runs_away" if len(turns) == 1
                       else "ALTER TABLE job_runs_away RENAME TO job_runs")
        if len(turns) == 3:
            daemon.request_stop()

    daemon = Daemon(ctxs, job_entries(HOURLY), on_tick=on_tick, record_batch=1)
    ticks = daemon.run(until=clock.now() + timedelta(days=1), install_signals=False)
    held = [r.getMessage() for r in caplog.records if r.getMessage().startswith("[DAEMON] run records not written")]
    failed = [r.getMessage() for r in caplog.records if r.getMessage().startswith("[DAEMON] tick failed")]
    with db.connection() as conn:
        rows = conn.execute("SELECT account_id, job, status, started_at FROM job_runs ORDER BY run_id").fetchall()
    assert len(turns) == 3 and len(held) == 1 and "UndefinedTable" in held[0] and "held=" in held[0]
    assert failed == [] and len(rows) == sum(ticks.values()) and {r["status"] for r in rows} <= {"ok", "skipped"}
    assert [r["started_at"] for r in rows] == sorted(r["started_at"] for r in rows)  # in the order they ran
    assert len({r["started_at"] for r in rows}) == 3  # every turn's runs, the held turn's included
