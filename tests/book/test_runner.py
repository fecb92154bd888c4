"""Repository structure of the book, its environment files and the runner (book.runner)."""

from __future__ import annotations

import ast
import datetime
import importlib.util
import json
import os
import re
import shutil
import stat
import subprocess
import sys
import time
import unicodedata
from pathlib import Path

import nbformat
import pytest
import torch
import yaml
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

import w2s_utils
from w2s_utils.book import pdf, runner

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))


def _pyproject() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))


def _declared_requirements() -> list[Requirement]:
    """Core, engine, book and test requirements; an extra's reference to another extra of the
    project itself (``w2s-utils[engine]``) is not a requirement of its own."""
    project = _pyproject()["project"]
    extras = project.get("optional-dependencies", {})
    reqs = project["dependencies"] + [
        r for extra in ("engine", "book", "test") for r in extras.get(extra, [])
    ]
    reqs = [Requirement(r) for r in reqs]
    return [r for r in reqs if canonicalize_name(r.name) != canonicalize_name(project["name"])]


def _key(req: Requirement) -> tuple[str, str]:
    return canonicalize_name(req.name), str(req.specifier)


def _ext_module():
    """The book's Sphinx extension, imported as Sphinx does (``book/_ext`` on the path)."""
    path = ROOT / "book" / "_ext" / "w2s_book_ext.py"
    spec = importlib.util.spec_from_file_location("w2s_book_ext", path)
    module = importlib.util.module_from_spec(spec)
    sys.path.insert(0, str(path.parent))
    try:
        spec.loader.exec_module(module)
    finally:
        sys.path.remove(str(path.parent))
    return module


# ------------------------------------------------------------------------------ toc and notebooks


def test_every_toc_file_exists() -> None:
    entries = runner.toc_entries(ROOT)
    assert entries[0] == "book/index"
    missing = [e for e in entries if runner.resolve_entry(ROOT, e) is None]
    assert not missing, f"_toc.yml lists missing files: {missing}"


def test_every_notebook_is_in_the_toc() -> None:
    listed = {p.as_posix() for p in runner.toc_notebooks(ROOT)}
    unlisted = [nb.relative_to(ROOT).as_posix() for nb in NOTEBOOKS]
    unlisted = [nb for nb in unlisted if nb not in listed]
    assert not unlisted, f"notebooks missing from _toc.yml: {unlisted}"
    assert listed, "the toc lists no notebook"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_stored_without_outputs(path: Path) -> None:
    nb = nbformat.read(path, as_version=4)
    for i, cell in enumerate(nb.cells):
        if cell.cell_type == "code":
            assert cell.get("outputs") == [], f"{path.name} cell {i} has stored outputs"
            assert cell.get("execution_count") is None, f"{path.name} cell {i} execution_count"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_has_parameters_cell_defining_preset(path: Path) -> None:
    nb = nbformat.read(path, as_version=4)
    cells = [c for c in nb.cells if "parameters" in c.get("metadata", {}).get("tags", [])]
    assert len(cells) == 1, f"{path.name}: expected one cell tagged 'parameters'"
    tree = ast.parse(cells[0].source)
    names = {
        target.id
        for node in ast.walk(tree)
        if isinstance(node, ast.Assign | ast.AnnAssign)
        for target in (node.targets if isinstance(node, ast.Assign) else [node.target])
        if isinstance(target, ast.Name)
    }
    assert "preset" in names, f"{path.name}: the parameters cell does not assign `preset`"


# ------------------------------------------------------------------------ environment and lock


def test_environment_yml_matches_pyproject() -> None:
    env = yaml.safe_load((ROOT / "environment.yml").read_text(encoding="utf-8"))
    pip = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict) and "pip" in d)
    conda_side = sorted(_key(Requirement(r)) for r in pip)
    pyproject_side = sorted(_key(r) for r in _declared_requirements())
    assert conda_side == pyproject_side


def test_lock_pins_cpu_torch_and_satisfies_pyproject() -> None:
    lines = [
        ln.strip()
        for ln in (ROOT / "requirements.lock").read_text(encoding="utf-8").splitlines()
        if ln.strip() and not ln.startswith("#")
    ]
    pins: dict[str, str] = {}
    for line in lines:
        assert not line.startswith("-e") and " @ " not in line, f"unpinnable lock line {line!r}"
        name, _, version = line.partition("==")
        assert version, f"lock line is not an exact pin: {line!r}"
        pins[canonicalize_name(name)] = version
    assert pins.get("torch") == "2.13.0", "torch must be pinned to the CPU wheel's 2.13.0"
    assert "w2s-utils" not in pins, "the lock must not contain the project itself"
    for req in _declared_requirements():
        name = canonicalize_name(req.name)
        assert name in pins, f"{req} is declared in pyproject.toml but missing from the lock"
        assert req.specifier.contains(pins[name], prereleases=True), (
            f"lock has {name}=={pins[name]}, pyproject asks {req}"
        )


# ------------------------------------------------------------------------ config and citations


