"""The sandbox X as seen from outside: its routes, rate limits, X's timestamp and error formats, and the
faults it can inject (``FaultPlan``). Used by the app (``xserver``) and its route handlers (``xroutes``).
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
FAULT_KINDS: tuple[str, ...] = ("rate_limit", "server_error", "timeout", "malformed", "lost_response")
TOKEN_ROUTE = "POST /2/oauth2/token"
# requests per 15-minute window per user, after X's documented user-context limits
RATE_LIMITS: dict[str, int] = {"POST /2/tweets": 100, "GET /2/tweets": 900, "GET /2/tweets/analytics": 300,
                               "GET /2/users/me": 75, "GET /2/users/:id/tweets": 900,
                               "GET /2/tweets/search/recent": 180}
WINDOW_S = 900
NON_PUBLIC_MAX_AGE = timedelta(days=30)
_TIMELINE_RE = re.compile(r"^/2/users/([^/]+)/tweets/?$")
TWEET_ID_RE = re.compile(r"^[0-9]{1,19}$")


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
