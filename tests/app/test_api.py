"""The admin API over a real database: auth on every route, figures that match direct SQL on a seeded
history, PATCH validation that leaves data intact, and refusing to start without ADMIN_TOKEN."""
from __future__ import annotations

import base64
import logging
import math
import re
import os
import socket
import subprocess
import sys
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import httpx
import numpy as np
import pytest
from fastapi.testclient import TestClient

from xbotlib.core import vocab
from xbotlib.app.api.app import create_app
from xbotlib.app.api.auth import (REALM, FailureThrottle, admin_token_problem, check_admin_token, is_loopback,
                                  token_matches)
from xbotlib.core.bandit import ArmStats, explore_rate, posterior
from xbotlib.config import ConfigError
from xbotlib.core.features import FEATURE_NAMES
from xbotlib.core.predictors import LastVersion, train_with_fallback
from xbotlib.devtools.seed_history import HistorySpec, seed_history
from xbotlib import views
from xbotlib.store.experiments import ensure_experiments
from xbotlib.store.models import save_version
from xbotlib.views import next_training

TOKEN = "test-admin-token-4f9a0c2b"
ACC = "acct1"
ROOT = Path(__file__).resolve().parents[2]

ROUTES = [
    ("GET", "/api/learning/status", None),
    ("GET", "/api/growth", None),
    ("GET", "/api/metrics", None),
    ("GET", "/metrics", None),
    ("GET", "/api/experiments", None),
    ("PATCH", "/api/experiments/question_cta", {"enabled": True}),
    ("GET", "/api/experiments/question_cta/lift", None),
    ("GET", "/openapi.json", None),
    ("GET", "/docs", None),
]


def basic(user: str, password: str) -> dict:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


BEARER = {"Authorization": f"Bearer {TOKEN}"}
AUTH_CASES = [  # (case, headers, query, expected status)
    ("no header", {}, {}, 401),
    ("wrong bearer", {"Authorization": "Bearer not-the-token"}, {}, 401),
    ("bearer with token prefix only", {"Authorization": f"Bearer {TOKEN[:-1]}"}, {}, 401),
    ("right bearer", BEARER, {}, 200),
    ("basic, token as password", basic("anyone", TOKEN), {}, 200),
    ("basic, wrong password", basic("anyone", "nope"), {}, 401),
    ("basic, token as user name", basic(TOKEN, ""), {}, 401),
    ("basic, not base64", {"Authorization": "Basic ###"}, {}, 401),
    ("token in ?token=", {}, {"token": TOKEN}, 401),
    ("token in ?access_token=", {}, {"access_token": TOKEN}, 401),
]


@pytest.fixture
def api_settings(settings):
    return settings.replace(admin_token=TOKEN)


@pytest.fixture
def history(db, clock):
    """21 days of synthetic history ending at the clock's now, 20:00 (plus a neighbour account)."""
    clock.advance(timedelta(hours=12))  # late in the day, so 'today' has posts
    counts = seed_history(db, HistorySpec(ACC, clock.now(), days=21, seed=3, job_run_days=2))
    seed_history(db, HistorySpec("neighbour", clock.now(), days=10, seed=4, job_runs=False))
    return counts


@pytest.fixture
def schedules_dir(tmp_path):
    d = tmp_path / "schedules"
    d.mkdir()
    (d / "jobs.toml").write_text('[[job]]\nname = "learn"\ncron = "30 */2 * * *"\n')
    return d


@pytest.fixture
def client(api_settings, db, clock, schedules_dir, history):
    return TestClient(create_app(api_settings, db, clock, schedules_dir=schedules_dir), headers=BEARER)


@pytest.fixture
def small_client(api_settings, db, clock):
    """Two days of history: enough rows for validation tests, cheap to seed."""
    seed_history(db, HistorySpec(ACC, clock.now(), days=2, seed=8, job_runs=False))
    seed_history(db, HistorySpec("neighbour", clock.now(), days=1, seed=9, job_runs=False))
    return TestClient(create_app(api_settings, db, clock), headers=BEARER)


def get(client, path, **params):
    r = client.get(path, params=params)
    assert r.status_code == 200, r.text
    return r.json()


# ----------------------------------------------------------------------------- auth

@pytest.mark.parametrize("method,path,body", ROUTES, ids=[f"{m} {p}" for m, p, _ in ROUTES])
def test_every_route_needs_the_admin_token(api_settings, db, clock, history, method, path, body):
    # failures are not slowed down here (free=100): the throttle has its own tests below
    app = create_app(api_settings, db, clock, auth_throttle=FailureThrottle(free=100))
    bare = TestClient(app)
    for case, headers, query, expected in AUTH_CASES:
        r = bare.request(method, path, headers=headers, params=query, json=body)
        assert r.status_code == expected, f"{case}: {r.status_code} {r.text[:200]}"
        if expected == 401:
            assert r.headers["www-authenticate"] == REALM, case
            assert set(r.json()) == {"detail"}, case
    # a malformed body must not be parsed (and answered with 422) before the token is checked
    r = bare.request(method, path, content=b"{not json", headers={"content-type": "application/json"})
    assert r.status_code == 401


@pytest.mark.parametrize("header,ok", [
    (None, False), ("", False), (f"Bearer {TOKEN}", True), (f"bearer  {TOKEN} ", True),
    (f"Token {TOKEN}", False), (f"Bearer {TOKEN}x", False), ("Bearer ünïcode", False),
    ("Basic " + base64.b64encode(f"u:{TOKEN}".encode()).decode(), True),
    ("Basic " + base64.b64encode(f":{TOKEN}".encode()).decode(), True),
    ("Basic " + base64.b64encode(TOKEN.encode()).decode(), False),  # no colon: no password
    ("Basic !!!", False),
])
def test_token_matches(header, ok):
    assert token_matches(header, TOKEN) is ok


