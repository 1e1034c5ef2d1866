"""Reads and frames for the research notebooks: which database, account and world; the outcomes as
Arrow; counts; growth frames (pandas). Every query is a function of ``xbotlib.store``; this module
only shapes what those return.

Time windows (``days``) are anchored at the newest row of the data, not at the wall clock, so a
report on a simulated campaign (whose clock ran in 2026-01) shows its last ``days`` days. Where a
notebook needs "now" (e.g. for a read model of ``xbotlib.views``), ``world_now`` gives the same one the
admin API uses: the wall clock for the live world, a simulated world's latest event.
"""
from __future__ import annotations

import os
from typing import Mapping

import pandas as pd
import pyarrow as pa

from xbotlib import views
from xbotlib.app.reports.runner import open_database
from xbotlib.clock import SystemClock
from xbotlib.config import ConfigError, load_settings
from xbotlib.core.bandit import posterior
from xbotlib.store.arms import load_arms
from xbotlib.store.db import Database
from xbotlib.store.gates import gate_rejections_by_reason
from xbotlib.store.outcomes import account_data_counts, followers_by_local_day
from xbotlib.store.outcomes_arrow import outcomes_arrow_adbc, outcomes_arrow_copy
from xbotlib.store.queue import decisions_per_account
from xbotlib.store.worlds import check_world

try:
    import adbc_driver_postgresql.dbapi as adbc
except ImportError:  # the COPY path reads the same rows without it (see outcomes_arrow)
    adbc = None

WEEKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")


# ----------------------------------------------------------------------------- database, account, world

def connect(db_url: str | None = None) -> Database:
    """xbot's database: ``db_url``, else XBOT_DATABASE_URL (the runner sets it), else the embedded one."""
    if db_url:
        return Database.from_url(db_url, pool_max=4)
    return open_database()


def resolve_account(conn, account_id: str | None = None, *, preferred: str | None = None) -> str:
    """The account a report is about.

    ``account_id`` when given (it must exist in ``accounts`` or have decisions); else ``preferred``
    (default: XBOT_ACCOUNT_ID from the settings) when that account has decisions; else the account
    with the most decisions. Raises ``LookupError`` when the database holds no account data at all.
    """
    counts = decisions_per_account(conn)
    if not counts:
        raise LookupError("this database holds no account data yet (run `xbot demo` for a simulated campaign, "
                          "or let `xbot run` plan and post first)")
    listing = ", ".join(f"{a} ({n} decisions)" for a, n in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))
    if account_id:
        if account_id not in counts:
            raise LookupError(f"unknown account_id {account_id!r} (accounts in this database: {listing})")
        return account_id
    if preferred is None:
        preferred = os.environ.get("XBOT_ACCOUNT_ID") or _settings_account()
    if preferred and counts.get(preferred, 0) > 0:
        return preferred
    return max(sorted(counts), key=lambda a: counts[a])


def _settings_account() -> str | None:
    try:
        return load_settings().account_id
    except ConfigError:  # a broken .env must not hide the data: fall back to the busiest account
        return None


def world_now(conn, account_id: str, world: str):
    """'Now' for figures of ``world``, as the admin API reads it (``xbotlib.views.world_now``): the wall
    clock for the live world, the account's latest event in a simulated one."""
    return views.world_now(conn, account_id, world, SystemClock().now())


# ----------------------------------------------------------------------------- outcomes into Arrow

def outcomes_arrow(db: Database, account_id: str, world: str | None = None, *, method: str = "auto") -> pa.Table:
    """Every outcome row (both passes) of the account joined to its decision and post, as Arrow.

    Parameters
    ----------
    world : 'live' or 'sandbox' to keep one world; None = both (the ``simulated`` column says which).
    method : 'adbc' (adbc-driver-postgresql: the result arrives as Arrow batches, no Python rows),
        'copy' (psycopg ``COPY (…) TO STDOUT`` as CSV, parsed by pyarrow), or 'auto' (ADBC, and COPY
        when the ADBC driver is missing or cannot use the URL).

    Returns a table with ``OUTCOME_SCHEMA``, ordered by posted_at, tweet_id, collected_pass.
    """
    if method not in ("auto", "adbc", "copy"):
        raise ValueError(f"method must be 'auto', 'adbc' or 'copy', got {method!r}")
    if world is not None:
        check_world(world)
    if method in ("auto", "adbc"):
        try:
            return _outcomes_adbc(db.url, account_id, world)
        except ImportError:
            if method == "adbc":
                raise
        except Exception as exc:  # the driver refused the URL or the server: COPY reads the same rows
            if method == "adbc" or not _is_adbc_error(exc):
                raise
    with db.connection() as conn:
        return outcomes_arrow_copy(conn, account_id, world)


