"""Compact verified data files: the records of one dataset as packed utf-8 plus a manifest.

A compact file is written with :func:`w2s_utils.engine.cache.save_arrays` (sha256 of every array
in the manifest), so a damaged file is detected on reading, never used.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from w2s_utils.engine.cache import (
    CacheCorruptError,
    load_arrays,
    notice,
    pack_texts,
    save_arrays,
    unpack_texts,
)

#: ``(texts, labels, groups or None)`` of one dataset, before cleaning or after it.
Records = tuple[list[str], list[int], list[str] | None]
#: Where notices go (``None``: nowhere).
Logger = Callable[[str], None] | None


def save_compact(path: Path, meta: dict[str, Any], records: Records) -> None:
    """Atomically write ``records`` with ``meta`` (plus ``n_raw``, the number of records)."""
    texts, labels, groups = records
    blob, offsets = pack_texts(texts)
    arrays = {"text_blob": blob, "text_offsets": offsets, "labels": np.asarray(labels, np.int64)}
    if groups is not None:
        gblob, goffsets = pack_texts(groups)
        arrays.update(group_blob=gblob, group_offsets=goffsets)
    save_arrays(path, arrays, {**meta, "n_raw": len(texts)})


def read_compact(path: Path, meta: dict[str, Any]) -> tuple[Records, dict[str, Any]]:
    """Records and the stored meta of a verified compact file whose meta holds ``meta``.

    Raises ``FileNotFoundError`` when absent and :class:`~w2s_utils.engine.cache.CacheCorruptError`
    (or ``KeyError``/``ValueError``) when damaged or written for other content.
    """
    arrays, stored = load_arrays(path, expect_meta=meta)
    texts = unpack_texts(arrays["text_blob"], arrays["text_offsets"])
    groups = (
        unpack_texts(arrays["group_blob"], arrays["group_offsets"])
        if "group_blob" in arrays
        else None
    )
    labels = arrays["labels"].tolist()
    if len(labels) != len(texts) or (groups is not None and len(groups) != len(texts)):
        raise CacheCorruptError(path, "labels, groups and texts differ in length")
    return (texts, labels, groups), stored


def load_compact(path: Path, meta: dict[str, Any], log: Logger = notice) -> Records | None:
    """Records from a verified compact file; None when absent or unusable (then rebuilt)."""
    if not path.exists():
        return None
    try:
        return read_compact(path, meta)[0]
    except (CacheCorruptError, KeyError, ValueError) as e:
        if log:
            log(f"[w2s_utils.engine.data] {path} is unusable ({e}); rebuilding it")
        return None
