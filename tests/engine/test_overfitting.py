"""Chapter 4's over-fitting model (:mod:`w2s_utils.engine.overfitting`) and the analysis of curves
held as arrays (:func:`w2s_utils.analysis.step_intervals`, :func:`compare_selected`,
:func:`crossfit_best_steps`).

Truths checked against independent computations: the interpolant against ``numpy.linalg.lstsq``'s
minimum-norm solution; gradient descent replayed in plain NumPy for one seed (kernel form and
weight form); the proposition's rate ``eps_train(t) <= |w_dagger|^2 / (2 lr t)``; the misfit floor
against Monte Carlo over the hidden variable; the identity of the misfit floor's proposition on
random instances; the population student against a brute-force minimisation by Monte Carlo and
chapter 6's forward-KL identity; intervals against direct calls of the seeds x test interval; the
cross-fitted selection against brute force and its unbiasedness on pure noise.
"""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from w2s_utils import analysis, metrics
from w2s_utils.engine import overfitting as of

SMALL = of.OverfittingSetting(
    n=20, bulk_dim=40, signal_dim=3, n_heldout=10, n_gold=10, n_test=300, steps=400, n_evals=12
)


def _sigmoid(u):
    return 1.0 / (1.0 + np.exp(-u))


def _bern_kl(p, q):
    return p * np.log(p / q) + (1 - p) * np.log((1 - p) / (1 - q))


def _replay(setting: of.OverfittingSetting, seed: int, lr: float, steps: int) -> np.ndarray:
    """Plain NumPy gradient descent in weight space for one seed: eps_train after each step."""
    d = of.draw_seed(setting, seed)
    phi, logit_q = d["phi"][: setting.n], d["teacher"][: setting.n]
    q = _sigmoid(logit_q)
    w = np.zeros(phi.shape[1])
    out = []
    for _ in range(steps):
        w -= lr / setting.n * phi.T @ (_sigmoid(phi @ w) - q)
        out.append(_bern_kl(q, _sigmoid(phi @ w)).mean())
    return np.array(out)


# ------------------------------------------------------------------------------ the model


def test_interpolant_is_the_minimum_norm_solution(rng):
    for n, p in ((5, 12), (30, 31), (10, 10)):
        phi = rng.standard_normal((n, p))
        y = rng.standard_normal(n)
        w = of.interpolant_weights(phi, y).numpy()
        np.testing.assert_allclose(phi @ w, y, atol=1e-9)
        ref = np.linalg.lstsq(phi, y, rcond=None)[0]  # minimum-norm least-squares solution
        np.testing.assert_allclose(w, ref, atol=1e-8)
    with pytest.raises(ValueError, match="n = 4 rows > p = 3"):
        of.interpolant_weights(rng.standard_normal((4, 3)), rng.standard_normal(4))
    with pytest.raises(ValueError, match="teacher_logit"):
        of.interpolant_weights(rng.standard_normal((4, 6)), rng.standard_normal(5))


def test_seed_draws_are_row_by_row():
    """A setting with the held-out inputs moved into training trains on exactly those inputs."""
    a = of.draw_seed(SMALL, 3)
    b = of.draw_seed(replace(SMALL, n=SMALL.n + SMALL.n_heldout, n_heldout=0), 3)
    m = SMALL.n + SMALL.n_heldout
    for k in ("phi", "truth", "teacher"):
        np.testing.assert_array_equal(a[k][:m], b[k][:m])
    assert a["phi"].shape == (m + SMALL.n_gold, SMALL.n_params)
    # the bulk features have total variance bulk_var, the signal ones variance 1 each
    big = of.draw_seed(replace(SMALL, n=4000, n_heldout=0, n_gold=0), 0)["phi"]
    assert big[:, SMALL.signal_dim :].var(0).sum() == pytest.approx(SMALL.bulk_var, rel=0.05)
    assert big[:, : SMALL.signal_dim].var(0) == pytest.approx(np.ones(SMALL.signal_dim), rel=0.1)
    assert set(np.unique(a["gold"])) <= {0.0, 1.0}


@pytest.mark.parametrize("n", [20, 60])  # kernel form (n <= p = 43) and weight form (n > p)
def test_gradient_descent_replayed_by_hand(sandbox, n):
    s = replace(SMALL, n=n)
    c = of.overfitting_curves(s, seeds=2)
    assert not c.cached and c.gain.shape == (2, len(c.steps), s.n_test)
    hand = _replay(s, 1, c.lr, s.steps)
    np.testing.assert_allclose(c.eps_train[1], hand[c.steps - 1], rtol=1e-7, atol=1e-12)
    again = of.overfitting_curves(s, seeds=2)
    assert again.cached
    np.testing.assert_array_equal(again.gain, c.gain)
    assert again.train_seconds == c.train_seconds


