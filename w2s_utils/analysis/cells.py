"""A grid cell's runs, stacked by seed: the one place where the runs of several seeds are pooled.

Every run of a cell (the same dataset, teacher, ... and a different training seed) holds its test
arrays in one canonical order: the engine's test split is sorted by example id for every seed
(:func:`w2s_utils.engine.data.make_splits`). :func:`stack` *checks* that (identical ids and
labels, position by position) and raises otherwise; it never re-aligns. Pooling runs whose test
examples are in different orders would score one seed's predictions against another seed's labels
(what chapter 3 once did, silently), so a mismatch is an error that says what to do.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from w2s_utils import metrics
from w2s_utils._validate import check_probs

__all__ = ["ROLES", "Cell", "check_same_test_examples", "stack"]

#: The three predictors of a run, in reading order (attributes of a result).
ROLES = ("weak", "student", "ceiling")


@dataclass(frozen=True)
class Cell:
    """The runs of one cell, their test arrays stacked by seed (seeds in increasing order).

    ``key`` holds the values of the grouping attributes ``by`` (config fields); ``runs`` the
    results themselves; ``ids`` and ``labels`` ``[N]`` the test examples every run shares, in
    their one order; ``probs[role]`` ``[S, N, K]`` (float64) the predictions of ``weak``,
    ``student`` and ``ceiling``; ``values`` the per-example quantities of
    :func:`w2s_utils.metrics.per_example` (against the labels), each ``[S, N]``.
    """

    key: tuple
    by: tuple[str, ...]
    runs: tuple[Any, ...]
    seeds: tuple[int, ...]
    ids: tuple[str, ...]
    labels: np.ndarray
    probs: dict[str, np.ndarray] = field(repr=False)
    values: dict[str, np.ndarray] = field(repr=False)

    @property
    def n_seeds(self) -> int:
        return len(self.seeds)

    @property
    def n_test(self) -> int:
        return len(self.ids)

    @property
    def labels_by_seed(self) -> np.ndarray:
        """The labels repeated for every seed, ``[S, N]`` (a read-only view)."""
        return np.broadcast_to(self.labels, (self.n_seeds, self.n_test))

    def row(self) -> dict[str, Any]:
        """The cell's key as ``{attribute: value}``, with ``n_seeds`` and ``n_test``."""
        row = dict(zip(self.by, self.key, strict=True))
        return {**row, "n_seeds": self.n_seeds, "n_test": self.n_test}

    def select(self, seeds: Iterable[int]) -> Cell:
        """The same cell restricted to ``seeds`` (each must be one of :attr:`seeds`)."""
        seeds = sorted(set(seeds))
        missing = [s for s in seeds if s not in self.seeds]
        if missing or not seeds:
            raise ValueError(
                f"seeds: cell {self.key} has seeds {list(self.seeds)}, asked for {seeds}; pass a "
                "non-empty subset of the cell's seeds"
            )
        pos = [self.seeds.index(s) for s in seeds]
        return Cell(
            key=self.key,
            by=self.by,
            runs=tuple(self.runs[i] for i in pos),
            seeds=tuple(seeds),
            ids=self.ids,
            labels=self.labels,
            probs={k: v[pos] for k, v in self.probs.items()},
            values={k: v[pos] for k, v in self.values.items()},
        )


def _describe(run: Any) -> str:
    seed = getattr(getattr(run, "config", None), "seed", "?")
    return f"seed {seed}"


def check_same_test_examples(runs: Sequence[Any], what: str = "results") -> None:
    """Raise ``ValueError`` unless every run holds the first run's test ids and labels, in the
    same order (position by position).

    The message says which runs differ and how: other test examples (a different preset, sizes
    or dataset), the same examples in another order (results saved before the test split was
    sorted by id: re-run them), or other labels for the same ids. Nothing is re-aligned.
    """
    if not runs:
        raise ValueError(f"{what}: is empty; pass the runs of a grid (engine.experiment.run_grid)")
    ref = runs[0]
    ids = list(ref.ids)
    labels = np.asarray(ref.labels)
    for r in runs[1:]:
        other = list(r.ids)
        if other != ids:
            if sorted(other) != sorted(ids):
                raise ValueError(
                    f"{what}: {_describe(r)} and {_describe(ref)} were tested on different "
                    f"examples ({len(other)} and {len(ids)} test ids, not the same set); pool only "
                    "runs of one test split (same dataset, preset and sizes)"
                )
            i = next(k for k, (a, b) in enumerate(zip(other, ids, strict=True)) if a != b)
            raise ValueError(
                f"{what}: {_describe(r)} holds the test examples of {_describe(ref)} in another "
                f"order (position {i}: id {other[i]!r} against {ids[i]!r}); seeds are pooled by "
                "position and never re-aligned. Results made before the test split was sorted by "
                "id (engine version < 3) must be re-run: clear their cache entries"
            )
        other_labels = np.asarray(r.labels)
        if other_labels.shape != labels.shape or not np.array_equal(other_labels, labels):
            raise ValueError(
                f"{what}: {_describe(r)} has other labels than {_describe(ref)} for the same test "
                "ids; the runs do not share one test split (same dataset and preset?)"
            )


