"""The papermill runner: parameters checked before running, executed notebook + offline HTML report +
index + notebook_runs row for a good run, and an honest, visible record of a failed one."""
from __future__ import annotations

import os
import re
import subprocess
import sys
from dataclasses import replace
from datetime import datetime, timedelta, timezone
from html import unescape
from pathlib import Path
from urllib.parse import urlsplit

import nbformat
import psycopg
import pytest
from jupyter_client.kernelspec import KernelSpecManager
from psycopg.rows import dict_row

from xbotlib.app.cli.main import main
from xbotlib.app.reports.html import build_index
from xbotlib.app.reports.pairing import pair_differences
from xbotlib.app.reports.records import CONTEXT_MIME, NotebookRun, collect_runs, run_context, save_record
from xbotlib.app.reports.runner import (NOTEBOOKS_DIR, NotebookFailed, NotebookInfo, NotebookParameterError, Parameter,
                                        coerce_parameters, ensure_kernel, get_notebook, list_notebooks, run_notebook)
from xbotlib.store.db import redact
from xbotlib.store.queue import ensure_account

EXTERNAL = re.compile(r"<script[^>]*\bsrc=[\"']?(?:https?:)?//|<link[^>]*\bhref=[\"']?(?:https?:)?//", re.I)


def notebook_runs(db_url: str) -> list[dict]:
    with psycopg.connect(db_url, row_factory=dict_row) as conn:
        return conn.execute("SELECT * FROM notebook_runs ORDER BY run_id").fetchall()


# ----------------------------------------------------------------------------- notebooks on disk

def test_list_notebooks_reads_parameters_types_and_description():
    smoke = {i.name: i for i in list_notebooks()}["smoke_check"]
    assert smoke.parameters == {"message": Parameter("hello", str), "repeat": Parameter(2, int),
                                "fail": Parameter(False, bool)}
    assert smoke.description.startswith("Smoke check")
    assert smoke.path == NOTEBOOKS_DIR / "smoke_check.ipynb"


@pytest.mark.parametrize("py", sorted(NOTEBOOKS_DIR.glob("*.py")), ids=lambda p: p.stem)
def test_every_notebook_pair_is_in_sync_with_one_parameters_cell(py):
    assert pair_differences(py) == [], "run `xbot notebook sync` after editing the .py"
    nb = nbformat.read(py.with_suffix(".ipynb"), as_version=4)
    tagged = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
    assert len(tagged) == 1
    assert get_notebook(py.stem).name == py.stem  # parameters parse (literal defaults)


def test_ensure_kernel_installs_a_kernelspec_for_this_interpreter():
    name = ensure_kernel()
    spec = KernelSpecManager().get_kernel_spec(name)
    assert spec.argv[0] == sys.executable
    assert ensure_kernel() == name  # idempotent


# ----------------------------------------------------------------------------- parameters (pure)

INFO = NotebookInfo(name="nb", path=Path("nb.ipynb"), description="",
                    parameters={"days": Parameter(30, int), "alpha": Parameter(0.5, float),
                                "experiment_id": Parameter("question_cta", str), "fail": Parameter(False, bool),
                                "arms": Parameter(["a"], list)})


@pytest.mark.parametrize("given, expected", [
    ({"days": "7"}, {"days": 7}),
    ({"days": 7}, {"days": 7}),
    ({"alpha": "0.25", "fail": "true"}, {"alpha": 0.25, "fail": True}),
    ({"alpha": 1, "fail": "0"}, {"alpha": 1.0, "fail": False}),
    ({"experiment_id": "hashtag_1"}, {"experiment_id": "hashtag_1"}),
    ({"experiment_id": "123"}, {"experiment_id": "123"}),
    ({"arms": '["x", "y"]'}, {"arms": ["x", "y"]}),
])
def test_parameters_are_converted_to_the_declared_type(given, expected):
    assert coerce_parameters(INFO, given) == expected


