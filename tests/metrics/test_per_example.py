"""The one evaluation of a (weak, student, ceiling) run, :func:`w2s_utils.metrics.per_example`
and :func:`~w2s_utils.metrics.summarize_predictions`, on which every table of the analysis layer,
the engine's run summary and ``check`` rest: against hand computations with numpy/scipy/sklearn
and against :func:`w2s_utils.theory.error_decomposition` on random instances."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.special import rel_entr
from sklearn.metrics import log_loss
from torchmetrics.functional.classification import multiclass_calibration_error

from w2s_utils import metrics, theory
from w2s_utils.theory import instances


def _triple(seed: int, n: int = 60, k: int = 3):
    rng = np.random.default_rng(seed)
    w, s, c, f = (rng.dirichlet(np.ones(k) * 0.8, size=n) for _ in range(4))
    y = rng.integers(0, k, n)
    return w, s, c, f, y


def test_per_example_with_labels_by_hand():
    w, s, c, _, y = _triple(0)
    v = metrics.per_example(w, s, c, labels=y)
    assert tuple(v) == metrics.PER_EXAMPLE
    rows = np.arange(len(y))
    for name, p in (("weak", w), ("student", s), ("ceiling", c)):
        np.testing.assert_array_equal(v[f"correct_{name}"], (p.argmax(1) == y).astype(float))
        np.testing.assert_allclose(v[f"loss_{name}"], -np.log(p[rows, y]), rtol=1e-12)
    np.testing.assert_allclose(v["gain"], np.log(s[rows, y]) - np.log(w[rows, y]), rtol=1e-10)
    np.testing.assert_allclose(v["eps"], rel_entr(w, s).sum(1), rtol=1e-10)
    np.testing.assert_allclose(v["eps_rev"], rel_entr(s, w).sum(1), rtol=1e-10)
    onehot = np.eye(3)[y]
    hand = ((onehot - w) * (np.log(s) - np.log(w))).sum(1)  # sum_j (t_j - w_j) r_j
    np.testing.assert_allclose(v["interaction"], hand, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(v["misfit_sq"], ((s - w) ** 2).sum(1), rtol=1e-12)
    assert v["gain"].mean() == pytest.approx(log_loss(y, w) - log_loss(y, s))


def test_per_example_with_f_star_by_hand_and_binary_input():
    w, s, _, f, _ = _triple(1)
    v = metrics.per_example(w, s, f_star=f)
    assert "correct_ceiling" not in v and "acc_gap" not in v
    np.testing.assert_allclose(v["loss_weak"], rel_entr(f, w).sum(1), rtol=1e-10)
    np.testing.assert_allclose(v["correct_student"], f[np.arange(len(f)), s.argmax(1)])
    hand = ((f - w) * (np.log(s) - np.log(w))).sum(1)
    np.testing.assert_allclose(v["interaction"], hand, rtol=1e-9, atol=1e-12)
    p_w, p_s = w[:, 1] / w[:, :2].sum(1), s[:, 1] / s[:, :2].sum(1)
    y = (p_w > 0.3).astype(int)
    one = metrics.per_example(p_w, p_s, labels=y)
    two = metrics.per_example(np.stack([1 - p_w, p_w], 1), np.stack([1 - p_s, p_s], 1), labels=y)
    for key in one:
        np.testing.assert_allclose(one[key], two[key], rtol=1e-12)


@pytest.mark.slow
@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 10_000))
def test_per_example_against_the_error_decomposition(seed):
    """On random instances: the means agree with the theory layer's terms, and gain =
    interaction - eps holds to rounding (labels: F* = the one-hot labels of the sample)."""
    f_star, weak, student = instances.dirichlet_triple(seed, n_inputs=40)
    dec = theory.error_decomposition(weak, student, f_star=f_star)
    v = metrics.per_example(weak, student, f_star=f_star)
    assert v["loss_weak"].mean() == pytest.approx(dec.err_weak, rel=1e-9, abs=1e-12)
    assert v["loss_student"].mean() == pytest.approx(dec.err_student, rel=1e-9, abs=1e-12)
    assert v["eps"].mean() == pytest.approx(dec.eps, rel=1e-9, abs=1e-12)
    gain = dec.err_weak - dec.err_student
    assert v["gain"].mean() == pytest.approx(gain, rel=1e-9, abs=1e-12)
    # the theory layer speaks the same convention: gain = interaction - eps
    assert v["interaction"].mean() == pytest.approx(dec.interaction, rel=1e-8, abs=1e-12)
    assert dec.gain == pytest.approx(gain, rel=1e-9, abs=1e-12)
    np.testing.assert_allclose(v["gain"], v["interaction"] - v["eps"], rtol=0, atol=1e-12)
    y = torch.as_tensor(np.random.default_rng(seed).integers(0, f_star.shape[1], 40))
    onehot = metrics.one_hot(y, f_star.shape[1])
    lab = theory.error_decomposition(weak, student, f_star=onehot)
    vl = metrics.per_example(weak, student, labels=y)
    assert vl["gain"].mean() == pytest.approx(lab.err_weak - lab.err_student, abs=1e-10)
    assert vl["interaction"].mean() == pytest.approx(
        lab.err_weak - lab.err_student + lab.eps, abs=1e-10
    )


def test_floor_and_zeros():
    w = np.array([[1.0, 0.0], [0.5, 0.5]])
    s = np.array([[0.0, 1.0], [0.5, 0.5]])
    y = np.array([0, 1])
    raw = metrics.per_example(w, s, labels=y)
    assert np.isinf(raw["loss_student"][0]) and np.isinf(raw["eps"][0])
    assert np.isinf(raw["eps_rev"][0]) and raw["eps"][1] == 0.0
    floored = metrics.per_example(w, s, labels=y, floor=1e-12)
    assert floored["loss_student"][0] == pytest.approx(-np.log(1e-12))
    assert floored["eps"][0] == pytest.approx(-np.log(1e-12))  # 1 * log(1 / 1e-12)
    assert floored["loss_weak"][1] == pytest.approx(np.log(2.0))


def test_per_example_rejects_bad_input():
    w, s, c, f, y = _triple(2)
    with pytest.raises(ValueError, match="exactly one"):
        metrics.per_example(w, s)
    with pytest.raises(ValueError, match="exactly one"):
        metrics.per_example(w, s, labels=y, f_star=f)
    with pytest.raises(ValueError, match="student"):
        metrics.per_example(w, s[:, :2] / s[:, :2].sum(1, keepdims=True), labels=y)
    with pytest.raises(ValueError, match="labels"):
        metrics.per_example(w, s, labels=y[:-1])
    with pytest.raises(ValueError, match="labels"):
        metrics.per_example(w, s, labels=y + 3)
    with pytest.raises(ValueError, match="floor"):
        metrics.per_example(w, s, labels=y, floor=1.0)


def test_summarize_predictions_by_hand():
    w, s, c, _, y = _triple(3, n=200, k=2)
    out = metrics.summarize_predictions(w, s, c, labels=y)
    for name, p in (("weak", w), ("student", s), ("ceiling", c)):
        assert out[f"acc_{name}"] == pytest.approx(np.mean(p.argmax(1) == y))
        assert out[f"loss_{name}"] == pytest.approx(log_loss(y, p))
        ece = float(multiclass_calibration_error(torch.tensor(p), torch.tensor(y), 2, 15))
        assert out[f"ece_{name}"] == pytest.approx(ece, abs=1e-6)
        smce = metrics.smooth_ce(p[:, 1], y, method="highs")
        assert out[f"smooth_ce_{name}"] == pytest.approx(smce, abs=1e-8)
    assert out["gain"] == pytest.approx(out["loss_weak"] - out["loss_student"])
    assert out["eps"] == pytest.approx(metrics.misfit(w, s, "kl_weak_student"))
    assert out["eps_rev"] == pytest.approx(metrics.misfit(w, s, "kl_student_weak"))
    assert out["misfit_sq"] == pytest.approx(metrics.misfit(w, s, "squared"))
    gap = out["acc_ceiling"] - out["acc_weak"]
    want = (out["acc_student"] - out["acc_weak"]) / gap if gap > metrics.PGR_MIN_GAP else np.nan
    assert out["pgr"] == pytest.approx(want, nan_ok=True)
    multi = metrics.summarize_predictions(*_triple(4)[:2], labels=_triple(4)[4])
    assert np.isnan(multi["smooth_ce_weak"]) and "pgr" not in multi
