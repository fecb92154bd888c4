"""The book runner: ``python -m w2s_utils book [--preset ci] [--only CHAPTER] [--rerun] [--pdf]``.

1. Every notebook listed in ``_toc.yml`` is reused from its stored execution when nothing it
   depends on changed (:mod:`.reuse`: the notebook, the preset, the library's source, the
   versions that matter, the device type), else executed with papermill, one at a time, in a
   child process (kernel: the current interpreter), with ``preset`` injected and per-cell and
   per-notebook timeouts (:mod:`.execute`). Executed copies go to
   ``_build/executed/<toc path>.ipynb`` only when every cell finished (a failed or timed-out
   run's copy is kept as ``<name>.failed.ipynb`` and never reused or stored).
2. A staging source tree ``_build/src`` (config, toc, ``book/``, ``CITATION.cff`` and the
   executed notebooks at their toc paths) gets the build-info page (:mod:`.build_info`).
3. The HTML site is built from that tree with Jupyter Book 1 aside and swapped into
   ``_build/html`` (:mod:`.site`; a failed build leaves the previous site as it was, and the
   previous site's PDF is kept); ``--pdf`` then prints the PDF (:mod:`w2s_utils.book.pdf`).

A failing notebook stops the run with the notebook, the failing cell (index, first source line,
error) and the path of its executed copy. Progress and failure reports go to stderr. Faults leave
nothing running and nothing half-built (:mod:`.processes`: children die with the runner, even on
``kill -9``; every run sweeps what dead runs left).

Modules: :mod:`.toc` (the toc, ``--only``, build folders), :mod:`.processes`,
:mod:`.notebooks` (reading executed copies), :mod:`.reuse`, :mod:`.execute`, :mod:`.site`,
:mod:`.build_info`, :mod:`.build` (:func:`run_book`), :mod:`.cli`.
"""

from w2s_utils.book.runner.build import run_book
from w2s_utils.book.runner.build_info import (
    BUILD_INFO_END,
    BUILD_INFO_PAGE,
    BUILD_INFO_START,
    BuildRecord,
    build_info_markdown,
    write_build_info,
)
from w2s_utils.book.runner.cli import add_book_parser
from w2s_utils.book.runner.execute import (
    ChapterResult,
    check_timeouts,
    execute_notebook,
    write_kernelspec,
)
from w2s_utils.book.runner.notebooks import (
    CellFailure,
    executed_ok,
    failed_copy_path,
    find_failure,
    glued_text,
)
from w2s_utils.book.runner.processes import (
    WATCH_FD_ENV,
    finish_watched,
    kill_group,
    run_watched,
    spawn_watched,
    sweep_dead_runs,
    watch_parent,
)
from w2s_utils.book.runner.reuse import (
    RERUN_ENV,
    StoredRun,
    library_digest,
    load_stored,
    rerun_requested,
    reuse_context,
    reuse_key,
    store_executed,
    stored_path,
)
from w2s_utils.book.runner.site import (
    ANSI_ESCAPE,
    MATHJAX_FILE,
    build_html,
    stage_sources,
)
from w2s_utils.book.runner.toc import (
    BUILD_DIR,
    EXECUTED_DIR,
    HTML_DIR,
    STAGING_DIR,
    check_root,
    find_root,
    resolve_entry,
    select_notebooks,
    toc_entries,
    toc_notebooks,
)

__all__ = [
    "ANSI_ESCAPE",
    "BUILD_DIR",
    "BUILD_INFO_END",
    "BUILD_INFO_PAGE",
    "BUILD_INFO_START",
    "EXECUTED_DIR",
    "HTML_DIR",
    "MATHJAX_FILE",
    "RERUN_ENV",
    "STAGING_DIR",
    "WATCH_FD_ENV",
    "BuildRecord",
    "CellFailure",
    "ChapterResult",
    "StoredRun",
    "add_book_parser",
    "build_html",
    "build_info_markdown",
    "check_root",
    "check_timeouts",
    "executed_ok",
    "execute_notebook",
    "failed_copy_path",
    "find_failure",
    "find_root",
    "finish_watched",
    "glued_text",
    "kill_group",
    "library_digest",
    "load_stored",
    "rerun_requested",
    "resolve_entry",
    "reuse_context",
    "reuse_key",
    "run_book",
    "run_watched",
    "select_notebooks",
    "spawn_watched",
    "stage_sources",
    "store_executed",
    "stored_path",
    "sweep_dead_runs",
    "toc_entries",
    "toc_notebooks",
    "watch_parent",
    "write_build_info",
    "write_kernelspec",
]
