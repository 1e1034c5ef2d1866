"""Data access and small plots for the research notebooks (``notebooks/*.py``).

Notebooks stay short and linear: every query, frame and figure they show comes from here.

- ``connect``, ``resolve_account``, ``resolve_world``: which database, account and world a report is about.
- ``outcomes_arrow``: outcomes joined to their decision and post, pulled from PostgreSQL into an Arrow
  table (ADBC, or psycopg ``COPY … TO STDOUT`` as the fallback; both give ``OUTCOME_SCHEMA``), ready for
  DuckDB (``duckdb.sql("… FROM outcomes_tbl")``) and polars (``pl.from_arrow``) in-process.
- Frames (pandas): followers by day, FPKI/novelty by day, top posts, arm posteriors, the timing table
  (weekday × local hour), model versions, gate rejections, predictor comparison, experiment lift.
- Plots: each returns a ``matplotlib.figure.Figure`` built without pyplot (no global state, nothing
  shown twice); with no data it returns a figure that says so instead of raising.

Time windows (``days``) are anchored at the newest row of the data, not at the wall clock, so a
report on a simulated campaign (whose clock ran in 2026-01) shows its last ``days`` days.
Nothing here invents a number: an empty table stays empty, a lift that cannot be estimated
carries the estimator's reason instead of an estimate.
"""
from __future__ import annotations

import io
import os
from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd
import pyarrow as pa

from xbotlib.store.db import Database

WEEKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")

# The one shape of the outcomes table, whichever way it was read.
OUTCOME_SCHEMA = pa.schema([
    ("outcome_id", pa.int64()), ("decision_id", pa.string()), ("account_id", pa.string()),
    ("world", pa.string()), ("tweet_id", pa.string()), ("decision_type", pa.string()),
    ("generation_source", pa.string()), ("topic", pa.string()), ("hook_pattern", pa.string()),
    ("bandit_arm", pa.string()), ("timing_arm", pa.string()), ("experiment_id", pa.string()),
    ("predictor_version", pa.string()), ("content", pa.string()),
    ("posted_at", pa.timestamp("us", tz="UTC")), ("local_hour", pa.int32()), ("local_weekday", pa.int32()),
    ("collected_pass", pa.int16()), ("simulated", pa.bool_()),
    ("impressions", pa.int32()), ("likes", pa.int32()), ("retweets", pa.int32()), ("replies", pa.int32()),
    ("quotes", pa.int32()), ("bookmarks", pa.int32()), ("profile_visits", pa.int32()), ("link_clicks", pa.int32()),
    ("follows", pa.float64()), ("follows_source", pa.string()), ("er", pa.float64()), ("fpki", pa.float64()),
    ("retweet_rate", pa.float64()), ("reply_rate", pa.float64()), ("novelty", pa.float64()),
    ("reward_composite", pa.float64()), ("collected_at", pa.timestamp("us", tz="UTC")),
])

# ``local_weekday`` is 0 = Monday (Python's ``weekday()``); hours and days are the account's local time.
_OUTCOMES_SQL = """
SELECT o.outcome_id::int8 AS outcome_id, o.decision_id::text AS decision_id, o.account_id, pd.world, pd.tweet_id,
       cm.decision_type, cm.generation_source, cm.topic, cm.hook_pattern, cm.bandit_arm, cm.timing_arm,
       cm.experiment_id, cm.predictor_version, cm.content, pd.posted_at,
       extract(hour FROM pd.posted_at AT TIME ZONE coalesce(a.timezone, 'UTC'))::int4 AS local_hour,
       (extract(isodow FROM pd.posted_at AT TIME ZONE coalesce(a.timezone, 'UTC'))::int4 - 1) AS local_weekday,
       o.collected_pass, o.simulated, o.impressions, o.likes, o.retweets, o.replies, o.quotes, o.bookmarks,
       o.profile_visits, o.link_clicks, o.follows, o.follows_source, o.er, o.fpki, o.retweet_rate, o.reply_rate,
       coalesce(o.novelty, cm.novelty) AS novelty, o.reward_composite, o.collected_at
  FROM outcomes o
  JOIN content_metadata cm ON cm.decision_id = o.decision_id
  JOIN posted_decisions pd ON pd.decision_id = o.decision_id
  LEFT JOIN accounts a ON a.account_id = o.account_id
 WHERE o.account_id = {account} AND ({world} IS NULL OR pd.world = {world})
 ORDER BY pd.posted_at, pd.tweet_id, o.collected_pass
"""


# ----------------------------------------------------------------------------- database, account, world

