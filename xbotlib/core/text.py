"""What a text reads like, as numbers: readability, sentiment and format. Pure; part of the content
features (``xbotlib.core.features.extract_features``).

- ``readability``: Flesch reading ease mapped to 0..1 (``flesch_reading_ease`` raw);
- ``sentiment``: a small transparent lexicon score with negation;
- ``format_features``: length, links, numbers, hashtags, a closing question, emoji, line breaks;
- ``weighted_length`` / ``x_text_problem``: the length as X counts it and why X would refuse a text.
  X counts *weighted* characters by the twitter-text v3 rules (the ``twitter-text-parser`` package,
  checked against twitter-text's official conformance examples in tests/core/test_gates.py): a URL
  counts 23 whatever its length, CJK and most emoji 2, other characters 1, after NFC normalisation;
  at most 280. ``len()`` lets 280 emoji through, which X refuses.
"""
from __future__ import annotations

import re
from typing import Any

import numpy as np

from xbotlib.core import vocab

# ----------------------------------------------------------------------------- readability, sentiment

_URL_RE = re.compile(r"https?://\S+|www\.\S+", re.I)
_MENTION_RE = re.compile(r"(?<!\w)@\w+")
_LETTER_WORD_RE = re.compile(r"[A-Za-z]+(?:'[A-Za-z]+)?")
# compiled once: re.findall(pattern_string, …) looks the pattern up in re's cache on every word
_VOWEL_GROUP_RE = re.compile(r"[aeiouy]+")
_SENTENCE_END_RE = re.compile(r"[.!?]+|\n+")


def _clean(text: str) -> str:
    """Text without links, mentions and hashtags: what a reader actually reads as prose."""
    return vocab.HASHTAG_RE.sub(" ", _MENTION_RE.sub(" ", _URL_RE.sub(" ", text)))


def _syllables(word: str) -> int:
    w = word.lower().replace("'", "")
    n = len(_VOWEL_GROUP_RE.findall(w))
    if n > 1 and w.endswith("e") and not w.endswith(("le", "ee", "ye")):
        n -= 1  # silent final e
    return max(1, n)


def flesch_reading_ease(text: str) -> float | None:
    """Raw Flesch reading ease (higher = easier; ~60-70 plain English). None when there are no words."""
    clean = _clean(text)
    words = _LETTER_WORD_RE.findall(clean)
    if not words:
        return None
    sentences = max(1, len(_SENTENCE_END_RE.findall(clean.strip().rstrip(".!?\n"))) + 1)
    syllables = sum(_syllables(w) for w in words)
    return 206.835 - 1.015 * (len(words) / sentences) - 84.6 * (syllables / len(words))


def readability(text: str) -> float:
    """Flesch reading ease mapped to 0..1 (clip to [0, 100], divide by 100); 0.0 for text without words."""
    fre = flesch_reading_ease(text)
    return 0.0 if fre is None else float(np.clip(fre, 0.0, 100.0) / 100.0)


POSITIVE_WORDS = frozenset("""
good great love loved loves amazing awesome best better excellent happy helpful wonderful win wins
winning brilliant easy enjoy enjoyed fantastic impressive incredible inspiring beautiful benefit
benefits boost boosts improve improves improved improvement success successful smart strong
powerful proven effective fun glad grateful thrilled excited exciting remarkable healthy calm
""".split())
NEGATIVE_WORDS = frozenset("""
bad terrible awful hate hated hates worst worse poor sad angry fail fails failed failure wrong
broken useless hard difficult painful pain problem problems risk risky harmful harm toxic boring
stress stressed stressful anxious anxiety scary worried worry lose loses losing lost waste wasted
mistake mistakes overrated disappointing tired unhealthy sick dangerous myth
""".split())
NEGATORS = frozenset("not no never none nobody nothing neither nor without hardly barely cannot cant".split())
_SENT_TOKEN_RE = re.compile(r"[a-z]+(?:'[a-z]+)?|[.!?,;:]")


def sentiment(text: str) -> float:
    """Lexicon sentiment in (-1, 1): (pos - neg) / (pos + neg + 1).

    A negator ("not", "never", "no", "…n't") flips opinion words up to the end of its clause
    (the next punctuation mark), the classic rule of Pang, Lee & Vaithyanathan (2002).

    0.0 means neutral or no opinion words. Small and transparent on purpose: it is one feature
    among many, and it must behave the same offline and in tests.
    """
    pos = neg = 0
    flip = False
    for tok in _SENT_TOKEN_RE.findall(_clean(text).lower()):
        if tok in ".!?,;:":
            flip = False
            continue
        if tok in NEGATORS or tok.endswith("n't"):
            flip = True
            continue
        polarity = 1 if tok in POSITIVE_WORDS else -1 if tok in NEGATIVE_WORDS else 0
        if flip:
            polarity = -polarity
        pos += polarity > 0
        neg += polarity < 0
    return (pos - neg) / (pos + neg + 1)


