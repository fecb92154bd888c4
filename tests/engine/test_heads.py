"""Tests for w2s_utils.engine.heads: linear-head weak-to-strong runs on frozen features.

Oracles: gradients by torch autograd (independent of the solvers' hand-written ones), the theory
layer's forward-KL projection, temperature scaling by ``metrics.apply_temperature``, and exact
identities (moment matching of the forward-KL projection). Pipeline tests run on synthetic
datasets and features; one test runs the real path on 200 texts of sarcasm.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from w2s_utils import analysis, metrics, theory
from w2s_utils.engine import cache, data
from w2s_utils.engine import heads as H
from w2s_utils.engine.data import SplitSizes
from w2s_utils.engine.heads import pipeline
from w2s_utils.engine.planted import planted_texts

SIZES = SplitSizes(weak_train=300, w2s_train=300, val=120, test=240)
WEAK, STRONG = "minilm-l1", "minilm-l6"


def synthetic(n: int = 1200, d: int = 12, k: int = 2, seed: int = 0):
    """A dataset of unique texts whose labels follow a noisy linear rule of 'strong' features;
    'weak' features see a noisy view of part of them."""
    rng = np.random.default_rng(seed)
    xs = rng.normal(size=(n, d))
    w = rng.normal(size=(d, k)) * 1.5
    labels = (xs @ w + rng.gumbel(size=(n, k))).argmax(1)
    xw = xs[:, : d // 2] @ rng.normal(size=(d // 2, 6)) + 0.8 * rng.normal(size=(n, 6))
    texts = tuple(f"synthetic text {i} of {seed}" for i in range(n))
    ds = data.TextDataset(
        name="synthetic",
        texts=texts,
        labels=labels,
        ids=tuple(data.text_id(t) for t in texts),
        n_classes=k,
    )
    return ds, {WEAK: xw, STRONG: xs}


@pytest.fixture(scope="module")
def binary():
    return synthetic()


def cfg(**kw) -> H.HeadsConfig:
    return H.HeadsConfig("sarcasm", kw.pop("sizes", SIZES), **kw)


# ----------------------------------------------------------------------------- solvers
def _torch_objective(head: H.LinearHead, x: np.ndarray, target: np.ndarray, kind: str):
    """The head's objective at its parameters as an autograd graph (an independent oracle)."""
    z = torch.from_numpy(head.design(x))
    theta = torch.tensor(head.theta, requires_grad=True)
    logits = torch.cat([z @ theta, torch.zeros(z.shape[0], 1, dtype=z.dtype)], dim=1)
    logq = torch.log_softmax(logits, dim=1)
    if kind == "forward":
        value = -(torch.from_numpy(target) * logq).sum(1).mean()
    else:
        value = (logq.exp() * (logq - torch.from_numpy(target))).sum(1).mean()
    value = value + 0.5 * head.l2 * (theta[:-1] ** 2).sum()
    (grad,) = torch.autograd.grad(value, theta)
    return float(value.detach()), grad.numpy()


@pytest.mark.parametrize("k", [2, 3])
def test_forward_head_is_the_exact_optimum(k: int) -> None:
    rng = np.random.default_rng(k)
    x = rng.normal(size=(400, 7)) * rng.uniform(0.1, 5, size=7) + rng.normal(size=7)
    targets = rng.dirichlet(np.ones(k), size=400)
    head = H.fit_forward_head(x, targets, l2=1e-3)
    value, grad = _torch_objective(head, x, targets, "forward")
    assert head.converged and np.abs(grad).max() < 1e-9
    np.testing.assert_allclose(grad, H.head_gradient(head, x, targets), atol=1e-12)
    # without L2 it is the forward-KL projection onto logit-linear heads (theory layer)
    free = H.fit_forward_head(x, targets, l2=0.0)
    proj = theory.forward_kl_projection_linear(np.c_[x, np.ones(len(x))], targets)
    assert proj.converged
    np.testing.assert_allclose(free.predict_proba(x), proj.student.numpy(), atol=1e-8)


