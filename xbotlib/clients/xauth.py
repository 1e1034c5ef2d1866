"""Signing in to X with OAuth 2.0 Authorization Code + PKCE, and refreshing tokens — HTTP only, no SQL.

X's endpoints (X's OAuth 2.0 guide; the OpenAPI spec's ``OAuth2UserToken`` scheme names the token URL):

- authorize: ``https://x.com/i/oauth2/authorize`` (a page the account owner opens in a browser) with
  ``response_type=code, client_id, redirect_uri, scope, state, code_challenge, code_challenge_method=S256``;
  X redirects to ``redirect_uri?state=…&code=…`` (or ``?error=access_denied``);
- token: ``POST {api}/2/oauth2/token`` (form-encoded): ``grant_type=authorization_code`` with ``code,
  redirect_uri, code_verifier``, or ``grant_type=refresh_token`` with ``refresh_token``. A public client
  sends ``client_id`` in the form; a confidential client authenticates with Basic ``client_id:client_secret``.
  Access tokens live 2 hours (``expires_in: 7200``); a refresh token (scope ``offline.access``) is
  single-use: each refresh returns a new pair and the old refresh token is dead;
- revoke: ``POST {api}/2/oauth2/revoke`` with ``token`` and ``token_type_hint`` (in X's guide, not in the spec).

Token values are secrets: ``TokenGrant`` keeps them out of its repr, and no message here contains one.
Storing them (encrypted, per account, under a lock) is ``xbotlib.store.tokens``' job; the ``TokenSource``
protocol is how ``XClient`` asks for a current token without knowing where it is kept.
"""
from __future__ import annotations

import base64
import hashlib
import html
import secrets
import threading
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Protocol
from urllib.parse import parse_qs, quote, urlencode, urlsplit

import httpx

from xbotlib.clock import Clock

AUTHORIZE_URL = "https://x.com/i/oauth2/authorize"
TOKEN_PATH = "/2/oauth2/token"
REVOKE_PATH = "/2/oauth2/revoke"
TOKEN_ENDPOINT = "POST /2/oauth2/token"
REVOKE_ENDPOINT = "POST /2/oauth2/revoke"
SCOPES: tuple[str, ...] = ("tweet.read", "tweet.write", "users.read", "offline.access")
CALLBACK_PATH = "/callback"
DEAD_REFRESH_HINT = ("the stored refresh token is no longer valid (X refresh tokens are single-use and die "
                     "when revoked or after months unused): run `xbot auth login` again")


class OAuthError(RuntimeError):
    """The sign-in or a token call failed. ``error`` is X's OAuth error code (e.g. 'invalid_grant'), or
    'network' / 'malformed' / 'state_mismatch' / 'access_denied' / 'timeout' for failures on our side."""

    def __init__(self, message: str, *, error: str = "", status: int | None = None, endpoint: str = TOKEN_ENDPOINT):
        super().__init__(message)
        self.error = error
        self.status = status
        self.endpoint = endpoint

    @property
    def token_dead(self) -> bool:
        """The refresh token was refused: only a new sign-in helps (X answers invalid_grant, or
        invalid_request 'Value passed for the token was invalid.')."""
        return self.error == "invalid_grant" or (self.error == "invalid_request" and "token was invalid" in str(self))


@dataclass(frozen=True)
class TokenGrant:
    """What X's token endpoint granted. The tokens are kept out of ``repr`` (and so out of logs)."""
    access_token: str = field(repr=False)
    refresh_token: str | None = field(repr=False)
    expires_at: datetime | None
    scope: str = ""

    @property
    def scopes(self) -> tuple[str, ...]:
        return tuple(self.scope.split())


class TokenSource(Protocol):
    """Where ``XClient`` gets its bearer token when tokens are managed outside it (stored, shared)."""

    def access_token(self) -> str:
        """A token valid for a while yet (refreshed first when it is about to expire)."""

    def refreshed(self, stale: str) -> str:
        """X refused ``stale`` (401): a newer token — one another process stored, or a fresh refresh."""


# ----------------------------------------------------------------------------- PKCE and the authorize URL

@dataclass(frozen=True)
class Pkce:
    verifier: str = field(repr=False)
    challenge: str
    method: str = "S256"


def challenge_of(verifier: str) -> str:
    """S256: base64url(sha256(verifier)) without padding (RFC 7636)."""
    return base64.urlsafe_b64encode(hashlib.sha256(verifier.encode("ascii")).digest()).decode("ascii").rstrip("=")


def new_pkce() -> Pkce:
    verifier = secrets.token_urlsafe(64)  # 86 characters of [A-Za-z0-9_-], within RFC 7636's 43..128
    return Pkce(verifier, challenge_of(verifier))


def new_state() -> str:
    return secrets.token_urlsafe(24)


