"""The sandbox X's OAuth 2.0 server: authorize, token and revoke endpoints with X's semantics.

Enabled with ``SandboxX(..., oauth=True)``; then every API route accepts only a live access token
this server granted (unknown, revoked or expired bearers get a 401), instead of the fixed sandbox token.

- ``GET /i/oauth2/authorize`` (X's page is ``https://x.com/i/oauth2/authorize``): checks the query
  (``response_type=code``, ``client_id``, ``redirect_uri``, ``scope`` of known scopes, ``state``,
  ``code_challenge`` with ``code_challenge_method`` S256 or plain) and — the owner always approves in
  the sandbox — redirects (302) to ``redirect_uri?state=…&code=…``. ``deny_next`` makes the next one
  answer ``error=access_denied`` instead, as when the owner clicks Cancel.
- ``POST /2/oauth2/token``: ``authorization_code`` (a code is single-use and lives 30 s; redirect_uri
  and client must match the authorize request; the PKCE verifier must hash to the challenge) and
  ``refresh_token`` (single-use: each refresh invalidates the old pair and returns a new one; a reused
  or unknown refresh token is ``invalid_grant``). Access tokens live ``access_ttl_s`` (X: 7200 s) on the
  sandbox clock; a refresh token is granted only with the scope ``offline.access``. A public client puts
  ``client_id`` in the form, a confidential one uses Basic auth.
- ``POST /2/oauth2/revoke``: revokes an access or refresh token and the pair it belongs to; ``{"revoked": true}``.

Counters for tests: ``grants`` ('authorization_code', 'refresh_token', 'invalid_grant', 'revoke').
"""
from __future__ import annotations

import base64
import binascii
import contextlib
import hashlib
import secrets
import threading
from collections import Counter
from datetime import datetime, timedelta
from typing import Any, Callable, ContextManager
from urllib.parse import parse_qs, urlencode, urlsplit

from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, RedirectResponse, Response

from xbotlib.sim.xprotocol import parse_x_time, x_time

AUTHORIZE_PATH = "/i/oauth2/authorize"
REVOKE_PATH = "/2/oauth2/revoke"
KNOWN_SCOPES = frozenset({"tweet.read", "tweet.write", "users.read", "offline.access", "follows.read",
                          "follows.write", "like.read", "like.write", "bookmark.read", "bookmark.write",
                          "list.read", "list.write", "mute.read", "block.read", "space.read", "dm.read", "dm.write",
                          "media.write", "tweet.moderate.write"})
CODE_TTL = timedelta(seconds=30)


def _oauth_error(error: str, description: str, status: int = 400) -> JSONResponse:
    return JSONResponse({"error": error, "error_description": description}, status_code=status)


