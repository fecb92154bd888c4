"""Chapter 3 (calibration): temperature scaling, the multi-class bound, the binned-ECE escape,
the weak_temperature pipeline field and the chapter's table helpers."""

from __future__ import annotations

import math
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from scipy.optimize import minimize_scalar
from torchmetrics.functional.classification import multiclass_calibration_error

from w2s_utils import analysis, metrics, theory
from w2s_utils.book import calibration as bc
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
@given(seed=st.integers(0, 10_000), k=st.integers(2, 5), noise=st.floats(0.05, 2.0))
def test_multiclass_bound_holds_on_random_instances(seed, k, noise):
    f_star = instances.random_simplex(24, k, seed=seed)
    weak = instances.weak_predictions(f_star, noise=1.0, seed=seed + 1)
    student = instances.weak_predictions(weak, noise=noise, seed=seed + 2)
    r = theory.multiclass_calibration_bound(weak, student, f_star=f_star, tol=1e-7)
    assert r.holds, r
    y = torch.multinomial(f_star, 1, generator=torch.Generator().manual_seed(seed))[:, 0]
    assert theory.multiclass_calibration_bound(weak, student, labels=y, tol=1e-7).holds


def test_multiclass_smooth_ce_special_cases(rng):
    # a calibrated predictor (F* = F) has smCE 0; a constant one sum_k |mean residual_k|
    f = torch.tensor(rng.dirichlet(np.ones(3), size=20))
    assert theory.multiclass_smooth_ce(f, f_star=f) == pytest.approx(0.0, abs=1e-9)
    const = torch.full((20, 3), 1 / 3, dtype=torch.float64)
    expected = float((f - const).mean(0).abs().sum())
    assert theory.multiclass_smooth_ce(const, f_star=f) == pytest.approx(expected, abs=1e-9)
    # K = 2: between 2x and 4x the binary smooth CE (see the docstring's argument)
    for seed in range(5):
        fs = instances.random_simplex(40, 2, seed=seed)
        w = instances.weak_predictions(fs, noise=1.0, seed=seed + 7)
        binary = metrics.smooth_ce(w[:, 1], target=fs[:, 1])
        multi = theory.multiclass_smooth_ce(w, f_star=fs)
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

    monkeypatch.setattr(ex.cache, "cache_path", capture)
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
@given(seed=st.integers(0, 1000), n=st.integers(5, 300), k=st.integers(2, 4))
def test_fast_ece_matches_metrics_and_torchmetrics(seed, n, k):
    rng = np.random.default_rng(seed)
    p = rng.dirichlet(np.ones(k) * 0.5, size=n)
    if seed % 3 == 0:
        p[: n // 4] = np.eye(k)[0]  # exact 1.0 confidences: the point bin
    y = rng.integers(0, k, n)
    idx = rng.integers(0, n, size=(3, n))
    got = bc.fast_ece(p, y, idx)
    for r, ii in enumerate(idx):
        pt, yt = torch.tensor(p[ii]), torch.tensor(y[ii])
        assert got[r] == pytest.approx(metrics.ece(pt, yt), abs=1e-12)
        assert got[r] == pytest.approx(float(multiclass_calibration_error(pt, yt, k, 15)), abs=1e-6)


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


def test_random_checks_hold():
    chk = bc.random_calibration_check(6, n_points=60, seed=2)
    assert chk.holds.all() and set(chk.truth) == {"f_star", "labels"}
    mc = bc.random_multiclass_check(4, n_points=12, seed=2)
    assert mc.holds.all() and (mc["diff"] <= mc.bound_tv + 1e-7).all()


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
