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
"""
from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from email.utils import parsedate_to_datetime
from typing import Any, Callable, Iterator, Mapping, Sequence

import httpx

log = logging.getLogger("xbot.xapi")

LOOKUP_BATCH = 100
LOOKUP_FIELDS = "created_at,public_metrics,non_public_metrics,organic_metrics"
DEFAULT_RATE_WINDOW = timedelta(minutes=15)


# ----------------------------------------------------------------------------- errors

class XApiError(RuntimeError):
    """An X API call failed; the message names the endpoint and what was wrong."""

    def __init__(self, message: str, *, endpoint: str = "", status: int | None = None):
        super().__init__(message)
        self.endpoint = endpoint
        self.status = status


class XRateLimited(XApiError):
    """429: come back at ``reset_at`` (UTC). The client never sleeps."""

    def __init__(self, endpoint: str, reset_at: datetime, remaining: int | None = None):
        super().__init__(f"{endpoint}: rate limited until {reset_at.isoformat()} (remaining={remaining})",
                         endpoint=endpoint, status=429)
        self.reset_at = reset_at
        self.remaining = remaining


class XServerError(XApiError):
    """X answered 5xx; safe to retry later (a POST may still have been applied: reconcile first)."""


class XTimeout(XApiError):
    """No answer in time: the outcome is unknown (a POST may have been applied)."""


class XConnectionError(XApiError):
    """The connection failed or dropped: the outcome is unknown (a POST may have been applied)."""


class XAuthError(XApiError):
    """401/403 on credentials, or the token refresh failed: fix X_ACCESS_TOKEN / X_REFRESH_TOKEN."""


class XAnalyticsUnavailable(XApiError):
    """Not raised by ``tweet_analytics`` (it returns None instead); kept for callers that prefer raising."""


# ----------------------------------------------------------------------------- results

@dataclass(frozen=True)
class TweetMetrics:
    tweet_id: str
    created_at: datetime | None = None
    impressions: int = 0
    likes: int = 0
    retweets: int = 0
    replies: int = 0
    quotes: int = 0
    bookmarks: int = 0
    profile_visits: int | None = None
    link_clicks: int | None = None


@dataclass(frozen=True)
class TweetAnalytics:
    tweet_id: str
    follows: int = 0
    profile_visits: int | None = None
    link_clicks: int | None = None


@dataclass(frozen=True)
class UserMetrics:
    user_id: str
    username: str
    followers_count: int = 0
    following_count: int = 0
    tweet_count: int = 0


@dataclass(frozen=True)
class SearchTweet:
    tweet_id: str
    text: str
    author_id: str | None = None
    created_at: datetime | None = None
    author_followers: int | None = None
    likes: int = 0
    retweets: int = 0
    replies: int = 0
    quotes: int = 0


@dataclass(frozen=True)
class OwnTweet:
    tweet_id: str
    text: str
    created_at: datetime | None = None


@dataclass(frozen=True)
class LookupResult:
    """Metrics per tweet id, and per-item errors ('Not Found Error: …') for ids X did not return."""
    metrics: dict[str, TweetMetrics] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class RateLimit:
    remaining: int | None
    reset_at: datetime | None


# ----------------------------------------------------------------------------- parsing (pure)

class _Malformed(ValueError):
    pass


def parse_x_time(raw: Any) -> datetime | None:
    """'2026-03-02T08:00:00.000Z' -> aware datetime; None when missing; _Malformed when unreadable."""
    if raw is None:
        return None
    if not isinstance(raw, str):
        raise _Malformed(f"timestamp is not a string: {raw!r}")
    try:
        value = datetime.fromisoformat(raw.strip().replace("Z", "+00:00"))
    except ValueError:
        raise _Malformed(f"timestamp is not ISO 8601: {raw!r}") from None
    return value if value.tzinfo else value.replace(tzinfo=timezone.utc)


def x_time(at: datetime) -> str:
    """The time format X accepts in start_time/end_time: YYYY-MM-DDTHH:mm:ssZ."""
    if at.tzinfo is None:
        raise ValueError(f"time must be timezone-aware: {at!r} (pass tzinfo=timezone.utc)")
    return at.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _obj(value: Any, what: str) -> Mapping[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise _Malformed(f"{what} is not an object: {value!r:.80}")
    return value


def _count(block: Mapping[str, Any], key: str, what: str) -> int | None:
    value = block.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise _Malformed(f"{what}.{key} is not a non-negative integer: {value!r}")
    return value


def _first(*values: int | None) -> int | None:
    return next((v for v in values if v is not None), None)


def _item_id(item: Any) -> str:
    if not isinstance(item, dict) or not isinstance(item.get("id"), str) or not item["id"]:
        raise _Malformed(f"item has no string id: {item!r:.80}")
    return item["id"]


def parse_tweet_metrics(item: Mapping[str, Any]) -> TweetMetrics:
    """One tweet object of a lookup -> TweetMetrics. Impressions prefer non_public, then organic, then public."""
    tid = _item_id(item)
    pub = _obj(item.get("public_metrics"), "public_metrics")
    non = _obj(item.get("non_public_metrics"), "non_public_metrics")
    org = _obj(item.get("organic_metrics"), "organic_metrics")

    def c(block, key, name):
        return _count(block, key, name)

    return TweetMetrics(
        tweet_id=tid,
        created_at=parse_x_time(item.get("created_at")),
        impressions=_first(c(non, "impression_count", "non_public_metrics"), c(org, "impression_count", "organic_metrics"),
                           c(pub, "impression_count", "public_metrics")) or 0,
        likes=_first(c(pub, "like_count", "public_metrics"), c(org, "like_count", "organic_metrics")) or 0,
        retweets=_first(c(pub, "retweet_count", "public_metrics"), c(org, "retweet_count", "organic_metrics")) or 0,
        replies=_first(c(pub, "reply_count", "public_metrics"), c(org, "reply_count", "organic_metrics")) or 0,
        quotes=c(pub, "quote_count", "public_metrics") or 0,
        bookmarks=c(pub, "bookmark_count", "public_metrics") or 0,
        profile_visits=_first(c(non, "user_profile_clicks", "non_public_metrics"),
                              c(org, "user_profile_clicks", "organic_metrics")),
        link_clicks=_first(c(non, "url_link_clicks", "non_public_metrics"), c(org, "url_link_clicks", "organic_metrics")),
    )


def parse_analytics(item: Mapping[str, Any]) -> TweetAnalytics:
    tid = _item_id(item)
    return TweetAnalytics(tweet_id=tid, follows=_count(item, "follows", "analytics") or 0,
                          profile_visits=_first(_count(item, "user_profile_clicks", "analytics"),
                                                _count(item, "profile_visits", "analytics")),
                          link_clicks=_count(item, "url_link_clicks", "analytics"))


def item_errors(body: Mapping[str, Any]) -> dict[str, str]:
    """Per-item errors of a 200 response: {resource id: 'Title: detail'}."""
    out: dict[str, str] = {}
    errors = body.get("errors")
    if errors is None:
        return out
    if not isinstance(errors, list):
        raise _Malformed(f"errors is not a list: {errors!r:.80}")
    for err in errors:
        if not isinstance(err, dict):
            continue
        key = err.get("resource_id") or err.get("value")
        if key is None:
            continue
        title, detail = err.get("title") or "Error", err.get("detail") or err.get("message") or ""
        out[str(key)] = f"{title}: {detail}".rstrip(": ")
    return out


def _data_list(body: Mapping[str, Any]) -> list:
    data = body.get("data", [])
    if not isinstance(data, list):
        raise _Malformed(f"data is not a list: {data!r:.80}")
    return data


def _chunks(items: Sequence[str], size: int) -> Iterator[Sequence[str]]:
    for i in range(0, len(items), size):
        yield items[i:i + size]


def _check_ids(ids: Sequence[str], endpoint: str) -> list[str]:
    if isinstance(ids, str):
        raise ValueError(f"{endpoint}: ids must be a list of tweet ids, not one string {ids!r}")
    out: list[str] = []
    seen: set[str] = set()
    for i in ids:
        s = str(i)
        if not s.isdigit():
            raise ValueError(f"{endpoint}: tweet id is not numeric: {i!r} (X ids are digit strings such as '1893…')")
        if s not in seen:
            seen.add(s)
            out.append(s)
    return out


# ----------------------------------------------------------------------------- the client

class XClient:
    """A small, typed X API v2 client.

    Parameters
    ----------
    base_url : 'https://api.x.com', or a sandbox URL (``SandboxX.BASE_URL`` with its transport).
    access_token : OAuth 2.0 user-context bearer token.
    refresh_token, client_id, client_secret : enable one refresh-and-retry on 401.
    transport : an httpx transport (the in-process sandbox passes ``sandbox.transport()``).
    on_token_refresh : called with (new_access_token, new_refresh_token) after a refresh, to persist them.
    clock : used only when a 429 carries no reset time at all (then reset = now + 15 min).

    ``calls`` counts requests per endpoint ('GET /2/tweets'); ``rate_limits`` keeps the last
    x-rate-limit-* headers seen per endpoint.
    """

    def __init__(self, base_url: str, access_token: str, *, refresh_token: str | None = None,
                 client_id: str | None = None, client_secret: str | None = None,
                 transport: httpx.BaseTransport | None = None, timeout: float = 10.0,
                 on_token_refresh: Callable[[str, str | None], None] | None = None, clock=None):
        if not access_token:
            raise XAuthError("no X access token (set X_ACCESS_TOKEN to an OAuth 2.0 user-context token)")
        self.base_url = base_url.rstrip("/")
        self.access_token = access_token
        self.refresh_token = refresh_token
        self.client_id = client_id
        self.client_secret = client_secret
        self.on_token_refresh = on_token_refresh
        self.clock = clock
        self.calls: Counter[str] = Counter()
        self.rate_limits: dict[str, RateLimit] = {}
        self._http = httpx.Client(base_url=self.base_url, transport=transport, timeout=timeout,
                                  headers={"User-Agent": "xbot/0.1"})

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> "XClient":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- plumbing

    def _send(self, method: str, path: str, endpoint: str, **kwargs) -> httpx.Response:
        self.calls[endpoint] += 1
        try:
            return self._http.request(method, path, **kwargs)
        except httpx.TimeoutException as exc:
            raise XTimeout(f"{endpoint}: no response within the timeout ({type(exc).__name__}); "
                           "the request may or may not have been applied", endpoint=endpoint) from exc
        except httpx.TransportError as exc:
            raise XConnectionError(f"{endpoint}: connection failed ({type(exc).__name__}: {exc}); "
                                   "the request may or may not have been applied", endpoint=endpoint) from exc

    def _request(self, method: str, path: str, endpoint: str, *, params: dict | None = None,
                 json: Any = None, allow: tuple[int, ...] = ()) -> tuple[int, dict]:
        """Send with auth; refresh once on 401; map errors. Returns (status, JSON object body)."""
        resp = self._send(method, path, endpoint, params=params, json=json, headers=self._auth())
        if resp.status_code == 401 and self._can_refresh():
            self._refresh()
            resp = self._send(method, path, endpoint, params=params, json=json, headers=self._auth())
        self._note_rate_limit(endpoint, resp)
        status = resp.status_code
        if status in allow:
            return status, {}
        if status == 401:
            raise XAuthError(f"{endpoint}: 401 Unauthorized ({_detail(resp)}); "
                             + ("the token refresh did not help" if self._can_refresh() else
                                "set X_REFRESH_TOKEN and X_CLIENT_ID to refresh automatically, or renew X_ACCESS_TOKEN"),
                             endpoint=endpoint, status=401)
        if status == 429:
            info = self.rate_limits.get(endpoint)
            reset = info.reset_at if info and info.reset_at else self._fallback_reset(resp)
            raise XRateLimited(endpoint, reset, info.remaining if info else None)
        if status >= 500:
            raise XServerError(f"{endpoint}: server error {status} ({_detail(resp)})", endpoint=endpoint, status=status)
        if status >= 400:
            # e.g. 400 invalid request, 403 duplicate content / not permitted: not retryable as-is
            raise XApiError(f"{endpoint}: {status} {_detail(resp)}", endpoint=endpoint, status=status)
        try:
            body = resp.json()
        except ValueError:
            raise XApiError(f"{endpoint}: malformed response: body is not JSON ({resp.text[:60]!r})",
                            endpoint=endpoint, status=status) from None
        if not isinstance(body, dict):
            raise XApiError(f"{endpoint}: malformed response: body is not a JSON object ({body!r:.60})",
                            endpoint=endpoint, status=status)
        return status, body

    def _auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.access_token}"}

    def _can_refresh(self) -> bool:
        return bool(self.refresh_token and self.client_id)

    def _refresh(self) -> None:
        endpoint = "POST /2/oauth2/token"
        data = {"grant_type": "refresh_token", "refresh_token": self.refresh_token, "client_id": self.client_id}
        auth = (self.client_id, self.client_secret) if self.client_secret else None
        resp = self._send("POST", "/2/oauth2/token", endpoint, data=data, auth=auth)
        try:
            body = resp.json()
        except ValueError:
            body = None
        token = body.get("access_token") if isinstance(body, dict) else None
        if resp.status_code != 200 or not isinstance(token, str) or not token:
            raise XAuthError(f"{endpoint}: token refresh failed ({resp.status_code} {_detail(resp)}); "
                             "renew X_ACCESS_TOKEN / X_REFRESH_TOKEN", endpoint=endpoint, status=resp.status_code)
        self.access_token = token
        new_refresh = body.get("refresh_token") if isinstance(body.get("refresh_token"), str) else None
        if new_refresh:
            self.refresh_token = new_refresh
        log.info("X access token refreshed via %s", endpoint)
        if self.on_token_refresh:
            self.on_token_refresh(token, new_refresh)

    def _note_rate_limit(self, endpoint: str, resp: httpx.Response) -> None:
        remaining, reset = resp.headers.get("x-rate-limit-remaining"), resp.headers.get("x-rate-limit-reset")
        if remaining is None and reset is None:
            return
        try:
            rem = int(remaining) if remaining is not None else None
            at = datetime.fromtimestamp(int(reset), tz=timezone.utc) if reset is not None else None
        except (ValueError, OverflowError, OSError):
            return  # unreadable headers: treat as absent rather than fail a good response
        self.rate_limits[endpoint] = RateLimit(rem, at)

    def _fallback_reset(self, resp: httpx.Response) -> datetime:
        """A 429 without x-rate-limit-reset: Retry-After or a 15-minute window from the server's Date."""
        base = None
        with_date = resp.headers.get("date")
        if with_date:
            try:
                base = parsedate_to_datetime(with_date)
            except (TypeError, ValueError):
                base = None
        if base is None:
            if self.clock is None:
                from xbotlib.clock import SystemClock
                self.clock = SystemClock()
            base = self.clock.now()
        retry_after = resp.headers.get("retry-after", "")
        wait = timedelta(seconds=int(retry_after)) if retry_after.isdigit() else DEFAULT_RATE_WINDOW
        return base.astimezone(timezone.utc) + wait

    def _parse(self, endpoint: str, fn: Callable[[], Any]) -> Any:
        try:
            return fn()
        except _Malformed as exc:
            raise XApiError(f"{endpoint}: malformed response: {exc}", endpoint=endpoint) from None

    # -- endpoints

    def create_tweet(self, text: str, reply_to: str | None = None) -> str:
        """POST /2/tweets; returns the new tweet's id."""
        endpoint = "POST /2/tweets"
        payload: dict[str, Any] = {"text": text}
        if reply_to is not None:
            payload["reply"] = {"in_reply_to_tweet_id": str(reply_to)}
        _, body = self._request("POST", "/2/tweets", endpoint, json=payload)

        def read() -> str:
            data = _obj(body.get("data"), "data")
            tid = data.get("id")
            if not isinstance(tid, str) or not tid:
                raise _Malformed(f"no tweet id in data: {body!r:.80}")
            return tid
        return self._parse(endpoint, read)

    def lookup_tweets(self, ids: Sequence[str]) -> LookupResult:
        """GET /2/tweets in batches of 100 (250 ids -> 3 calls); per-item errors land in ``errors``."""
        endpoint = "GET /2/tweets"
        wanted = _check_ids(ids, endpoint)
        metrics: dict[str, TweetMetrics] = {}
        errors: dict[str, str] = {}
        for batch in _chunks(wanted, LOOKUP_BATCH):
            _, body = self._request("GET", "/2/tweets", endpoint,
                                    params={"ids": ",".join(batch), "tweet.fields": LOOKUP_FIELDS})

            def read() -> None:
                errors.update(item_errors(body))
                for item in _data_list(body):
                    try:
                        m = parse_tweet_metrics(item)
                    except _Malformed as exc:  # one bad item must not lose the rest of the batch
                        key = item.get("id") if isinstance(item, dict) and isinstance(item.get("id"), str) else None
                        if key is None:
                            raise
                        errors[key] = f"malformed item: {exc}"
                        continue
                    metrics[m.tweet_id] = m
            self._parse(endpoint, read)
        for tid in wanted:  # an id X silently left out is an error too, not a zero
            if tid not in metrics and tid not in errors:
                errors[tid] = "Missing: X returned neither data nor an error for this id"
        return LookupResult(metrics=metrics, errors=errors)

    def tweet_analytics(self, ids: Sequence[str], start: datetime, end: datetime) -> dict[str, TweetAnalytics] | None:
        """GET /2/tweets/analytics per 100 ids; None when the access level lacks it (403/404).

        Ids X reported errors for are simply absent from the result.
        """
        endpoint = "GET /2/tweets/analytics"
        wanted = _check_ids(ids, endpoint)
        out: dict[str, TweetAnalytics] = {}
        for batch in _chunks(wanted, LOOKUP_BATCH):
            status, body = self._request("GET", "/2/tweets/analytics", endpoint, allow=(403, 404), params={
                "ids": ",".join(batch), "start_time": x_time(start), "end_time": x_time(end), "granularity": "total"})
            if status in (403, 404):
                log.info("%s: not available to this account (%s); use follower-snapshot attribution", endpoint, status)
                return None

            def read() -> None:
                for item in _data_list(body):
                    a = parse_analytics(item)
                    out[a.tweet_id] = a
            self._parse(endpoint, read)
        return out

    def me(self) -> UserMetrics:
        """GET /2/users/me with public_metrics: the account's follower count."""
        endpoint = "GET /2/users/me"
        _, body = self._request("GET", "/2/users/me", endpoint, params={"user.fields": "public_metrics"})

        def read() -> UserMetrics:
            data = _obj(body.get("data"), "data")
            if not isinstance(data.get("id"), str):
                raise _Malformed(f"no user id in data: {body!r:.80}")
            pm = _obj(data.get("public_metrics"), "public_metrics")
            return UserMetrics(user_id=data["id"], username=str(data.get("username") or ""),
                               followers_count=_count(pm, "followers_count", "public_metrics") or 0,
                               following_count=_count(pm, "following_count", "public_metrics") or 0,
                               tweet_count=_count(pm, "tweet_count", "public_metrics") or 0)
        return self._parse(endpoint, read)

    def search_recent(self, query: str, max_results: int = 20) -> list[SearchTweet]:
        """GET /2/tweets/search/recent with authors' follower counts (X allows 10..100 per call)."""
        endpoint = "GET /2/tweets/search/recent"
        if not query.strip():
            raise ValueError(f"{endpoint}: query is empty (expected e.g. '(ai OR llm) -is:retweet lang:en')")
        _, body = self._request("GET", "/2/tweets/search/recent", endpoint, params={
            "query": query, "max_results": min(100, max(10, int(max_results))), "expansions": "author_id",
            "user.fields": "public_metrics", "tweet.fields": "created_at,public_metrics,author_id"})

        def read() -> list[SearchTweet]:
            includes = _obj(body.get("includes"), "includes")
            users = includes.get("users", [])
            if not isinstance(users, list):
                raise _Malformed("includes.users is not a list")
            followers = {}
            for u in users:
                if isinstance(u, dict) and isinstance(u.get("id"), str):
                    followers[u["id"]] = _count(_obj(u.get("public_metrics"), "public_metrics"),
                                                "followers_count", "user.public_metrics")
            out = []
            for item in _data_list(body):
                tid = _item_id(item)
                pm = _obj(item.get("public_metrics"), "public_metrics")
                author = item.get("author_id") if isinstance(item.get("author_id"), str) else None
                out.append(SearchTweet(tweet_id=tid, text=str(item.get("text") or ""), author_id=author,
                                       created_at=parse_x_time(item.get("created_at")),
                                       author_followers=followers.get(author) if author else None,
                                       likes=_count(pm, "like_count", "public_metrics") or 0,
                                       retweets=_count(pm, "retweet_count", "public_metrics") or 0,
                                       replies=_count(pm, "reply_count", "public_metrics") or 0,
                                       quotes=_count(pm, "quote_count", "public_metrics") or 0))
            return out[:max_results]
        return self._parse(endpoint, read)

    def own_recent_tweets(self, user_id: str, since: datetime, max_results: int = 100) -> list[OwnTweet]:
        """GET /2/users/:id/tweets since ``since``, newest first, following pages up to ``max_results``.

        Used to reconcile a post whose response was lost: did the tweet get created?
        """
        endpoint = "GET /2/users/:id/tweets"
        out: list[OwnTweet] = []
        token: str | None = None
        while len(out) < max_results:
            params: dict[str, Any] = {"start_time": x_time(since), "tweet.fields": "created_at",
                                      "max_results": min(100, max(5, max_results - len(out)))}
            if token:
                params["pagination_token"] = token
            _, body = self._request("GET", f"/2/users/{user_id}/tweets", endpoint, params=params)

            def read() -> str | None:
                data = _data_list(body)
                if not data and body.get("errors"):
                    raise XApiError(f"{endpoint}: {'; '.join(item_errors(body).values()) or body['errors']!r}",
                                    endpoint=endpoint)
                for item in data:
                    out.append(OwnTweet(tweet_id=_item_id(item), text=str(item.get("text") or ""),
                                        created_at=parse_x_time(item.get("created_at"))))
                meta = _obj(body.get("meta"), "meta")
                nxt = meta.get("next_token")
                return nxt if isinstance(nxt, str) and nxt else None
            token = self._parse(endpoint, read)
            if token is None:
                break
        return out[:max_results]


def _detail(resp: httpx.Response) -> str:
    """The human part of an X error body (title/detail), or the start of the text."""
    try:
        body = resp.json()
    except ValueError:
        return resp.text[:120] or resp.reason_phrase
    if isinstance(body, dict):
        parts = [body.get("title"), body.get("detail"), body.get("error_description")]
        errs = body.get("errors")
        if isinstance(errs, list) and errs and isinstance(errs[0], dict):
            parts.append(errs[0].get("message") or errs[0].get("detail"))
        text = ": ".join(str(p) for p in parts if p)
        if text:
            return text
    return str(body)[:120]
