"""Reading an account's logged decisions for off-policy evaluation (``xbotlib.core.ope_replay``)."""
from __future__ import annotations

import psycopg

from xbotlib.core.ope_replay import LoggedDecision
from xbotlib.store.worlds import check_world


def logged_decisions(conn: psycopg.Connection, account_id: str, world: str) -> list[LoggedDecision]:
    """Every decision of the account with its logged arms and propensities, the follower snapshot before it
    went out (as ``outcomes.post_outcomes`` reads it) and its final (pass-2) outcome of ``world`` when there is
    one (``final_at`` is when it was collected), oldest first."""
    simulated = check_world(world) != "live"
    rows = conn.execute(
        """SELECT cm.decision_id::text AS decision_id, cm.decision_type, cm.status, cm.created_at, cm.scheduled_at,
                  pd.posted_at, cm.bandit_arm, cm.hook_pattern, cm.topic, cm.novelty, cm.timing_arm,
                  cm.bandit_propensity, cm.timing_propensity,
                  COALESCE(cm.experiment_arms -> 'late_evening_slot' ->> 'arm' = 'treatment', false) AS hour_from_experiment,
                  COALESCE((SELECT fs.followers_count FROM follower_snapshots fs
                             WHERE fs.account_id = cm.account_id AND fs.simulated = %(sim)s
                               AND fs.taken_at <= pd.posted_at ORDER BY fs.taken_at DESC LIMIT 1),
                           (SELECT fs.followers_count FROM follower_snapshots fs
                             WHERE fs.account_id = cm.account_id AND fs.simulated = %(sim)s
                             ORDER BY fs.taken_at LIMIT 1)) AS followers,
                  o.collected_at AS final_at, o.follows, o.profile_visits, o.reward_composite
             FROM content_metadata cm
             LEFT JOIN posted_decisions pd ON pd.decision_id = cm.decision_id
             LEFT JOIN outcomes o ON o.decision_id = cm.decision_id AND o.collected_pass = 2 AND o.simulated = %(sim)s
            WHERE cm.account_id = %(acc)s
            ORDER BY cm.created_at, cm.decision_id""",
        {"acc": account_id, "sim": simulated}).fetchall()
    return [LoggedDecision(
        decision_id=r["decision_id"], decision_type=r["decision_type"], status=r["status"], created_at=r["created_at"],
        scheduled_at=r["scheduled_at"], posted_at=r["posted_at"], bandit_arm=r["bandit_arm"],
        hook_pattern=r["hook_pattern"], topic=r["topic"], novelty=_float(r["novelty"]), timing_arm=r["timing_arm"],
        hook_propensity=_float(r["bandit_propensity"]), hour_propensity=_float(r["timing_propensity"]),
        hour_from_experiment=bool(r["hour_from_experiment"]), followers=_float(r["followers"]),
        final_at=r["final_at"], follows=_float(r["follows"]), profile_visits=_float(r["profile_visits"]),
        reward_composite=_float(r["reward_composite"])) for r in rows]


def _float(v) -> float | None:
    return None if v is None else float(v)
