"""One dataset argument, three kinds: a registry name, a reference from ``register``, a path.

:func:`check_dataset_name` says whether an argument can name a dataset (before any work),
:func:`load_texts` loads it and :func:`dataset_identity` says what a cache key holds for it.
"""

from __future__ import annotations

import os
from typing import Any

from w2s_utils.engine.cache import content_fingerprint, notice
from w2s_utils.engine.data.compact import Logger
from w2s_utils.engine.data.formats import SUPPORTED_SUFFIXES
from w2s_utils.engine.data.hub import HUB_SPECS, load_hub
from w2s_utils.engine.data.local import (
    as_data_path,
    load_registered,
    read_dataset,
    registered_identity,
)
from w2s_utils.engine.data.records import TextDataset
from w2s_utils.engine.data.registry import (
    DATA_FORMAT,
    DATASET_NAMES,
    REFERENCE_PREFIX,
    is_reference,
)
from w2s_utils.engine.data.wheels import OFFLINE_SPECS, load_offline


def check_dataset_name(name: Any) -> None:
    """Raise ``ValueError`` unless ``name`` can name a dataset for :func:`load_texts`.

    Accepted: a registry name (:data:`DATASET_NAMES`), a reference returned by
    :func:`~w2s_utils.engine.data.local.register` (``"local:<16 hex digits>"``; whether it is in
    this cache is checked on loading), or the path (``str`` or ``os.PathLike``) of an existing file
    or folder. An empty or blank string is an error, never the current folder; an unknown name
    lists the valid ones.
    """
    if not isinstance(name, str | os.PathLike):
        raise ValueError(
            f"dataset must be a name, a reference from data.register or a path, got "
            f"{type(name).__name__} {name!r}"
        )
    if isinstance(name, str) and (name in DATASET_NAMES or is_reference(name)):
        return
    path = as_data_path(name)
    if path.exists():
        return
    if isinstance(name, str) and name.startswith(REFERENCE_PREFIX):
        raise ValueError(
            f"{name!r} is not a reference returned by data.register (local:<16 hex digits>); "
            "copy the reference it printed, or register the data again"
        )
    raise ValueError(
        f"unknown dataset {os.fspath(name)!r}; valid names are {', '.join(DATASET_NAMES)} (or a "
        "reference from data.register / `w2s data register`, or a path to a "
        f"{'/'.join(SUPPORTED_SUFFIXES)} file or a datasets.save_to_disk folder)"
    )


def dataset_identity(name: str | os.PathLike[str]) -> dict[str, Any]:
    """What a cache key holds for a dataset: its content, not where it lies.

    A registry name stands for fixed content (the pinned wheel's sha256 and member, or the hub
    path) and the extraction format; a local file or folder is named by the sha256 of its bytes
    (:func:`w2s_utils.engine.cache.content_fingerprint`), so an edit in place gives a new key and
    the same file in two folders, or under another name, gives the same one; a registered
    reference by the digest of its cleaned content (``{"registered": <16 hex>, "data_format"}``).
    """
    check_dataset_name(name)
    if isinstance(name, str) and name in OFFLINE_SPECS:
        spec = OFFLINE_SPECS[name]
        return {
            "name": name,
            "data_format": DATA_FORMAT,
            "wheel_sha256": spec.wheel.sha256,
            "member": spec.member,
        }
    if isinstance(name, str) and name in DATASET_NAMES:
        return {"name": name, "data_format": DATA_FORMAT, "hub": HUB_SPECS[name].path}
    if is_reference(name):
        return registered_identity(str(name))
    return {"local_sha256": content_fingerprint(as_data_path(name)), "data_format": DATA_FORMAT}


def load_texts(
    name: str | os.PathLike[str],
    *,
    keep_wheel: bool = False,
    log: Logger = notice,
) -> TextDataset:
    """Load a cleaned dataset by registry name (:data:`DATASET_NAMES`), reference or local path.

    Offline names download their wheel once (``keep_wheel`` keeps it in ``cache_dir("wheels")``;
    so does env ``W2S_KEEP_WHEELS=1``). Hub names need the internet or the local datasets cache and
    raise ``RuntimeError`` within seconds otherwise. A reference from
    :func:`~w2s_utils.engine.data.local.register` loads the stored cleaned dataset. A path is read
    with the default columns ``"text"`` and ``"label"`` (other columns: register it), in any
    format of :func:`~w2s_utils.engine.data.local.read_dataset`. Unknown names, empty strings and
    unusable data raise ``ValueError`` (:func:`check_dataset_name`).
    """
    check_dataset_name(name)
    if isinstance(name, str) and name in OFFLINE_SPECS:
        return load_offline(name, keep_wheel=keep_wheel, log=log)
    if isinstance(name, str) and name in DATASET_NAMES:
        return load_hub(name, log=log)
    if is_reference(name):
        return load_registered(str(name))
    return read_dataset(name)
