"""Scale: grids on an executor (process pool, Dask), batched training, the gpu preset, packaging.

The executor tests run one small grid (``test`` preset, a synthetic local dataset, 2 weak models x
2 seeds) serially, through :func:`w2s_utils.engine.executors.local_pool` and through a local Dask
cluster, each into its own cache folder, and require the same results and the same cache entries
(the same keys, exactly; the same arrays to :data:`CROSS_PROCESS_ATOL`) as the serial run.

Why a tolerance and not bit-equality: the serial run and the workers split float32 reductions
differently (torch and the BLAS behind numpy/scikit-learn pick their blocking by thread count, and
a worker is started with other threading settings than the test process), so a probability may
move by a few float32 ulps (seen: 6e-8, 25 of 80 values). Float32 has a unit round-off of 6e-8;
a dot product of length n carries an error bound of n * u relative to the sum of |terms| (Higham,
Accuracy and Stability, 3.1), and after the few hundred optimizer steps of a test run such
differences stay far below 1e-5 (the stacked trainer's tolerance, measured the same way). What
must not depend on threads does not: the cache keys (compared exactly below) and the integer
arrays (labels, ids, steps).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
import tomllib
import torch

from w2s_utils.engine import cache
from w2s_utils.engine.experiment import run_grid
from w2s_utils.engine.features import TextFeatureStore

ROOT = Path(__file__).resolve().parents[2]
#: Largest difference allowed between runs of one config in processes with other thread settings
#: (float32 reductions split differently; see the module docstring).
CROSS_PROCESS_ATOL = 1e-5
_POS = ["great", "lovely", "superb", "fine", "brilliant", "warm", "funny", "smart"]
_NEG = ["awful", "boring", "dull", "poor", "terrible", "cold", "weak", "silly"]
_NOUNS = ["film", "plot", "cast", "script", "score", "ending", "story", "pace"]
_PIECES = ("results", "weak_preds", "ceiling_preds")


def _write_dataset(path: Path, n: int = 400, seed: int = 0) -> str:
    """A .jsonl of short sentences labelled by the adjective's sentiment (10% label noise)."""
    rng = np.random.default_rng(seed)
    with open(path, "w") as f:
        for i in range(n):
            y = i % 2
            adj = rng.choice(_POS if y else _NEG)
            label = y if rng.random() > 0.1 else 1 - y
            text = f"the {rng.choice(_NOUNS)} was {adj} number {i}"
            f.write(json.dumps({"text": text, "label": int(label)}) + "\n")
    return str(path)


@pytest.fixture(scope="module")
def grid_env(tmp_path_factory):
    root = tmp_path_factory.mktemp("scale")
    return root, _write_dataset(root / "toy.jsonl")


def _grid(dataset: str, executor=None, trainer: str | None = None):
    return run_grid(
        dataset,
        ["bow", "tiny-transformer"],
        seeds=2,
        preset="test",
        progress=False,
        executor=executor,
        trainer=trainer,
    )


def _entries(root: Path) -> dict[str, dict[str, np.ndarray]]:
    """Every result-level cache entry under ``root``: ``piece/name`` -> its arrays."""
    out = {}
    for piece in _PIECES:
        for path in sorted((root / piece).glob("*.npz")):
            arrays, _ = cache.load_arrays(path)
            out[f"{piece}/{path.name}"] = arrays
    return out


#: Entries that record wall-clock time, not results.
WALL_CLOCK = frozenset({"piece_seconds", "train_seconds"})


def _close(x: np.ndarray, y: np.ndarray, what: str) -> None:
    """Equal for integers and text; within CROSS_PROCESS_ATOL for floats."""
    if what.rsplit(":", 1)[-1] in WALL_CLOCK:
        return  # measured seconds differ from run to run by nature
    x, y = np.asarray(x), np.asarray(y)
    if x.dtype.kind == "f" or y.dtype.kind == "f":
        np.testing.assert_allclose(x, y, rtol=0, atol=CROSS_PROCESS_ATOL, err_msg=what)
    else:
        np.testing.assert_array_equal(x, y, err_msg=what)


def _same(a, b) -> None:
    assert [r.config for r in a] == [r.config for r in b]
    for x, y in zip(a, b, strict=True):
        assert list(x.ids) == list(y.ids)
        for name in ("weak", "student", "ceiling", "labels", "student_probs_train"):
            _close(getattr(x, name), getattr(y, name), name)
        assert sorted(x.summary) == sorted(y.summary)
        for k, v in x.summary.items():  # accuracies, CEs, eps: means of the arrays above
            if np.isnan(v):
                assert np.isnan(y.summary[k]), k
            else:
                assert abs(v - y.summary[k]) <= 1e-4, k


