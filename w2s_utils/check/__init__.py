"""``python -m w2s_utils check FILE.npz``: every metric and every result the saved predictions
allow, in a report a researcher can read without the book.

The file is a numpy ``.npz`` archive, the one ``python -m w2s_utils run --save-predictions`` writes
(or ``numpy.savez(path, weak=..., student=..., labels=...)``):

- ``weak``, ``student``: probabilities ``[N]`` (binary, positive class) or ``[N, K]``, on the
  same ``N`` test inputs;
- a truth, at least one of: ``labels`` (integer class labels ``[N]``) and ``f_star`` (the true
  class probabilities ``P(Y | x)``, known on planted tasks; shaped like ``weak``);
- optional: ``ceiling`` (the strong model trained on ground truth; shaped like ``weak``), ``ids``
  (the test examples' ids ``[N]``, unique) and ``label_names`` (the class names ``[K]``).

What it reports (:func:`check_arrays` returns it as a dict, :func:`format_report` renders it):
per predictor the test metrics of :func:`w2s_utils.metrics.summarize_predictions` (accuracy,
cross-entropy, binned ECE, smooth CE and AUROC for two classes, and ``Err`` with ``f_star``);
the weak-to-strong summary (gain, accuracy gain, the misfits in both directions, the
interaction, PGR); then both sides and the slack of every result of :mod:`w2s_utils.theory` that
the arrays allow, once per truth (``[labels]``: the statement for the test sample's empirical
distribution, where ``Err`` differences are cross-entropy differences; ``[F*]``: with the given
truth). Results are named by what they state (the ``NAME`` of each theory result). Each row
says whether the result *holds*, whether it is **vacuous** (no tighter than what is known
without it: ``|gain| <= log(1/gamma)`` under the floor, or the label-free interval that the two
predictors alone give), and whether the data meet its assumption (``assumption not met``: zero
probabilities leave no floor; a conditional result fails only when the student is not the
projection it assumes, which predictions cannot show). A legend defines every term
(:data:`LEGEND`; :data:`EXPLAIN` says what each result states, printed with ``--explain``).

Exit status of the command: 0 when every result that always holds does hold, 1 if one fails (a
bug: they are theorems), 2 for unusable input (``ValueError``/``FileNotFoundError``, mapped by
the CLI). Anything but a regular, readable file (a FIFO, ``/dev/zero``) is refused before it is
opened; the sizes the arrays declare are bounded before anything is read. A result whose sides
cannot be evaluated (NaN, or both infinite) is listed under ``skipped`` as undefined, never as
holding. The package imports only :mod:`w2s_utils.metrics` and :mod:`w2s_utils.theory`: the
command starts without the training engine (no transformers, datasets or model wheel).

Modules: :mod:`~w2s_utils.check.results` (the computation, :func:`check_arrays`),
:mod:`~w2s_utils.check.files` (:func:`check_file`), :mod:`~w2s_utils.check.report` (the legend
and :func:`format_report`); this face wires the ``check`` subcommand.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from w2s_utils.check.files import MAX_ELEMENTS, check_file
from w2s_utils.check.report import EXPLAIN, LEGEND, format_report, json_ready
from w2s_utils.check.results import (
    ARRAYS,
    MAX_BINS,
    REQUIRED,
    SCHEMA,
    SMCE_TIME_LIMIT,
    check_arrays,
)

__all__ = [
    "ARRAYS",
    "EXPLAIN",
    "HELP",
    "LEGEND",
    "MAX_BINS",
    "MAX_ELEMENTS",
    "REQUIRED",
    "SCHEMA",
    "SMCE_TIME_LIMIT",
    "add_check_parser",
    "check_arrays",
    "check_file",
    "format_report",
    "json_ready",
]

#: The command's one-line help (also listed by ``w2s --help`` without importing this module).
HELP = "metrics and theory checks for saved predictions (.npz)"


def _run_check(args: argparse.Namespace) -> int:
    result = check_file(
        args.file,
        n_bins=args.n_bins,
        gamma=args.gamma,
        clip=args.clip,
        smce_time_limit=args.smce_time_limit,
    )
    if args.json:
        print(json.dumps(json_ready(result), indent=2, allow_nan=False))
    else:
        print(format_report(result, explain=args.explain))
    failed = [r for r in result["results"] if r["kind"] == "always" and r["status"] == "FAILS"]
    return 1 if failed else 0


def add_check_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Register ``check FILE.npz [--json] [--explain] [--n-bins 15] [--gamma G] [--clip]
    [--smce-time-limit S]``.

    Exit status: 0 when every result that always holds does hold, 1 if one fails (a bug: they are
    theorems), 2 for unusable input (raised as ``ValueError``/``FileNotFoundError``, mapped by
    the CLI).
    """
    p = subparsers.add_parser(
        "check",
        help=HELP,
        description=(
            "Print every metric and every applicable result's two sides, slack and status for "
            "the predictions in FILE.npz (what `run --save-predictions` writes): arrays weak, "
            "student ([N] or [N, K] probabilities) and a truth, labels ([N] ints) and/or f_star "
            "([N, K]); optional ceiling, ids, label_names. Needs only the core install (no "
            "training engine)."
        ),
    )
    p.add_argument("file", metavar="FILE.npz", help="numpy .npz archive with the predictions")
    p.add_argument("--json", action="store_true", help="print machine-readable JSON")
    p.add_argument("--explain", action="store_true", help="add what each result states and assumes")
    p.add_argument(
        "--n-bins", type=int, default=15, help="bins for the binned ECE, 1..100000 (default 15)"
    )
    p.add_argument(
        "--gamma",
        type=float,
        default=None,
        help="the floor of the floor-based bounds (default: the empirical min of weak, student)",
    )
    p.add_argument(
        "--clip",
        action="store_true",
        help="clip the predictions to the floor --gamma first (keeps ratios above it)",
    )
    p.add_argument(
        "--smce-time-limit",
        type=float,
        default=SMCE_TIME_LIMIT,
        metavar="S",
        help=f"seconds per predictor for the multi-class smooth CE (default {SMCE_TIME_LIMIT:g};"
        " then a certified bracket; 0: skip the multi-class calibration bound)",
    )
    p.set_defaults(func=_run_check)
    return p
