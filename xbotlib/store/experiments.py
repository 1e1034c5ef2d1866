"""Experiments in the database: the registry's rows per account, enabling and allocation, assignments, and
the rows a lift estimate is computed from. The pure parts (registry, assignment, text arms) are
``xbotlib.core.experiments``; this is the one module that reads or writes ``experiments`` and
``experiment_assignments``, so every change passes the registry's checks and logs ``[EXPERIMENT]``.
"""
from __future__ import annotations

import json
import logging
import uuid
from datetime import datetime
from typing import Mapping

import pandas as pd
import psycopg

from xbotlib.core import vocab
from xbotlib.core.covariates import covariate_frame, lift_covariates
from xbotlib.core.experiments import (DECISION_TYPES, REGISTRY, ActiveExperiment, Assignment, applies, arms_json,
                                      check_allocation, check_experiment_id, primary_experiment)
from xbotlib.logs import tagged
from xbotlib.store.accounts import load_profile
from xbotlib.store.worlds import check_world

log = logging.getLogger("xbot.experiments")


def ensure_experiments(conn: psycopg.Connection, account_id: str, now: datetime) -> int:
    """Register every experiment of ``REGISTRY`` for the account (disabled, default allocation).

    Existing rows keep their enabled flag and allocation; description and applies_to follow the
    registry. Returns the number of rows newly inserted.
    """
    rows = conn.execute(*_ensure_statement(account_id, now)).fetchall()
    return sum(bool(r["inserted"]) for r in rows)


def _ensure_statement(account_id: str, now: datetime) -> tuple[str, tuple]:
    specs = list(REGISTRY.values())
    return (
        # every experiment of the registry in one statement (one round trip, not one per experiment); a row that
        # already says what the registry says is not rewritten
        """INSERT INTO experiments (account_id, experiment_id, enabled, allocation, applies_to, description,
                                    created_at, updated_at)
           SELECT %s, r.experiment_id, false, r.allocation, r.applies_to, r.description, %s, %s
             FROM unnest(%s::text[], %s::float8[], %s::text[], %s::text[])
                  AS r(experiment_id, allocation, applies_to, description)
           ON CONFLICT (account_id, experiment_id) DO UPDATE
              SET applies_to = EXCLUDED.applies_to, description = EXCLUDED.description
            WHERE experiments.applies_to IS DISTINCT FROM EXCLUDED.applies_to
               OR experiments.description IS DISTINCT FROM EXCLUDED.description
           RETURNING (xmax = 0) AS inserted""",
        (account_id, now, now, [e.experiment_id for e in specs], [e.default_allocation for e in specs],
         [e.applies_to for e in specs], [e.description for e in specs]))


def list_experiments(conn: psycopg.Connection, account_id: str) -> list[dict]:
    """The account's experiments (registry order first) with assignment counts per arm.

    Keys: experiment_id, applies_to, description, enabled, allocation, n_treatment, n_control,
    last_assigned_at, registered (False for a stored id no longer in the registry), created_at, updated_at.
    """
    return _listed(conn.execute(_LIST_SQL, (account_id,)).fetchall())


# the counts come from experiment_arm_counts (migration 0010: kept by a trigger on every write of
# experiment_assignments), so this reads a few rows per experiment, not every assignment ever made
_LIST_SQL = """SELECT e.experiment_id, e.applies_to, e.description, e.enabled, e.allocation,
                  coalesce(sum(c.n) FILTER (WHERE c.arm = 'treatment'), 0) AS n_treatment,
                  coalesce(sum(c.n) FILTER (WHERE c.arm = 'control'), 0) AS n_control,
                  max(c.last_assigned_at) AS last_assigned_at, e.created_at, e.updated_at
             FROM experiments e
             LEFT JOIN experiment_arm_counts c
                    ON c.account_id = e.account_id AND c.experiment_id = e.experiment_id
            WHERE e.account_id = %s
            GROUP BY e.account_id, e.experiment_id"""


