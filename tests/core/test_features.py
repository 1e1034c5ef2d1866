"""The feature extractor on real-looking posts: hooks, sentiment, novelty, readability, vectors."""
from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import numpy as np
import pytest

from xbotlib.core import vocab
from xbotlib.core.features import (FEATURE_NAMES, TIMING_FEATURE_NAMES, LocalEmbedder, dup_penalty, extract_features, feature_matrix, feature_vector, hook_pattern, novelty, reply_features, stack_embeddings, timing_matrix)
from xbotlib.core.text import format_features, readability, sentiment

EMB = LocalEmbedder()

# text -> hook pattern, sign of sentiment (+1, 0, -1)
POSTS = [
    ("Did you know a 10-minute walk after lunch lowers blood sugar? Small habit, great benefit.", "did_you_know", +1),
    ("New study: people who sleep 7+ hours make fewer mistakes at work. Sleep is not a luxury.", "new_study", -1),
    ("Why do most productivity systems fail after two weeks?", "question", -1),
    ("Unpopular opinion: hustle culture is overrated and bad for founders.", "contrarian", -1),
    ("Save this: 5 prompts that make any LLM a better editor. #AI", "cta", +1),
    ("Shipping beats planning. Every single time.", "plain", 0),
    ("This onboarding flow isn't bad at all, honestly.", "plain", +1),
    ("I love how simple this is \U0001F60D", "plain", +1),
    ("Researchers found no evidence that the diet is harmful.", "new_study", +1),
]


@pytest.mark.parametrize("text, hook, sign", POSTS, ids=[p[1] + str(i) for i, p in enumerate(POSTS)])
def test_hook_and_sentiment_sign(text, hook, sign):
    assert hook_pattern(text) == hook == vocab.detect_hook(text)
    s = sentiment(text)
    assert -1 < s < 1
    assert np.sign(s) == sign, s


def test_embedder_is_deterministic_and_normalised():
    texts = [p[0] for p in POSTS] + [""]
    a, b = EMB.embed(texts), LocalEmbedder(256).embed(texts)
    assert a.shape == (len(texts), 256)
    np.testing.assert_array_equal(a, b)
    np.testing.assert_allclose(np.linalg.norm(a[:-1], axis=1), 1.0)
    assert np.linalg.norm(a[-1]) == 0.0  # empty text embeds to zero, similar to nothing
    with pytest.raises(TypeError, match="wrap it"):
        EMB.embed("one string")
    with pytest.raises(ValueError, match="dim must be an integer >= 8"):
        LocalEmbedder(dim=2)


def test_near_duplicate_is_less_novel_than_a_fresh_text():
    history = ["Did you know a 10-minute walk after lunch lowers blood sugar? Small habit, great benefit.",
               "Hot take: most founders raise money too early. Revenue first, investors later."]
    recent = EMB.embed(history)
    near_dup = EMB.embed(["Did you know a 10 minute walk after lunch lowers your blood sugar? Tiny habit, big benefit!"])[0]
    fresh = EMB.embed(["The James Webb telescope just found carbon molecules in a galaxy 12 billion light years away."])[0]
    n_dup, n_fresh = novelty(near_dup, recent), novelty(fresh, recent)
    assert n_dup < 0.3 < 0.7 < n_fresh
    assert novelty(near_dup, recent[:1]) == pytest.approx(n_dup)  # the nearest post decides
    assert novelty(EMB.embed([history[0]])[0], recent) == pytest.approx(0.0, abs=1e-9)
    assert novelty(fresh, None) == 1.0 and novelty(fresh, np.zeros((0, 256))) == 1.0
    with pytest.raises(ValueError, match=r"expected \(m, 256\)"):
        novelty(fresh, np.ones((2, 1536)))


def test_stack_embeddings_skips_missing_and_other_embedders():
    rows = [np.ones(256), None, np.ones(1536), list(np.zeros(256))]
    assert stack_embeddings(rows, 256).shape == (2, 256)
    assert stack_embeddings([], 256).shape == (0, 256)


@pytest.mark.parametrize("nov, threshold, penalty", [
    (0.05, 0.15, 1.0), (0.149, 0.15, 1.0), (0.15, 0.15, 1.0), (0.225, 0.15, 0.5), (0.30, 0.15, 0.0), (0.9, 0.15, 0.0),
    (0.0, 0.0, 0.0),
])
def test_dup_penalty(nov, threshold, penalty):
    assert dup_penalty(nov, threshold) == pytest.approx(penalty)


def test_dup_penalty_rejects_bad_threshold():
    with pytest.raises(ValueError, match="NOVELTY_MIN"):
        dup_penalty(0.5, 1.5)


