"""Searches for counterexamples to the two statements that are not guaranteed (chapter 6)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import Tensor

from w2s_utils.theory._base import _F64, DEFAULT_TOL
from w2s_utils.theory.instances import logit_linear_instance
from w2s_utils.theory.kl import forward_kl_identity, kl_misfit_gain
from w2s_utils.theory.projections import (
    forward_kl_projection_linear,
    forward_kl_projection_mixture,
    i_projection_mixture,
    reverse_kl_projection_linear,
)
from w2s_utils.theory.softmax_heads import forward_kl_softmax_head, reverse_kl_softmax_head

# --------------------------------------------------------------------------- non-guarantees
TRIAL_KINDS = ("forward_kl", "reverse_kl_logit", "reverse_kl_mixture", "forward_kl_mixture")


@dataclass(frozen=True)
class TrialOutcome:
    """One random small instance tested against a (non-)guarantee.

    The inequality is ``gain >= misfit`` (``gain = Err(F_w) - Err(F_sw)``; misfit = ``eps =
    E KL(F_w||F_sw)`` for ``"forward_kl"``, ``eps_rev = E KL(F_sw||F_w)`` otherwise): ``lhs`` is
    the misfit, ``rhs`` the gain and ``violation = lhs - rhs = misfit - gain`` (positive: the
    inequality fails); ``valid`` when the solver reached its optimum. ``weak_noise`` is the
    teacher's construction (``None``: arbitrary). ``bound``: the proved bound on ``|violation|``
    where one applies to a solver at its optimum: for ``"forward_kl"`` the two KL-direction gaps
    (:func:`~w2s_utils.theory.forward_kl_softmax_head`), for ``"reverse_kl_logit"`` the
    second-order product (:func:`~w2s_utils.theory.reverse_kl_softmax_head`); NaN for the mixture
    kinds (``"reverse_kl_mixture"`` is a theorem, ``"forward_kl_mixture"`` has no bound here).
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
    weak_noise: float | None
    bound: float


@dataclass(frozen=True)
class Counterexample:
    """A concrete instance violating a statement that is *not* a theorem."""

    kind: str
    seed: int
    tries: int
    instance: Any  # w2s_utils.theory.instances.LogitLinearInstance
    student: Tensor
    projection: Any  # LinearProjection
    result: Any  # ForwardKLIdentityResult or KLMisfitGainResult
    violation: float


def _small_instance(seed: int, weak_noise: float | None, n_classes: int | None):

    rng = np.random.default_rng([seed, 2718])
    n = int(rng.integers(4, 12))
    d = int(rng.integers(2, 5))
    k = int(rng.integers(2, 5)) if n_classes is None else n_classes
    return logit_linear_instance(seed, n=n, d=d, n_classes=k, scale=1.0, weak_noise=weak_noise)


def _hull(inst, seed: int, k: int, d: int) -> Tensor:
    """``[3, n, K]``: ``F*`` and two other random logit-linear heads (a class convex in
    probability space, containing ``F*``, once mixed)."""
    gen = torch.Generator().manual_seed(seed + 31337)
    heads = torch.randn((2, k, d), generator=gen, dtype=_F64)
    others = torch.softmax(torch.einsum("hkd,nd->hnk", heads, inst.features), dim=-1)
    return torch.cat([inst.f_star[None], others])


