"""Hostile input and faults (issue 15): every bad input gets a clear error, every output stays
trustworthy.

Each error case asserts the exception type, that the message names the offending argument (or
file, or environment variable), and - through the autouse ``untouched`` fixture - that nothing in
the cache folder or in a built site changed (listing and bytes before/after). The kinds of the
issue, each covered by at least three cases:

- ``polluted``: machine-readable output polluted by notices (stdout carries only the result);
- ``silent``: silently wrong results (undefined results reported as holding, float labels
  truncated, a 2-D array flattened, seeds iterated character by character or duplicated);
- ``hang``: special files (FIFO, devices) read forever;
- ``artefact``: misleading artefacts of the book runner (half-executed copies reused, a site that
  looks complete but is not, a cell timeout reported as KeyboardInterrupt);
- ``weak``: weak messages (NaN/inf, shapes, numpy scalars and float16 rejected, siblings unlike,
  cache folders, corrupt data, unreadable files, ``--root``, malformed JSONL, environment).

The pipeline faults (concurrent runs of one configuration, ``kill -9`` at seeded random moments of
a small grid on the ``test`` preset) run in subprocesses over a synthetic dataset, in private
cache folders; the cache is verified after.
"""

from __future__ import annotations

import hashlib
import io
import json
import math
import os
import pickle
import re
import shutil
import signal
import subprocess
import sys
import textwrap
import threading
import time
import zipfile
from pathlib import Path

import nbformat
import numpy as np
import pytest
import torch
import yaml

from w2s_utils import _validate as v
from w2s_utils import check, cli, metrics, theory
from w2s_utils.book import runner
from w2s_utils.engine import cache, data, device, models
from w2s_utils.theory import _base

ROOT = Path(__file__).resolve().parents[2]


# ------------------------------------------------------------------------------------ fixtures
def _listing(folder: Path) -> dict[str, tuple[int, str]]:
    """Every file under ``folder``: relative path -> (size, sha256)."""
    out = {}
    if not folder.exists():
        return out
    for p in sorted(folder.rglob("*")):
        if p.is_file() and not p.is_symlink():
            out[p.relative_to(folder).as_posix()] = (
                p.stat().st_size,
                hashlib.sha256(p.read_bytes()).hexdigest(),
            )
        elif p.is_dir():
            out[p.relative_to(folder).as_posix() + "/"] = (0, "")
    return out


@pytest.fixture(autouse=True)
def untouched(request, tmp_path, monkeypatch, sandbox):
    """The sandbox's cache holding one valid entry, and a built site; both must be unchanged after
    the test unless it asks for ``allow_writes`` (the pipeline and notice tests)."""
    cache_root = sandbox
    for var in ("XDG_CACHE_HOME", "W2S_KEEP_WHEELS", "HF_HUB_OFFLINE", "HF_ENDPOINT"):
        monkeypatch.delenv(var, raising=False)
    cache.save_arrays(cache_root / "results" / "kept.npz", {"x": np.arange(3)}, {"k": 1})
    site = tmp_path / "guard-site"
    (site / "_static").mkdir(parents=True)
    (site / "index.html").write_text("<html>complete site</html>", encoding="utf-8")
    (site / "_static" / "x.css").write_text("body{}", encoding="utf-8")
    before = (_listing(cache_root), _listing(site))
    yield {"cache": cache_root, "site": site}
    if "allow_writes" not in request.fixturenames:
        after = (_listing(cache_root), _listing(site))
        assert after[0] == before[0], "the cache folder changed"
        assert after[1] == before[1], "the site folder changed"


@pytest.fixture
def allow_writes():
    """Marks a test that writes to the cache on purpose (``untouched`` then skips its check)."""
    return True


def _names(err: pytest.ExceptionInfo, *names: str) -> None:
    msg = str(err.value)
    for name in names:
        assert name in msg, f"message does not name {name!r}: {msg}"


def _no_hang(fn, seconds: float = 20.0):
    """Run ``fn`` in a daemon thread; fail (instead of hanging the suite) if it blocks."""
    box: dict[str, object] = {}

    def target() -> None:
        try:
            box["value"] = fn()
        except BaseException as err:  # noqa: BLE001 - handed back to the test
            box["error"] = err

    t = threading.Thread(target=target, daemon=True)
    t.start()
    t.join(seconds)
    assert not t.is_alive(), f"hung for more than {seconds} s"
    if "error" in box:
        raise box["error"]  # type: ignore[misc]
    return box.get("value")


def _npz(path: Path, **arrays) -> Path:
    np.savez(path, **arrays)
    return path


GOOD = {
    "weak": np.array([0.2, 0.7, 0.6, 0.4]),
    "student": np.array([0.3, 0.8, 0.55, 0.35]),
    "labels": np.array([0, 1, 1, 0]),
}


