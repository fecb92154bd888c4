"""Input validation: one home for the checks every public function runs.

Conventions (see the API contract in the book's library chapter):

- probabilities: last axis = classes; a 1-D tensor ``[N]`` is a *binary* predictor given as
  positive-class probabilities (use ``[1, K]`` for a single K-class distribution);
- labels: integer tensor ``[N]`` with values in ``0 .. n_classes - 1``.

Every check raises :class:`ValueError` whose message names the argument, says what is wrong and what
to do. Numpy arrays, lists and Python scalars are converted with :func:`as_tensor`; tensors keep
their device and (floating) dtype.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

__all__ = [
    "as_tensor",
    "as_two_class",
    "check_labels",
    "check_leading",
    "check_logits",
    "check_probs",
    "check_same_shape",
]


def as_tensor(x: Any, name: str, *, floating: bool = True) -> torch.Tensor:
    """Convert ``x`` (tensor, numpy array, list, scalar) to a tensor without moving it.

    With ``floating=True`` non-floating input becomes ``torch.get_default_dtype()``;
    floating tensors keep their dtype (float64 stays float64).
    """
    if isinstance(x, torch.Tensor):
        t = x
    else:
        try:
            a = np.asarray(x)
            if not a.flags.writeable:  # e.g. arrays loaded from the cache: torch wants to own them
                a = a.copy()
            t = torch.as_tensor(a)
        except (TypeError, ValueError, RuntimeError) as err:
            raise ValueError(
                f"{name}: cannot convert {type(x).__name__} to a tensor ({err}); "
                "pass a torch tensor or a numeric numpy array"
            ) from err
    if floating and not t.is_floating_point():
        if t.is_complex():
            raise ValueError(f"{name}: complex values are not supported; pass real numbers")
        t = t.to(torch.get_default_dtype())
    return t


def _check_nonempty(t: torch.Tensor, name: str) -> None:
    if t.numel() == 0:
        raise ValueError(f"{name}: is empty (shape {tuple(t.shape)}); pass at least one element")
    if t.dim() == 0:
        raise ValueError(
            f"{name}: is a scalar; pass a tensor [N] (binary positive-class probabilities) "
            "or [..., K]"
        )


def check_probs(p: Any, name: str = "p", atol: float = 1e-5) -> torch.Tensor:
    """Validate probabilities and return them as a floating tensor (same device).

    ``[N]``: binary positive-class probabilities, each in [0, 1]. ``[..., K]``: each row (last axis)
    a distribution: entries in [0, 1], summing to 1 within ``atol``. NaN/inf, empty input and
    scalars are rejected.
    """
    t = as_tensor(p, name)
    _check_nonempty(t, name)
    lo, hi = torch.aminmax(t.detach())
    lo_f, hi_f = float(lo), float(hi)
    if not (np.isfinite(lo_f) and np.isfinite(hi_f)):
        raise ValueError(
            f"{name}: contains NaN or inf; clean the input (e.g. check the model's logits) first"
        )
    if lo_f < 0.0 or hi_f > 1.0:
        raise ValueError(
            f"{name}: probabilities must lie in [0, 1], got values in [{lo_f:.4g}, {hi_f:.4g}]; "
            "if these are logits use the *_from_logits variant or apply softmax first"
        )
    if t.dim() >= 2:
        if t.shape[-1] < 2:
            raise ValueError(
                f"{name}: last axis (classes) has size {t.shape[-1]}; need at least 2 classes, "
                "or pass a binary predictor as a 1-D tensor [N] of positive-class probabilities"
            )
        s_lo, s_hi = torch.aminmax(t.detach().sum(dim=-1))
        dev = max(float(s_hi) - 1.0, 1.0 - float(s_lo))
        if dev > atol:
            raise ValueError(
                f"{name}: rows (last axis) must sum to 1 within {atol:g}, worst row is off by "
                f"{dev:.3g}; normalise with p / p.sum(-1, keepdim=True) or use softmax"
            )
    return t


def check_logits(z: Any, name: str = "logits") -> torch.Tensor:
    """Validate logits: finite, non-empty; ``[N]`` = binary positive-class logit, ``[..., K]``."""
    t = as_tensor(z, name)
    _check_nonempty(t, name)
    if not bool(torch.isfinite(t).all()):
        raise ValueError(f"{name}: contains NaN or inf; logits must be finite")
    if t.dim() >= 2 and t.shape[-1] < 2:
        raise ValueError(
            f"{name}: last axis (classes) has size {t.shape[-1]}; need at least 2 classes, "
            "or pass binary logits as a 1-D tensor [N]"
        )
    return t


def as_two_class(p: Any, name: str = "p", *, validate: bool = True) -> torch.Tensor:
    """Return ``[N, 2]`` probabilities from ``[N]`` positive-class ones (``[..., K]`` as is)."""
    t = check_probs(p, name) if validate else as_tensor(p, name)
    if t.dim() == 1:
        return torch.stack([1.0 - t, t], dim=-1)
    return t


def check_labels(labels: Any, n_classes: int, name: str = "labels") -> torch.Tensor:
    """Validate integer class labels in ``0 .. n_classes - 1``; returns an int64 tensor."""
    t = as_tensor(labels, name, floating=False)
    _check_nonempty(t, name)
    if t.is_floating_point():
        if not bool(torch.isfinite(t).all()) or not bool((t == t.round()).all()):
            raise ValueError(
                f"{name}: labels must be whole numbers (class indices); got non-integer values"
            )
    elif t.dtype == torch.bool:
        pass
    elif t.is_complex():
        raise ValueError(f"{name}: complex labels are not supported; pass class indices")
    t = t.long()
    lo, hi = int(t.min()), int(t.max())
    if lo < 0 or hi >= n_classes:
        raise ValueError(
            f"{name}: class indices must lie in 0..{n_classes - 1}, got values in [{lo}, {hi}]; "
            "check the label encoding"
        )
    return t


def check_same_shape(*pairs: tuple[torch.Tensor, str]) -> None:
    """Raise if the tensors (given as ``(tensor, name)`` pairs) do not all have the same shape."""
    if not pairs:
        return
    ref, ref_name = pairs[0]
    for t, name in pairs[1:]:
        if tuple(t.shape) != tuple(ref.shape):
            raise ValueError(
                f"{name}: shape {tuple(t.shape)} does not match {ref_name}'s shape "
                f"{tuple(ref.shape)}; pass predictions for the same inputs and classes"
            )


def check_leading(
    probs: torch.Tensor, labels: torch.Tensor, names: Sequence[str] = ("probs", "labels")
) -> None:
    """Raise unless ``labels`` has one entry per row of ``probs``."""
    n_rows = probs.shape[0] if probs.dim() >= 1 else 0
    if labels.dim() != 1 or labels.shape[0] != n_rows:
        raise ValueError(
            f"{names[1]}: shape {tuple(labels.shape)} does not match {names[0]}'s "
            f"{tuple(probs.shape)}; need one label per row, a 1-D tensor [N]"
        )
