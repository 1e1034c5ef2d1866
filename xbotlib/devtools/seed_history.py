"""A plausible history of an account, written straight into the tables: test and benchmark data only.

Every row this module writes is marked as what it is: decisions have ``generation_source='synthetic'``,
outcomes and follower snapshots ``simulated=true``, posts ``world='sandbox'``, predictors, ledger
rows, gate rejections and job runs carry ``synthetic`` in their metadata. The numbers come from a
seeded generator, not from any audience: they exist so the admin API, its tests and its benchmark
have a realistic *shape* of data (a year of posts, outcomes, snapshots, job runs) to query.

``generate_history(spec)`` is pure (spec in, rows out); ``write_history(conn, history)`` copies the
rows in with COPY (``xbotlib.store.db.copy_rows``); ``seed_history(db, spec)`` does both in one transaction.
"""
from __future__ import annotations

import json
import math
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import numpy as np

from xbotlib.core.vocab import DEFAULT_POSTING_HOURS, HOOK_PATTERNS, TOPICS
from xbotlib.store import db as store_db
from xbotlib.store import models
from xbotlib.store.queue import content_hash

SYNTHETIC = {"synthetic": True, "source": "xbotlib.devtools.seed_history"}

# Seeded audience "taste": relative impressions and follow rate per hook (not measured anywhere).
_HOOK_REACH = {"did_you_know": 1.15, "new_study": 1.1, "question": 1.0, "contrarian": 1.25, "cta": 0.85,
               "plain": 0.8}
_HOOK_FOLLOW_RATE = {"did_you_know": 2.2, "new_study": 2.6, "question": 1.6, "contrarian": 2.0, "cta": 1.4,
                     "plain": 1.0}
_OPENERS = {
    "did_you_know": "Did you know: {t} changes more in a year than most people expect?",
    "new_study": "New study: small daily changes in {t} compound over months.",
    "question": "What is the one {t} idea you would keep if you had to drop the rest?",
    "contrarian": "Unpopular opinion: most {t} advice is about looking busy.",
    "cta": "Save this: three {t} habits that take under ten minutes.",
    "plain": "Notes on {t} from this week.",
}
EXPERIMENTS = (  # (experiment_id, applies_to, enabled, allocation, description)
    ("hashtag_1", "post", True, 0.5, "posts: add one relevant hashtag"),
    ("question_cta", "post", True, 0.3, "posts: end with a question to the reader"),
    ("contrarian_reply", "reply", True, 0.5, "replies: take the contrarian angle"),
    ("late_evening_slot", "timing", False, 0.2, "timing: move the post to a late-evening hour"),
)
GATES = ("duplicate", "length", "toxicity", "rate_cap")
JOB_EVERY_MIN = {"plan": 60, "post": 5, "collect": 15, "learn": 360}
_REWARD_WEIGHTS = {"fpki": 0.5, "retweet_rate": 0.3, "reply_rate": 0.15, "novelty": 0.05, "dup_penalty": 0.1}


@dataclass(frozen=True)
class HistorySpec:
    """What to generate: ``days`` of history for ``account_id`` ending at ``end`` (the clock's now)."""
    account_id: str
    end: datetime
    days: int = 365
    posts_per_day: int = 6
    replies_per_day: int = 2
    start_followers: int = 150
    snapshot_every_h: int = 1
    job_runs: bool = True
    job_run_days: int | None = None  # job runs only for the last N days (None: the whole history)
    circuit_open_today: bool = False
    seed: int = 0
    reward_weights: dict[str, float] = field(default_factory=lambda: dict(_REWARD_WEIGHTS))

    def __post_init__(self) -> None:
        if self.end.tzinfo is None:
            raise ValueError(f"HistorySpec.end must be timezone-aware: {self.end!r} (pass tzinfo=timezone.utc)")
        if not 1 <= self.days <= 3660:
            raise ValueError(f"HistorySpec.days out of range: {self.days} (expected 1..3660)")
        if self.posts_per_day < 1 or self.replies_per_day < 0:
            raise ValueError(f"HistorySpec needs posts_per_day >= 1 and replies_per_day >= 0, "
                             f"got {self.posts_per_day}, {self.replies_per_day}")