def test_forward_head_drops_constant_features_and_fits_hard_labels() -> None:
    rng = np.random.default_rng(1)
    x = rng.normal(size=(300, 5))
    x[:, 2] = 0.0  # a dead dimension
    x[:, 4] = 1e-12 * rng.normal(size=300)  # float16 subnormal noise
    y = (x[:, 0] + 0.5 * rng.normal(size=300) > 0).astype(int)
    head = H.fit_forward_head(x, y, n_classes=2, l2=1e-2)
    assert head.keep.tolist() == [True, True, False, True, False] and head.converged
    _, grad = _torch_objective(head, x, np.eye(2)[y], "forward")
    assert np.abs(grad).max() < 1e-9


@pytest.mark.slow
@pytest.mark.parametrize("k", [2, 3])
def test_reverse_head_is_stationary_and_beats_its_forward_start(k: int) -> None:
    rng = np.random.default_rng(10 + k)
    x = rng.normal(size=(500, 6))
    # a teacher outside the class: logits nonlinear in the features
    logits = np.tanh(x[:, :k] * 2) * 3 + 0.5 * rng.normal(size=(500, k))
    logp = torch.log_softmax(torch.from_numpy(logits), 1).numpy()
    start = H.fit_forward_head(x, np.exp(logp), l2=1e-3)
    head = H.fit_reverse_head(x, logp, l2=1e-3, start=start)
    value, grad = _torch_objective(head, x, logp, "reverse")
    at_start, _ = _torch_objective(start, x, logp, "reverse")
    assert head.converged and np.abs(grad).max() < 1e-8
    assert value == pytest.approx(head.objective, abs=1e-12)
    assert value < at_start - 1e-6  # reverse KL strictly lower than the forward student's
    # a local minimum: random small moves do not lower the objective
    for _ in range(20):
        step = 1e-3 * rng.normal(size=head.theta.shape)
        moved = dataclasses.replace(head, theta=head.theta + step)
        assert _torch_objective(moved, x, logp, "reverse")[0] >= value - 1e-12


def test_reverse_head_recovers_a_teacher_in_the_class() -> None:
    rng = np.random.default_rng(3)
    x = rng.normal(size=(400, 4))
    logits = np.c_[x @ rng.normal(size=(4, 2)), np.zeros(400)]
    logp = torch.log_softmax(torch.from_numpy(logits), 1).numpy()
    far = H.fit_forward_head(x, np.full((400, 3), 1 / 3), l2=0.0)  # the uniform head
    head = H.fit_reverse_head(x, logp, l2=0.0, start=far)
    assert head.converged
    np.testing.assert_allclose(head.log_proba(x), logp, atol=1e-7)


def test_solver_inputs_are_validated() -> None:
    x = np.random.default_rng(0).normal(size=(20, 3))
    with pytest.raises(ValueError, match="n_classes"):
        H.fit_forward_head(x, np.zeros(20, dtype=int))
    with pytest.raises(ValueError, match="rows"):
        H.fit_forward_head(x, np.full((19, 2), 0.5))
    with pytest.raises(ValueError, match="normalised"):
        H.fit_reverse_head(x, np.zeros((20, 2)))
    with pytest.raises(ValueError, match="inf"):
        H.fit_reverse_head(x, np.c_[np.zeros(20), np.full(20, -np.inf)])
    with pytest.raises(ValueError, match="other features"):
        start = H.fit_forward_head(x + 1.0, np.full((20, 2), 0.5))
        H.fit_reverse_head(x, np.log(np.full((20, 2), 0.5)), start=start)


