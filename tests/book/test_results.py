"""Tests for book.results (how an interval reads) on fake runs; chapter 1's module is tested in
tests/chapters/test_ch1_pipeline.py, the paired tables with the analysis layer
(tests/analysis/test_seed_pooling.py)."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pandas as pd

from w2s_utils.book import results
from w2s_utils.theory import instances


def fake_run(seed: int, weak_name: str = "bow", dataset: str = "sarcasm", n: int = 300):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)

    def probs(skill):  # noqa: E306 - a tiny predictor that is right with probability ~skill
        p1 = np.clip(np.where(y == 1, skill, 1 - skill) + rng.normal(0, 0.15, n), 0.02, 0.98)
        return np.stack([1 - p1, p1], 1)

    cfg = SimpleNamespace(dataset=dataset, weak=weak_name, seed=seed)
    ids = [f"t{i}" for i in range(n)]
    return SimpleNamespace(
        config=cfg, labels=y, ids=ids, weak=probs(0.6), student=probs(0.7), ceiling=probs(0.9)
    )


def test_formatting_helpers():
    assert results.fmt_interval(0.1234, 0.1, 0.2, 2) == "0.12 [0.10, 0.20]"
    assert results.fmt_interval(0.1, np.nan, np.nan, 1, signed=True) == "+0.1"
    assert results.fmt_interval(np.nan, 0, 1) == "n/a"
    assert results.verdict(0.1, 0.2) == "higher than"
    assert results.verdict(-0.2, -0.1) == "lower than"
    assert results.verdict(-0.1, 0.1) == "not distinguishable from"
    df = pd.DataFrame({"dataset": ["d1", "d2"], "weak": ["bow", "l1"]})
    assert results.names_where(df, [True, False]) == "bow on d1"
    assert results.names_where(df, [False, False], empty="-") == "-"


def test_dirichlet_triple_is_seeded_and_positive():
    a = instances.dirichlet_triple(5)
    b = instances.dirichlet_triple(5)
    assert all((x == y).all() for x, y in zip(a, b, strict=True))
    assert (a[1] > 0).all() and (a[2] > 0).all() and a[0].shape == (64, a[0].shape[1])
    assert 2 <= a[0].shape[1] <= 10
