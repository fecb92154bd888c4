"""The sharp forms of Theorem 1 on random instances: the label-free interval (and that a point-mass
ground truth attains it), every link of the generalization chain, the oscillation bound, and the
no-floor example."""

from __future__ import annotations

import dataclasses
import json
import math

import numpy as np
import pytest
import torch
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from scipy.optimize import linprog

from w2s_utils import metrics
from w2s_utils import theory as T
from w2s_utils.theory.instances import (
    mixture_instance,
    no_floor_instance,
    random_simplex,
    weak_predictions,
)

F64 = torch.float64
SETTINGS = settings(derandomize=True)  # examples/deadline from the conftest profile
TOL = 1e-9

seeds = st.integers(0, 2**31 - 1)
n_classes = st.integers(2, 5)
n_rows = st.integers(1, 30)
# None: no floor; a fraction u: floor 1e-4 * (1/(2K) / 1e-4)^u, log-uniform in [1e-4, 1/(2K)]
floor_fracs = st.one_of(st.none(), st.floats(0.0, 1.0))
concentrations = st.sampled_from([0.3, 1.0, 3.0])
student_kinds = st.sampled_from(["independent", "close", "toward_truth"])


def _floor(frac: float | None, k: int) -> float:
    if frac is None:
        return 0.0
    return min(1e-4 * (1.0 / (2 * k) / 1e-4) ** frac, 1.0 / (2 * k))


def _instance(seed: int, n: int, k: int, frac: float | None, conc: float, kind: str):
    """``(f_star, weak, student, floor)`` from the instance builders; weak/student floored."""
    floor = _floor(frac, k)
    f_star = random_simplex(n, k, concentration=conc, seed=seed)
    noise = None if seed % 2 else 0.7
    weak = weak_predictions(f_star, noise=noise, concentration=conc, floor=floor, seed=seed + 1)
    other = random_simplex(n, k, concentration=conc, floor=floor, seed=seed + 2)
    if kind == "independent":
        student = other
    elif kind == "close":  # small misfit: the lower side of Theorem 1 matters
        student = 0.95 * weak + 0.05 * other
    else:  # a student nearer the truth than its teacher: a gain
        student = weak_predictions(f_star, noise=0.3, floor=floor, seed=seed + 3)
    return f_star, weak, student, floor


def _positive(*ts: torch.Tensor) -> bool:
    return all(bool((t > 0).all()) and bool(torch.isfinite(t.log()).all()) for t in ts)


def _labels(f_star: torch.Tensor, seed: int) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    return torch.multinomial(f_star, 1, generator=gen)[:, 0]


def _gain(f_star: torch.Tensor, weak: torch.Tensor, student: torch.Tensor) -> float:
    """An independent reference: ``E KL(F*||F_w) - E KL(F*||F_sw)``, the gain."""
    return metrics.kl(f_star, weak).mean().item() - metrics.kl(f_star, student).mean().item()


def _le(a: float, b: float) -> bool:
    return a <= b + TOL * max(1.0, abs(a), abs(b))


instances = st.tuples(seeds, n_rows, n_classes, floor_fracs, concentrations, student_kinds)


# --------------------------------------------------------------------------- label-free interval
@pytest.mark.slow
@SETTINGS
@given(instances)
def test_interval_contains_the_true_gain_and_the_misfit_interval(inst):
    f_star, weak, student, _ = _instance(*inst)
    assume(_positive(weak, student))
    r = T.label_free_interval(weak, student, f_star=f_star)
    assert r.holds and r.contains_gain and r.contains_misfit and r.source == "f_star"
    assert r.gain == pytest.approx(_gain(f_star, weak, student), abs=1e-9)
    assert _le(r.lower, r.gain) and _le(r.gain, r.upper)
    # [-eps, eps_rev] lies inside: sum_j F_w,j r_j = -eps and sum_j F_sw,j r_j = eps_rev
    assert r.eps == pytest.approx(metrics.kl(weak, student).mean().item(), abs=1e-12)
    assert r.eps_rev == pytest.approx(metrics.kl(student, weak).mean().item(), abs=1e-12)
    assert _le(r.lower, -r.eps) and _le(-r.eps, r.eps_rev) and _le(r.eps_rev, r.upper)
    assert -1.0 - 1e-9 <= r.fraction_used <= 1.0 + 1e-9
    assert r.width == 0.0 or -1e-9 <= r.position <= 1.0 + 1e-9
    assert r.slack == pytest.approx(min(r.upper - r.gain, r.gain - r.lower))
    assert r.lhs <= r.rhs + 1e-9 and r.rhs == pytest.approx(r.width / 2)
    # without a truth: only the misfit containment, and the same interval
    bare = T.label_free_interval(weak, student)
    assert bare.holds and bare.source == "none" and bare.gain is None
    assert (bare.lower, bare.upper) == (r.lower, r.upper)
    assert bare.fraction_used is None and bare.contains_gain is None


