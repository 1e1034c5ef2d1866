"""The growth bench's results file (``xbot bench growth --results FILE``): one JSON line per finished campaign.

A 20-seed table of six policies on one world is 120 campaigns, half an hour or more on two cores; stopped
midway (Ctrl-C, a reboot, a session's end) it used to leave nothing but its progress lines. With a results
file every campaign is written the moment it finishes, and the same command run again reads what is there
and runs only the campaigns still missing: a stopped run resumes, and ``--seeds 30`` after ``--seeds 20``
runs seeds 20-29 only. The tables are computed from all of them, as if one run had made them.

A line is reused only for the same campaign — scenario, policy, seed, days, analytics on or off — run by the
same code on the same inputs: ``fingerprint`` hashes the library's source, the bench's schedules and the
scenario and account-profile files a campaign reads. A line from other code (the learner changed since) is
kept in the file but never mixed into a table: the run says how many it left aside, and runs those
campaigns again. The file only grows; delete it to start afresh.
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Iterable

from xbotlib.config import PROJECT_ROOT

KEY_FIELDS = ("scenario", "policy", "seed", "days", "analytics")
SOURCE_DIRS = (PROJECT_ROOT / "xbotlib", PROJECT_ROOT / "bench" / "schedules", PROJECT_ROOT / "migrations")
SOURCE_SUFFIXES = (".py", ".toml", ".sql")


def campaign_key(r: dict) -> tuple:
    """What identifies a campaign in the file: ``KEY_FIELDS`` and the code ``fingerprint`` it ran with."""
    return tuple(r[f] for f in KEY_FIELDS) + (r["fingerprint"],)


def fingerprint(inputs: Iterable[str | Path | None] = ()) -> str:
    """A short hash of what decides a campaign's numbers: every ``SOURCE_SUFFIXES`` file under ``SOURCE_DIRS``
    (the jobs, the learner, the sandbox, the bench cadence, the tables) and the ``inputs`` files (the scenario, the account
    profile; None: the built-in one, already in the source). Paths are hashed relative to the project, so two
    clones of the same commit agree."""
    h = hashlib.sha256()
    files = sorted(p for d in SOURCE_DIRS for p in d.rglob("*") if p.suffix in SOURCE_SUFFIXES and p.is_file())
    files += [Path(p) for p in inputs if p is not None]
    for path in files:
        name = path.resolve().relative_to(PROJECT_ROOT) if path.resolve().is_relative_to(PROJECT_ROOT) else path.name
        h.update(str(name).encode() + b"\0" + path.read_bytes() + b"\0")
    return h.hexdigest()[:16]


class ResultsFile:
    """``path``'s campaigns (``read``) and each new one appended as it finishes (``append``)."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        if self.path.is_dir():
            raise ValueError(f"--results {self.path}: is a directory; name a file (e.g. {self.path / 'growth.jsonl'})")

    def read(self) -> list[dict]:
        """Every campaign in the file, in order. A last line cut off without its newline (the run was killed
        while writing it) is skipped: that campaign runs again. Any other line that is not a campaign raises
        ``ValueError`` naming the file, the line and the fix: nothing is guessed."""
        if not self.path.exists():
            return []
        text = self.path.read_text(encoding="utf-8")
        lines = text.split("\n")
        rows = []
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            try:
                r = json.loads(line)
                if not isinstance(r, dict):
                    raise ValueError("not a JSON object")
                campaign_key(r)
            except (ValueError, KeyError) as exc:
                if number == len(lines):   # the last line, without a newline: cut off mid-write
                    continue
                raise ValueError(f"{self.path}:{number} is not a campaign of `xbot bench growth --results` ({exc}); "
                                 "this file holds one JSON object per line with "
                                 f"{', '.join(KEY_FIELDS)} and fingerprint — name another file, or delete it "
                                 "to start afresh") from None
            rows.append(r)
        return rows

    def append(self, r: dict) -> None:
        """Write one finished campaign as a line, flushed at once (a crash loses at most the line being written).
        A last line cut off mid-write (what ``read`` skips) is cut away first, so it cannot end up in the middle
        of the file; a complete last line without its newline gets one."""
        with open(self.path, "a+b") as f:
            f.seek(0)
            data = f.read()
            tail = data[data.rfind(b"\n") + 1:]
            if tail and not _is_campaign(tail):
                f.truncate(len(data) - len(tail))
            elif tail:
                f.write(b"\n")
            f.write((json.dumps(r, sort_keys=True) + "\n").encode("utf-8"))
            f.flush()


def _is_campaign(line: bytes) -> bool:
    try:
        r = json.loads(line)
        return isinstance(r, dict) and bool(campaign_key(r))
    except (ValueError, KeyError):
        return False
