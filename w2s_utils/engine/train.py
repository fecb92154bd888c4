"""The training loop: AdamW, warm-up + cosine schedule, clipping, dynamic padding, weak-label
early stopping and a per-evaluation history (the over-optimization curve).

:func:`train_classifier` drives any model with the :class:`TrainableClassifier` interface (the
torch classifiers of :mod:`w2s_utils.engine.models` have it): the model says how to turn texts
into per-example items (token ids, cached trunk states or frozen features), how to pad a batch of
items, and how to compute logits; this module owns everything else.

Model selection never looks at gold labels: early stopping watches the loss against the *weak*
labels of the validation split. Test metrics are recorded for the plots only.
"""

from __future__ import annotations

import contextlib
import math
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import pandas as pd
import torch
from tqdm.auto import tqdm

from w2s_utils.engine.losses import make_loss
from w2s_utils.metrics import cross_entropy, kl, log_loss

__all__ = [
    "EarlyStopping",
    "TrainSettings",
    "TrainableClassifier",
    "as_target_probs",
    "autocast",
    "finish_history",
    "history_row",
    "label_cross_entropy",
    "make_optimizer",
    "objective_eps",
    "seed_everything",
    "target_cross_entropy",
    "train_classifier",
    "warmup_cosine",
]


@dataclass(frozen=True)
class TrainSettings:
    """Optimisation settings of one training run (frozen: part of every cache key).

    ``epochs`` may be fractional. ``eval_every`` counts optimizer steps; ``0`` evaluates at the end
    of every epoch. ``early_stopping`` restores the evaluation with the lowest loss against the
    weak (training-signal) labels of the validation split, after ``patience`` evaluations without
    improvement. ``bf16`` autocasts on CUDA only. ``train_eps_max`` caps how many training
    examples the per-evaluation objective eps = E KL(target || student) is computed on (0: skip).
    ``eval_test`` records the gold test metrics (``test_acc``, ``test_ce``) at every evaluation
    when the caller passes a test set; off, the pipeline passes none and predicts the test set
    once, after training (one test-set pass per run instead of one per evaluation, and the same
    final predictions).
    """

    epochs: float = 2.0
    batch_size: int = 32
    lr: float = 5e-5
    weight_decay: float = 0.01
    warmup_frac: float = 0.1
    max_grad_norm: float = 1.0
    max_length: int = 48
    eval_every: int = 0
    early_stopping: bool = False
    patience: int = 3
    loss: str = "xent"
    seed: int = 0
    bf16: bool = True
    eval_batch_size: int = 256
    train_eps_max: int = 1000
    eval_test: bool = True
    progress: bool = True

    def __post_init__(self) -> None:
        checks = {
            "epochs": self.epochs > 0,
            "batch_size": self.batch_size >= 1,
            "lr": self.lr > 0,
            "weight_decay": self.weight_decay >= 0,
            "warmup_frac": 0 <= self.warmup_frac < 1,
            "max_grad_norm": self.max_grad_norm >= 0,
            "max_length": self.max_length >= 2,
            "eval_every": self.eval_every >= 0,
            "patience": self.patience >= 1,
            "eval_batch_size": self.eval_batch_size >= 1,
            "train_eps_max": self.train_eps_max >= 0,
        }
        for name, ok in checks.items():
            if not ok:
                raise ValueError(
                    f"TrainSettings: {name}={getattr(self, name)!r} is out of range; "
                    "see the TrainSettings docstring for valid values"
                )


def seed_everything(seed: int) -> None:
    """Seed Python, numpy and torch (all devices)."""
    random.seed(seed)
    np.random.seed(seed % (2**32))
    torch.manual_seed(seed)


def warmup_cosine(step: int, total: int, warmup: int) -> float:
    """Learning-rate factor: linear warm-up over ``warmup`` steps, then cosine decay to 0."""
    if warmup > 0 and step < warmup:
        return (step + 1) / warmup
    progress = (step - warmup) / max(1, total - warmup)
    return 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))


