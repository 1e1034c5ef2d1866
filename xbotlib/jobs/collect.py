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
   nothing of that batch); per-item errors (a deleted tweet) are logged and skipped. The batches are
   stored in order on a writer thread (``BatchWriter``) while the next one is read from X, so
   PostgreSQL's work overlaps X's; when X fails mid-tick, the batches read before are still stored;
4. applies the pass-2 rewards to the bandit arms (idempotent).

A 429 records the endpoint's reset time and ends the tick (``skipped``); the next ticks skip until
then. Nothing here sleeps.

Where follows come from
----------------------
``follows_source='analytics'``: X's ``GET /2/tweets/analytics`` reports follows per post.

``follows_source='snapshot_attribution'`` (analytics refused, as for most access levels): follows are
attributed from the follower snapshots, after taking out what no post caused.

1. The baseline. Followers also change without any post: organic follows (people who find the
   profile another way) and churn (unfollows). Its rate per hour ``b`` (may be negative) is estimated
   from the account's own snapshots of the last ``BASELINE_WINDOW`` (28 days): each interval's change
   is modelled as ``b × hours + β × visits arriving``, where visits arriving = every post's settled
   profile visits (its latest read, extrapolated by the accrual curve) × the part of its accrual curve
   ``1 − e^(−age/τ)`` inside the interval; τ is read from the posts' own pass-1 and later visits
   (``accrual_tau``; 4h before there are enough). Fitted by weighted least squares (a change's
   variance grows with the interval) with Huber weights (a burst or a purge cannot drag it far) and
   a normal prior centred on 0 (spread max(2, 0.5% of followers) per day): with little history the
   baseline stays near 0, which is the plain split of every gain.
2. The split. For each pair of consecutive snapshots (t_i, t_i+1] up to the read, the posts *live*
   in it (posted before t_i+1 and less than ``ATTRIBUTION_HORIZON`` = 24h old at t_i) share
   ``β × their visits arriving`` (what their visits predict) plus the part of the unexplained rest
   (change − baseline − prediction) that is theirs by variance (``prediction / (prediction + noise ×
   hours)``: a surprise at a busy hour is mostly the posts', at a quiet hour mostly the baseline's);
   each post gets it in proportion to its visits arriving in that interval. When no post has a
   profile visit at all, every post counts alike.
3. Churn and limits. A loss shows up as a change below the baseline and lowers the shares of the
   posts live then; a post's attributed follows are the sum of its shares, floored at 0 — churn never
   makes negative follows. Where the baseline is negative (more unfollows than organic follows), the
   posts are credited with the follows the churn hid, so the attributed sum can exceed the net gain.
   Intervals with no live post credit nobody; follows before the first snapshot are never attributed.

Over a campaign the attributed follows add up to the net gain minus the estimated baseline; the
benchmark (bench/bench_attribution.py, BENCHMARKS.md) checks them against the sandbox's truth.

Size: over 400 lines because the attribution rule (its pure functions: baseline, accrual, split, and
``TickAttribution``, the same arithmetic shared by every batch of a tick) sits beside the job that feeds it
from the store and stores what it returns; read top to bottom.
"""
from __future__ import annotations

import bisect
import logging
import math
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any, Iterable, Mapping, Sequence

import httpx
import numpy as np

from xbotlib.clients.xapi import XConnectionError, XRateLimited, XServerError, XTimeout
from xbotlib.core.reward import RewardWeights, check_weights, composite_reward, derived_rates, exposure_weight
from xbotlib.jobs.context import JobContext, JobResult, ensure_account_once
from xbotlib.logs import tagged
from xbotlib.store import outcomes
from xbotlib.store.arms import apply_pass2_rewards
from xbotlib.store.outcomes import METRIC_FIELDS
from xbotlib.store.ratelimits import first_deferrals, record_rate_limit

log = logging.getLogger("xbot.jobs.collect")

PASS_DELAYS: dict[int, timedelta] = {1: timedelta(hours=1), 2: timedelta(hours=24)}
PRIVATE_METRICS_LIMIT = timedelta(days=30)   # X returns non-public metrics only for posts < 30 days old
ATTRIBUTION_HORIZON = timedelta(hours=24)    # a post earns follows (by attribution) for a day
BASELINE_WINDOW = timedelta(days=28)         # snapshot history the organic/churn baseline is estimated from
ACCRUAL_TAU_PRIOR_H = 4.0                    # accrual time constant (hours) before enough reads to estimate it
TAU_MIN_VISITS = 30                          # late-read profile visits needed to estimate it
MIN_ACCRUED = 0.05                           # a read is extrapolated by at most 1/0.05 = 20x
BASELINE_PRIOR_MIN_PER_DAY = 2.0             # prior spread of the baseline rate: max(2/day, 0.5% of followers/day)
BASELINE_PRIOR_SHARE_PER_DAY = 0.005
BASELINE_MIN_VARIANCE_PER_HOUR = 0.01        # floor of the residual variance (a flat history has none)
BASELINE_HUBER_ITERATIONS = 5
HUBER_K = 3.0                                # residuals beyond 3 sigma are down-weighted
BATCH_SIZE = 100                             # X's limit of ids per GET /2/tweets
STORE_AHEAD = 2                              # batches read from X while earlier ones are stored (0: no writer thread)
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


def pass_cutoffs(now: datetime) -> tuple[datetime, datetime]:
    """The latest publication time at which each pass (1, 2) is due at ``now``: what ``due_passes`` decides, as the
    bounds the store's read of due posts takes (``outcomes.posts_with_due_passes``)."""
    return now - PASS_DELAYS[1], now - PASS_DELAYS[2]


