"""The sandbox audience: the hidden ground truth of how posts perform.

Like real X, it sees only what X sees: the text (read with ``xbotlib.core.vocab``), the post time (local
hour in the scenario's time zone), the reply target (author size, velocity, age), how similar the
text is to the account's recent posts, and the follower base. Nothing here reads xbot's database.

The functional core is ``expected_outcome`` (expected counts for one post; the oracle uses the same
function) and ``draw_totals`` (over-dispersed gamma-Poisson draws). ``AudienceModel`` is the stateful
world: it records posts, draws each post's final totals once from an RNG seeded by (seed, tweet_id),
and answers reads at any time with the accrued part, ``floor(total × (1 − exp(−age/τ)))``, which is
monotone in time and exact after ``settle_hours``. Followers at time t = initial + follows accrued by t
+ organic follows − churn, drawn per day from RNGs seeded by (seed, day): deterministic for a seed.
"""
from __future__ import annotations

import math
import re
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Iterable, Mapping
from zoneinfo import ZoneInfo

import numpy as np

from xbotlib.core import vocab

from xbotlib.sim.scenario import EXPERIMENT_IDS, Effect, Scenario

URL_RE = re.compile(r"https?://\S+")
_WORD_RE = re.compile(r"[a-z0-9']{4,}")
_STOPWORDS = frozenset("""about after also been before being could does from have here into just know like more most
much only other over same some than that their them then there these they think this those very what when where which
while will with would your you're""".split())

METRICS: tuple[str, ...] = ("impressions", "likes", "retweets", "replies", "quotes", "bookmarks",
                            "profile_visits", "link_clicks", "follows")
_SALT_TWEET, _SALT_CHURN, _SALT_ORGANIC, _SALT_SEARCH = 1, 2, 3, 4


# ----------------------------------------------------------------------------- what X can see

@dataclass(frozen=True)
class TextSignals:
    """What the audience reads from a post's text."""
    hook: str
    topic: str | None
    hashtags: int
    question_cta: bool
    contrarian: bool
    has_link: bool


def read_text(text: str) -> TextSignals:
    return TextSignals(hook=vocab.detect_hook(text), topic=vocab.detect_topic(text),
                       hashtags=vocab.hashtag_count(text), question_cta=vocab.ends_with_question(text),
                       contrarian=vocab.is_contrarian(text), has_link=bool(URL_RE.search(text)))


@dataclass(frozen=True)
class ReplyTarget:
    """A tweet the account replies to: its author's size and how fast it is gathering engagement."""
    tweet_id: str
    author_followers: int
    velocity: float  # engagements per hour since it was posted
    created_at: datetime

    def to_json(self) -> dict:
        return {"tweet_id": self.tweet_id, "author_followers": self.author_followers, "velocity": self.velocity,
                "created_at": self.created_at.isoformat()}

    @classmethod
    def from_json(cls, d: Mapping) -> "ReplyTarget":
        return cls(str(d["tweet_id"]), int(d["author_followers"]), float(d["velocity"]),
                   datetime.fromisoformat(d["created_at"]))


def active_markers(signals: TextSignals, local_hour: int, is_reply: bool) -> dict[str, bool]:
    """Which experiment treatments a post carries, as the audience can see them."""
    return {"hashtag_1": signals.hashtags >= 1,
            "question_cta": signals.question_cta,
            "contrarian_reply": is_reply and signals.contrarian,
            "late_evening_slot": local_hour in vocab.LATE_EVENING_HOURS}


def local_hour(scenario: Scenario, at: datetime) -> int:
    return at.astimezone(ZoneInfo(scenario.timezone)).hour


def tokens(text: str) -> frozenset[str]:
    """Content words of a post (hashtags and links dropped), for near-duplicate detection."""
    low = URL_RE.sub(" ", vocab.HASHTAG_RE.sub(" ", text.lower()))
    return frozenset(w for w in _WORD_RE.findall(low) if w not in _STOPWORDS)


def jaccard(a: frozenset[str], b: frozenset[str]) -> float:
    if not a or not b:
        return 0.0
    return len(a & b) / len(a | b)


def fatigue_multiplier(scenario: Scenario, similarity: float) -> float:
    """1.0 for a novel post, down to 1 − max_penalty for an exact repeat of a recent post."""
    f = scenario.fatigue
    if similarity <= f.onset:
        return 1.0
    excess = 1.0 if f.onset >= 1 else min(1.0, (similarity - f.onset) / (1.0 - f.onset))
    return 1.0 - f.max_penalty * excess


# ----------------------------------------------------------------------------- expectations

