"""Command line: ``python -m w2s_utils {check,run,data,book} ...`` (also the ``w2s`` script).

Each subcommand lives with the code it drives; this module only wires them together, and imports
a subcommand's module only when that subcommand is chosen (:data:`COMMANDS`, :func:`load`): so
``w2s check FILE.npz`` starts without the training engine (no transformers, datasets or model
wheel), on a core install, and ``w2s --version`` and ``w2s --help`` without any numerical
library. Errors that come from bad input (``ValueError``, ``FileNotFoundError``,
``RuntimeError``, other ``OSError``, ``OverflowError``, ``MemoryError``,
``pickle.UnpicklingError``) and bad options are printed as one ``error: <what is wrong>; <what to
do>`` line on stderr with exit status 2, never a traceback. Stdout carries only results (so
``--json`` output stays parseable); notices and progress go to stderr. For the subcommands that use
the cache a relative ``W2S_CACHE_DIR`` is resolved against the working directory at start.
"""

from __future__ import annotations

import argparse
import errno
import importlib
import os
import pickle
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from types import ModuleType
from typing import NoReturn

from w2s_utils import __version__

#: Exit status for unusable input or options (argparse's own convention).
EXIT_USAGE = 2


@dataclass(frozen=True)
class Command:
    """A subcommand: the ``module`` whose function ``adder`` registers its parser (imported only
    when the subcommand is chosen), its one-line ``help`` for ``w2s --help`` (the same text the
    module registers; a test keeps them equal) and whether it ``uses_cache`` (then
    ``W2S_CACHE_DIR`` is pinned before it runs)."""

    module: str
    adder: str
    help: str
    uses_cache: bool


#: The subcommands, in the order ``w2s --help`` lists them.
COMMANDS = {
    "check": Command(
        "w2s_utils.check",
        "add_check_parser",
        "metrics and theory checks for saved predictions (.npz)",
        uses_cache=False,
    ),
    "run": Command(
        "w2s_utils.engine.experiment",
        "add_run_parser",
        "run weak-to-strong experiments (cached) and print a results table",
        uses_cache=True,
    ),
    "data": Command(
        "w2s_utils.engine.data",
        "add_data_parser",
        "fetch the offline datasets, describe or register a dataset",
        uses_cache=True,
    ),
    "book": Command(
        "w2s_utils.book.runner",
        "add_book_parser",
        "execute every chapter with papermill and build the HTML site",
        uses_cache=True,
    ),
}
#: The module whose ``pin_cache_dir`` resolves a relative ``W2S_CACHE_DIR``.
CACHE_MODULE = "w2s_utils.engine.cache"


def load(module: str) -> ModuleType:
    """Import the library module ``module`` by name.

    The one documented exception to the house rule "no function-level imports of the library"
    (``tests/house/test_layers.py`` allows exactly this function, and counts the modules named in
    :data:`COMMANDS` as this module's imports for the layering check): the dispatcher imports a
    subcommand's module only when it is chosen, so that ``w2s check`` never loads the engine.
    """
    return importlib.import_module(module)


class _Parser(argparse.ArgumentParser):
    """Option errors as ``error: <what>; <what to do>`` (exit 2), like every other input error."""

    def error(self, message: str) -> NoReturn:
        self.print_usage(sys.stderr)
        self.exit(EXIT_USAGE, f"error: {message}; see `{self.prog} --help`\n")


def build_parser(commands: Iterable[str] | None = None) -> argparse.ArgumentParser:
    """The ``w2s`` parser. ``commands``: the subcommands whose modules are imported and whose full
    parsers are built (default: all of them, for documentation and tests); the others are listed
    by name and help only, and refuse nothing until chosen."""
    wanted = set(COMMANDS if commands is None else commands)
    parser = _Parser(
        prog="w2s",
        description="Weak-to-strong generalization: metrics, theory checks and experiments.",
    )
    parser.add_argument(
        "--version", action="version", version=f"w2s_utils {__version__}", help="print the version"
    )
    sub = parser.add_subparsers(
        dest="command", required=True, metavar="{" + ",".join(COMMANDS) + "}"
    )
    for name, cmd in COMMANDS.items():
        if name in wanted:
            getattr(load(cmd.module), cmd.adder)(sub)
        else:
            sub.add_parser(name, help=cmd.help, add_help=False)
    return parser


def chosen_command(argv: Sequence[str]) -> str | None:
    """The subcommand ``argv`` names (its first token that is not an option), if any."""
    first = next((a for a in argv if not a.startswith("-")), None)
    return first if first in COMMANDS else None


#: The module of the input checks (loaded with the subcommand that needs it: ``--version`` and
#: ``--help`` import no numerical library).
VALIDATE_MODULE = "w2s_utils._validate"


def _validate_args(args: argparse.Namespace) -> None:
    """Checks of option values that the subcommands would otherwise meet too late."""
    seeds = getattr(args, "seeds", None)
    if args.command == "run" and seeds is not None:
        load(VALIDATE_MODULE).check_seeds(seeds, "--seeds")


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


def missing_extra_line(err: ModuleNotFoundError, command: str | None) -> str:
    """``error: ...; pip install ...`` for a subcommand whose optional dependencies are missing
    (a core install runs ``check``; ``run``/``data`` need the ``engine`` extra, ``book`` the
    ``book`` extra)."""
    extra = "book" if command == "book" else "engine"
    what = f"`w2s {command}`" if command else "this command"
    return (
        f"error: {what} needs the package {err.name!r}, which is not installed; install the "
        f'library with its {extra} extra: pip install ".[{extra}]" in a clone of the repository'
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``w2s`` with ``argv`` (default: ``sys.argv[1:]``); returns the exit status."""
    argv = list(sys.argv[1:] if argv is None else argv)
    command = chosen_command(argv)
    try:
        parser = build_parser([] if command is None else [command])
        args = parser.parse_args(argv)
        if COMMANDS[args.command].uses_cache:
            load(CACHE_MODULE).pin_cache_dir()
        _validate_args(args)
        return int(args.func(args) or 0)
    except BrokenPipeError:  # the reader left (`w2s check x.npz | head`): no error to report
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # nothing more to flush
        return 1
    except ModuleNotFoundError as err:
        if not err.name or err.name.split(".")[0] == "w2s_utils":
            raise  # the library itself is broken: a traceback is the right answer
        print(missing_extra_line(err, command), file=sys.stderr)
        return EXIT_USAGE
    except MAPPED as err:
        print(error_line(err), file=sys.stderr)
        return EXIT_USAGE
