"""Command line: ``python -m w2s_utils {check,run,data,book} ...`` (also the ``w2s`` script).

Each subcommand lives with the code it drives; this module only wires them together. Errors that
come from bad input (``ValueError``, ``FileNotFoundError``, ``RuntimeError``, other ``OSError``)
and bad options are printed as one ``error: <what is wrong>; <what to do>`` line on stderr with
exit status 2. Stdout carries only results (so ``--json`` output stays parseable); notices and
progress go to stderr.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import NoReturn

from w2s_utils import check
from w2s_utils._validate import check_seeds
from w2s_utils.book import runner
from w2s_utils.engine import data, experiment

#: Exit status for unusable input or options (argparse's own convention).
EXIT_USAGE = 2


class _Parser(argparse.ArgumentParser):
    """Option errors as ``error: <what>; <what to do>`` (exit 2), like every other input error."""

    def error(self, message: str) -> NoReturn:
        self.print_usage(sys.stderr)
        self.exit(EXIT_USAGE, f"error: {message}; see `{self.prog} --help`\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="w2s",
        description="Weak-to-strong generalization: metrics, theorem checks and experiments.",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    check.add_check_parser(sub)
    experiment.add_run_parser(sub)
    data.add_data_parser(sub)
    runner.add_book_parser(sub)
    return parser


def _validate_args(args: argparse.Namespace) -> None:
    """Checks of option values that the subcommands would otherwise meet too late."""
    seeds = getattr(args, "seeds", None)
    if args.command == "run" and seeds is not None:
        check_seeds(seeds, "--seeds")


def error_line(err: BaseException) -> str:
    """``error: <what is wrong>; <what to do>`` for an exception from bad input."""
    if isinstance(err, OSError) and not isinstance(err, FileNotFoundError) and err.strerror:
        where = f"{err.filename}: " if err.filename else ""
        return f"error: {where}{err.strerror}; check the path and its permissions"
    text = str(err).strip() or type(err).__name__
    if isinstance(err, FileNotFoundError) and err.strerror and err.filename:
        text = f"{err.filename}: {err.strerror}"
    lines = text.splitlines()
    if len(lines) == 1 and ";" not in text:
        hint = "check the path" if isinstance(err, FileNotFoundError) else "see `w2s --help`"
        text = f"{text}; {hint}"
    return f"error: {text}"


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        _validate_args(args)
        return int(args.func(args) or 0)
    except (ValueError, RuntimeError, OSError) as err:
        print(error_line(err), file=sys.stderr)
        return EXIT_USAGE
