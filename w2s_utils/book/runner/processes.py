"""Children that die with the runner, and the sweep of what dead runs left behind.

Every child (papermill, Jupyter Book) dies with the runner, even on ``kill -9``: on Linux it gets
a parent-death signal (``prctl(PR_SET_PDEATHSIG, SIGKILL)``), and everywhere it watches a pipe
from the runner and ends itself when the pipe closes (:func:`watch_parent`); a notebook's kernel
ends when its papermill process does (ipykernel polls its parent). Work in progress lives under
temp names (:func:`w2s_utils.engine.cache.temp_name`); every run first sweeps those of runs that
are gone (:func:`sweep_dead_runs`).
"""

from __future__ import annotations

import ctypes
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from w2s_utils.book.runner.toc import EXECUTED_DIR
from w2s_utils.engine.cache import sweep_stale_temps

#: Environment variable naming the file descriptor a child watches (see :func:`watch_parent`).
WATCH_FD_ENV = "W2S_PARENT_WATCH_FD"
#: A run's own work in progress older than this (no write for a day) belongs to nobody.
STALE_BUILD_SECONDS = 24 * 3600.0
#: The seconds a process group gets after SIGTERM before SIGKILL (:func:`kill_group`).
KILL_GRACE_SECONDS = 10.0
_PR_SET_PDEATHSIG = 1
#: Work-in-progress names of earlier versions of the runner, tagged with the writer's pid.
_LEGACY_NAME = re.compile(r"^\.(html-new|html-old)-(\d+)$|^\..*\.running-(\d+)\.ipynb$")


def watch_parent() -> None:
    """In a child started by :func:`spawn_watched`: end this process as soon as the runner is
    gone (its end of the pipe named by ``$W2S_PARENT_WATCH_FD`` closes, which even ``kill -9``
    of the runner does). A no-op without the variable."""
    fd = os.environ.pop(WATCH_FD_ENV, None)
    if fd is None:
        return
    watched = int(fd)

    def wait() -> None:
        try:
            while os.read(watched, 1):
                pass
        except OSError:
            pass
        os.kill(os.getpid(), signal.SIGKILL)  # the kernel follows: ipykernel polls its parent

    threading.Thread(target=wait, name="w2s-watch-parent", daemon=True).start()


def _die_with_parent_hook() -> Callable[[], None] | None:
    """A ``preexec_fn`` that asks Linux to SIGKILL the child when the runner dies (prepared in
    the parent: the child only calls it); ``None`` where ``prctl`` is not available."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None
    parent = os.getpid()

    def hook() -> None:
        prctl(_PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0)
        if os.getppid() != parent:  # the runner died before the signal was armed
            os._exit(1)

    return hook


def spawn_watched(cmd: list[str], *, cwd: Path, env: dict[str, str], **kwargs: Any):
    """``subprocess.Popen(cmd)`` in a new session, tied to this process: it gets a parent-death
    signal (Linux) and the read end of a pipe (``$W2S_PARENT_WATCH_FD``) that closes when this
    process ends, however it ends; children that call :func:`watch_parent` end with it. Returns
    the ``Popen``; its pipe end is closed by :func:`finish_watched`."""
    if not cmd or not all(isinstance(part, str) for part in cmd):
        raise ValueError(f"cmd: expected a non-empty list of strings, got {cmd!r}")
    read_fd, write_fd = os.pipe()
    try:
        proc = subprocess.Popen(
            cmd,
            cwd=cwd,
            env={**env, WATCH_FD_ENV: str(read_fd)},
            pass_fds=(read_fd,),
            preexec_fn=_die_with_parent_hook(),
            start_new_session=True,
            **kwargs,
        )
    except BaseException:
        os.close(write_fd)
        raise
    finally:
        os.close(read_fd)
    proc.w2s_watch_fd = write_fd  # type: ignore[attr-defined]
    return proc


def finish_watched(proc: subprocess.Popen) -> None:
    """Close the runner's end of ``proc``'s watch pipe (after it has ended)."""
    fd = getattr(proc, "w2s_watch_fd", None)
    if fd is not None:
        proc.w2s_watch_fd = None  # type: ignore[attr-defined]
        os.close(fd)


def kill_group(proc: subprocess.Popen) -> None:
    """End ``proc``'s whole process group (a session of :func:`spawn_watched`): SIGTERM, then
    SIGKILL after :data:`KILL_GRACE_SECONDS`; returns once it has ended (or was gone)."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
        try:
            proc.wait(timeout=KILL_GRACE_SECONDS)
            return
        except subprocess.TimeoutExpired:
            continue


def run_watched(
    cmd: list[str], *, cwd: Path, env: dict[str, str]
) -> subprocess.CompletedProcess[str]:
    """``subprocess.run(cmd, capture_output=True, text=True)`` through :func:`spawn_watched`:
    the command dies with this process; Ctrl-C or SIGTERM here ends its whole session."""
    proc = spawn_watched(
        cmd, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        out, err = proc.communicate()
    except BaseException:
        kill_group(proc)
        raise
    finally:
        finish_watched(proc)
    return subprocess.CompletedProcess(cmd, proc.returncode, out, err)


def pid_alive(pid: int) -> bool:
    """Whether a process with id ``pid`` exists (one we may not signal counts as alive)."""
    if isinstance(pid, bool) or not isinstance(pid, int) or pid <= 0:
        raise ValueError(f"pid: expected a positive process id, got {pid!r}")
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True
    return True


def sweep_dead_runs(build: Path) -> int:
    """Remove what runs that are gone left in ``build``: running notebook copies and site folders
    under temp names (:func:`w2s_utils.engine.cache.sweep_stale_temps`: the writer is known dead
    or silent for a day), and the pid-named ones of earlier versions whose pid is dead. Returns
    how many entries were removed."""
    build = Path(build)
    if not build.is_dir():
        return 0
    executed = build / EXECUTED_DIR
    folders = [build]
    if executed.is_dir():
        folders += [executed, *(p for p in executed.rglob("*") if p.is_dir())]
    removed = sum(sweep_stale_temps(f, max_age_s=STALE_BUILD_SECONDS) for f in folders)
    for folder in folders:
        for entry in folder.iterdir():
            m = _LEGACY_NAME.match(entry.name)
            if m is None or pid_alive(int(m.group(2) or m.group(3))):
                continue
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry, ignore_errors=True)
            else:
                entry.unlink(missing_ok=True)
            removed += 1
    return removed
