"""The main job: a campaign through the real jobs is deterministic for a seed, and `xbot demo` ends
with a summary. Also the pieces the demo and the benchmarks add: the true lift for a campaign's own
posts, and the timing arm learning follows per post."""
from __future__ import annotations

import os
import subprocess
import sys
from datetime import datetime, timedelta, timezone

import pandas as pd
import pytest

from xbotlib import views
from xbotlib.config import load_settings
from xbotlib.core import lift, vocab
from xbotlib.jobs.campaign import CAMPAIGN_START, EXPERIMENTS, CampaignConfig, run_campaign
from xbotlib.sim.oracle import Oracle, true_lift_for_posts
from xbotlib.store import arms as bandit_store
from xbotlib.store import queue
from xbotlib.store.db import Database
from xbotlib.store.experiments import lift_frame
from xbotlib.store.models import list_versions
from xbotlib.store.outcomes import first_and_last_followers
from xbotlib.views.experiment_reports import LIFT_SEED

FINGERPRINT = """SELECT cm.content, cm.hook_pattern, cm.timing_arm, pd.posted_at, o.collected_pass, o.impressions,
                        o.follows, o.fpki
                   FROM outcomes o JOIN content_metadata cm USING (decision_id) JOIN posted_decisions pd USING (decision_id)
                  ORDER BY pd.posted_at, pd.tweet_id, o.collected_pass"""


def _campaign(pg, seed: int, days: int = 2) -> tuple[list[dict], tuple[int, int]]:
    with Database.from_url(pg.fresh_database(), pool_max=3) as db:
        run = run_campaign(CampaignConfig(days=days, seed=seed), load_settings(env={}), db)
        with db.connection() as conn:
            followers = first_and_last_followers(conn, run.account_ids[0])
        return db.execute(FINGERPRINT), followers


def test_same_seed_same_campaign_and_another_seed_differs(pg):
    rows_a, followers_a = _campaign(pg, seed=5)
    rows_b, followers_b = _campaign(pg, seed=5)
    rows_c, _ = _campaign(pg, seed=6)
    assert rows_a, "a 2-day campaign must post and collect something"
    assert rows_a == rows_b and followers_a == followers_b
    assert rows_a != rows_c
    assert any(r["impressions"] > 0 for r in rows_a) and all(r["collected_pass"] in (1, 2) for r in rows_a)


def test_the_summary_reads_the_campaign_through_the_store_and_the_one_lift_function(pg):
    """`xbot demo`'s summary (views.account_summary): followers from the snapshots, the newest model of
    each kind, and DR/IPW/DiM on per-post fpki equal to the core estimators on the same lift frame, with
    the report's seed (LIFT_SEED) and the report's verdict: one computation, one seed."""
    with Database.from_url(pg.fresh_database(), pool_max=3) as db:
        run = run_campaign(CampaignConfig(days=3, seed=5), load_settings(env={}), db)
        ctx = run.contexts[0]
        with db.connection() as conn:
            summary = views.account_summary(conn, ctx.settings, ctx.account_id, ctx.world, ctx.clock.now(),
                                            experiment_ids=EXPERIMENTS)
            reports = {e: views.experiment_lift(conn, ctx.account_id, e, ctx.world) for e in EXPERIMENTS}
            assert (summary.followers_first, summary.followers_last) == first_and_last_followers(conn, ctx.account_id)
            versions = list_versions(conn, ctx.account_id)
            frames = {e: lift_frame(conn, ctx.account_id, e, ctx.world) for e in EXPERIMENTS}
    assert summary.model_versions == len(versions)
    newest = {}
    for v in versions:
        newest[v["kind"]] = max(newest.get(v["kind"], 0), v["version"])
    assert {m["kind"]: m["version"] for m in summary.latest_models} == newest
    # under the newest versions: a line for each kind whose newest version does not serve
    active = {v["kind"]: v["version"] for v in versions if v["status"] == "active"}
    assert [line.split(":")[0] for line in summary.serving] == [k for k in ("content", "timing")
                                                               if k in newest and active.get(k) != newest[k]]
    for line in summary.serving:
        kind = line.split(":")[0]
        assert ("no version serves yet" in line) == (kind not in active)
    assert sum(n for _w, _f, n in summary.weekly_fpki) > 0
    assert [r.experiment_id for r in summary.lifts] == list(EXPERIMENTS)
    estimated = 0
    for report in summary.lifts:
        frame = frames[report.experiment_id]
        assert len(report.frame) == len(frame)
        if not report.estimable:
            assert report.reason
            continue
        estimated += 1
        est = views.fpki_estimates(report)
        assert report.seed == LIFT_SEED == 0
        assert report.decision.line == reports[report.experiment_id].decision.line  # the notebook's and API's
        assert report.decision.primary.absolute == pytest.approx(est["dr"], rel=1e-9)
        dr = lift.aipw(frame, "fpki", frame.attrs["covariates"], seed=LIFT_SEED)
        assert (est["dr"], est["ci_low"], est["ci_high"]) == pytest.approx((dr.estimate, dr.ci_low, dr.ci_high))
        assert est["ipw"] == pytest.approx(lift.ipw(frame, "fpki").estimate)
        assert est["dim"] == pytest.approx(lift.difference_in_means(frame, "fpki").estimate)
    assert estimated >= 1, "a 3-day campaign gives at least one estimable experiment"


