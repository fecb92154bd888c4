"""Student trajectories pooled across seeds (chapter 4): mean curves and the peak of the gain.

A trajectory (:class:`~w2s_utils.engine.trajectories.Trajectory`) holds the student's test
predictions at every evaluation; the trajectories of one (dataset, teacher) and of different seeds
hold one test subset in one order (checked by :func:`~w2s_utils.analysis.cells.stack`, never
re-aligned). This module reads a trajectory's attributes and does not import the engine, so that
the analysis layer loads without it. Intervals: :func:`w2s_utils.metrics.seeds_and_test_interval`
on the per-example values of :func:`w2s_utils.metrics.per_example` (test examples and seeds).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
import pandas as pd

from w2s_utils import metrics
from w2s_utils._validate import check_number
from w2s_utils.analysis.cells import Cell, check_same_test_examples, stack
from w2s_utils.analysis.tables import put_interval

__all__ = ["mean_curves", "peak_table", "trajectory_groups"]

#: The remedy name of the long soft-label runs (the engine's ``trajectories.LONG``; a test keeps
#: the two equal).
LONG = "long run"
#: The curves' interval columns -> the per-example quantity they average.
_CURVE_QUANTITIES = {"test_acc": "correct_student", "acc_gain": "acc_gain", "gain": "gain"}


def trajectory_groups(
    trajectories: Iterable[Any], remedy: str = LONG
) -> dict[tuple[str, str], list[Any]]:
    """The trajectories of ``remedy`` grouped by (dataset, teacher), each group sorted by seed and
    checked to hold one test subset in one order (``ValueError`` otherwise)."""
    out: dict[tuple[str, str], list[Any]] = {}
    for t in trajectories:
        if t.config.remedy == remedy:
            out.setdefault((t.config.dataset, t.config.weak), []).append(t)
    for key, runs in out.items():
        runs.sort(key=lambda t: t.config.seed)
        check_same_test_examples(runs, f"trajectories {key}")
    return out


def _step(runs: Sequence[Any], index: int) -> Cell:
    (cell,) = stack([t.at(index) for t in runs], ("dataset", "weak")).values()
    return cell


def mean_curves(
    trajectories: Iterable[Any], remedy: str = LONG, *, level: float = 0.95
) -> pd.DataFrame:
    """Per (dataset, teacher, evaluation): the seed means of every history column and intervals
    (test examples x seeds) of the student's test accuracy ``test_acc``, the accuracy gain
    ``acc_gain`` and the CE gain ``gain`` = CE(F_w) - CE(F_sw) over the teacher, with ``n_seeds``
    and ``n_test``. Evaluations up to the shortest history of the group."""
    level = check_number(level, "level", lo=0.0, hi=1.0, lo_open=True, hi_open=True)
    rows = []
    for (dataset, weak), runs in trajectory_groups(trajectories, remedy).items():
        n = min(len(r.history) for r in runs)
        for i in range(n):
            hist = pd.DataFrame([r.history.iloc[i] for r in runs])
            row: dict[str, Any] = {"dataset": dataset, "weak": weak, "index": i}
            row.update(hist.mean(numeric_only=True).to_dict())
            cell = _step(runs, i)
            row["n_seeds"] = cell.n_seeds
            for col, q in _CURVE_QUANTITIES.items():
                put_interval(row, col, metrics.seeds_and_test_interval(cell.values[q], level=level))
            row["n_test"] = cell.n_test
            rows.append(row)
    return pd.DataFrame(rows)


def peak_table(
    trajectories: Iterable[Any], remedy: str = LONG, *, level: float = 0.95
) -> pd.DataFrame:
    """Per (dataset, teacher): the evaluation where the seed-mean accuracy gain peaks, the gains
    there and at the last step, and the drop from peak to end, for the accuracy gain (``acc_*``)
    and the CE gain (``ce_*``), each with its interval over test examples and seeds.

    Columns ``peak_epoch``, ``end_epoch``, ``n_seeds`` and ``{acc,ce}_gain_peak``,
    ``{acc,ce}_gain_end``, ``{acc,ce}_drop`` (peak minus end, paired) with ``_lo``/``_hi``. The
    peak is picked on the test subset it is scored on, so the drop is optimistic (the largest of
    several noisy means); an interval that contains 0 means no measurable fall.
    """
    level = check_number(level, "level", lo=0.0, hi=1.0, lo_open=True, hi_open=True)
    rows = []
    for (dataset, weak), runs in trajectory_groups(trajectories, remedy).items():
        n = min(len(r.history) for r in runs)
        cells = [_step(runs, i) for i in range(n)]
        peak = int(np.argmax([c.values["acc_gain"].mean() for c in cells]))
        at = {"peak": cells[peak], "end": cells[n - 1]}
        row: dict[str, Any] = {
            "dataset": dataset,
            "weak": weak,
            "peak_epoch": float(runs[0].history["epoch"].iloc[peak]),
            "end_epoch": float(runs[0].history["epoch"].iloc[n - 1]),
            "n_seeds": len(runs),
        }
        for name, q in (("acc", "acc_gain"), ("ce", "gain")):
            for k, cell in at.items():
                iv = metrics.seeds_and_test_interval(cell.values[q], level=level)
                put_interval(row, f"{name}_gain_{k}", iv)
            drop = at["peak"].values[q] - at["end"].values[q]
            put_interval(row, f"{name}_drop", metrics.seeds_and_test_interval(drop, level=level))
        rows.append(row)
    return pd.DataFrame(rows)
