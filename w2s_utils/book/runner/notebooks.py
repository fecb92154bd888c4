"""Reading executed notebooks: complete or not, the failing cell, glued values.

An executed copy is *complete* when papermill completed every code cell and no cell shows an
error (:func:`executed_ok`); only complete copies are reused, stored or staged as they are. A
failed or timed-out run's copy is kept beside the reusable path as ``<name>.failed.ipynb``
(:func:`failed_copy_path`).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import nbformat

#: Tags of the cells papermill adds (injected parameters, error banners and anchors).
PAPERMILL_TAGS = frozenset({"injected-parameters", "papermill-error-cell-tag"})


@dataclass
class CellFailure:
    """The failing cell of an executed notebook: its index in the executed copy, in the source
    notebook (without the cells papermill added), its first source line and the error."""

    index: int
    source_index: int | None
    first_line: str
    error: str


def _read(path: Path) -> Any:
    return nbformat.read(path, as_version=4)


def executed_ok(path: Path) -> bool:
    """Whether ``path`` is a *complete* executed copy: every code cell completed by papermill, no
    error output, no papermill exception. A failed or timed-out run's copy is never complete
    (a cell interrupted by a timeout shows a KeyboardInterrupt error output); an unreadable or
    truncated file is not a copy at all."""
    path = Path(path)
    if not path.is_file():
        return False
    try:
        nb = _read(path)
    except Exception:  # unreadable or truncated JSON: not a usable copy
        return False
    if (nb.metadata.get("papermill") or {}).get("exception"):
        return False
    code = [c for c in nb.cells if c.cell_type == "code"]
    for cell in code:
        pm = cell.get("metadata", {}).get("papermill", {})
        if pm.get("status") != "completed" or pm.get("exception"):
            return False
        if any(out.get("output_type") == "error" for out in cell.get("outputs", [])):
            return False
    return bool(code) or bool(nb.metadata.get("papermill"))


def failed_copy_path(executed: Path) -> Path:
    """Where a failed or timed-out run's executed copy is kept (never at the reusable path)."""
    executed = Path(executed)
    return executed.with_name(executed.stem + ".failed.ipynb")


def find_failure(executed: Path) -> CellFailure | None:
    """The first cell with an error output, else the cell papermill marked failed or running;
    ``None`` when there is neither (or no file)."""
    executed = Path(executed)
    if not executed.is_file():
        return None
    nb = _read(executed)
    inserted = [bool(PAPERMILL_TAGS & set(c.metadata.get("tags", []))) for c in nb.cells]
    found: tuple[int, str] | None = None
    for i, cell in enumerate(nb.cells):
        if cell.cell_type != "code":
            continue
        errors = [out for out in cell.get("outputs", []) if out.get("output_type") == "error"]
        if errors:
            found = (i, f"{errors[0].get('ename', 'Error')}: {errors[0].get('evalue', '')}")
            break
    if found is None:
        for i, cell in enumerate(nb.cells):
            pm = cell.get("metadata", {}).get("papermill", {})
            if pm.get("exception") or pm.get("status") in ("failed", "running"):
                found = (i, f"cell did not finish (papermill status {pm.get('status')})")
                break
    if found is None:
        return None
    index, error = found
    source = nb.cells[index].source.strip().splitlines()
    source_index = index - sum(inserted[:index])
    return CellFailure(index, source_index, source[0] if source else "", error)


def hide_injected_parameters(path: Path) -> None:
    """Tag papermill's injected-parameters cell ``remove-cell`` (in place, atomically): the page
    shows the chapter's own parameters cell, and the build-info page records the preset."""
    path = Path(path)
    nb = _read(path)
    for cell in nb.cells:
        tags = cell.metadata.setdefault("tags", [])
        if "injected-parameters" in tags and "remove-cell" not in tags:
            tags.append("remove-cell")
    tmp = path.with_name(path.name + ".tmp")
    nbformat.write(nb, tmp)
    os.replace(tmp, path)


def _text_of(data: dict[str, Any], prefix: str) -> str | None:
    for mime in ("text/markdown", "text/plain"):
        value = data.get(prefix + mime)
        if value is None:
            continue
        text = "".join(value) if isinstance(value, list) else str(value)
        if mime == "text/plain" and len(text) >= 2 and text[0] == text[-1] and text[0] in "'\"":
            text = text[1:-1]  # the repr of a glued str
        if mime == "text/plain" and text.startswith("<IPython.core.display"):
            continue
        return text
    return None


def glued_text(path: Path, name: str) -> str | None:
    """The text a chapter glued under ``name`` (myst-nb's glue outputs carry the metadata
    ``{"scrapbook": {"name": name, "mime_prefix": ...}}``): its markdown, else its plain text
    (a glued string without its quotes); ``None`` when the notebook is missing or unreadable or
    glued nothing under ``name``. The last glue of a name wins, as on the page."""
    if not isinstance(name, str) or not name:
        raise ValueError(f"name: expected the glued key (a non-empty str), got {name!r}")
    path = Path(path)
    try:
        nb = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    found = None
    for cell in nb.get("cells", []) if isinstance(nb, dict) else []:
        for out in cell.get("outputs", []) if isinstance(cell, dict) else []:
            scrap = (out.get("metadata") or {}).get("scrapbook") or {}
            if scrap.get("name") == name:
                text = _text_of(out.get("data") or {}, scrap.get("mime_prefix") or "")
                found = text if text is not None else found
    return found
