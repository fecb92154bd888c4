"""Dataset names, the data format version, references to registered data and on/off switches."""

from __future__ import annotations

import os
import re

#: Bump when the extraction/preprocessing of the compact data files changes.
DATA_FORMAT = 1

OFFLINE_DATASETS = ("sarcasm", "rotten_tomatoes", "quartz")
HUB_DATASETS = ("sciq", "amazon_polarity", "boolq", "cosmos_qa", "hh_rlhf", "cai_harmless")
DATASET_NAMES = OFFLINE_DATASETS + HUB_DATASETS

#: A reference returned by :func:`~w2s_utils.engine.data.local.register`: this prefix and the
#: first 16 hex digits of the sha256 of the cleaned content.
REFERENCE_PREFIX = "local:"
_REFERENCE = re.compile(r"local:[0-9a-f]{16}\Z")


def is_reference(name: object) -> bool:
    """True when ``name`` is a string of the form ``"local:<16 hex digits>"``."""
    return isinstance(name, str) and bool(_REFERENCE.match(name))


def env_flag(var: str) -> bool:
    """An on/off environment variable; a value that is neither raises ``ValueError`` naming it."""
    value = os.environ.get(var, "").strip().lower()
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("", "0", "false", "no", "off"):
        return False
    raise ValueError(
        f"{var}={os.environ[var]!r}: not an on/off value; set it to 1 (on) or 0 (off), or unset it"
    )


def hub_offline() -> bool:
    """Whether the Hugging Face hub must not be asked (``HF_HUB_OFFLINE`` set true)."""
    return env_flag("HF_HUB_OFFLINE")
