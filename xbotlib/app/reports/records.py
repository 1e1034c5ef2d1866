"""The record of one notebook run, on disk: ``NotebookRun`` and the ``.json`` beside each report.

``reports/runs/<YYYY-MM-DD>/<name>-<HHMMSS>-<shortid>.json`` holds a run's record with paths relative
to the reports folder (so the folder can move); ``collect_runs`` reads them back for the index. Files
under ``reports/`` are written atomically (``atomic_write``): a browser or a concurrent index build
never sees half a file. The ``notebook_runs`` table's rows are written by ``xbotlib.store.runs``.
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

from xbotlib.config import PROJECT_ROOT

log = logging.getLogger("xbot.notebooks")

REPORTS_DIR = PROJECT_ROOT / "reports"


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
                   output_path=d["output_path"], html_path=d["html_path"], error=d.get("error"))


def collect_runs(reports_dir: Path = REPORTS_DIR) -> list[NotebookRun]:
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
