"""Chapter 2, the planted task: the bounds against the exact gain (table, summary, glue, figure)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
from matplotlib import pyplot as plt
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

from w2s_utils.book.ch2_generalization.common import interval_text, widths
from w2s_utils.book.ch2_generalization.lm import group_means, lm_table
from w2s_utils.book.tables import Table, present_table, require_columns


# --------------------------------------------------------------------------------- planted
def planted_table(
    results: Sequence[Any],
    lf: pd.DataFrame,
    ea: pd.DataFrame,
    ea_ce: pd.DataFrame,
    osc: pd.DataFrame,
    chain: pd.DataFrame,
) -> pd.DataFrame:
    """Chapter 2, the planted task: :func:`lm_table`'s columns for each planted run (every
    ``Err`` exact against ``F*``; ``budget`` = the exact ``Err(F_w)``), with the teacher
    (``weak``, ``teacher_n``, ``label`` = "weak, n = ...") and the error-aware interval at the
    budget a gold-label test set would give, the teacher's test cross-entropy (``ce_lower``,
    ``ce_upper``, ``ce_budget``; ``ea_ce``)."""
    out = lm_table(results, lf, ea, chain, osc)
    require_columns(ea_ce, ["lower", "upper", "budget", "holds"], "ea_ce")
    if len(ea_ce) != len(results):
        raise ValueError("ea_ce: needs one row per run")
    out = out.drop(columns="dataset")
    out.insert(1, "teacher_n", [r.config.teacher_n for r in results])
    out.insert(2, "label", [_teacher_label(r.config) for r in results])
    out["ce_lower"] = ea_ce.lower.to_numpy()
    out["ce_upper"] = ea_ce.upper.to_numpy()
    out["ce_budget"] = ea_ce.budget.to_numpy()
    out["holds"] = out.holds & ea_ce.holds.astype(bool).to_numpy()
    return out


def _teacher_label(cfg: Any) -> str:
    n = cfg.teacher_n if cfg.teacher_n else cfg.sizes.weak_train
    return f"{cfg.weak}, {n} examples"


def planted_summary(pl: pd.DataFrame, exact: Mapping[tuple, Any]) -> Table:
    """Chapter 2, table 'planted': per teacher (means over seeds) the exact ``Err(F_w)``, the
    exact gain with its 95% interval over seeds and test examples (``exact``: (weak,
    teacher_n) -> :class:`w2s_utils.metrics.Interval`), the error-aware interval at the exact
    ``e`` and at ``e`` = the teacher's test cross-entropy, the label-free interval and the
    oscillation form."""
    g = group_means(pl, ("weak", "teacher_n", "label"))
    lo, hi = [], []
    for w, n in zip(g.weak, g.teacher_n, strict=True):
        if (w, n) not in exact:
            raise ValueError(f"exact: no interval for the teacher ({w!r}, {n})")
        lo.append(exact[(w, n)].lo)
        hi.append(exact[(w, n)].hi)
    df = g.assign(
        gain_lo=lo,
        gain_hi=hi,
        ea=interval_text(g.ea_lower, g.ea_upper),
        ce=interval_text(g.ce_lower, g.ce_upper),
        lf=interval_text(g.lf_lower, g.lf_upper),
        osc=interval_text(g.osc_lower, g.osc_upper),
    )
    return present_table(
        df,
        {
            "label": "teacher",
            "budget": "Err(F_w)",
            "gain": "exact gain",
            "ea": "error-aware, e = Err(F_w)",
            "ce": "error-aware, e = CE(F_w)",
            "lf": "label-free",
            "osc": "oscillation form",
        },
        formats={"budget": ".3f", "gain": "+.3f"},
        intervals={"gain": ("gain_lo", "gain_hi")},
        caption="Planted task, means over seeds (nats); the gain with its 95% interval",
    )


def planted_glue(pl: pd.DataFrame, exact: Mapping[tuple, Any]) -> dict[str, Any]:
    """Chapter 2, the planted task's numbers (keys ``pl_*``)."""
    w = widths(pl)
    ce_width = pl.ce_upper - pl.ce_lower
    above = [k for k, iv in exact.items() if iv.lo > 0]
    return {
        "pl_runs": len(pl),
        "pl_teachers": pl.label.nunique(),
        "pl_seeds": int(pl.groupby("label").size().min()),
        "pl_fails": int((~pl.holds).sum()),
        "pl_err_min": float(pl.groupby("label").budget.mean().min()),
        "pl_err_max": float(pl.groupby("label").budget.mean().max()),
        "pl_improved": len(above),
        "pl_lf_width": float(w["lf"].median()),
        "pl_ea_width": float(w["ea"].median()),
        "pl_ce_width": float(ce_width.median()),
        "pl_osc_width": float(w["osc"].median()),
        "pl_ea_lower": float(pl.ea_lower.median()),
        "pl_ea_upper": float(pl.ea_upper.median()),
        "pl_lf_lower": float(pl.lf_lower.median()),
        "pl_lf_upper": float(pl.lf_upper.median()),
        "pl_share": float(pl.share.median()),
        "pl_gamma": float(pl.gamma.median()),
        "pl_t1": float(pl.bound_tv.median()),
        "pl_t1_over_trivial": int((pl.bound_tv > pl.trivial).sum()),
        "pl_corr_width_err": float(np.corrcoef(pl.budget, w["ea"])[0, 1]),
    }


def planted_interval_figure(pl: pd.DataFrame) -> Figure:
    """Chapter 2, figure 'fig-ch2-planted': every planted run's error-aware interval width
    (filled circle) and label-free interval width (open triangle) against the teacher's exact
    error ``Err(F_w)``, one colour per teacher; the legends below the axes."""
    require_columns(pl, ["label", "budget", "lf_lower", "lf_upper", "ea_lower", "ea_upper"], "pl")
    w = widths(pl)
    fig, ax = plt.subplots(figsize=(7.0, 4.6))
    teachers = []
    for i, (label, idx) in enumerate(pl.groupby("label", sort=False).groups.items()):
        color = plt.get_cmap("Dark2")(i)
        ax.scatter(pl.budget[idx], w["ea"][idx], color=color, marker="o", s=24)
        ax.scatter(pl.budget[idx], w["lf"][idx], edgecolors=color, marker="^", s=24,
                   facecolors="none")  # fmt: skip
        teachers.append(Patch(color=color, label=label))
    kinds = [
        Line2D([], [], ls="", marker="o", color="0.3", label="error-aware, e = Err(F_w)"),
        Line2D([], [], ls="", marker="^", mfc="none", color="0.3", label="label-free"),
    ]
    ax.set_xlabel("teacher's exact error Err(F_w) (nats)")
    ax.set_ylabel("interval width (nats)")
    ax.set_ylim(bottom=0)
    ax.legend(handles=teachers + kinds, fontsize=9, ncol=3, loc="upper center",
              bbox_to_anchor=(0.5, -0.16))  # fmt: skip
    fig.tight_layout()
    return fig