# =================================================================== kind: polluted (stdout)
def test_polluted_cache_repair_notice_goes_to_stderr(capsys, allow_writes):
    key, calls = {"cfg": 1}, []

    def compute():
        calls.append(1)
        return {"a": np.arange(4)}, {"m": 1}

    cache.cached_arrays(key, "hostile", compute)
    path = cache.cache_path(key, "hostile")
    raw = bytearray(path.read_bytes())
    raw[len(raw) // 2] ^= 0xFF
    path.write_bytes(bytes(raw))
    capsys.readouterr()
    arrays, _ = cache.cached_arrays(key, "hostile", compute)
    out = capsys.readouterr()
    assert out.out == "", "a cache notice went to stdout"
    assert str(path) in out.err and "recomputing" in out.err
    assert len(calls) == 2 and arrays["a"].tolist() == [0, 1, 2, 3]
    cache.load_arrays(path)  # the repaired entry verifies


def test_polluted_data_rebuild_notice_goes_to_stderr(tmp_path, capsys, allow_writes):
    path = tmp_path / "compact.npz"
    path.write_bytes(b"PK\x03\x04 not really a zip")
    assert data.load_compact(path, {"k": 1}) is None  # default logger: notice -> stderr
    out = capsys.readouterr()
    assert out.out == "" and str(path) in out.err and "rebuilding" in out.err


def test_polluted_check_json_stays_parseable(tmp_path, capsys):
    f = _npz(
        tmp_path / "zeros.npz",
        weak=np.array([0.0, 1.0, 0.5]),
        student=np.array([0.1, 0.9, 0.5]),
        labels=np.array([0, 1, 1]),
    )
    rc = cli.main(["check", str(f), "--json"])
    out = capsys.readouterr()
    payload = json.loads(out.out)  # nothing but the JSON on stdout
    assert rc in (0, 1) and payload["skipped"], "zero probabilities skip some results"
    assert "[w2s_utils" not in out.out


def test_polluted_errors_never_reach_stdout(tmp_path, capsys):
    rc = cli.main(["check", str(tmp_path / "missing.npz"), "--json"])
    out = capsys.readouterr()
    assert rc == 2 and out.out == ""
    assert out.err.startswith("error: ") and "missing.npz" in out.err and ";" in out.err


# ==================================================================== kind: silent (wrong)
def _both_infinite():
    # weak and student put zero mass where F* has some: Err(weak) = Err(student) = inf and the
    # disagreement is 0, so both sides of gain >= reverse-KL misfit are +inf (it used to report
    # "holds").
    fs = torch.tensor([[0.5, 0.5], [0.5, 0.5]], dtype=torch.float64)
    w = torch.tensor([[1.0, 0.0], [0.5, 0.5]], dtype=torch.float64)
    return fs, w, w.clone()


def test_silent_both_infinite_sides_are_undefined_not_holds():
    fs, w, s = _both_infinite()
    with pytest.raises(ValueError, match="undefined") as err:
        theory.kl_misfit_gain(w, s, f_star=fs)
    assert isinstance(err.value, _base.UndefinedResultError)
    _names(err, "lhs", "rhs")


def test_silent_nan_comparison_never_holds():
    with pytest.raises(_base.UndefinedResultError) as err:
        _base._le(math.nan, math.inf, 1e-9)  # used to return True: "b = inf always holds"
    _names(err, "lhs/rhs", "nan")
    with pytest.raises(_base.UndefinedResultError):
        _base._le(1.0, math.nan, 1e-9)
    assert _base._le(1.0, math.inf, 1e-9) is True  # a finite side under +inf still holds


def test_silent_check_reports_undefined_not_holds(tmp_path):
    fs, w, s = _both_infinite()
    res = check.check_arrays(w.numpy(), s.numpy(), labels=np.array([0, 1]), f_star=fs.numpy())
    skipped = {r["name"]: r["reason"] for r in res["skipped"]}
    assert "undefined" in skipped["gain >= reverse-KL misfit [F*]"], skipped
    for row in res["results"]:
        assert not (row["holds"] and (math.isnan(row["lhs"]) or math.isnan(row["rhs"])))
        assert not (row["holds"] and math.isinf(row["lhs"]) and math.isinf(row["rhs"]))


@pytest.mark.parametrize("label", [0.7, "0.5", 1.5, -1, "yes", None])
def test_silent_float_label_in_local_jsonl_is_not_truncated(tmp_path, label):
    f = tmp_path / "mine.jsonl"
    rows = [{"text": "a", "label": 0}, {"text": "b", "label": 1}, {"text": "c", "label": label}]
    f.write_text("\n".join(json.dumps(r) for r in rows) + "\n", encoding="utf-8")
    with pytest.raises(ValueError) as err:
        data.load_texts(f)
    _names(err, str(f), "line 3", "label")


def test_silent_whole_float_labels_are_accepted(tmp_path):
    f = tmp_path / "mine.jsonl"
    rows = [{"text": f"t{i}", "label": lab} for i, lab in enumerate([0, 1.0, "1", True])]
    f.write_text("\n".join(json.dumps(r) for r in rows), encoding="utf-8")
    assert data.load_texts(f).labels.tolist() == [0, 1, 1, 1]


def test_silent_float_labels_in_records_and_datasets():
    with pytest.raises(ValueError) as err:
        data.TextDataset.from_records("mine", ["a", "b"], [0, 0.7])
    _names(err, "labels[1]", "0.7")
    with pytest.raises(ValueError) as err:
        data.TextDataset(name="x", texts=("a",), labels=np.array([0.7]), ids=("i",))
    _names(err, "labels[0]")


def test_silent_seed_interval_rejects_2d():
    with pytest.raises(ValueError) as err:
        metrics.seed_interval(np.ones((3, 4)))
    _names(err, "values", "(3, 4)")
    assert metrics.seed_interval(np.float64(0.5)).point == 0.5  # a numpy scalar: one seed


@pytest.mark.parametrize(
    "seeds, named",
    [
        ("012", "string"),
        ([0, 1, 1], "duplicate"),
        ([0, -1], "seeds[1]"),
        ([0.5], "seeds[0]"),
        (0, ">= 1"),
        (True, "bool"),
        ([], "empty"),
        (np.zeros((2, 2), int), "1-D"),
    ],
)
def test_silent_seeds_validator(seeds, named):
    with pytest.raises(ValueError) as err:
        v.check_seeds(seeds)
    _names(err, "seeds", named)


def test_silent_seeds_validator_accepts():
    assert v.check_seeds(3) == (0, 1, 2) and v.check_seeds(np.int64(2)) == (0, 1)
    assert v.check_seeds([4, np.int64(2)]) == (4, 2) and v.check_seeds(range(2)) == (0, 1)


def test_silent_float_label_in_metrics():
    with pytest.raises(ValueError) as err:
        metrics.accuracy(np.array([[0.3, 0.7], [0.6, 0.4]]), np.array([0.7, 1.0]))
    _names(err, "labels", "whole numbers")


# ========================================================================== kind: hang
@pytest.fixture
def fifo(tmp_path):
    path = tmp_path / "pipe.npz"
    os.mkfifo(path)
    return path


def test_hang_check_fifo_rejected_before_reading(fifo):
    with pytest.raises(ValueError) as err:
        _no_hang(lambda: check.check_file(fifo))
    _names(err, str(fifo), "FIFO")


@pytest.mark.parametrize("dev", ["/dev/zero", "/dev/null", "/dev/urandom"])
def test_hang_check_device_rejected(dev):
    if not os.path.exists(dev):
        pytest.skip(f"{dev} missing")
    with pytest.raises(ValueError) as err:
        _no_hang(lambda: check.check_file(dev))
    _names(err, dev, "character device")


def test_hang_check_symlink_to_fifo(tmp_path, fifo):
    link = tmp_path / "link.npz"
    link.symlink_to(fifo)
    with pytest.raises(ValueError) as err:
        _no_hang(lambda: check.check_file(link))
    _names(err, str(link), "not a regular file")


def test_hang_load_texts_fifo(fifo):
    with pytest.raises(ValueError) as err:
        _no_hang(lambda: data.load_texts(fifo))
    _names(err, str(fifo), "not a regular file")


@pytest.mark.slow
def test_hang_cli_check_fifo_subprocess(fifo):
    proc = subprocess.run(
        [sys.executable, "-m", "w2s_utils", "check", str(fifo), "--json"],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )
    assert proc.returncode == 2 and proc.stdout == ""
    assert proc.stderr.startswith("error: ") and str(fifo) in proc.stderr and ";" in proc.stderr


# ====================================================================== kind: artefact
def _executed_nb(path: Path, *, error: str | None = None, status: str = "completed") -> Path:
    """A notebook that looks like papermill's output (optionally with an error output)."""
    nb = nbformat.v4.new_notebook()
    cells = [nbformat.v4.new_code_cell("x = 1"), nbformat.v4.new_code_cell("y = 2")]
    for c in cells:
        c.metadata["papermill"] = {"status": "completed", "exception": False}
    cells[-1].metadata["papermill"]["status"] = status
    if error:
        cells[-1].outputs = [nbformat.v4.new_output("error", ename=error, evalue="", traceback=[])]
    nb.cells = cells
    nb.metadata["papermill"] = {"exception": None}
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, path)
    return path


def _tiny_book(root: Path, names: list[str], sources: list[str] | None = None) -> None:
    (root / "_config.yml").write_text("title: t\n", encoding="utf-8")
    (root / "intro.md").write_text("# Intro\n", encoding="utf-8")
    (root / "nb").mkdir(parents=True, exist_ok=True)
    toc = {"format": "jb-book", "root": "intro", "chapters": []}
    for name in names:
        nb = nbformat.v4.new_notebook()
        params = nbformat.v4.new_code_cell('preset = "ci"')
        params.metadata["tags"] = ["parameters"]
        nb.cells = [params, *(nbformat.v4.new_code_cell(s) for s in (sources or ["1"]))]
        nbformat.write(nb, root / "nb" / f"{name}.ipynb")
        toc["chapters"].append({"file": f"nb/{name}"})
    (root / "_toc.yml").write_text(yaml.safe_dump(toc), encoding="utf-8")


@pytest.mark.parametrize(
    "kwargs",
    [{"error": "KeyboardInterrupt"}, {"error": "ZeroDivisionError"}, {"status": "running"}],
)
def test_artefact_incomplete_copy_is_not_ok(tmp_path, kwargs):
    assert runner.executed_ok(_executed_nb(tmp_path / "ok.ipynb"))
    assert not runner.executed_ok(_executed_nb(tmp_path / "bad.ipynb", **kwargs))
    (tmp_path / "trunc.ipynb").write_text('{"cells": [', encoding="utf-8")
    assert not runner.executed_ok(tmp_path / "trunc.ipynb")


def test_artefact_failed_copy_of_another_chapter_is_not_reused(tmp_path, monkeypatch):
    _tiny_book(tmp_path, ["a", "b"])
    out = tmp_path / "_build" / "executed" / "nb"
    _executed_nb(out / "a.ipynb", error="KeyboardInterrupt")  # an earlier timed-out run
    staged: dict = {}

    def fake_execute(root, nb, **kw):
        path = _executed_nb(kw["out_dir"] / nb)
        return runner.ChapterResult(nb, "ok", 0.1, path)

    def fake_stage(root, build, executed, incomplete=None):
        staged.update(executed=dict(executed), incomplete=dict(incomplete or {}))
        raise RuntimeError("stop before the site build")

    monkeypatch.setattr(runner.build, "execute_notebook", fake_execute)
    monkeypatch.setattr(runner.build, "stage_sources", fake_stage)
    log: list[str] = []
    with pytest.raises(RuntimeError, match="stop before"):
        runner.run_book(root=tmp_path, only="b", log=log.append)
    assert Path("nb/a.ipynb") not in staged["executed"], "a half-executed copy was reused"
    assert Path("nb/b.ipynb") in staged["executed"]
    assert any("nb/a.ipynb is incomplete" in line for line in log), log


