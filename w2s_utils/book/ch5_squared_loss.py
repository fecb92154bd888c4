"""Chapter 5 (misfit and gain under squared loss): tables, figures and glue; presentation only.

The science is computed in the chapter's visible cells (``theory.sweep`` of the squared-loss
results, :func:`w2s_utils.engine.regression.charikar_synthetic` and
:func:`~w2s_utils.engine.regression.text_regressions`, intervals from
:mod:`w2s_utils.metrics`); this module summarises what those return into the tables a reader sees
(through :func:`w2s_utils.book.tables.present_table`), draws the gain-against-misfit figures and
builds the dictionaries the chapter glues in bulk. :data:`REFERENCE_TIMING` records the one
measurement the chapter cannot repeat on every build: Charikar et al.'s reference notebook timed
on this machine (see ``benchmarks/bench_charikar_reference.py``).

Conventions: ``gain = err(f_w) - err(f_sw)`` (positive: the student is better); the misfit is
the squared-loss one, ``E(f_sw - f_w)^2``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from w2s_utils.book.tables import Table, present_table
from w2s_utils.metrics import Interval

__all__ = [
    "REFERENCE_TIMING",
    "TASK_NAMES",
    "TEACHER_NAMES",
    "gain_misfit_figure",
    "reference_extrapolation",
    "synthetic_figure",
    "synthetic_glue",
    "synthetic_summary",
    "synthetic_table",
    "text_figure",
    "text_glue",
    "text_summary",
    "text_tables",
    "trial_glue",
    "trial_table",
    "trial_view",
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

#: How the chapter names the text tasks and the teachers (the reader's words, not code names).
TASK_NAMES = {
    "gold": "gold labels",
    "planted-gold": "planted: gold fit",
    "planted-random-1": "planted: random 1",
    "planted-random-2": "planted: random 2",
}
TEACHER_NAMES = {"minilm-l1": "MiniLM layer 1", "bow": "bag of words"}
_KIND_NAMES = {
    "realizable": "realizable, convex class",
    "nonrealizable": "not realizable (linear heads)",
    "nonconvex": "not convex (union of lines)",
}


def _name(mapping: Mapping[str, str], key: str) -> str:
    return mapping.get(key, key)


def reference_extrapolation(
    our_seconds: float, timing: Mapping[str, Any] = REFERENCE_TIMING
) -> dict[str, float]:
    """Seconds per step, extrapolated full-run seconds and hours of the reference notebook, and
    its ratio to ``our_seconds``. Chapter 5, the "Wall time" paragraph."""
    if not (isinstance(our_seconds, int | float | np.floating) and our_seconds > 0):
        raise ValueError(f"our_seconds: must be a number > 0 (seconds), got {our_seconds!r}")
    per_step = float(timing["seconds"]) / float(timing["steps"])
    full = per_step * float(timing["full_steps"])
    return {
        "seconds_per_step": per_step,
        "full_seconds": full,
        "full_hours": full / 3600.0,
        "full_steps": float(timing["full_steps"]),
        "ratio": full / float(our_seconds),
    }


# ------------------------------------------------------------------ random-instance checks
def trial_table(
    plain: Mapping[str, pd.DataFrame], agnostic: Mapping[str, pd.DataFrame]
) -> pd.DataFrame:
    """One row per instance kind from two ``theory.sweep`` frames per kind (rows: instances):
    ``plain`` of ``squared_misfit_gain`` (gain >= misfit), ``agnostic`` of
    ``squared_misfit_gain_agnostic`` (gain >= misfit - 2 sqrt(misfit approx)). Columns: kind,
    instances, holds (counts), smallest slacks, largest ``approx``. Chapter 5, table 'random
    instances'."""
    rows = []
    for kind, p in plain.items():
        a = agnostic[kind]
        if len(a) != len(p):
            raise ValueError(f"{kind}: {len(p)} plain and {len(a)} agnostic instances; pass both")
        rows.append(
            dict(
                kind=kind,
                instances=len(p),
                plain_holds=int(p.holds.sum()),
                plain_fails=int((~p.holds.astype(bool)).sum()),
                agnostic_holds=int(a.holds.sum()),
                plain_slack_min=float(p.slack.min()),
                agnostic_slack_min=float(a.slack.min()),
                approx_max=float(a.approx.max()),
            )
        )
    return pd.DataFrame(rows)


