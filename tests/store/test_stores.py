"""Bandit arms, predictor versions and training data on the real database (``db`` fixture)."""
from __future__ import annotations

import logging
from datetime import datetime, timedelta, timezone

import numpy as np
import psycopg
import pytest

from xbotlib.store import queue
from xbotlib.core.bandit import ArmStats, update
from xbotlib.store.arms import apply_pass2_rewards, load_arms, save_arms
from xbotlib.core.features import FEATURE_NAMES, TIMING_FEATURE_NAMES, LocalEmbedder, extract_features
from xbotlib.store.models import add_metrics, list_versions, load_active, save_version
from xbotlib.core.predictors import RidgeReward, train_with_fallback
from xbotlib.core.reward import exposure_weight
from xbotlib.core import vocab
from xbotlib.store.training_data import count_fresh_outcomes, learn_frames, timing_frame, training_frame

ACC = "acct1"
T0 = datetime(2026, 3, 2, 8, 0, tzinfo=timezone.utc)
EMB = LocalEmbedder()


def post_with_outcome(conn, *, text="Did you know walking helps?", arm="did_you_know", timing_arm="9", reward=1.0,
                      impressions=500, follows=1.0, simulated=True, passes=(2,), posted_at=T0, hour=None):
    """A posted decision and its collected outcome(s), written the way the real jobs write them."""
    emb = EMB.embed([text])[0]
    feats = extract_features(text, embedding=emb, recent_embeddings=None, novelty_min=0.15, hour=hour)
    d = queue.Decision(account_id=ACC, content=text, generation_source="template", status="queued",
                       scheduled_at=posted_at, hook_pattern=feats.hook, topic=feats.topic, novelty=feats.novelty,
                       features=feats.to_dict(), bandit_arm=arm, timing_arm=timing_arm)
    queue.insert_decision(conn, d, posted_at)
    queue.transition(conn, d.decision_id, "posting", posted_at)
    queue.record_posted(conn, d.decision_id, ACC, f"tw-{d.decision_id.hex[:12]}", posted_at,
                        "sandbox" if simulated else "live", posted_at)
    ids = []
    for p in passes:
        row = conn.execute(
            """INSERT INTO outcomes (decision_id, account_id, collected_pass, simulated, impressions, follows,
                                     reward_composite, sample_weight, collected_at)
               VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s) RETURNING outcome_id""",
            (d.decision_id, ACC, p, simulated, impressions, follows, reward, exposure_weight(impressions),
             posted_at + timedelta(hours=1 if p == 1 else 24)),
        ).fetchone()
        ids.append(row["outcome_id"])
    return d.decision_id, ids


@pytest.fixture
def conn(db):
    with db.connection() as c:
        queue.ensure_account(c, ACC, T0, timezone="America/New_York")
        yield c


# ----------------------------------------------------------------------------- bandit arms


def test_arms_round_trip_by_world_and_scope(conn):
    arms = [update(ArmStats("question"), 0.7), update(update(ArmStats("cta"), 0.2, 0.5), 0.4)]
    save_arms(conn, ACC, "sandbox", "content", arms, T0)
    save_arms(conn, ACC, "sandbox", "timing", [update(ArmStats("9"), 1.0)], T0)
    assert load_arms(conn, ACC, "sandbox", "content") == {a.arm_id: a for a in arms}
    assert list(load_arms(conn, ACC, "sandbox", "timing")) == ["9"]
    assert load_arms(conn, ACC, "live", "content") == {}
    with pytest.raises(ValueError, match="unknown world 'prod'"):
        load_arms(conn, ACC, "prod", "content")
    with pytest.raises(ValueError, match="unknown bandit scope 'hour'"):
        load_arms(conn, ACC, "sandbox", "hour")


