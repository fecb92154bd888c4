"""Chapter 1 (the pipeline and the error decomposition): its tables, figures and glued findings.

Every function here turns library results into what the chapter shows; the computing is done by
:mod:`w2s_utils.theory` (the decomposition), :mod:`w2s_utils.engine` (the runs) and
:mod:`w2s_utils.analysis` (paired intervals over seeds and test examples).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd
from IPython.display import Markdown
from matplotlib.figure import Figure
from myst_nb import glue

from w2s_utils import theory
from w2s_utils.book import plots
from w2s_utils.book.results import fmt_interval, names_where, verdict, with_err_change
from w2s_utils.engine.models import describe_model
from w2s_utils.theory import instances

__all__ = [
    "ROLES",
    "glue_values",
    "decomposition_check",
    "decomposition_summary",
    "decomposition_glue",
    "worked_example",
    "roles_table",
    "setup_glue",
    "accuracy_figure",
    "pgr_figure",
    "decomposition_figure",
    "result_tables",
    "findings_glue",
]

#: The three predictors of a run, in reading order, with the column of their accuracy.
ROLES = {"weak": "acc_weak", "student": "acc_student", "ceiling": "acc_ceiling"}


def glue_values(values: Mapping[str, Any]) -> None:
    """``myst_nb.glue`` every ``name: value`` pair without displaying it.

    Strings are glued as Markdown (for ``{glue:md}``); numbers as numbers (for ``{glue:text}``).
    """
    for name, value in values.items():
        glue(name, Markdown(value) if isinstance(value, str) else value, display=False)


# ----------------------------------------------------------------------------- the lemma's check


def _decomposition_row(f_star: Any, weak: Any, student: Any) -> dict[str, Any]:
    res = theory.error_decomposition(f_star, weak, student)
    return {
        "K": f_star.shape[1],
        "gain": res.gain,
        "eps": res.eps,
        "interaction": res.interaction,
        "residual": max(res.residual_first, res.residual_second, abs(res.lhs - res.rhs)),
        "holds": res.holds,
    }


def decomposition_check(n_instances: int, n_inputs: int = 64) -> pd.DataFrame:
    """Lemma 1 on ``n_instances`` random triples (:func:`theory.instances.dirichlet_triple`),
    checked with :func:`w2s_utils.theory.sweep`.

    One row per instance: ``instance``, ``K``, ``gain`` (Err(weak) − Err(student)), ``eps``,
    ``interaction`` (``gain = interaction − eps``), the largest relative ``residual`` of the two
    equalities and of the averaged form, and ``holds``.
    """
    triples = (instances.dirichlet_triple(i, n_inputs=n_inputs) for i in range(n_instances))
    return theory.sweep(_decomposition_row, triples, n_instances)


def decomposition_summary(check: pd.DataFrame):
    """The check's table by class count: size of the terms and the largest residual."""
    by_k = pd.cut(check.K, [1, 3, 6, 10], labels=["2–3", "4–6", "7–10"])
    summary = check.groupby(by_k, observed=True).agg(
        instances=("residual", "size"),
        abs_gain=("gain", lambda v: np.abs(v).mean()),
        eps=("eps", "mean"),
        student_better=("gain", lambda v: (v > 0).mean()),
        residual=("residual", "max"),
    )
    summary.index.name = "K"
    summary.columns = ["instances", "mean |gain|", "mean ε", "student better", "max residual"]
    fmt = {"mean |gain|": "{:.3f}", "mean ε": "{:.3f}", "student better": "{:.0%}"}
    return summary.style.format({**fmt, "max residual": "{:.1e}"}).set_caption(
        "The error decomposition on random instances: size of the terms, largest residual"
    )


def decomposition_glue(check: pd.DataFrame) -> dict[str, Any]:
    return {
        "lemma_n": len(check),
        "lemma_max_residual": float(check.residual.max()),
        "lemma_student_better": float((check.gain > 0).mean()),
        "lemma_all_hold": bool(check.holds.all()),
    }


def worked_example() -> tuple[pd.DataFrame, dict[str, float]]:
    """The chapter's K = 2 example: one input, its three distributions and the lemma's terms."""
    f_star, weak, student = np.array([0.9, 0.1]), np.array([0.6, 0.4]), np.array([0.8, 0.2])
    res = theory.error_decomposition(f_star[None], weak[None], student[None])
    log_ratio = np.log(weak / student)
    table = pd.DataFrame(
        {
            "F*": f_star,
            "F_w": weak,
            "F_sw": student,
            "log(F_w / F_sw)": log_ratio,
            "F* − F_w": f_star - weak,
        },
        index=pd.Index(["class 1", "class 2"], name="j"),
    )
    terms = {
        "ex_err_weak": res.err_weak,
        "ex_err_student": res.err_student,
        # ΔErr sign (= -gain, interaction of ΔErr = eps + iota) for the chapter's text until it
        # is rewritten in the gain convention
        "ex_change": -res.gain,
        "ex_eps": res.eps,
        "ex_iota": -res.interaction,
    }
    return table.round(4), terms


