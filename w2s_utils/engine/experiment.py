"""The weak-to-strong pipeline with a verified result cache.

One run (:func:`run_experiment`) for an :class:`ExperimentConfig`:

1. the **weak model** trains on the gold labels of ``weak_train`` (its accuracy is the weak
   ceiling) and labels ``w2s_train``, ``val`` and ``test``;
2. the **strong ceiling** trains on the gold labels of the *same* ``w2s_train`` texts;
3. the **student** (the strong model) trains on the weak labels of ``w2s_train`` (soft or hard),
   with early stopping, if enabled, on the weak-labelled ``val`` split only;
4. all three predict the seed-independent ``test`` split; a metrics table gives accuracy, CE, ECE,
   smooth CE, misfits to the weak model and PGR.

Caching: the weak model's predictions (keyed by dataset, weak model, sizes, seed, settings), the
strong ceiling's predictions (keyed without the weak model, so every weak model of a (dataset,
seed) shares one ceiling) and the whole result are stored with
:func:`~w2s_utils.engine.cache.cached_arrays` (atomic writes, verified reloads, corrupt entries
reported and recomputed). Frozen trunk states are cached per text by
:mod:`w2s_utils.engine.features` and shared across seeds and chapters.

Trainers: :func:`run_many` (and :func:`run_grid`, which builds the grid's configs) runs many
configs in three phases -- weak models, ceilings, students -- and trains each phase's cache
misses one at a time (``trainer="loop"``, the reference) or stacked
(``trainer="stacked"``: up to ``max_stack`` runs of one architecture, equal settings up to the
seed, in one :func:`w2s_utils.engine.batched.train_stacked` program). The preset picks the
default (``ci`` loops, ``gpu`` stacks); stacked entries have keys of their own.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import pandas as pd
import torch
from tqdm.auto import tqdm

from w2s_utils import metrics
from w2s_utils._validate import check_int, check_seeds
from w2s_utils.engine import cache, data
from w2s_utils.engine.batched import train_stacked
from w2s_utils.engine.data import SplitSizes
from w2s_utils.engine.device import default_device
from w2s_utils.engine.losses import LOSS_NAMES
from w2s_utils.engine.models import (
    MODEL_NAMES,
    MODES,
    check_model_name,
    get_model,
    is_torch_model,
    model_identity,
    trains_everything,
)
from w2s_utils.engine.presets import PRESET_NAMES, PRESETS, get_preset
from w2s_utils.engine.train import TrainSettings

__all__ = [
    "ExperimentConfig",
    "ExperimentResult",
    "LABEL_TYPES",
    "add_run_parser",
    "make_config",
    "run_experiment",
    "TRAINERS",
    "run_grid",
    "run_many",
    "summarize",
    "validate_config",
]

LABEL_TYPES = ("soft", "hard")
#: Bump when what a cached result means changes (training code, metrics, stored arrays).
#: 2: fused AdamW (same update rule, different rounding).
#: 3: test splits in one canonical order (sorted by id) and chosen by content, not by name;
#:    datasets and local models keyed by content.
ENGINE_VERSION = 3
_MODELS = ("weak", "student", "ceiling")
_WEAK_SPLITS = ("w2s_train", "val", "test")


def _engine_key() -> dict[str, object]:
    """What every cache key of the pipeline holds besides the config: the engine version and the
    device type (a GPU run and a CPU run of one config give different numbers)."""
    return {"engine": ENGINE_VERSION, "device": default_device().type}


@dataclass(frozen=True)
class ExperimentConfig:
    """Everything that determines one weak-to-strong run (hashed into the cache key).

    ``mode``/``trainable_layers`` set how the strong model (ceiling and student) trains,
    ``weak_mode``/``weak_trainable_layers`` the weak model (ignored by ``bow`` and
    ``tiny-transformer``). ``loss`` is the student's loss; ``label_type`` whether it sees the weak
    model's soft probabilities or their argmax. Build one with :func:`make_config`.
    """

    dataset: str
    weak: str
    strong: str
    sizes: SplitSizes
    seed: int = 0
    loss: str = "xent"
    label_type: str = "soft"
    mode: str = "cached-trunk"
    trainable_layers: int = 1
    weak_mode: str = "cached-trunk"
    weak_trainable_layers: int = 1
    weak_settings: TrainSettings = field(default_factory=TrainSettings)
    strong_settings: TrainSettings = field(default_factory=TrainSettings)
    student_settings: TrainSettings = field(default_factory=TrainSettings)
    preset: str = "ci"
    #: Temperature on the weak model's probabilities, ``softmax(log p / T)``, before the student
    #: (and the metrics) see them: a positive number, or ``"fit"`` for the temperature that
    #: minimises the weak model's log-loss on the gold labels of its own ``val`` split (which the
    #: student never sees). Left out of the cache key at its default 1.0, so older keys still hold.
    weak_temperature: float | str = 1.0


@dataclass
class ExperimentResult:
    """Per-example test predictions of the three models, the student's history and metrics.

    ``weak``, ``student``, ``ceiling`` are ``[N_test, K]``; ``labels``/``ids`` the gold test labels
    and stable ids.
    ``weak_labels_train`` are the weak model's probabilities on ``w2s_train`` (what the student
    fits), ``student_probs_train`` the student's, ``train_labels`` the gold labels there (for
    analysis only); ``weak_labels_val`` the weak labels of ``val``. ``metrics`` has one row per
    model (weak, student, ceiling); ``summary`` the flat numbers; ``history`` the student's curve.
    """

    config: ExperimentConfig
    labels: np.ndarray
    ids: list[str]
    weak: np.ndarray
    student: np.ndarray
    ceiling: np.ndarray
    weak_labels_train: np.ndarray
    student_probs_train: np.ndarray
    train_labels: np.ndarray
    weak_labels_val: np.ndarray
    history: pd.DataFrame
    weak_history: pd.DataFrame
    ceiling_history: pd.DataFrame
    metrics: pd.DataFrame
    summary: dict[str, float]
    cached: bool = False
    seconds: float = 0.0

    @property
    def pgr(self) -> float:
        return self.summary["pgr"]

    def row(self) -> dict[str, Any]:
        """Flat record (config fields + summary numbers) for tables."""
        c = self.config
        out: dict[str, Any] = {
            "dataset": c.dataset,
            "weak": c.weak,
            "strong": c.strong,
            "seed": c.seed,
            "loss": c.loss,
            "label_type": c.label_type,
            "preset": c.preset,
        }
        out.update(self.summary)
        out["cached"] = self.cached
        out["seconds"] = self.seconds
        return out


# ------------------------------------------------------------------------------- validation


def _check_sizes(sizes: Any) -> SplitSizes:
    if isinstance(sizes, dict):
        sizes = SplitSizes(**sizes)
    if not isinstance(sizes, SplitSizes):
        raise ValueError(f"sizes must be a SplitSizes (or a dict of its fields), got {sizes!r}")
    for name in ("weak_train", "w2s_train", "val", "test"):
        n = getattr(sizes, name)
        if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 0:
            raise ValueError(f"sizes.{name}={n!r} must be a non-negative integer")
        if name != "val" and n == 0:
            raise ValueError(f"sizes.{name}=0: the pipeline needs a non-empty {name} split")
    return sizes


def validate_config(cfg: ExperimentConfig) -> None:
    """Raise ``ValueError`` for anything wrong with ``cfg`` before any work is done."""
    if cfg.dataset not in data.DATASET_NAMES:
        from pathlib import Path

        if not Path(cfg.dataset).expanduser().exists():
            raise ValueError(
                f"dataset {cfg.dataset!r} is unknown; valid datasets: "
                f"{', '.join(data.DATASET_NAMES)} (or a path to a local file/folder)"
            )
    check_model_name(cfg.weak)
    check_model_name(cfg.strong)
    if cfg.loss not in LOSS_NAMES:
        raise ValueError(f"loss {cfg.loss!r} is unknown; valid losses: {', '.join(LOSS_NAMES)}")
    if cfg.label_type not in LABEL_TYPES:
        raise ValueError(f"label_type {cfg.label_type!r}; use one of {', '.join(LABEL_TYPES)}")
    for name in ("mode", "weak_mode"):
        if getattr(cfg, name) not in MODES:
            raise ValueError(f"{name}={getattr(cfg, name)!r}; valid modes: {', '.join(MODES)}")
    if cfg.preset not in PRESETS:
        raise ValueError(
            f"preset {cfg.preset!r} is unknown; valid presets: {', '.join(PRESET_NAMES)}"
        )
    if cfg.strong == "bow" and cfg.loss != "xent":
        raise ValueError("strong='bow' trains only with loss='xent'")
    _check_sizes(cfg.sizes)
    t = cfg.weak_temperature
    if t == "fit":
        if cfg.sizes.val == 0:
            raise ValueError("weak_temperature='fit' needs a non-empty val split (sizes.val > 0)")
    elif isinstance(t, bool) or not isinstance(t, (int, float)) or not (0 < t < math.inf):
        raise ValueError(f"weak_temperature={t!r}: must be a positive finite number or 'fit'")
    for name in ("weak_settings", "strong_settings", "student_settings"):
        if not isinstance(getattr(cfg, name), TrainSettings):
            raise ValueError(f"{name} must be a TrainSettings")


def make_config(
    dataset: str,
    weak: str,
    strong: str | None = None,
    seed: int = 0,
    preset: str = "ci",
    **overrides: Any,
) -> ExperimentConfig:
    """The :class:`ExperimentConfig` of ``preset`` for (dataset, weak, strong, seed).

    ``overrides`` replace config fields (``loss``, ``label_type``, ``sizes``, ``mode``, ...); a
    dict given for ``weak_settings``/``strong_settings``/``student_settings`` updates only the named
    :class:`TrainSettings` fields. Seeds of all three settings are set to ``seed``.
    """
    p = get_preset(preset)
    fields = {f.name for f in dataclasses.fields(ExperimentConfig)}
    unknown = set(overrides) - fields
    if unknown:
        raise ValueError(
            f"unknown override(s) {sorted(unknown)}; valid: {', '.join(sorted(fields))}"
        )
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed={seed!r} must be a non-negative integer")
    base = {
        "weak_settings": p.weak_settings_for(weak),
        "strong_settings": p.strong_settings,
        "student_settings": p.student_settings,
    }
    for name, default in base.items():
        value = overrides.pop(name, None)
        if isinstance(value, dict):
            base[name] = replace(default, **value)
        elif value is not None:
            base[name] = value
    if "sizes" in overrides:
        overrides["sizes"] = _check_sizes(overrides["sizes"])
    cfg_kwargs: dict[str, Any] = {
        "dataset": dataset,
        "weak": weak,
        "strong": strong or p.strong,
        "sizes": p.sizes_for(dataset),
        "seed": int(seed),
        "mode": p.mode,
        "trainable_layers": p.trainable_layers,
        "weak_mode": p.weak_mode,
        "weak_trainable_layers": p.weak_trainable_layers,
        "label_type": p.label_type,
        "preset": p.name,
    }
    cfg_kwargs.update(overrides)
    for name, s in base.items():
        if not isinstance(s, TrainSettings):
            raise ValueError(f"{name} must be a TrainSettings or a dict of its fields")
        s = replace(s, seed=int(seed))
        if name == "student_settings":
            s = replace(s, loss=cfg_kwargs.get("loss", "xent"))
        else:
            s = replace(s, loss="xent")
        cfg_kwargs[name] = s
    cfg = ExperimentConfig(**cfg_kwargs)
    validate_config(cfg)
    return cfg


# -------------------------------------------------------------------------------- the run


def _skey(s: TrainSettings) -> dict[str, Any]:
    d = dataclasses.asdict(s)
    d.pop("progress", None)
    return d


def _model_spec(name: str, mode: str, trainable_layers: int) -> dict[str, Any]:
    ident = model_identity(name)
    if trains_everything(name):
        return ident
    return {**ident, "mode": mode, "trainable_layers": trainable_layers}


def _build(name: str, mode: str, trainable_layers: int):
    if trains_everything(name):
        return get_model(name)
    return get_model(name, mode=mode, trainable_layers=trainable_layers)


def _hist_arrays(prefix: str, df: pd.DataFrame) -> dict[str, np.ndarray]:
    return {f"{prefix}__{c}": df[c].to_numpy(dtype=np.float64) for c in df.columns}


def _hist_frame(prefix: str, arrays: dict[str, np.ndarray]) -> pd.DataFrame:
    cols = {k[len(prefix) + 2 :]: v for k, v in arrays.items() if k.startswith(prefix + "__")}
    df = pd.DataFrame(cols)
    if "step" in df:
        df["step"] = df["step"].astype(int)
    if "selected" in df:
        df["selected"] = df["selected"].astype(bool)
    return df


#: How a run's models are trained: ``"loop"`` one at a time (the reference,
#: :func:`w2s_utils.engine.train.train_classifier`), ``"stacked"`` several runs of one
#: architecture together (:func:`w2s_utils.engine.batched.train_stacked`). Stacked results are
#: cached under their own keys (the key gains ``"trainer": "stacked"``): with dropout they are
#: another draw of the same procedure, not the loop's numbers.
TRAINERS = ("loop", "stacked")


def _check_trainer(trainer: str) -> str:
    if trainer not in TRAINERS:
        raise ValueError(f"trainer={trainer!r}: must be one of {', '.join(TRAINERS)}")
    return trainer


def _stacks(name: str, trainer: str) -> bool:
    """Whether ``name``'s training goes through the stacked trainer (torch models only)."""
    return trainer == "stacked" and is_torch_model(name)