def due_passes(posted_at: datetime, stored: Iterable[int], now: datetime) -> tuple[int, ...]:
    """The passes (1, 2) whose window has opened by ``now`` and that are not in ``stored``."""
    have = set(stored)
    return tuple(p for p, delay in PASS_DELAYS.items() if p not in have and posted_at + delay <= now)


@dataclass(frozen=True)
class LivePost:
    """A post that may have earned follows in a snapshot interval, with what was read of its profile visits.

    ``profile_visits`` is the latest read, taken at ``read_at`` (None: treated as settled);
    ``first_visits``/``first_read_at`` the pass-1 read (None before it), from which the accrual time
    constant is estimated.
    """
    decision_id: str
    posted_at: datetime
    profile_visits: int
    read_at: datetime | None = None
    first_visits: int | None = None
    first_read_at: datetime | None = None


@dataclass(frozen=True)
class Baseline:
    """The follower change no post explains: organic follows minus churn, per hour (may be negative)."""
    rate_per_hour: float
    se: float            # standard error of the rate (after shrinkage)
    tau_hours: float     # accrual time constant of a post's profile visits (and follows)
    hours: float         # hours of snapshot history the rate was estimated from
    follows_per_visit: float = 0.0   # β: follows per settled profile visit of the posts
    noise_per_hour: float = 1.0      # residual variance of the follower change per hour


def _accrued(age_h: np.ndarray, tau: float) -> np.ndarray:
    """Share of a post's profile visits (and follows) that has arrived ``age_h`` hours after posting."""
    return np.where(age_h > 0, -np.expm1(-np.maximum(age_h, 0.0) / tau), 0.0)


def accrual_tau(posts: Sequence[LivePost], prior: float = ACCRUAL_TAU_PRIOR_H) -> float:
    """Accrual time constant τ (hours) of profile visits, from posts read early (pass 1) and late (≥12h).

    Solves Σ early = Σ late · K(a_early)/K(a_late), K(a) = 1 − e^(−a/τ), pooled over posts (a robust
    ratio: one post cannot move it much). Fewer than ``TAU_MIN_VISITS`` late visits: ``prior``.
    """
    early, late, a1, a2 = [], [], [], []
    for p in posts:
        if p.first_visits is None or p.first_read_at is None or p.read_at is None:
            continue
        age1 = (p.first_read_at - p.posted_at).total_seconds() / 3600
        age2 = (p.read_at - p.posted_at).total_seconds() / 3600
        if age1 <= 0 or age2 < 12 or p.profile_visits <= 0:
            continue
        early.append(min(p.first_visits, p.profile_visits)); late.append(p.profile_visits)
        a1.append(age1); a2.append(age2)
    if sum(late) < TAU_MIN_VISITS:
        return prior
    return _solve_tau(*(np.array(z, float) for z in (early, late, a1, a2)))


def _solve_tau(e: np.ndarray, v: np.ndarray, x1: np.ndarray, x2: np.ndarray) -> float:
    """τ solving Σ e = Σ v · K(x1)/K(x2) by bisection on log τ in [0.1h, 72h] (``accrual_tau``'s arithmetic)."""
    def excess(log_tau: float) -> float:   # decreasing in τ
        tau = math.exp(log_tau)
        return float((v * _accrued(x1, tau) / _accrued(x2, tau)).sum() - e.sum())
    lo, hi = math.log(0.1), math.log(72.0)
    if excess(hi) >= 0:
        return 72.0
    if excess(lo) <= 0:
        return 0.1
    for _ in range(50):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if excess(mid) > 0 else (lo, mid)
    return math.exp((lo + hi) / 2)


def _expected_visits(posts: Sequence[LivePost], tau: float) -> np.ndarray:
    """Each post's settled profile visits, extrapolated from its latest read by the accrual curve (all 1
    when no post has a visit: then every post counts alike)."""
    out = np.empty(len(posts))
    for i, p in enumerate(posts):
        v = float(max(0, int(p.profile_visits or 0)))
        if p.read_at is not None:
            age = (p.read_at - p.posted_at).total_seconds() / 3600
            v = v / max(MIN_ACCRUED, float(_accrued(np.array([age]), tau)[0]))
        out[i] = v
    if len(out) and out.sum() <= 0:
        out[:] = 1.0   # no post has a visit (or X gave none): every post counts alike
    return out


def _intervals(snapshots, until):
    snaps = sorted((t, int(f)) for t, f in snapshots if t <= until)
    pairs = [(a, b) for a, b in zip(snaps, snaps[1:]) if b[0] > a[0]]
    t0 = np.array([a[0].timestamp() for a, _ in pairs])
    t1 = np.array([b[0].timestamp() for _, b in pairs])
    gain = np.array([b[1] - a[1] for a, b in pairs], float)
    return t0, t1, gain


