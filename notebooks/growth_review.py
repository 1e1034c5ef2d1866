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
# # Growth review: followers, FPKI, novelty, best posts, arms and timing
#
# The account's growth over the last `days` days of its data (anchored at the newest snapshot, so a
# simulated campaign shows its own last days). FPKI is follows per thousand impressions — the
# growth signal the reward weights most. Arm posteriors show what the content bandit believes
# about each hook pattern; the timing heatmap shows where in the week the reward came from.

# %% tags=["parameters"]
account_id: str = None  # None: XBOT_ACCOUNT_ID if it has data, else the account with most decisions
db_url: str = None  # None: XBOT_DATABASE_URL (set by the runner) or the embedded database
days: int = 30  # window, counted back from the newest data
top: int = 10  # posts in the top-posts table

# %%
# %matplotlib inline
from xbotlib.app import analysis

db = analysis.connect(db_url)
with db.connection() as conn:
    account = analysis.resolve_account(conn, account_id)
    world = analysis.resolve_world(conn, account)
    followers = analysis.followers_daily(conn, account, days)
    content_arms = analysis.arm_posteriors(conn, account, world, "content")
    timing_arms = analysis.arm_posteriors(conn, account, world, "timing")
    rejections = analysis.gate_rejections(conn, account)
final = analysis.window(analysis.outcomes_frame(analysis.outcomes_arrow(db, account, world)), "posted_at", days)
daily = analysis.daily_metrics(final)
analysis.report_context(f"Growth over the last {days} days of data for account **{account}** ({world} world), "
                        f"with its {top} best posts.", database=db.url, account=account, world=world)

# %%
# NBVAL_CHECK_OUTPUT
print(f"{len(followers)} days with follower snapshots, {len(final)} posts with a final outcome, "
      f"{int(content_arms['pulls'].sum())} content-arm rewards")

# %% [markdown]
# ## Followers
# End-of-day followers (line) and the day's change (bars).

# %%
analysis.table(followers)

# %%
analysis.plot_followers(followers)

# %% [markdown]
# ## FPKI and novelty by posting day
# Pooled FPKI = 1000 × Σ follows / Σ impressions of the day's posts (final outcomes).

# %%
analysis.table(daily, decimals={"fpki_pooled": 2, "fpki_mean": 2, "novelty_mean": 2, "reward_mean": 3})

# %%
analysis.plot_daily(daily, ("fpki_pooled", "novelty_mean", "reward_mean"))

# %% [markdown]
# ## Top posts by follows

# %%
analysis.table(analysis.top_posts(final, top), decimals={"fpki": 2, "reward_composite": 3})

# %% [markdown]
# ## What the bandits believe
# Posterior mean reward with a 95% interval per content arm (hook pattern); `n` is rewards seen.

# %%
analysis.plot_arm_posteriors(content_arms, "content arms (hook patterns)")

# %%
analysis.table(timing_arms, decimals={"weight": 1})

# %% [markdown]
# ## Timing
# Mean final reward by local weekday and hour; blank cells had no posts.

# %%
analysis.plot_timing_heatmap(analysis.timing_table(final, "reward_composite"))

# %% [markdown]
# ## Gate rejections
# Candidates the plan job refused (quality, duplicate, rotation gates), by reason.

# %%
analysis.table(rejections)
