"""Executors for :func:`w2s_utils.engine.experiment.run_grid`: a local process pool.

``run_grid(..., executor=ex)`` takes any :class:`concurrent.futures.Executor` (and anything with
the same ``submit``/``result`` shape); the file cache is the only coordination between workers.
This module only adds the local default: :func:`local_pool`, a process pool started with
``spawn`` (safe after torch or CUDA has been initialised in the parent, unlike ``fork``) whose
workers split the CPU threads between them instead of each using all cores. For a cluster use
the cluster's own executor (Dask's ``Client.get_executor()``, submitit's ``AutoExecutor``): see
the :func:`~w2s_utils.engine.experiment.run_grid` docstring.
"""

from __future__ import annotations

import multiprocessing
import os
from concurrent.futures import ProcessPoolExecutor

__all__ = ["local_pool", "set_worker_threads"]


def set_worker_threads(threads: int) -> None:
    """Limit torch's intra-op threads of this process to ``threads`` (a pool initializer)."""
    import torch

    if threads >= 1:
        torch.set_num_threads(int(threads))


def local_pool(workers: int | None = None, threads: int | None = None) -> ProcessPoolExecutor:
    """A spawn-started :class:`~concurrent.futures.ProcessPoolExecutor` for ``run_grid``.

    ``workers`` defaults to 2 (on one GPU, a few processes share it; on CPU more workers than
    cores only adds contention); ``threads`` (torch threads per worker) defaults to the cores
    divided among the workers, at least 1. Use it as a context manager so the workers exit::

        with local_pool(2) as ex:
            results = run_grid(preset="ci", executor=ex)
    """
    cores = os.cpu_count() or 1
    workers = 2 if workers is None else int(workers)
    if workers < 1:
        raise ValueError(f"local_pool: workers={workers} must be at least 1")
    threads = max(1, cores // workers) if threads is None else int(threads)
    if threads < 1:
        raise ValueError(f"local_pool: threads={threads} must be at least 1")
    return ProcessPoolExecutor(
        max_workers=workers,
        mp_context=multiprocessing.get_context("spawn"),
        initializer=set_worker_threads,
        initargs=(threads,),
    )
