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
# # Explore outcomes: Arrow, DuckDB and polars over the account's outcomes
#
# The starting point for your own questions. The outcomes (both passes, joined to each decision and
# its post) are pulled from PostgreSQL into one Arrow table, `outcomes_tbl`, by
# `analysis.outcomes_arrow` (ADBC; psycopg COPY if ADBC is unavailable). Then:
#
# - **DuckDB** queries it in-process by name: `duckdb.sql("SELECT … FROM outcomes_tbl")` (no copy);
# - **polars**: `pl.from_arrow(outcomes_tbl)`;
# - **pandas**: `outcomes_tbl.to_pandas()`.
#
# Useful columns: `collected_pass` (1 = T+1h, 2 = final), `hook_pattern`, `topic`, `local_hour`,
# `local_weekday` (0 = Monday), `impressions`, `follows`, `fpki`, `reward_composite`, `simulated`.
# Aggregate FPKI as 1000 × sum(follows) / sum(impressions) rather than averaging it per post.
# Open this notebook in `xbot lab` and edit freely; the scheduled copy stays as it is.

# %% tags=["parameters"]
account_id: str = None  # None: XBOT_ACCOUNT_ID if it has data, else the account with most decisions
db_url: str = None  # None: XBOT_DATABASE_URL (set by the runner) or the embedded database

# %%
import duckdb
import polars as pl

from xbotlib.app import analysis

db = analysis.connect(db_url)
with db.connection() as conn:
    account = analysis.resolve_account(conn, account_id)
outcomes_tbl = analysis.outcomes_arrow(db, account)
analysis.report_context(f"Outcomes of account **{account}**, both worlds (the `simulated` column tells them apart), "
                        "as one Arrow table for DuckDB and polars.", database=db.url, account=account,
                        world="live + sandbox")

# %%
# NBVAL_CHECK_OUTPUT
print(f"{outcomes_tbl.num_rows} outcome rows, {outcomes_tbl.num_columns} columns")
print(outcomes_tbl.group_by("collected_pass").aggregate([("outcome_id", "count")]).sort_by("collected_pass").to_pylist())

# %% [markdown]
# ## DuckDB: FPKI by hook pattern (final outcomes)

# %%
analysis.table(duckdb.sql("""
    SELECT hook_pattern, count(*) AS posts, sum(impressions) AS impressions, sum(follows) AS follows,
           round(1000 * sum(follows) / greatest(1, sum(impressions)), 3) AS fpki
      FROM outcomes_tbl WHERE collected_pass = 2
     GROUP BY hook_pattern ORDER BY fpki DESC, hook_pattern
""").df(), decimals={"fpki": 2})

# %%
# the account's own topics (its profile's; NULL: no topic detected), whatever its niche
analysis.table(duckdb.sql("""
    SELECT coalesce(topic, '(none)') AS topic, count(*) AS posts, sum(impressions) AS impressions,
           sum(follows) AS follows, round(1000 * sum(follows) / greatest(1, sum(impressions)), 3) AS fpki
      FROM outcomes_tbl WHERE collected_pass = 2
     GROUP BY 1 ORDER BY fpki DESC, topic
""").df(), decimals={"fpki": 2})

# %% [markdown]
# ## DuckDB: FPKI by local posting hour

# %%
analysis.table(duckdb.sql("""
    SELECT local_hour, count(*) AS posts, round(1000 * sum(follows) / greatest(1, sum(impressions)), 3) AS fpki,
           round(avg(reward_composite), 4) AS mean_reward
      FROM outcomes_tbl WHERE collected_pass = 2
     GROUP BY local_hour ORDER BY local_hour
""").df(), decimals={"fpki": 2, "mean_reward": 3})

# %% [markdown]
# ## The same in polars
# Hook × hour, final outcomes; `pivot` gives the hour-by-hook table. Shown as polars shows them (shape
# and column types on top; `null` where a hook was never posted at that hour).

# %%
by_hook_hour = (
    pl.from_arrow(outcomes_tbl)
    .filter(pl.col("collected_pass") == 2)
    .group_by("hook_pattern", "local_hour")
    .agg(pl.len().alias("posts"), (1000 * pl.col("follows").sum() / pl.col("impressions").sum().clip(1)).round(2).alias("fpki"))
    .sort("hook_pattern", "local_hour")
)
by_hook_hour

# %%
by_hook_hour.pivot(on="hook_pattern", index="local_hour", values="fpki").sort("local_hour")

# %% [markdown]
# ## T+1h vs T+24h
# How much of a post's final reach it had after one hour (DuckDB joins the two passes).

# %%
analysis.table(duckdb.sql("""
    SELECT p2.hook_pattern, count(*) AS posts,
           round(avg(p1.impressions::double / greatest(1, p2.impressions)), 3) AS share_of_reach_at_1h
      FROM outcomes_tbl p1 JOIN outcomes_tbl p2 ON p1.decision_id = p2.decision_id
     WHERE p1.collected_pass = 1 AND p2.collected_pass = 2
     GROUP BY p2.hook_pattern ORDER BY p2.hook_pattern
""").df(), percent=["share_of_reach_at_1h"])
