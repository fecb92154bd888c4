"""Reuse of executed chapters: a chapter whose inputs did not change is not executed again.

Like jupyter-cache, a passing execution is stored under a key of everything it depends on:

- the notebook's bytes (its code, its text: the chapter's reading time is computed from it);
- the injected parameters (``{"preset": name}``);
- the library's source: every ``.py`` file under ``w2s_utils/`` (sorted relative paths and
  bytes, :func:`library_digest`), so that any edit of the library re-executes every chapter;
- :func:`w2s_utils.engine.cache.versions_that_matter` (the library's version, the cache layout,
  torch, transformers, scikit-learn, the packaged model), the versions of the packages that shape
  a page's outputs (:data:`OUTPUT_PACKAGES`) and the Python version;
- the device type the chapter would run on (:func:`w2s_utils.engine.device.default_device`:
  ``cpu`` or ``cuda``, ``W2S_DEVICE`` included).

The copy is stored as ``<cache>/executed/<key>.ipynb`` (:func:`w2s_utils.engine.cache.cache_dir`,
so it survives ``make clean``), written atomically, with a record in its metadata
(``w2s_reuse``: the key, when it was executed, in how many seconds, with which preset on which
device) and the sha256 of the whole notebook. A copy is verified when it is loaded: a truncated,
altered or foreign one is reported, removed and counts as a miss. Only complete, passing
executions are stored. ``--rerun`` or ``W2S_RERUN=1`` executes every chosen chapter anyway.
Data and cached training results are *not* in the key: they are content-addressed by the engine,
and a chapter reads the same results whatever the cache folder.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import platform
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

from w2s_utils import __version__
from w2s_utils.book.runner.notebooks import executed_ok
from w2s_utils.engine.cache import (
    atomic_write,
    cache_dir,
    canonical_json,
    notice,
    versions_that_matter,
)
from w2s_utils.engine.device import default_device

#: The cache sub-folder of stored executed chapters.
REUSE_KIND = "executed"
#: Environment variable that forces execution (``W2S_RERUN=1``), like ``--rerun``.
RERUN_ENV = "W2S_RERUN"
#: Notebook metadata key of a stored copy's record.
RECORD_KEY = "w2s_reuse"
#: The library's source folder (every ``.py`` below it enters the key).
LIBRARY_DIR = Path(__file__).resolve().parents[2]
#: Packages whose version can change what an executed page shows (besides those of
#: :func:`w2s_utils.engine.cache.versions_that_matter`).
OUTPUT_PACKAGES = ("numpy", "scipy", "pandas", "matplotlib", "myst-nb", "papermill", "ipykernel")
_TRUE = ("1", "true", "yes", "on")
_FALSE = ("", "0", "false", "no", "off")


@dataclass(frozen=True)
class StoredRun:
    """A stored execution of a chapter: its key, file, when it was executed (UTC, ISO 8601), how
    long the execution took (seconds), the preset and device it ran with, the library version."""

    key: str
    path: Path
    executed_at: str
    seconds: float
    preset: str
    device: str
    library: str

    def when(self) -> str:
        """``executed_at`` as ``YYYY-MM-DD HH:MM UTC`` (the text as stored if it is not a date)."""
        try:
            return dt.datetime.fromisoformat(self.executed_at).strftime("%Y-%m-%d %H:%M UTC")
        except ValueError:
            return self.executed_at


def rerun_requested(rerun: bool = False) -> bool:
    """Whether chapters are executed even when a stored copy matches: ``rerun`` (``--rerun``) or
    ``W2S_RERUN`` set to 1/true/yes/on (0/false/no/off or empty: no; anything else: ValueError)."""
    if not isinstance(rerun, bool):
        raise ValueError(f"rerun: expected True or False, got {rerun!r}")
    value = os.environ.get(RERUN_ENV, "").strip().lower()
    if value not in _TRUE + _FALSE:
        raise ValueError(
            f"{RERUN_ENV}={os.environ[RERUN_ENV]!r}: set it to 1 to execute every chapter again "
            "(or 0 / unset it to reuse unchanged chapters)"
        )
    return rerun or value in _TRUE


def library_digest(package_dir: Path = LIBRARY_DIR) -> str:
    """sha256 (hex) of the library's source: every ``.py`` file under ``package_dir``, in sorted
    order of relative path, each entered as its path, its length and its bytes."""
    package_dir = Path(package_dir)
    if not package_dir.is_dir():
        raise ValueError(f"package_dir: {package_dir} is not a folder; pass the library's folder")
    h = hashlib.sha256()
    files = sorted(
        (p.relative_to(package_dir).as_posix(), p)
        for p in package_dir.rglob("*.py")
        if "__pycache__" not in p.parts
    )
    for rel, path in files:
        data = path.read_bytes()
        h.update(f"{rel}\0{len(data)}\0".encode())
        h.update(data)
    return h.hexdigest()


def _version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "none"


def reuse_context() -> dict[str, Any]:
    """What every chapter's key shares: the library digest, versions and the device type."""
    return {
        "library": library_digest(),
        "versions": versions_that_matter(),
        "output_packages": {name: _version(name) for name in OUTPUT_PACKAGES},
        "python": platform.python_version(),
        "device": default_device().type,
    }