# ------------------------------------------------------------------------------- the real runs


def roles_table(setup: Any) -> pd.DataFrame:
    """Who is who in the grid of a preset: the teachers and the strong model, described."""
    rows = [{"role": "weak teacher", "model": w} for w in setup.ladder_weaks]
    rows.append({"role": "strong (student and ceiling)", "model": setup.strong})
    table = pd.DataFrame(rows)
    table["description"] = [describe_model(m) for m in table.model]
    return table.set_index("role")


def setup_glue(setup: Any, seeds: list[int]) -> dict[str, Any]:
    s = setup.sizes
    return {
        "strong_name": setup.strong,
        "n_seeds": len(seeds),
        "n_weak_train": s.weak_train,
        "n_w2s_train": s.w2s_train,
        "n_test": s.test,
    }


def _panels(setup: Any, datasets: list[str]) -> dict[str, Any]:
    return {
        "x": "weak",
        "col": "dataset",
        "order": list(setup.ladder_weaks),
        "col_order": list(datasets),
        "xlabel": "teacher",
    }


def accuracy_figure(paired: pd.DataFrame, setup: Any, datasets: list[str]) -> Figure:
    """Teacher, student and ceiling accuracy per teacher and dataset, intervals over seeds+test."""
    long = pd.concat(
        [
            paired[["dataset", "weak"]].assign(
                role=role, acc=paired[c], lo=paired[f"{c}_lo"], hi=paired[f"{c}_hi"]
            )
            for role, c in ROLES.items()
        ],
        ignore_index=True,
    )
    fig = plots.accuracy_by_model(
        long, hue="role", hue_order=list(ROLES), ylabel="test accuracy", **_panels(setup, datasets)
    )
    fig.suptitle("Teacher, student and strong ceiling (95% intervals: seeds and test set)", y=1.08)
    return fig


def pgr_figure(paired: pd.DataFrame, setup: Any, datasets: list[str]) -> Figure:
    """PGR per teacher and dataset; a missing dot says why (no gap to recover)."""
    fig = plots.accuracy_by_model(
        paired.assign(role="PGR"),
        value="pgr",
        lo="pgr_lo",
        hi="pgr_hi",
        hue=None,
        ylabel="PGR (accuracy)",
        panel_size=(4.2, 3.0),
        **_panels(setup, datasets),
    )
    for ax, ds in zip(fig.axes, datasets, strict=False):
        ax.axhline(0, color="0.3", lw=0.8)
        ax.axhline(1, color="0.3", lw=0.8, ls="--")
        for i, w in enumerate(setup.ladder_weaks):
            row = paired[(paired.dataset == ds) & (paired.weak == w)]
            if len(row) and not np.isfinite(row.pgr.iloc[0]):
                ax.text(i, 0.5, "no gap\nto recover", ha="center", va="center", color="0.4")
    fig.suptitle("Performance gap recovered (0: teacher's level, 1: ceiling)", y=1.04)
    return fig


def decomposition_figure(paired: pd.DataFrame, setup: Any, datasets: list[str]) -> Figure:
    """The lemma's two terms per run group as signed bars, their sum as a diamond."""
    fig = plots.decomposition_bars(
        with_err_change(paired),
        parts=("eps", "interaction"),
        total="err_change",
        total_lo="err_change_lo",
        total_hi="err_change_hi",
        part_labels={"eps": r"misfit $\varepsilon$", "interaction": r"interaction $\iota$"},
        total_label=r"$\mathrm{Err}(F_{sw}) - \mathrm{Err}(F_w)$",
        ylabel="nats per test example",
        **_panels(setup, datasets),
    )
    fig.suptitle("The decomposition on the test set: student error minus teacher error", y=1.08)
    return fig


_TABLE_STYLE = [{"selector": "td, th", "props": "white-space: nowrap; padding: 3px 8px;"}]
_ACC_COLUMNS = {
    ("accuracy", "teacher"): "acc_weak",
    ("accuracy", "student"): "acc_student",
    ("accuracy", "ceiling"): "acc_ceiling",
    ("gain", "student − teacher"): "acc_gain",
    ("PGR", ""): "pgr",
}
_LEMMA_COLUMNS = {
    ("decomposition (nats)", "ΔErr = ΔCE"): "err_change",
    ("decomposition (nats)", "ε"): "eps",
    ("decomposition (nats)", "ι"): "interaction",
}


def _cells(shown: pd.DataFrame, columns: dict, digits: int) -> pd.DataFrame:
    cells = {
        k: [fmt_interval(r[c], r[f"{c}_lo"], r[f"{c}_hi"], digits) for _, r in shown.iterrows()]
        for k, c in columns.items()
    }
    out = pd.DataFrame(cells, index=shown.index)
    out.columns = pd.MultiIndex.from_tuples(out.columns)
    out.index.names = ["dataset", "teacher"]
    return out


