"""Tables as a reader sees them: human headers, fixed formats, no NaN and no ``-0.000``.

:func:`present_table` turns a DataFrame of numbers into a :class:`Table` of formatted strings that
a notebook displays as HTML inside a scroll container (``div.w2s-table-wrap``, styled by
``book/_static/w2s.css``), so that a wide table scrolls within the text column instead of running
past it. The rules, checked by ``tests/book/test_presentation.py`` and on the built site by the
browser test:

- **Headers** are the reader's words, given as a mapping ``{column: header}`` whose order is the
  column order; columns not in the mapping are left out. A header that looks like a code name
  (``eps_t``, ``f_star``) is refused.
- **Numbers** get one format per column, a Python format spec: ``".3f"`` (3 decimals), ``"+.3f"``
  (signed: for differences), ``".1%"`` (a percentage), ``"d"`` or ``",d"`` (whole numbers),
  ``".2e"`` (scientific: for tiny numbers such as a floor of 1e-08, which ``.6f`` would print as
  0.000000). Defaults by dtype: booleans ``yes``/``no``, integers ``d``, floats ``.3f``, text as is.
- **Rounding before the sign**: a value is first rounded to the printed precision and only then
  given its sign, so -0.00004 prints as ``0.000``, never ``-0.000``; negative numbers carry a true
  minus sign (U+2212), positive differences a ``+``.
- **Intervals** join three columns into one: ``intervals={"gain": ("gain_lo", "gain_hi")}`` prints
  ``+0.012 [−0.004, +0.028]`` in the format of ``gain``; an interval with a missing end prints the
  point alone.
- **Missing values** (NaN, None, ``pd.NA``) print as ``missing`` ("—" by default; "n/a" reads
  better in prose-like tables); infinities as ``∞``/``−∞``.
"""

from __future__ import annotations

import html
import math
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from w2s_utils._validate import check_int

__all__ = [
    "MINUS",
    "NumberFormat",
    "Table",
    "format_interval",
    "format_number",
    "parse_format",
    "present_table",
    "require_columns",
]

#: The minus sign of printed numbers (U+2212), as in typeset mathematics.
MINUS = "\u2212"
#: A header that reads like a code name: lower-case words joined by underscores.
CODE_NAME = re.compile(r"^[a-z][a-z0-9]*(_[a-z0-9]+)+$")
_SPEC = re.compile(r"^(?P<sign>\+)?(?P<comma>,)?(?:\.(?P<digits>\d+))?(?P<kind>[fde%])$")


@dataclass(frozen=True)
class NumberFormat:
    """How one column's numbers print: ``kind`` ``"f"`` (fixed), ``"%"`` (percent), ``"e"``
    (scientific) or ``"d"`` (whole number), ``digits`` after the point, ``signed`` (a ``+`` on
    positive values: for differences), ``grouping`` (thousands separators)."""

    kind: str = "f"
    digits: int = 3
    signed: bool = False
    grouping: bool = False


def parse_format(spec: str) -> NumberFormat:
    """A :class:`NumberFormat` from a format spec such as ``".3f"``, ``"+.3f"``, ``".1%"``,
    ``".2e"``, ``"d"`` or ``",d"``; ValueError naming the spec otherwise."""
    if not isinstance(spec, str):
        raise ValueError(f"format: expected a format spec such as '.3f' or '+.3f', got {spec!r}")
    m = _SPEC.match(spec.strip())
    if m is None:
        raise ValueError(
            f"format {spec!r}: not understood; use '.3f' (3 decimals), '+.3f' (signed "
            "difference), '.1%' (percent), '.2e' (scientific), 'd' or ',d' (whole numbers)"
        )
    kind = m["kind"]
    digits = 0 if kind == "d" else int(m["digits"]) if m["digits"] is not None else 3
    return NumberFormat(kind, digits, signed=bool(m["sign"]), grouping=bool(m["comma"]))


def _is_missing(value: Any) -> bool:
    if value is None or value is pd.NA or value is pd.NaT:
        return True
    try:
        return bool(isinstance(value, float | np.floating) and math.isnan(value))
    except TypeError:
        return False


