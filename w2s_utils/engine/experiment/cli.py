"""``w2s run``: a grid of weak-to-strong runs from the command line, its table, and the
predictions ``w2s check`` reads.

Sizes: ``--sizes weak_train,w2s_train,val,test`` or ``--sizes max`` (each dataset's largest
class-balanced sizes, :func:`w2s_utils.engine.data.max_sizes`), applied to a copy of the preset
(a preset is a value). Your data: a file or folder, with ``--text-column``/``--label-column``
when its columns are not ``text``/``label`` (registered once with
:func:`w2s_utils.engine.data.register`). Numbers are whole and checked; a dataset, teacher or
seed given twice is refused; every error is one line with exit status 2 (:mod:`w2s_utils.cli`).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import re
import sys
from typing import Any

import numpy as np
import pandas as pd

from w2s_utils.engine import data
from w2s_utils.engine.data import SPLIT_NAMES, SplitSizes
from w2s_utils.engine.experiment.grid import run_grid, summarize
from w2s_utils.engine.experiment.result import save_predictions
from w2s_utils.engine.losses import LOSS_NAMES
from w2s_utils.engine.models import MODEL_NAMES, MODES
from w2s_utils.engine.presets import LABEL_TYPES, PRESETS, TRAINERS, Preset, get_preset

__all__ = ["add_run_parser", "parse_count", "parse_sizes", "prepare_preset"]

#: The most seeds ``--seeds`` takes (more is a typo, not a grid).
MAX_SEEDS = 1000
#: ``--sizes`` value meaning "the largest class-balanced sizes each dataset allows".
SIZES_MAX = "max"
_WHOLE = re.compile(r"\s*\+?[0-9]+\s*\Z")


def parse_count(text: str) -> int:
    """``--seeds``: a whole number in 1..:data:`MAX_SEEDS` written as digits (``2.5``, ``1e3``,
    ``nan``, ``inf``, ``0`` and negatives are refused, never truncated)."""
    if not _WHOLE.match(text) or not 1 <= int(text) <= MAX_SEEDS:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a number of seeds; give a whole number from 1 to {MAX_SEEDS} "
            "(e.g. --seeds 3 runs seeds 0, 1, 2)"
        )
    return int(text)


def parse_sizes(text: str) -> SplitSizes | str:
    """``--sizes``: ``max``, or four whole numbers ``weak_train,w2s_train,val,test`` (``val``
    may be 0); each a multiple of the dataset's number of classes."""
    if text.strip().lower() == SIZES_MAX:
        return SIZES_MAX
    parts = text.split(",")
    if len(parts) != 4 or not all(_WHOLE.match(p) for p in parts):
        raise argparse.ArgumentTypeError(
            f"{text!r} is not four whole numbers; give --sizes {','.join(SPLIT_NAMES)} "
            "(e.g. 1000,2000,500,1500) or --sizes max for the largest sizes your data allows"
        )
    values = [int(p) for p in parts]
    if any(v == 0 for v, nm in zip(values, SPLIT_NAMES, strict=True) if nm != "val"):
        raise argparse.ArgumentTypeError(
            f"{text!r}: weak_train, w2s_train and test must be positive (val may be 0)"
        )
    return SplitSizes(*values)


def _datasets(args: argparse.Namespace, preset: Preset) -> list[str]:
    """The datasets to run: names as given; with a column option, files registered under it."""
    names = list(args.dataset) if args.dataset else list(preset.ladder_datasets)
    if args.text_column is None and args.label_column is None:
        return names
    out = []
    for name in names:
        data.check_dataset_name(name)
        if name in data.DATASET_NAMES or data.is_reference(name):
            raise ValueError(
                f"--text-column/--label-column apply to a data file or folder, not to {name!r}; "
                "drop them or give the file"
            )
        ref = data.register(name, text_column=args.text_column, label_column=args.label_column)
        print(f"registered {name} as {ref}", file=sys.stderr)
        out.append(ref)
    return out


def prepare_preset(preset: Preset, datasets: list[str], sizes: SplitSizes | str | None) -> Preset:
    """``preset`` with ``sizes`` applied: explicit sizes for every dataset, or with
    ``"max"`` each dataset's :func:`~w2s_utils.engine.data.max_sizes` (the datasets are
    loaded); ``None`` leaves it as it is."""
    if sizes is None:
        return preset
    if isinstance(sizes, SplitSizes):
        return dataclasses.replace(preset, sizes=sizes, dataset_sizes=())
    per_dataset = tuple((d, data.max_sizes(data.load_texts(d, log=None))) for d in datasets)
    return dataclasses.replace(preset, dataset_sizes=per_dataset)


