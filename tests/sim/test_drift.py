"""Worlds that change: the drift and interaction keys of the scenario format, the audience applying them at
the post's time, the oracle knowing them, and stationary scenarios unchanged by their arrival."""
from __future__ import annotations

import copy
import dataclasses
import json
import math
import tomllib
from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import pytest

from stationary_values import SCENARIOS, stationary_values
from xbotlib.core import vocab
from xbotlib.core.policies import PlanState
from xbotlib.sim.audience import (TextSignals, WorldTime, conditions, draw_totals, expected_outcome, read_text, tweet_rng,
                                  world_time)
from xbotlib.sim.oracle import Oracle, days_to_move, slot_time
from xbotlib.sim.policies import make_policy
from xbotlib.sim.scenario import (MAX_MULTIPLIER, NEUTRAL, SCENARIO_DIR, WORLD_START, Effect, ScenarioError,
                                  load_scenario, parse_scenario)
from xbotlib.sim.world import AudienceModel

ROOT = Path(__file__).resolve().parents[2]
STEP = {"day": 30, "hooks": {"did_you_know": {"follow_rate": 0.5}}}


def _raw(**extra) -> dict:
    """default.toml as a mapping, with ``extra`` top-level keys."""
    raw = tomllib.loads((SCENARIO_DIR / "default.toml").read_text())
    raw.update(copy.deepcopy(extra))
    return raw


def _signals(hook: str, topic: str | None = "science") -> TextSignals:
    return TextSignals(hook=hook, topic=topic, hashtags=0, question_cta=False, contrarian=hook == "contrarian",
                       has_link=False)


def _follows(scenario, hook: str, hour: int = 11, topic: str | None = "science", day: float = 0.0,
             weekday: int = 0) -> float:
    return expected_outcome(scenario, _signals(hook, topic), hour=hour, followers=2000,
                            when=WorldTime(day, weekday)).follows


# ----------------------------------------------------------------------------- parsing and validation

def test_each_new_key_parses():
    sc = parse_scenario(_raw(
        drift={"steps": [STEP, {"day": 10.5, "topics": {"none": {"impressions": 0.5}},
                                "hours": {"reach": [2.0] * 24}}],
               "trends": [{"from_day": 5, "to_day": 15, "hooks": {"plain": {"engagement": 0.25}},
                           "hours": {"quality": [0.5] * 24}}],
               "weekly": {"reach": [1, 1, 1, 1, 1, 0.5, 0.5]}},
        interactions={"hook_hour": [{"hook": "question", "hours": [19, 21], "follow_rate": 1.5}],
                      "hook_topic": [{"hook": "new_study", "topic": "health", "profile_visits": 1.3}]}))
    assert not sc.stationary
    assert [s.day for s in sc.drift.steps] == [10.5, 30.0]  # in day order
    assert sc.drift.steps[0].change.topics["none"] == Effect(impressions=0.5)
    assert sc.drift.steps[0].change.reach == (2.0,) * 24 and sc.drift.steps[0].change.quality == (1.0,) * 24
    assert sc.drift.steps[1].change.hooks == {"did_you_know": Effect(follow_rate=0.5)}
    trend = sc.drift.trends[0]
    assert (trend.from_day, trend.to_day, trend.change.quality) == (5.0, 15.0, (0.5,) * 24)
    assert sc.drift.weekly.reach == (1, 1, 1, 1, 1, 0.5, 0.5) and sc.drift.weekly.quality == (1.0,) * 7
    hour_i, topic_i = sc.interactions
    assert (hour_i.hook, hour_i.hours, hour_i.effect) == ("question", frozenset({19, 21}), Effect(follow_rate=1.5))
    assert (topic_i.hook, topic_i.topic, topic_i.effect) == ("new_study", "health", Effect(profile_visits=1.3))
    # interactions alone do not make a world drift: they do not depend on time
    assert parse_scenario(_raw(interactions={"hook_topic": [{"hook": "cta", "topic": "none"}]})).stationary


