"""``xbot api [--host 127.0.0.1] [--port 8000]``: serve the admin API (needs ADMIN_TOKEN)."""
from __future__ import annotations

import argparse
import socket
import sys

from xbotlib.app.cli.errors import CliError
from xbotlib.app.cli.options import unknown_host
from xbotlib.clock import SystemClock
from xbotlib.config import ConfigError, load_settings

DESCRIPTION = """\
Serve the admin API (learning status, growth, metrics, experiments; Prometheus text at /metrics)
with uvicorn. Every route, /docs and /openapi.json included, needs ADMIN_TOKEN: send
'Authorization: Bearer <token>', or HTTP Basic with the token as password (a browser can open /docs).
Without ADMIN_TOKEN the server refuses to start; a weak one (under 16 characters, one character
repeated, a common word, a keyboard run) is refused on any address but loopback and warned about on
loopback. Repeated failed authentications from one address are answered slower and slower (up to
30 s each). Binds to 127.0.0.1 unless --host says otherwise; put TLS in front of it before exposing
it beyond this machine."""


def cmd_api(args: argparse.Namespace) -> int:
    settings = load_settings()
    if not settings.admin_token:  # refuse before touching the database
        raise ConfigError("ADMIN_TOKEN is not set: `xbot api` refuses to start without it (set ADMIN_TOKEN to a "
                          "long random secret, e.g. `python -c 'import secrets; print(secrets.token_urlsafe(32))'`)")
    # imported here for start-up time: FastAPI, uvicorn and psycopg are slow to import
    from xbotlib.app.api.app import create_app  # start-up time, as above
    from xbotlib.app.api.auth import check_admin_token  # start-up time, as above (it imports FastAPI)
    from xbotlib.app.api.serving import serve  # start-up time, as above
    from xbotlib.store import migrate  # start-up time, as above
    from xbotlib.store.db import Database  # start-up time, as above

    try:  # before the database and the "serving on" line: uvicorn would only log the error and exit 3
        socket.getaddrinfo(args.host, args.port)
    except socket.gaierror as exc:
        raise unknown_host(args.host, exc) from None
    warning = check_admin_token(settings.admin_token, args.host)  # a weak token off loopback: ConfigError
    if warning:
        print(warning, file=sys.stderr, flush=True)
    with Database.open(settings) as db:
        rows = migrate.status(db)
        problems = migrate.problems(rows)
        if problems:
            raise CliError("the migrations on disk do not match the database: " + "; ".join(problems))
        pending = [r for r in rows if r["state"] == "pending"]
        if pending:
            names = ", ".join(f"{r['version']:04d}_{r['name']}" for r in pending)
            raise CliError(f"the database schema is not up to date (pending: {names}); run `xbot migrate up` first")
        app = create_app(settings, db, SystemClock())
        print(f"xbot admin API on http://{args.host}:{args.port} (docs at /docs; account {settings.account_id}, "
              f"world {settings.world}; {db.describe()})", flush=True)
        serve(app, host=args.host, port=args.port, log_level="info" if args.verbose else "warning")
    return 0


def register(sub) -> None:
    p = sub.add_parser("api", help="serve the admin API (needs ADMIN_TOKEN)", description=DESCRIPTION,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1: this machine only)")
    p.add_argument("--port", type=_port, default=8000, help="TCP port (default 8000)")
    p.set_defaults(func=cmd_api)


def _port(raw: str) -> int:
    try:
        port = int(raw)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a port number: {raw!r} (expected 1-65535)") from None
    if not 1 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"port out of range: {port} (expected 1-65535)")
    return port
