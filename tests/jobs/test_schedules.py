"""Schedules: the shipped TOML parses, next runs are right (UTC and a DST zone), bad entries are
refused naming file, entry and value, due_entries is pure, and the crontab export round-trips."""
from __future__ import annotations

import random
import shlex
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
from croniter import croniter

from xbotlib.app.cli.main import main
from xbotlib.app.reports.runner import coerce_parameters, list_notebooks
from xbotlib.jobs.schedules import (SCHEDULES_DIR, ScheduleEntry, ScheduleError, due_entries, last_run_at_or_before, load_schedules, next_run, notebook_problems, parse_schedules, to_crontab)

UTC = timezone.utc


def at(*args) -> datetime:
    return datetime(*args, tzinfo=UTC)


def test_shipped_schedules_parse_with_the_agreed_cadence():
    entries = load_schedules(SCHEDULES_DIR)
    jobs = {e.name: e.cron for e in entries if e.kind == "job"}
    assert jobs == {"plan": "0 * * * *", "post": "*/5 * * * *", "collect": "*/15 * * * *", "learn": "0 */6 * * *"}
    notebooks = [(e.name, e.parameters) for e in entries if e.kind == "notebook"]
    assert ("growth_review", {"days": 30}) in notebooks and ("train_predictors", {}) in notebooks
    lifts = sorted(e.parameters["experiment_id"] for e in entries if e.name == "experiment_lift")
    assert lifts == ["hashtag_1", "question_cta"]
    assert len({e.key for e in entries}) == len(entries)
    after = at(2026, 3, 2, 8, 0, 30)  # a Monday
    by_key = {e.key: next_run(e, after) for e in entries}
    assert by_key["job:post"] == at(2026, 3, 2, 8, 5) and by_key["job:learn"] == at(2026, 3, 2, 12, 0)
    assert by_key['notebook:growth_review{"days": 30}'] == at(2026, 3, 3, 7, 0)
    assert by_key["notebook:train_predictors"] == at(2026, 3, 9, 6, 0)  # weekly: next Monday


@pytest.mark.parametrize("cron, tz, after, expected", [
    ("*/5 * * * *", "UTC", at(2026, 3, 2, 8, 0), at(2026, 3, 2, 8, 5)),          # strictly after
    ("*/5 * * * *", "UTC", at(2026, 3, 2, 8, 4, 59, 999999), at(2026, 3, 2, 8, 5)),
    ("0 7 * * *", "UTC", at(2026, 3, 2, 7, 0, 0, 1), at(2026, 3, 3, 7, 0)),
    ("0 */6 * * *", "UTC", at(2026, 12, 31, 23, 0), at(2027, 1, 1, 0, 0)),
    ("@weekly", "UTC", at(2026, 3, 2, 8, 0), at(2026, 3, 8, 0, 0)),            # Sunday midnight
    # 07:00 in Berlin is 06:00 UTC in winter and 05:00 UTC after the switch on 2026-03-29
    ("0 7 * * *", "Europe/Berlin", at(2026, 3, 27, 12, 0), at(2026, 3, 28, 6, 0)),
    ("0 7 * * *", "Europe/Berlin", at(2026, 3, 28, 12, 0), at(2026, 3, 29, 5, 0)),
])
def test_next_run(cron, tz, after, expected):
    entry = ScheduleEntry(kind="job", name="post", cron=cron, timezone=tz)
    assert next_run(entry, after) == expected and next_run(entry, after).tzinfo == UTC


def test_next_run_refuses_naive_time():
    with pytest.raises(ValueError, match="timezone-aware"):
        next_run(ScheduleEntry(kind="job", name="post", cron="* * * * *"), datetime(2026, 3, 2))


@pytest.mark.parametrize("cron", ["0 7 * * mon-fri", "0 0 1 jan,jul *", "*/20 8-18 * * 1-5", "0 0 * * 7",
                                  "@Daily", "0  7 *  * *"])
def test_good_cron_is_accepted_and_normalised(cron):
    [entry] = parse_schedules(f'[[job]]\nname = "post"\ncron = "{cron}"\n')
    assert entry.cron == (cron.lower() if cron.startswith("@") else " ".join(cron.split()))


@pytest.mark.parametrize("cron", ["61 * * * *", "* * * *", "* * * * * *", "0 25 * * *", "H * * * *",
                                  "0 0 L * *", "0 0 * * 1#2", "@reboot", "every five minutes", "", 5,
                                  "*/61 * * * *", "0 0 * 13 *", "30-10 * * * *", "0 0 * * funday"])
def test_bad_cron_names_file_entry_and_value(cron):
    text = f'[[job]]\nname = "post"\ncron = {cron!r}\n' if isinstance(cron, str) else f'[[job]]\nname = "post"\ncron = {cron}\n'
    text = text.replace("'", '"')
    with pytest.raises(ScheduleError, match=r"^ops/jobs\.toml job #1 \(post\): .*cron") as info:
        parse_schedules(text, source="ops/jobs.toml")
    assert repr(cron) in str(info.value)


