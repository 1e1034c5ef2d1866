"""`xbot demo --account-profile accounts/cooking.toml` end to end (a fresh XBOT_HOME, the embedded database):
the cooking account plans, posts and reports its own topics in its own voice, on the template path (no key)
and on the LLM path (the real OpenAI SDK against the fake server)."""
from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from xbotlib.app.cli.demo import matching_scenario
from xbotlib.core.profile import load_profile, parse_profile
from xbotlib.devtools.fake_openai import FakeOpenAI

REPO = Path(__file__).resolve().parents[2]
COOKING = load_profile(REPO / "accounts" / "cooking.toml")
_LATEST = re.compile(r"^  latest post \((\w+), (\w+), (\w+)\): (.+)$", re.M)


def _demo(tmp_path: Path, days: int, **extra_env: str) -> str:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("XBOT_", "X_", "OPENAI_", "POSTING", "LIVE"))}
    env.update(XBOT_HOME=str(tmp_path / ".xbot"), **extra_env)
    out = subprocess.run([sys.executable, "-m", "xbotlib.app.cli.main", "demo", "--account-profile",
                          str(REPO / "accounts" / "cooking.toml"), "--days", str(days), "--no-notebooks"],
                         cwd=tmp_path, env=env, capture_output=True, text=True, timeout=900)
    assert out.returncode == 0, out.stdout + out.stderr
    return out.stdout


def _check_cooking_summary(stdout: str, source: str) -> None:
    v = COOKING.vocabulary()
    assert "scenario scenarios/cooking.toml: its audience reads this profile's topics" in stdout
    assert "account cooking: followers" in stdout
    topics_line = next(line for line in stdout.splitlines() if line.startswith("  topics posted: "))
    posted = dict(re.findall(r"(\S+) (\d+)\+\d+r", topics_line))
    assert set(posted) <= set(v.topics) and sum(map(int, posted.values())) >= 3, topics_line
    latest = _LATEST.findall(stdout)
    assert latest, stdout
    for gen_source, topic, hook, text in latest:
        assert gen_source == source and topic in v.topics and hook in COOKING.hooks, text
        assert v.detect_topic(text) == topic, text


def test_the_cooking_demo_on_templates(tmp_path):
    _check_cooking_summary(_demo(tmp_path, days=3), "template")


def test_the_cooking_demo_on_the_llm(tmp_path):
    with FakeOpenAI(slow_s=1.0) as fake:
        stdout = _demo(tmp_path, days=2, OPENAI_API_KEY="sk-test", OPENAI_BASE_URL=fake.base_url)
        prompts = [r.body["messages"] for r in fake.requests if r.path.endswith("/chat/completions")]
    _check_cooking_summary(stdout, "llm")
    assert prompts and all(m[0]["content"].startswith(COOKING.voice.persona) for m in prompts)
    assert {re.search(r"^Topic: (\w+)$", m[1]["content"], re.M).group(1) for m in prompts} <= set(COOKING.topic_names)


def test_a_missing_profile_file_is_refused_before_any_work(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("XBOT_", "X_", "OPENAI_", "POSTING", "LIVE"))}
    out = subprocess.run([sys.executable, "-m", "xbotlib.app.cli.main", "demo", "--account-profile",
                          str(tmp_path / "missing.toml")], cwd=tmp_path, env={**env, "XBOT_HOME": str(tmp_path / "h")},
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 2 and "missing.toml: no such file (pass a profile TOML" in out.stderr
    assert not (tmp_path / "h" / "pgdata").exists()  # refused before the database started


@pytest.mark.parametrize("name", ["default", "cooking"])
def test_the_matching_scenario_is_picked_by_topics(name):
    path, note = matching_scenario(load_profile(REPO / "accounts" / f"{name}.toml"))
    assert path == str(REPO / "scenarios" / f"{name}.toml") and f"scenario scenarios/{name}.toml: its audience reads" in note


def test_a_profile_whose_topics_no_scenario_reads_gets_the_default_audience_and_a_note():
    doc = COOKING.to_dict()
    doc["topics"][4]["name"] = "thrift"
    doc["replies"]["searches"]["thrift"] = doc["replies"]["searches"].pop("budget")
    path, note = matching_scenario(parse_profile(doc))
    assert path is None and note.startswith("no shipped scenario reads the topics baking, weeknight, fermentation, "
                                            "knife_skills, thrift: the default audience will not recognise them")
