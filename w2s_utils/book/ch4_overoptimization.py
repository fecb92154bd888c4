"""Chapter 4 (over-optimization and over-fitting to weak labels): presentation only.

Figures, presented tables and glue dictionaries of ``notebooks/04_overoptimization.ipynb``. The
numbers come in computed: the over-fitting model's curves from
:func:`w2s_utils.engine.overfitting.overfitting_curves`, intervals over seeds and test examples
from :mod:`w2s_utils.analysis` (:func:`~w2s_utils.analysis.step_intervals`,
:func:`~w2s_utils.analysis.compare_selected`, :func:`~w2s_utils.analysis.mean_curves`,
:func:`~w2s_utils.analysis.peak_table`, :func:`~w2s_utils.analysis.trajectory_room_checks`), the
language-model runs from :mod:`w2s_utils.engine.trajectories`. The one thing assembled here is
which student each selection rule returns on a language-model run (:func:`selected_points`), from
the engine's rules and :func:`w2s_utils.analysis.crossfit_best_steps`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from w2s_utils import analysis, metrics
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

__all__ = [
    "HINDSIGHT",
    "cached_pieces",
    "exercise_glue",
    "lm_setting_glue",
    "present_room_example",
    "room_example_glue",
    "LAST",
    "ORACLE",
    "curve_frame",
    "demo_glue",
    "lm_glue",
    "path_check_glue",
    "plot_balance",
    "plot_curves",
    "plot_demo_remedies",
    "plot_overfitting",
    "plot_remedies",
    "plot_sweeps",
    "present_demo_remedies",
    "present_lm_remedies",
    "present_peaks",
    "present_sweep",
    "remedy_differences",
    "remedy_glue",
    "remedy_table",
    "room_check_glue",
    "selected_points",
    "sweep_frame",
    "sweep_glue",
]

#: Labels of the language-model selection rules (rows of :func:`remedy_table`).
LAST = "long run, last step"
ORACLE = "gold-label oracle (other half)"
HINDSIGHT = "best step in hindsight"
_TEACHER_COLORS = ("#d95f02", "#1b9e77", "#7570b3", "#e7298a", "#66a61e")
_WIDTH = 7.2  # inches: the text column


def _fmt(point: float, lo: float, hi: float, spec: str = "+.3f") -> str:
    return format_interval(point, lo, hi, spec)


def _slug(text: str) -> str:
    """A glue-key part: lower-case ASCII letters and digits, runs of anything else as one ``_``."""
    return re.sub(r"[^a-z0-9]+", "_", str(text).lower()).strip("_")


# ------------------------------------------------------------- unimodality and the room


def path_check_glue(checks: Mapping[str, pd.DataFrame]) -> dict[str, Any]:
    """Chapter 4, section "Along a straight path": glue values of the sweeps of
    :func:`w2s_utils.theory.gain_along_path`, one frame per path kind (``mixture``,
    ``geometric``): instances, violations, share rising first, share peaking inside."""
    out: dict[str, Any] = {}
    for kind, df in checks.items():
        inside = (df["argmax"] > 0) & (df["argmax"] < 1)
        out[f"path_{kind}_n"] = len(df)
        out[f"path_{kind}_viol"] = int((~df["holds"]).sum())
        out[f"path_{kind}_rises"] = float(df["rises_first"].mean())
        out[f"path_{kind}_inside"] = float(inside.mean())
    return out


def room_check_glue(check: pd.DataFrame, steps: int) -> dict[str, Any]:
    """Chapter 4, section "The room along a training run": glue values of the sweep of
    :func:`w2s_utils.theory.trajectory_room` on random trajectories of ``steps`` steps."""
    inside = (check["best_step"] > 0) & (check["best_step"] < steps - 1)
    share = check["best_gain"] / check["max_room"]
    return {
        "chk_n": len(check),
        "chk_viol": int((~check["holds"]).sum()),
        "chk_interior": float(inside.mean()),
        "chk_share_median": float(share.median()),
    }


def room_example_glue(q: Any, example: Any, no_floor: Any, floor: float) -> dict[str, Any]:
    """Chapter 4, section 2's worked example and the example without a floor (results of
    :func:`w2s_utils.theory.trajectory_room`): the best step's probability and gain, the room at
    the ends, whether the theorem holds, and the no-floor misfit, gain, room and floor bound."""
    q = np.asarray(q, dtype=float)
    return {
        "ex_q_best": float(q[example.best_step]),
        "ex_gain_best": example.best_gain,
        "ex_room_first": example.room[0],
        "ex_gain_first": example.gain[0],
        "ex_room_last": abs(example.room[-1]),
        "ex_holds": example.holds,
        "nf_eps": no_floor.eps[0],
        "nf_gain": no_floor.gain[0],
        "nf_room": no_floor.room[0],
        "nf_two_sided": no_floor.two_sided_room[0],
        "floor": f"{floor:g}",
    }


def present_room_example(q: Any, result: Any) -> Table:
    """Chapter 4, section 2's worked example: the student's probability of class 1, the gain, the
    room and the misfit at every step (``result`` from :func:`w2s_utils.theory.trajectory_room`)."""
    df = pd.DataFrame({"q": np.asarray(q, dtype=float), "gain": result.gain, "room": result.room,
                       "eps": result.eps})  # fmt: skip
    return present_table(
        df,
        {
            "q": "student's P(class 1)",
            "gain": "gain (nats)",
            "room": "room (nats)",
            "eps": "misfit ε (nats)",
        },  # fmt: skip
        formats={"q": ".2f", "gain": "+.4f", "room": ".4f", "eps": ".4f"},
    )


# ------------------------------------------------------------------ the over-fitting model


def plot_overfitting(
    curves: OverfittingCurves, band: pd.DataFrame, population: PopulationProjection
) -> Figure:
    """Chapter 4, figure "fig-ch4-overfitting": top, the gain along training with its interval
    (``band`` from :func:`w2s_utils.analysis.step_intervals`), the teacher's error (the most any
    student can gain), the gain of the minimum-norm interpolant (where training ends) and of the
    population student; bottom, the misfit on the training, held-out and test inputs with the
    floor no student can go below on new inputs."""
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(_WIDTH, 6.6), sharex=True)
    x = band["step"].to_numpy()
    c = ROLE_COLORS["student"]
    top.plot(x, band["value"], "-o", ms=3, color=c)
    top.fill_between(x, band["value_lo"], band["value_hi"], color=c, alpha=0.2, lw=0)
    # horizontal references, labelled where they are (no legend over the data)
    err = float(curves.err_weak.mean())
    refs = [(err, ":", "black", "teacher's error: a perfect student's gain", "bottom"),
            (float(curves.population_gain.mean()), "--", ROLE_COLORS["ceiling"],
             "trained to the end on infinitely many weak labels", "top")]  # fmt: skip
    if curves.interpolant_gain is not None:
        refs.append((float(curves.interpolant_gain.mean()), "-.", ROLE_COLORS["weak"],
                     "limit of this run: the min-norm interpolant", "top"))  # fmt: skip
    for y, ls, color, label, va in refs:
        top.axhline(y, color=color, ls=ls, lw=1.2)
        top.text(x[len(x) // 2], y + (0.004 if va == "bottom" else -0.004), label, color=color,
                 fontsize=9, ha="center", va=va)  # fmt: skip
    top.axhline(0.0, color="grey", lw=0.8)
    top.set_ylim(min(band["value_lo"].min(), refs[-1][0]) - 0.02, err * 1.25)
    top.set_ylabel("gain over the teacher (nats)")
    top.set_title("the gain of the student at step t rises, then falls (band: 95% interval)",
                  fontsize=10)  # fmt: skip
    for col, style, label in (
        ("eps_train", "-o", "training inputs (the labels it fits)"),
        ("eps_heldout", "-s", "held-out weak-labelled inputs"),
        ("eps_test", "-^", "test inputs"),
    ):
        bottom.plot(curves.steps, getattr(curves, col).mean(0), style, ms=3, label=label)
    bottom.axhline(curves.eps_floor, color="black", ls=":", lw=1.2,
                   label="floor on new inputs for any student that sees only phi")  # fmt: skip
    bottom.set_yscale("log")
    bottom.set_xscale("log")
    bottom.set_xlabel("gradient step t (log scale)")
    bottom.set_ylabel("misfit E KL(F_w || F_t) (nats)")
    bottom.set_title("the student reproduces its teacher where it trained, not elsewhere",
                     fontsize=10)  # fmt: skip
    bottom.legend(fontsize=8.5, loc="lower left")
    fig.tight_layout()
    return fig


def sweep_frame(
    cells: Mapping[tuple[str, float], OverfittingCurves],
    comparisons: Mapping[tuple[str, float], pd.DataFrame],
) -> pd.DataFrame:
    """Chapter 4, table "how the peak moves": one row per cell ``(knob, value)`` with the
    teacher's error, the step where the mean curve peaks, its height, and from
    ``comparisons`` (:func:`w2s_utils.analysis.compare_selected` per cell, rows
    ``"gold-label oracle"`` and ``"trained to the end"``) the two gains with intervals."""
    rows = []
    for key, c in cells.items():
        mean = c.mean_gain()
        j = int(np.argmax(mean))
        comp = comparisons[key].set_index("method")
        row: dict[str, Any] = {
            "knob": key[0],
            "value": key[1],
            "n": c.setting.n,
            "rho": c.setting.teacher_noise,
            "err_weak": float(c.err_weak.mean()),
            "peak_step": int(c.steps[j]),
            "peak": float(mean[j]),
            "interpolant": (
                float(c.interpolant_gain.mean()) if c.interpolant_gain is not None else np.nan
            ),
        }
        for name, col in (("gold-label oracle", "oracle"), ("trained to the end", "final")):
            r = comp.loc[name]
            row[col], row[f"{col}_lo"], row[f"{col}_hi"] = r["value"], r["value_lo"], r["value_hi"]
        rows.append(row)
    return pd.DataFrame(rows)


def present_sweep(frame: pd.DataFrame) -> Table:
    """Chapter 4, table "how the peak moves with n and with the teacher's error"."""
    df = frame.assign(varied=frame["knob"].map({"n": "weak labels n", "rho": "teacher noise ρ"}))
    return present_table(
        df,
        {
            "varied": "varied",
            "n": "weak labels n",
            "rho": "teacher noise ρ",
            "err_weak": "teacher's error (nats)",
            "peak_step": "mean curve peaks at step",
            "peak": "its height",
            "oracle": "gain, stopped by gold oracle",
            "final": "gain, trained to the end",
            "interpolant": "gain of the limit",
        },
        formats={
            "rho": ".2f",
            "err_weak": ".3f",
            "peak": "+.3f",
            "oracle": "+.3f",
            "final": "+.3f",
            "interpolant": "+.3f",
        },  # fmt: skip
        intervals={"oracle": ("oracle_lo", "oracle_hi"), "final": ("final_lo", "final_hi")},
        missing="n/a",
    )


def plot_sweeps(
    by_n: Mapping[int, OverfittingCurves], by_rho: Mapping[float, OverfittingCurves]
) -> Figure:
    """Chapter 4, figure "fig-ch4-sweeps": the mean gain along training for each number of weak
    labels (left) and each teacher noise (right; as a share of the teacher's error, so that
    teachers of different quality share one scale)."""
    fig, (left, right) = plt.subplots(1, 2, figsize=(_WIDTH, 3.6), sharex=True)
    for i, (n, c) in enumerate(by_n.items()):
        left.plot(c.steps, c.mean_gain(), "-", color=_TEACHER_COLORS[i % 5], label=f"n = {n}")
    for i, (rho, c) in enumerate(by_rho.items()):
        share = c.mean_gain() / float(c.err_weak.mean())
        right.plot(c.steps, share, "-", color=_TEACHER_COLORS[i % 5], label=f"ρ = {rho:g}")
    left.set_ylabel("gain over the teacher (nats)")
    right.set_ylabel("gain / teacher's error")
    right.set_ylim(-1.0, 1.0)  # the first steps of the least noisy teacher go far below
    left.set_title(f"weak labels n (p = {next(iter(by_n.values())).setting.n_params})",
                   fontsize=10)  # fmt: skip
    right.set_title("teacher's noise ρ (n fixed)", fontsize=10)
    for ax, where in ((left, "lower center"), (right, "lower right")):
        ax.set_xscale("log")
        ax.axhline(0.0, color="grey", lw=0.8)
        ax.set_xlabel("gradient step (log scale)")
        ax.legend(fontsize=9, loc=where)
    fig.tight_layout()
    return fig


def present_demo_remedies(table: pd.DataFrame, acc: pd.DataFrame) -> Table:
    """Chapter 4, table "remedies in the over-fitting model": the gain (nats) and the accuracy
    gain of each method with intervals, and its difference from training to the end (paired);
    ``table``/``acc`` from :func:`w2s_utils.analysis.compare_selected` on the gains and on the
    accuracy gains."""
    df = table.copy()
    for col in ("value", "value_lo", "value_hi", "diff", "diff_lo", "diff_hi"):
        df[f"acc_{col}"] = acc[col].to_numpy()
    reference = (df["diff_lo"] == 0.0) & (df["diff_hi"] == 0.0) & (df["diff"] == 0.0)
    for col in ("diff", "diff_lo", "diff_hi", "acc_diff", "acc_diff_lo", "acc_diff_hi"):
        df.loc[reference, col] = np.nan  # the reference row: no difference to show
    return present_table(
        df,
        {
            "method": "method",
            "value": "gain (nats)",
            "diff": "minus trained to the end",
            "acc_value": "accuracy gain",
            "acc_diff": "minus trained to the end ",
        },
        formats={"value": "+.3f", "diff": "+.3f", "acc_value": "+.3f", "acc_diff": "+.3f"},
        intervals={
            "value": ("value_lo", "value_hi"),
            "diff": ("diff_lo", "diff_hi"),
            "acc_value": ("acc_value_lo", "acc_value_hi"),
            "acc_diff": ("acc_diff_lo", "acc_diff_hi"),
        },
        missing="reference",
    )


def plot_demo_remedies(table: pd.DataFrame, acc: pd.DataFrame) -> Figure:
    """Chapter 4, figure "fig-ch4-remedies-model": each method's gain in nats (left) and in
    accuracy (right) with its 95% interval; references (hindsight) in grey."""
    fig, axes = plt.subplots(1, 2, figsize=(_WIDTH, 0.42 * len(table) + 1.3), sharey=True)
    y = np.arange(len(table))[::-1]
    for ax, t, title in ((axes[0], table, "gain (nats)"), (axes[1], acc, "accuracy gain")):
        for yi, (_, r) in zip(y, t.iterrows(), strict=True):
            grey = "hindsight" in r["method"]
            err = [[r["value"] - r["value_lo"]], [r["value_hi"] - r["value"]]]
            ax.errorbar(r["value"], yi, xerr=err, fmt="o", capsize=3,
                        color="grey" if grey else ROLE_COLORS["student"])  # fmt: skip
        ax.axvline(0.0, color="grey", lw=0.8)
        ax.set_title(title, fontsize=10)
    axes[0].set_yticks(y, list(table["method"]))
    fig.tight_layout()
    return fig


def demo_glue(
    curves: OverfittingCurves,
    band: pd.DataFrame,
    population: PopulationProjection,
    rate_ratio: float,
) -> dict[str, Any]:
    """Chapter 4, section "Over-fitting the weak labels": the glued numbers of the model's main
    setting (peak, end, limit, misfits, the population student). ``rate_ratio`` is the largest
    ``eps_train(t) 2 lr t / |w_dagger|^2`` over seeds and steps (<= 1: the proposition's rate
    holds)."""
    s = curves.setting
    peak = int(band["value"].idxmax())
    last = band.iloc[-1]
    out: dict[str, Any] = {
        "demo_n": s.n,
        "demo_p": s.n_params,
        "demo_k": s.signal_dim,
        "demo_d": s.bulk_dim,
        "demo_rho": s.teacher_noise,
        "demo_signal": s.signal,
        "demo_bulk_var": s.bulk_var,
        "demo_seeds": len(curves.seeds),
        "demo_steps": s.steps,
        "demo_ntest": s.n_test,
        "demo_nheldout": s.n_heldout,
        "demo_ngold": s.n_gold,
        "demo_err_weak": float(curves.err_weak.mean()),
        "demo_peak_step": int(band["step"].iloc[peak]),
        "demo_peak": _fmt(*band.loc[peak, ["value", "value_lo", "value_hi"]]),
        "demo_peak_share": float(band["value"].iloc[peak] / curves.err_weak.mean()),
        "demo_end": _fmt(last["value"], last["value_lo"], last["value_hi"]),
        "demo_end_verdict": verdict(last["value_lo"], last["value_hi"]),
        "demo_eps_train_end": float(curves.eps_train[:, -1].mean()),
        "demo_eps_train_first": float(curves.eps_train[:, 0].mean()),
        "demo_eps_test_end": float(curves.eps_test[:, -1].mean()),
        "demo_eps_test_min": float(curves.eps_test.mean(0).min()),
        "demo_eps_floor": curves.eps_floor,
        "demo_rate_ratio": rate_ratio,
        "demo_lr": curves.lr,
        "pop_gain": population.gain,
        "pop_eps": population.eps,
        "pop_kappa": population.kappa,
        "pop_rev_weak": population.reverse_err_weak,
        "pop_rev_student": population.reverse_err_student,
        "pop_residual": abs(population.identity_residual),
        "pop_share": population.gain / population.err_weak,
        "pop_err_weak": population.err_weak,
        "pop_gain_test": float(curves.population_gain.mean()),
    }
    if curves.interpolant_gain is not None:
        out["demo_interpolant"] = float(curves.interpolant_gain.mean())
        out["demo_leak"] = float(curves.interpolant_leak.mean())
    return out


def sweep_glue(sweep: pd.DataFrame) -> dict[str, Any]:
    """Chapter 4, "how the peak moves": per cell of :func:`sweep_frame` (keys
    ``sw_<knob>_<value>_...``) the mean curve's peak and its step, the gains stopped by the gold
    oracle and trained to the end, and the teacher's error."""
    out: dict[str, Any] = {}
    for _, r in sweep.iterrows():
        key = f"sw_{r['knob']}_{_slug(f'{r.value:g}')}"
        out[f"{key}_peak"] = float(r["peak"])
        out[f"{key}_peak_share"] = float(r["peak"] / r["err_weak"])
        out[f"{key}_peak_step"] = int(r["peak_step"])
        out[f"{key}_final"] = _fmt(r["final"], r["final_lo"], r["final_hi"])
        out[f"{key}_oracle"] = _fmt(r["oracle"], r["oracle_lo"], r["oracle_hi"])
        out[f"{key}_err_weak"] = float(r["err_weak"])
        if np.isfinite(r["interpolant"]):
            out[f"{key}_interpolant"] = float(r["interpolant"])
    return out


