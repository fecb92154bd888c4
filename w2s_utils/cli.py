"""Command line: ``python -m w2s_utils {check,run,data,book} ...`` (also the ``w2s`` script).

Each subcommand lives with the code it drives; this module only wires them together. Errors that
come from bad input (``ValueError``, ``FileNotFoundError``, ``RuntimeError``, other ``OSError``,
``OverflowError``, ``MemoryError``, ``pickle.UnpicklingError``) and bad options are printed as one
``error: <what is wrong>; <what to do>`` line on stderr with exit status 2, never a traceback.
Stdout carries only results (so ``--json`` output stays parseable); notices and progress go to
stderr. A relative ``W2S_CACHE_DIR`` is resolved against the working directory at start.
"""

from __future__ import annotations

import argparse
import errno
import pickle
import sys
from collections.abc import Sequence
from typing import NoReturn

from w2s_utils import check
from w2s_utils._validate import check_seeds
from w2s_utils.book import runner
from w2s_utils.engine import data, experiment
from w2s_utils.engine.cache import pin_cache_dir

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


#: What to do, by kind of exception the CLI maps (beyond ValueError and friends).
_ADVICE = {
    MemoryError: (
        "out of memory: the input asks for more memory than this machine has; check the sizes "
        "it declares (shapes, class counts, --n-bins) or use a subset"
    ),
    OverflowError: (
        "a number is too large to represent; check the input for huge values (a label of 1e30, "
        "a timeout of inf)"
    ),
    pickle.UnpicklingError: (
        "a pickled file could not be loaded safely (nothing in it was executed); save the model "
        "with save_pretrained(..., safe_serialization=True) so that it ships model.safetensors, "
        "or remove the pickle"
    ),
}


def error_line(err: BaseException) -> str:
    """``error: <what is wrong>; <what to do>`` (one line) for an exception from bad input."""
    for kind, advice in _ADVICE.items():
        if isinstance(err, kind):
            first = (str(err).strip().splitlines() or [""])[0].split(". ")[0].strip()
            detail = f" ({first[:200]})" if first else ""
            return f"error: {advice.split(';')[0]}{detail};{advice.split(';', 1)[1]}"
    if isinstance(err, OSError) and err.errno in (errno.ENOSPC, errno.EDQUOT):
        where = f" ({err.filename})" if err.filename else ""
        text = err.strerror or "no space left on the device"
        if ";" not in text:
            text += "; free space on that disk or point W2S_CACHE_DIR at a disk with room"
        return f"error: {text}{where}"
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


#: Exceptions from bad input that :func:`main` reports as one line with exit status 2.
MAPPED = (ValueError, RuntimeError, OSError, OverflowError, MemoryError, pickle.UnpicklingError)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        pin_cache_dir()
        _validate_args(args)
        return int(args.func(args) or 0)
    except MAPPED as err:
        print(error_line(err), file=sys.stderr)
        return EXIT_USAGE
