"""The admin API's routes in one statement each (issue #19, fifth pass): the figures are those of the separate
reads they replace, a write shows on the next request, and a route sends one statement and no BEGIN or COMMIT.

- ``views.metrics`` (``read_models.metrics_reads``) equals the account, its "now" and the seven store reads it
  replaced, for stored and unknown accounts, both worlds, several wall clocks and a ledger with every status;
- the learning status's account and "now" read inside ``learning_reads`` equal ``views.account_at`` and the reads
  after it; what it does not read is served from memory only when held for the statement's fingerprints, else it is
  read again in one snapshot;
- after a write of each kind the next request shows it (nothing is served from a stale cache);
- the Prometheus text kept per figures is the text written afresh, and follows a changed figure;
- the wire: libpq's trace of the connection shows the statements each route sends.
"""
from __future__ import annotations

import json
import uuid
from datetime import timedelta

import pytest

from xbotlib import views
from xbotlib.app.api import prometheus
from xbotlib.app.api.auth import FailureThrottle
from xbotlib.app.api.prometheus import AuthCollector
from xbotlib.store import arms as arm_store
from xbotlib.store import gates, ledger, outcomes, read_models, runs
from xbotlib.store.db import Database
from xbotlib.views import learning
from xbotlib.views.followers import final_outcomes_7d, followers_now
from helpers import API_ACCOUNT, admin_client, seed_api_history

ACC = API_ACCOUNT


@pytest.fixture
def seeded(db, clock):
    return seed_api_history(db, clock)


def separate_reads(conn, settings, account_id: str, world: str, wall_now) -> dict | None:
    """/api/metrics as the API read it before the fifth pass: the account and its now, then one read per figure."""
    account, now = views.account_at(conn, account_id, world, wall_now)
    if account is None:
        return None
    simulated, today = world != "live", views.day_start(now)
    latest = followers_now(conn, account_id, simulated, now)
    depth = read_models.open_queue_depth(conn, account_id, views.QUEUE_STATUSES)
    d = ledger.ledger_day(conn, account_id, today.date())
    budget = settings.openai_daily_budget_usd
    return dict(
        account_id=account_id, world=world, simulated=simulated, now=now,
        followers_today=latest["followers_count"] if latest else None,
        fpki_avg_7d=final_outcomes_7d(conn, account_id, simulated, now)["fpki"],
        posts_today=outcomes.count_posts(conn, account_id, world, today, now),
        queue_depth={s: depth.get(s, 0) for s in views.QUEUE_STATUSES},
        gate_rejections_24h=gates.gate_rejection_counts(conn, account_id, now - timedelta(hours=24), now),
        openai=dict(budget_day=today.date(), spent_usd=d.settled_usd, reserved_usd=d.reserved_usd,
                    budget_usd=budget, remaining_usd=budget - d.settled_usd - d.reserved_usd,
                    calls_today=d.total_calls, backoffs_today=d.rate_limit_refunds, circuit_open=d.circuit_open),
        jobs=runs.last_job_runs(conn, account_id, views.JOBS, now))


def add_ledger_row(db, account_id: str, day, status: str, error: str | None = None) -> None:
    db.execute("""INSERT INTO llm_ledger (call_id, account_id, budget_day, model, purpose, status, reserved_usd,
                                          cost_usd, error, created_at)
                  VALUES (%s, %s, %s, 'm', 'test', %s, 0.125, %s, %s, now())""",
               (str(uuid.uuid4()), account_id, day, status, 0.0625 if status == "settled" else 0, error))


