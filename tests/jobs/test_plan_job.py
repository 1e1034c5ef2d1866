"""The plan job: what it queues, when it schedules it, which candidates its gates refuse and why,
how often experiments assign each arm (with the propensity stored), and the LLM path end to end.

Everything runs the real plan tick against a fresh database and the in-process sandbox X; where a
test needs particular texts it passes a scripted content generator (the generator is a dependency of
the job, like X: nothing of ours is patched).
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import httpx
import numpy as np
import pytest
from hypothesis import assume, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from xbotlib.core import features, vocab
from xbotlib.devtools.fake_openai import FakeOpenAI
from xbotlib.jobs.runner import run_job
from xbotlib.jobs import plan, post
from xbotlib.jobs.context import build_context
from xbotlib.core.gates import GateVerdict, allowed_by_rotation, duplicate_gate, quality_gate, rotation_gate
from xbotlib.jobs.plan import next_occurrence
from xbotlib.sim.xserver import SandboxX
from xbotlib.clients.generation import Candidate
from xbotlib.store import experiments as experiment_store


def at(text: str, tz: str = "UTC") -> datetime:
    """'2026-03-02 08:59' in ``tz`` as an aware datetime."""
    return datetime.fromisoformat(text).replace(tzinfo=ZoneInfo(tz))


# ----------------------------------------------------------------------------- next_occurrence

# (zone, now as local wall time in that zone, hour) -> expected UTC instant.
# Berlin: CET (+1) until 2026-03-29 02:00 -> CEST (+2); back to CET on 2026-10-25 03:00 -> 02:00.
# New York: EST (-5) until 2026-03-08 02:00 -> EDT (-4).
NEXT_OCCURRENCE = [
    # never a day late: one minute before the slot is today, at the slot is tomorrow
    ("UTC", "2026-03-02 08:59", 9, "2026-03-02 09:00"),
    ("UTC", "2026-03-02 09:00", 9, "2026-03-03 09:00"),
    ("UTC", "2026-03-02 09:00:00.000001", 9, "2026-03-03 09:00"),
    ("UTC", "2026-03-02 23:30", 7, "2026-03-03 07:00"),
    ("UTC", "2026-03-02 00:00", 0, "2026-03-03 00:00"),
    ("UTC", "2026-12-31 23:59", 0, "2027-01-01 00:00"),
    # a non-UTC zone: the hour is local, the result UTC
    ("Europe/Berlin", "2026-03-02 08:59", 9, "2026-03-02 08:00"),
    ("Europe/Berlin", "2026-03-02 09:00", 9, "2026-03-03 08:00"),
    # the local day has already turned while UTC is still on the previous day
    ("Europe/Berlin", "2026-03-03 00:30", 7, "2026-03-03 06:00"),
    ("America/Los_Angeles", "2026-03-01 22:00", 23, "2026-03-02 07:00"),
    ("America/Los_Angeles", "2026-03-01 22:00", 21, "2026-03-03 05:00"),
    ("Asia/Kolkata", "2026-03-02 08:59", 9, "2026-03-02 03:30"),
    # DST starts overnight: tomorrow's 09:00 is an hour earlier in UTC
    ("Europe/Berlin", "2026-03-28 11:00", 9, "2026-03-29 07:00"),
    ("America/New_York", "2026-03-07 20:00", 9, "2026-03-08 13:00"),
    # the skipped hour (02:00 does not exist): the moment the clock jumps, not a day later
    ("Europe/Berlin", "2026-03-29 01:30", 2, "2026-03-29 01:00"),
    ("America/New_York", "2026-03-08 01:30", 2, "2026-03-08 07:00"),
    ("Europe/Berlin", "2026-03-29 03:30", 2, "2026-03-30 00:00"),
    # DST ends overnight: tomorrow's 09:00 is an hour later in UTC
    ("Europe/Berlin", "2026-10-24 11:00", 9, "2026-10-25 08:00"),
    # the repeated hour: 02:00 CEST, then 02:00 CET an hour later — the next one, not tomorrow's
    ("Europe/Berlin", "2026-10-25 01:30", 2, "2026-10-25 00:00"),
]


@pytest.mark.parametrize("tz, local_now, hour, expected", NEXT_OCCURRENCE)
def test_next_occurrence_table(tz, local_now, hour, expected):
    now = at(local_now, tz).astimezone(UTC)
    assert next_occurrence(hour, now, tz) == at(expected)


def test_next_occurrence_inside_the_repeated_hour():
    # 2026-10-25 in Berlin the clock shows 02:xx twice: 00:00-01:00 UTC (CEST), then 01:00-02:00 UTC (CET)
    first_pass = datetime(2026, 10, 25, 0, 30, tzinfo=UTC)    # 02:30 CEST
    second_pass = datetime(2026, 10, 25, 1, 30, tzinfo=UTC)   # 02:30 CET
    assert next_occurrence(2, first_pass, "Europe/Berlin") == datetime(2026, 10, 25, 1, 0, tzinfo=UTC)
    assert next_occurrence(2, second_pass, "Europe/Berlin") == datetime(2026, 10, 26, 1, 0, tzinfo=UTC)
    assert next_occurrence(3, first_pass, "Europe/Berlin") == datetime(2026, 10, 25, 2, 0, tzinfo=UTC)


def brute_force_next(hour: int, now: datetime, tz: str) -> datetime:
    """The first quarter-hour instant after ``now`` at which the local clock shows hour:00 (48 h search)."""
    zone = ZoneInfo(tz)
    t = now.replace(second=0, microsecond=0) - timedelta(minutes=now.minute % 15)
    for _ in range(48 * 4 + 1):
        t += timedelta(minutes=15)
        local = t.astimezone(zone)
        if t > now and local.hour == hour and local.minute == 0:
            return t
    raise AssertionError("no occurrence within 48 hours")


@hsettings(max_examples=150, deadline=None)
@given(minutes=st.integers(0, 365 * 24 * 60 - 1), seconds=st.integers(0, 59), hour=st.integers(0, 23),
       tz=st.sampled_from(["UTC", "Europe/Berlin", "America/New_York", "Asia/Kolkata", "Australia/Sydney"]))
def test_next_occurrence_is_the_first_time_the_local_clock_shows_the_hour(minutes, seconds, hour, tz):
    now = datetime(2026, 1, 1, tzinfo=UTC) + timedelta(minutes=minutes, seconds=seconds)
    got = next_occurrence(hour, now, tz)
    assert got > now and got.utcoffset() == timedelta(0)
    assert got - now <= timedelta(hours=25)
    assume(got.astimezone(ZoneInfo(tz)).hour == hour)  # a skipped hour maps to the jump (see the table)
    assert got == brute_force_next(hour, now, tz)


# ----------------------------------------------------------------------------- the gates (pure)

GOOD = "Sleep is the cheapest performance upgrade there is: seven hours beats any supplement on the shelf."
BANNED = ("as an ai", "click here")


@pytest.mark.parametrize("text, readability, reason", [
    ("Sleep matters a lot.", 0.9, "too short (20 < 40 chars)"),
    ("x" * 39, 0.9, "too short (39 < 40 chars)"),
    ("Sleep " * 47, 0.9, "too long for X: weighted length 282 > 280 (X counts a URL as 23, CJK and most emoji as 2)"),
    ("\U0001F634" * 150, 0.9, "too long for X: weighted length 300 > 280 (X counts a URL as 23, CJK and most emoji as 2)"),
    (" " * 50, 0.9, "empty or whitespace only"),
    ("Sleep is the cheapest performance upgrade there is, and yet...", 0.9, "looks truncated"),
    ("Sleep is the cheapest performance upgrade there is, and yet…", 0.9, "looks truncated"),
    ("Sleep is the cheapest performance upgrade there is, and the sup-", 0.9, "looks truncated"),
    ("Click here: sleep is the cheapest performance upgrade there is.", 0.9, "banned phrase 'click here'"),
    ("Sleep is cheap. As an AI I would know: it beats every supplement.", 0.9, "banned phrase 'as an ai'"),
    (GOOD, 0.19, "readability 0.19 < floor 0.20"),
])
def test_quality_gate_refuses_with_a_reason(text, readability, reason):
    assert quality_gate(text, readability, 0.2, BANNED) == GateVerdict(False, "quality", reason)


@pytest.mark.parametrize("text", [GOOD, "x" * 40, "y" * 280, GOOD + " (see the study at nature.com)"])
def test_quality_gate_passes_good_text(text):
    assert quality_gate(text, 0.2, 0.2, BANNED).ok


def test_duplicate_gate_threshold():
    assert duplicate_gate(0.15, 0.15).ok
    assert duplicate_gate(0.149, 0.15) == GateVerdict(False, "duplicate",
                                                       "novelty 0.149 < 0.150 against the last 30 days")


@pytest.mark.parametrize("recent, value, max_run, ok", [
    ([], "question", 3, True),
    (["question", "question"], "question", 3, True),
    (["question"] * 3, "question", 3, False),
    (["question"] * 3, "cta", 3, True),
    (["cta", "question", "question", "question"], "question", 3, True),
    (["question"] * 5, "question", 5, False),
    (["question"], "question", 1, False),
])
def test_rotation_gate_allows_at_most_max_run_in_a_row(recent, value, max_run, ok):
    verdict = rotation_gate(value, "health", recent, ["ai"] * len(recent), max_run)
    assert verdict.ok is ok
    if not ok:
        assert verdict == GateVerdict(False, "rotation",
                                      f"hook {value!r} would run more than {max_run} times in a row")


def test_rotation_gate_checks_topics_too():
    verdict = rotation_gate("cta", "ai", ["question"] * 3, ["ai"] * 3, 3)
    assert verdict == GateVerdict(False, "rotation", "topic 'ai' would run more than 3 times in a row")


def test_allowed_by_rotation_never_leaves_the_policy_without_options():
    assert allowed_by_rotation(["a", "a", "a"], ["a", "b"], 3) == ["b"]
    assert allowed_by_rotation(["a", "a"], ["a", "b"], 3) == ["a", "b"]
    assert allowed_by_rotation(["a", "a", "a"], ["a"], 3) == ["a"]  # nothing else to choose: the options stand


# ----------------------------------------------------------------------------- the tick

@dataclass
class ScriptedGenerator:
    """A content generator (templates.ContentGenerator) that writes given texts: one batch per call."""
    batches: list = field(default_factory=list)
    calls: list = field(default_factory=list)

    def candidates(self, hook, topic, n, *, angle=None, reply_to_text=None, rng=None):
        self.calls.append((hook, topic, reply_to_text))
        texts = self.batches.pop(0) if self.batches else []
        return [Candidate(t, "template", vocab.detect_hook(t), topic) for t in texts]


def make_ctx(settings, db, clock, seed: int = 3, **kw):
    sandbox = SandboxX(clock=clock, seed=seed)
    return build_context(settings, db, clock, sandbox=sandbox, seed=seed, **kw)


def decisions(db, decision_type: str | None = None) -> list[dict]:
    with db.connection() as conn:
        return conn.execute(
            """SELECT * FROM content_metadata WHERE account_id = 'acct1' AND (%(t)s::text IS NULL OR decision_type = %(t)s)
                ORDER BY created_at, decision_id""", {"t": decision_type}).fetchall()


def rejections(db) -> list[tuple[str, str]]:
    with db.connection() as conn:
        return [(r["gate"], r["reason"]) for r in conn.execute(
            "SELECT gate, reason FROM gate_rejections WHERE account_id = 'acct1' ORDER BY rejection_id").fetchall()]


def test_plan_queues_a_post_for_the_next_occurrence_of_its_local_hour_and_a_reply(settings, db, clock):
    settings = settings.replace(timezone="America/New_York", plan_posts_per_day=1)
    ctx = make_ctx(settings, db, clock)
    assert clock.now().astimezone(ZoneInfo("America/New_York")).hour == 3
    result = run_job("plan", ctx, plan.tick)
    # 03:00 in New York: the post is planned for later today; a reply (sent at once) waits for daytime
    assert result.status == "ok" and result.detail["queued"] == 1 and decisions(db, "reply") == []

    (p,) = decisions(db, "post")
    assert p["status"] == "queued" and p["generation_source"] == "template"
    hour = int(p["timing_arm"])
    assert hour in settings.posting_hours
    assert p["scheduled_at"] == next_occurrence(hour, clock.now(), "America/New_York")
    assert p["scheduled_at"].astimezone(ZoneInfo("America/New_York")).hour == hour
    assert clock.now() < p["scheduled_at"] <= clock.now() + timedelta(hours=24)
    assert p["bandit_arm"] in vocab.HOOK_PATTERNS and p["hook_pattern"] == vocab.detect_hook(p["content"])
    assert 0 < p["bandit_propensity"] <= 1 and 0 < p["timing_propensity"] <= 1
    assert p["policy"] == "xbot" and p["target_tweet_id"] is None

    clock.set(datetime(2026, 3, 2, 14, 0, tzinfo=UTC))  # 09:00 in New York
    assert plan.tick(ctx).detail["queued"] == 1
    (r,) = decisions(db, "reply")
    assert r["status"] == "queued" and r["scheduled_at"] == clock.now()
    assert ctx.sandbox.requests["GET /2/tweets/search/recent"] == 1
    # the target is a conversation X's search returned, not one of our own posts
    with httpx.Client(base_url=SandboxX.BASE_URL, transport=ctx.sandbox.transport(),
                      headers={"Authorization": "Bearer t"}) as x:
        found = x.get("/2/tweets", params={"ids": r["target_tweet_id"], "post.fields": "author_id"}).json()
    assert [t["id"] for t in found["data"]] == [r["target_tweet_id"]] and "errors" not in found
    assert found["data"][0]["author_id"] != ctx.sandbox.user_id


def test_plan_respects_posts_and_replies_per_day(settings, db, clock):
    settings = settings.replace(plan_posts_per_day=3, plan_replies_per_day=2)
    ctx = make_ctx(settings, db, clock)
    results = []
    for _ in range(6):
        results.append(plan.tick(ctx))
        clock.advance(timedelta(minutes=10))
    assert len(decisions(db, "post")) == 3 and len(decisions(db, "reply")) == 2
    assert results[-1].status == "skipped" and results[-1].reason == "day fully planned"
    # one post per free hour: the day's posts never share a slot
    posts = decisions(db, "post")
    assert len({p["scheduled_at"] for p in posts}) == 3
    for p in posts:  # each for the next occurrence of its hour at the time it was planned
        assert p["scheduled_at"] == next_occurrence(int(p["timing_arm"]), p["created_at"], settings.timezone)
    replied = [r["target_tweet_id"] for r in decisions(db, "reply")]
    assert len(set(replied)) == 2, "never two replies to the same conversation"

    clock.advance(timedelta(hours=24))
    assert plan.tick(ctx).detail["queued"] == 2  # a new day: one more post and one more reply


def test_each_gate_rejection_is_stored_with_its_reason(settings, db, clock):
    low_readability = ("Epistemological considerations notwithstanding, computational neuroscientific "
                       "methodologies systematically underestimate organizational heterogeneity.")
    gen = ScriptedGenerator([[
        "Sleep matters.",                                                          # too short
        "Sleep " * 50,                                                             # too long
        "Sleep is the cheapest performance upgrade there is, and yet...",          # truncated
        "Click here: sleep is the cheapest performance upgrade there is today.",   # banned
        low_readability,                                                           # readability floor
        GOOD,                                                                      # passes
    ], [GOOD.replace("shelf.", "shelf!")],                                         # a near-duplicate of the queued post
        [GOOD.replace("seven", "Seven")]])                                         # the same post again (case aside)
    ctx = make_ctx(settings.replace(plan_replies_per_day=0, plan_posts_per_day=5), db, clock, generator=gen)

    first = plan.tick(ctx)
    assert first.detail["queued"] == 1 and first.detail["rejected"] == 5
    (queued,) = decisions(db)
    assert queued["content"] == GOOD and queued["status"] == "queued"
    assert rejections(db) == [
        ("quality", "too short (14 < 40 chars)"),
        ("quality", "too long for X: weighted length 300 > 280 (X counts a URL as 23, CJK and most emoji as 2)"),
        ("quality", "looks truncated"),
        ("quality", "banned phrase 'click here'"),
        ("quality", "readability 0.00 < floor 0.20"),
    ]
    clock.advance(timedelta(minutes=5))
    second = plan.tick(ctx)
    assert second.detail == {"queued": 0, "rejected": 1}
    gate, reason = rejections(db)[-1]
    assert gate == "duplicate" and reason.startswith("novelty 0.0") and reason.endswith("< 0.150 against the last 30 days")
    clock.advance(timedelta(minutes=5))
    assert plan.tick(ctx).detail == {"queued": 0, "rejected": 1}
    assert rejections(db)[-1] == ("duplicate", "exact repeat of an earlier post (X refuses duplicate content)")
    assert len(decisions(db)) == 1, "a rejected candidate is never queued"


def test_rotation_gate_rejects_a_fourth_hook_in_a_row(settings, db, clock):
    contrarian = [
        "Unpopular opinion: founders should talk to ten customers before they write a single line of code.",
        "Unpopular opinion: sleep beats every supplement, and the supplement aisle knows it very well.",
        "Unpopular opinion: most machine learning demos hide the prompt that took a week to get right.",
        "Unpopular opinion: the universe is stranger than physics class ever let on, and that is fine.",
    ]
    gen = ScriptedGenerator([[t] for t in contrarian])
    ctx = make_ctx(settings.replace(plan_replies_per_day=0, plan_posts_per_day=10), db, clock, generator=gen)
    for _ in range(4):
        plan.tick(ctx)
        clock.advance(timedelta(minutes=5))
    hooks = [d["hook_pattern"] for d in decisions(db)]
    assert hooks == ["contrarian"] * 3
    assert rejections(db) == [("rotation", "hook 'contrarian' would run more than 3 times in a row")]
    # the policy was not asked for contrarian again once the run was full
    assert gen.calls[3][0] != "contrarian"


def test_assignment_frequencies_match_allocations_over_200_ticks(settings, db, clock):
    allocations = {"hashtag_1": 0.3, "question_cta": 0.5, "late_evening_slot": 0.3}
    settings = settings.replace(plan_posts_per_day=48, plan_replies_per_day=0)
    ctx = make_ctx(settings, db, clock, seed=11)
    with db.connection() as conn:
        for exp_id, allocation in allocations.items():
            experiment_store.set_experiment(conn, "acct1", exp_id, enabled=True, allocation=allocation, now=clock.now())
    for _ in range(200):
        plan.tick(ctx)
        clock.advance(timedelta(minutes=30))

    posts = {d["decision_id"]: d for d in decisions(db, "post")}
    n = len(posts)
    assert n >= 190, f"only {n} of 200 ticks queued a post"
    with db.connection() as conn:
        rows = conn.execute("SELECT decision_id, experiment_id, arm, propensity FROM experiment_assignments "
                            "WHERE account_id = 'acct1'").fetchall()
    by_decision: dict = {}
    for r in rows:
        by_decision.setdefault(r["decision_id"], {})[r["experiment_id"]] = {"arm": r["arm"], "propensity": r["propensity"]}
    assert set(by_decision) == set(posts), "every queued post has its assignments, and only queued posts"
    for exp_id, allocation in allocations.items():
        arms = [by_decision[d][exp_id] for d in posts]
        treated = sum(a["arm"] == "treatment" for a in arms)
        sd = (n * allocation * (1 - allocation)) ** 0.5
        assert abs(treated - n * allocation) <= 4 * sd, (exp_id, treated, n)
        for a in arms:  # the propensity is the probability of the arm drawn
            assert a["propensity"] == pytest.approx(allocation if a["arm"] == "treatment" else 1 - allocation)
    for d_id, d in posts.items():
        stored = d["experiment_arms"] if isinstance(d["experiment_arms"], dict) else json.loads(d["experiment_arms"])
        assert stored == by_decision[d_id], "content_metadata.experiment_arms must match experiment_assignments"
        arms = {k: v["arm"] for k, v in stored.items()}
        # the arm recorded is the arm applied
        assert (vocab.hashtag_count(d["content"]) == 1) == (arms["hashtag_1"] == "treatment")
        if arms["question_cta"] == "treatment":
            assert vocab.ends_with_question(d["content"])
        if arms["late_evening_slot"] == "treatment":
            assert d["scheduled_at"].astimezone(ZoneInfo(settings.timezone)).hour in vocab.LATE_EVENING_HOURS
        assert 0 < d["bandit_propensity"] <= 1 and 0 < d["timing_propensity"] <= 1


def test_with_openai_answering_200_plan_queues_llm_posts_and_post_publishes_them(settings, db, clock):
    with FakeOpenAI() as fake:
        settings = settings.replace(openai_api_key="test", openai_base_url=fake.base_url, plan_replies_per_day=1)
        ctx = make_ctx(settings, db, clock)
        result = plan.tick(ctx)
        assert result.detail["queued"] == 2
        assert any(r.path.endswith("/chat/completions") and r.status == 200 for r in fake.requests)
    queued = decisions(db)
    assert {d["generation_source"] for d in queued} == {"llm"}
    assert {d["decision_type"] for d in queued} == {"post", "reply"}

    clock.set(max(d["scheduled_at"] for d in queued))
    sent = post.tick(ctx)
    assert sent.detail["sent"] == 2
    assert sorted(t.text for t in ctx.sandbox.tweets) == sorted(d["content"] for d in queued)
    with db.connection() as conn:
        posted = conn.execute("SELECT tweet_id, world FROM posted_decisions WHERE account_id = 'acct1'").fetchall()
    assert {p["tweet_id"] for p in posted} == {t.tweet_id for t in ctx.sandbox.tweets}
    assert {p["world"] for p in posted} == {"sandbox"}
    reply = next(t for t in ctx.sandbox.tweets if t.reply_to)
    assert reply.reply_to == next(d["target_tweet_id"] for d in queued if d["decision_type"] == "reply")


def test_plan_does_not_score_with_a_content_model_learned_on_other_topics(settings, db, clock, caplog):
    """A content model stored with the built-in niche's columns, read for an account whose profile now has other
    topics (cooking's): the plan must not score candidates with it (its topic columns would read 0), and says why."""
    from dataclasses import replace  # only this test gives a context another vocabulary

    from xbotlib.core.features import FEATURE_NAMES
    from xbotlib.core.predictors import train_with_fallback
    from xbotlib.core.profile import load_profile
    from xbotlib.store.models import save_version
    from xbotlib.store.queue import ensure_account

    ctx = make_ctx(settings, db, clock)
    rng = np.random.default_rng(0)
    X = rng.normal(size=(60, len(FEATURE_NAMES)))
    trained = train_with_fallback("reward", X, X[:, 0] + 0.1 * rng.normal(size=60), np.ones(60), False, None)
    with db.connection() as conn:
        ensure_account(conn, ctx.account_id, clock.now(), settings.timezone)
        save_version(conn, ctx.account_id, "content", trained, FEATURE_NAMES, 60, ctx.world, None, clock.now())
        assert plan._active_predictor(ctx, conn, "content") is not None, "its own columns: the model is served"
        cooking = replace(ctx, vocabulary=load_profile("accounts/cooking.toml").vocabulary())
        with caplog.at_level("WARNING", logger="xbot"):
            assert plan._active_predictor(cooking, conn, "content") is None
    (warning,) = [r.getMessage() for r in caplog.records if "predictor unusable" in r.getMessage()]
    assert "baking" in warning and "retrain" in warning


SLEEP = "Most sleep problems start with a bright phone screen in the hour before bed, not with caffeine."
WALK = "A ten minute walk after lunch does more for afternoon focus than a second cup of coffee."
SLEEP_AGAIN = ("Fun fact: most sleep problems start with a bright phone screen in the last hour before bed, "
               "not with late coffee.")
WALK_AGAIN = "Worth knowing: a ten minute walk after lunch does more for your afternoon focus than another espresso shot."


def test_a_post_that_repeats_the_last_week_ranks_below_one_that_repeats_an_older_post(settings, db, clock):
    """Day 0 posts SLEEP, day 10 WALK; on day 11 the candidates reword each. Against 30 days WALK_AGAIN is the more
    novel (the order before the last week counted first), but it repeats a post of the last week: SLEEP_AGAIN goes."""
    gen = ScriptedGenerator([[SLEEP], [WALK], [WALK_AGAIN, SLEEP_AGAIN]])
    ctx = make_ctx(settings.replace(plan_replies_per_day=0, plan_posts_per_day=1), db, clock, generator=gen)
    assert plan.tick(ctx).detail["queued"] == 1
    clock.advance(timedelta(days=10))
    assert plan.tick(ctx).detail["queued"] == 1
    clock.advance(timedelta(days=1))
    e = ctx.embedder.embed([SLEEP, WALK, SLEEP_AGAIN, WALK_AGAIN])
    month = [features.novelty(e[i], e[:2]) for i in (2, 3)]
    assert settings.novelty_min < month[0] < month[1], "both pass the duplicate gate; WALK_AGAIN is the more novel"
    assert features.novelty(e[3], e[1:2]) < plan.REPEAT_NOVELTY < features.novelty(e[2], e[1:2])
    result = plan.tick(ctx)
    assert result.detail["queued"] == 1 and result.detail["rejected"] == 0
    assert [d["content"] for d in decisions(db, "post")] == [SLEEP, WALK, SLEEP_AGAIN]


def test_rank_puts_distance_from_the_last_week_before_the_predictor_up_to_the_line():
    def scored(recent_novelty, predicted, novelty=0.5):
        feats = features.extract_features(GOOD, embedding=np.ones(8), recent_embeddings=None, novelty_min=0.15)
        return plan._Scored(GOOD, "template", "plain", None, replace(feats, novelty=novelty), [], predicted, None,
                            recent_novelty=recent_novelty)

    repeat, fresh = scored(0.2, predicted=9.0), scored(0.8, predicted=1.0)
    assert max([repeat, fresh], key=plan._rank) is fresh, "a near-repeat of the last week loses whatever its score"
    better, worse = scored(0.9, predicted=2.0), scored(0.6, predicted=1.0)
    assert max([worse, better], key=plan._rank) is better, "beyond the line the predictor decides"
    closer, farther = scored(0.1, predicted=5.0), scored(0.3, predicted=1.0)
    assert max([closer, farther], key=plan._rank) is farther, "below it, the farther from the last week"
    no_model = [scored(0.9, None, novelty=0.3), scored(0.7, None, novelty=0.6)]
    assert max(no_model, key=plan._rank) is no_model[1], "no model: novelty against 30 days, as before"


def test_tick_many_plans_for_each_account_what_its_own_tick_plans(settings, db, clock, pg):
    """The plan turn of a simulated daemon: the day's plan so far is read for every account in one statement, then
    each account plans as its own tick would. Three accounts over four hourly turns (acct2 allowed one post and one
    reply a day, so its later ticks find the day fully planned; acct3's generator writes nothing), together on one
    database against one tick after another on a second: the same results and the same decisions."""
    from xbotlib.clock import SimClock  # imported here: the second clock of the comparison
    from xbotlib.store.db import Database  # imported here: the second database of the comparison

    start = clock.now().replace(hour=9)   # daytime: replies are planned too
    other = Database.from_url(pg.fresh_database(), pool_max=2)
    seen = {}
    try:
        for together, database, clk in ((True, db, SimClock(start)), (False, other, SimClock(start))):
            ctxs = [make_ctx(settings.replace(account_id=f"acct{i}", plan_posts_per_day=1 if i == 2 else 3,
                                              plan_replies_per_day=1 if i == 2 else 2), database, clk, seed=70 + i)
                    for i in (1, 2, 3)]
            ctxs[2] = replace(ctxs[2], generator=ScriptedGenerator())   # gives up at every plan
            results = []
            for _ in range(4):
                turn = plan.tick_many(ctxs) if together else [plan.tick(c) for c in ctxs]
                results.append([(r.status, r.reason, r.detail) for r in turn])
                clk.advance(timedelta(hours=1))
            with database.connection() as conn:
                stored = [{k: v for k, v in r.items() if k not in ("decision_id",)} for r in conn.execute(
                    "SELECT * FROM content_metadata ORDER BY account_id, created_at, decision_type").fetchall()]
            seen[together] = (results, stored)
    finally:
        other.close()
    assert seen[True] == seen[False]
    results, stored = seen[True]
    assert [r[1][:2] for r in results] == [("ok", None), ("skipped", "day fully planned"), ("skipped", "day fully planned"),
                                           ("skipped", "day fully planned")]
    assert [turn[2][2]["queued"] for turn in results] == [0, 0, 0, 0]   # acct3: nothing to queue
    # acct1: a post and a reply per turn until its two replies are planned, its third post, then a full day
    assert [(turn[0][0], turn[0][2].get("queued")) for turn in results] == [("ok", 2), ("ok", 2), ("ok", 1),
                                                                            ("skipped", None)]
    assert sorted((d["account_id"], d["decision_type"]) for d in stored) == [
        ("acct1", "post"), ("acct1", "post"), ("acct1", "post"), ("acct1", "reply"), ("acct1", "reply"),
        ("acct2", "post"), ("acct2", "reply")]


def test_tick_many_fails_every_tick_when_the_shared_read_fails(settings, db, clock):
    ctxs = [make_ctx(settings.replace(account_id=f"acct{i}"), db, clock, seed=80 + i) for i in (1, 2)]
    db.close()   # the database is away for the turn
    results = plan.tick_many(ctxs)
    assert len(results) == 2 and all(isinstance(r, Exception) for r in results) and results[0] is results[1]
