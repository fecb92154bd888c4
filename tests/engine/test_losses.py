"""Tests for engine.losses: gradients, identities, the confidence-loss warm-up, make_loss."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from w2s_utils import metrics as m
from w2s_utils.engine import losses as L

PLAIN = (L.soft_ce, L.forward_kl, L.reverse_kl, L.squared_prob)


def _batch(seed: int = 0, b: int = 6, k: int = 3):
    g = torch.Generator().manual_seed(seed)
    z = torch.randn(b, k, generator=g, dtype=torch.float64) * 2
    t = torch.randn(b, k, generator=g, dtype=torch.float64).softmax(-1)
    return z, t


@pytest.mark.parametrize("fn", PLAIN, ids=lambda f: f.__name__)
@pytest.mark.parametrize("binary", [False, True])
def test_gradcheck_float64(fn, binary):
    z, t = _batch(1)
    if binary:
        z, t = z[:, 0], t[:, 0]
    z.requires_grad_(True)
    assert torch.autograd.gradcheck(lambda x: fn(x, t), (z,))
    assert torch.autograd.gradcheck(lambda x: fn(x, t, "none"), (z,))


def test_gradcheck_aux_confidence():
    z, t = _batch(2, b=8, k=2)
    loss = L.AuxConfidenceLoss(alpha_max=0.5, warmup_frac=0.2, total_steps=100)
    z.requires_grad_(True)
    assert torch.autograd.gradcheck(lambda x: loss(x, t, 10), (z,))
    z3, t3 = _batch(3, b=8, k=4)
    z3.requires_grad_(True)
    assert torch.autograd.gradcheck(lambda x: loss(x, t3, 50), (z3,))


def test_forward_kl_is_soft_ce_minus_entropy_and_kl():
    z, t = _batch(4, b=10, k=5)
    fk = L.forward_kl(z, t, "none")
    assert torch.allclose(fk, L.soft_ce(z, t, "none") - m.entropy(t), atol=1e-12)
    assert torch.allclose(fk, m.kl(t, z.softmax(-1)), atol=1e-12)
    assert torch.allclose(L.reverse_kl(z, t, "none"), m.kl(z.softmax(-1), t), atol=1e-12)
    sq = ((z.softmax(-1) - t) ** 2).sum(-1)
    assert torch.allclose(L.squared_prob(z, t, "none"), sq, atol=1e-12)
    # zero at a perfect fit
    assert L.forward_kl(t.log(), t).abs() < 1e-12
    assert L.reverse_kl(t.log(), t).abs() < 1e-12


def test_soft_ce_matches_torch_cross_entropy_with_probability_targets():
    z, t = _batch(5)
    assert torch.allclose(L.soft_ce(z, t), F.cross_entropy(z, t))


def test_binary_vector_equals_two_column():
    z, t = _batch(6, k=2)
    zb = z[:, 1] - z[:, 0]
    tb = t[:, 1]
    for fn in PLAIN:
        assert torch.allclose(fn(zb, tb, "none"), fn(z, t, "none"), atol=1e-12), fn.__name__


@pytest.mark.parametrize("fn", PLAIN, ids=lambda f: f.__name__)
def test_reductions(fn):
    z, t = _batch(7)
    none = fn(z, t, "none")
    assert none.shape == (6,)
    assert torch.allclose(fn(z, t, "sum"), none.sum())
    assert torch.allclose(fn(z, t, "mean"), none.mean())
    with pytest.raises(ValueError, match="reduction"):
        fn(z, t, "max")


def test_dtype_and_device_kept(make_probs, rng):
    t = torch.tensor(make_probs(rng, (5, 3)), dtype=torch.float32)
    z = torch.randn(5, 3)
    for fn in PLAIN:
        out = fn(z, t)
        assert out.dtype == torch.float32 and out.device == z.device and out.dim() == 0


@pytest.mark.cuda
def test_losses_on_cuda(cuda_device):
    z, t = _batch(8)
    for fn in PLAIN:
        out = fn(z.to(cuda_device), t.to(cuda_device))
        assert out.device.type == "cuda"
        assert out.item() == pytest.approx(fn(z, t).item(), rel=1e-9)
    aux = L.make_loss("aux_conf", total_steps=10)
    assert aux(z.to(cuda_device), t.to(cuda_device), 5).device.type == "cuda"


# --------------------------------------------------------------------------- confidence loss
@pytest.mark.parametrize("total_steps", [1, 7, 100, 1234])
@pytest.mark.parametrize("alpha_max", [0.5, 0.75])
def test_warmup_ramps_linearly_then_stays(total_steps, alpha_max):
    frac = 0.2
    steps = np.arange(0, 2 * total_steps + 1)
    a = np.array([L.confidence_warmup(int(s), total_steps, alpha_max, frac) for s in steps])
    warm = frac * total_steps
    assert a[0] == 0.0
    assert np.all(np.diff(a) >= 0)  # monotone
    ramp = steps <= warm
    np.testing.assert_allclose(a[ramp], alpha_max * steps[ramp] / warm, atol=1e-12)  # linear
    assert np.all(a[steps >= warm] == pytest.approx(alpha_max))  # then stays
    # no jump: one step never raises alpha by more than the linear increment
    assert np.max(np.diff(a)) <= alpha_max / warm + 1e-12
    if warm >= 4:  # half way through the warm-up we are half way up (the reference code is not)
        half = int(np.ceil(warm / 2))
        assert 0 < a[half] < alpha_max


def _reference_warmup(step: int, total_steps: int, alpha_max: float, frac: float) -> float:
    """openai/weak-to-strong's schedule: ``coef = 1 if step_frac > warmup_frac else step_frac``."""
    step_frac = step / total_steps
    return alpha_max * (1.0 if step_frac > frac else step_frac)