def _piece_key(
    cfg: ExperimentConfig,
    model: str,
    mode: str,
    trainable_layers: int,
    settings: TrainSettings,
    trainer: str = "loop",
) -> dict[str, Any]:
    """Cache key of a piece shared across configs (a weak model's or the ceiling's predictions)."""
    key = {
        **_engine_key(),
        "dataset": data.dataset_identity(cfg.dataset),
        "sizes": cfg.sizes,
        "seed": cfg.seed,
        "model": _model_spec(model, mode, trainable_layers),
        "settings": _skey(settings),
    }
    if _stacks(model, trainer):
        key["trainer"] = "stacked"
    return key


@dataclass
class _Job:
    """One training whose outputs are one cache entry (a weak model, a ceiling or a student)."""

    key: dict[str, Any]
    kind: str
    what: str
    model: tuple[str, str, int]  # name, mode, trainable layers
    settings: TrainSettings
    texts: Sequence[str]
    targets: Any
    val: tuple[Sequence[str], Any] | None
    test: tuple[Sequence[str], Any] | None
    #: (trained model, its history) -> the arrays to store
    finish: Any

    def stack_group(self) -> tuple[Any, ...]:
        """Jobs with equal groups may train together: one architecture, settings equal up to
        the seed, the same number of examples."""
        plain = replace(self.settings, seed=0, progress=False)
        return (self.kind, self.model, plain, len(self.texts))

    def train_alone(self) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        model = _build(*self.model)
        hist = model.fit(self.texts, self.targets, self.settings, val=self.val, test=self.curve)
        return self.finish(model, hist), {"what": self.what}

    @property
    def curve(self) -> tuple[Sequence[str], Any] | None:
        """The test set to record along training (``None`` when the settings say not to)."""
        return self.test if self.settings.eval_test else None


