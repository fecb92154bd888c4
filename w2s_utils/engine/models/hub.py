"""Loading Hugging Face tokenizers and backbones: from a local folder, the local Hugging Face
cache, or the hub, with offline-ness decided before any network call.

A name that is neither a folder nor in the local cache is looked up on the hub only when the hub
is switched on (``HF_HUB_OFFLINE`` unset) and answers a connection within :data:`HUB_PROBE_S`
seconds (:func:`w2s_utils.engine.data.hub_reachable`); otherwise loading fails at once with one
whole message saying why and what to do, instead of after the hub client's retries (52 s for
``gpt2`` before). :func:`check_loadable` makes the same decision without loading anything, so a
run can refuse a model before it trains anything.
"""

from __future__ import annotations

import copy
import pickle
from pathlib import Path
from typing import Any

from torch import nn

from w2s_utils.engine import data
from w2s_utils.engine.models.dropout import use_fast_dropout
from w2s_utils.engine.models.registry import MODEL_NAMES

__all__ = [
    "HUB_PROBE_S",
    "check_loadable",
    "from_pretrained",
    "hub_error",
    "hub_unavailable_reason",
    "in_local_hf_cache",
    "load_backbone",
    "load_tokenizer",
]

#: Seconds the hub endpoint gets to accept a connection before a name counts as unreachable.
HUB_PROBE_S = 3.0
_TOKENIZER_CACHE: dict[str, Any] = {}
_MODEL_CACHE: dict[str, nn.Module] = {}


def hub_error(source: str, reason: str) -> RuntimeError:
    """The one message for a model name that cannot be loaded (``reason`` says why)."""
    return RuntimeError(
        f"model {source!r} could not be loaded: it is not a registered name "
        f"({', '.join(MODEL_NAMES)}) nor a local folder, and {reason}. A Hugging Face name "
        "needs the internet (Hugging Face hub) or a copy in the local Hugging Face cache; "
        "download it where the hub is reachable (e.g. AutoModel.from_pretrained(name)"
        ".save_pretrained(folder), and the tokenizer likewise) and pass the folder"
    )


def in_local_hf_cache(source: str) -> bool:
    """Whether ``source``'s ``config.json`` is in the local Hugging Face cache (no network)."""
    from huggingface_hub import try_to_load_from_cache

    try:
        return isinstance(try_to_load_from_cache(source, "config.json"), str)
    except ValueError:  # not a valid repo id (HFValidationError)
        return False


def hub_unavailable_reason() -> str | None:
    """Why the hub cannot be asked now (switched off, or no answer within :data:`HUB_PROBE_S`
    seconds), or ``None`` when it can."""
    if data.hub_offline():
        return "the hub is switched off (HF_HUB_OFFLINE=1) and it is not in the local cache"
    if not data.hub_reachable(HUB_PROBE_S):
        return (
            f"the Hugging Face hub cannot be reached (no connection within {HUB_PROBE_S:g} s) "
            "and it is not in the local cache"
        )
    return None


def check_loadable(source: str) -> None:
    """Raise ``RuntimeError`` (in seconds) when the model ``source`` cannot be loaded here: not a
    registered name, not a folder, not in the local Hugging Face cache, and the hub switched off
    or unreachable. Loads nothing."""
    if source in MODEL_NAMES or Path(source).is_dir() or in_local_hf_cache(source):
        return
    reason = hub_unavailable_reason()
    if reason is not None:
        raise hub_error(source, reason)


def from_pretrained(cls: Any, source: str) -> Any:
    """``cls.from_pretrained`` from a folder, else the local Hugging Face cache, else the hub (only
    when :func:`hub_unavailable_reason` says it can be asked; otherwise ``RuntimeError`` at once).

    A folder holding a pickled checkpoint that ``torch.load(weights_only=True)`` refuses raises
    ``ValueError`` naming the folder (nothing in it is executed)."""
    if Path(source).is_dir():
        try:
            return cls.from_pretrained(source)
        except pickle.UnpicklingError as err:  # torch.load(weights_only=True) refused it
            raise ValueError(
                f"model folder {source}: holds a pickled checkpoint that cannot be loaded safely "
                "(nothing in it was executed); save the model with save_pretrained(..., "
                "safe_serialization=True) so that the folder holds model.safetensors"
            ) from err
    try:
        return cls.from_pretrained(source, local_files_only=True)
    except OSError:
        reason = hub_unavailable_reason()
        if reason is not None:
            raise hub_error(source, reason) from None
    return cls.from_pretrained(source)


def load_tokenizer(source: str):
    """The tokenizer of ``source`` (memoised per process), right-padded, with ``pad = eos``
    where it has no pad token."""
    if source not in _TOKENIZER_CACHE:
        from transformers import AutoTokenizer

        tok = from_pretrained(AutoTokenizer, source)
        if tok.pad_token is None:
            if tok.eos_token is None:
                raise RuntimeError(f"tokenizer of {source!r} has neither a pad nor an eos token")
            tok.pad_token = tok.eos_token
        tok.padding_side = "right"
        _TOKENIZER_CACHE[source] = tok
    return _TOKENIZER_CACHE[source]


def load_backbone(source: str) -> nn.Module:
    """AutoModel for ``source`` (a pristine copy; the first load is memoised in this process).

    Its ``nn.Dropout`` modules become :class:`~w2s_utils.engine.models.dropout.FastDropout`
    (attention-probability dropout inside ``scaled_dot_product_attention`` is unchanged).
    """
    if source not in _MODEL_CACHE:
        from transformers import AutoModel
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()
        _MODEL_CACHE[source] = from_pretrained(AutoModel, source).eval()
    return use_fast_dropout(copy.deepcopy(_MODEL_CACHE[source]))
