"""Data access and small plots for the research notebooks (``notebooks/*.py``): read-only frames and plots.

This package is the notebooks' one entry: they ``from xbotlib.app import analysis`` and call
``analysis.X``; every name they use is re-exported here, so the modules behind it can move without
touching a notebook. Notebooks stay short and linear: every query, frame and figure they show comes
from here (the queries themselves are functions of ``xbotlib.store``).

- ``connect``, ``resolve_account``, ``resolve_world``: which database, account and world a report is about.
- ``outcomes_arrow``: outcomes joined to their decision and post, pulled from PostgreSQL into an Arrow
  table (ADBC, or psycopg ``COPY … TO STDOUT`` as the fallback; both give ``OUTCOME_SCHEMA``), ready for
  DuckDB (``duckdb.sql("… FROM outcomes_tbl")``) and polars (``pl.from_arrow``) in-process.
- Frames (pandas): followers by day, FPKI/novelty by day, top posts, arm posteriors, the timing table
  (weekday × local hour), model versions, gate rejections, predictor comparison, experiment lift.
- Tables and prose for people: ``table`` (a pandas Styler: no index, rounding, percentages, times to
  the minute) and ``report_context`` (a report's opening sentence with its database, account and world).
- Plots: each returns a ``matplotlib.figure.Figure`` built without pyplot (no global state, nothing
  shown twice); with no data it returns a figure that says so instead of raising.

Modules: ``frames`` (reads and frames), ``models`` (predictor versions and comparison), ``plots``,
``tables`` (formatting for people).
The experiment lift report is ``xbotlib.views.experiment_lift`` (shared with the API and the demo) and the
experiment registry ``xbotlib.store.experiments.list_experiments``, re-exported here as
``experiment_lift`` and ``list_experiments``, and which predictor version serves is ``views.serving_lines``
(the demo's summary says the same). Nothing here runs a job: the notebooks that can train or
collect on request call ``xbotlib.jobs.once``.

Time windows (``days``) are anchored at the newest row of the data, not at the wall clock, so a
report on a simulated campaign (whose clock ran in 2026-01) shows its last ``days`` days.
Nothing here invents a number: an empty table stays empty, a lift that cannot be estimated
carries the estimator's reason instead of an estimate.
"""
from __future__ import annotations

from xbotlib.app.analysis.frames import (WEEKDAYS, arm_posteriors, campaign_counts, connect, daily_metrics,
                                         followers_daily, format_counts, gate_rejections, latest_outcomes,
                                         outcomes_arrow, outcomes_frame, pass_summary, resolve_account, timing_table,
                                         top_posts, window)
from xbotlib.app.analysis.models import beats, model_versions, predictor_comparison
from xbotlib.app.analysis.plots import (message_figure, plot_arm_posteriors, plot_balance, plot_daily, plot_followers,
                                        plot_forest, plot_model_comparison, plot_overlap, plot_timing_heatmap)
from xbotlib.app.analysis.tables import report_context, table
from xbotlib.store.experiments import list_experiments
from xbotlib.store.outcomes_arrow import OUTCOME_SCHEMA
from xbotlib.store.worlds import resolve_world
from xbotlib.views import experiment_lift, serving_lines

__all__ = [
    # database, account, world
    "connect", "resolve_account", "resolve_world",
    # tables and prose for people
    "table", "report_context",
    # outcomes and frames
    "OUTCOME_SCHEMA", "WEEKDAYS", "outcomes_arrow", "outcomes_frame", "latest_outcomes", "window",
    "campaign_counts", "format_counts", "pass_summary", "followers_daily", "daily_metrics", "top_posts",
    "timing_table", "arm_posteriors", "gate_rejections",
    # predictors
    "beats", "model_versions", "predictor_comparison", "serving_lines",
    # experiments
    "experiment_lift", "list_experiments",
    # plots
    "message_figure", "plot_followers", "plot_daily", "plot_forest", "plot_overlap", "plot_balance",
    "plot_timing_heatmap", "plot_arm_posteriors", "plot_model_comparison",
]
