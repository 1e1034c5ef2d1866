"""A live-world run end to end: xbot's live path against the sandbox X served over HTTP on loopback.

To xbot the served sandbox *is* live X (X_API_BASE_URL, X_AUTHORIZE_URL point at it; POSTING_DISABLED=false,
LIVE_POSTS=true): nothing in-process, no fixed token. The owner signs in with a real `xbot auth login
--no-browser` process whose printed authorize URL is followed like a browser (the sandbox auto-approves and
redirects to the CLI's loopback callback). Live mode posts only LLM-written text, so OpenAI is the local
OpenAI-compatible fake (``xbotlib.devtools.fake_openai``) at OPENAI_BASE_URL.

The sandbox runs on a simulated clock that starts at the wall clock's now (the CLI stamps the first expiry
with the wall clock). The real jobs (plan, post, collect, learn, through ``run_job``, so every tick is in
``job_runs``) run hourly for 3 simulated days with X's 2-hour access tokens: the stored pair is refreshed
ahead of expiry about every 2 hours. Then 4 separate processes run a collect tick at the same moment, just
after the access token expired: they must spend the single-use refresh token exactly once.
"""
from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from helpers import auth_login, served_over_http
from cryptography.fernet import Fernet

from xbotlib.clock import SimClock
from xbotlib.config import load_settings
from xbotlib.devtools.fake_openai import FakeOpenAI
from xbotlib.jobs import collect, learn, plan, post
from xbotlib.jobs.context import build_context
from xbotlib.jobs.runner import run_job
from xbotlib.sim.xserver import SandboxX
from xbotlib.store import tokens

REPO = Path(__file__).resolve().parents[2]
CLIENT = "xbot-live-world-app"
DAYS = 3
TTL_S = 7200  # X's access-token lifetime

pytestmark = pytest.mark.slow


@pytest.fixture
def wall_clock() -> SimClock:
    return SimClock(datetime.now(timezone.utc).replace(microsecond=0))


@pytest.fixture
def served(wall_clock):
    """SandboxX(oauth=True) behind uvicorn on 127.0.0.1: (sandbox, base URL)."""
    sandbox = SandboxX(clock=wall_clock, seed=16, oauth=True, access_token_ttl_s=TTL_S, handle="live_owner")
    with served_over_http(sandbox.socket_app()) as url:
        yield sandbox, url


@pytest.fixture
def openai():
    with FakeOpenAI() as fake:
        yield fake


@pytest.fixture
def env(served, openai, db_url, tmp_path) -> dict[str, str]:
    """The environment of an operator going live, whose 'live X' is the served sandbox."""
    _, url = served
    return {"XBOT_DATABASE_URL": db_url, "XBOT_HOME": str(tmp_path / ".xbot"), "XBOT_ACCOUNT_ID": "acct1",
            "XBOT_SECRET_KEY": Fernet.generate_key().decode(), "X_CLIENT_ID": CLIENT, "X_API_BASE_URL": url,
            "X_AUTHORIZE_URL": f"{url}/i/oauth2/authorize", "X_OAUTH_CALLBACK_PORT": "0",
            "POSTING_DISABLED": "false", "LIVE_POSTS": "true",
            "OPENAI_API_KEY": "sk-live-world-test", "OPENAI_BASE_URL": openai.base_url}


def child_env(env: dict[str, str]) -> dict[str, str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("X_", "XBOT_", "OPENAI_"))}
    return {**clean, **env, "PYTHONPATH": str(REPO)}


def cli_login(env: dict[str, str]) -> str:
    """Run `xbot auth login --no-browser`; act as the owner's browser on the URL it prints. Returns its stdout."""
    proc, _url = auth_login(child_env(env))
    out, err = proc.stdout, proc.stderr
    assert proc.returncode == 0, err[-2000:]
    return out  # auth_login puts the lines it read before the URL in front of the rest


