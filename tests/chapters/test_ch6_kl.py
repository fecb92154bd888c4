"""Chapter 6 (the KL extension): the trial jobs and counterexample tables, the analysis the
chapter's study uses (``split_table``, ``pooled_difference``) and the chapter's presentation in
``w2s_utils.book.ch6_kl``. The KL results of the theory layer (mixture solver, trials, softmax
heads) are tested in tests/theory/test_kl.py, the planted mixture in
tests/engine/test_planted_mixture.py, the preset grid in tests/engine/test_presets.py.

Oracles: scipy's ``rel_entr`` and SLSQP (independent of the library's KL and solvers), direct
numpy means and the interval formulas of ``metrics`` applied by hand, and exact identities.
"""

from __future__ import annotations

from types import SimpleNamespace

import matplotlib
import numpy as np
import pandas as pd
import pytest
import torch
from matplotlib.figure import Figure

from tests._oracles import kl_rows
from tests._synthetic import planted_mixture_features
from w2s_utils import analysis, metrics, theory
from w2s_utils.book import ch6_kl as ch
from w2s_utils.engine import planted_mixture as pm
from w2s_utils.theory.instances import (
    charikar_instance,
    logit_linear_instance,
    mixture_instance,
)

matplotlib.use("Agg")


# ------------------------------------------------------------------ the chapter's lemma


# ------------------------------------------------------------------ forward KL onto mixtures


# ------------------------------------------------------------------ the per-instance checks


# ------------------------------------------------------------------ softmax heads: second order


# ------------------------------------------------------------------ the chapter's search
def test_trial_jobs_and_failure_rates_count_and_wilson_interval():
    jobs = ch.trial_jobs(3, kinds=("forward_kl", "reverse_kl_mixture"))
    assert len(jobs) == 2 * len(ch.CONSTRUCTIONS) * 3
    trials = theory.sweep(theory.non_guarantee_trial, jobs, len(jobs))
    rates = ch.failure_rates(trials)
    assert set(rates.kind) == {"forward_kl", "reverse_kl_mixture"}
    assert (rates[rates.kind == "reverse_kl_mixture"].violated == 0).all()
    for _, row in rates.iterrows():
        noise = ch.CONSTRUCTIONS[row.construction]
        same = trials.weak_noise.isna() if noise is None else trials.weak_noise == noise
        sub = trials[(trials.kind == row.kind) & same]
        assert row.valid == int(sub.valid.sum())
        assert row.violated == int((sub.valid & sub.violated).sum())
        lo, hi = metrics.wilson_interval(row.violated, row.valid)
        assert (row.rate_lo, row.rate_hi) == pytest.approx((lo, hi))
        assert row.rate_lo <= row.rate <= row.rate_hi
    glue = ch.rates_glue(rates, trials)
    assert glue["rate_reverse_kl_mixture_viol"] == 0
    assert glue["bound_forward_kl_within"] == glue["bound_forward_kl_n"]
    with pytest.raises(ValueError, match="n_trials"):
        ch.trial_jobs(0)
    with pytest.raises(ValueError, match="kinds"):
        ch.trial_jobs(2, kinds=("nope",))


def test_cached_table_round_trips_text_columns(sandbox):
    calls = []

    def compute():
        calls.append(1)
        return pd.DataFrame({"kind": ["b", "a", "b"], "x": [1.5, 2.0, np.nan], "ok": [1, 0, 1]})

    first = ch.cached_table({"t": 1}, compute, text_columns=["kind"])
    second = ch.cached_table({"t": 1}, compute, text_columns=["kind"])
    assert len(calls) == 1 and second.attrs["cached"] and not first.attrs["cached"]
    pd.testing.assert_frame_equal(first, compute())
    pd.testing.assert_frame_equal(second, compute())
    with pytest.raises(ValueError, match="missing column"):
        ch.cached_table({"t": 2}, compute, text_columns=["nope"])


def test_counterexample_table_adds_up_to_the_result():
    cx = theory.find_forward_kl_counterexample(0)
    table = ch.counterexample_table(cx)
    n, k = cx.instance.f_star.shape
    assert len(table.frame) == n
    assert "KL(F*‖F_w)" in table.frame.columns and f"F_sw[{k}]" in table.frame.columns
    err_weak = np.array([float(v.replace("\u2212", "-")) for v in table.frame["KL(F*‖F_w)"]])
    assert err_weak.mean() == pytest.approx(cx.result.err_weak, abs=1e-3)


