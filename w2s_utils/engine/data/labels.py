"""Texts and labels read from a user's data: what counts as a text, a class index or a class name.

The rules (one home for every reader: JSON Lines, CSV/TSV, Parquet, ``datasets`` folders and
objects, pandas DataFrames):

- **Texts** are strings. A missing text (JSON ``null``, a pandas ``NaN``) and anything that is not a
  string (a number, a list, an object) is an error naming the row: it is never turned into the
  string ``"None"`` or ``"3"``. Empty texts are kept here and dropped (and counted) by cleaning.
- **Labels** are read per value as a *class index* (an integer ``>= 0``: ``1``, ``1.0``,
  ``True``, or a string of ASCII digits such as ``"1"`` or ``"1.0"``; Python's ``int`` would also
  read ``"1_0"`` as 10 and ``"١"`` as 1, which are refused) or as a *class name* (any other
  non-empty string). Missing labels (``null``, NaN, an empty cell), non-whole numbers (``0.7`` is
  never truncated), numeric strings that are not plain integers (``"0.5"``, ``"1e3"``), negative
  indices and lists are errors naming the row.
- A **column** holds one kind. Class indices keep their values: they must be ``0..K-1`` with
  every class present (``{0, 5}`` is an error naming the missing classes 1-4, with the
  renumbering to use), so K is the number of distinct labels. Class names are encoded by their
  rank in sorted (Unicode code point) order, the same on every machine and for every row order:
  ``{"neg", "neu", "pos"}`` -> 0, 1, 2, recorded as ``label_names``. A column of only booleans
  is encoded ``False`` -> 0, ``True`` -> 1 with names ``("False", "True")``; booleans among
  integers count as 0/1. A column that mixes indices and names is an error naming the first row
  of the other kind. Fewer than two classes is an error.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from w2s_utils._validate import label_value

#: A class index written as text: ASCII digits with an optional sign and an optional ``.0``.
_INDEX_TEXT = re.compile(r"[+-]?[0-9]+(?:\.0*)?\Z")
#: Any other number written as text (refused as a label: ``0.5``, ``1e3``, ``nan``, ``inf``).
_NUMBER_TEXT = re.compile(
    r"[+-]?(?:(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?|nan|inf|infinity)\Z", re.IGNORECASE
)

Where = Callable[[int], str]


def is_missing(value: Any) -> bool:
    """True for ``None``, a float NaN and pandas' ``NA``/``NaT`` markers."""
    if value is None:
        return True
    if isinstance(value, float | np.floating):
        return math.isnan(value)
    return type(value).__name__ in ("NAType", "NaTType")


def check_text(value: Any, where: str) -> str:
    """``value`` as a text, or ``ValueError`` naming ``where`` (missing or not a string)."""
    if isinstance(value, str):
        return str(value)
    if is_missing(value):
        raise ValueError(
            f"{where}: the text is missing (null/NaN); fill it in or drop the row (a missing text "
            "is never read as the string 'None')"
        )
    raise ValueError(
        f"{where}: the text is a {type(value).__name__} ({_short(value)}), not a string; store "
        "texts as strings (numbers and lists are not texts)"
    )


def class_index(value: Any, where: str) -> int:
    """One class index (an integer >= 0) from a label value; ``ValueError`` naming ``where``.

    Accepts Python/numpy integers, booleans, whole floats and ASCII digit strings (``"1"``,
    ``"1.0"``); refuses ``"1_0"``, ``0.7``, ``"0.5"``, negatives and missing values.
    """
    if is_missing(value):
        raise ValueError(f"{where}: the label is missing (null/NaN); fill it in or drop the row")
    if isinstance(value, str) and not _INDEX_TEXT.match(value.strip()):
        raise ValueError(
            f"{where}: {value!r} is not a class index; integer labels are plain digits 0..K-1 "
            "(class names are read as names only by the data loaders)"
        )
    if isinstance(value, str):
        value = value.strip().partition(".")[0]
    elif not isinstance(value, bool | int | float | np.bool_ | np.integer | np.floating):
        raise ValueError(
            f"{where}: a {type(value).__name__} ({_short(value)}) is not a label; labels are "
            "class indices 0..K-1 or class names"
        )
    return label_value(value, where)


def _token(value: Any, where: str) -> int | str | bool:
    """A label value as a class index (int), a class name (str) or a boolean."""
    if isinstance(value, bool | np.bool_):
        return bool(value)
    if isinstance(value, str):
        text = value.strip()
        if text and not _INDEX_TEXT.match(text):
            if _NUMBER_TEXT.match(text):
                raise ValueError(
                    f"{where}: the label {value!r} is a number but not a class index; labels "
                    "are whole numbers 0..K-1 or class names (a fraction is never truncated: "
                    "round or threshold it yourself)"
                )
            return text
        if not text:
            raise ValueError(f"{where}: the label is empty; fill it in or drop the row")
    return class_index(value, where)


