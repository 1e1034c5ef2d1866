"""Growth: followers and their change, the daily series, 7-day FPKI and novelty, top posts
(``GET /api/growth``)."""
from __future__ import annotations

from datetime import date, datetime, timedelta

from pydantic import BaseModel, Field

from xbotlib.store import outcomes, read_models
from xbotlib.views.accounts import day_start, now_of
from xbotlib.views.learning import NOT_IN_MEMORY

TOP_POSTS_WINDOW_DAYS = 30
TOP_POSTS_LIMIT = 10
DAILY_SERIES_DAYS = 30
EXCERPT_CHARS = 80


class DailyFollowers(BaseModel):
    day: date = Field(description="UTC day")
    followers: int = Field(description="last snapshot of that day")


class TopPost(BaseModel):
    decision_id: str
    tweet_id: str | None
    excerpt: str
    follows: float
    fpki: float
    impressions: int
    collected_at: datetime


class Growth(BaseModel):
    account_id: str
    world: str
    simulated: bool = Field(description="true: these figures come from the sandbox, not the real X")
    now: datetime
    followers_now: int | None
    followers_at: datetime | None
    change_1d: int | None = Field(description="null when no snapshot exists in the day before the reference")
    change_7d: int | None
    daily: list[DailyFollowers] = Field(description=f"last {DAILY_SERIES_DAYS} UTC days; days without a "
                                                    "snapshot are absent, not filled in")
    fpki_avg_7d: float | None
    novelty_avg_7d: float | None
    outcomes_7d: int = Field(description="pass-2 outcomes behind the 7-day averages")
    top_posts: list[TopPost] = Field(description=f"pass-2 outcomes of the last {TOP_POSTS_WINDOW_DAYS} days, "
                                                 "most follows first")


def followers_now(conn, account_id: str, simulated: bool, now: datetime) -> dict | None:
    """The latest follower snapshot of the last ``DAILY_SERIES_DAYS`` days (followers_count, taken_at)."""
    return outcomes.latest_follower_snapshot(conn, account_id, simulated, now, timedelta(days=DAILY_SERIES_DAYS))


def final_outcomes_7d(conn, account_id: str, simulated: bool, now: datetime) -> dict:
    """Mean fpki and novelty of the pass-2 outcomes of the last 7 days, and how many (fpki, novelty, n)."""
    return outcomes.final_outcome_averages(conn, account_id, simulated, now - timedelta(days=7), now)


# The windows ``read_growth`` reads, as its store functions bound them: name -> (table, low, high, low_inclusive), each
# bound (from, offset) meaning ``from - offset``, ``from`` "now" or "day" (UTC midnight of now's day)
_DAY = timedelta(days=1)
GROWTH_WINDOWS = {
    "followers_now": ("follower_snapshots", ("now", timedelta(days=DAILY_SERIES_DAYS)), ("now", timedelta()), False),
    "before_1d": ("follower_snapshots", ("now", 2 * _DAY), ("now", _DAY), False),
    "before_7d": ("follower_snapshots", ("now", 8 * _DAY), ("now", 7 * _DAY), False),
    "daily": ("follower_snapshots", ("day", (DAILY_SERIES_DAYS - 1) * _DAY), ("now", timedelta()), True),
    "outcomes_7d": ("outcomes", ("now", 7 * _DAY), ("now", timedelta()), False),
    "top_posts": ("outcomes", ("now", timedelta(days=TOP_POSTS_WINDOW_DAYS)), ("now", timedelta()), False),
}


def growth_windows(now: datetime) -> dict[str, tuple[str, datetime, datetime, bool]]:
    """``GROWTH_WINDOWS`` at ``now``: name -> (table, low, high, low_inclusive)."""
    def at(bound: tuple[str, timedelta]) -> datetime:
        return (now if bound[0] == "now" else day_start(now)) - bound[1]
    return {name: (table, at(low), at(high), inclusive)
            for name, (table, low, high, inclusive) in GROWTH_WINDOWS.items()}


