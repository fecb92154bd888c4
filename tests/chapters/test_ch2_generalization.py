"""Chapter 2's book module (w2s_utils.book.ch2_generalization) and its random-instance builders.

The module presents what the chapter's visible cells compute, so these tests check it against
independent computations: hand formulas for the worked example, a brute-force search over the
truths of a two-class input for the error-aware interval, scikit-learn's log-loss for the
language-model rows, numpy for medians and correlations.
"""

from __future__ import annotations

import math
from types import SimpleNamespace

import matplotlib
import numpy as np
import pandas as pd
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from matplotlib.figure import Figure
from scipy.special import rel_entr
from sklearn.metrics import log_loss

from w2s_utils import metrics, theory
from w2s_utils.book import ch2_generalization as ch
from w2s_utils.book.tables import Table
from w2s_utils.engine.data import SplitSizes
from w2s_utils.theory import instances

matplotlib.use("Agg")

W, S, F = (np.array([ch.EXAMPLE[k]]) for k in ("weak", "student", "f_star"))


def _brute_force_interval(weak: np.ndarray, student: np.ndarray, e: float) -> tuple[float, float]:
    """Smallest and largest gain over two-class truths p = (t, 1 - t) with KL(p || F_w) <= e,
    by a fine grid in t (one input): an oracle for the error-aware interval."""
    t = np.linspace(0.0, 1.0, 2_000_001)
    p = np.stack([t, 1 - t], axis=1)
    kl = rel_entr(p, weak).sum(1)
    gain = p @ (np.log(student) - np.log(weak))
    ok = kl <= e + 1e-12
    return float(gain[ok].min()), float(gain[ok].max())


# ------------------------------------------------------------------------------ builders
@pytest.mark.slow
@given(seed=st.integers(0, 10_000), k=st.integers(2, 8))
@settings(max_examples=25, deadline=None)
def test_floored_triple_has_a_floor_inside_its_range(seed, k):
    f_star, weak, student = instances.floored_triple(seed, k, n_inputs=12)
    assert f_star.shape == weak.shape == student.shape == (12, k)
    for t in (f_star, weak, student):
        torch.testing.assert_close(t.sum(-1), torch.ones(12, dtype=t.dtype))
    assert 1e-4 * (1 - 1e-9) <= min(float(weak.min()), float(student.min()))


def test_random_instances_cycle_the_class_counts_and_are_deterministic():
    draws = ch.random_instances(7, n_inputs=5)
    assert [d["weak"].shape[1] for d in draws] == [2, 3, 4, 5, 8, 2, 3]
    again = ch.random_instances(7, n_inputs=5)
    assert all(torch.equal(a["f_star"], b["f_star"]) for a, b in zip(draws, again, strict=True))
    f_star, weak, _ = instances.floored_triple(100_000 * 4 + 2, 4, n_inputs=5)
    assert torch.equal(draws[2]["weak"], weak) and torch.equal(draws[2]["f_star"], f_star)
    with pytest.raises(ValueError, match="n:"):
        ch.random_instances(0)


def test_no_floor_inputs_are_the_instances():
    inputs = ch.no_floor_inputs([1e-4])
    inst = instances.no_floor_instance(1e-4)
    assert set(inputs[0]) == {"f_star", "weak", "student"}
    assert torch.equal(inputs[0]["weak"], inst.weak)
    with pytest.raises(ValueError, match="deltas"):
        ch.no_floor_inputs([])


def test_positive_keeps_positive_rows_and_lifts_zeros():
    p = np.array([[0.3, 0.7], [0.5, 0.5]])
    assert torch.equal(ch.positive(p), torch.as_tensor(p))
    q = ch.positive(np.array([[1.0, 0.0], [0.2, 0.8]]))
    assert float(q.min()) >= 1e-12 * (1 - 1e-9)
    torch.testing.assert_close(q.sum(-1), torch.ones(2, dtype=q.dtype))
    assert abs(float(q[1, 0]) - 0.2) < 1e-10


