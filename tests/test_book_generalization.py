"""Chapter 2's helpers (w2s_utils.book.generalization) and its random-instance builders."""

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

from w2s_utils import theory
from w2s_utils.book import generalization as gen
from w2s_utils.theory import instances

matplotlib.use("Agg")


# ------------------------------------------------------------------------------ builders
@given(seed=st.integers(0, 10_000), k=st.integers(2, 8))
@settings(max_examples=25, deadline=None)
def test_floored_triple_has_a_floor_inside_its_range(seed, k):
    f_star, weak, student = instances.floored_triple(seed, k, n_inputs=12)
    assert f_star.shape == weak.shape == student.shape == (12, k)
    for t in (f_star, weak, student):
        torch.testing.assert_close(t.sum(-1), torch.ones(12, dtype=t.dtype))
    floor = min(float(weak.min()), float(student.min()))
    assert 1e-4 * (1 - 1e-9) <= floor


def test_floored_triple_is_deterministic_and_seed_dependent():
    a, b = instances.floored_triple(3, 3), instances.floored_triple(3, 3)
    c = instances.floored_triple(4, 3)
    assert all(torch.equal(x, y) for x, y in zip(a, b, strict=True))
    assert not torch.equal(a[1], c[1])


def test_unfloored_triple_is_positive_without_a_floor():
    mins = [float(instances.unfloored_triple(s, 3)[1].min()) for s in range(20)]
    assert all(m > 0 for m in mins)
    assert min(mins) < 1e-4  # no floor: the noise drives some probabilities far down
    with pytest.raises(ValueError, match="n_classes"):
        instances.unfloored_triple(0, 1)


# ------------------------------------------------------------------------------- helpers
def test_positive_keeps_positive_rows_and_lifts_zeros():
    p = np.array([[0.3, 0.7], [0.5, 0.5]])
    assert torch.equal(gen.positive(p), torch.as_tensor(p))
    q = gen.positive(np.array([[1.0, 0.0], [0.2, 0.8]]))
    assert float(q.min()) >= 1e-12 * (1 - 1e-9)
    torch.testing.assert_close(q.sum(-1), torch.ones(2, dtype=q.dtype))
    assert abs(float(q[1, 0]) - 0.2) < 1e-10


def test_worked_example_traces_the_proof_by_hand():
    table, wx = gen.worked_example()
    l1, l2 = math.log(0.6 / 0.8), math.log(0.4 / 0.2)
    assert table.shape == (2, 5)
    assert wx["wx_l1"] == pytest.approx(l1) and wx["wx_l2"] == pytest.approx(l2)
    assert wx["wx_change"] == pytest.approx(0.9 * l1 + 0.1 * l2)
    assert wx["wx_eps"] == pytest.approx(0.6 * l1 + 0.4 * l2)
    assert wx["wx_eps_rev"] == pytest.approx(-(0.8 * l1 + 0.2 * l2))
    assert wx["wx_attained"] == pytest.approx(wx["wx_upper"]) == pytest.approx(l2)
    assert wx["wx_share"] == pytest.approx((0.9 * l1 + 0.1 * l2) / l1)
    # step 2 is an equality here (min(u, v) = gamma at the largest log-ratio)
    assert wx["wx_mean_log_tv"] == pytest.approx(wx["wx_mean_max_abs_log_ratio"])
    assert wx["wx_bound_tv"] == pytest.approx(0.2 / 0.2)
    assert wx["wx_log_pinsker"] == pytest.approx(math.log1p(math.sqrt(wx["wx_eps"] / 2) / 0.2))
    # K = 2: the oscillation step is an equality
    assert wx["wx_osc_mid"] == pytest.approx(abs(wx["wx_interaction"]))
    assert wx["wx_err_weak"] == pytest.approx(float(rel_entr([0.9, 0.1], [0.6, 0.4]).sum()))


@pytest.fixture(scope="module")
def check():
    return gen.random_check(25, n_inputs=10)


