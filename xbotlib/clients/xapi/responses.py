"""What the X API client returns, and the pure parsing of X's JSON into it.

Every field of a response is optional; a value of the wrong type raises ``Malformed``, which the
client turns into an ``XApiError`` naming the endpoint. Lookup counts X always sends with
``public_metrics`` default to 0; the counts that only some answers carry (profile visits, link
clicks, and every analytics count, follows above all) are None when missing: "not measured", never
a measured 0.

X's specification (the production OpenAPI document the official SDK ``xdk`` is generated from) and
its documented examples name some fields differently; both are read, the spec's name first:
``repost_count`` / ``retweet_count`` (public and organic metrics), ``post_count`` / ``tweet_count``
(a user's public metrics).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Callable, Iterator, Mapping, Sequence


# ----------------------------------------------------------------------------- results

@dataclass(frozen=True)
class TweetMetrics:
    tweet_id: str
    created_at: datetime | None = None
    impressions: int = 0
    likes: int = 0
    retweets: int = 0
    replies: int = 0
    quotes: int = 0
    bookmarks: int = 0
    profile_visits: int | None = None
    link_clicks: int | None = None


@dataclass(frozen=True)
class TweetAnalytics:
    """One post's counts from ``GET /2/tweets/analytics``; None where X's answer did not carry the count
    (then follows come from follower-snapshot attribution, never a stored 0)."""
    tweet_id: str
    follows: int | None = None
    profile_visits: int | None = None   # X: user_profile_clicks
    link_clicks: int | None = None      # X: url_clicks
    impressions: int | None = None
    quotes: int | None = None           # X: quote_tweets


@dataclass(frozen=True)
class UserMetrics:
    user_id: str
    username: str
    followers_count: int = 0
    following_count: int = 0
    tweet_count: int = 0


@dataclass(frozen=True)
class SearchTweet:
    tweet_id: str
    text: str
    author_id: str | None = None
    created_at: datetime | None = None
    author_followers: int | None = None
    likes: int = 0
    retweets: int = 0
    replies: int = 0
    quotes: int = 0


@dataclass(frozen=True)
class OwnTweet:
    tweet_id: str
    text: str
    created_at: datetime | None = None


@dataclass(frozen=True)
class LookupResult:
    """Metrics per tweet id, and per-item errors ('Not Found Error: …') for ids X did not return."""
    metrics: dict[str, TweetMetrics] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class RateLimit:
    remaining: int | None
    reset_at: datetime | None


# ----------------------------------------------------------------------------- parsing (pure)

class Malformed(ValueError):
    pass


def parse_x_time(raw: Any) -> datetime | None:
    """'2026-03-02T08:00:00.000Z' -> aware datetime; None when missing; Malformed when unreadable."""
    if raw is None:
        return None
    if not isinstance(raw, str):
        raise Malformed(f"timestamp is not a string: {raw!r}")
    try:
        value = datetime.fromisoformat(raw.strip().replace("Z", "+00:00"))
    except ValueError:
        raise Malformed(f"timestamp is not ISO 8601: {raw!r}") from None
    return value if value.tzinfo else value.replace(tzinfo=timezone.utc)


def x_time(at: datetime) -> str:
    """The time format X accepts in start_time/end_time: YYYY-MM-DDTHH:mm:ssZ."""
    if at.tzinfo is None:
        raise ValueError(f"time must be timezone-aware: {at!r} (pass tzinfo=timezone.utc)")
    return at.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def as_object(value: Any, what: str) -> Mapping[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise Malformed(f"{what} is not an object: {value!r:.80}")
    return value


def read_count(block: Mapping[str, Any], key: str, what: str) -> int | None:
    value = block.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise Malformed(f"{what}.{key} is not a non-negative integer: {value!r}")
    return value


def _first(*values: int | None) -> int | None:
    return next((v for v in values if v is not None), None)


def item_id(item: Any) -> str:
    if not isinstance(item, dict) or not isinstance(item.get("id"), str) or not item["id"]:
        raise Malformed(f"item has no string id: {item!r:.80}")
    return item["id"]


def _plain_counts(block: Any) -> bool:
    """``block`` is absent, or an object whose every value is a non-negative integer: each ``read_count`` on it
    would return ``block.get(key)`` unchanged, so it can be read without checking key by key."""
    return block is None or (type(block) is dict
                             and all(type(v) is int and v >= 0 for v in block.values()))


_METRIC_BLOCKS = ("public_metrics", "non_public_metrics", "organic_metrics")


def parse_tweet_metrics(item: Mapping[str, Any]) -> TweetMetrics:
    """One tweet object of a lookup -> TweetMetrics. Impressions prefer non_public, then organic, then public.

    The usual answer (every metrics block all plain counts) is read as it is, without checking key by key:
    the same values the checked reading (``_parse_tweet_metrics_checked``) returns; anything else takes that
    reading, which names the bad field."""
    tid = item_id(item)
    if all(_plain_counts(item.get(block)) for block in _METRIC_BLOCKS):
        return _tweet_metrics(tid, item, lambda block, key: (item.get(block) or {}).get(key))
    return _parse_tweet_metrics_checked(tid, item)


def _parse_tweet_metrics_checked(tid: str, item: Mapping[str, Any]) -> TweetMetrics:
    """``parse_tweet_metrics`` field by field: a value of the wrong type raises ``Malformed`` naming it."""
    blocks = {block: as_object(item.get(block), block) for block in _METRIC_BLOCKS}
    return _tweet_metrics(tid, item, lambda block, key: read_count(blocks[block], key, block))


def _tweet_metrics(tid: str, item: Mapping[str, Any], count: Callable[[str, str], int | None]) -> TweetMetrics:
    """X's metrics blocks -> TweetMetrics, the one mapping of both readings; ``count(block, key)`` reads one
    count (None when absent)."""
    pub, non, org = _METRIC_BLOCKS
    return TweetMetrics(
        tweet_id=tid,
        created_at=parse_x_time(item.get("created_at")),
        impressions=_first(count(non, "impression_count"), count(org, "impression_count"),
                           count(pub, "impression_count")) or 0,
        likes=_first(count(pub, "like_count"), count(org, "like_count")) or 0,
        retweets=_first(count(pub, "repost_count"), count(pub, "retweet_count"), count(org, "repost_count"),
                        count(org, "retweet_count")) or 0,
        replies=_first(count(pub, "reply_count"), count(org, "reply_count")) or 0,
        quotes=count(pub, "quote_count") or 0,
        bookmarks=count(pub, "bookmark_count") or 0,
        profile_visits=_first(count(non, "user_profile_clicks"), count(org, "user_profile_clicks")),
        link_clicks=_first(count(non, "url_link_clicks"), count(org, "url_link_clicks")),
    )


def retweet_count(block: Mapping[str, Any], what: str) -> int | None:
    """Reposts under the spec's name (``repost_count``) or the documented one (``retweet_count``)."""
    return _first(read_count(block, "repost_count", what), read_count(block, "retweet_count", what))


