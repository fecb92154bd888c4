"""Weak-to-strong runs as tables with honest intervals (chapters 1, 2 and the later ones).

The test split is the same for every seed of a grid, so an interval across seeds holds only the
training noise. :func:`paired_table` stacks the per-example values of a group's seeds
(``[n_seeds, N_test]``) and reports, for every quantity, both the Student-t interval across seeds
(``<q>_seed_lo``/``<q>_seed_hi``) and the interval of
:func:`w2s_utils.metrics.seeds_and_test_interval` (``<q>_lo``/``<q>_hi``), which resamples the
test examples (paired across predictors and seeds) and the seeds together. The chapters call a
difference "significant" only where the second interval excludes zero.

Quantities (per test example ``i`` of one run; the table holds their means):

- ``acc_weak``, ``acc_student``, ``acc_ceiling``: 0/1 correctness;
- ``acc_gain`` (student − weak) and ``acc_gap`` (ceiling − weak);
- ``pgr``: ``mean(acc_gain) / mean(acc_gap)`` (the PGR of the seed-averaged accuracies), only
  where the gap is larger than :data:`w2s_utils.metrics.PGR_MIN_GAP` (else NaN);
- ``err_change``: ``log weak[y] − log student[y]`` averaged, the test cross-entropy difference
  CE(student) − CE(weak) = Err(student) − Err(weak) + sampling error;
- ``eps``: KL(weak ‖ student) and ``interaction`` = ``err_change − eps`` (Lemma 1 on the sample).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
import torch

from w2s_utils import metrics

__all__ = [
    "QUANTITIES",
    "per_example",
    "paired_table",
    "per_run_table",
    "verdict",
    "fmt_interval",
    "names_where",
]

#: The per-example quantities of :func:`per_example`, in table order.
QUANTITIES = (
    "acc_weak",
    "acc_student",
    "acc_ceiling",
    "acc_gain",
    "acc_gap",
    "err_change",
    "eps",
    "interaction",
)


def _probs(a: np.ndarray) -> torch.Tensor:
    return torch.as_tensor(np.array(a, dtype=np.float64))


def per_example(result: Any) -> dict[str, np.ndarray]:
    """Per-test-example values of :data:`QUANTITIES` for one run (an ``ExperimentResult``)."""
    y = torch.as_tensor(np.array(result.labels, dtype=np.int64))
    weak, student, ceiling = _probs(result.weak), _probs(result.student), _probs(result.ceiling)
    correct = {
        name: (p.argmax(-1) == y).double().numpy()
        for name, p in (("weak", weak), ("student", student), ("ceiling", ceiling))
    }
    loss_weak = metrics.log_loss_per_example(weak, y).numpy()
    loss_student = metrics.log_loss_per_example(student, y).numpy()
    eps = metrics.kl(weak, student).numpy()
    err_change = loss_student - loss_weak
    return {
        "acc_weak": correct["weak"],
        "acc_student": correct["student"],
        "acc_ceiling": correct["ceiling"],
        "acc_gain": correct["student"] - correct["weak"],
        "acc_gap": correct["ceiling"] - correct["weak"],
        "err_change": err_change,
        "eps": eps,
        "interaction": err_change - eps,
    }


def _group_key(result: Any, by: Sequence[str]) -> tuple:
    return tuple(getattr(result.config, b) for b in by)


def per_run_table(results: Sequence[Any]) -> pd.DataFrame:
    """One row per run: dataset, weak, seed and the test means of :data:`QUANTITIES`."""
    rows = []
    for r in results:
        vals = per_example(r)
        rows.append(
            {
                "dataset": r.config.dataset,
                "weak": r.config.weak,
                "seed": r.config.seed,
                **{q: float(v.mean()) for q, v in vals.items()},
            }
        )
    return pd.DataFrame(rows)


def paired_table(
    results: Sequence[Any],
    by: Sequence[str] = ("dataset", "weak"),
    *,
    n_resamples: int = 2000,
    level: float = 0.95,
    seed: int = 0,
) -> pd.DataFrame:
    """One row per group of runs (default: dataset x teacher), seeds stacked.

    For each quantity ``q`` of :data:`QUANTITIES` and ``pgr``: the mean ``q``, the interval over
    test examples and seeds ``q_lo``/``q_hi`` and the seed-only Student-t interval
    ``q_seed_lo``/``q_seed_hi`` (NaN with one seed). Also ``n_seeds`` and ``n_test``. All runs of a
    group must share one test split (the same ids, in any order: the examples are aligned by id so
    that the bootstrap resamples the same example for every seed), else ``ValueError``.
    """
    if not results:
        raise ValueError("results: is empty; pass the runs of a grid (engine.experiment.run_grid)")
    groups: dict[tuple, list[Any]] = {}
    for r in results:
        groups.setdefault(_group_key(r, by), []).append(r)
    rows = []
    for key, runs in groups.items():
        ids = sorted(runs[0].ids)
        if any(sorted(r.ids) != ids for r in runs[1:]):
            raise ValueError(
                f"results: the runs of group {key} were tested on different examples; paired "
                "intervals need one test split (same preset and sizes)"
            )
        # the seeds see the same test examples in different orders: align them by id
        orders = [np.argsort(np.asarray(r.ids), kind="stable") for r in runs]
        vals = [per_example(r) for r in runs]
        stacked = {
            q: np.stack([v[q][o] for v, o in zip(vals, orders, strict=True)]) for q in QUANTITIES
        }
        row: dict[str, Any] = dict(zip(by, key, strict=True))
        row["n_seeds"], row["n_test"] = len(runs), len(ids)
        for q in QUANTITIES:
            iv = metrics.seeds_and_test_interval(
                stacked[q], level=level
            )
            row[q], row[f"{q}_lo"], row[f"{q}_hi"] = iv.point, iv.lo, iv.hi
            si = metrics.seed_interval(stacked[q].mean(axis=1), level)
            row[f"{q}_seed_lo"], row[f"{q}_seed_hi"] = si.lo, si.hi
        row.update(_pgr(stacked, n_resamples, level, seed))
        rows.append(row)
    return pd.DataFrame(rows)


def _pgr(stacked: dict[str, np.ndarray], n_resamples: int, level: float, seed: int) -> dict:
    gain, gap = stacked["acc_gain"], stacked["acc_gap"]
    out = dict.fromkeys(("pgr", "pgr_lo", "pgr_hi", "pgr_seed_lo", "pgr_seed_hi"), math.nan)
    if gap.mean() <= metrics.PGR_MIN_GAP:
        return out
    try:
        iv = metrics.seeds_and_test_interval(
            gain, gap, level=level
        )
    except ValueError:  # the gap vanishes in some resamples: PGR is undefined there
        out["pgr"] = float(gain.mean() / gap.mean())
        return out
    out["pgr"], out["pgr_lo"], out["pgr_hi"] = iv.point, iv.lo, iv.hi
    seed_gap = gap.mean(1)
    per_seed = gain.mean(1) / np.where(seed_gap > metrics.PGR_MIN_GAP, seed_gap, np.nan)
    if np.all(np.isfinite(per_seed)) and per_seed.size > 1:
        si = metrics.seed_interval(per_seed, level)
        out["pgr_seed_lo"], out["pgr_seed_hi"] = si.lo, si.hi
    return out


def verdict(lo: float, hi: float, *, above: str = "higher than", below: str = "lower than") -> str:
    """How a 95% interval of a difference reads: above / below / not distinguishable."""
    if not (np.isfinite(lo) and np.isfinite(hi)):
        return "undetermined (no interval) against"
    if lo > 0:
        return above
    if hi < 0:
        return below
    return "not distinguishable from"


def fmt_interval(point: float, lo: float, hi: float, digits: int = 3, signed: bool = False) -> str:
    """``0.012 [-0.004, 0.028]`` (``n/a`` for NaN; no brackets without an interval)."""
    if not np.isfinite(point):
        return "n/a"
    f = f"{{:{'+' if signed else ''}.{digits}f}}"
    if not (np.isfinite(lo) and np.isfinite(hi)):
        return f.format(point)
    return f"{f.format(point)} [{f.format(lo)}, {f.format(hi)}]"


def names_where(table: pd.DataFrame, mask: Any, *, empty: str = "none") -> str:
    """``"bow on sarcasm, minilm-l1 on rotten_tomatoes"`` for the rows where ``mask`` holds."""
    rows = table[np.asarray(mask, dtype=bool)]
    if rows.empty:
        return empty
    return ", ".join(f"{w} on {d}" for d, w in zip(rows["dataset"], rows["weak"], strict=True))
