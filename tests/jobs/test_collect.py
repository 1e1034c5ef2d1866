"""The collect job over the real database and the in-process sandbox X (through the real XClient)."""
from __future__ import annotations

import logging
from datetime import datetime, timedelta, timezone

import psycopg
import pytest

from helpers import queue_template_posts

from xbotlib.store import outcomes, queue
from xbotlib.core import vocab
from xbotlib.jobs import collect, post
from xbotlib.jobs.collect import due_passes
from xbotlib.jobs.context import build_context
from xbotlib.sim.xserver import SandboxX
from xbotlib.clients.generation import TemplateGenerator
from xbotlib.clients.xapi import XApiError

T0 = datetime(2026, 3, 2, 8, 0, tzinfo=timezone.utc)


def _t(hours: float) -> datetime:
    return T0 + timedelta(hours=hours)


# ----------------------------------------------------------------------------- pure core

@pytest.mark.parametrize("age_h, stored, expected", [
    (0.5, [], ()),
    (1.0, [], (1,)),
    (23.9, [1], ()),
    (24.0, [1], (2,)),
    (30.0, [], (1, 2)),          # missed ticks: both passes from one late read
    (30.0, [1, 2], ()),
    (30.0, [2], (1,)),
])
def test_due_passes(age_h, stored, expected):
    assert due_passes(T0, stored, T0 + timedelta(hours=age_h)) == expected


# the attribution rule itself (baseline, split, churn) is tested in tests/jobs/test_attribution.py


# ----------------------------------------------------------------------------- the job, against the sandbox

def make_ctx(settings, db, clock, *, analytics: bool = True, seed: int = 3):
    sandbox = SandboxX(clock=clock, seed=seed, analytics_enabled=analytics)
    settings = settings.replace(posts_per_hour_cap=100, posts_per_day_cap=1000)
    return build_context(settings, db, clock, sandbox=sandbox, seed=seed, generator=TemplateGenerator(seed))