def format_number(value: Any, fmt: str | NumberFormat = ".3f", *, missing: str = "—") -> str:
    """One number as the book prints it (see the module docstring): rounded to the printed
    precision *before* its sign is chosen (no ``-0.000``), a true minus sign, ``+`` on positive
    values when ``fmt`` is signed, ``missing`` for NaN/None, ``∞`` for infinities. Booleans print
    as ``yes``/``no``."""
    nf = fmt if isinstance(fmt, NumberFormat) else parse_format(fmt)
    if _is_missing(value):
        return missing
    if isinstance(value, bool | np.bool_):
        return "yes" if value else "no"
    if not isinstance(value, int | float | np.integer | np.floating):
        raise ValueError(f"value: expected a number, got {value!r} ({type(value).__name__})")
    x = float(value)
    if math.isinf(x):
        return ("+" if nf.signed else "") + "∞" if x > 0 else MINUS + "∞"
    if nf.kind == "d":
        if x != round(x):
            raise ValueError(
                f"value {x!r}: format 'd' prints whole numbers only; use '.1f' or round first"
            )
        body = f"{abs(int(round(x))):{',' if nf.grouping else ''}d}"
    elif nf.kind == "%":
        body = f"{abs(x) * 100:{',' if nf.grouping else ''}.{nf.digits}f}%"
    elif nf.kind == "e":
        body = f"{abs(x):.{nf.digits}e}"
    else:
        body = f"{abs(x):{',' if nf.grouping else ''}.{nf.digits}f}"
    # the sign of what is printed: zero at this precision has none
    digits_only = re.sub(r"[^0-9]", "", body.split("e")[0])
    if not digits_only.strip("0"):
        return body
    if x < 0:
        return MINUS + body
    return "+" + body if nf.signed else body


def format_interval(
    point: Any,
    lo: Any,
    hi: Any,
    fmt: str | NumberFormat = ".3f",
    *,
    missing: str = "—",
) -> str:
    """``0.012 [−0.004, 0.028]``: the point and its interval in one format (``+.3f`` for a
    difference gives ``+0.012 [−0.004, +0.028]``); the point alone when an end is missing,
    ``missing`` when the point is."""
    if _is_missing(point):
        return missing
    text = format_number(point, fmt, missing=missing)
    if _is_missing(lo) or _is_missing(hi):
        return text
    return f"{text} [{format_number(lo, fmt)}, {format_number(hi, fmt)}]"


def require_columns(
    df: Any, columns: Iterable[str | None], what: str, *, nonempty: bool = False, source: str = ""
) -> None:
    """Check that ``df`` is a pandas DataFrame holding every column of ``columns`` (``None``
    entries stand for optional columns not asked for and are skipped) and at least one row when
    ``nonempty``; raise ``ValueError`` naming the argument ``what``, the missing
    columns, the columns it has and, when given, ``source`` (where the right table comes from:
    "the table of w2s_utils.analysis.paired_table"). Every chapter module checks its input
    tables with it."""
    if not isinstance(df, pd.DataFrame):
        raise ValueError(f"{what}: expected a pandas DataFrame, got {type(df).__name__}")
    where = f"; pass {source}" if source else ""
    missing = [c for c in columns if c is not None and c not in df.columns]
    if missing:
        raise ValueError(
            f"{what}: lacks the columns {missing} (missing columns; it has {list(df.columns)})"
            f"{where}"
        )
    if nonempty and df.empty:
        raise ValueError(f"{what}: is empty; pass at least one row{where}")


@dataclass(frozen=True)
class Table:
    """A presented table: ``frame`` holds the printed strings under the human headers.

    Displays as HTML in a notebook (``_repr_html_``: a ``table.w2s-table`` inside a
    ``div.w2s-table-wrap`` scroll container) and as aligned text elsewhere (``repr``).
    ``numeric`` names the headers whose cells are numbers (right-aligned).
    """

    frame: pd.DataFrame
    caption: str = ""
    numeric: frozenset[str] = field(default_factory=frozenset)

    def _repr_html_(self) -> str:
        def cls(header: str) -> str:
            return ' class="w2s-num"' if header in self.numeric else ""

        head = "".join(f"<th{cls(h)}>{html.escape(str(h))}</th>" for h in self.frame.columns)
        rows = []
        for _, row in self.frame.iterrows():
            cells = "".join(f"<td{cls(h)}>{html.escape(str(v))}</td>" for h, v in row.items())
            rows.append(f"<tr>{cells}</tr>")
        caption = f"<caption>{html.escape(self.caption)}</caption>" if self.caption else ""
        return (
            '<div class="w2s-table-wrap"><table class="w2s-table">'
            f"{caption}<thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody>"
            "</table></div>"
        )

    def __repr__(self) -> str:
        text = self.frame.to_string(index=False)
        return f"{self.caption}\n{text}" if self.caption else text


