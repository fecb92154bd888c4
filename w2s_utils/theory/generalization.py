"""Two-sided generalization bounds for the student (chapter 2).

The floor (clipping), Theorem 1 and its misfit-centred form.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
from torch import Tensor

from w2s_utils import metrics
from w2s_utils._validate import as_two_class, check_probs
from w2s_utils.theory._base import (
    _F64,
    _LOSS_NAME,
    DEFAULT_TOL,
    _check_tol,
    _le,
    _mean,
    _positive,
    _probs,
    _Result,
    _same,
    _target,
)


# --------------------------------------------------------------------------- gamma floor
def clip_to_floor(p: Any, gamma: float) -> Tensor:
    """Project probabilities onto ``{q in simplex : q_j >= gamma}`` keeping ratios above the floor.

    Returns float64 (same device and shape; ``[N]`` binary stays ``[N]``) with every entry
    ``>= gamma`` exactly and rows summing to 1. Note: naive ``clamp(p, gamma, 1)`` followed by
    renormalisation does *not* enforce the floor (the division pushes clipped entries back below
    ``gamma``: ``(0, .5, .5)`` with ``gamma = .1`` becomes ``(.0909, .4545, .4545)``). Here entries
    below the floor are set to ``gamma`` and the others are scaled by one common factor ``t <= 1``
    (``q_j = max(gamma, t p_j)``, ``t`` found by water-filling in at most ``K`` passes).
    Needs ``0 < gamma <= 1/K``.
    """
    t = check_probs(p, "p")
    binary = t.dim() == 1
    q = as_two_class(t, "p", validate=False).to(_F64)
    q = q / q.sum(-1, keepdim=True)
    k = q.shape[-1]
    if not (isinstance(gamma, int | float) and 0.0 < gamma <= 1.0 / k):
        raise ValueError(
            f"gamma: must lie in (0, 1/K] = (0, {1.0 / k:.4g}] for K = {k} classes, got {gamma!r}"
        )
    gamma = float(gamma)
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


def _floor(gamma: float | None, *preds: tuple[Tensor, str]) -> tuple[float, str]:
    emp = min(float(t.min()) for t, _ in preds)
    if gamma is None:
        if emp <= 0.0:
            names = ", ".join(n for t, n in preds if float(t.min()) <= 0.0)
            raise ValueError(
                f"{names}: has zero probabilities, so the gamma-floor is 0 and the bound is "
                "vacuous; clip with w2s_utils.theory.clip_to_floor(p, gamma) first"
            )
        return emp, "empirical min over x, j of F_w and F_sw"
    k = preds[0][0].shape[-1]
    if not (isinstance(gamma, int | float) and 0.0 < gamma <= 1.0 / k):
        raise ValueError(f"gamma: must lie in (0, 1/K] = (0, {1.0 / k:.4g}], got {gamma!r}")
    for t, n in preds:
        lo = float(t.min())
        if lo < gamma * (1.0 - 1e-12):
            raise ValueError(
                f"{n}: has probabilities down to {lo:.4g} < gamma = {gamma:.4g}, so the floor "
                "hypothesis fails; clip first with w2s_utils.theory.clip_to_floor(p, gamma) "
                "(or omit gamma to use the empirical floor)"
            )
    return float(gamma), "given"


# --------------------------------------------------------------------------- Theorem 1
@dataclass(frozen=True)
class GeneralizationBoundResult(_Result):
    """Theorem 1: ``|Err(F_sw) - Err(F_w)| <= E TV / gamma <= sqrt(eps/2) / gamma`` (and eps_rev).

    ``diff = Err(F_sw) - Err(F_w)`` (``source="f_star"``: exact; ``"labels"``: the difference of
    test cross-entropies). ``lower``/``upper`` bound ``diff``; ``slack = bound_tv - |diff|``.
    """

    NAME: ClassVar[str] = "Theorem 1"
    RELATION: ClassVar[str] = "|Err(F_sw) - Err(F_w)| <= E TV(F_w, F_sw) / gamma"

    source: str
    loss: str
    teacher_loss: float
    student_loss: float
    diff: float
    gamma: float
    gamma_source: str
    mean_tv: float
    eps: float
    eps_rev: float
    bound_tv: float
    bound_eps: float
    bound_eps_rev: float
    lower: float
    upper: float
    lhs: float
    rhs: float
    slack: float
    slack_eps: float
    slack_eps_rev: float
    holds: bool
    tol: float


def _losses(target: Tensor, weak: Tensor, student: Tensor) -> tuple[Tensor, Tensor]:
    """Per-row KL(target||F_w), KL(target||F_sw) (= CE for one-hot targets)."""
    return metrics.kl(target, weak, validate=False), metrics.kl(target, student, validate=False)


def generalization_bound(
    weak: Any,
    student: Any,
    *,
    f_star: Any = None,
    labels: Any = None,
    gamma: float | None = None,
    tol: float = DEFAULT_TOL,
) -> GeneralizationBoundResult:
    """Theorem 1, two-sided generalization bound (works from hard labels or from ``F*``).

    ``|Err(F_sw) - Err(F_w)| <= (1/gamma) E TV(F_w, F_sw) <= (1/gamma) sqrt(eps/2)``, and the same
    with ``eps_rev = E KL(F_sw||F_w)``. ``gamma`` defaults to the empirical floor
    ``min_{x,j}`` of both predictors; a given ``gamma`` must not exceed it (else ``ValueError``:
    clip with :func:`clip_to_floor`). Pass exactly one of ``f_star`` (``diff`` is the exact
    ``Err`` difference) or ``labels`` (``diff`` is the difference of test cross-entropies, which
    equals the ``Err`` difference in population since ``H(Y|X)`` cancels, and on the sample the
    theorem holds exactly for the empirical distribution).
    """
    tol = _check_tol(tol)
    weak = _probs(weak, "weak")
    student = _same(weak, "weak", _probs(student, "student"), "student")
    g, g_src = _floor(gamma, (weak, "weak"), (student, "student"))
    target, source = _target(weak.shape[-1], weak, f_star, labels)
    loss_weak, loss_student = _losses(target, weak, student)
    diff = _mean(loss_student) - _mean(loss_weak)
    mean_tv = _mean(metrics.tv(weak, student, validate=False))
    eps = _mean(metrics.kl(weak, student, validate=False))
    eps_rev = _mean(metrics.kl(student, weak, validate=False))
    bound_tv = mean_tv / g
    bound_eps = math.sqrt(eps / 2.0) / g
    bound_eps_rev = math.sqrt(eps_rev / 2.0) / g
    lhs = abs(diff)
    holds = (
        _le(lhs, bound_tv, tol)
        and _le(bound_tv, bound_eps, tol)
        and _le(bound_tv, bound_eps_rev, tol)
    )
    return GeneralizationBoundResult(
        source=source,
        loss=_LOSS_NAME[source],
        teacher_loss=_mean(loss_weak),
        student_loss=_mean(loss_student),
        diff=diff,
        gamma=g,
        gamma_source=g_src,
        mean_tv=mean_tv,
        eps=eps,
        eps_rev=eps_rev,
        bound_tv=bound_tv,
        bound_eps=bound_eps,
        bound_eps_rev=bound_eps_rev,
        lower=-bound_tv,
        upper=bound_tv,
        lhs=lhs,
        rhs=bound_tv,
        slack=bound_tv - lhs,
        slack_eps=bound_eps - lhs,
        slack_eps_rev=bound_eps_rev - lhs,
        holds=holds,
        tol=tol,
    )


@dataclass(frozen=True)
class MisfitCentredBoundResult(_Result):
    """Theorem 1, alternative form: ``Err(F_sw)`` within ``Err(F_w) + eps +- M sqrt(2 Err(F_w))``.

    ``value`` is the student's loss, ``lower``/``upper`` the two sides; ``slack`` the smaller of
    ``value - lower`` and ``upper - value``. With labels every ``Err`` is the test cross-entropy.
    """

    NAME: ClassVar[str] = "Theorem 1 (alt.)"
    RELATION: ClassVar[str] = "|Err(F_sw) - Err(F_w) - eps| <= M sqrt(2 Err(F_w))"

    source: str
    loss: str
    teacher_loss: float
    student_loss: float
    eps: float
    m: float
    width: float
    lower: float
    value: float
    upper: float
    lhs: float
    rhs: float
    slack: float
    holds: bool
    tol: float


def misfit_centred_bound(
    weak: Any,
    student: Any,
    *,
    f_star: Any = None,
    labels: Any = None,
    tol: float = DEFAULT_TOL,
) -> MisfitCentredBoundResult:
    """Theorem 1, alternative form, with ``M = max_{x,j} |log(F_w,j / F_sw,j)|``:

    ``Err(F_w) + eps - M sqrt(2 Err(F_w)) <= Err(F_sw) <= Err(F_w) + eps + M sqrt(2 Err(F_w))``.

    With ``f_star`` this is the statement itself. ``Err`` itself is not estimable from hard
    labels; with ``labels`` the statement is applied to the empirical distribution (ground truth =
    one-hot label), where ``Err`` *is* the test cross-entropy ``CE``: every quantity is then
    computable and the inequality holds exactly on the sample. Read as a population statement, the
    labels version replaces ``Err(F_w)`` by its upper bound ``CE(F_w) = Err(F_w) + H(Y|X)``, so the
    interval is wider by the label noise (it is loose when ``H(Y|X)`` is large).
    """
    tol = _check_tol(tol)
    weak = _probs(weak, "weak")
    student = _same(weak, "weak", _probs(student, "student"), "student")
    _positive(weak, "weak", "Theorem 1 (alt.) (M = max |log F_w / F_sw|)")
    _positive(student, "student", "Theorem 1 (alt.) (M = max |log F_w / F_sw|)")
    target, source = _target(weak.shape[-1], weak, f_star, labels)
    loss_weak_t, loss_student_t = _losses(target, weak, student)
    teacher, student_loss = _mean(loss_weak_t), _mean(loss_student_t)
    eps = _mean(metrics.kl(weak, student, validate=False))
    m = float((weak.log() - student.log()).abs().max())
    width = m * math.sqrt(2.0 * max(teacher, 0.0))
    lower, upper = teacher + eps - width, teacher + eps + width
    lhs = abs(student_loss - teacher - eps)
    return MisfitCentredBoundResult(
        source=source,
        loss=_LOSS_NAME[source],
        teacher_loss=teacher,
        student_loss=student_loss,
        eps=eps,
        m=m,
        width=width,
        lower=lower,
        value=student_loss,
        upper=upper,
        lhs=lhs,
        rhs=width,
        slack=min(student_loss - lower, upper - student_loss),
        holds=_le(lower, student_loss, tol) and _le(student_loss, upper, tol),
        tol=tol,
    )
