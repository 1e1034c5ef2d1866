"""Account profiles: validation names the file, the key and the value; the shipped profiles are sound."""
from __future__ import annotations

import copy
import re
import tomllib

import pytest

from xbotlib.core import vocab
from xbotlib.core.profile import (ProfileError, default_profile, load_profile, parse_profile, profile_changes,
                                  profile_to_toml)

COOKING = "accounts/cooking.toml"


@pytest.fixture(scope="module")
def cooking_doc() -> dict:
    with open(COOKING, "rb") as f:
        return tomllib.load(f)


def _with(doc: dict, path: str, value) -> dict:
    """A copy of ``doc`` with ``path`` ('a.b[2].c') set to ``value`` (``...`` deletes it)."""
    out = copy.deepcopy(doc)
    parts = re.findall(r"[^.\[\]]+|\[\d+\]", path)
    node = out
    for p in parts[:-1]:
        node = node[int(p[1:-1])] if p.startswith("[") else node[p]
    last = parts[-1]
    key = int(last[1:-1]) if last.startswith("[") else last
    if value is ...:
        del node[key]
    else:
        node[key] = value
    return out


INVALID = [
    ("topics[2].keywords", [], r"cooking\.toml: topics\[2\]\.keywords is empty \(give at least 1 keyword\)"),
    ("topics[0].keywords", ["Bread"], r"topics\[0\]\.keywords\[0\] = 'Bread' is not lower case \(write 'bread'\)"),
    ("topics[1].keywords", ["bread"], r"topics\[1\]\.keywords\[0\] = 'bread' is also a keyword of topic 'baking'"),
    ("topics[0].hashtag", "Baking", r"topics\[0\]\.hashtag = 'Baking' is not valid \(a hashtag such as"),
    ("topics[1].name", "baking", r"topics\[1\]\.name = 'baking' repeats an earlier topic"),
    ("topics[0].facts", ..., r"topics\[0\]\.facts is missing"),
    ("topics[0].colour", "red", r"unknown key 'topics\[0\]\.colour' \(expected one of name, keywords"),
    ("topics", [], r"topics = \[\] is not a non-empty list"),
    ("hooks", ["did_you_know", "question"], r"hooks = \['did_you_know', 'question'\] lacks \"plain\""),
    ("hooks", ["plain", "clickbait"], r"hooks\[1\] = 'clickbait' is not a hook pattern \(expected some of"),
    ("timezone", "Europe/Londn", r"timezone = 'Europe/Londn' is not a known time zone"),
    ("handle", "@kitchen", r"handle = '@kitchen' is not valid \(an X handle without '@'"),
    ("id", "Cooking Account", r"id = 'Cooking Account' is not valid \(lower-case letters"),
    ("language", "english", r"language = 'english' is not valid"),
    ("language", "es", r"language = 'es' needs a \[language_pack\] table"),
    ("posting.hours", [8, 25], r"posting\.hours\[1\] = 25 is not an hour from 0 to 23"),
    ("posting.hours", [8, 8], r"posting\.hours = \[8, 8\] repeats an hour"),
    ("posting.posts_per_day", 9, r"posting\.posts_per_day = 9 is above posting\.max_posts_per_day = 6"),
    ("posting.max_posts_per_hour", "2", r"posting\.max_posts_per_hour = '2' is not a whole number from 0 to 100"),
    ("posting.window", [8, 21], r"unknown key 'posting\.window' \(expected one of hours, posts_per_day"),
    ("replies.enabled", "yes", r"replies\.enabled = 'yes' is not true or false"),
    ("replies.searches.pastry", "croissant", r"unknown key 'replies\.searches\.pastry' \(expected a topic: baking"),
    ("voice.persona", ..., r"voice\.persona is missing \(who writes"),
    ("voice.tone", "warm", r"unknown key 'voice\.tone'"),
    ("banned_phrase", ["x"], r"unknown key 'banned_phrase' \(expected one of .*check the spelling\)"),
    ("language_pack", {"closers": []}, r"language_pack = '\{…\}' is for languages other than \"en\""),
]


@pytest.mark.parametrize("path, value, message", INVALID, ids=[f"{p}={v!r}"[:40] for p, v, _ in INVALID])
def test_invalid_profiles_name_the_file_key_and_value(cooking_doc, path, value, message):
    with pytest.raises(ProfileError, match=message) as err:
        parse_profile(_with(cooking_doc, path, value), "accounts/cooking.toml")
    assert str(err.value).startswith("accounts/cooking.toml: ")


