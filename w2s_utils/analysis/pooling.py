"""One paired difference over a whole grid: every cell, each test example counted once (chapter 6:
reverse-KL minus forward-KL students over all datasets and teachers).

:func:`w2s_utils.analysis.paired_differences` gives one interval per cell. To say something about
the grid as a whole, the cells' per-example differences are pooled: cells that share a test set
(the same dataset: the engine's test split does not depend on the teacher or the seed) are first
averaged example by example, so that an example enters once, not once per cell (pooling them
side by side would count the same test example several times and understate the test-sampling
error); test sets of different datasets are then put side by side. The seeds stay paired by
position. The interval is :func:`w2s_utils.metrics.seeds_and_test_interval` of the pooled
``[n_seeds, N_total]`` array: the mean over cells, weighting each dataset by its test size.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np

from w2s_utils import metrics
from w2s_utils._validate import check_number
from w2s_utils.analysis.cells import check_same_test_examples, stack

__all__ = ["pooled_difference"]


def pooled_difference(
    results_a: Iterable[Any],
    results_b: Iterable[Any],
    quantities: Mapping[str, str],
    by: Sequence[str],
    *,
    shared_by: str = "dataset",
    level: float = 0.95,
) -> dict[str, metrics.SeedsTestInterval]:
    """For each ``name: quantity`` of ``quantities`` (a key of
    :func:`w2s_utils.metrics.per_example`, as in :func:`~w2s_utils.analysis.paired_differences`),
    the per-example quantity of ``results_a`` minus that of ``results_b``, paired by cell of
    ``by``, seed and test example, averaged over every cell found in both, with its interval over
    seeds and test examples.

    ``shared_by`` names the field of ``by`` whose cells share one test set (default
    ``"dataset"``); the cells of one value are averaged example by example before the test sets
    of different values are put side by side (see the module docstring). Every cell must hold the
    same seeds on both sides (else ``ValueError``: pair only complete cells). Returns ``{name:
    SeedsTestInterval}`` of the pooled arrays (:class:`w2s_utils.metrics.SeedsTestInterval`).
    """
    level = check_number(level, "level", lo=0.0, hi=1.0, lo_open=True, hi_open=True)
    by = tuple(by)
    if shared_by not in by:
        raise ValueError(f"shared_by: {shared_by!r} must be one of the grouping fields {by}")
    if not isinstance(quantities, Mapping) or not quantities:
        raise ValueError("quantities: pass a non-empty {name: per-example key} mapping")
    unknown = [q for q in quantities.values() if q not in metrics.PER_EXAMPLE]
    if unknown:
        raise ValueError(f"quantities: unknown keys {unknown}; use keys of metrics.PER_EXAMPLE")
    cells_a, cells_b = stack(results_a, by), stack(results_b, by)
    common = [k for k in cells_a if k in cells_b]
    if not common:
        raise ValueError("results_a, results_b: no cell of `by` is found on both sides")
    pos = by.index(shared_by)
    groups: dict[Any, list[tuple[Any, Any]]] = {}
    first: dict[Any, Any] = {}
    seeds = None
    for key in common:
        a, b = cells_a[key], cells_b[key]
        if a.seeds != b.seeds or (seeds is not None and a.seeds != seeds):
            raise ValueError(
                f"results_a, results_b: cell {key} holds seeds {list(a.seeds)} and "
                f"{list(b.seeds)}; every cell must hold the same seeds on both sides"
            )
        seeds = a.seeds
        check_same_test_examples([a.runs[0], b.runs[0]], f"results_a, results_b (cell {key})")
        ref = first.setdefault(key[pos], a.runs[0])
        check_same_test_examples([ref, a.runs[0]], f"results_a ({shared_by} = {key[pos]!r})")
        groups.setdefault(key[pos], []).append((a, b))
    out = {}
    for name, q in quantities.items():
        per_group = [
            np.mean([a.values[q] - b.values[q] for a, b in g], axis=0) for g in groups.values()
        ]
        pooled = np.concatenate(per_group, axis=1)
        out[name] = metrics.seeds_and_test_interval(pooled, level=level)
    return out
