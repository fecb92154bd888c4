"""Tables of runs with intervals over seeds and the shared test set (chapters 1, 2, 4 and 6).

A cell's seeds are stacked by :func:`~w2s_utils.analysis.cells.stack` (one test order, checked)
and every mean gets the interval of :func:`w2s_utils.metrics.seeds_and_test_interval`: a
Student-t part over the seed means (training noise) plus a normal part over the test examples
(the test set's sampling error, which all seeds share). Columns ``<q>``, ``<q>_lo``, ``<q>_hi``;
with ``seed_only=True`` also the seed-only Student-t interval ``<q>_seed_lo``/``<q>_seed_hi``
(:func:`w2s_utils.metrics.seed_interval`), which chapters 1 and 2 set beside it to show what the
test-set term changes.

Quantities (the test means of :func:`w2s_utils.metrics.per_example`; gain convention: positive =
the student is better than its teacher): ``acc_weak``, ``acc_student``, ``acc_ceiling``,
``acc_gain`` (student - weak), ``acc_gap`` (ceiling - weak), ``gain`` = CE(F_w) - CE(F_sw)
(estimates Err(F_w) - Err(F_sw)), ``eps`` = E KL(F_w||F_sw), ``eps_rev`` = E KL(F_sw||F_w),
``interaction`` = gain + eps (so gain = interaction - eps), and ``pgr`` = mean(acc_gain) /
mean(acc_gap), defined only where the gap exceeds :data:`w2s_utils.metrics.PGR_MIN_GAP`.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from w2s_utils import metrics
from w2s_utils._validate import check_number
from w2s_utils.analysis.cells import Cell, check_same_test_examples, stack

__all__ = [
    "QUANTITIES",
    "loss_comparison",
    "paired_differences",
    "paired_table",
    "per_run_table",
    "put_interval",
]

#: Table column -> the per-example quantity of :func:`w2s_utils.metrics.per_example` it averages.
QUANTITIES: dict[str, str] = {
    "acc_weak": "correct_weak",
    "acc_student": "correct_student",
    "acc_ceiling": "correct_ceiling",
    "acc_gain": "acc_gain",
    "acc_gap": "acc_gap",
    "gain": "gain",
    "eps": "eps",
    "eps_rev": "eps_rev",
    "interaction": "interaction",
}


def put_interval(row: dict[str, Any], name: str, iv: metrics.Interval) -> None:
    """Write ``iv`` into ``row`` as the columns ``name``, ``name_lo``, ``name_hi``."""
    row[name], row[f"{name}_lo"], row[f"{name}_hi"] = iv.point, iv.lo, iv.hi


def per_run_table(results: Iterable[Any], by: Sequence[str] = ("dataset", "weak")) -> pd.DataFrame:
    """One row per run: the config fields ``by``, ``seed`` and the test means of
    :data:`QUANTITIES` (no interval: a run is one draw)."""
    rows = []
    for r in results:
        vals = metrics.per_example(r.weak, r.student, r.ceiling, labels=r.labels)
        row = {b: getattr(r.config, b) for b in by}
        row["seed"] = r.config.seed
        row.update({col: float(vals[q].mean()) for col, q in QUANTITIES.items()})
        rows.append(row)
    if not rows:
        raise ValueError("results: is empty; pass the runs of a grid (engine.experiment.run_grid)")
    return pd.DataFrame(rows)


def _pgr(cell: Cell, level: float, seed_only: bool) -> dict[str, float]:
    gain, gap = cell.values["acc_gain"], cell.values["acc_gap"]
    names = ("pgr", "pgr_lo", "pgr_hi") + (("pgr_seed_lo", "pgr_seed_hi") if seed_only else ())
    out = dict.fromkeys(names, math.nan)
    if gap.mean() <= metrics.PGR_MIN_GAP:
        return out
    put_interval(out, "pgr", metrics.seeds_and_test_interval(gain, gap, level=level))
    if seed_only and cell.n_seeds > 1:
        seed_gap = gap.mean(axis=1)
        if np.all(seed_gap > metrics.PGR_MIN_GAP):  # a per-seed PGR needs a gap in every seed
            si = metrics.seed_interval(gain.mean(axis=1) / seed_gap, level)
            out["pgr_seed_lo"], out["pgr_seed_hi"] = si.lo, si.hi
    return out


def paired_table(
    results: Iterable[Any],
    by: Sequence[str] = ("dataset", "weak"),
    *,
    level: float = 0.95,
    seed_only: bool = True,
) -> pd.DataFrame:
    """One row per cell of ``by`` (default: dataset x teacher), its seeds stacked.

    Columns: the ``by`` fields, ``n_seeds``, ``n_test``, and for every quantity ``q`` of
    :data:`QUANTITIES` and ``pgr`` the mean with its interval over seeds and test examples
    (``q``, ``q_lo``, ``q_hi``; NaN with one seed: training noise cannot be estimated from one
    run) and, with ``seed_only``, the seed-only interval ``q_seed_lo``/``q_seed_hi``. The runs
    of a cell must hold one test split in one order (:func:`~w2s_utils.analysis.stack` raises
    otherwise).
    """
    level = check_number(level, "level", lo=0.0, hi=1.0, lo_open=True, hi_open=True)
    return pd.DataFrame([_paired_row(c, level, seed_only) for c in stack(results, by).values()])


def _paired_row(cell: Cell, level: float, seed_only: bool) -> dict[str, Any]:
    row = cell.row()
    for col, q in QUANTITIES.items():
        vals = cell.values[q]
        put_interval(row, col, metrics.seeds_and_test_interval(vals, level=level))
        if seed_only:
            si = metrics.seed_interval(vals.mean(axis=1), level)
            row[f"{col}_seed_lo"], row[f"{col}_seed_hi"] = si.lo, si.hi
    row.update(_pgr(cell, level, seed_only))
    return row


def loss_comparison(
    results: Iterable[Any],
    by: Sequence[str] = ("dataset", "weak", "loss"),
    *,
    level: float = 0.95,
) -> pd.DataFrame:
    """Chapter 6's table: per cell of ``by`` (default dataset x teacher x student loss) the
    columns of :func:`paired_table` (without the seed-only intervals) and the reverse-KL slack
    ``slack`` = gain - eps_rev (the theorem for reverse-KL students says ``slack >= 0`` under its
    hypotheses), with its interval over seeds and test examples."""
    level = check_number(level, "level", lo=0.0, hi=1.0, lo_open=True, hi_open=True)
    rows = []
    for cell in stack(results, by).values():
        row = _paired_row(cell, level, seed_only=False)
        diff = cell.values["gain"] - cell.values["eps_rev"]
        put_interval(row, "slack", metrics.seeds_and_test_interval(diff, level=level))
        rows.append(row)
    return pd.DataFrame(rows)


def paired_differences(
    results_a: Iterable[Any],
    results_b: Iterable[Any],
    quantities: Mapping[str, str],
    by: Sequence[str] = ("dataset", "weak"),
    *,
    level: float = 0.95,
) -> pd.DataFrame:
    """Per cell of ``by`` found in both: each per-example quantity of ``results_a`` minus that of
    ``results_b``, paired by seed and test example, with its interval over seeds and test examples.

    ``quantities`` maps an output column to a key of :func:`w2s_utils.metrics.per_example` (for
    example ``{"d_acc": "correct_student"}``: the student's accuracy difference). Only the seeds
    both cells hold are used (``n_seeds``); the two cells must hold the same test examples in
    the same order, else ``ValueError``. Cells of one side only are left out.
    """
    level = check_number(level, "level", lo=0.0, hi=1.0, lo_open=True, hi_open=True)
    if not quantities:
        raise ValueError("quantities: pass at least one {column: per-example key} pair")
    unknown = [q for q in quantities.values() if q not in metrics.PER_EXAMPLE]
    if unknown:
        raise ValueError(f"quantities: unknown keys {unknown}; use keys of metrics.PER_EXAMPLE")
    cells_a, cells_b = stack(results_a, by), stack(results_b, by)
    rows = []
    for key, a in cells_a.items():
        if key not in cells_b:
            continue
        b = cells_b[key]
        seeds = sorted(set(a.seeds) & set(b.seeds))
        if not seeds:
            continue
        a, b = a.select(seeds), b.select(seeds)
        check_same_test_examples([a.runs[0], b.runs[0]], f"results_a, results_b (cell {key})")
        row = a.row()
        for col, q in quantities.items():
            diff = a.values[q] - b.values[q]
            put_interval(row, col, metrics.seeds_and_test_interval(diff, level=level))
        rows.append(row)
    return pd.DataFrame(rows)
