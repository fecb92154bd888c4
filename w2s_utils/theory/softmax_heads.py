"""How far a student on a *softmax head* (logit-linear class) can miss "gain >= disagreement"
(chapter 6): two second-order bounds.

A softmax head ``{softmax(W phi(x) + b)}`` on fixed features is convex in its parameters and in
its logits, not as a set of distributions, so the reverse-KL theorem (a class convex in
probability space) does not apply to it, and neither direction of the KL gives
``gain >= misfit`` for it. Both results below say by how much it can fail when the head's class
contains the truth ``F*`` (realizability) and the student is where its training stops:

- :func:`reverse_kl_softmax_head`: at any stationary point of ``E KL(F_sw || F_w)`` over the
  head, ``|gain - eps_rev| <= E_x[osc_j r_j(x) * KL(F_sw(x) || F*(x))]`` with ``r = log F_sw -
  log F_w``: the product of how far the student moved from its teacher and how far it still is
  from the truth.
- :func:`forward_kl_softmax_head`: ``gain - eps - rho = E g(F*, F_w) - E g(F*, F_sw)`` with
  ``g(p, q) = KL(p||q) - KL(q||p)`` and ``rho`` the residual of the forward-KL identity
  (``rho = 0`` at the forward-KL projection onto a realizable head), so ``|gain - eps - rho|`` is
  at most the two direction gaps' bounds of :func:`w2s_utils.theory.kl_direction_gap`,
  ``O(||F* - F_w||^3 + ||F* - F_sw||^3)``.

``gain = Err(F_w) - Err(F_sw)`` with ``Err = E KL(F* || .)`` (nats; positive: the student is
better); the expectation is over the rows given (the student's own training inputs for the
statements about where training stops).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from w2s_utils import metrics
from w2s_utils.theory._base import (
    DEFAULT_TOL,
    _check_tol,
    _le,
    _log_ratio,
    _mean,
    _positive,
    _Result,
    _same,
    _target,
)
from w2s_utils.theory.kl import kl_direction_gap

__all__ = [
    "ForwardKLSoftmaxHeadResult",
    "ReverseKLSoftmaxHeadResult",
    "forward_kl_softmax_head",
    "reverse_kl_softmax_head",
]


def _truth(weak, f_star):
    if f_star is None:
        raise ValueError(
            "f_star: these bounds need the true class probabilities [N, K] (a planted task or a "
            "synthetic instance); with labels only, use kl_misfit_gain"
        )
    fs, _ = _target(weak.shape[-1], weak, f_star, None)
    _positive(fs, "f_star", "the bound (KL(F_sw || F*) and log F*)")
    return fs


# --------------------------------------------------------------------------- reverse KL
@dataclass(frozen=True)
class ReverseKLSoftmaxHeadResult(_Result):
    """``|gain - eps_rev| <= E[osc_j r_j * KL(F_sw || F*)]`` for a reverse-KL stationary point on a
    realizable softmax head.

    ``gain = err_weak - err_student``, ``eps_rev = E KL(F_sw || F_w)`` (misfit, student→weak),
    ``margin = gain - eps_rev`` (the reverse-KL theorem's slack: ``>= 0`` would be "gain >=
    disagreement"), ``kl_student_star = E KL(F_sw || F*)``; ``lhs = |margin|``, ``rhs = bound =
    E[(max_j r_j - min_j r_j) KL(F_sw || F*)]``, ``slack = rhs - lhs``.
    """

    NAME: ClassVar[str] = "reverse-KL softmax head: second-order margin"
    RELATION: ClassVar[str] = "|gain - E KL(F_sw||F_w)| <= E[osc r * KL(F_sw||F*)]"

    err_weak: float
    err_student: float
    gain: float
    eps_rev: float
    margin: float
    kl_student_star: float
    bound: float
    lhs: float
    rhs: float
    slack: float
    holds: bool
    tol: float


def reverse_kl_softmax_head(
    weak: Any, student: Any, *, f_star: Any, tol: float = DEFAULT_TOL
) -> ReverseKLSoftmaxHeadResult:
    """The reverse-KL student on a softmax head misses "gain >= eps_rev" only to second order.

    Hypotheses (not checkable from the arrays): on the rows given (an empirical distribution),
    ``F_sw = softmax(W phi + b)`` is a stationary point of ``J(W, b) = E KL(F_sw || F_w)`` (no
    penalty; any stationary point, not only the global minimum), and ``F* = softmax(W* phi + b*)``
    on the same features. Then, with ``r = log F_sw - log F_w``,

        |gain - eps_rev| <= E_x[(max_j r_j - min_j r_j) * KL(F_sw || F*)].

    Proof: the derivative of ``KL(q || p)`` in the logits ``z`` is ``q_j (r_j - q.r)``, and the
    logits move towards ``F*`` along ``l = log F* - log F_sw`` (plus a per-row constant, which the
    derivative ignores), so stationarity gives ``E sum_j q_j (r_j - q.r) l_j = 0``. The margin is
    ``gain - eps_rev = E sum_j (F*_j - q_j) r_j = E sum_j q_j (e^{l_j} - 1)(r_j - q.r)``;
    subtracting the zero, ``= E sum_j q_j (e^{l_j} - 1 - l_j)(r_j - q.r)``. The weights
    ``q_j (e^{l_j} - 1 - l_j) >= 0`` sum to ``KL(q || F*)`` and ``|r_j - q.r| <= osc r``. ∎

    The inequality itself holds for any arrays that satisfy the hypotheses; on arrays that do not
    (a penalised head, an unconverged solver, a truth outside the class) it can fail, and
    ``holds`` says whether it did. All inputs ``[N, K]`` (or binary ``[N]``), strictly positive.
    """
    tol = _check_tol(tol)
    weak, student, r = _log_ratio(weak, student, "the log-ratio log F_sw - log F_w")
    fs = _truth(weak, f_star)
    err_weak = _mean(metrics.kl(fs, weak, validate=False))
    err_student = _mean(metrics.kl(fs, student, validate=False))
    eps_rev = _mean(metrics.kl(student, weak, validate=False))
    kl_s_star = metrics.kl(student, fs, validate=False)
    osc = r.max(-1).values - r.min(-1).values
    bound = _mean(osc * kl_s_star)
    gain = err_weak - err_student
    margin = gain - eps_rev
    lhs = abs(margin)
    return ReverseKLSoftmaxHeadResult(
        err_weak=err_weak,
        err_student=err_student,
        gain=gain,
        eps_rev=eps_rev,
        margin=margin,
        kl_student_star=_mean(kl_s_star),
        bound=bound,
        lhs=lhs,
        rhs=bound,
        slack=bound - lhs,
        holds=_le(lhs, bound, tol),
        tol=tol,
    )


# --------------------------------------------------------------------------- forward KL
@dataclass(frozen=True)
class ForwardKLSoftmaxHeadResult(_Result):
    """``|gain - eps - rho| <= B(F*, F_w) + B(F*, F_sw)``: the forward-KL student's miss of
    "gain >= eps" is the difference of two KL-direction gaps.

    ``gain = err_weak - err_student``; ``eps = E KL(F_w || F_sw)`` (misfit, weak→student);
    ``margin = gain - eps``; ``identity_residual = rho = E KL(F_w||F*) - E KL(F_sw||F*) - eps``
    (0 at the forward-KL projection onto a realizable softmax head); ``gap_weak`` and
    ``gap_student`` the means of ``g = KL(F*||F) - KL(F||F*)`` for ``F = F_w, F_sw``;
    ``bound_weak`` and ``bound_student`` their bounds (:func:`w2s_utils.theory.kl_direction_gap`'s
    ``rhs``). ``lhs = |margin - rho|``, ``rhs = bound = bound_weak + bound_student``.
    """

    NAME: ClassVar[str] = "forward-KL softmax head: third-order margin"
    RELATION: ClassVar[str] = "|gain - eps - rho| <= B(F*, F_w) + B(F*, F_sw)"

    err_weak: float
    err_student: float
    gain: float
    eps: float
    margin: float
    identity_residual: float
    gap_weak: float
    gap_student: float
    bound_weak: float
    bound_student: float
    bound: float
    lhs: float
    rhs: float
    slack: float
    holds: bool
    tol: float


def forward_kl_softmax_head(
    weak: Any, student: Any, *, f_star: Any, tol: float = DEFAULT_TOL
) -> ForwardKLSoftmaxHeadResult:
    """The forward-KL student's miss of "gain >= eps" (error ``E KL(F*||.)``) is a difference of
    two KL-direction gaps, hence third order in the distances to ``F*``.

    For any strictly positive ``F_w``, ``F_sw``, ``F*`` (an identity: expand the five KLs),

        gain - eps - rho = E g(F*, F_w) - E g(F*, F_sw),   g(p, q) = KL(p||q) - KL(q||p),

    with ``rho = E KL(F_w||F*) - E KL(F_sw||F*) - eps``. At the forward-KL projection onto a
    softmax head that contains ``F*`` (moment matching;
    :func:`~w2s_utils.theory.forward_kl_identity`) ``rho = 0``, so
    ``|gain - eps| <= B(F*, F_w) + B(F*, F_sw)``, where ``B`` is the proved bound of
    :func:`w2s_utils.theory.kl_direction_gap` (``E sum_j |p_j - q_j|^3 / (3 min(p_j, q_j)^3)``
    weighted as there): the failures of "gain >= eps" shrink like the cube of the distances
    to the truth. ``holds`` checks ``|gain - eps - rho| <= bound``, which is always true for
    valid inputs (a check of the arithmetic, not of hypotheses).
    """
    tol = _check_tol(tol)
    weak, student, _ = _log_ratio(weak, student, "the KL divergences of both directions")
    fs = _same(weak, "weak", _truth(weak, f_star), "f_star")
    err_weak = _mean(metrics.kl(fs, weak, validate=False))
    err_student = _mean(metrics.kl(fs, student, validate=False))
    eps = _mean(metrics.kl(weak, student, validate=False))
    rho = (
        _mean(metrics.kl(weak, fs, validate=False))
        - _mean(metrics.kl(student, fs, validate=False))
        - eps
    )
    gw = kl_direction_gap(fs, weak, tol=tol)
    gs = kl_direction_gap(fs, student, tol=tol)
    gain = err_weak - err_student
    margin = gain - eps
    lhs = abs(margin - rho)
    bound = gw.rhs + gs.rhs
    return ForwardKLSoftmaxHeadResult(
        err_weak=err_weak,
        err_student=err_student,
        gain=gain,
        eps=eps,
        margin=margin,
        identity_residual=rho,
        gap_weak=float(gw.pointwise.mean()),
        gap_student=float(gs.pointwise.mean()),
        bound_weak=gw.rhs,
        bound_student=gs.rhs,
        bound=bound,
        lhs=lhs,
        rhs=bound,
        slack=bound - lhs,
        holds=_le(lhs, bound, tol),
        tol=tol,
    )