# ------------------------------------------------------------------------ worked example
def test_example_glue_against_hand_formulas_and_a_brute_force_truth_search():
    lf = theory.label_free_interval(W, S, f_star=F)
    top = theory.worst_case_truth(W, S, "upper")
    reached = theory.label_free_interval(W, S, f_star=top).gain
    chain = theory.generalization_chain(W, S, f_star=F)
    ea = theory.error_aware_interval(W, S, f_star=F)
    osc = theory.oscillation_bound(W, S, f_star=F)
    wx = ch.example_glue(lf, reached, chain, ea, osc)
    r1, r2 = math.log(0.8 / 0.6), math.log(0.2 / 0.4)
    assert wx["wx_r1"] == pytest.approx(r1) and wx["wx_r2"] == pytest.approx(r2)
    assert wx["wx_gain"] == pytest.approx(0.9 * r1 + 0.1 * r2)
    assert wx["wx_lower"] == pytest.approx(r2) and wx["wx_upper"] == pytest.approx(r1)
    assert wx["wx_reached"] == pytest.approx(r1)
    assert wx["wx_share"] == pytest.approx((0.9 * r1 + 0.1 * r2) / r1)
    assert wx["wx_eps"] == pytest.approx(-(0.6 * r1 + 0.4 * r2))
    assert wx["wx_eps_rev"] == pytest.approx(0.8 * r1 + 0.2 * r2)
    e = float(rel_entr([0.9, 0.1], [0.6, 0.4]).sum())
    assert wx["wx_err_weak"] == pytest.approx(e)
    lo, hi = _brute_force_interval(W[0], S[0], e)
    assert wx["wx_ea_lower"] == pytest.approx(lo, abs=1e-5)
    assert wx["wx_ea_upper"] == pytest.approx(hi, abs=1e-5)
    assert wx["wx_ea_upper"] == pytest.approx(wx["wx_gain"], abs=1e-9)  # F* ends the segment
    assert round(wx["wx_ea_lower"], 4) == -0.4302 and round(wx["wx_ea_upper"], 4) == 0.1896
    # the chain's step 2 is an equality here (min(u, v) = gamma at the largest |r|)
    assert wx["wx_mean_log_tv"] == pytest.approx(wx["wx_mean_max_abs_log_ratio"])
    assert wx["wx_bound_tv"] == pytest.approx(0.2 / 0.2)
    root = math.sqrt(wx["wx_eps"] / 2)
    assert wx["wx_log_pinsker"] == pytest.approx(math.log1p(min(1.0, root) / 0.2))
    # K = 2: the oscillation step is an equality, and Hoeffding's relaxation is wider
    assert wx["wx_osc_mid"] == pytest.approx(abs(wx["wx_interaction"]))
    assert -wx["wx_eps"] + wx["wx_ea_osc"] >= wx["wx_ea_upper"]
    assert all(isinstance(v, float) for v in wx.values())


def test_example_table_is_presented():
    table = ch.example_table()
    assert isinstance(table, Table) and len(table.frame) == 2
    assert table.frame.iloc[0]["r_j = log(F_sw,j / F_w,j)"] == "+0.2877"


@pytest.mark.slow
def test_exercise_glue_matches_the_brute_force_interval():
    budgets = np.linspace(0.0, 1.2, 241)
    curve = theory.error_aware_curve(W, S, budgets)
    ex = ch.exercise_glue(curve, (0.0, 0.6))
    eps = float(rel_entr(W[0], S[0]).sum())
    assert ex["ex0_lower"] == pytest.approx(-eps) and ex["ex0_upper"] == pytest.approx(-eps)
    lo, hi = _brute_force_interval(W[0], S[0], 0.6)
    assert ex["ex1_lower"] == pytest.approx(lo, abs=1e-5)
    assert ex["ex1_upper"] == pytest.approx(hi, abs=1e-9) == pytest.approx(math.log(0.8 / 0.6))
    assert ex["ex_slack_upper"] == pytest.approx(-math.log(0.6))
    assert ex["ex_slack_lower"] == pytest.approx(-math.log(0.4))
    with pytest.raises(ValueError, match="budgets"):
        ch.exercise_glue(curve, (0.123,))


