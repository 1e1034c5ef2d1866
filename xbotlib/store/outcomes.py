"""Outcomes (T+1h and T+24h reads), follower snapshots and posted decisions: the measured side of
every decision.

Size: over 400 lines because the collector's statements (one account's and a simulated turn's for several at once,
built from one text) sit beside the read models of the same three tables; split, the tables' columns and the
collector's promises would be restated in two places."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Mapping, Sequence

from xbotlib.core import vocab
from xbotlib.core.growth_model import PostOutcome
from xbotlib.store.db import array_in_statement, array_literal
from xbotlib.store.runs import RELAXED_COMMIT_SQL


MODEL_WINDOW_DAYS = 90  # the growth model learns from the last 90 days: audiences drift


def post_outcomes(conn, account_id: str, world: str, now: datetime,
                  vocabulary: vocab.Vocabulary = vocab.DEFAULT) -> list:
    """Final (pass-2) outcomes of this account's posts in ``world`` over the last ``MODEL_WINDOW_DAYS``,
    as ``growth_model.PostOutcome`` with the follower count of the snapshot before each post went out
    and the time it went out (the growth model counts older outcomes less).

    ``vocabulary``: the account's niche (``JobContext.vocabulary``); a topic outside it (a post from before
    the profile changed) counts as no topic, its hook and hour still inform the model."""
    rows = conn.execute(
        """SELECT cm.hook_pattern, cm.topic, cm.timing_arm, cm.novelty, o.profile_visits, o.follows, pd.posted_at,
                  COALESCE((SELECT fs.followers_count FROM follower_snapshots fs
                             WHERE fs.account_id = cm.account_id AND fs.simulated = o.simulated
                               AND fs.taken_at <= pd.posted_at ORDER BY fs.taken_at DESC LIMIT 1),
                           (SELECT fs.followers_count FROM follower_snapshots fs
                             WHERE fs.account_id = cm.account_id AND fs.simulated = o.simulated
                             ORDER BY fs.taken_at LIMIT 1)) AS followers
             FROM outcomes o
             JOIN content_metadata cm ON cm.decision_id = o.decision_id
             JOIN posted_decisions pd ON pd.decision_id = o.decision_id
            WHERE o.account_id = %s AND o.collected_pass = 2 AND o.simulated = %s
              AND cm.decision_type = 'post' AND cm.timing_arm IS NOT NULL AND pd.posted_at > %s
            ORDER BY pd.posted_at, pd.tweet_id""",
        (account_id, world != "live", now - timedelta(days=MODEL_WINDOW_DAYS))).fetchall()
    out = []
    for r in rows:
        if r["followers"] is None or r["hook_pattern"] not in vocab.HOOK_PATTERNS:
            continue  # no follower snapshot yet, or a hook from an older vocabulary: nothing to learn from
        topic = r["topic"] if r["topic"] in vocabulary.topics else None
        out.append(PostOutcome(hook=r["hook_pattern"], topic=topic, hour=int(r["timing_arm"]),
                               profile_visits=float(r["profile_visits"]), follows=float(r["follows"]),
                               followers=float(r["followers"]), posted_at=r["posted_at"],
                               novelty=None if r["novelty"] is None else min(1.0, max(0.0, float(r["novelty"])))))
    return out


def first_and_last_followers(conn, account_id: str) -> tuple[int, int]:
    """(first, last) follower snapshot of the account; 0 for a missing one."""
    row = conn.execute(
        """SELECT (SELECT followers_count FROM follower_snapshots WHERE account_id = %(a)s ORDER BY taken_at LIMIT 1) AS first,
                  (SELECT followers_count FROM follower_snapshots WHERE account_id = %(a)s ORDER BY taken_at DESC LIMIT 1) AS last""",
        {"a": account_id}).fetchone()
    return int(row["first"] or 0), int(row["last"] or 0)


def weekly_fpki(conn, account_id: str) -> list[tuple[int, float, int]]:
    """(week number from 1, mean pass-2 fpki, posts) per week since the account was created."""
    rows = conn.execute(
        """SELECT floor(extract(epoch FROM pd.posted_at - a.created_at) / 604800)::int AS week,
                  avg(o.fpki) AS fpki, count(*) AS n
             FROM outcomes o JOIN posted_decisions pd USING (decision_id) JOIN accounts a ON a.account_id = o.account_id
            WHERE o.account_id = %s AND o.collected_pass = 2
            GROUP BY 1 ORDER BY 1""", (account_id,)).fetchall()
    return [(int(r["week"]) + 1, float(r["fpki"]), int(r["n"])) for r in rows]


def follows_earned_by_posts(conn, account_id: str) -> float:
    """Follows the collector attributed to the account's posts (pass 2, final reads), summed."""
    row = conn.execute("SELECT coalesce(sum(follows), 0) AS f FROM outcomes WHERE account_id = %s AND collected_pass = 2",
                       (account_id,)).fetchone()
    return float(row["f"])


