"""The CLI's own error: a user-facing message, printed without a traceback (exit code 2)."""
from __future__ import annotations


class CliError(RuntimeError):
    """A user-facing error: printed without a traceback, exit code 2."""
