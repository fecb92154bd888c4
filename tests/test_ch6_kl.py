"""Chapter 6 (the KL extension): the forward-KL mixture solver, the new trial kind, the chapter's
helpers in ``w2s_utils.book.kl`` and its preset grid."""

from __future__ import annotations

from types import SimpleNamespace

import matplotlib
import numpy as np
import pandas as pd
import pytest
import torch
from _oracles import slsqp_mixture_kl
from hypothesis import given
from hypothesis import strategies as st
from scipy.special import rel_entr

from w2s_utils import analysis, metrics, theory
from w2s_utils.book import kl as book_kl
from w2s_utils.engine import planted_mixture as pm
from w2s_utils.engine.presets import KLGrid, get_preset
from w2s_utils.theory.instances import charikar_instance, mixture_instance

matplotlib.use("Agg")


# ------------------------------------------------------------------ the chapter's lemma
@given(st.integers(0, 10_000), st.integers(2, 6))
def test_three_point_identity_against_scipy(seed, k):
    """The lemma behind the theorem: KL(r||q) = KL(r||p) + KL(p||q) + sum (r - p) log(p / q)."""
    rng = np.random.default_rng(seed)
    r, p, q = rng.dirichlet(np.full(k, 0.7), size=3)
    r[rng.random(k) < 0.3] = 0.0  # r may have zeros (the truth can be a point mass)
    r = r / r.sum() if r.sum() > 0 else np.eye(k)[0]
    lhs = rel_entr(r, q).sum()
    rhs = rel_entr(r, p).sum() + rel_entr(p, q).sum() + ((r - p) * np.log(p / q)).sum()
    assert lhs == pytest.approx(rhs, abs=1e-12)


# ------------------------------------------------------------------ forward KL onto mixtures


def test_forward_kl_projection_mixture_is_optimal_against_slsqp():
    for seed in range(6):
        inst = mixture_instance(seed, n=40, n_classes=3, n_components=4)
        proj = theory.forward_kl_projection_mixture(inst.weak, inst.components)
        assert proj.converged and proj.gap <= 1e-10
        assert float(proj.weights.sum()) == pytest.approx(1.0) and proj.weights.min() >= 0
        want = float(metrics.kl(inst.weak, proj.student).mean())
        assert proj.objective == pytest.approx(want, abs=1e-12)
        assert proj.objective <= slsqp_mixture_kl(inst.weak, inst.components, "forward") + 1e-9


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


# ------------------------------------------------------------------ trials
def test_forward_kl_mixture_trial_kind_is_a_real_non_guarantee():
    assert "forward_kl_mixture" in theory.TRIAL_KINDS
    outs = [theory.non_guarantee_trial("forward_kl_mixture", s) for s in range(12)]
    valid = [o for o in outs if o.valid]
    assert len(valid) >= 10
    assert any(o.violated for o in valid)  # it does fail
    for o in valid:
        assert o.violation == pytest.approx(o.lhs - o.rhs)
        assert o.solver_residual <= 1e-10


def test_failure_rates_counts_and_wilson_interval():
    trials, rates = book_kl.failure_rates(
        3, kinds=("forward_kl", "reverse_kl_mixture"), progress=False
    )
    assert len(trials) == 2 * len(book_kl.CONSTRUCTIONS) * 3
    assert set(rates.kind) == {"forward_kl", "reverse_kl_mixture"}
    assert (rates[rates.kind == "reverse_kl_mixture"].violated == 0).all()
    for _, row in rates.iterrows():
        sub = trials[(trials.kind == row.kind) & (trials.construction == row.construction)]
        assert row.valid == int(sub.valid.sum())
        assert row.violated == int((sub.valid & sub.violated).sum())
        assert row.rate_lo <= row.rate <= row.rate_hi
    with pytest.raises(ValueError, match="n_trials"):
        book_kl.failure_rates(0)


def test_counterexample_table_adds_up_to_the_result():
    cx = theory.find_forward_kl_counterexample(0)
    df = book_kl.counterexample_table(cx)
    assert len(df) == cx.instance.features.shape[0]
    assert df.err_weak.mean() == pytest.approx(cx.result.err_weak)
    assert df.err_student.mean() == pytest.approx(cx.result.err_student)
    assert df.misfit.mean() == pytest.approx(cx.result.eps)
    assert df.err_student.mean() > df.err_weak.mean() - df.misfit.mean()  # the violation


