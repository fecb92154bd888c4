"""Sphinx extension of the book: bundled-MathJax check, true metadata and generated citations.

- ``config-inited``: the repository URL is one setting, ``repository.url`` in ``_config.yml``
  (``html_theme_options["repository_url"]``); while it is empty the repository and source buttons
  are off, and no citation carries a URL. The site's own address is ``html.baseurl``
  (``html_baseurl``): chapter citations link their page only when it is set.
- ``builder-inited``: an HTML build fails loudly when the bundled MathJax (``make mathjax``) is
  missing, instead of producing a site without maths.
- ``doctree-read``: every chapter (docnames starting with one of ``w2s_cite_chapter_prefixes``)
  gets a "Cite this chapter" BibTeX block, and the pages in ``w2s_cite_book_docs`` get one for the
  whole book. Both are derived from ``CITATION.cff`` (title, authors, version, date: one source of
  truth) and the chapter title.
- ``html-page-context``: every page's footer links the PDF of the whole book (``w2s_pdf_name``,
  made by ``make pdf``).
- ``{w2s-downloads}``: a directive listing the files of ``w2s_downloads_dir`` (the wheel of
  ``w2s_utils``, ``environment.yml``, ``requirements.lock``; ``make downloads`` puts them there) as
  download links, or saying that this copy of the site was built without them.
- Author-year citations (:mod:`w2s_bib_style`): ``bibtex_default_style`` and
  ``bibtex_reference_style`` ``w2s_author_year``.
"""

from __future__ import annotations

import datetime as _dt
import re
from pathlib import Path
from typing import Any

import w2s_bib_style
import yaml
from docutils import nodes
from sphinx import addnodes
from sphinx.application import Sphinx
from sphinx.config import Config
from sphinx.errors import ExtensionError
from sphinx.util.docutils import SphinxDirective

CFF_NAME = "CITATION.cff"
#: Theme buttons that point into the repository: shown only when ``repository.url`` is set.
REPOSITORY_BUTTONS = ("use_repository_button", "use_source_button")
#: What each download is, by file name (first match wins).
DOWNLOAD_NOTES = (
    (
        re.compile(r"^w2s_utils-.*\.whl$"),
        "the library `w2s_utils` that every chapter imports: "
        "`pip install '{name}[book]'` to run the chapters (the plain wheel is the core: "
        "`check` and the metrics and theory layers; its dependencies come from the package index)",
    ),
    (
        re.compile(r"^environment\.yml$"),
        "a conda environment with every dependency: `conda env create -f environment.yml`",
    ),
    (
        re.compile(r"^requirements\.lock$"),
        "the exact versions this site was built with: `pip install -r requirements.lock`",
    ),
)


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


def _slash(url: str) -> str:
    url = str(url or "").strip()
    return url if not url or url.endswith("/") else url + "/"


def citation_key(docname: str | None) -> str:
    """BibTeX key for the book (``docname=None``) or one of its pages."""
    if docname is None:
        return "w2sbook"
    return "w2sbook:" + re.sub(r"[^A-Za-z0-9_-]+", "-", Path(docname).name)


PAPER_NOTE = "Companion to Yao et al. (2025a), arXiv:2502.01458"


def chapter_bibtex(
    cff: dict[str, Any], chapter_title: str, docname: str, base_url: str = ""
) -> str:
    """``@incollection`` entry for one chapter of the book; ``url`` (the chapter's page) only when
    the site's address ``base_url`` is known."""
    site = _slash(base_url)
    fields = [
        ("author", _bibtex_authors(cff)),
        ("title", chapter_title),
        ("booktitle", cff["title"]),
        ("year", _year(cff)),
        ("version", str(cff.get("version", ""))),
        ("url", site + docname + ".html" if site else ""),
        ("note", PAPER_NOTE),
    ]
    return _format_entry("incollection", citation_key(docname), fields)


def book_bibtex(cff: dict[str, Any], url: str = "") -> str:
    """``@book`` entry for the whole book; ``url`` (the site, else the repository) only when
    known."""
    fields = [
        ("author", _bibtex_authors(cff)),
        ("title", cff["title"]),
        ("year", _year(cff)),
        ("version", str(cff.get("version", ""))),
        ("url", str(url or "").strip().rstrip("/")),
        ("note", PAPER_NOTE),
    ]
    return _format_entry("book", citation_key(None), fields)


def repository_url(config: Config) -> str:
    """The repository's address (``repository.url`` in ``_config.yml``), "" while unset."""
    options = getattr(config, "html_theme_options", None) or {}
    return str(options.get("repository_url") or "").strip()


