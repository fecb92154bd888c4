"""Where the book's sources and its build live: the toc, the chapters it lists, ``--only``.

The build tree under the repository root (names relative to ``_build/``): ``executed/`` holds the
executed notebooks at their toc paths, ``src/`` the staged source tree Jupyter Book reads,
``html/`` the site, ``kernel/`` the runner's private kernelspec.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

BUILD_DIR = "_build"
EXECUTED_DIR = "executed"
STAGING_DIR = "src"
HTML_DIR = "html"
#: What a repository root must hold.
ROOT_FILES = ("_toc.yml", "_config.yml")


def find_root(start: Path | None = None) -> Path:
    """The repository root: the first folder with ``_toc.yml`` (cwd upwards, then the package)."""
    candidates = []
    here = (start or Path.cwd()).resolve()
    candidates.extend([here, *here.parents])
    candidates.append(Path(__file__).resolve().parents[3])
    for folder in candidates:
        if all((folder / name).is_file() for name in ROOT_FILES):
            return folder
    raise FileNotFoundError(
        f"no _toc.yml/_config.yml found from {here} upwards: run from the repository root "
        "or pass --root"
    )


def check_root(root: str | os.PathLike[str]) -> Path:
    """A ``--root`` that is a folder holding ``_toc.yml`` and ``_config.yml``, else ValueError."""
    path = Path(root).expanduser()
    if not path.exists():
        raise ValueError(f"--root {root}: no such folder; pass the repository root")
    if not path.is_dir():
        raise ValueError(f"--root {root}: is not a folder; pass the repository root")
    missing = [n for n in ROOT_FILES if not (path / n).is_file()]
    if missing:
        raise ValueError(
            f"--root {root}: has no {' or '.join(missing)}; pass the repository root (the folder "
            "with _toc.yml and _config.yml)"
        )
    return path.resolve()


def _walk_toc(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        for key in ("root", "file"):
            if isinstance(node.get(key), str):
                yield node[key]
        for key in ("parts", "chapters", "sections", "subtrees", "entries"):
            for child in node.get(key) or []:
                yield from _walk_toc(child)
    elif isinstance(node, list):
        for child in node:
            yield from _walk_toc(child)


def toc_entries(root: Path) -> list[str]:
    """Every ``file``/``root`` entry of ``_toc.yml``, in reading order (without suffix)."""
    data = yaml.safe_load((Path(root) / "_toc.yml").read_text(encoding="utf-8"))
    if not isinstance(data, dict) or "root" not in data:
        raise ValueError(f"{Path(root) / '_toc.yml'}: expected a jb-book toc with a 'root' entry")
    return list(dict.fromkeys(_walk_toc(data)))


def resolve_entry(root: Path, entry: str) -> Path | None:
    """The file behind a toc entry (``.ipynb``, ``.md`` or the exact path), or None."""
    base = Path(root) / entry
    if base.suffix in (".ipynb", ".md") and base.is_file():
        return base
    for suffix in (".ipynb", ".md"):
        path = base.with_name(base.name + suffix)
        if path.is_file():
            return path
    return None


def toc_notebooks(root: Path) -> list[Path]:
    """Notebooks listed in the toc, relative to ``root``; missing toc files raise."""
    notebooks = []
    missing = []
    for entry in toc_entries(root):
        path = resolve_entry(root, entry)
        if path is None:
            missing.append(entry)
        elif path.suffix == ".ipynb":
            notebooks.append(path.relative_to(root))
    if missing:
        raise FileNotFoundError(f"_toc.yml lists files that do not exist: {', '.join(missing)}")
    return notebooks


def select_notebooks(notebooks: list[Path], only: str | None) -> list[Path]:
    """Filter by ``--only`` (a stem like ``01_pipeline``, a path, or a unique prefix); ``None``
    keeps every notebook, an empty or blank ``only`` is an error (it names no chapter)."""
    if only is None:
        return notebooks
    if not isinstance(only, str):
        raise ValueError(f"--only: expected a chapter name, got {type(only).__name__}")
    if not only.strip():
        names = ", ".join(nb.stem for nb in notebooks)
        raise ValueError(
            f"--only {only!r}: names no chapter; pass one of: {names} (or leave out --only to "
            "run every chapter)"
        )
    key = only.removesuffix(".ipynb")
    hits = [nb for nb in notebooks if key in (nb.stem, nb.with_suffix("").as_posix())]
    if not hits:
        hits = [nb for nb in notebooks if nb.stem.startswith(Path(key).name)]
    if len(hits) != 1:
        names = ", ".join(nb.stem for nb in notebooks)
        raise ValueError(f"--only {only!r} matches {len(hits)} chapters; choose one of: {names}")
    return hits
