"""The growth bench's results file: a stopped run resumes, more seeds add only the new ones, nothing is mixed."""
from __future__ import annotations

import argparse
import io
import json

import pytest

from xbotlib.devtools import bench
from xbotlib.devtools.growth_results import ResultsFile, fingerprint


def _run(pg, results, seeds: int) -> tuple[dict, list[str]]:
    out = io.StringIO()
    runs = bench._growth_many(days=2, seeds=seeds, scenarios={"default": None}, policies=("random", "fixed"),
                              workers=1, pg=pg, out=out, results=results)
    return runs, out.getvalue().splitlines()


def _numbers(rows: list[dict]) -> list[dict]:
    return [{k: v for k, v in r.items() if k not in ("seconds", "cpu_seconds")} for r in rows]


def test_a_results_file_keeps_each_campaign_and_a_rerun_runs_only_the_missing_ones(pg, tmp_path):
    path = tmp_path / "growth.jsonl"
    first, lines = _run(pg, ResultsFile(path), seeds=1)
    assert lines[:2] == [f"  0 campaigns read from {path}", "  2 campaigns on 1 worker(s)"]
    stored = [json.loads(line) for line in path.read_text().splitlines()]
    assert [(r["policy"], r["seed"], r["days"], r["analytics"]) for r in stored] == [("random", 0, 2, True),
                                                                                   ("fixed", 0, 2, True)]

    # one more seed: seed 0 is read back, equal to what was run; only seed 1 runs
    second, lines = _run(pg, ResultsFile(path), seeds=2)
    assert lines[:2] == [f"  2 campaigns read from {path}", "  2 campaigns on 1 worker(s)"]
    assert [(r["policy"], r["seed"]) for r in second["default"]] == [("random", 0), ("fixed", 0), ("random", 1),
                                                                       ("fixed", 1)]
    assert second["default"][:2] == first["default"]
    assert len(path.read_text().splitlines()) == 4

    # the same command again runs nothing, and gives the same table as the run that made the file
    third, lines = _run(pg, ResultsFile(path), seeds=2)
    assert lines == [f"  4 campaigns read from {path}", "  0 campaigns on 1 worker(s)"]
    assert _numbers(third["default"]) == _numbers(second["default"])
    assert bench.growth_table(third["default"], 2, 2, None) == bench.growth_table(second["default"], 2, 2, None)


def test_campaigns_of_other_code_are_not_reused(pg, tmp_path):
    path = tmp_path / "growth.jsonl"
    _run(pg, ResultsFile(path), seeds=1)
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    rows[0]["fingerprint"] = "0" * 16     # as if the learner had changed since this campaign ran
    rows[0]["gained"] = -999
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    runs, lines = _run(pg, ResultsFile(path), seeds=1)
    assert lines[:2] == [f"  1 campaigns read from {path}; 1 there ran other code (fingerprint differs): not reused",
                         "  1 campaigns on 1 worker(s)"]
    assert runs["default"][0]["gained"] != -999 and runs["default"][0]["fingerprint"] == rows[1]["fingerprint"]


def test_the_fingerprint_follows_the_scenario_files_content(tmp_path):
    a, b = tmp_path / "a" / "w.toml", tmp_path / "b" / "w.toml"
    for p, text in ((a, "name = 'w'\n"), (b, "name = 'w'\n")):
        p.parent.mkdir()
        p.write_text(text)
    assert fingerprint([a]) == fingerprint([b]) != fingerprint([])
    b.write_text("name = 'w'  # edited\n")
    assert fingerprint([a]) != fingerprint([b])


def test_a_line_cut_off_by_a_kill_is_skipped_and_cut_away_before_the_next_campaign(tmp_path):
    path = tmp_path / "growth.jsonl"
    whole = {"scenario": "default", "policy": "xbot", "seed": 0, "days": 60, "analytics": True, "fingerprint": "f",
             "gained": 412}
    path.write_text(json.dumps(whole) + "\n" + '{"scenario": "default", "policy": "vw", "se')
    results = ResultsFile(path)
    assert results.read() == [whole]
    results.append({**whole, "seed": 1})
    assert results.read() == [whole, {**whole, "seed": 1}]
    assert [json.loads(line) for line in path.read_text().splitlines()] == [whole, {**whole, "seed": 1}]


def test_a_file_that_is_not_a_results_file_is_refused_naming_the_line(tmp_path, capsys):
    path = tmp_path / "notes.txt"
    path.write_text('{"scenario": "default", "policy": "xbot", "seed": 0, "days": 60, "analytics": true, '
                    '"fingerprint": "f"}\nmy notes on the run\n{"scenario": "default"}\n')
    with pytest.raises(ValueError, match=f"{path}:2 is not a campaign"):
        ResultsFile(path).read()
    with pytest.raises(SystemExit):
        bench.parse_growth_args(argparse.ArgumentParser(prog="xbot bench growth"), ["--results", str(path)])
    assert "delete it to start afresh" in capsys.readouterr().err
    with pytest.raises(ValueError, match="is a directory"):
        ResultsFile(tmp_path)
