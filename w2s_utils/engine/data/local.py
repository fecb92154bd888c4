"""Your data as you have it: :func:`read_dataset` and :func:`register`.

:func:`register` reads a file, a folder or an object once (:mod:`~w2s_utils.engine.data.formats`),
checks its texts and encodes its labels (:mod:`~w2s_utils.engine.data.labels`), cleans it
(:func:`~w2s_utils.engine.data.records.clean_records`) and stores the cleaned dataset as a compact
verified file under ``cache_dir("data")``, named by its content. It returns a reference,
``"local:<16 hex digits>"``, that :func:`~w2s_utils.engine.data.load.load_texts`,
:func:`~w2s_utils.engine.data.load.dataset_identity` and configs (``--dataset``) take like a
dataset name: configs stay plain strings and cache keys follow the content.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any

from w2s_utils.engine.cache import CacheCorruptError, cache_dir, canonical_json
from w2s_utils.engine.data.compact import read_compact, save_compact
from w2s_utils.engine.data.formats import read_object, read_path
from w2s_utils.engine.data.labels import check_text, encode_labels
from w2s_utils.engine.data.records import TextDataset, text_id
from w2s_utils.engine.data.registry import DATA_FORMAT, REFERENCE_PREFIX, is_reference


def _column(value: Any, default: str, what: str) -> str:
    if value is None:
        return default
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"{what}={value!r} must be a non-empty column name (a string)")
    return value


def as_data_path(source: str | os.PathLike[str]) -> Path:
    """``source`` as a path; an empty or blank string is an error (never the current folder)."""
    text = os.fspath(source)
    if not isinstance(text, str) or not text.strip():
        raise ValueError(
            f"the data path {text!r} is empty; give a file or folder (an empty path is never read "
            "as the current folder)"
        )
    return Path(text).expanduser()


def read_dataset(
    source: Any,
    *,
    text_column: str | None = None,
    label_column: str | None = None,
    name: str | None = None,
) -> TextDataset:
    """Read, check, encode and clean ``source`` into a :class:`TextDataset` (nothing is stored).

    ``source`` is a path (``.jsonl``, ``.csv``, ``.tsv``, ``.parquet``, or a folder written by
    ``datasets.Dataset.save_to_disk``), a ``datasets.Dataset``/``DatasetDict``, a pandas
    ``DataFrame``, or a :class:`TextDataset` (returned as it is, renamed if ``name`` is given).
    ``text_column``/``label_column`` name the columns (default ``"text"``/``"label"``). Texts must
    be strings; labels are class indices 0..K-1 (every class present) or class names, encoded in
    sorted order and recorded in ``label_names``; K >= 2 comes from the data (the rules:
    :mod:`w2s_utils.engine.data.labels`). ``name`` defaults to the file or folder name
    (``"dataframe"``, ``"dataset"``, ``"datasetdict"`` for objects). Anything that cannot work
    raises ``ValueError`` naming the row and what to do.
    """
    tc = _column(text_column, "text", "text_column")
    lc = _column(label_column, "label", "label_column")
    if tc == lc:
        raise ValueError(f"text_column and label_column are both {tc!r}; name two columns")
    if name is not None and (not isinstance(name, str) or not name.strip()):
        raise ValueError(f"name={name!r} must be a non-empty string (or None)")
    if isinstance(source, TextDataset):
        if text_column is not None or label_column is not None:
            raise ValueError(
                "a TextDataset has no columns to choose; drop text_column/label_column"
            )
        if name is None or name == source.name:
            return source
        return TextDataset(
            name, source.texts, source.labels, source.ids, source.groups, source.n_classes,
            dict(source.cleaning), source.label_names,
        )  # fmt: skip
    if isinstance(source, str | os.PathLike):
        path = as_data_path(source)
        if not path.exists():
            raise ValueError(f"{path} does not exist; give an existing data file or folder")
        table = read_path(path, tc, lc)
    else:
        table = read_object(source, tc, lc)
    texts = [check_text(v, f"{table.where(i)}: column {tc!r}") for i, v in enumerate(table.texts)]
    where = table.where
    labels, label_names, k = encode_labels(table.labels, where, lc, table.label_names, table.source)
    return TextDataset.from_records(
        name or table.name, texts, labels, n_classes=k, label_names=label_names
    )


def content_digest(ds: TextDataset) -> str:
    """sha256 (hex) of a dataset's content: its texts, labels, groups (when grouped), their order,
    ``n_classes`` and ``label_names``; not its name or its cleaning report. Each field is
    length-prefixed, so no two contents share a digest by concatenation."""
    grouped = ds.groups != ds.ids
    head = {"n_classes": ds.n_classes, "label_names": list(ds.label_names), "grouped": grouped}
    h = hashlib.sha256(canonical_json(head).encode("utf-8"))
    for t, y, g in zip(ds.texts, ds.labels.tolist(), ds.groups, strict=True):
        for part in (t, str(y), g if grouped else ""):
            b = part.encode("utf-8")
            h.update(len(b).to_bytes(8, "little"))
            h.update(b)
    return h.hexdigest()


def _stored_path(key: str) -> Path:
    return cache_dir("data") / f"registered-{key}-v{DATA_FORMAT}.npz"


def _expect(key: str) -> dict[str, Any]:
    return {"registered": key, "data_format": DATA_FORMAT}


def register(
    source: Any,
    *,
    text_column: str | None = None,
    label_column: str | None = None,
    name: str | None = None,
) -> str:
    """Read ``source`` once (:func:`read_dataset`), store it in the cache, return its reference.

    The reference is ``"local:"`` plus the first 16 hex digits of :func:`content_digest` of the
    cleaned dataset: the same content gives the same reference (and the same cache keys) wherever
    it comes from (a CSV, a Parquet file, a DataFrame), and an edit gives a new one. The cleaned
    dataset is stored as a compact verified file under ``cache_dir("data")``, so later loads
    (:func:`~w2s_utils.engine.data.load.load_texts` of the reference, also in other processes
    sharing the cache) read neither the source nor its columns again. ``name`` (display only;
    not part of the reference) defaults to the file or folder name; registering the same
    content under another name renames it. Errors: as :func:`read_dataset`.
    """
    ds = read_dataset(source, text_column=text_column, label_column=label_column, name=name)
    digest = content_digest(ds)
    key = digest[:16]
    path = _stored_path(key)
    meta = {
        **_expect(key),
        "content_sha256": digest,
        "name": ds.name,
        "n_classes": ds.n_classes,
        "label_names": list(ds.label_names),
        "cleaning": dict(ds.cleaning),
    }
    try:
        _, stored = read_compact(path, _expect(key))
        current = {k: stored.get(k) for k in meta}
    except (FileNotFoundError, CacheCorruptError, KeyError, ValueError):
        current = None
    if current != meta:
        groups = list(ds.groups) if ds.groups != ds.ids else None
        save_compact(path, meta, (list(ds.texts), ds.labels.tolist(), groups))
    return REFERENCE_PREFIX + key


def load_registered(reference: str) -> TextDataset:
    """The dataset stored by :func:`register` under ``reference`` (``"local:<16 hex>"``).

    ``ValueError`` when the reference is malformed, not in this cache, or its file is damaged or
    holds other content; each says to register the source again (same content, same reference).
    """
    if not is_reference(reference):
        raise ValueError(
            f"{reference!r} is not a reference returned by data.register (local:<16 hex digits>)"
        )
    key = reference[len(REFERENCE_PREFIX) :]
    path = _stored_path(key)
    again = (
        "register its source again with data.register(...) or `w2s data register FILE` (the "
        "same content gives the same reference)"
    )
    if not path.exists():
        raise ValueError(
            f"{reference} is not registered in this cache ({path.parent}); {again}, or set "
            "W2S_CACHE_DIR to the cache where it was registered"
        )
    try:
        (texts, labels, groups), meta = read_compact(path, _expect(key))
        ds = TextDataset(
            name=str(meta["name"]),
            texts=tuple(texts),
            labels=labels,
            ids=tuple(text_id(t) for t in texts),
            groups=tuple(groups or ()),
            n_classes=int(meta["n_classes"]),
            cleaning=dict(meta["cleaning"]),
            label_names=tuple(meta["label_names"]),
        )
        if content_digest(ds) != meta["content_sha256"]:
            raise CacheCorruptError(path, "its content does not match its reference")
    except (CacheCorruptError, KeyError, TypeError, ValueError) as err:
        raise ValueError(
            f"{reference}: its stored file {path} is unusable ({err}); {again}"
        ) from err
    return ds


def registered_identity(reference: str) -> dict[str, Any]:
    """What a cache key holds for a registered dataset: its content key and the data format."""
    if not is_reference(reference):
        raise ValueError(
            f"{reference!r} is not a reference returned by data.register (local:<16 hex digits>)"
        )
    return {"registered": reference[len(REFERENCE_PREFIX) :], "data_format": DATA_FORMAT}
