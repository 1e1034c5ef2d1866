"""Bandit arms in PostgreSQL (table ``bandit_arms``, key account_id, world, scope, arm_id).

Thin shell over ``xbotlib.core.bandit``: load the stats, and fold final (pass-2) rewards into them
exactly once. Every function works in the caller's connection; ``now`` comes from the caller's clock.
"""
from __future__ import annotations

from datetime import datetime
from typing import Iterable, Mapping

import psycopg

from xbotlib.core.bandit import ArmStats, update
from xbotlib.store.worlds import check_world

SCOPES = ("content", "timing")


def check_scope(scope: str) -> str:
    if scope not in SCOPES:
        raise ValueError(f"unknown bandit scope {scope!r} (expected 'content' or 'timing')")
    return scope


def load_arms(conn: psycopg.Connection, account_id: str, world: str, scope: str) -> dict[str, ArmStats]:
    """All arms of one account, world and scope, keyed by arm_id."""
    rows = conn.execute(
        """SELECT arm_id, pulls, reward_sum, reward_sq_sum, weight_sum FROM bandit_arms
            WHERE account_id = %s AND world = %s AND scope = %s ORDER BY arm_id""",
        (account_id, check_world(world), check_scope(scope)),
    ).fetchall()
    return {r["arm_id"]: ArmStats(r["arm_id"], int(r["pulls"]), float(r["reward_sum"]), float(r["reward_sq_sum"]),
                                  float(r["weight_sum"])) for r in rows}


def save_arms(conn: psycopg.Connection, account_id: str, world: str, scope: str, arms: Iterable[ArmStats],
              now: datetime) -> None:
    """Write arms as given (absolute values; e.g. to seed or reset). Learning uses ``apply_pass2_rewards``."""
    for s in arms:
        conn.execute(
            """INSERT INTO bandit_arms (account_id, world, scope, arm_id, pulls, reward_sum, reward_sq_sum, weight_sum, updated_at)
               VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)
               ON CONFLICT (account_id, world, scope, arm_id) DO UPDATE
                  SET pulls = EXCLUDED.pulls, reward_sum = EXCLUDED.reward_sum, reward_sq_sum = EXCLUDED.reward_sq_sum,
                      weight_sum = EXCLUDED.weight_sum, updated_at = EXCLUDED.updated_at""",
            (account_id, check_world(world), check_scope(scope), s.arm_id, s.pulls, s.reward_sum, s.reward_sq_sum,
             s.weight_sum, now),
        )


def _add_arms(conn: psycopg.Connection, account_id: str, world: str, scope: str, deltas: Mapping[str, ArmStats],
              now: datetime) -> None:
    # Increments in SQL, not read-modify-write in Python, so concurrent writers never lose an update.
    for s in deltas.values():
        conn.execute(
            """INSERT INTO bandit_arms (account_id, world, scope, arm_id, pulls, reward_sum, reward_sq_sum, weight_sum, updated_at)
               VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)
               ON CONFLICT (account_id, world, scope, arm_id) DO UPDATE
                  SET pulls = bandit_arms.pulls + EXCLUDED.pulls,
                      reward_sum = bandit_arms.reward_sum + EXCLUDED.reward_sum,
                      reward_sq_sum = bandit_arms.reward_sq_sum + EXCLUDED.reward_sq_sum,
                      weight_sum = bandit_arms.weight_sum + EXCLUDED.weight_sum,
                      updated_at = EXCLUDED.updated_at""",
            (account_id, world, scope, s.arm_id, s.pulls, s.reward_sum, s.reward_sq_sum, s.weight_sum, now),
        )


def apply_pass2_rewards(conn: psycopg.Connection, account_id: str, world: str, now: datetime) -> int:
    """Fold every final (pass-2) outcome not yet applied into its content and timing arms.

    Only outcomes of ``world`` count (world 'live' <=> outcomes.simulated = false). A content arm
    learns the composite reward, one pull per post: the exposure weight min(1, 1000/impressions) is
    the predictors' training weight; in a bandit it would count the posts that reached the most people,
    whose rates are the most precise, the least (measured: followers gained +4% over 4 seeds without
    it, `xbot bench growth`). A timing arm learns
    follows per post, unweighted: the hour mostly decides *how many* people see a post, which a
    per-impression rate cannot see (a rate-rewarded timing bandit drifts to hours nobody is awake). The arm updates and ``bandit_applied = true``
    happen in one transaction, and rows are locked while read, so running this twice (or twice at
    once) applies each outcome exactly once. Returns the number of outcomes applied.
    """
    simulated = check_world(world) != "live"
    with conn.transaction():
        rows = conn.execute(
            """SELECT o.outcome_id, o.reward_composite, o.follows, o.impressions, cm.bandit_arm, cm.timing_arm
                 FROM outcomes o JOIN content_metadata cm ON cm.decision_id = o.decision_id
                WHERE o.account_id = %s AND o.collected_pass = 2 AND NOT o.bandit_applied AND o.simulated = %s
                ORDER BY o.outcome_id
                  FOR UPDATE OF o""",
            (account_id, simulated),
        ).fetchall()
        if not rows:
            return 0
        deltas: dict[str, dict[str, ArmStats]] = {"content": {}, "timing": {}}
        for r in rows:
            credits = (("content", r["bandit_arm"], float(r["reward_composite"]), 1.0),
                       ("timing", r["timing_arm"], float(r["follows"]), 1.0))
            for scope, arm, value, weight in credits:
                if arm is None:
                    continue  # e.g. a decision made without a timing arm: nothing to credit
                deltas[scope][arm] = update(deltas[scope].get(arm, ArmStats(arm)), value, weight)
        for scope, d in deltas.items():
            _add_arms(conn, account_id, world, scope, d, now)
        conn.execute("UPDATE outcomes SET bandit_applied = true WHERE outcome_id = ANY(%s)",
                     ([r["outcome_id"] for r in rows],))
    return len(rows)