def test_config_builds_offline_from_executed_notebooks() -> None:
    config = yaml.safe_load((ROOT / "_config.yml").read_text(encoding="utf-8"))
    assert config["execute"]["execute_notebooks"] == "off"
    sphinx = config["sphinx"]["config"]
    mathjax = sphinx["mathjax_path"]
    assert "_static/" not in mathjax and not mathjax.startswith(("http:", "https:", "//"))
    assert Path(sphinx["w2s_mathjax_file"]).parts[:2] == ("book", "_extra")
    assert "book/_extra" in sphinx["html_extra_path"]
    assert sphinx["nb_ipywidgets_js"] == {}, "widget JavaScript would load from a CDN"
    assert "sphinx_proof" in config["sphinx"]["extra_extensions"]
    for bib in config["bibtex_bibfiles"]:
        assert (ROOT / bib).is_file()


REQUIRED_BIB = {
    "yao2025understanding": "2502.01458",
    "burns2023weak": "2312.09390",
    "charikar2024quantifying": "2405.15116",
    "mulgund2025relating": "2501.19105",
    "blasiok2023unifying": None,
    "blasiok2023smooth": "2309.12236",
    "csiszar1975idivergence": None,
    "guo2017calibration": None,
    "wang2020minilm": None,
    "radford2019language": None,
    "biderman2023pythia": None,
    "qwen2024qwen25": None,
    "welbl2017sciq": None,
    "bai2022training": None,
    "tsybakov2009introduction": None,
    "misra2023sarcasm": None,
    "pang2005seeing": None,
    "tafjord2019quartz": None,
}


def test_bibliography_has_the_cited_works() -> None:
    text = (ROOT / "book" / "references.bib").read_text(encoding="utf-8")
    entries = dict(re.findall(r"@\w+\{([^,\s]+),(.*?)\n\}", text, flags=re.S))
    for key, arxiv in REQUIRED_BIB.items():
        assert key in entries, f"references.bib lacks {key}"
        body = entries[key]
        for fieldname in ("title", "author", "year"):
            assert re.search(rf"\b{fieldname}\s*=", body), f"{key} lacks {fieldname}"
        year = re.search(r"year\s*=\s*\{(\d{4})\}", body)
        assert year and year.group(1) in key, f"{key}: year does not match the key"
        if arxiv:
            assert f"eprint        = {{{arxiv}}}" in body, f"{key}: arXiv id {arxiv}"


def test_citation_cff_drives_the_cite_blocks() -> None:
    ext = _ext_module()
    cff = ext.load_cff(ROOT / "CITATION.cff")
    entry = ext.chapter_bibtex(cff, "Two-sided bounds", "notebooks/02_generalization_bounds")
    assert entry.startswith("@incollection{w2sbook:02_generalization_bounds,")
    assert "title     = {Two-sided bounds}" in entry
    assert f"booktitle = {{{cff['title']}}}" in entry
    assert "url" not in entry, "a citation URL while the site's address is unset"
    linked = ext.chapter_bibtex(
        cff, "Two-sided bounds", "notebooks/02_generalization_bounds", "https://site.test/book"
    )
    assert "url       = {https://site.test/book/notebooks/02_generalization_bounds.html}" in linked
    whole = ext.book_bibtex(cff)
    assert whole.startswith("@book{w2sbook,") and cff["title"] in whole and "url" not in whole
    assert "url       = {https://repo.test/x}" in ext.book_bibtex(cff, "https://repo.test/x/")
    assert any("2502.01458" in str(ref) for ref in cff.get("references", []))


def test_repository_url_is_one_setting_and_buttons_follow_it() -> None:
    """The repository's address is ``repository.url`` in _config.yml; while it is empty the
    repository and source buttons are off (w2s_book_ext turns them on exactly when it is set)."""
    ext = _ext_module()
    config = yaml.safe_load((ROOT / "_config.yml").read_text(encoding="utf-8"))
    url = config["repository"]["url"]
    html = config.get("html", {})
    assert "use_repository_button" not in html, "the extension decides the repository button"
    theme = config["sphinx"]["config"]["html_theme_options"]
    for options in ({**theme, "repository_url": url}, {**theme, "repository_url": "https://r.t"}):
        on = ext.repository_buttons(options)
        has_url = bool(options["repository_url"])
        assert on["use_repository_button"] is has_url and on["use_source_button"] is has_url
    cff = yaml.safe_load((ROOT / "CITATION.cff").read_text(encoding="utf-8"))
    assert "repository-code" not in cff or cff["repository-code"] == url


PLACEHOLDER = re.compile(r"PLACEHOLDER|example\.com|w2s-book/w2s-book")


def test_no_placeholder_in_the_book_sources() -> None:
    sources = [ROOT / "_config.yml", ROOT / "_toc.yml", ROOT / "CITATION.cff", ROOT / "README.md"]
    sources += sorted((ROOT / "book").glob("*.md")) + sorted((ROOT / "book").glob("*.ipynb"))
    sources += sorted((ROOT / "book" / "_ext").glob("*.py")) + NOTEBOOKS
    found = [
        f"{p.relative_to(ROOT)}: {m.group(0)}"
        for p in sources
        for m in PLACEHOLDER.finditer(p.read_text(encoding="utf-8"))
    ]
    assert not found, found


