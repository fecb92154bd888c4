"""Tests for w2s_utils.metrics: properties (hypothesis) and independent oracles."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.stats
import torch
from hypothesis import given
from hypothesis import strategies as st
from scipy.optimize import linprog
from sklearn.calibration import calibration_curve
from sklearn.metrics import roc_auc_score
from torchmetrics.functional.classification import (
    binary_calibration_error,
    multiclass_calibration_error,
)

from w2s_utils import metrics as m
from w2s_utils.metrics import Interval, Reliability


def random_probs(rng, shape, zeros=False, conc=1.0):
    """Dirichlet rows (float64); ``zeros`` plants exact zeros (kept local for hypothesis tests)."""
    p = rng.dirichlet(np.full(shape[-1], conc), size=shape[:-1])
    if zeros:
        mask = rng.random(shape) < 0.3
        mask[..., 0] = False
        p = np.where(mask, 0.0, p)
        p = p / p.sum(axis=-1, keepdims=True)
    return p


seeds = st.integers(0, 2**32 - 1)
rows = st.integers(1, 12)
classes = st.integers(2, 6)


def _tensors(seed: int, n: int, k: int, zeros: bool = False):
    rng = np.random.default_rng(seed)
    p = torch.from_numpy(random_probs(rng, (n, k), zeros=zeros))
    q = torch.from_numpy(random_probs(rng, (n, k)))
    return p, q


# ------------------------------------------------------------------------- divergences: properties
@given(seeds, rows, classes, st.booleans())
def test_kl_nonnegative_and_zero_on_diagonal(seed, n, k, zeros):
    p, q = _tensors(seed, n, k, zeros)
    assert (m.kl(p, q) >= -1e-12).all()
    assert torch.allclose(m.kl(p, p), torch.zeros(n, dtype=p.dtype), atol=1e-12)


@given(seeds, rows, classes, st.booleans())
def test_cross_entropy_is_entropy_plus_kl(seed, n, k, zeros):
    p, q = _tensors(seed, n, k, zeros)
    assert torch.allclose(m.cross_entropy(p, q), m.entropy(p) + m.kl(p, q), atol=1e-10)


@given(seeds, rows, classes)
def test_pinsker_both_directions(seed, n, k):
    p, q = _tensors(seed, n, k)
    t = m.tv(p, q)
    assert (t <= torch.sqrt(m.kl(p, q) / 2) + 1e-12).all()
    assert (t <= torch.sqrt(m.kl(q, p) / 2) + 1e-12).all()
    assert (t >= 0).all() and (t <= 1).all()


@pytest.mark.slow
@given(seeds, rows, classes, st.floats(0.1, 20.0))
def test_logit_variants_equal_prob_variants(seed, n, k, scale):
    g = torch.Generator().manual_seed(seed % 2**31)
    a = torch.randn(n, k, generator=g, dtype=torch.float64) * scale
    b = torch.randn(n, k, generator=g, dtype=torch.float64) * scale
    pa, pb = a.softmax(-1), b.softmax(-1)
    assert torch.allclose(m.kl_from_logits(a, b), m.kl(pa, pb), atol=1e-9, rtol=1e-7)
    assert torch.allclose(m.cross_entropy_from_logits(a, b), m.cross_entropy(pa, pb), atol=1e-9)
    assert torch.allclose(m.entropy_from_logits(a), m.entropy(pa), atol=1e-9)


def test_logit_variants_stable_for_extreme_logits():
    a = torch.tensor([[1000.0, -1000.0], [0.0, 0.0]])
    b = torch.tensor([[-1000.0, 1000.0], [0.0, 0.0]])
    out = m.kl_from_logits(a, b)
    assert torch.isfinite(out).all()
    assert out[0] == pytest.approx(2000.0, rel=1e-5)
    assert m.entropy_from_logits(a)[0] == pytest.approx(0.0, abs=1e-6)


@pytest.mark.slow
@given(seeds, rows)
def test_binary_vector_equals_two_column(seed, n):
    rng = np.random.default_rng(seed)
    p = torch.from_numpy(rng.random(n))
    q = torch.from_numpy(rng.random(n) * 0.98 + 0.01)
    p2, q2 = torch.stack([1 - p, p], -1), torch.stack([1 - q, q], -1)
    for f in (m.kl, m.cross_entropy, m.tv):
        assert torch.allclose(f(p, q), f(p2, q2), atol=1e-12)
    assert torch.allclose(m.entropy(p), m.entropy(p2), atol=1e-12)
    z, w = torch.logit(q), torch.logit(p.clamp(0.02, 0.98))
    z2 = torch.stack([torch.zeros_like(z), z], -1)
    w2 = torch.stack([torch.zeros_like(w), w], -1)
    assert torch.allclose(m.kl_from_logits(z, w), m.kl_from_logits(z2, w2), atol=1e-10)
    assert torch.allclose(m.entropy_from_logits(z), m.entropy_from_logits(z2), atol=1e-10)
    y = torch.from_numpy((rng.random(n) < 0.5).astype(np.int64))
    assert m.accuracy(p, y) == m.accuracy(p2, y)
    assert m.ece(p, y) == pytest.approx(m.ece(p2, y), abs=1e-12)
    assert m.misfit(q, p, "squared") == pytest.approx(m.misfit(q2, p2, "squared"), abs=1e-12)


def test_batching_over_leading_axes(rng):
    p = torch.from_numpy(random_probs(rng, (3, 4, 5)))
    q = torch.from_numpy(random_probs(rng, (3, 4, 5)))
    out = m.kl(p, q)
    assert out.shape == (3, 4)
    for i in range(3):
        assert torch.allclose(out[i], m.kl(p[i], q[i]))
    assert m.entropy(p).shape == (3, 4) and m.tv(p, q).shape == (3, 4)
    assert m.kl_from_logits(p.log(), q.log()).shape == (3, 4)


def test_dtypes_are_kept_and_numpy_accepted(rng):
    p64 = random_probs(rng, (6, 3))
    q64 = random_probs(rng, (6, 3))
    out = m.kl(p64, q64)  # numpy in
    assert isinstance(out, torch.Tensor) and out.dtype == torch.float64
    out32 = m.kl(torch.tensor(p64, dtype=torch.float32), torch.tensor(q64, dtype=torch.float32))
    assert out32.dtype == torch.float32
    assert torch.allclose(out32.double(), out, atol=1e-5)


def test_zero_log_zero_and_infinite_kl():
    p = torch.tensor([[1.0, 0.0], [0.5, 0.5]], dtype=torch.float64)
    q = torch.tensor([[0.5, 0.5], [1.0, 0.0]], dtype=torch.float64)
    out = m.kl(p, q)
    assert out[0] == pytest.approx(math.log(2))
    assert math.isinf(out[1])
    assert m.entropy(p)[0] == 0.0


def test_devices_preserved_cpu(rng):
    p = torch.from_numpy(random_probs(rng, (4, 3)))
    assert m.kl(p, p).device == p.device
    assert m.reliability(p, torch.tensor([0, 1, 2, 0])).count.device == p.device


@pytest.mark.cuda
def test_devices_preserved_cuda(cuda_device, rng):
    p = torch.from_numpy(random_probs(rng, (50, 3))).to(cuda_device)
    q = torch.from_numpy(random_probs(rng, (50, 3))).to(cuda_device)
    y = torch.from_numpy(rng.integers(0, 3, 50)).to(cuda_device)
    for out in (m.kl(p, q), m.entropy(p), m.tv(p, q), m.kl_from_logits(p.log(), q.log())):
        assert out.device.type == "cuda"
    assert torch.allclose(m.kl(p, q).cpu(), m.kl(p.cpu(), q.cpu()))
    assert m.ece(p, y) == pytest.approx(m.ece(p.cpu(), y.cpu()), abs=1e-9)
    assert m.reliability(p, y).count.device.type == "cuda"
    pb, yb = p[:, 0], (y == 0).long()
    assert m.smooth_ce(pb, yb) == pytest.approx(m.smooth_ce(pb.cpu(), yb.cpu()))
    assert m.auroc(pb, yb) == pytest.approx(m.auroc(pb.cpu(), yb.cpu()))


# --------------------------------------------------------------------------- divergences: oracles
@given(seeds, rows, classes, st.booleans())
def test_kl_and_entropy_match_scipy(seed, n, k, zeros):
    p, q = _tensors(seed, n, k, zeros)
    ref_kl = scipy.stats.entropy(p.numpy(), q.numpy(), axis=-1)
    ref_h = scipy.stats.entropy(p.numpy(), axis=-1)
    np.testing.assert_allclose(m.kl(p, q).numpy(), ref_kl, atol=1e-12, rtol=1e-10)
    np.testing.assert_allclose(m.entropy(p).numpy(), ref_h, atol=1e-12, rtol=1e-10)


# --------------------------------------------------------------------------- classification
def test_accuracy():
    probs = torch.tensor([[0.9, 0.1], [0.2, 0.8], [0.6, 0.4]])
    assert m.accuracy(probs, torch.tensor([0, 1, 1])) == pytest.approx(2 / 3)
    assert m.accuracy(torch.tensor([0.1, 0.8, 0.4]), [0, 1, 1]) == pytest.approx(2 / 3)


@given(seeds, st.integers(2, 200), st.sampled_from([None, 1, 2]))
def test_auroc_matches_sklearn(seed, n, decimals):
    rng = np.random.default_rng(seed)
    p = rng.random(n)
    if decimals is not None:
        p = np.round(p, decimals)  # plenty of ties
    y = (rng.random(n) < p).astype(np.int64)
    y[0], y[1] = 0, 1
    assert m.auroc(p, y) == pytest.approx(roc_auc_score(y, p), abs=1e-12)
    assert m.auroc(np.stack([1 - p, p], 1), y) == pytest.approx(roc_auc_score(y, p), abs=1e-12)


def test_auroc_needs_both_classes():
    with pytest.raises(ValueError, match="labels"):
        m.auroc([0.2, 0.7], [1, 1])


# --------------------------------------------------------------------------- calibration
@pytest.mark.slow
@given(seeds, st.integers(1, 400), classes, st.sampled_from([5, 10, 15]), st.booleans())
def test_ece_matches_torchmetrics_top_label(seed, n, k, n_bins, saturate):
    rng = np.random.default_rng(seed)
    p = torch.from_numpy(random_probs(rng, (n, k), conc=0.5)).float()
    if saturate:  # exact 1.0 confidences: torchmetrics puts them in their own bin; so do we
        p[: max(1, n // 4)] = torch.nn.functional.one_hot(torch.tensor(0), k).float()
    y = torch.from_numpy(rng.integers(0, k, n))
    ref = float(multiclass_calibration_error(p, y, k, n_bins=n_bins, norm="l1"))
    assert m.ece(p, y, n_bins=n_bins) == pytest.approx(ref, abs=1e-6)
    assert m.ece(p.double(), y, n_bins=n_bins) == pytest.approx(ref, abs=1e-6)


@given(seeds, st.integers(1, 400), st.sampled_from([5, 15]))
def test_ece_matches_torchmetrics_binary(seed, n, n_bins):
    rng = np.random.default_rng(seed)
    p = torch.from_numpy(rng.random(n)).float()
    y = torch.from_numpy((rng.random(n) < p.double().numpy() ** 2).astype(np.int64))
    # positive-class confidence: torchmetrics' binary_calibration_error
    ref_pos = float(binary_calibration_error(p, y, n_bins=n_bins, norm="l1"))
    assert m.ece(p, y, n_bins, confidence="positive") == pytest.approx(ref_pos, abs=1e-6)
    # top-label (default): multiclass_calibration_error on the [N, 2] form
    p2 = torch.stack([1 - p, p], 1)
    ref_top = float(multiclass_calibration_error(p2, y, 2, n_bins=n_bins, norm="l1"))
    assert m.ece(p, y, n_bins) == pytest.approx(ref_top, abs=1e-6)


def test_ece_perfect_and_worst():
    y = torch.tensor([0, 1, 1, 0])
    assert m.ece(torch.nn.functional.one_hot(y, 2).double(), y) == 0.0
    assert m.ece(torch.nn.functional.one_hot(1 - y, 2).double(), y) == 1.0


def test_reliability_matches_sklearn_calibration_curve(rng):
    p = rng.random(2000) * 0.999
    y = (rng.random(2000) < p**1.5).astype(np.int64)
    for strategy in ("uniform", "quantile"):
        rel = m.reliability(p, y, n_bins=10, strategy=strategy, confidence="positive")
        assert isinstance(rel, Reliability)
        frac, mean_pred = calibration_curve(y, p, n_bins=10, strategy=strategy)
        nonempty = rel.count > 0
        np.testing.assert_allclose(rel.accuracy[nonempty].numpy(), frac, atol=1e-12)
        np.testing.assert_allclose(rel.confidence[nonempty].numpy(), mean_pred, atol=1e-12)
        assert int(rel.count.sum()) == 2000
        w = rel.count / rel.count.sum()
        assert float((w * (rel.accuracy - rel.confidence).abs()).sum()) == pytest.approx(rel.ece)


def test_reliability_bins_layout(rng):
    p = torch.from_numpy(random_probs(rng, (300, 3)))
    y = torch.from_numpy(rng.integers(0, 3, 300))
    rel = m.reliability(p, y, n_bins=15)
    assert rel.lo.shape == rel.hi.shape == rel.count.shape == (16,)  # + the [1, 1] point bin
    assert rel.lo[0] == 0 and rel.hi[-2] == 1 and rel.lo[-1] == 1
    q = m.reliability(p, y, n_bins=7, strategy="quantile")
    assert q.count.shape == (7,)
    assert q.count.min() >= 300 // 7 - 1  # equal mass
    assert m.ece(p, y, 7, "quantile") == pytest.approx(q.ece)


# --------------------------------------------------------------------------- smooth CE
def _smooth_ce_dense_reference(p: np.ndarray, y: np.ndarray) -> float:
    """Independent dense LP: variables w_i per *unsorted* point, all pairwise Lipschitz rows."""
    n = len(p)
    rows, b = [], []
    for i in range(n):
        for j in range(i + 1, n):
            a = np.zeros(n)
            a[i], a[j] = 1.0, -1.0
            rows += [a, -a]
            b += [abs(p[i] - p[j])] * 2
    a_ub = np.array(rows) if rows else None
    b_ub = np.array(b) if b else None
    res = linprog(-(y - p) / n, A_ub=a_ub, b_ub=b_ub, bounds=[(-1, 1)] * n)
    assert res.status == 0
    return -res.fun


@given(seeds, st.integers(1, 25), st.sampled_from([None, 1]), st.floats(0.3, 3.0))
def test_smooth_ce_matches_dense_linprog(seed, n, decimals, power):
    rng = np.random.default_rng(seed)
    p = rng.random(n)
    if decimals is not None:
        p = np.round(p, decimals)
    y = (rng.random(n) < p**power).astype(np.int64)
    ref = _smooth_ce_dense_reference(p, y.astype(float))
    assert m.smooth_ce(p, y) == pytest.approx(ref, abs=1e-9)
    assert m.smooth_ce(p, y, method="highs") == pytest.approx(ref, abs=1e-7)


@pytest.mark.parametrize("case", ["miscalibrated", "calibrated", "alternating", "ties", "gap"])
def test_smooth_ce_dp_equals_highs_larger(rng, case):
    n = 2000
    p = np.sort(rng.random(n))
    y = (rng.random(n) < p).astype(np.int64)
    if case == "miscalibrated":
        y = (rng.random(n) < np.sqrt(p)).astype(np.int64)
    elif case == "alternating":
        y = np.arange(n) % 2
    elif case == "ties":
        p = np.round(p, 2)
    elif case == "gap":
        p = np.where(p < 0.5, p * 1e-3, 1 - (1 - p) * 1e-3)
    assert m.smooth_ce(p, y) == pytest.approx(m.smooth_ce(p, y, method="highs"), abs=1e-8)


def test_smooth_ce_bounds_and_binary_forms(rng):
    p = rng.random(300)
    y = (rng.random(300) < p).astype(np.int64)
    val = m.smooth_ce(p, y)
    assert 0.0 <= val <= m.ece(p, y, confidence="positive") + 0.2
    assert val == pytest.approx(m.smooth_ce(np.stack([1 - p, p], 1), y), abs=1e-12)
    # constant predictor: smCE = |mean(y) - p|
    c = np.full(50, 0.3)
    yc = (np.arange(50) < 40).astype(np.int64)
    assert m.smooth_ce(c, yc) == pytest.approx(0.5, abs=1e-12)


def test_smooth_ce_orders_predictors_like_relplot():
    relplot = pytest.importorskip("relplot")

    rng = np.random.default_rng(7)
    truth = rng.random(4000)
    y = (rng.random(4000) < truth).astype(np.int64)
    # calibrated, then increasingly over-confident distortions of the truth
    temps = (1.0, 1.6, 2.5, 4.0)
    preds = [1 / (1 + np.exp(-t * np.log(truth / (1 - truth)))) for t in temps]
    ours = [m.smooth_ce(p, y) for p in preds]
    theirs = [float(relplot.smECE(p, y)) for p in preds]
    assert np.all(np.diff(ours) > 0), ours
    assert np.argsort(ours).tolist() == np.argsort(theirs).tolist()


# --------------------------------------------------------------------------- W2S summaries
def test_pgr_values_and_nan_gap():
    assert m.pgr(0.6, 0.7, 0.8) == pytest.approx(0.5)
    assert m.pgr(0.6, 0.9, 0.8) == pytest.approx(1.5)
    assert math.isnan(m.pgr(0.7, 0.75, 0.7005))  # gap 5e-4 <= min_gap
    assert math.isnan(m.pgr(0.7, 0.75, 0.6))  # ceiling below weak
    assert m.pgr(0.7, 0.75, 0.7005, min_gap=1e-4) == pytest.approx(100.0)
    out = m.pgr(np.array([0.6, 0.8]), np.array([0.7, 0.9]), np.array([0.8, 0.8]))
    assert out[0] == pytest.approx(0.5) and math.isnan(out[1])
    with pytest.raises(ValueError, match="min_gap"):
        m.pgr(0.1, 0.2, 0.3, min_gap=-1)


def test_bootstrap_ci_batched_contract(rng):
    p = torch.from_numpy(rng.random(500))
    y = torch.from_numpy((rng.random(500) < 0.7).astype(np.int64))
    shapes = []

    def acc(pp, yy):
        shapes.append(tuple(pp.shape))
        return ((pp > 0.5).long() == yy).double().mean(-1)

    ci = m.bootstrap_ci(acc, p, y, n_resamples=1000, seed=3)
    assert isinstance(ci, Interval)
    assert shapes[0] == (1, 500) and shapes[1] == (1000, 500)  # one batched call
    assert ci.lo < ci.point < ci.hi
    assert ci.point == pytest.approx(m.accuracy(p, y))
    se = math.sqrt(ci.point * (1 - ci.point) / 500)
    assert ci.hi - ci.lo == pytest.approx(2 * 1.96 * se, rel=0.2)
    assert m.bootstrap_ci(acc, p, y, seed=3) == ci  # seeded
    with pytest.raises(ValueError, match="arrays"):
        m.bootstrap_ci(acc, p, y[:10])


def test_seed_interval_matches_scipy_t():
    vals = [0.61, 0.64, 0.58, 0.66, 0.62]
    iv = m.seed_interval(vals, level=0.9)
    lo, hi = scipy.stats.t.interval(0.9, 4, loc=np.mean(vals), scale=scipy.stats.sem(vals))
    assert iv.point == pytest.approx(np.mean(vals))
    assert (iv.lo, iv.hi) == pytest.approx((lo, hi))
    one = m.seed_interval([0.5])
    assert one.point == 0.5 and math.isnan(one.lo) and math.isnan(one.hi)
    with pytest.raises(ValueError, match="values"):
        m.seed_interval([])


def test_misfit_kinds(rng):
    s = torch.from_numpy(random_probs(rng, (40, 3)))
    w = torch.from_numpy(random_probs(rng, (40, 3)))
    assert m.misfit(w, s, "kl_weak_student") == pytest.approx(float(m.kl(w, s).mean()))
    assert m.misfit(w, s, "kl_student_weak") == pytest.approx(float(m.kl(s, w).mean()))
    assert m.misfit(w, s, "squared") == pytest.approx(float(((s - w) ** 2).sum(-1).mean()))
    with pytest.raises(ValueError, match="kl_weak_student, kl_student_weak, squared"):
        m.misfit(w, s, "l1")


@pytest.mark.parametrize("shape", [(5000,), (700, 7), (3, 300, 4)])
def test_chunked_fast_path_equals_differentiable_path(monkeypatch, shape):
    rng = np.random.default_rng(1)
    if len(shape) == 1:
        p = torch.from_numpy(np.round(rng.random(shape), 1))  # exact 0s and 1s included
        q = torch.from_numpy(rng.random(shape) * 0.98 + 0.01)
    else:
        p = torch.from_numpy(random_probs(rng, shape, zeros=True))
        q = torch.from_numpy(random_probs(rng, shape))
    monkeypatch.setattr(m, "CHUNK_ELEMENTS", 64)  # force many chunks
    fast = (m.kl(p, q), m.cross_entropy(p, q), m.entropy(p))
    pg = p.clone().requires_grad_(True)  # the xlogy (autograd) path
    slow = (m.kl(pg, q), m.cross_entropy(pg, q), m.entropy(pg))
    expected = shape[:-1] if len(shape) > 1 else shape
    for a, b in zip(fast, slow, strict=True):
        assert a.shape == b.shape == expected
        assert torch.allclose(a, b.detach(), atol=1e-12)
    slow[0].sum().backward()
    interior = (p > 0) & (p < 1)  # d(x log x)/dx is -inf at 0
    assert pg.grad is not None and torch.isfinite(pg.grad[interior]).all()


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_uniform_binning_matches_bucketize_at_edges(dtype, monkeypatch):
    edges = torch.linspace(0, 1, 16, dtype=dtype)
    p = torch.cat([edges, torch.nextafter(edges, torch.ones_like(edges))])
    p = torch.cat([p, torch.nextafter(edges, torch.zeros_like(edges))]).clamp(0, 1)
    y = (torch.arange(len(p)) % 2).long()
    monkeypatch.setattr(m, "CHUNK_ELEMENTS", 8)  # several chunks
    rel = m.reliability(p, y, n_bins=15, confidence="positive")
    want = torch.bincount(torch.bucketize(p, edges, right=True) - 1, minlength=16)
    assert rel.count.long().tolist() == want.tolist()
    ref = float(binary_calibration_error(p, y, n_bins=15, norm="l1"))
    assert rel.ece == pytest.approx(ref, abs=1e-6)


EDGE = st.sampled_from([0.0, 1.0, 0.5, 1e-300, 1 - 1e-16, 0.25, 1e-7])


@given(
    st.lists(st.tuples(EDGE | st.floats(0, 1), EDGE | st.floats(0, 1)), min_size=1, max_size=60),
    st.sampled_from([4, 1 << 17]),
)
def test_fast_kernels_equal_xlogy_on_exact_zeros_and_ones(pairs, chunk):
    """Interior kernel + NaN-row repair == the xlogy path, infinities and 0·log 0 included."""
    p = torch.tensor([a for a, _ in pairs], dtype=torch.float64)
    q = torch.tensor([b for _, b in pairs], dtype=torch.float64)
    old, m.CHUNK_ELEMENTS = m.CHUNK_ELEMENTS, chunk  # chunk 4: many chunks, deferred checks
    try:
        fast = (m.kl(p, q), m.cross_entropy(p, q), m.entropy(p))
    finally:
        m.CHUNK_ELEMENTS = old
    pg = p.clone().requires_grad_(True)
    slow = (m.kl(pg, q), m.cross_entropy(pg, q), m.entropy(pg))
    for a, b in zip(fast, slow, strict=True):
        b = b.detach()
        assert not a.isnan().any()
        assert torch.equal(a.isinf(), b.isinf())
        fin = ~b.isinf()
        assert torch.allclose(a[fin], b[fin], rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("fn", ["kl", "cross_entropy", "entropy"])
@pytest.mark.parametrize(
    ("where", "value", "message"),
    [
        ("p", float("nan"), "p: contains NaN or inf"),
        ("p", 1.5, r"p: probabilities must lie in \[0, 1\]"),
        ("q", -0.1, r"q: probabilities must lie in \[0, 1\]"),
        ("q", float("inf"), "q: contains NaN or inf"),
    ],
)
@pytest.mark.parametrize("k", [None, 3])
def test_validation_of_chunked_inputs(monkeypatch, fn, where, value, message, k):
    """Inputs large enough to be chunked are checked whole: a bad value in a late chunk is found."""
    if fn == "entropy" and where == "q":
        return
    monkeypatch.setattr(m, "CHUNK_ELEMENTS", 16)  # 200 rows -> many chunks
    rng = np.random.default_rng(0)
    shape = (200,) if k is None else (200, k)
    p = random_probs(rng, shape) if k else rng.random(200)
    q = random_probs(rng, shape) if k else rng.random(200)
    bad = p if where == "p" else q
    bad[173] = value  # a late chunk
    args = (p,) if fn == "entropy" else (p, q)
    with pytest.raises(ValueError, match=message):
        getattr(m, fn)(*args)


def test_validation_of_chunked_row_sums(monkeypatch):
    monkeypatch.setattr(m, "CHUNK_ELEMENTS", 16)
    rng = np.random.default_rng(0)
    p, q = random_probs(rng, (200, 4)), random_probs(rng, (200, 4))
    q[150] *= 0.9
    with pytest.raises(ValueError, match="q: rows .* must sum to 1 within 1.53e-05 .* off"):
        m.kl(p, q)
    ok = m.kl(p, random_probs(rng, (200, 4)))  # and a valid input passes the same path
    assert ok.shape == (200,) and bool((ok >= 0).all())


def test_subnormal_probabilities_in_float32():
    """p / q overflows float32 for a subnormal q; the result must still be the exact finite KL."""
    p = torch.tensor([0.5, 1e-44, 0.3], dtype=torch.float32)
    q = torch.tensor([1e-40, 0.9, 0.3], dtype=torch.float32)
    got = m.kl(p, q).double()
    want = m.kl(p.double().requires_grad_(), q.double()).detach()
    assert torch.isfinite(got).all()
    assert torch.allclose(got, want, rtol=1e-5)


@pytest.mark.parametrize("k", [None, 2, 4])
def test_target_instead_of_labels(rng, k):
    """F* in place of labels: one-hot targets reproduce the labels' ECE and smooth CE."""
    n = 300
    p = rng.random(n) if k is None else random_probs(rng, (n, k), conc=0.5)
    y = rng.integers(0, 2 if k is None else k, n)
    onehot = np.eye(2 if k is None else k)[y]
    target = onehot[:, 1] if k is None else onehot
    for conf in ["top", "positive"] if k in (None, 2) else ["top"]:
        assert m.ece(p, target=target, confidence=conf) == pytest.approx(
            m.ece(p, y, confidence=conf), abs=1e-12
        )
    if k in (None, 2):
        assert m.smooth_ce(p, target=target) == pytest.approx(m.smooth_ce(p, y), abs=1e-12)
        with pytest.raises(ValueError, match="exactly one of labels"):
            m.smooth_ce(p)
    with pytest.raises(ValueError, match="exactly one of labels"):
        m.ece(p, y, target=target)
    with pytest.raises(ValueError, match="target: shape"):
        m.ece(p, target=target[:-1])