@dataclass
class History:
    """Rows per table, in COPY column order. ``tables`` maps table -> (columns, rows)."""
    tables: dict[str, tuple[tuple[str, ...], list[tuple]]]

    def counts(self) -> dict[str, int]:
        return {t: len(rows) for t, (_cols, rows) in self.tables.items()}


def _uuid(rng: np.random.Generator) -> uuid.UUID:
    return uuid.UUID(int=int(rng.integers(0, 2**63)) << 64 | int(rng.integers(0, 2**63)), version=4)


def _metrics(impr: int, likes: int, rts: int, replies: int, quotes: int, bms: int, follows: float,
             novelty: float, weights: dict[str, float]) -> dict[str, float]:
    """The contract definitions of DESIGN.md, applied to generated counts."""
    denom = max(1, impr)
    fpki = 1000.0 * follows / denom
    rt_rate, reply_rate = rts / denom, replies / denom
    reward = (weights["fpki"] * fpki + weights["retweet_rate"] * rt_rate + weights["reply_rate"] * reply_rate
              + weights["novelty"] * novelty)
    return {"er": (likes + rts + replies + quotes + bms) / denom, "fpki": fpki, "retweet_rate": rt_rate,
            "reply_rate": reply_rate, "reward": reward, "weight": min(1.0, 1000.0 / denom)}


