"""The machine line every benchmark table carries (``xbot bench``, bench/*.py)."""
from __future__ import annotations

import os
import platform
from datetime import date
from pathlib import Path


def machine() -> str:
    """CPU model, cores, Python version and today's date: the line every benchmark table carries."""
    cpu = platform.processor() or ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{cpu or platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, {date.today()}"