# ------------------------------------------------------------------ planted mixture
@pytest.mark.slow
def test_planted_mixture_shared_components_summary_and_glue():
    xs, xw, gold = planted_mixture_features(1)
    comps = pm.mixture_heads(xs, gold, temperatures=(1.0, 3.0))
    assert comps.shape == (2, 240, 2)
    a = pm.planted_mixture_from_features(xs, xw, gold, seed=5, components=comps)
    b = pm.planted_mixture_from_features(xs, xw, gold, seed=5, components=comps)
    pd.testing.assert_frame_equal(a.table, b.table)
    assert torch.equal(a.components, comps)
    c = pm.planted_mixture_from_features(xs, xw, gold, seed=6, components=comps)
    both = pd.concat([a.table, c.table])
    summ = ch.planted_summary(both)
    assert (summ.seeds == 2).all()
    assert summ.loc[("reverse KL (mixture)", "student-train"), "below_line"] == 0
    glue = ch.planted_glue(both)
    assert glue["pl_seeds"] == 2 and glue["pl_rev_train_below"] == 0
    assert glue["pl_rev_train_gain"] == pytest.approx(
        both[(both.student == "reverse KL (mixture)") & (both.split == "student-train")].gain.mean()
    )
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
        frame = ch.gaussian_bridge(reg.f_star, w, s, sigma=sigma).frame
        assert list(frame.iloc[:, 1]) == list(frame.iloc[:, 2])  # equal to 6 decimals
        sq = theory.squared_misfit_gain(w, s, f_star=reg.f_star)
        assert float(frame.iloc[0, 1]) == pytest.approx(sq.err_weak / (2 * sigma**2), abs=1e-6)


# ------------------------------------------------------------------ runs: fakes with a config
def _fake_run(dataset, weak, loss, seed, labels, rng, noise=0.0, acc=0.7):
    n = len(labels)

    def probs(a):
        right = rng.random(n) < a
        p1 = np.where(right == (labels == 1), 0.8, 0.2) + rng.uniform(-0.1, 0.1, n)
        return np.stack([1 - p1, p1], axis=1)

    cfg = SimpleNamespace(dataset=dataset, weak=weak, loss=loss, seed=seed, label_noise=noise)
    return SimpleNamespace(
        config=cfg,
        labels=labels,
        ids=[f"{dataset}{i}" for i in range(n)],
        weak=probs(0.6),
        student=probs(acc),
        ceiling=probs(0.9),
    )


def _runs(loss, n=60, dataset="d", noise=0.0, seeds=3, acc=0.7):
    labels = np.random.default_rng(7 + len(dataset)).integers(0, 2, n)  # one test set per dataset
    rng = np.random.default_rng((0 if loss == "xent" else 1, int(noise * 10), len(dataset)))
    return [_fake_run(dataset, "w", loss, seed, labels, rng, noise, acc) for seed in range(seeds)]


def test_loss_comparison_points_match_direct_means():
    runs = _runs("xent") + _runs("reverse_kl")
    lm = analysis.loss_comparison(runs)
    assert set(lm.loss) == {"xent", "reverse_kl"}
    for loss, rs in (("xent", runs[:3]), ("reverse_kl", runs[3:])):
        row = lm[lm.loss == loss].iloc[0]
        acc = np.mean([np.mean(r.student.argmax(1) == r.labels) for r in rs])
        assert row.acc_student == pytest.approx(acc)
        dis = np.mean([kl_rows(r.student, r.weak).mean() for r in rs])
        assert row.eps_rev == pytest.approx(dis)
        gain = np.mean(
            [
                np.mean(-np.log(r.weak[np.arange(60), r.labels]))
                - np.mean(-np.log(r.student[np.arange(60), r.labels]))
                for r in rs
            ]
        )
        assert row.gain == pytest.approx(gain)
        assert row.slack == pytest.approx(row.gain - row.eps_rev)
        for m in ("acc_student", "pgr", "gain", "eps_rev", "slack"):
            assert row[f"{m}_lo"] <= row[m] <= row[f"{m}_hi"]
    paired = analysis.paired_differences(runs[3:], runs[:3], {"diff": "correct_student"})
    glue = ch.lm_glue(lm, paired)
    assert glue["lm_cells"] == 1 and glue["lm_seeds"] == 3
    assert isinstance(ch.lm_figure(lm, paired), Figure)
    assert len(ch.lm_table(lm).frame) == 2
    matplotlib.pyplot.close("all")


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
    with pytest.raises(ValueError, match="order"):
        analysis.pooled_difference(
            [_permuted(r, perm) for r in rev], fwd, {"d": "correct_student"}, by=("dataset",)
        )


