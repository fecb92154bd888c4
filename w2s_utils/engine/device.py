"""Where tensors live: one home for device choice."""

from __future__ import annotations

import os

import torch

DEVICE_ENV = "W2S_DEVICE"


def default_device() -> torch.device:
    """CUDA when present, CPU otherwise; the environment variable ``W2S_DEVICE`` overrides it.

    ``W2S_DEVICE=cpu`` keeps a GPU machine's runs on the CPU (e.g. to reproduce CPU numbers);
    ``W2S_DEVICE=cuda:1`` picks a GPU.
    """
    name = os.environ.get(DEVICE_ENV, "").strip()
    if not name:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(name)
    except RuntimeError as err:
        raise ValueError(
            f"{DEVICE_ENV}={name!r} is not a device name; use cpu, cuda or cuda:N"
        ) from err
    if dev.type not in ("cpu", "cuda"):
        raise ValueError(f"{DEVICE_ENV}={name!r}: only cpu and cuda devices are supported")
    if dev.type == "cuda":
        n = torch.cuda.device_count()
        if n == 0 or (dev.index or 0) >= n:
            raise ValueError(
                f"{DEVICE_ENV}={name!r} but this machine has {n} CUDA device(s); "
                f"unset {DEVICE_ENV} or set it to cpu"
            )
    return dev
