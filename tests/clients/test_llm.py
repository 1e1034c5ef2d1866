"""The budgeted OpenAI client, through the real SDK over HTTP to the fake OpenAI server."""
from __future__ import annotations

import logging
import math
import uuid
from datetime import date, timedelta

import numpy as np
import pytest

from xbotlib.config import ConfigError
from xbotlib.devtools.fake_openai import FakeOpenAI
from xbotlib.clients.generation import LLMContentGenerator, TemplateGenerator, make_generator, parse_posts
from xbotlib.clients.generation.prompts import HOOK_INSTRUCTIONS
from xbotlib.clients.llm import LLMClient
from xbotlib.clients.llm_rules import (DEFAULT_PRICE, PRICES_PER_MTOK, RETRY_AFTER_CAP_S, backoff_wait, estimate_chat_usd,
                                       price_for, usage_cost_usd)
from xbotlib.store import ledger as store_ledger
from xbotlib.store.ledger import spent_today
from xbotlib.core.vocab import HOOK_PATTERNS, detect_hook

ACCOUNT = "acct1"
DAY = date(2026, 3, 2)  # the conftest clock's UTC date


@pytest.fixture(scope="module")
def fake():
    with FakeOpenAI(slow_s=1.0) as server:
        yield server


@pytest.fixture
def llm_settings(settings, fake):
    fake.reset()
    return settings.replace(openai_api_key="sk-test", openai_base_url=fake.base_url, openai_timeout_s=5.0)


@pytest.fixture
def waits():
    return []


@pytest.fixture
def llm(llm_settings, db, clock, waits):
    return LLMClient(llm_settings, db, clock, ACCOUNT, ledger=store_ledger, sleep=waits.append, rng=np.random.default_rng(7))


@pytest.fixture
def logs(caplog):
    caplog.set_level(logging.INFO, logger="xbot")

    def lines(tag: str) -> list[str]:
        return [r.getMessage() for r in caplog.records if r.getMessage().startswith(f"[{tag}]")]
    return lines


def ledger(db) -> list[dict]:
    return db.execute("SELECT * FROM llm_ledger ORDER BY created_at, call_id")


def spent(db, day=DAY) -> float:
    with db.connection() as conn:
        return spent_today(conn, ACCOUNT, day)


# ----------------------------------------------------------------------------- success

def test_200_is_settled_at_the_usage_cost(llm, db, fake, logs):
    done = llm.complete("You write posts.", "Hook pattern: did_you_know\nTopic: ai\nCount: 1", purpose="post")
    assert done is not None and done.text
    assert len(fake.requests) == 1
    usage = fake.requests[0].usage
    expected = usage_cost_usd("gpt-4o-mini", usage["prompt_tokens"], usage["completion_tokens"])
    assert (done.prompt_tokens, done.completion_tokens) == (usage["prompt_tokens"], usage["completion_tokens"])
    assert done.cost_usd == pytest.approx(expected)
    [row] = ledger(db)
    assert row["status"] == "settled" and row["purpose"] == "post" and row["budget_day"] == DAY
    assert row["cost_usd"] == pytest.approx(expected) and row["prompt_tokens"] == usage["prompt_tokens"]
    assert row["reserved_usd"] >= row["cost_usd"]  # the estimate errs high
    assert spent(db) == pytest.approx(expected)
    assert llm.last_outcome == "ok"
    # the SDK sent what we asked for, with its own retries off
    body = fake.requests[0].body
    assert body["model"] == "gpt-4o-mini" and body["max_tokens"] == 200 and body["temperature"] == 0.9
    assert fake.requests[0].headers["authorization"] == "Bearer sk-test"
    assert fake.requests[0].headers.get("x-stainless-retry-count", "0") == "0"
    assert [line.split()[1] for line in logs("OPENAI_BUDGET")] == ["reserve", "settle"]


def test_embed_returns_vectors_and_settles_at_embedding_price(llm, db, fake):
    vectors = llm.embed(["deep work beats busy work", "sleep is a performance enhancer"])
    assert len(vectors) == 2 and all(len(v) == 64 for v in vectors)
    assert all(math.isclose(float(np.linalg.norm(v)), 1.0, rel_tol=1e-6) for v in vectors)
    [row] = ledger(db)
    assert row["status"] == "settled" and row["model"] == "text-embedding-3-small" and row["purpose"] == "novelty"
    assert row["cost_usd"] == pytest.approx(usage_cost_usd("text-embedding-3-small", fake.requests[0].usage["prompt_tokens"]))
    assert llm.embed([]) == [] and len(fake.requests) == 1