def test_random_check_finds_no_failure_and_attains_the_ends(check):
    assert len(check) == 25
    assert set(check.K) == set(gen.K_VALUES)
    for col in ("interval_holds", "attained", "chain_holds", "t1_holds", "osc_holds", "alt_holds"):
        assert check[col].all(), col
    assert ((check.share_interval >= 0) & (check.share_interval <= 1 + 1e-9)).all()
    assert (check.lower <= check.gain + 1e-12).all()
    assert (check.gain <= check.upper + 1e-12).all()
    assert list(check.instance) == list(range(25))  # one row per instance (theory.sweep)


def test_check_summary_and_glue(check):
    styled = gen.check_summary(check)
    data = styled.data
    assert list(data.index) == sorted(gen.K_VALUES)
    fails = [c for c in data.columns if c.endswith("fails")]
    assert len(fails) == 6 and (data[fails] == 0).all().all()
    glued = gen.check_glue(check)
    assert glued["chk_n"] == 25 and glued["chk_fails"] == 0 and glued["chk_attained"] == 1.0
    assert glued["chk_share_t1"] <= glued["chk_share_max_abs"]
    expected = float((check.bound_tv > check.trivial).mean())
    assert glued["chk_t1_over_trivial"] == expected


def test_share_figure_has_one_box_per_bound(check):
    fig = gen.share_figure(check)
    assert isinstance(fig, Figure)
    assert len(fig.axes[0].get_xticklabels()) == len(gen.LINKS) + 2
    assert fig.axes[0].get_ylim()[1] == pytest.approx(1.02)


def test_clipping_sweep_skips_the_uniform_floor():
    gammas = (0.01, 0.2, 0.25, 0.3)
    sweep = gen.clipping_sweep(4, gammas)  # K = 2, 3, 4, 5
    expected_skipped = sum(g >= 1 / k for k in (2, 3, 4, 5) for g in gammas)
    assert sweep.attrs["skipped"] == expected_skipped
    assert len(sweep) == 4 * len(gammas) - expected_skipped
    assert (sweep.gamma < 1 / sweep.K).all() and sweep.holds.all()
    glued = gen.sweep_glue(sweep)
    assert glued["sw_n"] == 4 and glued["sw_skipped"] == expected_skipped
    assert glued["sw_gamma_small"] == 0.01 and glued["sw_fails"] == 0
    assert isinstance(gen.sweep_figure(sweep), Figure)


def test_no_floor_table_tiny_misfit_large_gain():
    table = gen.no_floor_table((1e-4, 1e-8))
    assert table.loc[1e-8, "ε"] == pytest.approx(1e-4, rel=0.05)
    assert table.loc[1e-8, "ΔErr"] == pytest.approx(-0.5, abs=0.01)
    assert (table["sharp lower"] <= table["ΔErr"]).all()
    assert (table["ΔErr"] <= table["sharp upper"]).all()
    assert (table["log(1+√(ε/2)/γ)"] >= table["ΔErr"].abs()).all()
    assert table.loc[1e-8, "√(ε/2)/γ"] > table.loc[1e-4, "√(ε/2)/γ"]
    glued = gen.no_floor_glue(table)
    assert all(type(v) is float for v in glued.values())
    assert glued["nf_delta"] == 1e-8 and glued["nf_change"] == table.loc[1e-8, "ΔErr"]


# ------------------------------------------------------------------ language-model helpers
def _fake_run(dataset: str, weak: str, seed: int, n: int = 60) -> SimpleNamespace:
    f_star, w, s = instances.floored_triple(seed + 17 * len(weak), 2, n_inputs=n)
    rng = np.random.default_rng(seed)
    labels = np.array([rng.choice(2, p=p) for p in f_star.numpy()])
    ceiling = instances.weak_predictions(f_star, noise=0.3, floor=1e-3, seed=seed)
    cfg = SimpleNamespace(dataset=dataset, weak=weak, seed=seed)
    ids = [f"t{i}" for i in range(n)]
    return SimpleNamespace(
        config=cfg, weak=w.numpy(), student=s.numpy(), ceiling=ceiling.numpy(),
        labels=labels, ids=ids,
    )  # fmt: skip