def _kernel_shares(t0, t1, posted, tau) -> np.ndarray:
    """(intervals × posts) share of each post's settled visits arriving in each interval."""
    return _accrued((t1[:, None] - posted[None, :]) / 3600, tau) - _accrued((t0[:, None] - posted[None, :]) / 3600, tau)


def estimate_baseline(snapshots: Sequence[tuple[datetime, int]], posts: Sequence[LivePost], until: datetime,
                      tau: float | None = None) -> Baseline:
    """The organic-minus-churn follower rate per hour, from the account's own snapshot history.

    Each snapshot interval's change is modelled as ``rate × hours + β × visits_arriving`` (visits
    arriving = every post's settled profile visits × the share of its accrual curve in the interval),
    fitted by weighted least squares (variance ∝ interval length) with Huber weights (a burst of
    follows or a purge cannot drag the rate far) and a normal prior centred on 0 whose spread
    scales with the follower count (``BASELINE_PRIOR_*``): with little history the rate is shrunk
    towards 0, i.e. towards the plain split of every gain to the live posts.
    """
    tau = accrual_tau(posts) if tau is None else tau
    t0, t1, gain = _intervals(snapshots, until)
    followers = max((int(f) for t, f in snapshots if t <= until), default=0)
    prior_sd = max(BASELINE_PRIOR_MIN_PER_DAY, BASELINE_PRIOR_SHARE_PER_DAY * followers) / 24.0
    if len(gain) == 0:
        return Baseline(0.0, prior_sd, tau, 0.0)
    posted = np.array([p.posted_at.timestamp() for p in posts]) if posts else np.empty(0)
    visits = _expected_visits(posts, tau) if posts else np.empty(0)
    x = _kernel_shares(t0, t1, posted, tau) @ visits if posts else np.zeros(len(gain))
    return _fit_baseline(t0, t1, gain, x, prior_sd, tau)


def _fit_baseline(t0: np.ndarray, t1: np.ndarray, gain: np.ndarray, x: np.ndarray, prior_sd: float,
                  tau: float) -> Baseline:
    """``estimate_baseline``'s fit, given each interval's visits arriving ``x``."""
    dt = (t1 - t0) / 3600
    sw = 1.0 / np.sqrt(dt)                       # weighted LS: the variance of a change grows with its length
    design = np.column_stack([dt * sw, x * sw])
    y = gain * sw
    w = np.ones(len(y))
    sigma2 = max(float(np.var(y)), BASELINE_MIN_VARIANCE_PER_HOUR)
    coef = np.zeros(2)
    for _ in range(BASELINE_HUBER_ITERATIONS):
        ridge = np.diag([sigma2 / prior_sd ** 2, 1e-9])
        a = design.T @ (design * w[:, None]) + ridge
        coef = np.linalg.solve(a, design.T @ (y * w))
        resid = y - design @ coef
        sigma2 = max(float((w * resid ** 2).sum() / max(1.0, w.sum() - 2)), BASELINE_MIN_VARIANCE_PER_HOUR)
        c = HUBER_K * math.sqrt(sigma2)
        w = np.where(np.abs(resid) <= c, 1.0, c / np.maximum(np.abs(resid), 1e-12))
    ridge = np.diag([sigma2 / prior_sd ** 2, 1e-9])
    cov = sigma2 * np.linalg.inv(design.T @ (design * w[:, None]) + ridge)
    return Baseline(float(coef[0]), float(math.sqrt(max(0.0, cov[0, 0]))), tau, float(dt.sum()),
                    max(0.0, float(coef[1])), sigma2)


def attribute_follows(snapshots: Sequence[tuple[datetime, int]], posts: Sequence[LivePost], until: datetime,
                      horizon: timedelta = ATTRIBUTION_HORIZON, baseline: Baseline | None = None) -> dict[str, float]:
    """Follows attributed to each post from follower snapshots (the rule in the module docstring).

    Parameters
    ----------
    snapshots : (taken_at, followers_count) pairs, any order: the history the baseline is estimated
        from and the intervals that are split.
    posts : every post that may be live in the covered intervals (not only the ones being read).
    until : only intervals ending at or before this time count (the read time).
    baseline : the organic-minus-churn rate; None: ``estimate_baseline`` on the same snapshots and posts.

    Returns
    -------
    dict decision_id -> attributed follows (>= 0); every post in ``posts`` has an entry.
    """
    out = {p.decision_id: 0.0 for p in posts}
    t0, t1, gain = _intervals(snapshots, until)
    if len(gain) == 0 or not posts:
        return out
    baseline = estimate_baseline(snapshots, posts, until) if baseline is None else baseline
    posted = np.array([p.posted_at.timestamp() for p in posts])
    span = horizon.total_seconds()
    live = (posted[None, :] < t1[:, None]) & (posted[None, :] + span > t0[:, None])
    shares = np.where(live, _kernel_shares(t0, t1, posted, baseline.tau_hours), 0.0)
    weights = shares * _expected_visits(posts, baseline.tau_hours)[None, :]
    total = weights.sum(axis=1)
    has_live = total > 0                         # no live post: organic growth nobody earned
    dt = (t1 - t0) / 3600
    expected = baseline.follows_per_visit * total    # follows the live posts' visits predict here
    residual = gain - baseline.rate_per_hour * dt - expected
    # the unexplained rest goes to the posts in proportion to their share of the variance
    keep = expected / np.maximum(expected + baseline.noise_per_hour * dt, 1e-12)
    driven = expected + keep * residual
    totals = (weights[has_live] / total[has_live, None] * driven[has_live, None]).sum(axis=0)
    return {p.decision_id: max(0.0, float(v)) for p, v in zip(posts, totals)}


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
    return due_posts(outcomes.posts_with_due_passes(conn, account_id, world, *pass_cutoffs(now)), now)


