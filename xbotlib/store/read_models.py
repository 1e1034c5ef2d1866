"""Cheap reads behind the admin API's figures: each answers from an index range that does not grow with
the account's history (issue #19: "never a scan that grows with history").

- ``growth_model_fingerprint``: what the growth model of ``views.learning`` was fitted from, as one
  number, so an unchanged model is served from memory instead of being refitted per request;
- ``open_queue_depth``: decisions still in the queue by status (``idx_cm_status``; terminal rows, a
  whole history of posts, are not read);
- ``account_if_stored``: one primary-key probe, so the default account needs no count of every decision;
- ``served_and_rejected_versions``: the predictor versions the learning status shows, not every version;
- ``arms_by_scope``: both bandit scopes in one statement;
- ``profile_version``: whether the account's profile changed, without reading or parsing it.
"""
from __future__ import annotations

from datetime import datetime, timedelta
from typing import Sequence

from xbotlib.core.bandit import ArmStats
from xbotlib.store.outcomes import MODEL_WINDOW_DAYS
from xbotlib.store.worlds import check_world


def growth_model_fingerprint(conn, account_id: str, world: str, now: datetime) -> tuple:
    """A fingerprint of every input of ``outcomes.post_outcomes`` for these arguments: equal fingerprints,
    equal inputs (up to a 64-bit hash collision).

    It covers the posts of the model's window with a final outcome, each one's changing values (visits,
    follows, posted_at, outcome_id) through an order-free sum of 64-bit hashes, and the newest follower snapshot row of the world (a post's follower count is the
    snapshot before it; snapshots are only ever inserted, and any insert, whatever its taken_at, raises
    the newest ``snapshot_id``; ``idx_snapshots_account_seq`` of migration 0010 reads it).
    Reads the window's posts by index, not the follower-snapshot probes nor the fit."""
    simulated = check_world(world) != "live"
    row = conn.execute(
        # driven by the account's posts in the window (idx_posted_account_time), then one probe of
        # outcomes_decision_pass_key each (OFFSET 0 keeps the planner from turning the probes into a hash join
        # over every pass-2 outcome of the account): bounded by the window, whatever the history. A post's row
        # carries its decision's account (the post job writes both), so pd.account_id selects post_outcomes'
        # rows. content_metadata is not read: a decision's hook, topic, hour and novelty are fixed when it is
        # planned, before it is posted, so the posts and outcomes of the window determine them.
        """SELECT count(*) AS n,
                  coalesce(sum(hashtextextended(concat_ws('|', o.outcome_id, o.profile_visits, o.follows,
                                                          pd.decision_id, pd.posted_at, pd.tweet_id), 0)::numeric),
                           0) AS h,
                  (SELECT max(fs.snapshot_id) FROM follower_snapshots fs
                    WHERE fs.account_id = %(acc)s AND fs.simulated = %(sim)s) AS last_snapshot
             FROM posted_decisions pd
             CROSS JOIN LATERAL (SELECT o.outcome_id, o.profile_visits, o.follows FROM outcomes o
                                  WHERE o.decision_id = pd.decision_id AND o.collected_pass = 2
                                    AND o.account_id = %(acc)s AND o.simulated = %(sim)s OFFSET 0) o
            WHERE pd.account_id = %(acc)s AND pd.posted_at > %(since)s""",
        {"acc": account_id, "sim": simulated, "since": now - timedelta(days=MODEL_WINDOW_DAYS)}).fetchone()
    return int(row["n"]), str(row["h"]), row["last_snapshot"]


def open_queue_depth(conn, account_id: str, statuses: Sequence[str]) -> dict[str, int]:
    """Decisions of the account in each of ``statuses`` (0 for none), counted on ``idx_cm_status``."""
    rows = conn.execute(
        """SELECT status, count(*) AS n FROM content_metadata
            WHERE account_id = %s AND status = ANY(%s) GROUP BY status""", (account_id, list(statuses))).fetchall()
    depth = {s: 0 for s in statuses}
    depth.update({r["status"]: int(r["n"]) for r in rows})
    return depth


