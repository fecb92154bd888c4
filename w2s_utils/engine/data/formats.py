"""Reading a user's data into a text column and a label column, whatever it is stored in.

Files: JSON Lines (``.jsonl``: one object per line; a repeated key in one object is an error),
CSV (``.csv``) and TSV (``.tsv``) with a header line, Parquet (``.parquet``, needs ``pyarrow``);
a folder written by ``datasets.Dataset.save_to_disk`` (every split of a ``DatasetDict`` pooled).
Objects: a ``datasets.Dataset``/``DatasetDict`` or a pandas ``DataFrame``. Text files are UTF-8,
with or without a byte order mark. Values are returned as read; what counts as a text or a label
is decided by :mod:`w2s_utils.engine.data.labels`. Every error names the file (or object), the
row or line, and what to do.
"""

from __future__ import annotations

import bisect
import csv
import json
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

#: File types a path may have (besides a ``save_to_disk`` folder).
SUPPORTED_SUFFIXES = (".jsonl", ".csv", ".tsv", ".parquet")
_BOM = b"\xef\xbb\xbf"
_COLUMN_HINT = (
    "name your columns with text_column=/label_column= (CLI: --text-column/--label-column)"
)


@dataclass(frozen=True)
class Table:
    """The two columns of a source as read: ``where(i)`` names row ``i`` in messages;
    ``label_names`` are class names that came with integer labels (a ``ClassLabel`` feature)."""

    source: str
    name: str
    texts: list[Any]
    labels: list[Any]
    where: Callable[[int], str]
    label_names: tuple[str, ...] | None = None


class _DuplicateKey(ValueError):
    pass


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise _DuplicateKey(key)
        out[key] = value
    return out


def _missing_column(where: str, role: str, column: str, present: list[str]) -> ValueError:
    shown = ", ".join(repr(c) for c in present[:20]) + (" ..." if len(present) > 20 else "")
    return ValueError(
        f"{where}: no {role} column {column!r} (the columns are {shown or 'none'}); " + _COLUMN_HINT
    )


