"""Chapter 6: the planted mixture task and the Gaussian bridge (tables, figure, glued numbers)."""

from __future__ import annotations

from typing import Any

import matplotlib.pyplot as plt
import pandas as pd
import torch
from matplotlib.figure import Figure

from w2s_utils import theory
from w2s_utils.book.ch6_kl.common import GREEN, ORANGE, PURPLE
from w2s_utils.book.tables import (
    Table,
    present_table,
    require_columns,
)


# ------------------------------------------------------------------------------ planted mixture
def planted_summary(table: pd.DataFrame, tol: float = 1e-9) -> pd.DataFrame:
    """Chapter 6, the planted mixture task: per (student, split) of the stacked tables of
    :func:`w2s_utils.engine.planted_mixture.planted_mixture_task`, the number of seeds, how many
    fall below the line gain = disagreement (``slack < -tol``), the smallest slack and the mean
    gain, disagreement ``eps_rev`` and ``eps`` (nats)."""
    require_columns(table, ["student", "split", "slack", "gain", "eps_rev", "eps"], "table")
    return table.groupby(["student", "split"], sort=False).agg(
        seeds=("slack", "size"),
        below_line=("slack", lambda s: int((s < -tol).sum())),
        min_slack=("slack", "min"),
        gain=("gain", "mean"),
        eps_rev=("eps_rev", "mean"),
        eps=("eps", "mean"),
    )


def planted_table(summary: pd.DataFrame) -> Table:
    """Chapter 6, table of the planted mixture task (:func:`planted_summary`)."""
    df = summary.reset_index()
    df["split"] = df["split"].map(
        {"student-train": "student's training texts", "test": "held-out texts"}
    )
    return present_table(
        df,
        {
            "student": "student",
            "split": "texts",
            "seeds": "seeds",
            "below_line": "below gain = disagreement",
            "min_slack": "smallest slack",
            "gain": "mean gain",
            "eps_rev": "mean E KL(F_sw‖F_w)",
            "eps": "mean E KL(F_w‖F_sw)",
        },
        formats={"min_slack": "+.1e", "gain": ".4f", "eps_rev": ".4f", "eps": ".4f"},
        caption="Planted mixture task: exact errors (nats), per student and set of texts",
    )


def planted_figure(planted: pd.DataFrame) -> Figure:
    """Chapter 6, figure 'fig-ch6-planted': gain against the disagreement ``eps_rev`` per seed and
    student, on the student's training texts and on held-out texts."""
    require_columns(planted, ["student", "split", "gain", "eps_rev"], "planted")
    fig, axes = plt.subplots(1, 2, figsize=(7.5, 3.6), sharey=True)
    colors = [PURPLE, ORANGE, GREEN]
    lo = min(0.0, float(planted.eps_rev.min()), float(planted.gain.min()))
    hi = float(max(planted.eps_rev.max(), planted.gain.max())) * 1.08
    titles = ("student's training texts", "held-out texts")
    for ax, split, title in zip(axes, ("student-train", "test"), titles, strict=True):
        sub = planted[planted.split == split]
        for (name, g), color in zip(sub.groupby("student", sort=False), colors, strict=False):
            ax.scatter(g.eps_rev, g.gain, s=20, color=color, alpha=0.8, label=name)
        ax.plot([lo, hi], [lo, hi], color="0.3", ls="--", lw=1, label="gain = disagreement")
        ax.axhline(0, color="0.75", lw=0.8)
        ax.set_xlim(lo, hi)
        ax.set_ylim(lo, hi)
        ax.set_title(title, fontsize=10)
        ax.set_xlabel(r"$\mathbb{E}\,KL(F_{sw}\|F_w)$ [nats]")
    axes[0].set_ylabel("exact gain [nats]")
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=2, fontsize=9, bbox_to_anchor=(0.5, 0))
    fig.tight_layout(rect=(0, 0.17, 1, 1))
    return fig


def planted_glue(planted: pd.DataFrame, tol: float = 1e-9) -> dict[str, Any]:
    """Chapter 6, 'On real text (a)': counts, smallest slacks and means per student and split."""
    summary = planted_summary(planted, tol)
    out: dict[str, Any] = {}
    for (student, split), key in (
        (("reverse KL (mixture)", "student-train"), "rev_train"),
        (("reverse KL (mixture)", "test"), "rev_test"),
        (("forward KL (mixture)", "student-train"), "fwd_train"),
        (("forward KL (linear probe)", "student-train"), "probe_train"),
    ):
        row = summary.loc[(student, split)]
        out[f"pl_{key}_below"] = int(row.below_line)
        out[f"pl_{key}_min_slack"] = float(row.min_slack)
        out[f"pl_{key}_gain"] = float(row.gain)
        out[f"pl_{key}_disagreement"] = float(row.eps_rev)
    rev = planted[(planted.student == "reverse KL (mixture)") & (planted.split == "student-train")]
    out["pl_seeds"] = int(planted.seed.nunique())
    out["pl_max_gap"] = float(planted.gap.max())
    out["pl_rev_interior"] = int((rev.min_weight > tol).sum())
    return out


# ------------------------------------------------------------------------------ Gaussian bridge
def gaussian_bridge(f_star: Any, weak: Any, student: Any, sigma: float = 1.0) -> Table:
    """Chapter 6, 'One picture': chapter 5's squared-loss quantities for real outputs ``[N]``
    divided by ``2 sigma^2`` next to the same quantities computed as KL divergences between the
    Gaussians ``N(f(x), sigma^2)`` with ``torch.distributions`` (an independent implementation):
    the two columns agree because ``KL(N(a, s^2) || N(b, s^2)) = (a - b)^2 / (2 s^2)``."""
    from torch.distributions import Normal, kl_divergence

    sq = theory.squared_misfit_gain(weak, student, f_star=f_star)
    fs, fw, fsw = (torch.as_tensor(v, dtype=torch.float64) for v in (f_star, weak, student))

    def gkl(a: torch.Tensor, b: torch.Tensor) -> float:
        return float(kl_divergence(Normal(a, sigma), Normal(b, sigma)).mean())

    g = [gkl(fs, fw), gkl(fs, fsw), gkl(fsw, fw)]
    g.append(g[0] - g[1] - g[2])
    half = 1.0 / (2 * sigma**2)
    df = pd.DataFrame(
        {
            "what": ["teacher's error", "student's error", "disagreement", "slack"],
            "squared": [
                sq.err_weak * half,
                sq.err_student * half,
                sq.misfit_sq * half,
                (sq.err_weak - sq.err_student - sq.misfit_sq) * half,
            ],
            "gauss": g,
        }
    )
    return present_table(
        df,
        {"what": "quantity", "squared": "squared loss / (2σ²)", "gauss": "Gaussian KL"},
        formats={"squared": ".6f", "gauss": ".6f"},
        caption="Chapter 5's set-up read as Gaussians: the two columns are one quantity",
    )
