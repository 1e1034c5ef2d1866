"""The budgeted OpenAI client: every call is reserved, settled or refunded in ``llm_ledger``.

This is the only module that imports ``openai`` (a test enforces it). The SDK's own retries are off
(``max_retries=0``) so the rules below govern:

Budget
    The budget day is the UTC date of the injected clock. Before a call its cost is *estimated*
    (``estimate_chat_usd``: prompt length and ``max_tokens`` at the model's price) and *reserved*
    in a transaction holding ``pg_advisory_xact_lock`` for (account, day); the reservation is
    refused when spent + estimate would exceed ``OPENAI_DAILY_BUDGET_USD``. After a 200 the row is
    *settled* at the real cost from ``usage`` — clamped so the day's total stays within
    [0, budget]; the row keeps the real token counts, so an overrun stays visible. On any error the
    row is *refunded* (cost 0: a refund never exceeds its reservation). A process that dies between
    reserve and settle leaves its reservation counted for the day: conservative on purpose.
    ``spent_today`` = reserved (status reserved) + cost (status settled).
Rate limits (429 ``rate_limit_exceeded``)
    Retried with exponential backoff and jitter (0.5 s, 1 s, 2 s, each x U(0.8, 1.2)); a
    ``retry-after-ms`` / ``retry-after`` header up to ``RETRY_AFTER_CAP_S`` replaces the computed wait,
    a longer one means "not this tick" and we give up at once. Retries come out of a
    ``RetryAllowance`` of ``MAX_RETRIES`` (2): by default one per call; ``LLMClient.new_tick()`` (which
    ``make_generator`` calls; a job should call it at the start of each tick) makes one allowance
    shared by every call of the tick, and once a tick has given up its later calls return None
    without a request. A shared allowance older than ``TICK_WINDOW`` of clock time is renewed on its
    own, so a client kept across ticks never stays given-up. Giving up never raises.
Quota (429 ``insufficient_quota``)
    Never retried. A ledger row with status ``quota_exhausted`` opens the *circuit* for the rest of
    the budget day, for every process; calls return None until the next UTC day.
Server errors, timeouts, connection errors
    Refunded; one retry at most (it also comes out of the allowance). Other 4xx (bad request,
    auth): refunded, logged at ERROR, not retried.

Prices (USD per 1M tokens, input / output; OpenAI list prices, check https://openai.com/api/pricing
and edit ``PRICES_PER_MTOK`` when they change). A dated model name uses its longest listed prefix
(``gpt-4o-mini-2024-07-18`` -> ``gpt-4o-mini``). An unknown model is priced at ``DEFAULT_PRICE``,
above every listed model, so an unlisted model can never overspend the budget by being cheap on paper.
Prompt tokens are estimated at one per 3 characters (English averages ~4), again erring high.
"""
from __future__ import annotations

import logging
import math
import re
import threading
import time
import uuid
import zlib
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from typing import Any, Callable, Mapping

import numpy as np
import openai

from xbotlib.clock import Clock
from xbotlib.config import ConfigError, Settings
from xbotlib.logs import tagged
from xbotlib.clients.generation import MAX_POST_CHARS, Candidate, ContentGenerator, TemplateGenerator
from xbotlib.core.vocab import HASHTAG_RE, HOOK_PATTERNS, TOPICS, detect_hook

__all__ = ["Candidate", "Completion", "ContentGenerator", "LLMClient", "LLMContentGenerator", "RetryAllowance",
           "TemplateGenerator", "backoff_wait", "estimate_chat_usd", "estimate_embedding_usd", "make_generator",
           "price_for", "spent_today", "usage_cost_usd"]

log = logging.getLogger("xbot.llm")

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
# models that take max_completion_tokens and no temperature (reasoning models)
_REASONING_PREFIXES = ("o1", "o3", "o4", "gpt-5")


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


# ----------------------------------------------------------------------------- ledger (SQL)

def spent_today(conn, account_id: str, day: date) -> float:
    """Σ reserved_usd of open reservations + Σ cost_usd of settled calls, for (account, day)."""
    row = conn.execute(
        "SELECT COALESCE(SUM(CASE WHEN status = 'reserved' THEN reserved_usd "
        "                         WHEN status = 'settled' THEN cost_usd ELSE 0 END), 0) AS spent "
        "FROM llm_ledger WHERE account_id = %s AND budget_day = %s", (account_id, day)).fetchone()
    return float(row["spent"])


