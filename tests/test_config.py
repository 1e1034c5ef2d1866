"""Settings: typed, validated, with errors that name the variable, the value and the fix;
env over .env over defaults; secrets never shown."""
from __future__ import annotations

import re

import pytest

from xbotlib.config import SETTINGS, ConfigError, Settings, load_settings, read_dotenv
from xbotlib.store.db import Database, DatabaseError


def err(var: str, value: str) -> str:
    """A ``match`` pattern: the message names the variable and quotes the bad value."""
    return rf"{re.escape(var)}\b.*{re.escape(repr(value))}"


INVALID = [
    # booleans
    ("POSTING_DISABLED", "maybe"), ("POSTING_DISABLED", ""), ("POSTING_DISABLED", "2"),
    ("LIVE_POSTS", "yes please"), ("LIVE_POSTS", "shadows"), ("LIVE_POSTS", "dry-run"), ("LEARN_USE_LIGHTGBM", "null"),
    # integers and their ranges
    ("XBOT_DB_POOL_MAX", "0"), ("XBOT_DB_POOL_MAX", "101"), ("XBOT_DB_POOL_MAX", "eight"),
    ("XBOT_DB_POOL_MAX", "1.5"), ("POSTS_PER_HOUR_CAP", "-1"), ("POSTS_PER_DAY_CAP", "1001"),
    ("POST_MAX_ATTEMPTS", "21"), ("LEARN_MIN_NEW_SAMPLES", "0"),
    # floats and their ranges
    ("X_TIMEOUT_S", "0"), ("X_TIMEOUT_S", "abc"), ("X_TIMEOUT_S", "nan"), ("OPENAI_TIMEOUT_S", "inf"),
    ("OPENAI_DAILY_BUDGET_USD", "-1"), ("NOVELTY_MIN", "1.5"), ("REWARD_W_FPKI", "11"),
    ("REWARD_W_DUP", "0,1"),
    # time zones
    ("XBOT_TIMEZONE", "Mars/Olympus"), ("XBOT_TIMEZONE", "America"), ("XBOT_TIMEZONE", ""),
    ("XBOT_TIMEZONE", "/etc/localtime"), ("XBOT_TIMEZONE", "../etc/passwd"), ("XBOT_TIMEZONE", "CEST+2"),
    # URLs
    ("XBOT_DATABASE_URL", "mysql://x"), ("XBOT_DATABASE_URL", "nonsense"), ("XBOT_DATABASE_URL", "http://db:5432"),
    ("X_API_BASE_URL", "ftp://api.x.com"), ("X_API_BASE_URL", "api.x.com"), ("X_API_BASE_URL", ""),
    ("OPENAI_BASE_URL", "localhost:8000"), ("X_SANDBOX_URL", "sandbox"),
    # account ids
    ("XBOT_ACCOUNT_ID", ""), ("XBOT_ACCOUNT_ID", "has space"), ("XBOT_ACCOUNT_ID", "-lead"),
    ("XBOT_ACCOUNT_ID", "a" * 65), ("XBOT_ACCOUNT_ID", "ümlaut"), ("XBOT_ACCOUNT_ID", "a/b"),
]


@pytest.mark.parametrize("var, value", INVALID)
def test_invalid_values_name_the_variable_and_the_value(var, value):
    with pytest.raises(ConfigError, match=err(var, value)) as exc:
        load_settings(env={var: value})
    assert "expected" in str(exc.value)  # and say what would be right


