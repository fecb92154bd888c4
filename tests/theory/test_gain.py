"""The theory layer in the gain convention: the error-aware interval against independent references
(root finding, a dual computed with numpy/scipy, a linear programme over truths) and its
properties on random instances; the capped Pinsker link; flooring as an I-projection; the
reverse-KL theorem without a floor; the two KL directions to third order; the gain along a
path (concave, unimodal); the Hoeffding term; and :func:`theory.sweep`.

``gain = Err(F_w) - Err(F_sw)`` (positive: the student is better), ``r = log F_sw - log F_w``.
"""

from __future__ import annotations

import dataclasses
import json
import math

import numpy as np
import pandas as pd
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.optimize import brentq, linprog, minimize, minimize_scalar
from scipy.special import logsumexp, rel_entr

from w2s_utils import metrics
from w2s_utils import theory as T
from w2s_utils.theory.instances import mixture_instance, random_simplex

F64 = torch.float64
SETTINGS = settings(derandomize=True)


def _pair(rng: np.random.Generator, n: int, k: int, floor: float = 1e-4):
    """Teacher and student ``[n, k]`` (float64 tensors), Dirichlet rows mixed with the uniform."""
    conc = rng.choice([0.2, 1.0, 3.0], size=2)
    w = rng.dirichlet(np.full(k, conc[0]), size=n)
    s = rng.dirichlet(np.full(k, conc[1]), size=n)
    return T.mix_with_uniform(w, floor), T.mix_with_uniform(s, floor)


def _gain(f_star: torch.Tensor, weak: torch.Tensor, student: torch.Tensor) -> float:
    """Independent: ``E KL(F*||F_w) - E KL(F*||F_sw)``."""
    return float((metrics.kl(f_star, weak) - metrics.kl(f_star, student)).mean())


def _err(f_star: torch.Tensor, p: torch.Tensor) -> float:
    return float(metrics.kl(f_star, p).mean())


# ------------------------------------------------------------------ error-aware: references
def _dual_reference(w: np.ndarray, s: np.ndarray, e: float, sign: int) -> float:
    """``sign * inf_{t>0} (e + mean_x logsumexp(log w + t sign r)) / t`` by numpy: a grid in
    ``log t`` then bounded Brent around the best grid point; the ``t -> inf`` limit
    (``E max sign r``) is a candidate too. Independent of the library's solver."""
    r = sign * (np.log(s) - np.log(w))
    lw = np.log(w)
    us = np.arange(-30.0, 30.01, 0.25)
    t = np.exp(us)[:, None, None]
    vals = (e + logsumexp(lw[None] + t * r[None], axis=2).mean(1)) / np.exp(us)

    def phi(u: float) -> float:
        return float((e + logsumexp(lw + np.exp(u) * r, axis=1).mean()) / np.exp(u))

    i = int(np.argmin(vals))
    res = minimize_scalar(
        phi, bounds=(us[max(i - 1, 0)], us[min(i + 1, len(us) - 1)]), method="bounded",
        options={"xatol": 1e-13},
    )  # fmt: skip
    return sign * min(res.fun, float(vals.min()), float(r.max(1).mean()))


def _kl2(q: float, w: float) -> float:
    return float(rel_entr([q, 1 - q], [w, 1 - w]).sum())


