"""Glue in bulk: one call per section puts every number and sentence the text needs into the page.

:func:`glue_all` takes a mapping ``{key: value}`` and glues each value with ``myst_nb.glue``
without displaying it:

- **numbers** (Python or numpy ints and floats) as plain Python numbers, for
  ``{glue:text}`key:.3f``` (the text chooses the format; a numpy scalar would reach the page as
  ``np.float64(...)`` and break the format, so it is converted). NaN and infinities are refused:
  the text would print ``nan``; glue a sentence ("not defined: ...") instead;
- **strings** as Markdown, for ``{glue:md}`key``` (a sentence, a formatted interval, a list of
  cells);
- **booleans** as the words ``yes``/``no`` (Markdown);
- **presented tables** (:class:`w2s_utils.book.tables.Table`) and **matplotlib figures** as
  themselves, for ``{glue:}`` / ``{glue:figure}``.

Keys are words, digits, ``_`` and ``-``: a ``:`` would be read as the start of a format spec by
``{glue:text}``. A DataFrame is refused (present it with
:func:`w2s_utils.book.tables.present_table` first).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd
from IPython.display import Markdown
from matplotlib.figure import Figure
from myst_nb import glue

from w2s_utils.book.tables import Table

__all__ = ["glue_all", "glue_value"]

_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]*$")


def glue_value(value: Any, key: str = "value") -> Any:
    """What :func:`glue_all` glues for ``value`` (see the module docstring); ValueError for a value
    the page cannot show (NaN, a DataFrame, an unknown type)."""
    if isinstance(value, bool | np.bool_):
        return Markdown("yes" if value else "no")
    if isinstance(value, int | np.integer):
        return int(value)
    if isinstance(value, float | np.floating):
        x = float(value)
        if not math.isfinite(x):
            raise ValueError(
                f"{key}: is {x!r}; the page would print it as is. Glue a sentence instead "
                "(e.g. 'not defined: the gap is zero') or fix the computation"
            )
        return x
    if isinstance(value, str):
        if not value.strip():
            raise ValueError(f"{key}: is an empty string; the sentence would have a hole")
        return Markdown(value)
    if isinstance(value, Table | Figure):
        return value
    if isinstance(value, pd.DataFrame | pd.Series):
        raise ValueError(
            f"{key}: is a {type(value).__name__}; present it with "
            "w2s_utils.book.tables.present_table (human headers, fixed formats) and glue that"
        )
    raise ValueError(
        f"{key}: cannot glue a {type(value).__name__}; glue a number, a string, a bool, a "
        "presented Table or a matplotlib Figure"
    )


def glue_all(values: Mapping[str, Any]) -> None:
    """Glue every ``key: value`` of ``values`` without displaying it (see the module docstring).

    Every value is checked before anything is glued, so a bad value leaves the page's glue as it
    was and the ValueError names its key.
    """
    if not isinstance(values, Mapping):
        raise ValueError(f"values: expected a mapping {{key: value}}, got {type(values).__name__}")
    prepared = {}
    for key, value in values.items():
        if not isinstance(key, str) or not _KEY.match(key):
            raise ValueError(
                f"key {key!r}: use letters, digits, '_' and '-' (a ':' would be read as a "
                "format spec by {glue:text})"
            )
        prepared[key] = glue_value(value, key)
    for key, value in prepared.items():
        glue(key, value, display=False)
