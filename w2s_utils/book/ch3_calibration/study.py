"""Chapter 3, part 3: the linear-head study over the teacher's knobs, the planted task, the
headline, the exercises and the frame's times."""

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

#: The config fields that define a cell of the linear-head study (chapter 3, part 3).
KNOBS = ("weak", "teacher_n", "label_noise", "teacher_temperature")


# ============================================================================ heads study
def cell_label(weak: str, teacher_n: int, label_noise: float, temperature: Any) -> str:
    """Chapter 3, part 3: a study cell in words, e.g. "MiniLM-L1, 100 ex." or
    "MiniLM-L1, 30% noise, fitted T"."""
    parts = [MODEL_NAMES.get(weak, weak)]
    parts.append("all ex." if int(teacher_n) == 0 else f"{int(teacher_n)} ex.")
    if float(label_noise) > 0:
        parts.append(f"{float(label_noise):.0%} noise")
    if temperature == "fit":
        parts.append("fitted T")
    elif float(temperature) != 1.0:
        parts.append(f"T = {float(temperature):g}")
    return ", ".join(parts)


def _axis_of(row: Mapping[str, Any]) -> str:
    if row["teacher_temperature"] != 1.0 and row["label_noise"] == 0:
        return "temperature"
    if row["label_noise"] > 0:
        return "label noise"
    return "training size / model"


def study_cells(gains: pd.DataFrame, per_run: pd.DataFrame) -> pd.DataFrame:
    """Chapter 3, part 3: one row per study cell: the paired table's gain (with its interval)
    and accuracies, the seed means of the per-run teacher error ``e`` (test CE), student CE,
    smooth CEs and error-aware ends, a label and the knob it varies."""
    means = (
        per_run.groupby(list(KNOBS), sort=False, dropna=False)
        .agg(
            e=("loss_weak", "mean"),
            ce_student=("loss_student", "mean"),
            ce_ceiling=("loss_ceiling", "mean"),
            smce_weak=("smooth_ce_weak", "mean"),
            smce_student=("smooth_ce_student", "mean"),
            ea_lower=("lower", "mean"),
            ea_upper=("upper", "mean"),
            contains=("contains_gain", "mean"),
            free_lower=("free_lower", "mean"),
            free_upper=("free_upper", "mean"),
        )
        .reset_index()
    )
    merged = gains.merge(means, on=list(KNOBS), how="inner", validate="one_to_one")
    merged["label"] = [cell_label(*r) for r in merged[list(KNOBS)].itertuples(index=False)]
    merged["axis"] = [_axis_of(r) for _, r in merged.iterrows()]
    return merged


def study_table(cells: pd.DataFrame) -> Table:
    """Chapter 3, table 'study': per cell the teacher's accuracy and error e, the student's, the
    gain with its interval and the error-aware interval."""
    return present_table(
        cells,
        {
            "label": "Teacher",
            "acc_weak": "Teacher accuracy",
            "acc_student": "Student accuracy",
            "e": "Teacher CE e",
            "ce_student": "Student CE",
            "gain": "Gain (nats)",
            "ea_lower": "Error-aware L(e)",
            "ea_upper": "Error-aware U(e)",
        },
        formats={"gain": "+.3f", "ea_lower": "+.3f", "ea_upper": "+.3f"},
        intervals={"gain": ("gain_lo", "gain_hi")},
        caption="Linear heads on frozen features (rotten_tomatoes, MiniLM-L6 student): means "
        "over seeds, 95% intervals over seeds and test examples",
    )


_AXIS_STYLE = {
    "training size / model": ("o", "#1b9e77"),
    "label noise": ("s", "#d95f02"),
    "temperature": ("D", "#7570b3"),
}


