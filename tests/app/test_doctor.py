"""`xbot doctor` as a user runs it: a real subprocess, a clean environment, a scratch working directory."""
from __future__ import annotations

from contextlib import ExitStack

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from helpers import served_over_http

from xbotlib.clock import SystemClock
from xbotlib.config import SETTINGS
from xbotlib.sim.xserver import SandboxX

REPO = Path(__file__).resolve().parents[2]


def clean_env(home: Path, **extra: str) -> dict[str, str]:
    """The process environment without any xbot, X or OpenAI setting, plus ``extra``."""
    names = {s.env for s in SETTINGS}
    env = {k: v for k, v in os.environ.items()
           if k not in names and not k.startswith(("XBOT_", "X_", "OPENAI_"))}
    env.update(XBOT_HOME=str(home), PYTHONPATH=str(REPO), **extra)
    return env


def xbot(args: list[str], cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "xbotlib.app.cli.main", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=180)


@pytest.fixture
def home() -> Path:
    # Outside pytest's basetemp on purpose: as root the embedded server runs as the user 'pgserver',
    # which must traverse the parents of its data directory (pytest keeps its own root at 0700).
    path = Path(tempfile.mkdtemp(prefix="xbot-doctor-home-"))
    yield path / ".xbot"
    shutil.rmtree(path, ignore_errors=True)


def test_no_configuration_uses_the_embedded_database_and_posts_nothing(tmp_path, home):
    result = xbot(["doctor"], tmp_path, clean_env(home))
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "posting mode: disabled" in out
    assert "posting disabled: POSTING_DISABLED=true (the default)" in out
    assert "world for outcomes: sandbox (simulated=true)" in out
    assert "offline template generator (OPENAI_API_KEY unset)" in out
    assert "database: embedded PostgreSQL (pgserver)" in out
    assert "migrations: 0/" in out and "(run `xbot migrate up`)" in out
    from_env = [line.split()[0] for line in out.splitlines() if line.endswith("[env]")]
    assert from_env == ["XBOT_HOME"] and "[.env]" not in out  # everything else is a default
    assert (home / "pgdata" / "PG_VERSION").is_file()  # the data lives under XBOT_HOME, not in the cwd
    assert sorted(p.name for p in tmp_path.iterdir()) == []


def test_posting_enabled_without_live_means_the_sandbox(tmp_path, home, db_url):
    result = xbot(["doctor"], tmp_path, clean_env(home, POSTING_DISABLED="false", XBOT_DATABASE_URL=db_url))
    assert result.returncode == 0, result.stderr
    assert "posting mode: sandbox" in result.stdout
    assert "posting to the sandbox (the in-process sandbox)" in result.stdout
    assert "database: external PostgreSQL (XBOT_DATABASE_URL)" in result.stdout
    n = len(list((REPO / "migrations").glob("*.up.sql")))
    assert f"migrations: {n}/{n} applied" in result.stdout


def test_live_posts_without_an_access_token_is_a_clear_error(tmp_path, home):
    result = xbot(["doctor", "--no-db"], tmp_path, clean_env(home, POSTING_DISABLED="false", LIVE_POSTS="true"))
    assert result.returncode == 2
    assert result.stderr.startswith("xbot: error: LIVE_POSTS=true with POSTING_DISABLED=false needs X_ACCESS_TOKEN")
    assert "Traceback" not in result.stderr and result.stdout == ""


@pytest.mark.parametrize("url", ["mysql://x", "nonsense"])
def test_bad_database_url_is_a_config_error(tmp_path, home, url):
    result = xbot(["doctor"], tmp_path, clean_env(home, XBOT_DATABASE_URL=url))
    assert result.returncode == 2
    assert f"xbot: error: XBOT_DATABASE_URL is not a postgres URL: {url!r}" in result.stderr
    assert "Traceback" not in result.stderr
    assert not home.exists()  # refused before anything was started or created


@pytest.mark.parametrize("under", ["", "sub"])
def test_an_xbot_home_that_is_a_file_is_a_config_error(tmp_path, under):
    afile = tmp_path / "notes.txt"
    afile.write_text("keep me")
    result = xbot(["doctor"], tmp_path, clean_env(afile / under))  # the file itself, or a folder under it
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert f"xbot: error: XBOT_HOME is not a folder: '{afile / under}' ({afile} exists and is not a folder); " \
           "point XBOT_HOME at a folder" in result.stderr
    assert afile.read_text() == "keep me"


def test_unreachable_database_is_reported_not_raised(tmp_path, home):
    url = "postgresql://bot:s3cret-pw@127.0.0.1:1/xbot"
    result = xbot(["doctor"], tmp_path, clean_env(home, XBOT_DATABASE_URL=url))
    assert result.returncode == 1
    assert "database: UNAVAILABLE — cannot connect to PostgreSQL at postgresql://bot:****@127.0.0.1:1/xbot" \
        in result.stdout
    assert "s3cret-pw" not in result.stdout + result.stderr


def test_secrets_are_masked_in_the_report(tmp_path, home):
    secrets = {
        "OPENAI_API_KEY": "sk-proj-abcdefghijklmnopqrst",
        "X_ACCESS_TOKEN": "x-access-0123456789abcdef",
        "X_REFRESH_TOKEN": "x-refresh-fedcba9876543210",
        "X_CLIENT_SECRET": "client-secret-value-42",
        "ADMIN_TOKEN": "admin-hunter2-hunter2",
    }
    url = "postgresql://bot:db-pa55word@127.0.0.1:1/xbot?password=query-pa55word"
    result = xbot(["doctor"], tmp_path, clean_env(home, XBOT_DATABASE_URL=url, **secrets))
    text = result.stdout + result.stderr
    for value in [*secrets.values(), "db-pa55word", "query-pa55word"]:
        assert value not in text
    assert "****qrst" in result.stdout and "[env]" in result.stdout
    assert "OpenAI (gpt-4o-mini)" in result.stdout