def test_site_config_keeps_pages_clean_and_links_downloads() -> None:
    config = yaml.safe_load((ROOT / "_config.yml").read_text(encoding="utf-8"))
    sphinx = config["sphinx"]["config"]
    static = [ROOT / p for p in sphinx["html_static_path"]]
    assert all(p.is_dir() for p in static)
    for css in sphinx["html_css_files"]:
        text = next(p / css for p in static if (p / css).is_file()).read_text(encoding="utf-8")
        assert "overflow-x: auto" in text and "min-width: 0 !important" in text
        assert "@media print" in text
    assert sphinx["bibtex_default_style"] == sphinx["bibtex_reference_style"] == "w2s_author_year"
    assert Path(sphinx["w2s_downloads_dir"]).parts[:2] == ("book", "_extra")
    assert sphinx["w2s_pdf_name"].endswith(".pdf")
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    for target in ("pdf:", "downloads:"):
        assert re.search(rf"^{target}", makefile, flags=re.M), target
    assert re.search(r"^book: .*\bdownloads\b", makefile, flags=re.M)


def test_toc_lists_the_book_pages() -> None:
    entries = runner.toc_entries(ROOT)
    for page in ("book/notation", "book/numbers", "book/running", "book/how_to_cite",
                 "book/build_info", "book/bibliography"):
        assert page in entries, page
    numbers = nbformat.read(ROOT / "book" / "numbers.ipynb", as_version=4)
    assert all(c.get("outputs", []) == [] for c in numbers.cells if c.cell_type == "code")
    assert any("parameters" in c.metadata.get("tags", []) for c in numbers.cells)


# ------------------------------------------------------------------------------ bibliography


def _bib():
    from pybtex.database import parse_file

    return parse_file(str(ROOT / "book" / "references.bib"))


def _bib_style():
    sys.path.insert(0, str(ROOT / "book" / "_ext"))
    try:
        import w2s_bib_style
    finally:
        sys.path.pop(0)
    return w2s_bib_style


CITE_ROLE = re.compile(r"\{(?:cite|footcite)(?::[a-z]+)?\}`([^`]*)`")


def _cited_keys() -> dict[str, set[str]]:
    texts = {}
    for path in [*NOTEBOOKS, *sorted((ROOT / "book").glob("*.ipynb"))]:
        nb = nbformat.read(path, as_version=4)
        texts[path.name] = "\n".join(c.source for c in nb.cells if c.cell_type == "markdown")
    for path in sorted((ROOT / "book").glob("*.md")):
        texts[path.name] = path.read_text(encoding="utf-8")
    cited: dict[str, set[str]] = {}
    for name, text in texts.items():
        for m in CITE_ROLE.finditer(text):
            for key in m.group(1).split(","):
                cited.setdefault(key.strip(), set()).add(name)
    return cited


def test_every_entry_is_cited_and_every_citation_has_an_entry() -> None:
    keys = set(_bib().entries)
    cited = _cited_keys()
    assert not sorted(keys - set(cited)), f"never cited: {sorted(keys - set(cited))}"
    missing = {k: sorted(v) for k, v in cited.items() if k not in keys}
    assert not missing, f"cited but not in references.bib: {missing}"


REQUIRED_FIELDS = {
    "article": ("journal",),
    "inproceedings": ("booktitle",),
    "book": ("publisher",),
    "techreport": ("institution",),
    "misc": ("eprint", "url"),
}


@pytest.mark.slow
def test_every_entry_is_well_formed() -> None:
    for key, entry in _bib().entries.items():
        assert entry.type in REQUIRED_FIELDS, f"{key}: unexpected entry type {entry.type}"
        assert entry.persons.get("author"), f"{key}: no author"
        for name in ("title", "year", *REQUIRED_FIELDS[entry.type]):
            assert entry.fields.get(name, "").strip(), f"{key}: no {name}"
        assert re.fullmatch(r"\d{4}", entry.fields["year"]), f"{key}: year"
        first = _bib_style().author_part(entry).split()[0].lower().replace("ł", "l")
        first = unicodedata.normalize("NFKD", first).encode("ascii", "ignore").decode()
        assert key.startswith(first), f"{key}: the key does not start with the first author"
        assert "$" not in entry.fields["title"], f"{key}: raw maths in the title"
        if "eprint" in entry.fields:
            assert re.fullmatch(r"\d{4}\.\d{4,5}", entry.fields["eprint"]), f"{key}: eprint"


@pytest.mark.slow
def test_labels_are_author_year_and_disambiguated() -> None:
    style = _bib_style()
    bib = _bib()
    entries = list(style.AuthorYearSortingStyle().sort(list(bib.entries.values())))
    formatted = style.AuthorYearLabelStyle().format_labels(entries)
    labels = dict(zip((e.key for e in entries), formatted, strict=True))
    assert len(set(labels.values())) == len(labels), "two entries share a label"
    assert labels["yao2025understanding"] == "Yao et al. 2025a"  # arXiv 2502.01458
    assert labels["yao2025revisiting"] == "Yao et al. 2025b"  # arXiv 2502.11107
    assert labels["mulgund2025relating"] == "Mulgund and Pabbaraju 2025"
    assert labels["csiszar1975idivergence"] == "Csiszár 1975"
    assert labels["blasiok2023unifying"] == "Błasiok et al. 2023"
    for key, label in labels.items():
        assert re.fullmatch(r"\S.* \d{4}[a-z]?", label), (key, label)
    # bibliography order: by authors, then year, then arXiv id
    order = [e.key for e in entries]
    assert order.index("yao2025understanding") < order.index("yao2025revisiting")
    sort_key = style.AuthorYearSortingStyle().sorting_key
    assert order == sorted(order, key=lambda k: sort_key(bib.entries[k]))


