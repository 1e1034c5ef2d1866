"""The admin API: learning state, growth, operating metrics and experiment switches, behind ADMIN_TOKEN.

``create_app(settings, db, clock)`` builds the FastAPI app. Every request, including the OpenAPI
schema and the docs, needs the token: ``Authorization: Bearer <token>`` or HTTP Basic with the token
as the password (any user name, so a browser can open ``/docs``). A token in the query string is
never read: URLs end up in logs and browser history.

Routes (``?account_id=`` defaults to XBOT_ACCOUNT_ID; ``?world=live|sandbox`` to the posting world):
``GET /api/learning/status``, ``GET /api/growth``, ``GET /api/metrics`` (and Prometheus text at
``GET /metrics``), ``GET /api/experiments``, ``PATCH /api/experiments/{experiment_id}``.

Figures of one world only: ``world=live`` reads real outcomes and snapshots (``simulated=false``),
``world=sandbox`` simulated ones; each response says which, so a simulated number is never shown
as a real one. Days are UTC days. Every query is parameterised and bounded by a time window or
LIMIT; each route reads in one REPEATABLE READ snapshot so its figures agree with each other.
"""
from __future__ import annotations

import base64
import binascii
import hmac
import logging
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Literal, Sequence

from fastapi import Depends, FastAPI, HTTPException, Path as PathParam, Query, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.openapi.utils import get_openapi
from fastapi.responses import HTMLResponse, JSONResponse, PlainTextResponse
from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictFloat, model_validator

from xbotlib.jobs import schedules as _schedules
from xbotlib.core.bandit import ArmStats, explore_rate, posterior
from xbotlib.clock import Clock
from xbotlib.config import ConfigError, Settings
from xbotlib.store.db import Database
from xbotlib.core.predictors import WEEKLY, LastVersion, should_train
from xbotlib.store.models import last_version
from xbotlib.store.queue import TERMINAL, STATUSES
from xbotlib.store.training_data import count_fresh_outcomes

log = logging.getLogger("xbot.api")

ACCOUNT_ID_PATTERN = r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}$"
JOBS = ("plan", "post", "collect", "learn")
REALM = 'Bearer realm="xbot", Basic realm="xbot"'
TOP_POSTS_WINDOW_DAYS = 30
TOP_POSTS_LIMIT = 10
DAILY_SERIES_DAYS = 30
EXCERPT_CHARS = 80
OUTCOMES_WINDOW_DAYS = 90
# queue depth counts what is still in the queue; terminal rows (a whole history of posts) are not depth
QUEUE_STATUSES = tuple(s for s in STATUSES if s not in TERMINAL)


# ----------------------------------------------------------------------------- auth (pure)

def token_matches(authorization: str | None, token: str) -> bool:
    """True when an ``Authorization`` header carries ``token`` as Bearer, or as the Basic password.

    ``authorization`` is the header as ASGI servers decode it (latin-1), so its bytes are the bytes
    the client sent; they are compared with the UTF-8 token by ``hmac.compare_digest``, whose time
    does not reveal how much matched.
    """
    if not authorization or not token:
        return False
    scheme, _, value = authorization.strip().partition(" ")
    expected = token.encode()
    if scheme.lower() == "bearer":
        try:
            sent = value.strip().encode("latin-1")
        except UnicodeEncodeError:  # not something an HTTP header can carry
            return False
        return hmac.compare_digest(sent, expected)
    if scheme.lower() == "basic":
        try:
            decoded = base64.b64decode(value.strip(), validate=True)
        except (binascii.Error, ValueError):
            return False
        _user, sep, password = decoded.partition(b":")
        return bool(sep) and hmac.compare_digest(password, expected)
    return False


UNAUTHORIZED = ("missing or wrong admin token: send 'Authorization: Bearer <ADMIN_TOKEN>' "
                "or HTTP Basic with ADMIN_TOKEN as the password")


def _unauthorized() -> JSONResponse:
    return JSONResponse({"detail": UNAUTHORIZED}, status_code=401, headers={"WWW-Authenticate": REALM})


class AdminGate:
    """ASGI middleware: every HTTP request needs the admin token before anything else runs.

    A route dependency alone is not enough: FastAPI parses a JSON body before it resolves
    dependencies, so a malformed body would answer 422 to a caller without a token.
    """

    def __init__(self, app, token: str):
        self.app = app
        self.token = token

    async def __call__(self, scope, receive, send):
        if scope["type"] == "http":
            header = next((v.decode("latin-1") for k, v in scope["headers"] if k == b"authorization"), None)
            if not token_matches(header, self.token):
                await _unauthorized()(scope, receive, send)
                return
        elif scope["type"] != "lifespan":
            return  # no websockets here
        await self.app(scope, receive, send)


