"""Calibration of runs over seeds and the shared test set (chapter 3; chapter 4's curves).

Each run is scored against its *own* test labels: a cell's seeds are stacked by
:func:`~w2s_utils.analysis.cells.stack`, which checks that they hold one test split in one order.
Accuracy and test cross-entropy are means over examples and get
:func:`w2s_utils.metrics.seeds_and_test_interval`; binned ECE and smooth CE are not, and get
:func:`w2s_utils.metrics.seeds_and_test_statistic` (the statistic on every seed, a Student-t part
over the seeds plus a normal part whose width is the bootstrap standard deviation over resampled
test examples, the same resamples for every seed). A change (student minus teacher, or one set of
runs minus another) is the statistic of the paired difference on the same resamples.

Calibration errors measured on ``N`` examples are biased upwards by about ``1/sqrt(N)``; the
intervals hold sampling noise, not that bias, which largely cancels in paired changes.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
import torch

from w2s_utils import metrics, theory
from w2s_utils._validate import check_int, check_number
from w2s_utils.analysis.cells import ROLES, Cell, check_same_test_examples, stack

__all__ = [
    "CALIBRATION_METRICS",
    "calibration_change",
    "calibration_table",
    "fitted_temperature",
    "metric_interval",
    "paired_difference",
    "pooled_reliability",
    "temperature_label",
    "temperature_sweep",
]

#: The metrics of chapter 3's tables (all on the test split, against each run's gold labels).
CALIBRATION_METRICS = ("accuracy", "ce", "smooth_ce", "ece")
#: The metrics that are means over test examples: metric -> prefix of a per-example quantity.
_MEANS = {"accuracy": "correct", "ce": "loss"}

#: Values of the non-mean statistics already computed, keyed by the metric and the content of
#: the rows they were computed on: the levels and the paired changes of one set of runs are
#: evaluated on the same test resamples, so each (predictor, seed, resample) is computed once.
_MEMO: dict[bytes, float] = {}
_MEMO_MAX = 400_000


def _statistic(metric: str, p: np.ndarray, y: np.ndarray) -> float:
    """Binned ECE (15 bins, top label) or smooth CE of predictions ``[N, K]`` against labels."""
    h = hashlib.blake2b(metric.encode(), digest_size=20)
    h.update(np.ascontiguousarray(p).tobytes())
    h.update(np.ascontiguousarray(y).tobytes())
    key = h.digest()
    if key not in _MEMO:
        pt, yt = torch.from_numpy(np.ascontiguousarray(p)), torch.from_numpy(np.asarray(y))
        if metric == "ece":
            value = metrics.ece(pt, yt, validate=False)
        else:
            value = metrics.smooth_ce(pt[:, 1], yt, validate=False)
        if len(_MEMO) >= _MEMO_MAX:
            _MEMO.clear()
        _MEMO[key] = float(value)
    return _MEMO[key]


def _check_metric(metric: str, cell: Cell) -> None:
    if metric not in CALIBRATION_METRICS:
        raise ValueError(f"metric: unknown {metric!r}; use one of {CALIBRATION_METRICS}")
    k = cell.probs["weak"].shape[-1]
    if metric == "smooth_ce" and k != 2:
        raise ValueError(f"metric: smooth_ce is for binary predictors, cell {cell.key} has K = {k}")


def _check_paired(a: Cell, b: Cell) -> None:
    if a.seeds != b.seeds:
        raise ValueError(
            f"minus: the two sets of runs must hold the same seeds, got {list(a.seeds)} and "
            f"{list(b.seeds)}"
        )
    check_same_test_examples([a.runs[0], b.runs[0]], "minus (the two sets of runs)")


def metric_interval(
    cell: Cell,
    role: str,
    metric: str,
    *,
    minus: str | tuple[Cell, str] | None = None,
    level: float = 0.95,
    n_resamples: int = 400,
    seed: int = 0,
) -> metrics.SeedsTestInterval:
    """``metric`` of the predictor ``role`` of a cell, averaged over its seeds, with the interval
    over seeds and test examples; with ``minus`` the paired difference ``metric(role) -
    metric(other)``, where ``other`` is a role of the same cell (``minus="weak"``) or a role of
    another cell of the same seeds and test split (``minus=(cell_b, "student")``).

    ``metric`` is one of :data:`CALIBRATION_METRICS`: ``accuracy`` and ``ce`` (test
    cross-entropy) are means over examples (:func:`w2s_utils.metrics.seeds_and_test_interval`);
    ``ece`` (15 equal-width bins, top label) and ``smooth_ce`` (binary only) are not
    (:func:`w2s_utils.metrics.seeds_and_test_statistic` with ``n_resamples`` resamples of the
    test examples drawn from ``seed``).
    """
    if role not in cell.probs:
        raise ValueError(f"role: must be one of {tuple(cell.probs)}, got {role!r}")
    _check_metric(metric, cell)
    level = check_number(level, "level", lo=0.0, hi=1.0, lo_open=True, hi_open=True)
    n_resamples = check_int(n_resamples, "n_resamples", minimum=2)
    other: tuple[Cell, str] | None
    other = (cell, minus) if isinstance(minus, str) else minus
    if other is not None:
        _check_paired(cell, other[0])
        if other[1] not in other[0].probs:
            raise ValueError(
                f"minus: its role must be one of {tuple(other[0].probs)}, got {other[1]!r}"
            )
    if metric in _MEANS:
        key = f"{_MEANS[metric]}_"
        vals = cell.values[key + role]
        if other is not None:
            vals = vals - other[0].values[key + other[1]]
        return metrics.seeds_and_test_interval(vals, level=level)
    arrays = [cell.probs[role], cell.labels_by_seed]
    if other is None:

        def fn(p: np.ndarray, y: np.ndarray) -> float:
            return _statistic(metric, p, y)

    else:
        arrays.append(other[0].probs[other[1]])

        def fn(p: np.ndarray, y: np.ndarray, q: np.ndarray) -> float:
            return _statistic(metric, p, y) - _statistic(metric, q, y)

    return metrics.seeds_and_test_statistic(
        fn, *arrays, level=level, n_resamples=n_resamples, seed=seed
    )


def _put(row: dict[str, Any], iv: metrics.Interval) -> dict[str, Any]:
    return {**row, "value": iv.point, "lo": iv.lo, "hi": iv.hi}


def calibration_table(
    results: Iterable[Any],
    by: Sequence[str] = ("dataset", "weak"),
    *,
    level: float = 0.95,
    n_resamples: int = 400,
    seed: int = 0,
) -> pd.DataFrame:
    """Accuracy, CE, smooth CE and binned ECE of teacher, student and ceiling per cell of ``by``.

    One row per (cell, role, metric): the ``by`` fields, ``role``, ``metric``, ``value`` (the
    mean over seeds), ``lo``/``hi`` (:func:`metric_interval`) and ``n_seeds``. Every run is
    scored on its own labels; the seeds of a cell must share one test order (checked).
    """
    rows = []
    for cell in stack(results, by).values():
        base = dict(zip(cell.by, cell.key, strict=True))
        for role in ROLES:
            for metric in CALIBRATION_METRICS:
                iv = metric_interval(
                    cell, role, metric, level=level, n_resamples=n_resamples, seed=seed
                )
                row = {**base, "role": role, "metric": metric}
                rows.append({**_put(row, iv), "n_seeds": cell.n_seeds})
    return pd.DataFrame(rows)


def calibration_change(
    results: Iterable[Any],
    by: Sequence[str] = ("dataset", "weak"),
    *,
    n_bins: int = 15,
    level: float = 0.95,
    n_resamples: int = 400,
    seed: int = 0,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The calibration bound (:func:`w2s_utils.theory.calibration_bound`) on every run, and per
    cell of ``by`` (default: dataset x teacher) the measured change inside its band.

    Returns ``(runs, pairs)``. ``runs``: one row per run with the signed change ``smce_change =
    smCE(student) - smCE(weak)``, ``ece_change``, the bound's sides ``bound_abs = 2 E|p_sw - p_w|``
    and ``bound_eps = sqrt(2 eps)``, ``holds`` and the tightness ``used = |smce_change| /
    bound_abs``. ``pairs``: per cell the seed mean of the changes with their paired interval over
    seeds and test examples (:func:`metric_interval`, ``minus="weak"``), the seed means of the
    bounds, ``lower_abs``/``upper_abs`` (the band) and ``all_hold``. Cells are the values of the
    config fields ``by`` (default dataset x teacher; both frames carry them as columns, and
    ``pair`` joins them with line breaks for a figure's axis).
    """
    rows, agg = [], []
    for cell in stack(results, by).values():
        base = dict(zip(cell.by, cell.key, strict=True))
        first = len(rows)
        for r in cell.runs:
            res = theory.calibration_bound(r.weak, r.student, labels=r.labels, n_bins=n_bins)
            rows.append(
                dict(
                    **base,
                    seed=r.config.seed,
                    smce_change=res.smce_student - res.smce_weak,
                    ece_change=res.ece_student - res.ece_weak,
                    mean_abs=res.mean_abs,
                    bound_abs=res.bound_abs,
                    bound_eps=res.bound_eps,
                    eps=res.eps,
                    holds=res.holds,
                    used=res.diff / res.bound_abs if res.bound_abs else np.nan,
                )
            )
        row: dict[str, Any] = {**base, "pair": "\n".join(str(v) for v in cell.key)}
        for metric, name in (("smooth_ce", "smce_change"), ("ece", "ece_change")):
            iv = metric_interval(
                cell, "student", metric, minus="weak", level=level, n_resamples=n_resamples,
                seed=seed,
            )  # fmt: skip
            row.update({name: iv.point, f"{name}_lo": iv.lo, f"{name}_hi": iv.hi})
        sub = pd.DataFrame(rows[first:])
        for c in ("bound_abs", "bound_eps", "eps", "used"):
            row[c] = float(sub[c].mean())
        row["lower_abs"], row["upper_abs"] = -row["bound_abs"], row["bound_abs"]
        row["all_hold"] = bool(sub.holds.all())
        agg.append(row)
    return pd.DataFrame(rows), pd.DataFrame(agg)


