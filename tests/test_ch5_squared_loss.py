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

from w2s_utils.book import squared_loss as book5
from w2s_utils.engine import regression as R
from w2s_utils.engine.presets import SquaredLossGrid, get_preset
from w2s_utils.theory import squared_loss as S

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
    r = S.squared_misfit_gain(T(f_star), T(weak), student, tol=1e-7)
    assert r.holds, (seed, cls, r)
    if cls == "linear":  # a subspace: Pythagoras, equality
        assert abs(r.slack) <= 1e-8 * max(1.0, r.err_weak)


@given(st.integers(0, 10_000), st.sampled_from(["linear", "box", "cone"]))
def test_agnostic_bound_holds_off_the_class_and_its_identity(seed, cls):
    x, f_star, weak = _convex_instance(seed, cls, realizable=False)
    student = S.project_onto_class(x, weak, cls).predictions
    best = S.project_onto_class(x, f_star, cls).predictions
    r = S.squared_misfit_gain_agnostic(T(f_star), T(weak), student, best, tol=1e-7)
    assert r.holds, (seed, cls, r)
    # exact identity: gain - misfit = projection term (>= 0) + cross term
    assert r.gain - r.misfit_sq == pytest.approx(r.projection_term + r.cross, abs=1e-9, rel=1e-9)
    assert r.projection_term >= -1e-7 * max(1.0, r.err_weak)
    if cls == "linear":
        assert abs(r.projection_term) <= 1e-8 * max(1.0, r.err_weak)


def test_agnostic_bound_reduces_to_the_realizable_one_and_is_attained():
    x, f_star, weak = _convex_instance(3, "linear", realizable=True)
    student = S.project_onto_class(x, weak).predictions
    a = S.squared_misfit_gain_agnostic(T(f_star), T(weak), student, T(f_star))
    b = S.squared_misfit_gain(T(f_star), T(weak), student)
    assert a.approx == 0 and a.lhs == pytest.approx(b.misfit_sq) and a.gain == pytest.approx(b.gain)
    # attained: class = span{e1} on two points, F* = (0, 1), weak = (0, 2): gain 0 = rhs
    feats, fs, w = np.array([[1.0], [0.0]]), np.array([0.0, 1.0]), np.array([0.0, 2.0])
    s = S.project_onto_class(feats, w).predictions
    g = S.project_onto_class(feats, fs).predictions
    r = S.squared_misfit_gain_agnostic(T(fs), T(w), s, g)
    assert (r.gain, r.misfit_sq, r.approx) == pytest.approx((0.0, 2.0, 0.5))
    assert r.lhs == pytest.approx(0.0, abs=1e-12) and r.rhs == r.gain and r.holds
    assert not S.squared_misfit_gain(T(fs), T(w), s).holds  # the realizable form fails here


def test_nonconvex_class_fixed_counterexample():
    # union of the two axes on two points; F* = (1, 0) is in it; weak (0.4, 0.6) projects onto
    # the other axis: gain -0.32 < misfit 0.08
    feats, fs, w = np.eye(2), np.array([1.0, 0.0]), np.array([0.4, 0.6])
    p = S.project_onto_class(feats, w, "one_sparse")
    assert torch.allclose(p.predictions, torch.tensor([0.0, 0.6], dtype=torch.float64))
    r = S.squared_misfit_gain(T(fs), T(w), p.predictions)
    assert (r.gain, r.misfit_sq) == pytest.approx((-0.32, 0.08)) and not r.holds


def test_found_counterexamples_are_fixed_and_real():
    nr = S.find_squared_counterexample("nonrealizable", seed=0)
    nc = S.find_squared_counterexample("nonconvex", seed=0)
    for t in (nr, nc):
        assert t.violated and t.violation > 0
        again = S.squared_misfit_gain(t.f_star, t.weak, t.student)
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
    r = S.squared_misfit_gain_agnostic(f, f + 1, f, f)
    assert r.as_dict()["result"] == r.NAME and "holds" in str(r)
    with pytest.raises(dataclasses.FrozenInstanceError):
        r.holds = False  # type: ignore[misc]
    with pytest.raises(ValueError, match="best"):
        S.squared_misfit_gain_agnostic(f, f, f, f[:3])


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
    table, sec = R.charikar_synthetic(TINY)
    assert len(table) == 2 * TINY.n_transfer and set(table.strong) == {"learned", "true"}
    true = table[table.strong == "true"]
    # h_s = h* contains F*: on the student's own sample gain = misfit exactly (Pythagoras)
    assert (true.train_slack.abs() <= 1e-8 * true.var_target).all()
    np.testing.assert_allclose(table.gain, table.err_weak - table.err_student)
    again, sec2 = R.charikar_synthetic(TINY)
    pd.testing.assert_frame_equal(table, again)
    assert sec2 == sec and sec["total"] >= sec["representations"] > 0


