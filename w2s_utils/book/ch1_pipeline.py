"""Chapter 1 (the weak-to-strong pipeline and Lemma 1): its tables, figures and glued findings.

Presentation only. The science is computed in the chapter's visible cells: the runs by
:func:`w2s_utils.engine.experiment.run_grid`, the per-example terms by
:func:`w2s_utils.metrics.per_example`, the decomposition by
:func:`w2s_utils.theory.error_decomposition`, its random-instance check by
:func:`w2s_utils.theory.sweep` and the intervals over seeds and test examples by
:func:`w2s_utils.analysis.paired_table`. Every function here turns those results into what the
chapter shows (a presented table, a figure, a dictionary for :func:`w2s_utils.book.glue.glue_all`).

Sign convention (the notation page's): ``gain`` = Err(F_w) - Err(F_sw) in nats, estimated by
CE(F_w) - CE(F_sw) (positive: the student is better); ``eps`` = E KL(F_w || F_sw), the misfit
(weak -> student); ``interaction`` = E sum_j (F*_j - F_w,j) r_j with r_j = log F_sw,j - log F_w,j,
so that gain = interaction - eps (Lemma 1).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from scipy import optimize, stats

from w2s_utils._validate import check_int
from w2s_utils.book import plots
from w2s_utils.book.memo import cached_frame, frame_pieces
from w2s_utils.book.results import names_where, verdict
from w2s_utils.book.tables import (
    Table,
    format_interval,
    format_number,
    present_table,
    require_columns,
)
from w2s_utils.engine.models import describe_model

__all__ = [
    "ROLES",
    "accuracy_figure",
    "accuracy_table",
    "cached_frame",
    "decomposition_figure",
    "example_table",
    "exercise_glue",
    "findings_glue",
    "frame_pieces",
    "interval_table",
    "lemma_check_glue",
    "lemma_table",
    "one_run_glue",
    "pgr_figure",
    "roles_table",
    "seeds_exercise_glue",
    "setup_glue",
]

#: The three predictors of a run, in reading order, with the column of their accuracy.
ROLES = {"weak": "acc_weak", "student": "acc_student", "ceiling": "acc_ceiling"}

#: Where the tables this module reads come from (for the errors of a wrong table).
_SOURCE = "the table of w2s_utils.analysis.paired_table (or per_run_table) of the chapter's runs"
#: The columns of :func:`w2s_utils.analysis.paired_table` this module reads.
_PAIRED_COLUMNS = ("dataset", "weak", "n_seeds", "n_test", "acc_gain", "gain", "eps", "interaction")


def _require(table: pd.DataFrame, columns: Iterable[str], what: str) -> None:
    require_columns(table, columns, what, nonempty=True, source=_SOURCE)


def _ends(*names: str, seed_only: bool = False) -> tuple[str, ...]:
    """The interval columns of ``names`` in a paired table (and their seed-only ends)."""
    ends = ("_lo", "_hi", "_seed_lo", "_seed_hi") if seed_only else ("_lo", "_hi")
    return tuple(f"{n}{e}" for n in names for e in ends)


def _cell(row: Any) -> str:
    return f"{row.weak} on {row.dataset}"


def lemma_check_glue(check: pd.DataFrame) -> dict[str, Any]:
    """Chapter 1, section 'A numeric check': what the text says about the sweep of
    :func:`w2s_utils.theory.error_decomposition` over random instances (the table of
    :func:`w2s_utils.theory.sweep`): how many, the largest residual of the three forms (both
    equalities pointwise, and the averaged form relative to max(1, |gain|)), the share where the
    student is better and the mean |gain| (nats)."""
    needed = ("gain", "lhs", "rhs", "residual_first", "residual_second", "holds")
    _require(check, needed, "check")
    averaged = (check.lhs - check.rhs).abs() / np.maximum(1.0, check.gain.abs())
    residual = np.maximum.reduce([check.residual_first, check.residual_second, averaged])
    return {
        "lemma_n": len(check),
        "lemma_max_residual": float(residual.max()),
        "lemma_student_better": float((check.gain > 0).mean()),
        "lemma_mean_abs_gain": float(check.gain.abs().mean()),
    }


# ------------------------------------------------------------------------------ the worked example


def example_table(f_star: Any, weak: Any, student: Any) -> Table:
    """Chapter 1, 'A worked example': the three distributions of one input, the student
    log-ratio r and the teacher's mistakes F* − F_w, one row per class."""
    fs, w, s = (np.asarray(a, dtype=float).ravel() for a in (f_star, weak, student))
    if not (fs.shape == w.shape == s.shape) or fs.size < 2:
        raise ValueError("f_star, weak, student: give three distributions over the same K >= 2")
    table = pd.DataFrame(
        {
            "cls": [f"class {j + 1}" for j in range(fs.size)],
            "f_star": fs,
            "weak": w,
            "student": s,
            "r": np.log(s) - np.log(w),
            "mistake": fs - w,
        }
    )
    return present_table(
        table,
        {
            "cls": "Class j",
            "f_star": "Truth F*",
            "weak": "Teacher F_w",
            "student": "Student F_sw",
            "r": "Log-ratio r = log(F_sw/F_w)",
            "mistake": "Teacher's mistake F* − F_w",
        },
        formats={"f_star": ".1f", "weak": ".1f", "student": ".1f", "r": "+.4f", "mistake": "+.1f"},
        caption="The worked example: one input, two classes.",
    )