def study_error_figure(
    cells: pd.DataFrame, curves: pd.DataFrame, own_e: Mapping[str, float]
) -> Figure:
    """Chapter 3, figure 'fig-ch3-study-error': (a) the measured gain against the teacher's
    error e with its interval and the error-aware interval [L(e), U(e)] (grey) per cell;
    (b) U(e) and L(e) of three (teacher, student) pairs as functions of the budget e
    (:func:`w2s_utils.theory.error_aware_curve`), with each pair's own e marked."""
    fig, axes = plt.subplots(1, 2, figsize=(7.2, 3.9))
    ax = axes[0]
    ax.vlines(
        cells.e,
        cells.ea_lower,
        cells.ea_upper,
        color="0.75",
        lw=5,
        zorder=1,
        label="error-aware interval",
    )
    for axis, (marker, color) in _AXIS_STYLE.items():
        sub = cells[cells.axis == axis]
        if sub.empty:
            continue
        yerr = np.vstack([sub.gain - sub.gain_lo, sub.gain_hi - sub.gain]).clip(min=0)
        ax.errorbar(
            sub.e,
            sub.gain,
            yerr=yerr,
            fmt=marker,
            color=color,
            ms=5,
            capsize=2,
            label=f"gain: {axis}",
            zorder=3,
        )
    ax.axhline(0, color="0.3", lw=0.8)
    ax.set_xlabel("teacher's test CE e (nats)", fontsize=9)
    ax.set_ylabel("gain = CE(F_w) − CE(F_sw)", fontsize=9)
    ax.set_title("(a) measured gain inside [L(e), U(e)]", fontsize=10)
    ax = axes[1]
    colors = ("#1b9e77", "#d95f02", "#7570b3")
    names = list(dict.fromkeys(curves.name))
    for name, color in zip(names, colors, strict=False):
        c = curves[curves.name == name]
        ax.plot(c.budget, c.upper, color=color, lw=1.6, label=name)
        ax.plot(c.budget, c.lower, color=color, lw=1.6, ls="--")
        ax.axvline(float(own_e[name]), color=color, lw=0.8, ls=":")
    ax.axhline(0, color="0.3", lw=0.8)
    ax.set_xlabel("budget e on the teacher's error (nats)", fontsize=9)
    ax.set_ylabel("U(e) (solid), L(e) (dashed)", fontsize=9)
    ax.set_title("(b) the ends are monotone in e", fontsize=10)
    for a in axes:
        a.tick_params(labelsize=8)
    legend_below(fig, axes, ncol=3)
    fig.tight_layout(rect=(0, 0.14, 1, 1))
    plt.close(fig)  # shown once, as the cell's value (not again by the inline backend)
    return fig


def curves_frame(curves: Mapping[str, Any]) -> pd.DataFrame:
    """Chapter 3, part 3: :func:`w2s_utils.theory.error_aware_curve` results (name -> curve) as
    one tidy frame (``name``, ``budget``, ``lower``, ``upper``) for the figure and the memo."""
    rows = []
    for name, c in curves.items():
        for b, lo, up in zip(c.budgets.tolist(), c.lower.tolist(), c.upper.tolist(), strict=True):
            rows.append({"name": name, "budget": b, "lower": lo, "upper": up})
    return pd.DataFrame(rows)


def study_calibration_figure(cells: pd.DataFrame, changes: pd.DataFrame) -> Figure:
    """Chapter 3, figure 'fig-ch3-study-calibration': (a) the student's smooth CE against its
    teacher's per cell (seed means; y = x dashed); (b) the change student − teacher with its
    interval inside the band ± 2 E|p_sw − p_w| for the calibration cells."""
    fig, axes = plt.subplots(1, 2, figsize=(7.2, 3.9), gridspec_kw={"width_ratios": [1, 1.3]})
    ax = axes[0]
    for axis, (marker, color) in _AXIS_STYLE.items():
        sub = cells[cells.axis == axis]
        ax.scatter(
            sub.smce_weak, sub.smce_student, marker=marker, color=color, s=28, label=axis, zorder=3
        )
    lim = float(max(cells.smce_weak.max(), cells.smce_student.max())) * 1.08
    ax.plot([0, lim], [0, lim], ls="--", color="0.4", lw=1, label="y = x")
    ax.set_xlim(0, lim)
    ax.set_ylim(0, lim)
    ax.set_xlabel("teacher's smooth CE", fontsize=9)
    ax.set_ylabel("student's smooth CE", fontsize=9)
    ax.set_title("(a) every cell (seed means)", fontsize=10)
    ax = axes[1]
    data = changes.assign(
        pair=[
            cell_label(*r).replace(", ", "\n", 1)
            for r in changes[list(KNOBS)].itertuples(index=False)
        ]
    )
    plots.bound_band(
        data,
        x="pair",
        value="smce_change",
        lower="lower_abs",
        upper="upper_abs",
        lo="smce_change_lo",
        hi="smce_change_hi",
        ax=ax,
        xlabel="",
        ylabel="student − teacher smooth CE",
        band_label="band ± 2 E|p_sw − p_w|",
    )
    ax.set_title("(b) calibration cells, with intervals", fontsize=10)
    for a in axes:
        a.tick_params(labelsize=8)
    ax.tick_params(axis="x", labelsize=7)
    legend_below(fig, axes, ncol=3)
    fig.tight_layout(rect=(0, 0.12, 1, 1))
    plt.close(fig)  # shown once, as the cell's value (not again by the inline backend)
    return fig


