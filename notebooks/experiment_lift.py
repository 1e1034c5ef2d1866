# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: xbot (Python 3)
#     language: python
#     name: xbot
# ---

# %% [markdown]
# # Experiment lift: what to do about one experiment
#
# Each experiment randomises posts into a treatment and a control arm with a known propensity (stored
# with every assignment). The report leads with the decision on the **primary metric, follows per 1,000
# impressions (fpki)**, and checks three **guardrails**: impressions, the composite reward and replies,
# all on final (T+24h) outcomes.
#
# - **Lift** is relative (treatment over control, in %), from the doubly-robust (DR, AIPW) means of the
#   two arms, with its 95% interval.
# - **Always-valid 95%** is a confidence sequence: it stays valid however often the report is read.
#   The fixed-n interval does not — read daily, it excludes the truth on some day far more often than 5%
#   of the time (BENCHMARKS.md measures both). The verdict therefore reads the always-valid interval.
# - **More posts per arm**: about how many more would detect the current effect with 80% power.
# - **Sample ratio**: the arm counts against what the allocation leads to expect; a mismatch means the
#   figures cannot be trusted until assignment or collection is fixed.
#
# The estimators behind the figures (DR, IPW, difference in means) are in the appendix. With too few
# posts per arm it says so instead of estimating. An unknown `experiment_id` fails with the valid ids.

# %% tags=["parameters"]
account_id: str = None  # None: XBOT_ACCOUNT_ID if it has data, else the account with most decisions
db_url: str = None  # None: XBOT_DATABASE_URL (set by the runner) or the embedded database
experiment_id: str = "question_cta"  # hashtag_1 | question_cta | contrarian_reply | late_evening_slot
seed: int = 0  # cross-fitting folds of the DR estimator (0: the demo summary's and the API's)

# %%
# %matplotlib inline
import pandas as pd
from IPython.display import Markdown, display

from xbotlib.app import analysis

db = analysis.connect(db_url)
with db.connection() as conn:
    account = analysis.resolve_account(conn, account_id)
    world = analysis.resolve_world(conn, account)
    report = analysis.experiment_lift(conn, account, experiment_id, world, seed=seed)
    registry = pd.DataFrame(analysis.list_experiments(conn, account))
analysis.report_context(f"Experiment **{experiment_id}** for account **{account}** ({world} world), "
                        f"DR cross-fitting seed {seed}.", database=db.url, account=account, world=world)

# %%
Markdown(report.summary().replace("\n", "  \n"))

# %% [markdown]
# ## The decision
# The verdict line (the same the demo summary prints and `GET /api/experiments/{id}/lift` returns),
# then every metric's lift. Means are the DR estimates of each arm's mean per post.

# %%
display(Markdown(f"**{report.decision.line}**" if report.decision else f"**Not estimable yet:** {report.reason}"))
analysis.table(report.metrics_table())

# %%
srm = report.decision.srm if report.decision else None
Markdown("No sample-ratio check without estimable data." if srm is None else
         f"**{srm.describe()}**" if srm.flagged else srm.describe())

# %% [markdown]
# ## The account's experiments
# Assignments per arm so far (every assigned decision, posted or not).

# %%
analysis.table(registry.reindex(columns=["experiment_id", "applies_to", "enabled", "allocation", "n_treatment",
                                         "n_control"]), percent=["allocation"])

# %% [markdown]
# ## Sample sizes
# Posts of this experiment with a final outcome, per arm, and their raw means.

# %%
# NBVAL_CHECK_OUTPUT
print("posts with a final outcome: " + ", ".join(f"{r.arm} {r.n}" for r in report.arm_sizes().itertuples()))

# %%
analysis.table(report.arm_sizes(), decimals={"reward_composite_mean": 3, "fpki_mean": 2, "impressions_mean": 0})

# %% [markdown]
# ## Appendix: the estimators
# `estimate` is treatment − control in each metric's own units; `control_mean` puts it in proportion.
# DR leads the report; IPW and the difference in means are shown to check it.

# %%
Markdown(report.estimator_note())   # a paragraph: it wraps with the page (printed, it ran off the right edge)

# %%
analysis.table(report.table)

# %%
analysis.plot_forest(report.table, report.reason)

# %% [markdown]
# ## Diagnostics
# **Balance**: standardised mean differences of the covariates between arms; randomisation keeps
# them near 0 in large samples (|SMD| < 0.1 is the usual rule of thumb; small samples wander more).
# **Overlap**: the propensities behind the weights, and how concentrated the weights are
# (`ess` = effective sample size).

# %%
analysis.plot_balance(report.balance)

# %%
analysis.table(report.overlap, percent=["max_weight_share"], decimals={"ess": 1})

# %%
analysis.plot_overlap(report.frame)