def test_soft_target_ece_by_hand(rng):
    """Top-label ECE against F*: Σ_bins |Σ_i (F*_i[pred_i] − conf_i)| / N, computed in numpy."""
    p, f = random_probs(rng, (500, 3), conc=0.7), random_probs(rng, (500, 3))
    conf, pred = p.max(1), p.argmax(1)
    hit = f[np.arange(500), pred]
    idx = np.minimum((conf * 15).astype(int), 15)
    want = sum(abs((hit - conf)[idx == b].sum()) for b in range(16)) / 500
    assert m.ece(p, target=f) == pytest.approx(want, abs=1e-12)


# --------------------------------------------------------------------------- batched ECE, 1-D sup
@pytest.mark.slow
@given(seeds, st.integers(5, 300), st.integers(2, 4), st.sampled_from([5, 15]))
def test_ece_resamples_matches_ece_and_torchmetrics(seed, n, k, n_bins):
    rng = np.random.default_rng(seed)
    p = rng.dirichlet(np.ones(k) * 0.5, size=n)
    if seed % 3 == 0:
        p[: n // 4] = np.eye(k)[0]  # exact 1.0 confidences: the point bin
    y = rng.integers(0, k, n)
    idx = rng.integers(0, n, size=(4, n))
    got = m.ece_resamples(p, y, idx, n_bins)
    assert got.shape == (4,)
    for r, ii in enumerate(idx):
        pt, yt = torch.tensor(p[ii]), torch.tensor(y[ii])
        assert got[r] == pytest.approx(m.ece(pt, yt, n_bins), abs=1e-12)
        ref = float(multiclass_calibration_error(pt, yt, k, n_bins, norm="l1"))
        assert got[r] == pytest.approx(ref, abs=1e-6)
    # one row of indices = the identity: the plain ECE; binary [N] input as [N, 2]
    assert m.ece_resamples(p, y, np.arange(n), n_bins)[0] == pytest.approx(
        m.ece(torch.tensor(p), torch.tensor(y), n_bins), abs=1e-12
    )


def test_ece_resamples_binary_and_validation(rng):
    p = rng.uniform(size=200)
    y = (rng.uniform(size=200) < p).astype(np.int64)
    idx = rng.integers(0, 200, size=(3, 150))
    got = m.ece_resamples(p, y, idx)
    for r, ii in enumerate(idx):
        assert got[r] == pytest.approx(m.ece(torch.tensor(p[ii]), torch.tensor(y[ii])), abs=1e-12)
    with pytest.raises(ValueError, match="indices"):
        m.ece_resamples(p, y, idx + 200)
    with pytest.raises(ValueError, match="indices"):
        m.ece_resamples(p, y, idx.astype(np.float64))


@given(seeds, st.integers(1, 30), st.floats(0.1, 3.0))
def test_lipschitz_sup_1d_matches_dense_linprog(seed, n, spread):
    rng = np.random.default_rng(seed)
    x = rng.normal(0, spread, n)
    if seed % 2:
        x = np.round(x, 1)  # ties share one w
    r = rng.normal(0, 1, n)
    i, j = np.triu_indices(n, 1)
    a = np.zeros((2 * len(i), n))
    rows = np.arange(len(i))
    a[rows, i], a[rows, j] = 1.0, -1.0
    a[len(i) + rows, i], a[len(i) + rows, j] = -1.0, 1.0
    b = np.r_[np.abs(x[i] - x[j]), np.abs(x[i] - x[j])]
    res = linprog(-r, A_ub=a if n > 1 else None, b_ub=b if n > 1 else None, bounds=(-1, 1))
    assert m.lipschitz_sup_1d(x, r) == pytest.approx(-res.fun, abs=1e-8)


def test_lipschitz_sup_1d_is_smooth_ce_times_n(rng):
    p = rng.uniform(size=500)
    y = (rng.uniform(size=500) < p**2).astype(np.int64)
    assert m.lipschitz_sup_1d(p, y - p) / 500 == pytest.approx(m.smooth_ce(p, y), abs=1e-12)
    assert m.lipschitz_sup_1d([], []) == 0.0
    with pytest.raises(ValueError, match="1-D"):
        m.lipschitz_sup_1d(p, p[:10])
    with pytest.raises(ValueError, match="finite"):
        m.lipschitz_sup_1d([0.0, np.nan], [1.0, 1.0])


# --------------------------------------------------------------------------- Wilson interval
@pytest.mark.parametrize("k,n", [(0, 10), (3, 10), (10, 10), (7, 40), (1, 1), (55, 1000)])
@pytest.mark.parametrize("level", [0.9, 0.95, 0.99])
def test_wilson_interval_matches_scipy_and_the_formula(k, n, level):
    ci = scipy.stats.binomtest(k, n).proportion_ci(confidence_level=level, method="wilson")
    lo, hi = m.wilson_interval(k, n, level)
    assert lo == pytest.approx(ci.low, abs=1e-12) and hi == pytest.approx(ci.high, abs=1e-12)
    # statsmodels' proportion_confint(method="wilson") formula, written out
    z = scipy.stats.norm.ppf(0.5 + level / 2)
    ph = k / n
    mid = (ph + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(ph * (1 - ph) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    assert lo == pytest.approx(max(0.0, mid - half), abs=1e-12)
    assert hi == pytest.approx(min(1.0, mid + half), abs=1e-12)
    assert (lo == 0.0) == (k == 0) and (hi == 1.0) == (k == n)


def test_wilson_interval_edge_cases():
    assert all(math.isnan(v) for v in m.wilson_interval(0, 0))
    with pytest.raises(ValueError, match="successes"):
        m.wilson_interval(5, 3)
    with pytest.raises(ValueError, match="trials"):
        m.wilson_interval(1, -1)
    with pytest.raises(ValueError, match="level"):
        m.wilson_interval(1, 3, 1.0)
