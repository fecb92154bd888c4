"""The book runner: ``python -m w2s_utils book [--preset ci] [--only CHAPTER] [--keep-going] ...``.

1. Executes every notebook listed in ``_toc.yml`` with papermill, one at a time, in a child
   process (kernel: the current interpreter), injecting ``preset``; per-cell and per-notebook
   timeouts; executed copies go to ``_build/executed/<toc path>.ipynb`` only when every cell
   finished (a failed or timed-out run's copy is kept as ``<name>.failed.ipynb`` and never reused).
2. Assembles a staging source tree ``_build/src`` (config, toc, ``book/``, ``CITATION.cff`` and the
   executed notebooks at their toc paths) and writes the build-info page into it.
3. Builds the HTML site from that tree with Jupyter Book 1 (``execute_notebooks: off``), nitpicky
   and with warnings as errors, aside; the finished site is then swapped into ``_build/html`` (a
   failed build leaves the previous site as it was).

A failing notebook stops the run with the notebook, the failing cell (index, first source line,
error) and the path of its executed copy. Progress and failure reports go to stderr.

Faults leave nothing running and nothing half-built. Every child (papermill, Jupyter Book) dies
with the runner, even on ``kill -9``: on Linux it gets a parent-death signal
(``prctl(PR_SET_PDEATHSIG, SIGKILL)``), and everywhere it watches a pipe from the runner and ends
itself when the pipe closes; a notebook's kernel ends when its papermill process does (ipykernel
polls its parent). Work in progress lives under temp names
(:func:`w2s_utils.engine.cache.temp_name`); every run first sweeps those of runs that are gone.
"""

from __future__ import annotations

import argparse
import ctypes
import datetime as dt
import json
import math
import os
import platform
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

from w2s_utils._validate import check_number
from w2s_utils.engine.cache import notice, sweep_stale_temps, temp_name
from w2s_utils.engine.presets import get_preset

BUILD_DIR = "_build"
EXECUTED_DIR = "executed"
STAGING_DIR = "src"
HTML_DIR = "html"
KERNEL_NAME = "python3"
MATHJAX_FILE = Path("book/_extra/mathjax/tex-chtml.js")
BUILD_INFO_PAGE = Path("book/build_info.md")
BUILD_INFO_START = "<!-- build-info:start -->"
BUILD_INFO_END = "<!-- build-info:end -->"
ANSI_ESCAPE = re.compile(r"\x1b\[[0-9;]*m")
STAGED_ITEMS = ("_config.yml", "_toc.yml", "CITATION.cff", "book")
#: A run's own work in progress older than this (no write for a day) belongs to nobody.
STALE_BUILD_SECONDS = 24 * 3600.0
#: The longest --timeout accepted (30 days); a larger or infinite one is a typo.
MAX_TIMEOUT_SECONDS = 30 * 24 * 3600.0
#: Environment variable naming the file descriptor a child watches (see :func:`watch_parent`).
WATCH_FD_ENV = "W2S_PARENT_WATCH_FD"
VERSION_PACKAGES = (
    "w2s-utils",
    "torch",
    "transformers",
    "numpy",
    "scipy",
    "scikit-learn",
    "pandas",
    "matplotlib",
    "datasets",
    "jupyter-book",
    "sphinx",
    "myst-nb",
    "sphinx-proof",
    "sphinxcontrib-bibtex",
    "sphinx-book-theme",
    "papermill",
    "ipykernel",
)


# --------------------------------------------------------------------------------------- toc


def find_root(start: Path | None = None) -> Path:
    """The repository root: the first folder with ``_toc.yml`` (cwd upwards, then the package)."""
    candidates = []
    here = (start or Path.cwd()).resolve()
    candidates.extend([here, *here.parents])
    candidates.append(Path(__file__).resolve().parents[1])
    for folder in candidates:
        if (folder / "_toc.yml").is_file() and (folder / "_config.yml").is_file():
            return folder
    raise FileNotFoundError(
        f"no _toc.yml/_config.yml found from {here} upwards: run from the repository root "
        "or pass --root"
    )


