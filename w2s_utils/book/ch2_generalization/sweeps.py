"""Chapter 2: the inputs of the theory results (language-model, planted and random instances) and
the on-disk memo of their sweeps (:func:`cached_sweep`)."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
import torch

from w2s_utils import theory
from w2s_utils.book.ch2_generalization.common import K_VALUES
from w2s_utils.book.memo import cached_frame, draws_digest, frame_pieces
from w2s_utils.theory import instances

_LIFT = 1e-12  # probabilities that underflowed to exactly 0 are lifted to this floor
_CACHE_KIND = "book_ch2"
#: The tables of every cached_sweep call in this process, for sweep_pieces
_SWEEPS: list[pd.DataFrame] = []


def _f64(p: Any) -> torch.Tensor:
    if isinstance(p, torch.Tensor):
        return p.detach().to(dtype=torch.float64, device="cpu")
    return torch.as_tensor(np.array(p, dtype=np.float64))  # a copy: cached arrays are read-only


def positive(p: Any) -> torch.Tensor:
    """``p`` as float64, unchanged if strictly positive, else with its zeros lifted to 1e-12.

    A model's probabilities can underflow to exactly 0; every result of the chapter needs
    positive predictions, and lifting those entries changes nothing else
    (:func:`w2s_utils.theory.ensure_floor` with ``zeros_only=True``: the I-projection onto the
    floor, applied only where a zero occurs). Chapter 2, the language-model inputs.
    """
    return theory.ensure_floor(_f64(p), _LIFT, zeros_only=True)


# ------------------------------------------------------------------------------- inputs
def lm_inputs(runs: Sequence[Any]) -> list[dict[str, torch.Tensor]]:
    """Chapter 2, section 'On language models': one ``{weak, student, labels}`` per run (zeros
    lifted by :func:`positive`): the keyword arguments of the theory results, for
    :func:`w2s_utils.theory.sweep`. The hard test labels are the empirical truth, so every
    ``Err`` is a test cross-entropy and the gain is CE(F_w) - CE(F_sw)."""
    if not runs:
        raise ValueError("runs: is empty; pass the runs of chapter 1's grid (run_grid)")
    return [
        {
            "weak": positive(r.weak),
            "student": positive(r.student),
            "labels": torch.as_tensor(np.array(r.labels)),
        }
        for r in runs
    ]


def clipped_inputs(runs: Sequence[Any], gamma: float) -> list[dict[str, Any]]:
    """Chapter 2, the clipping table: :func:`lm_inputs` with both predictors clipped to the floor
    ``max(gamma, raw floor)`` (:func:`w2s_utils.theory.clip_to_floor`; a run whose raw floor is
    already above ``gamma`` keeps its predictions: clipping below the floor changes nothing),
    and that floor as ``gamma`` (the keyword of :func:`w2s_utils.theory.generalization_chain`)."""
    if not (isinstance(gamma, int | float) and 0 < gamma < 0.5):
        raise ValueError(f"gamma: must be a floor in (0, 0.5), got {gamma!r}")
    out = []
    for d in lm_inputs(runs):
        g = max(float(gamma), float(min(d["weak"].min(), d["student"].min())))
        out.append(
            {
                "weak": theory.clip_to_floor(d["weak"], g),
                "student": theory.clip_to_floor(d["student"], g),
                "labels": d["labels"],
                "gamma": g,
            }
        )
    return out


def planted_inputs(results: Sequence[Any]) -> list[dict[str, torch.Tensor]]:
    """Chapter 2, the planted task: one ``{weak, student, f_star}`` per planted run (test split;
    the exact truth ``F*`` of :func:`w2s_utils.engine.heads.run_heads` with ``truth="planted"``)."""
    out = []
    for r in results:
        if getattr(r, "f_star", None) is None:
            raise ValueError(
                "results: a run has no f_star; run the heads with truth='planted' (HeadsConfig)"
            )
        out.append(
            {"weak": positive(r.weak), "student": positive(r.student), "f_star": _f64(r.f_star)}
        )
    return out


def random_instances(n: int, *, n_inputs: int = 30) -> list[dict[str, torch.Tensor]]:
    """Chapter 2, 'A numeric check': ``n`` instances ``{weak, student, f_star}`` of
    :func:`w2s_utils.theory.instances.floored_triple` (seed ``100000 K + i``), ``K`` cycling
    through :data:`K_VALUES`, each on ``n_inputs`` equally likely inputs."""
    if not isinstance(n, int) or isinstance(n, bool) or n < 1:
        raise ValueError(f"n: must be a positive int (number of instances), got {n!r}")
    out = []
    for i in range(n):
        k = K_VALUES[i % len(K_VALUES)]
        f_star, weak, student = instances.floored_triple(100_000 * k + i, k, n_inputs=n_inputs)
        out.append({"weak": weak, "student": student, "f_star": f_star})
    return out


def no_floor_inputs(deltas: Sequence[float]) -> list[dict[str, torch.Tensor]]:
    """Chapter 2, 'Without a floor': ``{weak, student, f_star}`` of
    :func:`w2s_utils.theory.instances.no_floor_instance` at each ``delta``."""
    if not deltas:
        raise ValueError("deltas: give at least one delta in (0, 1)")
    return [dict(instances.no_floor_instance(d)._asdict()) for d in deltas]


# ------------------------------------------------------------------------------ caching
def _optional_numbers(table: pd.DataFrame) -> pd.DataFrame:
    """``table`` with every object column whose values are all numbers or ``None`` turned into
    float64 (``None`` as NaN): an optional field of a theory result that some instances leave
    unset."""
    out = table.copy()
    for col in out.columns:
        values = out[col]
        if pd.api.types.is_bool_dtype(values) or pd.api.types.is_numeric_dtype(values):
            continue
        numeric = pd.to_numeric(values, errors="coerce")
        if numeric.notna().sum() == values.notna().sum():  # numbers, None as NaN (or all None)
            out[col] = numeric.to_numpy(dtype=np.float64)
    return out


def cached_sweep(
    result_fn: Callable[..., Any], draws: Sequence[Mapping[str, Any]], *, name: str
) -> pd.DataFrame:
    """``theory.sweep(result_fn, draws, len(draws))``, memoised on disk (chapter 2, every table of
    theory results: random instances, language-model and planted runs).

    The table is kept by :func:`w2s_utils.book.memo.cached_frame` (cache folder ``"book_ch2"``),
    keyed by ``name``, the result's qualified name and the *contents* of the instances
    (:func:`w2s_utils.book.memo.draws_digest`), besides the source of the theory package that
    every entry carries, so a changed instance or a changed theorem recomputes instead of showing
    a stale check. Returns the sweep's table (one row per instance); an optional number that is
    ``None`` for some instances comes back as NaN in a float column. The call is logged for
    :func:`sweep_pieces`.
    """
    if not callable(result_fn):
        raise ValueError(f"result_fn: must be callable, got {type(result_fn).__name__}")
    if not isinstance(name, str) or not name.strip():
        raise ValueError("name: give the table a short non-empty name (part of its cache key)")
    if not draws or not all(isinstance(d, Mapping) for d in draws):
        raise ValueError("draws: pass a non-empty list of instances, each a mapping of keywords")
    key = {
        "chapter": 2,
        "name": name,
        "result": f"{result_fn.__module__}.{result_fn.__qualname__}",
        "draws": draws_digest(draws),
    }
    table = cached_frame(
        key,
        lambda: _optional_numbers(theory.sweep(result_fn, list(draws), len(draws))),
        kind=_CACHE_KIND,
    )
    _SWEEPS.append(table)
    return table


def sweep_pieces() -> list[tuple[str, float]]:
    """Chapter 2, the frame's cold time: ``(entry, seconds)`` of every :func:`cached_sweep` of
    this process that was read from the cache (its stored compute time), for
    :func:`w2s_utils.book.frame.glue_frame`."""
    return frame_pieces(*_SWEEPS)
