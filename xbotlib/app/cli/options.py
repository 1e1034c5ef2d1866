"""Option checks the commands share, all before any work starts: argparse types (argparse refuses a bad value
itself: usage line, exit 2, the value and the range; the bench scripts use them too) and the listening port and
host the servers share."""
from __future__ import annotations

import argparse
import math
import socket
from typing import Callable

from xbotlib.app.cli.errors import CliError


def positive_seconds(raw: str) -> float:
    """A duration in seconds above 0: 0, a negative, nan or inf would wait no time or forever (or overflow)."""
    try:
        value = float(raw)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {raw!r} (e.g. 300)") from None
    if not (value > 0 and math.isfinite(value)):
        raise argparse.ArgumentTypeError(f"must be a positive number of seconds, got {raw!r} (e.g. 300)")
    return value


def at_least(low: int) -> Callable[[str], int]:
    """An argparse ``type``: a whole number of at least ``low`` (counts: 1; seeds and lags: 0). In the bench
    scripts a count of 0 used to run nothing and print empty tables, a negative seed ended in numpy's traceback."""
    def whole(raw: str) -> int:
        try:
            value = int(raw)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a whole number of at least {low}, got {raw!r}") from None
        if value < low:
            raise argparse.ArgumentTypeError(f"must be at least {low}, got {value}")
        return value
    whole.__name__ = f"whole number >= {low}"   # what argparse names in its own messages
    return whole


def check_port(port: int) -> None:
    """A local port to listen on, 0 for a free one (the sandbox, the lab, the sign-in callback)."""
    if not 0 <= port <= 65535:
        raise CliError(f"--port must be 0..65535, got {port}")


def unknown_host(host: str, exc: socket.gaierror) -> CliError:
    """The error for a --host that does not resolve: the host is wrong, not the port."""
    return CliError(f"cannot listen on --host {host!r}: {exc.strerror} (an address of this machine, e.g. "
                    "127.0.0.1, or 0.0.0.0 for every interface)")
