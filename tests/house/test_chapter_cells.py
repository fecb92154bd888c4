"""Chapters read like lectures: the science runs in visible cells, numbers are glued in bulk.

A code cell hidden from the page (tags ``hide-input``, ``remove-input``, ``remove-cell``) may only
present: it must not call the layers that compute the science (``metrics``, ``theory``,
``analysis``, the engine's runs). Numbers reach the text through
:func:`w2s_utils.book.glue.glue_all` (about one call per section or subsection), never through
one ``glue(...)`` per number.
"""

from __future__ import annotations

import ast
import json
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
HIDDEN = {"hide-input", "remove-input", "remove-cell", "hide-cell"}
#: Names whose calls compute science: the layers below the book, and the engine's entry points.
SCIENCE_MODULES = {
    "metrics",
    "theory",
    "analysis",
    "heads",
    "overfitting",
    "trajectories",
    "regression",
    "engine",
    "instances",
}
SCIENCE_FUNCTIONS = {"run_grid", "run_experiment", "make_splits", "load_dataset"}


def _cells(path: Path) -> list[dict]:
    return json.loads(path.read_text())["cells"]


def _source(cell: dict) -> str:
    src = cell["source"]
    text = src if isinstance(src, str) else "".join(src)
    return "\n".join(ln for ln in text.splitlines() if not ln.lstrip().startswith(("%", "!")))


def science_calls(src: str) -> list[str]:
    """The calls in ``src`` that compute science: ``theory.f(...)``, ``run_grid(...)``, ..."""
    found = []
    for node in ast.walk(ast.parse(src)):
        if not isinstance(node, ast.Call):
            continue
        f = node.func
        if isinstance(f, ast.Name) and f.id in SCIENCE_FUNCTIONS:
            found.append(f.id)
        elif isinstance(f, ast.Attribute):
            base = f.value
            while isinstance(base, ast.Attribute):
                base = base.value
            if isinstance(base, ast.Name) and base.id in SCIENCE_MODULES:
                found.append(ast.unparse(f))
    return found


def test_science_calls_are_found():
    assert science_calls("x = theory.gain(a, b)\nplot(x)") == ["theory.gain"]
    assert science_calls("r = run_grid(preset=p)") == ["run_grid"]
    assert science_calls("glue_all(ch.glue(x))") == []


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_no_science_in_hidden_cells(path):
    hidden = [
        (i, science_calls(_source(c)))
        for i, c in enumerate(_cells(path))
        if c["cell_type"] == "code" and HIDDEN & set(c.get("metadata", {}).get("tags", []))
    ]
    bad = [(i, calls) for i, calls in hidden if calls]
    assert not bad, f"{path.name}: hidden cells compute science (cell, calls): {bad}; show them"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_numbers_are_glued_in_bulk(path):
    cells = _cells(path)
    sections = sum(
        1
        for c in cells
        if c["cell_type"] == "markdown"
        for ln in _source(c).splitlines()
        if ln.startswith(("## ", "### "))
    )
    single, bulk = 0, 0
    for c in cells:
        if c["cell_type"] != "code":
            continue
        for node in ast.walk(ast.parse(_source(c))):
            if isinstance(node, ast.Call) and isinstance(node.func, (ast.Name, ast.Attribute)):
                name = node.func.id if isinstance(node.func, ast.Name) else node.func.attr
                single += name == "glue"
                bulk += name in {"glue_all", "glue_frame"}
    assert single == 0, f"{path.name}: {single} glue(...) calls; glue a section's numbers at once"
    assert bulk <= sections + 2, (  # one per section, the frame's and the summary's
        f"{path.name}: {bulk} glue_all calls for {sections} sections; glue in bulk"
    )