def due_posts(rows: Iterable[Mapping[str, Any]], now: datetime) -> tuple[list[DuePost], int]:
    """``find_due_posts`` on the rows of ``outcomes.posts_with_due_passes`` (pure; a row with no due pass is skipped)."""
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


def attribution_inputs(conn, account_id: str, world: str, simulated: bool, since: datetime, now: datetime
                       ) -> tuple[list[tuple[datetime, int]], list[LivePost]]:
    """The snapshots and posts ``attribute_follows`` needs to credit posts published from ``since`` on, read
    at ``now``: the snapshot history of the last ``BASELINE_WINDOW`` (for the baseline) and every post
    that may be live in it."""
    start = min(since, now - BASELINE_WINDOW)
    snapshots = outcomes.follower_counts_covering(conn, account_id, simulated, start, now)
    first = min((t for t, _ in snapshots), default=start)
    posts = [LivePost(r["decision_id"], r["posted_at"], int(r["profile_visits"] or 0), r["read_at"],
                      None if r["first_visits"] is None else int(r["first_visits"]), r["first_read_at"])
             for r in outcomes.posts_for_attribution(conn, account_id, world, first - ATTRIBUTION_HORIZON, now)]
    return snapshots, posts


def covering(snapshots: Sequence[tuple[datetime, int]], since: datetime, until: datetime) -> list[tuple[datetime, int]]:
    """The part of ``snapshots`` (sorted by time) that ``outcomes.follower_counts_covering`` would return for
    [since, until]: from the last one at or before ``since`` (else from ``since``) to the first one at or after
    ``until`` (else to ``until``)."""
    lower = max((t for t, _ in snapshots if t <= since), default=since)
    upper = min((t for t, _ in snapshots if t >= until), default=until)
    return [(t, f) for t, f in snapshots if lower <= t <= upper]


