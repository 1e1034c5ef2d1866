"""The X API v2 client against the sandbox X (in-process ASGI and one real socket)."""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path

import httpx
import pytest
from starlette.applications import Starlette
from starlette.responses import Response
from starlette.routing import Route

from xbotlib.clients.xapi import (LookupResult, XApiError, XAuthError, XClient, XConnectionError, XRateLimited, XServerError,
                                  XTimeout)
from xbotlib.clock import SimClock, SystemClock
from xbotlib.sim.transport import SyncASGITransport
from xbotlib.sim.xserver import SandboxX
from xbotlib.store.ratelimits import deferred_until, record_rate_limit

BASE = SandboxX.BASE_URL


@pytest.fixture
def sandbox(clock):
    return SandboxX(clock=clock, seed=3)


@pytest.fixture
def client(sandbox):
    with XClient.in_process(sandbox) as c:
        yield c


def post_many(client, n: int, prefix: str = "Did you know fact") -> list[str]:
    return [client.create_tweet(f"{prefix} {i}: sleep research item {i * 7919}") for i in range(n)]


def canned(status: int, body: bytes | str, headers: dict | None = None) -> SyncASGITransport:
    """A tiny X look-alike that answers every request with one fixed response."""
    async def respond(request):
        return Response(body, status_code=status, headers=headers or {}, media_type="application/json")
    paths = ["/2/tweets", "/2/tweets/analytics", "/2/users/me", "/2/tweets/search/recent"]
    return SyncASGITransport(Starlette(routes=[Route(p, respond, methods=["GET", "POST"]) for p in paths]))


def test_lookup_of_250_ids_takes_exactly_three_calls(sandbox, client, clock):
    ids = post_many(client, 250)
    clock.advance(timedelta(hours=2))
    result = client.lookup_tweets(ids)
    assert client.calls["GET /2/tweets"] == 3
    assert sandbox.requests["GET /2/tweets"] == 3
    assert set(result.metrics) == set(ids) and result.errors == {}
    m = result.metrics[ids[0]]
    assert m.created_at == sandbox.tweets[0].posted_at
    assert m.profile_visits is not None and m.link_clicks is not None  # non_public_metrics were requested
    assert sum(x.impressions for x in result.metrics.values()) > 0


def test_duplicate_ids_are_looked_up_once(client):
    (tid,) = post_many(client, 1)
    result = client.lookup_tweets([tid, tid, tid])
    assert client.calls["GET /2/tweets"] == 1 and list(result.metrics) == [tid]


def test_per_item_errors_of_a_200_are_reported_not_raised(client):
    (tid,) = post_many(client, 1)
    result = client.lookup_tweets([tid, "1234567890"])
    assert tid in result.metrics
    assert result.errors["1234567890"].startswith("Not Found Error")


@pytest.mark.parametrize("bad", ["abc", "12 3", ""])
def test_non_numeric_ids_are_refused_before_any_call(client, bad):
    with pytest.raises(ValueError, match="not numeric"):
        client.lookup_tweets(["123", bad])
    assert client.calls["GET /2/tweets"] == 0


