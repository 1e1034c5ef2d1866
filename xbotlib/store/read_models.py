"""Cheap reads behind the admin API's figures: each answers from an index range that does not grow with
the account's history (issue #19: "never a scan that grows with history").

- ``growth_model_fingerprint`` and ``outcomes_window_fingerprint``: whether the data behind the growth model
  and the outcomes-by-world counts of ``views.learning`` changed, from the account's write counts (migration
  0012) and the window's edges, so unchanged figures are served from memory instead of read again per request;
- ``open_queue_depth``: decisions still in the queue by status (``idx_cm_status``; terminal rows, a
  whole history of posts, are not read);
- ``account_if_stored``: one primary-key probe, so the default account needs no count of every decision;
- ``served_and_rejected_versions``: the predictor versions the learning status shows, not every version;
- ``arms_by_scope``: both bandit scopes in one statement;
- ``profile_version``: whether the account's profile changed, without reading or parsing it;
- ``learning_reads``: everything the learning status reads after the account, in one statement;
- ``learning_version``: values equal only when everything the learning status reads is (a kept body is sent again
  after one small statement);
- ``metrics_reads``: the account, its "now" and every figure of the operating metrics, in one statement.

Size: over 400 lines because each route's one statement is composed here from the reads above (their SQL
fragments are shared, so the one-statement forms stay the same queries the separate reads are tested against).

The routes' statements that begin with the account (``metrics_reads``, ``learning_reads`` with ``wall_now``) find
the world's "now" themselves (``account_now_sql``), so a route is one round trip: one statement, one snapshot, no
BEGIN and COMMIT around it.
"""
from __future__ import annotations

import json
import re
from datetime import datetime, timedelta
from typing import Sequence

from xbotlib.core.bandit import ArmStats
from xbotlib.core.predictors import LastVersion
from xbotlib.store.outcomes import MODEL_WINDOW_DAYS
from xbotlib.store.queue import STATUSES
from xbotlib.store.worlds import LATEST_EVENT_SQL, check_world


def _writes(sources: Sequence[str]) -> str:
    """SQL for the account's write counts of ``sources`` (migration 0012) as one text, e.g.
    ``outcomes:12:7731,posted_decisions:3:7729``: count and xmin of each row (NULL before any counted write)."""
    names = ", ".join(f"'{s}'" for s in sources)  # constants of this module, never input
    return f"""(SELECT string_agg(w.source || ':' || w.writes || ':' || w.xmin::text, ',' ORDER BY w.source)
                  FROM account_write_counts w WHERE w.account_id = %(acc)s AND w.source IN ({names}))"""


# What decides ``outcomes.post_outcomes`` (parameters acc, model_since) and ``worlds.outcomes_by_world``
# (acc, since, until), as select-list columns: the fingerprints below and ``learning_fingerprints`` share them.
_GROWTH_MODEL_COLUMNS = f"""{_writes(("follower_snapshots", "outcomes", "posted_decisions"))} AS model_writes,
    (SELECT min(pd.posted_at) FROM posted_decisions pd
      WHERE pd.account_id = %(acc)s AND pd.posted_at > %(model_since)s) AS first_post"""
_OUTCOMES_WINDOW_COLUMNS = f"""{_writes(("outcomes", "posted_decisions"))} AS outcome_writes,
    (SELECT min(collected_at) FROM outcomes
      WHERE account_id = %(acc)s AND collected_at > %(since)s AND collected_at <= %(until)s) AS first,
    (SELECT max(collected_at) FROM outcomes
      WHERE account_id = %(acc)s AND collected_at > %(since)s AND collected_at <= %(until)s) AS last"""


def growth_model_fingerprint(conn, account_id: str, world: str, now: datetime) -> tuple:
    """A fingerprint of every input of ``outcomes.post_outcomes`` for these arguments: equal fingerprints,
    equal inputs. O(log n) whatever the history: a handful of index probes.

    The data: the account's write counts of outcomes, posted_decisions and follower_snapshots (migration
    0012: any statement that changes a row of the account changes them; content_metadata is not counted: a
    decision's hook, topic, hour and novelty are fixed when it is planned, before it is posted). The window:
    with the data fixed, the posts after ``now - MODEL_WINDOW_DAYS`` are those from the first one after it,
    so its ``posted_at`` stands for the window (``idx_posted_account_time``). And the database, so two
    databases with equal counts never share a fingerprint."""
    check_world(world)
    row = conn.execute(f"SELECT current_database() AS db, {_GROWTH_MODEL_COLUMNS}",
                       {"acc": account_id, "model_since": now - timedelta(days=MODEL_WINDOW_DAYS)}).fetchone()
    return row["db"], row["model_writes"], row["first_post"]


