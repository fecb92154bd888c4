"""Where tensors live: one home for device choice."""

from __future__ import annotations

import torch


def default_device() -> torch.device:
    """CUDA when present, CPU otherwise."""
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")
