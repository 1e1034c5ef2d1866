"""The stateful sandbox world of one account: the posts it made, their outcomes as they accrue, and its
follower count over time (``AudienceModel``); the ground truth it draws from is ``audience``.
"""
from __future__ import annotations

import bisect
import math
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from typing import Mapping

import numpy as np

from xbotlib.sim.audience import (SALT_CHURN, SALT_ORGANIC, ReplyTarget, Totals, accrual_offset, accrued_fraction,
                                  draw_totals, expected_outcome, follows_offset, local_hour, read_text,
                                  reply_spillover, tokens, tweet_rng, world_time)
from xbotlib.sim.scenario import Scenario

PRUNE_EVERY = 64              # posts between two prunings of the old word sets (_prune)
PRUNE_MARGIN_S = 86400        # how far behind the latest post (beyond the fatigue window) a similarity may still be asked
_NO_WORDS: frozenset[str] = frozenset()

# ----------------------------------------------------------------------------- the stateful world

@dataclass(frozen=True, slots=True)   # slots: the sandbox keeps every post for as long as it runs (X's data)
class SimTweet:
    """One post of the account, with what the audience saw and the final totals it drew."""
    tweet_id: str
    text: str
    posted_at: datetime
    local_hour: int
    followers_at_post: int
    similarity: float
    target: ReplyTarget | None
    totals: Totals

    @property
    def reply_to(self) -> str | None:
        return self.target.tweet_id if self.target else None

    def to_json(self) -> dict:
        return {"tweet_id": self.tweet_id, "text": self.text, "posted_at": self.posted_at.isoformat(),
                "local_hour": self.local_hour, "followers_at_post": self.followers_at_post,
                "similarity": self.similarity, "target": self.target.to_json() if self.target else None,
                "totals": asdict(self.totals)}

    @classmethod
    def from_json(cls, d: Mapping) -> "SimTweet":
        return cls(tweet_id=str(d["tweet_id"]), text=d["text"], posted_at=datetime.fromisoformat(d["posted_at"]),
                   local_hour=int(d["local_hour"]), followers_at_post=int(d["followers_at_post"]),
                   similarity=float(d["similarity"]),
                   target=ReplyTarget.from_json(d["target"]) if d.get("target") else None,
                   totals=Totals(**d["totals"]))


