"""Chapter 3 (calibration): the chapter's book module (:mod:`w2s_utils.book.ch3_calibration`:
the memo of tables, figures and glue) and the pooled tables it presents, on toy runs. Temperature
scaling is tested in tests/metrics/test_calibration.py, the multi-class bound and the binned-ECE
escape in tests/theory/test_calibration.py, the weak_temperature field in
tests/engine/test_experiment.py."""

from __future__ import annotations

from types import SimpleNamespace

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
import torch

from w2s_utils import analysis, metrics, theory
from w2s_utils.book import ch3_calibration as ch
from w2s_utils.theory import instances

# --------------------------------------------------------------------------- temperature


# --------------------------------------------------------------------------- theory


# --------------------------------------------------------------------------- the pipeline field


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


@pytest.mark.slow
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


# --------------------------------------------------------------------------- the book module
def test_cached_frame_round_trip(sandbox):
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


@pytest.mark.slow
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


@pytest.mark.slow
def test_calibration_change_by_any_fields(rng):
    runs = _fake_runs(rng, seeds=(0, 1, 2))
    per_run, pairs = analysis.calibration_change(runs, ("weak", "weak_temperature"), n_resamples=20)
    assert list(pairs.weak) == ["bow"] and list(pairs.weak_temperature) == [1.0]
    assert pairs.pair.iloc[0] == "bow\n1.0" and len(per_run) == 3
    default_runs, default_pairs = analysis.calibration_change(runs, n_resamples=20)
    assert default_pairs.smce_change.iloc[0] == pytest.approx(pairs.smce_change.iloc[0])


@pytest.mark.slow
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


@pytest.mark.slow
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
