"""The plan job: decide what to post next, and when, and queue it.

Per tick and account it tops the day up to PLAN_POSTS_PER_DAY posts and PLAN_REPLIES_PER_DAY
replies, one decision per kind per tick:

1. the policy picks a hook pattern (content arm) among those the rotation rule allows, and a
   local posting hour among the free slots of the coming day. The learner fits the growth model
   to the account's final outcomes of the last 90 days (``post_outcomes``) and takes Thompson
   sampling over its hook effects and UCB1 over its hour effects (``xbotlib.core.policies``);
2. experiments are assigned (randomised, propensities stored) and their arms applied;
3. the generator writes several candidates (the LLM, or the offline templates);
4. every candidate passes the gates (``xbotlib.core.gates``) — quality, duplicate, rotation — or is
   rejected with a reason
   (stored in ``gate_rejections``, counted in the metrics);
5. the survivors are ranked — a post's first by its distance from the last week's posts (``_rank``), then by
   the content predictor; the best is queued for the *next* occurrence of its
   hour in the account's time zone (today if still ahead, else tomorrow — never a day late).

Against live X (LIVE_POSTS=true, and LIVE_POSTS=shadow, which plans exactly as live does) the offline
templates are useless: live X never gets template text. So with the template generator (no
OPENAI_API_KEY) the tick plans nothing and says why, instead of queueing posts that can never go out.
Decisions shadow mode stood in for (skipped, last_error 'shadow') count as posted for the day plan,
the rotation and novelty, so a shadow run plans what a live run would plan.

Size: over 400 lines because the post and reply plans share one candidate path (gates, ranking, decision),
which reads best in one module; the pure parts it uses live in ``xbotlib.core``.
"""
from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import numpy as np

from xbotlib.clients.generation import TemplateGenerator
from xbotlib.clients.xapi import XApiError
from xbotlib.core import experiments, features, vocab
from xbotlib.core.features import timing_matrix
from xbotlib.core.gates import GateVerdict, allowed_by_rotation, duplicate_gate, quality_gate, rotation_gate
from xbotlib.core.policies import PlanChoice, PlanState, XbotPolicy, state_reads
from xbotlib.core.predictors import TIMING_TARGET
from xbotlib.core.profile import default_profile
from xbotlib.jobs.context import JobContext, JobResult, ensure_account_once
from xbotlib.logs import tagged
from xbotlib.store import arms as bandit_store
from xbotlib.store import experiments as experiment_store
from xbotlib.store import gates
from xbotlib.store import models as predictor_store
from xbotlib.store import queue
from xbotlib.store.outcomes import post_outcomes

log = logging.getLogger("xbot.jobs.plan")


# ----------------------------------------------------------------------------- pure helpers

def next_occurrence(hour: int, now: datetime, tz: str) -> datetime:
    """The next time the local clock in ``tz`` shows ``hour``:00 strictly after ``now`` (UTC-aware result).

    Compared as instants, not wall times: on the night the clock falls back the hour occurs twice
    (fold 0, then fold 1) and the second one is still ahead; an hour the clock skips maps to the
    moment of the jump (fold 0 reads it with the offset before the change).
    """
    zone, utc = ZoneInfo(tz), ZoneInfo("UTC")
    today = now.astimezone(zone).date()
    for days in range(3):
        day = today + timedelta(days=days)
        for fold in (0, 1):
            candidate = datetime(day.year, day.month, day.day, hour, tzinfo=zone, fold=fold).astimezone(utc)
            if candidate > now:
                return candidate
    raise AssertionError("unreachable: every local hour occurs within two days")


# ----------------------------------------------------------------------------- database reads

def _account_age_days(conn, account_id: str, now: datetime) -> float:
    created_at = queue.account_created_at(conn, account_id)
    return max(0.0, (now - created_at).total_seconds() / 86400.0) if created_at else 0.0


def _booked_hours(conn, account_id: str, now: datetime, tz: str) -> set[int]:
    zone = ZoneInfo(tz)
    return {t.astimezone(zone).hour for t in queue.booked_post_times(conn, account_id, now, now + timedelta(hours=24))}