def _column_format(series: pd.Series, spec: Any) -> Callable[[Any], str] | None:
    """The formatter of one column: ``None`` for text."""
    if callable(spec):
        return spec
    if spec is not None:
        nf = parse_format(spec)
        return lambda v, nf=nf: format_number(v, nf)
    if pd.api.types.is_bool_dtype(series):
        return lambda v: format_number(v)
    if pd.api.types.is_integer_dtype(series):
        return lambda v: format_number(v, "d")
    if pd.api.types.is_float_dtype(series):
        return lambda v: format_number(v, ".3f")
    values = [v for v in series if not _is_missing(v)]
    if values and all(isinstance(v, bool | np.bool_) for v in values):
        return lambda v: format_number(v)
    return None


def present_table(
    df: pd.DataFrame,
    columns: Mapping[str, str],
    *,
    formats: Mapping[str, Any] | None = None,
    intervals: Mapping[str, tuple[str, str]] | None = None,
    missing: str = "—",
    caption: str = "",
    max_rows: int = 200,
) -> Table:
    """``df`` as the reader sees it (see the module docstring).

    ``columns`` maps each column to show to its header, in display order. ``formats`` maps a
    column to a format spec (``".3f"``, ``"+.3f"``, ``".1%"``, ``".2e"``, ``"d"``) or to a function
    ``value -> str``; unlisted columns get their dtype's default. ``intervals`` maps a column to the
    names of its lower and upper ends, printed with it as ``point [lo, hi]``. ``missing`` replaces
    NaN and None; ``caption`` sits above the table; more than ``max_rows`` rows is refused (a page
    is not a data dump: summarise first).
    """
    if not isinstance(df, pd.DataFrame):
        raise ValueError(f"df: expected a pandas DataFrame, got {type(df).__name__}")
    if not isinstance(columns, Mapping) or not columns:
        raise ValueError("columns: give a mapping {column: header} of the columns to show")
    check_int(max_rows, "max_rows", minimum=1)
    if len(df) > max_rows:
        raise ValueError(
            f"df: {len(df)} rows is more than max_rows={max_rows}; summarise the table first"
        )
    formats = dict(formats or {})
    intervals = dict(intervals or {})
    wanted = set(columns) | set(formats) | set(intervals)
    wanted |= {c for ends in intervals.values() for c in ends}
    unknown = sorted(str(c) for c in wanted if c not in df.columns)
    if unknown:
        raise ValueError(
            f"columns {unknown} are not in the table; it has {[str(c) for c in df.columns]}"
        )
    headers = list(columns.values())
    for col, header in columns.items():
        if not isinstance(header, str) or not header.strip():
            raise ValueError(f"columns[{col!r}]: the header must be non-empty text")
        if CODE_NAME.match(header.strip()):
            raise ValueError(
                f"columns[{col!r}]: header {header!r} reads like a code name; give the "
                "reader's words (e.g. 'Misfit ε (nats)')"
            )
    if len(set(headers)) != len(headers):
        raise ValueError(f"columns: two columns share a header: {headers}")
    out: dict[str, list[str]] = {}
    numeric: set[str] = set()
    for col, header in columns.items():
        fmt = _column_format(df[col], formats.get(col))
        if col in intervals:
            lo_col, hi_col = intervals[col]
            spec = formats.get(col, ".3f")
            if callable(spec):
                raise ValueError(f"formats[{col!r}]: an interval column needs a format spec")
            cells = [
                format_interval(p, lo, hi, spec, missing=missing)
                for p, lo, hi in zip(df[col], df[lo_col], df[hi_col], strict=True)
            ]
            numeric.add(header)
        elif fmt is None:
            cells = [missing if _is_missing(v) else str(v) for v in df[col]]
        else:
            cells = [missing if _is_missing(v) else fmt(v) for v in df[col]]
            if set(cells) - {"yes", "no", missing}:
                numeric.add(header)
        out[header] = cells
    frame = pd.DataFrame(out, columns=headers, index=pd.RangeIndex(len(df)))
    return Table(frame=frame, caption=str(caption or ""), numeric=frozenset(numeric))