@pytest.mark.slow
@SETTINGS
@given(instances, st.integers(0, 1000))
def test_interval_label_version_holds_exactly_on_the_sample(inst, label_seed):
    f_star, weak, student, _ = _instance(*inst)
    assume(_positive(weak, student))
    y = _labels(f_star, label_seed)
    r = T.label_free_interval(weak, student, labels=y)
    assert r.holds and r.source == "labels"
    one_hot = torch.nn.functional.one_hot(y, weak.shape[1]).to(F64)
    ce_gain = (
        metrics.cross_entropy(one_hot, weak).mean().item()
        - metrics.cross_entropy(one_hot, student).mean().item()
    )
    assert r.gain == pytest.approx(ce_gain, abs=1e-9)
    assert r.loss_weak - r.loss_student == pytest.approx(ce_gain, abs=1e-9)


@SETTINGS
@given(instances, st.sampled_from(["upper", "lower"]))
def test_interval_is_attained_exactly_by_the_point_mass_truth(inst, side):
    _, weak, student, _ = _instance(*inst)
    assume(_positive(weak, student))
    truth = T.worst_case_truth(weak, student, side=side)
    assert truth.shape == weak.shape and truth.dtype == F64
    assert bool(((truth == 0) | (truth == 1)).all()) and bool((truth.sum(-1) == 1).all())
    r = T.label_free_interval(weak, student, f_star=truth)
    end = r.upper if side == "upper" else r.lower
    assert abs(r.gain - end) <= 1e-10
    assert abs(_gain(truth, weak, student) - end) <= 1e-10  # via KL, independently
    assert r.holds
    if r.width > 0:
        assert r.position == pytest.approx(1.0 if side == "upper" else 0.0, abs=1e-10)
    if abs(end) > 0:
        assert abs(r.fraction_used) == pytest.approx(1.0, abs=1e-10)


@pytest.mark.slow
def test_interval_is_the_worst_case_over_all_ground_truths_by_linear_programming():
    # independent reference: maximise / minimise E sum_j F*_j r_j over every F* (rows in the
    # simplex) with scipy's LP solver; the optimum is the interval's end
    for seed in range(20):
        k, n = 2 + seed % 4, 6
        f_star, weak, student, _ = _instance(seed, n, k, 0.5, 1.0, "independent")
        lr = (student.log() - weak.log()).numpy().ravel() / n
        a_eq = np.kron(np.eye(n), np.ones((1, k)))
        r = T.label_free_interval(weak, student)
        for sign, end in ((-1.0, r.upper), (1.0, r.lower)):
            lp = linprog(sign * lr, A_eq=a_eq, b_eq=np.ones(n), bounds=(0, None), method="highs")
            assert lp.status == 0 and sign * lp.fun == pytest.approx(end, abs=1e-9)
        # random ground truths never leave the interval
        for s in range(20):
            fs = random_simplex(n, k, concentration=0.2, seed=1000 * seed + s)
            gain = _gain(fs, weak, student)
            assert _le(r.lower, gain) and _le(gain, r.upper)