def _recent_embeddings(ctx: JobContext, conn, now: datetime) -> np.ndarray | None:
    """The embeddings of the last 30 days' active decisions, oldest first (the database orders them); those read
    at an earlier tick come from ``ctx.recent_embeddings`` (only new decisions' arrays are sent), which then
    keeps just this window's.

    Kept as float64 rows, each converted from the read's list once: stacking them costs ~0.1 ms, while
    ``np.asarray`` of ~150 lists of 256 Python floats cost ~2.5 ms of CPU a call (0.7 s of a 60-day
    growth campaign). The values are the same doubles either way."""
    known = ctx.recent_embeddings
    rows = queue.active_embeddings_since(conn, ctx.account_id, now - timedelta(days=30), known=list(known))
    embeddings = [known[i] if e is None else np.asarray(e, dtype=float) for i, e, _ in rows]
    ctx.recent_embeddings = {i: e for (i, _, _), e in zip(rows, embeddings)}
    ctx.recent_created = {i: created for i, _, created in rows}
    if not embeddings:
        return None
    return np.stack(embeddings)


def _record_rejection(conn, account_id: str, verdict: GateVerdict, text: str, now: datetime) -> None:
    gates.record_gate_rejection(conn, account_id, verdict.gate, verdict.reason, text, now)
    tagged(log, "PLAN", "gate rejected", gate=verdict.gate, reason=verdict.reason.replace(" ", "_"))


# ----------------------------------------------------------------------------- the tick

PLANNED_TYPES = ("post", "reply")


def tick(ctx: JobContext) -> JobResult:
    """Top the day's plan up: at most one post and one reply queued (see the module docstring)."""
    return _tick(ctx, None)


def tick_many(ctxs: list[JobContext]) -> list[JobResult | Exception]:
    """``tick`` for each of ``ctxs`` in order (a simulated daemon's plan turn: one clock, one database), each tick's
    result or the exception it raised. The day's plan so far — every tick's first read, and at the hourly cadence
    mostly its last ("day fully planned") — is read for all the accounts in one statement
    (``queue.count_active_created_since_by_type_many``), not one each. Each account's count is what its own tick
    would read: the ticks before it in the turn queue only their own accounts' decisions, and the clock stands
    still. When that read fails, every tick fails with its error, as each would have failed at its own."""
    if len(ctxs) < 2 or len({c.account_id for c in ctxs}) < len(ctxs):
        return [_result_of(c, None) for c in ctxs]   # one account (or one twice): each tick reads its own
    now = ctxs[0].clock.now()
    try:
        with ctxs[0].db.autocommit() as conn:
            for c in ctxs:
                ensure_account_once(c, conn)
            planned = queue.count_active_created_since_by_type_many(conn, [c.account_id for c in ctxs], PLANNED_TYPES,
                                                                     now - timedelta(hours=24))
    except Exception as exc:  # each tick fails with it
        return [exc] * len(ctxs)
    return [_result_of(c, counts) for c, counts in zip(ctxs, planned)]


def _result_of(ctx: JobContext, planned: dict[str, int] | None) -> JobResult | Exception:
    try:
        return _tick(ctx, planned)
    except Exception as exc:  # recorded as this tick's failure; the turn goes on
        return exc


def _tick(ctx: JobContext, planned: dict[str, int] | None) -> JobResult:
    """``tick``, with the day's plan so far already read (``tick_many``) or, when None, reading it."""
    now = ctx.clock.now()
    s = ctx.settings
    if ctx.world == "live" and isinstance(ctx.generator, TemplateGenerator):
        reason = "no OPENAI_API_KEY: live X never gets template posts (set OPENAI_API_KEY, or use the sandbox)"
        tagged(log, "PLAN", "skipped", level=logging.WARNING, reason="template_generator_in_live_world",
               mode=s.posting_mode)
        return JobResult.skipped(reason, queued=0)
    if ctx.llm is not None:
        ctx.llm.new_tick()  # OpenAI retries are budgeted per tick (at most 2), so each tick starts afresh
    if not ctx.experiments_ready:  # the registry is fixed for the process: its rows need writing once per context
        with ctx.db.connection() as conn:
            ensure_account_once(ctx, conn)
            experiment_store.ensure_experiments(conn, ctx.account_id, now)
        ctx.experiments_ready = True
    if planned is None:   # the day's plan so far, posts and replies in one read (one round trip in autocommit)
        with ctx.db.autocommit() as conn:
            ensure_account_once(ctx, conn)
            planned = queue.count_active_created_since_by_type(conn, ctx.account_id, PLANNED_TYPES,
                                                               now - timedelta(hours=24))
    posts_planned, replies_planned = planned["post"], planned["reply"]
    detail: dict = {"queued": 0, "rejected": 0}
    if posts_planned < s.plan_posts_per_day:
        detail.update(_plan_post(ctx, now))
    local_hour = now.astimezone(ZoneInfo(s.timezone)).hour
    # a reply goes out as soon as it is planned, so plan it only while the audience is awake: within
    # the span of the posting hours (the first tick of a day is at midnight, when almost nobody reads)
    awake = min(s.posting_hours) <= local_hour <= max(s.posting_hours)
    if replies_planned < s.plan_replies_per_day and awake:
        r = _plan_reply(ctx, now)
        detail["queued"] += r.get("queued", 0)
        detail["rejected"] += r.get("rejected", 0)
        if "reply_skipped" in r:
            detail["reply_skipped"] = r["reply_skipped"]
    if not detail["queued"] and posts_planned >= s.plan_posts_per_day and replies_planned >= s.plan_replies_per_day:
        return JobResult.skipped("day fully planned", posts=posts_planned, replies=replies_planned)
    return JobResult(detail=detail)