BAD = [
    ({"drift": {"step": [STEP]}}, r"\[drift\] step = .*one of the known keys: steps, trends, weekly"),
    ({"drift": {"steps": STEP}}, r"\[drift\] steps = .*an array of tables, written \[\[drift.steps\]\]"),
    ({"drift": {"steps": [{"hooks": STEP["hooks"]}]}}, r"\[drift.steps\[0\]\] day = None: expected the day"),
    ({"drift": {"steps": [{**STEP, "day": -1}]}}, r"\[drift.steps\[0\]\] day = -1: expected a finite number ≥ 0"),
    ({"drift": {"steps": [{**STEP, "day": "30"}]}}, r"\[drift.steps\[0\]\] day = '30': expected a number"),
    ({"drift": {"steps": [{"day": 3}]}}, r"\[drift.steps\[0\]\] hooks = None: expected at least one of hooks"),
    ({"drift": {"steps": [{**STEP, "when": 3}]}}, r"\[drift.steps\[0\]\] when = 3: expected one of the known keys"),
    ({"drift": {"steps": [{"day": 3, "hooks": {"shout": {"follow_rate": 2}}}]}},
     r"\[drift.steps\[0\].hooks\] shout = .*one of the known keys: contrarian, cta"),
    ({"drift": {"steps": [{"day": 3, "hooks": {"cta": {"follows": 2}}}]}},
     r"\[drift.steps\[0\].hooks.cta\] follows = 2: expected one of the known keys"),
    ({"drift": {"steps": [{"day": 3, "topics": {"cooking": {"impressions": 2}}}]}},
     r"\[drift.steps\[0\].topics\] cooking = .*one of the known keys: ai, health, none"),
    ({"drift": {"steps": [{"day": 3, "hours": {"reach": [1.0] * 23}}]}},
     r"\[drift.steps\[0\].hours\] reach = .*a list of 24 multipliers"),
    ({"drift": {"trends": [{"from_day": 3, "hooks": STEP["hooks"]}]}},
     r"\[drift.trends\[0\]\] to_day = None: expected the day the trend is complete"),
    ({"drift": {"trends": [{"from_day": 10, "to_day": 10, "hooks": STEP["hooks"]}]}},
     r"\[drift.trends\[0\]\] to_day = 10: expected a day after from_day \(10\)"),
    ({"drift": {"weekly": {"reach": [1.0] * 6}}}, r"\[drift.weekly\] reach = .*a list of 7 multipliers, one per local weekday"),
    ({"drift": {"weekly": {"sunday": 0.5}}}, r"\[drift.weekly\] sunday = 0.5: expected one of the known keys: quality, reach"),
    ({"drift": {"weekly": {}}}, r"\[drift\] weekly = \{\}: expected reach and/or quality"),
    ({"drift": {"weekly": {"reach": [1, 1, 1, 1, 1, 1, 11]}}},
     r"\[drift.weekly\] reach\[6\] = 11: expected a multiplier between 0 and 10"),
    ({"interactions": {"hook_day": []}}, r"\[interactions\] hook_day = \[\]: expected one of the known keys: hook_hour, hook_topic"),
    ({"interactions": {"hook_hour": [{"hook": "shout", "hours": [9]}]}},
     r"\[interactions.hook_hour\[0\]\] hook = 'shout': expected one of did_you_know"),
    ({"interactions": {"hook_hour": [{"hook": "cta", "hours": [9, 24]}]}},
     r"\[interactions.hook_hour\[0\]\] hours = \[9, 24\]: expected a non-empty list of distinct local hours 0..23"),
    ({"interactions": {"hook_hour": [{"hook": "cta", "hours": [9, 9]}]}},
     r"\[interactions.hook_hour\[0\]\] hours = \[9, 9\]: expected a non-empty list of distinct"),
    ({"interactions": {"hook_hour": [{"hook": "cta"}]}}, r"\[interactions.hook_hour\[0\]\] hours = None: expected a non-empty list"),
    ({"interactions": {"hook_hour": [{"hook": "cta", "hours": [9], "topic": "ai"}]}},
     r"\[interactions.hook_hour\[0\]\] topic = 'ai': expected one of the known keys"),
    ({"interactions": {"hook_topic": [{"hook": "cta", "topic": "cooking"}]}},
     r"\[interactions.hook_topic\[0\]\] topic = 'cooking': expected one of the scenario's topics: ai, "),
    ({"interactions": {"hook_topic": [{"hook": "cta", "topic": "ai", "follow_rate": -1}]}},
     r"\[interactions.hook_topic\[0\]\] follow_rate = -1: expected a finite number ≥ 0"),
    ({"derived_from": "deafult"}, r"derived_from = 'deafult': expected a shipped scenario \(afternoon_questions, .*default, "
                                  r".*\) or a \.toml file next to this one"),
    ({"derived_from": 7}, r"derived_from = 7: expected a non-empty string"),
]


