"""Tests for engine.train: schedule, targets, settings, determinism, early stopping, history."""

from __future__ import annotations

import numpy as np
import pytest

from w2s_utils.engine.models import get_model
from w2s_utils.engine.train import TrainSettings, as_target_probs, train_classifier, warmup_cosine

TEXTS = ["good great fine film", "bad awful poor film", "fine good", "poor awful"] * 6
LABELS = np.array([1, 0, 1, 0] * 6)


def test_warmup_cosine_ramps_then_decays():
    total, warmup = 100, 10
    f = [warmup_cosine(i, total, warmup) for i in range(total)]
    assert f[0] == pytest.approx(0.1)
    assert f[9] == pytest.approx(1.0)
    assert all(a <= b for a, b in zip(f[:10], f[1:10], strict=False))  # linear ramp up
    assert all(a >= b for a, b in zip(f[10:], f[11:], strict=False))  # cosine down
    assert f[-1] < 0.01
    assert warmup_cosine(0, 10, 0) == pytest.approx(1.0)


def test_as_target_probs():
    np.testing.assert_array_equal(as_target_probs(np.array([0, 1, 1]), 2), [[1, 0], [0, 1], [0, 1]])
    np.testing.assert_allclose(
        as_target_probs(np.array([0.25, 0.5]), 2), [[0.75, 0.25], [0.5, 0.5]]
    )
    with pytest.raises(ValueError, match="class indices"):
        as_target_probs(np.array([0, 2]), 2)
    with pytest.raises(ValueError, match="probability"):
        as_target_probs(np.array([[0.5, 0.6]]), 2)


@pytest.mark.parametrize(
    "field,value", [("epochs", 0), ("lr", -1.0), ("batch_size", 0), ("warmup_frac", 1.0)]
)
def test_settings_reject_bad_values(field, value):
    with pytest.raises(ValueError, match=field):
        TrainSettings(**{field: value})


def _fit(seed: int, device: str = "cpu", **kw):
    m = get_model("tiny-transformer", device=device)
    s = TrainSettings(epochs=2, batch_size=8, lr=1e-3, seed=seed, progress=False, **kw)
    _, hist = train_classifier(m, TEXTS, LABELS, s, val=(TEXTS, LABELS), test=(TEXTS, LABELS))
    return m, hist


@pytest.mark.slow
def test_same_seed_same_predictions_on_cpu():
    a, ha = _fit(0)
    b, hb = _fit(0)
    c, _ = _fit(1)
    np.testing.assert_array_equal(a.predict_proba(TEXTS), b.predict_proba(TEXTS))
    np.testing.assert_array_equal(ha["train_loss"].to_numpy(), hb["train_loss"].to_numpy())
    assert not np.array_equal(a.predict_proba(TEXTS), c.predict_proba(TEXTS))


@pytest.mark.slow
def test_history_columns_and_eval_schedule():
    _, hist = _fit(0, eval_every=2)
    expected = {
        "step",
        "epoch",
        "lr",
        "train_loss",
        "train_eps",
        "val_loss",
        "val_acc",
        "val_eps",
        "test_acc",
        "test_ce",
    }
    assert expected <= set(hist.columns)
    assert hist["step"].tolist() == [2, 4, 6]  # 24 examples / batch 8 = 3 steps per epoch
    assert (hist["val_eps"] >= 0).all()


@pytest.mark.slow
def test_early_stopping_restores_the_best_weak_label_loss():
    m = get_model("tiny-transformer")
    # weak labels of the validation split disagree with the training targets half of the time:
    # the val loss against them must eventually rise, and the best step is restored
    val_weak = np.array([1, 1, 0, 0] * 6)
    s = TrainSettings(
        epochs=8,
        batch_size=8,
        lr=3e-3,
        eval_every=1,
        early_stopping=True,
        patience=3,
        progress=False,
    )
    _, hist = train_classifier(m, TEXTS, LABELS, s, val=(TEXTS, val_weak))
    best = hist.loc[hist["val_loss"].idxmin()]
    assert hist["selected"].sum() >= 1
    assert bool(hist.loc[hist["val_loss"].idxmin(), "selected"])
    p = m.predict_proba(TEXTS)
    q = as_target_probs(val_weak, 2)
    val_loss_now = float(-(q * np.log(np.clip(p, 1e-12, 1))).sum(1).mean())
    assert val_loss_now == pytest.approx(best["val_loss"], rel=1e-5)
    assert len(hist) < 8 * 3  # stopped before the last step


@pytest.mark.slow
def test_soft_targets_and_losses():
    soft = np.stack([1 - LABELS * 0.8 - 0.1, LABELS * 0.8 + 0.1], 1)

    def reverse_kl(p: np.ndarray) -> float:  # E KL(student || target), the reverse-KL objective
        return float((p * (np.log(p) - np.log(soft))).sum(1).mean())

    m = get_model("tiny-transformer")
    m.reset_parameters(0)
    before = reverse_kl(m.predict_proba(TEXTS))
    s = TrainSettings(epochs=8, batch_size=8, lr=3e-3, loss="reverse_kl", progress=False)
    _, hist = train_classifier(m, TEXTS, soft, s)
    assert np.isfinite(hist["train_loss"]).all()
    after = reverse_kl(m.predict_proba(TEXTS))
    # training with reverse KL lowers the reverse KL to the soft targets (by a clear margin)
    assert after < 0.5 * before, (before, after)
    with pytest.raises(ValueError, match="loss"):
        train_classifier(
            get_model("tiny-transformer"), TEXTS, soft, TrainSettings(loss="nope", progress=False)
        )
    with pytest.raises(ValueError, match="targets"):
        train_classifier(
            get_model("tiny-transformer"), TEXTS, soft[:3], TrainSettings(progress=False)
        )


@pytest.mark.cuda
def test_training_on_cuda_with_bf16(cuda_device):
    m, hist = _fit(0, device=str(cuda_device), bf16=True, eval_every=1)
    assert all(p.device.type == "cuda" for p in m.net.parameters())
    assert np.isfinite(hist[["train_loss", "val_loss", "test_ce"]].to_numpy()).all()
    p = m.predict_proba(TEXTS)
    assert p.shape == (len(TEXTS), 2) and np.isfinite(p).all()
    np.testing.assert_allclose(p.sum(1), 1, atol=1e-6)
    cpu, _ = _fit(0)
    # same seed, other device and precision: not bit-identical, but close predictions
    p_cpu = cpu.predict_proba(TEXTS)
    assert np.abs(p - p_cpu).mean() <= 0.05
    assert ((p[:, 1] > 0.5) == (p_cpu[:, 1] > 0.5)).mean() >= 0.9
