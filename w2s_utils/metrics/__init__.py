"""Metrics (the lowest layer above input validation): divergences, classification,
calibration, weak-to-strong summaries and intervals. Pure torch, device-agnostic.

Conventions: probabilities have classes on the last axis and any leading batch axes; a 1-D tensor
``[N]`` is a binary predictor (positive-class probabilities). Natural logs (nats), 0 log 0 = 0.
Every public function validates its input (:mod:`w2s_utils._validate`); ``validate=False`` is for
internal hot loops whose input is already checked.
"""

from __future__ import annotations

from w2s_utils.metrics.calibration import (
    Reliability,
    apply_temperature,
    ece,
    ece_resamples,
    fit_temperature,
    lipschitz_sup_1d,
    reliability,
    smooth_ce,
)
from w2s_utils.metrics.classification import (
    accuracy,
    auroc,
    log_loss,
    log_loss_per_example,
    one_hot,
)
from w2s_utils.metrics.divergences import (
    CHUNK_ELEMENTS,
    cross_entropy,
    cross_entropy_from_logits,
    entropy,
    entropy_from_logits,
    kl,
    kl_from_logits,
    tv,
)
from w2s_utils.metrics.intervals import (
    Interval,
    SeedsTestInterval,
    across_seeds,
    bootstrap_ci,
    seed_interval,
    seeds_and_test_interval,
    seeds_and_test_statistic,
    wilson_interval,
)
from w2s_utils.metrics.w2s import (
    MISFIT_KINDS,
    PER_EXAMPLE,
    PGR_MIN_GAP,
    misfit,
    per_example,
    pgr,
    summarize_predictions,
)

__all__ = [
    "CHUNK_ELEMENTS",
    "Interval",
    "MISFIT_KINDS",
    "PER_EXAMPLE",
    "PGR_MIN_GAP",
    "Reliability",
    "accuracy",
    "across_seeds",
    "apply_temperature",
    "auroc",
    "bootstrap_ci",
    "cross_entropy",
    "cross_entropy_from_logits",
    "ece",
    "ece_resamples",
    "entropy",
    "entropy_from_logits",
    "fit_temperature",
    "kl",
    "kl_from_logits",
    "lipschitz_sup_1d",
    "log_loss",
    "log_loss_per_example",
    "misfit",
    "one_hot",
    "per_example",
    "pgr",
    "reliability",
    "seed_interval",
    "seeds_and_test_interval",
    "seeds_and_test_statistic",
    "SeedsTestInterval",
    "smooth_ce",
    "summarize_predictions",
    "tv",
    "wilson_interval",
]
