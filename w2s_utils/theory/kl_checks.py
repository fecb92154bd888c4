"""Chapter 6's two results checked on one random instance, the student computed by its projection:
the result functions that :func:`w2s_utils.theory.sweep` runs over many instances.

- :func:`reverse_kl_mixture_check`: the I-projection of the teacher onto the mixtures of an
  instance's heads (:func:`~w2s_utils.theory.i_projection_mixture`), then "gain >= eps_rev"
  (:func:`~w2s_utils.theory.kl_misfit_gain`, tolerance = the projection's duality gap), with
  where the student sits (every mixture weight > 0: the relative interior, where the theorem
  holds with equality).
- :func:`forward_kl_linear_check`: the forward-KL projection onto the logit-linear heads
  (:func:`~w2s_utils.theory.forward_kl_projection_linear`), then the forward-KL identity and the
  non-guaranteed "gain >= eps" beside it (:func:`~w2s_utils.theory.forward_kl_identity`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from w2s_utils._validate import check_number
from w2s_utils.theory._base import DEFAULT_TOL
from w2s_utils.theory.instances import LogitLinearInstance, MixtureInstance
from w2s_utils.theory.kl import forward_kl_identity, kl_misfit_gain
from w2s_utils.theory.projections import forward_kl_projection_linear, i_projection_mixture

__all__ = [
    "ForwardKLLinearCheck",
    "ReverseKLMixtureCheck",
    "forward_kl_linear_check",
    "reverse_kl_mixture_check",
]


@dataclass(frozen=True)
class ReverseKLMixtureCheck:
    """One instance of the reverse-KL theorem on mixtures.

    ``err_weak``, ``err_student``, ``gain`` (= ``err_weak - err_student``), ``eps_rev`` (= E
    KL(F_sw || F_w)), ``lhs`` (= ``eps_rev``), ``rhs`` (= ``gain``), ``slack`` (= gain - eps_rev),
    ``holds`` (``slack >= -tol``), ``tol`` (the duality gap, at least ``DEFAULT_TOL``), all in nats,
    from :func:`~w2s_utils.theory.kl_misfit_gain`; ``gap``, ``n_iter``, ``converged`` of the
    projection; ``min_weight`` the student's smallest mixture weight and ``interior``
    (``min_weight > interior_tol``: the student is in the class's relative interior).
    """

    n: int
    n_classes: int
    n_components: int
    err_weak: float
    err_student: float
    gain: float
    eps_rev: float
    lhs: float
    rhs: float
    slack: float
    holds: bool
    tol: float
    gap: float
    n_iter: int
    converged: bool
    min_weight: float
    interior: bool


def reverse_kl_mixture_check(instance: Any, *, interior_tol: float = 1e-9) -> ReverseKLMixtureCheck:
    """Project the teacher of a :class:`~w2s_utils.theory.instances.MixtureInstance` onto the
    mixtures of its heads in reverse KL and check "gain >= eps_rev" there (see the module
    docstring). ``interior_tol``: a weight above it counts as positive."""
    if not isinstance(instance, MixtureInstance):
        raise ValueError(
            f"instance: must be a MixtureInstance (theory.instances.mixture_instance), got "
            f"{type(instance).__name__}"
        )
    interior_tol = check_number(interior_tol, "interior_tol", lo=0.0)
    proj = i_projection_mixture(instance.weak, instance.components)
    res = kl_misfit_gain(
        instance.weak, proj.student, f_star=instance.f_star, tol=max(proj.gap, DEFAULT_TOL)
    )
    min_weight = float(proj.weights.min())
    n, k = instance.f_star.shape
    return ReverseKLMixtureCheck(
        n=int(n),
        n_classes=int(k),
        n_components=int(instance.components.shape[0]),
        err_weak=res.err_weak,
        err_student=res.err_student,
        gain=res.gain,
        eps_rev=res.eps_rev,
        lhs=res.lhs,
        rhs=res.rhs,
        slack=res.slack,
        holds=res.holds,
        tol=res.tol,
        gap=proj.gap,
        n_iter=int(proj.n_iter),
        converged=bool(proj.converged),
        min_weight=min_weight,
        interior=min_weight > interior_tol,
    )


@dataclass(frozen=True)
class ForwardKLLinearCheck:
    """One instance of the forward-KL identity on logit-linear heads.

    From :func:`~w2s_utils.theory.forward_kl_identity`: ``kl_w_star`` (= E KL(F_w||F*)),
    ``kl_sw_star``, ``eps`` (= E KL(F_w||F_sw)), ``residual`` (= kl_w_star - kl_sw_star - eps),
    ``holds`` (the identity, relative ``tol``), ``gain`` (= Err(F_w) - Err(F_sw), ``Err = E
    KL(F*||.)``), ``remark_slack`` (= gain - eps) and ``remark_holds`` (the non-guaranteed
    "gain >= eps"); ``moment_residual`` and ``converged`` of the projection.
    """

    n: int
    n_classes: int
    kl_w_star: float
    kl_sw_star: float
    eps: float
    residual: float
    holds: bool
    tol: float
    gain: float
    remark_slack: float
    remark_holds: bool
    moment_residual: float
    converged: bool


def forward_kl_linear_check(instance: Any, *, tol: float = 1e-6) -> ForwardKLLinearCheck:
    """Project the teacher of a :class:`~w2s_utils.theory.instances.LogitLinearInstance` onto its
    logit-linear heads in forward KL and check the forward-KL identity there (relative ``tol``),
    with the non-guaranteed "gain >= eps" beside it."""
    if not isinstance(instance, LogitLinearInstance):
        raise ValueError(
            f"instance: must be a LogitLinearInstance (theory.instances.logit_linear_instance), "
            f"got {type(instance).__name__}"
        )
    proj = forward_kl_projection_linear(instance.features, instance.weak)
    res = forward_kl_identity(instance.weak, proj.student, f_star=instance.f_star, tol=tol)
    n, k = instance.f_star.shape
    return ForwardKLLinearCheck(
        n=int(n),
        n_classes=int(k),
        kl_w_star=res.kl_w_star,
        kl_sw_star=res.kl_sw_star,
        eps=res.eps,
        residual=res.residual,
        holds=res.holds,
        tol=res.tol,
        gain=res.gain,
        remark_slack=res.remark_slack,
        remark_holds=res.remark_holds,
        moment_residual=proj.moment_residual,
        converged=bool(proj.converged),
    )
