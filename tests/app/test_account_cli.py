"""`xbot account add|list|show|check` against a real Postgres (the command's own process settings)."""
from __future__ import annotations

import tomllib

import pytest

from xbotlib.app.cli.main import main
from xbotlib.core.profile import load_profile, parse_profile


@pytest.fixture
def cli(db_url, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("XBOT_DATABASE_URL", db_url)
    monkeypatch.setenv("XBOT_HOME", str(tmp_path / ".xbot"))

    def run(*argv: str) -> tuple[int, str, str]:
        rc = main(list(argv))
        out = capsys.readouterr()
        return rc, out.out, out.err
    return run


def test_check_validates_without_a_database(cli, tmp_path, monkeypatch):
    monkeypatch.setenv("XBOT_DATABASE_URL", "postgresql://nobody@127.0.0.1:1/none")  # never contacted
    rc, out, _ = cli("account", "check", "accounts/cooking.toml")
    assert rc == 0 and out.startswith("accounts/cooking.toml: ok — account 'cooking' (@wknight_kitchen, en, Europe/London)")
    assert "hooks: did_you_know, question, contrarian, cta, plain" in out
    bad = tmp_path / "bad.toml"
    bad.write_text(open("accounts/cooking.toml").read().replace('keywords = ["ferment"', 'keywords = ["Ferment"'))
    rc, _, err = cli("account", "check", str(bad))
    assert rc == 2 and f"xbot: error: {bad}: topics[2].keywords[0] = 'Ferment' is not lower case (write 'ferment')" in err
    body = tmp_path / "body.toml"
    body.write_text(open("accounts/cooking.toml").read().replace(
        "Miso belongs in desserts as much as in soup.", "Miso belongs in desserts. And soup."))
    rc, _, err = cli("account", "check", str(body))
    assert rc == 2 and "1 template rule problem(s)" in err and "topics[2].claims[4] = 'Miso belongs in desserts. And soup.'" in err


def test_a_binary_file_is_refused_naming_it(cli, tmp_path):
    binary = tmp_path / "photo.toml"
    binary.write_bytes(b"\x89PNG\r\n\x1a\n\xd0\xff")
    for action in ("check", "add"):
        rc, _, err = cli("account", action, str(binary))
        assert rc == 2 and f"xbot: error: {binary}: not a UTF-8 text file (" in err
        assert "pass a profile TOML such as accounts/cooking.toml" in err
    rc, out, _ = cli("account", "list")
    assert rc == 0 and "no stored profiles" in out  # nothing was stored


def test_add_list_show_and_update(cli, tmp_path):
    rc, out, _ = cli("account", "list")
    assert rc == 0 and out.startswith("no stored profiles")
    rc, out, _ = cli("account", "add", "accounts/cooking.toml")
    assert rc == 0 and out.splitlines() == ["account 'cooking' added from accounts/cooking.toml",
                                            "  new account 'cooking': 5 topics (baking, weeknight, fermentation, "
                                            "knife_skills, budget)"]
    rc, out, _ = cli("account", "add", "accounts/cooking.toml")
    assert out.strip() == "account 'cooking': unchanged (the stored profile is already accounts/cooking.toml)"
    edited = tmp_path / "cooking.toml"
    edited.write_text(open("accounts/cooking.toml").read().replace("hours = [8, 12, 17, 19, 21]", "hours = [9, 18]"))
    rc, out, _ = cli("account", "add", str(edited))
    assert out.splitlines() == [f"account 'cooking' updated from {edited}:", "  posting.hours: [8, 12, 17, 19, 21] -> [9, 18]"]
    cli("account", "add", "accounts/default.toml")
    rc, out, _ = cli("account", "list")
    lines = out.splitlines()
    assert lines[0].split() == ["ID", "HANDLE", "LANG", "TIMEZONE", "TOPICS", "SOURCE", "UPDATED"]
    assert lines[1].split()[:5] == ["cooking", "@wknight_kitchen", "en", "Europe/London",
                                    "baking,weeknight,fermentation,knife_skills,budget"]
    assert lines[2].split()[:2] == ["default", "@xbot_default"]
    rc, out, _ = cli("account", "show", "cooking")
    shown = parse_profile(tomllib.loads(out))
    assert rc == 0 and shown.posting_hours == (9, 18) and shown.topics == load_profile("accounts/cooking.toml").topics
    rc, _, err = cli("account", "show", "baking")
    assert rc == 2 and "no stored profile for account 'baking' (stored: cooking, default; add one with" in err


def test_help_describes_the_profile(capsys):
    with pytest.raises(SystemExit):
        main(["account", "--help"])
    out = capsys.readouterr().out
    assert "add" in out and "check" in out and "accounts/cooking.toml" in out
