"""The KL extension (chapter 6): gain >= reverse-KL disagreement, the forward-KL identity, and how
far apart the two directions of the KL divergence are.

``gain = Err(F_w) - Err(F_sw)`` (nats; positive: the student is better), ``Err = E KL(F*||.)``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
from torch import Tensor

from w2s_utils import metrics
from w2s_utils.theory._base import (
    DEFAULT_TOL,
    _check_tol,
    _eq,
    _gain_at_least,
    _le,
    _losses,
    _mean,
    _positive,
    _probs,
    _Result,
    _same,
    _target,
)


# --------------------------------------------------------------------------- reverse KL
@dataclass(frozen=True)
class KLMisfitGainResult(_Result):
    """``gain >= eps_rev``: the reverse-KL student beats its teacher by at least their
    disagreement ``eps_rev = E KL(F_sw||F_w)`` (the misfit, student first).

    ``gain = err_weak - err_student`` (``source="f_star"``: exact; ``"labels"``: test
    cross-entropies, an estimate with standard error ``gain_se``, else ``None``);
    ``lhs = eps_rev``, ``rhs = gain``,
    ``slack = gain - eps_rev``, which equals ``E sum_j (F* - F_sw)_j log(F_sw,j / F_w,j)``: the
    directional derivative of the reverse-KL objective from ``F_sw`` towards ``F*``. It is
    ``>= 0`` at an I-projection onto a convex class containing ``F*`` (``>= -gap`` for an
    approximate one), and ``= 0`` when ``F_sw`` lies in the class's relative interior (a mixture
    with every weight ``> 0``): there the objective is stationary along ``F* - F_sw`` in both
    directions. On the boundary (some weight 0) the inequality can be strict.
    """

    NAME: ClassVar[str] = "gain >= reverse-KL misfit"
    RELATION: ClassVar[str] = "gain = Err(F_w) - Err(F_sw) >= E KL(F_sw||F_w)"

    source: str
    err_weak: float
    err_student: float
    eps_rev: float
    gain_se: float | None
    gain: float
    lhs: float
    rhs: float
    slack: float
    holds: bool
    tol: float


def kl_misfit_gain(
    weak: Any,
    student: Any,
    *,
    f_star: Any = None,
    labels: Any = None,
    tol: float = DEFAULT_TOL,
) -> KLMisfitGainResult:
    """Reverse-KL students: ``gain = Err(F_w) - Err(F_sw) >= eps_rev = E KL(F_sw||F_w)``, the
    student beats its teacher by at least their disagreement.

    Hypotheses (not checkable from the arrays): the class is convex *in probability space*,
    contains ``F*``, and ``F_sw`` is the I-projection ``argmin_F E KL(F||F_w)`` (e.g. from
    :func:`i_projection_mixture`; pass its ``gap`` as ``tol``). Without them the inequality can
    fail (:func:`find_reverse_kl_logit_counterexample`). No floor is needed: the proof (Csiszar's
    Pythagorean inequality) holds for positive predictors with arbitrarily small entries, and
    for entries that reach 0 by monotone convergence, in the extended reals. Since
    ``Err(F_sw) >= 0`` it implies ``eps_rev <= gain <= Err(F_w)``: the disagreement of a
    reverse-KL student never exceeds its teacher's error. Equality (``slack = 0``) whenever
    ``F_sw`` is in the relative interior of the class (every mixture weight ``> 0``); a student
    merely *in* the class can have ``slack > 0`` when it sits on the class's boundary.

    Pass exactly one truth. ``f_star`` (``[N, K]``): the statement itself, exact on these
    inputs. ``labels`` (class indices ``[N]``): ``gain`` is the test ``CE(F_w) - CE(F_sw)``, an
    unbiased estimate of the population gain (``H(Y|X)`` cancels), compared with the label-free
    ``eps_rev``. This is an *estimate* of the population statement, not the statement for the
    empirical distribution (a one-hot truth lies in the student's class only if the class
    interpolates the test labels); ``gain_se`` is the standard error of the test gain over the
    ``N`` examples, so a shortfall ``eps_rev - gain`` within about ``2 gain_se`` is sampling
    error, not evidence against the hypotheses.
    """
    tol = _check_tol(tol)
    weak = _probs(weak, "weak")
    student = _same(weak, "weak", _probs(student, "student"), "student")
    target, source = _target(weak.shape[-1], weak, f_star, labels)
    loss_weak, loss_student = _losses(target, weak, student)
    err_weak, err_student = _mean(loss_weak), _mean(loss_student)
    eps_rev = _mean(metrics.kl(student, weak, validate=False))
    gain_se = None
    if source == "labels":
        diff = loss_weak - loss_student
        n = diff.shape[0]
        gain_se = float(diff.std(correction=1)) / math.sqrt(n) if n > 1 else math.nan
    return KLMisfitGainResult(
        source=source,
        err_weak=err_weak,
        err_student=err_student,
        eps_rev=eps_rev,
        gain_se=gain_se,
        **_gain_at_least(err_weak, err_student, eps_rev, tol),
    )


# --------------------------------------------------------------------------- forward KL
@dataclass(frozen=True)
class ForwardKLIdentityResult(_Result):
    """``E KL(F_w||F*) = E KL(F_sw||F*) + E KL(F_w||F_sw)`` (forward-KL projection, logit-linear).

    Also reports the *non-guaranteed* ``gain >= eps`` with error measured as ``E KL(F*||.)``:
    ``gain = err_weak - err_student``, ``remark_lhs = eps``, ``remark_rhs = gain``,
    ``remark_slack = gain - eps``, ``remark_holds``.
    """

    NAME: ClassVar[str] = "forward-KL identity"
    RELATION: ClassVar[str] = "E KL(F_w||F*) = E KL(F_sw||F*) + E KL(F_w||F_sw)"

    kl_w_star: float
    kl_sw_star: float
    eps: float
    residual: float
    err_weak: float
    err_student: float
    gain: float
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
    weak: Any,
    student: Any,
    *,
    f_star: Any = None,
    labels: Any = None,
    tol: float = 1e-6,
) -> ForwardKLIdentityResult:
    """The forward-KL proposition (needs ``f_star``): exact identity when ``F* = softmax(W* phi)``
    and ``F_sw = argmin_W E KL(F_w||softmax(W phi))`` on the same features (moment matching
    ``E[phi (F_w - F_sw)^T] = 0``; see :func:`forward_kl_projection_linear`). Error is measured
    with the model first (``KL(F||F*)``). ``holds``: ``|residual| <= tol`` (relative), default 1e-6.
    The remark ``gain >= eps`` (``gain = Err(F_w) - Err(F_sw)`` with ``Err = E KL(F*||.)``) is
    reported beside it; it is not guaranteed.

    ``labels`` are refused with a ``ValueError``: ``KL(F_w||F*)`` weighs ``log F*``, which is
    infinite for a one-hot truth, and no unbiased estimate of it exists from hard labels.
    """
    tol = _check_tol(tol)
    if labels is not None:
        raise ValueError(
            "labels: the forward-KL identity needs f_star, the true class probabilities: its "
            "sides E KL(F_w||F*) and E KL(F_sw||F*) weigh log F*, infinite for a one-hot label "
            "and not estimable from hard labels; pass f_star (a planted task), or use "
            "kl_misfit_gain / label_free_interval with labels"
        )
    weak = _probs(weak, "weak")
    student = _same(weak, "weak", _probs(student, "student"), "student")
    fs, _ = _target(weak.shape[-1], weak, f_star, None)
    kl_w = _mean(metrics.kl(weak, fs, validate=False))
    kl_sw = _mean(metrics.kl(student, fs, validate=False))
    eps = _mean(metrics.kl(weak, student, validate=False))
    err_weak = _mean(metrics.kl(fs, weak, validate=False))
    err_student = _mean(metrics.kl(fs, student, validate=False))
    rhs = kl_sw + eps
    gain = err_weak - err_student
    return ForwardKLIdentityResult(
        kl_w_star=kl_w,
        kl_sw_star=kl_sw,
        eps=eps,
        residual=kl_w - rhs,
        err_weak=err_weak,
        err_student=err_student,
        gain=gain,
        remark_lhs=eps,
        remark_rhs=gain,
        remark_slack=gain - eps,
        remark_holds=_le(eps, gain, DEFAULT_TOL),
        lhs=kl_w,
        rhs=rhs,
        slack=rhs - kl_w,
        holds=_eq(kl_w, rhs, tol),
        tol=tol,
    )


# --------------------------------------------------------------------------- the two directions
@dataclass(frozen=True)
class KLDirectionGapResult(_Result):
    """``E |KL(p||q) - KL(q||p)| <= E bound``, the two KL directions agree to third order.

    Per row ``bound = min(sum_j q_j |p_j - q_j|^3, sum_j p_j |p_j - q_j|^3) / (3 m^3)`` with
    ``m = min_j min(p_j, q_j)``; ``lhs = E |kl_p_q - kl_q_p|``, ``rhs = E bound``,
    ``slack = rhs - lhs``. Also ``cubic = E ||p - q||_3^3 / (3 m_all^3)`` (``m_all`` the smallest
    entry of either tensor), a coarser form ``>= rhs``.
    """

    NAME: ClassVar[str] = "KL directions agree to third order"
    RELATION: ClassVar[str] = "E |KL(p||q) - KL(q||p)| <= E sum_j |p_j - q_j|^3 / (3 m^3)"

    kl_p_q: float
    kl_q_p: float
    mean_abs_difference: float
    cubic: float
    lhs: float
    rhs: float
    slack: float
    holds: bool
    tol: float
    pointwise: Tensor  # [N]: KL(p||q) - KL(q||p)


def kl_direction_gap(p: Any, q: Any, *, tol: float = DEFAULT_TOL) -> KLDirectionGapResult:
    """How far apart ``KL(p||q)`` and ``KL(q||p)`` are: ``O(||p - q||^3)``, with a constant.

    For strictly positive rows ``p``, ``q`` (``[N, K]`` or binary ``[N]``), with ``u_j = p_j/q_j``,
    ``KL(p||q) = sum_j q_j phi(u_j)`` and ``KL(q||p) = sum_j q_j psi(u_j)`` with ``phi(u) =
    u log u - u + 1`` and ``psi(u) = u - 1 - log u`` (the linear terms cancel since both rows sum to
    1), so ``KL(p||q) - KL(q||p) = sum_j q_j g(u_j)``, ``g(u) = (u + 1) log u - 2 (u - 1)``. Here
    ``g(1) = g'(1) = g''(1) = 0`` and ``g'''(u) = (2 - u)/u^3``, so Taylor's theorem with the
    Lagrange remainder gives ``g(u) = g'''(xi) (u - 1)^3 / 6`` for some ``xi`` between 1 and
    ``u``, and ``|g'''(xi)| <= 2 / min(1, u)^3`` (for ``xi >= 1``, ``|2 - xi|/xi^3 <= 1``; for
    ``xi < 1``, ``(2 - xi)/xi^3 <= 2/xi^3``). Hence, with ``|u_j - 1| = |p_j - q_j|/q_j`` and
    ``min(1, u_j) = min(p_j, q_j)/q_j``,

        |KL(p||q) - KL(q||p)| <= sum_j q_j |p_j - q_j|^3 / (3 min(p_j, q_j)^3),

    and, swapping the roles of ``p`` and ``q``, the same with ``p_j`` in front; the smaller of the
    two is the row's ``bound``, at most ``||p - q||_3^3 / (3 m^3)`` with ``m`` the smallest entry.
    So the two directions agree to second order: their difference is ``O(||p - q||^3)`` as
    ``p -> q`` (the constant grows as the floor ``m`` shrinks). Returns the means over rows.
    """
    tol = _check_tol(tol)
    p = _probs(p, "p")
    q = _same(p, "p", _probs(q, "q"), "q")
    _positive(p, "p", "kl_direction_gap (log p / q)")
    _positive(q, "q", "kl_direction_gap (log p / q)")
    kl_pq = metrics.kl(p, q, validate=False)
    kl_qp = metrics.kl(q, p, validate=False)
    diff = kl_pq - kl_qp
    cube = (p - q).abs() ** 3
    lo = torch.minimum(p, q) ** 3
    bound = torch.minimum((q * cube / lo).sum(-1), (p * cube / lo).sum(-1)) / 3.0
    cubic = float(cube.sum(-1).mean()) / (3.0 * float(torch.minimum(p, q).min()) ** 3)
    lhs, rhs = _mean(diff.abs()), _mean(bound)
    return KLDirectionGapResult(
        kl_p_q=_mean(kl_pq),
        kl_q_p=_mean(kl_qp),
        mean_abs_difference=lhs,
        cubic=cubic,
        lhs=lhs,
        rhs=rhs,
        slack=rhs - lhs,
        holds=_le(lhs, rhs, tol) and _le(rhs, cubic, tol),
        tol=tol,
        pointwise=diff,
    )
