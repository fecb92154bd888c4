"""Chapter 6 (the KL extension): its tables, figures and glued findings.

Presentation only. The science is computed in the chapter's visible cells: the random-instance
checks and the counterexample search by :func:`w2s_utils.theory.sweep` over
:func:`w2s_utils.theory.reverse_kl_mixture_check`, :func:`w2s_utils.theory.forward_kl_linear_check`
and :func:`w2s_utils.theory.non_guarantee_trial`; the planted mixture task by
:func:`w2s_utils.engine.planted_mixture.planted_mixture_task`; the linear-head study and the
Bernoulli reading by :func:`w2s_utils.engine.heads.run_heads`, with intervals from
:func:`w2s_utils.analysis.paired_differences` and :func:`w2s_utils.analysis.split_table`; the
fine-tuned students by :func:`w2s_utils.engine.experiment.run_grid` and
:func:`w2s_utils.analysis.loss_comparison`. Every function here turns those results into what the
chapter shows: a presented table (:func:`w2s_utils.book.tables.present_table`), a figure, or a
dictionary for :func:`w2s_utils.book.glue.glue_all`.

Sign convention (the notation page's): ``gain`` = Err(F_w) - Err(F_sw) in nats (positive: the
student is better); ``eps`` = E KL(F_w || F_sw) (misfit, weak→student), ``eps_rev`` =
E KL(F_sw || F_w) (misfit, student→weak); a student's *disagreement* is the misfit in the
direction of its own loss.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch
from matplotlib.figure import Figure
from matplotlib.ticker import LogLocator, MaxNLocator

from w2s_utils import metrics, theory
from w2s_utils.book.ch1_pipeline import cached_frame
from w2s_utils.book.results import verdict
from w2s_utils.book.tables import Table, format_interval, format_number, present_table

__all__ = [
    "CONSTRUCTIONS",
    "bound_figure",
    "cached_table",
    "checks_glue",
    "counterexample_table",
    "datasets_table",
    "difference_figure",
    "difference_table",
    "failure_rates",
    "gaussian_bridge",
    "guarantee_figure",
    "guarantee_glue",
    "guarantee_table",
    "headline_glue",
    "lm_figure",
    "lm_glue",
    "lm_table",
    "mixture_figure",
    "planted_figure",
    "planted_glue",
    "planted_summary",
    "planted_table",
    "rates_figure",
    "rates_glue",
    "rates_table",
    "reading_glue",
    "reading_table",
    "second_order_glue",
    "second_order_table",
    "study_glue",
    "trial_jobs",
]

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

_GREEN, _ORANGE, _PURPLE, _PINK = "#1b9e77", "#d95f02", "#7570b3", "#e7298a"
_LOSS_LABEL = {"forward": "forward KL", "reverse": "reverse KL"}
_LOSS_COLOR = {"forward": _ORANGE, "reverse": _PURPLE}
_SPLIT_LABEL = {"test": "held-out test inputs", "train": "the student's training inputs"}


def _require(df: pd.DataFrame, columns: Sequence[str], what: str) -> None:
    if not isinstance(df, pd.DataFrame):
        raise ValueError(f"{what}: expected a DataFrame, got {type(df).__name__}")
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise ValueError(f"{what}: missing column(s) {missing}; it has {list(df.columns)}")


def _nats(x: float, digits: int = 4) -> str:
    """A signed number of nats as the page prints it (true minus sign, no ``-0.0000``)."""
    return format_number(x, f"+.{digits}f")


def _range(values: pd.Series, digits: int = 4) -> str:
    lo, hi = _nats(float(values.min()), digits), _nats(float(values.max()), digits)
    return f"about {lo}" if lo == hi else f"between {lo} and {hi}"


# ------------------------------------------------------------------------------ caching
def cached_table(
    key: Mapping[str, Any],
    compute: Callable[[], pd.DataFrame],
    *,
    depends_on: Sequence[Callable[..., Any]] = (),
    text_columns: Sequence[str] = (),
) -> pd.DataFrame:
    """``compute()``'s table memoised on disk, text columns included (Chapter 6: the trials of the
    counterexample search and the planted task's table, whose ``kind``/``student``/``split``
    columns hold several texts).

    :func:`w2s_utils.book.ch1_pipeline.cached_frame` (keyed by ``key`` and the source of
    ``depends_on``) stores numbers, booleans and constant texts; each column of ``text_columns``
    is stored as integer codes with its categories, and decoded on the way back. ``attrs`` as
    there (``cached``, ``seconds``, ``entry``).
    """
    cols = list(text_columns)

    def coded() -> pd.DataFrame:
        table = compute()
        if not isinstance(table, pd.DataFrame):
            raise ValueError(f"compute: must return a DataFrame, got {type(table).__name__}")
        _require(table, cols, "compute()")
        out = table.copy()
        for c in cols:
            cats = sorted({str(v) for v in table[c]})
            out[c] = table[c].astype(str).map({v: i for i, v in enumerate(cats)}).astype(np.int64)
            out[f"{c}__categories"] = json.dumps(cats)
        return out

    table = cached_frame({**dict(key), "text_columns": cols}, coded, depends_on=depends_on)
    attrs = dict(table.attrs)
    for c in cols:
        cats = json.loads(str(table[f"{c}__categories"].iloc[0]))
        table[c] = [cats[int(i)] for i in table[c]]
        table = table.drop(columns=f"{c}__categories")
    table.attrs.update(attrs)
    return table


# ------------------------------------------------------------------------------ random checks
def checks_glue(mix: pd.DataFrame, fwd: pd.DataFrame) -> dict[str, Any]:
    """Chapter 6, 'Numeric check on random instances' and the forward-KL identity: the sweeps of
    :func:`w2s_utils.theory.reverse_kl_mixture_check` (``mix``) and
    :func:`w2s_utils.theory.forward_kl_linear_check` (``fwd``) in numbers for the text."""
    _require(mix, ["holds", "interior", "slack", "gap", "eps_rev", "err_weak"], "mix")
    _require(fwd, ["holds", "residual", "remark_holds", "moment_residual"], "fwd")
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
    _require(mix, ["gain", "eps_rev", "interior"], "mix")
    fig, ax = plt.subplots(figsize=(7, 4.6))
    for flag, label, color, marker in (
        (True, "every mixture weight > 0 (relative interior)", _GREEN, "o"),
        (False, "some weight = 0 (boundary of the class)", _ORANGE, "s"),
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
    _require(trials, ["kind", "weak_noise", "valid", "violated", "violation"], "trials")
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
    _require(rates, ["statement", "construction", "rate", "rate_lo", "rate_hi"], "rates")
    fig, ax = plt.subplots(figsize=(7.5, 0.42 * len(rates) + 1.2))
    y = np.arange(len(rates))[::-1]
    err = np.vstack([rates.rate - rates.rate_lo, rates.rate_hi - rates.rate])
    colors = [_GREEN if "theorem" in s else _ORANGE for s in rates.statement]
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
    _require(trials, ["kind", "valid", "violation", "bound", "weak_noise"], "trials")
    fig, axes = plt.subplots(1, 2, figsize=(7.5, 3.8))
    titles = {
        "forward_kl": "forward KL: two direction gaps",
        "reverse_kl_logit": "reverse KL: osc(r) × KL(F_sw‖F*)",
    }
    markers = {
        "arbitrary teacher": ("o", _ORANGE),
        "noisy F*, s = 1": ("s", _PURPLE),
        "noisy F*, s = 0.3": ("^", _GREEN),
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
    _require(trials, ["kind", "valid", "violation", "bound", "weak_noise"], "trials")
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
    _require(bounds, ["loss", "margin", "bound", "holds"], "bounds")
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


# ------------------------------------------------------------------------------ planted mixture
def planted_summary(table: pd.DataFrame, tol: float = 1e-9) -> pd.DataFrame:
    """Chapter 6, the planted mixture task: per (student, split) of the stacked tables of
    :func:`w2s_utils.engine.planted_mixture.planted_mixture_task`, the number of seeds, how many
    fall below the line gain = disagreement (``slack < -tol``), the smallest slack and the mean
    gain, disagreement ``eps_rev`` and ``eps`` (nats)."""
    _require(table, ["student", "split", "slack", "gain", "eps_rev", "eps"], "table")
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
    _require(planted, ["student", "split", "gain", "eps_rev"], "planted")
    fig, axes = plt.subplots(1, 2, figsize=(7.5, 3.6), sharey=True)
    colors = [_PURPLE, _ORANGE, _GREEN]
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


# ------------------------------------------------------------------------------ the heads study
def datasets_table(why: pd.DataFrame) -> Table:
    """Chapter 6, 'On real text (b)': the gold-label teacher and ceiling accuracy of the frozen
    features on the datasets left out or re-planted (rows: dataset; columns ``acc_weak``,
    ``acc_ceiling``, means over seeds)."""
    _require(why, ["acc_weak", "acc_ceiling"], "why")
    df = why.reset_index()
    return present_table(
        df,
        {
            "dataset": "dataset (gold labels)",
            "acc_weak": "MiniLM-L1 teacher accuracy",
            "acc_ceiling": "MiniLM-L6 ceiling accuracy",
        },
        formats={"acc_weak": ".3f", "acc_ceiling": ".3f"},
        caption="Frozen features on gold labels (3 seeds): where the strong features are not "
        "stronger",
    )


def _cell_label(dataset: str, noise: float) -> str:
    return f"{dataset}, noise {noise:.0%}"


def difference_table(diffs: pd.DataFrame, overall: Mapping[str, Any]) -> Table:
    """Chapter 6, table 'reverse minus forward': per cell (dataset × label noise of the teacher)
    the paired differences reverse − forward of the student's accuracy and gain (the rows of
    :func:`w2s_utils.analysis.paired_differences`), and the overall row (``overall``: ``{"d_acc":
    Interval, "d_gain": Interval}`` over every cell)."""
    _require(diffs, ["dataset", "label_noise", "n_seeds", "d_acc", "d_gain"], "diffs")
    df = diffs.copy()
    df["cell"] = [_cell_label(d, n) for d, n in zip(df.dataset, df.label_noise, strict=True)]
    total = {"cell": "all cells", "n_seeds": int(df.n_seeds.min())}
    for q in ("d_acc", "d_gain"):
        iv = overall[q]
        total.update({q: iv.point, f"{q}_lo": iv.lo, f"{q}_hi": iv.hi})
    df = pd.concat([df, pd.DataFrame([total])], ignore_index=True)
    for q in ("d_acc", "d_gain"):
        df[f"{q}_says"] = [
            verdict(
                lo,
                hi,
                above="reverse better",
                below="forward better",
            ).replace("not distinguishable from", "no difference")
            for lo, hi in zip(df[f"{q}_lo"], df[f"{q}_hi"], strict=True)
        ]
    return present_table(
        df,
        {
            "cell": "dataset, teacher's label noise",
            "n_seeds": "seeds",
            "d_acc": "accuracy, reverse − forward",
            "d_acc_says": "accuracy verdict",
            "d_gain": "gain (nats), reverse − forward",
            "d_gain_says": "gain verdict",
        },
        formats={"d_acc": "+.4f", "d_gain": "+.5f"},
        intervals={"d_acc": ("d_acc_lo", "d_acc_hi"), "d_gain": ("d_gain_lo", "d_gain_hi")},
        caption="Reverse-KL minus forward-KL students on the same teachers and seeds "
        "(paired; 95% intervals over seeds and test examples)",
    )


def difference_figure(diffs: pd.DataFrame, overall: Mapping[str, Any]) -> Figure:
    """Chapter 6, figure 'fig-ch6-differences': the paired differences reverse − forward of
    accuracy and gain per cell and overall, with 95% intervals."""
    _require(diffs, ["dataset", "label_noise", "d_acc", "d_gain"], "diffs")
    labels = [_cell_label(d, n) for d, n in zip(diffs.dataset, diffs.label_noise, strict=True)]
    labels.append("all cells")
    fig, axes = plt.subplots(1, 2, figsize=(7.5, 0.38 * len(labels) + 1.4), sharey=True)
    y = np.arange(len(labels))[::-1]
    for ax, q, title, scale in zip(
        axes,
        ("d_acc", "d_gain"),
        ("student accuracy", "student gain"),
        (100.0, 1.0),
        strict=True,
    ):
        pts = [scale * x for x in (*diffs[q], overall[q].point)]
        los = [scale * x for x in (*diffs[f"{q}_lo"], overall[q].lo)]
        his = [scale * x for x in (*diffs[f"{q}_hi"], overall[q].hi)]
        colors = [_PURPLE] * len(diffs) + ["black"]
        for yi, p, lo, hi, c in zip(y, pts, los, his, colors, strict=True):
            ax.errorbar(p, yi, xerr=[[p - lo], [hi - p]], fmt="o", color=c, capsize=3, ms=5)
        ax.axvline(0, color="0.4", lw=1)
        ax.xaxis.set_major_locator(MaxNLocator(4))
        ax.set_title(title, fontsize=10)
        ax.set_xlabel(f"reverse − forward [{'percentage points' if scale != 1 else 'nats'}]")
    axes[0].set_yticks(y, labels, fontsize=9)
    fig.tight_layout()
    return fig


def _noise_text(noises: Sequence[float]) -> str:
    parts = [f"{v:.0%}" if v else "0" for v in noises]
    return parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " or " + parts[-1]


def _count_text(n: int, total: int) -> str:
    if n == 0:
        return "none"
    return "all" if n == total else f"{n}"


def study_glue(
    diffs: pd.DataFrame,
    overall: Mapping[str, Any],
    per_run: pd.DataFrame,
    label_noises: Sequence[float],
) -> dict[str, Any]:
    """Chapter 6, 'On real text (b)': the numbers of the linear-head study (cells, seeds, the
    teachers' and students' accuracies per dataset, the paired differences reverse − forward)
    and ``hs_verdict``, the paragraph that answers whether the lead of reverse-KL students
    reported by Yao et al. (2025b) reproduces here (verdicts only from 95% intervals).
    ``per_run``: :func:`w2s_utils.analysis.per_run_table` of every run, by ``dataset`` and
    ``label_noise``."""
    _require(diffs, ["dataset", "label_noise", "n_seeds", "d_acc", "d_gain"], "diffs")
    _require(
        per_run,
        ["dataset", "label_noise", "acc_weak", "acc_student", "acc_ceiling", "gain"],
        "per_run",
    )
    n_cells = len(diffs)
    out: dict[str, Any] = {
        "hs_cells": n_cells,
        "hs_seeds": int(diffs.n_seeds.min()),
        "hs_runs": len(per_run),
        "hs_comparisons": 2 * n_cells,
        "hs_noise_text": _noise_text(label_noises),
    }
    for q, name in (("d_acc", "acc"), ("d_gain", "gain")):
        iv = overall[q]
        out[f"hs_{name}_all"] = iv.point
        out[f"hs_{name}_all_lo"] = iv.lo
        out[f"hs_{name}_all_hi"] = iv.hi
        out[f"hs_{name}_all_text"] = format_interval(iv.point, iv.lo, iv.hi, "+.4f")
        out[f"hs_{name}_rev_better"] = int((diffs[f"{q}_lo"] > 0).sum())
        out[f"hs_{name}_fwd_better"] = int((diffs[f"{q}_hi"] < 0).sum())
        out[f"hs_{name}_max_abs"] = float(diffs[q].abs().max())
    summary = per_run.rename(columns={"label_noise": "noise"})
    for ds, sub in summary.groupby("dataset"):
        clean = sub[sub.noise == sub.noise.min()]
        key = ds.replace("_", "")
        out[f"hs_{key}_acc_weak"] = float(clean.acc_weak.mean())
        out[f"hs_{key}_acc_student"] = float(clean.acc_student.mean())
        out[f"hs_{key}_acc_ceiling"] = float(clean.acc_ceiling.mean())
        worst = sub[sub.noise == sub.noise.max()]
        out[f"hs_{key}_acc_weak_noisy"] = float(worst.acc_weak.mean())
    gain_students = summary.groupby(["dataset", "noise"]).gain.mean()
    out["hs_student_gain_max"] = float(gain_students.max())
    acc = overall["d_acc"]
    acc_word = verdict(acc.lo, acc.hi, above="ahead", below="behind")
    acc_rev, acc_fwd = out["hs_acc_rev_better"], out["hs_acc_fwd_better"]
    gain_rev, gain_fwd = out["hs_gain_rev_better"], out["hs_gain_fwd_better"]
    reproduces = acc.lo > 0 and acc_fwd == 0
    lead = "**Does the lead of reverse-KL students reproduce here? " + (
        "Yes, in accuracy.** " if reproduces else "Not in accuracy.** "
    )
    acc_sentence = (
        f"The reverse-KL student is significantly more accurate in "
        f"{_count_text(acc_rev, n_cells)} of the {n_cells} cells and significantly less accurate "
        f"in {_count_text(acc_fwd, n_cells)}; over all cells the difference, reverse − forward, "
        f"is {out['hs_acc_all_text']}"
        + (
            " — not distinguishable from zero, and smaller than a fifth of a percentage point "
            "either way at 95%. "
            if acc_word == "not distinguishable from" and max(abs(acc.lo), abs(acc.hi)) < 0.002
            else (
                " — not distinguishable from zero. "
                if acc_word == "not distinguishable from"
                else f" — the reverse-KL students are {acc_word}. "
            )
        )
    )
    g = overall["d_gain"]
    share = g.point / out["hs_student_gain_max"] if out["hs_student_gain_max"] > 0 else math.nan
    gain_sentence = (
        f"In cross-entropy the reverse-KL students are significantly better in {gain_rev} cells "
        f"and significantly worse in {gain_fwd}, by {out['hs_gain_all_text']} nats over all "
        "cells"
        + (
            f", a small amount: {share:.0%} of the largest mean gain of a student over its teacher "
            f"in the grid ({out['hs_student_gain_max']:.3f} nats). "
            if math.isfinite(share) and g.lo > 0
            else ". "
        )
    )
    noisy = diffs[diffs.label_noise == diffs.label_noise.max()]
    noisy_any = bool(((noisy.d_acc_lo > 0) | (noisy.d_gain_lo > 0)).any())
    noise_sentence = (
        "Nor do the reverse-KL students pull ahead as the teachers get noisier: "
        f"with {noisy.label_noise.iloc[0]:.0%} of the teachers' labels flipped, "
        + (
            "they are ahead in some cell (see the table). "
            if noisy_any
            else "no difference is significant in either quantity. "
        )
    )
    out["hs_verdict"] = (
        lead
        + acc_sentence
        + gain_sentence
        + noise_sentence
        + f"These are {2 * n_cells} per-cell comparisons at 95% without a multiplicity "
        "correction, so about one significant cell in twenty is expected by chance alone. "
        "At this scale — linear heads on frozen MiniLM features, where the reverse-KL student is "
        "a stationary point started from the forward one — the choice of direction hardly "
        "matters; the settings of Yao et al. (2025b: fine-tuned GPT-2, Pythia and Qwen2.5 "
        "on preference data) are far from these, and this result neither refutes nor explains "
        "theirs."
    )
    return out


def guarantee_table(table: pd.DataFrame) -> Table:
    """Chapter 6, table 'does the student beat its teacher by the disagreement?': per cell, loss
    and split (rows of :func:`w2s_utils.analysis.split_table` over
    :func:`w2s_utils.engine.heads.gain_and_disagreement`) the gain, the disagreement in the
    direction of the student's loss and gain − disagreement, with 95% intervals."""
    _require(
        table,
        [
            "dataset",
            "label_noise",
            "loss",
            "split",
            "gain",
            "disagreement",
            "gain_minus_disagreement",
        ],
        "table",
    )
    df = table.copy()
    df["cell"] = [_cell_label(d, n) for d, n in zip(df.dataset, df.label_noise, strict=True)]
    df["student"] = df["loss"].map(_LOSS_LABEL)
    df["inputs"] = df["split"].map({"test": "held out", "train": "training"})
    df["says"] = [
        verdict(lo, hi, above="beats it", below="falls short").replace(
            "not distinguishable from", "undecided"
        )
        for lo, hi in zip(df.gain_minus_disagreement_lo, df.gain_minus_disagreement_hi, strict=True)
    ]
    return present_table(
        df,
        {
            "cell": "dataset, teacher's label noise",
            "student": "student",
            "inputs": "inputs",
            "gain": "gain",
            "disagreement": "disagreement",
            "gain_minus_disagreement": "gain − disagreement",
            "says": "says",
        },
        formats={"gain": "+.4f", "disagreement": ".4f", "gain_minus_disagreement": "+.4f"},
        intervals={
            "gain": ("gain_lo", "gain_hi"),
            "disagreement": ("disagreement_lo", "disagreement_hi"),
            "gain_minus_disagreement": ("gain_minus_disagreement_lo", "gain_minus_disagreement_hi"),
        },
        caption="Gain against the disagreement in the direction of the student's loss "
        "(nats; 95% intervals: over seeds and test examples on held-out inputs, over seeds on "
        "the training inputs each seed draws)",
    )