def test_training_misfit_obeys_the_rate_and_the_limit_interpolates(sandbox):
    s = replace(SMALL, steps=3000, n_evals=20)
    c = of.overfitting_curves(s, seeds=3)
    # proposition, part 2: eps_train(t) <= |w_dagger|^2 / (2 lr t)
    bound = c.interpolant_norm2[:, None] / (2 * c.lr * c.steps[None, :])
    assert (c.eps_train <= bound * (1 + 1e-9)).all()
    # the lr is 1/L for the curvature bound 1/4: 4 / lambda_max over the seeds
    phis = [of.draw_seed(s, seed)["phi"][: s.n] for seed in range(3)]
    lam = max(np.linalg.eigvalsh(phi.T @ phi / s.n)[-1] for phi in phis)
    assert c.lr == pytest.approx(4 / lam, rel=1e-10)
    # part 3: gradient descent converges to the interpolant, replayed by hand on an instance
    # with moderate teacher probabilities (the convergence is slow where they are extreme)
    mild = replace(s, signal=1.0, teacher_noise=0.5)
    d = of.draw_seed(mild, 0)
    phi, logit_q = d["phi"][: s.n], d["teacher"][: s.n]
    w_dag = np.linalg.lstsq(phi, logit_q, rcond=None)[0]  # the minimum-norm solution
    w = np.zeros(s.n_params)
    for _ in range(5000):
        w -= c.lr / s.n * phi.T @ (_sigmoid(phi @ w) - _sigmoid(logit_q))
    assert np.linalg.norm(w - w_dag) < 1e-6 * np.linalg.norm(w_dag)
    # the leak factor is |K^-1 k(x)|^2 averaged over the test inputs
    assert (c.interpolant_leak > 0).all()


def test_interpolant_leak_is_the_noise_variance(sandbox):
    """Part 4: the interpolant's test logit carries rho h with variance rho^2 |K^-1 k(x)|^2;
    redraw only the hidden h of the training inputs and compare the logits' variance."""
    s = replace(SMALL, n_test=50)
    c = of.overfitting_curves(s, seeds=1)
    d = of.draw_seed(s, 0)
    phi, a = d["phi"][: s.n], d["truth"][: s.n]
    test = of.draw_seed(replace(s, n=200, n_heldout=0, n_gold=0), 99)["phi"][:50]
    rng = np.random.default_rng(0)
    draws = a + s.teacher_noise * rng.standard_normal((4000, s.n))  # teacher logits, h redrawn
    batch = np.repeat(phi[None], len(draws), axis=0)  # one system per draw, solved as a batch
    logits = of.interpolant_weights(batch, draws).numpy() @ test.T
    weights = np.linalg.solve(phi @ phi.T, phi @ test.T)  # K^-1 k(x), [n, 50]
    predicted = s.teacher_noise**2 * (weights**2).sum(0)
    np.testing.assert_allclose(logits.var(0), predicted, rtol=0.1)
    assert c.interpolant_leak.shape == (1,)


@pytest.mark.slow
def test_misfit_floor_against_monte_carlo(sandbox):
    s = replace(SMALL, n_test=1000)
    c = of.overfitting_curves(s, seeds=1)
    test = of.draw_seed(replace(s, n=1000, n_heldout=0, n_gold=0), 7)  # same law as the test set
    a = test["truth"]
    h = np.random.default_rng(1).standard_normal((5000, 1))
    fbar = _sigmoid(s.teacher_scale * a + s.teacher_noise * h).mean(0)  # E_h F_w, Monte Carlo
    floor_mc = _bern_kl(_sigmoid(test["teacher"]), fbar).mean()
    assert c.eps_floor == pytest.approx(floor_mc, rel=0.1)  # other inputs of the same law
    # no student that sees only phi gets below the floor on new inputs (in expectation; on a
    # finite test set up to the sampling noise of the cross term, hence the margin)
    assert (c.eps_test >= c.eps_floor * 0.8).all()