def _same_cache(ref: Path, other: Path) -> None:
    e_ref, e_other = _entries(ref), _entries(other)
    assert len(e_ref) == 4 + 4 + 2  # 4 results, 4 weak models, 2 ceilings (one per seed)
    assert sorted(e_ref) == sorted(e_other)
    for k, arrays in e_ref.items():
        assert sorted(arrays) == sorted(e_other[k])
        for name, v in arrays.items():
            _close(v, e_other[k][name], f"{k}:{name}")


@pytest.fixture(scope="module")
def serial(grid_env):
    root, dataset = grid_env
    mp = pytest.MonkeyPatch()
    mp.setenv("W2S_CACHE_DIR", str(root / "serial"))
    mp.setenv("W2S_DEVICE", "cpu")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    TextFeatureStore.clear_memory()
    try:
        results = _grid(dataset)
    finally:
        torch.set_num_threads(threads)
        mp.undo()
    return results


@pytest.mark.executor
@pytest.mark.slow
def test_grid_on_a_local_process_pool_equals_serial(grid_env, serial, monkeypatch):
    from w2s_utils.engine.executors import local_pool

    root, dataset = grid_env
    monkeypatch.setenv("W2S_CACHE_DIR", str(root / "pool"))
    monkeypatch.setenv("W2S_DEVICE", "cpu")
    with local_pool(2, threads=1) as ex:
        results = _grid(dataset, ex)
    assert not any(r.cached for r in results)
    _same(serial, results)
    _same_cache(root / "serial", root / "pool")
    # a rerun through the pool is served from the cache the workers wrote
    with local_pool(1, threads=1) as ex:
        again = _grid(dataset, ex)
    assert all(r.cached for r in again)
    _same(serial, again)


@pytest.mark.executor
@pytest.mark.slow
def test_grid_on_a_local_dask_cluster_equals_serial(grid_env, serial, monkeypatch):
    distributed = pytest.importorskip("distributed")
    root, dataset = grid_env
    monkeypatch.setenv("W2S_CACHE_DIR", str(root / "dask"))  # inherited by the workers
    monkeypatch.setenv("W2S_DEVICE", "cpu")
    with (
        distributed.LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
        ) as cluster,
        distributed.Client(cluster) as client,
    ):
        results = _grid(dataset, client.get_executor())
    _same(serial, results)
    _same_cache(root / "serial", root / "dask")


def test_executor_without_submit_is_rejected():
    with pytest.raises(ValueError, match="submit"):
        run_grid("sarcasm", "bow", seeds=1, preset="test", executor=object())


def test_executor_failure_propagates_and_cancels(grid_env):
    """A failing run raises in the caller, and the runs not yet started are cancelled."""

    class Failing:
        def __init__(self):
            self.cancelled = 0

        def submit(self, fn, *args, **kwargs):
            outer = self

            class F:
                def result(self):
                    raise RuntimeError("worker died")

                def cancel(self):
                    outer.cancelled += 1

            return F()

    ex = Failing()
    with pytest.raises(RuntimeError, match="worker died"):
        _grid(grid_env[1], ex)
    assert ex.cancelled == 4


def test_submission_order_spreads_shared_ceilings(grid_env):
    """Configs go out weak model by weak model: the first wave has distinct (dataset, seed)."""
    seen = []

    class Recorder:
        def submit(self, fn, cfg, **kwargs):
            seen.append((cfg.weak, cfg.seed))

            class F:
                def result(self):
                    return cfg

            return F()

    out = _grid(grid_env[1], Recorder())
    assert seen == [("bow", 0), ("bow", 1), ("tiny-transformer", 0), ("tiny-transformer", 1)]
    # results come back in run_grid's own (dataset, seed, weak) order
    assert [(c.seed, c.weak) for c in out] == [
        (0, "bow"),
        (0, "tiny-transformer"),
        (1, "bow"),
        (1, "tiny-transformer"),
    ]


@pytest.mark.slow
def test_local_pool_arguments():
    from w2s_utils.engine.executors import local_pool

    with pytest.raises(ValueError, match="workers"):
        local_pool(0)
    with pytest.raises(ValueError, match="threads"):
        local_pool(1, threads=0)
    with local_pool(1, threads=1) as ex:
        assert ex.submit(torch.get_num_threads).result() == 1