@pytest.mark.parametrize("extra, message", BAD)
def test_a_bad_drift_or_interaction_key_is_refused_naming_file_key_value_and_expectation(extra, message):
    with pytest.raises(ScenarioError, match=r"^my\.toml: " + message):
        parse_scenario(_raw(**extra), source="my.toml")


def test_omitted_sections_take_default_toml_values():
    """An omitted section used to take other values (no [fatigue]: onset 0.3, penalty 0.6; no [hours]: flat
    curves; churn 0.002); now every omitted setting is default.toml's."""
    bare, default = parse_scenario({"name": "bare"}), load_scenario("default")
    for section in ("account", "reach", "hours", "rates", "fatigue", "replies", "x"):
        assert getattr(bare, section) == getattr(default, section), section
    assert (bare.fatigue.onset, bare.fatigue.max_penalty) == (0.35, 0.5)
    # effect tables omitted: no effect
    assert bare.hook_effect("did_you_know") == NEUTRAL and bare.topic_effect(None) == NEUTRAL
    # one key omitted: default.toml's value for it, the file's for the rest
    partial = parse_scenario({"name": "p", "fatigue": {"onset": 0.5}})
    assert (partial.fatigue.onset, partial.fatigue.max_penalty, partial.fatigue.window_days) == (0.5, 0.5, 7)


def test_multipliers_are_bounded_and_a_follow_probability_above_one_is_refused():
    with pytest.raises(ScenarioError, match=r"\[hooks.cta\] follow_rate = 40: expected a multiplier between 0 and 10"):
        parse_scenario({"name": "x", "hooks": {"cta": {"follow_rate": 40}}})
    with pytest.raises(ScenarioError, match=r"\[hours\] reach\[3\] = 12: expected a multiplier between 0 and 10"):
        parse_scenario({"name": "x", "hours": {"reach": [1] * 3 + [12] + [1] * 20}})
    assert parse_scenario({"name": "x", "hooks": {"cta": {"impressions": MAX_MULTIPLIER}}}).hooks["cta"].impressions == 10
    # 0.12 × 9 = 1.08: refused, naming the key and the most it may be (1 / 0.12 = 8.33)
    with pytest.raises(ScenarioError, match=r"\[hooks.cta\] follow_rate = 9: expected at most 8.33: a post could "
                                            r"have a follow probability of 1.08 .*lower this multiplier"):
        parse_scenario({"name": "x", "hooks": {"cta": {"follow_rate": 9}}})
    assert parse_scenario({"name": "x", "hooks": {"cta": {"follow_rate": 8}}}).hooks["cta"].follow_rate == 8
    # the factors that can apply to one post at once multiply: hook × topic × experiment × interaction × step
    with pytest.raises(ScenarioError, match=r"\[interactions.hook_hour\[0\]\] follow_rate = 5: .*hooks.cta 2 × "
                                            r"interactions.hook_hour\[0\] 5"):
        parse_scenario({"name": "x", "hooks": {"cta": {"follow_rate": 2}},
                        "interactions": {"hook_hour": [{"hook": "cta", "hours": [9], "follow_rate": 5}]}})
    with pytest.raises(ScenarioError, match=r"\[drift.steps\[0\].topics.ai\] follow_rate = 5"):
        parse_scenario({"name": "x", "topics": {"ai": {"follow_rate": 2}},
                        "drift": {"steps": [{"day": 1, "topics": {"ai": {"follow_rate": 5}}}]}})
    # hook × hour entries at different hours never meet on one post: 0.12 × 2 × 4 = 0.96 at 9 and at 10 is fine
    ok = parse_scenario({"name": "x", "hooks": {"cta": {"follow_rate": 2}}, "interactions": {"hook_hour": [
        {"hook": "cta", "hours": [9], "follow_rate": 4}, {"hook": "cta", "hours": [10], "follow_rate": 4}]}})
    assert len(ok.interactions) == 2


