"""Intervals: Student-t across seeds, percentile bootstrap over test examples."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from w2s_utils._validate import (
    as_tensor,
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
    if not (0.0 < level < 1.0):
        raise ValueError(f"level: must be in (0, 1), got {level!r}")
    if not isinstance(n_resamples, int) or n_resamples < 1:
        raise ValueError(f"n_resamples: must be a positive integer, got {n_resamples!r}")
    ts = [as_tensor(a, f"arrays[{j}]", floating=False) for j, a in enumerate(arrays)]
    n = ts[0].shape[0] if ts[0].dim() else 0
    for j, t in enumerate(ts):
        if t.dim() == 0 or t.shape[0] != n or n == 0:
            raise ValueError(
                f"arrays[{j}]: need non-empty arrays with the same first (row) axis, got shapes "
                f"{[tuple(x.shape) for x in ts]}"
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

    With a single value the interval is undefined: ``lo = hi = nan``. NaN values are rejected.
    """
    from scipy import stats

    v = np.asarray(as_tensor(values, "values").detach().cpu(), dtype=np.float64).reshape(-1)
    if v.size == 0:
        raise ValueError("values: is empty; pass one metric value per seed")
    if not np.all(np.isfinite(v)):
        raise ValueError("values: contains NaN or inf; drop failed seeds explicitly first")
    if not (0.0 < level < 1.0):
        raise ValueError(f"level: must be in (0, 1), got {level!r}")
    mean = float(v.mean())
    if v.size == 1:
        return Interval(point=mean, lo=math.nan, hi=math.nan, level=level)
    half = float(stats.t.ppf(0.5 + level / 2.0, df=v.size - 1) * v.std(ddof=1) / math.sqrt(v.size))
    return Interval(point=mean, lo=mean - half, hi=mean + half, level=level)
