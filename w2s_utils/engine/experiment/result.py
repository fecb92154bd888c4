"""The result of one run: :class:`ExperimentResult`, built from its stored arrays, with its
summary from :func:`w2s_utils.metrics.summarize_predictions` (the one evaluation of a triple)."""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from w2s_utils import metrics
from w2s_utils.engine import cache
from w2s_utils.engine.experiment.config import ExperimentConfig

__all__ = [
    "ROLES",
    "SUMMARY_FLOOR",
    "ExperimentResult",
    "history_arrays",
    "history_frame",
    "PREDICTION_ARRAYS",
    "result_from_arrays",
    "save_predictions",
    "summarize_run",
]

#: The three predictors of a run, in reading order.
ROLES = ("weak", "student", "ceiling")
#: Probabilities below this count as it inside the summary's logarithms: a float32 softmax can
#: underflow to exactly 0, which would make a test cross-entropy infinite.
SUMMARY_FLOOR = 1e-12


@dataclass
class ExperimentResult:
    """Per-example test predictions of the three models, the student's history and metrics.

    ``weak``, ``student``, ``ceiling`` are ``[N_test, K]`` (``K`` = the dataset's classes,
    ``label_names[k]`` names class ``k``); ``labels``/``ids`` the gold test labels and stable ids
    (the test split sorted by id: one order for every seed). ``weak_labels_train`` are the weak
    model's probabilities on ``w2s_train`` (what the student fits), ``student_probs_train`` the
    student's, ``train_labels`` the gold labels there (for analysis only); ``weak_labels_val``
    the weak labels of ``val``. ``summary`` holds the test means of
    :func:`w2s_utils.metrics.summarize_predictions` (``acc_<m>``, ``loss_<m>``, ``gain``, ``eps``,
    ``eps_rev``, ``interaction``, ``misfit_sq``, ``acc_gain``, ``acc_gap``, ``pgr``,
    ``pgr_loss``, ``ece_<m>``, ``smooth_ce_<m>``; gain positive = the student beats its teacher)
    plus ``eps_train`` (the misfit KL(weak || student) on the student's training texts);
    ``metrics`` the per-predictor part of it as a table (one row per role); ``history`` the
    student's curve, ``weak_history``/``ceiling_history`` the pieces'.
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
    label_names: tuple[str, ...] = ()
    cached: bool = False
    seconds: float = 0.0
    #: ``(entry id, training seconds)`` of the teacher, the ceiling and the student this result
    #: was built from (entries stored before the field: empty); shared pieces have one id
    pieces: tuple[tuple[str, float], ...] = ()

    @property
    def pgr(self) -> float:
        return self.summary["pgr"]

    @property
    def n_classes(self) -> int:
        return int(self.weak.shape[1])

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


def history_arrays(prefix: str, df: pd.DataFrame) -> dict[str, np.ndarray]:
    """A history frame as float64 arrays named ``<prefix>__<column>`` (how entries store it)."""
    return {f"{prefix}__{c}": df[c].to_numpy(dtype=np.float64) for c in df.columns}


def history_frame(prefix: str, arrays: dict[str, np.ndarray]) -> pd.DataFrame:
    """The history frame stored by :func:`history_arrays` under ``prefix`` (``step`` as int,
    ``selected`` as bool)."""
    cols = {k[len(prefix) + 2 :]: v for k, v in arrays.items() if k.startswith(prefix + "__")}
    df = pd.DataFrame(cols)
    if "step" in df:
        df["step"] = df["step"].astype(int)
    if "selected" in df:
        df["selected"] = df["selected"].astype(bool)
    return df


def summarize_run(
    labels: np.ndarray,
    probs: dict[str, np.ndarray],
    weak_train: np.ndarray,
    student_train: np.ndarray,
) -> tuple[pd.DataFrame, dict[str, float]]:
    """``(table, summary)`` of one run: ``summary`` is
    :func:`w2s_utils.metrics.summarize_predictions` of the test predictions ``probs[role]``
    against ``labels`` (probabilities floored at :data:`SUMMARY_FLOOR` inside logarithms) plus
    ``eps_train`` = E KL(weak || student) on the student's training texts; ``table`` has one row
    per role with its ``acc``, ``loss`` (test cross-entropy, nats), ``ece`` and ``smooth_ce``
    (NaN for more than two classes)."""
    summary = metrics.summarize_predictions(
        probs["weak"], probs["student"], probs["ceiling"], labels=labels, floor=SUMMARY_FLOOR
    )
    summary["eps_train"] = float(
        metrics.kl(torch.as_tensor(weak_train), torch.as_tensor(student_train)).mean()
    )
    table = pd.DataFrame(
        {
            col: [summary[f"{col}_{role}"] for role in ROLES]
            for col in ("acc", "loss", "ece", "smooth_ce")
        },
        index=pd.Index(ROLES, name="role"),
    )
    return table, summary


def result_from_arrays(
    cfg: ExperimentConfig,
    arrays: dict[str, np.ndarray],
    seconds: float,
    cached: bool,
    label_names: Callable[[], Sequence[str]],
) -> ExperimentResult:
    """The :class:`ExperimentResult` of a stored result entry; ``label_names()`` gives the
    dataset's class names, asked only when the entry predates stored names."""
    probs = {m: arrays[f"probs_{m}"] for m in ROLES}
    table, summary = summarize_run(
        arrays["labels"], probs, arrays["weak_labels_train"], arrays["student_probs_train"]
    )
    if "label_names_blob" in arrays:
        names = cache.unpack_texts(arrays["label_names_blob"], arrays["label_names_offsets"])
    else:
        names = list(label_names())
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
        history=history_frame("hist", arrays),
        weak_history=history_frame("weakhist", arrays),
        ceiling_history=history_frame("ceilhist", arrays),
        metrics=table,
        summary=summary,
        label_names=tuple(names),
        cached=cached,
        seconds=seconds,
        pieces=_pieces(arrays),
    )