def _example_gain(s: float) -> float:
    """Gain (nats) of the student (s, 1 - s) in the worked example: truth (0.9, 0.1), teacher
    (0.6, 0.4)."""
    return 0.9 * np.log(s / 0.6) + 0.1 * np.log((1.0 - s) / 0.4)


def exercise_glue() -> dict[str, float]:
    """Chapter 1, exercises 3 and 5: the numbers their solutions quote.

    Exercise 3: the student (s, 1 - s) of the worked example gains exactly for s in (0.6, upper);
    ``ex3_upper`` is that upper root (found by Brent's method on (0.9, 1)), ``ex3_threshold`` the
    teacher's expected log-likelihood 0.9 log 0.6 + 0.1 log 0.4, ``ex3_gain_098`` the gain at
    s = 0.98. Exercise 5: the ratios of the log losses -log 0.51 / -log p for p = 0.9 and 0.95.
    """
    upper = optimize.brentq(_example_gain, 0.9, 1.0 - 1e-12, xtol=1e-14)
    return {
        "ex3_upper": float(upper),
        "ex3_threshold": float(0.9 * np.log(0.6) + 0.1 * np.log(0.4)),
        "ex3_gain_098": float(_example_gain(0.98)),
        "ex3_gain_max": float(_example_gain(0.9)),
        "ex5_loss_051": float(-np.log(0.51)),
        "ex5_loss_09": float(-np.log(0.9)),
        "ex5_ratio_09": float(np.log(0.51) / np.log(0.9)),
        "ex5_ratio_095": float(np.log(0.51) / np.log(0.95)),
    }


# ------------------------------------------------------------------------------- the real runs


def roles_table(setup: Any) -> Table:
    """Chapter 1, 'The pipeline on real text': the teachers and the strong model of a preset."""
    rows = [{"role": "weak teacher", "model": w} for w in setup.ladder_weaks]
    rows.append({"role": "strong (student and ceiling)", "model": setup.strong})
    table = pd.DataFrame(rows)
    table["description"] = [describe_model(m) for m in table.model]
    return present_table(
        table,
        {"role": "Role", "model": "Model", "description": "What it is"},
        caption=f"The models of the preset {setup.name!r}.",
    )


