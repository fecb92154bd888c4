"""Chapter 3 (calibration): temperature scaling, the multi-class bound, the binned-ECE escape,
the weak_temperature pipeline field, the chapter's random instances and its book module
(:mod:`w2s_utils.book.ch3_calibration`: the memo of tables, figures, tables and glue)."""

from __future__ import annotations

import math
import tracemalloc
from functools import partial
from types import SimpleNamespace

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from scipy import sparse
from scipy.optimize import linprog, minimize_scalar
from torchmetrics.functional.classification import multiclass_calibration_error

from w2s_utils import analysis, metrics, theory
from w2s_utils.book import ch3_calibration as ch
from w2s_utils.engine import cache, data
from w2s_utils.engine import experiment as ex
from w2s_utils.engine.presets import get_preset
from w2s_utils.theory import instances


def _nll(z: torch.Tensor, y: torch.Tensor, t: float) -> float:
    return float(torch.nn.functional.cross_entropy(z / t, y))


# --------------------------------------------------------------------------- temperature
@given(
    seed=st.integers(0, 10_000),
    k=st.integers(2, 6),
    true_t=st.floats(0.3, 4.0),
    scale=st.floats(0.5, 4.0),
)
def test_fit_temperature_matches_scipy_optimum(seed, k, true_t, scale):
    g = torch.Generator().manual_seed(seed)
    z = torch.randn(400, k, generator=g, dtype=torch.float64) * scale
    y = torch.multinomial(torch.softmax(z / true_t, -1), 1, generator=g)[:, 0]
    t = metrics.fit_temperature(z, y, kind="logits")
    ref = minimize_scalar(
        lambda s: _nll(z, y, math.exp(s)),
        bounds=(math.log(1e-2), math.log(1e2)),
        method="bounded",
        options={"xatol": 1e-12},
    )
    # the fitted value is at least as good as scipy's and the two agree
    assert _nll(z, y, t) <= ref.fun + 1e-12
    assert t == pytest.approx(math.exp(ref.x), rel=1e-4)
    # probabilities in, log-probabilities used: the same optimum
    assert metrics.fit_temperature(torch.softmax(z, -1), y) == pytest.approx(t, rel=1e-9)


def test_fit_temperature_binary_and_bounds():
    rng = np.random.default_rng(0)
    p = rng.uniform(0.02, 0.98, 2000)
    y = (rng.uniform(size=2000) < p).astype(np.int64)
    sharp = metrics.apply_temperature(torch.tensor(p), 0.4)  # over-confident copy of p
    assert metrics.fit_temperature(sharp, y) == pytest.approx(2.5, rel=0.15)
    logit = np.log(p / (1 - p))
    assert metrics.fit_temperature(logit, y, kind="logits") == pytest.approx(1.0, rel=0.15)
    # a predictor that is anti-correlated with the labels: optimum beyond the bound, clamped
    assert metrics.fit_temperature(-logit, y, kind="logits", bounds=(0.1, 10.0)) == 10.0
    with pytest.raises(ValueError, match="kind"):
        metrics.fit_temperature(p, y, kind="odds")
    with pytest.raises(ValueError, match="bounds"):
        metrics.fit_temperature(p, y, bounds=(2.0, 1.0))
    with pytest.raises(ValueError, match="labels"):
        metrics.fit_temperature(p, y[:10])


def test_apply_temperature(rng):
    z = torch.tensor(rng.normal(size=(50, 4)) * 2)
    p = torch.softmax(z, -1)
    torch.testing.assert_close(metrics.apply_temperature(p, 1.0), p)
    torch.testing.assert_close(metrics.apply_temperature(p, 2.5), torch.softmax(z / 2.5, -1))
    assert torch.equal(metrics.apply_temperature(p, 0.3).argmax(-1), p.argmax(-1))
    b = metrics.apply_temperature(p[:, 0], 2.0)  # [N] binary in, [N] out
    assert b.shape == (50,)
    torch.testing.assert_close(b, torch.sigmoid(torch.logit(p[:, 0]) / 2.0))
    for bad in (0.0, -1.0, math.inf, True):
        with pytest.raises(ValueError, match="temperature"):
            metrics.apply_temperature(p, bad)


