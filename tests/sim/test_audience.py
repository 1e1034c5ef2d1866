"""The simulated audience reacts to what X can see, in the scenario's direction; scenarios are strict."""
from __future__ import annotations

import dataclasses
import tomllib
from datetime import datetime, timedelta, timezone

import numpy as np
import pytest

from xbotlib.core import vocab
from xbotlib.sim.audience import (ReplyTarget, Totals, accrual_offset, draw_totals, expected_outcome, read_text,
                                  reply_spillover, tweet_rng)
from xbotlib.sim.world import AudienceModel
from xbotlib.sim.oracle import Oracle
from xbotlib.sim.scenario import SCENARIO_DIR, ScenarioError, load_scenario, parse_scenario

OPENERS = {"did_you_know": "Did you know", "new_study": "New study:", "question": "Why do so few people",
           "contrarian": "Unpopular opinion:", "cta": "Try this:", "plain": "Notes on"}
WORDS = ["orbit", "neuron", "enzyme", "comet", "fossil", "quasar", "genome", "plasma", "tide", "crystal",
         "glacier", "photon", "lichen", "magma", "pollen", "isotope", "nebula", "coral", "spore", "ion"]


def text(hook: str, i: int, ending: str = "") -> str:
    """A science post with words unique to i, so no two posts look alike (no fatigue)."""
    a, b, c = WORDS[i % 20], WORDS[(i // 20) % 20], WORDS[(i // 400) % 20]
    body = f"{OPENERS[hook]} the science of {a} {b} {c} number {i}"
    return body + ("?" if hook == "question" else ".") + ending


def simulate(conditions: list[tuple[str, int, str]], seed: int = 0, n: int = 250) -> dict[str, Totals]:
    """Post n posts per condition (label, local hour, hook), interleaved, 8 days apart; sum their totals."""
    model = AudienceModel(load_scenario(None), seed, epoch=datetime(2026, 1, 1, tzinfo=timezone.utc))
    sums = {label: np.zeros(9) for label, _, _ in conditions}
    day = datetime(2026, 1, 1, tzinfo=timezone.utc)
    i = 0
    for _ in range(n):
        for label, hour, hook in conditions:
            tweet = model.post(str(10_000 + i), text(hook, i), day.replace(hour=hour))
            sums[label] += np.array(dataclasses.astuple(tweet.totals))
            day += timedelta(days=8)  # beyond the fatigue window: every post is novel
            i += 1
    return {k: Totals(*map(int, v)) for k, v in sums.items()}


def test_the_best_hook_earns_clearly_more_follows_than_the_worst():
    s = simulate([("best", 11, "did_you_know"), ("worst", 11, "plain")])
    assert s["best"].follows > 1.4 * s["worst"].follows
    assert s["best"].profile_visits > s["worst"].profile_visits


def test_the_best_hour_beats_an_early_hour():
    s = simulate([("peak", 11, "new_study"), ("early", 7, "new_study")])
    assert s["peak"].impressions > 1.15 * s["early"].impressions
    assert s["peak"].follows > 1.2 * s["early"].follows


def draw_many(scenario, post_text: str, hour: int = 11, n: int = 2000, spillover=None, seed0: int = 0) -> Totals:
    exp = expected_outcome(scenario, read_text(post_text), hour=hour, followers=2000, spillover=spillover)
    total = np.zeros(9)
    for k in range(n):
        total += dataclasses.astuple(draw_totals(scenario, exp, tweet_rng(seed0, 10 ** 6 + k)))
    return Totals(*map(int, total))


@pytest.mark.parametrize("marker, treatment, control, direction", [
    ("question_cta", "Did you know the moon drifts away each year? What do you think?",
     "Did you know the moon drifts away each year.", +1),
    # the hashtag names the topic the text already has, so only the marker differs
    ("hashtag_1", "Did you know the universe expands faster each year. #Science",
     "Did you know the universe expands faster each year.", 0),
])
def test_experiment_markers_move_follows_the_scenario_way(marker, treatment, control, direction):
    scenario = load_scenario(None)
    t, c = draw_many(scenario, treatment), draw_many(scenario, control)
    ratio = t.follows / c.follows
    if direction > 0:
        assert ratio > 1.05
    else:
        assert 0.93 < ratio < 1.07
    if marker == "question_cta":
        assert t.replies > 1.4 * c.replies


def test_contrarian_reply_and_late_evening_effects_are_causal():
    """Same draws, scenario with vs without the marker's effect: the difference is the effect alone."""
    scenario = load_scenario(None)
    neutral = dataclasses.replace(scenario, experiments={})
    spill = 300.0
    reply = "Hot take: most people are wrong about comet tails."
    assert draw_many(scenario, reply, spillover=spill).follows > 1.1 * draw_many(neutral, reply, spillover=spill).follows
    late = "New study: glaciers sing at night."
    assert draw_many(scenario, late, hour=22).follows > 1.08 * draw_many(neutral, late, hour=22).follows
    # the contrarian_reply marker needs a reply: an original contrarian post is untouched
    assert draw_many(scenario, reply).follows == draw_many(neutral, reply).follows


def test_bigger_fresher_faster_reply_targets_bring_more_impressions():
    model = AudienceModel(load_scenario(None), seed=1)
    at = datetime(2026, 1, 2, 12, tzinfo=timezone.utc)
    big = ReplyTarget("1", 500_000, 400.0, at - timedelta(minutes=10))
    small_old = ReplyTarget("2", 300, 1.0, at - timedelta(hours=5))
    assert reply_spillover(model.scenario, big, at) > 50 * reply_spillover(model.scenario, small_old, at)


def test_near_duplicates_are_penalised():
    model = AudienceModel(load_scenario(None), seed=3)
    at = datetime(2026, 1, 2, 9, tzinfo=timezone.utc)
    model.post("1", "Did you know octopuses have three hearts and blue blood?", at)
    assert model.similarity_to_recent("Did you know octopuses have three hearts and blue blood!", at) > 0.9
    assert model.similarity_to_recent("New study: sleep regularity predicts mood.", at) < 0.2
    scenario = model.scenario
    signals = read_text("Did you know octopuses have three hearts?")
    fresh = expected_outcome(scenario, signals, hour=9, followers=2000, similarity=0.0)
    repeat = expected_outcome(scenario, signals, hour=9, followers=2000, similarity=0.95)
    assert repeat.follows < 0.5 * fresh.follows
    # the window forgets: eight days later the same text is novel again
    assert model.similarity_to_recent("Did you know octopuses have three hearts and blue blood?",
                                      at + timedelta(days=8)) == 0.0


def test_followers_are_deterministic_for_a_seed_and_churn_without_posts():
    scenario = load_scenario(None)
    epoch = datetime(2026, 1, 1, tzinfo=timezone.utc)
    a, b = AudienceModel(scenario, 5, epoch), AudienceModel(scenario, 5, epoch)
    times = [epoch + timedelta(hours=h) for h in range(0, 24 * 30, 7)]
    assert [a.followers_at(t) for t in times] == [b.followers_at(t) for t in times]
    assert a.followers_at(epoch) == scenario.account.initial_followers
    after_month = a.followers_at(epoch + timedelta(days=30))
    assert after_month != scenario.account.initial_followers  # organic follows and churn moved it


def test_the_oracle_knows_each_worlds_answers():
    default, evening = Oracle(None), Oracle("evening_contrarian")
    assert default.best_choice() == ("did_you_know", 11)
    assert evening.best_choice() == ("contrarian", 21)
    assert Oracle("afternoon_questions").best_choice() == ("question", 17)
    assert default.true_lift("hashtag_1") == pytest.approx(0.0, abs=1e-9)
    assert default.relative_lift("question_cta", "follows") == pytest.approx(0.142, abs=0.01)
    assert evening.true_lift("question_cta") == pytest.approx(0.0, abs=1e-9)
    assert evening.true_lift("hashtag_1") > 0 and evening.true_lift("late_evening_slot") > 0
    hooks = [default.expected_follows(h, 11) for h in vocab.HOOK_PATTERNS]
    assert 1.6 <= max(hooks) / min(hooks) <= 2.0
    fpki = [default.expected_fpki(h, hr, t) for h in vocab.HOOK_PATTERNS for hr in vocab.DEFAULT_POSTING_HOURS
            for t in vocab.TOPICS]
    assert 0.5 <= min(fpki) and max(fpki) <= 3.0
    with pytest.raises(ValueError, match="contradicts hour"):
        default.expected("plain", 9, experiment_arms={"late_evening_slot": "treatment"})
    with pytest.raises(ValueError, match="unknown experiment"):
        default.true_lift("emoji_1")


def test_afternoon_questions_is_the_default_world_with_only_its_answers_moved():
    # The benchmark reads this scenario as "same audience, different answers": it must stay so.
    default = tomllib.loads((SCENARIO_DIR / "default.toml").read_text())
    moved = tomllib.loads((SCENARIO_DIR / "afternoon_questions.toml").read_text())
    for key in ("reach", "quality"):
        assert moved["hours"][key] == [default["hours"][key][(28 - h) % 24] for h in range(24)]
    assert moved["hooks"]["question"] == default["hooks"]["did_you_know"]
    assert moved["hooks"]["did_you_know"] == default["hooks"]["question"]
    for raw in (default, moved):
        for key in ("name", "description", "hours"):
            raw.pop(key)
        for hook in ("question", "did_you_know"):
            raw["hooks"].pop(hook)
    assert moved == default


@pytest.mark.parametrize("edit, match", [
    (lambda d: d["reach"].update(dispersal=3.0), r"\[reach\] dispersal = 3.0: expected one of the known keys"),
    (lambda d: d.update(colour="blue"), r"colour = 'blue': expected one of the known keys"),
    (lambda d: d["rates"].update(likes=1.5), r"\[rates\] likes = 1.5: expected a fraction"),
    (lambda d: d["rates"].update(likes="lots"), r"\[rates\] likes = 'lots': expected a number"),
    (lambda d: d["hours"].update(reach=[1.0] * 23), r"\[hours\] reach = .*expected a list of 24"),
    (lambda d: d["hooks"].update(clickbait={"impressions": 2.0}), r"\[hooks\] clickbait"),
    (lambda d: d["hooks"]["plain"].update(folow_rate=1.0), r"\[hooks.plain\] folow_rate"),
    (lambda d: d["account"].update(initial_followers=2000.5), r"initial_followers = 2000.5: expected an integer"),
    (lambda d: d.update(timezone="Mars/Olympus"), r"timezone = 'Mars/Olympus': expected an IANA"),
    (lambda d: d.pop("name"), r"name = None: expected a string \(this key is required\)"),
])
def test_scenario_errors_name_file_key_value_and_expectation(edit, match):
    raw = tomllib.loads((SCENARIO_DIR / "default.toml").read_text())
    edit(raw)
    with pytest.raises(ScenarioError, match=match) as info:
        parse_scenario(raw, source="my.toml")
    assert str(info.value).startswith("my.toml: ")


def test_scenario_files_load_by_path_or_shipped_name(tmp_path):
    assert load_scenario(SCENARIO_DIR / "evening_contrarian.toml").name == "evening_contrarian"
    assert load_scenario("evening_contrarian").timezone == "UTC"
    with pytest.raises(ScenarioError, match="not found.*afternoon_questions, afternoon_questions_drift, cooking, default, default_step, evening_contrarian"):
        load_scenario(tmp_path / "missing.toml")
    broken = tmp_path / "broken.toml"
    broken.write_text("name = \n")
    with pytest.raises(ScenarioError, match="not valid TOML"):
        load_scenario(broken)


def test_thousands_of_posts_settle_to_their_drawn_totals():
    """The benchmarks simulate ~10k posts (bench/ measures speed; no wall-time assertion here)."""
    model = AudienceModel(load_scenario(None), seed=0, epoch=datetime(2026, 1, 1, tzinfo=timezone.utc))
    at = datetime(2026, 1, 1, tzinfo=timezone.utc)
    for i in range(3000):
        model.post(str(10 ** 6 + i), text("plain", i), at)
        at += timedelta(minutes=90)
    later = at + timedelta(days=4)
    total = sum(model.metrics_at(str(10 ** 6 + i), later).follows for i in range(3000))
    assert total == sum(t.totals.follows for t in model.posts())
    assert model.followers_at(later) > 0


def test_accrual_is_unbiased_and_shows_single_counts():
    """A post's lone follow must show once most of it has accrued (plain flooring hid it until
    the post settled); over many tweets the accrued counts average v * fraction; and accrual is
    monotone in time and exact once settled."""

    one = Totals(follows=1, profile_visits=1)
    shown = [one.scaled(0.95, accrual_offset(10**18 + i)).follows for i in range(1000)]
    assert 0.9 < sum(shown) / len(shown) < 1.0
    many = Totals(impressions=7, likes=3, follows=2)
    for fraction in (0.1, 0.37, 0.5, 0.8):
        mean = sum(many.scaled(fraction, accrual_offset(10**18 + i)).impressions for i in range(2000)) / 2000
        assert abs(mean - 7 * fraction) < 0.05
    for i in range(50):
        u = accrual_offset(10**18 + i)
        series = [many.scaled(f / 20, u) for f in range(21)]
        assert all(a.impressions <= b.impressions and a.follows <= b.follows for a, b in zip(series, series[1:]))
        assert series[-1] == many


def test_old_word_sets_are_dropped_and_every_similarity_stays_what_a_full_scan_gives():
    # A year of posts (4 a day, texts drawn from a small pool so many repeat): each post's similarity to the
    # fatigue window's posts equals a scan over every earlier post, though the word sets older than the window
    # (and a margin) are dropped as the world goes: what the world keeps stays bounded.
    from xbotlib.sim.audience import jaccard, tokens
    from xbotlib.sim.world import PRUNE_EVERY, PRUNE_MARGIN_S

    scenario = load_scenario(None)
    world = AudienceModel(scenario, seed=3)
    rng = np.random.default_rng(0)
    words = [a + b for a in ("river", "stone", "cloud", "forest", "ember")
             for b in ("wood", "light", "fall", "storm", "glass", "field", "crest", "song")]
    start, posted = datetime(2026, 1, 5, tzinfo=timezone.utc), []
    window = scenario.fatigue.window_days * 86400
    for n in range(1460):
        at = start + timedelta(hours=6 * n)
        text = " ".join(rng.choice(words, size=int(rng.integers(3, 9)), replace=False))
        mine = tokens(text)
        want = max((jaccard(mine, t) for s, t in posted if s >= at.timestamp() - window), default=0.0)
        assert world.post(str(1000 + n), text, at).similarity == pytest.approx(want, abs=1e-12)
        posted.append((at.timestamp(), mine))
    kept = sum(len(v) for v in world._by_token.values())
    recent = [t for s, t in posted if s >= posted[-1][0] - window - PRUNE_MARGIN_S - PRUNE_EVERY * 6 * 3600]
    assert 0 < kept <= sum(len(t) for t in recent) < sum(len(t) for _, t in posted) / 3
    with pytest.raises(ValueError, match="no longer kept"):
        world.similarity_to_recent("riverwood stonelight", start)


def test_follows_accrued_by_a_time_are_what_each_post_shows_then():
    """The follower count's accrued follows (prefix sums for settled posts, the accruing ones computed) equal the sum
    of every post's own accrued follows at that moment (``metrics_at``), and the full scan's, at times between posts,
    on a post's exact time, and on the edge of settling; also for posts recorded out of time order."""
    scenario = load_scenario(None)
    world = AudienceModel(scenario, seed=5, epoch=datetime(2026, 1, 1, tzinfo=timezone.utc))
    at, times = datetime(2026, 1, 1, 8, tzinfo=timezone.utc), []
    for i in range(120):
        world.post(str(5000 + i), text("new_study", i), at)
        times.append(at)
        at += timedelta(minutes=[50, 170, 310, 45][i % 4])
    settle = timedelta(hours=scenario.reach.settle_hours)
    probes = [t + d for t in times[::7] for d in (timedelta(0), timedelta(minutes=7), timedelta(hours=1),
                                                   settle - timedelta(microseconds=1), settle, settle + timedelta(seconds=1))]
    assert sum(world.tweets[str(5000 + i)].totals.follows for i in range(120)) > 40   # accrual has something to show
    for t in probes:
        each = sum(world.metrics_at(str(5000 + i), t).follows for i, p in enumerate(times) if p <= t)
        got = world._accrued_follows(t.timestamp())
        assert got == each == world._accrued_follows_scan(t.timestamp()), t
    late = AudienceModel(scenario, seed=5, epoch=datetime(2026, 1, 1, tzinfo=timezone.utc))
    for i in (3, 1, 2, 0):   # out of time order: the scan serves every read
        late.post(str(7000 + i), text("question", i), times[i])
    assert not late._in_time_order
    for t in probes[:12]:
        assert late._accrued_follows(t.timestamp()) == sum(late.metrics_at(str(7000 + i), t).follows
                                                           for i in range(4) if times[i] <= t)
