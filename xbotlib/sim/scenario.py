"""Scenarios: the hidden ground truth of the sandbox audience, read from a TOML file.

A scenario says how large the account is, how reach varies by hour, what a plain post earns per
impression, and how each hook pattern, topic and experiment marker multiplies that. Every key is
described in docs/SCENARIO.md. Unknown keys are errors, so a typo cannot silently fall back to a
default. ``load_scenario(None)`` loads ``scenarios/default.toml`` shipped in the repository.

A scenario reads text with its own ``vocabulary``: when its ``[topics.<name>]`` tables carry
``keywords`` (and optionally ``hashtag``), the audience is one of that niche and detects those topics
(a real audience does not read the account's profile); without keywords it is the built-in niche's
(``vocab.DEFAULT``). The audience reads every hook kind, whatever the account allows itself.

A scenario may change over time (``[drift]``: steps at a given day, slow trends, a weekly cycle) and its
effects may interact (``[interactions]``: hook × hour, hook × topic). Days count from the world's start
(``AudienceModel.epoch``; a campaign starts its world at its clock's start, ``WORLD_START`` by default);
``audience.WorldTime`` carries a post's day and local weekday to the functions that need them.

Omitted settings take default.toml's values (the dataclass defaults below are exactly those; a test
checks it), so a scenario written as "default.toml but …" needs only what differs. Omitted effect tables
mean no effect (1.0). Every multiplier is at most ``MAX_MULTIPLIER``, and no post may have a follow
probability above 1 (it would be capped silently): ``parse_scenario`` checks the largest one any post
could reach and names the key to lower.

Size: over 400 lines because it is one strict reader for every key of the format; splitting the drift
keys from the rest would give two readers that must fail in the same words.
"""
from __future__ import annotations

import dataclasses
import math
import re
import tomllib
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Mapping
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from xbotlib.config import PROJECT_ROOT
from xbotlib.core import vocab

SCENARIO_DIR = PROJECT_ROOT / "scenarios"
WORLD_START = datetime(2026, 1, 5, tzinfo=timezone.utc)  # jobs.campaign.CAMPAIGN_START (a Monday): day 0
MAX_MULTIPLIER = 10.0  # larger is a typo or a unit error (a percentage for a factor); see docs/SCENARIO.md
WEEKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
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

    def power(self, x: float) -> "Effect":
        """Each multiplier raised to ``x`` (a trend's share of its change: log-linear in time)."""
        return Effect(*(v ** x for v in dataclasses.astuple(self)))


NEUTRAL = Effect()


@dataclass(frozen=True)
class Account:
    initial_followers: int = 2000
    following_count: int = 400
    initial_tweet_count: int = 1500
    organic_follows_per_day: float = 2.0
    churn_per_day: float = 0.0005


@dataclass(frozen=True)
class Reach:
    impressions_per_follower: float = 0.3
    discovery_impressions: float = 250.0
    dispersion: float = 3.0
    accrual_tau_hours: float = 4.0
    settle_hours: float = 72.0


DEFAULT_REACH = (0.35, 0.30, 0.25, 0.25, 0.30, 0.45, 0.75, 1.00, 1.10, 1.15, 1.20, 1.25,
                 1.20, 1.15, 1.10, 1.05, 1.05, 1.05, 1.00, 1.00, 0.97, 0.95, 0.85, 0.65)
DEFAULT_QUALITY = (0.80, 0.80, 0.80, 0.80, 0.80, 0.85, 0.90, 0.95, 1.00, 1.05, 1.08, 1.10,
                   1.08, 1.05, 1.02, 1.00, 1.00, 0.98, 0.96, 0.95, 0.94, 0.92, 0.90, 0.86)


@dataclass(frozen=True)
class Hours:
    reach: tuple[float, ...] = DEFAULT_REACH
    quality: tuple[float, ...] = DEFAULT_QUALITY


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
    onset: float = 0.35
    max_penalty: float = 0.5


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
class Change:
    """Multipliers a step or a trend applies on top of the scenario's own: per hook, per topic (``none``
    included) and on the two hour curves (24 values each, local hours)."""
    hooks: Mapping[str, Effect] = field(default_factory=dict)
    topics: Mapping[str, Effect] = field(default_factory=dict)
    reach: tuple[float, ...] = (1.0,) * 24
    quality: tuple[float, ...] = (1.0,) * 24


