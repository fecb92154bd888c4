"""Chapter 2: constants and helpers shared by the chapter's modules."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from w2s_utils.book.tables import format_interval

#: Class counts of the random check, cycled over the instances.
K_VALUES = (2, 3, 4, 5, 8)

#: The chain of bounds on |gain|, sharpest first: column of :func:`lm_table` (and of the random
#: check's merged table) and its label. The first two are the two intervals (the larger of their
#: two ends in size); the rest are the links of :func:`w2s_utils.theory.generalization_chain`,
#: ending with the two-sided bound's two forms.
CHAIN = (
    ("ea_bound", "error-aware interval"),
    ("lf_bound", "label-free interval"),
    ("mean_max_abs_log_ratio", "E max|r|"),
    ("mean_log_tv", "E log(1+TV/γ)"),
    ("log_mean_tv", "log(1+E TV/γ)"),
    ("log_pinsker", "log(1+min(1,√(ε/2))/γ)"),
    ("bound_tv", "E TV/γ (two-sided)"),
    ("bound_eps", "√(ε/2)/γ (two-sided)"),
)


def widths(t: pd.DataFrame) -> dict[str, pd.Series]:
    """Widths in nats (upper minus lower end) of the label-free (``lf``), error-aware (``ea``)
    and oscillation (``osc``) intervals of each row of :func:`lm_table`'s frame."""
    return {
        "lf": t.lf_upper - t.lf_lower,
        "ea": t.ea_upper - t.ea_lower,
        "osc": t.osc_upper - t.osc_lower,
    }


def interval_text(lo: pd.Series, hi: pd.Series, fmt: str = "+.3f") -> list[str]:
    """Each interval ``[lo, hi]`` as the page prints it (``[−0.004, +0.028]``, format ``fmt``),
    without a point: the brackets of :func:`w2s_utils.book.tables.format_interval`."""
    return [format_interval(0.0, a, b, fmt).split(" ", 1)[1] for a, b in zip(lo, hi, strict=True)]


def bound_columns(lf: pd.DataFrame, ea: pd.DataFrame, chain: pd.DataFrame) -> dict[str, Any]:
    """The columns shared by the random check's merged table and :func:`lm_table`'s frame, in
    their order, from row-aligned sweeps of the label-free interval (``lf``), the error-aware
    interval (``ea``) and the chain (``chain``): ``share`` (|fraction of the label-free interval
    used|), ``ea_bound`` and ``lf_bound`` (the larger end of each interval in size, nats),
    ``trivial`` and every link of :data:`CHAIN` after the two intervals (nats)."""
    out: dict[str, Any] = {
        "share": lf.fraction_used.abs().to_numpy(),
        "ea_bound": np.maximum(-ea.lower, ea.upper).to_numpy(),
        "lf_bound": np.maximum(-lf.lower, lf.upper).to_numpy(),
        "trivial": chain.trivial.to_numpy(),
    }
    for key, _ in CHAIN[2:]:
        out[key] = chain[key].to_numpy()
    return out