def test_worked_example_gain_interval():
    """F* = (0.9, 0.1), F_w = (0.6, 0.4), F_sw = (0.8, 0.2): gain in [-0.4302, +0.1896]
    (the ΔErr interval [-0.1896, +0.4302] with the sign turned), the upper end attained by F*."""
    weak, student, f_star = (np.array([v]) for v in ((0.6, 0.4), (0.8, 0.2), (0.9, 0.1)))
    r = T.error_aware_interval(weak, student, f_star=f_star)
    assert r.budget_source == "f_star"
    assert r.budget == pytest.approx(_err(torch.tensor(f_star), torch.tensor(weak)))
    assert (round(r.lower, 4), round(r.upper, 4)) == (-0.4302, 0.1896)
    assert r.holds and r.contains_gain and r.gain == pytest.approx(r.upper, abs=1e-12)
    torch.testing.assert_close(r.truth_upper, torch.tensor([[0.9, 0.1]], dtype=F64))
    # exact reference: the truths (q, 1 - q) with KL <= e form an interval [q-, q+] around 0.6
    e = r.budget
    q_lo = brentq(lambda q: _kl2(q, 0.6) - e, 1e-12, 0.6, xtol=1e-15)
    q_hi = brentq(lambda q: _kl2(q, 0.6) - e, 0.6, 1 - 1e-12, xtol=1e-15)
    ratio = np.log([0.8 / 0.6, 0.2 / 0.4])
    ends = sorted(q * ratio[0] + (1 - q) * ratio[1] for q in (q_lo, q_hi))
    assert r.lower == pytest.approx(ends[0], abs=1e-10)
    assert r.upper == pytest.approx(ends[1], abs=1e-10)
    # the ends are inside the label-free interval and the oscillation form
    assert r.free_lower < r.lower and r.upper < r.free_upper
    assert -r.eps - r.osc_half_width <= r.lower and r.upper <= -r.eps + r.osc_half_width


@SETTINGS
@given(st.floats(0.02, 0.98), st.floats(0.02, 0.98), st.floats(0.0, 1.0))
def test_single_binary_input_matches_root_finding(w1, s1, frac):
    """N = 1, K = 2: the ends are the gains at the two truths with KL(F*||F_w) = e (brentq)."""
    weak, student = np.array([[w1, 1 - w1]]), np.array([[s1, 1 - s1]])
    r_vec = np.log([s1 / w1, (1 - s1) / (1 - w1)])
    e_max = -math.log(w1 if r_vec[0] >= r_vec[1] else 1 - w1)
    e = frac * 1.5 * max(e_max, -math.log(min(w1, 1 - w1)))
    res = T.error_aware_interval(weak, student, e)
    left = brentq(lambda q: _kl2(q, w1) - e, 0.0, w1, xtol=1e-15) if _kl2(0.0, w1) > e else 0.0
    right = brentq(lambda q: _kl2(q, w1) - e, w1, 1.0, xtol=1e-15) if _kl2(1.0, w1) > e else 1.0
    gains = [q * r_vec[0] + (1 - q) * r_vec[1] for q in (left, right)]
    assert res.lower == pytest.approx(min(gains), abs=1e-9)
    assert res.upper == pytest.approx(max(gains), abs=1e-9)


@pytest.mark.slow
def test_error_aware_interval_matches_an_independent_dual_reference():
    """100 random instances (K = 2..5, N = 1..8, budgets log-uniform in [1e-6, 5]): both ends
    agree with a numpy/scipy evaluation of the dual to 1e-8 (observed: ~2e-13)."""
    rng = np.random.default_rng(2026)
    worst = 0.0
    for _ in range(100):
        n, k = int(rng.integers(1, 9)), int(rng.integers(2, 6))
        weak, student = _pair(rng, n, k, floor=1e-3)
        e = float(np.exp(rng.uniform(np.log(1e-6), np.log(5.0))))
        res = T.error_aware_interval(weak, student, e)
        w, s = weak.numpy(), student.numpy()
        worst = max(
            worst,
            abs(res.upper - _dual_reference(w, s, e, 1)),
            abs(res.lower - _dual_reference(w, s, e, -1)),
        )
    assert worst <= 1e-8, worst


