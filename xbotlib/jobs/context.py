"""Building a ``JobContext`` from settings: which X, which content generator, which embedder.

- live mode (POSTING_DISABLED=false, LIVE_POSTS=true): X at X_API_BASE_URL with the user token.
- otherwise the sandbox: X_SANDBOX_URL when a `xbot sandbox` server is running, else an
  in-process sandbox whose world is kept in XBOT_HOME/sandbox_state.json so that separate
  `xbot job …` processes see the same tweets.
"""
from __future__ import annotations

import os

import numpy as np

from ..clock import Clock
from ..config import Settings
from ..db import Database
from . import JobContext

SANDBOX_TOKEN = "sandbox-token"


def build_context(settings: Settings, db: Database, clock: Clock, *, sandbox=None, seed: int = 0,
                  policy=None, generator=None, worker_id: str | None = None) -> JobContext:
    """Wire the real parts for ``settings``. Pass ``sandbox`` (a ``SandboxX``) to share one world in-process."""
    from ..xapi import XClient

    world = settings.world
    if world == "live":
        x = XClient(settings.x_api_base_url, settings.x_access_token or "", refresh_token=settings.x_refresh_token,
                    client_id=settings.x_client_id, client_secret=settings.x_client_secret,
                    timeout=settings.x_timeout_s)
    elif sandbox is not None:
        x = XClient("http://sandbox.local", sandbox.token, transport=sandbox.transport(), timeout=settings.x_timeout_s)
    elif settings.x_sandbox_url:
        x = XClient(settings.x_sandbox_url, settings.x_access_token or SANDBOX_TOKEN, timeout=settings.x_timeout_s)
    else:
        from ..sim.xserver import SandboxX
        settings.home_path.mkdir(parents=True, exist_ok=True)
        sandbox = SandboxX(clock=clock, seed=seed, state_path=settings.home_path / "sandbox_state.json")
        x = XClient("http://sandbox.local", sandbox.token, transport=sandbox.transport(), timeout=settings.x_timeout_s)

    llm = None
    if generator is None:
        from ..llm import make_generator
        generator = make_generator(settings, db, clock, settings.account_id)
        llm = getattr(generator, "llm", None)

    from ..features import LocalEmbedder
    return JobContext(settings=settings, db=db, clock=clock, account_id=settings.account_id, world=world, x=x,
                      generator=generator, llm=llm, embedder=LocalEmbedder(), policy=policy,
                      rng=np.random.default_rng(seed), worker_id=worker_id or f"pid-{os.getpid()}",
                      sandbox=sandbox)
