"""The admin API's request and response models (pydantic): the contract of its JSON, and its OpenAPI schema."""
from __future__ import annotations

from datetime import date, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictFloat, model_validator

from xbotlib.views import DAILY_SERIES_DAYS, TOP_POSTS_WINDOW_DAYS


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



class LiftRow(BaseModel):
    outcome: str = Field(description="reward_composite or fpki (pass-2 outcomes)")
    estimator: str = Field(description="difference_in_means, ipw_hajek or aipw_ridge")
    estimate: float | None = Field(description="treatment minus control, in the outcome's units")
    se: float | None
    ci_low: float | None = Field(description="95% interval, lower end")
    ci_high: float | None
    n_treatment: int
    n_control: int
    control_mean: float | None = Field(description="to read the estimate as a relative lift")


class ExperimentLift(BaseModel):
    account_id: str
    experiment_id: str
    world: str
    simulated: bool = Field(description="true: these figures come from the sandbox, not the real X")
    seed: int = Field(description="seed of the cross-fitting folds of the doubly-robust estimator")
    reason: str | None = Field(description="why there is no estimate yet (then table is empty); null when estimable")
    table: list[LiftRow] = Field(description="one row per (outcome, estimator), as xbotlib.views.experiment_lift")
