"""When each job and notebook runs: cron expressions in ``schedules/*.toml``.

    [[job]]
    name = "post"                      # plan | post | collect | learn
    cron = "*/5 * * * *"               # five fields, or @hourly/@daily/@weekly/@monthly/@yearly

    [[notebook]]
    name = "growth_review"             # notebooks/growth_review.ipynb
    cron = "0 7 * * *"
    parameters = { days = 30 }         # checked against the notebook's parameters cell
    account = "acct1"                  # optional: XBOT_ACCOUNT_ID for this entry
    timezone = "Europe/Berlin"         # optional: the cron is read in this zone (default UTC)

A file may set ``timezone`` and ``account`` at the top as defaults for its entries. Cron times are
UTC unless a timezone is given; daylight-saving jumps follow that zone (croniter). Every other
function here is pure: the daemon keeps the last run of each entry (by ``entry.key``) and asks
``due_entries`` each loop; ``to_crontab`` exports the same schedule for teams on system cron.
"""
from __future__ import annotations

import bisect
import json
import re
import shlex
import threading
import tomllib
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Callable, Mapping
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import croniter

from xbotlib.config import PROJECT_ROOT

SCHEDULES_DIR = PROJECT_ROOT / "schedules"
JOB_NAMES = ("plan", "post", "collect", "learn")
KINDS = ("job", "notebook")
_ENTRY_KEYS = {"name", "cron", "parameters", "account", "timezone"}
_FILE_KEYS = {*KINDS, "timezone", "account"}
_ALIASES = {"@hourly", "@daily", "@midnight", "@weekly", "@monthly", "@yearly", "@annually"}
# croniter extensions that system cron does not understand: H (hashed), L (last), # (nth weekday), ?
_NON_CRONTAB = re.compile(r"(?<![A-Za-z])[HL](?![A-Za-z])|[#?]")
_ACCOUNT_RE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}")
_NOTEBOOK_RE = re.compile(r"[a-z][a-z0-9_]*")


class ScheduleError(ValueError):
    """A schedule file is invalid; the message names the file, the entry and the value."""


@dataclass(frozen=True)
class ScheduleEntry:
    kind: str  # 'job' | 'notebook'
    name: str
    cron: str
    parameters: dict[str, Any] = field(default_factory=dict)
    account: str | None = None
    timezone: str = "UTC"
    source: str = field(default="", compare=False)  # "schedules/jobs.toml job #2 (post)", for messages

    @property
    def key(self) -> str:
        """Identifies the entry across restarts: ``notebook:experiment_lift@acct1{"experiment_id": "hashtag_1"}``."""
        account = f"@{self.account}" if self.account else ""
        params = json.dumps(self.parameters, sort_keys=True) if self.parameters else ""
        return f"{self.kind}:{self.name}{account}{params}"

    def describe(self) -> str:
        params = " ".join(f"{k}={v!r}" for k, v in self.parameters.items())
        account = f" account={self.account}" if self.account else ""
        return f"{self.kind} {self.name}{(' ' + params) if params else ''}{account}"


# ----------------------------------------------------------------------------- parsing

def parse_schedules(text: str, source: str = "<schedule>") -> list[ScheduleEntry]:
    """Entries from one TOML document; raises ``ScheduleError`` naming ``source``, the entry and the value."""
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ScheduleError(f"{source} is not valid TOML: {exc}") from None
    unknown = sorted(set(doc) - _FILE_KEYS)
    if unknown:
        raise ScheduleError(f"{source}: unknown top-level key(s) {', '.join(map(repr, unknown))} "
                            "(expected [[job]] and [[notebook]] entries, optional timezone and account)")
    default_tz = _check_tz(source, doc.get("timezone", "UTC"))
    default_account = _check_account(source, doc.get("account"))
    entries = []
    for kind in KINDS:
        items = doc.get(kind, [])
        if not isinstance(items, list):
            raise ScheduleError(f"{source}: '{kind}' must be an array of tables ([[{kind}]]), got {items!r}")
        for i, item in enumerate(items, 1):
            entries.append(_parse_entry(kind, item, f"{source} {kind} #{i}", default_tz, default_account))
    return entries


