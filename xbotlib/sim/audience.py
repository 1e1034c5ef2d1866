"""The sandbox audience: the hidden ground truth of how posts perform.

Like real X, it sees only what X sees: the text (read with the scenario's own ``vocab.Vocabulary``: the
topics this audience cares about and the words it knows them by), the post time (local
hour in the scenario's time zone), the reply target (author size, velocity, age), how similar the
text is to the account's recent posts, and the follower base. Nothing here reads xbot's database.

The functional core is ``expected_outcome`` (expected counts for one post at its ``WorldTime``: the day
since the world's start and the local weekday, which a drifting scenario needs; the oracle uses the same
function) and ``draw_totals`` (over-dispersed gamma-Poisson draws). ``world.AudienceModel`` is the stateful
world: it records posts, draws each post's final totals once from an RNG seeded by (seed, tweet_id),
and answers reads at any time with the accrued part, ``floor(total × (1 − exp(−age/τ)))``, which is
monotone in time and exact after ``settle_hours``. Followers at time t = initial + follows accrued by t
+ organic follows − churn, drawn per day from RNGs seeded by (seed, day): deterministic for a seed.
The tweets of other authors that search returns (reply targets) are in ``candidates``.
"""
from __future__ import annotations

import math
import operator
import re
from dataclasses import dataclass, field, fields
from datetime import datetime
from typing import Mapping, NamedTuple
from zoneinfo import ZoneInfo

import numpy as np

from xbotlib.core import vocab

from xbotlib.sim.scenario import EXPERIMENT_IDS, NEUTRAL, Effect, Scenario

URL_RE = re.compile(r"https?://\S+")
_WORD_RE = re.compile(r"[a-z0-9']{4,}")
_STOPWORDS = frozenset("""about after also been before being could does from have here into just know like more most
much only other over same some than that their them then there these they think this those very what when where which
while will with would your you're""".split())

METRICS: tuple[str, ...] = ("impressions", "likes", "retweets", "replies", "quotes", "bookmarks",
                            "profile_visits", "link_clicks", "follows")
# one RNG stream per purpose (posts, churn, organic follows, search candidates): keep them distinct
SALT_TWEET, SALT_CHURN, SALT_ORGANIC, SALT_SEARCH = 1, 2, 3, 4


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


def read_text(text: str, vocabulary: vocab.Vocabulary = vocab.DEFAULT) -> TextSignals:
    """What an audience reading with ``vocabulary`` (``Scenario.vocabulary``) sees in ``text``."""
    hook = vocabulary.detect_hook(text)
    return TextSignals(hook=hook, topic=vocabulary.detect_topic(text),
                       hashtags=vocab.hashtag_count(text), question_cta=vocab.ends_with_question(text),
                       contrarian=hook == "contrarian", has_link=bool(URL_RE.search(text)))


@dataclass(frozen=True, slots=True)   # slots: the sandbox keeps one per reply for as long as it runs
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


# ----------------------------------------------------------------------------- time in a changing world

class WorldTime(NamedTuple):
    """When a post goes out, as a drifting scenario reads it: ``day`` = days since the world's start
    (``AudienceModel.epoch``; fractional: noon of the first day is 0.5), ``weekday`` = local weekday in the
    scenario's time zone (Monday 0)."""
    day: float
    weekday: int


def world_time(scenario: Scenario, start: datetime, at: datetime) -> WorldTime:
    """The ``WorldTime`` of instant ``at`` in a world that started at ``start`` (both timezone-aware)."""
    return WorldTime((at - start).total_seconds() / 86400.0, at.astimezone(ZoneInfo(scenario.timezone)).weekday())