# ------------------------------------------------------------------ planted mixture
def _synthetic_features(seed: int, n: int = 240):
    gen = torch.Generator().manual_seed(seed)
    xs = torch.randn((n, 6), generator=gen, dtype=torch.float64)
    xw = xs[:, :2] + 0.5 * torch.randn((n, 2), generator=gen, dtype=torch.float64)
    gold = (xs[:, 0] + 0.3 * torch.randn(n, generator=gen, dtype=torch.float64) > 0).long()
    return xs, xw, gold


def test_planted_mixture_reverse_student_obeys_the_theorem_in_sample():
    xs, xw, gold = _synthetic_features(0)
    for seed in range(3):
        task = pm.planted_mixture_from_features(xs, xw, gold, seed=seed)
        assert task.components.shape == (4, 240, 2)
        torch.testing.assert_close(
            task.f_star, torch.einsum("k,knc->nc", task.alpha_star, task.components)
        )
        tab = task.table.set_index(["student", "split"])
        assert tab.loc[("reverse KL (mixture)", "student-train"), "slack"] >= -1e-9
        row = tab.loc[("forward KL (mixture)", "test")]
        assert row.gain == pytest.approx(row.err_weak - row.err_student)
        assert row.slack == pytest.approx(row.gain - row.eps_rev)
        assert len(set(task.student_idx.tolist()) & set(task.test_idx.tolist())) == 0


def test_planted_mixture_shared_components_and_summary():
    xs, xw, gold = _synthetic_features(1)
    comps = pm.mixture_heads(xs, gold, temperatures=(1.0, 3.0))
    assert comps.shape == (2, 240, 2)
    a = pm.planted_mixture_from_features(xs, xw, gold, seed=5, components=comps)
    b = pm.planted_mixture_from_features(xs, xw, gold, seed=5, components=comps)
    pd.testing.assert_frame_equal(a.table, b.table)
    assert torch.equal(a.components, comps)
    both = pd.concat([a.table, b.table])
    summ = book_kl.planted_summary(both)
    assert (summ.seeds == 2).all()
    assert summ.loc[("reverse KL (mixture)", "student-train"), "below_line"] == 0
    with pytest.raises(ValueError, match="components"):
        pm.planted_mixture_from_features(xs, xw, gold, components=comps[:, :10])
    with pytest.raises(ValueError, match="temperatures"):
        pm.mixture_heads(xs, gold, temperatures=(1.0,))


# ------------------------------------------------------------------ Gaussian bridge
def test_gaussian_bridge_columns_agree():
    reg = charikar_instance(1, n=300)
    w = theory.least_squares_projection(reg.h_w, reg.f_star).predictions
    s = theory.least_squares_projection(reg.h_s, w).predictions
    for sigma in (1.0, 0.5):
        df = book_kl.gaussian_bridge(reg.f_star, w, s, sigma=sigma)
        np.testing.assert_allclose(df.iloc[:, 0], df.iloc[:, 1], atol=1e-12)
        assert abs(df.loc["slack", "Gaussian KL"]) < 1e-10  # Pythagoras: linear class


# ------------------------------------------------------------------ fine-tuned students
def _fake_run(dataset, weak, loss, seed, labels, rng):
    n = len(labels)

    def probs(acc):
        right = rng.random(n) < acc
        p1 = np.where(right == (labels == 1), 0.8, 0.2) + rng.uniform(-0.1, 0.1, n)
        return np.stack([1 - p1, p1], axis=1)

    cfg = SimpleNamespace(dataset=dataset, weak=weak, loss=loss, seed=seed)
    return SimpleNamespace(
        config=cfg,
        labels=labels,
        ids=[f"t{i}" for i in range(n)],
        weak=probs(0.6),
        student=probs(0.7),
        ceiling=probs(0.9),
    )


def _runs(loss, n=60):
    labels = np.random.default_rng(7).integers(0, 2, n)  # one test set for every run
    rng = np.random.default_rng(0 if loss == "xent" else 1)
    return [_fake_run("d", "w", loss, seed, labels, rng) for seed in range(3)]