def _parse_entry(kind: str, item: Any, where: str, default_tz: str, default_account: str | None) -> ScheduleEntry:
    if not isinstance(item, dict):
        raise ScheduleError(f"{where}: expected a table, got {item!r}")
    unknown = sorted(set(item) - _ENTRY_KEYS)
    if unknown:
        raise ScheduleError(f"{where}: unknown key(s) {', '.join(map(repr, unknown))} "
                            f"(allowed: {', '.join(sorted(_ENTRY_KEYS))})")
    name = item.get("name")
    if not isinstance(name, str) or not name:
        raise ScheduleError(f"{where}: 'name' is missing or not a string: {name!r}")
    where = f"{where} ({name})"
    if kind == "job" and name not in JOB_NAMES:
        raise ScheduleError(f"{where}: unknown job {name!r} (valid jobs: {', '.join(JOB_NAMES)})")
    if kind == "notebook" and not _NOTEBOOK_RE.fullmatch(name):
        raise ScheduleError(f"{where}: {name!r} is not a notebook name (lower-case letters, digits and _, "
                            "as in notebooks/NAME.ipynb)")
    cron = check_cron(item.get("cron"), where)
    params = item.get("parameters", {})
    if not isinstance(params, dict):
        raise ScheduleError(f"{where}: 'parameters' must be a table such as {{ days = 30 }}, got {params!r}")
    if kind == "job" and params:
        raise ScheduleError(f"{where}: jobs take no parameters, got {params!r} (remove 'parameters')")
    tz = _check_tz(where, item.get("timezone", default_tz))
    account = _check_account(where, item.get("account", default_account))
    return ScheduleEntry(kind=kind, name=name, cron=cron, parameters=dict(params), account=account,
                         timezone=tz, source=where)


def check_cron(cron: Any, where: str) -> str:
    """A cron expression system cron also understands; returns it normalised (single spaces)."""
    if not isinstance(cron, str) or not cron.strip():
        raise ScheduleError(f"{where}: 'cron' is missing or not a string: {cron!r} (e.g. cron = \"*/5 * * * *\")")
    expr = " ".join(cron.split())
    if expr.startswith("@"):
        if expr.lower() not in _ALIASES:
            raise ScheduleError(f"{where}: bad cron {cron!r} (aliases allowed: {', '.join(sorted(_ALIASES))})")
        return expr.lower()
    fields = expr.split()
    if (len(fields) != 5 or _NON_CRONTAB.search(expr) or not all(map(_field_ok, fields, _FIELD_RANGES))
            or not croniter.is_valid(expr)):
        raise ScheduleError(f"{where}: bad cron {cron!r} (expected five fields: minute hour day-of-month "
                            "month day-of-week, e.g. \"0 7 * * *\" for 07:00 daily)")
    return expr


_FIELD_RANGES = ((0, 59), (0, 23), (1, 31), (1, 12), (0, 7))
_NAMES = {**{m: i for i, m in enumerate("jan feb mar apr may jun jul aug sep oct nov dec".split(), 1)},
          **{d: i for i, d in enumerate("sun mon tue wed thu fri sat".split())}}


def _field_ok(field_text: str, bounds: tuple[int, int]) -> bool:
    """One crontab field: comma-separated ``*``, ``N`` or ``N-M``, each with an optional ``/step``."""
    lo, hi = bounds

    def value(token: str) -> int | None:
        v = int(token) if token.isdigit() else _NAMES.get(token.lower())
        return v if v is not None and lo <= v <= hi else None

    for part in field_text.split(","):
        span, _, step = part.partition("/")
        if step and (not step.isdigit() or not 1 <= int(step) <= hi - lo + 1):
            return False
        if span == "*":
            continue
        start, _, end = span.partition("-")
        if value(start) is None or (end and (value(end) is None or value(end) < value(start))):
            return False
    return True


def _check_tz(where: str, tz: Any) -> str:
    try:
        ZoneInfo(str(tz))
    except (ZoneInfoNotFoundError, ValueError):
        raise ScheduleError(f"{where}: unknown timezone {tz!r} (expected an IANA name such as UTC or "
                            "Europe/Berlin)") from None
    return str(tz)


def _check_account(where: str, account: Any) -> str | None:
    if account is None:
        return None
    if not isinstance(account, str) or not _ACCOUNT_RE.fullmatch(account):
        raise ScheduleError(f"{where}: bad account {account!r} (letters, digits, _ . -, at most 64)")
    return account


def load_schedules(directory: Path = SCHEDULES_DIR) -> list[ScheduleEntry]:
    """Every entry of every ``*.toml`` in ``directory`` (files in name order); duplicate entries are an error."""
    directory = Path(directory)
    if not directory.is_dir():
        raise ScheduleError(f"schedules directory not found: '{directory}' (run from the project root or pass --dir)")
    entries: list[ScheduleEntry] = []
    seen: dict[str, str] = {}
    for path in sorted(directory.glob("*.toml")):
        for entry in parse_schedules(path.read_text(encoding="utf-8"), source=str(path)):
            if entry.key in seen:
                raise ScheduleError(f"{entry.source}: duplicate of {seen[entry.key]} "
                                    "(same kind, name, account and parameters; remove one)")
            seen[entry.key] = entry.source
            entries.append(entry)
    return entries