def generate_history(spec: HistorySpec) -> History:
    """Generate every row of the history described by ``spec`` (pure, deterministic in ``spec.seed``)."""
    rng = np.random.default_rng(spec.seed)
    acc, end = spec.account_id, spec.end
    start = end - timedelta(days=spec.days)
    today = end.replace(hour=0, minute=0, second=0, microsecond=0)
    w = spec.reward_weights

    cm_cols = ("decision_id", "account_id", "decision_type", "status", "content", "content_hash",
               "generation_source", "topic", "hook_pattern", "novelty", "readability", "sentiment", "features",
               "policy", "bandit_arm", "bandit_propensity", "timing_arm", "timing_propensity", "experiment_id",
               "experiment_arms", "predicted_reward", "predictor_version", "scheduled_at", "target_tweet_id",
               "attempts", "last_error", "created_at", "updated_at")
    pd_cols = ("decision_id", "account_id", "tweet_id", "world", "posted_at", "profile_visits", "link_clicks",
               "bookmarks")
    out_cols = ("decision_id", "account_id", "collected_pass", "simulated", "impressions", "likes", "retweets",
                "replies", "quotes", "bookmarks", "profile_visits", "link_clicks", "follows", "follows_source",
                "er", "fpki", "retweet_rate", "reply_rate", "novelty", "reward_composite", "sample_weight",
                "bandit_applied", "collected_at")
    asg_cols = ("account_id", "experiment_id", "decision_id", "arm", "propensity", "assigned_at")
    cm_rows, pd_rows, out_rows, asg_rows = [], [], [], []
    follow_events: list[tuple[datetime, float]] = []
    arms: dict[tuple[str, str], list[float]] = {}  # (scope, arm) -> [pulls, sum, sq_sum, weight_sum]
    n = 0
    followers = float(spec.start_followers)
    hours = list(DEFAULT_POSTING_HOURS)
    for day in range(spec.days):
        day_start = start.replace(hour=0, minute=0, second=0, microsecond=0) + timedelta(days=day + 1)
        kinds = ["post"] * spec.posts_per_day + ["reply"] * spec.replies_per_day
        for kind in kinds:
            hour = int(rng.choice(hours))
            posted_at = day_start + timedelta(hours=hour, minutes=int(rng.integers(0, 50)),
                                              seconds=int(rng.integers(0, 60)))
            if posted_at >= end - timedelta(minutes=10):
                continue
            n += 1
            hook = str(rng.choice(HOOK_PATTERNS))
            topic = str(rng.choice(TOPICS))
            did = _uuid(rng)
            assignments: dict[str, dict[str, Any]] = {}
            for exp_id, applies_to, enabled, alloc, _d in EXPERIMENTS:
                applies = applies_to == kind or (applies_to == "timing" and kind == "post")
                if enabled and applies:
                    treated = bool(rng.random() < alloc)
                    assignments[exp_id] = {"arm": "treatment" if treated else "control",
                                           "propensity": alloc if treated else 1 - alloc}
            text = _OPENERS[hook].format(t=topic) + f" (synthetic history #{n})"
            if kind == "reply":
                text = "@someone " + text
            novelty = float(rng.uniform(0.25, 0.95))
            prop = 1.0 / len(HOOK_PATTERNS)
            cm_rows.append((
                did, acc, kind, "posted", text, content_hash(text), "synthetic", topic, hook, novelty,
                float(rng.uniform(50, 90)), float(rng.uniform(-0.5, 0.8)),
                json.dumps({**SYNTHETIC, "hook": hook, "topic": topic, "hour": hour}), "synthetic", hook, prop,
                str(hour), 1.0 / len(hours), next(iter(assignments), None), json.dumps(assignments), None, None,
                posted_at, f"syn-{acc}-target-{n}" if kind == "reply" else None, 1, None,
                posted_at - timedelta(hours=1), posted_at))
            pd_rows.append((did, acc, f"syn-{acc}-{n}", "sandbox", posted_at, 0, 0, 0))
            for exp_id, a in assignments.items():
                asg_rows.append((acc, exp_id, did, a["arm"], a["propensity"], posted_at - timedelta(hours=1)))

            reach = _HOOK_REACH[hook] * (0.5 if kind == "reply" else 1.0)
            # reach grows with the square root of the audience: a year of growth, not an explosion
            impr24 = int(rng.lognormal(math.log(300 + 40 * math.sqrt(followers)) + math.log(reach), 0.6))
            rate = _HOOK_FOLLOW_RATE[hook] * (1.3 if "question_cta" in assignments
                                              and assignments["question_cta"]["arm"] == "treatment" else 1.0)
            follows24 = float(rng.poisson(rate * impr24 / 1000.0))
            counts24 = [int(rng.binomial(impr24, p)) for p in (0.02, 0.004, 0.003, 0.001, 0.002)]
            for pass_, frac, lag in ((1, 0.4, timedelta(hours=1)), (2, 1.0, timedelta(hours=24))):
                collected_at = posted_at + lag
                if collected_at > end:
                    continue
                impr = int(impr24 * frac)
                likes, rts, reps, quotes, bms = (int(c * frac) for c in counts24)
                follows = float(math.floor(follows24 * frac))
                m = _metrics(impr, likes, rts, reps, quotes, bms, follows, novelty, w)
                out_rows.append((did, acc, pass_, True, impr, likes, rts, reps, quotes, bms,
                                 int(rng.binomial(impr, 0.003)), int(rng.binomial(impr, 0.001)), follows,
                                 "snapshot_attribution", m["er"], m["fpki"], m["retweet_rate"], m["reply_rate"],
                                 novelty, m["reward"], m["weight"], pass_ == 2, collected_at))
                if pass_ == 2:
                    for scope, arm in (("content", hook), ("timing", str(hour))):
                        s = arms.setdefault((scope, arm), [0, 0.0, 0.0, 0.0])
                        # exposure-weighted sums, as xbotlib.core.bandit.update keeps them
                        s[0] += 1
                        s[1] += m["weight"] * m["reward"]
                        s[2] += m["weight"] * m["reward"] ** 2
                        s[3] += m["weight"]
            follow_events.append((posted_at + timedelta(hours=2), follows24))
            followers += follows24

    # Queue items around "now": what a live account has waiting, failing or dropped.
    for status, offset_h, err in (("queued", 1, None), ("queued", 3, None), ("queued", 5, None),
                                  ("draft", 8, None), ("draft", 9, None), ("failed", -2, "synthetic: X 503"),
                                  ("skipped", -5, "synthetic: duplicate gate"), ("cancelled", -6, None)):
        n += 1
        hook, topic = str(rng.choice(HOOK_PATTERNS)), str(rng.choice(TOPICS))
        text = _OPENERS[hook].format(t=topic) + f" (synthetic history #{n})"
        when = end + timedelta(hours=offset_h)
        cm_rows.append((_uuid(rng), acc, "post", status, text, content_hash(text), "synthetic", topic, hook,
                        float(rng.uniform(0.25, 0.95)), 70.0, 0.1, json.dumps(SYNTHETIC), "synthetic", hook,
                        1.0 / len(HOOK_PATTERNS), None, None, None, "{}", None, None,
                        when if status in ("queued", "failed") else None, None, 1 if status == "failed" else 0,
                        err, min(when, end) - timedelta(hours=1), min(when, end)))

    # Follower snapshots: the start count plus follows as they arrived, minus a little churn.
    snap_cols = ("account_id", "taken_at", "followers_count", "following_count", "tweet_count", "simulated")
    snap_rows = []
    ev_times = np.array([t.timestamp() for t, _ in follow_events])
    ev_cum = np.cumsum([f for _, f in follow_events]) if follow_events else np.array([])
    t = start
    churn = 0
    step = timedelta(hours=spec.snapshot_every_h)
    while t <= end:
        k = int(np.searchsorted(ev_times, t.timestamp(), side="right"))
        gained = float(ev_cum[k - 1]) if k > 0 else 0.0
        churn += int(rng.poisson(0.02 * spec.snapshot_every_h))
        snap_rows.append((acc, t, max(0, int(spec.start_followers + gained - churn)), 300, k, True))
        t += step

    arm_cols = ("account_id", "world", "scope", "arm_id", "pulls", "reward_sum", "reward_sq_sum", "weight_sum",
                "params", "updated_at")
    arm_rows = [(acc, "sandbox", scope, arm, s[0], s[1], s[2], s[3], json.dumps(SYNTHETIC), end)
                for (scope, arm), s in sorted(arms.items())]

    # Weekly predictor versions after the first two weeks; the newest of each kind is active.
    pred_cols = ("account_id", "kind", "version", "predictor_key", "algorithm", "world", "features", "n_samples",
                 "cv_score", "baseline_score", "metrics", "is_active", "trained_at")
    pred_rows = []
    out_times = sorted(r[-1] for r in out_rows if r[2] == 2)
    trained = [start + timedelta(days=d, hours=2) for d in range(14, spec.days, 7)]
    trained = [t for t in trained if t <= end]
    for kind in ("content", "timing"):
        for v, t_at in enumerate(trained, 1):
            n_samples = int(np.searchsorted([x.timestamp() for x in out_times], t_at.timestamp(), side="right"))
            # a deterministic learning curve, labelled synthetic in metrics: not a trained model's score
            cv = round(0.3 * (1 - math.exp(-n_samples / 300)), 4)
            pred_rows.append((acc, kind, v, f"predictor:{kind}:v{v}", "ridge", "sandbox",
                              json.dumps(["hook", "topic", "hour", "novelty"]), n_samples, cv, 0.0,
                              json.dumps(SYNTHETIC), v == len(trained), t_at))

    exp_cols = ("account_id", "experiment_id", "enabled", "allocation", "applies_to", "description", "created_at",
                "updated_at")
    exp_rows = [(acc, e, en, al, ap, f"{d} (synthetic history)", start, start) for e, ap, en, al, d in EXPERIMENTS]

    # OpenAI ledger: a few settled calls a day; today also an open reservation and a rate-limit refund.
    led_cols = ("call_id", "account_id", "budget_day", "model", "purpose", "status", "reserved_usd", "cost_usd",
                "prompt_tokens", "completion_tokens", "error", "created_at", "settled_at")
    led_rows = []
    for day in range(spec.days + 1):
        d0 = today - timedelta(days=spec.days - day)
        for i in range(int(rng.integers(4, 10))):
            at = d0 + timedelta(minutes=int(rng.integers(0, 24 * 60)))
            if at > end:
                continue
            cost = round(float(rng.uniform(0.0005, 0.004)), 6)
            led_rows.append((_uuid(rng), acc, d0.date(), "synthetic", "seed_history", "settled", 0.005, cost,
                             int(rng.integers(200, 600)), int(rng.integers(30, 90)), None, at, at))
    led_rows.append((_uuid(rng), acc, today.date(), "synthetic", "seed_history", "reserved", 0.005, 0.0, None,
                     None, None, end, None))
    led_rows.append((_uuid(rng), acc, today.date(), "synthetic", "seed_history", "refunded", 0.005, 0.0, None,
                     None, "rate_limit_exceeded (synthetic)", end, end))
    if spec.circuit_open_today:
        led_rows.append((_uuid(rng), acc, today.date(), "synthetic", "seed_history", "quota_exhausted", 0.0, 0.0,
                         None, None, "insufficient_quota (synthetic)", end, end))

    gate_cols = ("account_id", "gate", "reason", "content_hash", "rejected_at")
    gate_rows = []
    for day in range(spec.days + 1):
        d0 = today - timedelta(days=spec.days - day)
        for _ in range(int(rng.poisson(3))):
            at = d0 + timedelta(minutes=int(rng.integers(0, 24 * 60)))
            if at <= end:
                gate_rows.append((acc, str(rng.choice(GATES)), "synthetic", None, at))

    job_cols = ("account_id", "job", "status", "started_at", "finished_at", "detail", "error")
    job_rows = []
    if spec.job_runs:
        detail = json.dumps(SYNTHETIC)
        run_days = min(spec.days, spec.job_run_days or spec.days)
        for job, every in JOB_EVERY_MIN.items():
            statuses = rng.choice(["ok", "skipped", "failed"], p=[0.9, 0.08, 0.02],
                                  size=run_days * 24 * 60 // every + 1)
            t = end - timedelta(days=run_days)
            for status in statuses:
                if t > end:
                    break
                job_rows.append((acc, job, str(status), t, t + timedelta(seconds=2), detail,
                                 "synthetic failure" if status == "failed" else None))
                t += timedelta(minutes=every)

    acc_rows = [(acc, f"synthetic_{acc}", "UTC", None, start)]
    tables = {
        "accounts": (("account_id", "handle", "timezone", "x_user_id", "created_at"), acc_rows),
        "content_metadata": (cm_cols, cm_rows),
        "posted_decisions": (pd_cols, pd_rows),
        "outcomes": (out_cols, out_rows),
        "experiments": (exp_cols, exp_rows),
        "experiment_assignments": (asg_cols, asg_rows),
        "follower_snapshots": (snap_cols, snap_rows),
        "bandit_arms": (arm_cols, arm_rows),
        "predictors": (pred_cols, pred_rows),
        "llm_ledger": (led_cols, led_rows),
        "gate_rejections": (gate_cols, gate_rows),
        "job_runs": (job_cols, job_rows),
    }
    return History(tables=tables)


def write_history(conn, history: History) -> dict[str, int]:
    """COPY every table of ``history`` in, in the caller's transaction; returns rows written per table.

    ``predictors.trained_through`` is set afterwards from the outcome ids the database assigned:
    the last pass-2 outcome collected by each version's ``trained_at``.
    """
    for table, (cols, rows) in history.tables.items():
        if rows:
            store_db.copy_rows(conn, table, cols, rows)
    models.backfill_trained_through(conn, history.tables["accounts"][1][0][0])
    for table in history.tables:  # fresh statistics: the planner should see a year of rows as production would
        store_db.analyze(conn, table)
    return history.counts()


def seed_history(db, spec: HistorySpec) -> dict[str, int]:
    """Generate and write the history of ``spec`` in one transaction; returns rows written per table."""
    history = generate_history(spec)
    with db.connection() as conn:
        return write_history(conn, history)