@dataclass(frozen=True)
class Step:
    """From ``day`` on (days since the world's start), ``change`` applies."""
    day: float
    change: Change


@dataclass(frozen=True)
class Trend:
    """A slow change: none before ``from_day``, all of ``change`` from ``to_day`` on, and in between the
    share (day − from_day) / (to_day − from_day) of it on the log scale (each multiplier m contributes
    m ** share: a constant log-multiplier per day, log(m) / (to_day − from_day))."""
    from_day: float
    to_day: float
    change: Change

    def share(self, day: float) -> float:
        return min(1.0, max(0.0, (day - self.from_day) / (self.to_day - self.from_day)))


@dataclass(frozen=True)
class Weekly:
    """Multipliers of reach and quality per local weekday (Monday first), as the hour curves per hour."""
    reach: tuple[float, ...] = (1.0,) * 7
    quality: tuple[float, ...] = (1.0,) * 7


@dataclass(frozen=True)
class Drift:
    """How the audience changes with time; all empty: a stationary world."""
    steps: tuple[Step, ...] = ()
    trends: tuple[Trend, ...] = ()
    weekly: Weekly | None = None

    @property
    def stationary(self) -> bool:
        return not (self.steps or self.trends or self.weekly)

    @property
    def needs_weekday(self) -> bool:
        return self.weekly is not None


@dataclass(frozen=True)
class Interaction:
    """An effect that applies only to posts with ``hook`` at one of ``hours`` (hook × hour) or on
    ``topic`` (hook × topic; ``none``: no detected topic)."""
    hook: str
    effect: Effect
    hours: frozenset[int] | None = None
    topic: str | None = None

    def applies(self, hook: str, topic: str | None, hour: int) -> bool:
        return interaction_applies(self.hook, self.hours, self.topic, hook, topic, hour)


def interaction_applies(on_hook: str, on_hours: frozenset[int] | None, on_topic: str | None,
                        hook: str, topic: str | None, hour: int) -> bool:
    """Whether an interaction on ``on_hook`` at ``on_hours`` (hook × hour) or on ``on_topic`` (hook × topic)
    applies to a post with ``hook``, ``topic`` and ``hour``. Shared by the audience and the ideal learner
    (``xbotlib.sim.ideal.Shape``), which knows where an interaction applies but not its size."""
    if hook != on_hook:
        return False
    if on_hours is not None:
        return int(hour) in on_hours
    return (topic or "none") == on_topic


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
    drift: Drift = Drift()
    interactions: tuple[Interaction, ...] = ()     # hook × hour and hook × topic, in file order
    source: str = "<built-in>"
    vocabulary: vocab.Vocabulary = vocab.DEFAULT  # how this audience reads text (topics and their keywords)
    # the file of the scenario this one was derived from (``derived_from``, resolved): the world without its changes,
    # which `xbot bench growth` compares it with when both ran; None: not derived from another
    derived_from: str | None = None

    def hook_effect(self, hook: str) -> Effect:
        return self.hooks.get(hook, NEUTRAL)

    def topic_effect(self, topic: str | None) -> Effect:
        return self.no_topic if topic is None else self.topics.get(topic, NEUTRAL)

    def experiment_effect(self, experiment_id: str) -> Effect:
        return self.experiments.get(experiment_id, NEUTRAL)

    @property
    def stationary(self) -> bool:
        """True when the audience does not change with time (interactions do not depend on time)."""
        return self.drift.stationary


# ----------------------------------------------------------------------------- loading

def default_scenario_path() -> Path:
    return SCENARIO_DIR / "default.toml"


def shipped_names() -> str:
    """The shipped scenarios' names, for the errors that ask for one."""
    return ", ".join(sorted(f.stem for f in SCENARIO_DIR.glob("*.toml")))


