"""The weak-to-strong recipe: the shared pieces (a teacher's and a ceiling's predictions), the
student, and the runs of many configs in three phases.

The shared pieces (:func:`piece_predictions`: a teacher's or a ceiling's predictions) take the
trainer of the preset, so every chapter at every preset reuses what another chapter trained: a
trajectory at the ``gpu`` preset reads the stacked teachers and ceilings chapter 1 stored.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from w2s_utils import metrics
from w2s_utils._validate import check_int
from w2s_utils.engine import cache, data
from w2s_utils.engine.experiment.config import ExperimentConfig, validate_config
from w2s_utils.engine.experiment.keys import check_trainer, piece_key, piece_model, result_key
from w2s_utils.engine.experiment.result import (
    ExperimentResult,
    history_arrays,
    result_from_arrays,
)
from w2s_utils.engine.experiment.scheduler import TRAIN_SECONDS, Job, run_jobs
from w2s_utils.engine.models import check_loadable
from w2s_utils.engine.presets import PRESETS, Preset, get_preset

__all__ = [
    "RunInputs",
    "compute_results",
    "piece_job",
    "piece_predictions",
    "prepare_inputs",
    "run_experiment",
    "run_inputs",
    "run_many",
    "student_job",
    "temper",
]

#: The weak model's prediction splits (the student trains on w2s_train, stops on val).
_WEAK_SPLITS = ("w2s_train", "val", "test")


@dataclass(frozen=True)
class RunInputs:
    """What a run reads from its dataset: the four ``splits`` (:func:`w2s_utils.engine.data.
    make_splits`), the number of classes ``n_classes`` and their ``label_names`` (the
    dataset's, else ``"0"``, ``"1"``, ...)."""

    splits: data.Splits
    n_classes: int
    label_names: tuple[str, ...]


def run_inputs(cfg: ExperimentConfig, ds: data.TextDataset | None = None) -> RunInputs:
    """Load ``cfg.dataset`` (or use ``ds``, already loaded) and cut its splits for ``cfg.sizes``
    and ``cfg.seed``. Sizes that are not multiples of the dataset's class count, or larger than
    it allows, raise ``ValueError`` naming sizes that fit (before anything trains)."""
    ds = data.load_texts(cfg.dataset, log=None) if ds is None else ds
    return RunInputs(data.make_splits(ds, cfg.sizes, cfg.seed), ds.n_classes, _class_names(ds))


def _class_names(ds: data.TextDataset) -> tuple[str, ...]:
    return tuple(ds.label_names) or tuple(str(k) for k in range(ds.n_classes))


def _val_pair(splits: data.Splits, labels: Any) -> tuple[Sequence[str], Any] | None:
    return (splits.val.texts, labels) if len(splits.val) else None


def piece_job(
    cfg: ExperimentConfig, inputs: RunInputs, role: str, *, trainer: str, progress: bool = False
) -> Job:
    """The training of a shared piece: ``role="weak"`` (the weak model on the gold labels of
    ``weak_train``; predicts ``w2s_train``, ``val``, ``test``) or ``"ceiling"`` (the strong model
    on the gold labels of ``w2s_train``; predicts ``test``)."""
    sp, k = inputs.splits, inputs.n_classes
    (name, mode, layers), settings = piece_model(cfg, role)
    train = sp.weak_train if role == "weak" else sp.w2s_train
    test = None if role == "weak" else (sp.test.texts, sp.test.labels)

    def finish(m, hist):
        out = {}
        if role == "weak":
            out["w2s_train"] = m.predict_proba(sp.w2s_train.texts)
            out["val"] = m.predict_proba(sp.val.texts) if len(sp.val) else np.zeros((0, k))
        return {**out, "test": m.predict_proba(sp.test.texts), **history_arrays("hist", hist)}

    return Job(
        key=piece_key(cfg, role, trainer),
        kind="weak_preds" if role == "weak" else "ceiling_preds",
        what="weak predictions" if role == "weak" else "strong ceiling predictions",
        model=(name, mode, layers, k),
        settings=replace(settings, progress=progress and settings.progress),
        texts=train.texts,
        targets=train.labels,
        val=_val_pair(sp, sp.val.labels),
        test=test,
        finish=finish,
    )


def temper(
    cfg: ExperimentConfig, arrays: dict[str, np.ndarray], inputs: RunInputs
) -> dict[str, np.ndarray]:
    """The weak model's probabilities with ``cfg.weak_temperature`` applied (``"fit"``: the
    temperature fitted on the gold labels of the teacher's own ``val`` split, which the student
    never sees; it is stored as ``temperature``)."""
    t = cfg.weak_temperature
    if t == 1.0:
        return arrays
    if t == "fit":
        t = metrics.fit_temperature(arrays["val"], inputs.splits.val.labels, kind="probs")
    tempered = {
        s: metrics.apply_temperature(arrays[s], float(t)).numpy()
        for s in _WEAK_SPLITS
        if len(arrays[s])
    }
    return {**arrays, **tempered, "temperature": np.array(float(t))}


def student_job(
    cfg: ExperimentConfig,
    inputs: RunInputs,
    weak: dict[str, np.ndarray],
    ceil: dict[str, np.ndarray],
    *,
    trainer: str,
    progress: bool = False,
) -> Job:
    """The student's training on the weak labels of ``w2s_train`` (soft or hard), stopping on
    the weak labels of ``val``; its entry is the whole result."""
    sp = inputs.splits
    weak_train = weak["w2s_train"]
    hard = cfg.label_type == "hard"
    ids_of_pieces = cache.pack_texts(
        [cache.config_hash(piece_key(cfg, role, trainer)) for role in ("weak", "ceiling")]
        + [cache.config_hash(result_key(cfg, trainer))]
    )

    def finish(student, hist):
        ids_blob, ids_offsets = cache.pack_texts(list(sp.test.ids))
        names_blob, names_offsets = cache.pack_texts(list(inputs.label_names))
        return {
            "labels": np.asarray(sp.test.labels, dtype=np.int64),
            "ids_blob": ids_blob,
            "ids_offsets": ids_offsets,
            "label_names_blob": names_blob,
            "label_names_offsets": names_offsets,
            "probs_weak": weak["test"],
            "probs_ceiling": ceil["test"],
            "probs_student": student.predict_proba(sp.test.texts),
            "weak_labels_train": weak_train,
            "student_probs_train": student.predict_proba(sp.w2s_train.texts),
            "train_labels": np.asarray(sp.w2s_train.labels, dtype=np.int64),
            "weak_labels_val": weak["val"],
            # the pieces this result was built from: their cache entries and training seconds
            "piece_ids_blob": ids_of_pieces[0],
            "piece_ids_offsets": ids_of_pieces[1],
            "piece_seconds": np.array(
                [float(p.get(TRAIN_SECONDS, np.nan)) for p in (weak, ceil)], dtype=np.float64
            ),
            **history_arrays("hist", hist),
            **{f"weakhist__{k[6:]}": v for k, v in weak.items() if k.startswith("hist__")},
            **{f"ceilhist__{k[6:]}": v for k, v in ceil.items() if k.startswith("hist__")},
        }

    s = cfg.student_settings
    return Job(
        key=result_key(cfg, trainer),
        kind="results",
        what="weak-to-strong result",
        model=(cfg.strong, cfg.mode, cfg.trainable_layers, inputs.n_classes),
        settings=replace(s, progress=progress and s.progress),
        texts=sp.w2s_train.texts,
        targets=weak_train.argmax(1) if hard else weak_train,
        val=_val_pair(sp, weak["val"].argmax(1) if hard else weak["val"]),
        test=(sp.test.texts, sp.test.labels),
        finish=finish,
    )


def piece_predictions(
    cfg: ExperimentConfig,
    inputs: RunInputs,
    role: str,
    *,
    trainer: str,
    refresh: bool = False,
    progress: bool = False,
) -> dict[str, np.ndarray]:
    """The predictions of the shared piece ``role`` of ``cfg``: the teacher's (``"weak"``:
    ``w2s_train``, ``val``, ``test``, tempered by ``cfg.weak_temperature`` as its student sees
    them, :func:`temper`) or the strong ceiling's (``"ceiling"``: ``test``), each ``[n, K]``,
    with the piece's history. Reloaded from the entry that the piece's key under ``trainer``
    names (pass the preset's trainer: the entry that preset's grids store, so chapters share
    teachers and ceilings at every preset), or trained (a stack of one with ``"stacked"``) and
    stored."""
    check_trainer(trainer)
    job = piece_job(cfg, inputs, role, trainer=trainer, progress=progress)
    (arrays,) = run_jobs([job], trainer, refresh, 1)
    return temper(cfg, arrays, inputs) if role == "weak" else arrays


def prepare_inputs(configs: Sequence[ExperimentConfig]) -> list[RunInputs]:
    """The :class:`RunInputs` of every config, after everything that can fail without training
    has been checked: hub models that cannot be loaded here (:func:`~w2s_utils.engine.models.
    check_loadable`, seconds), then every dataset and its splits (class count and sizes). Each
    dataset is loaded once, each (dataset, sizes, seed) split once."""
    for name in dict.fromkeys(n for c in configs for n in (c.weak, c.strong)):
        check_loadable(name)
    loaded: dict[str, data.TextDataset] = {}
    by_split: dict[tuple[Any, ...], RunInputs] = {}
    for c in configs:
        if c.dataset not in loaded:
            loaded[c.dataset] = data.load_texts(c.dataset, log=None)
        k = (c.dataset, c.sizes, c.seed)
        if k not in by_split:
            by_split[k] = run_inputs(c, loaded[c.dataset])
    return [by_split[(c.dataset, c.sizes, c.seed)] for c in configs]


def compute_results(
    configs: list[ExperimentConfig], refresh: bool, progress: bool, trainer: str, max_stack: int
) -> list[dict[str, np.ndarray]]:
    """Train (or reload the pieces of) ``configs`` and store their results, in three phases:
    weak models, ceilings, students, after :func:`prepare_inputs` (what can fail without
    training fails first)."""
    if not configs:
        return []
    pairs = list(zip(configs, prepare_inputs(configs), strict=True))
    opts = {"trainer": trainer, "progress": progress}
    weak_jobs = [piece_job(c, x, "weak", **opts) for c, x in pairs]
    weaks = run_jobs(weak_jobs, trainer, refresh, max_stack, progress)
    weaks = [temper(c, w, x) for (c, x), w in zip(pairs, weaks, strict=True)]
    ceil_jobs = [piece_job(c, x, "ceiling", **opts) for c, x in pairs]
    ceils = run_jobs(ceil_jobs, trainer, refresh, max_stack, progress)
    students = [
        student_job(c, x, w, ce, **opts) for (c, x), w, ce in zip(pairs, weaks, ceils, strict=True)
    ]
    # the results themselves are cache misses (or refreshed): train every student
    return run_jobs(students, trainer, True, max_stack, progress)


def _run_many(
    configs: list[ExperimentConfig], use_cache: bool, progress: bool, trainer: str, max_stack: int
) -> list[ExperimentResult]:
    t0 = time.perf_counter()
    refresh = not use_cache
    out: list[tuple[dict[str, np.ndarray], bool] | None] = [None] * len(configs)
    todo = []
    for i, cfg in enumerate(configs):
        # a corrupt entry is reported and counts as a miss
        arrays = None if refresh else cache.lookup(result_key(cfg, trainer), "results")
        if arrays is None:
            todo.append(i)
        else:
            out[i] = (arrays, True)
    fresh = compute_results([configs[i] for i in todo], refresh, progress, trainer, max_stack)
    for i, arrays in zip(todo, fresh, strict=True):
        out[i] = (arrays, False)
    seconds = (time.perf_counter() - t0) / max(1, len(configs))
    names: dict[str, tuple[str, ...]] = {}

    def names_of(dataset: str) -> tuple[str, ...]:  # for entries stored before label names
        if dataset not in names:
            names[dataset] = _class_names(data.load_texts(dataset, log=None))
        return names[dataset]

    return [
        result_from_arrays(cfg, arrays, seconds, cached, lambda d=cfg.dataset: names_of(d))
        for cfg, (arrays, cached) in zip(configs, out, strict=True)  # type: ignore[misc]
    ]


def run_many(
    configs: Sequence[ExperimentConfig],
    *,
    preset: str | Preset | None = None,
    use_cache: bool = True,
    progress: bool = False,
    trainer: str | None = None,
    max_stack: int | None = None,
) -> list[ExperimentResult]:
    """:func:`run_experiment` for several configs in three phases (weak models, ceilings,
    students), each phase's cache misses trained one at a time (``trainer="loop"``) or, with
    ``trainer="stacked"``, up to ``max_stack`` runs of one architecture at a time in one stacked
    program (same model and settings up to the seed, same number of examples: the seeds and
    teachers of a grid cell). Pieces shared between configs are trained once. Results come back
    in the order of ``configs``; ``seconds`` is each result's share of the call's wall time.

    ``trainer``/``max_stack`` default to those of ``preset`` (a name or a
    :class:`~w2s_utils.engine.presets.Preset` object: pass the object you built the configs
    from); without ``preset``, to those of the registered preset each config names (configs of
    presets with different trainers are run trainer by trainer), and for a name that is not
    registered to the :class:`~w2s_utils.engine.presets.Preset` defaults (``"loop"``, 16).
    """
    configs = list(configs)
    for cfg in configs:
        validate_config(cfg)
    if max_stack is not None:
        check_int(max_stack, "max_stack", minimum=1)
    if trainer is not None:
        check_trainer(trainer)
    chosen = None if preset is None else get_preset(preset)
    by_trainer: dict[tuple[str, int], list[int]] = {}
    for i, cfg in enumerate(configs):
        p = chosen if chosen is not None else PRESETS.get(cfg.preset)
        t = trainer or (p or Preset).trainer  # the Preset defaults for an unregistered name
        m = max_stack or (p or Preset).max_stack
        by_trainer.setdefault((t, m), []).append(i)
    results: list[ExperimentResult | None] = [None] * len(configs)
    for (t, m), idx in by_trainer.items():
        part = _run_many([configs[i] for i in idx], use_cache, progress, t, m)
        for i, r in zip(idx, part, strict=True):
            results[i] = r
    return results  # type: ignore[return-value]


def run_experiment(
    cfg: ExperimentConfig,
    *,
    preset: str | Preset | None = None,
    use_cache: bool = True,
    progress: bool = False,
    trainer: str | None = None,
) -> ExperimentResult:
    """Run (or reload) one weak-to-strong experiment; see :mod:`w2s_utils.engine.experiment`.

    ``use_cache=False`` recomputes every piece (and overwrites the cache entries).
    ``progress`` shows tqdm bars for the training loops. ``trainer`` (one of
    :data:`~w2s_utils.engine.presets.TRAINERS`; default: ``preset``'s, as in :func:`run_many`)
    picks the reference loop or the stacked trainer (here a stack of one; :func:`run_grid` and
    :func:`run_many` stack the runs of a grid); the two have separate cache entries.
    """
    validate_config(cfg)
    return run_many([cfg], preset=preset, use_cache=use_cache, progress=progress, trainer=trainer)[
        0
    ]