def setup_glue(setup: Any, seeds: Sequence[int], runs: Sequence[Any], grid_seconds: float) -> dict:
    """Chapter 1, 'The pipeline on real text': sizes, seeds and how the grid was obtained."""
    if not runs:
        raise ValueError("runs: is empty; pass the results of run_grid")
    s = setup.sizes
    return {
        "strong_name": f"`{setup.strong}`",
        "n_seeds": len(seeds),
        "n_weak_train": s.weak_train,
        "n_w2s_train": s.w2s_train,
        "n_test": s.test,
        "n_runs": len(runs),
        "n_runs_cached": sum(bool(r.cached) for r in runs),
        "grid_seconds": float(grid_seconds),
        "t_quantile": float(stats.t.ppf(0.975, len(seeds) - 1)) if len(seeds) > 1 else 0.0,
    }


def one_run_glue(
    run: Any, by_hand: Mapping[str, float], per_example: Mapping[str, Any], lemma: Any
) -> dict[str, Any]:
    """Chapter 1, 'One run, term by term': the three terms of one run computed by hand, from
    :func:`w2s_utils.metrics.per_example` and from :func:`w2s_utils.theory.error_decomposition`
    (with the labels as the truth), and the largest disagreement between the three."""
    names = {"gain": "gain", "eps": "eps", "interaction": "interaction"}
    for k in names:
        if k not in by_hand or k not in per_example:
            raise ValueError(f"by_hand, per_example: both need {sorted(names)}; {k!r} is missing")
    means = {k: float(np.mean(per_example[k])) for k in names}
    lib = {"gain": float(lemma.gain), "eps": float(lemma.eps), "interaction": lemma.interaction}
    diff = max(abs(float(by_hand[k]) - means[k]) + abs(means[k] - float(lib[k])) for k in names)
    return {
        "run_name": f"the **{run.config.weak}** teacher on {run.config.dataset}, seed "
        f"{run.config.seed}",
        "run_n_test": len(run.labels),
        "run_gain": means["gain"],
        "run_eps": means["eps"],
        "run_iota": means["interaction"],
        "run_max_diff": float(diff),
    }


def _interval_columns(paired: pd.DataFrame, q: str, fmt: str, seed_only: bool) -> pd.Series:
    lo, hi = (f"{q}_seed_lo", f"{q}_seed_hi") if seed_only else (f"{q}_lo", f"{q}_hi")
    return pd.Series(
        [
            format_interval(p, a, b, fmt)
            for p, a, b in zip(paired[q], paired[lo], paired[hi], strict=True)
        ],
        index=paired.index,
    )


def interval_table(paired: pd.DataFrame) -> Table:
    """Chapter 1, 'Intervals that include the test set': the gain in nats per cell with the
    seed-only Student-t interval and the book's interval over seeds and test examples, and the
    verdict each would give."""
    _require(paired, (*_PAIRED_COLUMNS, *_ends("gain", seed_only=True)), "paired")
    shown = pd.DataFrame(
        {
            "cell": [_cell(r) for r in paired.itertuples()],
            "seed": _interval_columns(paired, "gain", "+.3f", True),
            "seed_verdict": [
                _short_verdict(a, b)
                for a, b in zip(paired.gain_seed_lo, paired.gain_seed_hi, strict=True)
            ],
            "both": _interval_columns(paired, "gain", "+.3f", False),
            "both_verdict": [
                _short_verdict(a, b) for a, b in zip(paired.gain_lo, paired.gain_hi, strict=True)
            ],
        }
    )
    n = int(paired.n_seeds.max())
    return present_table(
        shown,
        {
            "cell": "Teacher on data set",
            "seed": "Seeds only",
            "seed_verdict": "Verdict",
            "both": "Seeds and test examples",
            "both_verdict": "Verdict (the book's)",
        },
        caption=f"The gain in nats, CE(F_w) − CE(F_sw), with two 95% intervals from {n} seeds: "
        "over the seeds only, and over the seeds and the test examples (the book's).",
    )


def _short_verdict(lo: float, hi: float) -> str:
    return {"higher than": "gain > 0", "lower than": "gain < 0"}.get(
        verdict(lo, hi), "not distinguishable"
    )


