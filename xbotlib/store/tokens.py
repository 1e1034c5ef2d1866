"""X OAuth 2.0 tokens per account (table ``x_tokens``), encrypted at rest, and the per-account refresh lock.

- Encryption: Fernet (``cryptography``) with ``XBOT_SECRET_KEY``; several keys separated by commas
  rotate it (the first encrypts, any decrypts). A missing, malformed or wrong key is a ``TokenKeyError``
  naming the variable and how to make one. Token values never appear in a message, a log or ``repr``.
- Refresh: X's refresh tokens are single-use, so two processes refreshing with the same one lock the
  account out. ``rotate`` runs inside the caller's transaction: it locks the account's row
  (``SELECT … FOR UPDATE``), re-reads it — when another process has stored a newer pair meanwhile, that
  pair is the answer and X is not called — and otherwise exchanges the refresh token (the ``exchange``
  callable: HTTP lives in ``xbotlib.clients.xauth``) and writes the new pair. The caller commits before
  it uses the new token, so a crash after the commit never loses the only valid refresh token.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Callable, Protocol

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

KEY_ENV = "XBOT_SECRET_KEY"
MAKE_KEY = 'python -c "from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())"'


class TokenKeyError(ValueError):
    """XBOT_SECRET_KEY is missing, malformed, or not the key the tokens were stored with."""


class NoStoredTokens(LookupError):
    """The account has no stored tokens: sign in with ``xbot auth login``."""


class Grant(Protocol):
    """What a token endpoint granted (``xbotlib.clients.xauth.TokenGrant`` is one)."""
    access_token: str
    refresh_token: str | None
    expires_at: datetime | None
    scope: str


class SecretBox:
    """Encrypts and decrypts token values with the key(s) of XBOT_SECRET_KEY."""

    def __init__(self, raw_key: str | None):
        keys = [k.strip() for k in (raw_key or "").split(",") if k.strip()]
        if not keys:
            raise TokenKeyError(f"{KEY_ENV} is not set: stored X tokens are encrypted with it. Make one with\n"
                                f"  {MAKE_KEY}\nand set {KEY_ENV} to it (in the environment or .env; keep it secret, "
                                "and the same for every process of this database)")
        fernets = []
        for i, key in enumerate(keys, 1):
            try:
                fernets.append(Fernet(key))
            except ValueError:
                raise TokenKeyError(f"{KEY_ENV} key #{i} of {len(keys)} is malformed (a Fernet key is 32 url-safe "
                                    f"base64-encoded bytes, 44 characters); make one with\n  {MAKE_KEY}") from None
        self._fernet = MultiFernet(fernets)

    def __repr__(self) -> str:
        return "SecretBox(****)"

    def encrypt(self, value: str) -> bytes:
        return self._fernet.encrypt(value.encode("utf-8"))

    def decrypt(self, blob: bytes | memoryview, account_id: str) -> str:
        try:
            return self._fernet.decrypt(bytes(blob)).decode("utf-8")
        except InvalidToken:
            raise TokenKeyError(f"{KEY_ENV} does not decrypt the stored X tokens of account {account_id!r} (was the "
                                f"key changed?): set {KEY_ENV} back to the key used at sign-in (after a rotation: "
                                f"NEW_KEY,OLD_KEY), or sign in again: xbot auth login --account {account_id}") from None


@dataclass(frozen=True)
class StoredTokens:
    """An account's token pair, decrypted. The tokens are kept out of ``repr``."""
    account_id: str
    access_token: str = field(repr=False)
    refresh_token: str | None = field(repr=False)
    expires_at: datetime | None
    scopes: str
    client_id: str | None
    x_user_id: str | None
    username: str | None
    source: str
    obtained_at: datetime
    refreshed_at: datetime | None
    refresh_count: int

    def expiring(self, now: datetime, margin: timedelta) -> bool:
        """Expired or within ``margin`` of it (an unknown expiry counts as fresh: X's 401 will say)."""
        return self.expires_at is not None and self.expires_at - margin <= now


_COLUMNS = """account_id, x_user_id, username, client_id, scopes, access_token_enc, refresh_token_enc, expires_at,
              source, obtained_at, refreshed_at, refresh_count"""


def _decrypt(row: dict, box: SecretBox) -> StoredTokens:
    aid = row["account_id"]
    return StoredTokens(account_id=aid, access_token=box.decrypt(row["access_token_enc"], aid),
                        refresh_token=box.decrypt(row["refresh_token_enc"], aid) if row["refresh_token_enc"] else None,
                        expires_at=row["expires_at"], scopes=row["scopes"], client_id=row["client_id"],
                        x_user_id=row["x_user_id"], username=row["username"], source=row["source"],
                        obtained_at=row["obtained_at"], refreshed_at=row["refreshed_at"],
                        refresh_count=row["refresh_count"])


