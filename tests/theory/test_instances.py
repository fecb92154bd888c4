"""Seeded random instances: deterministic, float64, hypotheses true by construction."""

from __future__ import annotations

import pytest
import torch

from w2s_utils.theory.instances import (
    charikar_instance,
    logit_linear_instance,
    mixture_instance,
    random_relu_mlp,
    random_simplex,
    weak_predictions,
)

F64 = torch.float64


def _rows_are_distributions(p: torch.Tensor) -> None:
    assert p.dtype == F64 and float(p.min()) >= 0
    torch.testing.assert_close(p.sum(-1), torch.ones(p.shape[:-1], dtype=F64))


def test_random_simplex_is_seeded_and_floored():
    a = random_simplex(50, 4, concentration=0.3, floor=0.05, seed=3)
    b = random_simplex(50, 4, concentration=0.3, floor=0.05, seed=3)
    c = random_simplex(50, 4, concentration=0.3, floor=0.05, seed=4)
    torch.testing.assert_close(a, b, rtol=0, atol=0)
    assert not torch.equal(a, c)
    _rows_are_distributions(a)
    assert float(a.min()) >= 0.05 - 1e-15
    with pytest.raises(ValueError, match="floor"):
        random_simplex(5, 4, floor=0.25)
    with pytest.raises(ValueError, match="n_classes"):
        random_simplex(5, 1)


def test_weak_predictions_arbitrary_or_close():
    f_star = random_simplex(200, 3, seed=0)
    close = weak_predictions(f_star, noise=0.01, seed=1)
    far = weak_predictions(f_star, seed=1)
    _rows_are_distributions(close)
    _rows_are_distributions(far)
    assert (close - f_star).abs().max() < 0.05 < (far - f_star).abs().max()
    torch.testing.assert_close(weak_predictions(f_star, noise=0.0), f_star)


def test_mixture_instance_truth_is_in_the_convex_hull():
    inst = mixture_instance(5, n=40, d=3, n_classes=4, n_components=3, weak_floor=0.01)
    assert inst.components.shape == (3, 40, 4) and inst.heads.shape == (3, 4, 3)
    _rows_are_distributions(inst.components)
    _rows_are_distributions(inst.f_star)
    _rows_are_distributions(inst.weak)
    assert float(inst.alpha_star.min()) >= 0 and float(inst.alpha_star.sum()) == pytest.approx(1)
    torch.testing.assert_close(
        inst.f_star, torch.einsum("k,knc->nc", inst.alpha_star, inst.components)
    )
    torch.testing.assert_close(
        inst.components[1], torch.softmax(inst.features @ inst.heads[1].T, dim=-1)
    )
    assert float(inst.weak.min()) >= 0.01 - 1e-15
    assert mixture_instance(5, star_on_boundary=True).alpha_star[0] == 0
    again = mixture_instance(5, n=40, d=3, n_classes=4, n_components=3, weak_floor=0.01)
    torch.testing.assert_close(again.weak, inst.weak, rtol=0, atol=0)


def test_logit_linear_instance_is_realizable():
    inst = logit_linear_instance(2, n=30, d=4, n_classes=5, weak_noise=0.2)
    torch.testing.assert_close(inst.f_star, torch.softmax(inst.features @ inst.w_star.T, -1))
    _rows_are_distributions(inst.weak)
    assert inst.features.dtype == F64


def test_charikar_instance_is_realizable_for_linear_heads():
    inst = charikar_instance(0, n=100)
    assert inst.x.shape == (100, 8) and inst.h_s.shape == (100, 16) and inst.h_w.shape == (100, 8)
    torch.testing.assert_close(inst.f_star, inst.h_s @ inst.head_star)
    assert float(inst.h_s.min()) >= 0  # ReLU features
    assert float(inst.f_star.std()) > 0
    h = random_relu_mlp(inst.x, widths=(4, 2), seed=1, final_relu=False)
    assert h.shape == (100, 2) and float(h.min()) < 0
    with pytest.raises(ValueError, match="widths"):
        random_relu_mlp(inst.x, widths=(), seed=0)
    with pytest.raises(ValueError, match="seed"):
        charikar_instance(1.5)  # type: ignore[arg-type]