def _panels(setup: Any, datasets: Sequence[str]) -> dict[str, Any]:
    return {
        "x": "weak",
        "col": "dataset",
        "order": list(setup.ladder_weaks),
        "col_order": list(datasets),
        "xlabel": "teacher",
    }


def accuracy_figure(paired: pd.DataFrame, setup: Any, datasets: Sequence[str]) -> Figure:
    """Chapter 1, figure 'fig-ch1-accuracy': teacher, student and ceiling accuracy per teacher
    and data set, with their 95% intervals over seeds and test examples."""
    _require(paired, (*_PAIRED_COLUMNS, *ROLES.values(), *_ends(*ROLES.values())), "paired")
    long = pd.concat(
        [
            paired[["dataset", "weak"]].assign(
                role=role, acc=paired[c], lo=paired[f"{c}_lo"], hi=paired[f"{c}_hi"]
            )
            for role, c in ROLES.items()
        ],
        ignore_index=True,
    )
    return plots.accuracy_by_model(
        long, hue="role", hue_order=list(ROLES), ylabel="test accuracy", **_panels(setup, datasets)
    )


def pgr_figure(paired: pd.DataFrame, setup: Any, datasets: Sequence[str]) -> Figure:
    """Chapter 1, figure 'fig-ch1-pgr': PGR per teacher and data set; a missing dot says why
    (no gap to recover)."""
    _require(paired, (*_PAIRED_COLUMNS, "pgr", *_ends("pgr")), "paired")
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
    return fig


def decomposition_figure(paired: pd.DataFrame, setup: Any, datasets: Sequence[str]) -> Figure:
    """Chapter 1, figure 'fig-ch1-decomposition': Lemma 1 on the test set, gain = ι − ε: the
    interaction ι as a bar (up or down), the misfit as a bar −ε (always down), the gain as a
    diamond with its 95% interval over seeds and test examples."""
    _require(paired, (*_PAIRED_COLUMNS, *_ends("gain")), "paired")
    return plots.decomposition_bars(
        paired.assign(minus_eps=-paired.eps),
        parts=("interaction", "minus_eps"),
        total="gain",
        total_lo="gain_lo",
        total_hi="gain_hi",
        part_labels={
            "interaction": r"interaction $\iota$",
            "minus_eps": r"minus the misfit, $-\varepsilon$",
        },
        total_label=r"gain, $\iota - \varepsilon$",
        ylabel="nats per test example",
        **_panels(setup, datasets),
    )


def accuracy_table(paired: pd.DataFrame, preset: str) -> Table:
    """Chapter 1, 'The numbers': accuracies, the accuracy gain and PGR per cell."""
    _require(
        paired, (*_PAIRED_COLUMNS, *ROLES.values(), "pgr", *_ends("acc_gain", "pgr")), "paired"
    )
    n = int(paired.n_seeds.max())
    return present_table(
        paired,
        {
            "dataset": "Data set",
            "weak": "Teacher",
            "acc_weak": "Teacher acc.",
            "acc_student": "Student acc.",
            "acc_ceiling": "Ceiling acc.",
            "acc_gain": "Accuracy gain",
            "pgr": "PGR",
        },
        formats={"acc_gain": "+.3f", "pgr": "+.2f"},
        intervals={"acc_gain": ("acc_gain_lo", "acc_gain_hi"), "pgr": ("pgr_lo", "pgr_hi")},
        caption=f"Test accuracy (means over {n} seeds), the student's accuracy gain over its "
        f"teacher and PGR with 95% intervals over seeds and test examples (preset {preset!r}); "
        "PGR only where the ceiling beats the teacher by more than one point.",
    )


