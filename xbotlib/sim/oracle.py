"""The oracle: reads the sandbox's ground truth. ONLY benchmarks and the demo summary may use it.

Learning code must never import this module: it would be reading the answers. The oracle computes
expectations with the same ``expected_outcome`` the audience draws from, with no noise, no fatigue
(a novel post) and the scenario's initial follower base unless told otherwise.

The "typical mix" used by ``true_lift`` and ``best_choice``: every hook pattern × every topic of the
scenario's vocabulary (``Scenario.vocabulary``: its audience's own topics) ×
every hour of ``vocab.DEFAULT_POSTING_HOURS``, equally weighted, original posts (not replies) at
the initial follower count. Rates are ratios of expectations over the mix (e.g. fpki = 1000 ×
Σ E[follows] / Σ E[impressions]), which is what a large experiment's pooled estimate converges to.
Per experiment, treatment and control differ only in the marker:

- hashtag_1, question_cta: the marker on (treatment) or off (control) over the whole mix;
- late_evening_slot: hours ``vocab.LATE_EVENING_HOURS`` (treatment) vs the other default posting
  hours (control), hooks and topics mixed as above;
- contrarian_reply: replies to a typical search candidate (8,000 followers, median velocity, 60
  minutes old) with the contrarian hook (treatment) vs the other hooks equally weighted (control).

A drifting scenario's truth depends on when: every expectation and choice takes ``at``, a datetime
(UTC-aware) or a number of days since the world's start (``Oracle(start=...)``, the campaign's clock
start, ``scenario.WORLD_START`` by default); ``at=None`` is day 0. A stationary scenario ignores it.
``changes`` lists the steps and the best (hook, hour) just before and from each one on.
"""
from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Iterable, Mapping
from zoneinfo import ZoneInfo

import numpy as np

from xbotlib.core import vocab

from xbotlib.sim.audience import (Expected, ReplyTarget, TextSignals, WorldTime, expected_outcome, reply_spillover,
                                  world_time)
from xbotlib.sim.scenario import EXPERIMENT_IDS, WORLD_START, Scenario, load_scenario

METRICS: tuple[str, ...] = ("fpki", "follows", "impressions", "er", "reply_rate", "retweet_rate")
TYPICAL_TARGET_FOLLOWERS = 8000
TYPICAL_TARGET_AGE_MIN = 60.0
BEFORE_STEP_DAYS = 1e-6  # "just before a step": its day minus this (a millionth of a day, 0.09 s)
MOVE_WINDOW_DAYS = 7  # days_to_move: the new best hook must be the most-posted hook over this many days


def slot_time(now: datetime, hour: int, tz: str) -> datetime:
    """The next time after ``now`` at which the clock in ``tz`` shows ``hour``:00 (UTC-aware): the time of a
    slot the plan books at ``now`` (as ``jobs.plan.next_occurrence``, without its care for the hour a
    daylight-saving change skips or repeats, which moves a post's day by nothing)."""
    local = now.astimezone(ZoneInfo(tz))
    slot = local.replace(hour=int(hour), minute=0, second=0, microsecond=0)
    if slot <= local:
        slot = (slot.replace(tzinfo=None) + timedelta(days=1)).replace(tzinfo=ZoneInfo(tz))
    return slot.astimezone(timezone.utc)


@dataclass(frozen=True)
class Change:
    """A step of a drifting scenario and what it does to the best choice."""
    day: float                 # days since the world's start
    before: tuple[str, int]    # the best (hook, hour) just before the step
    after: tuple[str, int]     # the best (hook, hour) from the step on

    @property
    def moves_best(self) -> bool:
        return self.before != self.after

    @property
    def moves_hook(self) -> bool:
        return self.before[0] != self.after[0]