def guarantee_figure(table: pd.DataFrame) -> Figure:
    """Chapter 6, figure 'fig-ch6-guarantee': gain − disagreement with 95% intervals per cell and
    student, on held-out inputs (left) and on the student's training inputs (right)."""
    _require(table, ["dataset", "label_noise", "loss", "split", "gain_minus_disagreement"], "table")
    cells = table.drop_duplicates(["dataset", "label_noise"])[["dataset", "label_noise"]]
    labels = [_cell_label(d, n) for d, n in zip(cells.dataset, cells.label_noise, strict=True)]
    y = np.arange(len(labels))[::-1].astype(float)
    fig, axes = plt.subplots(1, 2, figsize=(7.5, 0.42 * len(labels) + 1.6), sharey=True)
    q = "gain_minus_disagreement"
    for ax, split in zip(axes, ("test", "train"), strict=True):
        for off, loss in ((0.14, "forward"), (-0.14, "reverse")):
            sub = table[(table.split == split) & (table.loss == loss)]
            sub = cells.merge(sub, on=["dataset", "label_noise"], how="left")
            err = np.vstack([sub[q] - sub[f"{q}_lo"], sub[f"{q}_hi"] - sub[q]])
            ax.errorbar(
                sub[q],
                y + off,
                xerr=err,
                fmt="o",
                ms=4,
                capsize=2,
                color=_LOSS_COLOR[loss],
                label=f"{_LOSS_LABEL[loss]} student",
            )
        ax.axvline(0, color="0.3", lw=1)
        ax.set_title(_SPLIT_LABEL[split], fontsize=10)
        ax.set_xlabel("gain − disagreement [nats]")
    axes[0].set_yticks(y, labels, fontsize=9)
    handles, names = axes[0].get_legend_handles_labels()
    fig.legend(handles, names, loc="lower center", ncol=2, fontsize=9, bbox_to_anchor=(0.5, 0))
    fig.tight_layout(rect=(0, 0.1, 1, 1))
    return fig