def _lock_day(conn, account_id: str, day: date) -> None:
    # one lock per (account, day): reservations and settlements of that day are serialised
    conn.execute("SELECT pg_advisory_xact_lock(hashtext(%s), %s)", (f"xbot.llm_ledger:{account_id}", day.toordinal()))


def _circuit_row(conn, account_id: str, day: date) -> dict | None:
    return conn.execute("SELECT call_id, error FROM llm_ledger WHERE account_id = %s AND budget_day = %s "
                        "AND status = 'quota_exhausted' LIMIT 1", (account_id, day)).fetchone()


# ----------------------------------------------------------------------------- the client

class _GiveUp(Exception):
    """Internal: this call ends without a result (already logged and refunded)."""

    def __init__(self, outcome: str):
        super().__init__(outcome)
        self.outcome = outcome


class LLMClient:
    """Budgeted chat completions and embeddings for one account.

    ``complete`` / ``embed`` return None (never raise) when the budget refuses, the circuit is open,
    or the API gives up for this tick; ``last_outcome`` says which: ``ok``, ``refused``,
    ``circuit_open``, ``rate_limited``, ``quota_exhausted``, ``server_error``, ``timeout``,
    ``client_error``, ``tick_gave_up``.
    """

    def __init__(self, settings: Settings, db, clock: Clock, account_id: str, *, sleep: Callable[[float], Any] = time.sleep,
                 client: Any = None, rng: np.random.Generator | None = None,
                 retry_allowance: RetryAllowance | None = None):
        self.settings = settings
        self.db = db
        self.clock = clock
        self.account_id = account_id
        self.sleep = sleep
        # backoff jitter only; never feeds a metric
        self.rng = rng if rng is not None else np.random.default_rng(zlib.crc32(account_id.encode()))
        self.retry_allowance = retry_allowance
        self.last_outcome = "none"
        self._backoffs: dict[date, int] = {}
        if client is None:
            if not settings.openai_api_key:
                raise ConfigError("OPENAI_API_KEY is not set, so there is no OpenAI client "
                                  "(set it, or use make_generator(), which falls back to the template generator)")
            client = openai.OpenAI(api_key=settings.openai_api_key, base_url=settings.openai_base_url,
                                   max_retries=0, timeout=settings.openai_timeout_s)
        self.client = client

    # -- public
    def new_tick(self, retries: int = MAX_RETRIES) -> RetryAllowance:
        """Start a job tick: calls until the next ``new_tick`` (or for ``TICK_WINDOW`` of clock time, so a
        client kept across ticks cannot stay given-up) share ``retries`` retries."""
        self.retry_allowance = RetryAllowance(retries, started_at=self.clock.now())
        return self.retry_allowance

    def complete(self, system: str, user: str, *, purpose: str, max_tokens: int = 200,
                 temperature: float = 0.9, seed: int | None = None) -> Completion | None:
        """One chat completion, or None (see the class docstring)."""
        model = self.settings.openai_model
        messages = [{"role": "system", "content": system}, {"role": "user", "content": user}]
        params: dict[str, Any] = {"model": model, "messages": messages}
        if model.startswith(_REASONING_PREFIXES):
            params["max_completion_tokens"] = max_tokens
        else:
            params["max_tokens"] = max_tokens
            params["temperature"] = temperature
        if seed is not None:
            params["seed"] = seed

        def send():
            return self.client.chat.completions.create(**params)

        def usage(resp) -> tuple[int, int]:
            u = resp.usage
            return (u.prompt_tokens, u.completion_tokens) if u is not None else (-1, -1)

        result = self._call(model, purpose, estimate_chat_usd(model, messages, max_tokens), send, usage)
        if result is None:
            return None
        resp, cost, call_id = result
        text = (resp.choices[0].message.content or "") if resp.choices else ""
        pt, ct = usage(resp)
        return Completion(text=text, prompt_tokens=max(pt, 0), completion_tokens=max(ct, 0), cost_usd=cost,
                          model=resp.model or model, call_id=call_id)

    def embed(self, texts: list[str], purpose: str = "novelty") -> list[list[float]] | None:
        """Embeddings of ``texts`` in order, or None (see the class docstring)."""
        if not texts:
            return []
        model = self.settings.openai_embedding_model

        def send():
            return self.client.embeddings.create(model=model, input=list(texts), encoding_format="float")

        def usage(resp) -> tuple[int, int]:
            return (resp.usage.prompt_tokens, 0) if resp.usage is not None else (-1, -1)

        result = self._call(model, purpose, estimate_embedding_usd(model, texts), send, usage)
        if result is None:
            return None
        resp = result[0]
        return [list(map(float, d.embedding)) for d in sorted(resp.data, key=lambda d: d.index)]

    def budget_day(self) -> date:
        return budget_day_of(self.clock.now())

    def circuit_open(self) -> bool:
        """True when an insufficient_quota answer today closed OpenAI for the rest of the budget day."""
        with self.db.connection() as conn:
            return _circuit_row(conn, self.account_id, self.budget_day()) is not None

    def budget_status(self) -> dict[str, Any]:
        """Today's ledger: spent, reserved, settled, remaining, budget, circuit, calls, backoffs_today (this process)."""
        day = self.budget_day()
        with self.db.connection() as conn:
            rows = conn.execute("SELECT status, COUNT(*) AS n, COALESCE(SUM(reserved_usd), 0) AS reserved, "
                                "COALESCE(SUM(cost_usd), 0) AS cost FROM llm_ledger "
                                "WHERE account_id = %s AND budget_day = %s GROUP BY status",
                                (self.account_id, day)).fetchall()
            spent = spent_today(conn, self.account_id, day)
        by = {r["status"]: r for r in rows}
        budget = self.settings.openai_daily_budget_usd
        circuit = "quota_exhausted" in by
        return {
            "day": day.isoformat(), "budget": budget, "spent": spent,
            "reserved": float(by["reserved"]["reserved"]) if "reserved" in by else 0.0,
            "settled": float(by["settled"]["cost"]) if "settled" in by else 0.0,
            "remaining": max(0.0, budget - spent),
            "calls": {s: int(r["n"]) for s, r in by.items()},
            "circuit": circuit,
            "circuit_until": (day + timedelta(days=1)).isoformat() if circuit else None,
            "backoffs_today": self._backoffs.get(day, 0),
        }

    # -- the call lifecycle
    def _call(self, model: str, purpose: str, estimate: float, send: Callable[[], Any],
              usage: Callable[[Any], tuple[int, int]]) -> tuple[Any, float, str] | None:
        shared = self.retry_allowance
        if shared is not None and shared.started_at is not None and self.clock.now() - shared.started_at >= TICK_WINDOW:
            shared = self.new_tick(MAX_RETRIES)
        allowance = shared or RetryAllowance(MAX_RETRIES)
        day = self.budget_day()
        if allowance.gave_up:
            self.last_outcome = "tick_gave_up"
            tagged(log, "OPENAI_BUDGET", "skipped", reason="gave_up_this_tick", purpose=purpose)
            return None
        call_id = str(uuid.uuid4())
        outcome = self._reserve(call_id, day, model, purpose, estimate)
        if outcome != "reserved":
            self.last_outcome = outcome
            return None
        try:
            resp = self._send_with_retries(call_id, day, send, allowance)
        except _GiveUp as stop:
            self.last_outcome = stop.outcome
            if stop.outcome == "rate_limited":
                allowance.gave_up = True
            return None
        except BaseException as exc:
            # anything unexpected (a bug, KeyboardInterrupt): never leave the reservation behind
            self._refund(call_id, day, f"{type(exc).__name__}: {exc}", reason="unexpected_error")
            raise
        pt, ct = usage(resp)
        cost = self._settle(call_id, day, model, pt, ct)
        self.last_outcome = "ok"
        return resp, cost, call_id

    def _send_with_retries(self, call_id: str, day: date, send: Callable[[], Any], allowance: RetryAllowance):
        attempt = 0
        server_retry_used = False
        while True:
            try:
                return send()
            except openai.RateLimitError as exc:
                if _is_quota(exc):
                    self._open_circuit(call_id, day, exc)
                    raise _GiveUp("quota_exhausted") from None
                wait = backoff_wait(attempt + 1, exc.response.headers, self.rng)
                if wait is None:
                    self._refund(call_id, day, _describe(exc), reason="retry_after_too_long")
                    tagged(log, "OPENAI_BUDGET", "gave_up", call_id=call_id, reason="rate_limit_exceeded",
                           retry_after_s=retry_after_s(exc.response.headers), cap_s=RETRY_AFTER_CAP_S)
                    raise _GiveUp("rate_limited") from None
                if not allowance.take():
                    self._refund(call_id, day, _describe(exc), reason="rate_limit_exceeded")
                    tagged(log, "OPENAI_BUDGET", "gave_up", call_id=call_id, reason="rate_limit_exceeded",
                           retries=attempt, next="next tick")
                    raise _GiveUp("rate_limited") from None
                attempt += 1
                self._backoff(attempt, wait, "rate_limit_exceeded", call_id, day)
            except (openai.APIStatusError, openai.APIConnectionError) as exc:
                status = getattr(exc, "status_code", None)
                transient = isinstance(exc, openai.APIConnectionError) or (status is not None and status >= 500)
                reason = ("timeout" if isinstance(exc, openai.APITimeoutError) else
                          "connection_error" if isinstance(exc, openai.APIConnectionError) else f"http_{status}")
                if not transient:
                    self._refund(call_id, day, _describe(exc), reason=reason)
                    log.error("OpenAI refused the request (%s): %s — check OPENAI_MODEL, OPENAI_API_KEY and "
                              "OPENAI_BASE_URL", reason, _describe(exc))
                    raise _GiveUp("client_error") from None
                if not server_retry_used and allowance.take():
                    server_retry_used = True
                    attempt += 1
                    headers = exc.response.headers if isinstance(exc, openai.APIStatusError) else None
                    wait = backoff_wait(attempt, headers, self.rng)
                    self._backoff(attempt, BACKOFF_BASE_S if wait is None else wait, reason, call_id, day)
                    continue
                self._refund(call_id, day, _describe(exc), reason=reason)
                raise _GiveUp("timeout" if reason == "timeout" else "server_error") from None

    def _backoff(self, attempt: int, wait: float, reason: str, call_id: str, day: date) -> None:
        self._backoffs[day] = self._backoffs.get(day, 0) + 1
        tagged(log, "OPENAI_BACKOFF", attempt=attempt, wait_ms=round(wait * 1000), reason=reason, call_id=call_id)
        self.sleep(wait)

    # -- ledger transitions (each its own transaction under the (account, day) lock)
    def _reserve(self, call_id: str, day: date, model: str, purpose: str, estimate: float) -> str:
        budget = self.settings.openai_daily_budget_usd
        with self.db.connection() as conn:
            _lock_day(conn, self.account_id, day)
            circuit = _circuit_row(conn, self.account_id, day)
            if circuit is not None:
                outcome = "circuit_open"
            else:
                spent = spent_today(conn, self.account_id, day)
                if spent + estimate > budget:
                    outcome = "refused"
                else:
                    conn.execute("INSERT INTO llm_ledger (call_id, account_id, budget_day, model, purpose, status, "
                                 "reserved_usd, created_at) VALUES (%s, %s, %s, %s, %s, 'reserved', %s, %s)",
                                 (call_id, self.account_id, day, model, purpose, estimate, self.clock.now()))
                    outcome = "reserved"
        if outcome == "circuit_open":
            tagged(log, "OPENAI_BUDGET", "circuit open", reason="insufficient_quota",
                   until=(day + timedelta(days=1)).isoformat(), purpose=purpose)
        elif outcome == "refused":
            tagged(log, "OPENAI_BUDGET", "refused", level=logging.WARNING, call_id=call_id, usd=estimate,
                   spent=spent, budget=budget, purpose=purpose)
        else:
            tagged(log, "OPENAI_BUDGET", "reserve", call_id=call_id, usd=estimate, spent=spent + estimate,
                   budget=budget, purpose=purpose)
        return outcome

    def _settle(self, call_id: str, day: date, model: str, prompt_tokens: int, completion_tokens: int) -> float:
        budget = self.settings.openai_daily_budget_usd
        with self.db.connection() as conn:
            _lock_day(conn, self.account_id, day)
            row = conn.execute("SELECT reserved_usd FROM llm_ledger WHERE call_id = %s", (call_id,)).fetchone()
            reserved = float(row["reserved_usd"])
            if prompt_tokens < 0:  # a server that reports no usage: charge the reservation
                actual = reserved
            else:
                actual = usage_cost_usd(model, prompt_tokens, completion_tokens)
            others = spent_today(conn, self.account_id, day) - reserved
            cost = min(actual, max(0.0, budget - others))
            conn.execute("UPDATE llm_ledger SET status = 'settled', cost_usd = %s, prompt_tokens = %s, "
                         "completion_tokens = %s, settled_at = %s WHERE call_id = %s",
                         (cost, prompt_tokens if prompt_tokens >= 0 else None,
                          completion_tokens if completion_tokens >= 0 else None, self.clock.now(), call_id))
        extra = {"actual_usd": actual, "clamped": "true"} if cost < actual else {}
        tagged(log, "OPENAI_BUDGET", "settle", call_id=call_id, usd=cost, spent=others + cost, budget=budget,
               reserved=reserved, **extra)
        return cost

    def _refund(self, call_id: str, day: date, error: str, *, reason: str) -> None:
        with self.db.connection() as conn:
            _lock_day(conn, self.account_id, day)
            row = conn.execute("UPDATE llm_ledger SET status = 'refunded', cost_usd = 0, error = %s, settled_at = %s "
                               "WHERE call_id = %s AND status = 'reserved' RETURNING reserved_usd",
                               (error[:500], self.clock.now(), call_id)).fetchone()
            spent = spent_today(conn, self.account_id, day)
        tagged(log, "OPENAI_BUDGET", "refund", call_id=call_id, usd=float(row["reserved_usd"]) if row else 0.0,
               spent=spent, budget=self.settings.openai_daily_budget_usd, reason=reason)

    def _open_circuit(self, call_id: str, day: date, exc: Exception) -> None:
        # the call's own row becomes the persistent circuit marker (cost 0: nothing was billed)
        with self.db.connection() as conn:
            _lock_day(conn, self.account_id, day)
            row = conn.execute("UPDATE llm_ledger SET status = 'quota_exhausted', cost_usd = 0, error = %s, "
                               "settled_at = %s WHERE call_id = %s RETURNING reserved_usd",
                               (_describe(exc)[:500], self.clock.now(), call_id)).fetchone()
            spent = spent_today(conn, self.account_id, day)
        until = (day + timedelta(days=1)).isoformat()
        tagged(log, "OPENAI_BUDGET", "refund", call_id=call_id, usd=float(row["reserved_usd"]) if row else 0.0,
               spent=spent,
               budget=self.settings.openai_daily_budget_usd, reason="insufficient_quota")
        tagged(log, "OPENAI_BUDGET", "circuit open", level=logging.ERROR, reason="insufficient_quota", until=until,
               call_id=call_id)


