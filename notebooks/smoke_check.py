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
# # Smoke check: the notebook runner, the database and a plot
#
# A tiny notebook that proves the pipeline works end to end: papermill injects the
# parameters, the kernel reaches xbot's database through `XBOT_DATABASE_URL`, a table and a
# plot render into the offline HTML report. `fail=True` makes it raise on purpose, to show
# what a failed run looks like.

# %% tags=["parameters"]
message: str = "hello"
repeat: int = 2
fail: bool = False

# %%
import matplotlib.pyplot as plt
import pandas as pd
from IPython.display import display

from xbotlib.app.analysis import report_context, table
from xbotlib.app.reports.runner import open_database
from xbotlib.store.db import server_identity
from xbotlib.store.runs import notebook_runs_by_status

# %% [markdown]
# ## Database

# %%
with open_database() as db, db.connection() as conn:
    runs = notebook_runs_by_status(conn)
    server = server_identity(conn)
display(report_context(f"Smoke check: message {message!r} repeated {repeat} times"
                       f"{', failing on purpose (fail=True)' if fail else ''}.", database=db.url))
print(f"connected to database {server['database']}")
display(table(pd.DataFrame(runs, columns=["status", "runs"]), caption="notebook runs recorded in this database"))

# %% [markdown]
# ## Parameters

# %%
for i in range(repeat):
    print(f"smoke message {i + 1}/{repeat}: {message}")

# %%
fig, ax = plt.subplots(figsize=(4, 2.5))
ax.bar([str(i + 1) for i in range(repeat)], [len(message)] * repeat)
ax.set_xlabel("repetition")
ax.set_ylabel("message length")
ax.set_title("smoke check")
plt.show()

# %%
if fail:
    raise RuntimeError(f"smoke_check was asked to fail (fail=True, message={message!r})")
print("smoke check passed")
