"""Tagged log lines: the contract format, and no formatting at all when the level is off (a simulated year
logs ~150,000 INFO lines that a bench or a quiet demo never shows)."""
from __future__ import annotations

import logging

from xbotlib.logs import tagged


class _Counted:
    """A value that counts how often it is turned into text."""

    def __init__(self) -> None:
        self.formatted = 0

    def __str__(self) -> str:
        self.formatted += 1
        return "v"


def test_a_line_is_formatted_with_its_tag_and_keys_when_the_level_is_on(caplog):
    log = logging.getLogger("xbot.test_logs_on")
    with caplog.at_level(logging.INFO, logger="xbot.test_logs_on"):
        line = tagged(log, "ANALYTICS_COLLECTOR", "stored outcome", decision_id="d1", pass_=2, er=0.0123456789)
    assert line == "[ANALYTICS_COLLECTOR] stored outcome decision_id=d1 pass=2 er=0.0123457"
    assert caplog.messages == [line]


def test_a_line_below_the_level_is_neither_formatted_nor_logged(caplog):
    log = logging.getLogger("xbot.test_logs_off")
    value = _Counted()
    with caplog.at_level(logging.WARNING, logger="xbot.test_logs_off"):
        assert tagged(log, "POSTING", "sent", tweet=value) is None
        assert value.formatted == 0 and caplog.messages == []
        tagged(log, "POSTING", "refused", level=logging.WARNING, tweet=value)
    assert value.formatted == 1 and caplog.messages == ["[POSTING] refused tweet=v"]