# One collect tick in its own process, on the live path exactly as `xbot job collect --once` builds it, but
# on the test's simulated time (argv[1]); it says it is ready (argv[2].argv[3]) and waits for the file argv[2],
# so that all four start at once.
COLLECT_PROCESS = textwrap.dedent("""
    import os, sys, time
    from datetime import datetime
    from xbotlib.clock import SimClock
    from xbotlib.config import load_settings
    from xbotlib.jobs import collect
    from xbotlib.jobs.context import build_context
    from xbotlib.jobs.runner import run_job
    from xbotlib.store.db import Database
    settings = load_settings()
    db = Database.from_url(settings.database_url, pool_max=2)
    ctx = build_context(settings, db, SimClock(datetime.fromisoformat(sys.argv[1])), worker_id=sys.argv[3])
    assert ctx.world == "live" and ctx.sandbox is None and ctx.x.token_source is not None
    open(sys.argv[2] + "." + sys.argv[3], "w").close()  # ready
    while not os.path.exists(sys.argv[2]):
        time.sleep(0.005)
    result = run_job("collect", ctx, collect.tick)
    print("RESULT", result.status, result.detail.get("stored"), result.detail.get("snapshot"))
    db.close()
""")

TICKS = {"plan": plan.tick, "post": post.tick, "collect": collect.tick, "learn": learn.tick}