# ------------------------------------------------------------------------------ caching
def test_cached_sweep_recomputes_only_what_changed(sandbox):
    draws = ch.random_instances(4, n_inputs=6)
    before = len(ch.sweep_pieces())
    first = ch.cached_sweep(theory.label_free_interval, draws, name="t")
    assert len(ch.sweep_pieces()) == before  # computed, not read
    again = ch.cached_sweep(theory.label_free_interval, draws, name="t")
    assert len(ch.sweep_pieces()) == before + 1  # read, with its stored seconds
    assert ch.sweep_pieces()[-1][1] >= 0
    pd.testing.assert_frame_equal(first, again, check_dtype=False)
    direct = theory.sweep(theory.label_free_interval, draws, len(draws))
    np.testing.assert_allclose(first.upper, direct.upper)
    assert first.holds.dtype == bool and first.result.iloc[0] == direct.result.iloc[0]
    changed = [
        dict(draws[0], f_star=theory.worst_case_truth(draws[0]["weak"], draws[0]["student"]))
    ]
    other = ch.cached_sweep(theory.label_free_interval, changed + draws[1:], name="t")
    assert other.gain.iloc[0] == pytest.approx(other.upper.iloc[0])
    assert not np.isclose(other.gain.iloc[0], first.gain.iloc[0])


def test_cached_sweep_keeps_missing_numbers_as_nan(sandbox):
    draws = [{k: v for k, v in d.items() if k != "f_star"} for d in ch.random_instances(2)]
    table = ch.cached_sweep(theory.label_free_interval, draws, name="no truth")
    assert table.gain.isna().all() and table.holds.all()
    with pytest.raises(ValueError, match="draws"):
        ch.cached_sweep(theory.label_free_interval, [], name="x")
    with pytest.raises(ValueError, match="name"):
        ch.cached_sweep(theory.label_free_interval, draws, name=" ")


# ---------------------------------------------------------------------------- the checks
@pytest.fixture
def checks(sandbox):
    draws = ch.random_instances(10, n_inputs=8)
    results = {
        "lf": theory.label_free_interval,
        "chain": theory.generalization_chain,
        "osc": theory.oscillation_bound,
        "ea": theory.error_aware_interval,
    }
    out = {k: ch.cached_sweep(fn, draws, name=k) for k, fn in results.items()}
    for side in ("upper", "lower"):
        ends = [
            {**d, "f_star": theory.worst_case_truth(d["weak"], d["student"], side)} for d in draws
        ]
        out[f"attained_{side}"] = ch.cached_sweep(theory.label_free_interval, ends, name=side)
    return out


def test_check_table_and_glue_find_no_failure(checks):
    table = ch.check_table(checks)
    assert list(table.frame["classes K"]) == ["2", "3", "4", "5", "8"]
    fails = [c for c in table.frame.columns if c.endswith("failures")]
    assert len(fails) == 6 and (table.frame[fails] == "0").all().all()
    glued = ch.check_glue(checks)
    assert glued["chk_n"] == 10 and glued["chk_fails"] == 0
    # the error-aware interval lies inside the label-free one, so it is used at least as much
    assert glued["chk_share_t1"] <= glued["chk_share_lf"] <= glued["chk_share_ea"]
    assert 0 < glued["chk_ea_over_lf"] <= 1
    merged_t1 = checks["chain"].bound_tv
    assert glued["chk_t1_over_trivial"] == float((merged_t1 > checks["chain"].trivial).mean())
    eac = ch.error_aware_check_glue(checks["ea"])
    assert eac["eac_n"] == 10 and eac["eac_fails"] == 0
    assert eac["eac_gap"] < 1e-9 and eac["eac_over"] < 1e-9


