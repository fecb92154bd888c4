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


def _simulate(n_seeds, n, seed_sd, example, reps, rng):
    """``reps`` draws of x[s, i] = a_s + b_i + e_si (truth 0): seed effects a ~ N(0, seed_sd^2),
    example effects b shared by every seed (normal, or skewed like a loss difference), noise e."""
    a = rng.normal(0.0, seed_sd, (reps, n_seeds, 1))
    if example == "normal":
        b = rng.normal(0.0, 0.35, (reps, 1, n))
    else:  # skewed, heavy right tail (centred exponential), like per-example CE differences
        b = 0.3 * (rng.exponential(1.0, (reps, 1, n)) - 1.0)
    e = rng.normal(0.0, 0.2, (reps, n_seeds, n))
    return a + b + e


@pytest.mark.slow
@pytest.mark.parametrize("example", ["normal", "skewed"])
@pytest.mark.parametrize("n_seeds", [2, 3, 5])
def test_seeds_and_test_interval_keeps_its_coverage(n_seeds, example):
    """Coverage of the interval at the seed counts the chapters use, 1,000 repetitions each, seed
    sd from 0 (only the test set's error) to 0.1, ten times the test error (0.35/sqrt(1000) =
    0.011): at least 0.93 everywhere (0.95 minus three binomial standard errors, 3 x 0.007).
    The old percentile bootstrap over seeds x test covered 0.48 (2 seeds) and 0.75 (3 seeds)."""
    rng = np.random.default_rng(100 * n_seeds + (example == "skewed"))
    n, reps = 1000, 1000
    for seed_sd in (0.0, 0.005, 0.02, 0.1):
        hits = 0
        for _ in range(0, reps, 250):
            x = _simulate(n_seeds, n, seed_sd, example, 250, rng)
            for r in range(x.shape[0]):
                iv = metrics.seeds_and_test_interval(x[r])
                hits += iv.lo <= 0.0 <= iv.hi
        assert hits / reps >= 0.93, (n_seeds, example, seed_sd, hits / reps)


@pytest.mark.slow
@pytest.mark.parametrize("n_seeds", [2, 3, 5])
def test_ratio_interval_keeps_its_coverage(n_seeds):
    """A PGR-like ratio of means (gain / gap, both 0/1-valued per example with seed effects):
    the delta-method interval covers the true ratio E gain / E gap in >= 93% of 1,000 draws."""
    rng = np.random.default_rng(7 + n_seeds)
    n, reps, hits = 1000, 1000, 0
    p_gap, p_gain_given_gap = 0.3, 0.5
    for _ in range(reps):
        shift = rng.normal(0.0, 0.05, (n_seeds, 1))  # seeds recover more or less of the gap
        gap = (rng.random((1, n)) < p_gap).astype(float).repeat(n_seeds, 0)
        gain = gap * (rng.random((n_seeds, n)) < p_gain_given_gap + shift)
        iv = metrics.seeds_and_test_interval(gain, gap)
        hits += iv.lo <= p_gain_given_gap <= iv.hi
    assert hits / reps >= 0.93


def test_interval_parts_and_one_seed():
    rng = np.random.default_rng(1)
    test_noise = rng.normal(0, 1, 1000)
    # three seeds that share the test noise and add their own offsets
    x = np.stack([test_noise + off for off in (-0.3, 0.0, 0.3)])
    iv = metrics.seeds_and_test_interval(x)

    t = stats.t.ppf(0.975, 2)
    assert iv.half_seeds == pytest.approx(t * x.mean(1).std(ddof=1) / np.sqrt(3))
    assert iv.half_test == pytest.approx(1.959964 * x.mean(0).std(ddof=1) / np.sqrt(1000), 1e-5)
    assert iv.hi - iv.point == pytest.approx(iv.half_seeds + iv.half_test)
    assert (iv.n_seeds, iv.n_test) == (3, 1000)
    # the test error is kept although it never shows between seeds
    shared = metrics.seeds_and_test_interval(np.stack([test_noise] * 3))
    assert shared.half_seeds == pytest.approx(0.0, abs=1e-12) and shared.half_test > 0.05
    one = metrics.seeds_and_test_interval(test_noise)
    assert np.isnan(one.lo) and np.isnan(one.hi) and one.point == pytest.approx(test_noise.mean())


def test_statistic_version_agrees_with_the_mean_version():
    rng = np.random.default_rng(3)
    x = rng.normal(0.1, 1.0, (3, 800)) + rng.normal(0, 0.05, (3, 1))
    a = metrics.seeds_and_test_interval(x)
    b = metrics.seeds_and_test_statistic(lambda v: v.mean(), x, n_resamples=2000)
    assert b.point == pytest.approx(a.point)
    assert b.half_seeds == pytest.approx(a.half_seeds)
    assert b.half_test == pytest.approx(a.half_test, rel=0.1)  # bootstrap sd vs analytic sd
    with pytest.raises(ValueError, match="finite"):
        metrics.seeds_and_test_statistic(lambda v: np.nan, x)


def test_ratio_interval_and_undefined_ratio():
    rng = np.random.default_rng(2)
    gap = rng.binomial(1, 0.3, (2, 1500)).astype(float)
    gain = gap * rng.binomial(1, 0.5, (2, 1500))
    iv = metrics.seeds_and_test_interval(gain, gap)
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
