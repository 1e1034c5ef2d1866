"""The shared vocabulary of content: hook patterns, topics, and the text markers of experiment arms.

The template generator writes text in these shapes, ``features`` reads them back, and the sandbox
audience (which, like real X, only sees text) reacts to them. One definition keeps the three honest.
Content bandit arms are the hook patterns; timing arms are local posting hours.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Mapping

# Hook patterns, in detection priority order. 'plain' is the fallback.
HOOK_PATTERNS: tuple[str, ...] = ("did_you_know", "new_study", "question", "contrarian", "cta", "plain")

_HOOK_RULES: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("did_you_know", re.compile(r"^\s*(did you know|fun fact|til\b|today i learned)", re.I)),
    ("new_study", re.compile(r"^\s*(new (study|research|paper|data)|a (new )?study|researchers|study:|research:)", re.I)),
    ("contrarian", re.compile(r"^\s*(unpopular opinion|hot take|contrary to|everyone (says|thinks)|stop (saying|believing)"
                              r"|myth:|actually,|most people are wrong)", re.I)),
    ("cta", re.compile(r"^\s*(follow (me|for)|try this|save this|bookmark this|share this|join |here'?s how to|do this)", re.I)),
    ("question", re.compile(r"^\s*(what|why|how|who|which|when|would|should|is|are|do|does|can)\b[^.!]*\?", re.I)),
)

TOPICS: tuple[str, ...] = ("ai", "productivity", "science", "startups", "health")

TOPIC_KEYWORDS: dict[str, tuple[str, ...]] = {
    "ai": ("ai", "llm", "model", "machine learning", "neural", "gpt", "agents", "prompt"),
    "productivity": ("productivity", "focus", "habit", "deep work", "calendar", "routine", "procrastinat", "time block"),
    "science": ("science", "physics", "biology", "universe", "experiment", "molecule", "space", "evolution"),
    "startups": ("startup", "founder", "investor", "saas", "revenue", "customers", "product-market", "fundrais"),
    "health": ("health", "sleep", "exercise", "nutrition", "heart", "walking", "stress", "protein"),
}

# Experiment arm markers, as the audience can see them.
HASHTAG_RE = re.compile(r"(?<!\w)#\w+")
TOPIC_HASHTAGS: dict[str, str] = {"ai": "#AI", "productivity": "#Productivity", "science": "#Science",
                                  "startups": "#Startups", "health": "#Health"}
READER_QUESTIONS: tuple[str, ...] = ("What do you think?", "Have you tried this?", "Would you agree?",
                                     "What's your take?", "What would you add?")
LATE_EVENING_HOURS: tuple[int, ...] = (21, 22, 23)
DEFAULT_POSTING_HOURS: tuple[int, ...] = (7, 9, 11, 13, 15, 17, 19, 21)


def _topic_patterns(topic_keywords: Mapping[str, tuple[str, ...]]) -> dict[str, re.Pattern[str]]:
    # one alternation per topic: a keyword counts where a word starts with it ("startup" in "startups")
    return {topic: re.compile(r"\b(?:" + "|".join(re.escape(k.lower()) for k in keywords) + ")")
            for topic, keywords in topic_keywords.items()}


@dataclass(frozen=True)
class Vocabulary:
    """What one niche's text is made of (an account profile builds it; ``DEFAULT`` is the built-in niche).

    ``topics`` in detection-tie order, each with its detection ``topic_keywords`` (lower case, matched
    where a word starts with them) and its ``topic_hashtags`` (the hashtag experiment arm);
    ``hooks``: the hook patterns this account may use (a subset of ``HOOK_PATTERNS``, always with
    'plain'); ``hook_rules``: (hook, compiled pattern on the first line) in priority order, for the
    account's language; ``reader_questions``: the closing questions of the reader-question arm.
    """
    topics: tuple[str, ...]
    topic_keywords: Mapping[str, tuple[str, ...]]
    topic_hashtags: Mapping[str, str]
    hooks: tuple[str, ...] = HOOK_PATTERNS
    hook_rules: tuple[tuple[str, re.Pattern[str]], ...] = _HOOK_RULES
    reader_questions: tuple[str, ...] = READER_QUESTIONS
    _topic_res: dict = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not self.topics:
            raise ValueError("a vocabulary needs at least one topic")
        missing = [t for t in self.topics if not self.topic_keywords.get(t)]
        if missing:
            raise ValueError(f"topics without keywords: {', '.join(missing)} (give each topic at least one keyword)")
        unknown = [h for h in self.hooks if h not in HOOK_PATTERNS]
        if unknown:
            raise ValueError(f"unknown hook patterns: {', '.join(unknown)} (expected some of {', '.join(HOOK_PATTERNS)})")
        if "plain" not in self.hooks:
            raise ValueError("the allowed hooks must include 'plain' (the fallback every post can take)")
        object.__setattr__(self, "_topic_res", _topic_patterns({t: self.topic_keywords[t] for t in self.topics}))

    def detect_hook(self, text: str) -> str:
        """The hook pattern of a post, from its opening words; 'plain' when none matches."""
        first = text.strip().split("\n", 1)[0]
        for name, pattern in self.hook_rules:
            if pattern.search(first):
                return name
        return "plain"

    def detect_topic(self, text: str) -> str | None:
        """The topic with most keyword hits (ties: ``topics`` order); None when nothing matches."""
        low = text.lower()
        best, best_hits = None, 0
        for topic in self.topics:
            hits = len(self._topic_res[topic].findall(low))
            if hits > best_hits:
                best, best_hits = topic, hits
        return best


DEFAULT = Vocabulary(topics=TOPICS, topic_keywords=TOPIC_KEYWORDS, topic_hashtags=TOPIC_HASHTAGS)


def detect_hook(text: str, vocabulary: Vocabulary = DEFAULT) -> str:
    """The hook pattern of a post, from its opening words; 'plain' when none matches."""
    return vocabulary.detect_hook(text)


def detect_topic(text: str, vocabulary: Vocabulary = DEFAULT) -> str | None:
    """The topic with most keyword hits (ties: the vocabulary's topic order); None when nothing matches."""
    return vocabulary.detect_topic(text)


def hashtag_count(text: str) -> int:
    return len(HASHTAG_RE.findall(text))


def ends_with_question(text: str) -> bool:
    """True when the post closes by asking the reader something."""
    stripped = HASHTAG_RE.sub("", text).strip()
    return stripped.endswith("?")


def is_contrarian(text: str, vocabulary: Vocabulary = DEFAULT) -> bool:
    return vocabulary.detect_hook(text) == "contrarian"