class SandboxOAuth:
    """Grants and checks OAuth 2.0 tokens for one sandbox account. See the module docstring.

    ``mutation`` is the sandbox's context manager for changing (and saving) its world; state is kept
    in ``to_json``/``load_json`` so a sandbox with a state file keeps its grants across restarts.
    """

    def __init__(self, clock, *, access_ttl_s: int = 7200, client_secret: str | None = None,
                 mutation: Callable[[], ContextManager[None]] | None = None):
        self.clock = clock
        self.access_ttl_s = int(access_ttl_s)
        self.client_secret = client_secret  # set: the sandbox app is confidential and Basic auth is required
        self._lock = threading.RLock()
        self._mutation = mutation or self._locked
        self.deny_next = False
        self.grants: Counter[str] = Counter()
        self._codes: dict[str, dict[str, Any]] = {}
        self._access: dict[str, dict[str, Any]] = {}   # token -> {client_id, scope, expires_at, pair}
        self._refresh: dict[str, dict[str, Any]] = {}  # token -> {client_id, scope, pair}
        self._used_refresh: set[str] = set()
        self._serial = 0

    @contextlib.contextmanager
    def _locked(self):
        with self._lock:
            yield

    # ------------------------------------------------------------------ checks used by the sandbox

    def bearer_ok(self, token: str) -> bool:
        """A live access token this server granted."""
        with self._lock:
            grant = self._access.get(token)
            return grant is not None and self.clock.now() < grant["expires_at"]

    def live_pairs(self) -> int:
        """How many granted pairs still have a usable refresh token (tests: 'exactly one valid pair')."""
        with self._lock:
            return len(self._refresh)

    def expire_access_tokens(self) -> None:
        """Make every access token expired now (tests: the 401 path), keeping the refresh tokens."""
        with self._mutation():
            for grant in self._access.values():
                grant["expires_at"] = self.clock.now()

    # ------------------------------------------------------------------ endpoints

    async def authorize(self, request: Request) -> Response:
        q = request.query_params
        redirect_uri = q.get("redirect_uri", "")
        target = urlsplit(redirect_uri)
        if target.scheme not in ("http", "https") or not target.netloc:
            return PlainTextResponse(f"redirect_uri {redirect_uri!r} is not an absolute http(s) URL", status_code=400)

        def back(**params: str) -> RedirectResponse:
            sep = "&" if target.query else "?"
            return RedirectResponse(redirect_uri + sep + urlencode(params), status_code=302)

        state = q.get("state", "")
        scopes = q.get("scope", "").split()
        method = q.get("code_challenge_method", "plain")
        problems = [m for bad, m in (
            (q.get("response_type") != "code", "response_type must be code"),
            (not q.get("client_id"), "client_id is required"),
            (not state, "state is required"),
            (not scopes or any(s not in KNOWN_SCOPES for s in scopes), f"unknown or missing scope in {scopes}"),
            (not q.get("code_challenge"), "code_challenge is required (PKCE)"),
            (method not in ("S256", "plain"), f"code_challenge_method {method!r} is not S256 or plain")) if bad]
        if problems:
            return back(error="invalid_request", error_description="; ".join(problems), state=state)
        if self.deny_next:
            self.deny_next = False
            return back(error="access_denied", error_description="The user denied the request", state=state)
        code = secrets.token_urlsafe(32)
        with self._mutation():
            self._codes[code] = {"client_id": q["client_id"], "redirect_uri": redirect_uri, "scope": " ".join(scopes),
                                 "challenge": q["code_challenge"], "method": method,
                                 "expires_at": self.clock.now() + CODE_TTL}
        return back(state=state, code=code)

    async def token(self, request: Request) -> Response:
        form, client_id, problem = await self._client_form(request)
        if problem is not None:
            return problem
        grant_type = form.get("grant_type")
        if grant_type == "authorization_code":
            return self._code_grant(form, client_id)
        if grant_type == "refresh_token":
            return self._refresh_grant(form, client_id)
        return _oauth_error("unsupported_grant_type", f"grant_type {grant_type!r} is not supported")

    async def revoke(self, request: Request) -> Response:
        form, client_id, problem = await self._client_form(request)
        if problem is not None:
            return problem
        token = form.get("token", "")
        with self._mutation():
            grant = self._access.get(token) or self._refresh.get(token)
            if grant is not None and grant["client_id"] == client_id:
                self._drop_pair(grant["pair"])
                self.grants["revoke"] += 1
        return JSONResponse({"revoked": True})

    # ------------------------------------------------------------------ grants

    async def _client_form(self, request: Request) -> tuple[dict[str, str], str, Response | None]:
        # parsed by hand: Starlette's request.form() needs python-multipart, which xbot does not depend on
        form = {k: v[0] for k, v in parse_qs((await request.body()).decode("utf-8", "replace")).items()}
        client_id, secret = form.get("client_id", ""), None
        auth = request.headers.get("authorization", "")
        if auth.startswith("Basic "):
            try:
                client_id, _, secret = base64.b64decode(auth[6:]).decode().partition(":")
            except (binascii.Error, UnicodeDecodeError, ValueError):
                return form, "", _oauth_error("invalid_client", "malformed Basic authorization", 401)
        if not client_id:
            return form, "", _oauth_error("invalid_request", "Missing required parameter [client_id].")
        if self.client_secret is not None and secret != self.client_secret:
            return form, client_id, _oauth_error("invalid_client", "Client authentication failed.", 401)
        return form, client_id, None

    def _code_grant(self, form: dict[str, str], client_id: str) -> Response:
        with self._mutation():
            now = self.clock.now()
            code = self._codes.pop(form.get("code", ""), None)  # single-use, even when the rest is wrong
            if code is None or now >= code["expires_at"]:
                self.grants["invalid_grant"] += 1
                return _oauth_error("invalid_grant", "Value passed for the authorization code was invalid.")
            if code["client_id"] != client_id or code["redirect_uri"] != form.get("redirect_uri"):
                self.grants["invalid_grant"] += 1
                return _oauth_error("invalid_grant", "client_id or redirect_uri does not match the authorize request.")
            verifier = form.get("code_verifier", "")
            expected = (base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).decode().rstrip("=")
                        if code["method"] == "S256" else verifier)
            if not verifier or not secrets.compare_digest(expected, code["challenge"]):
                self.grants["invalid_grant"] += 1
                return _oauth_error("invalid_grant", "The code_verifier does not match the code_challenge.")
            self.grants["authorization_code"] += 1
            return self._mint(client_id, code["scope"], now)

    def _refresh_grant(self, form: dict[str, str], client_id: str) -> Response:
        with self._mutation():
            token = form.get("refresh_token", "")
            grant = self._refresh.get(token)
            if grant is None or grant["client_id"] != client_id:
                self.grants["invalid_grant"] += 1
                reused = token in self._used_refresh
                return _oauth_error("invalid_grant", "Value passed for the token was invalid."
                                    + (" (this refresh token was already used)" if reused else ""))
            self._drop_pair(grant["pair"])
            self._used_refresh.add(token)
            self.grants["refresh_token"] += 1
            return self._mint(client_id, grant["scope"], self.clock.now())

    def _mint(self, client_id: str, scope: str, now: datetime) -> JSONResponse:
        self._serial += 1
        pair = self._serial
        access = f"sbx-at-{pair}-{secrets.token_urlsafe(24)}"
        self._access[access] = {"client_id": client_id, "scope": scope, "pair": pair,
                                "expires_at": now + timedelta(seconds=self.access_ttl_s)}
        body: dict[str, Any] = {"token_type": "bearer", "expires_in": self.access_ttl_s, "access_token": access,
                                "scope": scope}
        if "offline.access" in scope.split():
            refresh = f"sbx-rt-{pair}-{secrets.token_urlsafe(24)}"
            self._refresh[refresh] = {"client_id": client_id, "scope": scope, "pair": pair}
            body["refresh_token"] = refresh
        return JSONResponse(body)

    def _drop_pair(self, pair: int) -> None:
        self._access = {t: g for t, g in self._access.items() if g["pair"] != pair}
        for t in [t for t, g in self._refresh.items() if g["pair"] == pair]:
            self._used_refresh.add(t)
            del self._refresh[t]

    # ------------------------------------------------------------------ persistence

    def to_json(self) -> dict:
        def times(d: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
            return {k: {**v, **({"expires_at": x_time(v["expires_at"])} if "expires_at" in v else {})}
                    for k, v in d.items()}
        return {"serial": self._serial, "codes": times(self._codes), "access": times(self._access),
                "refresh": self._refresh, "used_refresh": sorted(self._used_refresh), "grants": dict(self.grants)}

    def load_json(self, state: dict | None) -> None:
        if not state:
            return

        def times(d: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
            return {k: {**v, **({"expires_at": parse_x_time(v["expires_at"])} if "expires_at" in v else {})}
                    for k, v in d.items()}
        with self._lock:
            self._serial = int(state.get("serial", 0))
            self._codes = times(state.get("codes", {}))
            self._access = times(state.get("access", {}))
            self._refresh = dict(state.get("refresh", {}))
            self._used_refresh = set(state.get("used_refresh", []))
            self.grants = Counter(state.get("grants", {}))
