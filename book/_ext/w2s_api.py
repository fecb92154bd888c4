"""Sphinx extension for the book's API reference (book/api/): the library's docstrings, read as
reStructuredText under a strict build (``nitpicky``, warnings are errors).

Two conventions of the library's docstrings need a word to Sphinx:

- **Plain-text mathematics.** Docstrings write ``|gain|`` or ``|p - q|`` for absolute values, which
  reStructuredText would read as substitution references. :func:`escape_pipes` escapes every
  ``|`` outside ````literal```` spans before autodoc parses a docstring (the library defines no
  substitutions).
- **One object, several names.** A function lives in a module (``w2s_utils.engine.data.local.
  register``) and is documented where users import it, its package's face
  (``w2s_utils.engine.data.register``); docstrings cite either. :func:`resolve_alias` resolves a
  reference that Sphinx cannot find to the documented name of the *same object* (by identity),
  a relative ``:mod:`` name against the enclosing modules, and a target broken across a line.

And one directive, ``.. w2s-api:: MODULE`` (inside ``{eval-rst}`` in MyST), documents a module: its
docstring, then every name of its ``__all__`` (or, without one, the public functions, classes and
commented constants it defines) under the name a user imports, each with the documenter its kind
needs; a constant re-exported by a package's face takes the ``#:`` comment of the module that
defines it. With ``:modules:`` it also lists the package's modules with their docstrings, so that
``:mod:`` references to them resolve.

A reference that names nothing documented stays unresolved, so a strict build still fails on it.
Cross-reference a function from a chapter with ``{py:func}`w2s_utils.theory.error_aware_interval```
(MyST) or ``:py:func:`...``` (reStructuredText).
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil
import re
from typing import Any

from docutils import nodes
from docutils.parsers.rst import directives
from docutils.statemachine import StringList
from sphinx.pycode import ModuleAnalyzer
from sphinx.util.docutils import SphinxDirective
from sphinx.util.nodes import make_refnode, nested_parse_with_titles

#: A ````literal```` span (kept as it is) or anything else.
_LITERAL = re.compile(r"(``.+?``)")


def escape_pipes(line: str) -> str:
    """``line`` with every ``|`` outside ````literal```` spans escaped (``\\|``)."""
    parts = _LITERAL.split(line)
    return "".join(p if i % 2 else re.sub(r"(?<!\\)\|", r"\\|", p) for i, p in enumerate(parts))


def _escape_docstring(app: Any, what: str, name: str, obj: Any, options: Any, lines: list[str]):
    if what == "data" and (not lines or "\n".join(lines).strip() == (type(obj).__doc__ or "")):
        lines[:] = constant_comment(name, obj)
    lines[:] = [escape_pipes(line) for line in lines]


def _modules(package: str) -> list[str]:
    """``package`` and its modules (recursively; private ones too, ``__main__`` excepted)."""
    module = importlib.import_module(package)
    out = [package]
    for info in pkgutil.walk_packages(getattr(module, "__path__", []), prefix=package + "."):
        if not info.name.endswith("__main__"):
            out.append(info.name)
    return out


def constant_comment(name: str, obj: Any) -> list[str]:
    """The ``#:`` comment of the constant ``name`` (``package.CONSTANT``), read from the module of
    that package that defines the same object; ``[]`` if there is none."""
    package, _, attr = name.rpartition(".")
    for modname in _modules(package):
        try:
            module = importlib.import_module(modname)
        except ImportError:
            continue
        if getattr(module, attr, None) is not obj:
            continue
        docs = ModuleAnalyzer.for_module(modname).find_attr_docs()
        if ("", attr) in docs:
            return list(docs[("", attr)])
    return []


def public_names(module: Any) -> list[str]:
    """What a module offers: its ``__all__`` (else the public functions and classes it defines),
    then the public constants it comments with ``#:`` and does not list there."""
    docs = ModuleAnalyzer.for_module(module.__name__).find_attr_docs()
    commented = [attr for (cls, attr) in docs if not cls and not attr.startswith("_")]
    if hasattr(module, "__all__"):
        names = list(module.__all__)
    else:
        names = [
            attr
            for attr, obj in vars(module).items()
            if not attr.startswith("_")
            and (inspect.isclass(obj) or callable(obj))
            and getattr(obj, "__module__", None) == module.__name__
        ]
    return names + [attr for attr in commented if attr not in names]


def directive_for(obj: Any) -> str:
    """The autodoc directive that documents ``obj``."""
    if inspect.isclass(obj):
        return "autoexception" if issubclass(obj, BaseException) else "autoclass"
    if inspect.isroutine(obj) or callable(obj):
        return "autofunction"
    return "autodata"


