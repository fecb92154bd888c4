"""Chapter 2: the worked example, the random-instance checks and the instances without a floor
(tables, figures and glued numbers)."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
from matplotlib import pyplot as plt
from matplotlib.figure import Figure

from w2s_utils.book.ch2_generalization.common import CHAIN, K_VALUES, bound_columns, interval_text
from w2s_utils.book.tables import Table, present_table, require_columns

#: The chapter's worked example (one input, K = 2): the same three vectors as chapter 1's.
EXAMPLE = {"f_star": (0.9, 0.1), "weak": (0.6, 0.4), "student": (0.8, 0.2)}


# ------------------------------------------------------------------------ worked example
def example_table() -> Table:
    """Chapter 2, the worked example: the three vectors, the log-ratios and ``|F_w - F_sw|``."""
    f_star, weak, student = (np.array(EXAMPLE[k]) for k in ("f_star", "weak", "student"))
    df = pd.DataFrame(
        {
            "j": ["class 1", "class 2"],
            "f_star": f_star,
            "weak": weak,
            "student": student,
            "r": np.log(student) - np.log(weak),
            "diff": np.abs(weak - student),
        }
    )
    return present_table(
        df,
        {
            "j": "class j",
            "f_star": "F*_j",
            "weak": "F_w,j",
            "student": "F_sw,j",
            "r": "r_j = log(F_sw,j / F_w,j)",
            "diff": "|F_w,j − F_sw,j|",
        },
        formats={"f_star": ".1f", "weak": ".1f", "student": ".1f", "r": "+.4f", "diff": ".1f"},
        caption="The worked example: one input, two classes",
    )


def example_glue(lf: Any, reached: float, chain: Any, ea: Any, osc: Any) -> dict[str, Any]:
    """Chapter 2, the worked example's numbers (keys ``wx_*``): the label-free interval ``lf``
    (with the truth), the gain ``reached`` by the point mass of its upper end, the chain
    ``chain``, the error-aware interval ``ea`` at ``e = Err(F_w)`` and the oscillation form
    ``osc``."""
    r = np.log(np.array(EXAMPLE["student"])) - np.log(np.array(EXAMPLE["weak"]))
    out = {
        "wx_r1": float(r[0]),
        "wx_r2": float(r[1]),
        "wx_gain": lf.gain,
        "wx_lower": lf.lower,
        "wx_upper": lf.upper,
        "wx_reached": float(reached),
        "wx_share": abs(lf.fraction_used),
        "wx_eps": lf.eps,
        "wx_eps_rev": lf.eps_rev,
        "wx_gamma": chain.gamma,
        "wx_tv": chain.mean_tv,
        "wx_trivial": chain.trivial,
        "wx_err_weak": ea.budget,
        "wx_ea_lower": ea.lower,
        "wx_ea_upper": ea.upper,
        "wx_ea_s_lower": ea.s_lower,
        "wx_ea_s_upper": ea.s_upper,
        "wx_ea_truth_lower": float(ea.truth_lower[0, 0]),
        "wx_ea_osc": ea.osc_half_width,
        "wx_interaction": osc.interaction,
        "wx_osc": osc.mean_osc,
        "wx_osc_mid": osc.mid,
        "wx_osc_rhs": osc.rhs,
        "wx_old_width": osc.old_width,
    }
    out |= {f"wx_{key}": float(getattr(chain, key)) for key, _ in CHAIN[2:]}
    return out


def exercise_glue(curve: Any, budgets: Sequence[float]) -> dict[str, Any]:
    """Chapter 2, the computational exercise: both ends of the worked example's error-aware
    interval (an :class:`~w2s_utils.theory.ErrorAwareCurve`) at each budget of ``budgets``
    (keys ``ex<i>_e``, ``ex<i>_lower``, ``ex<i>_upper``) and the two budgets above which each end
    is the label-free one (``ex_slack_upper`` = -log F_w at argmax r, ``ex_slack_lower``)."""
    b = curve.budgets.numpy()
    out: dict[str, Any] = {}
    for i, e in enumerate(budgets):
        j = int(np.argmin(np.abs(b - e)))
        if not math.isclose(b[j], e, abs_tol=1e-12):
            raise ValueError(f"budgets: {e} is not one of the curve's budgets")
        out |= {
            f"ex{i}_e": float(e),
            f"ex{i}_lower": float(curve.lower[j]),
            f"ex{i}_upper": float(curve.upper[j]),
        }
    weak, student = np.array(EXAMPLE["weak"]), np.array(EXAMPLE["student"])
    r = np.log(student) - np.log(weak)
    out["ex_slack_upper"] = float(-np.log(weak[np.argmax(r)]))
    out["ex_slack_lower"] = float(-np.log(weak[np.argmin(r)]))
    return out


# ---------------------------------------------------------------------------- the checks
_CHECKED = {
    "lf": "label-free interval",
    "attained_upper": "upper end attained",
    "attained_lower": "lower end attained",
    "chain": "chain and two-sided bound",
    "osc": "oscillation and M forms",
    "ea": "error-aware interval",
}


def _merged(checks: Mapping[str, pd.DataFrame]) -> pd.DataFrame:
    """The random check's tables side by side (one row per instance): ``K``, ``gain``, both
    intervals, every link of the chain, ``trivial`` and each table's ``holds``."""
    for key in ("lf", "chain", "ea"):
        if key not in checks:
            raise ValueError(f"checks: missing the {key!r} table ({_CHECKED[key]})")
    lf, chain, ea = checks["lf"], checks["chain"], checks["ea"]
    require_columns(lf, ["lower", "upper", "gain", "fraction_used", "holds"], "checks['lf']")
    require_columns(chain, [k for k, _ in CHAIN[2:]] + ["trivial", "holds"], "checks['chain']")
    require_columns(ea, ["lower", "upper", "holds"], "checks['ea']")
    if not len(lf) == len(chain) == len(ea):
        raise ValueError("checks: the tables must cover the same instances (one row each)")
    out = pd.DataFrame(
        {
            "K": [K_VALUES[i % len(K_VALUES)] for i in range(len(lf))],
            "gain": lf.gain.to_numpy(),
            "lf_lower": lf.lower.to_numpy(),
            "lf_upper": lf.upper.to_numpy(),
            "ea_lower": ea.lower.to_numpy(),
            "ea_upper": ea.upper.to_numpy(),
            **bound_columns(lf, ea, chain),
        }
    )
    return out


