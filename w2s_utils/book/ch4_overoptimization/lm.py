"""Chapter 4, on language models: the students' trajectories, the early-stopping remedies and their
differences, the peaks, the exercises and the frame's cached pieces."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from w2s_utils import analysis, metrics
from w2s_utils.book.ch4_overoptimization.common import TEACHER_COLORS, WIDTH, slug
from w2s_utils.book.plots import ROLE_COLORS
from w2s_utils.book.results import verdict
from w2s_utils.book.tables import Table, format_interval, present_table
from w2s_utils.engine import cache
from w2s_utils.engine.overfitting import OverfittingCurves, PopulationProjection, curves_key
from w2s_utils.engine.presets import OveroptimizationGrid
from w2s_utils.engine.trajectories import (
    LONG,
    Trajectory,
    TrajectoryPoint,
    floored,
    select_step,
    trajectory_key,
)

#: Labels of the language-model selection rules (rows of :func:`remedy_table`).
LAST = "long run, last step"
ORACLE = "gold-label oracle (other half)"
HINDSIGHT = "best step in hindsight"


# ---------------------------------------------------------------- the language-model runs


def curve_frame(trajectories: Sequence[Trajectory]) -> pd.DataFrame:
    """Chapter 4, figure "fig-ch4-balance": every history row of every trajectory with
    ``dataset, weak, seed, remedy`` columns and the row's position ``index``."""
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


def _point(t: Trajectory, index: int, method: str) -> TrajectoryPoint:
    p = t.at(index, method)
    p.config = replace(t.config, remedy=method)
    return p


def _oracle_point(t: Trajectory) -> tuple[TrajectoryPoint, float]:
    """The long run's student picked by gold test accuracy on the *other* half of the test
    examples (cross-fitted: every example is scored at a step chosen without it)."""
    correct = (t.students.argmax(-1) == t.labels[None]).astype(np.float64)  # [T, N]
    steps = analysis.crossfit_best_steps(correct, folds=2)
    p = _point(t, 0, ORACLE)
    p.student = t.students[steps, np.arange(len(steps))].astype(np.float64)
    epochs = t.history["epoch"].to_numpy()[steps]
    return p, float(epochs.mean())


def selected_points(
    trajectories: Sequence[Trajectory], grid: OveroptimizationGrid
) -> list[tuple[TrajectoryPoint, float]]:
    """Chapter 4, remedy table: the student each method returns, with its (mean) epoch.

    From every long run: the last step, weak-label early stopping (``grid.patience``), the fixed
    budget (``grid.short_epochs``), the gold-label oracle cross-fitted on two halves of the test
    examples, and the best step in hindsight (gold test accuracy on the very examples it is
    scored on: optimistic, shown to measure that optimism); from every remedy run its last step.
    """
    budget = f"fixed budget ({grid.short_epochs:g} epochs)"
    rules = ((LAST, "final"), ("weak-label early stopping", "weak_early_stop"),
             (budget, "fixed_budget"), (HINDSIGHT, "oracle"))  # fmt: skip
    out = []
    for t in trajectories:
        h = t.history
        if t.config.remedy != LONG:
            out.append((_point(t, len(h) - 1, t.config.remedy), float(h["epoch"].iloc[-1])))
            continue
        for method, rule in rules:
            i = select_step(h, rule, patience=grid.patience, budget_epochs=grid.short_epochs)
            out.append((_point(t, i, method), float(h["epoch"].iloc[i])))
        out.append(_oracle_point(t))
    return out


