"""The sharp intervals for the gain that the two predictors alone allow (chapter 2).

``gain = Err(F_w) - Err(F_sw)`` (nats; positive: the student is better than its teacher) and the
student log-ratio ``r_j(x) = log F_sw,j(x) - log F_w,j(x)``: Lemma 1 makes
``gain = E_x sum_j F*_j r_j``, so ``E_x min_j r_j <= gain <= E_x max_j r_j`` for every ground
truth (:func:`label_free_interval`, attained by :func:`worst_case_truth`). The interval that
also uses the teacher's error is :func:`~w2s_utils.theory.error_aware_interval`; the Hoeffding
term of the population statement is :func:`hoeffding_term`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
from torch import Tensor

from w2s_utils import metrics
from w2s_utils._validate import check_int, check_number
from w2s_utils.theory._base import (
    _F64,
    _LOSS_NAME,
    DEFAULT_TOL,
    _check_tol,
    _le,
    _log_ratio,
    _losses,
    _mean,
    _optional_target,
    _Result,
)

__all__ = [
    "LabelFreeIntervalPointwise",
    "LabelFreeIntervalResult",
    "hoeffding_term",
    "label_free_interval",
    "worst_case_truth",
]


@dataclass(frozen=True)
class LabelFreeIntervalPointwise:
    """Per-row terms of the label-free interval (tensors on the input's device)."""

    log_ratio: Tensor  # [N, K]: r_j = log F_sw,j - log F_w,j
    min_log_ratio: Tensor  # [N]: min_j r_j (<= 0)
    max_log_ratio: Tensor  # [N]: max_j r_j (>= 0)
    gain: Tensor | None  # [N]: sum_j F*_j r_j = KL(F*||F_w) - KL(F*||F_sw) (with a truth)


@dataclass(frozen=True)
class LabelFreeIntervalResult(_Result):
    """The sharp, label-free interval ``E min_j r_j <= gain <= E max_j r_j``.

    ``gain = Err(F_w) - Err(F_sw)``, ``r_j = log F_sw,j - log F_w,j``. ``lower``/``upper`` need
    no labels and no floor (only positive predictions); each end is attained by a point-mass
    ground truth (:func:`worst_case_truth`), and the interval contains ``[-eps, eps_rev]``
    (``contains_misfit``: the truths ``F_w`` and ``F_sw`` themselves). With a truth (``source``
    ``"f_star"`` or ``"labels"``): ``gain`` (exact, or ``CE(F_w) - CE(F_sw)`` on the labels),
    ``contains_gain``, ``fraction_used`` (``gain / upper`` if ``gain >= 0``, else
    ``gain / |lower|``: the signed share of its side of the interval, in ``[-1, 1]``, positive on
    the side of a gain) and ``position`` (``(gain - lower) / width``, in ``[0, 1]``); these are
    ``None`` without a truth (``fraction_used`` also when its side is 0 but ``gain`` is not,
    ``position`` when ``width = 0``). As ``lhs <= rhs``: ``rhs = half_width``,
    ``lhs = |gain - centre|`` with a truth, else the larger of ``|eps_rev - centre|`` and
    ``|-eps - centre|``; ``slack = rhs - lhs`` is the distance to the nearer end. ``holds``:
    ``contains_misfit`` and (with a truth) ``contains_gain``.
    """

    NAME: ClassVar[str] = "label-free interval"
    RELATION: ClassVar[str] = (
        "E min_j r_j <= gain <= E max_j r_j, containing [-eps, eps_rev] "
        "(as |gain - centre| <= half-width)"
    )

    source: str
    loss: str | None
    lower: float
    upper: float
    width: float
    centre: float
    half_width: float
    eps: float
    eps_rev: float
    gain: float | None
    loss_weak: float | None
    loss_student: float | None
    fraction_used: float | None
    position: float | None
    contains_misfit: bool
    contains_gain: bool | None
    lhs: float
    rhs: float
    slack: float
    holds: bool
    tol: float
    pointwise: LabelFreeIntervalPointwise


def _ratio(num: float, den: float) -> float | None:
    if den > 0.0:
        return num / den
    return 0.0 if num == 0.0 else None


def label_free_interval(
    weak: Any,
    student: Any,
    *,
    f_star: Any = None,
    labels: Any = None,
    tol: float = DEFAULT_TOL,
) -> LabelFreeIntervalResult:
    """The sharp interval for the gain ``Err(F_w) - Err(F_sw)`` from the two predictors alone.

    With the student log-ratio ``r_j(x) = log F_sw,j(x) - log F_w,j(x)``, Lemma 1 gives
    ``gain = E_x sum_j F*_j(x) r_j(x)``, a convex combination of the ``r_j``, so
    ``E_x min_j r_j <= gain <= E_x max_j r_j`` for every ground truth ``F*``.
    Needs strictly positive ``weak``/``student`` (no floor) and no labels; both ends are attained
    (:func:`worst_case_truth`), so no bound from ``F_w`` and ``F_sw`` alone can be tighter. Since
    ``sum_j F_w,j r_j = -KL(F_w||F_sw)`` and ``sum_j F_sw,j r_j = KL(F_sw||F_w)`` the interval
    contains ``[-eps, eps_rev]`` (and ``E min_j r_j <= 0 <= E max_j r_j``). Optionally pass one of
    ``f_star`` (exact gain) or ``labels`` (``CE(F_w) - CE(F_sw)`` on the labels; the interval
    then holds exactly on the sample) to place the measured gain inside it.
    """
    tol = _check_tol(tol)
    weak, student, lr = _log_ratio(weak, student, "the label-free interval (log F_sw / F_w)")
    target, source = _optional_target(weak, f_star, labels)
    lo_x, hi_x = lr.amin(-1), lr.amax(-1)
    lower, upper = _mean(lo_x), _mean(hi_x)
    eps = _mean(metrics.kl(weak, student, validate=False))
    eps_rev = _mean(metrics.kl(student, weak, validate=False))
    centre, half = 0.5 * (lower + upper), 0.5 * (upper - lower)
    contains_misfit = _le(lower, -eps, tol) and _le(eps_rev, upper, tol)
    gain_x = gain = teacher = loss_student = frac = position = contains_gain = None
    if target is None:
        lhs = max(abs(eps_rev - centre), abs(-eps - centre))
        slack = min(upper - eps_rev, -eps - lower)
    else:
        gain_x = (target * lr).sum(-1)
        gain = _mean(gain_x)
        loss_weak, loss_st = _losses(target, weak, student)
        teacher, loss_student = _mean(loss_weak), _mean(loss_st)
        frac = _ratio(gain, upper) if gain >= 0 else _ratio(gain, -lower)
        position = (gain - lower) / (upper - lower) if upper > lower else None
        contains_gain = _le(lower, gain, tol) and _le(gain, upper, tol)
        lhs = abs(gain - centre)
        slack = min(upper - gain, gain - lower)
    return LabelFreeIntervalResult(
        source=source,
        loss=_LOSS_NAME.get(source),
        lower=lower,
        upper=upper,
        width=upper - lower,
        centre=centre,
        half_width=half,
        eps=eps,
        eps_rev=eps_rev,
        gain=gain,
        loss_weak=teacher,
        loss_student=loss_student,
        fraction_used=frac,
        position=position,
        contains_misfit=contains_misfit,
        contains_gain=contains_gain,
        lhs=lhs,
        rhs=half,
        slack=slack,
        holds=contains_misfit and contains_gain is not False,
        tol=tol,
        pointwise=LabelFreeIntervalPointwise(lr, lo_x, hi_x, gain_x),
    )


_SIDES = ("upper", "lower")


def worst_case_truth(weak: Any, student: Any, side: str = "upper") -> Tensor:
    """The point-mass ground truth that attains an end of :func:`label_free_interval`.

    ``side="upper"``: ``F*(x)`` = the one-hot vector at ``argmax_j r_j(x)`` (``r_j = log F_sw,j -
    log F_w,j``), the truth on which the student gains the most, ``gain = E max_j r_j`` exactly;
    ``side="lower"``: at ``argmin_j r_j(x)``, the truth on which it loses the most
    (``gain = E min_j r_j``). Ties go to the first index. Returns float64 one-hot rows ``[N, K]``
    (binary ``[N]`` input gives ``[N, 2]``) on the input's device. Needs strictly positive
    predictions.
    """
    if side not in _SIDES:
        raise ValueError(f"side: must be one of {_SIDES}, got {side!r}")
    _, _, lr = _log_ratio(weak, student, "worst_case_truth (log F_sw / F_w)")
    idx = lr.argmax(-1) if side == "upper" else lr.argmin(-1)
    return torch.nn.functional.one_hot(idx, lr.shape[-1]).to(_F64)


# --------------------------------------------------------------------------- population
def hoeffding_term(gamma: float, n: int, delta: float = 0.05) -> float:
    """``log(1/gamma) sqrt(log(1/delta) / (2 n))``: the Hoeffding term of the population statement.

    For predictors floored at ``gamma`` (every entry of ``F_w`` and ``F_sw`` at least ``gamma``),
    ``max_j r_j(x)`` and ``-min_j r_j(x)`` lie in ``[0, log(1/gamma)]`` (``r_j = log F_sw,j -
    log F_w,j``; ``max_j r_j >= 0`` because ``sum_j F_w,j e^{r_j} = 1``). By Hoeffding's
    inequality, with probability at least ``1 - delta`` over ``n`` i.i.d. test inputs the
    population's ``E max_j r_j`` (the upper end of the label-free interval) is at most its test
    mean plus this term; likewise ``E min_j r_j`` is at least its test mean minus it (use
    ``delta/2`` for each to have both ends at once). Needs ``0 < gamma < 1``, an integer
    ``n >= 1`` and ``0 < delta < 1``; returns nats. The raw floor of a test set is a sample
    minimum, not such a ``gamma``: clip the predictors to a fixed floor first.
    """
    gamma = check_number(gamma, "gamma", lo=0.0, hi=1.0, lo_open=True, hi_open=True)
    n = check_int(n, "n", minimum=1)
    delta = check_number(delta, "delta", lo=0.0, hi=1.0, lo_open=True, hi_open=True)
    return math.log(1.0 / gamma) * math.sqrt(math.log(1.0 / delta) / (2.0 * n))