@pytest.mark.slow
def test_error_aware_interval_matches_a_linear_programme_over_truths():
    """K = 2 on a few inputs: every truth F*(x) a mixture of 20001 grid distributions; maximising
    the (linear) gain under the (linear) budget on the mixture weights is an LP (HiGHS) whose
    optimum is a feasible truth's gain: never above the interval's end, and within 1e-6 of it."""
    rng = np.random.default_rng(7)
    q = np.linspace(0.0, 1.0, 20001)
    grid = np.stack([q, 1 - q], 1)
    for _ in range(4):
        n = int(rng.integers(1, 3))
        weak, student = _pair(rng, n, 2, floor=5e-3)
        e = float(np.exp(rng.uniform(np.log(1e-2), np.log(1.5))))
        res = T.error_aware_interval(weak, student, e)
        w, s = weak.numpy(), student.numpy()
        gains = (grid[None] * (np.log(s) - np.log(w))[:, None, :]).sum(-1) / n
        kls = rel_entr(grid[None], w[:, None, :]).sum(-1) / n
        a_eq = np.kron(np.eye(n), np.ones((1, len(q))))
        for sign, end in ((1.0, res.upper), (-1.0, res.lower)):
            lp = linprog(
                -sign * gains.ravel(), A_ub=kls.ravel()[None], b_ub=[e], A_eq=a_eq,
                b_eq=np.ones(n), bounds=(0, None), method="highs",
            )  # fmt: skip
            assert lp.status == 0
            primal = -sign * lp.fun  # the LP optimum: a feasible truth's gain
            assert sign * primal <= sign * end + 1e-12
            assert abs(primal - end) <= 1e-6, (primal, end)


# ------------------------------------------------------------------ error-aware: properties
def _instance(rng: np.random.Generator):
    n, k = int(rng.integers(1, 25)), int(rng.integers(2, 6))
    weak, student = _pair(rng, n, k, floor=float(rng.choice([1e-8, 1e-4, 1e-2])) / k)
    f_star = torch.as_tensor(rng.dirichlet(np.full(k, rng.choice([0.1, 1.0, 3.0])), size=n))
    return weak, student, f_star


def _properties(weak: torch.Tensor, student: torch.Tensor, f_star: torch.Tensor) -> dict:
    """Every property of the interval on one instance, as booleans and errors (for a sweep)."""
    r = T.error_aware_interval(weak, student, f_star=f_star)
    g_true = _gain(f_star, weak, student)
    out = {
        "holds": r.holds,
        "contains": r.lower - 1e-9 <= g_true <= r.upper + 1e-9,
        "below_budget": r.upper <= r.budget + 1e-12,
        "hoeffding": -r.eps - r.osc_half_width - 1e-9 <= r.lower
        and r.upper <= -r.eps + r.osc_half_width + 1e-9,
        "in_free": r.free_lower - 1e-12 <= r.lower and r.upper <= r.free_upper + 1e-12,
        "gap": max(r.gap_lower, r.gap_upper),
    }
    # the attaining truths attain, with Err(F_w) = e where the budget binds
    attain = 0.0
    for truth, end, binds in (
        (r.truth_upper, r.upper, r.binds_upper),
        (r.truth_lower, r.lower, r.binds_lower),
    ):
        attain = max(attain, abs(_gain(truth, weak, student) - end))
        if binds:
            attain = max(attain, abs(_err(truth, weak) - r.budget))
    out["attain"] = attain
    zero = T.error_aware_interval(weak, student, 0.0)
    out["zero"] = max(abs(zero.lower + zero.eps), abs(zero.upper + zero.eps))
    big = T.error_aware_interval(weak, student, 1e4)
    out["big"] = max(abs(big.lower - big.free_lower), abs(big.upper - big.free_upper))
    rev = T.error_aware_interval(weak, student, r.eps_rev)  # the truth F_sw: gain = eps_rev
    out["rev"] = abs(rev.upper - r.eps_rev)
    return out


@pytest.mark.slow
def test_error_aware_properties_on_random_instances():
    """300 random instances, a random truth each (budget = its Err(F_w)): never violated; the
    ends attained (to 1e-9) with Err(F_w) = e where the budget binds; e = 0 gives -eps at both
    ends; a huge budget the label-free interval; upper <= e; inside the Hoeffding relaxation
    (the oscillation form); e = eps_rev gives upper = eps_rev (the truth F_sw)."""
    df = T.sweep(_properties, _instance, 300, seed=11)
    for col in ("holds", "contains", "below_budget", "hoeffding", "in_free"):
        assert df[col].all(), (col, df[~df[col]].head())
    assert df.attain.max() <= 1e-9 and df.gap.max() <= 1e-9
    assert df.zero.max() <= 1e-12 and df.big.max() == 0.0 and df.rev.max() <= 1e-9


