"""Scenarios: the hidden ground truth of the sandbox audience, read from a TOML file.

A scenario says how large the account is, how reach varies by hour, what a plain post earns per
impression, and how each hook pattern, topic and experiment marker multiplies that. Every key is
described in docs/SCENARIO.md. Unknown keys are errors, so a typo cannot silently fall back to a
default. ``load_scenario(None)`` loads ``scenarios/default.toml`` shipped in the repository.

A scenario reads text with its own ``vocabulary``: when its ``[topics.<name>]`` tables carry
``keywords`` (and optionally ``hashtag``), the audience is one of that niche and detects those topics
(a real audience does not read the account's profile); without keywords it is the built-in niche's
(``vocab.DEFAULT``). The audience reads every hook kind, whatever the account allows itself.
"""
from __future__ import annotations

import dataclasses
import math
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from xbotlib.config import PROJECT_ROOT
from xbotlib.core import vocab

SCENARIO_DIR = PROJECT_ROOT / "scenarios"
EXPERIMENT_IDS: tuple[str, ...] = ("hashtag_1", "question_cta", "contrarian_reply", "late_evening_slot")


class ScenarioError(ValueError):
    """A scenario file cannot be used; the message names the file, key, value and what was expected."""


@dataclass(frozen=True)
class Effect:
    """Multipliers one feature of a post applies (1.0 = no effect).

    impressions: reach; engagement: likes, retweets, replies, quotes and bookmarks per impression;
    replies: an extra factor on replies only; profile_visits: profile visits per impression;
    follow_rate: follows per profile visit. Follows scale with impressions × profile_visits × follow_rate,
    fpki with profile_visits × follow_rate.
    """
    impressions: float = 1.0
    engagement: float = 1.0
    replies: float = 1.0
    profile_visits: float = 1.0
    follow_rate: float = 1.0

    @property
    def follows(self) -> float:
        return self.impressions * self.profile_visits * self.follow_rate

    def __mul__(self, other: "Effect") -> "Effect":
        return Effect(self.impressions * other.impressions, self.engagement * other.engagement,
                      self.replies * other.replies, self.profile_visits * other.profile_visits,
                      self.follow_rate * other.follow_rate)


NEUTRAL = Effect()


@dataclass(frozen=True)
class Account:
    initial_followers: int = 2000
    following_count: int = 400
    initial_tweet_count: int = 1500
    organic_follows_per_day: float = 2.0
    churn_per_day: float = 0.002


@dataclass(frozen=True)
class Reach:
    impressions_per_follower: float = 0.3
    discovery_impressions: float = 250.0
    dispersion: float = 3.0
    accrual_tau_hours: float = 4.0
    settle_hours: float = 72.0


@dataclass(frozen=True)
class Hours:
    reach: tuple[float, ...] = (1.0,) * 24
    quality: tuple[float, ...] = (1.0,) * 24


@dataclass(frozen=True)
class Rates:
    likes: float = 0.015
    retweets: float = 0.002
    replies: float = 0.0015
    quotes: float = 0.0003
    bookmarks: float = 0.001
    profile_visits: float = 0.01
    link_clicks: float = 0.01
    follows_per_profile_visit: float = 0.12
    dispersion: float = 8.0


@dataclass(frozen=True)
class Fatigue:
    window_days: float = 7.0
    onset: float = 0.3
    max_penalty: float = 0.6


@dataclass(frozen=True)
class Replies:
    own_reach: float = 0.25
    spill_per_sqrt_follower: float = 2.0
    velocity_half: float = 30.0
    age_tau_minutes: float = 120.0
    profile_visits: float = 1.3
    candidates_per_topic: int = 25


@dataclass(frozen=True)
class XAccess:
    """What the account's X API access level grants. analytics: ``GET /2/tweets/analytics`` answers
    (false: 403 Client Forbidden, as X answers an access level without it; follows then come from
    follower-snapshot attribution)."""
    analytics: bool = True


