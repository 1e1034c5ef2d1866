"""The record of one notebook run, on disk: ``NotebookRun`` and the ``.json`` beside each report.

The reports folder is the workspace's (``reports_dir()``: XBOT_HOME/reports, whichever folder a command
runs from). ``reports/runs/<YYYY-MM-DD>/<name>-<HHMMSS>-<shortid>.json`` holds a run's record with paths relative
to the reports folder (so the folder can move); ``collect_runs`` reads them back for the index. Files
under ``reports/`` are written atomically (``atomic_write``): a browser or a concurrent index build
never sees half a file. The ``notebook_runs`` table's rows are written by ``xbotlib.store.runs``.

Which database, account and world a run read is said by the notebook itself: its opening cell
(``xbotlib.app.analysis.report_context``) displays them with the ``CONTEXT_MIME`` type, and
``run_context`` reads them back from the executed notebook into the record.
"""
from __future__ import annotations

import json
import logging
import os
import threading
from dataclasses import asdict, dataclass, replace
from datetime import datetime
from pathlib import Path
from typing import Any, Mapping

from xbotlib.config import load_settings

log = logging.getLogger("xbot.notebooks")

# the output type a notebook's opening cell carries its database (redacted URL), account and world in
CONTEXT_MIME = "application/vnd.xbot.report-context+json"
CONTEXT_FIELDS = ("database", "account", "world")


def reports_dir() -> Path:
    """The workspace's reports folder: XBOT_HOME/reports (``Settings.reports_path``)."""
    return load_settings().reports_path


@dataclass(frozen=True)
class NotebookRun:
    """The record of one run: where its executed notebook and HTML report are, and how it ended."""
    run_id: int | None
    name: str
    parameters: dict[str, Any]
    status: str  # running | ok | failed
    started_at: datetime
    finished_at: datetime | None
    output_path: str
    html_path: str
    error: str | None = None
    index_path: str | None = None  # the reports index that lists this run
    database: str | None = None  # the database the notebook read (password redacted), from its own output
    account: str | None = None
    world: str | None = None  # live | sandbox

    def to_json(self) -> dict:
        d = asdict(self)
        d.pop("index_path")
        d["started_at"] = self.started_at.isoformat()
        d["finished_at"] = self.finished_at.isoformat() if self.finished_at else None
        return d

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> "NotebookRun":
        return cls(run_id=d.get("run_id"), name=d["name"], parameters=dict(d.get("parameters") or {}),
                   status=d["status"], started_at=datetime.fromisoformat(d["started_at"]),
                   finished_at=datetime.fromisoformat(d["finished_at"]) if d.get("finished_at") else None,
                   output_path=d["output_path"], html_path=d["html_path"], error=d.get("error"),
                   **{k: d.get(k) for k in CONTEXT_FIELDS})


def run_context(nb: Mapping[str, Any]) -> dict[str, str]:
    """The database, account and world an executed notebook (nbformat node or its JSON) says it read:
    the last ``CONTEXT_MIME`` output; {} when it said none (e.g. it failed before its opening cell)."""
    found: dict[str, str] = {}
    for cell in nb.get("cells", []):
        for output in cell.get("outputs", []) if cell.get("cell_type") == "code" else []:
            data = output.get("data", {}).get(CONTEXT_MIME)
            if isinstance(data, str):  # some writers store JSON outputs as text
                data = json.loads(data)
            if isinstance(data, Mapping):
                found = {k: str(data[k]) for k in CONTEXT_FIELDS if data.get(k)}
    return found


def with_context(run: NotebookRun, nb: Mapping[str, Any] | None = None) -> NotebookRun:
    """``run`` with the database, account and world its executed notebook (``nb``, else the file at
    ``run.output_path`` when there is one) says it read; unchanged when it says nothing."""
    if nb is None:
        path = Path(run.output_path)
        if not path.is_file():
            return run
        try:
            nb = json.loads(path.read_text(encoding="utf-8"))
        except ValueError:  # a half-written notebook: the record simply says nothing about its context
            return run
    return replace(run, **run_context(nb))


def collect_runs(reports_dir: Path) -> list[NotebookRun]:
    """Every run recorded under ``reports_dir/runs`` (the ``.json`` beside each report), newest first."""
    runs = []
    for path in Path(reports_dir).glob("runs/*/*.json"):
        try:
            run = NotebookRun.from_json(json.loads(path.read_text()))
            runs.append(replace(run, output_path=str(Path(reports_dir) / run.output_path),
                                html_path=str(Path(reports_dir) / run.html_path)))
        except (ValueError, KeyError) as exc:
            log.warning("skipping unreadable run record %s: %s", path, exc)
    return sorted(runs, key=lambda r: (r.started_at, r.run_id or 0), reverse=True)


def save_record(reports_dir: Path, run: NotebookRun) -> None:
    """The run record beside its report, paths relative to ``reports_dir`` so the folder can move."""
    path = Path(run.output_path).with_suffix(".json")
    path.parent.mkdir(parents=True, exist_ok=True)
    if run.status != "running" and run.world is None and run.database is None:
        run = with_context(run)
    record = run.to_json() | {"output_path": relative_path(run.output_path, reports_dir),
                              "html_path": relative_path(run.html_path, reports_dir)}
    atomic_write(path, json.dumps(record, indent=1, default=str))


def relative_path(path: str, reports_dir: Path) -> str:
    """``path`` relative to ``reports_dir``, with forward slashes (a link in the index, a path in a record)."""
    return Path(os.path.relpath(Path(path).resolve(), Path(reports_dir).resolve())).as_posix()


def atomic_write(path: Path, text: str) -> None:
    # readers (a browser, a concurrent index build) never see a half-written file
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)
