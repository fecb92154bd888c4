"""Chapter 4 (over-optimization): the room along a trajectory on random instances, the gain along
a path, the trajectory runner (history columns, cache hit reloads the whole curve), the selection
rules (the cross-fitted gold-label oracle included), the remedy grid and the book helpers. The
over-fitting model has its own file, ``tests/test_overfitting.py``."""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from w2s_utils import analysis, metrics
from w2s_utils import theory as T
from w2s_utils.book import ch4_overoptimization as ch
from w2s_utils.book.glue import glue_value
from w2s_utils.engine import data, losses
from w2s_utils.engine import overfitting as of
from w2s_utils.engine import trajectories as tj
from w2s_utils.engine.presets import OveroptimizationGrid, get_preset

SETTINGS = settings(derandomize=True)
seeds = st.integers(0, 2**31 - 1)


def _trajectory_instance(seed: int, k: int, n: int, steps: int):
    """Teacher, ground truth and students that move from an independent start to the teacher."""
    rng = np.random.default_rng(seed)
    weak = rng.dirichlet(np.ones(k), size=n)
    f_star = rng.dirichlet(np.ones(k), size=n)
    start = rng.dirichlet(np.ones(k), size=n)
    lam = np.linspace(0.0, 1.0, steps)[:, None, None]
    students = (1 - lam) * start + lam * weak
    floor = 1e-3
    mix = lambda p: (1 - k * floor) * p + floor  # noqa: E731 (floor by mixing with uniform)
    return mix(weak), mix(f_star), mix(students)


# ------------------------------------------------------------------------------- the theory


@SETTINGS
@given(seed=seeds, k=st.integers(2, 5), n=st.integers(1, 25), steps=st.integers(2, 8))
def test_gain_within_room_at_every_step(seed, k, n, steps):
    weak, f_star, students = _trajectory_instance(seed, k, n, steps)
    res = T.trajectory_room(weak, students, f_star=f_star)
    assert res.holds and res.steps == steps
    for t in range(steps):
        w, s, f = (torch.as_tensor(a) for a in (weak, students[t], f_star))
        gain = float((metrics.kl(f, w) - metrics.kl(f, s)).mean())  # independent: Err by KL
        lr = w.log() - s.log()
        assert gain == pytest.approx(res.gain[t], abs=1e-10)
        assert -float(lr.amax(-1).mean()) - 1e-12 <= gain <= -float(lr.amin(-1).mean()) + 1e-12
        assert res.room[t] <= res.log_room[t] + 1e-12 <= res.two_sided_room[t] + 1e-12
        assert res.gain_lower[t] == pytest.approx(-float(lr.amax(-1).mean()), abs=1e-12)
    # the student that equals its teacher has no room left
    assert res.room[-1] == pytest.approx(0.0, abs=1e-12)
    assert res.best_gain == max(res.gain) and res.max_room == max(res.room)


@SETTINGS
@given(seed=seeds, k=st.integers(2, 4), n=st.integers(2, 40))
def test_room_holds_exactly_on_a_labelled_sample(seed, k, n):
    """With hard labels the test-CE difference lies inside the empirical room deterministically."""
    weak, _, students = _trajectory_instance(seed, k, n, 4)
    y = np.random.default_rng(seed + 1).integers(0, k, size=n)
    res = T.trajectory_room(weak, students, labels=y)
    ce = lambda p: float(metrics.log_loss(torch.as_tensor(p), torch.as_tensor(y)))  # noqa: E731
    for t in range(4):
        assert res.gain[t] == pytest.approx(ce(weak) - ce(students[t]), abs=1e-10)
    assert res.holds


def test_room_is_attained_by_a_point_mass_truth():
    weak, _, students = _trajectory_instance(3, 3, 20, 3)
    for t in range(3):
        truth = T.worst_case_truth(weak, students[t], side="upper")  # argmax_j r_j: largest gain
        res = T.trajectory_room(weak, students[t : t + 1], f_star=truth)
        assert res.gain[0] == pytest.approx(res.room[0], abs=1e-9)


def test_room_without_truth_and_bad_inputs():
    weak, _, students = _trajectory_instance(0, 2, 10, 3)
    res = T.trajectory_room(weak, list(students))
    assert res.gain is None and res.best_step is None and res.holds and res.source == "none"
    assert "Room along a trajectory" in str(res)
    with pytest.raises(ValueError, match="students"):
        T.trajectory_room(weak, [])
    with pytest.raises(ValueError, match="at most one"):
        T.trajectory_room(weak, students, f_star=weak, labels=np.zeros(10, int))
    with pytest.raises(ValueError, match="students"):
        T.trajectory_room(weak, np.ones((2, 3, 4, 2)) / 2)


def test_no_floor_small_eps_large_room():
    """Chapter 2: without a floor a tiny eps does not force a small room (or gain)."""
    d = 1e-8
    weak, student = np.array([[1 - d, d]]), np.array([[1 - d**0.5, d**0.5]])
    a = 1 / math.log(1 / d)
    res = T.trajectory_room(weak, student[None], f_star=np.array([[1 - a, a]]))
    assert res.eps[0] < 2e-4 and res.gain[0] > 0.4 and res.room[0] >= res.gain[0]


# ------------------------------------------------------------------------ selection rules


def _hist(val_loss, test_acc, epochs):
    return pd.DataFrame({"val_loss": val_loss, "test_acc": test_acc, "epoch": epochs})


