"""Command line: ``python -m w2s_utils {check,run,data,book} ...`` (also the ``w2s`` script).

Each subcommand lives with the code it drives; this module only wires them together. Errors that
come from bad input (``ValueError``, ``FileNotFoundError``, ``RuntimeError``) are printed as one
``error: ...`` line on stderr with exit status 2.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from w2s_utils import check
from w2s_utils.book import runner
from w2s_utils.engine import data, experiment


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="w2s",
        description="Weak-to-strong generalization: metrics, theorem checks and experiments.",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    check.add_check_parser(sub)
    experiment.add_run_parser(sub)
    data.add_data_parser(sub)
    runner.add_book_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except (ValueError, FileNotFoundError, RuntimeError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
