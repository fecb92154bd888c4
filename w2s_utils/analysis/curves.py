"""Student trajectories pooled across seeds (chapter 4): mean curves and the peak of the gain.

A trajectory (:class:`~w2s_utils.engine.trajectories.Trajectory`) holds the student's test
predictions at every evaluation; the trajectories of one (dataset, teacher) and of different seeds
hold one test subset in one order (checked by :func:`~w2s_utils.analysis.cells.stack`, never
re-aligned). This module reads a trajectory's attributes and does not import the engine, so that
the analysis layer loads without it. Intervals: :func:`w2s_utils.metrics.seeds_and_test_interval`
on the per-example values of :func:`w2s_utils.metrics.per_example` (test examples and seeds).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from w2s_utils import metrics, theory
from w2s_utils._validate import check_int, check_number
from w2s_utils.analysis.cells import Cell, check_same_test_examples, stack
from w2s_utils.analysis.tables import put_interval

__all__ = [
    "compare_selected",
    "crossfit_best_steps",
    "mean_curves",
    "peak_table",
    "step_intervals",
    "trajectory_groups",
    "trajectory_room_checks",
]

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


# ------------------------------------------------ curves held as arrays (seeds x steps x test)


def _seeds_steps_test(per_example: Any, name: str) -> np.ndarray:
    x = np.asarray(per_example, dtype=np.float64)
    if x.ndim != 3 or min(x.shape) < 1:
        raise ValueError(
            f"{name}: expected [n_seeds, n_steps, N] per-example values (seeds x evaluations x "
            f"shared test examples), got shape {x.shape}"
        )
    if not np.isfinite(x).all():
        raise ValueError(f"{name}: holds NaN or infinite values; fix the computation first")
    return x


def step_intervals(
    per_example: Any, steps: Sequence[float], *, level: float = 0.95
) -> pd.DataFrame:
    """The mean of ``per_example`` ``[S, T, N]`` at every evaluation with its interval over seeds
    and the shared test examples (:func:`w2s_utils.metrics.seeds_and_test_interval`).

    ``steps`` ``[T]`` labels the evaluations. Columns ``step``, ``value``, ``value_lo``,
    ``value_hi``, ``n_seeds``, ``n_test``. The test examples must be one set in one order for
    every seed (the layout of :class:`w2s_utils.engine.overfitting.OverfittingCurves`).
    """
    x = _seeds_steps_test(per_example, "per_example")
    level = check_number(level, "level", lo=0.0, hi=1.0, lo_open=True, hi_open=True)
    steps = np.asarray(steps, dtype=np.float64)
    if steps.shape != (x.shape[1],):
        raise ValueError(
            f"steps: expected {x.shape[1]} labels (one per evaluation), got {steps.shape}"
        )
    rows = []
    for j, step in enumerate(steps):
        row: dict[str, Any] = {"step": float(step)}
        put_interval(row, "value", metrics.seeds_and_test_interval(x[:, j], level=level))
        row["n_seeds"], row["n_test"] = x.shape[0], x.shape[2]
        rows.append(row)
    return pd.DataFrame(rows)


def compare_selected(
    values: Mapping[str, Any], reference: str, *, level: float = 0.95
) -> pd.DataFrame:
    """Paired comparison of methods that each give one value per seed and test example.

    ``values`` maps a method's name to ``[S, N]`` per-example values (for a selection rule: each
    seed's values at the step the rule picked), the same seeds and test examples in one order for
    every method, so that differences are paired. One row per method, in the given order:
    ``method``, ``value`` with ``value_lo``/``value_hi`` and ``diff`` = method minus
    ``reference`` with ``diff_lo``/``diff_hi`` (0 for the reference itself), all from
    :func:`w2s_utils.metrics.seeds_and_test_interval`, and ``n_seeds``, ``n_test``.
    """
    if not isinstance(values, Mapping) or not values:
        raise ValueError("values: expected a non-empty mapping {method: [n_seeds, N] values}")
    if reference not in values:
        raise ValueError(f"reference: {reference!r} is not one of the methods {list(values)}")
    level = check_number(level, "level", lo=0.0, hi=1.0, lo_open=True, hi_open=True)
    arrays = {}
    for name, v in values.items():
        a = np.asarray(v, dtype=np.float64)
        if a.ndim != 2 or not np.isfinite(a).all():
            raise ValueError(
                f"values[{name!r}]: expected finite [n_seeds, N] values, got shape {a.shape}"
            )
        arrays[name] = a
    ref = arrays[reference]
    bad = [n for n, a in arrays.items() if a.shape != ref.shape]
    if bad:
        raise ValueError(
            f"values: {bad} differ in shape from {reference!r} {ref.shape}; paired methods need "
            "the same seeds and test examples"
        )
    rows = []
    for name, a in arrays.items():
        row: dict[str, Any] = {"method": name}
        put_interval(row, "value", metrics.seeds_and_test_interval(a, level=level))
        if name == reference:
            row["diff"], row["diff_lo"], row["diff_hi"] = 0.0, 0.0, 0.0
        else:
            put_interval(row, "diff", metrics.seeds_and_test_interval(a - ref, level=level))
        row["n_seeds"], row["n_test"] = a.shape
        rows.append(row)
    return pd.DataFrame(rows)


def crossfit_best_steps(scores: Any, folds: int = 2) -> np.ndarray:
    """For each example, the step that is best on the *other* examples: selection without
    scoring on what was selected on.

    ``scores`` ``[T, N]``: a per-example score (higher is better, e.g. 1 for a correct gold
    prediction) of a run's ``T`` evaluations on ``N`` examples. Example ``i`` belongs to fold
    ``i % folds``; for each fold the step with the highest mean score on the examples outside
    the fold is picked (ties: the earliest), and returned for every example of the fold. An
    example's value at its returned step is then an honest estimate of the selected student,
    and all ``N`` examples are still scored (cross-fitting).
    """
    x = np.asarray(scores, dtype=np.float64)
    if x.ndim != 2 or min(x.shape) < 1 or not np.isfinite(x).all():
        raise ValueError(f"scores: expected finite [n_steps, N] values, got shape {x.shape}")
    folds = check_int(folds, "folds", minimum=2, maximum=x.shape[1])
    fold = np.arange(x.shape[1]) % folds
    out = np.zeros(x.shape[1], dtype=np.int64)
    for f in range(folds):
        out[fold == f] = int(np.argmax(x[:, fold != f].mean(axis=1)))
    return out


def trajectory_room_checks(trajectories: Iterable[Any], floor: float) -> pd.DataFrame:
    """:func:`w2s_utils.theory.trajectory_room` on every trajectory's test subset (its gold
    labels), the predictions projected onto ``floor`` first (:func:`w2s_utils.theory.ensure_floor`,
    the engine's ``trajectories.FLOOR``): one row per run with ``holds`` (the measured CE gain
    inside the label-free region at every step), ``max_room``, ``best_gain``, ``room_at_best``,
    ``share_used`` (best gain / room at that step; NaN where the room is 0), ``max_log_room``
    and ``min_gamma``."""
    floor = check_number(floor, "floor", lo=0.0, hi=0.5, lo_open=True)
    rows = []
    for t in trajectories:
        weak = theory.ensure_floor(np.asarray(t.weak, dtype=np.float64), floor)
        students = [theory.ensure_floor(np.asarray(p, dtype=np.float64), floor) for p in t.students]
        res = theory.trajectory_room(weak, students, labels=np.asarray(t.labels))
        best = res.best_step
        rows.append(
            {
                "dataset": t.config.dataset,
                "weak": t.config.weak,
                "seed": t.config.seed,
                "remedy": t.config.remedy,
                "holds": res.holds,
                "max_room": res.max_room,
                "best_gain": res.best_gain,
                "room_at_best": res.room[best],
                "share_used": res.best_gain / res.room[best] if res.room[best] > 0 else np.nan,
                "max_log_room": max(res.log_room),
                "min_gamma": min(res.gamma),
            }
        )
    return pd.DataFrame(rows)
