"""Run-level analysis (the layer between the engine and the book): a grid's runs pooled over
seeds into tables with intervals over seeds and the shared test set.

- :func:`stack` groups runs into cells and stacks each cell's seeds (``[n_seeds, N]`` per-example
  arrays of :func:`w2s_utils.metrics.per_example`), after checking that every run of a cell holds
  the same test ids and labels in the same order; it never re-aligns.
- Means over test examples get :func:`w2s_utils.metrics.seeds_and_test_interval`
  (:func:`paired_table`, :func:`per_run_table`, :func:`paired_differences`,
  :func:`loss_comparison`, :func:`mean_curves`, :func:`peak_table`); statistics that are not
  means (binned ECE, smooth CE) get :func:`w2s_utils.metrics.seeds_and_test_statistic`
  (:func:`metric_interval`, :func:`calibration_table`, :func:`calibration_change`,
  :func:`temperature_sweep`, :func:`paired_difference`).

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
from w2s_utils.analysis.curves import mean_curves, peak_table, trajectory_groups
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
    "put_interval",
    "stack",
    "temperature_label",
    "temperature_sweep",
    "trajectory_groups",
]