def connect(db_url: str | None = None) -> Database:
    """xbot's database: ``db_url``, else XBOT_DATABASE_URL (the runner sets it), else the embedded one."""
    if db_url:
        return Database.from_url(db_url, pool_max=4)
    from xbotlib.app.reports.runner import open_database
    return open_database()


def resolve_account(conn, account_id: str | None = None, *, preferred: str | None = None) -> str:
    """The account a report is about.

    ``account_id`` when given (it must exist in ``accounts`` or have decisions); else ``preferred``
    (default: XBOT_ACCOUNT_ID from the settings) when that account has decisions; else the account
    with the most decisions. Raises ``LookupError`` when the database holds no account data at all.
    """
    counts = {r["account_id"]: int(r["n"]) for r in conn.execute(
        """SELECT account_id, sum(n)::int8 AS n FROM (
               SELECT account_id, count(*) AS n FROM content_metadata GROUP BY account_id
               UNION ALL SELECT account_id, 0 FROM accounts) x
            GROUP BY account_id ORDER BY account_id""").fetchall()}
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
    from xbotlib.config import ConfigError, load_settings
    try:
        return load_settings().account_id
    except ConfigError:  # a broken .env must not hide the data: fall back to the busiest account
        return None


def resolve_world(conn, account_id: str, world: str | None = None) -> str:
    """``world`` checked, else the world most of the account's posts went to ('sandbox' with no posts)."""
    from xbotlib.store.arms import check_world
    if world:
        return check_world(world)
    row = conn.execute("""SELECT world FROM posted_decisions WHERE account_id = %s
                           GROUP BY world ORDER BY count(*) DESC, world LIMIT 1""", (account_id,)).fetchone()
    return row["world"] if row else "sandbox"


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
        from xbotlib.store.arms import check_world
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
    return _outcomes_copy(db, account_id, world)


def _is_adbc_error(exc: Exception) -> bool:
    return type(exc).__module__.startswith(("adbc_driver", "adbc_driver_manager"))


def _outcomes_adbc(url: str, account_id: str, world: str | None) -> pa.Table:
    import adbc_driver_postgresql.dbapi as adbc

    # libpq URI as-is: the embedded server's is postgresql://postgres:@/db?host=/socket/dir, which libpq reads
    sql = _OUTCOMES_SQL.format(account="$1::text", world="$2::text")
    with adbc.connect(url) as conn, conn.cursor() as cur:
        cur.execute(sql, parameters=(account_id, world))
        table = cur.fetch_arrow_table()
    return _conform(table)


def _outcomes_copy(db: Database, account_id: str, world: str | None) -> pa.Table:
    import pyarrow.csv as pacsv
    from psycopg import sql as psql

    query = psql.SQL(_OUTCOMES_SQL).format(account=psql.Literal(account_id),
                                           world=psql.SQL("NULL::text") if world is None else psql.Literal(world))
    buf = io.BytesIO()
    with db.connection() as conn:
        conn.execute("SET LOCAL TimeZone = 'UTC'")  # timestamps as '…+00', which pyarrow parses
        with conn.cursor().copy(psql.SQL("COPY ({}) TO STDOUT WITH (FORMAT csv, HEADER true)").format(query)) as copy:
            for chunk in copy:
                buf.write(chunk)
    buf.seek(0)
    options = pacsv.ConvertOptions(column_types={f.name: f.type for f in OUTCOME_SCHEMA}, true_values=["t"],
                                   false_values=["f"], strings_can_be_null=True, quoted_strings_can_be_null=False)
    return _conform(pacsv.read_csv(buf, convert_options=options))


def _conform(table: pa.Table) -> pa.Table:
    """Cast to ``OUTCOME_SCHEMA`` and drop driver metadata, so both paths give equal tables."""
    return table.select(OUTCOME_SCHEMA.names).cast(OUTCOME_SCHEMA).replace_schema_metadata(None)


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
    row = conn.execute(
        """SELECT (SELECT count(*) FROM content_metadata WHERE account_id = %(a)s) AS decisions,
                  (SELECT count(*) FROM posted_decisions WHERE account_id = %(a)s) AS posts,
                  (SELECT count(*) FROM outcomes WHERE account_id = %(a)s AND collected_pass = 1) AS outcomes_pass1,
                  (SELECT count(*) FROM outcomes WHERE account_id = %(a)s AND collected_pass = 2) AS outcomes_pass2,
                  (SELECT count(*) FROM follower_snapshots WHERE account_id = %(a)s) AS follower_snapshots,
                  (SELECT count(*) FROM predictors WHERE account_id = %(a)s) AS model_versions,
                  (SELECT count(*) FROM experiment_assignments WHERE account_id = %(a)s) AS assignments,
                  (SELECT count(*) FROM gate_rejections WHERE account_id = %(a)s) AS gate_rejections""",
        {"a": account_id}).fetchone()
    return {k: int(v) for k, v in row.items()}


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
    rows = conn.execute(
        """SELECT (fs.taken_at AT TIME ZONE coalesce(a.timezone, 'UTC'))::date AS day,
                  (array_agg(fs.followers_count ORDER BY fs.taken_at DESC))[1] AS followers,
                  (array_agg(fs.followers_count ORDER BY fs.taken_at))[1] AS first_of_day,
                  count(*) AS snapshots, bool_or(fs.simulated) AS simulated
             FROM follower_snapshots fs LEFT JOIN accounts a ON a.account_id = fs.account_id
            WHERE fs.account_id = %s GROUP BY 1 ORDER BY 1""", (account_id,)).fetchall()
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
    from xbotlib.core.bandit import posterior
    from xbotlib.store.arms import load_arms

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