@pytest.mark.parametrize("text, match", [
    ('[[job]]\nname = "tweet"\ncron = "* * * * *"', r"job #1 \(tweet\): unknown job 'tweet' \(valid jobs: plan, post, collect, learn\)"),
    ('[[job]]\ncron = "* * * * *"', r"'name' is missing"),
    ('[[job]]\nname = "post"\ncron = "* * * * *"\nevery = 5', r"unknown key\(s\) 'every'"),
    ('[[job]]\nname = "post"\ncron = "* * * * *"\nparameters = { x = 1 }', r"jobs take no parameters"),
    ('[[notebook]]\nname = "Growth Review"\ncron = "0 7 * * *"', r"not a notebook name"),
    ('[[notebook]]\nname = "growth_review"\ncron = "0 7 * * *"\nparameters = 30', r"'parameters' must be a table"),
    ('[[notebook]]\nname = "growth_review"\ncron = "0 7 * * *"\ntimezone = "Mars/Olympus"', r"unknown timezone 'Mars/Olympus'"),
    ('[[notebook]]\nname = "growth_review"\ncron = "0 7 * * *"\naccount = "a b"', r"bad account 'a b'"),
    ('[[jobs]]\nname = "post"', r"unknown top-level key\(s\) 'jobs'"),
    ('[[job]\nname = "post"', r"is not valid TOML"),
])
def test_invalid_entries_are_refused_clearly(text, match):
    with pytest.raises(ScheduleError, match=match):
        parse_schedules(text, source="s.toml")


def test_file_defaults_and_duplicates(tmp_path):
    (tmp_path / "a.toml").write_text('timezone = "Europe/Berlin"\naccount = "acct1"\n'
                                     '[[job]]\nname = "post"\ncron = "*/5 * * * *"\n')
    (tmp_path / "b.toml").write_text('[[job]]\nname = "post"\ncron = "*/5 * * * *"\n')  # other account: fine
    [a, b] = load_schedules(tmp_path)
    assert (a.timezone, a.account, a.key) == ("Europe/Berlin", "acct1", "job:post@acct1")
    assert (b.timezone, b.account, b.key) == ("UTC", None, "job:post")
    (tmp_path / "c.toml").write_text('[[job]]\nname = "post"\ncron = "0 * * * *"\n')
    with pytest.raises(ScheduleError, match=r"c\.toml job #1 \(post\): duplicate of .*b\.toml job #1"):
        load_schedules(tmp_path)
    with pytest.raises(ScheduleError, match="schedules directory not found"):
        load_schedules(tmp_path / "missing")


def test_due_entries_is_pure_and_collapses_missed_runs():
    post = ScheduleEntry(kind="job", name="post", cron="*/5 * * * *")
    learn = ScheduleEntry(kind="job", name="learn", cron="0 */6 * * *")
    review = ScheduleEntry(kind="notebook", name="growth_review", cron="0 7 * * *", parameters={"days": 30})
    now = at(2026, 3, 2, 8, 2)
    last = {post.key: at(2026, 3, 2, 7, 58), learn.key: at(2026, 3, 2, 6, 0), review.key: at(2026, 3, 1, 7, 0)}
    assert due_entries([post, learn, review], last, now) == [post, review]
    assert due_entries([post, learn, review], {**last, post.key: at(2026, 3, 2, 8, 0)}, now) == [review]
    assert due_entries([learn], {}, now) == [learn]  # never run: due at once
    # a day of downtime: post is due once (one entry), not once per missed slot
    assert due_entries([post], {post.key: at(2026, 3, 1, 8, 0)}, now) == [post]
    assert last[post.key] == at(2026, 3, 2, 7, 58)  # inputs untouched


def test_crontab_export_round_trips():
    entries = parse_schedules(
        '[[job]]\nname = "post"\ncron = "*/5 * * * *"\n'
        '[[job]]\nname = "learn"\ncron = "0 */6 * * *"\naccount = "acct_2"\n'
        '[[notebook]]\nname = "experiment_lift"\ncron = "30 6 * * 1"\ntimezone = "Europe/Berlin"\n'
        'parameters = { experiment_id = "50% off", fail = false }\n', source="t.toml")
    text = to_crontab(entries, "/opt/xbot venv/bin/xbot", "/srv/xbot")
    lines = [ln for ln in text.splitlines() if ln and not ln.startswith("#")]
    assert lines[:2] == ["SHELL=/bin/sh", "CRON_TZ=UTC"]
    assert lines[2].startswith("*/5 * * * * cd /srv/xbot && mkdir -p .xbot/logs && '/opt/xbot venv/bin/xbot' job post --once")
    assert lines[2].endswith(">> .xbot/logs/cron.log 2>&1")
    assert lines[3].startswith("0 */6 * * * ") and "XBOT_ACCOUNT_ID=acct_2 '/opt/xbot venv/bin/xbot' job learn --once" in lines[3]
    assert lines[4] == "CRON_TZ=Europe/Berlin"
    assert lines[5].startswith("30 6 * * 1 ")
    command = lines[5].split(" ", 5)[5].replace("\\%", "%")  # cron unescapes \% before running
    run = shlex.split(command.split(" && ")[2].split(" >> ")[0])
    assert run == ["/opt/xbot venv/bin/xbot", "notebook", "run", "experiment_lift",
                   "-p", "experiment_id", "50% off", "-p", "fail", "false"]
    assert "50\\% off" in lines[5]