def test_citation_cff_needs_title_and_authors(tmp_path: Path) -> None:
    ext = _ext_module()
    bad = tmp_path / "CITATION.cff"
    bad.write_text("cff-version: 1.2.0\ntitle: x\n", encoding="utf-8")
    with pytest.raises(ValueError, match="authors"):
        ext.load_cff(bad)


# -------------------------------------------------------------------------------- CI and make


def test_ci_script_and_make_targets() -> None:
    ci = ROOT / ".ci" / "run"
    text = ci.read_text(encoding="utf-8")
    assert text.startswith("#!/usr/bin/env bash") and "set -euo pipefail" in text
    assert ci.stat().st_mode & stat.S_IXUSR, ".ci/run must be executable"
    for target in ("make test", "make book", "make test-browser"):
        assert target in text
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    for target in ("book:", "test:", "test-browser:", "lab:", "mathjax:", "env:"):
        assert re.search(rf"^{re.escape(target)}", makefile, flags=re.M), target


# ------------------------------------------------------------------------------ runner (pure)


def test_select_notebooks() -> None:
    nbs = [Path("notebooks/01_pipeline.ipynb"), Path("notebooks/02_generalization_bounds.ipynb")]
    assert runner.select_notebooks(nbs, None) == nbs
    assert runner.select_notebooks(nbs, "02_generalization_bounds") == nbs[1:]
    assert runner.select_notebooks(nbs, "notebooks/01_pipeline.ipynb") == nbs[:1]
    assert runner.select_notebooks(nbs, "01") == nbs[:1]
    with pytest.raises(ValueError, match="choose one of"):
        runner.select_notebooks(nbs, "03_missing")
    for blank in ("", " "):  # an empty --only names no chapter: it never means "all of them"
        with pytest.raises(ValueError, match="names no chapter"):
            runner.select_notebooks(nbs, blank)


def _glue_output(name: str, text: str, markdown: bool) -> dict:
    """A myst-nb glue output as it sits in an executed notebook."""
    prefix = "application/papermill.record/"
    data = {prefix + "text/plain": repr(text)}
    if markdown:
        data = {prefix + "text/markdown": text, prefix + "text/plain": "<IPython...Markdown>"}
    meta = {"scrapbook": {"name": name, "mime_prefix": prefix}}
    return nbformat.v4.new_output("display_data", data=data, metadata=meta)


def _executed_with_glue(path: Path, glued: dict[str, tuple[str, bool]]) -> Path:
    """A complete executed copy (papermill metadata) whose one code cell glues ``glued``."""
    nb = nbformat.v4.new_notebook()
    cell = nbformat.v4.new_code_cell("glue(...)")
    cell.outputs = [_glue_output(k, text, md) for k, (text, md) in glued.items()]
    cell.metadata["papermill"] = {"status": "completed", "exception": False}
    nb.cells = [nbformat.v4.new_markdown_cell("# T"), cell]
    nb.metadata["papermill"] = {"exception": None}
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, path)
    return path


def test_glued_text_reads_myst_nb_glue_outputs(tmp_path: Path) -> None:
    path = _executed_with_glue(
        tmp_path / "a.ipynb",
        {"frame_cold_text": ("about 8 minutes", True), "n_runs": ("twelve", False)},
    )
    assert runner.glued_text(path, "frame_cold_text") == "about 8 minutes"
    assert runner.glued_text(path, "n_runs") == "twelve"  # a glued str, without its quotes
    assert runner.glued_text(path, "absent") is None
    assert runner.glued_text(tmp_path / "missing.ipynb", "frame_cold_text") is None
    (tmp_path / "trunc.ipynb").write_text('{"cells": [', encoding="utf-8")
    assert runner.glued_text(tmp_path / "trunc.ipynb", "frame_cold_text") is None
    with pytest.raises(ValueError, match="name"):
        runner.glued_text(path, "")


