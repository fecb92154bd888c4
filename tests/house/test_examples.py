"""Examples that cannot rot (issue 20, sec. 6): every ```python block of README.md and of the
book's Markdown pages (book/*.md) runs here, and every ``python -m w2s_utils ...`` line of their
```bash blocks is parsed by the command line's own parser.

Conventions for whoever writes an example:

- The ```python blocks of one file run in order, in one namespace (a later block may use the
  names an earlier one defined), in a fresh working folder, with a private ``W2S_CACHE_DIR`` and
  ``W2S_DEVICE=cpu``. Make them self-contained: build small synthetic inputs in the block itself.
- A block that cannot run here is marked by an HTML comment on the line just before its fence,
  ``<!-- example: needs a GPU ... -->`` or ``<!-- example: needs a cluster ... -->`` (invisible on
  GitHub and in the book). Nothing else is skipped. A marked block is still checked: it must
  parse, its ``w2s_utils`` imports must import, and every call of an imported library function
  must bind to that function's signature (a renamed function or keyword fails here).
- ```bash lines that run ``python -m w2s_utils`` must parse with ``w2s --help``'s options, name
  existing presets, datasets and models, and ``papermill`` lines existing notebooks.
"""

from __future__ import annotations

import ast
import importlib
import inspect
import re
import shlex
from dataclasses import dataclass
from pathlib import Path

import matplotlib
import pytest

from w2s_utils import cli
from w2s_utils.engine import data, models, presets

ROOT = Path(__file__).resolve().parents[2]
PAGES = [ROOT / "README.md", *sorted((ROOT / "book").glob("*.md"))]
SKIP_MARK = re.compile(r"^<!--\s*example:\s*needs (a GPU|a cluster)\b.*-->$")
FENCE = re.compile(r"^```(\w+)\s*$")


@dataclass
class Block:
    page: Path
    line: int  # 1-based line of the opening fence
    lang: str
    source: str
    skip: str | None  # the marker's reason, if the block is not run


def _blocks(page: Path) -> list[Block]:
    lines = page.read_text(encoding="utf-8").splitlines()
    out: list[Block] = []
    i = 0
    while i < len(lines):
        m = FENCE.match(lines[i])
        if m is None:
            i += 1
            continue
        start = i
        j = i + 1
        while j < len(lines) and lines[j].rstrip() != "```":
            j += 1
        prev = next((ln.strip() for ln in reversed(lines[:start]) if ln.strip()), "")
        mark = SKIP_MARK.match(prev)
        out.append(
            Block(
                page,
                start + 1,
                m.group(1),
                "\n".join(lines[start + 1 : j]) + "\n",
                mark.group(1) if mark else None,
            )
        )
        i = j + 1
    return out


def _where(block: Block) -> str:
    return f"{block.page.relative_to(ROOT)}:{block.line}"


def _pages_with(lang: str) -> list[Path]:
    return [p for p in PAGES if any(b.lang == lang for b in _blocks(p))]


def test_the_readme_has_runnable_library_examples():
    blocks = [b for b in _blocks(ROOT / "README.md") if b.lang == "python"]
    assert blocks and all(b.skip is None for b in blocks)
    assert any("check.check_arrays" in b.source for b in blocks), "mention the one call"


def test_only_gpu_and_cluster_blocks_are_marked():
    for page in PAGES:
        text = page.read_text(encoding="utf-8")
        for m in re.finditer(r"<!--\s*example:.*?-->", text):
            assert SKIP_MARK.match(m.group(0)), f"{page.name}: unknown marker {m.group(0)!r}"


@pytest.mark.parametrize("page", _pages_with("python"), ids=lambda p: p.name)
def test_python_blocks_run(page, tmp_path, monkeypatch, sandbox):
    matplotlib.use("Agg")
    monkeypatch.chdir(tmp_path)
    namespace: dict[str, object] = {"__name__": f"example_{page.stem}"}
    ran = 0
    for block in _blocks(page):
        if block.lang != "python":
            continue
        code = compile(block.source, _where(block), "exec")  # a SyntaxError names the block
        if block.skip is not None:
            _check_without_running(block, code)
            continue
        try:
            exec(code, namespace)  # noqa: S102 - the documentation's own examples
        except Exception as err:  # noqa: BLE001 - re-raised with the block named
            raise AssertionError(f"{_where(block)}: {type(err).__name__}: {err}") from err
        ran += 1
    assert ran or any(b.skip for b in _blocks(page))


def _check_without_running(block: Block, code) -> None:
    """A marked block: its library imports import and its calls of them bind."""
    tree = ast.parse(block.source)
    names: dict[str, object] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("w2s_utils"):
            module = importlib.import_module(node.module)
            for alias in node.names:
                assert hasattr(module, alias.name), f"{_where(block)}: {node.module}.{alias.name}"
                names[alias.asname or alias.name] = getattr(module, alias.name)
    for node in ast.walk(tree):
        if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)):
            continue
        fn = names.get(node.func.id)
        if fn is None or not callable(fn):
            continue
        if any(isinstance(a, ast.Starred) for a in node.args) or any(
            k.arg is None for k in node.keywords
        ):
            continue
        try:
            inspect.signature(fn).bind(*node.args, **{k.arg: None for k in node.keywords})
        except TypeError as err:
            raise AssertionError(f"{_where(block)}: {node.func.id}(...): {err}") from err


def _cli_lines(block: Block) -> list[list[str]]:
    out = []
    for raw in block.source.splitlines():
        line = raw.split(" #", 1)[0].strip()
        if "python -m w2s_utils" in line or line.startswith("papermill "):
            out.append(shlex.split(line))
    return out


@pytest.mark.slow
@pytest.mark.parametrize("page", _pages_with("bash"), ids=lambda p: p.name)
def test_bash_command_lines_parse(page):
    parser = cli.build_parser()
    seen = 0
    for block in _blocks(page):
        if block.lang != "bash":
            continue
        for tokens in _cli_lines(block):
            seen += 1
            where = f"{_where(block)}: {' '.join(tokens)}"
            if tokens[0] == "papermill":
                notebook = next(t for t in tokens if t.endswith(".ipynb"))
                assert (ROOT / notebook).is_file(), where
                if "-p" in tokens:
                    presets.get_preset(tokens[tokens.index("-p") + 2])
                continue
            argv = tokens[tokens.index("w2s_utils") + 1 :]
            try:
                args = parser.parse_args(argv)
            except SystemExit as exc:
                assert exc.code == 0 and "--help" in argv, where
                continue
            if getattr(args, "preset", None):
                presets.get_preset(args.preset)
            for name in getattr(args, "dataset", None) or []:
                assert name in data.DATASET_NAMES, where
            for name in [*(getattr(args, "weak", None) or []), getattr(args, "strong", None)]:
                assert name is None or name in models.MODEL_NAMES, where
    assert seen or page.name != "README.md"