def result_tables(paired: pd.DataFrame, preset: str) -> tuple[Any, Any]:
    """The chapter's two result tables (accuracy and PGR; the decomposition), styled."""
    shown = with_err_change(paired).set_index(["dataset", "weak"])
    n = int(paired.n_seeds.max())
    acc = _cells(shown, _ACC_COLUMNS, 3).style.set_table_styles(_TABLE_STYLE)
    acc = acc.set_caption(
        f"Test accuracy, gain and PGR with 95% intervals over {n} seeds and the test set "
        f"(preset {preset!r}); PGR only where the ceiling beats the teacher."
    )
    lemma = _cells(shown, _LEMMA_COLUMNS, 4).style.set_table_styles(_TABLE_STYLE)
    lemma = lemma.set_caption(
        "The decomposition on the test set: ΔErr = Err(F_sw) − Err(F_w) = ε + ι (negative: the "
        "student is better)."
    )
    return acc, lemma


def findings_glue(paired: pd.DataFrame, per_run: pd.DataFrame, setup: Any) -> dict[str, Any]:
    """Every number and list the chapter's closing section quotes, from the runs."""
    paired, per_run = with_err_change(paired), with_err_change(per_run)
    out: dict[str, Any] = {}
    for _, row in paired.iterrows():
        key = f"{row.dataset}_{row.weak}".replace("-", "_")
        for col in ("acc_weak", "acc_student", "acc_ceiling", "pgr", "acc_gain", "err_change"):
            out[f"{col}_{key}"] = float(row[col])
        out[f"eps_{key}"], out[f"interaction_{key}"] = float(row.eps), float(row.interaction)
    gain_sig = names_where(paired, paired.acc_gain_lo > 0)
    changed = [
        verdict(r.acc_gain_seed_lo, r.acc_gain_seed_hi) != verdict(r.acc_gain_lo, r.acc_gain_hi)
        for _, r in paired.iterrows()
    ]
    seed_only = names_where(paired, changed)
    lines = []
    for w in setup.ladder_weaks:
        parts = []
        for _, row in paired[paired.weak == w].iterrows():
            gain = verdict(row.acc_gain_lo, row.acc_gain_hi)
            pgr = (
                f"PGR {fmt_interval(row.pgr, row.pgr_lo, row.pgr_hi, 2)}"
                if np.isfinite(row.pgr)
                else "PGR undefined (no gap to recover)"
            )
            gain_iv = fmt_interval(row.acc_gain, row.acc_gain_lo, row.acc_gain_hi, 3, True)
            parts.append(
                f"on {row.dataset} the student's accuracy is {gain} its teacher's ({gain_iv}), "
                f"{pgr}, with $\\varepsilon$ = {row.eps:.3f} and $\\iota$ = "
                f"{row.interaction:+.3f} nats"
            )
        lines.append(f"- **{w}** ({describe_model(w)}): " + "; ".join(parts) + ".")
    out["findings"] = "\n".join(lines)
    has_pgr = paired.pgr.notna()
    if has_pgr.any():
        best = paired.loc[paired.pgr.idxmax()]
        iv = fmt_interval(best.pgr, best.pgr_lo, best.pgr_hi, 2)
        out["best_pgr_text"] = f"the **{best.weak}** teacher on {best.dataset} (PGR {iv})"
    else:
        out["best_pgr_text"] = "no teacher (PGR is undefined everywhere)"
    gap = paired.acc_gap
    corr_change = float(np.corrcoef(per_run.eps, per_run.err_change)[0, 1])
    out.update(
        {
            "room_text": _room_text(paired, has_pgr),
            "gain_yes": gain_sig,
            "gain_no": names_where(paired, paired.acc_gain_hi < 0),
            "gain_seed_only": seed_only,
            "err_down": names_where(paired, paired.err_change_hi < 0),
            "err_up": names_where(paired, paired.err_change_lo > 0),
            "min_gap": float(gap.min()),
            "max_gap": float(gap.max()),
            "eps_min": float(paired.eps.min()),
            "eps_max": float(paired.eps.max()),
            "n_comparisons": len(paired),
            "share_iota_below": float((per_run.interaction < 0).mean()),
            "corr_eps_change": corr_change,
        }
    )
    return out


def _room_text(paired: pd.DataFrame, has_pgr: pd.Series) -> str:
    """One sentence on where the ceiling leaves the student something to recover."""
    if has_pgr.all():
        return (
            "The ceiling beats the teacher by more than one accuracy point for every teacher and "
            "dataset, so PGR is defined everywhere."
        )
    if not has_pgr.any():
        return (
            "For no teacher does the ceiling beat it by more than one accuracy point: PGR is "
            "undefined everywhere, and there is little for a student to gain."
        )
    return (
        f"The ceiling beats the teacher by more than one accuracy point for "
        f"{names_where(paired, has_pgr)}, but not for {names_where(paired, ~has_pgr)}; there PGR "
        "is undefined, and there is little for a student to gain."
    )
