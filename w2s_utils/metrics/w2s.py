"""Weak-to-strong summaries: performance gap recovered (PGR), student-weak misfit, and the
per-example evaluation of a (weak, student, ceiling) run (:func:`per_example`,
:func:`summarize_predictions`)."""

from __future__ import annotations

import math

import numpy as np
import torch

from w2s_utils._validate import (
    as_tensor,
    as_two_class,
    check_finite,
    check_int,
    check_labels,
    check_leading,
    check_number,
    check_probs,
    check_same_shape,
)
from w2s_utils.metrics.calibration import ece, smooth_ce
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


def misfit(weak, student, kind: str = "kl_weak_student", *, validate: bool = True) -> float:
    """Average disagreement between the teacher ``weak`` and the ``student`` (mean over rows), in
    the library's argument order ``(weak, student)``; the kind names its direction:

    - ``"kl_weak_student"``: E_x KL(weak ‖ student), the misfit ε (weak→student), the objective of
      forward-KL / soft-CE training;
    - ``"kl_student_weak"``: E_x KL(student ‖ weak), the misfit ε_rev (student→weak), the
      objective of reverse-KL training;
    - ``"squared"``: E_x ‖student − weak‖² summed over all classes; binary ``[N]`` input is read as
      ``[N, 2]`` like everywhere else, giving 2 (p_s − p_w)² per row (for a scalar regression
      output compute ((s − w) ** 2).mean() directly).
    """
    if kind not in MISFIT_KINDS:
        raise ValueError(
            f"kind: unknown misfit kind {kind!r}; valid kinds: {', '.join(MISFIT_KINDS)}"
        )
    if validate:
        weak = check_probs(weak, "weak")
        student = check_probs(student, "student")
        check_same_shape((weak, "weak"), (student, "student"))
    if kind == "kl_weak_student":
        vals = kl(weak, student, validate=False)
    elif kind == "kl_student_weak":
        vals = kl(student, weak, validate=False)
    else:
        diff = as_tensor(student, "student") - as_tensor(weak, "weak")
        vals = 2.0 * diff.square() if diff.dim() == 1 else diff.square().sum(dim=-1)
    return float(vals.mean())


# --------------------------------------------------------------------------- a (weak, student) run
#: The per-example quantities of :func:`per_example`, in reading order (the ``*_ceiling`` ones and
#: ``acc_gap`` only when a ceiling is given).
PER_EXAMPLE = (
    "correct_weak",
    "correct_student",
    "correct_ceiling",
    "acc_gain",
    "acc_gap",
    "loss_weak",
    "loss_student",
    "loss_ceiling",
    "gain",
    "eps",
    "eps_rev",
    "interaction",
    "misfit_sq",
)


def _truth(n_classes: int, labels, f_star, ref: torch.Tensor):
    if (labels is None) == (f_star is None):
        raise ValueError(
            "labels, f_star: pass exactly one: labels (class indices [N], the test set's) or "
            "f_star (the true class probabilities [N, K] of a planted task)"
        )
    if labels is not None:
        y = check_labels(labels, n_classes, "labels")
        check_leading(ref, y, ("weak", "labels"))
        return y.to(ref.device), None
    fs = as_two_class(f_star, "f_star").to(device=ref.device, dtype=torch.float64)
    check_same_shape((ref, "weak"), (fs, "f_star"))
    return None, fs