def _probs(run: Any, role: str, n: int) -> np.ndarray:
    p = np.asarray(check_probs(getattr(run, role), role).detach().cpu(), dtype=np.float64)
    if p.ndim == 1:
        p = np.stack([1.0 - p, p], axis=-1)
    if p.ndim != 2 or p.shape[0] != n:
        raise ValueError(
            f"{role}: {_describe(run)} has predictions of shape {p.shape}; expected [N, K] with "
            f"N = {n} (one row per test id)"
        )
    return p


def _key(run: Any, by: Sequence[str]) -> tuple:
    try:
        return tuple(getattr(run.config, b) for b in by)
    except AttributeError as err:
        raise ValueError(
            f"by: a result's config has no attribute {err.name!r}; group by config fields such as "
            "'dataset', 'weak', 'loss'"
        ) from None


def stack(
    results: Iterable[Any],
    by: Sequence[str] = ("dataset", "weak"),
    *,
    roles: Sequence[str] = ROLES,
) -> dict[tuple, Cell]:
    """Group ``results`` by the config fields ``by`` and stack each group's seeds.

    ``results`` are runs with ``config`` (holding ``seed`` and the ``by`` fields), ``ids``,
    ``labels`` and the predictions ``roles`` (``[N, K]``; default weak, student, ceiling), such as
    :class:`~w2s_utils.engine.experiment.ExperimentResult` or a trajectory's
    :class:`~w2s_utils.engine.trajectories.TrajectoryPoint` (``roles`` must hold ``weak`` and
    ``student``; ``ceiling`` is optional). Returns ``{key: Cell}`` in the order
    the keys first appear, each cell's runs sorted by seed.

    Raises ``ValueError`` when a group holds two runs of one seed (group by a finer key), or
    when its runs do not hold identical test ids and labels in the same order
    (:func:`check_same_test_examples`): the per-example arrays of a cell are pooled by position.
    """
    by, roles = tuple(by), tuple(roles)
    if not {"weak", "student"} <= set(roles) or not set(roles) <= set(ROLES):
        raise ValueError(
            f"roles: must hold 'weak' and 'student' (and may hold 'ceiling'), got {roles}"
        )
    groups: dict[tuple, list[Any]] = {}
    for r in results:
        groups.setdefault(_key(r, by), []).append(r)
    if not groups:
        raise ValueError("results: is empty; pass the runs of a grid (engine.experiment.run_grid)")
    cells = {}
    for key, runs in groups.items():
        runs = sorted(runs, key=lambda r: r.config.seed)
        seeds = [r.config.seed for r in runs]
        dup = sorted({s for s in seeds if seeds.count(s) > 1})
        if dup:
            raise ValueError(
                f"results: cell {dict(zip(by, key, strict=True))} holds several runs of seed(s) "
                f"{dup}; group by a finer key (by=...) so that a cell holds one run per seed"
            )
        check_same_test_examples(runs, f"results (cell {dict(zip(by, key, strict=True))})")
        n = len(runs[0].ids)
        labels = np.asarray(runs[0].labels, dtype=np.int64)
        probs = {role: np.stack([_probs(r, role, n) for r in runs]) for role in roles}
        ceiling = probs.get("ceiling", [None] * len(runs))
        per = [
            metrics.per_example(w, s, c, labels=labels)
            for w, s, c in zip(probs["weak"], probs["student"], ceiling, strict=True)
        ]
        values = {q: np.stack([v[q] for v in per]) for q in per[0]}
        cells[key] = Cell(
            key=key,
            by=by,
            runs=tuple(runs),
            seeds=tuple(seeds),
            ids=tuple(runs[0].ids),
            labels=labels,
            probs=probs,
            values=values,
        )
    return cells
