"""The offline template generator: every hook x topic reads back as asked, varied, no arms baked in."""
from __future__ import annotations

import itertools
import re

import numpy as np
import pytest

from xbotlib.core import vocab
from xbotlib.clients.generation import Candidate, TemplateGenerator
from xbotlib.clients.generation.templates import (CLOSERS, CTA_STATEMENT_OPENERS, OPENERS, QUESTION_FOLLOWUPS,
                                                  REPLY_CLOSERS)
from xbotlib.core.profile import default_profile

# the built-in niche's material lives in accounts/default.toml now
FACTS, TIPS, CLAIMS = ({t.name: getattr(t, kind) for t in default_profile().topics} for kind in ("facts", "tips", "claims"))

COMBOS = list(itertools.product(vocab.HOOK_PATTERNS, vocab.TOPICS))
VARIANTS = [(None, None), ("contrarian", None), (None, "Most people never track their sleep at all"),
            ("contrarian", "Founders should raise as much as they can, as early as they can")]


def sample(hook: str, topic: str, *, angle=None, reply=None, calls: int = 15, n: int = 3) -> list[Candidate]:
    gen = TemplateGenerator(seed=11)
    return [c for s in range(calls)
            for c in gen.candidates(hook, topic, n, angle=angle, reply_to_text=reply, rng=np.random.default_rng(s))]


def keyword_hits(text: str) -> dict[str, int]:
    low = text.lower()
    return {t: sum(len(re.findall(r"\b" + re.escape(k), low)) for k in vocab.TOPIC_KEYWORDS[t]) for t in vocab.TOPICS}


@pytest.mark.parametrize("angle, reply", VARIANTS, ids=["post", "contrarian", "reply", "contrarian_reply"])
@pytest.mark.parametrize("hook, topic", COMBOS, ids=[f"{h}-{t}" for h, t in COMBOS])
def test_every_combination_reads_back_as_requested(hook, topic, angle, reply):
    cands = sample(hook, topic, angle=angle, reply=reply)
    assert len(cands) == 45
    for c in cands:
        assert (c.generation_source, c.hook_pattern, c.topic) == ("template", hook, topic)
        assert vocab.detect_hook(c.text) == hook, c.text
        assert vocab.detect_topic(c.text) == topic, c.text
        assert len(c.text) <= 280, c.text
        assert vocab.hashtag_count(c.text) == 0, c.text
        assert not vocab.ends_with_question(c.text), c.text  # closing questions are an experiment arm
        assert "\n" not in c.text and "  " not in c.text
    assert len({c.text for c in cands}) >= 30  # plenty of variety per cell


@pytest.mark.parametrize("hook, topic", COMBOS, ids=[f"{h}-{t}" for h, t in COMBOS])
def test_question_hook_opens_with_a_question_and_others_do_not(hook, topic):
    for c in sample(hook, topic, calls=4):
        first_sentence = re.split(r"(?<=[.!?])\s", c.text, maxsplit=1)[0]
        assert first_sentence.endswith("?") == (hook == "question") or hook == "did_you_know", c.text


def test_a_batch_has_no_near_duplicates():
    gen = TemplateGenerator(seed=3)
    for hook, topic in COMBOS:
        batch = [set(re.findall(r"\w+", c.text.lower())) for c in gen.candidates(hook, topic, 8)]
        assert len(batch) == 8
        for a, b in itertools.combinations(batch, 2):
            assert len(a & b) / len(a | b) < 0.6


def test_pieces_keep_topics_apart():
    """Bodies hit only their own topic; openers and closers hit none. This is what makes read-back work."""
    for pool in (FACTS, TIPS, CLAIMS):
        for topic, bodies in pool.items():
            for body in bodies:
                hits = keyword_hits(body)
                assert hits[topic] >= 1 and sum(hits.values()) == hits[topic], body
                assert re.search(r"[.!?]", body[:-1]) is None and body.endswith("."), body
    neutral = [*itertools.chain.from_iterable(OPENERS.values()), *CTA_STATEMENT_OPENERS, *CLOSERS, *REPLY_CLOSERS,
               *QUESTION_FOLLOWUPS]
    for piece in neutral:
        assert sum(keyword_hits(piece).values()) == 0, piece
    assert set(OPENERS) == set(vocab.HOOK_PATTERNS)


def test_same_seed_same_posts_and_different_seeds_differ():
    a = TemplateGenerator(seed=5).candidates("new_study", "health", 5)
    b = TemplateGenerator(seed=5).candidates("new_study", "health", 5)
    c = TemplateGenerator(seed=6).candidates("new_study", "health", 5)
    assert a == b and a != c
    rng_a, rng_b = np.random.default_rng(9), np.random.default_rng(9)
    assert TemplateGenerator(1).candidates("cta", "ai", 3, rng=rng_a) == TemplateGenerator(2).candidates("cta", "ai", 3, rng=rng_b)


def test_large_batches_stay_distinct():
    cands = TemplateGenerator(seed=0).candidates("plain", "productivity", 40)
    assert len(cands) == 40 and len({c.text for c in cands}) == 40


def test_zero_posts():
    assert TemplateGenerator().candidates("plain", "ai", 0) == []


@pytest.mark.parametrize("kwargs, message", [
    (dict(hook="clickbait", topic="ai", n=1), "unknown hook pattern: 'clickbait'"),
    (dict(hook="plain", topic="crypto", n=1), "unknown topic: 'crypto'"),
    (dict(hook="plain", topic="ai", n=-1), "n must be >= 0"),
    (dict(hook="plain", topic="ai", n=1, angle="sarcastic"), "unknown angle: 'sarcastic'"),
])
def test_bad_requests_name_the_value(kwargs, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        TemplateGenerator().candidates(**kwargs)