def test_metrics_in_one_statement_equal_the_separate_reads(seeded, settings, clock):
    now = clock.now()
    today = views.day_start(now).date()
    # every ledger status today (the circuit open, a refund for a rate limit and one for something else), a run
    # of no account, a gate rejection just inside the 24 h window and one just outside it
    for status, error in (("quota_exhausted", "insufficient_quota"), ("refunded", "429 rate_limit_exceeded"),
                          ("refunded", "timeout"), ("settled", None), ("reserved", None)):
        add_ledger_row(seeded, ACC, today, status, error)
    seeded.execute("INSERT INTO job_runs (job, account_id, status, started_at, finished_at) "
                   "VALUES ('learn', NULL, 'failed', %s, %s)", (now - timedelta(minutes=1), now))
    for at in (now - timedelta(hours=24), now - timedelta(hours=23, minutes=59)):
        seeded.execute("INSERT INTO gate_rejections (account_id, gate, reason, rejected_at) "
                       "VALUES (%s, 'edge', 'test', %s)", (ACC, at))
    compared = 0
    with seeded.connection() as conn:
        for acc in (ACC, "neighbour", "nobody"):
            for world in ("sandbox", "live"):
                for wall in (now, now + timedelta(hours=5), now - timedelta(days=3, hours=7), now + timedelta(days=2)):
                    want = separate_reads(conn, settings, acc, world, wall)
                    got = views.metrics(conn, settings, acc, world, wall)
                    assert (got is None) == (want is None)
                    if got is not None:
                        # a mean of floats in the order its plan reads the rows: equal to the last bits or so
                        got, fpki = got.model_dump(), want.pop("fpki_avg_7d")
                        assert got.pop("fpki_avg_7d") == (None if fpki is None else pytest.approx(fpki, rel=1e-12))
                        assert got == want
                    compared += got is not None
        shown = views.metrics(conn, settings, ACC, "sandbox", now)
    assert compared == 16
    # the comparison is not of empties: the seeded account has figures in every part
    assert shown.followers_today and shown.fpki_avg_7d and shown.posts_today is not None
    assert shown.openai.circuit_open and shown.openai.backoffs_today >= 1 and shown.openai.calls_today >= 5
    assert shown.gate_rejections_24h.get("edge") == 1 and any(j.started_at for j in shown.jobs)
    assert sum(shown.queue_depth.values()) > 0


def test_metrics_reads_refuses_unknown_statuses_and_job_names(seeded, clock):
    with seeded.connection() as conn:
        for statuses, jobs in ((("sent",), views.JOBS), (views.QUEUE_STATUSES, ("plan; DROP",)), ((), views.JOBS)):
            with pytest.raises(ValueError, match="metrics_reads needs known statuses"):
                read_models.metrics_reads(conn, ACC, "sandbox", clock.now(), statuses, jobs)


@pytest.fixture
def client(settings, seeded, clock):
    return admin_client(settings, seeded, clock)


def metrics_of(client, world="sandbox") -> dict:
    r = client.get("/api/metrics", params={"account_id": ACC, "world": world})
    assert r.status_code == 200, r.text
    return r.json()


def test_a_write_shows_on_the_next_metrics_request(client, seeded, clock):
    first = metrics_of(client)
    now = clock.now()
    seeded.execute("INSERT INTO gate_rejections (account_id, gate, reason, rejected_at) VALUES (%s, 'new_gate', 't', %s)",
                   (ACC, now - timedelta(minutes=3)))
    add_ledger_row(seeded, ACC, views.day_start(now).date(), "quota_exhausted", "insufficient_quota")
    seeded.execute("INSERT INTO job_runs (job, account_id, status, started_at, finished_at, error) "
                   "VALUES ('plan', %s, 'failed', %s, %s, 'written just now')",
                   (ACC, now + timedelta(seconds=30), now + timedelta(seconds=40)))
    # a snapshot a minute later moves the sandbox's clock (its latest event) past the run
    seeded.execute("INSERT INTO follower_snapshots (account_id, taken_at, followers_count, simulated) "
                   "VALUES (%s, %s, 99999, true)", (ACC, now + timedelta(minutes=1)))
    after = metrics_of(client)
    assert after["gate_rejections_24h"]["new_gate"] == 1 and "new_gate" not in first["gate_rejections_24h"]
    assert after["openai"]["circuit_open"] and after["openai"]["calls_today"] == first["openai"]["calls_today"] + 1
    assert next(j for j in after["jobs"] if j["job"] == "plan")["error"] == "written just now"
    assert after["followers_today"] == 99999 != first["followers_today"]
    assert after["now"] != first["now"]