def temperature_label(t: float | str) -> str:
    """The row label of a teacher temperature: ``"T = 0.5"`` for a number, ``"fitted T"`` for
    ``"fit"`` (a temperature fitted on the teacher's validation labels)."""
    if t == "fit":
        return "fitted T"
    return f"T = {float(check_number(t, 't', lo=0.0, lo_open=True)):g}"


def temperature_sweep(
    runs_by_temperature: Mapping[float | str, Sequence[Any]],
    *,
    level: float = 0.95,
    n_resamples: int = 400,
    seed: int = 0,
) -> pd.DataFrame:
    """Teacher and student metrics per teacher temperature (one dataset and teacher model).

    ``runs_by_temperature`` maps a temperature (or ``"fit"``) to its runs, one per seed, all on
    one test split. One row per (temperature, role, metric): ``temperature`` (``"T = 0.5"`` or
    ``"fitted T"``), ``t`` (the number, NaN for ``"fit"``), ``role`` (``weak``, ``student`` and
    ``change`` = student - teacher, paired), ``metric``, ``value``, ``lo``, ``hi``
    (:func:`metric_interval`).
    """
    if not runs_by_temperature:
        raise ValueError("runs_by_temperature: is empty; map each temperature to its runs")
    rows = []
    for t, runs in runs_by_temperature.items():
        (cell,) = stack(runs, ()).values()
        base = dict(temperature=temperature_label(t), t=np.nan if t == "fit" else float(t))
        for role, minus in (("weak", None), ("student", None), ("change", "weak")):
            for metric in CALIBRATION_METRICS:
                iv = metric_interval(
                    cell, "student" if role == "change" else role, metric, minus=minus,
                    level=level, n_resamples=n_resamples, seed=seed,
                )  # fmt: skip
                rows.append(_put({**base, "role": role, "metric": metric}, iv))
    return pd.DataFrame(rows)


