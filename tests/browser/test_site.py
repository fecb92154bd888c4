"""The built site, as a reader sees it: headless Debian Chromium driven by Playwright.

Needs ``/usr/bin/chromium`` (``make test-browser`` installs it). Two sets of tests:

- **The book** (``_build/html``, from ``make book``; another folder with ``W2S_BOOK_SITE``): every
  page in ``_toc.yml`` at 1280 px and at phone width (390 px): maths rendered by the bundled
  MathJax, numbered theorem boxes, images loaded, internal links and anchors resolve, no console
  errors, and the page is clean (:func:`page_problems`): no display equation or table runs past the
  text column (a block may be wider only inside a scroll container that fits the column), no
  progress bars, warnings, local paths or raw object reprs in executed outputs, no NaN,
  negative zero, ``True``/``False`` or code-like headers in tables, every figure numbered with a
  caption and alt text, no placeholder. Screenshots of each page at both widths go to
  ``_build/screenshots/{desktop,phone}/`` (not committed; the folder is printed at the end).
- **The checks themselves**, on a small fixture site that the test builds with Jupyter Book from
  the book's own configuration, extension and stylesheet: a clean page passes, a page with one
  instance of every problem is reported for each, the stylesheet is what keeps a long equation in
  the column, and citations read author-year with 2025a/2025b.
"""

from __future__ import annotations

import functools
import os
import re
import urllib.error
import urllib.request
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import urldefrag, urljoin

import pytest
from fixture_book import PAGES, build_fixture_site, serve

from w2s_utils.book.runner import toc_entries

pytestmark = pytest.mark.browser

ROOT = Path(os.environ.get("W2S_BOOK_ROOT") or Path(__file__).resolve().parents[2])
SITE = Path(os.environ.get("W2S_BOOK_SITE") or ROOT / "_build" / "html")
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
#: Reader's viewports: a laptop and a phone (iPhone 12-15 width).
VIEWPORTS = {"desktop": (1280, 900), "phone": (390, 844)}
BOX_KINDS = (
    "theorem lemma proposition corollary definition assumption remark example conjecture "
    "axiom criterion observation property algorithm"
).split()
NUMBERED_TITLE = re.compile(r"^(?P<kind>[A-Z][a-z]+) (?P<num>\d+(\.\d+)*)\b")

