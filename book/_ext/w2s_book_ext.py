"""Sphinx extension of the book: bundled-MathJax check and generated citation blocks.

- ``builder-inited``: an HTML build fails loudly when the bundled MathJax (``make mathjax``) is
  missing, instead of producing a site without maths.
- ``doctree-read``: every chapter (docnames starting with one of ``w2s_cite_chapter_prefixes``)
  gets a "Cite this chapter" BibTeX block, and the pages in ``w2s_cite_book_docs`` get one for the
  whole book. Both are derived from ``CITATION.cff`` (one source of truth) and the chapter title.
"""

from __future__ import annotations

import datetime as _dt
import re
from pathlib import Path
from typing import Any

import yaml
from docutils import nodes
from sphinx.application import Sphinx
from sphinx.errors import ExtensionError

CFF_NAME = "CITATION.cff"


def load_cff(path: str | Path) -> dict[str, Any]:
    """Read ``CITATION.cff``; ValueError when it lacks a title or authors."""
    data = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    if not isinstance(data, dict) or not data.get("title") or not data.get("authors"):
        raise ValueError(f"{path}: CITATION.cff needs 'title' and 'authors'; fix the file")
    return data


def _bibtex_authors(cff: dict[str, Any]) -> str:
    names = []
    for author in cff["authors"]:
        if "family-names" in author:
            given = author.get("given-names", "")
            names.append(f"{author['family-names']}, {given}".rstrip(", "))
        else:
            names.append("{" + str(author["name"]) + "}")
    return " and ".join(names)


def _year(cff: dict[str, Any]) -> str:
    released = cff.get("date-released")
    if isinstance(released, _dt.date):
        return str(released.year)
    if released:
        return str(released)[:4]
    return str(_dt.date.today().year)


def _site_url(cff: dict[str, Any]) -> str:
    url = str(cff.get("url") or cff.get("repository-code") or "")
    return url if not url or url.endswith("/") else url + "/"


def citation_key(docname: str | None) -> str:
    """BibTeX key for the book (``docname=None``) or one of its pages."""
    if docname is None:
        return "w2sbook"
    return "w2sbook:" + re.sub(r"[^A-Za-z0-9_-]+", "-", Path(docname).name)


def chapter_bibtex(cff: dict[str, Any], chapter_title: str, docname: str) -> str:
    """``@incollection`` entry for one chapter of the book."""
    fields = [
        ("author", _bibtex_authors(cff)),
        ("title", chapter_title),
        ("booktitle", cff["title"]),
        ("year", _year(cff)),
        ("version", str(cff.get("version", ""))),
        ("url", _site_url(cff) + docname + ".html" if _site_url(cff) else ""),
        ("note", "Companion to Yao et al. (2025), arXiv:2502.01458"),
    ]
    return _format_entry("incollection", citation_key(docname), fields)


def book_bibtex(cff: dict[str, Any]) -> str:
    """``@book`` entry for the whole book."""
    fields = [
        ("author", _bibtex_authors(cff)),
        ("title", cff["title"]),
        ("year", _year(cff)),
        ("version", str(cff.get("version", ""))),
        ("url", _site_url(cff).rstrip("/")),
        ("note", "Companion to Yao et al. (2025), arXiv:2502.01458"),
    ]
    return _format_entry("book", citation_key(None), fields)


def _format_entry(kind: str, key: str, fields: list[tuple[str, str]]) -> str:
    body = ",\n".join(f"  {name:<9} = {{{value}}}" for name, value in fields if value)
    return f"@{kind}{{{key},\n{body}\n}}"


def _citation_block(title: str, intro: str, bibtex: str) -> nodes.Element:
    box = nodes.admonition(classes=["w2s-cite", "note"])
    box += nodes.title(title, title)
    box += nodes.paragraph(intro, intro)
    block = nodes.literal_block(bibtex, bibtex, language="bibtex")
    box += block
    return box


def _first_title(doctree: nodes.document) -> str:
    for section in doctree.findall(nodes.section):
        for child in section.children:
            if isinstance(child, nodes.title):
                return child.astext()
    return ""


def _add_citation(app: Sphinx, doctree: nodes.document) -> None:
    docname = app.env.docname
    config = app.config
    is_chapter = any(docname.startswith(p) for p in config.w2s_cite_chapter_prefixes)
    is_book_page = docname in config.w2s_cite_book_docs
    if not (is_chapter or is_book_page):
        return
    cff_path = Path(app.confdir) / CFF_NAME
    if not cff_path.is_file():
        raise ExtensionError(f"{cff_path} is missing: the citation blocks are generated from it")
    cff = load_cff(cff_path)
    if is_chapter:
        title = _first_title(doctree) or docname
        block = _citation_block(
            "Cite this chapter",
            "BibTeX for this chapter (generated from CITATION.cff); please also cite the paper.",
            chapter_bibtex(cff, title, docname),
        )
    else:
        block = _citation_block(
            "Cite the book",
            "BibTeX for the whole book (generated from CITATION.cff).",
            book_bibtex(cff),
        )
    sections = list(doctree.findall(nodes.section))
    (sections[0] if sections else doctree).append(block)


def _check_mathjax(app: Sphinx) -> None:
    if app.builder.format != "html":
        return
    mathjax = Path(app.confdir) / app.config.w2s_mathjax_file
    if not mathjax.is_file():
        raise ExtensionError(
            f"bundled MathJax not found at {mathjax}: the site must render maths offline. "
            "Run `make mathjax` (npm install mathjax@3, copied to book/_extra/mathjax)."
        )


def _dedupe_scripts(
    app: Sphinx, pagename: str, templatename: str, context: dict[str, Any], doctree: Any
) -> None:
    """Drop repeated <script> entries (sphinx-thebe / togglebutton register theirs twice under
    Jupyter Book 1, and a repeated ``const`` declaration is a console error)."""
    scripts = context.get("script_files")
    if not scripts:
        return
    seen: set[tuple[str, tuple[tuple[str, str], ...]]] = set()
    unique = []
    for js in scripts:
        attrs = getattr(js, "attributes", {}) or {}
        key = (
            str(getattr(js, "filename", js) or ""),  # None and "" both mean an inline script
            tuple(sorted((k, str(v)) for k, v in attrs.items())),
        )
        if key not in seen:
            seen.add(key)
            unique.append(js)
    scripts[:] = unique


def setup(app: Sphinx) -> dict[str, Any]:
    app.add_config_value("w2s_cite_chapter_prefixes", ["notebooks/"], "env")
    app.add_config_value("w2s_cite_book_docs", [], "env")
    app.add_config_value("w2s_mathjax_file", "book/_extra/mathjax/tex-chtml.js", "html")
    app.connect("builder-inited", _check_mathjax)
    # before the toc/title collectors (priority 500) so the block is part of the page
    app.connect("doctree-read", _add_citation, priority=400)
    app.connect("html-page-context", _dedupe_scripts, priority=100)
    return {"version": "0.1", "parallel_read_safe": True, "parallel_write_safe": True}
