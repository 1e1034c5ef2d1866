"""Outcomes (T+1h and T+24h reads), follower snapshots and posted decisions: the measured side of
every decision."""
from __future__ import annotations

from datetime import datetime, timedelta

from xbotlib.core import vocab
from xbotlib.core.growth_model import PostOutcome


MODEL_WINDOW_DAYS = 90  # the growth model learns from the last 90 days: audiences drift


def post_outcomes(conn, account_id: str, world: str, now: datetime) -> list:
    """Final (pass-2) outcomes of this account's posts in ``world`` over the last ``MODEL_WINDOW_DAYS``,
    as ``growth_model.PostOutcome`` with the follower count of the snapshot before each post went out."""
    rows = conn.execute(
        """SELECT cm.hook_pattern, cm.topic, cm.timing_arm, cm.novelty, o.profile_visits, o.follows,
                  COALESCE((SELECT fs.followers_count FROM follower_snapshots fs
                             WHERE fs.account_id = cm.account_id AND fs.simulated = o.simulated
                               AND fs.taken_at <= pd.posted_at ORDER BY fs.taken_at DESC LIMIT 1),
                           (SELECT fs.followers_count FROM follower_snapshots fs
                             WHERE fs.account_id = cm.account_id AND fs.simulated = o.simulated
                             ORDER BY fs.taken_at LIMIT 1)) AS followers
             FROM outcomes o
             JOIN content_metadata cm ON cm.decision_id = o.decision_id
             JOIN posted_decisions pd ON pd.decision_id = o.decision_id
            WHERE o.account_id = %s AND o.collected_pass = 2 AND o.simulated = %s
              AND cm.decision_type = 'post' AND cm.timing_arm IS NOT NULL AND pd.posted_at > %s
            ORDER BY pd.posted_at""",
        (account_id, world != "live", now - timedelta(days=MODEL_WINDOW_DAYS))).fetchall()
    out = []
    for r in rows:
        if r["followers"] is None or r["hook_pattern"] not in vocab.HOOK_PATTERNS:
            continue  # no follower snapshot yet, or a hook from an older vocabulary: nothing to learn from
        topic = r["topic"] if r["topic"] in vocab.TOPICS else None
        out.append(PostOutcome(hook=r["hook_pattern"], topic=topic, hour=int(r["timing_arm"]),
                               profile_visits=float(r["profile_visits"]), follows=float(r["follows"]),
                               followers=float(r["followers"]),
                               novelty=None if r["novelty"] is None else min(1.0, max(0.0, float(r["novelty"])))))
    return out
