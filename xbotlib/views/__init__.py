"""Read models shared by the admin API, the demo's terminal summary and the notebooks.

Each answers one question from the database (through ``xbotlib.store``) and the pure core, so the
API, the summary and a report show the same figures for the same data.

The read models the API serves are pydantic models, one definition each: the API returns them as
they are (they are its response schemas, field descriptions included), and the summary and the
notebooks read the same objects. One module per question:

- ``accounts``: the account a figure is about (``account``), its "now" (``world_now``: a simulated
  world's clock is its latest event; both at once: ``account_at``) and its UTC day (``day_start``);
- ``learning``: ``learning_status`` (models, exploration, arms, next training; with the account and its "now" in
  the same statement: ``learning_status_at``) and ``growth_model_view``;
- ``followers``: ``growth`` (followers, their change, 7-day FPKI, top posts);
- ``operations``: ``metrics`` (today's operating figures, OpenAI spend);
- ``experiment_reports``: ``experiments`` and ``experiment_lift`` (``LiftReport``);
- ``summary``: ``account_summary`` for ``xbot demo`` and ``fpki_estimates``.

Callers use the names below from the package (``from xbotlib import views; views.growth(...)``).
"""
from __future__ import annotations

from xbotlib.views.accounts import account, account_at, day_start, default_account, world_now
from xbotlib.views.experiment_reports import _LIFT_COLUMNS, LiftReport, experiment_lift, experiments
from xbotlib.views.followers import (DAILY_SERIES_DAYS, EXCERPT_CHARS, TOP_POSTS_LIMIT, TOP_POSTS_WINDOW_DAYS,
                                     DailyFollowers, Growth, TopPost, final_outcomes_7d, followers_now, growth,
                                     growth_at)
from xbotlib.views.learning import (NOT_IN_MEMORY, OUTCOMES_WINDOW_DAYS, POSTERIOR_METHOD, ArmSummary,
                                    GrowthModelView, LearningStatus, ModelEffect, ModelVersion, NextTraining,
                                    OutcomesByWorld, StatusReads, arm_summaries, growth_model_view,
                                    learning_reads_at, learning_status, learning_status_at, learning_version_at,
                                    model_effects, next_training, status_of)
from xbotlib.views.operations import (JOBS, QUEUE_STATUSES, JobLastRun, Metrics, OpenAISpend, metrics,
                                      openai_spend)
from xbotlib.views.summary import AccountSummary, account_summary, fpki_estimates, serving_lines

__all__ = [
    "account", "account_at", "day_start", "default_account", "world_now",
    "ArmSummary", "GrowthModelView", "LearningStatus", "ModelEffect", "ModelVersion", "NextTraining",
    "OutcomesByWorld", "OUTCOMES_WINDOW_DAYS", "POSTERIOR_METHOD", "arm_summaries", "growth_model_view",
    "learning_status", "learning_status_at", "learning_reads_at", "learning_version_at", "status_of", "StatusReads", "NOT_IN_MEMORY",
    "model_effects", "next_training",
    "DailyFollowers", "Growth", "TopPost", "DAILY_SERIES_DAYS", "EXCERPT_CHARS", "TOP_POSTS_LIMIT",
    "TOP_POSTS_WINDOW_DAYS", "final_outcomes_7d", "followers_now", "growth", "growth_at",
    "JobLastRun", "Metrics", "OpenAISpend", "JOBS", "QUEUE_STATUSES", "metrics", "openai_spend",
    "LiftReport", "_LIFT_COLUMNS", "experiment_lift", "experiments",
    "AccountSummary", "account_summary", "fpki_estimates", "serving_lines",
]