class Oracle:
    """Ground-truth expectations of a scenario (see the module docstring for the typical mix).

    ``start``: when the world started (day 0 of a drifting scenario), to read ``at`` given as a datetime and
    a weekly cycle's weekday; the campaign's clock start (``scenario.WORLD_START``) unless told otherwise.
    """

    def __init__(self, scenario: Scenario | str | Path | None = None, start: datetime | None = None):
        self.scenario = scenario if isinstance(scenario, Scenario) else load_scenario(scenario)
        self.start = (start or WORLD_START).astimezone(timezone.utc)

    def when(self, at: datetime | float | None) -> WorldTime | None:
        """``at`` (a datetime, days since the world's start, or None: day 0) as the audience reads it; None
        for a stationary scenario, where time does not matter."""
        if self.scenario.stationary:
            return None
        if at is None:
            at = 0.0
        if isinstance(at, datetime):
            if at.tzinfo is None:
                raise ValueError(f"at={at!r} has no time zone (give a UTC-aware datetime, or a day number)")
            return world_time(self.scenario, self.start, at)
        return world_time(self.scenario, self.start, self.start + timedelta(days=float(at)))

    @property
    def topics(self) -> tuple[str, ...]:
        """The topics this scenario's audience knows (its vocabulary's)."""
        return tuple(self.scenario.vocabulary.topics)

    # -- single posts

    def typical_spillover(self) -> float:
        """Impressions a reply gets from a typical search candidate's audience."""
        now = datetime(2026, 1, 1, tzinfo=timezone.utc)
        velocity = 0.02 * TYPICAL_TARGET_FOLLOWERS ** 0.75  # the median of reply_candidates' velocity
        target = ReplyTarget("0", TYPICAL_TARGET_FOLLOWERS, velocity, now - timedelta(minutes=TYPICAL_TARGET_AGE_MIN))
        return reply_spillover(self.scenario, target, now)

    def expected(self, hook: str, hour: int, topic: str | None = None,
                 experiment_arms: Mapping[str, str] | None = None, followers: float | None = None,
                 reply: bool = False, at: datetime | float | None = None) -> Expected:
        """Expected settled counts of one novel post (at ``at``: see the module docstring).

        ``experiment_arms`` maps experiment id -> 'treatment' | 'control'. hashtag_1 and question_cta
        switch their text marker; contrarian_reply makes the post a reply to a typical target (its
        treatment needs hook 'contrarian', its control any other hook); late_evening_slot must agree
        with ``hour``, because the audience only sees the hour.
        """
        if hook not in vocab.HOOK_PATTERNS:
            raise ValueError(f"unknown hook {hook!r} (expected one of {', '.join(vocab.HOOK_PATTERNS)})")
        if not 0 <= int(hour) <= 23:
            raise ValueError(f"hour must be 0..23 (local to {self.scenario.timezone}), got {hour!r}")
        if topic is not None and topic not in self.topics:
            raise ValueError(f"unknown topic {topic!r} (expected None or one of the topics of scenario "
                             f"{self.scenario.name!r}: {', '.join(self.topics)})")
        arms = dict(experiment_arms or {})
        for exp_id, arm in arms.items():
            if exp_id not in EXPERIMENT_IDS:
                raise ValueError(f"unknown experiment {exp_id!r} (expected one of {', '.join(EXPERIMENT_IDS)})")
            if arm not in ("treatment", "control"):
                raise ValueError(f"experiment {exp_id}: arm must be 'treatment' or 'control', got {arm!r}")
        late = int(hour) in vocab.LATE_EVENING_HOURS
        if "late_evening_slot" in arms and (arms["late_evening_slot"] == "treatment") != late:
            raise ValueError(f"late_evening_slot={arms['late_evening_slot']} contradicts hour {hour} "
                             f"(treatment hours are {vocab.LATE_EVENING_HOURS})")
        if "contrarian_reply" in arms:
            reply = True
            if (arms["contrarian_reply"] == "treatment") != (hook == "contrarian"):
                raise ValueError(f"contrarian_reply={arms['contrarian_reply']} needs "
                                 f"{'hook contrarian' if arms['contrarian_reply'] == 'treatment' else 'a non-contrarian hook'}"
                                 f", got hook {hook!r}")
        signals = TextSignals(hook=hook, topic=topic, hashtags=int(arms.get("hashtag_1") == "treatment"),
                              question_cta=arms.get("question_cta") == "treatment",
                              contrarian=hook == "contrarian", has_link=False)
        base = self.scenario.account.initial_followers if followers is None else followers
        return expected_outcome(self.scenario, signals, hour=int(hour), followers=base,
                                spillover=self.typical_spillover() if reply else None, when=self.when(at))

    def expected_follows(self, hook: str, hour: int, topic: str | None = None,
                         experiment_arms: Mapping[str, str] | None = None, followers: float | None = None,
                         at: datetime | float | None = None) -> float:
        return self.expected(hook, hour, topic, experiment_arms, followers, at=at).follows

    def expected_fpki(self, hook: str, hour: int, topic: str | None = None,
                      experiment_arms: Mapping[str, str] | None = None, followers: float | None = None,
                      at: datetime | float | None = None) -> float:
        return self.expected(hook, hour, topic, experiment_arms, followers, at=at).fpki

    # -- choices and lifts

    def best_choice(self, hours: Iterable[int] = vocab.DEFAULT_POSTING_HOURS,
                    hooks: Iterable[str] = vocab.HOOK_PATTERNS, metric: str = "follows",
                    at: datetime | float | None = None) -> tuple[str, int]:
        """The (hook, hour) with the highest expected ``metric`` ('follows' or 'fpki'), topics averaged, at
        ``at`` (see the module docstring; ties: the earlier hook, then the earlier hour)."""
        if metric not in ("follows", "fpki"):
            raise ValueError(f"best_choice metric must be 'follows' or 'fpki', got {metric!r}")
        hours, hooks = list(hours), list(hooks)
        scores = {(hook, hour): self._pooled([self.expected(hook, hour, t, at=at) for t in self.topics], metric)
                  for hook in hooks for hour in hours}
        return max(scores, key=lambda k: (scores[k], -hooks.index(k[0]), -k[1]))

    def step_days(self) -> tuple[float, ...]:
        """The days (since the world's start) at which the scenario steps, in order."""
        return tuple(s.day for s in self.scenario.drift.steps)

    def changes(self, hours: Iterable[int] = vocab.DEFAULT_POSTING_HOURS,
                hooks: Iterable[str] = vocab.HOOK_PATTERNS, metric: str = "follows") -> list[Change]:
        """Each step with the best (hook, hour) just before it and from it on (``best_choice`` at both)."""
        hours, hooks = list(hours), list(hooks)
        return [Change(day, self.best_choice(hours, hooks, metric, at=day - BEFORE_STEP_DAYS),
                       self.best_choice(hours, hooks, metric, at=day)) for day in sorted(set(self.step_days()))]

    def best_topic(self, hours: Iterable[int] = vocab.DEFAULT_POSTING_HOURS,
                   hooks: Iterable[str] = vocab.HOOK_PATTERNS, metric: str = "follows",
                   at: datetime | float | None = None) -> str:
        """The topic of the scenario's vocabulary with the highest expected ``metric``, hooks and hours averaged."""
        if metric not in ("follows", "fpki"):
            raise ValueError(f"best_topic metric must be 'follows' or 'fpki', got {metric!r}")
        hours, hooks = list(hours), list(hooks)
        scores = {t: self._pooled([self.expected(k, h, t, at=at) for k in hooks for h in hours], metric)
                  for t in self.topics}
        return max(scores, key=lambda t: (scores[t], -self.topics.index(t)))

    def true_lift(self, experiment_id: str, metric: str = "fpki") -> float:
        """Expected treatment − control difference of ``metric`` under the typical mix (module docstring)."""
        treat, control = self._arms(experiment_id)
        return self._pooled(treat, metric) - self._pooled(control, metric)

    def relative_lift(self, experiment_id: str, metric: str = "fpki") -> float:
        """(treatment − control) / control under the typical mix."""
        treat, control = self._arms(experiment_id)
        c = self._pooled(control, metric)
        return (self._pooled(treat, metric) - c) / c if c else math.nan

    def _arms(self, experiment_id: str) -> tuple[list[Expected], list[Expected]]:
        hooks, topics, hours = vocab.HOOK_PATTERNS, self.topics, vocab.DEFAULT_POSTING_HOURS
        if experiment_id in ("hashtag_1", "question_cta"):
            def mix(arm):
                return [self.expected(k, h, t, {experiment_id: arm}) for k in hooks for t in topics for h in hours]
            return mix("treatment"), mix("control")
        if experiment_id == "late_evening_slot":
            late = vocab.LATE_EVENING_HOURS
            treat = [self.expected(k, h, t) for k in hooks for t in topics for h in late]
            control = [self.expected(k, h, t) for k in hooks for t in topics for h in hours if h not in late]
            return treat, control
        if experiment_id == "contrarian_reply":
            arm = "contrarian_reply"
            treat = [self.expected("contrarian", h, t, {arm: "treatment"}) for t in topics for h in hours]
            control = [self.expected(k, h, t, {arm: "control"}) for k in hooks if k != "contrarian"
                       for t in topics for h in hours]
            return treat, control
        raise ValueError(f"unknown experiment {experiment_id!r} (expected one of {', '.join(EXPERIMENT_IDS)})")

    @staticmethod
    def _pooled(items: list[Expected], metric: str) -> float:
        """A metric over a mix: means for counts, ratios of sums for per-impression rates."""
        n = len(items)
        imps = sum(e.impressions for e in items)
        if metric == "follows":
            return sum(e.follows for e in items) / n
        if metric == "impressions":
            return imps / n
        if metric == "fpki":
            return 1000.0 * sum(e.follows for e in items) / max(1.0, imps)
        if metric == "er":
            return sum(e.likes + e.retweets + e.replies + e.quotes + e.bookmarks for e in items) / max(1.0, imps)
        if metric == "reply_rate":
            return sum(e.replies for e in items) / max(1.0, imps)
        if metric == "retweet_rate":
            return sum(e.retweets for e in items) / max(1.0, imps)
        raise ValueError(f"unknown metric {metric!r} (expected one of {', '.join(METRICS)})")


