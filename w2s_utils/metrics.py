"""Metrics: divergences, calibration, and weak-to-strong summaries (pure torch, device-agnostic).

Conventions
-----------
- Probabilities: last axis = classes, any leading axes are batch axes. A 1-D tensor ``[N]`` is a
  *binary* predictor given as positive-class probabilities; ``[N]`` and ``[N, 2]`` give the same
  result everywhere. Numpy input is accepted and converted; tensors stay on their device and keep
  a floating dtype (float64 stays float64).
- Divergences use natural logs (nats) and the convention 0 · log 0 = 0 (``torch.xlogy``); the
  ``*_from_logits`` variants work in log space (``log_softmax`` / ``logsigmoid``) and are stable for
  extreme logits.
- Every public function validates its input (see :mod:`w2s_utils._validate`); pass
  ``validate=False`` only from internal hot loops whose input is already checked.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from w2s_utils._validate import (
    as_tensor,
    check_labels,
    check_leading,
    check_logits,
    check_probs,
    check_same_shape,
)

__all__ = [
    "accuracy",
    "cross_entropy",
    "cross_entropy_from_logits",
    "entropy",
    "entropy_from_logits",
    "kl",
    "kl_from_logits",
    "tv",
]


# --------------------------------------------------------------------------- divergences
def _pair(p: torch.Tensor, q: torch.Tensor, validate: bool) -> tuple[torch.Tensor, torch.Tensor]:
    if validate:
        p = check_probs(p, "p")
        q = check_probs(q, "q")
        check_same_shape((p, "p"), (q, "q"))
    else:
        p, q = as_tensor(p, "p"), as_tensor(q, "q")
    if p.dtype != q.dtype:
        dt = torch.promote_types(p.dtype, q.dtype)
        p, q = p.to(dt), q.to(dt)
    return p, q


def kl(p, q, *, validate: bool = True) -> torch.Tensor:
    """KL(p ‖ q) = Σ_k p_k log(p_k / q_k) over the last axis (per row; ``inf`` where q_k = 0 < p_k).

    ``[N]`` inputs are binary positive-class probabilities (Bernoulli KL).
    """
    p, q = _pair(p, q, validate)
    if p.dim() == 1:
        pn, qn = 1.0 - p, 1.0 - q
        return (torch.xlogy(p, p) - torch.xlogy(p, q)) + (torch.xlogy(pn, pn) - torch.xlogy(pn, qn))
    return (torch.xlogy(p, p) - torch.xlogy(p, q)).sum(dim=-1)


def cross_entropy(p, q, *, validate: bool = True) -> torch.Tensor:
    """Cross-entropy H(p, q) = −Σ_k p_k log q_k over the last axis (= H(p) + KL(p ‖ q))."""
    p, q = _pair(p, q, validate)
    if p.dim() == 1:
        return -(torch.xlogy(p, q) + torch.xlogy(1.0 - p, 1.0 - q))
    return -torch.xlogy(p, q).sum(dim=-1)


def entropy(p, *, validate: bool = True) -> torch.Tensor:
    """Shannon entropy H(p) = −Σ_k p_k log p_k over the last axis (0 · log 0 = 0)."""
    p = check_probs(p, "p") if validate else as_tensor(p, "p")
    if p.dim() == 1:
        return -(torch.xlogy(p, p) + torch.xlogy(1.0 - p, 1.0 - p))
    return -torch.xlogy(p, p).sum(dim=-1)


def tv(p, q, *, validate: bool = True) -> torch.Tensor:
    """Total variation ½ Σ_k |p_k − q_k| over the last axis (binary ``[N]``: |p − q|)."""
    p, q = _pair(p, q, validate)
    if p.dim() == 1:
        return (p - q).abs()
    return 0.5 * (p - q).abs().sum(dim=-1)


def _log_probs(z: torch.Tensor) -> torch.Tensor:
    """Log-probabilities ``[..., K]`` from logits; 1-D = binary positive-class logit -> [N, 2]."""
    if z.dim() == 1:
        return torch.stack([F.logsigmoid(-z), F.logsigmoid(z)], dim=-1)
    return torch.log_softmax(z, dim=-1)


def _logit_pair(a, b, validate: bool) -> tuple[torch.Tensor, torch.Tensor]:
    if validate:
        a = check_logits(a, "p_logits")
        b = check_logits(b, "q_logits")
        check_same_shape((a, "p_logits"), (b, "q_logits"))
    else:
        a, b = as_tensor(a, "p_logits"), as_tensor(b, "q_logits")
    if a.dtype != b.dtype:
        dt = torch.promote_types(a.dtype, b.dtype)
        a, b = a.to(dt), b.to(dt)
    return _log_probs(a), _log_probs(b)


def kl_from_logits(p_logits, q_logits, *, validate: bool = True) -> torch.Tensor:
    """KL(softmax(p_logits) ‖ softmax(q_logits)) per row, computed in log space.

    1-D logits are binary positive-class logits (sigmoid).
    """
    lp, lq = _logit_pair(p_logits, q_logits, validate)
    return (lp.exp() * (lp - lq)).sum(dim=-1)


def cross_entropy_from_logits(p_logits, q_logits, *, validate: bool = True) -> torch.Tensor:
    """H(softmax(p_logits), softmax(q_logits)) per row, in log space."""
    lp, lq = _logit_pair(p_logits, q_logits, validate)
    return -(lp.exp() * lq).sum(dim=-1)


def entropy_from_logits(logits, *, validate: bool = True) -> torch.Tensor:
    """H(softmax(logits)) per row, in log space."""
    z = check_logits(logits, "logits") if validate else as_tensor(logits, "logits")
    lp = _log_probs(z)
    return -(lp.exp() * lp).sum(dim=-1)


# --------------------------------------------------------------------------- classification
def _predictions(probs: torch.Tensor) -> torch.Tensor:
    if probs.dim() == 1:
        return (probs > 0.5).long()
    return probs.argmax(dim=-1)


def _n_classes(probs: torch.Tensor) -> int:
    return 2 if probs.dim() == 1 else int(probs.shape[-1])


def _probs_labels(probs, labels, validate: bool) -> tuple[torch.Tensor, torch.Tensor]:
    if validate:
        probs = check_probs(probs, "probs")
        if probs.dim() > 2:
            raise ValueError(
                f"probs: expected [N] or [N, K], got shape {tuple(probs.shape)}; flatten the "
                "leading axes first"
            )
        labels = check_labels(labels, _n_classes(probs), "labels")
        check_leading(probs, labels)
    else:
        probs = as_tensor(probs, "probs")
        labels = as_tensor(labels, "labels", floating=False).long()
    return probs, labels.to(probs.device)


def accuracy(probs, labels, *, validate: bool = True) -> float:
    """Fraction of rows whose argmax class equals the label (binary ``[N]``: p > 0.5 means 1)."""
    probs, labels = _probs_labels(probs, labels, validate)
    return float((_predictions(probs) == labels).double().mean())