def test_live_world_run_three_days_of_rotating_tokens_then_four_processes_refreshing_at_once(
        served, env, openai, db, wall_clock, tmp_path):
    sandbox, _ = served

    # ---- sign in through the CLI's loopback callback
    out = cli_login(env)
    assert "signed in: account 'acct1' = @live_owner" in out
    assert sandbox.oauth.grants["authorization_code"] == 1 and sandbox.oauth.live_pairs() == 1
    settings = load_settings(env=env)
    box = tokens.SecretBox(settings.secret_key)

    ctx = build_context(settings, db, wall_clock, seed=16, worker_id="live-worker")
    assert ctx.world == "live" and not ctx.simulated and ctx.sandbox is None  # the live client, over HTTP
    assert ctx.x.token_source is not None and ctx.llm is not None

    # ---- 3 simulated days, the real jobs hourly (learn every 6 hours, as schedules/jobs.toml has it)
    start = wall_clock.now()
    statuses: dict[str, dict[str, int]] = {name: {} for name in TICKS}
    for hour in range(DAYS * 24):
        if hour:
            wall_clock.advance(timedelta(hours=1))
        for name in ("plan", "post", "collect") + (("learn",) if hour % 6 == 0 else ()):
            result = run_job(name, ctx, TICKS[name])  # a failing tick raises here with X's answer
            statuses[name][result.status] = statuses[name].get(result.status, 0) + 1
    assert wall_clock.now() - start == timedelta(days=DAYS) - timedelta(hours=1)  # the 72nd hourly tick

    # the loop did real work: LLM-written posts went to X, and each was read back
    posted = sandbox.tweets
    assert len(posted) >= 8, statuses
    assert any(r.path.endswith("/chat/completions") and r.status == 200 for r in openai.requests)
    with db.connection() as conn:
        decisions = conn.execute(
            """SELECT pd.decision_id, pd.tweet_id, pd.posted_at, pd.world, cm.generation_source
                 FROM posted_decisions pd JOIN content_metadata cm USING (decision_id)
                WHERE pd.account_id = 'acct1'""").fetchall()
        rows = conn.execute(
            """SELECT o.decision_id, o.collected_pass, o.simulated, o.follows, o.follows_source, o.profile_visits,
                      o.collected_at, pd.tweet_id, pd.posted_at
                 FROM outcomes o JOIN posted_decisions pd USING (decision_id)
                ORDER BY pd.posted_at, o.collected_pass""").fetchall()
        snapshots = conn.execute("SELECT taken_at, followers_count, simulated FROM follower_snapshots "
                                 "WHERE account_id = 'acct1'").fetchall()
    assert {d["tweet_id"] for d in decisions} == {t.tweet_id for t in posted}  # every post is X's, and only those
    assert {d["world"] for d in decisions} == {"live"} and {d["generation_source"] for d in decisions} == {"llm"}

    # ---- every outcome is live (simulated=false) and equals the sandbox's truth
    assert rows and {r["simulated"] for r in rows} == {False}
    passes = {(r["decision_id"], r["collected_pass"]) for r in rows}
    old_enough = [d for d in decisions if wall_clock.now() - d["posted_at"] >= timedelta(hours=24)]
    assert old_enough and all((d["decision_id"], 2) in passes for d in old_enough)
    assert all((d["decision_id"], 1) in passes for d in decisions
               if d["posted_at"] <= wall_clock.now() - timedelta(hours=1))
    # Truth is what the audience had accrued for that tweet at the read: a post keeps accruing for
    # `settle_hours` (72h), so neither pass reads a final total and the comparison is at each row's own
    # collected_at. The collector asks analytics for [first post of the batch, now]; a post earns nothing
    # before it exists, so the window's follows are the post's accrued follows at collected_at. The
    # sandbox grants analytics (its default), so every row's follows are measured, not attributed.
    for r in rows:
        truth = sandbox.audience.metrics_at(r["tweet_id"], r["collected_at"])
        assert r["follows_source"] == "analytics", r
        assert (r["follows"], r["profile_visits"]) == (truth.follows, truth.profile_visits), (r, truth)
        assert r["collected_at"] - r["posted_at"] >= (timedelta(hours=1) if r["collected_pass"] == 1
                                                      else timedelta(hours=24))
    assert sum(r["follows"] for r in rows) > 0 and sum(r["profile_visits"] for r in rows) > 0
    # and the follower snapshots are the account's true follower count at each read
    assert snapshots and {s["simulated"] for s in snapshots} == {False}
    assert all(s["followers_count"] == sandbox.audience.followers_at(s["taken_at"]) for s in snapshots)

    # ---- no job failed; the token pair rotated all along, and exactly one pair is valid at X
    with db.connection() as conn:
        runs = conn.execute("SELECT job, status, count(*) AS n FROM job_runs GROUP BY 1, 2").fetchall()
        pair = tokens.load(conn, "acct1", box)
    assert not [r for r in runs if r["status"] != "ok" and r["status"] != "skipped"], runs
    assert pair.refresh_count >= 30, pair.refresh_count  # 72h of 2-hour tokens: a refresh about every 2 hours
    assert sandbox.oauth.grants["refresh_token"] == pair.refresh_count
    assert sandbox.oauth.grants["invalid_grant"] == 0
    assert sandbox.oauth.live_pairs() == 1 and sandbox.oauth.bearer_ok(pair.access_token)

    # ---- 4 processes at the same moment, just after the access token expired
    wall_clock.set(pair.expires_at + timedelta(seconds=1))
    assert not sandbox.oauth.bearer_ok(pair.access_token)  # X refuses it now: whoever calls first must refresh
    refreshes_before = sandbox.oauth.grants["refresh_token"]
    go = tmp_path / "go"
    procs = [subprocess.Popen([sys.executable, "-c", COLLECT_PROCESS, wall_clock.now().isoformat(), str(go),
                               f"proc-{i}"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                              env=child_env(env), cwd=REPO) for i in range(4)]
    deadline = time.monotonic() + 120
    while not all(Path(f"{go}.proc-{i}").exists() for i in range(4)):  # all four built and waiting at the line
        assert time.monotonic() < deadline and all(p.poll() is None for p in procs), [p.communicate() for p in procs
                                                                                     if p.poll() is not None]
        time.sleep(0.01)
    go.write_text("go")
    results = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0, 0, 0, 0], [err[-1500:] for _, err in results]
    assert all(out.split()[:2] == ["RESULT", "ok"] for out, _ in results), results
    assert sandbox.oauth.grants["refresh_token"] == refreshes_before + 1  # exactly one refresh happened at X
    assert sandbox.oauth.grants["invalid_grant"] == 0
    assert sandbox.oauth.live_pairs() == 1
    with db.connection() as conn:
        final = tokens.load(conn, "acct1", box)
        failed = conn.execute("SELECT count(*) AS n FROM job_runs WHERE status NOT IN ('ok', 'skipped')").fetchone()
        collects = conn.execute("SELECT count(*) AS n FROM job_runs WHERE job = 'collect' AND started_at = %s",
                                (wall_clock.now(),)).fetchone()
    assert final.refresh_count == pair.refresh_count + 1 and sandbox.oauth.bearer_ok(final.access_token)
    assert failed["n"] == 0 and collects["n"] == 4
    # what the four stored is the truth too, stored once (each (post, pass) row by whichever process got there)
    with db.connection() as conn:
        now_rows = conn.execute(
            """SELECT o.follows, o.profile_visits, o.simulated, pd.tweet_id FROM outcomes o
                 JOIN posted_decisions pd USING (decision_id) WHERE o.collected_at = %s""", (wall_clock.now(),)).fetchall()
    stored = sum(int(out.split()[2]) for out, _ in results)
    assert stored == len(now_rows)
    for r in now_rows:
        truth = sandbox.audience.metrics_at(r["tweet_id"], wall_clock.now())
        assert (r["simulated"], r["follows"], r["profile_visits"]) == (False, truth.follows, truth.profile_visits)