def outcomes_window_fingerprint(conn, account_id: str, since: datetime, until: datetime) -> tuple:
    """A fingerprint of what ``worlds.outcomes_by_world(conn, account_id, since, until)`` counts: the account's
    write counts of outcomes and posted_decisions (migration 0012), and, with the data fixed, the window's
    first and last ``collected_at`` (``idx_outcomes_account_collected``), which decide which outcomes it holds."""
    row = conn.execute(f"SELECT current_database() AS db, {_OUTCOMES_WINDOW_COLUMNS}",
                       {"acc": account_id, "since": since, "until": until}).fetchone()
    return row["db"], row["outcome_writes"], row["first"], row["last"]


def open_queue_depth(conn, account_id: str, statuses: Sequence[str]) -> dict[str, int]:
    """Decisions of the account in each of ``statuses`` (0 for none), counted on ``idx_cm_status``.

    The statuses (``queue.STATUSES``, checked) are written into the text, not sent as a parameter: with an array
    parameter PostgreSQL priced the generic plan above a custom one and planned the statement on every request."""
    unknown = [s for s in statuses if s not in STATUSES]
    if unknown:
        raise ValueError(f"unknown decision statuses {unknown} (expected some of {', '.join(STATUSES)})")
    if not statuses:
        return {}
    listed = ", ".join(f"'{s}'" for s in statuses)
    rows = conn.execute(
        f"""SELECT status, count(*) AS n FROM content_metadata
             WHERE account_id = %s AND status IN ({listed}) GROUP BY status""", (account_id,)).fetchall()
    depth = {s: 0 for s in statuses}
    depth.update({r["status"]: int(r["n"]) for r in rows})
    return depth


def account_if_stored(conn, account_id: str) -> bool:
    """Whether ``accounts`` has a row for ``account_id``."""
    return conn.execute("SELECT 1 FROM accounts WHERE account_id = %s", (account_id,)).fetchone() is not None


# the columns of ``models.list_versions`` that ``views.learning.ModelVersion`` shows: no jsonb (features,
# metrics), so nothing is parsed that the status page does not show
_VERSION_COLUMNS = """version, predictor_key, kind, algorithm, world, n_samples, cv_score, baseline_score,
                      trained_through, trained_at, rejected_reason,
                      CASE WHEN rejected_reason IS NOT NULL THEN 'rejected' WHEN is_active THEN 'active'
                           ELSE 'retired' END AS status"""


# the versions shown (params acc, now, limit), each branch numbered in its order (ord), the active ones first
_VERSIONS_SQL = f"""(SELECT 'active' AS shown, row_number() OVER (ORDER BY kind, world, version DESC) AS ord,
                    {_VERSION_COLUMNS} FROM predictors
              WHERE account_id = %(acc)s AND is_active AND trained_at <= %(now)s)
            UNION ALL
            (SELECT 'rejected' AS shown, row_number() OVER (ORDER BY p.trained_at DESC, p.kind, p.version DESC) AS ord,
                    {_VERSION_COLUMNS} FROM predictors p
              WHERE p.account_id = %(acc)s AND p.rejected_reason IS NOT NULL AND p.trained_at <= %(now)s
                AND p.version > coalesce((SELECT min(a.version) FROM predictors a
                                           WHERE a.account_id = p.account_id AND a.kind = p.kind
                                             AND a.world = p.world AND a.is_active AND a.trained_at <= %(now)s), 0)
              ORDER BY p.trained_at DESC, p.kind, p.version DESC LIMIT %(limit)s)"""


