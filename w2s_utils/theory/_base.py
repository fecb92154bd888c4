"""The shared base of every result: tolerance, comparisons, input checks and the result mixin."""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from dataclasses import fields
from typing import Any, ClassVar, TypeVar

import numpy as np
import torch
from torch import Tensor

from w2s_utils import metrics
from w2s_utils._validate import as_tensor, as_two_class, check_int, check_labels, check_number

DEFAULT_TOL = 1e-9


_F64 = torch.float64


_T = TypeVar("_T")


# --------------------------------------------------------------------------- helpers
class UndefinedResultError(ValueError):
    """A result whose sides cannot be evaluated (NaN, or both infinite): neither holds nor fails."""


_UNDEFINED_HINT = (
    "the result is undefined here (it neither holds nor fails); this usually means zero "
    "probabilities (an infinite KL or log-ratio): clip the predictions with "
    "w2s_utils.theory.clip_to_floor(p, gamma) first"
)


def _le(a: float, b: float, tol: float) -> bool:
    """``a <= b`` up to a relative tolerance, in the extended reals (``b = +inf`` holds for every
    number ``a``). NaN on either side cannot be compared: :class:`UndefinedResultError`."""
    if math.isnan(a) or math.isnan(b):
        raise UndefinedResultError(f"lhs/rhs: cannot compare {a!r} <= {b!r}; {_UNDEFINED_HINT}")
    if math.isinf(b) and b > 0:
        return True
    if not (math.isfinite(a) and math.isfinite(b)):
        return False
    return a <= b + tol * max(1.0, abs(a), abs(b))


def _eq(a: float, b: float, tol: float) -> bool:
    return _le(a, b, tol) and _le(b, a, tol)


def _check_tol(tol: float) -> float:
    return check_number(tol, "tol", lo=0.0)


def _probs(p: Any, name: str) -> Tensor:
    """Validated ``[N, K]`` float64 distributions (``[N]`` binary expanded). Rows must sum to 1
    within :func:`w2s_utils._validate.sum_tolerance` of their dtype (else ``ValueError``); they
    are then divided by their sums, a round-off correction no larger than that tolerance."""
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
            "Clip with w2s_utils.theory.clip_to_floor(p, gamma)"
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
        return _same(ref, "weak", _probs(f_star, "f_star"), "f_star"), "f_star"
    y = check_labels(labels, n_classes, "labels").to(ref.device)
    if y.dim() != 1 or y.shape[0] != ref.shape[0]:
        raise ValueError(
            f"labels: shape {tuple(y.shape)} does not match the {ref.shape[0]} prediction rows; "
            "pass one label per row, a 1-D tensor [N]"
        )
    return torch.nn.functional.one_hot(y, n_classes).to(_F64), "labels"


def _losses(target: Tensor, weak: Tensor, student: Tensor) -> tuple[Tensor, Tensor]:
    """Per-row KL(target||F_w), KL(target||F_sw) (= CE for one-hot targets)."""
    return metrics.kl(target, weak, validate=False), metrics.kl(target, student, validate=False)


def _log_ratio(weak: Any, student: Any, why: str) -> tuple[Tensor, Tensor, Tensor]:
    """Validated ``weak``, ``student`` (float64 ``[N, K]``, strictly positive) and the student
    log-ratio ``r = log F_sw - log F_w``."""
    weak = _probs(weak, "weak")
    student = _same(weak, "weak", _probs(student, "student"), "student")
    _positive(weak, "weak", why)
    _positive(student, "student", why)
    return weak, student, student.log() - weak.log()


def _optional_target(ref: Tensor, f_star: Any, labels: Any) -> tuple[Tensor | None, str]:
    """``(target, source)`` like :func:`_target`, or ``(None, "none")`` when neither is given."""
    if f_star is None and labels is None:
        return None, "none"
    return _target(ref.shape[-1], ref, f_star, labels)


_LOSS_NAME = {
    "f_star": "Err = E KL(F*||F)",
    "labels": "test cross-entropy (Err + H(Y|X); empirical Err)",
}


class _Result:
    """Mixin: ``as_dict()`` (scalars only, for tables/JSON) and a one-line ``__str__``."""

    NAME: ClassVar[str] = ""
    RELATION: ClassVar[str] = ""

    def __post_init__(self) -> None:
        """Every result alike: sides that cannot be evaluated (a NaN side, or both sides infinite)
        raise :class:`UndefinedResultError` instead of reporting ``holds``."""
        lhs, rhs = getattr(self, "lhs", None), getattr(self, "rhs", None)
        if not (isinstance(lhs, int | float) and isinstance(rhs, int | float)):
            return
        lhs, rhs = float(lhs), float(rhs)
        if math.isnan(lhs) or math.isnan(rhs) or (math.isinf(lhs) and math.isinf(rhs)):
            raise UndefinedResultError(
                f"lhs/rhs: {self.NAME or type(self).__name__} cannot be evaluated "
                f"(lhs = {lhs!r}, rhs = {rhs!r}); {_UNDEFINED_HINT}"
            )

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
    return check_int(n_bins, "n_bins", minimum=1)


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


def _gain_at_least(
    err_weak: float, err_student: float, misfit: float, tol: float
) -> dict[str, Any]:
    """The sides of ``gain >= misfit`` (``gain = err_weak - err_student``): ``lhs = misfit``,
    ``rhs = gain``, ``slack = gain - misfit``, ``holds`` up to ``tol``."""
    gain = err_weak - err_student
    return {
        "gain": gain,
        "lhs": misfit,
        "rhs": gain,
        "slack": gain - misfit,
        "holds": _le(misfit, gain, tol),
        "tol": tol,
    }
