"""The book's one on-disk memo of computed tables, and the digests that key it.

A chapter computes some tables that take long to make and are cheap to keep: random-instance
checks of a theory result (thousands of instances), tables with intervals over seeds and the shared
test set (thousands of resamples of smooth calibration errors). :func:`cached_frame` keeps such a
table (or a tuple of tables) on disk through :func:`w2s_utils.engine.cache.cached_arrays` and gives
back exactly the same frames, dtypes included, on the computing call and on every later read.

An entry is keyed by four things, so that a stale table is never shown:

- the caller's ``key``: everything the table depends on besides code (the number of instances,
  the runs through :func:`runs_digest`, the instances through :func:`draws_digest`);
- the source of every function in ``depends_on`` (functions outside the library, such as a
  chapter's own task, whose change must recompute the table);
- :func:`code_digest`, the source of the packages that compute the book's tables (``metrics``,
  ``theory``, ``analysis``, ``_validate``): a changed theorem recomputes its check even when the
  library's version string does not change;
- the library's version (added by :func:`~w2s_utils.engine.cache.cached_arrays`).

:func:`frame_pieces` and :func:`heads_pieces` list what a build read from the cache, with the
seconds it took when it was computed, for :func:`w2s_utils.book.frame.glue_frame` (a warm build
still reports the cold time of its chapter).
"""

from __future__ import annotations

import dataclasses
import hashlib
import inspect
import json
import math
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from w2s_utils.engine import cache

__all__ = [
    "SCIENCE",
    "cached_frame",
    "code_digest",
    "draws_digest",
    "frame_pieces",
    "heads_pieces",
    "runs_digest",
]

#: The library's folders (and single modules) whose source computes the book's cached tables.
SCIENCE = ("metrics", "theory", "analysis", "_validate.py")
#: Bump when the stored form of :func:`cached_frame` changes (every entry is then recomputed).
_FORMAT = 4


def code_digest() -> str:
    """sha256 (64 hex digits) of the source of :data:`SCIENCE`: the packages ``metrics``,
    ``theory`` and ``analysis`` and the module ``_validate``, every ``.py`` file in a fixed order
    with its path relative to the library. Part of every key of :func:`cached_frame`."""
    root = Path(__file__).resolve().parents[1]
    files: list[Path] = []
    for name in SCIENCE:
        path = root / name
        files += [path] if path.suffix == ".py" else sorted(path.rglob("*.py"))
    h = hashlib.sha256()
    for f in files:
        h.update(f.relative_to(root).as_posix().encode())
        h.update(f.read_bytes())
    return h.hexdigest()


def _source_digest(functions: Sequence[Callable[..., Any]]) -> list[str]:
    """The first 16 hex digits of the sha256 of each function's source, in order."""
    out = []
    for fn in functions:
        if not callable(fn):
            raise ValueError(f"depends_on: {fn!r} is not a function; pass functions")
        try:
            text = inspect.getsource(fn)
        except (OSError, TypeError):
            raise ValueError(
                f"depends_on: the source of {fn!r} cannot be read; pass functions defined in "
                "Python files"
            ) from None
        out.append(hashlib.sha256(text.encode("utf-8")).hexdigest()[:16])
    return out


def runs_digest(runs: Iterable[Any]) -> str:
    """sha256 (64 hex digits) of what a table of ``runs`` is computed from, in their order: each
    run's ``config`` (a dataclass or a namespace, as canonical JSON) and its test arrays (``ids``,
    then ``labels``, ``weak``, ``student``, ``ceiling`` and ``f_star`` where the run has them,
    each with its dtype and shape). Two lists of runs get the same digest exactly when they hold
    the same configurations and the same predictions in the same order. Raises ``ValueError`` on
    no runs. For the ``key`` of :func:`cached_frame` (chapter 3, every cached table of runs)."""
    h = hashlib.sha256()
    n = 0
    for r in runs:
        n += 1
        config = r.config if dataclasses.is_dataclass(r.config) else vars(r.config)
        h.update(cache.canonical_json(config).encode())
        h.update("\x00".join(r.ids).encode())
        for name in ("labels", "weak", "student", "ceiling", "f_star"):
            a = getattr(r, name, None)
            if a is not None:
                a = np.ascontiguousarray(a)
                h.update(f"{name}{a.dtype.str}{a.shape}".encode())
                h.update(a.tobytes())
    if n == 0:
        raise ValueError("runs: is empty; pass the runs the table is computed from")
    return h.hexdigest()