@dataclass(frozen=True)
class Expected:
    """Expected final (settled) counts of one post, and the experiment markers it carries."""
    impressions: float
    likes: float
    retweets: float
    replies: float
    quotes: float
    bookmarks: float
    profile_visits: float
    link_clicks: float
    follows: float
    markers: Mapping[str, bool] = field(default_factory=dict)

    @property
    def fpki(self) -> float:
        return 1000.0 * self.follows / max(1.0, self.impressions)

    @property
    def er(self) -> float:
        eng = self.likes + self.retweets + self.replies + self.quotes + self.bookmarks
        return eng / max(1.0, self.impressions)


def reply_spillover(scenario: Scenario, target: ReplyTarget, at: datetime) -> float:
    """Impressions a reply gains from the target's audience: bigger, faster, fresher targets give more."""
    r = scenario.replies
    age_min = max(0.0, (at - target.created_at).total_seconds() / 60.0)
    speed = target.velocity / (target.velocity + r.velocity_half)
    return r.spill_per_sqrt_follower * math.sqrt(max(0, target.author_followers)) * speed * math.exp(-age_min / r.age_tau_minutes)


def expected_outcome(scenario: Scenario, signals: TextSignals, *, hour: int, followers: float,
                     similarity: float = 0.0, spillover: float | None = None) -> Expected:
    """Expected settled counts of a post.

    Parameters
    ----------
    hour : local hour 0..23 in the scenario's time zone.
    followers : the follower base when the post goes out.
    similarity : highest token Jaccard similarity to the account's posts of the last ``window_days``.
    spillover : None for an original post; for a reply, the impressions from the target's audience
        (see ``reply_spillover``).
    """
    is_reply = spillover is not None
    markers = active_markers(signals, hour, is_reply)
    effect: Effect = scenario.hook_effect(signals.hook) * scenario.topic_effect(signals.topic)
    for exp_id in EXPERIMENT_IDS:
        if markers[exp_id]:
            effect = effect * scenario.experiment_effect(exp_id)
    fatigue = fatigue_multiplier(scenario, similarity)
    reach, rates = scenario.reach, scenario.rates
    own = (max(0.0, followers) * reach.impressions_per_follower + reach.discovery_impressions) * scenario.hours.reach[hour]
    if is_reply:
        own = own * scenario.replies.own_reach + spillover
    impressions = own * effect.impressions * fatigue
    quality = scenario.hours.quality[hour] * fatigue  # near-duplicates also engage less per impression
    eng = impressions * quality * effect.engagement
    pv_boost = scenario.replies.profile_visits if is_reply else 1.0
    profile_visits = impressions * quality * rates.profile_visits * effect.profile_visits * pv_boost
    follow_p = min(1.0, rates.follows_per_profile_visit * effect.follow_rate)
    return Expected(
        impressions=impressions,
        likes=eng * rates.likes, retweets=eng * rates.retweets, replies=eng * rates.replies * effect.replies,
        quotes=eng * rates.quotes, bookmarks=eng * rates.bookmarks,
        profile_visits=profile_visits,
        link_clicks=impressions * quality * rates.link_clicks if signals.has_link else 0.0,
        follows=profile_visits * follow_p,
        markers=markers,
    )


# ----------------------------------------------------------------------------- draws and accrual

@dataclass(frozen=True)
class Totals:
    impressions: int = 0
    likes: int = 0
    retweets: int = 0
    replies: int = 0
    quotes: int = 0
    bookmarks: int = 0
    profile_visits: int = 0
    link_clicks: int = 0
    follows: int = 0

    def scaled(self, fraction: float, offset: float = 0.0) -> "Totals":
        """The part accrued when ``fraction`` of the final counts has arrived.

        Each count is ``floor(v * fraction + u)`` with a fixed per-tweet offset ``u`` in [0, 1)
        (``accrual_offset``): monotone in time, exact once settled, and unbiased on average over
        tweets. Plain flooring would hide every count of 1 until the post settles, so a reply's
        single follow, say, would never show at T+24h.
        """
        if fraction >= 1.0:
            return self
        if fraction <= 0.0:
            return Totals()
        return Totals(*(min(v, math.floor(v * fraction + (offset + i * _GOLDEN) % 1.0))
                        for i, v in enumerate(asdict(self).values())))

    def minus(self, other: "Totals") -> "Totals":
        return Totals(*(a - b for a, b in zip(asdict(self).values(), asdict(other).values())))


_GOLDEN = 0.6180339887498949
_FOLLOWS_INDEX = 8  # position of `follows` among the Totals fields (offsets differ per field)


