"""xbot against X's published contract (the official SDK ``xdk``, generated from X's OpenAPI document):
every request the XClient sends and every response the sandbox returns over a 7-day campaign, each
endpoint and error shape on its own, the analytics parser on X's documented response shape, and the
checker failing on planted faults."""
from __future__ import annotations

import json
from datetime import timedelta

import pytest
from starlette.applications import Starlette
from starlette.responses import Response
from starlette.routing import Route

from xbotlib.clients.xapi import XApiError, XClient, parse_analytics
from xbotlib.config import load_settings
from xbotlib.devtools.x_contract import (XBOT_ENDPOINTS, ContractLog, RecordingTransport, check_request, check_response,
                                         operations)
from xbotlib.jobs import campaign
from xbotlib.jobs.campaign import CampaignConfig, run_campaign
from xbotlib.sim.transport import SyncASGITransport
from xbotlib.sim.xserver import SandboxX
from xbotlib.store.db import Database

BASE = SandboxX.BASE_URL

# X's documented shape of GET /2/tweets/analytics (docs.x.com/x-api/posts/get-posts-analytics, "Get Posts
# Analytics": response GetPostsAnalyticsResponse -> data[] of Analytics, each with the requested counts
# as totals and, with analytics.fields=timestamped_metrics, per-bucket counts in
# timestamped_metrics[].metrics). Neither the page nor the OpenAPI document carries an example body, so
# this one is written by hand in that shape, with the field names the page lists.
DOCUMENTED_ANALYTICS = {
    "data": [{
        "id": "1893016484735291904",
        "follows": 12, "user_profile_clicks": 87, "url_clicks": 31, "impressions": 15402, "quote_tweets": 4,
        "timestamped_metrics": [
            {"timestamp": "2026-03-02T00:00:00.000Z",
             "metrics": {"follows": 9, "user_profile_clicks": 60, "url_clicks": 20, "impressions": 11000,
                         "quote_tweets": 3}},
            {"timestamp": "2026-03-03T00:00:00.000Z",
             "metrics": {"follows": 3, "user_profile_clicks": 27, "url_clicks": 11, "impressions": 4402,
                         "quote_tweets": 1}},
        ],
    }],
    "errors": [{"value": "1893016484735291999", "detail": "Could not find tweet with ids: [1893016484735291999].",
                "title": "Not Found Error", "resource_type": "tweet", "parameter": "ids",
                "resource_id": "1893016484735291999", "type": "https://api.x.com/2/problems/resource-not-found"}],
}
TOTALS = ("follows", "user_profile_clicks", "url_clicks", "impressions", "quote_tweets")


def canned(status: int, body: dict | str, headers: dict | None = None) -> SyncASGITransport:
    """A tiny X look-alike answering every request with one fixed body."""
    raw = body if isinstance(body, str) else json.dumps(body)

    async def respond(request):
        return Response(raw, status_code=status, headers=headers or {}, media_type="application/json")
    paths = ["/2/tweets", "/2/tweets/analytics", "/2/users/me", "/2/tweets/search/recent"]
    return SyncASGITransport(Starlette(routes=[Route(p, respond, methods=["GET", "POST"]) for p in paths]))


class RecordedSandbox(SandboxX):
    """The real sandbox; every client built on its transport has its traffic checked into ``LOG``."""
    LOG: ContractLog | None = None

    def transport(self):
        assert self.LOG is not None
        return RecordingTransport(super().transport(), self.LOG)


def _report(log: ContractLog) -> str:
    return "\n".join(str(i) for i in log.issues[:30])


# ----------------------------------------------------------------------------- (a) the campaign

