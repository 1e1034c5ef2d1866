"""Tables and prose for people reading a report: ``table`` formats a pandas frame, ``report_context``
says in one sentence what a report is about and carries the database, account and world it read.

``table(df, percent=[...], decimals=...)`` is a pandas ``Styler``: no index column, integers with
thousands separators, floats rounded to ``decimals``, shares as percentages, times to the minute
(dates alone when every time is midnight), missing values as "—", booleans as yes/no. It changes how
values are shown, never the frame itself.

``report_context`` is the cell right after a notebook's parameters: its Markdown (the parameters put
into a sentence, then the database, account and world) renders as the report's opening line, and the
same facts travel in the executed notebook under ``CONTEXT_MIME`` so the reports index can say which
database and world each run used (``xbotlib.app.reports.records.run_context``).
"""
from __future__ import annotations

import datetime as dt
import math
import re
from typing import Any, Callable, Iterable, Mapping

import pandas as pd
from pandas.io.formats.style import Styler

from xbotlib.app.reports.records import CONTEXT_MIME
from xbotlib.store.db import redact

NA = "—"
_TABLE_STYLES = [
    {"selector": "", "props": "border-collapse: collapse; font-size: 0.92em;"},
    {"selector": "th", "props": "text-align: left; padding: 0.3em 0.8em; border-bottom: 2px solid #d0d7de;"},
    {"selector": "td", "props": "padding: 0.25em 0.8em; border-bottom: 1px solid #eaeef2;"},
    {"selector": "caption", "props": "caption-side: top; text-align: left; color: #57606a; padding-bottom: .3em;"},
]


def table(df: pd.DataFrame, *, percent: Iterable[str] = (), decimals: int | str | Mapping[str, int] = "auto",
          caption: str | None = None) -> Styler:
    """``df`` formatted for people, as a Styler (what a notebook cell shows).

    Parameters
    ----------
    percent : columns holding a share or rate in [0, 1], shown as e.g. ``12.5%``.
    decimals : digits after the point for floats: "auto" (3 significant digits per value, never
        scientific notation), one number for all columns, or ``{column: digits}`` (others "auto").
        Float columns holding only whole numbers are shown as integers.
    caption : a line above the table.

    Numbers are right-aligned under right-aligned headers, text left-aligned. A named index (e.g. a
    groupby key) becomes the first column; an unnamed one is dropped.
    """
    if not isinstance(df, pd.DataFrame):
        raise TypeError(f"table() formats a pandas DataFrame, got {type(df).__name__} "
                        "(show a polars frame as it is; convert others with pd.DataFrame(...))")
    percent = list(percent)
    missing = [c for c in percent if c not in df.columns]
    if missing:
        raise ValueError(f"percent names columns the table does not have: {missing} (columns: {list(df.columns)})")
    if any(n is not None for n in df.index.names):
        df = df.reset_index()
    formats = {col: _formatter(df[col], col in percent, _digits(decimals, col)) for col in df.columns}
    numeric = [c for c in df.columns if (pd.api.types.is_numeric_dtype(df[c]) and not pd.api.types.is_bool_dtype(df[c]))
               or _formatted_numbers(df[c])]
    text = [c for c in df.columns if c not in numeric]
    times = [c for c in df.columns if formats[c].__name__ == "when"]
    styler = df.style.hide(axis="index").format(formats, na_rep=NA).set_table_styles(_TABLE_STYLES)
    # JupyterLab's stylesheet right-aligns every cell: say per column which way it reads
    styler = styler.set_properties(subset=numeric, **{"text-align": "right"}) \
        .set_properties(subset=text, **{"text-align": "left"}) \
        .set_properties(subset=times, **{"white-space": "nowrap"}) \
        .set_table_styles({c: [{"selector": "th", "props": "text-align: right;"}] for c in numeric}, overwrite=False)
    return styler.set_caption(caption) if caption else styler


def _digits(decimals: int | str | Mapping[str, int], col: Any) -> int | None:
    """Digits after the point for ``col``; None = "auto" (3 significant digits per value)."""
    if isinstance(decimals, Mapping):
        decimals = decimals.get(col, "auto")
    if decimals == "auto":
        return None
    if not isinstance(decimals, int) or decimals < 0:
        raise ValueError(f"decimals must be 'auto', a whole number >= 0 or {{column: digits}}, got {decimals!r}")
    return decimals


