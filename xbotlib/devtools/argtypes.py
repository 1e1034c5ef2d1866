"""argparse types for the benches' counts: a bad number is refused by argparse with its value and the range,
before any work starts (a count of 0 used to run nothing and print empty tables, a negative seed ended in
numpy's traceback)."""
from __future__ import annotations

import argparse
from typing import Callable


def at_least(low: int) -> Callable[[str], int]:
    """An argparse ``type``: a whole number of at least ``low`` (counts: 1; seeds and lags: 0)."""
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
