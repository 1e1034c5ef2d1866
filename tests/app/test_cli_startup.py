"""`xbot --help` stays fast because building the command table loads no heavy library.

Speed itself is measured, not asserted (BENCHMARKS.md); what is asserted is the cause of a slow start:
which modules the parser pulls in. A fresh interpreter, so other tests' imports do not count.
"""
from __future__ import annotations

import json
import subprocess
import sys

HEAVY = ("pandas", "sklearn", "scipy", "psycopg", "papermill", "nbconvert", "matplotlib", "lightgbm", "openai",
         "httpx", "fastapi", "pyarrow", "duckdb", "polars", "statsmodels")


def loaded_by(code: str) -> list[str]:
    probe = f"import json, sys\n{code}\nprint(json.dumps(sorted(m for m in {HEAVY!r} if m in sys.modules)))"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def test_the_command_table_loads_no_heavy_library():
    assert loaded_by("from xbotlib.app.cli.main import build_parser\nbuild_parser()") == []


def test_the_probe_sees_a_heavy_import():
    assert "pandas" in loaded_by("import pandas")


def test_help_prints_every_command_group():
    out = subprocess.run([sys.executable, "-m", "xbotlib", "--help"], capture_output=True, text=True, check=True).stdout
    for command in ("doctor", "db", "migrate", "job", "run", "experiment", "sandbox", "notebook", "schedule", "lab",
                    "api", "demo", "bench"):
        assert f"    {command} " in out, command
