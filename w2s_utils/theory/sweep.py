"""One home for checking a result on many random instances: :func:`sweep`.

A property of a theorem is checked by drawing instances, applying the result function to each,
and tabulating what it reports (``holds``, ``slack``, ``lhs``, ``rhs`` and the quantities used).
Every chapter's random-instance check is one call of :func:`sweep`.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import fields, is_dataclass
from typing import Any

import numpy as np
import pandas as pd
import torch

from w2s_utils._validate import check_int

__all__ = ["sweep"]


@contextlib.contextmanager
def _threads(n: int | None) -> Iterator[None]:
    """Torch limited to ``n`` threads inside (``None``: unchanged); thousands of tiny tensors only
    pay the threads' overhead."""
    if n is None:
        yield
        return
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _scalar(v: Any) -> bool:
    return v is None or isinstance(v, bool | int | float | str | np.generic)


def _row(out: Any) -> dict[str, Any]:
    """The scalar fields of one result: ``as_dict()`` of a theory result, a mapping, or the
    fields of any dataclass (tensors, arrays and other non-scalars are left out)."""
    if hasattr(out, "as_dict"):
        d = out.as_dict()
    elif isinstance(out, Mapping):
        d = dict(out)
    elif is_dataclass(out) and not isinstance(out, type):
        d = {f.name: getattr(out, f.name) for f in fields(out)}
    else:
        raise ValueError(
            f"result_fn: returned {type(out).__name__}; return a theory result (with as_dict()), "
            "a dict of scalars or a dataclass"
        )
    return {k: (v.item() if isinstance(v, np.generic) else v) for k, v in d.items() if _scalar(v)}


def sweep(
    result_fn: Callable[..., Any],
    draw: Callable[[np.random.Generator], Any] | Iterable[Any],
    n: int,
    *,
    seed: int = 0,
    threads: int | None = 1,
) -> pd.DataFrame:
    """Apply ``result_fn`` to ``n`` random instances and tabulate the results, one row each.

    ``draw`` is either a function of a numpy ``Generator`` (instance ``i`` is drawn with
    ``numpy.random.default_rng([seed, i])``: its own stream, so instance ``i`` does not depend on
    ``n`` or on the other instances) or an iterable of instances (the first ``n`` are used; the
    iterable must yield at least ``n``). An instance that is a tuple is passed as positional
    arguments, a mapping as keyword arguments, anything else as the one argument.
    ``result_fn`` returns a theory result (its ``as_dict()``: ``result``, ``relation``, ``lhs``,
    ``rhs``, ``slack``, ``holds`` and the quantities used), a dict or a dataclass; its scalar
    fields become the row (tensors and arrays are dropped). The frame has one row per instance,
    a first column ``instance`` (``0 .. n - 1``) and the union of the rows' fields as columns
    (missing values as NaN/None). ``threads``: torch threads while sweeping (default 1, restored
    afterwards; ``None`` leaves them as they are).
    """
    n = check_int(n, "n", minimum=1)
    seed = check_int(seed, "seed")
    if threads is not None:
        threads = check_int(threads, "threads", minimum=1)
    if not callable(result_fn):
        raise ValueError(f"result_fn: must be callable, got {type(result_fn).__name__}")
    if callable(draw):
        instances: Iterable[Any] = (draw(np.random.default_rng([seed, i])) for i in range(n))
    elif isinstance(draw, Iterable):
        instances = draw
    else:
        raise ValueError(
            f"draw: must be a function of a numpy Generator or an iterable of instances, got "
            f"{type(draw).__name__}"
        )
    rows = []
    with _threads(threads):
        for i, inst in enumerate(instances):
            if i >= n:
                break
            if isinstance(inst, tuple):
                out = result_fn(*inst)
            elif isinstance(inst, Mapping):
                out = result_fn(**inst)
            else:
                out = result_fn(inst)
            rows.append({"instance": i, **_row(out)})
    if len(rows) < n:
        raise ValueError(f"draw: yielded {len(rows)} instances, fewer than n = {n}")
    return pd.DataFrame(rows)