def test_non_ascii_token_compares_the_bytes_the_client_sent():
    token = "tökén-ünïcode"
    as_received = "Bearer " + token.encode().decode("latin-1")  # how ASGI servers hand header bytes over
    assert token_matches(as_received, token)
    assert not token_matches("Bearer " + token, token)
    assert not token_matches("Bearer €uro", token)


def test_create_app_refuses_to_start_without_admin_token(settings, db, clock):
    assert settings.admin_token is None
    with pytest.raises(ConfigError, match="ADMIN_TOKEN is not set"):
        create_app(settings, db, clock)


def test_xbot_api_exits_nonzero_without_admin_token(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "ADMIN_TOKEN"}
    r = subprocess.run([sys.executable, "-m", "xbotlib.app.cli.main", "api"], cwd=tmp_path, env=env,
                       capture_output=True, text=True, timeout=60)
    assert r.returncode != 0
    assert "ADMIN_TOKEN is not set" in r.stderr and "refuses to start" in r.stderr


def test_xbot_api_refuses_a_host_that_does_not_resolve_before_the_database(tmp_path):
    env = {**os.environ, "ADMIN_TOKEN": TOKEN, "XBOT_HOME": str(tmp_path / ".xbot")}
    r = subprocess.run([sys.executable, "-m", "xbotlib.app.cli.main", "api", "--host", "no-such-host.invalid"],
                       cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60)
    assert r.returncode == 2 and r.stdout == ""  # was: "xbot admin API on http://no-such-host.invalid…", then exit 3
    assert "xbot: error: cannot listen on --host 'no-such-host.invalid': " in r.stderr and "127.0.0.1" in r.stderr
    assert not (tmp_path / ".xbot" / "pgdata").exists()


def test_xbot_api_serves_over_http_with_the_token(db_url, db, clock, tmp_path):
    seed_history(db, HistorySpec(ACC, clock.now(), days=3, seed=5, job_runs=False))
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**os.environ, "ADMIN_TOKEN": TOKEN, "XBOT_DATABASE_URL": db_url, "XBOT_ACCOUNT_ID": ACC,
           "XBOT_HOME": str(tmp_path / ".xbot"), "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen([sys.executable, "-m", "xbotlib.app.cli.main", "api", "--port", str(port)], cwd=tmp_path,
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        base = f"http://127.0.0.1:{port}"
        for _ in range(300):  # up to ~30 s for the process to import and bind
            try:
                httpx.get(base + "/api/experiments", timeout=1)
                break
            except httpx.TransportError:
                assert proc.poll() is None, proc.communicate()[1]
                time.sleep(0.1)
        assert httpx.get(base + "/api/experiments").status_code == 401
        r = httpx.get(base + "/api/experiments", headers=BEARER)
        assert r.status_code == 200 and {e["experiment_id"] for e in r.json()} >= {"question_cta", "hashtag_1"}
        assert httpx.get(base + "/metrics", auth=("prometheus", TOKEN)).status_code == 200
    finally:
        proc.terminate()
        proc.wait(timeout=20)


# ----------------------------------------------------------------------------- learning status

def test_learning_status_matches_the_database(client, db, clock, api_settings):
    body = get(client, "/api/learning/status")
    now = clock.now()
    created = db.execute("SELECT created_at FROM accounts WHERE account_id = %s", (ACC,))[0]["created_at"]
    age = (now - created).total_seconds() / 86400
    assert body["world"] == "sandbox" and body["account_age_days"] == pytest.approx(21)
    assert body["explore_rate"] == pytest.approx(explore_rate(age)) == pytest.approx(0.05)

    active = db.execute("SELECT kind, version, algorithm, world, cv_score, n_samples FROM predictors "
                        "WHERE account_id = %s AND is_active ORDER BY kind", (ACC,))
    assert [(m["kind"], m["version"], m["algorithm"], m["world"], m["cv_score"], m["n_samples"])
            for m in body["active_models"]] == \
        [(r["kind"], f"v{r['version']}", r["algorithm"], r["world"], r["cv_score"], r["n_samples"]) for r in active]
    assert len(active) == 2 and all(r["n_samples"] > 50 for r in active)
    assert {m["status"] for m in body["active_models"]} == {"active"} and body["rejected_models"] == []

    rows = db.execute("SELECT * FROM bandit_arms WHERE account_id = %s AND world = 'sandbox'", (ACC,))
    by_scope = {}
    for r in rows:
        by_scope.setdefault(r["scope"], {})[r["arm_id"]] = ArmStats(r["arm_id"], r["pulls"], r["reward_sum"],
                                                                    r["reward_sq_sum"], r["weight_sum"])
    expected = {(scope, arm): post for scope, stats in by_scope.items() for arm, post in posterior(stats).items()}
    assert {(a["scope"], a["arm"]) for a in body["arms"]} == set(expected)
    for a in body["arms"]:
        post = expected[(a["scope"], a["arm"])]
        assert a["samples"] == by_scope[a["scope"]][a["arm"]].pulls > 0
        assert a["posterior_mean"] == pytest.approx(post.mean)
        assert a["ci95_low"] == pytest.approx(post.ci_low) and a["ci95_high"] == pytest.approx(post.ci_high)
        assert a["ci95_low"] < a["posterior_mean"] < a["ci95_high"]
    assert {a["scope"] for a in body["arms"]} == {"content", "timing"}

    counts = db.execute("SELECT count(*) AS n, count(*) FILTER (WHERE simulated) AS sim FROM outcomes "
                        "WHERE account_id = %s AND collected_at > %s", (ACC, now - timedelta(days=90)))[0]
    assert body["outcomes_window_days"] == 90
    assert body["outcomes_by_world"] == [{"world": "sandbox", "outcomes": counts["n"], "real": 0,
                                          "simulated": counts["sim"]}]
    assert counts["n"] > 100

    # the learner's growth model, fitted on the same outcomes the plan job reads
    from xbotlib.core import growth_model
    from xbotlib.store.outcomes import post_outcomes
    with db.connection() as conn:
        posts = post_outcomes(conn, ACC, "sandbox", now)
    gm = body["growth_model"]
    assert gm["posts"] == len(posts) > 50 and gm["deciding"] is True and gm["window_days"] == 90
    model = growth_model.fit(posts, now=now)  # aged at the same time as the route ages it
    assert gm["signal"] == model.signal == "profile_visits"
    assert [h["arm"] for h in gm["hooks"]] == list(vocab.HOOK_PATTERNS)
    assert [h["relative_follows"] for h in gm["hooks"]] == pytest.approx(
        [e.relative_follows for e in growth_model.hook_summary(model)])
    assert [h["arm"] for h in gm["hours"]] == [str(h) for h in api_settings.posting_hours]
    for e in gm["hooks"] + gm["hours"]:
        assert 0 < e["low"] < e["relative_follows"] < e["high"]
    # relative to the average arm: the log effects are centred
    assert sum(math.log(e["relative_follows"]) for e in gm["hooks"]) == pytest.approx(0.0, abs=1e-9)


