"""Outcomes as Arrow for the notebooks: every outcome row (both passes) joined to its decision and post,
read through ADBC (Arrow batches, no Python rows) or psycopg ``COPY`` parsed by pyarrow; both give
``OUTCOME_SCHEMA``."""
from __future__ import annotations

import io

import pyarrow as pa
import pyarrow.csv as pacsv
from psycopg import sql as psql

# The one shape of the outcomes table, whichever way it was read.
OUTCOME_SCHEMA = pa.schema([
    ("outcome_id", pa.int64()), ("decision_id", pa.string()), ("account_id", pa.string()),
    ("world", pa.string()), ("tweet_id", pa.string()), ("decision_type", pa.string()),
    ("generation_source", pa.string()), ("topic", pa.string()), ("hook_pattern", pa.string()),
    ("bandit_arm", pa.string()), ("timing_arm", pa.string()), ("experiment_id", pa.string()),
    ("predictor_version", pa.string()), ("content", pa.string()),
    ("posted_at", pa.timestamp("us", tz="UTC")), ("local_hour", pa.int32()), ("local_weekday", pa.int32()),
    ("collected_pass", pa.int16()), ("simulated", pa.bool_()),
    ("impressions", pa.int32()), ("likes", pa.int32()), ("retweets", pa.int32()), ("replies", pa.int32()),
    ("quotes", pa.int32()), ("bookmarks", pa.int32()), ("profile_visits", pa.int32()), ("link_clicks", pa.int32()),
    ("follows", pa.float64()), ("follows_source", pa.string()), ("er", pa.float64()), ("fpki", pa.float64()),
    ("retweet_rate", pa.float64()), ("reply_rate", pa.float64()), ("novelty", pa.float64()),
    ("reward_composite", pa.float64()), ("collected_at", pa.timestamp("us", tz="UTC")),
])

# ``local_weekday`` is 0 = Monday (Python's ``weekday()``); hours and days are the account's local time.
_OUTCOMES_SQL = """
SELECT o.outcome_id::int8 AS outcome_id, o.decision_id::text AS decision_id, o.account_id, pd.world, pd.tweet_id,
       cm.decision_type, cm.generation_source, cm.topic, cm.hook_pattern, cm.bandit_arm, cm.timing_arm,
       cm.experiment_id, cm.predictor_version, cm.content, pd.posted_at,
       extract(hour FROM pd.posted_at AT TIME ZONE coalesce(a.timezone, 'UTC'))::int4 AS local_hour,
       (extract(isodow FROM pd.posted_at AT TIME ZONE coalesce(a.timezone, 'UTC'))::int4 - 1) AS local_weekday,
       o.collected_pass, o.simulated, o.impressions, o.likes, o.retweets, o.replies, o.quotes, o.bookmarks,
       o.profile_visits, o.link_clicks, o.follows, o.follows_source, o.er, o.fpki, o.retweet_rate, o.reply_rate,
       coalesce(o.novelty, cm.novelty) AS novelty, o.reward_composite, o.collected_at
  FROM outcomes o
  JOIN content_metadata cm ON cm.decision_id = o.decision_id
  JOIN posted_decisions pd ON pd.decision_id = o.decision_id
  LEFT JOIN accounts a ON a.account_id = o.account_id
 WHERE o.account_id = {account} AND ({world} IS NULL OR pd.world = {world})
 ORDER BY pd.posted_at, pd.tweet_id, o.collected_pass
"""


def outcomes_arrow_adbc(adbc_conn, account_id: str, world: str | None) -> pa.Table:
    """Every outcome row (both passes) of the account joined to its decision and post, through an
    ADBC connection (adbc-driver-postgresql: the result arrives as Arrow batches, no Python rows).
    ``world`` None = both worlds. ``OUTCOME_SCHEMA``, ordered by posted_at, tweet_id, collected_pass."""
    sql = _OUTCOMES_SQL.format(account="$1::text", world="$2::text")
    with adbc_conn.cursor() as cur:
        cur.execute(sql, parameters=(account_id, world))
        table = cur.fetch_arrow_table()
    return _conform(table)


def outcomes_arrow_copy(conn, account_id: str, world: str | None) -> pa.Table:
    """The same rows as ``outcomes_arrow_adbc`` through psycopg ``COPY (…) TO STDOUT`` as CSV, parsed by pyarrow."""
    query = psql.SQL(_OUTCOMES_SQL).format(account=psql.Literal(account_id),
                                           world=psql.SQL("NULL::text") if world is None else psql.Literal(world))
    buf = io.BytesIO()
    with conn.transaction():
        conn.execute("SET LOCAL TimeZone = 'UTC'")  # timestamps as '…+00', which pyarrow parses
        with conn.cursor().copy(psql.SQL("COPY ({}) TO STDOUT WITH (FORMAT csv, HEADER true)").format(query)) as copy:
            for chunk in copy:
                buf.write(chunk)
    buf.seek(0)
    options = pacsv.ConvertOptions(column_types={f.name: f.type for f in OUTCOME_SCHEMA}, true_values=["t"],
                                   false_values=["f"], strings_can_be_null=True, quoted_strings_can_be_null=False)
    return _conform(pacsv.read_csv(buf, convert_options=options))


def _conform(table: pa.Table) -> pa.Table:
    """Cast to ``OUTCOME_SCHEMA`` and drop driver metadata, so both paths give equal tables."""
    return table.select(OUTCOME_SCHEMA.names).cast(OUTCOME_SCHEMA).replace_schema_metadata(None)