# ----------------------------------------------------------------------------- the audience at the post's time

def test_a_step_applies_from_its_day_on():
    step, default = load_scenario("default_step"), load_scenario("default")
    for hook in vocab.HOOK_PATTERNS:  # before day 30: the default world exactly
        assert _follows(step, hook, day=29.999) == _follows(default, hook)
    # from day 30 on: did_you_know and new_study have traded places (their multipliers swap to 1e-12)
    assert _follows(step, "new_study", day=30.0) == pytest.approx(_follows(default, "did_you_know"), rel=1e-12)
    assert _follows(step, "did_you_know", day=45.0) == pytest.approx(_follows(default, "new_study"), rel=1e-12)
    assert _follows(step, "plain", day=45.0) == _follows(default, "plain")
    with pytest.raises(ValueError, match="drifts: give the post's time"):
        expected_outcome(step, _signals("plain"), hour=11, followers=2000)


def test_the_world_draws_each_post_at_its_own_day():
    """A post one hour before the step draws as in the default world; one hour after, from the swapped hook."""
    step, default = load_scenario("default_step"), load_scenario("default")
    text = "Did you know octopuses taste with their arms?"
    worlds = {name: AudienceModel(sc, seed=5, epoch=WORLD_START) for name, sc in (("step", step), ("default", default))}
    before, after = WORLD_START + timedelta(days=29, hours=23), WORLD_START + timedelta(days=30, hours=1)
    a = {n: w.post("11", text, before) for n, w in worlds.items()}
    b = {n: w.post("12", text, after) for n, w in worlds.items()}
    assert a["step"].totals == a["default"].totals
    assert b["step"].totals != b["default"].totals
    # after the step, the draw is the one the swapped expectation gives with the same per-tweet generator
    exp = expected_outcome(step, read_text(text, step.vocabulary), hour=1, followers=b["step"].followers_at_post,
                           similarity=b["step"].similarity, when=world_time(step, WORLD_START, after))
    assert b["step"].totals == draw_totals(step, exp, tweet_rng(5, "12"))


def test_a_trend_is_log_linear_between_its_days_and_held_after():
    sc = parse_scenario(_raw(drift={"trends": [{"from_day": 10, "to_day": 30, "hooks": {"cta": {"follow_rate": 0.64}}}]}))
    base = _follows(sc, "cta", day=0)
    assert _follows(sc, "cta", day=10) == base
    assert _follows(sc, "cta", day=20) == pytest.approx(base * 0.8, rel=1e-12)  # half the way: sqrt(0.64)
    assert _follows(sc, "cta", day=30) == pytest.approx(base * 0.64, rel=1e-12)
    assert _follows(sc, "cta", day=90) == pytest.approx(base * 0.64, rel=1e-12)
    assert _follows(sc, "plain", day=20) == _follows(sc, "plain", day=0)


def test_the_weekly_cycle_reads_the_local_weekday():
    raw = _raw(timezone="Asia/Tokyo", drift={"weekly": {"reach": [1.0] * 5 + [0.5, 0.5]}})
    sc = parse_scenario(raw)
    sunday_utc = datetime(2026, 1, 11, 20, tzinfo=timezone.utc)  # a Sunday in UTC, Monday 05:00 in Tokyo
    assert world_time(sc, WORLD_START, sunday_utc) == WorldTime(6 + 20 / 24, 0)
    monday, saturday = (expected_outcome(sc, _signals("plain"), hour=11, followers=2000, when=WorldTime(3.0, d))
                        for d in (0, 5))
    assert saturday.impressions == pytest.approx(monday.impressions / 2, rel=1e-12)
    assert saturday.fpki == pytest.approx(monday.fpki, rel=1e-12)  # reach only: per-impression rates unchanged