def draws_digest(draws: Iterable[Mapping[str, Any]]) -> str:
    """sha256 (64 hex digits) of the instances ``draws`` (each a mapping of keyword -> array or
    tensor or number): every keyword in sorted order with its value's dtype, shape and bytes,
    instance after instance. Changing one entry of one array changes the digest. For the ``key``
    of :func:`cached_frame` (chapter 2, every table of theory results)."""
    h = hashlib.sha256()
    n = 0
    for d in draws:
        if not isinstance(d, Mapping):
            raise ValueError(f"draws: each instance must be a mapping, got {type(d).__name__}")
        n += 1
        for name in sorted(d):
            value = d[name]
            h.update(name.encode())
            if isinstance(value, torch.Tensor):
                value = value.detach().cpu().numpy()
            arr = np.ascontiguousarray(np.asarray(value))
            h.update(f"{arr.dtype}{arr.shape}".encode())
            h.update(arr.tobytes())
    if n == 0:
        raise ValueError("draws: is empty; pass the instances the table is computed from")
    return h.hexdigest()


def _pack(df: pd.DataFrame, prefix: str) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """A frame as arrays: numeric and boolean columns as they are, other columns as JSON text
    (utf-8 bytes), so that strings, mixed objects (``1.0`` beside ``"fit"``) and NaN survive; the
    metadata keeps each column's pandas dtype (``object``, ``str``, ...)."""
    arrays: dict[str, np.ndarray] = {}
    kinds: list[str] = []
    dtypes: list[str] = []
    for i, col in enumerate(df.columns):
        if not isinstance(col, str):
            raise ValueError(f"compute: column names must be strings, got {col!r}")
        s = df[col]
        if pd.api.types.is_bool_dtype(s) or pd.api.types.is_numeric_dtype(s):
            arrays[f"{prefix}c{i}"] = s.to_numpy()
            kinds.append("array")
        else:
            values = [v.item() if isinstance(v, np.generic) else v for v in s.tolist()]
            try:
                text = json.dumps(values, allow_nan=True)
            except TypeError as err:
                raise ValueError(
                    f"compute: column {col!r} holds values that are neither numbers nor JSON "
                    f"(texts, None); convert them first ({err})"
                ) from None
            arrays[f"{prefix}c{i}"] = np.frombuffer(text.encode("utf-8"), dtype=np.uint8)
            kinds.append("json")
        dtypes.append(str(s.dtype))
    return arrays, {"columns": list(df.columns), "kinds": kinds, "dtypes": dtypes}


def _unpack(arrays: Mapping[str, np.ndarray], meta: Mapping[str, Any], prefix: str) -> pd.DataFrame:
    """The frame :func:`_pack` stored under ``prefix`` (a fresh, writable copy), every JSON
    column back in its pandas dtype."""
    cols = {}
    columns = zip(meta["columns"], meta["kinds"], meta["dtypes"], strict=True)
    for i, (name, kind, dtype) in enumerate(columns):
        a = np.asarray(arrays[f"{prefix}c{i}"])
        if kind == "json":
            values = pd.Series(json.loads(a.tobytes().decode("utf-8")), dtype=object)
            cols[name] = values if dtype == "object" else values.astype(dtype)
        else:
            cols[name] = pd.Series(a.copy())
    return pd.DataFrame(cols)


