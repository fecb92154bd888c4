"""The book's results as functions (the theory layer; imports only metrics and validation).

Each result returns a frozen dataclass with both sides (``lhs``, ``rhs``), the ``slack`` and whether
it ``holds``; the solvers produce a student that satisfies a result's hypotheses; the random
instances build inputs on which each result's assumptions hold by construction; :func:`sweep`
checks a result on many random instances; :mod:`~w2s_utils.theory.flooring` is the one home of
flooring probabilities.

One sign convention: ``Err(F) = E_x KL(F*(x) || F(x))``, the **gain** ``Err(F_w) - Err(F_sw)``
(nats; positive: the student is better than its teacher), the student log-ratio
``r_j = log F_sw,j - log F_w,j`` (so ``gain = E sum_j F*_j r_j``), the misfit
``eps = E KL(F_w||F_sw)`` (weak -> student), ``eps_rev = E KL(F_sw||F_w)`` and the interaction
``E sum_j (F*_j - F_w,j) r_j = gain + eps``. Results that need ``f_star`` say so; with ``labels``
a result is applied to the empirical distribution (one-hot ground truth), where it holds exactly
on the sample and the gain is ``CE(F_w) - CE(F_sw)``.
"""

from __future__ import annotations

from w2s_utils.theory._base import (
    DEFAULT_TOL,
    UndefinedResultError,
)
from w2s_utils.theory.calibration import (
    CalibrationBoundResult,
    EceBoundResult,
    EceEscapeInstance,
    MulticlassCalibrationBoundResult,
    binned_ece_escape,
    calibration_bound,
    ece_bound,
    multiclass_calibration_bound,
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
from w2s_utils.theory.error_aware import (
    ErrorAwareCurve,
    ErrorAwareIntervalResult,
    error_aware_curve,
    error_aware_interval,
)
from w2s_utils.theory.flooring import clip_to_floor, ensure_floor, mix_with_uniform
from w2s_utils.theory.generalization import (
    GeneralizationBoundResult,
    GeneralizationChainPointwise,
    GeneralizationChainResult,
    MisfitCentredBoundResult,
    OscillationBoundPointwise,
    OscillationBoundResult,
    generalization_bound,
    generalization_chain,
    misfit_centred_bound,
    oscillation_bound,
)
from w2s_utils.theory.intervals import (
    LabelFreeIntervalPointwise,
    LabelFreeIntervalResult,
    hoeffding_term,
    label_free_interval,
    worst_case_truth,
)
from w2s_utils.theory.kl import (
    ForwardKLIdentityResult,
    KLDirectionGapResult,
    KLMisfitGainResult,
    forward_kl_identity,
    kl_direction_gap,
    kl_misfit_gain,
)
from w2s_utils.theory.kl_checks import (
    ForwardKLLinearCheck,
    ReverseKLMixtureCheck,
    forward_kl_linear_check,
    reverse_kl_mixture_check,
)
from w2s_utils.theory.overoptimization import (
    PATH_KINDS,
    GainAlongPathResult,
    TrajectoryRoomResult,
    gain_along_path,
    random_trajectory,
    trajectory_room,
)
from w2s_utils.theory.projections import (
    IProjection,
    LeastSquaresProjection,
    LinearProjection,
    MProjection,
    forward_kl_projection_linear,
    forward_kl_projection_mixture,
    i_projection_mixture,
    least_squares_projection,
    reverse_kl_projection_linear,
)
from w2s_utils.theory.smooth_ce import MulticlassSmoothCE, multiclass_smooth_ce
from w2s_utils.theory.softmax_heads import (
    ForwardKLSoftmaxHeadResult,
    ReverseKLSoftmaxHeadResult,
    forward_kl_softmax_head,
    reverse_kl_softmax_head,
)
from w2s_utils.theory.squared_loss import (
    SQUARED_TRIAL_KINDS,
    ClassProjection,
    SquaredMisfitGainAgnosticResult,
    SquaredMisfitGainResult,
    SquaredTrial,
    find_squared_counterexample,
    project_onto_class,
    squared_misfit_gain,
    squared_misfit_gain_agnostic,
    squared_trial,
)
from w2s_utils.theory.sweep import sweep

__all__ = [
    "UndefinedResultError",
    "CalibrationBoundResult",
    "Counterexample",
    "DEFAULT_TOL",
    "DecompositionPointwise",
    "DecompositionResult",
    "EceBoundResult",
    "ForwardKLIdentityResult",
    "GeneralizationBoundResult",
    "GeneralizationChainPointwise",
    "GeneralizationChainResult",
    "IProjection",
    "KLMisfitGainResult",
    "LabelFreeIntervalPointwise",
    "LabelFreeIntervalResult",
    "LeastSquaresProjection",
    "LinearProjection",
    "MProjection",
    "MisfitCentredBoundResult",
    "OscillationBoundPointwise",
    "OscillationBoundResult",
    "SquaredMisfitGainResult",
    "TRIAL_KINDS",
    "TrialOutcome",
    "EceEscapeInstance",
    "MulticlassCalibrationBoundResult",
    "MulticlassSmoothCE",
    "binned_ece_escape",
    "calibration_bound",
    "multiclass_calibration_bound",
    "multiclass_smooth_ce",
    "clip_to_floor",
    "ece_bound",
    "error_decomposition",
    "find_forward_kl_counterexample",
    "find_reverse_kl_logit_counterexample",
    "forward_kl_identity",
    "forward_kl_projection_linear",
    "forward_kl_projection_mixture",
    "generalization_bound",
    "generalization_chain",
    "i_projection_mixture",
    "kl_misfit_gain",
    "label_free_interval",
    "least_squares_projection",
    "misfit_centred_bound",
    "non_guarantee_trial",
    "oscillation_bound",
    "reverse_kl_projection_linear",
    "squared_misfit_gain",
    "SQUARED_TRIAL_KINDS",
    "ClassProjection",
    "SquaredMisfitGainAgnosticResult",
    "SquaredTrial",
    "find_squared_counterexample",
    "project_onto_class",
    "squared_misfit_gain_agnostic",
    "squared_trial",
    "worst_case_truth",
    "TrajectoryRoomResult",
    "trajectory_room",
    "random_trajectory",
    "ErrorAwareCurve",
    "ErrorAwareIntervalResult",
    "error_aware_curve",
    "error_aware_interval",
    "ensure_floor",
    "mix_with_uniform",
    "hoeffding_term",
    "KLDirectionGapResult",
    "kl_direction_gap",
    "ForwardKLLinearCheck",
    "ReverseKLMixtureCheck",
    "forward_kl_linear_check",
    "reverse_kl_mixture_check",
    "ForwardKLSoftmaxHeadResult",
    "ReverseKLSoftmaxHeadResult",
    "forward_kl_softmax_head",
    "reverse_kl_softmax_head",
    "PATH_KINDS",
    "GainAlongPathResult",
    "gain_along_path",
    "sweep",
]