# ----------------------------------------------------------------------------- rate limits

def test_three_rate_limits_back_off_twice_then_give_up_cleanly(llm, db, fake, waits, logs):
    fake.script(["429_rate", "429_rate", "429_rate"])
    assert llm.complete("s", "u", purpose="post") is None  # no exception
    assert llm.last_outcome == "rate_limited"
    assert len(fake.requests) == 3
    backoffs = logs("OPENAI_BACKOFF")
    assert len(backoffs) == 2
    assert backoffs[0].startswith("[OPENAI_BACKOFF] attempt=1 wait_ms=250 reason=rate_limit_exceeded")
    assert backoffs[1].startswith("[OPENAI_BACKOFF] attempt=2 wait_ms=250 reason=rate_limit_exceeded")
    assert waits == [0.25, 0.25]  # the server's retry-after-ms, honoured
    assert any(" gave_up " in line and "reason=rate_limit_exceeded" in line for line in logs("OPENAI_BUDGET"))
    [row] = ledger(db)
    assert row["status"] == "refunded" and row["cost_usd"] == 0
    assert spent(db) == 0


def test_backoff_without_retry_headers_is_exponential_with_jitter(llm, fake, waits):
    fake.script(["429_rate:none", "429_rate:none", "200"])
    assert llm.complete("s", "u", purpose="post") is not None
    assert len(waits) == 2
    assert 0.4 <= waits[0] <= 0.6 and 0.8 <= waits[1] <= 1.2


def test_rate_limit_then_success_settles(llm, db, fake, waits, logs):
    fake.script(["429_rate", "200"])
    assert llm.complete("s", "u", purpose="post") is not None
    assert len(logs("OPENAI_BACKOFF")) == 1 and [r["status"] for r in ledger(db)] == ["settled"]


def test_retry_after_beyond_the_cap_gives_up_without_waiting(llm, fake, waits, logs):
    fake.script([f"429_rate:{int(RETRY_AFTER_CAP_S * 1000) + 5000}"])
    assert llm.complete("s", "u", purpose="post") is None
    assert waits == [] and len(fake.requests) == 1 and logs("OPENAI_BACKOFF") == []
    assert llm.last_outcome == "rate_limited"


def test_a_tick_shares_two_retries_and_stops_after_giving_up(llm, db, fake, waits, logs):
    llm.new_tick()
    fake.script(["429_rate", "200", "429_rate", "429_rate", "429_rate"])
    assert llm.complete("s", "u", purpose="post") is not None       # 1 retry used
    assert llm.complete("s", "u", purpose="post") is None           # 1 retry left, then gives up
    assert len(logs("OPENAI_BACKOFF")) == 2 and len(fake.requests) == 4
    assert llm.complete("s", "u", purpose="post") is None           # the tick gave up: no request at all
    assert llm.last_outcome == "tick_gave_up" and len(fake.requests) == 4
    llm.new_tick()
    fake.script([])
    assert llm.complete("s", "u", purpose="post") is not None and len(fake.requests) == 5


def test_a_client_kept_across_ticks_does_not_stay_given_up(llm, fake, clock):
    llm.new_tick()
    fake.script(["429_rate"] * 3)
    assert llm.complete("s", "u", purpose="post") is None and llm.retry_allowance.gave_up
    clock.advance(timedelta(seconds=30))  # same tick: still given up, no request
    assert llm.complete("s", "u", purpose="post") is None and len(fake.requests) == 3
    clock.advance(timedelta(minutes=5))  # a later tick that forgot new_tick(): a fresh allowance
    assert llm.complete("s", "u", purpose="post") is not None and len(fake.requests) == 4


# ----------------------------------------------------------------------------- quota circuit

def test_insufficient_quota_is_never_retried_and_opens_the_circuit_until_tomorrow(
        llm, llm_settings, db, clock, fake, waits, logs):
    fake.script(["429_quota"])
    assert llm.complete("s", "u", purpose="post") is None
    assert len(fake.requests) == 1 and waits == [] and logs("OPENAI_BACKOFF") == []
    assert llm.last_outcome == "quota_exhausted" and llm.circuit_open()
    [row] = ledger(db)
    assert row["status"] == "quota_exhausted" and row["cost_usd"] == 0 and "insufficient_quota" in row["error"]
    assert spent(db) == 0

    # every process sees the circuit: a fresh client makes no request either
    other = LLMClient(llm_settings, db, clock, ACCOUNT, ledger=store_ledger, sleep=waits.append)
    clock.advance(timedelta(hours=15))  # 23:00 UTC, still the same budget day
    assert other.complete("s", "u", purpose="post") is None and other.embed(["x"]) is None
    assert other.last_outcome == "circuit_open" and len(fake.requests) == 1
    assert any("circuit open reason=insufficient_quota until=2026-03-03" in line for line in logs("OPENAI_BUDGET"))
    assert other.budget_status()["circuit"] is True

    clock.advance(timedelta(hours=1))  # the next UTC day: closed again
    assert not other.circuit_open()
    assert other.complete("s", "u", purpose="post") is not None and len(fake.requests) == 2