def _split_versions(rows: Sequence[dict]) -> tuple[list[dict], list[dict]]:
    rows = sorted(rows, key=lambda r: (r["shown"], r["ord"]))  # 'active' < 'rejected'
    shown = [{k: v for k, v in r.items() if k not in ("shown", "ord")} for r in rows]
    return ([v for r, v in zip(rows, shown) if r["shown"] == "active"],
            [v for r, v in zip(rows, shown) if r["shown"] == "rejected"])


def served_and_rejected_versions(conn, account_id: str, now: datetime, limit: int) -> tuple[list[dict], list[dict]]:
    """The predictor versions ``views.learning_status`` shows, trained at or before ``now``: the active ones by
    (kind, world, newest version first), and the ``limit`` newest rejected versions newer than the active one
    of their kind and world (all of them when none is active), newest first (ties: kind, newest version).

    The same rows and order as filtering every version of ``models.list_versions`` (a year is ~100 versions
    per account, each with its jsonb), read in one statement: the active ones on ``predictors_version_key``,
    the rejected ones from the newest down, ``limit`` at most."""
    return _split_versions(conn.execute(_VERSIONS_SQL, {"acc": account_id, "now": now, "limit": limit}).fetchall())


# the account's bandit arms (params acc, world, scopes)
_ARMS_SQL = """SELECT scope, arm_id, pulls, reward_sum, reward_sq_sum, weight_sum FROM bandit_arms
                WHERE account_id = %(acc)s AND world = %(world)s AND scope = ANY(%(scopes)s)"""


def _arms(rows: Sequence[dict], scopes: Sequence[str]) -> dict[str, dict[str, ArmStats]]:
    out: dict[str, dict[str, ArmStats]] = {}
    for r in sorted(rows, key=lambda r: (r["scope"], r["arm_id"])):
        out.setdefault(r["scope"], {})[r["arm_id"]] = ArmStats(r["arm_id"], int(r["pulls"]), float(r["reward_sum"]),
                                                                float(r["reward_sq_sum"]), float(r["weight_sum"]))
    return {scope: out[scope] for scope in scopes if scope in out}


def arms_by_scope(conn, account_id: str, world: str, scopes: Sequence[str]) -> dict[str, dict[str, ArmStats]]:
    """``{scope: {arm_id: ArmStats}}`` of the account's bandit arms in ``world`` for each of ``scopes`` that has
    arms (``arms.load_arms`` per scope, in one statement)."""
    rows = conn.execute(_ARMS_SQL, {"acc": account_id, "world": check_world(world), "scopes": list(scopes)})
    return _arms(rows.fetchall(), scopes)


def profile_version(conn, account_id: str) -> tuple | None:
    """What changes whenever the account's stored profile does, read without the profile itself: the row's
    ``xmin`` (any update of the row gives it a new one) and its ``profile_sha256``; None without a row."""
    row = conn.execute("SELECT xmin::text AS xmin, profile_sha256, profile IS NOT NULL AS has_profile "
                       "FROM accounts WHERE account_id = %s", (account_id,)).fetchone()
    return None if row is None else (row["xmin"], row["profile_sha256"], row["has_profile"])


def account_with_latest_event(conn, account_id: str, world: str | None) -> dict | None:
    """The account's ``created_at`` and, when ``world`` is given, its latest event there (``latest``:
    ``worlds.latest_event_at``) in one statement; None when the account is not stored."""
    sim = world is not None and check_world(world) != "live"
    latest = LATEST_EVENT_SQL if world is not None else "NULL::timestamptz"
    return conn.execute(f"SELECT created_at, {latest} AS latest FROM accounts WHERE account_id = %(acc)s",
                        {"acc": account_id, "sim": sim, "world": world}).fetchone()


# the account's profile version and the caches' fingerprints (params acc, model_since, since, until): FROM-list
# items whose columns learning_fingerprints reads
_FINGERPRINTS_FROM = f"""(SELECT current_database() AS db,
                   a.xmin::text AS xmin, a.profile_sha256 AS sha, a.profile IS NOT NULL AS has_profile,
                   {_GROWTH_MODEL_COLUMNS}, {_OUTCOMES_WINDOW_COLUMNS}
              FROM (SELECT 1) AS one LEFT JOIN accounts a ON a.account_id = %(acc)s) AS fp"""


