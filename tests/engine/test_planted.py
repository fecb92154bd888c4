"""Tests for w2s_utils.engine.planted: exact errors on planted tasks (chapter 2)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from w2s_utils.engine.planted import (
    PlantedResult,
    SoftmaxProbe,
    fit_softmax_probe,
    planted_from_features,
    planted_task,
)
from w2s_utils.metrics import kl


def _features(n: int = 600, d: int = 16, k: int = 2, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    xs = torch.randn(n, d, generator=g, dtype=torch.float64)
    xw = xs[:, :3] + 0.7 * torch.randn(n, 3, generator=g, dtype=torch.float64)
    w = torch.randn(d, k, generator=g, dtype=torch.float64)
    gold = (xs @ w + 0.5 * torch.randn(n, k, generator=g, dtype=torch.float64)).argmax(-1)
    return xs, xw, gold


@pytest.fixture(scope="module")
def planted() -> PlantedResult:
    xs, xw, gold = _features()
    return planted_from_features(xs, xw, gold, seed=3)


@pytest.mark.slow
def test_exact_err_is_expected_cross_entropy_minus_bayes_entropy(planted: PlantedResult) -> None:
    # E_{y ~ F*} [-log F(x)_y] = KL(F* || F) + H(F*), averaged over the test texts.
    for name, p in planted.predictions().items():
        expected_ce = float(-(planted.f_star * torch.log(p)).sum(-1).mean())
        assert expected_ce == pytest.approx(planted.err[name] + planted.bayes_entropy, abs=1e-12)
        assert planted.exact_err(p) == pytest.approx(planted.err[name], abs=1e-15)
        assert planted.err[name] > 0
    assert planted.exact_err(planted.f_star) == pytest.approx(0.0, abs=1e-14)


def test_sampled_cross_entropy_estimates_err_plus_entropy(planted: PlantedResult) -> None:
    n = planted.labels.shape[0]
    rows = torch.arange(n)
    for name, p in planted.predictions().items():
        nll = -torch.log(p[rows, planted.labels])
        se = float(nll.std()) / math.sqrt(n)
        assert abs(planted.ce[name] - (planted.err[name] + planted.bayes_entropy)) < 5 * se


def test_lemma1_decomposition_is_exact(planted: PlantedResult) -> None:
    fs, weak, student = planted.f_star, planted.weak, planted.student
    diff = kl(fs, student) - kl(fs, weak)
    log_ratio = torch.log(weak / student)
    assert torch.allclose(diff, (fs * log_ratio).sum(-1), atol=1e-12)
    assert torch.allclose(diff, kl(weak, student) + ((fs - weak) * log_ratio).sum(-1), atol=1e-12)
    assert planted.eps == pytest.approx(float(kl(weak, student).mean()), abs=1e-15)


@pytest.mark.slow
def test_planted_truth_is_realizable_by_the_strong_probe() -> None:
    xs, _, gold = _features(n=400, d=8, k=3, seed=1)
    head = fit_softmax_probe(xs, gold, n_classes=3, l2=1e-2).with_temperature(2.0)
    f_star = head.predict_proba(xs)
    refit = fit_softmax_probe(xs, f_star, l2=0.0, max_iter=2000)
    assert float(kl(f_star, refit.predict_proba(xs)).mean()) < 1e-6


def test_roles_and_shapes(planted: PlantedResult) -> None:
    n_test = planted.f_star.shape[0]
    assert n_test == 600 - int(round(0.3 * 600)) - int(round(0.4 * 600))
    for p in (planted.f_star, planted.weak, planted.student, planted.ceiling):
        assert p.shape == (n_test, 2) and p.dtype == torch.float64
        assert torch.allclose(p.sum(-1), torch.ones(n_test, dtype=torch.float64))
    # the ceiling (strong probe on gold-from-F* labels) beats the weak probe on 3 noisy features
    assert planted.err["ceiling"] < planted.err["weak"]
    assert set(planted.accuracy) == {"weak", "student", "ceiling"}


@pytest.mark.slow
def test_deterministic_and_seed_dependent() -> None:
    xs, xw, gold = _features(n=300)
    a = planted_from_features(xs, xw, gold, seed=7)
    b = planted_from_features(xs.numpy(), xw.numpy(), gold.numpy(), seed=7)
    c = planted_from_features(xs, xw, gold, seed=8)
    for name in ("f_star", "weak", "student", "ceiling", "labels"):
        assert torch.equal(getattr(a, name), getattr(b, name))
    assert a.err == b.err
    assert not torch.equal(a.f_star, c.f_star) or not torch.equal(a.labels, c.labels)


@pytest.mark.slow
def test_temperature_softens_the_planted_truth() -> None:
    xs, xw, gold = _features(n=300)
    sharp = planted_from_features(xs, xw, gold, seed=0, temperature=0.5)
    soft = planted_from_features(xs, xw, gold, seed=0, temperature=3.0)
    assert soft.bayes_entropy > sharp.bayes_entropy
    assert soft.config["temperature"] == 3.0


def test_probe_predicts_and_checks_dimensions() -> None:
    xs, _, gold = _features(n=100, d=5)
    probe = fit_softmax_probe(xs, gold)
    assert isinstance(probe, SoftmaxProbe)
    p = probe.predict_proba(np.asarray(xs))
    assert p.shape == (100, 2)
    with pytest.raises(ValueError, match="features"):
        probe.predict_proba(xs[:, :4])
    with pytest.raises(ValueError, match="temperature"):
        probe.with_temperature(0.0)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"temperature": 0.0}, "temperature"),
        ({"temperature": float("nan")}, "temperature"),
        ({"fractions": (0.5, 0.5, 0.0)}, "fractions"),
        ({"fractions": (0.5, 0.6, 0.1)}, "fractions"),
        ({"seed": 1.5}, "seed"),
    ],
)
def test_bad_arguments(kwargs: dict, match: str) -> None:
    xs, xw, gold = _features(n=100)
    with pytest.raises(ValueError, match=match):
        planted_from_features(xs, xw, gold, **kwargs)


def test_bad_inputs() -> None:
    xs, xw, gold = _features(n=100)
    with pytest.raises(ValueError, match="weak_features"):
        planted_from_features(xs, xw[:50], gold)
    with pytest.raises(ValueError, match="gold_labels"):
        planted_from_features(xs, xw, gold[:50])
    with pytest.raises(ValueError, match="strong_features"):
        planted_from_features(xs[:, 0], xw, gold)
    with pytest.raises(ValueError, match="n: 5 examples"):
        planted_from_features(xs[:5], xw[:5], gold[:5])
    bad = xs.clone()
    bad[0, 0] = float("nan")
    with pytest.raises(ValueError, match="NaN"):
        planted_from_features(bad, xw, gold)
    with pytest.raises(ValueError, match="targets"):
        fit_softmax_probe(xs, gold[:10])
    with pytest.raises(ValueError, match="l2"):
        fit_softmax_probe(xs, gold, l2=-1.0)


def test_planted_task_rejects_models_without_frozen_features() -> None:
    with pytest.raises(ValueError, match="weak"):
        planted_task("sarcasm", weak="bow", n=100)
    with pytest.raises(ValueError, match="n:"):
        planted_task("sarcasm", n=3)
    with pytest.raises(ValueError, match="temperature"):
        planted_task("sarcasm", temperature=-1.0)


@pytest.mark.slow
def test_planted_task_on_real_text_is_exact() -> None:
    a = planted_task("sarcasm", "minilm-l1", "minilm-l2", n=200, seed=0)
    assert a.config["dataset"] == "sarcasm" and a.config["weak"] == "minilm-l1"
    assert a.f_star.shape == (60, 2)
    assert 0.5 < a.gold_accuracy <= 1.0
    lhs = kl(a.f_star, a.student) - kl(a.f_star, a.weak)
    assert torch.allclose(lhs, (a.f_star * torch.log(a.weak / a.student)).sum(-1), atol=1e-12)
    expected_ce = float(-(a.f_star * torch.log(a.weak)).sum(-1).mean())
    assert expected_ce == pytest.approx(a.err["weak"] + a.bayes_entropy, abs=1e-12)
