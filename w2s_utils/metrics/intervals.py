"""Intervals: Student-t across seeds, percentile bootstrap over test examples, and the interval
over seeds and a shared test set that the chapters' verdicts use (:func:`seeds_and_test_interval`,
:func:`seeds_and_test_statistic`)."""

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
    bad = ~np.isfinite(all_stats)
    if not np.isfinite(point[0]) or bad.any():
        raise ValueError(
            f"fn: is NaN or infinite on {'the data' if not np.isfinite(point[0]) else ''}"
            f"{f'{bad.mean():.1%} of the resamples' if bad.any() else ''}; a bootstrap that "
            "dropped them would be too narrow. Use a statistic that is defined on every resample"
        )
    alpha = (1.0 - level) / 2.0
    lo, hi = np.quantile(all_stats, [alpha, 1.0 - alpha])
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


@dataclass(frozen=True)
class SeedsTestInterval(Interval):
    """An :class:`Interval` over training seeds and a shared test set, with its two parts.

    ``half_seeds`` is the Student-t half-width of the per-seed means (training noise, with the
    ``n_seeds - 1`` degrees of freedom the seeds give), ``half_test`` the normal half-width of
    the mean over test examples of the seed-averaged values (the test set's sampling error, which
    every seed shares and so never shows between seeds). The interval is the point plus or minus
    their sum. With one seed ``half_seeds`` and the interval are NaN: training noise cannot be
    estimated from one run.
    """

    half_seeds: float = math.nan
    half_test: float = math.nan
    n_seeds: int = 0
    n_test: int = 0


def _two_parts(
    point: float, seed_values: np.ndarray, test_sd: float, n_test: int, level: float
) -> SeedsTestInterval:
    from scipy import stats

    n_seeds = seed_values.size
    z = float(stats.norm.ppf(0.5 + level / 2.0))
    half_test = z * test_sd
    if n_seeds > 1:
        t = float(stats.t.ppf(0.5 + level / 2.0, df=n_seeds - 1))
        half_seeds = t * float(seed_values.std(ddof=1)) / math.sqrt(n_seeds)
    else:
        half_seeds = math.nan
    half = half_seeds + half_test
    return SeedsTestInterval(
        point=point,
        lo=point - half,
        hi=point + half,
        level=level,
        half_seeds=half_seeds,
        half_test=half_test,
        n_seeds=int(n_seeds),
        n_test=int(n_test),
    )


def seeds_and_test_interval(per_example, denominator=None, *, level: float = 0.95):
    """Interval for a test-set mean (or a ratio of means) that holds both kinds of noise.

    ``per_example`` is ``[n_seeds, N]`` (or ``[N]`` for one run): one value per training seed and
    test example, the test examples in one order for every seed (the engine's test splits are
    sorted by example id), for example ``correct_student - correct_weak`` (an accuracy gain) or
    ``loss_weak - loss_student`` (a gain in cross-entropy). The point estimate is the mean over
    seeds and examples; with ``denominator`` (same shape) it is the ratio of the means
    ``mean(per_example) / mean(denominator)`` (a PGR: gain over gap), handled by the delta method
    (the values ``(x - R d) / mean(d)`` take the place of ``x``).

    What it covers: the expected value of the statistic over training seeds *and* over the test
    distribution. Model: ``x[s, i] = mu + a_s + b_i + e_si`` with seed effects ``a``, example
    effects ``b`` shared by every seed, and noise ``e``. The seed means ``m_s`` carry
    ``a_s + e_s`` but all share ``b``, so a Student-t interval over them (``n_seeds - 1`` degrees
    of freedom, exact for normal seed effects) covers the training noise only; the
    example means over seeds ``c_i`` carry ``b_i`` (plus a little noise), so a normal interval
    over them covers the test set's sampling error. The interval is the point plus or minus the
    *sum* of the two half-widths (:class:`SeedsTestInterval` keeps both). Conservative by
    construction: when one kind of noise dominates it is that kind's own interval, when both
    matter it is wider than needed. Coverage, checked by simulation at 2, 3 and 5 seeds with seed
    sd from 0 to well above the test error (``tests/metrics/test_intervals.py``): at least the
    nominal level up to simulation error. No exact guarantee: from the two 95% parts alone only
    1 - 2 x 0.05 = 90% follows (union bound). With 2 seeds the t quantile is 12.7, with 3 it is
    4.3: few seeds give wide intervals, honestly. One seed: NaN (run more seeds).
    """
    x = _seed_rows(per_example, "per_example")
    level = check_number(level, "level", lo=0.0, hi=1.0, lo_open=True, hi_open=True)
    n_seeds, n = x.shape
    if denominator is not None:
        d = _seed_rows(denominator, "denominator")
        if d.shape != x.shape:
            raise ValueError(f"denominator: shape {d.shape} differs from per_example's {x.shape}")
        d_mean = float(d.mean())
        if d_mean == 0.0:
            raise ValueError(
                "denominator: its mean is 0, so the ratio is undefined (for a PGR: the ceiling "
                "does not beat the teacher on this test set)"
            )
        point = float(x.mean()) / d_mean
        x = (x - point * d) / d_mean  # delta method: the linearised ratio, mean 0
    else:
        point = float(x.mean())
    seed_means = x.mean(axis=1)
    example_means = x.mean(axis=0)
    test_sd = float(example_means.std(ddof=1)) / math.sqrt(n) if n > 1 else math.nan
    return _two_parts(point, seed_means, test_sd, n, level)


