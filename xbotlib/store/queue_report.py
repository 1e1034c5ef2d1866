"""What the job queue did, read back for ``bench/bench_workers.py`` and its tests: tick lateness, run
counts, collection lateness, posted tweets, due posts never sent, overlapping ticks (``runs.overlapping_runs``)."""
from __future__ import annotations

from datetime import datetime


def tick_lateness_s(conn, job: str, since: datetime) -> list[float]:
    """Seconds (clock time) from each queued tick's schedule occurrence (at or after ``since``) to its start."""
    return [float(r["s"]) for r in conn.execute(
        """SELECT extract(epoch FROM started_at - scheduled_for) AS s FROM job_runs
            WHERE job = %s AND scheduled_for >= %s AND status <> 'missed' ORDER BY 1""", (job, since)).fetchall()]


def job_run_counts(conn, since: datetime) -> list[dict]:
    """Rows job, status, runs: the runs of schedule occurrences at or after ``since``."""
    return conn.execute("SELECT job, status, count(*) AS runs FROM job_runs WHERE scheduled_for >= %s "
                        "GROUP BY 1, 2 ORDER BY 1, 2", (since,)).fetchall()


def collection_lateness_s(conn, collected_pass: int, delay_s: float) -> list[float]:
    """Seconds (clock time) from each outcome's due time (posted_at + ``delay_s``) to its collection."""
    return [float(r["s"]) for r in conn.execute(
        """SELECT extract(epoch FROM o.collected_at - p.posted_at) - %s AS s
             FROM outcomes o JOIN posted_decisions p USING (decision_id)
            WHERE o.collected_pass = %s ORDER BY 1""", (delay_s, collected_pass)).fetchall()]


def posted_tweets(conn) -> list[dict]:
    """Every recorded post: decision_id, account_id, tweet_id, posted_at."""
    return conn.execute("SELECT decision_id::text, account_id, tweet_id, posted_at FROM posted_decisions "
                        "ORDER BY posted_at").fetchall()


def decision_status_counts(conn) -> dict[str, int]:
    return {r["status"]: r["n"] for r in conn.execute(
        "SELECT status, count(*) AS n FROM content_metadata GROUP BY 1").fetchall()}


def failed_decisions_by_reason(conn) -> dict[str, int]:
    """Failed decisions counted by the first 70 characters of their last error."""
    return {r["reason"]: r["n"] for r in conn.execute(
        "SELECT left(coalesce(last_error, '?'), 70) AS reason, count(*) AS n FROM content_metadata "
        "WHERE status = 'failed' GROUP BY 1 ORDER BY 2 DESC").fetchall()}


def due_unsent(conn, before: datetime) -> list[dict]:
    """Decisions due before ``before`` that are still queued or posting: decision_id, account_id, status,
    scheduled_at, last_error."""
    return conn.execute(
        """SELECT decision_id::text, account_id, status, scheduled_at, last_error FROM content_metadata
            WHERE status IN ('queued', 'posting') AND scheduled_at <= %s ORDER BY scheduled_at""",
        (before,)).fetchall()


def first_tick_after(conn, after: datetime) -> datetime | None:
    """When the first tick that ended well started at or after ``after``."""
    return conn.execute("SELECT min(started_at) AS t FROM job_runs WHERE started_at >= %s AND status IN ('ok', 'skipped')",
                        (after,)).fetchone()["t"]


def posted_topics_by_profile(conn) -> list[dict]:
    """Posts counted by the file the posting account's profile came from ('none' without a stored profile)
    and the decision's topic: shows each niche posting about its own topics."""
    return conn.execute(
        """SELECT coalesce(a.profile_source, 'none') AS profile, cm.topic, count(*) AS n
           FROM posted_decisions pd JOIN content_metadata cm ON cm.decision_id = pd.decision_id
           JOIN accounts a ON a.account_id = pd.account_id
           GROUP BY 1, 2 ORDER BY 1, 3 DESC, 2""").fetchall()