def trial_view(trials: pd.DataFrame) -> Table:
    """:func:`trial_table` as the page shows it. Chapter 5, table 'random instances'."""
    df = trials.assign(kind=[_name(_KIND_NAMES, k) for k in trials.kind])
    return present_table(
        df,
        {
            "kind": "Instances",
            "instances": "Drawn",
            "plain_holds": "gain ≥ misfit holds",
            "agnostic_holds": "gain ≥ misfit − 2√(misfit·approx) holds",
            "plain_slack_min": "Smallest gain − misfit",
            "approx_max": "Largest approx",
        },
        formats={"plain_slack_min": "+.2e", "approx_max": ".2e"},
        caption="Random instances: in how many of those drawn each inequality holds; the "
        "smallest gain − misfit and the largest approx = E(f°ₛ − F*)² over them.",
    )


def trial_glue(trials: pd.DataFrame) -> dict[str, Any]:
    """The glue of the random-instance section (keys ``tr_*``). Chapter 5."""
    t = trials.set_index("kind")
    out: dict[str, Any] = {}
    for kind in t.index:
        out[f"tr_n_{kind}"] = int(t.loc[kind, "instances"])
        out[f"tr_fail_{kind}"] = int(t.loc[kind, "plain_fails"])
        out[f"tr_agn_holds_{kind}"] = int(t.loc[kind, "agnostic_holds"])
        out[f"tr_agn_slack_min_{kind}"] = float(t.loc[kind, "agnostic_slack_min"])
    return out


# ------------------------------------------------------------------ synthetic experiment
def synthetic_summary(
    table: pd.DataFrame, ratio_ci: Mapping[str, Interval], predicted_ratio: float
) -> pd.DataFrame:
    """Per strong representation (``learned``, ``true``): tasks; the share with gain >= misfit and
    with gain > 0; the median gain/misfit over tasks with its interval (``ratio_ci``, computed in
    the chapter: a percentile bootstrap over tasks) and ``predicted_ratio`` (the finite-sample
    prediction ``(1 - c)/(1 + c)``); medians of misfit, gain, the ceiling's and the teacher's
    errors, each divided by the task's ``Var F*``; the largest in-sample ``|gain - misfit| /
    Var F*``; the share of tasks with ``gain >= misfit - 2 sqrt(misfit * err_ceiling)`` (the
    agnostic bound with the ceiling's test error for ``approx``). Chapter 5, table 'synthetic'."""
    rel = table.assign(
        ratio=table.gain / table.misfit,
        misfit_rel=table.misfit / table.var_target,
        gain_rel=table.gain / table.var_target,
        ceiling_rel=table.err_ceiling / table.var_target,
        weak_rel=table.err_weak / table.var_target,
        train_rel=table.train_slack.abs() / table.var_target,
        agnostic_gap=table.gain - (table.misfit - 2 * np.sqrt(table.misfit * table.err_ceiling)),
    )
    out = rel.groupby("strong", sort=False).agg(
        tasks=("task", "size"),
        above=("ratio", lambda r: float((r >= 1).mean())),
        gain_positive=("gain_rel", lambda r: float((r > 0).mean())),
        ratio=("ratio", "median"),
        misfit_rel=("misfit_rel", "median"),
        gain_rel=("gain_rel", "median"),
        ceiling_rel=("ceiling_rel", "median"),
        weak_rel=("weak_rel", "median"),
        train_rel_max=("train_rel", "max"),
        agnostic_above=("agnostic_gap", lambda r: float((r >= 0).mean())),
    )
    for name in out.index:
        iv = ratio_ci[name]
        if not np.isclose(iv.point, out.loc[name, "ratio"]):
            raise ValueError(f"ratio_ci[{name!r}]: is not an interval of the median gain/misfit")
        out.loc[name, "ratio_lo"], out.loc[name, "ratio_hi"] = iv.lo, iv.hi
    out["predicted"] = float(predicted_ratio)
    return out


def synthetic_table(summary: pd.DataFrame) -> Table:
    """:func:`synthetic_summary` as the page shows it. Chapter 5, table 'synthetic'."""
    names = {"learned": "learned hₛ", "true": "hₛ = h* (realizable)"}
    df = summary.reset_index().assign(strong=lambda d: [names.get(s, s) for s in d.strong])
    return present_table(
        df,
        {
            "strong": "Strong representation",
            "tasks": "Tasks",
            "ratio": "Median gain / misfit [95%]",
            "predicted": "Finite-sample prediction",
            "above": "Share with gain ≥ misfit",
            "ceiling_rel": "Ceiling error / Var F*",
            "weak_rel": "Teacher error / Var F*",
            "train_rel_max": "Largest in-sample |gain − misfit| / Var F*",
        },
        formats={
            "ratio": ".3f",
            "predicted": ".3f",
            "above": ".0%",
            "ceiling_rel": ".3f",
            "weak_rel": ".3f",
            "train_rel_max": ".1e",
        },
        intervals={"ratio": ("ratio_lo", "ratio_hi")},
        caption="Synthetic transfer tasks, on fresh inputs. Median gain/misfit with a 95% "
        "percentile-bootstrap interval over tasks; the finite-sample prediction (1 − c)/(1 + c) "
        "is the realizable case's and, for the learned representation, the estimation part "
        "alone; errors in units of each task's Var F*.",
    )