class TickAttribution:
    """``attribute_follows`` for every batch of one tick, vectorised across the batches.

    Batch after batch a tick attributes over nearly the same intervals and posts: the snapshots covering
    28 days and the posts live in them, each batch's window a suffix of the first one's, and only the
    batch's own reads changing the posts' visits. The (intervals × posts) accrual kernel — the costly
    part, ``exp`` over millions of cells — is computed once per accrual time constant τ for the whole
    tick, and each batch takes its slice of it; its posts' reads are kept as arrays. What a batch gets
    equals ``attribute_follows`` on what it would have read (a test checks it to 1e-9): the same τ (the
    same solver on the same arrays), the same baseline fit, the split summed per post as
    ``visits × (kernelᵀ · driven/total)`` rather than through an (intervals × posts) weight matrix.
    """

    def __init__(self, snapshots: Sequence[tuple[datetime, int]], posts: Sequence[LivePost], now: datetime,
                 horizon: timedelta = ATTRIBUTION_HORIZON) -> None:
        self.now = now
        snaps = sorted((t, int(f)) for t, f in snapshots if t <= now)
        self._snap_times = [t for t, _ in snaps]
        kept = [k for k in range(len(snaps) - 1) if snaps[k + 1][0] > snaps[k][0]]
        self._pair_start = np.array(kept, dtype=np.int64)
        self._t0, self._t1, self._gain = _intervals(snaps, now)
        self._posted_at = [p.posted_at for p in posts]
        if any(b < a for a, b in zip(self._posted_at, self._posted_at[1:])):
            raise ValueError("TickAttribution: posts must come oldest first (as posts_for_attribution reads them)")
        self._index = {p.decision_id: j for j, p in enumerate(posts)}
        self._ids = [p.decision_id for p in posts]
        self._posted = np.array([t.timestamp() for t in self._posted_at], float)
        n = len(posts)
        self.visits = np.array([p.profile_visits for p in posts], float)
        self.read_age, self.first_visits, self.first_age = np.full(n, np.nan), np.full(n, np.nan), np.full(n, np.nan)
        for j, p in enumerate(posts):
            self._set(j, p)
        span = horizon.total_seconds()
        self._live = (self._posted[None, :] < self._t1[:, None]) & (self._posted[None, :] + span > self._t0[:, None])
        self._kernels: dict[float, tuple[np.ndarray, np.ndarray]] = {}

    def _set(self, j: int, p: LivePost) -> None:
        # ages by the same expressions as accrual_tau and _expected_visits, so τ and visits come out the same
        self.visits[j] = p.profile_visits
        if p.read_at is not None:
            self.read_age[j] = (p.read_at - p.posted_at).total_seconds() / 3600
        if p.first_visits is not None and p.first_read_at is not None:
            self.first_visits[j] = p.first_visits
            self.first_age[j] = (p.first_read_at - p.posted_at).total_seconds() / 3600

    def record(self, read: Mapping[str, LivePost]) -> None:
        """Posts as the store now holds them (``AttributionHistory.record``)."""
        for did, lp in read.items():
            if did in self._index:
                self._set(self._index[did], lp)

    def _kernel(self, tau: float) -> tuple[np.ndarray, np.ndarray]:
        if tau not in self._kernels:
            k = _kernel_shares(self._t0, self._t1, self._posted, tau)
            self._kernels = {tau: (k, np.where(self._live, k, 0.0))}   # τ rarely changes within a tick: keep one
        return self._kernels[tau]

    def follows(self, snapshots: Sequence[tuple[datetime, int]], first_post: int, batch: Sequence[LivePost]
                ) -> dict[str, float]:
        """``attribute_follows(snapshots, posts[first_post:] with the batch's reads, now)`` for the batch's posts.

        ``snapshots``: the batch's window (``covering``, a suffix of the tick's); ``first_post``: where the
        batch's posts start in the tick's; ``batch``: this batch's posts as this read leaves them."""
        out = {p.decision_id: 0.0 for p in batch}
        sl = slice(first_post, None)
        visits, read_age = self.visits[sl].copy(), self.read_age[sl].copy()
        first_visits, first_age = self.first_visits[sl].copy(), self.first_age[sl].copy()
        cols = []
        for p in batch:                      # the read being stored now is the latest (pass 1: the first)
            j = self._index.get(p.decision_id, -1) - first_post
            if j < 0:
                continue                     # not among the posts that may be live: nothing to attribute
            cols.append((p.decision_id, j))
            visits[j] = p.profile_visits
            read_age[j] = (p.read_at - p.posted_at).total_seconds() / 3600 if p.read_at is not None else np.nan
            if p.first_visits is not None and p.first_read_at is not None:
                first_visits[j] = p.first_visits
                first_age[j] = (p.first_read_at - p.posted_at).total_seconds() / 3600
        inside = [t for t, _ in snapshots if t <= self.now]
        start = bisect.bisect_left(self._snap_times, inside[0]) if inside else len(self._snap_times)
        i0 = int(np.searchsorted(self._pair_start, start))
        if i0 >= len(self._gain) or len(visits) == 0:
            return out
        # τ: accrual_tau's selection and solver on the same arrays
        ok = (~np.isnan(first_visits) & ~np.isnan(first_age) & ~np.isnan(read_age)
              & (first_age > 0) & (read_age >= 12) & (visits > 0))
        late = visits[ok]
        tau = ACCRUAL_TAU_PRIOR_H if late.sum() < TAU_MIN_VISITS else \
            _solve_tau(np.minimum(first_visits[ok], late), late, first_age[ok], read_age[ok])
        # each post's settled visits (_expected_visits)
        has_read = ~np.isnan(read_age)
        expected_visits = np.maximum(visits, 0.0) / np.where(
            has_read, np.maximum(MIN_ACCRUED, _accrued(np.where(has_read, read_age, 0.0), tau)), 1.0)
        if expected_visits.sum() <= 0:
            expected_visits[:] = 1.0
        kernel, live_kernel = (k[i0:, sl] for k in self._kernel(tau))
        t0, t1, gain = self._t0[i0:], self._t1[i0:], self._gain[i0:]
        followers = max((int(f) for t, f in snapshots if t <= self.now), default=0)
        prior_sd = max(BASELINE_PRIOR_MIN_PER_DAY, BASELINE_PRIOR_SHARE_PER_DAY * followers) / 24.0
        baseline = _fit_baseline(t0, t1, gain, kernel @ expected_visits, prior_sd, tau)
        # attribute_follows' split
        total = live_kernel @ expected_visits
        has_live = total > 0
        dt = (t1 - t0) / 3600
        expected = baseline.follows_per_visit * total
        residual = gain - baseline.rate_per_hour * dt - expected
        keep = expected / np.maximum(expected + baseline.noise_per_hour * dt, 1e-12)
        driven = expected + keep * residual
        per_total = np.divide(driven, total, out=np.zeros_like(total), where=has_live)
        idx = np.array([j for _, j in cols], dtype=np.int64)
        got = expected_visits[idx] * (live_kernel[:, idx].T @ per_total)
        out.update({did: max(0.0, float(v)) for (did, _), v in zip(cols, got)})
        return out


