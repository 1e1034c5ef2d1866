"""Generation reads the account profile: the default one reproduces the built-in posts exactly, the
cooking one writes about its own topics in its own voice on both paths (templates; the real OpenAI SDK
against the fake server), with its allowed hooks only, and the quality gate refuses its banned phrases."""
from __future__ import annotations

import hashlib
import itertools

import numpy as np
import pytest

from xbotlib.clients.generation import (LLMContentGenerator, TemplateGenerator, build_prompt, make_generator,
                                        system_prompt, template_problems)
from xbotlib.clients.llm import LLMClient
from xbotlib.core import vocab
from xbotlib.core.gates import quality_gate
from xbotlib.core.profile import default_profile, load_profile, parse_profile
from xbotlib.devtools.fake_openai import FakeOpenAI, fake_posts
from xbotlib.store import ledger as store_ledger

COOKING = load_profile("accounts/cooking.toml")
# sha256 over the texts below, computed with the generator before profiles existed (templates.py's own
# FACTS / TIPS / CLAIMS, commit c38024e): the built-in profile must write exactly the same posts.
BUILT_IN_TEMPLATES_SHA = "dd8abb4701c863bd1264e83fc6ddacba298188650120a8a034a54f942dcd812f"
BUILT_IN_FAKE_LLM_SHA = "7563d001fbcb87fb5b8ce9eec04598ca1645d3cd228308ce71950d68c8431d70"
VARIANTS = ((None, None), ("contrarian", None), (None, "x"), ("contrarian", "y"))


def test_the_default_profile_writes_the_same_template_posts_as_before():
    h = hashlib.sha256()
    for seed in range(3):
        g = TemplateGenerator(seed)  # no profile: the built-in one, accounts/default.toml
        for hook, topic in itertools.product(vocab.HOOK_PATTERNS, vocab.TOPICS):
            for angle, reply in VARIANTS:
                for c in g.candidates(hook, topic, 4, angle=angle, reply_to_text=reply):
                    h.update(c.text.encode())
    assert h.hexdigest() == BUILT_IN_TEMPLATES_SHA


def test_the_fake_llm_answers_the_default_prompts_as_before():
    """The prompt now carries the topic's material; the fake writes from it the same posts it wrote
    from its built-in tables, so LLM-path runs of the built-in niche are unchanged too."""
    h = hashlib.sha256()
    for hook, topic in itertools.product(vocab.HOOK_PATTERNS, vocab.TOPICS):
        for angle, reply in VARIANTS:
            h.update(fake_posts([{"content": build_prompt(hook, topic, 4, angle=angle, reply_to_text=reply)}], 5).encode())
    assert h.hexdigest() == BUILT_IN_FAKE_LLM_SHA


@pytest.mark.parametrize("path", ["accounts/default.toml", "accounts/cooking.toml"])
def test_shipped_profiles_follow_the_template_rules(path):
    assert template_problems(load_profile(path)) == []


def test_template_rule_problems_name_the_piece_and_the_fix():
    doc = COOKING.to_dict()
    doc["topics"][0]["facts"][0] = "Sourdough pairs well with kimchi."          # another topic's keyword
    doc["topics"][1]["tips"][2] = "Preheat the skillet. Then add oil."           # two sentences
    doc["topics"][2]["claims"][0] = "Tea is fine."                              # none of its keywords
    doc["topics"][3]["facts"][1] = "A sharp knife is a guaranteed win."         # banned phrase
    problems = template_problems(parse_profile(doc, "accounts/cooking.toml"))
    assert problems == [
        "accounts/cooking.toml: topics[0].facts[0] = 'Sourdough pairs well with kimchi.' has keywords of other "
        "topics: fermentation (reword it; a body must read back as its own topic)",
        "accounts/cooking.toml: topics[1].tips[2] = 'Preheat the skillet. Then add oil.' must be one sentence "
        "ending in '.' with no '.', '!' or '?' before it (use ';' or ',')",
        "accounts/cooking.toml: topics[2].claims[0] = 'Tea is fine.' has none of topic 'fermentation''s keywords "
        "(add one: ferment, kimchi, pickle, brine, kombucha, miso, sauerkraut)",
        "accounts/cooking.toml: topics[3].facts[1] = 'A sharp knife is a guaranteed win.' contains banned "
        "phrase(s) guaranteed"]


def _cooking_sample(gen, calls: int = 6):
    v = COOKING.vocabulary()
    for hook, topic in itertools.product(v.hooks, v.topics):
        for angle, reply in VARIANTS:
            if angle == "contrarian" and hook not in ("contrarian", "plain", "cta"):
                continue
            for s in range(calls):
                yield hook, topic, gen.candidates(hook, topic, 2, angle=angle, reply_to_text=reply,
                                                  rng=np.random.default_rng(s))


