"""The core reads a niche from its Vocabulary, not from the built-in topics: features, the growth model
(which records the topics it learned), the policies (which choose only allowed hooks), the text arms and
the lift covariates all take the account's vocabulary."""
from __future__ import annotations

import math
import re

import numpy as np
import pandas as pd
import pytest

from xbotlib.core import experiments, growth_model, vocab
from xbotlib.core.covariates import covariate_frame, lift_covariates
from xbotlib.core.experiments import Assignment, apply_text_arms, strip_text_arms
from xbotlib.core.features import (FEATURE_NAMES, LocalEmbedder, check_feature_names, extract_features, feature_names,
                                   hook_pattern)
from xbotlib.core.growth_model import PostOutcome
from xbotlib.core.policies import FixedPolicy, HeuristicPolicy, PlanState, RandomPolicy, XbotPolicy

# the cooking niche (issue #18), as an account profile describes it
COOKING = vocab.Vocabulary(
    topics=("baking", "weeknight", "fermentation", "knife_skills", "budget"),
    topic_keywords={
        "baking": ("bread", "sourdough", "bake", "oven", "flour", "dough", "crust", "yeast"),
        "weeknight": ("dinner", "weeknight", "sheet pan", "one-pot", "leftovers", "meal prep", "skillet"),
        "fermentation": ("ferment", "kimchi", "pickle", "brine", "kombucha", "miso", "sauerkraut"),
        "knife_skills": ("knife", "knives", "chop", "dice", "cutting board", "sharpen", "mince"),
        "budget": ("budget", "cheap", "pantry", "beans", "lentil", "rice", "grocer"),
    },
    topic_hashtags={"baking": "#Baking", "weeknight": "#WeeknightDinner", "fermentation": "#Fermentation",
                    "knife_skills": "#KnifeSkills", "budget": "#BudgetCooking"},
    hooks=("did_you_know", "question", "cta", "contrarian", "plain"),
)
HOURS = [8, 12, 17, 19, 21]
TRUE_TOPIC = {"baking": 0.0, "weeknight": 0.45, "fermentation": -0.1, "knife_skills": 0.0, "budget": 0.05}
TRUE_HOOK = {"did_you_know": 0.1, "new_study": 0.6, "question": 0.0, "contrarian": 0.0, "cta": 0.3, "plain": -0.2}


def cooking_posts(n: int, seed: int, hooks=tuple(vocab.HOOK_PATTERNS)) -> list[PostOutcome]:
    """Posts of a cooking account with known topic and hook effects on profile visits."""
    rng = np.random.default_rng(seed)
    posts = []
    for i in range(n):
        hook, hour, topic = hooks[rng.integers(len(hooks))], HOURS[rng.integers(len(HOURS))], COOKING.topics[i % 5]
        mu = 2000 / 200 * math.exp(TRUE_HOOK[hook] + TRUE_TOPIC[topic])
        visits = rng.poisson(mu)
        posts.append(PostOutcome(hook, topic, hour, visits, rng.binomial(visits, 0.12), 2000, 1.0))
    return posts


# ----------------------------------------------------------------------------- features

def test_features_read_a_cooking_post_with_the_cooking_vocabulary():
    text = "Save this: a one-pot weeknight dinner that turns leftovers into lunch."
    emb = LocalEmbedder().embed([text])[0]
    f = extract_features(text, embedding=emb, recent_embeddings=None, novelty_min=0.1, vocabulary=COOKING)
    assert (f.hook, f.topic) == ("cta", "weeknight")
    names = feature_names(COOKING)
    assert [n for n in names if n.startswith("topic_")] == [f"topic_{t}" for t in COOKING.topics]
    assert dict(zip(names, f.vector(names)))["topic_weeknight"] == 1.0
    # the built-in niche does not know this topic: the same text has none there
    assert extract_features(text, embedding=emb, recent_embeddings=None, novelty_min=0.1).topic is None
    with pytest.raises(ValueError, match=r"unknown topic 'ai' \(expected one of this vocabulary's topics: baking, "):
        extract_features(text, embedding=emb, recent_embeddings=None, novelty_min=0.1, topic="ai", vocabulary=COOKING)


def test_a_predictor_learned_for_one_niche_is_refused_for_another_naming_both():
    check_feature_names(feature_names(COOKING), COOKING)        # its own niche: fine
    with pytest.raises(ValueError, match=r"learned for topics \(ai, productivity, science, startups, health\) cannot "
                                         r"be applied to a vocabulary with topics \(baking, weeknight, "):
        check_feature_names(FEATURE_NAMES, COOKING)


def test_hook_rules_are_the_vocabularys_language():
    spanish = vocab.Vocabulary(topics=COOKING.topics, topic_keywords=COOKING.topic_keywords,
                               topic_hashtags=COOKING.topic_hashtags,
                               hook_rules=(("question", re.compile(r"^\s*¿")), ("did_you_know", re.compile(r"^\s*sabías", re.I))))
    assert hook_pattern("¿Cuál es tu pan favorito?", spanish) == "question"
    assert hook_pattern("Sabías que el pan de masa madre dura más", spanish) == "did_you_know"
    assert hook_pattern("¿Cuál es tu pan favorito?") == "plain"   # the English rules do not read Spanish


# ----------------------------------------------------------------------------- growth model