def days_to_move(posts: Iterable[tuple[float, str]], step_day: float, new_hook: str, days: int,
                 window: int = MOVE_WINDOW_DAYS) -> int | None:
    """How many days after a step a policy moved to the step's new best hook (``Change.after[0]``).

    ``posts``: (day since the world's start, hook) of each post. The move is the first whole day *d* from
    the step on such that ``new_hook`` is the hook posted most over days [d, d + window) — strictly more
    than any other (the rotation rule never lets one hook have every post); the answer is d minus the
    step's day (rounded up), or None if that never happens before day ``days``. A policy that already
    favoured the new hook before the step scores 0.
    """
    posts = list(posts)
    first = math.ceil(step_day)
    for d in range(first, days):
        counts = Counter(hook for day, hook in posts if d <= day < d + window)
        top = counts.most_common(2)
        if top and top[0][0] == new_hook and (len(top) == 1 or top[1][1] < top[0][1]):
            return d - first
    return None


def true_lift_for_posts(oracle: Oracle, frame, experiment_id: str) -> float:
    """The ground truth's lift in expected per-post fpki for *these* posts: the mean over the
    experiment's posts of E[fpki | treatment] − E[fpki | control], each at its own hook, topic, hour
    and follower base. This is what the estimators estimate; the scenario's lift under a uniform mix
    (``Oracle.true_lift``) differs whenever the learner's mix does — most for late_evening_slot,
    whose control hours are the learner's (good) hours. ``frame`` is a lift frame
    (``xbotlib.store.experiments.lift_frame``).
    """
    if frame.empty:
        return float("nan")
    hooks = [h if h in vocab.HOOK_PATTERNS else "plain" for h in frame["hook"]]
    topics = [t if t in oracle.topics else None for t in frame["topic"]]
    hours = [int(h) % 24 for h in np.floor(frame["local_hour"].to_numpy(dtype=float))]
    followers = frame["followers"].to_numpy(dtype=float)
    control_hours = [h for h, t in zip(hours, frame["treatment"]) if t == 0 and h not in vocab.LATE_EVENING_HOURS]
    diffs = []
    for hook, topic, hour, f in zip(hooks, topics, hours, followers):
        if experiment_id == "late_evening_slot":
            late = np.mean([oracle.expected_fpki(hook, h, topic, followers=f) for h in vocab.LATE_EVENING_HOURS])
            day = np.mean([oracle.expected_fpki(hook, h, topic, followers=f) for h in (control_hours or [hour])])
            diffs.append(late - day)
        elif experiment_id == "contrarian_reply":  # control replies take the plain angle (jobs.plan)
            t = oracle.expected("contrarian", hour, topic, {experiment_id: "treatment"}, followers=f).fpki
            c = oracle.expected("plain", hour, topic, {experiment_id: "control"}, followers=f).fpki
            diffs.append(t - c)
        else:
            t = oracle.expected(hook, hour, topic, {experiment_id: "treatment"}, followers=f).fpki
            c = oracle.expected(hook, hour, topic, {experiment_id: "control"}, followers=f).fpki
            diffs.append(t - c)
    return float(np.mean(diffs))