def _assert_cooking_posts(samples, source: str) -> int:
    v, n = COOKING.vocabulary(), 0
    for hook, topic, cands in samples:
        assert cands, (hook, topic)
        for c in cands:
            n += 1
            assert (c.generation_source, c.hook_pattern, c.topic) == (source, hook, topic)
            assert v.detect_topic(c.text) == topic, c.text
            assert v.detect_hook(c.text) == hook and hook in COOKING.hooks, c.text
            assert quality_gate(c.text, 1.0, 0.0, COOKING.banned_phrases).ok, c.text
    return n


def test_cooking_templates_write_its_topics_with_its_hooks():
    assert _assert_cooking_posts(_cooking_sample(TemplateGenerator(4, COOKING)), "template") > 500
    with pytest.raises(ValueError, match="hook pattern 'new_study' is not allowed for account 'cooking' "
                                         r"\(its profile allows did_you_know, question, contrarian, cta, plain\)"):
        TemplateGenerator(1, COOKING).candidates("new_study", "baking", 1)
    with pytest.raises(ValueError, match=r"unknown topic: 'ai' \(expected one of baking, weeknight"):
        TemplateGenerator(1, COOKING).candidates("plain", "ai", 1)


def test_the_quality_gate_refuses_the_profiles_banned_phrases():
    text = "This sourdough trick is a guaranteed crowd pleaser for any home kitchen."
    verdict = quality_gate(text, 1.0, 0.0, COOKING.banned_phrases)
    assert (verdict.ok, verdict.gate, verdict.reason) == (False, "quality", "banned phrase 'guaranteed'")
    assert quality_gate(text.replace("guaranteed", "Superfood"), 1.0, 0.0, COOKING.banned_phrases).reason == \
        "banned phrase 'superfood'"
    assert quality_gate(text, 1.0, 0.0, default_profile().banned_phrases).ok  # another account may say it


def test_the_system_prompt_is_the_profiles_voice():
    built_in = ("You write posts for an X (Twitter) account about ai, productivity, science, startups, health. "
                "Voice: clear, specific, friendly, no hype, no invented statistics. Rules for every post: at most "
                "270 characters, no hashtags, no links, no emojis, do not end by asking the reader a question.")
    assert system_prompt().startswith(built_in)  # today's prompt, then the banned phrases
    cooking = system_prompt(COOKING)
    assert cooking.startswith(COOKING.voice.persona + " Voice: warm, practical and kitchen-tested")
    assert "never recommend raw or undercooked meat, fish or eggs" in cooking and '"superfood"' in cooking
    prompt = build_prompt("cta", "fermentation", 3, profile=COOKING)
    assert "Topic: fermentation" in prompt and "Keywords: ferment, kimchi, pickle" in prompt
    assert f"Material: {COOKING.topic('fermentation').tips[0]}" in prompt  # cta posts draw on its tips


@pytest.fixture(scope="module")
def fake():
    with FakeOpenAI(slow_s=1.0) as server:
        yield server


def test_cooking_llm_posts_through_the_real_sdk_are_about_its_topics(settings, db, clock, fake):
    llm_settings = settings.replace(openai_api_key="sk-test", openai_base_url=fake.base_url, openai_timeout_s=5.0)
    gen = make_generator(llm_settings, db, clock, "cooking", ledger=store_ledger, profile=COOKING)
    assert isinstance(gen, LLMContentGenerator) and gen.fallback.profile is COOKING
    samples = []
    for hook, topic in itertools.product(COOKING.hooks, COOKING.topic_names):
        gen.llm.new_tick()
        samples.append((hook, topic, gen.candidates(hook, topic, 3, rng=np.random.default_rng(1))))
    assert _assert_cooking_posts(samples, "llm") == 3 * len(samples)
    first = fake.requests[0].body["messages"]
    assert first[0]["content"] == system_prompt(COOKING)
    assert "Topic: baking" in first[1]["content"]


def test_the_fake_writes_generic_text_for_a_topic_without_material():
    v = parse_profile({**COOKING.to_dict()}).vocabulary()
    answer = fake_posts([{"content": "Hook pattern: plain\nTopic: baking\nKeywords: bread, oven\nCount: 3"}], 1)
    lines = answer.splitlines()
    assert len(lines) == 3 and all(v.detect_topic(line) == "baking" for line in lines)


def test_llm_generator_refuses_hooks_the_profile_does_not_allow(settings, db, clock):
    llm = LLMClient(settings.replace(openai_api_key="sk-test", openai_base_url="http://127.0.0.1:9"), db, clock,
                    "cooking", ledger=store_ledger)
    with pytest.raises(ValueError, match="hook pattern 'new_study' is not allowed for account 'cooking'"):
        LLMContentGenerator(llm, profile=COOKING).candidates("new_study", "baking", 2)
