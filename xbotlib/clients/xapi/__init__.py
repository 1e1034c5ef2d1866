"""X API v2 client (sync httpx) for the calls xbot makes, against api.x.com or the sandbox.

Errors are typed so callers can act on them: ``XRateLimited`` carries ``reset_at`` (the client never
sleeps; the caller defers, see ``xbotlib.store.ratelimits``), ``XServerError`` (5xx),
``XTimeout`` and ``XConnectionError`` (the outcome of the request is unknown: a POST may have
succeeded), ``XAuthError`` (401 after at most one token refresh), and ``XApiError`` for anything
else, always naming the endpoint, e.g. ``GET /2/tweets: malformed response: body is not JSON``.

Every field of a response is optional (missing counts are 0, missing optional values None), but a
body that is not JSON, not an object, or whose ``data`` has the wrong type is an error. Per-item
errors inside a 200 (unknown ids, field authorization) are returned, not raised.

Post analytics — ``GET /2/tweets/analytics`` (ids ≤100, start_time, end_time, granularity=total) —
is the one place X reports follows per post. Its response shape, as this client reads it::

    {"data": [{"id": "…", "follows": 3, "user_profile_clicks": 41, "url_link_clicks": 0,
               "impression_count": 1800}],
     "errors": [...per-item, as in lookups...], "meta": {"start_time": …, "end_time": …}}

(``profile_visits`` is accepted as a synonym of ``user_profile_clicks``.) When the account's access
level does not include it (403) or the endpoint does not exist (404), ``tweet_analytics`` returns
None and callers fall back to follower-snapshot attribution.

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