def messages_sent(db_url, settings, clock, tmp_path, path: str) -> list[str]:
    """The messages the 7th request of ``path`` sends to PostgreSQL (its statements prepared by then), by libpq's
    own trace of the pool's only connection: ``Query`` (a simple query: BEGIN, COMMIT, ...), ``Parse``, ``Bind``,
    ``Sync`` (the end of one extended-protocol round trip), ..."""
    trace = tmp_path / "pq.trace"
    with Database.from_url(db_url, pool_max=1) as one:
        client = admin_client(settings, one, clock)
        for _ in range(6):
            assert client.get(path, params={"account_id": ACC}).status_code == 200
        with trace.open("w") as f:
            with one.connection() as conn:
                conn.pgconn.trace(f.fileno())
            try:
                assert client.get(path, params={"account_id": ACC}).status_code == 200
            finally:
                with one.connection() as conn:
                    conn.pgconn.untrace()
    # each line: time, F (frontend) or B (backend), length, message type, contents
    return [f[3] for line in trace.read_text().splitlines() if len(f := line.split("\t")) > 3 and f[1] == "F"]


@pytest.mark.parametrize("path, round_trips", [("/api/metrics", 1), ("/metrics", 1), ("/api/growth", 1)])
def test_a_route_is_its_round_trips_and_no_transaction(db_url, seeded, settings, clock, tmp_path, path, round_trips):
    sent = messages_sent(db_url, settings, clock, tmp_path, path)
    assert "Query" not in sent, sent  # no BEGIN, COMMIT or other simple query
    assert sent.count("Sync") == round_trips and sent.count("Bind") == round_trips, sent


def test_the_learning_reads_with_the_account_equal_account_at_and_the_reads_after_it(seeded, clock):
    now = clock.now()
    window = timedelta(days=views.OUTCOMES_WINDOW_DAYS)
    with seeded.connection() as conn:
        for acc in (ACC, "neighbour", "nobody"):
            for world in ("sandbox", "live"):
                for wall in (now, now + timedelta(hours=5), now - timedelta(days=20, hours=3)):
                    account, at = views.account_at(conn, acc, world, wall)
                    row = read_models.account_learning_row(conn, acc, world, wall, window, 10, arm_store.SCOPES)
                    if account is None:
                        assert row is None
                        continue
                    want = read_models.learning_reads(conn, acc, world, at, at - window, 10, arm_store.SCOPES)
                    assert row["created_at"] == account["created_at"]
                    latest = row["latest"]
                    assert (latest or wall) == at if world == "sandbox" else latest is None
                    assert read_models.learning_result(row, arm_store.SCOPES) == want


def test_learning_status_at_is_learning_status_at_the_accounts_now(seeded, settings, clock):
    now = clock.now()
    with seeded.connection() as conn:
        for world in ("sandbox", "live"):
            account, at = views.account_at(conn, ACC, world, now)
            want = views.learning_status(conn, settings, account, world, at, at + timedelta(hours=1))
            got = views.learning_status_at(conn, settings, ACC, world, now, lambda n: n + timedelta(hours=1))
            assert got.model_dump() == want.model_dump()
        assert views.learning_status_at(conn, settings, "nobody", "sandbox", now) is None


def test_cached_only_reads_nothing_more_and_says_so_when_a_part_is_not_in_memory(seeded, settings, clock):
    now = clock.now()
    with seeded.connection() as conn:
        learning.GROWTH_MODELS._views.clear()
        assert views.learning_status_at(conn, settings, ACC, "sandbox", now, cached_only=True) is views.NOT_IN_MEMORY
        full = views.learning_status_at(conn, settings, ACC, "sandbox", now)  # reads the misses, keeps them
        assert views.learning_status_at(conn, settings, ACC, "sandbox", now, cached_only=True) == full
        # a new outcome of the account changes the fingerprints: not in memory any more
        conn.execute("UPDATE outcomes SET follows = follows + 1 WHERE outcome_id = "
                     "(SELECT max(outcome_id) FROM outcomes WHERE account_id = %s)", (ACC,))
        assert views.learning_status_at(conn, settings, ACC, "sandbox", now, cached_only=True) is views.NOT_IN_MEMORY