def _train_jobs(
    jobs: list[_Job], trainer: str, max_stack: int, progress: bool = False
) -> list[dict[str, np.ndarray]]:
    """Train ``jobs`` (all cache misses) and store each one's arrays; stacked where allowed."""
    out: list[dict[str, np.ndarray] | None] = [None] * len(jobs)
    groups: dict[Any, list[int]] = {}
    for i, job in enumerate(jobs):
        g = job.stack_group() if _stacks(job.model[0], trainer) else ("alone", i)
        groups.setdefault(g, []).append(i)
    chunks = [m[at : at + max_stack] for m in groups.values() for at in range(0, len(m), max_stack)]
    what = jobs[0].what if jobs else ""
    for chunk in tqdm(chunks, desc=f"train: {what}", disable=not progress, leave=False):
        if not _stacks(jobs[chunk[0]].model[0], trainer):
            (i,) = chunk
            arrays, _ = cache.cached_arrays(
                jobs[i].key, jobs[i].kind, jobs[i].train_alone, refresh=True
            )
            out[i] = arrays
            continue
        models = [_build(*jobs[i].model) for i in chunk]
        hists = train_stacked(
            models,
            [jobs[i].texts for i in chunk],
            [jobs[i].targets for i in chunk],
            [jobs[i].settings for i in chunk],
            val=[jobs[i].val for i in chunk],
            test=[jobs[i].curve for i in chunk],
        )
        for i, model, hist in zip(chunk, models, hists, strict=True):
            arrays = jobs[i].finish(model, hist)
            meta = {"what": jobs[i].what, "stacked_with": len(chunk)}
            out[i], _ = cache.cached_arrays(
                jobs[i].key, jobs[i].kind, lambda a=arrays, m=meta: (a, m), refresh=True
            )
    return out  # type: ignore[return-value]