def test_a_missing_file_and_bad_toml_say_so(tmp_path):
    with pytest.raises(ProfileError, match=r"nope\.toml: no such file \(pass a profile TOML"):
        load_profile(tmp_path / "nope.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("id = \n")
    with pytest.raises(ProfileError, match=r"bad\.toml: not valid TOML"):
        load_profile(bad)


def test_the_default_profile_is_the_built_in_vocabulary_and_settings():
    p = default_profile()
    assert p.vocabulary() == vocab.DEFAULT
    assert p.settings_overrides() == {"timezone": "UTC", "banned_phrases": ("as an ai", "lorem ipsum", "click here",
                                                                            "guaranteed returns"),
                                      "posting_hours": (7, 9, 11, 13, 15, 17, 19, 21), "plan_posts_per_day": 4,
                                      "posts_per_day_cap": 8, "posts_per_hour_cap": 2, "plan_replies_per_day": 1}
    # today's reply search: the topic's first three keywords
    assert [p.reply_query(t) for t in vocab.TOPICS] == [" OR ".join(vocab.TOPIC_KEYWORDS[t][:3]) for t in vocab.TOPICS]


def test_the_cooking_profile_is_its_own_niche():
    p = load_profile(COOKING)
    v = p.vocabulary()
    assert v.topics == ("baking", "weeknight", "fermentation", "knife_skills", "budget")
    assert "new_study" not in v.hooks and "plain" in v.hooks
    assert v.topic_hashtags["knife_skills"] == "#KnifeSkills"
    assert v.detect_topic("My sourdough finally got a proper crust") == "baking"
    assert v.detect_topic("Sharpen your knives before you dice onions") == "knife_skills"
    assert p.settings_overrides()["posting_hours"] == (8, 12, 17, 19, 21)
    assert p.settings_overrides()["timezone"] == "Europe/London"
    assert all(len(t.facts) >= 8 and len(t.tips) >= 8 and len(t.claims) >= 6 for t in p.topics)


def test_replies_off_plans_no_replies(cooking_doc):
    p = parse_profile(_with(cooking_doc, "replies.enabled", False))
    assert p.settings_overrides()["plan_replies_per_day"] == 0


@pytest.mark.parametrize("path", ["accounts/default.toml", COOKING])
def test_toml_and_dict_round_trips(path):
    p = load_profile(path)
    assert parse_profile(p.to_dict()) == p
    assert parse_profile(tomllib.loads(profile_to_toml(p))) == p
    assert parse_profile(p.to_dict()).sha256 == p.sha256


def test_changes_say_what_changed(cooking_doc):
    old = parse_profile(cooking_doc)
    new_doc = _with(cooking_doc, "posting.hours", [8, 12])
    new_doc["topics"][1]["facts"] = new_doc["topics"][1]["facts"][:-1]
    new_doc["topics"].pop(4)
    new_doc["replies"]["searches"].pop("budget")
    new = parse_profile(new_doc)
    assert profile_changes(old, new) == [
        "posting.hours: [8, 12, 17, 19, 21] -> [8, 12]",
        "replies.searches.budget: removed",
        "topics: 'weeknight' changed (facts)",
        "topics: removed 'budget'"]
    assert profile_changes(None, old) == ["new account 'cooking': 5 topics (baking, weeknight, fermentation, "
                                          "knife_skills, budget)"]


SPANISH_PACK = {
    "hook_rules": {"question": r"^\s*(¿|qué|por qué|cómo)", "cta": r"^\s*(prueba esto|guarda esto)"},
    "openers": {"question": ["¿Sabías que {c}? {S2}"], "cta": ["Prueba esto: {S}"], "plain": ["{S}", "Nota: {S}"]},
    "closers": ["", "Vale la pena."],
    "reply_closers": ["Justo lo que dice este hilo."],
    "question_followups": ["Cambia cómo cocinas."],
    "hook_instructions": {"question": "Empieza con una pregunta.", "cta": "Empieza con «Prueba esto:».",
                          "plain": "Escribe una frase directa."},
    "reader_questions": ["¿Qué opinas?"],
}


def test_another_language_brings_its_own_pack(cooking_doc):
    doc = _with(_with(cooking_doc, "language", "es"), "hooks", ["question", "cta", "plain"])
    doc["language_pack"] = SPANISH_PACK
    p = parse_profile(doc, "accounts/cocina.toml")
    v = p.vocabulary()
    assert v.hooks == ("question", "cta", "plain") and v.reader_questions == ("¿Qué opinas?",)
    assert v.detect_hook("Prueba esto: pan con masa madre") == "cta"
    assert v.detect_hook("¿Sabías que el pan mejora?") == "question"
    assert parse_profile(tomllib.loads(profile_to_toml(p))) == p
    broken = copy.deepcopy(doc)
    del broken["language_pack"]["hook_rules"]["cta"]
    with pytest.raises(ProfileError, match=r"language_pack\.hook_rules\.cta is missing \(allowed hook 'cta' needs"):
        parse_profile(broken, "accounts/cocina.toml")
    broken = _with(doc, "language_pack.openers.cta", ["Prueba esto ahora"])
    with pytest.raises(ProfileError, match=r"language_pack\.openers\.cta\[0\] = 'Prueba esto ahora' has neither"):
        parse_profile(broken, "accounts/cocina.toml")
