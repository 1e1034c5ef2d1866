"""xbotlib.app.analysis: data access, frames and plots for the notebooks, on a real seeded campaign; and
xbotlib.jobs.once, the job ticks two notebooks can run on request."""
from __future__ import annotations

import re
from datetime import datetime, timezone

import numpy as np
import pandas as pd
import pytest
from matplotlib.figure import Figure

from xbotlib import views
from xbotlib.app import analysis
from xbotlib.app.reports.records import CONTEXT_MIME
from xbotlib.clock import SimClock
from xbotlib.config import load_settings
from xbotlib.jobs import once
from xbotlib.jobs.campaign import CampaignConfig, run_campaign
from xbotlib.store.db import Database
from xbotlib.store.queue import ensure_account


@pytest.fixture(scope="module")
def campaign(pg, tmp_path_factory):
    """A 3-day sandbox campaign (real jobs, in-process sandbox): ~10 s, shared by the module."""
    url = pg.fresh_database()
    home = tmp_path_factory.mktemp("analysis-home")
    db = Database.from_url(url, pool_max=4)
    run = run_campaign(CampaignConfig(days=3, seed=5), load_settings(env={"XBOT_DATABASE_URL": url,
                                                                          "XBOT_HOME": str(home)}), db)
    yield {"db": db, "url": url, "account": run.account_ids[0], "home": home}
    db.close()


def _count(db, sql, *params) -> int:
    return int(db.execute(sql, params)[0]["n"])


# ----------------------------------------------------------------------------- account and world

def test_an_empty_database_says_to_run_the_demo(db):
    with db.connection() as conn, pytest.raises(LookupError, match="xbot demo"):
        analysis.resolve_account(conn)


def test_resolve_account_prefers_given_then_preferred_with_data_then_busiest(campaign):
    db, account = campaign["db"], campaign["account"]
    with db.connection() as conn:
        ensure_account(conn, "idle", datetime(2026, 1, 1, tzinfo=timezone.utc), "UTC")
        assert analysis.resolve_account(conn, account) == account
        assert analysis.resolve_account(conn, "idle") == "idle"  # exists, even without decisions
        assert analysis.resolve_account(conn, None, preferred="idle") == account  # no data: the busiest
        assert analysis.resolve_account(conn, None, preferred=account) == account
        with pytest.raises(LookupError, match=rf"unknown account_id 'nobody'.*{account} \(\d+ decisions\)"):
            analysis.resolve_account(conn, "nobody")
        assert analysis.resolve_world(conn, account) == "sandbox"
        assert analysis.resolve_world(conn, account, "live") == "live"
        with pytest.raises(ValueError, match="unknown world 'mars'"):
            analysis.resolve_world(conn, account, "mars")


# ----------------------------------------------------------------------------- Arrow

def test_adbc_and_copy_read_the_same_outcomes_with_one_schema(campaign):
    db, account = campaign["db"], campaign["account"]
    adbc = analysis.outcomes_arrow(db, account, method="adbc")
    copy = analysis.outcomes_arrow(db, account, method="copy")
    assert adbc.schema == analysis.OUTCOME_SCHEMA
    assert adbc.equals(copy)
    assert adbc.num_rows == _count(db, "SELECT count(*) AS n FROM outcomes WHERE account_id = %s", account) > 0
    df = adbc.to_pandas()
    assert df["simulated"].all() and set(df["collected_pass"]) == {1, 2}
    assert df["local_weekday"].between(0, 6).all() and df["local_hour"].between(0, 23).all()
    assert analysis.outcomes_arrow(db, account, "live").num_rows == 0  # the campaign posted to the sandbox only


@pytest.mark.parametrize("kwargs, match", [({"method": "odbc"}, "method must be"),
                                           ({"world": "prod"}, "unknown world 'prod'")])
def test_outcomes_arrow_refuses_bad_arguments(campaign, kwargs, match):
    with pytest.raises(ValueError, match=match):
        analysis.outcomes_arrow(campaign["db"], campaign["account"], **kwargs)


def _versions(*rows):
    cols = ["predictor_key", "status", "algorithm", "n_samples", "cv_score", "baseline_score"]
    return pd.DataFrame([dict(zip(cols, r)) for r in rows], columns=cols)


