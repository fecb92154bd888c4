"""Chapter 4, the demonstration: the path and room checks, the over-fitting curves of the
synthetic setting, its sweeps and remedies (tables, figures and glued numbers)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from w2s_utils.book.ch4_overoptimization.common import TEACHER_COLORS, WIDTH, slug
from w2s_utils.book.plots import ROLE_COLORS
from w2s_utils.book.results import verdict
from w2s_utils.book.tables import Table, format_interval, present_table
from w2s_utils.engine.overfitting import OverfittingCurves, PopulationProjection

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
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(WIDTH, 6.6), sharex=True)
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
    fig, (left, right) = plt.subplots(1, 2, figsize=(WIDTH, 3.6), sharex=True)
    for i, (n, c) in enumerate(by_n.items()):
        left.plot(c.steps, c.mean_gain(), "-", color=TEACHER_COLORS[i % 5], label=f"n = {n}")
    for i, (rho, c) in enumerate(by_rho.items()):
        share = c.mean_gain() / float(c.err_weak.mean())
        right.plot(c.steps, share, "-", color=TEACHER_COLORS[i % 5], label=f"ρ = {rho:g}")
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
    fig, axes = plt.subplots(1, 2, figsize=(WIDTH, 0.42 * len(table) + 1.3), sharey=True)
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
        "demo_peak": format_interval(*band.loc[peak, ["value", "value_lo", "value_hi"]], "+.3f"),
        "demo_peak_share": float(band["value"].iloc[peak] / curves.err_weak.mean()),
        "demo_end": format_interval(last["value"], last["value_lo"], last["value_hi"], "+.3f"),
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
        key = f"sw_{r['knob']}_{slug(f'{r.value:g}')}"
        out[f"{key}_peak"] = float(r["peak"])
        out[f"{key}_peak_share"] = float(r["peak"] / r["err_weak"])
        out[f"{key}_peak_step"] = int(r["peak_step"])
        out[f"{key}_final"] = format_interval(r["final"], r["final_lo"], r["final_hi"], "+.3f")
        out[f"{key}_oracle"] = format_interval(r["oracle"], r["oracle_lo"], r["oracle_hi"], "+.3f")
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
            key = f"{prefix}_{slug(r['method'])}"
            out[key] = format_interval(r["value"], r["value_lo"], r["value_hi"], "+.3f")
            if r["diff_lo"] == r["diff_hi"] == 0.0:
                continue
            out[f"{key}_diff"] = format_interval(r["diff"], r["diff_lo"], r["diff_hi"], "+.3f")
            out[f"{key}_verdict"] = verdict(r["diff_lo"], r["diff_hi"])
    return out