def test_interval_needs_no_floor_only_positivity():
    f_star, weak, student = no_floor_instance(1e-12)
    weak = torch.cat([weak, torch.tensor([[1 - 1e-300, 1e-300]], dtype=F64)])
    student = torch.cat([student, torch.tensor([[0.5, 0.5]], dtype=F64)])
    f_star = torch.cat([f_star, torch.tensor([[0.0, 1.0]], dtype=F64)])
    r = T.label_free_interval(weak, student, f_star=f_star)
    assert r.holds and math.isfinite(r.upper) and r.upper > 300
    assert r.gain == pytest.approx(_gain(f_star, weak, student), rel=1e-12)


def test_interval_pointwise_terms_and_binary_input():
    f_star, weak, student, _ = _instance(3, 25, 2, 0.3, 1.0, "independent")
    r = T.label_free_interval(weak, student, f_star=f_star)
    pw = r.pointwise
    torch.testing.assert_close(pw.log_ratio, student.log() - weak.log(), rtol=0, atol=1e-14)
    assert pw.min_log_ratio.mean().item() == r.lower and pw.max_log_ratio.mean().item() == r.upper
    lemma1 = T.error_decomposition(weak, student, f_star=f_star).pointwise.cross_term
    torch.testing.assert_close(pw.gain, lemma1, rtol=0, atol=1e-14)
    b = T.label_free_interval(weak[:, 1], student[:, 1], f_star=f_star[:, 1])
    assert b.as_dict() == pytest.approx(r.as_dict())
    truth = T.worst_case_truth(weak[:, 1], student[:, 1])
    assert truth.shape == (25, 2)


# --------------------------------------------------------------------------- the chain
_CHAIN = ("mean_max_abs_log_ratio", "mean_log_tv", "log_mean_tv", "log_pinsker")


def _check_chain(c, gamma: float) -> None:
    assert c.holds, c
    values = [getattr(c, key) for key in _CHAIN]
    if c.abs_gain is not None:
        values.insert(0, c.abs_gain)
    for a, b in zip(values, values[1:], strict=False):
        assert _le(a, b), (a, b)
    assert _le(c.log_mean_tv, c.log_pinsker_rev)
    # every link is <= Theorem 1's forms, and the trivial bound dominates the label-free links
    for v in values:
        assert _le(v, c.bound_tv if v <= c.log_mean_tv else c.bound_eps)
    assert _le(c.log_mean_tv, c.bound_tv) and _le(c.log_pinsker, c.bound_eps)
    assert _le(c.log_pinsker_rev, c.bound_eps_rev)
    assert _le(c.mean_max_abs_log_ratio, c.trivial) and _le(c.log_mean_tv, c.trivial)
    assert c.trivial == pytest.approx(math.log(1.0 / gamma))
    # TV <= 1 caps the Pinsker link: every log link is at most log(1 + 1/gamma)
    assert _le(c.log_pinsker, math.log1p(1.0 / gamma))


def _numpy_links(weak: torch.Tensor, student: torch.Tensor, gamma: float) -> dict[str, float]:
    """The chain's links recomputed with numpy/scipy (an independent reference)."""
    from scipy.special import rel_entr

    w, s = weak.numpy(), student.numpy()
    tv = 0.5 * np.abs(w - s).sum(-1)
    eps = rel_entr(w, s).sum(-1).mean()
    return {
        "mean_max_abs_log_ratio": np.abs(np.log(w) - np.log(s)).max(-1).mean(),
        "mean_log_tv": np.log(1 + tv / gamma).mean(),
        "log_mean_tv": np.log(1 + tv.mean() / gamma),
        "log_pinsker": np.log(1 + min(1.0, np.sqrt(eps / 2)) / gamma),
        "bound_tv": tv.mean() / gamma,
        "bound_eps": np.sqrt(eps / 2) / gamma,
    }


