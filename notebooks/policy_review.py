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
# # Policy review: a candidate policy tried on the account's past decisions
#
# What would a candidate policy (a fixed rule, `random`, the old `heuristic`, a learner variant) have
# earned per post, judged from the posts the account's own policy made? Every decision stored the
# probability it was chosen with, so the candidate's value can be estimated off-policy: **DR** (read it
# first), **IPW** and **SNIPW**, each with a 95% interval. The value is follows per post at the final
# (24-hour) read. `xbot ope` prints the same table; `xbotlib.core.ope` explains the estimators and
# `xbotlib.core.ope_replay` what is reconstructed of each decision and what is assumed.

# %% tags=["parameters"]
account_id: str = None  # None: XBOT_ACCOUNT_ID if it has data, else the account with most decisions
db_url: str = None  # None: XBOT_DATABASE_URL (set by the runner) or the embedded database
policy: str = "heuristic"  # the candidate: xbot, random, heuristic, fixed (with `fixed`), oracle (sandbox)
fixed: str = None  # HOOK:HOUR for policy "fixed", e.g. "question:19"
draws: int = 40  # calls of the candidate per decision to read its probabilities
seed: int = 0  # seed of the candidate's draws and of the reward model's folds

# %%
# %matplotlib inline
from xbotlib.app import analysis
from xbotlib.app.analysis.ope import parse_arm, plot_review, review_or_reason
from xbotlib.config import load_settings

db = analysis.connect(db_url)
with db.connection() as conn:
    account = analysis.resolve_account(conn, account_id)
    world = analysis.resolve_world(conn, account)
    review, reason = review_or_reason(conn, load_settings(), account, policy, fixed=parse_arm(fixed), draws=draws,
                                      seed=seed, world=world)
analysis.report_context(f"Candidate **{policy}**{' ' + fixed if fixed else ''} judged on the logged post decisions "
                        f"of account **{account}** ({world} world).", database=db.url, account=account, world=world)

# %%
# NBVAL_CHECK_OUTPUT
print(f"{review.overlap.n} post decisions evaluated" if review else f"nothing to evaluate: {reason}")

# %% [markdown]
# ## Estimated value per post
# `ess` is the effective sample size of the importance weights; when it is small, or the candidate puts
# much of its choice where the log never went, the warnings below say the estimate leans on DR's model.

# %%
analysis.table(review.table(), decimals=3) if review else reason

# %%
print("\n".join(review.warnings) if review and review.warnings else "no overlap warnings")

# %%
plot_review(review, reason)