def check_root(root: str | os.PathLike[str]) -> Path:
    """A ``--root`` that is a folder holding ``_toc.yml`` and ``_config.yml``, else ValueError."""
    path = Path(root).expanduser()
    if not path.exists():
        raise ValueError(f"--root {root}: no such folder; pass the repository root")
    if not path.is_dir():
        raise ValueError(f"--root {root}: is not a folder; pass the repository root")
    missing = [n for n in ("_toc.yml", "_config.yml") if not (path / n).is_file()]
    if missing:
        raise ValueError(
            f"--root {root}: has no {' or '.join(missing)}; pass the repository root (the folder "
            "with _toc.yml and _config.yml)"
        )
    return path.resolve()


def _walk_toc(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        for key in ("root", "file"):
            if isinstance(node.get(key), str):
                yield node[key]
        for key in ("parts", "chapters", "sections", "subtrees", "entries"):
            for child in node.get(key) or []:
                yield from _walk_toc(child)
    elif isinstance(node, list):
        for child in node:
            yield from _walk_toc(child)


def toc_entries(root: Path) -> list[str]:
    """Every ``file``/``root`` entry of ``_toc.yml``, in reading order (without suffix)."""
    import yaml

    data = yaml.safe_load((root / "_toc.yml").read_text(encoding="utf-8"))
    if not isinstance(data, dict) or "root" not in data:
        raise ValueError(f"{root / '_toc.yml'}: expected a jb-book toc with a 'root' entry")
    return list(dict.fromkeys(_walk_toc(data)))


def resolve_entry(root: Path, entry: str) -> Path | None:
    """The file behind a toc entry (``.ipynb``, ``.md`` or the exact path), or None."""
    base = root / entry
    if base.suffix in (".ipynb", ".md") and base.is_file():
        return base
    for suffix in (".ipynb", ".md"):
        path = base.with_name(base.name + suffix)
        if path.is_file():
            return path
    return None


def toc_notebooks(root: Path) -> list[Path]:
    """Notebooks listed in the toc, relative to ``root``; missing toc files raise."""
    notebooks = []
    missing = []
    for entry in toc_entries(root):
        path = resolve_entry(root, entry)
        if path is None:
            missing.append(entry)
        elif path.suffix == ".ipynb":
            notebooks.append(path.relative_to(root))
    if missing:
        raise FileNotFoundError(f"_toc.yml lists files that do not exist: {', '.join(missing)}")
    return notebooks


def select_notebooks(notebooks: list[Path], only: str | None) -> list[Path]:
    """Filter by ``--only`` (a stem like ``01_pipeline``, a path, or a unique prefix); ``None``
    keeps every notebook, an empty or blank ``only`` is an error (it names no chapter)."""
    if only is None:
        return notebooks
    if not only.strip():
        names = ", ".join(nb.stem for nb in notebooks)
        raise ValueError(
            f"--only {only!r}: names no chapter; pass one of: {names} (or leave out --only to "
            "run every chapter)"
        )
    key = only.removesuffix(".ipynb")
    hits = [nb for nb in notebooks if key in (nb.stem, nb.with_suffix("").as_posix())]
    if not hits:
        hits = [nb for nb in notebooks if nb.stem.startswith(Path(key).name)]
    if len(hits) != 1:
        names = ", ".join(nb.stem for nb in notebooks)
        raise ValueError(f"--only {only!r} matches {len(hits)} chapters; choose one of: {names}")
    return hits


# --------------------------------------------------------------------------------- execution


@dataclass
class ChapterResult:
    """How one notebook went."""

    notebook: Path
    status: str  # "ok", "failed", "timeout", "skipped"
    seconds: float = 0.0
    executed: Path | None = None
    message: str = ""


@dataclass
class CellFailure:
    """The failing cell of an executed notebook."""

    index: int
    source_index: int | None
    first_line: str
    error: str


def write_kernelspec(folder: Path, python: str = sys.executable) -> Path:
    """A private kernelspec ``python3`` for ``python``; returns the JUPYTER_PATH folder to use."""
    spec_dir = folder / "kernels" / KERNEL_NAME
    spec_dir.mkdir(parents=True, exist_ok=True)
    spec = {
        "argv": [python, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "Python 3 (w2s book runner)",
        "language": "python",
        "metadata": {"debugger": False},
    }
    (spec_dir / "kernel.json").write_text(json.dumps(spec, indent=1), encoding="utf-8")
    return folder


def find_failure(executed: Path) -> CellFailure | None:
    """The first cell with an error output, else the cell papermill marked failed or running."""
    import nbformat

    if not executed.is_file():
        return None
    nb = nbformat.read(executed, as_version=4)
    inserted = [  # cells papermill adds: injected parameters, error banners and anchors
        bool({"injected-parameters", "papermill-error-cell-tag"} & set(c.metadata.get("tags", [])))
        for c in nb.cells
    ]
    candidates: list[tuple[int, str]] = []
    for i, cell in enumerate(nb.cells):
        if cell.cell_type != "code":
            continue
        for out in cell.get("outputs", []):
            if out.get("output_type") == "error":
                candidates.append((i, f"{out.get('ename', 'Error')}: {out.get('evalue', '')}"))
                break
        if candidates:
            break
    if not candidates:
        for i, cell in enumerate(nb.cells):
            pm = cell.get("metadata", {}).get("papermill", {})
            if pm.get("exception") or pm.get("status") in ("failed", "running"):
                candidates.append((i, f"cell did not finish (papermill status {pm.get('status')})"))
                break
    if not candidates:
        return None
    index, error = candidates[0]
    source = nb.cells[index].source.strip().splitlines()
    source_index = index - sum(inserted[:index])
    return CellFailure(index, source_index, source[0] if source else "", error)


#: Exit status of the child when a cell ran past ``--cell-timeout`` (the kernel is interrupted,
#: so the cell's own output shows a KeyboardInterrupt: the status is what tells the truth).
CELL_TIMEOUT_EXIT = 3
CELL_TIMEOUT_MARK = "w2s-book-runner: cell timeout"


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


def _execute_child(args: list[str]) -> int:
    """Child process: run one notebook with papermill's Python API."""
    watch_parent()
    import papermill

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
    _hide_injected_parameters(Path(spec["output"]))
    return 0


def executed_ok(path: Path) -> bool:
    """Whether ``path`` is a *complete* executed copy: every code cell completed by papermill, no
    error output, no papermill exception. A failed or timed-out run's copy is never complete
    (a cell interrupted by a timeout shows a KeyboardInterrupt error output)."""
    import nbformat

    if not path.is_file():
        return False
    try:
        nb = nbformat.read(path, as_version=4)
    except Exception:  # unreadable or truncated JSON: not a usable copy
        return False
    if (nb.metadata.get("papermill") or {}).get("exception"):
        return False
    code = [c for c in nb.cells if c.cell_type == "code"]
    for cell in code:
        pm = cell.get("metadata", {}).get("papermill", {})
        if pm.get("status") != "completed" or pm.get("exception"):
            return False
        if any(out.get("output_type") == "error" for out in cell.get("outputs", [])):
            return False
    return bool(code) or bool(nb.metadata.get("papermill"))


def failed_copy_path(executed: Path) -> Path:
    """Where a failed or timed-out run's executed copy is kept (never at the reusable path)."""
    return executed.with_name(executed.stem + ".failed.ipynb")


def _hide_injected_parameters(path: Path) -> None:
    """Tag papermill's injected-parameters cell ``remove-cell``: the page shows the chapter's own
    parameters cell, and the build-info page records the preset it ran with."""
    import nbformat

    nb = nbformat.read(path, as_version=4)
    for cell in nb.cells:
        tags = cell.metadata.setdefault("tags", [])
        if "injected-parameters" in tags and "remove-cell" not in tags:
            tags.append("remove-cell")
    tmp = path.with_name(path.name + ".tmp")
    nbformat.write(nb, tmp)
    os.replace(tmp, path)


_PR_SET_PDEATHSIG = 1


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
        _kill_group(proc)
        raise
    finally:
        finish_watched(proc)
    return subprocess.CompletedProcess(cmd, proc.returncode, out, err)


def execute_notebook(
    root: Path,
    notebook: Path,
    *,
    preset: str,
    timeout: float,
    cell_timeout: float | None = None,
    out_dir: Path,
    jupyter_path: Path,
) -> ChapterResult:
    """Execute ``root/notebook`` into ``out_dir/notebook`` in a child process group.

    Papermill writes to a temporary copy (a :func:`w2s_utils.engine.cache.temp_name`); only a
    run that finished moves it to ``out_dir/notebook``. A failed or timed-out run's copy goes to
    :func:`failed_copy_path` (and the earlier passing copy is removed), so a half-executed copy is
    never reused as if it passed. ``timeout`` is in seconds; ``cell_timeout`` in whole seconds
    (nbclient counts whole seconds), default ``timeout`` rounded up.
    """
    source = root / notebook
    executed = out_dir / notebook
    executed.parent.mkdir(parents=True, exist_ok=True)
    executed.unlink(missing_ok=True)
    failed_copy = failed_copy_path(executed)
    failed_copy.unlink(missing_ok=True)
    running = executed.with_name(temp_name(executed.name, ".ipynb"))
    spec = {
        "input": str(source),
        "output": str(running),
        "parameters": {"preset": preset},
        "cell_timeout": int(cell_timeout) if cell_timeout is not None else math.ceil(timeout),
        "cwd": str(source.parent),
    }
    env = dict(os.environ)
    env["JUPYTER_PATH"] = os.pathsep.join(
        [str(jupyter_path), *filter(None, [os.environ.get("JUPYTER_PATH")])]
    )
    env.setdefault("PYDEVD_DISABLE_FILE_VALIDATION", "1")
    env.setdefault("MPLBACKEND", "module://matplotlib_inline.backend_inline")
    # progress belongs on the console, not on the page: tqdm bars are off in executed chapters
    # (the runner prints one line per chapter to the console)
    env["TQDM_DISABLE"] = "1"
    cmd = [sys.executable, "-m", "w2s_utils.book.runner", "--execute-child", json.dumps(spec)]
    start = time.perf_counter()
    with tempfile.TemporaryFile() as log:
        proc = spawn_watched(cmd, cwd=root, env=env, stdout=log, stderr=subprocess.STDOUT)
        try:
            rc = proc.wait(timeout=timeout)
            timed_out = False
        except subprocess.TimeoutExpired:
            _kill_group(proc)
            rc, timed_out = -1, True
        except BaseException:  # interrupted (Ctrl-C, SIGTERM): take the kernel down too
            _kill_group(proc)
            running.unlink(missing_ok=True)  # a half-executed copy is never left behind
            raise
        finally:
            finish_watched(proc)
        log.seek(0)
        child_log = log.read().decode("utf-8", "replace")
    seconds = time.perf_counter() - start
    if rc == 0 and not timed_out and executed_ok(running):
        os.replace(running, executed)
        return ChapterResult(notebook, "ok", seconds, executed)
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


def _kill_group(proc: subprocess.Popen) -> None:
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
        try:
            proc.wait(timeout=10)
            return
        except subprocess.TimeoutExpired:
            continue


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
    if executed.is_file():
        lines.append(f"  executed copy (incomplete, never reused): {executed}")
    return "\n".join(lines)


# ------------------------------------------------------------------------------------ staging


FAILED_BANNER = (
    "```{{warning}}\nThis chapter did not finish in this build ({status}): its outputs are "
    "partial and its numbers are not to be trusted. See the build-information page.\n```"
)


def _stage_incomplete(src: Path, target: Path, status: str) -> None:
    """Copy an incomplete executed notebook with a warning banner as its first cell."""
    import nbformat

    nb = nbformat.read(src, as_version=4)
    nb.cells.insert(0, nbformat.v4.new_markdown_cell(FAILED_BANNER.format(status=status)))
    nbformat.write(nb, target)


def stage_sources(
    root: Path,
    build: Path,
    executed: dict[Path, Path],
    incomplete: dict[Path, str] | None = None,
) -> Path:
    """Fresh ``build/src`` with the book's sources and the executed notebooks at toc paths.

    ``incomplete`` maps notebooks whose executed copy did not finish (``--keep-going``) to their
    status; they are staged with a warning banner, so the site never looks complete when it is not.
    """
    incomplete = incomplete or {}
    staging = build / STAGING_DIR
    if staging.exists():
        shutil.rmtree(staging)
    staging.mkdir(parents=True)
    for name in STAGED_ITEMS:
        src = root / name
        if src.is_dir():
            shutil.copytree(src, staging / name, ignore=shutil.ignore_patterns("__pycache__"))
        elif src.is_file():
            shutil.copy2(src, staging / name)
    for entry in toc_entries(root):  # pages the toc names outside the staged items
        page = resolve_entry(root, entry)
        if page is None or page.suffix == ".ipynb" or (staging / page.relative_to(root)).exists():
            continue
        target = staging / page.relative_to(root)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(page, target)
    for notebook in toc_notebooks(root):
        target = staging / notebook
        target.parent.mkdir(parents=True, exist_ok=True)
        if notebook in incomplete and notebook in executed:
            _stage_incomplete(executed[notebook], target, incomplete[notebook])
        else:
            shutil.copy2(executed.get(notebook, root / notebook), target)
    return staging


def _git_commit(root: Path) -> str:
    try:
        sha = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=root,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown (not a git checkout)"
    return sha + (" (with uncommitted changes)" if dirty else "")


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _device() -> str:
    try:
        import torch
    except ImportError:
        return "torch not installed"
    if torch.cuda.is_available():
        names = {torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())}
        return f"CUDA {torch.version.cuda}: {torch.cuda.device_count()} x {', '.join(names)}"
    return "CPU only (no CUDA device)"


def _version(name: str) -> str:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return "not installed"


@dataclass
class BuildRecord:
    """What the build-info page shows."""

    preset: str
    started: dt.datetime
    chapters: list[ChapterResult] = field(default_factory=list)


def build_info_markdown(root: Path, record: BuildRecord) -> str:
    """The body of the build-info page (MyST markdown)."""
    rows = [
        ("Preset", f"`{record.preset}`"),
        ("Built (UTC)", record.started.strftime("%Y-%m-%d %H:%M")),
        ("Git commit", f"`{_git_commit(root)}`"),
        ("Python", f"{platform.python_version()} ({platform.python_implementation()})"),
        ("Platform", platform.platform()),
        ("CPU", f"{_cpu_model()}, {os.cpu_count()} logical cores"),
        ("Device", _device()),
    ]
    out = ["| Setting | Value |", "| --- | --- |", *[f"| {k} | {v} |" for k, v in rows], ""]
    out += ["## Chapters", "", "| Notebook | Status | Time (s) |", "| --- | --- | ---: |"]
    status_text = {
        "ok": "executed",
        "failed": "FAILED",
        "timeout": "TIMED OUT",
        "skipped": "not executed in this run",
    }
    for ch in record.chapters:
        secs = f"{ch.seconds:.1f}" if ch.status != "skipped" else "-"
        out.append(f"| `{ch.notebook.as_posix()}` | {status_text[ch.status]} | {secs} |")
    out += ["", "## Package versions", "", "| Package | Version |", "| --- | --- |"]
    out += [f"| `{name}` | {_version(name)} |" for name in VERSION_PACKAGES]
    return "\n".join(out) + "\n"


def write_build_info(staging: Path, root: Path, record: BuildRecord) -> Path:
    """Fill the build-info template of the staging tree between its markers."""
    page = staging / BUILD_INFO_PAGE
    text = page.read_text(encoding="utf-8")
    if BUILD_INFO_START not in text or BUILD_INFO_END not in text:
        raise ValueError(f"{BUILD_INFO_PAGE}: the markers {BUILD_INFO_START} ... are missing")
    head, rest = text.split(BUILD_INFO_START, 1)
    _, tail = rest.split(BUILD_INFO_END, 1)
    body = build_info_markdown(root, record)
    page.write_text(head + BUILD_INFO_START + "\n" + body + BUILD_INFO_END + tail, encoding="utf-8")
    return page


# ---------------------------------------------------------------------------------- the site


def build_html(root: Path, staging: Path, *, log: Callable[[str], None] = notice) -> Path:
    """Jupyter Book 1 build of ``staging`` into ``root/_build/html`` (-n -W --keep-going).

    The site is built aside (``_build/.html-new.tmp-...``, a temp name) and swapped in only when
    the build succeeded; a failed build leaves the previous site untouched and removes its partial
    output; a killed one's is swept by the next run (:func:`sweep_dead_runs`).
    """
    if not (staging / MATHJAX_FILE).is_file():
        raise RuntimeError(
            f"bundled MathJax missing ({MATHJAX_FILE}): run `make mathjax` "
            "(npm install mathjax@3, copied to book/_extra/mathjax) and build again"
        )
    html = root / BUILD_DIR / HTML_DIR
    aside = root / BUILD_DIR / temp_name("html-new")
    try:
        new_site = _build_html_into(root, staging, aside)
        _swap_in(new_site, html)
    finally:
        shutil.rmtree(aside, ignore_errors=True)
    return html


def _swap_in(new_site: Path, html: Path) -> None:
    """Replace ``html`` by ``new_site`` with renames (the old site is removed only afterwards)."""
    old = html.with_name(temp_name("html-old"))
    if html.exists():
        os.replace(html, old)
    try:
        os.replace(new_site, html)
    except BaseException:
        if old.exists() and not html.exists():
            os.replace(old, html)
        raise
    shutil.rmtree(old, ignore_errors=True)


def _build_html_into(root: Path, staging: Path, out: Path) -> Path:
    """Run Jupyter Book with ``--path-output out``; return the finished ``out/_build/html``."""
    html = out / BUILD_DIR / HTML_DIR
    cmd = [
        sys.executable,
        "-c",
        "import sys; from w2s_utils.book.runner import watch_parent; watch_parent(); "
        "from jupyter_book.cli.main import main; sys.exit(main())",
        "build",
        str(staging),
        "--path-output",
        str(out),
        "--builder",
        "html",
        "--all",
        "-n",
        "-W",
        "--keep-going",
    ]
    env = dict(os.environ, NO_COLOR="1")
    proc = run_watched(cmd, cwd=root, env=env)
    output = ANSI_ESCAPE.sub("", proc.stdout + proc.stderr)
    (root / BUILD_DIR / "sphinx.log").write_text(output, encoding="utf-8")
    if proc.returncode != 0 or not (html / "index.html").is_file():
        warnings = [ln for ln in output.splitlines() if "WARNING" in ln or "ERROR" in ln]
        shown = "\n".join(warnings[-30:]) or "\n".join(output.splitlines()[-30:])
        raise RuntimeError(
            f"the site build failed (exit {proc.returncode}); the previous site in "
            f"{root / BUILD_DIR / HTML_DIR} (if any) is unchanged; full log: "
            f"{root / BUILD_DIR / 'sphinx.log'}\n"
            f"(paths under {staging} are copies of the sources; notebooks there are the "
            f"executed copies)\n{shown}"
        )
    return html


# -------------------------------------------------------------------------------------- main


def _check_preset(preset: str) -> None:
    """Unknown presets fail before any notebook runs (ValueError listing the valid ones)."""
    get_preset(preset)


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


def sweep_dead_runs(build: Path) -> int:
    """Remove what runs that are gone left in ``build``: running notebook copies and site folders
    under temp names (:func:`w2s_utils.engine.cache.sweep_stale_temps`: the writer is known dead
    or silent for a day), and the pid-named ones of earlier versions whose pid is dead."""
    if not build.is_dir():
        return 0
    folders = [build, *(p for p in (build / EXECUTED_DIR).rglob("*") if p.is_dir())]
    if (build / EXECUTED_DIR).is_dir():
        folders.append(build / EXECUTED_DIR)
    removed = sum(sweep_stale_temps(f, max_age_s=STALE_BUILD_SECONDS) for f in folders)
    legacy = re.compile(r"^\.(html-new|html-old)-(\d+)$|^\..*\.running-(\d+)\.ipynb$")
    for folder in folders:
        for entry in folder.iterdir():
            m = legacy.match(entry.name)
            if m is None or _alive(int(m.group(2) or m.group(3))):
                continue
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry, ignore_errors=True)
            else:
                entry.unlink(missing_ok=True)
            removed += 1
    return removed


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True
    return True