def _policy_state(ctx: JobContext, conn, now: datetime, hours: list[int], reads: frozenset[str]) -> PlanState:
    """What the policy may look at: arm statistics, the timing predictor's view of each hour (UCB1's
    prior before the growth model has data) and the outcomes the growth model learns from.

    ``reads`` (``policies.state_reads``): of the last two, what the policy reads; the others are left out
    (None, no outcomes), which spares the heuristic, random and fixed policies of the growth bench the
    two reads (nothing they choose or store depends on them)."""
    prior = None
    timing_model = _active_predictor(ctx, conn, "timing") if "hour_prior_means" in reads else None
    if timing_model is not None and hours:
        weekday = now.astimezone(ZoneInfo(ctx.settings.timezone)).weekday()
        try:
            prior = dict(zip(hours, (float(v) for v in timing_model.predict(timing_matrix(hours, weekday)))))
        except ValueError as exc:  # a model trained on other features: plan without its prior
            tagged(log, "PLAN", "timing predictor unusable", level=logging.WARNING, error=str(exc)[:80])
    return PlanState(
        content_arms=bandit_store.load_arms(conn, ctx.account_id, ctx.world, "content"),
        timing_arms=bandit_store.load_arms(conn, ctx.account_id, ctx.world, "timing"),
        account_age_days=_account_age_days(conn, ctx.account_id, now),
        hour_prior_means=prior,
        outcomes=(post_outcomes(conn, ctx.account_id, ctx.world, now, vocabulary=ctx.vocabulary)
                  if "outcomes" in reads else ()),
        vocabulary=ctx.vocabulary,
        now=now,
    )


def _active_predictor(ctx: JobContext, conn, kind: str):
    target = TIMING_TARGET if kind == "timing" else "reward_composite"
    try:
        # the model loaded at an earlier tick serves again while it is still the active one (its bytes not re-read)
        loaded = ctx.predictors[kind, target] = predictor_store.load_active(
            conn, ctx.account_id, kind, ctx.world, target=target, known=ctx.predictors.get((kind, target)))
        if kind == "timing":
            return loaded
    except Exception as exc:  # a model that cannot be loaded must not stop planning
        tagged(log, "PLAN", "predictor unavailable", level=logging.WARNING, kind=kind, error=type(exc).__name__)
        return None
    try:
        # a content model learned before the account's profile changed its topics would read this niche's
        # topic columns as 0: plan without it until the learn job retrains on the new columns
        if loaded is not None:
            features.check_feature_names(loaded.features, ctx.vocabulary, what=f"content predictor {loaded.key}")
    except ValueError as exc:
        tagged(log, "PLAN", "predictor unusable", level=logging.WARNING, kind=kind, error=str(exc))
        return None
    return loaded