def final_follows_by_tweet(conn, account_id: str) -> dict[str, float]:
    """tweet_id -> follows of the pass-2 (T+24h) outcome, for every post of the account that has one."""
    rows = conn.execute(
        """SELECT pd.tweet_id, o.follows FROM outcomes o JOIN posted_decisions pd ON pd.decision_id = o.decision_id
            WHERE o.account_id = %s AND o.collected_pass = 2""", (account_id,)).fetchall()
    return {r["tweet_id"]: float(r["follows"]) for r in rows}


# ----------------------------------------------------------------------------- read models (admin API, views)

def latest_follower_snapshot(conn, account_id: str, simulated: bool, at: datetime, within: timedelta) -> dict | None:
    """The latest follower snapshot in (at - within, at] (``followers_count``, ``taken_at``); None when there
    is none that recent."""
    return conn.execute(
        """SELECT followers_count, taken_at FROM follower_snapshots
            WHERE account_id = %s AND simulated = %s AND taken_at <= %s AND taken_at > %s
            ORDER BY taken_at DESC LIMIT 1""", (account_id, simulated, at, at - within)).fetchone()


def daily_followers(conn, account_id: str, simulated: bool, since: datetime, until: datetime) -> list[dict]:
    """The last snapshot of each UTC day in [since, until] (``day``, ``followers_count``), oldest first;
    days without a snapshot are absent."""
    return conn.execute(
        """SELECT DISTINCT ON (day) (taken_at AT TIME ZONE 'UTC')::date AS day, followers_count
             FROM follower_snapshots
            WHERE account_id = %s AND simulated = %s AND taken_at >= %s AND taken_at <= %s
            ORDER BY day, taken_at DESC""", (account_id, simulated, since, until)).fetchall()


def final_outcome_averages(conn, account_id: str, simulated: bool, since: datetime, until: datetime) -> dict:
    """Mean ``fpki`` and ``novelty`` (None without outcomes) and the number ``n`` of pass-2 outcomes
    collected in (since, until]."""
    return conn.execute(
        """SELECT avg(o.fpki) AS fpki, avg(cm.novelty) AS novelty, count(*) AS n
             FROM outcomes o JOIN content_metadata cm ON cm.decision_id = o.decision_id
            WHERE o.account_id = %s AND o.collected_pass = 2 AND o.simulated = %s
              AND o.collected_at > %s AND o.collected_at <= %s""",
        (account_id, simulated, since, until)).fetchone()


