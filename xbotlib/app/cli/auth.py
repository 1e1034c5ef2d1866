"""``xbot auth login|status|logout``: sign an account in to X (OAuth 2.0 PKCE), show it, sign it out.

Tokens are stored per account in Postgres, encrypted with XBOT_SECRET_KEY (``xbotlib.store.tokens``);
no command prints a token. The jobs then refresh them by themselves (``xbotlib.jobs.context``).
"""
from __future__ import annotations

import argparse
import sys
from datetime import datetime

from xbotlib.app.cli.errors import CliError
from xbotlib.app.cli.options import check_port, positive_seconds
from xbotlib.clock import SystemClock
from xbotlib.config import _parse_account, load_settings

AUTH_HELP = """\
before the first login: create an X app (developer portal) with OAuth 2.0 on, type "Web App" or
"Native App", callback URL http://127.0.0.1:8976/callback (X_OAUTH_CALLBACK_PORT), and set
X_CLIENT_ID (+ X_CLIENT_SECRET for a confidential app) and XBOT_SECRET_KEY. README_OPERATIONS.md
"Going live" has the whole path.

examples:
  xbot auth login                    # the account of XBOT_ACCOUNT_ID
  xbot auth login --account brand2 --no-browser
  xbot auth status
  xbot auth logout --account brand2"""


def register(sub) -> None:
    p = sub.add_parser("auth", help="sign an account in to X (OAuth 2.0 PKCE), show sign-ins, sign out",
                       description="Sign in to X with OAuth 2.0 (Authorization Code + PKCE). Tokens are stored "
                                   "encrypted per account and refreshed automatically; no command shows them.",
                       epilog=AUTH_HELP, formatter_class=argparse.RawDescriptionHelpFormatter)
    actions = p.add_subparsers(dest="auth_action", metavar="ACTION", required=True)
    login = actions.add_parser("login", help="open X's authorize page, receive the callback, store the tokens")
    login.add_argument("--account", default=None, metavar="ID", help="account id (default: XBOT_ACCOUNT_ID)")
    login.add_argument("--port", type=int, default=None, help="loopback callback port (default: X_OAUTH_CALLBACK_PORT)")
    login.add_argument("--no-browser", action="store_true", help="only print the URL (e.g. over ssh)")
    login.add_argument("--timeout", type=positive_seconds, default=300.0, metavar="S",
                       help="seconds to wait for X's redirect (default 300)")
    login.set_defaults(func=cmd_login)
    status = actions.add_parser("status", help="signed-in accounts: user, scopes, expiry, last refresh (no tokens)")
    status.add_argument("--account", default=None, metavar="ID", help="one account (default: all)")
    status.set_defaults(func=cmd_status)
    logout = actions.add_parser("logout", help="revoke the account's tokens at X and delete them")
    logout.add_argument("--account", default=None, metavar="ID", help="account id (default: XBOT_ACCOUNT_ID)")
    logout.set_defaults(func=cmd_logout)


def _db(settings):
    # imported here for start-up time: keeps `xbot --help` fast (psycopg)
    from xbotlib.store import migrate
    from xbotlib.store.db import Database  # start-up time, as above
    db = Database.open(settings)
    migrate.up(db)  # the token table is part of the current schema
    return db


def _box(settings):
    from xbotlib.store.tokens import SecretBox, TokenKeyError  # start-up time (cryptography)
    try:
        return SecretBox(settings.secret_key)
    except TokenKeyError as exc:
        raise CliError(str(exc)) from None


def _account(settings, args) -> str:
    return _parse_account("--account", args.account) if args.account else settings.account_id


def _when(at: datetime | None, now: datetime) -> str:
    if at is None:
        return "unknown"
    left = (at - now).total_seconds()
    shown = at.strftime("%Y-%m-%d %H:%M:%SZ")
    if left <= 0:
        return f"{shown} (expired; refreshed at next use)"
    return f"{shown} (in {int(left // 3600)}h{int(left % 3600 // 60):02d}m)"