def test_the_serving_summary_names_what_serves_or_what_plans_without_it():
    lines = analysis.serving_lines(_versions(
        ("predictor:content:v3", "active", "ridge", 120, 0.0812, 0.0021),
        ("predictor:content:v2", "retired", "ridge", 90, 0.05, 0.0),
        ("predictor:timing:v2", "rejected", "ridge", 120, -0.2, -0.01),
        ("predictor:timing:v1", "rejected", "ridge", 90, -0.3, -0.02)).to_dict("records"))
    assert lines == [
        "content: predictor:content:v3 serves (ridge, 120 samples, cross-validated 0.081 against the baseline's 0.002)",
        "timing: no version serves yet (none of 2 beat predict-the-mean by the serving margin); meanwhile the hour "
        "is chosen without its prior (UCB1 on the outcomes alone, then the growth model)"]
    assert analysis.serving_lines(_versions().to_dict("records")) == [
        "content: no version serves yet (none trained yet); meanwhile the plan job ranks candidate posts by the "
        "bandit's own estimate",
        "timing: no version serves yet (none trained yet); meanwhile the hour is chosen without its prior (UCB1 on "
        "the outcomes alone, then the growth model)"]


def test_frames_agree_with_the_database(campaign):
    db, account = campaign["db"], campaign["account"]
    table = analysis.outcomes_arrow(db, account)
    final = analysis.outcomes_frame(table)
    with db.connection() as conn:
        counts = analysis.campaign_counts(conn, account)
        followers = analysis.followers_daily(conn, account)
        arms = analysis.arm_posteriors(conn, account, "sandbox")
        versions = analysis.model_versions(conn, account)
    assert counts["outcomes_pass2"] == len(final) and counts["outcomes_pass1"] + len(final) == table.num_rows
    assert counts["posts"] == _count(db, "SELECT count(*) AS n FROM posted_decisions WHERE account_id = %s", account)
    last = db.execute("SELECT followers_count FROM follower_snapshots WHERE account_id = %s "
                      "ORDER BY taken_at DESC LIMIT 1", (account,))[0]["followers_count"]
    assert followers["followers"].iloc[-1] == last and len(followers) == 3  # one row per simulated day
    assert followers["gained"].iloc[1:].tolist() == followers["followers"].diff().iloc[1:].astype(int).tolist()
    daily = analysis.daily_metrics(final)
    assert daily["posts"].sum() == len(final)
    assert np.allclose(daily["fpki_pooled"], 1000 * daily["follows"] / daily["impressions"].clip(lower=1))
    # posteriors: every arm's interval holds its mean; pulls add up to the rewards applied
    assert (arms["ci_low"] <= arms["posterior_mean"]).all() and (arms["posterior_mean"] <= arms["ci_high"]).all()
    assert arms["pulls"].sum() == _count(db, "SELECT coalesce(sum(pulls), 0) AS n FROM bandit_arms "
                                             "WHERE account_id = %s AND scope = 'content'", account)
    assert len(versions) == counts["model_versions"] >= 1
    assert set(versions["status"]) <= {"active", "retired", "rejected"}
    rejected = versions["status"] == "rejected"
    assert (versions.loc[rejected, "rejected_reason"].str.len() > 0).all()  # a rejected version says why
    assert (versions.loc[~rejected, "rejected_reason"] == "").all()
    assert (versions["is_active"] == (versions["status"] == "active")).all()
    assert analysis.latest_outcomes(table, 4)["collected_at"].is_monotonic_decreasing


def test_predictor_comparison_scores_every_model_against_its_baseline(campaign):
    db, account = campaign["db"], campaign["account"]
    with db.connection() as conn:
        table = analysis.predictor_comparison(conn, account, "sandbox")
    assert list(table["model"]) == ["ridge", "lightgbm", "logistic", "lightgbm"]
    n = _count(db, "SELECT count(*) AS n FROM outcomes WHERE account_id = %s AND collected_pass = 2", account)
    assert (table["n"] == n).all()
    scored = table.dropna(subset=["score"])
    assert not scored.empty
    assert (scored["beats_baseline"] == (scored["score"] - scored["baseline_score"] > 1e-6)).all()
    assert isinstance(analysis.plot_model_comparison(table), Figure)