#: Output noise: what must never reach an executed output on the page.
OUTPUT_NOISE = {
    "progress bar": re.compile(r"\d+%\|"),
    "warning": re.compile(r"\b\w*Warning\b"),
    "local path": re.compile(r"(?<![\w.~])/(work|root|home|tmp)/|site-packages"),
    "raw object repr": re.compile(r"<[\w.]+ object at 0x[0-9a-fA-F]+>|<IPython\.core\.display"),
}
#: Placeholders: never anywhere on a page (text, links, image sources).
PLACEHOLDERS = re.compile(r"PLACEHOLDER|example\.com|w2s-book/w2s-book")
#: A header that reads like a code name (``eps_t``, ``f_star``, ``old_width``).
CODE_HEADER = re.compile(r"\b[a-z][a-z0-9]*_[a-z0-9_]+\b")
NUMBER = re.compile(r"(?<![\w.])([-−+]?)(\d+(?:[.,]\d+)*)(?:e[-+]?\d+)?(?![\w])")
#: Figures displayed below this fraction of their own width have illegible text.
MIN_FIGURE_SCALE = 0.45
#: The PDF of the whole book (``make pdf``), at the site's root.
PDF_NAME = "w2s-book.pdf"

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
OPEN_DETAILS_JS = "() => document.querySelectorAll('details').forEach(d => { d.open = true; })"
# Blocks that run past the text column. The box a reader sees is the block itself, or its nearest
# ancestor (inside the column) that scrolls horizontally; it must fit the column.
OVERFLOW_JS = """() => {
  const col = document.querySelector('article.bd-article') || document.querySelector('main')
      || document.body;
  const cs = getComputedStyle(col);
  const cr = col.getBoundingClientRect();
  const left = cr.left + parseFloat(cs.paddingLeft) - 1;
  const right = cr.right - parseFloat(cs.paddingRight) + 1;
  const scrolls = e => ['auto', 'scroll'].includes(getComputedStyle(e).overflowX);
  const sel = 'mjx-container[display="true"], table, figure, img, pre, div.math, ' +
      '.cell_output > div, .admonition, div.proof';
  const out = [];
  for (const el of col.querySelectorAll(sel)) {
    const r = el.getBoundingClientRect();
    if (r.width === 0 || r.height === 0) continue;
    let box = null;
    for (let p = el; p && p !== col; p = p.parentElement) { if (scrolls(p)) { box = p; break; } }
    const b = (box || el).getBoundingClientRect();
    if (b.right > right || b.left < left) {
      out.push({tag: el.tagName.toLowerCase(), cls: String(el.className || ''),
                text: (el.textContent || '').trim().slice(0, 60), left: b.left, right: b.right,
                colLeft: left, colRight: right, scrolls: !!box});
    }
  }
  const doc = document.documentElement;
  const W = doc.clientWidth;
  const clipped = e => { for (let p = e.parentElement; p; p = p.parentElement) {
    if (getComputedStyle(p).overflowX !== 'visible') return true; } return false; };
  const wide = Array.from(col.querySelectorAll('*'))
    .filter(e => e.getBoundingClientRect().right > W + 1 && !clipped(e)
                 && !Array.from(e.children).some(c => c.getBoundingClientRect().right > W + 1))
    .slice(0, 3)
    .map(e => e.tagName.toLowerCase() + ': ' + (e.textContent || '').trim().slice(0, 60));
  return {blocks: out, page: doc.scrollWidth - W, wide: wide};
}"""
OUTPUTS_JS = """() => Array.from(document.querySelectorAll('.cell_output')).map(e => e.innerText)"""
TABLES_JS = """() => {
  const col = document.querySelector('article.bd-article') || document.body;
  return Array.from(col.querySelectorAll('table')).filter(t => !t.closest('.highlight, pre'))
    .map(t => {
      const text = c => { const k = c.cloneNode(true);
        k.querySelectorAll('code, mjx-container, .math').forEach(x => x.remove());
        return k.innerText.trim(); };
      return {headers: Array.from(t.querySelectorAll('th')).map(text),
              cells: Array.from(t.querySelectorAll('td')).map(text)};
    });
}"""
FIGURES_JS = """() => {
  const col = document.querySelector('article.bd-article') || document.body;
  return Array.from(col.querySelectorAll('img')).map(img => {
    const fig = img.closest('figure');
    const cap = fig ? fig.querySelector('figcaption') : null;
    const num = cap ? cap.querySelector('.caption-number') : null;
    return {src: img.getAttribute('src') || '', alt: img.getAttribute('alt') || '',
            caption: cap ? cap.innerText.trim() : '', number: num ? num.innerText.trim() : '',
            shown: img.getBoundingClientRect().width, natural: img.naturalWidth};
  });
}"""
ATTRIBUTES_JS = """() => Array.from(document.querySelectorAll('[href], [src]'))
  .map(e => e.getAttribute('href') || e.getAttribute('src') || '')"""