@pytest.mark.parametrize("var, raw, attr, value", [
    ("POSTING_DISABLED", " FALSE ", "posting_disabled", False), ("POSTING_DISABLED", "on", "posting_disabled", True),
    ("LIVE_POSTS", "0", "live_posts", False), ("LIVE_POSTS", " Shadow ", "live_posts", "shadow"),
    ("LIVE_POSTS", "true", "live_posts", True), ("XBOT_DB_POOL_MAX", " 100 ", "db_pool_max", 100),
    ("POSTS_PER_HOUR_CAP", "0", "posts_per_hour_cap", 0), ("NOVELTY_MIN", "1", "novelty_min", 1.0),
    ("REWARD_W_DUP", "-0.25", "reward_w_dup", -0.25), ("XBOT_TIMEZONE", " Europe/Berlin ", "timezone", "Europe/Berlin"),
    ("XBOT_DATABASE_URL", "postgresql+psycopg://u@h/db", "database_url", "postgresql://u@h/db"),
    ("XBOT_DATABASE_URL", "", "database_url", None), ("X_API_BASE_URL", "http://127.0.0.1:9000/", "x_api_base_url",
                                                       "http://127.0.0.1:9000"),
    ("XBOT_ACCOUNT_ID", "acct_1.prod-2", "account_id", "acct_1.prod-2"), ("OPENAI_API_KEY", "  ", "openai_api_key", None),
])
def test_valid_values_are_parsed(var, raw, attr, value):
    assert getattr(load_settings(env={var: raw}), attr) == value


def test_defaults_are_safe_and_match_the_dataclass():
    s = load_settings(env={})
    assert s == Settings()  # the SETTINGS table and the dataclass defaults agree
    assert s.posting_mode == "disabled" and s.world == "sandbox" and s.database_url is None
    assert set(s.sources.values()) == {"default"}
    assert {st.env for st in SETTINGS} == set(s.sources)


def test_every_setting_has_a_parser_that_accepts_its_default():
    for st in SETTINGS:
        if st.default is not None:
            st.parse(st.env, st.default)


@pytest.mark.parametrize("env, mode, reason", [
    ({}, "disabled", "posting disabled"),
    ({"LIVE_POSTS": "true"}, "disabled", "posting disabled"),  # the master switch wins
    ({"POSTING_DISABLED": "false"}, "sandbox", "posting to the sandbox (the in-process sandbox)"),
    ({"POSTING_DISABLED": "false", "X_SANDBOX_URL": "http://127.0.0.1:8765"}, "sandbox",
     "posting to the sandbox (http://127.0.0.1:8765)"),
    ({"POSTING_DISABLED": "false", "LIVE_POSTS": "true", "X_ACCESS_TOKEN": "tok-123456789"}, "live",
     "posting to LIVE X at https://api.x.com"),
    ({"POSTING_DISABLED": "false", "LIVE_POSTS": "shadow", "X_ACCESS_TOKEN": "tok-123456789"}, "shadow",
     "SHADOW mode against live X at https://api.x.com: POSTING_DISABLED=false and LIVE_POSTS=shadow"),
    ({"LIVE_POSTS": "shadow"}, "disabled", "posting disabled"),  # the master switch wins over shadow too
])
def test_posting_mode(env, mode, reason):
    s = load_settings(env=env)
    assert s.posting_mode == mode
    assert s.world == ("live" if mode in ("live", "shadow") else "sandbox")
    assert s.posting_mode_reason().startswith(reason)


@pytest.mark.parametrize("env, message", [
    ({"POSTING_DISABLED": "false", "LIVE_POSTS": "true"}, r"LIVE_POSTS=true .*needs X_ACCESS_TOKEN"),
    ({"POSTING_DISABLED": "false", "LIVE_POSTS": "true", "X_ACCESS_TOKEN": "t" * 20,
      "X_SANDBOX_URL": "http://127.0.0.1:8765"}, r"LIVE_POSTS=true conflicts with X_SANDBOX_URL='http://127.0.0.1:8765'"),
    ({"POSTING_DISABLED": "false", "LIVE_POSTS": "shadow"}, r"LIVE_POSTS=shadow .*needs X_ACCESS_TOKEN"),
    ({"POSTING_DISABLED": "false", "LIVE_POSTS": "shadow", "X_ACCESS_TOKEN": "t" * 20,
      "X_SANDBOX_URL": "http://127.0.0.1:8765"}, r"LIVE_POSTS=shadow conflicts with X_SANDBOX_URL="),
])
def test_inconsistent_live_settings_are_refused(env, message):
    with pytest.raises(ConfigError, match=message):
        load_settings(env=env)


