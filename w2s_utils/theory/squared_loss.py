"""Misfit-gain for squared loss (Charikar et al. 2024; chapter 5)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from torch import Tensor

from w2s_utils.theory._base import DEFAULT_TOL, _check_tol, _le, _mean, _real, _Result, _same


@dataclass(frozen=True)
class SquaredMisfitGainResult(_Result):
    """Charikar et al.: ``E(f_sw - F*)^2 <= E(f_w - F*)^2 - E(f_sw - f_w)^2`` (gain >= misfit).

    ``slack = 2 E<f_w - f_sw, f_sw - F*>`` >= 0 for a projection onto a convex class containing
    ``F*``; it is 0 (Pythagoras) for least squares onto a linear class on the same sample.
    """

    NAME: ClassVar[str] = "Charikar et al."
    RELATION: ClassVar[str] = "E(f_sw - F*)^2 <= E(f_w - F*)^2 - E(f_sw - f_w)^2"

    err_weak: float
    err_student: float
    misfit: float
    gain: float
    lhs: float
    rhs: float
    slack: float
    holds: bool
    tol: float


def squared_misfit_gain(
    f_star: Any, weak: Any, student: Any, *, tol: float = DEFAULT_TOL
) -> SquaredMisfitGainResult:
    """Charikar et al. 2024 (needs ``F*``), squared loss on real-valued outputs ``[N]`` or
    ``[N, m]`` (``m`` outputs: squared Euclidean norm per row).

    Hypotheses (not checkable from the arrays): ``F*`` lies in a convex class and ``student`` is the
    L2 projection of ``weak`` onto it (e.g. :func:`least_squares_projection` on the strong
    representation, evaluated on the sample it was fitted on).
    """
    tol = _check_tol(tol)
    fs = _real(f_star, "f_star")
    weak = _real(weak, "weak")
    student = _real(student, "student")
    weak = _same(fs, "f_star", weak, "weak")
    student = _same(fs, "f_star", student, "student")

    def sq(a: Tensor) -> float:
        return _mean(a.square() if a.dim() == 1 else a.square().sum(-1))

    err_weak, err_student, mis = sq(weak - fs), sq(student - fs), sq(student - weak)
    rhs = err_weak - mis
    return SquaredMisfitGainResult(
        err_weak=err_weak,
        err_student=err_student,
        misfit=mis,
        gain=err_weak - err_student,
        lhs=err_student,
        rhs=rhs,
        slack=rhs - err_student,
        holds=_le(err_student, rhs, tol),
        tol=tol,
    )