def per_example(
    weak, student, ceiling=None, *, labels=None, f_star=None, floor: float = 0.0
) -> dict[str, np.ndarray]:
    """Every per-example quantity of one weak-to-strong run, as float64 numpy arrays ``[N]``.

    ``weak``, ``student``, ``ceiling`` are the three predictors' probabilities on the same ``N``
    test inputs (``[N, K]``; ``[N]`` is binary, read as ``[N, 2]``); the truth is either the
    test ``labels`` (class indices) or, for a planted task, ``f_star`` (the true class
    probabilities), exactly one of them. Keys (see :data:`PER_EXAMPLE`; the ceiling's only with a
    ceiling), in nats where they are losses, with the book's sign convention (positive gain =
    the student is better than its teacher):

    - ``correct_<m>``: 1 where the predictor's top class (first maximal index) is the label,
      else 0; with ``f_star``: the probability ``F*_j(x)`` of its top class ``j`` (the expected
      correctness);
    - ``acc_gain`` = ``correct_student - correct_weak``; ``acc_gap`` = ``correct_ceiling -
      correct_weak`` (their means give an accuracy PGR, :func:`pgr`);
    - ``loss_<m>``: ``-log p_y`` (with labels: the test cross-entropy, whose mean estimates
      ``Err + H(Y|X)``) or ``KL(F* || p)`` (with ``f_star``: ``Err`` itself);
    - ``gain`` = ``loss_weak - loss_student`` (the mean estimates ``Err(F_w) - Err(F_sw)``
      without bias: ``H(Y|X)`` cancels);
    - ``eps`` = ``KL(weak || student)`` (the misfit, weak→student, the objective of
      cross-entropy training) and ``eps_rev`` = ``KL(student || weak)``;
    - ``interaction`` = ``gain + eps`` = ``sum_j (t_j - weak_j) log(student_j / weak_j)`` with
      ``t`` the one-hot label or ``F*`` (the decomposition ``gain = interaction - eps``);
    - ``misfit_sq`` = ``sum_j (student_j - weak_j)^2`` (the squared-loss misfit per example).

    ``floor`` (default 0: none): probabilities below it count as ``floor`` inside every logarithm
    (a float32 softmax can underflow to exactly 0, which would make a loss infinite); with the
    default a zero probability on the true class gives an infinite loss, as
    :func:`~w2s_utils.metrics.log_loss_per_example` does. Everything is computed in float64.
    """
    floor = check_number(floor, "floor", lo=0.0, hi=1.0, hi_open=True)
    preds = {"weak": as_two_class(weak, "weak"), "student": as_two_class(student, "student")}
    if ceiling is not None:
        preds["ceiling"] = as_two_class(ceiling, "ceiling")
    preds = {k: v.detach().to(torch.float64) for k, v in preds.items()}
    ref = preds["weak"]
    if ref.dim() != 2:
        raise ValueError(
            f"weak: expected probabilities [N] (binary) or [N, K], got shape {tuple(ref.shape)}"
        )
    check_same_shape(*((p, name) for name, p in preds.items()))
    y, fs = _truth(ref.shape[1], labels, f_star, ref)
    low = {k: p.clamp_min(floor) if floor > 0 else p for k, p in preds.items()}  # inside logs
    out: dict[str, torch.Tensor] = {}
    for name, p in preds.items():
        top = p.argmax(dim=-1, keepdim=True)
        if y is not None:
            out[f"correct_{name}"] = (top[:, 0] == y).to(torch.float64)
            out[f"loss_{name}"] = -torch.log(low[name].gather(-1, y[:, None])[:, 0])
        else:
            out[f"correct_{name}"] = fs.gather(-1, top)[:, 0]
            out[f"loss_{name}"] = (torch.xlogy(fs, fs) - torch.xlogy(fs, low[name])).sum(-1)
    w, s = preds["weak"], preds["student"]
    out["acc_gain"] = out["correct_student"] - out["correct_weak"]
    if "ceiling" in preds:
        out["acc_gap"] = out["correct_ceiling"] - out["correct_weak"]
    out["gain"] = out["loss_weak"] - out["loss_student"]
    out["eps"] = (torch.xlogy(w, w) - torch.xlogy(w, low["student"])).sum(-1)
    out["eps_rev"] = (torch.xlogy(s, s) - torch.xlogy(s, low["weak"])).sum(-1)
    out["interaction"] = out["gain"] + out["eps"]
    out["misfit_sq"] = (s - w).square().sum(-1)
    return {k: out[k].cpu().numpy() for k in PER_EXAMPLE if k in out}


def summarize_predictions(
    weak,
    student,
    ceiling=None,
    *,
    labels=None,
    f_star=None,
    n_bins: int = 15,
    floor: float = 0.0,
) -> dict[str, float]:
    """The test means of one run: the means of :func:`per_example` and the calibration errors.

    Keys: ``acc_<m>`` (the mean of ``correct_<m>``: accuracy, or expected accuracy with
    ``f_star``), ``loss_<m>`` (test cross-entropy, or ``Err`` with ``f_star``), ``acc_gain``,
    ``gain``, ``eps``, ``eps_rev``, ``interaction``, ``misfit_sq`` and, with a ceiling,
    ``acc_gap``, ``pgr`` (accuracy PGR, :func:`pgr`: NaN where the ceiling does not beat the
    teacher by more than :data:`PGR_MIN_GAP`) and ``pgr_loss`` (the same on ``-loss``); for every
    predictor ``m``: ``ece_<m>`` (binned top-label ECE, ``n_bins`` equal-width bins,
    :func:`~w2s_utils.metrics.ece`) and ``smooth_ce_<m>`` (:func:`~w2s_utils.metrics.smooth_ce`;
    NaN for more than two classes). Calibration is measured against the labels, or against
    ``F*`` when ``f_star`` is given. Arguments as :func:`per_example`.
    """
    n_bins = check_int(n_bins, "n_bins", minimum=1)
    vals = per_example(weak, student, ceiling, labels=labels, f_star=f_star, floor=floor)
    out: dict[str, float] = {}
    roles = ("weak", "student", "ceiling") if ceiling is not None else ("weak", "student")
    for m in roles:
        out[f"acc_{m}"] = float(vals[f"correct_{m}"].mean())
    for m in roles:
        out[f"loss_{m}"] = float(vals[f"loss_{m}"].mean())
    for key in ("acc_gain", "acc_gap", "gain", "eps", "eps_rev", "interaction", "misfit_sq"):
        if key in vals:
            out[key] = float(vals[key].mean())
    if ceiling is not None:
        out["pgr"] = pgr(out["acc_weak"], out["acc_student"], out["acc_ceiling"])
        losses = [-out[f"loss_{m}"] for m in roles]
        out["pgr_loss"] = pgr(*losses) if all(np.isfinite(losses)) else math.nan
    truth = {"labels": labels} if labels is not None else {"target": as_two_class(f_star, "f_star")}
    for m, p in zip(roles, (weak, student, ceiling), strict=False):
        probs = as_two_class(p, m).to(torch.float64)
        out[f"ece_{m}"] = ece(probs, n_bins=n_bins, **truth)
        out[f"smooth_ce_{m}"] = smooth_ce(probs, **truth) if probs.shape[1] == 2 else math.nan
    return out