def _not_attained(table: pd.DataFrame, side: str) -> np.ndarray:
    """Rows of a sweep of the label-free interval under the point-mass truth of ``side`` whose
    gain is not that end to 1e-9 (relative or absolute)."""
    require_columns(table, ["gain", side], f"checks['attained_{side}']")
    return ~np.isclose(table.gain, table[side], rtol=1e-9, atol=1e-9)


def check_table(checks: Mapping[str, pd.DataFrame]) -> Table:
    """Chapter 2, 'A numeric check': per class count, the instances and the failures of each
    checked result (``checks``: the sweep tables ``lf``, ``attained_upper``, ``attained_lower``
    (the label-free interval under the point-mass truths of
    :func:`w2s_utils.theory.worst_case_truth`), ``chain``, ``osc``, ``ea``; a failure is
    ``holds = False``, and for ``attained_*`` a point-mass truth whose gain is not that end of
    the interval to 1e-9)."""
    merged = _merged(checks)
    df = pd.DataFrame({"K": merged.K})
    for key in _CHECKED:
        if key.startswith("attained"):
            fails = _not_attained(checks[key], key.split("_")[1])
        else:
            fails = ~checks[key].holds.astype(bool)
        df[key] = np.asarray(fails, dtype=int)
    grouped = df.groupby("K", sort=True)
    out = grouped.sum().reset_index()
    out.insert(1, "n", grouped.size().to_numpy())
    return present_table(
        out,
        {"K": "classes K", "n": "instances"} | {k: f"{v}: failures" for k, v in _CHECKED.items()},
        caption="Every result on random instances: failures (all should be 0)",
    )