def test_a_failure_is_counted(checks):
    broken = dict(checks)
    broken["attained_upper"] = checks["attained_upper"].assign(gain=lambda d: d.gain - 1e-3)
    assert ch.check_glue(broken)["chk_fails"] == 10
    assert (ch.check_table(broken).frame["upper end attained: failures"] != "0").any()
    with pytest.raises(ValueError, match="missing the 'ea'"):
        ch.check_glue({k: v for k, v in checks.items() if k != "ea"})


def test_share_figure_has_one_box_per_bound(checks):
    fig = ch.share_figure(checks)
    assert isinstance(fig, Figure)
    assert len(fig.axes[0].get_xticklabels()) == len(ch.CHAIN) + 1
    assert fig.axes[0].get_ylim()[1] == pytest.approx(1.02)


def test_error_aware_figure_draws_every_panel():
    curve = theory.error_aware_curve(W, S, np.linspace(0, 1.2, 50))
    ea = theory.error_aware_interval(W, S, f_star=F)
    fig = ch.error_aware_figure({"a": (curve, ea.budget, ea.gain), "b": (curve, 0.5, None)})
    assert len(fig.axes) == 2 and len(fig.legends) == 1
    with pytest.raises(ValueError, match="panels"):
        ch.error_aware_figure({})


# ------------------------------------------------------------------------ no-floor example
def test_no_floor_table_tiny_misfit_large_gain():
    deltas = [1e-4, 1e-8]
    inputs = ch.no_floor_inputs(deltas)
    lf = theory.sweep(theory.label_free_interval, inputs, 2)
    chain = theory.sweep(theory.generalization_chain, inputs, 2)
    glued = ch.no_floor_glue(deltas, lf, chain)
    assert glued["nf_delta"] == 1e-8
    assert glued["nf_eps"] == pytest.approx(1e-4, rel=0.05)
    assert glued["nf_gain"] == pytest.approx(0.5, abs=0.01)
    assert glued["nf_log"] >= abs(glued["nf_gain"])
    table = ch.no_floor_table(deltas, lf, chain)
    assert len(table.frame) == 2 and "+0.500" in table.frame["gain (nats)"].iloc[1]
    with pytest.raises(ValueError, match="one row per delta"):
        ch.no_floor_table([1e-4], lf, chain)


# ------------------------------------------------------------------ language-model helpers
def _fake_run(dataset: str, weak: str, seed: int, n: int = 60) -> SimpleNamespace:
    f_star, w, s = instances.floored_triple(seed + 17 * len(weak), 2, n_inputs=n)
    rng = np.random.default_rng(seed)
    labels = np.array([rng.choice(2, p=p) for p in f_star.numpy()])
    ceiling = instances.weak_predictions(f_star, noise=0.3, floor=1e-3, seed=seed)
    cfg = SimpleNamespace(dataset=dataset, weak=weak, seed=seed)
    return SimpleNamespace(
        config=cfg, weak=w.numpy(), student=s.numpy(), ceiling=ceiling.numpy(),
        labels=labels, ids=[f"t{i}" for i in range(n)], cached=True, pieces=(),
    )  # fmt: skip


@pytest.fixture
def runs():
    return [_fake_run(d, w, s) for d in ("a", "b") for w in ("w1", "w2") for s in (0, 1)]


def _lm(runs, sandbox_unused=None):
    inputs = ch.lm_inputs(runs)
    tables = [
        theory.sweep(fn, inputs, len(inputs))
        for fn in (
            theory.label_free_interval,
            theory.error_aware_interval,
            theory.generalization_chain,
            theory.oscillation_bound,
        )
    ]
    return ch.lm_table(runs, *tables)