def seeds_and_test_statistic(
    fn: Callable[..., Any],
    *arrays,
    level: float = 0.95,
    n_resamples: int = 400,
    seed: int = 0,
) -> SeedsTestInterval:
    """:func:`seeds_and_test_interval` for a statistic that is not a mean (an ECE, a smooth
    calibration error, a median).

    ``arrays`` are ``[n_seeds, N, ...]`` (the test examples in one order for every seed);
    ``fn(*rows)`` gets one seed's rows ``[N, ...]`` and returns a number. The point is the mean of
    the per-seed values; the seed half-width is their Student-t half-width; the test half-width is
    the normal quantile times the standard deviation, over ``n_resamples`` bootstrap resamples of
    the test examples (the same indices for every seed), of the seed-averaged statistic. A
    standard deviation needs far fewer resamples than a 2.5% quantile: with 400 its relative
    error is about 1/sqrt(2 x 400) = 3.5%. A resample whose statistic is NaN or infinite raises
    (nothing is dropped silently). The interval holds sampling noise, not an estimator's bias
    (a calibration error measured on N examples is biased upwards by about 1/sqrt(N)).
    """
    if not arrays:
        raise ValueError("arrays: pass at least one [n_seeds, N, ...] array")
    level = check_number(level, "level", lo=0.0, hi=1.0, lo_open=True, hi_open=True)
    n_resamples = check_int(n_resamples, "n_resamples", minimum=2)
    xs = [
        np.asarray(as_tensor(a, f"arrays[{j}]", floating=False).cpu())
        for j, a in enumerate(arrays)
    ]
    n_seeds, n = xs[0].shape[:2] if xs[0].ndim >= 2 else (0, 0)
    for j, a in enumerate(xs):
        if a.ndim < 2 or a.shape[:2] != (n_seeds, n) or n_seeds == 0 or n < 2:
            raise ValueError(
                f"arrays[{j}]: need [n_seeds, N, ...] arrays with one shape of the first two "
                f"axes and N >= 2, got shapes {[x.shape for x in xs]}"
            )

    def stat(s: int, idx: np.ndarray | None) -> float:
        rows = [a[s] if idx is None else a[s][idx] for a in xs]
        v = float(np.asarray(fn(*rows), dtype=np.float64))
        if not math.isfinite(v):
            raise ValueError(
                f"fn: returned {v} on seed {s}" + ("" if idx is None else " in a resample")
                + "; the statistic must be finite on every resample of the test examples"
            )
        return v

    per_seed = np.array([stat(s, None) for s in range(n_seeds)])
    rng = np.random.default_rng(seed)
    boots = np.empty(n_resamples)
    for b in range(n_resamples):
        idx = rng.integers(0, n, n)
        boots[b] = np.mean([stat(s, idx) for s in range(n_seeds)])
    return _two_parts(float(per_seed.mean()), per_seed, float(boots.std(ddof=1)), n, level)


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


def wilson_interval(successes: int, trials: int, level: float = 0.95) -> tuple[float, float]:
    """Wilson score interval ``(lo, hi)`` for a binomial rate ``successes / trials``.

    The interval of rates ``p`` whose score test does not reject at ``1 - level``:
    ``(p̂ + z²/2n ± z sqrt(p̂(1 − p̂)/n + z²/4n²)) / (1 + z²/n)`` with ``z`` the two-sided normal
    quantile (statsmodels' ``proportion_confint(method="wilson")`` and scipy's
    ``binomtest(...).proportion_ci(method="wilson")``). The ends are exactly 0 when
    ``successes = 0`` and exactly 1 when ``successes = trials``; ``(nan, nan)`` for ``trials = 0``.
    Used for violation rates over random instances (chapter 6).
    """
    trials = check_int(trials, "trials", minimum=0)
    successes = check_int(successes, "successes", minimum=0)
    if successes > trials:
        raise ValueError(
            f"successes: {successes} exceeds trials = {trials}; pass the count of successes "
            "among the trials"
        )
    level = check_number(level, "level", lo=0.0, hi=1.0, lo_open=True, hi_open=True)
    if trials == 0:
        return math.nan, math.nan
    from scipy import stats

    z = float(stats.norm.ppf(0.5 + level / 2.0))
    p = successes / trials
    den = 1.0 + z * z / trials
    mid = (p + z * z / (2 * trials)) / den
    half = z * math.sqrt(p * (1.0 - p) / trials + z * z / (4.0 * trials * trials)) / den
    lo = 0.0 if successes == 0 else max(0.0, mid - half)
    hi = 1.0 if successes == trials else min(1.0, mid + half)
    return float(lo), float(hi)