def test_apply_pass2_rewards_is_idempotent_and_per_world(conn):
    post_with_outcome(conn, arm="question", timing_arm="9", reward=2.0, impressions=500)
    post_with_outcome(conn, arm="question", timing_arm="13", reward=1.0, impressions=4000)   # a pull is a pull
    post_with_outcome(conn, arm="cta", timing_arm=None, reward=0.5, impressions=100)
    post_with_outcome(conn, arm="cta", timing_arm="9", reward=9.0, passes=(1,))             # not final yet
    post_with_outcome(conn, arm="question", timing_arm="9", reward=5.0, simulated=False)    # live world
    assert apply_pass2_rewards(conn, ACC, "sandbox", T0) == 3
    content = load_arms(conn, ACC, "sandbox", "content")
    q = content["question"]
    assert (q.pulls, q.weight_sum) == (2, pytest.approx(2.0))  # content arms: one unweighted pull per post
    assert q.reward_sum == pytest.approx(2.0 + 1.0) and q.reward_sq_sum == pytest.approx(4.0 + 1.0)
    assert content["cta"].pulls == 1  # the pass-1 outcome was not applied
    timing = load_arms(conn, ACC, "sandbox", "timing")
    assert {k: v.pulls for k, v in timing.items()} == {"9": 1, "13": 1}  # no timing arm, no timing credit
    # running again changes nothing
    assert apply_pass2_rewards(conn, ACC, "sandbox", T0 + timedelta(hours=1)) == 0
    assert load_arms(conn, ACC, "sandbox", "content") == content
    # the live outcome only ever feeds live arms
    assert load_arms(conn, ACC, "live", "content") == {}
    assert apply_pass2_rewards(conn, ACC, "live", T0) == 1
    assert load_arms(conn, ACC, "live", "content")["question"].reward_sum == pytest.approx(5.0)
    assert load_arms(conn, ACC, "sandbox", "content") == content
    left = conn.execute("SELECT count(*) AS n FROM outcomes WHERE NOT bandit_applied").fetchone()["n"]
    assert left == 1  # only the pass-1 outcome waits


def test_apply_pass2_rewards_adds_to_existing_arms(conn):
    save_arms(conn, ACC, "sandbox", "content", [update(ArmStats("question"), 1.0)], T0)
    post_with_outcome(conn, arm="question", reward=3.0)
    apply_pass2_rewards(conn, ACC, "sandbox", T0)
    q = load_arms(conn, ACC, "sandbox", "content")["question"]
    assert (q.pulls, q.reward_sum) == (2, pytest.approx(4.0))


# ----------------------------------------------------------------------------- training data


def test_training_frame_reads_one_world_with_weights_and_local_hours(conn):
    _, (a,) = post_with_outcome(conn, text="Did you know sleep helps memory?", reward=1.5, impressions=2000,
                                posted_at=datetime(2026, 3, 2, 14, 0, tzinfo=timezone.utc), hour=3)
    post_with_outcome(conn, text="Why do habits fail?", arm="question", reward=0.5, impressions=300,
                      posted_at=datetime(2026, 3, 7, 23, 0, tzinfo=timezone.utc))  # Saturday 18:00 in New York
    post_with_outcome(conn, reward=7.0, simulated=False)
    post_with_outcome(conn, reward=9.0, passes=(1,))
    frame = training_frame(conn, ACC, "sandbox")
    assert frame.X.shape == (2, len(FEATURE_NAMES)) and frame.names == list(FEATURE_NAMES)
    np.testing.assert_allclose(frame.y, [1.5, 0.5])
    np.testing.assert_allclose(frame.w, [0.5, 1.0])
    named = dict(zip(FEATURE_NAMES, frame.X[0]))
    assert named["hook_did_you_know"] == 1.0
    # the hour is when it really went out, in the account's timezone (14:00 UTC = 09:00 EST), not the planned 3
    assert named["hour_sin"] == pytest.approx(np.sin(2 * np.pi * 9 / 24))
    assert frame.max_outcome_id > a
    live = training_frame(conn, ACC, "live")
    np.testing.assert_allclose(live.y, [7.0])
    follows = training_frame(conn, ACC, "sandbox", target="follows")
    np.testing.assert_allclose(follows.y, [1.0, 1.0])
    t = timing_frame(conn, ACC, "sandbox")
    assert t.X.shape == (2, len(TIMING_FEATURE_NAMES)) and t.X[1, -1] == 1.0 and t.X[0, -1] == 0.0
    # incremental reads and counts
    assert training_frame(conn, ACC, "sandbox", since_outcome_id=a).X.shape[0] == 1
    assert count_fresh_outcomes(conn, ACC, "sandbox", None) == 2
    assert count_fresh_outcomes(conn, ACC, "sandbox", a) == 1
    assert count_fresh_outcomes(conn, ACC, "sandbox", frame.max_outcome_id) == 0
    empty = training_frame(conn, "nobody", "sandbox")
    assert empty.X.shape == (0, len(FEATURE_NAMES)) and empty.max_outcome_id is None