# ----------------------------------------------------------------------------- configs
def test_config_validation_says_what_to_pass() -> None:
    with pytest.raises(ValueError, match="soft labels"):
        H.check_heads_config(cfg(loss="reverse", label_type="hard"))
    with pytest.raises(ValueError, match="planted"):
        H.check_heads_config(cfg(teacher_targets="soft"))
    with pytest.raises(ValueError, match="teacher_n"):
        H.check_heads_config(cfg(teacher_n=SIZES.weak_train + 1))
    with pytest.raises(ValueError, match="frozen pretrained"):
        H.check_heads_config(cfg(strong="bow"))
    with pytest.raises(ValueError, match="label_noise"):
        H.check_heads_config(cfg(label_noise=1.5))
    with pytest.raises(ValueError, match="not a field"):
        H.heads_grid(cfg(), 2, temperature=(1.0,))
    grid = H.heads_grid(cfg(), 3, label_noise=(0.0, 0.2), loss=H.LOSSES)
    assert len(grid) == 12 and [c.seed for c in grid[:3]] == [0, 1, 2]
    assert grid[-1].label_noise == 0.2 and grid[-1].loss == "reverse"


def test_keys_differ_with_every_knob_and_hold_for_equal_configs() -> None:
    base = cfg()
    ref = cache.config_hash(H.heads_key(base))
    assert cache.config_hash(H.heads_key(cfg())) == ref
    changes = {
        "seed": 1, "pool": 500, "weak": "bow", "strong": "minilm-l3", "truth": "planted",
        "planted_temperature": 2.0, "planted_l2": 0.1, "teacher_n": 100, "label_noise": 0.1,
        "teacher_temperature": "fit", "teacher_l2": 0.5, "loss": "reverse",
        "label_type": "hard", "student_l2": 1e-3, "ceiling_l2": 0.5,
        "sizes": SplitSizes(200, 300, 120, 240),
    }  # fmt: skip
    assert set(changes) | {"dataset", "teacher_targets", "target_noise"} == {
        f.name for f in dataclasses.fields(H.HeadsConfig)
    }
    seen = {ref}
    for name, value in changes.items():
        h = cache.config_hash(H.heads_key(dataclasses.replace(base, **{name: value})))
        assert h not in seen, name
        seen.add(h)
    soft = dataclasses.replace(base, truth="planted", teacher_targets="soft")
    noisy = dataclasses.replace(soft, target_noise=0.5)
    assert len({cache.config_hash(H.heads_key(c)) for c in (soft, noisy)} | seen) == len(seen) + 2


# ----------------------------------------------------------------------------- pipeline
def test_seeds_share_one_test_order_and_pool_with_the_analysis_layer(binary) -> None:
    ds, feats = binary
    runs = H.heads_from_features([cfg(seed=s) for s in range(4)], ds, feats)
    ids = runs[0].ids
    assert ids == sorted(ids) and all(r.ids == ids for r in runs)
    assert all(np.array_equal(r.labels, runs[0].labels) for r in runs)
    assert len({tuple(r.train_labels[:20]) for r in runs}) > 1  # the training splits differ
    (cell,) = analysis.stack(runs, ("dataset", "loss")).values()
    gain = cell.values["gain"]
    assert gain.shape == (4, SIZES.test)
    interval = metrics.seeds_and_test_interval(gain)
    per_run = [r.summary["gain"] for r in runs]
    assert interval.point == pytest.approx(np.mean(per_run), abs=1e-12)
    assert interval.lo < interval.point < interval.hi and np.isfinite(interval.hi)
    for r in runs:  # every head reached its optimum
        assert r.diagnostics["student_converged"] == 1.0 and r.diagnostics["teacher_converged"]


@pytest.mark.slow
def test_label_noise_makes_the_teacher_worse(binary) -> None:
    ds, feats = binary
    noises = (0.0, 0.15, 0.3)
    configs = H.heads_grid(cfg(teacher_n=150), 6, label_noise=noises)
    runs = H.heads_from_features(configs, ds, feats)
    ce = {}
    for nz in noises:
        sel = [r for r in runs if r.config.label_noise == nz]
        assert all(r.diagnostics["label_flips"] == round(nz * 150) for r in sel)
        ce[nz] = np.mean([r.summary["loss_weak"] for r in sel])
    assert ce[0.0] < ce[0.15] < ce[0.3]