def queue_posts(ctx, n: int, *, seed: int = 0) -> list[str]:
    """Queue ``n`` template posts due now (real texts and feature records); returns decision ids."""
    return queue_template_posts(ctx, n, seed=seed, topic_of=lambda i: vocab.TOPICS[(i // 6 + i) % 5])


def publish(ctx, n: int, *, seed: int = 0) -> list[str]:
    ids = queue_posts(ctx, n, seed=seed)
    result = post.tick(ctx)
    assert result.detail["sent"] == n, result
    return ids


def outcome_rows(db) -> list[dict]:
    return db.execute("SELECT * FROM outcomes ORDER BY decision_id, collected_pass")


def test_tick_twice_stores_the_same_rows_once(settings, db, clock, caplog):
    ctx = make_ctx(settings, db, clock)
    ids = publish(ctx, 4)
    clock.advance(timedelta(hours=25))
    caplog.set_level(logging.INFO, logger="xbot")
    first = collect.tick(ctx)
    rows = outcome_rows(db)
    assert first.status == "ok" and first.detail["stored"] == 8
    assert len(rows) == 8 and {str(r["decision_id"]) for r in rows} == set(ids)
    stored_lines = [m for m in caplog.messages if m.startswith("[ANALYTICS_COLLECTOR] stored outcome")]
    assert len(stored_lines) == 8 and all("pass=" in m and "er=" in m and "fpki=" in m for m in stored_lines)
    # a late first read is stored as pass 1 with its real time, from the same read as pass 2
    for r in rows:
        assert r["collected_at"] == clock.now() and r["simulated"] is True
        assert r["follows_source"] == "analytics" and r["impressions"] > 0
    snaps = db.execute("SELECT count(*) AS n FROM follower_snapshots")[0]["n"]

    caplog.clear()
    second = collect.tick(ctx)
    assert second.detail["stored"] == 0 and second.detail["due"] == 0
    assert outcome_rows(db) == rows
    assert db.execute("SELECT count(*) AS n FROM follower_snapshots")[0]["n"] == snaps
    assert not [m for m in caplog.messages if "stored outcome" in m]
    # the bandit got each pass-2 reward exactly once
    assert first.detail["bandit_updates"] == 4 and second.detail["bandit_updates"] == 0
    pulls = db.execute("SELECT sum(pulls) AS n FROM bandit_arms WHERE scope = 'content'")[0]["n"]
    assert pulls == 4


def test_upsert_rewrites_only_changed_values(settings, db, clock):
    ctx = make_ctx(settings, db, clock)
    publish(ctx, 2)
    clock.advance(timedelta(hours=2))
    collect.tick(ctx)
    before = outcome_rows(db)
    post_ = collect.DuePost(str(before[0]["decision_id"]), "x", T0, (1,), before[0]["novelty"],
                            before[0]["dup_penalty"])
    metrics = {k: before[0][k] for k in outcomes.METRIC_FIELDS}
    same = collect.outcome_row(post_, 1, metrics, before[0]["follows"], before[0]["follows_source"],
                               account_id=ctx.account_id, simulated=True, weights=settings.reward_weights(),
                               collected_at=clock.now() + timedelta(hours=1))
    changed = {**same, "likes": same["likes"] + 5, "er": same["er"] + 0.001}
    with db.connection() as conn:
        assert outcomes.upsert_outcomes(conn, [same], {}) == []          # identical values: untouched
    assert outcome_rows(db) == before
    with db.connection() as conn:
        assert len(outcomes.upsert_outcomes(conn, [changed], {})) == 1
    after = outcome_rows(db)[0]
    assert after["likes"] == before[0]["likes"] + 5 and after["outcome_id"] == before[0]["outcome_id"]


def test_pass1_after_1h_then_pass2_after_24h(settings, db, clock):
    ctx = make_ctx(settings, db, clock)
    publish(ctx, 3)
    clock.advance(timedelta(minutes=59))
    assert collect.tick(ctx).detail["stored"] == 0
    clock.advance(timedelta(minutes=1))
    assert collect.tick(ctx).detail["stored"] == 3
    clock.advance(timedelta(hours=23))
    assert collect.tick(ctx).detail["stored"] == 3
    rows = outcome_rows(db)
    by = {(str(r["decision_id"]), r["collected_pass"]): r for r in rows}
    for (d, p), r in by.items():
        if p == 2:
            p1 = by[(d, 1)]
            assert r["impressions"] >= p1["impressions"] and r["follows"] >= p1["follows"]
            assert r["collected_at"] - p1["collected_at"] == timedelta(hours=23)
    latest = db.execute("SELECT pd.profile_visits, o.profile_visits AS o_pv FROM posted_decisions pd "
                        "JOIN outcomes o ON o.decision_id = pd.decision_id AND o.collected_pass = 2")
    assert all(r["profile_visits"] == r["o_pv"] for r in latest)


def test_snapshot_attribution_without_analytics(settings, db, clock):
    ctx = make_ctx(settings, db, clock, analytics=False, seed=11)
    collect.tick(ctx)                      # snapshot before posting
    publish(ctx, 12)
    clock.advance(timedelta(hours=30))     # one late read for both passes
    result = collect.tick(ctx)
    assert result.detail["stored"] == 24
    snaps = db.execute("SELECT followers_count FROM follower_snapshots ORDER BY taken_at")
    gain = snaps[-1]["followers_count"] - snaps[0]["followers_count"]
    assert len(snaps) == 2 and gain > 0    # this seed gains followers: the split below is not vacuous
    rows = db.execute("SELECT * FROM outcomes WHERE collected_pass = 1")
    assert {r["follows_source"] for r in rows} == {"snapshot_attribution"}
    visits = sum(r["profile_visits"] for r in rows)
    assert visits > 0
    # one interval is no history to tell an organic baseline from: the prior (0) holds, the whole gain goes to
    # the posts, split by profile visits (they were posted and read together)
    for r in rows:
        assert r["follows"] == pytest.approx(gain * r["profile_visits"] / visits, rel=1e-3)
        assert r["fpki"] == pytest.approx(1000 * r["follows"] / max(1, r["impressions"]))
    assert sum(r["follows"] for r in rows) == pytest.approx(gain, rel=1e-3)


def test_rewards_transaction_runs_only_when_a_final_read_may_wait(settings, db, clock, monkeypatch):
    """A tick that stores only T+1h reads (and found no pass-2 outcome waiting) has no reward to fold in: it
    skips arms.apply_pass2_rewards' transaction; the tick that stores the T+24h reads runs it."""
    ctx = make_ctx(settings, db, clock)
    publish(ctx, 2)
    reward_reads = []
    execute = psycopg.Connection.execute

    def spy(conn, query, *args, **kwargs):   # psycopg's, passed through: counts the rewards' locking read
        if "FOR UPDATE OF o" in str(query):
            reward_reads.append(query)
        return execute(conn, query, *args, **kwargs)
    monkeypatch.setattr(psycopg.Connection, "execute", spy)
    clock.advance(timedelta(hours=1))
    first = collect.tick(ctx)
    assert first.detail["stored"] == 2 and first.detail["bandit_updates"] == 0 and reward_reads == []
    clock.advance(timedelta(hours=23))
    final = collect.tick(ctx)
    assert final.detail["stored"] == 2 and final.detail["bandit_updates"] == 2 and len(reward_reads) == 1
    assert db.execute("SELECT sum(pulls) AS n FROM bandit_arms WHERE scope = 'content'")[0]["n"] == 2


def test_posts_older_than_30_days_are_skipped_never_filled(settings, db, clock, caplog):
    ctx = make_ctx(settings, db, clock)
    old = publish(ctx, 1, seed=1)
    clock.advance(timedelta(days=2))
    recent = publish(ctx, 1, seed=2)
    clock.set(T0 + timedelta(days=31))
    caplog.set_level(logging.INFO, logger="xbot")
    result = collect.tick(ctx)
    assert result.detail["too_old"] == 1 and result.detail["stored"] == 2
    stored = {str(r["decision_id"]) for r in outcome_rows(db)}
    assert stored == set(recent) and not stored & set(old)
    assert any("[ANALYTICS_COLLECTOR] skipped reason=older_than_30_days count=1" in m for m in caplog.messages)


def test_rate_limit_defers_without_storing(settings, db, clock):
    ctx = make_ctx(settings, db, clock)
    publish(ctx, 2)
    clock.advance(timedelta(hours=1))
    ctx.sandbox.faults.push("GET /2/tweets", "rate_limit")
    result = collect.tick(ctx)
    assert result.status == "skipped" and result.reason == "rate_limited"
    assert outcome_rows(db) == []
    limit = db.execute("SELECT endpoint, reset_at FROM x_rate_limits")
    assert [r["endpoint"] for r in limit] == ["GET /2/tweets"] and limit[0]["reset_at"] > clock.now()
    calls = ctx.x.calls["GET /2/tweets"]
    again = collect.tick(ctx)              # still inside the window: not even asked
    assert again.status == "skipped" and ctx.x.calls["GET /2/tweets"] == calls
    clock.set(limit[0]["reset_at"])
    assert collect.tick(ctx).detail["stored"] == 2


def test_malformed_response_raises_and_stores_nothing(settings, db, clock):
    ctx = make_ctx(settings, db, clock)
    publish(ctx, 3)
    clock.advance(timedelta(hours=1))
    ctx.sandbox.faults.push("GET /2/tweets", "malformed")
    with pytest.raises(XApiError, match="GET /2/tweets"):
        collect.tick(ctx)
    assert outcome_rows(db) == []
    assert collect.tick(ctx).detail["stored"] == 3


@pytest.mark.parametrize("fault", ["server_error", "timeout"])
def test_x_unavailable_skips_and_retries_next_tick(settings, db, clock, fault):
    ctx = make_ctx(settings, db, clock)
    publish(ctx, 2)
    clock.advance(timedelta(hours=1))
    ctx.sandbox.faults.push("GET /2/tweets", fault)
    result = collect.tick(ctx)
    assert result.status == "skipped" and result.reason == "x_unavailable"
    assert outcome_rows(db) == []
    assert collect.tick(ctx).detail["stored"] == 2


def test_deleted_tweet_is_logged_and_skipped(settings, db, clock, caplog):
    ctx = make_ctx(settings, db, clock)
    publish(ctx, 2)
    ghost = queue_posts(ctx, 1, seed=9)[0]
    with db.connection() as conn:       # a post X no longer knows (deleted)
        conn.execute("UPDATE content_metadata SET status = 'posting' WHERE decision_id = %s", (ghost,))
        queue.record_posted(conn, ghost, ctx.account_id, "1999999999999999999", clock.now(), "sandbox", clock.now())
    clock.advance(timedelta(hours=1))
    caplog.set_level(logging.INFO, logger="xbot")
    result = collect.tick(ctx)
    assert result.detail["stored"] == 2 and result.detail["lookup_errors"] == 1
    assert ghost not in {str(r["decision_id"]) for r in outcome_rows(db)}
    assert any("lookup error" in m and ghost in m for m in caplog.messages)


def test_collects_only_its_own_world(settings, db, clock):
    ctx = make_ctx(settings, db, clock)
    publish(ctx, 2)
    with db.connection() as conn:
        conn.execute("UPDATE posted_decisions SET world = 'live'")
    clock.advance(timedelta(hours=2))
    result = collect.tick(ctx)
    assert result.detail["due"] == 0 and outcome_rows(db) == []


def test_attribution_history_serves_each_batch_what_the_store_would(settings, db, clock):
    """The tick reads snapshots and posts once and folds each stored batch in: after every batch, what it
    serves the next one equals a fresh read from the database (batches of 2 here, so 3 of them)."""
    ctx = make_ctx(settings, db, clock, analytics=False, seed=11)
    for i in range(3):                      # a few snapshots and posts spread over hours
        collect.tick(ctx)
        publish(ctx, 2, seed=i)
        clock.advance(timedelta(hours=3))
    clock.advance(timedelta(hours=20))
    now = clock.now()
    with db.connection() as conn:
        due, _ = collect.find_due_posts(conn, ctx.account_id, ctx.world, now)
    batches = collect.batched(due, 2)
    assert len(batches) == 3 and all(len(b[0].passes) >= 1 for b in batches)
    history = collect.AttributionHistory()
    for batch, following in zip(batches, batches[1:] + [batches[0]]):
        collect.collect_batch(ctx, batch, now, ask_analytics=False, history=history)
        since = min(p.posted_at for p in following)
        with db.connection() as conn:
            assert history.inputs(conn, ctx, since, now) == \
                collect.attribution_inputs(conn, ctx.account_id, ctx.world, ctx.simulated, since, now)
    assert db.execute("SELECT count(*) AS n FROM outcomes")[0]["n"] >= 6


@pytest.mark.parametrize("since_h, until_h", [(-5, 50), (0, 10), (2.5, 7.5), (3, 3), (11, 40), (-1, -0.5)])
def test_covering_matches_the_store(db, since_h, until_h):
    with db.connection() as conn:
        queue.ensure_account(conn, "acct-cover", T0)
        for h in (0, 1, 3, 4.5, 8, 10):
            outcomes.record_follower_snapshot(conn, "acct-cover", _t(h), 100 + int(h), None, None, True)
        stored = outcomes.follower_counts_covering(conn, "acct-cover", True, _t(0) - timedelta(days=1), _t(30))
        assert collect.covering(stored, _t(since_h), _t(until_h)) == \
            outcomes.follower_counts_covering(conn, "acct-cover", True, _t(since_h), _t(until_h))


def test_collection_start_is_the_three_statements_in_one_round_trip(settings, db, clock):
    ctx = make_ctx(settings, db, clock)
    publish(ctx, 3)
    clock.advance(timedelta(hours=2))
    now, cutoffs = clock.now(), collect.pass_cutoffs(clock.now())
    with db.connection() as conn:
        awaiting = outcomes.posts_with_due_passes(conn, ctx.account_id, ctx.world, *cutoffs)
        pending = outcomes.has_unapplied_final_outcomes(conn, ctx.account_id, ctx.simulated)
    assert len(awaiting) == 3
    with db.autocommit() as conn:
        assert outcomes.collection_start(conn, ctx.account_id, ctx.world, now, 2000, 10, 3, *cutoffs) == \
            (True, awaiting, pending)
        # the sandbox's relaxed commit was that implicit transaction's alone: the pooled connection is back to
        # synchronous commits for whatever it does next
        assert conn.execute("SHOW synchronous_commit").fetchone()["synchronous_commit"] == "on"
        # the snapshot is written once per time, like record_follower_snapshot
        assert outcomes.collection_start(conn, ctx.account_id, ctx.world, now, 2000, 10, 3, *cutoffs)[0] is False
    assert db.execute("SELECT followers_count FROM follower_snapshots WHERE taken_at = %s", (now,)) == \
        [{"followers_count": 2000}]


def test_x_failing_mid_tick_keeps_the_batches_read_before(settings, db, clock, monkeypatch):
    """Batches are stored on a writer thread while the next is read: when X fails on the second batch, the
    first is still stored (as the one-after-the-other loop did) and the rest waits for the next tick."""
    monkeypatch.setattr(collect, "BATCH_SIZE", 2)
    ctx = make_ctx(settings, db, clock)
    publish(ctx, 6)
    clock.advance(timedelta(hours=1))
    ctx.sandbox.faults.push("GET /2/tweets", "none")           # the first lookup answers …
    ctx.sandbox.faults.push("GET /2/tweets", "server_error")   # … the second does not
    result = collect.tick(ctx)
    assert result.status == "skipped" and result.reason == "x_unavailable"
    assert result.detail["stored"] == 2 and result.detail["batches"] == 1 and len(outcome_rows(db)) == 2
    again = collect.tick(ctx)
    assert again.detail["stored"] == 4 and again.detail["batches"] == 2 and len(outcome_rows(db)) == 6


def test_batch_writer_stores_in_order_and_stops_at_the_first_failure():
    """The writer thread stores batches in the order given; after a failure it stores nothing more and the
    tick gets the error."""
    stored: list[int] = []

    def store(batch):
        if batch == 3:
            raise RuntimeError("database went away at batch 3")
        stored.append(batch)
        return 10

    writer = collect.BatchWriter(store, depth=1)
    try:
        with pytest.raises(RuntimeError, match="batch 3"):
            for b in range(6):
                writer.submit(b)
            writer.wait()
    finally:
        writer.close()
    assert stored == [0, 1, 2] and writer.stored == 30
    ok = collect.BatchWriter(lambda b: stored.append(b) or 1, depth=2)
    for b in range(10, 15):
        ok.submit(b)
    assert ok.wait() == 5 and stored[3:] == [10, 11, 12, 13, 14]
    ok.close()


def test_collection_starts_reads_for_each_account_what_its_own_collection_start_reads(settings, db, clock):
    accounts = [make_ctx(settings.replace(account_id=f"acct{i}"), db, clock, seed=40 + i) for i in (1, 2, 3)]
    for n, ctx in zip((3, 1, 2), accounts):
        publish(ctx, n, seed=n)
    clock.advance(timedelta(hours=2))
    now, cutoffs = clock.now(), collect.pass_cutoffs(clock.now())
    with db.connection() as conn:
        expected = [(outcomes.posts_with_due_passes(conn, c.account_id, c.world, *cutoffs),
                     outcomes.has_unapplied_final_outcomes(conn, c.account_id, c.simulated)) for c in accounts]
        # acct3 already has this instant's snapshot: it is not written twice
        outcomes.record_follower_snapshot(conn, "acct3", now, 7, None, None, True)
    assert [len(a) for a, _ in expected] == [3, 1, 2]
    starts = [outcomes.CollectionStart(c.account_id, c.world, 100 * i, i, None) for i, c in enumerate(accounts, 1)]
    with db.autocommit() as conn:
        got = outcomes.collection_starts(conn, starts, now, *cutoffs)
        assert conn.execute("SHOW synchronous_commit").fetchone()["synchronous_commit"] == "on"
    assert got == [(True, *expected[0]), (True, *expected[1]), (False, *expected[2])]
    assert db.execute("SELECT account_id, followers_count, following_count FROM follower_snapshots "
                      "WHERE taken_at = %s ORDER BY snapshot_id", (now,)) == [
        {"account_id": "acct3", "followers_count": 7, "following_count": None},
        {"account_id": "acct1", "followers_count": 100, "following_count": 1},
        {"account_id": "acct2", "followers_count": 200, "following_count": 2}]
    with db.autocommit() as conn, pytest.raises(ValueError, match=r"each account once.*collection_start for each"):
        outcomes.collection_starts(conn, [starts[0], starts[0]], now, *cutoffs)


def _collect_turns(ctxs, clock, together: bool) -> list:
    """Two collect turns (pass 1 due, then pass 2) of ``ctxs``: by ``tick_many`` or one ``tick`` after another."""
    out = []
    for hours in (2, 23):
        clock.advance(timedelta(hours=hours))
        results = collect.tick_many(ctxs) if together else [_result(lambda c=c: collect.tick(c)) for c in ctxs]
        out.append([(r.status, r.reason, r.detail) if not isinstance(r, Exception) else repr(r) for r in results])
    return out


def _result(run):
    try:
        return run()
    except Exception as exc:
        return exc


def test_tick_many_gives_each_account_what_its_own_tick_gives(settings, db, clock, pg):
    """Four accounts, one turn together against one tick after another on a second database: the same results and
    the same stored rows, with acct2's X failing once (503 on /2/users/me), acct3 rate limited and acct4 without
    analytics (follows by snapshot attribution)."""
    from xbotlib.clock import SimClock  # imported here: the second clock of the comparison
    from xbotlib.store.db import Database  # imported here: the second database of the comparison
    from xbotlib.store.ratelimits import record_rate_limit  # imported here: only this test writes a 429's reset

    start = clock.now()
    other = Database.from_url(pg.fresh_database(), pool_max=2)
    seen = {}
    try:
        for together, database, clk in ((True, db, clock), (False, other, SimClock(start))):
            ctxs = [make_ctx(settings.replace(account_id=f"acct{i}"), database, clk, seed=50 + i, analytics=i != 4)
                    for i in (1, 2, 3, 4)]
            for i, ctx in enumerate(ctxs, 1):
                publish(ctx, i + 1, seed=i)
            with database.connection() as conn:
                record_rate_limit(conn, "acct3", collect.LOOKUP_ENDPOINT, start + timedelta(hours=3))
            ctxs[1].sandbox.faults.push("GET /2/users/me", "server_error")
            results = _collect_turns(ctxs, clk, together)
            with database.connection() as conn:
                stored = {t: [{k: v for k, v in r.items() if k not in ("outcome_id", "snapshot_id", "decision_id")}
                              for r in conn.execute(f"SELECT * FROM {t} ORDER BY {order}").fetchall()]
                          for t, order in (("outcomes", "account_id, collected_at, collected_pass, impressions"),
                                           ("follower_snapshots", "account_id, taken_at"),
                                           ("x_rate_limits", "account_id, endpoint"))}
            seen[together] = (results, stored)
    finally:
        other.close()
    (first, second), stored = seen[True]
    assert seen[True] == seen[False]
    assert [r[:2] for r in first] == [("ok", None), ("skipped", "x_unavailable"), ("skipped", "rate_limited"),
                                      ("ok", None)]
    assert [r[:2] for r in second] == [("ok", None)] * 4   # acct2's X is back, acct3's limit has reset
    assert {r["follows_source"] for r in stored["outcomes"] if r["account_id"] == "acct4"} == {"snapshot_attribution"}
    assert len(stored["outcomes"]) == 2 * (2 + 3 + 4 + 5)   # both passes of every post (acct2's, acct3's from one read)
    assert [s["account_id"] for s in stored["follower_snapshots"]].count("acct2") == 1
