"""The book's results as functions (the theory layer; imports only metrics and validation).

Each result returns a frozen dataclass with both sides (``lhs``, ``rhs``), the ``slack`` and whether
it ``holds``; the solvers produce a student that satisfies a result's hypotheses; the random
instances build inputs on which each result's assumptions hold by construction.

``Err(F) = E_x KL(F*(x) || F(x))``. Results that need ``f_star`` say so; with ``labels`` a result is
applied to the empirical distribution (one-hot ground truth), where it holds exactly on the sample.
"""

from __future__ import annotations

from w2s_utils.theory._base import (
    DEFAULT_TOL,
)
from w2s_utils.theory.calibration import (
    CalibrationBoundResult,
    EceBoundResult,
    calibration_bound,
    ece_bound,
)
from w2s_utils.theory.counterexamples import (
    TRIAL_KINDS,
    Counterexample,
    TrialOutcome,
    find_forward_kl_counterexample,
    find_reverse_kl_logit_counterexample,
    non_guarantee_trial,
)
from w2s_utils.theory.decomposition import (
    DecompositionPointwise,
    DecompositionResult,
    error_decomposition,
)
from w2s_utils.theory.generalization import (
    GeneralizationBoundResult,
    MisfitCentredBoundResult,
    clip_to_floor,
    generalization_bound,
    misfit_centred_bound,
)
from w2s_utils.theory.kl import (
    ForwardKLIdentityResult,
    KLMisfitGainResult,
    forward_kl_identity,
    kl_misfit_gain,
)
from w2s_utils.theory.projections import (
    IProjection,
    LeastSquaresProjection,
    LinearProjection,
    forward_kl_projection_linear,
    i_projection_mixture,
    least_squares_projection,
    reverse_kl_projection_linear,
)
from w2s_utils.theory.squared_loss import (
    SquaredMisfitGainResult,
    squared_misfit_gain,
)

__all__ = [
    "CalibrationBoundResult",
    "Counterexample",
    "DEFAULT_TOL",
    "DecompositionPointwise",
    "DecompositionResult",
    "EceBoundResult",
    "ForwardKLIdentityResult",
    "GeneralizationBoundResult",
    "IProjection",
    "KLMisfitGainResult",
    "LeastSquaresProjection",
    "LinearProjection",
    "MisfitCentredBoundResult",
    "SquaredMisfitGainResult",
    "TRIAL_KINDS",
    "TrialOutcome",
    "calibration_bound",
    "clip_to_floor",
    "ece_bound",
    "error_decomposition",
    "find_forward_kl_counterexample",
    "find_reverse_kl_logit_counterexample",
    "forward_kl_identity",
    "forward_kl_projection_linear",
    "generalization_bound",
    "i_projection_mixture",
    "kl_misfit_gain",
    "least_squares_projection",
    "misfit_centred_bound",
    "non_guarantee_trial",
    "reverse_kl_projection_linear",
    "squared_misfit_gain",
]
