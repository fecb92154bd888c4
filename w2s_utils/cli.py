"""Command line: ``python -m w2s_utils {check,run,book} ...`` (also the ``w2s`` console script).

Each subcommand lives with the code it drives; this module only wires them together.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="w2s",
        description="Weak-to-strong generalization: metrics, theorem checks and experiments.",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    from w2s_utils import check
    from w2s_utils.book import runner
    from w2s_utils.engine import experiment

    check.add_check_parser(sub)
    experiment.add_run_parser(sub)
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
