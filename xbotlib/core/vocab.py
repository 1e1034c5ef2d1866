"""The shared vocabulary of content: hook patterns, topics, and the text markers of experiment arms.

The template generator writes text in these shapes, ``features`` reads them back, and the sandbox
audience (which, like real X, only sees text) reacts to them. One definition keeps the three honest.
Content bandit arms are the hook patterns; timing arms are local posting hours.
"""
from __future__ import annotations

import re

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


def detect_hook(text: str) -> str:
    """The hook pattern of a post, from its opening words; 'plain' when none matches."""
    first = text.strip().split("\n", 1)[0]
    for name, pattern in _HOOK_RULES:
        if pattern.search(first):
            return name
    return "plain"


# one alternation per topic: a keyword counts where a word starts with it ("startup" in "startups")
_TOPIC_RES: dict[str, re.Pattern[str]] = {
    topic: re.compile(r"\b(?:" + "|".join(re.escape(k) for k in keywords) + ")")
    for topic, keywords in TOPIC_KEYWORDS.items()
}


def detect_topic(text: str) -> str | None:
    """The topic with most keyword hits (ties: TOPICS order); None when nothing matches."""
    low = text.lower()
    best, best_hits = None, 0
    for topic in TOPICS:
        hits = len(_TOPIC_RES[topic].findall(low))
        if hits > best_hits:
            best, best_hits = topic, hits
    return best


def hashtag_count(text: str) -> int:
    return len(HASHTAG_RE.findall(text))


def ends_with_question(text: str) -> bool:
    """True when the post closes by asking the reader something."""
    stripped = HASHTAG_RE.sub("", text).strip()
    return stripped.endswith("?")


def is_contrarian(text: str) -> bool:
    return detect_hook(text) == "contrarian"
