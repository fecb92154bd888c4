"""Grids of runs: :func:`grid_configs` and :func:`run_grid` (in this process, stacked, or on any
executor), and :func:`summarize` (means over seeds)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import pandas as pd
from tqdm.auto import tqdm

from w2s_utils import metrics
from w2s_utils._validate import check_seeds
from w2s_utils.engine import cache
from w2s_utils.engine.experiment.config import ExperimentConfig, make_config
from w2s_utils.engine.experiment.keys import check_trainer, result_key
from w2s_utils.engine.experiment.recipe import prepare_inputs, run_experiment, run_many
from w2s_utils.engine.experiment.result import ExperimentResult
from w2s_utils.engine.presets import Preset, check_distinct, get_preset

__all__ = ["SUMMARY_COLUMNS", "grid_configs", "run_grid", "run_on_executor", "summarize"]


def _as_list(x: str | Iterable[str] | None, default: Sequence[str], name: str) -> list[str]:
    if x is None:
        return list(default)
    items = [x] if isinstance(x, str) else list(x)
    if not items:
        raise ValueError(f"run_grid: {name} is empty; pass at least one, or None for the preset's")
    return list(check_distinct(items, name))


def grid_configs(
    datasets: str | Iterable[str] | None = None,
    weaks: str | Iterable[str] | None = None,
    strong: str | None = None,
    seeds: int | Iterable[int] | None = None,
    *,
    preset: str | Preset = "ci",
    **overrides: Any,
) -> list[ExperimentConfig]:
    """Every (dataset, seed, weak) config of a grid, in that order, with ``preset``'s settings
    (a name or a :class:`~w2s_utils.engine.presets.Preset` object); ``None`` takes the preset's
    chapter-1 grid (its ladder). ``seeds`` is a count (``3`` -> seeds 0, 1, 2) or a list. A
    dataset, teacher or seed given twice raises ``ValueError`` (it would run one cell twice and
    count it as two seeds). ``overrides`` go to :func:`make_config`."""
    p = get_preset(preset)
    ds_list = _as_list(datasets, p.ladder_datasets, "datasets")
    weak_list = _as_list(weaks, p.ladder_weaks, "weaks")
    seed_list = list(p.seeds) if seeds is None else list(check_seeds(seeds, "seeds"))
    return [
        make_config(d, w, strong, s, p, **overrides)
        for d in ds_list
        for s in seed_list
        for w in weak_list
    ]


def run_grid(
    datasets: str | Iterable[str] | None = None,
    weaks: str | Iterable[str] | None = None,
    strong: str | None = None,
    seeds: int | Iterable[int] | None = None,
    *,
    preset: str | Preset = "ci",
    use_cache: bool = True,
    progress: bool = True,
    executor: Any = None,
    trainer: str | None = None,
    **overrides: Any,
) -> list[ExperimentResult]:
    """Run every (dataset, seed, weak) combination; ``None`` takes the preset's chapter grid.

    ``preset`` is a registered name or a :class:`~w2s_utils.engine.presets.Preset` object (a
    changed copy, or one of your own under a new name); its own settings are used: sizes,
    training settings, modes, strong model, ladder, trainer and stack size. ``trainer``
    (default: the preset's; ``ci`` uses ``"loop"``, ``gpu`` ``"stacked"``): with ``"stacked"``
    the grid runs through :func:`run_many`, which trains the seeds and teachers of a dataset
    together, up to the preset's ``max_stack`` runs per stack.

    ``seeds`` is a count (``3`` -> seeds 0, 1, 2) or an explicit list. ``overrides`` go to
    :func:`make_config`. All configs are validated, and the hub models, datasets and splits of
    the runs not in the cache checked, before the first run; repeated datasets, teachers or
    seeds are refused. Results come back in the order (dataset, seed, weak),
    whatever ran where.

    ``executor=None`` runs the configs one after another in this process. Otherwise each config
    is one ``executor.submit(run_experiment, cfg, use_cache=..., trainer=...)`` and its
    ``.result()`` is collected: any :class:`concurrent.futures.Executor` works, and so does
    anything with that ``submit``/``result`` shape (submitit's executors, whose jobs are not
    ``Future`` objects). The only coordination between workers is the file cache
    (:mod:`w2s_utils.engine.cache`: atomic writes, verified reads), so every worker must see the
    same ``W2S_CACHE_DIR`` (a shared filesystem on a cluster). Two workers that need the same
    shared piece (a dataset and seed's strong ceiling) at the same moment both compute it and the
    last atomic write wins; to make that rare, configs are submitted weak model by weak model, so
    the first wave holds distinct (dataset, seed) pairs. Paths:

    - one machine: ``w2s_utils.engine.executors.local_pool(workers)`` (a spawn-started process
      pool that splits the CPU threads between its workers);
    - Dask (``pip install distributed``)::

          from distributed import Client           # or LocalCluster(), dask-jobqueue's
          client = Client("tcp://scheduler:8786")  # SLURMCluster(...), dask-cuda's
          run_grid(preset="gpu", executor=client.get_executor())  # LocalCUDACluster()

    - SLURM with submitit (``pip install submitit``)::

          ex = submitit.AutoExecutor(folder="logs")
          ex.update_parameters(timeout_min=60, gpus_per_node=1, slurm_partition="gpu")
          run_grid(preset="gpu", executor=ex)

    - Ray: ``ray.util.multiprocessing.Pool`` is not an executor; wrap ``ray.remote`` tasks in
      an object whose ``submit`` returns ``ref.future()`` (a ``concurrent.futures.Future``).

    Workers import :mod:`w2s_utils` themselves: install the library (and the same torch) on
    every node. The Dask path is tested (``tests/robustness/test_scale.py``, a
    ``LocalCluster``); the submitit and Ray paths use the same two calls but were not run here.
    """
    p = get_preset(preset)
    if executor is not None and not callable(getattr(executor, "submit", None)):
        raise ValueError(
            f"executor={executor!r} has no submit(); pass a concurrent.futures.Executor (e.g. "
            "w2s_utils.engine.executors.local_pool(), distributed.Client.get_executor())"
        )
    configs = grid_configs(datasets, weaks, strong, seeds, preset=p, **overrides)
    trainer = check_trainer(p.trainer if trainer is None else trainer)
    # what can fail without training fails now, before the first run trains
    prepare_inputs(
        [
            c
            for c in configs
            if not use_cache or not cache.cache_path(result_key(c, trainer), "results").exists()
        ]
    )
    if executor is None and trainer == "stacked":
        return run_many(
            configs, use_cache=use_cache, trainer=trainer, max_stack=p.max_stack, progress=False
        )
    if executor is None:
        return [
            run_experiment(cfg, use_cache=use_cache, trainer=trainer)
            for cfg in tqdm(configs, desc="w2s runs", disable=not progress, leave=False)
        ]
    return run_on_executor(executor, configs, use_cache, progress, trainer, p.max_stack)


def run_on_executor(
    executor: Any,
    configs: list[ExperimentConfig],
    use_cache: bool,
    progress: bool,
    trainer: str = "loop",
    max_stack: int = 16,
) -> list[ExperimentResult]:
    """Submit one :func:`run_experiment` per config (weak model by weak model), or with the
    stacked trainer one :func:`run_many` per dataset (a worker trains that dataset's stacks);
    collect them in the order of ``configs``. On any error every submitted task is cancelled."""
    if trainer == "stacked":
        parts: dict[str, list[int]] = {}
        for i, c in enumerate(configs):
            parts.setdefault(c.dataset, []).append(i)
        tasks = [
            (
                idx,
                (run_many, [configs[i] for i in idx]),
                {"trainer": trainer, "max_stack": max_stack},
            )
            for idx in parts.values()
        ]
    else:
        weak_rank = {w: r for r, w in enumerate(dict.fromkeys(c.weak for c in configs))}
        order = sorted(range(len(configs)), key=lambda i: (weak_rank[configs[i].weak], i))
        tasks = [([i], (run_experiment, configs[i]), {"trainer": trainer}) for i in order]
    futures: dict[int, Any] = {}
    try:
        for n, (_, (fn, arg), kw) in enumerate(tasks):
            futures[n] = executor.submit(fn, arg, use_cache=use_cache, **kw)
        results: list[ExperimentResult | None] = [None] * len(configs)
        for n in tqdm(range(len(tasks)), desc="w2s runs", disable=not progress, leave=False):
            got = futures[n].result()
            idx = tasks[n][0]
            for i, r in zip(idx, got if trainer == "stacked" else [got], strict=True):
                results[i] = r
    except BaseException:
        for f in futures.values():
            cancel = getattr(f, "cancel", None)
            if callable(cancel):
                cancel()
        raise
    return results  # type: ignore[return-value]


#: The summary numbers :func:`summarize` averages over seeds (keys of
#: :attr:`ExperimentResult.summary`).
SUMMARY_COLUMNS = (
    "acc_weak",
    "acc_student",
    "acc_ceiling",
    "acc_gap",
    "pgr",
    "pgr_loss",
    "gain",
    "eps",
    "eps_train",
    "loss_weak",
    "loss_student",
    "loss_ceiling",
)


def summarize(results: Sequence[ExperimentResult]) -> pd.DataFrame:
    """Per (dataset, weak, strong, loss, label_type): mean and Student-t interval across seeds.

    Columns ``<metric>`` (mean), ``<metric>_lo``, ``<metric>_hi`` for every name of
    :data:`SUMMARY_COLUMNS`: weak/student/ceiling accuracy, ``acc_gap`` (ceiling - weak
    accuracy), PGR (mean of the per-seed PGRs; a seed whose gap is <=
    :data:`w2s_utils.metrics.PGR_MIN_GAP` has no PGR and is left out, ``pgr_n`` counts the seeds
    used), the gain (CE(weak) - CE(student), nats, positive = the student is better), the
    misfit ``eps`` on test and ``eps_train`` on the student's training texts, and the test
    cross-entropies; plus ``n_seeds``. The interval is over seeds only (training noise); the
    chapters' intervals over seeds and test examples are :mod:`w2s_utils.analysis`'s.
    """
    if not results:
        raise ValueError("summarize: no results")
    df = pd.DataFrame([r.row() for r in results])
    keys = ["dataset", "weak", "strong", "loss", "label_type"]
    table = metrics.across_seeds(df, keys, list(SUMMARY_COLUMNS))
    return table.rename(columns={"n": "n_seeds"}).drop(
        columns=[f"{m}_n" for m in SUMMARY_COLUMNS if m != "pgr"]
    )
