"""Chapter 4 (over-optimization): trajectories on a tiny synthetic dataset (history columns, a
cache hit that reloads the whole curve, chapter 1's teachers reused), the remedy grid and the book
helpers. The room along a trajectory is tested in tests/theory/test_overoptimization.py, the
trajectory runner's rules in tests/engine/test_trajectories.py, the over-fitting model in
tests/engine/test_overfitting.py."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
import torch

from w2s_utils import analysis, metrics
from w2s_utils import theory as T
from w2s_utils.book import ch4_overoptimization as ch
from w2s_utils.book.glue import glue_value
from w2s_utils.engine import data
from w2s_utils.engine import overfitting as of
from w2s_utils.engine import trajectories as tj
from w2s_utils.engine.presets import get_preset

# ------------------------------------------------------------------------------- the theory


# ------------------------------------------------------------------------ selection rules


# --------------------------------------------------------------------------- the presets


# ------------------------------------------------------------------ the trajectory runner

_WORDS = {1: ["great", "lovely", "superb", "funny"], 0: ["awful", "dull", "poor", "silly"]}


@pytest.fixture
def isolated(sandbox, monkeypatch):
    """The sandbox with chapter 4's own two-word-list texts in place of every dataset."""
    rng = np.random.default_rng(0)
    texts, labels = [], []
    for i in range(400):
        y = i % 2
        texts.append(f"the film was {rng.choice(_WORDS[y])} number {i}")
        labels.append(y if rng.random() > 0.1 else 1 - y)
    ds = data.TextDataset(
        name="sarcasm",
        texts=tuple(texts),
        labels=np.array(labels),
        ids=tuple(data.text_id(t) for t in texts),
    )
    monkeypatch.setattr(data, "load_texts", lambda name, **kw: ds)


COLUMNS = (
    "step epoch val_loss test_acc test_ce weak_acc ceiling_acc acc_gain gain pgr eps_train "
    "eps_test gamma room gain_lower log_room two_sided_room smooth_ce ece"
).split()


@pytest.mark.slow
def test_trajectory_history_and_cache_hit(isolated):
    cfg = tj.trajectory_configs("test")[0]
    first = tj.run_trajectory(cfg)
    h = first.history
    assert not first.cached and set(COLUMNS) <= set(h.columns)
    assert len(h) == first.students.shape[0] == 3 and first.students.shape[1] == 30
    assert (h["gain"] <= h["room"] + 1e-9).all() and (h["gain_lower"] <= h["gain"] + 1e-9).all()
    assert (h["room"] <= h["log_room"] + 1e-9).all() and (
        h["log_room"] <= h["two_sided_room"]
    ).all()
    assert np.isfinite(first.train_seconds) and first.train_seconds > 0
    again = tj.run_trajectory(cfg)
    assert again.cached
    pd.testing.assert_frame_equal(again.history, h)
    np.testing.assert_array_equal(again.students, first.students)
    assert again.ids == first.ids and len(again.ids) == 30
    # history recomputed from the stored predictions
    p = first.at(1)
    row = tj.trajectory_metrics(p.weak, p.student, p.ceiling, p.labels)
    for col in ("test_acc", "gain", "eps_test", "room", "ece", "smooth_ce"):
        assert row[col] == pytest.approx(h[col].iloc[1], rel=1e-4, abs=1e-5)


@pytest.mark.slow
def test_remedies_and_book_tables(isolated):
    trajs = tj.run_trajectories("test", progress=False)
    assert [t.config.remedy for t in trajs] == ["long run", "hard labels", "aux. confidence 0.25"]
    assert not np.allclose(trajs[0].students, trajs[1].students)
    curves = ch.curve_frame(trajs)
    assert set(curves["remedy"]) == {t.config.remedy for t in trajs} and len(curves) == 9
    grid = get_preset("test").grid("overoptimization")
    points = ch.selected_points(trajs, grid)
    table = ch.remedy_table(points)
    methods = set(table["method"])
    assert {ch.ORACLE, ch.HINDSIGHT, ch.LAST, "hard labels"} <= methods
    assert {"acc_student", "acc_student_lo", "ce_gain", "ece", "pgr"} <= set(table.columns)
    # hindsight picks the long run's best step on the scored examples: no rule read off that
    # run can beat it there
    t = table.set_index("method")
    long_rows = [ch.LAST, "weak-label early stopping", "fixed budget (1 epochs)", ch.ORACLE]
    assert t.loc[ch.HINDSIGHT, "acc_student"] >= t.loc[long_rows, "acc_student"].max() - 1e-12
    # the cross-fitted oracle scores every example at the step picked on the other half
    long = trajs[0]
    oracle = next(p for p, _ in points if p.config.remedy == ch.ORACLE)
    correct = long.students.argmax(-1) == long.labels[None]
    for i in range(len(long.labels)):
        others = [j for j in range(len(long.labels)) if j % 2 != i % 2]
        step = int(np.argmax(correct[:, others].mean(1)))
        np.testing.assert_allclose(oracle.student[i], long.students[step, i])
    mean = analysis.mean_curves(trajs)
    assert {"acc_gain_lo", "gain_hi", "room"} <= set(mean.columns)
    assert len(ch.plot_curves(mean).axes) == 4
    assert len(ch.plot_balance(curves).axes) >= 1
    assert len(ch.plot_remedies(table).axes) == 2
    checks = analysis.trajectory_room_checks(trajs, tj.FLOOR)
    assert checks["holds"].all() and len(checks) == len(trajs)
    diffs = ch.remedy_differences(points)
    assert set(diffs["method"]) == methods - {ch.LAST}
    hard = diffs.set_index("method").loc["hard labels"]
    assert hard["d_acc"] == pytest.approx(t.loc["hard labels", "acc_student"] - t.loc[ch.LAST,
                                          "acc_student"])  # fmt: skip
    peaks = analysis.peak_table(trajs)
    assert peaks["acc_drop"].iloc[0] == pytest.approx(
        peaks["acc_gain_peak"].iloc[0] - peaks["acc_gain_end"].iloc[0]
    )
    assert len(ch.present_peaks(peaks).frame) == 1
    assert len(ch.present_lm_remedies(table).frame) == len(table)
    values = ch.lm_glue(peaks, mean, checks, table, diffs)
    assert values["room_runs"] == 3 and "bow_hard_labels_d_acc" in values
    assert "bow_gold_label_oracle_other_half_d_acc" in values
    setting = ch.lm_setting_glue(grid, trajs)
    assert setting["n_runs"] == 3 and setting["aux_alphas"] == "0.25"
    pieces = ch.cached_pieces(tj.run_trajectories("test", progress=False), [])
    assert len(pieces) == 3 and all(s > 0 for _, s in pieces)


