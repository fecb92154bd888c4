"""Chapter 4's tables, figures and glue values from student trajectories.

The curves pooled over seeds and the peak of the gain are computed by
:func:`w2s_utils.analysis.mean_curves` and :func:`w2s_utils.analysis.peak_table`; here
:func:`curve_frame`, :func:`remedy_table`, :func:`remedy_differences` and :func:`room_checks`
return data frames (intervals from :mod:`w2s_utils.analysis`: over test examples and seeds) and
:func:`plot_curves`, :func:`plot_balance` and :func:`plot_remedies` draw them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch
from matplotlib.figure import Figure

from w2s_utils import analysis, theory
from w2s_utils.book.plots import ROLE_COLORS
from w2s_utils.book.results import fmt_interval, verdict
from w2s_utils.engine.presets import get_preset
from w2s_utils.engine.trajectories import LONG, Trajectory, TrajectoryPoint, floored, select_step

__all__ = [
    "ORACLE",
    "curve_frame",
    "format_peak_table",
    "format_remedy_table",
    "glue_values",
    "remedy_differences",
    "plot_balance",
    "plot_curves",
    "plot_remedies",
    "remedy_table",
    "room_checks",
]

#: Label of the gold-label oracle row of :func:`remedy_table`.
ORACLE = "oracle (gold labels)"
_TEACHER_COLORS = ("#d95f02", "#1b9e77", "#7570b3", "#e7298a", "#66a61e")


def curve_frame(trajectories: Sequence[Trajectory]) -> pd.DataFrame:
    """Every history row of every trajectory with ``dataset, weak, seed, remedy`` columns."""
    frames = []
    for t in trajectories:
        h = t.history.copy()
        c = t.config
        h.insert(0, "remedy", c.remedy)
        h.insert(0, "seed", c.seed)
        h.insert(0, "weak", c.weak)
        h.insert(0, "dataset", c.dataset)
        h["index"] = np.arange(len(h))
        frames.append(h)
    return pd.concat(frames, ignore_index=True)


def _points(t: Trajectory, index: int, method: str) -> TrajectoryPoint:
    p = t.at(index, method)
    p.config = replace(t.config, remedy=method)
    return p


def _selected(
    trajectories: Sequence[Trajectory], preset: str
) -> list[tuple[TrajectoryPoint, float]]:
    g = get_preset(preset).overoptimization
    budget = f"fixed budget ({g.short_epochs:g} epochs)"
    rules = (
        ("long run, last step", "final"),
        ("weak-label early stopping", "weak_early_stop"),
        (budget, "fixed_budget"),
    )
    out = []
    for t in trajectories:
        h = t.history
        if t.config.remedy == LONG:
            for method, rule in rules + ((ORACLE, "oracle"),):
                i = select_step(h, rule, patience=g.patience, budget_epochs=g.short_epochs)
                out.append((_points(t, i, method), float(h["epoch"].iloc[i])))
        else:
            out.append((_points(t, len(h) - 1, t.config.remedy), float(h["epoch"].iloc[-1])))
    return out


def remedy_table(trajectories: Sequence[Trajectory], preset: str = "ci") -> pd.DataFrame:
    """One row per (dataset, teacher, method) for the teachers that have remedy runs.

    Methods: the long run's last step, weak-label early stopping and the fixed shorter budget
    (both read off the long run), each remedy run's last step, and the gold-label oracle (the long
    run's step with the best test accuracy: a reference, optimistic because it selects on the
    test set it is scored on). Columns of :func:`w2s_utils.analysis.paired_table` without the
    seed-only intervals (``acc_student``, ``acc_gain``, ``pgr`` with ``_lo``/``_hi``, ...), the
    CE gain ``CE(F_w) - CE(F_sw)`` as ``ce_gain`` with ``_lo``/``_hi``, ``epoch`` (mean selected
    epoch) and ``ece``/``smooth_ce`` (the mean over seeds of each run's value, no interval: they
    enter no verdict).
    """
    remedies = {t.config.remedy for t in trajectories} - {LONG}
    teachers = {
        (t.config.dataset, t.config.weak) for t in trajectories if t.config.remedy in remedies
    }
    chosen = [
        (p, e)
        for p, e in _selected(trajectories, preset)
        if (p.config.dataset, p.config.weak) in teachers
    ]
    table = analysis.paired_table(
        [p for p, _ in chosen], by=("dataset", "weak", "remedy"), seed_only=False
    ).rename(
        columns={"remedy": "method", "gain": "ce_gain", "gain_lo": "ce_gain_lo",
                 "gain_hi": "ce_gain_hi"}
    )  # fmt: skip
    extra: dict[tuple, dict[str, list[float]]] = {}
    for p, epoch in chosen:
        key = (p.config.dataset, p.config.weak, p.config.remedy)
        d = extra.setdefault(key, {"epoch": [], "ece": [], "smooth_ce": []})
        d["epoch"].append(epoch)
        d["ece"].append(float(p.row["ece"]))
        d["smooth_ce"].append(float(p.row["smooth_ce"]))
    for col in ("epoch", "ece", "smooth_ce"):
        table[col] = [
            float(np.mean(extra[(r["dataset"], r["weak"], r["method"])][col]))
            for _, r in table.iterrows()
        ]
    return table


def remedy_differences(
    trajectories: Sequence[Trajectory],
    preset: str = "ci",
    reference: str = "long run, last step",
) -> pd.DataFrame:
    """Each method of :func:`remedy_table` minus ``reference`` (same teacher, the seeds both
    have, same test examples: paired): the student's accuracy difference ``d_acc`` and CE-gain
    difference ``d_ce_gain`` with intervals over test examples and seeds
    (:func:`w2s_utils.analysis.paired_differences`), and ``verdict_acc``."""
    chosen = [p for p, _ in _selected(trajectories, preset)]
    ref = [p for p in chosen if p.config.remedy == reference]
    methods = list(dict.fromkeys(p.config.remedy for p in chosen if p.config.remedy != reference))
    frames = []
    for method in methods:
        runs = [p for p in chosen if p.config.remedy == method]
        diff = analysis.paired_differences(
            runs, ref, {"d_acc": "correct_student", "d_ce_gain": "gain"}
        )
        frames.append(diff.assign(method=method))
    if not frames:
        return pd.DataFrame()
    out = pd.concat(frames, ignore_index=True)
    bounds = zip(out.d_acc_lo, out.d_acc_hi, strict=True)
    out["verdict_acc"] = [verdict(lo, hi) for lo, hi in bounds]
    return out


def format_remedy_table(table: pd.DataFrame) -> pd.DataFrame:
    """:func:`remedy_table` as readable strings: ``point [lo, hi]`` per column."""
    out = pd.DataFrame({"teacher": table["weak"], "method": table["method"]})
    out["seeds"] = table["n_seeds"]
    out["epoch"] = table["epoch"].map(lambda e: f"{e:.1f}")
    for col, name, signed in (
        ("acc_student", "accuracy", False),
        ("acc_gain", "acc. gain", True),
        ("pgr", "PGR", True),
        ("ce_gain", "CE gain (nats)", True),
    ):
        out[name] = [
            fmt_interval(r[col], r[f"{col}_lo"], r[f"{col}_hi"], signed=signed)
            for _, r in table.iterrows()
        ]
    out["ECE"] = table["ece"].map(lambda v: f"{v:.3f}")
    out["smooth CE"] = table["smooth_ce"].map(lambda v: f"{v:.3f}")
    return out


def format_peak_table(peaks: pd.DataFrame) -> pd.DataFrame:
    """:func:`peak_table` as readable strings (accuracy and CE gains at the peak, at the end, and
    the drop between them, each ``point [lo, hi]``)."""
    out = pd.DataFrame({"teacher": peaks["weak"], "peak epoch": peaks["peak_epoch"]})
    for q, unit in (("acc", "acc."), ("ce", "CE")):
        for col, name in (
            (f"{q}_gain_peak", "gain at peak"),
            (f"{q}_gain_end", "gain at end"),
            (f"{q}_drop", "drop"),
        ):
            out[f"{unit} {name}"] = [
                fmt_interval(r[col], r[f"{col}_lo"], r[f"{col}_hi"], signed=True)
                for _, r in peaks.iterrows()
            ]
    return out


def _slug(text: str) -> str:
    return "".join(ch if ch.isalnum() else "_" for ch in str(text).lower()).strip("_")


def glue_values(
    peaks: pd.DataFrame,
    table: pd.DataFrame,
    diffs: pd.DataFrame,
    checks: pd.DataFrame,
    mean: pd.DataFrame,
) -> dict[str, Any]:
    """The chapter's glued numbers by name (``<teacher slug>_<quantity>``): peak/end gains and
    drops with intervals, memorisation (eps on training vs test texts at the end), the room
    checks, and every method's accuracy gain, PGR and difference from the last step."""
    out: dict[str, Any] = {}
    for _, r in peaks.iterrows():
        w = _slug(r["weak"])
        out[f"{w}_peak_epoch"] = f"{r['peak_epoch']:g}"
        for q in ("acc", "ce"):
            for k in ("peak", "end"):
                c = f"{q}_gain_{k}"
                out[f"{w}_{c}"] = fmt_interval(r[c], r[f"{c}_lo"], r[f"{c}_hi"], signed=True)
            c = f"{q}_drop"
            out[f"{w}_{c}"] = fmt_interval(r[c], r[f"{c}_lo"], r[f"{c}_hi"], signed=True)
            out[f"{w}_{c}_verdict"] = verdict(r[f"{c}_lo"], r[f"{c}_hi"])
    out["n_test_paired"] = int(mean["n_test"].min())
    for w, m in mean.groupby("weak"):
        best = m.loc[m["gain"].idxmax()]
        out[f"{_slug(w)}_ce_gain_best"] = fmt_interval(
            best["gain"], best["gain_lo"], best["gain_hi"], signed=True
        )
        out[f"{_slug(w)}_ce_gain_best_epoch"] = f"{best['epoch']:g}"
        out[f"{_slug(w)}_ce_gain_best_verdict"] = verdict(best["gain_lo"], best["gain_hi"])
        first, last = m.iloc[0], m.iloc[-1]
        for q in ("eps_train", "eps_test", "room", "gamma", "weak_acc", "ceiling_acc", "val_eps"):
            out[f"{_slug(w)}_{q}_end"] = float(last[q])
            out[f"{_slug(w)}_{q}_first"] = float(first[q])
    out["room_holds"] = int(checks["holds"].sum())
    out["room_runs"] = len(checks)
    out["room_share_median"] = float(checks["share_used"].median())
    out["room_share_max"] = float(checks["share_used"].max())
    out["log_room_min"] = float(checks["max_log_room"].min())
    out["gamma_min"] = float(checks["min_gamma"].min())
    for _, r in table.iterrows():
        key = f"{_slug(r['weak'])}_{_slug(r['method'])}"
        out[f"{key}_acc"] = fmt_interval(r["acc_student"], r["acc_student_lo"], r["acc_student_hi"])
        out[f"{key}_pgr"] = fmt_interval(r["pgr"], r["pgr_lo"], r["pgr_hi"], signed=True)
        out[f"{key}_epoch"] = f"{r['epoch']:.1f}"
        out[f"{key}_ece"] = float(r["ece"])
        out[f"{key}_ce_gain"] = fmt_interval(
            r["ce_gain"], r["ce_gain_lo"], r["ce_gain_hi"], signed=True
        )
        out[f"{key}_seeds"] = int(r["n_seeds"])
    for _, r in diffs.iterrows():
        key = f"{_slug(r['weak'])}_{_slug(r['method'])}"
        out[f"{key}_d_acc"] = fmt_interval(r["d_acc"], r["d_acc_lo"], r["d_acc_hi"], signed=True)
        out[f"{key}_d_verdict"] = r["verdict_acc"]
    return out


