"""The admin API's second pass (issue #19): what it keeps between requests is exact, and what it reads less of
gives the same figures.

- ``account_write_counts`` (migration 0012) changes with every statement that writes a row of the account in
  outcomes, posted_decisions or follower_snapshots (COPY included), and only then;
- the outcomes-by-world counts and the growth model served from memory equal a fresh read after each kind of
  write, and when the window moves;
- the bounded predictor-version read shows exactly the versions the full list filtered in Python showed;
- both arm scopes in one read equal ``arms.load_arms`` per scope;
- a changed profile is read again (its niche, hours and sha), an unchanged one is not parsed again;
- a PATCH that changes nothing writes nothing; one that changes a setting stamps ``updated_at``;
- ``json_body`` sends the bytes FastAPI sends for the same model;
- ``lift_frame`` reads the texts and topics in the account's own niche.
"""
from __future__ import annotations

import dataclasses
from datetime import datetime, timedelta

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from xbotlib import views
from xbotlib.app.api.schemas import Experiment
from xbotlib.app.api.serving import json_body
from xbotlib.core.experiments import Assignment
from xbotlib.core.profile import load_profile
from xbotlib.store import arms as arm_store
from xbotlib.store import models, read_models, worlds
from xbotlib.store.accounts import save_profile
from xbotlib.store.db import Database, copy_rows
from xbotlib.store.experiments import lift_frame, list_experiments, record_assignments
from xbotlib.store.queue import Decision, insert_decision, record_posted, transition
from xbotlib.store.training_data import count_fresh_outcomes
from xbotlib.views import learning
from helpers import API_ACCOUNT, admin_client, seed_api_history

ACC = API_ACCOUNT


@pytest.fixture
def seeded(db, clock):
    return seed_api_history(db, clock)


def write_counts(db, account_id: str = ACC) -> dict:
    return {r["source"]: (r["writes"], r["xmin"]) for r in db.execute(
        "SELECT source, writes, xmin::text AS xmin FROM account_write_counts WHERE account_id = %s", (account_id,))}


def test_write_counts_change_with_every_write_of_the_account_and_only_then(seeded, clock):
    now = clock.now()
    before, other = write_counts(seeded), write_counts(seeded, "neighbour")
    assert set(before) == {"outcomes", "posted_decisions", "follower_snapshots"}  # the seed's COPY was counted

    def changed() -> set:
        nonlocal before
        after = write_counts(seeded)
        out = {s for s in after if after[s] != before.get(s)}
        before = after
        return out

    seeded.execute("INSERT INTO follower_snapshots (account_id, taken_at, followers_count, simulated) "
                   "VALUES (%s, %s, 5, true)", (ACC, now))
    assert changed() == {"follower_snapshots"}
    seeded.execute("UPDATE outcomes SET follows = follows + 1 WHERE outcome_id = "
                   "(SELECT max(outcome_id) FROM outcomes WHERE account_id = %s)", (ACC,))
    assert changed() == {"outcomes"}
    seeded.execute("UPDATE posted_decisions SET profile_visits = profile_visits WHERE account_id = 'nobody'")
    assert changed() == set()  # a statement that changed no row counts nothing
    seeded.execute("DELETE FROM follower_snapshots WHERE snapshot_id = "
                   "(SELECT max(snapshot_id) FROM follower_snapshots WHERE account_id = %s)", (ACC,))
    assert changed() == {"follower_snapshots"}
    with seeded.connection() as conn:
        copy_rows(conn, "follower_snapshots", ("account_id", "taken_at", "followers_count", "simulated"),
                  [(ACC, now, 6, True), (ACC, now, 7, True)])
    assert changed() == {"follower_snapshots"}
    seeded.execute("UPDATE posted_decisions SET world = 'live' WHERE decision_id = "
                   "(SELECT decision_id FROM posted_decisions WHERE account_id = %s LIMIT 1)", (ACC,))
    assert changed() == {"posted_decisions"}
    assert write_counts(seeded, "neighbour") == other  # another account's writes are its own


def served_status(client, world="sandbox") -> dict:
    r = client.get("/api/learning/status", params={"account_id": ACC, "world": world})
    assert r.status_code == 200, r.text
    return r.json()


def fresh_outcomes_by_world(db, now) -> list[dict]:
    with db.connection() as conn:
        return [{k: v for k, v in r.items()} for r in
                worlds.outcomes_by_world(conn, ACC, now - timedelta(days=views.OUTCOMES_WINDOW_DAYS), now)]