def synthetic_glue(
    summary: pd.DataFrame, timing: Any, *, c: float, n_train: int, width: int
) -> dict[str, Any]:
    """The glue of the synthetic section (keys ``syn_*``, ``ref_*``); ``timing`` is the
    experiment's :class:`~w2s_utils.engine.regression.Timing`, ``c`` the finite-sample factor
    ``c(n_train, width)``. Chapter 5."""
    out: dict[str, Any] = {"syn_c": float(c), "syn_n_train": int(n_train), "syn_width": int(width)}
    for s in summary.index:
        for c in summary.columns.drop("tasks"):
            out[f"syn_{s}_{c}"] = float(summary.loc[s, c])
    out["syn_tasks"] = int(summary.loc["learned", "tasks"])
    out["syn_predicted"] = float(summary["predicted"].iloc[0])
    ref = reference_extrapolation(timing.seconds)
    out.update(
        syn_seconds=timing.seconds,
        syn_rep_seconds=timing.parts["representations"],
        ref_steps=f"{int(ref['full_steps']):,}",
        ref_ms_per_step=1000 * ref["seconds_per_step"],
        ref_hours=ref["full_hours"],
        ref_ratio=f"{ref['ratio']:,.0f}",
    )
    return out


# ------------------------------------------------------------------ real text
def text_summary(
    table: pd.DataFrame, intervals: Mapping[tuple, Mapping[str, Interval]]
) -> pd.DataFrame:
    """One row per (dataset, task, weak) of :func:`~w2s_utils.engine.regression.text_regressions`
    tables (concatenated over datasets): seeds, mean misfit and gain over seeds, the predicted
    finite-sample term ``-2 estimation`` (mean over seeds), the largest in-sample ``|gain -
    misfit|`` (planted tasks; NaN for gold), the mean ``cross`` and ``projection_term``, and the
    intervals computed in the chapter (``intervals[dataset, task, weak]``: ``"gap"`` for gain -
    misfit and ``"corrected"`` for gain - misfit + 2 estimation, each a
    :func:`w2s_utils.metrics.seeds_and_test_interval`). Chapter 5, tables 'planted' and 'gold'."""
    rows = []
    for (ds, task, weak), grp in table.groupby(["dataset", "task", "weak"], sort=False):
        ivs = intervals.get((ds, task, weak), {})
        if not {"gap", "corrected"} <= set(ivs):
            raise ValueError(
                f"intervals[{ds!r}, {task!r}, {weak!r}]: need the 'gap' and 'corrected' "
                "intervals of every (dataset, task, weak) cell of the table"
            )
        row = dict(
            dataset=ds,
            task=task,
            weak=weak,
            seeds=len(grp),
            misfit=float(grp.misfit.mean()),
            gain=float(grp.gain.mean()),
            predicted=float(-2 * grp.estimation.mean()),
            train_slack=float(grp.train_slack.abs().max()),
            cross=float(grp.cross.mean()),
            projection_term=float(grp.projection_term.mean()),
        )
        for name in ("gap", "corrected"):
            iv = ivs[name]
            row.update({name: iv.point, f"{name}_lo": iv.lo, f"{name}_hi": iv.hi})
        row["rel_gap"] = row["gap"] / row["misfit"]
        rows.append(row)
    return pd.DataFrame(rows)


def _verdict(lo: float, hi: float) -> str:
    if lo > 0:
        return "above 0"
    if hi < 0:
        return "below 0"
    return "contains 0"