def _listed(rows: list[dict]) -> list[dict]:
    order = {k: i for i, k in enumerate(REGISTRY)}
    out = [{**r, "n_treatment": int(r["n_treatment"]), "n_control": int(r["n_control"]),
            "registered": r["experiment_id"] in REGISTRY} for r in rows]
    return sorted(out, key=lambda r: (order.get(r["experiment_id"], len(order)), r["experiment_id"]))


def active_experiments(conn: psycopg.Connection, account_id: str) -> list[ActiveExperiment]:
    """Enabled, registered experiments of the account, ready for ``assign``."""
    rows = conn.execute("SELECT experiment_id, allocation FROM experiments WHERE account_id = %s AND enabled",
                        (account_id,)).fetchall()
    return [ActiveExperiment(r["experiment_id"], REGISTRY[r["experiment_id"]].applies_to, float(r["allocation"]))
            for r in rows if r["experiment_id"] in REGISTRY]


def set_experiment(conn: psycopg.Connection, account_id: str, experiment_id: str, *, enabled: bool | None = None,
                   allocation: float | None = None, now: datetime) -> dict:
    """Enable/disable an experiment or change its allocation; returns its ``list_experiments`` row.

    Everything is validated before anything is written, so a bad call leaves the data as it was.
    Past assignments keep the propensity they were drawn with.
    """
    check_experiment_id(experiment_id)
    if enabled is None and allocation is None:
        raise ValueError(f"nothing to change for {experiment_id!r} (pass enabled=True/False and/or allocation)")
    if enabled is not None and not isinstance(enabled, bool):
        raise ValueError(f"enabled must be True or False, got {enabled!r}")
    if allocation is not None:
        allocation = check_allocation(allocation)
    # the registry's rows, the change and the row read back in one round trip (a pipeline; on an autocommit
    # connection the three run as one implicit transaction, so a failure leaves the data as it was)
    with conn.pipeline():
        conn.execute(*_ensure_statement(account_id, now))
        conn.execute(
            # updated_at is when the settings last changed: sending the values it already has writes nothing
            """UPDATE experiments SET enabled = COALESCE(%(enabled)s, enabled),
                  allocation = COALESCE(%(allocation)s, allocation), updated_at = %(now)s
            WHERE account_id = %(acc)s AND experiment_id = %(exp)s
              AND (enabled, allocation) IS DISTINCT FROM (COALESCE(%(enabled)s, enabled),
                                                          COALESCE(%(allocation)s, allocation))""",
            {"enabled": enabled, "allocation": allocation, "now": now, "acc": account_id, "exp": experiment_id})
        listed = conn.execute(_LIST_SQL, (account_id,))
    row = next(r for r in _listed(listed.fetchall()) if r["experiment_id"] == experiment_id)
    tagged(log, "EXPERIMENT", "updated", experiment=experiment_id, enabled=str(row["enabled"]).lower(),
           allocation=row["allocation"])
    return row


