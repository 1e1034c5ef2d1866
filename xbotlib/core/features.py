"""Content features: what a post *is*, as numbers the bandit and the predictors can use.

Everything here is pure: text (and embeddings computed elsewhere) in, numbers out. How text is
read (hook patterns, topics, hashtags) comes from a ``xbotlib.core.vocab.Vocabulary``, the account's niche
(``vocab.DEFAULT`` is the built-in one): hook rules in its language, its own topics and their keywords.

- ``LocalEmbedder``: a deterministic offline embedding (hashed words + character trigrams); any
  object with ``embed(texts) -> (n, dim) array`` (e.g. the OpenAI client) plugs in instead.
- ``novelty`` / ``dup_penalty``: how far a text is from recent posts, and the penalty near duplicates earn.
- ``readability``, ``sentiment``, ``format_features`` (from ``xbotlib.core.text``), ``reply_features``.
- ``extract_features`` -> ``ContentFeatures`` (stored as ``content_metadata.features``), and
  ``feature_vector(dict, names)`` which turns stored features into a predictor row; ``feature_names(vocabulary)``
  are a niche's columns (``FEATURE_NAMES``: the built-in niche's), ``check_feature_names`` refuses a predictor
  learned for another niche's topics.
- ``timing_vector`` / ``TIMING_FEATURE_NAMES`` for the posting-hour predictor.
"""
from __future__ import annotations

import functools
import hashlib
import math
import re
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any, Iterable, Mapping, Protocol, Sequence

import numpy as np

from xbotlib.core import vocab
from xbotlib.core.text import format_features, readability, sentiment

# ----------------------------------------------------------------------------- hook / topic


def hook_pattern(text: str, vocabulary: vocab.Vocabulary = vocab.DEFAULT) -> str:
    """The hook pattern of a post (``vocabulary.detect_hook``: the rules of the account's language)."""
    return vocabulary.detect_hook(text)


# ----------------------------------------------------------------------------- embeddings


class Embedder(Protocol):
    """Anything that turns texts into a (n, dim) float array, one row per text."""

    def embed(self, texts: Sequence[str]) -> np.ndarray: ...


_WORD_RE = re.compile(r"[a-z0-9]+(?:'[a-z]+)?")


# Bounded for live use, where new words keep coming: full, 2**16 entries held 16.5 MiB per process, 2**14 hold 4.8
# MiB and cost ~7% more per embedding on a Zipf-like 60,000-word vocabulary (BENCHMARKS.md, 2026-12-05).
# The sandbox's texts use ~2,800 tokens.
@functools.lru_cache(maxsize=1 << 14)
def _bucket(token: str, dim: int) -> tuple[int, float]:
    """A stable (index, sign) for a token. Python's ``hash`` is salted per process, blake2b is not."""
    h = int.from_bytes(hashlib.blake2b(token.encode(), digest_size=8).digest(), "little")
    return h % dim, (1.0 if (h >> 63) & 1 else -1.0)


@dataclass(frozen=True)
class LocalEmbedder:
    """Deterministic local text embedding: signed feature hashing of words and character trigrams.

    Words carry the topic, trigrams survive small edits and typos; each half is L2-normalised so
    neither dominates, then the sum is normalised. Same text -> same vector, in every process.
    Good enough to catch near duplicates offline; not a semantic model.
    """

    dim: int = 256

    def __post_init__(self) -> None:
        if not isinstance(self.dim, int) or self.dim < 8:
            raise ValueError(f"LocalEmbedder dim must be an integer >= 8, got {self.dim!r}")

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """Embed ``texts``; returns an array of shape (len(texts), dim), rows of norm 1 (or 0 for empty text)."""
        if isinstance(texts, str):
            raise TypeError("embed takes a sequence of texts, not one string (wrap it: embed([text]))")
        out = np.zeros((len(texts), self.dim))
        for i, text in enumerate(texts):
            out[i] = self._embed_one(text)
        return out

    def _embed_one(self, text: str) -> np.ndarray:
        # counted in Python lists, then made arrays: an item update of a numpy array costs ~10x a list's,
        # and a sum of ±1.0 terms is exact in any order, so the vectors are the same
        words = _WORD_RE.findall(text.lower())
        word_vec = [0.0] * self.dim
        for w in words:
            idx, sign = _bucket("w:" + w, self.dim)
            word_vec[idx] += sign
        joined = " " + " ".join(words) + " "
        tri_vec = [0.0] * self.dim
        for j in range(len(joined) - 2):
            idx, sign = _bucket("c:" + joined[j:j + 3], self.dim)
            tri_vec[idx] += sign
        vec = _unit(np.array(word_vec)) + _unit(np.array(tri_vec))
        return _unit(vec)


