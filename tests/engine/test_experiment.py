"""Tests for engine.experiment: validation, caching (hit, corruption, SIGKILL), CLI, summary, a
user's own preset, K classes end to end and the predictions ``check`` reads.

The pipeline runs on the hidden ``test`` preset (tiny sizes, MiniLM-L2 with one trainable layer)
over a small synthetic dataset patched in for ``sarcasm``, inside a private cache folder.
"""

from __future__ import annotations

import csv
import dataclasses
import json
import math
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

from tests._synthetic import NEG, NOUNS, POS, synthetic_dataset
from w2s_utils import metrics
from w2s_utils.engine import cache, data
from w2s_utils.engine import experiment as ex
from w2s_utils.engine.data import SplitSizes
from w2s_utils.engine.experiment import make_config, run_experiment, run_grid, summarize

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
).format(pos=POS, neg=NEG, nouns=NOUNS)


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


def test_split_larger_than_data_is_a_clear_error(text_sandbox):
    cfg = make_config("sarcasm", "bow", preset="test", sizes=SplitSizes(400, 400, 20, 40))
    with pytest.raises(ValueError, match="weak_train|enough|larger|only"):
        run_experiment(cfg)


@pytest.mark.slow
def test_pipeline_cache_hit_and_corruption(text_sandbox, capsys):
    cfg = make_config("sarcasm", "bow", preset="test")
    first = run_experiment(cfg)
    assert not first.cached
    assert first.student.shape == (40, 2) and first.weak.shape == (40, 2)
    assert first.label_names == ("0", "1")  # the synthetic dataset names no classes
    assert set(first.metrics.index) == {"weak", "student", "ceiling"}
    assert {"acc", "loss", "ece", "smooth_ce"} <= set(first.metrics.columns)
    # the summary against independent computations (float64 numpy)
    y, s, w = first.labels, first.student, first.weak
    assert first.summary["acc_student"] == pytest.approx((s.argmax(1) == y).mean())
    ce = {m: -np.log(np.maximum(getattr(first, m)[np.arange(len(y)), y], 1e-12)).mean()
          for m in ("weak", "student")}  # fmt: skip
    assert first.summary["gain"] == pytest.approx(ce["weak"] - ce["student"], rel=1e-9)
    kl = (w * (np.log(w) - np.log(np.maximum(s, 1e-12)))).sum(1).mean()
    assert first.summary["eps"] == pytest.approx(kl, rel=1e-6, abs=1e-12)
    assert first.metrics.loc["ceiling", "acc"] == first.summary["acc_ceiling"]
    assert len(first.history) >= 1
    hit = run_experiment(cfg)
    assert hit.cached
    for name in ("weak", "student", "ceiling", "labels"):
        np.testing.assert_array_equal(getattr(hit, name), getattr(first, name))
    assert hit.ids == first.ids
    # corrupt the stored result: reported, recomputed, identical (deterministic on CPU)
    (result_file,) = list((text_sandbox / "results").glob("*.npz"))
    raw = bytearray(result_file.read_bytes())
    raw[len(raw) // 2 : len(raw) // 2 + 64] = b"\x00" * 64
    result_file.write_bytes(bytes(raw))
    again = run_experiment(cfg)
    assert not again.cached
    assert "recomputing" in capsys.readouterr().err  # notices go to stderr, never stdout
    np.testing.assert_array_equal(again.student, first.student)
    cache.load_arrays(result_file)  # the rewritten entry verifies


@pytest.mark.slow
def test_same_config_twice_is_deterministic(text_sandbox):
    cfg = make_config("sarcasm", "tiny-transformer", preset="test")
    a = run_experiment(cfg, use_cache=False)
    b = run_experiment(cfg, use_cache=False)
    np.testing.assert_array_equal(a.student, b.student)
    np.testing.assert_array_equal(a.weak, b.weak)
    np.testing.assert_array_equal(a.ceiling, b.ceiling)


@pytest.mark.slow
def test_shared_ceiling_across_weak_models(text_sandbox):
    results = run_grid(
        "sarcasm", ["bow", "tiny-transformer"], seeds=[0], preset="test", progress=False
    )
    assert len(list((text_sandbox / "ceiling_preds").glob("*.npz"))) == 1
    assert len(list((text_sandbox / "weak_preds").glob("*.npz"))) == 2
    np.testing.assert_array_equal(results[0].ceiling, results[1].ceiling)
    table = summarize(results)
    assert len(table) == 2
    assert {"acc_weak", "acc_student_lo", "acc_ceiling_hi", "pgr", "gain", "eps", "n_seeds"} <= set(
        table.columns
    )


@pytest.mark.slow
def test_cli_run_table_and_json(text_sandbox, capsys):
    from w2s_utils.cli import main

    assert (
        main(["run", "--dataset", "sarcasm", "--weak", "bow", "--preset", "test", "--seeds", "1"])
        == 0
    )
    out = capsys.readouterr().out
    assert "acc_student=" in out and "bow" in out
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
def test_pipeline_on_cuda(text_sandbox, cuda_device, monkeypatch):
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
    from w2s_utils.engine.experiment import keys

    monkeypatch.setenv("W2S_DEVICE", "cpu")
    assert keys.engine_key() == {"engine": keys.ENGINE_VERSION, "device": "cpu"}
    monkeypatch.setattr(keys, "default_device", lambda: torch.device("cuda"))
    assert keys.engine_key() == {"engine": keys.ENGINE_VERSION, "device": "cuda"}


# ------------------------------------------------- a preset as a value, K classes, the run CLI


@pytest.mark.slow
def test_own_preset_runs_with_its_settings(text_sandbox):
    """A user's own preset object (a new name, other sizes and seeds) runs with its settings."""
    from w2s_utils.engine.presets import get_preset

    mine = dataclasses.replace(
        get_preset("test"), name="mine", sizes=SplitSizes(60, 80, 20, 60), seeds=(3,)
    )
    (res,) = run_grid("sarcasm", "bow", preset=mine, progress=False)
    assert res.config.preset == "mine" and res.config.sizes == mine.sizes and res.config.seed == 3
    assert res.student.shape == (60, 2) and len(res.weak_labels_train) == 80
    again = run_grid("sarcasm", "bow", preset=mine, progress=False)[0]
    assert again.cached  # its own entry, found again under its own key


def _three_class_csv(path: Path, per_class: int = 100) -> Path:
    """A CSV with named columns (id, sentence, sentiment) and string labels of three classes."""
    words = {
        "negative": ["awful", "dull", "poor", "boring"],
        "neutral": ["plain", "average", "okay", "ordinary"],
        "positive": ["great", "lovely", "superb", "brilliant"],
    }
    rng = np.random.default_rng(0)
    rows = []
    for i in range(3 * per_class):
        label = list(words)[i % 3]
        rows.append({"id": i, "sentence": f"the {rng.choice(NOUNS)} was "
                     f"{rng.choice(words[label])} number {i}", "sentiment": label})  # fmt: skip
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=["id", "sentence", "sentiment"])
        writer.writeheader()
        writer.writerows(rows)
    return path