def _same_frame(a, b):
    for x, y in ((a.X, b.X), (a.y, b.y), (a.w, b.w)):
        np.testing.assert_array_equal(x, y)
        assert x.dtype == y.dtype
    assert (a.names, a.max_outcome_id) == (b.names, b.max_outcome_id)


def test_learn_frames_are_the_three_frames_from_one_read(conn):
    post_with_outcome(conn, text="Did you know sleep helps memory?", reward=1.5, impressions=2000, follows=3.0,
                      posted_at=datetime(2026, 3, 2, 14, 0, tzinfo=timezone.utc))
    post_with_outcome(conn, text="Why do habits fail?", arm="question", reward=0.5, impressions=300, follows=0.0,
                      posted_at=datetime(2026, 3, 7, 23, 0, tzinfo=timezone.utc))
    post_with_outcome(conn, reward=7.0, simulated=False)
    niche = vocab.DEFAULT
    frames = learn_frames(conn, ACC, "sandbox", vocabulary=niche)
    _same_frame(frames.content, training_frame(conn, ACC, "sandbox", vocabulary=niche))
    _same_frame(frames.follows, training_frame(conn, ACC, "sandbox", target="follows", vocabulary=niche))
    _same_frame(frames.timing, timing_frame(conn, ACC, "sandbox", target="follows"))
    np.testing.assert_array_equal(frames.follows.y, [3.0, 0.0])  # the follows, not the rewards [1.5, 0.5]
    post_with_outcome(conn, reward=2.0, follows=5.0)  # a new outcome is read on the next call
    again = learn_frames(conn, ACC, "sandbox", vocabulary=niche)
    assert again.content.X.shape[0] == 3 and again.follows.y[-1] == 5.0 and again.timing.y[-1] == 5.0
    _same_frame(again.timing, timing_frame(conn, ACC, "sandbox", target="follows"))
    empty = learn_frames(conn, "nobody", "sandbox", vocabulary=niche)
    assert [f.X.shape[0] for f in empty] == [0, 0, 0] and empty.content.max_outcome_id is None


def test_streamed_training_reads_give_the_same_frames_whatever_the_chunk(conn):
    texts = ["Did you know sleep helps memory?", "Why do habits fail?", "Three ways to rest better",
             "How I learned to run", "Stop scrolling at night", "What breaks a streak?", "Walk after lunch"]
    for i, text in enumerate(texts):
        post_with_outcome(conn, text=text, reward=0.5 * i, follows=float(i % 3), impressions=300 + 250 * i,
                          posted_at=T0 + timedelta(hours=7 * i))
    whole = learn_frames(conn, ACC, "sandbox", chunk_rows=1000)
    assert whole.content.X.shape[0] == len(texts)
    for chunk in (1, 2, 3, len(texts)):   # chunks that split the rows unevenly, and exactly
        parts = learn_frames(conn, ACC, "sandbox", chunk_rows=chunk)
        for a, b in zip(parts, whole):
            _same_frame(a, b)
        _same_frame(training_frame(conn, ACC, "sandbox", chunk_rows=chunk), whole.content)
        _same_frame(timing_frame(conn, ACC, "sandbox", target="follows", chunk_rows=chunk), whole.timing)
    # the stream was read to its end: the connection runs the next statement as usual
    assert count_fresh_outcomes(conn, ACC, "sandbox", None) == len(texts)


# ----------------------------------------------------------------------------- predictors


def trained_on_synthetic(use_lightgbm=False, n=80, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, len(FEATURE_NAMES)))
    y = X[:, 0] - 0.5 * X[:, 13] + 0.1 * rng.normal(size=n)
    return train_with_fallback("reward", X, y, np.ones(n), use_lightgbm, None), X


def newest_version(conn, account_id: str, kind: str, world: str | None = None) -> int | None:
    """The newest stored version of ``kind``, read through the one version reader (``list_versions``)."""
    rows = list_versions(conn, account_id, kind, world)
    return rows[0]["version"] if rows else None


