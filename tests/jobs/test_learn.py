"""The learn job on the real database: when it trains, what it stores, the LightGBM fallback, worlds."""
from __future__ import annotations

import logging
import uuid
from datetime import datetime, timedelta, timezone

import numpy as np
import pytest

from xbotlib.store import queue
from xbotlib.core import vocab
from xbotlib.core.features import LocalEmbedder, extract_features
from xbotlib.jobs.context import JobContext
from xbotlib.jobs import learn
from xbotlib.core.predictors import LastVersion, should_train
from xbotlib.core.reward import outcome_reward
from xbotlib.clients.generation import TemplateGenerator
from xbotlib.jobs import plan
from xbotlib.jobs.context import build_context
from xbotlib.jobs.runner import run_job
from xbotlib.sim.xserver import SandboxX
from xbotlib.store import models as predictor_store

NOW = datetime(2026, 3, 2, 8, 0, tzinfo=timezone.utc)
ACCOUNT = "acct1"


@pytest.mark.parametrize("fresh, last_age_days, expected", [
    (4, None, (False, "insufficient_new_samples")),
    (5, None, (True, "first_version")),
    (4, 30, (False, "insufficient_new_samples")),    # even weekly needs 5 fresh
    (24, 1, (False, "waiting_for_retrain")),
    (25, 1, (True, "new_samples")),
    (5, 7, (True, "weekly")),
    (6, 6.9, (False, "waiting_for_retrain")),
])
def test_should_train(fresh, last_age_days, expected):
    last = None if last_age_days is None else LastVersion(3, 100, NOW - timedelta(days=last_age_days))
    d = should_train(fresh, last, NOW, min_new=5, retrain_at=25)
    assert (d.train, d.reason) == expected


_gen = TemplateGenerator(0)
_emb = LocalEmbedder()


def seed_outcomes(db, n: int, *, world: str = "sandbox", seed: int = 0, now: datetime = NOW,
                  rates: tuple[float, float] = (2.5, 0.8)) -> None:
    """Posted decisions (real template texts, stored feature records) with pass-2 outcomes whose
    follows depend on the hook, as the collector would store them: ``rates`` are follows per 1,000
    impressions for did_you_know and for the other hooks (equal rates: nothing to learn)."""
    rng = np.random.default_rng(seed)
    weights = {"fpki": 0.5, "retweet_rate": 0.3, "reply_rate": 0.15, "novelty": 0.05, "dup_penalty": 0.1}
    with db.connection() as conn:
        queue.ensure_account(conn, ACCOUNT, now)
        for i in range(n):
            hook, topic = vocab.HOOK_PATTERNS[rng.integers(6)], vocab.TOPICS[rng.integers(5)]
            hour = int(rng.choice(vocab.DEFAULT_POSTING_HOURS))
            text = _gen.candidates(hook, topic, 1, rng=rng)[0].text
            f = extract_features(text, embedding=_emb.embed([text])[0], recent_embeddings=None, novelty_min=0.15,
                                 topic=topic, hour=hour)
            posted_at = (now - timedelta(days=2)).replace(hour=hour)
            d = queue.Decision(account_id=ACCOUNT, content=text, generation_source="template", status="queued",
                               topic=topic, hook_pattern=f.hook, novelty=f.novelty, readability=f.readability,
                               sentiment=f.sentiment, features=f.to_dict(), bandit_arm=hook, timing_arm=str(hour),
                               scheduled_at=posted_at)
            did = queue.insert_decision(conn, d, now)
            conn.execute("UPDATE content_metadata SET status = 'posted' WHERE decision_id = %s", (did,))
            conn.execute("INSERT INTO posted_decisions (decision_id, account_id, tweet_id, world, posted_at) "
                         "VALUES (%s, %s, %s, %s, %s)", (did, ACCOUNT, str(uuid.uuid4().int)[:19], world, posted_at))
            impressions = int(rng.integers(300, 2000))
            follows = float(rng.poisson(impressions / 1000 * (rates[0] if hook == "did_you_know" else rates[1])))
            counts = {"impressions": impressions, "likes": int(rng.poisson(impressions * 0.015)),
                      "retweets": int(rng.poisson(impressions * 0.002)), "replies": int(rng.poisson(impressions * 0.0015)),
                      "quotes": 0, "bookmarks": int(rng.poisson(1)), "follows": follows}
            r = outcome_reward(counts, f.novelty, 0.0, weights)
            conn.execute(
                """INSERT INTO outcomes (decision_id, account_id, collected_pass, simulated, impressions, likes,
                       retweets, replies, quotes, bookmarks, profile_visits, follows, follows_source, er, fpki,
                       retweet_rate, reply_rate, novelty, reward_composite, sample_weight, collected_at)
                   VALUES (%s, %s, 2, %s, %s, %s, %s, %s, %s, %s, %s, %s, 'analytics', %s, %s, %s, %s, %s, %s, %s, %s)""",
                (did, ACCOUNT, world != "live", impressions, counts["likes"], counts["retweets"], counts["replies"],
                 0, counts["bookmarks"], int(follows * 8), follows, r["er"], r["fpki"], r["retweet_rate"],
                 r["reply_rate"], f.novelty, r["reward_composite"], r["sample_weight"], now))


