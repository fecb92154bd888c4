"""Chapter 6 (the KL extension): its tables, figures and glued findings.

Presentation only. The science is computed in the chapter's visible cells: the random-instance
checks and the counterexample search by :func:`w2s_utils.theory.sweep` over
:func:`w2s_utils.theory.reverse_kl_mixture_check`, :func:`w2s_utils.theory.forward_kl_linear_check`
and :func:`w2s_utils.theory.non_guarantee_trial`; the planted mixture task by
:func:`w2s_utils.engine.planted_mixture.planted_mixture_task`; the linear-head study and the
Bernoulli reading by :func:`w2s_utils.engine.heads.run_heads`, with intervals from
:func:`w2s_utils.analysis.paired_differences` and :func:`w2s_utils.analysis.split_table`; the
fine-tuned students by :func:`w2s_utils.engine.experiment.run_grid` and
:func:`w2s_utils.analysis.loss_comparison`. Every function here turns those results into what the
chapter shows: a presented table (:func:`w2s_utils.book.tables.present_table`), a figure, or a
dictionary for :func:`w2s_utils.book.glue.glue_all`.

Sign convention (the notation page's): ``gain`` = Err(F_w) - Err(F_sw) in nats (positive: the
student is better); ``eps`` = E KL(F_w || F_sw) (misfit, weak→student), ``eps_rev`` =
E KL(F_sw || F_w) (misfit, student→weak); a student's *disagreement* is the misfit in the
direction of its own loss.

The package's modules: :mod:`w2s_utils.book.ch6_kl.checks`, :mod:`w2s_utils.book.ch6_kl.common`,
:mod:`w2s_utils.book.ch6_kl.lm`, :mod:`w2s_utils.book.ch6_kl.planted`,
:mod:`w2s_utils.book.ch6_kl.study`."""

from __future__ import annotations

from w2s_utils.book.ch6_kl.checks import (
    CONSTRUCTIONS,
    bound_figure,
    cached_table,
    checks_glue,
    counterexample_table,
    failure_rates,
    mixture_figure,
    rates_figure,
    rates_glue,
    rates_table,
    second_order_glue,
    second_order_table,
    trial_jobs,
)
from w2s_utils.book.ch6_kl.lm import lm_figure, lm_glue, lm_table
from w2s_utils.book.ch6_kl.planted import (
    gaussian_bridge,
    planted_figure,
    planted_glue,
    planted_summary,
    planted_table,
)
from w2s_utils.book.ch6_kl.study import (
    datasets_table,
    difference_figure,
    difference_table,
    guarantee_figure,
    guarantee_glue,
    guarantee_table,
    headline_glue,
    reading_glue,
    reading_table,
    study_glue,
)

__all__ = [
    "CONSTRUCTIONS",
    "bound_figure",
    "cached_table",
    "checks_glue",
    "counterexample_table",
    "datasets_table",
    "difference_figure",
    "difference_table",
    "failure_rates",
    "gaussian_bridge",
    "guarantee_figure",
    "guarantee_glue",
    "guarantee_table",
    "headline_glue",
    "lm_figure",
    "lm_glue",
    "lm_table",
    "mixture_figure",
    "planted_figure",
    "planted_glue",
    "planted_summary",
    "planted_table",
    "rates_figure",
    "rates_glue",
    "rates_table",
    "reading_glue",
    "reading_table",
    "second_order_glue",
    "second_order_table",
    "study_glue",
    "trial_jobs",
]
