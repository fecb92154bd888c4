"""The squared-loss engine (:mod:`w2s_utils.engine.regression`): least squares and ridge against
scikit-learn, the learned representation, the cached Charikar synthetic runs, the estimation-
error formula against a simulation, the text splits and regressions on fake features."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest
import torch

from w2s_utils.engine import regression as R
from w2s_utils.engine.presets import SquaredLossGrid


def test_lstsq_and_ridge_fits_match_scikit_learn(rng):
    from sklearn.linear_model import LinearRegression, Ridge

    x, y = rng.normal(size=(60, 3)), rng.normal(size=60)
    coef = R.lstsq_fit(x, y)
    ref = LinearRegression().fit(x, y)
    np.testing.assert_allclose(coef[:-1], ref.coef_, atol=1e-10)
    assert coef[-1] == pytest.approx(ref.intercept_)
    np.testing.assert_allclose(
        R.ridge_fit(x, y, 2.0).predict(x), Ridge(alpha=2.0).fit(x, y).predict(x)
    )


def test_learn_representation_fits_the_tasks():
    gen = torch.Generator().manual_seed(0)
    x = torch.randn((3, 200, 4), generator=gen, dtype=torch.float64)
    heads = torch.randn((3, 8), generator=gen, dtype=torch.float64)
    y = torch.einsum(
        "tnr,tr->tn", torch.relu(x @ torch.randn(4, 8, generator=gen, dtype=torch.float64)), heads
    )
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny network: a second thread only waits
    try:
        net = R.learn_representation(
            x, y, heads, n_layers=2, width=8, steps=300, batch_size=64, lr=1e-2, seed=0
        )
    finally:
        torch.set_num_threads(threads)
    with torch.no_grad():
        out = torch.einsum("tnr,tr->tn", net(x.float()).double(), heads)
    assert float(((out - y) ** 2).mean() / y.var()) < 0.2
    with pytest.raises(ValueError, match="heads"):
        R.learn_representation(
            x, y, heads[:, :4], n_layers=1, width=8, steps=1, batch_size=4, lr=1e-3, seed=0
        )


TINY = SquaredLossGrid(
    n_rep_tasks=3, n_per_task=200, rep_steps=30, rep_batch=50, n_transfer=4, n_train=100, n_test=100
)


def test_charikar_synthetic_tiny_is_cached_and_exact_when_realizable(sandbox):
    table, timing = R.charikar_synthetic(TINY)
    assert len(table) == 2 * TINY.n_transfer and set(table.strong) == {"learned", "true"}
    true = table[table.strong == "true"]
    # h_s = h* contains F*: on the student's own sample gain = misfit exactly (Pythagoras)
    assert (true.train_slack.abs() <= 1e-8 * true.var_target).all()
    np.testing.assert_allclose(table.gain, table.err_weak - table.err_student)
    assert not timing.cached
    again, timing2 = R.charikar_synthetic(TINY)
    pd.testing.assert_frame_equal(table, again)
    assert timing2.cached and timing2.seconds == timing.seconds and timing2.key == timing.key
    assert timing.seconds >= timing.parts["representations"] > 0
    assert timing.pieces == ((timing.key, timing.seconds),)
    # the key holds the synthetic settings only: other fields (text, seeds) reuse the result
    other = dataclasses.replace(TINY, text_n=10_000, seeds=(0, 1, 2), datasets=("sarcasm",))
    assert R.charikar_synthetic(other)[1].cached
    assert not R.charikar_synthetic(dataclasses.replace(TINY, n_transfer=3))[1].cached
    with pytest.raises(ValueError, match="SquaredLossGrid"):
        R.charikar_synthetic({"seed": 0})


def test_estimation_error_formula_matches_a_gaussian_design_simulation():
    """c(n, d) against a Monte Carlo of least squares with an intercept on Gaussian features
    (non-zero mean, correlated), noise independent of them: E ||delta||^2 under P, exactly."""
    rng = np.random.default_rng(0)
    n, d, sigma2, reps = 12, 3, 2.0, 40_000
    a = rng.normal(size=(d, d))
    cov, mu = a @ a.T + 0.5 * np.eye(d), rng.normal(size=d)
    chol = np.linalg.cholesky(cov)
    # second moment of phi = (h, 1) under P
    m = np.block([[cov + np.outer(mu, mu), mu[:, None]], [mu[None, :], np.ones((1, 1))]])
    h = mu + rng.normal(size=(reps, n, d)) @ chol.T
    phi = np.concatenate([h, np.ones((reps, n, 1))], axis=-1)
    r = np.sqrt(sigma2) * rng.normal(size=(reps, n))
    err = np.linalg.solve(phi.transpose(0, 2, 1) @ phi, (phi.transpose(0, 2, 1) @ r[..., None]))
    delta2 = np.einsum("bi,ij,bj->b", err[..., 0], m, err[..., 0])
    want = R.least_squares_estimation_error(n, d, sigma2)
    se = delta2.std() / np.sqrt(reps)
    assert abs(delta2.mean() - want) < 4 * se, (delta2.mean(), want, se)
    assert want == pytest.approx(sigma2 * (1 / n + (1 + 1 / n) * d / (n - d - 2)))
    for bad, match in [((5, 3), "n > d"), ((0, 1), "n"), ((20, 2, -1.0), "sigma2")]:
        with pytest.raises(ValueError, match=match):
            R.least_squares_estimation_error(*bad)


def _fake_features(n: int = 300, seed: int = 0) -> dict:
    rng = np.random.default_rng(seed)
    strong = rng.normal(size=(n, 6))
    gold = (strong[:, 0] + rng.normal(size=n) > 0).astype(float)
    return {
        "texts": [str(i) for i in range(n)],
        "gold": gold,
        "s": strong,
        "w": strong[:, :2] + rng.normal(size=(n, 2)),
    }


FAKE_GRID = SquaredLossGrid(
    text_n=300, text_test=100, text_weak_train=80, text_train=120, text_weaks=("w",), text_planted=1
)


def test_text_splits_are_disjoint_fixed_test_and_seeded():
    test, teacher, student = R.text_splits(300, FAKE_GRID, 0)
    assert list(test) == list(range(100)) and len(teacher) == 80 and len(student) == 120
    assert not set(teacher) & set(student) and min(teacher.min(), student.min()) >= 100
    t1, w1, s1 = R.text_splits(300, FAKE_GRID, 1)
    assert list(t1) == list(test) and set(s1) != set(student)
    again = R.text_splits(300, FAKE_GRID, 1)
    assert all((a == b).all() for a, b in zip(again, (t1, w1, s1), strict=True))
    with pytest.raises(ValueError, match="text_weak_train"):
        R.text_splits(250, FAKE_GRID, 0)


def test_text_regressions_on_fake_features(sandbox, monkeypatch):
    fake = _fake_features()
    calls = []
    monkeypatch.setattr(R, "text_features", lambda ds, n_, models: calls.append(1) or fake)
    table, per, timing = R.text_regressions("sarcasm", FAKE_GRID, strong="s", seeds=(0, 1))
    assert set(table.task) == {"gold", "planted-gold", "planted-random-1"} and len(table) == 6
    planted = table[table.task != "gold"]
    # on the student's own texts the theorem is Pythagoras for a linear class: exact
    assert (planted.train_slack.abs() <= 1e-9).all() and table[
        table.task == "gold"
    ].train_slack.isna().all()
    assert (table.strong_dim == 6).all() and (table.estimation > 0).all()
    for (task, weak), d in per.items():
        rows = table[(table.task == task) & (table.weak == weak)].sort_values("seed")
        np.testing.assert_allclose(
            d["gap"].mean(1), (rows.gain - rows.misfit).to_numpy(), atol=1e-12
        )
        np.testing.assert_allclose(d["misfit"].mean(1), rows.misfit.to_numpy(), atol=1e-12)
        assert d["gap"].shape == (2, 100)
    # the student's estimation error, recomputed from its split: Gaussian-design formula
    _, teacher, student = R.text_splits(300, FAKE_GRID, 0)
    y = fake["gold"]
    w_pred = R.ridge_fit(fake["w"][teacher], y[teacher], FAKE_GRID.weak_ridge).predict(fake["w"])
    coef = R.lstsq_fit(fake["s"][student], w_pred[student])
    resid = w_pred[student] - np.c_[fake["s"][student], np.ones(120)] @ coef
    want = R.least_squares_estimation_error(120, 6, float(resid @ resid) / (120 - 7))
    row = table[(table.task == "gold") & (table.seed == 0)].iloc[0]
    assert row.estimation == pytest.approx(want)
    # the teacher is fitted on its own texts only: its test error is that fit's
    assert row.err_weak == pytest.approx(float(np.mean((w_pred[:100] - y[:100]) ** 2)))
    assert not set(teacher) & set(student)
    # cached: read back equal, and a changed text setting misses
    again, per2, timing2 = R.text_regressions("sarcasm", FAKE_GRID, strong="s", seeds=(0, 1))
    pd.testing.assert_frame_equal(table, again)
    assert timing2.cached and not timing.cached and len(calls) == 1
    np.testing.assert_array_equal(per2["gold", "w"]["gap"], per["gold", "w"]["gap"])
    R.text_regressions(
        "sarcasm", dataclasses.replace(FAKE_GRID, weak_ridge=2.0), strong="s", seeds=(0, 1)
    )
    assert len(calls) == 2
    with pytest.raises(ValueError, match="text_weak_train"):
        R.text_regressions(
            "sarcasm", dataclasses.replace(FAKE_GRID, text_train=150), strong="s", seeds=(0,)
        )
    with pytest.raises(ValueError, match="seeds"):
        R.text_regressions("sarcasm", FAKE_GRID, strong="s", seeds=(0, 0))
