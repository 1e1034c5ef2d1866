"""Operating metrics: today's followers, FPKI, posts, queue, gates, OpenAI spend and job runs
(``GET /api/metrics``; the API renders them as Prometheus text too)."""
from __future__ import annotations

from datetime import date, datetime, timedelta

from pydantic import BaseModel, Field

from xbotlib.config import Settings
from xbotlib.store import gates, ledger, outcomes, queue, read_models, runs
from xbotlib.views.accounts import day_start
from xbotlib.views.followers import final_outcomes_7d, followers_now

JOBS = ("plan", "post", "collect", "learn")
# queue depth counts what is still in the queue; terminal rows (a whole history of posts) are not depth
QUEUE_STATUSES = tuple(s for s in queue.STATUSES if s not in queue.TERMINAL)


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


def openai_spend(conn, settings: Settings, account_id: str, day: date) -> OpenAISpend:
    """The OpenAI budget day of ``account_id``: settled, reserved, remaining, calls, backoffs, circuit."""
    d = ledger.ledger_day(conn, account_id, day)
    budget = settings.openai_daily_budget_usd
    return OpenAISpend(budget_day=day, spent_usd=d.settled_usd, reserved_usd=d.reserved_usd, budget_usd=budget,
                       remaining_usd=budget - d.settled_usd - d.reserved_usd, calls_today=d.total_calls,
                       backoffs_today=d.rate_limit_refunds, circuit_open=d.circuit_open)


def metrics(conn, settings: Settings, account: dict, world: str, now: datetime) -> Metrics:
    """Today's operating figures (the JSON of /api/metrics; the API renders them as Prometheus text too)."""
    acc, simulated = account["account_id"], world != "live"
    today = day_start(now)
    latest = followers_now(conn, acc, simulated, now)
    depth = read_models.open_queue_depth(conn, acc, QUEUE_STATUSES)
    return Metrics(
        account_id=acc, world=world, simulated=simulated, now=now,
        followers_today=latest["followers_count"] if latest else None,
        fpki_avg_7d=final_outcomes_7d(conn, acc, simulated, now)["fpki"],
        posts_today=outcomes.count_posts(conn, acc, world, today, now),
        queue_depth={s: depth.get(s, 0) for s in QUEUE_STATUSES},
        gate_rejections_24h=gates.gate_rejection_counts(conn, acc, now - timedelta(hours=24), now),
        openai=openai_spend(conn, settings, acc, today.date()),
        jobs=runs.last_job_runs(conn, acc, JOBS, now))