def test_a_write_shows_on_the_next_learning_status_request(client, seeded, settings, clock):
    """The body kept for equal reads is the body a new app (nothing kept) sends, before and after each kind of
    write the status shows."""
    def status() -> bytes:
        r = client.get("/api/learning/status", params={"account_id": ACC})
        assert r.status_code == 200, r.text
        fresh = admin_client(settings, seeded, clock)
        assert fresh.get("/api/learning/status", params={"account_id": ACC}).content == r.content
        return r.content

    first = status()
    assert status() == first  # kept: the same
    seeded.execute("UPDATE bandit_arms SET pulls = pulls + 7 WHERE account_id = %s AND scope = 'content' AND arm_id = "
                   "(SELECT min(arm_id) FROM bandit_arms WHERE account_id = %s AND scope = 'content')", (ACC, ACC))
    arms = json.loads(status())["arms"]
    assert sum(a["samples"] for a in arms) == sum(a["samples"] for a in json.loads(first)["arms"]) + 7
    top = seeded.execute("SELECT max(version) AS v FROM predictors WHERE account_id = %s AND kind = 'content'",
                         (ACC,))[0]["v"]
    seeded.execute("""INSERT INTO predictors (account_id, kind, version, predictor_key, algorithm, world, n_samples,
                                              trained_at, rejected_reason)
                      VALUES (%s, 'content', %s, 'predictor:content:new', 'ridge', 'sandbox', 10, %s, 'worse')""",
                   (ACC, top + 1, clock.now() - timedelta(minutes=5)))
    assert json.loads(status())["rejected_models"][0]["version"] == f"v{top + 1}"
    # an outcome of a post, and one of another world's post: the growth model and the counts by world follow
    seeded.execute("UPDATE posted_decisions SET world = 'live' WHERE decision_id = "
                   "(SELECT decision_id FROM outcomes WHERE account_id = %s AND collected_pass = 2 "
                   "ORDER BY collected_at DESC LIMIT 1)", (ACC,))
    after = json.loads(status())
    assert {r["world"] for r in after["outcomes_by_world"]} == {"live", "sandbox"} != \
           {r["world"] for r in json.loads(first)["outcomes_by_world"]}
    # a snapshot a minute later: the sandbox's now moves, and with it the account's age
    seeded.execute("INSERT INTO follower_snapshots (account_id, taken_at, followers_count, simulated) "
                   "VALUES (%s, %s, 5, true)", (ACC, clock.now() + timedelta(minutes=1)))
    assert json.loads(status())["now"] != after["now"]


def test_the_growth_fingerprint_with_the_account_equals_account_at_and_the_fingerprint_after_it(seeded, clock):
    from xbotlib.views import followers
    now = clock.now()
    with seeded.connection() as conn:
        for acc in (ACC, "neighbour", "nobody"):
            for world in ("sandbox", "live"):
                # minutes, past midnight, days: each window's edges, the daily series' UTC day among them
                for wall in (now, now + timedelta(hours=17, minutes=3), now - timedelta(days=20, hours=3)):
                    account, at = views.account_at(conn, acc, world, wall)
                    row = read_models.account_growth_row(conn, acc, world, wall, followers.GROWTH_WINDOWS)
                    if account is None:
                        assert row is None
                        continue
                    assert (row["created_at"], row["now"]) == (account["created_at"], at)
                    want = read_models.growth_fingerprint(conn, acc, followers.growth_windows(at))
                    assert (row["db"], row["writes"], tuple(row["edges"])) == want
                    if (acc, world, wall) == (ACC, "sandbox", now):
                        assert all(want[2])  # every window holds rows: the edges are compared, not only NULLs
                    assert views.growth_at(conn, acc, world, wall) == views.growth(conn, account, world, at)