def lemma_table(paired: pd.DataFrame) -> Table:
    """Chapter 1, 'The numbers': Lemma 1's terms per cell, gain = ι − ε, with intervals."""
    _require(paired, (*_PAIRED_COLUMNS, *_ends("gain", "eps", "interaction")), "paired")
    return present_table(
        paired,
        {
            "dataset": "Data set",
            "weak": "Teacher",
            "gain": "Gain (nats)",
            "interaction": "Interaction ι",
            "eps": "Misfit ε",
        },
        formats={"gain": "+.3f", "interaction": "+.3f", "eps": ".3f"},
        intervals={
            "gain": ("gain_lo", "gain_hi"),
            "interaction": ("interaction_lo", "interaction_hi"),
            "eps": ("eps_lo", "eps_hi"),
        },
        caption="Lemma 1 on the test set: gain = CE(F_w) − CE(F_sw) = ι − ε, with 95% intervals "
        "over seeds and test examples (positive gain: the student is better).",
    )


def findings_glue(paired: pd.DataFrame, per_run: pd.DataFrame, setup: Any) -> dict[str, Any]:
    """Chapter 1, 'What the run shows' and the frame's main result: every number, list and
    sentence they quote, with verdicts from the intervals over seeds and test examples."""
    needed = (*_PAIRED_COLUMNS, "pgr", "acc_gap", *_ends("pgr"))
    _require(paired, (*needed, *_ends("acc_gain", "gain", seed_only=True)), "paired")
    _require(per_run, ("gain", "eps", "interaction"), "per_run")
    out: dict[str, Any] = {}
    lines = []
    for w in setup.ladder_weaks:
        parts = []
        for _, row in paired[paired.weak == w].iterrows():
            acc = verdict(row.acc_gain_lo, row.acc_gain_hi, above="above", below="below")
            nats = verdict(row.gain_lo, row.gain_hi, above="positive", below="negative")
            nats = "not distinguishable from zero" if nats.startswith("not") else nats
            pgr = (
                f"PGR {format_interval(row.pgr, row.pgr_lo, row.pgr_hi, '+.2f')}"
                if np.isfinite(row.pgr)
                else "PGR undefined (no gap to recover)"
            )
            acc_iv = format_interval(row.acc_gain, row.acc_gain_lo, row.acc_gain_hi, "+.3f")
            gain_iv = format_interval(row.gain, row.gain_lo, row.gain_hi, "+.3f")
            parts.append(
                f"on {row.dataset} the student's accuracy is {acc} its teacher's ({acc_iv}), "
                f"{pgr}; its gain in nats is {nats} ({gain_iv}): $\\iota$ = "
                f"{format_number(row.interaction, '.3f')} against $\\varepsilon$ = "
                f"{format_number(row.eps, '.3f')}"
            )
        lines.append(f"- **{w}** ({describe_model(w)}): " + "; ".join(parts) + ".")
    out["findings"] = "\n".join(lines)
    has_pgr = paired.pgr.notna()
    if has_pgr.any():
        best = paired.loc[paired.pgr.idxmax()]
        iv = format_interval(best.pgr, best.pgr_lo, best.pgr_hi, "+.2f")
        out["best_pgr_text"] = f"the **{best.weak}** teacher on {best.dataset} (PGR {iv})"
    else:
        out["best_pgr_text"] = "no teacher (PGR is undefined everywhere)"
    acc_seed_differs = [
        verdict(r.acc_gain_seed_lo, r.acc_gain_seed_hi) != verdict(r.acc_gain_lo, r.acc_gain_hi)
        for r in paired.itertuples()
    ]
    gain_seed_differs = [
        verdict(r.gain_seed_lo, r.gain_seed_hi) != verdict(r.gain_lo, r.gain_hi)
        for r in paired.itertuples()
    ]
    gain_up = paired.gain_lo > 0
    out.update(
        {
            "room_text": _room_text(paired, has_pgr),
            "acc_up": names_where(paired, paired.acc_gain_lo > 0),
            "acc_down": names_where(paired, paired.acc_gain_hi < 0),
            "acc_seed_only": names_where(paired, acc_seed_differs),
            "gain_up": names_where(paired, gain_up),
            "gain_down": names_where(paired, paired.gain_hi < 0),
            "n_gain_up": int(gain_up.sum()),
            "n_gain_undecided": int(((paired.gain_lo <= 0) & (paired.gain_hi >= 0)).sum()),
            "gain_seed_only": names_where(paired, gain_seed_differs),
            "n_gain_seed_only": int(np.sum(gain_seed_differs)),
            "min_gap": float(paired.acc_gap.min()),
            "max_gap": float(paired.acc_gap.max()),
            "eps_min": float(paired.eps.min()),
            "eps_max": float(paired.eps.max()),
            "n_comparisons": len(paired),
            "n_runs_iota_positive": int((per_run.interaction > 0).sum()),
            "n_runs_gain_positive": int((per_run.gain > 0).sum()),
            "corr_eps_gain": float(np.corrcoef(per_run.eps, per_run.gain)[0, 1]),
        }
    )
    out["headline"] = _headline(paired, out)
    return out