def test_predictor_versions_round_trip(conn):
    first, X = trained_on_synthetic()
    assert newest_version(conn, ACC, "content") is None and load_active(conn, ACC, "content", "sandbox") is None
    assert save_version(conn, ACC, "content", first, FEATURE_NAMES, 80, "sandbox", 41, T0).version == 1
    second, _ = trained_on_synthetic(use_lightgbm=True, n=400, seed=1)  # more data: a better measured score
    saved = save_version(conn, ACC, "content", second, FEATURE_NAMES, 80, "sandbox", 97, T0 + timedelta(days=1))
    assert (saved.version, saved.served, saved.verdict.reason) == (2, True, "beats_baseline_and_active")
    loaded = load_active(conn, ACC, "content", "sandbox")
    assert (loaded.version, loaded.key, loaded.algorithm, loaded.world) == (2, "predictor:content:v2", second.algorithm,
                                                                           "sandbox")
    assert loaded.features == list(FEATURE_NAMES) and loaded.trained_through == 97 and loaded.n_samples == 80
    assert loaded.cv_score == pytest.approx(second.cv["score"]) and loaded.metrics["candidates"]
    np.testing.assert_allclose(loaded.predict(X[:4]), second.model.predict(X[:4]))
    rows = list_versions(conn, ACC, "content")
    assert [(r["version"], r["is_active"], r["status"]) for r in rows] == [(2, True, "active"), (1, False, "retired")]
    assert newest_version(conn, ACC, "content", "sandbox") == 2 and newest_version(conn, ACC, "timing") is None
    with pytest.raises(ValueError, match=r"expects \(n, 29\) features"):
        loaded.predict(np.ones((1, 3)))


def test_load_active_reuses_the_known_model_while_it_is_active(conn):
    """A daemon's plan job passes what it loaded last time: the same model object serves while that stored model is
    active (its bytes not unpickled again), with the row's other columns read fresh; a new active version, a
    rollback, or no model at all is seen at once."""
    first, X = trained_on_synthetic()
    save_version(conn, ACC, "content", first, FEATURE_NAMES, 80, "sandbox", 41, T0)
    one = load_active(conn, ACC, "content", "sandbox")
    again = load_active(conn, ACC, "content", "sandbox", known=one)
    assert again.model is one.model and again.predictor_id == one.predictor_id and again.version == 1
    assert load_active(conn, ACC, "content", "sandbox").model is not one.model   # without known: loaded anew
    add_metrics(conn, ACC, "content", 1, {"served_note": "checked"})
    assert load_active(conn, ACC, "content", "sandbox", known=one).metrics["served_note"] == "checked"

    second, _ = trained_on_synthetic(use_lightgbm=True, n=400, seed=1)
    assert save_version(conn, ACC, "content", second, FEATURE_NAMES, 80, "sandbox", 97, T0 + timedelta(days=1)).served
    two = load_active(conn, ACC, "content", "sandbox", known=one)
    assert two.version == 2 and two.model is not one.model
    np.testing.assert_array_equal(two.predict(X[:4]), second.model.predict(X[:4]))
    conn.execute("UPDATE predictors SET is_active = (version = 1)")   # an operator's rollback
    back = load_active(conn, ACC, "content", "sandbox", known=two)
    assert back.version == 1 and back.model is not two.model
    np.testing.assert_array_equal(back.predict(X[:4]), first.model.predict(X[:4]))
    conn.execute("UPDATE predictors SET is_active = false")
    assert load_active(conn, ACC, "content", "sandbox", known=back) is None


def test_live_never_loads_a_sandbox_model(conn):
    sandbox_model, X = trained_on_synthetic()
    save_version(conn, ACC, "content", sandbox_model, FEATURE_NAMES, 80, "sandbox", 10, T0)
    assert load_active(conn, ACC, "content", "live") is None
    live_model, _ = trained_on_synthetic(seed=5)
    assert save_version(conn, ACC, "content", live_model, FEATURE_NAMES, 80, "live", 11, T0).version == 2
    live, sandbox = load_active(conn, ACC, "content", "live"), load_active(conn, ACC, "content", "sandbox")
    assert (live.version, live.world, sandbox.version, sandbox.world) == (2, "live", 1, "sandbox")
    assert newest_version(conn, ACC, "content", "live") == 2 and newest_version(conn, ACC, "content", "sandbox") == 1
    with pytest.raises(ValueError, match="unknown world 'staging'"):
        load_active(conn, ACC, "content", "staging")


