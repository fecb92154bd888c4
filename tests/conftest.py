"""Shared fixtures and hypothesis settings for the test suite.

Hypothesis profiles: ``ci`` (default; derandomized so that CI is reproducible, no deadline because
the 2-core CI/dev boxes are shared and noisy, a modest number of examples) and ``thorough`` (more
examples, random exploration). Select with
``HYPOTHESIS_PROFILE=thorough pytest``. Tests never change ``OPENBLAS_CORETYPE``.
"""

from __future__ import annotations

import os

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, settings

settings.register_profile(
    "ci",
    deadline=None,
    max_examples=40,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.register_profile("thorough", deadline=None, max_examples=500)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


def random_probs(
    rng: np.random.Generator, shape: tuple[int, ...], zeros: bool = False, conc: float = 1.0
) -> np.ndarray:
    """Dirichlet rows over the last axis of ``shape`` (float64); ``zeros`` plants exact zeros."""
    p = rng.dirichlet(np.full(shape[-1], conc), size=shape[:-1])
    if zeros:
        mask = rng.random(shape) < 0.3
        mask[..., 0] = False  # keep every row non-zero
        p = np.where(mask, 0.0, p)
        p = p / p.sum(axis=-1, keepdims=True)
    return p


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(12345)


@pytest.fixture
def cuda_device() -> torch.device:
    """The CUDA device; skips the test where there is none."""
    if not torch.cuda.is_available():
        pytest.skip("needs a CUDA device")
    return torch.device("cuda")


@pytest.fixture
def make_probs():
    """The :func:`random_probs` helper, for tests that build their own inputs."""
    return random_probs
