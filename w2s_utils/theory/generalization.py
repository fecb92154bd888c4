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
from w2s_utils._validate import as_two_class, check_number, check_probs
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
    gamma = check_number(gamma, "gamma", lo=0.0, hi=1.0 / k, lo_open=True)
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
    gamma = check_number(gamma, "gamma", lo=0.0, hi=1.0 / k, lo_open=True)
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
    loss_weak: float
    loss_student: float
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
    bound_eps = math.sqrt(max(eps, 0.0) / 2.0) / g  # max: eps ~ -1e-17 from rounding
    bound_eps_rev = math.sqrt(max(eps_rev, 0.0) / 2.0) / g
    lhs = abs(diff)
    holds = (
        _le(lhs, bound_tv, tol)
        and _le(bound_tv, bound_eps, tol)
        and _le(bound_tv, bound_eps_rev, tol)
    )
    return GeneralizationBoundResult(
        source=source,
        loss=_LOSS_NAME[source],
        loss_weak=_mean(loss_weak),
        loss_student=_mean(loss_student),
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
    loss_weak: float
    loss_student: float
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
    teacher, loss_student = _mean(loss_weak_t), _mean(loss_student_t)
    eps = _mean(metrics.kl(weak, student, validate=False))
    m = float((weak.log() - student.log()).abs().max())
    width = m * math.sqrt(2.0 * max(teacher, 0.0))
    lower, upper = teacher + eps - width, teacher + eps + width
    lhs = abs(loss_student - teacher - eps)
    return MisfitCentredBoundResult(
        source=source,
        loss=_LOSS_NAME[source],
        loss_weak=teacher,
        loss_student=loss_student,
        eps=eps,
        m=m,
        width=width,
        lower=lower,
        value=loss_student,
        upper=upper,
        lhs=lhs,
        rhs=width,
        slack=min(loss_student - lower, upper - loss_student),
        holds=_le(lower, loss_student, tol) and _le(loss_student, upper, tol),
        tol=tol,
    )


# --------------------------------------------------------------------------- sharp forms
def _log_ratio(weak: Any, student: Any, why: str) -> tuple[Tensor, Tensor, Tensor]:
    """Validated ``weak``, ``student`` (float64 ``[N, K]``, strictly positive) and
    ``l = log F_w - log F_sw``."""
    weak = _probs(weak, "weak")
    student = _same(weak, "weak", _probs(student, "student"), "student")
    _positive(weak, "weak", why)
    _positive(student, "student", why)
    return weak, student, weak.log() - student.log()


def _optional_target(ref: Tensor, f_star: Any, labels: Any) -> tuple[Tensor | None, str]:
    """``(target, source)`` like :func:`_target`, or ``(None, "none")`` when neither is given."""
    if f_star is None and labels is None:
        return None, "none"
    return _target(ref.shape[-1], ref, f_star, labels)


@dataclass(frozen=True)
class LabelFreeIntervalPointwise:
    """Per-row terms of the label-free interval (tensors on the input's device)."""

    log_ratio: Tensor  # [N, K]: l_j = log F_w,j - log F_sw,j
    min_log_ratio: Tensor  # [N]: min_j l_j
    max_log_ratio: Tensor  # [N]: max_j l_j
    change: Tensor | None  # [N]: sum_j F*_j l_j = KL(F*||F_sw) - KL(F*||F_w) (with a truth)


@dataclass(frozen=True)
class LabelFreeIntervalResult(_Result):
    """The sharp, label-free interval ``E min_j l_j <= Err(F_sw) - Err(F_w) <= E max_j l_j``.

    ``l_j = log F_w,j - log F_sw,j``. ``lower``/``upper`` need no labels and no floor (only
    positive predictions); the interval is attained by a point-mass ground truth
    (:func:`worst_case_truth`) and contains ``[-eps_rev, eps]`` (``contains_misfit``).
    With a truth (``source`` ``"f_star"`` or ``"labels"``): ``err_change`` (exact ``Err``
    difference, or the difference of test cross-entropies), ``contains_change``,
    ``fraction_used`` (``err_change / upper`` if ``err_change >= 0``, else
    ``err_change / |lower|``: the signed share of its side of the interval, in ``[-1, 1]``) and
    ``position`` (``(err_change - lower) / width``, in ``[0, 1]``); these are ``None`` without a
    truth (``fraction_used`` also when its side is 0 but ``err_change`` is not, ``position`` when
    ``width = 0``).
    As ``lhs <= rhs``: ``rhs = half_width``, ``lhs = |err_change - centre|`` with a truth, else the
    larger of ``|eps - centre|`` and ``|-eps_rev - centre|``; ``slack = rhs - lhs`` is the
    distance to the nearer end. ``holds``: ``contains_misfit`` and (with a truth)
    ``contains_change``.
    """

    NAME: ClassVar[str] = "Label-free interval"
    RELATION: ClassVar[str] = (
        "E min_j l_j <= Err(F_sw) - Err(F_w) <= E max_j l_j, containing [-eps_rev, eps] "
        "(as |dErr - centre| <= half-width)"
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
    err_change: float | None
    loss_weak: float | None
    loss_student: float | None
    fraction_used: float | None
    position: float | None
    contains_misfit: bool
    contains_change: bool | None
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
    """The sharp interval for ``Err(F_sw) - Err(F_w)`` computed from the two predictors alone.

    With ``l_j(x) = log F_w,j(x) - log F_sw,j(x)``, Lemma 1 gives
    ``Err(F_sw) - Err(F_w) = E_x sum_j F*_j(x) l_j(x)``, a convex combination of the ``l_j``, so
    ``E_x min_j l_j <= Err(F_sw) - Err(F_w) <= E_x max_j l_j`` for every ground truth ``F*``.
    Needs strictly positive ``weak``/``student`` (no floor) and no labels; both ends are attained
    (:func:`worst_case_truth`), so no bound from ``F_w`` and ``F_sw`` alone can be tighter. Since
    ``sum_j F_w,j l_j = eps`` and ``sum_j F_sw,j l_j = -eps_rev`` the interval contains
    ``[-eps_rev, eps]``. Optionally pass one of ``f_star`` (exact ``Err`` difference) or
    ``labels`` (the test cross-entropy difference; the interval then holds exactly on the sample)
    to place the measured change inside it.
    """
    tol = _check_tol(tol)
    weak, student, lr = _log_ratio(weak, student, "the label-free interval (log F_w / F_sw)")
    target, source = _optional_target(weak, f_star, labels)
    lo_x, hi_x = lr.amin(-1), lr.amax(-1)
    lower, upper = _mean(lo_x), _mean(hi_x)
    eps = _mean(metrics.kl(weak, student, validate=False))
    eps_rev = _mean(metrics.kl(student, weak, validate=False))
    centre, half = 0.5 * (lower + upper), 0.5 * (upper - lower)
    contains_misfit = _le(lower, -eps_rev, tol) and _le(eps, upper, tol)
    change = err_change = teacher = loss_student = frac = position = contains_change = None
    if target is None:
        lhs = max(abs(eps - centre), abs(-eps_rev - centre))
        slack = min(upper - eps, -eps_rev - lower)
    else:
        change = (target * lr).sum(-1)
        err_change = _mean(change)
        loss_weak, loss_student = _losses(target, weak, student)
        teacher, loss_student = _mean(loss_weak), _mean(loss_student)
        frac = _ratio(err_change, upper) if err_change >= 0 else _ratio(err_change, -lower)
        position = (err_change - lower) / (upper - lower) if upper > lower else None
        contains_change = _le(lower, err_change, tol) and _le(err_change, upper, tol)
        lhs = abs(err_change - centre)
        slack = min(upper - err_change, err_change - lower)
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
        err_change=err_change,
        loss_weak=teacher,
        loss_student=loss_student,
        fraction_used=frac,
        position=position,
        contains_misfit=contains_misfit,
        contains_change=contains_change,
        lhs=lhs,
        rhs=half,
        slack=slack,
        holds=contains_misfit and contains_change is not False,
        tol=tol,
        pointwise=LabelFreeIntervalPointwise(lr, lo_x, hi_x, change),
    )


_SIDES = ("upper", "lower")


def worst_case_truth(weak: Any, student: Any, side: str = "upper") -> Tensor:
    """The point-mass ground truth that attains an end of :func:`label_free_interval`.

    ``side="upper"``: ``F*(x)`` = the one-hot vector at ``argmax_j l_j(x)``, so that
    ``Err(F_sw) - Err(F_w) = E max_j l_j`` exactly; ``side="lower"``: at ``argmin_j l_j(x)``
    (``E min_j l_j``). Returns float64 one-hot rows ``[N, K]`` (binary ``[N]`` input gives
    ``[N, 2]``) on the input's device. Needs strictly positive predictions.
    """
    if side not in _SIDES:
        raise ValueError(f"side: must be one of {_SIDES}, got {side!r}")
    _, _, lr = _log_ratio(weak, student, "worst_case_truth (log F_w / F_sw)")
    idx = lr.argmax(-1) if side == "upper" else lr.argmin(-1)
    return torch.nn.functional.one_hot(idx, lr.shape[-1]).to(_F64)


@dataclass(frozen=True)
class GeneralizationChainPointwise:
    """Per-row links of the chain (tensors ``[N]`` on the input's device)."""

    max_abs_log_ratio: Tensor  # max_j |l_j|
    tv: Tensor  # TV(F_w, F_sw)
    log_tv: Tensor  # log(1 + TV / gamma)


# (field, plain-text label, LaTeX label, what it needs, kind) in the order of the chain
_CHAIN_LINKS: tuple[tuple[str, str, str, str, str], ...] = (
    ("abs_change", "|Err(F_sw) - Err(F_w)|", r"|\Delta\mathrm{Err}|", "F* or labels", "measured"),
    (
        "mean_max_abs_log_ratio",
        "E max_j |l_j|",
        r"\mathbb{E}\max_j|\ell_j|",
        "positive predictions",
        "chain",
    ),
    (
        "mean_log_tv",
        "E log(1 + TV/gamma)",
        r"\mathbb{E}\log(1+\mathrm{TV}/\gamma)",
        "floor gamma",
        "chain",
    ),
    (
        "log_mean_tv",
        "log(1 + E TV/gamma)",
        r"\log(1+\mathbb{E}\,\mathrm{TV}/\gamma)",
        "floor gamma",
        "chain",
    ),
    (
        "log_pinsker",
        "log(1 + sqrt(eps/2)/gamma)",
        r"\log(1+\sqrt{\varepsilon/2}/\gamma)",
        "floor gamma",
        "chain",
    ),
    ("bound_tv", "E TV/gamma", r"\mathbb{E}\,\mathrm{TV}/\gamma", "floor gamma", "theorem 1"),
    ("bound_eps", "sqrt(eps/2)/gamma", r"\sqrt{\varepsilon/2}/\gamma", "floor gamma", "theorem 1"),
    ("trivial", "log(1/gamma)", r"\log(1/\gamma)", "floor gamma", "trivial"),
)


@dataclass(frozen=True)
class GeneralizationChainResult(_Result):
    """Every link of the chain that sharpens Theorem 1 (``g = gamma``, ``dErr`` = ``err_change``):

    ``|dErr| <= E max|l| <= E log(1+TV/g) <= log(1+E TV/g) <= log(1+sqrt(eps/2)/g)``.

    ``l_j = log F_w,j - log F_sw,j``, ``g = gamma`` (the floor, as in
    :func:`generalization_bound`). Also Theorem 1's forms ``bound_tv = E TV/gamma`` and
    ``bound_eps = sqrt(eps/2)/gamma`` (each chain link is ``<=`` them since ``log(1+u) <= u``),
    the same with ``eps_rev`` (``log_pinsker_rev``, ``bound_eps_rev``) and the trivial
    ``log(1/gamma)`` (``>= E max_j |l_j|`` and ``>= log(1 + E TV/gamma)``, not comparable with
    Theorem 1). ``err_change``/``abs_change`` only with a truth (``source`` ``"f_star"`` or
    ``"labels"``; else ``None``). ``lhs`` = the chain's first computed link (``abs_change``, or
    ``mean_max_abs_log_ratio`` without a truth), ``rhs = log_pinsker``. ``holds``: every link is
    ordered, each is ``<=`` its Theorem 1 form, and the trivial comparisons. :meth:`links` lists
    them in order for a table.
    """

    NAME: ClassVar[str] = "Generalization chain"
    RELATION: ClassVar[str] = (
        "|dErr| <= E max|l| <= E log(1+TV/g) <= log(1+E TV/g) <= log(1+sqrt(eps/2)/g)"
    )

    source: str
    loss: str | None
    err_change: float | None
    abs_change: float | None
    gamma: float
    gamma_source: str
    mean_tv: float
    eps: float
    eps_rev: float
    mean_max_abs_log_ratio: float
    mean_log_tv: float
    log_mean_tv: float
    log_pinsker: float
    log_pinsker_rev: float
    bound_tv: float
    bound_eps: float
    bound_eps_rev: float
    trivial: float
    lhs: float
    rhs: float
    slack: float
    holds: bool
    tol: float
    pointwise: GeneralizationChainPointwise

    def links(self, *, latex: bool = False) -> list[dict[str, Any]]:
        """The quantities in chain order: dicts ``key``, ``label`` (plain text, or LaTeX with
        ``latex=True``), ``value`` (``None`` for ``abs_change`` without a truth), ``needs``
        (``"F* or labels"``, ``"positive predictions"`` or ``"floor gamma"``) and ``kind``
        (``"measured"``, ``"chain"``, ``"theorem 1"``, ``"trivial"``)."""
        return [
            {
                "key": key,
                "label": tex if latex else text,
                "value": getattr(self, key),
                "needs": needs,
                "kind": kind,
            }
            for key, text, tex, needs, kind in _CHAIN_LINKS
        ]


def generalization_chain(
    weak: Any,
    student: Any,
    *,
    gamma: float | None = None,
    f_star: Any = None,
    labels: Any = None,
    tol: float = DEFAULT_TOL,
) -> GeneralizationChainResult:
    """Every link of the proof of Theorem 1 in its sharp, logarithmic form.

    ``|Err(F_sw) - Err(F_w)| <= E max_j |l_j| <= E log(1 + TV/gamma) <= log(1 + E TV/gamma)
    <= log(1 + sqrt(eps/2)/gamma)``: Lemma 1 (a convex combination of the ``l_j``), then
    ``|log u - log v| = log(1 + |u - v| / min(u, v))`` with ``|u - v| <= TV`` and
    ``min(u, v) >= gamma``, Jensen (``log`` is concave) and Pinsker with Jensen. Every link is
    ``<=`` Theorem 1's ``E TV/gamma`` and ``sqrt(eps/2)/gamma`` (``log(1 + u) <= u``), and
    ``E max_j |l_j| <= log(1/gamma)``. ``gamma`` as in :func:`generalization_bound`: the
    empirical floor by default; a given ``gamma`` must not exceed it (else ``ValueError``).
    ``f_star`` or ``labels`` (at most one) add the measured ``|Err(F_sw) - Err(F_w)|``.
    """
    tol = _check_tol(tol)
    weak = _probs(weak, "weak")
    student = _same(weak, "weak", _probs(student, "student"), "student")
    g, g_src = _floor(gamma, (weak, "weak"), (student, "student"))
    target, source = _optional_target(weak, f_star, labels)
    lr = weak.log() - student.log()
    max_abs = lr.abs().amax(-1)
    tv = metrics.tv(weak, student, validate=False)
    log_tv = torch.log1p(tv / g)
    mean_tv = _mean(tv)
    eps = _mean(metrics.kl(weak, student, validate=False))
    eps_rev = _mean(metrics.kl(student, weak, validate=False))
    first, mean_log_tv = _mean(max_abs), _mean(log_tv)
    log_mean_tv = math.log1p(mean_tv / g)
    bound_tv = mean_tv / g
    # max: KL of nearly equal rows can round to -1e-17
    bound_eps = math.sqrt(max(eps, 0.0) / 2.0) / g
    bound_eps_rev = math.sqrt(max(eps_rev, 0.0) / 2.0) / g
    log_pinsker, log_pinsker_rev = math.log1p(bound_eps), math.log1p(bound_eps_rev)
    trivial = math.log(1.0 / g)
    err_change = abs_change = None
    if target is not None:
        err_change = _mean((target * lr).sum(-1))
        abs_change = abs(err_change)
    pairs = [
        (first, mean_log_tv),
        (mean_log_tv, log_mean_tv),
        (log_mean_tv, log_pinsker),
        (log_mean_tv, log_pinsker_rev),
        (log_mean_tv, bound_tv),
        (log_pinsker, bound_eps),
        (log_pinsker_rev, bound_eps_rev),
        (bound_tv, bound_eps),
        (bound_tv, bound_eps_rev),
        (first, trivial),
        (log_mean_tv, trivial),
    ]
    if abs_change is not None:
        pairs.insert(0, (abs_change, first))
    lhs = first if abs_change is None else abs_change
    return GeneralizationChainResult(
        source=source,
        loss=_LOSS_NAME.get(source),
        err_change=err_change,
        abs_change=abs_change,
        gamma=g,
        gamma_source=g_src,
        mean_tv=mean_tv,
        eps=eps,
        eps_rev=eps_rev,
        mean_max_abs_log_ratio=first,
        mean_log_tv=mean_log_tv,
        log_mean_tv=log_mean_tv,
        log_pinsker=log_pinsker,
        log_pinsker_rev=log_pinsker_rev,
        bound_tv=bound_tv,
        bound_eps=bound_eps,
        bound_eps_rev=bound_eps_rev,
        trivial=trivial,
        lhs=lhs,
        rhs=log_pinsker,
        slack=log_pinsker - lhs,
        holds=all(_le(a, b, tol) for a, b in pairs),
        tol=tol,
        pointwise=GeneralizationChainPointwise(max_abs, tv, log_tv),
    )


@dataclass(frozen=True)
class OscillationBoundPointwise:
    """Per-row terms of the oscillation form (tensors ``[N]`` on the input's device)."""

    osc: Tensor  # max_j l_j - min_j l_j
    tv_truth_weak: Tensor  # TV(F*, F_w)
    interaction: Tensor  # sum_j (F*_j - F_w,j) l_j


@dataclass(frozen=True)
class OscillationBoundResult(_Result):
    """``|Err(F_sw) - Err(F_w) - eps| <= E[osc TV(F*, F_w)] <= sqrt(E[osc^2] Err(F_w) / 2)``.

    ``osc(x) = max_j l_j - min_j l_j`` (binary: ``|logit F_w - logit F_sw|``). ``lhs`` is
    ``|err_change - eps|`` (the interaction term of Lemma 1), ``mid`` the middle term, ``rhs``
    the Cauchy--Schwarz form and ``old_width = M sqrt(2 Err(F_w))`` (``M = max |l|``) the
    alternative form of :func:`misfit_centred_bound`, never smaller than ``rhs``.
    ``lower``/``upper`` = ``eps -+ rhs`` bound ``err_change``; ``slack = rhs - lhs``;
    ``holds``: ``lhs <= mid <= rhs <= old_width``. With labels every ``Err`` is the test
    cross-entropy (the statement for the empirical distribution, exact on the sample).
    """

    NAME: ClassVar[str] = "Oscillation bound"
    RELATION: ClassVar[str] = (
        "|Err(F_sw) - Err(F_w) - eps| <= E[osc TV(F*, F_w)] <= sqrt(E[osc^2] Err(F_w) / 2)"
    )

    source: str
    loss: str
    loss_weak: float
    loss_student: float
    err_change: float
    eps: float
    interaction: float
    mean_osc: float
    mean_osc_sq: float
    m: float
    lhs: float
    mid: float
    rhs: float
    old_width: float
    lower: float
    upper: float
    slack: float
    holds: bool
    tol: float
    pointwise: OscillationBoundPointwise


def oscillation_bound(
    weak: Any,
    student: Any,
    *,
    f_star: Any = None,
    labels: Any = None,
    tol: float = DEFAULT_TOL,
) -> OscillationBoundResult:
    """The oscillation form of Theorem 1's alternative bound (pass exactly one of ``f_star``,
    ``labels``).

    By Lemma 1, ``Err(F_sw) - Err(F_w) - eps = E sum_j (F*_j - F_w,j) l_j``; the weights sum to
    zero, so ``l`` may be centred at ``(max_j l_j + min_j l_j)/2``, giving
    ``|.| <= E[osc TV(F*, F_w)]``, then Cauchy--Schwarz and Pinsker
    (``E TV(F*, F_w)^2 <= Err(F_w)/2``): ``<= sqrt(E[osc^2] Err(F_w) / 2)``. Since
    ``osc <= 2M`` this never exceeds ``M sqrt(2 Err(F_w))``. Needs strictly positive
    ``weak``/``student``; ``f_star`` may have zeros. With ``labels`` it is the statement for the
    empirical distribution (``Err(F_w)`` = test cross-entropy of the weak model).
    """
    tol = _check_tol(tol)
    weak, student, lr = _log_ratio(weak, student, "the oscillation bound (log F_w / F_sw)")
    target, source = _target(weak.shape[-1], weak, f_star, labels)
    osc = lr.amax(-1) - lr.amin(-1)
    tv_tw = metrics.tv(target, weak, validate=False)
    inter = ((target - weak) * lr).sum(-1)
    loss_weak, loss_student = _losses(target, weak, student)
    teacher, loss_student = _mean(loss_weak), _mean(loss_student)
    eps = _mean(metrics.kl(weak, student, validate=False))
    interaction = _mean(inter)
    mean_osc_sq = _mean(osc * osc)
    m = float(lr.abs().max())
    lhs = abs(interaction)
    mid = _mean(osc * tv_tw)
    rhs = math.sqrt(mean_osc_sq * max(teacher, 0.0) / 2.0)
    old_width = m * math.sqrt(2.0 * max(teacher, 0.0))
    return OscillationBoundResult(
        source=source,
        loss=_LOSS_NAME[source],
        loss_weak=teacher,
        loss_student=loss_student,
        err_change=_mean((target * lr).sum(-1)),
        eps=eps,
        interaction=interaction,
        mean_osc=_mean(osc),
        mean_osc_sq=mean_osc_sq,
        m=m,
        lhs=lhs,
        mid=mid,
        rhs=rhs,
        old_width=old_width,
        lower=eps - rhs,
        upper=eps + rhs,
        slack=rhs - lhs,
        holds=_le(lhs, mid, tol) and _le(mid, rhs, tol) and _le(rhs, old_width, tol),
        tol=tol,
        pointwise=OscillationBoundPointwise(osc, tv_tw, inter),
    )