@given(seed=st.integers(0, 10_000), rho=st.floats(0.1, 3.0), c=st.floats(-2.0, 2.0))
def test_misfit_floor_identity_on_random_instances(seed, rho, c):
    """Proposition: E KL(F_w || F) = E KL(F_w || Fbar) + E KL(Fbar || F) for F a function of
    phi, exactly for the discrete law of h given by quadrature nodes."""
    rng = np.random.default_rng(seed)
    a = rng.normal(0, 3, size=7)
    nodes, weights = np.polynomial.hermite_e.hermegauss(20)
    weights = weights / weights.sum()
    fw = _sigmoid(c * a[:, None] + rho * nodes[None, :])  # [inputs, nodes]
    fbar = fw @ weights
    f = _sigmoid(rng.normal(size=7))  # any student that sees only a
    lhs = (_bern_kl(fw, f[:, None]) @ weights).mean()
    rhs = (_bern_kl(fw, fbar[:, None]) @ weights).mean() + _bern_kl(fbar, f).mean()
    assert lhs == pytest.approx(rhs, rel=1e-10, abs=1e-12)


@pytest.mark.slow
def test_population_student_against_monte_carlo():
    s = of.OverfittingSetting()
    pop = of.population_projection(s)
    rng = np.random.default_rng(3)
    a = rng.standard_normal(200_000) * s.signal
    t = s.teacher_scale * a + s.teacher_noise * rng.standard_normal(a.size)
    kappas = np.linspace(pop.kappa - 0.05, pop.kappa + 0.05, 21)
    loss = [_bern_kl(_sigmoid(t), _sigmoid(k * a)).mean() for k in kappas]
    assert kappas[int(np.argmin(loss))] == pytest.approx(pop.kappa, abs=0.01)
    assert pop.err_weak == pytest.approx(_bern_kl(_sigmoid(a), _sigmoid(t)).mean(), rel=0.01)
    assert pop.gain == pytest.approx(
        pop.err_weak - _bern_kl(_sigmoid(a), _sigmoid(pop.kappa * a)).mean(), abs=2e-3
    )
    # chapter 6's forward-KL identity: the class holds F*, so the turned-around errors differ
    # by exactly the misfit
    assert abs(pop.identity_residual) < 1e-10
    assert pop.eps >= pop.eps_floor - 1e-12 and pop.gain > 0


@pytest.mark.slow
def test_population_gain_on_the_test_inputs(sandbox):
    """The stored per-input gain of the population student averages to its population gain."""
    s = replace(SMALL, n_test=4000, steps=2)
    c = of.overfitting_curves(s, seeds=1)
    pop = of.population_projection(s)
    assert c.population_gain.shape == (4000,)
    se = c.population_gain.std() / math.sqrt(4000)
    assert abs(c.population_gain.mean() - pop.gain) < 4 * se
    # a teacher without hidden noise is its own projection when c = 1 (nothing to gain)
    clean = of.population_projection(replace(s, teacher_noise=0.0))
    assert clean.kappa == pytest.approx(1.0, abs=1e-8) and abs(clean.gain) < 1e-10


# ------------------------------------------------------------------------ selection rules


def _curves(gain, eps_heldout, gold_ce, steps=None) -> of.OverfittingCurves:
    gain = np.asarray(gain, dtype=np.float32)
    s_, t_, n_ = gain.shape
    zeros = np.zeros((s_, t_))
    return of.OverfittingCurves(
        setting=SMALL, seeds=tuple(range(s_)), steps=np.arange(1, t_ + 1) if steps is None else
        steps, gain=gain, acc_gain=gain, eps_train=zeros, eps_heldout=np.asarray(eps_heldout),
        eps_test=zeros, gold_ce=np.asarray(gold_ce), err_weak=np.ones(n_), eps_floor=0.1,
        population_gain=np.zeros(n_),
        interpolant_gain=None, interpolant_norm2=None, interpolant_leak=None, lr=1.0,
    )  # fmt: skip


def test_select_steps_rules():
    gain = np.zeros((2, 4, 3))
    gain[0, 2] = 1.0
    gain[1, 1] = 2.0
    c = _curves(gain, [[3, 2, 1, 4], [1, 1, 2, 0]], [[5, 1, 2, 3], [0, 0, 0, 0]])
    np.testing.assert_array_equal(of.select_steps(c, "final"), [3, 3])
    np.testing.assert_array_equal(of.select_steps(c, "hindsight"), [2, 1])
    np.testing.assert_array_equal(of.select_steps(c, "weak_early_stop"), [2, 3])
    np.testing.assert_array_equal(of.select_steps(c, "gold_oracle"), [1, 0])  # ties: earliest
    np.testing.assert_array_equal(c.at([2, 1]), [[1, 1, 1], [2, 2, 2]])
    with pytest.raises(ValueError, match="rule"):
        of.select_steps(c, "best")
    with pytest.raises(ValueError, match="index"):
        c.at([0, 4])
    with pytest.raises(ValueError, match="quantity"):
        c.at([0, 0], "eps")
    nan = _curves(gain, np.full((2, 4), np.nan), np.full((2, 4), np.nan))
    with pytest.raises(ValueError, match="n_heldout"):
        of.select_steps(nan, "weak_early_stop")
    with pytest.raises(ValueError, match="n_gold"):
        of.select_steps(nan, "gold_oracle")