def test_artefact_keep_going_stages_a_warning_banner(tmp_path):
    _tiny_book(tmp_path, ["a"])
    failed = _executed_nb(tmp_path / "_build" / "executed" / "nb" / "a.failed.ipynb", error="E")
    staging = runner.stage_sources(
        tmp_path, tmp_path / "_build", {Path("nb/a.ipynb"): failed}, {Path("nb/a.ipynb"): "failed"}
    )
    first = nbformat.read(staging / "nb" / "a.ipynb", as_version=4).cells[0]
    assert first.cell_type == "markdown" and "did not finish" in first.source
    assert "{warning}" in first.source and "(failed)" in first.source


def _fake_sphinx(monkeypatch, *, ok: bool):
    """Stand-in for the Jupyter Book subprocess: writes (part of) a site under --path-output."""

    def fake_run(cmd, **kw):
        assert "jupyter_book" in " ".join(map(str, cmd))
        out = Path(cmd[cmd.index("--path-output") + 1]) / "_build" / "html"
        out.mkdir(parents=True, exist_ok=True)
        (out / "partial.html").write_text("half", encoding="utf-8")
        if ok:
            (out / "index.html").write_text("<html>new site</html>", encoding="utf-8")
        return subprocess.CompletedProcess(cmd, 0 if ok else 1, "", "" if ok else "WARNING: x")

    monkeypatch.setattr(runner.site, "run_watched", fake_run)


def _site_root(tmp_path: Path) -> tuple[Path, Path]:
    staging = tmp_path / "_build" / "src"
    (staging / runner.MATHJAX_FILE).parent.mkdir(parents=True)
    (staging / runner.MATHJAX_FILE).write_text("//", encoding="utf-8")
    html = tmp_path / "_build" / "html"
    (html / "_static").mkdir(parents=True)
    (html / "index.html").write_text("<html>old complete site</html>", encoding="utf-8")
    (html / "_static" / "a.css").write_text("x", encoding="utf-8")
    return staging, html


def test_artefact_failed_site_build_leaves_the_old_site(tmp_path, monkeypatch):
    staging, html = _site_root(tmp_path)
    before = _listing(html)
    _fake_sphinx(monkeypatch, ok=False)
    with pytest.raises(RuntimeError) as err:
        runner.build_html(tmp_path, staging, log=lambda m: None)
    _names(err, "site build failed", "unchanged", "sphinx.log")
    assert _listing(html) == before, "a failed build touched the site"
    assert not [p for p in (tmp_path / "_build").iterdir() if p.name.startswith(".html-")]


def test_artefact_successful_site_build_swaps_in(tmp_path, monkeypatch):
    staging, html = _site_root(tmp_path)
    _fake_sphinx(monkeypatch, ok=True)
    assert runner.build_html(tmp_path, staging, log=lambda m: None) == html
    assert (html / "index.html").read_text() == "<html>new site</html>"
    assert not (html / "_static" / "a.css").exists(), "old files survived the swap"
    assert not [p for p in (tmp_path / "_build").iterdir() if p.name.startswith(".html-")]


@pytest.mark.parametrize(
    "make_root, named",
    [
        (lambda t: t / "nowhere", "no such folder"),
        (lambda t: (t / "file.txt").write_text("x") and t / "file.txt", "not a folder"),
        (lambda t: (t / "empty").mkdir() or t / "empty", "_toc.yml"),
    ],
)
def test_artefact_bad_root(tmp_path, capsys, make_root, named):
    root = make_root(tmp_path)
    before = _listing(tmp_path)
    with pytest.raises(ValueError) as err:
        runner.check_root(root)
    _names(err, "--root", str(root), named)
    assert cli.main(["book", "--root", str(root), "--no-html"]) == 2
    err_text = capsys.readouterr().err
    assert err_text.startswith("error: --root") and "pass the repository root" in err_text
    assert _listing(tmp_path) == before, "a bad --root wrote something"


@pytest.mark.slow
def test_artefact_cell_timeout_is_reported_as_timeout(tmp_path):
    """Real kernel: a cell past --cell-timeout is a timeout (not "KeyboardInterrupt"), and its
    half-executed copy is kept aside, never at the path later builds reuse."""
    _tiny_book(tmp_path, ["slow"], ["x = 1", "import time\ntime.sleep(60)"])
    site = tmp_path / "_build" / "html"
    site.mkdir(parents=True)
    (site / "index.html").write_text("old", encoding="utf-8")
    before = _listing(site)
    log: list[str] = []
    rc = runner.run_book(root=tmp_path, cell_timeout=2, timeout=240, html=True, log=log.append)
    text = "\n".join(log)
    assert rc == 1
    assert "timed out" in text and "per-cell limit of 2 s" in text and "--cell-timeout" in text
    assert "error: KeyboardInterrupt" not in text
    assert "slow: timeout in" in text.replace("nb/slow.ipynb", "slow"), text
    executed = tmp_path / "_build" / "executed" / "nb"
    assert not (executed / "slow.ipynb").exists(), "a timed-out copy sits at the reusable path"
    assert (executed / "slow.failed.ipynb").is_file()
    assert not runner.executed_ok(executed / "slow.failed.ipynb")
    assert _listing(site) == before, "the old site changed although no site was built"


# ========================================================================= kind: weak
@pytest.mark.parametrize(
    "args, named",
    [
        ((math.nan, 0.7, 0.8), "weak"),
        ((0.6, math.inf, 0.8), "student"),
        ((0.6, 0.7, -math.inf), "ceiling"),
        ((np.ones(3), np.ones(4), np.ones(3)), "student"),
        ((np.ones(3), np.ones(3), np.ones((2, 2))), "ceiling"),
        ((np.array([0.6, np.nan]), np.ones(2), np.ones(2)), "weak"),
    ],
)
def test_weak_pgr_rejects_nonfinite_and_mismatched(args, named):
    with pytest.raises(ValueError) as err:
        metrics.pgr(*args)
    _names(err, named)


def test_weak_bootstrap_rejects_nan():
    with pytest.raises(ValueError) as err:
        metrics.bootstrap_ci(lambda a: a.mean(-1), np.array([1.0, math.nan, 2.0]))
    _names(err, "arrays[0]", "NaN")


def test_weak_pgr_min_gap():
    with pytest.raises(ValueError) as err:
        metrics.pgr(0.6, 0.7, 0.8, min_gap=math.nan)
    _names(err, "min_gap")


def test_weak_numpy_scalars_are_valid_input():
    p = np.array([[0.3, 0.7], [0.8, 0.2], [0.4, 0.6]])
    y = np.array([1, 0, 0])
    assert metrics.pgr(np.float32(0.6), np.float64(0.7), np.float16(0.8)) == pytest.approx(
        0.5, abs=1e-3
    )
    assert metrics.ece(p, y, n_bins=np.int64(5)) == metrics.ece(p, y, n_bins=5)
    iv = metrics.bootstrap_ci(
        lambda a: a.float().mean(-1), y, n_resamples=np.int64(20), level=np.float32(0.9)
    )
    assert iv.lo <= iv.hi
    r = theory.generalization_bound(p, p[::-1].copy(), labels=y, tol=np.float32(1e-9))
    assert r.holds
    assert metrics.one_hot(y, np.int64(2)).shape == (3, 2)
    clipped = theory.clip_to_floor(p, np.float32(0.25))
    assert torch.allclose(clipped, theory.clip_to_floor(p, 0.25))


def test_weak_float16_arrays_are_valid_input():
    rng = np.random.default_rng(0)
    p32 = rng.dirichlet(np.ones(5), size=50).astype(np.float32)
    p16 = p32.astype(np.float16)  # rows sum to 1 only within float16 precision
    y = rng.integers(0, 5, size=50)
    assert metrics.accuracy(p16, y) == metrics.accuracy(p32, y)
    assert metrics.ece(p16, y) == pytest.approx(metrics.ece(p32, y), abs=1e-2)
    assert float(metrics.kl(p16, p16).abs().max()) < 1e-3
    assert v.check_probs(p16, "p").dtype == torch.float32
    with pytest.raises(ValueError) as err:  # float16 still has to sum to one
        v.check_probs((p32 * 1.1).astype(np.float16), "student")
    _names(err, "student", "sum to 1")