def test_next_training_follows_the_learn_rule(client, db, clock):
    nt = get(client, "/api/learning/status")["next_training"]
    last = db.execute("SELECT trained_through, trained_at FROM predictors WHERE account_id = %s AND kind = 'content' "
                      "AND world = 'sandbox' ORDER BY version DESC LIMIT 1", (ACC,))[0]
    fresh = db.execute("SELECT count(*) AS n FROM outcomes WHERE account_id = %s AND collected_pass = 2 "
                       "AND simulated AND outcome_id > %s", (ACC, last["trained_through"]))[0]["n"]
    assert nt["fresh_outcomes"] == fresh > 0
    assert datetime.fromisoformat(nt["last_trained_at"]) == last["trained_at"]
    assert datetime.fromisoformat(nt["weekly_due_at"]) == last["trained_at"] + timedelta(days=7)
    weekly = clock.now() >= last["trained_at"] + timedelta(days=7)
    due = fresh >= 25 or (weekly and fresh >= 5)
    assert nt["due_now"] is due
    assert nt["outcomes_needed"] == (0 if due else (5 if weekly or fresh < 5 else 25) - fresh)
    # the schedule fixture runs learn at :30 every two hours; the clock says 20:00
    assert datetime.fromisoformat(nt["next_learn_run_at"]) == clock.now().replace(minute=30)


NOW = datetime(2026, 3, 2, 8, 0, tzinfo=timezone.utc)


@pytest.mark.parametrize("fresh,trained_days_ago,due,reason,needed", [
    (3, None, False, "insufficient_new_samples", 2),
    (5, None, True, "first_version", 0),
    (10, 2, False, "waiting_for_retrain", 15),
    (30, 2, True, "new_samples", 0),
    (6, 8, True, "weekly", 0),
    (2, 8, False, "insufficient_new_samples", 3),
])
def test_next_training_rule(fresh, trained_days_ago, due, reason, needed):
    last = None if trained_days_ago is None else LastVersion(3, 100, NOW - timedelta(days=trained_days_ago))
    nt = next_training(world="sandbox", fresh=fresh, last=last, min_new=5, retrain_at=25, now=NOW)
    assert (nt.due_now, nt.reason, nt.outcomes_needed) == (due, reason, needed)
    assert nt.summary.startswith("due" if due else f"after {needed} more outcomes")
    if last:
        assert nt.weekly_due_at == last.trained_at + timedelta(days=7)


def test_explore_rate_of_a_young_account(api_settings, db, clock):
    seed_history(db, HistorySpec(ACC, clock.now(), days=7, seed=6, job_runs=False))
    body = get(TestClient(create_app(api_settings, db, clock), headers=BEARER), "/api/learning/status")
    assert body["explore_rate"] == pytest.approx(0.20 - 0.15 * 7 / 14)


def test_first_model_needs_min_new_samples(api_settings, db, clock):
    """A fresh account without models: 'after N more outcomes', counted against LEARN_MIN_NEW_SAMPLES."""
    with db.connection() as conn:
        conn.execute("INSERT INTO accounts (account_id, created_at) VALUES (%s, %s)", (ACC, clock.now()))
    body = get(TestClient(create_app(api_settings, db, clock), headers=BEARER), "/api/learning/status")
    assert body["active_models"] == [] and body["arms"] == [] and body["outcomes_by_world"] == []
    assert body["rejected_models"] == []
    nt = body["next_training"]
    assert (nt["fresh_outcomes"], nt["outcomes_needed"], nt["due_now"]) == (0, 5, False)
    assert nt["summary"].startswith("after 5 more outcomes")
    assert body["explore_rate"] == pytest.approx(0.20)