def test_temperature_orders_like_relplot():
    """Tempered copies of a calibrated predictor are less calibrated by both the exact smooth CE
    and relplot's kernel smooth ECE (an independent estimator): strictly more so as T falls below
    1; above 1 both rank T = 1 best (not monotone: as T grows the predictor tends to the constant
    1/2, which is calibrated when the base rate is 1/2)."""
    relplot = pytest.importorskip("relplot")
    rng = np.random.default_rng(3)
    truth = rng.uniform(0.05, 0.95, 4000)
    y = (rng.uniform(size=4000) < truth).astype(np.int64)

    def both(temps):
        preds = [metrics.apply_temperature(torch.tensor(truth), t).numpy() for t in temps]
        return (
            np.array([metrics.smooth_ce(p, y) for p in preds]),
            np.array([float(relplot.smECE(p, y)) for p in preds]),
        )

    for vals in both((1.0, 0.5, 0.25)):
        assert np.all(np.diff(vals) > 0), vals
    for vals in both((1.0, 2.0, 4.0)):
        assert vals.argmin() == 0, vals


# --------------------------------------------------------------------------- theory
def _exact_lp_smce(probs: np.ndarray, target: np.ndarray) -> float:
    """The definition, solved directly: per class, max sum_i w_i r_i over |w_i| <= 1 and
    |w_i - w_j| <= ||p_i - p_j||_1 for *all* pairs (sparse HiGHS); independent of the library."""
    n, k = probs.shape
    resid = target - probs
    if n == 1:
        return float(np.abs(resid).sum())
    i, j = np.triu_indices(n, 1)
    dist = np.abs(probs[i] - probs[j]).sum(1)
    rows = np.arange(len(i))
    one = sparse.csr_matrix(
        (np.r_[np.ones(len(i)), -np.ones(len(i))], (np.r_[rows, rows], np.r_[i, j])),
        shape=(len(i), n),
    )
    a_ub = sparse.vstack([one, -one]).tocsr()
    b_ub = np.r_[dist, dist]
    total = 0.0
    for c in range(k):
        res = linprog(-resid[:, c], A_ub=a_ub, b_ub=b_ub, bounds=(-1.0, 1.0), method="highs")
        assert res.status == 0
        total += -res.fun
    return total / n


