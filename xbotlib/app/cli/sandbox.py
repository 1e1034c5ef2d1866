"""``xbot sandbox``: serve the sandbox X over HTTP (system clock) for anything that wants a socket."""
from __future__ import annotations

import argparse
import socket
import sys
from pathlib import Path

from xbotlib.app.cli.errors import CliError
from xbotlib.app.cli.options import check_port, unknown_host
from xbotlib.app.cli.jobs import clock_from_args
from xbotlib.config import file_in_the_way


def register(sub) -> None:
    p = sub.add_parser(
        "sandbox", help="serve the sandbox X (X API v2 routes + simulated audience) on a local port",
        description="Serve the sandbox X: the X API v2 routes xbot uses (POST/GET /2/tweets, /2/tweets/analytics, "
                    "/2/users/me, /2/users/:id/tweets, /2/tweets/search/recent, /2/oauth2/token) answered by a "
                    "simulated audience, on the system clock. Point X_SANDBOX_URL at the printed URL. Any non-empty "
                    "bearer token is accepted. Outcomes from it are simulated (simulated=true).",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--host", default="127.0.0.1", help="interface to bind (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=8765, help="port to bind; 0 picks a free one (default 8765)")
    p.add_argument("--scenario", default=None, metavar="FILE",
                   help="scenario TOML, or a shipped name (default, evening_contrarian, afternoon_questions); default: scenarios/default.toml")
    p.add_argument("--seed", type=int, default=0, help="seed of the simulated audience (default 0)")
    p.add_argument("--no-analytics", action="store_true",
                   help="answer GET /2/tweets/analytics with 403, like an account without analytics access")
    p.add_argument("--state", default=None, metavar="FILE",
                   help="JSON file to keep the world in across restarts (default: in memory only)")
    p.add_argument("--handle", default="xbot_sandbox", help="the account's @handle (default xbot_sandbox)")
    p.add_argument("--oauth", action="store_true",
                   help="X's OAuth 2.0 sign-in: authorize and token endpoints, 2-hour access tokens, single-use "
                        "refresh tokens; API routes then refuse unknown or expired tokens (try `xbot auth login` "
                        "with X_API_BASE_URL and X_AUTHORIZE_URL pointed here)")
    p.add_argument("--clock-scale", type=float, default=None,
                   help="benches: run the world this many times faster than real time, on the clock of the workers "
                        "started with the same --clock-scale and --clock-origin (`bench/bench_workers.py`)")
    p.add_argument("--clock-origin", default=None, help="benches: the ISO time from which --clock-scale counts")
    p.set_defaults(func=cmd_sandbox)


def cmd_sandbox(args: argparse.Namespace) -> int:
    # imported here for start-up time: the sandbox loads starlette, numpy and the audience model
    import uvicorn

    from xbotlib.core.profile import HANDLE_RE  # start-up time, as above; X's handle rule, as a profile's
    from xbotlib.sim.scenario import ScenarioError  # start-up time, as above
    from xbotlib.sim.xserver import SandboxX  # start-up time, as above

    check_port(args.port)
    if not HANDLE_RE.match(args.handle):  # the sandbox would serve @ or "@two words" as the account's name
        raise CliError(f"--handle {args.handle!r} is not an X handle (1-15 letters, digits or '_', without '@')")
    if args.state:  # under a file, the first save (on the first post) would fail while serving
        existing = file_in_the_way(Path(args.state).resolve().parent)
        if existing is not None:
            raise CliError(f"--state '{args.state}' cannot be written: {existing} exists and is not a folder "
                           "(pass a file path in a folder; it is created if missing)")
    try:
        sandbox = SandboxX(args.scenario, clock=clock_from_args(args), seed=args.seed, analytics_enabled=not args.no_analytics,
                           state_path=args.state, handle=args.handle, oauth=args.oauth)
    except ScenarioError as exc:
        raise CliError(str(exc)) from None
    except ValueError as exc:  # e.g. a state file from another seed or scenario
        raise CliError(str(exc)) from None

    sock = socket.socket(socket.AF_INET6 if ":" in args.host else socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((args.host, args.port))
    except socket.gaierror as exc:  # the host, not the port: "pick another --port" would mislead
        raise unknown_host(args.host, exc) from None
    except OSError as exc:
        raise CliError(f"cannot listen on {args.host}:{args.port}: {exc} (pick another --port, or 0 for a free one)") from None
    sock.listen(128)  # connections queue from now on, so a client may start as soon as the URL is printed
    host, port = sock.getsockname()[:2]
    shown = f"[{host}]" if ":" in host else host
    print(f"sandbox X serving scenario {sandbox.scenario.name!r} (seed {args.seed}, analytics "
          f"{'off' if args.no_analytics else 'on'}) for @{sandbox.handle} (user id {sandbox.user_id})")
    print(f"base URL: http://{shown}:{port}")
    print(f"token: {sandbox.token}   (any non-empty bearer token is accepted)")
    print(f"use it:   X_SANDBOX_URL=http://{shown}:{port} X_ACCESS_TOKEN={sandbox.token}")
    sys.stdout.flush()

    config = uvicorn.Config(sandbox.socket_app(), log_level="warning", access_log=False, lifespan="off")
    uvicorn.Server(config).run(sockets=[sock])
    return 0
