"""Input validation: one home for the checks every public function runs.

Conventions (every public function of metrics, theory and check validates through here):

- probabilities: last axis = classes; a 1-D tensor ``[N]`` is a *binary* predictor given as
  positive-class probabilities (use ``[1, K]`` for a single K-class distribution);
- labels: integer tensor ``[N]`` with values in ``0 .. n_classes - 1``.

Every check raises :class:`ValueError` whose message names the argument, says what is wrong and what
to do. Numpy arrays, lists and Python scalars are converted with :func:`as_tensor`; tensors keep
their device and (floating) dtype.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

__all__ = [
    "as_tensor",
    "as_two_class",
    "check_finite",
    "check_int",
    "check_labels",
    "check_leading",
    "check_logits",
    "check_number",
    "check_probs",
    "check_same_shape",
    "check_seeds",
    "label_value",
    "sum_tolerance",
]

#: Half-precision inputs are computed in float32 (CPU half arithmetic is slow and too coarse for
#: logs and sums); the tolerance of the sum-to-one check follows the input's own precision.
_HALF = (torch.float16, torch.bfloat16)

#: The sum-to-one rule (:func:`sum_tolerance`): this many machine epsilons of the input's
#: precision, times sqrt(K), ...
SUM_ULPS = 64.0
#: ... and never more than this, whatever the precision and the number of classes.
SUM_TOLERANCE_CAP = 1e-2


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
    if t.is_complex():
        raise ValueError(f"{name}: complex values are not supported; pass real numbers")
    if floating and not t.is_floating_point():
        t = t.to(torch.get_default_dtype())
    if t.dtype in _HALF:
        t = t.float()
    return t


def _input_eps(x: Any) -> float:
    """Machine epsilon of the input's own floating dtype (before any upcast); 0 if not float."""
    dtype = getattr(x, "dtype", None)
    if isinstance(dtype, torch.dtype):
        return float(torch.finfo(dtype).eps) if dtype.is_floating_point else 0.0
    try:
        dt = np.dtype(dtype) if dtype is not None else None
    except TypeError:
        return 0.0
    if dt is not None and dt.kind == "f":
        return float(np.finfo(dt).eps)
    return 0.0


def sum_tolerance(eps: float, n_classes: int) -> float:
    """How far from 1 a row of ``n_classes`` probabilities stored with machine epsilon ``eps`` may
    sum: ``min(SUM_TOLERANCE_CAP, SUM_ULPS * max(eps, eps_float32) * sqrt(n_classes))``.

    The one rule of the library and the CLI. Rounding each entry of a distribution to a precision
    moves its sum by at most one unit roundoff; a softmax computed in that precision adds errors
    that grow like sqrt(K) (random rounding). 64 epsilons times sqrt(K) leaves room for both.
    Precisions finer than float32 are judged at float32's (a float64 array often holds a float32
    model's output), and the cap (0.01) bounds the rule for coarse dtypes and many classes: a
    float16 or bfloat16 row over 1,000 classes still has to sum to 1 within 0.01, never within
    more than 1. float32 and float64, K = 2: 1.1e-5; float16, any K: 0.01.
    """
    eps = max(float(eps), float(torch.finfo(torch.float32).eps))
    return min(SUM_TOLERANCE_CAP, SUM_ULPS * eps * math.sqrt(max(int(n_classes), 1)))


def _dtype_name(x: Any) -> str:
    dtype = getattr(x, "dtype", None)
    return str(dtype).removeprefix("torch.") if dtype is not None else "float64"


def _check_nonempty(t: torch.Tensor, name: str) -> None:
    if t.numel() == 0:
        raise ValueError(f"{name}: is empty (shape {tuple(t.shape)}); pass at least one element")
    if t.dim() == 0:
        raise ValueError(
            f"{name}: is a scalar; pass a tensor [N] (binary positive-class probabilities) "
            "or [..., K]"
        )


def check_probs(p: Any, name: str = "p") -> torch.Tensor:
    """Validate probabilities and return them as a floating tensor (same device).

    ``[N]``: binary positive-class probabilities, each in [0, 1]. ``[..., K]``: each row (last axis)
    a distribution: entries in [0, 1], summing to 1 within :func:`sum_tolerance` of the input's
    own dtype (before half precision is computed in float32). NaN/inf, empty input and scalars
    are rejected.
    """
    t = as_tensor(p, name)
    _check_nonempty(t, name)
    atol = sum_tolerance(_input_eps(p), t.shape[-1]) if t.dim() >= 2 else 0.0
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
                f"{name}: rows (last axis) must sum to 1 within {atol:.3g} (the tolerance of "
                f"{_dtype_name(p)} with {t.shape[-1]} classes), worst row is off by {dev:.3g}; "
                "normalise with p / p.sum(-1, keepdim=True) or use softmax"
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


def check_finite(x: Any, name: str) -> torch.Tensor:
    """A floating tensor of ``x`` (any shape, scalars allowed) that must be finite."""
    t = as_tensor(x, name)
    if t.numel() == 0:
        raise ValueError(f"{name}: is empty (shape {tuple(t.shape)}); pass at least one value")
    if not bool(torch.isfinite(t).all()):
        raise ValueError(
            f"{name}: contains NaN or inf; pass finite values (drop failed runs explicitly first)"
        )
    return t