def authorize_url(client_id: str, redirect_uri: str, state: str, pkce: Pkce, *, base: str = AUTHORIZE_URL,
                  scopes: tuple[str, ...] = SCOPES) -> str:
    """The page the account owner opens to let the app act for the account."""
    if not client_id:
        raise OAuthError("no OAuth 2.0 client id: set X_CLIENT_ID to your X app's Client ID "
                         "(developer portal → your app → Keys and tokens → OAuth 2.0 Client ID)", error="config")
    query = {"response_type": "code", "client_id": client_id, "redirect_uri": redirect_uri,
             "scope": " ".join(scopes), "state": state, "code_challenge": pkce.challenge,
             "code_challenge_method": pkce.method}
    return f"{base}?{urlencode(query, quote_via=quote)}"


# ----------------------------------------------------------------------------- the token endpoint

def request_token(http: httpx.Client, form: dict[str, str], *, client_id: str, client_secret: str | None,
                  clock: Clock, path: str = TOKEN_PATH) -> TokenGrant:
    """POST a grant to X's token endpoint through ``http`` (whose base URL is X's API); the granted pair."""
    form = dict(form)
    auth = None
    if client_secret:  # confidential client: Basic auth
        auth = (client_id, client_secret)
    else:  # public client: the id goes in the form
        form["client_id"] = client_id
    try:
        resp = http.post(path, data=form, auth=auth)
    except httpx.HTTPError as exc:
        raise OAuthError(f"{TOKEN_ENDPOINT}: no answer from X ({type(exc).__name__}); try again — if this was a "
                         "refresh, X may have rotated the pair anyway, and a later 401 means: sign in again",
                         error="network") from None
    try:
        body = resp.json()
    except ValueError:
        body = None
    if not isinstance(body, dict):
        raise OAuthError(f"{TOKEN_ENDPOINT}: {resp.status_code} with a body that is not a JSON object "
                         f"({resp.text[:60]!r}); is X_API_BASE_URL X's API?", error="malformed", status=resp.status_code)
    if resp.status_code != 200:
        error = str(body.get("error") or body.get("title") or resp.status_code)
        described = body.get("error_description") or body.get("detail") or ""
        hint = {"invalid_grant": DEAD_REFRESH_HINT if form.get("grant_type") == "refresh_token" else
                "the code expired (X's codes live 30 seconds) or was used already: run `xbot auth login` again",
                "invalid_client": "check X_CLIENT_ID and X_CLIENT_SECRET against your X app (a confidential "
                                  "client needs the secret; a public one must not send a wrong one)",
                "unauthorized_client": "the X app is not allowed this grant: enable OAuth 2.0 for it in the "
                                       "developer portal (type of app: Web App / Native App)"}.get(error, "")
        err = OAuthError(f"{TOKEN_ENDPOINT}: {resp.status_code} {error}: {described}" + (f"; {hint}" if hint else ""),
                         error=error, status=resp.status_code)
        if not hint and err.token_dead:
            err = OAuthError(f"{err}; {DEAD_REFRESH_HINT}", error=error, status=resp.status_code)
        raise err
    access = body.get("access_token")
    if not isinstance(access, str) or not access:
        raise OAuthError(f"{TOKEN_ENDPOINT}: 200 without an access_token (keys: {sorted(body)})",
                         error="malformed", status=200)
    refresh = body.get("refresh_token") if isinstance(body.get("refresh_token"), str) else None
    expires_in = body.get("expires_in")
    expires_at = (clock.now() + timedelta(seconds=int(expires_in))
                  if isinstance(expires_in, (int, float)) and not isinstance(expires_in, bool) else None)
    scope = body.get("scope") if isinstance(body.get("scope"), str) else ""
    return TokenGrant(access, refresh, expires_at, scope)


class OAuthClient:
    """X's token and revoke endpoints for one app (``client_id``, optional ``client_secret``)."""

    def __init__(self, base_url: str, client_id: str | None, client_secret: str | None = None, *, clock: Clock,
                 transport: httpx.BaseTransport | None = None, timeout: float = 10.0):
        if not client_id:
            raise OAuthError("no OAuth 2.0 client id: set X_CLIENT_ID to your X app's Client ID "
                             "(developer portal → your app → Keys and tokens)", error="config")
        self.client_id = client_id
        self.client_secret = client_secret
        self.clock = clock
        self._http = httpx.Client(base_url=base_url.rstrip("/"), transport=transport, timeout=timeout,
                                  headers={"User-Agent": "xbot/0.1"})

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> "OAuthClient":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def exchange_code(self, code: str, verifier: str, redirect_uri: str) -> TokenGrant:
        form = {"grant_type": "authorization_code", "code": code, "redirect_uri": redirect_uri,
                "code_verifier": verifier}
        return request_token(self._http, form, client_id=self.client_id, client_secret=self.client_secret,
                             clock=self.clock)

    def refresh(self, refresh_token: str | None) -> TokenGrant:
        if not refresh_token:
            raise OAuthError(f"{TOKEN_ENDPOINT}: no refresh token to refresh with (sign in with the scope "
                             "offline.access: `xbot auth login`)", error="invalid_grant")
        return request_token(self._http, {"grant_type": "refresh_token", "refresh_token": refresh_token},
                             client_id=self.client_id, client_secret=self.client_secret, clock=self.clock)

    def revoke(self, token: str, hint: str = "refresh_token") -> bool:
        """Ask X to revoke ``token`` (and with it the grant). True when X confirmed; never raises on a
        refusal (logging out must work with a dead token too), only returns False."""
        form = {"token": token, "token_type_hint": hint}
        auth = (self.client_id, self.client_secret) if self.client_secret else None
        if not auth:
            form["client_id"] = self.client_id
        try:
            resp = self._http.post(REVOKE_PATH, data=form, auth=auth)
        except httpx.HTTPError:
            return False
        return resp.status_code == 200


