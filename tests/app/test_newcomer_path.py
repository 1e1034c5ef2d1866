"""The newcomer path of issue #17, as a person runs it: a short demo in a fresh workspace, then every next
command, the admin API and a Jupyter kernel read the demo's data — no setting but the workspace itself
(XBOT_HOME, so the test never touches the checkout's own .xbot), each command from another folder.

Also the pieces: the workspace's default database, `xbot db start|status|psql|stop`, and "now" of a
simulated world being its latest event.
"""
from __future__ import annotations

import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

import httpx
import pytest

from xbotlib import views
from xbotlib.app.cli.notebooks import free_port
from xbotlib.app.reports.runner import NOTEBOOKS_DIR, ensure_kernel
from xbotlib.config import SETTINGS, load_settings
from xbotlib.devtools.seed_history import HistorySpec, seed_history
from xbotlib.store.db import DatabaseError, default_database, set_default_database, workspace_database

REPO = Path(__file__).resolve().parents[2]
DEMO_DAYS = 3


def clean_env(home: Path, **extra: str) -> dict[str, str]:
    """The environment without any xbot, X or OpenAI setting; only XBOT_HOME (the temp workspace)."""
    names = {s.env for s in SETTINGS}
    env = {k: v for k, v in os.environ.items()
           if k not in names and not k.startswith(("XBOT_", "X_", "OPENAI_", "JUPYTER_"))}
    env.update(XBOT_HOME=str(home), PYTHONPATH=str(REPO), PYTHONUNBUFFERED="1", **extra)
    return env


def xbot(args: list[str], cwd: Path, env: dict[str, str], timeout: float = 600) -> subprocess.CompletedProcess:
    out = subprocess.run([sys.executable, "-m", "xbotlib.app.cli.main", *args], cwd=cwd, env=env,
                         capture_output=True, text=True, timeout=timeout)
    assert "Traceback" not in out.stdout + out.stderr, out.stdout + out.stderr
    return out


@pytest.fixture
def workspace():
    # Outside pytest's basetemp on purpose: as root the embedded server runs as the user 'pgserver',
    # which must traverse the parents of its data directory (pytest keeps its own root at 0700).
    root = Path(tempfile.mkdtemp(prefix="xbot-newcomer-"))
    home = root / ".xbot"
    yield root, home
    subprocess.run([sys.executable, "-m", "xbotlib.app.cli.main", "db", "stop"], env=clean_env(home),
                   capture_output=True, timeout=120)
    shutil.rmtree(root, ignore_errors=True)


@pytest.mark.slow
def test_after_the_demo_every_next_step_reads_the_demos_data(workspace):
    root, home = workspace
    env = clean_env(home)
    demo_dir, elsewhere = root / "clone", root / "somewhere" / "else"
    demo_dir.mkdir()
    elsewhere.mkdir(parents=True)

    demo = xbot(["demo", "--days", str(DEMO_DAYS), "--no-notebooks"], demo_dir, env)
    assert demo.returncode == 0, demo.stdout + demo.stderr
    assert "it is now this workspace's default" in demo.stdout
    assert default_database(home)["database"] == "xbot_demo"
    assert sorted(p.name for p in demo_dir.iterdir()) == []  # nothing lands in the folder it ran from

    started = xbot(["db", "start"], elsewhere, env, timeout=120)
    assert started.returncode == 0, started.stdout + started.stderr
    assert "/xbot_demo?" in started.stdout
    status = xbot(["db", "status"], elsewhere, env)
    assert status.returncode == 0 and "default database: xbot_demo (set by xbot demo" in status.stdout

    listing = xbot(["experiment", "list"], elsewhere, env)
    assert listing.returncode == 0, listing.stdout + listing.stderr
    assert "question_cta" in listing.stdout

    run = xbot(["notebook", "run", "growth_review", "-p", "days", "7"], elsewhere, env)
    assert run.returncode == 0, run.stdout + run.stderr
    assert f"index:    {home / 'reports' / 'index.html'}" in run.stdout  # the workspace's reports
    assert (home / "reports" / "index.html").is_file()

    psql = xbot(["db", "psql", "-tA", "-c", "select count(*) from outcomes"], elsewhere, env)
    assert psql.returncode == 0, psql.stdout + psql.stderr
    outcomes = int(psql.stdout.strip())
    assert outcomes > 0
    latest = xbot(["db", "psql", "-tA", "-F", " ", "-c",
                   "select followers_count, taken_at from follower_snapshots where account_id = 'demo-1' "
                   "order by taken_at desc limit 1"], elsewhere, env)
    followers = int(latest.stdout.split()[0])

    _api_shows_the_demos_followers(elsewhere, env, followers)
    assert _kernel_counts_outcomes(env) == outcomes

    stopped = xbot(["db", "stop"], elsewhere, env, timeout=120)
    assert stopped.returncode == 0 and "the embedded PostgreSQL is stopped" in stopped.stdout
    assert xbot(["db", "status"], elsewhere, env).returncode == 3


