"""The admin API's own request and response models (pydantic): the parts of its JSON contract, and of
its OpenAPI schema, that no read model answers — errors, the experiment switches and the lift table.

The figures it serves (``LearningStatus``, ``Growth``, ``Metrics`` and their parts) are the pydantic
read models of ``xbotlib.views``, used as they are for the routes' ``response_model``.
"""
from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictFloat, model_validator

from xbotlib.core.experiments import MAX_ALLOCATION, MIN_ALLOCATION


class ErrorDetail(BaseModel):
    detail: Any = Field(description="what was wrong and how to fix it")


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
    allocation: StrictFloat = Field(default=None, ge=MIN_ALLOCATION, le=MAX_ALLOCATION, allow_inf_nan=False,
                                    description="share of eligible decisions assigned to treatment, in "
                                                "[0.01, 0.99] (xbotlib.core.experiments.check_allocation says why)")

    @model_validator(mode="after")
    def _something_to_change(self) -> "ExperimentPatch":
        if not self.model_fields_set:
            raise ValueError("nothing to change: give enabled (true/false) and/or allocation (between 0.01 and 0.99)")
        return self



class MetricLift(BaseModel):
    """One metric's doubly-robust lift (``xbotlib.core.decision.MetricLift``)."""
    metric: str = Field(description="fpki (primary), impressions, reward_composite or replies (guardrails)")
    label: str = Field(description="the metric in words, e.g. 'follows per 1,000 impressions'")
    role: str = Field(description="primary or guardrail")
    n_treatment: int
    n_control: int
    treatment_mean: float | None = Field(description="DR estimate of the mean under treatment")
    control_mean: float | None = Field(description="DR estimate of the mean under control")
    absolute: float | None = Field(description="treatment minus control, in the metric's units")
    absolute_ci_low: float | None = Field(description="fixed-n 95% interval, lower end")
    absolute_ci_high: float | None
    absolute_cs_low: float | None = Field(description="always-valid 95% interval (valid when read daily), lower end")
    absolute_cs_high: float | None
    relative: float | None = Field(description="relative lift as a fraction (0.12 = +12%); null when the control "
                                                "mean is not positive")
    relative_ci_low: float | None = Field(description="fixed-n 95% interval of the relative lift")
    relative_ci_high: float | None
    relative_cs_low: float | None = Field(description="always-valid 95% interval of the relative lift")
    relative_cs_high: float | None
    more_posts_per_arm: int | None = Field(description="about how many more posts per arm would detect the current "
                                                       "effect with 80% power (two-sided 5%); null for a zero effect")


class SampleRatio(BaseModel):
    n_treatment: int
    n_control: int
    expected_treatment: float = Field(description="sum of the stored propensities")
    expected_control: float
    chi2: float | None
    p_value: float | None
    flagged: bool = Field(description="true: sample ratio mismatch (p < 0.001); do not trust the figures")


class LiftDecision(BaseModel):
    verdict: str = Field(description="treatment wins, treatment loses or no detectable difference yet "
                                     "(from the always-valid interval of the primary metric)")
    line: str = Field(description="the one-line verdict, as the demo summary and the report print it")
    primary: MetricLift
    guardrails: list[MetricLift]
    srm: SampleRatio
    warnings: list[str] = Field(description="sample ratio mismatch, guardrails that got worse")
    estimator_note: str = Field(description="when DR, IPW and difference in means disagree, and whether they do here")


class LiftRow(BaseModel):
    outcome: str = Field(description="fpki, impressions, reward_composite or replies (pass-2 outcomes)")
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
    decision: LiftDecision | None = Field(description="what to do: verdict, relative lifts with fixed-n and "
                                                      "always-valid intervals, guardrails, sample ratio; null when "
                                                      "not estimable")
    table: list[LiftRow] = Field(description="the appendix: one row per (outcome, estimator), as "
                                             "xbotlib.views.experiment_lift")