# ------------------------------------------------------------------------- batched training

#: Batched vs separate runs (dropout off, CPU, float32): measured max |dp| 2e-7 to 7e-7 over
#: cached-trunk MiniLM-L2, full MiniLM-L1 and tiny-transformer runs; the stated tolerance:
BATCHED_ATOL = 1e-5


def _no_dropout(model):
    for sub in model.trainable_module().modules():
        if "Dropout" in type(sub).__name__:
            sub.p = 0.0
        if isinstance(sub, torch.nn.MultiheadAttention):
            sub.dropout = 0.0
    return model


def _tiny_without_dropout(monkeypatch) -> None:
    """tiny-transformer rebuilds its network on every reset: switch dropout off in each build."""
    from w2s_utils.engine import models as models_mod

    tiny_init = models_mod.TinyEncoder.__init__

    def tiny_without_dropout(self, *args, **kwargs):
        tiny_init(self, *args, **kwargs)
        _no_dropout(type("M", (), {"trainable_module": lambda _: self})())

    monkeypatch.setattr(models_mod.TinyEncoder, "__init__", tiny_without_dropout)


def _toy_texts(n: int = 48):
    rng = np.random.default_rng(1)
    texts = [
        f"the {rng.choice(_NOUNS)} was {rng.choice(_POS if i % 2 else _NEG)} {i}" for i in range(n)
    ]
    return texts, np.arange(n) % 2


@pytest.mark.slow
@pytest.mark.parametrize(
    "name,mode,extra",
    [
        ("minilm-l2", "cached-trunk", {}),
        ("minilm-l1", "full", {"early_stopping": True, "patience": 1, "eval_every": 2}),
        ("tiny-transformer", "full", {}),
    ],
)
def test_stacked_runs_equal_separate_runs(name, mode, extra, monkeypatch):
    from dataclasses import replace

    from w2s_utils.engine.batched import train_stacked
    from w2s_utils.engine.models import get_model
    from w2s_utils.engine.presets import get_preset

    _tiny_without_dropout(monkeypatch)
    texts, y = _toy_texts()
    soft = np.stack([1 - 0.8 * y - 0.1, 0.8 * y + 0.1], 1)  # soft targets, as a student sees
    s = replace(get_preset("test").strong_settings, epochs=2, **extra)
    seeds = [0, 3]

    def make():
        return _no_dropout(get_model(name, mode=mode, use_disk_cache=False, device="cpu"))

    val = (texts[:16], soft[:16])
    ref = []
    for seed in seeds:
        m = make()
        h = m.fit(texts, soft, replace(s, seed=seed), val=val, test=(texts[16:], y[16:]))
        ref.append((m.predict_proba(texts), h))
    models = [make() for _ in seeds]
    hists = train_stacked(
        models,
        [texts] * 2,
        [soft] * 2,
        [replace(s, seed=seed) for seed in seeds],
        val=[val] * 2,
        test=[(texts[16:], y[16:])] * 2,
    )
    for (p_ref, h_ref), m, h in zip(ref, models, hists, strict=True):
        np.testing.assert_allclose(m.predict_proba(texts), p_ref, rtol=0, atol=BATCHED_ATOL)
        assert list(h.columns) == list(h_ref.columns) and len(h) == len(h_ref)
        np.testing.assert_array_equal(h["step"], h_ref["step"])
        for col in ("train_loss", "val_loss", "test_acc"):
            np.testing.assert_allclose(h[col], h_ref[col], rtol=0, atol=BATCHED_ATOL)
    # two seeds really are two different runs
    assert np.abs(ref[0][0] - ref[1][0]).max() > 1e-3


@pytest.mark.slow
def test_stacked_dropout_draws_independent_masks_per_run():
    """Same seed twice: identical without dropout, different with it (one mask per run)."""
    from dataclasses import replace

    from w2s_utils.engine.batched import train_stacked
    from w2s_utils.engine.models import FastDropout, get_model
    from w2s_utils.engine.presets import get_preset

    texts, y = _toy_texts(32)
    s = replace(get_preset("test").strong_settings, epochs=1)
    out = {}
    for drop in (False, True):
        models = [
            get_model("minilm-l2", mode="cached-trunk", use_disk_cache=False) for _ in range(2)
        ]
        if not drop:
            models = [_no_dropout(m) for m in models]
        train_stacked(models, [texts] * 2, [y] * 2, [s, s])
        out[drop] = [m.predict_proba(texts) for m in models]
        # the FastDropout modules are back after training
        assert any(isinstance(x, FastDropout) for x in models[0].trainable_module().modules())
    np.testing.assert_allclose(out[False][0], out[False][1], rtol=0, atol=BATCHED_ATOL)
    assert np.abs(out[True][0] - out[True][1]).max() > 1e-4


