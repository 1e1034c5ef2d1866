"""argparse types the subcommands share: argparse refuses a bad value itself (usage line, exit 2)."""
from __future__ import annotations

import argparse
import math


def positive_seconds(raw: str) -> float:
    """A duration in seconds above 0: 0, a negative, nan or inf would wait no time or forever (or overflow)."""
    try:
        value = float(raw)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {raw!r} (e.g. 300)") from None
    if not (value > 0 and math.isfinite(value)):
        raise argparse.ArgumentTypeError(f"must be a positive number of seconds, got {raw!r} (e.g. 300)")
    return value
