"""Tests for metrics.intervals (seeds x test bootstrap, across-seeds aggregation) and the new
classification helpers (log_loss, one_hot), against scipy and scikit-learn."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from sklearn.metrics import log_loss as sk_log_loss

from w2s_utils import metrics


def test_one_seed_matches_scipy_bootstrap_percentile():
    rng = np.random.default_rng(0)
    x = rng.normal(0.05, 1.0, 800)
    ours = metrics.seeds_and_test_interval(x, n_resamples=4000, seed=1)
    ref = stats.bootstrap(
        (x,), np.mean, n_resamples=4000, method="percentile", random_state=1
    ).confidence_interval
    assert ours.point == pytest.approx(x.mean())
    # two Monte Carlo estimates of the same percentiles: equal up to resampling noise
    se = x.std() / math.sqrt(x.size)
    assert ours.lo == pytest.approx(ref.low, abs=0.1 * se)
    assert ours.hi == pytest.approx(ref.high, abs=0.1 * se)


def test_seed_noise_widens_the_interval_and_test_noise_is_kept():
    rng = np.random.default_rng(1)
    test_noise = rng.normal(0, 1, 1000)
    # three seeds that share the test noise and add their own offsets
    x = np.stack([test_noise + off for off in (-0.3, 0.0, 0.3)])
    both = metrics.seeds_and_test_interval(x, seed=0)
    seeds_only = metrics.seed_interval(x.mean(1))
    test_only = metrics.seeds_and_test_interval(test_noise, seed=0)
    assert both.hi - both.lo > test_only.hi - test_only.lo  # the seed offsets count
    # the across-seed t-interval ignores the shared test noise that the bootstrap keeps
    shared = metrics.seeds_and_test_interval(np.stack([test_noise] * 3), seed=0)
    assert shared.hi - shared.lo > 0.05
    assert metrics.seed_interval(np.stack([test_noise] * 3).mean(1)).hi == pytest.approx(
        test_noise.mean()
    )
    assert seeds_only.lo < both.point < seeds_only.hi


def test_ratio_interval_and_undefined_ratio():
    rng = np.random.default_rng(2)
    gap = rng.binomial(1, 0.3, (2, 1500)).astype(float)
    gain = gap * rng.binomial(1, 0.5, (2, 1500))
    iv = metrics.seeds_and_test_interval(gain, gap, seed=0)
    assert iv.point == pytest.approx(gain.mean() / gap.mean())
    assert iv.lo < iv.point < iv.hi and 0.3 < iv.point < 0.7
    with pytest.raises(ValueError, match="denominator"):
        metrics.seeds_and_test_interval(gain, np.zeros_like(gap))
    with pytest.raises(ValueError, match="denominator"):
        metrics.seeds_and_test_interval(gain, gap[:, :10])


@pytest.mark.parametrize(
    "bad, match",
    [(np.array([1.0, np.nan]), "NaN"), (np.zeros((2, 2, 2)), "shape"), (np.zeros((2, 0)), "shape")],
)
def test_bad_input_names_the_argument(bad, match):
    with pytest.raises(ValueError, match=f"per_example.*{match}"):
        metrics.seeds_and_test_interval(bad)


def test_across_seeds_matches_seed_interval_and_drops_nan():
    df = pd.DataFrame({"g": ["a"] * 3 + ["b"] * 3, "v": [1.0, 2.0, 3.0, 1.0, np.nan, 5.0]})
    out = metrics.across_seeds(df, "g", "v").set_index("g")
    iv = metrics.seed_interval([1.0, 2.0, 3.0])
    assert out.loc["a", "v"] == iv.point and out.loc["a", "v_lo"] == pytest.approx(iv.lo)
    assert out.loc["b", "v_n"] == 2 and out.loc["b", "n"] == 3
    with pytest.raises(ValueError, match="column"):
        metrics.across_seeds(df, "nope", "v")


def test_log_loss_matches_scikit_learn_and_handles_binary_vectors():
    rng = np.random.default_rng(3)
    p = rng.dirichlet(np.ones(4), 200)
    y = rng.integers(0, 4, 200)
    assert metrics.log_loss(p, y) == pytest.approx(sk_log_loss(y, p, labels=range(4)))
    q = rng.uniform(0.01, 0.99, 50)
    yb = rng.integers(0, 2, 50)
    assert metrics.log_loss(q, yb) == pytest.approx(metrics.log_loss(np.stack([1 - q, q], 1), yb))
    assert math.isinf(metrics.log_loss(np.array([[1.0, 0.0]]), [1]))


def test_one_hot_rows_and_errors():
    oh = metrics.one_hot([2, 0], 3)
    assert oh.tolist() == [[0, 0, 1], [1, 0, 0]]
    with pytest.raises(ValueError, match="n_classes"):
        metrics.one_hot([0], 1)
    with pytest.raises(ValueError, match="labels"):
        metrics.one_hot([3], 3)