def text_tables(summary: pd.DataFrame) -> tuple[Table, Table]:
    """The planted and the gold-label table of :func:`text_summary` as the page shows them.
    Chapter 5, tables 'planted' and 'gold'."""
    df = summary.assign(
        task_name=[_name(TASK_NAMES, t) for t in summary.task],
        teacher=[_name(TEACHER_NAMES, w) for w in summary.weak],
        verdict=[_verdict(lo, hi) for lo, hi in zip(summary.gap_lo, summary.gap_hi, strict=True)],
        corrected_verdict=[
            _verdict(lo, hi)
            for lo, hi in zip(summary.corrected_lo, summary.corrected_hi, strict=True)
        ],
    )
    common = {
        "dataset": "Dataset",
        "task_name": "Task",
        "teacher": "Teacher",
        "misfit": "Misfit",
        "gain": "Gain",
        "gap": "Gain − misfit [95%]",
        "predicted": "Predicted −2·(estimation error)",
        "corrected": "Gain − misfit + 2·(estimation error) [95%]",
    }
    formats = {
        "misfit": ".4f",
        "gain": "+.4f",
        "gap": "+.4f",
        "predicted": "+.4f",
        "corrected": "+.4f",
        "train_slack": ".0e",
        "cross": "+.4f",
        "projection_term": "+.4f",
    }
    ivs = {"gap": ("gap_lo", "gap_hi"), "corrected": ("corrected_lo", "corrected_hi")}
    n_seeds = int(summary.seeds.max())
    what = (
        f"test-set means over {n_seeds} seeds; 95% intervals over the seeds and the shared "
        "test texts; the estimation error is predicted from each student's own training texts."
    )
    planted = present_table(
        df[df.task != "gold"],
        {**common, "train_slack": "In-sample |gain − misfit|"},
        formats=formats,
        intervals=ivs,
        caption="Planted tasks (the strong class contains F*): " + what,
    )
    gold_cols = {k: v for k, v in common.items() if k != "task_name"}
    gold = present_table(
        df[df.task == "gold"],
        {**gold_cols, "cross": "Cross term", "projection_term": "Projection term"},
        formats=formats,
        intervals=ivs,
        caption="Gold labels (F* not in the strong class; errors against the labels): " + what,
    )
    return planted, gold


def text_glue(summary: pd.DataFrame, datasets: Sequence[str], seeds: Sequence[int]) -> dict:
    """The glue of the real-text section (keys ``tx_*``). Chapter 5."""
    pl, gd = summary[summary.task != "gold"], summary[summary.task == "gold"]

    def count(d: pd.DataFrame, name: str, where: str) -> int:
        lo, hi = d[f"{name}_lo"], d[f"{name}_hi"]
        return int({"above": lo > 0, "below": hi < 0, "cover": (lo <= 0) & (hi >= 0)}[where].sum())

    out: dict[str, Any] = {
        "tx_cells_planted": len(pl),
        "tx_cells_gold": len(gd),
        "tx_seeds": len(seeds),
        "tx_datasets": ", ".join(datasets),
        "tx_train_slack": float(pl.train_slack.max()),
        "tx_planted_relgap_med": float(pl.rel_gap.median()),
        "tx_gold_relgap_med": float(gd.rel_gap.median()),
        "tx_gold_gain_neg": int((gd.gain < 0).sum()),
        "tx_gold_gain_pos": int((gd.gain > 0).sum()),
        "tx_comparisons": len(summary),
    }
    for where in ("above", "below", "cover"):
        out[f"tx_planted_{where}"] = count(pl, "gap", where)
        out[f"tx_corr_{where}"] = count(pl, "corrected", where)
        out[f"tx_gold_{where}"] = count(gd, "gap", where)
        out[f"tx_gold_corr_{where}"] = count(gd, "corrected", where)
    share = pl.predicted / pl.gap
    out["tx_pred_share_med"] = float(share.median())
    return out


# ------------------------------------------------------------------ figures
def _legend_below(fig: Any, axes: Sequence[Any]) -> None:
    """One legend for all panels, below them (it never covers data)."""
    seen: dict[str, Any] = {}
    for ax in axes:
        for h, lab in zip(*ax.get_legend_handles_labels(), strict=True):
            seen.setdefault(lab, h)
    fig.legend(
        list(seen.values()),
        list(seen),
        loc="lower center",
        ncol=len(seen),
        fontsize=9,
        frameon=False,
        bbox_to_anchor=(0.5, 0.0),
    )
    fig.tight_layout(rect=(0, 0.09, 1, 1))


