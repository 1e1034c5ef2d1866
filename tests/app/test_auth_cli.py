"""`xbot auth login|status|logout` end to end, against the sandbox X served over HTTP on loopback with OAuth on.

The sandbox runs on a simulated clock that starts at the wall clock's now (the CLI stamps expiries with the
wall clock), so a test can move past the 2-hour expiry. The owner's browser is an httpx GET of the printed
authorize URL: the sandbox auto-approves and redirects to the CLI's loopback callback.
"""
from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import httpx
import pytest
from helpers import auth_login, served_over_http
from cryptography.fernet import Fernet

from xbotlib.clients.xapi import XClient
from xbotlib.clients.xauth import SCOPES, OAuthClient, authorize_url, new_pkce
from xbotlib.clock import SimClock
from xbotlib.config import load_settings
from xbotlib.jobs.context import live_x_client
from xbotlib.sim.xserver import SandboxX
from xbotlib.store import tokens

REPO = Path(__file__).resolve().parents[2]
CLIENT = "xbot-e2e-app"


@pytest.fixture
def wall_clock() -> SimClock:
    return SimClock(datetime.now(timezone.utc).replace(microsecond=0))


@pytest.fixture
def served(wall_clock):
    """SandboxX(oauth=True) behind uvicorn on 127.0.0.1: (sandbox, base URL)."""
    sandbox = SandboxX(clock=wall_clock, seed=4, oauth=True, handle="owner_account")
    with served_over_http(sandbox.socket_app()) as url:
        yield sandbox, url


@pytest.fixture
def env(served, db_url, tmp_path) -> dict[str, str]:
    """The environment of an operator whose 'live X' is the served sandbox."""
    _, url = served
    return {"XBOT_DATABASE_URL": db_url, "XBOT_HOME": str(tmp_path / ".xbot"), "XBOT_ACCOUNT_ID": "acct1",
            "XBOT_SECRET_KEY": Fernet.generate_key().decode(), "X_CLIENT_ID": CLIENT, "X_API_BASE_URL": url,
            "X_AUTHORIZE_URL": f"{url}/i/oauth2/authorize", "X_OAUTH_CALLBACK_PORT": "0",
            "POSTING_DISABLED": "false", "LIVE_POSTS": "true"}


def xbot(env: dict[str, str], *args: str, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "xbotlib.app.cli.main", *args], capture_output=True, text=True,
                          env={**os.environ, **env, "PYTHONPATH": str(REPO)}, timeout=timeout, cwd=REPO)


def login(env: dict[str, str], *extra: str) -> tuple[subprocess.CompletedProcess, str]:
    """`xbot auth login --no-browser` as the operator of ``env``, the owner's browser following its URL."""
    return auth_login({**os.environ, **env, "PYTHONPATH": str(REPO)}, *extra)


def settings_for(env: dict[str, str]):
    return load_settings(env=env)


# ----------------------------------------------------------------------------- the whole flow

def test_login_api_calls_expiry_refresh_and_logout_end_to_end(served, env, db, wall_clock):
    sandbox, url = served
    result, auth_url = login(env)
    assert result.returncode == 0, result.stderr
    assert "code_challenge_method=S256" in auth_url and "offline.access" in auth_url
    assert "signed in: account 'acct1' = @owner_account" in result.stdout
    assert sandbox.oauth.grants["authorization_code"] == 1

    settings = settings_for(env)
    box = tokens.SecretBox(settings.secret_key)
    with db.connection() as conn:
        stored = tokens.load(conn, "acct1", box)
    assert stored.x_user_id == sandbox.user_id and set(stored.scopes.split()) == set(SCOPES)
    assert sandbox.oauth.bearer_ok(stored.access_token)

    status = xbot(env, "auth", "status")
    assert status.returncode == 0 and "@owner_account" in status.stdout and "key:           ok" in status.stdout
    assert stored.access_token not in status.stdout + status.stderr
    assert stored.refresh_token not in status.stdout + status.stderr + result.stdout + result.stderr

    x = live_x_client(settings, db, wall_clock)  # the live world's client: stored tokens
    assert x.token_source is not None and x.me().user_id == sandbox.user_id
    tid = x.create_tweet("Signed in through OAuth 2.0 PKCE; this post went through the live path.")
    assert tid

    wall_clock.advance(timedelta(hours=2, minutes=1))  # past X's 2-hour expiry: refreshed ahead of the call
    assert x.lookup_tweets([tid]).metrics[tid].tweet_id == tid
    assert sandbox.oauth.grants["refresh_token"] == 1
    with db.connection() as conn:
        after = tokens.load(conn, "acct1", box)
    assert after.refresh_count == 1 and after.access_token != stored.access_token
    assert sandbox.oauth.bearer_ok(after.access_token) and not sandbox.oauth.bearer_ok(stored.access_token)

    sandbox.oauth.expire_access_tokens()  # X refuses a token the row still calls fresh: 401 -> refresh -> retry
    assert x.me().user_id == sandbox.user_id
    assert sandbox.oauth.grants["refresh_token"] == 2 and sandbox.oauth.live_pairs() == 1

    fresh = live_x_client(settings, db, wall_clock)  # a new process picks up the rotated pair from the store
    assert fresh.me().user_id == sandbox.user_id and sandbox.oauth.grants["refresh_token"] == 2

    out = xbot(env, "auth", "logout")
    assert out.returncode == 0 and "revoked at X" in out.stdout
    assert sandbox.oauth.live_pairs() == 0
    with db.connection() as conn:
        assert tokens.status(conn, "acct1") == []
    gone = xbot(env, "auth", "status", "--account", "acct1")
    assert gone.returncode == 1 and "not signed in" in gone.stdout


