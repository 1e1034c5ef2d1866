"""A simulated campaign through the real jobs: the engine of `xbot demo` and the growth benchmarks.

A campaign gets its own database (``xbot_demo`` on the same server, recreated each run, so the same
seed gives the same result), one in-process sandbox X per account (its audience drawn from the
scenario), a ``SimClock``, and the daemon running plan → post → collect → learn on the schedules
in ``schedules/``. Nothing is shortcut: every post goes through the X client over the ASGI
transport, every outcome through the collector, every model through the learner.
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Callable

import psycopg

from xbotlib.jobs import schedules
from xbotlib.clock import SimClock
from xbotlib.config import Settings
from xbotlib.store.db import Database
from xbotlib.devtools.testing import with_dbname
from xbotlib.store import experiments as experiment_store

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

    def validate(self) -> None:
        from xbotlib.core.policies import POLICY_NAMES
        if not 1 <= self.days <= 365:
            raise ValueError(f"--days must be between 1 and 365, got {self.days}")
        if not 1 <= self.accounts <= 20:
            raise ValueError(f"--accounts must be between 1 and 20, got {self.accounts}")
        if self.policy not in POLICY_NAMES:
            raise ValueError(f"--policy {self.policy!r} is not a policy (expected one of {', '.join(POLICY_NAMES)})")
        if not 0 < self.allocation < 1:
            raise ValueError(f"allocation must be in (0, 1), got {self.allocation}")


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


def campaign_database(settings: Settings, db_name: str = "xbot_demo") -> str:
    """Recreate ``db_name`` on the server behind ``settings`` and migrate it; returns its URL."""
    admin = Database.open(settings)
    try:
        url = with_dbname(admin.url, db_name)
        with psycopg.connect(admin.url, autocommit=True) as conn:
            try:
                conn.execute(f'DROP DATABASE IF EXISTS "{db_name}" WITH (FORCE)')
                conn.execute(f'CREATE DATABASE "{db_name}"')
            except psycopg.errors.InsufficientPrivilege as exc:
                raise RuntimeError(f"the demo needs to create database {db_name!r} on {admin.describe()}: {exc} "
                                   "(grant CREATEDB, or unset XBOT_DATABASE_URL to use the embedded database)") from exc
    finally:
        # keep the embedded server referenced: the caller's Database on the new URL re-joins it
        admin.pool.close()
    return url


def run_campaign(config: CampaignConfig, settings: Settings, db: Database, *,
                 on_progress: Callable[[float], None] | None = None) -> CampaignRun:
    """Run the campaign on ``db`` (already migrated and empty). ``on_progress(days_done)`` drives a bar."""
    from xbotlib.core import policies
    from xbotlib.jobs.daemon import Daemon
    from xbotlib.jobs.context import build_context
    from xbotlib.sim.scenario import load_scenario
    from xbotlib.sim.xserver import SandboxX

    config.validate()
    scenario = load_scenario(config.scenario_path)
    clock = SimClock(config.start)
    base = settings.replace(posting_disabled=False, live_posts=False, x_sandbox_url=None,
                            timezone=getattr(scenario, "timezone", settings.timezone))
    contexts = []
    for i in range(config.accounts):
        account_id = f"demo-{i + 1}"
        seed = config.seed * 1000 + i
        sandbox = SandboxX(scenario, clock=clock, seed=seed, handle=f"xbot_demo_{i + 1}")
        if config.policy == "oracle":
            policy = policies.make_policy("oracle", scenario=scenario)
        else:
            policy = policies.make_policy(config.policy, fixed=config.fixed_arm)
        ctx = build_context(base.replace(account_id=account_id), db, clock, sandbox=sandbox, seed=seed,
                            policy=policy, worker_id=f"demo-worker-{i + 1}")
        with db.connection() as conn:
            from xbotlib.store.queue import ensure_account
            ensure_account(conn, account_id, clock.now(), base.timezone, handle=f"xbot_demo_{i + 1}")
            experiment_store.ensure_experiments(conn, account_id, clock.now())
            for exp_id in (EXPERIMENTS if config.experiments else ()):
                experiment_store.set_experiment(conn, account_id, exp_id, enabled=True, allocation=config.allocation,
                                           now=clock.now())
        contexts.append(ctx)

    entries = [e for e in schedules.load_schedules(Path(config.schedules_dir or schedules.SCHEDULES_DIR)) if e.kind == "job"]
    start = clock.now()
    until = start + timedelta(days=config.days)

    def progress(now: datetime) -> None:
        if on_progress:
            on_progress((now - start).total_seconds() / 86400.0)

    t0 = time.perf_counter()
    daemon = Daemon(contexts, entries, on_tick=progress)
    ticks = daemon.run(until=until, install_signals=False)
    return CampaignRun(config, db, contexts, scenario, time.perf_counter() - t0, ticks)


# ----------------------------------------------------------------------------- summaries (read the database)

def followers_gained(db: Database, account_id: str) -> tuple[int, int]:
    """(first, last) follower snapshot of the account."""
    with db.connection() as conn:
        row = conn.execute(
            """SELECT (SELECT followers_count FROM follower_snapshots WHERE account_id = %(a)s ORDER BY taken_at LIMIT 1) AS first,
                      (SELECT followers_count FROM follower_snapshots WHERE account_id = %(a)s ORDER BY taken_at DESC LIMIT 1) AS last""",
            {"a": account_id}).fetchone()
    return int(row["first"] or 0), int(row["last"] or 0)


def weekly_fpki(db: Database, account_id: str) -> list[tuple[int, float, int]]:
    """(week number, mean pass-2 fpki, posts) per campaign week."""
    with db.connection() as conn:
        rows = conn.execute(
            """SELECT floor(extract(epoch FROM pd.posted_at - a.created_at) / 604800)::int AS week,
                      avg(o.fpki) AS fpki, count(*) AS n
                 FROM outcomes o JOIN posted_decisions pd USING (decision_id) JOIN accounts a ON a.account_id = o.account_id
                WHERE o.account_id = %s AND o.collected_pass = 2
                GROUP BY 1 ORDER BY 1""", (account_id,)).fetchall()
    return [(int(r["week"]) + 1, float(r["fpki"]), int(r["n"])) for r in rows]


def learner_view(db: Database, settings, account_id: str, world: str, now: datetime) -> dict | None:
    """What the growth model believes at the end of the campaign (the admin API's view of it), with
    hooks and hours ranked by expected follows against the average arm."""
    from xbotlib.app.api.app import growth_model_view

    with db.connection() as conn:
        view = growth_model_view(conn, settings, account_id, world, now)
    if not view.posts:
        return None
    rank = lambda effects: sorted(effects, key=lambda e: -e.relative_follows)  # noqa: E731
    return {"posts": view.posts, "hooks": rank(view.hooks), "hours": rank(view.hours)}


def model_versions(db: Database, account_id: str) -> list[dict]:
    with db.connection() as conn:
        return conn.execute(
            """SELECT predictor_key, algorithm, n_samples, cv_score, baseline_score, trained_at
                 FROM predictors WHERE account_id = %s ORDER BY kind, version""", (account_id,)).fetchall()


def true_lift_for_posts(oracle, frame, experiment_id: str) -> float:
    """The ground truth's lift in expected per-post fpki for *these* posts: the mean over the
    experiment's posts of E[fpki | treatment] − E[fpki | control], each at its own hook, topic, hour
    and follower base. This is what the estimators estimate; the scenario's lift under a uniform mix
    (``Oracle.true_lift``) differs whenever the learner's mix does — most for late_evening_slot,
    whose control hours are the learner's (good) hours.
    """
    import numpy as np

    from xbotlib.core import vocab

    if frame.empty:
        return float("nan")
    hooks = [h if h in vocab.HOOK_PATTERNS else "plain" for h in frame["hook"]]
    topics = [t if t in vocab.TOPICS else None for t in frame["topic"]]
    hours = [int(h) % 24 for h in np.floor(frame["local_hour"].to_numpy(dtype=float))]
    followers = frame["followers"].to_numpy(dtype=float)
    control_hours = [h for h, t in zip(hours, frame["treatment"]) if t == 0 and h not in vocab.LATE_EVENING_HOURS]
    diffs = []
    for hook, topic, hour, f in zip(hooks, topics, hours, followers):
        if experiment_id == "late_evening_slot":
            late = np.mean([oracle.expected_fpki(hook, h, topic, followers=f) for h in vocab.LATE_EVENING_HOURS])
            day = np.mean([oracle.expected_fpki(hook, h, topic, followers=f) for h in (control_hours or [hour])])
            diffs.append(late - day)
        elif experiment_id == "contrarian_reply":  # control replies take the plain angle (jobs.plan)
            t = oracle.expected("contrarian", hour, topic, {experiment_id: "treatment"}, followers=f).fpki
            c = oracle.expected("plain", hour, topic, {experiment_id: "control"}, followers=f).fpki
            diffs.append(t - c)
        else:
            t = oracle.expected(hook, hour, topic, {experiment_id: "treatment"}, followers=f).fpki
            c = oracle.expected(hook, hour, topic, {experiment_id: "control"}, followers=f).fpki
            diffs.append(t - c)
    return float(np.mean(diffs))


def experiment_lifts(db: Database, account_id: str, world: str, scenario, seed: int) -> list[dict]:
    """DR (beside IPW and difference in means) for each experiment, with the true lift for its posts."""
    from xbotlib.core import lift
    from xbotlib.sim.oracle import Oracle

    oracle = Oracle(scenario)
    out = []
    for exp_id in EXPERIMENTS:
        with db.connection() as conn:
            frame = experiment_store.lift_frame(conn, account_id, exp_id, world)
        row = {"experiment": exp_id, "n": len(frame), "true_fpki": true_lift_for_posts(oracle, frame, exp_id),
               "true_fpki_uniform_mix": oracle.true_lift(exp_id, metric="fpki")}
        try:
            covs = frame.attrs.get("covariates", [])
            est = lift.aipw(frame, "fpki", covs, seed=seed)
            row.update(dr=est.estimate, ci_low=est.ci_low, ci_high=est.ci_high,
                       ipw=lift.ipw(frame, "fpki").estimate, dim=lift.difference_in_means(frame, "fpki").estimate)
        except ValueError as exc:
            row["error"] = str(exc)
        out.append(row)
    return out
