"""Small plots for the notebooks: each returns a ``matplotlib.figure.Figure`` built without pyplot (no
global state, nothing shown twice); with no data it returns a figure that says so instead of raising.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
import pandas as pd
from matplotlib.figure import Figure


def _figure(width: float = 7.0, height: float = 3.5):
    fig = Figure(figsize=(width, height), layout="constrained")
    return fig, fig.add_subplot()


def message_figure(message: str, title: str = ""):
    """A small figure that states why there is no plot (no data yet) — a report never silently omits one."""
    fig, ax = _figure(6.0, 1.6)
    ax.axis("off")
    ax.text(0.5, 0.5, message, ha="center", va="center", wrap=True, fontsize=10)
    if title:
        ax.set_title(title)
    return fig


def plot_followers(followers: pd.DataFrame):
    """Followers at the end of each day, with the daily change as bars."""
    if followers.empty:
        return message_figure("no follower snapshots yet", "followers")
    fig, ax = _figure()
    ax.plot(followers["day"], followers["followers"], marker="o", color="tab:blue", label="followers")
    ax.set_ylabel("followers")
    ax2 = ax.twinx()
    ax2.bar(followers["day"], followers["gained"], alpha=0.3, color="tab:green", width=0.6, label="gained that day")
    ax2.set_ylabel("gained per day")
    ax.set_title("followers over time" + (" (simulated)" if bool(followers["simulated"].any()) else ""))
    fig.autofmt_xdate()
    return fig


def plot_daily(daily: pd.DataFrame, columns: Sequence[str] = ("fpki_pooled", "novelty_mean")):
    """One panel per column of ``daily_metrics`` over the posting day."""
    if daily.empty:
        return message_figure("no final (T+24h) outcomes yet", ", ".join(columns))
    fig = Figure(figsize=(7.0, 2.4 * len(columns)), layout="constrained")
    axes = fig.subplots(len(columns), 1, sharex=True, squeeze=False)[:, 0]
    for ax, col in zip(axes, columns):
        ax.plot(daily["day"], daily[col], marker="o")
        ax.set_ylabel(col)
        ax.grid(alpha=0.3)
    axes[0].set_title("by posting day")
    fig.autofmt_xdate()
    return fig


def plot_forest(table: pd.DataFrame, reason: str | None = None):
    """Estimates with 95% intervals, one row per (outcome, estimator), one panel per outcome."""
    if table.empty:
        return message_figure(f"not estimable yet: {reason}" if reason else "no estimates", "lift")
    outcomes = list(dict.fromkeys(table["outcome"]))
    per_panel = max(len(table[table["outcome"] == o]) for o in outcomes)
    fig = Figure(figsize=(3.6 * len(outcomes), 1.2 + 0.5 * per_panel), layout="constrained")
    axes = fig.subplots(1, len(outcomes), squeeze=False)[0]
    for ax, outcome in zip(axes, outcomes):
        rows = table[table["outcome"] == outcome].reset_index(drop=True)
        y = np.arange(len(rows))[::-1]
        ax.errorbar(rows["estimate"], y, xerr=[rows["estimate"] - rows["ci_low"], rows["ci_high"] - rows["estimate"]],
                    fmt="o", capsize=4)
        ax.axvline(0.0, color="grey", lw=1, ls="--")
        ax.set_yticks(y, rows["estimator"])
        ax.set_title(f"lift on {outcome}")
        ax.set_xlabel("treatment − control (95% CI)")
    return fig


def plot_overlap(frame: pd.DataFrame):
    """Histogram of P(treatment) by arm: the overlap the IPW/AIPW weights rely on."""
    if frame.empty:
        return message_figure("no assigned posts with a final outcome yet", "propensity overlap")
    fig, ax = _figure(6.0, 3.0)
    bins = np.linspace(0, 1, 21)
    for arm, colour in (("control", "tab:blue"), ("treatment", "tab:orange")):
        ax.hist(frame.loc[frame["arm"] == arm, "propensity"], bins=bins, alpha=0.6, color=colour, label=arm)
    ax.set_xlabel("P(treatment) at assignment")
    ax.set_ylabel("posts")
    ax.set_title("propensity overlap")
    ax.legend()
    return fig


def plot_balance(balance: pd.DataFrame, threshold: float = 0.1):
    """Standardised mean differences per covariate (raw and IPW-weighted), with the ±threshold band."""
    if balance.empty:
        return message_figure("no covariates to compare yet", "covariate balance")
    fig, ax = _figure(6.0, 0.9 + 0.28 * len(balance))
    y = np.arange(len(balance))[::-1]
    ax.scatter(balance["smd"], y, label="raw", marker="o")
    ax.scatter(balance["smd_weighted"], y, label="IPW-weighted", marker="x")
    ax.axvspan(-threshold, threshold, color="green", alpha=0.1)
    ax.axvline(0.0, color="grey", lw=1)
    ax.set_yticks(y, balance["covariate"])
    ax.set_xlabel("standardised mean difference (treatment − control)")
    ax.set_title("covariate balance")
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0))  # outside: never on top of a covariate
    return fig


def plot_timing_heatmap(table: pd.DataFrame, value: str = "reward_composite"):
    """The weekday × local hour table as a heatmap; blank cells had no posts."""
    if table.empty or table.shape[1] == 0 or table.isna().all().all():
        return message_figure("no final outcomes to place on the week yet", "timing")
    fig, ax = _figure(7.0, 3.2)
    image = ax.imshow(table.to_numpy(dtype=float), aspect="auto", cmap="viridis")
    ax.set_xticks(range(table.shape[1]), [str(c) for c in table.columns])
    ax.set_yticks(range(table.shape[0]), list(table.index))
    ax.set_xlabel("local hour")
    ax.set_title(f"mean {value} by weekday and hour")
    fig.colorbar(image, ax=ax, label=value)
    return fig


def plot_arm_posteriors(posteriors: pd.DataFrame, title: str = "content arms"):
    """Posterior mean reward of each arm with its 95% interval."""
    if posteriors.empty:
        return message_figure("no bandit rewards yet", title)
    fig, ax = _figure(6.0, 0.9 + 0.4 * len(posteriors))
    y = np.arange(len(posteriors))[::-1]
    m = posteriors["posterior_mean"]
    ax.errorbar(m, y, xerr=[m - posteriors["ci_low"], posteriors["ci_high"] - m], fmt="o", capsize=4)
    ax.set_yticks(y, [f"{a} (n={p})" for a, p in zip(posteriors["arm"], posteriors["pulls"])])
    ax.set_xlabel("posterior mean reward (95% interval)")
    ax.set_title(title)
    return fig


def plot_model_comparison(comparison: pd.DataFrame):
    """Cross-validated score of each model beside its baseline, one panel per target."""
    scored = comparison.dropna(subset=["score", "baseline_score"])
    if scored.empty:
        return message_figure("no model could be scored yet (too few final outcomes)", "predictors")
    targets = list(dict.fromkeys(scored["target"]))
    fig = Figure(figsize=(3.6 * len(targets), 3.0), layout="constrained")
    axes = fig.subplots(1, len(targets), squeeze=False)[0]
    for ax, target in zip(axes, targets):
        rows = scored[scored["target"] == target]
        x = np.arange(len(rows))
        ax.bar(x - 0.2, rows["score"], width=0.4, label="model")
        ax.bar(x + 0.2, rows["baseline_score"], width=0.4, label="baseline")
        ax.set_xticks(x, rows["model"])
        ax.axhline(0.0, color="grey", lw=1)
        ax.set_title(f"{target}\n{rows['metric'].iloc[0]} (higher is better)")
        ax.legend()
    return fig