# ----------------------------------------------------------------------------- several processes at once

CHILD = textwrap.dedent("""
    import os, sys, time, hashlib
    from datetime import datetime
    from xbotlib.clock import SimClock
    from xbotlib.config import load_settings
    from xbotlib.jobs.context import live_x_client
    from xbotlib.store.db import Database
    settings = load_settings()
    db = Database.from_url(settings.database_url, pool_max=2)
    x = live_x_client(settings, db, SimClock(datetime.fromisoformat(sys.argv[1])))
    while not os.path.exists(sys.argv[2]):
        time.sleep(0.005)
    me = x.me()
    print("OK", me.user_id, hashlib.sha256(x.access_token.encode()).hexdigest())
    db.close()
""")


def sign_in_directly(sandbox, url: str, settings, db, clock) -> None:
    """A sign-in without the CLI (its own test above): authorize over HTTP, exchange, store."""
    pkce = new_pkce()
    cb = "http://127.0.0.1:8976/callback"
    with OAuthClient(url, CLIENT, clock=clock) as o:
        r = httpx.get(authorize_url(CLIENT, cb, "st", pkce, base=f"{url}/i/oauth2/authorize"))
        code = r.headers["location"].split("code=")[1].split("&")[0]
        grant = o.exchange_code(code, pkce.verifier, cb)
    with db.connection() as conn:
        tokens.save_login(conn, "acct1", tokens.SecretBox(settings.secret_key), grant, now=clock.now(), client_id=CLIENT,
                          x_user_id=sandbox.user_id, username=sandbox.handle)


@pytest.mark.parametrize("why", ["ahead_of_expiry", "on_401"])
def test_four_processes_refreshing_at_once_leave_one_valid_pair_and_no_failure(served, env, db, wall_clock, tmp_path,
                                                                                why):
    sandbox, url = served
    settings = settings_for(env)
    sign_in_directly(sandbox, url, settings, db, wall_clock)
    if why == "ahead_of_expiry":
        wall_clock.advance(timedelta(hours=2))  # every process sees the stored token expire
    else:
        sandbox.oauth.expire_access_tokens()  # the stored token looks fresh; X answers 401
    go = tmp_path / "go"
    procs = [subprocess.Popen([sys.executable, "-c", CHILD, wall_clock.now().isoformat(), str(go)],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                              env={**os.environ, **env, "PYTHONPATH": str(REPO)}, cwd=REPO) for _ in range(4)]
    time.sleep(1.5)  # let them start up and wait at the line
    go.write_text("go")
    results = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0, 0, 0, 0], [err[-800:] for _, err in results]
    lines = [out.split() for out, _ in results]
    assert all(line[0] == "OK" and line[1] == sandbox.user_id for line in lines)
    assert len({line[2] for line in lines}) == 1  # all four ended on the same access token
    assert sandbox.oauth.grants["refresh_token"] == 1 and sandbox.oauth.grants["invalid_grant"] == 0
    assert sandbox.oauth.live_pairs() == 1
    with db.connection() as conn:
        pair = tokens.load(conn, "acct1", tokens.SecretBox(settings.secret_key))
    assert pair.refresh_count == 1 and sandbox.oauth.bearer_ok(pair.access_token)