def _ranges(values: Sequence[int], limit: int = 6) -> str:
    """``[1, 2, 3, 7]`` -> ``"1-3, 7"`` (at most ``limit`` runs, then how many more)."""
    runs: list[tuple[int, int]] = []
    for v in values:
        if runs and v == runs[-1][1] + 1:
            runs[-1] = (runs[-1][0], v)
        else:
            runs.append((v, v))
    shown = [f"{a}" if a == b else f"{a}-{b}" for a, b in runs[:limit]]
    more = f", ... ({len(runs) - limit} more runs)" if len(runs) > limit else ""
    return ", ".join(shown) + more


def _missing_runs(present: list[int]) -> tuple[list[tuple[int, int]], int]:
    """Gaps of the sorted distinct ``present`` in ``0..max``: runs ``(a, b)`` and their total."""
    runs, total, expect = [], 0, 0
    for v in present:
        if v > expect:
            runs.append((expect, v - 1))
            total += v - expect
        expect = v + 1
    return runs, total


def _short(value: Any, width: int = 40) -> str:
    text = repr(value)
    return text if len(text) <= width else text[: width - 3] + "..."


def encode_labels(
    values: Sequence[Any],
    where: Where,
    column: str,
    names: Sequence[str] | None = None,
    source: str = "",
) -> tuple[list[int], tuple[str, ...], int]:
    """Encode a label column (the module's rules); return ``(labels, label_names, n_classes)``.

    ``where(i)`` names row ``i`` in errors, ``column`` the label column and ``source`` (a file,
    "the DataFrame") the whole column in errors that no single row causes. ``names`` are class
    names that come with integer labels (a ``datasets.ClassLabel`` feature): K is then their
    number and every index must lie below it. Nothing is allocated per class before the labels
    are known to be ``0..K-1`` with ``K <= len(values)``.
    """
    col = f"{source}: label column {column!r}" if source else f"label column {column!r}"
    tokens = [_token(v, where(i)) for i, v in enumerate(values)]
    if not tokens:
        raise ValueError(f"{col} is empty; add rows")
    kind_of = [str if isinstance(t, str) else bool if isinstance(t, bool) else int for t in tokens]
    first = kind_of[0]
    as_names = str in kind_of
    for i, k in enumerate(kind_of):
        if as_names and (k is str) != (first is str):
            raise ValueError(
                f"{where(i)}: label column {column!r} mixes class indices and class names "
                f"({_short(tokens[0])} in the first row, {_short(tokens[i])} here); use one kind: "
                "all names (encoded in sorted order) or all integers 0..K-1"
            )
    if as_names:
        distinct = sorted(set(tokens))  # type: ignore[type-var]
        code = {name: c for c, name in enumerate(distinct)}
        labels = [code[t] for t in tokens]
        label_names = tuple(str(n) for n in distinct)
    elif all(k is bool for k in kind_of):
        labels = [int(t) for t in tokens]
        label_names = ("False", "True")
        if len(set(labels)) < 2:
            only = label_names[labels[0]]
            raise ValueError(
                f"{col} holds one class ({only}) in {len(labels)} rows; "
                "weak-to-strong needs at least two classes: check the label column "
                "(--label-column / label_column=) or the data"
            )
        return labels, label_names, 2
    else:
        labels = [int(t) for t in tokens]
        label_names = tuple(names or ())
    present = sorted(set(labels))
    n_classes = len(label_names) if label_names else present[-1] + 1
    if names and present[-1] >= len(names):
        i = next(i for i, y in enumerate(labels) if y >= len(names))
        raise ValueError(
            f"{where(i)}: label {labels[i]} but the column's class names are {list(names)} "
            f"(indices 0..{len(names) - 1}); fix the label or the names"
        )
    if len(present) < 2:
        only = label_names[present[0]] if label_names else present[0]
        raise ValueError(
            f"{col} holds one class ({only}) in {len(labels)} rows; "
            "weak-to-strong needs at least two classes: check the label column "
            "(--label-column / label_column=) or the data"
        )
    if len(present) < n_classes:
        gaps, n_missing = _missing_runs(present + ([n_classes] if names else []))
        missing = ", ".join(f"{a}" if a == b else f"{a}-{b}" for a, b in gaps[:6])
        if len(gaps) > 6:
            missing += f", ... ({len(gaps) - 6} more runs)"
        hint = (
            "; renumber them " + ", ".join(f"{v} -> {c}" for c, v in enumerate(present))
            if len(present) <= 8
            else "; renumber them by rank"
        )
        raise ValueError(
            f"{col}: integer labels are class indices 0..K-1 and every class "
            f"needs examples, but the labels are {_ranges(present)} and {n_missing} "
            f"class{'es' if n_missing > 1 else ''} ({missing}) "
            f"{'have' if n_missing > 1 else 'has'} none{hint}, or give the classes as names "
            "(strings, encoded in sorted order)"
        )
    return labels, label_names, n_classes