def _is_quota(exc: openai.APIStatusError) -> bool:
    return "insufficient_quota" in (exc.code, getattr(exc, "type", None))


def _describe(exc: Exception) -> str:
    status = getattr(exc, "status_code", None)
    code = getattr(exc, "code", None)
    return " ".join(p for p in (f"http_{status}" if status else type(exc).__name__, code or "", str(exc)) if p)


# ----------------------------------------------------------------------------- content generation

SYSTEM_PROMPT = ("You write posts for an X (Twitter) account about {topics}. Voice: clear, specific, friendly, "
                 "no hype, no invented statistics. Rules for every post: at most 270 characters, no hashtags, "
                 "no links, no emojis, do not end by asking the reader a question.")

HOOK_INSTRUCTIONS: dict[str, str] = {
    "did_you_know": 'Open each post with "Did you know" or "Fun fact:" and share one surprising, true fact.',
    "new_study": 'Open each post with "New study:" or "Researchers" and report one real, well-known finding.',
    "question": ("Open each post with a short question (starting with What, Why or How and ending in '?'), "
                 "then answer it in a statement."),
    "contrarian": 'Open each post with "Unpopular opinion:" or "Hot take:" and argue against a common belief.',
    "cta": 'Open each post with "Try this:" or "Save this:" and give one concrete thing to do.',
    "plain": ("Write a plain, direct statement. Do not open with a question, 'Did you know', 'New study', "
              "'Hot take' or 'Try this'."),
}
ANGLE_INSTRUCTIONS: dict[str, str] = {
    "contrarian": "contrarian. Take a well-argued position against the common view.",
}


