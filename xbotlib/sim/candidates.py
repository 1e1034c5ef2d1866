"""Reply candidates: tweets by other authors that the sandbox's search returns and the account can
reply to. Synthetic and deterministic for (seed, search window, topic, index); what a reply to one
earns is the audience's business (``audience.reply_spillover``). The topics are the scenario's
(``Scenario.vocabulary``): the built-in niche's tweets are written out below; another niche's are made
from its own keywords, so search and topic detection find them as that niche's.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from typing import Iterable, Mapping

import numpy as np

from xbotlib.sim.audience import SALT_SEARCH, ReplyTarget
from xbotlib.sim.scenario import Scenario

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
# a niche of the scenario's own: sentences around one of the topic's keywords
_KEYWORD_LINES: tuple[str, ...] = ("{kw} is the part most people get wrong", "I changed how I think about {kw} this year",
                                   "nobody talks enough about {kw}", "the simplest {kw} trick still works best")


def candidate_lines(scenario: Scenario, topic: str) -> tuple[str, ...]:
    """What other authors write about ``topic`` in this scenario's world."""
    if scenario.vocabulary.topics == tuple(_CANDIDATE_LINES) and topic in _CANDIDATE_LINES:
        return _CANDIDATE_LINES[topic]
    words = scenario.vocabulary.topic_keywords[topic]
    return tuple(line.format(kw=kw) for kw in words for line in _KEYWORD_LINES)


@dataclass(frozen=True, slots=True)   # slots: the sandbox keeps the candidates search has shown
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
    known = tuple(scenario.vocabulary.topics)
    out = []
    for topic in topics:
        if topic not in known:
            raise ValueError(f"unknown topic {topic!r} (scenario {scenario.name!r} knows: {', '.join(known)})")
        t_idx = known.index(topic)
        for i in range(scenario.replies.candidates_per_topic):
            rng = np.random.default_rng([int(seed), SALT_SEARCH, window, t_idx, i])
            followers = int(np.clip(rng.lognormal(math.log(8000), 1.7), 80, 5_000_000))
            age_min = float(rng.uniform(2, 360))
            velocity = float(0.02 * followers ** 0.75 * rng.lognormal(0.0, 0.7))
            created = window_start - timedelta(minutes=age_min)
            lines = candidate_lines(scenario, topic)
            text = _CANDIDATE_OPENERS[int(rng.integers(len(_CANDIDATE_OPENERS)))] + lines[int(rng.integers(len(lines)))] + "."
            author = int(rng.integers(10**8, 10**9))
            # sequence bit 21 set: never collides with the account's own ids (sequence < 2**21)
            out.append(Candidate(tweet_id=snowflake(created, 0x200000 | (t_idx << 12) | i), text=text, topic=topic,
                                 author_id=str(author), author_username=f"{topic}_voice_{author % 100000}",
                                 author_followers=followers, velocity=velocity, created_at=created))
    return out