def _run_jobs(
    jobs: list[_Job], trainer: str, refresh: bool, max_stack: int, progress: bool = False
) -> list[dict[str, np.ndarray]]:
    """Arrays of every job: verified cache hits reloaded, the misses trained (stacked where
    ``trainer`` allows), jobs with one key (a ceiling several weak models share) done once."""
    by_path: dict[Any, int] = {}
    unique: list[_Job] = []
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
    trained = _train_jobs([unique[u] for u in misses], trainer, max_stack, progress)
    for u, a in zip(misses, trained, strict=True):
        arrays[u] = a
    return [arrays[w] for w in where]  # type: ignore[misc]


def _val_pair(splits, labels: Any) -> tuple[Sequence[str], Any] | None:
    return (splits.val.texts, labels) if len(splits.val) else None


def _piece_job(cfg: ExperimentConfig, splits, progress: bool, trainer: str, role: str) -> _Job:
    """The training of a shared piece: ``role="weak"`` (the weak model on the gold labels of
    ``weak_train``; predicts ``w2s_train``, ``val``, ``test``) or ``"ceiling"`` (the strong model
    on the gold labels of ``w2s_train``; predicts ``test``)."""
    if role == "weak":
        model = (cfg.weak, cfg.weak_mode, cfg.weak_trainable_layers)
        settings, train, test, kind = cfg.weak_settings, splits.weak_train, None, "weak_preds"
    else:
        model = (cfg.strong, cfg.mode, cfg.trainable_layers)
        settings, train, kind = cfg.strong_settings, splits.w2s_train, "ceiling_preds"
        test = (splits.test.texts, splits.test.labels)

    def finish(m, hist):
        out = {}
        if role == "weak":
            out["w2s_train"] = m.predict_proba(splits.w2s_train.texts)
            out["val"] = m.predict_proba(splits.val.texts) if len(splits.val) else np.zeros((0, 2))
        return {**out, "test": m.predict_proba(splits.test.texts), **_hist_arrays("hist", hist)}

    return _Job(
        key=_piece_key(cfg, *model, settings, trainer),
        kind=kind,
        what="weak predictions" if role == "weak" else "strong ceiling predictions",
        model=model,
        settings=replace(settings, progress=progress and settings.progress),
        texts=train.texts,
        targets=train.labels,
        val=_val_pair(splits, splits.val.labels),
        test=test,
        finish=finish,
    )


def _tempered(cfg: ExperimentConfig, arrays: dict[str, np.ndarray], splits):
    """The weak model's probabilities with ``cfg.weak_temperature`` applied."""
    t = cfg.weak_temperature
    if t == 1.0:
        return arrays
    if t == "fit":  # the teacher's own held-out gold labels; the student never sees them
        t = metrics.fit_temperature(arrays["val"], splits.val.labels, kind="probs")
    tempered = {
        s: metrics.apply_temperature(arrays[s], float(t)).numpy()
        for s in _WEAK_SPLITS
        if len(arrays[s])
    }
    return {**arrays, **tempered, "temperature": np.array(float(t))}