def _spearman(x: Sequence[float], y: Sequence[float]) -> float:
    rx = pd.Series(list(x)).rank().to_numpy()
    ry = pd.Series(list(y)).rank().to_numpy()
    return float(np.corrcoef(rx, ry)[0, 1])


def study_glue(
    cells: pd.DataFrame,
    changes: pd.DataFrame,
    diffs: pd.DataFrame,
    n_seeds: int,
    n_resamples: int,
    n_runs: int,
) -> dict[str, Any]:
    """Chapter 3, part 3 (the controlled study): counts of decided comparisons, rank
    correlations (descriptions over the cells, not tests) and the headline numbers.

    ``diffs``: one row per paired comparison between cells (``name``, ``point``, ``lo``,
    ``hi``)."""
    q = cells[cells.axis == "training size / model"].sort_values("e")
    out: dict[str, Any] = {
        "st_seeds": int(n_seeds),
        "st_resamples": int(n_resamples),
        "st_runs": int(n_runs),
        "st_cells": len(cells),
        "st_quality_cells": len(q),
        "st_gain_pos": int((cells.gain_lo > 0).sum()),
        "st_gain_neg": int((cells.gain_hi < 0).sum()),
        "st_contains": int((cells.contains >= 1.0).sum()),
        "st_rho_e_gain": _spearman(q.e, q.gain),
        "st_rho_e_ce_student": _spearman(cells.e, cells.ce_student),
        "st_rho_e_width": _spearman(q.e, q.ea_upper - q.ea_lower),
        "st_rho_smce": _spearman(cells.smce_weak, cells.smce_student),
        "st_width_min": float((q.ea_upper - q.ea_lower).min()),
        "st_width_max": float((q.ea_upper - q.ea_lower).max()),
    }
    worst, best = q.iloc[-1], q.iloc[0]
    out["st_worst_label"] = worst.label
    out["st_worst_gain"] = format_interval(worst.gain, worst.gain_lo, worst.gain_hi, "+.3f")
    out["st_worst_e"] = float(worst.e)
    out["st_best_label"] = best.label
    out["st_best_gain"] = format_interval(best.gain, best.gain_lo, best.gain_hi, "+.3f")
    out["st_best_e"] = float(best.e)
    out["st_headline_gain"] = float(worst.gain)
    out["st_chg_cells"] = len(changes)
    out["st_chg_up"] = int((changes.smce_change_lo > 0).sum())
    out["st_chg_down"] = int((changes.smce_change_hi < 0).sum())
    out["st_chg_holds"] = int(changes.all_hold.astype(bool).sum())
    out["st_n_diffs"] = len(diffs)
    for _, d in diffs.iterrows():
        out[f"st_{d['name']}"] = format_interval(d.point, d.lo, d.hi, "+.3f")
        out[f"st_{d['name']}_verdict"] = verdict_words(
            d.lo, d.hi, "raises", "lowers", "does not clearly change"
        )
    return out


# ============================================================================ planted truth
def planted_table(planted: pd.DataFrame) -> Table:
    """Chapter 3, table 'planted': per seed the exact smooth CEs against F*, the change inside the
    band, the ECE check and the error-aware interval with the exact teacher error."""
    return present_table(
        planted,
        {
            "seed": "Seed",
            "smce_weak": "smCE teacher",
            "smce_student": "smCE student",
            "bound_abs": "band 2 E|p(student) − p(teacher)|",
            "ece_weak": "ECE teacher (vs F*)",
            "tv_weak": "E TV(F*, F_w)",
            "err_weak": "Err(F_w)",
            "gain": "Gain (exact)",
            "lower": "L(Err)",
            "upper": "U(Err)",
        },
        formats={
            "seed": "d",
            "gain": "+.4f",
            "lower": "+.4f",
            "upper": "+.4f",
            **{
                c: ".4f"
                for c in (
                    "smce_weak",
                    "smce_student",
                    "bound_abs",
                    "ece_weak",
                    "tv_weak",
                    "err_weak",
                )
            },
        },
        caption="Planted truth: everything against F* itself (no label noise)",
    )


