"""Chapter 3 (calibration): its figures, tables, glue dictionaries and on-disk memo of tables.

Presentation only. The science is computed in the chapter's visible cells by
:mod:`w2s_utils.theory` (the bounds, :func:`~w2s_utils.theory.sweep`, the error-aware interval),
:mod:`w2s_utils.analysis` (tables with intervals over seeds and the shared test set) and the
engine (:func:`~w2s_utils.engine.experiment.run_grid`, :func:`~w2s_utils.engine.heads.run_heads`);
this module turns their frames into what the page shows. Every function says where it is used.

:func:`cached_frame` memoises a computed table on disk (keyed by what it was computed from: the
runs' content, :func:`runs_digest`, and the source of the science packages, :func:`code_digest`)
so that a warm build of the chapter does not recompute thousands of smooth calibration errors.

The package's modules: :mod:`w2s_utils.book.ch3_calibration.checks`,
:mod:`w2s_utils.book.ch3_calibration.common`, :mod:`w2s_utils.book.ch3_calibration.lm`,
:mod:`w2s_utils.book.ch3_calibration.study`."""

from __future__ import annotations

from w2s_utils.book.ch3_calibration.checks import (
    check_figure,
    check_glue,
    escape_glue,
    escape_table,
    multiclass_glue,
)
from w2s_utils.book.ch3_calibration.lm import (
    change_figure,
    levels_glue,
    levels_table,
    reliability_figure,
    temperature_figure,
    temperature_glue,
    temperature_table,
)
from w2s_utils.book.ch3_calibration.study import (
    KNOBS,
    cell_label,
    curves_frame,
    exercise_glue,
    headline,
    planted_frame,
    planted_glue,
    planted_table,
    seconds_text,
    study_calibration_figure,
    study_cells,
    study_error_figure,
    study_glue,
    study_table,
)
from w2s_utils.book.memo import cached_frame, code_digest, frame_pieces, heads_pieces, runs_digest

__all__ = [
    "KNOBS",
    "cached_frame",
    "cell_label",
    "change_figure",
    "check_figure",
    "check_glue",
    "code_digest",
    "curves_frame",
    "escape_glue",
    "escape_table",
    "exercise_glue",
    "frame_pieces",
    "headline",
    "heads_pieces",
    "levels_glue",
    "levels_table",
    "multiclass_glue",
    "planted_frame",
    "planted_glue",
    "planted_table",
    "reliability_figure",
    "runs_digest",
    "seconds_text",
    "study_calibration_figure",
    "study_cells",
    "study_error_figure",
    "study_glue",
    "study_table",
    "temperature_figure",
    "temperature_glue",
    "temperature_table",
]