def record_new_decision_assignments(conn: psycopg.Connection, decision, now: datetime) -> int:
    """Store the assignments of a decision inserted just before in the caller's transaction
    (``queue.insert_decision``): the arms it carries (``Decision.experiment_arms``, with its ``experiment_id``
    label already written by that insert), in one statement.

    ``record_assignments`` does the same for any decision, at four statements more: it reads the decision and its
    earlier assignments (to refuse a changed arm) and rewrites the label; a decision inserted a moment ago has
    neither earlier assignments nor another label. The plan job queues ~5 decisions per account and day this
    way. The registry's checks are the same (an unknown experiment, one that does not apply to the decision's
    type: ``ValueError``, nothing written); logs ``[EXPERIMENT] assigned …`` per row; returns how many."""
    assignments = {k: Assignment(v["arm"], float(v["propensity"])) for k, v in decision.experiment_arms.items()}
    for experiment_id in assignments:
        check_experiment_id(experiment_id)
        if not applies(REGISTRY[experiment_id], decision.decision_type):
            raise ValueError(f"experiment {experiment_id!r} does not apply to a {decision.decision_type} decision "
                             f"(it applies to {', '.join(DECISION_TYPES[REGISTRY[experiment_id].applies_to])})")
    if decision.experiment_id != primary_experiment(assignments):
        raise ValueError(f"decision {decision.decision_id} is labelled {decision.experiment_id!r} but its arms make it "
                         f"{primary_experiment(assignments)!r} (build it with core.experiments.primary_experiment)")
    if not assignments:
        return 0
    ids = list(assignments)   # the plan's order (the registry's), as record_assignments inserts them
    conn.execute(
        """INSERT INTO experiment_assignments (account_id, experiment_id, decision_id, arm, propensity, assigned_at)
           SELECT %s, e, %s, a, p, %s FROM unnest(%s::text[], %s::text[], %s::float8[]) AS t(e, a, p)""",
        (decision.account_id, str(decision.decision_id), now, ids, [assignments[k].arm for k in ids],
         [assignments[k].propensity for k in ids]))
    for experiment_id in ids:
        a = assignments[experiment_id]
        tagged(log, "EXPERIMENT", "assigned", decision_id=decision.decision_id, experiment=experiment_id, arm=a.arm,
               propensity=a.propensity)
    return len(ids)


def record_assignments(conn: psycopg.Connection, account_id: str, decision_id: uuid.UUID | str,
                       assignments: Mapping[str, Assignment], now: datetime) -> int:
    """Store a decision's assignments (arm + propensity), and label the decision with them.

    Writes ``experiment_assignments`` rows and sets ``content_metadata.experiment_id`` /
    ``experiment_arms`` in the caller's transaction. An assignment is immutable: recording the
    same one again is a no-op, a different arm or propensity is an error. Everything is checked
    before the first write. Logs ``[EXPERIMENT] assigned …`` per new row; returns how many.
    """
    for experiment_id, a in assignments.items():
        check_experiment_id(experiment_id)
        if not isinstance(a, Assignment):
            raise ValueError(f"assignment for {experiment_id!r} must be an Assignment, got {a!r}")
    decision = conn.execute("SELECT account_id, decision_type FROM content_metadata WHERE decision_id = %s",
                            (str(decision_id),)).fetchone()
    if decision is None:
        raise LookupError(f"no decision with id {decision_id} (insert the decision before its assignments)")
    if decision["account_id"] != account_id:
        raise ValueError(f"decision {decision_id} belongs to account {decision['account_id']!r}, not {account_id!r}")
    for experiment_id in assignments:
        if not applies(REGISTRY[experiment_id], decision["decision_type"]):
            raise ValueError(f"experiment {experiment_id!r} does not apply to a {decision['decision_type']} decision "
                             f"(it applies to {', '.join(DECISION_TYPES[REGISTRY[experiment_id].applies_to])})")
    existing = {r["experiment_id"]: Assignment(r["arm"], float(r["propensity"])) for r in conn.execute(
        "SELECT experiment_id, arm, propensity FROM experiment_assignments WHERE decision_id = %s",
        (str(decision_id),)).fetchall()}
    for experiment_id, a in assignments.items():
        old = existing.get(experiment_id)
        if old is not None and old != a:
            raise ValueError(f"decision {decision_id} is already assigned to {experiment_id}={old.arm} "
                             f"(propensity {old.propensity}); assignments are immutable, cannot record {a.arm} "
                             f"(propensity {a.propensity})")
    new = {k: a for k, a in assignments.items() if k not in existing}
    for experiment_id, a in new.items():
        conn.execute(
            """INSERT INTO experiment_assignments (account_id, experiment_id, decision_id, arm, propensity, assigned_at)
               VALUES (%s, %s, %s, %s, %s, %s)""",
            (account_id, experiment_id, str(decision_id), a.arm, a.propensity, now))
    everything = {**existing, **new}
    conn.execute(
        """UPDATE content_metadata SET experiment_id = %s, experiment_arms = experiment_arms || %s::jsonb,
                  updated_at = %s
            WHERE decision_id = %s""",
        (primary_experiment(everything), json.dumps(arms_json(everything)), now, str(decision_id)))
    for experiment_id, a in new.items():
        tagged(log, "EXPERIMENT", "assigned", decision_id=decision_id, experiment=experiment_id, arm=a.arm,
               propensity=a.propensity)
    return len(new)


