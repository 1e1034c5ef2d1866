"""The sandbox X server: X's shapes, determinism, accrual, shared state, faults on command."""
from __future__ import annotations

import asyncio
from datetime import timedelta

import httpx
import pytest

from xbotlib.clock import SimClock
from xbotlib.sim.xprotocol import ROUTES, route_of
from xbotlib.sim.xserver import SandboxX
from xbotlib.clients.xapi import XApiError, XClient

BASE = SandboxX.BASE_URL
TEXTS = [f"Did you know {topic} fact {i}: {word} matters more than you think"
         for i, (topic, word) in enumerate([("sleep", "timing"), ("protein", "breakfast"), ("walking", "pace"),
                                            ("stress", "breathing"), ("heart", "rhythm"), ("exercise", "recovery")])]


def run_world(seed: int, clock: SimClock, **kwargs) -> tuple[SandboxX, list]:
    """Post TEXTS two hours apart, then read every post at T+1h and T+24h."""
    sandbox = SandboxX(clock=clock, seed=seed, **kwargs)
    reads = []
    with XClient.in_process(sandbox) as c:
        ids = []
        for text in TEXTS:
            ids.append(c.create_tweet(text))
            clock.advance(timedelta(hours=2))
        clock.advance(timedelta(hours=30))
        reads.append(c.lookup_tweets(ids).metrics)
        reads.append(c.me().followers_count)
    return sandbox, reads


def raw_client(sandbox: SandboxX, token: str | None = "any") -> httpx.Client:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return httpx.Client(base_url=BASE, transport=sandbox.transport(), headers=headers)


def test_same_seed_same_world_different_seed_different_world(clock):
    start = clock.now()
    a, reads_a = run_world(11, SimClock(start))
    b, reads_b = run_world(11, SimClock(start))
    c, reads_c = run_world(12, SimClock(start))
    assert reads_a == reads_b
    assert [t.totals for t in a.tweets] == [t.totals for t in b.tweets]
    assert [t.totals for t in a.tweets] != [t.totals for t in c.tweets]


def test_a_t_plus_1h_read_never_exceeds_the_t_plus_24h_read(clock):
    sandbox = SandboxX(clock=clock, seed=4)
    with XClient.in_process(sandbox) as c:
        ids = [c.create_tweet(t) for t in TEXTS]
        reads = []
        for hours in (0, 1, 6, 24, 100):
            clock.set(sandbox.tweets[0].posted_at + timedelta(hours=hours))
            reads.append(c.lookup_tweets(ids).metrics)
    for tid in ids:
        series = [r[tid] for r in reads]
        for field in ("impressions", "likes", "retweets", "replies", "profile_visits", "link_clicks"):
            values = [getattr(m, field) for m in series]
            assert values == sorted(values), (field, values)
        assert series[0].impressions == 0  # nothing has accrued at T+0
        assert series[1].impressions < series[3].impressions  # T+1h sees a fraction of T+24h
    final = {t.tweet_id: t.totals for t in sandbox.tweets}
    assert all(reads[-1][tid].impressions == final[tid].impressions for tid in ids)  # settled


def test_followers_follow_the_follows_earned(clock):
    sandbox = SandboxX(clock=clock, seed=2)
    initial = sandbox.scenario.account.initial_followers
    with XClient.in_process(sandbox) as c:
        assert c.me().followers_count == initial
        for text in TEXTS:
            c.create_tweet(text)
        clock.advance(timedelta(days=4))
        now = c.me().followers_count
    earned = sum(t.totals.follows for t in sandbox.tweets)
    days = 4
    acct = sandbox.scenario.account
    # organic follows and churn are the only other movements (a few per day)
    assert abs(now - (initial + earned)) <= days * (acct.organic_follows_per_day + acct.churn_per_day * initial) * 3 + 5


