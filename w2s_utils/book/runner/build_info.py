"""The build-information page (``book/build_info.md``), filled by the runner between its markers.

It records what the book's text cannot know by itself: the preset, when and from which commit
the book was built, the library version, the machine and the device, the versions of the
packages, and per chapter the time it took in this build, whether it was executed or reused from
a stored execution (and when that execution ran and how long it took), and its cold time (the
chapter's glued ``frame_cold_text``, see :mod:`w2s_utils.book.frame`). Every time on the page is
measured by the build or glued by the chapter.
"""

from __future__ import annotations

import datetime as dt
import os
import platform
import subprocess
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path

import torch

from w2s_utils import __version__
from w2s_utils.book.runner.execute import ChapterResult
from w2s_utils.book.runner.notebooks import glued_text
from w2s_utils.engine.device import DEVICE_ENV, default_device

BUILD_INFO_PAGE = Path("book/build_info.md")
BUILD_INFO_START = "<!-- build-info:start -->"
BUILD_INFO_END = "<!-- build-info:end -->"
#: The glued value that holds a chapter's time on an empty cache, in words.
COLD_TIME_KEY = "frame_cold_text"
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
STATUS_TEXT = {
    "ok": "executed",
    "reused": "reused from the cache",
    "failed": "FAILED",
    "timeout": "TIMED OUT",
    "skipped": "not executed in this run",
}


@dataclass
class BuildRecord:
    """What the build-info page shows: the preset, when the build started (UTC), each chapter's
    result, and whether execution was forced (``--rerun``)."""

    preset: str
    started: dt.datetime
    chapters: list[ChapterResult] = field(default_factory=list)
    rerun: bool = False


def git_commit(root: Path) -> str:
    """The commit checked out at ``root`` (with a note when tracked files have changes)."""
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


def cpu_model() -> str:
    """The CPU's model name (``/proc/cpuinfo``, else what ``platform`` knows)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def device_text() -> str:
    """The device the chapters compute on (:func:`w2s_utils.engine.device.default_device`, so
    ``W2S_DEVICE=cpu`` on a GPU machine reads ``cpu``), with the GPU's name or why it is unused."""
    device = default_device()
    chosen = os.environ.get(DEVICE_ENV, "").strip()
    how = f" ({DEVICE_ENV}={chosen})" if chosen else ""
    if device.type == "cuda":
        index = device.index or 0
        name = torch.cuda.get_device_name(index)
        return f"`{device}`{how}: {name}, CUDA {torch.version.cuda}"
    if torch.cuda.is_available():
        return f"`cpu`{how}; {torch.cuda.device_count()} CUDA device(s) present, unused"
    return f"`cpu`{how} (no CUDA device)"


def package_version(name: str) -> str:
    """The installed version of the distribution ``name``, or ``not installed``."""
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return "not installed"


def _stored_text(ch: ChapterResult) -> str:
    run = ch.stored
    if run is None:
        return ch.note or ("not stored" if ch.status == "ok" else "-")
    if ch.status == "ok":
        return "this execution, stored for reuse" + (f" ({ch.note})" if ch.note else "")
    return f"executed {run.when()} in {run.seconds:.1f} s (preset `{run.preset}`, {run.device})"


def _cold_text(ch: ChapterResult) -> str:
    if ch.executed is None or ch.status in ("failed", "timeout"):
        return "-"
    return glued_text(ch.executed, COLD_TIME_KEY) or "not recorded"


def chapters_markdown(record: BuildRecord) -> list[str]:
    """The chapter table and the line of totals (MyST markdown lines)."""
    out = [
        "| Notebook | In this build | Time in this build (s) | Stored execution | Cold time |",
        "| --- | --- | ---: | --- | --- |",
    ]
    for ch in record.chapters:
        secs = f"{ch.seconds:.1f}" if ch.status != "skipped" else "-"
        status = STATUS_TEXT[ch.status]
        if ch.status == "skipped" and ch.executed is not None:
            status += " (an earlier executed copy)"
        out.append(
            f"| `{ch.notebook.as_posix()}` | {status} | {secs} | {_stored_text(ch)} "
            f"| {_cold_text(ch)} |"
        )
    executed = [ch for ch in record.chapters if ch.status == "ok"]
    reused = [ch for ch in record.chapters if ch.status == "reused"]
    out += [
        "",
        f"{len(executed)} chapter(s) executed in this build "
        f"({sum(ch.seconds for ch in executed):.1f} s), {len(reused)} reused from the cache "
        f"({sum(ch.seconds for ch in reused):.1f} s)"
        + (" (`--rerun`: every chosen chapter executed)" if record.rerun else "")
        + ". A chapter is reused when its notebook, the preset, the library's source, the "
        "versions of the packages that shape its outputs and the device type are those of a "
        "stored execution; its outputs (and the times it states) are that execution's. The cold "
        "time is the chapter's own estimate of its time on an empty cache.",
    ]
    return out


def build_info_markdown(root: Path, record: BuildRecord) -> str:
    """The body of the build-info page (MyST markdown)."""
    rows = [
        ("Preset", f"`{record.preset}`"),
        ("Built (UTC)", record.started.strftime("%Y-%m-%d %H:%M")),
        ("Library", f"`w2s_utils` {__version__}"),
        ("Git commit", f"`{git_commit(root)}`"),
        ("Python", f"{platform.python_version()} ({platform.python_implementation()})"),
        ("Platform", platform.platform()),
        ("CPU", f"{cpu_model()}, {os.cpu_count()} logical cores"),
        ("Device", device_text()),
    ]
    out = ["| Setting | Value |", "| --- | --- |", *[f"| {k} | {v} |" for k, v in rows], ""]
    out += ["## Chapters", "", *chapters_markdown(record)]
    out += ["", "## Package versions", "", "| Package | Version |", "| --- | --- |"]
    out += [f"| `{name}` | {package_version(name)} |" for name in VERSION_PACKAGES]
    return "\n".join(out) + "\n"


def write_build_info(staging: Path, root: Path, record: BuildRecord) -> Path:
    """Fill the build-info template of the staging tree between its markers."""
    page = Path(staging) / BUILD_INFO_PAGE
    text = page.read_text(encoding="utf-8")
    if BUILD_INFO_START not in text or BUILD_INFO_END not in text:
        raise ValueError(f"{BUILD_INFO_PAGE}: the markers {BUILD_INFO_START} ... are missing")
    head, rest = text.split(BUILD_INFO_START, 1)
    _, tail = rest.split(BUILD_INFO_END, 1)
    body = build_info_markdown(root, record)
    page.write_text(head + BUILD_INFO_START + "\n" + body + BUILD_INFO_END + tail, encoding="utf-8")
    return page