class AttributionHistory:
    """What attribution reads from the store — 28 days of follower snapshots and the posts live in them —
    read once per tick instead of once per batch of 100 posts, and kept current in memory: each batch's
    reads are folded in as the store holds them after that batch (``record``), so every batch sees exactly
    what it would have read back from the database."""

    def __init__(self) -> None:
        self.start: datetime | None = None
        self.snapshots: list[tuple[datetime, int]] = []
        self.posts: list[LivePost] = []
        self._tick: TickAttribution | None = None   # the arithmetic shared by the batches (built when first asked)

    def inputs(self, conn, ctx: JobContext, since: datetime, now: datetime
               ) -> tuple[list[tuple[datetime, int]], list[LivePost]]:
        """``attribution_inputs(conn, …, since, now)``, served from the tick's one read."""
        start = min(since, now - BASELINE_WINDOW)
        if self.start is None or start < self.start:   # batches come oldest first: this reads once
            self.snapshots, self.posts = attribution_inputs(conn, ctx.account_id, ctx.world, ctx.simulated, since, now)
            self.start, self._tick = start, None
        snapshots = covering(self.snapshots, start, now)
        first = min((t for t, _ in snapshots), default=start)
        return snapshots, [p for p in self.posts if p.posted_at > first - ATTRIBUTION_HORIZON]

    def record(self, read: Mapping[str, LivePost]) -> None:
        """The posts of a stored batch, as ``posts_for_attribution`` now reads them."""
        if self.start is not None:
            self.posts = [read.get(p.decision_id, p) for p in self.posts]
        if self._tick is not None:
            self._tick.record(read)

    def attribute(self, conn, ctx: JobContext, since: datetime, now: datetime,
                  this_read: Mapping[str, tuple[int, bool]]) -> dict[str, float]:
        """Follows of the posts in ``this_read`` (decision_id -> (profile visits read now, pass 1 among the passes
        read)): ``attribute_follows`` on ``inputs(…)`` with this read folded in, through ``TickAttribution``."""
        snapshots, posts = self.inputs(conn, ctx, since, now)
        if self._tick is None or self._tick.now != now:
            self._tick = TickAttribution(self.snapshots, self.posts, now)
        batch = [_as_read(lp, *this_read[lp.decision_id], now) for lp in posts if lp.decision_id in this_read]
        return self._tick.follows(snapshots, len(self.posts) - len(posts), batch)


def _as_read(lp: LivePost, visits: int, first: bool, now: datetime) -> LivePost:
    """``lp`` after a read of ``visits`` profile visits at ``now`` is stored (``first``: the pass-1 read)."""
    return replace(lp, profile_visits=visits, read_at=now, first_visits=visits if first else lp.first_visits,
                   first_read_at=now if first else lp.first_read_at)


# ----------------------------------------------------------------------------- shell: X + the tick

def _metrics_of(tm: Any, analytics: Any | None) -> dict[str, int]:
    """Counts of one read; analytics fills profile visits / link clicks the lookup did not give."""
    m = {k: getattr(tm, k, None) for k in METRIC_FIELDS}
    if analytics is not None:
        for k in ("profile_visits", "link_clicks"):
            if m[k] is None and getattr(analytics, k, None) is not None:
                m[k] = getattr(analytics, k)
    return {k: int(v or 0) for k, v in m.items()}


def _measured_follows(an: Any | None) -> bool:
    """X's analytics gave this post's follows. An answer without the count (a field not granted, not
    asked, or dropped) is not a measured 0: such a post's follows come from snapshot attribution."""
    return an is not None and getattr(an, "follows", None) is not None


@dataclass(frozen=True)
class BatchRead:
    """What X answered for one batch: each post read with its counts and analytics (None: not measured)."""
    start: datetime                                   # the oldest post of the batch (the analytics window)
    read: list[tuple[DuePost, dict[str, int], Any]]
    counts: dict[str, int]                            # lookup_errors, missing, analytics (1: it answered)


def read_batch(ctx: JobContext, batch: Sequence[DuePost], now: datetime, *, ask_analytics: bool = True) -> BatchRead:
    """Look one batch (≤100 tweets) up at X, and its follows where X's analytics endpoint answers."""
    ids = [p.tweet_id for p in batch]
    lookup = ctx.x.lookup_tweets(ids)
    start = min(p.posted_at for p in batch)
    # None: this access level has no analytics -> follows by snapshot attribution
    analytics = ctx.x.tweet_analytics(ids, start, now) if ask_analytics else None

    counts = {"lookup_errors": 0, "missing": 0, "analytics": int(analytics is not None)}
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
    return BatchRead(start, read, counts)


def store_batch(ctx: JobContext, batch: BatchRead, now: datetime, history: AttributionHistory,
                weights: RewardWeights) -> int:
    """Store one batch's outcomes (follows measured, else attributed) in one transaction; the number stored."""
    read = batch.read
    if not read:
        return 0
    # autocommit: the batch's write is one statement (upsert_outcomes), a transaction of its own, in one round trip
    with ctx.db.autocommit() as conn:
        attributed: dict[str, float] = {}
        this_read = {p.decision_id: (m["profile_visits"], 1 in p.passes) for p, m, _ in read}
        if any(not _measured_follows(an) for _, _, an in read):
            # the read being stored now is the latest (and, for pass 1, the first)
            attributed = history.attribute(conn, ctx, batch.start, now, this_read)
        rows = []
        for post, metrics, an in read:
            if _measured_follows(an):
                follows, source = float(an.follows), "analytics"
            else:
                follows, source = attributed.get(post.decision_id, 0.0), "snapshot_attribution"
            # one read serves every due pass: the rows differ only in collected_pass
            row = outcome_row(post, post.passes[0], metrics, follows, source, account_id=ctx.account_id,
                              simulated=ctx.simulated, weights=weights, collected_at=now)
            rows.append(row)
            rows.extend({**row, "collected_pass": p} for p in post.passes[1:])
        stored = outcomes.upsert_outcomes(conn, rows, {p.decision_id: m for p, m, _ in read})
    history.record({lp.decision_id: _as_read(lp, *this_read[lp.decision_id], now)
                    for lp in history.posts if lp.decision_id in this_read})
    if log.isEnabledFor(logging.INFO):   # 20,000 lines a tick cost more to format than to store: only when kept
        by_key = {(r["decision_id"], r["collected_pass"]): r for r in rows}
        for s in stored:
            r = by_key[(str(s["decision_id"]), s["collected_pass"])]
            tagged(log, "ANALYTICS_COLLECTOR", "stored outcome", decision_id=r["decision_id"],
                   pass_=r["collected_pass"], er=r["er"], fpki=r["fpki"], follows_source=r["follows_source"],
                   impressions=r["impressions"])
    return len(stored)


