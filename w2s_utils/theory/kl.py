"""The KL extension (chapter 6): gain >= reverse-KL disagreement, and the forward-KL identity."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from w2s_utils import metrics
from w2s_utils.theory._base import (
    DEFAULT_TOL,
    MisfitGainResult,
    _check_tol,
    _eq,
    _le,
    _mean,
    _probs,
    _Result,
    _same,
)


# --------------------------------------------------------------------------- Theorem 3
@dataclass(frozen=True)
class KLMisfitGainResult(MisfitGainResult):
    """Theorem 3: ``Err(F_sw) <= Err(F_w) - E KL(F_sw||F_w)`` (gain >= disagreement).

    ``slack = rhs - lhs`` equals ``E sum_j (F* - F_sw)_j log(F_sw,j / F_w,j)``, the directional
    derivative of the reverse-KL objective towards ``F*``: >= 0 at an I-projection onto a convex
    class containing ``F*``, and >= ``-gap`` for an approximate one.
    """

    NAME: ClassVar[str] = "KL misfit-gain"
    RELATION: ClassVar[str] = "Err(F_sw) <= Err(F_w) - E KL(F_sw||F_w)"


def kl_misfit_gain(
    f_star: Any, weak: Any, student: Any, *, tol: float = DEFAULT_TOL
) -> KLMisfitGainResult:
    """Theorem 3 (needs ``F*``): reverse-KL student on a convex class beats its teacher by at least
    their disagreement ``E KL(F_sw||F_w)``.

    Hypotheses (not checkable from the arrays): the class is convex *in probability space*, contains
    ``F*``, and ``F_sw`` is the I-projection ``argmin_F E KL(F||F_w)`` (e.g. from
    :func:`i_projection_mixture`; pass its ``gap`` as ``tol``). Without them the inequality can
    fail (:func:`find_reverse_kl_logit_counterexample`).
    """
    tol = _check_tol(tol)
    fs = _probs(f_star, "f_star")
    weak = _same(fs, "f_star", _probs(weak, "weak"), "weak")
    student = _same(fs, "f_star", _probs(student, "student"), "student")
    err_weak = _mean(metrics.kl(fs, weak, validate=False))
    err_student = _mean(metrics.kl(fs, student, validate=False))
    disagreement = _mean(metrics.kl(student, weak, validate=False))
    return KLMisfitGainResult.from_errors(err_weak, err_student, disagreement, tol)


# --------------------------------------------------------------------------- forward KL
@dataclass(frozen=True)
class ForwardKLIdentityResult(_Result):
    """``E KL(F_w||F*) = E KL(F_sw||F*) + E KL(F_w||F_sw)`` (forward-KL projection, logit-linear).

    Also reports the *non-guaranteed* inequality with error measured as ``E KL(F*||.)``:
    ``remark_lhs = Err(F_sw)``, ``remark_rhs = Err(F_w) - eps``, ``remark_holds``.
    """

    NAME: ClassVar[str] = "Forward-KL identity"
    RELATION: ClassVar[str] = "E KL(F_w||F*) = E KL(F_sw||F*) + E KL(F_w||F_sw)"

    kl_w_star: float
    kl_sw_star: float
    eps: float
    residual: float
    err_weak: float
    err_student: float
    remark_lhs: float
    remark_rhs: float
    remark_slack: float
    remark_holds: bool
    lhs: float
    rhs: float
    slack: float
    holds: bool
    tol: float


def forward_kl_identity(
    f_star: Any, weak: Any, student: Any, *, tol: float = 1e-6
) -> ForwardKLIdentityResult:
    """The forward-KL proposition (needs ``F*``): exact identity when ``F* = softmax(W* phi)`` and
    ``F_sw = argmin_W E KL(F_w||softmax(W phi))`` on the same features (moment matching
    ``E[phi (F_w - F_sw)^T] = 0``; see :func:`forward_kl_projection_linear`). Error is measured
    with the model first (``KL(F||F*)``). ``holds``: ``|residual| <= tol`` (relative), default 1e-6.
    """
    tol = _check_tol(tol)
    fs = _probs(f_star, "f_star")
    weak = _same(fs, "f_star", _probs(weak, "weak"), "weak")
    student = _same(fs, "f_star", _probs(student, "student"), "student")
    kl_w = _mean(metrics.kl(weak, fs, validate=False))
    kl_sw = _mean(metrics.kl(student, fs, validate=False))
    eps = _mean(metrics.kl(weak, student, validate=False))
    err_weak = _mean(metrics.kl(fs, weak, validate=False))
    err_student = _mean(metrics.kl(fs, student, validate=False))
    rhs = kl_sw + eps
    remark_rhs = err_weak - eps
    return ForwardKLIdentityResult(
        kl_w_star=kl_w,
        kl_sw_star=kl_sw,
        eps=eps,
        residual=kl_w - rhs,
        err_weak=err_weak,
        err_student=err_student,
        remark_lhs=err_student,
        remark_rhs=remark_rhs,
        remark_slack=remark_rhs - err_student,
        remark_holds=_le(err_student, remark_rhs, DEFAULT_TOL),
        lhs=kl_w,
        rhs=rhs,
        slack=rhs - kl_w,
        holds=_eq(kl_w, rhs, tol),
        tol=tol,
    )