def test_interactions_apply_only_to_their_hook_and_hours_or_topic():
    sc = parse_scenario(_raw(interactions={
        "hook_hour": [{"hook": "contrarian", "hours": [19, 21], "follow_rate": 1.5}],
        "hook_topic": [{"hook": "new_study", "topic": "none", "profile_visits": 2.0}]}))
    default = load_scenario("default")
    assert _follows(sc, "contrarian", hour=19) == pytest.approx(1.5 * _follows(default, "contrarian", hour=19), rel=1e-12)
    assert _follows(sc, "contrarian", hour=20) == _follows(default, "contrarian", hour=20)
    assert _follows(sc, "question", hour=19) == _follows(default, "question", hour=19)
    assert _follows(sc, "new_study", topic=None) == pytest.approx(2 * _follows(default, "new_study", topic=None), rel=1e-12)
    assert _follows(sc, "new_study", topic="ai") == _follows(default, "new_study", topic="ai")
    effect, reach, quality = conditions(sc, "contrarian", "ai", 21, None)  # interactions need no time
    assert (effect, reach, quality) == (Effect(follow_rate=1.5), 1.0, 1.0)


# ----------------------------------------------------------------------------- the oracle

def test_the_oracle_best_choice_changes_at_the_step():
    oracle = Oracle("default_step")
    assert oracle.best_choice(at=29.99) == ("did_you_know", 11) == oracle.best_choice()  # None: day 0
    assert oracle.best_choice(at=30) == ("new_study", 11)
    assert oracle.best_choice(at=WORLD_START + timedelta(days=30)) == ("new_study", 11)
    assert oracle.best_choice(at=WORLD_START + timedelta(days=29, hours=23)) == ("did_you_know", 11)
    assert oracle.step_days() == (30.0,)
    [change] = oracle.changes()
    assert (change.day, change.before, change.after, change.moves_hook) == (30.0, ("did_you_know", 11),
                                                                           ("new_study", 11), True)
    # a world started elsewhere: the same day numbers, other datetimes
    later = Oracle("default_step", start=WORLD_START + timedelta(days=10))
    assert later.best_choice(at=WORLD_START + timedelta(days=35)) == ("did_you_know", 11)
    assert later.expected_follows("new_study", 11, at=30) == oracle.expected_follows("new_study", 11, at=30)
    with pytest.raises(ValueError, match="no time zone"):
        oracle.best_choice(at=datetime(2026, 3, 1))


def test_the_oracle_of_a_stationary_world_ignores_time():
    oracle = Oracle("default")
    assert oracle.changes() == [] and oracle.step_days() == ()
    assert oracle.expected_follows("cta", 9, "ai", at=45) == oracle.expected_follows("cta", 9, "ai")
    # and the drifting world's trend: its best moves without a step (afternoon_questions_drift, see SCENARIO.md)
    drifting = Oracle("afternoon_questions_drift")
    assert drifting.best_choice(at=0) == ("question", 17) and drifting.best_choice(at=45) == ("contrarian", 19)


def test_the_oracle_policy_chooses_the_best_at_the_slot_of_the_plan():
    policy = make_policy("oracle", scenario="default_step")
    hooks, hours, rng = list(vocab.HOOK_PATTERNS), list(vocab.DEFAULT_POSTING_HOURS), np.random.default_rng(0)

    def choose(now, hours=hours):
        return policy.choose(PlanState({}, {}, 0.0, now=now), hooks, hours, rng)

    assert (choose(WORLD_START + timedelta(days=29, hours=2)).hook, choose(WORLD_START + timedelta(days=30, hours=2)).hook
            ) == ("did_you_know", "new_study")
    # planned at 23:00 on day 29 for 11:00: the slot is on day 30, after the step
    assert choose(WORLD_START + timedelta(days=29, hours=23), [11]).hook == "new_study"
    assert slot_time(WORLD_START + timedelta(days=29, hours=23), 11, "UTC") == WORLD_START + timedelta(days=30, hours=11)
    with pytest.raises(ValueError, match="needs the plan's time"):
        choose(None)
    # a stationary world needs no time
    assert make_policy("oracle", scenario="default").choose(PlanState({}, {}, 0.0), hooks, hours, rng).hook == "did_you_know"


