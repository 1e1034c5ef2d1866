"""The growth-first reward (DESIGN.md, Definitions): derived rates, the composite, sample weights.

Pure functions. The weights come from configuration (``Settings.reward_weights()``).
"""
from __future__ import annotations

import math
from typing import Iterator, Mapping

REWARD_WEIGHT_KEYS: tuple[str, ...] = ("fpki", "retweet_rate", "reply_rate", "novelty", "dup_penalty")


def _check_count(name: str, value: float) -> float:
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a number, got {value!r}") from None
    if not math.isfinite(v) or v < 0:
        raise ValueError(f"{name} must be a finite number >= 0, got {value!r} (check the analytics response)")
    return v


def derived_rates(impressions: float, likes: float, retweets: float, replies: float, quotes: float,
                  bookmarks: float, follows: float) -> dict[str, float]:
    """er, fpki, retweet_rate and reply_rate of one outcome.

    er = (likes + retweets + replies + quotes + bookmarks) / max(1, impressions);
    fpki = 1000 · follows / max(1, impressions); rates = count / max(1, impressions).
    ``follows`` may be fractional (attributed from follower snapshots).
    """
    c = {k: _check_count(k, v) for k, v in dict(impressions=impressions, likes=likes, retweets=retweets,
                                                  replies=replies, quotes=quotes, bookmarks=bookmarks,
                                                  follows=follows).items()}
    denom = max(1.0, c["impressions"])
    return {
        "er": (c["likes"] + c["retweets"] + c["replies"] + c["quotes"] + c["bookmarks"]) / denom,
        "fpki": 1000.0 * c["follows"] / denom,
        "retweet_rate": c["retweets"] / denom,
        "reply_rate": c["replies"] / denom,
    }


class RewardWeights(Mapping[str, float]):
    """Reward weights that passed ``check_weights`` (read-only). ``composite_reward`` given these does not
    check them again: a caller scoring many outcomes (the collector: 20,000 in a tick) checks once."""

    __slots__ = ("_w",)

    def __init__(self, checked: dict[str, float]) -> None:
        self._w = checked

    def __getitem__(self, key: str) -> float:
        return self._w[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._w)

    def __len__(self) -> int:
        return len(self._w)

    def __repr__(self) -> str:
        return f"RewardWeights({self._w!r})"


def check_weights(weights: Mapping[str, float]) -> RewardWeights:
    """Validate reward weights: exactly ``REWARD_WEIGHT_KEYS``, finite numbers. Weights already checked
    (a ``RewardWeights``) are returned as they are."""
    if isinstance(weights, RewardWeights):
        return weights
    missing = [k for k in REWARD_WEIGHT_KEYS if k not in weights]
    unknown = sorted(set(weights) - set(REWARD_WEIGHT_KEYS))
    if missing or unknown:
        raise ValueError(f"reward weights: missing {missing} unknown {unknown} "
                         f"(expected exactly {list(REWARD_WEIGHT_KEYS)}; use Settings.reward_weights())")
    out = {}
    for k in REWARD_WEIGHT_KEYS:
        v = weights[k]
        if not isinstance(v, (int, float)) or not math.isfinite(v):
            raise ValueError(f"reward weight {k} must be a finite number, got {v!r}")
        out[k] = float(v)
    return RewardWeights(out)


def composite_reward(fpki: float, retweet_rate: float, reply_rate: float, novelty: float | None,
                     dup_penalty: float, weights: Mapping[str, float]) -> float:
    """w_fpki·fpki + w_rt·retweet_rate + w_reply·reply_rate + w_nov·novelty − w_dup·dup_penalty.

    ``novelty`` None (never measured) earns no novelty bonus.
    """
    w = check_weights(weights)
    nov = 0.0 if novelty is None else float(novelty)
    return (w["fpki"] * float(fpki) + w["retweet_rate"] * float(retweet_rate) + w["reply_rate"] * float(reply_rate)
            + w["novelty"] * nov - w["dup_penalty"] * float(dup_penalty))


def exposure_weight(impressions: float) -> float:
    """Training weight of one outcome: min(1, 1000 / max(1, impressions))."""
    return min(1.0, 1000.0 / max(1.0, _check_count("impressions", impressions)))


def outcome_reward(counts: Mapping[str, float], novelty: float | None, dup_penalty: float,
                   weights: Mapping[str, float]) -> dict[str, float]:
    """Everything the collector stores for one outcome, from raw counts.

    ``counts`` has impressions, likes, retweets, replies, quotes, bookmarks, follows. Returns er,
    fpki, retweet_rate, reply_rate, reward_composite and sample_weight.
    """
    keys = ("impressions", "likes", "retweets", "replies", "quotes", "bookmarks", "follows")
    missing = [k for k in keys if k not in counts]
    if missing:
        raise ValueError(f"outcome counts missing {missing} (expected {list(keys)})")
    rates = derived_rates(**{k: counts[k] for k in keys})
    reward = composite_reward(rates["fpki"], rates["retweet_rate"], rates["reply_rate"], novelty, dup_penalty, weights)
    return {**rates, "reward_composite": reward, "sample_weight": exposure_weight(counts["impressions"])}
