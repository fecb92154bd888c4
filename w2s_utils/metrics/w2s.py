"""Weak-to-strong summaries: performance gap recovered (PGR) and student-weak misfit."""

from __future__ import annotations

import numpy as np

from w2s_utils._validate import (
    as_tensor,
    check_finite,
    check_number,
    check_probs,
    check_same_shape,
)
from w2s_utils.metrics.divergences import kl

#: The one threshold below which PGR is undefined: the ceiling must beat the teacher by more than
#: this (1 accuracy point, or 0.01 nats on a cross-entropy scale) for the ratio to mean anything:
#: a 1-point gap is about one standard error of an accuracy on ~1,500 test examples.
PGR_MIN_GAP = 0.01


def pgr(weak, student, ceiling, *, min_gap: float = PGR_MIN_GAP):
    """Performance gap recovered (student − weak) / (ceiling − weak) (Burns et al. 2023).

    Undefined when the ceiling does not beat the weak model by more than ``min_gap`` (default
    :data:`PGR_MIN_GAP`): the result is ``nan`` there (no division is performed). Scalars give a
    ``float``; arrays/tensors are handled elementwise (broadcasting) and give a numpy array.
    NaN/inf inputs and shapes that do not broadcast raise ``ValueError`` naming the argument.
    """
    w, s, c = (
        np.asarray(check_finite(v, n).detach().cpu(), dtype=np.float64)
        for v, n in ((weak, "weak"), (student, "student"), (ceiling, "ceiling"))
    )
    for arr, n in ((s, "student"), (c, "ceiling")):
        try:
            np.broadcast_shapes(w.shape, arr.shape)
        except ValueError:
            raise ValueError(
                f"{n}: shape {arr.shape} does not match weak's {w.shape} (nor broadcasts to it); "
                "pass one value per configuration for weak, student and ceiling"
            ) from None
    min_gap = check_number(min_gap, "min_gap", lo=0.0)
    gap = c - w
    ok = gap > min_gap
    out = np.where(ok, (s - w) / np.where(ok, gap, 1.0), np.nan)
    if out.ndim == 0:
        return float(out)
    return out


MISFIT_KINDS = ("kl_weak_student", "kl_student_weak", "squared")


def misfit(student, weak, kind: str = "kl_weak_student", *, validate: bool = True) -> float:
    """Average disagreement between student and weak predictions (mean over rows).

    - ``"kl_weak_student"``: E_x KL(weak ‖ student), the objective ε of forward-KL / soft-CE
      training;
    - ``"kl_student_weak"``: E_x KL(student ‖ weak) (reverse misfit, Theorem 3);
    - ``"squared"``: E_x ‖student − weak‖² summed over all classes; binary ``[N]`` input is read as
      ``[N, 2]`` like everywhere else, giving 2 (p_s − p_w)² per row (for a scalar regression
      output compute ((s − w) ** 2).mean() directly).
    """
    if kind not in MISFIT_KINDS:
        raise ValueError(
            f"kind: unknown misfit kind {kind!r}; valid kinds: {', '.join(MISFIT_KINDS)}"
        )
    if validate:
        student = check_probs(student, "student")
        weak = check_probs(weak, "weak")
        check_same_shape((student, "student"), (weak, "weak"))
    if kind == "kl_weak_student":
        vals = kl(weak, student, validate=False)
    elif kind == "kl_student_weak":
        vals = kl(student, weak, validate=False)
    else:
        diff = as_tensor(student, "student") - as_tensor(weak, "weak")
        vals = 2.0 * diff.square() if diff.dim() == 1 else diff.square().sum(dim=-1)
    return float(vals.mean())