def notebook_problems(entries: list[ScheduleEntry], notebooks: Mapping[str, Any],
                      check_parameters: Callable[[Any, Mapping[str, Any]], object]) -> list[str]:
    """Scheduled notebooks that do not exist or whose parameters the notebook refuses.

    ``notebooks`` maps name -> notebook description (``xbotlib.app.reports.runner.NotebookInfo``, from
    ``list_notebooks``); ``check_parameters(info, parameters)`` raises ``ValueError`` saying why a
    notebook refuses parameters (the report runner's ``coerce_parameters``, passed in by the CLI: the
    jobs do not import the app).
    """
    problems = []
    for e in entries:
        if e.kind != "notebook":
            continue
        if e.name not in notebooks:
            problems.append(f"{e.source}: notebook {e.name!r} does not exist yet "
                            f"(available: {', '.join(sorted(notebooks)) or 'none'})")
            continue
        try:
            check_parameters(notebooks[e.name], e.parameters)
        except ValueError as exc:
            problems.append(f"{e.source}: {exc}")
    return problems


# ----------------------------------------------------------------------------- timing (pure)

class _ParsedCron:
    """One cron expression parsed once (croniter expands its fields when built: a simulated year asks
    ~150,000 times), re-used from any start time. A croniter keeps its position between calls, so each
    use sets it under a lock (the worker pool's threads share the cache).

    In UTC (no daylight-saving jumps) a cron of plain numbers, ranges, lists and steps — every shipped
    schedule — takes its next run from the expanded fields directly (``_next_in_utc``), a few set lookups
    instead of croniter's ~0.3 ms; the tests hold it to croniter's answers."""

    def __init__(self, cron: str, tz: str) -> None:
        self.cron, self.zone = cron, ZoneInfo(tz)
        self._iter = croniter(cron, datetime(2000, 1, 1, tzinfo=self.zone))  # a start; each use sets its own
        self._lock = threading.Lock()
        fields = self._iter.expanded
        plain = (tz == "UTC" and len(fields) == 5 and not getattr(self._iter, "nth_weekday_of_month", None)
                 and all(f == ["*"] or all(isinstance(v, int) for v in f) for f in fields))
        if plain:
            minutes, hours, days, months, weekdays = (None if f == ["*"] else sorted(set(f)) for f in fields)
            self._fields: tuple | None = (minutes or list(range(60)), hours or list(range(24)),
                                          None if days is None else frozenset(days),
                                          None if months is None else frozenset(months),
                                          None if weekdays is None else frozenset(weekdays))
        else:
            self._fields = None

    def next_after(self, local: datetime) -> datetime:
        if self._fields is not None:
            return self._next_in_utc(local)
        with self._lock:
            return self._iter.get_next(datetime, start_time=local)

    def prev_before(self, local: datetime) -> datetime:
        with self._lock:
            return self._iter.get_prev(datetime, start_time=local)

    def _day_matches(self, t: datetime) -> bool:
        _m, _h, days, months, weekdays = self._fields  # type: ignore[misc]
        if months is not None and t.month not in months:
            return False
        dom = days is None or t.day in days
        dow = weekdays is None or (t.weekday() + 1) % 7 in weekdays  # cron: Sunday 0, Monday 1
        if days is not None and weekdays is not None:
            return dom or dow  # cron's rule: both restricted, either one will do
        return dom and dow

    def _next_in_utc(self, after: datetime) -> datetime:
        minutes, hours = self._fields[0], self._fields[1]  # type: ignore[index]
        t = after.replace(second=0, microsecond=0) + timedelta(minutes=1)  # the first whole minute after
        for _ in range(3000):  # days; every valid expression matches within a few years
            if self._day_matches(t):
                h = bisect.bisect_left(hours, t.hour)
                if h < len(hours):
                    if hours[h] != t.hour:
                        t = t.replace(hour=hours[h], minute=0)
                    m = bisect.bisect_left(minutes, t.minute)
                    if m < len(minutes):
                        return t.replace(minute=minutes[m])
                    if h + 1 < len(hours):
                        return t.replace(hour=hours[h + 1], minute=minutes[0])
            t = t.replace(hour=0, minute=0) + timedelta(days=1)
        raise ScheduleError(f"cron {self.cron!r} names no time within 3000 days of {after.isoformat()} "
                            "(a day that never comes, such as the 30th of February? check its day and month fields)")


