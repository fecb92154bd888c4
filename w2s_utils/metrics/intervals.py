"""Intervals: Student-t across seeds, percentile bootstrap over test examples."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import torch

from w2s_utils._validate import (
    as_tensor,
    check_int,
    check_number,
)


@dataclass(frozen=True)
class Interval:
    """A point estimate with a two-sided interval at confidence ``level``."""

    point: float
    lo: float
    hi: float
    level: float = 0.95

    def __str__(self) -> str:
        return f"{self.point:.4g} [{self.lo:.4g}, {self.hi:.4g}]"


def bootstrap_ci(
    fn: Callable[..., Any],
    *arrays,
    n_resamples: int = 1000,
    level: float = 0.95,
    seed: int = 0,
    chunk: int | None = None,
) -> Interval:
    """Percentile bootstrap interval of a statistic, vectorised over resamples.

    Contract for ``fn``: it receives the arrays with a *leading batch axis* — ``fn(*batched)`` where
    each ``batched[j]`` has shape ``[B, N, ...]`` (row-resampled copies of ``arrays[j]``, all
    resampled with the same indices) — and returns ``B`` values (tensor/array ``[B]``). The point
    estimate is ``fn`` on the data itself (B = 1). Resample indices are one ``[B, N]`` tensor drawn
    from a seeded ``torch.Generator`` (``chunk`` rows at a time to bound memory; by default chunks
    of ~2^24 index entries). Example: ``bootstrap_ci(lambda p, y: (p.argmax(-1) == y).float()
    .mean(-1), probs, labels)``.
    """
    if not arrays:
        raise ValueError("arrays: pass at least one array to resample")
    level = check_number(level, "level", lo=0.0, hi=1.0, lo_open=True, hi_open=True)
    n_resamples = check_int(n_resamples, "n_resamples", minimum=1)
    ts = [as_tensor(a, f"arrays[{j}]", floating=False) for j, a in enumerate(arrays)]
    n = ts[0].shape[0] if ts[0].dim() else 0
    for j, t in enumerate(ts):
        if t.dim() == 0 or t.shape[0] != n or n == 0:
            raise ValueError(
                f"arrays[{j}]: need non-empty arrays with the same first (row) axis, got shapes "
                f"{[tuple(x.shape) for x in ts]}"
            )
        if t.is_floating_point() and not bool(torch.isfinite(t).all()):
            raise ValueError(
                f"arrays[{j}]: contains NaN or inf; the bootstrap would drop them silently: "
                "clean the data (or drop those rows explicitly) first"
            )

    def call(batched: list[torch.Tensor]) -> np.ndarray:
        out = fn(*batched)
        out = out.detach().cpu() if isinstance(out, torch.Tensor) else out
        return np.asarray(out, dtype=np.float64).reshape(-1)

    point = call([t.unsqueeze(0) for t in ts])
    if point.size != 1:
        raise ValueError(f"fn: must return one value per batch row, got {point.size} for B = 1")
    gen = torch.Generator().manual_seed(seed)
    chunk = chunk or max(1, min(n_resamples, (1 << 24) // max(n, 1)))
    stats = []
    for start in range(0, n_resamples, chunk):
        b = min(chunk, n_resamples - start)
        idx = torch.randint(0, n, (b, n), generator=gen)
        vals = call([t[idx.to(t.device)] for t in ts])
        if vals.size != b:
            raise ValueError(f"fn: must return one value per batch row, got {vals.size} for {b}")
        stats.append(vals)
    all_stats = np.concatenate(stats)
    alpha = (1.0 - level) / 2.0
    lo, hi = np.nanquantile(all_stats, [alpha, 1.0 - alpha])
    return Interval(point=float(point[0]), lo=float(lo), hi=float(hi), level=level)


def seed_interval(values, level: float = 0.95) -> Interval:
    """Mean across seeds with a Student-t interval: mean ± t_{(1+level)/2, n−1} · s / sqrt(n).

    With a single value the interval is undefined: ``lo = hi = nan``. NaN values and arrays of more
    than one axis (``[n_seeds, N]`` is not flattened silently) are rejected.
    """
    from scipy import stats

    v = np.asarray(as_tensor(values, "values").detach().cpu(), dtype=np.float64)
    if v.ndim > 1:
        raise ValueError(
            f"values: expected one value per seed, a 1-D array [n_seeds], got shape {v.shape}; "
            "average over the test examples first, or use seeds_and_test_interval for "
            "[n_seeds, N] per-example values"
        )
    v = v.reshape(-1)
    if v.size == 0:
        raise ValueError("values: is empty; pass one metric value per seed")
    if not np.all(np.isfinite(v)):
        raise ValueError("values: contains NaN or inf; drop failed seeds explicitly first")
    level = check_number(level, "level", lo=0.0, hi=1.0, lo_open=True, hi_open=True)
    mean = float(v.mean())
    if v.size == 1:
        return Interval(point=mean, lo=math.nan, hi=math.nan, level=level)
    half = float(stats.t.ppf(0.5 + level / 2.0, df=v.size - 1) * v.std(ddof=1) / math.sqrt(v.size))
    return Interval(point=mean, lo=mean - half, hi=mean + half, level=level)


def _seed_rows(x, name: str) -> np.ndarray:
    a = np.asarray(as_tensor(x, name).detach().cpu(), dtype=np.float64)
    if a.ndim == 1:
        a = a[None, :]
    if a.ndim != 2 or a.shape[1] == 0:
        raise ValueError(
            f"{name}: expected per-example values [N] (one run) or [n_seeds, N], got shape "
            f"{a.shape}"
        )
    if not np.all(np.isfinite(a)):
        raise ValueError(f"{name}: contains NaN or inf; clip the predictions or drop those rows")
    return a


def seeds_and_test_interval(
    per_example,
    denominator=None,
    *,
    n_resamples: int = 2000,
    level: float = 0.95,
    seed: int = 0,
) -> Interval:
    """Interval for a test-set mean (or ratio of means) that holds both kinds of noise.

    ``per_example`` is ``[n_seeds, N]`` (or ``[N]`` for one run): one value per training seed and
    test example, on one fixed test set, for example ``correct_student - correct_weak`` (an
    accuracy gain) or ``loss_student - loss_weak`` (a cross-entropy difference). The point estimate
    is the mean over seeds and examples; with ``denominator`` (same shape) it is
    ``mean(per_example) / mean(denominator)``, for example a PGR with numerator
    ``correct_student - correct_weak`` and denominator ``correct_ceiling - correct_weak``.

    The percentile bootstrap resamples the test examples (the same indices for every seed: the
    comparison is paired) *and* the seeds, so the interval holds the test set's sampling error as
    well as the training noise; a Student-t interval across seeds
    (:func:`seed_interval`) holds only the latter. Resamples whose denominator mean is 0 give NaN
    and are dropped; more than 1% of them -> ``ValueError`` (the ratio is undefined).
    """
    x = _seed_rows(per_example, "per_example")
    d = None if denominator is None else _seed_rows(denominator, "denominator")
    if d is not None and d.shape != x.shape:
        raise ValueError(f"denominator: shape {d.shape} differs from per_example's {x.shape}")
    level = check_number(level, "level", lo=0.0, hi=1.0, lo_open=True, hi_open=True)
    n_resamples = check_int(n_resamples, "n_resamples", minimum=1)
    n_seeds, n = x.shape
    rng = np.random.default_rng(seed)
    chunk = max(1, min(n_resamples, (1 << 22) // max(n * n_seeds, 1)))
    stats = []
    for start in range(0, n_resamples, chunk):
        b = min(chunk, n_resamples - start)
        idx = rng.integers(0, n, size=(b, n))
        seeds = (
            rng.integers(0, n_seeds, size=(b, n_seeds)) if n_seeds > 1 else np.zeros((b, 1), int)
        )
        # per resample: mean over resampled seeds of each seed's mean over the resampled examples
        per_seed = x[:, idx].mean(axis=-1).T  # [b, n_seeds]
        num = np.take_along_axis(per_seed, seeds, axis=1).mean(axis=1)
        if d is None:
            stats.append(num)
            continue
        den_seed = d[:, idx].mean(axis=-1).T
        den = np.take_along_axis(den_seed, seeds, axis=1).mean(axis=1)
        with np.errstate(divide="ignore", invalid="ignore"):
            stats.append(np.where(den != 0, num / np.where(den != 0, den, 1.0), np.nan))
    all_stats = np.concatenate(stats)
    if d is not None and np.isnan(all_stats).mean() > 0.01:
        raise ValueError(
            "denominator: its mean is 0 in more than 1% of the resamples; the ratio is undefined "
            "here (for a PGR: the ceiling does not beat the teacher on this test set)"
        )
    point = float(x.mean()) if d is None else float(x.mean() / d.mean())
    alpha = (1.0 - level) / 2.0
    lo, hi = np.nanquantile(all_stats, [alpha, 1.0 - alpha])
    return Interval(point=point, lo=float(lo), hi=float(hi), level=level)


def across_seeds(
    frame: pd.DataFrame, by: str | Sequence[str], values: str | Sequence[str], level: float = 0.95
) -> pd.DataFrame:
    """One row per group of ``by``: for each column of ``values`` its mean over the group's rows
    (seeds) with a Student-t interval (:func:`seed_interval`), as columns ``<v>``, ``<v>_lo``,
    ``<v>_hi``, and the group size ``n``. NaN values (an undefined PGR, say) are dropped per
    column and counted in ``<v>_n``.
    """
    by = [by] if isinstance(by, str) else list(by)
    values = [values] if isinstance(values, str) else list(values)
    missing = [c for c in by + values if c not in frame.columns]
    if missing:
        raise ValueError(f"frame: has no column(s) {missing}; columns are {list(frame.columns)}")
    rows = []
    for key, grp in frame.groupby(by, sort=False):
        key = key if isinstance(key, tuple) else (key,)
        row = dict(zip(by, key, strict=True))
        row["n"] = len(grp)
        for v in values:
            vals = grp[v].to_numpy(dtype=np.float64)
            vals = vals[np.isfinite(vals)]
            if vals.size == 0:
                row[v], row[f"{v}_lo"], row[f"{v}_hi"] = math.nan, math.nan, math.nan
            else:
                iv = seed_interval(vals, level)
                row[v], row[f"{v}_lo"], row[f"{v}_hi"] = iv.point, iv.lo, iv.hi
            row[f"{v}_n"] = int(vals.size)
        rows.append(row)
    return pd.DataFrame(rows)