def remedy_table(points: Sequence[tuple[TrajectoryPoint, float]]) -> pd.DataFrame:
    """Chapter 4, table of the language-model remedies: one row per (dataset, teacher, method)
    of :func:`selected_points`, with the columns of :func:`w2s_utils.analysis.paired_table`
    (intervals over test examples and seeds; none with one seed), the CE gain as ``ce_gain``,
    the mean selected ``epoch`` and the mean over seeds of the binned ``ece``
    (:func:`w2s_utils.metrics.ece`)."""
    table = analysis.paired_table(
        [p for p, _ in points], by=("dataset", "weak", "remedy"), seed_only=False
    ).rename(columns={"remedy": "method", "gain": "ce_gain", "gain_lo": "ce_gain_lo",
                      "gain_hi": "ce_gain_hi"})  # fmt: skip
    extra: dict[tuple, dict[str, list[float]]] = {}
    for p, epoch in points:
        d = extra.setdefault((p.config.dataset, p.config.weak, p.config.remedy),
                             {"epoch": [], "ece": []})  # fmt: skip
        d["epoch"].append(epoch)
        d["ece"].append(float(metrics.ece(floored(p.student), p.labels)))
    for col in ("epoch", "ece"):
        table[col] = [
            float(np.mean(extra[(r["dataset"], r["weak"], r["method"])][col]))
            for _, r in table.iterrows()
        ]
    return table


def remedy_differences(
    points: Sequence[tuple[TrajectoryPoint, float]], reference: str = LAST
) -> pd.DataFrame:
    """Chapter 4, LM remedies: each method of :func:`selected_points` minus ``reference`` (same
    teacher, the seeds both have, same test examples: paired), accuracy ``d_acc`` and CE gain
    ``d_ce_gain`` with intervals (:func:`w2s_utils.analysis.paired_differences`) and
    ``verdict_acc``."""
    chosen = [p for p, _ in points]
    ref = [p for p in chosen if p.config.remedy == reference]
    methods = list(dict.fromkeys(p.config.remedy for p in chosen if p.config.remedy != reference))
    frames = []
    for method in methods:
        runs = [p for p in chosen if p.config.remedy == method]
        diff = analysis.paired_differences(
            runs, ref, {"d_acc": "correct_student", "d_ce_gain": "gain"}
        )
        frames.append(diff.assign(method=method))
    out = pd.concat(frames, ignore_index=True)
    out["verdict_acc"] = [
        verdict(lo, hi) for lo, hi in zip(out.d_acc_lo, out.d_acc_hi, strict=True)
    ]
    return out


def present_lm_remedies(table: pd.DataFrame) -> Table:
    """Chapter 4, table of the language-model remedies (:func:`remedy_table`)."""
    return present_table(
        table,
        {
            "weak": "teacher",
            "method": "method",
            "n_seeds": "seeds",
            "epoch": "epoch",
            "acc_student": "accuracy",
            "acc_gain": "accuracy gain",
            "ce_gain": "CE gain (nats)",
            "ece": "binned ECE",
        },
        formats={
            "epoch": ".1f",
            "acc_student": ".3f",
            "acc_gain": "+.3f",
            "ce_gain": "+.3f",
            "ece": ".3f",
        },  # fmt: skip
        intervals={
            "acc_student": ("acc_student_lo", "acc_student_hi"),
            "acc_gain": ("acc_gain_lo", "acc_gain_hi"),
            "ce_gain": ("ce_gain_lo", "ce_gain_hi"),
        },
        missing="n/a (one seed)",
    )


def present_peaks(peaks: pd.DataFrame) -> Table:
    """Chapter 4, table "where the gain peaks" (:func:`w2s_utils.analysis.peak_table`)."""
    return present_table(
        peaks,
        {
            "weak": "teacher",
            "peak_epoch": "peak epoch",
            "acc_gain_peak": "acc. gain at peak",
            "acc_gain_end": "acc. gain at end",
            "acc_drop": "acc. drop",
            "ce_gain_peak": "CE gain at peak",
            "ce_gain_end": "CE gain at end",
            "ce_drop": "CE drop",
        },
        formats={
            "peak_epoch": ".0f",
            **{
                c: "+.3f"
                for c in (
                    "acc_gain_peak",
                    "acc_gain_end",
                    "acc_drop",
                    "ce_gain_peak",
                    "ce_gain_end",
                    "ce_drop",
                )
            },
        },  # fmt: skip
        intervals={
            c: (f"{c}_lo", f"{c}_hi")
            for c in (
                "acc_gain_peak",
                "acc_gain_end",
                "acc_drop",
                "ce_gain_peak",
                "ce_gain_end",
                "ce_drop",
            )  # fmt: skip
        },
    )