def test_weak_theorem_siblings_behave_alike_on_zero_probabilities():
    fs, w, s = _both_infinite()
    errors = []
    for fn in (
        lambda: theory.kl_misfit_gain(w, s, f_star=fs),
        lambda: theory.misfit_centred_bound(w, s, f_star=fs),
        lambda: theory.generalization_bound(w, s, f_star=fs),
        lambda: theory.error_decomposition(w, s, f_star=fs),
    ):
        with pytest.raises(ValueError) as err:
            fn()
        errors.append(str(err.value))
    assert all("clip_to_floor" in e for e in errors), errors  # each says what to do


@pytest.mark.parametrize("bad", [np.float64(np.nan), -1.0, "1e-9", True])
def test_weak_theory_tol(bad):
    p = np.array([[0.3, 0.7], [0.8, 0.2]])
    with pytest.raises(ValueError) as err:
        theory.generalization_bound(p, p, labels=np.array([1, 0]), tol=bad)
    _names(err, "tol")


@pytest.mark.parametrize(
    "setup, var",
    [
        (lambda t: (t / "afile").write_text("x") and t / "afile", "W2S_CACHE_DIR"),
        (lambda t: (t / "f2").write_text("x") and t / "f2" / "under", "W2S_CACHE_DIR"),
        (lambda t: Path("/proc/w2s-hostile-cache"), "W2S_CACHE_DIR"),
        (lambda t: "", "W2S_CACHE_DIR"),
    ],
)
def test_weak_cache_dir_named_with_its_variable(tmp_path, monkeypatch, setup, var):
    monkeypatch.setenv("W2S_CACHE_DIR", str(setup(tmp_path)))
    before = _listing(tmp_path)
    with pytest.raises(ValueError) as err:
        cache.cache_dir("results")
    _names(err, var)
    assert "writable folder" in str(err.value) or "unset" in str(err.value)
    assert _listing(tmp_path) == before


def test_weak_xdg_cache_home_named(tmp_path, monkeypatch):
    monkeypatch.delenv("W2S_CACHE_DIR")
    (tmp_path / "xdg").write_text("x")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    with pytest.raises(ValueError) as err:
        cache.cache_dir()
    _names(err, "XDG_CACHE_HOME", "is a file")


def test_weak_cache_dir_error_through_the_cli(tmp_path, monkeypatch, capsys):
    (tmp_path / "afile").write_text("x")
    monkeypatch.setenv("W2S_CACHE_DIR", str(tmp_path / "afile"))
    assert cli.main(["data", "info", "sarcasm"]) == 2
    out = capsys.readouterr()
    assert out.err.startswith("error: ") and "W2S_CACHE_DIR" in out.err and out.out == ""


@pytest.mark.parametrize(
    "content, named",
    [
        (b'{"text": "a", "label": 0}\n{"text": "b", "label": 1\n', "line 2"),
        (b'{"text": "a", "label": 0}\n\n[1, 2]\n', "line 3"),
        (b'{"text": "a", "label": 0}\n\xff\xfe{"text"}\n', "line 2"),
        (b'{"text": "a", "label": 0}\n{"sentence": "b", "label": 1}\n', "line 2"),
        (b"", "no records"),
    ],
)
def test_weak_malformed_jsonl_names_file_and_line(tmp_path, content, named):
    f = tmp_path / "data.jsonl"
    f.write_bytes(content)
    with pytest.raises(ValueError) as err:
        data.load_texts(f)
    _names(err, str(f), named)


def test_weak_corrupt_data_files(tmp_path):
    folder = tmp_path / "saved"
    folder.mkdir()
    (folder / "dataset_info.json").write_text("{not json")
    (folder / "state.json").write_text("{}")
    with pytest.raises(ValueError) as err:
        data.load_texts(folder)
    _names(err, str(folder), "save_to_disk")
    txt = tmp_path / "data.txt"
    txt.write_text("text,label\na,0\n")
    with pytest.raises(ValueError) as err:
        data.load_texts(txt)
    _names(err, str(txt), ".jsonl")


@pytest.mark.parametrize(
    "content, named",
    [
        (b"PK\x03\x04 truncated", "not a readable .npz"),
        (b"hello, not numpy", "not a zip"),
        (b"", "empty"),
    ],
)
def test_weak_corrupt_check_inputs(tmp_path, content, named):
    f = tmp_path / "bad.npz"
    f.write_bytes(content)
    with pytest.raises(ValueError) as err:
        check.check_file(f)
    _names(err, str(f), named)


