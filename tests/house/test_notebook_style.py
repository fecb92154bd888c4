"""The house style of the chapters: thin code cells that call the library as a reader would.

Every notebook in ``notebooks/``: code cells of at most 15 code lines (blank lines and comments do
not count) with a median of at most 8, no line wider than 88 characters, no function or class
defined in a notebook (a chapter that shows a computation by hand writes it inline), and no stored
outputs.
"""

from __future__ import annotations

import ast
import json
import statistics
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
MAX_LINES, MAX_MEDIAN, MAX_WIDTH = 15, 8, 88


def code_lines(src: str) -> int:
    return sum(1 for ln in src.splitlines() if ln.strip() and not ln.strip().startswith("#"))


def code_cells(path: Path) -> list[dict]:
    cells = json.loads(path.read_text())["cells"]
    return [c for c in cells if c["cell_type"] == "code"]


def source(cell: dict) -> str:
    src = cell["source"]
    return src if isinstance(src, str) else "".join(src)


def test_there_are_notebooks():
    assert len(NOTEBOOKS) >= 2


def test_code_line_counts_ignore_blanks_and_comments():
    assert code_lines("a = 1\n\n# note\n  # indented note\nb = 2\n") == 2


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_cells_are_short(path):
    sizes = [code_lines(source(c)) for c in code_cells(path)]
    long = {i: n for i, n in enumerate(sizes) if n > MAX_LINES}
    assert not long, f"{path.name}: code cells over {MAX_LINES} lines (cell: lines): {long}"
    assert statistics.median(sizes) <= MAX_MEDIAN, f"{path.name}: median {statistics.median(sizes)}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_no_line_wider_than_the_page(path):
    wide = [
        (i, ln)
        for i, c in enumerate(code_cells(path))
        for ln in source(c).splitlines()
        if len(ln) > MAX_WIDTH
    ]
    assert not wide, f"{path.name}: code lines wider than {MAX_WIDTH}: {wide[:3]}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_no_helpers_defined_in_notebooks(path):
    found = []
    for i, c in enumerate(code_cells(path)):
        src = "\n".join(
            ln for ln in source(c).splitlines() if not ln.lstrip().startswith(("%", "!"))
        )
        tree = ast.parse(src)
        defs = [
            n.name
            for n in ast.walk(tree)
            if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))
        ]
        found += [(i, d) for d in defs]
    assert not found, f"{path.name}: defines {found}; move them into the library"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_stored_without_outputs(path):
    with_outputs = [i for i, c in enumerate(code_cells(path)) if c.get("outputs")]
    counted = [i for i, c in enumerate(code_cells(path)) if c.get("execution_count")]
    assert not with_outputs and not counted, f"{path.name}: stored outputs in cells {with_outputs}"