# ----------------------------------------------------------------------------- format

_EMOJI_RE = re.compile("[\U0001F300-\U0001FAFF\U0001F1E6-\U0001F1FF\u2600-\u27BF\u2B50\u2B06\u2194-\u21AA]")
_NUMBER_RE = re.compile(r"\d")


def format_features(text: str) -> dict[str, Any]:
    """Length and format: chars, words, has_number, has_link, hashtag_count, ends_with_question,
    emoji_count, line_breaks."""
    return {
        "chars": len(text),
        "words": len(text.split()),
        "has_number": bool(_NUMBER_RE.search(_URL_RE.sub(" ", text))),
        "has_link": bool(_URL_RE.search(text)),
        "hashtag_count": vocab.hashtag_count(text),
        "ends_with_question": vocab.ends_with_question(text),
        "emoji_count": len(_EMOJI_RE.findall(text)),
        "line_breaks": text.count("\n"),
    }


# ----------------------------------------------------------------------------- length as X counts it

X_MAX_WEIGHTED_LENGTH = 280  # twitter-text v3 max_weighted_tweet_length (a test checks it against the package)
# invisible characters Python's str.isspace() does not count as whitespace: a text of only these is blank too
_INVISIBLE = dict.fromkeys(map(ord, "\u200b\u200c\u200d\u2060\ufeff"))


def _parse(text: str):
    """twitter-text's parse with the v3 configuration (the rules X applies today: emoji discounted to 2)."""
    # imported here for start-up time: twitter_text compiles its URL and emoji patterns on import (~0.4 s),
    # which the CLI, the API and notebooks that never check a post's length should not pay
    from twitter_text import parse_tweet
    from twitter_text.config import config
    return parse_tweet(text, config["version3"])


# Text the v3 rules weigh one per character with no URL in it: printable ASCII and line breaks (all in the
# weight-1 range 0-4351, none invalid, unchanged by NFC) with no dot before a letter or digit and no "://"
# (a URL needs a domain with a dot). Most posts are such text, and twitter-text's parse costs ~4 ms of CPU
# per text (its URL and emoji patterns); the plan checks five candidates per post.
_PLAIN_RE = re.compile(r"[\x20-\x7e\n]*")
_URL_HINT_RE = re.compile(r"\.[0-9A-Za-z]|://")


def _plain_length(text: str) -> int | None:
    """``len(text)`` when twitter-text v3 would weigh it so and call it valid (see _PLAIN_RE); None when only
    twitter-text can tell. A test checks the two agree on generated text."""
    if _PLAIN_RE.fullmatch(text) and not _URL_HINT_RE.search(text):
        return len(text)
    return None


def weighted_length(text: str) -> int:
    """The length X counts (twitter-text v3): URLs 23, CJK and most emoji 2, other characters 1."""
    plain = _plain_length(text)
    return plain if plain is not None else int(_parse(text).weightedLength)


def is_blank(text: str | None) -> bool:
    """True for None, '' and text of nothing but whitespace or zero-width characters."""
    return not text or not text.translate(_INVISIBLE).strip()


def x_text_problem(text: str | None) -> str | None:
    """Why X would refuse ``text`` as a post or reply, or None when it would accept its length and characters.

    Blank (empty, whitespace or zero-width only), longer than 280 weighted characters, or containing
    characters twitter-text calls invalid (U+FFFE, U+FEFF, U+FFFF and the like).
    """
    if is_blank(text):
        return "empty or whitespace only"
    length, valid = _plain_length(text), True
    if length is None:
        parsed = _parse(text)
        length, valid = parsed.weightedLength, parsed.valid
    if length > X_MAX_WEIGHTED_LENGTH:
        return (f"too long for X: weighted length {length} > {X_MAX_WEIGHTED_LENGTH} "
                "(X counts a URL as 23, CJK and most emoji as 2)")
    if not valid:
        return "not valid for X: it contains characters X refuses (such as U+FFFE, U+FEFF, U+FFFF)"
    return None