def _pieces(arrays: dict[str, np.ndarray]) -> tuple[tuple[str, float], ...]:
    """The trained entries behind a result with their stored training seconds (unknown ones
    left out)."""
    if "piece_ids_blob" not in arrays or "train_seconds" not in arrays:
        return ()
    ids = cache.unpack_texts(arrays["piece_ids_blob"], arrays["piece_ids_offsets"])
    secs = [*np.asarray(arrays["piece_seconds"], dtype=np.float64), float(arrays["train_seconds"])]
    return tuple((i, float(s)) for i, s in zip(ids, secs, strict=True) if np.isfinite(s))


#: The arrays :func:`save_predictions` writes: the four ``w2s check`` reads (``weak``,
#: ``student``, ``ceiling`` ``[N, K]`` float64; ``labels`` ``[N]`` int64) and the test ``ids``
#: ``[N]`` and class ``label_names`` ``[K]`` (unicode strings).
PREDICTION_ARRAYS = ("weak", "student", "ceiling", "labels", "ids", "label_names")


def _file_part(text: str) -> str:
    """A file-name-safe short form of a config field (a path becomes its stem)."""
    if os.sep in text or "." in Path(text).name:
        text = Path(text).stem
    return re.sub(r"[^A-Za-z0-9_-]+", "-", text).strip("-") or "x"


def save_predictions(
    results: Sequence[ExperimentResult], path: str | os.PathLike[str]
) -> list[Path]:
    """Write each result's test predictions as an ``.npz`` that ``w2s check`` reads, atomically
    (:func:`w2s_utils.engine.cache.atomic_write`: a file is complete or absent).

    Arrays: :data:`PREDICTION_ARRAYS`. One result: exactly ``path``. Several: one file per run,
    ``<path without .npz>.<dataset>.<weak>.seed<k>.npz`` (a number added where two runs would
    share a name), in the order of ``results``. Returns the paths written.
    """
    results = list(results)
    if not results:
        raise ValueError("save_predictions: no results to write")
    target = Path(os.fspath(path)).expanduser()
    if target.suffix != ".npz":
        raise ValueError(f"save_predictions: {target} must end in .npz (what `w2s check` reads)")
    if target.is_dir():
        raise ValueError(f"save_predictions: {target} is a folder; give a file name FILE.npz")
    paths: list[Path] = []
    for r in results:
        c = r.config
        name = target
        if len(results) > 1:
            stem = f"{target.stem}.{_file_part(c.dataset)}.{_file_part(c.weak)}.seed{c.seed}"
            name = target.with_name(stem + ".npz")
            n = 2
            while name in paths:
                name, n = target.with_name(f"{stem}-{n}.npz"), n + 1
        paths.append(name)
    for r, name in zip(results, paths, strict=True):
        arrays = {
            "weak": np.asarray(r.weak, dtype=np.float64),
            "student": np.asarray(r.student, dtype=np.float64),
            "ceiling": np.asarray(r.ceiling, dtype=np.float64),
            "labels": np.asarray(r.labels, dtype=np.int64),
            "ids": np.asarray(list(r.ids), dtype=str),
            "label_names": np.asarray(list(r.label_names), dtype=str),
        }
        cache.atomic_write(name, lambda f, a=arrays: np.savez(f, **a))
    return paths