@pytest.mark.slow
@SETTINGS
@given(instances, st.integers(0, 1000))
def test_every_chain_link_is_ordered_and_below_theorem_1(inst, label_seed):
    f_star, weak, student, _ = _instance(*inst)
    assume(_positive(weak, student))
    c = T.generalization_chain(weak, student, f_star=f_star)
    t1 = T.generalization_bound(weak, student, f_star=f_star)
    assert c.gamma == t1.gamma and c.gamma_source == t1.gamma_source
    _check_chain(c, c.gamma)
    assert c.abs_gain == pytest.approx(abs(t1.gain), abs=1e-9)
    assert c.gain == pytest.approx(t1.gain, abs=1e-9)
    assert c.bound_tv == t1.bound_tv and c.bound_eps == t1.bound_eps
    assert c.bound_eps_rev == t1.bound_eps_rev
    ref = _numpy_links(weak, student, c.gamma)
    for key, value in ref.items():
        assert getattr(c, key) == pytest.approx(value, rel=1e-9, abs=1e-12), key
    cl = T.generalization_chain(weak, student, labels=_labels(f_star, label_seed))
    _check_chain(cl, cl.gamma)
    bare = T.generalization_chain(weak, student)
    _check_chain(bare, bare.gamma)
    assert bare.abs_gain is None and bare.lhs == bare.mean_max_abs_log_ratio


@pytest.mark.slow
@SETTINGS
@given(instances, st.floats(0.05, 1.0))
def test_chain_with_a_given_floor_after_clipping(inst, frac):
    f_star, weak, student, _ = _instance(*inst)
    k = weak.shape[1]
    gamma = frac / k
    weak, student = T.clip_to_floor(weak, gamma), T.clip_to_floor(student, gamma)
    c = T.generalization_chain(weak, student, f_star=f_star, gamma=gamma)
    assert c.gamma == gamma and c.gamma_source == "given"
    _check_chain(c, gamma)
    t1 = T.generalization_bound(weak, student, f_star=f_star, gamma=gamma)
    assert c.bound_tv == t1.bound_tv


@pytest.mark.slow
def test_chain_and_interval_never_violated_on_many_instances():
    """A deterministic sweep (floors and no floor, K = 2..5, three kinds of student)."""
    kinds = ("independent", "close", "toward_truth")
    n_checked = 0
    for i in range(600):
        rng = np.random.default_rng(i)
        k, n = int(rng.integers(2, 6)), int(rng.integers(1, 40))
        frac = None if i % 4 == 0 else float(rng.uniform())
        conc = float(rng.choice([0.3, 1.0, 3.0]))
        f_star, weak, student, _ = _instance(10 * i, n, k, frac, conc, kinds[i % 3])
        if not _positive(weak, student):
            continue
        n_checked += 1
        y = _labels(f_star, i)
        for kw in ({"f_star": f_star}, {"labels": y}):
            assert T.label_free_interval(weak, student, **kw).holds
            c = T.generalization_chain(weak, student, **kw)
            _check_chain(c, c.gamma)
            o = T.oscillation_bound(weak, student, **kw)
            assert o.holds
    assert n_checked >= 550


def test_chain_links_table():
    f_star, weak, student, _ = _instance(4, 20, 3, 0.5, 1.0, "close")
    c = T.generalization_chain(weak, student, f_star=f_star)
    rows = c.links()
    assert [r["key"] for r in rows] == [
        "abs_gain",
        *_CHAIN,
        "bound_tv",
        "bound_eps",
        "trivial",
    ]
    assert all(r["value"] == getattr(c, r["key"]) for r in rows)
    assert {r["needs"] for r in rows} == {"F* or labels", "positive predictions", "floor gamma"}
    chain_values = [r["value"] for r in rows if r["kind"] in ("measured", "chain")]
    assert chain_values == sorted(chain_values)
    tex = c.links(latex=True)
    assert [r["key"] for r in tex] == [r["key"] for r in rows]
    assert all("\\" in r["label"] or "|" in r["label"] for r in tex)
    assert T.generalization_chain(weak, student).links()[0]["value"] is None


def test_identical_predictors_collapse_everything_to_zero():
    _, weak, _, _ = _instance(0, 15, 4, 0.5, 1.0, "independent")
    y = torch.zeros(15, dtype=torch.long)
    r = T.label_free_interval(weak, weak.clone(), labels=y)
    assert (r.lower, r.upper, r.gain, r.fraction_used) == (0.0, 0.0, 0.0, 0.0)
    assert r.position is None and r.holds
    c = T.generalization_chain(weak, weak.clone(), labels=y)
    assert c.holds and c.abs_gain == 0.0 and c.log_pinsker == 0.0 and c.bound_tv == 0.0
    o = T.oscillation_bound(weak, weak.clone(), labels=y)
    assert o.holds and o.lhs == o.mid == o.rhs == o.old_width == 0.0