@pytest.mark.slow
def test_error_aware_curve_is_monotone_and_concave_in_the_budget():
    """G_hi non-decreasing and concave in e, G_lo non-increasing and convex; the batched curve
    equals one call per budget."""
    rng = np.random.default_rng(5)
    budgets = np.linspace(0.0, 4.0, 41)
    for i in range(25):
        weak, student, _ = _instance(rng)
        c = T.error_aware_curve(weak, student, budgets)
        up, lo = c.upper.numpy(), c.lower.numpy()
        assert (np.diff(up) >= -1e-12).all() and (np.diff(lo) <= 1e-12).all()
        assert (np.diff(up, 2) <= 1e-9).all() and (np.diff(lo, 2) >= -1e-9).all()
        assert up[0] == pytest.approx(-c.eps, abs=1e-12)
        assert lo[0] == pytest.approx(-c.eps, abs=1e-12)
        assert (up <= budgets + 1e-12).all()
        if i < 5:
            for j in (3, 20, 40):
                one = T.error_aware_interval(weak, student, float(budgets[j]))
                assert (one.lower, one.upper) == pytest.approx((lo[j], up[j]), abs=1e-12)


@pytest.mark.slow
def test_error_aware_interval_with_labels_is_exact_on_the_sample():
    """With labels the budget is the teacher's test cross-entropy (the empirical truth's Err)
    and the gain CE(F_w) - CE(F_sw) lies inside."""
    rng = np.random.default_rng(3)
    for _ in range(40):
        weak, student, f_star = _instance(rng)
        y = torch.multinomial(f_star, 1, generator=torch.Generator().manual_seed(1))[:, 0]
        r = T.error_aware_interval(weak, student, labels=y)
        ce_w = float(metrics.log_loss(weak, y))
        ce_s = float(metrics.log_loss(student, y))
        assert r.budget_source == "labels" and r.budget == pytest.approx(ce_w, abs=1e-12)
        assert r.gain == pytest.approx(ce_w - ce_s, abs=1e-12) and r.holds and r.contains_gain
        wider = T.error_aware_interval(weak, student, 2 * ce_w, labels=y)
        assert wider.lower <= r.lower + 1e-12 and r.upper <= wider.upper + 1e-12


def test_error_aware_interval_serialises_and_validates():
    rng = np.random.default_rng(0)
    weak, student, f_star = _instance(rng)
    r = T.error_aware_interval(weak, student, 0.3)
    d = r.as_dict()
    assert "truth_upper" not in d and d["result"] == r.NAME and r.source == "none"
    json.dumps({k: v for k, v in d.items() if not (isinstance(v, float) and math.isinf(v))})
    with pytest.raises(dataclasses.FrozenInstanceError):
        r.lower = 0.0  # type: ignore[misc]
    with pytest.raises(ValueError, match="err_weak"):
        T.error_aware_interval(weak, student)
    with pytest.raises(ValueError, match="err_weak"):
        T.error_aware_interval(weak, student, -1.0)
    with pytest.raises(ValueError, match="err_weak.*below"):
        T.error_aware_interval(weak, student, 0.0, f_star=f_star)
    zero = weak.clone()
    zero[0, 0], zero[0, 1] = 0.0, zero[0, 0] + zero[0, 1]
    with pytest.raises(ValueError, match="weak.*zero probabilities"):
        T.error_aware_interval(zero, student, 0.3)
    with pytest.raises(ValueError, match="budgets"):
        T.error_aware_curve(weak, student, [0.1, float("nan")])