def _split_counts(table: pd.DataFrame, prefix: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    q = "gain_minus_disagreement"
    for loss in ("forward", "reverse"):
        for split in ("test", "train"):
            sub = table[(table.loss == loss) & (table.split == split)]
            key = f"{prefix}_{loss}_{split}"
            out[f"{key}_n"] = len(sub)
            out[f"{key}_below"] = int((sub[f"{q}_hi"] < 0).sum())
            out[f"{key}_above"] = int((sub[f"{q}_lo"] > 0).sum())
            out[f"{key}_min"] = float(sub[q].min())
            out[f"{key}_max"] = float(sub[q].max())
            out[f"{key}_gain_min"] = float(sub["gain"].min())
            out[f"{key}_gain_max"] = float(sub["gain"].max())
    return out


def guarantee_glue(table: pd.DataFrame, realizable: Sequence[str] = ("sarcasm",)) -> dict[str, Any]:
    """Chapter 6, the guarantee check of the linear-head study: per student and split, how many
    cells fall significantly short of / above gain = disagreement and the range of the margin,
    and ``gc_sentence``, the paragraph that reads them (``realizable``: the datasets whose truth
    is planted on the strong features, so that the students' class contains it)."""
    out = _split_counts(table, "gc")
    q = "gain_minus_disagreement"
    test, train = table[table.split == "test"], table[table.split == "train"]
    real = train[train.dataset.isin(realizable)]
    gold = train[~train.dataset.isin(realizable)]
    n_test, short = len(test), int((test[f"{q}_hi"] < 0).sum())
    out["gc_test_short"] = short
    out["gc_test_n"] = n_test
    above = int((test[f"{q}_lo"] > 0).sum())
    text = (
        "On held-out texts no student beats its teacher by the full disagreement: "
        if above == 0
        else f"On held-out texts {above} of the {n_test} (cell, loss) pairs lie above the line: "
    )
    text += (
        f"gain − disagreement is significantly negative in {_count_text(short, n_test)} of the "
        f"{n_test} (cell, loss) pairs, {_range(test[q])} nats. "
    )
    if len(real):
        worst = float(real[q].abs().max())
        out["gc_real_train_max"] = worst
        rev = real[real.loss == "reverse"]
        text += (
            f"On their own training texts the students of the planted cells, whose class "
            f"contains the truth, come within {worst:.4f} nats of equality (the reverse-KL "
            f"students within {float(rev[q].abs().max()):.4f}), as the second-order "
            "propositions above predict"
        )
        if len(gold):
            text += (
                "; the students of the gold-label cells, whose class need not contain the truth, "
                f"fall short by {-float(gold[q].max()):.4f} to {-float(gold[q].min()):.4f} nats "
                "even there: without realizability the miss is not of second order. "
            )
        else:
            text += ". "
    text += (
        "The reverse-KL students' margins are not better than the forward-KL students' on "
        "held-out texts: the direction of the loss changes the in-sample miss, not the "
        "out-of-sample one."
        if _margins_close(test)
        else "The two losses leave different margins on held-out texts (see the table)."
    )
    out["gc_sentence"] = text
    return out


def _margins_close(test: pd.DataFrame) -> bool:
    """Whether on every cell the two students' held-out margins have overlapping intervals."""
    q = "gain_minus_disagreement"
    keys = ["dataset", "label_noise"]
    r, f = test[test.loss == "reverse"], test[test.loss == "forward"]
    both = r.merge(f, on=keys, suffixes=("_r", "_f"), how="inner")
    overlap = (both[f"{q}_lo_r"] <= both[f"{q}_hi_f"]) & (both[f"{q}_lo_f"] <= both[f"{q}_hi_r"])
    return bool(overlap.all())


def headline_glue(
    mix: pd.DataFrame,
    overall: Mapping[str, Any],
    guarantee: pd.DataFrame,
    n_cells: int,
    n_seeds: int,
) -> dict[str, Any]:
    """Chapter 6, the frame's main result (``headline``): the theorem's check and the verdict of
    the linear-head study in one sentence, every number from the build."""
    acc, g = overall["d_acc"], overall["d_gain"]
    test = guarantee[guarantee.split == "test"]
    short = int((test.gain_minus_disagreement_hi < 0).sum())
    holds = int(mix.holds.sum())
    text = (
        "Under its hypotheses the student beats its teacher by at least their disagreement "
        f"(in {holds} of {len(mix)} random instances, with equality in the class's relative "
        "interior). On softmax heads over frozen features, where a last-layer guarantee is "
        "invoked, reverse- and forward-KL students are equally accurate — accuracy, reverse − "
        f"forward, {format_interval(acc.point, acc.lo, acc.hi, '+.4f')} over {n_cells} cells × "
        f"{n_seeds} seeds; the reverse ones are {format_interval(g.point, g.lo, g.hi, '+.4f')} "
        f"nats better in cross-entropy — and in {short} of {len(test)} (cell, loss) pairs the "
        "students fall significantly short of the disagreement on held-out texts."
    )
    return {"headline": text}


# ------------------------------------------------------------------------------ regression reading
def reading_table(table: pd.DataFrame) -> Table:
    """Chapter 6, table of the Bernoulli reading: per target noise, student and split (rows of
    :func:`w2s_utils.analysis.split_table`), exact gain, disagreement and their difference."""
    _require(
        table,
        ["target_noise", "loss", "split", "gain", "disagreement", "gain_minus_disagreement"],
        "table",
    )
    df = table.copy()
    df["student"] = df["loss"].map(_LOSS_LABEL)
    df["inputs"] = df["split"].map({"test": "held out", "train": "training"})
    return present_table(
        df,
        {
            "target_noise": "noise σ of the teacher's targets",
            "student": "student",
            "inputs": "inputs",
            "gain": "exact gain",
            "disagreement": "disagreement",
            "gain_minus_disagreement": "gain − disagreement",
        },
        formats={
            "target_noise": ".1f",
            "gain": "+.4f",
            "disagreement": ".4f",
            "gain_minus_disagreement": "+.4f",
        },
        intervals={
            "gain": ("gain_lo", "gain_hi"),
            "disagreement": ("disagreement_lo", "disagreement_hi"),
            "gain_minus_disagreement": ("gain_minus_disagreement_lo", "gain_minus_disagreement_hi"),
        },
        caption="The regression reading: Bernoulli targets, binary KL (exact errors, nats; 95% "
        "intervals as in the study)",
    )


def reading_glue(table: pd.DataFrame) -> dict[str, Any]:
    """Chapter 6, 'The regression reading': the counts of :func:`guarantee_glue` per student and
    split, the target noises, and ``rd_sentence``, the paragraph that reads them."""
    out = _split_counts(table, "rd")
    out["rd_noises"] = " and ".join(f"{v:g}" for v in sorted(table.target_noise.unique()))
    out["rd_seeds"] = int(table.n_seeds.min())
    q = "gain_minus_disagreement"
    test, train = table[table.split == "test"], table[table.split == "train"]
    rev_train = train[train.loss == "reverse"]
    fwd_train = train[train.loss == "forward"]
    gain_pos = int((test.gain_lo > 0).sum())
    out["rd_sentence"] = (
        f"With target noise σ = {out['rd_noises']} and {out['rd_seeds']} seeds, every student "
        f"gains on held-out texts: exact gains {_range(test.gain)} nats ({gain_pos} of "
        f"{len(test)} significantly positive). But the gain stays below the disagreement: "
        f"gain − disagreement is {_range(test[q])} nats on held-out texts "
        f"({int((test[f'{q}_hi'] < 0).sum())} of {len(test)} significantly negative). On the "
        "students' own training texts the margin nearly closes, for the reverse-KL students "
        f"most: theirs is {_range(rev_train[q])} nats, the forward-KL students' "
        f"{_range(fwd_train[q])}."
    )
    return out


# ------------------------------------------------------------------------------ fine-tuned students
def lm_table(lm: pd.DataFrame) -> Table:
    """Chapter 6, the fine-tuned students by loss (rows of
    :func:`w2s_utils.analysis.loss_comparison`)."""
    _require(
        lm,
        [
            "dataset",
            "weak",
            "loss",
            "n_seeds",
            "acc_weak",
            "acc_student",
            "pgr",
            "gain",
            "eps_rev",
            "slack",
        ],
        "lm",
    )
    df = lm.copy()
    df["loss"] = df["loss"].map({"xent": "forward KL", "reverse_kl": "reverse KL"})
    return present_table(
        df,
        {
            "dataset": "dataset",
            "weak": "teacher",
            "loss": "student's loss",
            "n_seeds": "seeds",
            "acc_weak": "teacher accuracy",
            "acc_student": "student accuracy",
            "gain": "gain (nats)",
            "eps_rev": "E KL(F_sw‖F_w)",
            "slack": "gain − E KL(F_sw‖F_w)",
        },
        formats={
            "acc_weak": ".3f",
            "acc_student": ".3f",
            "gain": "+.3f",
            "eps_rev": ".3f",
            "slack": "+.3f",
        },
        intervals={q: (f"{q}_lo", f"{q}_hi") for q in ("acc_student", "gain", "eps_rev", "slack")},
        caption="Fine-tuned students (95% intervals over seeds and test examples)",
    )


def lm_figure(lm: pd.DataFrame, paired: pd.DataFrame) -> Figure:
    """Chapter 6, figure 'fig-ch6-finetuned': left, gain against ``eps_rev`` per teacher and loss
    with intervals; right, the paired accuracy difference reverse − forward per teacher."""
    fig, axes = plt.subplots(1, 2, figsize=(7.5, 4))
    ax = axes[0]
    for loss, color, label in (
        ("xent", _ORANGE, "forward KL"),
        ("reverse_kl", _PURPLE, "reverse KL"),
    ):
        sub = lm[lm.loss == loss]
        ax.errorbar(
            sub.eps_rev,
            sub.gain,
            xerr=np.vstack([sub.eps_rev - sub.eps_rev_lo, sub.eps_rev_hi - sub.eps_rev]),
            yerr=np.vstack([sub.gain - sub.gain_lo, sub.gain_hi - sub.gain]),
            fmt="o",
            ms=4,
            capsize=2,
            color=color,
            label=label,
        )
    hi = float(max(lm.gain_hi.max(), lm.eps_rev_hi.max())) * 1.05
    ax.plot([0, hi], [0, hi], color="0.3", ls="--", lw=1, label="gain = disagreement")
    ax.set_xlim(0, hi)
    ax.axhline(0, color="0.75", lw=0.8)
    ax.set_xlabel(r"$\mathbb{E}\,KL(F_{sw}\|F_w)$ [nats]")
    ax.set_ylabel("gain [nats]")
    handles, labels = ax.get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=3, fontsize=9, bbox_to_anchor=(0.5, 0))
    ax = axes[1]
    y = np.arange(len(paired))[::-1]
    err = np.vstack([paired["diff"] - paired.diff_lo, paired.diff_hi - paired["diff"]])
    ax.errorbar(paired["diff"], y, xerr=err, fmt="o", color=_PURPLE, capsize=3)
    ax.axvline(0, color="0.3", lw=1)
    ax.set_yticks(
        y, [f"{w} on {d}" for d, w in zip(paired.dataset, paired.weak, strict=True)], fontsize=9
    )
    ax.set_xlabel("student accuracy, reverse − forward")
    fig.tight_layout(rect=(0, 0.1, 1, 1))
    return fig


def lm_glue(lm: pd.DataFrame, paired: pd.DataFrame) -> dict[str, Any]:
    """Chapter 6, 'On real text (c)': verdicts of the fine-tuned students."""
    rev, fwd = lm[lm.loss == "reverse_kl"], lm[lm.loss == "xent"]
    return {
        "lm_cells": len(rev),
        "lm_seeds": int(lm.n_seeds.min()),
        "lm_rev_below": int((rev.slack_hi < 0).sum()),
        "lm_rev_above": int((rev.slack_lo > 0).sum()),
        "lm_fwd_below": int((fwd.slack_hi < 0).sum()),
        "lm_rev_acc": float(rev.acc_student.mean()),
        "lm_fwd_acc": float(fwd.acc_student.mean()),
        "lm_diff_pos": int((paired.diff_lo > 0).sum()),
        "lm_diff_neg": int((paired.diff_hi < 0).sum()),
        "lm_diff_mean": float(paired["diff"].mean()),
        "lm_diff_max": float(paired["diff"].abs().max()),
        "lm_width_median": float((paired.diff_hi - paired.diff_lo).median()),
    }