class _Ids(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.ids: set[str] = set()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        for key, value in attrs:
            if key in ("id", "name") and value:
                self.ids.add(value)


def toc_pages(root: Path = ROOT) -> list[str]:
    """Site-relative HTML paths of every page in the toc (the entry page first)."""
    return ["index.html"] + [f"{entry}.html" for entry in toc_entries(root)]


@pytest.fixture(scope="module")
def base_url() -> Iterator[str]:
    if not (SITE / "index.html").is_file():
        pytest.fail(f"no built site at {SITE}: run `make book` first")
    with serve(SITE) as url:
        yield url


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


def check_page(
    browser: object,
    base_url: str,
    rel: str,
    viewport: str = "desktop",
    shots: Path | None = SHOTS,
    *,
    stylesheet: bool = True,
) -> dict[str, object]:
    """Load ``rel`` at ``viewport`` and collect what the checks read (see :func:`page_problems`).
    ``stylesheet=False`` removes the book's own stylesheet first (to show what it does)."""
    width, height = VIEWPORTS[viewport]
    page = browser.new_page(viewport={"width": width, "height": height})
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
    if not stylesheet:
        page.evaluate(
            "() => document.querySelectorAll('link[href*=\"w2s.css\"]').forEach(l => l.remove())"
        )
    info: dict[str, object] = {
        "rel": rel,
        "viewport": viewport,
        "url": page.url,
        "math": page.locator(".math").count(),
        "mjx": page.locator("mjx-container").count(),
        "text": page.evaluate(VISIBLE_TEXT_JS),
        "images": page.evaluate(IMAGES_JS),
        "boxes": page.evaluate(BOXES_JS),
        "links": page.eval_on_selector_all("a[href]", "as => as.map(a => a.href)"),
        "attributes": page.evaluate(ATTRIBUTES_JS),
        "cite": page.locator(".w2s-cite").count(),
        "outputs": page.evaluate(OUTPUTS_JS),
        "tables": page.evaluate(TABLES_JS),
        "figures": page.evaluate(FIGURES_JS),
        "console": console_errors,
        "failed": failed,
    }
    if shots is not None:  # the page as it loads, before solutions are opened
        folder = shots / viewport
        folder.mkdir(parents=True, exist_ok=True)
        shot = folder / (rel.removesuffix(".html").replace("/", "__") + ".png")
        try:
            page.screenshot(path=str(shot), full_page=True)
        except Exception:  # a page too tall for one capture: its first screen
            page.screenshot(path=str(shot))
    page.evaluate(OPEN_DETAILS_JS)  # solutions and hidden code are measured too
    page.wait_for_timeout(100)
    info["overflow"] = page.evaluate(OVERFLOW_JS)
    page.close()
    return info


def _negative_zero(text: str) -> bool:
    for sign, digits in NUMBER.findall(text):
        if sign in "-−" and sign and not digits.replace(".", "").replace(",", "").strip("0"):
            return True
    return False


def _shows_nan(cell: str) -> bool:
    """A number cell that prints NaN (``nan``, ``NaN [0.1, 0.2]``); prose that names NaN is not
    one."""
    if not re.search(r"\bnan\b", cell, flags=re.I):
        return False
    rest = re.sub(r"\bnan\b", "", cell, flags=re.I)
    return bool(re.fullmatch(r"[\s\d.,\[\]()+\-−%e]*", rest))


def page_problems(info: dict[str, object]) -> list[str]:
    """Everything a reader should not meet on a page, one line per problem (see the module
    docstring); ``info`` comes from :func:`check_page`."""
    where = f"{info['rel']} ({info['viewport']})"
    problems: list[str] = []
    overflow = info["overflow"]
    for b in overflow["blocks"]:
        problems.append(
            f"{where}: a {b['tag']}{'.' + b['cls'].split()[0] if b['cls'] else ''} runs past "
            f"the text column ({b['left']:.0f}-{b['right']:.0f} px, column "
            f"{b['colLeft']:.0f}-{b['colRight']:.0f}): {b['text']!r}"
        )
    if overflow["page"] > 1:
        problems.append(
            f"{where}: the page scrolls sideways by {overflow['page']} px "
            f"(widest: {'; '.join(overflow.get('wide', [])) or 'outside the text column'})"
        )
    for i, text in enumerate(info["outputs"]):
        for name, pattern in OUTPUT_NOISE.items():
            m = pattern.search(text)
            if m:
                problems.append(f"{where}: output {i} shows a {name}: {m.group(0)!r}")
    for t, table in enumerate(info["tables"]):
        for header in table["headers"]:
            m = CODE_HEADER.search(header)
            if m:
                problems.append(f"{where}: table {t} has a code name as header: {header!r}")
        for cell in table["cells"] + table["headers"]:
            if _shows_nan(cell):
                problems.append(f"{where}: table {t} shows NaN: {cell!r}")
            if _negative_zero(cell):
                problems.append(f"{where}: table {t} shows a negative zero: {cell!r}")
            if re.search(r"\b(True|False)\b", cell):
                problems.append(f"{where}: table {t} shows a boolean as {cell!r} (yes/no)")
    for fig in info["figures"]:
        name = Path(str(fig["src"])).name
        if not fig["number"] or not re.match(r"^Fig(ure|\.)\s*\d+", str(fig["number"])):
            problems.append(f"{where}: figure {name} has no number (caption {fig['caption']!r})")
        if not str(fig["caption"]).strip() or fig["caption"] == fig["number"]:
            problems.append(f"{where}: figure {name} has no caption")
        alt = str(fig["alt"]).strip()
        if not alt or alt == str(fig["src"]) or re.search(r"\.(png|jpe?g|svg|gif)$", alt):
            problems.append(f"{where}: figure {name} has no alt text (alt={alt!r})")
        if (
            info["viewport"] == "desktop"
            and fig["natural"]
            and fig["shown"] / fig["natural"] < MIN_FIGURE_SCALE
        ):
            problems.append(
                f"{where}: figure {name} is shown at {fig['shown'] / fig['natural']:.0%} of its "
                "size: its text is illegible; draw it at the page width"
            )
    texts = [str(info["text"]), *map(str, info["attributes"])]
    for text in texts:
        m = PLACEHOLDERS.search(text)
        if m:
            problems.append(f"{where}: placeholder {m.group(0)!r}")
            break
    return problems


def render_problems(info: dict[str, object], base_url: str) -> list[str]:
    """Rendering faults: console errors, failed requests, raw TeX, theorem numbering, images,
    links and anchors, the chapter's citation block."""
    rel = str(info["rel"])
    out = [f"{rel}: console error {e}" for e in info["console"]]
    out += [f"{rel}: request failed {f}" for f in info["failed"]]
    if info["math"] and not info["mjx"]:
        out.append(f"{rel}: {info['math']} math elements, no mjx-container")
    text = str(info["text"])
    out += [
        f"{rel}: raw TeX {raw!r}" for raw in ("$$", "\\(", "\\)", "\\[", "\\begin{") if raw in text
    ]
    for box in info["boxes"]:
        kinds = set(str(box["classes"]).split()) & set(BOX_KINDS)
        if not kinds:
            continue
        match = NUMBERED_TITLE.match(str(box["title"]))
        if not match:
            out.append(f"{rel}: unnumbered {kinds} box titled {box['title']!r}")
            continue
        if match["kind"].lower() not in kinds:
            out.append(f"{rel}: box {box['title']!r} vs {kinds}")
        # a title that names its number in the text ("... (Theorem 1)") must carry it
        named = re.search(r"\((?P<kind>[A-Z][a-z]+) (?P<num>\d+)\)", str(box["title"]))
        if named and (named["kind"], named["num"]) != (match["kind"], match["num"]):
            out.append(f"{rel}: box {box['title']!r} is numbered differently from its name")
        if named and named["kind"] == match["kind"]:
            out.append(f"{rel}: box {box['title']!r} repeats its own number in its title")
    out += [f"{rel}: image did not load: {i['src']}" for i in info["images"] if not i["w"] > 0]
    for href in info["links"]:
        if not str(href).startswith(base_url):
            continue
        target, fragment = urldefrag(str(href))
        status, ids = _fetch(target)
        if status != 200:
            hint = ": run `make pdf`" if target.endswith(PDF_NAME) else ""
            out.append(f"{rel}: link {href} -> HTTP {status}{hint}")
        elif fragment and target.endswith(".html") and fragment not in ids:
            out.append(f"{rel}: link {href}: no element with id {fragment!r}")
    if rel.startswith("notebooks/") and info["cite"] != 1:
        out.append(f"{rel}: expected one 'Cite this chapter' block, found {info['cite']}")
    return out


# ------------------------------------------------------------------------------ the book's site


@pytest.fixture(scope="module")
def pages(browser: object, base_url: str) -> dict[tuple[str, str], dict[str, object]]:
    return {
        (rel, vp): check_page(browser, base_url, rel, vp) for rel in toc_pages() for vp in VIEWPORTS
    }


@pytest.mark.parametrize("rel", toc_pages())
def test_page_renders(pages: dict, base_url: str, rel: str) -> None:
    problems = render_problems(pages[(rel, "desktop")], base_url)
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("viewport", list(VIEWPORTS))
@pytest.mark.parametrize("rel", toc_pages())
def test_page_is_clean(pages: dict, rel: str, viewport: str) -> None:
    problems = page_problems(pages[(rel, viewport)])
    assert not problems, "\n".join(problems)


def test_book_has_numbered_results_and_maths(pages: dict) -> None:
    desktop = [info for (_, vp), info in pages.items() if vp == "desktop"]
    titles = [str(b["title"]) for info in desktop for b in info["boxes"]]
    assert any(NUMBERED_TITLE.match(t) for t in titles), "no numbered theorem box in the book"
    assert sum(int(info["mjx"]) for info in desktop) > 0, "no maths rendered anywhere"
    for vp in VIEWPORTS:
        shots = sorted((SHOTS / vp).glob("*.png"))
        assert len(shots) >= len(desktop), f"{vp}: {len(shots)} screenshots for {len(desktop)}"


def test_site_links_the_pdf(pages: dict, base_url: str) -> None:
    """The preface and every page's footer link the PDF of the whole book, and it is there."""
    for (rel, vp), info in pages.items():
        if vp == "desktop":
            pdf_links = [h for h in info["links"] if str(h).endswith("/" + PDF_NAME)]
            assert pdf_links, f"{rel}: no link to {PDF_NAME}"
            assert all(urldefrag(str(h))[0] == base_url + PDF_NAME for h in pdf_links), pdf_links
    preface = pages[("book/index.html", "desktop")]
    assert sum(str(h).endswith(PDF_NAME) for h in preface["links"]) >= 2, "preface: no PDF link"
    status, _ = _fetch(urljoin(base_url, PDF_NAME))
    assert status == 200, f"{PDF_NAME} is missing from the site: run `make pdf`"


# ------------------------------------------------------------------ the checks, on a fixture site


@pytest.fixture(scope="module")
def fixture_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    if not (ROOT / "book" / "_extra" / "mathjax" / "tex-chtml.js").is_file():
        pytest.fail("bundled MathJax missing: run `make mathjax`")
    site = build_fixture_site(tmp_path_factory.mktemp("fixture-book"))
    with serve(site) as url:
        yield url


@pytest.fixture(scope="module")
def fixture_pages(browser: object, fixture_url: str) -> dict[tuple[str, str], dict]:
    rels = PAGES
    return {
        (rel, vp): check_page(browser, fixture_url, rel, vp, shots=None)
        for rel in rels
        for vp in VIEWPORTS
    }


@pytest.mark.parametrize("viewport", list(VIEWPORTS))
@pytest.mark.parametrize("rel", ["book/index.html", "notebooks/clean.html"])
def test_checks_pass_on_clean_pages(
    fixture_pages: dict, fixture_url: str, rel: str, viewport: str
) -> None:
    info = fixture_pages[(rel, viewport)]
    assert info["overflow"]["blocks"] == [] and info["overflow"]["page"] <= 1
    problems = page_problems(info) + render_problems(info, fixture_url)
    assert not problems, "\n".join(problems)
    assert info["mjx"] >= 1 and info["figures"], "the fixture lost its maths or its figure"


@pytest.mark.parametrize("viewport", list(VIEWPORTS))
def test_checks_catch_every_problem(fixture_pages: dict, viewport: str) -> None:
    problems = "\n".join(page_problems(fixture_pages[("notebooks/noisy.html", viewport)]))
    expected = [
        "runs past the text column",
        "progress bar",
        "a warning",
        "local path",
        "raw object repr",
        "code name as header",
        "shows NaN",
        "negative zero",
        "boolean as",
        "has no number",
        "has no caption",
        "has no alt text",
        "placeholder",
    ]
    if viewport == "desktop":
        expected.append("illegible")
    missing = [e for e in expected if e not in problems]
    assert not missing, f"not reported: {missing}\nreported:\n{problems}"


def test_stylesheet_keeps_long_equations_in_the_column(browser: object, fixture_url: str) -> None:
    """Without book/_static/w2s.css the long equation runs past the column on a phone; with it,
    it scrolls inside its own box (so the check above passes because of the stylesheet)."""
    bare = check_page(browser, fixture_url, "book/index.html", "phone", None, stylesheet=False)
    assert any(b["tag"] == "mjx-container" for b in bare["overflow"]["blocks"]), bare["overflow"]
    styled = check_page(browser, fixture_url, "book/index.html", "phone", None)
    assert not styled["overflow"]["blocks"]


def test_citations_read_author_year(fixture_pages: dict) -> None:
    text = str(fixture_pages[("book/index.html", "desktop")]["text"])
    assert "Yao et al. (2025a)" in text and "Yao et al. (2025b)" in text, text[:2000]
    assert "(Burns et al., 2023)" in text
    assert "Glued from a chapter: 3 fixtures." in text, "cross-document glue failed"
    assert "[Yao et al. 2025a]" in text and "[Yao et al. 2025b]" in text
    assert not re.search(r"\[\d+\]", text), "a numbered citation label"
    # 2025a is arXiv 2502.01458 (the paper), 2025b is 2502.11107
    entry_a = text[text.index("[Yao et al. 2025a]") :][:400]
    assert "understanding the capabilities" in entry_a.lower()


def test_chapter_frame_renders(fixture_pages: dict) -> None:
    text = str(fixture_pages[("notebooks/clean.html", "desktop")]["text"])
    assert "This chapter at a glance" in text
    assert "about 5 minutes to read; to run, under a minute." in text, "frame_run_text not glued"
    for heading in ("Prerequisites", "What you will learn", "Main result", "Run it yourself"):
        assert heading in text, heading


def test_downloads_are_linked(fixture_pages: dict) -> None:
    links = fixture_pages[("book/index.html", "desktop")]["links"]
    assert any(str(h).endswith("w2s_utils-0.0.0-py3-none-any.whl") for h in links), links