@pytest.mark.parametrize("given, match", [
    ({"dayz": "7"}, r"unknown parameter 'dayz'.*valid parameters of 'nb': days: int = 30, alpha: float"),
    ({"days": "seven"}, r"'days' of notebook 'nb' must be int: got 'seven'.*experiment_id: str"),
    ({"days": "7.5"}, r"must be int: got '7.5'"),
    ({"days": True}, r"must be int: got True"),
    ({"alpha": "nan"}, r"must be float: got 'nan'"),
    ({"fail": "maybe"}, r"must be bool: got 'maybe'"),
    ({"experiment_id": 3}, r"must be str: got 3"),
    ({"arms": '{"a": 1}'}, r"must be list"),
])
def test_unknown_and_mistyped_parameters_are_refused_with_the_valid_ones(given, match):
    with pytest.raises(NotebookParameterError, match=match):
        coerce_parameters(INFO, given)


def test_bad_parameter_refused_before_anything_runs_or_is_written(db_url, tmp_path):
    with pytest.raises(NotebookParameterError, match=r"'repeat'.*must be int.*'lots'.*message: str = 'hello'"):
        run_notebook("smoke_check", {"repeat": "lots"}, db_url=db_url, reports_dir=tmp_path / "reports")
    with pytest.raises(NotebookParameterError, match=r"unknown parameter 'colour'.*fail: bool = False"):
        run_notebook("smoke_check", {"colour": "red"}, db_url=db_url, reports_dir=tmp_path / "reports")
    assert not (tmp_path / "reports").exists()
    assert notebook_runs(db_url) == []