def remedy_glue(remedies: pd.DataFrame, acc: pd.DataFrame) -> dict[str, Any]:
    """Chapter 4, remedies in the model: per method of :func:`w2s_utils.analysis.compare_selected`
    (keys ``rem_<method>`` for the gain in nats, ``remacc_<method>`` for the accuracy gain) the
    value and its difference from the reference with intervals, and the verdict."""
    out: dict[str, Any] = {}
    for t, prefix in ((remedies, "rem"), (acc, "remacc")):
        for _, r in t.iterrows():
            key = f"{prefix}_{_slug(r['method'])}"
            out[key] = _fmt(r["value"], r["value_lo"], r["value_hi"])
            if r["diff_lo"] == r["diff_hi"] == 0.0:
                continue
            out[f"{key}_diff"] = _fmt(r["diff"], r["diff_lo"], r["diff_hi"])
            out[f"{key}_verdict"] = verdict(r["diff_lo"], r["diff_hi"])
    return out


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
        w = _slug(r["weak"])
        out[f"{w}_peak_epoch"] = f"{r['peak_epoch']:g}"
        for q in ("acc", "ce"):
            for k in ("peak", "end"):
                c = f"{q}_gain_{k}"
                out[f"{w}_{c}"] = _fmt(r[c], r[f"{c}_lo"], r[f"{c}_hi"])
            c = f"{q}_drop"
            out[f"{w}_{c}"] = _fmt(r[c], r[f"{c}_lo"], r[f"{c}_hi"])
            out[f"{w}_{c}_verdict"] = verdict(r[f"{c}_lo"], r[f"{c}_hi"])
    out["n_test_paired"] = int(mean["n_test"].min())
    for w, m in mean.groupby("weak"):
        best = m.loc[m["gain"].idxmax()]
        out[f"{_slug(w)}_ce_gain_best"] = _fmt(best["gain"], best["gain_lo"], best["gain_hi"])
        out[f"{_slug(w)}_ce_gain_best_epoch"] = f"{best['epoch']:g}"
        out[f"{_slug(w)}_ce_gain_best_verdict"] = verdict(best["gain_lo"], best["gain_hi"])
        first, last = m.iloc[0], m.iloc[-1]
        for q in ("eps_train", "eps_test", "room", "val_eps"):
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
        out[f"{key}_acc"] = format_interval(
            r["acc_student"], r["acc_student_lo"], r["acc_student_hi"]
        )
        out[f"{key}_epoch"] = f"{r['epoch']:.1f}"
        out[f"{key}_ece"] = float(r["ece"])
        out[f"{key}_ce_gain"] = _fmt(r["ce_gain"], r["ce_gain_lo"], r["ce_gain_hi"])
        out[f"{key}_seeds"] = int(r["n_seeds"])
    for _, r in diffs.iterrows():
        key = f"{_slug(r['weak'])}_{_slug(r['method'])}"
        out[f"{key}_d_acc"] = _fmt(r["d_acc"], r["d_acc_lo"], r["d_acc_hi"])
        out[f"{key}_d_ce"] = _fmt(r["d_ce_gain"], r["d_ce_gain_lo"], r["d_ce_gain_hi"])
        out[f"{key}_d_verdict"] = r["verdict_acc"]
    for w, d in diffs.groupby("weak"):
        rules = d[d["method"].isin([ORACLE, HINDSIGHT, "weak-label early stopping"])
                  | d["method"].str.startswith("fixed budget")]  # fmt: skip
        apart = [m for m, v in zip(rules["method"], rules["verdict_acc"], strict=True)
                 if v != "not distinguishable from"]  # fmt: skip
        out[f"{_slug(w)}_rules_summary"] = (
            "none of these rules is distinguishable from the last step in accuracy"
            if not apart
            else "distinguishable from the last step in accuracy: " + ", ".join(apart)
        )
    return out


