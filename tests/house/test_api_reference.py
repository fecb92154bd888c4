"""The book's API reference (book/api/): the Sphinx extension that reads the docstrings
(book/_ext/w2s_api.py), every public layer on a page, the book's configuration, and (slow) a
strict build of the API pages alone, warnings as errors and nitpicky."""

from __future__ import annotations

import importlib.util
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

import w2s_utils.metrics
import w2s_utils.theory

ROOT = Path(__file__).resolve().parents[2]
API = ROOT / "book" / "api"
#: What the book's ``_config.yml`` (``sphinx:``) needs for the API pages.
EXTENSIONS = ["sphinx.ext.autodoc"]
LOCAL_EXTENSIONS = {"w2s_api": "book/_ext"}
CONFIG = {
    "autodoc_typehints": "signature",
    "autodoc_member_order": "bysource",
    "autodoc_default_options": {"members": True, "undoc-members": True},
    "nitpick_ignore_regex": [
        ["py:.*", r"(torch|numpy|pandas|scipy|matplotlib|datasets|transformers|sklearn|typing"
                  r"|collections|pathlib|os|types|argparse|concurrent)(\..*)?"],
        ["py:.*", r"w2s_utils\.book(\..*)?"],
        ["py:class", "Tensor|Module"],
    ],
}  # fmt: skip
#: The pages, in reading order (the toc lists them under book/api/index).
PAGES = ["metrics", "theory", "engine", "engine_data", "engine_models", "engine_experiment",
         "engine_heads", "engine_training", "engine_tasks", "analysis", "check"]  # fmt: skip


def _ext():
    path = ROOT / "book" / "_ext" / "w2s_api.py"
    spec = importlib.util.spec_from_file_location("w2s_api", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_pipes_are_escaped_outside_literals_only():
    ext = _ext()
    assert ext.escape_pipes("|gain| <= ``|x|`` and |p - q|") == r"\|gain\| <= ``|x|`` and \|p - q\|"
    assert ext.escape_pipes(r"already \| escaped") == r"already \| escaped"
    assert ext.escape_pipes("no pipes, ``a|b``") == "no pipes, ``a|b``"


def test_references_resolve_to_the_documented_name_of_the_same_object():
    ext = _ext()
    objects = {"w2s_utils.metrics.pgr": 1, "w2s_utils.theory.sweep": 1, "w2s_utils.metrics": 1}
    # the defining module's path -> the face that documents the same function
    assert ext.resolve_alias("w2s_utils.metrics.w2s.pgr", None, objects) == "w2s_utils.metrics.pgr"
    # relative to the module of the reference, and a role broken across lines
    assert ext.resolve_alias("pgr", "w2s_utils.metrics", objects) == "w2s_utils.metrics.pgr"
    assert ext.resolve_alias("w2s_utils.metrics.\n  pgr", None, objects) == "w2s_utils.metrics.pgr"
    assert ext.resolve_alias("~w2s_utils.theory.sweep.sweep", None, objects) == (
        "w2s_utils.theory.sweep"
    )
    # constants compare equal but are not aliased; unknown names stay unresolved
    assert ext.resolve_alias("w2s_utils.metrics.w2s.PGR_MIN_GAP", None, objects) is None
    assert ext.resolve_alias("w2s_utils.metrics.no_such_thing", None, objects) is None
    assert ext.resolve_alias("nothing", "w2s_utils.metrics", objects) is None


def test_public_names_are_the_faces_all_and_commented_constants():
    ext = _ext()
    assert ext.public_names(w2s_utils.metrics) == list(w2s_utils.metrics.__all__)
    names = ext.public_names(w2s_utils.theory)
    assert names[: len(w2s_utils.theory.__all__)] == list(w2s_utils.theory.__all__)
    assert ext.directive_for(w2s_utils.theory.error_aware_interval) == "autofunction"
    assert ext.directive_for(w2s_utils.theory.UndefinedResultError) == "autoexception"
    assert ext.directive_for(w2s_utils.metrics.PGR_MIN_GAP) == "autodata"
    assert ext.constant_comment("w2s_utils.metrics.PGR_MIN_GAP", w2s_utils.metrics.PGR_MIN_GAP)


def test_every_public_layer_has_a_page():
    pattern = re.compile(r"\.\. w2s-api:: (\S+)")
    documented = {m for page in API.glob("*.md") for m in pattern.findall(page.read_text())}
    faces = {"w2s_utils.metrics", "w2s_utils.theory", "w2s_utils.analysis", "w2s_utils.check",
             "w2s_utils.cli", "w2s_utils.engine.data", "w2s_utils.engine.models",
             "w2s_utils.engine.experiment", "w2s_utils.engine.heads"}  # fmt: skip
    assert faces <= documented
    engine = {p.stem for p in (ROOT / "w2s_utils" / "engine").glob("*.py")} - {"__init__"}
    assert {f"w2s_utils.engine.{m}" for m in engine} <= documented  # the modules without a face
    assert sorted(p.stem for p in API.glob("*.md")) == sorted(["index", *PAGES])


def test_the_book_builds_the_api_pages_strictly():
    """The book's ``_config.yml`` and ``_toc.yml`` carry what the API pages need."""
    config = yaml.safe_load((ROOT / "_config.yml").read_text(encoding="utf-8"))["sphinx"]
    assert set(EXTENSIONS) <= set(config["extra_extensions"])
    assert LOCAL_EXTENSIONS.items() <= config["local_extensions"].items()
    assert config["config"]["nitpicky"] is True
    for key, value in CONFIG.items():
        assert config["config"].get(key) == value, key
    toc = (ROOT / "_toc.yml").read_text(encoding="utf-8")
    for page in ["index", *PAGES]:
        assert f"file: book/api/{page}\n" in toc, page


@pytest.mark.slow
def test_api_pages_build_with_warnings_as_errors(tmp_path):
    """``sphinx-build -W -n`` on the API pages alone (a throwaway conf.py with the settings above):
    every docstring parses and every cross-reference resolves."""
    src = tmp_path / "src"
    src.mkdir()
    for page in API.glob("*.md"):
        text = page.read_text(encoding="utf-8")
        if page.stem == "index":
            text += "\n```{toctree}\n:hidden:\n\n" + "\n".join(PAGES) + "\n```\n"
        (src / page.name).write_text(text, encoding="utf-8")
    conf = {
        "project": "w2s-utils API",
        "extensions": ["myst_parser", *EXTENSIONS, *LOCAL_EXTENSIONS],
        "myst_enable_extensions": ["amsmath", "colon_fence", "deflist", "dollarmath"],
        "nitpicky": True,
        "html_theme": "alabaster",
        **{k: v for k, v in CONFIG.items() if k != "nitpick_ignore_regex"},
        "nitpick_ignore_regex": [tuple(x) for x in CONFIG["nitpick_ignore_regex"]],
    }
    paths = [str(ROOT), str(ROOT / "book" / "_ext")]
    (src / "conf.py").write_text(
        "import sys\n"
        f"sys.path[:0] = {paths!r}\n" + "".join(f"{k} = {v!r}\n" for k, v in conf.items())
    )
    proc = subprocess.run(
        [sys.executable, "-m", "sphinx", "-b", "html", "-W", "--keep-going", "-n", "-q",
         str(src), str(tmp_path / "out")],
        capture_output=True, text=True, timeout=1200,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-5000:]
    page = (tmp_path / "out" / "theory.html").read_text(encoding="utf-8")
    assert 'id="w2s_utils.theory.error_aware_interval"' in page
