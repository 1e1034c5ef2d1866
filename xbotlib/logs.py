"""Logging with xbot's contract tags: ``[TAG] words key=value …`` on stderr (and the log file).

Use ``tagged(logger, "ANALYTICS_COLLECTOR", "stored outcome", decision_id=…, pass_=1)``; a
trailing underscore in a key is dropped (``pass_`` -> ``pass``) so Python keywords can be keys.
"""
from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Any

FORMAT = "%(asctime)s %(levelname)s %(name)s %(message)s"


def format_kv(**kv: Any) -> str:
    parts = []
    for key, value in kv.items():
        key = key.rstrip("_")
        if isinstance(value, float):
            value = f"{value:.6g}"
        parts.append(f"{key}={value}")
    return " ".join(parts)


def tag_line(tag: str, message: str = "", **kv: Any) -> str:
    return " ".join(p for p in (f"[{tag}]", message, format_kv(**kv)) if p)


def tagged(logger: logging.Logger, tag: str, message: str = "", level: int = logging.INFO, **kv: Any) -> str | None:
    """Log ``[TAG] message key=value …`` at ``level``; returns the line, or None when ``logger`` drops that
    level (the line is then not even formatted: a simulated year logs ~150,000 of them, mostly at INFO)."""
    if not logger.isEnabledFor(level):
        return None
    line = tag_line(tag, message, **kv)
    logger.log(level, line)
    return line


class _StderrHandler(logging.StreamHandler):
    """Writes to whatever ``sys.stderr`` is at the time of each line (tests and notebooks swap it)."""

    def __init__(self) -> None:
        super().__init__(sys.stderr)

    @property  # type: ignore[override]
    def stream(self):
        return sys.stderr

    @stream.setter
    def stream(self, _value) -> None:
        pass


def setup_logging(level: int = logging.INFO, log_file: Path | None = None, stderr_level: int | None = None) -> None:
    """Jobs log to stderr; the daemon and the demo also append to ``.xbot/logs/xbot.log``.

    ``stderr_level`` lets the demo keep the terminal for its progress bar (warnings only) while
    the log file still gets every line at ``level``.
    """
    root = logging.getLogger("xbot")
    root.setLevel(level)
    for h in list(root.handlers):
        if getattr(h, "_xbot", False):
            root.removeHandler(h)
    err = _StderrHandler()
    err.setFormatter(logging.Formatter(FORMAT))
    err._xbot = True  # type: ignore[attr-defined]
    if stderr_level is not None:
        err.setLevel(stderr_level)
    root.addHandler(err)
    if log_file is not None:
        log_file.parent.mkdir(parents=True, exist_ok=True)
        fh = logging.FileHandler(log_file)
        fh.setFormatter(logging.Formatter(FORMAT))
        fh._xbot = True  # type: ignore[attr-defined]
        root.addHandler(fh)
