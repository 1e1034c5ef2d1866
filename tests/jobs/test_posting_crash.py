"""A posting process killed between the call to X and the save — for real.

The sandbox X serves over a real socket (uvicorn, in a thread of this test) and is slow to answer
POST /2/tweets *after* it has created the tweet: the sandbox has no such fault kind, so a small
ASGI middleware ("slow_after_create") holds the response back. `xbot job post --once` runs as a
subprocess; once X holds the tweet and the row is ``posting``, the process gets SIGKILL. The next
`xbot job post --once` must find the tweet at X and save its id — without sending it again.
"""
from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import threading
import time
from datetime import timedelta
from pathlib import Path

import pytest
from helpers import served_over_http

from xbotlib.clock import SystemClock
from xbotlib.store.queue import Decision, insert_decision
from xbotlib.sim.xserver import SandboxX

ROOT = Path(__file__).resolve().parents[2]
TEXT = "Crash test: seven hours of sleep beat any supplement on the shelf, and the data keeps saying so."
WAIT_S = 60  # upper bound for each wait below; the test moves on as soon as the condition holds
ADVISORY_LOCKS = """SELECT count(*) AS n FROM pg_locks WHERE locktype = 'advisory'
                      AND database = (SELECT oid FROM pg_database WHERE datname = current_database())"""


class SlowAfterCreate:
    """ASGI middleware: the first POST /2/tweets is processed in full, then its response is held back."""

    def __init__(self, app):
        self.app = app
        self.release = threading.Event()
        self.armed = True

    async def __call__(self, scope, receive, send):
        if not (self.armed and scope["type"] == "http" and scope["method"] == "POST" and scope["path"] == "/2/tweets"):
            return await self.app(scope, receive, send)
        self.armed = False

        async def held(message):
            if message["type"] == "http.response.start":
                while not self.release.is_set():  # the tweet exists at X; the client keeps waiting
                    await asyncio.sleep(0.05)
            await send(message)
        await self.app(scope, receive, held)


@pytest.fixture
def slow_x():
    """A sandbox X on a free local port whose first post answers only when released."""
    sandbox = SandboxX(clock=SystemClock(), seed=9)
    app = SlowAfterCreate(sandbox.socket_app())
    with served_over_http(app) as url:
        try:
            yield sandbox, app, url
        finally:
            app.release.set()  # a handler still waiting must end before the server can stop


def job_env(db_url: str, x_url: str, home: Path) -> dict[str, str]:
    keep = {k: v for k, v in os.environ.items()
            if not k.startswith(("XBOT_", "OPENAI_", "X_", "POSTING_", "LIVE_", "POSTS_", "PLAN_"))}
    return {**keep, "XBOT_DATABASE_URL": db_url, "XBOT_HOME": str(home), "XBOT_ACCOUNT_ID": "acct1",
            "POSTING_DISABLED": "false", "LIVE_POSTS": "false", "X_SANDBOX_URL": x_url,
            "X_TIMEOUT_S": "120",  # the client waits for X rather than timing out: the kill comes first
            "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}


def wait_for(condition, what: str) -> None:
    deadline = time.monotonic() + WAIT_S
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def test_killed_between_the_call_to_x_and_the_save(slow_x, db, db_url, tmp_path):
    sandbox, _, x_url = slow_x
    clock = SystemClock()
    with db.connection() as conn:
        decision_id = insert_decision(conn, Decision(
            account_id="acct1", content=TEXT, generation_source="template", status="queued",
            scheduled_at=clock.now() - timedelta(minutes=1), hook_pattern="plain", topic="health"), clock.now())

    def status() -> str:
        with db.connection() as conn:
            return conn.execute("SELECT status FROM content_metadata WHERE decision_id = %s",
                                (str(decision_id),)).fetchone()["status"]

    env = job_env(db_url, x_url, tmp_path / ".xbot")
    cmd = [sys.executable, "-m", "xbotlib.app.cli.main", "job", "post", "--once"]
    first = subprocess.Popen(cmd, env=env, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        wait_for(lambda: len(sandbox.tweets) == 1 or first.poll() is not None, "X to create the tweet")
        assert first.poll() is None, f"the job ended before the kill: {first.communicate()}"
        assert status() == "posting"
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=WAIT_S)
    finally:
        if first.poll() is None:
            first.kill()
    assert first.returncode == -signal.SIGKILL

    # the state a crash leaves: X holds the tweet, the database only knows it was being posted
    assert [t.text for t in sandbox.tweets] == [TEXT]
    assert status() == "posting"
    with db.connection() as conn:
        assert conn.execute("SELECT count(*) AS n FROM posted_decisions").fetchone()["n"] == 0
    # the killed process's database session is gone (and its in-flight lock with it)
    wait_for(lambda: db.execute(ADVISORY_LOCKS)[0]["n"] == 0,
             "the killed worker's session to end")

    second = subprocess.run(cmd, env=env, cwd=tmp_path, capture_output=True, text=True, timeout=WAIT_S * 2,
                            check=False)
    assert second.returncode == 0, second.stderr
    assert second.stdout.startswith("post: ok"), second.stdout
    assert '"reconciled": 1' in second.stdout
    assert "[POSTING] reconciled decision_id=" in second.stderr

    tweets = sandbox.tweets
    assert [t.text for t in tweets] == [TEXT], "exactly one tweet at X"
    assert sandbox.requests["POST /2/tweets"] == 1, "never sent twice"
    assert status() == "posted"
    with db.connection() as conn:
        saved = conn.execute("SELECT tweet_id, reconciled, world FROM posted_decisions WHERE decision_id = %s",
                             (str(decision_id),)).fetchone()
        runs = conn.execute("SELECT status FROM job_runs WHERE job = 'post' ORDER BY run_id").fetchall()
    assert saved == {"tweet_id": tweets[0].tweet_id, "reconciled": True, "world": "sandbox"}
    # the killed run left an honest record: still 'running' (it never finished), then the ok one
    assert [r["status"] for r in runs] == ["running", "ok"]