def top_posts(conn, account_id: str, simulated: bool, since: datetime, until: datetime, *, limit: int,
              excerpt_chars: int) -> list[dict]:
    """The pass-2 outcomes collected in (since, until] with the most follows (then fpki): decision_id,
    tweet_id, excerpt (the first ``excerpt_chars`` of the text), follows, fpki, impressions, collected_at."""
    return conn.execute(
        # rank inside the outcomes window first, then look up text and tweet id of those few rows only
        """SELECT t.decision_id::text AS decision_id, p.tweet_id, left(cm.content, %s) AS excerpt, t.follows,
                  t.fpki, t.impressions, t.collected_at
             FROM (SELECT decision_id, follows, fpki, impressions, collected_at FROM outcomes
                    WHERE account_id = %s AND collected_pass = 2 AND simulated = %s
                      AND collected_at > %s AND collected_at <= %s
                    ORDER BY follows DESC, fpki DESC, decision_id LIMIT %s) t
             JOIN content_metadata cm ON cm.decision_id = t.decision_id
             LEFT JOIN posted_decisions p ON p.decision_id = t.decision_id
            ORDER BY t.follows DESC, t.fpki DESC, t.decision_id""",
        (excerpt_chars, account_id, simulated, since, until, limit)).fetchall()


def count_posts(conn, account_id: str, world: str, since: datetime, until: datetime) -> int:
    """Posts published to ``world`` in [since, until]."""
    return conn.execute(
        """SELECT count(*) AS n FROM posted_decisions
            WHERE account_id = %s AND world = %s AND posted_at >= %s AND posted_at <= %s""",
        (account_id, world, since, until)).fetchone()["n"]


# ----------------------------------------------------------------------------- the collector (jobs.collect)

METRIC_FIELDS = ("impressions", "likes", "retweets", "replies", "quotes", "bookmarks", "profile_visits",
                 "link_clicks")
OUTCOME_COLUMNS = ("decision_id", "account_id", "collected_pass", "simulated", *METRIC_FIELDS, "follows",
                   "follows_source", "er", "fpki", "retweet_rate", "reply_rate", "novelty", "dup_penalty",
                   "reward_composite", "sample_weight", "collected_at")
# columns whose change makes an existing row worth updating (collected_at alone is not a change)
_VALUE_COLUMNS = tuple(c for c in OUTCOME_COLUMNS
                       if c not in ("decision_id", "account_id", "collected_pass", "collected_at"))

# the type of each column as a Postgres array: a batch travels as one array per column (unnest), so a
# batch of 200 outcomes is one statement and one round trip, not 200 executions of one
_COLUMN_TYPES = {"decision_id": "uuid", "account_id": "text", "collected_pass": "int2", "simulated": "bool",
                 **{c: "int4" for c in METRIC_FIELDS}, "follows_source": "text", "collected_at": "timestamptz"}
_UPSERT_SQL = (
    f"INSERT INTO outcomes ({', '.join(OUTCOME_COLUMNS)}) "
    f"SELECT {', '.join(OUTCOME_COLUMNS)} FROM unnest("
    + ", ".join(f"%s::{_COLUMN_TYPES.get(c, 'float8')}[]" for c in OUTCOME_COLUMNS)
    + f") WITH ORDINALITY AS batch ({', '.join(OUTCOME_COLUMNS)}, ord) "
    # in the given order, so outcome ids (the order the bandits fold rewards in) follow it as they did row by row
    "ORDER BY ord "
    "ON CONFLICT (decision_id, collected_pass) DO UPDATE SET "
    + ", ".join(f"{c} = EXCLUDED.{c}" for c in (*_VALUE_COLUMNS, "collected_at"))
    + f" WHERE ({', '.join('outcomes.' + c for c in _VALUE_COLUMNS)}) "
      f"IS DISTINCT FROM ({', '.join('EXCLUDED.' + c for c in _VALUE_COLUMNS)}) "
    "RETURNING outcome_id, decision_id, collected_pass"
)
_LATEST_COUNTS = ("profile_visits", "link_clicks", "bookmarks")
_LATEST_SQL = (
    """UPDATE posted_decisions pd SET profile_visits = b.profile_visits, link_clicks = b.link_clicks,
              bookmarks = b.bookmarks
         FROM unnest(%s::uuid[], %s::int4[], %s::int4[], %s::int4[]) AS b (decision_id, profile_visits, link_clicks,
                                                                           bookmarks)
        WHERE pd.decision_id = b.decision_id
          AND (pd.profile_visits, pd.link_clicks, pd.bookmarks)
              IS DISTINCT FROM (b.profile_visits, b.link_clicks, b.bookmarks)""")


