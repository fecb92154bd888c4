"""Tests for w2s_utils.engine.device: the default device and its W2S_DEVICE override."""

from __future__ import annotations

import pytest
import torch

from w2s_utils.engine.device import default_device


def test_default_is_cuda_when_present(monkeypatch):
    monkeypatch.delenv("W2S_DEVICE", raising=False)
    want = "cuda" if torch.cuda.is_available() else "cpu"
    assert default_device().type == want


def test_override_to_cpu(monkeypatch):
    monkeypatch.setenv("W2S_DEVICE", "cpu")
    assert default_device() == torch.device("cpu")


@pytest.mark.parametrize(
    ("value", "match"),
    [("gpu", "not a device name"), ("meta", "only cpu and cuda"), ("cuda:7", "CUDA device")],
)
def test_bad_override_is_a_clear_error(monkeypatch, value, match):
    if value == "cuda:7" and torch.cuda.device_count() > 7:
        pytest.skip("this machine has 8 GPUs")
    monkeypatch.setenv("W2S_DEVICE", value)
    with pytest.raises(ValueError, match=match):
        default_device()