def growth(conn, account: dict, world: str, now: datetime) -> Growth:
    """Followers and their change, the daily series, 7-day FPKI and novelty, top posts of ``world``: ``read_growth``
    once per change of what it reads (``GROWTHS``, keyed by ``read_models.growth_fingerprint``: the account's
    write counts and the edges of each window), so a page read far more often than the account posts is one
    statement of index probes, not six window reads."""
    acc = account["account_id"]
    return _kept_or_read(conn, account, world, now, read_models.growth_fingerprint(conn, acc, growth_windows(now)))


def growth_at(conn, account_id: str, world: str, wall_now: datetime, *,
              cached_only: bool = False) -> Growth | None | object:
    """``growth`` of ``account_id`` at its world's "now" (``accounts.world_now``), the account, its now and the
    fingerprint read in one statement (``read_models.account_growth_row``); None when the account is not stored. With
    ``cached_only``, ``NOT_IN_MEMORY`` when the figures are not held for the fingerprint: the caller reads again in one
    snapshot (a transaction), so what ``read_growth`` reads agrees with the statement."""
    row = read_models.account_growth_row(conn, account_id, world, wall_now, GROWTH_WINDOWS)
    if row is None:
        return None
    account, now = {"account_id": account_id, "created_at": row["created_at"]}, now_of(world, row["latest"], wall_now)
    return _kept_or_read(conn, account, world, now, (row["db"], row["writes"], tuple(row["edges"])), cached_only)


def _kept_or_read(conn, account: dict, world: str, now: datetime, fingerprint: tuple,
                  cached_only: bool = False) -> Growth | object:
    key = (account["account_id"], world, fingerprint)
    cached = GROWTHS.get(key)
    if cached is None and cached_only:
        return NOT_IN_MEMORY
    if cached is None:
        cached = read_growth(conn, account, world, now)
        if len(GROWTHS) >= GROWTHS_KEPT:
            GROWTHS.pop(next(iter(GROWTHS)))  # the oldest: superseded, or an account not asked about
        GROWTHS[key] = cached
    # the figures are the data's; "now" is this request's (equal data, a later now: equal figures)
    return cached if cached.now == now else cached.model_copy(update={"now": now})


# Growth by (account, world, fingerprint); an entry is never stale: changed data or windows have another key
GROWTHS: dict[tuple, Growth] = {}
GROWTHS_KEPT = 1024


def read_growth(conn, account: dict, world: str, now: datetime) -> Growth:
    """``growth`` read from the data now, without the cache."""
    acc, simulated = account["account_id"], world != "live"
    latest = followers_now(conn, acc, simulated, now)
    changes = {}
    for key, days in (("change_1d", 1), ("change_7d", 7)):
        before = outcomes.latest_follower_snapshot(conn, acc, simulated, now - timedelta(days=days),
                                                   timedelta(days=1))
        changes[key] = latest["followers_count"] - before["followers_count"] if latest and before else None
    first_day = day_start(now) - timedelta(days=DAILY_SERIES_DAYS - 1)
    daily = outcomes.daily_followers(conn, acc, simulated, first_day, now)
    avg = final_outcomes_7d(conn, acc, simulated, now)
    top = outcomes.top_posts(conn, acc, simulated, now - timedelta(days=TOP_POSTS_WINDOW_DAYS), now,
                             limit=TOP_POSTS_LIMIT, excerpt_chars=EXCERPT_CHARS)
    return Growth(
        account_id=acc, world=world, simulated=simulated, now=now,
        followers_now=latest["followers_count"] if latest else None,
        followers_at=latest["taken_at"] if latest else None, **changes,
        daily=[{"day": r["day"], "followers": r["followers_count"]} for r in daily],
        fpki_avg_7d=avg["fpki"], novelty_avg_7d=avg["novelty"], outcomes_7d=avg["n"], top_posts=top)
