"""Tests for w2s_utils._validate and for the validation every public metric runs."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from w2s_utils import _validate as v
from w2s_utils import metrics as m

GOOD = torch.tensor([[0.2, 0.8], [0.5, 0.5]])


@pytest.mark.parametrize(
    "bad, problem",
    [
        (torch.tensor([[1.2, -0.2], [0.5, 0.5]]), r"\[0, 1\]"),
        (torch.tensor([[0.2, 0.7], [0.5, 0.5]]), "sum to 1"),
        (torch.tensor([[math.nan, 0.5], [0.5, 0.5]]), "NaN"),
        (torch.tensor([[math.inf, 0.5], [0.5, 0.5]]), "inf"),
        (torch.zeros(0, 2), "empty"),
        (torch.tensor(0.5), "scalar"),
        (torch.ones(3, 1), "at least 2 classes"),
        (torch.tensor([0.3, 1.5]), r"\[0, 1\]"),
    ],
)
def test_check_probs_rejects(bad, problem):
    with pytest.raises(ValueError, match=problem) as err:
        v.check_probs(bad, "student_probs")
    assert str(err.value).startswith("student_probs:")


def test_check_probs_accepts_and_converts():
    out = v.check_probs(np.array([[0.25, 0.75]]), "p")
    assert isinstance(out, torch.Tensor) and out.dtype == torch.float64
    v.check_probs(torch.tensor([[0.5, 0.5 + 5e-6]]), "p")  # within float32's tolerance
    with pytest.raises(ValueError, match="sum to 1"):
        v.check_probs(torch.tensor([[0.5, 0.5 + 5e-5]]), "p")
    assert v.check_probs([0, 1, 1], "p").dtype == torch.get_default_dtype()


def test_as_two_class():
    out = v.as_two_class(torch.tensor([0.1, 0.9]))
    assert torch.allclose(out, torch.tensor([[0.9, 0.1], [0.1, 0.9]]))
    assert v.as_two_class(GOOD) is not None and v.as_two_class(GOOD).shape == (2, 2)
    with pytest.raises(ValueError, match="weak"):
        v.as_two_class(torch.tensor([0.1, 1.9]), "weak")


@pytest.mark.parametrize(
    "labels, problem",
    [
        (torch.tensor([0, 3]), "0..2"),
        (torch.tensor([-1, 0]), "0..2"),
        (torch.tensor([0.5, 1.0]), "whole numbers"),
        (torch.tensor([], dtype=torch.long), "empty"),
    ],
)
def test_check_labels_rejects(labels, problem):
    with pytest.raises(ValueError, match=problem) as err:
        v.check_labels(labels, 3, "gold_labels")
    assert "gold_labels" in str(err.value)


def test_check_labels_accepts():
    assert v.check_labels(np.array([0, 2, 1]), 3, "y").dtype == torch.long
    assert v.check_labels(torch.tensor([True, False]), 2, "y").tolist() == [1, 0]
    assert v.check_labels(torch.tensor([1.0, 0.0]), 2, "y").tolist() == [1, 0]


def test_check_same_shape_and_leading():
    v.check_same_shape((GOOD, "a"), (GOOD.clone(), "b"))
    with pytest.raises(ValueError, match="^b: shape"):
        v.check_same_shape((GOOD, "a"), (GOOD[:1], "b"))
    with pytest.raises(ValueError, match="labels"):
        v.check_leading(GOOD, torch.tensor([0, 1, 1]))


def test_check_logits():
    with pytest.raises(ValueError, match="^logits: contains NaN"):
        v.check_logits(torch.tensor([[0.0, math.nan]]))
    with pytest.raises(ValueError, match="scores"):
        v.check_logits(torch.zeros(0, 3), "scores")


def test_as_tensor_rejects_non_numeric():
    with pytest.raises(ValueError, match="^thing: cannot convert"):
        v.as_tensor(["a", "b"], "thing")
    t = torch.arange(3.0)
    assert v.as_tensor(t, "t") is t  # no copy, same device


# ---------------------------------------------------------------------- public functions validate
BAD_P = torch.tensor([[0.2, 0.9], [0.5, 0.5]])
Y = torch.tensor([0, 1])


@pytest.mark.parametrize(
    "call, name",
    [
        (lambda: m.kl(BAD_P, GOOD), "p"),
        (lambda: m.kl(GOOD, BAD_P), "q"),
        (lambda: m.kl(GOOD, GOOD[:1]), "q"),
        (lambda: m.cross_entropy(GOOD, BAD_P), "q"),
        (lambda: m.entropy(BAD_P), "p"),
        (lambda: m.tv(BAD_P, GOOD), "p"),
        (lambda: m.kl_from_logits(GOOD, torch.ones(2, 3)), "q_logits"),
        (lambda: m.entropy_from_logits(torch.tensor([[math.inf, 0.0]])), "logits"),
        (lambda: m.accuracy(BAD_P, Y), "probs"),
        (lambda: m.accuracy(GOOD, torch.tensor([0, 2])), "labels"),
        (lambda: m.accuracy(GOOD, torch.tensor([0, 1, 1])), "labels"),
        (lambda: m.ece(GOOD, Y, n_bins=0), "n_bins"),
        (lambda: m.ece(GOOD, Y, strategy="kmeans"), "strategy"),
        (lambda: m.ece(GOOD, Y, confidence="mean"), "confidence"),
        (lambda: m.ece(torch.ones(2, 3) / 3, Y, confidence="positive"), "confidence"),
        (lambda: m.reliability(BAD_P, Y), "probs"),
        (lambda: m.auroc(torch.tensor([0.1, 1.1]), Y), "p"),
        (lambda: m.auroc(torch.ones(2, 3) / 3, Y), "p"),
        (lambda: m.smooth_ce(torch.tensor([0.1, -0.1]), Y), "p"),
        (lambda: m.smooth_ce(torch.ones(2, 3) / 3, Y), "p"),
        (lambda: m.smooth_ce(torch.tensor([0.1, 0.2]), torch.tensor([0, 2])), "labels"),
        (lambda: m.smooth_ce(torch.tensor([0.1, 0.2]), Y, method="cvx"), "method"),
        (lambda: m.misfit(GOOD, BAD_P, "squared"), "student"),
        (lambda: m.misfit(BAD_P, GOOD, "squared"), "weak"),
        (lambda: m.bootstrap_ci(lambda a: a.mean(-1), GOOD, level=1.5), "level"),
        (lambda: m.bootstrap_ci(lambda a: a.mean(-1), GOOD, n_resamples=0), "n_resamples"),
        (lambda: m.bootstrap_ci(lambda a: a.mean(), torch.rand(5)), "fn"),
        (lambda: m.seed_interval([0.1, math.nan]), "values"),
        (lambda: m.seed_interval([0.1, 0.2], level=0), "level"),
    ],
)
def test_public_functions_name_the_bad_argument(call, name):
    with pytest.raises(ValueError) as err:
        call()
    assert str(err.value).startswith(f"{name}:"), str(err.value)


def test_read_only_arrays_convert_without_warning():
    import warnings

    a = np.array([0.2, 0.8])
    a.setflags(write=False)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        t = v.as_tensor(a, "p")
    assert t.tolist() == [0.2, 0.8]
    assert not a.flags.writeable  # the caller's array is untouched