def test_persist_runs_the_learn_job_and_records_it(campaign):
    db, account = campaign["db"], campaign["account"]
    before = _count(db, "SELECT count(*) AS n FROM predictors WHERE account_id = %s", account)
    clock = SimClock(datetime(2026, 1, 8, tzinfo=timezone.utc))
    settings = load_settings(env={"XBOT_DATABASE_URL": campaign["url"], "XBOT_HOME": str(campaign["home"])})
    result = once.persist_predictors(db, settings, account, "sandbox", clock)
    after = _count(db, "SELECT count(*) AS n FROM predictors WHERE account_id = %s", account)
    # the learner's own rule decides: new versions only when it trained, a reason when it did not
    assert (result.status == "ok" and after == before + 2) or (result.status == "skipped" and after == before
                                                               and result.reason)
    run = db.execute("SELECT status FROM job_runs WHERE job = 'learn' AND account_id = %s "
                     "ORDER BY run_id DESC LIMIT 1", (account,))[0]
    assert run["status"] == result.status


# ----------------------------------------------------------------------------- experiment lift

def test_lift_report_for_an_estimable_experiment(campaign):
    db, account = campaign["db"], campaign["account"]
    sizes = {r["experiment_id"]: r for r in db.execute(
        """SELECT a.experiment_id, count(*) FILTER (WHERE arm = 'treatment') AS t,
                  count(*) FILTER (WHERE arm = 'control') AS c
             FROM experiment_assignments a JOIN outcomes o ON o.decision_id = a.decision_id AND o.collected_pass = 2
            WHERE a.account_id = %s GROUP BY 1""", (account,))}
    best = max(sorted(sizes), key=lambda e: min(sizes[e]["t"], sizes[e]["c"]))
    assert min(sizes[best]["t"], sizes[best]["c"]) >= 2, sizes
    with db.connection() as conn:
        report = views.experiment_lift(conn, account, best, "sandbox")
    assert report.estimable, report.reason
    assert set(report.table["estimator"]) == {"difference_in_means", "ipw_hajek", "aipw_ridge"}
    assert set(report.table["outcome"]) == {"fpki", "impressions", "reward_composite", "replies"}  # primary + guardrails
    assert ((report.table["ci_low"] <= report.table["estimate"]) & (report.table["estimate"] <= report.table["ci_high"])).all()
    sizes_frame = report.arm_sizes().set_index("arm")["n"]
    assert sizes_frame.to_dict() == {"control": sizes[best]["c"], "treatment": sizes[best]["t"]}
    assert list(report.overlap["arm"]) == ["treatment", "control"]
    assert "simulated outcomes" in report.summary()
    for fig in (analysis.plot_forest(report.table), analysis.plot_balance(report.balance),
                analysis.plot_overlap(report.frame)):
        assert isinstance(fig, Figure) and len(fig.axes) >= 1


def test_lift_report_that_cannot_be_estimated_says_why_and_shows_no_numbers(db):
    with db.connection() as conn:
        ensure_account(conn, "fresh", datetime(2026, 1, 1, tzinfo=timezone.utc), "UTC")
        report = views.experiment_lift(conn, "fresh", "question_cta", "sandbox")
    assert not report.estimable and "need at least 2 units in each arm" in report.reason
    assert report.table.empty and report.balance.empty and report.overlap.empty
    assert "not estimable yet" in report.summary()
    assert report.arm_sizes()["n"].tolist() == [0, 0]
    fig = analysis.plot_forest(report.table, report.reason)
    assert "not estimable yet" in fig.axes[0].texts[0].get_text()


def test_unknown_experiment_lists_the_valid_ids(db):
    with db.connection() as conn, pytest.raises(ValueError, match="unknown experiment 'nope'.*question_cta"):
        views.experiment_lift(conn, "acct", "nope", "sandbox")


# ----------------------------------------------------------------------------- collection (jobs.once)

def test_collect_refuses_a_world_that_is_not_the_accounts_and_stores_nothing(campaign, tmp_path):
    db, account = campaign["db"], campaign["account"]
    snapshots = "SELECT count(*) AS n FROM follower_snapshots WHERE account_id = %s"
    before = _count(db, snapshots, account)
    # the demo's in-process sandbox is gone: these settings reach a fresh sandbox with another user
    settings = load_settings(env={"XBOT_DATABASE_URL": campaign["url"], "XBOT_HOME": str(tmp_path),
                                  "POSTING_DISABLED": "false", "LIVE_POSTS": "false"})
    result = once.collect_once(db, settings, account, SimClock(datetime(2026, 1, 9, tzinfo=timezone.utc)))
    assert result.status == "world_mismatch" and "nothing was collected" in result.message
    assert _count(db, snapshots, account) == before