def accrual_offset(tweet_id: str | int) -> float:
    """A fixed pseudo-random offset in [0, 1) per tweet, for unbiased monotone accrual.

    Integer arithmetic (a splitmix64 finaliser): snowflake ids are ~2**61, far beyond float precision.
    """
    z = (int(tweet_id) + 0x9E3779B97F4A7C15) & 0xFFFFFFFFFFFFFFFF
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & 0xFFFFFFFFFFFFFFFF
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & 0xFFFFFFFFFFFFFFFF
    return ((z ^ (z >> 31)) >> 11) / float(1 << 53)


def draw_totals(scenario: Scenario, exp: Expected, rng: np.random.Generator) -> Totals:
    """Final counts of one post: gamma-Poisson (negative binomial) around the expectation.

    Reach has its own gamma shock; engagement and profile visits share a per-post 'quality' shock,
    and follows are a binomial thinning of profile visits, so follows never exceed visits.
    """
    k, kr = scenario.reach.dispersion, scenario.rates.dispersion
    impressions = int(rng.poisson(exp.impressions * rng.gamma(k, 1.0 / k)))
    scale = impressions / exp.impressions if exp.impressions > 0 else 0.0
    quality = rng.gamma(kr, 1.0 / kr)

    def count(mean: float) -> int:
        return int(rng.poisson(max(0.0, mean * scale * quality)))

    likes, retweets, replies = count(exp.likes), count(exp.retweets), count(exp.replies)
    quotes, bookmarks = count(exp.quotes), count(exp.bookmarks)
    profile_visits, link_clicks = count(exp.profile_visits), count(exp.link_clicks)
    follow_p = exp.follows / exp.profile_visits if exp.profile_visits > 0 else 0.0
    follow_p = min(1.0, follow_p * rng.gamma(kr, 1.0 / kr))
    follows = int(rng.binomial(profile_visits, follow_p)) if profile_visits else 0
    return Totals(impressions, likes, retweets, replies, quotes, bookmarks, profile_visits, link_clicks, follows)


def accrued_fraction(scenario: Scenario, age_hours: float) -> float:
    """Share of a post's final counts that has arrived ``age_hours`` after posting."""
    if age_hours <= 0:
        return 0.0
    if age_hours >= scenario.reach.settle_hours:
        return 1.0
    return 1.0 - math.exp(-age_hours / scenario.reach.accrual_tau_hours)


def tweet_rng(seed: int, tweet_id: str | int, salt: int = _SALT_TWEET) -> np.random.Generator:
    return np.random.default_rng([int(seed), salt, int(tweet_id)])


# ----------------------------------------------------------------------------- reply candidates

_CANDIDATE_LINES: dict[str, tuple[str, ...]] = {
    "ai": ("LLM agents still fail at long-horizon planning", "small models fine-tuned on good data beat bigger ones",
           "prompt engineering is becoming model evaluation", "the neural scaling curve is bending for code tasks"),
    "productivity": ("time blocking beats to-do lists for deep work", "a weekly review is the one habit that sticks",
                     "calendar defence matters more than any app", "procrastination is usually unclear next steps"),
    "science": ("the universe keeps surprising cosmologists this year", "evolution runs faster in cities than we thought",
                "a single molecule experiment changed the textbook", "space telescopes found water vapour again"),
    "startups": ("founders should talk to customers before writing code", "SaaS revenue without retention is a mirage",
                 "investor updates build trust before fundraising", "product-market fit feels like being pulled"),
    "health": ("walking after meals flattens glucose spikes", "sleep regularity matters more than sleep length",
               "protein at breakfast curbs evening snacking", "stress and heart health are tightly linked"),
}
_CANDIDATE_OPENERS: tuple[str, ...] = ("", "Hot take: ", "New study: ", "Thread: ", "Reminder: ")


@dataclass(frozen=True)
class Candidate:
    """A tweet by another author that search can return and the account can reply to."""
    tweet_id: str
    text: str
    topic: str
    author_id: str
    author_username: str
    author_followers: int
    velocity: float
    created_at: datetime

    def target(self) -> ReplyTarget:
        return ReplyTarget(self.tweet_id, self.author_followers, self.velocity, self.created_at)

    def public_metrics(self, at: datetime) -> dict[str, int]:
        hours = max(0.0, (at - self.created_at).total_seconds() / 3600.0)
        eng = self.velocity * hours
        return {"retweet_count": int(eng * 0.12), "reply_count": int(eng * 0.08), "like_count": int(eng * 0.75),
                "quote_count": int(eng * 0.02), "bookmark_count": int(eng * 0.03),
                "impression_count": int(eng * 40 + self.author_followers * 0.05 * min(1.0, hours))}

    def to_json(self) -> dict:
        d = asdict(self)
        d["created_at"] = self.created_at.isoformat()
        return d

    @classmethod
    def from_json(cls, d: Mapping) -> "Candidate":
        return cls(**{**d, "created_at": datetime.fromisoformat(d["created_at"])})


