"""The exact error decomposition (chapter 1, Lemma 1).

Student error = teacher error + misfit + interaction, exactly, for every input.
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
)


# --------------------------------------------------------------------------- Lemma 1
@dataclass(frozen=True)
class DecompositionPointwise:
    """Per-row terms of Lemma 1 (tensors [N] on the input's device)."""

    student_minus_teacher: Tensor  # KL(F*||F_sw) - KL(F*||F_w)
    cross_term: Tensor  # sum_j F*_j log(F_w,j / F_sw,j)
    eps: Tensor  # KL(F_w||F_sw), the misfit
    interaction: Tensor  # sum_j (F*_j - F_w,j) log(F_w,j / F_sw,j)


@dataclass(frozen=True)
class DecompositionResult(_Result):
    """Lemma 1: ``Err(F_sw) = Err(F_w) + eps + interaction``, pointwise and averaged.

    ``residual_first``/``residual_second`` are the largest pointwise residuals of the two
    equalities; ``lhs``/``rhs`` the averaged ``Err(F_sw) - Err(F_w)`` and ``eps + interaction``.
    """

    NAME: ClassVar[str] = "Lemma 1"
    RELATION: ClassVar[str] = "Err(F_sw) - Err(F_w) = eps + interaction"

    err_weak: float
    err_student: float
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
    f_star: Any, weak: Any, student: Any, *, tol: float = DEFAULT_TOL
) -> DecompositionResult:
    """Lemma 1 (needs ``F*``): the exact decomposition of the student's error.

    ``KL(F*||F_sw) - KL(F*||F_w) = sum_j F*_j log(F_w,j/F_sw,j)
    = KL(F_w||F_sw) + sum_j (F*_j - F_w,j) log(F_w,j/F_sw,j)`` for every x. ``F_w`` and ``F_sw``
    must be strictly positive (``F*`` may have zeros). With one-hot ``f_star`` (labels) it is the
    same identity for the empirical distribution.
    """
    tol = _check_tol(tol)
    fs = _probs(f_star, "f_star")
    weak = _same(fs, "f_star", _probs(weak, "weak"), "weak")
    student = _same(fs, "f_star", _probs(student, "student"), "student")
    _positive(weak, "weak", "Lemma 1 (log F_w / F_sw)")
    _positive(student, "student", "Lemma 1 (log F_w / F_sw)")
    log_ratio = weak.log() - student.log()
    loss_student = metrics.kl(fs, student, validate=False)
    teacher = metrics.kl(fs, weak, validate=False)
    cross = (fs * log_ratio).sum(-1)
    objective = metrics.kl(weak, student, validate=False)
    interaction = ((fs - weak) * log_ratio).sum(-1)
    diff = loss_student - teacher
    scale = torch.stack([loss_student, teacher, cross.abs(), objective, interaction.abs()]).amax(0)
    scale = scale.clamp_min(1.0)
    res1 = float(((diff - cross).abs() / scale).max())
    res2 = float(((cross - objective - interaction).abs() / scale).max())
    lhs = _mean(diff)
    rhs = _mean(objective) + _mean(interaction)
    holds = res1 <= tol and res2 <= tol and _eq(lhs, rhs, tol)
    return DecompositionResult(
        err_weak=_mean(teacher),
        err_student=_mean(loss_student),
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
        pointwise=DecompositionPointwise(diff, cross, objective, interaction),
    )