def _is_adbc_error(exc: Exception) -> bool:
    return type(exc).__module__.startswith(("adbc_driver", "adbc_driver_manager"))


def _outcomes_adbc(url: str, account_id: str, world: str | None) -> pa.Table:
    if adbc is None:
        raise ImportError("adbc-driver-postgresql is not installed (method='copy' reads the same rows)")
    # libpq URI as-is: the embedded server's is postgresql://postgres:@/db?host=/socket/dir, which libpq reads
    with adbc.connect(url) as conn:
        return outcomes_arrow_adbc(conn, account_id, world)


def outcomes_frame(table: pa.Table, *, final_only: bool = True) -> pd.DataFrame:
    """The Arrow outcomes as pandas; ``final_only`` keeps the T+24h (pass 2) rows, one per post."""
    df = table.to_pandas()
    return df[df["collected_pass"] == 2].reset_index(drop=True) if final_only else df


def latest_outcomes(table: pa.Table, n: int = 15) -> pd.DataFrame:
    """The ``n`` most recently collected outcome rows, newest first, with the columns a reader checks."""
    cols = ["collected_at", "collected_pass", "posted_at", "decision_type", "hook_pattern", "impressions", "likes",
            "retweets", "follows", "follows_source", "fpki", "reward_composite", "simulated"]
    df = table.to_pandas()
    return df.sort_values(["collected_at", "outcome_id"], ascending=False).head(n)[cols].reset_index(drop=True)


def window(df: pd.DataFrame, column: str, days: int | None) -> pd.DataFrame:
    """Rows whose ``column`` is within ``days`` of the newest value (all rows when days is None)."""
    if days is None or df.empty:
        return df
    if days < 1:
        raise ValueError(f"days must be at least 1, got {days!r}")
    newest = df[column].max()
    return df[df[column] > newest - pd.Timedelta(days=days)].reset_index(drop=True)


# ----------------------------------------------------------------------------- counts (deterministic per seed)

def campaign_counts(conn, account_id: str) -> dict[str, int]:
    """How much the account has stored: decisions, posts, outcomes per pass, snapshots, model versions,
    experiment assignments, gate rejections. Plain integers: stable for a seeded campaign."""
    return account_data_counts(conn, account_id)


def format_counts(counts: Mapping[str, int]) -> str:
    """One ``name  value`` line per count (what the notebooks print, and nbval compares)."""
    return "\n".join(f"{k:<20} {v}" for k, v in counts.items())


def pass_summary(table: pa.Table) -> pd.DataFrame:
    """Outcomes per collection pass (1 = T+1h, 2 = T+24h) and follow source, with their totals and means."""
    cols = ["collected_pass", "follows_source", "outcomes", "impressions", "follows", "fpki_mean", "simulated"]
    df = table.to_pandas()
    if df.empty:
        return pd.DataFrame(columns=cols)
    g = df.groupby(["collected_pass", "follows_source"])
    out = pd.DataFrame({"outcomes": g.size(), "impressions": g["impressions"].sum(), "follows": g["follows"].sum(),
                        "fpki_mean": g["fpki"].mean(), "simulated": g["simulated"].any()}).reset_index()
    return out[cols]


# ----------------------------------------------------------------------------- growth frames

def followers_daily(conn, account_id: str, days: int | None = None) -> pd.DataFrame:
    """Followers at the end of each local day (last snapshot of the day) and the day's change.

    Columns: day (date), followers, gained (vs the previous day; the first day vs its first snapshot),
    snapshots, simulated.
    """
    rows = followers_by_local_day(conn, account_id)
    df = pd.DataFrame(rows, columns=["day", "followers", "first_of_day", "snapshots", "simulated"])
    if df.empty:
        return df.drop(columns=["first_of_day"]).assign(gained=pd.Series(dtype=int))
    df["day"] = pd.to_datetime(df["day"])
    previous = df["followers"].shift(1).fillna(df["first_of_day"].iloc[0])
    df["gained"] = (df["followers"] - previous).astype(int)
    df = df[["day", "followers", "gained", "snapshots", "simulated"]]
    return window(df, "day", days)