def test_days_to_move_is_the_first_day_the_new_hook_leads_a_week():
    # did_you_know every post until day 34, then new_study 3 of 4 posts a day
    posts = [(d, "did_you_know") for d in range(35) for _ in range(4)]
    posts += [(d, h) for d in range(35, 60) for h in ("new_study", "new_study", "new_study", "plain")]
    # over [d, d + 7) new_study (3 a day from 35) must outnumber did_you_know (4 a day until 34):
    # d = 32 gives 12 vs 12 (a tie does not count), d = 33 gives 15 vs 8
    assert days_to_move(posts, 30, "new_study", 60) == 3
    assert days_to_move(posts, 30, "plain", 60) is None
    assert days_to_move(posts, 30, "new_study", 33) is None  # the campaign ends first
    assert days_to_move([(d, "new_study") for d in range(60)], 29.5, "new_study", 60) == 0


def test_the_world_start_is_the_campaign_clock_start():
    from xbotlib.jobs.campaign import CAMPAIGN_START  # a test may read the jobs layer; sim may not
    assert WORLD_START == CAMPAIGN_START


# ----------------------------------------------------------------------------- stationary worlds unchanged

@pytest.mark.parametrize("name", SCENARIOS)
def test_stationary_scenarios_give_exactly_the_values_and_draws_computed_on_main(name):
    reference = json.loads((Path(__file__).parent / "data" / "stationary_main.json").read_text())[name]
    assert stationary_values(name) == reference


@pytest.mark.parametrize("derived, parent", [("default_step", "default"),
                                             ("afternoon_questions_drift", "afternoon_questions")])
def test_a_derived_drifting_scenario_equals_its_parent_but_for_drift(derived, parent):
    d, p = load_scenario(derived), load_scenario(parent)
    assert not d.stationary and p.stationary
    assert d.derived_from == str(Path(p.source).resolve()) and p.derived_from is None   # the file names its parent
    same = dataclasses.replace(d, name=p.name, description=p.description, source=p.source, drift=p.drift,
                               interactions=p.interactions, derived_from=None)
    assert same == p


def test_small_noisy_is_the_default_with_350_followers_and_twice_the_noise():
    small, default = load_scenario(ROOT / "bench" / "scenarios" / "small_noisy.toml"), load_scenario("default")
    assert small.account.initial_followers == 350
    # "twice the noise": the gamma shocks' coefficient of variation 1/sqrt(shape) doubled
    assert 1 / math.sqrt(small.reach.dispersion) == pytest.approx(2 / math.sqrt(default.reach.dispersion))
    assert 1 / math.sqrt(small.rates.dispersion) == pytest.approx(2 / math.sqrt(default.rates.dispersion))
    same = dataclasses.replace(small, name="default", description=default.description, source=default.source,
                               account=default.account, reach=dataclasses.replace(small.reach, dispersion=3.0),
                               rates=dataclasses.replace(small.rates, dispersion=8.0))
    assert same == default
    assert dataclasses.replace(small.account, initial_followers=2000) == default.account


def test_derived_from_names_a_shipped_world_or_a_file_next_to_the_scenario(tmp_path):
    (tmp_path / "base.toml").write_text('name = "base"\n', encoding="utf-8")
    (tmp_path / "moved.toml").write_text('name = "moved"\nderived_from = "base.toml"\n', encoding="utf-8")
    (tmp_path / "shipped.toml").write_text('name = "s"\nderived_from = "evening_contrarian"\n', encoding="utf-8")
    assert load_scenario(tmp_path / "moved.toml").derived_from == str((tmp_path / "base.toml").resolve())
    assert load_scenario(tmp_path / "shipped.toml").derived_from == str((SCENARIO_DIR / "evening_contrarian.toml").resolve())
    assert load_scenario(tmp_path / "base.toml").derived_from is None


def test_a_copy_without_analytics_still_finds_the_world_it_was_derived_from(tmp_path):
    from xbotlib.devtools.growth_worlds import scenario_without_analytics  # imported here: the bench's copy

    (tmp_path / "base.toml").write_text('name = "base"\n', encoding="utf-8")
    (tmp_path / "moved.toml").write_text('name = "moved"\nderived_from = "base.toml"\n', encoding="utf-8")
    (tmp_path / "copies").mkdir()
    copy = load_scenario(scenario_without_analytics(str(tmp_path / "moved.toml"), tmp_path / "copies"))
    assert not copy.x.analytics and copy.derived_from == str((tmp_path / "base.toml").resolve())