def cached_frame(
    key: Mapping[str, Any],
    compute: Callable[[], pd.DataFrame | tuple[pd.DataFrame, ...]],
    *,
    depends_on: Sequence[Callable[..., Any]] = (),
    kind: str = "book_tables",
) -> Any:
    """``compute()``'s frame (or tuple of frames), memoised on disk in the cache folder ``kind``.

    The entry is keyed by ``key`` (a non-empty mapping naming everything the frames depend on
    besides code: numbers of instances and resamples, :func:`runs_digest` of the runs,
    :func:`draws_digest` of the instances), by the source of every function in ``depends_on``
    (code outside :data:`SCIENCE` whose change must recompute the table), by
    :func:`code_digest` and by the library's version
    (:func:`w2s_utils.engine.cache.cached_arrays`). ``compute`` is called only on a miss.

    A frame's index is dropped (reset it first if it carries data) and its column names must be
    strings. Numeric and boolean columns are stored as arrays with their dtype; every other
    column as JSON, so texts, ``None`` and mixed objects (``1.0`` beside ``"fit"``) come back as
    they were, in a column of the same pandas dtype (``object``, ``str``). The computing call
    returns the stored form too, so a cold and a warm build see identical frames, dtypes
    included. A tuple comes back as a tuple of the
    same length. Each frame's ``attrs`` hold ``cached`` (True when read from the cache),
    ``seconds`` (how long ``compute()`` took when the entry was made), ``entry`` (the entry's
    16-digit id) and ``kind``: :func:`frame_pieces` reads them.
    """
    if not isinstance(key, Mapping) or not key:
        raise ValueError("key: give a non-empty mapping naming what the frame depends on")
    if not callable(compute):
        raise ValueError(f"compute: must be callable, got {type(compute).__name__}")
    if not isinstance(kind, str) or not kind.strip():
        raise ValueError(f"kind: give the cache folder a non-empty name, got {kind!r}")
    full = {
        "what": "book table",
        "format": _FORMAT,
        "key": dict(key),
        "source": _source_digest(list(depends_on)),
        "code": code_digest(),
    }
    made: dict[str, float] = {}

    def run() -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        t0 = time.perf_counter()
        out = compute()
        frames = out if isinstance(out, tuple) else (out,)
        if not frames or not all(isinstance(f, pd.DataFrame) for f in frames):
            raise ValueError(
                f"compute: must return a DataFrame or a tuple of them, got {type(out).__name__}"
            )
        arrays: dict[str, np.ndarray] = {}
        metas = []
        for j, f in enumerate(frames):
            a, m = _pack(f.reset_index(drop=True), f"f{j}")
            arrays.update(a)
            metas.append(m)
        made["seconds"] = time.perf_counter() - t0
        meta = {"frames": metas, "tuple": isinstance(out, tuple), "seconds": made["seconds"]}
        return arrays, meta

    arrays, meta = cache.cached_arrays(full, kind, run)
    entry = cache.config_hash(full, 16)
    frames = []
    for j, m in enumerate(meta["frames"]):
        df = _unpack(arrays, m, f"f{j}")
        df.attrs.update(
            cached="seconds" not in made,
            seconds=float(meta.get("seconds", 0.0)),
            entry=entry,
            kind=kind,
        )
        frames.append(df)
    return tuple(frames) if meta["tuple"] else frames[0]


def frame_pieces(*frames: pd.DataFrame) -> list[tuple[str, float]]:
    """``(kind/entry, seconds)`` of the frames of :func:`cached_frame` that this build read from
    the cache, each entry once (the frames of one tuple share an entry), in first-seen order; for
    :func:`w2s_utils.book.frame.glue_frame`, so that a warm build still reports the cold time.
    Frames that were computed by this build are left out (their time is in the build's)."""
    seen: dict[str, float] = {}
    for f in frames:
        if not isinstance(f, pd.DataFrame) or "entry" not in f.attrs:
            raise ValueError("frames: pass the frames returned by cached_frame")
        if f.attrs["cached"]:
            seen[f"{f.attrs.get('kind', 'book_tables')}/{f.attrs['entry']}"] = float(
                f.attrs["seconds"]
            )
    return list(seen.items())


def heads_pieces(results: Iterable[Any]) -> list[tuple[str, float]]:
    """``(heads/<config hash>, seconds)`` of the linear-head runs
    (:class:`w2s_utils.engine.heads.HeadsResult`) that were read from the cache and stored their
    compute seconds, for :func:`w2s_utils.book.frame.glue_frame` (chapters 2 and 3, last cell)."""
    return [
        (f"heads/{cache.config_hash(repr(r.config), 16)}", float(r.seconds))
        for r in results
        if r.cached and math.isfinite(float(r.seconds))
    ]