def _fingerprint_params(account_id: str, now: datetime, outcomes_since: datetime) -> dict:
    return {"acc": account_id, "model_since": now - timedelta(days=MODEL_WINDOW_DAYS), "since": outcomes_since,
            "until": now}


def _fingerprints(row: dict) -> dict:
    return {"profile": None if row["xmin"] is None else (row["xmin"], row["sha"], row["has_profile"]),
            "growth_model": (row["db"], row["model_writes"], row["first_post"]),
            "outcomes": (row["db"], row["outcome_writes"], row["first"], row["last"])}


def learning_fingerprints(conn, account_id: str, world: str, now: datetime, outcomes_since: datetime) -> dict:
    """In one statement: ``profile_version``, ``growth_model_fingerprint(conn, account_id, world, now)`` and
    ``outcomes_window_fingerprint(conn, account_id, outcomes_since, now)`` (keys ``profile``, ``growth_model``,
    ``outcomes``: the same values those return)."""
    check_world(world)
    return _fingerprints(conn.execute(f"SELECT fp.* FROM {_FINGERPRINTS_FROM}",
                                      _fingerprint_params(account_id, now, outcomes_since)).fetchone())


def _fresh_from(world: str) -> str:
    """The newest content model of ``world`` and the fresh count after it (param acc) as a FROM-list item ``lv``
    with columns version, trained_through, trained_at, fresh. The world is written into the text (two
    statements, one per world), not a parameter: with it as a parameter PostgreSQL estimated the generic plan
    at 5x a custom one and planned the statement again on every execution."""
    sim = "true" if check_world(world) != "live" else "false"
    return f"""(SELECT v.version, v.trained_through, v.trained_at,
                   (SELECT count(*) FROM outcomes o
                     WHERE o.account_id = %(acc)s AND o.collected_pass = 2
                       AND (o.simulated, o.outcome_id) > ({sim}, coalesce(v.trained_through, 0))
                       AND (o.simulated, o.outcome_id) <= ({sim}, 9223372036854775807)) AS fresh
              FROM (SELECT 1) AS one
              LEFT JOIN LATERAL (SELECT version, trained_through, trained_at FROM predictors
                                  WHERE account_id = %(acc)s AND kind = 'content' AND world = '{world}'
                                    AND target = 'reward_composite' ORDER BY version DESC LIMIT 1) v ON true) AS lv"""


def _last_and_fresh(row: dict) -> tuple[LastVersion | None, int]:
    last = None if row["version"] is None else LastVersion(int(row["version"]), row["trained_through"],
                                                            row["trained_at"])
    return last, int(row["fresh"])


def last_version_and_fresh(conn, account_id: str, world: str) -> tuple[LastVersion | None, int]:
    """``models.last_version`` and ``training_data.count_fresh_outcomes`` after it, in one statement: the newest
    content predictor of ``world`` (None before the first) and the pass-2 outcomes of ``world`` newer than its
    ``trained_through`` (all of them without one), an index range of the new ones (``idx_outcomes_fresh``).

    The world and the bound are row comparisons on (simulated, outcome_id), the index's 2nd and 3rd columns, not
    ``simulated = s AND outcome_id > t``: that form lets the planner serve it from ``outcomes_pkey`` instead, a
    range of every account's outcomes newer than ``t`` filtered down to this account's, and it did whenever
    the table's pages were not yet marked all-visible (a freshly written table, before autovacuum: an index-only
    scan of ``idx_outcomes_fresh`` then costs as much as an index scan). Measured on 365 days x 10 accounts
    before vacuum: 34,908 rows read and discarded, 5.6 ms, most of the learning status's PostgreSQL CPU. No
    other index has (simulated, outcome_id) as consecutive columns, and ``simulated`` has no equality that
    btree would start the range from, so the range starts at (account, s, t) and ends after (account, s, max)
    whatever the statistics: a few index pages."""
    return _last_and_fresh(conn.execute(f"SELECT lv.* FROM {_fresh_from(world)}", {"acc": account_id}).fetchone())


