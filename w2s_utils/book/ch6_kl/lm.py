"""Chapter 6: chapter 1's pipeline with forward and reverse KL students (table, figure, glue)."""

from __future__ import annotations

from typing import Any

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from w2s_utils.book.ch6_kl.common import ORANGE, PURPLE
from w2s_utils.book.tables import (
    Table,
    present_table,
    require_columns,
)


# ------------------------------------------------------------------------------ fine-tuned students
def lm_table(lm: pd.DataFrame) -> Table:
    """Chapter 6, the fine-tuned students by loss (rows of
    :func:`w2s_utils.analysis.loss_comparison`)."""
    require_columns(
        lm,
        [
            "dataset",
            "weak",
            "loss",
            "n_seeds",
            "acc_weak",
            "acc_student",
            "pgr",
            "gain",
            "eps_rev",
            "slack",
        ],
        "lm",
    )
    df = lm.copy()
    df["loss"] = df["loss"].map({"xent": "forward KL", "reverse_kl": "reverse KL"})
    return present_table(
        df,
        {
            "dataset": "dataset",
            "weak": "teacher",
            "loss": "student's loss",
            "n_seeds": "seeds",
            "acc_weak": "teacher accuracy",
            "acc_student": "student accuracy",
            "gain": "gain (nats)",
            "eps_rev": "E KL(F_sw‖F_w)",
            "slack": "gain − E KL(F_sw‖F_w)",
        },
        formats={
            "acc_weak": ".3f",
            "acc_student": ".3f",
            "gain": "+.3f",
            "eps_rev": ".3f",
            "slack": "+.3f",
        },
        intervals={q: (f"{q}_lo", f"{q}_hi") for q in ("acc_student", "gain", "eps_rev", "slack")},
        caption="Fine-tuned students (95% intervals over seeds and test examples)",
    )


def lm_figure(lm: pd.DataFrame, paired: pd.DataFrame) -> Figure:
    """Chapter 6, figure 'fig-ch6-finetuned': left, gain against ``eps_rev`` per teacher and loss
    with intervals; right, the paired accuracy difference reverse − forward per teacher."""
    fig, axes = plt.subplots(1, 2, figsize=(7.5, 4))
    ax = axes[0]
    for loss, color, label in (
        ("xent", ORANGE, "forward KL"),
        ("reverse_kl", PURPLE, "reverse KL"),
    ):
        sub = lm[lm.loss == loss]
        ax.errorbar(
            sub.eps_rev,
            sub.gain,
            xerr=np.vstack([sub.eps_rev - sub.eps_rev_lo, sub.eps_rev_hi - sub.eps_rev]),
            yerr=np.vstack([sub.gain - sub.gain_lo, sub.gain_hi - sub.gain]),
            fmt="o",
            ms=4,
            capsize=2,
            color=color,
            label=label,
        )
    hi = float(max(lm.gain_hi.max(), lm.eps_rev_hi.max())) * 1.05
    ax.plot([0, hi], [0, hi], color="0.3", ls="--", lw=1, label="gain = disagreement")
    ax.set_xlim(0, hi)
    ax.axhline(0, color="0.75", lw=0.8)
    ax.set_xlabel(r"$\mathbb{E}\,KL(F_{sw}\|F_w)$ [nats]")
    ax.set_ylabel("gain [nats]")
    handles, labels = ax.get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=3, fontsize=9, bbox_to_anchor=(0.5, 0))
    ax = axes[1]
    y = np.arange(len(paired))[::-1]
    err = np.vstack([paired["diff"] - paired.diff_lo, paired.diff_hi - paired["diff"]])
    ax.errorbar(paired["diff"], y, xerr=err, fmt="o", color=PURPLE, capsize=3)
    ax.axvline(0, color="0.3", lw=1)
    ax.set_yticks(
        y, [f"{w} on {d}" for d, w in zip(paired.dataset, paired.weak, strict=True)], fontsize=9
    )
    ax.set_xlabel("student accuracy, reverse − forward")
    fig.tight_layout(rect=(0, 0.1, 1, 1))
    return fig


def lm_glue(lm: pd.DataFrame, paired: pd.DataFrame) -> dict[str, Any]:
    """Chapter 6, 'On real text (c)': verdicts of the fine-tuned students."""
    rev, fwd = lm[lm.loss == "reverse_kl"], lm[lm.loss == "xent"]
    return {
        "lm_cells": len(rev),
        "lm_seeds": int(lm.n_seeds.min()),
        "lm_rev_below": int((rev.slack_hi < 0).sum()),
        "lm_rev_above": int((rev.slack_lo > 0).sum()),
        "lm_fwd_below": int((fwd.slack_hi < 0).sum()),
        "lm_rev_acc": float(rev.acc_student.mean()),
        "lm_fwd_acc": float(fwd.acc_student.mean()),
        "lm_diff_pos": int((paired.diff_lo > 0).sum()),
        "lm_diff_neg": int((paired.diff_hi < 0).sum()),
        "lm_diff_mean": float(paired["diff"].mean()),
        "lm_diff_max": float(paired["diff"].abs().max()),
        "lm_width_median": float((paired.diff_hi - paired.diff_lo).median()),
    }