def _api_shows_the_demos_followers(cwd: Path, env: dict, followers: int) -> None:
    token = secrets.token_urlsafe(24)
    port = free_port()
    api = subprocess.Popen([sys.executable, "-m", "xbotlib.app.cli.main", "api", "--port", str(port)], cwd=cwd,
                           env={**env, "ADMIN_TOKEN": token}, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                           text=True, start_new_session=True)
    try:
        response, deadline = None, time.monotonic() + 90
        while response is None and time.monotonic() < deadline and api.poll() is None:
            try:
                response = httpx.get(f"http://127.0.0.1:{port}/api/growth", timeout=5,
                                     headers={"Authorization": f"Bearer {token}"})
            except httpx.TransportError:
                time.sleep(0.3)
        assert response is not None, f"xbot api did not answer (exit code {api.poll()})"
        assert response.status_code == 200, response.text
        growth = response.json()
        assert growth["account_id"] == "demo-1" and growth["simulated"] is True
        assert growth["followers_now"] == followers  # read at the demo's own clock, not today's date
        assert growth["daily"] and growth["outcomes_7d"] > 0
    finally:
        os.killpg(api.pid, signal.SIGTERM)  # the session this test started: xbot api
        output = api.communicate(timeout=30)[0]
        assert "Traceback" not in output, output


def _kernel_counts_outcomes(env: dict) -> int:
    """A kernel of the xbot kernelspec (what `xbot lab` opens), started in notebooks/ with no database setting."""
    # imported here: jupyter_client is a test-only need of this one test
    from jupyter_client.manager import start_new_kernel

    km, kc = start_new_kernel(kernel_name=ensure_kernel(), cwd=str(NOTEBOOKS_DIR), env=env)
    try:
        code = ("from xbotlib.app.analysis import frames\n"
                "with frames.connect() as db:\n"
                "    print('OUTCOMES', db.execute('select count(*) as n from outcomes')[0]['n'])\n")
        lines: list[str] = []
        reply = kc.execute_interactive(code, timeout=120,
                                       output_hook=lambda msg: lines.append(msg["content"].get("text", "")))
        assert reply["content"]["status"] == "ok", reply["content"]
        text = "".join(lines)
        assert "Traceback" not in text, text
        return int(text.split("OUTCOMES", 1)[1].split()[0])
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=True)


# ----------------------------------------------------------------------------- the pieces

def test_the_workspace_default_database_is_recorded_and_checked(tmp_path):
    settings = load_settings(env={"XBOT_HOME": str(tmp_path)})
    assert workspace_database(settings) == "postgres"  # nothing recorded: the server's own
    set_default_database(tmp_path, "xbot_demo", set_by="xbot demo")
    assert workspace_database(settings) == "xbot_demo"
    with pytest.raises(ValueError, match="not a database name: 'x; drop'"):
        set_default_database(tmp_path, "x; drop", set_by="test")
    (tmp_path / "database.json").write_text("{not json")
    with pytest.raises(DatabaseError, match=r"database\.json.*delete the file"):
        workspace_database(settings)


def test_live_posting_never_runs_on_the_demos_database(tmp_path):
    set_default_database(tmp_path, "xbot_demo", set_by="xbot demo")
    live = load_settings(env={"XBOT_HOME": str(tmp_path), "POSTING_DISABLED": "false", "LIVE_POSTS": "true",
                              "X_ACCESS_TOKEN": "t" * 20})
    with pytest.raises(DatabaseError, match=r"'xbot_demo', set by `xbot demo`.*live posting never uses it"):
        workspace_database(live)


def test_xbot_home_is_one_place_whichever_folder(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    default = load_settings(env={})
    assert default.home_path == REPO / ".xbot"  # the checkout's, not the current folder's
    # reports go to the checkout's top-level reports/ (the design card's folder) beside the default .xbot
    assert default.reports_path == REPO / "reports" and default.log_path.parent == REPO / ".xbot" / "logs"
    relative = load_settings(env={"XBOT_HOME": "ws"})
    monkeypatch.chdir(REPO)
    assert relative.home_path == tmp_path / "ws"  # a relative XBOT_HOME is taken once, from where it was given


def test_a_simulated_worlds_now_is_its_latest_event_and_live_uses_the_wall_clock(db, clock):
    seed_history(db, HistorySpec("acct1", clock.now(), days=3, seed=2, job_runs=False))
    wall = clock.now() + timedelta(days=400)  # today's date, long after the simulated campaign
    with db.connection() as conn:
        newest = conn.execute("""SELECT greatest((SELECT max(collected_at) FROM outcomes),
                                                 (SELECT max(taken_at) FROM follower_snapshots),
                                                 (SELECT max(posted_at) FROM posted_decisions),
                                                 (SELECT max(created_at) FROM content_metadata)) AS t""").fetchone()["t"]
        assert views.world_now(conn, "acct1", "sandbox", wall) == newest
        assert views.world_now(conn, "acct1", "live", wall) == wall
        assert views.world_now(conn, "nobody", "sandbox", wall) == wall
        assert views.default_account(conn, "default") == "acct1"  # XBOT_ACCOUNT_ID not stored: the busiest
        assert views.default_account(conn, "acct1") == "acct1"


def test_db_commands_refuse_what_they_cannot_do(tmp_path, db_url):
    env = clean_env(tmp_path / ".xbot", XBOT_DATABASE_URL=db_url)
    out = xbot(["db", "start"], tmp_path, env)
    assert out.returncode == 2 and "XBOT_DATABASE_URL is set" in out.stderr
    out = xbot(["db", "url", "-c", "select 1"], tmp_path, env)
    assert out.returncode == 2 and "only `xbot db psql` passes arguments on" in out.stderr