def run_book(
    *,
    root: Path,
    preset: str = "ci",
    only: str | None = None,
    keep_going: bool = False,
    timeout: float = 1800.0,
    cell_timeout: float | None = None,
    html: bool = True,
    log: Callable[[str], None] = notice,
) -> int:
    """Execute the book's notebooks and build the site; returns a process exit code.

    ``log`` gets the progress and failure reports (default: stderr). Runs that are gone have
    their leftovers swept first (:func:`sweep_dead_runs`).
    """
    timeout, cell_timeout = check_timeouts(timeout, cell_timeout)
    _check_preset(preset)
    record = BuildRecord(preset=preset, started=dt.datetime.now(dt.timezone.utc))
    build = root / BUILD_DIR
    swept = sweep_dead_runs(build)
    if swept:
        log(f"removed {swept} leftover(s) of earlier runs that did not finish (in {build})")
    out_dir = build / EXECUTED_DIR
    notebooks = toc_notebooks(root)
    chosen = select_notebooks(notebooks, only)
    jupyter_path = write_kernelspec(build / "kernel")
    executed: dict[Path, Path] = {}
    incomplete: dict[Path, str] = {}
    for nb in notebooks:  # earlier *complete* executed copies serve the chapters not run now
        if nb in chosen:
            continue
        if executed_ok(out_dir / nb):
            executed[nb] = out_dir / nb
        elif (out_dir / nb).is_file() or failed_copy_path(out_dir / nb).is_file():
            log(
                f"note: the earlier executed copy of {nb.as_posix()} is incomplete (failed or "
                "timed out); it is not reused: run that chapter again"
            )
    failures: list[ChapterResult] = []
    t0 = time.perf_counter()
    for i, nb in enumerate(chosen, 1):
        log(f"[{i}/{len(chosen)}] {nb.as_posix()} (preset {preset}) ...")
        result = execute_notebook(
            root,
            nb,
            preset=preset,
            timeout=timeout,
            cell_timeout=cell_timeout,
            out_dir=out_dir,
            jupyter_path=jupyter_path,
        )
        record.chapters.append(result)
        log(f"[{i}/{len(chosen)}] {nb.as_posix()}: {result.status} in {result.seconds:.1f} s")
        if result.executed is not None:
            executed[nb] = result.executed
        if result.status != "ok" and result.executed is not None:
            incomplete[nb] = "timed out" if result.status == "timeout" else "failed"
        if result.status != "ok":
            failures.append(result)
            log(result.message)
            if not keep_going:
                break
    done = {ch.notebook for ch in record.chapters}
    record.chapters += [ChapterResult(nb, "skipped") for nb in notebooks if nb not in done]
    n_ok = sum(ch.status == "ok" for ch in record.chapters)
    log(f"notebooks: {n_ok} ok, {len(failures)} failed, {time.perf_counter() - t0:.1f} s")
    if failures and not keep_going:
        log("stopped: fix the notebook above (or pass --keep-going to build anyway)")
        return 1
    if html:
        t1 = time.perf_counter()
        for nb in notebooks:
            if nb not in executed:
                log(
                    f"note: {nb.as_posix()} was never executed; the site shows it without "
                    "outputs (glued values then fail the build: run it once without --only)"
                )
        staging = stage_sources(root, build, executed, incomplete)
        write_build_info(staging, root, record)
        site = build_html(root, staging, log=log)
        log(f"site built in {time.perf_counter() - t1:.1f} s: {site / 'index.html'}")
    if failures:
        log("failed notebooks: " + ", ".join(f.notebook.as_posix() for f in failures))
        return 1
    return 0