def _trial(kind: str, seed: int, weak_noise: float | None, n_classes: int | None, margin: float):
    if kind not in TRIAL_KINDS:
        raise ValueError(f"kind: must be one of {', '.join(TRIAL_KINDS)}, got {kind!r}")
    inst = _small_instance(seed, weak_noise, n_classes)
    n, d = inst.features.shape
    k = inst.f_star.shape[1]
    if kind == "forward_kl":
        proj = forward_kl_projection_linear(inst.features, inst.weak)
        student = proj.student
        res = forward_kl_identity(inst.weak, student, f_star=inst.f_star)
        lhs, rhs, resid = res.remark_lhs, res.remark_rhs, proj.moment_residual
        valid = proj.moment_residual <= 1e-9
    elif kind == "reverse_kl_logit":
        proj = reverse_kl_projection_linear(inst.features, inst.weak, seed=seed)
        student = proj.student
        res = kl_misfit_gain(inst.weak, student, f_star=inst.f_star)
        lhs, rhs, resid = res.lhs, res.rhs, proj.grad_max
        valid = proj.converged
    elif kind == "forward_kl_mixture":  # forward KL onto the convex hull: not a theorem
        proj = forward_kl_projection_mixture(inst.weak, _hull(inst, seed, k, d))
        student = proj.student
        res = kl_misfit_gain(inst.weak, student, f_star=inst.f_star)
        lhs, rhs, resid = res.lhs, res.rhs, proj.gap
        valid = proj.converged
    else:  # convex hull in probability space of F* and two other logit-linear heads
        proj = i_projection_mixture(inst.weak, _hull(inst, seed, k, d))
        student = proj.student
        res = kl_misfit_gain(inst.weak, student, f_star=inst.f_star, tol=max(proj.gap, DEFAULT_TOL))
        lhs, rhs, resid = res.lhs, res.rhs, proj.gap
        valid = proj.converged
    violation = lhs - rhs
    bound = float("nan")
    if kind == "forward_kl":
        bound = forward_kl_softmax_head(inst.weak, student, f_star=inst.f_star).bound
    elif kind == "reverse_kl_logit":
        bound = reverse_kl_softmax_head(inst.weak, student, f_star=inst.f_star).bound
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
        weak_noise=weak_noise,
        bound=bound,
    )
    return outcome, inst, proj, student, res


def non_guarantee_trial(
    kind: str,
    seed: int,
    *,
    weak_noise: float | None = None,
    n_classes: int | None = None,
    margin: float = 1e-6,
) -> TrialOutcome:
    """Test ``gain >= misfit`` (``gain = Err(F_w) - Err(F_sw)``) on one small random realizable
    instance.

    Instance (seeded): ``n`` in 4..11 points, ``d`` in 2..4 Gaussian features, ``K`` in 2..4 classes
    (or ``n_classes``), ``F* = softmax(W* phi)``, ``W* ~ N(0, 1)``, weak teacher arbitrary
    (Dirichlet(1), ``weak_noise=None``) or close to the class (``softmax(log F* + noise * z)``).
    ``kind``: ``"forward_kl"`` (forward-KL student, misfit ``eps``; not a theorem),
    ``"reverse_kl_logit"`` (reverse-KL student on the logit-linear class; not a theorem: the class
    is not convex in probability space), ``"reverse_kl_mixture"`` (reverse-KL student on the convex
    hull of ``F*`` and two other heads: gain >= eps_rev is a theorem there, never violated),
    ``"forward_kl_mixture"``
    (forward-KL student on that same convex hull, misfit ``E KL(F_sw||F_w)``: not a theorem, the
    direction of the divergence matters). ``violated`` means by more than
    ``margin``; only ``valid`` trials (solver at its optimum) count.
    """
    return _trial(kind, seed, weak_noise, n_classes, margin)[0]


def _find(kind: str, seed: int, max_tries: int, weak_noise, n_classes, margin) -> Counterexample:
    if not isinstance(max_tries, int) or max_tries < 1:
        raise ValueError(f"max_tries: must be a positive integer, got {max_tries!r}")
    for t in range(max_tries):
        inst_seed = 1_000_003 * seed + t
        out, inst, proj, student, res = _trial(kind, inst_seed, weak_noise, n_classes, margin)
        if out.valid and out.violated:
            return Counterexample(kind, inst_seed, t + 1, inst, student, proj, res, out.violation)
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
    student violates ``gain >= eps`` (``gain = Err(F_w) - Err(F_sw)``, ``Err = E KL(F*||.)``) by
    more than ``margin``, with the projection verified optimal (moment residual <= 1e-9). The
    forward-KL *identity* (error measured as ``KL(.||F*)``) still holds there: see ``result``."""
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
    student (best of several L-BFGS runs, gradient <= 1e-8, finite logits) violates
    ``gain >= eps_rev`` by more than ``margin``: the class ``softmax(W phi)`` is not convex in
    probability space, so the reverse-KL theorem (:func:`kl_misfit_gain`) does not apply."""
    return _find("reverse_kl_logit", seed, max_tries, weak_noise, n_classes, margin)
