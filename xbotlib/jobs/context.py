"""Building a ``JobContext`` from settings: which X, which content generator, which embedder.

- live mode (POSTING_DISABLED=false, LIVE_POSTS=true): X at X_API_BASE_URL with the account's stored
  tokens (``xbot auth login``; ``StoredTokenSource`` refreshes them ahead of expiry and on a 401, under
  the account's row lock, and commits each new pair before using it). With no stored pair, X_ACCESS_TOKEN /
  X_REFRESH_TOKEN bootstrap it: stored on first use when XBOT_SECRET_KEY and X_CLIENT_ID are set (so
  the first refresh is kept), else used from memory with a warning.
- the account's profile (``xbotlib.core.profile``) comes from its ``accounts`` row (`xbot account add`):
  it sets ``ctx.profile``, ``ctx.vocabulary``, the generator's material and voice, and the settings it
  covers (time zone, posting hours, caps, replies, banned phrases), which win over the environment's.
  An account with no stored profile runs the built-in one (``accounts/default.toml``) with the
  environment's settings, as before profiles existed. The profile is read once, when the context is built.
- otherwise the sandbox: X_SANDBOX_URL when a `xbot sandbox` server is running, else an
  in-process sandbox whose world is kept in XBOT_HOME/sandbox_state.json so that separate
  `xbot job …` processes see the same tweets.
"""
from __future__ import annotations

import logging
import os
import threading
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import numpy as np

from xbotlib.clients.generation import ContentGenerator, LLMContentGenerator, make_generator
from xbotlib.clients.llm import LLMClient
from xbotlib.clients.xapi import XClient
from xbotlib.clients.xauth import OAuthClient
from xbotlib.clock import Clock
from xbotlib.config import ConfigError, Settings
from xbotlib.core import vocab
from xbotlib.core.features import Embedder, LocalEmbedder
from xbotlib.core.policies import Policy
from xbotlib.core.profile import AccountProfile, default_profile
from xbotlib.core.vocab import Vocabulary
from xbotlib.sim.xserver import SandboxX
from xbotlib.store import accounts, ledger, tokens
from xbotlib.store.db import Database
from xbotlib.store.queue import ensure_account
from xbotlib.store.worlds import World, check_world

SANDBOX_TOKEN = "sandbox-token"