def _learning_select(world: str, first: str = "") -> str:
    """The select list and FROM list of the learning reads (``learning_reads``), the FROM list after ``first``
    (e.g. ``"t, "``, which the others may then refer to); params acc, now, model_since, since, until, limit, world,
    scopes."""
    return f"""(SELECT json_agg(v)::text FROM ({_VERSIONS_SQL}) v) AS versions,
                   (SELECT json_agg(a)::text FROM ({_ARMS_SQL}) a) AS arms,
                   lv.*, fp.*
              FROM {first}{_fresh_from(world)}, LATERAL {_FINGERPRINTS_FROM}"""


def learning_result(row: dict, scopes: Sequence[str]) -> dict:
    """The values of ``learning_reads`` from its statement's row (``account_learning_row``'s too): the row sets
    arrive as JSON text, parsed here (a caller that keeps what it made of an equal row need not parse it)."""
    versions = [{**v, "trained_at": datetime.fromisoformat(v["trained_at"])}
                for v in json.loads(row["versions"] or "[]")]
    active, rejected = _split_versions(versions)
    last, fresh = _last_and_fresh(row)
    return {"active": active, "rejected": rejected, "arms": _arms(json.loads(row["arms"] or "[]"), scopes),
            "last": last, "fresh": fresh, "fingerprints": _fingerprints(row)}


def learning_reads(conn, account_id: str, world: str, now: datetime, outcomes_since: datetime,
                   rejected_limit: int, scopes: Sequence[str]) -> dict:
    """What ``views.learning_status`` reads after the account, in one statement (one round trip, not four):
    ``served_and_rejected_versions(conn, account_id, now, rejected_limit)`` (keys ``active``, ``rejected``),
    ``arms_by_scope(conn, account_id, world, scopes)`` (``arms``), ``last_version_and_fresh(conn, account_id,
    world)`` (``last``, ``fresh``) and ``learning_fingerprints(conn, account_id, world, now, outcomes_since)``
    (``fingerprints``), the same values those return. The row sets travel as JSON (numbers exact: PostgreSQL
    writes a float8 in the shortest text that reads back as the same double); ``trained_at`` is parsed back."""
    row = conn.execute(
        f"SELECT {_learning_select(world)}",
        {**_fingerprint_params(account_id, now, outcomes_since), "now": now, "limit": rejected_limit,
         "world": world, "scopes": list(scopes)}).fetchone()
    return learning_result(row, scopes)


# What the learning status is made of, as values that change whenever any of it does (params acc, world; FROM t,
# ``account_now_sql``): the account's row (created_at, the profile: its xmin, new on any update), the write counts of
# outcomes, posted_decisions and follower_snapshots (migration 0012, as the caches' fingerprints), and the account's
# predictors and its arms in the world, each as its row count and the sum of every row's xmin hashed (an insert,
# update or delete adds, changes or drops a term: the status reads every version of the account and every arm of the
# world, ~100 and ~14 rows a year of history; no trigger on the jobs' writes of them). content_metadata reaches the
# status only as the world's latest event, which is ``t.latest`` itself.
_LEARNING_VERSION_COLUMNS = f"""current_database() AS v_db,
    (SELECT xmin::text FROM accounts WHERE account_id = %(acc)s) AS v_account,
    {_writes(("follower_snapshots", "outcomes", "posted_decisions"))} AS v_writes,
    (SELECT count(*) || ':' || coalesce(sum(hashint8(xmin::text::bigint)), 0) FROM predictors
      WHERE account_id = %(acc)s) AS v_predictors,
    (SELECT count(*) || ':' || coalesce(sum(hashint8(xmin::text::bigint)), 0) FROM bandit_arms
      WHERE account_id = %(acc)s AND world = %(world)s) AS v_arms"""
LEARNING_VERSION = ("latest", "v_db", "v_account", "v_writes", "v_predictors", "v_arms")


def learning_version(conn, account_id: str, world: str, wall_now: datetime) -> dict | None:
    """The account's "now" in ``world`` (``account_now_sql``: ``created_at``, ``latest``, ``now``) and the columns of
    ``LEARNING_VERSION``, which ``account_learning_row`` reads too: a small statement (a few index probes, no row
    set) whose values are equal only when everything that statement reads is. None when the account is not stored."""
    return _at_account_now(conn, account_id, world, wall_now, _LEARNING_VERSION_COLUMNS)


