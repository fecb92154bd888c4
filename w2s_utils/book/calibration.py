"""Chapter 3 (calibration): the tables, intervals and figure data the chapter shows.

Everything here turns cached runs (:class:`~w2s_utils.engine.experiment.ExperimentResult`) or
planted results into tidy frames; drawing stays in :mod:`w2s_utils.book.plots`.

Intervals hold both kinds of noise, as :func:`w2s_utils.metrics.seeds_and_test_interval` does for
means: a :class:`Bootstrap` fixes, once per test set, ``B`` resamples of the test examples (the
same indices for every seed and every predictor, so comparisons are paired) and ``B`` resamples
of the seeds. A metric that is not a mean over examples (smooth CE, binned ECE) is recomputed on
every resample of every seed; the interval is the percentile interval of the mean over the
resampled seeds. The over-optimization chapter reuses :func:`metric_draws` and
:func:`pooled_reliability` for its calibration curves.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import torch

from w2s_utils import metrics, theory
from w2s_utils.theory import instances

__all__ = [
    "CALIBRATION_METRICS",
    "ROLES",
    "Bootstrap",
    "calibration_change",
    "calibration_table",
    "fast_ece",
    "fitted_temperature",
    "interval",
    "interval_note",
    "make_bootstrap",
    "paired_difference",
    "metric_draws",
    "pooled_reliability",
    "random_calibration_check",
    "random_multiclass_check",
    "runs_by_pair",
    "temperature_label",
    "temperature_sweep",
]

#: The metrics of the chapter's tables (all computed on the test split against gold labels).
CALIBRATION_METRICS = ("accuracy", "ce", "smooth_ce", "ece")
#: The three predictors of a run, in the order the tables and figures show them.
ROLES = ("weak", "student", "ceiling")


@dataclass(frozen=True)
class Bootstrap:
    """Shared resamples for one test set: ``idx`` ``[B, N]`` example indices, ``seed_draws``
    ``[B, S]`` positions into the seed axis, ``level`` of the intervals."""

    idx: np.ndarray
    seed_draws: np.ndarray
    level: float = 0.95


def make_bootstrap(
    n_examples: int, n_seeds: int, n_resamples: int = 100, *, seed: int = 0, level: float = 0.95
) -> Bootstrap:
    """``n_resamples`` paired resamples of ``n_examples`` test examples and of ``n_seeds`` seeds."""
    if n_examples < 1 or n_seeds < 1 or n_resamples < 2:
        raise ValueError(
            f"make_bootstrap: need n_examples >= 1, n_seeds >= 1 and n_resamples >= 2, got "
            f"{n_examples}, {n_seeds}, {n_resamples}"
        )
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, n_examples, size=(n_resamples, n_examples))
    draws = rng.integers(0, n_seeds, size=(n_resamples, n_seeds))
    if n_seeds == 1:
        draws[:] = 0
    return Bootstrap(idx=idx, seed_draws=draws, level=level)


def fast_ece(
    probs: np.ndarray, labels: np.ndarray, idx: np.ndarray, n_bins: int = 15
) -> np.ndarray:
    """Top-label binned ECE of ``probs`` ``[N, K]`` on each row of resample indices ``idx``.

    The binning of :func:`w2s_utils.metrics.ece` (``n_bins`` equal-width bins plus the point bin
    at confidence 1, torchmetrics' rule); one ``bincount`` per resample instead of one call each.
    """
    p = np.asarray(probs, dtype=np.float64)
    conf = p.max(axis=1)
    hit = (p.argmax(axis=1) == np.asarray(labels)).astype(np.float64)
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    b = np.clip(np.searchsorted(edges, conf, side="right") - 1, 0, n_bins)
    out = np.empty(len(idx))
    for r, ii in enumerate(np.atleast_2d(idx)):
        bins = b[ii]
        gap = np.bincount(bins, weights=hit[ii] - conf[ii], minlength=n_bins + 1)
        out[r] = np.abs(gap).sum() / len(ii)
    return out


def _smce(p: np.ndarray, labels: np.ndarray, ii: np.ndarray) -> float:
    return metrics.smooth_ce(
        torch.from_numpy(p[ii, 1]), torch.from_numpy(labels[ii]), validate=False
    )


def metric_draws(
    probs: np.ndarray,
    labels: np.ndarray,
    boot: Bootstrap,
    names: Sequence[str] = CALIBRATION_METRICS,
) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Per-seed point values and bootstrap draws of each metric for predictions ``[S, N, 2]``.

    Returns ``{name: (point [S], draws [S, B])}``: the metric on the full test set of every seed
    and on each of ``boot``'s example resamples (the same resamples for every predictor).
    """
    probs = np.asarray(probs, dtype=np.float64)
    if probs.ndim == 2:
        probs = probs[None]
    labels = np.asarray(labels, dtype=np.int64)
    n = len(labels)
    out: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    for name in names:
        point, draws = [], []
        for p in probs:
            if name == "accuracy":
                v = (p.argmax(1) == labels).astype(np.float64)
                point.append(v.mean())
                draws.append(v[boot.idx].mean(1))
            elif name == "ce":
                v = -np.log(np.clip(p[np.arange(n), labels], 1e-12, None))
                point.append(v.mean())
                draws.append(v[boot.idx].mean(1))
            elif name == "ece":
                point.append(metrics.ece(torch.from_numpy(p), torch.from_numpy(labels)))
                draws.append(fast_ece(p, labels, boot.idx))
            elif name == "smooth_ce":
                point.append(_smce(p, labels, np.arange(n)))
                draws.append(np.array([_smce(p, labels, ii) for ii in boot.idx]))
            else:
                raise ValueError(f"metric {name!r}: use one of {CALIBRATION_METRICS}")
        out[name] = (np.array(point), np.stack(draws))
    return out


def interval(
    boot: Bootstrap, point: np.ndarray, draws: np.ndarray, *, kind: str = "percentile"
) -> metrics.Interval:
    """Seed mean of ``point`` ``[S]`` with a bootstrap interval from ``draws`` ``[S, B]``.

    Each resample's statistic is the mean of ``draws`` over ``boot``'s resampled seeds (test-set
    and seed noise together). ``kind="percentile"`` (default, as
    :func:`w2s_utils.metrics.seeds_and_test_interval`): its quantiles. ``kind="basic"``:
    ``[2 m - q_hi, 2 m - q_lo]``. Smooth CE and binned ECE are biased upward on a finite sample
    (a resample with duplicates looks less calibrated still), so for their *levels* near 0 the
    percentile interval sits above the point estimate and the basic one can exclude it from
    above; for *changes* (student - teacher, paired) the bias largely cancels.
    """
    if kind not in ("percentile", "basic"):
        raise ValueError(f"kind: must be 'percentile' or 'basic', got {kind!r}")
    point = np.asarray(point, dtype=np.float64)
    draws = np.asarray(draws, dtype=np.float64)
    s = draws.shape[0]
    sd = boot.seed_draws if s == boot.seed_draws.shape[1] else np.zeros((len(boot.idx), s), int)
    stats = np.take_along_axis(draws.T, sd, axis=1).mean(1)
    a = (1.0 - boot.level) / 2.0
    q_lo, q_hi = (float(q) for q in np.quantile(stats, [a, 1.0 - a]))
    m = float(point.mean())
    lo, hi = (q_lo, q_hi) if kind == "percentile" else (2 * m - q_hi, 2 * m - q_lo)
    return metrics.Interval(point=m, lo=lo, hi=hi, level=boot.level)


def runs_by_pair(results: Iterable[Any]) -> dict[tuple[str, str], list[Any]]:
    """Group runs by ``(dataset, weak)`` in first-seen order, each list sorted by seed."""
    groups: dict[tuple[str, str], list[Any]] = {}
    for r in results:
        groups.setdefault((r.config.dataset, r.config.weak), []).append(r)
    return {k: sorted(v, key=lambda r: r.config.seed) for k, v in groups.items()}


def _stack(runs: Sequence[Any], role: str) -> np.ndarray:
    return np.stack([np.asarray(getattr(r, role), dtype=np.float64) for r in runs])


def calibration_table(
    results: Iterable[Any], n_resamples: int = 100, *, seed: int = 0
) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Accuracy, CE, smooth CE and binned ECE of teacher, student and ceiling per (dataset, weak).

    One row per (dataset, weak, role, metric) with ``value``, ``lo``, ``hi`` (interval over test
    resamples and seeds, :func:`interval`). Also returns the draws,
    keyed by ``(dataset, weak, role)``, and the bootstraps by dataset, for paired comparisons.
    """
    pairs = runs_by_pair(results)
    boots: dict[str, Bootstrap] = {}
    draws: dict[tuple[str, str, str], dict[str, tuple[np.ndarray, np.ndarray]]] = {}
    rows = []
    for (ds, weak), runs in pairs.items():
        if ds not in boots:
            boots[ds] = make_bootstrap(len(runs[0].labels), len(runs), n_resamples, seed=seed)
        boot = boots[ds]
        for role in ROLES:
            ceiling_key = (ds, "*", "ceiling")
            if role == "ceiling" and ceiling_key in draws:  # one ceiling per (dataset, seed)
                d = draws[ceiling_key]
            else:
                d = metric_draws(_stack(runs, role), runs[0].labels, boot)
                if role == "ceiling":
                    draws[ceiling_key] = d
            draws[ds, weak, role] = d
            for name, (point, dr) in d.items():
                iv = interval(boot, point, dr)
                rows.append(
                    dict(
                        dataset=ds,
                        weak=weak,
                        role=role,
                        metric=name,
                        value=iv.point,
                        lo=iv.lo,
                        hi=iv.hi,
                        n_seeds=len(runs),
                    )
                )
    return pd.DataFrame(rows), {"draws": draws, "boots": boots}


def calibration_change(
    results: Iterable[Any], draws: Mapping[str, Any], *, n_bins: int = 15
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Theorem 2 on every run, and per (dataset, weak) the measured change inside its band.

    Returns ``(runs, pairs)``. ``runs``: one row per run with the signed change
    ``smce_change = smCE(student) - smCE(weak)``, ``ece_change``, the theorem's sides
    ``bound_abs = 2 E|p_sw - p_w|`` and ``bound_eps = sqrt(2 eps)``, ``holds`` and the tightness
    ``used = |smce_change| / bound_abs``. ``pairs``: the seed mean of each with the interval of the
    changes (paired over test resamples and seeds) and of the bounds' seed means.
    """
    pairs = runs_by_pair(results)
    rows, agg = [], []
    for (ds, weak), runs in pairs.items():
        for r in runs:
            res = theory.calibration_bound(r.weak, r.student, labels=r.labels, n_bins=n_bins)
            rows.append(
                dict(
                    dataset=ds,
                    weak=weak,
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
        boot = draws["boots"][ds]
        dw, dsw = draws["draws"][ds, weak, "weak"], draws["draws"][ds, weak, "student"]
        row: dict[str, Any] = dict(dataset=ds, weak=weak, pair=f"{ds}\n{weak}")
        for name in ("smooth_ce", "ece"):
            iv = interval(boot, dsw[name][0] - dw[name][0], dsw[name][1] - dw[name][1])
            key = "smce_change" if name == "smooth_ce" else "ece_change"
            row.update({key: iv.point, f"{key}_lo": iv.lo, f"{key}_hi": iv.hi})
        sub = pd.DataFrame(rows[-len(runs) :])
        for c in ("bound_abs", "bound_eps", "eps", "used"):
            row[c] = float(sub[c].mean())
        row["lower_abs"], row["upper_abs"] = -row["bound_abs"], row["bound_abs"]
        row["all_hold"] = bool(sub.holds.all())
        agg.append(row)
    return pd.DataFrame(rows), pd.DataFrame(agg)


def pooled_reliability(results: Sequence[Any], role: str, n_bins: int = 10) -> metrics.Reliability:
    """Top-label reliability curve of ``role`` (weak / student / ceiling) with every seed's test
    predictions pooled (equal-width bins; the empty ones are skipped by the plot)."""
    p = np.concatenate([np.asarray(getattr(r, role), dtype=np.float64) for r in results])
    y = np.concatenate([np.asarray(r.labels) for r in results])
    return metrics.reliability(torch.from_numpy(p), torch.from_numpy(y), n_bins=n_bins)


def temperature_label(t: float | str) -> str:
    """``"T = 0.5"`` for a number, ``"fitted T"`` for ``"fit"``."""
    return "fitted T" if t == "fit" else f"T = {float(t):g}"


def interval_note(n_seeds: int) -> str:
    """What the part-2 intervals hold, for the chapter's text (one seed or several)."""
    if n_seeds == 1:
        return (
            "hold the test set's sampling error but not the training noise (one training "
            "seed), so read them as a lower bound on the uncertainty"
        )
    return f"resample the test examples and the {n_seeds} training seeds together"


def temperature_sweep(
    runs_by_temperature: Mapping[float | str, Sequence[Any]],
    n_resamples: int = 100,
    *,
    seed: int = 0,
) -> pd.DataFrame:
    """Teacher and student metrics per teacher temperature (one dataset and teacher model).

    ``runs_by_temperature`` maps a temperature (or ``"fit"``) to its runs, one per seed, on one
    test set. One row per (temperature, role, metric) with value and interval, plus the paired
    change student - teacher (role ``"change"``) and, for ``"fit"``, the fitted temperatures'
    mean in ``t_fitted``.
    """
    first = next(iter(runs_by_temperature.values()))
    boot = make_bootstrap(len(first[0].labels), len(first), n_resamples, seed=seed)
    rows = []
    for t, runs in runs_by_temperature.items():
        runs = sorted(runs, key=lambda r: r.config.seed)
        d = {
            role: metric_draws(_stack(runs, role), runs[0].labels, boot)
            for role in ("weak", "student")
        }
        t_num = np.nan if t == "fit" else float(t)
        for role in ("weak", "student", "change"):
            for name in CALIBRATION_METRICS:
                if role == "change":
                    point = d["student"][name][0] - d["weak"][name][0]
                    dr = d["student"][name][1] - d["weak"][name][1]
                else:
                    point, dr = d[role][name]
                iv = interval(boot, point, dr)
                rows.append(
                    dict(
                        temperature=temperature_label(t),
                        t=t_num,
                        role=role,
                        metric=name,
                        value=iv.point,
                        lo=iv.lo,
                        hi=iv.hi,
                    )
                )
    return pd.DataFrame(rows)


def random_calibration_check(
    n_instances: int, n_points: int = 200, *, seed: int = 0, n_bins: int = 15
) -> pd.DataFrame:
    """Theorem 2 on random binary instances, against ``F*`` and against sampled labels.

    Each instance: ``F*`` uniform on [0, 1] bent by a random power, a teacher that is a noisy,
    randomly tempered copy of ``F*`` (so its miscalibration varies), a student that is a noisy copy
    of the teacher. One row per instance and truth (``"f_star"`` or ``"labels"``) with both smCEs,
    both ECEs, the bound's sides, ``holds`` and ``ece_escapes`` (|ECE change| > 2 E|p_sw - p_w|).
    """
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n_instances):
        f = np.clip(rng.uniform(size=n_points) ** rng.uniform(0.3, 3.0), 1e-4, 1 - 1e-4)
        logit = np.log(f) - np.log1p(-f)
        w_logit = (logit + rng.normal(0, rng.uniform(0.05, 2.0), n_points)) / rng.uniform(0.3, 3)
        s_logit = w_logit + rng.normal(0, 10 ** rng.uniform(-3, 0.5), n_points)
        weak = torch.from_numpy(1 / (1 + np.exp(-w_logit)))
        student = torch.from_numpy(1 / (1 + np.exp(-s_logit)))
        labels = torch.from_numpy((rng.uniform(size=n_points) < f).astype(np.int64))
        f_star = torch.from_numpy(f)
        for source, truth in (("f_star", {"f_star": f_star}), ("labels", {"labels": labels})):
            r = theory.calibration_bound(weak, student, n_bins=n_bins, **truth)
            rows.append(
                dict(
                    instance=i,
                    truth=source,
                    smce_weak=r.smce_weak,
                    smce_student=r.smce_student,
                    diff=r.diff,
                    bound_abs=r.bound_abs,
                    bound_eps=r.bound_eps,
                    ece_weak=r.ece_weak,
                    ece_student=r.ece_student,
                    ece_diff=abs(r.ece_student - r.ece_weak),
                    holds=r.holds,
                    ece_escapes=abs(r.ece_student - r.ece_weak) > r.bound_abs,
                )
            )
    return pd.DataFrame(rows)


def random_multiclass_check(
    n_instances: int, n_points: int = 30, ks: Sequence[int] = (2, 3, 4, 5), *, seed: int = 0
) -> pd.DataFrame:
    """The multi-class Theorem 2 (exact LP smCE) on small random instances against ``F*``.

    ``F*`` Dirichlet rows, a teacher a noisy copy of ``F*`` and a student a noisy copy of the
    teacher (:mod:`w2s_utils.theory.instances`). One row per instance: ``K``, both smCEs, the
    change, the sides ``bound_tv = 6 E TV`` and ``bound_eps = 3 sqrt(2 eps)``, ``holds``.
    """

    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n_instances):
        k = int(ks[i % len(ks)])
        s = int(rng.integers(1 << 30))
        f_star = instances.random_simplex(n_points, k, concentration=1.0, seed=s)
        weak = instances.weak_predictions(f_star, noise=float(rng.uniform(0.2, 2.0)), seed=s + 1)
        student = instances.weak_predictions(weak, noise=float(rng.uniform(0.05, 1.5)), seed=s + 2)
        r = theory.multiclass_calibration_bound(weak, student, f_star=f_star, tol=1e-7)
        rows.append(
            dict(
                instance=i,
                K=k,
                smce_weak=r.smce_weak,
                smce_student=r.smce_student,
                diff=r.diff,
                bound_tv=r.bound_tv,
                bound_eps=r.bound_eps,
                holds=r.holds,
            )
        )
    return pd.DataFrame(rows)


def fitted_temperature(base: Any, fitted: Any) -> float:
    """The temperature a ``weak_temperature="fit"`` run applied, read off its teacher's labels.

    For a binary teacher the tempered log-odds are the original ones divided by ``T``, so ``T``
    is their ratio on the student's training texts (median over examples with non-negligible
    log-odds; the ratio is the same on every example up to rounding). ``base`` is the ``T = 1``
    run of the same dataset, teacher and seed.
    """
    a = np.asarray(base.weak_labels_train, dtype=np.float64)
    b = np.asarray(fitted.weak_labels_train, dtype=np.float64)
    la = np.log(a[:, 1]) - np.log(a[:, 0])
    lb = np.log(b[:, 1]) - np.log(b[:, 0])
    keep = np.abs(lb) > 1e-3
    if not keep.any():
        raise ValueError("fitted_temperature: the fitted teacher's log-odds are all ~0")
    return float(np.median(la[keep] / lb[keep]))


def paired_difference(
    runs_a: Sequence[Any],
    runs_b: Sequence[Any],
    role: str,
    metric: str,
    n_resamples: int = 100,
    *,
    seed: int = 0,
) -> metrics.Interval:
    """``metric(role of runs_a) - metric(role of runs_b)`` with a paired interval.

    The two lists hold runs of the same seeds on the same test split (e.g. the students of a
    calibrated and of an untempered teacher); both are evaluated on the same test resamples and
    the same seed resamples, so the interval is that of the paired difference.
    """
    runs_a = sorted(runs_a, key=lambda r: r.config.seed)
    runs_b = sorted(runs_b, key=lambda r: r.config.seed)
    if [r.config.seed for r in runs_a] != [r.config.seed for r in runs_b]:
        raise ValueError("paired_difference: runs_a and runs_b must hold the same seeds")
    boot = make_bootstrap(len(runs_a[0].labels), len(runs_a), n_resamples, seed=seed)
    da = metric_draws(_stack(runs_a, role), runs_a[0].labels, boot, [metric])[metric]
    db = metric_draws(_stack(runs_b, role), runs_b[0].labels, boot, [metric])[metric]
    return interval(boot, da[0] - db[0], da[1] - db[1])
