"""Temperature scaling (:func:`w2s_utils.metrics.fit_temperature`,
:func:`~w2s_utils.metrics.apply_temperature`) against scipy's optimum and relplot's ordering."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from scipy.optimize import minimize_scalar

from w2s_utils import metrics


def _nll(z: torch.Tensor, y: torch.Tensor, t: float) -> float:
    return float(torch.nn.functional.cross_entropy(z / t, y))


@pytest.mark.slow
@given(
    seed=st.integers(0, 10_000),
    k=st.integers(2, 6),
    true_t=st.floats(0.3, 4.0),
    scale=st.floats(0.5, 4.0),
)
def test_fit_temperature_matches_scipy_optimum(seed, k, true_t, scale):
    g = torch.Generator().manual_seed(seed)
    z = torch.randn(400, k, generator=g, dtype=torch.float64) * scale
    y = torch.multinomial(torch.softmax(z / true_t, -1), 1, generator=g)[:, 0]
    t = metrics.fit_temperature(z, y, kind="logits")
    ref = minimize_scalar(
        lambda s: _nll(z, y, math.exp(s)),
        bounds=(math.log(1e-2), math.log(1e2)),
        method="bounded",
        options={"xatol": 1e-12},
    )
    # the fitted value is at least as good as scipy's and the two agree
    assert _nll(z, y, t) <= ref.fun + 1e-12
    assert t == pytest.approx(math.exp(ref.x), rel=1e-4)
    # probabilities in, log-probabilities used: the same optimum
    assert metrics.fit_temperature(torch.softmax(z, -1), y) == pytest.approx(t, rel=1e-9)


@pytest.mark.slow
def test_fit_temperature_binary_and_bounds():
    rng = np.random.default_rng(0)
    p = rng.uniform(0.02, 0.98, 2000)
    y = (rng.uniform(size=2000) < p).astype(np.int64)
    sharp = metrics.apply_temperature(torch.tensor(p), 0.4)  # over-confident copy of p
    assert metrics.fit_temperature(sharp, y) == pytest.approx(2.5, rel=0.15)
    logit = np.log(p / (1 - p))
    assert metrics.fit_temperature(logit, y, kind="logits") == pytest.approx(1.0, rel=0.15)
    # a predictor that is anti-correlated with the labels: optimum beyond the bound, clamped
    assert metrics.fit_temperature(-logit, y, kind="logits", bounds=(0.1, 10.0)) == 10.0
    with pytest.raises(ValueError, match="kind"):
        metrics.fit_temperature(p, y, kind="odds")
    with pytest.raises(ValueError, match="bounds"):
        metrics.fit_temperature(p, y, bounds=(2.0, 1.0))
    with pytest.raises(ValueError, match="labels"):
        metrics.fit_temperature(p, y[:10])


@pytest.mark.slow
def test_apply_temperature(rng):
    z = torch.tensor(rng.normal(size=(50, 4)) * 2)
    p = torch.softmax(z, -1)
    torch.testing.assert_close(metrics.apply_temperature(p, 1.0), p)
    torch.testing.assert_close(metrics.apply_temperature(p, 2.5), torch.softmax(z / 2.5, -1))
    assert torch.equal(metrics.apply_temperature(p, 0.3).argmax(-1), p.argmax(-1))
    b = metrics.apply_temperature(p[:, 0], 2.0)  # [N] binary in, [N] out
    assert b.shape == (50,)
    torch.testing.assert_close(b, torch.sigmoid(torch.logit(p[:, 0]) / 2.0))
    for bad in (0.0, -1.0, math.inf, True):
        with pytest.raises(ValueError, match="temperature"):
            metrics.apply_temperature(p, bad)


def test_temperature_orders_like_relplot():
    """Tempered copies of a calibrated predictor are less calibrated by both the exact smooth CE
    and relplot's kernel smooth ECE (an independent estimator): strictly more so as T falls below
    1; above 1 both rank T = 1 best (not monotone: as T grows the predictor tends to the constant
    1/2, which is calibrated when the base rate is 1/2)."""
    relplot = pytest.importorskip("relplot")
    rng = np.random.default_rng(3)
    truth = rng.uniform(0.05, 0.95, 4000)
    y = (rng.uniform(size=4000) < truth).astype(np.int64)

    def both(temps):
        preds = [metrics.apply_temperature(torch.tensor(truth), t).numpy() for t in temps]
        return (
            np.array([metrics.smooth_ce(p, y) for p in preds]),
            np.array([float(relplot.smECE(p, y)) for p in preds]),
        )

    for vals in both((1.0, 0.5, 0.25)):
        assert np.all(np.diff(vals) > 0), vals
    for vals in both((1.0, 2.0, 4.0)):
        assert vals.argmin() == 0, vals
