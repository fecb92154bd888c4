"""The KL extension in the theory layer: the three-point identity, the forward-KL mixture projection
against SLSQP, the reverse-KL and linear checks, the softmax-head results in both directions, and
the random trials with their second-order bounds."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from scipy.special import rel_entr

from tests._oracles import kl_rows, slsqp_mixture_kl
from w2s_utils import metrics, theory
from w2s_utils.theory.instances import (
    logit_linear_instance,
    mixture_instance,
)


@given(st.integers(0, 10_000), st.integers(2, 6))
def test_three_point_identity_against_scipy(seed, k):
    """The lemma behind the theorem: KL(r||q) = KL(r||p) + KL(p||q) + sum (r - p) log(p / q),
    with r allowed zeros (supp r in supp p in supp q)."""
    rng = np.random.default_rng(seed)
    r, p, q = rng.dirichlet(np.full(k, 0.7), size=3)
    r[rng.random(k) < 0.3] = 0.0  # r may have zeros (the truth can be a point mass)
    r = r / r.sum() if r.sum() > 0 else np.eye(k)[0]
    lhs = rel_entr(r, q).sum()
    rhs = rel_entr(r, p).sum() + rel_entr(p, q).sum() + ((r - p) * np.log(p / q)).sum()
    assert lhs == pytest.approx(rhs, abs=1e-12)


@pytest.mark.slow
def test_theorem_implies_misfit_at_most_teacher_error():
    """eps_rev <= gain <= Err(F_w) on every I-projection, and J(F_sw) <= J(F*) = Err(F_w)."""
    for seed in range(8):
        inst = mixture_instance(seed, n=60, n_classes=3, weak_noise=(None, 1.0)[seed % 2])
        out = theory.reverse_kl_mixture_check(inst)
        assert out.eps_rev <= out.gain + out.tol
        assert out.gain <= out.err_weak + 1e-12
        assert out.eps_rev <= float(kl_rows(inst.f_star.numpy(), inst.weak.numpy()).mean()) + 1e-12


def test_forward_kl_projection_mixture_is_optimal_against_slsqp():
    for seed in range(6):
        inst = mixture_instance(seed, n=40, n_classes=3, n_components=4)
        proj = theory.forward_kl_projection_mixture(inst.weak, inst.components)
        assert proj.converged and proj.gap <= 1e-10
        assert float(proj.weights.sum()) == pytest.approx(1.0) and proj.weights.min() >= 0
        want = float(metrics.kl(inst.weak, proj.student).mean())
        assert proj.objective == pytest.approx(want, abs=1e-12)
        assert proj.objective <= slsqp_mixture_kl(inst.weak, inst.components, "forward") + 1e-9


@pytest.mark.slow
@given(st.integers(0, 500))
def test_forward_kl_projection_mixture_beats_random_mixtures(seed):
    inst = mixture_instance(seed, n=25, n_classes=2 + seed % 3, n_components=3)
    proj = theory.forward_kl_projection_mixture(inst.weak, inst.components)
    rng = np.random.default_rng(seed)
    for a in rng.dirichlet(np.ones(3), size=5):
        other = torch.einsum("k,knc->nc", torch.as_tensor(a), inst.components)
        assert proj.objective <= float(metrics.kl(inst.weak, other).mean()) + proj.gap + 1e-12


def test_forward_kl_projection_mixture_recovers_a_teacher_inside_the_class():
    inst = mixture_instance(3, n=60, n_components=3)
    proj = theory.forward_kl_projection_mixture(inst.f_star, inst.components, tol=1e-12)
    assert proj.objective == pytest.approx(0.0, abs=1e-9)
    torch.testing.assert_close(proj.student, inst.f_star, atol=1e-5, rtol=0)


def test_forward_kl_projection_mixture_validation():
    inst = mixture_instance(0, n=10)
    with pytest.raises(ValueError, match="components"):
        theory.forward_kl_projection_mixture(inst.weak, inst.components[:, :5])
    with pytest.raises(ValueError, match="components"):
        theory.forward_kl_projection_mixture(inst.weak, torch.zeros_like(inst.components))


@pytest.mark.slow
def test_reverse_kl_mixture_check_matches_its_pieces_and_the_equality_case():
    interior = boundary = 0
    for seed in range(10):
        inst = mixture_instance(seed, n=80, n_classes=3, star_on_boundary=seed % 2 == 0)
        out = theory.reverse_kl_mixture_check(inst)
        proj = theory.i_projection_mixture(inst.weak, inst.components)
        s, w, f = proj.student.numpy(), inst.weak.numpy(), inst.f_star.numpy()
        assert out.eps_rev == pytest.approx(kl_rows(s, w).mean(), abs=1e-12)
        assert out.gain == pytest.approx(kl_rows(f, w).mean() - kl_rows(f, s).mean(), abs=1e-12)
        assert out.slack == pytest.approx(((f - s) * np.log(s / w)).sum(-1).mean(), abs=1e-10)
        assert out.min_weight == pytest.approx(float(proj.weights.min()))
        assert out.interior == (out.min_weight > 1e-9) and out.holds
        if out.interior:  # relative interior: equality
            interior += 1
            assert abs(out.slack) <= 1e-9
        else:
            boundary += 1
            assert out.slack >= -1e-9
    assert interior and boundary
    with pytest.raises(ValueError, match="MixtureInstance"):
        theory.reverse_kl_mixture_check(logit_linear_instance(0))


def test_forward_kl_linear_check_identity_and_validation():
    for seed in range(6):
        inst = logit_linear_instance(seed, n=40, n_classes=2 + seed % 3)
        out = theory.forward_kl_linear_check(inst)
        assert out.holds and abs(out.residual) <= 1e-9 and out.moment_residual <= 1e-9
        s = theory.forward_kl_projection_linear(inst.features, inst.weak).student.numpy()
        w, f = inst.weak.numpy(), inst.f_star.numpy()
        assert out.kl_w_star == pytest.approx(kl_rows(w, f).mean(), abs=1e-12)
        assert out.kl_w_star == pytest.approx(kl_rows(s, f).mean() + kl_rows(w, s).mean(), abs=1e-9)
    with pytest.raises(ValueError, match="LogitLinearInstance"):
        theory.forward_kl_linear_check(mixture_instance(0))


@given(st.integers(0, 10_000), st.integers(2, 5))
def test_forward_softmax_head_identity_for_any_predictors(seed, k):
    """gain - eps - rho = E g(F*, F_w) - E g(F*, F_sw) is an identity (scipy oracle), and its
    size is within the two direction-gap bounds."""
    rng = np.random.default_rng(seed)
    f, w, s = (rng.dirichlet(np.ones(k), size=7) for _ in range(3))
    out = theory.forward_kl_softmax_head(w, s, f_star=f)
    gain = kl_rows(f, w).mean() - kl_rows(f, s).mean()
    eps = kl_rows(w, s).mean()
    rho = kl_rows(w, f).mean() - kl_rows(s, f).mean() - eps
    gap_w = (kl_rows(f, w) - kl_rows(w, f)).mean()
    gap_s = (kl_rows(f, s) - kl_rows(s, f)).mean()
    assert out.gain == pytest.approx(gain, abs=1e-12)
    assert out.identity_residual == pytest.approx(rho, abs=1e-12)
    assert gain - eps - rho == pytest.approx(gap_w - gap_s, abs=1e-12)
    assert out.gap_weak == pytest.approx(gap_w, abs=1e-12)
    assert out.holds and out.lhs <= out.bound_weak + out.bound_student + 1e-12


@pytest.mark.slow
def test_forward_softmax_head_at_the_projection_misses_by_at_most_the_bound():
    for seed in range(12):
        inst = logit_linear_instance(seed, n=30, n_classes=2 + seed % 3, weak_noise=0.5)
        s = theory.forward_kl_projection_linear(inst.features, inst.weak).student
        out = theory.forward_kl_softmax_head(inst.weak, s, f_star=inst.f_star)
        assert abs(out.identity_residual) <= 1e-9
        assert abs(out.margin) <= out.bound + 1e-9


@pytest.mark.slow
def test_reverse_softmax_head_bound_holds_at_stationary_points():
    """The proposition on random realizable instances, the student a reverse-KL stationary point
    (independent margin and bound computed in numpy)."""
    checked = 0
    for seed in range(30):
        noise = (None, 1.0, 0.3)[seed % 3]
        inst = logit_linear_instance(seed, n=8 + seed % 12, d=2 + seed % 3, weak_noise=noise)
        proj = theory.reverse_kl_projection_linear(inst.features, inst.weak, seed=seed)
        if not proj.converged:
            continue
        checked += 1
        out = theory.reverse_kl_softmax_head(inst.weak, proj.student, f_star=inst.f_star)
        s, w, f = proj.student.numpy(), inst.weak.numpy(), inst.f_star.numpy()
        margin = ((f - s) * np.log(s / w)).sum(-1).mean()
        r = np.log(s / w)
        bound = ((r.max(-1) - r.min(-1)) * kl_rows(s, f)).mean()
        assert out.margin == pytest.approx(margin, abs=1e-10)
        assert out.bound == pytest.approx(bound, rel=1e-10)
        assert out.holds and abs(margin) <= bound + 1e-9
    assert checked >= 25


def test_reverse_softmax_head_bound_is_not_vacuous_off_its_hypotheses():
    """Away from a stationary point the bound can fail: a student 1% of the way from F* to a
    random distribution misses by a first-order amount, while the bound is of second order.
    ``holds`` reports a check, not a tautology."""
    fails = 0
    for seed in range(20):
        rng = np.random.default_rng(seed)
        f, w, u = (rng.dirichlet(np.ones(3), size=6) for _ in range(3))
        s = 0.99 * f + 0.01 * u
        fails += not theory.reverse_kl_softmax_head(w, s, f_star=f).holds
    assert fails >= 10
    with pytest.raises(ValueError, match="f_star"):
        theory.reverse_kl_softmax_head(w, s, f_star=None)


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["forward_kl", "reverse_kl_logit"])
def test_trials_carry_a_bound_that_holds(kind):
    for seed in range(10):
        for noise in (None, 0.3):
            out = theory.non_guarantee_trial(kind, seed, weak_noise=noise)
            assert out.weak_noise == noise
            if out.valid:
                assert math.isfinite(out.bound) and abs(out.violation) <= out.bound + 1e-9


@pytest.mark.slow
def test_mixture_trials_have_no_bound_and_the_new_kind_fails():
    assert "forward_kl_mixture" in theory.TRIAL_KINDS
    outs = [theory.non_guarantee_trial("forward_kl_mixture", s) for s in range(12)]
    valid = [o for o in outs if o.valid]
    assert len(valid) >= 10
    assert any(o.violated for o in valid)  # it does fail
    for o in valid:
        assert o.violation == pytest.approx(o.lhs - o.rhs)
        assert o.solver_residual <= 1e-10 and math.isnan(o.bound)
