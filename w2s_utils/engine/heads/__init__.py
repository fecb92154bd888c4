"""Weak-to-strong experiments with linear heads on frozen features (chapters 3 and 6).

Many seeds per cell in seconds on a CPU: every model is a multinomial logistic head on cached
frozen features, fitted to its optimum in float64, so a run is a few Newton solves.

One run (:class:`HeadsConfig`, :func:`run_heads`):

1. **Splits**: :func:`w2s_utils.engine.data.make_splits` of the ``pool`` texts of smallest id
   (:func:`pool_dataset`; 0 = the whole dataset). The test split is sorted by id and the same for
   every seed, so per-example arrays of different seeds line up by position.
2. **Features**: the mean-pooled final-layer features of the ``weak`` and ``strong`` models
   (:func:`pooled_features`, the engine's per-text feature store in the namespace the planted
   tasks and chapter 5 use, so the cache is shared), or TF-IDF for ``weak = "bow"``.
3. **Truth**: the gold labels, or a planted ``F*`` (a logistic head on the strong features,
   labels drawn from it by a content-defined uniform): then ``Err`` is exact.
4. **Teacher** ``F_w``: a head on the weak features of the first ``teacher_n`` examples of
   ``weak_train``; its quality knobs are that size, ``label_noise`` (a seeded fraction of its
   training labels moved to another class), ``teacher_l2``, and, after training,
   ``teacher_temperature`` (``softmax(log p / T)``, or ``"fit"`` on ``val``). It labels
   ``w2s_train``, ``val`` and ``test``.
5. **Student** ``F_sw``: a head on the strong features of ``w2s_train`` fitted to the teacher's
   labels: ``loss = "forward"`` (soft cross-entropy = forward KL; or hard labels) is convex and
   solved by Newton; ``loss = "reverse"`` (``E KL(F_sw || F_w)``) is not convex in the logits and
   is solved by damped modified Newton from the forward solution (:mod:`.solvers`), its gradient
   checked.
6. **Ceiling** ``F_s``: a head on the strong features of ``w2s_train`` with the truth's labels.

:class:`HeadsResult` carries the attributes the analysis layer reads from an
:class:`~w2s_utils.engine.experiment.ExperimentResult` (``config``, ``labels``, ``ids``,
``weak``, ``student``, ``ceiling``, ``weak_labels_train``, ``student_probs_train``,
``train_labels``, ``weak_labels_val``), so :func:`w2s_utils.analysis.stack` and every table
built on it work unchanged; :func:`heads_grid` builds seeds x knobs grids;
:func:`gain_and_disagreement` gives chapter 6's per-example gain and disagreement, also for the
Bernoulli regression reading (:mod:`.reading`). K comes from the data.

Cost (measured on the shared 2-core box under a load of 4-5, one BLAS thread; an idle box is
faster): one config with 2,000 teacher, 2,000 student and 1,500 test examples at D = 384 takes
0.55-0.6 s (forward student) or 0.7-0.9 s (reverse) once its features are in memory, all three
heads fitted; in a grid, configs share teachers and ceilings (10 seeds x {forward, reverse}: 7 s;
40 planted configs: 7 s). The first call of a process loads the model to read the feature store
(~8 s with the transformers import); features of an 8,000-text pool are computed once
(about a minute per dataset for MiniLM-L6 plus MiniLM-L1 on an idle box, several under load)
and then read from the store.
"""

from __future__ import annotations

from w2s_utils.engine.heads.config import (
    BOW,
    HEADS_VERSION,
    LOSSES,
    HeadsConfig,
    check_heads_config,
    heads_grid,
    heads_key,
    teacher_l2_of,
)
from w2s_utils.engine.heads.pipeline import (
    heads_from_features,
    pool_dataset,
    pooled_features,
    run_heads,
)
from w2s_utils.engine.heads.reading import READING_SPLITS, gain_and_disagreement
from w2s_utils.engine.heads.result import HeadsResult, results_table
from w2s_utils.engine.heads.solvers import (
    LinearHead,
    fit_forward_head,
    fit_reverse_head,
    head_gradient,
)

__all__ = [
    "BOW",
    "HEADS_VERSION",
    "LOSSES",
    "READING_SPLITS",
    "HeadsConfig",
    "HeadsResult",
    "LinearHead",
    "check_heads_config",
    "fit_forward_head",
    "fit_reverse_head",
    "gain_and_disagreement",
    "head_gradient",
    "heads_from_features",
    "heads_grid",
    "heads_key",
    "pool_dataset",
    "pooled_features",
    "results_table",
    "run_heads",
    "teacher_l2_of",
]
