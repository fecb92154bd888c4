"""The built site, as a reader sees it: headless Debian Chromium driven by Playwright.

Needs the site in ``_build/html`` (``make book``) and ``/usr/bin/chromium``
(``make test-browser`` installs it). Serves the site on 127.0.0.1 and, for every page in
``_toc.yml``: maths rendered by the bundled MathJax, numbered theorem boxes, images loaded,
internal links and anchors resolve, no console errors; a screenshot per page goes to
``_build/screenshots/``.
"""

from __future__ import annotations

import functools
import http.server
import os
import re
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import urldefrag, urljoin

import pytest

from w2s_utils.book.runner import toc_entries

pytestmark = pytest.mark.browser

ROOT = Path(os.environ.get("W2S_BOOK_ROOT") or Path(__file__).resolve().parents[2])
SITE = ROOT / "_build" / "html"
SHOTS = ROOT / "_build" / "screenshots"
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
BOX_KINDS = (
    "theorem lemma proposition corollary definition assumption remark example conjecture "
    "axiom criterion observation property algorithm"
).split()
NUMBERED_TITLE = re.compile(r"^(?P<kind>[A-Z][a-z]+) (?P<num>\d+(\.\d+)*)\b")

# Visible text without code, maths output and scripts: raw TeX left here means MathJax failed.
VISIBLE_TEXT_JS = """() => {
  const main = (document.querySelector('main') || document.body).cloneNode(true);
  main.querySelectorAll('pre, code, script, style, mjx-container, .highlight, textarea')
      .forEach(e => e.remove());
  return main.innerText;
}"""
IMAGES_JS = """async () => {
  const imgs = Array.from(document.images);
  for (const img of imgs) { img.loading = 'eager'; try { await img.decode(); } catch (e) {} }
  return imgs.map(i => ({src: i.currentSrc || i.src, w: i.naturalWidth}));
}"""
BOXES_JS = """() => Array.from(document.querySelectorAll('div.proof.admonition')).map(d => ({
  classes: d.className,
  title: (d.querySelector('.admonition-title') || {innerText: ''}).innerText.trim(),
}))"""