def test_429_raises_rate_limited_with_reset_time_and_never_sleeps(sandbox, client, clock):
    sandbox.faults.push("GET /2/tweets", "rate_limit")
    before = clock.now()
    with pytest.raises(XRateLimited) as info:
        client.lookup_tweets(["123"])
    window_end = datetime.fromtimestamp((int(before.timestamp()) // 900 + 1) * 900, tz=timezone.utc)
    assert info.value.endpoint == "GET /2/tweets"
    assert info.value.reset_at == window_end and info.value.reset_at > before
    assert info.value.remaining == 0
    assert clock.now() == before  # nobody waited on the simulated clock either
    assert client.lookup_tweets(["123"]).errors  # the fault was one-shot; the next call goes through


def test_rate_limit_is_deferred_across_processes_through_the_database(db, sandbox, client, clock):
    sandbox.faults.push("POST /2/tweets", "rate_limit")
    with pytest.raises(XRateLimited) as info:
        client.create_tweet("Did you know rate limits are per 15 minutes?")
    with db.connection() as conn:
        record_rate_limit(conn, "acct1", info.value.endpoint, info.value.reset_at, info.value.remaining)
    with db.connection() as conn:
        assert deferred_until(conn, "acct1", "POST /2/tweets", clock.now()) == info.value.reset_at
        assert deferred_until(conn, "acct1", "GET /2/tweets", clock.now()) is None
        assert deferred_until(conn, "acct1", "POST /2/tweets", info.value.reset_at) is None
        assert deferred_until(conn, "other", "POST /2/tweets", clock.now()) is None


def test_429_without_reset_header_falls_back_to_retry_after_from_server_date(clock):
    transport = canned(429, "{}", {"date": "Mon, 02 Mar 2026 08:00:00 GMT", "retry-after": "120"})
    with XClient(BASE, "t", clock=clock, transport=transport) as c, pytest.raises(XRateLimited) as info:
        c.me()
    assert info.value.reset_at == datetime(2026, 3, 2, 8, 2, tzinfo=timezone.utc)


@pytest.mark.parametrize("headers, wait", [({}, timedelta(minutes=15)), ({"retry-after": "90"}, timedelta(seconds=90))])
def test_429_without_reset_or_date_is_timed_on_the_injected_clock(headers, wait):
    sim = SimClock(datetime(2031, 7, 1, 12, 0, tzinfo=timezone.utc))  # years away from the wall clock
    sim.advance(timedelta(days=40))                                     # mid-campaign
    with XClient(BASE, "t", clock=sim, transport=canned(429, "{}", headers)) as c, \
            pytest.raises(XRateLimited) as info:
        c.me()
    assert info.value.reset_at == sim.now() + wait
    assert info.value.reset_at.tzinfo is not None


def test_the_client_needs_a_clock():
    with pytest.raises(TypeError, match="clock"):
        XClient(BASE, "t")


def test_malformed_json_names_the_endpoint(sandbox, client):
    sandbox.faults.push("GET /2/tweets", "malformed")
    with pytest.raises(XApiError, match=r"^GET /2/tweets: malformed response: body is not JSON"):
        client.lookup_tweets(["123"])


@pytest.mark.parametrize("body, message", [
    ("[1, 2]", "GET /2/tweets: malformed response: body is not a JSON object"),
    ('{"data": {"id": "5"}}', "GET /2/tweets: malformed response: data is not a list"),
    ('{"data": "nope"}', "GET /2/tweets: malformed response: data is not a list"),
    ('{"data": [{"text": "no id"}]}', "GET /2/tweets: malformed response: item has no string id"),
    ('{"errors": "x"}', "GET /2/tweets: malformed response: errors is not a list"),
])
def test_bodies_of_the_wrong_shape_are_errors(body, message, clock):
    with XClient(BASE, "t", clock=clock, transport=canned(200, body)) as c, pytest.raises(XApiError) as info:
        c.lookup_tweets(["5"])
    assert str(info.value).startswith(message)


def test_missing_fields_default_and_bad_items_do_not_lose_the_batch(clock):
    body = {"data": [{"id": "5"}, {"id": "6", "public_metrics": {"like_count": "many"}},
                     {"id": "7", "public_metrics": {"like_count": 4, "impression_count": 90}}]}
    with XClient(BASE, "t", clock=clock, transport=canned(200, json.dumps(body))) as c:
        result = c.lookup_tweets(["5", "6", "7", "8"])
    five = result.metrics["5"]
    assert (five.impressions, five.likes, five.bookmarks, five.profile_visits, five.link_clicks, five.created_at) == \
        (0, 0, 0, None, None, None)
    assert result.metrics["7"].likes == 4 and result.metrics["7"].impressions == 90
    assert "like_count" in result.errors["6"]
    assert result.errors["8"].startswith("Missing")


def test_lost_response_leaves_the_tweet_in_the_sandbox_and_reconciliation_finds_it(sandbox, client, clock):
    sandbox.faults.push("POST /2/tweets", "lost_response")
    text = "New study: walking after meals flattens glucose spikes."
    with pytest.raises(XConnectionError, match="may or may not have been applied"):
        client.create_tweet(text)
    assert [t.text for t in sandbox.tweets] == [text]
    found = client.own_recent_tweets(sandbox.user_id, since=clock.now() - timedelta(minutes=5))
    assert [t.text for t in found] == [text] and found[0].tweet_id == sandbox.tweets[0].tweet_id


def test_timeout_and_server_error_are_typed_and_create_nothing(sandbox, client):
    sandbox.faults.push("POST /2/tweets", "timeout")
    sandbox.faults.push("POST /2/tweets", "server_error")
    with pytest.raises(XTimeout, match="POST /2/tweets"):
        client.create_tweet("Did you know timeouts are ambiguous?")
    with pytest.raises(XServerError) as info:
        client.create_tweet("Did you know timeouts are ambiguous?")
    assert info.value.status == 503
    assert sandbox.tweets == []
    assert client.create_tweet("Did you know timeouts are ambiguous?")  # faults consumed; now it posts


def test_duplicate_content_is_a_403_api_error(client):
    client.create_tweet("Did you know duplicates are refused?")
    with pytest.raises(XApiError, match="duplicate content") as info:
        client.create_tweet("Did you know duplicates are refused?")
    assert info.value.status == 403


def test_analytics_reports_follows_per_post_and_falls_back_cleanly_when_off(clock):
    on = SandboxX(clock=clock, seed=5)
    off = SandboxX(clock=clock, seed=5, analytics_enabled=False)
    with XClient.in_process(on) as a, XClient.in_process(off) as b:
        ids_on, ids_off = post_many(a, 40), post_many(b, 3)
        clock.advance(timedelta(days=4))
        start, end = clock.now() - timedelta(days=5), clock.now()
        stats = a.tweet_analytics(ids_on, start, end)
        assert set(stats) == set(ids_on)
        assert [stats[t].follows for t in ids_on] == [t.totals.follows for t in on.tweets]  # settled after 72 h
        assert sum(s.follows for s in stats.values()) > 0
        assert b.tweet_analytics(ids_off, start, end) is None
        assert b.calls["GET /2/tweets/analytics"] == 1


def test_token_refresh_on_401_retries_once_and_reports_new_tokens(sandbox, clock):
    sandbox.accept_any_token = False
    refreshed = []
    with XClient(BASE, "stale-token", clock=clock, refresh_token=sandbox.refresh_token, client_id="xbot-app",
                 transport=sandbox.transport(), on_token_refresh=lambda a, r: refreshed.append((a, r))) as c:
        me = c.me()
        assert me.user_id == sandbox.user_id and me.followers_count > 0
        assert refreshed == [(sandbox.token, sandbox.refresh_token)] and c.access_token == sandbox.token
        assert c.calls["POST /2/oauth2/token"] == 1 and c.calls["GET /2/users/me"] == 2
        c.me()
        assert c.calls["POST /2/oauth2/token"] == 1  # the new token keeps working


def test_me_sends_the_request_httpx_builds_with_each_calls_token(sandbox, clock):
    """GET /2/users/me's request is built once per token (its query never changes) and sent again: every call sends
    the URL httpx would build from base, path and query, the client's own headers, and the token of that call (here
    a refreshed one: the kept request is rebuilt when the token changes)."""
    sandbox.accept_any_token = False
    seen: list[tuple[str, str, str]] = []
    inner = sandbox.transport()

    def record(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/2/users/me":   # not the token refresh
            seen.append((str(request.url), request.headers["authorization"], request.headers["user-agent"]))
        return inner.handle_request(request)

    with XClient(BASE, "stale-token", clock=clock, refresh_token=sandbox.refresh_token, client_id="xbot-app",
                 transport=httpx.MockTransport(record)) as c:
        assert c.me().followers_count == c.me().followers_count == c.me().followers_count > 0
    built = str(httpx.Client(base_url=BASE).build_request("GET", "/2/users/me",
                                                         params={"user.fields": "public_metrics"}).url)
    assert built == f"{BASE}/2/users/me?user.fields=public_metrics"
    assert seen == [(built, "Bearer stale-token", "xbot/0.1")] + [(built, f"Bearer {sandbox.token}", "xbot/0.1")] * 3


def test_cookies_x_sets_are_not_sent_back(sandbox):
    """X's answers may set cookies (api.x.com sets guest_id and others); the API is authorised by the token alone,
    so the client keeps none and sends none, on the kept ``/2/users/me`` request and on a freshly built one."""
    inner = sandbox.transport()
    sent_cookies: list[str | None] = []

    def with_cookie(request: httpx.Request) -> httpx.Response:
        sent_cookies.append(request.headers.get("cookie"))
        answer = inner.handle_request(request)
        answer.read()
        return httpx.Response(answer.status_code, headers=[*answer.headers.multi_items(),
                                                           ("set-cookie", "guest_id=v1%3A1; Path=/; Domain=.x.com"),
                                                           ("set-cookie", "session=abc; Path=/")],
                              content=answer.content, request=request)

    with XClient(BASE, sandbox.token, clock=sandbox.clock, transport=httpx.MockTransport(with_cookie)) as c:
        c.me()
        c.me()
        tweet_id = c.create_tweet("a post about sleep and the cookies it never sends")
        c.lookup_tweets([tweet_id])
        assert len(c._http.cookies) == 0
        with pytest.raises(ValueError, match="access token alone"):
            c._http.cookies = {"session": "abc"}
    assert sent_cookies == [None] * 4


def test_401_without_refresh_credentials_is_an_auth_error(sandbox, clock):
    sandbox.accept_any_token = False
    with XClient(BASE, "stale-token", clock=clock, transport=sandbox.transport()) as c, pytest.raises(XAuthError, match="X_REFRESH_TOKEN"):
        c.me()


def test_failed_refresh_is_an_auth_error(sandbox, clock):
    sandbox.accept_any_token = False
    with XClient(BASE, "stale", clock=clock, refresh_token="revoked", client_id="app", transport=sandbox.transport()) as c:
        with pytest.raises(XAuthError, match="token refresh failed"):
            c.me()


def test_search_recent_returns_reply_candidates_with_author_size(client, sandbox):
    found = client.search_recent("(ai OR llm) -is:retweet lang:en", max_results=15)
    assert len(found) == 15
    assert all(t.author_followers and t.author_followers >= 80 and t.created_at for t in found)
    assert len({t.author_followers for t in found}) > 5  # varied sizes
    reply_id = client.create_tweet("Hot take: most people are wrong about agents.", reply_to=found[0].tweet_id)
    assert sandbox.tweets[-1].tweet_id == reply_id and sandbox.tweets[-1].reply_to == found[0].tweet_id


def test_rate_limit_headers_are_kept_per_endpoint(client, clock):
    client.me()
    info = client.rate_limits["GET /2/users/me"]
    assert info.remaining == 74
    assert info.reset_at == datetime.fromtimestamp((int(clock.now().timestamp()) // 900 + 1) * 900, tz=timezone.utc)


def test_xbot_sandbox_serves_100_ids_in_one_response_over_a_real_socket(tmp_path):
    env = {**os.environ, "XBOT_HOME": str(tmp_path / ".xbot"), "PYTHONUNBUFFERED": "1"}
    root = Path(__file__).resolve().parents[2]
    proc = subprocess.Popen([sys.executable, "-m", "xbotlib.app.cli.main", "sandbox", "--port", "0", "--seed", "9"],
                            cwd=root, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        base = token = None
        for _ in range(10):
            line = proc.stdout.readline()
            if m := re.match(r"base URL: (\S+)", line):
                base = m.group(1)
            if m := re.match(r"token: (\S+)", line):
                token = m.group(1)
                break
        assert base and token, proc.stderr.read() if proc.poll() is not None else "no URL printed"
        with XClient(base, token, clock=SystemClock()) as c:  # the served sandbox runs on the wall clock
            ids = post_many(c, 100, prefix="Did you know socket fact")
            assert c.lookup_tweets(ids).metrics.keys() == set(ids) and c.calls["GET /2/tweets"] == 1
        raw = httpx.get(f"{base}/2/tweets", params={"ids": ",".join(ids), "post.fields":
                        "created_at,public_metrics,non_public_metrics,organic_metrics"},
                        headers={"Authorization": f"Bearer {token}"}, timeout=10)
        assert raw.status_code == 200 and int(raw.headers["x-rate-limit-remaining"]) < int(raw.headers["x-rate-limit-limit"])
        data = raw.json()["data"]
        assert len(data) == 100
        item = data[0]
        assert set(item["public_metrics"]) == {"repost_count", "reply_count", "like_count", "quote_count",
                                               "bookmark_count", "impression_count"}
        assert set(item["non_public_metrics"]) == {"impression_count", "url_link_clicks", "user_profile_clicks"}
        assert set(item["organic_metrics"]) == {"impression_count", "like_count", "reply_count", "retweet_count",
                                                "url_link_clicks", "user_profile_clicks"}
        assert re.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$", item["created_at"])
        assert httpx.get(f"{base}/2/users/me", timeout=10).status_code == 401
        legacy = httpx.get(f"{base}/2/tweets", params={"ids": ids[0], "tweet.fields": "public_metrics"},
                           headers={"Authorization": f"Bearer {token}"}, timeout=10)
        assert legacy.status_code == 400 and legacy.json()["parameter"] == "tweet.fields"  # as X refuses it
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_lookup_result_is_a_plain_value():
    assert LookupResult() == LookupResult(metrics={}, errors={})


@pytest.mark.parametrize("name", ["repost_count", "retweet_count"])  # the spec's name, and X's documented one
def test_lookup_reads_reposts_under_both_names_and_all_three_metric_blocks(name, clock):
    body = {"data": [{"id": "5", "text": "x", "created_at": "2026-03-02T08:00:00.000Z",
                      "public_metrics": {name: 7, "reply_count": 2, "like_count": 30, "quote_count": 1,
                                         "bookmark_count": 3, "impression_count": 900},
                      "non_public_metrics": {"impression_count": 950, "url_link_clicks": 4, "user_profile_clicks": 11},
                      "organic_metrics": {"impression_count": 940, "like_count": 30, "reply_count": 2, name: 7,
                                          "url_link_clicks": 4, "user_profile_clicks": 11}}]}
    with XClient(BASE, "t", clock=clock, transport=canned(200, json.dumps(body))) as c:
        m = c.lookup_tweets(["5"]).metrics["5"]
    assert (m.retweets, m.replies, m.likes, m.quotes, m.bookmarks) == (7, 2, 30, 1, 3)
    assert (m.impressions, m.profile_visits, m.link_clicks) == (950, 11, 4)  # non_public first
    organic_only = {"data": [{"id": "5", "organic_metrics": {name: 6, "impression_count": 90, "user_profile_clicks": 2}}]}
    with XClient(BASE, "t", clock=clock, transport=canned(200, json.dumps(organic_only))) as c:
        m = c.lookup_tweets(["5"]).metrics["5"]
    assert (m.retweets, m.impressions, m.profile_visits) == (6, 90, 2)


@pytest.mark.parametrize("name", ["post_count", "tweet_count"])
def test_me_reads_the_post_count_under_both_names(name, clock):
    body = {"data": {"id": "9", "username": "a", "name": "A", "public_metrics": {
        "followers_count": 120, "following_count": 5, "listed_count": 0, name: 77}}}
    with XClient(BASE, "t", clock=clock, transport=canned(200, json.dumps(body))) as c:
        me = c.me()
    assert (me.followers_count, me.tweet_count) == (120, 77)


def test_problem_style_errors_carry_type_title_and_detail(clock):
    body = {"type": "https://api.x.com/2/problems/invalid-request", "title": "Invalid Request", "status": 400,
            "detail": "The `ids` query parameter value [abc] is not valid", "parameter": "ids", "value": "abc"}
    with XClient(BASE, "t", clock=clock, transport=canned(400, json.dumps(body))) as c, \
            pytest.raises(XApiError) as info:
        c.lookup_tweets(["5"])
    assert info.value.status == 400 and info.value.problem_type == body["type"]
    assert str(info.value) == "GET /2/tweets: 400 Invalid Request: The `ids` query parameter value [abc] is not valid"


def test_the_sandbox_refuses_query_parameters_x_does_not_define(sandbox, client):
    (tid,) = post_many(client, 1)
    raw = client._http.get("/2/tweets", params={"ids": tid, "tweet.fields": "public_metrics"},
                           headers={"Authorization": "Bearer t"})
    body = raw.json()
    assert raw.status_code == 400 and body["type"].endswith("/invalid-request") and body["parameter"] == "tweet.fields"
    assert "post.fields" in body["detail"]