def _format_table(table: pd.DataFrame) -> str:
    cols = ["dataset", "weak", "strong", "n_seeds"]
    lines = []
    for _, r in table.iterrows():
        parts = [f"{r[c]}" for c in cols]
        for m in ("acc_weak", "acc_student", "acc_ceiling", "pgr", "gain", "eps"):
            lo, hi = r[f"{m}_lo"], r[f"{m}_hi"]
            band = f" [{lo:.3f}, {hi:.3f}]" if np.isfinite(lo) else ""
            parts.append(f"{m}={r[m]:.3f}{band}")
        lines.append("  ".join(parts))
    return "\n".join(lines)


def _run_cli(args: argparse.Namespace) -> int:
    preset = get_preset(args.preset)
    datasets = _datasets(args, preset)
    preset = prepare_preset(preset, datasets, args.sizes)
    overrides: dict[str, Any] = {}
    if args.loss:
        overrides["loss"] = args.loss
    if args.label_type:
        overrides["label_type"] = args.label_type
    results = run_grid(
        datasets,
        args.weak,
        args.strong,
        args.seeds,
        preset=preset,
        use_cache=not args.no_cache,
        progress=not args.json,
        trainer=args.trainer,
        **overrides,
    )
    table = summarize(results)
    saved = []
    if args.save_predictions is not None:
        saved = save_predictions(results, args.save_predictions)
    for path in saved:
        print(f"predictions written to {path}; read them with `w2s check {path}`", file=sys.stderr)
    if args.json:
        payload = {
            "summary": json.loads(table.to_json(orient="records")),
            "runs": json.loads(pd.DataFrame([r.row() for r in results]).to_json(orient="records")),
            "predictions": [str(p) for p in saved],
        }
        print(json.dumps(payload, indent=2))
    else:
        print(_format_table(table))
    return 0


def add_run_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Register ``run``: ``w2s run --dataset sarcasm --weak bow --preset ci --seeds 3``."""
    shown = [n for n, p in PRESETS.items() if not p.hidden]
    hidden = [f"{n} ({p.description})" for n, p in PRESETS.items() if p.hidden]
    epilog = (
        f"datasets: {', '.join(data.DATASET_NAMES)},\n"
        "          a reference from `w2s data register`, or a "
        f"{'/'.join(data.SUPPORTED_SUFFIXES)} file or datasets folder\n"
        f"models:   {', '.join(MODEL_NAMES)} (or a Hugging Face name / local folder)\n"
        f"presets:  {', '.join(shown)}; {'; '.join(hidden)}\n"
        f"losses:   {', '.join(LOSS_NAMES)}\n"
        f"modes:    {', '.join(MODES)}\n\n"
        "examples:\n"
        "  w2s run --dataset sarcasm --weak bow --preset test --seeds 1\n"
        "  w2s run --dataset reviews.csv --text-column review --label-column stars \\\n"
        "          --weak bow --sizes max --save-predictions reviews.npz\n"
        "  w2s check reviews.npz"
    )
    p = subparsers.add_parser(
        "run",
        help="run weak-to-strong experiments (cached) and print a results table",
        description=(
            "Train weak model, strong ceiling and student on any number of classes; print "
            "accuracy, PGR, gain (nats, positive = the student beats its teacher) and the "
            "misfit eps with intervals over seeds."
        ),
        epilog=epilog,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "--dataset", nargs="+", default=None, help="dataset name(s), reference(s) or path(s)"
    )
    p.add_argument("--text-column", default=None, help="text column of your file (default: text)")
    p.add_argument(
        "--label-column", default=None, help="label column of your file (default: label)"
    )
    p.add_argument("--weak", nargs="+", default=None, help="weak model name(s)")
    p.add_argument("--strong", default=None, help="strong model (default: the preset's)")
    p.add_argument(
        "--preset",
        default="ci",
        choices=list(PRESETS),
        help="the scale (default ci): "
        + "; ".join(f"{n}: {p.description}" for n, p in PRESETS.items()),
    )
    p.add_argument(
        "--seeds", type=parse_count, default=None, help="number of seeds N: seeds 0..N-1"
    )
    p.add_argument(
        "--sizes",
        type=parse_sizes,
        default=None,
        metavar="N,N,N,N|max",
        help=(
            f"split sizes {','.join(SPLIT_NAMES)} (multiples of the number of classes), or "
            "'max' for the largest class-balanced sizes each dataset allows (default: the "
            "preset's)"
        ),
    )
    p.add_argument("--loss", default=None, choices=LOSS_NAMES, help="student loss")
    p.add_argument("--label-type", default=None, choices=LABEL_TYPES)
    p.add_argument(
        "--trainer",
        default=None,
        choices=TRAINERS,
        help="loop: one run at a time; stacked: a grid's runs together (default: the preset's)",
    )
    p.add_argument(
        "--save-predictions",
        default=None,
        metavar="FILE.npz",
        help=(
            "write each run's test predictions (weak, student, ceiling, labels, ids, "
            "label_names) for `w2s check`; several runs: FILE.<dataset>.<weak>.seed<k>.npz"
        ),
    )
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.add_argument("--no-cache", action="store_true", help="recompute (and overwrite) entries")
    p.set_defaults(func=_run_cli)
    return p