def _student_job(
    cfg: ExperimentConfig, splits, weak: dict, ceil: dict, progress: bool, trainer: str
) -> _Job:
    weak_train = weak["w2s_train"]
    hard = cfg.label_type == "hard"

    def finish(student, hist):
        ids_blob, ids_offsets = cache.pack_texts(list(splits.test.ids))
        return {
            "labels": np.asarray(splits.test.labels, dtype=np.int64),
            "ids_blob": ids_blob,
            "ids_offsets": ids_offsets,
            "probs_weak": weak["test"],
            "probs_ceiling": ceil["test"],
            "probs_student": student.predict_proba(splits.test.texts),
            "weak_labels_train": weak_train,
            "student_probs_train": student.predict_proba(splits.w2s_train.texts),
            "train_labels": np.asarray(splits.w2s_train.labels, dtype=np.int64),
            "weak_labels_val": weak["val"],
            **_hist_arrays("hist", hist),
            **{f"weakhist__{k[6:]}": v for k, v in weak.items() if k.startswith("hist__")},
            **{f"ceilhist__{k[6:]}": v for k, v in ceil.items() if k.startswith("hist__")},
        }

    s = cfg.student_settings
    return _Job(
        key=_result_key(cfg, trainer),
        kind="results",
        what="weak-to-strong result",
        model=(cfg.strong, cfg.mode, cfg.trainable_layers),
        settings=replace(s, progress=progress and s.progress),
        texts=splits.w2s_train.texts,
        targets=weak_train.argmax(1) if hard else weak_train,
        val=_val_pair(splits, weak["val"].argmax(1) if hard else weak["val"]),
        test=(splits.test.texts, splits.test.labels),
        finish=finish,
    )


def _weak_piece(cfg: ExperimentConfig, splits, refresh: bool, progress: bool):
    """The weak model's predictions for ``cfg`` (reference loop; tempered), cached."""
    (arrays,) = _run_jobs([_piece_job(cfg, splits, progress, "loop", "weak")], "loop", refresh, 1)
    return _tempered(cfg, arrays, splits)


def _ceiling_piece(cfg: ExperimentConfig, splits, refresh: bool, progress: bool):
    """The strong ceiling's predictions for ``cfg`` (reference loop), cached."""
    (arrays,) = _run_jobs(
        [_piece_job(cfg, splits, progress, "loop", "ceiling")], "loop", refresh, 1
    )
    return arrays


def _result_key(cfg: ExperimentConfig, trainer: str = "loop") -> dict[str, Any]:
    key = {**_engine_key(), "config": cfg}
    # progress is a display setting: keep it out of the key
    key = json.loads(cache.canonical_json(key))
    for name in ("weak_settings", "strong_settings", "student_settings"):
        key["config"][name].pop("progress", None)
    if cfg.weak_temperature == 1.0:  # the default keeps the keys of runs made before the field
        key["config"].pop("weak_temperature")
    # inputs by content: a local data file or model folder is named by its sha256, not its path
    key["config"]["dataset"] = data.dataset_identity(cfg.dataset)
    for name in ("weak", "strong"):
        key["config"][name] = model_identity(getattr(cfg, name))
    if _stacks(cfg.strong, trainer):
        key["trainer"] = "stacked"
    return key


def _metrics_table(
    labels: np.ndarray,
    probs: dict[str, np.ndarray],
    weak_train: np.ndarray,
    student_train: np.ndarray,
) -> tuple[pd.DataFrame, dict[str, float]]:
    y = torch.as_tensor(np.array(labels, dtype=np.int64))
    rows = []
    for name in _MODELS:
        p = torch.tensor(probs[name], dtype=torch.float64)
        w = torch.tensor(probs["weak"], dtype=torch.float64)
        row = {
            "model": name,
            "accuracy": metrics.accuracy(p, y),
            "ce": metrics.log_loss(p.clamp_min(1e-12), y),  # no -inf from an underflow
            "ece": metrics.ece(p, y),
            "smooth_ce": metrics.smooth_ce(p[:, 1], y) if p.shape[1] == 2 else math.nan,
        }
        for kind in metrics.MISFIT_KINDS:
            row[kind] = metrics.misfit(p, w, kind)
        rows.append(row)
    table = pd.DataFrame(rows).set_index("model")
    acc, ce = table["accuracy"], table["ce"]
    table["pgr"] = [metrics.pgr(acc["weak"], acc[m], acc["ceiling"]) for m in table.index]
    summary = {
        "weak_acc": float(acc["weak"]),
        "student_acc": float(acc["student"]),
        "ceiling_acc": float(acc["ceiling"]),
        "pgr": float(table.loc["student", "pgr"]),
        # CE: lower is better, so PGR on -CE
        "pgr_ce": float(metrics.pgr(-ce["weak"], -ce["student"], -ce["ceiling"])),
        "gap": float(acc["ceiling"] - acc["weak"]),
        "weak_ce": float(ce["weak"]),
        "student_ce": float(ce["student"]),
        "ceiling_ce": float(ce["ceiling"]),
        "weak_ece": float(table.loc["weak", "ece"]),
        "student_ece": float(table.loc["student", "ece"]),
        "ceiling_ece": float(table.loc["ceiling", "ece"]),
        "eps": float(table.loc["student", "kl_weak_student"]),
        "eps_train": metrics.misfit(
            torch.tensor(student_train), torch.tensor(weak_train), "kl_weak_student"
        ),
        "misfit_rev": float(table.loc["student", "kl_student_weak"]),
        "misfit_sq": float(table.loc["student", "squared"]),
    }
    return table, summary