# --------------------------------------------------------------------------- oscillation
@pytest.mark.slow
@SETTINGS
@given(instances, st.integers(0, 1000))
def test_oscillation_form_is_ordered_and_never_worse_than_the_old_width(inst, label_seed):
    f_star, weak, student, _ = _instance(*inst)
    assume(_positive(weak, student))
    o = T.oscillation_bound(weak, student, f_star=f_star)
    assert o.holds and o.source == "f_star"
    assert _le(o.lhs, o.mid) and _le(o.mid, o.rhs) and _le(o.rhs, o.old_width)
    assert o.lhs == pytest.approx(abs(_gain(f_star, weak, student) + o.eps), abs=1e-9)
    alt = T.misfit_centred_bound(weak, student, f_star=f_star)
    assert o.old_width == pytest.approx(alt.width, rel=1e-12, abs=1e-15) and o.m == alt.m
    assert _le(o.lower, o.gain) and _le(o.gain, o.upper)
    assert o.interaction == pytest.approx(o.gain + o.eps, abs=1e-12)
    lr = student.log() - weak.log()
    osc = (lr.amax(-1) - lr.amin(-1)).numpy()
    assert o.mean_osc_sq == pytest.approx(float((osc**2).mean()), rel=1e-12)
    ol = T.oscillation_bound(weak, student, labels=_labels(f_star, label_seed))
    assert ol.holds and ol.source == "labels"
    assert _le(
        ol.rhs, T.misfit_centred_bound(weak, student, labels=_labels(f_star, label_seed)).width
    )


def test_oscillation_binary_is_the_logit_gap_and_the_first_step_is_tight():
    f_star, weak, student, _ = _instance(11, 40, 2, 0.5, 1.0, "independent")
    o = T.oscillation_bound(weak, student, f_star=f_star)
    logit = lambda p: torch.log(p[:, 1]) - torch.log(p[:, 0])  # noqa: E731
    torch.testing.assert_close(o.pointwise.osc, (logit(weak) - logit(student)).abs())
    # K = 2: |sum_j (F*_j - F_w,j) r_j| = TV(F*, F_w) osc for every x
    assert o.pointwise.interaction.abs().mean().item() == pytest.approx(o.mid, rel=1e-12)
    # a teacher equal to the truth: no interaction, zero width
    exact = T.oscillation_bound(f_star, student, f_star=f_star)
    assert exact.rhs == 0.0 and exact.lhs == 0.0 and exact.gain == pytest.approx(-exact.eps)


def test_oscillation_beats_the_old_width_on_a_mixture_instance():
    inst = mixture_instance(0, n=300, n_classes=4, weak_noise=0.5, weak_floor=1e-3)
    student = T.clip_to_floor(0.5 * inst.weak + 0.5 * inst.f_star, 1e-3)
    o = T.oscillation_bound(inst.weak, student, f_star=inst.f_star)
    assert o.holds and o.rhs < 0.5 * o.old_width


# --------------------------------------------------------------------------- no floor
def test_no_floor_instance_tiny_misfit_large_gain():
    f_star, weak, student = no_floor_instance()
    assert f_star.shape == weak.shape == student.shape == (1, 2) and weak.dtype == F64
    assert weak[0, 1].item() == 1e-8 and student[0, 1].item() == pytest.approx(1e-4)
    r = T.label_free_interval(weak, student, f_star=f_star)
    assert r.eps == pytest.approx(1e-4, rel=2e-3)
    assert r.gain == pytest.approx(0.50, abs=2e-3)
    assert r.holds and r.gain > 1000 * r.eps
    # the two-sided bound is not contradicted: its floor is 1e-8, so its bound is huge
    t1 = T.generalization_bound(weak, student, f_star=f_star)
    assert t1.holds and t1.gamma == pytest.approx(1e-8) and t1.bound_eps > 1e5
    # the gain stays near +1/2 as delta -> 0 while eps -> 0
    small = no_floor_instance(1e-16)
    rs = T.label_free_interval(small.weak, small.student, f_star=small.f_star)
    assert rs.eps < 2e-8 and rs.gain == pytest.approx(0.5, abs=1e-3)