def test_outcomes_by_world_from_memory_equal_a_fresh_count_after_each_write(seeded, settings, clock):
    client = admin_client(settings, seeded, clock)
    now = datetime.fromisoformat(served_status(client)["now"])  # the sandbox's own clock: its latest event

    def check() -> list[dict]:
        served = served_status(client)["outcomes_by_world"]
        assert served == fresh_outcomes_by_world(seeded, now)
        return served

    first = check()
    assert check() == first and sum(r["outcomes"] for r in first) > 0
    # an outcome leaves the window (re-collected long ago) and one of its posts moves to the other world
    seeded.execute("UPDATE outcomes SET collected_at = collected_at - interval '200 days' WHERE outcome_id = "
                   "(SELECT min(outcome_id) FROM outcomes WHERE account_id = %s AND collected_at > %s)",
                   (ACC, now - timedelta(days=30)))
    moved = check()
    assert moved != first
    seeded.execute("UPDATE posted_decisions SET world = 'live' WHERE decision_id = "
                   "(SELECT decision_id FROM outcomes WHERE account_id = %s AND collected_at <= %s "
                   "ORDER BY collected_at DESC LIMIT 1)", (ACC, now))
    assert {r["world"] for r in check()} == {"live", "sandbox"}


def test_the_outcomes_window_moves_with_now_without_a_write(seeded, settings, clock):
    """No write, a later 'now': the window's edges change the fingerprint, so the count is not the old one."""
    with seeded.connection() as conn:
        now = clock.now()
        for later in (now, now + timedelta(days=20), now + timedelta(days=20), now + timedelta(days=60)):
            since = later - timedelta(days=views.OUTCOMES_WINDOW_DAYS)
            assert learning.outcomes_by_world(conn, ACC, since, later) == worlds.outcomes_by_world(conn, ACC, since,
                                                                                                     later)


def python_filtered_versions(conn, acc, now, limit):
    """What views.learning_status showed before the bounded read: every version, filtered in Python."""
    versions = [m for m in models.list_versions(conn, acc) if m["trained_at"] <= now]
    active = sorted((m for m in versions if m["is_active"]), key=lambda m: (m["kind"], m["world"]))
    served = {(m["kind"], m["world"]): m["version"] for m in active}
    rejected = [m for m in sorted(versions, key=lambda m: m["trained_at"], reverse=True)
                if m["status"] == "rejected" and m["version"] > served.get((m["kind"], m["world"]), 0)]
    return active, rejected[:limit]


SHOWN = ("version", "predictor_key", "kind", "world", "status", "rejected_reason", "trained_at", "n_samples",
         "cv_score", "baseline_score", "trained_through", "algorithm")


