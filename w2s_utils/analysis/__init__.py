"""Run-level analysis (the layer between the engine and the book): a grid's runs pooled over
seeds into tables with intervals over seeds and the shared test set.

- :func:`stack` groups runs into cells and stacks each cell's seeds (``[n_seeds, N]`` per-example
  arrays of :func:`w2s_utils.metrics.per_example`), after checking that every run of a cell holds
  the same test ids and labels in the same order; it never re-aligns.
- Means over test examples get :func:`w2s_utils.metrics.seeds_and_test_interval`
  (:func:`paired_table`, :func:`per_run_table`, :func:`paired_differences`,
  :func:`loss_comparison`, :func:`mean_curves`, :func:`peak_table`, and for curves held as
  ``[seeds, steps, test]`` arrays :func:`step_intervals`, :func:`compare_selected`); statistics
  that are not means (binned ECE, smooth CE) get :func:`w2s_utils.metrics.seeds_and_test_statistic`
  (:func:`metric_interval`, :func:`calibration_table`, :func:`calibration_change`,
  :func:`temperature_sweep`, :func:`paired_difference`).
- Means on several splits of a run, held out or drawn by the seed, each with the interval it
  allows: :func:`split_table`; one paired difference over a whole grid, each test example
  counted once: :func:`pooled_difference`.

Sign convention: ``gain`` = CE(F_w) - CE(F_sw) (positive: the student is better), ``eps`` = E
KL(F_w||F_sw), ``eps_rev`` = E KL(F_sw||F_w), ``interaction`` = gain + eps.
"""

from __future__ import annotations

from w2s_utils.analysis.calibration import (
    CALIBRATION_METRICS,
    calibration_change,
    calibration_table,
    fitted_temperature,
    metric_interval,
    paired_difference,
    pooled_reliability,
    temperature_label,
    temperature_sweep,
)
from w2s_utils.analysis.cells import ROLES, Cell, check_same_test_examples, stack
from w2s_utils.analysis.curves import (
    compare_selected,
    crossfit_best_steps,
    mean_curves,
    peak_table,
    step_intervals,
    trajectory_groups,
    trajectory_room_checks,
)
from w2s_utils.analysis.pooling import pooled_difference
from w2s_utils.analysis.splits import split_table
from w2s_utils.analysis.tables import (
    QUANTITIES,
    loss_comparison,
    paired_differences,
    paired_table,
    per_run_table,
    put_interval,
)

__all__ = [
    "CALIBRATION_METRICS",
    "QUANTITIES",
    "ROLES",
    "Cell",
    "calibration_change",
    "calibration_table",
    "check_same_test_examples",
    "compare_selected",
    "crossfit_best_steps",
    "fitted_temperature",
    "loss_comparison",
    "mean_curves",
    "metric_interval",
    "paired_difference",
    "paired_differences",
    "paired_table",
    "peak_table",
    "per_run_table",
    "pooled_reliability",
    "pooled_difference",
    "put_interval",
    "split_table",
    "stack",
    "step_intervals",
    "temperature_label",
    "temperature_sweep",
    "trajectory_groups",
    "trajectory_room_checks",
]