def test_temperature_changes_calibration_not_accuracy(binary) -> None:
    ds, feats = binary
    temps = (0.5, 1.0, 2.0, "fit")
    runs = {t: r for t, r in zip(temps, H.heads_from_features(
        [cfg(teacher_temperature=t) for t in temps], ds, feats), strict=True)}  # fmt: skip
    base = runs[1.0]
    for t in (0.5, 2.0):
        r = runs[t]
        np.testing.assert_array_equal(r.weak.argmax(1), base.weak.argmax(1))
        np.testing.assert_array_equal(r.ceiling, base.ceiling)  # one ceiling for all
        want = metrics.apply_temperature(torch.from_numpy(base.weak), t).numpy()
        np.testing.assert_allclose(r.weak, want, atol=1e-12)
        assert r.summary["acc_weak"] == base.summary["acc_weak"]
        assert r.summary["ece_weak"] != pytest.approx(base.summary["ece_weak"], abs=1e-4)
    # "fit": the tempered teacher's val log-loss is the smallest of all temperatures
    fitted = runs["fit"]
    val_loss = {
        t: metrics.log_loss(torch.from_numpy(r.weak_labels_val), torch.from_numpy(r.val_labels))
        for t, r in runs.items()
    }
    assert all(val_loss["fit"] <= v + 1e-12 for v in val_loss.values())
    assert fitted.diagnostics["teacher_temperature"] != 1.0


def test_a_run_without_val_examples(binary) -> None:
    ds, feats = binary
    (r,) = H.heads_from_features(cfg(sizes=SplitSizes(300, 300, 0, 240)), ds, feats)
    assert r.weak_labels_val.shape == r.student_probs_val.shape == (0, 2)
    with pytest.raises(ValueError, match="val"):
        H.check_heads_config(cfg(sizes=SplitSizes(300, 300, 0, 240), teacher_temperature="fit"))


def test_students_and_bow_teacher_in_three_classes() -> None:
    ds, feats = synthetic(n=1500, k=3, seed=2)
    sizes = SplitSizes(300, 300, 150, 300)
    configs = [
        cfg(sizes=sizes, loss="forward"),
        cfg(sizes=sizes, loss="forward", label_type="hard"),
        cfg(sizes=sizes, loss="reverse"),
        cfg(sizes=sizes, weak="bow", loss="reverse"),
    ]
    fwd, hard, rev, bow = H.heads_from_features(configs, ds, feats)
    assert fwd.weak.shape == (300, 3) and np.allclose(fwd.weak.sum(1), 1)
    assert rev.diagnostics["student_objective"] < rev.diagnostics["reverse_kl_at_start"]
    assert rev.diagnostics["student_grad_max"] < 1e-8
    np.testing.assert_array_equal(fwd.weak, rev.weak)  # one teacher
    assert not np.allclose(fwd.student, hard.student)
    # the forward student's own objective is the misfit on its training inputs
    eps_train = metrics.kl(torch.from_numpy(fwd.weak_labels_train),
                           torch.from_numpy(fwd.student_probs_train)).mean()  # fmt: skip
    l2_part = fwd.diagnostics["student_objective"] - float(eps_train)
    assert 0 <= l2_part < 1e-2
    # text features carry no signal here (the texts are numbered): the bag of words is poor
    assert bow.summary["acc_weak"] < fwd.summary["acc_weak"]