def room_checks(trajectories: Sequence[Trajectory]) -> pd.DataFrame:
    """:func:`w2s_utils.theory.trajectory_room` on every trajectory's test subset (hard labels):
    whether the measured CE gain stayed inside the label-free room at every step, the largest
    room, the best gain and the share of the room it used at its step."""
    rows = []
    for t in trajectories:
        res = theory.trajectory_room(
            floored(t.weak), torch.stack([floored(p) for p in t.students]), labels=t.labels
        )
        best = res.best_step
        rows.append(
            {
                "dataset": t.config.dataset,
                "weak": t.config.weak,
                "seed": t.config.seed,
                "remedy": t.config.remedy,
                "holds": res.holds,
                "max_room": res.max_room,
                "best_gain": res.best_gain,
                "room_at_best": res.room[best],
                "share_used": res.best_gain / res.room[best] if res.room[best] > 0 else np.nan,
                "max_log_room": max(res.log_room),
                "min_gamma": min(res.gamma),
            }
        )
    return pd.DataFrame(rows)


# ------------------------------------------------------------------------------------ figures


def _colors(levels: Sequence[Any]) -> dict[Any, str]:
    return {lv: _TEACHER_COLORS[i % len(_TEACHER_COLORS)] for i, lv in enumerate(levels)}


