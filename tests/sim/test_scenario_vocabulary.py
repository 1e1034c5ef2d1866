"""A scenario's audience reads text with its own vocabulary: scenarios/cooking.toml is a cooking world
(its topics, keywords and hashtags), with its own best choice; search, reply candidates, the audience
and the oracle all use the scenario's topics; bad topic keys are refused by file, key and value."""
from __future__ import annotations

import tomllib
from datetime import datetime, timezone

import pytest

from xbotlib.clients.xapi import XClient
from xbotlib.core import vocab
from xbotlib.sim.audience import draw_totals, expected_outcome, read_text, tweet_rng
from xbotlib.sim.candidates import reply_candidates
from xbotlib.sim.oracle import Oracle
from xbotlib.sim.scenario import SCENARIO_DIR, ScenarioError, load_scenario, parse_scenario
from xbotlib.sim.xserver import SandboxX

# the cooking niche of issue #18: names, order, keywords and hashtags are shared with the account profile
COOKING_TOPICS = {
    "baking": (("bread", "sourdough", "bake", "oven", "flour", "dough", "crust", "yeast"), "#Baking"),
    "weeknight": (("dinner", "weeknight", "sheet pan", "one-pot", "leftovers", "meal prep", "skillet"),
                  "#WeeknightDinner"),
    "fermentation": (("ferment", "kimchi", "pickle", "brine", "kombucha", "miso", "sauerkraut"), "#Fermentation"),
    "knife_skills": (("knife", "knives", "chop", "dice", "cutting board", "sharpen", "mince"), "#KnifeSkills"),
    "budget": (("budget", "cheap", "pantry", "beans", "lentil", "rice", "grocer"), "#BudgetCooking"),
}
COOKING_HOOKS = ("did_you_know", "question", "cta", "contrarian", "plain")
COOKING_HOURS = (8, 12, 17, 19, 21)


def test_the_cooking_scenario_reads_the_cooking_niche():
    scenario = load_scenario("cooking")
    words = scenario.vocabulary
    assert words.topics == tuple(COOKING_TOPICS)
    assert {t: (tuple(words.topic_keywords[t]), words.topic_hashtags[t]) for t in words.topics} == COOKING_TOPICS
    assert scenario.timezone == "Europe/London" and set(scenario.topics) == set(COOKING_TOPICS)
    assert load_scenario(None).vocabulary is vocab.DEFAULT      # a scenario without keywords: the built-in niche


def test_the_cooking_audiences_best_choice_is_its_own():
    cooking, default = Oracle("cooking"), Oracle(None)
    best = cooking.best_choice(COOKING_HOURS, COOKING_HOOKS)
    assert best[0] in COOKING_HOOKS and best[1] in COOKING_HOURS
    assert best == ("cta", 19) != default.best_choice()
    assert cooking.best_topic(COOKING_HOURS, COOKING_HOOKS) == "weeknight" in COOKING_TOPICS
    # learnable: the best hook stands out from the next best allowed one by more than noise of a month
    follows = sorted((sum(cooking.expected_follows(h, 19, t) for t in cooking.topics), h) for h in COOKING_HOOKS)
    assert follows[-1][0] / follows[-2][0] > 1.25
    with pytest.raises(ValueError, match=r"unknown topic 'ai' \(expected None or one of the topics of scenario "
                                         r"'cooking': baking, weeknight"):
        cooking.expected("plain", 9, "ai")
    assert {e: round(cooking.relative_lift(e, "follows"), 2) for e in ("hashtag_1", "late_evening_slot")} \
        == {"hashtag_1": 0.08, "late_evening_slot": -0.29}


def test_the_audience_reads_topics_with_the_scenarios_keywords():
    cooking = load_scenario("cooking")
    kimchi = "Did you know kimchi keeps fermenting in the fridge? Taste the brine after a week."
    assert read_text(kimchi, cooking.vocabulary).topic == "fermentation"
    assert read_text(kimchi).topic is None                       # the built-in niche does not know it
    ai = read_text("Did you know small AI models can beat big ones. Worth a look.", cooking.vocabulary)
    assert ai.topic is None                                      # a cooking audience does not know 'ai'
    on_topic = expected_outcome(cooking, read_text(kimchi, cooking.vocabulary), hour=19, followers=1500)
    off_topic = expected_outcome(cooking, ai, hour=19, followers=1500)
    assert on_topic.follows / off_topic.follows == pytest.approx(
        cooking.topic_effect("fermentation").follows / cooking.no_topic.follows, rel=1e-9)


