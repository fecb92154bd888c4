"""Chapter 3 (calibration): the random-instance checks and the words the chapter glues.

The tables and intervals over seeds and test examples (calibration table, calibration change,
temperature sweep, paired differences, pooled reliability curves) are computed by
:mod:`w2s_utils.analysis`; drawing stays in :mod:`w2s_utils.book.plots`.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
import torch

from w2s_utils import theory
from w2s_utils.theory import instances

__all__ = [
    "interval_note",
    "random_calibration_check",
    "random_multiclass_check",
]


def interval_note(n_seeds: int) -> str:
    """What the part-2 intervals hold, for the chapter's text (one seed or several)."""
    if n_seeds == 1:
        return (
            "are undefined: with one training seed the training noise cannot be estimated "
            "(run more seeds)"
        )
    return (
        f"hold the training noise of the {n_seeds} seeds (a Student-t part over the seed means) "
        "and the test set's sampling error (a part over resampled test examples) together"
    )


def random_calibration_check(
    n_instances: int, n_points: int = 200, *, seed: int = 0, n_bins: int = 15
) -> pd.DataFrame:
    """Theorem 2 on random binary instances, against ``F*`` and against sampled labels.

    Each instance: ``F*`` uniform on [0, 1] bent by a random power, a teacher that is a noisy,
    randomly tempered copy of ``F*`` (so its miscalibration varies), a student that is a noisy copy
    of the teacher. One row per instance and truth (``"f_star"`` or ``"labels"``) with both smCEs,
    both ECEs, the bound's sides, ``holds`` and ``ece_escapes`` (|ECE change| > 2 E|p_sw - p_w|).
    """
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n_instances):
        f = np.clip(rng.uniform(size=n_points) ** rng.uniform(0.3, 3.0), 1e-4, 1 - 1e-4)
        logit = np.log(f) - np.log1p(-f)
        w_logit = (logit + rng.normal(0, rng.uniform(0.05, 2.0), n_points)) / rng.uniform(0.3, 3)
        s_logit = w_logit + rng.normal(0, 10 ** rng.uniform(-3, 0.5), n_points)
        weak = torch.from_numpy(1 / (1 + np.exp(-w_logit)))
        student = torch.from_numpy(1 / (1 + np.exp(-s_logit)))
        labels = torch.from_numpy((rng.uniform(size=n_points) < f).astype(np.int64))
        f_star = torch.from_numpy(f)
        for source, truth in (("f_star", {"f_star": f_star}), ("labels", {"labels": labels})):
            r = theory.calibration_bound(weak, student, n_bins=n_bins, **truth)
            rows.append(
                dict(
                    instance=i,
                    truth=source,
                    smce_weak=r.smce_weak,
                    smce_student=r.smce_student,
                    diff=r.diff,
                    bound_abs=r.bound_abs,
                    bound_eps=r.bound_eps,
                    ece_weak=r.ece_weak,
                    ece_student=r.ece_student,
                    ece_diff=abs(r.ece_student - r.ece_weak),
                    holds=r.holds,
                    ece_escapes=abs(r.ece_student - r.ece_weak) > r.bound_abs,
                )
            )
    return pd.DataFrame(rows)


def random_multiclass_check(
    n_instances: int, n_points: int = 30, ks: Sequence[int] = (2, 3, 4, 5), *, seed: int = 0
) -> pd.DataFrame:
    """The multi-class Theorem 2 (exact LP smCE) on small random instances against ``F*``.

    ``F*`` Dirichlet rows, a teacher a noisy copy of ``F*`` and a student a noisy copy of the
    teacher (:mod:`w2s_utils.theory.instances`). One row per instance: ``K``, both smCEs, the
    change, the sides ``bound_tv = 6 E TV`` and ``bound_eps = 3 sqrt(2 eps)``, ``holds``.
    """

    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n_instances):
        k = int(ks[i % len(ks)])
        s = int(rng.integers(1 << 30))
        f_star = instances.random_simplex(n_points, k, concentration=1.0, seed=s)
        weak = instances.weak_predictions(f_star, noise=float(rng.uniform(0.2, 2.0)), seed=s + 1)
        student = instances.weak_predictions(weak, noise=float(rng.uniform(0.05, 1.5)), seed=s + 2)
        r = theory.multiclass_calibration_bound(weak, student, f_star=f_star, tol=1e-7)
        rows.append(
            dict(
                instance=i,
                K=k,
                smce_weak=r.smce_weak,
                smce_student=r.smce_student,
                diff=r.diff,
                bound_tv=r.bound_tv,
                bound_eps=r.bound_eps,
                holds=r.holds,
            )
        )
    return pd.DataFrame(rows)
