"""Building a ``JobContext`` from settings: which X, which content generator, which embedder.

- live mode (POSTING_DISABLED=false, LIVE_POSTS=true): X at X_API_BASE_URL with the user token.
- otherwise the sandbox: X_SANDBOX_URL when a `xbot sandbox` server is running, else an
  in-process sandbox whose world is kept in XBOT_HOME/sandbox_state.json so that separate
  `xbot job …` processes see the same tweets.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from xbotlib.clients.generation import ContentGenerator, LLMContentGenerator, make_generator
from xbotlib.clients.llm import LLMClient
from xbotlib.clients.xapi import XClient
from xbotlib.clock import Clock
from xbotlib.config import Settings
from xbotlib.core.features import Embedder, LocalEmbedder
from xbotlib.core.policies import Policy
from xbotlib.sim.xserver import SandboxX
from xbotlib.store import ledger
from xbotlib.store.db import Database
from xbotlib.store.queue import ensure_account
from xbotlib.store.worlds import World, check_world

SANDBOX_TOKEN = "sandbox-token"

JOB_NAMES = ("plan", "post", "collect", "learn")


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
    world: World                    # where posts go and outcomes come from
    x: XClient | None = None        # None when no X is reachable
    generator: ContentGenerator | None = None  # build_context always sets one
    llm: LLMClient | None = None    # None offline (templates)
    embedder: Embedder | None = None  # features embedder (OpenAI or local)
    policy: Policy | None = None    # plan policy (xbot learner by default)
    rng: np.random.Generator = field(default_factory=lambda: np.random.default_rng(0))
    worker_id: str = "worker-1"
    sandbox: SandboxX | None = None  # the in-process sandbox, when there is one
    account_ready: bool = False     # the accounts row exists (checked once per context, not every tick)

    @property
    def simulated(self) -> bool:
        """Outcomes are simulated unless they come from live X."""
        return self.world != "live"


def ensure_account_once(ctx: JobContext, conn) -> None:
    """Create the account row on first use; later ticks of this context skip the round trip."""
    if not ctx.account_ready:
        ensure_account(conn, ctx.account_id, ctx.clock.now(), ctx.settings.timezone)
        ctx.account_ready = True


def build_context(settings: Settings, db: Database, clock: Clock, *, sandbox: SandboxX | None = None, seed: int = 0,
                  policy: Policy | None = None, generator: ContentGenerator | None = None,
                  worker_id: str | None = None) -> JobContext:
    """Wire the real parts for ``settings``. Pass ``sandbox`` (a ``SandboxX``) to share one world in-process.

    Every X client reads ``clock`` (a 429 without a reset time is timed on it).
    """
    world = check_world(settings.world)
    if world == "live":
        x = XClient(settings.x_api_base_url, settings.x_access_token or "", clock=clock,
                    refresh_token=settings.x_refresh_token, client_id=settings.x_client_id,
                    client_secret=settings.x_client_secret, timeout=settings.x_timeout_s)
    elif sandbox is not None:
        x = XClient("http://sandbox.local", sandbox.token, clock=clock, transport=sandbox.transport(),
                    timeout=settings.x_timeout_s)
    elif settings.x_sandbox_url:
        x = XClient(settings.x_sandbox_url, settings.x_access_token or SANDBOX_TOKEN, clock=clock,
                    timeout=settings.x_timeout_s)
    else:
        settings.home_path.mkdir(parents=True, exist_ok=True)
        sandbox = SandboxX(clock=clock, seed=seed, state_path=settings.home_path / "sandbox_state.json")
        x = XClient("http://sandbox.local", sandbox.token, clock=clock, transport=sandbox.transport(),
                    timeout=settings.x_timeout_s)

    llm = None
    if generator is None:
        generator = make_generator(settings, db, clock, settings.account_id, ledger=ledger)
        llm = generator.llm if isinstance(generator, LLMContentGenerator) else None

    return JobContext(settings=settings, db=db, clock=clock, account_id=settings.account_id, world=world, x=x,
                      generator=generator, llm=llm, embedder=LocalEmbedder(), policy=policy,
                      rng=np.random.default_rng(seed), worker_id=worker_id or f"pid-{os.getpid()}",
                      sandbox=sandbox)
