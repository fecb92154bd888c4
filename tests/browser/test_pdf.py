"""The PDF of the whole book (``make pdf``), read back with poppler (``pdftotext``, ``pdfimages``).

- **The book's PDF** (``_build/pdf/w2s-book.pdf``, after ``make book`` and ``make pdf``): every
  chapter's and page's title (the first heading of its source), every numbered result and figure
  of the one-page HTML it was printed from ("Theorem 3", "Fig. 2"), no unresolved reference
  (``??``), every image embedded, every solution printed open, the bibliography with author-year
  labels.
- **The route** on the fixture book (``fixture_book.py``): one-page build, Chromium print, the
  same checks; it needs no built book.

Needs ``/usr/bin/chromium`` and poppler-utils (``make chromium`` installs both).
"""

from __future__ import annotations

import html
import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from fixture_book import ROOT, write_fixture_sources

from w2s_utils.book import pdf
from w2s_utils.book.runner import resolve_entry, toc_entries

pytestmark = pytest.mark.browser

BOOK_PDF = ROOT / "_build" / pdf.PDF_DIR / pdf.PDF_NAME
BOOK_PAGE = ROOT / "_build" / pdf.PDF_DIR / "_build" / "singlehtml" / "book" / "index.html"


def _tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        pytest.fail(f"{name} missing: install poppler-utils (`make chromium` does)")
    return path


QUOTES = str.maketrans({"’": "'", "‘": "'", "“": '"', "”": '"', "\u00ad": None})


def _norm(text: str) -> str:
    """Whitespace collapsed, typographic quotes made plain (Sphinx's smart quotes)."""
    return re.sub(r"\s+", " ", text.translate(QUOTES)).strip()


def pdf_text(path: Path) -> str:
    """The PDF's text, whitespace collapsed (line breaks and page breaks become spaces)."""
    out = subprocess.run(
        [_tool("pdftotext"), "-enc", "UTF-8", str(path), "-"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return _norm(out)


def pdf_image_count(path: Path) -> int:
    """Embedded raster images (alpha masks not counted)."""
    out = subprocess.run(
        [_tool("pdfimages"), "-list", str(path)], capture_output=True, text=True, check=True
    ).stdout
    rows = [ln.split() for ln in out.splitlines()[2:] if ln.strip()]
    return sum(1 for r in rows if len(r) > 2 and r[2] == "image")


def _plain(fragment: str) -> str:
    return _norm(html.unescape(re.sub(r"<[^>]+>", " ", fragment)))


FOUR_WORDS = re.compile(r"(?:\b[A-Za-z]{2,}[,.;]? ){4}")


def page_expectations(page: Path) -> dict[str, list[str]]:
    """What the one-page HTML shows that the PDF must hold: numbered captions ("Theorem 3",
    "Fig. 2"), a few words of every solution, and how many images its article has."""
    source = page.read_text(encoding="utf-8")
    article = source[source.find("<article") : source.rfind("</article>")] or source
    numbers = sorted(
        {_plain(m) for m in re.findall(r'<span class="caption-number">(.*?)</span>', article)}
    )
    solutions = []
    math = re.compile(r'<(span|div) class="math[^"]*">.*?</\1>', flags=re.S)
    for chunk in article.split('class="sd-summary-content')[1:]:
        # words between formulas only: a formula reads differently in the PDF's text
        parts = _plain(math.sub(" | ", chunk[:4000].split(">", 1)[-1])).split("|")
        runs = [m.group(0) for p in parts for m in [FOUR_WORDS.search(p + " ")] if m]
        if runs:
            solutions.append(runs[0].strip().rstrip(",.;"))
    images = len(re.findall(r"<img\b", article))
    return {
        "numbers": [n.strip() for n in numbers],
        "solutions": solutions,
        "images": [str(images)],
    }


def _title(path: Path) -> str:
    """The first heading of a page's source, up to any maths."""
    if path.suffix == ".ipynb":
        cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
        text = "\n".join("".join(c["source"]) for c in cells if c["cell_type"] == "markdown")
    else:
        text = path.read_text(encoding="utf-8")
    m = re.search(r"^# (.+)$", text, flags=re.M)
    assert m, f"{path}: no title"
    return _norm(m.group(1).split("$")[0]).rstrip(":")


def pdf_problems(pdf_path: Path, page: Path, titles: list[str]) -> list[str]:
    text = pdf_text(pdf_path)
    expect = page_expectations(page)
    problems = [f"title {t!r} missing" for t in titles if t not in text]
    problems += [f"{n!r} missing" for n in expect["numbers"] if n not in text]
    problems += [
        f"solution starting {s!r} not printed" for s in expect["solutions"] if s not in text
    ]
    if "??" in text:
        i = text.index("??")
        problems.append(f"unresolved reference: ...{text[max(0, i - 60) : i + 20]}...")
    n_images = int(expect["images"][0])
    embedded = pdf_image_count(pdf_path)
    if embedded < n_images:
        problems.append(f"{embedded} images embedded, the page shows {n_images}")
    for raw in ("\\frac", "\\begin{", "$$", "{glue", "{prf:", "{numref}", "```"):
        if raw in text:
            problems.append(f"unrendered source {raw!r} in the PDF")
    return problems


def test_book_pdf() -> None:
    if not BOOK_PDF.is_file() or not BOOK_PAGE.is_file():
        pytest.fail(f"no PDF at {BOOK_PDF}: run `make book` and then `make pdf`")
    titles = [_title(resolve_entry(ROOT, e)) for e in toc_entries(ROOT)]
    problems = pdf_problems(BOOK_PDF, BOOK_PAGE, titles)
    expect = page_expectations(BOOK_PAGE)
    assert any(n.startswith("Theorem") for n in expect["numbers"]), "no numbered theorem"
    assert not problems, "\n".join(problems)
    text = pdf_text(BOOK_PDF)
    assert "Bibliography" in text and "[Yao et al. 2025a]" in text


def test_pdf_route_on_fixture(tmp_path: Path) -> None:
    src = write_fixture_sources(tmp_path)
    page = pdf.build_singlehtml(tmp_path, src, tmp_path / "pdf", log=lambda _: None)
    out = tmp_path / "fixture.pdf"
    found = pdf.print_pdf(
        page, out, title="Fixture", lines=["The w2s-utils authors"], log=lambda _: None
    )
    assert found["mjx"] >= 3 and found["images"] >= 3
    assert found["fitted"], "the long equations were not fitted to the page"
    titles = ["Fixture preface", "Clean chapter", "Noisy chapter"]
    problems = pdf_problems(out, page, titles)
    assert not problems, "\n".join(problems)
    text = pdf_text(out)
    assert "Fig. 1" in text and "Fig. 2" in text
    assert "Yao et al. (2025a)" in text and "[Yao et al. 2025b]" in text
    assert "The whole book as a PDF" not in text, "the PDF links itself"
