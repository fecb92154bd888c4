"""Gain against disagreement, per example: what chapter 6 reads off a linear-head run.

The guarantee of the KL extension reads "the student beats its teacher by at least their
disagreement": ``gain >= disagreement`` with ``gain = Err(F_w) - Err(F_sw)`` and the
disagreement measured in the direction of the student's own loss (``E KL(F_sw || F_w)`` for a
reverse-KL student, ``E KL(F_w || F_sw)`` for a forward one). :func:`gain_and_disagreement` gives
both, per example, on the test split (held out), on ``val`` (held out, seed-dependent) or on the
student's own training inputs (``train``), exactly against ``F*`` for a planted truth and on the
labels otherwise (cross-entropy differences: unbiased for differences of ``Err``).

The regression reading (the abstract's "regression" with a KL loss): outputs in (0, 1) are
Bernoulli parameters and the loss is the binary KL. It is a two-class run with a planted truth
whose teacher learns from noisy copies of ``F*``::

    HeadsConfig(dataset, sizes, truth="planted", teacher_targets="soft", target_noise=1.0,
                loss="reverse")

(``target_noise`` = the standard deviation of the Gaussian noise on each class's log-probability,
so ``sqrt(2)`` times it on the log-odds). Pool seeds with
:func:`w2s_utils.analysis.stack` (which checks the shared test order) and average the arrays
below with :func:`w2s_utils.metrics.seeds_and_test_interval`; ``train`` and ``val`` inputs differ
between seeds, so only their seed means pool.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from w2s_utils import metrics
from w2s_utils.engine.heads.result import HeadsResult

__all__ = ["READING_SPLITS", "gain_and_disagreement"]

#: Splits of :func:`gain_and_disagreement`: held-out test, held-out val, the student's training.
READING_SPLITS = ("test", "val", "train")


def _split_arrays(result: HeadsResult, split: str) -> tuple[Any, Any, Any, Any]:
    if split == "test":
        return result.weak, result.student, result.labels, result.f_star
    if split == "val":
        val = (result.weak_labels_val, result.student_probs_val)
        return (*val, result.val_labels, result.f_star_val)
    return (
        result.weak_labels_train,
        result.student_probs_train,
        result.train_labels,
        result.f_star_train,
    )


def gain_and_disagreement(result: HeadsResult, split: str = "test") -> dict[str, np.ndarray]:
    """Per-example arrays ``[N]`` (float64, nats) of one run on ``split`` (:data:`READING_SPLITS`).

    Keys: ``loss_weak``, ``loss_student`` (``KL(F* || F)`` with a planted truth: ``Err`` exactly;
    else ``-log F_y``); ``gain`` = ``loss_weak - loss_student`` (positive: the student is better);
    ``eps`` = ``KL(F_w || F_sw)`` (misfit, weak→student) and ``eps_rev`` = ``KL(F_sw || F_w)``;
    ``disagreement`` = ``eps_rev`` for a reverse-KL student, ``eps`` for a forward one;
    ``gain_minus_disagreement`` (its mean ``>= 0`` is the guarantee). With a planted truth also
    ``forward_identity_gap`` = ``KL(F_w || F*) - KL(F_sw || F*) - KL(F_w || F_sw)``: for a
    forward-KL student with ``student_l2 = 0`` its mean over the student's own training inputs is
    0 (moment matching; the logit-linear class holds ``F*`` exactly).
    """
    if not isinstance(result, HeadsResult):
        raise ValueError(f"result: must be a HeadsResult (run_heads), got {type(result).__name__}")
    if split not in READING_SPLITS:
        raise ValueError(f"split: must be one of {READING_SPLITS}, got {split!r}")
    weak, student, labels, f_star = _split_arrays(result, split)
    if len(labels) == 0:
        raise ValueError(f"split: {split!r} is empty in this run (sizes.{split} = 0)")
    truth = {"labels": labels} if f_star is None else {"f_star": f_star}
    vals = metrics.per_example(weak, student, **truth)
    out = {
        "loss_weak": vals["loss_weak"],
        "loss_student": vals["loss_student"],
        "gain": vals["gain"],
        "eps": vals["eps"],
        "eps_rev": vals["eps_rev"],
    }
    out["disagreement"] = out["eps_rev"] if result.config.loss == "reverse" else out["eps"]
    out["gain_minus_disagreement"] = out["gain"] - out["disagreement"]
    if f_star is not None:
        w = np.asarray(weak, dtype=np.float64)
        s = np.asarray(student, dtype=np.float64)
        kl_w_star = metrics.kl(w, f_star).numpy()
        kl_s_star = metrics.kl(s, f_star).numpy()
        out["forward_identity_gap"] = kl_w_star - kl_s_star - out["eps"]
    return out