def _plan_post(ctx: JobContext, now: datetime) -> dict:
    s = ctx.settings
    policy = ctx.policy or XbotPolicy()
    # reads only, each a statement of its own (READ COMMITTED gives each its own snapshot inside a transaction
    # too): autocommit spares the BEGIN and COMMIT round trips
    with ctx.db.autocommit() as conn:
        recent = queue.recent_hooks_and_topics(conn, ctx.account_id, "post")
        recent_hooks = [r["hook_pattern"] for r in recent]
        recent_topics = [r["topic"] for r in recent]
        hooks = allowed_by_rotation(recent_hooks, list(ctx.vocabulary.hooks), s.rotation_max_run)
        booked = _booked_hours(conn, ctx.account_id, now, s.timezone)
        hours = [h for h in s.posting_hours if h not in booked] or list(s.posting_hours)
        state = _policy_state(ctx, conn, now, hours, state_reads(policy))
        active = experiment_store.active_experiments(conn, ctx.account_id)
        recent_emb = _recent_embeddings(ctx, conn, now)
        content_model = _active_predictor(ctx, conn, "content")
    choice: PlanChoice = policy.choose(state, hooks, hours, ctx.rng)
    topic = _choose_topic(recent_topics, ctx.vocabulary.topics, s.rotation_max_run, ctx.rng)
    assignments = experiments.assign(active, "post", ctx.rng)
    hour, timing_propensity = choice.hour, choice.hour_propensity
    if assignments.get("late_evening_slot") and assignments["late_evening_slot"].arm == "treatment":
        # the treatment draws its hour uniformly from the late-evening hours
        hour, timing_propensity = experiments.evening_hour(ctx.rng), 1.0 / len(vocab.LATE_EVENING_HOURS)
    scheduled_at = next_occurrence(hour, now, s.timezone)

    candidates = ctx.generator.candidates(choice.hook, topic, s.plan_candidates, rng=ctx.rng)
    if not candidates:
        tagged(log, "PLAN", "no candidates", reason="generator_gave_up", hook=choice.hook, topic=topic)
        return {"queued": 0, "rejected": 0, "skipped": "generator gave up (see OPENAI lines)"}
    best = _select(ctx, candidates, topic, assignments, recent_emb, recent_hooks, recent_topics, content_model,
                   hour, now, decision_type="post")
    if best is None:
        return {"queued": 0, "rejected": len(candidates)}
    decision = _decision(ctx, best, "post", choice, hour, timing_propensity, assignments, scheduled_at, policy.name)
    _queue(ctx, decision, now)
    return {"queued": 1, "rejected": best.rejected, "hook": choice.hook, "hour": hour,
            "scheduled_at": scheduled_at.isoformat()}


def _choose_topic(recent_topics: list[str], topics: tuple[str, ...], max_run: int, rng: np.random.Generator) -> str:
    """Least recently used of the account's ``topics`` among those rotation allows (ties broken by rng)."""
    options = allowed_by_rotation(recent_topics, list(topics), max_run)
    last_seen = {t: (recent_topics.index(t) if t in recent_topics else len(recent_topics) + 1) for t in options}
    oldest = max(last_seen.values())
    pool = [t for t in options if last_seen[t] == oldest]
    return pool[int(rng.integers(len(pool)))]


@dataclass
class _Scored:
    text: str
    source: str
    hook: str
    topic: str | None
    features: object
    embedding: list[float]
    predicted: float | None
    predictor_version: str | None
    recent_novelty: float = 1.0  # against the last RECENT_DAYS' posts (``_rank``)
    rejected: int = 0


def _select(ctx, candidates, topic, assignments, recent_emb, recent_hooks, recent_topics, content_model,
            hour, now, *, decision_type, reply=None) -> _Scored | None:
    """Apply experiment arms, extract features, gate, and rank the survivors by the content predictor."""
    s = ctx.settings
    survivors: list[_Scored] = []
    rejected = 0
    texts = []
    for cand in candidates:
        try:
            text = experiments.apply_text_arms(cand.text, cand.topic or topic, assignments, ctx.rng,
                                               vocabulary=ctx.vocabulary)
        except ValueError as exc:
            verdict = GateVerdict(False, "quality", f"experiment arm does not fit: {exc}")
            with ctx.db.connection() as conn:
                _record_rejection(conn, ctx.account_id, verdict, cand.text, now)
            rejected += 1
            continue
        texts.append((cand, text))
    if not texts:
        return None
    embeddings = np.asarray(ctx.embedder.embed([t for _, t in texts]), dtype=float)
    seen = recent_emb
    with ctx.db.autocommit() as conn:  # one read
        used = queue.used_content_hashes(conn, ctx.account_id, [queue.content_hash(t) for _, t in texts])
    last_week = _last_week_embeddings(ctx, now) if decision_type == "post" else None
    for (cand, text), emb in zip(texts, embeddings):
        feats = features.extract_features(text, embedding=emb, recent_embeddings=seen, novelty_min=s.novelty_min,
                                          topic=cand.topic or topic, reply=reply, hour=hour,
                                          vocabulary=ctx.vocabulary)
        hook = feats.hook_pattern
        for verdict in (quality_gate(text, feats.readability, s.quality_min_readability, s.banned_phrases),
                        duplicate_gate(feats.novelty, s.novelty_min, queue.content_hash(text) in used),
                        rotation_gate(hook, cand.topic or topic, recent_hooks, recent_topics, s.rotation_max_run)
                        if decision_type == "post" else GateVerdict(True)):
            if not verdict.ok:
                with ctx.db.connection() as conn:
                    _record_rejection(conn, ctx.account_id, verdict, text, now)
                rejected += 1
                break
        else:
            predicted, version = None, None
            if content_model is not None:
                predicted = float(content_model.predict_features([feats.to_dict()])[0])
                version = content_model.key
            survivors.append(_Scored(text, cand.generation_source, hook, cand.topic or topic, feats,
                                     [float(v) for v in emb], predicted, version,
                                     recent_novelty=features.novelty(emb, last_week)))
    if not survivors:
        return None
    best = max(survivors, key=_rank)
    best.rejected = rejected
    return best