log = logging.getLogger("xbot.jobs")

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
    experiments_ready: bool = False  # the account's experiment rows follow the registry (once per context)
    vocabulary: Vocabulary = vocab.DEFAULT  # the account's niche (topics, hooks): its profile's, or the built-in one
    profile: AccountProfile | None = None   # the account's profile (build_context: stored, or the built-in one)
    # the plan job's recent embeddings by decision_id, as float64 arrays (an embedding never changes once stored)
    recent_embeddings: dict = field(default_factory=dict, repr=False)
    recent_created: dict = field(default_factory=dict, repr=False)  # their created_at, by the same ids
    # the plan job's active predictors by (kind, target), as last loaded: unchanged models are not loaded again
    predictors: dict = field(default_factory=dict, repr=False)

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

    Every X client reads ``clock`` (a 429 without a reset time is timed on it). The account's stored
    profile (see the module docstring) is read here; its settings replace the environment's.
    """
    world = check_world(settings.world)
    with db.connection() as conn:
        stored = accounts.load_profile(conn, settings.account_id)
    if stored is not None:
        settings = settings.replace(**stored.settings_overrides())
    profile = stored or default_profile()
    if world == "live":
        x = live_x_client(settings, db, clock)
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
        generator = make_generator(settings, db, clock, settings.account_id, ledger=ledger, profile=profile)
        llm = generator.llm if isinstance(generator, LLMContentGenerator) else None

    return JobContext(settings=settings, db=db, clock=clock, account_id=settings.account_id, world=world, x=x,
                      generator=generator, llm=llm, embedder=LocalEmbedder(), policy=policy,
                      rng=np.random.default_rng(seed), worker_id=worker_id or f"pid-{os.getpid()}",
                      sandbox=sandbox, vocabulary=profile.vocabulary(), profile=profile)


# ----------------------------------------------------------------------------- live X's tokens

class StoredTokenSource:
    """The account's X tokens from the encrypted store, for ``XClient(token_source=…)``.

    The pair is cached in memory; it is refreshed ahead of expiry (``margin``) and after a 401, each
    time through ``store.tokens.rotate`` (the row lock; another process's newer pair is used as is),
    and committed before the new token is returned.
    """

    def __init__(self, db: Database, account_id: str, box: tokens.SecretBox, oauth: OAuthClient, clock: Clock,
                 margin: timedelta):
        self.db, self.account_id, self.box, self.oauth, self.clock, self.margin = db, account_id, box, oauth, clock, margin
        self._pair: tokens.StoredTokens | None = None
        self._lock = threading.Lock()

    def access_token(self) -> str:
        with self._lock:
            if self._pair is None:
                with self.db.connection() as conn:
                    self._pair = tokens.load(conn, self.account_id, self.box)
                if self._pair is None:
                    raise tokens.NoStoredTokens(f"no stored X tokens for account {self.account_id!r}: "
                                                f"xbot auth login --account {self.account_id}")
            if self._pair.expiring(self.clock.now(), self.margin):
                self._pair = self._rotate(None)
            return self._pair.access_token

    def refreshed(self, stale: str) -> str:
        with self._lock:
            self._pair = self._rotate(stale)
            return self._pair.access_token

    def _rotate(self, stale: str | None) -> tokens.StoredTokens:
        before = self._pair.refresh_count if self._pair else None
        with self.db.connection() as conn:  # commits on leaving: the new pair is stored before it is used
            pair = tokens.rotate(conn, self.account_id, self.box, stale=stale, now=self.clock.now(), margin=self.margin,
                                 exchange=self.oauth.refresh)
        if before is None or pair.refresh_count != before:
            log.info("X tokens of account %s: now refresh #%d, expiring %s (%s)", self.account_id, pair.refresh_count,
                     pair.expires_at.isoformat() if pair.expires_at else "unknown",
                     "after a 401" if stale is not None else "ahead of expiry")
        return pair


def live_x_client(settings: Settings, db: Database, clock: Clock) -> XClient:
    """The X client of the live world: stored tokens when the account has them (see the module docstring)."""
    aid = settings.account_id
    if settings.secret_key:
        box = tokens.SecretBox(settings.secret_key)
        with db.connection() as conn:
            row = next(iter(tokens.status(conn, aid)), None)
            if row is None and settings.x_access_token and settings.x_client_id:
                tokens.seed_from_env(conn, aid, box, settings.x_access_token, settings.x_refresh_token,
                                     now=clock.now(), client_id=settings.x_client_id)
                row = next(iter(tokens.status(conn, aid)), None)
                log.info("stored X_ACCESS_TOKEN/X_REFRESH_TOKEN for account %s (bootstrap): refreshed pairs are kept "
                         "from now on; the environment's tokens are no longer read", aid)
        if row is not None:
            client_id = settings.x_client_id or row["client_id"]
            oauth = OAuthClient(settings.x_api_base_url, client_id, settings.x_client_secret, clock=clock,
                                timeout=settings.x_timeout_s)
            source = StoredTokenSource(db, aid, box, oauth, clock, timedelta(seconds=settings.x_token_refresh_margin_s))
            return XClient(settings.x_api_base_url, None, clock=clock, token_source=source,
                           timeout=settings.x_timeout_s)
    if settings.x_access_token:
        if settings.x_refresh_token:
            log.warning("X tokens from the environment are refreshed in memory only (X refresh tokens are "
                        "single-use: the next process starts from a dead one); set XBOT_SECRET_KEY and X_CLIENT_ID, "
                        "or sign in with `xbot auth login --account %s`", aid)
        return XClient(settings.x_api_base_url, settings.x_access_token, clock=clock,
                       refresh_token=settings.x_refresh_token, client_id=settings.x_client_id,
                       client_secret=settings.x_client_secret, timeout=settings.x_timeout_s)
    raise ConfigError(f"account {aid!r} is not signed in to X: set X_CLIENT_ID and XBOT_SECRET_KEY and run "
                      f"`xbot auth login --account {aid}` (or set X_ACCESS_TOKEN as a bootstrap)")
