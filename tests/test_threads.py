"""Importing xbotlib before numpy gives numpy's BLAS one thread (see xbotlib/__init__.py), unless the operator set
their own count. Run in fresh interpreters: this process's numpy is already loaded."""
from __future__ import annotations

import os
import subprocess
import sys

PROBE = ("import xbotlib, numpy, threadpoolctl; "
         "print(max(i['num_threads'] for i in threadpoolctl.threadpool_info() if i['user_api'] == 'blas'))")


def blas_threads(**env: str) -> int:
    clean = {k: v for k, v in os.environ.items() if k not in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")}
    out = subprocess.run([sys.executable, "-c", PROBE], env={**clean, **env}, capture_output=True, text=True, check=True)
    return int(out.stdout.strip())


def test_xbotlib_gives_numpy_one_blas_thread():
    assert blas_threads() == 1


def test_an_operators_own_thread_count_wins():
    assert blas_threads(OPENBLAS_NUM_THREADS="2") == 2