def build_prompt(hook: str, topic: str, n: int, *, angle: str | None = None, reply_to_text: str | None = None) -> str:
    """The user prompt for ``n`` posts; the ``Key: value`` lines are also what the fake server reads."""
    lines = [f"Hook pattern: {hook}", f"Topic: {topic}", f"Count: {n}", f"Instruction: {HOOK_INSTRUCTIONS[hook]}"]
    if angle:
        lines.append(f"Angle: {ANGLE_INSTRUCTIONS.get(angle, angle)}")
    if reply_to_text:
        flat = " ".join(reply_to_text.split())[:500]
        lines.append(f"Reply to: {flat}")
        lines.append("Write replies to that post that add something specific; do not repeat it.")
    lines.append(f"Return exactly {n} posts, one per line, without numbering or quotes.")
    return "\n".join(lines)


MIN_POST_CHARS = 20
_BULLET = re.compile(r'^\s*(?:\d+[.)]\s*|[-*•]\s+)?["“]?(.*?)["”]?\s*$')


def parse_posts(text: str, hook: str, topic: str, n: int, source: str = "llm") -> list[Candidate]:
    """Posts from the model's answer: one per line, numbering and quotes stripped; drops preambles
    ('Here are 3 posts:'), fragments under ``MIN_POST_CHARS``, lines over 280 characters, lines with
    hashtags and lines whose opening is not ``hook``."""
    out: list[Candidate] = []
    seen: set[str] = set()
    for line in text.splitlines():
        post = _BULLET.match(line).group(1).strip()
        if len(post) < MIN_POST_CHARS or post.endswith(":") or post in seen:
            continue
        if len(post) > MAX_POST_CHARS or HASHTAG_RE.search(post):
            continue
        if detect_hook(post) != hook:
            continue  # the bandit arm must be what the text really is
        seen.add(post)
        out.append(Candidate(text=post, generation_source=source, hook_pattern=hook, topic=topic))
    return out[:n]