def _terminate(signum: int, frame: Any) -> None:
    raise SystemExit(128 + signum)


def _cmd_book(args: argparse.Namespace) -> int:
    check_timeouts(args.timeout, args.cell_timeout, ("--timeout", "--cell-timeout"))
    # SIGTERM unwinds like Ctrl-C, so a running notebook's process group is killed with us
    signal.signal(signal.SIGTERM, _terminate)
    root = check_root(args.root) if args.root else find_root()
    return run_book(
        root=root,
        preset=args.preset,
        only=args.only,
        keep_going=args.keep_going,
        timeout=args.timeout,
        cell_timeout=args.cell_timeout,
        html=not args.no_html,
    )


def add_book_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Register ``book`` on the CLI's subparsers."""
    parser = subparsers.add_parser(
        "book",
        help="execute every chapter with papermill and build the HTML site",
        description="Execute every chapter listed in _toc.yml with papermill, then build the "
        "HTML site from the executed copies (_build/html) with warnings as errors.",
    )
    parser.add_argument("--preset", default="ci", help="value injected as `preset` (ci, paper)")
    parser.add_argument("--only", metavar="CHAPTER", help="execute one chapter, e.g. 01_pipeline")
    parser.add_argument(
        "--keep-going",
        action="store_true",
        help="run every notebook and build the site even when one fails (exit code still 1)",
    )
    parser.add_argument(
        "--timeout",
        type=float,
        default=1800.0,
        help="seconds allowed per notebook, > 0 and at most 30 days (1800)",
    )
    parser.add_argument(
        "--cell-timeout",
        type=float,
        default=None,
        help="whole seconds allowed per cell, >= 1 (default: --timeout)",
    )
    parser.add_argument("--no-html", action="store_true", help="execute only; skip the site")
    parser.add_argument("--root", help="repository root (default: found from the cwd)")
    parser.set_defaults(func=_cmd_book)
    return parser


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--execute-child":
        raise SystemExit(_execute_child(sys.argv[2:]))
    raise SystemExit("usage: python -m w2s_utils book --help")