def test_state_file_lets_two_processes_share_one_world(tmp_path, clock):
    path = tmp_path / "world.json"
    first = SandboxX(clock=clock, seed=8, state_path=path)
    second = SandboxX(clock=clock, seed=8, state_path=path)  # as if another CLI process
    with XClient.in_process(first) as c1, XClient.in_process(second) as c2:
        t1 = c1.create_tweet(TEXTS[0])
        found = c2.search_recent("startup founders", max_results=10)
        t2 = c2.create_tweet(TEXTS[1])
        reply = c1.create_tweet("Hot take: customers before code, always.", reply_to=found[0].tweet_id)
        clock.advance(timedelta(hours=3))
        seen = c1.lookup_tweets([t1, t2, reply])
    assert set(seen.metrics) == {t1, t2, reply} and seen.errors == {}
    third = SandboxX(clock=clock, seed=8, state_path=path)
    assert [t.tweet_id for t in third.tweets] == [t1, t2, reply]
    assert third.tweets[2].target.author_followers == found[0].author_followers
    with pytest.raises(ValueError, match="seed=8"):
        SandboxX(clock=clock, seed=9, state_path=path)


def test_requests_need_a_bearer_token(clock):
    sandbox = SandboxX(clock=clock)
    with raw_client(sandbox, token=None) as http:
        r = http.get("/2/users/me")
    assert r.status_code == 401 and r.json()["title"] == "Unauthorized"
    assert sandbox.requests["GET /2/users/me"] == 1


def test_responses_use_x_shapes_and_rate_limit_headers(clock):
    sandbox = SandboxX(clock=clock, seed=1)
    with raw_client(sandbox) as http:
        r = http.post("/2/tweets", json={"text": TEXTS[0]})
        assert r.status_code == 201
        tid = r.json()["data"]["id"]
        assert r.json()["data"]["edit_history_post_ids"] == [tid]  # the spec's name (xdk CreatePostsResponseData)
        assert {"x-rate-limit-limit", "x-rate-limit-remaining", "x-rate-limit-reset"} <= set(r.headers)
        body = http.get("/2/tweets", params={"ids": f"{tid},99", "post.fields": "public_metrics",
                                               "expansions": "author_id"}).json()
        assert body["data"][0]["author_id"] == sandbox.user_id and "non_public_metrics" not in body["data"][0]
        assert body["errors"][0] == {"value": "99", "detail": "Could not find tweet with ids: [99].",
                                     "title": "Not Found Error", "resource_type": "tweet", "parameter": "ids",
                                     "resource_id": "99", "type": "https://api.x.com/2/problems/resource-not-found"}
        too_many = http.get("/2/tweets", params={"ids": ",".join(str(i) for i in range(1, 102))})
        assert too_many.status_code == 400 and too_many.json()["title"] == "Invalid Request"
        me = http.get("/2/users/me", params={"user.fields": "public_metrics"}).json()["data"]
        assert set(me["public_metrics"]) >= {"followers_count", "following_count", "post_count"}
        assert http.get(f"/2/users/{sandbox.user_id}/tweets", params={"max_results": "3"}).status_code == 400
        other = http.get("/2/users/42/tweets").json()
        assert other["errors"][0]["title"] == "Not Found Error"


@pytest.mark.parametrize("payload, status", [
    ({"text": ""}, 400), ({"text": "x" * 281}, 400), ({"nope": 1}, 400),
    ({"text": "Hot take: replying to a ghost.", "reply": {"in_reply_to_tweet_id": "123456"}}, 403),
])
def test_bad_posts_are_refused_and_store_nothing(clock, payload, status):
    sandbox = SandboxX(clock=clock)
    with raw_client(sandbox) as http:
        assert http.post("/2/tweets", json=payload).status_code == status
    assert sandbox.tweets == []


def test_timeline_pages_newest_first(clock):
    sandbox = SandboxX(clock=clock)
    with XClient.in_process(sandbox) as c:
        ids = []
        for i in range(12):
            ids.append(c.create_tweet(f"New study: result number {i} on {i * 13} volunteers"))
            clock.advance(timedelta(minutes=10))
        got = c.own_recent_tweets(sandbox.user_id, since=clock.now() - timedelta(days=1), max_results=12)
        assert [t.tweet_id for t in got] == ids[::-1]
        recent = c.own_recent_tweets(sandbox.user_id, since=clock.now() - timedelta(minutes=35), max_results=50)
        assert [t.tweet_id for t in recent] == ids[::-1][:3]
        with pytest.raises(XApiError, match="Could not find user"):
            c.own_recent_tweets("42", since=clock.now() - timedelta(days=1))