class LLMContentGenerator:
    """Posts from the budgeted LLM, marked ``generation_source='llm'``.

    When the LLM gives up (budget, circuit, rate limit) ``candidates`` returns [] and
    ``last_outcome`` says why; ``fallback`` is there for the plan job to call explicitly (its posts
    say 'template'), never mixed in silently.
    """

    def __init__(self, llm: LLMClient, fallback: TemplateGenerator | None = None):
        self.llm = llm
        self.fallback = fallback
        self.last_outcome = "none"

    def candidates(self, hook: str, topic: str, n: int, *, angle: str | None = None,
                   reply_to_text: str | None = None, rng: np.random.Generator | None = None) -> list[Candidate]:
        if hook not in HOOK_PATTERNS:
            raise ValueError(f"unknown hook pattern: {hook!r} (expected one of {', '.join(HOOK_PATTERNS)})")
        if topic not in TOPICS:
            raise ValueError(f"unknown topic: {topic!r} (expected one of {', '.join(TOPICS)})")
        if n <= 0:
            return []
        seed = int(rng.integers(2**31 - 1)) if rng is not None else None
        completion = self.llm.complete(SYSTEM_PROMPT.format(topics=", ".join(TOPICS)),
                                       build_prompt(hook, topic, n, angle=angle, reply_to_text=reply_to_text),
                                       purpose="reply" if reply_to_text else "post",
                                       max_tokens=min(1200, 90 * n + 40), seed=seed)
        if completion is None:
            self.last_outcome = self.llm.last_outcome
            return []
        posts = parse_posts(completion.text, hook, topic, n)
        self.last_outcome = "ok" if posts else "no_usable_posts"
        return posts


def make_generator(settings: Settings, db, clock: Clock, account_id: str) -> ContentGenerator:
    """The content generator for one job tick: LLM when OPENAI_API_KEY is set, else templates.

    Call it once per tick: its LLMClient shares one RetryAllowance across the tick.
    """
    seed = zlib.crc32(account_id.encode())
    if not settings.openai_api_key:
        return TemplateGenerator(seed)
    llm = LLMClient(settings, db, clock, account_id)
    llm.new_tick()
    return LLMContentGenerator(llm, fallback=TemplateGenerator(seed))
