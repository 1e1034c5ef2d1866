"""Stored X tokens (xbotlib.store.tokens): encrypted at rest, a key that is required and checked, and a
refresh under the account's row lock that never spends a single-use refresh token twice."""
from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from cryptography.fernet import Fernet

from xbotlib.clients.xauth import SCOPES, OAuthClient, authorize_url, new_pkce
from xbotlib.sim.xserver import SandboxX
from xbotlib.store import tokens
from xbotlib.store.tokens import MAKE_KEY, SecretBox, TokenKeyError

BASE = SandboxX.BASE_URL
CB = "http://127.0.0.1:8976/callback"
MARGIN = timedelta(minutes=5)


@pytest.fixture
def sandbox(clock):
    return SandboxX(clock=clock, seed=9, oauth=True)


@pytest.fixture
def box():
    return SecretBox(Fernet.generate_key().decode())


def oauth(sandbox, clock) -> OAuthClient:
    return OAuthClient(BASE, "app-1", clock=clock, transport=sandbox.transport())


def sign_in(sandbox, clock):
    """A real grant from the sandbox's OAuth server (authorize -> redirect -> code exchange)."""
    pkce = new_pkce()
    with oauth(sandbox, clock) as o:
        r = o._http.get(authorize_url("app-1", CB, "st", pkce, base=f"{BASE}/i/oauth2/authorize", scopes=SCOPES))
        code = r.headers["location"].split("code=")[1].split("&")[0]
        return o.exchange_code(code, pkce.verifier, CB)


def test_the_key_is_required_and_a_malformed_key_says_how_to_make_one():
    for raw in (None, "", " , "):
        with pytest.raises(TokenKeyError, match="XBOT_SECRET_KEY is not set") as missing:
            SecretBox(raw)
        assert MAKE_KEY in str(missing.value)
    with pytest.raises(TokenKeyError, match=r"XBOT_SECRET_KEY key #1 of 1 is malformed") as bad:
        SecretBox("not-a-key")
    assert "Fernet.generate_key()" in str(bad.value) and "not-a-key" not in str(bad.value)
    assert "****" in repr(SecretBox(Fernet.generate_key().decode()))


def test_tokens_are_encrypted_at_rest_and_status_never_returns_them(db, box, sandbox, clock):
    grant = sign_in(sandbox, clock)
    with db.connection() as conn:
        saved = tokens.save_login(conn, "acct1", box, grant, now=clock.now(), client_id="app-1",
                                  x_user_id=sandbox.user_id, username=sandbox.handle)
        raw = conn.execute("SELECT * FROM x_tokens WHERE account_id = 'acct1'").fetchone()
        shown = tokens.status(conn)
    assert saved.access_token == grant.access_token and saved.refresh_token == grant.refresh_token
    everything = repr(raw).encode() + b"".join(bytes(v) for v in raw.values() if isinstance(v, (bytes, memoryview)))
    assert grant.access_token.encode() not in everything and grant.refresh_token.encode() not in everything
    assert grant.access_token not in repr(saved)
    assert len(shown) == 1 and not any(grant.access_token in str(v) or grant.refresh_token in str(v)
                                       for v in shown[0].values())
    assert shown[0]["username"] == sandbox.handle and shown[0]["has_refresh_token"] is True
    assert shown[0]["expires_at"] == clock.now() + timedelta(hours=2)


def test_a_wrong_key_fails_clearly_and_a_rotated_key_still_reads(db, box, sandbox, clock):
    grant = sign_in(sandbox, clock)
    old = Fernet.generate_key().decode()
    with db.connection() as conn:
        tokens.save_login(conn, "acct1", SecretBox(old), grant, now=clock.now(), client_id="app-1")
        with pytest.raises(TokenKeyError, match=r"XBOT_SECRET_KEY does not decrypt .*'acct1'.*auth login --account acct1"):
            tokens.load(conn, "acct1", box)
        new = Fernet.generate_key().decode()
        assert tokens.load(conn, "acct1", SecretBox(f"{new},{old}")).access_token == grant.access_token