def lm_glue(
    peaks: pd.DataFrame,
    mean: pd.DataFrame,
    checks: pd.DataFrame,
    table: pd.DataFrame,
    diffs: pd.DataFrame,
) -> dict[str, Any]:
    """Chapter 4, section "The language-model runs": glued numbers by name
    (``<teacher slug>_<quantity>``): peak/end gains and drops, the misfit on training and test
    texts at the first and last evaluation, the room checks, every method's numbers and its
    difference from the last step."""
    out: dict[str, Any] = {}
    for _, r in peaks.iterrows():
        w = slug(r["weak"])
        out[f"{w}_peak_epoch"] = f"{r['peak_epoch']:g}"
        for q in ("acc", "ce"):
            for k in ("peak", "end"):
                c = f"{q}_gain_{k}"
                out[f"{w}_{c}"] = format_interval(r[c], r[f"{c}_lo"], r[f"{c}_hi"], "+.3f")
            c = f"{q}_drop"
            out[f"{w}_{c}"] = format_interval(r[c], r[f"{c}_lo"], r[f"{c}_hi"], "+.3f")
            out[f"{w}_{c}_verdict"] = verdict(r[f"{c}_lo"], r[f"{c}_hi"])
    out["n_test_paired"] = int(mean["n_test"].min())
    for w, m in mean.groupby("weak"):
        best = m.loc[m["gain"].idxmax()]
        out[f"{slug(w)}_ce_gain_best"] = format_interval(
            best["gain"], best["gain_lo"], best["gain_hi"], "+.3f"
        )
        out[f"{slug(w)}_ce_gain_best_epoch"] = f"{best['epoch']:g}"
        out[f"{slug(w)}_ce_gain_best_verdict"] = verdict(best["gain_lo"], best["gain_hi"])
        first, last = m.iloc[0], m.iloc[-1]
        for q in ("eps_train", "eps_test", "room", "val_eps"):
            out[f"{slug(w)}_{q}_end"] = float(last[q])
            out[f"{slug(w)}_{q}_first"] = float(first[q])
    out["room_holds"] = int(checks["holds"].sum())
    out["room_runs"] = len(checks)
    out["room_share_median"] = float(checks["share_used"].median())
    out["room_share_max"] = float(checks["share_used"].max())
    out["log_room_min"] = float(checks["max_log_room"].min())
    out["gamma_min"] = float(checks["min_gamma"].min())
    for _, r in table.iterrows():
        key = f"{slug(r['weak'])}_{slug(r['method'])}"
        out[f"{key}_acc"] = format_interval(
            r["acc_student"], r["acc_student_lo"], r["acc_student_hi"]
        )
        out[f"{key}_epoch"] = f"{r['epoch']:.1f}"
        out[f"{key}_ece"] = float(r["ece"])
        out[f"{key}_ce_gain"] = format_interval(
            r["ce_gain"], r["ce_gain_lo"], r["ce_gain_hi"], "+.3f"
        )
        out[f"{key}_seeds"] = int(r["n_seeds"])
    for _, r in diffs.iterrows():
        key = f"{slug(r['weak'])}_{slug(r['method'])}"
        out[f"{key}_d_acc"] = format_interval(r["d_acc"], r["d_acc_lo"], r["d_acc_hi"], "+.3f")
        out[f"{key}_d_ce"] = format_interval(
            r["d_ce_gain"], r["d_ce_gain_lo"], r["d_ce_gain_hi"], "+.3f"
        )
        out[f"{key}_d_verdict"] = r["verdict_acc"]
    for w, d in diffs.groupby("weak"):
        rules = d[d["method"].isin([ORACLE, HINDSIGHT, "weak-label early stopping"])
                  | d["method"].str.startswith("fixed budget")]  # fmt: skip
        apart = [m for m, v in zip(rules["method"], rules["verdict_acc"], strict=True)
                 if v != "not distinguishable from"]  # fmt: skip
        out[f"{slug(w)}_rules_summary"] = (
            "none of these rules is distinguishable from the last step in accuracy"
            if not apart
            else "distinguishable from the last step in accuracy: " + ", ".join(apart)
        )
    return out


