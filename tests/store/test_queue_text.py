"""The queue stores no text X would refuse: blank, over 280 weighted characters, invalid characters.

The plan gates check the same rule first (tests/core/test_gates.py); this is the last line before
a decision is written, for every caller.
"""
from __future__ import annotations

import pytest

from xbotlib.store.queue import Decision, TextRejected, insert_decision

MASK = "\U0001F637"


def _decision(clock, text: str, **kw) -> Decision:
    return Decision(account_id="acct1", content=text, generation_source="llm", status="queued",
                    scheduled_at=clock.now(), **kw)


def _count(conn) -> int:
    return conn.execute("SELECT count(*) AS n FROM content_metadata").fetchone()["n"]


@pytest.mark.parametrize("text, message", [
    (MASK * 280, r"not stored: its text is too long for X: weighted length 560 > 280 \(X counts a URL as 23, "
                 r"CJK and most emoji as 2\); X would refuse it — shorten or rewrite the text"),
    ("x" * 281, r"weighted length 281 > 280"),
    ("", r"not stored: its text is empty or whitespace only; X would refuse it"),
    ("  \n\t ", r"its text is empty or whitespace only"),
    ("ok\uffff", r"its text is not valid for X: it contains characters X refuses"),
])
def test_insert_refuses_text_x_would_refuse_and_stores_nothing(db, clock, text, message):
    d = _decision(clock, text)
    with db.connection() as conn:
        with pytest.raises(TextRejected, match=message) as err:
            insert_decision(conn, d, clock.now())
        assert _count(conn) == 0
    assert str(d.decision_id) in str(err.value)
    assert isinstance(err.value, ValueError)


def test_insert_accepts_what_x_accepts_even_when_len_is_over_280(db, clock):
    texts = [MASK * 140,                                                  # 140 emoji: weighted 280
             "A link counts 23: https://example.com/" + "p" * 300,       # len 338, weighted 41
             "y" * 280]
    with db.connection() as conn:
        for i, text in enumerate(texts):
            insert_decision(conn, _decision(clock, text), clock.now())
        assert _count(conn) == len(texts)