def test_stacked_rejects_mixed_groups():
    from dataclasses import replace

    from w2s_utils.engine.batched import train_stacked
    from w2s_utils.engine.models import get_model
    from w2s_utils.engine.train import TrainSettings

    texts, y = _toy_texts(16)
    s = TrainSettings(epochs=1, batch_size=8, progress=False)
    a = get_model("minilm-l1", mode="cached-trunk", use_disk_cache=False)
    b = get_model("minilm-l2", mode="cached-trunk", use_disk_cache=False)
    with pytest.raises(ValueError, match="architecture"):
        train_stacked([a, b], [texts] * 2, [y] * 2, [s, s])
    c = get_model("minilm-l1", mode="cached-trunk", use_disk_cache=False)
    with pytest.raises(ValueError, match="seed"):
        train_stacked([a, c], [texts] * 2, [y] * 2, [s, replace(s, lr=1.0)])
    with pytest.raises(ValueError, match="same number"):
        train_stacked([a, c], [texts, texts[:8]], [y, y[:8]], [s, s])
    with pytest.raises(ValueError, match="no models"):
        train_stacked([], [], [], [])


def test_stack_batches_pads_to_the_longest():
    from w2s_utils.engine.batched import stack_batches

    a = {"input_ids": torch.ones(2, 3, dtype=torch.long), "attention_mask": torch.ones(2, 3)}
    b = {"input_ids": torch.ones(2, 5, dtype=torch.long), "attention_mask": torch.ones(2, 5)}
    out = stack_batches([a, b], pad_ids=[7, 9])
    assert out["input_ids"].shape == (2, 2, 5)
    assert (out["input_ids"][0, :, 3:] == 7).all() and (out["attention_mask"][0, :, 3:] == 0).all()
    assert (out["input_ids"][1] == 1).all()


@pytest.mark.cuda
def test_stacked_training_on_cuda(cuda_device):
    """The stacked step runs on the GPU under bf16 autocast and trains every run."""
    from w2s_utils.engine.batched import train_stacked
    from w2s_utils.engine.models import get_model
    from w2s_utils.engine.train import TrainSettings

    texts, y = _toy_texts(64)
    s = TrainSettings(epochs=2, batch_size=16, lr=5e-4, max_length=16, bf16=True, progress=False)
    models = [get_model("minilm-l1", device=cuda_device, mode="full") for _ in range(3)]
    hists = train_stacked(models, [texts] * 3, [y] * 3, [s, replace_seed(s, 1), replace_seed(s, 2)])
    for m, h in zip(models, hists, strict=True):
        p = m.predict_proba(texts)
        assert np.isfinite(p).all() and len(h) == 2
    assert np.abs(models[0].predict_proba(texts) - models[1].predict_proba(texts)).max() > 1e-4


def replace_seed(s, seed):
    from dataclasses import replace

    return replace(s, seed=seed)


# ------------------------------------------------------------------------------ gpu preset


def test_gpu_preset_is_offline_full_scale():
    from w2s_utils.engine import data
    from w2s_utils.engine.models import MODEL_NAMES
    from w2s_utils.engine.presets import PRESET_NAMES, get_preset

    p = get_preset("gpu")
    assert "gpu" in PRESET_NAMES
    assert set(p.ladder_datasets) == set(data.OFFLINE_DATASETS)  # no hub datasets
    assert {p.strong, *p.ladder_weaks, *p.extra_weaks} <= set(MODEL_NAMES)  # no hub models
    assert p.strong == "minilm-l6" and p.mode == "full" and p.weak_mode == "full"
    assert len(p.seeds) >= 5
    for settings in (p.weak_settings, p.strong_settings, p.student_settings):
        assert settings.bf16 and settings.max_length >= 84  # quartz's longest text: 84 tokens
    ci = get_preset("ci")
    assert len(p.calibration.temperatures) >= len(ci.calibration.temperatures)
    for grid in (p.calibration, p.overoptimization, p.kl):  # every chapter's grid, in full
        assert grid.datasets == () and grid.weaks == () and grid.seeds == ()
    # gpu grids train stacked, a dataset's students (seeds x teachers) in one stack; ci loops
    assert p.trainer == "stacked" and ci.trainer == "loop"
    assert p.max_stack >= len(p.seeds) * len(p.ladder_weaks)


