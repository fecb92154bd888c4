"""The whole build: every chapter executed or reused, then the site (and the PDF, if asked).

:func:`run_book` is what ``python -m w2s_utils book`` runs:

1. sweeps what runs that are gone left in ``_build`` (:mod:`~w2s_utils.book.runner.processes`);
2. for each chapter chosen (every toc notebook, or ``--only`` one), reuses its stored execution
   when nothing it depends on changed (:mod:`~w2s_utils.book.runner.reuse`: no kernel starts),
   else executes it (:mod:`~w2s_utils.book.runner.execute`) and stores a passing execution;
   chapters not chosen come from a stored execution with their current key, else from their
   earlier complete executed copy;
3. stages the sources, writes the build-info page and builds the site, swapped into
   ``_build/html`` only when it built (:mod:`~w2s_utils.book.runner.site`); the previous site's
   PDF is kept across the swap;
4. with ``with_pdf=True`` (``--pdf``), builds the PDF from the new site
   (:func:`w2s_utils.book.pdf.main`).

A failing notebook stops the run (unless ``keep_going``) with the notebook, the failing cell and
the path of its executed copy. Progress and failure reports go to ``log`` (stderr by default).
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable
from pathlib import Path

from w2s_utils.book import pdf
from w2s_utils.book.runner.build_info import BuildRecord, write_build_info
from w2s_utils.book.runner.execute import (
    ChapterResult,
    check_timeouts,
    execute_notebook,
    write_kernelspec,
)
from w2s_utils.book.runner.notebooks import executed_ok, failed_copy_path
from w2s_utils.book.runner.processes import sweep_dead_runs
from w2s_utils.book.runner.reuse import (
    copy_stored,
    load_stored,
    rerun_requested,
    reuse_context,
    reuse_key,
    stored_path,
)
from w2s_utils.book.runner.site import build_html, stage_sources
from w2s_utils.book.runner.toc import BUILD_DIR, EXECUTED_DIR, select_notebooks, toc_notebooks
from w2s_utils.engine.cache import notice
from w2s_utils.engine.presets import get_preset

DAMAGED_NOTE = "its stored copy was damaged and removed"


def _reuse(
    notebook: Path, key: str, out_dir: Path, log: Callable[[str], None]
) -> tuple[ChapterResult | None, str]:
    """``(result, note)``: the chapter reused from its stored execution (copied to
    ``out_dir/notebook``, no kernel), or ``(None, note)`` on a miss (a damaged copy noted)."""
    had = stored_path(key).is_file()
    start = time.perf_counter()
    run = load_stored(key, log=log)
    if run is None:
        return None, DAMAGED_NOTE if had else ""
    target = out_dir / notebook
    copy_stored(run, target)
    failed_copy_path(target).unlink(missing_ok=True)
    return ChapterResult(notebook, "reused", time.perf_counter() - start, target, stored=run), ""


def _verdict(result: ChapterResult) -> str:
    if result.status == "reused" and result.stored is not None:
        return (
            f"reused in {result.seconds:.1f} s (executed {result.stored.when()} in "
            f"{result.stored.seconds:.1f} s)"
        )
    return f"{result.status} in {result.seconds:.1f} s"


def run_book(
    *,
    root: Path,
    preset: str = "ci",
    only: str | None = None,
    keep_going: bool = False,
    timeout: float = 1800.0,
    cell_timeout: float | None = None,
    html: bool = True,
    rerun: bool = False,
    with_pdf: bool = False,
    log: Callable[[str], None] = notice,
) -> int:
    """Execute (or reuse) the book's notebooks and build the site; returns a process exit code.

    ``timeout`` (seconds per notebook) and ``cell_timeout`` (whole seconds per cell) limit each
    execution; ``rerun`` (or ``W2S_RERUN=1``) executes the chosen chapters even when a stored
    execution matches; ``with_pdf`` builds the PDF after the site (it needs ``html``). ``log`` gets
    the progress and failure reports (default: stderr). Runs that are gone have their leftovers
    swept first.
    """
    timeout, cell_timeout = check_timeouts(timeout, cell_timeout)
    get_preset(preset)  # an unknown preset fails before any notebook runs
    rerun = rerun_requested(rerun)
    if with_pdf and not html:
        raise ValueError("--pdf: the PDF is printed from the site; drop --no-html (or --pdf)")
    root = Path(root)
    t_start = time.perf_counter()
    record = BuildRecord(preset=preset, started=dt.datetime.now(dt.timezone.utc), rerun=rerun)
    build = root / BUILD_DIR
    swept = sweep_dead_runs(build)
    if swept:
        log(f"removed {swept} leftover(s) of earlier runs that did not finish (in {build})")
    out_dir = build / EXECUTED_DIR
    notebooks = toc_notebooks(root)
    chosen = select_notebooks(notebooks, only)
    context = reuse_context()
    keys = {
        nb: reuse_key((root / nb).read_bytes(), {"preset": preset}, context) for nb in notebooks
    }
    results: dict[Path, ChapterResult] = {}
    executed: dict[Path, Path] = {}
    incomplete: dict[Path, str] = {}
    for nb in notebooks:  # chapters not chosen: a stored execution, else an earlier complete copy
        if nb in chosen:
            continue
        reused, _ = _reuse(nb, keys[nb], out_dir, log)
        if reused is not None:
            results[nb] = reused
            executed[nb] = out_dir / nb
        elif executed_ok(out_dir / nb):
            executed[nb] = out_dir / nb
        elif (out_dir / nb).is_file() or failed_copy_path(out_dir / nb).is_file():
            log(
                f"note: the earlier executed copy of {nb.as_posix()} is incomplete (failed or "
                "timed out); it is not reused: run that chapter again"
            )
    jupyter_path = write_kernelspec(build / "kernel")
    failures: list[ChapterResult] = []
    t0 = time.perf_counter()
    for i, nb in enumerate(chosen, 1):
        log(f"[{i}/{len(chosen)}] {nb.as_posix()} (preset {preset}) ...")
        result, note = (None, "") if rerun else _reuse(nb, keys[nb], out_dir, log)
        if result is None:
            result = execute_notebook(
                root,
                nb,
                preset=preset,
                timeout=timeout,
                cell_timeout=cell_timeout,
                out_dir=out_dir,
                jupyter_path=jupyter_path,
                store_key=keys[nb],
                device=str(context["device"]),
            )
            result.note = "; ".join(filter(None, [note, result.note]))
        results[nb] = result
        log(f"[{i}/{len(chosen)}] {nb.as_posix()}: {_verdict(result)}")
        if result.executed is not None:
            executed[nb] = result.executed
        if not result.passed and result.executed is not None:
            incomplete[nb] = "timed out" if result.status == "timeout" else "failed"
        if not result.passed:
            failures.append(result)
            log(result.message)
            if not keep_going:
                break
    record.chapters = [
        results.get(nb) or ChapterResult(nb, "skipped", executed=executed.get(nb))
        for nb in notebooks
    ]
    n_run = sum(results[nb].status == "ok" for nb in chosen if nb in results)
    n_reused = sum(ch.status == "reused" for ch in record.chapters)
    log(
        f"notebooks: {n_run} executed, {n_reused} reused, {len(failures)} failed, "
        f"{time.perf_counter() - t0:.1f} s"
    )
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
        site = build_html(root, staging, keep=(pdf.PDF_NAME,), log=log)
        log(f"site built in {time.perf_counter() - t1:.1f} s: {site / 'index.html'}")
        if with_pdf and pdf.main(["--root", str(root)]) != 0:
            log("the PDF was not built (see the error above); the site is built")
            return 1
    log(f"book done in {time.perf_counter() - t_start:.1f} s")
    if failures:
        log("failed notebooks: " + ", ".join(f.notebook.as_posix() for f in failures))
        return 1
    return 0