_PARSED: dict[tuple[str, str], _ParsedCron] = {}


def _parsed(entry: ScheduleEntry) -> _ParsedCron:
    """The parsed cron of ``entry``, per (cron, timezone): schedules hold a handful of distinct ones."""
    key = (entry.cron, entry.timezone)
    parsed = _PARSED.get(key)
    if parsed is None:
        parsed = _PARSED.setdefault(key, _ParsedCron(entry.cron, entry.timezone))
    return parsed


def next_run(entry: ScheduleEntry, after: datetime) -> datetime:
    """The first time strictly after ``after`` that ``entry.cron`` names, read in ``entry.timezone``; UTC."""
    if after.tzinfo is None:
        raise ValueError(f"next_run needs a timezone-aware time: {after!r} (pass tzinfo=timezone.utc)")
    parsed = _parsed(entry)
    return parsed.next_after(after.astimezone(parsed.zone)).astimezone(timezone.utc)


def last_run_at_or_before(entry: ScheduleEntry, at: datetime) -> datetime:
    """The latest time at or before ``at`` that ``entry.cron`` names, read in ``entry.timezone``; UTC.
    The job queue's deferrer defers this occurrence (each one once, whatever the number of deferrers)."""
    if at.tzinfo is None:
        raise ValueError(f"last_run_at_or_before needs a timezone-aware time: {at!r} (pass tzinfo=timezone.utc)")
    # croniter's get_prev is strictly before its start: start a microsecond later so `at` itself counts
    parsed = _parsed(entry)
    return parsed.prev_before((at + timedelta(microseconds=1)).astimezone(parsed.zone)).astimezone(timezone.utc)


def runs_between(entry: ScheduleEntry, after: datetime, before: datetime, limit: int = 1000) -> list[datetime]:
    """The times ``entry.cron`` names strictly between ``after`` and ``before`` (at most ``limit``, the
    earliest): the occurrences a tick for ``before`` finds nobody ran."""
    out: list[datetime] = []
    t = next_run(entry, after)
    while t < before and len(out) < limit:
        out.append(t)
        t = next_run(entry, t)
    return out


def due_entries(entries: list[ScheduleEntry], last_run_by_key: Mapping[str, datetime],
                now: datetime) -> list[ScheduleEntry]:
    """Entries whose next run after their last run is at or before ``now``, in ``entries`` order.

    An entry never run (key absent) is due at once. Missed occurrences collapse into one run: a
    daemon that was down for a day runs ``post`` once, not 288 times.
    """
    due = []
    for entry in entries:
        last = last_run_by_key.get(entry.key)
        if last is None or next_run(entry, last) <= now:
            due.append(entry)
    return due


# ----------------------------------------------------------------------------- system cron

def command_for(entry: ScheduleEntry, xbot_path: str) -> list[str]:
    """The ``xbot`` command line that runs ``entry`` once."""
    if entry.kind == "job":
        return [xbot_path, "job", entry.name, "--once"]
    cmd = [xbot_path, "notebook", "run", entry.name]
    for key, value in entry.parameters.items():
        cmd += ["-p", key, _cli_value(value)]
    return cmd


def _cli_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, dict)):
        return json.dumps(value)
    return str(value)


def to_crontab(entries: list[ScheduleEntry], xbot_path: str, workdir: str) -> str:
    """Crontab lines running each entry with ``xbot_path`` from ``workdir``; output goes to .xbot/logs/cron.log.

    Entry timezones become ``CRON_TZ=`` lines (honoured by cronie and systemd-cron; other crons use
    the system's zone, so keep entries in UTC there).
    """
    lines = ["# xbot schedules: generated by `xbot schedule list --crontab`; install with `crontab FILE`.",
             "SHELL=/bin/sh"]
    current_tz = None
    for entry in entries:
        if entry.timezone != current_tz:
            lines.append(f"CRON_TZ={entry.timezone}")
            current_tz = entry.timezone
        env = f"XBOT_ACCOUNT_ID={shlex.quote(entry.account)} " if entry.account else ""
        run = " ".join(shlex.quote(part) for part in command_for(entry, xbot_path))
        command = (f"cd {shlex.quote(workdir)} && mkdir -p .xbot/logs && {env}{run} "
                   ">> .xbot/logs/cron.log 2>&1")
        lines.append(f"# {entry.describe()}")
        # cron turns an unescaped % into a newline
        lines.append(f"{entry.cron} {command.replace('%', chr(92) + '%')}")
    return "\n".join(lines) + "\n"