def test_status_says_why_no_model_is_served(small_client, db, clock):
    """A version that does not beat predicting the mean is stored but never served; the status says why."""
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(40, len(FEATURE_NAMES))), rng.normal(size=40)  # nothing to learn
    trained = train_with_fallback("reward", X, y, np.ones(40), False, None)
    with db.connection() as conn:
        saved = save_version(conn, ACC, "content", trained, FEATURE_NAMES, 40, "sandbox", None,
                             clock.now() - timedelta(hours=1))
    assert not saved.served
    body = get(small_client, "/api/learning/status")
    assert body["active_models"] == []
    (rejected,) = body["rejected_models"]
    assert (rejected["predictor_key"], rejected["status"]) == (f"predictor:content:v{saved.version}", "rejected")
    assert rejected["rejected_reason"] == saved.verdict.detail
    assert "does not beat the predict-the-mean baseline" in rejected["rejected_reason"]
    assert rejected["cv_score"] == pytest.approx(trained.cv["score"])


# ----------------------------------------------------------------------------- growth

def test_growth_matches_the_database(client, db, clock):
    body = get(client, "/api/growth")
    now = clock.now()
    assert body["simulated"] is True and body["world"] == "sandbox"

    def followers_at(at):
        rows = db.execute("SELECT followers_count FROM follower_snapshots WHERE account_id = %s AND simulated "
                          "AND taken_at <= %s ORDER BY taken_at DESC LIMIT 1", (ACC, at))
        return rows[0]["followers_count"]

    assert body["followers_now"] == followers_at(now)
    assert body["change_1d"] == followers_at(now) - followers_at(now - timedelta(days=1))
    assert body["change_7d"] == followers_at(now) - followers_at(now - timedelta(days=7)) > 0

    daily = db.execute(
        "SELECT DISTINCT ON (d) (taken_at AT TIME ZONE 'UTC')::date AS d, followers_count FROM follower_snapshots "
        "WHERE account_id = %s AND simulated AND taken_at <= %s ORDER BY d DESC, taken_at DESC LIMIT 30", (ACC, now))
    assert [(p["day"], p["followers"]) for p in body["daily"]] == \
        [(r["d"].isoformat(), r["followers_count"]) for r in reversed(daily)]
    assert len(body["daily"]) == 22  # 21 days back from 20:00 touch 22 UTC dates
    assert body["daily"][-1]["followers"] > body["daily"][0]["followers"]

    avg = db.execute(
        "SELECT avg(o.fpki) AS fpki, avg(c.novelty) AS nov, count(*) AS n FROM outcomes o "
        "JOIN content_metadata c USING (decision_id) WHERE o.account_id = %s AND o.collected_pass = 2 "
        "AND o.simulated AND o.collected_at > %s AND o.collected_at <= %s", (ACC, now - timedelta(days=7), now))[0]
    assert body["outcomes_7d"] == avg["n"] > 20
    assert body["fpki_avg_7d"] == pytest.approx(avg["fpki"]) and avg["fpki"] > 0
    assert body["novelty_avg_7d"] == pytest.approx(avg["nov"])

    top = db.execute(
        "SELECT o.decision_id::text AS id, p.tweet_id, c.content, o.follows FROM outcomes o "
        "JOIN content_metadata c USING (decision_id) JOIN posted_decisions p USING (decision_id) "
        "WHERE o.account_id = %s AND o.collected_pass = 2 AND o.simulated AND o.collected_at > %s "
        "ORDER BY o.follows DESC, o.fpki DESC, o.decision_id LIMIT 10", (ACC, now - timedelta(days=30)))
    assert [t["decision_id"] for t in body["top_posts"]] == [r["id"] for r in top]
    for t, r in zip(body["top_posts"], top):
        assert t["tweet_id"] == r["tweet_id"] and t["follows"] == r["follows"]
        assert r["content"].startswith(t["excerpt"]) and 0 < len(t["excerpt"]) <= 80
    assert body["top_posts"][0]["follows"] >= body["top_posts"][-1]["follows"] and body["top_posts"][0]["follows"] > 0


def test_growth_of_the_live_world_never_shows_sandbox_numbers(client):
    body = get(client, "/api/growth", world="live")
    assert body["simulated"] is False
    assert body["followers_now"] is None and body["change_1d"] is None and body["daily"] == []
    assert body["fpki_avg_7d"] is None and body["outcomes_7d"] == 0 and body["top_posts"] == []


# ----------------------------------------------------------------------------- metrics

def test_metrics_match_the_database(client, db, clock, api_settings):
    body = get(client, "/api/metrics")
    now = clock.now()
    today = now.replace(hour=0, minute=0, second=0, microsecond=0)
    assert body["followers_today"] == get(client, "/api/growth")["followers_now"]
    assert body["fpki_avg_7d"] == pytest.approx(get(client, "/api/growth")["fpki_avg_7d"])
    posts = db.execute("SELECT count(*) AS n FROM posted_decisions WHERE account_id = %s AND posted_at >= %s "
                       "AND posted_at <= %s", (ACC, today, now))[0]["n"]
    assert body["posts_today"] == posts > 0
    depth = {r["status"]: r["n"] for r in db.execute(
        "SELECT status, count(*) AS n FROM content_metadata WHERE account_id = %s GROUP BY status", (ACC,))}
    assert body["queue_depth"] == {s: depth.get(s, 0) for s in ("draft", "queued", "posting", "failed")}
    assert body["queue_depth"] == {"draft": 2, "queued": 3, "posting": 0, "failed": 1}
    gates = {r["gate"]: r["n"] for r in db.execute(
        "SELECT gate, count(*) AS n FROM gate_rejections WHERE account_id = %s AND rejected_at > %s "
        "AND rejected_at <= %s GROUP BY gate", (ACC, now - timedelta(hours=24), now))}
    assert body["gate_rejections_24h"] == gates
    spent = db.execute("SELECT coalesce(sum(cost_usd), 0) AS s FROM llm_ledger WHERE account_id = %s "
                       "AND budget_day = %s AND status = 'settled'", (ACC, today.date()))[0]["s"]
    o = body["openai"]
    assert o["spent_usd"] == pytest.approx(spent) and o["reserved_usd"] == pytest.approx(0.005)
    assert o["budget_usd"] == api_settings.openai_daily_budget_usd
    assert o["remaining_usd"] == pytest.approx(o["budget_usd"] - spent - 0.005)
    assert o["backoffs_today"] == 1 and o["circuit_open"] is False
    for job in body["jobs"]:
        last = db.execute("SELECT status, started_at FROM job_runs WHERE job = %s AND account_id = %s "
                          "ORDER BY started_at DESC LIMIT 1", (job["job"], ACC))[0]
        assert job["status"] == last["status"]
        assert datetime.fromisoformat(job["started_at"]) == last["started_at"]
    assert [j["job"] for j in body["jobs"]] == ["plan", "post", "collect", "learn"]