def check_glue(checks: Mapping[str, pd.DataFrame]) -> dict[str, Any]:
    """Chapter 2, 'A numeric check': the number of instances, failures in all, and how much of
    each bound the exact gain uses (medians; keys ``chk_*``)."""
    merged = _merged(checks)
    fails = sum(int((~checks[k].holds.astype(bool)).sum()) for k in ("lf", "chain", "osc", "ea"))
    fails += sum(int(_not_attained(checks[f"attained_{s}"], s).sum()) for s in ("upper", "lower"))
    g = merged.gain.abs()
    return {
        "chk_n": len(merged),
        "chk_fails": fails,
        "chk_share_lf": float(merged.share.median()),
        "chk_share_ea": float((g / merged.ea_bound).median()),
        "chk_share_t1": float((g / merged.bound_tv).median()),
        "chk_t1_over_trivial": float((merged.bound_tv > merged.trivial).mean()),
        "chk_t1_over_lf": float((merged.bound_tv / merged.lf_bound).median()),
        "chk_ea_over_lf": float(
            ((merged.ea_upper - merged.ea_lower) / (merged.lf_upper - merged.lf_lower)).median()
        ),
    }


def share_figure(checks: Mapping[str, pd.DataFrame]) -> Figure:
    """Chapter 2, figure 'fig-ch2-shares': the share |gain| / bound of each bound of the chain
    used by the exact gain on the random instances (box: quartiles; whiskers: 5%-95%)."""
    merged = _merged(checks)
    shares = {label: merged.gain.abs() / merged[key] for key, label in CHAIN}
    shares["log(1/γ)"] = merged.gain.abs() / merged.trivial
    fig, ax = plt.subplots(figsize=(7.0, 4.2))
    data = [s.replace([np.inf, -np.inf], np.nan).dropna().to_numpy() for s in shares.values()]
    ax.boxplot(data, whis=(5, 95), showfliers=False, widths=0.55)
    ax.set_xticks(range(1, len(shares) + 1), list(shares), rotation=35, ha="right", fontsize=9)
    ax.set_ylim(0, 1.02)
    ax.set_ylabel("|gain| / bound (share used)")
    fig.tight_layout()
    return fig


def error_aware_check_glue(ea: pd.DataFrame) -> dict[str, Any]:
    """Chapter 2, the error-aware interval's check (keys ``eac_*``) from the sweep ``ea`` of
    :func:`w2s_utils.theory.error_aware_interval` with each instance's own truth (budget
    ``e = Err(F_w)``): instances, failures (``holds``), the share where the budget binds at the
    upper end, and the certificate of sharpness: the largest gap between an end and the gain of
    the truth that attains it (``gap_*``; that truth's gain cannot exceed the end, the dual value
    cannot fall below it) and the largest excess of that truth's ``Err(F_w)`` over the budget."""
    cols = ["holds", "budget", "binds_upper", "gap_upper", "gap_lower", "err_upper", "err_lower"]
    require_columns(ea, cols, "ea")
    over = np.maximum(ea.err_upper - ea.budget, ea.err_lower - ea.budget).max()
    return {
        "eac_n": len(ea),
        "eac_fails": int((~ea.holds.astype(bool)).sum()),
        "eac_binds": float(ea.binds_upper.astype(bool).mean()),
        "eac_gap": float(np.maximum(ea.gap_upper, ea.gap_lower).max()),
        "eac_over": float(max(over, 0.0)),
    }


