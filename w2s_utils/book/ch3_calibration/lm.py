"""Chapter 3, part 2: the language-model teachers' calibration levels, its change under the student
and the temperature sweep (tables, figures and glued numbers)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from w2s_utils.book import plots
from w2s_utils.book.ch3_calibration.common import (
    MODEL_NAMES,
    legend_below,
    verdict_words,
)
from w2s_utils.book.tables import Table, format_interval, present_table

_ROLE_NAMES = {"weak": "teacher", "student": "student", "ceiling": "ceiling"}


# ============================================================================ LM part 1
def _levels_wide(levels: pd.DataFrame) -> pd.DataFrame:
    wide = levels.pivot_table(
        index=["dataset", "weak", "role"],
        columns="metric",
        values=["value", "lo", "hi"],
        sort=False,
    )
    out = pd.DataFrame(index=wide.index)
    for m in ("accuracy", "ce", "smooth_ce", "ece"):
        for part in ("value", "lo", "hi"):
            out[f"{m}_{part}"] = wide[(part, m)]
    return out.reset_index()


def levels_table(levels: pd.DataFrame) -> Table:
    """Chapter 3, table 'LM levels': accuracy, test cross-entropy, smooth CE and binned ECE of
    teacher, student and ceiling per dataset and teacher (of
    :func:`w2s_utils.analysis.calibration_table`), each with its interval."""
    t = _levels_wide(levels)
    t["role"] = t.role.map(_ROLE_NAMES)
    t["weak"] = t.weak.map(lambda w: MODEL_NAMES.get(w, w))
    return present_table(
        t,
        {
            "dataset": "Dataset",
            "weak": "Teacher model",
            "role": "Predictor",
            "accuracy_value": "Accuracy",
            "ce_value": "Test CE (nats)",
            "smooth_ce_value": "Smooth CE",
            "ece_value": "Binned ECE",
        },
        formats={c: ".3f" for c in ("accuracy_value", "ce_value", "smooth_ce_value", "ece_value")},
        intervals={
            "accuracy_value": ("accuracy_lo", "accuracy_hi"),
            "smooth_ce_value": ("smooth_ce_lo", "smooth_ce_hi"),
            "ece_value": ("ece_lo", "ece_hi"),
        },
        caption="Language-model runs of chapter 1: means over seeds with 95% intervals over "
        "seeds and test examples",
    )


def levels_glue(
    levels: pd.DataFrame, per_run: pd.DataFrame, band: pd.DataFrame, n_resamples: int
) -> dict[str, Any]:
    """Chapter 3, section 'Language models, part 1' (levels, the change inside the band)."""
    t = _levels_wide(levels)
    sm = t.set_index(["dataset", "weak", "role"])
    out: dict[str, Any] = {"lm_resamples": int(n_resamples), "lm_runs": len(per_run)}
    for role in ("weak", "student", "ceiling"):
        sub = sm.xs(role, level="role")
        out[f"lm_smce_{role}"] = float(sub.smooth_ce_value.mean())
        out[f"lm_ece_{role}"] = float(sub.ece_value.mean())
    teach = sm.xs("weak", level="role")
    best = teach.smooth_ce_value.idxmin()
    out["lm_best_teacher"] = f"{MODEL_NAMES.get(best[1], best[1])} on {best[0]}"
    ceiling_best = 0
    for _, g in t.groupby(["dataset", "weak"], sort=False):
        vals = g.set_index("role").smooth_ce_value
        ceiling_best += int(vals["ceiling"] < min(vals["weak"], vals["student"]))
    out["lm_ceiling_best"] = ceiling_best
    out["lm_pairs"] = len(band)
    worse = band[band.smce_change > 0]
    out["lm_worse"] = len(worse)
    out["lm_worse_which"] = (
        ", ".join(
            f"{MODEL_NAMES.get(w, w)} on {d}"
            for d, w in zip(worse.dataset, worse.weak, strict=True)
        )
        or "none"
    )
    sig_up = band.smce_change_lo > 0
    sig_down = band.smce_change_hi < 0
    out["lm_sig_up"] = int(sig_up.sum())
    out["lm_sig_down"] = int(sig_down.sum())
    out["lm_holds"] = int(per_run.holds.astype(bool).sum())
    out["lm_used_median"] = float(per_run.used.median())
    out["lm_used_max"] = float(per_run.used.max())
    out["lm_bound_median"] = float(per_run.bound_abs.median())
    out["lm_bound_eps_median"] = float(per_run.bound_eps.median())
    out["lm_ece_out"] = int((band.ece_change.abs() > band.bound_abs).sum())
    return out


def reliability_figure(curves: Mapping[tuple[str, str], Mapping[str, Any]]) -> Figure:
    """Chapter 3, figure 'fig-ch3-reliability': top-label reliability diagrams of teacher,
    student and ceiling per (dataset, teacher), one legend under the panels."""
    ds_list = list(dict.fromkeys(d for d, _ in curves))
    weak_list = list(dict.fromkeys(w for _, w in curves))
    fig, axes = plt.subplots(
        len(ds_list), len(weak_list), squeeze=False, figsize=(7.2, 2.55 * len(ds_list) + 0.6)
    )
    for (ds, weak), cell in curves.items():
        ax = axes[ds_list.index(ds), weak_list.index(weak)]
        plots.reliability_diagram(dict(cell), ax=ax, xlabel="", ylabel="")
        ax.set_xlim(0.45, 1.0)
        ax.set_ylim(0.2, 1.0)
        ax.set_aspect("auto")
        ax.set_title(f"{ds}, teacher {MODEL_NAMES.get(weak, weak)}", fontsize=9)
        ax.tick_params(labelsize=8)
    for ax in axes[-1]:
        ax.set_xlabel("top-label confidence", fontsize=9)
    for ax in axes[:, 0]:
        ax.set_ylabel("accuracy", fontsize=9)
    legend_below(fig, axes.ravel(), ncol=4)
    fig.tight_layout(rect=(0, 0.06, 1, 1))
    plt.close(fig)  # shown once, as the cell's value (not again by the inline backend)
    return fig


def change_figure(band: pd.DataFrame) -> Figure:
    """Chapter 3, figure 'fig-ch3-change': the student's change of smooth CE and binned ECE
    (student minus teacher, with the paired interval) inside the band ± 2 E|p_sw − p_w|."""
    long = pd.concat(
        [
            band.assign(
                quantity="smooth CE",
                change=band.smce_change,
                lo=band.smce_change_lo,
                hi=band.smce_change_hi,
            ),
            band.assign(
                quantity="binned ECE",
                change=band.ece_change,
                lo=band.ece_change_lo,
                hi=band.ece_change_hi,
            ),
        ]
    )
    long["pair"] = [
        f"{d}\n{MODEL_NAMES.get(w, w)}" for d, w in zip(long.dataset, long.weak, strict=True)
    ]
    fig, ax = plt.subplots(figsize=(7.2, 3.9))
    plots.bound_band(
        long,
        x="pair",
        value="change",
        lower="lower_abs",
        upper="upper_abs",
        lo="lo",
        hi="hi",
        hue="quantity",
        ax=ax,
        xlabel="",
        ylabel="student − teacher",
        band_label="band ± 2 E|p_sw − p_w|",
    )
    ax.tick_params(axis="x", labelsize=8)
    legend_below(fig, [ax], ncol=3)
    fig.tight_layout(rect=(0, 0.08, 1, 1))
    plt.close(fig)  # shown once, as the cell's value (not again by the inline backend)
    return fig


# ============================================================================ LM part 2
def temperature_table(sweep: pd.DataFrame, t_fit: float) -> Table:
    """Chapter 3, table 'LM temperatures': teacher and student smooth CE, binned ECE and
    accuracy per teacher temperature (of :func:`w2s_utils.analysis.temperature_sweep`)."""
    rows = []
    for lab, g in sweep.groupby("temperature", sort=False):
        v = g.set_index(["role", "metric"])
        row = {"temperature": lab if lab != "fitted T" else f"fitted (T ≈ {t_fit:.2f})"}
        for role in ("weak", "student", "change"):
            for m in ("smooth_ce", "ece", "accuracy"):
                for part in ("value", "lo", "hi"):
                    row[f"{role}_{m}_{part}"] = float(v.loc[(role, m), part])
        rows.append(row)
    t = pd.DataFrame(rows)
    return present_table(
        t,
        {
            "temperature": "Teacher",
            "weak_smooth_ce_value": "Teacher smooth CE",
            "student_smooth_ce_value": "Student smooth CE",
            "change_smooth_ce_value": "Change (student − teacher)",
            "weak_ece_value": "Teacher ECE",
            "student_ece_value": "Student ECE",
            "student_accuracy_value": "Student accuracy",
        },
        formats={"change_smooth_ce_value": "+.3f"},
        intervals={
            "weak_smooth_ce_value": ("weak_smooth_ce_lo", "weak_smooth_ce_hi"),
            "student_smooth_ce_value": ("student_smooth_ce_lo", "student_smooth_ce_hi"),
            "change_smooth_ce_value": ("change_smooth_ce_lo", "change_smooth_ce_hi"),
            "student_accuracy_value": ("student_accuracy_lo", "student_accuracy_hi"),
        },
        caption="Tempered teachers and their students (means over seeds, 95% intervals over "
        "seeds and test examples)",
    )


def temperature_figure(sweep: pd.DataFrame, t_fit: float) -> Figure:
    """Chapter 3, figure 'fig-ch3-temperature': teacher and student smooth CE and accuracy
    against the teacher's temperature (log axis; the fitted temperature marked at its mean)."""
    data = sweep[sweep.role != "change"].copy()
    data.loc[data.temperature == "fitted T", "t"] = t_fit
    fig, axes = plt.subplots(1, 2, figsize=(7.2, 3.5))
    for ax, (metric, label) in zip(
        axes, (("smooth_ce", "smooth CE"), ("accuracy", "accuracy")), strict=True
    ):
        sub = data[(data.metric == metric) & (data.temperature != "fitted T")]
        plots.band_plot(
            sub,
            x="t",
            y="value",
            lo="lo",
            hi="hi",
            hue="role",
            ax=ax,
            logx=True,
            xlabel="teacher temperature T",
            ylabel=label,
        )
        fit = data[(data.metric == metric) & (data.temperature == "fitted T")]
        for _, r in fit.iterrows():
            ax.errorbar(
                [r.t],
                [r.value],
                yerr=[[r.value - r.lo], [r.hi - r.value]],
                fmt="*",
                ms=11,
                capsize=3,
                color=plots.ROLE_COLORS[r.role],
                label=f"{r.role}, fitted T",
            )
        ax.set_xticks([0.5, 1, 2])
        ax.set_xticklabels(["0.5", "1", "2"])
        ax.tick_params(labelsize=8)
    legend_below(fig, axes, ncol=4)
    fig.tight_layout(rect=(0, 0.1, 1, 1))
    plt.close(fig)  # shown once, as the cell's value (not again by the inline backend)
    return fig


