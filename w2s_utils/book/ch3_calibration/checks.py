"""Chapter 3, part 1: the random-instance checks of the calibration bounds and the binned-ECE escape
(tables, figures and glued numbers)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import matplotlib.pyplot as plt
import pandas as pd
from matplotlib.figure import Figure

from w2s_utils.book import plots
from w2s_utils.book.ch3_calibration.common import legend_below
from w2s_utils.book.tables import Table, present_table


# ============================================================================ binned ECE escape
def escape_table(escape: pd.DataFrame) -> Table:
    """Chapter 3, table 'escape': the calibration bound on the escape instances, per delta."""
    return present_table(
        escape,
        {
            "delta": "δ",
            "smce_weak": "smCE teacher",
            "smce_student": "smCE student",
            "bound_abs": "band 2 E|p(student) − p(teacher)|",
            "bound_eps": "√(2ε)",
            "ece_weak": "ECE teacher",
            "ece_student": "ECE student",
        },
        formats={"delta": ".3f", **{c: ".4f" for c in escape.columns if c != "delta"}},
        caption="The escape instance: smooth CE moves by O(δ), binned ECE by about 1/2",
    )


def escape_glue(escape: pd.DataFrame) -> dict[str, Any]:
    """Chapter 3, worked example after {prf:ref}`prp-ece-escape` (rows at δ = 0.05 and 0.001)."""
    row = escape.set_index("delta")
    w, s = row.loc[0.05], row.loc[0.001]
    return {
        "ex_smce_student": float(w.smce_student),
        "ex_bound": float(w.bound_abs),
        "ex_sqrt_2eps": float(w.bound_eps),
        "ex_ece_student": float(w.ece_student),
        "ex_ece_small": float(s.ece_student),
        "ex_bound_small": float(s.bound_abs),
    }


# ============================================================================ random instances
def check_figure(check: pd.DataFrame) -> Figure:
    """Chapter 3, figure 'fig-ch3-check': |change| of smooth CE and of binned ECE against the
    band 2 E|p_sw − p_w| on random binary instances (log-log, one colour per truth)."""
    data = check.assign(
        ece_diff=(check.ece_student - check.ece_weak).abs(),
        truth=check.truth.map({"f_star": "against F*", "labels": "against labels"}),
    )
    fig, axes = plt.subplots(1, 2, figsize=(7.2, 3.9), sharex=True, sharey=True)
    plots.tightness_scatter(
        data,
        x="bound_abs",
        y="diff",
        hue="truth",
        ax=axes[0],
        xlabel="band 2 E|p_sw − p_w|",
        ylabel="|change| between teacher and student",
    )
    plots.tightness_scatter(
        data,
        x="bound_abs",
        y="ece_diff",
        hue="truth",
        ax=axes[1],
        xlabel="band 2 E|p_sw − p_w|",
        ylabel="",
    )
    axes[0].set_title("(a) smooth CE: below the line", fontsize=10)
    axes[1].set_title("(b) binned ECE: escapes above it", fontsize=10)
    legend_below(fig, axes, ncol=3)
    fig.tight_layout(rect=(0, 0.08, 1, 1))
    plt.close(fig)  # shown once, as the cell's value (not again by the inline backend)
    return fig


def check_glue(check: pd.DataFrame) -> dict[str, Any]:
    """Chapter 3, section 'Numeric check on random instances' (binary part)."""
    ece_diff = (check.ece_student - check.ece_weak).abs()
    used = check["diff"] / check.bound_abs
    escapes = (ece_diff > check.bound_abs).groupby(check.truth).mean()
    return {
        "chk_n": int(check.instance.nunique()),
        "chk_viol": int((~check.holds.astype(bool)).sum()),
        "chk_used_median": float(used.median()),
        "chk_used_max": float(used.max()),
        "chk_escape_fstar": float(escapes["f_star"]),
        "chk_escape_labels": float(escapes["labels"]),
        "chk_ece_ratio_max": float((ece_diff / check.bound_abs).max()),
    }


def multiclass_glue(
    multi: pd.DataFrame,
    bracket: pd.DataFrame,
    ks: Sequence[int],
    n_points: int,
    k: int,
    rounds: int,
) -> dict[str, Any]:
    """Chapter 3, section 'Numeric check on random instances' (multi-class part: the exact
    instances ``multi`` with ``ks`` classes, and the one instance ``bracket`` of ``n_points``
    points and ``k`` classes solved with ``rounds`` LP rounds of column generation per class)."""
    b = bracket.iloc[0]
    return {
        "chk_mc_n": len(multi),
        "chk_mc_viol": int((~multi.holds.astype(bool)).sum()),
        "chk_mc_exact": int(multi.exact.astype(bool).sum()),
        "chk_mc_used": float((multi.lhs / multi.bound_tv).median()),
        "mc_ks": ", ".join(str(int(x)) for x in ks),
        "br_n": int(n_points),
        "br_k": int(k),
        "br_rounds": int(rounds),
        "br_exact": "exact values" if bool(b.exact) else "certified brackets, not exact values",
        "br_weak": f"[{b.smce_weak_lower:.3f}, {b.smce_weak_upper:.3f}]",
        "br_student": f"[{b.smce_student_lower:.3f}, {b.smce_student_upper:.3f}]",
        "br_lhs": float(b.lhs),
        "br_rhs": float(b.rhs),
        "br_holds": "verified" if bool(b.holds) else "not decided (the brackets are too wide)",
    }