def model_versions(conn, account_id: str) -> pd.DataFrame:
    """Every stored predictor version: key, algorithm, world, samples, cross-validated score vs baseline."""
    from xbotlib.store.models import list_versions

    cols = ["predictor_key", "algorithm", "world", "target", "n_samples", "cv_score", "baseline_score",
            "beats_baseline", "is_active", "trained_at"]
    rows = list_versions(conn, account_id)
    df = pd.DataFrame(rows)
    if df.empty:
        return pd.DataFrame(columns=cols)
    df["beats_baseline"] = [beats(c, b) for c, b in zip(df["cv_score"], df["baseline_score"])]
    return df[cols]


def gate_rejections(conn, account_id: str) -> pd.DataFrame:
    """Candidates the plan job's gates refused, counted by gate and reason, with the latest time."""
    rows = conn.execute(
        """SELECT gate, reason, count(*) AS rejections, max(rejected_at) AS latest
             FROM gate_rejections WHERE account_id = %s GROUP BY gate, reason
            ORDER BY rejections DESC, gate, reason""", (account_id,)).fetchall()
    return pd.DataFrame(rows, columns=["gate", "reason", "rejections", "latest"])


# ----------------------------------------------------------------------------- predictors

def beats(score: float | None, baseline: float | None, tol: float = 1e-6) -> bool | None:
    """True when ``score`` is better than ``baseline`` by more than float noise; None when either is missing.

    A model that learned nothing (LightGBM on a few samples makes no split) reproduces the baseline
    up to rounding: that is not a win.
    """
    if score is None or baseline is None or pd.isna(score) or pd.isna(baseline):
        return None
    return bool(score - baseline > tol * max(1.0, abs(baseline)))


def predictor_comparison(conn, account_id: str, world: str, *, seed: int = 0, folds: int = 5) -> pd.DataFrame:
    """Cross-validated scores of ridge and LightGBM (reward) and logistic and LightGBM (P(follows≥1))
    against the predict-the-mean / base-rate baseline, on the account's final outcomes of ``world``.

    Columns: target, model, metric (r2 | neg_log_loss; higher is better), score, baseline_score,
    beats_baseline, loss, baseline_loss, n, folds, note. A model that cannot be scored (too few
    samples, a single class) has NaN scores and says why in ``note``.
    """
    from xbotlib.store import training_data
    from xbotlib.core.predictors import (LightGBMFollows, LightGBMReward, LogisticFollows, RidgeReward, cross_validated_score)

    content = training_data.training_frame(conn, account_id, world)
    follows = training_data.training_frame(conn, account_id, world, target="follows")
    specs = [("reward_composite", "ridge", RidgeReward, content, "reward"),
             ("reward_composite", "lightgbm", LightGBMReward, content, "reward"),
             ("follows>=1", "logistic", LogisticFollows, follows, "follows"),
             ("follows>=1", "lightgbm", LightGBMFollows, follows, "follows")]
    rows = []
    for target, name, factory, frame, kind in specs:
        row: dict[str, Any] = {"target": target, "model": name, "n": len(frame.y)}
        if len(frame.y) == 0:
            rows.append({**row, "note": "no final outcomes yet"})
            continue
        try:
            cv = cross_validated_score(factory, frame.X, frame.y, frame.w, folds=folds, seed=seed, kind=kind)
        except ValueError as exc:  # e.g. LightGBMFollows with one class only
            rows.append({**row, "note": str(exc)})
            continue
        row.update(metric=cv["metric"], score=cv["score"], baseline_score=cv["baseline_score"], loss=cv["loss"],
                   baseline_loss=cv["baseline_loss"], folds=cv["folds"], note=cv.get("reason", ""))
        rows.append(row)
    df = pd.DataFrame(rows, columns=["target", "model", "metric", "score", "baseline_score", "beats_baseline",
                                     "loss", "baseline_loss", "n", "folds", "note"])
    df["score"] = pd.to_numeric(df["score"])
    df["baseline_score"] = pd.to_numeric(df["baseline_score"])
    df["beats_baseline"] = [beats(s, b) for s, b in zip(df["score"], df["baseline_score"])]
    df["note"] = df["note"].fillna("")
    return df