def account_learning_row(conn, account_id: str, world: str, wall_now: datetime, outcomes_window: timedelta,
                         rejected_limit: int, scopes: Sequence[str]) -> dict | None:
    """The account, its "now" in ``world`` (``account_now_sql``: ``created_at``, ``latest``, ``now``), the columns of
    ``learning_version`` and the row of ``learning_reads`` at that now with ``outcomes_since = now - outcomes_window``
    (``learning_result`` makes its values), in one statement: the learning status's one round trip. Every value is
    a scalar (the row sets are JSON text), so the row can key what is made of it. None when the account is not stored.

    The same statement as ``learning_reads``, its times taken from ``t``: each ``%(now)s`` (and ``until``) is
    ``t.now`` and each window's start ``t.now`` less the window in hours, as Python's timedelta subtracts."""
    sql = (f"WITH {account_now_sql(world)} SELECT t.created_at, t.latest, t.now, {_LEARNING_VERSION_COLUMNS}, "
           f"{_learning_select(world, 't, ')}")
    for param, expr in (("model_since", f"(t.now - {_hours(timedelta(days=MODEL_WINDOW_DAYS))})"),
                        ("since", f"(t.now - {_hours(outcomes_window)})"), ("until", "t.now"), ("now", "t.now")):
        sql = sql.replace(f"%({param})s", expr)
    return conn.execute(sql, {**account_now_params(account_id, world, wall_now), "limit": rejected_limit,
                              "scopes": list(scopes)}).fetchone()


def _growth_probes(windows: dict[str, tuple], bound) -> str:
    """The select-list columns of ``growth_fingerprint``'s values: ``db``, ``writes`` and ``edges`` (param acc), each
    window's edges bounded by ``bound(i, 'lo' or 'hi', value)``, its SQL for the window's i-th bound."""
    columns = {"follower_snapshots": "taken_at", "outcomes": "collected_at"}
    probes = []
    for i, (table, low, high, low_inclusive) in enumerate(windows.values()):
        col = columns[table]  # a KeyError for any other table: these are constants of views.followers
        lo, hi = bound(i, "lo", low), bound(i, "hi", high)
        where = f"account_id = %(acc)s AND {col} {'>=' if low_inclusive else '>'} {lo} AND {col} <= {hi}"
        probes.append(f"(SELECT min({col}) FROM {table} WHERE {where}), (SELECT max({col}) FROM {table} WHERE {where})")
    return f"""current_database() AS db, {_writes(("follower_snapshots", "outcomes", "posted_decisions"))} AS writes,
               ARRAY[{", ".join(probes)}] AS edges"""


def growth_fingerprint(conn, account_id: str, windows: dict[str, tuple[str, datetime, datetime, bool]]) -> tuple:
    """A fingerprint of what ``views.growth`` reads for the account: its write counts of follower_snapshots,
    outcomes and posted_decisions (migration 0012) and, with the data fixed, the first and last row of each
    window, which decide which rows it holds. ``windows``: name -> (table, low, high, low_inclusive), the table
    'follower_snapshots' (by ``taken_at``, ``idx_snapshots_account_time``) or 'outcomes' (by ``collected_at``,
    ``idx_outcomes_account_collected``), the window (low, high] or [low, high]. Two index probes per window.
    content_metadata is not counted: a posted decision's text and novelty do not change after it is posted."""
    params = {"acc": account_id}

    def bound(i: int, end: str, value: datetime) -> str:
        params[f"{end}{i}"] = value
        return f"%({end}{i})s"

    row = conn.execute(f"SELECT {_growth_probes(windows, bound)}", params).fetchone()
    return row["db"], row["writes"], tuple(row["edges"])


def account_growth_row(conn, account_id: str, world: str, wall_now: datetime, windows: dict[str, tuple]) -> dict | None:
    """The account, its "now" in ``world`` (``account_now_sql``: ``created_at``, ``latest``, ``now``) and
    ``growth_fingerprint``'s values at that now (``db``, ``writes``, ``edges``) in one statement: the growth route's
    one round trip while its figures are held. ``windows`` as ``growth_fingerprint``'s, each bound (from, offset):
    ``from - offset``, ``from`` 'now' (``t.now``) or 'day' (UTC midnight of now's day). None when the account is not
    stored."""
    def bound(_i: int, _end: str, value: tuple[str, timedelta]) -> str:
        start = {"now": "t.now", "day": "date_trunc('day', t.now, 'UTC')"}[value[0]]
        return f"({start} - {_hours(value[1])})"

    return _at_account_now(conn, account_id, world, wall_now, _growth_probes(windows, bound))


