"""The pure rules of the budgeted OpenAI client (``xbotlib.clients.llm``): prices and cost
estimates, the backoff, the retry allowance and the budget day. No SDK, no database.

Prices (USD per 1M tokens, input / output; OpenAI list prices, check https://openai.com/api/pricing
and edit ``PRICES_PER_MTOK`` when they change). A dated model name uses its longest listed prefix
(``gpt-4o-mini-2024-07-18`` -> ``gpt-4o-mini``). An unknown model is priced at ``DEFAULT_PRICE``,
above every listed model, so an unlisted model can never overspend the budget by being cheap on paper.
Prompt tokens are estimated at one per 3 characters (English averages ~4), again erring high.
"""
from __future__ import annotations

import math
import threading
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from typing import Mapping

import numpy as np

PRICES_PER_MTOK: dict[str, tuple[float, float]] = {
    "gpt-4o-mini": (0.15, 0.60),
    "gpt-4o": (2.50, 10.00),
    "gpt-4.1-nano": (0.10, 0.40),
    "gpt-4.1-mini": (0.40, 1.60),
    "gpt-4.1": (2.00, 8.00),
    "gpt-5-nano": (0.05, 0.40),
    "gpt-5-mini": (0.25, 2.00),
    "gpt-5": (1.25, 10.00),
    "o4-mini": (1.10, 4.40),
    "text-embedding-3-small": (0.02, 0.0),
    "text-embedding-3-large": (0.13, 0.0),
    "text-embedding-ada-002": (0.10, 0.0),
}
DEFAULT_PRICE: tuple[float, float] = (15.00, 60.00)
CHARS_PER_TOKEN_ESTIMATE = 3.0
MESSAGE_OVERHEAD_TOKENS = 4

MAX_RETRIES = 2
BACKOFF_BASE_S = 0.5
BACKOFF_MAX_S = 2.0
BACKOFF_JITTER = 0.2
RETRY_AFTER_CAP_S = 4.0
TICK_WINDOW = timedelta(minutes=1)  # a shared allowance older than this (clock time) belongs to a past tick


# ----------------------------------------------------------------------------- pure pieces

def price_for(model: str) -> tuple[float, float]:
    """(input, output) USD per 1M tokens for ``model``: exact, else longest listed prefix, else DEFAULT_PRICE."""
    if model in PRICES_PER_MTOK:
        return PRICES_PER_MTOK[model]
    matches = [m for m in PRICES_PER_MTOK if model.startswith(m + "-")]
    return PRICES_PER_MTOK[max(matches, key=len)] if matches else DEFAULT_PRICE


def estimate_tokens(text: str) -> int:
    return math.ceil(len(text) / CHARS_PER_TOKEN_ESTIMATE)


def usage_cost_usd(model: str, prompt_tokens: int, completion_tokens: int = 0) -> float:
    """What OpenAI bills for this usage, in USD."""
    p_in, p_out = price_for(model)
    return (prompt_tokens * p_in + completion_tokens * p_out) / 1e6


def estimate_chat_usd(model: str, messages: list[dict[str, str]], max_tokens: int) -> float:
    """An upper-leaning cost estimate for a chat call: estimated prompt tokens + the full ``max_tokens``."""
    prompt = sum(estimate_tokens(m["content"]) + MESSAGE_OVERHEAD_TOKENS for m in messages) + 3
    return usage_cost_usd(model, prompt, max_tokens)


def estimate_embedding_usd(model: str, texts: list[str]) -> float:
    return usage_cost_usd(model, sum(estimate_tokens(t) + 1 for t in texts))


def retry_after_s(headers: Mapping[str, str] | None) -> float | None:
    """Seconds the server asks us to wait (``retry-after-ms`` first, then ``retry-after``), or None."""
    if not headers:
        return None
    for name, scale in (("retry-after-ms", 1000.0), ("retry-after", 1.0)):
        raw = headers.get(name)
        if raw is None:
            continue
        try:
            value = float(raw) / scale
        except ValueError:
            continue  # an HTTP-date: we do not read the wall clock, fall back to our own backoff
        if math.isfinite(value) and value >= 0:
            return value
    return None


def backoff_wait(attempt: int, headers: Mapping[str, str] | None, rng: np.random.Generator) -> float | None:
    """Seconds to wait before retry number ``attempt`` (1-based), or None when the server asks for
    longer than ``RETRY_AFTER_CAP_S`` (then this tick gives up instead of blocking)."""
    asked = retry_after_s(headers)
    if asked is not None:
        return asked if asked <= RETRY_AFTER_CAP_S else None
    base = min(BACKOFF_BASE_S * 2 ** (attempt - 1), BACKOFF_MAX_S)
    return base * (1.0 + rng.uniform(-BACKOFF_JITTER, BACKOFF_JITTER))


def budget_day_of(now: datetime) -> date:
    return now.astimezone(timezone.utc).date()


class RetryAllowance:
    """Retries left for one job tick (or one call); thread-safe. ``gave_up`` ends the tick's LLM use."""

    def __init__(self, retries: int = MAX_RETRIES, started_at: datetime | None = None):
        self.retries_left = retries
        self.gave_up = False
        self.started_at = started_at
        self._lock = threading.Lock()

    def take(self) -> bool:
        with self._lock:
            if self.retries_left <= 0:
                return False
            self.retries_left -= 1
            return True


@dataclass(frozen=True)
class Completion:
    """A settled chat completion."""
    text: str
    prompt_tokens: int
    completion_tokens: int
    cost_usd: float
    model: str
    call_id: str = ""
