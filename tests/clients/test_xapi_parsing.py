"""The lookup parser's fast path (every metrics block plain counts) reads exactly what the field-by-field
reading does, and anything unusual still goes through the checks that name the bad field."""
from __future__ import annotations

import pytest
from hypothesis import given, settings, strategies as st

from xbotlib.clients.xapi.responses import Malformed, _parse_tweet_metrics_checked, parse_tweet_metrics

KEYS = ("impression_count", "like_count", "repost_count", "retweet_count", "reply_count", "quote_count",
        "bookmark_count", "user_profile_clicks", "url_link_clicks", "engagements")
# what X might put in a count: plain counts mostly, and the odd value the checks exist for
VALUES = st.one_of(st.integers(0, 10**9), st.integers(0, 10**9), st.none(), st.booleans(), st.integers(-5, -1),
                   st.floats(allow_nan=False, width=32), st.text(max_size=3))
BLOCK = st.one_of(st.none(), st.dictionaries(st.sampled_from(KEYS), VALUES, max_size=len(KEYS)),
                  st.dictionaries(st.sampled_from(KEYS), st.integers(0, 10**6), max_size=len(KEYS)),
                  st.lists(st.integers(0, 3), max_size=2))


def _outcome(parse, item):
    try:
        return parse(item)
    except Malformed as exc:
        return ("malformed", str(exc))


@settings(max_examples=400, deadline=None)
@given(pub=BLOCK, non=BLOCK, org=BLOCK, created=st.sampled_from([None, "2026-03-02T08:00:00.000Z"]))
def test_fast_path_reads_what_the_checked_reading_reads(pub, non, org, created):
    item = {"id": "1893000000000000001", "text": "x"}
    for key, block in (("public_metrics", pub), ("non_public_metrics", non), ("organic_metrics", org)):
        if block is not None:
            item[key] = block
    if created:
        item["created_at"] = created
    assert _outcome(parse_tweet_metrics, item) == _outcome(lambda i: _parse_tweet_metrics_checked(i["id"], i), item)


@pytest.mark.parametrize("block, match", [
    ({"public_metrics": {"like_count": -1}}, r"public_metrics\.like_count is not a non-negative integer: -1"),
    ({"public_metrics": {"like_count": True}}, r"public_metrics\.like_count"),
    ({"non_public_metrics": {"impression_count": "12"}}, r"non_public_metrics\.impression_count"),
    ({"organic_metrics": [1, 2]}, "organic_metrics is not an object"),
])
def test_unusual_values_still_name_the_field(block, match):
    with pytest.raises(Malformed, match=match):
        parse_tweet_metrics({"id": "1893000000000000001", **block})