# ----------------------------------------------------------------------------- one statement per route

def account_now_sql(world: str) -> str:
    """CTEs ending in ``t`` (params acc, wall_now, and for a simulated world sim and world) of one row per stored account:
    ``created_at``, ``latest`` (``worlds.latest_event_at``; NULL for the live world) and ``now``, the world's "now"
    as ``views.world_now`` finds it: the latest event of a simulated world, else the wall clock. No row when the
    account is not stored. MATERIALIZED: inlined, each reference to ``latest`` or ``t.now`` would find the latest
    event again."""
    sim = check_world(world) != "live"
    latest = LATEST_EVENT_SQL if sim else "NULL::timestamptz"
    now = "coalesce(s.latest, %(wall_now)s::timestamptz)" if sim else "%(wall_now)s::timestamptz"
    return f"""stored AS MATERIALIZED (SELECT created_at, {latest} AS latest FROM accounts WHERE account_id = %(acc)s),
               t AS MATERIALIZED (SELECT s.created_at, s.latest, {now} AS now FROM stored s)"""


def account_now_params(account_id: str, world: str, wall_now: datetime) -> dict:
    """The parameters ``account_now_sql`` reads (acc, world, sim, wall_now); a statement adds its own."""
    return {"acc": account_id, "world": world, "sim": check_world(world) != "live", "wall_now": wall_now}


def _at_account_now(conn, account_id: str, world: str, wall_now: datetime, columns: str) -> dict | None:
    """One statement: the account, its "now" in ``world`` (``account_now_sql``: ``created_at``, ``latest``, ``now``)
    and ``columns`` (select-list SQL that may read ``t``, with params acc and world); None when the account is not
    stored."""
    return conn.execute(f"WITH {account_now_sql(world)} SELECT t.created_at, t.latest, t.now, {columns} FROM t",
                        account_now_params(account_id, world, wall_now)).fetchone()


def _hours(td: timedelta) -> str:
    """``td`` as an SQL interval of hours: exact, like Python's timedelta (an interval of days is a calendar day
    in the session's time zone, 23 or 25 hours across a DST change)."""
    return f"interval '{td.total_seconds() / 3600:g} hours'"