def test_a_write_shows_on_the_next_growth_request(client, seeded, settings, clock):
    from xbotlib.views import followers

    def growth() -> bytes:
        r = client.get("/api/growth", params={"account_id": ACC, "world": "sandbox"})
        assert r.status_code == 200, r.text
        followers.GROWTHS.clear()  # a fresh read of everything: the same bytes
        assert client.get("/api/growth", params={"account_id": ACC, "world": "sandbox"}).content == r.content
        return r.content

    first = growth()
    assert growth() == first
    seeded.execute("UPDATE follower_snapshots SET followers_count = 55555 WHERE snapshot_id = "
                   "(SELECT snapshot_id FROM follower_snapshots WHERE account_id = %s AND simulated "
                   "ORDER BY taken_at DESC LIMIT 1)", (ACC,))
    assert json.loads(growth())["followers_now"] == 55555
    seeded.execute("INSERT INTO follower_snapshots (account_id, taken_at, followers_count, simulated) "
                   "VALUES (%s, %s, 66666, true)", (ACC, clock.now() + timedelta(minutes=1)))
    after = json.loads(growth())
    assert after["followers_now"] == 66666 and after["now"] != json.loads(first)["now"]
    assert client.get("/api/growth", params={"account_id": "nobody"}).status_code == 404


# every kind of write the learning status reads: (label, SQL, parameters); each is applied in turn
STATUS_WRITES = [
    ("an arm's sums", "UPDATE bandit_arms SET reward_sum = reward_sum + 0.5 WHERE account_id = %(acc)s "
                      "AND world = 'sandbox' AND arm_id = (SELECT min(arm_id) FROM bandit_arms WHERE account_id = "
                      "%(acc)s AND world = 'sandbox')", {}),
    ("an arm deleted", "DELETE FROM bandit_arms WHERE account_id = %(acc)s AND world = 'sandbox' AND arm_id = "
                       "(SELECT max(arm_id) FROM bandit_arms WHERE account_id = %(acc)s AND world = 'sandbox')", {}),
    ("a model retired", "UPDATE predictors SET is_active = false WHERE account_id = %(acc)s AND is_active AND "
                        "version = (SELECT max(version) FROM predictors WHERE account_id = %(acc)s AND is_active)", {}),
    ("a model deleted", "DELETE FROM predictors WHERE account_id = %(acc)s AND version = "
                        "(SELECT min(version) FROM predictors WHERE account_id = %(acc)s)", {}),
    ("the profile", "UPDATE accounts SET profile_sha256 = 'changed' WHERE account_id = %(acc)s", {}),
    ("an old outcome's follows", "UPDATE outcomes SET follows = follows + 1 WHERE outcome_id = (SELECT min(outcome_id) "
                                 "FROM outcomes WHERE account_id = %(acc)s)", {}),
    ("a post's world", "UPDATE posted_decisions SET world = 'live' WHERE decision_id = (SELECT decision_id FROM "
                       "posted_decisions WHERE account_id = %(acc)s ORDER BY posted_at LIMIT 1)", {}),
    ("an old snapshot deleted", "DELETE FROM follower_snapshots WHERE account_id = %(acc)s AND taken_at = "
                                "(SELECT min(taken_at) FROM follower_snapshots WHERE account_id = %(acc)s)", {}),
    ("a decision planned later", "INSERT INTO content_metadata (decision_id, account_id, content, content_hash, "
                                 "generation_source, created_at, updated_at) VALUES (%(id)s, %(acc)s, 'draft', 'h', "
                                 "'template', %(later)s, %(later)s)", {"id": uuid.uuid4()}),
]


def test_the_learning_version_changes_with_every_write_the_status_reads_and_only_then(seeded, clock):
    wall = clock.now()
    window = timedelta(days=views.OUTCOMES_WINDOW_DAYS)

    def version(acc=ACC, world="sandbox"):
        with seeded.connection() as conn:
            row = read_models.learning_version(conn, acc, world, wall)
            full = read_models.account_learning_row(conn, acc, world, wall, window, 10, arm_store.SCOPES)
        assert all(full[k] == row[k] for k in (*read_models.LEARNING_VERSION, "created_at", "now"))  # the same values
        return learning.version_key(acc, world, row)

    with seeded.connection() as conn:
        assert read_models.learning_version(conn, "nobody", "sandbox", wall) is None
        assert views.learning_version_at(conn, ACC, "live", wall) == (wall, None)  # the wall clock's now: no key
        assert views.learning_version_at(conn, ACC, "sandbox", wall)[1] == version()
    seen = [version()]
    assert version() == seen[0]  # nothing written: the same
    seeded.execute("UPDATE bandit_arms SET pulls = pulls + 1 WHERE account_id = 'neighbour'")
    seeded.execute("UPDATE predictors SET n_samples = n_samples + 1 WHERE account_id = 'neighbour'")
    assert version() == seen[0]  # another account's writes: the same
    for label, sql, extra in STATUS_WRITES:
        seeded.execute(sql, {"acc": ACC, "later": wall + timedelta(minutes=3), **extra})
        now = version()
        assert now not in seen, label
        seen.append(now)