def as_target_probs(targets: Any, n_classes: int, name: str = "targets") -> np.ndarray:
    """Hard labels ``[N]`` (ints) or soft labels ``[N, K]`` -> float32 probabilities ``[N, K]``."""
    t = np.asarray(targets.cpu() if isinstance(targets, torch.Tensor) else targets)
    if t.ndim == 1 and (np.issubdtype(t.dtype, np.integer) or t.dtype == bool):
        if len(t) and (t.min() < 0 or t.max() >= n_classes):
            raise ValueError(f"{name}: class indices must lie in 0..{n_classes - 1}")
        out = np.zeros((len(t), n_classes), dtype=np.float32)
        out[np.arange(len(t)), t.astype(np.int64)] = 1.0
        return out
    t = t.astype(np.float32)
    if t.ndim == 1 and n_classes == 2:
        t = np.stack([1.0 - t, t], axis=1)
    if t.ndim != 2 or t.shape[1] != n_classes:
        raise ValueError(
            f"{name}: expected hard labels [N] or probabilities [N, {n_classes}], got shape "
            f"{t.shape}"
        )
    if not np.all(np.isfinite(t)) or t.min() < -1e-6 or np.abs(t.sum(1) - 1).max() > 1e-3:
        raise ValueError(f"{name}: rows must be probability vectors (non-negative, sum to 1)")
    return np.clip(t, 0.0, 1.0) / np.clip(t, 0.0, 1.0).sum(1, keepdims=True)


def autocast(device: torch.device, enabled: bool):
    """bf16 autocast on CUDA when ``enabled``; a no-op context elsewhere."""
    if enabled and device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()


def objective_eps(target: np.ndarray, probs: np.ndarray) -> float:
    """E KL(target || probs) in nats: the objective eps (soft-label CE minus the target entropy)."""
    t = torch.as_tensor(target, dtype=torch.float64)
    return float(kl(t, torch.as_tensor(probs, dtype=torch.float64)).mean())


def target_cross_entropy(target: np.ndarray, probs: np.ndarray) -> float:
    """E_x -sum_k target_k log probs_k in nats, probabilities clipped at 1e-12 inside the log:
    the loss against (soft or one-hot) training-signal labels ``[N, K]``."""
    p = torch.from_numpy(np.clip(probs.astype(np.float64), 1e-12, 1.0))
    t = torch.from_numpy(np.asarray(target, dtype=np.float64))
    return float(cross_entropy(t, p, validate=False).mean())


def label_cross_entropy(labels: Any, probs: np.ndarray) -> float:
    """E_x -log probs[x, label(x)] in nats against class indices ``[N]``, probabilities clipped
    at 1e-12 inside the log (the history's ``test_ce``)."""
    y = torch.from_numpy(np.asarray(labels).astype(np.int64))
    return log_loss(torch.from_numpy(np.clip(probs, 1e-12, 1.0)), y, validate=False)


def history_row(
    base: dict[str, float],
    *,
    train: tuple[np.ndarray, np.ndarray] | None = None,
    val: tuple[np.ndarray, np.ndarray] | None = None,
    test: tuple[Any, np.ndarray] | None = None,
) -> dict[str, float]:
    """One evaluation's history row: ``base`` (step, epoch, ...) plus, from ``(targets, probs)``
    pairs, ``train_eps`` (:func:`objective_eps` on training texts), ``val_loss``
    (:func:`target_cross_entropy`), ``val_acc`` (argmax agreement) and ``val_eps`` against the
    training-signal labels of ``val``, and from ``(gold labels, probs)`` of ``test`` the recorded
    ``test_acc`` and ``test_ce`` (:func:`label_cross_entropy`). Targets are ``[N, K]``
    probabilities; only the test entry reads gold labels."""
    row = dict(base)
    if train is not None:
        row["train_eps"] = objective_eps(*train)
    if val is not None:
        target, p = val
        row["val_loss"] = target_cross_entropy(target, p)
        row["val_acc"] = float((p.argmax(1) == target.argmax(1)).mean())
        row["val_eps"] = objective_eps(target, p)
    if test is not None:
        labels, p = test
        y = np.asarray(labels).astype(np.int64)
        row["test_acc"] = float((p.argmax(1) == y).mean())
        row["test_ce"] = label_cross_entropy(y, p)
    return row


