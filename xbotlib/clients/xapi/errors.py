"""Typed errors of the X API client: each names the endpoint, so a caller can act on it."""
from __future__ import annotations

from datetime import datetime


# ----------------------------------------------------------------------------- errors

class XApiError(RuntimeError):
    """An X API call failed; the message names the endpoint and what was wrong. ``problem_type`` is the
    ``type`` of X's problem body (e.g. 'https://api.x.com/2/problems/invalid-request'), when it sent one."""

    def __init__(self, message: str, *, endpoint: str = "", status: int | None = None,
                 problem_type: str | None = None):
        super().__init__(message)
        self.endpoint = endpoint
        self.status = status
        self.problem_type = problem_type


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