def _unit(v: np.ndarray) -> np.ndarray:
    n = float(np.linalg.norm(v))
    return v / n if n > 0 else v


def stack_embeddings(vectors: Iterable[Sequence[float] | np.ndarray | None], dim: int) -> np.ndarray:
    """Stack stored embeddings into an (m, dim) array, skipping missing ones and other dimensions.

    History embedded by another embedder (e.g. OpenAI's 1536 dims vs the local 256) cannot be
    compared with a new embedding, so it is left out rather than mis-compared.
    """
    rows = [np.asarray(v, dtype=float) for v in vectors if v is not None]
    rows = [r for r in rows if r.shape == (dim,)]
    return np.vstack(rows) if rows else np.zeros((0, dim))


def novelty(embedding: Sequence[float] | np.ndarray, recent: np.ndarray | None) -> float:
    """1 - the highest cosine similarity to any recent embedding, clipped to [0, 1].

    Parameters
    ----------
    embedding : (dim,) array
    recent : (m, dim) array of recent posts' embeddings; None or m = 0 means no history -> 1.0.
    """
    e = np.asarray(embedding, dtype=float)
    if e.ndim != 1:
        raise ValueError(f"embedding must be one vector of shape (dim,), got shape {e.shape}")
    if recent is None:
        return 1.0
    r = np.asarray(recent, dtype=float)
    if r.size == 0:
        return 1.0
    if r.ndim != 2 or r.shape[1] != e.shape[0]:
        raise ValueError(f"recent embeddings have shape {r.shape}, expected (m, {e.shape[0]}) "
                         "(embed history with the same embedder; see stack_embeddings)")
    en = float(np.linalg.norm(e))
    if en == 0:
        return 1.0
    norms = np.linalg.norm(r, axis=1)
    norms[norms == 0] = np.inf  # an empty text is similar to nothing
    sims = (r @ e) / (norms * en)
    return float(np.clip(1.0 - sims.max(), 0.0, 1.0))


def dup_penalty(novelty_value: float, threshold: float) -> float:
    """Penalty for near duplicates: 1 below ``threshold``, falling linearly to 0 at 2·threshold.

    The ramp (rather than a cliff) means "somewhat similar" still costs a little. threshold 0
    disables the penalty.
    """
    if not 0 <= threshold <= 1:
        raise ValueError(f"novelty threshold must be in [0, 1], got {threshold!r} (see NOVELTY_MIN)")
    if threshold == 0:
        return 0.0
    if novelty_value < threshold:
        return 1.0
    return float(np.clip((2 * threshold - novelty_value) / threshold, 0.0, 1.0))


# ----------------------------------------------------------------------------- reply

def reply_features(author_followers: int, engagements: int, tweet_created_at: datetime, now: datetime) -> dict[str, float]:
    """Features of the tweet a reply answers: author_follower_count, tweet_velocity (engagements
    per minute since it was posted, age floored at 1 min) and tweet_age_min."""
    if author_followers is None or author_followers < 0:
        raise ValueError(f"author_followers must be >= 0, got {author_followers!r}")
    if engagements is None or engagements < 0:
        raise ValueError(f"engagements must be >= 0, got {engagements!r}")
    if tweet_created_at.tzinfo is None or now.tzinfo is None:
        raise ValueError(f"times must be timezone-aware: tweet_created_at={tweet_created_at!r}, now={now!r}")
    age_min = max(0.0, (now - tweet_created_at).total_seconds() / 60.0)
    return {
        "author_follower_count": float(author_followers),
        "tweet_velocity": float(engagements) / max(1.0, age_min),
        "tweet_age_min": age_min,
    }


# ----------------------------------------------------------------------------- the feature record


