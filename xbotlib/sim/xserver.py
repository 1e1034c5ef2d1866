"""The sandbox X: an ASGI app that answers X API v2 routes with X's JSON shapes, backed by the
simulated audience of ``audience.py``.

    sandbox = SandboxX(clock=SimClock(), seed=7)
    client = XClient(SandboxX.BASE_URL, sandbox.token, transport=sandbox.transport())

Routes: POST /2/tweets, GET /2/tweets, GET /2/tweets/analytics, GET /2/users/me,
GET /2/users/{id}/tweets, GET /2/tweets/search/recent, POST /2/oauth2/token. Every route but the
token route needs ``Authorization: Bearer …`` (any non-empty token while ``accept_any_token`` is
true; only ``sandbox.token`` otherwise). Responses carry ``x-rate-limit-limit/remaining/reset``
(15-minute windows on the sandbox clock; enforced only with ``enforce_rate_limits=True``).

Faults on command, consumed in order per route: ``sandbox.faults.push("POST /2/tweets", "lost_response")``.
Kinds: rate_limit (429 + reset headers), server_error (503), timeout (request not processed; in
process the transport raises httpx.ReadTimeout, over a socket the server sleeps past the client's
timeout), malformed (a 200 whose body is not valid JSON), lost_response (the server acts — e.g. the
tweet IS created — then the response is lost: httpx.ReadError in process, a dropped connection
over a socket).

With ``state_path`` the world (posts, recent search candidates, tokens) is saved as JSON after every
change and reloaded when another process changed it, so separate CLI processes share one world.
"""
from __future__ import annotations

import asyncio
import contextlib
import fcntl
import hashlib
import json
import os
import re
import threading
from collections import Counter, deque
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Iterator
from urllib.parse import parse_qs

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from xbotlib.core import vocab

from xbotlib.sim.audience import AudienceModel, Candidate, ReplyTarget, SimTweet, reply_candidates, snowflake
from xbotlib.sim.scenario import Scenario, load_scenario
from xbotlib.sim.transport import NetworkFault, SyncASGITransport

ROUTES: tuple[str, ...] = ("POST /2/tweets", "GET /2/tweets", "GET /2/tweets/analytics", "GET /2/users/me",
                           "GET /2/users/:id/tweets", "GET /2/tweets/search/recent", "POST /2/oauth2/token")
FAULT_KINDS: tuple[str, ...] = ("rate_limit", "server_error", "timeout", "malformed", "lost_response")
TOKEN_ROUTE = "POST /2/oauth2/token"
# requests per 15-minute window per user, after X's documented user-context limits
RATE_LIMITS: dict[str, int] = {"POST /2/tweets": 100, "GET /2/tweets": 900, "GET /2/tweets/analytics": 300,
                               "GET /2/users/me": 75, "GET /2/users/:id/tweets": 900,
                               "GET /2/tweets/search/recent": 180}
WINDOW_S = 900
NON_PUBLIC_MAX_AGE = timedelta(days=30)
_TIMELINE_RE = re.compile(r"^/2/users/([^/]+)/tweets/?$")
_ID_RE = re.compile(r"^[0-9]{1,19}$")


def route_of(method: str, path: str) -> str | None:
    """The route name ('GET /2/users/:id/tweets') of a request, or None when the sandbox has no such route."""
    path = path.rstrip("/") or "/"
    if _TIMELINE_RE.match(path):
        path = "/2/users/:id/tweets"
    name = f"{method.upper()} {path}"
    return name if name in ROUTES else None