def test_weak_truncated_npz_member(tmp_path):
    f = _npz(tmp_path / "ok.npz", **GOOD)
    raw = f.read_bytes()
    f.write_bytes(raw[: len(raw) * 2 // 3])
    with pytest.raises(ValueError) as err:
        check.check_file(f)
    _names(err, str(f))


def test_weak_unreadable_check_input(tmp_path, monkeypatch, capsys):
    f = _npz(tmp_path / "locked.npz", **GOOD)
    real_open = open

    def deny(path, *a, **k):
        if os.fspath(path) == str(f):
            raise PermissionError(13, "Permission denied", str(f))
        return real_open(path, *a, **k)

    monkeypatch.setattr("builtins.open", deny)
    with pytest.raises(ValueError) as err:
        check.check_file(f)
    _names(err, str(f), "Permission denied", "permissions")
    assert cli.main(["check", str(f)]) == 2
    assert capsys.readouterr().err.startswith(f"error: {f}: cannot be read")


def test_weak_missing_arrays_and_shapes(tmp_path):
    f = _npz(tmp_path / "m.npz", weak=GOOD["weak"], labels=GOOD["labels"])
    with pytest.raises(ValueError) as err:
        check.check_file(f)
    _names(err, "student", "missing")
    g = _npz(tmp_path / "s.npz", **{**GOOD, "student": np.array([0.1, 0.2])})
    with pytest.raises(ValueError) as err:
        check.check_file(g)
    _names(err, "student", "shape")


@pytest.mark.parametrize(
    "argv, named",
    [
        (["--n-bins", "0"], "n_bins"),
        (["--gamma", "2"], "gamma"),
        (["--gamma", "nan"], "gamma"),
        (["--clip"], "clip"),
    ],
)
def test_weak_check_cli_options(tmp_path, capsys, argv, named):
    f = _npz(tmp_path / "ok.npz", **GOOD)
    assert cli.main(["check", str(f), *argv]) == 2
    out = capsys.readouterr()
    assert out.out == "" and out.err.startswith("error: ") and named in out.err and ";" in out.err


@pytest.mark.parametrize(
    "argv, named", [(["--seeds", "-1"], "--seeds"), (["--seeds", "x"], "--seeds")]
)
def test_weak_run_cli_seeds(capsys, argv, named):
    with pytest.raises(SystemExit) as exc:
        rc = cli.main(["run", "--dataset", "sarcasm", "--weak", "bow", "--preset", "test", *argv])
        raise SystemExit(rc)
    assert exc.value.code == 2
    out = capsys.readouterr()
    assert out.out == "" and "error: " in out.err and named in out.err


@pytest.mark.parametrize(
    "value, named",
    [("tpu", "W2S_DEVICE"), ("cuda:7", "W2S_DEVICE"), ("not a device", "W2S_DEVICE")],
)
def test_weak_env_device(monkeypatch, value, named):
    if value == "cuda:7" and torch.cuda.device_count() > 7:
        pytest.skip("this machine has 8 GPUs")
    monkeypatch.setenv("W2S_DEVICE", value)
    with pytest.raises(ValueError) as err:
        device.default_device()
    _names(err, named, value)


@pytest.mark.parametrize("var", ["W2S_KEEP_WHEELS", "HF_HUB_OFFLINE"])
def test_weak_env_flags(monkeypatch, var):
    monkeypatch.setenv(var, "perhaps")
    with pytest.raises(ValueError) as err:
        data.env_flag(var)
    _names(err, var, "perhaps")
    monkeypatch.setenv(var, "0")
    assert data.env_flag(var) is False


def test_weak_env_hf_endpoint(monkeypatch):
    monkeypatch.setenv("HF_ENDPOINT", "https://example.org:port")
    with pytest.raises(ValueError) as err:
        data.hub_reachable(0.1)
    _names(err, "HF_ENDPOINT")


def test_weak_bad_option_type_is_an_error_line(capsys):
    with pytest.raises(SystemExit) as exc:
        cli.main(["check", "x.npz", "--n-bins", "many"])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert "error: argument --n-bins" in err and "--help" in err


# ============================================================ pipeline faults (subprocesses)
SCRIPT = textwrap.dedent(
    """
    import json, sys
    import numpy as np
    from w2s_utils.engine import data

    def _ds(name, **kw):
        rng = np.random.default_rng(0)
        pos, neg = ["great", "fine", "lovely", "smart"], ["awful", "dull", "poor", "cold"]
        texts, labels = [], []
        for i in range(200):
            y = i % 2
            texts.append(f"the film was {{rng.choice(pos if y else neg)}} number {{i}}")
            labels.append(y if rng.random() > 0.1 else 1 - y)
        return data.TextDataset.from_records("sarcasm", texts, labels)

    data.load_texts = _ds
    from w2s_utils.cli import main
    argv = ["run", "--dataset", "sarcasm", "--weak", "bow", "--preset", "test", "--json"]
    sys.exit(main([*argv, "--seeds", "{n_seeds}"]))
    """
)


def _script(tmp_path: Path, n_seeds: int) -> Path:
    """``w2s run --json`` on the test preset (seeds 0..n-1) over a synthetic dataset."""
    path = tmp_path / f"grid_{n_seeds}.py"
    path.write_text(SCRIPT.format(n_seeds=n_seeds), encoding="utf-8")
    return path


def _env(cache_root: Path) -> dict[str, str]:
    return {
        **os.environ,
        "W2S_CACHE_DIR": str(cache_root),
        "W2S_DEVICE": "cpu",
        "OMP_NUM_THREADS": "1",
        "MKL_NUM_THREADS": "1",
        "TOKENIZERS_PARALLELISM": "false",
    }


def _entries(cache_root: Path) -> set[str]:
    """Final (non-temp) cache entries outside the shared features."""
    return {
        p.relative_to(cache_root).as_posix()
        for p in cache_root.rglob("*.npz")
        if ".tmp-" not in p.name and "features" not in p.parts
    }


def _verify_cache(cache_root: Path) -> dict[str, str]:
    """Every entry verifies; no temp file of a live writer; returns results name -> arrays' sha
    (all arrays but the wall-clock training seconds, which no two runs share)."""
    for path in cache_root.rglob("*.npz"):
        if ".tmp-" not in path.name:
            cache.load_arrays(path)  # raises CacheCorruptError on a half-written entry
    for tmp in (p for p in cache_root.rglob("*") if ".tmp-" in p.name):
        assert not cache.temp_owner_alive(tmp.name), f"temp file of a live writer left: {tmp}"
    out = {}
    for p in sorted((cache_root / "results").glob("*.npz")):
        arrays, _ = cache.load_arrays(p)
        h = hashlib.sha256()
        for name in sorted(set(arrays) - {"train_seconds", "piece_seconds"}):
            h.update(name.encode() + np.ascontiguousarray(arrays[name]).tobytes())
        out[p.name] = h.hexdigest()
    return out


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """Two concurrent runs of one configuration (seed 0) into one fresh cache."""
    tmp = tmp_path_factory.mktemp("concurrent")
    root = tmp / "cache"
    script = _script(tmp, 1)
    procs = [
        subprocess.Popen(
            [sys.executable, str(script)],
            env=_env(root),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    outs = [p.communicate(timeout=400) for p in procs]
    return {"root": root, "codes": [p.returncode for p in procs], "outs": outs, "tmp": tmp}


@pytest.mark.slow
def test_pipeline_concurrent_runs_of_one_configuration(reference, allow_writes):
    assert reference["codes"] == [0, 0], [o[1][-2000:] for o in reference["outs"]]
    for out, _err in reference["outs"]:
        payload = json.loads(out)  # `run --json`: stdout carries only the result
        assert [r["seed"] for r in payload["runs"]] == [0]
    results = _verify_cache(reference["root"])
    assert len(results) == 1, results  # one entry for the one configuration


@pytest.mark.slow
def test_pipeline_kill9_at_random_moments_then_complete(reference, tmp_path, allow_writes):
    """``kill -9`` a small grid (seeds 0, 1) at seeded random moments, then run it to the end:
    every entry verifies and seed 0's result is byte-identical to the uninterrupted one."""
    assert reference["codes"] == [0, 0]
    root = tmp_path / "kill9-cache"  # its own cache, not the sandbox
    # start from the text features of the reference (the cache is shared, as in real use)
    shutil.copytree(reference["root"] / "features", root / "features")
    script = _script(tmp_path, 2)
    rng = np.random.default_rng(15)
    killed_alive = 0
    # each kill: wait (bounded) until the run has written `after` new entries (0: is 3 s old),
    # then a random delay
    draws = zip(rng.integers(0, 2, size=3), rng.uniform(0.0, 2.0, size=3), strict=True)
    for after, delay in draws:
        start = _entries(root)
        t0 = time.time()
        proc = subprocess.Popen(
            [sys.executable, str(script)],
            env=_env(root),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            deadline = time.time() + 120
            while proc.poll() is None and time.time() < deadline:
                wrote = len(_entries(root) - start)
                if (after and wrote >= after) or (not after and time.time() - t0 > 3.0):
                    break
                time.sleep(0.1)
            time.sleep(float(delay))
            if proc.poll() is None:
                proc.send_signal(signal.SIGKILL)
                killed_alive += 1
            proc.wait(timeout=30)
        finally:
            if proc.poll() is None:
                proc.kill()
        _verify_cache(root)  # after each kill: nothing half-written under a final name
    assert killed_alive >= 2, "the runs ended before they could be killed"
    # one entry damaged on disk as well: the resumed run reports it on stderr, never on stdout
    damaged = sorted(_entries(root), key=lambda rel: (not rel.startswith("results/"), rel))[:1]
    for rel in damaged:
        raw = bytearray((root / rel).read_bytes())
        raw[len(raw) // 2 : len(raw) // 2 + 32] = b"\x00" * 32
        (root / rel).write_bytes(bytes(raw))
    done = subprocess.run(
        [sys.executable, str(script)], env=_env(root), capture_output=True, text=True, timeout=400
    )
    assert done.returncode == 0, done.stderr[-2000:]
    payload = json.loads(done.stdout)  # parseable although a cache entry was repaired
    assert sorted(r["seed"] for r in payload["runs"]) == [0, 1]
    if damaged:
        assert "recomputing" in done.stderr and "recomputing" not in done.stdout
    results = _verify_cache(root)
    assert len(results) == 2, results
    ref = _verify_cache(reference["root"])
    ((name, sha),) = ref.items()
    assert results.get(name) == sha, "the resumed seed-0 result differs from the reference"


# ================================== faults leave nothing running, nothing half-built (issue 20)
def _children_map() -> dict[int, list[int]]:
    out: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        out.setdefault(ppid, []).append(int(entry.name))
    return out


def _descendants(pid: int) -> set[int]:
    tree, todo, seen = _children_map(), [pid], set()
    while todo:
        for child in tree.get(todo.pop(), []):
            if child not in seen:
                seen.add(child)
                todo.append(child)
    return seen


def _running(pid: int) -> bool:
    """Alive and not a zombie (a dead child nobody has reaped yet counts as ended)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state not in ("Z", "X")


def _book_cmd(root: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "w2s_utils", "book", "--root", str(root), *extra]


def _leftovers(build: Path) -> list[str]:
    return sorted(
        p.relative_to(build).as_posix()
        for p in build.rglob("*")
        if ".tmp-" in p.name or ".running-" in p.name or p.name.startswith(".html-")
    )


def _kill9_when(proc: subprocess.Popen, ready, what: str, seconds: float = 60.0) -> set[int]:
    """Wait until ``ready()`` (bounded), note the runner's descendants, ``kill -9`` the runner."""
    deadline = time.monotonic() + seconds
    while not ready():
        assert proc.poll() is None, f"the runner ended before {what}: {proc.stderr.read()[-2000:]}"
        assert time.monotonic() < deadline, f"never reached {what}"
        time.sleep(0.1)
    children = _descendants(proc.pid)
    assert children, "the runner had no child process"
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    return children


def _all_gone(pids: set[int], seconds: float = 15.0) -> set[int]:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        alive = {p for p in pids if _running(p)}
        if not alive:
            return set()
        time.sleep(0.1)
    return alive


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads /proc")
def test_fault_kill9_of_the_book_ends_papermill_and_the_kernel(tmp_path):
    """``kill -9`` of ``python -m w2s_utils book`` while a cell runs: papermill and the kernel
    end too (not at the end of the 120 s cell), and the next run sweeps the running copy."""
    flag = tmp_path / "kernel.pid"
    _tiny_book(
        tmp_path,
        ["slow"],
        [f"import os, time\nopen({str(flag)!r}, 'w').write(str(os.getpid()))\ntime.sleep(120)"],
    )
    build = tmp_path / "_build"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen(
        _book_cmd(tmp_path, "--no-html"), env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    try:
        children = _kill9_when(proc, lambda: flag.exists() and flag.read_text(), "the cell")
    finally:
        if proc.poll() is None:
            proc.kill()
    kernel = int(flag.read_text())
    assert kernel in children
    left = _all_gone(children)
    assert not left, f"still running after the runner's kill -9: {left}"
    assert any(".tmp-" in name for name in _leftovers(build)), _leftovers(build)
    # what runs of earlier versions left behind, named by a pid that is dead
    (build / "executed" / "nb" / ".slow.running-999999999.ipynb").write_text("{}")
    (build / ".html-new-999999999").mkdir()
    # the next run (no chapter to execute now: fast) sweeps what the killed one left
    (tmp_path / "_toc.yml").write_text("format: jb-book\nroot: intro\n", encoding="utf-8")
    done = subprocess.run(
        _book_cmd(tmp_path, "--no-html"), env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout == "", "progress went to stdout"
    assert "removed 3 leftover(s)" in done.stderr, done.stderr
    assert _leftovers(build) == []


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads /proc")
def test_fault_kill9_during_the_site_build_ends_jupyter_book(tmp_path):
    """``kill -9`` of the runner while Jupyter Book builds the site aside: Jupyter Book ends with
    it, the old site is untouched, and the next run removes the half-built folder."""
    (tmp_path / "_config.yml").write_text("title: t\n", encoding="utf-8")
    toc = "format: jb-book\nroot: intro\nchapters:\n- file: book/build_info\n"
    (tmp_path / "_toc.yml").write_text(toc, encoding="utf-8")
    (tmp_path / "intro.md").write_text("# Intro\n\nA page.\n", encoding="utf-8")
    info = tmp_path / runner.BUILD_INFO_PAGE
    info.parent.mkdir(parents=True)
    info.write_bytes((ROOT / runner.BUILD_INFO_PAGE).read_bytes())
    mathjax = tmp_path / runner.MATHJAX_FILE
    mathjax.parent.mkdir(parents=True)
    mathjax.write_text("//", encoding="utf-8")
    build = tmp_path / "_build"
    (build / "html").mkdir(parents=True)
    (build / "html" / "index.html").write_text("old site", encoding="utf-8")
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen(
        _book_cmd(tmp_path), env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )

    def building() -> bool:
        return any(p.name.startswith(".html-new") for p in build.iterdir()) and any(
            "jupyter_book" in Path(f"/proc/{c}/cmdline").read_text(errors="replace")
            for c in _descendants(proc.pid)
            if Path(f"/proc/{c}/cmdline").exists()
        )

    try:
        children = _kill9_when(proc, building, "the site build")
    finally:
        if proc.poll() is None:
            proc.kill()
    left = _all_gone(children)
    assert not left, f"jupyter-book still running after the runner's kill -9: {left}"
    assert (build / "html" / "index.html").read_text() == "old site"
    assert any(p.name.startswith(".html-new") for p in build.iterdir())
    done = subprocess.run(
        _book_cmd(tmp_path, "--no-html"), env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert _leftovers(build) == [], "the half-built site survived the next run"


def test_fault_sweep_keeps_a_live_runs_work(tmp_path):
    """The sweep removes only what runs that are gone left: a live run's running copy stays."""
    build = tmp_path / "_build"
    folder = build / "executed" / "nb"
    folder.mkdir(parents=True)
    live = folder / cache.temp_name("a.ipynb", ".ipynb")  # this (live) process's
    live.write_text("{}")
    (folder / f".b.running-{os.getpid()}.ipynb").write_text("{}")  # legacy name, live pid
    dead = folder / live.name.replace(f"-{os.getpid()}-", "-999999999-")
    dead.write_text("{}")
    assert runner.sweep_dead_runs(build) == 1
    assert live.exists() and not dead.exists()
    assert (folder / f".b.running-{os.getpid()}.ipynb").exists()


# ========================== kind: tolerances that scale with the dtype's precision (issue 20)
_SUM_DTYPES = {
    "float16": (torch.float16, np.finfo(np.float16).eps),
    "bfloat16": (torch.bfloat16, float(torch.finfo(torch.bfloat16).eps)),
    "float32": (torch.float32, np.finfo(np.float32).eps),
    "float64": (torch.float64, np.finfo(np.float64).eps),
}


@pytest.mark.parametrize("dtype", list(_SUM_DTYPES))
@pytest.mark.parametrize("k", [2, 7, 128, 1000, 30000])
def test_tolerance_accepts_real_softmax_rejects_rows_off_by_more(dtype, k):
    """Property on random instances: a softmax computed in float64 and stored in ``dtype`` is
    accepted; the same rows scaled off by twice the rule's tolerance are refused. The tolerance
    never exceeds the cap, so no dtype or class count turns the check off."""
    torch_dtype, eps = _SUM_DTYPES[dtype]
    tol = v.sum_tolerance(eps, k)
    assert 0 < tol <= v.SUM_TOLERANCE_CAP
    gen = torch.Generator().manual_seed(k)
    for scale in (0.1, 3.0, 10.0):
        p = torch.softmax(scale * torch.randn(16, k, generator=gen, dtype=torch.float64), -1)
        v.check_probs(p.to(torch_dtype), "p")
        off = (p * (1 - 2 * tol)).to(torch_dtype)
        with pytest.raises(ValueError) as err:
            v.check_probs(off, "student")
        _names(err, "student", "sum to 1", dtype)


def test_tolerance_rule_is_bounded_and_grows_with_precision_and_classes():
    e16, e32 = np.finfo(np.float16).eps, np.finfo(np.float32).eps
    assert v.sum_tolerance(e16, 1000) == v.SUM_TOLERANCE_CAP == 0.01
    assert v.sum_tolerance(np.finfo(np.float64).eps, 2) == v.sum_tolerance(e32, 2)  # floor
    assert v.sum_tolerance(e32, 2) < v.sum_tolerance(e32, 100) < v.sum_tolerance(e16, 100)
    assert v.sum_tolerance(e32, 2) == pytest.approx(64 * e32 * math.sqrt(2))


def test_tolerance_float16_rows_summing_to_005_over_1000_classes_are_refused(tmp_path, capsys):
    rng = np.random.default_rng(0)
    p = (rng.dirichlet(np.ones(1000), size=8) * 0.05).astype(np.float16)  # rows sum to 0.05
    y = rng.integers(0, 1000, size=8)
    for call in (
        lambda: metrics.kl(p, p),  # used to come out -0.15
        lambda: theory.generalization_bound(p, p, labels=y),  # used to renormalise silently
        lambda: check.check_arrays(p, p, labels=y),
    ):
        with pytest.raises(ValueError) as err:
            call()
        _names(err, "sum to 1", "float16", "1000 classes")
    f = _npz(tmp_path / "f16.npz", weak=p, student=p, labels=y)
    assert cli.main(["check", str(f), "--json"]) == 2
    out = capsys.readouterr()
    assert out.out == "" and out.err.startswith("error: weak: rows") and "float16" in out.err


def test_tolerance_bfloat16_with_many_classes_is_still_checked():
    p = torch.softmax(torch.randn(4, 256, dtype=torch.float64), -1)
    v.check_probs(p.to(torch.bfloat16), "p")
    with pytest.raises(ValueError) as err:  # 256 * eps(bf16) = 2: the old rule checked nothing
        v.check_probs((0.9 * p).to(torch.bfloat16), "weak")
    _names(err, "weak", "bfloat16", "256 classes")


def test_tolerance_check_accepts_float16_binary_rows(tmp_path, capsys):
    """float16 [N, 2] rows are off by up to 2.4e-4 (a quarter of float16's epsilon): accepted by
    the library and the CLI, renormalised in float64 before the checks (said in the docs)."""
    rng = np.random.default_rng(1)
    q = rng.uniform(0.05, 0.95, size=64)
    w16 = np.stack([1 - q, q], 1).astype(np.float16)
    s16 = np.stack([1 - q**1.1, q**1.1], 1).astype(np.float16)
    assert np.abs(w16.astype(np.float64).sum(1) - 1).max() > 1e-4
    y = rng.integers(0, 2, size=64)
    res = check.check_arrays(w16, s16, labels=y)
    ref = check.check_arrays(
        w16.astype(np.float64) / w16.astype(np.float64).sum(1, keepdims=True),
        s16.astype(np.float64) / s16.astype(np.float64).sum(1, keepdims=True),
        labels=y,
    )
    assert res["metrics"] == ref["metrics"] and res["w2s"] == ref["w2s"]
    f = _npz(tmp_path / "b16.npz", weak=w16, student=s16, labels=y)
    assert cli.main(["check", str(f), "--json"]) in (0, 1)
    assert json.loads(capsys.readouterr().out)["n"] == 64


def test_tolerance_theory_refuses_rows_off_by_more_than_round_off():
    p = np.array([[0.3, 0.7], [0.6, 0.4]], dtype=np.float64)
    with pytest.raises(ValueError) as err:
        theory.generalization_bound(p * 1.001, p, labels=np.array([1, 0]))
    _names(err, "weak", "sum to 1")
    assert theory.generalization_bound(p * (1 + 1e-7), p, labels=np.array([1, 0])).holds


# ======================== kind: statistics that drop what they cannot compute (issue 20)
def test_stats_bootstrap_nan_on_some_resamples_raises():
    y = np.array([0, 0, 0, 0, 0, 0, 0, 1])

    def recall(batch):  # NaN on every resample without a positive example (about a third)
        pos = (batch == 1).double()
        return pos.sum(-1) / pos.sum(-1) * batch.double().mean(-1)

    with pytest.raises(ValueError) as err:
        metrics.bootstrap_ci(recall, y, n_resamples=200)
    _names(err, "fn", "resamples", "too narrow")
    with pytest.raises(ValueError) as err:  # NaN everywhere: an error, not a NaN interval
        metrics.bootstrap_ci(lambda b: b.double().mean(-1) * math.nan, y, n_resamples=50)
    _names(err, "fn", "the data")


def test_stats_seeds_and_test_statistic_nan_raises():
    per = np.random.default_rng(0).normal(size=(3, 20))
    with pytest.raises(ValueError) as err:
        metrics.seeds_and_test_statistic(lambda a: a.mean() if a.min() > -1.5 else math.nan, per)
    _names(err, "fn", "finite")


# ============================== kind: numeric options of the commands (issue 20)
@pytest.mark.parametrize(
    "argv, named",
    [
        (["--cell-timeout", "0.5"], "--cell-timeout"),  # used to be int(0.5) = 0: no limit
        (["--cell-timeout", "-5"], "--cell-timeout"),
        (["--cell-timeout", "0"], "--cell-timeout"),
        (["--cell-timeout", "2.5"], "whole number"),
        (["--cell-timeout", "nan"], "--cell-timeout"),
        (["--timeout", "nan"], "--timeout"),
        (["--timeout", "inf"], "--timeout"),  # used to be an OverflowError traceback
        (["--timeout", "-1"], "--timeout"),
        (["--timeout", "0"], "--timeout"),
        (["--timeout", "1e12"], "30 days"),
    ],
)
def test_options_book_timeouts(tmp_path, capsys, argv, named):
    _tiny_book(tmp_path, ["a"])
    assert cli.main(["book", "--root", str(tmp_path), "--no-html", *argv]) == 2
    out = capsys.readouterr()
    assert out.out == "" and out.err.startswith("error: ") and named in out.err, out.err
    assert len(out.err.strip().splitlines()) == 1 and ";" in out.err
    assert not (tmp_path / "_build").exists(), "a refused option still ran something"


@pytest.mark.parametrize("value", ["1e9", "2.5", "0", "-3", "1000000000", "nan"])
def test_options_check_n_bins(tmp_path, capsys, value):
    f = _npz(tmp_path / "ok.npz", **GOOD)
    with pytest.raises(SystemExit) as exc:
        raise SystemExit(cli.main(["check", str(f), "--n-bins", value, "--json"]))
    assert exc.value.code == 2
    out = capsys.readouterr()
    assert out.out == "" and "n-bins" in out.err.replace("n_bins", "n-bins"), out.err
    assert "Traceback" not in out.err


def test_options_library_timeouts_and_bins():
    with pytest.raises(ValueError) as err:
        runner.check_timeouts(1800.0, 0.5)
    _names(err, "cell_timeout")
    assert runner.check_timeouts(10, 3.0) == (10.0, 3)
    assert runner.check_timeouts(0.5, None) == (0.5, None)
    with pytest.raises(ValueError) as err:
        check.check_arrays(GOOD["weak"], GOOD["student"], labels=GOOD["labels"], n_bins=10**9)
    _names(err, "n_bins", "<= 100000")


# ========================================= kind: sizes taken from the data (issue 20)
def _declaring(path: Path, shapes: dict[str, tuple[int, ...]], payload: int = 1 << 20) -> Path:
    """An .npz whose members declare ``shapes`` in their headers, with ``payload`` zero bytes of
    data each, deflated: a few KB on disk whatever they declare."""
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as z:
        for name, shape in shapes.items():
            head = io.BytesIO()
            descr = "<i8" if name == "labels" else "<f8"
            np.lib.format.write_array_header_1_0(
                head, {"descr": descr, "fortran_order": False, "shape": shape}
            )
            z.writestr(f"{name}.npy", head.getvalue() + bytes(payload))
    return path


@pytest.mark.parametrize(
    "shape, named",
    [
        ((10**12,), "1e+12 elements"),
        ((600_000_000,), "6e+08 elements"),
        ((20_000, 20_000), "4e+08"),
    ],
)
def test_sizes_declared_shapes_are_bounded_before_loading(tmp_path, shape, named):
    """A small file declaring 10^12 elements, or a zip bomb (600M zeros, 4.8 GB as float64):
    refused from the headers, before any array is read or allocated."""
    f = _declaring(tmp_path / "bomb.npz", {"weak": shape, "student": (2,), "labels": (2,)})
    assert f.stat().st_size < 20_000
    with pytest.raises(ValueError) as err:
        check.check_file(f)
    _names(err, str(f), "'weak'", named, "check_arrays on subsets")


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads /proc")
def test_sizes_zip_bomb_through_the_cli_allocates_nothing(tmp_path):
    f = _declaring(tmp_path / "bomb.npz", {"weak": (600_000_000,), "student": (2,), "labels": (2,)})
    script = (
        "import resource, sys\nfrom w2s_utils.cli import main\nrc = main(sys.argv[1:])\n"
        "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, file=sys.stderr)\n"
        "sys.exit(rc)\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", script, "check", str(f), "--json"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 2 and proc.stdout == "" and lines[0].startswith("error: ")
    assert int(lines[-1]) < 1_500_000, f"peak memory {int(lines[-1]) / 1e6:.1f} GB"  # KiB


def test_sizes_total_bounded_by_this_machines_memory(tmp_path, monkeypatch):
    f = _npz(tmp_path / "ok.npz", **GOOD)
    monkeypatch.setattr(check.files, "_memory_bytes", lambda: 256)  # a machine with 256 bytes
    with pytest.raises(ValueError) as err:
        check.check_file(f)
    _names(err, str(f), "quarter of this machine's")


# ===================================== kind: exceptions the CLI did not map (issue 20)
@pytest.mark.parametrize(
    "exc, named",
    [
        (MemoryError("Unable to allocate 7.45 GiB for an array"), "out of memory"),
        (OverflowError("Python int too large to convert to C long"), "too large"),
        (
            pickle.UnpicklingError("Weights only load failed. Long\nstory"),
            "could not be loaded safely",
        ),
        (OSError(28, "No space left on device", "/data/cache/x.npz"), "free space"),
    ],
)
def test_unmapped_exceptions_are_one_line_exit_2(tmp_path, monkeypatch, capsys, exc, named):
    f = _npz(tmp_path / "ok.npz", **GOOD)

    def boom(*a, **k):
        raise exc

    monkeypatch.setattr(check, "check_file", boom)
    assert cli.main(["check", str(f), "--json"]) == 2
    out = capsys.readouterr()
    assert out.out == "" and out.err.startswith("error: ") and named in out.err
    assert len(out.err.strip().splitlines()) == 1 and ";" in out.err


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore:Detected pickle protocol")
def test_unmapped_pickled_model_folder_is_named_and_never_executed(tmp_path):
    """A model folder shipping a pickle (here one that would run a shell command): refused with
    the folder named, nothing in it executed."""
    from transformers import AutoTokenizer, BertConfig

    folder = tmp_path / "evil"
    BertConfig(hidden_size=16, num_hidden_layers=1, num_attention_heads=2).save_pretrained(folder)
    AutoTokenizer.from_pretrained(models.minilm_path()).save_pretrained(folder)
    marker = tmp_path / "PWNED"

    class Evil:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    (folder / "pytorch_model.bin").write_bytes(pickle.dumps({"w": Evil()}))
    with pytest.raises(ValueError) as err:
        models.get_model(str(folder), n_classes=2)
    _names(err, str(folder), "nothing in it was executed", "safetensors")
    assert not marker.exists()


def test_malformed_manifest_is_corrupt_and_repaired(allow_writes):
    """A manifest whose entries are not dicts used to raise AttributeError from deep inside the
    verification, and the entry was never repaired."""
    key, calls = {"cfg": "manifest"}, []

    def compute():
        calls.append(1)
        return {"a": np.arange(4)}, {"m": 1}

    cache.cached_arrays(key, "hostile", compute)
    path = cache.cache_path(key, "hostile")
    for manifest in ({"arrays": {"a": "x"}, "meta": {}, "cache_format": 1}, [1, 2], {"arrays": 3}):
        raw = np.frombuffer(json.dumps(manifest).encode(), dtype=np.uint8)
        np.savez(path, a=np.arange(4), __manifest__=raw)
        with pytest.raises(cache.CacheCorruptError) as err:
            cache.load_arrays(path)
        _names(err, str(path), "recomputed")
        said: list[str] = []
        assert cache.lookup(key, "hostile", log=said.append) is None
        assert not path.exists() and str(path) in said[0], "the bad entry was not removed"
        arrays, _ = cache.cached_arrays(key, "hostile", compute)  # repaired
        assert arrays["a"].tolist() == [0, 1, 2, 3]
        cache.load_arrays(path)
    assert len(calls) == 4


def test_cache_guarantee_is_stated_not_tamper_proof(allow_writes):
    """What the docs say, pinned: an entry re-saved with recomputed hashes is *accepted* (no keyed
    MAC); the module docstring and the running page say so and never claim tamper-proofing."""
    key = {"cfg": "tamper"}
    cache.cached_arrays(key, "hostile", lambda: ({"acc": np.array([0.6])}, {}))
    path = cache.cache_path(key, "hostile")
    _, meta = cache.load_arrays(path)
    cache.save_arrays(path, {"acc": np.array([1.0])}, meta)  # a deliberate edit
    assert cache.lookup(key, "hostile")["acc"].tolist() == [1.0]
    doc = cache.__doc__
    assert "Not detected: a deliberate edit" in doc and "nothing here is tamper-proof" in doc
    page = " ".join((ROOT / "book" / "running.md").read_text(encoding="utf-8").split())
    doc = " ".join(doc.split())
    assert "deliberate edit" in page and "tamper-proof" in page
    for text in (doc, page):  # every mention is a denial
        for m in re.finditer("tamper-proof", text):
            assert re.search(r"\b(not|nothing)\b", text[max(0, m.start() - 24) : m.start()])


# =================================================== kind: environment (issue 20)
def test_env_relative_cache_dir_is_resolved_once_against_the_cwd(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("W2S_CACHE_DIR", "rel-cache")
    assert cache.cache_dir() == tmp_path / "rel-cache"
    assert os.environ["W2S_CACHE_DIR"] == str(tmp_path / "rel-cache")  # children inherit it
    (tmp_path / "notebooks").mkdir()
    monkeypatch.chdir(tmp_path / "notebooks")  # a kernel's folder: not a second cache
    assert cache.cache_dir() == tmp_path / "rel-cache"
    proc = subprocess.run(
        [sys.executable, "-c", "from w2s_utils.engine import cache; print(cache.cache_dir())"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.stdout.strip() == str(tmp_path / "rel-cache")


def test_env_relative_cache_dir_is_pinned_by_the_cli(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("W2S_CACHE_DIR", "rel")
    cli.main(["book", "--root", str(tmp_path / "nowhere"), "--no-html"])
    capsys.readouterr()
    assert os.environ["W2S_CACHE_DIR"] == str(tmp_path / "rel")


def test_env_relative_xdg_cache_home_is_ignored(tmp_path, monkeypatch):
    monkeypatch.delenv("W2S_CACHE_DIR")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("XDG_CACHE_HOME", "relative-xdg")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert cache.cache_dir() == tmp_path / "home" / ".cache" / "w2s_utils"
    assert not (tmp_path / "relative-xdg").exists()


@pytest.mark.parametrize("home", ["", "relative/home"])
def test_env_empty_or_relative_home_is_refused(tmp_path, monkeypatch, capsys, home):
    monkeypatch.delenv("W2S_CACHE_DIR")
    monkeypatch.setenv("HOME", home)
    with pytest.raises(ValueError) as err:
        cache.cache_dir()
    _names(err, "HOME", "W2S_CACHE_DIR")
    assert cli.main(["data", "info", "sarcasm"]) == 2
    out = capsys.readouterr()
    assert out.out == "" and out.err.startswith("error: HOME=")
    assert not Path("/.cache/w2s_utils").exists() or home != ""


def test_env_full_disk_names_the_folder_and_what_to_do(tmp_path, capsys):
    target = tmp_path / "full" / "results" / "r.npz"  # not the sandbox (it holds an entry)

    def full(f):
        f.write(b"partial")
        raise OSError(28, "No space left on device")

    with pytest.raises(OSError) as err:
        cache.atomic_write(target, full)
    _names(err, str(target.parent), "W2S_CACHE_DIR", "free space")
    assert not list(target.parent.iterdir()), "a full disk left a temp file"
    line = cli.error_line(err.value)
    assert line.startswith("error: no space left") and str(target.parent) in line
    assert len(line.splitlines()) == 1


# ====================================================== kind: book runner (issue 20)
@pytest.mark.parametrize("only", ["", "  "])
def test_runner_empty_only_runs_nothing(tmp_path, capsys, only):
    _tiny_book(tmp_path, ["a", "b"])
    assert cli.main(["book", "--root", str(tmp_path), "--no-html", "--only", only]) == 2
    out = capsys.readouterr()
    assert out.out == "" and "--only" in out.err and "names no chapter" in out.err
    assert not (tmp_path / "_build" / "executed").exists()


def test_runner_failure_reports_go_to_stderr(tmp_path, monkeypatch, capsys):
    _tiny_book(tmp_path, ["a"])

    def failed(root, nb, **kw):
        return runner.ChapterResult(nb, "failed", 0.1, None, "notebook nb/a.ipynb failed\n  x")

    monkeypatch.setattr(runner.build, "execute_notebook", failed)
    assert cli.main(["book", "--root", str(tmp_path), "--no-html"]) == 1
    out = capsys.readouterr()
    assert out.out == "", "a failure report went to stdout"
    assert "notebook nb/a.ipynb failed" in out.err and "stopped: fix the notebook" in out.err


def test_runner_stages_root_level_pages_of_the_toc(tmp_path):
    _tiny_book(tmp_path, ["a"])
    toc = yaml.safe_load((tmp_path / "_toc.yml").read_text())
    toc["chapters"].append({"file": "extra"})
    (tmp_path / "_toc.yml").write_text(yaml.safe_dump(toc), encoding="utf-8")
    (tmp_path / "extra.md").write_text("# Extra\n", encoding="utf-8")
    (tmp_path / "unlisted.md").write_text("# Not in the toc\n", encoding="utf-8")
    staging = runner.stage_sources(tmp_path, tmp_path / "_build", {})
    assert (staging / "intro.md").is_file() and (staging / "extra.md").is_file()
    assert (staging / "nb" / "a.ipynb").is_file()
    assert not (staging / "unlisted.md").exists()