def reuse_key(notebook: bytes, parameters: Mapping[str, Any], context: Mapping[str, Any]) -> str:
    """The key (sha256 hex) of a chapter's execution: its notebook's bytes, the injected
    ``parameters`` and the shared ``context`` of :func:`reuse_context`."""
    if not isinstance(notebook, bytes):
        raise ValueError(f"notebook: expected the notebook's bytes, got {type(notebook).__name__}")
    if not isinstance(parameters, Mapping) or not isinstance(context, Mapping):
        raise ValueError("parameters, context: expected mappings (see reuse_context)")
    full = {
        "notebook": hashlib.sha256(notebook).hexdigest(),
        "parameters": dict(parameters),
        "context": dict(context),
    }
    return hashlib.sha256(canonical_json(full).encode()).hexdigest()


def stored_path(key: str) -> Path:
    """Where the execution with ``key`` is stored (the file may not exist; nothing is created
    beyond the cache root)."""
    if not isinstance(key, str) or len(key) != 64 or set(key) - set("0123456789abcdef"):
        raise ValueError(f"key: expected a sha256 hex digest (64 hex digits), got {key!r}")
    return cache_dir() / REUSE_KIND / f"{key}.ipynb"


def _digest(nb: dict[str, Any]) -> str:
    text = json.dumps(nb, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _damage(path: Path, key: str) -> tuple[dict[str, Any] | None, str]:
    """``(record, "")`` of a sound stored copy, else ``(None, what is wrong)``."""
    try:
        nb = json.loads(path.read_bytes())
        record = dict(nb["metadata"][RECORD_KEY])
        claimed = record.pop("sha256")
    except (OSError, ValueError, KeyError, TypeError) as err:
        return None, f"unreadable or without its record ({type(err).__name__})"
    if record.get("key") != key:
        return None, "it was stored under another key"
    nb["metadata"][RECORD_KEY] = record
    if _digest(nb) != claimed:
        return None, "its content does not match its sha256 (truncated or altered)"
    if not executed_ok(path):
        return None, "it is not a complete execution"
    return record, ""


def load_stored(key: str, *, log: Callable[[str], None] = notice) -> StoredRun | None:
    """The verified stored execution for ``key``, or ``None`` on a miss. A damaged copy is
    reported through ``log`` (naming the file and what is wrong), removed, and is a miss."""
    path = stored_path(key)
    if not path.is_file():
        return None
    record, wrong = _damage(path, key)
    if record is None:
        log(f"stored executed copy {path} is damaged ({wrong}); removed: executing the chapter")
        path.unlink(missing_ok=True)
        return None
    try:
        return StoredRun(
            key=key,
            path=path,
            executed_at=str(record["executed_at"]),
            seconds=float(record["seconds"]),
            preset=str(record["preset"]),
            device=str(record["device"]),
            library=str(record["library"]),
        )
    except (KeyError, TypeError, ValueError):
        log(f"stored executed copy {path} has an incomplete record; removed: executing it again")
        path.unlink(missing_ok=True)
        return None


def store_executed(
    key: str,
    executed: Path,
    *,
    seconds: float,
    preset: str,
    device: str,
    executed_at: dt.datetime,
) -> StoredRun:
    """Store the complete executed copy ``executed`` under ``key`` (atomically), with its record:
    when it was executed (``executed_at``, UTC), in how many ``seconds``, with ``preset`` on
    ``device``. ValueError when the copy is not complete (only passing executions are stored)."""
    path = stored_path(key)
    executed = Path(executed)
    if not executed_ok(executed):
        raise ValueError(f"executed: {executed} is not a complete execution; it is not stored")
    if not isinstance(seconds, int | float) or not seconds >= 0:
        raise ValueError(f"seconds: expected the execution's duration (>= 0 s), got {seconds!r}")
    nb = json.loads(executed.read_bytes())
    record = {
        "key": key,
        "executed_at": executed_at.astimezone(dt.timezone.utc).isoformat(timespec="seconds"),
        "seconds": round(float(seconds), 3),
        "preset": preset,
        "device": device,
        "library": __version__,
    }
    nb.setdefault("metadata", {})[RECORD_KEY] = record
    nb["metadata"][RECORD_KEY] = {**record, "sha256": _digest(nb)}
    data = json.dumps(nb, indent=1, ensure_ascii=False).encode("utf-8")
    cache_dir(REUSE_KIND)
    atomic_write(path, lambda f: f.write(data))
    return StoredRun(
        key, path, record["executed_at"], record["seconds"], preset, device, __version__
    )


def copy_stored(run: StoredRun, target: Path) -> Path:
    """Copy the stored execution ``run`` to ``target`` (atomically: ``target`` is either the
    earlier file or the complete copy); returns ``target``."""
    if not isinstance(run, StoredRun):
        raise ValueError(f"run: expected a StoredRun (see load_stored), got {type(run).__name__}")
    data = Path(run.path).read_bytes()
    return atomic_write(target, lambda f: f.write(data))
