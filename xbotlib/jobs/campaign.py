"""A simulated campaign through the real jobs: the engine of `xbot demo` and the growth benchmarks.

A campaign gets its own database (``xbot_demo`` on the same server, recreated each run, so the same
seed gives the same result; ``xbot demo`` makes it the workspace's default database), one in-process sandbox X per account (its audience drawn from the
scenario), a ``SimClock``, and the daemon running plan → post → collect → learn on the schedules
in ``schedules/``. Nothing is shortcut: every post goes through the X client over the ASGI
transport, every outcome through the collector, every model through the learner.

``CampaignConfig.profile`` runs an account profile (``xbotlib.core.profile``): the accounts are named
after it (its id; ``<id>-N`` for several) and it is stored for each before its context is built, so the
jobs read it exactly as they would in production (``build_context``). None: accounts ``demo-N`` on
the built-in profile.

``CampaignConfig.serves`` runs some of a campaign's accounts: a campaign split over daemons in several processes
on one database (``xbot bench speed --daemons N``), each account with the name, seed and world it has when one
daemon serves them all.

The account's niche is ``CampaignConfig.vocabulary`` (set on every ``JobContext.vocabulary``; None: the
built-in one). The audience reads with the scenario's own vocabulary: a cooking account posting to a
cooking audience needs both (``scenarios/cooking.toml`` and a cooking vocabulary).
"""
from __future__ import annotations

import contextlib
import dataclasses
import logging
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Callable, Iterator, TextIO

from xbotlib.clock import SimClock
from xbotlib.config import Settings
from xbotlib.core.profile import AccountProfile
from xbotlib.core.vocab import Vocabulary
from xbotlib.jobs import schedules
from xbotlib.jobs.context import build_context
from xbotlib.jobs.daemon import Daemon
from xbotlib.sim import policies
from xbotlib.sim.scenario import load_scenario
from xbotlib.sim.xserver import SandboxX
from xbotlib.store import accounts as account_store
from xbotlib.store import experiments as experiment_store
from xbotlib.store.db import (EMBEDDED_MAINTENANCE_DB, Database, DatabaseError, recreate_database,
                             set_default_database, vacuum_updated_tables)
from xbotlib.store.queue import ensure_account

log = logging.getLogger("xbot.demo")

CAMPAIGN_START = datetime(2026, 1, 5, 0, 0, tzinfo=timezone.utc)  # a Monday
EXPERIMENTS = ("hashtag_1", "question_cta", "contrarian_reply", "late_evening_slot")


@dataclass(frozen=True)
class CampaignConfig:
    days: int = 30
    seed: int = 7
    scenario_path: str | None = None
    accounts: int = 1
    policy: str = "xbot"
    fixed_arm: tuple[str, int] | None = None
    allocation: float = 0.5
    experiments: bool = True          # False: no randomised arms (the growth bench compares policies alone)
    schedules_dir: str | None = None  # None: schedules/ (the production cadence)
    start: datetime = CAMPAIGN_START
    profile: AccountProfile | None = None  # the accounts' profile; None: demo-N on the built-in one
    vocabulary: Vocabulary | None = None  # overrides the accounts' niche; None: their profile's (the built-in one)
    # which of the campaign's accounts (0-based) this run's daemon serves; None: all of them. A campaign split over
    # daemons in several processes (as `xbot run --workers N` spreads accounts): each account keeps its name, seed
    # and world, so what it stores is what it stores when one daemon serves them all.
    serves: tuple[int, ...] | None = None

    def validate(self) -> None:
        if not 1 <= self.days <= 365:
            raise ValueError(f"--days must be between 1 and 365, got {self.days}")
        if not 1 <= self.accounts <= 20:
            raise ValueError(f"--accounts must be between 1 and 20, got {self.accounts}")
        if self.seed < 0:  # numpy's generators take none; caught here, before the demo's database is recreated
            raise ValueError(f"--seed must be 0 or more, got {self.seed}")
        if self.serves is not None and (not self.serves or len(set(self.serves)) < len(self.serves)
                                        or not all(isinstance(i, int) and 0 <= i < self.accounts for i in self.serves)):
            raise ValueError(f"serves must name distinct accounts of the campaign, 0 to {self.accounts - 1}, "
                             f"got {self.serves!r}")
        if self.policy not in policies.POLICIES:  # the registry itself: a bench script's registered variant is one
            raise ValueError(f"--policy {self.policy!r} is not a policy (expected one of {', '.join(policies.POLICY_NAMES)})")
        if not 0 < self.allocation < 1:
            raise ValueError(f"allocation must be in (0, 1), got {self.allocation}")
        if self.vocabulary is not None and not isinstance(self.vocabulary, Vocabulary):
            raise ValueError(f"vocabulary must be a core.vocab.Vocabulary (an account profile's), got "
                             f"{type(self.vocabulary).__name__}")


@dataclass
class CampaignRun:
    """What a campaign left behind: the database and the per-account contexts (for summaries)."""
    config: CampaignConfig
    db: Database
    contexts: list
    scenario: object
    elapsed_s: float
    ticks: dict = field(default_factory=dict)

    @property
    def account_ids(self) -> list[str]:
        return [c.account_id for c in self.contexts]


