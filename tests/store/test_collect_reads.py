"""What every collect tick reads stays the size of what is open, not of the account's history: the posts with a
pass due walk only the posts not done (migrations 0015), and whether final rewards wait for the bandits is an index
probe once outcomes are analysed (0016)."""
from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

from xbotlib.devtools.seed_history import HistorySpec, seed_history
from xbotlib.store import outcomes, queue
from xbotlib.store.db import array_in_statement, copy_rows

T0 = datetime(2026, 3, 2, 8, 0, tzinfo=timezone.utc)
_DONE_TRUTH = """SELECT pd.decision_id::text AS d, pd.collection_done AS marked,
                        EXISTS (SELECT 1 FROM outcomes o WHERE o.decision_id = pd.decision_id AND o.collected_pass = 1)
                    AND EXISTS (SELECT 1 FROM outcomes o WHERE o.decision_id = pd.decision_id AND o.collected_pass = 2)
                        AS both_stored
                   FROM posted_decisions pd"""


def _post(conn, i: int, posted_at: datetime, acc: str = "acct1") -> str:
    d = queue.Decision(account_id=acc, decision_type="post", content=f"post number {i} of {acc}",
                       generation_source="template", status="queued", scheduled_at=T0)
    did = str(queue.insert_decision(conn, d, T0))
    conn.execute("INSERT INTO posted_decisions (decision_id, account_id, tweet_id, world, posted_at) "
                 "VALUES (%s, %s, %s, 'sandbox', %s)", (did, acc, f"t{acc}{i}", posted_at))
    return did


def _row(did: str, p: int, likes: int = 1, acc: str = "acct1") -> dict:
    return {"decision_id": did, "account_id": acc, "collected_pass": p, "simulated": True,
            **{k: 0 for k in outcomes.METRIC_FIELDS}, "impressions": 1000, "likes": likes, "follows": 0.0,
            "follows_source": "analytics", "er": likes / 1000, "fpki": 0.0, "retweet_rate": 0.0, "reply_rate": 0.0,
            "novelty": 0.5, "dup_penalty": 0.0, "reward_composite": 0.1, "sample_weight": 1.0,
            "collected_at": T0 + timedelta(days=2)}


def test_a_post_is_marked_done_once_both_passes_are_stored_by_any_writer(db):
    """The mark follows the stored passes whoever writes them: the collector's upsert (one pass a statement, both
    in one, pass 2 before pass 1, a rewrite of a stored row), a hand-written INSERT and COPY. A post with one pass,
    or none, is never marked; one with both always is."""
    with db.connection() as conn:
        queue.ensure_account(conn, "acct1", T0)
        p = [_post(conn, i, T0 + timedelta(minutes=i)) for i in range(8)]
        assert {r["marked"] for r in conn.execute(_DONE_TRUTH)} == {False}

        outcomes.upsert_outcomes(conn, [_row(p[0], 1), _row(p[1], 1), _row(p[2], 2)], {})   # one pass each
        marks = {r["d"]: r["marked"] for r in conn.execute(_DONE_TRUTH)}
        assert not any(marks.values())
        outcomes.upsert_outcomes(conn, [_row(p[0], 2), _row(p[2], 1)], {})   # p0: then pass 2; p2: pass 1 after 2
        outcomes.upsert_outcomes(conn, [_row(p[3], 1), _row(p[3], 2)], {})   # both in one statement
        outcomes.upsert_outcomes(conn, [_row(p[1], 1, likes=5)], {})         # a rewrite: p1 still has pass 1 only
        cols = tuple(_row(p[4], 1))
        conn.execute(f"INSERT INTO outcomes ({', '.join(cols)}) SELECT {', '.join(['%s'] * len(cols))}",
                     list(_row(p[4], 1).values()))
        conn.execute(f"INSERT INTO outcomes ({', '.join(cols)}) SELECT {', '.join(['%s'] * len(cols))}",
                     list(_row(p[4], 2).values()))
        copy_rows(conn, "outcomes", cols, [tuple(_row(p[5], k).values()) for k in (1, 2)] +
                  [tuple(_row(p[6], 2).values())])
        rows = conn.execute(_DONE_TRUTH).fetchall()
    assert all(r["marked"] == r["both_stored"] for r in rows), rows
    assert {r["d"] for r in rows if r["marked"]} == {p[0], p[2], p[3], p[4], p[5]}


def _scan_of_posts(plan: dict) -> list[tuple[dict, set[str]]]:
    """The plan's nodes that read posted_decisions, each with the indexes it reads (its own, or its bitmap's)."""
    if plan.get("Relation Name") == "posted_decisions":
        indexes = {n["Index Name"] for n in [plan, *plan.get("Plans", [])] if "Index Name" in n}
        return [(plan, indexes)]
    return [found for child in plan.get("Plans", []) for found in _scan_of_posts(child)]