def test_warmup_does_not_jump_like_the_reference():
    total, alpha_max, frac = 1000, 0.75, 0.2
    ours = np.array([L.confidence_warmup(s, total, alpha_max, frac) for s in range(total + 1)])
    ref = np.array([_reference_warmup(s, total, alpha_max, frac) for s in range(total + 1)])
    assert np.max(np.diff(ref)) > 0.5  # the reference leaps from 0.15 to 0.75 in one step
    assert np.max(np.diff(ours)) == pytest.approx(alpha_max / (frac * total))
    assert ours[200] == pytest.approx(alpha_max) and ref[200] == pytest.approx(0.15)


def test_warmup_bad_arguments():
    with pytest.raises(ValueError, match="total_steps"):
        L.confidence_warmup(0, 0, 0.5, 0.2)
    with pytest.raises(ValueError, match="warmup_frac"):
        L.confidence_warmup(0, 10, 0.5, 1.5)
    with pytest.raises(ValueError, match="alpha_max"):
        L.confidence_warmup(0, 10, 2.0, 0.2)
    with pytest.raises(ValueError, match="step"):
        L.confidence_warmup(-1, 10, 0.5, 0.2)
    assert L.confidence_warmup(0, 10, 0.5, 0.0) == 0.5


@pytest.mark.parametrize("k", [2, 4])
def test_aux_confidence_step_zero_is_soft_ce(k):
    z, t = _batch(9, b=12, k=k)
    loss = L.AuxConfidenceLoss(alpha_max=0.75, warmup_frac=0.2, total_steps=50)
    assert torch.allclose(loss(z, t, 0), L.soft_ce(z, t), atol=1e-12)


def test_aux_confidence_hard_labels_match_weak_balance():
    # weak soft labels with mean positive probability 0.25 -> 2 of 8 rows hardened to class 1
    t_pos = torch.tensor([0.9, 0.1, 0.3, 0.0, 0.2, 0.1, 0.2, 0.2], dtype=torch.float64)
    t = torch.stack([1 - t_pos, t_pos], 1)
    z_pos = torch.tensor([3.0, 2.0, 1.0, 0.5, -0.5, -1.0, -2.0, -3.0], dtype=torch.float64)
    z = torch.stack([torch.zeros(8, dtype=torch.float64), z_pos], 1)
    only_hard = L.AuxConfidenceLoss(alpha_max=1.0, warmup_frac=0.0, total_steps=10)
    expected_hard = torch.tensor([1, 1, 0, 0, 0, 0, 0, 0])
    assert torch.allclose(only_hard(z, t, 5), F.cross_entropy(z, expected_hard))
    mixed = L.AuxConfidenceLoss(alpha_max=0.5, warmup_frac=0.5, total_steps=10)
    want = 0.8 * L.soft_ce(z, t) + 0.2 * F.cross_entropy(z, expected_hard)  # alpha(2) = 0.2
    assert torch.allclose(mixed(z, t, 2), want)


def test_aux_confidence_multiclass_uses_argmax():
    z, t = _batch(10, b=9, k=4)
    only_hard = L.AuxConfidenceLoss(alpha_max=1.0, warmup_frac=0.0, total_steps=10)
    assert torch.allclose(only_hard(z, t, 3), F.cross_entropy(z, z.argmax(-1)))


# --------------------------------------------------------------------------- make_loss
@pytest.mark.parametrize("name", L.LOSS_NAMES)
def test_make_loss_all_names(name):
    z, t = _batch(11, k=2)
    fn = L.make_loss(name, total_steps=20)
    out = fn(z, t, 3)
    assert out.dim() == 0 and torch.isfinite(out)
    z.requires_grad_(True)
    fn(z, t, 3).backward()
    assert z.grad is not None and torch.isfinite(z.grad).all()


def test_make_loss_matches_functions():
    z, t = _batch(12)
    assert torch.allclose(L.make_loss("xent", total_steps=5)(z, t, 0), L.soft_ce(z, t))
    assert torch.allclose(L.make_loss("squared", total_steps=5)(z, t, 0), L.squared_prob(z, t))
    assert torch.allclose(L.make_loss("reverse_kl", total_steps=5)(z, t, 1), L.reverse_kl(z, t))


def test_make_loss_errors():
    with pytest.raises(ValueError, match="xent, forward_kl, reverse_kl, squared, aux_conf"):
        L.make_loss("mse", total_steps=10)
    with pytest.raises(ValueError, match="total_steps"):
        L.make_loss("xent", total_steps=0)
    with pytest.raises(ValueError, match="kwargs"):
        L.make_loss("xent", total_steps=10, alpha_max=0.5)
    assert isinstance(L.make_loss("aux_conf", total_steps=10, alpha_max=0.5), L.AuxConfidenceLoss)


def test_loss_input_validation():
    z, t = _batch(13)
    with pytest.raises(ValueError, match="target_probs"):
        L.soft_ce(z, t[:, :2])
    with pytest.raises(ValueError, match="target_probs"):
        L.soft_ce(z, t * 2)
    with pytest.raises(ValueError, match="logits"):
        L.forward_kl(z * float("nan"), t)