def paired_difference(
    runs_a: Iterable[Any],
    runs_b: Iterable[Any],
    role: str,
    metric: str,
    *,
    level: float = 0.95,
    n_resamples: int = 400,
    seed: int = 0,
) -> metrics.SeedsTestInterval:
    """``metric(role of runs_a) - metric(role of runs_b)`` with a paired interval over seeds and
    test examples (:func:`metric_interval`). The two lists hold runs of the same seeds on the same
    test split (e.g. the students of a calibrated and of an untempered teacher), else
    ``ValueError``."""
    (a,) = stack(runs_a, ()).values()
    (b,) = stack(runs_b, ()).values()
    return metric_interval(
        a, role, metric, minus=(b, role), level=level, n_resamples=n_resamples, seed=seed
    )


def pooled_reliability(results: Sequence[Any], role: str, n_bins: int = 10) -> metrics.Reliability:
    """Top-label reliability curve of ``role`` (weak / student / ceiling) with every run's test
    predictions pooled, each against its own labels (equal-width bins; a plot skips the empty
    ones)."""
    if role not in ROLES:
        raise ValueError(f"role: must be one of {ROLES}, got {role!r}")
    if not results:
        raise ValueError("results: is empty; pass the runs whose predictions to pool")
    p = np.concatenate([np.asarray(getattr(r, role), dtype=np.float64) for r in results])
    y = np.concatenate([np.asarray(r.labels) for r in results])
    return metrics.reliability(torch.from_numpy(p), torch.from_numpy(y), n_bins=n_bins)


def fitted_temperature(base: Any, fitted: Any) -> float:
    """The temperature a ``weak_temperature="fit"`` run applied, read off its teacher's labels.

    For a binary teacher the tempered log-odds are the original ones divided by ``T``, so ``T``
    is their ratio on the student's training texts (median over examples with non-negligible
    log-odds; the ratio is the same on every example up to rounding). ``base`` is the ``T = 1``
    run of the same dataset, teacher and seed.
    """
    a = np.asarray(base.weak_labels_train, dtype=np.float64)
    b = np.asarray(fitted.weak_labels_train, dtype=np.float64)
    if a.shape != b.shape or a.ndim != 2 or a.shape[1] != 2:
        raise ValueError(
            f"base, fitted: need binary teacher labels [N, 2] of one run pair, got {a.shape} and "
            f"{b.shape}"
        )
    la = np.log(a[:, 1]) - np.log(a[:, 0])
    lb = np.log(b[:, 1]) - np.log(b[:, 0])
    keep = np.abs(lb) > 1e-3
    if not keep.any():
        raise ValueError("fitted: the fitted teacher's log-odds are all ~0; no temperature to read")
    return float(np.median(la[keep] / lb[keep]))
