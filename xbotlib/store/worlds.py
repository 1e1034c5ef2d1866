"""Worlds: where posts went and outcomes came from — 'live' (the real X) or 'sandbox' (anything else).

One type and one check for the whole package: ``World``, ``WORLDS`` and ``check_world``. Every
store function that takes a ``world`` validates it here, and the SQL that answers "which worlds does
this account have data in" lives here too.
"""
from __future__ import annotations

from datetime import datetime
from typing import Literal, cast

World = Literal["live", "sandbox"]
WORLDS: tuple[World, ...] = ("live", "sandbox")
DEFAULT_WORLD: World = "sandbox"  # an account with no posts yet has only ever been simulated


def check_world(world: str) -> World:
    """``world`` itself when it is 'live' or 'sandbox'; ValueError naming the value otherwise."""
    if world not in WORLDS:
        raise ValueError(f"unknown world {world!r} (expected 'live' or 'sandbox'; see Settings.world)")
    return cast(World, world)


def world_with_most_posts(conn, account_id: str) -> World | None:
    """The world most of the account's posts went to (ties: 'live' first), None when it has posted nothing."""
    row = conn.execute("""SELECT world FROM posted_decisions WHERE account_id = %s
                           GROUP BY world ORDER BY count(*) DESC, world LIMIT 1""", (account_id,)).fetchone()
    return check_world(row["world"]) if row else None


def resolve_world(conn, account_id: str, world: str | None = None) -> World:
    """``world`` checked, else the world most of the account's posts went to ('sandbox' with no posts)."""
    if world:
        return check_world(world)
    return world_with_most_posts(conn, account_id) or DEFAULT_WORLD


def outcomes_by_world(conn, account_id: str, since: datetime, until: datetime) -> list[dict]:
    """Outcomes collected in (since, until] per world of their post ('unknown' when the post has no
    row): ``world``, ``outcomes``, ``real``, ``simulated``, ordered by world."""
    return conn.execute(
        # the post's world by primary-key probe, once per post of the window's outcomes (a post has up to two):
        # a join let the planner hash every account's posts, a cost that grew with all history (issue #19)
        """SELECT coalesce(p.world, 'unknown') AS world, sum(o.n)::bigint AS outcomes, sum(o.real)::bigint AS real,
                  sum(o.simulated)::bigint AS simulated
             FROM (SELECT decision_id, count(*) AS n, count(*) FILTER (WHERE NOT simulated) AS real,
                          count(*) FILTER (WHERE simulated) AS simulated
                     FROM outcomes
                    WHERE account_id = %s AND collected_at > %s AND collected_at <= %s
                    GROUP BY decision_id) o
             LEFT JOIN LATERAL (SELECT p.world FROM posted_decisions p WHERE p.decision_id = o.decision_id
                                 OFFSET 0) p ON true
            GROUP BY 1 ORDER BY 1""", (account_id, since, until)).fetchall()


# the newest event of an account (%(acc)s) in a world (%(world)s, simulated = %(sim)s): latest_event_at and
# read_models.account_with_latest_event
LATEST_EVENT_SQL = """greatest(
                  (SELECT max(collected_at) FROM outcomes WHERE account_id = %(acc)s AND simulated = %(sim)s),
                  (SELECT max(taken_at) FROM follower_snapshots WHERE account_id = %(acc)s AND simulated = %(sim)s),
                  (SELECT max(posted_at) FROM posted_decisions WHERE account_id = %(acc)s AND world = %(world)s),
                  (SELECT max(cm.created_at) FROM content_metadata cm
                    WHERE cm.account_id = %(acc)s
                      AND coalesce((SELECT p.world FROM posted_decisions p WHERE p.decision_id = cm.decision_id),
                                   %(world)s) = %(world)s))"""


def latest_event_at(conn, account_id: str, world: str) -> datetime | None:
    """The newest thing that happened to the account in ``world``: the latest of its outcomes collected,
    follower snapshots taken, posts published and decisions planned there (None when nothing has).
    A simulated world's clock: 'now' for figures of a campaign that ran in simulated time."""
    simulated = check_world(world) != "live"
    row = conn.execute(f"SELECT {LATEST_EVENT_SQL} AS latest",
                       {"acc": account_id, "sim": simulated, "world": world}).fetchone()
    return row["latest"] if row else None