def test_the_growth_model_learns_cooking_topics_and_records_them():
    model = growth_model.fit(cooking_posts(600, seed=1), COOKING)
    assert model.topics == COOKING.topics and len(model.mean) == growth_model.layout(COOKING.topics).n_columns
    mean, _ = model.topic_effects(list(COOKING.topics))
    assert COOKING.topics[int(np.argmax(mean))] == "weeknight"
    assert model.check_vocabulary(COOKING) is model


def test_a_growth_model_is_never_applied_to_another_vocabulary():
    cooking_model = growth_model.fit(cooking_posts(60, seed=2), COOKING)
    with pytest.raises(ValueError, match=r"learned for topics \(baking, weeknight, fermentation, knife_skills, budget\) "
                                         r"cannot be applied to a vocabulary with topics \(ai, productivity, "):
        cooking_model.check_vocabulary(vocab.DEFAULT)
    # posts of one niche cannot be fitted with another's columns: the error names the topic and the vocabulary's
    with pytest.raises(ValueError, match=r"unknown topic 'baking': not one of this vocabulary's topics \(ai, "):
        growth_model.fit(cooking_posts(10, seed=3))
    # a benchmark's own fit that learned the built-in niche is refused for a cooking account
    state = PlanState({}, {}, 30.0, outcomes=[PostOutcome("plain", None, 9, 10, 1, 2000)] * 10, vocabulary=COOKING)
    with pytest.raises(ValueError, match="cannot be applied to a vocabulary with topics"):
        XbotPolicy(fit=growth_model.fit)._choose_with_model(state, list(COOKING.hooks), HOURS,
                                                            np.random.default_rng(0))


# ----------------------------------------------------------------------------- policies

@pytest.mark.parametrize("policy", [XbotPolicy(), RandomPolicy(), HeuristicPolicy(), FixedPolicy("new_study", 19)],
                         ids=lambda p: p.name)
def test_policies_choose_only_hooks_the_vocabulary_allows(policy):
    """new_study is the best hook in these outcomes, offered by rotation, and fixed for the fixed policy:
    a cooking account still never takes it."""
    posts = cooking_posts(80, seed=4)
    state = PlanState({}, {}, 30.0, outcomes=posts, vocabulary=COOKING)
    rng = np.random.default_rng(5)
    picks = [policy.choose(state, list(vocab.HOOK_PATTERNS), HOURS, rng) for _ in range(60)]
    assert {c.hook for c in picks} <= set(COOKING.hooks)
    if policy.name == "xbot":   # and the learner still finds the best allowed hook
        assert max(set(COOKING.hooks), key=[c.hook for c in picks].count) == "cta"
    # with the built-in vocabulary, new_study stays available
    default_state = PlanState({}, {}, 30.0, outcomes=[PostOutcome(p.hook, None, p.hour, p.profile_visits, p.follows,
                                                                  p.followers) for p in posts])
    assert "new_study" in {policy.choose(default_state, list(vocab.HOOK_PATTERNS), HOURS, rng).hook for _ in range(60)}


def test_when_rotation_rules_out_every_allowed_hook_the_vocabulary_wins():
    state = PlanState({}, {}, 1.0, vocabulary=COOKING)
    choice = RandomPolicy().choose(state, ["new_study"], HOURS, np.random.default_rng(0))
    assert choice.hook in COOKING.hooks and choice.hook_propensity == pytest.approx(1 / len(COOKING.hooks))


# ----------------------------------------------------------------------------- experiments and lift

def test_text_arms_use_the_niches_hashtags_and_reader_questions():
    asking = vocab.Vocabulary(topics=COOKING.topics, topic_keywords=COOKING.topic_keywords,
                              topic_hashtags=COOKING.topic_hashtags, reader_questions=("What would you cook?",))
    body = "A sheet pan dinner for busy nights: roast everything at once and eat in thirty minutes"
    arms = {"hashtag_1": Assignment("treatment", 0.5), "question_cta": Assignment("treatment", 0.5)}
    out = apply_text_arms(body, None, arms, np.random.default_rng(0), asking)
    assert out == body + " What would you cook? #WeeknightDinner"
    assert strip_text_arms(out, asking) == body
    with pytest.raises(experiments.ArmDoesNotFit, match=r"no relevant hashtag for topic None \(topics with a "
                                                        r"hashtag: baking, weeknight, "):
        apply_text_arms("A plain sentence about nothing in particular at all, long enough", None,
                        {"hashtag_1": Assignment("treatment", 0.5)}, np.random.default_rng(0), COOKING)


def test_lift_covariates_are_the_niches_topics():
    raw = pd.DataFrame({
        "arm": ["treatment", "control"] * 3, "propensity": [0.5] * 6,
        "content": ["Save this bread recipe", "Try this kimchi", "Why rice?", "A lentil soup", "Bake bread", "Miso"],
        "topic": ["baking", "fermentation", "budget", "budget", "baking", "fermentation"],
        "local_hour": [8, 12, 17, 19, 21, 8], "novelty": [0.5] * 6, "followers": [1500] * 6,
        "reward_composite": [1.0] * 6, "fpki": [1.0] * 6, "er": [0.1] * 6, "follows": [1] * 6})
    df = covariate_frame(raw, COOKING)
    assert {"topic_baking", "topic_fermentation", "topic_budget"} <= set(lift_covariates(df, "hashtag_1"))
    assert not any(c.startswith("topic_ai") for c in df.columns)
    assert df["hook"].tolist()[:2] == ["cta", "cta"]