def test_a_7_day_sandbox_campaign_speaks_x_documented_contract(pg, monkeypatch):
    log = ContractLog()
    monkeypatch.setattr(RecordedSandbox, "LOG", log)
    monkeypatch.setattr(campaign, "SandboxX", RecordedSandbox)  # the campaign's own sandbox, recorded
    with Database.from_url(pg.fresh_database(), pool_max=3) as db:
        run = run_campaign(CampaignConfig(days=7, seed=11), load_settings(env={}), db)
        posted = len(run.contexts[0].sandbox.tweets)
    seen = log.routes()
    assert posted > 0 and seen.get("POST /2/tweets", 0) >= posted
    for route in ("POST /2/tweets", "GET /2/tweets", "GET /2/tweets/analytics", "GET /2/users/me",
                  "GET /2/tweets/search/recent"):
        assert seen.get(route, 0) > 0, f"the campaign never called {route}: {seen}"
    assert log.count("undefined_field") == 0, _report(log)
    assert log.count("missing_required") == 0, _report(log)
    assert log.issues == [], _report(log)                     # every request valid, every value typed
    analytics = [e for e in log.exchanges if e.route == "GET /2/tweets/analytics" and e.status == 200]
    assert sum(d.get("follows", 0) for e in analytics for d in e.response_body.get("data", [])) > 0


# ----------------------------------------------------------------------------- each endpoint, errors too

def test_every_endpoint_and_error_shape_the_client_meets_is_valid(clock):
    log = ContractLog()
    on = SandboxX(clock=clock, seed=4)
    off = SandboxX(clock=clock, seed=4, analytics_enabled=False)
    with XClient(BASE, on.token, clock=clock, transport=RecordingTransport(on.transport(), log)) as c, \
            XClient(BASE, off.token, clock=clock, transport=RecordingTransport(off.transport(), log)) as d:
        found = c.search_recent("(ai OR llm) -is:retweet lang:en", max_results=10)
        ids = [c.create_tweet(f"Did you know contract fact {i}?") for i in range(3)]
        ids.append(c.create_tweet("A reply for the contract.", reply_to=found[0].tweet_id))
        clock.advance(timedelta(hours=25))
        me = c.me()
        assert me.tweet_count > 0 and me.followers_count > 0
        result = c.lookup_tweets(ids + ["1234567890", found[1].tweet_id])  # not found; field authorization
        assert result.errors["1234567890"].startswith("Not Found Error")
        assert result.errors[found[1].tweet_id].startswith("Field Authorization Error")
        stats = c.tweet_analytics(ids + ["1234567890"], clock.now() - timedelta(days=2), clock.now())
        assert set(stats) == set(ids) and all(s.follows is not None and s.profile_visits is not None
                                              for s in stats.values())
        assert [t.tweet_id for t in c.own_recent_tweets(on.user_id, since=clock.now() - timedelta(days=2))] == ids[::-1]
        assert d.tweet_analytics([d.create_tweet("No analytics here.")], clock.now(), clock.now()) is None
        on.faults.push("GET /2/tweets", "rate_limit")
        with pytest.raises(XApiError):
            c.lookup_tweets(ids)
        with pytest.raises(XApiError) as dup:
            c.create_tweet("Did you know contract fact 0?")
        assert dup.value.status == 403
    assert {e.status for e in log.exchanges} >= {200, 201, 403, 429}
    assert set(log.routes()) == set(XBOT_ENDPOINTS)
    assert log.issues == [], _report(log)


def test_the_sandbox_answers_only_the_analytics_fields_asked_for(clock):
    sandbox = SandboxX(clock=clock, seed=4)
    log = ContractLog()
    with XClient(BASE, sandbox.token, clock=clock, transport=RecordingTransport(sandbox.transport(), log)) as c:
        tid = c.create_tweet("Did you know fields are opt-in?")
        clock.advance(timedelta(hours=30))
        raw = c._http.get("/2/tweets/analytics", headers={"Authorization": "Bearer t"}, params={
            "ids": tid, "start_time": "2026-03-01T00:00:00Z", "end_time": "2026-03-04T00:00:00Z",
            "granularity": "daily", "analytics.fields": "follows,timestamped_metrics"})
    item = raw.json()["data"][0]
    assert set(item) == {"id", "follows", "timestamped_metrics"}
    assert all(set(b["metrics"]) == {"follows"} for b in item["timestamped_metrics"])
    assert len(item["timestamped_metrics"]) == 3  # daily from the 1st 00:00 to now (the 3rd 14:00): 3 buckets
    assert sum(b["metrics"]["follows"] for b in item["timestamped_metrics"]) == item["follows"]
    assert parse_analytics(item).profile_visits is None  # not asked, not measured: None, never 0
    assert log.issues == [], _report(log)