def test_dotenv_in_the_working_directory_and_env_precedence(tmp_path, home):
    (tmp_path / ".env").write_text("POSTING_DISABLED=false\nXBOT_ACCOUNT_ID=from_dotenv\nPOSTS_PER_DAY_CAP=5\n")
    result = xbot(["doctor", "--no-db"], tmp_path, clean_env(home, XBOT_ACCOUNT_ID="from_env"))
    assert result.returncode == 0, result.stderr
    lines = {line.split()[0]: line for line in result.stdout.splitlines() if line.startswith("  ") and line.split()}
    assert "from_env" in lines["XBOT_ACCOUNT_ID"] and lines["XBOT_ACCOUNT_ID"].endswith("[env]")
    assert lines["POSTS_PER_DAY_CAP"].split()[1] == "5" and lines["POSTS_PER_DAY_CAP"].endswith("[.env]")
    assert lines["POSTS_PER_HOUR_CAP"].endswith("[default]")
    assert "posting mode: sandbox" in result.stdout


def test_help_helps(tmp_path, home):
    result = xbot(["--help"], tmp_path, clean_env(home))
    assert result.returncode == 0 and "doctor" in result.stdout and "migrate" in result.stdout
    result = xbot(["migrate", "--help"], tmp_path, clean_env(home))
    assert result.returncode == 0 and "--to" in result.stdout and "status" in result.stdout


# ----------------------------------------------------------------------------- posting modes, shadow, the X probe

@pytest.fixture
def served_x():
    """Start the sandbox X over HTTP on loopback (analytics granted or not); to the doctor it is live X."""
    with ExitStack() as stack:
        def serve(analytics: bool) -> tuple[SandboxX, str]:
            sandbox = SandboxX(clock=SystemClock(), seed=3, analytics_enabled=analytics)
            return sandbox, stack.enter_context(served_over_http(sandbox.socket_app()))
        yield serve


TOKEN = "x-user-token-0123456789"
SHADOW = {"POSTING_DISABLED": "false", "LIVE_POSTS": "shadow", "X_ACCESS_TOKEN": TOKEN}


def test_shadow_mode_without_an_llm_key_is_named_and_warned_about(tmp_path, home):
    result = xbot(["doctor", "--no-db"], tmp_path, clean_env(home, **SHADOW))
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "posting mode: shadow" in out
    assert "SHADOW mode against live X at https://api.x.com: POSTING_DISABLED=false and LIVE_POSTS=shadow" in out
    assert "world for outcomes: live (simulated=false)" in out
    assert ("WARNING: LIVE_POSTS=shadow without OPENAI_API_KEY: live X never gets template posts, so the plan job "
            "plans nothing against live X") in out
    assert "X: not probed (--no-db" in out
    assert TOKEN not in out + result.stderr


def test_live_mode_without_an_llm_key_warns_that_nothing_will_ever_be_posted(tmp_path, home):
    result = xbot(["doctor", "--no-db"], tmp_path,
                  clean_env(home, POSTING_DISABLED="false", LIVE_POSTS="true", X_ACCESS_TOKEN=TOKEN))
    assert result.returncode == 0, result.stderr
    assert "posting mode: live" in result.stdout
    warnings = [line for line in result.stdout.splitlines() if line.startswith("WARNING:")]
    assert len(warnings) == 1 and "nothing will ever be posted; set OPENAI_API_KEY" in warnings[0]
    with_key = xbot(["doctor", "--no-db"], tmp_path, clean_env(home, POSTING_DISABLED="false", LIVE_POSTS="true",
                                                              X_ACCESS_TOKEN=TOKEN, OPENAI_API_KEY="sk-test-123456789"))
    assert "WARNING" not in with_key.stdout


@pytest.mark.parametrize("analytics, granted, attribution", [
    (True, "granted", "follows_source='analytics'"),
    (False, "NOT granted to this access level", "follows_source='snapshot_attribution'"),
])
def test_doctor_probes_the_account_and_names_the_attribution(tmp_path, home, db_url, served_x, analytics, granted,
                                                            attribution):
    sandbox, url = served_x(analytics)
    result = xbot(["doctor"], tmp_path, clean_env(home, **SHADOW, X_API_BASE_URL=url, XBOT_DATABASE_URL=db_url,
                                                  OPENAI_API_KEY="sk-test-123456789"))
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    assert "WARNING" not in out
    assert f"X: reached {url} as @" in out
    assert f"per-post analytics (GET /2/tweets/analytics): {granted}" in out
    assert f"collect job attribution: {attribution}" in out
    assert sandbox.requests["GET /2/users/me"] == 1 and sandbox.requests["GET /2/tweets/analytics"] == 1
    assert sandbox.requests.get("POST /2/tweets", 0) == 0  # the doctor only reads
    assert TOKEN not in out + result.stderr


def test_unreachable_x_is_reported_not_raised(tmp_path, home, db_url):
    result = xbot(["doctor"], tmp_path, clean_env(home, **SHADOW, X_API_BASE_URL="http://127.0.0.1:1",
                                                  XBOT_DATABASE_URL=db_url, X_TIMEOUT_S="2"))
    assert result.returncode == 1
    assert "X: UNAVAILABLE at http://127.0.0.1:1 — " in result.stdout
    assert "Traceback" not in result.stderr and TOKEN not in result.stdout + result.stderr
