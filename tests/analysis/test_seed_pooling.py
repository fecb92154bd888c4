"""The analysis layer pools seeds by position, so it must refuse seeds whose test examples are in
different orders (the chapter-3 bug: every seed scored against the first seed's labels) and, on
seeds in one order, give what an independent per-seed computation gives.

Fakes: a test split of ``N`` ids with one label and one true probability per id; each seed's
teacher, student and ceiling are noisy functions *of the id*, so a run that holds its examples in
another order is internally consistent (its labels and predictions permuted together), exactly
what the engine produced before the test split was sorted by id.
"""

from __future__ import annotations

import subprocess
import sys
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
import torch
from scipy import stats
from scipy.special import rel_entr
from sklearn.metrics import accuracy_score, log_loss
from torchmetrics.functional.classification import multiclass_calibration_error

from w2s_utils import analysis, metrics
from w2s_utils.analysis import curves
from w2s_utils.engine.trajectories import LONG, Trajectory

N = 120


def _split(n: int = N, seed: int = 99) -> tuple[list[str], np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    truth = rng.uniform(0.05, 0.95, n)
    labels = (rng.uniform(size=n) < truth).astype(np.int64)
    return [f"id{i:04d}" for i in range(n)], labels, truth


def _two(p: np.ndarray) -> np.ndarray:
    return np.stack([1.0 - p, p], axis=1)


def fake_runs(
    seeds=(0, 1, 2),
    *,
    shuffle: bool = False,
    weak: str = "bow",
    dataset: str = "sarcasm",
    loss: str = "xent",
    skill: float = 1.0,
) -> list[SimpleNamespace]:
    """One cell's runs on one test split; ``shuffle``: every seed in its own order."""
    ids, labels, truth = _split()
    logit = np.log(truth) - np.log1p(-truth)
    runs = []
    for s in seeds:
        rng = np.random.default_rng(1000 + s + 7 * len(weak))
        pw = 1 / (1 + np.exp(-(0.6 * logit + rng.normal(0, 1.0, N))))
        psw = 1 / (1 + np.exp(-(skill * logit + rng.normal(0, 0.8, N))))
        pc = 1 / (1 + np.exp(-(1.3 * logit + rng.normal(0, 0.3, N))))
        order = np.random.default_rng(s).permutation(N) if shuffle else np.arange(N)
        runs.append(
            SimpleNamespace(
                config=SimpleNamespace(dataset=dataset, weak=weak, seed=s, loss=loss),
                ids=[ids[i] for i in order],
                labels=labels[order],
                weak=_two(pw)[order],
                student=_two(psw)[order],
                ceiling=_two(pc)[order],
            )
        )
    return runs


def fake_trajectories(seeds=(0, 1, 2), *, shuffle: bool = False, steps: int = 3) -> list:
    ids, labels, truth = _split(40)
    out = []
    for s in seeds:
        rng = np.random.default_rng(50 + s)
        order = np.random.default_rng(s).permutation(40) if shuffle else np.arange(40)
        students = np.stack(
            [
                _two(np.clip(truth + rng.normal(0, 0.3 / (t + 1), 40), 0.02, 0.98))
                for t in range(steps)
            ]
        )
        hist = pd.DataFrame(
            {"epoch": np.arange(1.0, steps + 1), "val_loss": rng.uniform(size=steps)}
        )
        cfg = SimpleNamespace(dataset="sarcasm", weak="bow", seed=s, remedy=LONG)
        weak = _two(np.clip(truth + rng.normal(0, 0.3, 40), 0.02, 0.98))
        ceiling = _two(np.clip(truth + rng.normal(0, 0.1, 40), 0.02, 0.98))
        out.append(
            Trajectory(
                cfg,
                hist,
                labels[order],
                [ids[i] for i in order],
                weak[order],
                ceiling[order],
                students[:, order].astype(np.float32),
            )  # fmt: skip
        )
    return out


def _by_seed(runs, fn) -> np.ndarray:
    """``fn(run)`` for every run, in seed order: the independent per-seed computation."""
    return np.array([fn(r) for r in sorted(runs, key=lambda r: r.config.seed)])


def _acc(p, y) -> float:
    return accuracy_score(y, np.asarray(p).argmax(1))


def _ece(p, y) -> float:
    return float(multiclass_calibration_error(torch.tensor(p), torch.tensor(y), 2, 15))


# ------------------------------------------------------------------ every pooling function refuses
POOLING = {
    "stack": lambda runs: analysis.stack(runs),
    "paired_table": lambda runs: analysis.paired_table(runs),
    "loss_comparison": lambda runs: analysis.loss_comparison(runs),
    "paired_differences": lambda runs: analysis.paired_differences(
        runs, fake_runs(), {"d": "correct_student"}
    ),
    "paired_differences (other side)": lambda runs: analysis.paired_differences(
        fake_runs(), runs, {"d": "correct_student"}
    ),
    "calibration_table": lambda runs: analysis.calibration_table(runs, n_resamples=5),
    "calibration_change": lambda runs: analysis.calibration_change(runs, n_resamples=5),
    "temperature_sweep": lambda runs: analysis.temperature_sweep({1.0: runs}, n_resamples=5),
    "paired_difference": lambda runs: analysis.paired_difference(
        runs, fake_runs(skill=0.5), "student", "ece", n_resamples=5
    ),
}


@pytest.mark.parametrize("name", list(POOLING))
def test_every_pooling_function_refuses_seeds_in_different_orders(name):
    with pytest.raises(ValueError, match="another order"):
        POOLING[name](fake_runs(shuffle=True))


@pytest.mark.parametrize("fn", [analysis.mean_curves, analysis.peak_table])
def test_trajectory_pooling_refuses_seeds_in_different_orders(fn):
    with pytest.raises(ValueError, match="another order"):
        fn(fake_trajectories(shuffle=True))


def test_stack_names_the_other_failures():
    runs = fake_runs()
    other = fake_runs(seeds=(1,))[0]
    other.ids = [f"x{i}" for i in range(N)]
    with pytest.raises(ValueError, match="different examples"):
        analysis.stack([runs[0], other])
    relabelled = fake_runs(seeds=(1,))[0]
    relabelled.labels = 1 - relabelled.labels
    with pytest.raises(ValueError, match="other labels"):
        analysis.stack([runs[0], relabelled])
    with pytest.raises(ValueError, match="seed"):
        analysis.stack(runs + fake_runs(seeds=(0,)))  # two runs of seed 0 in one cell
    with pytest.raises(ValueError, match="empty"):
        analysis.stack([])
    with pytest.raises(ValueError, match="config"):
        analysis.stack(runs, by=("no_such_field",))


@pytest.mark.slow
def test_order_free_summaries_agree_across_orders():
    """Per-run means and pooled reliability do not pool by position: any order gives the same."""
    a, b = fake_runs(), fake_runs(shuffle=True)
    pd.testing.assert_frame_equal(analysis.per_run_table(a), analysis.per_run_table(b))
    ra, rb = (analysis.pooled_reliability(r, "student") for r in (a, b))
    torch.testing.assert_close(ra.count, rb.count)
    torch.testing.assert_close(ra.accuracy, rb.accuracy)


# ------------------------------------------------------------------ one order: per-seed truths
def test_stack_holds_each_seed_in_seed_order():
    runs = fake_runs(seeds=(2, 0, 1))
    (cell,) = analysis.stack(runs).values()
    assert cell.seeds == (0, 1, 2) and cell.key == ("sarcasm", "bow") and cell.n_test == N
    for i, r in enumerate(sorted(runs, key=lambda r: r.config.seed)):
        np.testing.assert_array_equal(cell.probs["student"][i], r.student)
        hand = (r.student.argmax(1) == r.labels).astype(float) - (r.weak.argmax(1) == r.labels)
        np.testing.assert_array_equal(cell.values["acc_gain"][i], hand)
    sub = cell.select([2, 0])
    assert sub.seeds == (0, 2)
    np.testing.assert_array_equal(sub.values["gain"][1], cell.values["gain"][2])


def test_paired_table_equals_per_seed_means_and_the_two_part_interval():
    runs = fake_runs() + fake_runs(weak="minilm-l1")
    table = analysis.paired_table(runs).set_index("weak")
    assert list(table.index) == ["bow", "minilm-l1"] and (table.n_seeds == 3).all()
    for weak in ("bow", "minilm-l1"):
        cell_runs = [r for r in runs if r.config.weak == weak]
        row = table.loc[weak]
        acc_w = _by_seed(cell_runs, lambda r: _acc(r.weak, r.labels))
        acc_s = _by_seed(cell_runs, lambda r: _acc(r.student, r.labels))
        acc_c = _by_seed(cell_runs, lambda r: _acc(r.ceiling, r.labels))
        ce_w = _by_seed(cell_runs, lambda r: log_loss(r.labels, r.weak))
        ce_s = _by_seed(cell_runs, lambda r: log_loss(r.labels, r.student))
        eps = _by_seed(cell_runs, lambda r: rel_entr(r.weak, r.student).sum(1).mean())
        eps_rev = _by_seed(cell_runs, lambda r: rel_entr(r.student, r.weak).sum(1).mean())
        assert row.acc_weak == pytest.approx(acc_w.mean())
        assert row.acc_gain == pytest.approx((acc_s - acc_w).mean())
        assert row.acc_gap == pytest.approx((acc_c - acc_w).mean())
        assert row.gain == pytest.approx((ce_w - ce_s).mean())
        assert row.eps == pytest.approx(eps.mean()) and row.eps_rev == pytest.approx(eps_rev.mean())
        assert row.interaction == pytest.approx(row.gain + row.eps)
        assert row.pgr == pytest.approx((acc_s - acc_w).mean() / (acc_c - acc_w).mean())
        # the seed-only interval: Student-t over the per-seed accuracy gains
        lo, hi = stats.t.interval(
            0.95, 2, loc=(acc_s - acc_w).mean(), scale=stats.sem(acc_s - acc_w)
        )
        assert (row.acc_gain_seed_lo, row.acc_gain_seed_hi) == pytest.approx((lo, hi))
        # seeds x test: that half-width plus the normal one over the seed-averaged examples
        correct = np.stack(
            [
                (r.student.argmax(1) == r.labels) * 1.0 - (r.weak.argmax(1) == r.labels)
                for r in cell_runs
            ]
        )
        half = (hi - lo) / 2 + stats.norm.ppf(0.975) * stats.sem(correct.mean(0))
        assert (row.acc_gain_lo, row.acc_gain_hi) == pytest.approx(
            (row.acc_gain - half, row.acc_gain + half)
        )


def test_paired_table_with_one_seed_has_no_interval():
    one = analysis.paired_table(fake_runs(seeds=(0,)))
    assert np.isnan(one.acc_gain_lo.iloc[0]) and np.isnan(one.acc_gain_seed_lo.iloc[0])
    assert one.acc_gain.iloc[0] == pytest.approx(
        _acc(fake_runs(seeds=(0,))[0].student, _split()[1])
        - _acc(fake_runs(seeds=(0,))[0].weak, _split()[1])
    )


def test_loss_comparison_and_paired_differences_equal_per_seed_values():
    fwd, rev = fake_runs(), fake_runs(loss="reverse_kl", skill=0.5)
    lm = analysis.loss_comparison(fwd + rev).set_index("loss")
    for loss, runs in (("xent", fwd), ("reverse_kl", rev)):
        slack = _by_seed(
            runs,
            lambda r: log_loss(r.labels, r.weak) - log_loss(r.labels, r.student)
            - rel_entr(r.student, r.weak).sum(1).mean(),
        )  # fmt: skip
        assert lm.loc[loss, "slack"] == pytest.approx(slack.mean())
        assert lm.loc[loss, "slack_lo"] <= lm.loc[loss, "slack"] <= lm.loc[loss, "slack_hi"]
    # matched by seed: only the seeds both sides hold
    diff = analysis.paired_differences(rev, fwd[:2], {"d": "correct_student", "g": "gain"})
    d = _by_seed(rev[:2], lambda r: _acc(r.student, r.labels)) - _by_seed(
        fwd[:2], lambda r: _acc(r.student, r.labels)
    )
    assert diff.n_seeds.iloc[0] == 2 and diff.d.iloc[0] == pytest.approx(d.mean())
    with pytest.raises(ValueError, match="PER_EXAMPLE"):
        analysis.paired_differences(rev, fwd, {"d": "no_such_quantity"})


@pytest.mark.slow
def test_calibration_table_equals_per_seed_metrics():
    runs = fake_runs()
    table = analysis.calibration_table(runs, n_resamples=20)
    val = table.set_index(["role", "metric"])
    for role in ("weak", "student", "ceiling"):
        ece = _by_seed(runs, lambda r, role=role: _ece(getattr(r, role), r.labels))
        smce = _by_seed(
            runs,
            lambda r, role=role: metrics.smooth_ce(
                getattr(r, role)[:, 1], r.labels, method="highs"
            ),
        )
        acc = _by_seed(runs, lambda r, role=role: _acc(getattr(r, role), r.labels))
        ce = _by_seed(runs, lambda r, role=role: log_loss(r.labels, getattr(r, role)))
        assert val.loc[(role, "ece"), "value"] == pytest.approx(ece.mean(), abs=1e-6)
        assert val.loc[(role, "smooth_ce"), "value"] == pytest.approx(smce.mean(), abs=1e-8)
        assert val.loc[(role, "accuracy"), "value"] == pytest.approx(acc.mean())
        assert val.loc[(role, "ce"), "value"] == pytest.approx(ce.mean())
    assert (table.lo <= table.value).all() and (table.value <= table.hi).all()
    # the seed part of a statistic's interval is the Student-t half-width of the per-seed values
    (cell,) = analysis.stack(runs).values()
    iv = analysis.metric_interval(cell, "student", "ece", n_resamples=20)
    ece = _by_seed(runs, lambda r: _ece(r.student, r.labels))
    assert iv.half_seeds == pytest.approx(stats.t.ppf(0.975, 2) * stats.sem(ece), rel=1e-5)


@pytest.mark.slow
def test_calibration_changes_and_sweep_equal_per_seed_differences():
    runs = fake_runs()
    per_run, pairs = analysis.calibration_change(runs, n_resamples=20)
    smce = _by_seed(
        runs,
        lambda r: (
            metrics.smooth_ce(r.student[:, 1], r.labels, method="highs")
            - metrics.smooth_ce(r.weak[:, 1], r.labels, method="highs")
        ),
    )
    np.testing.assert_allclose(per_run.smce_change, smce, atol=1e-8)
    assert pairs.smce_change.iloc[0] == pytest.approx(smce.mean(), abs=1e-8)
    ece = _by_seed(runs, lambda r: _ece(r.student, r.labels) - _ece(r.weak, r.labels))
    assert pairs.ece_change.iloc[0] == pytest.approx(ece.mean(), abs=1e-6)
    sweep = analysis.temperature_sweep({1.0: runs, "fit": fake_runs(skill=0.5)}, n_resamples=20)
    sw = sweep.set_index(["temperature", "role", "metric"])
    assert sw.loc[("T = 1", "change", "smooth_ce"), "value"] == pytest.approx(smce.mean(), abs=1e-8)
    other = fake_runs(skill=0.5)
    acc = _by_seed(other, lambda r: _acc(r.student, r.labels) - _acc(r.weak, r.labels))
    assert sw.loc[("fitted T", "change", "accuracy"), "value"] == pytest.approx(acc.mean())
    d = analysis.paired_difference(other, runs, "student", "ece", n_resamples=20)
    want = _by_seed(other, lambda r: _ece(r.student, r.labels)) - _by_seed(
        runs, lambda r: _ece(r.student, r.labels)
    )
    assert d.point == pytest.approx(want.mean(), abs=1e-6) and d.lo <= d.point <= d.hi


def test_metric_interval_rejects_what_it_cannot_do():
    (cell,) = analysis.stack(fake_runs()).values()
    with pytest.raises(ValueError, match="metric"):
        analysis.metric_interval(cell, "student", "brier")
    with pytest.raises(ValueError, match="role"):
        analysis.metric_interval(cell, "teacher", "ece")
    (short,) = analysis.stack(fake_runs(seeds=(0, 1))).values()
    with pytest.raises(ValueError, match="seeds"):
        analysis.metric_interval(cell, "student", "ece", minus=(short, "student"))


@pytest.mark.filterwarnings("ignore:The y_prob values do not sum to one")  # float32 students
def test_curves_equal_per_seed_values():
    trajs = fake_trajectories()
    mean = analysis.mean_curves(trajs)
    assert len(mean) == 3 and (mean.n_seeds == 3).all() and (mean.n_test == 40).all()
    for i in range(3):
        acc = np.mean([_acc(t.students[i], t.labels) for t in trajs])
        gain = np.mean(
            [
                log_loss(t.labels, t.weak) - log_loss(t.labels, t.students[i].astype(float))
                for t in trajs
            ]
        )
        assert mean.test_acc.iloc[i] == pytest.approx(acc)
        assert mean.gain.iloc[i] == pytest.approx(gain, rel=1e-6)
        assert mean.val_loss.iloc[i] == pytest.approx(
            np.mean([t.history.val_loss[i] for t in trajs])
        )
    peaks = analysis.peak_table(trajs)
    gains = [
        np.mean([_acc(t.students[i], t.labels) - _acc(t.weak, t.labels) for t in trajs])
        for i in range(3)
    ]
    row = peaks.iloc[0]
    assert row.peak_epoch == 1.0 + int(np.argmax(gains))
    assert row.acc_gain_peak == pytest.approx(max(gains))
    assert row.acc_drop == pytest.approx(max(gains) - gains[-1])


@pytest.mark.slow
def test_analysis_loads_without_the_engine():
    """``check`` may use the analysis layer on saved predictions: importing it must not import
    the engine (models, data); the curves' default remedy is the engine's long run by value."""
    code = (
        "import sys\nimport w2s_utils.analysis\n"
        "print(any(m.startswith('w2s_utils.engine') for m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
    assert curves.LONG == LONG
