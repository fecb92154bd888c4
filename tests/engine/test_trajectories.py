"""The trajectory runner (:mod:`w2s_utils.engine.trajectories`): selection rules, the weak teacher's
early stop against the trainer's rule, the over-optimization grid in every preset, the auxiliary
loss reaching the trainer and the per-step metrics against oracles (whole trajectories on a
synthetic dataset: tests/chapters/test_ch4_overoptimization.py)."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from w2s_utils.engine import losses
from w2s_utils.engine import trajectories as tj
from w2s_utils.engine.presets import OveroptimizationGrid, get_preset


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