DOTENV = """\
# a comment, then a blank line

export POSTS_PER_DAY_CAP=5
XBOT_ACCOUNT_ID = "from_dotenv"
OPENAI_MODEL='gpt-4o'   # quoted, then a comment
POSTING_DISABLED=false  # sandbox, please
X_CLIENT_ID="id # with a hash"
XBOT_TIMEZONE=Europe/Berlin
"""


def test_env_over_dotenv_over_default(tmp_path):
    path = tmp_path / ".env"
    path.write_text(DOTENV)
    s = load_settings(env={"XBOT_TIMEZONE": "Asia/Tokyo"}, dotenv=path)
    assert s.timezone == "Asia/Tokyo" and s.sources["XBOT_TIMEZONE"] == "env"
    assert s.posts_per_day_cap == 5 and s.sources["POSTS_PER_DAY_CAP"] == ".env"
    assert s.account_id == "from_dotenv" and s.openai_model == "gpt-4o"
    assert s.posting_disabled is False and s.posting_mode == "sandbox"
    assert s.x_client_id == "id # with a hash"
    assert s.posts_per_hour_cap == 2 and s.sources["POSTS_PER_HOUR_CAP"] == "default"


def test_process_environment_and_dotenv_in_the_working_directory(tmp_path, monkeypatch):
    (tmp_path / ".env").write_text("POSTS_PER_DAY_CAP=6\nPOSTS_PER_HOUR_CAP=1\n")
    monkeypatch.chdir(tmp_path)
    for st in SETTINGS:
        monkeypatch.delenv(st.env, raising=False)
    monkeypatch.setenv("POSTS_PER_HOUR_CAP", "3")
    s = load_settings()
    assert (s.posts_per_day_cap, s.sources["POSTS_PER_DAY_CAP"]) == (6, ".env")
    assert (s.posts_per_hour_cap, s.sources["POSTS_PER_HOUR_CAP"]) == (3, "env")


def test_explicit_env_ignores_the_working_directory_dotenv(tmp_path, monkeypatch):
    (tmp_path / ".env").write_text("POSTS_PER_DAY_CAP=6\n")
    monkeypatch.chdir(tmp_path)
    assert load_settings(env={}).posts_per_day_cap == 8


def test_invalid_value_in_dotenv_names_the_variable(tmp_path):
    path = tmp_path / ".env"
    path.write_text("XBOT_DB_POOL_MAX=lots\n")
    with pytest.raises(ConfigError, match=err("XBOT_DB_POOL_MAX", "lots")):
        load_settings(env={}, dotenv=path)


@pytest.mark.parametrize("line, message", [
    ("JUST_A_WORD", r":1 is not KEY=VALUE: 'JUST_A_WORD'"),
    ("=value", r":1 has no valid variable name"),
    ("MY VAR=1", r":1 has no valid variable name"),
    ('OPENAI_MODEL="unterminated', r":1 has a badly quoted value"),
    ('OPENAI_MODEL="a" trailing', r":1 has a badly quoted value"),
])
def test_malformed_dotenv_lines_name_file_and_line(tmp_path, line, message):
    path = tmp_path / ".env"
    path.write_text(line + "\n")
    with pytest.raises(ConfigError, match=re.escape(str(path)) + message):
        read_dotenv(path)


def test_missing_dotenv_is_empty(tmp_path):
    assert read_dotenv(tmp_path / "absent.env") == {}


