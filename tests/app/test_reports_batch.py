"""Several reports at once (``reports.batch.run_notebooks``): kernels side by side, and still one honest,
immutable record per run, listed in the order the runs were asked for."""
from __future__ import annotations

from html import unescape
from pathlib import Path

import nbformat
import psycopg
import pytest
from psycopg.rows import dict_row

from xbotlib.app.reports.batch import failures, run_notebooks
from xbotlib.app.reports.records import collect_runs
from xbotlib.app.reports.runner import NotebookParameterError


def notebook_runs(db_url: str) -> list[dict]:
    with psycopg.connect(db_url, row_factory=dict_row) as conn:
        return conn.execute("SELECT * FROM notebook_runs ORDER BY run_id").fetchall()


def test_a_batch_records_every_run_in_job_order_and_a_failure_does_not_stop_the_others(db_url, tmp_path):
    reports = tmp_path / "reports"
    jobs = [("smoke_check", {"message": "first", "repeat": 1}),
            ("smoke_check", {"message": "second-fails", "fail": True}),
            ("smoke_check", {"message": "third", "repeat": "3"})]
    seen = []
    results = run_notebooks(jobs, db_url=db_url, reports_dir=reports, workers=2, on_finished=seen.append)

    assert [r.run.parameters.get("message") for r in results] == ["first", "second-fails", "third"]
    assert [r.run.status for r in results] == ["ok", "failed", "ok"]
    assert sorted(r.run_id for r in seen) == [r.run.run_id for r in results]  # each reported once, as it finished
    assert all(r.index_path == reports / "index.html" for r in results)

    rows = notebook_runs(db_url)
    assert [row["run_id"] for row in rows] == [r.run.run_id for r in results]  # ids follow the job order
    assert [row["status"] for row in rows] == ["ok", "failed", "ok"]
    assert all(row["finished_at"] is not None for row in rows)
    starts = [row["started_at"] for row in rows]
    assert starts == sorted(starts)
    assert "smoke_check was asked to fail" in rows[1]["error"]

    for r in results:  # every run: executed notebook, HTML report, record — the failed one too
        assert Path(r.run.output_path).is_file() and Path(r.run.html_path).is_file()
        assert Path(r.run.output_path).with_suffix(".json").is_file()
    assert "smoke message 3/3: third" in Path(results[2].run.html_path).read_text()
    assert "asked to fail (fail=True, message='second-fails')" in unescape(Path(results[1].run.html_path).read_text())
    [failed] = failures(results)
    assert failed.run.run_id == results[1].run.run_id and "asked to fail" in str(failed)

    # the index's last version lists every run with its final status, newest (the last job) first
    records = collect_runs(reports)
    assert [(x.run_id, x.status) for x in records] == [(r.run.run_id, r.run.status) for r in reversed(results)]
    index = (reports / "index.html").read_text()
    assert ">running<" not in index and index.count(">ok<") == 2 and index.count(">failed<") == 1
    assert [index.index(Path(r.run.html_path).name) for r in reversed(results)] == \
        sorted(index.index(Path(r.run.html_path).name) for r in results)


def test_a_bad_parameter_anywhere_refuses_the_batch_before_anything_runs(db_url, tmp_path):
    reports = tmp_path / "reports"
    jobs = [("smoke_check", {"repeat": 1}), ("experiment_lift", {"experiment_id": "emoji_3"})]
    with pytest.raises(NotebookParameterError, match="emoji_3"):
        run_notebooks(jobs, db_url=db_url, reports_dir=reports, workers=2)
    with pytest.raises(NotebookParameterError, match="unknown account 'nobody'"):
        run_notebooks([("smoke_check", {}), ("growth_review", {"account_id": "nobody"})], db_url=db_url,
                      reports_dir=reports, workers=2)
    assert not reports.exists() and notebook_runs(db_url) == []


@pytest.mark.parametrize("workers", [0, -2, 1.5])
def test_a_worker_count_that_is_not_a_process_count_is_refused(db_url, tmp_path, workers):
    with pytest.raises(ValueError, match=rf"workers must be .* at least 1: got {workers!r}"):
        run_notebooks([("smoke_check", {})], db_url=db_url, reports_dir=tmp_path, workers=workers)


PROBE = '''# ---
# jupyter:
#   kernelspec:
#     display_name: xbot (Python 3)
#     language: python
#     name: xbot
# ---

# %% [markdown]
# # Probe: what a run sees of the runs before it in the same kernel

# %% tags=["parameters"]
mark: str = "a"

# %%
import os
names = sorted(k for k in globals() if not k.startswith("_") and k not in {"In", "Out", "exit", "quit", "get_ipython", "open"})
print(f"pid {os.getpid()} count {get_ipython().execution_count} database {os.environ['XBOT_DATABASE_URL']}")
print(f"names {names}")
left_behind = mark
'''


def test_a_warm_kernel_gives_each_run_a_fresh_session(db_url, tmp_path):
    # One worker runs both notebooks in one kernel (the same pid), yet the second sees nothing of the
    # first: no variable it left, the execution count a new kernel would have, the batch's database.
    # imported here: jupytext is only needed to write this test's notebook
    import jupytext

    notebooks = tmp_path / "notebooks"
    notebooks.mkdir()
    jupytext.write(jupytext.reads(PROBE, fmt="py:percent"), notebooks / "probe.ipynb")
    results = run_notebooks([("probe", {"mark": "first"}), ("probe", {"mark": "second"})], db_url=db_url,
                            reports_dir=tmp_path / "reports", workers=1, notebooks_dir=notebooks)
    assert [r.run.status for r in results] == ["ok", "ok"]
    printed = ["".join(o.get("text", "") for c in nbformat.read(r.run.output_path, as_version=4).cells
                       for o in c.get("outputs", [])).splitlines() for r in results]
    assert printed[0][0] == printed[1][0] and printed[0][0].endswith(f"database {db_url}")
    assert printed[0][1] == printed[1][1] == "names ['mark', 'os']"


def test_the_demos_reports_all_run_and_are_listed_in_the_demos_order(pg, tmp_path, capsys):
    # imported here: the campaign loads the jobs and the simulator, which only this test needs
    from xbotlib.app.cli.demo import DEMO_LIFT_EXPERIMENTS, DEMO_NOTEBOOKS, _run_notebooks
    from xbotlib.config import load_settings  # imported here: as above
    from xbotlib.jobs.campaign import CampaignConfig, run_campaign  # imported here: as above
    from xbotlib.store.db import Database  # imported here: as above

    url = pg.fresh_database()
    with Database.from_url(url, pool_max=3) as db:
        account = run_campaign(CampaignConfig(days=2, seed=5), load_settings(env={}), db).account_ids[0]
    index = _run_notebooks(url, account, tmp_path / "reports")

    assert index == tmp_path / "reports" / "index.html"
    assert "reports: 9 notebooks in" in capsys.readouterr().out
    rows = notebook_runs(url)
    expected = [(n, None) for n in DEMO_NOTEBOOKS] + [("experiment_lift", e) for e in DEMO_LIFT_EXPERIMENTS]
    assert [(r["notebook"], r["parameters"].get("experiment_id")) for r in rows] == expected
    assert all(r["status"] == "ok" and r["parameters"]["account_id"] == account for r in rows), rows
    assert [r.run_id for r in collect_runs(tmp_path / "reports")] == [r["run_id"] for r in reversed(rows)]