def test_corrupt_lightgbm_model_falls_back_to_the_last_ridge(conn, caplog):
    rng = np.random.default_rng(7)
    X = rng.normal(size=(80, len(FEATURE_NAMES)))
    # a weaker linear signal (CV R² ~0.4), so the boosted v2 beats it and is served
    ridge = train_with_fallback("reward", X, X[:, 0] + 1.0 * rng.normal(size=80), np.ones(80), False, None)
    save_version(conn, ACC, "content", ridge, FEATURE_NAMES, 80, "sandbox", 10, T0)
    rng = np.random.default_rng(3)
    Xn = rng.uniform(-2, 2, size=(200, len(FEATURE_NAMES)))
    yn = np.where(Xn[:, 0] * Xn[:, 1] > 0, 1.0, -1.0)
    boosted = train_with_fallback("reward", Xn, yn, np.ones(200), True, None)
    assert boosted.algorithm == "lightgbm"
    save_version(conn, ACC, "content", boosted, FEATURE_NAMES, 200, "sandbox", 20, T0)
    # v2 active (whatever its verdict on this data): the state whose broken model load_active must survive
    conn.execute("UPDATE predictors SET rejected_reason = NULL, is_active = (version = 2)")
    conn.execute("UPDATE predictors SET model = substring(model from 1 for 40) WHERE version = 2")
    with caplog.at_level(logging.INFO, logger="xbot.predictors"):
        loaded = load_active(conn, ACC, "content", "sandbox")
    assert (loaded.version, loaded.algorithm, loaded.fallback_from) == (1, "ridge", "predictor:content:v2")
    assert isinstance(loaded.model, RidgeReward)
    np.testing.assert_allclose(loaded.predict(X[:3]), ridge.model.predict(X[:3]))
    assert any(r.getMessage().startswith("[LEARN_JOB] lightgbm_failed fallback=ridge failed=predictor:content:v2")
               for r in caplog.records)
    # stored data is left as it was: v2 stays the active record for an operator to see
    assert [r["is_active"] for r in list_versions(conn, ACC, "content")] == [True, False]


def test_end_to_end_train_from_database_and_predict(conn):
    rng = np.random.default_rng(0)
    texts = {"did_you_know": "Did you know {} changes how you focus?", "question": "Why does {} work so well?",
             "contrarian": "Unpopular opinion: {} is overrated."}
    true = {"did_you_know": 1.0, "question": 2.0, "contrarian": 0.2}
    for i in range(45):
        arm = list(texts)[i % 3]
        post_with_outcome(conn, text=texts[arm].format(f"habit number {i}"), arm=arm, reward=true[arm] + 0.1 * rng.normal(),
                          posted_at=T0 + timedelta(hours=i))
    frame = training_frame(conn, ACC, "sandbox")
    trained = train_with_fallback("reward", frame.X, frame.y, frame.w, True, None)
    assert trained.algorithm == "ridge" and trained.cv["score"] > 0.8 > trained.cv["baseline_score"]
    version = save_version(conn, ACC, "content", trained, frame.names, len(frame.y), "sandbox", frame.max_outcome_id,
                           T0).version
    loaded = load_active(conn, ACC, "content", "sandbox")
    assert loaded.version == version
    new = [extract_features(texts[a].format("a new idea"), embedding=EMB.embed(["x"])[0], recent_embeddings=None,
                            novelty_min=0.15).to_dict() for a in texts]
    pred = dict(zip(texts, loaded.predict_features(new)))
    assert pred["question"] > pred["did_you_know"] > pred["contrarian"]
    assert count_fresh_outcomes(conn, ACC, "sandbox", loaded.trained_through) == 0


