"""Operating metrics: today's followers, FPKI, posts, queue, gates, OpenAI spend and job runs
(``GET /api/metrics``; the API renders them as Prometheus text too)."""
from __future__ import annotations

from datetime import date, datetime

from pydantic import BaseModel, Field

from xbotlib.config import Settings
from xbotlib.store import ledger, queue, read_models
from xbotlib.store.ledger import LedgerDay
from xbotlib.views.accounts import day_start, now_of

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


def openai_spend(settings: Settings, d: LedgerDay, day: date) -> OpenAISpend:
    """The OpenAI budget day ``day`` of an account from its ledger ``d``: settled, reserved, remaining, calls,
    backoffs, circuit."""
    budget = settings.openai_daily_budget_usd
    return OpenAISpend(budget_day=day, spent_usd=d.settled_usd, reserved_usd=d.reserved_usd, budget_usd=budget,
                       remaining_usd=budget - d.settled_usd - d.reserved_usd, calls_today=d.total_calls,
                       backoffs_today=d.rate_limit_refunds, circuit_open=d.circuit_open)


def metrics(conn, settings: Settings, account_id: str, world: str, wall_now: datetime) -> Metrics | None:
    """Today's operating figures of ``account_id`` in ``world`` at the world's "now" (``accounts.world_now``: the
    wall clock ``wall_now`` for the live world, a simulated world's latest event); None when the account is not
    stored. The JSON of /api/metrics (the API renders them as Prometheus text too).

    One statement (``read_models.metrics_reads``): the account, its now and every figure in one round trip and
    one snapshot, so the figures agree with each other without a transaction around them."""
    r = read_models.metrics_reads(conn, account_id, world, wall_now, QUEUE_STATUSES, JOBS)
    if r is None:
        return None
    simulated = world != "live"
    now = now_of(world, r["latest"], wall_now)
    return Metrics(
        account_id=account_id, world=world, simulated=simulated, now=now,
        followers_today=r["followers"], fpki_avg_7d=r["fpki"], posts_today=r["posts_today"],
        queue_depth=r["queue"], gate_rejections_24h=r["gates"],
        openai=openai_spend(settings, ledger.ledger_of(r["ledger"]), day_start(now).date()),
        jobs=r["jobs"])