def parse_prometheus(text: str) -> dict[str, float]:
    """Samples by ``name{account="…",world="…",other="…"}`` (that label order), read by the reference parser."""
    from prometheus_client.parser import text_string_to_metric_families  # the reference parser

    samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            order = sorted(sample.labels, key=lambda k: (k not in ("account", "world"), k != "account", k))
            labels = ",".join(f'{k}="{sample.labels[k]}"' for k in order)
            samples[f"{sample.name}{{{labels}}}" if labels else sample.name] = sample.value
    return samples


def test_prometheus_text_carries_the_same_figures(client):
    m = get(client, "/api/metrics")
    r = client.get("/metrics")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain; version=0.0.4")
    s = parse_prometheus(r.text)
    lab = f'account="{ACC}",world="sandbox"'
    assert s[f"xbot_followers{{{lab}}}"] == m["followers_today"]
    assert s[f"xbot_fpki_avg_7d{{{lab}}}"] == pytest.approx(m["fpki_avg_7d"], rel=1e-8)
    assert s[f"xbot_posts_today{{{lab}}}"] == m["posts_today"]
    for status, n in m["queue_depth"].items():
        assert s[f'xbot_queue_depth{{{lab},status="{status}"}}'] == n
    for gate, n in m["gate_rejections_24h"].items():
        assert s[f'xbot_gate_rejections_24h{{{lab},gate="{gate}"}}'] == n
    assert s[f"xbot_openai_spend_usd{{{lab}}}"] == pytest.approx(m["openai"]["spent_usd"])
    assert s[f"xbot_openai_budget_usd{{{lab}}}"] == m["openai"]["budget_usd"]
    assert s[f"xbot_openai_circuit_open{{{lab}}}"] == 0
    assert s[f"xbot_simulated{{{lab}}}"] == 1
    for job in m["jobs"]:
        ts = datetime.fromisoformat(job["started_at"]).timestamp()
        assert s[f'xbot_job_last_run_timestamp{{{lab},job="{job["job"]}"}}'] == pytest.approx(ts)


def test_circuit_open_after_insufficient_quota(api_settings, db, clock):
    seed_history(db, HistorySpec(ACC, clock.now(), days=2, seed=7, job_runs=False, circuit_open_today=True))
    c = TestClient(create_app(api_settings, db, clock), headers=BEARER)
    assert get(c, "/api/metrics")["openai"]["circuit_open"] is True
    assert parse_prometheus(c.get("/metrics").text)[f'xbot_openai_circuit_open{{account="{ACC}",world="sandbox"}}'] == 1


# ----------------------------------------------------------------------------- experiments

def experiments_table(db):
    return db.execute("SELECT * FROM experiments ORDER BY account_id, experiment_id")


def test_experiments_match_the_database(client, db):
    body = get(client, "/api/experiments")
    rows = db.execute("SELECT experiment_id, enabled, allocation, applies_to FROM experiments "
                      "WHERE account_id = %s ORDER BY experiment_id", (ACC,))
    assert [(e["experiment_id"], e["enabled"], e["allocation"], e["applies_to"]) for e in body] == \
        [(r["experiment_id"], r["enabled"], r["allocation"], r["applies_to"]) for r in rows]
    counts = {(r["experiment_id"], r["arm"]): r["n"] for r in db.execute(
        "SELECT experiment_id, arm, count(*) AS n FROM experiment_assignments WHERE account_id = %s "
        "GROUP BY 1, 2", (ACC,))}
    for e in body:
        for arm in ("control", "treatment"):
            assert e["assignments"][arm] == counts.get((e["experiment_id"], arm), 0)
    qc = next(e for e in body if e["experiment_id"] == "question_cta")
    assert qc["assignments"]["control"] > qc["assignments"]["treatment"] > 0  # allocation 0.3


def sync_with_registry(db, clock):
    """Descriptions follow the registry (every job and every change syncs them); the seeded history has its own."""
    with db.connection() as conn:
        ensure_experiments(conn, ACC, clock.now())


def test_patch_experiment_changes_only_that_row(client, db, clock):
    sync_with_registry(db, clock)
    before = experiments_table(db)
    r = client.patch("/api/experiments/question_cta", json={"enabled": False, "allocation": 0.25})
    assert r.status_code == 200, r.text
    assert r.json()["enabled"] is False and r.json()["allocation"] == 0.25
    after = experiments_table(db)
    changed = [(b, a) for b, a in zip(before, after) if b != a]
    assert len(changed) == 1
    b, a = changed[0]
    assert (a["account_id"], a["experiment_id"], a["enabled"], a["allocation"]) == (ACC, "question_cta", False, 0.25)
    assert a["updated_at"] == clock.now() and a["description"] == b["description"]
    # one field at a time leaves the other alone
    r = client.patch("/api/experiments/question_cta", json={"enabled": True})
    assert (r.json()["enabled"], r.json()["allocation"]) == (True, 0.25)