def known_tweet_ids(conn, ids: list[str]) -> set[str]:
    """Those of ``ids`` that a posted decision already holds."""
    if not ids:
        return set()
    rows = conn.execute("SELECT tweet_id FROM posted_decisions WHERE tweet_id = ANY(%s)", (ids,)).fetchall()
    return {r["tweet_id"] for r in rows}


def posts_with_due_passes(conn, account_id: str, world: str, first_due: datetime, second_due: datetime) -> list[dict]:
    """Posted decisions of ``world`` with a pass due and not stored: published at or before ``first_due`` without a
    pass 1, or at or before ``second_due`` without a pass 2 (``first_due``/``second_due``: now less each pass's
    delay); oldest first (ties by tweet id, so the collection order replays): decision_id (text), tweet_id,
    posted_at, novelty, dup_penalty and ``stored`` (the passes already stored)."""
    return conn.execute(_AWAITING_SQL, {"acc": account_id, "world": world, "first_due": first_due,
                                        "second_due": second_due}).fetchall()


def record_follower_snapshot(conn, account_id: str, now: datetime, followers_count: int,
                             following_count: int | None, tweet_count: int | None, simulated: bool) -> bool:
    """Store a follower snapshot unless one exists for this exact time (a repeated tick adds nothing).
    True when a row was written."""
    row = conn.execute(_SNAPSHOT_SQL, {"acc": account_id, "now": now, "f": int(followers_count), "fo": following_count,
                                       "tc": tweet_count, "sim": simulated}).fetchone()
    return row is not None


def has_unapplied_final_outcomes(conn, account_id: str, simulated: bool) -> bool:
    """Whether a pass-2 outcome of the account is not yet folded into the bandit arms (``arms.apply_pass2_rewards``
    would find work)."""
    return conn.execute(_PENDING_SQL, (account_id, simulated)).fetchone()["pending"]


def collection_start(conn, account_id: str, world: str, now: datetime, followers_count: int,
                     following_count: int | None, tweet_count: int | None, first_due: datetime, second_due: datetime
                     ) -> tuple[bool, list[dict], bool]:
    """The collect tick's first write and reads in one round trip (a psycopg pipeline; on an autocommit
    connection they run as one implicit transaction): ``record_follower_snapshot`` (True when written),
    ``posts_with_due_passes`` and ``has_unapplied_final_outcomes``, with the same arguments and results.
    ``collection_starts`` for one account."""
    return collection_starts(conn, [CollectionStart(account_id, world, followers_count, following_count,
                                                    tweet_count)], now, first_due, second_due)[0]


@dataclass(frozen=True)
class CollectionStart:
    """One account's part of ``collection_starts``: whose snapshot, in which world, and what X said of it."""
    account_id: str
    world: str
    followers_count: int
    following_count: int | None
    tweet_count: int | None