def test_the_due_read_walks_the_open_posts_not_the_history(db):
    """Forty posts with both passes stored and three open ones (one waiting for its pass 2, one with nothing, one
    not an hour old): the read of posts with a pass due — for one account and for several — reads the open posts
    from idx_posted_collection_open and nothing of the forty, and answers what the probes alone would."""
    with db.connection() as conn:
        for acc in ("acct1", "acct2"):
            queue.ensure_account(conn, acc, T0)
        done = [_post(conn, i, T0 + timedelta(minutes=i)) for i in range(40)]
        outcomes.upsert_outcomes(conn, [_row(d, k) for d in done for k in (1, 2)], {})
        now = T0 + timedelta(days=3)
        waiting = _post(conn, 40, now - timedelta(hours=3))
        outcomes.upsert_outcomes(conn, [_row(waiting, 1)], {})
        fresh = _post(conn, 41, now - timedelta(hours=2))
        _post(conn, 42, now - timedelta(minutes=10))
        other = _post(conn, 0, now - timedelta(hours=30), acc="acct2")
        conn.execute("ANALYZE posted_decisions, outcomes, content_metadata")
    first_due, second_due = now - timedelta(hours=1), now - timedelta(hours=24)
    params = {"acc": "acct1", "world": "sandbox", "first_due": first_due, "second_due": second_due}
    many = outcomes._AWAITING_MANY_SQL.format(accs=array_in_statement(["acct1", "acct2"]),
                                              worlds=array_in_statement(["sandbox", "sandbox"]))
    with db.connection() as conn:
        for sql in (outcomes._AWAITING_SQL, many):
            plan = conn.execute("EXPLAIN (ANALYZE, FORMAT JSON) " + sql, params).fetchone()
            plan = plan["QUERY PLAN"] if isinstance(plan["QUERY PLAN"], list) else json.loads(plan["QUERY PLAN"])
            scans = _scan_of_posts(plan[0]["Plan"])
            assert scans and all(indexes == {"idx_posted_collection_open"} for _, indexes in scans), plan
            # per loop (one per account), kept or filtered out: at most the account's open posts, none of the forty
            assert all(s["Actual Rows"] + s.get("Rows Removed by Filter", 0) <= 3 for s, _ in scans), plan
        due = outcomes.posts_with_due_passes(conn, "acct1", "sandbox", first_due, second_due)
        together = outcomes.collection_starts(conn, [outcomes.CollectionStart(a, "sandbox", 10, 1, 1)
                                                     for a in ("acct2", "acct1")], now, first_due, second_due)
    assert [r["decision_id"] for r in due] == [fresh]          # waiting's pass 2 is not due for 21 hours
    assert [[r["decision_id"] for r in a] for _, a, _ in together] == [[other], [fresh]]


def test_whether_final_rewards_wait_is_an_index_probe_once_outcomes_are_analysed(db):
    """A year of one account's history (pass-1 outcomes are never applied to the bandits, pass-2 ones all are),
    analysed: asking whether any final outcome waits reads the partial index idx_outcomes_unapplied, not every
    outcome of the account — which the planner chose before it had statistics on the pair (migration 0016)."""
    seed_history(db, HistorySpec("acct1", T0, days=365, seed=3, job_runs=False))
    with db.connection() as conn:
        plan = "\n".join(r["QUERY PLAN"] for r in conn.execute("EXPLAIN " + outcomes._PENDING_SQL, ("acct1", True)))
        assert "idx_outcomes_unapplied" in plan and "Seq Scan" not in plan, plan
        assert conn.execute(outcomes._PENDING_SQL, ("acct1", True)).fetchone()["pending"] is False


def test_values_written_into_a_statement_read_back_exactly(db):
    """``array_in_statement`` writes values into the statement's text beside psycopg's own parameters: quotes,
    commas, braces, backslashes and ``%`` (which psycopg would otherwise read as a placeholder) come back as given."""
    odd = ["plain", "o'k", "comma,brace}{", "per%cent %s %(n)s", 'quote"back\\slash', "ünï ✓", ""]
    with db.autocommit() as conn:
        rows = conn.execute(f"SELECT a, %(n)s AS n FROM unnest({array_in_statement(odd)}) AS a", {"n": 7}).fetchall()
        flags = conn.execute(f"SELECT unnest({array_in_statement([True, False], 'bool')}) AS f").fetchall()
    assert [r["a"] for r in rows] == odd and {r["n"] for r in rows} == {7}
    assert [r["f"] for r in flags] == [True, False]


def test_a_daemons_all_accounts_reads_are_planned_once(db):
    """The reads a daemon sends every few simulated minutes for its accounts (the post pre-flight, the collect start
    and its due posts) carry the accounts in their text, not as a parameter: PostgreSQL keeps one generic plan for
    each (pg_prepared_statements counts it) instead of planning every execution again, as it did for an array
    parameter of five accounts, whose generic plan it judged for unnest's default of 100 rows."""
    accounts = [f"acct{i}" for i in range(5)]
    now = T0 + timedelta(days=1)
    with db.autocommit() as conn:
        for acc in accounts:
            queue.ensure_account(conn, acc, T0)
        for _ in range(20):
            queue.posting_preflights(conn, accounts, "POST /2/tweets", now, ["llm"])
            outcomes.collection_starts(conn, [outcomes.CollectionStart(a, "sandbox", 10, 1, 1) for a in accounts],
                                       now, now - timedelta(hours=1), now - timedelta(hours=24))
        plans = conn.execute("SELECT statement, generic_plans, custom_plans FROM pg_prepared_statements").fetchall()
    reads = [p for p in plans if "unnest(" in p["statement"] and "WITH ORDINALITY AS a(" in p["statement"]]
    assert len(reads) == 3, plans   # the pre-flight, the collect start, its due posts
    # psycopg prepares a statement at its 5th execution; PostgreSQL plans the next 5 for the parameters, then
    # keeps the generic plan when it is no dearer
    assert all(p["generic_plans"] >= 5 and p["custom_plans"] <= 5 for p in reads), reads