@dataclass(frozen=True)
class Scenario:
    name: str
    description: str = ""
    timezone: str = "UTC"
    account: Account = field(default_factory=Account)
    reach: Reach = field(default_factory=Reach)
    hours: Hours = field(default_factory=Hours)
    rates: Rates = field(default_factory=Rates)
    fatigue: Fatigue = field(default_factory=Fatigue)
    replies: Replies = field(default_factory=Replies)
    x: XAccess = field(default_factory=XAccess)
    hooks: Mapping[str, Effect] = field(default_factory=dict)
    topics: Mapping[str, Effect] = field(default_factory=dict)
    no_topic: Effect = NEUTRAL
    experiments: Mapping[str, Effect] = field(default_factory=dict)
    source: str = "<built-in>"
    vocabulary: vocab.Vocabulary = vocab.DEFAULT  # how this audience reads text (topics and their keywords)

    def hook_effect(self, hook: str) -> Effect:
        return self.hooks.get(hook, NEUTRAL)

    def topic_effect(self, topic: str | None) -> Effect:
        return self.no_topic if topic is None else self.topics.get(topic, NEUTRAL)

    def experiment_effect(self, experiment_id: str) -> Effect:
        return self.experiments.get(experiment_id, NEUTRAL)


# ----------------------------------------------------------------------------- loading

def default_scenario_path() -> Path:
    return SCENARIO_DIR / "default.toml"


def load_scenario(path: str | Path | None = None) -> Scenario:
    """Read and validate a scenario TOML file (None: the shipped ``scenarios/default.toml``).

    A bare name such as ``evening_contrarian`` is looked up in the shipped ``scenarios/`` folder.
    Raises ScenarioError naming the file, key, value and what was expected.
    """
    p = default_scenario_path() if path is None else Path(path)
    if path is not None and not p.exists() and not p.suffix and (SCENARIO_DIR / f"{p.name}.toml").exists():
        p = SCENARIO_DIR / f"{p.name}.toml"
    if not p.exists():
        shipped = ", ".join(sorted(f.stem for f in SCENARIO_DIR.glob("*.toml")))
        raise ScenarioError(f"scenario file not found: {str(p)!r} (give a path to a .toml file, or one of: {shipped})")
    try:
        raw = tomllib.loads(p.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise ScenarioError(f"{p}: not valid TOML: {exc}") from None
    return parse_scenario(raw, source=str(p))


def parse_scenario(raw: Mapping[str, Any], source: str = "<dict>") -> Scenario:
    """Build a Scenario from a parsed TOML mapping (see docs/SCENARIO.md)."""
    r = _Reader(source)
    r.keys(raw, "", {"name", "description", "timezone", "account", "reach", "hours", "rates", "fatigue",
                     "replies", "x", "hooks", "topics", "experiments"})
    name = r.string(raw, "", "name", required=True)
    timezone = r.string(raw, "", "timezone", default="UTC")
    try:
        ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError):
        r.fail("", "timezone", timezone, "an IANA time zone such as UTC or Europe/Berlin")
    hours_raw = r.table(raw, "", "hours")
    r.keys(hours_raw, "hours", {"reach", "quality"})
    scenario = Scenario(
        name=name,
        description=r.string(raw, "", "description", default=""),
        timezone=timezone,
        account=r.record(raw, "account", Account, ints={"initial_followers", "following_count", "initial_tweet_count"},
                         fractions={"churn_per_day"}),
        reach=r.record(raw, "reach", Reach, positive={"dispersion", "accrual_tau_hours", "settle_hours",
                                                      "impressions_per_follower"}),
        hours=Hours(reach=r.hour_curve(hours_raw, "hours", "reach"), quality=r.hour_curve(hours_raw, "hours", "quality")),
        rates=r.record(raw, "rates", Rates, fractions={"likes", "retweets", "replies", "quotes", "bookmarks",
                                                       "profile_visits", "link_clicks", "follows_per_profile_visit"},
                       positive={"dispersion"}),
        fatigue=r.record(raw, "fatigue", Fatigue, fractions={"onset", "max_penalty"}, positive={"window_days"}),
        replies=r.record(raw, "replies", Replies, ints={"candidates_per_topic"},
                         positive={"velocity_half", "age_tau_minutes", "candidates_per_topic"}),
        x=r.access(raw),
        hooks=r.effects(raw, "hooks", vocab.HOOK_PATTERNS),
        experiments=r.effects(raw, "experiments", EXPERIMENT_IDS),
        source=source,
    )
    vocabulary, topic_effects = r.topics(raw)
    scenario = dataclasses.replace(scenario, vocabulary=vocabulary, topics=topic_effects)
    topics = dict(scenario.topics)
    no_topic = topics.pop("none", NEUTRAL)
    reach = scenario.reach
    if reach.settle_hours <= reach.accrual_tau_hours:
        r.fail("reach", "settle_hours", reach.settle_hours, f"more than accrual_tau_hours ({reach.accrual_tau_hours})")
    return dataclasses.replace(scenario, topics=topics, no_topic=no_topic)