# ------------------------------------------------------------------ pooled difference
def test_pooled_difference_counts_each_test_example_once():
    by = ("dataset", "label_noise")
    rev, fwd = [], []
    for ds, n in (("a", 40), ("bb", 50)):
        for noise in (0.0, 0.2):
            rev += _runs("reverse_kl", n=n, dataset=ds, noise=noise, acc=0.75)
            fwd += _runs("xent", n=n, dataset=ds, noise=noise)
    out = analysis.pooled_difference(rev, fwd, {"d": "correct_student"}, by=by)["d"]
    # oracle: per dataset, the cells' differences averaged example by example, then side by side
    pooled = []
    for ds in ("a", "bb"):
        per_cell = []
        for noise in (0.0, 0.2):
            r = [x for x in rev if (x.config.dataset, x.config.label_noise) == (ds, noise)]
            f = [x for x in fwd if (x.config.dataset, x.config.label_noise) == (ds, noise)]
            per_cell.append(
                np.stack(
                    [
                        (a.student.argmax(1) == a.labels) * 1.0 - (b.student.argmax(1) == b.labels)
                        for a, b in zip(r, f, strict=True)
                    ]
                )
            )
        pooled.append(np.mean(per_cell, axis=0))
    want = metrics.seeds_and_test_interval(np.concatenate(pooled, axis=1))
    assert out.point == pytest.approx(want.point) and out.n_test == 90
    assert (out.lo, out.hi) == pytest.approx((want.lo, want.hi))
    with pytest.raises(ValueError, match="shared_by"):
        analysis.pooled_difference(rev, fwd, {"d": "correct_student"}, by=("label_noise",))
    with pytest.raises(ValueError, match="seeds"):
        analysis.pooled_difference(rev, fwd[:-1], {"d": "correct_student"}, by=by)
    with pytest.raises(ValueError, match="unknown"):
        analysis.pooled_difference(rev, fwd, {"d": "nope"}, by=by)


# ------------------------------------------------------------------ split table
def _per_example(run, split):
    if split == "test":
        x = kl_rows(run.student, run.weak)
    else:  # a split each seed draws: its own size
        x = np.full(10 + run.config.seed, float(run.config.seed))
    return {"eps_rev": x}


def test_split_table_intervals_match_the_metrics_formulas():
    runs = _runs("reverse_kl", seeds=4)
    table = analysis.split_table(runs, _per_example, ["eps_rev"], by=("dataset", "loss"))
    test = table[table.split == "test"].iloc[0]
    want = metrics.seeds_and_test_interval(np.stack([kl_rows(r.student, r.weak) for r in runs]))
    assert (test.eps_rev, test.eps_rev_lo, test.eps_rev_hi) == pytest.approx(
        (want.point, want.lo, want.hi)
    )
    train = table[table.split == "train"].iloc[0]
    seed_iv = metrics.seed_interval(np.arange(4.0))
    assert (train.eps_rev, train.eps_rev_lo, train.eps_rev_hi) == pytest.approx(
        (seed_iv.point, seed_iv.lo, seed_iv.hi)
    )
    assert train.n_inputs == 10 and test.n_seeds == 4
    with pytest.raises(ValueError, match="different sizes"):
        analysis.split_table(runs, _per_example, ["eps_rev"], by=("dataset",), shared=["train"])
    with pytest.raises(ValueError, match="several runs of one seed"):
        analysis.split_table(runs + runs[:1], _per_example, ["eps_rev"], by=("dataset",))
    with pytest.raises(ValueError, match="per_example gives no"):
        analysis.split_table(runs, _per_example, ["gain"], by=("dataset",))
    perm = np.random.default_rng(0).permutation(60)
    with pytest.raises(ValueError, match="order"):
        analysis.split_table(
            [runs[0], _permuted(runs[1], perm)], _per_example, ["eps_rev"], by=("dataset",)
        )


# ------------------------------------------------------------------ the study's presentation
def _study_tables():
    iv = metrics.Interval
    diffs = pd.DataFrame(
        {
            "dataset": ["a", "a", "b"],
            "label_noise": [0.0, 0.4, 0.0],
            "n_seeds": [10, 10, 10],
            "n_test": [100, 100, 100],
            "d_acc": [0.001, -0.002, 0.0],
            "d_acc_lo": [-0.003, -0.004, -0.001],
            "d_acc_hi": [0.004, 0.0005, 0.001],
            "d_gain": [0.002, 0.0, 0.003],
            "d_gain_lo": [0.001, -0.001, 0.002],
            "d_gain_hi": [0.003, 0.001, 0.004],
        }
    )
    overall = {"d_acc": iv(-0.0003, -0.0015, 0.0009), "d_gain": iv(0.0017, 0.001, 0.0024)}
    rows = []
    for ds, noise in (("a", 0.0), ("a", 0.4), ("b", 0.0)):
        for loss in ("forward", "reverse"):
            for split, m in (("test", -0.02), ("train", -0.001 if ds == "b" else -0.03)):
                rows.append(
                    {
                        "dataset": ds,
                        "label_noise": noise,
                        "loss": loss,
                        "split": split,
                        "n_seeds": 10,
                        "gain": 0.01,
                        "gain_lo": 0.0,
                        "gain_hi": 0.02,
                        "disagreement": 0.03,
                        "disagreement_lo": 0.02,
                        "disagreement_hi": 0.04,
                        "gain_minus_disagreement": m,
                        "gain_minus_disagreement_lo": m - 0.005,
                        "gain_minus_disagreement_hi": m + 0.0005,
                    }
                )
    return diffs, overall, pd.DataFrame(rows)