class EarlyStopping:
    """Weak-label early stopping: keeps the trainable state of the evaluation with the lowest
    ``val_loss`` and says stop after ``patience`` evaluations in a row that do not improve it by
    more than 1e-6."""

    def __init__(self, patience: int) -> None:
        self.patience = patience
        self.best_loss = math.inf
        self.best_state: dict[str, torch.Tensor] | None = None
        self.bad = 0

    def update(self, val_loss: float, state: Callable[[], dict[str, torch.Tensor]]) -> bool:
        """Record one evaluation (``state()`` is called only for a new best); True = stop."""
        if val_loss < self.best_loss - 1e-6:
            self.best_loss, self.bad = val_loss, 0
            self.best_state = {k: v.detach().clone() for k, v in state().items()}
            return False
        self.bad += 1
        return self.bad >= self.patience


def finish_history(rows: list[dict[str, float]], settings: TrainSettings) -> pd.DataFrame:
    """The history frame of ``rows``; with early stopping a boolean ``selected`` column marks
    the evaluation(s) with the lowest ``val_loss`` (the restored state)."""
    history = pd.DataFrame(rows)
    if settings.early_stopping and len(history) and "val_loss" in history:
        history["selected"] = history["val_loss"] == history["val_loss"].min()
    return history


def make_optimizer(
    params: list[torch.nn.Parameter], lr: float, weight_decay: float, *, stacked: bool = False
) -> torch.optim.AdamW:
    """AdamW with weight decay on matrices only (not on biases and norms), fused when it can be.

    The fused kernel (CPU and CUDA, torch >= 2.4) updates all parameters in one pass; on the
    2-core dev box it cut MiniLM-L6's optimizer step from 64 ms to 9 ms (of ~0.5 s per step).
    ``stacked``: every parameter carries a leading run axis (:mod:`w2s_utils.engine.batched`),
    which does not count when telling matrices from vectors.
    """
    lead = int(stacked)
    decay = [p for p in params if p.dim() - lead >= 2]
    no_decay = [p for p in params if p.dim() - lead < 2]
    fused = bool(params) and all(
        p.device.type in ("cpu", "cuda") and p.is_floating_point() for p in params
    )
    groups = [
        {"params": decay, "weight_decay": weight_decay},
        {"params": no_decay, "weight_decay": 0.0},
    ]
    return torch.optim.AdamW([g for g in groups if g["params"]], lr=lr, fused=fused or None)


class TrainableClassifier(Protocol):
    """What the training loop needs from a model (the torch classifiers of the engine have it)."""

    name: str
    n_classes: int
    max_length: int
    device: torch.device

    def reset_parameters(self, seed: int) -> None: ...
    def prepare(self, texts: Sequence[str]) -> list[Any]: ...
    def collate(self, items: list[Any]) -> dict[str, torch.Tensor]: ...
    def forward_batch(self, batch: dict[str, torch.Tensor]) -> torch.Tensor: ...
    def predict_items(self, items: list[Any], batch_size: int = 256) -> np.ndarray: ...
    def trainable_parameters(self) -> list[torch.nn.Parameter]: ...
    def trainable_state(self) -> dict[str, torch.Tensor]: ...
    def load_trainable_state(self, state: dict[str, torch.Tensor]) -> None: ...
    def train_mode(self, on: bool) -> None: ...


