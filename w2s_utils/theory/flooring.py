"""Flooring probabilities: the one home of every floor the library puts under a predictor.

Two floors, each with its own meaning (say which one is used where):

- :func:`clip_to_floor` -- the reverse-KL (I-)projection onto ``{q in simplex : q_j >= gamma}``
  (water-filling ``q_j = max(gamma, t p_j)``): the closest distribution with the floor, in the
  direction ``KL(q || p)``. It moves only the rows that violate the floor and keeps the ratios of
  the entries above it. :func:`ensure_floor` applies it only where it is needed.
- :func:`mix_with_uniform` -- ``(1 - K gamma) p + gamma``: a fixed mixture with the uniform
  distribution, which moves every row (the random instances use it to build predictors with a
  floor by construction).

Plain clip-then-renormalise (``clamp(p, gamma, 1) / sum``) does *not* enforce a floor: the
division pushes clipped entries back below ``gamma``.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from w2s_utils._validate import as_two_class, check_number, check_probs

__all__ = ["clip_to_floor", "ensure_floor", "mix_with_uniform"]

_F64 = torch.float64


def _rows(p: Any, name: str) -> tuple[Tensor, bool]:
    """Validated float64 rows ``[N, K]`` (``[N]`` binary expanded) renormalised, and whether the
    input was binary ``[N]``."""
    t = check_probs(p, name)
    binary = t.dim() == 1
    q = as_two_class(t, name, validate=False).to(_F64)
    return q / q.sum(-1, keepdim=True), binary


def clip_to_floor(p: Any, gamma: float) -> Tensor:
    """The reverse-KL (I-)projection of ``p`` onto ``{q in simplex : q_j >= gamma}``.

    ``q = argmin_{q >= gamma} KL(q || p)`` row by row. The Karush--Kuhn--Tucker conditions of
    that convex problem, ``log(q_j / p_j) + 1 + lambda - mu_j = 0`` with ``mu_j >= 0`` and
    ``mu_j (q_j - gamma) = 0``, give ``q_j = max(gamma, t p_j)`` with one common ``t <= 1`` per
    row (water-filling: entries that would fall below the floor are set to ``gamma``, the others
    are scaled by ``t`` so that the row sums to 1); ``t`` is found in at most ``K`` passes. Rows
    that already satisfy the floor are returned unchanged (up to the renormalisation of the
    input). With zeros in ``p`` the projection is the limit of that of positive ``p``.

    Returns float64 (same device and shape; ``[N]`` binary stays ``[N]``) with every entry
    ``>= gamma`` exactly and rows summing to 1. Needs ``0 < gamma <= 1/K``. Note: naive
    ``clamp(p, gamma, 1)`` followed by renormalisation does *not* enforce the floor (``(0, .5,
    .5)`` with ``gamma = .1`` becomes ``(.0909, .4545, .4545)``); here it is ``(.1, .45, .45)``.
    """
    q, binary = _rows(p, "p")
    k = q.shape[-1]
    gamma = float(check_number(gamma, "gamma", lo=0.0, hi=1.0 / k, lo_open=True))
    floored = q < gamma
    for _ in range(k + 1):
        rest = torch.where(floored, torch.zeros_like(q), q).sum(-1, keepdim=True)
        n_floor = floored.sum(-1, keepdim=True).to(_F64)
        scale = (1.0 - n_floor * gamma) / rest.clamp_min(torch.finfo(_F64).tiny)
        new = floored | (scale * q < gamma)
        if bool((new == floored).all()):
            break
        floored = new
    out = torch.where(floored, torch.full_like(q, gamma), scale * q)
    out = torch.clamp_min(out, gamma)
    return out[..., 1] if binary else out


def ensure_floor(p: Any, gamma: float, *, zeros_only: bool = False) -> Tensor:
    """``p`` as float64 probabilities, projected with :func:`clip_to_floor` only when needed.

    Returned unchanged (converted to float64, same device and shape) when no entry needs the
    floor; otherwise the whole tensor is :func:`clip_to_floor` ``(p, gamma)`` (which leaves the
    rows that satisfy the floor as they are). An entry needs it when it is below ``gamma``, or,
    with ``zeros_only=True``, only when it is exactly 0: a tiny positive probability of a float32
    model is then kept as a prediction, and only underflowed zeros are lifted (the book's raw
    predictions). Needs ``0 < gamma <= 1/K``.
    """
    t = check_probs(p, "p").to(_F64)
    k = 2 if t.dim() == 1 else t.shape[-1]
    gamma = float(check_number(gamma, "gamma", lo=0.0, hi=1.0 / k, lo_open=True))
    needs = bool((t <= 0).any()) if zeros_only else float(t.min()) < gamma
    if t.dim() == 1:
        needs = needs or (bool((t >= 1).any()) if zeros_only else float(t.max()) > 1.0 - gamma)
    return clip_to_floor(t, gamma) if needs else t


def mix_with_uniform(p: Any, gamma: float) -> Tensor:
    """``(1 - K gamma) p + gamma``: every entry at least ``gamma``, every row moved.

    The mixture with the uniform distribution of weight ``K gamma`` (``K`` classes; ``[N]``
    binary input is mixed as ``[N, 2]`` and returned as ``[N]``). Unlike :func:`clip_to_floor`
    it changes rows that already satisfy the floor. Needs ``0 <= gamma <= 1/K`` (``gamma = 0``:
    ``p`` itself, as float64). Returns float64 on ``p``'s device.
    """
    t = check_probs(p, "p").to(_F64)
    k = 2 if t.dim() == 1 else t.shape[-1]
    gamma = float(check_number(gamma, "gamma", lo=0.0, hi=1.0 / k))
    return (1.0 - k * gamma) * t + gamma
