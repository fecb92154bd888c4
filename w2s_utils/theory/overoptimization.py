"""The gain along training (chapter 4: over-optimization), in the gain convention.

A student trained on weak labels is a sequence of predictors ``F_t`` (``t`` = the evaluations of
one run). At every step, Lemma 1 makes ``gain_t = Err(F_w) - Err(F_t) = E_x sum_j F*_j r_j(x; t)``
with the student log-ratio ``r_j(x; t) = log F_t,j(x) - log F_w,j(x)``, a convex combination, so

    E min_j r_j(x; t)  <=  gain_t  <=  room_t = E max_j r_j(x; t),

for every ground truth, with both ends attained; the room needs no labels. Under a floor
``gamma_t``, ``room_t <= E max_j |r_j| <= log(1 + min(1, sqrt(eps_t/2))/gamma_t) <=
sqrt(eps_t/2)/gamma_t`` (the chain of :func:`~w2s_utils.theory.generalization_chain`).
:func:`trajectory_room` evaluates all of it at every step. The statement bounds the room; it does
not say that the gain falls. What does hold along any straight path in probability space (and
along any geometric path) is that the gain is concave, hence unimodal: :func:`gain_along_path`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import torch
from torch import Tensor

from w2s_utils._validate import check_int
from w2s_utils.theory._base import (
    _LOSS_NAME,
    DEFAULT_TOL,
    _check_tol,
    _le,
    _positive,
    _probs,
    _Result,
    _same,
    _target,
)
from w2s_utils.theory.generalization import generalization_chain
from w2s_utils.theory.instances import random_simplex, weak_predictions
from w2s_utils.theory.intervals import label_free_interval

__all__ = [
    "PATH_KINDS",
    "GainAlongPathResult",
    "TrajectoryRoomResult",
    "gain_along_path",
    "random_trajectory",
    "trajectory_room",
]


@dataclass(frozen=True)
class TrajectoryRoomResult(_Result):
    """The room to gain at every step of a trajectory (tuples have one entry per step).

    ``room`` = ``E max_j r_j`` (the largest gain any ground truth allows), ``gain_lower`` =
    ``E min_j r_j`` (<= 0: the largest loss, negated), ``eps``/``eps_rev`` the misfits, ``gamma``
    the floor used (the empirical floor of the step's pair unless given), ``log_room`` =
    ``log(1 + min(1, sqrt(eps/2))/gamma)`` and ``two_sided_room`` = ``sqrt(eps/2)/gamma``. With a
    truth: ``gain`` (``Err(F_w) - Err(F_t)``, or ``CE(F_w) - CE(F_t)`` with ``labels``),
    ``best_step`` (its argmax) and ``best_gain``; else ``None``. ``lhs`` = ``max_t (gain_t -
    room_t)`` with a truth (else ``max_t (room_t - log_room_t)``), ``rhs = 0``. ``holds``: at
    every step ``gain_lower <= gain <= room`` (with a truth) and ``room <= log_room <=
    two_sided_room``.
    """

    NAME: ClassVar[str] = "Room along a trajectory"
    RELATION: ClassVar[str] = (
        "E min_j r_j(t) <= gain_t <= room_t = E max_j r_j(t) <= log(1+min(1,sqrt(eps_t/2))/gamma_t)"
        " at every step t"
    )

    source: str
    steps: int
    room: tuple[float, ...]
    gain_lower: tuple[float, ...]
    eps: tuple[float, ...]
    eps_rev: tuple[float, ...]
    gamma: tuple[float, ...]
    log_room: tuple[float, ...]
    two_sided_room: tuple[float, ...]
    gain: tuple[float, ...] | None
    best_step: int | None
    best_gain: float | None
    max_room: float
    lhs: float
    rhs: float
    slack: float
    holds: bool
    tol: float


def _steps(students: Any) -> list[Any]:
    if isinstance(students, (np.ndarray, torch.Tensor)):
        if students.ndim not in (2, 3):
            raise ValueError(
                f"students: expected [T, N, K] (or [T, N] binary) predictions, got shape "
                f"{tuple(students.shape)}"
            )
        return [students[t] for t in range(students.shape[0])]
    out = list(students)
    if not out:
        raise ValueError("students: is empty; pass at least one step's predictions")
    return out


def trajectory_room(
    weak: Any,
    students: Any,
    *,
    f_star: Any = None,
    labels: Any = None,
    gamma: float | None = None,
    tol: float = DEFAULT_TOL,
) -> TrajectoryRoomResult:
    """The label-free room to gain, its floor-based upper bounds and (with a truth) the gain, at
    every step of a trajectory.

    ``weak``: ``[N, K]`` teacher predictions; ``students``: ``[T, N, K]`` (or a sequence of
    ``[N, K]``) student predictions at ``T`` steps on the same inputs, all strictly positive.
    ``f_star`` or ``labels`` (at most one) add the measured gain ``Err(F_w) - Err(F_t)``.
    ``gamma``: a floor every step's pair satisfies (default: each step's empirical floor). Each
    step is :func:`label_free_interval` and :func:`generalization_chain` of
    ``(weak, students[t])``.
    """
    tol = _check_tol(tol)
    seq = _steps(students)
    if f_star is not None and labels is not None:
        raise ValueError("f_star/labels: pass at most one")
    truth = {"f_star": f_star} if f_star is not None else {"labels": labels}
    if f_star is None and labels is None:
        truth = {}
    rows = []
    for s in seq:
        iv = label_free_interval(weak, s, **truth, tol=tol)
        ch = generalization_chain(weak, s, gamma=gamma, tol=tol)
        rows.append((iv, ch))
    room = tuple(iv.upper for iv, _ in rows)
    gain_lower = tuple(iv.lower for iv, _ in rows)
    log_room = tuple(ch.log_pinsker for _, ch in rows)
    two_sided = tuple(ch.bound_eps for _, ch in rows)
    ok = all(
        _le(r, lr, tol) and _le(lr, t1, tol)
        for r, lr, t1 in zip(room, log_room, two_sided, strict=True)
    )
    gain = best_step = best_gain = None
    source = rows[0][0].source
    if truth:
        gain = tuple(float(iv.gain) for iv, _ in rows)
        best_step = int(np.argmax(gain))
        best_gain = gain[best_step]
        ok = ok and all(
            _le(g, r, tol) and _le(lo, g, tol)
            for g, r, lo in zip(gain, room, gain_lower, strict=True)
        )
        lhs = max(g - r for g, r in zip(gain, room, strict=True))
    else:
        lhs = max(r - lr for r, lr in zip(room, log_room, strict=True))
    return TrajectoryRoomResult(
        source=source,
        steps=len(rows),
        room=room,
        gain_lower=gain_lower,
        eps=tuple(iv.eps for iv, _ in rows),
        eps_rev=tuple(iv.eps_rev for iv, _ in rows),
        gamma=tuple(ch.gamma for _, ch in rows),
        log_room=log_room,
        two_sided_room=two_sided,
        gain=gain,
        best_step=best_step,
        best_gain=best_gain,
        max_room=max(room),
        lhs=lhs,
        rhs=0.0,
        slack=-lhs,
        holds=ok,
        tol=tol,
    )


# --------------------------------------------------------------------------- unimodality
PATH_KINDS = ("mixture", "geometric")


@dataclass(frozen=True)
class GainAlongPathResult(_Result):
    """The gain along a path from the teacher, ``gain(t) = Err(F_w) - Err(F_t)``, ``t in [0, 1]``.

    ``path="mixture"``: ``F_t = (1 - t) F_w + t G`` (a straight line in probability space);
    ``"geometric"``: ``F_t ∝ F_w^(1-t) G^t`` (a straight line in logit space). ``ts``/``gain``/
    ``err`` the grid of ``t`` and the gain and ``Err(F_t)`` on it; ``slope_start`` and
    ``slope_end`` the exact derivatives ``gain'(0)``, ``gain'(1)``; ``argmax`` the exact
    maximiser ``t*`` (bisection on the non-increasing ``gain'``) and ``max_gain = gain(t*)``;
    ``rises_first``: ``gain'(0) > 0`` (the path beats the teacher at first). ``lhs`` is the
    largest second difference of ``gain`` on the grid (``<= 0``: concave), ``rhs = 0``.
    ``holds``: concave and unimodal on the grid, ``gain(0) = 0``, no grid value above
    ``max_gain``, and ``gain(t) >= t gain(1)`` (the chord).
    """

    NAME: ClassVar[str] = "gain along a path is concave"
    RELATION: ClassVar[str] = "t -> gain(t) = Err(F_w) - Err(F_t) concave on [0, 1], gain(0) = 0"

    source: str
    loss: str
    path: str
    ts: tuple[float, ...]
    gain: tuple[float, ...]
    err: tuple[float, ...]
    slope_start: float
    slope_end: float
    argmax: float
    max_gain: float
    rises_first: bool
    concave: bool
    unimodal: bool
    lhs: float
    rhs: float
    slack: float
    holds: bool
    tol: float


def _path(weak: Tensor, target: Tensor, t: Tensor, path: str) -> Tensor:
    """``F_t`` for every ``t`` of ``t`` ``[T]``: ``[T, N, K]``."""
    t = t[:, None, None]
    if path == "mixture":
        return (1.0 - t) * weak + t * target
    return torch.softmax((1.0 - t) * weak.log() + t * target.log(), dim=-1)


def _err(truth: Tensor, f_t: Tensor) -> Tensor:
    """``E_x KL(truth || F_t)`` per path point ``[T]`` (``0 log 0 = 0``)."""
    return (torch.xlogy(truth, truth) - torch.xlogy(truth, f_t)).sum(-1).mean(-1)


def _slope(weak: Tensor, target: Tensor, truth: Tensor, t: Tensor, path: str) -> Tensor:
    """``gain'(t)`` for every ``t`` ``[T]``."""
    f_t = _path(weak, target, t, path)
    if path == "mixture":
        return (truth * (target - weak) / f_t).sum(-1).mean(-1)
    d = target.log() - weak.log()
    return ((truth - f_t) * d).sum(-1).mean(-1)


def gain_along_path(
    weak: Any,
    target: Any,
    *,
    f_star: Any = None,
    labels: Any = None,
    path: str = "mixture",
    n_points: int = 101,
    tol: float = 1e-9,
) -> GainAlongPathResult:
    """The gain along a straight path from the teacher ``F_w`` towards ``G = target``: concave.

    **Proposition.** Let ``F_w`` and ``G`` be strictly positive predictors and ``F*`` any ground
    truth with ``Err(F_w) < inf``. Along ``F_t = (1 - t) F_w + t G`` (``path="mixture"``) and along
    ``F_t ∝ F_w^(1-t) G^t`` (``path="geometric"``), ``t in [0, 1]``, the error
    ``t -> Err(F_t) = E_x KL(F*(x) || F_t(x))`` is convex, so ``gain(t) = Err(F_w) - Err(F_t)`` is
    concave with ``gain(0) = 0``. Hence it is unimodal: with ``t*`` a maximiser, the gain is
    non-decreasing on ``[0, t*]`` and non-increasing on ``[t*, 1]``; it lies above its chord,
    ``gain(t) >= t gain(1)``; and it rises at first iff ``gain'(0) > 0``, where
    ``gain'(0) = E_x sum_j F*_j G_j / F_w,j - 1`` (mixture) or
    ``E_x sum_j (F*_j - F_w,j) log(G_j / F_w,j)`` (geometric).

    *Proof.* ``Err(F_t) = E_x sum_j F*_j log F*_j - E_x sum_j F*_j log F_t,j``; the first term
    does not depend on ``t``. Mixture: for each ``x`` and ``j``, ``t -> F_t,j`` is affine and
    positive on ``[0, 1]`` (``F_t >= min(F_w, G) > 0``), and ``-log`` is convex, so
    ``-log F_t,j`` is convex in ``t``. Geometric: ``-log F_t,j = -(1 - t) log F_w,j -
    t log G_j + log Z_t(x)`` with ``Z_t = sum_i F_w,i^(1-t) G_i^t``; the first two terms are
    affine and ``log Z_t`` is convex (a log-sum-exp of affine functions of ``t``; Hoelder), so
    ``-log F_t,j`` is convex. In both cases ``sum_j F*_j (-log F_t,j)`` is a non-negative
    combination of convex functions, and so is its expectation over ``x``: ``Err(F_t)`` is
    convex and ``gain`` concave, with ``gain(0) = 0``. A concave function ``g`` on an interval
    with a maximiser ``t*`` is unimodal: for ``s < t <= t*``, ``t`` lies between ``s`` and
    ``t*``, so ``g(t) >= min(g(s), g(t*)) = g(s)`` (and symmetrically on ``[t*, 1]``); the chord
    inequality is concavity between ``0`` and ``1``. The derivatives: ``d/dt log F_t,j =
    (G_j - F_w,j)/F_t,j`` (mixture) and ``log(G_j/F_w,j) - sum_i F_t,i log(G_i/F_w,i)``
    (geometric), so ``gain'(t) = E sum_j F*_j d/dt log F_t,j``; at ``t = 0`` these give the
    formulas above (``sum_j F*_j = 1``). With labels the same holds for the empirical
    distribution (``F*`` one-hot, ``Err`` the test cross-entropy). ∎

    A student trained by gradient descent does not move on such a path, so the proposition does
    not say that training curves are unimodal; it says that along the straight line from a
    teacher towards any fixed predictor there is exactly one hill (or none), and where its top is.

    ``weak``, ``target``: strictly positive ``[N, K]`` (or binary ``[N]``); exactly one of
    ``f_star`` or ``labels``. ``n_points``: grid size (``>= 3``). The exact ``argmax`` comes from
    bisection on ``gain'`` (non-increasing by concavity): ``0`` if ``gain'(0) <= 0``, ``1`` if
    ``gain'(1) >= 0``.
    """
    tol = _check_tol(tol)
    if path not in PATH_KINDS:
        raise ValueError(f"path: must be one of {PATH_KINDS}, got {path!r}")
    n_points = check_int(n_points, "n_points", minimum=3)
    weak = _probs(weak, "weak")
    target = _same(weak, "weak", _probs(target, "target"), "target")
    _positive(weak, "weak", "the gain along a path (log F_t)")
    _positive(target, "target", "the gain along a path (log F_t)")
    truth, source = _target(weak.shape[-1], weak, f_star, labels)
    ts = torch.linspace(0.0, 1.0, n_points, dtype=weak.dtype, device=weak.device)
    err = _err(truth, _path(weak, target, ts, path))
    err_weak = _err(truth, weak[None])[0]
    gain = err_weak - err
    ends = _slope(weak, target, truth, torch.tensor([0.0, 1.0]).to(ts), path)
    slope_start, slope_end = float(ends[0]), float(ends[1])
    if slope_start <= 0.0:
        t_star = 0.0
    elif slope_end >= 0.0:
        t_star = 1.0
    else:
        lo, hi = 0.0, 1.0
        for _ in range(200):
            mid = 0.5 * (lo + hi)
            if mid in (lo, hi):
                break
            if float(_slope(weak, target, truth, torch.tensor([mid]).to(ts), path)[0]) > 0.0:
                lo = mid
            else:
                hi = mid
        t_star = 0.5 * (lo + hi)
    max_gain = float(
        err_weak - _err(truth, _path(weak, target, torch.tensor([t_star]).to(ts), path))[0]
    )
    g = [float(v) for v in gain]
    scale = max(1.0, max(abs(v) for v in g))
    second = [g[i - 1] - 2.0 * g[i] + g[i + 1] for i in range(1, n_points - 1)]
    lhs = max(second)
    concave = lhs <= tol * scale
    top = int(np.argmax(g))
    unimodal = all(g[i] <= g[i + 1] + tol * scale for i in range(top)) and all(
        g[i + 1] <= g[i] + tol * scale for i in range(top, n_points - 1)
    )
    chord = all(v >= float(t) * g[-1] - tol * scale for v, t in zip(g, ts.tolist(), strict=True))
    holds = (
        concave
        and unimodal
        and chord
        and abs(g[0]) <= tol * scale
        and max(g) <= max_gain + tol * scale
    )
    return GainAlongPathResult(
        source=source,
        loss=_LOSS_NAME[source],
        path=path,
        ts=tuple(ts.tolist()),
        gain=tuple(g),
        err=tuple(float(v) for v in err),
        slope_start=slope_start,
        slope_end=slope_end,
        argmax=t_star,
        max_gain=max_gain,
        rises_first=slope_start > 0.0,
        concave=concave,
        unimodal=unimodal,
        lhs=lhs,
        rhs=0.0,
        slack=-lhs,
        holds=holds,
        tol=tol,
    )


def random_trajectory(
    seed: int,
    *,
    n: int = 30,
    n_classes: int = 3,
    steps: int = 8,
    floor: float = 1e-3,
    teacher_noise: float | None = 1.0,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """A random instance of a training trajectory: ``(f_star, weak, students)``.

    ``f_star`` ``[n, K]`` Dirichlet rows; ``weak`` a teacher for it
    (:func:`~w2s_utils.theory.instances.weak_predictions` with ``teacher_noise``; ``None``:
    unrelated to ``f_star``); ``students`` ``[steps, n, K]`` on the straight path
    ``(1 - s) start + s weak``, ``s = 0 .. 1``, from a random ``start`` (a noisy copy of
    ``f_star``: a student that begins better than its teacher) to the teacher itself. Every entry
    of every row is ``>= floor``.
    """
    if not isinstance(steps, int) or isinstance(steps, bool) or steps < 2:
        raise ValueError(f"steps must be an int >= 2, got {steps!r}")
    f_star = random_simplex(n, n_classes, seed=seed)
    weak = weak_predictions(f_star, noise=teacher_noise, floor=floor, seed=seed + 1)
    start = weak_predictions(f_star, noise=0.5, floor=floor, seed=seed + 2)
    s = torch.linspace(0.0, 1.0, steps, dtype=torch.float64)[:, None, None]
    return f_star, weak, (1 - s) * start + s * weak
