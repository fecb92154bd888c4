"""Chapter 5 helpers: tables, figures and glue for misfit-gain under squared loss.

Computing is kept apart from drawing: :func:`text_summary` and :func:`synthetic_summary` make the
tables (with intervals), :func:`gain_misfit_axes` draws gain against misfit with the line
``y = x``. :data:`REFERENCE_TIMING` records the one measurement this chapter cannot repeat on
every build: Charikar et al.'s reference notebook timed on this machine (see
``benchmarks/bench_charikar_reference.py``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from w2s_utils import theory
from w2s_utils.metrics import bootstrap_ci, seeds_and_test_interval

__all__ = [
    "REFERENCE_TIMING",
    "reference_extrapolation",
    "synthetic_summary",
    "text_summary",
    "gain_misfit_axes",
    "gain_misfit_figure",
]

#: Charikar et al.'s reference notebook (github.com/chogba/wtsg-regression, ``wts.ipynb``, its own
#: code run outside this project with this project's torch) with ``num_epochs`` cut from 1,000 to
#: 2: its five training loops (strong and weak representations, weak heads, strong ceiling heads,
#: student heads) took ``seconds`` for ``steps`` AdamW steps (batch 32) on the 2-core development
#: box (torch 2.13.0+cpu, 2 threads, load average 1.0: otherwise idle). Its full
#: run is 1,000 epochs: ``full_steps`` steps. Re-measure with
#: ``python benchmarks/bench_charikar_reference.py --reference /path/to/wts.ipynb``.
REFERENCE_TIMING: dict[str, Any] = {
    "steps": 40_320,
    "seconds": 20.8,
    "full_steps": 20_160_000,
    "measured": "2026-12-01, 2-core CPU box, torch 2.13.0+cpu, load average 1.0",
}


def reference_extrapolation(
    our_seconds: float, timing: Mapping[str, Any] = REFERENCE_TIMING
) -> dict[str, float]:
    """Seconds per step, extrapolated full-run seconds of the reference, and its ratio to ours."""
    if not our_seconds > 0:
        raise ValueError(f"our_seconds: must be > 0, got {our_seconds!r}")
    per_step = float(timing["seconds"]) / float(timing["steps"])
    full = per_step * float(timing["full_steps"])
    return {
        "seconds_per_step": per_step,
        "full_seconds": full,
        "full_hours": full / 3600.0,
        "full_steps": float(timing["full_steps"]),
        "ratio": full / our_seconds,
    }


def synthetic_summary(table: pd.DataFrame) -> pd.DataFrame:
    """Per strong representation: tasks, the share with gain >= misfit, the share with gain > 0,
    the median ratio gain / misfit (with ``ratio_lo``/``ratio_hi``, its 95% percentile bootstrap
    interval over tasks), medians of the relative
    gap ``(gain - misfit) / misfit``, of ``misfit / Var F*`` and ``gain / Var F*``, the ceiling's
    relative error (how far ``F*`` is from the strong class), and the largest train-sample
    ``|gain - misfit| / Var F*`` (0 up to rounding when the class contains ``F*``), and the share
    of tasks with ``gain >= misfit - 2 sqrt(misfit * err_ceiling)`` (the agnostic bound with the
    ceiling's test error standing in for ``approx``)."""
    t = table.assign(
        rel_gap=(table.gain - table.misfit) / table.misfit,
        ratio=table.gain / table.misfit,
        misfit_rel=table.misfit / table.var_target,
        gain_rel=table.gain / table.var_target,
        ceiling_rel=table.err_ceiling / table.var_target,
        weak_rel=table.err_weak / table.var_target,
        train_rel=table.train_slack.abs() / table.var_target,
        agnostic_gap=table.gain - (table.misfit - 2 * np.sqrt(table.misfit * table.err_ceiling)),
    )
    out = t.groupby("strong", sort=False).agg(
        tasks=("task", "size"),
        above=("rel_gap", lambda r: float((r >= 0).mean())),
        gain_positive=("gain_rel", lambda r: float((r > 0).mean())),
        ratio=("ratio", "median"),
        rel_gap=("rel_gap", "median"),
        misfit_rel=("misfit_rel", "median"),
        gain_rel=("gain_rel", "median"),
        ceiling_rel=("ceiling_rel", "median"),
        weak_rel=("weak_rel", "median"),
        train_rel_max=("train_rel", "max"),
        agnostic_above=("agnostic_gap", lambda r: float((r >= 0).mean())),
    )
    for name, grp in t.groupby("strong", sort=False):
        iv = bootstrap_ci(lambda r: r.median(-1).values, grp.ratio.to_numpy(), n_resamples=2000)
        out.loc[name, "ratio_lo"], out.loc[name, "ratio_hi"] = iv.lo, iv.hi
    return out


def text_summary(
    table: pd.DataFrame,
    per_example: Mapping[tuple[str, str, str], Mapping[str, np.ndarray]],
    *,
    n_resamples: int = 2000,
) -> pd.DataFrame:
    """One row per (dataset, task, weak): mean misfit and gain over seeds, and gain - misfit with
    a 95% interval that holds the test set's sampling error and the seeds
    (:func:`w2s_utils.metrics.seeds_and_test_interval` on the per-example gaps).

    ``per_example`` is keyed by (dataset, task, weak), each value holding ``[n_seeds, n_test]``
    arrays ``gap`` (as returned by :func:`w2s_utils.engine.regression.text_regressions`, with
    the dataset added to the key).
    """

    rows = []
    for (ds, task, weak), grp in table.groupby(["dataset", "task", "weak"], sort=False):
        iv = seeds_and_test_interval(per_example[ds, task, weak]["gap"])
        rows.append(
            dict(
                dataset=ds,
                task=task,
                weak=weak,
                seeds=len(grp),
                misfit=float(grp.misfit.mean()),
                gain=float(grp.gain.mean()),
                gap=iv.point,
                gap_lo=iv.lo,
                gap_hi=iv.hi,
                rel_gap=float((grp.gain - grp.misfit).mean() / grp.misfit.mean()),
                train_slack=float(grp.train_slack.abs().max()),
            )
        )
    return pd.DataFrame(rows)


def gain_misfit_axes(
    ax: Any,
    misfit: Sequence[float],
    gain: Sequence[float],
    *,
    label: str | None = None,
    color: str | None = None,
    marker: str = "o",
    size: float = 14,
    line: bool = True,
) -> Any:
    """Scatter ``gain`` (y) against ``misfit`` (x) on ``ax``; ``line`` draws ``y = x`` across the
    axis range (the realizable theorem: points on or above it)."""
    m, g = np.asarray(misfit, float), np.asarray(gain, float)
    ax.scatter(m, g, s=size, alpha=0.7, label=label, color=color, marker=marker, lw=0)
    if line:
        lo = min(0.0, float(np.nanmin(m)), float(np.nanmin(g)))
        hi = max(float(np.nanmax(m)), float(np.nanmax(g)))
        pad = 0.05 * (hi - lo)
        ax.plot([lo - pad, hi + pad], [lo - pad, hi + pad], color="0.3", ls="--", lw=1)
        ax.set_xlim(lo - pad, hi + pad)
        ax.set_ylim(lo - pad, hi + pad)
    ax.set_xlabel(r"misfit $\mathbb{E}(f_{sw} - f_w)^2$")
    ax.set_ylabel(r"gain $\mathbb{E}(f_w - F^\star)^2 - \mathbb{E}(f_{sw} - F^\star)^2$")
    return ax


def gain_misfit_figure(
    panels: Sequence[tuple[str, Sequence[tuple[str, Any, Any]]]], *, width: float = 4.2
) -> Any:
    """One panel per ``(title, [(label, misfit, gain), ...])``, each with its ``y = x`` line."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(panels), figsize=(width * len(panels), 3.9), squeeze=False)
    for ax, (title, series) in zip(axes[0], panels, strict=True):
        allm = np.concatenate([np.asarray(m, float) for _, m, _ in series])
        allg = np.concatenate([np.asarray(g, float) for _, _, g in series])
        for i, (label, m, g) in enumerate(series):
            gain_misfit_axes(ax, m, g, label=label, color=f"C{i}", line=False)
        lo = min(0.0, float(allm.min()), float(allg.min()))
        hi = max(float(allm.max()), float(allg.max()))
        pad = 0.05 * (hi - lo)
        ax.plot([lo - pad, hi + pad], [lo - pad, hi + pad], color="0.3", ls="--", lw=1)
        ax.set_xlim(lo - pad, hi + pad)
        ax.set_ylim(lo - pad, hi + pad)
        ax.set_title(title)
        if len(series) > 1:
            ax.legend(fontsize="small", loc="upper left")
    fig.tight_layout()
    return fig


def trial_table(n_trials: int, kinds: Sequence[str] | None = None) -> pd.DataFrame:
    """:func:`w2s_utils.theory.squared_trial` on seeds ``0 .. n_trials - 1`` of every kind.

    Columns: kind, seed, cls, n, misfit, gain, violation (misfit - gain), violated, and for the
    non-realizable kind the agnostic bound (``agnostic_holds``, ``agnostic_slack``; with the
    projection of ``F*`` onto the class as the best-in-class predictor).
    """

    rows = []
    for kind in kinds or theory.SQUARED_TRIAL_KINDS:
        for seed in range(n_trials):
            t = theory.squared_trial(kind, seed)
            row = dict(
                kind=kind,
                seed=seed,
                cls=t.cls,
                n=len(t.f_star),
                misfit=t.result.misfit_sq,
                gain=t.result.gain,
                violation=t.violation,
                violated=t.violated,
            )
            if kind != "nonconvex":
                best = theory.project_onto_class(t.features, t.f_star, t.cls).predictions
                ag = theory.squared_misfit_gain_agnostic(t.f_star, t.weak, t.student, best)
                row.update(agnostic_holds=ag.holds, agnostic_slack=ag.slack, approx=ag.approx)
            rows.append(row)
    return pd.DataFrame(rows)


def synthetic_panels(table: pd.DataFrame) -> list[tuple[str, list[tuple[str, Any, Any]]]]:
    """Panels for :func:`gain_misfit_figure`: learned ``h_s`` and ``h_s = h*``, errors divided
    by each task's ``Var F*``."""
    titles = {"learned": r"learned $h_s$", "true": r"$h_s = h^\star$ (realizable)"}
    panels = []
    for key, title in titles.items():
        d = table[table.strong == key]
        panels.append((title, [("transfer task", d.misfit / d.var_target, d.gain / d.var_target)]))
    return panels


def text_panels(table: pd.DataFrame) -> list[tuple[str, list[tuple[str, Any, Any]]]]:
    """Panels for :func:`gain_misfit_figure`: planted tasks and gold labels, one series per
    weak representation."""
    panels = []
    for title, mask in (("planted", table.task != "gold"), ("gold labels", table.task == "gold")):
        sub = table[mask]
        series = [(w, g.misfit, g.gain) for w, g in sub.groupby("weak", sort=False)]
        panels.append((title, series))
    return panels