def train_classifier(
    model: TrainableClassifier,
    texts: Sequence[str],
    targets: Any,
    settings: TrainSettings | None = None,
    *,
    val: tuple[Sequence[str], Any] | None = None,
    test: tuple[Sequence[str], Any] | None = None,
    eval_hook: Callable[[int, TrainableClassifier], dict[str, float]] | None = None,
    loss_options: dict[str, Any] | None = None,
) -> tuple[TrainableClassifier, pd.DataFrame]:
    """Train ``model`` on hard ``[N]`` or soft ``[N, K]`` targets; return it and its history.

    ``val = (texts, labels)`` are the labels of the *training signal* (the weak labels for a
    student): they drive early stopping and the logged ``val_loss``/``val_acc``/``val_eps``.
    ``test = (texts, gold_labels)`` is only recorded (``test_acc``, ``test_ce``), never used to
    select. ``eval_hook(step, model)`` may add columns to each history row. ``loss_options`` go
    to :func:`~w2s_utils.engine.losses.make_loss` (e.g. ``alpha_max`` of ``aux_conf``; callers
    that cache results must put them in their key). History columns:
    ``step, epoch, lr, train_loss, train_eps, val_loss, val_acc, val_eps, test_acc, test_ce``.
    """
    s = settings or TrainSettings()
    k = model.n_classes
    if len(texts) == 0:
        raise ValueError("train_classifier: texts is empty; need at least one training example")
    y = as_target_probs(targets, k)
    if len(y) != len(texts):
        raise ValueError(f"train_classifier: {len(texts)} texts but {len(y)} targets")
    model.max_length = s.max_length
    device = model.device
    seed_everything(s.seed)
    model.reset_parameters(s.seed)

    items = model.prepare(texts)
    val_items = val_y = None
    if val is not None:
        val_items = model.prepare(val[0])
        val_y = as_target_probs(val[1], k, "val labels")
    test_items = test_y = None
    if test is not None:
        test_items = model.prepare(test[0])
        test_y = np.asarray(test[1]).astype(np.int64)
    n = len(items)
    rng = np.random.default_rng(s.seed)
    eps_idx = rng.permutation(n)[: s.train_eps_max] if s.train_eps_max else None

    steps_per_epoch = math.ceil(n / s.batch_size)
    total = max(1, math.ceil(s.epochs * steps_per_epoch))
    warmup = int(round(s.warmup_frac * total))
    loss_fn = make_loss(s.loss, total_steps=total, **(loss_options or {}))
    params = [p for p in model.trainable_parameters() if p.requires_grad]
    opt = make_optimizer(params, s.lr, s.weight_decay)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda i: warmup_cosine(i, total, warmup))
    y_t = torch.as_tensor(y)

    rows: list[dict[str, float]] = []
    stopper = EarlyStopping(s.patience)
    running, running_n = 0.0, 0

    def evaluate(step: int) -> bool:
        """Log one history row; return True when early stopping says stop."""
        nonlocal running, running_n
        base = {
            "step": step,
            "epoch": step / steps_per_epoch,
            "lr": opt.param_groups[0]["lr"],
            "train_loss": running / running_n if running_n else math.nan,
        }
        running, running_n = 0.0, 0
        predict = model.predict_items
        row = history_row(
            base,
            train=None
            if eps_idx is None
            else (y[eps_idx], predict([items[i] for i in eps_idx], s.eval_batch_size)),
            val=None if val_items is None else (val_y, predict(val_items, s.eval_batch_size)),
            test=None if test_items is None else (test_y, predict(test_items, s.eval_batch_size)),
        )
        if eval_hook is not None:
            row.update(eval_hook(step, model))
        rows.append(row)
        if not s.early_stopping or val_items is None:
            return False
        return stopper.update(row["val_loss"], model.trainable_state)

    step, stop = 0, False
    bar = tqdm(total=total, desc=f"train {model.name}", disable=not s.progress, leave=False)
    gen = torch.Generator().manual_seed(s.seed)
    while step < total and not stop:
        order = torch.randperm(n, generator=gen).tolist()
        for start in range(0, n, s.batch_size):
            idx = order[start : start + s.batch_size]
            model.train_mode(True)
            batch = model.collate([items[i] for i in idx])
            with autocast(device, s.bf16):
                logits = model.forward_batch(batch)
            loss = loss_fn(logits.float(), y_t[idx].to(logits.device), step)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            if s.max_grad_norm > 0:
                torch.nn.utils.clip_grad_norm_(params, s.max_grad_norm)
            opt.step()
            sched.step()
            running += float(loss.detach()) * len(idx)
            running_n += len(idx)
            step += 1
            bar.update(1)
            end_of_epoch = start + s.batch_size >= n
            if (
                (s.eval_every and step % s.eval_every == 0)
                or (not s.eval_every and end_of_epoch)
                or step == total
            ):
                if not rows or rows[-1]["step"] != step:
                    stop = evaluate(step)
            if stop or step >= total:
                break
    bar.close()
    model.train_mode(False)
    if s.early_stopping and stopper.best_state is not None:
        model.load_trainable_state(stopper.best_state)
    return model, finish_history(rows, s)