# ------------------------------------------- the trajectories reuse chapter 1's shared pieces


class _Stop(Exception):
    """Raised where training would start: the keys are known by then."""


def _piece_keys(monkeypatch, run) -> set[tuple[str, str]]:
    """(kind, key hash) of every shared piece (teacher, ceiling) that ``run()`` looks up, with
    nothing trained: piece lookups answer with placeholder predictions, results miss, and the
    first training raises :class:`_Stop`. Splits are cut at small sizes (keys hold the
    config's sizes, not the split's)."""
    from w2s_utils.engine import cache
    from w2s_utils.engine.experiment import scheduler

    cut = data.make_splits
    small = data.SplitSizes(40, 60, 20, 40)
    monkeypatch.setattr(data, "make_splits", lambda ds, sizes, seed: cut(ds, small, seed))
    seen: set[tuple[str, str]] = set()

    def lookup(key, kind, **kw):
        if kind not in ("weak_preds", "ceiling_preds"):
            return None
        seen.add((kind, cache.config_hash(key, 64)))
        half = {s: np.full((n, 2), 0.5) for s, n in (("w2s_train", 60), ("val", 20), ("test", 40))}
        return {**half, "hist__step": np.array([1.0])}

    def stop(*args, **kwargs):
        raise _Stop

    monkeypatch.setattr(cache, "lookup", lookup)
    monkeypatch.setattr(scheduler, "train_jobs", lambda jobs, *a, **k: stop() if jobs else [])
    monkeypatch.setattr(tj, "build_model", stop)
    run()
    monkeypatch.undo()
    return seen


def _grid_pieces(preset: str):
    """Chapter 1's grid cell by cell (a loop grid stops at its first training)."""
    from w2s_utils.engine.experiment import run_grid

    p = get_preset(preset)

    def run():
        for d in p.ladder_datasets:
            for s in p.seeds:
                for w in p.ladder_weaks:
                    with pytest.raises(_Stop):
                        run_grid(d, w, seeds=[s], preset=preset, progress=False)

    return run


def _trajectory_pieces(preset: str):
    def run():
        for cfg in tj.trajectory_configs(preset):
            with pytest.raises(_Stop):
                tj.run_trajectory(cfg)

    return run


@pytest.mark.slow
@pytest.mark.parametrize("preset", ["gpu", "ci"])
def test_trajectories_reuse_chapter_one_teachers_and_ceilings(isolated, monkeypatch, preset):
    """Every teacher and ceiling a chapter-4 trajectory reads is one chapter 1's grid stores, by
    cache key: at ``gpu`` the stacked ones (chapter 1 trains stacked there), at ``ci`` the
    loop's. Nothing is trained to find out."""
    monkeypatch.setenv("W2S_DEVICE", "cpu")
    p = get_preset(preset)
    grid = _piece_keys(monkeypatch, _grid_pieces(preset))
    monkeypatch.setenv("W2S_DEVICE", "cpu")
    trajectories = _piece_keys(monkeypatch, _trajectory_pieces(preset))
    g = p.grid("overoptimization")
    n_ceilings = len(g.datasets) * len(g.seeds)
    assert len({k for k in trajectories if k[0] == "ceiling_preds"}) == n_ceilings
    assert len({k for k in trajectories if k[0] == "weak_preds"}) == n_ceilings * len(g.weaks)
    assert trajectories <= grid, "a trajectory would train a piece chapter 1 does not store"
    cfg = tj.trajectory_configs(preset)[0]
    assert cfg.trainer == p.trainer
    from w2s_utils.engine import cache
    from w2s_utils.engine.experiment import piece_key

    stacked = (
        "ceiling_preds",
        cache.config_hash(piece_key(cfg.experiment, "ceiling", "stacked"), 64),
    )
    assert (stacked in trajectories) == (preset == "gpu")