def _headline(paired: pd.DataFrame, found: Mapping[str, Any]) -> str:
    """The frame's main result: the lemma and what the runs say, with the best-supported gain."""
    best = paired.loc[paired.gain_lo.idxmax()]
    best_iv = format_interval(best.gain, best.gain_lo, best.gain_hi, "+.3f")
    n, k = found["n_comparisons"], found["n_gain_up"]
    return (
        f"The student's gain over its teacher is exactly the interaction minus the misfit, "
        f"gain = ι − ε; on real text the students' misfits are "
        f"{format_number(found['eps_min'], '.3f')} to {format_number(found['eps_max'], '.3f')} "
        f"nats, and the gain's 95% interval is above zero in {k} of {n} teacher–data-set cells "
        f"(largest lower end: the {best.weak} teacher on {best.dataset}, {best_iv} nats)"
    )


def _room_text(paired: pd.DataFrame, has_pgr: pd.Series) -> str:
    """One sentence on where the ceiling leaves the student something to recover."""
    if has_pgr.all():
        return (
            "The ceiling beats the teacher by more than one accuracy point for every teacher and "
            "data set, so PGR is defined everywhere."
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


def seeds_exercise_glue(paired: pd.DataFrame, fewer: pd.DataFrame) -> dict[str, Any]:
    """Chapter 1, the computational exercise: how much wider the gain's interval gets with fewer
    seeds (``fewer``: :func:`w2s_utils.analysis.paired_table` of a subset of the seeds, at least
    two), against the prediction from the Student-t quantiles alone (``exs_seed_factor``: the
    growth of t_{S-1}/sqrt(S)), and the share of the seed part in the full interval's width."""
    _require(paired, (*_PAIRED_COLUMNS, *_ends("gain", seed_only=True)), "paired")
    _require(fewer, (*_PAIRED_COLUMNS, *_ends("gain")), "fewer")
    s_all = check_int(int(paired.n_seeds.min()), "paired.n_seeds", minimum=2)
    s_few = check_int(int(fewer.n_seeds.min()), "fewer.n_seeds", minimum=2)
    if s_few > s_all:
        raise ValueError(f"fewer: has {s_few} seeds, more than the chapter's {s_all}")
    merged = paired.merge(fewer, on=["dataset", "weak"], suffixes=("", "_few"))
    ratio = (merged.gain_hi_few - merged.gain_lo_few) / (merged.gain_hi - merged.gain_lo)
    t_all, t_few = stats.t.ppf(0.975, s_all - 1), stats.t.ppf(0.975, s_few - 1)
    seed_share = (merged.gain_seed_hi - merged.gain_seed_lo) / (merged.gain_hi - merged.gain_lo)
    return {
        "exs_n_few": s_few,
        "exs_t_all": float(t_all),
        "exs_t_few": float(t_few),
        "exs_seed_factor": float(t_few / np.sqrt(s_few) / (t_all / np.sqrt(s_all))),
        "exs_ratio_min": float(ratio.min()),
        "exs_ratio_max": float(ratio.max()),
        "exs_ratio_median": float(ratio.median()),
        "exs_seed_share_min": float(seed_share.min()),
        "exs_seed_share_max": float(seed_share.max()),
        "exs_n_up_few": int((merged.gain_lo_few > 0).sum()),
    }