@pytest.mark.slow
def test_gpu_preset_uses_every_example_of_each_dataset():
    """Each dataset's sizes split cleanly and leave less than 1% of its balanced maximum."""
    from w2s_utils.engine import data
    from w2s_utils.engine.presets import get_preset

    p = get_preset("gpu")
    for name in p.ladder_datasets:
        ds = data.load_texts(name, log=None)
        sizes = p.sizes_for(name)
        balanced = ds.n_classes * min(ds.class_counts())
        assert 0.99 * balanced <= sizes.total() <= balanced, (name, sizes, balanced)
        splits = data.make_splits(ds, sizes, seed=4)
        assert [len(x) for x in splits.as_dict().values()] == [
            sizes.weak_train,
            sizes.w2s_train,
            sizes.val,
            sizes.test,
        ]


@pytest.mark.slow
def test_run_grid_gives_each_dataset_its_gpu_sizes():
    from w2s_utils.engine.presets import get_preset

    seen = []

    class Recorder:
        def submit(self, fn, cfg, **kwargs):
            seen.append(cfg)

            class F:
                def result(self):
                    return cfg

            return F()

    p = get_preset("gpu")
    out = run_grid(preset="gpu", executor=Recorder(), progress=False)
    assert len(out) == len(p.ladder_datasets) * len(p.ladder_weaks) * len(p.seeds)
    for cfg in out:
        assert cfg.sizes == p.sizes_for(cfg.dataset) and cfg.mode == "full"
    assert len({c.sizes for c in out}) == 3


# ------------------------------------------------------------------------------- packaging


def _lock() -> dict[str, str]:
    from packaging.utils import canonicalize_name

    pins = {}
    for line in (ROOT / "requirements.lock").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            name, _, version = line.strip().partition("==")
            pins[canonicalize_name(name)] = version
    return pins


def test_pyproject_declares_ranges_not_a_torch_pin():
    """pip install of the library must not replace a user's CUDA torch: a range, not ==."""
    from packaging.requirements import Requirement
    from packaging.utils import canonicalize_name

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    reqs = {canonicalize_name(Requirement(r).name): Requirement(r) for r in project["dependencies"]}
    torch_req = reqs["torch"]
    assert not any(sp.operator in ("==", "===") for sp in torch_req.specifier), torch_req
    assert any(sp.operator == ">=" for sp in torch_req.specifier)
    assert any(sp.operator == "<" for sp in torch_req.specifier)  # an upper bound: tested only
    lock = _lock()
    assert re.fullmatch(r"\d+\.\d+\.\d+", lock["torch"])  # the lock keeps an exact CPU pin
    for name, req in reqs.items():
        assert req.specifier.contains(lock[name], prereleases=True), (req, lock[name])


def test_lock_has_what_the_scale_tests_need():
    from importlib import metadata

    from packaging.requirements import Requirement

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    extras = project["optional-dependencies"]
    lock = _lock()
    for extra in ("test", "cluster"):
        assert any(Requirement(r).name == "distributed" for r in extras[extra])
    for name in ("dask", "distributed"):
        assert name in lock
        # the environment the tests run in is the locked one
        assert metadata.version(name) == lock[name]
    for r in extras["cluster"]:
        req = Requirement(r)
        assert req.specifier.contains(lock[req.name], prereleases=True)


# ---------------------------------------------------------------- stacked grids (run_grid)


@pytest.fixture
def without_dropout(monkeypatch):
    """Every torch model the pipeline builds trains without dropout (then stacked == loop)."""
    from w2s_utils.engine.experiment import scheduler

    _tiny_without_dropout(monkeypatch)
    build = scheduler.build_model

    def build_without_dropout(*args):
        model = build(*args)
        return _no_dropout(model) if hasattr(model, "trainable_module") else model

    monkeypatch.setattr(scheduler, "build_model", build_without_dropout)


def _grid_as(dataset: str, trainer: str, executor=None):
    return _grid(dataset, executor, trainer)


