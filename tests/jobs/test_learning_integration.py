"""End to end on the real database and the in-process sandbox X: queue -> post -> collect at T+1h
and T+24h -> bandit arms -> learner, every X call through the real XClient over the ASGI transport."""
from __future__ import annotations

import logging
from datetime import timedelta


from helpers import queue_template_posts

from xbotlib.core import vocab
from xbotlib.store.arms import load_arms
from xbotlib.jobs.runner import run_job
from xbotlib.jobs import collect, learn, post
from xbotlib.store.outcomes import MODEL_WINDOW_DAYS, post_outcomes
from xbotlib.jobs.context import build_context
from xbotlib.sim.xserver import SandboxX
from xbotlib.clients.generation import TemplateGenerator

N_POSTS = 6


def test_post_collect_bandit_learn(settings, db, clock, caplog):
    caplog.set_level(logging.INFO, logger="xbot")
    settings = settings.replace(posts_per_hour_cap=20, posts_per_day_cap=50)
    ctx = build_context(settings, db, clock, sandbox=SandboxX(clock=clock, seed=21), seed=21,
                        generator=TemplateGenerator(21))
    assert ctx.world == "sandbox" and ctx.simulated
    ids = queue_template_posts(ctx, N_POSTS, seed=21)
    assert run_job("post", ctx, post.tick).detail["sent"] == N_POSTS
    assert len(ctx.sandbox.tweets) == N_POSTS

    # nothing is due before T+1h
    clock.advance(timedelta(minutes=30))
    assert run_job("collect", ctx, collect.tick).detail["stored"] == 0
    clock.advance(timedelta(minutes=30))
    first = run_job("collect", ctx, collect.tick)
    assert first.detail["stored"] == N_POSTS and first.detail["bandit_updates"] == 0
    pass1 = {str(r["decision_id"]): r for r in db.execute("SELECT * FROM outcomes WHERE collected_pass = 1")}
    assert set(pass1) == set(ids)
    with db.connection() as conn:
        assert load_arms(conn, ctx.account_id, "sandbox", "content") == {}   # pass 1 does not feed the bandit

    clock.advance(timedelta(hours=23))
    second = run_job("collect", ctx, collect.tick)
    assert second.detail["stored"] == N_POSTS and second.detail["bandit_updates"] == N_POSTS
    pass2 = {str(r["decision_id"]): r for r in db.execute("SELECT * FROM outcomes WHERE collected_pass = 2")}
    assert set(pass2) == set(ids)

    for d in ids:
        a, b = pass1[d], pass2[d]
        assert a["simulated"] is True and b["simulated"] is True
        assert a["follows_source"] == b["follows_source"] == "analytics"
        assert 0 < a["impressions"] <= b["impressions"]
        for k in ("likes", "retweets", "replies", "quotes", "bookmarks", "profile_visits", "follows"):
            assert a[k] <= b[k], k
        assert b["er"] == (b["likes"] + b["retweets"] + b["replies"] + b["quotes"] + b["bookmarks"]) / b["impressions"]
        assert b["sample_weight"] == min(1.0, 1000 / b["impressions"])
    assert sum(r["likes"] + r["follows"] for r in pass2.values()) > 0          # not all zeros
    assert len({r["impressions"] for r in pass2.values()}) > 1
    assert len([m for m in caplog.messages if m.startswith("[ANALYTICS_COLLECTOR] stored outcome")]) == 2 * N_POSTS

    with db.connection() as conn:
        content = load_arms(conn, ctx.account_id, "sandbox", "content")
        timing = load_arms(conn, ctx.account_id, "sandbox", "timing")
    assert sum(s.pulls for s in content.values()) == N_POSTS
    assert set(content) == set(vocab.HOOK_PATTERNS[:N_POSTS])
    assert sum(s.pulls for s in timing.values()) == N_POSTS
    assert run_job("collect", ctx, collect.tick).detail["bandit_updates"] == 0   # applied once only

    trained = run_job("learn", ctx, learn.tick)
    assert trained.status == "ok" and trained.detail["version"] == 1
    # version 1 is trained on a handful of posts: served only if it beats the mean, else stored as rejected
    assert any(m.startswith(("[LEARN_JOB] coeffs_updated=v1", "[LEARN_JOB] rejected version=v1"))
               for m in caplog.messages)
    runs = db.execute("SELECT job, status FROM job_runs ORDER BY run_id")
    assert [r["job"] for r in runs] == ["post", "collect", "collect", "collect", "collect", "learn"]
    assert {r["status"] for r in runs} == {"ok"}


def test_plan_reads_the_growth_models_outcomes_from_what_the_collector_stored(settings, db, clock):
    """post_outcomes: one row per post with a pass-2 outcome, of this world only, with its arms, its final
    visits and follows, and the follower count of the last snapshot before it went out."""
    settings = settings.replace(posts_per_hour_cap=20, posts_per_day_cap=50)
    ctx = build_context(settings, db, clock, sandbox=SandboxX(clock=clock, seed=22), seed=22,
                        generator=TemplateGenerator(22))
    ids = queue_template_posts(ctx, N_POSTS, seed=22)
    run_job("post", ctx, post.tick)
    with db.connection() as conn:
        assert post_outcomes(conn, ctx.account_id, "sandbox", clock.now()) == []   # nothing final yet
    clock.advance(timedelta(hours=1))
    run_job("collect", ctx, collect.tick)
    with db.connection() as conn:
        assert post_outcomes(conn, ctx.account_id, "sandbox", clock.now()) == []   # pass 1 is not final
    clock.advance(timedelta(hours=24))
    run_job("collect", ctx, collect.tick)
    with db.connection() as conn:
        rows = post_outcomes(conn, ctx.account_id, "sandbox", clock.now())
        assert post_outcomes(conn, ctx.account_id, "live", clock.now()) == []      # worlds never mix
        final = conn.execute(
            """SELECT cm.hook_pattern, cm.topic, cm.timing_arm, o.profile_visits, o.follows
                 FROM outcomes o JOIN content_metadata cm USING (decision_id)
                WHERE o.collected_pass = 2 ORDER BY o.decision_id""").fetchall()
        first_snapshot = conn.execute("SELECT followers_count FROM follower_snapshots ORDER BY taken_at LIMIT 1"
                                      ).fetchone()["followers_count"]
    assert len(rows) == len(ids) == N_POSTS
    got = sorted((r.hook, r.topic, r.hour, r.profile_visits, r.follows) for r in rows)
    want = sorted((f["hook_pattern"], f["topic"], int(f["timing_arm"]), float(f["profile_visits"]), float(f["follows"]))
                  for f in final)
    assert got == want
    assert sum(r.profile_visits for r in rows) > 0
    # no snapshot precedes these posts (the first collect takes one): each gets the account's first snapshot
    assert {r.followers for r in rows} == {float(first_snapshot)}
    # a window that ends before the posts: nothing (the model forgets posts older than its window)
    with db.connection() as conn:
        later = clock.now() + timedelta(days=MODEL_WINDOW_DAYS + 1)
        assert post_outcomes(conn, ctx.account_id, "sandbox", later) == []