def test_circuit_is_per_account(llm_settings, db, clock, fake):
    fake.script(["429_quota"])
    a = LLMClient(llm_settings, db, clock, "acct_a", ledger=store_ledger, sleep=lambda s: None)
    b = LLMClient(llm_settings, db, clock, "acct_b", ledger=store_ledger, sleep=lambda s: None)
    assert a.complete("s", "u", purpose="post") is None and a.circuit_open()
    assert not b.circuit_open() and b.complete("s", "u", purpose="post") is not None


# ----------------------------------------------------------------------------- server errors

def test_server_errors_are_refunded_and_spent_is_unchanged(llm, db, fake, logs):
    assert llm.complete("s", "u", purpose="post") is not None
    before = spent(db)
    assert before > 0
    fake.script(["500", "503"])
    assert llm.complete("s", "u", purpose="post") is None
    assert llm.last_outcome == "server_error"
    assert len(fake.requests) == 3  # one retry at most
    assert [line.split()[3] for line in logs("OPENAI_BACKOFF")] == ["reason=http_500"]
    refunded = [r for r in ledger(db) if r["status"] == "refunded"]
    assert len(refunded) == 1 and refunded[0]["cost_usd"] == 0 and refunded[0]["reserved_usd"] > 0
    assert "http_503" in refunded[0]["error"]
    assert spent(db) == pytest.approx(before)


def test_one_server_error_then_success(llm, db, fake):
    fake.script(["503", "200"])
    assert llm.complete("s", "u", purpose="post") is not None
    assert [r["status"] for r in ledger(db)] == ["settled"]


def test_timeout_is_refunded(llm_settings, db, clock, fake, waits):
    llm = LLMClient(llm_settings.replace(openai_timeout_s=0.2), db, clock, ACCOUNT, ledger=store_ledger, sleep=waits.append)
    fake.script(["slow:0.6", "slow:0.6"])
    assert llm.complete("s", "u", purpose="post") is None
    assert llm.last_outcome == "timeout" and len(waits) == 1
    [row] = ledger(db)
    assert row["status"] == "refunded" and spent(db) == 0


def test_client_error_is_refunded_and_not_retried(llm, db, fake, waits, caplog):
    fake.script(["400"])
    caplog.set_level(logging.INFO, logger="xbot")
    assert llm.complete("s", "u", purpose="post") is None
    assert llm.last_outcome == "client_error" and len(fake.requests) == 1 and waits == []
    assert [r["status"] for r in ledger(db)] == ["refunded"]
    assert any(r.levelno == logging.ERROR and "OPENAI_MODEL" in r.getMessage() for r in caplog.records)


# ----------------------------------------------------------------------------- budget

def test_budget_exhaustion_refuses_without_calling_the_server(llm_settings, db, clock, fake, logs):
    estimate = estimate_chat_usd("gpt-4o-mini", [{"role": "system", "content": "s"}, {"role": "user", "content": "u"}], 200)
    llm = LLMClient(llm_settings.replace(openai_daily_budget_usd=estimate * 0.5), db, clock, ACCOUNT, ledger=store_ledger)
    assert llm.complete("s", "u", purpose="post") is None
    assert llm.last_outcome == "refused" and fake.requests == [] and ledger(db) == []
    [line] = logs("OPENAI_BUDGET")
    assert line.startswith("[OPENAI_BUDGET] refused call_id=") and " spent=0 " in line and "budget=" in line


def test_budget_spent_by_earlier_calls_refuses_the_next(llm_settings, db, clock, fake):
    budget = 0.001
    db.execute("INSERT INTO llm_ledger (call_id, account_id, budget_day, model, status, reserved_usd, cost_usd, "
               "created_at) VALUES (%s, %s, %s, 'gpt-4o-mini', 'settled', 0.001, 0.00095, %s)",
               (uuid.uuid4(), ACCOUNT, DAY, clock.now()))
    llm = LLMClient(llm_settings.replace(openai_daily_budget_usd=budget), db, clock, ACCOUNT, ledger=store_ledger)
    assert llm.complete("s", "u", purpose="post") is None and llm.last_outcome == "refused"
    assert fake.requests == []
    clock.advance(timedelta(days=1))  # a new budget day starts from zero
    assert llm.complete("s", "u", purpose="post") is not None