def _result_from_arrays(cfg, arrays, seconds: float, cached: bool) -> ExperimentResult:
    probs = {m: arrays[f"probs_{m}"] for m in _MODELS}
    table, summary = _metrics_table(
        arrays["labels"], probs, arrays["weak_labels_train"], arrays["student_probs_train"]
    )
    return ExperimentResult(
        config=cfg,
        labels=arrays["labels"],
        ids=cache.unpack_texts(arrays["ids_blob"], arrays["ids_offsets"]),
        weak=probs["weak"],
        student=probs["student"],
        ceiling=probs["ceiling"],
        weak_labels_train=arrays["weak_labels_train"],
        student_probs_train=arrays["student_probs_train"],
        train_labels=arrays["train_labels"],
        weak_labels_val=arrays["weak_labels_val"],
        history=_hist_frame("hist", arrays),
        weak_history=_hist_frame("weakhist", arrays),
        ceiling_history=_hist_frame("ceilhist", arrays),
        metrics=table,
        summary=summary,
        cached=cached,
        seconds=seconds,
    )


def run_experiment(
    cfg: ExperimentConfig,
    *,
    use_cache: bool = True,
    progress: bool = False,
    trainer: str | None = None,
) -> ExperimentResult:
    """Run (or reload) one weak-to-strong experiment; see the module docstring.

    ``use_cache=False`` recomputes every piece (and overwrites the cache entries).
    ``progress`` shows tqdm bars for the training loops. ``trainer`` (one of :data:`TRAINERS`;
    default: the config's preset's) picks the reference loop or the stacked trainer (here a
    stack of one; :func:`run_grid` and :func:`run_many` stack the runs of a grid); the two have
    separate cache entries.
    """
    validate_config(cfg)
    return run_many([cfg], use_cache=use_cache, progress=progress, trainer=trainer)[0]


