"""OAuth 2.0 PKCE sign-in and token refresh (xbotlib.clients.xauth) against the sandbox's OAuth server.

The sandbox (``SandboxX(oauth=True)``, xbotlib.sim.xoauth) implements X's semantics: codes single-use
and short-lived, the PKCE verifier checked, 2-hour access tokens, single-use refresh tokens,
``invalid_grant`` on reuse, and API routes that answer 401 to unknown or expired bearers.
"""
from __future__ import annotations

import threading
from datetime import timedelta
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from xbotlib.clients.xapi import XAuthError, XClient
from xbotlib.clients.xauth import (AUTHORIZE_URL, SCOPES, LoopbackCallback, OAuthClient, OAuthError, Pkce,
                                   authorize_url, challenge_of, new_pkce, new_state)
from xbotlib.sim.xserver import SandboxX

BASE = SandboxX.BASE_URL
CLIENT = "xbot-test-app"


@pytest.fixture
def sandbox(clock):
    return SandboxX(clock=clock, seed=5, oauth=True)


def browser(sandbox) -> httpx.Client:
    """The owner's browser: talks to the sandbox's authorize page, does not follow the redirect."""
    return httpx.Client(base_url=BASE, transport=sandbox.transport())


def authorize(sandbox, pkce: Pkce, state: str = "st-1", redirect_uri: str = "http://127.0.0.1:8976/callback",
              scopes=SCOPES) -> dict[str, str]:
    url = authorize_url(CLIENT, redirect_uri, state, pkce, base=f"{BASE}/i/oauth2/authorize", scopes=scopes)
    with browser(sandbox) as b:
        r = b.get(url)
    assert r.status_code == 302, r.text
    location = r.headers["location"]
    assert location.startswith(redirect_uri + "?")
    return {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}


def oauth(sandbox, clock, secret: str | None = None) -> OAuthClient:
    return OAuthClient(BASE, CLIENT, secret, clock=clock, transport=sandbox.transport())


def signed_in(sandbox, clock, scopes=SCOPES):
    pkce = new_pkce()
    got = authorize(sandbox, pkce, scopes=scopes)
    with oauth(sandbox, clock) as o:
        return o.exchange_code(got["code"], pkce.verifier, "http://127.0.0.1:8976/callback")


# ----------------------------------------------------------------------------- PKCE and the authorize URL

def test_s256_challenge_matches_rfc_7636_appendix_b():
    assert challenge_of("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk") == "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
    p = new_pkce()
    assert 43 <= len(p.verifier) <= 128 and p.challenge == challenge_of(p.verifier) and p.method == "S256"
    assert p.verifier not in repr(p) and new_pkce().verifier != p.verifier and new_state() != new_state()


def test_authorize_url_is_xs_page_with_every_pkce_parameter():
    pkce = new_pkce()
    url = authorize_url(CLIENT, "http://127.0.0.1:8976/callback", "s-1", pkce)
    assert url.startswith("https://x.com/i/oauth2/authorize?") and AUTHORIZE_URL == "https://x.com/i/oauth2/authorize"
    q = {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}
    assert q == {"response_type": "code", "client_id": CLIENT, "redirect_uri": "http://127.0.0.1:8976/callback",
                 "scope": "tweet.read tweet.write users.read offline.access", "state": "s-1",
                 "code_challenge": pkce.challenge, "code_challenge_method": "S256"}
    assert "scope=tweet.read%20tweet.write%20users.read%20offline.access" in url  # spaces as %20, as X's guide shows
    with pytest.raises(OAuthError, match="X_CLIENT_ID"):
        authorize_url("", "http://127.0.0.1:1/callback", "s", pkce)


def test_xs_official_sdk_agrees_on_the_authorize_page_and_token_endpoint():
    xdk_auth = pytest.importorskip("xdk.oauth2_auth")
    import inspect
    src = inspect.getsource(xdk_auth)
    assert '"https://x.com/i"' in src and "/oauth2/authorize" in src and "/2/oauth2/token" in src


# ----------------------------------------------------------------------------- code exchange

