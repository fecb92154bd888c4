"""Chapter 4 (over-optimization and over-fitting to weak labels): presentation only.

Figures, presented tables and glue dictionaries of ``notebooks/04_overoptimization.ipynb``. The
numbers come in computed: the over-fitting model's curves from
:func:`w2s_utils.engine.overfitting.overfitting_curves`, intervals over seeds and test examples
from :mod:`w2s_utils.analysis` (:func:`~w2s_utils.analysis.step_intervals`,
:func:`~w2s_utils.analysis.compare_selected`, :func:`~w2s_utils.analysis.mean_curves`,
:func:`~w2s_utils.analysis.peak_table`, :func:`~w2s_utils.analysis.trajectory_room_checks`), the
language-model runs from :mod:`w2s_utils.engine.trajectories`. The one thing assembled here is
which student each selection rule returns on a language-model run (:func:`selected_points`), from
the engine's rules and :func:`w2s_utils.analysis.crossfit_best_steps`.

The package's modules: :mod:`w2s_utils.book.ch4_overoptimization.common`,
:mod:`w2s_utils.book.ch4_overoptimization.demo`, :mod:`w2s_utils.book.ch4_overoptimization.lm`."""

from __future__ import annotations

from w2s_utils.book.ch4_overoptimization.demo import (
    demo_glue,
    path_check_glue,
    plot_demo_remedies,
    plot_overfitting,
    plot_sweeps,
    present_demo_remedies,
    present_room_example,
    present_sweep,
    remedy_glue,
    room_check_glue,
    room_example_glue,
    sweep_frame,
    sweep_glue,
)
from w2s_utils.book.ch4_overoptimization.lm import (
    HINDSIGHT,
    LAST,
    ORACLE,
    cached_pieces,
    curve_frame,
    exercise_glue,
    lm_glue,
    lm_setting_glue,
    plot_balance,
    plot_curves,
    plot_remedies,
    present_lm_remedies,
    present_peaks,
    remedy_differences,
    remedy_table,
    selected_points,
)

__all__ = [
    "HINDSIGHT",
    "LAST",
    "ORACLE",
    "cached_pieces",
    "curve_frame",
    "demo_glue",
    "exercise_glue",
    "lm_glue",
    "lm_setting_glue",
    "path_check_glue",
    "plot_balance",
    "plot_curves",
    "plot_demo_remedies",
    "plot_overfitting",
    "plot_remedies",
    "plot_sweeps",
    "present_demo_remedies",
    "present_lm_remedies",
    "present_peaks",
    "present_room_example",
    "present_sweep",
    "remedy_differences",
    "remedy_glue",
    "remedy_table",
    "room_check_glue",
    "room_example_glue",
    "selected_points",
    "sweep_frame",
    "sweep_glue",
]