# ----------------------------------------------------------------------------- keys and errors

def test_login_needs_the_key_before_anything_else(env, served):
    sandbox, _ = served
    no_key = {**env, "XBOT_SECRET_KEY": ""}
    out = xbot(no_key, "auth", "login", "--no-browser", "--timeout", "1")
    assert out.returncode == 2
    assert "XBOT_SECRET_KEY is not set" in out.stderr and "Fernet.generate_key()" in out.stderr
    assert sandbox.oauth.grants["authorization_code"] == 0
    bad = xbot({**env, "XBOT_SECRET_KEY": "short"}, "auth", "status")
    assert bad.returncode == 2 and "XBOT_SECRET_KEY key #1 is not a Fernet key" in bad.stderr and "short" not in bad.stderr


@pytest.mark.parametrize("timeout", ["0", "-5", "nan", "inf"])
def test_login_refuses_a_timeout_that_waits_no_time_or_forever(env, served, timeout):
    sandbox, _ = served
    out = xbot(env, "auth", "login", "--no-browser", "--timeout", timeout)
    assert out.returncode == 2 and "Traceback" not in out.stderr
    assert f"argument --timeout: must be a positive number of seconds, got '{timeout}' (e.g. 300)" in out.stderr
    assert sandbox.oauth.grants["authorization_code"] == 0 and "authorize?" not in out.stdout  # refused before signing in


def test_a_wrong_key_is_named_in_status_and_in_the_live_client(served, env, db, wall_clock):
    sandbox, url = served
    settings = settings_for(env)
    sign_in_directly(sandbox, url, settings, db, wall_clock)
    other = {**env, "XBOT_SECRET_KEY": Fernet.generate_key().decode()}
    status = xbot(other, "auth", "status")
    assert status.returncode == 0 and "WRONG KEY" in status.stdout
    with pytest.raises(tokens.TokenKeyError, match="XBOT_SECRET_KEY does not decrypt"):
        live_x_client(settings_for(other), db, wall_clock).me()


def test_login_without_client_id_and_a_denied_login_fail_clearly(env, served):
    sandbox, _ = served
    out = xbot({**env, "X_CLIENT_ID": "", "LIVE_POSTS": "false"}, "auth", "login", "--no-browser")  # before going live
    assert out.returncode == 2 and "X_CLIENT_ID is not set" in out.stderr
    sandbox.oauth.deny_next = True
    proc = subprocess.Popen([sys.executable, "-m", "xbotlib.app.cli.main", "auth", "login", "--no-browser",
                             "--timeout", "30"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, **env, "PYTHONPATH": str(REPO)}, cwd=REPO)
    url = next(line.strip() for line in proc.stdout if line.strip().startswith("http"))
    httpx.get(url, follow_redirects=True, timeout=30)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 2 and "access_denied" in err


def test_env_tokens_bootstrap_the_store_and_the_first_refresh_is_kept(served, env, db, wall_clock):
    sandbox, url = served
    pkce = new_pkce()
    cb = "http://127.0.0.1:8976/callback"
    with OAuthClient(url, CLIENT, clock=wall_clock) as o:
        r = httpx.get(authorize_url(CLIENT, cb, "st", pkce, base=f"{url}/i/oauth2/authorize"))
        grant = o.exchange_code(r.headers["location"].split("code=")[1].split("&")[0], pkce.verifier, cb)
    boot = settings_for({**env, "X_ACCESS_TOKEN": grant.access_token, "X_REFRESH_TOKEN": grant.refresh_token})
    sandbox.oauth.expire_access_tokens()
    assert live_x_client(boot, db, wall_clock).me().user_id == sandbox.user_id  # 401 -> refresh -> stored
    with db.connection() as conn:
        pair = tokens.load(conn, "acct1", tokens.SecretBox(boot.secret_key))
    assert pair.source == "env" and pair.refresh_count == 1 and sandbox.oauth.bearer_ok(pair.access_token)
    # the next process ignores the (now dead) environment pair and uses the stored one
    assert live_x_client(boot, db, wall_clock).me().user_id == sandbox.user_id
    assert sandbox.oauth.grants["refresh_token"] == 1


def test_without_a_key_environment_tokens_still_work_in_memory(served, env, db, wall_clock):
    sandbox, url = served
    settings = settings_for({**env, "XBOT_SECRET_KEY": "", "X_ACCESS_TOKEN": "not-granted"})
    x = live_x_client(settings, db, wall_clock)
    assert isinstance(x, XClient) and x.token_source is None