def test_code_exchange_gives_a_two_hour_pair_that_the_api_accepts(sandbox, clock):
    grant = signed_in(sandbox, clock)
    assert grant.expires_at == clock.now() + timedelta(hours=2)
    assert set(grant.scopes) == set(SCOPES) and grant.refresh_token
    assert grant.access_token not in repr(grant) and grant.refresh_token not in repr(grant)
    with XClient(BASE, grant.access_token, clock=clock, transport=sandbox.transport()) as x:
        assert x.me().username == sandbox.handle


def test_a_code_is_single_use_and_needs_the_right_verifier_and_redirect(sandbox, clock):
    pkce = new_pkce()
    cb = "http://127.0.0.1:8976/callback"
    with oauth(sandbox, clock) as o:
        got = authorize(sandbox, pkce)
        with pytest.raises(OAuthError, match="invalid_grant") as wrong:
            o.exchange_code(got["code"], new_pkce().verifier, cb)  # another verifier: PKCE refuses
        assert wrong.value.error == "invalid_grant"
        with pytest.raises(OAuthError, match="invalid_grant"):
            o.exchange_code(got["code"], pkce.verifier, cb)  # the code died with the failed attempt
        got = authorize(sandbox, pkce)
        with pytest.raises(OAuthError, match="invalid_grant"):
            o.exchange_code(got["code"], pkce.verifier, "http://127.0.0.1:9999/callback")
        got = authorize(sandbox, pkce)
        clock.advance(timedelta(seconds=31))  # X's codes live 30 seconds
        with pytest.raises(OAuthError, match="expired"):
            o.exchange_code(got["code"], pkce.verifier, cb)
        got = authorize(sandbox, pkce)
        assert o.exchange_code(got["code"], pkce.verifier, cb).access_token
        with pytest.raises(OAuthError, match="invalid_grant"):
            o.exchange_code(got["code"], pkce.verifier, cb)


def test_authorize_refuses_bad_requests_and_a_denial_comes_back_as_an_error(sandbox):
    pkce = new_pkce()
    with browser(sandbox) as b:
        r = b.get(authorize_url(CLIENT, "http://127.0.0.1:1/callback", "s", pkce,
                                base=f"{BASE}/i/oauth2/authorize", scopes=("tweet.read", "no.such.scope")))
        q = parse_qs(urlsplit(r.headers["location"]).query)
        assert q["error"] == ["invalid_request"] and "no.such.scope" in q["error_description"][0]
    sandbox.oauth.deny_next = True
    assert authorize(sandbox, pkce, state="s2")["error"] == "access_denied"


def test_a_confidential_client_authenticates_with_basic_auth(clock):
    sandbox = SandboxX(clock=clock, seed=5, oauth=True)
    sandbox.oauth.client_secret = "s3cret"
    pkce = new_pkce()
    got = authorize(sandbox, pkce)
    with oauth(sandbox, clock, secret="wrong") as o, pytest.raises(OAuthError, match="invalid_client.*X_CLIENT_SECRET"):
        o.exchange_code(got["code"], pkce.verifier, "http://127.0.0.1:8976/callback")
    got = authorize(sandbox, pkce)
    with oauth(sandbox, clock, secret="s3cret") as o:
        assert o.exchange_code(got["code"], pkce.verifier, "http://127.0.0.1:8976/callback").refresh_token


def test_without_offline_access_there_is_no_refresh_token(sandbox, clock):
    grant = signed_in(sandbox, clock, scopes=("tweet.read", "users.read"))
    assert grant.refresh_token is None and grant.scopes == ("tweet.read", "users.read")


# ----------------------------------------------------------------------------- refresh

def test_refresh_rotates_the_pair_and_a_reused_refresh_token_is_invalid_grant(sandbox, clock):
    first = signed_in(sandbox, clock)
    with oauth(sandbox, clock) as o:
        second = o.refresh(first.refresh_token)
        assert second.access_token != first.access_token and second.refresh_token != first.refresh_token
        with pytest.raises(OAuthError, match="invalid_grant.*xbot auth login") as reused:
            o.refresh(first.refresh_token)
        assert reused.value.error == "invalid_grant" and reused.value.token_dead
        assert first.refresh_token not in str(reused.value)
    assert sandbox.oauth.grants["refresh_token"] == 1 and sandbox.oauth.grants["invalid_grant"] == 1
    assert sandbox.oauth.live_pairs() == 1
    with XClient(BASE, first.access_token, clock=clock, transport=sandbox.transport()) as x:
        with pytest.raises(XAuthError):  # the old access token died with its refresh token
            x.me()
    with XClient(BASE, second.access_token, clock=clock, transport=sandbox.transport()) as x:
        assert x.me().user_id == sandbox.user_id