# ----------------------------------------------------------------------------- response models

class ErrorDetail(BaseModel):
    detail: Any = Field(description="what was wrong and how to fix it")


class ModelVersion(BaseModel):
    kind: str = Field(description="content or timing")
    version: str = Field(description="v{N}", examples=["v3"])
    predictor_key: str
    algorithm: str
    world: str = Field(description="the world the model was trained on (live or sandbox)")
    cv_score: float | None
    baseline_score: float | None
    trained_at: datetime
    n_samples: int
    trained_through: int | None = Field(description="last outcome_id in the training data")


class ArmSummary(BaseModel):
    scope: str = Field(description="content (hook pattern) or timing (posting hour)")
    arm: str
    samples: int = Field(description="pass-2 rewards folded into this arm (bandit_arms.pulls)")
    weight_sum: float
    posterior_mean: float
    posterior_sd: float
    ci95_low: float
    ci95_high: float


class OutcomesByWorld(BaseModel):
    world: str = Field(description="world of the post (posted_decisions.world); 'unknown' if not recorded")
    outcomes: int
    real: int = Field(description="outcomes from the real X (simulated=false)")
    simulated: int


class NextTraining(BaseModel):
    world: str
    fresh_outcomes: int = Field(description="pass-2 outcomes of this world not yet in the active model")
    min_new_samples: int
    retrain_samples: int
    last_trained_at: datetime | None
    weekly_due_at: datetime | None
    due_now: bool = Field(description="the next learn run will train")
    reason: str = Field(description="the learn job's reason: first_version, new_samples, weekly, "
                                    "insufficient_new_samples or waiting_for_retrain")
    outcomes_needed: int = Field(description="more fresh outcomes before the count rule alone triggers training")
    next_learn_run_at: datetime | None = Field(description="next scheduled learn job (schedules/), if known")
    summary: str


class ModelEffect(BaseModel):
    arm: str = Field(description="hook pattern, or local posting hour")
    relative_follows: float = Field(description="expected follows per post against the average arm (1.0 = average)")
    low: float = Field(description="95% interval, lower end")
    high: float = Field(description="95% interval, upper end")


class GrowthModelView(BaseModel):
    posts: int = Field(description="final post outcomes of the last window_days the model learnt from")
    window_days: int
    deciding: bool = Field(description="true once the learner chooses from this model (enough outcomes)")
    signal: str | None = Field(description="profile_visits (the funnel) or follows (when X reports no visits)")
    hooks: list[ModelEffect]
    hours: list[ModelEffect] = Field(description="the configured posting hours")


class LearningStatus(BaseModel):
    account_id: str
    world: str
    now: datetime
    account_age_days: float
    explore_rate: float
    active_models: list[ModelVersion]
    arms: list[ArmSummary]
    posterior_method: str
    outcomes_window_days: int
    outcomes_by_world: list[OutcomesByWorld] = Field(description="outcomes collected in the last "
                                                                 "outcomes_window_days days, by the post's world")
    next_training: NextTraining
    growth_model: GrowthModelView = Field(description="what the learner believes about hooks and hours "
                                                      "(xbotlib.core.growth_model)")


class DailyFollowers(BaseModel):
    day: date = Field(description="UTC day")
    followers: int = Field(description="last snapshot of that day")


class TopPost(BaseModel):
    decision_id: str
    tweet_id: str | None
    excerpt: str
    follows: float
    fpki: float
    impressions: int
    collected_at: datetime


class Growth(BaseModel):
    account_id: str
    world: str
    simulated: bool = Field(description="true: these figures come from the sandbox, not the real X")
    now: datetime
    followers_now: int | None
    followers_at: datetime | None
    change_1d: int | None = Field(description="null when no snapshot exists in the day before the reference")
    change_7d: int | None
    daily: list[DailyFollowers] = Field(description=f"last {DAILY_SERIES_DAYS} UTC days; days without a "
                                                    "snapshot are absent, not filled in")
    fpki_avg_7d: float | None
    novelty_avg_7d: float | None
    outcomes_7d: int = Field(description="pass-2 outcomes behind the 7-day averages")
    top_posts: list[TopPost] = Field(description=f"pass-2 outcomes of the last {TOP_POSTS_WINDOW_DAYS} days, "
                                                 "most follows first")


class OpenAISpend(BaseModel):
    budget_day: date
    spent_usd: float = Field(description="settled cost today")
    reserved_usd: float = Field(description="reserved by calls still in flight")
    budget_usd: float
    remaining_usd: float
    calls_today: int
    backoffs_today: int = Field(description="calls refunded after a rate limit (ledger error mentions rate_limit)")
    circuit_open: bool = Field(description="a quota_exhausted ledger row exists today")


