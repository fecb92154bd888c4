"""Two-sided generalization bounds for the student (chapter 2), in the gain convention.

``gain = Err(F_w) - Err(F_sw)`` (nats; positive: the student is better than its teacher) and the
student log-ratio ``r_j(x) = log F_sw,j(x) - log F_w,j(x)``, so that ``gain = E_x sum_j F*_j r_j``
(Lemma 1), ``eps = E KL(F_w||F_sw) = -E sum_j F_w,j r_j`` and
``eps_rev = E KL(F_sw||F_w) = E sum_j F_sw,j r_j``. Every result here bounds the gain:
the two-sided bound (``E TV / gamma``), its misfit-centred and oscillation forms, the sharp
label-free interval ``E min_j r_j <= gain <= E max_j r_j`` and the chain of links between them,
and the Hoeffding term that turns a test-set end into a population statement.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
from torch import Tensor

from w2s_utils import metrics
from w2s_utils._validate import check_number
from w2s_utils.theory._base import (
    _LOSS_NAME,
    DEFAULT_TOL,
    _check_tol,
    _le,
    _log_ratio,
    _losses,
    _mean,
    _optional_target,
    _positive,
    _probs,
    _Result,
    _same,
    _target,
)


# --------------------------------------------------------------------------- gamma floor
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


# --------------------------------------------------------------------------- two-sided bound
@dataclass(frozen=True)
class GeneralizationBoundResult(_Result):
    """The two-sided bound ``|gain| <= E TV / gamma <= sqrt(eps/2) / gamma`` (and with eps_rev).

    ``gain = Err(F_w) - Err(F_sw)`` (``source="f_star"``: exact; ``"labels"``: the difference of
    test cross-entropies ``CE(F_w) - CE(F_sw)``). ``lower = -bound_tv`` and ``upper = bound_tv``
    bound the gain; ``lhs = |gain|``, ``rhs = bound_tv``, ``slack = bound_tv - |gain|``.
    """

    NAME: ClassVar[str] = "two-sided bound (TV/gamma)"
    RELATION: ClassVar[str] = "|gain| <= E TV(F_w, F_sw) / gamma"

    source: str
    loss: str
    loss_weak: float
    loss_student: float
    gain: float
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


def generalization_bound(
    weak: Any,
    student: Any,
    *,
    f_star: Any = None,
    labels: Any = None,
    gamma: float | None = None,
    tol: float = DEFAULT_TOL,
) -> GeneralizationBoundResult:
    """The two-sided generalization bound (works from hard labels or from ``F*``).

    ``|gain| <= (1/gamma) E TV(F_w, F_sw) <= (1/gamma) sqrt(eps/2)``, and the same with
    ``eps_rev = E KL(F_sw||F_w)``, where ``gain = Err(F_w) - Err(F_sw)`` (nats, positive: the
    student is better). ``gamma`` defaults to the empirical floor ``min_{x,j}`` of both
    predictors; a given ``gamma`` must not exceed it (else ``ValueError``: clip with
    :func:`~w2s_utils.theory.clip_to_floor`). Pass exactly one of ``f_star`` (``gain`` is the
    exact ``Err`` difference) or ``labels`` (``gain`` is ``CE(F_w) - CE(F_sw)`` on the test
    labels, which equals the ``Err`` difference in population since ``H(Y|X)`` cancels; on the
    sample the bound holds exactly for the empirical distribution).
    """
    tol = _check_tol(tol)
    weak = _probs(weak, "weak")
    student = _same(weak, "weak", _probs(student, "student"), "student")
    g, g_src = _floor(gamma, (weak, "weak"), (student, "student"))
    target, source = _target(weak.shape[-1], weak, f_star, labels)
    loss_weak, loss_student = _losses(target, weak, student)
    gain = _mean(loss_weak) - _mean(loss_student)
    mean_tv = _mean(metrics.tv(weak, student, validate=False))
    eps = _mean(metrics.kl(weak, student, validate=False))
    eps_rev = _mean(metrics.kl(student, weak, validate=False))
    bound_tv = mean_tv / g
    bound_eps = math.sqrt(max(eps, 0.0) / 2.0) / g  # max: eps ~ -1e-17 from rounding
    bound_eps_rev = math.sqrt(max(eps_rev, 0.0) / 2.0) / g
    lhs = abs(gain)
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
        gain=gain,
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
    """The misfit-centred form: ``|gain + eps| <= M sqrt(2 Err(F_w))``, i.e. the gain lies in
    ``[-eps - width, -eps + width]`` with ``width = M sqrt(2 Err(F_w))``.

    ``gain = Err(F_w) - Err(F_sw)``; ``lower``/``upper`` bound it; ``lhs = |gain + eps|`` (the
    interaction of Lemma 1), ``rhs = width``, ``slack`` the smaller of ``gain - lower`` and
    ``upper - gain``. With labels every ``Err`` is the test cross-entropy.
    """

    NAME: ClassVar[str] = "misfit-centred bound"
    RELATION: ClassVar[str] = "|gain + eps| <= M sqrt(2 Err(F_w))"

    source: str
    loss: str
    loss_weak: float
    loss_student: float
    gain: float
    eps: float
    m: float
    width: float
    lower: float
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
    """The misfit-centred form of the two-sided bound, with ``M = max_{x,j} |r_j(x)|``
    (``r_j = log F_sw,j - log F_w,j``):

    ``-eps - M sqrt(2 Err(F_w)) <= gain <= -eps + M sqrt(2 Err(F_w))``,
    ``gain = Err(F_w) - Err(F_sw)``. Proof: ``gain + eps = E sum_j (F*_j - F_w,j) r_j`` (Lemma
    1), at most ``M ||F* - F_w||_1 <= M sqrt(2 KL(F*||F_w))`` per input (Pinsker), then Jensen.

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
    _positive(weak, "weak", "the misfit-centred bound (M = max |log F_sw / F_w|)")
    _positive(student, "student", "the misfit-centred bound (M = max |log F_sw / F_w|)")
    target, source = _target(weak.shape[-1], weak, f_star, labels)
    loss_weak_t, loss_student_t = _losses(target, weak, student)
    teacher, loss_student = _mean(loss_weak_t), _mean(loss_student_t)
    gain = teacher - loss_student
    eps = _mean(metrics.kl(weak, student, validate=False))
    m = float((student.log() - weak.log()).abs().max())
    width = m * math.sqrt(2.0 * max(teacher, 0.0))
    lower, upper = -eps - width, -eps + width
    return MisfitCentredBoundResult(
        source=source,
        loss=_LOSS_NAME[source],
        loss_weak=teacher,
        loss_student=loss_student,
        gain=gain,
        eps=eps,
        m=m,
        width=width,
        lower=lower,
        upper=upper,
        lhs=abs(gain + eps),
        rhs=width,
        slack=min(gain - lower, upper - gain),
        holds=_le(lower, gain, tol) and _le(gain, upper, tol),
        tol=tol,
    )