@pytest.fixture(scope="module")
def runs():
    return [_fake_run(d, w, s) for d in ("a", "b") for w in ("w1", "w2") for s in (0, 1)]


def test_run_bounds_matches_sklearn_and_never_lowers_the_floor(runs):
    table = gen.run_bounds(runs, (1e-6, 0.2))
    assert len(table) == 3 * len(runs) and table.holds.all()
    for r, (_, row) in zip(runs, table[table["floor"] == "raw"].iterrows(), strict=True):
        ce = log_loss(r.labels, r.student, labels=[0, 1]) - log_loss(
            r.labels, r.weak, labels=[0, 1]
        )
        assert row.err_change == pytest.approx(ce, abs=1e-10)
        assert row.gamma == pytest.approx(min(r.weak.min(), r.student.min()))
    low = table[table["floor"] == "γ = 1e-06"]
    raw = table[table["floor"] == "raw"]
    assert not low.clipped.any()
    np.testing.assert_allclose(low.gamma.to_numpy(), raw.gamma.to_numpy())
    high = table[table["floor"] == "γ = 0.2"]
    assert high.clipped.all() and (high.gamma == 0.2).all()
    assert (high.bound_tv <= high.trivial * 10).all()


def test_group_means_clip_table_and_lm_glue(runs):
    table = gen.run_bounds(runs, (0.2,))
    groups = gen.group_means(table)
    assert len(groups) == 4
    first = table[(table["floor"] == "raw") & (table.dataset == "a") & (table.weak == "w1")]
    assert groups.iloc[0].err_change == pytest.approx(first.err_change.mean())
    clip = gen.clip_table(table).data
    assert list(clip.index) == ["raw", "γ = 0.2"] and clip.loc["raw", "|ΔCE − raw ΔCE|"] == 0
    glued = gen.lm_glue(table, 0.2)
    assert glued["lm_n"] == len(runs) and glued["lm_fails"] == 0
    raw = table[table["floor"] == "raw"]
    assert glued["lm_t1_over_trivial"] == int((raw.bound_tv > raw.trivial).sum())
    assert glued["lm_clipped_runs"] == len(runs)
    best = raw.loc[raw.err_change.idxmin()]
    gain = max(-best.err_change, 0.0)
    assert glued["lm_required_eps"] == pytest.approx(2 * best.gamma**2 * math.expm1(gain) ** 2)
    assert glued["lm_eps_min"] <= glued["lm_eps_max"]


def _fake_paired(groups: pd.DataFrame) -> pd.DataFrame:
    """A paired table (gain convention) whose ΔCE = -gain and accuracy gain read the same."""
    out = groups[["dataset", "weak"]].copy()
    for q, sign in (("gain", -1.0), ("acc_gain", 1.0)):
        out[q] = sign * np.array([0.02, -0.03, 0.01, 0.0])
        lo, hi = ("hi", "lo") if sign < 0 else ("lo", "hi")
        out[f"{q}_{lo}"] = sign * np.array([0.01, -0.05, -0.01, -0.02])
        out[f"{q}_{hi}"] = sign * np.array([0.03, -0.01, 0.03, 0.02])
        out[f"{q}_seed_{lo}"] = sign * np.array([0.015, -0.04, 0.005, -0.01])
        out[f"{q}_seed_{hi}"] = sign * np.array([0.025, -0.02, 0.015, 0.01])
    return out


def test_interval_and_chain_figures(runs):
    groups = gen.group_means(gen.run_bounds(runs))
    fig = gen.interval_figure(groups, _fake_paired(groups), ["a", "b"], ["w1", "w2"])
    assert isinstance(fig, Figure) and len(fig.axes) == 2
    fig = gen.chain_figure({"one": groups, "two": groups.assign(label=groups.weak)})
    assert len(fig.axes) == 2 and fig.axes[0].get_yscale() == "log"
    assert len(fig.axes[1].get_lines()) == len(groups)