def test_error_aware_interval_keeps_the_device(cuda_device):
    rng = np.random.default_rng(1)
    weak, student, f_star = _instance(rng)
    cpu = T.error_aware_interval(weak, student, f_star=f_star)
    gpu = T.error_aware_interval(
        weak.to(cuda_device), student.to(cuda_device), f_star=f_star.to(cuda_device)
    )
    assert gpu.truth_upper.device.type == "cuda"
    assert gpu.as_dict() == pytest.approx(cpu.as_dict(), rel=1e-9, abs=1e-12)


# ------------------------------------------------------------------ the chain's Pinsker link
def test_pinsker_link_is_capped_by_tv_at_most_one():
    """K = 2, gamma = 0.01, F_w = (0.99, 0.01), F_sw = (0.01, 0.99): eps = 4.50 and the uncapped
    log(1 + sqrt(eps/2)/gamma) = 5.02 > log(101) = 4.62; capped, every log link is <= log(1+1/g)."""
    weak, student = np.array([[0.99, 0.01]]), np.array([[0.01, 0.99]])
    c = T.generalization_chain(weak, student, gamma=0.01)
    assert c.eps == pytest.approx(4.50, abs=5e-3)
    assert math.log1p(math.sqrt(c.eps / 2) / 0.01) == pytest.approx(5.02, abs=5e-3)
    assert c.log_pinsker == pytest.approx(math.log(101)) and c.holds
    for key in ("mean_log_tv", "log_mean_tv", "log_pinsker", "log_pinsker_rev"):
        assert getattr(c, key) <= math.log1p(1 / 0.01) + 1e-12


@SETTINGS
@given(st.integers(0, 2**31 - 1), st.integers(2, 5), st.integers(1, 20), st.floats(0.05, 1.0))
def test_every_log_link_is_at_most_log_one_plus_one_over_gamma(seed, k, n, frac):
    rng = np.random.default_rng(seed)
    gamma = frac / k
    weak = T.clip_to_floor(rng.dirichlet(np.full(k, 0.3), size=n), gamma)
    student = T.clip_to_floor(rng.dirichlet(np.full(k, 0.3), size=n), gamma)
    c = T.generalization_chain(weak, student, gamma=gamma)
    assert c.holds
    for key in ("mean_max_abs_log_ratio", "mean_log_tv", "log_mean_tv", "log_pinsker"):
        assert getattr(c, key) <= math.log1p(1 / gamma) * (1 + 1e-12)


# ------------------------------------------------------------------ flooring
@SETTINGS
@given(st.integers(0, 2**31 - 1), st.integers(2, 6), st.integers(1, 10), st.floats(0.01, 1.0))
def test_clip_to_floor_satisfies_the_kkt_conditions_of_the_i_projection(seed, k, n, frac):
    """q = argmin_{q >= gamma} KL(q || p): log(q_j / p_j) is one constant log t on the entries
    above the floor and log(gamma / p_j) >= log t on the floored ones (t <= 1)."""
    rng = np.random.default_rng(seed)
    p = torch.as_tensor(rng.dirichlet(np.full(k, 0.3), size=n)).clamp_min(1e-300)
    p = p / p.sum(-1, keepdim=True)
    gamma = frac / k
    q = T.clip_to_floor(p, gamma)
    for i in range(n):
        above = q[i] > gamma * (1 + 1e-12)
        if not bool(above.any()):
            continue
        log_t = torch.log(q[i][above] / p[i][above])
        assert float(log_t.max() - log_t.min()) <= 1e-9 and float(log_t.max()) <= 1e-12
        floored = ~above
        if bool(floored.any()):
            assert bool((torch.log(gamma / p[i][floored]) >= log_t.max() - 1e-9).all())


