"""The learn job: retrain the content and timing predictors on the outcomes of the current world.

When it trains (``should_train``)
---------------------------------
*Fresh* samples are pass-2 outcomes of this account and world stored after the last version's
``trained_through`` (the highest outcome id it saw).
- fewer than ``LEARN_MIN_NEW_SAMPLES`` (5) fresh samples: skip, ``reason=insufficient_new_samples``;
- no version yet for this world: train (5 are enough to start);
- ``LEARN_RETRAIN_SAMPLES`` (25) or more fresh samples: retrain;
- otherwise retrain weekly: when the last version is 7 days old or more (with >= 5 fresh);
  before that, skip with ``reason=waiting_for_retrain``.

What it trains
--------------
On *all* pass-2 outcomes of the world (live <=> simulated=false; the worlds are never mixed, and a
live version is trained on live outcomes only): the content predictor (reward from the content
features, with a topic column per topic of the account's vocabulary, ``ctx.vocabulary``) and the timing predictor (reward from local hour/weekday features). Each is ridge, or
LightGBM when ``LEARN_USE_LIGHTGBM`` is on, there are >= 50 samples and its cross-validated loss is
no worse than ridge's (``predictors.train_with_fallback``); any LightGBM failure falls back to ridge
with ``[LEARN_JOB] lightgbm_failed fallback=ridge error=…``. Both are stored as new versions
(``predictor:content:vN``, ``predictor:timing:vN``) with their cross-validated R² next to a
predict-the-mean baseline's; the content version's ``metrics`` also hold ``follows_logistic_cv``, the
cross-validated log-loss/AUC of a logistic P(follows >= 1) against the base rate.

Which version serves
--------------------
A new version is served only if it beats the predict-the-mean baseline and the active version
(``core.predictors.serving_verdict``: the margins and why). A losing one is stored inactive with
its reason and logged ``[LEARN_JOB] rejected version=vN kind=… reason=… cv=… baseline=…``; the
active version, if any, keeps serving, and with none the plan job ranks by the bandit's own
estimate. ``[LEARN_JOB] coeffs_updated=vN`` names the content version when it is served (its
``timing=`` says ``vM`` or ``rejected``). A rejected version still counts as trained: fresh outcomes
are counted from it, so the next attempt waits for new data rather than refitting the same.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import dataclasses
import functools
import logging
from typing import Any, Mapping

import numpy as np

from xbotlib.core.predictors import (TIMING_TARGET, LogisticFollows, cross_validated_score, should_train,
                                     train_with_fallback)
from xbotlib.jobs.context import JobContext, JobResult
from xbotlib.logs import tagged
from xbotlib.store import models as predictor_store
from xbotlib.store import training_data
from xbotlib.store.models import last_version

log = logging.getLogger("xbot.jobs.learn")


def tick(ctx: JobContext, *, lightgbm_params: Mapping[str, Any] | None = None) -> JobResult:
    """Train new predictor versions when enough fresh outcomes arrived.

    ``lightgbm_params`` override the LightGBM parameters (operators tuning it; tests passing broken
    ones to see the ridge fallback).
    """
    settings, world, now = ctx.settings, ctx.world, ctx.clock.now()
    with ctx.db.autocommit() as conn:   # two reads that decide, no writes: no BEGIN … COMMIT round trips
        last = last_version(conn, ctx.account_id, world)
        since = last.trained_through if last else None
        fresh = int(training_data.count_fresh_outcomes(conn, ctx.account_id, world, since))
    decision = should_train(fresh, last, now, min_new=settings.learn_min_new_samples,
                            retrain_at=settings.learn_retrain_samples)
    if not decision.train:
        tagged(log, "LEARN_JOB", "skipped", reason=decision.reason, fresh=decision.fresh, need=decision.need,
               world=world)
        return JobResult.skipped(decision.reason, fresh=decision.fresh, need=decision.need, world=world)

    with ctx.db.connection() as conn:
        # the content columns are the account's niche (its topics): the stored version records them
        content, follows, timing = training_data.learn_frames(conn, ctx.account_id, world, vocabulary=ctx.vocabulary)
    # timing learns follows per post, unweighted (see bandit_store.apply_pass2_rewards for why)
    timing = timing._replace(w=np.ones_like(timing.y, dtype=float))
    versions: dict[str, int] = {}
    served: dict[str, bool] = {}
    detail: dict[str, Any] = {"world": world, "fresh": fresh, "reason": decision.reason}
    for kind, frame in (("content", content), ("timing", timing)):
        trained = _train(frame, settings.learn_use_lightgbm, lightgbm_params)
        if kind == "timing":
            trained = dataclasses.replace(trained, target_column=TIMING_TARGET)
        extra = {"follows_logistic_cv": follows_cv(follows)} if kind == "content" else {}
        with ctx.db.connection() as conn:
            saved = predictor_store.save_version(conn, ctx.account_id, kind, trained, list(frame.names),
                                                 len(frame.y), world, frame.max_outcome_id, now)
            if extra:
                predictor_store.add_metrics(conn, ctx.account_id, kind, saved.version, extra)
        versions[kind], served[kind] = saved.version, saved.served
        detail[kind] = {"version": saved.version, "key": f"predictor:{kind}:v{saved.version}",
                        "algorithm": trained.algorithm, "n": int(len(frame.y)),
                        "cv_score": _num(trained.cv.get("score")),
                        "baseline_score": _num(trained.cv.get("baseline_score")),
                        "fallback_reason": trained.fallback_reason, "served": saved.served,
                        "verdict": saved.verdict.reason, "rejected_reason": None if saved.served else saved.verdict.detail}
        if not saved.served:
            tagged(log, "LEARN_JOB", "rejected", version=f"v{saved.version}", kind=kind, reason=saved.verdict.reason,
                   cv=detail[kind]["cv_score"], baseline=detail[kind]["baseline_score"], margin=saved.verdict.margin,
                   world=world, n=detail[kind]["n"])
    forget_array_pointer_types()
    hand_back_freed_memory()
    c = detail["content"]
    if served["content"]:
        tagged(log, "LEARN_JOB", f"coeffs_updated=v{versions['content']}", world=world, n=c["n"],
               algorithm=c["algorithm"], cv_r2=c["cv_score"], baseline_r2=c["baseline_score"],
               timing=f"v{versions['timing']}" if served["timing"] else "rejected", reason=decision.reason)
    detail["version"] = versions["content"]
    detail["served"] = [detail[k]["key"] for k in ("content", "timing") if served[k]]
    return JobResult(detail=detail)


def forget_array_pointer_types() -> int:
    """Drop the ctypes pointer types numpy made while LightGBM read labels and weights back; how many went.

    LightGBM reads each training set's labels (and weights) back through ``np.ctypeslib.as_array``, which makes a
    ctypes array type of that length and asks ``ctypes.POINTER`` for its pointer type, and ctypes keeps every
    pointer type it made forever (CPython issue 100926; 3.14 ties them to their array type instead). So each new
    training-set size kept ~1 KiB: a daemon's memory grew with its history, ~0.14 MiB per 100 simulated days of
    one account (BENCHMARKS.md, 2026-12-05). numpy names the array types it makes with ``__module__ = None``;
    nothing else looks them up, and an array still built on one keeps its type alive through its own reference."""
    cache = getattr(ctypes, "_pointer_type_cache", None)
    if not isinstance(cache, dict):   # a Python whose ctypes keeps no such cache: nothing leaks there
        return 0
    made_by_numpy = [t for t in list(cache) if isinstance(t, type) and issubclass(t, ctypes.Array)
                     and t.__module__ is None]
    for t in made_by_numpy:
        cache.pop(t, None)
    return len(made_by_numpy)


def hand_back_freed_memory() -> bool:
    """Return the C heap's free pages to the system (glibc's ``malloc_trim(0)``); False where the C library has
    no such call (it only saves memory, so nothing else depends on it).

    Training builds arrays as large as the history (every final outcome) and frees them. glibc keeps the freed
    heap for later, and each training is a little larger than the last, so a daemon's resident set kept the
    largest one and grew with its history: +0.74 MiB per 100 simulated days after day 120 without the trim, +0.18
    with it, one account, X's old posts dropped (BENCHMARKS.md, 2026-12-05). A few milliseconds a training."""
    trim = _malloc_trim()
    if trim is None:
        return False
    trim(0)
    return True


@functools.lru_cache(maxsize=1)
def _malloc_trim():
    try:
        return ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6").malloc_trim
    except (OSError, AttributeError):   # no C library by that name, or not glibc (musl, macOS)
        return None


def _train(frame, use_lightgbm: bool, lightgbm_params: Mapping[str, Any] | None):
    return train_with_fallback("reward", frame.X, frame.y, frame.w, use_lightgbm, log,
                               lightgbm_params=None if lightgbm_params is None else dict(lightgbm_params))


def follows_cv(frame) -> dict[str, Any]:
    """Cross-validated log-loss/AUC of a logistic P(follows >= 1) against the base rate (cheap)."""
    if len(frame.y) == 0:
        return {"score": None, "reason": "no samples"}
    return cross_validated_score(LogisticFollows, frame.X, frame.y, frame.w, kind="follows")


def _num(value: Any) -> float | None:
    return None if value is None else float(value)