def test_text_regressions_planted_tasks_are_exact_in_sample(monkeypatch):
    rng = np.random.default_rng(0)
    n = 300
    strong = rng.normal(size=(n, 6))
    gold = (strong[:, 0] + rng.normal(size=n) > 0).astype(float)
    fake = {
        "texts": [str(i) for i in range(n)],
        "gold": gold,
        "s": strong,
        "w": strong[:, :2] + rng.normal(size=(n, 2)),
    }
    monkeypatch.setattr(R, "text_features", lambda ds, n_, models: fake)
    grid = SquaredLossGrid(
        text_n=n, text_test=100, text_train=150, text_weaks=("w",), text_planted=1
    )
    table, per = R.text_regressions("fake", grid, strong="s", seeds=(0, 1))
    assert set(table.task) == {"gold", "planted-gold", "planted-random-1"} and len(table) == 6
    planted = table[table.task != "gold"]
    assert (planted.train_slack.abs() <= 1e-9).all()
    for (task, weak), d in per.items():
        rows = table[(table.task == task) & (table.weak == weak)]
        np.testing.assert_allclose(
            d["gap"].mean(1), (rows.gain - rows.misfit).to_numpy(), atol=1e-12
        )
        assert d["gap"].shape == (2, 100)
    with pytest.raises(ValueError, match="text_train"):
        R.text_regressions(
            "fake",
            SquaredLossGrid(text_n=n, text_test=200, text_train=150, text_weaks=("w",)),
            strong="s",
            seeds=(0,),
        )


def test_presets_fill_the_squared_loss_grid():
    ci, paper = get_preset("ci").squared_loss, get_preset("paper").squared_loss
    assert ci.n_transfer == 100 and ci.target_layers == 5 and ci.d_in == 8 and ci.width == 16
    assert paper.rep_steps > ci.rep_steps and ci.text_train + ci.text_test <= ci.text_n


# --------------------------------------------------------------------------- book helpers
def test_reference_extrapolation_and_summaries():
    r = book5.reference_extrapolation(10.0, {"steps": 100, "seconds": 2.0, "full_steps": 1000})
    assert r["seconds_per_step"] == pytest.approx(0.02) and r["full_seconds"] == pytest.approx(20)
    assert r["ratio"] == pytest.approx(2.0)
    with pytest.raises(ValueError, match="our_seconds"):
        book5.reference_extrapolation(0.0)
    tab = pd.DataFrame(
        dict(
            strong=["a", "a"],
            task=[0, 1],
            gain=[2.0, 1.0],
            misfit=[1.0, 2.0],
            var_target=[4.0, 4.0],
            err_weak=[0.8, 0.8],
            err_ceiling=[0.4, 0.4],
            train_slack=[0.0, -0.4],
        )
    )
    s = book5.synthetic_summary(tab)
    assert s.loc["a", "above"] == 0.5 and s.loc["a", "train_rel_max"] == pytest.approx(0.1)
    gap = np.array([[1.0, -1.0, 3.0], [1.0, 1.0, 1.0]])
    txt = pd.DataFrame(
        dict(
            dataset="d",
            task="t",
            weak="w",
            seed=[0, 1],
            misfit=[1.0, 1.0],
            gain=[2.0, 2.0],
            train_slack=[0.0, 0.0],
        )
    )
    out = book5.text_summary(txt, {("d", "t", "w"): {"gap": gap}}, n_resamples=200)
    assert out.gap[0] == pytest.approx(1.0) and out.gap_lo[0] <= 1.0 <= out.gap_hi[0]


def test_gain_misfit_figure_draws_the_diagonal():
    import matplotlib

    matplotlib.use("Agg")
    fig = book5.gain_misfit_figure(
        [("p", [("a", [0.1, 0.2], [0.2, 0.1])]), ("q", [("b", [1], [1])])]
    )
    ax = fig.axes[0]
    assert len(ax.collections) == 1 and ax.lines[0].get_linestyle() == "--"
    x, y = ax.lines[0].get_data()
    np.testing.assert_allclose(x, y)