class AudienceModel:
    """The simulated audience of one account: records posts, draws their outcomes, counts followers.

    Parameters
    ----------
    scenario : the ground truth.
    seed : every draw is a function of (seed, what is drawn), so a replay gives identical numbers.
    epoch : when the world starts (followers = initial at epoch; day 0 of a drifting scenario's steps,
        trends and weekly cycle); default 2026-01-01 UTC. A campaign's sandbox starts it at the campaign
        clock's start (``CampaignConfig.start``, ``scenario.WORLD_START`` by default).
    """

    def __init__(self, scenario: Scenario, seed: int = 0, epoch: datetime | None = None):
        self.scenario = scenario
        self.seed = int(seed)
        self.epoch = (epoch or datetime(2026, 1, 1, tzinfo=timezone.utc)).astimezone(timezone.utc)
        self.tweets: dict[str, SimTweet] = {}
        self._order: list[str] = []
        self._tokens: list[frozenset[str]] = []
        self._posted_s = np.empty(64)
        self._follows = np.empty(64)
        self._follow_offsets = np.empty(64)
        self._cum_follows = np.zeros(65)  # _cum_follows[i] = follows of posts [0, i)
        self._n = 0
        self._in_time_order = True  # posts arrive at the clock's now; if not, reads fall back to a full scan
        self._by_token: dict[str, list[int]] = {}
        self._pruned_before = float("-inf")  # word sets of posts before this time (epoch s) are dropped (_prune)
        self._pruned_n = 0                   # ... which are the first _pruned_n posts
        self._posted_list: list[float] = []
        self._cum_organic = [0]  # cumulative organic follows before day d
        self._cum_churn = [0]

    # -- posting

    def post(self, tweet_id: str, text: str, posted_at: datetime, target: ReplyTarget | None = None) -> SimTweet:
        """Record a post and draw its final totals (once, from RNG(seed, tweet_id))."""
        if tweet_id in self.tweets:
            raise ValueError(f"tweet {tweet_id} is already recorded in the sandbox audience")
        posted_at = posted_at.astimezone(timezone.utc)
        hour = local_hour(self.scenario, posted_at)
        followers = self.followers_at(posted_at)
        similarity = self.similarity_to_recent(text, posted_at)
        spill = reply_spillover(self.scenario, target, posted_at) if target else None
        when = None if self.scenario.stationary else world_time(self.scenario, self.epoch, posted_at)
        exp = expected_outcome(self.scenario, read_text(text, self.scenario.vocabulary), hour=hour, followers=followers,
                               similarity=similarity, spillover=spill, when=when)
        totals = draw_totals(self.scenario, exp, tweet_rng(self.seed, tweet_id))
        tweet = SimTweet(tweet_id, text, posted_at, hour, followers, similarity, target, totals)
        self._add(tweet)
        return tweet

    def _add(self, tweet: SimTweet) -> None:
        self.tweets[tweet.tweet_id] = tweet
        self._order.append(tweet.tweet_id)
        words = tokens(tweet.text)
        self._tokens.append(words)
        for w in words:
            self._by_token.setdefault(w, []).append(self._n)
        if self._n == len(self._posted_s):
            self._posted_s = np.concatenate([self._posted_s, np.empty(self._n)])
            self._follows = np.concatenate([self._follows, np.empty(self._n)])
            self._follow_offsets = np.concatenate([self._follow_offsets, np.empty(self._n)])
            self._cum_follows = np.concatenate([self._cum_follows, np.zeros(self._n)])
        at_s = tweet.posted_at.timestamp()
        if self._n and at_s < self._posted_s[self._n - 1]:
            self._in_time_order = False
        self._posted_s[self._n] = at_s
        self._posted_list.append(at_s)  # plain floats: the similarity scan reads them one at a time
        self._follows[self._n] = tweet.totals.follows
        self._follow_offsets[self._n] = follows_offset(tweet.tweet_id)
        self._cum_follows[self._n + 1] = self._cum_follows[self._n] + tweet.totals.follows
        self._n += 1
        if self._n % PRUNE_EVERY == 0 and self._in_time_order:
            self._prune(at_s - self.scenario.fatigue.window_days * 86400 - PRUNE_MARGIN_S)

    def _prune(self, before_s: float) -> None:
        """Drop the word sets of posts made before ``before_s``: only the fatigue window's are ever read
        (``similarity_to_recent``), and kept forever they were the largest thing a long campaign's memory
        grew by (~2.4 MiB a simulated year). The posts themselves, their totals and follows stay."""
        for w in list(self._by_token):
            idx = self._by_token[w]
            keep = bisect.bisect_left(idx, before_s, key=self._posted_list.__getitem__)
            if keep == len(idx):
                del self._by_token[w]
            elif keep:
                del idx[:keep]
        upto = bisect.bisect_left(self._posted_list, before_s)
        for i in range(self._pruned_n, upto):   # those before _pruned_n were emptied by an earlier pruning
            self._tokens[i] = _NO_WORDS
        self._pruned_before, self._pruned_n = before_s, max(upto, self._pruned_n)

    def similarity_to_recent(self, text: str, at: datetime) -> float:
        """Highest token Jaccard similarity of ``text`` to the posts of the last ``window_days``."""
        mine, since = tokens(text), at.timestamp() - self.scenario.fatigue.window_days * 86400
        if since < self._pruned_before:
            raise ValueError(f"similarity asked at {at.isoformat()}, more than {PRUNE_MARGIN_S / 86400:.0f} day(s) "
                             "before the sandbox's latest post: the word sets of posts that old are no longer kept "
                             "(post in time order, as X's clock does)")
        shared: dict[int, int] = {}  # recent post index -> words in common (only posts sharing a word matter)
        posted = self._posted_list
        for w in mine:
            for i in reversed(self._by_token.get(w, ())):
                if posted[i] < since:
                    break
                shared[i] = shared.get(i, 0) + 1
        best = 0.0
        for i, common in shared.items():
            best = max(best, common / (len(mine) + len(self._tokens[i]) - common))
        return best

    # -- reading

    def metrics_at(self, tweet_id: str, at: datetime) -> Totals:
        """What X shows for a post at time ``at``: the accrued part of its final totals."""
        tweet = self.tweets[tweet_id]
        age_h = (at - tweet.posted_at).total_seconds() / 3600.0
        return tweet.totals.scaled(accrued_fraction(self.scenario, age_h), accrual_offset(tweet_id))

    def follows_between(self, tweet_id: str, start: datetime, end: datetime) -> int:
        """Follows a post earned in [start, end] (the analytics endpoint's window)."""
        return self.metrics_at(tweet_id, end).follows - self.metrics_at(tweet_id, min(start, end)).follows

    def _accrued_follows(self, at_s: float) -> int:
        n, r = self._n, self.scenario.reach
        if n == 0:
            return 0
        if not self._in_time_order:
            return self._accrued_follows_scan(at_s)
        # settled posts count in full: sum them from the prefix sums; only those still accruing (posted in the last
        # settle_hours, and before now) are computed, without the scan's cases for posts outside that window. Found
        # with bisect on the plain list of times (as numpy's searchsorted on the array, without its call overhead):
        # this runs for every GET /2/users/me, every account every 15 simulated minutes
        posted = self._posted_list
        lo = bisect.bisect_right(posted, at_s - r.settle_hours * 3600)
        hi = bisect.bisect_left(posted, at_s, lo)
        settled = int(self._cum_follows[lo])
        if hi <= lo:
            return settled
        # 0 < age < settle_hours for each: what the scan computes for them, element for element (a fraction of 0 by
        # rounding gives floor(offset) = 0, as the scan's 0; np.exp as there, whose last bit can differ from math.exp)
        frac = 1.0 - np.exp(-((at_s - self._posted_s[lo:hi]) / 3600.0) / r.accrual_tau_hours)
        follows = self._follows[lo:hi]
        return settled + int(np.minimum(follows, np.floor(follows * frac + self._follow_offsets[lo:hi])).sum())

    def _accrued_follows_scan(self, at_s: float) -> int:
        """Follows accrued by ``at_s`` of every post, whatever its age (posts not in time order)."""
        r, n = self.scenario.reach, self._n
        age_h = (at_s - self._posted_s[:n]) / 3600.0
        frac = np.where(age_h <= 0, 0.0, np.where(age_h >= r.settle_hours, 1.0,
                                                   1.0 - np.exp(-np.maximum(age_h, 0) / r.accrual_tau_hours)))
        follows = self._follows[:n]
        accrued = np.minimum(follows, np.floor(follows * frac + self._follow_offsets[:n]))
        accrued = np.where(frac <= 0, 0.0, np.where(frac >= 1, follows, accrued))  # as Totals.scaled
        return int(accrued.sum())

    def _extend_days(self, through_day: int) -> None:
        """Draw organic follows and churn for each day up to ``through_day`` (each drawn once, in order)."""
        acct = self.scenario.account
        while len(self._cum_churn) <= through_day + 1:
            d = len(self._cum_churn) - 1
            day_start = self.epoch.timestamp() + d * 86400
            base = acct.initial_followers + self._accrued_follows(day_start) + self._cum_organic[d] - self._cum_churn[d]
            churn = int(np.random.default_rng([self.seed, SALT_CHURN, d]).poisson(acct.churn_per_day * max(0, base)))
            organic = int(np.random.default_rng([self.seed, SALT_ORGANIC, d]).poisson(acct.organic_follows_per_day))
            self._cum_churn.append(self._cum_churn[d] + churn)
            self._cum_organic.append(self._cum_organic[d] + organic)

    def followers_at(self, at: datetime) -> int:
        """Follower count at ``at``: initial + post follows accrued + organic − churn (spread evenly within a day)."""
        at_s = at.timestamp()
        elapsed = max(0.0, at_s - self.epoch.timestamp())
        day, within = int(elapsed // 86400), (elapsed % 86400) / 86400
        self._extend_days(day)
        organic = self._cum_organic[day] + math.floor((self._cum_organic[day + 1] - self._cum_organic[day]) * within)
        churn = self._cum_churn[day] + math.floor((self._cum_churn[day + 1] - self._cum_churn[day]) * within)
        return max(0, self.scenario.account.initial_followers + self._accrued_follows(at_s) + organic - churn)

    def posts(self) -> list[SimTweet]:
        return [self.tweets[i] for i in self._order]

    # -- persistence

    def to_json(self) -> dict:
        return {"seed": self.seed, "scenario": self.scenario.name, "epoch": self.epoch.isoformat(),
                "tweets": [t.to_json() for t in self.posts()]}

    def load_json(self, state: Mapping) -> None:
        """Replace the recorded posts with a saved state (which must come from the same seed and scenario)."""
        if int(state["seed"]) != self.seed or state["scenario"] != self.scenario.name:
            raise ValueError(f"sandbox state was made with seed={state['seed']} scenario={state['scenario']!r}, "
                             f"not seed={self.seed} scenario={self.scenario.name!r} (use the same ones, or a new state file)")
        self.__init__(self.scenario, self.seed, datetime.fromisoformat(state["epoch"]))
        for d in state["tweets"]:
            self._add(SimTweet.from_json(d))