def collect_batch(ctx: JobContext, batch: Sequence[DuePost], now: datetime, *,
                  ask_analytics: bool = True, history: AttributionHistory | None = None,
                  weights: RewardWeights | None = None) -> dict[str, int]:
    """Read one batch (≤100 tweets) from X and store it in one transaction.

    Returns counts, and ``analytics`` 1/0: whether X's analytics endpoint answered (when it did not,
    the caller need not ask again in this tick). ``history``: the tick's attribution inputs, shared by its
    batches (None: read them for this batch alone). ``weights``: the reward weights, checked once per tick
    (None: read and check them here).
    """
    history = history if history is not None else AttributionHistory()
    weights = check_weights(ctx.settings.reward_weights() if weights is None else weights)
    got = read_batch(ctx, batch, now, ask_analytics=ask_analytics)
    return {"stored": store_batch(ctx, got, now, history, weights), **got.counts}


class BatchWriter:
    """Stores the batches of a tick in order on one thread of its own, while the tick reads the next batch
    from X: the database's work (on the other core, in PostgreSQL) overlaps X's answer being built and
    parsed. At most ``depth`` batches wait; a batch that fails to store stops the ones after it (as the
    batch loop did), and its error is raised to the tick by ``wait``/``submit``."""

    def __init__(self, store: Any, depth: int = 2) -> None:
        self._store, self._depth = store, depth
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="collect-store") if depth else None
        self._pending: list[Future] = []
        self._failed = False
        self.stored = 0

    def _run(self, batch: BatchRead) -> int:
        if self._failed:
            return 0          # an earlier batch failed: store nothing after it (the tick raises its error)
        try:
            return self._store(batch)
        except BaseException:
            self._failed = True
            raise

    def submit(self, batch: BatchRead) -> None:
        if self._depth == 0:   # no thread: store it now, as the one-after-the-other loop did
            self.stored += self._run(batch)
            return
        self._pending.append(self._pool.submit(self._run, batch))
        while len(self._pending) > self._depth:
            self.stored += self._pending.pop(0).result()

    def wait(self) -> int:
        """Block until every submitted batch is stored (raising the first failure); the total stored."""
        try:
            while self._pending:
                self.stored += self._pending.pop(0).result()
        finally:
            for f in self._pending:   # after a failure: the rest only skip, let them finish
                f.exception()
            self._pending = []
        return self.stored

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True)


ENDPOINTS = (ME_ENDPOINT, LOOKUP_ENDPOINT, ANALYTICS_ENDPOINT)   # what a tick may call, in the order it calls them
X_TROUBLE = (XRateLimited, XServerError, XTimeout, XConnectionError, httpx.TransportError)   # X said not now


def tick(ctx: JobContext) -> JobResult:
    """Snapshot followers, collect every due pass, then feed pass-2 rewards to the bandits."""
    result = tick_many([ctx])[0]
    if isinstance(result, Exception):
        raise result
    return result


def tick_many(ctxs: list[JobContext]) -> list[JobResult | Exception]:
    """``tick`` for each of ``ctxs`` in order, each tick's result or the exception it raised; for several accounts
    (distinct ones, on one clock and one database: a simulated daemon's collect turn) their reads and writes of the
    start go to the database together, one statement per kind for all of them, not one per account:

    1. the rate-limit deferrals of every account (one statement);
    2. each account not deferred asks X for its counts (``GET /2/users/me``; X calls stay one per account);
    3. every snapshot, every account's due posts and pending rewards (one round trip: ``outcomes.collection_starts``);
    4. each account reads its due posts from X and stores them, then its bandit rewards (as ``tick`` does).

    What each account stores and reads is what its own tick would, in the same order of its own calls: an account's
    ticks read and write only its rows, and the clock stands still through a turn. When a shared read fails, each of
    the ticks waiting on it fails with its error, as each would have failed at its own."""
    now = ctxs[0].clock.now() if ctxs else None
    if len({c.account_id for c in ctxs}) < len(ctxs):   # one account twice: its second tick must see the first's
        return [r for c in ctxs for r in tick_many([c])]
    results: list[JobResult | Exception | None] = [None] * len(ctxs)
    try:
        # single statements on an autocommit connection: one round trip each (a quiet tick is mostly these)
        with ctxs[0].db.autocommit() as conn:
            for ctx in ctxs:
                ensure_account_once(ctx, conn)
            deferrals = first_deferrals(conn, [c.account_id for c in ctxs], ENDPOINTS, now)
    except Exception as exc:   # each tick fails with it
        return [exc] * len(ctxs)
    counted: list[tuple[int, Any, dict]] = []   # (index, X's counts, detail) of the ticks that go on
    for i, (ctx, deferral) in enumerate(zip(ctxs, deferrals)):
        if deferral is not None:
            endpoint, until = deferral
            tagged(log, "ANALYTICS_COLLECTOR", "deferred", reason="rate_limited", endpoint=_kv(endpoint),
                   until=until.isoformat())
            results[i] = JobResult.skipped("rate_limited", endpoint=endpoint, until=until.isoformat())
            continue
        detail: dict[str, Any] = {"stored": 0, "lookup_errors": 0, "missing": 0, "too_old": 0, "due": 0,
                                  "batches": 0, "snapshot": False, "bandit_updates": 0}
        try:
            counted.append((i, ctx.x.me(), detail))
        except X_TROUBLE as exc:
            results[i] = _result_of(_x_trouble, ctx, exc, detail)
        except Exception as exc:
            results[i] = exc
    if counted:
        try:
            # the snapshots, the due posts and whether rewards wait for the bandits: one round trip
            with ctxs[0].db.autocommit() as conn:
                starts = outcomes.collection_starts(conn, [
                    outcomes.CollectionStart(ctxs[i].account_id, ctxs[i].world, user.followers_count,
                                             user.following_count, user.tweet_count) for i, user, _ in counted],
                    now, *pass_cutoffs(now))
        except Exception as exc:
            starts = [exc] * len(counted)
        for (i, _user, detail), start in zip(counted, starts):
            results[i] = start if isinstance(start, Exception) else \
                _result_of(_collect_due, ctxs[i], now, detail, *start)
    return results   # type: ignore[return-value]  (every place is filled)


