"""X API v2 client (sync httpx) for the calls xbot makes, against api.x.com or the sandbox.

Errors are typed so callers can act on them: ``XRateLimited`` carries ``reset_at`` (the client never
sleeps; the caller defers, see ``xbotlib.store.ratelimits``), ``XServerError`` (5xx),
``XTimeout`` and ``XConnectionError`` (the outcome of the request is unknown: a POST may have
succeeded), ``XAuthError`` (401 after at most one token refresh), and ``XApiError`` for anything
else, always naming the endpoint, e.g. ``GET /2/tweets: malformed response: body is not JSON``.

Every field of a response is optional, but a body that is not JSON, not an object, or whose ``data``
has the wrong type is an error. Per-item errors inside a 200 (unknown ids, field authorization) are
returned, not raised; error statuses carry X's problem ``type`` (``XApiError.problem_type``).

The dialect is X's published specification (the production OpenAPI document the official SDK ``xdk``
is generated from; tests/clients/test_x_contract.py checks every request and response against xdk):
``post.fields`` (``FIELDS_PARAM``), and both the spec's and the documented names are read
(``repost_count``/``retweet_count``, ``post_count``/``tweet_count``).

Post analytics — ``GET /2/tweets/analytics`` (ids ≤100, start_time, end_time, granularity=total,
``analytics.fields=follows,user_profile_clicks,url_clicks,impressions,quote_tweets,timestamped_metrics``)
— is the one place X reports follows per post. X answers only the fields asked for, as totals and
per bucket::

    {"data": [{"id": "…", "follows": 3, "user_profile_clicks": 41, "url_clicks": 0, "impressions": 1800,
               "timestamped_metrics": [{"timestamp": "…", "metrics": {"follows": 3, …}}]}],
     "errors": [...per-item, as in lookups...]}

A count is read from the total, else summed over the buckets, else it is None ("not measured", never
0): ``TweetAnalytics.follows is None`` means follows must come from follower-snapshot attribution.
When the account's access level does not include the endpoint (403) or it does not exist (404),
``tweet_analytics`` returns None, with the same meaning for every post.

The package: ``errors`` (the typed errors), ``responses`` (result types and the pure parsing of X's
JSON), ``client`` (``XClient``). Import the public names from here.
"""
from __future__ import annotations

from xbotlib.clients.xapi.client import DEFAULT_RATE_WINDOW, LOOKUP_BATCH, LOOKUP_FIELDS, XClient
from xbotlib.clients.xapi.errors import (XAnalyticsUnavailable, XApiError, XAuthError, XConnectionError, XRateLimited,
                                         XServerError, XTimeout)
from xbotlib.clients.xapi.responses import (LookupResult, OwnTweet, RateLimit, SearchTweet, TweetAnalytics, TweetMetrics,
                                            UserMetrics, item_errors, parse_analytics, parse_tweet_metrics, parse_x_time,
                                            x_time)

__all__ = ["DEFAULT_RATE_WINDOW", "LOOKUP_BATCH", "LOOKUP_FIELDS", "LookupResult", "OwnTweet", "RateLimit", "SearchTweet",
           "TweetAnalytics", "TweetMetrics", "UserMetrics", "XAnalyticsUnavailable", "XApiError", "XAuthError", "XClient",
           "XConnectionError", "XRateLimited", "XServerError", "XTimeout", "item_errors", "parse_analytics",
           "parse_tweet_metrics", "parse_x_time", "x_time"]