def collection_starts(conn, starts: Sequence[CollectionStart], now: datetime, first_due: datetime,
                      second_due: datetime) -> list[tuple[bool, list[dict], bool]]:
    """``collection_start`` for several accounts (distinct ones) in one round trip: a simulated daemon's collect turn
    (``jobs.collect.tick_many``) snapshots every account and reads what each has due, with one statement per kind for
    all of them, not one per account (a turn of 10 accounts: 4 statements instead of 40). Per account, in the order
    given: (snapshot written, posts with a pass due, final outcomes not yet applied), each as ``collection_start``
    returns it for that account alone (each account's part reads and writes only that account's rows).

    When every account is simulated and the connection autocommits, the implicit transaction commits without
    waiting for the WAL flush (``synchronous_commit`` off for it alone): a sandbox's snapshots are reproducible from
    its seed, and the flush was the largest wait of a collect tick (~1.5–4 ms of 96 ticks a simulated day). A
    PostgreSQL crash may lose the last fraction of a second of such snapshots, never a live account's (a turn with a
    live account commits synchronously, as does everything inside a caller's transaction)."""
    if not starts:
        return []
    accounts = [s.account_id for s in starts]
    if len(set(accounts)) != len(accounts):
        raise ValueError(f"collection_starts: each account once (got {accounts}); a repeated account's second "
                         "snapshot is decided by the first, so call collection_start for each in turn")
    simulated = [s.world != "live" for s in starts]
    # the snapshot and the pending flag are one statement (the insert a CTE of the read), the posts due another: two
    # statements a tick instead of four (the relaxed commit rides along as a column), which was ~0.3 ms of the
    # client's and ~0.05 ms of the server's CPU per tick (1,441 hourly ticks a 60-day campaign)
    relaxed = f", {RELAXED_COMMIT_SQL} AS relaxed" if all(simulated) and conn.autocommit else ""
    one = starts[0] if len(starts) == 1 else None
    with conn.pipeline():
        if one is not None:   # one account: its own statements (PostgreSQL's work for unnest's is about twice theirs)
            start = conn.execute(_START_SQL.format(relaxed=relaxed), {
                "acc": one.account_id, "now": now, "f": int(one.followers_count), "fo": one.following_count,
                "tc": one.tweet_count, "sim": simulated[0]})
            awaiting = conn.execute(_AWAITING_SQL, {"acc": one.account_id, "world": one.world,
                                                    "first_due": first_due, "second_due": second_due})
        else:
            # the accounts, their worlds and whether each is simulated written into the text: a daemon sends the same
            # ones every tick, so each statement is planned once (store.db.array_in_statement)
            accs, sims = array_in_statement(accounts), array_in_statement(simulated, "bool")
            start = conn.execute(_STARTS_SQL.format(relaxed=relaxed, accs=accs, sims=sims), {
                "now": now, "f": [int(s.followers_count) for s in starts],
                "fo": [s.following_count for s in starts], "tc": [s.tweet_count for s in starts]})
            awaiting = conn.execute(_AWAITING_MANY_SQL.format(accs=accs, worlds=array_in_statement(
                [s.world for s in starts])), {"first_due": first_due, "second_due": second_due})
    if one is not None:
        row = start.fetchone()
        return [(row["written"], awaiting.fetchall(), bool(row["pending"]))]
    firsts = start.fetchall()
    due: list[list[dict]] = [[] for _ in starts]
    for r in awaiting.fetchall():
        due[r.pop("ord") - 1].append(r)
    return [(r["written"], d, bool(r["pending"])) for r, d in zip(firsts, due)]


_SNAPSHOT_SQL = """INSERT INTO follower_snapshots (account_id, taken_at, followers_count, following_count, tweet_count, simulated)
           SELECT %(acc)s, %(now)s, %(f)s, %(fo)s, %(tc)s, %(sim)s
            WHERE NOT EXISTS (SELECT 1 FROM follower_snapshots
                               WHERE account_id = %(acc)s AND taken_at = %(now)s AND simulated = %(sim)s)
           RETURNING snapshot_id"""
# the same, for several accounts (in the order given, so their snapshot ids follow it as they did one by one)
# ({accs} and {sims}: the accounts and whether each is simulated, written into the text by ``db.array_in_statement``
# so that a daemon's statement is planned once; each one's counts are the parameters' element at its place)
_SNAPSHOTS_SQL = """INSERT INTO follower_snapshots (account_id, taken_at, followers_count, following_count, tweet_count, simulated)
           SELECT s.acc, %(now)s, (%(f)s::int4[])[s.ord], (%(fo)s::int4[])[s.ord], (%(tc)s::int4[])[s.ord], s.sim
             FROM unnest({accs}, {sims}) WITH ORDINALITY AS s(acc, sim, ord)
            WHERE NOT EXISTS (SELECT 1 FROM follower_snapshots
                               WHERE account_id = s.acc AND taken_at = %(now)s AND simulated = s.sim)
            ORDER BY s.ord
           RETURNING account_id"""
