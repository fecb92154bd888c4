"""The library's folders are layers: a module imports only from its own layer or lower ones.

Order (lowest first): ``_validate`` < ``metrics`` < ``theory`` < ``engine`` < ``analysis`` <
``book`` < ``check``/``cli``/``__main__``. Imports are read from the source (top level and inside
functions alike, so a lazy import cannot hide a layering violation), and the module graph has no
cycles. A string that names a library module exactly (``"w2s_utils.engine.experiment"``) counts
as an import of it: the one place the library imports by name, the CLI dispatcher
(:func:`w2s_utils.cli.load`, :data:`LAZY_ALLOWED`), is layered like any other import.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

PKG = Path(__file__).resolve().parents[2] / "w2s_utils"
RANK = {
    "_validate": 0,
    "metrics": 1,
    "theory": 2,
    "engine": 3,
    "analysis": 4,
    "book": 5,
    "check": 6,
    "cli": 7,
}


def module_name(path: Path) -> str:
    rel = path.relative_to(PKG.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def layer(module: str) -> int | None:
    parts = module.split(".")
    if parts[0] != "w2s_utils":
        return None
    if len(parts) == 1:
        return -1  # the package itself (__version__)
    return RANK.get(parts[1], 8)  # __main__ sits on top


def imports(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found |= {f"{node.module}.{a.name}" for a in node.names}
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            if re.fullmatch(r"w2s_utils(\.\w+)+", node.value):
                found.add(node.value)  # a module imported by name (the CLI dispatcher)
    return {m for m in found if m.startswith("w2s_utils")}


MODULES = {module_name(p): p for p in PKG.rglob("*.py")}


def resolve(name: str) -> str | None:
    """The module an import names (``w2s_utils.metrics.kl`` -> ``w2s_utils.metrics``)."""
    while name and name not in MODULES:
        name = name.rpartition(".")[0]
    return name or None


def graph() -> dict[str, set[str]]:
    return {
        m: {r for r in (resolve(i) for i in imports(p)) if r and r != m} for m, p in MODULES.items()
    }


def test_every_module_has_a_layer():
    assert all(layer(m) is not None for m in MODULES)
    assert {m.split(".")[1] for m in MODULES if "." in m} >= set(RANK) - {"cli", "check"}


def test_lower_layers_never_import_higher_ones():
    bad = [
        (m, d)
        for m, deps in graph().items()
        for d in deps
        if layer(d) > layer(m) and not m.endswith("__main__")
    ]
    assert not bad, f"layering violations (module -> imported higher module): {bad}"


def test_no_import_cycles():
    g = graph()
    state: dict[str, int] = {}
    cycles = []

    def visit(m: str, stack: list[str]) -> None:
        state[m] = 1
        for d in g.get(m, ()):
            if (
                d.startswith(m + ".")
                or m.startswith(d + ".")
                and d in {x.rpartition(".")[0] for x in MODULES}
            ):
                continue  # a package and its own submodules (re-exports)
            if state.get(d) == 1:
                cycles.append(stack[stack.index(d) :] + [d] if d in stack else [m, d])
            elif d not in state:
                visit(d, stack + [d])
        state[m] = 2

    for m in g:
        if m not in state:
            visit(m, [m])
    assert not cycles, f"import cycles: {cycles}"


def test_the_checker_sees_a_violation():
    """A planted upward import is reported (the test above can fail)."""
    assert layer("w2s_utils.engine.experiment") > layer("w2s_utils.metrics.w2s")
    assert layer("w2s_utils.engine.planted") < layer("w2s_utils.analysis.cells")
    assert layer("w2s_utils.analysis.cells") < layer("w2s_utils.book.ch6_kl")
    assert resolve("w2s_utils.metrics.kl") == "w2s_utils.metrics"
    assert resolve("w2s_utils.engine.models.get_model") == "w2s_utils.engine.models"


#: The one exception to "no function-level imports of the library": the CLI dispatcher imports
#: the chosen subcommand's module by name (``importlib``), so that ``w2s check`` starts without
#: the training engine (tests/check/test_cli.py checks that it does).
LAZY_ALLOWED = {("w2s_utils.cli", "load")}


def lazy_imports(m: str, source: str) -> list[tuple[str, str, int]]:
    """``(module, function, line)`` of every import of the library below a module's top level,
    and of every call that imports by name (``importlib.import_module``, ``__import__``)."""
    tree = ast.parse(source)
    top = set(map(id, tree.body))
    found = []
    for fn in ast.walk(tree):
        if not isinstance(fn, ast.FunctionDef | ast.AsyncFunctionDef):
            continue
        for node in ast.walk(fn):
            if isinstance(node, ast.ImportFrom | ast.Import) and id(node) not in top:
                names = (
                    [node.module]
                    if isinstance(node, ast.ImportFrom)
                    else [a.name for a in node.names]
                )
                if any(n and n.startswith("w2s_utils") for n in names):
                    found.append((m, fn.name, node.lineno))
            elif isinstance(node, ast.Call):
                f = node.func
                name = f.attr if isinstance(f, ast.Attribute) else getattr(f, "id", None)
                if name in ("import_module", "__import__"):
                    found.append((m, fn.name, node.lineno))
    return found


def test_no_lazy_imports_of_the_library():
    """Imports of w2s_utils sit at the top of a module, where a reader sees the layering; the
    only exception is the CLI dispatcher (:data:`LAZY_ALLOWED`)."""
    lazy = [f for m, path in MODULES.items() for f in lazy_imports(m, path.read_text())]
    allowed = [f for f in lazy if f[:2] in LAZY_ALLOWED]
    assert [f for f in lazy if f[:2] not in LAZY_ALLOWED] == [], (
        f"function-level imports of the library: {lazy}"
    )
    assert [f[:2] for f in allowed] == sorted(LAZY_ALLOWED), "the dispatcher's exception is unused"


def test_the_lazy_import_checker_sees_each_kind():
    """A planted function-level import, an import by name and the dispatcher's own are found."""
    src = (
        "import importlib\n"
        "def f():\n    from w2s_utils import engine\n"
        "def g():\n    return importlib.import_module('w2s_utils.engine')\n"
        "def h():\n    return __import__('w2s_utils.book')\n"
    )
    assert [x[1] for x in lazy_imports("w2s_utils.x", src)] == ["f", "g", "h"]
    # the dispatcher's table counts as imports: the CLI sits above every module it names
    cli_deps = graph()["w2s_utils.cli"]
    assert {"w2s_utils.check", "w2s_utils.engine.experiment", "w2s_utils.book.runner"} <= cli_deps