def planted_glue(planted: pd.DataFrame) -> dict[str, Any]:
    """Chapter 3, section 'A planted truth, where nothing is estimated'."""
    change = planted.smce_student - planted.smce_weak
    return {
        "pl_runs": len(planted),
        "pl_holds": int(planted.holds.astype(bool).sum()),
        "pl_ece_checks": int(planted.ece_checks.astype(bool).sum()),
        "pl_contains": int(planted.contains_gain.astype(bool).sum()),
        "pl_smce_weak": float(planted.smce_weak.mean()),
        "pl_smce_student": float(planted.smce_student.mean()),
        "pl_change": float(change.mean()),
        "pl_bound": float(planted.bound_abs.mean()),
        "pl_used": float((change.abs() / planted.bound_abs).mean()),
        "pl_ece_weak": float(planted.ece_weak.mean()),
        "pl_ece_student": float(planted.ece_student.mean()),
        "pl_tv_weak": float(planted.tv_weak.mean()),
        "pl_tv_student": float(planted.tv_student.mean()),
        "pl_err": float(planted.err_weak.mean()),
        "pl_gain": float(planted.gain.mean()),
        "pl_lower": float(planted.lower.mean()),
        "pl_upper": float(planted.upper.mean()),
    }


def planted_frame(
    runs: Sequence[Any],
    bound: pd.DataFrame,
    ece: Mapping[str, pd.DataFrame],
    error_aware: pd.DataFrame,
) -> pd.DataFrame:
    """Chapter 3, part 4: one row per planted run from the sweeps of
    :func:`w2s_utils.theory.calibration_bound` (``bound``), :func:`w2s_utils.theory.ece_bound`
    per role (``ece``) and :func:`w2s_utils.theory.error_aware_interval` (``error_aware``), all
    against F*, in the order of ``runs``."""
    out = pd.DataFrame({"seed": [r.config.seed for r in runs]})
    for c in ("smce_weak", "smce_student", "bound_abs", "bound_eps", "holds"):
        out[c] = bound[c].to_numpy()
    for role, frame in ece.items():
        out[f"ece_{role}"] = frame.ece.to_numpy()
        out[f"tv_{role}"] = frame.mean_tv.to_numpy()
    out["ece_checks"] = np.all([f.holds.to_numpy(dtype=bool) for f in ece.values()], axis=0)
    out["err_weak"] = error_aware.budget.to_numpy()
    for c in ("gain", "lower", "upper", "contains_gain"):
        out[c] = error_aware[c].to_numpy()
    return out


def headline(values: Mapping[str, Any]) -> str:
    """Chapter 3, the frame's main result: one sentence from :func:`study_glue`'s values."""
    return (
        f"A student's smooth calibration error stays within 2 E|p_sw − p_w| of its teacher's; "
        f"in a controlled study with {values['st_seeds']} seeds per cell, the student's gain "
        f"over its teacher falls from {values['st_worst_gain']} nats for the weakest teacher to "
        f"{values['st_best_gain']} for the best, and the sharp error-aware interval for the gain "
        f"narrows with the teacher's error: a better teacher leaves a better student, but less "
        f"room to gain (and to fall)."
    )


def exercise_glue(
    ex4: Any, ex7: Any, e0: float, first3: pd.DataFrame, gains: pd.DataFrame
) -> dict[str, Any]:
    """Chapter 3, solutions 4, 7 and 8: the bin-edge example (a calibration-bound result), the
    error-aware curve at budgets ``[0, e0/2, e0, 2 e0]``, and the gain verdicts of the study on
    its first three seeds (``first3``) against all seeds (``gains``)."""
    up = np.asarray(ex7.upper, dtype=float)
    low = np.asarray(ex7.lower, dtype=float)

    def decided(t: pd.DataFrame) -> int:
        return int(((t.gain_lo > 0) | (t.gain_hi < 0)).sum())

    return {
        "ex4_ece_before": float(ex4.ece_weak),
        "ex4_ece_after": float(ex4.ece_student),
        "ex4_smce_before": float(ex4.smce_weak),
        "ex4_smce_after": float(ex4.smce_student),
        "ex4_band": float(ex4.bound_abs),
        "ex7_eps": float(ex7.eps),
        "ex7_u0": float(up[0]),
        "ex7_l0": float(low[0]),
        "ex7_e0": float(e0),
        "ex7_inc1": float(up[2] - up[1]),
        "ex7_inc2": float(up[3] - up[2]),
        "ex7_ue0": float(up[2]),
        "ex8_decided3": decided(first3),
        "ex8_decided10": decided(gains),
    }


def seconds_text(seconds: float) -> str:
    """A duration for the text ("12 s", "3.4 min"). Chapter 3, time budget."""
    s = float(seconds)
    return f"{s:.0f} s" if s < 120 else f"{s / 60:.1f} min"