def persist_predictors(db: Database, settings, account_id: str, world: str, clock):
    """Run the learn job once for the account (the same code and rules as the daemon) and record it in
    ``job_runs``; returns its ``JobResult``. It stores new versions only when ``should_train`` says so
    (enough fresh outcomes); otherwise the result says ``skipped`` and why."""
    from xbotlib.jobs.context import JobContext
    from xbotlib.jobs.runner import run_job
    from xbotlib.jobs import learn

    ctx = JobContext(settings=settings.replace(account_id=account_id), db=db, clock=clock, account_id=account_id,
                     world=world)
    return run_job("learn", ctx, learn.tick)


# ----------------------------------------------------------------------------- collection

@dataclass(frozen=True)
class CollectionPass:
    """What one collection pass did: status 'ok' | 'skipped' | 'unavailable' | 'world_mismatch'."""
    status: str
    message: str
    detail: dict[str, Any] = field(default_factory=dict)


def world_problem(account: Mapping[str, Any], me_user_id: str, me_username: str,
                  newest_tweet_id: str | None, newest_found: bool) -> str | None:
    """Why the X that answered is not the account's world, or None when it is (pure).

    It must answer as the account's user (``accounts.x_user_id``, else its handle) and know the
    account's newest posted tweet.
    """
    known_id, handle = account.get("x_user_id"), account.get("handle")
    if known_id and known_id != me_user_id:
        return f"it answers as user {me_user_id}, but the account posted as user {known_id}"
    if not known_id and handle and me_username and handle != me_username:
        return f"it answers as @{me_username}, but the account is @{handle}"
    if newest_tweet_id and not newest_found:
        return f"it does not know the account's newest post (tweet {newest_tweet_id})"
    return None


def collect_once(db: Database, settings, account_id: str, clock) -> CollectionPass:
    """One pass of the collect job for ``account_id`` against the X that ``settings`` reach.

    Nothing is stored unless that X is the account's own world (``world_problem``): a different one
    — e.g. a fresh sandbox, while the demo's in-process sandbox existed only inside the demo run —
    would add a foreign follower snapshot and mark every post as not found. An unreachable X gives
    'unavailable'. Neither raises: a report says what happened and shows what is stored.
    """
    import httpx

    from xbotlib.jobs.runner import run_job
    from xbotlib.jobs import collect
    from xbotlib.jobs.context import build_context
    from xbotlib.clients.xapi import XApiError

    ctx = build_context(settings.replace(account_id=account_id), db, clock)
    rows = db.execute("SELECT x_user_id, handle FROM accounts WHERE account_id = %s", (account_id,))
    newest = db.execute("""SELECT tweet_id FROM posted_decisions WHERE account_id = %s AND world = %s
                            ORDER BY posted_at DESC, tweet_id DESC LIMIT 1""", (account_id, ctx.world))
    newest_id = newest[0]["tweet_id"] if newest else None
    try:
        me = ctx.x.me()
        found = bool(newest_id) and newest_id in ctx.x.lookup_tweets([newest_id]).metrics
    except (XApiError, httpx.HTTPError, OSError) as exc:
        return CollectionPass("unavailable", f"X is not reachable from these settings ({ctx.world}): "
                              f"{type(exc).__name__}: {exc}; nothing was collected", {"world": ctx.world})
    problem = world_problem(rows[0] if rows else {}, me.user_id, me.username, newest_id, found)
    if problem:
        return CollectionPass("world_mismatch", f"the {ctx.world} X reachable from these settings is not the world "
                              f"{account_id!r} posted to: {problem}; nothing was collected",
                              {"world": ctx.world, "x_user": me.user_id})
    result = run_job("collect", ctx, collect.tick)
    message = f"collect {result.status}" + (f" ({result.reason})" if result.reason else "")
    return CollectionPass(result.status, message, dict(result.detail))


# ----------------------------------------------------------------------------- plots

def _figure(width: float = 7.0, height: float = 3.5):
    from matplotlib.figure import Figure
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
    from matplotlib.figure import Figure
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
    from matplotlib.figure import Figure
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
    from matplotlib.figure import Figure
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