def test_settle_is_clamped_to_the_budget_and_keeps_the_real_tokens(llm_settings, db, clock, fake, logs):
    budget = 0.001
    llm = LLMClient(llm_settings.replace(openai_daily_budget_usd=budget), db, clock, ACCOUNT, ledger=store_ledger)
    fake.script(["200:1000000,0"])  # the server reports a huge prompt: 0.15 USD at list price
    done = llm.complete("s", "u", purpose="post")
    assert done is not None and done.cost_usd == pytest.approx(budget)
    [row] = ledger(db)
    assert row["prompt_tokens"] == 1_000_000 and row["cost_usd"] == pytest.approx(budget)
    assert spent(db) == pytest.approx(budget)
    assert "clamped=true" in logs("OPENAI_BUDGET")[-1]
    assert llm.complete("s", "u", purpose="post") is None and llm.last_outcome == "refused"


def test_spent_today_counts_open_reservations_and_settled_costs(db, clock):
    rows = [("reserved", 0.5, 0.0), ("settled", 0.4, 0.3), ("refunded", 0.7, 0.0), ("quota_exhausted", 0.2, 0.0)]
    for status, reserved, cost in rows:
        db.execute("INSERT INTO llm_ledger (call_id, account_id, budget_day, model, status, reserved_usd, cost_usd, "
                   "created_at) VALUES (%s, %s, %s, 'm', %s, %s, %s, %s)",
                   (uuid.uuid4(), ACCOUNT, DAY, status, reserved, cost, clock.now()))
    assert spent(db) == pytest.approx(0.8)
    assert spent(db, DAY + timedelta(days=1)) == 0
    with db.connection() as conn:
        assert spent_today(conn, "someone_else", DAY) == 0


def test_budget_status(llm, fake):
    fake.script(["200", "500", "500"])
    llm.complete("s", "u", purpose="post")
    llm.complete("s", "u", purpose="post")
    status = llm.budget_status()
    assert status["day"] == "2026-03-02" and status["budget"] == 5.0 and status["circuit"] is False
    assert status["calls"] == {"settled": 1, "refunded": 1} and status["reserved"] == 0
    assert status["spent"] == pytest.approx(status["settled"]) and status["backoffs_today"] == 1
    assert status["remaining"] == pytest.approx(5.0 - status["spent"])


def test_backoffs_today_start_from_zero_each_budget_day_and_past_days_are_not_kept(llm, fake, clock):
    fake.script(["500", "200"])
    llm.complete("s", "u", purpose="post")
    assert llm.budget_status()["backoffs_today"] == 1
    clock.advance(timedelta(days=1))
    assert llm.budget_status()["backoffs_today"] == 0
    fake.script(["500", "500"])   # one retry a call: one backoff, then the call is refunded
    llm.complete("s", "u", purpose="post")
    assert llm.budget_status()["backoffs_today"] == 1
    # a daemon's client lives for months: it holds the budget day's count, not one per day it has lived
    assert len(llm._backoffs) == 1


def test_no_key_and_no_client_is_a_clear_error(settings, db, clock):
    with pytest.raises(ConfigError, match="OPENAI_API_KEY is not set"):
        LLMClient(settings, db, clock, ACCOUNT, ledger=store_ledger)


# ----------------------------------------------------------------------------- pure pieces

@pytest.mark.parametrize("model, price", [
    ("gpt-4o-mini", (0.15, 0.60)), ("gpt-4o-mini-2024-07-18", (0.15, 0.60)), ("gpt-4o-2024-08-06", (2.50, 10.00)),
    ("gpt-4.1-mini", (0.40, 1.60)), ("some-local-model", DEFAULT_PRICE), ("gpt-4omega", DEFAULT_PRICE),
])
def test_price_table(model, price):
    assert price_for(model) == price


def test_unknown_models_are_priced_above_every_listed_one():
    assert all(DEFAULT_PRICE[0] >= p[0] and DEFAULT_PRICE[1] >= p[1] for p in PRICES_PER_MTOK.values())


@pytest.mark.parametrize("headers, expected", [
    ({"retry-after-ms": "120"}, 0.12), ({"retry-after": "2"}, 2.0), ({"retry-after-ms": "300", "retry-after": "3"}, 0.3),
    ({"retry-after": "Wed, 21 Oct 2015 07:28:00 GMT"}, "computed"), ({"retry-after": "60"}, None),
])
def test_backoff_wait_honours_retry_headers_up_to_the_cap(headers, expected):
    wait = backoff_wait(1, headers, np.random.default_rng(0))
    if expected == "computed":
        assert 0.4 <= wait <= 0.6
    else:
        assert wait == (pytest.approx(expected) if expected is not None else None)


