"""``python -m w2s_utils book [--preset ci] [--only CHAPTER] [--rerun] [--pdf] ...``, and the
papermill child's entry point (``python -m w2s_utils.book.runner --execute-child SPEC``)."""

from __future__ import annotations

import argparse
import signal
from typing import Any

from w2s_utils.book.runner.build import run_book
from w2s_utils.book.runner.execute import CHILD_FLAG, check_timeouts, execute_child
from w2s_utils.book.runner.reuse import RERUN_ENV
from w2s_utils.book.runner.toc import check_root, find_root


def _terminate(signum: int, frame: Any) -> None:
    raise SystemExit(128 + signum)


def _cmd_book(args: argparse.Namespace) -> int:
    check_timeouts(args.timeout, args.cell_timeout, ("--timeout", "--cell-timeout"))
    if args.pdf and args.no_html:
        raise ValueError("--pdf: the PDF is printed from the site; drop --no-html (or --pdf)")
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
        rerun=args.rerun,
        with_pdf=args.pdf,
    )


def add_book_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Register ``book`` on the CLI's subparsers."""
    parser = subparsers.add_parser(
        "book",
        help="execute every chapter with papermill and build the HTML site",
        description="Execute every chapter listed in _toc.yml with papermill (reusing a stored "
        "execution when nothing the chapter depends on changed), then build the HTML site from "
        "the executed copies (_build/html) with warnings as errors.",
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
    parser.add_argument(
        "--rerun",
        action="store_true",
        help="execute the chosen chapters even when a stored execution matches (also "
        f"{RERUN_ENV}=1)",
    )
    parser.add_argument("--no-html", action="store_true", help="execute only; skip the site")
    parser.add_argument(
        "--pdf",
        action="store_true",
        help="after the site, build the PDF (python -m w2s_utils.book.pdf: needs Chromium)",
    )
    parser.add_argument("--root", help="repository root (default: found from the cwd)")
    parser.set_defaults(func=_cmd_book)
    return parser


def child_main(argv: list[str]) -> int:
    """``python -m w2s_utils.book.runner --execute-child SPEC``: run one notebook (the runner
    starts this; see :func:`w2s_utils.book.runner.execute.execute_child`)."""
    if len(argv) == 2 and argv[0] == CHILD_FLAG:
        return execute_child(argv[1:])
    raise SystemExit("usage: python -m w2s_utils book --help")