def test_planted_truth_forward_identity_and_regression_reading() -> None:
    ds, feats = synthetic(n=1200, seed=5)
    base = cfg(truth="planted", teacher_targets="soft", target_noise=1.0, student_l2=0.0)
    fwd, rev = H.heads_from_features(
        [base, dataclasses.replace(base, loss="reverse", student_l2=1e-4)], ds, feats
    )
    np.testing.assert_array_equal(fwd.labels, rev.labels)
    # exact errors: Err = E KL(F* || F) on the test inputs
    err = metrics.kl(torch.from_numpy(fwd.f_star), torch.from_numpy(fwd.weak)).mean()
    assert fwd.summary["err_weak"] == pytest.approx(float(err), abs=1e-12)
    # moment matching on the student's own inputs: KL(F_w||F*) = KL(F_sw||F*) + KL(F_w||F_sw)
    train = H.gain_and_disagreement(fwd, "train")
    assert abs(train["forward_identity_gap"].mean()) < 1e-8
    test = H.gain_and_disagreement(rev, "test")
    np.testing.assert_allclose(test["disagreement"], test["eps_rev"])
    np.testing.assert_allclose(test["gain"], test["loss_weak"] - test["loss_student"])
    assert abs(test["gain"].mean() - (rev.summary["err_weak"] - rev.summary["err_student"])) < 1e-12
    gold = H.gain_and_disagreement(H.heads_from_features(cfg(), ds, feats)[0])
    assert "forward_identity_gap" not in gold and np.isfinite(gold["gain"]).all()


def _fake_features(feats_by_text):
    def fake(model, texts, n_classes=2):
        return np.stack([feats_by_text[model][t] for t in texts])

    return fake


def test_run_heads_caches_identical_arrays(binary, monkeypatch, sandbox) -> None:
    ds, feats = binary
    monkeypatch.setattr(data, "load_texts", lambda name, **kw: ds)
    by_text = {m: dict(zip(ds.texts, x, strict=True)) for m, x in feats.items()}
    monkeypatch.setattr(pipeline, "pooled_features", _fake_features(by_text))
    configs = [cfg(seed=0), cfg(seed=0, loss="reverse"), cfg(seed=1, label_noise=0.1)]
    first = H.run_heads(configs)
    second = H.run_heads(configs)
    assert not any(r.cached for r in first) and all(r.cached for r in second)
    assert len(list((sandbox / "heads").glob("*.npz"))) == 3
    pure = H.heads_from_features(configs, ds, feats)
    for a, b, c in zip(first, second, pure, strict=True):
        for f in dataclasses.fields(H.HeadsResult):
            if f.name in ("cached", "seconds", "diagnostics"):
                continue
            va, vb, vc = getattr(a, f.name), getattr(b, f.name), getattr(c, f.name)
            if isinstance(va, np.ndarray):
                assert np.array_equal(va, vb) and np.array_equal(va, vc), f.name
            else:
                assert va == vb == vc, f.name
        assert a.diagnostics == b.diagnostics
    assert H.results_table(second)["cached"].all()


@pytest.mark.slow
def test_real_features_tiny(monkeypatch, tmp_path) -> None:
    """The real path: sarcasm's 200 texts of smallest id and their MiniLM features, read from the
    engine's feature store (the planted tasks' tests compute the same ones); results in a fresh
    cache."""
    root = tmp_path / "cache"
    root.mkdir()
    for shared in ("data", "features"):  # the dataset and the per-text features, not results
        (root / shared).symlink_to(cache.cache_dir(shared), target_is_directory=True)
    monkeypatch.setenv("W2S_CACHE_DIR", str(root))
    sizes = SplitSizes(40, 40, 20, 40)
    pool = H.pool_dataset(data.load_texts("sarcasm", log=None), 200)
    assert list(pool.texts) == planted_texts("sarcasm", 200)[0]
    configs = [H.HeadsConfig("sarcasm", sizes, seed=s, pool=200, loss=loss)
               for s in (0, 1) for loss in H.LOSSES]  # fmt: skip
    runs = H.run_heads(configs)
    assert runs[0].ids == runs[3].ids and runs[0].weak.shape == (40, 2)
    assert all(r.diagnostics["student_grad_max"] < 1e-8 for r in runs)
    again = H.run_heads(configs)
    assert all(r.cached for r in again)
    assert np.array_equal(again[1].student, runs[1].student)
    assert len(list((root / "heads").glob("*.npz"))) == 4