def test_the_summary_says_what_plans_while_no_version_serves_and_which_older_one_still_does():
    def version(kind, n, status, cv=-0.1):
        return {"kind": kind, "predictor_key": f"predictor:{kind}:v{n}", "status": status, "algorithm": "ridge",
                "n_samples": 15 * n, "cv_score": cv, "baseline_score": 0.0}

    versions = ([version("content", 6, "rejected"), version("content", 5, "rejected"),
                 version("content", 4, "active", cv=0.05)] + [version("timing", n, "rejected") for n in range(6, 0, -1)])
    newest = {"predictor:content:v6", "predictor:timing:v6"}
    assert views.serving_lines(versions, shown=newest, see="the train_predictors report shows why") == [
        "content: predictor:content:v4 serves (ridge, 60 samples, cross-validated 0.050 against the baseline's 0.000)",
        "timing: no version serves yet (none of 6 beat predict-the-mean by the serving margin); meanwhile the hour "
        "is chosen without its prior (UCB1 on the outcomes alone, then the growth model); the train_predictors "
        "report shows why"]
    serving_newest = [version("content", 6, "active", cv=0.05), version("timing", 6, "active", cv=0.02)]
    assert views.serving_lines(serving_newest, shown=newest) == []   # the newest serve: said beside them already


def test_campaign_config_rejects_bad_values():
    for bad, match in ((CampaignConfig(days=0), "--days"), (CampaignConfig(accounts=0), "--accounts"),
                       (CampaignConfig(seed=-1), "--seed must be 0 or more, got -1"),
                       (CampaignConfig(policy="greedy"), "greedy"), (CampaignConfig(allocation=1.0), "allocation")):
        with pytest.raises(ValueError, match=match):
            bad.validate()