SECRETS = {
    "OPENAI_API_KEY": "sk-live-abcdefghijklmnop",
    "X_ACCESS_TOKEN": "xtok-qrstuvwxyz0123",
    "X_REFRESH_TOKEN": "xref-9876543210zyx",
    "X_CLIENT_SECRET": "short",
    "ADMIN_TOKEN": "admin-token-hunter2hunter2",
    "XBOT_DATABASE_URL": "postgresql://bot:pa55w0rd-secret@db.example:5432/xbot?sslmode=require",
}


def test_secrets_are_masked():
    rows = {env: shown for env, shown, _source, _help in load_settings(env=SECRETS).masked()}
    shown_text = "\n".join(rows.values())
    for value in SECRETS.values():
        assert value not in shown_text
    assert "pa55w0rd-secret" not in shown_text
    assert rows["XBOT_DATABASE_URL"] == "postgresql://bot:****@db.example:5432/xbot?sslmode=require"
    assert rows["OPENAI_API_KEY"] == "****mnop"  # the tail tells keys apart without revealing them
    assert rows["X_CLIENT_SECRET"] == "****"      # too short to show any of it
    assert rows["X_API_BASE_URL"] == "https://api.x.com"  # non-secrets are shown as they are


def test_password_in_a_url_query_is_masked():
    s = load_settings(env={"XBOT_DATABASE_URL": "postgresql:///xbot?host=/run/pg&password=qu3ry-secret"})
    shown = dict((r[0], r[1]) for r in s.masked())["XBOT_DATABASE_URL"]
    assert "qu3ry-secret" not in shown and "password=****" in shown


def test_bad_database_url_error_does_not_echo_its_password():
    with pytest.raises(ConfigError, match=r"XBOT_DATABASE_URL is not a postgres URL: 'mysql://root:\*\*\*\*@db/x'") as exc:
        load_settings(env={"XBOT_DATABASE_URL": "mysql://root:topsecret@db/x"})
    assert "topsecret" not in str(exc.value)


def test_unreachable_postgres_fails_fast_with_a_clear_message():
    url = "postgresql://bot:s3cret@127.0.0.1:1/xbot"
    with pytest.raises(DatabaseError, match=r"cannot connect to PostgreSQL at postgresql://bot:\*\*\*\*@127\.0\.0\.1:1/xbot: "
                                            r".*(refused|failed).*check XBOT_DATABASE_URL") as exc:
        Database.from_url(url)
    assert "s3cret" not in str(exc.value)


def test_from_url_refuses_a_non_postgres_url():
    with pytest.raises(ConfigError, match=r"not a postgres URL: 'mysql://x'"):
        Database.from_url("mysql://x")


def test_live_posts_shadow_is_explained_and_other_values_are_refused_clearly():
    with pytest.raises(ConfigError) as exc:
        load_settings(env={"LIVE_POSTS": "dryrun"})
    assert str(exc.value) == ("LIVE_POSTS is not true, false or shadow: 'dryrun' (expected true to post to live X, "
                              "shadow to plan and measure against live X without ever posting, or false for the sandbox)")
    disabled = load_settings(env={"LIVE_POSTS": "shadow"})
    assert disabled.posting_mode_reason().endswith(
        "(LIVE_POSTS=shadow takes effect only with POSTING_DISABLED=false)")
    shadow = load_settings(env={"POSTING_DISABLED": "false", "LIVE_POSTS": "shadow", "X_ACCESS_TOKEN": "t" * 20})
    assert "never writes to X" in shadow.posting_mode_reason()
    assert ("LIVE_POSTS", "shadow", "env") == next(r[:3] for r in shadow.masked() if r[0] == "LIVE_POSTS")


def test_file_in_the_way_names_the_file_a_folder_would_be_created_under(tmp_path):
    from xbotlib.config import file_in_the_way

    blocker = tmp_path / "notes.txt"
    blocker.write_text("x")
    assert file_in_the_way(blocker / "reports" / "runs") == blocker
    assert file_in_the_way(blocker) == blocker
    assert file_in_the_way(tmp_path / "new" / "reports") is None   # created on demand
    assert file_in_the_way(tmp_path) is None
