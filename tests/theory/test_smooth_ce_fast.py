"""The Sinkhorn path of ``theory.multiclass_smooth_ce``: certified brackets on random instances.

Oracle: ``method="lp"`` (one LP per class over every source-sink arc, exact; itself checked
against the all-pairs LP of the definition in the chapter-3 tests) and, for ``K = 2``, the exact
1-D programme (``method="dp"``). Tolerances: 1e-9 absolute on values of order 0.1-1 (the bounds
are recomputed in float64; the oracle LP is solved by HiGHS to 1e-9 feasibility).
"""

from __future__ import annotations

import tracemalloc

import numpy as np
import pytest
import torch

from w2s_utils import theory
from w2s_utils.theory import smooth_ce


def _instance(rng, make_probs, n: int, k: int, labels: bool):
    """Miscalibrated predictions (tempered, noisy) against F* or labels drawn from it."""
    f_star = make_probs(rng, (n, k), conc=float(rng.uniform(0.3, 2.0)))
    z = np.log(np.clip(f_star, 1e-12, 1.0)) * rng.uniform(0.3, 3.0) + rng.normal(0, 0.5, (n, k))
    p = np.exp(z - z.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    if labels:
        y = (f_star.cumsum(1) > rng.uniform(size=(n, 1))).argmax(1)
        return torch.tensor(p), {"labels": torch.tensor(y)}
    return torch.tensor(p), {"f_star": torch.tensor(f_star)}


@pytest.mark.slow
def test_sinkhorn_bracket_contains_the_exact_value(rng, make_probs):
    # 6 random instances (N = 20..60, K = 3..5, labels and F* alternately), each with 1, 3 and
    # the default number of Sinkhorn iterations: every bracket contains the exact LP value
    for t in range(6):
        n, k = int(rng.integers(20, 61)), int(rng.integers(3, 6))
        p, truth = _instance(rng, make_probs, n, k, labels=bool(t % 2))
        exact = theory.multiclass_smooth_ce(p, **truth, method="lp")
        assert exact.exact
        widths = []
        for iters in (1, 3, smooth_ce.SINKHORN_ITERATIONS):
            r = theory.multiclass_smooth_ce(
                p, **truth, method="sinkhorn", sinkhorn_iterations=iters
            )
            assert r.method == "sinkhorn" and (r.n, r.k) == (n, k)
            assert r.lower - 1e-9 <= exact.value <= r.upper + 1e-9, (t, iters, r, exact)
            assert 0.0 <= r.lower <= r.upper <= 2.0
            assert r.exact == (r.width <= 1e-8 * max(1.0, r.upper))
            widths.append(r.width)
        # the default schedule is tight on these (measured: below 1e-3 of the value)
        assert widths[-1] <= 0.01 * exact.value + 1e-9, (t, widths, exact.value)


@pytest.mark.slow
def test_sinkhorn_then_column_generation_reaches_the_exact_value(rng, make_probs):
    # with a time limit, column generation continues from the plan's support and closes
    for t in range(2):
        p, truth = _instance(rng, make_probs, int(rng.integers(30, 51)), 3, labels=bool(t % 2))
        exact = theory.multiclass_smooth_ce(p, **truth, method="lp")
        r = theory.multiclass_smooth_ce(p, **truth, method="sinkhorn", time_limit=60.0)
        assert r.exact and r.value == pytest.approx(exact.value, abs=1e-8), (r, exact)
        assert r.rounds >= 3  # the Sinkhorn pass counts as one round per class


@pytest.mark.slow
@pytest.mark.parametrize("labels", [True, False])
def test_sinkhorn_k2_agrees_with_the_exact_1d_programme(rng, make_probs, labels):
    p, truth = _instance(rng, make_probs, 60, 2, labels)
    dp = theory.multiclass_smooth_ce(p, **truth)
    assert dp.method == "dp" and dp.exact
    r = theory.multiclass_smooth_ce(p, **truth, method="sinkhorn")
    assert r.lower - 1e-9 <= dp.value <= r.upper + 1e-9, (r, dp)
    assert r.width <= 0.01 * dp.value + 1e-9
    closed = theory.multiclass_smooth_ce(p, **truth, method="sinkhorn", time_limit=60.0)
    assert closed.exact and closed.value == pytest.approx(dp.value, abs=1e-8)


@pytest.mark.slow
def test_auto_uses_sinkhorn_beyond_the_colgen_size(rng, make_probs, monkeypatch):
    # "auto" switches by the number of source-sink arcs; lowering the threshold shows the switch
    p, truth = _instance(rng, make_probs, 60, 3, labels=True)
    exact = theory.multiclass_smooth_ce(p, **truth, method="lp")
    monkeypatch.setattr(smooth_ce, "AUTO_LP_ARCS", 10)
    monkeypatch.setattr(smooth_ce, "AUTO_COLGEN_ARCS", 10)
    r = theory.multiclass_smooth_ce(p, **truth)
    assert r.method == "sinkhorn"
    assert r.lower - 1e-9 <= exact.value <= r.upper + 1e-9
    # with a time budget (check's few seconds) auto keeps column generation within it
    timed = theory.multiclass_smooth_ce(p, **truth, time_limit=5.0)
    assert timed.method == "colgen"
    assert timed.lower - 1e-9 <= exact.value <= timed.upper + 1e-9


def test_sinkhorn_memory_guard_raises_before_allocating():
    # N = 200,000, K = 3: the dense phase would hold ~2e9 source-sink pairs of one class (tens of
    # GiB); refused before anything of that size is allocated, with what to do
    rng = np.random.default_rng(1)
    n = 200_000
    p = torch.tensor(rng.dirichlet(np.ones(3), size=n))
    y = torch.tensor(rng.integers(0, 3, n))
    tracemalloc.start()
    try:
        with pytest.raises(ValueError, match="GiB.*subsample the rows"):
            theory.multiclass_smooth_ce(p, labels=y, method="sinkhorn")
        with pytest.raises(ValueError, match="subsample the rows"):
            theory.multiclass_smooth_ce(p, labels=y)  # auto picks sinkhorn at this size
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 100 * 2**20, peak  # copies of the [N, 3] input, nothing of N^2 / K size
    with pytest.raises(ValueError, match="sinkhorn_iterations"):
        theory.multiclass_smooth_ce(p[:10], labels=y[:10], sinkhorn_iterations=0)
