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
# # Collect outcomes: what X measured for each post, as stored
#
# The collect job reads every post twice — pass 1 at T+1h, pass 2 (final) at T+24h — and stores
# impressions, engagement, follows (from X's analytics, or attributed from follower snapshots; the
# `follows_source` column says which), FPKI and the composite reward. `simulated` is true for
# everything that did not come from the real X.
#
# By default this report only **shows** what is stored. With `run_collection=True` it first runs one
# collection pass (the same code as `xbot job collect --once`) against the X your settings reach;
# if that X is not the account's world (the demo's sandbox exists only inside the demo run) or is
# unreachable, it says so and collects nothing.

# %% tags=["parameters"]
account_id: str = None  # None: XBOT_ACCOUNT_ID if it has data, else the account with most decisions
db_url: str = None  # None: XBOT_DATABASE_URL (set by the runner) or the embedded database
run_collection: bool = False  # True: run one collection pass first (reports leave it off)
latest: int = 15  # outcome rows to show

# %%
from xbotlib.app import analysis
from xbotlib.clock import SystemClock
from xbotlib.config import load_settings
from xbotlib.jobs import once

db = analysis.connect(db_url)
with db.connection() as conn:
    account = analysis.resolve_account(conn, account_id)
    world = analysis.resolve_world(conn, account)
action = "runs one collection pass, then shows" if run_collection else "shows"
analysis.report_context(f"Outcomes of account **{account}** ({world} world): this run {action} what is stored, "
                        f"with the {latest} latest outcome rows.", database=db.url, account=account, world=world)

# %% [markdown]
# ## Collection pass
# Skipped unless `run_collection=True`. The message below is the job's own result.

# %%
if run_collection:
    collection = once.collect_once(db, load_settings(), account, SystemClock())
    print(collection.message, collection.detail)
else:
    print("collection not run (run_collection=False): the tables show what is already stored")

# %% [markdown]
# ## What is stored
# Counts for the account. Every post gets at most one pass-1 and one pass-2 outcome.

# %%
# NBVAL_CHECK_OUTPUT
with db.connection() as conn:
    counts = analysis.campaign_counts(conn, account)
print(analysis.format_counts(counts))

# %% [markdown]
# ## Latest outcomes
# Newest first. `fpki` = 1000 × follows / impressions; `reward_composite` is the growth-first reward.

# %%
outcomes = analysis.outcomes_arrow(db, account, world)
analysis.table(analysis.latest_outcomes(outcomes, latest), decimals={"fpki": 2, "reward_composite": 3})

# %% [markdown]
# ## By pass and follow source
# Pass-2 rows are the final numbers the learner and the experiments use.

# %%
analysis.table(analysis.pass_summary(outcomes), decimals={"fpki_mean": 2})
