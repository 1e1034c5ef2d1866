"""Jupytext pairs: ``notebooks/NAME.py`` (py:percent, the reviewed source) and ``NAME.ipynb``.

``sync_notebook`` writes the ``.ipynb`` from the ``.py`` (``xbot notebook sync``); ``pair_differences``
says what differs between them (``xbot notebook sync --check`` and ``tests/app/test_notebooks_runner.py``).
"""
from __future__ import annotations

from pathlib import Path

import jupytext
import nbformat


def sync_notebook(py_path: Path) -> Path:
    """Write ``NAME.ipynb`` from the reviewed ``NAME.py`` (py:percent); returns the .ipynb path."""
    py_path = Path(py_path)
    nb = jupytext.read(py_path, fmt="py:percent")
    target = py_path.with_suffix(".ipynb")
    if target.is_file():  # keep the cell ids of cells that stayed, so the .ipynb diff shows only real changes
        old = nbformat.read(target, as_version=4).cells
        for cell, prev in zip(nb.cells, old):
            if prev.get("id") and (cell.cell_type, cell.source) == (prev.cell_type, prev.source):
                cell["id"] = prev["id"]
    jupytext.write(nb, target, fmt="ipynb")
    return target


def pair_differences(py_path: Path) -> list[str]:
    """What differs between ``NAME.py`` and ``NAME.ipynb`` (cell types, sources, tags); [] when in sync."""
    py_path = Path(py_path)
    ipynb = py_path.with_suffix(".ipynb")
    if not ipynb.is_file():
        return [f"{ipynb} is missing (run `xbot notebook sync`)"]
    want = jupytext.read(py_path, fmt="py:percent").cells
    have = nbformat.read(ipynb, as_version=4).cells
    if len(want) != len(have):
        return [f"{ipynb.name} has {len(have)} cells, {py_path.name} has {len(want)}"]
    problems = []
    for i, (w, h) in enumerate(zip(want, have)):
        for what, a, b in (("type", w.cell_type, h.cell_type), ("source", w.source, h.source),
                           ("tags", w.metadata.get("tags", []), h.metadata.get("tags", []))):
            if a != b:
                problems.append(f"cell {i}: {what} differs between {py_path.name} and {ipynb.name}")
    return problems
