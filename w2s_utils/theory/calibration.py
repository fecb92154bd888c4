"""Two-sided calibration bounds (chapter 3; binary and multi-class smooth CE) and the ECE check
ECE(p) <= E|F* - p|. The multi-class smooth CE itself is :mod:`w2s_utils.theory.smooth_ce`."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, ClassVar

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
from w2s_utils.theory.smooth_ce import DEFAULT_MAX_MEMORY, multiclass_smooth_ce


@dataclass(frozen=True)
class CalibrationBoundResult(_Result):
    """Binary calibration bound: ``|smCE(p_sw) - smCE(p_w)| <= 2 E|p_sw - p_w| <= sqrt(2 eps)``.

    ``bound_abs = 2 E|p_sw - p_w|`` (the theorem's first side), ``bound_pointwise =
    2 E sqrt(KL(F_w||F_sw)/2)``, ``bound_eps = sqrt(2 eps)``, ``bound_eps_rev = sqrt(2 eps_rev)``.
    ``ece_weak``/``ece_student`` are binned ECEs (15 equal-width bins, top label) shown beside
    smCE: binned
    ECE is not Lipschitz in the predictor and carries no such guarantee.
    """

    NAME: ClassVar[str] = "two-sided calibration bound (smCE)"
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
    """Two-sided calibration bound (binary; works from hard labels or from ``F*``).

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
@dataclass(frozen=True)
class MulticlassCalibrationBoundResult(_Result):
    """Multi-class calibration bound: ``|smCE_K(F_sw) - smCE_K(F_w)| <= 3 E||F_sw - F_w||_1``
    (= 6 E TV), chain ``<= 6 E sqrt(KL(F_w||F_sw)/2) <= 3 sqrt(2 eps)`` (Pinsker, Jensen).

    Each ``smCE_K`` is a :class:`~w2s_utils.theory.MulticlassSmoothCE`: exact, or a certified
    bracket ``[lower, upper]``. ``lhs`` is the *largest* ``|smCE_K(F_sw) - smCE_K(F_w)|`` the two
    brackets allow (``max(upper_sw - lower_w, upper_w - lower_sw)``), so ``holds`` is a proof on
    the sample whatever the bracket widths; ``lhs_lower`` is the smallest. ``determined`` is
    False when the brackets are too wide to decide (``lhs_lower <= rhs < lhs``): then ``holds`` is
    False without the statement being refuted. ``smce_weak``/``smce_student`` are the values
    (NaN for a bracket); ``exact``: both exact (then ``lhs = lhs_lower = diff`` to round-off).
    """

    NAME: ClassVar[str] = "multi-class calibration bound (6 TV)"
    RELATION: ClassVar[str] = "|smCE_K(F_sw) - smCE_K(F_w)| <= 6 E TV(F_w, F_sw)"

    source: str
    smce_weak: float
    smce_student: float
    smce_weak_lower: float
    smce_weak_upper: float
    smce_student_lower: float
    smce_student_upper: float
    exact: bool
    method: str
    diff: float
    lhs_lower: float
    determined: bool
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
    weak: Any,
    student: Any,
    *,
    labels: Any = None,
    f_star: Any = None,
    tol: float = DEFAULT_TOL,
    method: str = "auto",
    time_limit: float | None = None,
    max_rounds: int | None = None,
    max_memory: int = DEFAULT_MAX_MEMORY,
) -> MulticlassCalibrationBoundResult:
    """The calibration bound for ``K`` classes, checked with :func:`multiclass_smooth_ce`.

    Statement: ``|smCE_K(F_sw) - smCE_K(F_w)| <= 3 E||F_sw - F_w||_1 = 6 E TV(F_w, F_sw)``.
    Proof: for any admissible ``w`` (values in ``[-1, 1]^K``, 1-Lipschitz l1 -> l-infinity),
    ``|<w(p), y - p> - <w(q), y - q>| <= ||w(p) - w(q)||_inf ||y - p||_1 + ||w(q)||_inf ||p - q||_1
    <= 2||p - q||_1 + ||p - q||_1`` since ``||y - p||_1 <= 2``; the mean over ``x`` and the
    supremum over ``w`` keep it (a difference of suprema is at most the supremum of differences).
    It holds exactly on the sample (empirical measure) against labels or ``F*``.

    What is computed: each ``smCE_K`` exactly where :func:`multiclass_smooth_ce` closes its
    bracket (``K = 2`` always; ``K > 2`` up to a few thousand points in seconds), otherwise a
    certified bracket (column generation under ``time_limit``; without one, beyond a few
    million source-sink arcs, the Sinkhorn bracket). The check then uses the side that makes it
    honest: the left-hand side is the largest difference the brackets allow, so ``holds`` means the
    inequality is verified for every pair of values in the brackets, hence for the true ones;
    ``determined`` says whether the brackets were narrow enough to decide. ``method``,
    ``time_limit``, ``max_rounds`` and ``max_memory`` are passed on to each predictor's call
    (``max_rounds``, a number of LP rounds per class, is a budget that gives the same bracket on
    every machine; ``time_limit`` one that depends on the machine's speed).
    """
    tol = _check_tol(tol)
    weak = _probs(weak, "weak")
    student = _same(weak, "weak", _probs(student, "student"), "student")
    truth = {"labels": labels} if f_star is None else {"f_star": f_star}
    _, source = _target(weak.shape[1], weak, f_star, labels)
    opts = {"method": method, "time_limit": time_limit, "max_memory": max_memory}
    sw = multiclass_smooth_ce(weak, **truth, **opts, max_rounds=max_rounds)
    ss = multiclass_smooth_ce(student, **truth, **opts, max_rounds=max_rounds)
    lhs = max(ss.upper - sw.lower, sw.upper - ss.lower, 0.0)
    lhs_lower = max(ss.lower - sw.upper, sw.lower - ss.upper, 0.0)
    exact = sw.exact and ss.exact
    tv = metrics.tv(weak, student, validate=False)
    kl_fwd = metrics.kl(weak, student, validate=False)
    eps = _mean(kl_fwd)
    bound_tv = 6.0 * _mean(tv)
    bound_pointwise = 6.0 * _mean((kl_fwd / 2.0).clamp_min(0.0).sqrt())
    bound_eps = 3.0 * math.sqrt(2.0 * eps)
    holds = (
        _le(lhs, bound_tv, tol)
        and _le(bound_tv, bound_pointwise, tol)
        and _le(bound_pointwise, bound_eps, tol)
    )
    return MulticlassCalibrationBoundResult(
        source=source,
        smce_weak=sw.value,
        smce_student=ss.value,
        smce_weak_lower=sw.lower,
        smce_weak_upper=sw.upper,
        smce_student_lower=ss.lower,
        smce_student_upper=ss.upper,
        exact=exact,
        method=sw.method,
        diff=abs(ss.value - sw.value) if exact else math.nan,
        lhs_lower=lhs_lower,
        determined=holds or not _le(lhs_lower, bound_tv, tol),
        mean_tv=_mean(tv),
        eps=eps,
        bound_tv=bound_tv,
        bound_pointwise=bound_pointwise,
        bound_eps=bound_eps,
        lhs=lhs,
        rhs=bound_tv,
        slack=bound_tv - lhs,
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