def cmd_login(args: argparse.Namespace) -> int:
    # imported here for start-up time: the HTTP client and the database load only when signing in
    import webbrowser

    from xbotlib.clients.xapi import XApiError, XClient  # start-up time, as above
    from xbotlib.clients.xauth import (SCOPES, LoopbackCallback, OAuthClient, OAuthError, authorize_url,  # start-up time
                                       new_pkce, new_state)
    from xbotlib.store import tokens  # start-up time, as above

    settings = load_settings()
    account = _account(settings, args)
    box = _box(settings)  # before anything else: a sign-in we cannot store is wasted
    if not settings.x_client_id:
        raise CliError("X_CLIENT_ID is not set: copy your X app's OAuth 2.0 Client ID (developer portal → your app "
                       "→ Keys and tokens) into X_CLIENT_ID (and X_CLIENT_SECRET for a confidential app)")
    port = settings.x_oauth_callback_port if args.port is None else args.port
    check_port(port)
    clock = SystemClock()
    pkce, state = new_pkce(), new_state()
    try:
        with LoopbackCallback(state, port) as callback:
            url = authorize_url(settings.x_client_id, callback.redirect_uri, state, pkce, base=settings.x_authorize_url,
                                scopes=SCOPES)
            print(f"Signing in account {account!r} to X. Open this URL and approve the app:\n\n  {url}\n\n"
                  f"(the X app's callback URL must be exactly {callback.redirect_uri}; waiting up to "
                  f"{args.timeout:.0f} s for X's redirect)")
            sys.stdout.flush()
            if not args.no_browser:
                try:
                    webbrowser.get()  # raises when no browser exists (a server, ssh)
                    webbrowser.open(url)
                except webbrowser.Error:
                    pass
            code = callback.wait(args.timeout)
            redirect_uri = callback.redirect_uri
        with OAuthClient(settings.x_api_base_url, settings.x_client_id, settings.x_client_secret, clock=clock,
                         timeout=settings.x_timeout_s) as oauth:
            grant = oauth.exchange_code(code, pkce.verifier, redirect_uri)
            try:
                with XClient(settings.x_api_base_url, grant.access_token, clock=clock, timeout=settings.x_timeout_s) as x:
                    me = x.me()
            except XApiError as exc:
                oauth.revoke(grant.refresh_token or grant.access_token)
                raise CliError(f"signed in, but GET /2/users/me failed ({exc}); the grant was revoked — check the "
                               "app's scopes (tweet.read users.read) and X_API_BASE_URL") from None
            with _db(settings) as db, db.connection() as conn:
                before = next(iter(tokens.status(conn, account)), None)
                if before and before["x_user_id"] and before["x_user_id"] != me.user_id:
                    oauth.revoke(grant.refresh_token or grant.access_token)
                    raise CliError(f"account {account!r} is signed in as @{before['username']} (user id "
                                   f"{before['x_user_id']}), and this sign-in is @{me.username} ({me.user_id}): "
                                   f"use another --account, or `xbot auth logout --account {account}` first")
                tokens.save_login(conn, account, box, grant, now=clock.now(), client_id=settings.x_client_id,
                                  x_user_id=me.user_id, username=me.username)
    except OAuthError as exc:
        raise CliError(str(exc)) from None
    missing = [s for s in SCOPES if s not in grant.scopes]
    print(f"signed in: account {account!r} = @{me.username} (user id {me.user_id}); scopes: {grant.scope or '?'}; "
          f"access token expires {_when(grant.expires_at, clock.now())}, refreshed automatically")
    if missing:
        print(f"warning: X did not grant {', '.join(missing)}"
              + (" — without offline.access there is no refresh token: sign in again every 2 hours"
                 if "offline.access" in missing else "") + "; check the app's permissions", file=sys.stderr)
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    from xbotlib.store import tokens  # start-up time (psycopg, cryptography)
    settings = load_settings()
    account = _account(settings, args) if args.account else None
    now = SystemClock().now()
    box = None
    if settings.secret_key:
        box = _box(settings)
    with _db(settings) as db, db.connection() as conn:
        rows = tokens.status(conn, account)
        checks = {}
        for r in rows:  # can this process's key decrypt the pair? (decrypted in memory only, never shown)
            if box is None:
                checks[r["account_id"]] = "XBOT_SECRET_KEY unset"
                continue
            try:
                tokens.load(conn, r["account_id"], box)
                checks[r["account_id"]] = "ok"
            except tokens.TokenKeyError:
                checks[r["account_id"]] = "WRONG KEY (see `xbot auth login`)"
    if not rows:
        print(f"account {account!r} is not signed in to X: xbot auth login --account {account}" if account else
              "no account is signed in to X: xbot auth login [--account ID]")
        return 1 if account else 0
    for r in rows:
        user = f"@{r['username']} ({r['x_user_id']})" if r["x_user_id"] else "unconfirmed (bootstrap from X_ACCESS_TOKEN)"
        refreshed = (r["refreshed_at"].strftime("%Y-%m-%d %H:%M:%SZ") + f" ({r['refresh_count']} refreshes)"
                     if r["refreshed_at"] else "never")
        print(f"account {r['account_id']}: {user}\n"
              f"  scopes:        {r['scopes'] or 'unknown'}\n"
              f"  access token:  expires {_when(r['expires_at'], now)}\n"
              f"  refresh token: {'stored' if r['has_refresh_token'] else 'NONE (sign in with offline.access)'}\n"
              f"  signed in:     {r['obtained_at'].strftime('%Y-%m-%d %H:%M:%SZ')} via {r['source']}\n"
              f"  last refresh:  {refreshed}\n"
              f"  client id:     {r['client_id'] or 'unknown'}\n"
              f"  key:           {checks[r['account_id']]}")
    return 0


def cmd_logout(args: argparse.Namespace) -> int:
    from xbotlib.clients.xauth import OAuthClient, OAuthError  # start-up time (httpx)
    from xbotlib.store import tokens  # start-up time (psycopg, cryptography)
    settings = load_settings()
    account = _account(settings, args)
    with _db(settings) as db, db.connection() as conn:
        row = next(iter(tokens.status(conn, account)), None)
        if row is None:
            print(f"account {account!r} is not signed in to X: nothing to do")
            return 0
        revoked = "skipped: XBOT_SECRET_KEY unset, the stored tokens cannot be read"
        if settings.secret_key:
            try:
                pair = tokens.load(conn, account, _box(settings))
                client_id = settings.x_client_id or row["client_id"]
                with OAuthClient(settings.x_api_base_url, client_id, settings.x_client_secret, clock=SystemClock(),
                                 timeout=settings.x_timeout_s) as oauth:
                    ok = [oauth.revoke(pair.refresh_token, "refresh_token")] if pair and pair.refresh_token else []
                    ok.append(oauth.revoke(pair.access_token, "access_token") if pair else False)
                revoked = "revoked at X" if all(ok) else "X did not confirm the revocation (the tokens may be dead already)"
            except tokens.TokenKeyError:
                revoked = "skipped: XBOT_SECRET_KEY does not decrypt the stored tokens"
            except OAuthError as exc:
                revoked = f"skipped: {exc}"
        tokens.delete(conn, account)
    print(f"signed out: account {account!r} (@{row['username'] or '?'}); tokens deleted; {revoked}")
    return 0
