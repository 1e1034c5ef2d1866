"""The gates every candidate passes before it is queued — quality, duplicate, rotation — and the
rotation rule the planner also uses to narrow its options. Pure: each gate looks at the text and
what the caller read, and answers with a ``GateVerdict`` (ok, or which gate refused and why).

Length is X's: the quality gate refuses what X would refuse (``xbotlib.core.text.x_text_problem``:
blank text, more than 280 *weighted* characters — URLs 23, CJK and most emoji 2 — or characters X
calls invalid). The queue checks the same rule again before anything is stored.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from xbotlib.core.text import x_text_problem

MIN_CHARS = 40  # visible characters (surrounding whitespace aside): shorter says too little


def _current_run(recent: list[str]) -> tuple[str | None, int]:
    """The value the newest items repeat, and how many times in a row (``recent`` is newest first)."""
    run_value = recent[0] if recent else None
    run = 0
    for v in recent:
        if v != run_value:
            break
        run += 1
    return run_value, run


def allowed_by_rotation(recent: list[str], options: list[str], max_run: int) -> list[str]:
    """Options that would not make the same value appear more than ``max_run`` times in a row."""
    run_value, run = _current_run(recent)
    allowed = [o for o in options if not (o == run_value and run >= max_run)]
    return allowed or list(options)


@dataclass(frozen=True)
class GateVerdict:
    ok: bool
    gate: str | None = None
    reason: str | None = None


_TRUNCATED = re.compile(r"(\.\.\.|…)\s*$|\w-$")


def quality_gate(text: str, readability: float, min_readability: float, banned: tuple[str, ...]) -> GateVerdict:
    problem = x_text_problem(text)  # blank, over X's weighted limit, or characters X refuses
    if problem is not None:
        return GateVerdict(False, "quality", problem)
    n = len(text.strip())
    if n < MIN_CHARS:
        return GateVerdict(False, "quality", f"too short ({n} < {MIN_CHARS} chars)")
    if _TRUNCATED.search(text):
        return GateVerdict(False, "quality", "looks truncated")
    low = text.lower()
    for phrase in banned:  # the account profile's banned_phrases (BANNED_PHRASES without a stored profile)
        if phrase and phrase.lower() in low:  # case-blind: "Guaranteed" is as banned as "guaranteed"
            return GateVerdict(False, "quality", f"banned phrase {phrase!r}")
    if readability < min_readability:
        return GateVerdict(False, "quality", f"readability {readability:.2f} < floor {min_readability:.2f}")
    return GateVerdict(True)


def duplicate_gate(novelty: float, novelty_min: float, exact_repeat: bool = False) -> GateVerdict:
    if exact_repeat:
        return GateVerdict(False, "duplicate", "exact repeat of an earlier post (X refuses duplicate content)")
    if novelty < novelty_min:
        return GateVerdict(False, "duplicate", f"novelty {novelty:.3f} < {novelty_min:.3f} against the last 30 days")
    return GateVerdict(True)


def rotation_gate(hook: str, topic: str | None, recent_hooks: list[str], recent_topics: list[str],
                  max_run: int) -> GateVerdict:
    for name, value, recent in (("hook", hook, recent_hooks), ("topic", topic, recent_topics)):
        # not allowed_by_rotation(recent, [value]): with a single option it falls back to that option
        run_value, run = _current_run(recent)
        if value is not None and value == run_value and run >= max_run:
            return GateVerdict(False, "rotation", f"{name} {value!r} would run more than {max_run} times in a row")
    return GateVerdict(True)
