"""The sharp interval for the gain that uses the teacher's error (chapter 2), gain convention.

``gain = Err(F_w) - Err(F_sw)`` (nats; positive: the student is better), the student log-ratio
``r_j(x) = log F_sw,j(x) - log F_w,j(x)`` and its cumulant generating function under the teacher,
``Lambda_x(s) = log sum_j F_w,j(x) e^{s r_j(x)} = log sum_j F_w,j^{1-s} F_sw,j^s``. For a budget
``e >= Err(F_w)``, every ground truth with ``Err(F_w) = E_x KL(F*(x) || F_w(x)) <= e`` has

    G_lo(e) = sup_{s>0} -(e + E_x Lambda_x(-s)) / s  <=  gain,
    gain  <=  G_hi(e) = inf_{s>0} (e + E_x Lambda_x(s)) / s,

and both ends are attained. :func:`error_aware_interval` evaluates it (with its attaining truths
and, given a truth, whether the gain lies inside); :func:`error_aware_curve` evaluates both ends
for many budgets at once.

Derivation (the upper end; the lower end is the same with ``r -> -r``). Maximise the linear ``E_x
<F*(x), r(x)>`` over truths with ``E_x KL(F*(x)||F_w(x)) <= e``: a convex programme. Its Lagrangian
dual at multiplier ``lambda > 0`` is ``lambda e + E_x sup_p [<p, r> - lambda KL(p||F_w)]`` and the
Gibbs variational principle gives the inner supremum in closed form, ``lambda Lambda_x(1/lambda)``,
attained by the tilted distribution ``p_s ∝ F_w e^{s r} = F_w^{1-s} F_sw^s`` (``s = 1/lambda``).
Weak duality (any ``s > 0``) gives ``gain <= (e + E Lambda(s))/s``; since ``F_w`` itself is
feasible with ``KL = 0``, Slater's condition holds for ``e > 0`` and the infimum is attained with
no duality gap. In ``lambda = 1/s`` the dual objective ``psi(lambda) = lambda e + lambda E
Lambda(1/lambda)`` is convex (the perspective of the convex ``Lambda``): the problem is convex in
``1/s``. Its first-order condition is ``h(s) := E_x KL(p_s(x) || F_w(x)) = e`` (``h(s) = s M'(s) -
M(s)`` with ``M = E Lambda``, and ``h'(s) = s M''(s) >= 0``): the budget binds at the tilted truth,
and there ``G_hi(e) = E <p_s, r>``, the tilted truth's gain. ``h`` rises from ``h(0) = 0`` to
``e_max = E_x -log F_w(argmax_j r_j(x))`` (the KL of the point-mass truth of the label-free
interval) as ``s -> inf``; for ``e >= e_max`` the budget is slack and ``G_hi(e) = E max_j r_j``,
the label-free end, attained by that point mass. The solver finds the root of the monotone ``h`` by
bracketing and bisection in ``log s`` (float64), and reports the dual value at the bracket (``>=
G_hi``, a valid bound) beside the tilted truth's gain (``<= G_hi``): ``gap_upper`` is the
difference, a certificate of accuracy (typically below 1e-12).

Consequences. ``e = 0``: only ``F* = F_w``, so ``gain = -eps`` at both ends. ``s = 1``: ``Lambda(1)
= log sum_j F_sw,j = 0``, so ``G_hi(e) <= e``: a student cannot gain more than its teacher's error.
``e -> inf``: the label-free interval. Hoeffding's lemma, ``Lambda_x(s) <= -s KL(F_w||F_sw) + s^2
osc(x)^2 / 8`` (``osc = max_j r_j - min_j r_j``), gives ``G_hi(e) <= -eps + sqrt(e E[osc^2] / 2)``
(minimise ``e/s - eps + s E[osc^2]/8`` over ``s``) and ``G_lo(e) >= -eps - sqrt(e E[osc^2] / 2)``:
the oscillation form (:func:`~w2s_utils.theory.oscillation_bound`) is a relaxation of this
interval. ``G_hi`` is an infimum of affine, non-decreasing functions of ``e``, hence non-decreasing
and concave; ``G_lo`` is non-increasing and convex: a better teacher leaves less room to fall and
less room to gain. On a labelled sample (one-hot empirical truth) ``Err(F_w)`` is the teacher's
test cross-entropy, exactly, and the interval holds for the empirical distribution.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
from torch import Tensor

from w2s_utils import metrics
from w2s_utils._validate import as_tensor, check_number
from w2s_utils.theory._base import (
    _LOSS_NAME,
    _check_tol,
    _le,
    _log_ratio,
    _losses,
    _mean,
    _optional_target,
    _Result,
)

__all__ = [
    "ErrorAwareCurve",
    "ErrorAwareIntervalResult",
    "error_aware_curve",
    "error_aware_interval",
]

_LOG_S = 700.0  # |log s| never leaves [-700, 700] (e^700 ~ 1e304)
_ITER = 200  # safeguarded Newton steps at most (typically 5-15)


@dataclass(frozen=True)
class _End:
    """One end for ``B`` budgets in the sign of ``r`` (the lower end: the upper end of ``-r``)."""

    value: Tensor  # [B] the end (dual value, a valid bound)
    s: Tensor  # [B] the optimal s (0 at e = 0, inf where the budget is slack)
    binds: Tensor  # [B] bool
    gap: Tensor  # [B] |dual value - the attaining truth's value|
    truth: Tensor  # [B, N, K] the attaining truths
    truth_err: Tensor  # [B] E KL(truth || F_w) of the attaining truths


def _tilt(
    weak: Tensor, log_w: Tensor, r: Tensor, d: Tensor, s: Tensor
) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """For every ``s`` ``[B]`` (finite, > 0): the tilted truths ``p_s ∝ F_w e^{s r}``
    ``[B, N, K]``, their mean ``M'(s) = E <p_s, r>``, ``h(s) = E KL(p_s || F_w)`` and
    ``s^2 M''(s) = s^2 E Var_{p_s}(r)`` (``dh / d log s``), each ``[B]``.

    ``d = r - max_j r_j``; ``L = log sum_j F_w,j e^{s d_j}`` is computed as
    ``log1p(sum_j F_w,j expm1(s d_j))`` (no cancellation for small ``s``: every term has the same
    sign) unless that sum is below -1/2, where the log-sum-exp form is accurate. Then
    ``KL(p_s||F_w) = s <p_s, d> - L`` carries an absolute error of order ``1e-16 s max|r|``, so
    ``(e - h(s)) / s`` stays accurate as ``s -> 0``."""
    z = s[:, None, None] * d
    total = (weak * torch.expm1(z)).sum(-1)
    big = total <= -0.5
    small = torch.log1p(torch.where(big, torch.zeros_like(total), total))
    lg = torch.where(big, torch.logsumexp(log_w + z, dim=-1), small)
    p = torch.exp(log_w + z - lg[..., None])
    p = (p / p.sum(-1, keepdim=True)).clamp_max(1.0)  # rows sum to 1 up to one rounding
    pz = torch.where(p > 0, p * z, torch.zeros_like(p))
    m_x = (p * r).sum(-1)
    var = (p * (r - m_x[..., None]).square()).sum(-1).mean(-1)
    h = (pz.sum(-1) - lg).mean(-1)
    return p, m_x.mean(-1), h, s.square() * var


def _end(weak: Tensor, r: Tensor, budgets: Tensor) -> _End:
    """``sup { E <F*, r> : E KL(F*||F_w) <= e }`` for every budget ``e`` of ``budgets`` ``[B]``.

    Where the budget binds (``0 < e < e_max``) the optimal ``s`` solves ``h(s) = e``, ``h``
    non-decreasing: safeguarded Newton on ``log h(e^u) = log e`` in ``u = log s``, inside a
    bracket ``[lo, hi]`` (``h(e^lo) <= e <= h(e^hi)``) that starts at ``[-700, 700]`` and shrinks
    with every evaluation; a Newton step that leaves the bracket is replaced by bisection."""
    c = r.amax(-1, keepdim=True)
    top = r == c
    restricted = weak * top
    e_max = float((-restricted.sum(-1).log()).mean())
    free = c[..., 0].mean()
    at_zero = (weak * r).sum(-1).mean()
    b = budgets.shape[0]
    value = torch.empty_like(budgets)
    s_out = torch.empty_like(budgets)
    gap = torch.zeros_like(budgets)
    truth = weak.expand(b, *weak.shape).clone()
    truth_err = torch.zeros_like(budgets)
    slack = budgets >= e_max
    zero = (budgets <= 0) & ~slack
    solve = ~slack & ~zero
    value[zero], s_out[zero] = at_zero, 0.0
    value[slack], s_out[slack] = free, math.inf
    truth[slack] = restricted / restricted.sum(-1, keepdim=True)
    truth_err[slack] = e_max
    if bool(solve.any()):
        log_w, d = weak.log(), r - c
        e = budgets[solve]
        log_e = e.log()
        lo, hi = torch.full_like(e, -_LOG_S), torch.full_like(e, _LOG_S)
        # start where h(s) ~ s^2 Var_{F_w}(r) / 2 = e (small s), inside the bracket
        var0 = float(((weak * (r - (weak * r).sum(-1, keepdim=True)).square()).sum(-1)).mean())
        u = (0.5 * (2.0 * e / max(var0, 1e-300)).log()).clamp(-_LOG_S + 1, _LOG_S - 1)
        active = torch.ones_like(e, dtype=torch.bool)
        dx_old = dx = hi - lo
        for _ in range(_ITER):
            _, _, h, dh = _tilt(weak, log_w, r, d, u.exp())
            g = torch.where(h > 0, h.log() - log_e, torch.full_like(h, -math.inf))
            lo = torch.where(g <= 0, torch.maximum(lo, u), lo)
            hi = torch.where(g >= 0, torch.minimum(hi, u), hi)
            done = (g.abs() <= 1e-14) | (hi - lo <= 1e-14 * torch.clamp_min(u.abs(), 1.0))
            active = active & ~done
            if not bool(active.any()):
                break
            newton_dx = g * h / dh  # d log h / du = dh / h
            newton = u - newton_dx
            # Newton only while it stays in the bracket and converges fast (the step at most half
            # the one before last, as in Numerical Recipes' rtsafe); else bisect
            bisect = ~torch.isfinite(newton) | (newton <= lo) | (newton >= hi)
            bisect = bisect | (2.0 * newton_dx.abs() > dx_old.abs())
            dx_old, dx = dx, torch.where(bisect, 0.5 * (hi - lo), newton_dx)
            step = torch.where(bisect, 0.5 * (lo + hi), newton)
            u = torch.where(active, step, u)
        s_star = u.exp()
        p, m, h, _ = _tilt(weak, log_w, r, d, s_star)
        dual = m + (e - h) / s_star  # = (e + E Lambda(s)) / s, computed without cancelling
        value[solve] = dual
        s_out[solve] = s_star
        gap[solve] = ((e - h) / s_star).abs()
        truth[solve] = p
        truth_err[solve] = h
    return _End(value, s_out, ~slack & ~zero, gap, truth, truth_err)


def _budgets(budgets: Any, ref: Tensor) -> Tensor:
    t = as_tensor(budgets, "budgets")
    if t.dim() > 1 or t.numel() == 0:
        raise ValueError(
            f"budgets: expected a number or a 1-D sequence of numbers, got shape {tuple(t.shape)}"
        )
    t = t.reshape(-1).to(device=ref.device, dtype=ref.dtype)
    if not bool(torch.isfinite(t).all()) or bool((t < 0).any()):
        raise ValueError(
            "budgets: every budget (a bound on the teacher's error Err(F_w), nats) must be a "
            f"finite number >= 0, got {t.tolist()}"
        )
    return t


@dataclass(frozen=True)
class ErrorAwareCurve:
    """Both ends of :func:`error_aware_interval` for many budgets (tensors ``[B]`` on the input's
    device): ``budgets`` (``e``, nats), ``lower``/``upper`` (the gain's ends), ``s_lower``/
    ``s_upper`` (optimal ``s``; 0 at ``e = 0``, ``inf`` where the budget is slack); and the
    budget-free quantities ``free_lower``/``free_upper`` (the label-free interval), ``eps``,
    ``mean_osc_sq`` (``E[osc^2]``)."""

    budgets: Tensor
    lower: Tensor
    upper: Tensor
    s_lower: Tensor
    s_upper: Tensor
    free_lower: float
    free_upper: float
    eps: float
    mean_osc_sq: float


def error_aware_curve(weak: Any, student: Any, budgets: Any) -> ErrorAwareCurve:
    """``G_lo(e)`` and ``G_hi(e)`` of :func:`error_aware_interval` for every budget ``e`` of
    ``budgets`` (a number or a 1-D sequence, each ``>= 0``), solved together (batched over the
    budgets). ``weak``, ``student``: strictly positive ``[N, K]`` (or binary ``[N]``)."""
    weak, _, r = _log_ratio(weak, student, "the error-aware interval (log F_sw / F_w)")
    b = _budgets(budgets, weak)
    up, down = _end(weak, r, b), _end(weak, -r, b)
    osc = r.amax(-1) - r.amin(-1)
    return ErrorAwareCurve(
        budgets=b,
        lower=-down.value,
        upper=up.value,
        s_lower=down.s,
        s_upper=up.s,
        free_lower=_mean(r.amin(-1)),
        free_upper=_mean(r.amax(-1)),
        eps=-_mean((weak * r).sum(-1)),
        mean_osc_sq=_mean(osc * osc),
    )


@dataclass(frozen=True)
class ErrorAwareIntervalResult(_Result):
    """The error-aware interval ``G_lo(e) <= gain <= G_hi(e)`` for truths with ``Err(F_w) <= e``.

    ``gain = Err(F_w) - Err(F_sw)``; ``budget`` is ``e`` (nats) and ``budget_source`` where it
    came from (``"given"``, or ``"f_star"``/``"labels"``: the truth's own ``Err(F_w)``, the
    teacher's test cross-entropy with labels). ``lower``/``upper`` the ends (``width``,
    ``centre``, ``half_width``); ``s_lower``/``s_upper`` the optimal ``s`` (0 at ``e = 0``,
    ``inf`` where the budget is slack); ``binds_lower``/``binds_upper`` whether the budget binds;
    ``truth_lower``/``truth_upper`` (tensors ``[N, K]``) the attaining truths: the tilted
    ``F* ∝ F_w^(1+s) F_sw^(-s)`` (lower) and ``F* ∝ F_w^(1-s) F_sw^s`` (upper) where the budget
    binds, the point mass (on the tied classes: ``F_w`` restricted to them) of the label-free
    interval where it is slack, ``F_w`` at ``e = 0``; ``err_lower``/``err_upper`` their
    ``E KL(. || F_w)`` (``= budget`` where it binds); ``gap_lower``/``gap_upper`` the solver's
    certificate (the reported end minus the attaining truth's gain, ``>= 0``).
    ``free_lower``/``free_upper``: the label-free interval (``e -> inf``); ``osc_half_width``:
    ``sqrt(e E[osc^2] / 2)``, the oscillation form's half-width around ``-eps`` (a relaxation).
    With a truth: ``gain``, ``loss_weak``, ``loss_student``, ``contains_gain``; else ``None``.
    ``lhs = |gain - centre|`` (without a truth ``|-eps - centre|``: ``F_w`` is always a feasible
    truth), ``rhs = half_width``, ``slack`` the distance to the nearer end. ``holds``: the gain
    (or ``-eps``) lies inside, the interval lies inside the label-free one and inside the
    oscillation form's, and ``upper <= budget``.
    """

    NAME: ClassVar[str] = "error-aware interval"
    RELATION: ClassVar[str] = (
        "sup_s -(e + E Lambda(-s))/s <= gain <= inf_s (e + E Lambda(s))/s for Err(F_w) <= e "
        "(as |gain - centre| <= half-width)"
    )

    source: str
    loss: str | None
    budget: float
    budget_source: str
    lower: float
    upper: float
    width: float
    centre: float
    half_width: float
    s_lower: float
    s_upper: float
    binds_lower: bool
    binds_upper: bool
    err_lower: float
    err_upper: float
    gap_lower: float
    gap_upper: float
    free_lower: float
    free_upper: float
    osc_half_width: float
    eps: float
    eps_rev: float
    gain: float | None
    loss_weak: float | None
    loss_student: float | None
    contains_gain: bool | None
    lhs: float
    rhs: float
    slack: float
    holds: bool
    tol: float
    truth_lower: Tensor
    truth_upper: Tensor


def error_aware_interval(
    weak: Any,
    student: Any,
    err_weak: float | None = None,
    *,
    f_star: Any = None,
    labels: Any = None,
    tol: float = 1e-9,
) -> ErrorAwareIntervalResult:
    """The sharp interval for ``gain = Err(F_w) - Err(F_sw)`` over truths with ``Err(F_w) <= e``.

    With ``r_j = log F_sw,j - log F_w,j`` and ``Lambda_x(s) = log sum_j F_w,j e^{s r_j}``:
    ``G_lo(e) = sup_{s>0} -(e + E Lambda(-s))/s <= gain <= G_hi(e) = inf_{s>0} (e + E Lambda(s))/s``
    for every ground truth whose teacher error ``Err(F_w) = E KL(F*||F_w)`` is at most
    ``e = err_weak``, and both ends are attained (derivation, properties and the solver: the
    module docstring). ``weak``, ``student``: strictly positive ``[N, K]`` (or binary ``[N]``)
    on any device; the expectation is the mean over rows. ``err_weak``: the budget ``e >= 0``
    (nats); ``None`` takes the truth's own ``Err(F_w)`` and then needs ``f_star`` (exact) or
    ``labels`` (the teacher's test cross-entropy: exact for the empirical distribution, whose
    truth is one-hot). With ``f_star`` or ``labels`` (at most one) the result also places the
    measured gain inside the interval; a given ``err_weak`` below that truth's ``Err(F_w)`` is
    refused (the interval is about truths within the budget). ``tol``: relative tolerance of the
    checks.
    """
    tol = _check_tol(tol)
    weak, student, r = _log_ratio(weak, student, "the error-aware interval (log F_sw / F_w)")
    target, source = _optional_target(weak, f_star, labels)
    loss_weak = loss_student = gain = None
    if target is not None:
        lw, ls = _losses(target, weak, student)
        loss_weak, loss_student = _mean(lw), _mean(ls)
        gain = _mean((target * r).sum(-1))
    if err_weak is None:
        if target is None:
            raise ValueError(
                "err_weak: pass the budget e (a bound on the teacher's error Err(F_w), nats), or "
                "a truth (f_star or labels) whose own Err(F_w) is then the budget"
            )
        budget, budget_source = float(loss_weak), source
    else:
        budget, budget_source = check_number(err_weak, "err_weak", lo=0.0), "given"
        if loss_weak is not None and not _le(loss_weak, budget, tol):
            raise ValueError(
                f"err_weak: the budget {budget:.6g} is below the truth's Err(F_w) = "
                f"{loss_weak:.6g}, so the interval does not apply to it; pass err_weak=None to "
                "use the truth's own teacher error, or a budget >= it"
            )
    b = torch.tensor([budget], dtype=weak.dtype, device=weak.device)
    up, down = _end(weak, r, b), _end(weak, -r, b)
    lower, upper = -float(down.value[0]), float(up.value[0])
    osc = r.amax(-1) - r.amin(-1)
    eps = _mean(metrics.kl(weak, student, validate=False))
    eps_rev = _mean(metrics.kl(student, weak, validate=False))
    free_lower, free_upper = _mean(r.amin(-1)), _mean(r.amax(-1))
    osc_half = math.sqrt(budget * max(_mean(osc * osc), 0.0) / 2.0)
    centre, half = 0.5 * (lower + upper), 0.5 * (upper - lower)
    inside = (
        _le(free_lower, lower, tol)
        and _le(upper, free_upper, tol)
        and _le(-eps - osc_half, lower, tol)
        and _le(upper, -eps + osc_half, tol)
        and _le(upper, budget, tol)
        and _le(lower, -eps, tol)
        and _le(-eps, upper, tol)
    )
    contains_gain = None
    if gain is None:
        lhs, slack = abs(-eps - centre), min(upper + eps, -eps - lower)
    else:
        contains_gain = _le(lower, gain, tol) and _le(gain, upper, tol)
        lhs, slack = abs(gain - centre), min(upper - gain, gain - lower)
    return ErrorAwareIntervalResult(
        source=source,
        loss=_LOSS_NAME.get(source),
        budget=budget,
        budget_source=budget_source,
        lower=lower,
        upper=upper,
        width=upper - lower,
        centre=centre,
        half_width=half,
        s_lower=float(down.s[0]),
        s_upper=float(up.s[0]),
        binds_lower=bool(down.binds[0]),
        binds_upper=bool(up.binds[0]),
        err_lower=float(down.truth_err[0]),
        err_upper=float(up.truth_err[0]),
        gap_lower=float(down.gap[0]),
        gap_upper=float(up.gap[0]),
        free_lower=free_lower,
        free_upper=free_upper,
        osc_half_width=osc_half,
        eps=eps,
        eps_rev=eps_rev,
        gain=gain,
        loss_weak=loss_weak,
        loss_student=loss_student,
        contains_gain=contains_gain,
        lhs=lhs,
        rhs=half,
        slack=slack,
        holds=inside and contains_gain is not False,
        tol=tol,
        truth_lower=down.truth[0],
        truth_upper=up.truth[0],
    )
