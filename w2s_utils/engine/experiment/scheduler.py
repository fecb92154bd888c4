"""The job scheduler: trainings whose outputs are cache entries, trained one at a time or stacked.

A :class:`Job` is one training (a weak model, a ceiling or a student) whose arrays are one cache
entry. :func:`run_jobs` reloads the verified entries, trains the misses (jobs with one key, such
as a ceiling several teachers share, once) and stores them; :func:`train_jobs` trains misses one
at a time (``trainer="loop"``) or, with ``"stacked"``, up to ``max_stack`` jobs of one
architecture with equal settings up to the seed and equal numbers of examples in one
:func:`w2s_utils.engine.batched.train_stacked` program.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from w2s_utils.engine import cache
from w2s_utils.engine.batched import train_stacked
from w2s_utils.engine.experiment.keys import stacks
from w2s_utils.engine.models import Classifier, get_model, trains_everything
from w2s_utils.engine.train import TrainSettings

__all__ = ["Job", "TRAIN_SECONDS", "build_model", "run_jobs", "train_jobs"]

#: The array of every trained entry that holds the wall seconds its training took (training and
#: predicting; a stacked entry's share of its stack), so that a warm build can still report
#: what a chapter costs on an empty cache.
TRAIN_SECONDS = "train_seconds"


def build_model(name: str, mode: str, trainable_layers: int, n_classes: int) -> Classifier:
    """A fresh classifier over ``n_classes`` classes (``mode``/``trainable_layers`` only where
    the model has a trunk)."""
    if trains_everything(name):
        return get_model(name, n_classes)
    return get_model(name, n_classes, mode=mode, trainable_layers=trainable_layers)


@dataclass
class Job:
    """One training whose outputs are one cache entry (a weak model, a ceiling or a student).

    ``model`` is ``(name, mode, trainable_layers, n_classes)``; ``val``/``test`` are
    ``(texts, labels)`` pairs or ``None``; ``finish(model, history)`` gives the arrays to store.
    """

    key: dict[str, Any]
    kind: str
    what: str
    model: tuple[str, str, int, int]
    settings: TrainSettings
    texts: Sequence[str]
    targets: Any
    val: tuple[Sequence[str], Any] | None
    test: tuple[Sequence[str], Any] | None
    finish: Callable[[Any, pd.DataFrame], dict[str, np.ndarray]]

    def stack_group(self) -> tuple[Any, ...]:
        """Jobs with equal groups may train together: one architecture, settings equal up to
        the seed, the same number of examples."""
        plain = replace(self.settings, seed=0, progress=False)
        return (self.kind, self.model, plain, len(self.texts))

    def train_alone(self) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        t0 = time.perf_counter()
        model = build_model(*self.model)
        hist = model.fit(self.texts, self.targets, self.settings, val=self.val, test=self.curve)
        arrays = self.finish(model, hist)
        arrays[TRAIN_SECONDS] = np.array(time.perf_counter() - t0)
        return arrays, {"what": self.what}

    @property
    def curve(self) -> tuple[Sequence[str], Any] | None:
        """The test set to record along training (``None`` when the settings say not to)."""
        return self.test if self.settings.eval_test else None


def train_jobs(
    jobs: list[Job], trainer: str, max_stack: int, progress: bool = False
) -> list[dict[str, np.ndarray]]:
    """Train ``jobs`` (all cache misses) and store each one's arrays; stacked where allowed."""
    out: list[dict[str, np.ndarray] | None] = [None] * len(jobs)
    groups: dict[Any, list[int]] = {}
    for i, job in enumerate(jobs):
        g = job.stack_group() if stacks(job.model[0], trainer) else ("alone", i)
        groups.setdefault(g, []).append(i)
    chunks = [m[at : at + max_stack] for m in groups.values() for at in range(0, len(m), max_stack)]
    what = jobs[0].what if jobs else ""
    for chunk in tqdm(chunks, desc=f"train: {what}", disable=not progress, leave=False):
        if not stacks(jobs[chunk[0]].model[0], trainer):
            (i,) = chunk
            arrays, _ = cache.cached_arrays(
                jobs[i].key, jobs[i].kind, jobs[i].train_alone, refresh=True
            )
            out[i] = arrays
            continue
        t0 = time.perf_counter()
        models = [build_model(*jobs[i].model) for i in chunk]
        hists = train_stacked(
            models,
            [jobs[i].texts for i in chunk],
            [jobs[i].targets for i in chunk],
            [jobs[i].settings for i in chunk],
            val=[jobs[i].val for i in chunk],
            test=[jobs[i].curve for i in chunk],
        )
        finished = [jobs[i].finish(m, h) for i, m, h in zip(chunk, models, hists, strict=True)]
        share = (time.perf_counter() - t0) / len(chunk)
        for i, arrays in zip(chunk, finished, strict=True):
            arrays[TRAIN_SECONDS] = np.array(share)
            meta = {"what": jobs[i].what, "stacked_with": len(chunk)}
            out[i], _ = cache.cached_arrays(
                jobs[i].key, jobs[i].kind, lambda a=arrays, m=meta: (a, m), refresh=True
            )
    return out  # type: ignore[return-value]


def run_jobs(
    jobs: list[Job], trainer: str, refresh: bool, max_stack: int, progress: bool = False
) -> list[dict[str, np.ndarray]]:
    """Arrays of every job: verified cache hits reloaded, the misses trained (stacked where
    ``trainer`` allows), jobs with one key (a ceiling several weak models share) done once."""
    by_path: dict[Any, int] = {}
    unique: list[Job] = []
    where = []
    for job in jobs:
        path = cache.cache_path(job.key, job.kind)
        if path not in by_path:
            by_path[path] = len(unique)
            unique.append(job)
        where.append(by_path[path])
    arrays: list[dict[str, np.ndarray] | None] = [None] * len(unique)
    misses = []
    for u, job in enumerate(unique):
        # a corrupt entry is reported and counts as a miss (retrained with the others)
        arrays[u] = None if refresh else cache.lookup(job.key, job.kind)
        if arrays[u] is None:
            misses.append(u)
    trained = train_jobs([unique[u] for u in misses], trainer, max_stack, progress)
    for u, a in zip(misses, trained, strict=True):
        arrays[u] = a
    return [arrays[w] for w in where]  # type: ignore[misc]
