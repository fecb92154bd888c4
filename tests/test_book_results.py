"""Tests for book.results (how an interval reads) and book.pipeline (chapter 1's helpers) on fake
runs; the paired tables themselves are tested with the analysis layer (tests/test_analysis.py)."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from w2s_utils import analysis
from w2s_utils.book import pipeline, results
from w2s_utils.engine.presets import get_preset
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


def test_with_err_change_reads_the_gain_convention_back():
    runs = [fake_run(s) for s in range(3)]
    for r in runs:
        r.labels, r.ids = runs[0].labels, runs[0].ids
    paired = analysis.paired_table(runs)
    old = results.with_err_change(paired)
    assert old.err_change.iloc[0] == pytest.approx(-paired.gain.iloc[0])
    assert old.err_change_lo.iloc[0] == pytest.approx(-paired.gain_hi.iloc[0])
    assert old.err_change_seed_hi.iloc[0] == pytest.approx(-paired.gain_seed_lo.iloc[0])
    # the old decomposition: err_change = eps + interaction (old sign)
    assert old.err_change.iloc[0] == pytest.approx(old.eps.iloc[0] + old.interaction.iloc[0])
    assert "gain" in old and old.gain.iloc[0] == paired.gain.iloc[0]


def test_dirichlet_triple_is_seeded_and_positive():
    a = instances.dirichlet_triple(5)
    b = instances.dirichlet_triple(5)
    assert all((x == y).all() for x, y in zip(a, b, strict=True))
    assert (a[1] > 0).all() and (a[2] > 0).all() and a[0].shape == (64, a[0].shape[1])
    assert 2 <= a[0].shape[1] <= 10


def test_decomposition_check_has_no_residual_and_glues():
    check = pipeline.decomposition_check(20)
    assert len(check) == 20 and check.holds.all() and check.residual.max() < 1e-10
    np.testing.assert_allclose(check.gain, check.interaction - check.eps, atol=1e-10)
    glued = pipeline.decomposition_glue(check)
    assert glued["lemma_n"] == 20 and glued["lemma_all_hold"]
    assert pipeline.decomposition_summary(check).data["instances"].sum() == 20


def test_worked_example_numbers():
    table, terms = pipeline.worked_example()
    assert terms["ex_change"] == pytest.approx(terms["ex_eps"] + terms["ex_iota"])
    assert terms["ex_eps"] == pytest.approx(0.6 * np.log(0.6 / 0.8) + 0.4 * np.log(2.0))
    assert terms["ex_iota"] == pytest.approx(0.3 * np.log(0.6 / 0.8) - 0.3 * np.log(2.0))
    assert terms["ex_change"] < 0 and table.shape == (2, 5)


def test_chapter_tables_and_findings_from_fake_runs():
    runs = [fake_run(s) for s in range(2)]
    for r in runs:
        r.labels, r.ids = runs[0].labels, runs[0].ids
    setup = get_preset("test")
    paired = analysis.paired_table(runs)
    acc, lemma = pipeline.result_tables(paired, "test")
    assert acc.data.shape[0] == 1 and "ΔErr = ΔCE" in str(lemma.data.columns)
    found = pipeline.findings_glue(paired, analysis.per_run_table(runs), setup)
    assert found["n_comparisons"] == 1 and "bow" in found["findings"]
    assert "PGR" in found["room_text"] and "none" not in found["room_text"]
    assert pipeline.roles_table(setup).loc["weak teacher", "model"] == "bow"