# ----------------------------------------------------------------------------- (b) X's documented shape

def test_b_the_documented_analytics_fixture_is_valid_against_the_contract():
    assert check_response("GET", "/2/tweets/analytics", 200, DOCUMENTED_ANALYTICS) == []


def test_b_analytics_parser_reads_documented_follows_and_profile_visits_from_totals_and_from_buckets():
    item = DOCUMENTED_ANALYTICS["data"][0]
    from_totals = parse_analytics(item)
    buckets_only = {k: v for k, v in item.items() if k not in TOTALS}
    from_buckets = parse_analytics(buckets_only)
    for a in (from_totals, from_buckets):
        assert (a.follows, a.profile_visits, a.link_clicks, a.impressions, a.quotes) == (12, 87, 31, 15402, 4)
    assert from_buckets.follows > 0 and from_buckets.profile_visits > 0


def test_b_the_client_reads_the_documented_response_and_requests_what_the_spec_requires(clock):
    log = ContractLog()
    transport = RecordingTransport(canned(200, DOCUMENTED_ANALYTICS), log)
    with XClient(BASE, "t", clock=clock, transport=transport) as c:
        stats = c.tweet_analytics(["1893016484735291904", "1893016484735291999"],
                                  clock.now() - timedelta(days=2), clock.now())
    assert list(stats) == ["1893016484735291904"]  # the partial error's id is absent, not zero
    a = stats["1893016484735291904"]
    assert (a.follows, a.profile_visits) == (12, 87)
    (ex,) = log.exchanges
    q = dict(ex.query)
    assert q["granularity"] == "total" and q["start_time"].endswith("Z") and q["end_time"].endswith("Z")
    assert {"follows", "user_profile_clicks", "url_clicks", "impressions"} <= set(q["analytics.fields"].split(","))
    assert log.issues == [], _report(log)


# ----------------------------------------------------------------------------- (c) missing is None

@pytest.mark.parametrize("item", [
    {"id": "5", "user_profile_clicks": 3},
    {"id": "5", "timestamped_metrics": [{"timestamp": "2026-03-02T00:00:00.000Z", "metrics": {"impressions": 40}}]},
    {"id": "5", "timestamped_metrics": [{"timestamp": "2026-03-02T00:00:00.000Z", "metrics": {"follows": None}}]},
])
def test_c_a_response_without_follows_yields_none_not_zero(item, clock):
    assert parse_analytics(item).follows is None
    with XClient(BASE, "t", clock=clock, transport=canned(200, {"data": [item]})) as c:
        assert c.tweet_analytics(["5"], clock.now() - timedelta(hours=1), clock.now())["5"].follows is None


def test_c_a_measured_zero_stays_zero():
    assert parse_analytics({"id": "5", "follows": 0}).follows == 0
    bucketed = {"id": "5", "timestamped_metrics": [{"metrics": {"follows": 0}}, {"metrics": {"follows": None}}]}
    assert parse_analytics(bucketed).follows == 0


# ----------------------------------------------------------------------------- (d) the checker catches faults

def test_d_the_checker_fails_on_a_planted_undefined_field():
    body = {"data": [{"id": "5", "text": "hi", "edit_history_post_ids": ["5"],
                      "public_metrics": {"repost_count": 1, "reply_count": 0, "like_count": 2, "quote_count": 0,
                                         "bookmark_count": 0, "impression_count": 9, "profile_visits": 4}}]}
    assert check_response("GET", "/2/tweets", 200, body)[0].kind == "undefined_field"
    (issue,) = check_response("GET", "/2/tweets", 200, body)
    assert issue.where.endswith("public_metrics.profile_visits") and "PostPublicMetrics" in issue.detail
    nested = json.loads(json.dumps(DOCUMENTED_ANALYTICS))
    nested["data"][0]["timestamped_metrics"][1]["metrics"]["profile_visits"] = 3
    assert [i.kind for i in check_response("GET", "/2/tweets/analytics", 200, nested)] == ["undefined_field"]
    legacy = {"data": [{"id": "5", "follows": 1, "url_link_clicks": 2}]}   # the client's old dialect
    assert [i.where.rsplit(".", 1)[1] for i in check_response("GET", "/2/tweets/analytics", 200, legacy)] == \
        ["url_link_clicks"]