def ctx_for(settings, db, clock, world: str = "sandbox") -> JobContext:
    return JobContext(settings=settings, db=db, clock=clock, account_id=ACCOUNT, world=world)


def learn_lines(caplog) -> list[str]:
    return [m for m in caplog.messages if m.startswith("[LEARN_JOB]")]


def test_first_version_needs_five_then_25_more(settings, db, clock, caplog):
    caplog.set_level(logging.INFO, logger="xbot")
    ctx = ctx_for(settings, db, clock)
    seed_outcomes(db, 4, seed=1)
    r = learn.tick(ctx)
    assert r.status == "skipped" and r.reason == "insufficient_new_samples"
    assert "[LEARN_JOB] skipped reason=insufficient_new_samples fresh=4 need=5" in learn_lines(caplog)[-1]
    assert db.execute("SELECT count(*) AS n FROM predictors")[0]["n"] == 0

    seed_outcomes(db, 2, seed=2)
    r = learn.tick(ctx)
    # six outcomes train v1 of both, and neither beats predicting the mean: stored, not served
    assert r.status == "ok" and r.detail["version"] == 1 and r.detail["served"] == []
    assert [m.split(" reason=")[0] for m in learn_lines(caplog)[-2:]] == [
        "[LEARN_JOB] rejected version=v1 kind=content", "[LEARN_JOB] rejected version=v1 kind=timing"]
    rows = db.execute("SELECT * FROM predictors ORDER BY kind")
    assert [r_["predictor_key"] for r_ in rows] == ["predictor:content:v1", "predictor:timing:v1"]
    for row in rows:
        assert row["n_samples"] == 6 and row["world"] == "sandbox" and not row["is_active"]
        assert row["rejected_reason"].startswith("cv ") and "does not beat the predict-the-mean baseline" in row["rejected_reason"]
        assert row["metrics"]["serving"]["reason"] == "below_baseline"
        assert row["algorithm"] == "ridge" and row["cv_score"] is not None and row["baseline_score"] is not None
        assert row["model"] is not None and row["trained_through"] is not None
    content = rows[0]
    assert "hook_did_you_know" in content["features"] and "hour_sin" in rows[1]["features"]
    assert content["metrics"]["follows_logistic_cv"]["metric"] == "neg_log_loss"

    assert learn.tick(ctx).reason == "insufficient_new_samples"   # nothing new since v1: a rejection counts
    seed_outcomes(db, 10, seed=3)
    r = learn.tick(ctx)
    assert r.reason == "waiting_for_retrain" and r.detail == {"fresh": 10, "need": 25, "world": "sandbox"}
    seed_outcomes(db, 55, seed=4, rates=(8.0, 0.5))   # a strong hook effect: the content model learns it
    r = learn.tick(ctx)
    assert r.status == "ok" and r.detail["version"] == 2 and r.detail["content"]["n"] == 71
    assert r.detail["content"]["verdict"] == "first_served" and r.detail["timing"]["verdict"] == "below_baseline"
    assert learn_lines(caplog)[-1].startswith("[LEARN_JOB] coeffs_updated=v2")
    assert "timing=rejected" in learn_lines(caplog)[-1]
    active = db.execute("SELECT predictor_key FROM predictors WHERE is_active ORDER BY kind")
    assert [a["predictor_key"] for a in active] == ["predictor:content:v2"]


