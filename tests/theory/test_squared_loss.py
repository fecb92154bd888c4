"""Squared loss in the theory layer: gain >= misfit on realizable convex classes, the agnostic bound
and its identity, the non-convex counterexamples, random trials, projections against scipy and
brute force, and the fresh-input identity."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from scipy.optimize import lsq_linear, nnls

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
