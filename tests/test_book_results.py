"""Tests for book.results (paired tables) and book.pipeline (chapter 1's helpers) on fake runs."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from w2s_utils import metrics, theory
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


def test_per_example_agrees_with_the_library_decomposition():
    r = fake_run(0)
    vals = results.per_example(r)
    onehot = metrics.one_hot(r.labels, 2)
    dec = theory.error_decomposition(onehot, r.weak, r.student)
    assert vals["err_change"].mean() == pytest.approx(dec.lhs, abs=1e-12)
    assert vals["eps"].mean() == pytest.approx(dec.eps, abs=1e-12)
    assert vals["interaction"].mean() == pytest.approx(dec.interaction, abs=1e-12)
    assert vals["acc_weak"].mean() == pytest.approx(metrics.accuracy(r.weak, r.labels))


def test_paired_table_intervals_cover_the_point_and_hold_test_noise():
    runs = [fake_run(s) for s in range(3)] + [fake_run(s, "minilm-l1") for s in range(3)]
    # one shared test split per group: give each group the labels of its seed-0 run
    for r in runs:
        base = fake_run(0, r.config.weak)
        r.labels, r.ids = base.labels, base.ids
    table = results.paired_table(runs, n_resamples=500)
    assert list(table.weak) == ["bow", "minilm-l1"] and (table.n_seeds == 3).all()
    for q in results.QUANTITIES + ("pgr",):
        assert (table[f"{q}_lo"] <= table[q]).all() and (table[q] <= table[f"{q}_hi"]).all()
    # interaction = err_change - eps, for the means
    np.testing.assert_allclose(table.interaction, table.err_change - table.eps, atol=1e-12)
    # PGR is the ratio of the seed-averaged gain and gap
    row = table.iloc[0]
    assert row.pgr == pytest.approx(row.acc_gain / row.acc_gap)
    # with one seed the training noise cannot be estimated: no interval at all
    one = results.paired_table(runs[:1], n_resamples=200)
    assert np.isnan(one.acc_gain_seed_lo.iloc[0]) and np.isnan(one.acc_gain_lo.iloc[0])


def test_paired_table_aligns_examples_by_id():
    a = fake_run(0)
    b = fake_run(1)
    b.labels, b.ids = a.labels, a.ids
    perm = np.random.default_rng(0).permutation(len(a.ids))
    c = fake_run(1)
    c.labels, c.ids = a.labels[perm], [a.ids[i] for i in perm]
    c.weak, c.student, c.ceiling = b.weak[perm], b.student[perm], b.ceiling[perm]
    pd.testing.assert_frame_equal(
        results.paired_table([a, b], n_resamples=300), results.paired_table([a, c], n_resamples=300)
    )


def test_paired_table_rejects_mismatched_test_splits_and_empty_input():
    a, b = fake_run(0), fake_run(1)
    b.ids = [f"other{i}" for i in range(len(b.ids))]
    with pytest.raises(ValueError, match="different examples"):
        results.paired_table([a, b])
    with pytest.raises(ValueError, match="empty"):
        results.paired_table([])


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


def test_decomposition_check_has_no_residual_and_glues():
    check = pipeline.decomposition_check(20)
    assert len(check) == 20 and check.holds.all() and check.residual.max() < 1e-10
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
    paired = results.paired_table(runs, n_resamples=200)
    acc, lemma = pipeline.result_tables(paired, "test")
    assert acc.data.shape[0] == 1 and "ΔErr = ΔCE" in str(lemma.data.columns)
    found = pipeline.findings_glue(paired, results.per_run_table(runs), setup)
    assert found["n_comparisons"] == 1 and "bow" in found["findings"]
    assert "PGR" in found["room_text"] and "none" not in found["room_text"]
    assert pipeline.roles_table(setup).loc["weak teacher", "model"] == "bow"