def _colors(levels: Sequence[Any]) -> dict[Any, str]:
    return {lv: TEACHER_COLORS[i % len(TEACHER_COLORS)] for i, lv in enumerate(levels)}


def plot_curves(mean: pd.DataFrame) -> Figure:
    """Chapter 4, figure "fig-ch4-lm-curves": four panels against epochs, one colour per teacher:
    test accuracy (teacher dotted), the CE gain with its interval and the label-free room
    (dashed), the misfit on training and test texts (log scale), and the binned ECE."""
    fig, axes = plt.subplots(2, 2, figsize=(WIDTH, 6.2), sharex=True)
    teachers = list(dict.fromkeys(mean["weak"]))
    col = _colors(teachers)
    acc, gain, eps, cal = axes.ravel()
    for w in teachers:
        m = mean[mean["weak"] == w]
        x, c = m["epoch"], col[w]
        acc.plot(x, m["test_acc"], "-o", ms=3, color=c, label=f"student of {w}")
        acc.fill_between(x, m["test_acc_lo"], m["test_acc_hi"], color=c, alpha=0.15, lw=0)
        acc.axhline(m["weak_acc"].iloc[0], color=c, ls=":", lw=1.2)
        gain.plot(x, m["gain"], "-o", ms=3, color=c, label=f"gain, {w}")
        gain.fill_between(x, m["gain_lo"], m["gain_hi"], color=c, alpha=0.15, lw=0)
        gain.plot(x, m["room"], "--", color=c, lw=1.2, label=f"room, {w}")
        eps.plot(x, m["eps_train"], "-o", ms=3, color=c, label=f"training texts, {w}")
        eps.plot(x, m["eps_test"], "--s", ms=3, color=c, label=f"test texts, {w}")
        cal.plot(x, m["ece"], "-o", ms=3, color=c, label=f"student of {w}")
    acc.axhline(mean["ceiling_acc"].iloc[0], color=ROLE_COLORS["ceiling"], ls="--", lw=1,
                label="ceiling (gold labels)")  # fmt: skip
    gain.axhline(0.0, color="grey", lw=0.8)
    eps.set_yscale("log")
    titles = ("test accuracy (dotted: teacher)", "CE gain over the teacher (nats)",
              "misfit E KL(F_w || F_t) (nats)", "binned ECE of the student")  # fmt: skip
    places = ("lower right", "center right", "upper right", "upper right")
    for ax, title, where in zip(axes.ravel(), titles, places, strict=True):
        ax.set_title(title, fontsize=10)
        ax.legend(fontsize=8, loc=where)
    for ax in axes[1]:
        ax.set_xlabel("epoch")
    fig.tight_layout()
    return fig


def plot_balance(curves: pd.DataFrame, remedy: str = LONG) -> Figure:
    """Chapter 4, figure "fig-ch4-balance": CE gain against the misfit on test texts along each
    run of ``remedy``, one panel per teacher; each step's bar is the label-free region
    ``[gain_lower, room]`` in which every ground truth must put the gain."""
    c = curves[curves["remedy"] == remedy]
    teachers = list(dict.fromkeys(c["weak"]))
    fig, axes = plt.subplots(1, len(teachers), figsize=(WIDTH, 3.6), squeeze=False, sharey=True)
    for ax, w in zip(axes[0], teachers, strict=True):
        sub = c[c["weak"] == w]
        for j, (s, run) in enumerate(sub.groupby("seed")):
            color = TEACHER_COLORS[j % len(TEACHER_COLORS)]
            ax.vlines(run["eps_test"], run["gain_lower"], run["room"], color=color, alpha=0.25,
                      lw=5)  # fmt: skip
            ax.plot(run["eps_test"], run["gain"], "-o", ms=3, color=color, label=f"seed {s}")
            ax.plot(run["eps_test"].iloc[:1], run["gain"].iloc[:1], "k*", ms=8)
        ax.axhline(0.0, color="grey", lw=0.8)
        ax.set_xlabel("misfit on test texts (nats)")
        ax.set_title(f"teacher {w}", fontsize=10)
        ax.legend(fontsize=8, loc="upper right")
    axes[0][0].set_ylabel("CE gain over the teacher (nats)")
    fig.tight_layout()
    return fig