class _Ids(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.ids: set[str] = set()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        for key, value in attrs:
            if key in ("id", "name") and value:
                self.ids.add(value)


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        pass


def toc_pages() -> list[str]:
    """Site-relative HTML paths of every page in the toc (the entry page first)."""
    return ["index.html"] + [f"{entry}.html" for entry in toc_entries(ROOT)]


@pytest.fixture(scope="module")
def base_url() -> Iterator[str]:
    if not (SITE / "index.html").is_file():
        pytest.fail(f"no built site at {SITE}: run `make book` first")
    handler = functools.partial(_QuietHandler, directory=str(SITE))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} missing: run `make test-browser` (installs Debian's chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


@functools.cache
def _fetch(url: str) -> tuple[int, frozenset[str]]:
    """Status and element ids of a same-site URL."""
    try:
        with urllib.request.urlopen(url, timeout=10) as resp:
            body = resp.read()
            status = resp.status
            kind = resp.headers.get_content_type()
    except urllib.error.HTTPError as err:
        return err.code, frozenset()
    ids: frozenset[str] = frozenset()
    if kind == "text/html":
        parser = _Ids()
        parser.feed(body.decode("utf-8", "replace"))
        ids = frozenset(parser.ids)
    return status, ids


def _check_page(browser: object, base_url: str, rel: str) -> dict[str, object]:
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    console_errors: list[str] = []
    page.on("console", lambda m: console_errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: console_errors.append(f"page error: {e}"))
    failed: list[str] = []
    page.on("requestfailed", lambda r: failed.append(r.url))
    page.on(
        "response", lambda r: failed.append(f"HTTP {r.status} {r.url}") if r.status >= 400 else None
    )
    url = urljoin(base_url, rel)
    response = page.goto(url, wait_until="load")
    assert response is not None and response.ok, f"{rel}: HTTP {response and response.status}"
    has_math = page.locator(".math").count() > 0
    if has_math:
        page.wait_for_function("() => window.MathJax && MathJax.startup", timeout=20_000)
        page.evaluate("() => MathJax.startup.promise")
    page.wait_for_load_state("networkidle")
    info: dict[str, object] = {
        "url": page.url,
        "math": page.locator(".math").count(),
        "mjx": page.locator("mjx-container").count(),
        "text": page.evaluate(VISIBLE_TEXT_JS),
        "images": page.evaluate(IMAGES_JS),
        "boxes": page.evaluate(BOXES_JS),
        "links": page.eval_on_selector_all("a[href]", "as => as.map(a => a.href)"),
        "cite": page.locator(".w2s-cite").count(),
        "console": console_errors,
        "failed": failed,
    }
    SHOTS.mkdir(parents=True, exist_ok=True)
    shot = SHOTS / (rel.removesuffix(".html").replace("/", "__") + ".png")
    page.screenshot(path=str(shot), full_page=True)
    page.close()
    return info


@pytest.fixture(scope="module")
def pages(browser: object, base_url: str) -> dict[str, dict[str, object]]:
    return {rel: _check_page(browser, base_url, rel) for rel in toc_pages()}


@pytest.mark.parametrize("rel", toc_pages())
def test_page_renders(pages: dict[str, dict[str, object]], base_url: str, rel: str) -> None:
    info = pages[rel]
    assert not info["console"], f"{rel}: console errors {info['console']}"
    assert not info["failed"], f"{rel}: requests failed {info['failed']}"
    # maths: every math element typeset by MathJax (CHTML), no raw TeX delimiters left
    if info["math"]:
        assert info["mjx"] >= 1, f"{rel}: {info['math']} math elements, no mjx-container"
    text = str(info["text"])
    for raw in ("$$", "\\(", "\\)", "\\[", "\\begin{"):
        assert raw not in text, f"{rel}: raw TeX {raw!r} in the visible text"
    # theorem boxes carry their number ("Theorem 1", "Lemma 1", ...)
    for box in info["boxes"]:
        kinds = set(str(box["classes"]).split()) & set(BOX_KINDS)
        if kinds:
            match = NUMBERED_TITLE.match(str(box["title"]))
            assert match, f"{rel}: unnumbered {kinds} box titled {box['title']!r}"
            assert match["kind"].lower() in kinds, f"{rel}: box {box['title']!r} vs {kinds}"
            # a title that names its number in the text ("... (Theorem 1)") must carry it
            named = re.search(r"\((?P<kind>[A-Z][a-z]+) (?P<num>\d+)\)", str(box["title"]))
            if named:
                assert (named["kind"], named["num"]) == (match["kind"], match["num"]), (
                    f"{rel}: box {box['title']!r} is numbered differently from the name it uses"
                )
    # images loaded
    for img in info["images"]:
        assert img["w"] > 0, f"{rel}: image did not load: {img['src']}"
    # internal links and anchors resolve
    for href in info["links"]:
        if not str(href).startswith(base_url):
            continue
        target, fragment = urldefrag(str(href))
        status, ids = _fetch(target)
        assert status == 200, f"{rel}: link {href} -> HTTP {status}"
        if fragment and target.endswith(".html"):
            assert fragment in ids, f"{rel}: link {href}: no element with id {fragment!r}"
    # chapters end with a generated citation block
    if rel.startswith("notebooks/"):
        assert info["cite"] == 1, f"{rel}: expected one 'Cite this chapter' block"


def test_book_has_numbered_results_and_maths(pages: dict[str, dict[str, object]]) -> None:
    titles = [str(b["title"]) for info in pages.values() for b in info["boxes"]]
    numbered = [t for t in titles if NUMBERED_TITLE.match(t)]
    assert numbered, "no numbered theorem/lemma box anywhere in the book"
    assert sum(int(info["mjx"]) for info in pages.values()) > 0, "no maths rendered anywhere"
    shots = sorted(SHOTS.glob("*.png"))
    assert len(shots) >= len(pages), f"expected {len(pages)} screenshots, found {len(shots)}"
