"""Solvers that produce a student satisfying a result's hypotheses: I-projection onto mixtures,
forward/reverse KL onto logit-linear heads, least squares.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import Tensor

from w2s_utils._validate import check_probs
from w2s_utils.theory._base import (
    _F64,
    _features,
    _logsumexp,
    _positive,
    _probs,
    _real,
    _same,
    _single_thread_blas,
    _unpack,
)


# --------------------------------------------------------------------------- solvers
@dataclass(frozen=True)
class IProjection:
    """Reverse-KL (I-)projection onto mixtures: ``F_sw = sum_i weights[i] components[i]``.

    ``objective = E KL(F_sw||F_w)``; ``gap`` is the Frank-Wolfe duality gap, an upper bound on
    ``objective - min``, and bounds how far the slack of :func:`kl_misfit_gain` (``gain -
    eps_rev``) can fall below 0. When every weight is ``> 0`` the student lies in the relative
    interior of the class, and there that slack is 0 (up to the solver's accuracy): the objective
    is stationary along every direction inside the class, ``F* - F_sw`` included. When some weight
    is 0 the student is on the class's boundary and the slack can be positive.
    """

    weights: Tensor
    student: Tensor
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
            _same(ref, "weak", c, f"components[{i}]")
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
    weak: Any, components: Any, *, tol: float = 1e-12, max_iter: int = 500
) -> IProjection:
    """``argmin_{a in simplex} E_x KL(sum_i a_i C_i(x) || F_w(x))``: the I-projection of the weak
    predictions onto the convex hull (in probability space) of ``k`` fixed predictors.

    ``components``: ``[k, N, K]`` (or a list of ``[N, K]``), strictly positive. Float64 active-set
    Newton method on the simplex (Newton steps on the current face with exact line search,
    Frank-Wolfe steps to enter new vertices), stopped when the Frank-Wolfe gap is ``<= tol``.
    """
    fw_t = _probs(weak, "weak")
    _positive(fw_t, "weak", "the reverse-KL objective KL(F || F_w)")
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
    student = torch.from_numpy(mix(a)).to(fw_t.device)
    return IProjection(
        weights=torch.from_numpy(a).to(fw_t.device),
        student=student,
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
    student: Tensor
    objective: float
    grad_max: float
    moment_residual: float
    max_abs_logit: float
    n_iter: int
    converged: bool


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
        student=torch.from_numpy(q).to(device),
        objective=obj,
        grad_max=float(np.abs(g).max()) if g.size else 0.0,
        moment_residual=moment,
        max_abs_logit=float(np.abs(z - z.mean(axis=1, keepdims=True)).max()),
        n_iter=n_iter,
        converged=converged,
    )


@_single_thread_blas
def forward_kl_projection_linear(
    features: Any, weak: Any, *, tol: float = 1e-12, max_iter: int = 2000
) -> LinearProjection:
    """``argmin_W E KL(F_w || softmax(W phi))``: multinomial logistic regression on soft labels.

    Float64 L-BFGS (scipy) to convergence, then damped Newton steps with the exact Hessian until
    the moment-matching residual ``max |E[phi (F_w - F_sw)^T]|`` is ``<= tol`` (reported either
    way). The last row of ``W`` is fixed to 0 (softmax is invariant to a common shift). Add a
    column of ones to ``features`` for an intercept.
    """
    from scipy.optimize import minimize

    pt = _probs(weak, "weak")
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
    features: Any, weak: Any, *, n_restarts: int = 8, seed: int = 0, max_iter: int = 5000
) -> LinearProjection:
    """``argmin_W E KL(softmax(W phi) || F_w)``: the reverse-KL student on the logit-linear class.

    The objective is not convex in ``W``; this returns the best of ``n_restarts`` float64 L-BFGS
    runs (from 0, from the forward-KL solution, and from seeded random starts). ``converged`` when
    the best run's gradient is below 1e-8 and its logits stay finite (``max_abs_logit < 50``;
    otherwise the infimum is approached by predictions running off to a vertex). ``converged``
    certifies a stationary point, not the global minimum: a counterexample found with it is a
    stationary point of the reverse-KL objective (the best of the starts) that violates the
    inequality.
    """
    from scipy.optimize import minimize

    pt = _probs(weak, "weak")
    _positive(pt, "weak", "the reverse-KL objective KL(F || F_w)")
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
    (float64 ``lstsq``; add a column of ones for an intercept). Charikar et al.'s ``student`` when
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


@dataclass(frozen=True)
class MProjection:
    """Forward-KL (M-)projection onto mixtures: ``F_sw = sum_i weights[i] components[i]``.

    ``objective = E KL(F_w||F_sw)``; ``gap`` is the Frank-Wolfe duality gap (an upper bound on
    ``objective - min``).
    """

    weights: Tensor
    student: Tensor
    objective: float
    gap: float
    n_iter: int
    converged: bool


@_single_thread_blas
def forward_kl_projection_mixture(
    weak: Any, components: Any, *, tol: float = 1e-10, max_iter: int = 20000
) -> MProjection:
    """``argmin_{a in simplex} E_x KL(F_w(x) || sum_i a_i C_i(x))``: the forward-KL student on the
    convex hull (in probability space) of ``k`` fixed predictors (the soft-label maximum-likelihood
    mixture weights).

    ``components``: ``[k, N, K]`` (or a list of ``[N, K]``), strictly positive. The objective is
    convex in ``a``; solved by the EM fixed point ``a_i <- a_i E_x sum_j F_w,j C_ij / F_sw,j``
    (monotone, stays in the simplex), stopped when the Frank-Wolfe gap is ``<= tol``.
    """
    fw_t = _probs(weak, "weak")
    c = _components(components, fw_t)
    p = fw_t.detach().cpu().numpy().astype(np.float64)
    k, n, _ = c.shape
    ent = float(np.sum(np.where(p > 0, p * np.log(np.where(p > 0, p, 1.0)), 0.0))) / n
    a = np.full(k, 1.0 / k)
    gap = math.inf
    it = 0
    for it in range(1, max_iter + 1):  # noqa: B007 - it is reported
        f = np.tensordot(a, c, axes=1)
        r = np.einsum("inj,nj->i", c, p / f) / n  # = -gradient
        gap = float(r.max() - r @ a)
        if gap <= tol:
            break
        a = a * r
        a = a / a.sum()
    f = np.tensordot(a, c, axes=1)
    obj = ent - float((p * np.log(f)).sum()) / n
    return MProjection(
        weights=torch.from_numpy(a).to(fw_t.device),
        student=torch.from_numpy(f).to(fw_t.device),
        objective=obj,
        gap=max(gap, 0.0),
        n_iter=it,
        converged=gap <= tol,
    )