# A post's candidate whose nearest post of the last RECENT_DAYS is closer than this (novelty = 1 − cosine of the
# local embedding) is a near-repeat of something the audience saw lately; see ``_rank``.
RECENT_DAYS = 7
REPEAT_NOVELTY = 0.5


def _rank(c: _Scored) -> tuple[float, float, float]:
    """The order of a decision's surviving candidates (the greatest is queued): first away from the last week's
    posts, up to REPEAT_NOVELTY (``recent_novelty``; 1 for replies, which are not compared), then the content
    predictor's predicted reward when a model is active, then novelty against the last 30 days.

    Why the last week first: audiences tire of what they saw lately (the sandbox: a post whose content words
    overlap a post of the last 5-7 days by a Jaccard similarity above 0.35 loses up to half its reach and half
    its engagement per impression). Ranked by the predictor alone (novelty against 30 days its tie-break), a
    third of the posts repeated a recent one and fatigue took 9 % of the follows of xbot's and of the best fixed
    rule's posts alike: among four texts of one hook and topic the predictor has little to tell apart, and
    30-day novelty prefers texts far from *anything* in a month, not from what is fresh in readers' minds.
    Replayed offline on the template generator (``bench/rank_replay.py``: 240 posts, 3/4 on one hook, four
    candidates each, seeds 0-3), the mean fatigue multiplier on follows was 0.886 for an arbitrary candidate,
    0.936 for the most novel against 30 days, 0.962 against 14 days, 0.998 with this rule, and 0.997 taking,
    post by post, the candidate the sandbox itself would fatigue least. The line: text pairs above the
    sandbox's onset (the same body reused) had a cosine of 0.59-0.88 (5th-95th percentile), pairs below a
    Jaccard of 0.2 had 0.03-0.35; candidates past the line tie on the first key, so the predictor still
    chooses among texts that repeat nothing recent.

    Real bench (``bench/fatigue_by_policy.py``, default world, seeds 0-9 x 60 days, paired with the ranking
    before; BENCHMARKS.md "Issue #20, fourth pass"): posts above the onset 0.34 -> 0.13 of xbot's, 0.34 -> 0.14
    of the fixed rule's; fatigue x +0.058 ± 0.007 and +0.054 ± 0.003; followers gained +17.5 ± 12.5 (xbot)
    and +33.0 ± 6.7 (fixed, whose choices do not depend on the outcomes, has the smaller se)."""
    return (min(c.recent_novelty, REPEAT_NOVELTY), c.predicted if c.predicted is not None else -math.inf,
            c.features.novelty)


def _last_week_embeddings(ctx, now: datetime) -> np.ndarray | None:
    """The embeddings of the active decisions of the last RECENT_DAYS: those of the 30 days ``_recent_embeddings``
    read this tick (``ctx.recent_embeddings``) created since (``ctx.recent_created``), with no read of their own."""
    since = now - timedelta(days=RECENT_DAYS)
    week = [e for i, e in ctx.recent_embeddings.items() if ctx.recent_created[i] > since]
    return np.stack(week) if week else None


