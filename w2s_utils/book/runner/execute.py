"""Executing one chapter: papermill in a child process, timeouts, the failure report.

A notebook runs with papermill's Python API in a child process (``python -m
w2s_utils.book.runner --execute-child SPEC``) in its own process group, with the current
interpreter as its kernel (:func:`write_kernelspec`) and ``preset`` injected. Papermill writes to
a temp name; only a run that finished moves it to ``_build/executed/<toc path>.ipynb`` (and, given
a key, stores it for reuse, :mod:`w2s_utils.book.runner.reuse`); a failed or timed-out run's copy
is kept as ``<name>.failed.ipynb`` and never reused. The report names the notebook, the failing
cell (index, first source line, error) and the executed copy.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from w2s_utils._validate import check_number
from w2s_utils.book.runner.notebooks import (
    CellFailure,
    executed_ok,
    failed_copy_path,
    find_failure,
    hide_injected_parameters,
)
from w2s_utils.book.runner.processes import finish_watched, kill_group, spawn_watched, watch_parent
from w2s_utils.book.runner.reuse import StoredRun, store_executed
from w2s_utils.engine.cache import temp_name

KERNEL_NAME = "python3"
#: The longest --timeout accepted (30 days); a larger or infinite one is a typo.
MAX_TIMEOUT_SECONDS = 30 * 24 * 3600.0
#: Exit status of the child when a cell ran past ``--cell-timeout`` (the kernel is interrupted,
#: so the cell's own output shows a KeyboardInterrupt: the status is what tells the truth).
CELL_TIMEOUT_EXIT = 3
CELL_TIMEOUT_MARK = "w2s-book-runner: cell timeout"
#: The child's command-line flag (``python -m w2s_utils.book.runner --execute-child SPEC``).
CHILD_FLAG = "--execute-child"
#: What a chapter's status means on the console and the build-info page.
STATUSES = ("ok", "reused", "failed", "timeout", "skipped")


@dataclass
class ChapterResult:
    """How one notebook went in this build: ``status`` is ``ok`` (executed, passed), ``reused``
    (a stored execution with the same key, :mod:`~w2s_utils.book.runner.reuse`), ``failed``,
    ``timeout`` or ``skipped`` (not chosen by ``--only``, or after a failure); ``seconds`` the
    wall time it took in this build; ``executed`` its executed copy; ``stored`` the stored
    execution it was reused from (or was stored as); ``note`` what else the reader should know."""

    notebook: Path
    status: str
    seconds: float = 0.0
    executed: Path | None = None
    message: str = ""
    stored: StoredRun | None = None
    note: str = ""

    @property
    def passed(self) -> bool:
        """Executed and passed now, or reused from a passing execution."""
        return self.status in ("ok", "reused")


def write_kernelspec(folder: Path, python: str = sys.executable) -> Path:
    """A private kernelspec ``python3`` for ``python``; returns the JUPYTER_PATH folder to use."""
    spec_dir = Path(folder) / "kernels" / KERNEL_NAME
    spec_dir.mkdir(parents=True, exist_ok=True)
    spec = {
        "argv": [python, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "Python 3 (w2s book runner)",
        "language": "python",
        "metadata": {"debugger": False},
    }
    (spec_dir / "kernel.json").write_text(json.dumps(spec, indent=1), encoding="utf-8")
    return Path(folder)


def execute_child(args: list[str]) -> int:
    """Child process: run one notebook with papermill's Python API (``args``: the JSON spec that
    :func:`execute_notebook` passes); 0 when it finished, :data:`CELL_TIMEOUT_EXIT` when a cell
    ran past its limit (a failing cell raises: papermill's exception ends the child)."""
    watch_parent()
    import papermill  # the child alone needs it (a slow import: the runner stays light)

    if len(args) != 1:
        raise ValueError(f"{CHILD_FLAG}: expected one JSON spec, got {len(args)} arguments")
    spec = json.loads(args[0])
    try:
        papermill.execute_notebook(
            spec["input"],
            spec["output"],
            parameters=spec["parameters"],
            kernel_name=KERNEL_NAME,
            language="python",
            execution_timeout=spec["cell_timeout"],
            cwd=spec["cwd"],
            progress_bar=False,
            request_save_on_cell_execute=True,
        )
    except TimeoutError:  # nbclient's CellTimeoutError is a TimeoutError
        print(f"{CELL_TIMEOUT_MARK} after {spec['cell_timeout']} s", flush=True)
        return CELL_TIMEOUT_EXIT
    hide_injected_parameters(Path(spec["output"]))
    return 0


def check_timeouts(
    timeout: Any, cell_timeout: Any, names: tuple[str, str] = ("timeout", "cell_timeout")
) -> tuple[float, int | None]:
    """``(timeout, cell_timeout)`` checked: a finite number of seconds in (0, 30 days] and, if
    given, a whole number of seconds >= 1 (nbclient counts whole seconds; 0.5 is never truncated
    to 0, which would turn the limit off). ValueError naming the option otherwise."""
    if isinstance(timeout, float) and not math.isfinite(timeout):
        raise ValueError(
            f"{names[0]}: {timeout} is not a time limit: pass the seconds one notebook may take, "
            "more than 0 and at most 30 days (default 1800)"
        )
    t = check_number(timeout, names[0])
    if not 0 < t <= MAX_TIMEOUT_SECONDS:
        raise ValueError(
            f"{names[0]}: {t:g} s is not a time limit: pass the seconds one notebook may take, "
            "more than 0 and at most 30 days (default 1800)"
        )
    if cell_timeout is None:
        return t, None
    c = check_number(cell_timeout, names[1])
    if not 1 <= c <= MAX_TIMEOUT_SECONDS or c != int(c):
        hint = f"{math.floor(c)} or {math.ceil(c)}" if 1 < c < MAX_TIMEOUT_SECONDS else "e.g. 600"
        raise ValueError(
            f"{names[1]}: {c:g} is not a whole number of seconds from 1 to 30 days (cells are "
            f"timed in whole seconds; 0.5 is never rounded to 0, which would turn the limit "
            f"off); pass {hint}"
        )
    return t, int(c)


def _child_env(jupyter_path: Path) -> dict[str, str]:
    env = dict(os.environ)
    env["JUPYTER_PATH"] = os.pathsep.join(
        [str(jupyter_path), *filter(None, [os.environ.get("JUPYTER_PATH")])]
    )
    env.setdefault("PYDEVD_DISABLE_FILE_VALIDATION", "1")
    env.setdefault("MPLBACKEND", "module://matplotlib_inline.backend_inline")
    # progress belongs on the console, not on the page: tqdm bars are off in executed chapters
    # (the runner prints one line per chapter to the console)
    env["TQDM_DISABLE"] = "1"
    return env


def _store(
    key: str, executed: Path, seconds: float, preset: str, device: str, started: dt.datetime
) -> tuple[StoredRun | None, str]:
    try:
        stored = store_executed(
            key, executed, seconds=seconds, preset=preset, device=device, executed_at=started
        )
    except (OSError, ValueError) as err:  # a full disk must not fail a chapter that passed
        return None, f"not stored for reuse ({err})"
    return stored, ""


def execute_notebook(
    root: Path,
    notebook: Path,
    *,
    preset: str,
    timeout: float,
    cell_timeout: float | None = None,
    out_dir: Path,
    jupyter_path: Path,
    store_key: str | None = None,
    device: str = "",
) -> ChapterResult:
    """Execute ``root/notebook`` into ``out_dir/notebook`` in a child process group.

    Papermill writes to a temporary copy (a :func:`w2s_utils.engine.cache.temp_name`); only a
    run that finished moves it to ``out_dir/notebook`` and, with a ``store_key``, stores it for
    reuse (recording ``device``, the device type it ran on). A failed or timed-out run's copy goes
    to :func:`failed_copy_path` (and the earlier passing copy is removed), so a half-executed copy
    is never reused as if it passed. ``timeout`` is in seconds; ``cell_timeout`` in whole seconds
    (nbclient counts whole seconds), default ``timeout`` rounded up.
    """
    timeout, cell_timeout = check_timeouts(timeout, cell_timeout)
    source = Path(root) / notebook
    executed = Path(out_dir) / notebook
    executed.parent.mkdir(parents=True, exist_ok=True)
    executed.unlink(missing_ok=True)
    failed_copy = failed_copy_path(executed)
    failed_copy.unlink(missing_ok=True)
    running = executed.with_name(temp_name(executed.name, ".ipynb"))
    spec = {
        "input": str(source),
        "output": str(running),
        "parameters": {"preset": preset},
        "cell_timeout": cell_timeout if cell_timeout is not None else math.ceil(timeout),
        "cwd": str(source.parent),
    }
    cmd = [sys.executable, "-m", "w2s_utils.book.runner", CHILD_FLAG, json.dumps(spec)]
    started = dt.datetime.now(dt.timezone.utc)
    start = time.perf_counter()
    with tempfile.TemporaryFile() as log:
        proc = spawn_watched(
            cmd, cwd=root, env=_child_env(jupyter_path), stdout=log, stderr=subprocess.STDOUT
        )
        try:
            rc = proc.wait(timeout=timeout)
            timed_out = False
        except subprocess.TimeoutExpired:
            kill_group(proc)
            rc, timed_out = -1, True
        except BaseException:  # interrupted (Ctrl-C, SIGTERM): take the kernel down too
            kill_group(proc)
            running.unlink(missing_ok=True)  # a half-executed copy is never left behind
            raise
        finally:
            finish_watched(proc)
        log.seek(0)
        child_log = log.read().decode("utf-8", "replace")
    seconds = time.perf_counter() - start
    if rc == 0 and not timed_out and executed_ok(running):
        os.replace(running, executed)
        stored, note = None, ""
        if store_key is not None:
            stored, note = _store(store_key, executed, seconds, preset, device, started)
        return ChapterResult(notebook, "ok", seconds, executed, stored=stored, note=note)
    if running.is_file():
        os.replace(running, failed_copy)
    failure = find_failure(failed_copy)
    cell_timed_out = rc == CELL_TIMEOUT_EXIT or CELL_TIMEOUT_MARK in child_log
    status = "timeout" if timed_out or cell_timed_out else "failed"
    return ChapterResult(
        notebook,
        status,
        seconds,
        failed_copy if failed_copy.is_file() else None,
        failure_message(
            notebook,
            failed_copy,
            failure,
            child_log,
            timed_out,
            timeout,
            cell_timeout=cell_timeout or timeout if cell_timed_out else None,
        ),
    )


def failure_message(
    notebook: Path,
    executed: Path,
    failure: CellFailure | None,
    child_log: str,
    timed_out: bool,
    timeout: float,
    cell_timeout: float | None = None,
) -> str:
    """What to tell the reader when a notebook fails (``cell_timeout``: a cell ran past it)."""
    lines = [f"notebook {notebook.as_posix()} failed"]
    if timed_out:
        lines[0] = (
            f"notebook {notebook.as_posix()} timed out: it ran past the per-notebook limit of "
            f"{timeout:.0f} s; raise --timeout or make the chapter faster"
        )
    elif cell_timeout is not None:
        lines[0] = (
            f"notebook {notebook.as_posix()} timed out: a cell ran past the per-cell limit of "
            f"{cell_timeout:.0f} s; raise --cell-timeout or make the cell faster"
        )
    if failure is not None:
        where = f"cell {failure.index} of the executed copy"
        if failure.source_index is not None and failure.source_index != failure.index:
            where += f" (cell {failure.source_index} of the source notebook)"
        label = "timed-out cell" if (timed_out or cell_timeout is not None) else "failing cell"
        lines.append(f"  {label}: {where}: {failure.first_line!r}")
        error = failure.error
        if cell_timeout is not None and error.startswith("KeyboardInterrupt"):
            error = f"timeout: interrupted after {cell_timeout:.0f} s (--cell-timeout)"
        elif timed_out and error.startswith("KeyboardInterrupt"):
            error = f"timeout: the notebook was stopped after {timeout:.0f} s (--timeout)"
        lines.append(f"  error: {error}")
    else:
        tail = [ln for ln in child_log.strip().splitlines() if ln.strip()][-15:]
        lines.append("  no failing cell recorded; last lines of the runner:")
        lines.extend("    " + ln for ln in tail)
    if Path(executed).is_file():
        lines.append(f"  executed copy (incomplete, never reused): {executed}")
    return "\n".join(lines)