def x_time(at: datetime) -> str:
    """X's timestamp format: 2026-03-02T08:00:00.000Z."""
    return at.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.") + f"{at.microsecond // 1000:03d}Z"


def parse_x_time(raw: str) -> datetime:
    value = datetime.fromisoformat(raw.strip().replace("Z", "+00:00"))
    return value if value.tzinfo else value.replace(tzinfo=timezone.utc)


def problem(status: int, title: str, detail: str, type_: str = "about:blank", **extra: Any) -> JSONResponse:
    """An X-style problem body."""
    return JSONResponse({"title": title, "detail": detail, "type": type_, "status": status, **extra}, status_code=status)


def invalid_request(message: str, **parameters: Any) -> JSONResponse:
    return JSONResponse({"errors": [{"parameters": parameters, "message": message}], "title": "Invalid Request",
                         "detail": "One or more parameters to your request was invalid.",
                         "type": "https://api.twitter.com/2/problems/invalid-request"}, status_code=400)


def not_found(resource_type: str, value: str, parameter: str) -> dict:
    label = "tweet" if resource_type == "tweet" else "user"
    return {"value": value, "detail": f"Could not find {label} with {parameter}: [{value}].", "title": "Not Found Error",
            "resource_type": resource_type, "parameter": parameter, "resource_id": value,
            "type": "https://api.twitter.com/2/problems/resource-not-found"}


class FaultPlan:
    """Faults to inject, consumed first-in first-out per route ('*' matches any route)."""

    def __init__(self):
        self._queue: dict[str, deque[str]] = {}
        self._lock = threading.Lock()

    def push(self, route: str, kind: str, count: int = 1) -> None:
        if route != "*" and route not in ROUTES:
            raise ValueError(f"unknown sandbox route {route!r} (expected '*' or one of: {', '.join(ROUTES)})")
        if kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault kind {kind!r} (expected one of: {', '.join(FAULT_KINDS)})")
        if count < 1:
            raise ValueError(f"fault count must be at least 1, got {count}")
        with self._lock:
            self._queue.setdefault(route, deque()).extend([kind] * count)

    def take(self, route: str) -> str | None:
        with self._lock:
            for key in (route, "*"):
                q = self._queue.get(key)
                if q:
                    return q.popleft()
        return None

    def pending(self) -> dict[str, list[str]]:
        with self._lock:
            return {k: list(v) for k, v in self._queue.items() if v}

    def clear(self) -> None:
        with self._lock:
            self._queue.clear()


class SandboxX:
    """An X API v2 look-alike with a simulated audience. See the module docstring."""

    BASE_URL = "https://sandbox.x.local"

    def __init__(self, scenario: Scenario | str | Path | None = None, *, clock, seed: int = 0,
                 analytics_enabled: bool = True, state_path: str | Path | None = None,
                 handle: str = "xbot_sandbox", enforce_rate_limits: bool = False, timeout_sleep_s: float = 15.0):
        self.scenario = scenario if isinstance(scenario, Scenario) else load_scenario(scenario)
        self.clock = clock
        self.seed = int(seed)
        self.analytics_enabled = analytics_enabled
        self.handle = handle
        self.user_id = str(1_400_000_000_000_000_000 + int(hashlib.sha256(handle.encode()).hexdigest()[:14], 16))
        self.enforce_rate_limits = enforce_rate_limits
        self.timeout_sleep_s = timeout_sleep_s
        self.accept_any_token = True
        self.token = "sandbox-access-0"
        self.refresh_token = "sandbox-refresh-0"
        self._token_serial = 0
        self.faults = FaultPlan()
        self.requests: Counter[str] = Counter()
        self._usage: dict[str, tuple[int, int]] = {}
        self._candidates: dict[str, Candidate] = {}
        self._lock = threading.RLock()
        self.state_path = Path(state_path) if state_path else None
        self._state_mtime: int | None = None
        self.audience = AudienceModel(self.scenario, self.seed, epoch=clock.now())
        if self.state_path and self.state_path.exists():
            self._load()
        self.app = self._build_app()

    # ------------------------------------------------------------------ conveniences

    @property
    def tweets(self) -> list[SimTweet]:
        """Every post the account has made in this world, oldest first."""
        with self._lock:
            self._refresh()
            return self.audience.posts()

    def transport(self) -> SyncASGITransport:
        """An in-process httpx transport to this sandbox (for the sync XClient)."""
        return SyncASGITransport(self.app)

    def client(self, **kwargs):
        """An XClient wired to this sandbox in-process."""
        from xbotlib.clients.xapi import XClient
        return XClient(self.BASE_URL, self.token, transport=self.transport(), **kwargs)

    def socket_app(self):
        """The app to serve over a real socket: network faults become a slow or dropped connection."""
        app = self.app

        async def served(scope, receive, send):
            if scope["type"] == "http":
                scope = {**scope, "xbot_socket": True}
            await app(scope, receive, send)
        return served

    # ------------------------------------------------------------------ persistence

    def _state(self) -> dict:
        return {"format": 1, **self.audience.to_json(), "handle": self.handle,
                "candidates": [c.to_json() for c in self._candidates.values()],
                "tokens": {"access": self.token, "refresh": self.refresh_token, "serial": self._token_serial,
                           "accept_any": self.accept_any_token}}

    def _load(self) -> None:
        assert self.state_path is not None
        try:
            state = json.loads(self.state_path.read_text(encoding="utf-8"))
            self._state_mtime = self.state_path.stat().st_mtime_ns
            self.audience.load_json(state)
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise ValueError(f"cannot load sandbox state {str(self.state_path)!r}: {exc} "
                             "(delete the file to start a fresh world)") from exc
        self._candidates = {c["tweet_id"]: Candidate.from_json(c) for c in state.get("candidates", [])}
        tokens = state.get("tokens", {})
        self.token = tokens.get("access", self.token)
        self.refresh_token = tokens.get("refresh", self.refresh_token)
        self._token_serial = int(tokens.get("serial", 0))
        self.accept_any_token = bool(tokens.get("accept_any", True))

    def _refresh(self) -> None:
        """Reload the world if another process saved a newer one."""
        if self.state_path and self.state_path.exists() and self.state_path.stat().st_mtime_ns != self._state_mtime:
            self._load()

    @contextlib.contextmanager
    def _mutation(self) -> Iterator[None]:
        """Change the world under a lock (a file lock too with state_path), then save it."""
        with self._lock:
            if not self.state_path:
                yield
                return
            self.state_path.parent.mkdir(parents=True, exist_ok=True)
            with open(str(self.state_path) + ".lock", "a+") as lock:
                fcntl.flock(lock, fcntl.LOCK_EX)
                try:
                    self._refresh()
                    yield
                    tmp = self.state_path.with_suffix(self.state_path.suffix + f".tmp{os.getpid()}")
                    tmp.write_text(json.dumps(self._state()), encoding="utf-8")
                    os.replace(tmp, self.state_path)
                    self._state_mtime = self.state_path.stat().st_mtime_ns
                finally:
                    fcntl.flock(lock, fcntl.LOCK_UN)

    # ------------------------------------------------------------------ auth and rate limits

    def _authorized(self, header: str | None) -> bool:
        if not header or not header.startswith("Bearer "):
            return False
        token = header[len("Bearer "):].strip()
        return bool(token) and (self.accept_any_token or token == self.token)

    def _count(self, route: str) -> tuple[dict[str, str], bool]:
        """Count a request in its 15-minute window; returns the rate-limit headers and whether it is over."""
        limit = RATE_LIMITS.get(route)
        if limit is None:
            return {}, False
        now_s = int(self.clock.now().timestamp())
        window = now_s // WINDOW_S
        with self._lock:
            w, used = self._usage.get(route, (window, 0))
            used = used + 1 if w == window else 1
            self._usage[route] = (window, used)
        over = self.enforce_rate_limits and used > limit
        return {"x-rate-limit-limit": str(limit), "x-rate-limit-remaining": str(max(0, limit - used)),
                "x-rate-limit-reset": str((window + 1) * WINDOW_S)}, over

    # ------------------------------------------------------------------ the app

    def _build_app(self) -> Starlette:
        sandbox = self

        class Edge:
            """Auth, rate-limit headers and injected faults, in front of every route."""

            def __init__(self, app):
                self.app = app

            async def __call__(self, scope, receive, send):
                route = route_of(scope["method"], scope["path"]) if scope["type"] == "http" else None
                if route is None:
                    return await self.app(scope, receive, send)
                await sandbox._edge(self.app, route, scope, receive, send)

        from starlette.middleware import Middleware
        routes = [Route("/2/tweets", self._post_tweet, methods=["POST"]),
                  Route("/2/tweets", self._lookup, methods=["GET"]),
                  Route("/2/tweets/analytics", self._analytics, methods=["GET"]),
                  Route("/2/tweets/search/recent", self._search, methods=["GET"]),
                  Route("/2/users/me", self._me, methods=["GET"]),
                  Route("/2/users/{user_id}/tweets", self._timeline, methods=["GET"]),
                  Route("/2/oauth2/token", self._token, methods=["POST"])]
        return Starlette(routes=routes, middleware=[Middleware(Edge)])

    async def _edge(self, app, route: str, scope, receive, send) -> None:
        with self._lock:
            self.requests[route] += 1
        socket = bool(scope.get("xbot_socket"))
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        if route != TOKEN_ROUTE and not self._authorized(headers.get("authorization")):
            resp = problem(401, "Unauthorized", "Unauthorized")
            return await resp(scope, receive, send)
        fault = self.faults.take(route)
        limit_headers, over = self._count(route)

        async def send_with_limits(message):
            if message["type"] == "http.response.start":
                message = {**message, "headers": list(message.get("headers", []))
                           + [(k.encode(), v.encode()) for k, v in limit_headers.items()]}
            await send(message)

        if fault == "rate_limit" or over:
            limit_headers["x-rate-limit-remaining"] = "0"
            resp = problem(429, "Too Many Requests", "Too Many Requests")
            return await resp(scope, receive, send_with_limits)
        if fault == "server_error":
            return await problem(503, "Service Unavailable", "Service Unavailable")(scope, receive, send_with_limits)
        if fault == "malformed":
            resp = Response(b'{"data": [{"id": "1", "text": "trunc', media_type="application/json")
            return await resp(scope, receive, send_with_limits)
        if fault == "timeout":
            if socket:  # nothing is processed; the client gives up first
                await asyncio.sleep(self.timeout_sleep_s)
                return await problem(504, "Gateway Timeout", "Gateway Timeout")(scope, receive, send)
            raise NetworkFault("timeout", route)
        if fault == "lost_response":
            async def swallow(message):
                return None
            await app(scope, receive, swallow)  # the server acts in full …
            if socket:  # … and the connection drops mid-response
                await send({"type": "http.response.start", "status": 200,
                            "headers": [(b"content-type", b"application/json"), (b"content-length", b"4096")]})
                await send({"type": "http.response.body", "body": b'{"data": {', "more_body": True})
                return
            raise NetworkFault("lost_response", route)
        await app(scope, receive, send_with_limits)

    # ------------------------------------------------------------------ routes

    async def _post_tweet(self, request: Request) -> Response:
        raw = await request.body()
        try:
            body = json.loads(raw or b"null")
        except ValueError:
            return invalid_request("request body is not valid JSON")
        if not isinstance(body, dict):
            return invalid_request("request body must be a JSON object with a `text` field")
        text = body.get("text")
        if not isinstance(text, str) or not text.strip():
            return invalid_request("`text` must be a non-empty string", text=[text])
        if len(text) > 280:
            return invalid_request(f"`text` is {len(text)} characters; the limit is 280", text=[text[:40]])
        reply = body.get("reply")
        reply_to = None
        if reply is not None:
            reply_to = reply.get("in_reply_to_tweet_id") if isinstance(reply, dict) else None
            if not isinstance(reply_to, str) or not _ID_RE.match(reply_to):
                return invalid_request("`reply.in_reply_to_tweet_id` must be a tweet id string", reply=[reply])
        with self._mutation():
            now = self.clock.now()
            if any(t.text == text for t in self.audience.posts()):
                return problem(403, "Forbidden", "You are not allowed to create a Tweet with duplicate content.")
            target = None
            if reply_to is not None:
                target = self._reply_target(reply_to, now)
                if target is None:
                    return problem(403, "Forbidden", "You attempted to reply to a Tweet that is deleted or not visible to you.")
            # X's ids carry a machine number beside the sequence; ours is the sandbox seed, so sandboxes
            # of several accounts posting at the same simulated instant never mint the same id
            tweet_id = snowflake(now, ((self.seed % 1024) << 11) | (len(self.audience.tweets) & 0x7FF))
            self.audience.post(tweet_id, text, now, target)
        return JSONResponse({"data": {"id": tweet_id, "text": text, "edit_history_tweet_ids": [tweet_id]}},
                            status_code=201)

    def _reply_target(self, tweet_id: str, now: datetime) -> ReplyTarget | None:
        if tweet_id in self._candidates:
            return self._candidates[tweet_id].target()
        own = self.audience.tweets.get(tweet_id)
        if own is None:
            return None
        seen = self.audience.metrics_at(tweet_id, now)
        hours = max(1 / 60, (now - own.posted_at).total_seconds() / 3600)
        engagements = seen.likes + seen.retweets + seen.replies + seen.quotes + seen.bookmarks
        return ReplyTarget(tweet_id, self.audience.followers_at(now), engagements / hours, own.posted_at)

    def _ids_param(self, request: Request) -> list[str] | JSONResponse:
        raw = request.query_params.get("ids", "")
        ids = [i for i in raw.split(",") if i] if raw else []
        if not ids:
            return invalid_request("The `ids` query parameter can not be empty", ids=[])
        if len(ids) > 100:
            return invalid_request(f"The number of values in the `ids` query parameter list [{len(ids)}] "
                                   "is not between 1 and 100", ids=[raw[:80]])
        bad = [i for i in ids if not _ID_RE.match(i)]
        if bad:
            return invalid_request(f"The `ids` query parameter value [{bad[0]}] is not valid", ids=[bad[0]])
        return ids

    async def _lookup(self, request: Request) -> Response:
        ids = self._ids_param(request)
        if isinstance(ids, JSONResponse):
            return ids
        fields = set(filter(None, request.query_params.get("tweet.fields", "").split(",")))
        private = sorted(fields & {"non_public_metrics", "organic_metrics"})
        data, errors = [], []
        with self._lock:
            self._refresh()
            now = self.clock.now()
            for tid in ids:
                own = self.audience.tweets.get(tid)
                cand = self._candidates.get(tid)
                if own is None and cand is None:
                    errors.append(not_found("tweet", tid, "ids"))
                    continue
                if private and (own is None or now - own.posted_at > NON_PUBLIC_MAX_AGE):
                    errors.append({"value": tid, "resource_id": tid, "resource_type": "tweet", "parameter": private[0],
                                   "title": "Field Authorization Error",
                                   "detail": f"Sorry, you are not authorized to access '{private[0]}' on the Tweet "
                                             f"with ids: [{tid}] (only your own posts of the last 30 days).",
                                   "type": "https://api.twitter.com/2/problems/not-authorized-for-field"})
                    continue
                data.append(self._own_item(own, now, fields) if own else self._candidate_item(cand, now, fields))
        body: dict[str, Any] = {}
        if data:
            body["data"] = data
        if errors:
            body["errors"] = errors
        return JSONResponse(body)

    def _own_item(self, tweet: SimTweet, now: datetime, fields: set[str]) -> dict:
        item: dict[str, Any] = {"id": tweet.tweet_id, "text": tweet.text, "edit_history_tweet_ids": [tweet.tweet_id]}
        m = self.audience.metrics_at(tweet.tweet_id, now)
        if "created_at" in fields:
            item["created_at"] = x_time(tweet.posted_at)
        if "author_id" in fields:
            item["author_id"] = self.user_id
        if "conversation_id" in fields:
            item["conversation_id"] = tweet.reply_to or tweet.tweet_id
        if "public_metrics" in fields:
            item["public_metrics"] = {"retweet_count": m.retweets, "reply_count": m.replies, "like_count": m.likes,
                                      "quote_count": m.quotes, "bookmark_count": m.bookmarks,
                                      "impression_count": m.impressions}
        if "non_public_metrics" in fields:
            item["non_public_metrics"] = {"impression_count": m.impressions, "url_link_clicks": m.link_clicks,
                                          "user_profile_clicks": m.profile_visits}
        if "organic_metrics" in fields:
            item["organic_metrics"] = {"impression_count": m.impressions, "like_count": m.likes,
                                       "reply_count": m.replies, "retweet_count": m.retweets,
                                       "url_link_clicks": m.link_clicks, "user_profile_clicks": m.profile_visits}
        return item

    def _candidate_item(self, cand: Candidate, now: datetime, fields: set[str]) -> dict:
        item: dict[str, Any] = {"id": cand.tweet_id, "text": cand.text, "edit_history_tweet_ids": [cand.tweet_id]}
        if "created_at" in fields:
            item["created_at"] = x_time(cand.created_at)
        if "author_id" in fields:
            item["author_id"] = cand.author_id
        if "public_metrics" in fields:
            item["public_metrics"] = cand.public_metrics(now)
        return item

    async def _analytics(self, request: Request) -> Response:
        if not self.analytics_enabled:
            return problem(403, "Client Forbidden", "Your access level does not include the post analytics endpoint "
                           "(the sandbox runs with analytics off).", "https://api.twitter.com/2/problems/client-forbidden",
                           reason="client-not-enrolled", required_enrollment="Appropriate Level of API Access")
        ids = self._ids_param(request)
        if isinstance(ids, JSONResponse):
            return ids
        try:
            start = parse_x_time(request.query_params["start_time"])
            end = parse_x_time(request.query_params["end_time"])
        except (KeyError, ValueError):
            return invalid_request("`start_time` and `end_time` are required ISO 8601 times (YYYY-MM-DDTHH:mm:ssZ)",
                                   start_time=[request.query_params.get("start_time")],
                                   end_time=[request.query_params.get("end_time")])
        if end < start:
            return invalid_request("`end_time` must not be before `start_time`")
        data, errors = [], []
        with self._lock:
            self._refresh()
            now = self.clock.now()
            end = min(end, now)
            start = min(start, end)
            for tid in ids:
                if tid not in self.audience.tweets:
                    errors.append(not_found("tweet", tid, "ids"))
                    continue
                a, b = self.audience.metrics_at(tid, start), self.audience.metrics_at(tid, end)
                data.append({"id": tid, "follows": b.follows - a.follows,
                             "user_profile_clicks": b.profile_visits - a.profile_visits,
                             "url_link_clicks": b.link_clicks - a.link_clicks,
                             "impression_count": b.impressions - a.impressions})
        body: dict[str, Any] = {"meta": {"start_time": x_time(start), "end_time": x_time(end), "granularity": "total"}}
        if data:
            body["data"] = data
        if errors:
            body["errors"] = errors
        return JSONResponse(body)

    def _user(self, fields: set[str], now: datetime) -> dict:
        user: dict[str, Any] = {"id": self.user_id, "name": "xbot sandbox", "username": self.handle}
        if "public_metrics" in fields:
            user["public_metrics"] = {"followers_count": self.audience.followers_at(now),
                                      "following_count": self.scenario.account.following_count,
                                      "tweet_count": self.scenario.account.initial_tweet_count + len(self.audience.tweets),
                                      "listed_count": 0, "like_count": 0}
        if "created_at" in fields:
            user["created_at"] = x_time(self.audience.epoch)
        return user

    async def _me(self, request: Request) -> Response:
        fields = set(filter(None, request.query_params.get("user.fields", "").split(",")))
        with self._lock:
            self._refresh()
            return JSONResponse({"data": self._user(fields, self.clock.now())})

    async def _timeline(self, request: Request) -> Response:
        user_id = request.path_params["user_id"]
        if user_id != self.user_id:
            return JSONResponse({"errors": [not_found("user", user_id, "id")]})
        q = request.query_params
        try:
            max_results = int(q.get("max_results", "10"))
            start = parse_x_time(q["start_time"]) if "start_time" in q else None
            end = parse_x_time(q["end_time"]) if "end_time" in q else None
            offset = int(q.get("pagination_token", "0"))
        except ValueError:
            return invalid_request("max_results, start_time, end_time or pagination_token has a bad value",
                                   max_results=[q.get("max_results")], start_time=[q.get("start_time")])
        if not 5 <= max_results <= 100:
            return invalid_request(f"The `max_results` query parameter value [{max_results}] is not between 5 and 100",
                                   max_results=[str(max_results)])
        fields = set(filter(None, q.get("tweet.fields", "").split(",")))
        with self._lock:
            self._refresh()
            now = self.clock.now()
            posts = [t for t in reversed(self.audience.posts())
                     if (start is None or t.posted_at >= start) and (end is None or t.posted_at <= end)]
            page = posts[offset:offset + max_results]
            data = [self._own_item(t, now, fields) for t in page]
        meta: dict[str, Any] = {"result_count": len(data)}
        if data:
            meta.update(newest_id=data[0]["id"], oldest_id=data[-1]["id"])
        if offset + max_results < len(posts):
            meta["next_token"] = str(offset + max_results)
        return JSONResponse({**({"data": data} if data else {}), "meta": meta})

    async def _search(self, request: Request) -> Response:
        q = request.query_params
        query = q.get("query", "")
        if not 1 <= len(query) <= 512:
            return invalid_request("The `query` parameter must be 1 to 512 characters", query=[query[:40]])
        try:
            max_results = int(q.get("max_results", "10"))
        except ValueError:
            max_results = -1
        if not 10 <= max_results <= 100:
            return invalid_request(f"The `max_results` query parameter value [{q.get('max_results')}] is not between "
                                   "10 and 100", max_results=[q.get("max_results")])
        low = query.lower()
        topics = [t for t in vocab.TOPICS if any(re.search(r"\b" + re.escape(k), low) for k in vocab.TOPIC_KEYWORDS[t])]
        tweet_fields = set(filter(None, q.get("tweet.fields", "").split(",")))
        user_fields = set(filter(None, q.get("user.fields", "").split(",")))
        with self._mutation():
            now = self.clock.now()
            window_start = now.replace(minute=0, second=0, microsecond=0)
            found = reply_candidates(self.scenario, self.seed, window_start, topics or vocab.TOPICS)
            found.sort(key=lambda c: c.created_at, reverse=True)
            found = found[:max_results]
            for c in found:
                self._candidates[c.tweet_id] = c
            # keep only candidates young enough to be worth replying to (bounds the state file)
            cutoff = now - timedelta(hours=48)
            self._candidates = {k: c for k, c in self._candidates.items() if c.created_at >= cutoff}
        data = [self._candidate_item(c, now, tweet_fields) for c in found]
        body: dict[str, Any] = {"meta": {"result_count": len(data)}}
        if data:
            body["data"] = data
            body["meta"].update(newest_id=data[0]["id"], oldest_id=data[-1]["id"])
        if "author_id" in q.get("expansions", "").split(","):
            users = {}
            for c in found:
                user: dict[str, Any] = {"id": c.author_id, "name": c.author_username.replace("_", " "),
                                        "username": c.author_username}
                if "public_metrics" in user_fields:
                    user["public_metrics"] = {"followers_count": c.author_followers, "following_count": 300,
                                              "tweet_count": 5000, "listed_count": 10}
                users[c.author_id] = user
            body["includes"] = {"users": list(users.values())}
        return JSONResponse(body)

    async def _token(self, request: Request) -> Response:
        # parsed by hand: Starlette's request.form() needs python-multipart, which xbot does not depend on
        form = {k: v[0] for k, v in parse_qs((await request.body()).decode("utf-8", "replace")).items()}
        client_id = form.get("client_id")
        auth = request.headers.get("authorization", "")
        if not client_id and auth.startswith("Basic "):
            import base64
            with contextlib.suppress(ValueError):
                client_id = base64.b64decode(auth[6:]).decode().split(":", 1)[0]
        if form.get("grant_type") != "refresh_token" or not client_id:
            return JSONResponse({"error": "invalid_request",
                                 "error_description": "grant_type=refresh_token and a client_id are required"},
                                status_code=400)
        with self._mutation():
            if form.get("refresh_token") != self.refresh_token:
                return JSONResponse({"error": "invalid_request",
                                     "error_description": "Value passed for the token was invalid."}, status_code=400)
            self._token_serial += 1
            self.token = f"sandbox-access-{self._token_serial}"
            self.refresh_token = f"sandbox-refresh-{self._token_serial}"
            access, refresh = self.token, self.refresh_token
        return JSONResponse({"token_type": "bearer", "expires_in": 7200, "access_token": access,
                             "scope": "tweet.read tweet.write users.read offline.access", "refresh_token": refresh})