def test_backoff_grows_and_is_capped():
    rng = np.random.default_rng(1)
    for attempt, base in [(1, 0.5), (2, 1.0), (3, 2.0), (6, 2.0)]:
        assert base * 0.8 <= backoff_wait(attempt, None, rng) <= base * 1.2


# ----------------------------------------------------------------------------- content generation

def test_every_hook_has_an_instruction():
    assert set(HOOK_INSTRUCTIONS) == set(HOOK_PATTERNS)


def test_llm_generator_asks_for_the_hook_and_topic_and_marks_llm(llm, fake):
    gen = LLMContentGenerator(llm, fallback=TemplateGenerator(1))
    cands = gen.candidates("cta", "startups", 3, rng=np.random.default_rng(5))
    assert len(cands) == 3 and gen.last_outcome == "ok"
    assert all(c.generation_source == "llm" and c.hook_pattern == "cta" and c.topic == "startups" for c in cands)
    assert all(detect_hook(c.text) == "cta" and len(c.text) <= 280 and "#" not in c.text for c in cands)
    prompt = fake.requests[0].body["messages"][1]["content"]
    assert "Hook pattern: cta" in prompt and "Topic: startups" in prompt and "Count: 3" in prompt
    assert isinstance(fake.requests[0].body["seed"], int)


def test_llm_generator_replies_and_angles_reach_the_prompt(llm, fake):
    gen = LLMContentGenerator(llm)
    cands = gen.candidates("contrarian", "health", 2, angle="contrarian",
                           reply_to_text="Walking\n10k steps a day is the only way", rng=np.random.default_rng(2))
    assert len(cands) == 2
    prompt = fake.requests[0].body["messages"][1]["content"]
    assert "Reply to: Walking 10k steps a day is the only way" in prompt and "Angle: contrarian" in prompt
    assert fake.requests[0].body and llm.budget_status()["calls"] == {"settled": 1}


def test_llm_generator_returns_nothing_when_the_llm_gives_up(llm, fake):
    fake.script(["429_quota"])
    gen = LLMContentGenerator(llm, fallback=TemplateGenerator(1))
    assert gen.candidates("plain", "ai", 3) == [] and gen.last_outcome == "quota_exhausted"
    assert gen.candidates("plain", "ai", 3) == [] and gen.last_outcome == "circuit_open"
    with pytest.raises(ValueError, match="unknown hook pattern: 'nope'"):
        gen.candidates("nope", "ai", 1)


def test_parse_posts_keeps_only_usable_lines():
    answer = "\n".join([
        "Here are 5 posts in the requested style:",     # a preamble, not a post
        "Hot take:",                                    # a fragment
        '1. "Hot take: Most AI demos are slower than a script."',
        "- Hot take: Prompt clarity beats prompt length in every LLM call.",
        "Hot take: Models are fine. #AI",               # hashtag
        "Did you know? Agents break on long tasks.",    # wrong hook
        "Hot take: " + "x" * 300,                       # too long
        "",
        "Hot take: Most AI demos are slower than a script.",  # duplicate
    ])
    posts = parse_posts(answer, "contrarian", "ai", 5)
    assert [p.text for p in posts] == ["Hot take: Most AI demos are slower than a script.",
                                       "Hot take: Prompt clarity beats prompt length in every LLM call."]


def test_make_generator_picks_templates_without_a_key(settings, db, clock, llm_settings):
    gen = make_generator(settings, db, clock, ACCOUNT, ledger=store_ledger)
    assert isinstance(gen, TemplateGenerator)
    assert gen.candidates("question", "science", 1)[0].generation_source == "template"
    llm_gen = make_generator(llm_settings, db, clock, ACCOUNT, ledger=store_ledger)
    assert isinstance(llm_gen, LLMContentGenerator) and llm_gen.llm.retry_allowance is not None
    assert llm_gen.candidates("new_study", "science", 2)[0].generation_source == "llm"


def test_fake_rejects_unknown_kinds(fake):
    with pytest.raises(ValueError, match="unknown FakeOpenAI kind: '299'"):
        fake.script(["299"])


def test_parse_posts_drops_a_preamble_even_for_plain_posts():
    posts = parse_posts("Here are 2 posts:\n\nSleep matters more than any supplement for most people.", "plain", "health", 2)
    assert [p.text for p in posts] == ["Sleep matters more than any supplement for most people."]