def test_build_info_fills_the_template(tmp_path: Path) -> None:
    page = tmp_path / runner.BUILD_INFO_PAGE
    page.parent.mkdir(parents=True)
    page.write_text((ROOT / runner.BUILD_INFO_PAGE).read_text(encoding="utf-8"), encoding="utf-8")
    record = runner.BuildRecord(preset="ci", started=datetime.datetime(2026, 1, 2, 3, 4))
    cold = {"frame_cold_text": ("about 3 minutes", True)}
    glued = _executed_with_glue(tmp_path / "x" / "03.ipynb", cold)
    bare = _executed_with_glue(tmp_path / "x" / "04.ipynb", {})  # glues no cold time
    when = "2026-01-01T09:30:00+00:00"
    stored = runner.StoredRun("0" * 64, glued, when, 181.25, "ci", "cpu", "0.1")
    nbs = [Path(f"notebooks/{name}.ipynb") for name in ("01_a", "02_b", "03_c", "04_d")]
    record.chapters = [
        runner.ChapterResult(nbs[0], "ok", 12.34, bare, stored=stored),
        runner.ChapterResult(nbs[1], "skipped"),
        runner.ChapterResult(nbs[2], "reused", 0.21, glued, stored=stored),
        runner.ChapterResult(nbs[3], "failed", 3.0, bare),
    ]
    runner.write_build_info(tmp_path, ROOT, record)
    text = page.read_text(encoding="utf-8")
    assert "built without the book runner" not in text
    assert "| Preset | `ci` |" in text and "2026-01-02 03:04" in text
    assert f"| Library | `w2s_utils` {w2s_utils.__version__} |" in text
    assert "| Device | `cpu`" in text or "| Device | `cuda" in text
    head = "| Notebook | In this build | Time in this build (s) | Stored execution | Cold time |"
    assert head in text
    rows = {
        line.split("|")[1].strip(): [c.strip() for c in line.split("|")[2:-1]]
        for line in text.splitlines()
        if line.startswith("| `notebooks/")
    }
    assert rows["`notebooks/01_a.ipynb`"] == [
        "executed",
        "12.3",
        "this execution, stored for reuse",
        "not recorded",
    ]
    assert rows["`notebooks/02_b.ipynb`"] == ["not executed in this run", "-", "-", "-"]
    assert rows["`notebooks/03_c.ipynb`"] == [
        "reused from the cache",
        "0.2",
        "executed 2026-01-01 09:30 UTC in 181.2 s (preset `ci`, cpu)",
        "about 3 minutes",
    ]
    assert rows["`notebooks/04_d.ipynb`"][0] == "FAILED"
    assert "1 chapter(s) executed in this build (12.3 s), 1 reused from the cache (0.2 s)" in text
    assert "| `jupyter-book` |" in text
    assert text.count(runner.BUILD_INFO_START) == 1 and text.count(runner.BUILD_INFO_END) == 1


def test_build_info_names_every_status() -> None:
    assert set(runner.build_info.STATUS_TEXT) == set(runner.execute.STATUSES)


def test_build_info_device_follows_w2s_device(monkeypatch: pytest.MonkeyPatch) -> None:
    """The page names the device the chapters compute on: ``W2S_DEVICE=cpu`` reads ``cpu``
    even on a machine with a GPU."""
    monkeypatch.setenv("W2S_DEVICE", "cpu")
    assert runner.build_info.device_text().startswith("`cpu` (W2S_DEVICE=cpu)")
    monkeypatch.delenv("W2S_DEVICE")
    expected = "`cuda" if torch.cuda.is_available() else "`cpu` (no CUDA device)"
    assert runner.build_info.device_text().startswith(expected)


def test_missing_toc_file_is_reported(tmp_path: Path) -> None:
    (tmp_path / "_toc.yml").write_text(
        "format: jb-book\nroot: intro\nchapters:\n  - file: nb/missing\n", encoding="utf-8"
    )
    (tmp_path / "intro.md").write_text("# Intro\n", encoding="utf-8")
    with pytest.raises(FileNotFoundError, match="nb/missing"):
        runner.toc_notebooks(tmp_path)


# ------------------------------------------------------------- runner (reuse, site, PDF hook)