def _trained(root: Path) -> list[Path]:
    return [
        p for kind in ("weak_preds", "ceiling_preds", "results") for p in root.glob(f"{kind}/*")
    ]


@pytest.mark.slow
def test_three_class_csv_end_to_end_with_check(sandbox, tmp_path, capsys):
    """run on a 3-class CSV with named columns and string labels, --sizes max, predictions
    saved and read back by check (text and JSON): the file holds exactly the run's arrays."""
    from w2s_utils import check
    from w2s_utils.cli import main

    path = _three_class_csv(tmp_path / "reviews.csv")
    out = tmp_path / "reviews.npz"
    argv = ["run", "--dataset", str(path), "--text-column", "sentence", "--label-column",
            "sentiment", "--weak", "bow", "--preset", "test", "--seeds", "1", "--sizes", "max",
            "--save-predictions", str(out), "--json"]  # fmt: skip
    assert main(argv) == 0
    payload = json.loads(capsys.readouterr().out)
    assert payload["predictions"] == [str(out)]
    ref = data.register(path, text_column="sentence", label_column="sentiment")
    ds = data.load_texts(ref)
    sizes = data.max_sizes(ds)
    assert ds.n_classes == 3 and ds.label_names == ("negative", "neutral", "positive")
    from w2s_utils.engine.presets import get_preset

    preset = dataclasses.replace(get_preset("test"), dataset_sizes=((ref, sizes),))
    (res,) = run_grid(ref, "bow", seeds=1, preset=preset, progress=False)
    assert res.cached and res.label_names == ds.label_names and res.config.sizes == sizes
    with np.load(out, allow_pickle=False) as f:
        saved = {k: f[k] for k in f.files}
    assert set(saved) == {"weak", "student", "ceiling", "labels", "ids", "label_names"}
    for name in ("weak", "student", "ceiling", "labels"):
        np.testing.assert_array_equal(saved[name], getattr(res, name))
    assert saved["weak"].shape == (sizes.test, 3) and list(saved["ids"]) == list(res.ids)
    assert list(saved["label_names"]) == ["negative", "neutral", "positive"]
    report = check.check_file(out)
    assert report["n"] == sizes.test and report["n_classes"] == 3 and "ceiling" in report["arrays"]
    assert main(["check", str(out)]) == 0
    capsys.readouterr()
    assert main(["check", str(out), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["n_classes"] == 3


@pytest.mark.slow
def test_several_runs_save_one_file_each(text_sandbox, tmp_path, capsys):
    """Two seeds, K = 2: one file per run, each read by check and equal to its run."""
    from w2s_utils.cli import main

    out = tmp_path / "preds.npz"
    argv = ["run", "--dataset", "sarcasm", "--weak", "bow", "--preset", "test", "--seeds", "2",
            "--save-predictions", str(out)]  # fmt: skip
    assert main(argv) == 0
    files = [tmp_path / f"preds.sarcasm.bow.seed{s}.npz" for s in (0, 1)]
    assert all(f.exists() for f in files) and not out.exists()
    runs = run_grid("sarcasm", "bow", seeds=2, preset="test", progress=False)
    for f, r in zip(files, runs, strict=True):
        with np.load(f, allow_pickle=False) as z:
            np.testing.assert_array_equal(z["student"], r.student)
            assert list(z["label_names"]) == ["0", "1"] and z["weak"].shape == (40, 2)
        assert main(["check", str(f)]) == 0
    assert "predictions written to" in capsys.readouterr().err


@pytest.mark.parametrize(
    "extra,match",
    [
        (["--seeds", "0"], "whole number from 1"),
        (["--seeds", "-1"], "whole number from 1"),
        (["--seeds", "2.5"], "whole number from 1"),
        (["--seeds", "nan"], "whole number from 1"),
        (["--seeds", "inf"], "whole number from 1"),
        (["--seeds", "1e3"], "whole number from 1"),
        (["--sizes", "40,60,20"], "four whole numbers"),
        (["--sizes", "40,60,20,4.5"], "four whole numbers"),
        (["--sizes", "40,-60,20,40"], "four whole numbers"),
        (["--sizes", "40,60,20,0"], "must be positive"),
        (["--weak", "bow", "bow"], "weaks: bow given more than once"),
        (["--dataset", "sarcasm", "sarcasm"], "datasets: sarcasm given more than once"),
        (["--preset", "huge"], "invalid choice"),
        (["--text-column", "x"], "apply to a data file"),
    ],
)
def test_cli_refuses_bad_options_with_exit_2(monkeypatch, capsys, extra, match):
    from w2s_utils.cli import main

    _no_work(monkeypatch)
    argv = ["run", "--dataset", "sarcasm", "--weak", "bow", "--preset", "test", *extra]
    try:
        code = main(argv)
    except SystemExit as exit_:  # option errors exit from the parser itself
        code = exit_.code
    assert code == 2
    err = capsys.readouterr().err
    assert match in err and "error" in err and "Traceback" not in err


def test_sizes_that_do_not_fit_k_classes_fail_before_training(sandbox, tmp_path, capsys):
    from w2s_utils.cli import main

    path = _three_class_csv(tmp_path / "three.csv")
    argv = ["run", "--dataset", str(path), "--text-column", "sentence", "--label-column",
            "sentiment", "--weak", "bow", "--preset", "test", "--sizes", "40,60,20,40"]  # fmt: skip
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "multiple of n_classes=3" in err and err.count("error:") == 1
    assert not _trained(sandbox)  # nothing trained


def test_hub_model_offline_fails_fast_before_training(text_sandbox, monkeypatch, capsys):
    """A hub name that cannot be loaded fails in seconds, before any training, in one whole
    line (before: 52 s of retries and a message cut mid-URL)."""
    from w2s_utils.cli import main

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    t0 = time.perf_counter()
    argv = ["run", "--dataset", "sarcasm", "--weak", "bow", "--strong", "someorg/no-such-model",
            "--preset", "test", "--seeds", "1"]  # fmt: skip
    assert main(argv) == 2
    assert time.perf_counter() - t0 < 10
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err.startswith("error: model 'someorg/no-such-model' could not be loaded")
    assert "needs the internet" in err and err.endswith("pass the folder")
    assert not _trained(text_sandbox)


# sha256 of the result cache key of two default configs (engine version 3: canonical test order,
# inputs keyed by content, the ci preset's eval_test=False). A new config field at its default
# must keep these keys, so that every chapter's cached runs stay valid.
_GOLDEN_KEYS = {
    ("sarcasm", "bow", 0, "soft"): (
        "860c3ec789b58ee0f0be6ca71f31a0e485d8b931e71ddbf9496ea3af3735ec8d"
    ),
    ("rotten_tomatoes", "minilm-l1", 2, "hard"): (
        "2d372282740887c6505fd453641fcaf11eb700ae733f0741c3db83507e7922cc"
    ),
}


def _result_key(monkeypatch, cfg) -> str:
    seen = {}

    class _Stop(Exception):
        pass

    def capture(key, kind):  # run_experiment first looks its result up
        assert kind == "results"
        seen["key"] = key
        raise _Stop

    monkeypatch.setattr(cache, "cache_path", capture)
    with pytest.raises(_Stop):
        ex.run_experiment(cfg)
    return cache.config_hash(seen["key"], 64)


def test_default_config_key_is_unchanged(monkeypatch):
    monkeypatch.setenv("W2S_DEVICE", "cpu")
    for (ds, weak, seed, lt), golden in _GOLDEN_KEYS.items():
        cfg = ex.make_config(ds, weak, seed=seed, preset="ci", label_type=lt)
        assert cfg.weak_temperature == 1.0
        assert _result_key(monkeypatch, cfg) == golden
        explicit = ex.make_config(
            ds, weak, seed=seed, preset="ci", label_type=lt, weak_temperature=1.0
        )
        assert _result_key(monkeypatch, explicit) == golden
    other = ex.make_config("sarcasm", "bow", preset="ci", weak_temperature=2.0)
    fit = ex.make_config("sarcasm", "bow", preset="ci", weak_temperature="fit")
    keys = {_result_key(monkeypatch, c) for c in (other, fit)}
    assert len(keys) == 2 and not keys & set(_GOLDEN_KEYS.values())


@pytest.mark.parametrize("bad", [0.0, -1.0, math.inf, "warm", True, None])
def test_weak_temperature_is_validated(bad):
    with pytest.raises(ValueError, match="weak_temperature"):
        ex.make_config("sarcasm", "bow", preset="test", weak_temperature=bad)


def test_weak_temperature_fit_needs_val():
    sizes = data.SplitSizes(weak_train=40, w2s_train=60, val=0, test=40)
    with pytest.raises(ValueError, match="val"):
        ex.make_config("sarcasm", "bow", preset="test", sizes=sizes, weak_temperature="fit")


@pytest.mark.slow
def test_weak_temperature_runs_share_the_teacher(text_sandbox):
    root, ds = text_sandbox, synthetic_dataset()
    base = ex.run_experiment(ex.make_config("sarcasm", "bow", preset="test"))
    hot = ex.run_experiment(ex.make_config("sarcasm", "bow", preset="test", weak_temperature=2.0))
    fit = ex.run_experiment(ex.make_config("sarcasm", "bow", preset="test", weak_temperature="fit"))
    assert len(list((root / "weak_preds").glob("*.npz"))) == 1  # one teacher, trained once
    assert len(list((root / "results").glob("*.npz"))) == 3
    np.testing.assert_array_equal(hot.ceiling, base.ceiling)
    for got, name in ((hot.weak, "test"), (hot.weak_labels_train, "w2s_train")):
        want = base.weak if name == "test" else base.weak_labels_train
        np.testing.assert_allclose(got, metrics.apply_temperature(torch.tensor(want), 2.0))
    # the fitted temperature is the optimum on the val split's gold labels
    splits = data.make_splits(ds, base.config.sizes, 0)
    t = metrics.fit_temperature(base.weak_labels_val, splits.val.labels)
    np.testing.assert_allclose(
        fit.weak, metrics.apply_temperature(torch.tensor(base.weak), t), rtol=1e-6
    )
    assert ex.run_experiment(hot.config).cached
