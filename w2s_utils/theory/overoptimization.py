"""The room to gain along a training trajectory (chapter 4: over-optimization).

A student trained on weak labels is a sequence of predictors ``F_t`` (``t`` = the evaluations of
one run). At every step, Lemma 1 makes ``Err(F_w) - Err(F_t) = -E_x sum_j F*_j l_j(x; t)`` with
``l_j(x; t) = log F_w,j(x) - log F_t,j(x)``, a convex combination, so

    -E max_j l_j(x; t)  <=  gain_t = Err(F_w) - Err(F_t)  <=  room_t = -E min_j l_j(x; t),

for every ground truth, with both ends attained; the room needs no labels. Under a floor
``gamma_t``, ``room_t <= E max_j |l_j| <= log(1 + sqrt(eps_t/2)/gamma_t) <= sqrt(eps_t/2)/gamma_t``
(the chain of :func:`~w2s_utils.theory.generalization_chain`). :func:`trajectory_room` evaluates
all of it at every step. The statement bounds the room; it does not say that the gain falls.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import torch

from w2s_utils.theory._base import DEFAULT_TOL, _check_tol, _le, _Result
from w2s_utils.theory.generalization import generalization_chain, label_free_interval
from w2s_utils.theory.instances import random_simplex, weak_predictions

__all__ = ["TrajectoryRoomResult", "random_trajectory", "trajectory_room"]


@dataclass(frozen=True)
class TrajectoryRoomResult(_Result):
    """The room to gain at every step of a trajectory (tuples have one entry per step).

    ``room`` = ``-E min_j l_j`` (the largest gain any ground truth allows), ``room_rev`` =
    ``E max_j l_j`` (the largest loss), ``eps``/``eps_rev`` the misfits, ``gamma`` the floor used
    (the empirical floor of the step's pair unless given), ``log_room`` =
    ``log(1 + sqrt(eps/2)/gamma)`` and ``theorem1_room`` = ``sqrt(eps/2)/gamma``. With a truth:
    ``gain`` (``Err(F_w) - Err(F_t)``, or the test cross-entropy difference with ``labels``),
    ``best_step`` (its argmax) and ``best_gain``; else ``None``. ``lhs`` = ``max_t (gain_t -
    room_t)`` with a truth (else ``max_t (room_t - log_room_t)``), ``rhs = 0``. ``holds``: at
    every step ``-room_rev <= gain <= room`` (with a truth) and ``room <= log_room <=
    theorem1_room``.
    """

    NAME: ClassVar[str] = "Room along a trajectory"
    RELATION: ClassVar[str] = (
        "-E max_j l_j(t) <= gain_t <= room_t = -E min_j l_j(t) <= log(1+sqrt(eps_t/2)/gamma_t) "
        "at every step t"
    )

    source: str
    steps: int
    room: tuple[float, ...]
    room_rev: tuple[float, ...]
    eps: tuple[float, ...]
    eps_rev: tuple[float, ...]
    gamma: tuple[float, ...]
    log_room: tuple[float, ...]
    theorem1_room: tuple[float, ...]
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
    ``f_star`` or ``labels`` (at most one) add the measured gain. ``gamma``: a floor every
    step's pair satisfies (default: each step's empirical floor). Each step is
    :func:`label_free_interval` and :func:`generalization_chain` of ``(weak, students[t])``.
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
    room = tuple(-iv.lower for iv, _ in rows)
    room_rev = tuple(iv.upper for iv, _ in rows)
    log_room = tuple(ch.log_pinsker for _, ch in rows)
    thm1 = tuple(ch.bound_eps for _, ch in rows)
    ok = all(
        _le(r, lr, tol) and _le(lr, t1, tol) for r, lr, t1 in zip(room, log_room, thm1, strict=True)
    )
    gain = best_step = best_gain = None
    source = rows[0][0].source
    if truth:
        gain = tuple(-float(iv.err_change) for iv, _ in rows)
        best_step = int(np.argmax(gain))
        best_gain = gain[best_step]
        ok = ok and all(
            _le(g, r, tol) and _le(-rr, g, tol)
            for g, r, rr in zip(gain, room, room_rev, strict=True)
        )
        lhs = max(g - r for g, r in zip(gain, room, strict=True))
    else:
        lhs = max(r - lr for r, lr in zip(room, log_room, strict=True))
    return TrajectoryRoomResult(
        source=source,
        steps=len(rows),
        room=room,
        room_rev=room_rev,
        eps=tuple(iv.eps for iv, _ in rows),
        eps_rev=tuple(iv.eps_rev for iv, _ in rows),
        gamma=tuple(ch.gamma for _, ch in rows),
        log_room=log_room,
        theorem1_room=thm1,
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
