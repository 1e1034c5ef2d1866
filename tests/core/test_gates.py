"""Text as X counts it: the weighted length (twitter-text v3) and the quality gate that uses it.

The conformance cases restate examples of twitter-text's official conformance suite
(``conformance/validate.yml``, sections WeightedTweetsWithDiscountedEmojiCounterTest and
UnicodeDirectionalMarkerCounterTest), so a package update that drifts from X's rules fails here.
"""
from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import settings as hsettings
from hypothesis import strategies as st
from twitter_text import parse_tweet
from twitter_text.config import config as twitter_text_config

from xbotlib.core.gates import MIN_CHARS, GateVerdict, quality_gate
from xbotlib.core.text import X_MAX_WEIGHTED_LENGTH, is_blank, weighted_length, x_text_problem

FAMILY = "\U0001F468\u200d\U0001F469\u200d\U0001F467\u200d\U0001F466"  # one emoji of 7 code points
MASK = "\U0001F637"  # 😷
CJK_POEM = "故人西辞黄鹤楼，烟花三月下扬州。孤帆远影碧空尽，唯见长江天际流。"  # 32 CJK characters and punctuation


@pytest.mark.parametrize("text, weighted, valid", [
    ("Hi http://test.co", 26, True),                        # a URL counts 23
    ("http://test.co", 23, True),
    (" ".join(["https://www.twitter.com/aloha"] * 10) + " ", 240, True),  # 10 URLs: 10 × 23 + 10 spaces
    ("x" * 285, 285, False),
    (CJK_POEM * 5, 320, False),                             # 160 CJK characters count 2 each
    (MASK * 160, 320, False),                               # 160 emoji count 2 each
    ("the" + CJK_POEM * 5, 323, False),
    ("H\U0001F431\u263a" + FAMILY, 7, True),                # a ZWJ sequence is one emoji
    ("\U0001F637\U0001F47E\U0001F621\U0001F525\U0001F4A9", 10, True),
    ("\U0001F64B\U0001F3FD\U0001F468\u200d\U0001F3A4", 4, True),  # skin tone modifiers do not add
    (FAMILY * 140, 280, True),
    ("1\u20e3", 2, True),                                   # keycap: a latin lead, still an emoji
    ("Unicode 9.0 emoji: \U0001F920; \U0001F483; \U0001F483\U0001F3FE", 29, True),
    ("ABC\u202a\uffffABC\ufffe", 12, False),                # invalid characters
    ("\u2066\u202ahttp://foobar.\u067e\u0627\u06a9\u0633\u062a\u0627\u0646/\u202c\u2069", 31, True),
    ("english text 日本語 \U0001F637 https://example.com", 46, True),  # the package's own documented example
])
def test_weighted_length_follows_the_twitter_text_conformance_suite(text, weighted, valid):
    assert weighted_length(text) == weighted
    assert (x_text_problem(text) is None) is valid


def test_280_emoji_fail_and_140_pass():
    assert len(MASK * 280) == 280  # what len() allowed before: 280 "characters"
    assert weighted_length(MASK * 140) == 280 and x_text_problem(MASK * 140) is None
    assert weighted_length(MASK * 280) == 560
    assert x_text_problem(MASK * 280) == ("too long for X: weighted length 560 > 280 "
                                          "(X counts a URL as 23, CJK and most emoji as 2)")


def test_a_url_counts_23_however_long():
    long_url = "https://example.com/" + "a" * 300
    assert weighted_length(long_url) == 23
    text = "Read this before your next run: " + long_url
    assert len(text) > 280 and weighted_length(text) == len("Read this before your next run: ") + 23
    assert x_text_problem(text) is None


@pytest.mark.parametrize("text", ["", " ", "   \n\t  ", "\u3000\u3000", "\u200b\u200b", " \ufeff ", None])
def test_blank_text_is_refused(text):
    assert is_blank(text)
    assert x_text_problem(text) == "empty or whitespace only"


def test_the_limit_is_x_s():
    assert X_MAX_WEIGHTED_LENGTH == 280 == twitter_text_config["version3"]["max_weighted_tweet_length"]
    assert x_text_problem("y" * 280) is None
    assert x_text_problem("y" * 281).startswith("too long for X: weighted length 281 > 280")


# ----------------------------------------------------------------------------- the quality gate

BANNED = ("as an ai",)
PROSE = "Sleep is the cheapest upgrade there is: seven hours beats any supplement on the shelf. "


@pytest.mark.parametrize("text, reason", [
    (" " * 60, "empty or whitespace only"),
    ("\n\n\t" * 20, "empty or whitespace only"),
    (MASK * 280, "too long for X: weighted length 560 > 280 (X counts a URL as 23, CJK and most emoji as 2)"),
    (PROSE + MASK * 100, f"too long for X: weighted length {len(PROSE) + 200} > 280 "
                          "(X counts a URL as 23, CJK and most emoji as 2)"),
    (CJK_POEM * 5, "too long for X: weighted length 320 > 280 (X counts a URL as 23, CJK and most emoji as 2)"),
    (PROSE + "\ufffe", "not valid for X: it contains characters X refuses (such as U+FFFE, U+FEFF, U+FFFF)"),
    ("   " + "x" * (MIN_CHARS - 1) + "   ", f"too short ({MIN_CHARS - 1} < {MIN_CHARS} chars)"),
])
def test_quality_gate_refuses_what_x_would_refuse(text, reason):
    assert quality_gate(text, 0.9, 0.2, BANNED) == GateVerdict(False, "quality", reason)


@pytest.mark.parametrize("text", [
    PROSE + MASK * 70,                                       # under 280 only because emoji count 2, not 1
    PROSE + "Read more: https://example.com/" + "a" * 250,   # over 280 by len(), 140-odd weighted
    PROSE.strip() + " " + MASK * ((280 - len(PROSE.strip()) - 1) // 2),  # right up to the limit
])
def test_quality_gate_passes_text_x_accepts(text):
    assert weighted_length(text) <= 280
    assert quality_gate(text, 0.9, 0.2, BANNED).ok


@given(st.one_of(st.text(alphabet=st.characters(min_codepoint=0x20, max_codepoint=0x7e), max_size=320),
                 st.lists(st.sampled_from(["http", "www", ".com", "t.co/", "://", "x.io", "a", "Z", "9", " ", ".", "\n",
                                           "#tag", "e.g.", "3.5", "é", "\u00a0", "\U0001F600"]), max_size=80).map("".join)))
@hsettings(max_examples=400, deadline=None)
def test_the_plain_text_shortcut_agrees_with_twitter_text(text):
    """weighted_length and x_text_problem skip twitter-text's parse for plain ASCII without a URL: on such text
    and on text made to look like URLs, they must say what twitter-text says."""
    parsed = parse_tweet(text, twitter_text_config["version3"])  # the reference itself, not the shortcut
    assert weighted_length(text) == parsed.weightedLength
    if not is_blank(text):
        assert (x_text_problem(text) is None) == (parsed.valid and parsed.weightedLength <= X_MAX_WEIGHTED_LENGTH)