def gain_misfit_figure(
    panels: Sequence[tuple[str, Sequence[tuple[str, Any, Any]]]],
    *,
    predicted: Sequence[float | None] | None = None,
    xlabel: str = r"misfit $= \mathbb{E}(f_{sw} - f_w)^2$",
    ylabel: str = r"gain $= \mathrm{err}(f_w) - \mathrm{err}(f_{sw})$",
    width: float = 7.0,
) -> Any:
    """One square panel per ``(title, [(label, misfit, gain), ...])``, gain against misfit on one
    scale with the line gain = misfit (dashed: the theorem for a linear class, on the student's
    own sample) and, where ``predicted[i]`` is a number, the line gain = ``predicted[i]`` x misfit
    (dotted: the finite-sample prediction on fresh inputs); one legend below the panels.
    Chapter 5, figure 'text'."""
    slopes = list(predicted) if predicted is not None else [None] * len(panels)
    if len(slopes) != len(panels):
        raise ValueError(f"predicted: one slope (or None) per panel, got {len(slopes)}")
    fig, axes = plt.subplots(1, len(panels), figsize=(width, width / len(panels) + 0.5))
    axes = np.atleast_1d(axes)
    for ax, (title, series), slope in zip(axes, panels, slopes, strict=True):
        allm = np.concatenate([np.asarray(m, float) for _, m, _ in series])
        allg = np.concatenate([np.asarray(g, float) for _, _, g in series])
        lo = min(0.0, float(allm.min()), float(allg.min()))
        hi = max(float(allm.max()), float(allg.max()))
        pad = 0.05 * (hi - lo)
        lo, hi = lo - pad, hi + pad
        for i, (label, m, g) in enumerate(series):
            marker = ("o", "s", "D", "^")[i % 4]
            ax.scatter(m, g, s=16, alpha=0.7, lw=0, color=f"C{i}", marker=marker, label=label)
        ax.plot([lo, hi], [lo, hi], color="0.3", ls="--", lw=1, label="gain = misfit")
        if slope is not None:
            ax.plot(
                [lo, hi],
                [slope * lo, slope * hi],
                color="C3",
                ls=":",
                lw=1.5,
                label="finite-sample prediction",
            )
        ax.set_xlim(lo, hi)
        ax.set_ylim(lo, hi)
        ax.set_aspect("equal")
        ax.set_title(title, fontsize=10)
        ax.set_xlabel(xlabel, fontsize=9)
        ax.set_ylabel(ylabel, fontsize=9)
        ax.tick_params(labelsize=9)
        ax.locator_params(nbins=5)
    _legend_below(fig, axes)
    return fig


def synthetic_figure(table: pd.DataFrame, predicted: float, *, width: float = 7.0) -> Any:
    """The ratio gain/misfit of each synthetic transfer task against its misfit (divided by the
    task's ``Var F*``), for the learned and the true strong representation, with the theorem's
    ratio 1 (dashed: on the student's own sample) and the finite-sample prediction ``predicted``
    (dotted: on fresh inputs); one legend below the panels. Chapter 5, figure 'synthetic'."""
    titles = {"learned": r"learned $h_s$", "true": r"$h_s = h^\star$ (realizable)"}
    fig, axes = plt.subplots(1, 2, figsize=(width, 3.4), sharey=True)
    ratio = table.gain / table.misfit
    lo, hi = min(float(ratio.min()), predicted) - 0.02, max(float(ratio.max()), 1.0) + 0.02
    for ax, (key, title) in zip(axes, titles.items(), strict=True):
        d = table[table.strong == key]
        x = d.misfit / d.var_target
        ax.scatter(x, d.gain / d.misfit, s=16, alpha=0.7, lw=0, color="C0", label="transfer task")
        ax.axhline(1.0, color="0.3", ls="--", lw=1, label="gain = misfit (own sample)")
        ax.axhline(
            predicted, color="C3", ls=":", lw=1.5, label="finite-sample prediction (fresh inputs)"
        )
        ax.set_ylim(lo, hi)
        ax.set_title(title, fontsize=10)
        ax.set_xlabel(r"misfit / Var $F^\star$", fontsize=9)
        ax.tick_params(labelsize=9)
        ax.locator_params(axis="x", nbins=5)
    axes[0].set_ylabel("gain / misfit", fontsize=9)
    _legend_below(fig, axes)
    return fig


def text_figure(table: pd.DataFrame, predicted: float) -> Any:
    """Gain against misfit of every text run (one point per dataset, task, teacher and seed):
    planted tasks and gold labels, one series per teacher; on the planted panel the line
    gain = ``predicted`` x misfit (the finite-sample prediction ``(1 - c)/(1 + c)``). Chapter 5,
    figure 'text'."""
    panels = []
    for title, mask in (
        ("planted tasks", table.task != "gold"),
        ("gold labels", table.task == "gold"),
    ):
        sub = table[mask]
        series = [
            (_name(TEACHER_NAMES, w), g.misfit, g.gain) for w, g in sub.groupby("weak", sort=False)
        ]
        panels.append((title, series))
    return gain_misfit_figure(panels, predicted=[predicted, None])