def test_lm_table_against_sklearn_and_numpy(runs):
    lm = _lm(runs)
    assert len(lm) == len(runs) and lm.holds.all()
    for r, (_, row) in zip(runs, lm.iterrows(), strict=True):
        ce_w, ce_s = log_loss(r.labels, r.weak, labels=[0, 1]), log_loss(r.labels, r.student)
        assert row.gain == pytest.approx(ce_w - ce_s, abs=1e-10)
        assert row.budget == pytest.approx(ce_w, abs=1e-10)  # e = the teacher's test CE
        ratio = np.log(r.student) - np.log(r.weak)
        assert row.lf_lower == pytest.approx(ratio.min(1).mean())
        assert row.lf_upper == pytest.approx(ratio.max(1).mean())
        assert row.lf_lower - 1e-12 <= row.ea_lower <= row.gain <= row.ea_upper
        assert row.ea_upper <= row.lf_upper + 1e-12 and row.ea_upper <= row.budget + 1e-12
        assert row.gamma == pytest.approx(min(r.weak.min(), r.student.min()))
        assert row.ea_bound <= row.lf_bound + 1e-12 <= row.mean_max_abs_log_ratio + 2e-12


def test_clipped_inputs_never_lower_the_floor(runs):
    low, high = ch.clipped_inputs(runs, 1e-6), ch.clipped_inputs(runs, 0.2)
    for r, lo_in, hi_in in zip(runs, low, high, strict=True):
        raw = min(r.weak.min(), r.student.min())
        assert lo_in["gamma"] == pytest.approx(raw)  # clipping below the floor changes nothing
        torch.testing.assert_close(lo_in["weak"], torch.as_tensor(r.weak, dtype=torch.float64))
        assert hi_in["gamma"] == 0.2 and float(hi_in["student"].min()) >= 0.2 - 1e-12
        torch.testing.assert_close(hi_in["weak"].sum(-1), torch.ones(60, dtype=torch.float64))
    with pytest.raises(ValueError, match="gamma"):
        ch.clipped_inputs(runs, 0.7)


def test_lm_glue_clip_table_and_headline(runs):
    lm = _lm(runs)
    clip_in = ch.clipped_inputs(runs, 0.2)
    clipped = theory.sweep(theory.generalization_chain, clip_in, len(clip_in))
    glued = ch.lm_glue(lm, clipped, 0.2)
    assert glued["lm_n"] == len(runs) and glued["lm_fails"] == 0
    assert glued["lm_ea_width"] == pytest.approx(float(np.median(lm.ea_upper - lm.ea_lower)))
    assert glued["lm_lf_width"] == pytest.approx(float(np.median(lm.lf_upper - lm.lf_lower)))
    assert glued["lm_ea_width"] <= glued["lm_lf_width"] + 1e-12
    assert glued["lm_t1_over_trivial"] == int((lm.bound_tv > lm.trivial).sum())
    slack = np.isclose(lm.ea_lower, lm.lf_lower, rtol=0, atol=1e-9)
    assert glued["lm_lower_slack"] == int(slack.sum())
    best = lm.loc[lm.gain.idxmax()]
    need = 2 * best.gamma**2 * math.expm1(max(best.gain, 0.0)) ** 2
    assert glued["lm_required_eps"] == pytest.approx(need)
    assert glued["lm_clipped_runs"] == len(runs)
    moved = np.abs(clipped.gain.to_numpy() - lm.gain.to_numpy()).max()
    assert glued["lm_clip_moved"] == pytest.approx(moved)
    text = ch.headline_glue(glued)["headline"]
    assert f"{glued['lm_ea_width']:.2f}" in text and f"{len(runs)} language-model runs" in text
    table = ch.clip_table(lm, {0.2: clipped})
    assert list(table.frame["floor"]) == ["raw floor", "γ = 0.2"]
    assert table.frame["largest |gain change|"].iloc[0] == "0.0000"
    groups = ch.group_means(lm)
    assert groups.gain.iloc[0] == pytest.approx(
        lm[(lm.dataset == "a") & (lm.weak == "w1")].gain.mean()
    )
    assert len(ch.lm_interval_table(groups).frame) == 4
    assert len(ch.per_run_table(lm).frame) == len(runs)