def daily_metrics(outcomes: pd.DataFrame, days: int | None = None) -> pd.DataFrame:
    """Per local posting day of the final outcomes: posts, impressions, follows, pooled and mean FPKI,
    mean novelty and mean reward. Pooled fpki = 1000 × Σ follows / max(1, Σ impressions)."""
    cols = ["day", "posts", "impressions", "follows", "fpki_pooled", "fpki_mean", "novelty_mean", "reward_mean"]
    if outcomes.empty:
        return pd.DataFrame(columns=cols)
    df = outcomes.assign(day=_local_day(outcomes))
    g = df.groupby("day")
    out = pd.DataFrame({"posts": g.size(), "impressions": g["impressions"].sum(), "follows": g["follows"].sum(),
                        "fpki_mean": g["fpki"].mean(), "novelty_mean": g["novelty"].mean(),
                        "reward_mean": g["reward_composite"].mean()}).reset_index()
    out["fpki_pooled"] = 1000.0 * out["follows"] / out["impressions"].clip(lower=1)
    return window(out[cols], "day", days)


def _local_day(outcomes: pd.DataFrame) -> pd.Series:
    """The local calendar day of each post, from its UTC time and local hour/weekday columns."""
    utc = pd.to_datetime(outcomes["posted_at"], utc=True)
    # local - utc offset in whole hours, read off the stored local hour (works for any account timezone)
    offset = ((outcomes["local_hour"] - utc.dt.hour + 12) % 24) - 12
    return (utc + pd.to_timedelta(offset, unit="h")).dt.tz_localize(None).dt.normalize()


def top_posts(outcomes: pd.DataFrame, n: int = 10, by: str = "follows") -> pd.DataFrame:
    """The ``n`` final outcomes with the most ``by`` (ties: more impressions first), with their text."""
    if by not in outcomes.columns:
        raise ValueError(f"cannot rank by {by!r} (columns: {', '.join(outcomes.columns)})")
    cols = ["posted_at", "decision_type", "hook_pattern", "topic", "impressions", "follows", "fpki",
            "reward_composite", "content"]
    return outcomes.sort_values([by, "impressions", "tweet_id"], ascending=[False, False, True]).head(n)[cols] \
        .reset_index(drop=True)


def timing_table(outcomes: pd.DataFrame, value: str = "reward_composite") -> pd.DataFrame:
    """Mean ``value`` by weekday (rows, Mon..Sun) × local hour (columns); NaN where nothing was posted."""
    if value not in outcomes.columns:
        raise ValueError(f"no column {value!r} to tabulate (e.g. 'reward_composite' or 'fpki')")
    hours = sorted(int(h) for h in outcomes["local_hour"].dropna().unique())
    pivot = outcomes.pivot_table(index="local_weekday", columns="local_hour", values=value, aggfunc="mean")
    pivot = pivot.reindex(index=range(7), columns=hours)
    pivot.index = list(WEEKDAYS)
    pivot.columns = [int(c) for c in pivot.columns]
    return pivot


def arm_posteriors(conn, account_id: str, world: str, scope: str = "content") -> pd.DataFrame:
    """Posterior of each bandit arm's mean reward (``bandit.posterior`` over the stored arms).

    Columns: arm, pulls, weight, observed_mean, posterior_mean, sd, ci_low, ci_high (95%), sorted by
    posterior mean. Empty when the arms have no rewards yet.
    """
    cols = ["arm", "pulls", "weight", "observed_mean", "posterior_mean", "sd", "ci_low", "ci_high"]
    stats = load_arms(conn, account_id, world, scope)
    if not stats:
        return pd.DataFrame(columns=cols)
    post = posterior(stats)
    rows = [{"arm": arm, "pulls": s.pulls, "weight": s.weight_sum, "observed_mean": s.mean,
             "posterior_mean": post[arm].mean, "sd": post[arm].sd, "ci_low": post[arm].ci_low,
             "ci_high": post[arm].ci_high} for arm, s in stats.items()]
    return pd.DataFrame(rows, columns=cols).sort_values(["posterior_mean", "arm"], ascending=[False, True]) \
        .reset_index(drop=True)


def gate_rejections(conn, account_id: str) -> pd.DataFrame:
    """Candidates the plan job's gates refused, counted by gate and reason, with the latest time."""
    rows = gate_rejections_by_reason(conn, account_id)
    return pd.DataFrame(rows, columns=["gate", "reason", "rejections", "latest"])
