"""`xbot lab` starts JupyterLab on notebooks/ with the xbot kernel, prints a tokened URL that
answers, refuses requests without the token, and stops cleanly on SIGTERM."""
from __future__ import annotations

import os
import queue
import re
import signal
import subprocess
import sys
import threading
import time

import httpx
import pytest

from xbotlib.app.cli.main import main
from xbotlib.app.cli.notebooks import free_port
from xbotlib.app.reports.runner import NOTEBOOKS_DIR
from xbotlib.config import PROJECT_ROOT

URL_RE = re.compile(r"(http://127\.0\.0\.1:(\d+))/lab\?token=(\S+)")


def _lines(stream, out: queue.Queue) -> None:
    for line in iter(stream.readline, ""):
        out.put(line)


@pytest.mark.slow
def test_lab_answers_on_its_url_and_stops_on_sigterm(db_url, tmp_path):
    port = free_port()
    env = dict(os.environ, XBOT_DATABASE_URL=db_url, JUPYTER_RUNTIME_DIR=str(tmp_path / "runtime"),
               JUPYTER_CONFIG_DIR=str(tmp_path / "config"), PYTHONUNBUFFERED="1")
    proc = subprocess.Popen([sys.executable, "-m", "xbotlib.app.cli.main", "lab", "--port", str(port),
                             "--notebook-dir", str(NOTEBOOKS_DIR)],
                            cwd=PROJECT_ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                            text=True, start_new_session=True)
    lines: queue.Queue = queue.Queue()
    threading.Thread(target=_lines, args=(proc.stdout, lines), daemon=True).start()
    try:
        match, deadline = None, time.monotonic() + 90
        while match is None and time.monotonic() < deadline and proc.poll() is None:
            try:
                match = URL_RE.search(lines.get(timeout=1))
            except queue.Empty:
                continue
        assert match, f"xbot lab printed no URL (exit code {proc.poll()})"
        base, printed_port, token = match.group(1), int(match.group(2)), match.group(3)
        assert printed_port == port

        status = httpx.get(f"{base}/api/status", params={"token": token}, timeout=10)
        assert status.status_code == 200 and "started" in status.json()
        assert httpx.get(f"{base}/api/status", timeout=10).status_code == 403  # no token, no entry
        specs = httpx.get(f"{base}/api/kernelspecs", params={"token": token}, timeout=10).json()
        assert specs["default"] == "xbot" and specs["kernelspecs"]["xbot"]["spec"]["argv"][0] == sys.executable
        contents = httpx.get(f"{base}/api/contents", params={"token": token}, timeout=10).json()
        assert "smoke_check.ipynb" in {item["name"] for item in contents["content"]}  # served from notebooks/

        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
        with pytest.raises(httpx.TransportError):  # JupyterLab went down with it
            httpx.get(f"{base}/api/status", params={"token": token}, timeout=2)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)  # the session this test started: xbot lab and its JupyterLab
            proc.wait()


@pytest.mark.parametrize("port", ["-1", "70000"])
def test_lab_refuses_a_port_out_of_range_before_starting_anything(port, capsys):
    assert main(["lab", "--port", port]) == 2
    assert f"xbot: error: --port must be 0..65535, got {port}" in capsys.readouterr().err