def metrics_reads(conn, account_id: str, world: str, wall_now: datetime, statuses: Sequence[str],
                  jobs: Sequence[str]) -> dict | None:
    """Everything ``views.metrics`` shows, in one statement (one round trip and one snapshot instead of BEGIN, the
    account, seven reads and COMMIT): ``created_at``, ``latest`` and ``now`` (``account_now_sql``), and at that
    now ``followers`` (``outcomes.latest_follower_snapshot`` of 30 days), ``fpki`` (``final_outcome_averages`` of 7
    days), ``posts_today`` (``outcomes.count_posts`` since UTC midnight), ``queue`` (``open_queue_depth``),
    ``gates`` (``gates.gate_rejection_counts`` of 24 hours), ``ledger`` (``ledger.ledger_day``'s grouped rows of
    the UTC day) and ``jobs`` (``runs.last_job_runs``): the same statements' values, each a subquery on the index
    that statement uses. None when the account is not stored."""
    unknown = [s for s in statuses if s not in STATUSES]
    bad_jobs = [j for j in jobs if not re.fullmatch(r"[a-z][a-z0-9_]*", j)]
    if unknown or bad_jobs or not statuses or not jobs:
        raise ValueError(f"metrics_reads needs known statuses ({', '.join(STATUSES)}) and lowercase job names, "
                         f"got statuses {list(statuses)} and jobs {list(jobs)}")
    listed = ", ".join(f"'{s}'" for s in statuses)  # checked constants: see open_queue_depth and last_job_runs
    job_list = ", ".join(f"'{j}'" for j in jobs)
    row = conn.execute(
        f"""WITH {account_now_sql(world)}
            SELECT t.created_at, t.latest, t.now,
                   (SELECT followers_count FROM follower_snapshots
                     WHERE account_id = %(acc)s AND simulated = %(sim)s AND taken_at <= t.now
                       AND taken_at > t.now - {_hours(timedelta(days=30))}
                     ORDER BY taken_at DESC LIMIT 1) AS followers,
                   (SELECT avg(o.fpki) FROM outcomes o JOIN content_metadata cm ON cm.decision_id = o.decision_id
                     WHERE o.account_id = %(acc)s AND o.collected_pass = 2 AND o.simulated = %(sim)s
                       AND o.collected_at > t.now - {_hours(timedelta(days=7))} AND o.collected_at <= t.now) AS fpki,
                   (SELECT count(*) FROM posted_decisions
                     WHERE account_id = %(acc)s AND world = %(world)s AND posted_at >= date_trunc('day', t.now, 'UTC')
                       AND posted_at <= t.now) AS posts_today,
                   (SELECT json_object_agg(status, n) FROM (
                      SELECT status, count(*) AS n FROM content_metadata
                       WHERE account_id = %(acc)s AND status IN ({listed}) GROUP BY status) q) AS queue,
                   (SELECT json_object_agg(gate, n ORDER BY gate) FROM (
                      SELECT gate, count(*) AS n FROM gate_rejections
                       WHERE account_id = %(acc)s AND rejected_at > t.now - {_hours(timedelta(hours=24))}
                         AND rejected_at <= t.now GROUP BY gate ORDER BY gate LIMIT 100) g) AS gates,
                   (SELECT json_agg(l) FROM (
                      SELECT status, count(*) AS n, coalesce(sum(reserved_usd), 0) AS reserved,
                             coalesce(sum(cost_usd), 0) AS cost,
                             count(*) FILTER (WHERE status = 'refunded' AND error ILIKE %(rate_limit)s) AS rate_limited
                        FROM llm_ledger WHERE account_id = %(acc)s AND budget_day = (t.now AT TIME ZONE 'UTC')::date
                       GROUP BY status) l) AS ledger,
                   r.jobs, r.statuses, r.started, r.finished, r.errors
              FROM t, LATERAL (
                   SELECT array_agg(j.job ORDER BY j.ord) AS jobs, array_agg(r.status ORDER BY j.ord) AS statuses,
                          array_agg(r.started_at ORDER BY j.ord) AS started,
                          array_agg(r.finished_at ORDER BY j.ord) AS finished, array_agg(r.error ORDER BY j.ord) AS errors
                     FROM unnest(ARRAY[{job_list}]::text[]) WITH ORDINALITY AS j(job, ord)
                     LEFT JOIN LATERAL (
                          SELECT * FROM ((SELECT status, started_at, finished_at, error FROM job_runs
                                           WHERE account_id = %(acc)s AND job = j.job AND started_at <= t.now
                                           ORDER BY started_at DESC LIMIT 1)
                                         UNION ALL
                                         (SELECT status, started_at, finished_at, error FROM job_runs
                                           WHERE account_id IS NULL AND job = j.job AND started_at <= t.now
                                           ORDER BY started_at DESC LIMIT 1)) both_
                           ORDER BY started_at DESC LIMIT 1) r ON true) r""",
        {**account_now_params(account_id, world, wall_now), "rate_limit": "%rate_limit%"}).fetchone()
    if row is None:
        return None
    jobs_ = [{"job": j, "status": s, "started_at": a, "finished_at": b, "error": e}
             for j, s, a, b, e in zip(row["jobs"], row["statuses"], row["started"], row["finished"], row["errors"])]
    return {"created_at": row["created_at"], "latest": row["latest"], "now": row["now"],
            "followers": row["followers"], "fpki": row["fpki"], "posts_today": row["posts_today"],
            "queue": {s: 0 for s in statuses} | {s: int(n) for s, n in (row["queue"] or {}).items()},
            "gates": {g: int(n) for g, n in (row["gates"] or {}).items()}, "ledger": row["ledger"] or [],
            "jobs": jobs_}
