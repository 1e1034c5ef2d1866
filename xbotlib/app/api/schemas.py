"""The admin API's own request and response models (pydantic): the parts of its JSON contract, and of
its OpenAPI schema, that no read model answers — errors, the experiment switches and the lift table.

The figures it serves (``LearningStatus``, ``Growth``, ``Metrics`` and their parts) are the pydantic
read models of ``xbotlib.views``, used as they are for the routes' ``response_model``.
"""
from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictFloat, model_validator


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