def _result_of(run: Any, *args: Any) -> JobResult | Exception:
    """``run(*args)``, or the exception it raised."""
    try:
        return run(*args)
    except Exception as exc:   # this tick's failure: the turn's other ticks go on
        return exc


def _x_trouble(ctx: JobContext, exc: Exception, detail: dict[str, Any]) -> JobResult:
    """The tick's end when X says not now (``X_TROUBLE``): a 429's reset time recorded (the next ticks skip until
    then), a transient failure logged; whatever was stored stays, the rest is still due at the next tick."""
    if isinstance(exc, XRateLimited):
        with ctx.db.connection() as conn:
            record_rate_limit(conn, ctx.account_id, exc.endpoint or LOOKUP_ENDPOINT, exc.reset_at)
        tagged(log, "ANALYTICS_COLLECTOR", "deferred", level=logging.WARNING, reason="rate_limited",
               endpoint=_kv(exc.endpoint or LOOKUP_ENDPOINT), until=exc.reset_at.isoformat(), stored=detail["stored"])
        return JobResult.skipped("rate_limited", until=exc.reset_at.isoformat(), **detail)
    tagged(log, "ANALYTICS_COLLECTOR", "x_unavailable", level=logging.WARNING,
           error=_kv(f"{type(exc).__name__}: {exc}"), stored=detail["stored"])
    return JobResult.skipped("x_unavailable", error=str(exc), **detail)


def _collect_due(ctx: JobContext, now: datetime, detail: dict[str, Any], snapshot: bool, awaiting: list[dict],
                 rewards_pending: bool) -> JobResult:
    """The tick after its snapshot: read the due posts from X and store them, then feed the bandits."""
    detail["snapshot"] = snapshot
    final_read = False   # a pass-2 (final) read is among this tick's batches: new rewards for the bandits
    try:
        due, detail["too_old"] = due_posts(awaiting, now)
        detail["due"] = len(due)
        if detail["too_old"]:
            tagged(log, "ANALYTICS_COLLECTOR", "skipped", level=logging.WARNING, reason="older_than_30_days",
                   count=detail["too_old"])
        ask_analytics, history = True, AttributionHistory()
        weights = check_weights(ctx.settings.reward_weights())   # once per tick, not once per outcome
        # nothing due (most ticks): no writer thread to start and stop
        writer = BatchWriter(lambda got: store_batch(ctx, got, now, history, weights),
                             depth=STORE_AHEAD if due else 0)
        try:
            for batch in batched(due, BATCH_SIZE):
                got = read_batch(ctx, batch, now, ask_analytics=ask_analytics)
                ask_analytics = bool(got.counts["analytics"])
                detail["batches"] += 1
                detail["lookup_errors"] += got.counts["lookup_errors"]
                detail["missing"] += got.counts["missing"]
                final_read = final_read or any(2 in post.passes for post, _, _ in got.read)
                writer.submit(got)
        finally:
            # X failing mid-tick: what was read before is still stored (as the batch loop did), then handled
            try:
                writer.wait()
            finally:
                detail["stored"] = writer.stored
                writer.close()
    except X_TROUBLE as exc:
        return _x_trouble(ctx, exc, detail)

    # else no pass-2 outcome waits (none did at the start, and this tick stored only pass-1 reads, or nothing):
    # skip the transaction (a tick that stores only T+1h reads is about half of the ticks that store)
    if rewards_pending or (final_read and detail["stored"]):
        with ctx.db.connection() as conn:
            detail["bandit_updates"] = int(apply_pass2_rewards(conn, ctx.account_id, ctx.world, now) or 0)
    return JobResult(detail=detail)


def _kv(text: str) -> str:
    return str(text).replace(" ", "_")[:120]