def test_the_bounded_version_read_shows_what_filtering_every_version_showed(seeded, clock):
    now = clock.now()
    rows = seeded.execute("SELECT kind, max(version) AS v FROM predictors WHERE account_id = %s GROUP BY kind",
                          (ACC,))
    top = {r["kind"]: r["v"] for r in rows}
    # more rejected versions than are shown, after the active one; one rejected in the other world; one trained
    # after 'now' (not shown); two versions trained at the same instant (the order's ties)
    for i in range(14):
        kind = ("content", "timing")[i % 2]
        top[kind] += 1
        trained = now - timedelta(hours=30 - i // 2) if i < 12 else now + timedelta(hours=i)
        seeded.execute(
            """INSERT INTO predictors (account_id, kind, version, predictor_key, algorithm, world, n_samples,
                                       trained_at, rejected_reason)
               VALUES (%s, %s, %s, %s, 'ridge', %s, 10, %s, 'no better than the baseline')""",
            (ACC, kind, top[kind], f"predictor:{kind}:v{top[kind]}", "live" if i == 3 else "sandbox", trained))
    with seeded.connection() as conn:
        for at in (now, now - timedelta(days=10), now + timedelta(days=1)):
            for limit in (10, 3, 100):
                want = python_filtered_versions(conn, ACC, at, limit)
                got = read_models.served_and_rejected_versions(conn, ACC, at, limit)
                assert [[{k: r[k] for k in SHOWN} for r in part] for part in got] == \
                       [[{k: r[k] for k in SHOWN} for r in part] for part in want]
                # the learning status reads them within its one statement: as JSON, trained_at parsed back
                reads = read_models.learning_reads(conn, ACC, "sandbox", at, at - timedelta(days=90), limit,
                                                   arm_store.SCOPES)
                assert (reads["active"], reads["rejected"]) == got
        assert len(read_models.served_and_rejected_versions(conn, ACC, now, 10)[1]) == 10


def test_both_arm_scopes_in_one_read_equal_each_scope_read_alone(seeded):
    with seeded.connection() as conn:
        for acc, world in ((ACC, "sandbox"), (ACC, "live"), ("neighbour", "sandbox"), ("nobody", "sandbox")):
            alone = {s: a for s in arm_store.SCOPES if (a := arm_store.load_arms(conn, acc, world, s))}
            assert read_models.arms_by_scope(conn, acc, world, arm_store.SCOPES) == alone
        assert read_models.arms_by_scope(conn, ACC, "sandbox", arm_store.SCOPES)  # the seed has arms


def test_a_changed_profile_is_read_again_and_an_unchanged_one_is_not_parsed_again(db, settings, clock):
    now = clock.now()
    cooking = load_profile("accounts/cooking.toml")
    with db.connection() as conn:
        save_profile(conn, cooking, now)
    with db.connection() as conn:
        vocabulary, hours, sha = learning.account_niche(conn, settings, cooking.id)
        assert (vocabulary, hours, sha) == (cooking.vocabulary(), list(cooking.posting_hours), cooking.sha256)
        entry = learning.PROFILES[(cooking.id, read_models.profile_version(conn, cooking.id))]
        assert learning.account_niche(conn, settings, cooking.id)[0] is entry[0]  # served, not parsed again
    later = dataclasses.replace(cooking, posting_hours=(9, 13, 18))
    with db.connection() as conn:
        save_profile(conn, later, now)
    with db.connection() as conn:
        vocabulary, hours, sha = learning.account_niche(conn, settings, cooking.id)
        assert (hours, sha) == ([9, 13, 18], later.sha256) and sha != cooking.sha256
        # no stored profile: the built-in niche and the settings' hours
        assert learning.account_niche(conn, settings, "nobody") == (learning.vocab.DEFAULT,
                                                                    list(settings.posting_hours), None)


def experiments_rows(db) -> list[dict]:
    return db.execute("SELECT experiment_id, enabled, allocation, updated_at, xmin::text AS xmin FROM experiments "
                      "WHERE account_id = %s ORDER BY experiment_id", (ACC,))


def test_a_patch_that_changes_nothing_writes_nothing(seeded, settings, clock):
    client = admin_client(settings, seeded, clock)
    r = client.patch("/api/experiments/question_cta", params={"account_id": ACC}, json={"allocation": 0.3})
    assert r.status_code == 200, r.text
    first = experiments_rows(seeded)
    clock.advance(timedelta(minutes=5))
    again = client.patch("/api/experiments/question_cta", params={"account_id": ACC}, json={"allocation": 0.3})
    assert again.json() == r.json()
    assert experiments_rows(seeded) == first  # same values: not rewritten, updated_at kept (xmin too)
    changed = client.patch("/api/experiments/question_cta", params={"account_id": ACC}, json={"allocation": 0.35})
    assert changed.json()["allocation"] == 0.35 and changed.json()["updated_at"] != r.json()["updated_at"]
    assert datetime.fromisoformat(changed.json()["updated_at"]) == clock.now()


def test_json_body_sends_the_bytes_fastapi_sends(seeded, settings, clock):
    """The routes build their JSON themselves (``json_body``); FastAPI, given the same model as the route's
    return value, sends the same bytes."""
    with seeded.connection() as conn:
        account = views.account(conn, ACC)
        now = views.world_now(conn, ACC, "sandbox", clock.now())
        models_ = {"status": views.learning_status(conn, settings, account, "sandbox", now),
                   "growth": views.growth(conn, account, "sandbox", now),
                   "metrics": views.metrics(conn, settings, ACC, "sandbox", clock.now()),
                   "experiments": [Experiment(account_id=ACC, experiment_id=r["experiment_id"], enabled=r["enabled"],
                                              allocation=r["allocation"], applies_to=r["applies_to"],
                                              description=r["description"],
                                              assignments={"control": r["n_control"], "treatment": r["n_treatment"]},
                                              updated_at=r["updated_at"])
                                   for r in list_experiments(conn, ACC)]}
    app = FastAPI()
    for name, model in models_.items():
        app.add_api_route(f"/{name}", lambda m=model: m, response_model=list[Experiment] if name == "experiments"
                          else type(model))
    client = TestClient(app)
    for name, model in models_.items():
        r = client.get(f"/{name}")
        assert r.status_code == 200
        ours = json_body(model)
        assert ours.body == r.content and ours.media_type == r.headers["content-type"].split(";")[0]


def test_lift_frame_reads_the_accounts_own_topics(db, clock):
    """A cooking account's posts: topic covariates are its topics (baking, ...), not the built-in niche's."""
    now = clock.now()
    cooking = load_profile("accounts/cooking.toml")
    acc = cooking.id
    texts = ["Did you know a cold oven gives sourdough a better crust?", "Why does a one-pot weeknight dinner work?",
             "Ferment cabbage into kimchi with a simple brine.", "Sharpen your knife before you dice onions."]
    topics = ["baking", "weeknight", "fermentation", "knife_skills"]
    with db.connection() as conn:
        save_profile(conn, cooking, now - timedelta(days=1))
        conn.execute("INSERT INTO follower_snapshots (account_id, taken_at, followers_count, simulated) "
                     "VALUES (%s, %s, 300, true)", (acc, now - timedelta(days=1)))
        for i in range(16):
            d = Decision(account_id=acc, content=texts[i % 4], generation_source="template", decision_type="post",
                         topic=topics[i % 4], status="queued", scheduled_at=now)
            did = insert_decision(conn, d, now)
            record_assignments(conn, acc, did, {"hashtag_1": Assignment("treatment" if i % 2 else "control", 0.5)},
                               now)
            transition(conn, did, "posting", now, expected="queued")
            record_posted(conn, did, acc, f"tw-{i}", now + timedelta(hours=i), "sandbox", now)
            conn.execute("INSERT INTO outcomes (decision_id, account_id, collected_pass, simulated, impressions, "
                         "follows, fpki, reward_composite, collected_at) VALUES (%s, %s, 2, true, 1000, %s, %s, %s, %s)",
                         (did, acc, i % 3, i % 3, 0.1 * i, now + timedelta(hours=24 + i)))
        df = lift_frame(conn, acc, "hashtag_1", "sandbox")
    assert len(df) == 16
    topic_columns = sorted(c for c in df.columns if c.startswith("topic_"))
    assert topic_columns == sorted(f"topic_{t}" for t in cooking.vocabulary().topics)
    assert df["topic_baking"].sum() == 4 and df["topic_knife_skills"].sum() == 4
    assert df.attrs["vocabulary"] == cooking.vocabulary()
    assert {"topic_baking", "topic_weeknight"} <= set(df.attrs["covariates"])


def test_growth_from_memory_equals_a_fresh_read_as_now_moves_and_data_changes(seeded, clock):
    from xbotlib.views import followers
    now = clock.now()
    with seeded.connection() as conn:
        account = views.account(conn, ACC)

        def same(at, world="sandbox") -> dict:
            served = followers.growth(conn, account, world, at).model_dump(mode="json")
            assert served == followers.read_growth(conn, account, world, at).model_dump(mode="json")
            return served

        first = same(now)
        assert first["followers_now"] is not None and first["top_posts"] and first["daily"]
        # now moves (minutes, hours, past midnight, days): each window's edges move with it
        for delta in (timedelta(minutes=7), timedelta(hours=5), timedelta(hours=17), timedelta(days=3),
                      timedelta(days=-2), timedelta(days=45)):
            same(now + delta)
        same(now, "live")
        # writes: a late snapshot, a corrected one, a re-collected outcome, a post's tweet id
        conn.execute("INSERT INTO follower_snapshots (account_id, taken_at, followers_count, simulated) "
                     "VALUES (%s, %s, 77777, true)", (ACC, now - timedelta(days=1, hours=3)))
        same(now)
        conn.execute("UPDATE follower_snapshots SET followers_count = 77777 WHERE snapshot_id = "
                     "(SELECT snapshot_id FROM follower_snapshots WHERE account_id = %s AND simulated "
                     "AND taken_at <= %s ORDER BY taken_at DESC LIMIT 1)", (ACC, now))
        assert same(now)["followers_now"] == 77777 != first["followers_now"]
        top = first["top_posts"][0]
        conn.execute("UPDATE outcomes SET follows = follows + 1000 WHERE decision_id = %s AND collected_pass = 2",
                     (top["decision_id"],))
        conn.execute("UPDATE posted_decisions SET tweet_id = 'renamed-1' WHERE decision_id = %s",
                     (first["top_posts"][1]["decision_id"],))
        after = same(now)
        assert after["top_posts"][0]["follows"] == top["follows"] + 1000
        assert after["top_posts"][1]["tweet_id"] == "renamed-1"


def test_the_learning_fingerprints_in_one_statement_equal_each_read_alone(seeded, clock):
    now = clock.now()
    since = now - timedelta(days=views.OUTCOMES_WINDOW_DAYS)
    with seeded.connection() as conn:
        for acc, world in ((ACC, "sandbox"), (ACC, "live"), ("nobody", "sandbox")):
            both = read_models.learning_fingerprints(conn, acc, world, now, since)
            assert both == {"profile": read_models.profile_version(conn, acc),
                            "growth_model": read_models.growth_model_fingerprint(conn, acc, world, now),
                            "outcomes": read_models.outcomes_window_fingerprint(conn, acc, since, now)}
        for world in ("sandbox", "live"):
            last, fresh = read_models.last_version_and_fresh(conn, ACC, world)
            assert last == models.last_version(conn, ACC, world)
            assert fresh == count_fresh_outcomes(conn, ACC, world, last.trained_through if last else None)
            account, at = views.account_at(conn, ACC, world, now)
            assert (account, at) == (views.account(conn, ACC), views.world_now(conn, ACC, world, now))
        assert views.account_at(conn, "nobody", "sandbox", now) == (None, now)
        for acc, world, limit in ((ACC, "sandbox", 10), (ACC, "live", 10), (ACC, "sandbox", 1), ("nobody", "live", 10)):
            reads = read_models.learning_reads(conn, acc, world, now, since, limit, arm_store.SCOPES)
            active, rejected = read_models.served_and_rejected_versions(conn, acc, now, limit)
            assert reads == {"active": active, "rejected": rejected,
                             "arms": read_models.arms_by_scope(conn, acc, world, arm_store.SCOPES),
                             "last": models.last_version(conn, acc, world),
                             "fresh": read_models.last_version_and_fresh(conn, acc, world)[1],
                             "fingerprints": read_models.learning_fingerprints(conn, acc, world, now, since)}
        assert reads_of_seed_have(read_models.learning_reads(conn, ACC, "sandbox", now, since, 10, arm_store.SCOPES))


def reads_of_seed_have(reads: dict) -> bool:
    """The seed gives the account active versions, arms and a content model: the comparison above is not of empties
    (rejected versions: ``test_the_bounded_version_read_shows_what_filtering_every_version_showed``)."""
    return bool(reads["active"]) and bool(reads["arms"]) and reads["last"] is not None


def test_a_read_that_fails_gives_the_pool_back_a_connection_that_can_write(db_url, seeded, settings, clock):
    """The read routes set their connection read-only for their snapshot: after any of them, a 404 included,
    the next request on that (only) connection can write again."""
    with Database.from_url(db_url, pool_max=1) as one:
        client = admin_client(settings, one, clock)
        assert client.get("/api/growth", params={"account_id": "nobody"}).status_code == 404
        assert client.get("/api/learning/status", params={"account_id": ACC}).status_code == 200
        r = client.patch("/api/experiments/question_cta", params={"account_id": ACC}, json={"allocation": 0.45})
        assert r.status_code == 200, r.text
        assert client.get("/api/experiments/nope/lift", params={"account_id": ACC}).status_code == 404
        r = client.patch("/api/experiments/question_cta", params={"account_id": ACC}, json={"enabled": True})
        assert r.status_code == 200, r.text
        with one.connection() as conn:
            assert (conn.isolation_level, conn.read_only) == (None, None)
    assert [(e["enabled"], e["allocation"]) for e in experiments_rows(seeded)
            if e["experiment_id"] == "question_cta"] == [(True, 0.45)]


def test_the_read_routes_keep_their_statements_prepared_across_requests(db_url, seeded, settings, clock):
    """psycopg prepares a statement run 5 times on a connection; ending each read snapshot with a rollback would
    deallocate them all, and PostgreSQL would plan every query of every request again."""
    with Database.from_url(db_url, pool_max=1) as one:
        client = admin_client(settings, one, clock)
        for _ in range(8):
            for path in ("/api/experiments", "/api/metrics", "/api/growth"):
                assert client.get(path, params={"account_id": ACC}).status_code == 200
        with one.connection() as conn:
            prepared = conn.execute("SELECT count(*) AS n FROM pg_prepared_statements").fetchone()["n"]
    # the routes' reads, each prepared once and kept: the experiments' account and list (in a snapshot), the metrics'
    # one statement, the growth's one statement
    assert prepared >= 4
