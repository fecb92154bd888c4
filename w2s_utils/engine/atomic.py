"""Atomic writes for the cache and the book: temp names that say who writes them, and sweeping.

Temp files and folders are named ``.<final>.tmp-<space>-<pid>-<random>[.<suffix>]``: ``<space>``
identifies the host and the PID namespace the writer runs in (a hash of the hostname, the boot id
or machine id, and the PID namespace), so two containers or cluster nodes sharing one cache never
take each other's process ids for their own. :func:`sweep_stale_temps` removes a temp only when
its writer is known dead (same ``<space>``, no such pid) or when nothing has written to it for
``max_age_s`` (an hour by default): a live writer elsewhere keeps its file. :func:`atomic_write`
writes a temp file in the target's folder, fsyncs it and renames it over the target, so a file is
complete or absent. Re-exported by :mod:`w2s_utils.engine.cache`, their home for callers.
"""

from __future__ import annotations

import errno
import functools
import hashlib
import os
import re
import shutil
import socket
import time
from collections.abc import Callable
from pathlib import Path
from typing import IO

__all__ = [
    "atomic_write",
    "process_space",
    "sweep_stale_temps",
    "temp_name",
    "temp_owner_alive",
]

#: ``.tmp-<space>-<pid>-<random>[.suffix]`` (see :func:`temp_name`)
_TMP_RE = re.compile(r"\.tmp-([0-9a-f]{12})-(\d+)-[0-9a-f]{8}(\.[A-Za-z0-9]+)?$")
#: the pid-only names of earlier versions: ``.tmp-<pid>-<random>`` (judged by age alone)
_LEGACY_TMP_RE = re.compile(r"\.tmp-(\d+)-[0-9a-f]+$")
_STALE_TMP_SECONDS = 3600.0


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    except OSError:  # pragma: no cover - unexpected platforms
        return True
    return True


def _read_id(path: str) -> str:
    try:
        with open(path, encoding="ascii", errors="replace") as f:
            return f.read().strip()
    except OSError:
        return ""


@functools.cache
def process_space() -> str:
    """12 hex digits naming where this process's pid means something: a hash of the hostname,
    the boot id (else the machine id) and the PID namespace. Two processes with the same value
    can test each other's liveness by pid; containers and cluster nodes get different values."""
    try:
        pid_ns = os.readlink("/proc/self/ns/pid")
    except OSError:
        pid_ns = ""
    boot = _read_id("/proc/sys/kernel/random/boot_id") or _read_id("/etc/machine-id")
    parts = (socket.gethostname(), boot, pid_ns)
    return hashlib.sha256("\x00".join(parts).encode("utf-8")).hexdigest()[:12]


def _last_write(entry: Path) -> float:
    """Newest mtime of a file, or of a folder and everything in it (a live writer keeps it new)."""
    newest = entry.stat().st_mtime
    if entry.is_dir():
        for sub in entry.rglob("*"):
            try:
                newest = max(newest, sub.stat().st_mtime)
            except FileNotFoundError:
                continue
    return newest


def temp_owner_alive(name: str, max_age_s: float = _STALE_TMP_SECONDS, *, age: float = 0.0) -> bool:
    """Whether the writer of the temp named ``name`` may still be at work: ``False`` only when it
    is known dead (same :func:`process_space`, no such pid) or ``age`` (seconds since the last
    write) exceeds ``max_age_s``. Names that are not temp names count as alive (never touched)."""
    m = _TMP_RE.search(name)
    if m is None:
        return _LEGACY_TMP_RE.search(name) is None or age <= max_age_s
    if age > max_age_s:
        return False
    space, pid = m.group(1), int(m.group(2))
    if space != process_space():
        return True  # another host or PID namespace: its pids say nothing here
    return pid == os.getpid() or _pid_alive(pid)


def sweep_stale_temps(folder: str | os.PathLike[str], max_age_s: float = _STALE_TMP_SECONDS) -> int:
    """Delete the temp files/folders in ``folder`` whose writer is gone; return the count.

    A temp (see :func:`temp_name`) is removed when its writer runs in this host's PID namespace
    and its pid is dead, or when nothing has written to it for ``max_age_s`` seconds (any host).
    A live writer on another host or in another container sharing the folder keeps its file.
    """
    folder = Path(folder)
    removed = 0
    if not folder.is_dir():
        return 0
    now = time.time()
    for entry in folder.iterdir():
        if not (_TMP_RE.search(entry.name) or _LEGACY_TMP_RE.search(entry.name)):
            continue
        try:
            if not (entry.is_file() or entry.is_dir()) or entry.is_symlink():
                continue
            age = now - _last_write(entry)
        except FileNotFoundError:
            continue
        if temp_owner_alive(entry.name, max_age_s, age=age):
            continue
        try:
            if entry.is_dir():
                shutil.rmtree(entry)
            else:
                entry.unlink()
            removed += 1
        except FileNotFoundError:
            pass
    return removed


def temp_name(final_name: str, suffix: str = "") -> str:
    """Temp name for ``final_name`` (same folder), recognised by :func:`sweep_stale_temps`:
    ``.<final_name>.tmp-<process_space>-<pid>-<8 random hex><suffix>`` (``suffix`` such as
    ``".ipynb"``, for tools that look at the extension)."""
    if suffix and not re.fullmatch(r"\.[A-Za-z0-9]+", suffix):
        raise ValueError(f"temp_name: suffix={suffix!r} must look like '.ipynb'")
    return f".{final_name}.tmp-{process_space()}-{os.getpid()}-{os.urandom(4).hex()}{suffix}"


def _disk_full(err: OSError, path: Path) -> OSError:
    """A full disk (or quota), named with the path and what to do."""
    return OSError(
        err.errno,
        f"no space left on the disk holding {path.parent} (writing {path.name}; nothing was "
        "written); free space there (an old cache can go: it is recomputed on demand), or point "
        "W2S_CACHE_DIR at a folder on a disk with room",
        str(path),
    )


def atomic_write(path: str | os.PathLike[str], writer: Callable[[IO[bytes]], None]) -> Path:
    """Write a file via ``writer(binary_file)`` so that ``path`` is either absent or complete.

    The data goes to a :func:`temp_name` in the same folder, is fsync'ed and then moved over
    ``path`` with ``os.replace``. A killed writer leaves only its temp file, which
    :func:`sweep_stale_temps` (called here) removes once its writer is known dead or nothing has
    written to it for an hour. A full disk raises ``OSError`` (``ENOSPC``) naming the folder and
    what to do; nothing is left behind.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    sweep_stale_temps(path.parent)
    tmp = path.parent / temp_name(path.name)
    try:
        with open(tmp, "wb") as f:
            writer(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as err:
        try:
            tmp.unlink()
        except FileNotFoundError:
            pass
        if isinstance(err, OSError) and err.errno in (errno.ENOSPC, errno.EDQUOT):
            raise _disk_full(err, path) from err
        raise
    try:  # make the rename itself durable where the OS allows it
        dir_fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
    except OSError:  # pragma: no cover - e.g. some network file systems
        pass
    return path