@pytest.mark.parametrize("body", [
    {"allocation": 0}, {"allocation": 1}, {"allocation": 1.5}, {"allocation": -0.1}, {"allocation": "0.3"},
    {"allocation": 0.9999999999999999}, {"allocation": 0.995}, {"allocation": 0.005},  # weights over 100
    {"allocation": True}, {"allocation": None}, {"enabled": None}, {"enabled": "yes"}, {"enabled": 1},
    {}, {"enabled": True, "drop_table": 1}, [], "enabled",
    b'{"allocation": NaN}', b'{"allocation": Infinity}', b"{broken", b"",
], ids=repr)
def test_bad_patch_is_422_and_changes_nothing(small_client, db, body):
    client = small_client
    before = experiments_table(db)
    if isinstance(body, bytes):
        r = client.patch("/api/experiments/question_cta", content=body, headers={"content-type": "application/json"})
    else:
        r = client.patch("/api/experiments/question_cta", json=body)
    assert r.status_code == 422, r.text
    assert experiments_table(db) == before


def test_patch_unknown_experiment_is_404_and_changes_nothing(small_client, db):
    client = small_client
    before = experiments_table(db)
    r = client.patch("/api/experiments/no_such_thing", json={"enabled": True})
    assert r.status_code == 404
    assert "no_such_thing" in r.json()["detail"] and "question_cta" in r.json()["detail"]
    assert experiments_table(db) == before


def test_patch_goes_through_the_registry_and_logs(small_client, db, clock, caplog):
    sync_with_registry(db, clock)
    caplog.set_level(logging.INFO, logger="xbot")
    r = small_client.patch("/api/experiments/hashtag_1", json={"allocation": 0.4})
    assert r.status_code == 200, r.text
    lines = [rec.getMessage() for rec in caplog.records if rec.getMessage().startswith("[EXPERIMENT]")]
    assert lines == ["[EXPERIMENT] updated experiment=hashtag_1 enabled=true allocation=0.4"]
    assert r.json()["allocation"] == 0.4 and r.json()["enabled"] is True


def test_lift_matches_the_views_report(client, db, clock):
    body = get(client, "/api/experiments/question_cta/lift", seed=3)
    with db.connection() as conn:
        report = views.experiment_lift(conn, ACC, "question_cta", "sandbox", seed=3)
    assert report.estimable and body["reason"] is None
    assert (body["account_id"], body["experiment_id"], body["world"], body["simulated"], body["seed"]) == \
        (ACC, "question_cta", "sandbox", True, 3)
    expected = report.table.to_dict("records")
    assert len(body["table"]) == len(expected) == 12  # 4 metrics x (difference in means, IPW, AIPW): the appendix
    for row, want in zip(body["table"], expected):
        assert set(row) == set(views._LIFT_COLUMNS)
        assert (row["outcome"], row["estimator"], row["n_treatment"], row["n_control"]) == \
            (want["outcome"], want["estimator"], want["n_treatment"], want["n_control"])
        for k in ("estimate", "se", "ci_low", "ci_high", "control_mean"):
            assert row[k] == pytest.approx(want[k], rel=1e-12), k
    assert {r["estimator"] for r in body["table"]} == {"difference_in_means", "ipw_hajek", "aipw_ridge"}
    assert body["table"][0]["n_treatment"] > 0 and body["table"][0]["n_control"] > body["table"][0]["n_treatment"]
    # the default seed is 0, like the report's
    default = get(client, "/api/experiments/question_cta/lift")
    with db.connection() as conn:
        seed0 = views.experiment_lift(conn, ACC, "question_cta", "sandbox").table
    assert default["seed"] == 0
    assert [r["estimate"] for r in default["table"]] == pytest.approx(list(seed0["estimate"]), rel=1e-12)


def test_lift_leads_with_the_reports_decision(client, db):
    """The decision the report and the demo summary print: verdict, relative lifts with both intervals,
    guardrails, sample ratio — the same figures (one computation, one seed)."""
    body = get(client, "/api/experiments/question_cta/lift")
    with db.connection() as conn:
        report = views.experiment_lift(conn, ACC, "question_cta", "sandbox")
    want, got = report.decision, body["decision"]
    assert got["verdict"] == want.verdict in ("treatment wins", "treatment loses", "no detectable difference yet")
    assert got["line"] == want.line and got["line"].startswith(want.verdict)
    assert got["primary"]["metric"] == "fpki" and got["primary"]["label"] == "follows per 1,000 impressions"
    assert [g["metric"] for g in got["guardrails"]] == ["impressions", "reward_composite", "replies"]
    for have, m in zip([got["primary"], *got["guardrails"]], want.metrics):
        for k in ("absolute", "absolute_ci_low", "absolute_cs_high", "relative", "relative_ci_low",
                  "relative_cs_low", "relative_cs_high", "control_mean"):
            assert have[k] == pytest.approx(getattr(m, k), rel=1e-12), (m.metric, k)
        assert have["more_posts_per_arm"] == m.more_posts_per_arm
    dr = next(r for r in body["table"] if r["outcome"] == "fpki" and r["estimator"] == "aipw_ridge")
    assert got["primary"]["absolute"] == pytest.approx(dr["estimate"], rel=1e-9)  # the appendix's DR figure
    assert got["srm"]["flagged"] is want.srm.flagged and got["srm"]["p_value"] == pytest.approx(want.srm.p_value)
    assert got["estimator_note"] == report.estimator_note()
    assert get(client, "/api/experiments/late_evening_slot/lift")["decision"] is None  # not estimable


