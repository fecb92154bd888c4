"""Shared fixtures and hypothesis settings for the test suite.

The one sandbox: ``sandbox`` gives a test a private, empty cache folder (``W2S_CACHE_DIR``), the
CPU device and an empty in-memory feature store, so that nothing it runs reads or writes the
user's cache; ``text_sandbox`` adds the synthetic dataset of ``tests/_synthetic.py`` in place of
every named dataset. A test sets ``W2S_CACHE_DIR`` itself only to test how the variable is read
or to compare several caches (tests/robustness/test_scale.py).

Hypothesis profiles: ``ci`` (default; derandomized so that CI is reproducible, no deadline because
the 2-core CI/dev boxes are shared and noisy, a modest number of examples) and ``thorough`` (more
examples, random exploration) and ``fast`` (10 examples; what ``make test-fast`` uses). Select
with ``HYPOTHESIS_PROFILE=thorough pytest``. Tests never change ``OPENBLAS_CORETYPE``.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, settings

from tests._synthetic import synthetic_dataset
from w2s_utils.engine import data
from w2s_utils.engine.features import TextFeatureStore

settings.register_profile(
    "ci",
    deadline=None,
    max_examples=40,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.register_profile("thorough", deadline=None, max_examples=500)
settings.register_profile(
    "fast",  # make test-fast: the same properties on fewer examples (make test runs "ci")
    deadline=None,
    max_examples=10,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow],
)
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


@pytest.fixture
def sandbox(tmp_path, monkeypatch) -> Path:
    """A private cache folder (``tmp_path / "cache"``, not yet created) as ``W2S_CACHE_DIR``, the
    CPU device (``W2S_DEVICE=cpu``: exact reruns) and an empty in-memory feature store; returns
    the cache folder."""
    root = tmp_path / "cache"
    monkeypatch.setenv("W2S_CACHE_DIR", str(root))
    monkeypatch.setenv("W2S_DEVICE", "cpu")
    TextFeatureStore.clear_memory()
    return root


@pytest.fixture
def text_sandbox(sandbox, monkeypatch) -> Path:
    """:func:`sandbox` with :func:`tests._synthetic.synthetic_dataset` in place of
    ``data.load_texts`` (whatever name is asked for); returns the cache folder."""
    ds = synthetic_dataset()
    monkeypatch.setattr(data, "load_texts", lambda name, **kw: ds)
    return sandbox