def test_clip_to_floor_beats_every_feasible_point_on_reverse_kl():
    """Against scipy's SLSQP on min KL(q || p) subject to q >= gamma, sum q = 1."""
    rng = np.random.default_rng(4)
    for _ in range(10):
        k = int(rng.integers(2, 6))
        p = rng.dirichlet(np.full(k, 0.3)) + 1e-12
        p = p / p.sum()
        gamma = float(rng.uniform(0.05, 1.0)) / k
        q = T.clip_to_floor(torch.as_tensor(p[None]), gamma)[0].numpy()
        res = minimize(
            lambda v, p=p: float(rel_entr(v, p).sum()), np.full(k, 1 / k), method="SLSQP",
            bounds=[(gamma, 1)] * k, constraints=({"type": "eq", "fun": lambda v: v.sum() - 1},),
            options={"ftol": 1e-15, "maxiter": 1000},
        )  # fmt: skip
        assert float(rel_entr(q, p).sum()) <= res.fun + 1e-9


def test_ensure_floor_and_mix_with_uniform():
    p = torch.tensor([[0.0, 0.3, 0.7], [1e-20, 0.5, 0.5 - 1e-20]], dtype=F64)
    kept = T.ensure_floor(p[1:], 1e-12, zeros_only=True)
    assert kept.dtype == F64 and torch.equal(kept, p[1:])  # a tiny positive entry is kept
    lifted = T.ensure_floor(p, 1e-12, zeros_only=True)
    torch.testing.assert_close(lifted, T.clip_to_floor(p, 1e-12), rtol=0, atol=0)
    assert float(T.ensure_floor(p, 1e-6).min()) >= 1e-6
    ok = torch.tensor([[0.2, 0.8]], dtype=F64)
    assert torch.equal(T.ensure_floor(ok, 0.1), ok)
    m = T.mix_with_uniform(torch.tensor([[1.0, 0.0, 0.0]]), 0.1)
    torch.testing.assert_close(m, torch.tensor([[0.8, 0.1, 0.1]], dtype=F64))
    assert T.mix_with_uniform(torch.tensor([0.0, 1.0]), 0.25).tolist() == [0.25, 0.75]
    with pytest.raises(ValueError, match="gamma"):
        T.mix_with_uniform(ok, 0.6)
    with pytest.raises(ValueError, match="gamma"):
        T.ensure_floor(ok, 0.0)


# ------------------------------------------------------------------ reverse KL, no floor
@pytest.mark.slow
def test_reverse_kl_theorem_needs_no_floor_and_bounds_the_disagreement():
    """Mixture instances whose teacher has entries down to 1e-200 (no floor): gain >= eps_rev
    still holds, and eps_rev <= gain <= Err(F_w)."""
    for seed in range(12):
        inst = mixture_instance(seed, n=40, n_classes=3, n_components=3)
        weak = inst.weak.clone()
        weak[::3, 0] = 1e-200  # arbitrarily small teacher probabilities
        weak = weak / weak.sum(-1, keepdim=True)
        proj = T.i_projection_mixture(weak, inst.components)
        r = T.kl_misfit_gain(weak, proj.student, f_star=inst.f_star, tol=max(proj.gap, 1e-9))
        assert r.holds, (seed, r)
        assert r.eps_rev <= r.gain + max(proj.gap, 1e-9) and r.gain <= r.err_weak + 1e-12
        assert r.eps_rev <= r.err_weak + max(proj.gap, 1e-9)


@pytest.mark.slow
def test_reverse_kl_equality_in_the_relative_interior():
    """A projection with every mixture weight > 0 (relative interior): slack = 0 (to the
    Frank-Wolfe gap); on the boundary the slack can be positive."""
    interior = boundary = 0
    for seed in range(40):
        inst = mixture_instance(seed, n=30, n_classes=3, n_components=3, weak_noise=0.5)
        proj = T.i_projection_mixture(inst.weak, inst.components)
        r = T.kl_misfit_gain(inst.weak, proj.student, f_star=inst.f_star, tol=max(proj.gap, 1e-12))
        assert r.holds
        if bool((proj.weights > 1e-6).all()):
            interior += 1
            assert abs(r.slack) <= 1e-7, (seed, r.slack, proj.gap)
        else:
            boundary += r.slack > 1e-6
    assert interior > 0 and boundary > 0