def _fake_paired(groups: pd.DataFrame) -> pd.DataFrame:
    """A paired table (gain convention) with seed-only and seeds x test intervals."""
    out = groups[["dataset", "weak"]].copy()
    out["n_seeds"] = 3
    for q in ("gain", "acc_gain"):
        out[q] = np.array([0.02, -0.03, 0.01, 0.0])
        out[f"{q}_lo"] = np.array([0.01, -0.05, -0.01, -0.02])
        out[f"{q}_hi"] = np.array([0.03, -0.01, 0.03, 0.02])
        out[f"{q}_seed_lo"] = np.array([0.015, -0.04, 0.005, -0.01])
        out[f"{q}_seed_hi"] = np.array([0.025, -0.02, 0.015, 0.01])
    return out


def test_statistics_glue_names_cells_and_counts_comparisons(runs):
    paired = _fake_paired(ch.group_means(_lm(runs)))
    glued = ch.statistics_glue(paired, example=("b", "w1"))
    assert glued["st_ce_up"] == "w1 on a" and glued["st_ce_down"] == "w2 on a"
    assert glued["st_ce_lost"] == "w1 on b"
    assert glued["st_ce_n_seed"] == 3 and glued["st_ce_n_both"] == 2
    assert glued["n_comparisons"] == 8 and glued["st_expected_false"] == pytest.approx(0.4)
    assert glued["st_ex_name"] == "w1 on b" and glued["st_ex_verdict"] == "not distinguishable from"
    assert glued["st_ex_seed_verdict"] == "above"  # the claim the test-set term removes
    assert ch.statistics_glue(paired, example=("b", "w2"))["st_ex_seed_verdict"] == (
        "not distinguishable from"
    )
    assert glued["st_ex_both"] == "+0.010 [\u22120.010, +0.030]"
    table = ch.statistics_table(paired)
    assert table.frame.iloc[0]["gain, seeds only"] == "+0.020 [+0.015, +0.025]"
    with pytest.raises(ValueError, match="no single cell"):
        ch.statistics_glue(paired, example=("zzz", "w1"))


@pytest.mark.slow
def test_interval_and_chain_figures(runs):
    groups = ch.group_means(_lm(runs)).assign(label=lambda d: d.weak + " / " + d.dataset)
    fig = ch.interval_figure(groups, _fake_paired(groups), ["a", "b"], ["w1", "w2"])
    assert isinstance(fig, Figure) and len(fig.axes) == 2 and len(fig.legends) == 1
    fig = ch.chain_figure({"one": groups, "two": groups})
    assert len(fig.axes) == 2 and fig.axes[0].get_yscale() == "log"
    assert len(fig.axes[1].get_lines()) == len(groups)
    assert len(fig.axes[0].get_xticklabels()) == len(ch.CHAIN) + 2


def test_correlation_glue_against_numpy():
    rng = np.random.default_rng(1)
    per_run = pd.DataFrame({"eps": rng.uniform(0, 1, 12), "gain": rng.normal(size=12)})
    glued = ch.correlation_glue(per_run, n_permutations=200)
    eps, gain = per_run.eps.to_numpy(), per_run.gain.to_numpy()
    assert glued["corr_eps_gain"] == pytest.approx(np.corrcoef(eps, gain)[0, 1])
    assert glued["corr_eps_iota"] == pytest.approx(np.corrcoef(eps, gain + eps)[0, 1])
    assert 0 < glued["corr_eps_iota_perm"] <= 1  # iota = gain + eps: positive by construction
    assert glued["corr_n_comparisons"] == 2