def test_d_the_checker_fails_on_missing_required_fields_and_bad_problems():
    body = {"data": {"id": "1", "public_metrics": {"followers_count": 1, "following_count": 2, "listed_count": 0,
                                                   "tweet_count": 9}}}
    kinds = sorted((i.kind, i.where.rsplit(".", 1)[1]) for i in check_response("GET", "/2/users/me", 200, body))
    assert kinds == [("missing_required", "post_count"), ("undefined_field", "tweet_count")]
    assert check_response("GET", "/2/tweets", 400, {"title": "Invalid Request", "detail": "bad",
                                                    "type": "https://api.x.com/2/problems/invalid-request"}) == []
    old = {"errors": [{"parameters": {"ids": []}, "message": "m"}], "title": "Invalid Request", "detail": "d",
           "type": "https://api.x.com/2/problems/invalid-request"}
    assert [i.kind for i in check_response("GET", "/2/tweets", 400, old)] == ["undefined_field"]


def test_d_the_checker_fails_on_a_planted_bad_query_parameter():
    good = [("ids", "5,6"), ("post.fields", "created_at,public_metrics")]
    assert check_request("GET", "/2/tweets", good) == []
    (issue,) = check_request("GET", "/2/tweets", [("ids", "5"), ("tweet.fields", "public_metrics")])
    assert issue.kind == "bad_parameter" and "tweet.fields" in issue.where
    (issue,) = check_request("GET", "/2/tweets", [("ids", "5"), ("post.fields", "public_metrics,profile_visits")])
    assert issue.kind == "bad_parameter_value" and "'profile_visits'" in issue.detail
    missing = check_request("GET", "/2/tweets/analytics", [("ids", "5"), ("start_time", "2026-03-02T00:00:00Z")])
    assert [(i.kind, i.where.rsplit("?", 1)[1]) for i in missing] == [("missing_parameter", "end_time")]
    (issue,) = check_request("GET", "/2/tweets/analytics", [("ids", "5"), ("start_time", "a"), ("end_time", "b"),
                                                            ("granularity", "minutely")])
    assert issue.kind == "bad_parameter_value"
    bad_reply = check_request("POST", "/2/tweets", [], {"text": "hi", "reply": {"tweet_id": "5"}})
    assert sorted((i.kind, i.where.rsplit(".", 1)[1]) for i in bad_reply) == [
        ("missing_required", "in_reply_to_tweet_id"), ("undefined_field", "tweet_id")]
    assert check_request("GET", "/2/tweets/5/liking_users", [])[0].kind == "unknown_route"


def test_d_a_client_drifting_from_the_contract_is_caught_through_the_transport(clock):
    body = {"data": [{"id": "5", "text": "x", "public_metrics": {"retweet_count": 1}}]}
    log = ContractLog()
    with XClient(BASE, "t", clock=clock, transport=RecordingTransport(canned(200, body), log)) as c:
        c.lookup_tweets(["5"])
        c._http.get("/2/tweets", params={"ids": "5", "tweet.fields": "public_metrics"})
    assert log.count("undefined_field") == 2 and log.count("missing_required") == 12  # 6 counts, twice
    assert log.count("bad_parameter") == 1


def test_the_contract_is_read_from_xdk_for_every_endpoint_xbot_calls():
    ops = operations()
    assert set(XBOT_ENDPOINTS) <= set(ops)
    assert ops["GET /2/tweets/analytics"].params["granularity"].values == {"hourly", "daily", "weekly", "total"}
    assert {"follows", "user_profile_clicks", "url_clicks"} <= ops["GET /2/tweets/analytics"].params["analytics.fields"].values
    assert ops["GET /2/tweets/analytics"].params["start_time"].required
    assert ops["GET /2/users/:id/tweets"].path == "/2/users/{id}/tweets"
    assert ops["POST /2/tweets"].body_model is not None