def test_a_body_kept_by_its_version_is_sent_again_until_a_write_then_the_new_one(client, seeded, settings, clock):
    """Each kind of write the status reads, then the next request: the body a new app (nothing kept) sends."""
    def status() -> bytes:
        r = client.get("/api/learning/status", params={"account_id": ACC, "world": "sandbox"})
        assert r.status_code == 200, r.text
        fresh = admin_client(settings, seeded, clock)
        assert fresh.get("/api/learning/status", params={"account_id": ACC, "world": "sandbox"}).content == r.content
        return r.content

    bodies = [status()]
    assert status() == bodies[0]
    for label, sql, extra in STATUS_WRITES:
        seeded.execute(sql, {"acc": ACC, "later": clock.now() + timedelta(minutes=3), **extra})
        bodies.append(status())  # equal to a fresh app's: checked in status()
    assert len(set(bodies)) > 5  # most of the writes show in the body (a profile hash alone does not)


@pytest.mark.parametrize("path", ["/api/learning/status"])
def test_the_learning_status_is_one_round_trip_when_its_parts_are_in_memory(db_url, seeded, settings, clock,
                                                                           tmp_path, path):
    sent = messages_sent(db_url, settings, clock, tmp_path, path)
    assert "Query" not in sent and sent.count("Sync") == 1, sent


def test_the_kept_prometheus_text_is_the_text_written_afresh_and_follows_the_figures(seeded, settings, clock):
    throttle = FailureThrottle()
    with seeded.connection() as conn:
        shown = [views.metrics(conn, settings, acc, world, clock.now())
                 for acc in (ACC, "neighbour") for world in ("sandbox", "live")]
    prometheus.FIGURES_TEXT.clear()
    for m in shown + shown:  # written, then kept
        fresh = prometheus.exposition(prometheus._Families(prometheus.metric_families(m)), AuthCollector(throttle))
        assert prometheus.prometheus_text(m, AuthCollector(throttle)) == fresh
    assert len(prometheus.FIGURES_TEXT) == len(shown)
    # any figure changed, or only now: the text of those figures
    m = shown[0]
    for changed in (m.model_copy(update={"posts_today": m.posts_today + 1}),
                    m.model_copy(update={"queue_depth": {**m.queue_depth, "failed": 99}}),
                    m.model_copy(update={"now": m.now + timedelta(hours=1)})):
        assert prometheus.prometheus_text(changed) == prometheus.exposition(
            prometheus._Families(prometheus.metric_families(changed)))
    throttle.failed("10.0.0.9")  # the counters are written per scrape, not kept
    assert "xbot_api_auth_failures_total 1.0" in prometheus.prometheus_text(m, AuthCollector(throttle))


def test_a_write_shows_on_the_next_scrape(client, seeded, clock):
    def followers() -> str:
        r = client.get("/metrics", params={"account_id": ACC})
        assert r.status_code == 200, r.text
        return next(line for line in r.text.splitlines() if line.startswith("xbot_followers{"))

    first = followers()
    assert followers() == first
    seeded.execute("INSERT INTO follower_snapshots (account_id, taken_at, followers_count, simulated) "
                   "VALUES (%s, %s, 54321, true)", (ACC, clock.now() + timedelta(minutes=1)))
    assert followers().endswith(" 54321.0") and not first.endswith(" 54321.0")
