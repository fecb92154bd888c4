"""Linear heads on frozen features, solved to (numerical) optimality in float64.

A head is ``softmax(z(x) @ theta)`` with ``z(x) = [((x - mean) / scale)[keep], 1]``: the features
standardised with the *training* features' own mean and scale (an affine map with an intercept, so
the class of linear heads is unchanged) and the intercept last. Dimensions that are constant on the
training features (scale below ``1e-6`` times the largest) are left out: MiniLM-L6's pooled
features have two dimensions that are exactly zero and one that holds only float16 subnormals,
which standardising would blow up into a unit-variance column of rounding noise. The last class is
the reference (its column of ``theta`` is 0), which removes softmax's shift invariance.

Objectives (means over the ``n`` training rows, ``l2/2 ||W||^2`` on the weights, never on the
intercept):

- :func:`fit_forward_head`: soft cross-entropy ``-E sum_j t_j log q_j`` to target probabilities
  ``t`` (or hard labels), i.e. ``E KL(t || q)`` up to a constant: the forward-KL student, the
  teacher and the ceiling. Convex; damped Newton with the exact Hessian.
- :func:`fit_reverse_head`: ``E KL(q || p)`` to a teacher ``p`` given by its log-probabilities,
  the reverse-KL student. Not convex in the logits. Damped Newton from a documented start (the
  forward-KL head with the same ``l2``, which is also what the reverse student would be if the
  teacher were in the class): the exact Hessian where it is positive definite (a Cholesky test),
  else the exact Hessian plus the smallest tried multiple of the identity that makes it so, which
  still gives a descent direction. Every step is an Armijo backtracking step, so the reverse
  objective never rises above its value at the start. The objective has several local minima
  (on MiniLM features they differ by ~1e-4 nats): the result is the one this path reaches.

Both stop when the largest gradient entry is ``<= tol`` (default ``1e-10``) and report it
(``grad_max``, ``converged``). Numpy, float64; a handful of ``n x d^2`` Hessian products per fit
(``d`` = number of features + 1), formed in float32 (the Hessian only shapes the step; the
objective, the gradient and the stopping test are float64), with the symmetric rank-``n``
product where the weights are non-negative.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from w2s_utils._validate import as_tensor, check_int, check_labels, check_number, check_probs

__all__ = ["LinearHead", "fit_forward_head", "fit_reverse_head", "head_gradient"]

#: Relative scale below which a training feature counts as constant and is left out.
CONSTANT_FEATURE = 1e-6


@dataclass(frozen=True, eq=False)
class LinearHead:
    """A fitted multinomial logistic head (see the module docstring for the parametrisation).

    ``mean``, ``scale`` ``[D]`` and ``keep`` (bool ``[D]``) standardise the features; ``theta``
    ``[d, K - 1]`` (``d = keep.sum() + 1``, the intercept last) holds the logits of the first
    ``K - 1`` classes (the last class's logit is 0). ``objective``: the solved objective at
    ``theta`` (penalty included; the forward one as ``E KL(t || q) + penalty``); ``grad_max``: the
    largest absolute entry of its gradient; ``n_iter``: Newton steps taken; ``converged``:
    ``grad_max <= tol``. ``l2``: the penalty it was fitted with; ``kind``: ``"forward"`` or
    ``"reverse"``.
    """

    mean: np.ndarray
    scale: np.ndarray
    keep: np.ndarray
    theta: np.ndarray
    l2: float
    kind: str
    objective: float
    grad_max: float
    n_iter: int
    converged: bool

    @property
    def n_classes(self) -> int:
        return self.theta.shape[1] + 1

    def design(self, features: Any) -> np.ndarray:
        """The standardised design matrix ``[N, d]`` (kept columns, then a column of ones)."""
        x = _features(features, "features", self.mean.shape[0])
        return _design(x, self.mean, self.scale, self.keep)

    def log_proba(self, features: Any) -> np.ndarray:
        """Log class probabilities ``[N, K]`` (float64) for features ``[N, D]``."""
        return _log_softmax(_logits(self.design(features), self.theta))

    def predict_proba(self, features: Any) -> np.ndarray:
        """Class probabilities ``[N, K]`` (float64) for features ``[N, D]``."""
        return np.exp(self.log_proba(features))


# --------------------------------------------------------------------------- helpers
def _features(x: Any, name: str, dim: int | None = None) -> np.ndarray:
    t = as_tensor(x, name)
    if t.dim() != 2 or t.shape[0] == 0 or t.shape[1] == 0:
        raise ValueError(
            f"{name}: need a non-empty 2-D array [N, D] of features, got shape {tuple(t.shape)}"
        )
    if dim is not None and t.shape[1] != dim:
        raise ValueError(
            f"{name}: has {t.shape[1]} feature dimensions, the head was fitted on {dim}; pass "
            "features from the same model"
        )
    a = t.detach().cpu().numpy().astype(np.float64, copy=False)
    if not np.isfinite(a).all():
        raise ValueError(f"{name}: contains NaN or inf; check the feature extractor")
    return a


def _design(x: np.ndarray, mean: np.ndarray, scale: np.ndarray, keep: np.ndarray) -> np.ndarray:
    z = np.empty((x.shape[0], int(keep.sum()) + 1))
    z[:, :-1] = (x[:, keep] - mean[keep]) / scale[keep]
    z[:, -1] = 1.0
    return z


def _standardiser(x: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    mean = x.mean(axis=0)
    scale = x.std(axis=0)
    keep = scale > CONSTANT_FEATURE * max(float(scale.max()), 1e-300)
    return mean, np.where(keep, scale, 1.0), keep


def _logits(z: np.ndarray, theta: np.ndarray) -> np.ndarray:
    return np.concatenate([z @ theta, np.zeros((z.shape[0], 1))], axis=1)


def _log_softmax(s: np.ndarray) -> np.ndarray:
    m = s.max(axis=1, keepdims=True)
    return s - m - np.log(np.exp(s - m).sum(axis=1, keepdims=True))


def _check_l2(l2: Any) -> float:
    return check_number(l2, "l2", lo=0.0)


def _penalty(d: int, l2: float) -> np.ndarray:
    pen = np.full(d, l2)
    pen[-1] = 0.0  # the intercept is not penalised
    return pen


def _hessian(z: np.ndarray, b: np.ndarray, pen: np.ndarray) -> np.ndarray:
    """``sum_i z_i z_i^T (x) B_i / n + diag(pen)`` for per-row blocks ``b`` ``[n, m, m]``, laid
    out as ``m x m`` blocks of ``d x d`` (class-major, like ``theta.T.ravel()``). The products
    run in float32 (3x faster; the Hessian only shapes the Newton step, while the objective, the
    gradient and the stopping test stay float64, so the optimum is unchanged)."""
    n, d = z.shape
    m = b.shape[1]
    h = np.empty((m * d, m * d))
    for a in range(m):
        for c in range(a, m):
            w = b[:, a, c]
            if a == c and bool((w >= 0).all()):
                zw = (z * np.sqrt(w)[:, None]).astype(np.float32)
                blk = zw.T @ zw  # the symmetric product: half the work of a general one
            else:
                blk = z.astype(np.float32).T @ (z * w[:, None]).astype(np.float32)
            h[a * d : (a + 1) * d, c * d : (c + 1) * d] = blk / n
            if c != a:
                h[c * d : (c + 1) * d, a * d : (a + 1) * d] = blk.T / n
    h[np.diag_indices_from(h)] += np.tile(pen, m) + 1e-12
    return h


def _fisher_blocks(q: np.ndarray) -> np.ndarray:
    m = q.shape[1] - 1
    qm = q[:, :m]
    return qm[:, :, None] * (np.eye(m) - qm[:, None, :])


# Objective callbacks: theta -> (value, gradient [d, m], exact per-row Hessian blocks [n, m, m]).
Objective = Callable[[np.ndarray], tuple[float, np.ndarray, np.ndarray]]


def _newton(
    objective: Objective,
    z: np.ndarray,
    theta: np.ndarray,
    pen: np.ndarray,
    tol: float,
    max_iter: int,
) -> tuple[np.ndarray, float, np.ndarray, int]:
    """Damped (modified) Newton with Armijo backtracking. ``objective(theta)`` returns the value,
    the gradient and the exact per-row Hessian blocks. Where the Hessian is not positive definite
    (a failed Cholesky factorisation; only the reverse-KL objective can do that) the smallest
    multiple ``lam`` of the identity in the sequence ``1e-8 * mean diagonal * 10^k`` that makes
    ``H + lam I`` positive definite is added (Nocedal & Wright, Algorithm 3.3), so every step is a
    descent direction."""
    f, g, blocks = objective(theta)
    it = 0
    for it in range(max_iter):  # noqa: B007 - reported
        gmax = float(np.abs(g).max())
        if gmax <= tol:
            break
        gv = g.T.ravel()
        h = _hessian(z, blocks, pen)
        lam, base = 0.0, 1e-8 * max(float(np.mean(np.abs(np.diag(h)))), 1e-300)
        while True:
            try:
                chol = np.linalg.cholesky(h if lam == 0.0 else h + lam * np.eye(h.shape[0]))
                break
            except np.linalg.LinAlgError:
                lam = base if lam == 0.0 else 10.0 * lam
        step = np.linalg.solve(chol.T, np.linalg.solve(chol, gv))
        step = step.reshape(theta.shape[1], theta.shape[0]).T
        decrease = float((g * step).sum())
        t = 1.0
        while True:
            cand = theta - t * step
            f_new, g_new, b_new = objective(cand)
            if f_new <= f - 1e-4 * t * decrease:
                break
            # at round-off level: accept a step that does not raise f and shrinks the gradient
            if f_new <= f + 1e-15 * max(1.0, abs(f)) and np.abs(g_new).max() < gmax:
                break
            t *= 0.5
            if t < 1e-10:
                return theta, f, g, it
        theta, f, g, blocks = cand, f_new, g_new, b_new
    else:
        it = max_iter
    return theta, f, g, it


def _check_targets(targets: Any, n: int, n_classes: int | None) -> np.ndarray:
    t_raw = as_tensor(targets, "targets", floating=False)
    if t_raw.is_floating_point() and t_raw.dim() == 2:
        t = check_probs(t_raw, "targets").detach().cpu().numpy().astype(np.float64)
        if n_classes is not None and t.shape[1] != n_classes:
            raise ValueError(
                f"targets: has {t.shape[1]} classes but n_classes={n_classes}; make them agree"
            )
        t = t / t.sum(axis=1, keepdims=True)
    else:
        if t_raw.dim() != 1:
            raise ValueError(
                f"targets: need labels [N] or probabilities [N, K], got shape {tuple(t_raw.shape)}"
            )
        if n_classes is None:
            raise ValueError("n_classes: pass the number of classes with hard-label targets")
        y = check_labels(t_raw, n_classes, "targets").cpu().numpy()
        t = np.eye(n_classes)[y]
    if t.shape[1] < 2:
        raise ValueError("targets: need at least 2 classes")
    if t.shape[0] != n:
        raise ValueError(
            f"targets: {t.shape[0]} rows but features has {n}; need one target per example"
        )
    return t


# --------------------------------------------------------------------------- forward
def fit_forward_head(
    features: Any,
    targets: Any,
    *,
    n_classes: int | None = None,
    l2: float = 1e-4,
    tol: float = 1e-10,
    max_iter: int = 100,
) -> LinearHead:
    """Minimise ``E KL(t || q) + l2/2 ||W||^2`` over linear heads ``q`` (the module docstring).

    ``targets``: integer labels ``[N]`` (then pass ``n_classes``) or probabilities ``[N, K]``.
    With ``l2 = 0`` the minimiser exists when the targets are not separable by the features
    (soft targets inside the simplex usually are not; hard labels of a separable sample are, and
    the logits then run off: use ``l2 > 0`` with hard labels). Damped Newton, float64.
    """
    x = _features(features, "features")
    t = _check_targets(targets, x.shape[0], n_classes)
    l2 = _check_l2(l2)
    tol = check_number(tol, "tol", lo=0.0)
    max_iter = check_int(max_iter, "max_iter", minimum=1)
    mean, scale, keep = _standardiser(x)
    z = _design(x, mean, scale, keep)
    pen = _penalty(z.shape[1], l2)
    theta0 = np.zeros((z.shape[1], t.shape[1] - 1))
    theta, f, g, it = _newton(_forward_objective(z, t, pen), z, theta0, pen, tol, max_iter)
    ent = float(np.sum(t * np.log(np.where(t > 0, t, 1.0)))) / z.shape[0]
    gmax = float(np.abs(g).max())
    return LinearHead(mean, scale, keep, theta, l2, "forward", f + ent, gmax, it, gmax <= tol)


def _forward_objective(z: np.ndarray, t: np.ndarray, pen: np.ndarray) -> Objective:
    n = z.shape[0]
    m = t.shape[1] - 1

    def objective(theta: np.ndarray):
        lq = _log_softmax(_logits(z, theta))
        q = np.exp(lq)
        f = -float((t * lq).sum()) / n + 0.5 * float((pen[:, None] * theta**2).sum())
        g = z.T @ (q - t)[:, :m] / n + pen[:, None] * theta
        blocks = _fisher_blocks(q)  # the exact Hessian of the soft cross-entropy
        return f, g, blocks

    return objective


# --------------------------------------------------------------------------- reverse
def _reverse_objective(z: np.ndarray, logp: np.ndarray, pen: np.ndarray) -> Objective:
    n = z.shape[0]
    m = logp.shape[1] - 1

    def objective(theta: np.ndarray):
        lq = _log_softmax(_logits(z, theta))
        q = np.exp(lq)
        a = lq - logp
        kl_rows = (q * a).sum(axis=1)
        c = a - kl_rows[:, None]
        gz = q * c
        f = float(kl_rows.mean()) + 0.5 * float((pen[:, None] * theta**2).sum())
        g = z.T @ gz[:, :m] / n + pen[:, None] * theta
        # exact: H_jk = delta_jk q_j (1 + c_j) - q_j q_k (1 + c_j + c_k), j, k < K - 1
        qm, cm = q[:, :m], c[:, :m]
        exact = -qm[:, :, None] * qm[:, None, :] * (1.0 + cm[:, :, None] + cm[:, None, :])
        idx = np.arange(m)
        exact[:, idx, idx] += qm * (1.0 + cm)
        return f, g, exact

    return objective


def fit_reverse_head(
    features: Any,
    teacher_log_probs: Any,
    *,
    l2: float = 1e-4,
    start: LinearHead | None = None,
    tol: float = 1e-10,
    max_iter: int = 200,
) -> LinearHead:
    """Minimise ``E KL(q || p) + l2/2 ||W||^2`` over linear heads ``q`` (the reverse-KL student).

    ``teacher_log_probs`` ``[N, K]``: the teacher's log-probabilities ``log p`` (finite; rows with
    ``logsumexp = 0`` up to 1e-8), given as logs so that a confident teacher's small
    probabilities do not underflow. The objective is not convex in the logits: the solver starts
    from ``start`` (default: :func:`fit_forward_head` on ``exp(teacher_log_probs)`` with the same
    ``l2``; a given start must have been fitted on the same ``features``, so that the two share
    one standardisation) and takes damped Newton steps that never raise the objective (module
    docstring). It returns a stationary point with ``grad_max <= tol`` when ``converged``, a
    local minimum in every case we have checked, not provably the global one.
    """
    x = _features(features, "features")
    lp = as_tensor(teacher_log_probs, "teacher_log_probs")
    if lp.dim() != 2 or lp.shape[0] != x.shape[0] or lp.shape[1] < 2:
        raise ValueError(
            f"teacher_log_probs: need [N, K] with N = {x.shape[0]} rows (one per example) and "
            f"K >= 2, got shape {tuple(lp.shape)}"
        )
    logp = lp.detach().cpu().numpy().astype(np.float64)
    if not np.isfinite(logp).all():
        raise ValueError(
            "teacher_log_probs: contains NaN or inf (a zero probability makes KL(q || p) "
            "infinite); pass log-probabilities of a teacher with full support (log_softmax)"
        )
    norm = np.abs(_log_softmax(logp) - logp).max()
    if norm > 1e-8:
        raise ValueError(
            f"teacher_log_probs: rows are not normalised (|logsumexp| up to {norm:.2g}); pass "
            "log-probabilities, e.g. log_softmax of the teacher's logits"
        )
    l2 = _check_l2(l2)
    tol = check_number(tol, "tol", lo=0.0)
    max_iter = check_int(max_iter, "max_iter", minimum=1)
    if start is None:
        start = fit_forward_head(x, np.exp(logp), l2=l2)
    elif not isinstance(start, LinearHead) or start.n_classes != logp.shape[1]:
        raise ValueError(
            "start: must be a LinearHead with as many classes as teacher_log_probs; pass the "
            "forward-KL head fitted on the same features (or None)"
        )
    mean, scale, keep = _standardiser(x)
    if not (
        np.array_equal(keep, start.keep)
        and np.allclose(mean, start.mean, rtol=0, atol=1e-12 * (1 + np.abs(mean).max()))
        and np.allclose(scale, start.scale, rtol=1e-12, atol=0)
    ):
        raise ValueError(
            "start: was fitted on other features (another standardisation); fit it on the same "
            "features or pass None"
        )
    z = _design(x, start.mean, start.scale, start.keep)
    pen = _penalty(z.shape[1], l2)
    theta, f, g, it = _newton(
        _reverse_objective(z, logp, pen), z, start.theta.copy(), pen, tol, max_iter
    )
    gmax = float(np.abs(g).max())
    return LinearHead(
        start.mean, start.scale, start.keep, theta, l2, "reverse", f, gmax, it, gmax <= tol
    )


def head_gradient(head: LinearHead, features: Any, targets: Any) -> np.ndarray:
    """The gradient ``[d, K - 1]`` of ``head``'s own objective (``head.kind``, ``head.l2``) at its
    parameters, recomputed on ``features`` and ``targets`` (probabilities ``[N, K]`` for a forward
    head, the teacher's log-probabilities for a reverse one): about 0 at a solution."""
    if not isinstance(head, LinearHead):
        raise ValueError(f"head: must be a LinearHead, got {type(head).__name__}")
    z = head.design(features)
    pen = _penalty(z.shape[1], head.l2)
    if head.kind == "forward":
        t = _check_targets(targets, z.shape[0], head.n_classes)
        return _forward_objective(z, t, pen)(head.theta)[1]
    logp = as_tensor(targets, "targets").detach().cpu().numpy().astype(np.float64)
    if logp.shape != (z.shape[0], head.n_classes):
        raise ValueError(
            f"targets: need the teacher's log-probabilities [{z.shape[0]}, {head.n_classes}], got "
            f"{logp.shape}"
        )
    return _reverse_objective(z, logp, pen)(head.theta)[1]
