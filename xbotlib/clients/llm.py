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
    ``spent_today`` = reserved (status reserved) + cost (status settled). The ledger's SQL lives in
    ``xbotlib.store.ledger``, passed in as ``ledger`` (a ``SpendLedger``; the clients do not import
    the store): this client decides and logs.
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

Prices, cost estimates, the backoff and the retry allowance are pure rules in
``xbotlib.clients.llm_rules``.
"""
from __future__ import annotations

import logging
import time
import uuid
import zlib
from contextlib import AbstractContextManager
from datetime import date, datetime, timedelta
from typing import Any, Callable, Mapping, Protocol

import numpy as np
import openai

from xbotlib.clients.llm_rules import (BACKOFF_BASE_S, MAX_RETRIES, RETRY_AFTER_CAP_S, TICK_WINDOW, Completion,
                                       RetryAllowance, backoff_wait, budget_day_of, estimate_chat_usd,
                                       estimate_embedding_usd, retry_after_s, usage_cost_usd)
from xbotlib.clock import Clock
from xbotlib.config import ConfigError, Settings
from xbotlib.logs import tagged

__all__ = ["Completion", "ConnectionPool", "LLMClient", "RetryAllowance", "SpendLedger"]

log = logging.getLogger("xbot.llm")

# models that take max_completion_tokens and no temperature (reasoning models)
_REASONING_PREFIXES = ("o1", "o3", "o4", "gpt-5")


# ----------------------------------------------------------------------------- what the client is given

class ConnectionPool(Protocol):
    """Where the client gets one connection (one transaction) per ledger step: ``xbotlib.store.db.Database``."""

    def connection(self) -> AbstractContextManager[Any]: ...


class SpendLedger(Protocol):
    """The ``llm_ledger`` reads and writes the client runs inside a ledger step's transaction.

    The implementation is the module ``xbotlib.store.ledger``; the job wiring (``build_context``) and
    tests pass it in, so the clients never import the store.
    """

    def lock_day(self, conn: Any, account_id: str, day: date) -> None: ...

    def spent_today(self, conn: Any, account_id: str, day: date) -> float: ...

    def quota_exhausted_call(self, conn: Any, account_id: str, day: date) -> Mapping[str, Any] | None: ...

    def ledger_day(self, conn: Any, account_id: str, day: date) -> Any: ...

    def reserve_call(self, conn: Any, call_id: str, account_id: str, day: date, model: str, purpose: str, usd: float,
                     at: datetime) -> None: ...

    def reserved_usd(self, conn: Any, call_id: str) -> float: ...

    def settle_call(self, conn: Any, call_id: str, cost_usd: float, prompt_tokens: int | None,
                    completion_tokens: int | None, at: datetime) -> None: ...

    def refund_call(self, conn: Any, call_id: str, error: str, at: datetime) -> float | None: ...

    def mark_quota_exhausted(self, conn: Any, call_id: str, error: str, at: datetime) -> float | None: ...


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

    def __init__(self, settings: Settings, db: ConnectionPool, clock: Clock, account_id: str, *, ledger: SpendLedger,
                 sleep: Callable[[float], Any] = time.sleep,
                 client: Any = None, rng: np.random.Generator | None = None,
                 retry_allowance: RetryAllowance | None = None):
        self.settings = settings
        self.db = db
        self.ledger = ledger
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
            return self.ledger.quota_exhausted_call(conn, self.account_id, self.budget_day()) is not None

    def budget_status(self) -> dict[str, Any]:
        """Today's ledger: spent, reserved, settled, remaining, budget, circuit, calls, backoffs_today (this process)."""
        day = self.budget_day()
        with self.db.connection() as conn:
            today = self.ledger.ledger_day(conn, self.account_id, day)
            spent = self.ledger.spent_today(conn, self.account_id, day)
        budget = self.settings.openai_daily_budget_usd
        circuit = today.circuit_open
        return {
            "day": day.isoformat(), "budget": budget, "spent": spent,
            "reserved": today.reserved_usd,
            "settled": today.settled_usd,
            "remaining": max(0.0, budget - spent),
            "calls": dict(today.calls),
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
        # only the budget day's count is ever read (budget_status): a long-lived client keeps no count per past day
        self._backoffs = {day: self._backoffs.get(day, 0) + 1}
        tagged(log, "OPENAI_BACKOFF", attempt=attempt, wait_ms=round(wait * 1000), reason=reason, call_id=call_id)
        self.sleep(wait)

    # -- ledger transitions (each its own transaction under the (account, day) lock)
    def _reserve(self, call_id: str, day: date, model: str, purpose: str, estimate: float) -> str:
        budget = self.settings.openai_daily_budget_usd
        with self.db.connection() as conn:
            self.ledger.lock_day(conn, self.account_id, day)
            circuit = self.ledger.quota_exhausted_call(conn, self.account_id, day)
            if circuit is not None:
                outcome = "circuit_open"
            else:
                spent = self.ledger.spent_today(conn, self.account_id, day)
                if spent + estimate > budget:
                    outcome = "refused"
                else:
                    self.ledger.reserve_call(conn, call_id, self.account_id, day, model, purpose, estimate,
                                             self.clock.now())
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
            self.ledger.lock_day(conn, self.account_id, day)
            reserved = self.ledger.reserved_usd(conn, call_id)
            if prompt_tokens < 0:  # a server that reports no usage: charge the reservation
                actual = reserved
            else:
                actual = usage_cost_usd(model, prompt_tokens, completion_tokens)
            others = self.ledger.spent_today(conn, self.account_id, day) - reserved
            cost = min(actual, max(0.0, budget - others))
            self.ledger.settle_call(conn, call_id, cost, prompt_tokens if prompt_tokens >= 0 else None,
                               completion_tokens if completion_tokens >= 0 else None, self.clock.now())
        extra = {"actual_usd": actual, "clamped": "true"} if cost < actual else {}
        tagged(log, "OPENAI_BUDGET", "settle", call_id=call_id, usd=cost, spent=others + cost, budget=budget,
               reserved=reserved, **extra)
        return cost

    def _refund(self, call_id: str, day: date, error: str, *, reason: str) -> None:
        with self.db.connection() as conn:
            self.ledger.lock_day(conn, self.account_id, day)
            refunded = self.ledger.refund_call(conn, call_id, error, self.clock.now())
            spent = self.ledger.spent_today(conn, self.account_id, day)
        tagged(log, "OPENAI_BUDGET", "refund", call_id=call_id, usd=refunded if refunded is not None else 0.0,
               spent=spent, budget=self.settings.openai_daily_budget_usd, reason=reason)

    def _open_circuit(self, call_id: str, day: date, exc: Exception) -> None:
        # the call's own row becomes the persistent circuit marker (cost 0: nothing was billed)
        with self.db.connection() as conn:
            self.ledger.lock_day(conn, self.account_id, day)
            refunded = self.ledger.mark_quota_exhausted(conn, call_id, _describe(exc), self.clock.now())
            spent = self.ledger.spent_today(conn, self.account_id, day)
        until = (day + timedelta(days=1)).isoformat()
        tagged(log, "OPENAI_BUDGET", "refund", call_id=call_id, usd=refunded if refunded is not None else 0.0,
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
