"""``XClient``: the calls xbot makes to X API v2 (sync httpx), against api.x.com or the sandbox.

Size: over 400 lines because every endpoint's call and the reading of its answer sit beside the shared plumbing
(auth, refresh on 401, rate-limit headers, error mapping) they all go through: one client, read top to bottom."""
from __future__ import annotations

import logging
from collections import Counter
from datetime import datetime, timedelta, timezone
from email.utils import parsedate_to_datetime
from typing import Any, Callable, Sequence

import httpx

from xbotlib.clients.xapi.errors import XApiError, XAuthError, XConnectionError, XRateLimited, XServerError, XTimeout
from xbotlib.clients.xapi.responses import (LookupResult, Malformed, OwnTweet, RateLimit, SearchTweet, TweetAnalytics,
                                            TweetMetrics, UserMetrics, as_object, check_ids, chunks, data_list,
                                            item_errors, item_id, parse_analytics, parse_tweet_metrics, parse_x_time,
                                            read_count, retweet_count, x_time)
from xbotlib.clients.xauth import TOKEN_ENDPOINT, OAuthError, TokenSource, request_token
from xbotlib.clock import Clock

log = logging.getLogger("xbot.xapi")

LOOKUP_BATCH = 100
# X's production spec (the one the official SDK xdk is generated from) names the post fields parameter
# `post.fields`; X's older documentation examples say `tweet.fields`. We send the spec's name (the
# contract tests check every request against xdk); switching is this one constant.
FIELDS_PARAM = "post.fields"
LOOKUP_FIELDS = "created_at,public_metrics,non_public_metrics,organic_metrics"
# what collect uses of post analytics; timestamped_metrics too, so counts X gives only per bucket are read
ANALYTICS_FIELDS = "follows,user_profile_clicks,url_clicks,impressions,quote_tweets,timestamped_metrics"
DEFAULT_RATE_WINDOW = timedelta(minutes=15)


# ----------------------------------------------------------------------------- the client

class _NoCookies(httpx.Cookies):
    """A cookie store that keeps nothing (``_TokenHttp``'s)."""

    def extract_cookies(self, response: httpx.Response) -> None:
        pass


class _TokenHttp(httpx.Client):
    """An httpx client that keeps no cookies. X's v2 API authorises each request by its token alone; the cookies its
    answers may set (guest_id, ...) are not part of the API and are not sent back with the next call. Not reading
    them also skips httpx's cookie parsing (two urllib objects and a cookiejar pass per answer), ~25 % of the
    client's CPU for a small call (``GET /2/users/me``, each account every 15 minutes)."""

    _jar = _NoCookies()

    @property
    def cookies(self) -> httpx.Cookies:
        return self._jar

    @cookies.setter
    def cookies(self, value: Any) -> None:
        if value:
            raise ValueError("XClient sends no cookies: X's API is authorised by the access token alone")