def load_scenario(path: str | Path | None = None) -> Scenario:
    """Read and validate a scenario TOML file (None: the shipped ``scenarios/default.toml``).

    A bare name such as ``evening_contrarian`` is looked up in the shipped ``scenarios/`` folder.
    Raises ScenarioError naming the file, key, value and what was expected.
    """
    p = default_scenario_path() if path is None else Path(path)
    if path is not None and not p.exists() and not p.suffix and (SCENARIO_DIR / f"{p.name}.toml").exists():
        p = SCENARIO_DIR / f"{p.name}.toml"
    if not p.is_file():  # a folder too: reading it would raise IsADirectoryError
        raise ScenarioError(f"scenario file not found: {str(p)!r} (give a path to a .toml file, or one of: "
                            f"{shipped_names()})")
    try:
        raw = tomllib.loads(p.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise ScenarioError(f"{p}: not valid TOML: {exc}") from None
    except UnicodeDecodeError as exc:  # a binary file: say which file, not only the codec's complaint
        raise ScenarioError(f"{p}: not a UTF-8 text file ({exc.reason} at byte {exc.start}); pass a scenario "
                            "TOML (see docs/SCENARIO.md)") from None
    return parse_scenario(raw, source=str(p))


def parse_scenario(raw: Mapping[str, Any], source: str = "<dict>") -> Scenario:
    """Build a Scenario from a parsed TOML mapping (see docs/SCENARIO.md)."""
    r = _Reader(source)
    r.keys(raw, "", {"name", "description", "derived_from", "timezone", "account", "reach", "hours", "rates", "fatigue",
                     "replies", "x", "hooks", "topics", "experiments", "drift", "interactions"})
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
        hours=Hours(reach=r.curve(hours_raw, "hours", "reach", Hours().reach),
                    quality=r.curve(hours_raw, "hours", "quality", Hours().quality)),
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
        derived_from=r.derived_from(raw),
    )
    vocabulary, topic_effects = r.topics(raw)
    scenario = dataclasses.replace(scenario, vocabulary=vocabulary, topics=topic_effects)
    topics = dict(scenario.topics)
    no_topic = topics.pop("none", NEUTRAL)
    reach = scenario.reach
    if reach.settle_hours <= reach.accrual_tau_hours:
        r.fail("reach", "settle_hours", reach.settle_hours, f"more than accrual_tau_hours ({reach.accrual_tau_hours})")
    topic_names = (*topics, "none")
    scenario = dataclasses.replace(scenario, topics=topics, no_topic=no_topic, drift=r.drift(raw, topic_names),
                                   interactions=r.interactions(raw, topic_names))
    r.follow_probability(scenario)
    return scenario