def site_url(config: Config) -> str:
    """The published site's address (``html.baseurl`` in ``_config.yml``), "" while unset."""
    return str(getattr(config, "html_baseurl", "") or "").strip()


def repository_buttons(theme_options: dict[str, Any]) -> dict[str, Any]:
    """``theme_options`` with the repository buttons on exactly when ``repository_url`` is set
    (an unset URL must never give a button that points nowhere, or to a placeholder)."""
    out = dict(theme_options)
    has_url = bool(str(out.get("repository_url") or "").strip())
    for button in REPOSITORY_BUTTONS:
        out[button] = has_url
    out.setdefault("repository_url", "")
    return out


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
            chapter_bibtex(cff, title, docname, site_url(config)),
        )
    else:
        block = _citation_block(
            "Cite the book",
            "BibTeX for the whole book (generated from CITATION.cff).",
            book_bibtex(cff, site_url(config) or repository_url(config)),
        )
    sections = list(doctree.findall(nodes.section))
    (sections[0] if sections else doctree).append(block)


def _set_buttons(app: Sphinx, config: Config) -> None:
    config.html_theme_options = repository_buttons(config.html_theme_options or {})


def download_note(name: str) -> str:
    """What a downloadable file is and how to use it (Markdown-free plain text with backticks)."""
    for pattern, note in DOWNLOAD_NOTES:
        if pattern.match(name):
            return note.format(name=name)
    return ""


class DownloadsDirective(SphinxDirective):
    """``{w2s-downloads}``: the files of ``w2s_downloads_dir`` as a list of download links."""

    has_content = False

    def run(self) -> list[nodes.Node]:
        folder = Path(self.env.srcdir) / self.config.w2s_downloads_dir
        files = sorted(p for p in folder.iterdir() if p.is_file()) if folder.is_dir() else []
        if not files:
            text = (
                "This copy of the site was built without its downloads (the wheel of w2s_utils "
                "and the environment files): build them with `make downloads`, or install the "
                "library from a clone of the repository with `pip install -e '.[book]'`."
            )
            return [nodes.paragraph(text, text)]
        items = nodes.bullet_list()
        for path in files:
            target = "/" + path.relative_to(self.env.srcdir).as_posix()
            ref = addnodes.download_reference(
                "", "", refdoc=self.env.docname, reftarget=target, refexplicit=True
            )
            ref += nodes.literal(path.name, path.name, classes=["xref", "download"])
            para = nodes.paragraph("", "")
            para += ref
            note = download_note(path.name)
            for i, part in enumerate(re.split(r"`([^`]*)`", ": " + note if note else "")):
                para += nodes.literal(part, part) if i % 2 else nodes.Text(part)
            items += nodes.list_item("", para)
        return [items]


def _check_mathjax(app: Sphinx) -> None:
    if app.builder.format != "html":
        return
    mathjax = Path(app.confdir) / app.config.w2s_mathjax_file
    if not mathjax.is_file():
        raise ExtensionError(
            f"bundled MathJax not found at {mathjax}: the site must render maths offline. "
            "Run `make mathjax` (npm install mathjax@3, copied to book/_extra/mathjax)."
        )


def _pdf_link(
    app: Sphinx, pagename: str, templatename: str, context: dict[str, Any], doctree: Any
) -> None:
    """Every page's footer links the PDF of the whole book (``w2s_pdf_name`` at the site's root,
    made by ``make pdf``); the one-page build that the PDF is printed from gets no link."""
    name = app.config.w2s_pdf_name
    if not name or app.builder.name not in ("html", "dirhtml") or "pathto" not in context:
        return
    href = context["pathto"](name, 1)
    link = f'<a class="w2s-pdf-link" href="{href}">The whole book as a PDF</a>'
    footer = str(context.get("theme_extra_footer") or "")
    context["theme_extra_footer"] = f"{footer} {link}".strip()


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
    app.add_config_value("w2s_downloads_dir", "book/_extra/downloads", "env")
    app.add_config_value("w2s_pdf_name", "w2s-book.pdf", "html")
    w2s_bib_style.register()
    app.add_directive("w2s-downloads", DownloadsDirective)
    app.connect("config-inited", _set_buttons)
    app.connect("builder-inited", _check_mathjax)
    # before the toc/title collectors (priority 500) so the block is part of the page
    app.connect("doctree-read", _add_citation, priority=400)
    app.connect("html-page-context", _dedupe_scripts, priority=100)
    app.connect("html-page-context", _pdf_link)
    return {"version": "0.1", "parallel_read_safe": True, "parallel_write_safe": True}