@dataclass(frozen=True)
class ContentFeatures:
    """Everything ``extract_features`` knows about one text; ``to_dict`` is what gets stored."""

    hook: str
    topic: str | None
    novelty: float
    dup_penalty: float
    readability: float
    sentiment: float
    chars: int
    words: int
    has_number: bool
    has_link: bool
    hashtag_count: int
    ends_with_question: bool
    emoji_count: int
    line_breaks: int
    hour: int | None = None
    is_reply: bool = False
    author_follower_count: float | None = None
    tweet_velocity: float | None = None
    tweet_age_min: float | None = None

    @property
    def hook_pattern(self) -> str:
        """Same as ``hook``, under its ``content_metadata`` column name."""
        return self.hook

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-safe dict (for ``content_metadata.features``)."""
        return {k: (float(v) if isinstance(v, (float, np.floating)) else v) for k, v in asdict(self).items()}

    def vector(self, names: Sequence[str] | None = None) -> np.ndarray:
        """This record as a predictor row, in the order of ``names`` (default ``FEATURE_NAMES``)."""
        return feature_vector(self.to_dict(), FEATURE_NAMES if names is None else names)


def extract_features(text: str, *, embedding: Sequence[float] | np.ndarray, recent_embeddings: np.ndarray | None,
                     novelty_min: float, topic: str | None = None, reply: Mapping[str, float] | None = None,
                     hour: int | None = None, vocabulary: vocab.Vocabulary = vocab.DEFAULT) -> ContentFeatures:
    """Read one text into ``ContentFeatures``.

    Parameters
    ----------
    embedding : (dim,) embedding of ``text``; recent_embeddings : (m, dim) of recent posts.
    novelty_min : the duplicate threshold (``Settings.novelty_min``).
    topic : the planned topic (one of ``vocabulary.topics``); None -> detected from the text.
    reply : ``reply_features(...)`` of the tweet replied to, None for a post.
    hour : local posting hour 0-23 if known.
    vocabulary : the account's niche: how hooks and topics are read.
    """
    if hour is not None and not (isinstance(hour, (int, np.integer)) and 0 <= hour <= 23):
        raise ValueError(f"hour must be an integer 0-23, got {hour!r}")
    if topic is not None and topic not in vocabulary.topics:
        raise ValueError(f"unknown topic {topic!r} (expected one of this vocabulary's topics: "
                         f"{', '.join(vocabulary.topics)})")
    nov = novelty(embedding, recent_embeddings)
    reply = dict(reply or {})
    return ContentFeatures(
        hook=hook_pattern(text, vocabulary),
        topic=topic if topic is not None else vocabulary.detect_topic(text),
        novelty=nov,
        dup_penalty=dup_penalty(nov, novelty_min),
        readability=readability(text),
        sentiment=sentiment(text),
        **format_features(text),
        hour=None if hour is None else int(hour),
        is_reply=bool(reply),
        author_follower_count=reply.get("author_follower_count"),
        tweet_velocity=reply.get("tweet_velocity"),
        tweet_age_min=reply.get("tweet_age_min"),
    )


# Numeric columns for predictors. Stored features are the raw record; this list (and
# ``feature_vector``) turns them into numbers, so the list can grow without re-reading old texts.
# The six hook kinds are universal; the topic columns are the niche's own.
_OTHER_FEATURES: tuple[str, ...] = (
    "hour_sin", "hour_cos",
    "novelty", "dup_penalty", "readability", "sentiment",
    "log_chars", "log_words", "has_number", "has_link", "hashtag_count", "ends_with_question",
    "emoji_count", "line_breaks",
    "is_reply", "log_author_followers", "log_tweet_velocity", "log_tweet_age_min",
)


def feature_names(vocabulary: vocab.Vocabulary) -> tuple[str, ...]:
    """The predictor columns of a niche: hook kinds, ``topic_<t>`` per topic of ``vocabulary``, the rest."""
    return (*(f"hook_{h}" for h in vocab.HOOK_PATTERNS), *(f"topic_{t}" for t in vocabulary.topics), *_OTHER_FEATURES)


FEATURE_NAMES: tuple[str, ...] = feature_names(vocab.DEFAULT)


def check_feature_names(names: Sequence[str], vocabulary: vocab.Vocabulary, what: str = "predictor") -> None:
    """Refuse (``ValueError`` naming both) a predictor whose topic columns are not ``vocabulary``'s topics:
    applied to another niche its topic columns would all read 0, and its predictions would be quietly wrong."""
    learned = [n[6:] for n in names if n.startswith("topic_")]
    if learned != list(vocabulary.topics):
        raise ValueError(f"{what} learned for topics ({', '.join(learned)}) cannot be applied to a vocabulary with "
                         f"topics ({', '.join(vocabulary.topics)}) (retrain it on this account's outcomes)")


def _num(d: Mapping[str, Any], key: str) -> float:
    v = d.get(key)
    return 0.0 if v is None else float(v)


def _hour_angle(hour: float) -> float:
    return 2 * math.pi * hour / 24.0


def _feature_value(d: Mapping[str, Any], name: str) -> float:
    if name.startswith("hook_"):
        return float(d.get("hook") == name[5:])
    if name.startswith("topic_"):
        return float(d.get("topic") == name[6:])
    if name in ("hour_sin", "hour_cos"):
        hour = d.get("hour")
        if hour is None:
            return 0.0  # unknown hour: the centre of the circle, equally far from every hour
        return math.sin(_hour_angle(hour)) if name == "hour_sin" else math.cos(_hour_angle(hour))
    if name.startswith("log_"):
        key = {"log_author_followers": "author_follower_count"}.get(name, name[4:])
        return math.log1p(max(0.0, _num(d, key)))
    if name in ("novelty", "dup_penalty", "readability", "sentiment", "has_number", "has_link", "hashtag_count",
                "ends_with_question", "emoji_count", "line_breaks", "is_reply"):
        return _num(d, name)
    raise ValueError(f"unknown feature name {name!r} (expected one of FEATURE_NAMES)")


def feature_vector(features: Mapping[str, Any], names: Sequence[str] = FEATURE_NAMES) -> np.ndarray:
    """A stored feature dict (``ContentFeatures.to_dict()``) as a float row in ``names`` order.

    Missing values count as 0 (e.g. no reply features on a post), so older rows stay usable.
    """
    return np.array([_feature_value(features, n) for n in names], dtype=float)


def feature_matrix(rows: Iterable[Mapping[str, Any]], names: Sequence[str] = FEATURE_NAMES) -> np.ndarray:
    """Many feature dicts as an (n, len(names)) array."""
    rows = list(rows)
    if not rows:
        return np.zeros((0, len(names)))
    return np.vstack([feature_vector(r, names) for r in rows])


# ----------------------------------------------------------------------------- timing features

TIMING_FEATURE_NAMES: tuple[str, ...] = ("hour_sin", "hour_cos", "hour2_sin", "hour2_cos",
                                         "weekday_sin", "weekday_cos", "is_weekend")


def hour_harmonics(hour: int) -> np.ndarray:
    """sin/cos of the local hour and of twice the hour: a smooth daily curve with room for a morning
    and an evening peak (shared by the timing predictor and the growth model)."""
    if not 0 <= hour <= 23:
        raise ValueError(f"hour must be 0-23, got {hour!r}")
    a = _hour_angle(hour)
    return np.array([math.sin(a), math.cos(a), math.sin(2 * a), math.cos(2 * a)])


def timing_vector(hour: int, weekday: int) -> np.ndarray:
    """Features of a local posting slot: hour (two harmonics, so morning and evening peaks fit) and
    weekday (0 = Monday) on circles, plus a weekend flag. Order: ``TIMING_FEATURE_NAMES``."""
    if not 0 <= hour <= 23:
        raise ValueError(f"hour must be 0-23, got {hour!r}")
    if not 0 <= weekday <= 6:
        raise ValueError(f"weekday must be 0-6 (0 = Monday), got {weekday!r}")
    wa = 2 * math.pi * weekday / 7.0
    return np.concatenate([hour_harmonics(hour), [math.sin(wa), math.cos(wa), float(weekday >= 5)]])


def timing_matrix(hours: Sequence[int], weekday: int) -> np.ndarray:
    """Rows of ``timing_vector`` for each hour on one weekday: the grid a timing predictor scores."""
    return np.vstack([timing_vector(h, weekday) for h in hours]) if len(hours) else np.zeros((0, len(TIMING_FEATURE_NAMES)))