def test_search_finds_the_scenarios_own_topics(clock):
    sandbox = SandboxX("cooking", clock=clock, seed=3)
    words = sandbox.scenario.vocabulary
    with XClient.in_process(sandbox) as c:
        found = c.search_recent("kimchi OR brine OR miso", max_results=20)
        anything = c.search_recent("something else entirely", max_results=50)
    assert found and all(words.detect_topic(t.text) == "fermentation" for t in found)
    assert {words.detect_topic(t.text) for t in anything} <= set(words.topics)
    assert len({words.detect_topic(t.text) for t in anything}) > 1   # no keyword: every topic of the world
    with pytest.raises(ValueError, match=r"unknown topic 'ai' \(scenario 'cooking' knows: baking, "):
        reply_candidates(sandbox.scenario, 3, datetime(2026, 3, 2, tzinfo=timezone.utc), ["ai"])


def test_the_default_worlds_search_is_unchanged(clock):
    """The built-in niche keeps its written-out tweets (the demo's numbers depend on them)."""
    scenario = load_scenario(None)
    found = reply_candidates(scenario, 1, datetime(2026, 3, 2, tzinfo=timezone.utc), ["health"])
    assert found and all(vocab.detect_topic(c.text) == "health" for c in found)
    assert "sleep regularity matters more than sleep length" in {c.text.split(": ")[-1].rstrip(".") for c in found}


def cooking_raw() -> dict:
    return tomllib.loads((SCENARIO_DIR / "cooking.toml").read_text())


@pytest.mark.parametrize("edit, match", [
    (lambda d: d["topics"]["budget"].pop("keywords"),
     r"\[topics.budget\] keywords = None: expected a list of lower-case keywords: once one topic has keywords"),
    (lambda d: d["topics"]["baking"].update(keywords=["Bread"]),
     r"\[topics.baking\] keywords = \['Bread'\]: expected a non-empty list of lower-case keywords"),
    (lambda d: d["topics"]["baking"].update(keywords=[]), r"\[topics.baking\] keywords = \[\]"),
    (lambda d: d["topics"]["baking"].update(hashtag="Baking"),
     r"\[topics.baking\] hashtag = 'Baking': expected one hashtag such as"),
    (lambda d: d["topics"].update({"Grilling": {"keywords": ["grill"]}}), r"\[topics\] Grilling = .*lower-case letters"),
    (lambda d: d["topics"]["none"].update(keywords=["x"]), r"\[topics.none\] keywords = \['x'\]: expected no keywords"),
    (lambda d: d["topics"]["baking"].update(folow_rate=1.2), r"\[topics.baking\] folow_rate = 1.2: expected one of"),
])
def test_topic_keys_are_checked_naming_file_key_and_value(edit, match):
    raw = cooking_raw()
    edit(raw)
    with pytest.raises(ScenarioError, match=match) as info:
        parse_scenario(raw, source="cooking.toml")
    assert str(info.value).startswith("cooking.toml: ")


def test_a_topic_without_keywords_must_be_a_built_in_one():
    raw = tomllib.loads((SCENARIO_DIR / "default.toml").read_text())
    raw["topics"]["baking"] = {"impressions": 1.1}
    with pytest.raises(ScenarioError, match=r"\[topics\] baking = .*one of the known keys: ai, health, none"):
        parse_scenario(raw, source="mine.toml")


def test_a_hashtag_defaults_from_the_topic_name():
    raw = cooking_raw()
    raw["topics"]["knife_skills"].pop("hashtag")
    assert parse_scenario(raw).vocabulary.topic_hashtags["knife_skills"] == "#KnifeSkills"


def test_a_cooking_world_reads_posts_with_its_vocabulary_when_they_go_out(clock):
    sandbox = SandboxX("cooking", clock=clock, seed=1)
    with XClient.in_process(sandbox) as c:
        c.create_tweet("Save this: sourdough bread needs a hot oven and a long rest for the dough.")
    post, scenario = sandbox.tweets[0], sandbox.scenario

    def totals(signals):
        exp = expected_outcome(scenario, signals, hour=post.local_hour, followers=post.followers_at_post, similarity=post.similarity)
        return draw_totals(scenario, exp, tweet_rng(1, post.tweet_id))

    as_cooking = read_text(post.text, scenario.vocabulary)
    assert (as_cooking.topic, as_cooking.hook) == ("baking", "cta")
    # the drawn totals are the cooking reading's (topic baking), not the built-in niche's (no topic)
    assert post.totals == totals(as_cooking) != totals(read_text(post.text))