def follow_rate_factors(scenario: Scenario, hook: str, topic: str) -> list[tuple[str, float]]:
    """(key, value) of every follow_rate multiplier that can apply at once to a post with ``hook`` and
    ``topic`` ('none': no topic), at its worst: experiments, interactions, steps and trends only where
    they raise it (> 1), the hook × hour interactions of the worst hour. Their product times
    ``rates.follows_per_profile_visit`` bounds the post's follow probability."""
    out = [(f"hooks.{hook}", scenario.hook_effect(hook).follow_rate),
           (f"topics.{topic}", scenario.topic_effect(None if topic == "none" else topic).follow_rate)]
    out += [(f"experiments.{k}", e.follow_rate) for k, e in scenario.experiments.items() if e.follow_rate > 1]
    by_hour: dict[int, list[tuple[str, float]]] = {}
    for i, inter in enumerate(scenario.interactions):
        if inter.hook != hook or inter.effect.follow_rate <= 1:
            continue
        kind = "hook_hour" if inter.hours is not None else "hook_topic"
        key = f"interactions.{kind}[{i}]"
        if inter.hours is None and inter.topic == topic:
            out.append((key, inter.effect.follow_rate))
        for h in inter.hours or ():
            by_hour.setdefault(h, []).append((key, inter.effect.follow_rate))
    if by_hour:
        out += max(by_hour.values(), key=lambda fs: math.prod(v for _, v in fs))
    for kind, changes in (("steps", [s.change for s in scenario.drift.steps]),
                          ("trends", [t.change for t in scenario.drift.trends])):
        for i, change in enumerate(changes):
            for key, effect in ((f"hooks.{hook}", change.hooks.get(hook)), (f"topics.{topic}", change.topics.get(topic))):
                if effect is not None and effect.follow_rate > 1:
                    out.append((f"drift.{kind}[{i}].{key}", effect.follow_rate))
    return out


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

    def derived_from(self, raw) -> str | None:
        """``derived_from``: a shipped scenario's name, or a path relative to this file; the file it names,
        resolved (it must exist; it is not loaded here, so two files naming each other do not loop)."""
        if "derived_from" not in raw:
            return None
        given = self.string(raw, "", "derived_from", required=True)
        here = Path(self.source).parent if self.source not in ("<dict>", "<built-in>") else Path.cwd()
        for candidate in (here / given, SCENARIO_DIR / given, SCENARIO_DIR / f"{given}.toml"):
            if candidate.is_file():
                return str(candidate.resolve())
        self.fail("", "derived_from", given, f"a shipped scenario ({shipped_names()}) or a .toml file next to this one")

    def number(self, section: str, key: str, value: Any, *, integer=False, positive=False, fraction=False,
               multiplier=False) -> float:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or (integer and not isinstance(value, int)):
            self.fail(section, key, value, "an integer" if integer else "a number")
        if not math.isfinite(value) or value < 0:
            self.fail(section, key, value, "a finite number ≥ 0")
        if positive and value <= 0:
            self.fail(section, key, value, "a number > 0")
        if fraction and value > 1:
            self.fail(section, key, value, "a fraction between 0 and 1")
        if multiplier and value > MAX_MULTIPLIER:
            self.fail(section, key, value, f"a multiplier between 0 and {MAX_MULTIPLIER:g} (1.0 = no effect; "
                                           "docs/SCENARIO.md, Bounds)")
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

    def curve(self, raw, section: str, key: str, default: tuple[float, ...]) -> tuple[float, ...]:
        """A list of multipliers, one per local hour (24) or weekday (7, Monday first)."""
        if key not in raw:
            return default
        value, n = raw[key], len(default)
        if not isinstance(value, list) or len(value) != n:
            self.fail(section, key, value, "a list of 24 multipliers, one per local hour 0..23" if n == 24 else
                      "a list of 7 multipliers, one per local weekday, Monday first")
        curve = tuple(float(self.number(section, f"{key}[{i}]", v, multiplier=True)) for i, v in enumerate(value))
        if max(curve) <= 0:
            self.fail(section, key, value, "at least one multiplier > 0")
        return curve

    def array(self, raw, section: str, key: str) -> list[Mapping[str, Any]]:
        """An array of tables (``[[section.key]]``), empty when absent."""
        value = raw.get(key, [])
        if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
            self.fail(section, key, value, f"an array of tables, written [[{section}.{key}]]")
        return value

    def effect(self, spec, where: str, extra: frozenset[str] = frozenset()) -> Effect:
        self.keys(spec, where, {f.name for f in dataclasses.fields(Effect)} | extra)
        return Effect(**{k: self.number(where, k, v, multiplier=True) for k, v in spec.items() if k not in extra})

    def effects(self, raw, section: str, allowed: tuple[str, ...] | None,
                extra: frozenset[str] = frozenset(), prefix: str = "") -> dict[str, Effect]:
        """Tables of multipliers under ``section`` (names from ``allowed``; None: any name). Keys in ``extra``
        are allowed in a table and left to the caller (a topic's ``keywords`` and ``hashtag``). ``prefix``
        places the section in messages (``drift.steps[0].``)."""
        table = self.table(raw, prefix.rstrip("."), section)
        section = prefix + section
        if allowed is not None:
            self.keys(table, section, allowed)
        out = {}
        for name, spec in table.items():
            if not isinstance(spec, dict):
                self.fail(section, name, spec, "a table of multipliers, e.g. { follow_rate = 1.2 }")
            out[name] = self.effect(spec, f"{section}.{name}", extra)
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


    # -- drift and interactions

    def drift(self, raw, topics: tuple[str, ...]) -> Drift:
        table = self.table(raw, "", "drift")
        self.keys(table, "drift", {"steps", "trends", "weekly"})
        steps = []
        for i, spec in enumerate(self.array(table, "drift", "steps")):
            where = f"drift.steps[{i}]"
            if "day" not in spec:
                self.fail(where, "day", None, "the day the step happens, in days since the world's start (required)")
            steps.append(Step(float(self.number(where, "day", spec["day"])), self.change(spec, where, topics, {"day"})))
        trends = []
        for i, spec in enumerate(self.array(table, "drift", "trends")):
            where = f"drift.trends[{i}]"
            start = float(self.number(where, "from_day", spec.get("from_day", 0.0)))
            if "to_day" not in spec:
                self.fail(where, "to_day", None, "the day the trend is complete, in days since the world's start "
                                                 "(required)")
            end = float(self.number(where, "to_day", spec["to_day"]))
            if end <= start:
                self.fail(where, "to_day", spec["to_day"], f"a day after from_day ({start:g})")
            trends.append(Trend(start, end, self.change(spec, where, topics, {"from_day", "to_day"})))
        weekly = None
        if "weekly" in table:
            spec = self.table(table, "drift", "weekly")
            self.keys(spec, "drift.weekly", {"reach", "quality"})
            if not spec:
                self.fail("drift", "weekly", spec, "reach and/or quality: 7 multipliers each, Monday first")
            weekly = Weekly(self.curve(spec, "drift.weekly", "reach", Weekly().reach),
                            self.curve(spec, "drift.weekly", "quality", Weekly().quality))
        return Drift(tuple(sorted(steps, key=lambda s: s.day)), tuple(trends), weekly)

    def change(self, spec, where: str, topics: tuple[str, ...], extra: set[str]) -> Change:
        """The multipliers of one step or trend: ``hooks``, ``topics`` and ``hours`` as in a scenario."""
        self.keys(spec, where, {"hooks", "topics", "hours"} | extra)
        if not {"hooks", "topics", "hours"} & set(spec):
            self.fail(where, "hooks", None, "at least one of hooks, topics, hours (what changes)")
        hours = self.table(spec, where, "hours")
        self.keys(hours, f"{where}.hours", {"reach", "quality"})
        return Change(hooks=self.effects(spec, "hooks", vocab.HOOK_PATTERNS, prefix=f"{where}."),
                      topics=self.effects(spec, "topics", topics, prefix=f"{where}."),
                      reach=self.curve(hours, f"{where}.hours", "reach", (1.0,) * 24),
                      quality=self.curve(hours, f"{where}.hours", "quality", (1.0,) * 24))

    def interactions(self, raw, topics: tuple[str, ...]) -> tuple[Interaction, ...]:
        table = self.table(raw, "", "interactions")
        self.keys(table, "interactions", {"hook_hour", "hook_topic"})
        out = []
        for kind, selector in (("hook_hour", "hours"), ("hook_topic", "topic")):
            for i, spec in enumerate(self.array(table, "interactions", kind)):
                where = f"interactions.{kind}[{i}]"
                hook = spec.get("hook")
                if hook not in vocab.HOOK_PATTERNS:
                    self.fail(where, "hook", hook, "one of " + ", ".join(vocab.HOOK_PATTERNS) + " (required)")
                value = spec.get(selector)
                if selector == "hours":
                    if (not isinstance(value, list) or not value
                            or not all(isinstance(h, int) and not isinstance(h, bool) and 0 <= h <= 23 for h in value)
                            or len(set(value)) != len(value)):
                        self.fail(where, "hours", value, "a non-empty list of distinct local hours 0..23 (required)")
                    out.append(Interaction(hook, self.effect(spec, where, frozenset({"hook", "hours"})),
                                           hours=frozenset(value)))
                else:
                    if value not in topics:
                        self.fail(where, "topic", value, "one of the scenario's topics: " + ", ".join(topics)
                                  + " (required)")
                    out.append(Interaction(hook, self.effect(spec, where, frozenset({"hook", "topic"})), topic=value))
        return tuple(out)

    def follow_probability(self, scenario: Scenario) -> None:
        """Refuse a scenario in which some post's follow probability could exceed 1 (it would be capped at 1
        without a word): name the largest follow_rate multiplier of the worst post, and its fix."""
        base = scenario.rates.follows_per_profile_visit
        worst, factors = 0.0, []
        for hook in vocab.HOOK_PATTERNS:
            for topic in (*scenario.topics, "none"):
                fs = follow_rate_factors(scenario, hook, topic)
                p = base * math.prod(v for _, v in fs)
                if p > worst:
                    worst, factors = p, fs
        if worst <= 1.0:
            return
        key, value = max(factors, key=lambda kv: kv[1])
        listed = " × ".join(f"{k} {v:g}" for k, v in factors if v != 1)
        self.fail(key, "follow_rate", value,
                  f"at most {value / worst:.3g}: a post could have a follow probability of {worst:.3g} "
                  f"(rates.follows_per_profile_visit {base:g} × {listed}), above 1, which the audience would cap "
                  "at 1 silently; lower this multiplier (or rates.follows_per_profile_visit)")


_TOPIC_NAME = re.compile(r"[a-z][a-z0-9_]*")
_HASHTAG = re.compile(r"#\w+")