# --------------------------------------------------------------------------- the chain
@dataclass(frozen=True)
class GeneralizationChainPointwise:
    """Per-row links of the chain (tensors ``[N]`` on the input's device)."""

    max_abs_log_ratio: Tensor  # max_j |r_j|
    tv: Tensor  # TV(F_w, F_sw)
    log_tv: Tensor  # log(1 + TV / gamma)


# (field, plain-text label, LaTeX label, what it needs, kind) in the order of the chain
_CHAIN_LINKS: tuple[tuple[str, str, str, str, str], ...] = (
    ("abs_gain", "|gain|", r"|\mathrm{gain}|", "F* or labels", "measured"),
    (
        "mean_max_abs_log_ratio",
        "E max_j |r_j|",
        r"\mathbb{E}\max_j|r_j|",
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
        "log(1 + min(1, sqrt(eps/2))/gamma)",
        r"\log(1+\min(1,\sqrt{\varepsilon/2})/\gamma)",
        "floor gamma",
        "chain",
    ),
    ("bound_tv", "E TV/gamma", r"\mathbb{E}\,\mathrm{TV}/\gamma", "floor gamma", "two-sided"),
    ("bound_eps", "sqrt(eps/2)/gamma", r"\sqrt{\varepsilon/2}/\gamma", "floor gamma", "two-sided"),
    ("trivial", "log(1/gamma)", r"\log(1/\gamma)", "floor gamma", "trivial"),
)


