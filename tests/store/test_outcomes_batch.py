"""The collector's batch writes: one statement per batch (arrays, unnest), read back exactly."""
from __future__ import annotations

import re
import uuid
from datetime import datetime, timedelta, timezone

import pytest

from xbotlib.store import outcomes, queue
from xbotlib.store.db import array_literal, array_literal_by_element

T0 = datetime(2026, 3, 2, 8, 0, 0, 123456, tzinfo=timezone.utc)


@pytest.mark.parametrize("sql_type, values", [
    ("float8", [0.1, 1e-300, 2.5e300, -0.0, 1 / 3, None, 1234567.000001]),
    ("int4", [0, -7, 2_147_483_647, None]),
    ("bool", [True, False, None]),
    ("text", ['plain', 'with "quotes"', "back\\slash", "NULL", "", "comma, brace } {", "ünïcode ✓", None]),
    ("timestamptz", [T0, T0 + timedelta(microseconds=1), datetime(2026, 1, 5, tzinfo=timezone(timedelta(hours=5)))]),
    ("uuid", [uuid.UUID(int=1), str(uuid.UUID(int=2))]),
])
def test_array_literal_reads_back_exactly(db, sql_type, values):
    rows = db.execute(f"SELECT unnest(%s::{sql_type}[]) AS v", (array_literal(values),))
    expected = [uuid.UUID(str(v)) if sql_type == "uuid" else v for v in values]
    assert [r["v"] for r in rows] == expected


@pytest.mark.parametrize("bad, why", [(float("nan"), "finite"), (datetime(2026, 1, 5), "timezone")])
def test_array_literal_refuses_what_postgres_would_store_differently(bad, why):
    with pytest.raises(ValueError, match=why):
        array_literal([bad])


def _row(decision_id: str, p: int, likes: int, novelty: float | None) -> dict:
    return {"decision_id": decision_id, "account_id": "acct1", "collected_pass": p, "simulated": True,
            **{k: 0 for k in outcomes.METRIC_FIELDS}, "impressions": 1000, "likes": likes, "follows": 0.25,
            "follows_source": "analytics", "er": likes / 1000, "fpki": 0.25, "retweet_rate": 0.0,
            "reply_rate": 0.0, "novelty": novelty, "dup_penalty": 0.0, "reward_composite": 0.125,
            "sample_weight": 1.0, "collected_at": T0}


def test_batch_upsert_keeps_the_given_order_and_rewrites_only_changes(db):
    with db.connection() as conn:
        queue.ensure_account(conn, "acct1", T0)
        ids = []
        for i in range(5):
            d = queue.Decision(account_id="acct1", decision_type="post", content=f"post number {i}",
                               generation_source="template", status="queued", scheduled_at=T0)
            ids.append(str(queue.insert_decision(conn, d, T0)))
        conn.execute("INSERT INTO posted_decisions (decision_id, account_id, tweet_id, world, posted_at) "
                     "SELECT d, 'acct1', 't' || n, 'sandbox', %s FROM unnest(%s::uuid[]) WITH ORDINALITY AS x(d, n)",
                     (T0, ids))
    # reversed on purpose: outcome ids must follow the order given (the bandits fold rewards in that order)
    rows = [_row(d, p, likes=i, novelty=None if i % 2 else 0.5) for i, d in enumerate(reversed(ids)) for p in (1, 2)]
    latest = {d: {"profile_visits": 3, "link_clicks": 1, "bookmarks": 2} for d in ids}
    with db.connection() as conn:
        stored = outcomes.upsert_outcomes(conn, rows, latest)
    assert [(str(s["decision_id"]), s["collected_pass"]) for s in stored] == \
        [(r["decision_id"], r["collected_pass"]) for r in rows]
    assert [s["outcome_id"] for s in stored] == sorted(s["outcome_id"] for s in stored)
    back = db.execute("SELECT decision_id::text AS d, collected_pass, likes, novelty FROM outcomes ORDER BY outcome_id")
    assert [(b["d"], b["collected_pass"], b["likes"], b["novelty"]) for b in back] == \
        [(r["decision_id"], r["collected_pass"], r["likes"], r["novelty"]) for r in rows]
    assert {(r["profile_visits"], r["link_clicks"], r["bookmarks"])
            for r in db.execute("SELECT * FROM posted_decisions")} == {(3, 1, 2)}
    # the same batch again: nothing changed, nothing returned; one changed value: that row only
    with db.connection() as conn:
        assert outcomes.upsert_outcomes(conn, rows, latest) == []
        changed = [dict(rows[3], likes=99)]
        again = outcomes.upsert_outcomes(conn, rows[:3] + changed, {})
    assert [(str(s["decision_id"]), s["collected_pass"]) for s in again] == \
        [(changed[0]["decision_id"], changed[0]["collected_pass"])]


