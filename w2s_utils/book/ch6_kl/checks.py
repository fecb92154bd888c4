"""Chapter 6: the memo of its tables with text columns, the random-instance checks, the
counterexample search and the second-order bounds (tables, figures and glued numbers)."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.ticker import LogLocator

from w2s_utils import metrics, theory
from w2s_utils.book.ch6_kl.common import GREEN, ORANGE, PURPLE
from w2s_utils.book.memo import cached_frame
from w2s_utils.book.tables import (
    Table,
    present_table,
    require_columns,
)

#: Teacher constructions of the counterexample search: name -> ``weak_noise`` of
#: :func:`w2s_utils.theory.non_guarantee_trial` (``None``: an arbitrary Dirichlet teacher;
#: ``s``: ``softmax(log F* + s z)``, close to the truth).
CONSTRUCTIONS: dict[str, float | None] = {
    "arbitrary teacher": None,
    "noisy F*, s = 1": 1.0,
    "noisy F*, s = 0.3": 0.3,
}

#: The statement each trial kind tests, as the text names it.
KIND_LABELS = {
    "forward_kl": "forward KL, softmax heads",
    "reverse_kl_logit": "reverse KL, softmax heads",
    "reverse_kl_mixture": "reverse KL, mixtures (the theorem)",
    "forward_kl_mixture": "forward KL, mixtures",
}


# ------------------------------------------------------------------------------ caching
def cached_table(
    key: Mapping[str, Any],
    compute: Callable[[], pd.DataFrame],
    *,
    depends_on: Sequence[Callable[..., Any]] = (),
    text_columns: Sequence[str] = (),
) -> pd.DataFrame:
    """``compute()``'s table memoised on disk by :func:`w2s_utils.book.memo.cached_frame` (keyed
    by ``key`` and the source of ``depends_on``; ``attrs`` as there), with the chapter's text
    columns made plain (Chapter 6: the trials of the counterexample search and the planted
    task's table, whose ``kind``/``student``/``split`` columns name a statement, a student, a
    split).

    Each column of ``text_columns`` must exist in ``compute()``'s table; its values are stored
    and returned as ``str`` (``str(value)``), so that the chapter's filters on them (``kind ==
    "forward_kl"``) read the same on a cold and on a warm build.
    """
    cols = list(text_columns)

    def texts() -> pd.DataFrame:
        table = compute()
        if not isinstance(table, pd.DataFrame):
            raise ValueError(f"compute: must return a DataFrame, got {type(table).__name__}")
        require_columns(table, cols, "compute()")
        return table.assign(**{c: table[c].astype(str) for c in cols})

    return cached_frame({**dict(key), "text_columns": cols}, texts, depends_on=depends_on)


# ------------------------------------------------------------------------------ random checks
def checks_glue(mix: pd.DataFrame, fwd: pd.DataFrame) -> dict[str, Any]:
    """Chapter 6, 'Numeric check on random instances' and the forward-KL identity: the sweeps of
    :func:`w2s_utils.theory.reverse_kl_mixture_check` (``mix``) and
    :func:`w2s_utils.theory.forward_kl_linear_check` (``fwd``) in numbers for the text."""
    require_columns(mix, ["holds", "interior", "slack", "gap", "eps_rev", "err_weak"], "mix")
    require_columns(fwd, ["holds", "residual", "remark_holds", "moment_residual"], "fwd")
    inner, boundary = mix[mix.interior], mix[~mix.interior]
    return {
        "chk_n": len(mix),
        "chk_viol": int((~mix.holds).sum()),
        "chk_interior": int(mix.interior.sum()),
        "chk_interior_slack": float(inner.slack.abs().max()) if len(inner) else 0.0,
        "chk_boundary_n": len(boundary),
        "chk_boundary_slack": float(boundary.slack.median()) if len(boundary) else 0.0,
        "chk_max_gap": float(mix.gap.max()),
        "chk_eps_share_max": float((mix.eps_rev / mix.err_weak).max()),
        "fwd_n": len(fwd),
        "fwd_viol": int((~fwd.holds).sum()),
        "fwd_resid": float(fwd.residual.abs().max()),
        "fwd_moment": float(fwd.moment_residual.max()),
        "fwd_remark_fail": int((~fwd.remark_holds).sum()),
    }


def mixture_figure(mix: pd.DataFrame) -> Figure:
    """Chapter 6, figure 'fig-ch6-mixtures': gain against the disagreement ``eps_rev`` of the
    reverse-KL students on random mixture instances, interior and boundary students apart."""
    require_columns(mix, ["gain", "eps_rev", "interior"], "mix")
    fig, ax = plt.subplots(figsize=(7, 4.6))
    for flag, label, color, marker in (
        (True, "every mixture weight > 0 (relative interior)", GREEN, "o"),
        (False, "some weight = 0 (boundary of the class)", ORANGE, "s"),
    ):
        sub = mix[mix.interior == flag]
        ax.scatter(sub.eps_rev, sub.gain, s=18, alpha=0.75, color=color, marker=marker, label=label)
    hi = float(max(mix.eps_rev.max(), mix.gain.max())) * 1.05
    ax.plot([0, hi], [0, hi], color="0.3", ls="--", lw=1, label="gain = disagreement")
    ax.set_xlim(0, hi)
    ax.set_ylim(0, hi)
    ax.set_xlabel(r"disagreement $\varepsilon_{\mathrm{rev}} = \mathbb{E}\,KL(F_{sw}\|F_w)$ [nats]")
    ax.set_ylabel(r"gain $\mathrm{Err}(F_w) - \mathrm{Err}(F_{sw})$ [nats]")
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.2), ncol=2, fontsize=9)
    fig.tight_layout()
    return fig


# ------------------------------------------------------------------------------ the search
def trial_jobs(
    n_trials: int,
    kinds: Sequence[str] = theory.TRIAL_KINDS,
    constructions: Mapping[str, float | None] = CONSTRUCTIONS,
) -> list[dict[str, Any]]:
    """Chapter 6, the counterexample search: the keyword arguments of
    :func:`w2s_utils.theory.non_guarantee_trial` for every kind, construction and seed
    ``0 .. n_trials - 1`` (what :func:`w2s_utils.theory.sweep` runs)."""
    if not isinstance(n_trials, int) or n_trials < 1:
        raise ValueError(f"n_trials: must be a positive integer, got {n_trials!r}")
    unknown = [k for k in kinds if k not in theory.TRIAL_KINDS]
    if unknown:
        raise ValueError(f"kinds: unknown {unknown}; use {theory.TRIAL_KINDS}")
    return [
        {"kind": k, "seed": s, "weak_noise": noise}
        for k in kinds
        for noise in constructions.values()
        for s in range(n_trials)
    ]


def _construction(noise: Any, constructions: Mapping[str, float | None]) -> str:
    missing = noise is None or (isinstance(noise, float) and math.isnan(noise))
    for name, value in constructions.items():
        if (value is None and missing) or (
            value is not None and not missing and math.isclose(float(noise), value)
        ):
            return name
    raise ValueError(f"trials: weak_noise {noise!r} is none of the constructions {constructions}")


def failure_rates(
    trials: pd.DataFrame, constructions: Mapping[str, float | None] = CONSTRUCTIONS
) -> pd.DataFrame:
    """Chapter 6, table and figure 'rates': per (kind, construction) of the sweep of
    :func:`w2s_utils.theory.non_guarantee_trial`, the number of valid trials (solver at its
    optimum or stationary point), of violations, the rate with a Wilson 95% interval
    (:func:`w2s_utils.metrics.wilson_interval`) and the median and largest violation (nats)."""
    require_columns(trials, ["kind", "weak_noise", "valid", "violated", "violation"], "trials")
    t = trials.assign(construction=[_construction(v, constructions) for v in trials.weak_noise])
    rows = []
    for kind in [k for k in theory.TRIAL_KINDS if k in set(t.kind)]:
        for con in constructions:
            sub = t[(t.kind == kind) & (t.construction == con)]
            if sub.empty:
                continue
            valid = sub[sub.valid.astype(bool)]
            n, m = len(valid), int(valid.violated.astype(bool).sum())
            lo, hi = metrics.wilson_interval(m, n) if n else (math.nan, math.nan)
            viol = valid.violation[valid.violated.astype(bool)]
            rows.append(
                {
                    "kind": kind,
                    "statement": KIND_LABELS[kind],
                    "construction": con,
                    "valid": n,
                    "violated": m,
                    "rate": m / n if n else math.nan,
                    "rate_lo": lo,
                    "rate_hi": hi,
                    "median_violation": float(viol.median()) if m else 0.0,
                    "max_violation": float(viol.max()) if m else 0.0,
                }
            )
    return pd.DataFrame(rows)


def rates_table(rates: pd.DataFrame) -> Table:
    """Chapter 6, table of the counterexample search (:func:`failure_rates`)."""
    return present_table(
        rates,
        {
            "statement": "student and class",
            "construction": "teacher",
            "valid": "valid trials",
            "violated": "violations",
            "rate": "rate [95% Wilson]",
            "median_violation": "median violation (nats)",
            "max_violation": "largest violation (nats)",
        },
        formats={"rate": ".2f", "median_violation": ".1e", "max_violation": ".1e"},
        intervals={"rate": ("rate_lo", "rate_hi")},
        caption="How often gain ≥ misfit fails, by student, class and teacher construction",
    )


def rates_figure(rates: pd.DataFrame) -> Figure:
    """Chapter 6, figure 'fig-ch6-rates': violation rates with Wilson 95% intervals."""
    require_columns(rates, ["statement", "construction", "rate", "rate_lo", "rate_hi"], "rates")
    fig, ax = plt.subplots(figsize=(7.5, 0.42 * len(rates) + 1.2))
    y = np.arange(len(rates))[::-1]
    err = np.vstack([rates.rate - rates.rate_lo, rates.rate_hi - rates.rate])
    colors = [GREEN if "theorem" in s else ORANGE for s in rates.statement]
    ax.barh(y, rates.rate, xerr=err, color=colors, alpha=0.85, capsize=3)
    labels = [f"{s}; {c}" for s, c in zip(rates.statement, rates.construction, strict=True)]
    ax.set_yticks(y, labels, fontsize=9)
    ax.set_xlim(0, 1)
    ax.set_xlabel(r"share of valid trials with $\mathrm{Err}(F_{sw}) > \mathrm{Err}(F_w)$ − misfit")
    fig.tight_layout()
    return fig


def rates_glue(rates: pd.DataFrame, trials: pd.DataFrame) -> dict[str, Any]:
    """Chapter 6, 'What is not guaranteed': counts, rates and sizes per statement, and how the
    measured violations compare with their proved second-order bounds."""
    out: dict[str, Any] = {}
    by_kind = rates.set_index(["kind", "construction"])
    for kind in theory.TRIAL_KINDS:
        if kind not in set(rates.kind):
            continue
        sub = by_kind.loc[kind]
        out[f"rate_{kind}_viol"] = int(sub.violated.sum())
        out[f"rate_{kind}_valid"] = int(sub.valid.sum())
        out[f"rate_{kind}_max"] = float(sub.max_violation.max())
        if "arbitrary teacher" in sub.index:
            out[f"rate_{kind}_arb"] = float(sub.loc["arbitrary teacher"].rate)
        if "noisy F*, s = 0.3" in sub.index:
            out[f"rate_{kind}_close_max"] = float(sub.loc["noisy F*, s = 0.3"].max_violation)
    valid = trials[trials.valid.astype(bool) & trials.bound.notna()]
    for kind in ("forward_kl", "reverse_kl_logit"):
        v = valid[valid.kind == kind]
        ratio = v.violation.abs() / v.bound
        out[f"bound_{kind}_n"] = len(v)
        out[f"bound_{kind}_within"] = int((v.violation.abs() <= v.bound * (1 + 1e-9) + 1e-12).sum())
        out[f"bound_{kind}_ratio_max"] = float(ratio.max()) if len(v) else 0.0
        out[f"bound_{kind}_ratio_median"] = float(ratio.median()) if len(v) else 0.0
    return out


def bound_figure(trials: pd.DataFrame, floor: float = 1e-12) -> Figure:
    """Chapter 6, figure 'fig-ch6-bounds': the size of each valid trial's miss of gain ≥ misfit
    against its proved bound (log-log), for the two softmax-head statements; points under the
    diagonal respect the bound. Misses below ``floor`` (zero up to rounding) are not drawn."""
    require_columns(trials, ["kind", "valid", "violation", "bound", "weak_noise"], "trials")
    fig, axes = plt.subplots(1, 2, figsize=(7.5, 3.8))
    titles = {
        "forward_kl": "forward KL: two direction gaps",
        "reverse_kl_logit": "reverse KL: osc(r) × KL(F_sw‖F*)",
    }
    markers = {
        "arbitrary teacher": ("o", ORANGE),
        "noisy F*, s = 1": ("s", PURPLE),
        "noisy F*, s = 0.3": ("^", GREEN),
    }
    valid = trials[trials.valid.astype(bool) & trials.bound.notna()]
    for ax, kind in zip(axes, ("forward_kl", "reverse_kl_logit"), strict=True):
        v = valid[(valid.kind == kind) & (valid.violation.abs() > floor)]
        for con, (marker, color) in markers.items():
            sub = v[[_construction(n, CONSTRUCTIONS) == con for n in v.weak_noise]]
            ax.scatter(
                sub.bound,
                sub.violation.abs(),
                s=14,
                marker=marker,
                color=color,
                alpha=0.7,
                label=con,
            )
        both = pd.concat([v.bound, v.violation.abs()])
        lo, hi = (float(both.min()) / 3, float(both.max()) * 3) if len(both) else (floor, 1.0)
        ax.plot([lo, hi], [lo, hi], color="0.3", ls="--", lw=1, label="miss = bound")
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlim(lo, hi)
        ax.set_ylim(lo, hi)
        ax.xaxis.set_major_locator(LogLocator(numticks=5))
        ax.yaxis.set_major_locator(LogLocator(numticks=5))
        ax.set_title(titles[kind], fontsize=10)
        ax.set_xlabel("proved bound [nats]")
    axes[0].set_ylabel("|gain − misfit| [nats]")
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=4, fontsize=9, bbox_to_anchor=(0.5, 0))
    fig.tight_layout(rect=(0, 0.1, 1, 1))
    return fig


def counterexample_table(cx: Any) -> Table:
    """Chapter 6, the two counterexamples printed point by point: features, ``F*``, teacher and
    student probabilities and each point's error of both predictors and misfit (uniform ``P``;
    misfit ``KL(F_w || F_sw)`` for a forward-KL student, ``KL(F_sw || F_w)`` otherwise)."""
    inst = cx.instance
    n, k = inst.f_star.shape
    d = inst.features.shape[1]
    df = pd.DataFrame({"x": np.arange(1, n + 1)})
    columns: dict[str, str] = {"x": "point"}
    for i in range(d):
        df[f"phi{i}"] = inst.features[:, i].numpy()
        columns[f"phi{i}"] = f"φ{i + 1}"
    for name, sym, p in (
        ("star", "F*", inst.f_star),
        ("w", "F_w", inst.weak),
        ("sw", "F_sw", cx.student),
    ):
        for j in range(k):
            df[f"{name}{j}"] = p[:, j].numpy()
            columns[f"{name}{j}"] = f"{sym}[{j + 1}]"
    misfit = (
        metrics.kl(inst.weak, cx.student)
        if cx.kind == "forward_kl"
        else metrics.kl(cx.student, inst.weak)
    )
    df["errw"] = metrics.kl(inst.f_star, inst.weak).numpy()
    df["errsw"] = metrics.kl(inst.f_star, cx.student).numpy()
    df["mis"] = misfit.numpy()
    columns.update({"errw": "KL(F*‖F_w)", "errsw": "KL(F*‖F_sw)", "mis": "misfit"})
    formats = {c: ".3f" for c in columns if c != "x"}
    formats["x"] = "d"
    return present_table(df, columns, formats=formats)


# ------------------------------------------------------------------------------ second order
def second_order_table(trials: pd.DataFrame) -> Table:
    """Chapter 6, table 'second order': per softmax-head statement and construction, the median
    and largest miss |gain − misfit| of the valid trials, the median bound, and how many respect
    it."""
    require_columns(trials, ["kind", "valid", "violation", "bound", "weak_noise"], "trials")
    valid = trials[trials.valid.astype(bool) & trials.bound.notna()]
    rows = []
    for kind in ("forward_kl", "reverse_kl_logit"):
        v = valid[valid.kind == kind]
        for con in CONSTRUCTIONS:
            sub = v[[_construction(n, CONSTRUCTIONS) == con for n in v.weak_noise]]
            if sub.empty:
                continue
            miss = sub.violation.abs()
            rows.append(
                {
                    "statement": KIND_LABELS[kind],
                    "construction": con,
                    "n": len(sub),
                    "miss_median": float(miss.median()),
                    "miss_max": float(miss.max()),
                    "bound_median": float(sub.bound.median()),
                    "within": int((miss <= sub.bound * (1 + 1e-9) + 1e-12).sum()),
                }
            )
    return present_table(
        pd.DataFrame(rows),
        {
            "statement": "student and class",
            "construction": "teacher",
            "n": "valid trials",
            "miss_median": "median |gain − misfit|",
            "miss_max": "largest |gain − misfit|",
            "bound_median": "median bound",
            "within": "within the bound",
        },
        formats={"miss_median": ".1e", "miss_max": ".1e", "bound_median": ".1e"},
        caption="Misses of gain ≥ misfit on softmax heads against their proved bounds (nats)",
    )


def second_order_glue(bounds: pd.DataFrame) -> dict[str, Any]:
    """Chapter 6, 'The second-order bound on real text': the reverse-KL students of the planted
    linear-head cells on their own training inputs (rows of :func:`w2s_utils.theory.sweep` over
    :func:`w2s_utils.theory.reverse_kl_softmax_head`, with ``loss`` and ``label_noise``) and the
    forward-KL students' identity residuals (:func:`w2s_utils.theory.forward_kl_softmax_head`)."""
    require_columns(bounds, ["loss", "margin", "bound", "holds"], "bounds")
    rev, fwd = bounds[bounds.loss == "reverse"], bounds[bounds.loss == "forward"]
    out = {
        "so_n": len(rev),
        "so_holds": int(rev.holds.sum()),
        "so_margin_max": float(rev.margin.abs().max()),
        "so_bound_median": float(rev.bound.median()),
        "so_ratio_max": float((rev.margin.abs() / rev.bound).max()),
        "so_kl_star_median": float(rev.kl_student_star.median()),
    }
    if len(fwd):
        out["so_fwd_n"] = len(fwd)
        out["so_fwd_rho_max"] = float(fwd.identity_residual.abs().max())
        out["so_fwd_margin_max"] = float(fwd.margin.abs().max())
    return out
