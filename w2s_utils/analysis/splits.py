"""Means of per-example quantities on several splits of a run, with the interval each split allows
(chapter 6: "gain >= disagreement" on held-out inputs and on the student's own training inputs).

A split's inputs are either **shared** by every seed of a cell (the test split: the engine sorts it
by id and keeps it for every seed, which :func:`~w2s_utils.analysis.cells.stack` checks) or
**drawn by the seed** (a seed's training or validation inputs). Shared inputs get
:func:`w2s_utils.metrics.seeds_and_test_interval` (training noise over seeds plus the sampling
error of the one shared set); inputs drawn by the seed get a Student-t interval over the seed means
(:func:`w2s_utils.metrics.seed_interval`), whose spread already holds both kinds of noise.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from w2s_utils import metrics
from w2s_utils._validate import check_number
from w2s_utils.analysis.cells import check_same_test_examples
from w2s_utils.analysis.tables import put_interval

__all__ = ["split_table"]


def split_table(
    results: Iterable[Any],
    per_example: Callable[[Any, str], Mapping[str, Any]],
    quantities: Sequence[str],
    by: Sequence[str],
    *,
    splits: Sequence[str] = ("test", "train"),
    shared: Sequence[str] = ("test",),
    level: float = 0.95,
) -> pd.DataFrame:
    """One row per cell of ``by`` and split: the mean of each of ``quantities`` with its interval.

    ``per_example(result, split)`` returns per-example arrays ``[N]`` (a mapping holding every name
    in ``quantities``), for example :func:`w2s_utils.engine.heads.gain_and_disagreement`. Runs
    are grouped by their config fields ``by`` and checked as
    :func:`~w2s_utils.analysis.cells.stack` checks them: one run per seed, and one test split in
    one order (:func:`~w2s_utils.analysis.cells.check_same_test_examples`; nothing re-aligned).
    On a split in ``shared`` (inputs common to every seed, in one order) the interval is
    :func:`w2s_utils.metrics.seeds_and_test_interval` over ``[n_seeds, N]``; on the other splits
    (inputs drawn by each seed, possibly of different sizes) it is
    :func:`w2s_utils.metrics.seed_interval` over the seed means. Columns: the ``by`` fields,
    ``n_seeds``, ``split``, ``n_inputs`` (per seed; the smallest when they differ) and ``q``,
    ``q_lo``, ``q_hi`` per quantity (NaN ends with one seed).
    """
    level = check_number(level, "level", lo=0.0, hi=1.0, lo_open=True, hi_open=True)
    if isinstance(quantities, str) or not quantities:
        raise ValueError("quantities: pass a non-empty list of names that per_example returns")
    if isinstance(splits, str) or not splits:
        raise ValueError("splits: pass a non-empty list of split names, e.g. ('test', 'train')")
    if not callable(per_example):
        raise ValueError(f"per_example: must be callable, got {type(per_example).__name__}")
    by = tuple(by)
    groups: dict[tuple, list[Any]] = {}
    for r in results:
        try:
            key = tuple(getattr(r.config, b) for b in by)
        except AttributeError as err:
            raise ValueError(f"by: a result's config has no field {err.name!r}") from None
        groups.setdefault(key, []).append(r)
    if not groups:
        raise ValueError("results: is empty; pass the runs of a grid")
    rows = []
    for key, runs in groups.items():
        runs = sorted(runs, key=lambda r: r.config.seed)
        seeds = [r.config.seed for r in runs]
        if len(set(seeds)) != len(seeds):
            raise ValueError(
                f"results: cell {dict(zip(by, key, strict=True))} holds several runs of one seed; "
                "group by a finer key (by=...)"
            )
        check_same_test_examples(runs, f"results (cell {dict(zip(by, key, strict=True))})")
        for split in splits:
            values = [per_example(run, split) for run in runs]
            missing = sorted({q for v in values for q in quantities if q not in v})
            if missing:
                raise ValueError(
                    f"quantities: per_example gives no {missing} on split {split!r}; it gives "
                    f"{sorted(values[0])}"
                )
            row = {**dict(zip(by, key, strict=True)), "n_seeds": len(runs)}
            row["split"] = split
            row["n_inputs"] = min(len(np.asarray(v[quantities[0]])) for v in values)
            for q in quantities:
                arrays = [np.asarray(v[q], dtype=np.float64) for v in values]
                if split in shared:
                    if len({a.shape for a in arrays}) != 1:
                        raise ValueError(
                            f"shared: split {split!r} has inputs of different sizes across seeds; "
                            "list it in shared only if every seed holds the same inputs"
                        )
                    iv = metrics.seeds_and_test_interval(np.stack(arrays), level=level)
                else:
                    iv = metrics.seed_interval(np.array([a.mean() for a in arrays]), level)
                put_interval(row, q, iv)
            rows.append(row)
    return pd.DataFrame(rows)