def test_env_bootstrap_is_stored_once_and_a_stored_pair_wins(db, box, clock):
    with db.connection() as conn:
        assert tokens.seed_from_env(conn, "acct1", box, "env-access", "env-refresh", now=clock.now(), client_id="c")
        assert not tokens.seed_from_env(conn, "acct1", box, "other", "other-r", now=clock.now(), client_id="c")
        pair = tokens.load(conn, "acct1", box)
    assert (pair.access_token, pair.refresh_token, pair.source, pair.expires_at) == ("env-access", "env-refresh",
                                                                                      "env", None)
    assert not pair.expiring(clock.now() + timedelta(days=999), MARGIN)  # unknown expiry: X's 401 will tell


def test_rotate_refreshes_once_and_a_later_caller_gets_the_stored_pair(db, box, sandbox, clock):
    grant = sign_in(sandbox, clock)
    with db.connection() as conn:
        tokens.save_login(conn, "acct1", box, grant, now=clock.now(), client_id="app-1")
    clock.advance(timedelta(hours=2) - MARGIN)  # within the margin: due
    with oauth(sandbox, clock) as o:
        with db.connection() as conn:
            first = tokens.rotate(conn, "acct1", box, stale=None, now=clock.now(), margin=MARGIN, exchange=o.refresh)
        with db.connection() as conn:  # ahead of expiry again: nothing to do
            same = tokens.rotate(conn, "acct1", box, stale=None, now=clock.now(), margin=MARGIN, exchange=o.refresh)
        with db.connection() as conn:  # a 401 with the OLD token: someone already refreshed, use theirs
            also = tokens.rotate(conn, "acct1", box, stale=grant.access_token, now=clock.now(), margin=MARGIN,
                                 exchange=o.refresh)
    assert first.access_token != grant.access_token and first.refresh_count == 1
    assert same.access_token == also.access_token == first.access_token
    assert sandbox.oauth.grants["refresh_token"] == 1 and sandbox.oauth.bearer_ok(first.access_token)


def test_a_failed_refresh_keeps_the_stored_pair(db, box, sandbox, clock):
    grant = sign_in(sandbox, clock)
    with db.connection() as conn:
        tokens.save_login(conn, "acct1", box, grant, now=clock.now(), client_id="app-1")
    with oauth(sandbox, clock) as o:
        o.refresh(grant.refresh_token)  # someone outside xbot spent the refresh token
        with pytest.raises(Exception, match="invalid_grant"):
            with db.connection() as conn:
                tokens.rotate(conn, "acct1", box, stale=grant.access_token, now=clock.now(), margin=MARGIN,
                              exchange=o.refresh)
    with db.connection() as conn:
        assert tokens.load(conn, "acct1", box).refresh_count == 0


def test_four_threads_refreshing_at_once_spend_the_refresh_token_once(db, box, sandbox, clock):
    grant = sign_in(sandbox, clock)
    with db.connection() as conn:
        tokens.save_login(conn, "acct1", box, grant, now=clock.now(), client_id="app-1")
    clock.advance(timedelta(hours=3))
    got, errors, start = [], [], threading.Barrier(4)

    def worker():
        try:
            with oauth(sandbox, clock) as o:
                start.wait()
                with db.connection() as conn:
                    pair = tokens.rotate(conn, "acct1", box, stale=grant.access_token, now=clock.now(), margin=MARGIN,
                                         exchange=o.refresh)
                got.append(pair.access_token)
        except Exception as exc:  # collected: the assertion below shows it
            errors.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert errors == [] and len(got) == 4 and len(set(got)) == 1
    assert sandbox.oauth.grants["refresh_token"] == 1 and sandbox.oauth.grants["invalid_grant"] == 0
    assert sandbox.oauth.live_pairs() == 1 and sandbox.oauth.bearer_ok(got[0])


def test_delete_signs_out(db, box, clock):
    with db.connection() as conn:
        tokens.seed_from_env(conn, "acct1", box, "a", "r", now=clock.now(), client_id="c")
        assert tokens.delete(conn, "acct1") and not tokens.delete(conn, "acct1")
        assert tokens.status(conn) == [] and tokens.load(conn, "acct1", box) is None
        with pytest.raises(tokens.NoStoredTokens, match="xbot auth login --account acct1"):
            tokens.rotate(conn, "acct1", box, stale=None, now=clock.now(), margin=MARGIN, exchange=lambda r: None)