def lift_frame(conn: psycopg.Connection, account_id: str, experiment_id: str, world: str) -> pd.DataFrame:
    """One row per posted decision of the experiment with a T+24h (pass 2) outcome, ready for ``xbotlib.core.lift``.

    Columns: decision_id, arm, treatment (0/1), propensity (P(treatment) at assignment),
    reward_composite, fpki, er, impressions, follows, replies, simulated, posted_at, topic, hook, and the
    covariates: hook one-hots (read from the text with the arm markers stripped, so the text arms
    cannot move them), topic one-hots, local posting hour as sin/cos, novelty (missing -> mean),
    log(1 + followers) from the last follower snapshot before the decision was made (pre-treatment
    for every arm). Hooks and topics are those of the account's profile (``AccountProfile.vocabulary``; the
    built-in niche without one). ``df.attrs["covariates"]`` lists the covariates fit for this experiment (see
    ``lift_covariates``). ``world`` is 'live' or 'sandbox'; for 'live' simulated outcomes are excluded.
    """
    check_experiment_id(experiment_id)
    check_world(world)
    rows = conn.execute(
        """SELECT a.decision_id::text AS decision_id, a.arm, a.propensity, cm.content, cm.topic, cm.novelty,
                  pd.posted_at, o.simulated, o.impressions, o.follows, o.replies, o.er, o.fpki,
                  o.reward_composite,
                  (extract(hour FROM pd.posted_at AT TIME ZONE coalesce(acc.timezone, 'UTC'))
                   + extract(minute FROM pd.posted_at AT TIME ZONE coalesce(acc.timezone, 'UTC')) / 60.0)::float8
                      AS local_hour,
                  coalesce(
                      (SELECT fs.followers_count FROM follower_snapshots fs
                        WHERE fs.account_id = a.account_id AND fs.taken_at <= cm.created_at
                        ORDER BY fs.taken_at DESC LIMIT 1),
                      (SELECT fs.followers_count FROM follower_snapshots fs
                        WHERE fs.account_id = a.account_id ORDER BY fs.taken_at LIMIT 1)) AS followers
             FROM experiment_assignments a
             JOIN content_metadata cm ON cm.decision_id = a.decision_id
             JOIN posted_decisions pd ON pd.decision_id = a.decision_id
             JOIN outcomes o ON o.decision_id = a.decision_id AND o.collected_pass = 2
             LEFT JOIN accounts acc ON acc.account_id = a.account_id
            WHERE a.account_id = %(acc)s AND a.experiment_id = %(exp)s AND pd.world = %(world)s
              AND (%(world)s <> 'live' OR NOT o.simulated)
            ORDER BY pd.posted_at, pd.tweet_id""",
        {"acc": account_id, "exp": experiment_id, "world": world}).fetchall()
    # the account's niche: its profile's hook rules read the texts and its topics make the topic covariates
    profile = load_profile(conn, account_id)
    vocabulary = profile.vocabulary() if profile is not None else vocab.DEFAULT
    df = covariate_frame(pd.DataFrame(rows, columns=[
        "decision_id", "arm", "propensity", "content", "topic", "novelty", "posted_at", "simulated", "impressions",
        "follows", "replies", "er", "fpki", "reward_composite", "local_hour", "followers"]), vocabulary)
    df.attrs["covariates"] = lift_covariates(df, experiment_id)
    df.attrs["experiment_id"] = experiment_id
    df.attrs["world"] = world
    return df