def test_collect_says_when_x_is_unreachable(db, tmp_path):
    settings = load_settings(env={"XBOT_HOME": str(tmp_path), "POSTING_DISABLED": "false", "LIVE_POSTS": "false",
                                  "X_SANDBOX_URL": "http://127.0.0.1:9", "X_TIMEOUT_S": "1"})
    result = once.collect_once(db, settings, "acct", SimClock(datetime(2026, 1, 9, tzinfo=timezone.utc)))
    assert result.status == "unavailable" and "nothing was collected" in result.message
    assert _count(db, "SELECT count(*) AS n FROM follower_snapshots") == 0


def test_collect_runs_the_collect_job_on_the_accounts_own_sandbox(db, tmp_path):
    settings = load_settings(env={"XBOT_HOME": str(tmp_path), "POSTING_DISABLED": "false", "LIVE_POSTS": "false"})
    clock = SimClock(datetime(2026, 1, 9, tzinfo=timezone.utc))
    result = once.collect_once(db, settings, "acct", clock)
    assert result.status == "ok" and result.detail["snapshot"] is True
    assert _count(db, "SELECT count(*) AS n FROM follower_snapshots WHERE account_id = 'acct' AND simulated") == 1
    assert db.execute("SELECT status FROM job_runs WHERE job = 'collect'")[0]["status"] == "ok"


# ----------------------------------------------------------------------------- pure frames and plots

def _outcomes(rows) -> pd.DataFrame:
    cols = ["posted_at", "local_hour", "local_weekday", "impressions", "follows", "fpki", "novelty",
            "reward_composite", "tweet_id", "decision_type", "hook_pattern", "topic", "content"]
    df = pd.DataFrame(rows, columns=cols)
    df["posted_at"] = pd.to_datetime(df["posted_at"], utc=True)
    return df


def test_daily_metrics_pool_fpki_and_use_the_local_day():
    df = _outcomes([
        ("2026-01-05 23:30", 0, 1, 1000, 2.0, 2.0, 0.5, 1.0, "1", "post", "cta", "ai", "a"),  # UTC+1: Tuesday
        ("2026-01-06 08:00", 9, 1, 3000, 0.0, 0.0, 0.7, 0.2, "2", "post", "plain", "ai", "b"),
        ("2026-01-07 08:00", 9, 2, 0, 0.0, 0.0, 0.9, 0.0, "3", "post", "plain", "ai", "c"),
    ])
    daily = analysis.daily_metrics(df)
    assert daily["day"].dt.strftime("%Y-%m-%d").tolist() == ["2026-01-06", "2026-01-07"]
    assert daily["posts"].tolist() == [2, 1]
    assert daily["fpki_pooled"].tolist() == pytest.approx([1000 * 2 / 4000, 0.0])  # 0 impressions: no division by 0
    assert daily["novelty_mean"].tolist() == pytest.approx([0.6, 0.9])
    assert analysis.window(daily, "day", 1)["posts"].tolist() == [1]
    with pytest.raises(ValueError, match="days must be at least 1"):
        analysis.window(daily, "day", 0)


def test_timing_table_top_posts_and_beats():
    df = _outcomes([
        ("2026-01-05 09:00", 9, 0, 100, 1.0, 10.0, 0.5, 1.0, "1", "post", "cta", "ai", "a"),
        ("2026-01-12 09:00", 9, 0, 100, 3.0, 30.0, 0.5, 3.0, "2", "post", "cta", "ai", "b"),
        ("2026-01-07 21:00", 21, 2, 500, 3.0, 6.0, 0.5, 0.5, "3", "post", "plain", "ai", "c"),
    ])
    table = analysis.timing_table(df)
    assert list(table.index) == list(analysis.WEEKDAYS) and list(table.columns) == [9, 21]
    assert table.loc["Mon", 9] == 2.0 and table.loc["Wed", 21] == 0.5 and np.isnan(table.loc["Tue", 9])
    assert analysis.top_posts(df, 2)["content"].tolist() == ["c", "b"]  # ties on follows: more impressions first
    with pytest.raises(ValueError, match="cannot rank by 'likes'"):
        analysis.top_posts(df, by="likes")
    assert analysis.beats(0.2, 0.1) is True and analysis.beats(0.1, 0.1 + 1e-12) is False
    assert analysis.beats(None, 0.1) is None and analysis.beats(float("nan"), 0.1) is None