def test_statistics_table_and_glue_name_the_lost_claims(runs):
    paired = _fake_paired(gen.group_means(gen.run_bounds(runs)))
    table = gen.statistics_table(paired)
    assert table.shape == (4, 4)
    assert table.iloc[0, 0] == "+0.0200 [+0.0150, +0.0250]"
    glued = gen.statistics_glue(paired)
    assert glued["st_ce_up"] == "w1 on a" and glued["st_ce_down"] == "w2 on a"
    assert glued["st_ce_lost"] == "w1 on b" and glued["st_ce_gained"] == "none"
    assert glued["st_ce_n_seed"] == 3 and glued["st_ce_n_both"] == 2


def test_correlation_glue_against_numpy():
    rng = np.random.default_rng(1)
    per_run = pd.DataFrame({"eps": rng.uniform(0, 1, 12), "gain": rng.normal(size=12)})
    glued = gen.correlation_glue(per_run, n_permutations=200)
    eps, ch = per_run.eps.to_numpy(), -per_run.gain.to_numpy()  # the text's ΔCE = -gain
    assert glued["corr_eps_change"] == pytest.approx(np.corrcoef(eps, ch)[0, 1])
    assert glued["corr_eps_iota"] == pytest.approx(np.corrcoef(eps, ch - eps)[0, 1])
    assert -1 <= glued["corr_eps_iota_perm"] < 0  # iota = change - eps: negative by construction


# -------------------------------------------------------------------------------- planted
def _fake_planted(seed: int) -> SimpleNamespace:
    f_star, weak, student = instances.floored_triple(seed, 2, n_inputs=40)
    err = {
        "weak": float(rel_entr(f_star.numpy(), weak.numpy()).sum(-1).mean()),
        "student": float(rel_entr(f_star.numpy(), student.numpy()).sum(-1).mean()),
        "ceiling": 0.01,
    }
    ce = {"weak": err["weak"] + 0.5, "student": err["student"] + 0.5}
    return SimpleNamespace(
        f_star=f_star, weak=weak, student=student, err=err, ce=ce,
        gold_accuracy=0.9, bayes_entropy=0.5,
    )  # fmt: skip


def test_planted_runs_calls_planted_task_for_every_teacher_and_seed(monkeypatch):
    calls = []

    def fake(dataset, weak, strong, *, n, seed, temperature):
        calls.append((dataset, weak, strong, n, seed, temperature))
        return seed

    monkeypatch.setattr(gen, "planted_task", fake)
    out = gen.planted_runs("d", ["w1", "w2"], "s", [0, 1], n=10, temperature=2.0)
    assert list(out) == [("w1", 0), ("w1", 1), ("w2", 0), ("w2", 1)]
    assert calls[0] == ("d", "w1", "s", 10, 0, 2.0)


def test_planted_table_glue_and_figures():
    planted = {
        (w, s): _fake_planted(10 * i + s) for i, w in enumerate(("w1", "w2")) for s in (0, 1)
    }
    pl = gen.planted_table(planted)
    assert len(pl) == 4 and pl.holds.all()
    np.testing.assert_allclose(pl.err_change, pl.err_student - pl.err_weak, atol=1e-10)
    np.testing.assert_allclose(pl.ce_change, pl.err_change, atol=1e-10)
    assert (pl.osc_width <= pl.old_width + 1e-12).all()
    glued = gen.planted_glue(pl)
    assert glued["pl_runs"] == 4 and glued["pl_fails"] == 0
    assert glued["pl_ce_gap"] == pytest.approx(0, abs=1e-9)
    assert isinstance(gen.planted_interval_figure(pl), Figure)
    runs = [_fake_run("a", "w1", 0)]
    styled = gen.per_run_table(gen.run_bounds(runs), pl)
    assert len(styled.data) == 1 + 4
    assert "E TV/γ" in styled.data.columns


def test_lm_rows_match_theory_directly(runs):
    r = runs[0]
    row = gen.run_bounds([r]).iloc[0]
    lf = theory.label_free_interval(r.weak, r.student, labels=r.labels)
    # the chapter's rows keep the ΔErr sign (= -gain) until its text is rewritten
    assert row.lower == pytest.approx(-lf.upper) and row.upper == pytest.approx(-lf.lower)
    assert row.err_change == pytest.approx(-lf.gain)