class ApiDirective(SphinxDirective):
    """``.. w2s-api:: MODULE``, options ``:modules:`` (also list the package's modules: each
    one's docstring and the ``#:``-commented constants the package does not re-export) and
    ``:skip:`` (modules left out of that list: those documented by a directive of their own)."""

    required_arguments = 1
    option_spec = {"modules": directives.flag, "skip": directives.unchanged}

    def run(self) -> list[Any]:
        name = self.arguments[0]
        module = importlib.import_module(name)
        lines = [f".. automodule:: {name}", "   :no-members:", ""]
        offered = public_names(module)
        for attr in offered:
            obj = getattr(module, attr)
            if not inspect.ismodule(obj):
                lines += [f".. {directive_for(obj)}:: {name}.{attr}", ""]
        if "modules" in self.options:
            skip = set((self.options.get("skip") or "").replace(",", " ").split())
            lines += [".. rubric:: Modules", ""]
            for sub in _modules(name)[1:]:
                short = sub.rpartition(".")[2]
                if sub in skip or not inspect.ismodule(getattr(module, short, module)):
                    continue  # documented elsewhere, or its name is taken by a member
                lines += [f".. automodule:: {sub}", "   :no-members:", ""]
                docs = ModuleAnalyzer.for_module(sub).find_attr_docs()
                for cls, attr in docs:
                    if not cls and not attr.startswith("_") and attr not in offered:
                        lines += [f".. autodata:: {sub}.{attr}", ""]
        content = StringList(lines, source=f"<w2s-api {name}>")
        node = nodes.section()
        node.document = self.state.document
        nested_parse_with_titles(self.state, content, node)
        return node.children


def _import(path: str) -> Any:
    """The object ``path`` names, as attribute access reads it (``w2s_utils.theory.sweep`` is the
    function the package exports, not the module of that name), else as a module path
    (``w2s_utils.theory.sweep.sweep``); ``None`` if it names nothing."""
    parts = path.split(".")
    try:
        obj = importlib.import_module(parts[0])
        for i, attr in enumerate(parts[1:], start=2):
            obj = (
                getattr(obj, attr)
                if hasattr(obj, attr)
                else importlib.import_module(".".join(parts[:i]))
            )
        return obj
    except ImportError:
        pass
    for cut in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:cut]))
        except ImportError:
            continue
        try:
            for attr in parts[cut:]:
                obj = getattr(obj, attr)
        except AttributeError:
            return None
        return obj
    return None


def documented_names(objects: dict[str, Any]) -> dict[int, str]:
    """``id(object) -> documented name`` for every documented Python object (the shortest name
    wins when an object is documented twice)."""
    out: dict[int, str] = {}
    for name in sorted(objects, key=len, reverse=True):
        obj = _import(name)
        if obj is not None:
            out[id(obj)] = name
    return out


def resolve_alias(
    target: str, module: str | None, objects: dict[str, Any], ids: dict[int, str] | None = None
) -> str | None:
    """The documented name for the reference ``target`` made in ``module``, or ``None``.

    ``objects`` are the documented names (``ids``: :func:`documented_names` of them, computed
    here when needed and not given). Tries, in order: ``target`` with its white space removed (a
    role broken across a docstring's lines); relative to ``module`` and each of its parents; the
    documented name of the object that ``target`` (or its relative form) imports to.
    """
    target = re.sub(r"\s+", "", target).lstrip("~.")
    candidates = [target]
    while module:
        candidates.append(f"{module}.{target}")
        module = module.rpartition(".")[0]
    for name in candidates:
        if name in objects:
            return name
    for name in candidates:
        if not name.startswith("w2s_utils"):
            continue
        obj = _import(name)
        if obj is None or isinstance(obj, str | int | float | bool | tuple | type(None)):
            continue  # constants compare equal, not identical: never alias them
        ids = documented_names(objects) if ids is None else ids
        if id(obj) in ids:
            return ids[id(obj)]
    return None


#: Where a docstring's reference was made: ``... docstring of <dotted name>``.
_DOCSTRING_OF = re.compile(r"docstring of ([\w.]+)")


def _missing_reference(app: Any, env: Any, node: Any, contnode: Any) -> Any:
    if node.get("refdomain") != "py":
        return None
    objects = env.get_domain("py").objects
    if getattr(env, "_w2s_api_ids", (None,))[0] != len(objects):
        env._w2s_api_ids = (len(objects), documented_names(objects))
    ids = env._w2s_api_ids[1]
    name = resolve_alias(node["reftarget"], node.get("py:module"), objects, ids)
    where = _DOCSTRING_OF.search(node.source or "")
    if name is None and where:  # relative to the module that defines the documented object
        name = resolve_alias(node["reftarget"], where.group(1).rpartition(".")[0], objects, ids)
    if name is None:
        return None
    entry = objects[name]
    return make_refnode(app.builder, node["refdoc"], entry.docname, entry.node_id, contnode, name)


def setup(app: Any) -> dict[str, Any]:
    app.add_directive("w2s-api", ApiDirective)
    app.connect("autodoc-process-docstring", _escape_docstring)
    app.connect("missing-reference", _missing_reference)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
