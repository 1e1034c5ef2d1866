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
# # Train predictors: ridge vs LightGBM against the predict-the-mean baseline
#
# The learn job trains a content predictor of the composite reward (ridge, or LightGBM when it
# cross-validates no worse) and scores P(follows ≥ 1) with a logistic model. Here every candidate is
# cross-validated on the account's final outcomes and set beside a baseline that predicts the
# training folds' mean (or base rate). A model is only worth serving if it beats that baseline.
#
# `persist=True` then runs the learn job once (the daemon's own rules: it stores new versions only
# when enough fresh outcomes arrived). Scheduled reports leave it False: training is the learn
# job's work, the report shows how well it can do.

# %% tags=["parameters"]
account_id: str = None  # None: XBOT_ACCOUNT_ID if it has data, else the account with most decisions
db_url: str = None  # None: XBOT_DATABASE_URL (set by the runner) or the embedded database
persist: bool = False  # True: run the learn job once and store new versions if it trains
seed: int = 0  # cross-validation folds

# %%
# %matplotlib inline
from IPython.display import Markdown, display

from xbotlib.app import analysis
from xbotlib.clock import SystemClock
from xbotlib.config import load_settings
from xbotlib.jobs import once

db = analysis.connect(db_url)
with db.connection() as conn:
    account = analysis.resolve_account(conn, account_id)
    world = analysis.resolve_world(conn, account)
    comparison = analysis.predictor_comparison(conn, account, world, seed=seed)
action = "runs the learn job once (persist=True)" if persist else "stores no model (persist=False)"
analysis.report_context(f"Predictors for account **{account}** ({world} world): every candidate cross-validated "
                        f"against the predict-the-mean baseline (fold seed {seed}); this run {action}.",
                        database=db.url, account=account, world=world)

# %% [markdown]
# ## Training samples
# One sample per final (T+24h) outcome of this world, weighted by exposure.

# %%
# NBVAL_CHECK_OUTPUT
print(comparison[["target", "model", "n"]].to_string(index=False))

# %% [markdown]
# ## Cross-validated scores
# `score` is R² for the reward and minus the log-loss for follows: higher is better for both.
# `beats_baseline` is False where the model does no better than predicting the mean.

# %%
analysis.table(comparison, decimals=3)

# %%
analysis.plot_model_comparison(comparison)

# %% [markdown]
# ## Stored versions
# What the learn job has saved (`predictor:content:vN`, `predictor:timing:vN`). A new version is
# served only if its cross-validated score beats both the predict-the-mean baseline and the active
# version; otherwise it is stored as **rejected** with the reason, and the active version (or, with
# none, the bandit's own estimate) keeps ranking the posts.

# %%
with db.connection() as conn:
    versions = analysis.model_versions(conn, account)
rejected = versions[versions["status"] == "rejected"]
print(f"{len(versions)} stored versions: " + ", ".join(f"{n} {s}" for s, n in versions["status"].value_counts().items())
      if len(versions) else "no stored versions yet")
display(Markdown("\n".join(f"- {line}" for line in analysis.serving_lines(versions.to_dict("records")))))
analysis.table(versions.drop(columns=["is_active", "rejected_reason"]), decimals=3)

# %% [markdown]
# ### Rejected versions and why

# %%
if len(rejected):
    display(analysis.table(rejected[["predictor_key", "algorithm", "cv_score", "baseline_score", "rejected_reason",
                                     "trained_at"]], decimals=3))
else:
    print("no version was rejected: every stored version beat the baseline and the version before it")

# %% [markdown]
# ## Persist
# Runs only with `persist=True`.

# %%
if persist:
    result = once.persist_predictors(db, load_settings(), account, world, SystemClock())
    print(f"learn job: {result.status} {result.reason or ''}", result.detail)
else:
    print("not persisted (persist=False): no model version was written")