def _instance(rng, n: int, k: int, labels: bool):
    """Dirichlet predictions, miscalibrated (tempered, noisy) against a Dirichlet F*."""
    f_star = rng.dirichlet(np.full(k, rng.uniform(0.3, 2.0)), size=n)
    z = np.log(np.clip(f_star, 1e-12, 1.0)) * rng.uniform(0.3, 3.0) + rng.normal(0, 0.5, (n, k))
    p = np.exp(z - z.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    if labels:
        y = (f_star.cumsum(1) > rng.uniform(size=(n, 1))).argmax(1)
        return p, np.eye(k)[y], {"labels": torch.tensor(y)}
    return p, f_star, {"f_star": torch.tensor(f_star)}


def _check_brackets(rng, n: int, k: int, labels: bool) -> None:
    """Every bracket (unlimited, all arcs, 0/1/2 rounds) contains the definition's LP value, and
    the unlimited runs close on it."""
    p, target, truth = _instance(rng, n, k, labels)
    exact = _exact_lp_smce(p, target)
    pt = torch.tensor(p)
    full = theory.multiclass_smooth_ce(pt, **truth)
    assert full.exact and full.value == pytest.approx(exact, abs=1e-8), (n, k, full, exact)
    assert full.method == "dp" if k == 2 else full.method in ("lp", "colgen")
    for kw in (
        {"method": "colgen"},
        {"method": "lp"},
        {"method": "colgen", "max_rounds": 0},
        {"method": "colgen", "max_rounds": 1},
        {"method": "colgen", "max_rounds": 2},
    ):
        r = theory.multiclass_smooth_ce(pt, **truth, **kw)
        assert r.lower <= exact + 1e-9 and exact <= r.upper + 1e-9, (n, k, kw, r, exact)
        if "max_rounds" not in kw:
            assert r.exact and r.value == pytest.approx(exact, abs=1e-8)


def test_multiclass_smooth_ce_brackets_the_exact_lp():
    # 200 random instances, N <= 30, K = 2..5, labels and F* alternately
    rng = np.random.default_rng(2024)
    for t in range(200):
        _check_brackets(rng, int(rng.integers(1, 31)), int(rng.integers(2, 6)), bool(t % 2))


@pytest.mark.slow
def test_multiclass_smooth_ce_brackets_the_exact_lp_larger():
    # 12 instances with N = 100..200 (the all-pairs oracle LP takes seconds each)
    rng = np.random.default_rng(2025)
    for t in range(12):
        _check_brackets(rng, int(rng.integers(100, 201)), int(rng.integers(3, 6)), bool(t % 2))


@pytest.mark.parametrize("seed", range(4))
def test_multiclass_smooth_ce_k2_is_the_exact_1d_programme(seed):
    # K = 2: the dynamic programme (method "dp") equals the LP of the definition and colgen
    rng = np.random.default_rng(seed)
    for labels in (True, False):
        p, target, truth = _instance(rng, 150, 2, labels)
        exact = _exact_lp_smce(p, target)
        dp = theory.multiclass_smooth_ce(torch.tensor(p), **truth)
        cg = theory.multiclass_smooth_ce(torch.tensor(p), **truth, method="colgen")
        assert dp.method == "dp" and dp.exact and dp.width == 0.0
        assert dp.value == pytest.approx(exact, abs=1e-9)
        assert cg.exact and cg.value == pytest.approx(exact, abs=1e-8)


def test_multiclass_smooth_ce_bracket_width_on_realistic_inputs():
    # N = 600, K = 4, miscalibrated Dirichlet predictions against sampled labels: the certified
    # bracket narrows with every column-generation round (measured: 73%, 26%, 4.3% of the value
    # after 1, 2, 3 rounds) and closes when unlimited; more widths in the benchmarks README
    rng = np.random.default_rng(7)
    p, _, truth = _instance(rng, 600, 4, labels=True)
    pt = torch.tensor(p)
    full = theory.multiclass_smooth_ce(pt, **truth)
    assert full.exact and full.width <= 1e-8 * max(1.0, full.upper)
    widths = []
    for rounds in (1, 2, 3):
        r = theory.multiclass_smooth_ce(pt, **truth, max_rounds=rounds)
        assert r.lower <= full.value + 1e-9 <= r.upper + 2e-9
        widths.append(r.width / full.value)
    assert widths[0] >= widths[1] >= widths[2] and widths[2] <= 0.1, widths


def test_multiclass_smooth_ce_memory_guard_raises_before_allocating():
    # the all-arcs LP at N = 3,000, K = 5 would need ~1.5 GiB; with a 100 MB ceiling it is refused
    # before any large allocation, and the message says what to do
    rng = np.random.default_rng(0)
    p = torch.tensor(rng.dirichlet(np.ones(5), size=3000))
    y = torch.tensor(rng.integers(0, 5, 3000))
    tracemalloc.start()
    try:
        with pytest.raises(ValueError, match="subsample the rows.*method='colgen'"):
            theory.multiclass_smooth_ce(p, labels=y, method="lp", max_memory=100 * 2**20)
        with pytest.raises(ValueError, match="subsample the rows"):
            theory.multiclass_smooth_ce(p, labels=y, max_memory=10 * 2**20)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 5 * 2**20, peak  # a few copies of the [3000, 5] input, nothing of N^2 size
    with pytest.raises(ValueError, match="method"):
        theory.multiclass_smooth_ce(p, labels=y, method="simplex")
    with pytest.raises(ValueError, match="K = 2"):
        theory.multiclass_smooth_ce(p, labels=y, method="dp")


@given(seed=st.integers(0, 10_000), k=st.integers(2, 5), noise=st.floats(0.05, 2.0))
def test_multiclass_bound_holds_on_random_instances(seed, k, noise):
    f_star = instances.random_simplex(24, k, seed=seed)
    weak = instances.weak_predictions(f_star, noise=1.0, seed=seed + 1)
    student = instances.weak_predictions(weak, noise=noise, seed=seed + 2)
    r = theory.multiclass_calibration_bound(weak, student, f_star=f_star)
    assert r.holds and r.exact and r.determined, r
    assert r.lhs == pytest.approx(r.diff, abs=1e-7)
    y = torch.multinomial(f_star, 1, generator=torch.Generator().manual_seed(seed))[:, 0]
    assert theory.multiclass_calibration_bound(weak, student, labels=y).holds


def test_multiclass_bound_with_brackets_uses_the_honest_side():
    # one LP round per class: brackets; lhs is the largest difference they allow, so it is at
    # least the exact difference and lhs_lower at most it; holds then implies the exact check
    rng = np.random.default_rng(3)
    for seed in range(6):
        f_star = instances.random_simplex(120, 4, seed=seed)
        weak = instances.weak_predictions(f_star, noise=1.0, seed=seed + 1)
        student = instances.weak_predictions(
            weak, noise=float(rng.uniform(0.1, 1.5)), seed=seed + 2
        )
        ex = theory.multiclass_calibration_bound(weak, student, f_star=f_star)
        br = theory.multiclass_calibration_bound(
            weak, student, f_star=f_star, method="colgen", time_limit=0.0
        )
        assert ex.exact and not br.exact and math.isnan(br.diff)
        assert br.lhs_lower - 1e-9 <= ex.diff <= br.lhs + 1e-9
        assert br.smce_weak_lower <= ex.smce_weak + 1e-9 <= br.smce_weak_upper + 2e-9
        if br.holds:
            assert ex.holds
        assert br.determined == (br.holds or br.lhs_lower > br.rhs)


def test_multiclass_smooth_ce_special_cases(rng):
    # a calibrated predictor (F* = F) has smCE 0; a constant one sum_k |mean residual_k|
    f = torch.tensor(rng.dirichlet(np.ones(3), size=20))
    assert theory.multiclass_smooth_ce(f, f_star=f).value == pytest.approx(0.0, abs=1e-9)
    const = torch.full((20, 3), 1 / 3, dtype=torch.float64)
    expected = float((f - const).mean(0).abs().sum())
    assert theory.multiclass_smooth_ce(const, f_star=f).value == pytest.approx(expected, abs=1e-9)
    # K = 2: between 2x and 4x the binary smooth CE (see the docstring's argument)
    for seed in range(5):
        fs = instances.random_simplex(40, 2, seed=seed)
        w = instances.weak_predictions(fs, noise=1.0, seed=seed + 7)
        binary = metrics.smooth_ce(w[:, 1], target=fs[:, 1])
        multi = float(theory.multiclass_smooth_ce(w, f_star=fs))
        assert 2 * binary - 1e-7 <= multi <= 4 * binary + 1e-7


@pytest.mark.parametrize("delta", [1e-3, 0.01, 0.1, 0.3])
def test_binned_ece_escape(delta):
    e = theory.binned_ece_escape(delta, n=200)
    y = e.f_star.argmax(1)
    tm = [float(multiclass_calibration_error(p, y, 2, n_bins=15)) for p in (e.weak, e.student)]
    ours = [metrics.ece(p, y) for p in (e.weak, e.student)]
    assert ours == pytest.approx(tm, abs=1e-5)  # torchmetrics works in float32
    assert ours[0] == pytest.approx(0.0, abs=1e-12)
    assert ours[1] == pytest.approx(0.5 - delta, abs=1e-9)
    for method in ("dp", "highs"):
        assert metrics.smooth_ce(e.student[:, 1], y, method=method) == pytest.approx(
            delta * (0.5 - delta), abs=1e-9
        )
    r = theory.calibration_bound(e.weak, e.student, labels=y)
    assert r.holds and r.mean_abs == pytest.approx(delta)
    if delta <= 0.1:  # small moves: binned ECE escapes even sqrt(2 eps) (~ 2 delta)
        assert abs(r.ece_student - r.ece_weak) > r.bound_eps
    with pytest.raises(ValueError, match="delta"):
        theory.binned_ece_escape(0.5)
    with pytest.raises(ValueError, match="even"):
        theory.binned_ece_escape(0.1, n=7)


# --------------------------------------------------------------------------- the pipeline field
# sha256 of the result cache key of two default configs (engine version 3: canonical test order,
# inputs keyed by content, the ci preset's eval_test=False). A new config field at its default
# must keep these keys, so that every chapter's cached runs stay valid.
_GOLDEN_KEYS = {
    ("sarcasm", "bow", 0, "soft"): (
        "860c3ec789b58ee0f0be6ca71f31a0e485d8b931e71ddbf9496ea3af3735ec8d"
    ),
    ("rotten_tomatoes", "minilm-l1", 2, "hard"): (
        "2d372282740887c6505fd453641fcaf11eb700ae733f0741c3db83507e7922cc"
    ),
}


def _result_key(monkeypatch, cfg) -> str:
    seen = {}

    class _Stop(Exception):
        pass

    def capture(key, kind):  # run_experiment first looks its result up
        assert kind == "results"
        seen["key"] = key
        raise _Stop

    monkeypatch.setattr(cache, "cache_path", capture)
    with pytest.raises(_Stop):
        ex.run_experiment(cfg)
    return cache.config_hash(seen["key"], 64)


def test_default_config_key_is_unchanged(monkeypatch):
    monkeypatch.setenv("W2S_DEVICE", "cpu")
    for (ds, weak, seed, lt), golden in _GOLDEN_KEYS.items():
        cfg = ex.make_config(ds, weak, seed=seed, preset="ci", label_type=lt)
        assert cfg.weak_temperature == 1.0
        assert _result_key(monkeypatch, cfg) == golden
        explicit = ex.make_config(
            ds, weak, seed=seed, preset="ci", label_type=lt, weak_temperature=1.0
        )
        assert _result_key(monkeypatch, explicit) == golden
    other = ex.make_config("sarcasm", "bow", preset="ci", weak_temperature=2.0)
    fit = ex.make_config("sarcasm", "bow", preset="ci", weak_temperature="fit")
    keys = {_result_key(monkeypatch, c) for c in (other, fit)}
    assert len(keys) == 2 and not keys & set(_GOLDEN_KEYS.values())


@pytest.mark.parametrize("bad", [0.0, -1.0, math.inf, "warm", True, None])
def test_weak_temperature_is_validated(bad):
    with pytest.raises(ValueError, match="weak_temperature"):
        ex.make_config("sarcasm", "bow", preset="test", weak_temperature=bad)


def test_weak_temperature_fit_needs_val():
    sizes = data.SplitSizes(weak_train=40, w2s_train=60, val=0, test=40)
    with pytest.raises(ValueError, match="val"):
        ex.make_config("sarcasm", "bow", preset="test", sizes=sizes, weak_temperature="fit")


@pytest.fixture
def isolated(monkeypatch, tmp_path):
    from test_experiment import synthetic_dataset

    from w2s_utils.engine.features import TextFeatureStore

    monkeypatch.setenv("W2S_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("W2S_DEVICE", "cpu")
    ds = synthetic_dataset()
    monkeypatch.setattr(data, "load_texts", lambda name, **kw: ds)
    TextFeatureStore.clear_memory()
    return tmp_path / "cache", ds


def test_weak_temperature_runs_share_the_teacher(isolated):
    root, ds = isolated
    base = ex.run_experiment(ex.make_config("sarcasm", "bow", preset="test"))
    hot = ex.run_experiment(ex.make_config("sarcasm", "bow", preset="test", weak_temperature=2.0))
    fit = ex.run_experiment(ex.make_config("sarcasm", "bow", preset="test", weak_temperature="fit"))
    assert len(list((root / "weak_preds").glob("*.npz"))) == 1  # one teacher, trained once
    assert len(list((root / "results").glob("*.npz"))) == 3
    np.testing.assert_array_equal(hot.ceiling, base.ceiling)
    for got, name in ((hot.weak, "test"), (hot.weak_labels_train, "w2s_train")):
        want = base.weak if name == "test" else base.weak_labels_train
        np.testing.assert_allclose(got, metrics.apply_temperature(torch.tensor(want), 2.0))
    # the fitted temperature is the optimum on the val split's gold labels
    splits = data.make_splits(ds, base.config.sizes, 0)
    t = metrics.fit_temperature(base.weak_labels_val, splits.val.labels)
    np.testing.assert_allclose(
        fit.weak, metrics.apply_temperature(torch.tensor(base.weak), t), rtol=1e-6
    )
    assert ex.run_experiment(hot.config).cached


def test_calibration_grid_in_presets():
    ci = get_preset("ci").calibration
    assert 1.0 in ci.temperatures and min(ci.temperatures) < 1 < max(ci.temperatures)
    assert ci.calibrated and ci.datasets and ci.weaks and ci.seeds
    paper = get_preset("paper").calibration
    assert len(paper.temperatures) >= len(ci.temperatures)


# --------------------------------------------------------------------------- book helpers
def _fake_runs(rng, n=300, seeds=(0, 1), weak="bow", t=1.0):
    truth = rng.uniform(0.05, 0.95, n)
    y = (rng.uniform(size=n) < truth).astype(np.int64)
    runs = []
    for s in seeds:

        def two(p):
            return np.stack([1 - p, p], 1)

        pw = metrics.apply_temperature(torch.tensor(truth), 0.5 + s).numpy()
        psw = np.clip(pw + rng.normal(0, 0.05, n), 0.01, 0.99)
        cfg = SimpleNamespace(dataset="toy", weak=weak, seed=s, weak_temperature=t)
        runs.append(
            SimpleNamespace(
                config=cfg,
                labels=y,
                ids=[f"t{i}" for i in range(n)],
                weak=two(pw),
                student=two(psw),
                ceiling=two(truth),
            )
        )
    return runs


def test_chapter_tables_on_toy_runs(rng):
    runs = _fake_runs(rng) + _fake_runs(rng, weak="other")
    table = analysis.calibration_table(runs, n_resamples=30)
    assert set(table.role) == {"weak", "student", "ceiling"}
    assert set(table.metric) == set(analysis.CALIBRATION_METRICS)
    assert (table.lo <= table.hi).all()
    row = table[(table.weak == "bow") & (table.role == "weak") & (table.metric == "smooth_ce")]
    expected = np.mean([metrics.smooth_ce(r.weak[:, 1], r.labels) for r in runs[:2]])
    assert float(row.value.iloc[0]) == pytest.approx(expected)
    per_run, pairs = analysis.calibration_change(runs, n_resamples=30)
    assert per_run.holds.all() and pairs.all_hold.all() and len(pairs) == 2
    assert (per_run.smce_change.abs() <= per_run.bound_abs + 1e-12).all()
    rel = analysis.pooled_reliability(runs[:2], "student")
    assert float(rel.count.sum()) == 2 * len(runs[0].labels)
    sweep = analysis.temperature_sweep({1.0: runs[:2], "fit": runs[2:]}, n_resamples=20)
    assert set(sweep.temperature) == {"T = 1", "fitted T"}
    assert set(sweep.role) == {"weak", "student", "change"}
    assert analysis.temperature_label(0.5) == "T = 0.5"
    assert analysis.temperature_label("fit") == "fitted T"


def test_random_instances_satisfy_the_bounds():
    """The chapter's draws: through theory.sweep, the binary bound holds against F* and against
    labels (the same teacher and student for one stream), the multi-class one exactly."""
    draws = {
        t: partial(instances.calibration_instance, n_points=60, truth=t)
        for t in ("f_star", "labels")
    }
    frames = {t: theory.sweep(theory.calibration_bound, d, 8, seed=2) for t, d in draws.items()}
    for frame in frames.values():
        assert frame.holds.all() and (frame["diff"] <= frame.bound_abs + 1e-12).all()
    # one stream, two truths: the same predictors (the labels are drawn last)
    np.testing.assert_allclose(frames["f_star"].mean_abs, frames["labels"].mean_abs)
    a = instances.calibration_instance(np.random.default_rng([2, 0]), n_points=60)
    b = instances.calibration_instance(np.random.default_rng([2, 0]), n_points=60, truth="labels")
    torch.testing.assert_close(a["student"], b["student"])
    assert set(b["labels"].unique().tolist()) <= {0, 1}
    mc = theory.sweep(
        theory.multiclass_calibration_bound,
        partial(instances.multiclass_calibration_instance, n_points=12, ks=(2, 3, 4)),
        4,
        seed=2,
    )
    assert mc.holds.all() and mc.exact.all() and (mc.lhs <= mc.bound_tv + 1e-7).all()
    with pytest.raises(ValueError, match="truth"):
        instances.calibration_instance(np.random.default_rng(0), truth="gold")
    with pytest.raises(ValueError, match="rng"):
        instances.calibration_instance(0)
    with pytest.raises(ValueError, match="ks"):
        instances.multiclass_calibration_instance(np.random.default_rng(0), ks=(1,))


def test_temperature_moves_binned_ece_across_a_bin_edge():
    """Exercise 4: confidences on both sides of the edge 0.6 = 9/15; a temperature within 1e-3
    of 1 merges the two bins and moves binned ECE by more than 0.3, while smooth CE stays within
    the theorem's band of a few 1e-4."""
    p = np.r_[np.full(500, 0.6 - 2e-5), np.full(500, 0.62)]
    y = np.r_[np.ones(500), np.arange(500) < 100].astype(np.int64)
    sharper = metrics.apply_temperature(torch.tensor(p), 0.999)
    r = theory.calibration_bound(torch.tensor(p), sharper, labels=torch.tensor(y))
    assert r.ece_weak - r.ece_student > 0.3 and r.holds and r.bound_abs < 5e-4
    logit = np.log(p / (1 - p))
    assert np.all(np.abs(logit) > 0.4)  # unlike the escape teacher, whose log-odds are 0
    esc = theory.binned_ece_escape(0.1, n=10)
    torch.testing.assert_close(metrics.apply_temperature(esc.weak, 0.5), esc.weak)


# --------------------------------------------------------------------------- the book module
def test_cached_frame_round_trip(monkeypatch, tmp_path):
    monkeypatch.setenv("W2S_CACHE_DIR", str(tmp_path / "cache"))
    calls = []
    df = pd.DataFrame(
        {
            "x": [1.0, np.nan, 3.0],
            "n": [1, 2, 3],
            "ok": [True, False, True],
            "t": [1.0, "fit", 0.5],
            "name": ["a", "b", None],
        }
    )

    def compute():
        calls.append(1)
        return df

    first = ch.cached_frame({"test": 1}, compute)
    again = ch.cached_frame({"test": 1}, compute)
    assert len(calls) == 1 and not first.attrs["cached"] and again.attrs["cached"]
    for got in (first, again):
        pd.testing.assert_frame_equal(got, df, check_dtype=False)
        assert got.t.tolist() == [1.0, "fit", 0.5] and isinstance(got.t[0], float)
        assert got.ok.dtype == bool
    assert ch.frame_pieces(first, again) == [
        (f"book_tables/{again.attrs['entry']}", again.attrs["seconds"])
    ]
    ch.cached_frame({"test": 2}, compute)
    assert len(calls) == 2
    pair = ch.cached_frame({"test": 3}, lambda: (df, df.head(1)))
    assert isinstance(pair, tuple) and len(pair[1]) == 1
    with pytest.raises(ValueError, match="key"):
        ch.cached_frame({}, compute)
    with pytest.raises(ValueError, match="DataFrame"):
        ch.cached_frame({"test": 4}, lambda: 3)


def test_runs_digest_follows_content_and_order(rng):
    runs = _fake_runs(rng)
    d = ch.runs_digest(runs)
    assert d == ch.runs_digest(list(runs)) and d != ch.runs_digest(runs[::-1])
    changed = [SimpleNamespace(**{**vars(runs[0]), "student": runs[0].student * 0.5}), runs[1]]
    assert ch.runs_digest(changed) != d
    with pytest.raises(ValueError, match="empty"):
        ch.runs_digest([])


def test_teacher_accuracy_is_chapter_one_s(rng):
    """The levels table's teacher accuracy is the paired table's (chapter 1's) on the same runs,
    cell by cell, and the glue of part 1 counts what the frames say."""
    runs = _fake_runs(rng) + _fake_runs(rng, weak="other")
    levels = analysis.calibration_table(runs, n_resamples=20)
    paired = analysis.paired_table(runs)
    acc = levels.query("role == 'weak' and metric == 'accuracy'").merge(
        paired, on=["dataset", "weak"]
    )
    np.testing.assert_allclose(acc.value, acc.acc_weak, atol=1e-12)
    per_run, band = analysis.calibration_change(runs, n_resamples=20)
    values = ch.levels_glue(levels, per_run, band, 20)
    assert values["lm_pairs"] == 2 and values["lm_holds"] == len(runs)
    assert values["lm_worse"] == int((band.smce_change > 0).sum())
    expected = levels.query("role == 'ceiling' and metric == 'smooth_ce'").value.mean()
    assert values["lm_smce_ceiling"] == pytest.approx(expected)
    table = ch.levels_table(levels)
    assert len(table.frame) == 6 and "Smooth CE" in table.frame.columns


def test_calibration_change_by_any_fields(rng):
    runs = _fake_runs(rng, seeds=(0, 1, 2))
    per_run, pairs = analysis.calibration_change(runs, ("weak", "weak_temperature"), n_resamples=20)
    assert list(pairs.weak) == ["bow"] and list(pairs.weak_temperature) == [1.0]
    assert pairs.pair.iloc[0] == "bow\n1.0" and len(per_run) == 3
    default_runs, default_pairs = analysis.calibration_change(runs, n_resamples=20)
    assert default_pairs.smce_change.iloc[0] == pytest.approx(pairs.smce_change.iloc[0])


def test_figures_keep_legends_off_the_data(rng):
    plt.switch_backend("Agg")
    check = theory.sweep(theory.calibration_bound, instances.calibration_instance, 6)
    check = pd.concat([check.assign(truth="f_star"), check.assign(truth="labels")])
    runs = _fake_runs(rng) + _fake_runs(rng, weak="other")
    curves = {
        key: {role: analysis.pooled_reliability(c.runs, role) for role in analysis.ROLES}
        for key, c in analysis.stack(runs).items()
    }
    _, band = analysis.calibration_change(runs, n_resamples=10)
    for fig in (ch.check_figure(check), ch.reliability_figure(curves), ch.change_figure(band)):
        assert all(ax.get_legend() is None for ax in fig.axes)  # one legend, under the panels
        assert len(fig.legends) == 1
        plt.close(fig)


def test_planted_frame_and_headline():
    runs = [SimpleNamespace(config=SimpleNamespace(seed=s)) for s in (0, 1)]
    bound = pd.DataFrame(
        {
            "smce_weak": [0.1, 0.2],
            "smce_student": [0.1, 0.1],
            "bound_abs": [0.3, 0.3],
            "bound_eps": [0.4, 0.4],
            "holds": [True, True],
        }
    )
    ece = {
        r: pd.DataFrame(
            {"ece": [0.01, 0.02], "mean_tv": [0.1, 0.1], "holds": [True, r != "ceiling"]}
        )
        for r in analysis.ROLES
    }
    ea = pd.DataFrame(
        {
            "budget": [0.2, 0.3],
            "gain": [0.01, 0.02],
            "lower": [-0.1, -0.1],
            "upper": [0.1, 0.1],
            "contains_gain": [True, True],
        }
    )
    out = ch.planted_frame(runs, bound, ece, ea)
    assert out.ece_checks.tolist() == [True, False] and out.err_weak.tolist() == [0.2, 0.3]
    glued = ch.planted_glue(out)
    assert glued["pl_ece_checks"] == 1 and glued["pl_contains"] == 2
    text = ch.headline(
        {
            "st_seeds": 10,
            "st_worst_gain": "+0.1 [+0.0, +0.2]",
            "st_best_gain": "−0.01 [−0.02, +0.00]",
        }
    )
    assert "10 seeds" in text and "+0.1 [+0.0, +0.2]" in text


def test_fitted_temperature_is_read_back(rng):
    p = rng.uniform(0.02, 0.98, 200)
    base = SimpleNamespace(weak_labels_train=np.stack([1 - p, p], 1))
    q = metrics.apply_temperature(torch.tensor(p), 1.7).numpy()
    fitted = SimpleNamespace(weak_labels_train=np.stack([1 - q, q], 1))
    assert analysis.fitted_temperature(base, fitted) == pytest.approx(1.7, rel=1e-9)


def test_paired_difference(rng):
    a, b = _fake_runs(rng, seeds=(0, 1, 2)), None
    b = [SimpleNamespace(**{**vars(r), "student": r.weak}) for r in a]  # student = teacher
    d = analysis.paired_difference(a, b, "student", "smooth_ce", n_resamples=30)
    expected = np.mean(
        [
            metrics.smooth_ce(r.student[:, 1], r.labels) - metrics.smooth_ce(r.weak[:, 1], r.labels)
            for r in a
        ]
    )
    assert d.point == pytest.approx(expected) and d.lo <= d.hi
    same = analysis.paired_difference(a, a, "student", "accuracy", n_resamples=30)
    assert same.point == 0 and same.lo == 0 and same.hi == 0
    with pytest.raises(ValueError, match="seeds"):
        analysis.paired_difference(a, a[:2], "student", "ece")
