"""The weak-to-strong pipeline with a verified result cache.

One run (:func:`run_experiment`) for an :class:`ExperimentConfig` (:mod:`.config`), on a dataset
of any number of classes K (taken from the data):

1. the **weak model** trains on the gold labels of ``weak_train`` (its accuracy is the weak
   ceiling) and labels ``w2s_train``, ``val`` and ``test``;
2. the **strong ceiling** trains on the gold labels of the *same* ``w2s_train`` texts;
3. the **student** (the strong model) trains on the weak labels of ``w2s_train`` (soft or hard),
   with early stopping, if enabled, on the weak-labelled ``val`` split only;
4. all three predict the seed-independent ``test`` split; the summary
   (:func:`w2s_utils.metrics.summarize_predictions`) gives accuracy, test cross-entropy, the gain
   (positive = the student beats its teacher), the misfits, ECE, smooth CE and PGR.

Where each part lives: the recipe and its shared pieces, :func:`piece_predictions` (a
teacher's or a ceiling's predictions under the preset's trainer; :mod:`.recipe`); cache keys
(:mod:`.keys`); the job scheduler that trains cache misses one at a time or stacked
(:mod:`.scheduler`); the result type and the predictions file ``w2s check`` reads
(:mod:`.result`); grids and their summary (:mod:`.grid`); ``w2s run`` (:mod:`.cli`).

Caching: the weak model's predictions (keyed by dataset, weak model, sizes, seed, settings), the
strong ceiling's predictions (keyed without the weak model, so every weak model of a (dataset,
seed) shares one ceiling) and the whole result are stored with
:func:`~w2s_utils.engine.cache.cached_arrays` (atomic writes, verified reloads, corrupt entries
reported and recomputed). Frozen trunk states are cached per text by
:mod:`w2s_utils.engine.features` and shared across seeds and chapters.

Trainers: :func:`run_many` (and :func:`run_grid`, which builds the grid's configs) runs many
configs in three phases -- weak models, ceilings, students -- and trains each phase's cache
misses one at a time (``trainer="loop"``, the reference) or stacked (``trainer="stacked"``: up
to ``max_stack`` runs of one architecture, equal settings up to the seed, in one
:func:`w2s_utils.engine.batched.train_stacked` program). The preset picks the default (``ci``
loops, ``gpu`` stacks); stacked entries have keys of their own. Every function that takes
``preset=`` takes a :class:`~w2s_utils.engine.presets.Preset` object too and uses its own
settings (:mod:`w2s_utils.engine.presets`).
"""

from __future__ import annotations

from w2s_utils.engine.experiment.cli import add_run_parser, parse_count, parse_sizes, prepare_preset
from w2s_utils.engine.experiment.config import ExperimentConfig, make_config, validate_config
from w2s_utils.engine.experiment.grid import (
    SUMMARY_COLUMNS,
    grid_configs,
    run_grid,
    run_on_executor,
    summarize,
)
from w2s_utils.engine.experiment.keys import (
    ENGINE_VERSION,
    PIECES,
    check_trainer,
    engine_key,
    model_spec,
    piece_key,
    piece_model,
    result_key,
    settings_key,
    stacks,
)
from w2s_utils.engine.experiment.recipe import (
    RunInputs,
    compute_results,
    piece_job,
    piece_predictions,
    prepare_inputs,
    run_experiment,
    run_inputs,
    run_many,
    student_job,
    temper,
)
from w2s_utils.engine.experiment.result import (
    PREDICTION_ARRAYS,
    ROLES,
    SUMMARY_FLOOR,
    ExperimentResult,
    history_arrays,
    history_frame,
    result_from_arrays,
    save_predictions,
    summarize_run,
)
from w2s_utils.engine.experiment.scheduler import Job, build_model, run_jobs, train_jobs
from w2s_utils.engine.presets import LABEL_TYPES, TRAINERS

__all__ = [
    "ENGINE_VERSION",
    "LABEL_TYPES",
    "PIECES",
    "PREDICTION_ARRAYS",
    "ROLES",
    "SUMMARY_COLUMNS",
    "SUMMARY_FLOOR",
    "TRAINERS",
    "ExperimentConfig",
    "ExperimentResult",
    "Job",
    "RunInputs",
    "add_run_parser",
    "build_model",
    "check_trainer",
    "compute_results",
    "engine_key",
    "grid_configs",
    "history_arrays",
    "history_frame",
    "make_config",
    "model_spec",
    "parse_count",
    "parse_sizes",
    "piece_job",
    "piece_key",
    "piece_model",
    "piece_predictions",
    "prepare_inputs",
    "prepare_preset",
    "result_from_arrays",
    "result_key",
    "run_experiment",
    "run_grid",
    "run_inputs",
    "run_jobs",
    "run_many",
    "run_on_executor",
    "save_predictions",
    "settings_key",
    "stacks",
    "student_job",
    "summarize",
    "summarize_run",
    "temper",
    "train_jobs",
    "validate_config",
]