class JobLastRun(BaseModel):
    job: str
    status: str | None
    started_at: datetime | None
    finished_at: datetime | None
    error: str | None


class Metrics(BaseModel):
    account_id: str
    world: str
    simulated: bool
    now: datetime
    followers_today: int | None
    fpki_avg_7d: float | None
    posts_today: int
    queue_depth: dict[str, int] = Field(description="decisions still in the queue, by status "
                                                    "(draft, queued, posting, failed)")
    gate_rejections_24h: dict[str, int]
    openai: OpenAISpend
    jobs: list[JobLastRun]


class ArmCount(BaseModel):
    control: int = 0
    treatment: int = 0


class Experiment(BaseModel):
    account_id: str
    experiment_id: str
    enabled: bool
    allocation: float
    applies_to: str
    description: str
    assignments: ArmCount
    updated_at: datetime


class ExperimentPatch(BaseModel):
    """Give ``enabled``, ``allocation`` or both; anything else is refused."""
    model_config = ConfigDict(extra="forbid", json_schema_extra={"minProperties": 1})

    enabled: StrictBool = Field(default=None, description="switch the experiment on or off")
    allocation: StrictFloat = Field(default=None, gt=0, lt=1, allow_inf_nan=False,
                              description="share of eligible decisions assigned to treatment, in (0, 1)")

    @model_validator(mode="after")
    def _something_to_change(self) -> "ExperimentPatch":
        if not self.model_fields_set:
            raise ValueError("nothing to change: give enabled (true/false) and/or allocation (between 0 and 1)")
        return self


# ----------------------------------------------------------------------------- pure helpers

POSTERIOR_METHOD = ("xbotlib.core.bandit.posterior: Normal-Inverse-Gamma posterior of each arm's mean reward from "
                    "the exposure-weighted sums in bandit_arms, prior pooled over the arms of the same scope; "
                    "95% interval of the Student-t")


def arm_summaries(rows: Sequence[dict]) -> list[ArmSummary]:
    """Posterior of each arm from its ``bandit_arms`` row, arms of a scope compared with each other."""
    out = []
    for scope in sorted({r["scope"] for r in rows}):
        stats = {r["arm_id"]: ArmStats(r["arm_id"], r["pulls"], r["reward_sum"], r["reward_sq_sum"], r["weight_sum"])
                 for r in rows if r["scope"] == scope}
        for arm, post in posterior(stats).items():
            s = stats[arm]
            out.append(ArmSummary(scope=scope, arm=arm, samples=s.pulls, weight_sum=s.weight_sum,
                                  posterior_mean=post.mean, posterior_sd=post.sd, ci95_low=post.ci_low,
                                  ci95_high=post.ci_high))
    return out


def next_training(*, world: str, fresh: int, last: LastVersion | None, min_new: int, retrain_at: int,
                  now: datetime, next_learn_run_at: datetime | None = None) -> NextTraining:
    """When the learn job will next train, by its own rule (``xbotlib.core.predictors.should_train``).

    ``fresh`` counts pass-2 outcomes after ``last`` (the newest content model of ``world``, or None).
    """
    last_trained_at = last.trained_at if last else None
    decision = should_train(fresh, last, now, min_new=min_new, retrain_at=retrain_at)
    weekly_due_at = last_trained_at + WEEKLY if last_trained_at else None
    needed = 0 if decision.train else max(0, decision.need - fresh)
    run = f" at the next learn run ({next_learn_run_at.isoformat()})" if next_learn_run_at else " at the next learn run"
    if decision.train:
        summary = f"due{run}: {decision.reason}, {fresh} fresh outcomes"
    elif decision.reason == "waiting_for_retrain":
        summary = (f"after {needed} more outcomes ({fresh}/{retrain_at} fresh), or weekly from "
                   f"{weekly_due_at.isoformat()} with >= {min_new} fresh")
    else:
        summary = f"after {needed} more outcomes ({fresh}/{min_new} fresh needed to train)"
    return NextTraining(world=world, fresh_outcomes=fresh, min_new_samples=min_new, retrain_samples=retrain_at,
                        last_trained_at=last_trained_at, weekly_due_at=weekly_due_at, due_now=decision.train,
                        reason=decision.reason, outcomes_needed=needed, next_learn_run_at=next_learn_run_at,
                        summary=summary)


