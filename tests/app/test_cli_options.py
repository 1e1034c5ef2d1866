"""The argparse types the commands and the bench scripts share: a bad number is refused with its value and the range."""
import argparse

import pytest

from xbotlib.app.cli.options import at_least


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="bench_x.py")
    p.add_argument("--seeds", type=at_least(1), default=4)
    p.add_argument("--seed", type=at_least(0), default=0)
    return p


def test_whole_numbers_in_range_pass_through():
    a = _parser().parse_args(["--seeds", "3", "--seed", "0"])
    assert (a.seeds, a.seed) == (3, 0)


@pytest.mark.parametrize("argv, message", [
    (["--seeds", "0"], "argument --seeds: must be at least 1, got 0"),
    (["--seed", "-1"], "argument --seed: must be at least 0, got -1"),
    (["--seeds", "ten"], "argument --seeds: expected a whole number of at least 1, got 'ten'"),
])
def test_a_bad_count_is_refused_naming_the_value_and_the_range(argv, message, capsys):
    with pytest.raises(SystemExit) as stop:
        _parser().parse_args(argv)
    assert stop.value.code == 2 and message in capsys.readouterr().err
