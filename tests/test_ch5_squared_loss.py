"""Chapter 5: misfit-gain under squared loss: theory, projections, engine, book helpers."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from scipy.optimize import lsq_linear, nnls

from w2s_utils.book import ch5_squared_loss as ch
from w2s_utils.engine import regression as R
from w2s_utils.engine.presets import SquaredLossGrid, get_preset
from w2s_utils.metrics import bootstrap_ci, seeds_and_test_interval
from w2s_utils.theory import squared_loss as S
from w2s_utils.theory import sweep

T = torch.from_numpy


def _convex_instance(seed: int, cls: str, realizable: bool):
    rng = np.random.default_rng(seed)
    n, d = int(rng.integers(4, 30)), int(rng.integers(1, 6))
    x = rng.normal(size=(n, d))
    b = {
        "linear": rng.normal(size=d),
        "box": rng.uniform(-1, 1, d),
        "cone": np.abs(rng.normal(size=d)),
    }
    f_star = x @ b[cls] + (0.0 if realizable else rng.normal(scale=2.0, size=n))
    weak = f_star + rng.normal(scale=float(10 ** rng.uniform(-1, 0.5)), size=n)
    return x, f_star, weak


# --------------------------------------------------------------------------- the theorem
@given(st.integers(0, 10_000), st.sampled_from(["linear", "box", "cone"]))
def test_realizable_convex_classes_satisfy_gain_ge_misfit(seed, cls):
    x, f_star, weak = _convex_instance(seed, cls, realizable=True)
    student = S.project_onto_class(x, weak, cls).predictions
    r = S.squared_misfit_gain(T(weak), student, f_star=T(f_star), tol=1e-7)
    assert r.holds, (seed, cls, r)
    if cls == "linear":  # a subspace: Pythagoras, equality
        assert abs(r.slack) <= 1e-8 * max(1.0, r.err_weak)


@given(st.integers(0, 10_000), st.sampled_from(["linear", "box", "cone"]))
def test_agnostic_bound_holds_off_the_class_and_its_identity(seed, cls):
    x, f_star, weak = _convex_instance(seed, cls, realizable=False)
    student = S.project_onto_class(x, weak, cls).predictions
    best = S.project_onto_class(x, f_star, cls).predictions
    r = S.squared_misfit_gain_agnostic(T(weak), student, best, f_star=T(f_star), tol=1e-7)
    assert r.holds, (seed, cls, r)
    # exact identity: gain - misfit = projection term (>= 0) + cross term
    assert r.gain - r.misfit_sq == pytest.approx(r.projection_term + r.cross, abs=1e-9, rel=1e-9)
    assert r.projection_term >= -1e-7 * max(1.0, r.err_weak)
    if cls == "linear":
        assert abs(r.projection_term) <= 1e-8 * max(1.0, r.err_weak)


def test_agnostic_bound_reduces_to_the_realizable_one_and_is_attained():
    x, f_star, weak = _convex_instance(3, "linear", realizable=True)
    student = S.project_onto_class(x, weak).predictions
    a = S.squared_misfit_gain_agnostic(T(weak), student, T(f_star), f_star=T(f_star))
    b = S.squared_misfit_gain(T(weak), student, f_star=T(f_star))
    assert a.approx == 0 and a.lhs == pytest.approx(b.misfit_sq) and a.gain == pytest.approx(b.gain)
    # attained: class = span{e1} on two points, F* = (0, 1), weak = (0, 2): gain 0 = rhs
    feats, fs, w = np.array([[1.0], [0.0]]), np.array([0.0, 1.0]), np.array([0.0, 2.0])
    s = S.project_onto_class(feats, w).predictions
    g = S.project_onto_class(feats, fs).predictions
    r = S.squared_misfit_gain_agnostic(T(w), s, g, f_star=T(fs))
    assert (r.gain, r.misfit_sq, r.approx) == pytest.approx((0.0, 2.0, 0.5))
    assert r.lhs == pytest.approx(0.0, abs=1e-12) and r.rhs == r.gain and r.holds
    assert not S.squared_misfit_gain(T(w), s, f_star=T(fs)).holds  # the realizable form fails here


def test_nonconvex_class_fixed_counterexample():
    # union of the two axes on two points; F* = (1, 0) is in it; weak (0.4, 0.6) projects onto
    # the other axis: gain -0.32 < misfit 0.08
    feats, fs, w = np.eye(2), np.array([1.0, 0.0]), np.array([0.4, 0.6])
    p = S.project_onto_class(feats, w, "one_sparse")
    assert torch.allclose(p.predictions, torch.tensor([0.0, 0.6], dtype=torch.float64))
    r = S.squared_misfit_gain(T(w), p.predictions, f_star=T(fs))
    assert (r.gain, r.misfit_sq) == pytest.approx((-0.32, 0.08)) and not r.holds


def test_found_counterexamples_are_fixed_and_real():
    nr = S.find_squared_counterexample("nonrealizable", seed=0)
    nc = S.find_squared_counterexample("nonconvex", seed=0)
    for t in (nr, nc):
        assert t.violated and t.violation > 0
        again = S.squared_misfit_gain(t.weak, t.student, f_star=t.f_star)
        assert not again.holds and again.misfit_sq - again.gain == pytest.approx(t.violation)
    # seeded: the same search finds the same instance
    assert S.find_squared_counterexample("nonrealizable", seed=0).seed == nr.seed
    assert nc.cls == "one_sparse" and nr.cls == "linear"
    with pytest.raises(ValueError, match="theorem"):
        S.find_squared_counterexample("realizable")
    quiet = next(s for s in range(100) if not S.squared_trial("nonconvex", s).violated)
    with pytest.raises(RuntimeError, match="no nonconvex"):
        S.find_squared_counterexample("nonconvex", seed=quiet, max_tries=1)


@given(st.integers(0, 100_000))
def test_realizable_trials_never_violate(seed):
    t = S.squared_trial("realizable", seed)
    assert not t.violated, t.result


def test_trials_fail_at_some_rate_off_the_assumptions():
    for kind in ("nonrealizable", "nonconvex"):
        v = [S.squared_trial(kind, s).violated for s in range(200)]
        assert 0 < sum(v) < 200, kind
    with pytest.raises(ValueError, match="kind"):
        S.squared_trial("nope", 0)


# --------------------------------------------------------------------------- projections
def test_projections_against_scipy_and_brute_force(rng):
    x, y = rng.normal(size=(40, 4)), rng.normal(size=40)
    lin = S.project_onto_class(x, y)
    np.testing.assert_allclose(lin.coef.numpy(), np.linalg.lstsq(x, y, rcond=None)[0])
    cone = S.project_onto_class(x, y, "cone")
    np.testing.assert_allclose(cone.coef.numpy(), nnls(x, y)[0], atol=1e-10)
    box = S.project_onto_class(x, y, "box", radius=0.1)
    ref = lsq_linear(x, y, bounds=(-0.1, 0.1)).x
    np.testing.assert_allclose(box.coef.numpy(), ref, atol=1e-6)
    assert float(box.coef.abs().max()) <= 0.1 + 1e-12
    one = S.project_onto_class(x, y, "one_sparse")
    best = min(
        float(np.mean((x[:, [j]] @ np.linalg.lstsq(x[:, [j]], y, rcond=None)[0] - y) ** 2))
        for j in range(4)
    )
    assert one.objective == pytest.approx(best) and int((one.coef != 0).sum()) == 1
    for bad, match in [
        (lambda: S.project_onto_class(x, y, "ball"), "kind"),
        (lambda: S.project_onto_class(x, y[:5]), "features"),
        (lambda: S.project_onto_class(x, np.c_[y, y]), "targets"),
        (lambda: S.project_onto_class(x, y, "box", radius=0), "radius"),
    ]:
        with pytest.raises(ValueError, match=match):
            bad()


def test_agnostic_result_is_frozen_and_validates():
    f = torch.zeros(5, dtype=torch.float64)
    r = S.squared_misfit_gain_agnostic(f + 1, f, f, f_star=f)
    assert r.as_dict()["result"] == r.NAME and "holds" in str(r)
    with pytest.raises(dataclasses.FrozenInstanceError):
        r.holds = False  # type: ignore[misc]
    with pytest.raises(ValueError, match="best"):
        S.squared_misfit_gain_agnostic(f, f, f[:3], f_star=f)


# --------------------------------------------------------------------------- engine
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


def test_charikar_synthetic_tiny_is_cached_and_exact_when_realizable(tmp_path, monkeypatch):
    monkeypatch.setenv("W2S_CACHE_DIR", str(tmp_path))
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


# --------------------------------------------------------------------------- finite samples
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


@given(st.integers(0, 10_000))
def test_fresh_input_identity_of_the_proposition(seed):
    """Part 1 of the finite-sample proposition, exactly, with P the empirical distribution of a
    large pool: gain - misfit = -2 <delta, f0 - F*> - 2 ||delta||^2, misfit = ||r||^2 +
    ||delta||^2, for a student fitted on a small sub-sample."""
    rng = np.random.default_rng(seed)
    big, n, d = 400, int(rng.integers(6, 30)), int(rng.integers(1, 4))
    h = rng.normal(size=(big, d))
    phi = np.c_[h, np.ones(big)]
    f_star = phi @ rng.normal(size=d + 1)
    weak = f_star + rng.normal(size=big) * rng.uniform(0.1, 2) + np.sin(3 * h[:, 0])
    f0 = phi @ np.linalg.lstsq(phi, weak, rcond=None)[0]  # projection under P
    sample = rng.choice(big, n, replace=False)
    student = phi @ np.linalg.lstsq(phi[sample], weak[sample], rcond=None)[0]
    res = S.squared_misfit_gain(T(weak), T(student), f_star=T(f_star))
    delta, r = student - f0, weak - f0
    ip = lambda u, v: float(np.mean(u * v))  # noqa: E731
    assert res.gain - res.misfit_sq == pytest.approx(
        -2 * ip(delta, f0 - f_star) - 2 * ip(delta, delta), abs=1e-9
    )
    assert res.misfit_sq == pytest.approx(ip(r, r) + ip(delta, delta), abs=1e-9)


# --------------------------------------------------------------------------- real text
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


def test_text_regressions_on_fake_features(tmp_path, monkeypatch):
    monkeypatch.setenv("W2S_CACHE_DIR", str(tmp_path))
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


def test_presets_fill_the_squared_loss_grid():
    ci, paper = get_preset("ci").grid("squared_loss"), get_preset("paper").grid("squared_loss")
    assert ci.n_transfer == 100 and ci.target_layers == 5 and ci.d_in == 8 and ci.width == 16
    assert paper.rep_steps > ci.rep_steps and len(ci.seeds) >= 10 and ci.datasets
    for g in (ci, paper, get_preset("gpu").grid("squared_loss")):
        assert g.text_test + g.text_weak_train + g.text_train <= g.text_n


# --------------------------------------------------------------------------- book helpers
def test_reference_extrapolation():
    r = ch.reference_extrapolation(10.0, {"steps": 100, "seconds": 2.0, "full_steps": 1000})
    assert r["seconds_per_step"] == pytest.approx(0.02) and r["full_seconds"] == pytest.approx(20)
    assert r["ratio"] == pytest.approx(2.0)
    with pytest.raises(ValueError, match="our_seconds"):
        ch.reference_extrapolation(0.0)


def _table_text(t) -> str:
    return t.frame.to_string() + " ".join(t.frame.columns)


def test_trial_summary_from_sweeps():
    trials = {k: [S.squared_trial(k, s) for s in range(30)] for k in S.SQUARED_TRIAL_KINDS}
    plain = {
        k: sweep(
            S.squared_misfit_gain,
            (dict(weak=t.weak, student=t.student, f_star=t.f_star) for t in ts),
            30,
        )
        for k, ts in trials.items()
    }
    agn = {
        k: sweep(
            S.squared_misfit_gain_agnostic,
            (
                dict(
                    weak=t.weak,
                    student=t.student,
                    f_star=t.f_star,
                    best=S.project_onto_class(t.features, t.f_star, t.cls).predictions,
                )
                for t in ts
            ),
            30,
        )
        for k, ts in trials.items()
    }
    tab = ch.trial_table(plain, agn).set_index("kind")
    for k, ts in trials.items():  # the sweep's verdicts are squared_trial's own
        assert tab.loc[k, "plain_fails"] == sum(not t.result.holds for t in ts)
    assert tab.loc["realizable", "plain_fails"] == 0
    assert tab.loc["nonrealizable", "agnostic_holds"] == 30
    # where F* is in the class (approx = 0) the agnostic check is the plain one
    assert tab.loc["nonconvex", "agnostic_holds"] == tab.loc["nonconvex", "plain_holds"]
    view = _table_text(ch.trial_view(ch.trial_table(plain, agn)))
    assert "nan" not in view.lower() and "-0.0" not in view and "_" not in view
    glue = ch.trial_glue(ch.trial_table(plain, agn))
    assert glue["tr_fail_realizable"] == 0 and glue["tr_n_nonconvex"] == 30


def _synthetic_fake() -> pd.DataFrame:
    return pd.DataFrame(
        dict(
            strong=["learned"] * 3 + ["true"] * 3,
            task=[0, 1, 2] * 2,
            gain=[2.0, 1.0, 0.5, 1.0, 1.0, 1.0],
            misfit=[1.0, 2.0, 1.0, 1.0, 1.0, 1.0],
            var_target=[4.0] * 6,
            err_weak=[0.8] * 6,
            err_ceiling=[0.4, 0.4, 0.4, 0.0, 0.0, 0.0],
            train_slack=[0.0, -0.4, 0.0, 0.0, 0.0, 0.0],
        )
    )


def test_synthetic_summary_table_and_figure():
    import matplotlib

    matplotlib.use("Agg")
    tab = _synthetic_fake()
    ci = {
        s: bootstrap_ci(
            lambda r: r.quantile(0.5, dim=-1), (d.gain / d.misfit).to_numpy(), n_resamples=200
        )
        for s, d in tab.groupby("strong")
    }
    s = ch.synthetic_summary(tab, ci, 0.9)
    assert s.loc["learned", "ratio"] == pytest.approx(0.5) and s.loc["true", "ratio"] == 1.0
    assert s.loc["learned", "above"] == pytest.approx(1 / 3)
    assert s.loc["learned", "train_rel_max"] == pytest.approx(0.1)
    assert (s.predicted == 0.9).all()
    bad = {"learned": ci["true"], "true": ci["true"]}
    with pytest.raises(ValueError, match="ratio_ci"):
        ch.synthetic_summary(tab, bad, 0.9)
    text = _table_text(ch.synthetic_table(s))
    assert "nan" not in text.lower() and "_" not in text
    fig = ch.synthetic_figure(tab, 0.9)
    ax = fig.axes[0]
    assert [ln.get_ydata()[0] for ln in ax.lines] == [1.0, 0.9]


def test_text_summary_tables_and_glue():
    gap = np.array([[1.0, -1.0, 3.0], [1.0, 1.0, 1.0]])
    rows = []
    for task in ("gold", "planted-gold"):
        for seed in (0, 1):
            rows.append(
                dict(
                    dataset="d",
                    task=task,
                    weak="bow",
                    seed=seed,
                    misfit=1.0,
                    gain=2.0,
                    train_slack=np.nan if task == "gold" else -1e-17,
                    estimation=0.25,
                    cross=-0.00001,
                    projection_term=0.0,
                )
            )
    txt = pd.DataFrame(rows)
    iv = {
        ("d", t, "bow"): {
            "gap": seeds_and_test_interval(gap),
            "corrected": seeds_and_test_interval(gap + 0.5),
        }
        for t in ("gold", "planted-gold")
    }
    out = ch.text_summary(txt, iv)
    assert out.gap[0] == pytest.approx(1.0) and out.gap_lo[0] <= 1.0 <= out.gap_hi[0]
    assert out.corrected[0] == pytest.approx(1.5) and out.predicted[0] == pytest.approx(-0.5)
    planted, gold = ch.text_tables(out)
    for t in (planted, gold):
        text = _table_text(t)
        assert "nan" not in text.lower() and "-0.0000" not in text and "−0.0000" not in text
        assert "_" not in " ".join(t.frame.columns)
    assert "In-sample |gain − misfit|" in planted.frame.columns
    assert "In-sample |gain − misfit|" not in gold.frame.columns  # no NaN column for gold
    with pytest.raises(ValueError, match="intervals"):
        ch.text_summary(txt, {})
    g = ch.text_glue(out, ["d"], [0, 1])
    assert g["tx_cells_planted"] == 1 and g["tx_cells_gold"] == 1 and g["tx_seeds"] == 2


def test_gain_misfit_figure_draws_the_diagonal_and_the_prediction():
    import matplotlib

    matplotlib.use("Agg")
    fig = ch.gain_misfit_figure(
        [("p", [("a", [0.1, 0.2], [0.2, 0.1])]), ("q", [("b", [1], [1])])], predicted=[0.5, None]
    )
    ax = fig.axes[0]
    assert len(ax.collections) == 1 and ax.lines[0].get_linestyle() == "--"
    x, y = ax.lines[0].get_data()
    np.testing.assert_allclose(x, y)
    x2, y2 = ax.lines[1].get_data()
    np.testing.assert_allclose(np.asarray(y2), 0.5 * np.asarray(x2))
    assert len(fig.axes[1].lines) == 1 and fig.legends  # one legend, below the panels
    with pytest.raises(ValueError, match="predicted"):
        ch.gain_misfit_figure([("p", [("a", [0.1], [0.1])])], predicted=[0.5, 0.5])
