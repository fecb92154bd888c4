"""Build a fresh classifier by name: :func:`get_model`."""

from __future__ import annotations

from typing import Any

import torch

from w2s_utils._validate import check_int
from w2s_utils.engine.models.base import Classifier
from w2s_utils.engine.models.bow import BowClassifier
from w2s_utils.engine.models.hf import HFClassifier
from w2s_utils.engine.models.registry import MODELS, check_mode, check_model_name, minilm_path
from w2s_utils.engine.models.tiny import TinyTransformerClassifier

__all__ = ["get_model"]


def get_model(
    name: str,
    n_classes: int = 2,
    device: torch.device | str | None = None,
    *,
    mode: str = "full",
    trainable_layers: int = 1,
    use_disk_cache: bool = True,
    **kwargs: Any,
) -> Classifier:
    """Build a fresh classifier over ``n_classes`` classes (an int >= 2) by registered name,
    Hugging Face name or local folder.

    ``mode``/``trainable_layers`` apply to transformer models (``bow`` and ``tiny-transformer``
    always train everything). Unknown short names raise ``ValueError`` listing
    :data:`~w2s_utils.engine.models.MODEL_NAMES`; a hub name that cannot be loaded (offline, or
    the hub unreachable, and not in the local Hugging Face cache) raises ``RuntimeError`` within
    seconds.
    """
    check_model_name(name)
    check_mode(mode)
    n_classes = check_int(n_classes, "n_classes", minimum=2)
    if name == "bow":
        return BowClassifier(n_classes, **kwargs)
    if name == "tiny-transformer":
        return TinyTransformerClassifier(n_classes, device, **kwargs)
    spec = MODELS.get(name)
    return HFClassifier(
        minilm_path() if spec is not None else name,
        name=name if spec is not None else None,
        n_classes=n_classes,
        device=device,
        mode=mode,
        trainable_layers=trainable_layers,
        n_layers=spec.layers if spec is not None else None,
        pooling="mean" if spec is not None else None,
        use_disk_cache=use_disk_cache,
        **kwargs,
    )
