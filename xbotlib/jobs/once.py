"""Run one job tick now, on behalf of a notebook.

The research notebooks only read (``xbotlib.app.analysis``); two of them can, when asked, run a job
once first: ``train_predictors`` (``persist=True``) runs the learn job, ``collect_outcomes``
(``run_collection=True``) the collect job. Both go through ``run_job`` — the same code and rules as
the daemon, recorded in ``job_runs`` — and neither raises for an expected refusal: the result says
what happened, and the report shows it.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping

import httpx

from xbotlib.clients.xapi import XApiError
from xbotlib.clock import Clock
from xbotlib.config import Settings
from xbotlib.jobs import collect, learn
from xbotlib.jobs.context import JobContext, JobResult, build_context
from xbotlib.jobs.runner import run_job
from xbotlib.store.db import Database
from xbotlib.store.outcomes import newest_posted_tweet_id
from xbotlib.store.queue import account_identity

# ----------------------------------------------------------------------------- learn

def persist_predictors(db: Database, settings: Settings, account_id: str, world: str, clock: Clock) -> JobResult:
    """Run the learn job once for the account (the same code and rules as the daemon) and record it in
    ``job_runs``; returns its ``JobResult``. It stores new versions only when ``should_train`` says so
    (enough fresh outcomes); otherwise the result says ``skipped`` and why."""
    ctx = JobContext(settings=settings.replace(account_id=account_id), db=db, clock=clock, account_id=account_id,
                     world=world)
    return run_job("learn", ctx, learn.tick)


# ----------------------------------------------------------------------------- collection

@dataclass(frozen=True)
class CollectionPass:
    """What one collection pass did: status 'ok' | 'skipped' | 'unavailable' | 'world_mismatch'."""
    status: str
    message: str
    detail: dict[str, Any] = field(default_factory=dict)


def world_problem(account: Mapping[str, Any], me_user_id: str, me_username: str,
                  newest_tweet_id: str | None, newest_found: bool) -> str | None:
    """Why the X that answered is not the account's world, or None when it is (pure).

    It must answer as the account's user (``accounts.x_user_id``, else its handle) and know the
    account's newest posted tweet.
    """
    known_id, handle = account.get("x_user_id"), account.get("handle")
    if known_id and known_id != me_user_id:
        return f"it answers as user {me_user_id}, but the account posted as user {known_id}"
    if not known_id and handle and me_username and handle != me_username:
        return f"it answers as @{me_username}, but the account is @{handle}"
    if newest_tweet_id and not newest_found:
        return f"it does not know the account's newest post (tweet {newest_tweet_id})"
    return None


def collect_once(db: Database, settings: Settings, account_id: str, clock: Clock) -> CollectionPass:
    """One pass of the collect job for ``account_id`` against the X that ``settings`` reach.

    Nothing is stored unless that X is the account's own world (``world_problem``): a different one
    — e.g. a fresh sandbox, while the demo's in-process sandbox existed only inside the demo run —
    would add a foreign follower snapshot and mark every post as not found. An unreachable X gives
    'unavailable'. Neither raises: a report says what happened and shows what is stored.
    """
    ctx = build_context(settings.replace(account_id=account_id), db, clock)
    with db.connection() as conn:
        account = account_identity(conn, account_id)
        newest_id = newest_posted_tweet_id(conn, account_id, ctx.world)
    try:
        me = ctx.x.me()
        found = bool(newest_id) and newest_id in ctx.x.lookup_tweets([newest_id]).metrics
    except (XApiError, httpx.HTTPError, OSError) as exc:
        return CollectionPass("unavailable", f"X is not reachable from these settings ({ctx.world}): "
                              f"{type(exc).__name__}: {exc}; nothing was collected", {"world": ctx.world})
    problem = world_problem(account or {}, me.user_id, me.username, newest_id, found)
    if problem:
        return CollectionPass("world_mismatch", f"the {ctx.world} X reachable from these settings is not the world "
                              f"{account_id!r} posted to: {problem}; nothing was collected",
                              {"world": ctx.world, "x_user": me.user_id})
    result = run_job("collect", ctx, collect.tick)
    message = f"collect {result.status}" + (f" ({result.reason})" if result.reason else "")
    return CollectionPass(result.status, message, dict(result.detail))
