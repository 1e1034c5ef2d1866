"""The four jobs — plan, post, collect, learn — each a ``tick(ctx) -> JobResult``.

A ``JobContext`` carries the thin shell every job needs (settings, database, clock, X client,
content generator, random generator); ``run_job`` runs one tick and records it in ``job_runs``,
so every run leaves an honest record, including the failed ones.
"""
from __future__ import annotations

import json
import logging
import traceback
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

from ..clock import Clock
from ..config import Settings
from ..db import Database

JOB_NAMES = ("plan", "post", "collect", "learn")

log = logging.getLogger("xbot.jobs")


@dataclass
class JobResult:
    """What a tick did. ``status`` is ok | skipped (nothing to do, or a switch said no) | failed."""
    status: str = "ok"
    detail: dict[str, Any] = field(default_factory=dict)
    reason: str | None = None

    @classmethod
    def skipped(cls, reason: str, **detail: Any) -> "JobResult":
        return cls(status="skipped", detail=detail, reason=reason)


@dataclass
class JobContext:
    """Everything a job touches, passed in. Build one with ``xbotlib.jobs.context.build_context``."""
    settings: Settings
    db: Database
    clock: Clock
    account_id: str
    world: str                      # 'live' | 'sandbox': where posts go and outcomes come from
    x: Any = None                   # xbotlib.xapi.XClient (None when no X is reachable)
    generator: Any = None           # xbotlib.llm.ContentGenerator
    llm: Any = None                 # xbotlib.llm.LLMClient or None (offline)
    embedder: Any = None            # features embedder (OpenAI or local)
    policy: Any = None              # plan policy (xbot learner by default)
    rng: np.random.Generator = field(default_factory=lambda: np.random.default_rng(0))
    worker_id: str = "worker-1"
    sandbox: Any = None             # the in-process SandboxX, when there is one
    account_ready: bool = False     # the accounts row exists (checked once per context, not every tick)

    @property
    def simulated(self) -> bool:
        """Outcomes are simulated unless they come from live X."""
        return self.world != "live"


def ensure_account_once(ctx: JobContext, conn) -> None:
    """Create the account row on first use; later ticks of this context skip the round trip."""
    if not ctx.account_ready:
        from ..queue import ensure_account
        ensure_account(conn, ctx.account_id, ctx.clock.now(), ctx.settings.timezone)
        ctx.account_ready = True


def run_job(name: str, ctx: JobContext, tick: Callable[[JobContext], JobResult]) -> JobResult:
    """Run one tick of job ``name`` and record it in ``job_runs`` (running -> ok|skipped|failed)."""
    started = ctx.clock.now()
    with ctx.db.connection() as conn:
        run_id = conn.execute(
            "INSERT INTO job_runs (account_id, job, status, started_at) VALUES (%s, %s, 'running', %s) RETURNING run_id",
            (ctx.account_id, name, started)).fetchone()["run_id"]
    try:
        result = tick(ctx)
    except Exception as exc:
        with ctx.db.connection() as conn:
            conn.execute("UPDATE job_runs SET status = 'failed', finished_at = %s, error = %s WHERE run_id = %s",
                         (ctx.clock.now(), f"{type(exc).__name__}: {exc}\n{traceback.format_exc(limit=5)}", run_id))
        raise
    detail = dict(result.detail)
    if result.reason:
        detail["reason"] = result.reason
    with ctx.db.connection() as conn:
        conn.execute("UPDATE job_runs SET status = %s, finished_at = %s, detail = %s WHERE run_id = %s",
                     (result.status, ctx.clock.now(), json.dumps(detail, default=str), run_id))
    return result