def _colors(levels: Sequence[Any]) -> dict[Any, str]:
    return {lv: _TEACHER_COLORS[i % len(_TEACHER_COLORS)] for i, lv in enumerate(levels)}


def plot_curves(mean: pd.DataFrame) -> Figure:
    """Chapter 4, figure "fig-ch4-lm-curves": four panels against epochs, one colour per teacher:
    test accuracy (teacher dotted), the CE gain with its interval and the label-free room
    (dashed), the misfit on training and test texts (log scale), and the binned ECE."""
    fig, axes = plt.subplots(2, 2, figsize=(_WIDTH, 6.2), sharex=True)
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
    fig, axes = plt.subplots(1, len(teachers), figsize=(_WIDTH, 3.6), squeeze=False, sharey=True)
    for ax, w in zip(axes[0], teachers, strict=True):
        sub = c[c["weak"] == w]
        for j, (s, run) in enumerate(sub.groupby("seed")):
            color = _TEACHER_COLORS[j % len(_TEACHER_COLORS)]
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
    fig, axes = plt.subplots(1, 2, figsize=(_WIDTH, 0.42 * len(table) + 1.3), sharey=True)
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
        "ex5_end": _fmt(*r.loc["final", ["value", "value_lo", "value_hi"]]),
        "ex5_weak_es": _fmt(*r.loc["weak_early_stop", ["value", "value_lo", "value_hi"]]),
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