# --------------------------------------------------------------------------- API
def test_results_are_frozen_and_serialise():
    f_star, weak, student, _ = _instance(5, 30, 3, 0.5, 1.0, "close")
    results = [
        T.label_free_interval(weak, student, f_star=f_star),
        T.label_free_interval(weak, student),
        T.generalization_chain(weak, student, f_star=f_star),
        T.oscillation_bound(weak, student, f_star=f_star),
    ]
    for r in results:
        with pytest.raises(dataclasses.FrozenInstanceError):
            r.holds = False  # type: ignore[misc]
        d = r.as_dict()
        assert "pointwise" not in d and d["result"] == r.NAME and d["holds"] is True
        json.dumps(d, allow_nan=False)
        assert r.NAME in str(r) and "holds" in str(r)


def test_validation_errors_name_the_argument():
    f_star, weak, student, _ = _instance(0, 10, 3, 0.9, 1.0, "independent")
    zero = weak.clone()
    zero[0] = torch.tensor([0.0, 0.5, 0.5], dtype=F64)
    y = torch.zeros(10, dtype=torch.long)
    for fn in (T.label_free_interval, T.generalization_chain, T.oscillation_bound):
        with pytest.raises(ValueError, match="student.*shape"):
            fn(weak, student[:5], labels=y)
        with pytest.raises(ValueError, match="weak.*zero probabilities"):
            fn(zero, student, labels=y)
        with pytest.raises(ValueError, match="student.*zero probabilities"):
            fn(weak, zero, labels=y)
        with pytest.raises(ValueError, match="exactly one"):
            fn(weak, student, f_star=f_star, labels=y)
        with pytest.raises(ValueError, match="labels"):
            fn(weak, student, labels=torch.full((10,), 3))
        with pytest.raises(ValueError, match="f_star.*shape"):
            fn(weak, student, f_star=f_star[:4])
        with pytest.raises(ValueError, match="tol"):
            fn(weak, student, labels=y, tol=-1.0)
        with pytest.raises(ValueError, match="weak"):
            fn(weak * 2, student, labels=y)
    with pytest.raises(ValueError, match="exactly one"):
        T.oscillation_bound(weak, student)
    floor = float(torch.minimum(weak.min(), student.min()))
    with pytest.raises(ValueError, match="weak.*clip_to_floor|student.*clip_to_floor"):
        T.generalization_chain(weak, student, gamma=min(2 * floor, 1 / 3))
    with pytest.raises(ValueError, match="gamma"):
        T.generalization_chain(weak, student, gamma=0.5)
    with pytest.raises(ValueError, match="side"):
        T.worst_case_truth(weak, student, side="top")
    with pytest.raises(ValueError, match="weak.*zero probabilities"):
        T.worst_case_truth(zero, student)
    for bad in (0.0, -1e-3, 0.5, 1.0, float("nan"), "x"):
        with pytest.raises(ValueError, match="delta"):
            no_floor_instance(bad)  # type: ignore[arg-type]


def test_sharp_forms_keep_the_device_and_agree_with_cpu(cuda_device):
    f_star, weak, student, _ = _instance(2, 50, 4, 0.5, 1.0, "close")
    for fn in (T.label_free_interval, T.generalization_chain, T.oscillation_bound):
        cpu = fn(weak, student, f_star=f_star)
        gpu = fn(weak.to(cuda_device), student.to(cuda_device), f_star=f_star.to(cuda_device))
        assert gpu.as_dict() == pytest.approx(cpu.as_dict(), rel=1e-10, abs=1e-12)
    truth = T.worst_case_truth(weak.to(cuda_device), student.to(cuda_device))
    assert truth.device.type == "cuda"