def plot_curves(mean: pd.DataFrame) -> Figure:
    """Four panels against epochs, one colour per teacher: test accuracy (weak and ceiling dotted),
    the CE gain with its interval and the label-free room (dashed), eps on the training and test
    texts (log scale), and binned ECE / smooth CE."""
    fig, axes = plt.subplots(1, 4, figsize=(15, 3.6))
    teachers = list(dict.fromkeys(mean["weak"]))
    col = _colors(teachers)
    for w in teachers:
        m = mean[mean["weak"] == w]
        x, c = m["epoch"], col[w]
        ax = axes[0]
        ax.plot(x, m["test_acc"], "-o", ms=3, color=c, label=f"student of {w}")
        ax.fill_between(x, m["test_acc_lo"], m["test_acc_hi"], color=c, alpha=0.15)
        ax.axhline(m["weak_acc"].iloc[0], color=c, ls=":", lw=1)
        ax.axhline(m["ceiling_acc"].iloc[0], color=ROLE_COLORS["ceiling"], ls="--", lw=0.8)
        ax = axes[1]
        ax.plot(x, m["gain"], "-o", ms=3, color=c, label=f"gain ({w})")
        ax.fill_between(x, m["gain_lo"], m["gain_hi"], color=c, alpha=0.15)
        ax.plot(x, m["room"], "--", color=c, lw=1, label=f"room ({w})")
        ax = axes[2]
        ax.plot(x, m["eps_train"], "-o", ms=3, color=c, label=f"training texts ({w})")
        ax.plot(x, m["eps_test"], "--s", ms=3, color=c, label=f"test texts ({w})")
        ax = axes[3]
        ax.plot(x, m["ece"], "-o", ms=3, color=c, label=f"binned ECE ({w})")
        ax.plot(x, m["smooth_ce"], "--s", ms=3, color=c, label=f"smooth CE ({w})")
    axes[1].axhline(0.0, color="grey", lw=0.8)
    axes[2].set_yscale("log")
    titles = (
        "test accuracy (dotted: teacher)",
        "CE gain over the teacher (nats)",
        "eps_t = E KL(weak || student)",
        "student calibration",
    )
    for ax, title in zip(axes, titles, strict=True):
        ax.set_title(title, fontsize=10)
        ax.set_xlabel("epoch")
        ax.legend(fontsize=7)
    fig.tight_layout()
    return fig


