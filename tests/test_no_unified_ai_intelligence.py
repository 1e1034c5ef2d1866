"""The replaced system's dead module name must not come back into this repository, in any file."""
from __future__ import annotations

import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
# built from parts so this file does not contain what it looks for
FORBIDDEN = "_".join(["unified", "ai", "intelligence"])
# version control, the virtualenv, and runtime state (the embedded database) are not the repository
SKIP_DIRS = {".git", ".venv", ".xbot", "__pycache__", ".pytest_cache", ".hypothesis", ".ipynb_checkpoints",
             ".ruff_cache", ".mypy_cache"}  # tool caches hold copies of this very file
# the guard's own file name is given by the issue; its content is still checked
THIS_FILE = Path(__file__).resolve()


def files_mentioning(root: Path, needle: str) -> list[str]:
    """Paths under ``root`` whose name or content mentions ``needle`` (case-insensitive)."""
    needle_bytes = needle.lower().encode()
    hits = []
    stack = [root]
    while stack:
        directory = stack.pop()
        for path in directory.iterdir():
            if path.is_symlink():
                continue
            if path.is_dir():
                if path.name not in SKIP_DIRS:
                    stack.append(path)
                continue
            named = needle in path.name.lower() and path.resolve() != THIS_FILE
            if named or needle_bytes in path.read_bytes().lower():
                hits.append(str(path.relative_to(root)))
    return sorted(hits)


def test_the_scanner_finds_a_mention(tmp_path):
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "a.py").write_text(f"from x import {FORBIDDEN.upper()}\n")
    (tmp_path / f"{FORBIDDEN}.md").write_text("fine content\n")
    (tmp_path / ".git").mkdir()
    (tmp_path / ".git" / "config").write_text(FORBIDDEN)
    (tmp_path / "clean.txt").write_text("unified ai intelligence, spelled apart\n")
    assert files_mentioning(tmp_path, FORBIDDEN) == sorted([f"{FORBIDDEN}.md", "pkg/a.py"])


def project_files(root: Path) -> list[Path] | None:
    """What the project holds: files git tracks plus untracked ones it does not ignore (so build
    artifacts such as xbotlib.egg-info/SOURCES.txt, which lists this file's name, are not scanned).
    None outside a git checkout."""
    try:
        out = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=root,
                             capture_output=True, check=True, timeout=60).stdout
    except (OSError, subprocess.CalledProcessError, subprocess.TimeoutExpired):
        return None
    return [root / name for name in out.decode().split("\0") if name]


def test_no_file_in_the_repo_mentions_it():
    files = project_files(REPO)
    if files is None:  # not a checkout (an unpacked archive): walk the tree
        assert files_mentioning(REPO, FORBIDDEN) == []
        return
    needle = FORBIDDEN.encode()
    hits = [str(p.relative_to(REPO)) for p in files
            if p.is_file() and not p.is_symlink()
            and ((FORBIDDEN in p.name.lower() and p.resolve() != THIS_FILE) or needle in p.read_bytes().lower())]
    assert hits == []