def test_readability_ranks_plain_above_dense():
    plain = "Walk after you eat. It helps. Try it today."
    dense = ("Postprandial ambulatory activity substantially attenuates glycemic excursions "
             "in individuals exhibiting insulin resistance characteristics.")
    assert 0 <= readability(dense) < readability(plain) <= 1
    assert readability("https://example.com #AI @someone") == 0.0  # nothing a reader reads as prose


def test_format_features():
    text = "3 habits that changed my mornings:\n\n1. Walk\n2. Water\n3. No phone\n\nWhich one would you try? #Productivity"
    f = format_features(text)
    assert f["has_number"] and not f["has_link"]
    assert f["hashtag_count"] == 1 and f["ends_with_question"]  # the trailing hashtag does not hide the question
    assert f["line_breaks"] == 6 and f["emoji_count"] == 0
    g = format_features("Read this \U0001F680\U0001F525 https://x.com/a/status/1")
    assert g["has_link"] and not g["has_number"] and g["emoji_count"] == 2


def test_reply_features():
    now = datetime(2026, 3, 2, 12, 0, tzinfo=timezone.utc)
    f = reply_features(52_000, 300, now - timedelta(minutes=30), now)
    assert f == {"author_follower_count": 52_000.0, "tweet_velocity": 10.0, "tweet_age_min": 30.0}
    assert reply_features(10, 5, now, now)["tweet_velocity"] == 5.0  # age floored at 1 minute
    with pytest.raises(ValueError, match="timezone-aware"):
        reply_features(10, 5, datetime(2026, 3, 2, 11, 0), now)
    with pytest.raises(ValueError, match="author_followers must be >= 0, got -1"):
        reply_features(-1, 5, now, now)


def test_extract_features_record_and_vector():
    text = "Did you know most founders never talk to 10 customers before building? #Startups"
    recent = EMB.embed(["New study: sleep improves memory."])
    f = extract_features(text, embedding=EMB.embed([text])[0], recent_embeddings=recent, novelty_min=0.15, hour=9)
    assert (f.hook, f.hook_pattern, f.topic, f.hour, f.is_reply) == ("did_you_know", "did_you_know", "startups", 9, False)
    assert f.novelty > 0.5 and f.dup_penalty == 0.0
    d = json.loads(json.dumps(f.to_dict()))  # JSON-safe
    v = f.vector()
    assert v.shape == (len(FEATURE_NAMES),) and np.isfinite(v).all()
    named = dict(zip(FEATURE_NAMES, v))
    assert named["hook_did_you_know"] == 1 and named["hook_plain"] == 0 and named["topic_startups"] == 1
    assert named["hour_sin"] == pytest.approx(np.sin(2 * np.pi * 9 / 24))
    np.testing.assert_array_equal(feature_vector(d), v)  # the stored dict gives the same row
    assert feature_matrix([d, d]).shape == (2, len(FEATURE_NAMES))


def test_extract_features_for_a_reply_and_planned_topic():
    now = datetime(2026, 3, 2, 12, 0, tzinfo=timezone.utc)
    reply = reply_features(1_000_000, 6000, now - timedelta(minutes=60), now)
    f = extract_features("Great point, and the data backs it up.", embedding=np.zeros(256), recent_embeddings=None,
                         novelty_min=0.15, topic="ai", reply=reply)
    named = dict(zip(FEATURE_NAMES, f.vector()))
    assert f.topic == "ai" and f.is_reply and named["is_reply"] == 1
    assert named["log_author_followers"] == pytest.approx(np.log1p(1_000_000))
    assert named["log_tweet_velocity"] == pytest.approx(np.log1p(100.0))
    assert named["hour_sin"] == named["hour_cos"] == 0.0  # hour unknown


@pytest.mark.parametrize("kwargs, match", [
    ({"hour": 24}, "hour must be an integer 0-23, got 24"),
    ({"topic": "crypto"}, "unknown topic 'crypto'"),
])
def test_extract_features_rejects_bad_input(kwargs, match):
    with pytest.raises(ValueError, match=match):
        extract_features("x", embedding=np.zeros(256), recent_embeddings=None, novelty_min=0.15, **kwargs)


def test_feature_vector_rejects_unknown_names():
    with pytest.raises(ValueError, match="unknown feature name 'likes'"):
        feature_vector({}, ["likes"])


def test_timing_matrix():
    m = timing_matrix(vocab.DEFAULT_POSTING_HOURS, weekday=5)
    assert m.shape == (len(vocab.DEFAULT_POSTING_HOURS), len(TIMING_FEATURE_NAMES))
    assert (m[:, -1] == 1).all()  # Saturday is a weekend
