"""Two-sided calibration bound (chapter 3) and the ECE check ECE(p) <= E|F* - p|."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import torch
from torch import Tensor

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
    chapter 3's ``ECE(p) <= E|F* - p| <= sqrt(Err/2)``. Binned ECE against hard labels is *not*
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


# --------------------------------------------------------------------------- multi-class
def multiclass_smooth_ce(probs: Any, *, labels: Any = None, f_star: Any = None) -> float:
    """Exact empirical multi-class smooth calibration error (small ``N``: an LP per class).

    ``smCE_K(F) = sup_w E <w(F(X)), Y - F(X)>`` over ``w: simplex -> [-1, 1]^K`` that are
    1-Lipschitz from the l1 to the l-infinity norm, ``Y`` one-hot (``labels``) or ``F*(X)``
    (``f_star``). The constraint is coordinatewise, ``|w_k(p) - w_k(q)| <= ||p - q||_1``, and so is
    the objective ``sum_k E[w_k (Y_k - F_k)]``: the supremum is the sum over classes of
    ``max (1/N) sum_i w_i r_ik`` subject to ``|w_i| <= 1`` and
    ``|w_i - w_j| <= ||p_i - p_j||_1`` for all pairs (McShane's extension, clipped to [-1, 1],
    extends any feasible ``w_i`` to the whole simplex, so the LP over the sample points is
    exact). ``N^2`` constraints, solved with scipy's HiGHS: meant for the random-instance checks
    (``N`` up to a few hundred), not for test sets.
    For ``K = 2`` it lies between 2 and 4 times the binary :func:`w2s_utils.metrics.smooth_ce`.
    """
    from scipy.optimize import linprog

    p = _probs(probs, "probs")
    target, _ = _target(p.shape[1], p, f_star, labels)
    resid = (target - p).numpy()
    pts = p.numpy()
    n = pts.shape[0]
    dist = np.abs(pts[:, None, :] - pts[None, :, :]).sum(-1)
    i, j = np.triu_indices(n, 1)
    rows = np.arange(len(i))
    a = np.zeros((2 * len(i), n))
    a[rows, i], a[rows, j] = 1.0, -1.0
    a[len(i) + rows, i], a[len(i) + rows, j] = -1.0, 1.0
    b = np.concatenate([dist[i, j], dist[i, j]])
    total = 0.0
    for k in range(p.shape[1]):
        res = linprog(
            -resid[:, k],
            A_ub=a if n > 1 else None,
            b_ub=b if n > 1 else None,
            bounds=(-1.0, 1.0),
            method="highs",
        )
        if res.status != 0:
            raise RuntimeError(f"multiclass_smooth_ce: HiGHS failed ({res.message})")
        total += -float(res.fun)
    return total / n


@dataclass(frozen=True)
class MulticlassCalibrationBoundResult(_Result):
    """Multi-class Theorem 2: ``|smCE_K(F_sw) - smCE_K(F_w)| <= 3 E||F_sw - F_w||_1`` (= 6 E TV).

    Chain: ``<= 6 E sqrt(KL(F_w||F_sw)/2) <= 3 sqrt(2 eps)`` (Pinsker, Jensen).
    """

    NAME: ClassVar[str] = "Theorem 2 (multi-class)"
    RELATION: ClassVar[str] = "|smCE_K(F_sw) - smCE_K(F_w)| <= 6 E TV(F_w, F_sw)"

    source: str
    smce_weak: float
    smce_student: float
    diff: float
    mean_tv: float
    eps: float
    bound_tv: float
    bound_pointwise: float
    bound_eps: float
    lhs: float
    rhs: float
    slack: float
    holds: bool
    tol: float


def multiclass_calibration_bound(
    weak: Any, student: Any, *, labels: Any = None, f_star: Any = None, tol: float = DEFAULT_TOL
) -> MulticlassCalibrationBoundResult:
    """Theorem 2 for ``K`` classes with :func:`multiclass_smooth_ce` (exact LPs; small ``N``).

    Proof: ``|<w(p), y - p> - <w(q), y - q>| <= ||w(p) - w(q)||_inf ||y - p||_1 +
    ||w(q)||_inf ||p - q||_1 <= 2||p - q||_1 + ||p - q||_1`` since ``||y - p||_1 <= 2``; take the
    supremum over ``w`` and the mean over ``x``. The checker's tolerance also absorbs the LP
    solver's (HiGHS) feasibility tolerance, so pass ``tol`` of at least ``1e-7``.
    """
    tol = _check_tol(tol)
    weak = _probs(weak, "weak")
    student = _same(weak, "weak", _probs(student, "student"), "student")
    truth = {"labels": labels} if f_star is None else {"f_star": f_star}
    _, source = _target(weak.shape[1], weak, f_star, labels)
    smce_weak = multiclass_smooth_ce(weak, **truth)
    smce_student = multiclass_smooth_ce(student, **truth)
    diff = abs(smce_student - smce_weak)
    tv = metrics.tv(weak, student, validate=False)
    kl_fwd = metrics.kl(weak, student, validate=False)
    eps = _mean(kl_fwd)
    bound_tv = 6.0 * _mean(tv)
    bound_pointwise = 6.0 * _mean((kl_fwd / 2.0).clamp_min(0.0).sqrt())
    bound_eps = 3.0 * math.sqrt(2.0 * eps)
    holds = (
        _le(diff, bound_tv, tol)
        and _le(bound_tv, bound_pointwise, tol)
        and _le(bound_pointwise, bound_eps, tol)
    )
    return MulticlassCalibrationBoundResult(
        source=source,
        smce_weak=smce_weak,
        smce_student=smce_student,
        diff=diff,
        mean_tv=_mean(tv),
        eps=eps,
        bound_tv=bound_tv,
        bound_pointwise=bound_pointwise,
        bound_eps=bound_eps,
        lhs=diff,
        rhs=bound_tv,
        slack=bound_tv - diff,
        holds=holds,
        tol=tol,
    )


# --------------------------------------------------------------------------- binned ECE escapes
@dataclass(frozen=True)
class EceEscapeInstance:
    """Two binary predictors ``delta`` apart on every input whose binned ECEs differ by ~1/2.

    ``weak`` says 1/2 everywhere; ``student`` says ``1/2 + delta`` toward the true class;
    ``f_star`` is a point mass (half the inputs of each class). All ``[n, 2]`` float64.
    """

    weak: Tensor
    student: Tensor
    f_star: Tensor
    delta: float


def binned_ece_escape(delta: float, n: int = 1000) -> EceEscapeInstance:
    """The instance on which binned ECE jumps while every Lipschitz quantity barely moves.

    ``n`` inputs (``n`` even), ``F*`` a point mass on class 1 for the first half and on class 0 for
    the second. ``weak = (1/2, 1/2)`` everywhere: one bin, mean confidence 1/2, mean hit 1/2, so
    ``ECE(weak) = 0`` and ``smCE(weak) = 0``. ``student`` puts ``1/2 + delta`` on the true class:
    ``E|p_sw - p_w| = delta``, ``eps = KL`` of order ``2 delta^2``, yet its top-label confidence
    ``1/2 + delta`` is right every time, so ``ECE(student) = 1/2 - delta`` for any binning in which
    ``1/2 + delta`` shares a bin with nothing else; ``smCE(student) = delta (1/2 - delta)``
    (exercise). ``0 < delta < 1/2``.
    """
    if not (isinstance(delta, int | float) and 0.0 < delta < 0.5):
        raise ValueError(f"delta: must lie in (0, 1/2), got {delta!r}")
    if not isinstance(n, int) or isinstance(n, bool) or n < 2 or n % 2:
        raise ValueError(f"n: must be an even integer >= 2, got {n!r}")
    half = n // 2
    y = torch.cat([torch.ones(half), torch.zeros(half)]).to(torch.float64)
    f_star = torch.stack([1.0 - y, y], dim=1)
    p1 = 0.5 + delta * (2.0 * y - 1.0)
    student = torch.stack([1.0 - p1, p1], dim=1)
    weak = torch.full((n, 2), 0.5, dtype=torch.float64)
    return EceEscapeInstance(weak=weak, student=student, f_star=f_star, delta=float(delta))
