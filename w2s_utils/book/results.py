"""How the book reads an interval: verdicts, formatted intervals and lists of cells.

The tables themselves (paired tables over seeds and test examples) are computed by
:mod:`w2s_utils.analysis`; this module only turns their columns into words for the chapters'
text. A difference is called "higher"/"lower" only where its 95% interval over seeds and test
examples excludes zero.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

__all__ = [
    "verdict",
    "fmt_interval",
    "names_where",
]


def verdict(lo: float, hi: float, *, above: str = "higher than", below: str = "lower than") -> str:
    """How a 95% interval of a difference reads: above / below / not distinguishable."""
    if not (np.isfinite(lo) and np.isfinite(hi)):
        return "undetermined (no interval) against"
    if lo > 0:
        return above
    if hi < 0:
        return below
    return "not distinguishable from"


def fmt_interval(point: float, lo: float, hi: float, digits: int = 3, signed: bool = False) -> str:
    """``0.012 [-0.004, 0.028]`` (``n/a`` for NaN; no brackets without an interval)."""
    if not np.isfinite(point):
        return "n/a"
    f = f"{{:{'+' if signed else ''}.{digits}f}}"
    if not (np.isfinite(lo) and np.isfinite(hi)):
        return f.format(point)
    return f"{f.format(point)} [{f.format(lo)}, {f.format(hi)}]"


def names_where(table: pd.DataFrame, mask: Any, *, empty: str = "none") -> str:
    """``"bow on sarcasm, minilm-l1 on rotten_tomatoes"`` for the rows where ``mask`` holds."""
    rows = table[np.asarray(mask, dtype=bool)]
    if rows.empty:
        return empty
    return ", ".join(f"{w} on {d}" for d, w in zip(rows["dataset"], rows["weak"], strict=True))