def save_login(conn, account_id: str, box: SecretBox, grant: Grant, *, now: datetime, client_id: str | None,
               x_user_id: str | None = None, username: str | None = None, source: str = "login") -> StoredTokens:
    """Store (or replace) the account's pair after a sign-in."""
    row = conn.execute(
        f"""INSERT INTO x_tokens (account_id, x_user_id, username, client_id, scopes, access_token_enc,
                                  refresh_token_enc, expires_at, source, obtained_at, refreshed_at, refresh_count,
                                  updated_at)
            VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, NULL, 0, %s)
            ON CONFLICT (account_id) DO UPDATE SET
                x_user_id = EXCLUDED.x_user_id, username = EXCLUDED.username, client_id = EXCLUDED.client_id,
                scopes = EXCLUDED.scopes, access_token_enc = EXCLUDED.access_token_enc,
                refresh_token_enc = EXCLUDED.refresh_token_enc, expires_at = EXCLUDED.expires_at,
                source = EXCLUDED.source, obtained_at = EXCLUDED.obtained_at, refreshed_at = NULL,
                refresh_count = 0, updated_at = EXCLUDED.updated_at
            RETURNING {_COLUMNS}""",
        (account_id, x_user_id, username, client_id, grant.scope, box.encrypt(grant.access_token),
         box.encrypt(grant.refresh_token) if grant.refresh_token else None, grant.expires_at, source, now, now)).fetchone()
    return _decrypt(row, box)


def seed_from_env(conn, account_id: str, box: SecretBox, access_token: str, refresh_token: str | None, *,
                  now: datetime, client_id: str | None) -> bool:
    """Store the environment's bootstrap pair (X_ACCESS_TOKEN/X_REFRESH_TOKEN) when the account has no
    stored pair yet, so its first refresh is kept; True when stored. A stored pair always wins."""
    row = conn.execute(
        """INSERT INTO x_tokens (account_id, client_id, access_token_enc, refresh_token_enc, source, obtained_at,
                                 updated_at)
           VALUES (%s, %s, %s, %s, 'env', %s, %s)
           ON CONFLICT (account_id) DO NOTHING RETURNING account_id""",
        (account_id, client_id, box.encrypt(access_token), box.encrypt(refresh_token) if refresh_token else None,
         now, now)).fetchone()
    return row is not None


def load(conn, account_id: str, box: SecretBox) -> StoredTokens | None:
    row = conn.execute(f"SELECT {_COLUMNS} FROM x_tokens WHERE account_id = %s", (account_id,)).fetchone()
    return _decrypt(row, box) if row else None


def has_tokens(conn, account_id: str) -> bool:
    return conn.execute("SELECT 1 FROM x_tokens WHERE account_id = %s", (account_id,)).fetchone() is not None


def status(conn, account_id: str | None = None) -> list[dict]:
    """Sign-in status per account — never a token: account_id, x_user_id, username, client_id, scopes,
    expires_at, source, obtained_at, refreshed_at, refresh_count, has_refresh_token."""
    return conn.execute(
        """SELECT account_id, x_user_id, username, client_id, scopes, expires_at, source, obtained_at, refreshed_at,
                  refresh_count, refresh_token_enc IS NOT NULL AS has_refresh_token
             FROM x_tokens WHERE %(a)s::text IS NULL OR account_id = %(a)s ORDER BY account_id""",
        {"a": account_id}).fetchall()


def delete(conn, account_id: str) -> bool:
    """Forget the account's tokens (sign out); True when there were any."""
    return conn.execute("DELETE FROM x_tokens WHERE account_id = %s RETURNING account_id",
                        (account_id,)).fetchone() is not None


def rotate(conn, account_id: str, box: SecretBox, *, stale: str | None, now: datetime, margin: timedelta,
           exchange: Callable[[str | None], Grant]) -> StoredTokens:
    """Refresh the account's pair under its row lock, inside the caller's transaction (commit before use).

    ``stale`` is the access token X just refused (a 401), or None for a refresh ahead of expiry. After
    the lock is taken the row is read again: if it no longer holds ``stale`` (or, ahead of expiry, is
    no longer expiring), another process refreshed first and its pair is returned without calling X.
    """
    row = conn.execute(f"SELECT {_COLUMNS} FROM x_tokens WHERE account_id = %s FOR UPDATE", (account_id,)).fetchone()
    if row is None:
        raise NoStoredTokens(f"no stored X tokens for account {account_id!r} (signed out meanwhile?): "
                             f"xbot auth login --account {account_id}")
    current = _decrypt(row, box)
    if stale is not None and current.access_token != stale:
        return current  # another process refreshed after our token was refused
    if stale is None and not current.expiring(now, margin):
        return current  # another process refreshed ahead of expiry
    grant = exchange(current.refresh_token)
    row = conn.execute(
        f"""UPDATE x_tokens SET access_token_enc = %s, refresh_token_enc = %s, expires_at = %s,
                               scopes = CASE WHEN %s = '' THEN scopes ELSE %s END, refreshed_at = %s,
                               refresh_count = refresh_count + 1, updated_at = %s
             WHERE account_id = %s RETURNING {_COLUMNS}""",
        (box.encrypt(grant.access_token), box.encrypt(grant.refresh_token) if grant.refresh_token else None,
         grant.expires_at, grant.scope, grant.scope, now, now, account_id)).fetchone()
    return _decrypt(row, box)