@pytest.mark.slow
def test_stacked_grid_equals_the_loop_without_dropout(grid_env, without_dropout, monkeypatch):
    """run_grid(trainer="stacked") trains the grid's students as one stack (and the ceilings,
    and the tiny-transformer teachers) and gives the loop's predictions to BATCHED_ATOL; its
    entries are stored under their own keys, except the bow teachers' (no torch, no stack)."""
    root, dataset = grid_env
    monkeypatch.setenv("W2S_DEVICE", "cpu")
    monkeypatch.setenv("W2S_CACHE_DIR", str(root / "loop-nodrop"))
    loop = _grid_as(dataset, "loop")
    monkeypatch.setenv("W2S_CACHE_DIR", str(root / "stacked"))
    stacked = _grid_as(dataset, "stacked")
    assert [r.config for r in loop] == [r.config for r in stacked]
    for a, b in zip(loop, stacked, strict=True):
        for name in ("weak", "student", "ceiling", "student_probs_train"):
            np.testing.assert_allclose(getattr(b, name), getattr(a, name), atol=BATCHED_ATOL)
        np.testing.assert_array_equal(a.labels, b.labels)
    # the students differ from each other: four runs, not one run four times
    assert np.abs(stacked[0].student - stacked[3].student).max() > 1e-3
    metas = {}
    for piece in _PIECES:
        for path in (root / "stacked" / piece).glob("*.npz"):
            _, meta = cache.load_arrays(path)
            metas.setdefault(piece, []).append(meta)
    assert sorted(m.get("stacked_with") for m in metas["results"]) == [4, 4, 4, 4]
    assert sorted(m.get("stacked_with") for m in metas["ceiling_preds"]) == [2, 2]
    assert sorted(m.get("stacked_with", 0) for m in metas["weak_preds"]) == [0, 0, 2, 2]
    loop_names = {p: {f.name for f in (root / "loop-nodrop" / p).glob("*.npz")} for p in _PIECES}
    stacked_names = {p: {f.name for f in (root / "stacked" / p).glob("*.npz")} for p in _PIECES}
    assert not loop_names["results"] & stacked_names["results"]
    assert not loop_names["ceiling_preds"] & stacked_names["ceiling_preds"]
    assert len(loop_names["weak_preds"] & stacked_names["weak_preds"]) == 2  # the bow teachers
    # a rerun is served from the stacked entries
    again = _grid_as(dataset, "stacked")
    assert all(r.cached for r in again)
    for a, b in zip(stacked, again, strict=True):
        np.testing.assert_array_equal(a.student, b.student)


def test_stacked_grid_on_an_executor_sends_one_stack_per_dataset(grid_env):
    from w2s_utils.engine.experiment import run_many

    seen = []

    class Recorder:
        def submit(self, fn, configs, **kwargs):
            seen.append((fn, [(c.seed, c.weak) for c in configs], kwargs))

            class F:
                def result(self):
                    return list(configs)

            return F()

    out = _grid_as(grid_env[1], "stacked", Recorder())
    assert len(seen) == 1
    fn, cells, kwargs = seen[0]
    assert fn is run_many and kwargs["trainer"] == "stacked" and kwargs["max_stack"] == 16
    assert cells == [(0, "bow"), (0, "tiny-transformer"), (1, "bow"), (1, "tiny-transformer")]
    assert [(c.seed, c.weak) for c in out] == cells


def test_trainer_and_max_stack_are_checked(grid_env):
    from w2s_utils.engine.experiment import make_config, run_many

    with pytest.raises(ValueError, match="trainer='fast'"):
        _grid_as(grid_env[1], "fast")
    cfg = make_config(grid_env[1], "bow", preset="test")
    with pytest.raises(ValueError, match="max_stack"):
        run_many([cfg], max_stack=0)


@pytest.mark.slow
def test_a_corrupt_stacked_entry_is_retrained_stacked(grid_env, without_dropout, monkeypatch):
    """A damaged stacked result is reported, retrained as a stack of one and stored again."""
    root, dataset = grid_env
    monkeypatch.setenv("W2S_DEVICE", "cpu")
    monkeypatch.setenv("W2S_CACHE_DIR", str(root / "stacked-corrupt"))
    first = _grid_as(dataset, "stacked")
    path = sorted((root / "stacked-corrupt" / "results").glob("*.npz"))[0]
    path.write_bytes(b"not an npz file")
    again = _grid_as(dataset, "stacked")
    assert sum(not r.cached for r in again) == 1
    _, meta = cache.load_arrays(path)
    assert meta["stacked_with"] == 1
    for a, b in zip(first, again, strict=True):
        np.testing.assert_allclose(b.student, a.student, atol=BATCHED_ATOL)