# ------------------------------------------------------------------ the two KL directions
@SETTINGS
@given(st.integers(0, 2**31 - 1), st.integers(2, 6), st.integers(1, 20), st.floats(1e-4, 1.0))
def test_kl_directions_differ_by_at_most_the_cubic_bound(seed, k, n, scale):
    rng = np.random.default_rng(seed)
    q = T.mix_with_uniform(rng.dirichlet(np.ones(k), size=n), 0.01 / k)
    p = T.mix_with_uniform(rng.dirichlet(np.ones(k), size=n), 0.01 / k)
    p = (1 - scale) * q + scale * p  # p approaches q as scale -> 0
    r = T.kl_direction_gap(p, q)
    assert r.holds, r
    pw = (metrics.kl(p, q) - metrics.kl(q, p)).abs()
    assert r.lhs == pytest.approx(float(pw.mean()), abs=1e-15)


def test_kl_directions_agree_to_third_order():
    """p = q + t v: |KL(p||q) - KL(q||p)| shrinks like t^3 (halving t divides it by ~8) with the
    leading coefficient |sum_j v_j^3 / (6 q_j^2)| (g'''(1) = 1 in the proof), while each KL
    shrinks like t^2."""
    q = torch.tensor([[0.5, 0.3, 0.2]], dtype=F64)
    v = torch.tensor([[0.1, -0.04, -0.06]], dtype=F64)
    ts = (0.05, 0.025, 0.0125, 0.00625)
    diffs = [T.kl_direction_gap(q + t * v, q).lhs for t in ts]
    ratios = [a / b for a, b in zip(diffs, diffs[1:], strict=False)]
    assert all(7.5 < x < 8.5 for x in ratios), ratios
    lead = abs(float((v**3 / (6 * q**2)).sum()))
    assert diffs[-1] / ts[-1] ** 3 == pytest.approx(lead, rel=0.02)
    kl = float(metrics.kl(q + ts[-1] * v, q).mean())
    assert 3.5 < kl / float(metrics.kl(q + ts[-1] / 2 * v, q).mean()) < 4.5


# ------------------------------------------------------------------ the gain along a path
def _path_instance(rng: np.random.Generator):
    n, k = int(rng.integers(1, 20)), int(rng.integers(2, 6))
    weak, target = _pair(rng, n, k, floor=1e-3)
    f_star = torch.as_tensor(rng.dirichlet(np.full(k, rng.choice([0.2, 1.0])), size=n))
    return weak, target, f_star


@pytest.mark.slow
@pytest.mark.parametrize("path", T.PATH_KINDS)
def test_gain_along_a_path_is_concave_and_unimodal(path):
    """Random instances: concave, unimodal, gain(0) = 0, above its chord; the exact argmax beats a
    fine grid; the slope at 0 matches its closed form and a finite difference."""
    rng = np.random.default_rng(17)
    fine = np.linspace(0.0, 1.0, 1001)
    for _ in range(60):
        weak, target, f_star = _path_instance(rng)
        res = T.gain_along_path(weak, target, f_star=f_star, path=path)
        assert res.holds and res.concave and res.unimodal, res
        assert abs(res.gain[0]) <= 1e-12
        fine_gain = T.gain_along_path(weak, target, f_star=f_star, path=path, n_points=1001).gain
        assert max(fine_gain) <= res.max_gain + 1e-12
        i = int(np.argmax(fine_gain))
        assert abs(fine[i] - res.argmax) <= 1e-3 + 1e-9
        if path == "mixture":
            closed = float((f_star * target / weak).sum(-1).mean()) - 1.0
        else:
            closed = float(((f_star - weak) * (target.log() - weak.log())).sum(-1).mean())
        assert res.slope_start == pytest.approx(closed, rel=1e-9, abs=1e-12)
        h = 1e-8
        t_h = (1 - h) * weak + h * target if path == "mixture" else None
        if t_h is not None:
            assert _gain(f_star, weak, t_h) / h == pytest.approx(closed, rel=1e-3, abs=1e-5)
        assert res.rises_first == (res.slope_start > 0) and (res.argmax > 0) == res.rises_first