def snowflake(at: datetime, sequence: int) -> str:
    """An X-style id: milliseconds since X's epoch in the high bits, a 22-bit sequence below."""
    ms = int(at.timestamp() * 1000) - 1288834974657
    return str((max(0, ms) << 22) | (sequence & 0x3FFFFF))


def reply_candidates(scenario: Scenario, seed: int, window_start: datetime, topics: Iterable[str]) -> list[Candidate]:
    """Synthetic tweets by other authors visible during one search window (one hour), per topic.

    Deterministic for (seed, window, topic, index); sizes are log-normal (100 .. millions of
    followers), ages 2 min .. 6 h at the window start, velocity grows with author size.
    """
    window = int(window_start.timestamp() // 3600)
    out = []
    for topic in topics:
        t_idx = vocab.TOPICS.index(topic)
        for i in range(scenario.replies.candidates_per_topic):
            rng = np.random.default_rng([int(seed), _SALT_SEARCH, window, t_idx, i])
            followers = int(np.clip(rng.lognormal(math.log(8000), 1.7), 80, 5_000_000))
            age_min = float(rng.uniform(2, 360))
            velocity = float(0.02 * followers ** 0.75 * rng.lognormal(0.0, 0.7))
            created = window_start - timedelta(minutes=age_min)
            lines = _CANDIDATE_LINES[topic]
            text = _CANDIDATE_OPENERS[int(rng.integers(len(_CANDIDATE_OPENERS)))] + lines[int(rng.integers(len(lines)))] + "."
            author = int(rng.integers(10**8, 10**9))
            # sequence bit 21 set: never collides with the account's own ids (sequence < 2**21)
            out.append(Candidate(tweet_id=snowflake(created, 0x200000 | (t_idx << 12) | i), text=text, topic=topic,
                                 author_id=str(author), author_username=f"{topic}_voice_{author % 100000}",
                                 author_followers=followers, velocity=velocity, created_at=created))
    return out


# ----------------------------------------------------------------------------- the stateful world

@dataclass(frozen=True)
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
    epoch : when the world starts (followers = initial at epoch); default 2026-01-01 UTC.
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
        exp = expected_outcome(self.scenario, read_text(text), hour=hour, followers=followers,
                               similarity=similarity, spillover=spill)
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
        self._follow_offsets[self._n] = (accrual_offset(tweet.tweet_id) + _FOLLOWS_INDEX * _GOLDEN) % 1.0
        self._cum_follows[self._n + 1] = self._cum_follows[self._n] + tweet.totals.follows
        self._n += 1

    def similarity_to_recent(self, text: str, at: datetime) -> float:
        """Highest token Jaccard similarity of ``text`` to the posts of the last ``window_days``."""
        mine, since = tokens(text), at.timestamp() - self.scenario.fatigue.window_days * 86400
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
        lo, hi, settled = 0, n, 0
        if self._in_time_order:  # settled posts count in full: sum them from the prefix sums, scan only the rest
            times = self._posted_s[:n]
            lo = int(np.searchsorted(times, at_s - r.settle_hours * 3600, side="right"))
            hi = int(np.searchsorted(times, at_s, side="left"))
            settled = int(self._cum_follows[lo])
            if hi <= lo:
                return settled
        age_h = (at_s - self._posted_s[lo:hi]) / 3600.0
        frac = np.where(age_h <= 0, 0.0, np.where(age_h >= r.settle_hours, 1.0,
                                                   1.0 - np.exp(-np.maximum(age_h, 0) / r.accrual_tau_hours)))
        follows = self._follows[lo:hi]
        accrued = np.minimum(follows, np.floor(follows * frac + self._follow_offsets[lo:hi]))
        accrued = np.where(frac <= 0, 0.0, np.where(frac >= 1, follows, accrued))  # as Totals.scaled
        return settled + int(accrued.sum())

    def _extend_days(self, through_day: int) -> None:
        """Draw organic follows and churn for each day up to ``through_day`` (each drawn once, in order)."""
        acct = self.scenario.account
        while len(self._cum_churn) <= through_day + 1:
            d = len(self._cum_churn) - 1
            day_start = self.epoch.timestamp() + d * 86400
            base = acct.initial_followers + self._accrued_follows(day_start) + self._cum_organic[d] - self._cum_churn[d]
            churn = int(np.random.default_rng([self.seed, _SALT_CHURN, d]).poisson(acct.churn_per_day * max(0, base)))
            organic = int(np.random.default_rng([self.seed, _SALT_ORGANIC, d]).poisson(acct.organic_follows_per_day))
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