def error_aware_figure(panels: Mapping[str, tuple[Any, float, float | None]]) -> Figure:
    """Chapter 2, figure 'fig-ch2-error-aware': per panel (title -> ``(curve, e, gain)``, an
    :class:`~w2s_utils.theory.ErrorAwareCurve`, the budget to mark and the gain there, or
    ``None``) both ends ``L(e)``, ``U(e)`` against the budget ``e``, the label-free ends (dashed),
    the oscillation relaxation ``-eps ± sqrt(e E[osc^2]/2)`` (dotted) and the line ``gain = e``
    (``s = 1``)."""
    if not panels:
        raise ValueError("panels: give at least one (curve, e, gain) panel")
    fig, axes = plt.subplots(1, len(panels), figsize=(7.0, 4.2), squeeze=False)
    for ax, (title, (curve, e_mark, gain)) in zip(axes[0], panels.items(), strict=True):
        b = curve.budgets.numpy()
        lo, up = curve.lower.numpy(), curve.upper.numpy()
        ax.fill_between(b, lo, up, color="#1b9e77", alpha=0.25, lw=0)
        ax.plot(b, up, color="#1b9e77", lw=2, label="error-aware U(e), L(e)")
        ax.plot(b, lo, color="#1b9e77", lw=2)
        ax.axhline(curve.free_upper, color="0.35", ls="--", lw=1, label="label-free ends")
        ax.axhline(curve.free_lower, color="0.35", ls="--", lw=1)
        half = np.sqrt(b * curve.mean_osc_sq / 2.0)
        ax.plot(b, -curve.eps + half, color="#d95f02", ls=":", lw=1.6, label="oscillation form")
        ax.plot(b, -curve.eps - half, color="#d95f02", ls=":", lw=1.6)
        ax.plot(b, b, color="#7570b3", lw=1, ls="-.", label="gain = e (s = 1)")
        ax.axvline(e_mark, color="0.5", lw=0.8)
        if gain is not None:
            ax.plot([e_mark], [gain], "ko", ms=6, label="the truth's gain", zorder=5)
        pad = 0.15 * (curve.free_upper - curve.free_lower)
        ax.set_ylim(curve.free_lower - pad, curve.free_upper + pad)
        ax.set_xlim(0, b.max())
        ax.set_xlabel("budget e (nats)")
        ax.set_title(title, fontsize=10)
    axes[0, 0].set_ylabel("gain (nats)")
    handles, labels = axes[0, 0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=3, fontsize=9, bbox_to_anchor=(0.5, 0))
    fig.tight_layout(rect=(0, 0.12, 1, 1))
    return fig


# ------------------------------------------------------------------------ no-floor example
def no_floor_table(deltas: Sequence[float], lf: pd.DataFrame, chain: pd.DataFrame) -> Table:
    """Chapter 2, 'Without a floor': per ``delta`` the misfit, the exact gain, the floor, the
    label-free interval, the chain's log form and the two-sided bound (``lf``, ``chain``: the
    sweeps of :func:`w2s_utils.theory.label_free_interval` and
    :func:`w2s_utils.theory.generalization_chain` over
    :func:`w2s_utils.theory.instances.no_floor_instance` at each ``delta``)."""
    df = _no_floor_frame(deltas, lf, chain)
    return present_table(
        df,
        {
            "delta": "δ",
            "eps": "misfit ε",
            "gain": "gain (nats)",
            "gamma": "floor γ",
            "lf": "label-free interval",
            "log_pinsker": "log(1+min(1,√(ε/2))/γ)",
            "bound_eps": "√(ε/2)/γ",
        },
        formats={
            "delta": ".0e",
            "eps": ".2e",
            "gain": "+.3f",
            "gamma": ".0e",
            "log_pinsker": ".2f",
            "bound_eps": ".2e",
        },
        caption="Without a floor: a vanishing misfit, a gain of half a nat",
    )


def _no_floor_frame(deltas: Sequence[float], lf: pd.DataFrame, chain: pd.DataFrame) -> pd.DataFrame:
    require_columns(lf, ["gain", "lower", "upper", "eps"], "lf")
    require_columns(chain, ["gamma", "log_pinsker", "bound_eps"], "chain")
    if not len(deltas) == len(lf) == len(chain):
        raise ValueError("deltas, lf, chain: need one row per delta in each")
    lf_text = interval_text(lf.lower, lf.upper)
    return pd.DataFrame(
        {
            "delta": list(deltas),
            "eps": lf.eps.to_numpy(),
            "gain": lf.gain.to_numpy(),
            "gamma": chain.gamma.to_numpy(),
            "lf": lf_text,
            "log_pinsker": chain.log_pinsker.to_numpy(),
            "bound_eps": chain.bound_eps.to_numpy(),
        }
    )


def no_floor_glue(deltas: Sequence[float], lf: pd.DataFrame, chain: pd.DataFrame) -> dict:
    """Chapter 2, 'Without a floor': the smallest ``delta``'s row (keys ``nf_*``)."""
    df = _no_floor_frame(deltas, lf, chain)
    row = df.iloc[int(np.argmin(df.delta))]
    return {
        "nf_delta": float(row.delta),
        "nf_eps": float(row.eps),
        "nf_gain": float(row.gain),
        "nf_log": float(row.log_pinsker),
        "nf_t1": float(row.bound_eps),
    }