def test_gain_along_a_path_with_labels_and_validation():
    rng = np.random.default_rng(2)
    weak, target, f_star = _path_instance(rng)
    y = torch.multinomial(f_star, 1, generator=torch.Generator().manual_seed(0))[:, 0]
    res = T.gain_along_path(weak, target, labels=y)
    assert res.holds and res.source == "labels"
    ce = float(metrics.log_loss(weak, y)) - float(metrics.log_loss(target, y))
    assert res.gain[-1] == pytest.approx(ce, abs=1e-12)
    with pytest.raises(ValueError, match="path"):
        T.gain_along_path(weak, target, labels=y, path="logit")
    with pytest.raises(ValueError, match="n_points"):
        T.gain_along_path(weak, target, labels=y, n_points=2)
    with pytest.raises(ValueError, match="exactly one"):
        T.gain_along_path(weak, target)


# ------------------------------------------------------------------ Hoeffding term
def test_hoeffding_term_formula_and_coverage():
    assert T.hoeffding_term(0.05, 1500, 0.025) == pytest.approx(
        math.log(20) * math.sqrt(math.log(40) / 3000)
    )
    # coverage: variables in [0, log 1/gamma]; the mean exceeds the sample mean + term rarely
    gamma, n, delta = 0.1, 50, 0.1
    rng = np.random.default_rng(0)
    z = rng.uniform(0, math.log(1 / gamma), size=(4000, n)) ** 2 / math.log(1 / gamma)
    mean = math.log(1 / gamma) / 3
    miss = (mean > z.mean(1) + T.hoeffding_term(gamma, n, delta)).mean()
    assert miss <= delta
    for bad in ({"gamma": 0.0}, {"n": 0}, {"delta": 1.0}, {"n": 2.5}):
        args = {"gamma": 0.1, "n": 10, "delta": 0.05} | bad
        with pytest.raises(ValueError):
            T.hoeffding_term(**args)


# ------------------------------------------------------------------ sweep
def test_sweep_draws_independent_reproducible_instances():
    def draw(rng):
        f_star = torch.as_tensor(rng.dirichlet(np.ones(3), size=5))
        w = T.mix_with_uniform(rng.dirichlet(np.ones(3), size=5), 1e-3)
        s = T.mix_with_uniform(rng.dirichlet(np.ones(3), size=5), 1e-3)
        return {"weak": w, "student": s, "f_star": f_star}

    a = T.sweep(T.error_decomposition, draw, 12, seed=3)
    b = T.sweep(T.error_decomposition, draw, 5, seed=3)
    assert list(a.instance) == list(range(12)) and a.holds.all()
    pd.testing.assert_frame_equal(a.head(5), b)  # instance i does not depend on n
    assert {"result", "relation", "lhs", "rhs", "slack", "holds", "gain", "eps"} <= set(a.columns)
    assert not T.sweep(T.error_decomposition, draw, 5, seed=4).equals(b)


def test_sweep_takes_iterables_mappings_and_dicts():
    insts = ({"weak": random_simplex(4, 2, floor=0.01, seed=i), "student": random_simplex(
        4, 2, floor=0.01, seed=i + 100)} for i in range(100))  # fmt: skip
    df = T.sweep(T.label_free_interval, insts, 7)
    assert len(df) == 7 and df.holds.all() and df.gain.isna().all()
    df2 = T.sweep(lambda x: {"x": x, "sq": x * x, "arr": np.zeros(3)}, iter(range(3)), 3)
    assert list(df2.columns) == ["instance", "x", "sq"] and list(df2.sq) == [0, 1, 4]
    with pytest.raises(ValueError, match="fewer"):
        T.sweep(lambda x: {"x": x}, [1, 2], 3)
    with pytest.raises(ValueError, match="result_fn"):
        T.sweep(lambda x: x, [1], 1)
    with pytest.raises(ValueError, match="n"):
        T.sweep(lambda x: {"x": x}, [1], 0)
    with pytest.raises(ValueError, match="draw"):
        T.sweep(lambda x: {"x": x}, 5, 1)