def test_settings_are_validated():
    with pytest.raises(ValueError, match="OverfittingSetting.n"):
        of.OverfittingSetting(n=1)
    with pytest.raises(ValueError, match="aux_alpha"):
        of.OverfittingSetting(aux_alpha=1.5)
    with pytest.raises(ValueError, match="bulk_var"):
        of.OverfittingSetting(bulk_var=0.0)
    with pytest.raises(ValueError, match="seeds"):
        of.overfitting_curves(SMALL, seeds="3")


def test_confidence_loss_changes_training_and_has_no_interpolant(sandbox):
    plain = of.overfitting_curves(SMALL, seeds=2)
    aux = of.overfitting_curves(SMALL, seeds=2, aux_alpha=0.5)
    assert aux.interpolant_gain is None and plain.interpolant_gain is not None
    # alpha is 0 at the first step: the first evaluation is the plain student's
    np.testing.assert_allclose(aux.gain[:, 0], plain.gain[:, 0], atol=1e-12)
    # later it fits a mixed target, not the teacher: it stays away from it on the training inputs
    assert aux.eps_train[:, -1].min() > plain.eps_train[:, -1].max()


# ---------------------------------------------------------- analysis of curves held as arrays


def test_step_intervals_and_compare_selected_match_the_interval(rng):
    x = rng.normal(size=(5, 4, 30))
    band = analysis.step_intervals(x, [1, 2, 4, 8])
    for j in range(4):
        iv = metrics.seeds_and_test_interval(x[:, j])
        assert (band["value"][j], band["value_lo"][j], band["value_hi"][j]) == pytest.approx(
            (iv.point, iv.lo, iv.hi)
        )
    assert list(band["step"]) == [1, 2, 4, 8] and set(band["n_seeds"]) == {5}
    values = {"a": x[:, 0], "b": x[:, 1] + 1.0}
    t = analysis.compare_selected(values, "a").set_index("method")
    d = metrics.seeds_and_test_interval(x[:, 1] + 1.0 - x[:, 0])
    assert (t.loc["b", "diff"], t.loc["b", "diff_lo"]) == pytest.approx((d.point, d.lo))
    assert t.loc["a", "diff"] == 0.0 and t.loc["b", "value"] == pytest.approx(x[:, 1].mean() + 1)
    with pytest.raises(ValueError, match="reference"):
        analysis.compare_selected(values, "c")
    with pytest.raises(ValueError, match="differ in shape"):
        analysis.compare_selected({"a": x[:, 0], "b": x[:3, 0]}, "a")
    with pytest.raises(ValueError, match="per_example"):
        analysis.step_intervals(x[0], [1, 2, 4, 8])
    with pytest.raises(ValueError, match="steps"):
        analysis.step_intervals(x, [1, 2])


def test_crossfit_best_steps_by_brute_force(rng):
    for _ in range(20):
        t, n, folds = int(rng.integers(2, 6)), int(rng.integers(4, 30)), int(rng.integers(2, 4))
        scores = rng.random((t, n))
        steps = analysis.crossfit_best_steps(scores, folds=folds)
        for i in range(n):
            others = [j for j in range(n) if j % folds != i % folds]
            assert steps[i] == int(np.argmax(scores[:, others].mean(1)))
    with pytest.raises(ValueError, match="folds"):
        analysis.crossfit_best_steps(np.zeros((3, 4)), folds=5)


def test_crossfit_removes_the_winners_curse():
    """On pure noise every step is equally good (true accuracy 0.5): selecting on the scored
    examples is biased upwards, cross-fitting is not."""
    rng = np.random.default_rng(0)
    hindsight, crossfit = [], []
    for _ in range(400):
        scores = (rng.random((10, 200)) < 0.5).astype(float)
        hindsight.append(scores.mean(1).max())
        steps = analysis.crossfit_best_steps(scores)
        crossfit.append(scores[steps, np.arange(200)].mean())
    se = 0.5 / math.sqrt(200 * 400)
    assert np.mean(hindsight) > 0.5 + 20 * se
    assert abs(np.mean(crossfit) - 0.5) < 4 * se