class XClient:
    """A small, typed X API v2 client.

    Parameters
    ----------
    base_url : 'https://api.x.com', or a sandbox URL (``SandboxX.BASE_URL`` with its transport).
    access_token : OAuth 2.0 user-context bearer token (None with a ``token_source``).
    token_source : where tokens come from when they are stored and shared (``xbotlib.clients.xauth.TokenSource``,
        e.g. the encrypted per-account store wired by ``xbotlib.jobs.context``): asked before every request
        (it refreshes ahead of expiry) and after a 401 (it refreshes under a lock, or returns the pair
        another process stored). Without one, the client refreshes by itself and keeps the pair in memory.
    refresh_token, client_id, client_secret : enable one refresh-and-retry on 401.
    transport : an httpx transport (the in-process sandbox passes ``sandbox.transport()``).
    on_token_refresh : called with (new_access_token, new_refresh_token) after a refresh this client made
        itself (no ``token_source``), to persist them.
    clock : required; read only when a 429 carries no reset time and no Date header (then reset = now
        + Retry-After, or now + 15 min), so a simulated campaign defers on its own clock, not the wall's.

    ``calls`` counts requests per endpoint ('GET /2/tweets'); ``rate_limits`` keeps the last
    x-rate-limit-* headers seen per endpoint.
    """

    def __init__(self, base_url: str, access_token: str | None, *, clock: Clock, refresh_token: str | None = None,
                 client_id: str | None = None, client_secret: str | None = None,
                 transport: httpx.BaseTransport | None = None, timeout: float = 10.0,
                 on_token_refresh: Callable[[str, str | None], None] | None = None,
                 token_source: TokenSource | None = None):
        if not access_token and token_source is None:
            raise XAuthError("no X access token: sign in with `xbot auth login` (stored, refreshed tokens), "
                             "or set X_ACCESS_TOKEN to an OAuth 2.0 user-context token")
        self.base_url = base_url.rstrip("/")
        self.token_source = token_source
        self.access_token = access_token or ""
        self.refresh_token = refresh_token
        self.client_id = client_id
        self.client_secret = client_secret
        self.on_token_refresh = on_token_refresh
        self.clock = clock
        self.calls: Counter[str] = Counter()
        self.rate_limits: dict[str, RateLimit] = {}
        self._http = _TokenHttp(base_url=self.base_url, transport=transport, timeout=timeout,
                                  headers={"User-Agent": "xbot/0.1"})
        self._fixed: dict[tuple, httpx.Request] = {}   # _fixed_request's, by (method, path, params)

    @classmethod
    def in_process(cls, sandbox: Any, *, clock: Clock | None = None, **kwargs: Any) -> "XClient":
        """An XClient wired to an in-process sandbox (an ``xbotlib.sim.SandboxX``, passed in: the clients do
        not import the simulator), on the sandbox's clock unless ``clock`` says otherwise."""
        return cls(sandbox.BASE_URL, sandbox.token, clock=clock or sandbox.clock, transport=sandbox.transport(),
                   **kwargs)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> "XClient":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- plumbing

    def _send(self, method: str, path: str | httpx.URL, endpoint: str, *, fixed: bool = False,
              **kwargs) -> httpx.Response:
        self.calls[endpoint] += 1
        try:
            if fixed:   # the same request every time: built once (``_fixed_request``), sent again as it is
                return self._http.send(self._fixed_request(method, path, kwargs["params"] or {}, kwargs["headers"]))
            return self._http.request(method, path, **kwargs)
        except httpx.TimeoutException as exc:
            raise XTimeout(f"{endpoint}: no response within the timeout ({type(exc).__name__}); "
                           "the request may or may not have been applied", endpoint=endpoint) from exc
        except httpx.TransportError as exc:
            raise XConnectionError(f"{endpoint}: connection failed ({type(exc).__name__}: {exc}); "
                                   "the request may or may not have been applied", endpoint=endpoint) from exc

    def _fixed_request(self, method: str, path: str, params: dict, headers: dict[str, str]) -> httpx.Request:
        """The request whose query never changes (``GET /2/users/me``), built once per access token and sent again
        as it is: httpx parses the URL three times a request (base, path, query) and merges the client's headers,
        cookies and timeout into a new request, ~40% of the client's CPU for a small call (~0.45 -> 0.27 ms when only
        the URL was kept; ~25 us less again, warm, with the whole request). A new token replaces the kept request."""
        key = (method, path, tuple(params.items()))
        kept = self._fixed.get(key)
        if kept is None or kept.headers.get("Authorization") != headers["Authorization"]:
            kept = self._fixed[key] = self._http.build_request(method, path, params=params, headers=headers)
        return kept

    def _request(self, method: str, path: str, endpoint: str, *, params: dict | None = None,
                 json: Any = None, allow: tuple[int, ...] = (), fixed: bool = False) -> tuple[int, dict]:
        """Send with auth; refresh once on 401; map errors. Returns (status, JSON object body).
        ``fixed``: the query is always the same (``params`` constant, no body): built once (``_fixed_request``)."""
        fixed = fixed and json is None
        resp = self._send(method, path, endpoint, params=params, json=json, headers=self._auth(), fixed=fixed)
        if resp.status_code == 401 and self._can_refresh():
            self._refresh()
            resp = self._send(method, path, endpoint, params=params, json=json, headers=self._auth(), fixed=fixed)
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
            raise XServerError(f"{endpoint}: server error {status} ({_detail(resp)})", endpoint=endpoint, status=status,
                               problem_type=_problem_type(resp))
        if status >= 400:
            # e.g. 400 invalid request, 403 duplicate content / not permitted: not retryable as-is
            raise XApiError(f"{endpoint}: {status} {_detail(resp)}", endpoint=endpoint, status=status,
                            problem_type=_problem_type(resp))
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
        if self.token_source is not None:
            try:
                self.access_token = self.token_source.access_token()
            except OAuthError as exc:  # the refresh ahead of expiry failed
                raise _auth_error(exc) from None
        return {"Authorization": f"Bearer {self.access_token}"}

    def _can_refresh(self) -> bool:
        return self.token_source is not None or bool(self.refresh_token and self.client_id)

    def _refresh(self) -> None:
        """After a 401: a newer token from the token source, or one refresh of our own (single-use refresh
        tokens: the new pair replaces the old one here and is reported to ``on_token_refresh``)."""
        try:
            if self.token_source is not None:
                self.access_token = self.token_source.refreshed(self.access_token)
                return
            self.calls[TOKEN_ENDPOINT] += 1
            grant = request_token(self._http, {"grant_type": "refresh_token", "refresh_token": self.refresh_token or ""},
                                  client_id=self.client_id or "", client_secret=self.client_secret, clock=self.clock)
        except OAuthError as exc:
            raise _auth_error(exc) from None
        self.access_token = grant.access_token
        if grant.refresh_token:
            self.refresh_token = grant.refresh_token
        log.info("X access token refreshed via %s (kept in memory only: sign in with `xbot auth login` to store "
                 "and share refreshed tokens)", TOKEN_ENDPOINT)
        if self.on_token_refresh:
            self.on_token_refresh(grant.access_token, grant.refresh_token)

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
            base = self.clock.now()
        retry_after = resp.headers.get("retry-after", "")
        wait = timedelta(seconds=int(retry_after)) if retry_after.isdigit() else DEFAULT_RATE_WINDOW
        return base.astimezone(timezone.utc) + wait

    def _parse(self, endpoint: str, fn: Callable[[], Any]) -> Any:
        try:
            return fn()
        except Malformed as exc:
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
            data = as_object(body.get("data"), "data")
            tid = data.get("id")
            if not isinstance(tid, str) or not tid:
                raise Malformed(f"no tweet id in data: {body!r:.80}")
            return tid
        return self._parse(endpoint, read)

    def lookup_tweets(self, ids: Sequence[str]) -> LookupResult:
        """GET /2/tweets in batches of 100 (250 ids -> 3 calls); per-item errors land in ``errors``."""
        endpoint = "GET /2/tweets"
        wanted = check_ids(ids, endpoint)
        metrics: dict[str, TweetMetrics] = {}
        errors: dict[str, str] = {}
        for batch in chunks(wanted, LOOKUP_BATCH):
            _, body = self._request("GET", "/2/tweets", endpoint,
                                    params={"ids": ",".join(batch), FIELDS_PARAM: LOOKUP_FIELDS})

            def read() -> None:
                errors.update(item_errors(body))
                for item in data_list(body):
                    try:
                        m = parse_tweet_metrics(item)
                    except Malformed as exc:  # one bad item must not lose the rest of the batch
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
        wanted = check_ids(ids, endpoint)
        out: dict[str, TweetAnalytics] = {}
        for batch in chunks(wanted, LOOKUP_BATCH):
            status, body = self._request("GET", "/2/tweets/analytics", endpoint, allow=(403, 404), params={
                "ids": ",".join(batch), "start_time": x_time(start), "end_time": x_time(end), "granularity": "total",
                "analytics.fields": ANALYTICS_FIELDS})
            if status in (403, 404):
                log.info("%s: not available to this account (%s); use follower-snapshot attribution", endpoint, status)
                return None

            def read() -> None:
                for item in data_list(body):
                    a = parse_analytics(item)
                    out[a.tweet_id] = a
            self._parse(endpoint, read)
        return out

    def me(self) -> UserMetrics:
        """GET /2/users/me with public_metrics: the account's follower count."""
        endpoint = "GET /2/users/me"
        _, body = self._request("GET", "/2/users/me", endpoint, params={"user.fields": "public_metrics"}, fixed=True)

        def read() -> UserMetrics:
            data = as_object(body.get("data"), "data")
            if not isinstance(data.get("id"), str):
                raise Malformed(f"no user id in data: {body!r:.80}")
            pm = as_object(data.get("public_metrics"), "public_metrics")
            return UserMetrics(user_id=data["id"], username=str(data.get("username") or ""),
                               followers_count=read_count(pm, "followers_count", "public_metrics") or 0,
                               following_count=read_count(pm, "following_count", "public_metrics") or 0,
                               tweet_count=_first_count(read_count(pm, "post_count", "public_metrics"),
                                                        read_count(pm, "tweet_count", "public_metrics")) or 0)
        return self._parse(endpoint, read)

    def search_recent(self, query: str, max_results: int = 20) -> list[SearchTweet]:
        """GET /2/tweets/search/recent with authors' follower counts (X allows 10..100 per call)."""
        endpoint = "GET /2/tweets/search/recent"
        if not query.strip():
            raise ValueError(f"{endpoint}: query is empty (expected e.g. '(ai OR llm) -is:retweet lang:en')")
        _, body = self._request("GET", "/2/tweets/search/recent", endpoint, params={
            "query": query, "max_results": min(100, max(10, int(max_results))), "expansions": "author_id",
            "user.fields": "public_metrics", FIELDS_PARAM: "created_at,public_metrics"})  # author_id: by expansion

        def read() -> list[SearchTweet]:
            includes = as_object(body.get("includes"), "includes")
            users = includes.get("users", [])
            if not isinstance(users, list):
                raise Malformed("includes.users is not a list")
            followers = {}
            for u in users:
                if isinstance(u, dict) and isinstance(u.get("id"), str):
                    followers[u["id"]] = read_count(as_object(u.get("public_metrics"), "public_metrics"),
                                                "followers_count", "user.public_metrics")
            out = []
            for item in data_list(body):
                tid = item_id(item)
                pm = as_object(item.get("public_metrics"), "public_metrics")
                author = item.get("author_id") if isinstance(item.get("author_id"), str) else None
                out.append(SearchTweet(tweet_id=tid, text=str(item.get("text") or ""), author_id=author,
                                       created_at=parse_x_time(item.get("created_at")),
                                       author_followers=followers.get(author) if author else None,
                                       likes=read_count(pm, "like_count", "public_metrics") or 0,
                                       retweets=retweet_count(pm, "public_metrics") or 0,
                                       replies=read_count(pm, "reply_count", "public_metrics") or 0,
                                       quotes=read_count(pm, "quote_count", "public_metrics") or 0))
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
            params: dict[str, Any] = {"start_time": x_time(since), FIELDS_PARAM: "created_at",
                                      "max_results": min(100, max(5, max_results - len(out)))}
            if token:
                params["pagination_token"] = token
            _, body = self._request("GET", f"/2/users/{user_id}/tweets", endpoint, params=params)

            def read() -> str | None:
                data = data_list(body)
                if not data and body.get("errors"):
                    raise XApiError(f"{endpoint}: {'; '.join(item_errors(body).values()) or body['errors']!r}",
                                    endpoint=endpoint)
                for item in data:
                    out.append(OwnTweet(tweet_id=item_id(item), text=str(item.get("text") or ""),
                                        created_at=parse_x_time(item.get("created_at"))))
                meta = as_object(body.get("meta"), "meta")
                nxt = meta.get("next_token")
                return nxt if isinstance(nxt, str) and nxt else None
            token = self._parse(endpoint, read)
            if token is None:
                break
        return out[:max_results]


def _problem_type(resp: httpx.Response) -> str | None:
    """The ``type`` of an X problem body (RFC 7807 as X uses it), or None."""
    try:
        body = resp.json()
    except ValueError:
        return None
    kind = body.get("type") if isinstance(body, dict) else None
    return kind if isinstance(kind, str) else None


def _auth_error(exc: OAuthError) -> XApiError:
    """A failed token refresh as the client's typed error: the network failing is a connection error
    (try again later); anything X refused is an auth error (the message says whether to sign in again)."""
    if exc.error == "network":
        return XConnectionError(str(exc), endpoint=TOKEN_ENDPOINT)
    return XAuthError(f"token refresh failed: {exc}", endpoint=TOKEN_ENDPOINT, status=exc.status)


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


def _first_count(*values: int | None) -> int | None:
    return next((v for v in values if v is not None), None)