def significant(x: float, digits: int = 3) -> str:
    """``x`` to ``digits`` significant digits with thousands separators, never in scientific notation
    (1234.5 -> '1,234', 0.012345 -> '0.0123'); at most 6 digits after the point."""
    if x == 0 or not math.isfinite(x):
        return f"{x:.0f}" if x == 0 else str(x)
    after = min(6, max(0, digits - 1 - math.floor(math.log10(abs(x)))))
    return f"{x:,.{after}f}"


def _formatter(values: pd.Series, as_percent: bool, digits: int | None) -> Callable[[Any], str]:
    """How one column's cells read; missing values are left to ``na_rep``."""
    if as_percent:
        return lambda x: f"{x:.1%}"
    if pd.api.types.is_bool_dtype(values):
        return _yes_no
    if pd.api.types.is_integer_dtype(values):
        return lambda x: f"{x:,}"
    if pd.api.types.is_float_dtype(values):
        present = values.dropna()
        if len(present) and (present == present.round()).all() and present.abs().max() >= 1:
            return lambda x: f"{x:,.0f}"
        return significant if digits is None else (lambda x: f"{x:,.{digits}f}")
    if pd.api.types.is_datetime64_any_dtype(values):
        return _time_format(values)
    present = values.dropna()
    if len(present) and all(isinstance(v, bool) for v in present):
        return _yes_no
    if len(present) and all(isinstance(v, (dt.date, dt.datetime, pd.Timestamp)) for v in present):
        return _time_format(pd.Series(pd.to_datetime(list(present), utc=True)))
    return str


def _yes_no(x: Any) -> str:
    return "yes" if x else "no"


def _time_format(values: pd.Series) -> Callable[[Any], str]:
    """Dates alone when every value is midnight, else to the minute (no seconds, no microseconds)."""
    stamps = pd.to_datetime(values.dropna(), utc=True) if len(values.dropna()) else values
    whole_days = len(stamps) and bool((stamps == stamps.dt.normalize()).all())
    pattern = "%Y-%m-%d" if whole_days else "%Y-%m-%d %H:%M"

    def when(x: Any) -> str:
        return pd.Timestamp(x).strftime(pattern)
    return when


_NUMBER_TEXT = re.compile(r"^[\s\[\](),.%+\-−0-9]*[0-9][\s\[\](),.%+\-−0-9]*$")


def _formatted_numbers(values: pd.Series) -> bool:
    """True for a text column of numbers already formatted ('+28.1%', '[-41.6%, +181.0%]', '1,573'):
    they read right-aligned like numbers."""
    if pd.api.types.is_numeric_dtype(values) or pd.api.types.is_datetime64_any_dtype(values):
        return False
    present = [v for v in values.dropna() if v != ""]
    return bool(present) and all(isinstance(v, str) and _NUMBER_TEXT.match(v) for v in present)


class ReportContext:
    """What a report is about: one sentence with its parameters filled in, and the database (password
    redacted), account and world it read. Displayed as Markdown; carries ``CONTEXT_MIME`` for the index."""

    def __init__(self, sentence: str, database: str | None, account: str | None = None, world: str | None = None):
        self.sentence = sentence.strip()
        self.facts = {"database": redact(database) if database else None, "account": account, "world": world}

    def markdown(self) -> str:
        """The sentence, then what it did not already name: e.g. "Database `postgresql://…/xbot_demo`."."""
        parts = [f"{name} `{value}`" for name, value in self.facts.items() if value and str(value) not in self.sentence]
        line = " · ".join(parts)
        return f"{self.sentence}\n\n{line[:1].upper()}{line[1:]}." if parts else self.sentence

    def _repr_mimebundle_(self, include=None, exclude=None) -> dict:
        return {"text/markdown": self.markdown(), "text/plain": self.markdown(),
                CONTEXT_MIME: {k: v for k, v in self.facts.items() if v}}

    def __repr__(self) -> str:
        return self.markdown()


def report_context(sentence: str, *, database: str | None, account: str | None = None,
                   world: str | None = None) -> ReportContext:
    """The report's opening line: ``sentence`` (the parameters in words, e.g. "Growth over the last 7 days
    for account demo-1 (sandbox world).") and the database, account and world it read. Make it a cell's
    last expression; ``database`` is a URL (its password is redacted) or a database name."""
    return ReportContext(sentence, database, account, world)