def _read_bytes(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as err:
        raise ValueError(
            f"{path} cannot be read ({err.strerror or err}); check its permissions"
        ) from err


def _jsonl(path: Path, text_column: str, label_column: str) -> Table:
    raw = _read_bytes(path)
    raw = raw[len(_BOM) :] if raw.startswith(_BOM) else raw
    texts: list[Any] = []
    labels: list[Any] = []
    lines: list[int] = []
    for lineno, line in enumerate(raw.splitlines(), 1):
        where = f"{path} line {lineno}"
        try:
            text = line.decode("utf-8")
        except UnicodeDecodeError as err:
            raise ValueError(
                f"{where}: not UTF-8 text ({err.reason} at byte {err.start}); "
                "save the file as UTF-8 JSON Lines"
            ) from None
        if not text.strip():
            continue
        try:
            row = json.loads(text, object_pairs_hook=_unique_keys)
        except _DuplicateKey as err:
            raise ValueError(
                f"{where}: the key {err.args[0]!r} appears twice in one object; keep one (which "
                "one was meant is not guessed)"
            ) from None
        except json.JSONDecodeError as err:
            raise ValueError(
                f"{where}: malformed JSON ({err.msg}, column {err.colno}); "
                'each line must be one object such as {"text": "...", "label": 0}'
            ) from None
        if not isinstance(row, dict):
            raise ValueError(
                f"{where}: expected a JSON object with a text and a label field, got "
                f"{type(row).__name__}"
            )
        for role, column in (("text", text_column), ("label", label_column)):
            if column not in row:
                raise _missing_column(where, role, column, list(row))
        texts.append(row[text_column])
        labels.append(row[label_column])
        lines.append(lineno)
    return Table(str(path), path.name, texts, labels, lambda i: f"{path} line {lines[i]}")


def _delimited(path: Path, text_column: str, label_column: str, delimiter: str) -> Table:
    texts: list[Any] = []
    labels: list[Any] = []
    lines: list[int] = []
    kind = "TSV" if delimiter == "\t" else "CSV"
    limit = csv.field_size_limit()
    csv.field_size_limit(2**31 - 1)  # long texts are fields too
    try:
        with open(path, encoding="utf-8-sig", newline="") as f:
            reader = csv.reader(f, delimiter=delimiter)
            try:
                header = [h.strip() for h in next(reader)]
            except StopIteration:
                header = []
            if not header:
                raise ValueError(
                    f"{path} has no header line; the first line must name the columns, e.g. "
                    f"text{delimiter}label"
                )
            twice = sorted({h for h in header if header.count(h) > 1})
            if twice:
                raise ValueError(
                    f"{path} line 1: the header names {', '.join(map(repr, twice))} more than "
                    "once; give every column its own name"
                )
            for role, column in (("text", text_column), ("label", label_column)):
                if column not in header:
                    raise _missing_column(f"{path} line 1", role, column, header)
            ti, li = header.index(text_column), header.index(label_column)
            for row in reader:
                if not row:
                    continue  # a blank line
                if len(row) != len(header):
                    raise ValueError(
                        f"{path} line {reader.line_num}: {len(row)} fields but the header has "
                        f"{len(header)}; quote fields that hold the delimiter or a line break"
                    )
                texts.append(row[ti])
                labels.append(row[li])
                lines.append(reader.line_num)
    except UnicodeDecodeError as err:
        raise ValueError(
            f"{path}: not UTF-8 text ({err.reason} at byte {err.start}); save the {kind} file as "
            "UTF-8"
        ) from None
    except csv.Error as err:
        raise ValueError(f"{path}: malformed {kind} ({err}); check its quoting") from None
    except OSError as err:
        raise ValueError(
            f"{path} cannot be read ({err.strerror or err}); check its permissions"
        ) from err
    finally:
        csv.field_size_limit(limit)
    return Table(str(path), path.name, texts, labels, lambda i: f"{path} line {lines[i]}")


def _class_label_names(feature: Any) -> tuple[str, ...] | None:
    """The class names of a ``datasets.ClassLabel`` feature (a dict or an object), else None."""
    if isinstance(feature, dict):
        names = feature.get("names") if feature.get("_type") == "ClassLabel" else None
    else:
        names = getattr(feature, "names", None) if type(feature).__name__ == "ClassLabel" else None
    return tuple(str(n) for n in names) if names else None


def _parquet(path: Path, text_column: str, label_column: str) -> Table:
    try:
        import pyarrow.parquet as pq
    except ImportError:
        raise ValueError(
            f"{path}: reading .parquet needs the pyarrow package; pip install pyarrow, or save "
            "the data as .jsonl or .csv"
        ) from None
    try:
        schema = pq.read_schema(path)
    except Exception as err:  # pyarrow raises its own errors on damaged files
        raise ValueError(
            f"{path} is not a readable Parquet file ({type(err).__name__}: {err}); re-save it"
        ) from err
    present = list(schema.names)
    for role, column in (("text", text_column), ("label", label_column)):
        if column not in present:
            raise _missing_column(str(path), role, column, present)
    try:
        table = pq.read_table(path, columns=sorted({text_column, label_column}))
        texts = table.column(text_column).to_pylist()
        labels = table.column(label_column).to_pylist()
    except Exception as err:
        raise ValueError(
            f"{path} is not a readable Parquet file ({type(err).__name__}: {err}); re-save it"
        ) from err
    names = None
    try:  # a file written by datasets records its features, ClassLabel names included
        hf = json.loads((schema.metadata or {}).get(b"huggingface", b"{}"))
        names = _class_label_names(hf.get("info", {}).get("features", {}).get(label_column))
    except (ValueError, AttributeError):
        pass
    return Table(str(path), path.name, texts, labels, lambda i: f"{path} row {i + 1}", names)


def _hf(obj: Any, text_column: str, label_column: str, source: str, name: str) -> Table:
    """A ``datasets.Dataset`` or ``DatasetDict`` (every split pooled, in its order)."""
    parts = list(obj.items()) if hasattr(obj, "keys") else [("", obj)]
    texts: list[Any] = []
    labels: list[Any] = []
    starts: list[int] = []
    names: tuple[str, ...] | None = None
    for split, part in parts:
        where = f"{source} split {split!r}" if split else source
        present = list(part.column_names)
        for role, column in (("text", text_column), ("label", label_column)):
            if column not in present:
                raise _missing_column(where, role, column, present)
        names = names or _class_label_names(part.features.get(label_column))
        starts.append(len(texts))
        texts.extend(part[text_column])
        labels.extend(part[label_column])

    def where(i: int) -> str:
        j = bisect.bisect_right(starts, i) - 1
        split = parts[j][0]
        return (
            f"{source} split {split!r} record {i - starts[j]}" if split else f"{source} record {i}"
        )

    return Table(source, name, texts, labels, where, names)


def _pandas(df: Any, text_column: str, label_column: str) -> Table:
    present = [str(c) for c in df.columns]
    for role, column in (("text", text_column), ("label", label_column)):
        if column not in df.columns:
            raise _missing_column("the DataFrame", role, column, present)
        if present.count(column) > 1:
            raise ValueError(f"the DataFrame has two columns named {column!r}; rename one")
    index = df.index

    def where(i: int) -> str:
        return f"the DataFrame row {i} (index {index[i]!r})"

    return Table(
        "the DataFrame", "dataframe", df[text_column].tolist(), df[label_column].tolist(), where
    )


def read_path(path: Path, text_column: str, label_column: str) -> Table:
    """The text and label columns of a data file (:data:`SUPPORTED_SUFFIXES`, by its suffix) or
    of a ``save_to_disk`` folder; ``ValueError`` naming the file, the row and what to do."""
    if path.is_file():
        suffix = path.suffix.lower()
        if suffix == ".jsonl":
            table = _jsonl(path, text_column, label_column)
        elif suffix in (".csv", ".tsv"):
            table = _delimited(path, text_column, label_column, "\t" if suffix == ".tsv" else ",")
        elif suffix == ".parquet":
            table = _parquet(path, text_column, label_column)
        else:
            raise ValueError(
                f"{path}: unknown data file type {path.suffix!r}; give a "
                f"{', '.join(SUPPORTED_SUFFIXES)} file or a datasets.save_to_disk folder"
            )
    elif path.is_dir():
        import datasets

        try:
            obj = datasets.load_from_disk(str(path))
        except Exception as err:  # datasets/pyarrow raise assorted errors on damaged folders
            raise ValueError(
                f"{path} is not a readable datasets.save_to_disk folder "
                f"({type(err).__name__}: {err}); re-save it or pass a .jsonl or .csv file"
            ) from err
        table = _hf(obj, text_column, label_column, str(path), path.name)
    else:
        raise ValueError(
            f"{path} is not a regular file or folder; pass a {', '.join(SUPPORTED_SUFFIXES)} "
            "file or a datasets.save_to_disk folder"
        )
    if not table.texts:
        raise ValueError(
            f"{path} holds no records; add rows with a {text_column!r} and a {label_column!r}"
        )
    return table


def read_object(obj: Any, text_column: str, label_column: str) -> Table:
    """The text and label columns of a ``datasets.Dataset``/``DatasetDict`` or a pandas
    ``DataFrame`` (recognised without importing either package)."""
    datasets = sys.modules.get("datasets")
    pandas = sys.modules.get("pandas")
    if datasets is not None and isinstance(obj, datasets.Dataset | datasets.DatasetDict):
        kind = type(obj).__name__
        table = _hf(obj, text_column, label_column, f"the {kind}", kind.lower())
    elif pandas is not None and isinstance(obj, pandas.DataFrame):
        table = _pandas(obj, text_column, label_column)
    else:
        hint = (
            "; collect it into a Dataset first (datasets.Dataset.from_generator)"
            if "Iterable" in type(obj).__name__
            else ""
        )
        raise ValueError(
            f"a {type(obj).__module__}.{type(obj).__name__} is not a data source; give a path "
            f"({', '.join(SUPPORTED_SUFFIXES)} or a save_to_disk folder), a datasets.Dataset or "
            f"DatasetDict, or a pandas DataFrame{hint}"
        )
    if not table.texts:
        raise ValueError(f"{table.source} holds no rows; add rows with a text and a label")
    return table
