"""The sandbox X as seen from outside: its routes, rate limits, X's timestamp and error formats, and the
faults it can inject (``FaultPlan``). Used by the app (``xserver``) and its route handlers (``xroutes``).

The dialect is X's published specification (the production OpenAPI document "X API v2" that the
official SDK ``xdk`` is generated from): ``post.fields``, ``repost_count``, ``post_count``,
``edit_history_post_ids``, problems typed ``https://api.x.com/2/problems/…``. Each route refuses a query
parameter X does not define for it, as X does (400 invalid-request naming the parameter), so a client
drifting from the contract fails in every sandbox test, not only in the contract test.
"""
from __future__ import annotations

import re
import threading
from collections import deque
from datetime import datetime, timedelta, timezone
from typing import Any

from starlette.responses import JSONResponse

ROUTES: tuple[str, ...] = ("POST /2/tweets", "GET /2/tweets", "GET /2/tweets/analytics", "GET /2/users/me",
                           "GET /2/users/:id/tweets", "GET /2/tweets/search/recent", "POST /2/oauth2/token")
# "none" answers normally: it lines a fault up behind that many good answers (the 2nd call fails)
FAULT_KINDS: tuple[str, ...] = ("rate_limit", "server_error", "timeout", "malformed", "lost_response", "none")
TOKEN_ROUTE = "POST /2/oauth2/token"
# requests per 15-minute window per user, after X's documented user-context limits
RATE_LIMITS: dict[str, int] = {"POST /2/tweets": 100, "GET /2/tweets": 900, "GET /2/tweets/analytics": 300,
                               "GET /2/users/me": 75, "GET /2/users/:id/tweets": 900,
                               "GET /2/tweets/search/recent": 180}
WINDOW_S = 900
NON_PUBLIC_MAX_AGE = timedelta(days=30)
_TIMELINE_RE = re.compile(r"^/2/users/([^/]+)/tweets/?$")
TWEET_ID_RE = re.compile(r"^[0-9]{1,19}$")
PROBLEMS = "https://api.x.com/2/problems/"
_EXPANDABLE = ("post.fields", "expansions", "user.fields", "media.fields", "poll.fields", "place.fields")
# the query parameters X's specification defines per route (names only)
QUERY_PARAMS: dict[str, frozenset[str]] = {
    "GET /2/tweets": frozenset({"ids", *_EXPANDABLE}),
    "GET /2/tweets/analytics": frozenset({"ids", "start_time", "end_time", "granularity", "analytics.fields"}),
    "GET /2/users/me": frozenset({"user.fields", "expansions", "post.fields"}),
    "GET /2/users/:id/tweets": frozenset({"max_results", "pagination_token", "start_time", "end_time", "since_id",
                                          "until_id", "exclude", *_EXPANDABLE}),
    "GET /2/tweets/search/recent": frozenset({"query", "max_results", "next_token", "pagination_token", "start_time",
                                              "end_time", "since_id", "until_id", "sort_order", *_EXPANDABLE}),
    "POST /2/tweets": frozenset(),
}


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
    """X's invalid-request problem; the first keyword names the parameter and its bad value."""
    body: dict[str, Any] = {"title": "Invalid Request", "detail": message, "type": PROBLEMS + "invalid-request",
                            "status": 400}
    for name, value in parameters.items():
        value = value[0] if isinstance(value, list) and value else value
        body["parameter"] = name
        if value is not None and not isinstance(value, list):
            body["value"] = str(value)
        break
    return JSONResponse(body, status_code=400)


def unknown_parameters(route: str, names: Any) -> JSONResponse | None:
    """400 for the first query parameter X does not define on ``route`` (as X answers), else None."""
    allowed = QUERY_PARAMS.get(route)
    if allowed is None:
        return None
    for name in names:
        if name not in allowed:
            return invalid_request(f"The query parameter [{name}] is not one of [{','.join(sorted(allowed))}]",
                                   **{name: None})
    return None


def not_found(resource_type: str, value: str, parameter: str) -> dict:
    label = "tweet" if resource_type == "tweet" else "user"
    return {"value": value, "detail": f"Could not find {label} with {parameter}: [{value}].", "title": "Not Found Error",
            "resource_type": resource_type, "parameter": parameter, "resource_id": value,
            "type": PROBLEMS + "resource-not-found"}


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