def test_xbot_demo_prints_the_summary(tmp_path, pg):
    """The README's main job, shortened: a fresh XBOT_HOME, the embedded database, no configuration."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("XBOT_", "X_", "OPENAI_", "POSTING", "LIVE"))}
    env["XBOT_HOME"] = str(tmp_path / ".xbot")
    out = subprocess.run([sys.executable, "-m", "xbotlib.app.cli.main", "demo", "--days", "2", "--no-notebooks"],
                         cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stdout + out.stderr
    assert any(v in out.stdout for v in ("treatment wins: follows per 1,000 impressions",
                                         "treatment loses: follows per 1,000 impressions",
                                         "no detectable difference yet: follows per 1,000 impressions",
                                         "not estimable yet")), out.stdout
    for expected in ("campaign summary", "account demo-1: followers", "experiment lift on per-post fpki",
                     "question_cta", "growth model (", "(the scenario's best: did_you_know)",
                     "database: postgresql://"):
        assert expected in out.stdout, out.stdout
    assert (tmp_path / ".xbot" / "logs" / "xbot.log").read_text().count("[POSTING] posted") > 0


def test_demo_rejects_a_missing_scenario(tmp_path):
    env = {**os.environ, "XBOT_HOME": str(tmp_path / ".xbot")}
    out = subprocess.run([sys.executable, "-m", "xbotlib.app.cli.main", "demo", "--scenario", "nope.toml"],
                         cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 2 and "nope.toml" in out.stderr


@pytest.mark.parametrize("argv, message", [
    (["--scenario", "{broken}"], "--scenario: {broken}: not valid TOML"),
    (["--scenario", "{binary}"], "--scenario: {binary}: not a UTF-8 text file"),
    (["--seed", "-1"], "--seed must be 0 or more, got -1"),
])
def test_demo_refuses_a_broken_scenario_or_a_negative_seed_before_the_database(tmp_path, argv, message):
    broken, binary = tmp_path / "broken.toml", tmp_path / "binary.toml"
    broken.write_text("name = [\n")
    binary.write_bytes(b"\xd0\xff\x00")
    paths = {"broken": broken, "binary": binary}
    env = {**os.environ, "XBOT_HOME": str(tmp_path / ".xbot")}
    out = subprocess.run([sys.executable, "-m", "xbotlib.app.cli.main", "demo", "--no-notebooks",
                          *[a.format(**paths) for a in argv]],
                         cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 2 and message.format(**paths) in out.stderr and "Traceback" not in out.stderr, out.stderr
    assert not (tmp_path / ".xbot" / "pgdata").exists()  # the demo's database was not recreated


def test_true_lift_for_posts_is_the_oracle_difference_for_those_posts():
    oracle = Oracle(None)
    frame = pd.DataFrame({"hook": ["did_you_know", "plain"], "topic": ["ai", "health"], "local_hour": [11.0, 15.5],
                          "followers": [2000.0, 2500.0], "treatment": [1, 0]})
    expected = sum(oracle.expected(h, int(t), tp, {"question_cta": "treatment"}, followers=f).fpki
                   - oracle.expected(h, int(t), tp, {"question_cta": "control"}, followers=f).fpki
                   for h, tp, t, f in zip(frame.hook, frame.topic, frame.local_hour, frame.followers)) / 2
    assert true_lift_for_posts(oracle, frame, "question_cta") == pytest.approx(expected)
    # late evening: each post's evening hours against the control posts' own (day) hours
    late = true_lift_for_posts(oracle, frame, "late_evening_slot")
    by_hand = sum(
        sum(oracle.expected_fpki(h, e, tp, followers=f) for e in vocab.LATE_EVENING_HOURS) / 3
        - oracle.expected_fpki(h, 15, tp, followers=f)
        for h, tp, f in zip(frame.hook, frame.topic, frame.followers)) / 2
    assert late == pytest.approx(by_hand)
    assert pd.isna(true_lift_for_posts(oracle, frame.iloc[:0], "hashtag_1"))


def test_timing_arm_learns_follows_and_content_arm_the_reward(db, clock):
    """A post's hour is credited with its follows (reach matters for growth); its hook with the reward."""
    now = clock.now()
    with db.connection() as conn:
        queue.ensure_account(conn, "acct1", now)
        for i, (follows, reward) in enumerate(((3.0, 0.4), (1.0, 0.2))):
            d = queue.Decision(account_id="acct1", content=f"Did you know test post number {i} about ai models?",
                               generation_source="template", status="queued", scheduled_at=now, hook_pattern="did_you_know",
                               bandit_arm="did_you_know", timing_arm="11")
            queue.insert_decision(conn, d, now)
            conn.execute("UPDATE content_metadata SET status = 'posting' WHERE decision_id = %s", (str(d.decision_id),))
            queue.record_posted(conn, d.decision_id, "acct1", str(1000 + i), now, "sandbox", now)
            conn.execute("""INSERT INTO outcomes (decision_id, account_id, collected_pass, simulated, impressions, follows,
                                                  reward_composite, collected_at)
                            VALUES (%s, 'acct1', 2, true, 500, %s, %s, %s)""",
                         (str(d.decision_id), follows, reward, now + timedelta(days=1)))
        assert bandit_store.apply_pass2_rewards(conn, "acct1", "sandbox", now) == 2
        timing = bandit_store.load_arms(conn, "acct1", "sandbox", "timing")["11"]
        content = bandit_store.load_arms(conn, "acct1", "sandbox", "content")["did_you_know"]
    assert timing.pulls == 2 and timing.reward_sum == pytest.approx(4.0) and timing.weight_sum == pytest.approx(2.0)
    assert content.reward_sum / content.weight_sum == pytest.approx(0.3)


def test_campaign_start_is_a_monday_utc():
    assert CAMPAIGN_START == datetime(2026, 1, 5, tzinfo=timezone.utc) and CAMPAIGN_START.weekday() == 0