@pytest.mark.parametrize("plot, frame", [
    (analysis.plot_followers, pd.DataFrame()), (analysis.plot_daily, pd.DataFrame()),
    (analysis.plot_overlap, pd.DataFrame()), (analysis.plot_balance, pd.DataFrame()),
    (analysis.plot_arm_posteriors, pd.DataFrame()), (analysis.plot_timing_heatmap, pd.DataFrame()),
    (analysis.plot_forest, pd.DataFrame()),
    (analysis.plot_model_comparison, pd.DataFrame(columns=["target", "model", "metric", "score", "baseline_score"])),
])
def test_plots_without_data_say_so_instead_of_raising(plot, frame):
    fig = plot(frame)
    assert isinstance(fig, Figure)
    assert "no" in fig.axes[0].texts[0].get_text()


@pytest.mark.parametrize("account, me, newest, found, problem", [
    ({"x_user_id": "1", "handle": "a"}, ("1", "a"), "t1", True, None),
    ({"x_user_id": None, "handle": None}, ("9", "z"), None, False, None),  # a new account: nothing to contradict
    ({"x_user_id": "1", "handle": "a"}, ("2", "a"), "t1", True, "answers as user 2"),
    ({"x_user_id": None, "handle": "xbot_demo_1"}, ("2", "xbot_sandbox"), None, False, "@xbot_demo_1"),
    ({"x_user_id": "1", "handle": "a"}, ("1", "a"), "t1", False, "newest post"),
])
def test_world_problem(account, me, newest, found, problem):
    got = once.world_problem(account, *me, newest, found)
    assert got is None if problem is None else problem in got


# ----------------------------------------------------------------------------- tables and prose for people

def test_table_formats_for_people_without_changing_the_frame():
    df = pd.DataFrame({"arm": ["control", "treatment"], "n": [1234, 5], "share": [0.125, None],
                       "estimate": [90.5561, -0.0123456], "whole": [2.0, 3.0], "beats": [True, None],
                       "at": pd.to_datetime(["2026-01-01 10:11:12.123456", "2026-01-02 00:00:00.000000"], utc=True),
                       "day": pd.to_datetime(["2026-01-01", "2026-01-02"]), "lift": ["+28.1%", "[-41.6%, +181.0%]"]})
    before = df.copy()
    html = analysis.table(df, percent=["share"]).to_html()
    cells = re.findall(r"<td[^>]*>(.*?)</td>", html)
    assert cells[:9] == ["control", "1,234", "12.5%", "90.6", "2", "yes", "2026-01-01 10:11", "2026-01-01", "+28.1%"]
    assert cells[9:] == ["treatment", "5", "—", "-0.0123", "3", "—", "2026-01-02 00:00", "2026-01-02",
                         "[-41.6%, +181.0%]"]
    assert "row_heading" not in html and "blank level0" not in html  # no index column
    assert df.equals(before)
    assert re.findall(r"<td[^>]*>(.*?)</td>", analysis.table(df[["estimate"]], decimals=1).to_html()) == ["90.6", "-0.0"]
    # a named index is a column people read; an unnamed one is dropped
    assert "<th" in analysis.table(df.set_index("arm")).to_html() and ">control<" in analysis.table(df.set_index("arm")).to_html()


@pytest.mark.parametrize("kwargs, error, match", [
    ({"percent": ["nope"]}, ValueError, r"percent names columns the table does not have: \['nope'\]"),
    ({"decimals": -1}, ValueError, r"decimals must be 'auto', a whole number >= 0"),
])
def test_table_refuses_bad_arguments(kwargs, error, match):
    with pytest.raises(error, match=match):
        analysis.table(pd.DataFrame({"a": [0.5]}), **kwargs)


def test_table_leaves_polars_frames_to_polars():
    pl = pytest.importorskip("polars")
    with pytest.raises(TypeError, match="show a polars frame as it is"):
        analysis.table(pl.DataFrame({"a": [1]}))


def test_report_context_says_what_the_report_read_and_carries_it_for_the_index():
    ctx = analysis.report_context("Growth over the last 7 days for account **demo-1** (sandbox world).",
                                  database="postgresql://postgres:secret@/xbot_demo?host=/tmp/s", account="demo-1",
                                  world="sandbox")
    bundle = ctx._repr_mimebundle_()
    # the sentence already names account and world: only the database is added, its password hidden
    assert bundle["text/markdown"] == ("Growth over the last 7 days for account **demo-1** (sandbox world).\n\n"
                                       "Database `postgresql://postgres:****@/xbot_demo?host=/tmp/s`.")
    assert bundle[CONTEXT_MIME] == {"database": "postgresql://postgres:****@/xbot_demo?host=/tmp/s",
                                    "account": "demo-1", "world": "sandbox"}
    assert "secret" not in str(bundle)