def test_lift_not_estimable_says_why(client, db):
    body = get(client, "/api/experiments/late_evening_slot/lift")  # disabled: nobody assigned
    with db.connection() as conn:
        report = views.experiment_lift(conn, ACC, "late_evening_slot", "sandbox")
    assert body["table"] == [] and body["reason"] == report.reason and report.reason
    live = get(client, "/api/experiments/question_cta/lift", world="live")  # the real X has no outcomes here
    assert live["simulated"] is False and live["table"] == [] and live["reason"]


def test_lift_of_an_unknown_experiment_is_404(small_client):
    r = small_client.get("/api/experiments/no_such_thing/lift")
    assert r.status_code == 404
    assert "no_such_thing" in r.json()["detail"] and "question_cta" in r.json()["detail"]
    assert small_client.get("/api/experiments/question_cta/lift", params={"seed": -1}).status_code == 422
    assert small_client.get("/api/experiments/question_cta/lift", params={"world": "mars"}).status_code == 422


# ----------------------------------------------------------------------------- parameters

@pytest.mark.parametrize("path", ["/api/learning/status", "/api/growth", "/api/metrics", "/metrics",
                                  "/api/experiments", "/api/experiments/question_cta/lift"])
def test_account_and_world_are_validated(small_client, path):
    client = small_client
    assert client.get(path, params={"account_id": "bad id!"}).status_code == 422
    assert client.get(path, params={"account_id": "x" * 65}).status_code == 422
    r = client.get(path, params={"account_id": "nobody"})
    assert r.status_code == 404 and "nobody" in r.json()["detail"]
    if path != "/api/experiments":
        assert client.get(path, params={"world": "mars"}).status_code == 422
    # the neighbour account is reachable by name, and its figures are its own
    r = client.get(path, params={"account_id": "neighbour"})
    assert r.status_code == 200 and ("neighbour" in r.text)


def test_openapi_documents_every_route_and_the_security_schemes(client):
    schema = get(client, "/openapi.json")
    assert set(schema["paths"]) == {"/api/learning/status", "/api/growth", "/api/metrics", "/metrics",
                                    "/api/experiments", "/api/experiments/{experiment_id}",
                                    "/api/experiments/{experiment_id}/lift"}
    assert set(schema["components"]["securitySchemes"]) == {"bearerAuth", "basicAuth"}
    status = schema["paths"]["/api/learning/status"]["get"]["responses"]
    assert status["200"]["content"]["application/json"]["schema"]["$ref"].endswith("/LearningStatus")
    assert "401" in status and "404" in status
    docs = client.get("/docs")
    assert docs.status_code == 200 and "/openapi.json" in docs.text



# ----------------------------------------------------------------------------- hardening: token strength

@pytest.mark.parametrize("token,problem", [
    ("short-token", r"11 characters long \(at least 16"),
    ("x" * 40, r"one character \('x'\) repeated"),
    ("abababababababab", r"only 2 distinct characters"),
    ("password12345678", r"common word 'password'"),
    ("Admin-Admin-Admin-2024", r"common word 'admin'"),
    ("CHANGEME_changeme_1", r"common word 'changeme'"),
    ("1234567890123456", r"keyboard or digit sequence"),
    ("qwertyuiopasdfgh", r"keyboard or digit sequence"),
    ("9876543210987654", r"keyboard or digit sequence"),
])
def test_weak_admin_tokens_are_named_weak(token, problem):
    assert re.search(problem, admin_token_problem(token) or "")


@pytest.mark.parametrize("token", [TOKEN, "Kx9_2mQpL0vN8rTz", "correct horse battery staple", "a1b2c3d4e5f6g7h8"])
def test_strong_admin_tokens_pass(token):
    assert admin_token_problem(token) is None
    assert check_admin_token(token, "0.0.0.0") is None


@pytest.mark.parametrize("host,loopback", [("127.0.0.1", True), ("127.0.0.2", True), ("::1", True), ("[::1]", True),
                                           ("localhost", True), ("0.0.0.0", False), ("::", False),
                                           ("192.168.1.20", False), ("api.example.org", False)])
def test_loopback_hosts(host, loopback):
    assert is_loopback(host) is loopback


def test_weak_token_is_refused_off_loopback_and_warned_about_on_loopback():
    with pytest.raises(ConfigError, match=r"ADMIN_TOKEN is too weak to serve on '0.0.0.0'.*5 characters long.*"
                                          r"secrets.token_urlsafe") as exc:
        check_admin_token("hello", "0.0.0.0")
    assert "'hello'" not in str(exc.value)  # the message never repeats the secret
    warning = check_admin_token("hello", "127.0.0.1")
    assert warning.startswith("warning: ADMIN_TOKEN is weak (it is 5 characters long") and "127.0.0.1" in warning


def test_xbot_api_refuses_a_weak_token_on_a_public_bind_before_touching_the_database(tmp_path):
    env = {**os.environ, "ADMIN_TOKEN": "adminadmin123456", "XBOT_DATABASE_URL": "postgresql://nobody@127.0.0.1:1/x"}
    r = subprocess.run([sys.executable, "-m", "xbotlib.app.cli.main", "api", "--host", "0.0.0.0"], cwd=tmp_path,
                       env=env, capture_output=True, text=True, timeout=60)
    assert r.returncode != 0
    assert "ADMIN_TOKEN is too weak to serve on '0.0.0.0'" in r.stderr and "common word 'admin'" in r.stderr
    assert "adminadmin123456" not in r.stderr and "Traceback" not in r.stderr