def test_loss_comparison_points_match_direct_means():
    runs = _runs("xent") + _runs("reverse_kl")
    lm = analysis.loss_comparison(runs)
    assert set(lm.loss) == {"xent", "reverse_kl"}
    for loss, rs in (("xent", runs[:3]), ("reverse_kl", runs[3:])):
        row = lm[lm.loss == loss].iloc[0]
        acc = np.mean([metrics.accuracy(torch.as_tensor(r.student), r.labels) for r in rs])
        assert row.acc_student == pytest.approx(acc)
        dis = np.mean(
            [
                float(metrics.kl(torch.as_tensor(r.student), torch.as_tensor(r.weak)).mean())
                for r in rs
            ]
        )
        assert row.eps_rev == pytest.approx(dis)
        gain = np.mean(
            [
                metrics.log_loss(torch.as_tensor(r.weak), r.labels)
                - metrics.log_loss(torch.as_tensor(r.student), r.labels)
                for r in rs
            ]
        )
        assert row.gain == pytest.approx(gain)
        assert row.slack == pytest.approx(row.gain - row.eps_rev)
        c = [np.mean(r.student.argmax(1) == r.labels) for r in rs]
        w = [np.mean(r.weak.argmax(1) == r.labels) for r in rs]
        g = [np.mean(r.ceiling.argmax(1) == r.labels) for r in rs]
        assert row.pgr == pytest.approx((np.mean(c) - np.mean(w)) / (np.mean(g) - np.mean(w)))
        for m in ("acc_student", "pgr", "gain", "eps_rev", "slack"):
            assert row[f"{m}_lo"] <= row[m] <= row[f"{m}_hi"]
    table = book_kl.interval_table(lm, ["dataset", "weak", "loss"], ["pgr", "gain"])
    assert table.shape == (2, 2) and table.iloc[0, 0].count("[") == 1


def test_paired_accuracy_difference_and_mismatched_test_sets():
    fwd, rev = _runs("xent"), _runs("reverse_kl")
    paired = analysis.paired_differences(rev, fwd, {"diff": "correct_student"})
    want = np.mean(
        [
            np.mean(r.student.argmax(1) == r.labels) - np.mean(f.student.argmax(1) == f.labels)
            for r, f in zip(rev, fwd, strict=True)
        ]
    )
    assert paired.loc[0, "diff"] == pytest.approx(want)
    assert paired.loc[0, "diff_lo"] <= want <= paired.loc[0, "diff_hi"]
    rev[0].ids = [f"other{i}" for i in range(len(rev[0].ids))]
    with pytest.raises(ValueError, match="different examples"):
        analysis.paired_differences(rev, fwd, {"diff": "correct_student"})
    with pytest.raises(ValueError, match="different examples"):
        analysis.loss_comparison(rev)


def test_plots_draw():
    _, rates = book_kl.failure_rates(2, kinds=("reverse_kl_mixture",), progress=False)
    ax = book_kl.plot_failure_rates(rates)
    assert len(ax.patches) == len(rates)
    df = pd.DataFrame({"gain": [0.1, 0.2], "eps_rev": [0.05, 0.3], "who": ["a", "b"]})
    ax = book_kl.plot_gain_vs_disagreement(df, "who")
    assert ax.get_legend() is not None
    matplotlib.pyplot.close("all")


# ------------------------------------------------------------------ presets
@pytest.mark.parametrize("name", ["ci", "paper", "gpu"])
def test_kl_grid_in_presets(name):
    g = get_preset(name).kl
    assert isinstance(g, KLGrid)
    assert g.n_instances >= 1 and g.n_trials >= 1 and g.planted_n >= 10
    assert len(g.planted_seeds) >= 1
    p = get_preset(name)
    for w in g.weaks:
        assert w in p.ladder_weaks + p.extra_weaks
    for d in g.datasets:
        assert d in p.ladder_datasets


def _permuted(r, perm):
    return SimpleNamespace(
        config=r.config,
        labels=r.labels[perm],
        ids=[r.ids[i] for i in perm],
        weak=r.weak[perm],
        student=r.student[perm],
        ceiling=r.ceiling[perm],
    )


def test_runs_in_other_test_orders_are_refused_not_realigned():
    fwd, rev = _runs("xent"), _runs("reverse_kl")
    perm = np.random.default_rng(3).permutation(len(fwd[0].ids))
    shuffled = [fwd[0], _permuted(fwd[1], perm), fwd[2]]
    with pytest.raises(ValueError, match="order"):
        analysis.loss_comparison(shuffled)
    with pytest.raises(ValueError, match="order"):
        analysis.paired_differences(
            [_permuted(r, perm) for r in rev], fwd, {"diff": "correct_student"}
        )
