"""The site: the staged source tree, the Jupyter Book build aside, the swap into ``_build/html``.

1. :func:`stage_sources` assembles ``_build/src``: config, toc, ``book/``, ``CITATION.cff``, the
   pages the toc names and the executed notebooks at their toc paths (an incomplete one with a
   warning banner).
2. :func:`build_html` builds the HTML site from that tree with Jupyter Book 1
   (``execute_notebooks: off``), nitpicky and with warnings as errors, aside (a temp name); the
   finished site is then swapped into ``_build/html``. A failed build leaves the previous site as
   it was; files of the previous site named in ``keep`` (the PDF, which ``make pdf`` builds after
   the site) move into the new site when it has none, so a page's link to them keeps working.
"""

from __future__ import annotations

import os
import re
import shutil
import sys
from collections.abc import Callable, Iterable
from pathlib import Path

import nbformat

from w2s_utils.book.runner.processes import run_watched
from w2s_utils.book.runner.toc import (
    BUILD_DIR,
    HTML_DIR,
    STAGING_DIR,
    resolve_entry,
    toc_entries,
    toc_notebooks,
)
from w2s_utils.engine.cache import notice, temp_name

MATHJAX_FILE = Path("book/_extra/mathjax/tex-chtml.js")
ANSI_ESCAPE = re.compile(r"\x1b\[[0-9;]*m")
STAGED_ITEMS = ("_config.yml", "_toc.yml", "CITATION.cff", "book")
FAILED_BANNER = (
    "```{{warning}}\nThis chapter did not finish in this build ({status}): its outputs are "
    "partial and its numbers are not to be trusted. See the build-information page.\n```"
)


def _stage_incomplete(src: Path, target: Path, status: str) -> None:
    """Copy an incomplete executed notebook with a warning banner as its first cell."""
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

    ``executed`` maps toc notebooks (relative paths) to their executed copies; a notebook without
    one is staged as its source (no outputs). ``incomplete`` maps notebooks whose executed copy did
    not finish (``--keep-going``) to their status; they are staged with a warning banner, so the
    site never looks complete when it is not.
    """
    incomplete = incomplete or {}
    staging = Path(build) / STAGING_DIR
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


def build_html(
    root: Path,
    staging: Path,
    *,
    keep: Iterable[str] = (),
    log: Callable[[str], None] = notice,
) -> Path:
    """Jupyter Book 1 build of ``staging`` into ``root/_build/html`` (-n -W --keep-going).

    The site is built aside (``_build/.html-new.tmp-...``, a temp name) and swapped in only when
    the build succeeded; a failed build leaves the previous site untouched and removes its partial
    output; a killed one's is swept by the next run
    (:func:`w2s_utils.book.runner.processes.sweep_dead_runs`). The files named in ``keep``
    (relative to the site) move from the previous site into the new one when it lacks them
    (reported through ``log``).
    """
    keep = [str(name) for name in keep]
    if not (staging / MATHJAX_FILE).is_file():
        raise RuntimeError(
            f"bundled MathJax missing ({MATHJAX_FILE}): run `make mathjax` "
            "(npm install mathjax@3, copied to book/_extra/mathjax) and build again"
        )
    html = root / BUILD_DIR / HTML_DIR
    aside = root / BUILD_DIR / temp_name("html-new")
    try:
        new_site = _build_html_into(root, staging, aside)
        for name in keep:
            if (html / name).is_file() and not (new_site / name).exists():
                (new_site / name).parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(html / name, new_site / name)
                log(
                    f"kept {name} of the previous site in the new one (built from an earlier "
                    "build: rebuild it with `make pdf` or `python -m w2s_utils book --pdf`)"
                )
        swap_in(new_site, html)
    finally:
        shutil.rmtree(aside, ignore_errors=True)
    return html


def swap_in(new_site: Path, html: Path) -> None:
    """Replace ``html`` by ``new_site`` with renames (the old site is removed only afterwards;
    if the second rename fails, the old site is put back)."""
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
