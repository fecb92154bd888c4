"""Chapter 2 (two-sided generalization bounds): its inputs, tables, figures and glued findings.

Presentation only. The science is computed in the chapter's visible cells: the label-free
interval by :func:`w2s_utils.theory.label_free_interval` (its ends attained by
:func:`w2s_utils.theory.worst_case_truth`), the interval that uses the teacher's error by
:func:`w2s_utils.theory.error_aware_interval` and :func:`w2s_utils.theory.error_aware_curve`, the
chain and the two-sided bound by :func:`w2s_utils.theory.generalization_chain`, the oscillation
form by :func:`w2s_utils.theory.oscillation_bound`, all of them on many instances at once by
:func:`w2s_utils.theory.sweep` (memoised on disk by :func:`cached_sweep`); the language-model runs
by :func:`w2s_utils.engine.experiment.run_grid`, the planted runs by
:func:`w2s_utils.engine.heads.run_heads`, their intervals over seeds and test examples by
:func:`w2s_utils.analysis.paired_table` and :func:`w2s_utils.metrics.seeds_and_test_interval`.
This module builds the inputs those calls take (:func:`lm_inputs`, :func:`planted_inputs`,
:func:`random_instances`) and turns their tables into what the chapter shows: presented tables
(:func:`w2s_utils.book.tables.present_table`), figures, and dictionaries for
:func:`w2s_utils.book.glue.glue_all`.

Sign convention (the notation page's): ``gain`` = Err(F_w) - Err(F_sw) in nats (positive: the
student is better), estimated on labelled test data by CE(F_w) - CE(F_sw); the student log-ratio
``r_j = log F_sw,j - log F_w,j``; the label-free interval ``E min_j r_j <= gain <= E max_j r_j``;
the error-aware interval ``L(e) <= gain <= U(e)`` for truths with ``Err(F_w) <= e``; ``eps`` =
E KL(F_w || F_sw) (misfit, weak -> student), ``eps_rev`` = E KL(F_sw || F_w).

The package's modules: :mod:`w2s_utils.book.ch2_generalization.checks`,
:mod:`w2s_utils.book.ch2_generalization.common`, :mod:`w2s_utils.book.ch2_generalization.lm`,
:mod:`w2s_utils.book.ch2_generalization.planted`,
:mod:`w2s_utils.book.ch2_generalization.sweeps`."""

from __future__ import annotations

from w2s_utils.book.ch2_generalization.checks import (
    EXAMPLE,
    check_glue,
    check_table,
    error_aware_check_glue,
    error_aware_figure,
    example_glue,
    example_table,
    exercise_glue,
    no_floor_glue,
    no_floor_table,
    share_figure,
)
from w2s_utils.book.ch2_generalization.common import CHAIN, K_VALUES
from w2s_utils.book.ch2_generalization.lm import (
    chain_figure,
    clip_table,
    correlation_glue,
    group_means,
    headline_glue,
    interval_figure,
    lm_glue,
    lm_interval_table,
    lm_table,
    per_run_table,
    statistics_glue,
    statistics_table,
)
from w2s_utils.book.ch2_generalization.planted import (
    planted_glue,
    planted_interval_figure,
    planted_summary,
    planted_table,
)
from w2s_utils.book.ch2_generalization.sweeps import (
    cached_sweep,
    clipped_inputs,
    lm_inputs,
    no_floor_inputs,
    planted_inputs,
    positive,
    random_instances,
    sweep_pieces,
)
from w2s_utils.book.memo import heads_pieces

__all__ = [
    "CHAIN",
    "EXAMPLE",
    "K_VALUES",
    "cached_sweep",
    "chain_figure",
    "check_glue",
    "check_table",
    "clip_table",
    "clipped_inputs",
    "correlation_glue",
    "error_aware_check_glue",
    "error_aware_figure",
    "example_glue",
    "example_table",
    "exercise_glue",
    "group_means",
    "headline_glue",
    "heads_pieces",
    "interval_figure",
    "lm_glue",
    "lm_inputs",
    "lm_interval_table",
    "lm_table",
    "no_floor_glue",
    "no_floor_inputs",
    "no_floor_table",
    "per_run_table",
    "planted_glue",
    "planted_inputs",
    "planted_interval_figure",
    "planted_summary",
    "planted_table",
    "positive",
    "random_instances",
    "share_figure",
    "statistics_glue",
    "statistics_table",
    "sweep_pieces",
]