class _Reader:
    """Typed, strict access to the raw TOML mapping; every failure names file, key, value, expectation."""

    def __init__(self, source: str):
        self.source = source

    def fail(self, section: str, key: str, value: Any, expected: str):
        where = f"[{section}] {key}" if section else key
        raise ScenarioError(f"{self.source}: {where} = {value!r}: expected {expected}")

    def keys(self, raw: Mapping[str, Any], section: str, allowed: set[str] | tuple[str, ...]) -> None:
        for key in raw:
            if key not in allowed:
                self.fail(section, key, raw[key], "one of the known keys: " + ", ".join(sorted(allowed))
                          + " (see docs/SCENARIO.md)")

    def table(self, raw: Mapping[str, Any], section: str, key: str) -> Mapping[str, Any]:
        value = raw.get(key, {})
        if not isinstance(value, dict):
            self.fail(section, key, value, "a table")
        return value

    def string(self, raw, section, key, default: str | None = None, required: bool = False) -> str:
        if key not in raw:
            if required:
                self.fail(section, key, None, "a string (this key is required)")
            return default or ""
        value = raw[key]
        if not isinstance(value, str) or (required and not value.strip()):
            self.fail(section, key, value, "a non-empty string" if required else "a string")
        return value

    def number(self, section: str, key: str, value: Any, *, integer=False, positive=False, fraction=False) -> float:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or (integer and not isinstance(value, int)):
            self.fail(section, key, value, "an integer" if integer else "a number")
        if not math.isfinite(value) or value < 0:
            self.fail(section, key, value, "a finite number ≥ 0")
        if positive and value <= 0:
            self.fail(section, key, value, "a number > 0")
        if fraction and value > 1:
            self.fail(section, key, value, "a fraction between 0 and 1")
        return value

    def record(self, raw, section: str, cls, ints=(), positive=(), fractions=()):
        table = self.table(raw, "", section)
        names = [f.name for f in dataclasses.fields(cls)]
        self.keys(table, section, set(names))
        values = {k: self.number(section, k, v, integer=k in ints, positive=k in positive, fraction=k in fractions)
                  for k, v in table.items()}
        return cls(**values)

    def access(self, raw) -> XAccess:
        table = self.table(raw, "", "x")
        self.keys(table, "x", {f.name for f in dataclasses.fields(XAccess)})
        for key, value in table.items():
            if not isinstance(value, bool):
                self.fail("x", key, value, "true or false")
        return XAccess(**table)

    def hour_curve(self, raw, section: str, key: str) -> tuple[float, ...]:
        value = raw.get(key, [1.0] * 24)
        if not isinstance(value, list) or len(value) != 24:
            self.fail(section, key, value, "a list of 24 multipliers, one per local hour 0..23")
        curve = tuple(float(self.number(section, f"{key}[{i}]", v)) for i, v in enumerate(value))
        if max(curve) <= 0:
            self.fail(section, key, value, "at least one multiplier > 0")
        return curve

    def effects(self, raw, section: str, allowed: tuple[str, ...] | None,
                extra: frozenset[str] = frozenset()) -> dict[str, Effect]:
        """Tables of multipliers under ``section`` (names from ``allowed``; None: any name). Keys in ``extra``
        are allowed in a table and left to the caller (a topic's ``keywords`` and ``hashtag``)."""
        table = self.table(raw, "", section)
        if allowed is not None:
            self.keys(table, section, allowed)
        out = {}
        for name, spec in table.items():
            where = f"{section}.{name}"
            if not isinstance(spec, dict):
                self.fail(section, name, spec, "a table of multipliers, e.g. { follow_rate = 1.2 }")
            self.keys(spec, where, {f.name for f in dataclasses.fields(Effect)} | extra)
            out[name] = Effect(**{k: self.number(where, k, v) for k, v in spec.items() if k not in extra})
        return out

    def topics(self, raw) -> tuple[vocab.Vocabulary, dict[str, Effect]]:
        """The audience's vocabulary and the topic effects (``none`` included) of ``[topics]``.

        With ``keywords`` on its topics the scenario is a niche of its own: every topic but ``none`` needs
        them, names are lower-case identifiers, and the vocabulary lists the topics in file order.
        Without any, the topics are the built-in niche's (``vocab.DEFAULT``)."""
        table = self.table(raw, "", "topics")
        own = {name: spec for name, spec in table.items()
               if name != "none" and isinstance(spec, dict) and ("keywords" in spec or "hashtag" in spec)}
        if not own:
            return vocab.DEFAULT, self.effects(raw, "topics", (*vocab.DEFAULT.topics, "none"))
        keywords: dict[str, tuple[str, ...]] = {}
        hashtags: dict[str, str] = {}
        for name, spec in table.items():
            if name == "none":
                if isinstance(spec, dict) and ("keywords" in spec or "hashtag" in spec):
                    self.fail("topics.none", "keywords", spec.get("keywords", spec.get("hashtag")),
                              "no keywords or hashtag on 'none' (it is the posts where no topic is detected)")
                continue
            if not _TOPIC_NAME.fullmatch(name):
                self.fail("topics", name, spec, "a topic name of lower-case letters, digits and '_' "
                                                "(e.g. knife_skills)")
            if not isinstance(spec, dict) or "keywords" not in spec:
                self.fail(f"topics.{name}", "keywords", None,
                          "a list of lower-case keywords: once one topic has keywords, every topic needs them "
                          f"(topics with keywords: {', '.join(own)})")
            words = spec["keywords"]
            if (not isinstance(words, list) or not words
                    or not all(isinstance(w, str) and w.strip() and w == w.strip().lower() for w in words)):
                self.fail(f"topics.{name}", "keywords", words,
                          'a non-empty list of lower-case keywords, e.g. ["bread", "sourdough"] '
                          "(matched where a word starts with them)")
            keywords[name] = tuple(words)
            tag = spec.get("hashtag", "#" + "".join(part.capitalize() for part in name.split("_")))
            if not isinstance(tag, str) or not _HASHTAG.fullmatch(tag):
                self.fail(f"topics.{name}", "hashtag", tag, 'one hashtag such as "#Baking"')
            hashtags[name] = tag
        effects = self.effects(raw, "topics", None, extra=frozenset({"keywords", "hashtag"}))
        return vocab.Vocabulary(topics=tuple(keywords), topic_keywords=keywords, topic_hashtags=hashtags), effects


_TOPIC_NAME = re.compile(r"[a-z][a-z0-9_]*")
_HASHTAG = re.compile(r"#\w+")