@pytest.mark.slow
def test_study_glue_tables_and_figures():
    diffs, overall, guarantee = _study_tables()
    per_run = pd.DataFrame(
        [
            {
                "dataset": d,
                "label_noise": nz,
                "seed": 0,
                "acc_weak": 0.7,
                "acc_student": 0.72,
                "acc_ceiling": 0.75,
                "gain": 0.02,
            }
            for d in ("a", "b")
            for nz in (0.0, 0.4)
        ]
    )
    glue = ch.study_glue(diffs, overall, per_run, [0.0, 0.4])
    assert glue["hs_cells"] == 3 and glue["hs_comparisons"] == 6
    assert glue["hs_acc_rev_better"] == 0 and glue["hs_gain_rev_better"] == 2
    assert "Not in accuracy" in glue["hs_verdict"] and glue["hs_noise_text"] == "0 or 40%"
    assert glue["hs_acc_all_text"] == "\u22120.0003 [\u22120.0015, +0.0009]"
    g = ch.guarantee_glue(guarantee, realizable=["b"])
    assert g["gc_test_short"] == 6 and g["gc_forward_train_below"] == 3
    assert "within 0.0010 nats of equality" in g["gc_sentence"]
    mix = pd.DataFrame({"holds": [True, True]})
    head = ch.headline_glue(mix, overall, guarantee, 3, 10)["headline"]
    assert "2 of 2 random instances" in head and "6 of 6 (cell, loss) pairs" in head
    assert len(ch.difference_table(diffs, overall).frame) == 4  # three cells and the overall
    assert len(ch.guarantee_table(guarantee).frame) == len(guarantee)
    for fig in (ch.difference_figure(diffs, overall), ch.guarantee_figure(guarantee)):
        assert isinstance(fig, Figure)
    reading = guarantee[guarantee.dataset == "a"].rename(columns={"label_noise": "target_noise"})
    r = ch.reading_glue(reading)
    assert r["rd_noises"] == "0 and 0.4" and "nearly closes" in r["rd_sentence"]
    assert len(ch.reading_table(reading).frame) == len(reading)
    matplotlib.pyplot.close("all")


def test_second_order_glue_reads_the_sweep():
    bounds = pd.DataFrame(
        {
            "loss": ["reverse", "reverse", "forward"],
            "margin": [-0.001, 0.0005, -0.002],
            "bound": [0.05, 0.04, 9.0],
            "holds": [True, True, True],
            "kl_student_star": [0.1, 0.2, np.nan],
            "identity_residual": [np.nan, np.nan, 1e-13],
        }
    )
    g = ch.second_order_glue(bounds)
    assert g["so_n"] == 2 and g["so_holds"] == 2 and g["so_margin_max"] == 0.001
    assert g["so_ratio_max"] == pytest.approx(0.02) and g["so_fwd_rho_max"] == 1e-13


@pytest.mark.slow
def test_check_figures_and_tables_draw():
    mix = theory.sweep(
        theory.reverse_kl_mixture_check,
        (mixture_instance(i, n=30, star_on_boundary=i % 2 == 0) for i in range(6)),
        6,
    )
    fwd = theory.sweep(
        theory.forward_kl_linear_check, (logit_linear_instance(i, n=20) for i in range(4)), 4
    )
    glue = ch.checks_glue(mix, fwd)
    assert glue["chk_n"] == 6 and glue["chk_viol"] == 0 and glue["fwd_viol"] == 0
    assert glue["chk_interior"] + glue["chk_boundary_n"] == 6
    jobs = ch.trial_jobs(2)
    trials = theory.sweep(theory.non_guarantee_trial, jobs, len(jobs))
    rates = ch.failure_rates(trials)
    for fig in (ch.mixture_figure(mix), ch.rates_figure(rates), ch.bound_figure(trials)):
        assert isinstance(fig, Figure)
    assert len(ch.rates_table(rates).frame) == len(rates)
    assert len(ch.second_order_table(trials).frame) >= 2
    matplotlib.pyplot.close("all")


# ------------------------------------------------------------------ presets