def plot_remedies(table: pd.DataFrame) -> Figure:
    """Chapter 4, figure "fig-ch4-lm-remedies": accuracy gain and CE gain over the teacher of each
    method with its interval (test examples x seeds); references (oracle, hindsight) in grey."""
    fig, axes = plt.subplots(1, 2, figsize=(WIDTH, 0.42 * len(table) + 1.3), sharey=True)
    y = np.arange(len(table))[::-1]
    for ax, q, title in ((axes[0], "acc_gain", "accuracy gain"), (axes[1], "ce_gain", "CE gain")):
        for yi, (_, r) in zip(y, table.iterrows(), strict=True):
            grey = r["method"] in (ORACLE, HINDSIGHT)
            lo, hi = r[f"{q}_lo"], r[f"{q}_hi"]
            err = None if not np.isfinite(lo) else [[r[q] - lo], [hi - r[q]]]
            ax.errorbar(r[q], yi, xerr=err, fmt="o", capsize=3,
                        color="grey" if grey else ROLE_COLORS["student"])  # fmt: skip
        ax.axvline(0.0, color="grey", lw=0.8)
        ax.set_title(f"{title} over the teacher", fontsize=10)
    axes[0].set_yticks(y, list(table["method"]))
    fig.tight_layout()
    return fig


def exercise_glue(
    curves: OverfittingCurves, rules: pd.DataFrame, population: PopulationProjection
) -> dict[str, Any]:
    """Chapter 4, the computational exercise of section 4 (a tilted teacher): its error, the
    mean curve's peak and its share of that error, the gains trained to the end and stopped on
    held-out weak labels (``rules`` from :func:`w2s_utils.analysis.compare_selected` with rows
    ``final`` and ``weak_early_stop``), and the population student's gain."""
    mean = curves.mean_gain()
    err = float(curves.err_weak.mean())
    r = rules.set_index("method")
    return {
        "ex5_err_weak": err,
        "ex5_peak": float(mean.max()),
        "ex5_share": float(mean.max() / err),
        "ex5_end": format_interval(*r.loc["final", ["value", "value_lo", "value_hi"]], "+.3f"),
        "ex5_weak_es": format_interval(
            *r.loc["weak_early_stop", ["value", "value_lo", "value_hi"]], "+.3f"
        ),
        "ex5_pop_gain": float(curves.population_gain.mean()),
        "ex5_pop_share": population.gain / population.err_weak,
    }


def lm_setting_glue(
    grid: OveroptimizationGrid, trajectories: Sequence[Trajectory]
) -> dict[str, Any]:
    """Chapter 4, section 5: the settings of the language-model runs (from the preset's resolved
    grid) and how many runs there are."""
    aux = [f"{r.alpha_max:g}" for r in grid.remedies if r.loss == "aux_conf"]
    return {
        "n_runs": len(trajectories),
        "n_student": grid.student_train,
        "epochs": f"{grid.epochs:g}",
        "lr": f"{grid.lr:g}",
        "n_eval": grid.eval_test,
        "n_seeds": len(grid.seeds),
        "patience": grid.patience,
        "short_epochs": f"{grid.short_epochs:g}",
        "aux_alphas": " and ".join(aux) if aux else "none at this preset",
        "aux_seeds": len(grid.remedy_seeds),
    }


def cached_pieces(
    trajectories: Sequence[Trajectory], curves: Sequence[OverfittingCurves]
) -> list[tuple[str, float]]:
    """Chapter 4's last cell: ``(cache key, stored training seconds)`` of every language-model
    run and over-fitting curve that this build read from the cache (for
    :func:`w2s_utils.book.frame.glue_frame`); runs stored without their seconds are left out."""
    out = []
    for t in trajectories:
        if t.cached and np.isfinite(t.train_seconds):
            out.append((cache.config_hash(trajectory_key(t.config)), t.train_seconds))
    for c in curves:
        if c.cached:
            out.append((cache.config_hash(curves_key(c.setting, c.seeds)), c.train_seconds))
    return out
