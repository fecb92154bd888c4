"""The book's results as functions: each returns both sides, the slack and whether it holds.

One function per result of THEORY.md (Lemma 1, Theorem 1 in two forms, Theorem 2 and the ECE
check, Theorem 3, the forward-KL identity, Charikar et al.'s inequality), the solvers that produce a
student ``F_sw`` satisfying each result's hypotheses, and searches for counterexamples to the two
statements that are *not* guaranteed.

Conventions
-----------
- Predictions are probability tensors ``[N, K]`` (numpy accepted); a binary predictor may be ``[N]``
  positive-class probabilities. They are validated (:mod:`w2s_utils._validate`), promoted to
  float64 and renormalised (the validator allows row sums off by 1e-5; the results are exact
  algebra only for exact distributions). Pointwise tensors stay on the input's device.
- ``Err(F) = E_x KL(F*(x) || F(x))``. **What needs F\\*:** Lemma 1, Theorem 3, the forward-KL
  identity, the ECE check and Charikar's inequality need the ground truth ``f_star``.
  **What works from hard labels:** Theorem 1 (both forms) and Theorem 2. With labels, a result is
  applied to the *empirical* distribution, whose ground truth is the one-hot label
  (``H(Y|X) = 0`` there): every inequality then holds exactly on the sample, and ``Err``
  differences become differences of test cross-entropies (``H(Y|X)`` cancels in population too).
- ``holds`` compares with a relative tolerance: ``lhs <= rhs + tol * max(1, |lhs|, |rhs|)``, default
  ``tol = 1e-9`` (float64 round-off); equalities compare ``|lhs - rhs|`` the same way. Results that
  depend on a solver (Theorem 3, the forward-KL identity) take ``tol`` from the solver's reported
  accuracy.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, fields
from typing import Any, ClassVar, TypeVar

import numpy as np
import torch
from torch import Tensor

from w2s_utils import metrics
from w2s_utils._validate import as_tensor, as_two_class, check_labels, check_probs

__all__ = [
    "DEFAULT_TOL",
    "TRIAL_KINDS",
    "Lemma1Pointwise",
    "Lemma1Result",
    "Theorem1Result",
    "Theorem1AltResult",
    "Theorem2Result",
    "EceBoundResult",
    "Theorem3Result",
    "ForwardKLIdentityResult",
    "CharikarResult",
    "IProjection",
    "LinearProjection",
    "LeastSquaresProjection",
    "Counterexample",
    "TrialOutcome",
    "clip_to_floor",
    "lemma1",
    "theorem1",
    "theorem1_alt",
    "theorem2",
    "ece_bound",
    "theorem3",
    "forward_kl_identity",
    "charikar",
    "i_projection_mixture",
    "forward_kl_projection_linear",
    "reverse_kl_projection_linear",
    "least_squares_projection",
    "non_guarantee_trial",
    "find_forward_kl_counterexample",
    "find_reverse_kl_logit_counterexample",
]

DEFAULT_TOL = 1e-9
_F64 = torch.float64
_T = TypeVar("_T")


# --------------------------------------------------------------------------- helpers
def _le(a: float, b: float, tol: float) -> bool:
    """``a <= b`` up to a relative tolerance (``b = inf`` always holds)."""
    if math.isinf(b) and b > 0:
        return True
    if not (math.isfinite(a) and math.isfinite(b)):
        return False
    return a <= b + tol * max(1.0, abs(a), abs(b))


def _eq(a: float, b: float, tol: float) -> bool:
    return _le(a, b, tol) and _le(b, a, tol)


def _check_tol(tol: float) -> float:
    if not (isinstance(tol, int | float) and math.isfinite(tol) and tol >= 0):
        raise ValueError(f"tol: must be a finite number >= 0, got {tol!r}")
    return float(tol)


def _probs(p: Any, name: str) -> Tensor:
    """Validated ``[N, K]`` float64 distributions (``[N]`` binary expanded), renormalised."""
    t = as_two_class(p, name)
    if t.dim() != 2:
        raise ValueError(
            f"{name}: expected [N] (binary) or [N, K] probabilities, got shape {tuple(t.shape)}; "
            "flatten the leading axes first"
        )
    t = t.to(_F64)
    return t / t.sum(-1, keepdim=True)


def _same(ref: Tensor, ref_name: str, other: Tensor, name: str) -> Tensor:
    if other.shape != ref.shape:
        raise ValueError(
            f"{name}: shape {tuple(other.shape)} does not match {ref_name}'s {tuple(ref.shape)} "
            "(after reading [N] as binary [N, 2]); pass predictions for the same inputs and classes"
        )
    return other.to(ref.device)


def _positive(t: Tensor, name: str, why: str) -> None:
    if bool((t <= 0).any()):
        raise ValueError(
            f"{name}: has zero probabilities; {why} needs strictly positive predictions. "
            "Clip with w2s_utils.bounds.clip_to_floor(p, gamma)"
        )


def _mean(t: Tensor) -> float:
    return float(t.mean())


def _target(n_classes: int, ref: Tensor, f_star: Any, labels: Any) -> tuple[Tensor, str]:
    """The ground truth to evaluate against: ``f_star`` itself or the one-hot labels."""
    if (f_star is None) == (labels is None):
        raise ValueError(
            "f_star/labels: pass exactly one: f_star (ground-truth probabilities, exact Err) or "
            "labels (hard test labels, Err differences as cross-entropy differences)"
        )
    if f_star is not None:
        return _same(ref, "f_w", _probs(f_star, "f_star"), "f_star"), "f_star"
    y = check_labels(labels, n_classes, "labels").to(ref.device)
    if y.dim() != 1 or y.shape[0] != ref.shape[0]:
        raise ValueError(
            f"labels: shape {tuple(y.shape)} does not match the {ref.shape[0]} prediction rows; "
            "pass one label per row, a 1-D tensor [N]"
        )
    return torch.nn.functional.one_hot(y, n_classes).to(_F64), "labels"


_LOSS_NAME = {
    "f_star": "Err = E KL(F*||F)",
    "labels": "test cross-entropy (Err + H(Y|X); empirical Err)",
}


class _Result:
    """Mixin: ``as_dict()`` (scalars only, for tables/JSON) and a one-line ``__str__``."""

    NAME: ClassVar[str] = ""
    RELATION: ClassVar[str] = ""

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"result": self.NAME, "relation": self.RELATION}
        for f in fields(self):  # type: ignore[arg-type]
            v = getattr(self, f.name)
            if isinstance(v, Tensor) or f.name == "pointwise":
                continue
            out[f.name] = v
        return out

    def __str__(self) -> str:
        d = self.as_dict()
        status = "holds" if d["holds"] else "FAILS"
        return (
            f"{self.NAME}: {self.RELATION}: lhs = {d['lhs']:.6g}, rhs = {d['rhs']:.6g}, "
            f"slack = {d['slack']:.3g} [{status}]"
        )


def _single_thread_blas(fn: Callable[..., _T]) -> Callable[..., _T]:
    """Run ``fn`` with BLAS limited to one thread (the solvers' matrices are tiny).

    Multi-threaded OpenBLAS on tiny matrices is up to 100x slower on a busy machine (measured here:
    L-BFGS-B on an 8-parameter problem 0.5 s with the default threads, 0.003 s with one).
    """

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> _T:
        try:
            from threadpoolctl import threadpool_limits
        except ImportError:  # pragma: no cover - threadpoolctl ships with scikit-learn
            return fn(*args, **kwargs)
        with threadpool_limits(limits=1, user_api="blas"):
            return fn(*args, **kwargs)

    return wrapper


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
    if not (isinstance(gamma, int | float) and 0.0 < gamma <= 1.0 / k):
        raise ValueError(
            f"gamma: must lie in (0, 1/K] = (0, {1.0 / k:.4g}] for K = {k} classes, got {gamma!r}"
        )
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
                "vacuous; clip with w2s_utils.bounds.clip_to_floor(p, gamma) first"
            )
        return emp, "empirical min over x, j of F_w and F_sw"
    k = preds[0][0].shape[-1]
    if not (isinstance(gamma, int | float) and 0.0 < gamma <= 1.0 / k):
        raise ValueError(f"gamma: must lie in (0, 1/K] = (0, {1.0 / k:.4g}], got {gamma!r}")
    for t, n in preds:
        lo = float(t.min())
        if lo < gamma * (1.0 - 1e-12):
            raise ValueError(
                f"{n}: has probabilities down to {lo:.4g} < gamma = {gamma:.4g}, so the floor "
                "hypothesis fails; clip first with w2s_utils.bounds.clip_to_floor(p, gamma) "
                "(or omit gamma to use the empirical floor)"
            )
    return float(gamma), "given"


# --------------------------------------------------------------------------- Lemma 1
@dataclass(frozen=True)
class Lemma1Pointwise:
    """Per-row terms of Lemma 1 (tensors [N] on the input's device)."""

    student_minus_teacher: Tensor  # KL(F*||F_sw) - KL(F*||F_w)
    cross_term: Tensor  # sum_j F*_j log(F_w,j / F_sw,j)
    objective: Tensor  # KL(F_w||F_sw)
    interaction: Tensor  # sum_j (F*_j - F_w,j) log(F_w,j / F_sw,j)


@dataclass(frozen=True)
class Lemma1Result(_Result):
    """Lemma 1: ``Err(F_sw) = Err(F_w) + eps + interaction``, pointwise and averaged.

    ``residual_first``/``residual_second`` are the largest pointwise residuals of the two
    equalities; ``lhs``/``rhs`` the averaged ``Err(F_sw) - Err(F_w)`` and ``eps + interaction``.
    """

    NAME: ClassVar[str] = "Lemma 1"
    RELATION: ClassVar[str] = "Err(F_sw) - Err(F_w) = eps + interaction"

    teacher_error: float
    student_error: float
    objective: float
    interaction: float
    cross_term: float
    residual_first: float
    residual_second: float
    lhs: float
    rhs: float
    slack: float
    holds: bool
    tol: float
    pointwise: Lemma1Pointwise


def lemma1(f_star: Any, f_w: Any, f_sw: Any, *, tol: float = DEFAULT_TOL) -> Lemma1Result:
    """Lemma 1 (needs ``F*``): the exact decomposition of the student's error.

    ``KL(F*||F_sw) - KL(F*||F_w) = sum_j F*_j log(F_w,j/F_sw,j)
    = KL(F_w||F_sw) + sum_j (F*_j - F_w,j) log(F_w,j/F_sw,j)`` for every x. ``F_w`` and ``F_sw``
    must be strictly positive (``F*`` may have zeros). With one-hot ``f_star`` (labels) it is the
    same identity for the empirical distribution.
    """
    tol = _check_tol(tol)
    fs = _probs(f_star, "f_star")
    fw = _same(fs, "f_star", _probs(f_w, "f_w"), "f_w")
    fsw = _same(fs, "f_star", _probs(f_sw, "f_sw"), "f_sw")
    _positive(fw, "f_w", "Lemma 1 (log F_w / F_sw)")
    _positive(fsw, "f_sw", "Lemma 1 (log F_w / F_sw)")
    log_ratio = fw.log() - fsw.log()
    student = metrics.kl(fs, fsw, validate=False)
    teacher = metrics.kl(fs, fw, validate=False)
    cross = (fs * log_ratio).sum(-1)
    objective = metrics.kl(fw, fsw, validate=False)
    interaction = ((fs - fw) * log_ratio).sum(-1)
    diff = student - teacher
    scale = torch.stack([student, teacher, cross.abs(), objective, interaction.abs()]).amax(0)
    scale = scale.clamp_min(1.0)
    res1 = float(((diff - cross).abs() / scale).max())
    res2 = float(((cross - objective - interaction).abs() / scale).max())
    lhs = _mean(diff)
    rhs = _mean(objective) + _mean(interaction)
    holds = res1 <= tol and res2 <= tol and _eq(lhs, rhs, tol)
    return Lemma1Result(
        teacher_error=_mean(teacher),
        student_error=_mean(student),
        objective=_mean(objective),
        interaction=_mean(interaction),
        cross_term=_mean(cross),
        residual_first=res1,
        residual_second=res2,
        lhs=lhs,
        rhs=rhs,
        slack=rhs - lhs,
        holds=holds,
        tol=tol,
        pointwise=Lemma1Pointwise(diff, cross, objective, interaction),
    )


# --------------------------------------------------------------------------- Theorem 1
@dataclass(frozen=True)
class Theorem1Result(_Result):
    """Theorem 1: ``|Err(F_sw) - Err(F_w)| <= E TV / gamma <= sqrt(eps/2) / gamma`` (and eps_rev).

    ``diff = Err(F_sw) - Err(F_w)`` (``source="f_star"``: exact; ``"labels"``: the difference of
    test cross-entropies). ``lower``/``upper`` bound ``diff``; ``slack = bound_tv - |diff|``.
    """

    NAME: ClassVar[str] = "Theorem 1"
    RELATION: ClassVar[str] = "|Err(F_sw) - Err(F_w)| <= E TV(F_w, F_sw) / gamma"

    source: str
    loss: str
    teacher_loss: float
    student_loss: float
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


def _losses(target: Tensor, fw: Tensor, fsw: Tensor) -> tuple[Tensor, Tensor]:
    """Per-row KL(target||F_w), KL(target||F_sw) (= CE for one-hot targets)."""
    return metrics.kl(target, fw, validate=False), metrics.kl(target, fsw, validate=False)


def theorem1(
    f_w: Any,
    f_sw: Any,
    *,
    f_star: Any = None,
    labels: Any = None,
    gamma: float | None = None,
    tol: float = DEFAULT_TOL,
) -> Theorem1Result:
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
    fw = _probs(f_w, "f_w")
    fsw = _same(fw, "f_w", _probs(f_sw, "f_sw"), "f_sw")
    g, g_src = _floor(gamma, (fw, "f_w"), (fsw, "f_sw"))
    target, source = _target(fw.shape[-1], fw, f_star, labels)
    teacher, student = _losses(target, fw, fsw)
    diff = _mean(student) - _mean(teacher)
    mean_tv = _mean(metrics.tv(fw, fsw, validate=False))
    eps = _mean(metrics.kl(fw, fsw, validate=False))
    eps_rev = _mean(metrics.kl(fsw, fw, validate=False))
    bound_tv = mean_tv / g
    bound_eps = math.sqrt(eps / 2.0) / g
    bound_eps_rev = math.sqrt(eps_rev / 2.0) / g
    lhs = abs(diff)
    holds = (
        _le(lhs, bound_tv, tol)
        and _le(bound_tv, bound_eps, tol)
        and _le(bound_tv, bound_eps_rev, tol)
    )
    return Theorem1Result(
        source=source,
        loss=_LOSS_NAME[source],
        teacher_loss=_mean(teacher),
        student_loss=_mean(student),
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
class Theorem1AltResult(_Result):
    """Theorem 1, alternative form: ``Err(F_sw)`` within ``Err(F_w) + eps +- M sqrt(2 Err(F_w))``.

    ``value`` is the student's loss, ``lower``/``upper`` the two sides; ``slack`` the smaller of
    ``value - lower`` and ``upper - value``. With labels every ``Err`` is the test cross-entropy.
    """

    NAME: ClassVar[str] = "Theorem 1 (alt.)"
    RELATION: ClassVar[str] = "|Err(F_sw) - Err(F_w) - eps| <= M sqrt(2 Err(F_w))"

    source: str
    loss: str
    teacher_loss: float
    student_loss: float
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


def theorem1_alt(
    f_w: Any,
    f_sw: Any,
    *,
    f_star: Any = None,
    labels: Any = None,
    tol: float = DEFAULT_TOL,
) -> Theorem1AltResult:
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
    fw = _probs(f_w, "f_w")
    fsw = _same(fw, "f_w", _probs(f_sw, "f_sw"), "f_sw")
    _positive(fw, "f_w", "Theorem 1 (alt.) (M = max |log F_w / F_sw|)")
    _positive(fsw, "f_sw", "Theorem 1 (alt.) (M = max |log F_w / F_sw|)")
    target, source = _target(fw.shape[-1], fw, f_star, labels)
    teacher_t, student_t = _losses(target, fw, fsw)
    teacher, student = _mean(teacher_t), _mean(student_t)
    eps = _mean(metrics.kl(fw, fsw, validate=False))
    m = float((fw.log() - fsw.log()).abs().max())
    width = m * math.sqrt(2.0 * max(teacher, 0.0))
    lower, upper = teacher + eps - width, teacher + eps + width
    lhs = abs(student - teacher - eps)
    return Theorem1AltResult(
        source=source,
        loss=_LOSS_NAME[source],
        teacher_loss=teacher,
        student_loss=student,
        eps=eps,
        m=m,
        width=width,
        lower=lower,
        value=student,
        upper=upper,
        lhs=lhs,
        rhs=width,
        slack=min(student - lower, upper - student),
        holds=_le(lower, student, tol) and _le(student, upper, tol),
        tol=tol,
    )


# --------------------------------------------------------------------------- Theorem 2
def _binary(p: Any, name: str) -> Tensor:
    t = _probs(p, name)
    if t.shape[-1] != 2:
        raise ValueError(
            f"{name}: Theorem 2 is the binary result, got {t.shape[-1]} classes; "
            "pass [N] positive-class probabilities or [N, 2]"
        )
    return t


def _check_n_bins(n_bins: int) -> int:
    if not isinstance(n_bins, int) or isinstance(n_bins, bool) or n_bins < 1:
        raise ValueError(f"n_bins: must be a positive integer, got {n_bins!r}")
    return n_bins


@dataclass(frozen=True)
class Theorem2Result(_Result):
    """Theorem 2: ``|smCE(p_sw) - smCE(p_w)| <= 2 E|p_sw - p_w| <= sqrt(2 eps)`` (binary).

    ``bound_abs = 2 E|p_sw - p_w|`` (the theorem's first side), ``bound_pointwise =
    2 E sqrt(KL(F_w||F_sw)/2)``, ``bound_eps = sqrt(2 eps)``, ``bound_eps_rev = sqrt(2 eps_rev)``.
    ``ece_w``/``ece_sw`` are binned ECEs (15 equal-width bins, top label) shown beside smCE: binned
    ECE is not Lipschitz in the predictor and carries no such guarantee.
    """

    NAME: ClassVar[str] = "Theorem 2"
    RELATION: ClassVar[str] = "|smCE(p_sw) - smCE(p_w)| <= 2 E|p_sw - p_w|"

    source: str
    smce_w: float
    smce_sw: float
    diff: float
    mean_abs: float
    eps: float
    eps_rev: float
    bound_abs: float
    bound_pointwise: float
    bound_eps: float
    bound_eps_rev: float
    ece_w: float
    ece_sw: float
    lhs: float
    rhs: float
    slack: float
    holds: bool
    tol: float


def theorem2(
    p_w: Any,
    p_sw: Any,
    *,
    labels: Any = None,
    f_star: Any = None,
    n_bins: int = 15,
    tol: float = DEFAULT_TOL,
) -> Theorem2Result:
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
    fw = _binary(p_w, "p_w")
    fsw = _same(fw, "p_w", _binary(p_sw, "p_sw"), "p_sw")
    target, source = _target(2, fw, f_star, labels)
    pw, psw, y = fw[:, 1], fsw[:, 1], target[:, 1]
    # against hard labels, or against F*'s probabilities (the metrics take either)
    truth = {"labels": y.long()} if source == "labels" else {"target": y}
    smce_w = metrics.smooth_ce(pw, **truth, validate=False)
    smce_sw = metrics.smooth_ce(psw, **truth, validate=False)
    truth = {"labels": y.long()} if source == "labels" else {"target": target}
    ece_w = metrics.ece(fw, **truth, n_bins=n_bins, validate=False)
    ece_sw = metrics.ece(fsw, **truth, n_bins=n_bins, validate=False)
    diff = abs(smce_sw - smce_w)
    mean_abs = _mean((psw - pw).abs())
    kl_fwd = metrics.kl(fw, fsw, validate=False)
    eps = _mean(kl_fwd)
    eps_rev = _mean(metrics.kl(fsw, fw, validate=False))
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
    return Theorem2Result(
        source=source,
        smce_w=smce_w,
        smce_sw=smce_sw,
        diff=diff,
        mean_abs=mean_abs,
        eps=eps,
        eps_rev=eps_rev,
        bound_abs=bound_abs,
        bound_pointwise=bound_pointwise,
        bound_eps=bound_eps,
        bound_eps_rev=bound_eps_rev,
        ece_w=ece_w,
        ece_sw=ece_sw,
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


# --------------------------------------------------------------------------- Theorem 3
@dataclass(frozen=True)
class Theorem3Result(_Result):
    """Theorem 3: ``Err(F_sw) <= Err(F_w) - E KL(F_sw||F_w)`` (gain >= disagreement).

    ``slack = rhs - lhs`` equals ``E sum_j (F* - F_sw)_j log(F_sw,j / F_w,j)``, the directional
    derivative of the reverse-KL objective towards ``F*``: >= 0 at an I-projection onto a convex
    class containing ``F*``, and >= ``-gap`` for an approximate one.
    """

    NAME: ClassVar[str] = "Theorem 3"
    RELATION: ClassVar[str] = "Err(F_sw) <= Err(F_w) - E KL(F_sw||F_w)"

    err_w: float
    err_sw: float
    gain: float
    disagreement: float
    lhs: float
    rhs: float
    slack: float
    holds: bool
    tol: float


def theorem3(f_star: Any, f_w: Any, f_sw: Any, *, tol: float = DEFAULT_TOL) -> Theorem3Result:
    """Theorem 3 (needs ``F*``): reverse-KL student on a convex class beats its teacher by at least
    their disagreement ``E KL(F_sw||F_w)``.

    Hypotheses (not checkable from the arrays): the class is convex *in probability space*, contains
    ``F*``, and ``F_sw`` is the I-projection ``argmin_F E KL(F||F_w)`` (e.g. from
    :func:`i_projection_mixture`; pass its ``gap`` as ``tol``). Without them the inequality can
    fail (:func:`find_reverse_kl_logit_counterexample`).
    """
    tol = _check_tol(tol)
    fs = _probs(f_star, "f_star")
    fw = _same(fs, "f_star", _probs(f_w, "f_w"), "f_w")
    fsw = _same(fs, "f_star", _probs(f_sw, "f_sw"), "f_sw")
    err_w = _mean(metrics.kl(fs, fw, validate=False))
    err_sw = _mean(metrics.kl(fs, fsw, validate=False))
    dis = _mean(metrics.kl(fsw, fw, validate=False))
    rhs = err_w - dis
    return Theorem3Result(
        err_w=err_w,
        err_sw=err_sw,
        gain=err_w - err_sw,
        disagreement=dis,
        lhs=err_sw,
        rhs=rhs,
        slack=rhs - err_sw,
        holds=_le(err_sw, rhs, tol),
        tol=tol,
    )


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
    err_w: float
    err_sw: float
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
    f_star: Any, f_w: Any, f_sw: Any, *, tol: float = 1e-6
) -> ForwardKLIdentityResult:
    """The forward-KL proposition (needs ``F*``): exact identity when ``F* = softmax(W* phi)`` and
    ``F_sw = argmin_W E KL(F_w||softmax(W phi))`` on the same features (moment matching
    ``E[phi (F_w - F_sw)^T] = 0``; see :func:`forward_kl_projection_linear`). Error is measured
    with the model first (``KL(F||F*)``). ``holds``: ``|residual| <= tol`` (relative), default 1e-6.
    """
    tol = _check_tol(tol)
    fs = _probs(f_star, "f_star")
    fw = _same(fs, "f_star", _probs(f_w, "f_w"), "f_w")
    fsw = _same(fs, "f_star", _probs(f_sw, "f_sw"), "f_sw")
    kl_w = _mean(metrics.kl(fw, fs, validate=False))
    kl_sw = _mean(metrics.kl(fsw, fs, validate=False))
    eps = _mean(metrics.kl(fw, fsw, validate=False))
    err_w = _mean(metrics.kl(fs, fw, validate=False))
    err_sw = _mean(metrics.kl(fs, fsw, validate=False))
    rhs = kl_sw + eps
    remark_rhs = err_w - eps
    return ForwardKLIdentityResult(
        kl_w_star=kl_w,
        kl_sw_star=kl_sw,
        eps=eps,
        residual=kl_w - rhs,
        err_w=err_w,
        err_sw=err_sw,
        remark_lhs=err_sw,
        remark_rhs=remark_rhs,
        remark_slack=remark_rhs - err_sw,
        remark_holds=_le(err_sw, remark_rhs, DEFAULT_TOL),
        lhs=kl_w,
        rhs=rhs,
        slack=rhs - kl_w,
        holds=_eq(kl_w, rhs, tol),
        tol=tol,
    )


# --------------------------------------------------------------------------- Charikar
def _real(x: Any, name: str) -> Tensor:
    t = as_tensor(x, name)
    if t.dim() not in (1, 2) or t.numel() == 0:
        raise ValueError(
            f"{name}: expected real-valued predictions [N] or [N, m], got shape {tuple(t.shape)}"
        )
    if not bool(torch.isfinite(t).all()):
        raise ValueError(f"{name}: contains NaN or inf; predictions must be finite")
    return t.to(_F64)


@dataclass(frozen=True)
class CharikarResult(_Result):
    """Charikar et al.: ``E(f_sw - F*)^2 <= E(f_w - F*)^2 - E(f_sw - f_w)^2`` (gain >= misfit).

    ``slack = 2 E<f_w - f_sw, f_sw - F*>`` >= 0 for a projection onto a convex class containing
    ``F*``; it is 0 (Pythagoras) for least squares onto a linear class on the same sample.
    """

    NAME: ClassVar[str] = "Charikar et al."
    RELATION: ClassVar[str] = "E(f_sw - F*)^2 <= E(f_w - F*)^2 - E(f_sw - f_w)^2"

    err_w: float
    err_sw: float
    misfit: float
    gain: float
    lhs: float
    rhs: float
    slack: float
    holds: bool
    tol: float


def charikar(f_star: Any, f_w: Any, f_sw: Any, *, tol: float = DEFAULT_TOL) -> CharikarResult:
    """Charikar et al. 2024 (needs ``F*``), squared loss on real-valued outputs ``[N]`` or
    ``[N, m]`` (``m`` outputs: squared Euclidean norm per row).

    Hypotheses (not checkable from the arrays): ``F*`` lies in a convex class and ``f_sw`` is the
    L2 projection of ``f_w`` onto it (e.g. :func:`least_squares_projection` on the strong
    representation, evaluated on the sample it was fitted on).
    """
    tol = _check_tol(tol)
    fs = _real(f_star, "f_star")
    fw = _real(f_w, "f_w")
    fsw = _real(f_sw, "f_sw")
    fw = _same(fs, "f_star", fw, "f_w")
    fsw = _same(fs, "f_star", fsw, "f_sw")

    def sq(a: Tensor) -> float:
        return _mean(a.square() if a.dim() == 1 else a.square().sum(-1))

    err_w, err_sw, mis = sq(fw - fs), sq(fsw - fs), sq(fsw - fw)
    rhs = err_w - mis
    return CharikarResult(
        err_w=err_w,
        err_sw=err_sw,
        misfit=mis,
        gain=err_w - err_sw,
        lhs=err_sw,
        rhs=rhs,
        slack=rhs - err_sw,
        holds=_le(err_sw, rhs, tol),
        tol=tol,
    )


# --------------------------------------------------------------------------- solvers
@dataclass(frozen=True)
class IProjection:
    """Reverse-KL (I-)projection onto mixtures: ``F_sw = sum_i weights[i] components[i]``.

    ``objective = E KL(F_sw||F_w)``; ``gap`` is the Frank-Wolfe duality gap, an upper bound on
    ``objective - min``, and bounds how far Theorem 3's slack can fall below 0.
    """

    weights: Tensor
    f_sw: Tensor
    objective: float
    gap: float
    n_iter: int
    converged: bool


def _components(components: Any, ref: Tensor) -> np.ndarray:
    if isinstance(components, Sequence) and not isinstance(components, np.ndarray):
        if len(components) == 0:
            raise ValueError("components: is empty; pass at least one predictor")
        comps = [_probs(c, f"components[{i}]") for i, c in enumerate(components)]
        for i, c in enumerate(comps):
            _same(ref, "f_w", c, f"components[{i}]")
        arr = torch.stack([c.cpu() for c in comps])
    else:
        t = check_probs(components, "components")
        if t.dim() != 3 or tuple(t.shape[1:]) != tuple(ref.shape):
            raise ValueError(
                f"components: expected [k, N, K] = [k, {ref.shape[0]}, {ref.shape[1]}], got "
                f"{tuple(t.shape)}"
            )
        arr = t.to(_F64).cpu()
        arr = arr / arr.sum(-1, keepdim=True)
    if bool((arr <= 0).any()):
        raise ValueError(
            "components: has zero probabilities; the I-projection solver needs strictly positive "
            "components (softmax outputs are); clip with clip_to_floor"
        )
    return arr.numpy()


@_single_thread_blas
def i_projection_mixture(
    f_w: Any, components: Any, *, tol: float = 1e-12, max_iter: int = 500
) -> IProjection:
    """``argmin_{a in simplex} E_x KL(sum_i a_i C_i(x) || F_w(x))``: the I-projection of the weak
    predictions onto the convex hull (in probability space) of ``k`` fixed predictors.

    ``components``: ``[k, N, K]`` (or a list of ``[N, K]``), strictly positive. Float64 active-set
    Newton method on the simplex (Newton steps on the current face with exact line search,
    Frank-Wolfe steps to enter new vertices), stopped when the Frank-Wolfe gap is ``<= tol``.
    """
    fw_t = _probs(f_w, "f_w")
    _positive(fw_t, "f_w", "the reverse-KL objective KL(F || F_w)")
    c = _components(components, fw_t)
    log_w = fw_t.detach().cpu().numpy().astype(np.float64)
    log_w = np.log(log_w)
    k, n, _ = c.shape

    def mix(a: np.ndarray) -> np.ndarray:
        return np.tensordot(a, c, axes=1)

    def obj(a: np.ndarray) -> float:
        f = mix(a)
        return float((f * (np.log(f) - log_w)).sum() / n)

    def grad(a: np.ndarray) -> np.ndarray:
        f = mix(a)
        return np.einsum("inj,nj->i", c, np.log(f) - log_w + 1.0) / n

    def hess(a: np.ndarray) -> np.ndarray:
        f = mix(a)
        return np.einsum("inj,lnj->il", c / f, c) / n

    def line_search(a: np.ndarray, d: np.ndarray, t_max: float) -> float:
        """Exact minimiser of the convex phi(t) = obj(a + t d) on [0, t_max] (bisection on phi')."""
        if grad(a + t_max * d) @ d <= 0.0:
            return t_max
        lo, hi = 0.0, t_max
        for _ in range(80):
            mid = 0.5 * (lo + hi)
            if grad(a + mid * d) @ d > 0.0:
                hi = mid
            else:
                lo = mid
            if hi - lo <= 1e-17 * max(1.0, t_max):
                break
        return lo

    a = np.full(k, 1.0 / k)
    gap = math.inf
    it = 0
    for it in range(1, max_iter + 1):  # noqa: B007 - it is reported
        g = grad(a)
        gap = float(g @ a - g.min())
        if gap <= tol:
            break
        support = np.flatnonzero(a > 0)
        face_gap = float(g[support] @ a[support] - g[support].min())
        if face_gap <= 0.1 * gap:  # face optimal: enter the best vertex (Frank-Wolfe step)
            d = -a.copy()
            d[int(np.argmin(g))] += 1.0
            t = line_search(a, d, 1.0)
            a = a + t * d
        else:  # Newton step on the face {a_S, sum a_S = 1}
            h = hess(a)[np.ix_(support, support)]
            s = len(support)
            kkt = np.zeros((s + 1, s + 1))
            kkt[:s, :s] = h
            kkt[:s, s] = 1.0
            kkt[s, :s] = 1.0
            rhs = np.concatenate([-g[support], [0.0]])
            sol = np.linalg.lstsq(kkt, rhs, rcond=None)[0]
            d = np.zeros(k)
            d[support] = sol[:s]
            d[support] -= d[support].sum() / s  # stay exactly on sum = 1
            ratios = np.full(k, math.inf)
            neg = d < 0
            ratios[neg] = -a[neg] / d[neg]
            j_block = int(np.argmin(ratios))
            t_block = float(ratios[j_block])
            t = line_search(a, d, min(1.0, t_block))
            a = a + t * d
            if t >= t_block:  # hit the face's boundary: drop that vertex exactly
                a[j_block] = 0.0
        a = np.clip(a, 0.0, None)
        a = a / a.sum()
    else:
        g = grad(a)
        gap = float(g @ a - g.min())
    f_sw = torch.from_numpy(mix(a)).to(fw_t.device)
    return IProjection(
        weights=torch.from_numpy(a).to(fw_t.device),
        f_sw=f_sw,
        objective=obj(a),
        gap=max(gap, 0.0),
        n_iter=it,
        converged=gap <= tol,
    )


@dataclass(frozen=True)
class LinearProjection:
    """A student on the logit-linear class ``softmax(W phi)`` (``weights`` [K, d], last row 0).

    ``grad_max``: largest absolute gradient entry of the solved objective at the returned point.
    ``moment_residual``: ``max |E[phi (F_w - F_sw)^T]|`` -- for the forward-KL projection this *is*
    the gradient, and 0 at the optimum (moment matching). ``max_abs_logit`` flags minimisers that
    run off to infinity (one-hot predictions).
    """

    weights: Tensor
    f_sw: Tensor
    objective: float
    grad_max: float
    moment_residual: float
    max_abs_logit: float
    n_iter: int
    converged: bool


def _features(features: Any, n: int) -> np.ndarray:
    t = as_tensor(features, "features")
    if t.dim() != 2 or t.shape[0] != n:
        raise ValueError(
            f"features: expected [N, d] with N = {n} rows (one per prediction), got "
            f"{tuple(t.shape)}"
        )
    if not bool(torch.isfinite(t).all()):
        raise ValueError("features: contains NaN or inf; features must be finite")
    return t.detach().cpu().numpy().astype(np.float64)


def _logsumexp(z: np.ndarray) -> np.ndarray:
    m = z.max(axis=1, keepdims=True)
    return m + np.log(np.exp(z - m).sum(axis=1, keepdims=True))


def _unpack(v: np.ndarray, k: int, d: int) -> np.ndarray:
    return np.vstack([v.reshape(k - 1, d), np.zeros((1, d))])


def _forward_fg(v: np.ndarray, x: np.ndarray, p: np.ndarray, ent: float):
    n, d = x.shape
    k = p.shape[1]
    z = x @ _unpack(v, k, d).T
    logq = z - _logsumexp(z)
    f = ent - float((p * logq).sum()) / n
    g = (np.exp(logq) - p).T @ x / n
    return f, g[: k - 1].ravel()


def _forward_hess(v: np.ndarray, x: np.ndarray, k: int) -> np.ndarray:
    n, d = x.shape
    z = x @ _unpack(v, k, d).T
    q = np.exp(z - _logsumexp(z))[:, : k - 1]
    hq = np.einsum("na,ab->nab", q, np.eye(k - 1)) - q[:, :, None] * q[:, None, :]
    h = np.einsum("nab,ni,nj->aibj", hq, x, x) / n
    return h.reshape((k - 1) * d, (k - 1) * d)


def _reverse_fg(v: np.ndarray, x: np.ndarray, logp: np.ndarray):
    n, d = x.shape
    k = logp.shape[1]
    z = x @ _unpack(v, k, d).T
    logq = z - _logsumexp(z)
    q = np.exp(logq)
    a = logq - logp
    kl_rows = (q * a).sum(axis=1)
    gz = q * (a - kl_rows[:, None])
    g = gz.T @ x / n
    return float(kl_rows.mean()), g[: k - 1].ravel()


def _linear_result(
    v: np.ndarray,
    x: np.ndarray,
    p: np.ndarray,
    obj: float,
    g: np.ndarray,
    n_iter: int,
    converged: bool,
    device: torch.device,
) -> LinearProjection:
    k, d = p.shape[1], x.shape[1]
    w = _unpack(v, k, d)
    z = x @ w.T
    q = np.exp(z - _logsumexp(z))
    moment = float(np.abs((p - q).T @ x / x.shape[0]).max())
    return LinearProjection(
        weights=torch.from_numpy(w).to(device),
        f_sw=torch.from_numpy(q).to(device),
        objective=obj,
        grad_max=float(np.abs(g).max()) if g.size else 0.0,
        moment_residual=moment,
        max_abs_logit=float(np.abs(z - z.mean(axis=1, keepdims=True)).max()),
        n_iter=n_iter,
        converged=converged,
    )


@_single_thread_blas
def forward_kl_projection_linear(
    features: Any, f_w: Any, *, tol: float = 1e-12, max_iter: int = 2000
) -> LinearProjection:
    """``argmin_W E KL(F_w || softmax(W phi))``: multinomial logistic regression on soft labels.

    Float64 L-BFGS (scipy) to convergence, then damped Newton steps with the exact Hessian until
    the moment-matching residual ``max |E[phi (F_w - F_sw)^T]|`` is ``<= tol`` (reported either
    way). The last row of ``W`` is fixed to 0 (softmax is invariant to a common shift). Add a
    column of ones to ``features`` for an intercept.
    """
    from scipy.optimize import minimize

    pt = _probs(f_w, "f_w")
    p = pt.detach().cpu().numpy()
    x = _features(features, p.shape[0])
    n, d = x.shape
    k = p.shape[1]
    ent = float(np.sum(np.where(p > 0, p * np.log(np.where(p > 0, p, 1.0)), 0.0))) / n
    v0 = np.zeros((k - 1) * d)
    res = minimize(
        _forward_fg,
        v0,
        args=(x, p, ent),
        jac=True,
        method="L-BFGS-B",
        options={"maxiter": max_iter, "gtol": 1e-14, "ftol": 1e-16, "maxcor": 30},
    )
    v = res.x
    f, g = _forward_fg(v, x, p, ent)
    n_iter = int(res.nit)
    for _ in range(50):
        if np.abs(g).max() <= tol:
            break
        h = _forward_hess(v, x, k)
        step = np.linalg.lstsq(h, -g, rcond=None)[0]
        t = 1.0
        while t > 1e-12:
            f_new, g_new = _forward_fg(v + t * step, x, p, ent)
            if f_new <= f + 1e-4 * t * float(g @ step) or (
                f_new <= f + 1e-14 * max(1.0, abs(f)) and np.abs(g_new).max() < np.abs(g).max()
            ):
                break
            t *= 0.5
        else:
            break
        v, f, g = v + t * step, f_new, g_new
        n_iter += 1
    return _linear_result(v, x, p, f, g, n_iter, bool(np.abs(g).max() <= tol), pt.device)


@_single_thread_blas
def reverse_kl_projection_linear(
    features: Any, f_w: Any, *, n_restarts: int = 8, seed: int = 0, max_iter: int = 5000
) -> LinearProjection:
    """``argmin_W E KL(softmax(W phi) || F_w)``: the reverse-KL student on the logit-linear class.

    The objective is not convex in ``W``; this returns the best of ``n_restarts`` float64 L-BFGS
    runs (from 0, from the forward-KL solution, and from seeded random starts). ``converged`` when
    the best run's gradient is below 1e-8 and its logits stay finite (``max_abs_logit < 50``;
    otherwise the infimum is approached by predictions running off to a vertex).
    """
    from scipy.optimize import minimize

    pt = _probs(f_w, "f_w")
    _positive(pt, "f_w", "the reverse-KL objective KL(F || F_w)")
    p = pt.detach().cpu().numpy()
    x = _features(features, p.shape[0])
    if not isinstance(n_restarts, int) or n_restarts < 1:
        raise ValueError(f"n_restarts: must be a positive integer, got {n_restarts!r}")
    n, d = x.shape
    k = p.shape[1]
    logp = np.log(p)
    rng = np.random.default_rng(seed)
    starts = [np.zeros((k - 1) * d)]
    if n_restarts > 1:
        starts.append(forward_kl_projection_linear(x, p).weights.cpu().numpy()[: k - 1].ravel())
    while len(starts) < n_restarts:
        starts.append(rng.normal(0.0, 2.0, (k - 1) * d))
    best = None
    total_iter = 0
    for v0 in starts:
        res = minimize(
            _reverse_fg,
            v0,
            args=(x, logp),
            jac=True,
            method="L-BFGS-B",
            options={"maxiter": max_iter, "gtol": 1e-13, "ftol": 1e-16, "maxcor": 30},
        )
        total_iter += int(res.nit)
        if best is None or res.fun < best.fun:
            best = res
    assert best is not None
    f, g = _reverse_fg(best.x, x, logp)
    out = _linear_result(best.x, x, p, f, g, total_iter, False, pt.device)
    ok = out.grad_max <= 1e-8 and out.max_abs_logit < 50.0
    return LinearProjection(**{**out.__dict__, "converged": ok})


@dataclass(frozen=True)
class LeastSquaresProjection:
    """Least-squares fit ``predictions = features @ coef``; ``orthogonality`` is
    ``max |E[phi (targets - predictions)]|`` (0 at the optimum: the residual is orthogonal)."""

    coef: Tensor
    predictions: Tensor
    orthogonality: float


def least_squares_projection(features: Any, targets: Any) -> LeastSquaresProjection:
    """The L2 projection of ``targets`` ([N] or [N, m]) onto linear functions of ``features`` [N, d]
    (float64 ``lstsq``; add a column of ones for an intercept). Charikar et al.'s ``f_sw`` when
    ``features`` is the strong representation and ``targets`` the weak model's predictions."""
    y_t = _real(targets, "targets")
    x = _features(features, y_t.shape[0])
    y = y_t.detach().cpu().numpy()
    coef = np.linalg.lstsq(x, y, rcond=None)[0]
    pred = x @ coef
    orth = float(np.abs(x.T @ (y - pred) / x.shape[0]).max())
    dev = y_t.device
    return LeastSquaresProjection(
        coef=torch.from_numpy(coef).to(dev),
        predictions=torch.from_numpy(pred).to(dev),
        orthogonality=orth,
    )


# --------------------------------------------------------------------------- non-guarantees
TRIAL_KINDS = ("forward_kl", "reverse_kl_logit", "reverse_kl_mixture")


@dataclass(frozen=True)
class TrialOutcome:
    """One random small instance tested against a (non-)guarantee.

    ``violation = lhs - rhs`` of the inequality ``Err(F_sw) <= Err(F_w) - misfit`` (misfit = eps for
    ``"forward_kl"``, ``E KL(F_sw||F_w)`` otherwise); ``valid`` when the solver reached its optimum.
    """

    kind: str
    seed: int
    n: int
    d: int
    n_classes: int
    lhs: float
    rhs: float
    violation: float
    violated: bool
    valid: bool
    solver_residual: float


@dataclass(frozen=True)
class Counterexample:
    """A concrete instance violating a statement that is *not* a theorem."""

    kind: str
    seed: int
    tries: int
    instance: Any  # w2s_utils.instances.LogitLinearInstance
    f_sw: Tensor
    projection: Any  # LinearProjection
    result: Any  # ForwardKLIdentityResult or Theorem3Result
    violation: float


def _small_instance(seed: int, weak_noise: float | None, n_classes: int | None):
    from w2s_utils.instances import logit_linear_instance

    rng = np.random.default_rng([seed, 2718])
    n = int(rng.integers(4, 12))
    d = int(rng.integers(2, 5))
    k = int(rng.integers(2, 5)) if n_classes is None else n_classes
    return logit_linear_instance(seed, n=n, d=d, n_classes=k, scale=1.0, weak_noise=weak_noise)


def _trial(kind: str, seed: int, weak_noise: float | None, n_classes: int | None, margin: float):
    if kind not in TRIAL_KINDS:
        raise ValueError(f"kind: must be one of {', '.join(TRIAL_KINDS)}, got {kind!r}")
    inst = _small_instance(seed, weak_noise, n_classes)
    n, d = inst.features.shape
    k = inst.f_star.shape[1]
    if kind == "forward_kl":
        proj = forward_kl_projection_linear(inst.features, inst.f_w)
        f_sw = proj.f_sw
        res = forward_kl_identity(inst.f_star, inst.f_w, f_sw)
        lhs, rhs, resid = res.remark_lhs, res.remark_rhs, proj.moment_residual
        valid = proj.moment_residual <= 1e-9
    elif kind == "reverse_kl_logit":
        proj = reverse_kl_projection_linear(inst.features, inst.f_w, seed=seed)
        f_sw = proj.f_sw
        res = theorem3(inst.f_star, inst.f_w, f_sw)
        lhs, rhs, resid = res.lhs, res.rhs, proj.grad_max
        valid = proj.converged
    else:  # convex hull in probability space of F* and two other logit-linear heads
        gen = torch.Generator().manual_seed(seed + 31337)
        heads = torch.randn((2, k, d), generator=gen, dtype=_F64)
        others = torch.softmax(torch.einsum("hkd,nd->hnk", heads, inst.features), dim=-1)
        comps = torch.cat([inst.f_star[None], others])
        proj = i_projection_mixture(inst.f_w, comps)
        f_sw = proj.f_sw
        res = theorem3(inst.f_star, inst.f_w, f_sw, tol=max(proj.gap, DEFAULT_TOL))
        lhs, rhs, resid = res.lhs, res.rhs, proj.gap
        valid = proj.converged
    violation = lhs - rhs
    outcome = TrialOutcome(
        kind=kind,
        seed=seed,
        n=n,
        d=d,
        n_classes=k,
        lhs=lhs,
        rhs=rhs,
        violation=violation,
        violated=bool(violation > margin),
        valid=bool(valid),
        solver_residual=float(resid),
    )
    return outcome, inst, proj, f_sw, res


def non_guarantee_trial(
    kind: str,
    seed: int,
    *,
    weak_noise: float | None = None,
    n_classes: int | None = None,
    margin: float = 1e-6,
) -> TrialOutcome:
    """Test ``Err(F_sw) <= Err(F_w) - misfit`` on one small random realizable instance.

    Instance (seeded): ``n`` in 4..11 points, ``d`` in 2..4 Gaussian features, ``K`` in 2..4 classes
    (or ``n_classes``), ``F* = softmax(W* phi)``, ``W* ~ N(0, 1)``, weak teacher arbitrary
    (Dirichlet(1), ``weak_noise=None``) or close to the class (``softmax(log F* + noise * z)``).
    ``kind``: ``"forward_kl"`` (forward-KL student, misfit ``eps``; not a theorem),
    ``"reverse_kl_logit"`` (reverse-KL student on the logit-linear class; not a theorem: the class
    is not convex in probability space), ``"reverse_kl_mixture"`` (reverse-KL student on the convex
    hull of ``F*`` and two other heads: Theorem 3, never violated). ``violated`` means by more than
    ``margin``; only ``valid`` trials (solver at its optimum) count.
    """
    return _trial(kind, seed, weak_noise, n_classes, margin)[0]


def _find(kind: str, seed: int, max_tries: int, weak_noise, n_classes, margin) -> Counterexample:
    if not isinstance(max_tries, int) or max_tries < 1:
        raise ValueError(f"max_tries: must be a positive integer, got {max_tries!r}")
    for t in range(max_tries):
        inst_seed = 1_000_003 * seed + t
        out, inst, proj, f_sw, res = _trial(kind, inst_seed, weak_noise, n_classes, margin)
        if out.valid and out.violated:
            return Counterexample(kind, inst_seed, t + 1, inst, f_sw, proj, res, out.violation)
    raise RuntimeError(
        f"no {kind} counterexample in {max_tries} instances from seed {seed}; raise max_tries"
    )


def find_forward_kl_counterexample(
    seed: int = 0,
    *,
    max_tries: int = 200,
    weak_noise: float | None = None,
    n_classes: int | None = None,
    margin: float = 1e-6,
) -> Counterexample:
    """Search (deterministically from ``seed``) for a logit-linear instance where the forward-KL
    student violates ``Err(F_sw) <= Err(F_w) - eps`` with ``Err = E KL(F*||.)`` by more than
    ``margin``, with the projection verified optimal (moment residual <= 1e-9). The forward-KL
    *identity* (error measured as ``KL(.||F*)``) still holds there: see ``result``."""
    return _find("forward_kl", seed, max_tries, weak_noise, n_classes, margin)


def find_reverse_kl_logit_counterexample(
    seed: int = 0,
    *,
    max_tries: int = 200,
    weak_noise: float | None = None,
    n_classes: int | None = None,
    margin: float = 1e-6,
) -> Counterexample:
    """Search (deterministically from ``seed``) for a logit-linear instance where the reverse-KL
    student (best of several L-BFGS runs, gradient <= 1e-8, finite logits) violates Theorem 3's
    inequality by more than ``margin``: the class ``softmax(W phi)`` is not convex in probability
    space, so Theorem 3 does not apply."""
    return _find("reverse_kl_logit", seed, max_tries, weak_noise, n_classes, margin)
