"""Tests for engine.experiment: validation, caching (hit, corruption, SIGKILL), CLI, summary.

The pipeline runs on the hidden ``test`` preset (tiny sizes, MiniLM-L2 with one trainable layer)
over a small synthetic dataset patched in for ``sarcasm``, inside a private cache folder.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from w2s_utils.engine import cache, data
from w2s_utils.engine.data import SplitSizes
from w2s_utils.engine.experiment import make_config, run_experiment, run_grid, summarize

_POS = ["great", "lovely", "superb", "fine", "brilliant", "warm", "funny", "smart"]
_NEG = ["awful", "boring", "dull", "poor", "terrible", "cold", "weak", "silly"]
_NOUNS = ["film", "plot", "cast", "script", "score", "ending", "story", "pace"]


def synthetic_dataset(n: int = 400, seed: int = 0) -> data.TextDataset:
    """Short sentences whose label is the sentiment of the adjective (10% label noise)."""
    rng = np.random.default_rng(seed)
    texts, labels = [], []
    for i in range(n):
        y = i % 2
        adj = rng.choice(_POS if y else _NEG)
        noun = rng.choice(_NOUNS)
        texts.append(f"the {noun} was {adj} number {i}")
        labels.append(y if rng.random() > 0.1 else 1 - y)
    ids = tuple(data.text_id(t) for t in texts)
    return data.TextDataset(name="sarcasm", texts=tuple(texts), labels=np.array(labels), ids=ids)


PATCH = textwrap.dedent(
    """
    import numpy as np
    from w2s_utils.engine import data
    _POS = {pos!r}; _NEG = {neg!r}; _NOUNS = {nouns!r}
    def _ds(name, **kw):
        rng = np.random.default_rng(0)
        texts, labels = [], []
        for i in range(400):
            y = i % 2
            adj = rng.choice(_POS if y else _NEG)
            noun = rng.choice(_NOUNS)
            texts.append(f"the {{noun}} was {{adj}} number {{i}}")
            labels.append(y if rng.random() > 0.1 else 1 - y)
        ids = tuple(data.text_id(t) for t in texts)
        return data.TextDataset(name="sarcasm", texts=tuple(texts), labels=np.array(labels),
                                ids=ids)
    data.load_texts = _ds
    """
).format(pos=_POS, neg=_NEG, nouns=_NOUNS)


@pytest.fixture
def isolated(monkeypatch, tmp_path):
    """Private cache folder, CPU (exact reruns), a synthetic dataset in place of ``load_texts``."""
    monkeypatch.setenv("W2S_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("W2S_DEVICE", "cpu")
    ds = synthetic_dataset()
    monkeypatch.setattr(data, "load_texts", lambda name, **kw: ds)
    from w2s_utils.engine.features import TextFeatureStore

    TextFeatureStore.clear_memory()
    return tmp_path / "cache"


def _no_work(monkeypatch):
    def boom(*a, **k):
        raise AssertionError("work started before validation")

    monkeypatch.setattr(data, "load_texts", boom)


@pytest.mark.parametrize(
    "kwargs,match",
    [
        ({"dataset": "imdb-nope"}, "dataset"),
        ({"weak": "gpt-9"}, "model"),
        ({"preset": "huge"}, "preset"),
        ({"loss": "hinge"}, "loss"),
        ({"label_type": "fuzzy"}, "label_type"),
    ],
)
def test_unknown_names_fail_before_work(monkeypatch, kwargs, match):
    _no_work(monkeypatch)
    args = {"dataset": "sarcasm", "weak": "bow", "preset": "test", **kwargs}
    with pytest.raises(ValueError, match=match) as err:
        run_grid(
            args.pop("dataset"),
            args.pop("weak"),
            seeds=1,
            preset=args.pop("preset"),
            progress=False,
            **args,
        )
    if match == "dataset":
        assert "rotten_tomatoes" in str(err.value)
    if match == "loss":
        assert "reverse_kl" in str(err.value)


def test_invalid_sizes_fail_before_work(monkeypatch):
    _no_work(monkeypatch)
    with pytest.raises(ValueError, match="sizes.val"):
        make_config("sarcasm", "bow", preset="test", sizes=SplitSizes(40, 60, -2, 40))
    with pytest.raises(ValueError, match="override"):
        make_config("sarcasm", "bow", preset="test", epochs=3)


def test_split_larger_than_data_is_a_clear_error(isolated):
    cfg = make_config("sarcasm", "bow", preset="test", sizes=SplitSizes(400, 400, 20, 40))
    with pytest.raises(ValueError, match="weak_train|enough|larger|only"):
        run_experiment(cfg)


def test_pipeline_cache_hit_and_corruption(isolated, capsys):
    cfg = make_config("sarcasm", "bow", preset="test")
    first = run_experiment(cfg)
    assert not first.cached
    assert first.student.shape == (40, 2) and first.weak.shape == (40, 2)
    assert set(first.metrics.index) == {"weak", "student", "ceiling"}
    assert {"accuracy", "ce", "ece", "smooth_ce", "kl_weak_student", "pgr"} <= set(
        first.metrics.columns
    )
    assert first.metrics.loc["weak", "kl_weak_student"] == 0
    assert first.summary["eps"] >= 0 and len(first.history) >= 1
    hit = run_experiment(cfg)
    assert hit.cached
    for name in ("weak", "student", "ceiling", "labels"):
        np.testing.assert_array_equal(getattr(hit, name), getattr(first, name))
    assert hit.ids == first.ids
    # corrupt the stored result: reported, recomputed, identical (deterministic on CPU)
    (result_file,) = list((isolated / "results").glob("*.npz"))
    raw = bytearray(result_file.read_bytes())
    raw[len(raw) // 2 : len(raw) // 2 + 64] = b"\x00" * 64
    result_file.write_bytes(bytes(raw))
    again = run_experiment(cfg)
    assert not again.cached
    assert "recomputing" in capsys.readouterr().err  # notices go to stderr, never stdout
    np.testing.assert_array_equal(again.student, first.student)
    cache.load_arrays(result_file)  # the rewritten entry verifies


def test_same_config_twice_is_deterministic(isolated):
    cfg = make_config("sarcasm", "tiny-transformer", preset="test")
    a = run_experiment(cfg, use_cache=False)
    b = run_experiment(cfg, use_cache=False)
    np.testing.assert_array_equal(a.student, b.student)
    np.testing.assert_array_equal(a.weak, b.weak)
    np.testing.assert_array_equal(a.ceiling, b.ceiling)


def test_shared_ceiling_across_weak_models(isolated):
    results = run_grid(
        "sarcasm", ["bow", "tiny-transformer"], seeds=[0], preset="test", progress=False
    )
    assert len(list((isolated / "ceiling_preds").glob("*.npz"))) == 1
    assert len(list((isolated / "weak_preds").glob("*.npz"))) == 2
    np.testing.assert_array_equal(results[0].ceiling, results[1].ceiling)
    table = summarize(results)
    assert len(table) == 2
    assert {"weak_acc", "student_acc_lo", "ceiling_acc_hi", "pgr", "eps", "n_seeds"} <= set(
        table.columns
    )


def test_cli_run_table_and_json(isolated, capsys):
    from w2s_utils.cli import main

    assert (
        main(["run", "--dataset", "sarcasm", "--weak", "bow", "--preset", "test", "--seeds", "1"])
        == 0
    )
    out = capsys.readouterr().out
    assert "student_acc=" in out and "bow" in out
    assert (
        main(
            [
                "run",
                "--dataset",
                "sarcasm",
                "--weak",
                "bow",
                "--preset",
                "test",
                "--seeds",
                "1",
                "--json",
            ]
        )
        == 0
    )
    payload = json.loads(capsys.readouterr().out)
    assert payload["runs"][0]["cached"] is True
    assert payload["summary"][0]["weak"] == "bow"
    assert main(["run", "--dataset", "nope", "--weak", "bow", "--preset", "test"]) == 2


def test_cli_help_lists_registries(capsys):
    from w2s_utils.cli import main
    from w2s_utils.engine.losses import LOSS_NAMES
    from w2s_utils.engine.models import MODEL_NAMES
    from w2s_utils.engine.presets import PRESET_NAMES

    with pytest.raises(SystemExit):
        main(["run", "--help"])
    out = capsys.readouterr().out
    for name in (*data.DATASET_NAMES, *MODEL_NAMES, *PRESET_NAMES, *LOSS_NAMES):
        assert name in out


@pytest.mark.slow
def test_sigkill_mid_run_leaves_no_half_written_entry(tmp_path):
    cache_root = tmp_path / "cache"
    script = tmp_path / "run.py"
    script.write_text(
        PATCH
        + textwrap.dedent(
            """
            from w2s_utils.engine.experiment import make_config, run_experiment
            slow = {"epochs": 15, "eval_every": 10000}
            cfg = make_config("sarcasm", "bow", preset="test",
                              strong_settings=slow, student_settings=slow)
            run_experiment(cfg)
            """
        )
    )
    env = {**os.environ, "W2S_CACHE_DIR": str(cache_root)}
    proc = subprocess.Popen([sys.executable, str(script)], env=env)
    try:
        deadline = time.time() + 120
        while time.time() < deadline and not list((cache_root / "weak_preds").glob("*.npz")):
            if proc.poll() is not None:
                break
            time.sleep(0.2)
        assert proc.poll() is None, "the run ended before it could be killed"
        time.sleep(1.0)  # now inside the ceiling's training
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert not list((cache_root / "results").glob("*.npz"))
    done = subprocess.run([sys.executable, str(script)], env=env, timeout=600)
    assert done.returncode == 0
    entries = [p for p in cache_root.rglob("*.npz")]
    assert len(list((cache_root / "results").glob("*.npz"))) == 1
    for path in entries:
        cache.load_arrays(path)  # every entry verifies: nothing half-written
    leftovers = [p for p in cache_root.rglob("*") if ".tmp-" in p.name]
    assert not leftovers, leftovers


def _as_path(p) -> Path:  # pragma: no cover - helper kept for readability
    return Path(p)


@pytest.mark.cuda
def test_pipeline_on_cuda(isolated, cuda_device, monkeypatch):
    """The whole pipeline (tiny-transformer weak, MiniLM strong) runs on the GPU, bf16 included."""
    monkeypatch.setenv("W2S_DEVICE", str(cuda_device))
    cfg = make_config("sarcasm", "tiny-transformer", preset="test")
    res = run_experiment(cfg, use_cache=False)
    for name in ("weak", "student", "ceiling"):
        p = getattr(res, name)
        assert p.shape == (40, 2) and np.isfinite(p).all()
        np.testing.assert_allclose(p.sum(1), 1, atol=1e-6)
    assert set(res.metrics.index) == {"weak", "student", "ceiling"}
    assert np.isfinite(res.metrics["accuracy"]).all() and res.summary["eps"] >= 0


def test_cache_keys_record_the_device(monkeypatch):
    from w2s_utils.engine import experiment

    monkeypatch.setenv("W2S_DEVICE", "cpu")
    assert experiment._engine_key() == {"engine": experiment.ENGINE_VERSION, "device": "cpu"}
    monkeypatch.setattr(experiment, "default_device", lambda: torch.device("cuda"))
    assert experiment._engine_key() == {"engine": experiment.ENGINE_VERSION, "device": "cuda"}