@dataclass(frozen=True)
class GeneralizationChainResult(_Result):
    """Every link of the chain that sharpens the two-sided bound (``g = gamma``):

    ``|gain| <= E max|r| <= E log(1+TV/g) <= log(1+E TV/g) <= log(1+min(1, sqrt(eps/2))/g)``.

    ``gain = Err(F_w) - Err(F_sw)``, ``r_j = log F_sw,j - log F_w,j``, ``g = gamma`` (the floor,
    as in :func:`generalization_bound`). Pinsker's link is capped at 1 because ``TV <= 1``
    (``E TV <= min(1, sqrt(eps/2))``), so every logarithmic link is at most ``log(1 + 1/g)``.
    Also the two-sided bound's forms ``bound_tv = E TV/gamma`` and ``bound_eps =
    sqrt(eps/2)/gamma`` (each chain link is ``<=`` them since ``log(1+u) <= u``), the same with
    ``eps_rev`` (``log_pinsker_rev``, ``bound_eps_rev``) and the trivial ``log(1/gamma)``
    (``>= E max_j |r_j|`` and ``>= log(1 + E TV/gamma)``, not comparable with the two-sided
    bound). ``gain``/``abs_gain`` only with a truth (``source`` ``"f_star"`` or ``"labels"``;
    else ``None``). ``lhs`` = the chain's first computed link (``abs_gain``, or
    ``mean_max_abs_log_ratio`` without a truth), ``rhs = log_pinsker``. ``holds``: every link is
    ordered, each is ``<=`` its two-sided form, the trivial comparisons, and the logarithmic
    links are ``<= log(1 + 1/gamma)``. :meth:`links` lists them in order for a table.
    """

    NAME: ClassVar[str] = "generalization chain"
    RELATION: ClassVar[str] = (
        "|gain| <= E max|r| <= E log(1+TV/g) <= log(1+E TV/g) <= log(1+min(1,sqrt(eps/2))/g)"
    )

    source: str
    loss: str | None
    gain: float | None
    abs_gain: float | None
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
        ``latex=True``), ``value`` (``None`` for ``abs_gain`` without a truth), ``needs``
        (``"F* or labels"``, ``"positive predictions"`` or ``"floor gamma"``) and ``kind``
        (``"measured"``, ``"chain"``, ``"two-sided"``, ``"trivial"``)."""
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
    """Every link of the proof of the two-sided bound in its sharp, logarithmic form.

    ``|gain| <= E max_j |r_j| <= E log(1 + TV/gamma) <= log(1 + E TV/gamma)
    <= log(1 + min(1, sqrt(eps/2))/gamma)``: Lemma 1 (the gain is a convex combination of the
    ``r_j = log F_sw,j - log F_w,j``), then ``|log u - log v| = log(1 + |u - v| / min(u, v))``
    with ``|u - v| <= TV`` and ``min(u, v) >= gamma``, Jensen (``log`` is concave), and
    ``E TV <= min(1, sqrt(eps/2))`` (Pinsker with Jensen, and ``TV <= 1``). Without the cap at 1
    the last link can exceed ``log(1 + 1/gamma)``, which ``log(1 + E TV/gamma)`` never does (K = 2,
    ``gamma = 0.01``, ``F_w = (0.99, 0.01)``, ``F_sw = (0.01, 0.99)``: ``eps = 4.50`` and
    ``log(1 + sqrt(eps/2)/gamma) = 5.02 > log(101) = 4.62``). Every link is ``<=`` the two-sided
    bound's ``E TV/gamma`` and ``sqrt(eps/2)/gamma`` (``log(1 + u) <= u``), and
    ``E max_j |r_j| <= log(1/gamma)``. ``gamma`` as in :func:`generalization_bound`: the
    empirical floor by default; a given ``gamma`` must not exceed it (else ``ValueError``).
    ``f_star`` or ``labels`` (at most one) add the measured ``|gain|``.
    """
    tol = _check_tol(tol)
    weak = _probs(weak, "weak")
    student = _same(weak, "weak", _probs(student, "student"), "student")
    g, g_src = _floor(gamma, (weak, "weak"), (student, "student"))
    target, source = _optional_target(weak, f_star, labels)
    lr = student.log() - weak.log()
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
    root, root_rev = math.sqrt(max(eps, 0.0) / 2.0), math.sqrt(max(eps_rev, 0.0) / 2.0)
    bound_eps, bound_eps_rev = root / g, root_rev / g
    log_pinsker = math.log1p(min(1.0, root) / g)
    log_pinsker_rev = math.log1p(min(1.0, root_rev) / g)
    trivial = math.log(1.0 / g)
    cap = math.log1p(1.0 / g)
    gain = abs_gain = None
    if target is not None:
        gain = _mean((target * lr).sum(-1))
        abs_gain = abs(gain)
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
        (log_pinsker, cap),
        (log_pinsker_rev, cap),
    ]
    if abs_gain is not None:
        pairs.insert(0, (abs_gain, first))
    lhs = first if abs_gain is None else abs_gain
    return GeneralizationChainResult(
        source=source,
        loss=_LOSS_NAME.get(source),
        gain=gain,
        abs_gain=abs_gain,
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


# --------------------------------------------------------------------------- oscillation
@dataclass(frozen=True)
class OscillationBoundPointwise:
    """Per-row terms of the oscillation form (tensors ``[N]`` on the input's device)."""

    osc: Tensor  # max_j r_j - min_j r_j
    tv_truth_weak: Tensor  # TV(F*, F_w)
    interaction: Tensor  # sum_j (F*_j - F_w,j) r_j


@dataclass(frozen=True)
class OscillationBoundResult(_Result):
    """``|gain + eps| <= E[osc TV(F*, F_w)] <= sqrt(E[osc^2] Err(F_w) / 2)``.

    ``gain = Err(F_w) - Err(F_sw)``, ``gain + eps = interaction`` (Lemma 1: ``gain = interaction
    - eps``), ``osc(x) = max_j r_j - min_j r_j`` (binary: ``|logit F_sw - logit F_w|``). ``lhs``
    is ``|interaction|``, ``mid`` the middle term, ``rhs`` the Cauchy--Schwarz form and
    ``old_width = M sqrt(2 Err(F_w))`` (``M = max |r|``) the width of
    :func:`misfit_centred_bound`, never smaller than ``rhs``. ``lower``/``upper`` =
    ``-eps -+ rhs`` bound the gain; ``slack = rhs - lhs``; ``holds``:
    ``lhs <= mid <= rhs <= old_width``. With labels every ``Err`` is the test cross-entropy (the
    statement for the empirical distribution, exact on the sample).
    """

    NAME: ClassVar[str] = "oscillation bound"
    RELATION: ClassVar[str] = "|gain + eps| <= E[osc TV(F*, F_w)] <= sqrt(E[osc^2] Err(F_w) / 2)"

    source: str
    loss: str
    loss_weak: float
    loss_student: float
    gain: float
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
    """The oscillation form of the misfit-centred bound (pass exactly one of ``f_star``,
    ``labels``).

    By Lemma 1, ``gain + eps = E sum_j (F*_j - F_w,j) r_j`` (``r_j = log F_sw,j - log F_w,j``);
    the weights sum to zero, so ``r`` may be centred at ``(max_j r_j + min_j r_j)/2``, giving
    ``|gain + eps| <= E[osc TV(F*, F_w)]``, then Cauchy--Schwarz and Pinsker
    (``E TV(F*, F_w)^2 <= Err(F_w)/2``): ``<= sqrt(E[osc^2] Err(F_w) / 2)``. Since
    ``osc <= 2M`` this never exceeds ``M sqrt(2 Err(F_w))``. Needs strictly positive
    ``weak``/``student``; ``f_star`` may have zeros. With ``labels`` it is the statement for the
    empirical distribution (``Err(F_w)`` = test cross-entropy of the weak model). It is a
    relaxation of :func:`~w2s_utils.theory.error_aware_interval` at the budget ``Err(F_w)``
    (Hoeffding's lemma).
    """
    tol = _check_tol(tol)
    weak, student, lr = _log_ratio(weak, student, "the oscillation bound (log F_sw / F_w)")
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
        gain=_mean((target * lr).sum(-1)),
        eps=eps,
        interaction=interaction,
        mean_osc=_mean(osc),
        mean_osc_sq=mean_osc_sq,
        m=m,
        lhs=lhs,
        mid=mid,
        rhs=rhs,
        old_width=old_width,
        lower=-eps - rhs,
        upper=-eps + rhs,
        slack=rhs - lhs,
        holds=_le(lhs, mid, tol) and _le(mid, rhs, tol) and _le(rhs, old_width, tol),
        tol=tol,
        pointwise=OscillationBoundPointwise(osc, tv_tw, inter),
    )
