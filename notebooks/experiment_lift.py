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
# # Experiment lift: doubly-robust estimate of one experiment's effect
#
# Each experiment randomises posts into a treatment and a control arm with a known propensity
# (stored with every assignment). This report estimates the average effect of the treatment on the
# final (T+24h) `reward_composite` and `fpki` three ways:
#
# - **difference in means** — treated mean minus control mean;
# - **IPW** (Hajek) — the same, weighted by the stored propensities;
# - **DR (AIPW)** — IPW augmented with cross-fitted outcome models on pre-treatment covariates:
#   unbiased like IPW, usually tighter.
#
# Intervals are 95%. With too few posts per arm it says so instead of estimating. An unknown
# `experiment_id` fails with the list of valid ids.

# %% tags=["parameters"]
account_id: str = None  # None: XBOT_ACCOUNT_ID if it has data, else the account with most decisions
db_url: str = None  # None: XBOT_DATABASE_URL (set by the runner) or the embedded database
experiment_id: str = "question_cta"  # hashtag_1 | question_cta | contrarian_reply | late_evening_slot
seed: int = 0  # cross-fitting folds of the DR estimator

# %%
# %matplotlib inline
import pandas as pd

from xbotlib.app import analysis

db = analysis.connect(db_url)
with db.connection() as conn:
    account = analysis.resolve_account(conn, account_id)
    world = analysis.resolve_world(conn, account)
    report = analysis.experiment_lift(conn, account, experiment_id, world, seed=seed)
    registry = pd.DataFrame(analysis.list_experiments(conn, account))
print(f"account {account}, world {world}")
print(report.summary())

# %% [markdown]
# ## The account's experiments
# Assignments per arm so far (every assigned decision, posted or not).

# %%
registry.reindex(columns=["experiment_id", "applies_to", "enabled", "allocation", "n_treatment", "n_control"])

# %% [markdown]
# ## Sample sizes
# Posts of this experiment with a final outcome, per arm, and their raw means.

# %%
# NBVAL_CHECK_OUTPUT
print(report.arm_sizes()[["arm", "n"]].to_string(index=False))

# %%
report.arm_sizes()

# %% [markdown]
# ## Estimates
# `estimate` is treatment − control; `control_mean` puts it in proportion.

# %%
report.table

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
report.overlap

# %%
analysis.plot_overlap(report.frame)
