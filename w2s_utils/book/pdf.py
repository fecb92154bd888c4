"""The PDF of the whole book: ``make pdf`` (``python -m w2s_utils.book.pdf``), offline.

Route: the one-page HTML of the whole book, printed by Debian's Chromium.

1. **One page.** Jupyter Book 1 builds the staged sources of the last ``make book``
   (``_build/src``: the executed notebooks, the build-info page) with the ``singlehtml`` builder
   into ``_build/pdf/`` (nitpicky, warnings as errors, like the site). Theorem, figure and
   equation numbers, glued numbers, citations and the bibliography are Sphinx's, as on the site.
2. **Printed.** Chromium (driven by Playwright, ``/usr/bin/chromium``) loads that page from a
   local server, waits until the bundled MathJax has typeset every formula and every image is
   decoded, opens every solution (sphinx-design dropdowns), drops the hidden code cells' toggles,
   shrinks an equation or table that is wider than the page to fit it, adds a title page, and
   prints A4 with page numbers and a PDF outline (bookmarks from the headings). The print rules
   (no navigation, chapters on new pages) are in ``book/_static/w2s.css``.
3. **Published.** The PDF is written to ``_build/pdf/w2s-book.pdf`` and copied into the site,
   ``_build/html/w2s-book.pdf``, which the index page and every page's footer link.

Nothing is fetched from the network: the page loads only local files (a request to any other
host fails the build). ``tests/browser/test_pdf.py`` checks the result with poppler's
``pdftotext`` and ``pdfimages``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import functools
import http.server
import os
import shutil
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import yaml

from w2s_utils.book.runner.processes import run_watched
from w2s_utils.book.runner.site import ANSI_ESCAPE
from w2s_utils.book.runner.toc import (
    BUILD_DIR,
    HTML_DIR,
    STAGING_DIR,
    check_root,
    find_root,
    toc_entries,
)
from w2s_utils.engine.cache import notice

__all__ = ["PDF_DIR", "PDF_NAME", "build_pdf", "build_singlehtml", "main", "print_pdf"]

PDF_NAME = "w2s-book.pdf"
PDF_DIR = "pdf"
#: The copy of the one page that Chromium prints, at the top of the singlehtml folder.
ONE_PAGE = "w2s-one-page.html"
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run"]
#: A4 with 15 mm side margins: the width the page is laid out at before printing (CSS px).
PAGE_MARGINS = {"top": "16mm", "bottom": "18mm", "left": "15mm", "right": "15mm"}
CONTENT_WIDTH_PX = round((210 - 30) / 25.4 * 96)
#: A block is shrunk to fit the page at most this much; wider ones are cut (and reported).
MIN_ZOOM = 0.5
FOOTER = (
    '<div style="font-size:8px;width:100%;text-align:center;color:#555;">'
    '<span class="pageNumber"></span> / <span class="totalPages"></span></div>'
)

# Prepare the page for print: solutions open, hidden code gone, wide blocks fitted, a title page.
PREPARE_JS = """async ([title, lines, minZoom]) => {
  document.querySelectorAll('details').forEach(d => {
    if (d.matches('.hide.above-input')) d.remove(); else d.open = true;
  });
  document.querySelectorAll('.toggle-hidden').forEach(e => e.classList.remove('toggle-hidden'));
  const article = document.querySelector('article.bd-article') || document.body;
  const cover = document.createElement('section');
  cover.className = 'w2s-cover';
  cover.style.cssText = 'break-after: page; padding-top: 30vh; text-align: center;';
  const h = document.createElement('p');
  h.textContent = title;
  h.style.cssText = 'font-size: 2.2em; font-weight: 600; line-height: 1.2; margin-bottom: 1em;';
  cover.appendChild(h);
  for (const line of lines) {
    const p = document.createElement('p'); p.textContent = line; cover.appendChild(p);
  }
  article.prepend(cover);
  const imgs = Array.from(document.images);
  for (const img of imgs) { img.loading = 'eager'; try { await img.decode(); } catch (e) {} }
  const fitted = [], cut = [];
  const sel = 'mjx-container[display="true"], .w2s-table-wrap > table, ' +
      '.cell_output .output.text_html table, .pst-scrollable-table-container > table, ' +
      '.cell_output img';
  for (const el of document.querySelectorAll(sel)) {
    const avail = el.parentElement.clientWidth;
    const need = el.scrollWidth;
    if (avail > 0 && need > avail + 1) {
      const zoom = avail / need;
      el.style.zoom = Math.max(minZoom, zoom);
      (zoom >= minZoom ? fitted : cut).push((el.textContent || el.tagName).trim().slice(0, 60));
    }
  }
  return {images: imgs.length, broken: imgs.filter(i => !i.naturalWidth).map(i => i.src),
          fitted: fitted, cut: cut,
          mjx: document.querySelectorAll('mjx-container').length,
          unrendered: document.querySelectorAll('.math:not(:has(mjx-container))').length};
}"""


def build_singlehtml(
    root: Path, staging: Path, out: Path, *, log: Callable[[str], None] = notice
) -> Path:
    """Jupyter Book 1 ``singlehtml`` build of ``staging`` into ``out`` (``-n -W --keep-going``);
    returns the one page (the toc's root document, e.g. ``book/index.html``; the site's
    ``index.html`` only redirects there). RuntimeError with the warnings on failure."""
    cmd = [
        sys.executable,
        "-c",
        "import sys; from w2s_utils.book.runner import watch_parent; watch_parent(); "
        "from jupyter_book.cli.main import main; sys.exit(main())",
        "build",
        str(staging),
        "--path-output",
        str(out),
        "--builder",
        "singlehtml",
        "--all",
        "-n",
        "-W",
        "--keep-going",
    ]
    proc = run_watched(cmd, cwd=root, env=dict(os.environ, NO_COLOR="1"))
    output = ANSI_ESCAPE.sub("", proc.stdout + proc.stderr)
    (out / "sphinx-singlehtml.log").write_text(output, encoding="utf-8")
    site = out / BUILD_DIR / "singlehtml"
    page = site / f"{toc_entries(staging)[0]}.html"
    if proc.returncode != 0 or not page.is_file():
        warnings = [ln for ln in output.splitlines() if "WARNING" in ln or "ERROR" in ln]
        shown = "\n".join(warnings[-30:]) or "\n".join(output.splitlines()[-30:])
        raise RuntimeError(
            f"the one-page build for the PDF failed (exit {proc.returncode}); full log: "
            f"{out / 'sphinx-singlehtml.log'}\n{shown}"
        )
    log(f"one-page HTML built: {page}")
    return page


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        pass


@contextmanager
def _serve(folder: Path) -> Iterator[str]:
    handler = functools.partial(_QuietHandler, directory=str(folder))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()


def print_pdf(
    page_file: Path,
    pdf: Path,
    *,
    title: str,
    lines: list[str],
    chromium: Path = CHROMIUM,
    timeout_s: float = 300.0,
    log: Callable[[str], None] = notice,
) -> dict[str, Any]:
    """Print ``page_file`` (the one-page book of :func:`build_singlehtml`, served with the
    ``singlehtml`` folder above it) to ``pdf`` with Chromium; returns what was found on the page
    (images, formulas, blocks fitted to the page). RuntimeError when Chromium is missing, a
    request leaves the machine, MathJax leaves a formula untypeset or an image is broken."""
    if not chromium.exists():
        raise RuntimeError(
            f"{chromium} is missing: install Debian's chromium (`make chromium`, or "
            "`apt-get install chromium`)"
        )
    from playwright.sync_api import sync_playwright

    pdf.parent.mkdir(parents=True, exist_ok=True)
    tmp = pdf.with_name(pdf.name + ".tmp")
    site = page_file.parent
    while site.name != "singlehtml" and site != site.parent:
        site = site.parent
    if site == site.parent:
        raise ValueError(f"page_file: {page_file} is not inside a singlehtml build folder")
    # Sphinx writes the one page at the root document's path (book/index.html) with links
    # relative to the build folder: it is read from a copy at that folder's top
    top = site / ONE_PAGE
    shutil.copy2(page_file, top)
    with _serve(site) as base, sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(chromium), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": CONTENT_WIDTH_PX, "height": 1100})
            page.set_default_timeout(timeout_s * 1000)
            outside: list[str] = []
            errors: list[str] = []

            page.on(
                "request",
                lambda r: (
                    None if r.url.startswith((base, "data:", "blob:")) else outside.append(r.url)
                ),
            )
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.emulate_media(media="print")
            page.goto(base + ONE_PAGE, wait_until="load")
            page.wait_for_function("() => window.MathJax && MathJax.startup", timeout=60_000)
            page.evaluate("() => MathJax.startup.promise")
            page.evaluate("() => document.fonts.ready.then(() => true)")
            found = page.evaluate(PREPARE_JS, [title, lines, MIN_ZOOM])
            if outside:
                raise RuntimeError(f"the book page asked for files outside the machine: {outside}")
            if errors:
                raise RuntimeError(f"script errors on the book page: {errors[:5]}")
            if found["unrendered"]:
                raise RuntimeError(f"{found['unrendered']} formulas were not typeset by MathJax")
            if found["broken"]:
                raise RuntimeError(f"images that did not load: {found['broken'][:5]}")
            page.pdf(
                path=str(tmp),
                format="A4",
                margin=PAGE_MARGINS,
                print_background=True,
                display_header_footer=True,
                header_template="<span></span>",
                footer_template=FOOTER,
                outline=True,
                tagged=True,
            )
        finally:
            browser.close()
    os.replace(tmp, pdf)
    if found["cut"]:
        log(
            f"PDF: {len(found['cut'])} blocks are wider than the page even at {MIN_ZOOM:.0%}: "
            + "; ".join(found["cut"][:5])
        )
    log(
        f"PDF: {found['images']} images, {found['mjx']} formulas, {len(found['fitted'])} wide "
        f"blocks shrunk to fit: {pdf}"
    )
    return found


def _cover_lines(root: Path, config: dict[str, Any]) -> list[str]:
    lines = [str(config.get("author") or "")]
    lines.append("A companion to arXiv:2502.01458")
    lines.append(
        f"This PDF: {dt.datetime.now(dt.timezone.utc):%Y-%m-%d}, from the site built in "
        f"{root / BUILD_DIR / HTML_DIR} (see its build-information page)"
    )
    return [line for line in lines if line]


def build_pdf(
    root: Path, *, chromium: Path = CHROMIUM, log: Callable[[str], None] = notice
) -> Path:
    """The whole book as ``_build/pdf/w2s-book.pdf``, copied into ``_build/html``; needs the
    staged sources and the site of a previous ``make book``. Returns the PDF's path."""
    staging = root / BUILD_DIR / STAGING_DIR
    html = root / BUILD_DIR / HTML_DIR
    if not (staging / "_toc.yml").is_file() or not (html / "index.html").is_file():
        raise RuntimeError(
            f"no built book in {root / BUILD_DIR} (staged sources in {STAGING_DIR}/ and the site "
            f"in {HTML_DIR}/): run `make book` first"
        )
    out = root / BUILD_DIR / PDF_DIR
    shutil.rmtree(out / BUILD_DIR, ignore_errors=True)
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    page = build_singlehtml(root, staging, out, log=log)
    config = yaml.safe_load((staging / "_config.yml").read_text(encoding="utf-8")) or {}
    pdf = out / PDF_NAME
    print_pdf(
        page,
        pdf,
        title=str(config.get("title") or "The book"),
        lines=_cover_lines(root, config),
        chromium=chromium,
        log=log,
    )
    shutil.copy2(pdf, html / PDF_NAME)
    log(
        f"PDF built in {time.perf_counter() - t0:.0f} s and linked from the site: {html / PDF_NAME}"
    )
    return pdf


def main(argv: list[str] | None = None) -> int:
    """``python -m w2s_utils.book.pdf [--root ROOT]``: exit 0 with the PDF built, 1 otherwise."""
    parser = argparse.ArgumentParser(
        prog="python -m w2s_utils.book.pdf",
        description="Build the PDF of the whole book from the last `make book` (one-page HTML "
        "printed by Chromium) into _build/pdf/w2s-book.pdf and _build/html/w2s-book.pdf.",
    )
    parser.add_argument("--root", help="repository root (default: found from the cwd)")
    args = parser.parse_args(argv)
    try:
        root = check_root(args.root) if args.root else find_root()
        build_pdf(root)
    except (RuntimeError, ValueError, FileNotFoundError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