def test_select_step_rules():
    h = _hist([0.9, 0.7, 0.72, 0.71, 0.6], [0.6, 0.8, 0.7, 0.75, 0.7], [1, 2, 3, 4, 5])
    assert tj.select_step(h, "final") == 4
    assert tj.select_step(h, "oracle") == 1
    assert tj.select_step(h, "weak_early_stop", patience=2) == 1  # stops after 2 bad evals
    assert tj.select_step(h, "weak_early_stop", patience=3) == 4  # 0.6 comes in time
    assert tj.select_step(h, "fixed_budget", budget_epochs=3.5) == 2
    assert tj.select_step(h, "fixed_budget", budget_epochs=0.5) == 0
    with pytest.raises(ValueError, match="rule"):
        tj.select_step(h, "gold")
    with pytest.raises(ValueError, match="empty"):
        tj.select_step(h.iloc[:0], "final")


def test_weak_early_stop_matches_the_trainer_rule():
    """The post-hoc rule picks the evaluation the trainer's early stopping would restore."""
    rng = np.random.default_rng(0)
    for _ in range(50):
        v = rng.random(12)
        h = _hist(v, rng.random(12), np.arange(1, 13))
        i = tj.select_step(h, "weak_early_stop", patience=2)
        # trainer: stop when `patience` evaluations in a row fail to improve; restore the best
        best, bad, stop = math.inf, 0, len(v)
        for j, x in enumerate(v):
            if x < best - 1e-6:
                best, bad = x, 0
            else:
                bad += 1
                if bad >= 2:
                    stop = j + 1
                    break
        assert v[i] == v[:stop].min()


# --------------------------------------------------------------------------- the presets


@pytest.mark.parametrize("name", ["ci", "gpu", "paper"])
def test_grid_in_every_preset(name):
    g = get_preset(name).grid("overoptimization")
    assert isinstance(g, OveroptimizationGrid) and g.epochs > g.short_epochs > 0
    assert g.weaks and g.seeds and g.remedy_weaks and g.remedy_seeds  # resolved, never empty
    names = [r.name for r in g.remedies]
    full = [r.name for r in get_preset("paper").overoptimization.remedies]
    assert "hard labels" in full and sum("confidence" in r for r in full) == 2
    assert set(names) <= set(full)  # ci: one illustration; gpu: long runs only; paper: all
    assert names == {"ci": ["aux. confidence 0.75"], "gpu": [], "paper": full}[name]
    assert len(set(names)) == len(names) and tj.LONG not in names
    for r in g.remedies:
        cfg = tj.make_trajectory_config("sarcasm", "bow", 0, "ci", r)
        assert cfg.experiment.label_type == r.label_type and cfg.remedy == r.name
        assert cfg.experiment.student_settings.early_stopping is False
        if r.loss == "aux_conf":
            assert dict(cfg.loss_options)["alpha_max"] == r.alpha_max


def test_ci_configs_are_the_grid():
    g = get_preset("ci").grid("overoptimization")
    cfgs = tj.trajectory_configs("ci")
    n_long = len(g.datasets) * len(g.weaks) * len(g.seeds)
    n_remedy = len(g.remedy_weaks) * len(g.remedies) * len(g.remedy_seeds)
    assert len(cfgs) == n_long + n_remedy
    s = cfgs[0].experiment.student_settings
    assert (s.epochs, s.lr, cfgs[0].student_train) == (g.epochs, g.lr, g.student_train)


def test_aux_loss_strength_reaches_the_trainer():
    """loss_options are passed to make_loss: alpha_max sets the confidence loss's weight."""
    fn = losses.make_loss("aux_conf", total_steps=10, alpha_max=0.25, warmup_frac=0.2)
    assert fn.alpha(10) == pytest.approx(0.25) and fn.alpha(1) == pytest.approx(0.125)


# ------------------------------------------------------------------ the trajectory runner

_WORDS = {1: ["great", "lovely", "superb", "funny"], 0: ["awful", "dull", "poor", "silly"]}


@pytest.fixture
def isolated(monkeypatch, tmp_path):
    monkeypatch.setenv("W2S_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("W2S_DEVICE", "cpu")
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


def test_trajectory_metrics_oracles():
    rng = np.random.default_rng(5)
    w, s, c = (rng.dirichlet([1, 1], size=50) for _ in range(3))
    y = rng.integers(0, 2, 50)
    row = tj.trajectory_metrics(w, s, c, y, weak_train=w, student_train=s)
    from sklearn.metrics import log_loss

    assert row["gain"] == pytest.approx(log_loss(y, w) - log_loss(y, s), rel=1e-9)
    assert row["test_acc"] == pytest.approx(float((s.argmax(1) == y).mean()))
    assert row["eps_train"] == pytest.approx(row["eps_test"], rel=1e-9)
    assert row["gamma"] == pytest.approx(min(w.min(), s.min()))


def test_random_trajectory_instance():
    f_star, weak, students = T.random_trajectory(3, n=12, n_classes=4, steps=5, floor=1e-3)
    assert f_star.shape == weak.shape == (12, 4) and students.shape == (5, 12, 4)
    assert float(students.min()) >= 1e-3 - 1e-15 and float(weak.min()) >= 1e-3 - 1e-15
    torch.testing.assert_close(students[-1], weak)
    torch.testing.assert_close(students.sum(-1), torch.ones(5, 12, dtype=torch.float64))
    with pytest.raises(ValueError, match="steps"):
        T.random_trajectory(0, steps=1)


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
