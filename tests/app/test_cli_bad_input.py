"""Bad parameters of `xbot migrate`, `run`, `worker`, `sandbox` and `schedule list`: each is refused with a message
that names the value and the fix, exit status 2, no traceback, and before anything is changed or started."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from xbotlib.app.cli.main import main
from xbotlib.store import migrate
from xbotlib.store.db import Database

REPO = Path(__file__).resolve().parents[2]
ORIGIN = "2026-01-05T00:00:00+00:00"


def xbot(*args: str, home: Path) -> subprocess.CompletedProcess:
    """The real command in its own process (a regression that starts a server times out instead of passing)."""
    env = {**os.environ, "XBOT_HOME": str(home), "PYTHONPATH": str(REPO)}
    return subprocess.run([sys.executable, "-m", "xbotlib.app.cli.main", *args], capture_output=True, text=True,
                          env=env, cwd=REPO, timeout=60)


@pytest.mark.parametrize("argv, message", [
    (["down", "--to", "-5"], "--to -5 is not a migration version (on disk: 1.."),  # was: reverted every migration
    (["down", "--to", "999"], "--to 999 is not a migration version (on disk: 1.."),
    (["up", "--to", "0"], "--to 0 is not a migration version (on disk: 1.."),
    (["up", "--all"], "--all is only for `xbot migrate down`"),
    (["status", "--to", "3"], "--to is only for `xbot migrate up` and `down`"),
    (["down", "--all", "--to", "3"], "--to 3 and --all contradict each other"),
])
def test_migrate_refuses_versions_not_on_disk_and_options_the_action_ignores(db_url, tmp_path, monkeypatch, capsys,
                                                                             argv, message):
    monkeypatch.setenv("XBOT_DATABASE_URL", db_url)
    monkeypatch.setenv("XBOT_HOME", str(tmp_path / ".xbot"))
    assert main(["migrate", *argv]) == 2
    assert f"xbot: error: {message}" in capsys.readouterr().err
    with Database.from_url(db_url, pool_max=2) as db:  # the schema is as it was: every migration applied
        assert {r["state"] for r in migrate.status(db)} == {"applied"}


def test_migrate_down_to_zero_still_reverts_everything(db_url, tmp_path, monkeypatch):
    monkeypatch.setenv("XBOT_DATABASE_URL", db_url)
    monkeypatch.setenv("XBOT_HOME", str(tmp_path / ".xbot"))
    assert main(["migrate", "down", "--to", "0"]) == 0
    with Database.from_url(db_url, pool_max=2) as db:
        assert {r["state"] for r in migrate.status(db)} == {"pending"}


@pytest.mark.parametrize("command", ["run", "worker"])
def test_run_and_worker_refuse_bad_schedules_and_clocks_before_the_database(tmp_path, command):
    home = tmp_path / ".xbot"
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "jobs.toml").write_text('[[job]]\nname = "plan"\ncron = "every hour"\n')
    cases = [
        (["--schedules", str(tmp_path / "none")], f"--schedules '{tmp_path / 'none'}' is not a directory"),
        (["--schedules", str(broken)], f"{broken / 'jobs.toml'} job #1 (plan): bad cron 'every hour'"),
        (["--clock-scale", "inf", "--clock-origin", ORIGIN], "--clock-scale inf: ScaledClock scale must be a positive "
                                                             "finite number"),
        (["--clock-scale", "1e30", "--clock-origin", ORIGIN], "--clock-scale 1e+30 runs the clock past the year 9999"),
        (["--clock-scale", "60", "--clock-origin", "2026-01-05T00:00:00"], "--clock-origin '2026-01-05T00:00:00' has no time zone"),
    ]
    for argv, message in cases:
        out = xbot(command, *argv, home=home)
        assert out.returncode == 2 and "Traceback" not in out.stderr, out.stderr
        assert f"xbot: error: {message}" in out.stderr, out.stderr
    assert not (home / "pgdata").exists()  # refused before the database started


def test_sandbox_refuses_a_bad_handle_host_scenario_or_clock_before_serving(tmp_path):
    binary = tmp_path / "world.toml"
    binary.write_bytes(b"\xd0\xff\x00")
    cases = [
        (["--handle", ""], "--handle '' is not an X handle (1-15 letters, digits or '_', without '@')"),
        (["--handle", "two words"], "--handle 'two words' is not an X handle"),
        (["--host", "no-such-host.invalid", "--port", "0"], "cannot listen on --host 'no-such-host.invalid'"),
        (["--state", str(binary / "state.json")], f"--state '{binary / 'state.json'}' cannot be written: {binary} "
                                                  "exists and is not a folder"),
        (["--scenario", str(tmp_path)], f"scenario file not found: '{tmp_path}'"),
        (["--scenario", str(binary)], f"{binary}: not a UTF-8 text file"),
        (["--clock-scale", "inf", "--clock-origin", ORIGIN], "--clock-scale inf: ScaledClock scale must be a positive "
                                                             "finite number"),
    ]
    for argv, message in cases:
        out = xbot("sandbox", *argv, home=tmp_path / ".xbot")
        assert out.returncode == 2 and "Traceback" not in out.stderr and out.stdout == "", out.stdout + out.stderr
        assert f"xbot: error: {message}" in out.stderr, out.stderr


def test_schedule_list_refuses_crontab_options_without_crontab(tmp_path, capsys):
    for option, value in (("--workdir", "/srv/xbot"), ("--xbot", "/opt/xbot/bin/xbot")):
        assert main(["schedule", "list", option, value]) == 2  # was: ignored, the plain listing printed
        assert "--xbot and --workdir shape the --crontab lines: add --crontab, or drop them" in capsys.readouterr().err
    assert main(["schedule", "list", "--crontab", "--workdir", "/srv/xbot"]) == 0  # another machine's folder
    assert "cd /srv/xbot && " in capsys.readouterr().out