# ----------------------------------------------------------------------------- the loopback callback

class LoopbackCallback:
    """A one-shot HTTP server on 127.0.0.1 that receives X's redirect after the owner approves.

    ``port=0`` picks a free port (tests); a real X app lists the exact ``redirect_uri`` (X does not
    accept 'localhost' as a callback URL; 127.0.0.1 is fine). ``wait`` returns the code once the
    redirect carries the expected ``state``.
    """

    def __init__(self, state: str, port: int = 0, host: str = "127.0.0.1"):
        self.state = state
        self._done = threading.Event()
        self._result: tuple[str | None, str | None] = (None, None)  # (code, error message)
        self._decided = False  # a redirect with our state arrived (``_done`` is set once its page is sent)
        self._lock = threading.Lock()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 - http.server's name
                url = urlsplit(self.path)
                if url.path != CALLBACK_PATH:
                    self.send_error(404)
                    return
                ok, problem, decided = outer._receive(parse_qs(url.query))
                body = ("<h1>xbot is signed in</h1><p>You can close this tab.</p>" if ok else
                        f"<h1>Sign-in failed</h1><p>{html.escape(problem)}</p>").encode()
                try:
                    self.send_response(200 if ok else 400)
                    self.send_header("Content-Type", "text/html; charset=utf-8")
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                    self.wfile.flush()
                finally:  # only once the page is sent (or the browser went away): ``wait`` returning lets the
                    if decided:  # command exit, which cut a refused sign-in's page off mid-send
                        outer._done.set()

            def log_message(self, *args):  # the query holds the code: never log requests
                return

        try:
            self._server = ThreadingHTTPServer((host, port), Handler)
        except OSError as exc:
            raise OAuthError(f"cannot listen on {host}:{port} for X's redirect: {exc} (free the port, or set "
                             "X_OAUTH_CALLBACK_PORT to another one and list the new callback URL in your X app)",
                             error="config") from None
        self.redirect_uri = f"http://{host}:{self._server.server_address[1]}{CALLBACK_PATH}"
        self._thread = threading.Thread(target=self._server.serve_forever, name="xbot-oauth-callback", daemon=True)
        self._thread.start()

    def _receive(self, query: dict[str, list[str]]) -> tuple[bool, str, bool]:
        """Take X's redirect; (accepted, what went wrong, whether this redirect decided the sign-in)."""
        got = {k: v[0] for k, v in query.items() if v}
        if got.get("state") != self.state:  # a stray or forged request: keep waiting for the real redirect
            return False, "the state of this redirect does not match the sign-in in progress (ignored)", False
        with self._lock:
            if self._decided:
                return self._result[0] is not None, self._result[1] or "", False
            self._decide(got)
            return self._result[0] is not None, self._result[1] or "", True

    def _decide(self, got: dict[str, str]) -> None:
        if "error" in got:
            self._result = (None, f"X refused the sign-in: {got['error']}"
                                  + (f" ({got['error_description']})" if got.get("error_description") else "")
                                  + " — approve the app on X's page, or check the scopes and callback URL of the X app")
        elif not got.get("code"):
            self._result = (None, "X's redirect carried no code: run `xbot auth login` again")
        else:
            self._result = (got["code"], None)
        self._decided = True

    def wait(self, timeout_s: float) -> str:
        """The authorization code; OAuthError when X refused, or nothing arrived within ``timeout_s``."""
        if not self._done.wait(timeout_s):
            raise OAuthError(f"no redirect from X within {timeout_s:.0f} s: open the printed URL in a browser "
                             f"and approve the app (its callback URL must be {self.redirect_uri})", error="timeout")
        code, message = self._result
        if code is None:
            raise OAuthError(message or "sign-in failed", error="access_denied")
        return code

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def __enter__(self) -> "LoopbackCallback":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
