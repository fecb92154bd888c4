"""Two-sided calibration bound (chapter 3) and the ECE check ECE(p) <= E|F* - p|."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, ClassVar

from w2s_utils import metrics
from w2s_utils.theory._base import (
    DEFAULT_TOL,
    _binary,
    _check_n_bins,
    _check_tol,
    _le,
    _mean,
    _probs,
    _Result,
    _same,
    _target,
)


@dataclass(frozen=True)
class CalibrationBoundResult(_Result):
    """Theorem 2: ``|smCE(p_sw) - smCE(p_w)| <= 2 E|p_sw - p_w| <= sqrt(2 eps)`` (binary).

    ``bound_abs = 2 E|p_sw - p_w|`` (the theorem's first side), ``bound_pointwise =
    2 E sqrt(KL(F_w||F_sw)/2)``, ``bound_eps = sqrt(2 eps)``, ``bound_eps_rev = sqrt(2 eps_rev)``.
    ``ece_weak``/``ece_student`` are binned ECEs (15 equal-width bins, top label) shown beside
    smCE: binned
    ECE is not Lipschitz in the predictor and carries no such guarantee.
    """

    NAME: ClassVar[str] = "Theorem 2"
    RELATION: ClassVar[str] = "|smCE(p_sw) - smCE(p_w)| <= 2 E|p_sw - p_w|"

    source: str
    smce_weak: float
    smce_student: float
    diff: float
    mean_abs: float
    eps: float
    eps_rev: float
    bound_abs: float
    bound_pointwise: float
    bound_eps: float
    bound_eps_rev: float
    ece_weak: float
    ece_student: float
    lhs: float
    rhs: float
    slack: float
    holds: bool
    tol: float


def calibration_bound(
    weak: Any,
    student: Any,
    *,
    labels: Any = None,
    f_star: Any = None,
    n_bins: int = 15,
    tol: float = DEFAULT_TOL,
) -> CalibrationBoundResult:
    """Theorem 2, two-sided calibration bound (binary; works from hard labels or from ``F*``).

    ``smCE(p) = sup_w E[w(p(X)) (Y - p(X))]`` over 1-Lipschitz ``w: [0,1] -> [-1,1]``. With
    ``labels`` it is the exact empirical smCE (:func:`w2s_utils.metrics.smooth_ce`) and the
    inequality holds exactly on the sample (same proof under the empirical measure). With
    ``f_star`` ``Y`` is replaced by ``F*(X)`` (``smCE = sup_w E[w(p)(F* - p)]``), the population
    quantity given ``F*``, again exact on the sample. Chain checked:
    ``|smCE(p_sw) - smCE(p_w)| <= 2 E|p_sw - p_w| <= 2 E sqrt(KL(F_w||F_sw)/2) <= sqrt(2 eps)``,
    and ``2 E|p_sw - p_w| <= sqrt(2 eps_rev)``.
    """
    tol = _check_tol(tol)
    n_bins = _check_n_bins(n_bins)
    weak = _binary(weak, "weak")
    student = _same(weak, "weak", _binary(student, "student"), "student")
    target, source = _target(2, weak, f_star, labels)
    pw, psw, y = weak[:, 1], student[:, 1], target[:, 1]
    # against hard labels, or against F*'s probabilities (the metrics take either)
    truth = {"labels": y.long()} if source == "labels" else {"target": y}
    smce_weak = metrics.smooth_ce(pw, **truth, validate=False)
    smce_student = metrics.smooth_ce(psw, **truth, validate=False)
    truth = {"labels": y.long()} if source == "labels" else {"target": target}
    ece_weak = metrics.ece(weak, **truth, n_bins=n_bins, validate=False)
    ece_student = metrics.ece(student, **truth, n_bins=n_bins, validate=False)
    diff = abs(smce_student - smce_weak)
    mean_abs = _mean((psw - pw).abs())
    kl_fwd = metrics.kl(weak, student, validate=False)
    eps = _mean(kl_fwd)
    eps_rev = _mean(metrics.kl(student, weak, validate=False))
    bound_abs = 2.0 * mean_abs
    bound_pointwise = 2.0 * _mean((kl_fwd / 2.0).clamp_min(0.0).sqrt())
    bound_eps = math.sqrt(2.0 * eps)
    bound_eps_rev = math.sqrt(2.0 * eps_rev)
    holds = (
        _le(diff, bound_abs, tol)
        and _le(bound_abs, bound_pointwise, tol)
        and _le(bound_pointwise, bound_eps, tol)
        and _le(bound_abs, bound_eps_rev, tol)
    )
    return CalibrationBoundResult(
        source=source,
        smce_weak=smce_weak,
        smce_student=smce_student,
        diff=diff,
        mean_abs=mean_abs,
        eps=eps,
        eps_rev=eps_rev,
        bound_abs=bound_abs,
        bound_pointwise=bound_pointwise,
        bound_eps=bound_eps,
        bound_eps_rev=bound_eps_rev,
        ece_weak=ece_weak,
        ece_student=ece_student,
        lhs=diff,
        rhs=bound_abs,
        slack=bound_abs - diff,
        holds=holds,
        tol=tol,
    )


@dataclass(frozen=True)
class EceBoundResult(_Result):
    """The always-true check ``ECE(p) <= E TV(F*, p) <= sqrt(Err(p)/2)`` (binary: E|F* - p|).

    ``ece`` is the top-label binned ECE computed against ``F*`` (bin mean of ``F*_pred`` in place
    of the hit rate); the chain holds for any binning. ``slack = mean_tv - ece``.
    """

    NAME: ClassVar[str] = "ECE check"
    RELATION: ClassVar[str] = "ECE(p) <= E TV(F*, p) <= sqrt(Err(p)/2)"

    ece: float
    mean_tv: float
    err: float
    bound_err: float
    n_bins: int
    lhs: float
    rhs: float
    slack: float
    holds: bool
    tol: float


def ece_bound(p: Any, f_star: Any, *, n_bins: int = 15, tol: float = DEFAULT_TOL) -> EceBoundResult:
    """Calibration is bounded by error (needs ``F*``; any number of classes).

    ``ECE_{F*}(p) <= E|F*_pred - p_pred| <= E TV(F*, p) <= E sqrt(KL(F*||p)/2) <= sqrt(Err(p)/2)``
    (triangle inequality inside bins, one coordinate <= TV, Pinsker, Jensen). The binary case is
    THEORY's ``ECE(p) <= E|F* - p| <= sqrt(Err/2)``. Binned ECE against hard labels is *not*
    bounded this way on a finite sample (label noise inflates it), hence ``F*``.
    """
    tol = _check_tol(tol)
    n_bins = _check_n_bins(n_bins)
    q = _probs(p, "p")
    fs = _same(q, "p", _probs(f_star, "f_star"), "f_star")
    ece = metrics.ece(q, target=fs, n_bins=n_bins, validate=False)
    mean_tv = _mean(metrics.tv(fs, q, validate=False))
    err = _mean(metrics.kl(fs, q, validate=False))
    bound_err = math.sqrt(err / 2.0) if math.isfinite(err) else math.inf
    return EceBoundResult(
        ece=ece,
        mean_tv=mean_tv,
        err=err,
        bound_err=bound_err,
        n_bins=n_bins,
        lhs=ece,
        rhs=mean_tv,
        slack=mean_tv - ece,
        holds=_le(ece, mean_tv, tol) and _le(mean_tv, bound_err, tol),
        tol=tol,
    )