def test_search_is_stable_within_an_hour_and_changes_with_the_next(clock):
    sandbox = SandboxX(clock=clock, seed=6)
    with XClient.in_process(sandbox) as c:
        first = [t.tweet_id for t in c.search_recent("sleep and exercise", 10)]
        clock.advance(timedelta(minutes=20))
        again = [t.tweet_id for t in c.search_recent("sleep and exercise", 10)]
        clock.advance(timedelta(hours=1))
        later = [t.tweet_id for t in c.search_recent("sleep and exercise", 10)]
    assert first == again and set(first).isdisjoint(later)


def test_enforced_rate_limits_answer_429_after_the_window_budget(clock):
    sandbox = SandboxX(clock=clock, enforce_rate_limits=True)
    with raw_client(sandbox) as http:
        codes = [http.get("/2/users/me").status_code for _ in range(76)]
        assert codes[:75] == [200] * 75 and codes[75] == 429
        clock.advance(timedelta(minutes=15))
        assert http.get("/2/users/me").status_code == 200


def test_fault_plan_validates_and_consumes_in_order(clock):
    sandbox = SandboxX(clock=clock)
    with pytest.raises(ValueError, match="unknown sandbox route"):
        sandbox.faults.push("GET /2/nope", "timeout")
    with pytest.raises(ValueError, match="unknown fault kind"):
        sandbox.faults.push("GET /2/tweets", "explode")
    sandbox.faults.push("*", "server_error", count=2)
    with raw_client(sandbox) as http:
        assert [http.get("/2/users/me").status_code for _ in range(3)] == [503, 503, 200]
    assert sandbox.faults.pending() == {}


def test_route_names():
    assert route_of("GET", "/2/users/123/tweets") == "GET /2/users/:id/tweets"
    assert route_of("POST", "/2/tweets") in ROUTES and route_of("DELETE", "/2/tweets") is None


def test_what_is_not_an_x_route_is_answered_as_before_and_a_handler_error_is_a_500(clock):
    """X routes are served by their handlers directly behind the edge; the rest still by Starlette's router:
    a path X does not have (404), a method X does not take there (405), a trailing slash (redirect)."""
    sandbox = SandboxX(clock=clock, seed=2)
    assert set(sandbox._handlers) == set(ROUTES)   # every X route has its handler, and nothing else is served so
    with raw_client(sandbox) as http:
        assert http.get("/2/nothing").status_code == 404
        assert http.delete("/2/tweets").status_code == 405
        slash = http.get("/2/users/me/", params={"user.fields": "public_metrics"})
        assert slash.status_code == 307 and slash.headers["location"].endswith("/2/users/me?user.fields=public_metrics")
        assert sandbox.requests["GET /2/users/me"] == 1   # the edge counted it, as before
        me = http.get("/2/users/me", params={"user.fields": "public_metrics"})
        timeline = http.get(f"/2/users/{sandbox.user_id}/tweets", params={"max_results": "5"})
        assert me.status_code == timeline.status_code == 200 and timeline.json()["meta"]["result_count"] == 0
        assert {"x-rate-limit-limit", "x-rate-limit-remaining"} <= set(me.headers)
        assert sandbox.requests["GET /2/users/:id/tweets"] == 1
    sandbox.audience = None   # a broken world: the handler raises

    async def ask() -> int:
        async with httpx.AsyncClient(base_url=BASE, headers={"Authorization": "Bearer any"},
                                     transport=httpx.ASGITransport(sandbox.socket_app(), raise_app_exceptions=False)) as http:
            return (await http.get("/2/users/me", params={"user.fields": "public_metrics"})).status_code
    assert asyncio.run(ask()) == 500
