"""Students trained long on weak labels, with the whole curve of what the theory measures.

One trajectory (:func:`run_trajectory`) trains the strong student on the weak labels of (the first
``student_train`` texts of) ``w2s_train`` and evaluates it every ``eval_every`` steps. Each
evaluation adds a history row (:func:`trajectory_metrics`) computed on a fixed test subset and on
the student's own training texts, and stores the student's test probabilities, so any step of the
curve can be analysed afterwards (bootstrap intervals at a selected step, for example):

- ``test_acc``, ``test_ce`` of the student, ``weak_acc``/``weak_ce``/``ceiling_acc`` (constant);
- ``acc_gain`` = student - weak accuracy, ``gain`` = CE(weak) - CE(student) (the gain
  ``Err(F_w) - Err(F_sw,t)`` on the test sample), ``pgr`` (accuracy) and ``pgr_ce``;
- ``eps_train`` = E KL(weak || student) on the training texts, ``eps_test`` on the test subset,
  ``eps_rev_test``, ``gamma`` (the empirical floor of both predictors on the test subset);
- ``room`` = E max_j r_j (the label-free room to gain) and ``gain_lower`` = E min_j r_j (<= 0:
  the most the student can lose, negated), with the student log-ratio
  ``r_j = log F_sw,j - log F_w,j``, from :func:`w2s_utils.theory.label_free_interval`
  (``gain_lower <= gain <= room``); ``log_room`` = log(1 + min(1, sqrt(eps_test/2))/gamma) and
  ``two_sided_room`` = sqrt(eps_test/2)/gamma (the names of
  :class:`w2s_utils.theory.TrajectoryRoomResult`);
- ``smooth_ce`` and binned ``ece`` (15 bins, top label) of the student;
- from the trainer: ``step, epoch, lr, train_loss, val_loss, val_acc, val_eps`` (``val_*``
  against the weak labels of ``val``: the only numbers model selection may use).

The whole result (history and per-step probabilities) is one cache entry keyed by the
:class:`TrajectoryConfig` (:func:`trajectory_key`); the weak model and the ceiling are the shared
pieces of :mod:`w2s_utils.engine.experiment`, read under the preset's trainer, so at every preset
the trajectories reuse the teachers and ceilings chapter 1's grid trained (the ``gpu`` preset's
stacked ones included). :func:`select_step` implements the selection rules (weak-label early
stopping, a fixed budget, the last step and the gold-label oracle).
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import pandas as pd
import torch
from tqdm.auto import tqdm

from w2s_utils import metrics, theory
from w2s_utils.engine import cache
from w2s_utils.engine.experiment import (
    ExperimentConfig,
    build_model,
    check_trainer,
    engine_key,
    history_arrays,
    history_frame,
    make_config,
    piece_predictions,
    run_inputs,
    validate_config,
)
from w2s_utils.engine.presets import OveroptimizationRemedy, Preset, get_preset
from w2s_utils.engine.train import train_classifier

__all__ = [
    "FLOOR",
    "LONG",
    "SELECTION_RULES",
    "Trajectory",
    "TrajectoryConfig",
    "TrajectoryPoint",
    "floored",
    "make_trajectory_config",
    "run_trajectory",
    "run_trajectories",
    "select_step",
    "trajectory_configs",
    "trajectory_key",
    "trajectory_metrics",
]

#: Bump when what a cached trajectory means changes.
TRAJECTORY_VERSION = 3
# 2: the evaluated test examples are chosen by id (one set for all seeds). 3: history columns
# named as theory names them (``gain_lower`` = E min_j r_j replaces ``room_rev`` = -E min_j r_j,
# ``two_sided_room`` replaces ``theorem1_room``) and ``log_room`` with TV capped at 1, as in
# theory.generalization_chain; entries stored under version 2 are misses (retrained)
#: Predictions with an entry below FLOOR are projected onto the floor (theory.ensure_floor)
#: before logs are taken; float32 softmax outputs can be exactly 0.
FLOOR = 1e-6
#: Name of the long soft-label run of every (dataset, weak, seed).
LONG = "long run"
#: Rules of :func:`select_step`; only ``"oracle"`` reads gold labels.
SELECTION_RULES = ("final", "weak_early_stop", "fixed_budget", "oracle")


@dataclass(frozen=True)
class TrajectoryConfig:
    """One trajectory: the pipeline config (teacher, ceiling, student settings), which texts the
    student trains on and is tested on along the way, and the loss options (hashed into the key).

    ``student_train``/``eval_test``: the first n texts of ``w2s_train``/``test`` (0: all).
    ``loss_options``: ``(name, value)`` pairs for :func:`~w2s_utils.engine.losses.make_loss`.
    ``trainer``: the trainer of the preset, under whose keys the shared teacher and ceiling are
    read (and stored when missing), so a trajectory reuses what the preset's grids trained.
    """

    experiment: ExperimentConfig
    remedy: str = LONG
    student_train: int = 0
    eval_test: int = 0
    loss_options: tuple[tuple[str, float], ...] = ()
    trainer: str = "loop"

    def __post_init__(self) -> None:
        check_trainer(self.trainer)

    @property
    def dataset(self) -> str:
        return self.experiment.dataset

    @property
    def weak(self) -> str:
        return self.experiment.weak

    @property
    def seed(self) -> int:
        return self.experiment.seed


def make_trajectory_config(
    dataset: str,
    weak: str,
    seed: int = 0,
    preset: str | Preset = "ci",
    remedy: OveroptimizationRemedy | None = None,
) -> TrajectoryConfig:
    """The trajectory of ``preset``'s over-optimization grid for (dataset, weak, seed).

    ``preset`` is a name or a :class:`~w2s_utils.engine.presets.Preset` object (its own settings
    and trainer are used). ``remedy=None`` is the long soft-label run; a remedy changes labels,
    loss, lr or length.
    """
    p = get_preset(preset)
    g = p.overoptimization
    r = remedy or OveroptimizationRemedy(LONG)
    settings = {
        "epochs": r.epochs if r.epochs is not None else g.epochs,
        "lr": g.lr * r.lr_scale,
        "warmup_frac": g.warmup_frac,
        "eval_every": g.eval_every,
        "early_stopping": False,
        "train_eps_max": 0,
        "progress": False,
    }
    cfg = make_config(
        dataset,
        weak,
        seed=seed,
        preset=p,
        loss=r.loss,
        label_type=r.label_type,
        student_settings=settings,
    )
    opts: tuple[tuple[str, float], ...] = ()
    if r.loss == "aux_conf":
        opts = (("alpha_max", float(r.alpha_max)), ("warmup_frac", float(r.warmup_frac)))
    return TrajectoryConfig(cfg, r.name, g.student_train, g.eval_test, opts, p.trainer)


def trajectory_configs(preset: str | Preset = "ci") -> list[TrajectoryConfig]:
    """Every trajectory of ``preset``'s grid (a name or a Preset object): the long runs, then
    the remedies."""
    p = get_preset(preset)
    g = p.grid("overoptimization")
    cells = [(d, w) for d in g.datasets for w in g.weaks]
    out = [make_trajectory_config(d, w, s, p) for d, w in cells for s in g.seeds]
    out += [
        make_trajectory_config(d, w, s, p, r)
        for d, w in cells
        if w in g.remedy_weaks
        for r in g.remedies
        for s in g.remedy_seeds
    ]
    return out


# ------------------------------------------------------------------------------ one evaluation


def floored(p: Any) -> torch.Tensor:
    """``p`` as float64, projected onto the floor :data:`FLOOR` by
    :func:`w2s_utils.theory.ensure_floor` (unchanged when no entry is below it)."""
    return theory.ensure_floor(torch.as_tensor(np.asarray(p, dtype=np.float64)), FLOOR)


def trajectory_metrics(
    weak: Any,
    student: Any,
    ceiling: Any,
    labels: Any,
    *,
    weak_train: Any = None,
    student_train: Any = None,
) -> dict[str, float]:
    """The history columns of one evaluation (see the module docstring), from test predictions
    ``[N, K]`` of the three models, the gold test ``labels`` and, optionally, the weak and student
    predictions on the student's training texts (for ``eps_train``). Predictions below
    :data:`FLOOR` are mixed with the uniform distribution first."""
    w, s, c = floored(weak), floored(student), floored(ceiling)
    y = torch.as_tensor(np.array(labels, dtype=np.int64))
    iv = theory.label_free_interval(w, s, labels=y)
    acc = {n: metrics.accuracy(p, y) for n, p in (("weak", w), ("student", s), ("ceiling", c))}
    ce = {
        n: float(metrics.log_loss(p, y)) for n, p in (("weak", w), ("student", s), ("ceiling", c))
    }
    gamma = float(min(w.min(), s.min()))
    root = math.sqrt(max(iv.eps, 0.0) / 2.0)
    row = {
        "test_acc": acc["student"],
        "test_ce": ce["student"],
        "weak_acc": acc["weak"],
        "weak_ce": ce["weak"],
        "ceiling_acc": acc["ceiling"],
        "ceiling_ce": ce["ceiling"],
        "acc_gain": acc["student"] - acc["weak"],
        "gain": float(iv.gain),
        "pgr": float(metrics.pgr(acc["weak"], acc["student"], acc["ceiling"])),
        "pgr_ce": float(metrics.pgr(-ce["weak"], -ce["student"], -ce["ceiling"])),
        "eps_test": iv.eps,
        "eps_rev_test": iv.eps_rev,
        "gamma": gamma,
        "room": iv.upper,
        "gain_lower": iv.lower,
        "log_room": math.log1p(min(1.0, root) / gamma),
        "two_sided_room": root / gamma,
        "smooth_ce": metrics.smooth_ce(s[:, 1], y) if s.shape[1] == 2 else math.nan,
        "ece": metrics.ece(s, y),
    }
    if weak_train is not None and student_train is not None:
        row["eps_train"] = float(
            metrics.kl(floored(weak_train), floored(student_train), validate=False).mean()
        )
    return row


# ----------------------------------------------------------------------------- the trajectory


@dataclass
class TrajectoryPoint:
    """The student at one evaluation of a trajectory, shaped like an ``ExperimentResult`` for
    :func:`w2s_utils.analysis.paired_table` (``labels``, ``ids``, ``weak``, ``student``,
    ``ceiling``, ``config``) plus the history ``row`` and the ``rule`` that selected it."""

    config: TrajectoryConfig
    labels: np.ndarray
    ids: list[str]
    weak: np.ndarray
    student: np.ndarray
    ceiling: np.ndarray
    row: pd.Series
    rule: str = ""


@dataclass
class Trajectory:
    """A student's curve: ``history`` (one row per evaluation), the test-subset ``labels``/``ids``,
    the ``weak`` and ``ceiling`` test predictions and ``students`` ``[T, N, K]`` (the student's
    test predictions at each of the ``T`` evaluations, float32); ``cached`` whether it was read
    from the cache, ``seconds`` the wall time of this call and ``train_seconds`` that of the
    training when it ran (stored with the entry; NaN for entries stored without it)."""

    config: TrajectoryConfig
    history: pd.DataFrame
    labels: np.ndarray
    ids: list[str]
    weak: np.ndarray
    ceiling: np.ndarray
    students: np.ndarray
    cached: bool = False
    seconds: float = 0.0
    train_seconds: float = math.nan

    def at(self, index: int, rule: str = "") -> TrajectoryPoint:
        """The student at evaluation ``index`` (a row position of ``history``)."""
        return TrajectoryPoint(
            self.config,
            self.labels,
            self.ids,
            self.weak,
            self.students[index].astype(np.float64),
            self.ceiling,
            self.history.iloc[index],
            rule,
        )


def select_step(
    history: pd.DataFrame, rule: str, *, patience: int = 3, budget_epochs: float = 2.0
) -> int:
    """Row position of ``history`` that ``rule`` selects.

    - ``"final"``: the last evaluation (train to the end);
    - ``"weak_early_stop"``: what the trainer's early stopping returns with ``patience``: the
      lowest ``val_loss`` (against the *weak* labels of ``val``) up to the evaluation at which
      ``patience`` evaluations in a row failed to improve it by 1e-6 (no gold labels);
    - ``"fixed_budget"``: the last evaluation at or before ``budget_epochs`` epochs (a shorter
      budget fixed in advance; the first evaluation if none is that early);
    - ``"oracle"``: the highest gold test accuracy (ties: the earliest), the ceiling of what model
      selection could reach; it reads gold labels and is a reference, not a method.
    """
    if rule not in SELECTION_RULES:
        raise ValueError(f"rule: {rule!r} is unknown; valid rules: {', '.join(SELECTION_RULES)}")
    if len(history) == 0:
        raise ValueError("history: is empty; the trajectory has no evaluations")
    if rule == "final":
        return len(history) - 1
    if rule == "oracle":
        return int(np.argmax(history["test_acc"].to_numpy()))
    if rule == "fixed_budget":
        early = np.flatnonzero(history["epoch"].to_numpy() <= budget_epochs + 1e-9)
        return int(early[-1]) if len(early) else 0
    if patience < 1:
        raise ValueError(f"patience: must be >= 1, got {patience!r}")
    best, best_i, bad = math.inf, 0, 0
    for i, v in enumerate(history["val_loss"].to_numpy()):
        if v < best - 1e-6:
            best, best_i, bad = v, i, 0
            continue
        bad += 1
        if bad >= patience:
            break
    return best_i


def _first(n: int, total: int) -> int:
    return total if n <= 0 else min(n, total)


def trajectory_key(cfg: TrajectoryConfig) -> dict[str, Any]:
    """Cache key of a trajectory: the engine key, :data:`TRAJECTORY_VERSION` and the whole
    config (``trainer`` left out at ``"loop"``, so the keys made before the field hold)."""
    key = {**engine_key(), "trajectory_version": TRAJECTORY_VERSION, "config": cfg}
    key = json.loads(cache.canonical_json(key))
    if cfg.trainer == "loop":
        key["config"].pop("trainer")
    return key


def run_trajectory(
    cfg: TrajectoryConfig, *, use_cache: bool = True, progress: bool = False
) -> Trajectory:
    """Train (or reload) one trajectory; see the module docstring.

    A cache hit reloads the whole curve (history and per-step predictions). ``use_cache=False``
    recomputes it and the shared pieces. ``progress`` shows the training bar.
    """
    e = cfg.experiment
    validate_config(e)
    t0 = time.perf_counter()
    computed = {"flag": False}

    def compute():
        computed["flag"] = True
        inputs = run_inputs(e)
        splits = inputs.splits
        pieces = {"trainer": cfg.trainer, "refresh": not use_cache, "progress": progress}
        weak = piece_predictions(e, inputs, "weak", **pieces)
        ceil = piece_predictions(e, inputs, "ceiling", **pieces)
        n_tr = _first(cfg.student_train, len(splits.w2s_train))
        n_te = _first(cfg.eval_test, len(splits.test))
        texts = list(splits.w2s_train.texts[:n_tr])
        weak_train = weak["w2s_train"][:n_tr]
        targets = weak_train if e.label_type == "soft" else weak_train.argmax(1)
        val = None
        if len(splits.val):
            v = weak["val"] if e.label_type == "soft" else weak["val"].argmax(1)
            val = (splits.val.texts, v)
        # the same test examples for every seed: the n_te smallest stable ids (the split's order
        # depends on the seed, its content does not)
        sel = np.argsort(np.asarray(splits.test.ids), kind="stable")[:n_te]
        labels = np.asarray(splits.test.labels, dtype=np.int64)[sel]
        weak_test, ceil_test = weak["test"][sel], ceil["test"][sel]
        student = build_model(e.strong, e.mode, e.trainable_layers, inputs.n_classes)
        s = replace(e.student_settings, progress=progress)
        student.max_length = s.max_length
        test_items = student.prepare([splits.test.texts[i] for i in sel])
        train_items = student.prepare(texts)
        probs: list[np.ndarray] = []

        def hook(step: int, model) -> dict[str, float]:
            p_te = model.predict_items(test_items, s.eval_batch_size)
            p_tr = model.predict_items(train_items, s.eval_batch_size)
            probs.append(p_te.astype(np.float32))
            return trajectory_metrics(
                weak_test, p_te, ceil_test, labels, weak_train=weak_train, student_train=p_tr
            )

        _, hist = train_classifier(
            student, texts, targets, s, val=val, eval_hook=hook, loss_options=dict(cfg.loss_options)
        )
        ids_blob, ids_offsets = cache.pack_texts([splits.test.ids[i] for i in sel])
        arrays = {
            "labels": labels,
            "ids_blob": ids_blob,
            "ids_offsets": ids_offsets,
            "weak": weak_test,
            "ceiling": ceil_test,
            "students": np.stack(probs),
            **history_arrays("hist", hist),
            "train_seconds": np.array(time.perf_counter() - t0),
        }
        return arrays, {"what": "student trajectory"}

    key = trajectory_key(cfg)
    arrays, _ = cache.cached_arrays(key, "trajectories", compute, refresh=not use_cache)
    return Trajectory(
        config=cfg,
        history=history_frame("hist", arrays),
        labels=arrays["labels"],
        ids=cache.unpack_texts(arrays["ids_blob"], arrays["ids_offsets"]),
        weak=arrays["weak"],
        ceiling=arrays["ceiling"],
        students=arrays["students"],
        cached=not computed["flag"],
        seconds=time.perf_counter() - t0,
        train_seconds=float(arrays["train_seconds"]) if "train_seconds" in arrays else math.nan,
    )


def run_trajectories(
    configs: Sequence[TrajectoryConfig] | str | Preset = "ci",
    *,
    use_cache: bool = True,
    progress: bool = True,
) -> list[Trajectory]:
    """Run every trajectory of ``configs`` (or of a preset's grid, given its name or the Preset
    object), with a bar."""
    if isinstance(configs, str | Preset):
        configs = trajectory_configs(configs)
    return [
        run_trajectory(c, use_cache=use_cache)
        for c in tqdm(configs, desc="trajectories", disable=not progress, leave=False)
    ]