def test_apply_pass2_rewards_twice_at_once_applies_each_outcome_once(db):
    import threading

    with db.connection() as c:
        queue.ensure_account(c, ACC, T0)
        for i in range(4):
            post_with_outcome(c, arm="question", reward=1.0 + i)
    results = {}
    with db.connection() as first:
        results["first"] = apply_pass2_rewards(first, ACC, "sandbox", T0)  # holds the row locks until commit

        def second():
            with db.connection() as c2:
                results["second"] = apply_pass2_rewards(c2, ACC, "sandbox", T0)

        worker = threading.Thread(target=second)
        worker.start()
        worker.join(timeout=0.5)  # blocked on the locks (or already done: either way it must find nothing)
    worker.join(timeout=30)
    assert results == {"first": 4, "second": 0}
    with db.connection() as c:
        assert load_arms(c, ACC, "sandbox", "content")["question"].pulls == 4


def noise_model(n=60, seed=0):
    rng = np.random.default_rng(seed)
    return train_with_fallback("reward", rng.normal(size=(n, len(FEATURE_NAMES))), rng.normal(size=n), np.ones(n),
                               False, None)


def test_a_losing_version_is_stored_rejected_and_never_served(conn):
    good, _ = trained_on_synthetic()
    assert save_version(conn, ACC, "content", good, FEATURE_NAMES, 80, "sandbox", 10, T0).served
    saved = save_version(conn, ACC, "content", noise_model(), FEATURE_NAMES, 60, "sandbox", 20, T0 + timedelta(days=1))
    assert (saved.version, saved.served, saved.verdict.reason) == (2, False, "below_baseline")
    rows = list_versions(conn, ACC, "content")
    assert [(r["version"], r["status"]) for r in rows] == [(2, "rejected"), (1, "active")]
    assert rows[0]["rejected_reason"] == saved.verdict.detail and rows[1]["rejected_reason"] is None
    assert rows[0]["metrics"]["serving"]["reason"] == "below_baseline"
    assert load_active(conn, ACC, "content", "sandbox").version == 1
    # a rejected version is never active: the table refuses it
    with pytest.raises(psycopg.errors.CheckViolation, match="predictors_rejected_not_active"):
        with conn.transaction():
            conn.execute("UPDATE predictors SET is_active = true WHERE version = 2")


def test_with_only_rejected_versions_nothing_is_served_not_even_as_a_fallback(conn):
    saved = save_version(conn, ACC, "content", noise_model(), FEATURE_NAMES, 60, "sandbox", 20, T0)
    assert not saved.served and load_active(conn, ACC, "content", "sandbox") is None
    assert [r["status"] for r in list_versions(conn, ACC)] == ["rejected"]


def test_a_version_below_the_active_one_is_rejected(conn):
    strong, _ = trained_on_synthetic(n=400)
    assert save_version(conn, ACC, "content", strong, FEATURE_NAMES, 400, "sandbox", 10, T0).served
    rng = np.random.default_rng(4)
    X = rng.normal(size=(200, len(FEATURE_NAMES)))
    weaker = train_with_fallback("reward", X, X[:, 0] + 0.5 * rng.normal(size=200), np.ones(200), False, None)
    saved = save_version(conn, ACC, "content", weaker, FEATURE_NAMES, 80, "sandbox", 20, T0)
    assert (saved.served, saved.verdict.reason, saved.verdict.active_version) == (False, "not_above_active", 1)
    assert "is not above the active v1's" in saved.verdict.detail
    assert load_active(conn, ACC, "content", "sandbox").version == 1


def test_a_training_read_that_fails_mid_stream_names_the_zone_and_leaves_the_connection_usable(conn):
    for i in range(5):
        post_with_outcome(conn, reward=float(i), posted_at=T0 + timedelta(hours=i))
    conn.commit()
    conn.execute("UPDATE accounts SET timezone = 'Mars/Olympus' WHERE account_id = %s", (ACC,))
    with pytest.raises(ValueError, match=r"'Mars/Olympus' is not a known IANA zone \(fix accounts.timezone\)"):
        learn_frames(conn, ACC, "sandbox", chunk_rows=2)   # fails on the first row, with chunks still to come
    conn.rollback()   # what the pool does with a connection whose work raised: the zone is back, nothing lost
    frames = learn_frames(conn, ACC, "sandbox", chunk_rows=2)
    np.testing.assert_array_equal(frames.content.y, [0.0, 1.0, 2.0, 3.0, 4.0])