def test_every_candidate_loses_to_the_baseline_and_the_plan_job_still_plans(settings, db, clock, caplog):
    """Follows that do not depend on anything the models see: no version is served, the plan job
    ranks without a predictor (the bandit's own estimate), and every version says why."""
    caplog.set_level(logging.INFO, logger="xbot")
    settings = settings.replace(learn_use_lightgbm=True)
    ctx = ctx_for(settings, db, clock)
    seed_outcomes(db, 60, seed=11, rates=(1.0, 1.0))
    r = learn.tick(ctx)
    assert r.status == "ok" and r.detail["served"] == []
    assert {k: r.detail[k]["verdict"] for k in ("content", "timing")} == {"content": "below_baseline",
                                                                          "timing": "below_baseline"}
    rejected = [m for m in learn_lines(caplog) if m.startswith("[LEARN_JOB] rejected")]
    assert len(rejected) == 2 and all("reason=below_baseline cv=" in m and " baseline=" in m for m in rejected)
    assert not any(m.startswith("[LEARN_JOB] coeffs_updated") for m in learn_lines(caplog))
    with db.connection() as conn:
        assert predictor_store.load_active(conn, ACCOUNT, "content", "sandbox") is None
        assert predictor_store.load_active(conn, ACCOUNT, "timing", "sandbox", target="follows") is None
        versions = predictor_store.list_versions(conn, ACCOUNT)
    assert [(v["predictor_key"], v["status"]) for v in versions] == [("predictor:content:v1", "rejected"),
                                                                       ("predictor:timing:v1", "rejected")]

    planned = run_job("plan", build_context(settings, db, clock, sandbox=SandboxX(clock=clock, seed=3), seed=3),
                      plan.tick)
    assert planned.status == "ok" and planned.detail["queued"] >= 1
    queued = db.execute("SELECT decision_type, predicted_reward, predictor_version, bandit_arm FROM content_metadata "
                        "WHERE status = 'queued'")
    assert queued and all(q["predictor_version"] is None and q["predicted_reward"] is None for q in queued)
    assert all(q["bandit_arm"] in vocab.HOOK_PATTERNS for q in queued if q["decision_type"] == "post")


def test_a_version_that_beats_the_baseline_and_the_active_one_is_served(settings, db, clock):
    ctx = ctx_for(settings, db, clock)
    seed_outcomes(db, 40, seed=21, rates=(8.0, 0.5))
    first = learn.tick(ctx)
    assert first.detail["content"]["served"] and first.detail["content"]["verdict"] == "first_served"
    seed_outcomes(db, 200, seed=22, rates=(8.0, 0.5))   # the same effect, measured on five times the data
    second = learn.tick(ctx)
    c1, c2 = first.detail["content"], second.detail["content"]
    with db.connection() as conn:
        v1, v2 = (conn.execute("SELECT metrics FROM predictors WHERE predictor_key = %s", (k,)).fetchone()["metrics"]
                  for k in (c1["key"], c2["key"]))
    assert v2["cv"]["score_se"] < v1["cv"]["score_se"]
    assert c2["verdict"] == "beats_baseline_and_active" and v2["serving"]["active_version"] == c1["version"]
    with db.connection() as conn:
        assert predictor_store.load_active(conn, ACCOUNT, "content", "sandbox").version == c2["version"]
        statuses = {v["predictor_key"]: v["status"] for v in predictor_store.list_versions(conn, ACCOUNT, "content")}
    assert statuses == {c1["key"]: "retired", c2["key"]: "active"}


def test_weekly_retrain_with_few_fresh_samples(settings, db, clock):
    ctx = ctx_for(settings, db, clock)
    seed_outcomes(db, 6, seed=1)
    assert learn.tick(ctx).detail["version"] == 1   # rejected (six outcomes), but trained: the clock starts
    seed_outcomes(db, 5, seed=2)
    assert learn.tick(ctx).reason == "waiting_for_retrain"
    clock.advance(timedelta(days=7))
    r = learn.tick(ctx)
    assert r.status == "ok" and r.detail["reason"] == "weekly" and r.detail["version"] == 2