# whether final outcomes of the account {acc} (in the world {sim}) wait for the bandits
_PENDING = """EXISTS (SELECT 1 FROM outcomes WHERE account_id = {acc} AND collected_pass = 2 AND NOT bandit_applied
                                 AND simulated = {sim}) AS pending"""
_PENDING_SQL = "SELECT " + _PENDING.format(acc="%s", sim="%s")
# a collect tick's first write and read: its snapshot (``_SNAPSHOT_SQL``: ``written`` when a row was added) and whether
# final outcomes wait for the bandits (``pending``); {relaxed} adds the relaxed commit as a column, or nothing
_START_SQL = (f"WITH written AS ({_SNAPSHOT_SQL}) SELECT EXISTS (SELECT 1 FROM written) AS written, "
              f"{_PENDING.format(acc='%(acc)s', sim='%(sim)s')}{{relaxed}}")
# the same for several accounts, a row each in the order given (the snapshots inserted in that order: ``_SNAPSHOTS_SQL``)
_STARTS_SQL = (f"WITH written AS ({_SNAPSHOTS_SQL}) "
               "SELECT EXISTS (SELECT 1 FROM written w WHERE w.account_id = a.acc) AS written, "
               f"{_PENDING.format(acc='a.acc', sim='a.sim')}{{relaxed}} "
               "FROM unnest({accs}, {sims}) WITH ORDINALITY AS a(acc, sim, ord) ORDER BY a.ord")
# one account's posts with a pass due (published by the pass's delay ago, that pass not stored); {acc} and {world} name
# the account and its world. Every collect tick sends it. It walks the account's posts not marked ``collection_done``
# (both passes stored; migration 0015's trigger keeps the mark) up to the last hour's cut-off: the last day's posts
# and any X would not let us read, not every post of the account's history (2.6 ms a tick at a year of 8 posts a
# day when it walked them all). Each is kept or dropped by index probes of outcomes (pass 1 first: a post with none
# is due); only the few kept join content_metadata and read their stored passes. The mark only narrows the walk,
# the probes decide: a post not yet marked is read exactly as before. Posts with pass 1 stored that wait for their
# pass 2 (most posts of the last day, at most ticks) are dropped here, not sent to be dropped by the collector: their
# rows were ~5 % of a simulated daemon's CPU (fetched, made dicts, then found not due). Written as a join of every
# post with all its outcomes, grouped and counted, it joined and sorted all of them first: 1.0–1.6 ms of server CPU
# a tick at 60 simulated days against 0.45–0.8 ms this way. (decision_id, collected_pass) is unique and
# collected_pass is 1 or 2, so ``stored`` holds at most one pass.
_AWAITING = """SELECT pd.decision_id::text AS decision_id, pd.tweet_id, pd.posted_at, cm.novelty, cm.dup_penalty,
                  ARRAY(SELECT o.collected_pass FROM outcomes o WHERE o.decision_id = pd.decision_id) AS stored
             FROM posted_decisions pd
             JOIN content_metadata cm ON cm.decision_id = pd.decision_id
            WHERE pd.account_id = {acc} AND pd.world = {world} AND pd.posted_at <= %(first_due)s
              AND NOT pd.collection_done
              AND (NOT EXISTS (SELECT 1 FROM outcomes o WHERE o.decision_id = pd.decision_id AND o.collected_pass = 1)
                   OR (pd.posted_at <= %(second_due)s
                       AND NOT EXISTS (SELECT 1 FROM outcomes o WHERE o.decision_id = pd.decision_id
                                                                AND o.collected_pass = 2)))"""
