"""The exact error decomposition (chapter 1, Lemma 1), in the gain convention.

``gain = Err(F_w) - Err(F_sw) = interaction - eps`` exactly, for every input: the student's gain
over its teacher is the interaction ``sum_j (F*_j - F_w,j) r_j`` minus the misfit
``eps = KL(F_w||F_sw)``, with the student log-ratio ``r_j = log F_sw,j - log F_w,j``. The
interaction must pay for the misfit.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import torch
from torch import Tensor

from w2s_utils import metrics
from w2s_utils.theory._base import (
    DEFAULT_TOL,
    _check_tol,
    _eq,
    _mean,
    _positive,
    _probs,
    _Result,
    _same,
    _target,
)


# --------------------------------------------------------------------------- the decomposition
@dataclass(frozen=True)
class DecompositionPointwise:
    """Per-row terms of the decomposition (tensors [N] on the input's device)."""

    gain: Tensor  # KL(F*||F_w) - KL(F*||F_sw)
    cross_term: Tensor  # sum_j F*_j r_j, r_j = log(F_sw,j / F_w,j)
    eps: Tensor  # KL(F_w||F_sw), the misfit (weak -> student)
    interaction: Tensor  # sum_j (F*_j - F_w,j) r_j


@dataclass(frozen=True)
class DecompositionResult(_Result):
    """Lemma 1: ``gain = Err(F_w) - Err(F_sw) = interaction - eps``, pointwise and averaged.

    ``gain`` (nats, positive: the student is better), ``eps = E KL(F_w||F_sw)``,
    ``interaction = E sum_j (F*_j - F_w,j) r_j`` and ``cross_term = E sum_j F*_j r_j`` (= gain),
    ``r_j = log F_sw,j - log F_w,j``. ``residual_first``/``residual_second`` are the largest
    pointwise relative residuals of ``gain = cross_term`` and ``cross_term = interaction - eps``;
    ``lhs``/``rhs`` the averaged ``gain`` and ``interaction - eps``.
    """

    NAME: ClassVar[str] = "error decomposition"
    RELATION: ClassVar[str] = "gain = Err(F_w) - Err(F_sw) = interaction - eps"

    err_weak: float
    err_student: float
    gain: float
    eps: float
    interaction: float
    cross_term: float
    residual_first: float
    residual_second: float
    lhs: float
    rhs: float
    slack: float
    holds: bool
    tol: float
    pointwise: DecompositionPointwise


def error_decomposition(
    weak: Any,
    student: Any,
    *,
    f_star: Any = None,
    labels: Any = None,
    tol: float = DEFAULT_TOL,
) -> DecompositionResult:
    """The exact decomposition of the student's gain over its teacher: gain = interaction - eps.

    ``KL(F*||F_w) - KL(F*||F_sw) = sum_j F*_j r_j = sum_j (F*_j - F_w,j) r_j - KL(F_w||F_sw)``
    for every x, with ``r_j = log F_sw,j - log F_w,j``: gain = interaction - misfit. ``weak``
    and ``student`` (``[N, K]``, or binary ``[N]``) must be strictly positive. Pass exactly one
    truth: ``f_star`` (``[N, K]`` ground-truth probabilities, may have zeros: the exact ``Err``)
    or ``labels`` (class indices ``[N]``: the same identity for the empirical distribution, whose
    truth is the one-hot label, so that gain = ``CE(F_w) - CE(F_sw)`` on the test set).
    """
    tol = _check_tol(tol)
    weak = _probs(weak, "weak")
    student = _same(weak, "weak", _probs(student, "student"), "student")
    fs, _ = _target(weak.shape[-1], weak, f_star, labels)
    _positive(weak, "weak", "the error decomposition (log F_sw / F_w)")
    _positive(student, "student", "the error decomposition (log F_sw / F_w)")
    log_ratio = student.log() - weak.log()
    loss_student = metrics.kl(fs, student, validate=False)
    teacher = metrics.kl(fs, weak, validate=False)
    cross = (fs * log_ratio).sum(-1)
    objective = metrics.kl(weak, student, validate=False)
    interaction = ((fs - weak) * log_ratio).sum(-1)
    gain = teacher - loss_student
    scale = torch.stack([loss_student, teacher, cross.abs(), objective, interaction.abs()]).amax(0)
    scale = scale.clamp_min(1.0)
    res1 = float(((gain - cross).abs() / scale).max())
    res2 = float(((cross - interaction + objective).abs() / scale).max())
    lhs = _mean(gain)
    rhs = _mean(interaction) - _mean(objective)
    holds = res1 <= tol and res2 <= tol and _eq(lhs, rhs, tol)
    return DecompositionResult(
        err_weak=_mean(teacher),
        err_student=_mean(loss_student),
        gain=lhs,
        eps=_mean(objective),
        interaction=_mean(interaction),
        cross_term=_mean(cross),
        residual_first=res1,
        residual_second=res2,
        lhs=lhs,
        rhs=rhs,
        slack=rhs - lhs,
        holds=holds,
        tol=tol,
        pointwise=DecompositionPointwise(gain, cross, objective, interaction),
    )