def check_int(
    x: Any, name: str, minimum: int | None = None, maximum: int | None = None
) -> int:
    """A whole number (Python or numpy integer, not bool) in ``[minimum, maximum]``, as a Python
    ``int`` (a float such as 2.5 or 1e9 is refused, never truncated)."""
    if isinstance(x, bool | np.bool_) or not isinstance(x, int | np.integer):
        raise ValueError(f"{name}: must be an integer, got {x!r} ({type(x).__name__})")
    if minimum is not None and x < minimum:
        raise ValueError(f"{name}: must be an integer >= {minimum}, got {int(x)}")
    if maximum is not None and x > maximum:
        raise ValueError(f"{name}: must be an integer <= {maximum}, got {int(x)}")
    return int(x)


def check_number(
    x: Any,
    name: str,
    *,
    lo: float | None = None,
    hi: float | None = None,
    lo_open: bool = False,
    hi_open: bool = False,
) -> float:
    """A finite real number (Python or numpy scalar, not bool) in the given range, as ``float``."""
    if isinstance(x, bool | np.bool_) or not isinstance(x, int | float | np.integer | np.floating):
        raise ValueError(f"{name}: must be a number, got {x!r} ({type(x).__name__})")
    v = float(x)
    if not math.isfinite(v):
        raise ValueError(f"{name}: must be a finite number, got {v!r}")
    bad_lo = lo is not None and (v <= lo if lo_open else v < lo)
    bad_hi = hi is not None and (v >= hi if hi_open else v > hi)
    if bad_lo or bad_hi:
        left = "(" if lo_open else "["
        right = ")" if hi_open else "]"
        lo_s = "-inf" if lo is None else f"{lo:g}"
        hi_s = "inf" if hi is None else f"{hi:g}"
        raise ValueError(f"{name}: must lie in {left}{lo_s}, {hi_s}{right}, got {v!r}")
    return v


def label_value(value: Any, name: str) -> int:
    """One class label from a data file: a whole number (``1``, ``1.0``, ``"1"``), never ``0.7``.

    Raises ``ValueError`` naming ``name`` (e.g. ``"data.jsonl line 3: label"``) otherwise; a float
    label is never truncated to a class.
    """
    if isinstance(value, bool | np.bool_):
        return int(value)
    if isinstance(value, str):
        text = value.strip()
        try:
            value = int(text)
        except ValueError:
            try:
                value = float(text)
            except ValueError:
                raise ValueError(
                    f"{name}: {text!r} is not a class index; labels must be whole numbers "
                    "0..K-1 (map label names to integers first)"
                ) from None
    if isinstance(value, int | np.integer):
        v = int(value)
    elif isinstance(value, float | np.floating) and math.isfinite(value) and value == int(value):
        v = int(value)
    else:
        raise ValueError(
            f"{name}: {value!r} is not a class index; labels must be whole numbers 0..K-1 "
            "(a float label such as 0.7 is not truncated: round or threshold it yourself)"
        )
    if v < 0:
        raise ValueError(f"{name}: {v} is negative; labels must be class indices 0..K-1")
    return v


def check_seeds(seeds: Any, name: str = "seeds") -> tuple[int, ...]:
    """Seeds for a grid: an int count ``n`` (seeds ``0..n-1``) or a sequence of distinct ints >= 0.

    A string (which would be iterated character by character), floats, negative or duplicate seeds
    raise ``ValueError`` naming ``name``; returns the seeds as a tuple of Python ints.
    """
    if isinstance(seeds, bool | np.bool_):
        raise ValueError(f"{name}: got a bool ({seeds!r}); pass a count (int) or a list of seeds")
    if isinstance(seeds, int | np.integer):
        n = check_int(seeds, name, minimum=1)
        return tuple(range(n))
    if isinstance(seeds, str | bytes):
        raise ValueError(
            f"{name}: got the string {seeds!r}, which would be read character by character; "
            "pass a count (e.g. 3) or a list of ints (e.g. [0, 1, 2])"
        )
    if isinstance(seeds, np.ndarray):
        if seeds.ndim != 1:
            raise ValueError(f"{name}: expected a 1-D list of seeds, got shape {seeds.shape}")
        seeds = seeds.tolist()
    try:
        items = list(seeds)
    except TypeError:
        raise ValueError(
            f"{name}: expected a count (int) or a list of seeds, got {type(seeds).__name__}"
        ) from None
    if not items:
        raise ValueError(f"{name}: is empty; pass at least one seed")
    out = tuple(check_int(s, f"{name}[{i}]", minimum=0) for i, s in enumerate(items))
    dupes = sorted({s for s in out if out.count(s) > 1})
    if dupes:
        raise ValueError(
            f"{name}: duplicate seed(s) {dupes}; a repeated seed is the same run counted twice "
            "and would shrink the interval: pass distinct seeds"
        )
    return out
