"""Account profiles in Postgres: the ``accounts`` row of each account carries its validated profile.

``save_profile`` upserts (a new account's ``created_at`` is the caller's ``now``: it starts the
exploration schedule; an existing account keeps its own) and says what changed; ``load_profile``
reads it back as an ``AccountProfile``; ``list_profiles`` is what `xbot account list` shows;
``list_account_ids`` is every account a worker serves (with or without a stored profile), sorted.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import psycopg
from psycopg.types.json import Jsonb

from xbotlib.core.profile import AccountProfile, ProfileError, parse_profile, profile_changes


@dataclass(frozen=True)
class SavedProfile:
    """What ``save_profile`` did: ``created`` (a new account row), ``changes`` (one line per changed key;
    [] when the stored profile was already this one)."""
    account_id: str
    created: bool
    changes: list[str]

    @property
    def unchanged(self) -> bool:
        return not self.created and not self.changes


def save_profile(conn: psycopg.Connection, profile: AccountProfile, now: datetime, *,
                 source: str | None = None) -> SavedProfile:
    """Store ``profile`` for its account (``profile.id``); the row is locked while old and new are compared."""
    row = conn.execute("SELECT account_id, profile FROM accounts WHERE account_id = %s FOR UPDATE",
                       (profile.id,)).fetchone()
    old = None
    if row is not None and row["profile"] is not None:
        try:
            old = parse_profile(row["profile"], f"database: account {profile.id!r}")
        except ProfileError:
            old = None  # a profile stored by an older xbot: the new one replaces it wholesale
    changes = profile_changes(old, profile)
    if old is not None and old == profile:
        changes = []
    conn.execute(
        """INSERT INTO accounts (account_id, handle, timezone, created_at, profile, profile_source, profile_sha256,
                                 display_name, language, updated_at)
           VALUES (%(id)s, %(handle)s, %(tz)s, %(now)s, %(doc)s, %(source)s, %(sha)s, %(name)s, %(lang)s, %(now)s)
           ON CONFLICT (account_id) DO UPDATE
              SET handle = EXCLUDED.handle, timezone = EXCLUDED.timezone, profile = EXCLUDED.profile,
                  profile_source = EXCLUDED.profile_source, profile_sha256 = EXCLUDED.profile_sha256,
                  display_name = EXCLUDED.display_name, language = EXCLUDED.language,
                  updated_at = CASE WHEN accounts.profile_sha256 IS DISTINCT FROM EXCLUDED.profile_sha256
                                    THEN EXCLUDED.updated_at ELSE accounts.updated_at END""",
        {"id": profile.id, "handle": profile.handle, "tz": profile.timezone, "now": now, "doc": Jsonb(profile.to_dict()),
         "source": source or profile.source, "sha": profile.sha256, "name": profile.display_name,
         "lang": profile.language})
    return SavedProfile(profile.id, created=row is None, changes=changes)


def load_profile(conn: psycopg.Connection, account_id: str) -> AccountProfile | None:
    """The account's stored profile, or None when it has none (no row, or a row from before profiles)."""
    row = conn.execute("SELECT profile, profile_source FROM accounts WHERE account_id = %s",
                       (account_id,)).fetchone()
    if row is None or row["profile"] is None:
        return None
    return parse_profile(row["profile"], f"database: account {account_id!r} (from {row['profile_source']})")


def list_profiles(conn: psycopg.Connection) -> list[dict]:
    """One row per account with a stored profile: id, handle, display name, language, time zone, topics,
    source file, content hash and when it last changed, sorted by account id."""
    return conn.execute(
        """SELECT account_id, handle, display_name, language, timezone, profile_source, profile_sha256, updated_at,
                  (SELECT array_agg(t->>'name') FROM jsonb_array_elements(profile->'topics') AS t) AS topics
             FROM accounts WHERE profile IS NOT NULL ORDER BY account_id""").fetchall()


def list_account_ids(conn: psycopg.Connection) -> list[str]:
    """Every account in the database, sorted: the accounts the workers serve (one without a stored profile
    runs ``accounts/default.toml`` with the environment's settings)."""
    return [r["account_id"] for r in conn.execute("SELECT account_id FROM accounts ORDER BY account_id").fetchall()]


def posted_by_topic(conn: psycopg.Connection, account_id: str) -> list[dict]:
    """Posted decisions of the account per topic (topic, posts, replies; NULL topic last), most posted first."""
    return conn.execute(
        """SELECT topic, count(*) FILTER (WHERE decision_type <> 'reply') AS posts,
                  count(*) FILTER (WHERE decision_type = 'reply') AS replies
             FROM content_metadata WHERE account_id = %s AND status = 'posted'
            GROUP BY topic ORDER BY count(*) DESC, topic NULLS LAST""", (account_id,)).fetchall()


def latest_posted(conn: psycopg.Connection, account_id: str, limit: int = 3) -> list[dict]:
    """The account's latest posted texts (not replies) with topic, hook and where the text came from."""
    return conn.execute(
        """SELECT content, topic, hook_pattern, generation_source FROM content_metadata
            WHERE account_id = %s AND status = 'posted' AND decision_type <> 'reply'
            ORDER BY updated_at DESC NULLS LAST, decision_id LIMIT %s""", (account_id, limit)).fetchall()