# -------------------------------------------------------------------------------- planted
def _fake_planted(weak: str, teacher_n: int, seed: int, n: int = 40) -> SimpleNamespace:
    f_star, w, s = instances.floored_triple(seed + 31 * teacher_n + len(weak), 2, n_inputs=n)
    rng = np.random.default_rng(seed)
    labels = np.array([rng.choice(2, p=p) for p in f_star.numpy()])
    sizes = SplitSizes(weak_train=100, w2s_train=100, val=10, test=n)
    cfg = SimpleNamespace(
        dataset="d", weak=weak, teacher_n=teacher_n, seed=seed, sizes=sizes, pool=0
    )
    return SimpleNamespace(
        config=cfg, f_star=f_star.numpy(), weak=w.numpy(), student=s.numpy(),
        ceiling=w.numpy(), labels=labels, ids=[f"t{i}" for i in range(n)], cached=seed == 0,
        seconds=0.5,
    )  # fmt: skip


def test_planted_table_glue_summary_and_figures():
    planted = [_fake_planted(w, n, s) for w in ("w1", "w2") for n in (20, 0) for s in (0, 1)]
    inputs = ch.planted_inputs(planted)
    with_ce = [
        {**d, "err_weak": metrics.log_loss(r.weak, r.labels)}
        for d, r in zip(inputs, planted, strict=True)
    ]
    fns = (theory.label_free_interval, theory.error_aware_interval)
    lf, ea = (theory.sweep(fn, inputs, len(inputs)) for fn in fns)
    ea_ce = theory.sweep(theory.error_aware_interval, with_ce, len(with_ce))
    osc = theory.sweep(theory.oscillation_bound, inputs, len(inputs))
    chain = theory.sweep(theory.generalization_chain, inputs, len(inputs))
    pl = ch.planted_table(planted, lf, ea, ea_ce, osc, chain)
    assert len(pl) == 8 and pl.holds.all()
    exact_err = [float(rel_entr(r.f_star, r.weak).sum(1).mean()) for r in planted]
    np.testing.assert_allclose(pl.budget, exact_err, atol=1e-10)  # e = the exact Err(F_w)
    assert (pl.ce_budget >= pl.budget).all()  # CE(F_w) >= Err(F_w) on these samples
    assert (pl.ea_upper <= pl.ce_upper + 1e-12).all()  # monotone in the budget
    assert list(pl.label[:4]) == ["w1, 20 examples"] * 2 + ["w1, 100 examples"] * 2
    exact = {}
    for w in ("w1", "w2"):
        for n in (20, 0):
            rows = [r for r in planted if r.config.weak == w and r.config.teacher_n == n]
            per = np.stack(
                [metrics.per_example(r.weak, r.student, f_star=r.f_star)["gain"] for r in rows]
            )
            exact[(w, n)] = metrics.seeds_and_test_interval(per)
    glued = ch.planted_glue(pl, exact)
    assert glued["pl_runs"] == 8 and glued["pl_fails"] == 0 and glued["pl_teachers"] == 4
    assert glued["pl_improved"] == sum(iv.lo > 0 for iv in exact.values())
    assert glued["pl_ea_width"] <= glued["pl_lf_width"] + 1e-12
    table = ch.planted_summary(pl, exact)
    assert len(table.frame) == 4 and "[" in table.frame["exact gain"].iloc[0]
    fig = ch.planted_interval_figure(pl)
    assert isinstance(fig, Figure) and len(fig.axes[0].collections) == 8
    assert ch.heads_pieces(planted) and all(s == 0.5 for _, s in ch.heads_pieces(planted))
    assert len(ch.heads_pieces(planted)) == 4  # only the runs read from the cache
    with pytest.raises(ValueError, match="f_star"):
        ch.planted_inputs([SimpleNamespace(weak=W, student=S, f_star=None)])