def test_broken_lightgbm_falls_back_to_ridge(settings, db, clock, caplog):
    caplog.set_level(logging.INFO, logger="xbot")
    ctx = ctx_for(settings.replace(learn_use_lightgbm=True), db, clock)
    seed_outcomes(db, 60, seed=5, rates=(8.0, 0.5))
    r = learn.tick(ctx, lightgbm_params={"num_leaves": -3})      # LightGBM refuses this
    assert r.status == "ok" and r.detail["version"] == 1
    assert r.detail["content"]["algorithm"] == "ridge" and "lightgbm failed" in r.detail["content"]["fallback_reason"]
    assert any(m.startswith("[LEARN_JOB] lightgbm_failed fallback=ridge error=") for m in learn_lines(caplog))
    assert learn_lines(caplog)[-1].startswith("[LEARN_JOB] coeffs_updated=v1")
    assert db.execute("SELECT algorithm FROM predictors WHERE predictor_key = 'predictor:content:v1'")[0]["algorithm"] == "ridge"


def test_lightgbm_is_tried_with_enough_samples(settings, db, clock):
    ctx = ctx_for(settings.replace(learn_use_lightgbm=True), db, clock)
    seed_outcomes(db, 60, seed=6)
    r = learn.tick(ctx)
    metrics = db.execute("SELECT metrics FROM predictors WHERE predictor_key = 'predictor:content:v1'")[0]["metrics"]
    assert set(metrics["candidates"]) == {"ridge", "lightgbm"}
    assert r.detail["content"]["algorithm"] in ("ridge", "lightgbm")   # the better cross-validated one


def test_a_learn_tick_leaves_no_pointer_type_behind_for_lightgbms_label_read_back(settings, db, clock):
    # LightGBM reads labels back through numpy.ctypeslib, and ctypes caches a pointer type per training-set size
    # forever: left there, a daemon's memory grows with every new size it trains on
    import ctypes

    def numpy_made() -> int:
        return sum(1 for t in list(ctypes._pointer_type_cache)
                   if isinstance(t, type) and issubclass(t, ctypes.Array) and t.__module__ is None)

    ctx = ctx_for(settings.replace(learn_use_lightgbm=True), db, clock)
    seed_outcomes(db, 61, seed=8)
    learn.tick(ctx)
    metrics = db.execute("SELECT metrics FROM predictors WHERE predictor_key = 'predictor:content:v1'")[0]["metrics"]
    assert "lightgbm" in metrics["candidates"], "LightGBM must have trained for its read-back to happen"
    assert numpy_made() == 0
    arr = np.ctypeslib.as_array((ctypes.c_double * 3)(1.0, 2.0, 3.0), shape=(3,))   # numpy still works after
    assert arr.tolist() == [1.0, 2.0, 3.0]


@pytest.mark.skipif(learn._malloc_trim() is None, reason="glibc only: this C library has no malloc_trim")
def test_freed_heap_inside_the_heap_goes_back_to_the_system_after_training():
    """What training leaves: freed blocks between blocks still in use, which glibc's own trimming (the heap's top
    only) never returns. 48 MiB of such holes are handed back."""
    from xbotlib.devtools.bench_speed import rss_mib

    held, holes = [], []
    for _ in range(768):   # 64 KiB blocks (C malloc, below its mmap threshold), each followed by a kept 1 KiB one
        holes.append(bytearray(65536))
        held.append(bytearray(1024))
    for block in holes:
        block[::4096] = b"x" * 16   # touch every page: resident
    before = rss_mib()
    holes.clear()
    freed = rss_mib()
    assert learn.hand_back_freed_memory() is True
    after = rss_mib()
    assert before - freed < 16, "glibc returned the holes by itself: this test shows nothing"
    assert freed - after > 32, (before, freed, after)
    assert len(held) == 768


def test_live_learner_never_trains_on_sandbox_outcomes(settings, db, clock):
    seed_outcomes(db, 10, world="sandbox", seed=7)
    live = ctx_for(settings, db, clock, world="live")
    r = learn.tick(live)
    assert r.reason == "insufficient_new_samples" and r.detail["fresh"] == 0
    seed_outcomes(db, 6, world="live", seed=8)
    r = learn.tick(live)
    assert r.status == "ok" and r.detail["content"]["n"] == 6
    sandbox = learn.tick(ctx_for(settings, db, clock))
    assert sandbox.status == "ok" and sandbox.detail["content"]["n"] == 10
    rows = db.execute("SELECT world, n_samples FROM predictors WHERE kind = 'content' ORDER BY version")
    assert [(r_["world"], r_["n_samples"]) for r_ in rows] == [("live", 6), ("sandbox", 10)]