def test_notebook_problems_check_names_and_parameters():
    entries = parse_schedules('[[notebook]]\nname = "smoke_check"\ncron = "0 7 * * *"\nparameters = { repeat = "x" }\n'
                              '[[notebook]]\nname = "smoke_check"\ncron = "0 8 * * *"\nparameters = { repeat = 3 }\n'
                              '[[notebook]]\nname = "not_written_yet"\ncron = "0 7 * * *"\n', source="n.toml")
    problems = notebook_problems(entries, {i.name: i for i in list_notebooks()}, coerce_parameters)
    assert len(problems) == 2
    assert "n.toml notebook #1 (smoke_check)" in problems[0] and "must be int: got 'x'" in problems[0]
    assert "'not_written_yet' does not exist yet (available: " in problems[1]


def test_cli_schedule_list_and_crontab(tmp_path, capsys):
    assert main(["schedule", "list"]) == 0
    out = capsys.readouterr().out
    assert "job post" in out and "*/5 * * * *" in out and "notebook experiment_lift experiment_id='hashtag_1'" in out
    assert main(["schedule", "list", "--crontab", "--xbot", "/opt/xbot/bin/xbot", "--workdir", "/srv/xbot"]) == 0
    cron = capsys.readouterr().out
    assert "*/15 * * * * cd /srv/xbot && mkdir -p .xbot/logs && /opt/xbot/bin/xbot job collect --once" in cron
    assert "/opt/xbot/bin/xbot notebook run growth_review -p days 30" in cron
    (tmp_path / "bad.toml").write_text('[[job]]\nname = "post"\ncron = "*/61 * * * *"\n')
    assert main(["schedule", "list", "--dir", str(tmp_path)]) == 2
    assert "bad cron '*/61 * * * *'" in capsys.readouterr().err


def test_next_and_last_runs_from_the_parsed_cache_match_a_fresh_croniter_across_zones():
    # next_run re-uses one parsed croniter per (cron, zone), repositioned on each call, and in UTC computes plain
    # crons from the expanded fields itself: the answers must be those of a croniter built for that very call,
    # DST jumps, month ends, leap days and cron's either-day rule (day of month and weekday both set) included
    rng = random.Random(19)
    crons = ["*/5 * * * *", "0 * * * *", "0 */6 * * *", "30 6 * * 1", "30 2 * * *", "0 1-3 * * 0", "30 2 L * *",
             "@weekly", "@monthly", "0 0 1 * 1-5", "0 0 */2 * *", "5 4 31 * *", "0 12 29 2 *", "0 0 13 * 5",
             "59 23 * 12 0,6", "*/15 9-17 * * 1-5", "0 0 * * 7", "1,2,59 0,23 1,15 1,6,12 *"]
    zones = ["UTC", "UTC", "Europe/Berlin", "America/New_York", "Australia/Lord_Howe"]
    for _ in range(3000):
        entry = ScheduleEntry("job", "post", rng.choice(crons), timezone=rng.choice(zones))
        t = at(2026, 1, 1) + timedelta(seconds=rng.randrange(3 * 366 * 86400), microseconds=rng.choice([0, 1, 999999]))
        zone = ZoneInfo(entry.timezone)
        assert next_run(entry, t) == croniter(entry.cron, t.astimezone(zone)).get_next(datetime).astimezone(UTC)
        assert last_run_at_or_before(entry, t) == croniter(
            entry.cron, (t + timedelta(microseconds=1)).astimezone(zone)).get_prev(datetime).astimezone(UTC)


def test_threads_sharing_a_parsed_cron_each_get_their_own_answer():
    # the worker pool's threads share the cache: a croniter's position must not leak between two callers
    entry = ScheduleEntry("job", "post", "*/5 * * * *")
    starts = [at(2026, 3, 2, 8, 0) + timedelta(minutes=7 * i, seconds=13) for i in range(400)]
    with ThreadPoolExecutor(8) as pool:
        got = list(pool.map(lambda t: next_run(entry, t), starts))
    assert all(n > t and n - t <= timedelta(minutes=5) and n.minute % 5 == 0 and n.second == 0
               for t, n in zip(starts, got))


def test_a_cron_that_names_no_day_says_so_naming_the_cron():
    with pytest.raises(ScheduleError, match=r"cron '0 0 30 2 \*' names no time .*30th of February"):
        next_run(ScheduleEntry("job", "post", "0 0 30 2 *"), at(2026, 1, 1))