def test_access_tokens_expire_after_two_hours_and_the_client_refreshes_on_401(sandbox, clock):
    grant = signed_in(sandbox, clock)
    stored = []
    with XClient(BASE, grant.access_token, clock=clock, refresh_token=grant.refresh_token, client_id=CLIENT,
                 transport=sandbox.transport(), on_token_refresh=lambda a, r: stored.append((a, r))) as x:
        x.me()
        clock.advance(timedelta(hours=2))
        x.me()  # 401 -> one refresh -> retried
        assert x.calls["POST /2/oauth2/token"] == 1 and x.calls["GET /2/users/me"] == 3
        assert len(stored) == 1 and stored[0][0] == x.access_token and sandbox.oauth.bearer_ok(x.access_token)
        assert x.refresh_token == stored[0][1] != grant.refresh_token


def test_a_dead_refresh_token_is_an_auth_error_that_says_sign_in_again(sandbox, clock):
    grant = signed_in(sandbox, clock)
    with oauth(sandbox, clock) as o:
        o.refresh(grant.refresh_token)
    clock.advance(timedelta(hours=3))
    with XClient(BASE, grant.access_token, clock=clock, refresh_token=grant.refresh_token, client_id=CLIENT,
                 transport=sandbox.transport()) as x:
        with pytest.raises(XAuthError, match="token refresh failed.*invalid_grant.*xbot auth login"):
            x.me()


def test_revoke_kills_the_pair(sandbox, clock):
    grant = signed_in(sandbox, clock)
    with oauth(sandbox, clock) as o:
        assert o.revoke(grant.refresh_token, "refresh_token")
        assert not sandbox.oauth.bearer_ok(grant.access_token) and sandbox.oauth.live_pairs() == 0
        with pytest.raises(OAuthError, match="invalid_grant"):
            o.refresh(grant.refresh_token)


def test_sandbox_state_file_keeps_the_grants_across_restarts(clock, tmp_path):
    path = tmp_path / "world.json"
    first = SandboxX(clock=clock, seed=5, oauth=True, state_path=path)
    grant = signed_in(first, clock)
    again = SandboxX(clock=clock, seed=5, oauth=True, state_path=path)
    assert again.oauth.bearer_ok(grant.access_token)
    with oauth(again, clock) as o:
        assert o.refresh(grant.refresh_token).access_token
    with oauth(first, clock) as o, pytest.raises(OAuthError, match="invalid_grant"):
        o.refresh(grant.refresh_token)  # the first process sees the rotation through the shared file


def test_without_oauth_the_sandbox_keeps_its_fixed_token(clock):
    legacy = SandboxX(clock=clock, seed=5)
    assert legacy.oauth is None
    with XClient(BASE, "anything", clock=clock, transport=legacy.transport()) as x:
        assert x.me().user_id == legacy.user_id


# ----------------------------------------------------------------------------- the loopback callback

def test_loopback_callback_checks_the_state_and_returns_the_code():
    with LoopbackCallback("right-state", port=0) as cb:
        assert cb.redirect_uri.startswith("http://127.0.0.1:") and cb.redirect_uri.endswith("/callback")
        forged = httpx.get(cb.redirect_uri, params={"state": "forged", "code": "evil"})
        assert forged.status_code == 400 and "does not match" in forged.text
        ok = httpx.get(cb.redirect_uri, params={"state": "right-state", "code": "the-code"})
        assert ok.status_code == 200
        assert cb.wait(1) == "the-code"


def test_loopback_callback_reports_a_denial_and_a_timeout():
    with LoopbackCallback("s", port=0) as cb:
        threading.Thread(target=httpx.get, args=(cb.redirect_uri,),
                         kwargs={"params": {"state": "s", "error": "access_denied"}}).start()
        with pytest.raises(OAuthError, match="access_denied"):
            cb.wait(5)
    with LoopbackCallback("s", port=0) as cb, pytest.raises(OAuthError, match="no redirect from X within"):
        cb.wait(0.05)