def run_many(
    configs: Sequence[ExperimentConfig],
    *,
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
    ``trainer``/``max_stack`` default to each config's preset's (configs of presets with
    different trainers are run trainer by trainer).
    """
    configs = list(configs)
    for cfg in configs:
        validate_config(cfg)
    if max_stack is not None:
        check_int(max_stack, "max_stack", minimum=1)
    if trainer is not None:
        _check_trainer(trainer)
    by_trainer: dict[tuple[str, int], list[int]] = {}
    for i, cfg in enumerate(configs):
        p = get_preset(cfg.preset)
        t = (trainer or p.trainer, max_stack or p.max_stack)
        by_trainer.setdefault(t, []).append(i)
    results: list[ExperimentResult | None] = [None] * len(configs)
    for (t, m), idx in by_trainer.items():
        part = _run_many([configs[i] for i in idx], use_cache, progress, t, m)
        for i, r in zip(idx, part, strict=True):
            results[i] = r
    return results  # type: ignore[return-value]


def _run_many(
    configs: list[ExperimentConfig], use_cache: bool, progress: bool, trainer: str, max_stack: int
) -> list[ExperimentResult]:
    t0 = time.perf_counter()
    refresh = not use_cache
    out: list[tuple[dict[str, np.ndarray], bool] | None] = [None] * len(configs)
    todo = []
    for i, cfg in enumerate(configs):
        # a corrupt entry is reported and counts as a miss
        arrays = None if refresh else cache.lookup(_result_key(cfg, trainer), "results")
        if arrays is None:
            todo.append(i)
        else:
            out[i] = (arrays, True)
    fresh = _compute([configs[i] for i in todo], refresh, progress, trainer, max_stack)
    for i, arrays in zip(todo, fresh, strict=True):
        out[i] = (arrays, False)
    seconds = (time.perf_counter() - t0) / max(1, len(configs))
    return [
        _result_from_arrays(cfg, arrays, seconds, cached)
        for cfg, (arrays, cached) in zip(configs, out, strict=True)  # type: ignore[misc]
    ]


def _compute(
    configs: list[ExperimentConfig], refresh: bool, progress: bool, trainer: str, max_stack: int
) -> list[dict[str, np.ndarray]]:
    """Train (or reload the pieces of) ``configs`` and store their results."""
    if not configs:
        return []
    split_cache: dict[tuple[Any, ...], Any] = {}

    def splits_of(cfg: ExperimentConfig):
        k = (cfg.dataset, cfg.sizes, cfg.seed)
        if k not in split_cache:
            ds = data.load_texts(cfg.dataset, log=None)
            split_cache[k] = data.make_splits(ds, cfg.sizes, cfg.seed)
        return split_cache[k]

    splits = [splits_of(c) for c in configs]
    pairs = list(zip(configs, splits, strict=True))
    weak_jobs = [_piece_job(c, sp, progress, trainer, "weak") for c, sp in pairs]
    weaks = _run_jobs(weak_jobs, trainer, refresh, max_stack, progress)
    weaks = [_tempered(c, w, sp) for c, w, sp in zip(configs, weaks, splits, strict=True)]
    ceil_jobs = [_piece_job(c, sp, progress, trainer, "ceiling") for c, sp in pairs]
    ceils = _run_jobs(ceil_jobs, trainer, refresh, max_stack, progress)
    students = [
        _student_job(c, sp, w, ce, progress, trainer)
        for c, sp, w, ce in zip(configs, splits, weaks, ceils, strict=True)
    ]
    # the results themselves are cache misses (or refreshed): train every student
    return _run_jobs(students, trainer, True, max_stack, progress)


def _as_list(x: str | Iterable[str] | None, default: Sequence[str]) -> list[str]:
    if x is None:
        return list(default)
    if isinstance(x, str):
        return [x]
    return list(x)


def run_grid(
    datasets: str | Iterable[str] | None = None,
    weaks: str | Iterable[str] | None = None,
    strong: str | None = None,
    seeds: int | Iterable[int] | None = None,
    *,
    preset: str = "ci",
    use_cache: bool = True,
    progress: bool = True,
    executor: Any = None,
    trainer: str | None = None,
    **overrides: Any,
) -> list[ExperimentResult]:
    """Run every (dataset, seed, weak) combination; ``None`` takes the preset's chapter grid.

    ``trainer`` (default: the preset's; ``ci`` uses ``"loop"``, ``gpu`` ``"stacked"``): with
    ``"stacked"`` the grid runs through :func:`run_many`, which trains the seeds and teachers of
    a dataset together, up to the preset's ``max_stack`` runs per stack.

    ``seeds`` is a count (``3`` -> seeds 0, 1, 2) or an explicit list. ``overrides`` go to
    :func:`make_config`. All configs are validated before the first run. Results come back in
    the order (dataset, seed, weak), whatever ran where.

    ``executor=None`` runs the configs one after another in this process. Otherwise each config
    is one ``executor.submit(run_experiment, cfg, use_cache=...)`` and its ``.result()`` is
    collected: any :class:`concurrent.futures.Executor` works, and so does anything with that
    ``submit``/``result`` shape (submitit's executors, whose jobs are not ``Future`` objects).
    The only coordination between workers is the file cache (:mod:`w2s_utils.engine.cache`:
    atomic writes, verified reads), so every worker must see the same ``W2S_CACHE_DIR`` (a
    shared filesystem on a cluster). Two workers that need the same shared piece (a dataset and
    seed's strong ceiling) at the same moment both compute it and the last atomic write wins; to
    make that rare, configs are submitted weak model by weak model, so the first wave holds
    distinct (dataset, seed) pairs. Paths:

    - one machine: ``w2s_utils.engine.executors.local_pool(workers)`` (a spawn-started process
      pool that splits the CPU threads between its workers);
    - Dask (``pip install distributed``)::

          from distributed import Client           # or LocalCluster(), dask-jobqueue's
          client = Client("tcp://scheduler:8786")  # SLURMCluster(...), dask-cuda's
          run_grid(preset="gpu", executor=client.get_executor())  # LocalCUDACluster()

    - SLURM with submitit (``pip install submitit``)::

          ex = submitit.AutoExecutor(folder="logs")
          ex.update_parameters(timeout_min=60, gpus_per_node=1, slurm_partition="gpu")
          run_grid(preset="gpu", executor=ex)

    - Ray: ``ray.util.multiprocessing.Pool`` is not an executor; wrap ``ray.remote`` tasks in
      an object whose ``submit`` returns ``ref.future()`` (a ``concurrent.futures.Future``).

    Workers import :mod:`w2s_utils` themselves: install the library (and the same torch) on
    every node. The Dask path is tested (``tests/test_scale.py``, a ``LocalCluster``); the
    submitit and Ray paths use the same two calls but were not run here.
    """
    p = get_preset(preset)
    ds_list = _as_list(datasets, p.ladder_datasets)
    weak_list = _as_list(weaks, p.ladder_weaks)
    seed_list = list(p.seeds) if seeds is None else list(check_seeds(seeds, "seeds"))
    if not ds_list or not weak_list or not seed_list:
        raise ValueError("run_grid: datasets, weaks and seeds must be non-empty")
    if executor is not None and not callable(getattr(executor, "submit", None)):
        raise ValueError(
            f"executor={executor!r} has no submit(); pass a concurrent.futures.Executor (e.g. "
            "w2s_utils.engine.executors.local_pool(), distributed.Client.get_executor())"
        )
    configs = [
        make_config(d, w, strong, s, p.name, **overrides)
        for d in ds_list
        for s in seed_list
        for w in weak_list
    ]
    trainer = _check_trainer(p.trainer if trainer is None else trainer)
    if executor is None and trainer == "stacked":
        return run_many(configs, use_cache=use_cache, trainer=trainer, max_stack=p.max_stack)
    if executor is None:
        results = []
        for cfg in tqdm(configs, desc="w2s runs", disable=not progress, leave=False):
            results.append(run_experiment(cfg, use_cache=use_cache, trainer=trainer))
        return results
    return _run_on_executor(executor, configs, use_cache, progress, trainer, p.max_stack)


_SUMMARY_METRICS = (
    "weak_acc",
    "student_acc",
    "ceiling_acc",
    "gap",
    "pgr",
    "pgr_ce",
    "eps",
    "eps_train",
    "weak_ce",
    "student_ce",
    "ceiling_ce",
)


def summarize(results: Sequence[ExperimentResult]) -> pd.DataFrame:
    """Per (dataset, weak, strong, loss, label_type): mean and Student-t interval across seeds.

    Columns ``<metric>`` (mean), ``<metric>_lo``, ``<metric>_hi`` for weak/student/ceiling
    accuracy, ``gap`` (ceiling - weak accuracy), PGR (mean of the per-seed PGRs; a seed whose gap
    is <= :data:`w2s_utils.metrics.PGR_MIN_GAP` has no PGR and is left out, ``pgr_n`` counts the
    seeds used), eps and CE, plus ``n_seeds``.
    """
    if not results:
        raise ValueError("summarize: no results")
    df = pd.DataFrame([r.row() for r in results])
    keys = ["dataset", "weak", "strong", "loss", "label_type"]
    table = metrics.across_seeds(df, keys, list(_SUMMARY_METRICS))
    table = table.rename(columns={"n": "n_seeds"}).drop(
        columns=[f"{m}_n" for m in _SUMMARY_METRICS if m != "pgr"]
    )
    return table


# ------------------------------------------------------------------------------------- CLI


def _format_table(table: pd.DataFrame) -> str:
    cols = ["dataset", "weak", "strong", "n_seeds"]
    lines = []
    for _, r in table.iterrows():
        parts = [f"{r[c]}" for c in cols]
        for m in ("weak_acc", "student_acc", "ceiling_acc", "pgr", "eps"):
            lo, hi = r[f"{m}_lo"], r[f"{m}_hi"]
            band = f" [{lo:.3f}, {hi:.3f}]" if np.isfinite(lo) else ""
            parts.append(f"{m}={r[m]:.3f}{band}")
        lines.append("  ".join(parts))
    return "\n".join(lines)


def _run_cli(args: argparse.Namespace) -> int:
    overrides: dict[str, Any] = {}
    if args.loss:
        overrides["loss"] = args.loss
    if args.label_type:
        overrides["label_type"] = args.label_type
    results = run_grid(
        args.dataset,
        args.weak,
        args.strong,
        args.seeds,
        preset=args.preset,
        use_cache=not args.no_cache,
        progress=not args.json,
        trainer=args.trainer,
        **overrides,
    )
    table = summarize(results)
    if args.json:
        payload = {
            "summary": json.loads(table.to_json(orient="records")),
            "runs": json.loads(pd.DataFrame([r.row() for r in results]).to_json(orient="records")),
        }
        print(json.dumps(payload, indent=2))
    else:
        print(_format_table(table))
    return 0


def add_run_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Register ``run``: ``w2s run --dataset sarcasm --weak bow --preset ci --seeds 3``."""
    epilog = (
        f"datasets: {', '.join(data.DATASET_NAMES)}\n"
        f"models:   {', '.join(MODEL_NAMES)} (or a Hugging Face name / local folder)\n"
        f"presets:  {', '.join(PRESET_NAMES)}\n"
        f"losses:   {', '.join(LOSS_NAMES)}\n"
        f"modes:    {', '.join(MODES)}"
    )
    p = subparsers.add_parser(
        "run",
        help="run weak-to-strong experiments (cached) and print a results table",
        description="Train weak model, strong ceiling and student; print accuracy, PGR, eps.",
        epilog=epilog,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--dataset", nargs="+", default=None, help="dataset name(s)")
    p.add_argument("--weak", nargs="+", default=None, help="weak model name(s)")
    p.add_argument("--strong", default=None, help="strong model (default: the preset's)")
    p.add_argument("--preset", default="ci", help=f"one of {', '.join(PRESET_NAMES)}")
    p.add_argument("--seeds", type=int, default=None, help="number of seeds (0..N-1)")
    p.add_argument("--loss", default=None, help=f"student loss: {', '.join(LOSS_NAMES)}")
    p.add_argument("--label-type", default=None, choices=LABEL_TYPES)
    p.add_argument(
        "--trainer",
        default=None,
        choices=TRAINERS,
        help="loop: one run at a time; stacked: a grid's runs together (default: the preset's)",
    )
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.add_argument("--no-cache", action="store_true", help="recompute (and overwrite) entries")
    p.set_defaults(func=_run_cli)
    return p


# ------------------------------------------------------------------ grids on an executor


def _run_on_executor(
    executor: Any,
    configs: list[ExperimentConfig],
    use_cache: bool,
    progress: bool,
    trainer: str = "loop",
    max_stack: int = 16,
) -> list[ExperimentResult]:
    """Submit one :func:`run_experiment` per config (weak model by weak model), or with the
    stacked trainer one :func:`run_many` per dataset (a worker trains that dataset's stacks);
    collect them."""
    if trainer == "stacked":
        parts: dict[str, list[int]] = {}
        for i, c in enumerate(configs):
            parts.setdefault(c.dataset, []).append(i)
        tasks = [
            (
                idx,
                (run_many, [configs[i] for i in idx]),
                {"trainer": trainer, "max_stack": max_stack},
            )
            for idx in parts.values()
        ]
    else:
        weak_rank = {w: r for r, w in enumerate(dict.fromkeys(c.weak for c in configs))}
        order = sorted(range(len(configs)), key=lambda i: (weak_rank[configs[i].weak], i))
        tasks = [([i], (run_experiment, configs[i]), {"trainer": trainer}) for i in order]
    futures: dict[int, Any] = {}
    try:
        for n, (_, (fn, arg), kw) in enumerate(tasks):
            futures[n] = executor.submit(fn, arg, use_cache=use_cache, **kw)
        results: list[ExperimentResult | None] = [None] * len(configs)
        for n in tqdm(range(len(tasks)), desc="w2s runs", disable=not progress, leave=False):
            got = futures[n].result()
            idx = tasks[n][0]
            for i, r in zip(idx, got if trainer == "stacked" else [got], strict=True):
                results[i] = r
    except BaseException:
        for f in futures.values():
            cancel = getattr(f, "cancel", None)
            if callable(cancel):
                cancel()
        raise
    return results  # type: ignore[return-value]