def conditions(scenario: Scenario, hook: str, topic: str | None, hour: int,
               when: WorldTime | None) -> tuple[Effect, float, float]:
    """What interactions and drift add for a post: (effect multiplier, reach multiplier, quality multiplier).

    Interactions: the hook × hour entries covering ``hour`` and the hook × topic entries of ``topic``.
    Drift at ``when``: every step whose day has come, each trend's share of its change
    (``Trend.share``), and the weekly cycle's weekday multipliers. A stationary scenario without
    interactions gives (NEUTRAL, 1.0, 1.0) whatever ``when`` is; a drifting one needs ``when``.
    """
    effect, reach, quality = NEUTRAL, 1.0, 1.0
    for inter in scenario.interactions:
        if inter.applies(hook, topic, hour):
            effect = effect * inter.effect
    drift = scenario.drift
    if drift.stationary:
        return effect, reach, quality
    if when is None:
        raise ValueError(f"scenario {scenario.name!r} drifts: give the post's time (when=WorldTime(day, weekday), "
                         "see audience.world_time)")
    topic_key = topic or "none"
    changes = [(s.change, 1.0) for s in drift.steps if when.day >= s.day]
    changes += [(t.change, t.share(when.day)) for t in drift.trends if when.day > t.from_day]
    for change, share in changes:
        step = change.hooks.get(hook, NEUTRAL) * change.topics.get(topic_key, NEUTRAL)
        effect = effect * (step if share == 1.0 else step.power(share))
        reach *= change.reach[hour] ** share
        quality *= change.quality[hour] ** share
    if drift.weekly is not None:
        reach *= drift.weekly.reach[when.weekday]
        quality *= drift.weekly.quality[when.weekday]
    return effect, reach, quality


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
                     similarity: float = 0.0, spillover: float | None = None,
                     when: WorldTime | None = None) -> Expected:
    """Expected settled counts of a post.

    Parameters
    ----------
    hour : local hour 0..23 in the scenario's time zone.
    followers : the follower base when the post goes out.
    similarity : highest token Jaccard similarity to the account's posts of the last ``window_days``.
    spillover : None for an original post; for a reply, the impressions from the target's audience
        (see ``reply_spillover``).
    when : the post's day and weekday (``world_time``); needed when the scenario drifts, ignored otherwise.
    """
    is_reply = spillover is not None
    markers = active_markers(signals, hour, is_reply)
    effect: Effect = scenario.hook_effect(signals.hook) * scenario.topic_effect(signals.topic)
    for exp_id in EXPERIMENT_IDS:
        if markers[exp_id]:
            effect = effect * scenario.experiment_effect(exp_id)
    hour_reach, hour_quality = scenario.hours.reach[hour], scenario.hours.quality[hour]
    if scenario.interactions or not scenario.stationary:  # (else exactly the stationary arithmetic of before)
        extra, reach_x, quality_x = conditions(scenario, signals.hook, signals.topic, hour, when)
        effect, hour_reach, hour_quality = effect * extra, hour_reach * reach_x, hour_quality * quality_x
    fatigue = fatigue_multiplier(scenario, similarity)
    reach, rates = scenario.reach, scenario.rates
    own = (max(0.0, followers) * reach.impressions_per_follower + reach.discovery_impressions) * hour_reach
    if is_reply:
        own = own * scenario.replies.own_reach + spillover
    impressions = own * effect.impressions * fatigue
    quality = hour_quality * fatigue  # near-duplicates also engage less per impression
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

@dataclass(frozen=True, slots=True)   # slots: the sandbox keeps one per post for as long as it runs
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
                        for i, v in enumerate(_counts(self))))

    def minus(self, other: "Totals") -> "Totals":
        return Totals(*(a - b for a, b in zip(_counts(self), _counts(other))))


# a Totals' counts in field order, as a tuple (``asdict``/``astuple`` would deep-copy; slots have no ``vars``)
_counts = operator.attrgetter(*(f.name for f in fields(Totals)))
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


def tweet_rng(seed: int, tweet_id: str | int, salt: int = SALT_TWEET) -> np.random.Generator:
    return np.random.default_rng([int(seed), salt, int(tweet_id)])


def follows_offset(tweet_id: str | int) -> float:
    """The accrual offset ``Totals.scaled`` uses for a post's follows (each field's offset is shifted)."""
    return (accrual_offset(tweet_id) + _FOLLOWS_INDEX * _GOLDEN) % 1.0