def temperature_glue(
    sweep: pd.DataFrame,
    t_fit: Sequence[float],
    diffs: pd.DataFrame,
    runs: Mapping[Any, Sequence[Any]],
    grid_text: str,
    val_n: int,
) -> dict[str, Any]:
    """Chapter 3, section 'Language models, part 2' (the tempered teachers).

    ``diffs``: one row per comparison (``name``, ``point``, ``lo``, ``hi``) of the fitted
    temperature against T = 1 (teacher and student smooth CE, student accuracy) and of T = 0.5
    against T = 1."""
    v = sweep.set_index(["temperature", "role", "metric"])
    first = next(iter(runs.values()))[0].config
    out: dict[str, Any] = {
        "tw_dataset": first.dataset,
        "tw_weak": MODEL_NAMES.get(first.weak, first.weak),
        "tw_fit_mean": float(np.mean(t_fit)),
        "tw_fit_min": float(np.min(t_fit)),
        "tw_fit_max": float(np.max(t_fit)),
        "tw_calib_direction": "under-confident" if np.mean(t_fit) < 1 else "over-confident",
        "tw_sharpen_flatten": "sharpens" if np.mean(t_fit) < 1 else "flattens",
        "tw_grid": grid_text,
        "tw_runs": sum(len(r) for r in runs.values()),
        "tw_new": sum(not r.cached for rs in runs.values() for r in rs),
        "tw_val_n": int(val_n),
        "tw_seeds": len(next(iter(runs.values()))),
    }
    for lab in ("T = 0.5", "T = 1", "T = 2", "fitted T"):
        key = {"T = 0.5": "0p5", "T = 1": "1", "T = 2": "2", "fitted T": "fit"}[lab]
        for role in ("weak", "student"):
            out[f"tw_{key}_{role}_smce"] = float(v.loc[(lab, role, "smooth_ce"), "value"])
    for _, d in diffs.iterrows():
        out[f"tw_{d['name']}"] = format_interval(d.point, d.lo, d.hi, "+.3f")
        words = ("raises", "lowers", "does not clearly change")
        out[f"tw_{d['name']}_verdict"] = verdict_words(d.lo, d.hi, *words)
    return out