def _label(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def prometheus_text(m: Metrics) -> str:
    """The metrics in Prometheus text exposition format (0.0.4). Unknown values are left out."""
    base = f'account="{_label(m.account_id)}",world="{_label(m.world)}"'
    lines: list[str] = []

    def gauge(name: str, help_: str, samples: Sequence[tuple[str, float | None]]) -> None:
        lines.append(f"# HELP {name} {help_}")
        lines.append(f"# TYPE {name} gauge")
        for labels, value in samples:
            if value is not None:
                lines.append(f"{name}{{{base}{labels}}} {float(value):.10g}")

    gauge("xbot_followers", "followers in the latest snapshot", [("", m.followers_today)])
    gauge("xbot_simulated", "1 when these figures come from the sandbox, not the real X", [("", int(m.simulated))])
    gauge("xbot_fpki_avg_7d", "mean follows per 1000 impressions, pass-2 outcomes of 7 days", [("", m.fpki_avg_7d)])
    gauge("xbot_posts_today", "posts published today (UTC)", [("", m.posts_today)])
    gauge("xbot_queue_depth", "decisions still in the queue, by status",
          [(f',status="{_label(s)}"', n) for s, n in m.queue_depth.items()])
    gauge("xbot_gate_rejections_24h", "content rejected by each gate in 24 h",
          [(f',gate="{_label(g)}"', n) for g, n in m.gate_rejections_24h.items()])
    o = m.openai
    gauge("xbot_openai_spend_usd", "OpenAI cost settled today", [("", o.spent_usd)])
    gauge("xbot_openai_reserved_usd", "OpenAI cost reserved by calls in flight", [("", o.reserved_usd)])
    gauge("xbot_openai_budget_usd", "OpenAI daily budget", [("", o.budget_usd)])
    gauge("xbot_openai_backoffs_today", "OpenAI calls refunded after a rate limit today", [("", o.backoffs_today)])
    gauge("xbot_openai_circuit_open", "1 when insufficient_quota opened the circuit today", [("", int(o.circuit_open))])
    gauge("xbot_job_last_run_timestamp", "start of each job's last run, unix seconds",
          [(f',job="{_label(j.job)}"', j.started_at.timestamp() if j.started_at else None) for j in m.jobs])
    gauge("xbot_job_last_run_ok", "1 when each job's last run ended ok or skipped",
          [(f',job="{_label(j.job)}"', int(j.status in ("ok", "skipped")) if j.status else None) for j in m.jobs])
    return "\n".join(lines) + "\n"


def json_safe(value: Any) -> Any:
    """``value`` with NaN and infinities as strings: JSON has no such numbers, and a 422 that echoes
    ``{"allocation": NaN}`` back must not itself fail to serialise."""
    if isinstance(value, float) and (value != value or value in (float("inf"), float("-inf"))):
        return str(value)
    if isinstance(value, dict):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    return value


def _day_start(now: datetime) -> datetime:
    """Midnight UTC of ``now``'s day: 'today' in these figures is a UTC day, like the LLM budget day."""
    return now.astimezone(timezone.utc).replace(hour=0, minute=0, second=0, microsecond=0)


# ----------------------------------------------------------------------------- queries (thin shell)

def _snapshot(conn) -> None:
    conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")


def get_account(conn, account_id: str) -> dict | None:
    return conn.execute("SELECT account_id, created_at FROM accounts WHERE account_id = %s", (account_id,)).fetchone()


def growth_model_view(conn, settings: Settings, account_id: str, world: str, now: datetime) -> GrowthModelView:
    """The learner's current growth model for the account: hook and hour effects with 95% intervals."""
    from xbotlib.core import growth_model
    from xbotlib.store.outcomes import MODEL_WINDOW_DAYS, post_outcomes
    from xbotlib.core.policies import XbotPolicy

    posts = post_outcomes(conn, account_id, world, now)
    view = dict(posts=len(posts), window_days=MODEL_WINDOW_DAYS, deciding=len(posts) >= XbotPolicy.MODEL_MIN_POSTS)
    if not posts:
        return GrowthModelView(**view, signal=None, hooks=[], hours=[])
    model = growth_model.fit(posts)
    return GrowthModelView(**view, signal=model.signal,
                           hooks=[ModelEffect(**vars(e)) for e in growth_model.hook_summary(model)],
                           hours=[ModelEffect(**vars(e)) for e in growth_model.hour_summary(model, settings.posting_hours)])


def learning_status(conn, settings: Settings, account: dict, world: str, now: datetime,
                    next_learn_run_at: datetime | None = None) -> LearningStatus:
    """What the learner knows for ``account`` in ``world``: models, exploration, arms, outcomes, next training."""
    acc = account["account_id"]
    age = max(0.0, (now - account["created_at"]).total_seconds() / 86400)
    models = conn.execute(
        """SELECT kind, version, predictor_key, algorithm, world, cv_score, baseline_score, trained_at,
                  n_samples, trained_through
             FROM predictors WHERE account_id = %s AND is_active AND trained_at <= %s
            ORDER BY kind, world LIMIT 20""", (acc, now)).fetchall()
    arms = conn.execute(
        """SELECT scope, arm_id, pulls, reward_sum, reward_sq_sum, weight_sum FROM bandit_arms
            WHERE account_id = %s AND world = %s ORDER BY scope, arm_id LIMIT 500""", (acc, world)).fetchall()
    by_world = conn.execute(
        """SELECT coalesce(p.world, 'unknown') AS world, count(*) AS outcomes,
                  count(*) FILTER (WHERE NOT o.simulated) AS real, count(*) FILTER (WHERE o.simulated) AS simulated
             FROM outcomes o LEFT JOIN posted_decisions p ON p.decision_id = o.decision_id
            WHERE o.account_id = %s AND o.collected_at > %s AND o.collected_at <= %s
            GROUP BY 1 ORDER BY 1""", (acc, now - timedelta(days=OUTCOMES_WINDOW_DAYS), now)).fetchall()
    last = last_version(conn, acc, world)  # the learn job counts fresh outcomes from here
    fresh = count_fresh_outcomes(conn, acc, world, last.trained_through if last else None)
    return LearningStatus(
        account_id=acc, world=world, now=now, account_age_days=round(age, 4), explore_rate=explore_rate(age),
        active_models=[ModelVersion(**{**m, "version": f"v{m['version']}"}) for m in models],
        arms=arm_summaries(arms), posterior_method=POSTERIOR_METHOD,
        outcomes_window_days=OUTCOMES_WINDOW_DAYS, outcomes_by_world=[OutcomesByWorld(**r) for r in by_world],
        next_training=next_training(world=world, fresh=fresh, last=last, min_new=settings.learn_min_new_samples,
                                    retrain_at=settings.learn_retrain_samples, now=now,
                                    next_learn_run_at=next_learn_run_at),
        growth_model=growth_model_view(conn, settings, acc, world, now))


def _followers_at(conn, acc: str, simulated: bool, at: datetime, window: timedelta) -> dict | None:
    """The latest snapshot in (at - window, at]; None when there is none that recent."""
    return conn.execute(
        """SELECT followers_count, taken_at FROM follower_snapshots
            WHERE account_id = %s AND simulated = %s AND taken_at <= %s AND taken_at > %s
            ORDER BY taken_at DESC LIMIT 1""", (acc, simulated, at, at - window)).fetchone()


def _fpki_7d(conn, acc: str, simulated: bool, now: datetime) -> dict:
    return conn.execute(
        """SELECT avg(o.fpki) AS fpki, avg(cm.novelty) AS novelty, count(*) AS n
             FROM outcomes o JOIN content_metadata cm ON cm.decision_id = o.decision_id
            WHERE o.account_id = %s AND o.collected_pass = 2 AND o.simulated = %s
              AND o.collected_at > %s AND o.collected_at <= %s""",
        (acc, simulated, now - timedelta(days=7), now)).fetchone()


def growth(conn, account: dict, world: str, now: datetime) -> Growth:
    """Followers and their change, the daily series, 7-day FPKI and novelty, top posts of ``world``."""
    acc, simulated = account["account_id"], world != "live"
    latest = _followers_at(conn, acc, simulated, now, timedelta(days=DAILY_SERIES_DAYS))
    changes = {}
    for key, days in (("change_1d", 1), ("change_7d", 7)):
        before = _followers_at(conn, acc, simulated, now - timedelta(days=days), timedelta(days=1))
        changes[key] = latest["followers_count"] - before["followers_count"] if latest and before else None
    first_day = _day_start(now) - timedelta(days=DAILY_SERIES_DAYS - 1)
    daily = conn.execute(
        """SELECT DISTINCT ON (day) (taken_at AT TIME ZONE 'UTC')::date AS day, followers_count
             FROM follower_snapshots
            WHERE account_id = %s AND simulated = %s AND taken_at >= %s AND taken_at <= %s
            ORDER BY day, taken_at DESC""", (acc, simulated, first_day, now)).fetchall()
    avg = _fpki_7d(conn, acc, simulated, now)
    top = conn.execute(
        # rank inside the outcomes window first, then look up text and tweet id of those few rows only
        """SELECT t.decision_id::text AS decision_id, p.tweet_id, left(cm.content, %s) AS excerpt, t.follows,
                  t.fpki, t.impressions, t.collected_at
             FROM (SELECT decision_id, follows, fpki, impressions, collected_at FROM outcomes
                    WHERE account_id = %s AND collected_pass = 2 AND simulated = %s
                      AND collected_at > %s AND collected_at <= %s
                    ORDER BY follows DESC, fpki DESC, decision_id LIMIT %s) t
             JOIN content_metadata cm ON cm.decision_id = t.decision_id
             LEFT JOIN posted_decisions p ON p.decision_id = t.decision_id
            ORDER BY t.follows DESC, t.fpki DESC, t.decision_id""",
        (EXCERPT_CHARS, acc, simulated, now - timedelta(days=TOP_POSTS_WINDOW_DAYS), now, TOP_POSTS_LIMIT)).fetchall()
    return Growth(
        account_id=acc, world=world, simulated=simulated, now=now,
        followers_now=latest["followers_count"] if latest else None,
        followers_at=latest["taken_at"] if latest else None, **changes,
        daily=[DailyFollowers(day=r["day"], followers=r["followers_count"]) for r in daily],
        fpki_avg_7d=avg["fpki"], novelty_avg_7d=avg["novelty"], outcomes_7d=avg["n"],
        top_posts=[TopPost(**r) for r in top])


def metrics(conn, settings: Settings, account: dict, world: str, now: datetime) -> Metrics:
    """Today's operating figures (the JSON of /api/metrics; ``prometheus_text`` renders them for /metrics)."""
    acc, simulated = account["account_id"], world != "live"
    today = _day_start(now)
    latest = _followers_at(conn, acc, simulated, now, timedelta(days=DAILY_SERIES_DAYS))
    posts = conn.execute(
        """SELECT count(*) AS n FROM posted_decisions
            WHERE account_id = %s AND world = %s AND posted_at >= %s AND posted_at <= %s""",
        (acc, world, today, now)).fetchone()["n"]
    depth = {s: 0 for s in QUEUE_STATUSES}
    for r in conn.execute("""SELECT status, count(*) AS n FROM content_metadata
                              WHERE account_id = %s AND status = ANY(%s) GROUP BY status""",
                          (acc, list(QUEUE_STATUSES))).fetchall():
        depth[r["status"]] = r["n"]
    gates = conn.execute(
        """SELECT gate, count(*) AS n FROM gate_rejections
            WHERE account_id = %s AND rejected_at > %s AND rejected_at <= %s GROUP BY gate ORDER BY gate LIMIT 100""",
        (acc, now - timedelta(hours=24), now)).fetchall()
    ledger = conn.execute(
        """SELECT coalesce(sum(cost_usd) FILTER (WHERE status = 'settled'), 0) AS spent,
                  coalesce(sum(reserved_usd) FILTER (WHERE status = 'reserved'), 0) AS reserved,
                  count(*) AS calls,
                  count(*) FILTER (WHERE status = 'refunded' AND error ILIKE %s) AS backoffs,
                  coalesce(bool_or(status = 'quota_exhausted'), false) AS circuit
             FROM llm_ledger WHERE account_id = %s AND budget_day = %s""",
        ("%rate_limit%", acc, today.date())).fetchone()
    jobs = conn.execute(
        """SELECT j.job, r.status, r.started_at, r.finished_at, r.error
             FROM unnest(%s::text[]) WITH ORDINALITY AS j(job, ord)
             LEFT JOIN LATERAL (
                  SELECT status, started_at, finished_at, error FROM job_runs
                   WHERE job = j.job AND (account_id = %s OR account_id IS NULL) AND started_at <= %s
                   ORDER BY started_at DESC LIMIT 1) r ON true
            ORDER BY j.ord""", (list(JOBS), acc, now)).fetchall()
    budget = settings.openai_daily_budget_usd
    return Metrics(
        account_id=acc, world=world, simulated=simulated, now=now,
        followers_today=latest["followers_count"] if latest else None,
        fpki_avg_7d=_fpki_7d(conn, acc, simulated, now)["fpki"], posts_today=posts, queue_depth=depth,
        gate_rejections_24h={r["gate"]: r["n"] for r in gates},
        openai=OpenAISpend(budget_day=today.date(), spent_usd=ledger["spent"], reserved_usd=ledger["reserved"],
                           budget_usd=budget, remaining_usd=budget - ledger["spent"] - ledger["reserved"],
                           calls_today=ledger["calls"], backoffs_today=ledger["backoffs"],
                           circuit_open=ledger["circuit"]),
        jobs=[JobLastRun(**r) for r in jobs])


_EXPERIMENT_SQL = """
SELECT e.account_id, e.experiment_id, e.enabled, e.allocation, e.applies_to, e.description, e.updated_at,
       coalesce(a.control, 0) AS control, coalesce(a.treatment, 0) AS treatment
  FROM experiments e
  LEFT JOIN LATERAL (
       SELECT count(*) FILTER (WHERE arm = 'control') AS control,
              count(*) FILTER (WHERE arm = 'treatment') AS treatment
         FROM experiment_assignments
        WHERE account_id = e.account_id AND experiment_id = e.experiment_id) a ON true
 WHERE e.account_id = %s {extra}
 ORDER BY e.experiment_id LIMIT 100"""


def _experiment(row: dict) -> Experiment:
    return Experiment(**{k: v for k, v in row.items() if k not in ("control", "treatment")},
                      assignments=ArmCount(control=row["control"], treatment=row["treatment"]))


def list_experiments(conn, account_id: str) -> list[Experiment]:
    """Every experiment of ``account_id`` with its assignments so far per arm."""
    return [_experiment(r) for r in conn.execute(_EXPERIMENT_SQL.format(extra=""), (account_id,)).fetchall()]


def update_experiment(conn, account_id: str, experiment_id: str, patch: ExperimentPatch,
                      now: datetime) -> Experiment | None:
    """Apply ``patch`` to one experiment; None (and nothing changed) when there is no such experiment."""
    given = patch.model_fields_set
    row = conn.execute(
        """UPDATE experiments
              SET enabled = CASE WHEN %(set_enabled)s THEN %(enabled)s ELSE enabled END,
                  allocation = CASE WHEN %(set_allocation)s THEN %(allocation)s ELSE allocation END,
                  updated_at = %(now)s
            WHERE account_id = %(acc)s AND experiment_id = %(id)s RETURNING experiment_id""",
        {"set_enabled": "enabled" in given, "enabled": patch.enabled, "set_allocation": "allocation" in given,
         "allocation": patch.allocation, "now": now, "acc": account_id, "id": experiment_id}).fetchone()
    if row is None:
        return None
    return _experiment(conn.execute(_EXPERIMENT_SQL.format(extra="AND e.experiment_id = %s"),
                                    (account_id, experiment_id)).fetchone())


# ----------------------------------------------------------------------------- schedules

def learn_schedules(schedules_dir: Path | None) -> list[_schedules.ScheduleEntry]:
    """The learn job's schedule entries; [] (and a warning) when the schedules cannot be read."""
    try:
        entries = _schedules.load_schedules(schedules_dir or _schedules.SCHEDULES_DIR)
    except _schedules.ScheduleError as exc:
        log.warning("admin API: no learn schedule (%s); next_learn_run_at will be null", exc)
        return []
    return [e for e in entries if e.kind == "job" and e.name == "learn"]


def next_learn_run(entries: Sequence[_schedules.ScheduleEntry], account_id: str, now: datetime) -> datetime | None:
    """The next learn run for ``account_id`` (its own entry, or one for every account)."""
    runs = [_schedules.next_run(e, now) for e in entries if e.account in (None, account_id)]
    return min(runs, default=None)


# ----------------------------------------------------------------------------- the app

World = Literal["live", "sandbox"]
_ACCOUNT_QUERY = Query(None, pattern=ACCOUNT_ID_PATTERN, max_length=64,
                       description="account to show; default XBOT_ACCOUNT_ID")
_WORLD_QUERY = Query(None, description="live (real outcomes) or sandbox (simulated); default: the posting world")
_NOT_FOUND = {404: {"model": ErrorDetail, "description": "no such account (or experiment)"}}


def create_app(settings: Settings, db: Database, clock: Clock, *, schedules_dir: Path | None = None) -> FastAPI:
    """The admin API over ``db``, reading time from ``clock``.

    Raises ``ConfigError`` when ADMIN_TOKEN is unset: the API never serves without a token.
    The learn schedule is read once here (restart the API after editing ``schedules/``).
    """
    token = settings.admin_token
    if not token:
        raise ConfigError("ADMIN_TOKEN is not set: the admin API refuses to start without it "
                          "(set ADMIN_TOKEN to a long random secret, e.g. the output of "
                          "`python -c 'import secrets; print(secrets.token_urlsafe(32))'`)")
    learn_entries = learn_schedules(schedules_dir)

    def require_admin(request: Request) -> None:
        # AdminGate already refused requests without the token; checked again so no route relies
        # on the middleware alone being installed
        if not token_matches(request.headers.get("authorization"), token):
            raise HTTPException(401, UNAUTHORIZED, headers={"WWW-Authenticate": REALM})

    app = FastAPI(title="xbot admin API", version="1", docs_url=None, redoc_url=None, openapi_url=None,
                  description=__doc__, dependencies=[Depends(require_admin)])
    app.add_middleware(AdminGate, token=token)

    @app.exception_handler(RequestValidationError)
    async def validation_error(_request: Request, exc: RequestValidationError) -> JSONResponse:
        return JSONResponse({"detail": json_safe(jsonable_encoder(exc.errors()))}, status_code=422)

    def account_of(conn, account_id: str | None) -> dict:
        acc = account_id or settings.account_id
        row = get_account(conn, acc)
        if row is None:
            raise HTTPException(404, f"no account {acc!r} in the database (accounts are created by the first job "
                                     "run; pass ?account_id= of an existing account)")
        return row

    @app.get("/api/learning/status", response_model=LearningStatus, responses=_NOT_FOUND, tags=["learning"])
    def get_learning_status(account_id: str | None = _ACCOUNT_QUERY, world: World | None = _WORLD_QUERY):
        """Active model versions, exploration rate, bandit arms, outcomes by world, next training."""
        now = clock.now()
        with db.connection() as conn:
            _snapshot(conn)
            account = account_of(conn, account_id)
            return learning_status(conn, settings, account, world or settings.world, now,
                                   next_learn_run(learn_entries, account["account_id"], now))

    @app.get("/api/growth", response_model=Growth, responses=_NOT_FOUND, tags=["growth"])
    def get_growth(account_id: str | None = _ACCOUNT_QUERY, world: World | None = _WORLD_QUERY):
        """Followers now and their change, a 30-day daily series, 7-day FPKI and novelty, top posts."""
        with db.connection() as conn:
            _snapshot(conn)
            return growth(conn, account_of(conn, account_id), world or settings.world, clock.now())

    def _metrics(account_id: str | None, world: str | None) -> Metrics:
        with db.connection() as conn:
            _snapshot(conn)
            return metrics(conn, settings, account_of(conn, account_id), world or settings.world, clock.now())

    @app.get("/api/metrics", response_model=Metrics, responses=_NOT_FOUND, tags=["operations"])
    def get_metrics(account_id: str | None = _ACCOUNT_QUERY, world: World | None = _WORLD_QUERY):
        """Today's operating figures: followers, FPKI, posts, queue, gates, OpenAI spend, job runs."""
        return _metrics(account_id, world)

    @app.get("/metrics", response_class=PlainTextResponse, tags=["operations"],
             responses={200: {"content": {"text/plain": {"schema": {"type": "string"}}},
                              "description": "Prometheus text format 0.0.4"}, **_NOT_FOUND})
    def get_prometheus(account_id: str | None = _ACCOUNT_QUERY, world: World | None = _WORLD_QUERY):
        """The figures of /api/metrics for Prometheus (scrape with a bearer token)."""
        return PlainTextResponse(prometheus_text(_metrics(account_id, world)),
                                 media_type="text/plain; version=0.0.4; charset=utf-8")

    @app.get("/api/experiments", response_model=list[Experiment], responses=_NOT_FOUND, tags=["experiments"])
    def get_experiments(account_id: str | None = _ACCOUNT_QUERY):
        """Experiment flags, allocation, what they apply to and assignments so far per arm."""
        with db.connection() as conn:
            _snapshot(conn)
            return list_experiments(conn, account_of(conn, account_id)["account_id"])

    @app.patch("/api/experiments/{experiment_id}", response_model=Experiment, tags=["experiments"],
               responses={**_NOT_FOUND, 400: {"model": ErrorDetail, "description": "the body is not UTF-8 JSON"}})
    def patch_experiment(patch: ExperimentPatch,
                         experiment_id: str = PathParam(..., max_length=64, description="e.g. question_cta"),
                         account_id: str | None = _ACCOUNT_QUERY):
        """Switch an experiment on or off, or change its allocation. Nothing changes on error."""
        with db.connection() as conn:
            acc = account_of(conn, account_id)["account_id"]
            updated = update_experiment(conn, acc, experiment_id, patch, clock.now())
            if updated is None:
                known = [e.experiment_id for e in list_experiments(conn, acc)]
                raise HTTPException(404, f"no experiment {experiment_id!r} for account {acc!r} "
                                         f"(known: {', '.join(known) or 'none'})")
            return updated

    def openapi_schema() -> dict:
        if app.openapi_schema is None:
            schema = get_openapi(title=app.title, version=app.version, description=app.description,
                                 routes=app.routes)
            schema.setdefault("components", {})["securitySchemes"] = {
                "bearerAuth": {"type": "http", "scheme": "bearer", "description": "ADMIN_TOKEN"},
                "basicAuth": {"type": "http", "scheme": "basic", "description": "any user, ADMIN_TOKEN as password"},
            }
            schema["security"] = [{"bearerAuth": []}, {"basicAuth": []}]
            error = {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorDetail"}}}
            for operations in schema["paths"].values():
                for op in operations.values():
                    op["responses"]["401"] = {"description": "missing or wrong admin token", "content": error}
                    for code, response in op["responses"].items():
                        if not code.startswith("2") and "text/plain" in response.get("content", {}):
                            # errors are JSON on every route, /metrics included
                            response["content"] = {"application/json": response["content"].pop("text/plain")}
            app.openapi_schema = schema
        return app.openapi_schema

    @app.get("/openapi.json", include_in_schema=False)
    def get_openapi_json() -> JSONResponse:
        return JSONResponse(openapi_schema())

    @app.get("/docs", include_in_schema=False)
    def get_docs() -> HTMLResponse:
        return get_swagger_ui_html(openapi_url="/openapi.json", title="xbot admin API")

    return app
