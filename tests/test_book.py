"""Repository structure of the book, its environment files and the runner (book.runner)."""

from __future__ import annotations

import ast
import importlib.util
import json
import os
import re
import stat
import sys
import unicodedata
from pathlib import Path

import nbformat
import pytest
import yaml
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from w2s_utils.book import runner

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))


def _pyproject() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))


def _declared_requirements() -> list[Requirement]:
    project = _pyproject()["project"]
    extras = project.get("optional-dependencies", {})
    reqs = project["dependencies"] + extras.get("book", []) + extras.get("test", [])
    return [Requirement(r) for r in reqs]


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


def test_build_info_fills_the_template(tmp_path: Path) -> None:
    page = tmp_path / runner.BUILD_INFO_PAGE
    page.parent.mkdir(parents=True)
    page.write_text((ROOT / runner.BUILD_INFO_PAGE).read_text(encoding="utf-8"), encoding="utf-8")
    record = runner.BuildRecord(preset="ci", started=runner.dt.datetime(2026, 1, 2, 3, 4))
    record.chapters = [
        runner.ChapterResult(Path("notebooks/01_pipeline.ipynb"), "ok", 12.34),
        runner.ChapterResult(Path("notebooks/02_generalization_bounds.ipynb"), "skipped"),
    ]
    runner.write_build_info(tmp_path, ROOT, record)
    text = page.read_text(encoding="utf-8")
    assert "built without the book runner" not in text
    assert "| Preset | `ci` |" in text and "2026-01-02 03:04" in text
    assert "| `notebooks/01_pipeline.ipynb` | executed | 12.3 |" in text
    assert "not executed in this run" in text and "| `jupyter-book` |" in text
    assert text.count(runner.BUILD_INFO_START) == 1 and text.count(runner.BUILD_INFO_END) == 1


def test_missing_toc_file_is_reported(tmp_path: Path) -> None:
    (tmp_path / "_toc.yml").write_text(
        "format: jb-book\nroot: intro\nchapters:\n  - file: nb/missing\n", encoding="utf-8"
    )
    (tmp_path / "intro.md").write_text("# Intro\n", encoding="utf-8")
    with pytest.raises(FileNotFoundError, match="nb/missing"):
        runner.toc_notebooks(tmp_path)


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
def test_runner_injects_preset_and_names_the_failing_cell(tmp_path: Path) -> None:
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


@pytest.mark.slow
def test_runner_stops_at_the_first_failure_and_guards_time(tmp_path: Path) -> None:
    _tiny_book(tmp_path, {"a_slow": ["import time\ntime.sleep(120)"], "b_never": ["1"]})
    log: list[str] = []
    rc = runner.run_book(root=tmp_path, timeout=6, html=False, log=log.append)
    text = "\n".join(log)
    assert rc == 1
    assert "per-notebook limit of 6 s" in text
    assert not any("b_never" in line for line in log if line.startswith("[")), "ran on"


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