# ---------------------------------------------------------- the over-fitting model's pages


@pytest.mark.slow
def test_model_figures_tables_and_glue(isolated):
    small = of.OverfittingSetting(
        n=20, bulk_dim=40, signal_dim=3, n_heldout=10, n_gold=10, n_test=200, steps=300,
        n_evals=10,
    )  # fmt: skip
    curves = of.overfitting_curves(small, seeds=3)
    band = analysis.step_intervals(curves.gain, curves.steps)
    pop = of.population_projection(small)
    values = ch.demo_glue(curves, band, pop, rate_ratio=0.5)
    j = int(band["value"].idxmax())
    assert values["demo_peak_step"] == int(curves.steps[j])
    assert values["demo_peak"].startswith(f"{band['value'][j]:+.3f}".replace("-", "\u2212"))
    assert values["demo_interpolant"] == pytest.approx(float(curves.interpolant_gain.mean()))
    for key, value in values.items():
        glue_value(value, key)  # every value can be glued (no NaN, no frames)
    assert len(ch.plot_overfitting(curves, band, pop).axes) == 2
    by_n = {20: curves, 15: of.overfitting_curves(small, 3, n=15)}
    cells = {("n", n): c for n, c in by_n.items()}
    rules = {"gold-label oracle": "gold_oracle", "trained to the end": "final"}
    comps = {
        k: analysis.compare_selected(
            {m: c.at(of.select_steps(c, r)) for m, r in rules.items()}, "trained to the end"
        )
        for k, c in cells.items()
    }
    sweep = ch.sweep_frame(cells, comps)
    final = float(curves.at(of.select_steps(curves, "final")).mean())
    assert sweep.set_index("value").loc[20, "final"] == pytest.approx(final)
    assert len(ch.present_sweep(sweep).frame) == 2
    assert "sw_n_15_final" in ch.sweep_glue(sweep)
    assert len(ch.plot_sweeps(by_n, {1.5: curves}).axes) == 2
    picks = {"trained to the end": "final", "weak-label early stopping": "weak_early_stop"}
    tables = [
        analysis.compare_selected(
            {m: curves.at(of.select_steps(curves, r), q) for m, r in picks.items()},
            "trained to the end",
        )
        for q in ("gain", "acc_gain")
    ]
    glue = ch.remedy_glue(*tables)
    assert (
        "rem_weak_label_early_stopping_diff" in glue and "rem_trained_to_the_end_diff" not in glue
    )
    assert len(ch.present_demo_remedies(*tables).frame) == 2
    assert len(ch.plot_demo_remedies(*tables).axes) == 2
    ex = ch.exercise_glue(
        curves,
        analysis.compare_selected(
            {r: curves.at(of.select_steps(curves, r)) for r in ("final", "weak_early_stop")},
            "final",
        ),
        pop,
    )
    assert ex["ex5_err_weak"] == pytest.approx(float(curves.err_weak.mean()))
    pieces = ch.cached_pieces([], [of.overfitting_curves(small, 3), replace(curves, cached=False)])
    assert len(pieces) == 1 and pieces[0][1] == pytest.approx(curves.train_seconds)


def test_worked_examples_glue():
    weak, f_star = np.array([[0.6, 0.4]]), np.array([[0.9, 0.1]])
    path = T.gain_along_path(weak, np.array([[0.95, 0.05]]), f_star=f_star)
    assert 0.6 + 0.35 * path.argmax == pytest.approx(0.9, abs=1e-6)  # the peak is at the truth
    assert path.max_gain == pytest.approx(float(metrics.kl(torch.tensor(f_star),
                                                            torch.tensor(weak))))  # fmt: skip
    assert path.slope_start == pytest.approx(0.9 * 0.95 / 0.6 + 0.1 * 0.05 / 0.4 - 1)
    q = np.linspace(0.95, 0.6, 8)
    students = np.stack([np.array([[v, 1 - v]]) for v in q])
    example = T.trajectory_room(weak, students, f_star=f_star)
    nf = T.instances.no_floor_instance()
    no_floor = T.trajectory_room(nf.weak, nf.student[None], f_star=nf.f_star)
    values = ch.room_example_glue(q, example, no_floor, tj.FLOOR)
    assert values["ex_q_best"] == pytest.approx(q[example.best_step]) and values["ex_holds"]
    assert len(ch.present_room_example(q, example).frame) == 8
    checks = {
        kind: T.sweep(
            lambda f, w, g, kind=kind: T.gain_along_path(w, g, f_star=f, path=kind),
            (T.instances.floored_triple(i, 2 + i % 4) for i in range(10)),
            10,
        )
        for kind in T.PATH_KINDS
    }
    glue = ch.path_check_glue(checks)
    assert glue["path_mixture_viol"] == 0 and glue["path_geometric_n"] == 10