# ----------------------------------------------------------------------------- hardening: failed authentications

class Ticks:
    """A monotonic clock the test moves by hand (the throttle's bookkeeping, not the sleeping)."""

    def __init__(self):
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def test_failed_authentications_wait_exponentially_longer_up_to_a_cap():
    t = FailureThrottle(free=3, base=0.5, cap=10.0, monotonic=Ticks())
    assert [t.delay(n) for n in range(1, 11)] == [0, 0, 0, 0.5, 1, 2, 4, 8, 10, 10]
    assert t.delay(10**6) == 10  # no overflow, still the cap


def test_throttle_is_per_address_resets_on_success_and_forgets():
    ticks = Ticks()
    t = FailureThrottle(free=1, base=1.0, cap=8.0, forget_after=60, max_addresses=2, monotonic=ticks)
    assert [t.failed("a") for _ in range(4)] == [0, 1, 2, 4]
    assert t.penalty("a") == 4 and t.penalty("b") == 0 and t.slowed_addresses() == 1
    ticks.t += 3
    assert t.penalty("a") == 1  # what is left of the last wait
    t.succeeded("a")
    assert t.penalty("a") == 0 and t.failed("a") == 0  # a success starts the count again
    assert t.failures_total == 5
    ticks.t += 100
    t.failed("b")
    t.failed("c")  # a third address: stale ones are forgotten to stay within max_addresses
    assert set(t._state) <= {"b", "c"} and len(t._state) <= 2


def test_a_slowed_down_client_does_not_hold_up_the_others(api_settings, db, clock):
    """Client A's failures make it wait (asyncio.sleep); B, with the token, is answered meanwhile."""
    import asyncio  # only this test runs the app on an event loop of its own

    throttle = FailureThrottle(free=1, base=600.0, cap=600.0)
    app = create_app(api_settings, db, clock, auth_throttle=throttle)

    async def scenario() -> None:
        a = httpx.AsyncClient(transport=httpx.ASGITransport(app=app, client=("203.0.113.7", 5000)),
                              base_url="http://api")
        b = httpx.AsyncClient(transport=httpx.ASGITransport(app=app, client=("198.51.100.2", 5000)),
                              base_url="http://api", headers=BEARER)
        async with a, b:
            assert (await a.get("/api/experiments")).status_code == 401  # the first failure is free
            slowed = asyncio.create_task(a.get("/api/experiments"))  # the second waits 600 s
            while throttle.penalty("203.0.113.7") == 0:
                await asyncio.sleep(0)
            r = await b.get("/openapi.json")
            assert r.status_code == 200 and not slowed.done()
            assert throttle.slowed_addresses() == 1
            slowed.cancel()

    asyncio.run(scenario())
    assert throttle.failures_total == 2


# ----------------------------------------------------------------------------- prometheus-client and offline docs

def test_metrics_come_from_prometheus_client_with_counters_named_total(client):
    from prometheus_client.parser import text_string_to_metric_families  # the reference parser

    for _ in range(2):
        assert client.get("/metrics", headers={"Authorization": "Bearer wrong"}).status_code == 401
    r = client.get("/metrics")
    assert r.headers["content-type"] == "text/plain; version=0.0.4; charset=utf-8"
    families = {f.name: f for f in text_string_to_metric_families(r.text)}
    assert families["xbot_api_auth_failures"].type == "counter"
    [total] = [s for s in families["xbot_api_auth_failures"].samples if s.name == "xbot_api_auth_failures_total"]
    assert total.value == 2
    assert "# TYPE xbot_api_auth_failures_total counter" in r.text and "xbot_api_auth_failures_total 2.0" in r.text
    for name in ("xbot_followers", "xbot_queue_depth", "xbot_posts_today", "xbot_gate_rejections_24h",
                 "xbot_openai_backoffs_today", "xbot_job_last_run_timestamp", "xbot_api_auth_slowed_clients"):
        assert families[name].type == "gauge", name
    counters = [f.name for f in families.values() if f.type == "counter"]
    assert counters == ["xbot_api_auth_failures"]
    assert all(s.name.endswith(("_total", "_created")) for f in families.values() if f.type == "counter"
               for s in f.samples)


def test_docs_work_offline_and_ask_a_browser_for_the_token(small_client):
    page = small_client.get("/docs")
    assert page.status_code == 200
    assert "/docs/assets/swagger-ui-bundle.js" in page.text and "/docs/assets/swagger-ui.css" in page.text
    assert "cdn" not in page.text.lower() and "https://" not in page.text
    assert "url: window.location.origin + '/openapi.json'" in page.text  # works from http://user:token@host/docs
    js = small_client.get("/docs/assets/swagger-ui-bundle.js")
    assert js.status_code == 200 and "SwaggerUIBundle" in js.text and len(js.content) > 500_000
    assert small_client.get("/docs/assets/swagger-ui.css").status_code == 200
    bare = TestClient(small_client.app)
    denied = bare.get("/docs/assets/swagger-ui-bundle.js")
    assert denied.status_code == 401
    # Basic first: a browser reads the first scheme and shows its sign-in box for it
    assert denied.headers["www-authenticate"].startswith('Basic realm="xbot"')
    assert bare.get("/docs", auth=("anyone", TOKEN)).status_code == 200
    schemes = small_client.get("/openapi.json").json()["components"]["securitySchemes"]
    assert schemes["bearerAuth"] == {"type": "http", "scheme": "bearer", "description": "ADMIN_TOKEN"}