def test_cli_refuses_mistyped_and_unknown_notebook(db_url, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("XBOT_DATABASE_URL", db_url)
    reports = tmp_path / "reports"
    assert main(["notebook", "run", "smoke_check", "-p", "repeat", "three", "--reports-dir", str(reports)]) == 2
    err = capsys.readouterr().err
    assert "'repeat'" in err and "must be int" in err and "'three'" in err and "fail: bool = False" in err
    assert main(["notebook", "run", "no_such_notebook", "--reports-dir", str(reports)]) == 2
    assert "available: " in capsys.readouterr().err
    assert notebook_runs(db_url) == [] and not reports.exists()


@pytest.mark.parametrize("timeout", ["0", "-1", "inf", "nan"])
def test_cli_refuses_a_cell_timeout_that_is_no_limit_in_disguise(db_url, tmp_path, monkeypatch, capsys, timeout):
    monkeypatch.setenv("XBOT_DATABASE_URL", db_url)
    reports = tmp_path / "reports"
    with pytest.raises(SystemExit) as exit_:  # argparse's own refusal: usage line, exit 2
        main(["notebook", "run", "smoke_check", "--timeout", timeout, "--reports-dir", str(reports)])
    assert exit_.value.code == 2
    assert f"argument --timeout: must be a positive number of seconds, got '{timeout}'" in capsys.readouterr().err
    assert notebook_runs(db_url) == [] and not reports.exists()


def test_cli_refuses_a_reports_dir_that_is_a_file_before_recording_a_run(db_url, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("XBOT_DATABASE_URL", db_url)
    afile = tmp_path / "reports.txt"
    afile.write_text("keep me")
    assert main(["notebook", "run", "smoke_check", "--reports-dir", str(afile / "sub")]) == 2
    err = capsys.readouterr().err
    assert f"--reports-dir '{afile / 'sub'}' is not a folder ({afile} exists and is not a folder)" in err
    assert notebook_runs(db_url) == [] and afile.read_text() == "keep me"


def test_parameters_naming_database_objects_are_checked_before_a_kernel_starts(db_url, tmp_path, clock):
    # a kernel that cannot start would make any run that got that far a recorded failure: these never get there
    reports = tmp_path / "reports"
    with pytest.raises(NotebookParameterError, match=r"parameter 'experiment_id' of notebook 'experiment_lift': "
                       r"unknown experiment 'emoji_3' \(valid ids: hashtag_1, question_cta, contrarian_reply"):
        run_notebook("experiment_lift", {"experiment_id": "emoji_3"}, db_url=db_url, reports_dir=reports,
                     kernel="no_such_kernel")
    with pytest.raises(NotebookParameterError, match=r"unknown account 'nobody' \(this database holds no accounts"):
        run_notebook("growth_review", {"account_id": "nobody"}, db_url=db_url, reports_dir=reports,
                     kernel="no_such_kernel")
    with psycopg.connect(db_url, row_factory=dict_row) as conn:
        ensure_account(conn, "acct_b", clock.now())
        ensure_account(conn, "acct_a", clock.now())
    with pytest.raises(NotebookParameterError, match=r"unknown account 'acct_c' \(accounts in this database: "
                                                     r"acct_a, acct_b; or leave it out"):
        run_notebook("experiment_lift", {"account_id": "acct_c", "experiment_id": "hashtag_1"}, db_url=db_url,
                     reports_dir=reports, kernel="no_such_kernel")
    assert not reports.exists() and notebook_runs(db_url) == []
    # a known account and experiment pass on to the kernel (which here cannot start: a recorded failure)
    with pytest.raises(NotebookFailed, match="no_such_kernel"):
        run_notebook("experiment_lift", {"account_id": "acct_a", "experiment_id": "hashtag_1"}, db_url=db_url,
                     reports_dir=reports, kernel="no_such_kernel")


def test_cli_names_the_bad_experiment_id_and_the_valid_ones(db_url, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("XBOT_DATABASE_URL", db_url)
    reports = tmp_path / "reports"
    assert main(["notebook", "run", "experiment_lift", "-p", "experiment_id", "question-cta",
                 "--reports-dir", str(reports)]) == 2
    err = capsys.readouterr().err
    assert "unknown experiment 'question-cta'" in err and "question_cta" in err and "Traceback" not in err
    assert notebook_runs(db_url) == [] and not reports.exists()


# ----------------------------------------------------------------------------- real runs

def test_run_writes_executed_notebook_offline_html_index_and_row(db_url, tmp_path, clock):
    reports = tmp_path / "reports"
    run = run_notebook("smoke_check", {"message": "hello from the test", "repeat": "3"}, db_url=db_url,
                       clock_now=clock, reports_dir=reports)

    assert run.status == "ok" and run.error is None and run.parameters == {"message": "hello from the test", "repeat": 3}
    out, page = Path(run.output_path), Path(run.html_path)
    assert re.fullmatch(r"smoke_check-080000-[0-9a-f]{6}\.ipynb", out.name)
    assert out.parent == reports / "runs" / "2026-03-02" and page == out.with_suffix(".html")

    executed = nbformat.read(out, as_version=4)
    injected = [c for c in executed.cells if "injected-parameters" in c.metadata.get("tags", [])]
    assert len(injected) == 1 and "repeat = 3" in injected[0].source

    html = page.read_text()
    assert "smoke message 3/3: hello from the test" in html
    dbname = urlsplit(db_url).path.lstrip("/")
    assert f"connected to database {dbname}" in html  # the kernel reached *this* database via XBOT_DATABASE_URL
    assert "data:image/png;base64," in html  # the plot is embedded, not linked
    assert "open_database" not in html and "import pandas" not in html  # no code cells
    assert not EXTERNAL.search(html) and "http://" not in html and "https://" not in html
    assert "status <b" in html and ">ok<" in html

    assert run.index_path == str(reports / "index.html")
    index = (reports / "index.html").read_text()
    assert 'href="runs/2026-03-02/' + page.name + '"' in index and 'href="runs/2026-03-02/' + out.name + '"' in index
    assert "hello from the test" in index and ">ok<" in index and not EXTERNAL.search(index)
    # the notebook said which database it read; the record and the index carry it, password hidden
    [record] = collect_runs(reports)
    assert record.database == redact(db_url) and record.world is None
    assert f"<b>{dbname}</b>" in index and f"database <code>{redact(db_url)}</code>" in unescape(html)

    [row] = notebook_runs(db_url)
    assert row["run_id"] == run.run_id and row["notebook"] == "smoke_check" and row["status"] == "ok"
    assert row["parameters"] == {"message": "hello from the test", "repeat": 3}
    assert row["output_path"] == str(out) and row["html_path"] == str(page) and row["error"] is None
    assert row["started_at"] == clock.now() and row["finished_at"] is not None


def test_failed_run_is_recorded_visible_and_cli_exits_nonzero(db_url, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("XBOT_DATABASE_URL", db_url)
    reports = tmp_path / "reports"
    code = main(["notebook", "run", "smoke_check", "-p", "fail", "true", "-p", "message", "kaboom-42",
                 "--reports-dir", str(reports)])
    assert code == 1
    assert "RuntimeError: smoke_check was asked to fail" in capsys.readouterr().err

    [row] = notebook_runs(db_url)
    assert row["status"] == "failed" and row["finished_at"] is not None
    assert "RuntimeError: smoke_check was asked to fail (fail=True, message='kaboom-42')" in row["error"]
    assert Path(row["output_path"]).is_file()  # the partial executed notebook, with papermill's banner
    html = Path(row["html_path"]).read_text()
    assert "smoke_check was asked to fail (fail=True, message='kaboom-42')" in unescape(html)
    assert "An Exception was encountered" in html and ">failed<" in html
    assert "smoke message 2/2: kaboom-42" in html  # cells before the failure still show their output
    assert not EXTERNAL.search(html)
    index = (reports / "index.html").read_text()
    assert ">failed<" in index and "asked to fail" in index
    [record] = collect_runs(reports)
    assert record.status == "failed" and record.run_id == row["run_id"]


def test_a_kernel_that_cannot_start_is_a_recorded_failure_too(db_url, tmp_path):
    with pytest.raises(NotebookFailed, match="no_such_kernel") as info:
        run_notebook("smoke_check", {"repeat": 1}, db_url=db_url, reports_dir=tmp_path, kernel="no_such_kernel")
    run = info.value.run
    assert run.status == "failed" and "NoSuchKernel" in run.error
    assert "no_such_kernel" in unescape(Path(run.html_path).read_text())
    assert info.value.index_path == str(tmp_path / "index.html")
    [row] = notebook_runs(db_url)
    assert row["status"] == "failed" and row["error"] == run.error


def test_a_run_in_a_terminal_session_prints_no_kernel_noise(db_url, tmp_path):
    """The kernel's own log (``Kernel is running over TCP without encryption``, ``KeyboardInterrupt caught
    in kernel`` at shutdown) reaches the terminal through the inherited stderr: none of it may."""
    env = {**os.environ, "XBOT_DATABASE_URL": db_url, "XBOT_HOME": str(tmp_path / ".xbot")}
    r = subprocess.run([sys.executable, "-m", "xbotlib.app.cli.main", "notebook", "run", "smoke_check", "-p",
                        "repeat", "1", "--reports-dir", str(tmp_path / "reports")], cwd=tmp_path, env=env,
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    for noise in ("without encryption", "KeyboardInterrupt", "Traceback"):
        assert noise not in r.stdout + r.stderr, (noise, r.stdout, r.stderr)
    html = Path(next(line.split()[-1] for line in r.stdout.splitlines() if line.startswith("report:"))).read_text()
    assert "without encryption" not in html and "KeyboardInterrupt" not in html


# ----------------------------------------------------------------------------- index (pure)

def test_index_lists_runs_newest_first_with_relative_links_and_escaping(tmp_path):
    t0 = datetime(2026, 3, 1, 7, 0, tzinfo=timezone.utc)

    def run(i, status, params, error=None):
        stem = tmp_path / "runs" / f"2026-03-0{i}" / f"growth_review-070000-00000{i}"
        return NotebookRun(run_id=i, name="growth_review", parameters=params, status=status,
                           started_at=t0 + timedelta(days=i), finished_at=t0 + timedelta(days=i, seconds=42),
                           output_path=f"{stem}.ipynb", html_path=f"{stem}.html", error=error)

    runs = [run(1, "ok", {"days": 30}), run(3, "failed", {"days": 7}, "ValueError: <bad>"), run(2, "ok", {})]
    path = build_index(tmp_path, runs)
    page = path.read_text()
    order = [page.index(f"runs/2026-03-0{i}/growth_review-070000-00000{i}.html") for i in (3, 2, 1)]
    assert order == sorted(order)
    assert "ValueError: &lt;bad&gt;" in page and "<bad>" not in page
    assert "days=30" in page and "defaults" in page and "42 s" in page
    assert str(tmp_path) not in page  # links are relative: the folder can be copied anywhere


def test_index_says_which_database_and_world_each_run_read(tmp_path):
    t0 = datetime(2026, 3, 1, 7, 0, tzinfo=timezone.utc)
    stem = tmp_path / "runs" / "2026-03-01" / "growth_review-070000-000001"
    base = NotebookRun(run_id=1, name="growth_review", parameters={}, status="ok", started_at=t0,
                       finished_at=t0 + timedelta(seconds=5), output_path=f"{stem}.ipynb", html_path=f"{stem}.html")
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("analysis.report_context(...)", outputs=[
        nbformat.v4.new_output("display_data", data={"text/markdown": "Growth …", CONTEXT_MIME: {
            "database": "postgresql://postgres:****@/xbot_demo?host=/srv/pg", "account": "demo-1",
            "world": "sandbox"}})])])
    stem.parent.mkdir(parents=True)
    nbformat.write(nb, base.output_path)

    save_record(tmp_path, base)  # a finished run: its record takes the context from the executed notebook
    [run] = collect_runs(tmp_path)
    assert (run.database, run.account, run.world) == ("postgresql://postgres:****@/xbot_demo?host=/srv/pg",
                                                      "demo-1", "sandbox")
    assert run_context({"cells": []}) == {}
    page = build_index(tmp_path, [run, replace(base, run_id=2, started_at=t0 - timedelta(days=1))]).read_text()
    assert "<th>world</th><th>database</th>" in page
    assert "<td>sandbox</td>" in page and "<b>xbot_demo</b>" in page and "postgres:****@" in page
    assert "<td>—</td>" in page  # a run that said nothing about its world


def test_sync_writes_the_ipynb_from_the_py_and_check_detects_drift(tmp_path, capsys):
    (tmp_path / "smoke_check.py").write_text((NOTEBOOKS_DIR / "smoke_check.py").read_text())
    assert main(["notebook", "sync", "--check", "--notebooks-dir", str(tmp_path)]) == 1  # no .ipynb yet
    assert main(["notebook", "sync", "--notebooks-dir", str(tmp_path)]) == 0
    assert main(["notebook", "sync", "--check", "--notebooks-dir", str(tmp_path)]) == 0
    ids = [c.id for c in nbformat.read(tmp_path / "smoke_check.ipynb", as_version=4).cells]
    py = tmp_path / "smoke_check.py"
    py.write_text(py.read_text().replace('message: str = "hello"', 'message: str = "hi"'))
    assert main(["notebook", "sync", "--check", "--notebooks-dir", str(tmp_path)]) == 1
    assert "cell 1: source differs" in capsys.readouterr().out
    assert main(["notebook", "sync", "smoke_check", "--notebooks-dir", str(tmp_path)]) == 0
    info = get_notebook("smoke_check", tmp_path)
    assert info.parameters["message"] == Parameter("hi", str)
    new_ids = [c.id for c in nbformat.read(tmp_path / "smoke_check.ipynb", as_version=4).cells]
    assert new_ids[0] == ids[0] and new_ids[2:] == ids[2:]  # unchanged cells keep their ids: small diffs


def test_sync_refuses_a_missing_notebooks_dir_instead_of_passing_the_check(tmp_path, capsys):
    missing = tmp_path / "no_such_dir"
    assert main(["notebook", "sync", "--check", "--notebooks-dir", str(missing)]) == 2
    assert f"notebooks directory not found: '{missing}'" in capsys.readouterr().err