def campaign_database(settings: Settings, db_name: str = "xbot_demo", *, set_default: bool = False) -> str:
    """Recreate ``db_name`` on the server behind ``settings`` (empty); returns its URL.

    ``set_default``: on the embedded server, record ``db_name`` as the workspace's default database
    (``xbotlib.store.db.set_default_database``), so every later command, notebook and the API read
    this campaign with no setting. Never with XBOT_DATABASE_URL (it names the database) nor for a
    live or shadow configuration (live posting never runs on a simulated campaign's database).
    """
    # the maintenance database: the workspace default may be db_name itself, which cannot be dropped from inside
    admin = Database.open(settings, dbname=None if settings.database_url else EMBEDDED_MAINTENANCE_DB)
    try:
        url = recreate_database(admin.url, db_name)
    except DatabaseError as exc:  # the role may not create databases
        raise RuntimeError(f"the demo needs to create database {db_name!r} on {admin.describe()}: {exc} "
                           "(grant CREATEDB, or unset XBOT_DATABASE_URL to use the embedded database)") from exc
    finally:
        # keep the embedded server referenced: the caller's Database on the new URL re-joins it
        admin.pool.close()
    if set_default and admin.embedded and settings.world != "live":
        set_default_database(settings.home_path, db_name, set_by="xbot demo")
    return url


@contextlib.contextmanager
def days_bar(days: int, file: TextIO) -> Iterator[Callable[[float], None]]:
    """A progress bar of simulated days on ``file``; yields the ``on_progress(days_done)`` that moves it (forward only,
    never past ``days``), and fills it to the end when the block ends without an error. No bar when ``file`` is not
    a terminal (CI logs, pipes), where it is only noise."""
    from tqdm import tqdm  # imported here for start-up time: only the commands that draw a bar load it

    bar = tqdm(total=days, unit="day", desc="campaign", file=file, mininterval=0.5, disable=None,
               bar_format="{l_bar}{bar}| {n:.1f}/{total} sim days [{elapsed}<{remaining}]")

    def advance(days_done: float) -> None:
        step = min(days, round(days_done, 2)) - bar.n
        if step > 0:
            bar.update(step)  # tqdm redraws at most every mininterval

    try:
        yield advance
        bar.update(max(0.0, days - bar.n))
    finally:
        bar.close()


def run_campaign(config: CampaignConfig, settings: Settings, db: Database, *,
                 on_progress: Callable[[float], None] | None = None) -> CampaignRun:
    """Run the campaign on ``db`` (already migrated and empty). ``on_progress(days_done)`` drives a bar."""
    config.validate()
    scenario = load_scenario(config.scenario_path)
    clock = SimClock(config.start)
    base = settings.replace(posting_disabled=False, live_posts=False, x_sandbox_url=None,
                            timezone=getattr(scenario, "timezone", settings.timezone))
    contexts = []
    for i in (range(config.accounts) if config.serves is None else config.serves):
        account_id, handle = f"demo-{i + 1}", f"xbot_demo_{i + 1}"
        if config.profile is not None:
            account_id = config.profile.id if config.accounts == 1 else f"{config.profile.id}-{i + 1}"
            handle = config.profile.handle if config.accounts == 1 else f"{config.profile.handle[:12]}_{i + 1}"
            with db.connection() as conn:  # stored first: build_context reads it like any worker would
                account_store.save_profile(conn, dataclasses.replace(config.profile, id=account_id, handle=handle),
                                           clock.now())
        seed = config.seed * 1000 + i
        sandbox = SandboxX(scenario, clock=clock, seed=seed, handle=handle)
        # every policy gets the world it runs in: the oracle reads its truth, the ideal its structure
        policy = policies.make_policy(config.policy, scenario=scenario, fixed=config.fixed_arm, start=config.start)
        ctx = build_context(base.replace(account_id=account_id), db, clock, sandbox=sandbox, seed=seed,
                            policy=policy, worker_id=f"demo-worker-{i + 1}")
        if config.vocabulary is not None:
            ctx = dataclasses.replace(ctx, vocabulary=config.vocabulary)
        with db.connection() as conn:
            ensure_account(conn, account_id, clock.now(), base.timezone, handle=handle)
            experiment_store.ensure_experiments(conn, account_id, clock.now())
            for exp_id in (EXPERIMENTS if config.experiments else ()):
                experiment_store.set_experiment(conn, account_id, exp_id, enabled=True, allocation=config.allocation,
                                           now=clock.now())
        contexts.append(ctx)

    entries = [e for e in schedules.load_schedules(Path(config.schedules_dir or schedules.SCHEDULES_DIR)) if e.kind == "job"]
    start = clock.now()
    until = start + timedelta(days=config.days)

    # PostgreSQL's autovacuum looks at a database once a minute of the wall's clock, and a simulated day passes in
    # well under a second: left to it, a campaign's tables were vacuumed a few times a simulated year, and every read
    # of a table the jobs update walked all the dead row versions since (a year of one account: the post pre-flight
    # 79 -> 302 us a call by day 180, the server's CPU up ~100 ms a simulated day until autovacuum came round).
    # Once a simulated day, the daemon serving the first account vacuums them itself, as autovacuum would have in a
    # day of real time. It changes no row: only the dead versions go.
    upkeep = config.serves is None or 0 in config.serves
    vacuumed_day = 0

    def progress(now: datetime) -> None:
        nonlocal vacuumed_day
        days_done = (now - start).total_seconds() / 86400.0
        if upkeep and int(days_done) > vacuumed_day:
            vacuumed_day = int(days_done)
            vacuum_updated_tables(db)
        if on_progress:
            on_progress(days_done)

    t0 = time.perf_counter()
    daemon = Daemon(contexts, entries, on_tick=progress)
    ticks = daemon.run(until=until, install_signals=False)
    return CampaignRun(config, db, contexts, scenario, time.perf_counter() - t0, ticks)