_AWAITING_SQL = _AWAITING.format(acc="%(acc)s", world="%(world)s") + " ORDER BY pd.posted_at, pd.tweet_id"
# each account's, one after the other (``ord``: its place, from 1), each by the one-account query
_AWAITING_MANY_SQL = (
    "SELECT a.ord, w.* FROM unnest({accs}, {worlds}) WITH ORDINALITY AS a(acc, world, ord) "
    f"CROSS JOIN LATERAL ({_AWAITING.format(acc='a.acc', world='a.world').replace('{', '{{').replace('}', '}}')}) w "
    "ORDER BY a.ord, w.posted_at, w.tweet_id")


def follower_counts_covering(conn, account_id: str, simulated: bool, since: datetime,
                             until: datetime) -> list[tuple[datetime, int]]:
    """(taken_at, followers_count) of the snapshots covering [since, until]: from the last one at or before
    ``since`` to the first one at or after ``until`` (intervals that straddle either end count)."""
    rows = conn.execute(
        """SELECT taken_at, followers_count FROM follower_snapshots
            WHERE account_id = %(acc)s AND simulated = %(sim)s
              AND taken_at >= COALESCE((SELECT max(taken_at) FROM follower_snapshots
                                         WHERE account_id = %(acc)s AND simulated = %(sim)s AND taken_at <= %(since)s),
                                       %(since)s)
              AND taken_at <= COALESCE((SELECT min(taken_at) FROM follower_snapshots
                                         WHERE account_id = %(acc)s AND simulated = %(sim)s AND taken_at >= %(until)s),
                                       %(until)s)
            ORDER BY taken_at""",
        {"acc": account_id, "sim": simulated, "since": since, "until": until}).fetchall()
    return [(r["taken_at"], int(r["followers_count"])) for r in rows]


def posts_for_attribution(conn, account_id: str, world: str, after: datetime, until: datetime) -> list[dict]:
    """Posts of ``world`` published in (after, until], with what the collector read of their profile visits:
    decision_id (text), posted_at, profile_visits (the latest read), read_at (when that read was stored; None
    before any), first_visits and first_read_at (the pass-1 read; None before it)."""
    return conn.execute(
        """SELECT pd.decision_id::text AS decision_id, pd.posted_at, pd.profile_visits,
                  (SELECT max(o.collected_at) FROM outcomes o WHERE o.decision_id = pd.decision_id) AS read_at,
                  o1.profile_visits AS first_visits, o1.collected_at AS first_read_at
             FROM posted_decisions pd
             LEFT JOIN outcomes o1 ON o1.decision_id = pd.decision_id AND o1.collected_pass = 1
            WHERE pd.account_id = %s AND pd.world = %s AND pd.posted_at > %s AND pd.posted_at <= %s
            ORDER BY pd.posted_at, pd.tweet_id""",
        (account_id, world, after, until)).fetchall()


def upsert_outcomes(conn, rows: Sequence[Mapping[str, Any]], latest: Mapping[str, Mapping[str, int]]) -> list[dict]:
    """Upsert outcome rows (only changed values are rewritten) and the latest counts on posted_decisions.

    ``rows`` carry the ``OUTCOME_COLUMNS``; ``latest`` maps decision_id -> the newest read's counts.
    Returns the rows actually inserted or changed (outcome_id, decision_id, collected_pass).

    Both writes are one statement (the counts' UPDATE rides in a data-modifying WITH): atomic on its own,
    so on an autocommit connection a batch costs one round trip instead of BEGIN, two statements and COMMIT.
    """
    latest_params = [array_literal(list(latest)),
                     *(array_literal([int(m.get(k) or 0) for m in latest.values()]) for k in _LATEST_COUNTS)]
    if not rows:
        if latest:
            conn.execute(_LATEST_SQL, latest_params)
        return []
    columns = [array_literal([r[c] for r in rows]) for c in OUTCOME_COLUMNS]
    if latest:
        returned = conn.execute(f"WITH latest AS ({_LATEST_SQL}) {_UPSERT_SQL}", [*latest_params, *columns]).fetchall()
    else:
        returned = conn.execute(_UPSERT_SQL, columns).fetchall()
    # RETURNING has no order of its own: give the rows back in the order they were passed
    position = {(str(r["decision_id"]), int(r["collected_pass"])): i for i, r in enumerate(rows)}
    return sorted(returned, key=lambda s: position[(str(s["decision_id"]), int(s["collected_pass"]))])