def account_if_stored(conn, account_id: str) -> bool:
    """Whether ``accounts`` has a row for ``account_id``."""
    return conn.execute("SELECT 1 FROM accounts WHERE account_id = %s", (account_id,)).fetchone() is not None


# the columns of ``models.list_versions`` that ``views.learning.ModelVersion`` shows: no jsonb (features,
# metrics), so nothing is parsed that the status page does not show
_VERSION_COLUMNS = """version, predictor_key, kind, algorithm, world, n_samples, cv_score, baseline_score,
                      trained_through, trained_at, rejected_reason,
                      CASE WHEN rejected_reason IS NOT NULL THEN 'rejected' WHEN is_active THEN 'active'
                           ELSE 'retired' END AS status"""


def served_and_rejected_versions(conn, account_id: str, now: datetime, limit: int) -> tuple[list[dict], list[dict]]:
    """The predictor versions ``views.learning_status`` shows, trained at or before ``now``: the active ones by
    (kind, world, newest version first), and the ``limit`` newest rejected versions newer than the active one
    of their kind and world (all of them when none is active), newest first (ties: kind, newest version).

    The same rows and order as filtering every version of ``models.list_versions`` (a year is ~100 versions
    per account, each with its jsonb), read in one statement: the active ones on ``predictors_version_key``,
    the rejected ones from the newest down, ``limit`` at most."""
    rows = conn.execute(
        f"""(SELECT 'active' AS shown, {_VERSION_COLUMNS} FROM predictors
              WHERE account_id = %(acc)s AND is_active AND trained_at <= %(now)s
              ORDER BY kind, world, version DESC)
            UNION ALL
            (SELECT 'rejected' AS shown, {_VERSION_COLUMNS} FROM predictors p
              WHERE p.account_id = %(acc)s AND p.rejected_reason IS NOT NULL AND p.trained_at <= %(now)s
                AND p.version > coalesce((SELECT min(a.version) FROM predictors a
                                           WHERE a.account_id = p.account_id AND a.kind = p.kind
                                             AND a.world = p.world AND a.is_active AND a.trained_at <= %(now)s), 0)
              ORDER BY p.trained_at DESC, p.kind, p.version DESC LIMIT %(limit)s)""",
        {"acc": account_id, "now": now, "limit": limit}).fetchall()
    return [r for r in rows if r["shown"] == "active"], [r for r in rows if r["shown"] == "rejected"]


def arms_by_scope(conn, account_id: str, world: str, scopes: Sequence[str]) -> dict[str, dict[str, ArmStats]]:
    """``{scope: {arm_id: ArmStats}}`` of the account's bandit arms in ``world`` for each of ``scopes`` that has
    arms (``arms.load_arms`` per scope, in one statement)."""
    rows = conn.execute(
        """SELECT scope, arm_id, pulls, reward_sum, reward_sq_sum, weight_sum FROM bandit_arms
            WHERE account_id = %s AND world = %s AND scope = ANY(%s) ORDER BY scope, arm_id""",
        (account_id, check_world(world), list(scopes))).fetchall()
    out: dict[str, dict[str, ArmStats]] = {}
    for r in rows:
        out.setdefault(r["scope"], {})[r["arm_id"]] = ArmStats(r["arm_id"], int(r["pulls"]), float(r["reward_sum"]),
                                                                float(r["reward_sq_sum"]), float(r["weight_sum"]))
    return {scope: out[scope] for scope in scopes if scope in out}


def profile_version(conn, account_id: str) -> tuple | None:
    """What changes whenever the account's stored profile does, read without the profile itself: the row's
    ``xmin`` (any update of the row gives it a new one) and its ``profile_sha256``; None without a row."""
    row = conn.execute("SELECT xmin::text AS xmin, profile_sha256, profile IS NOT NULL AS has_profile "
                       "FROM accounts WHERE account_id = %s", (account_id,)).fetchone()
    return None if row is None else (row["xmin"], row["profile_sha256"], row["has_profile"])
