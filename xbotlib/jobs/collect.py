"""The collect job: read what X measured for each posted decision, at T+1h and T+24h.

Every tick
1. takes a follower snapshot (``GET /2/users/me``) — the evidence for follow attribution;
2. finds the posted decisions of this account and world whose window is due (pass 1: posted_at + 1h
   <= now, pass 2: posted_at + 24h <= now) and that have no outcome row for that pass yet. Missed
   ticks are caught up: a late pass-1 read is still stored as pass 1, with its real ``collected_at``
   (so a post first read at T+30h gets pass 1 and pass 2 from the same read). Posts older than X's
   30-day limit on private metrics are skipped with a log line — never filled in;
3. looks the tweets up 100 at a time (``GET /2/tweets``) plus their follows where X's analytics
   endpoint allows it, and stores each batch in one transaction (a malformed answer raises and stores
   nothing of that batch); per-item errors (a deleted tweet) are logged and skipped;
4. applies the pass-2 rewards to the bandit arms (idempotent).

A 429 records the endpoint's reset time and ends the tick (``skipped``); the next ticks skip until
then. Nothing here sleeps.

Where follows come from
----------------------
``follows_source='analytics'``: X's ``GET /2/tweets/analytics`` reports follows per post.

``follows_source='snapshot_attribution'`` (analytics unavailable): follows are attributed from the
follower snapshots. For each pair of consecutive snapshots (t_i, t_i+1] the gain is
max(0, followers_i+1 - followers_i) — a net loss (churn) is never turned into negative follows. The
gain is split across the posts *live* in that interval (posted before t_i+1 and less than
``ATTRIBUTION_HORIZON`` = 24h old at t_i) in proportion to each post's profile visits (the latest
read); when none of them has a profile visit, equally. A post's follows are the sum of its shares
over the intervals up to the read. So the attributed follows of all posts add up to the positive
follower gains, nothing is counted twice, and follows gained before the first snapshot are not
attributed (never invented).
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Iterable, Mapping, Sequence

import httpx
import numpy as np

from xbotlib.clients.xapi import XConnectionError, XRateLimited, XServerError, XTimeout
from xbotlib.core.reward import composite_reward, derived_rates, exposure_weight
from xbotlib.jobs.context import JobContext, JobResult, ensure_account_once
from xbotlib.logs import tagged
from xbotlib.store import outcomes
from xbotlib.store.arms import apply_pass2_rewards
from xbotlib.store.outcomes import METRIC_FIELDS
from xbotlib.store.ratelimits import deferred_until, record_rate_limit

log = logging.getLogger("xbot.jobs.collect")

PASS_DELAYS: dict[int, timedelta] = {1: timedelta(hours=1), 2: timedelta(hours=24)}
PRIVATE_METRICS_LIMIT = timedelta(days=30)   # X returns non-public metrics only for posts < 30 days old
ATTRIBUTION_HORIZON = timedelta(hours=24)    # a post earns follows (by attribution) for a day
BATCH_SIZE = 100                             # X's limit of ids per GET /2/tweets
LOOKUP_ENDPOINT = "GET /2/tweets"
ANALYTICS_ENDPOINT = "GET /2/tweets/analytics"
ME_ENDPOINT = "GET /2/users/me"
# METRIC_FIELDS (the counts of one read) and the outcomes columns are defined with their table in
# xbotlib.store.outcomes


# ----------------------------------------------------------------------------- functional core

@dataclass(frozen=True)
class DuePost:
    """A posted decision with at least one pass due and not yet stored."""
    decision_id: str
    tweet_id: str
    posted_at: datetime
    passes: tuple[int, ...]
    novelty: float | None
    dup_penalty: float


@dataclass(frozen=True)
class LivePost:
    """A post that may have earned follows in a snapshot interval, with its latest profile visits."""
    decision_id: str
    posted_at: datetime
    profile_visits: int


def due_passes(posted_at: datetime, stored: Iterable[int], now: datetime) -> tuple[int, ...]:
    """The passes (1, 2) whose window has opened by ``now`` and that are not in ``stored``."""
    have = set(stored)
    return tuple(p for p, delay in PASS_DELAYS.items() if p not in have and posted_at + delay <= now)


def attribute_follows(snapshots: Sequence[tuple[datetime, int]], posts: Sequence[LivePost], until: datetime,
                      horizon: timedelta = ATTRIBUTION_HORIZON) -> dict[str, float]:
    """Follows attributed to each post from follower snapshots (the rule in the module docstring).

    Parameters
    ----------
    snapshots : (taken_at, followers_count) pairs, any order.
    posts : every post that may be live in the covered intervals (not only the ones being read).
    until : only intervals ending at or before this time count (the read time).

    Returns
    -------
    dict decision_id -> attributed follows (>= 0); every post in ``posts`` has an entry.
    """
    out = {p.decision_id: 0.0 for p in posts}
    snaps = sorted((t, int(f)) for t, f in snapshots if t <= until)
    if len(snaps) < 2 or not posts:
        return out
    ids = [p.decision_id for p in posts]
    posted = np.array([p.posted_at.timestamp() for p in posts])
    visits = np.array([max(0, int(p.profile_visits or 0)) for p in posts], dtype=float)
    span = horizon.total_seconds()
    totals = np.zeros(len(posts))
    for (t0, f0), (t1, f1) in zip(snaps, snaps[1:]):
        gain = max(0, f1 - f0)
        if gain == 0 or t1 <= t0:
            continue
        live = (posted < t1.timestamp()) & (posted + span > t0.timestamp())
        if not live.any():
            continue  # follows nobody can have earned here (e.g. organic growth between posting days)
        weights = np.where(live, visits, 0.0)
        if weights.sum() <= 0:
            weights = live.astype(float)
        totals += gain * weights / weights.sum()
    return {i: float(v) for i, v in zip(ids, totals)}


def outcome_row(post: DuePost, collected_pass: int, metrics: Mapping[str, int], follows: float,
                follows_source: str, *, account_id: str, simulated: bool, weights: Mapping[str, float],
                collected_at: datetime) -> dict[str, Any]:
    """One ``outcomes`` row: raw counts, derived rates, composite reward and training weight."""
    counts = {k: max(0, int(metrics.get(k) or 0)) for k in METRIC_FIELDS}
    follows = max(0.0, float(follows))
    rates = derived_rates(counts["impressions"], counts["likes"], counts["retweets"], counts["replies"],
                          counts["quotes"], counts["bookmarks"], follows)
    # unknown novelty earns no novelty bonus: the reward must not credit what was never measured
    novelty = post.novelty
    reward = composite_reward(rates["fpki"], rates["retweet_rate"], rates["reply_rate"],
                              novelty if novelty is not None else 0.0, post.dup_penalty, weights)
    return {
        "decision_id": post.decision_id, "account_id": account_id, "collected_pass": collected_pass,
        "simulated": simulated, **counts, "follows": follows, "follows_source": follows_source,
        "er": float(rates["er"]), "fpki": float(rates["fpki"]), "retweet_rate": float(rates["retweet_rate"]),
        "reply_rate": float(rates["reply_rate"]), "novelty": novelty, "dup_penalty": post.dup_penalty,
        "reward_composite": float(reward), "sample_weight": float(exposure_weight(counts["impressions"])),
        "collected_at": collected_at,
    }


def batched(items: Sequence[Any], size: int = BATCH_SIZE) -> list[Sequence[Any]]:
    return [items[i:i + size] for i in range(0, len(items), size)]


# ----------------------------------------------------------------------------- shell: database

def find_due_posts(conn, account_id: str, world: str, now: datetime) -> tuple[list[DuePost], int]:
    """Posts with a due, unstored pass (oldest first), and how many are past the 30-day limit."""
    rows = outcomes.posts_awaiting_outcomes(conn, account_id, world, now - PASS_DELAYS[1])
    due, too_old = [], 0
    for r in rows:
        passes = due_passes(r["posted_at"], r["stored"], now)
        if not passes:
            continue
        if r["posted_at"] < now - PRIVATE_METRICS_LIMIT:
            too_old += 1
            continue
        due.append(DuePost(r["decision_id"], r["tweet_id"], r["posted_at"], passes, r["novelty"],
                           float(r["dup_penalty"] or 0.0)))
    return due, too_old


def _live_posts(conn, account_id: str, world: str, since: datetime, until: datetime) -> list[LivePost]:
    rows = outcomes.posts_published_between(conn, account_id, world, since - ATTRIBUTION_HORIZON, until)
    return [LivePost(r["decision_id"], r["posted_at"], int(r["profile_visits"])) for r in rows]


# ----------------------------------------------------------------------------- shell: X + the tick

def _metrics_of(tm: Any, analytics: Any | None) -> dict[str, int]:
    """Counts of one read; analytics fills profile visits / link clicks the lookup did not give."""
    m = {k: getattr(tm, k, None) for k in METRIC_FIELDS}
    if analytics is not None:
        for k in ("profile_visits", "link_clicks"):
            if m[k] is None and getattr(analytics, k, None) is not None:
                m[k] = getattr(analytics, k)
    return {k: int(v or 0) for k, v in m.items()}


def collect_batch(ctx: JobContext, batch: Sequence[DuePost], now: datetime, *,
                  ask_analytics: bool = True) -> dict[str, int]:
    """Read one batch (≤100 tweets) from X and store it in one transaction.

    Returns counts, and ``analytics`` 1/0: whether X's analytics endpoint answered (when it did not,
    the caller need not ask again in this tick).
    """
    ids = [p.tweet_id for p in batch]
    lookup = ctx.x.lookup_tweets(ids)
    start = min(p.posted_at for p in batch)
    # None: this access level has no analytics -> follows by snapshot attribution
    analytics = ctx.x.tweet_analytics(ids, start, now) if ask_analytics else None

    counts = {"stored": 0, "lookup_errors": 0, "missing": 0, "analytics": int(analytics is not None)}
    read: list[tuple[DuePost, dict[str, int], Any]] = []
    for post in batch:
        if post.tweet_id in lookup.errors:
            counts["lookup_errors"] += 1
            tagged(log, "ANALYTICS_COLLECTOR", "lookup error", level=logging.WARNING, decision_id=post.decision_id,
                   tweet_id=post.tweet_id, error=_kv(lookup.errors[post.tweet_id]))
            continue
        tm = lookup.metrics.get(post.tweet_id)
        if tm is None:  # neither data nor error: X said nothing about it; try again next tick
            counts["missing"] += 1
            tagged(log, "ANALYTICS_COLLECTOR", "no data", level=logging.WARNING, decision_id=post.decision_id,
                   tweet_id=post.tweet_id)
            continue
        an = analytics.get(post.tweet_id) if analytics is not None else None
        read.append((post, _metrics_of(tm, an), an))
    if not read:
        return counts

    weights = ctx.settings.reward_weights()
    with ctx.db.connection() as conn:
        attributed: dict[str, float] = {}
        if any(an is None for _, _, an in read):
            latest_visits = {p.decision_id: m["profile_visits"] for p, m, _ in read}
            # intervals after the batch's youngest post left the horizon cannot credit these posts
            end = min(now, max(p.posted_at for p in batch) + ATTRIBUTION_HORIZON)
            snapshots = outcomes.follower_counts_covering(conn, ctx.account_id, ctx.simulated, start, end)
            last = max((t for t, _ in snapshots), default=end)
            live = [LivePost(lp.decision_id, lp.posted_at, latest_visits.get(lp.decision_id, lp.profile_visits))
                    for lp in _live_posts(conn, ctx.account_id, ctx.world, start, max(last, end))]
            attributed = attribute_follows(snapshots, live, now)
        rows = []
        for post, metrics, an in read:
            if an is not None:
                follows, source = float(an.follows or 0), "analytics"
            else:
                follows, source = attributed.get(post.decision_id, 0.0), "snapshot_attribution"
            for p in post.passes:
                rows.append(outcome_row(post, p, metrics, follows, source, account_id=ctx.account_id,
                                        simulated=ctx.simulated, weights=weights, collected_at=now))
        stored = outcomes.upsert_outcomes(conn, rows, {p.decision_id: m for p, m, _ in read})
    by_key = {(r["decision_id"], r["collected_pass"]): r for r in rows}
    for s in stored:
        r = by_key[(str(s["decision_id"]), s["collected_pass"])]
        tagged(log, "ANALYTICS_COLLECTOR", "stored outcome", decision_id=r["decision_id"], pass_=r["collected_pass"],
               er=r["er"], fpki=r["fpki"], follows_source=r["follows_source"], impressions=r["impressions"])
    counts["stored"] = len(stored)
    return counts


def tick(ctx: JobContext) -> JobResult:
    """Snapshot followers, collect every due pass, then feed pass-2 rewards to the bandits."""
    now = ctx.clock.now()
    with ctx.db.connection() as conn:
        ensure_account_once(ctx, conn)
        for endpoint in (ME_ENDPOINT, LOOKUP_ENDPOINT, ANALYTICS_ENDPOINT):
            until = deferred_until(conn, ctx.account_id, endpoint, now)
            if until is not None:
                tagged(log, "ANALYTICS_COLLECTOR", "deferred", reason="rate_limited", endpoint=_kv(endpoint),
                       until=until.isoformat())
                return JobResult.skipped("rate_limited", endpoint=endpoint, until=until.isoformat())

    detail: dict[str, Any] = {"stored": 0, "lookup_errors": 0, "missing": 0, "too_old": 0, "due": 0,
                              "batches": 0, "snapshot": False, "bandit_updates": 0}
    try:
        user = ctx.x.me()
        with ctx.db.connection() as conn:
            detail["snapshot"] = outcomes.record_follower_snapshot(conn, ctx.account_id, now, user.followers_count,
                                                                   user.following_count, user.tweet_count,
                                                                   ctx.simulated)
            due, detail["too_old"] = find_due_posts(conn, ctx.account_id, ctx.world, now)
        detail["due"] = len(due)
        if detail["too_old"]:
            tagged(log, "ANALYTICS_COLLECTOR", "skipped", level=logging.WARNING, reason="older_than_30_days",
                   count=detail["too_old"])
        ask_analytics = True
        for batch in batched(due):
            counts = collect_batch(ctx, batch, now, ask_analytics=ask_analytics)
            ask_analytics = bool(counts.pop("analytics"))
            detail["batches"] += 1
            for k, v in counts.items():
                detail[k] += v
    except XRateLimited as exc:
        with ctx.db.connection() as conn:
            record_rate_limit(conn, ctx.account_id, exc.endpoint or LOOKUP_ENDPOINT, exc.reset_at)
        tagged(log, "ANALYTICS_COLLECTOR", "deferred", level=logging.WARNING, reason="rate_limited",
               endpoint=_kv(exc.endpoint or LOOKUP_ENDPOINT), until=exc.reset_at.isoformat(), stored=detail["stored"])
        return JobResult.skipped("rate_limited", until=exc.reset_at.isoformat(), **detail)
    except (XServerError, XTimeout, XConnectionError, httpx.TransportError) as exc:
        # transient: whatever was stored stays; the rest is still due at the next tick
        tagged(log, "ANALYTICS_COLLECTOR", "x_unavailable", level=logging.WARNING,
               error=_kv(f"{type(exc).__name__}: {exc}"), stored=detail["stored"])
        return JobResult.skipped("x_unavailable", error=str(exc), **detail)

    with ctx.db.connection() as conn:
        detail["bandit_updates"] = int(apply_pass2_rewards(conn, ctx.account_id, ctx.world, now) or 0)
    return JobResult(detail=detail)


def _kv(text: str) -> str:
    return str(text).replace(" ", "_")[:120]