def followers_by_local_day(conn, account_id: str) -> list[dict]:
    """Per day in the account's timezone, oldest first: ``day``, ``followers`` (the day's last snapshot),
    ``first_of_day`` (its first), ``snapshots`` and ``simulated`` (any snapshot of the day simulated)."""
    return conn.execute(
        """SELECT (fs.taken_at AT TIME ZONE coalesce(a.timezone, 'UTC'))::date AS day,
                  (array_agg(fs.followers_count ORDER BY fs.taken_at DESC))[1] AS followers,
                  (array_agg(fs.followers_count ORDER BY fs.taken_at))[1] AS first_of_day,
                  count(*) AS snapshots, bool_or(fs.simulated) AS simulated
             FROM follower_snapshots fs LEFT JOIN accounts a ON a.account_id = fs.account_id
            WHERE fs.account_id = %s GROUP BY 1 ORDER BY 1""", (account_id,)).fetchall()


def posted_hooks(conn, account_id: str, world: str) -> list[tuple[datetime, str]]:
    """(posted_at, hook pattern) of each of the account's posts in ``world`` (not replies), oldest first: which
    hook a policy chose, day by day (``xbot bench growth``'s days to move to a new best hook)."""
    rows = conn.execute(
        """SELECT pd.posted_at, cm.hook_pattern FROM posted_decisions pd
             JOIN content_metadata cm ON cm.decision_id = pd.decision_id
            WHERE pd.account_id = %s AND pd.world = %s AND cm.decision_type = 'post' AND cm.hook_pattern IS NOT NULL
            ORDER BY pd.posted_at, pd.tweet_id""", (account_id, world)).fetchall()
    return [(r["posted_at"], r["hook_pattern"]) for r in rows]


def newest_posted_tweet_id(conn, account_id: str, world: str) -> str | None:
    """The tweet id of the account's most recent post in ``world``, None before the first."""
    row = conn.execute("""SELECT tweet_id FROM posted_decisions WHERE account_id = %s AND world = %s
                           ORDER BY posted_at DESC, tweet_id DESC LIMIT 1""", (account_id, world)).fetchone()
    return row["tweet_id"] if row else None


def account_data_counts(conn, account_id: str) -> dict[str, int]:
    """How much the account has stored: decisions, posts, outcomes per pass, follower snapshots, model
    versions, experiment assignments, gate rejections (one consistent read)."""
    row = conn.execute(
        """SELECT (SELECT count(*) FROM content_metadata WHERE account_id = %(a)s) AS decisions,
                  (SELECT count(*) FROM posted_decisions WHERE account_id = %(a)s) AS posts,
                  (SELECT count(*) FROM outcomes WHERE account_id = %(a)s AND collected_pass = 1) AS outcomes_pass1,
                  (SELECT count(*) FROM outcomes WHERE account_id = %(a)s AND collected_pass = 2) AS outcomes_pass2,
                  (SELECT count(*) FROM follower_snapshots WHERE account_id = %(a)s) AS follower_snapshots,
                  (SELECT count(*) FROM predictors WHERE account_id = %(a)s) AS model_versions,
                  (SELECT count(*) FROM experiment_assignments WHERE account_id = %(a)s) AS assignments,
                  (SELECT count(*) FROM gate_rejections WHERE account_id = %(a)s) AS gate_rejections""",
        {"a": account_id}).fetchone()
    return {k: int(v) for k, v in row.items()}