@pytest.mark.parametrize("values", [
    [0.1, 1e-300, 2.5e300, -0.0, 1 / 3, None, 1234567.000001, 3, 0],
    [0.5, float("inf")],          # not finite: refused, naming the value
    [True, 0.5],                  # a bool is not a number here: written as a bool
    [0, 7, 2_147_483_647],
    [0, None, 3],
    [1, 2, 1, 2],
])
def test_array_literal_one_pass_paths_write_what_each_element_writes(values):
    """The one-pass paths for number columns change the speed, never the text Postgres receives."""
    try:
        expected = array_literal_by_element(values)
    except ValueError as exc:
        with pytest.raises(ValueError, match=re.escape(str(exc))):
            array_literal(values)
        return
    assert array_literal(values) == expected


# the collector's read of posts awaiting outcomes as it was written first (a join of every post with all its
# outcomes, grouped and counted): with the due filter below, the reference the cheaper statement must agree with
_AWAITING_BY_GROUPING = """
    SELECT pd.decision_id::text AS decision_id, pd.tweet_id, pd.posted_at, cm.novelty, cm.dup_penalty,
           COALESCE(array_agg(o.collected_pass) FILTER (WHERE o.collected_pass IS NOT NULL), '{}') AS stored
      FROM posted_decisions pd
      JOIN content_metadata cm ON cm.decision_id = pd.decision_id
      LEFT JOIN outcomes o ON o.decision_id = pd.decision_id
     WHERE pd.account_id = %(acc)s AND pd.world = %(world)s AND pd.posted_at <= %(first_due)s
     GROUP BY pd.decision_id, pd.tweet_id, pd.posted_at, cm.novelty, cm.dup_penalty
    HAVING count(o.collected_pass) < 2
     ORDER BY pd.posted_at, pd.tweet_id"""


@pytest.mark.parametrize("analyzed", [False, True])
def test_posts_with_due_passes_are_those_missing_a_pass_whose_time_has_come(db, analyzed):
    """A post is read when a pass it lacks is due: pass 1 from an hour after posting (``first_due``), pass 2 from
    a day after (``second_due``); one with both is done, one with pass 1 waiting for its pass 2 is not read before
    its day is up. The statement probes each post's passes instead of grouping its outcomes: the same rows in the
    same order as the grouped statement with that filter, for each account alone and for several at once,
    planned with or without the tables' statistics (a campaign's tables are mostly not yet analysed)."""
    passes = [(), (1,), (2,), (1, 2)] * 3
    with db.connection() as conn:
        for acc in ("acct1", "acct2"):
            queue.ensure_account(conn, acc, T0)
        decisions = []
        for i, stored in enumerate(passes):
            acc = "acct1" if i % 3 else "acct2"
            d = queue.Decision(account_id=acc, decision_type="post", content=f"post number {i}",
                               generation_source="template", status="queued", scheduled_at=T0)
            did = str(queue.insert_decision(conn, d, T0))
            conn.execute("UPDATE content_metadata SET novelty = %s, dup_penalty = %s WHERE decision_id = %s",
                         (i / 10, i / 100, did))
            # posts 8 and 10 share a time (the tweet id orders them: 10's "t90" first); 11 is not due yet
            posted = T0 + timedelta(hours={10: 8, 11: 40}.get(i, i))
            conn.execute("INSERT INTO posted_decisions (decision_id, account_id, tweet_id, world, posted_at) "
                         "VALUES (%s, %s, %s, 'sandbox', %s)", (did, acc, f"t{100 - i}", posted))
            decisions.append((did, acc, stored))
        rows = [dict(_row(did, p, likes=1, novelty=0.5), account_id=acc) for did, acc, stored in decisions
                for p in stored]
        outcomes.upsert_outcomes(conn, rows, {})
        if analyzed:
            conn.execute("ANALYZE posted_decisions, content_metadata, outcomes")
    now = T0 + timedelta(hours=25)
    first_due, second_due = now - timedelta(hours=1), now - timedelta(hours=24)

    def due(row: dict) -> bool:
        return 1 not in row["stored"] or (2 not in row["stored"] and row["posted_at"] <= second_due)
    with db.connection() as conn:
        expected = {acc: [r for r in conn.execute(_AWAITING_BY_GROUPING, {"acc": acc, "world": "sandbox",
                                                                          "first_due": first_due}).fetchall() if due(r)]
                    for acc in ("acct1", "acct2")}
        got = {acc: outcomes.posts_with_due_passes(conn, acc, "sandbox", first_due, second_due)
               for acc in ("acct1", "acct2")}
    assert got == expected
    # acct1's posts 1, 2, 4, 5, 7, 8, 10 and 11 (stored passes in that cycle): 7 has both, 11 is not an hour old,
    # 5 (pass 1 only, posted 5 h after T0) waits for its pass 2, while 1 (posted an hour after T0) has it due
    assert [(r["stored"], r["tweet_id"]) for r in got["acct1"]] == [
        ([1], "t99"), ([2], "t98"), ([], "t96"), ([2], "t90"), ([], "t92")]
    assert [r["stored"] for r in got["acct2"]] == [[], [2]]   # posts 0, 3 (both: done), 6, 9 (pass 2 not yet due)
    with db.autocommit() as conn:
        starts = [outcomes.CollectionStart(acc, "sandbox", 10, 1, 1) for acc in ("acct2", "acct1")]
        together = outcomes.collection_starts(conn, starts, now, first_due, second_due)
    assert [awaiting for _, awaiting, _ in together] == [expected["acct2"], expected["acct1"]]