def _decision(ctx, best: _Scored, decision_type, choice: PlanChoice | None, hour, timing_propensity, assignments,
              scheduled_at, policy_name, target_tweet_id=None) -> queue.Decision:
    f = best.features
    return queue.Decision(
        account_id=ctx.account_id, content=best.text, generation_source=best.source, decision_type=decision_type,
        status="queued", topic=best.topic, hook_pattern=best.hook, novelty=f.novelty, readability=f.readability,
        sentiment=f.sentiment, dup_penalty=f.dup_penalty, features=f.to_dict(), embedding=best.embedding,
        policy=policy_name,
        bandit_arm=choice.hook if choice else None, bandit_propensity=choice.hook_propensity if choice else None,
        timing_arm=str(hour) if hour is not None else None, timing_propensity=timing_propensity,
        experiment_id=experiments.primary_experiment(assignments),
        experiment_arms={k: {"arm": a.arm, "propensity": a.propensity} for k, a in assignments.items()},
        predicted_reward=best.predicted, predictor_version=best.predictor_version,
        scheduled_at=scheduled_at, target_tweet_id=target_tweet_id,
    )


def _queue(ctx, decision: queue.Decision, now) -> None:
    with ctx.db.connection() as conn:
        queue.insert_decision(conn, decision, now)
        experiment_store.record_new_decision_assignments(conn, decision, now)
    tagged(log, "PLAN", "queued", decision_id=decision.decision_id, type=decision.decision_type,
           hook=decision.hook_pattern, topic=decision.topic, scheduled_at=decision.scheduled_at.isoformat(),
           source=decision.generation_source, predicted=decision.predicted_reward)


def _plan_reply(ctx: JobContext, now: datetime) -> dict:
    """Find a conversation worth joining through search, and queue a reply to it now."""
    with ctx.db.autocommit() as conn:  # reads only, as in _plan_post
        recent = queue.recent_hooks_and_topics(conn, ctx.account_id, "reply")
        active = experiment_store.active_experiments(conn, ctx.account_id)
        recent_emb = _recent_embeddings(ctx, conn, now)
        content_model = _active_predictor(ctx, conn, "content")
        replied = queue.replied_tweet_ids(conn, ctx.account_id)
    topic = _choose_topic([r["topic"] for r in recent], ctx.vocabulary.topics, ctx.settings.rotation_max_run, ctx.rng)
    try:
        # the profile's search for this topic (default: its first three keywords, OR-ed)
        found = ctx.x.search_recent((ctx.profile or default_profile()).reply_query(topic), max_results=20)
    except XApiError as exc:
        tagged(log, "PLAN", "reply search failed", level=logging.WARNING, error=type(exc).__name__)
        return {"queued": 0, "reply_skipped": f"search failed: {type(exc).__name__}"}
    targets = [t for t in found if t.tweet_id not in replied]
    if not targets:
        return {"queued": 0, "reply_skipped": "no reply candidates"}

    def target_value(t) -> float:
        rf = features.reply_features(t.author_followers, t.likes + t.retweets + t.replies + t.quotes,
                                     t.created_at, now)
        # prior value of a conversation: big, fast-moving, fresh threads carry a reply further
        return (math.log1p(rf["author_follower_count"]) * math.log1p(rf["tweet_velocity"] * 60)
                / math.sqrt(1.0 + rf["tweet_age_min"] / 30.0))

    target = max(targets, key=target_value)
    reply = features.reply_features(target.author_followers, target.likes + target.retweets + target.replies
                                    + target.quotes, target.created_at, now)
    assignments = experiments.assign(active, "reply", ctx.rng)
    angle = experiments.reply_angle(assignments)
    # a profile without the contrarian hook still argues the claim, under a plain opening
    hook = "contrarian" if angle == "contrarian" and "contrarian" in ctx.vocabulary.hooks else "plain"
    candidates = ctx.generator.candidates(hook, topic, ctx.settings.plan_candidates, angle=angle,
                                          reply_to_text=target.text, rng=ctx.rng)
    if not candidates:
        return {"queued": 0, "reply_skipped": "generator gave up"}
    local_hour = now.astimezone(ZoneInfo(ctx.settings.timezone)).hour
    best = _select(ctx, candidates, topic, assignments, recent_emb, [], [], content_model, local_hour, now,
                   decision_type="reply", reply=reply)
    if best is None:
        return {"queued": 0, "rejected": len(candidates)}
    decision = _decision(ctx, best, "reply", None, None, None, assignments, now, (ctx.policy or XbotPolicy()).name,
                         target_tweet_id=target.tweet_id)
    _queue(ctx, decision, now)
    return {"queued": 1, "rejected": best.rejected}
