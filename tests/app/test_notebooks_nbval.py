"""The research notebooks execute, and their deterministic numbers hold, against a seeded campaign.

A module fixture seeds a fresh database with a short sandbox campaign (``CAMPAIGN``: 4 simulated days,
seed 3 — enough for outcomes of both passes, a model version and experiment assignments), then runs

    python -m pytest --nbval-lax --nbval-current-env --nbval-sanitize-with tests/nbval_sanitize.cfg \
        -p no:cacheprovider notebooks/<every notebook>.ipynb

with XBOT_DATABASE_URL pointing at it. Under ``--nbval-lax`` every cell must run; only cells marked
``# NBVAL_CHECK_OUTPUT`` (counts and sample sizes: the same seed gives the same rows) are compared with
the outputs stored in the committed ``.ipynb``. Those are the only outputs the ``.ipynb`` files carry
(no plots in the diff).

After changing a notebook's ``.py``: ``xbot notebook sync NAME`` (which writes the ``.ipynb`` without
outputs), then refresh the stored outputs from the same campaign::

    .venv/bin/python tests/app/test_notebooks_nbval.py --refresh-outputs
"""
from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

from xbotlib.app.reports.runner import NOTEBOOKS_DIR, NotebookParameterError, ensure_kernel, run_notebook
from xbotlib.config import PROJECT_ROOT, load_settings
from xbotlib.devtools.testing import TestPostgres
from xbotlib.jobs.campaign import CampaignConfig, run_campaign
from xbotlib.store.db import Database

# The random policy: its choices come from the seeded generator alone, so the checked counts are the
# same on every CPU. The learner's choices go through floating-point fits whose last bits differ
# between CPU types (an AMD machine moved one post across the campaign's end against the Intel one the
# outputs were stored on); the learner itself is tested in test_policies and test_growth_model.
CAMPAIGN = CampaignConfig(days=4, seed=3, policy="random")
RESEARCH = ("collect_outcomes", "train_predictors", "experiment_lift", "growth_review", "explore_outcomes",
            "policy_review")
NOTEBOOKS = (*RESEARCH, "smoke_check")
CHECK_MARK = "# NBVAL_CHECK_OUTPUT"
SANITIZE = PROJECT_ROOT / "tests" / "nbval_sanitize.cfg"
REFRESH_HINT = "refresh them: .venv/bin/python tests/app/test_notebooks_nbval.py --refresh-outputs"


def seed_campaign(url: str, home: Path) -> list[str]:
    """Run ``CAMPAIGN`` on the (migrated, empty) database at ``url``; returns its account ids."""
    settings = load_settings(env={"XBOT_DATABASE_URL": url, "XBOT_HOME": str(home)})
    with Database.from_url(url, pool_max=4) as db:
        return run_campaign(CAMPAIGN, settings, db).account_ids


def notebook_env(url: str, home: Path) -> dict[str, str]:
    """The environment the notebooks run in: the seeded database, no account preference."""
    env = {k: v for k, v in os.environ.items() if k not in ("XBOT_ACCOUNT_ID", "PYTEST_ADDOPTS")}
    env.update(XBOT_DATABASE_URL=url, XBOT_HOME=str(home), MPLBACKEND="agg")
    return env


@pytest.fixture(scope="module")
def seeded(pg, tmp_path_factory):
    url = pg.fresh_database()
    home = tmp_path_factory.mktemp("nbval-home")
    accounts = seed_campaign(url, home)
    return {"url": url, "home": home, "account": accounts[0]}


def test_checked_cells_carry_stored_outputs():
    """A checked cell without a stored output would compare against nothing: catch a sync that dropped them."""
    for name in RESEARCH:
        nb = nbformat.read(NOTEBOOKS_DIR / f"{name}.ipynb", as_version=4)
        checked = [c for c in nb.cells if c.cell_type == "code" and CHECK_MARK in c.source]
        assert checked, f"{name}.ipynb has no '{CHECK_MARK}' cell (mark its deterministic counts)"
        for cell in checked:
            assert cell.outputs, f"{name}.ipynb: checked cell has no stored output ({REFRESH_HINT})\n{cell.source}"


def test_every_notebook_runs_under_nbval_against_a_seeded_campaign(seeded):
    cmd = [sys.executable, "-m", "pytest", "--nbval-lax", "--nbval-current-env", "--nbval-sanitize-with",
           str(SANITIZE), "-p", "no:cacheprovider", "-q", *[f"notebooks/{n}.ipynb" for n in NOTEBOOKS]]
    proc = subprocess.run(cmd, cwd=PROJECT_ROOT, env=notebook_env(seeded["url"], seeded["home"]),
                          capture_output=True, text=True, timeout=600, check=False)
    assert proc.returncode == 0, (f"nbval failed (exit {proc.returncode}); if only stored outputs differ and the "
                                  f"change is intended, {REFRESH_HINT}\n{proc.stdout[-12000:]}\n{proc.stderr[-3000:]}")
    assert " passed" in proc.stdout and "failed" not in proc.stdout


def test_lift_report_html_has_estimates_and_plots_and_a_bad_id_lists_valid_ones(seeded, tmp_path):
    run = run_notebook("experiment_lift", {"experiment_id": "question_cta", "account_id": seeded["account"]},
                       db_url=seeded["url"], reports_dir=tmp_path)
    page = Path(run.html_path).read_text()
    assert run.status == "ok"
    assert "aipw_ridge" in page and "ipw_hajek" in page and "difference_in_means" in page
    assert page.count('src="data:image/png;base64,') == 3  # forest, balance, overlap: embedded, offline
    assert "Traceback" not in page

    # a bad experiment id is refused before a kernel starts, naming the valid ids
    with pytest.raises(NotebookParameterError) as refused:
        run_notebook("experiment_lift", {"experiment_id": "no_such_experiment"}, db_url=seeded["url"],
                     reports_dir=tmp_path)
    assert "no_such_experiment" in str(refused.value) and "question_cta" in str(refused.value)


# ----------------------------------------------------------------------------- refreshing the stored outputs

def refresh_outputs(names: tuple[str, ...] = RESEARCH) -> None:
    """Seed ``CAMPAIGN`` on a throwaway database, execute each notebook, keep only the checked cells' outputs."""
    pg = TestPostgres()
    url = pg.fresh_database()
    home = Path(tempfile.mkdtemp(prefix="xbot-nbval-"))
    seed_campaign(url, home)
    os.environ.update(notebook_env(url, home))
    os.environ.pop("XBOT_ACCOUNT_ID", None)
    kernel = ensure_kernel()
    for name in names:
        path = NOTEBOOKS_DIR / f"{name}.ipynb"
        nb = nbformat.read(path, as_version=4)
        NotebookClient(nb, kernel_name=kernel, timeout=600, resources={"metadata": {"path": str(NOTEBOOKS_DIR)}}
                       ).execute()
        for cell in nb.cells:
            if cell.cell_type == "code" and CHECK_MARK not in cell.source:
                cell.outputs = []
                cell.execution_count = None  # nbval treats a checked cell without a count as never run: keep those
            cell.metadata.pop("execution", None)
        nb.metadata.pop("language_info", None)  # interpreter details: noise in the diff
        nbformat.write(nb, path)
        print(f"stored checked outputs in {path}")
    if pg.external:
        pg.drop_all()


if __name__ == "__main__":
    if sys.argv[1:] != ["--refresh-outputs"]:
        sys.exit("usage: python tests/app/test_notebooks_nbval.py --refresh-outputs")
    refresh_outputs()