def plot_balance(curves: pd.DataFrame, remedy: str = LONG) -> Figure:
    """The "balance" figure: CE gain against eps_t (test texts) along each trajectory of
    ``remedy``, one panel per teacher; each step's vertical bar is the label-free region
    ``[-E max_j l_j, -E min_j l_j]`` in which any ground truth must put the gain."""
    c = curves[curves["remedy"] == remedy]
    teachers = list(dict.fromkeys(c["weak"]))
    fig, axes = plt.subplots(1, len(teachers), figsize=(5.2 * len(teachers), 3.8), squeeze=False)
    for ax, w in zip(axes[0], teachers, strict=True):
        sub = c[c["weak"] == w]
        for j, (s, run) in enumerate(sub.groupby("seed")):
            color = _TEACHER_COLORS[j % len(_TEACHER_COLORS)]
            ax.vlines(run["eps_test"], -run["room_rev"], run["room"], color=color, alpha=0.25, lw=5)
            ax.plot(run["eps_test"], run["gain"], "-o", ms=3, color=color, label=f"seed {s}")
            ax.annotate("start", (run["eps_test"].iloc[0], run["gain"].iloc[0]), fontsize=7)
        ax.axhline(0.0, color="grey", lw=0.8)
        ax.set_xscale("log")
        ax.set_xlabel("eps_t on test texts (nats, log scale)")
        ax.set_ylabel("CE gain over the teacher (nats)")
        ax.set_title(f"teacher {w}: gain inside the label-free region", fontsize=10)
        ax.legend(fontsize=7)
    fig.tight_layout()
    return fig


def plot_remedies(table: pd.DataFrame) -> Figure:
    """Accuracy gain and CE gain over the teacher of each method with its interval (test
    examples x seeds), one row of panels per teacher; the gold-label oracle in grey."""
    teachers = list(dict.fromkeys(zip(table["dataset"], table["weak"], strict=True)))
    fig, axes = plt.subplots(
        len(teachers),
        2,
        figsize=(11, 0.45 * len(table) / max(1, len(teachers)) + 1.6),
        squeeze=False,
    )
    for row, (d, w) in zip(axes, teachers, strict=True):
        sub = table[(table["dataset"] == d) & (table["weak"] == w)].reset_index(drop=True)
        y = np.arange(len(sub))[::-1]
        for ax, q, title in ((row[0], "acc_gain", "accuracy gain"), (row[1], "ce_gain", "CE gain")):
            for yi, (_, r) in zip(y, sub.iterrows(), strict=True):
                color = "grey" if r["method"] == ORACLE else ROLE_COLORS["student"]
                err = [[r[q] - r[f"{q}_lo"]], [r[f"{q}_hi"] - r[q]]]
                ax.errorbar(r[q], yi, xerr=err, fmt="o", color=color, capsize=3)
            ax.axvline(0.0, color="grey", lw=0.8)
            ax.set_yticks(y, sub["method"] if ax is row[0] else [""] * len(sub))
            ax.set_title(f"{title} over teacher {w} ({d})", fontsize=10)
    fig.tight_layout()
    return fig