@pytest.fixture
def book_cache(sandbox: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The sandbox's cache (stored executions land in ``<it>/executed``), rerun not forced."""
    monkeypatch.delenv(runner.RERUN_ENV, raising=False)
    return sandbox


def test_library_digest_sees_every_byte_of_the_source(tmp_path: Path) -> None:
    lib = tmp_path / "lib"
    (lib / "sub").mkdir(parents=True)
    (lib / "a.py").write_bytes(b"x = 1\n")
    (lib / "sub" / "b.py").write_bytes(b"y = 2\n")
    (lib / "notes.txt").write_text("not source")
    first = runner.library_digest(lib)
    assert first == runner.library_digest(lib)
    (lib / "notes.txt").write_text("still not source")
    assert runner.library_digest(lib) == first, "a non-.py file entered the key"
    (lib / "sub" / "b.py").write_bytes(b"y = 3\n")  # one byte
    edited = runner.library_digest(lib)
    assert edited != first
    (lib / "sub" / "b.py").rename(lib / "b.py")  # same bytes, another path
    assert runner.library_digest(lib) != edited
    (lib / "c.py").write_bytes(b"")  # a new empty module
    assert len({first, edited, runner.library_digest(lib)}) == 3
    with pytest.raises(ValueError, match="package_dir"):
        runner.library_digest(tmp_path / "missing")


def test_reuse_key_changes_with_each_input() -> None:
    context = runner.reuse_context()
    assert set(context) >= {"library", "versions", "device"}
    assert context["device"] in ("cpu", "cuda")
    base = runner.reuse_key(b"{}", {"preset": "ci"}, context)
    assert len(base) == 64 and base == runner.reuse_key(b"{}", {"preset": "ci"}, dict(context))
    others = [
        runner.reuse_key(b"{ }", {"preset": "ci"}, context),
        runner.reuse_key(b"{}", {"preset": "paper"}, context),
        runner.reuse_key(b"{}", {"preset": "ci"}, {**context, "library": "0" * 64}),
        runner.reuse_key(b"{}", {"preset": "ci"}, {**context, "device": "other"}),
        runner.reuse_key(b"{}", {"preset": "ci"}, {**context, "versions": {}}),
    ]
    assert base not in others and len(set(others)) == len(others)
    with pytest.raises(ValueError, match="notebook"):
        runner.reuse_key("{}", {"preset": "ci"}, context)


def test_rerun_is_forced_by_the_flag_or_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(runner.RERUN_ENV, raising=False)
    assert not runner.rerun_requested() and runner.rerun_requested(True)
    for value, expected in (("1", True), ("yes", True), ("0", False), ("", False)):
        monkeypatch.setenv(runner.RERUN_ENV, value)
        assert runner.rerun_requested() is expected
    monkeypatch.setenv(runner.RERUN_ENV, "maybe")
    with pytest.raises(ValueError, match=runner.RERUN_ENV):
        runner.rerun_requested()


def test_stored_execution_round_trip_and_damage(tmp_path: Path, book_cache: Path) -> None:
    key = "ab" * 32
    copy = _executed_with_glue(tmp_path / "a.ipynb", {"frame_cold_text": ("about 1 minute", True)})
    started = datetime.datetime(2026, 3, 4, 5, 6, tzinfo=datetime.timezone.utc)
    stored = runner.store_executed(
        key, copy, seconds=12.5, preset="ci", device="cpu", executed_at=started
    )
    assert stored.path == book_cache / "executed" / f"{key}.ipynb" == runner.stored_path(key)
    log: list[str] = []
    hit = runner.load_stored(key, log=log.append)
    assert hit == stored and log == [] and hit.when() == "2026-03-04 05:06 UTC"
    assert runner.glued_text(hit.path, "frame_cold_text") == "about 1 minute"
    assert runner.load_stored("cd" * 32, log=log.append) is None and log == []  # a plain miss
    # damaged copies: truncated, one output altered, stored under another name
    good = stored.path.read_bytes()
    damages = {
        "truncated": good[: len(good) // 2],
        "altered": good.replace(b"about 1 minute", b"about 9 minute"),
    }
    for what, data in damages.items():
        stored.path.write_bytes(data)
        assert runner.load_stored(key, log=log.append) is None, what
        assert str(stored.path) in log[-1] and "damaged" in log[-1], log
        assert not stored.path.exists(), f"a {what} copy was left in the store"
    other = runner.stored_path("ef" * 32)
    other.write_bytes(good)
    assert runner.load_stored("ef" * 32, log=log.append) is None and "another key" in log[-1]
    # only complete, passing executions are stored
    broken = nbformat.read(copy, as_version=4)
    broken.cells[1].metadata["papermill"]["status"] = "failed"
    nbformat.write(broken, tmp_path / "broken.ipynb")
    with pytest.raises(ValueError, match="not a complete execution"):
        broken_copy = tmp_path / "broken.ipynb"
        runner.store_executed(
            key, broken_copy, seconds=1, preset="ci", device="cpu", executed_at=started
        )
    assert not runner.stored_path(key).exists()


def _fake_execute(calls: list):
    """Stand-in for execute_notebook that passes and stores like it (counts its calls)."""

    def fake(root, nb, **kw):
        calls.append((nb.as_posix(), kw["preset"]))
        cold = {"frame_cold_text": ("about 2 minutes", True)}
        path = _executed_with_glue(kw["out_dir"] / nb, cold)
        now = datetime.datetime.now(datetime.timezone.utc)
        stored = runner.store_executed(
            kw["store_key"], path, seconds=1.5, preset=kw["preset"], device=kw["device"],
            executed_at=now,
        )
        return runner.ChapterResult(nb, "ok", 1.5, path, stored=stored)

    return fake


@pytest.mark.slow
def test_reuse_decides_what_runs(
    tmp_path: Path, book_cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A chapter is executed again exactly when an input of its key changed, or on request."""
    _tiny_book(tmp_path, {"a": ["1"], "b": ["2"]})
    calls: list = []
    monkeypatch.setattr(runner.build, "execute_notebook", _fake_execute(calls))
    log: list[str] = []

    def run(**kw) -> list:
        before = len(calls)
        log.clear()
        assert runner.run_book(root=tmp_path, html=False, log=log.append, **kw) == 0
        return calls[before:]

    both = [("nb/a.ipynb", "ci"), ("nb/b.ipynb", "ci")]
    assert run() == both
    assert run() == [] and sum(": reused in" in line for line in log) == 2, log
    assert "notebooks: 0 executed, 2 reused, 0 failed" in "\n".join(log)
    assert run(rerun=True) == both
    monkeypatch.setenv(runner.RERUN_ENV, "1")
    assert run(only="a") == both[:1]
    monkeypatch.delenv(runner.RERUN_ENV)
    assert run(preset="paper") == [("nb/a.ipynb", "paper"), ("nb/b.ipynb", "paper")]
    assert run(preset="paper") == [] and run() == []  # each preset has its own stored run
    with monkeypatch.context() as m:  # an edit of the library's source
        m.setattr(runner.reuse, "library_digest", lambda: "0" * 64)
        assert run() == both
    with monkeypatch.context() as m:  # another device type
        m.setattr(runner.reuse, "default_device", lambda: torch.device("cuda"))
        assert run() == both
    with monkeypatch.context() as m:  # another version of a package that matters
        m.setattr(runner.reuse, "versions_that_matter", lambda: {"torch": "0.0"})
        assert run() == both
    assert run() == []
    nb = nbformat.read(tmp_path / "nb" / "b.ipynb", as_version=4)
    nb.cells.append(nbformat.v4.new_markdown_cell("An added paragraph."))
    nbformat.write(nb, tmp_path / "nb" / "b.ipynb")
    assert run() == both[1:]  # an edit of one notebook re-executes that chapter only
    # a damaged stored copy is reported and executed again
    key = runner.reuse_key(
        (tmp_path / "nb" / "a.ipynb").read_bytes(), {"preset": "ci"}, runner.reuse_context()
    )
    runner.stored_path(key).write_text('{"cells": [', encoding="utf-8")
    assert run() == both[:1]
    assert any("damaged" in line and str(runner.stored_path(key)) in line for line in log)
    assert runner.load_stored(key) is not None, "the new execution was not stored"
    # chapters not chosen come from their stored execution, even after `make clean`
    shutil.rmtree(tmp_path / "_build")
    assert run(only="b") == []
    assert runner.executed_ok(tmp_path / "_build" / "executed" / "nb" / "a.ipynb")


def _site_book(root: Path) -> Path:
    """A book with no notebook (intro + build-info page), MathJax and an old site with a PDF."""
    (root / "_config.yml").write_text("title: t\n", encoding="utf-8")
    toc = "format: jb-book\nroot: intro\nchapters:\n- file: book/build_info\n"
    (root / "_toc.yml").write_text(toc, encoding="utf-8")
    (root / "intro.md").write_text("# Intro\n", encoding="utf-8")
    info = root / runner.BUILD_INFO_PAGE
    info.parent.mkdir(parents=True)
    info.write_bytes((ROOT / runner.BUILD_INFO_PAGE).read_bytes())
    (root / runner.MATHJAX_FILE).parent.mkdir(parents=True)
    (root / runner.MATHJAX_FILE).write_text("//", encoding="utf-8")
    html = root / "_build" / "html"
    html.mkdir(parents=True)
    (html / "index.html").write_text("old site", encoding="utf-8")
    (html / pdf.PDF_NAME).write_text("old pdf", encoding="utf-8")
    return html


def test_pdf_survives_the_site_swap_and_the_hook_runs_after_it(
    tmp_path: Path, book_cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    html = _site_book(tmp_path)

    def fake_sphinx(cmd, **kw):  # Jupyter Book, writing a site without a PDF
        out = Path(cmd[cmd.index("--path-output") + 1]) / "_build" / "html"
        out.mkdir(parents=True)
        (out / "index.html").write_text("new site", encoding="utf-8")
        return subprocess.CompletedProcess(cmd, 0, "", "")

    seen: list = []

    def fake_pdf_main(argv):  # the PDF step sees the new site, then replaces the PDF
        seen.append((argv, (html / "index.html").read_text(), (html / pdf.PDF_NAME).read_text()))
        (html / pdf.PDF_NAME).write_text("new pdf", encoding="utf-8")
        return 0

    monkeypatch.setattr(runner.site, "run_watched", fake_sphinx)
    monkeypatch.setattr(pdf, "main", fake_pdf_main)
    log: list[str] = []
    assert runner.run_book(root=tmp_path, log=log.append) == 0
    assert (html / "index.html").read_text() == "new site"
    assert (html / pdf.PDF_NAME).read_text() == "old pdf", "the swap deleted the PDF"
    assert any(f"kept {pdf.PDF_NAME}" in line for line in log) and seen == []
    info = (tmp_path / "_build" / "src" / runner.BUILD_INFO_PAGE).read_text(encoding="utf-8")
    assert "0 chapter(s) executed in this build" in info
    assert runner.run_book(root=tmp_path, with_pdf=True, log=log.append) == 0
    assert seen == [(["--root", str(tmp_path)], "new site", "old pdf")]
    assert (html / pdf.PDF_NAME).read_text() == "new pdf"
    monkeypatch.setattr(pdf, "main", lambda argv: 1)
    assert runner.run_book(root=tmp_path, with_pdf=True, log=log.append) == 1
    assert "the PDF was not built" in log[-1]
    with pytest.raises(ValueError, match="--pdf"):
        runner.run_book(root=tmp_path, html=False, with_pdf=True)


# ------------------------------------------------------------------------ runner (real kernel)


def _tiny_book(root: Path, cells: dict[str, list[str]]) -> None:
    (root / "_config.yml").write_text("title: t\n", encoding="utf-8")
    toc = {"format": "jb-book", "root": "intro", "chapters": []}
    (root / "intro.md").write_text("# Intro\n", encoding="utf-8")
    (root / "nb").mkdir()
    for name, sources in cells.items():
        nb = nbformat.v4.new_notebook()
        params = nbformat.v4.new_code_cell('preset = "ci"')
        params.metadata["tags"] = ["parameters"]
        nb.cells = [params, *(nbformat.v4.new_code_cell(src) for src in sources)]
        nbformat.write(nb, root / "nb" / f"{name}.ipynb")
        toc["chapters"].append({"file": f"nb/{name}"})
    (root / "_toc.yml").write_text(yaml.safe_dump(toc), encoding="utf-8")


@pytest.mark.slow
def test_runner_injects_preset_and_names_the_failing_cell(tmp_path: Path, book_cache: Path) -> None:
    _tiny_book(
        tmp_path,
        {
            "good": ["import sys\nprint('preset is', preset, sys.executable)"],
            "bad": ["x = 1", "y = x / 0  # boom\nprint(y)"],
        },
    )
    log: list[str] = []
    rc = runner.run_book(root=tmp_path, preset="paper", keep_going=True, html=False, log=log.append)
    assert rc == 1
    text = "\n".join(log)
    executed_good = tmp_path / "_build" / "executed" / "nb" / "good.ipynb"
    outputs = json.dumps(nbformat.read(executed_good, as_version=4).cells[2].outputs)
    assert "preset is paper" in outputs, "the preset was not injected"
    assert sys.executable in outputs, "the kernel is not the current interpreter"
    assert "nb/bad.ipynb failed" in text
    assert "of the executed copy (cell 2 of the source notebook)" in text
    assert "'y = x / 0  # boom'" in text and "ZeroDivisionError" in text
    # a failed run's copy is kept aside, never at the path that later builds reuse
    assert str(tmp_path / "_build" / "executed" / "nb" / "bad.failed.ipynb") in text
    assert not (tmp_path / "_build" / "executed" / "nb" / "bad.ipynb").exists()
    assert re.search(r"nb/good.ipynb: ok in \d+\.\d s", text)
    # the passing execution is stored for reuse, the failing one is not
    assert [p.suffix for p in (book_cache / "executed").iterdir()] == [".ipynb"]


@pytest.mark.slow
def test_runner_stops_at_the_first_failure_and_guards_time(
    tmp_path: Path, book_cache: Path
) -> None:
    _tiny_book(tmp_path, {"a_slow": ["import time\ntime.sleep(120)"], "b_never": ["1"]})
    log: list[str] = []
    rc = runner.run_book(root=tmp_path, timeout=6, html=False, log=log.append)
    text = "\n".join(log)
    assert rc == 1
    assert "per-notebook limit of 6 s" in text
    assert not any("b_never" in line for line in log if line.startswith("[")), "ran on"


@pytest.mark.slow
def test_warm_rebuild_starts_no_kernel(tmp_path: Path, book_cache: Path) -> None:
    """Real kernel: the second build reuses the stored execution (the cell's side effect does not
    happen again, and it takes a fraction of the time); a damaged stored copy is executed again
    and reported. The chapter's glued cold time is read from the executed copy."""
    marks = tmp_path / "kernel-ran.txt"
    cell = (
        f"open({str(marks)!r}, 'a').write('x')\n"
        "from myst_nb import glue\n"
        "glue('frame_cold_text', 'about 2 minutes', display=False)"
    )
    _tiny_book(tmp_path, {"a": [cell]})
    executed = tmp_path / "_build" / "executed" / "nb" / "a.ipynb"

    def build() -> tuple[float, str]:
        log: list[str] = []
        t0 = time.perf_counter()
        assert runner.run_book(root=tmp_path, html=False, log=log.append) == 0, log
        return time.perf_counter() - t0, "\n".join(log)

    cold_s, cold_log = build()
    assert marks.read_text() == "x" and "nb/a.ipynb: ok in" in cold_log
    warm_s, warm_log = build()
    assert marks.read_text() == "x", "the warm build started a kernel"
    assert re.search(r"nb/a.ipynb: reused in \d+\.\d s \(executed .* UTC in \d+\.\d s\)", warm_log)
    assert runner.executed_ok(executed)
    assert runner.glued_text(executed, "frame_cold_text") == "about 2 minutes"
    pattern = re.compile(r"a\.ipynb: \w+ in (\d+\.\d) s")
    seconds = [float(pattern.search(text).group(1)) for text in (cold_log, warm_log)]
    assert seconds[1] < 1.0 < seconds[0], (cold_log, warm_log)
    assert warm_s < cold_s, (cold_s, warm_s)
    (stored,) = (book_cache / "executed").iterdir()
    stored.write_bytes(stored.read_bytes()[:-200])  # damaged: cut short
    _, again_log = build()
    assert marks.read_text() == "xx" and "nb/a.ipynb: ok in" in again_log
    assert f"stored executed copy {stored} is damaged" in again_log
    assert runner.load_stored(stored.stem) is not None, "the new execution was not stored"


def test_timeout_must_be_positive(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="timeout"):
        runner.run_book(root=tmp_path, timeout=0, html=False)


@pytest.mark.skipif(os.name != "posix", reason="process groups")
def test_kernelspec_points_at_this_interpreter(tmp_path: Path) -> None:
    folder = runner.write_kernelspec(tmp_path)
    spec = json.loads((folder / "kernels" / "python3" / "kernel.json").read_text())
    assert spec["argv"][0] == sys.executable


def test_unknown_preset_fails_before_running(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="valid presets"):
        runner.run_book(root=tmp_path, preset="no-such-preset", html=False)