def analytics_count(item: Mapping[str, Any], key: str) -> int | None:
    """One analytics count of a post: the total X gives beside the buckets, else the sum of the
    ``timestamped_metrics[].metrics`` buckets that carry it, else None (not measured)."""
    total = read_count(item, key, "analytics")
    if total is not None:
        return total
    buckets = item.get("timestamped_metrics")
    if buckets is None:
        return None
    if not isinstance(buckets, list):
        raise Malformed(f"timestamped_metrics is not a list: {buckets!r:.80}")
    found = [read_count(as_object(as_object(b, "timestamped_metrics[]").get("metrics"), "metrics"), key,
                        "timestamped_metrics[].metrics") for b in buckets]
    found = [v for v in found if v is not None]
    return sum(found) if found else None


def parse_analytics(item: Mapping[str, Any]) -> TweetAnalytics:
    """One post of ``GET /2/tweets/analytics`` (X's names: follows, user_profile_clicks, url_clicks,
    impressions, quote_tweets), from its totals or its ``timestamped_metrics`` buckets."""
    tid = item_id(item)
    return TweetAnalytics(tweet_id=tid, follows=analytics_count(item, "follows"),
                          profile_visits=analytics_count(item, "user_profile_clicks"),
                          link_clicks=analytics_count(item, "url_clicks"),
                          impressions=analytics_count(item, "impressions"),
                          quotes=analytics_count(item, "quote_tweets"))


def item_errors(body: Mapping[str, Any]) -> dict[str, str]:
    """Per-item errors of a 200 response: {resource id: 'Title: detail'}."""
    out: dict[str, str] = {}
    errors = body.get("errors")
    if errors is None:
        return out
    if not isinstance(errors, list):
        raise Malformed(f"errors is not a list: {errors!r:.80}")
    for err in errors:
        if not isinstance(err, dict):
            continue
        key = err.get("resource_id") or err.get("value")
        if key is None:
            continue
        title, detail = err.get("title") or "Error", err.get("detail") or err.get("message") or ""
        out[str(key)] = f"{title}: {detail}".rstrip(": ")
    return out


def data_list(body: Mapping[str, Any]) -> list:
    data = body.get("data", [])
    if not isinstance(data, list):
        raise Malformed(f"data is not a list: {data!r:.80}")
    return data


def chunks(items: Sequence[str], size: int) -> Iterator[Sequence[str]]:
    for i in range(0, len(items), size):
        yield items[i:i + size]


def check_ids(ids: Sequence[str], endpoint: str) -> list[str]:
    if isinstance(ids, str):
        raise ValueError(f"{endpoint}: ids must be a list of tweet ids, not one string {ids!r}")
    out: list[str] = []
    seen: set[str] = set()
    for i in ids:
        s = str(i)
        if not s.isdigit():
            raise ValueError(f"{endpoint}: tweet id is not numeric: {i!r} (X ids are digit strings such as '1893…')")
        if s not in seen:
            seen.add(s)
            out.append(s)
    return out
