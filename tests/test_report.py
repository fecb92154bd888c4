"""``w2s check FILE.npz``: the library entry point, the CLI (in-process and as a subprocess) and
clear failures on malformed files."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from w2s_utils import check, cli, metrics, theory


def _binary_arrays(n: int = 400, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    f_star = rng.uniform(0.05, 0.95, n)
    labels = (rng.uniform(size=n) < f_star).astype(np.int64)
    weak = np.clip(f_star + rng.normal(0, 0.25, n), 0.02, 0.98)
    student = np.clip(0.5 * weak + 0.5 * f_star + rng.normal(0, 0.05, n), 0.02, 0.98)
    ceiling = np.clip(f_star + rng.normal(0, 0.05, n), 0.01, 0.99)
    return {
        "weak": weak,
        "student": student,
        "labels": labels,
        "ceiling": ceiling,
        "f_star": f_star,
    }


def _multiclass_arrays(n: int = 300, k: int = 4, seed: int = 1) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {
        "weak": rng.dirichlet(np.ones(k), n),
        "student": rng.dirichlet(np.ones(k), n),
        "labels": rng.integers(0, k, n),
    }


def _save(tmp_path: Path, name: str = "preds.npz", **arrays) -> str:
    path = tmp_path / name
    np.savez(path, **arrays)
    return str(path)


def _run_main(argv: list[str], capsys) -> tuple[int, str, str]:
    rc = cli.main(argv)
    out = capsys.readouterr()
    return rc, out.out, out.err


# --------------------------------------------------------------------------- library
def test_check_arrays_binary_full_file_reports_everything():
    a = _binary_arrays()
    res = check.check_arrays(**a)
    assert res["n"] == 400 and res["n_classes"] == 2 and res["binary"]
    assert set(res["metrics"]) == {"weak", "student", "ceiling"}
    weak = res["metrics"]["weak"]
    assert weak["accuracy"] == pytest.approx(metrics.accuracy(a["weak"], a["labels"]))
    assert weak["ece"] == pytest.approx(metrics.ece(a["weak"], a["labels"]))
    assert weak["smooth_ce"] == pytest.approx(metrics.smooth_ce(a["weak"], a["labels"]))
    assert weak["auroc"] == pytest.approx(metrics.auroc(a["weak"], a["labels"]))
    assert weak["err"] == pytest.approx(float(metrics.kl(a["f_star"], a["weak"]).mean()))
    assert set(res["misfit"]) == set(metrics.MISFIT_KINDS)
    assert res["misfit"]["kl_weak_student"] == pytest.approx(
        metrics.misfit(a["student"], a["weak"], "kl_weak_student")
    )
    accs = [res["metrics"][m]["accuracy"] for m in ("weak", "student", "ceiling")]
    assert res["pgr"]["accuracy"] == pytest.approx(metrics.pgr(*accs))
    names = {r["name"] for r in res["theorems"]}
    assert {
        "Lemma 1 [labels]",
        "Theorem 1 [labels]",
        "Theorem 1 alt. [labels]",
        "Label-free interval [labels]",
        "Generalization chain [labels]",
        "Oscillation bound [labels]",
        "Theorem 2 [labels]",
        "Lemma 1 [F*]",
        "Theorem 1 [F*]",
        "Theorem 1 alt. [F*]",
        "Label-free interval [F*]",
        "Generalization chain [F*]",
        "Oscillation bound [F*]",
        "Theorem 2 [F*]",
        "ECE check [weak]",
        "ECE check [student]",
        "ECE check [ceiling]",
        "Theorem 3",
        "Forward-KL identity",
        "Charikar et al.",
    } == names
    assert res["skipped"] == []
    for row in res["theorems"]:
        assert {"lhs", "rhs", "slack", "holds", "relation", "guaranteed"} <= set(row)
        if row["guaranteed"]:
            assert row["holds"], row
    # the rows are the bounds module's results
    t1 = next(r for r in res["theorems"] if r["name"] == "Theorem 1 [F*]")
    direct = theory.generalization_bound(a["weak"], a["student"], f_star=a["f_star"]).as_dict()
    assert t1["slack"] == pytest.approx(direct["slack"]) and t1["gamma"] == direct["gamma"]
    # the sharp forms sit beside Theorem 1 and are the theory module's results
    rows = {r["name"]: r for r in res["theorems"]}
    for src, kw in (("labels", {"labels": a["labels"]}), ("F*", {"f_star": a["f_star"]})):
        sharp = {
            "Label-free interval": theory.label_free_interval(a["weak"], a["student"], **kw),
            "Generalization chain": theory.generalization_chain(a["weak"], a["student"], **kw),
            "Oscillation bound": theory.oscillation_bound(a["weak"], a["student"], **kw),
        }
        for name, direct_res in sharp.items():
            row = rows[f"{name} [{src}]"]
            assert row["guaranteed"] and row["holds"]
            assert row["lhs"] == pytest.approx(direct_res.lhs)
            assert row["rhs"] == pytest.approx(direct_res.rhs)
        t1_src = rows[f"Theorem 1 [{src}]"]
        interval = rows[f"Label-free interval [{src}]"]
        chain = rows[f"Generalization chain [{src}]"]
        assert interval["lower"] <= interval["gain"] <= interval["upper"]
        assert interval["gain"] == pytest.approx(t1_src["gain"])
        assert chain["mean_max_abs_log_ratio"] <= chain["log_pinsker"] <= t1_src["bound_eps"]
        assert chain["bound_tv"] == pytest.approx(t1_src["bound_tv"])
        osc = rows[f"Oscillation bound [{src}]"]
        alt = rows[f"Theorem 1 alt. [{src}]"]
        assert osc["old_width"] == pytest.approx(alt["width"]) and osc["rhs"] <= alt["width"]


def test_check_arrays_multiclass_without_f_star_says_what_was_skipped():
    res = check.check_arrays(**_multiclass_arrays())
    assert not res["binary"] and "pgr" not in res
    assert "smooth_ce" not in res["metrics"]["weak"] and "auroc" not in res["metrics"]["weak"]
    skipped = {s["name"]: s["reason"] for s in res["skipped"]}
    assert "binary" in skipped["Theorem 2"]
    for name in ("Lemma 1 [F*]", "Theorem 1 [F*]", "Theorem 3", "Charikar et al."):
        assert "f_star" in skipped[name]
    for name in ("Label-free interval", "Generalization chain", "Oscillation bound"):
        assert "f_star" in skipped[f"{name} [F*]"]
        assert any(r["name"] == f"{name} [labels]" for r in res["theorems"])
    assert all(r["holds"] for r in res["theorems"])


def test_zero_probabilities_skip_the_floor_results_until_clipped():
    a = _multiclass_arrays()
    a["weak"] = np.eye(4)[a["labels"]] * 0.5 + np.eye(4)[(a["labels"] + 1) % 4] * 0.5
    res = check.check_arrays(**a)
    skipped = {s["name"]: s["reason"] for s in res["skipped"]}
    assert "zero probabilities" in skipped["Theorem 1 [labels]"]
    assert "--clip" in skipped["Theorem 1 [labels]"]
    for name in ("Label-free interval", "Generalization chain", "Oscillation bound"):
        assert "zero probabilities" in skipped[f"{name} [labels]"]
    clipped = check.check_arrays(**a, gamma=0.01, clip=True)
    t1 = next(r for r in clipped["theorems"] if r["name"] == "Theorem 1 [labels]")
    assert t1["gamma"] == 0.01 and t1["holds"]
    chain = next(r for r in clipped["theorems"] if r["name"] == "Generalization chain [labels]")
    assert chain["gamma"] == 0.01 and chain["gamma_source"] == "given" and chain["holds"]
    assert any("clipped" in n for n in clipped["notes"])


def test_gamma_above_the_floor_is_an_error_naming_the_predictor():
    a = _binary_arrays()
    with pytest.raises(ValueError, match="weak.*--clip"):
        check.check_arrays(**a, gamma=0.1)
    with pytest.raises(ValueError, match="clip"):
        check.check_arrays(**a, clip=True)


def test_undefined_auroc_and_pgr_are_reported_not_raised():
    a = _binary_arrays(n=50)
    a["labels"] = np.ones(50, dtype=np.int64)
    a["ceiling"] = a["weak"]
    res = check.check_arrays(**a)
    assert res["metrics"]["weak"]["auroc"] is None
    assert res["pgr"]["accuracy"] is None
    assert any("AUROC" in n for n in res["notes"]) and any("PGR" in n for n in res["notes"])


def test_torch_inputs_and_binary_two_column_agree():
    a = _binary_arrays(n=120)
    two = {k: (np.stack([1 - v, v], -1) if k not in ("labels",) else v) for k, v in a.items()}
    r1 = check.check_arrays(**{k: torch.from_numpy(v) for k, v in a.items()})
    r2 = check.check_arrays(**two)
    assert r1["metrics"] == r2["metrics"]
    assert [r["slack"] for r in r1["theorems"]] == pytest.approx(
        [r["slack"] for r in r2["theorems"]]
    )


# --------------------------------------------------------------------------- CLI
def test_cli_in_process_table_and_json(tmp_path, capsys):
    path = _save(tmp_path, **_binary_arrays())
    rc, out, _ = _run_main(["check", path, "--n-bins", "10"], capsys)
    assert rc == 0
    for text in (
        "Metrics",
        "ECE (10 bins",
        "smooth CE",
        "AUROC",
        "Misfit",
        "PGR",
        "Theorem 1",
        "Label-free interval [labels]",
        "Generalization chain [F*]",
        "Oscillation bound [F*]",
        "Conditional results",
        "slack",
    ):
        assert text in out, text
    rc, out, _ = _run_main(["check", path, "--json"], capsys)
    assert rc == 0
    data = json.loads(out)
    assert data["file"] == path and data["n_bins"] == 15
    expected = check.check_file(path)
    assert data["metrics"] == expected["metrics"]
    assert [r["name"] for r in data["theorems"]] == [r["name"] for r in expected["theorems"]]
    chain = next(r for r in data["theorems"] if r["name"] == "Generalization chain [labels]")
    assert chain["holds"] and chain["abs_gain"] <= chain["mean_max_abs_log_ratio"]


def test_cli_json_has_no_nan(tmp_path, capsys):
    a = _binary_arrays(n=50)
    a["labels"] = np.zeros(50, dtype=np.int64)
    a["weak"] = np.where(np.arange(50) < 25, 0.0, a["weak"])  # log 0: infinite cross-entropy
    path = _save(tmp_path, **a)
    rc, out, _ = _run_main(["check", path, "--json"], capsys)
    assert rc == 0
    data = json.loads(out)  # strict JSON: NaN/inf became null
    assert data["metrics"]["weak"]["auroc"] is None
    assert "NaN" not in out and "Infinity" not in out


def test_cli_subprocess(tmp_path):
    path = _save(tmp_path, **_multiclass_arrays())
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    proc = subprocess.run(
        [sys.executable, "-m", "w2s_utils", "check", path],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )
    assert proc.returncode == 0, proc.stderr
    assert "Theorem 1 [labels]" in proc.stdout and "Skipped" in proc.stdout
    bad = tmp_path / "bad.npz"
    bad.write_text("not an archive")
    proc = subprocess.run(
        [sys.executable, "-m", "w2s_utils", "check", str(bad), "--json"],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )
    assert proc.returncode == 2
    assert "not a readable .npz" in proc.stderr and proc.stdout == ""


def test_exit_code_1_when_a_guaranteed_check_fails(tmp_path, capsys, monkeypatch):
    path = _save(tmp_path, **_binary_arrays(n=60))
    real = check.check_file

    def broken(*args, **kwargs):
        res = real(*args, **kwargs)
        res["theorems"][1]["holds"] = False
        return res

    monkeypatch.setattr(check, "check_file", broken)
    rc, out, _ = _run_main(["check", path], capsys)
    assert rc == 1 and "NO" in out


# --------------------------------------------------------------------------- malformed input
def _malformed_cases(tmp_path: Path) -> list[tuple[list[str], str]]:
    good = _binary_arrays(n=30)
    cases: list[tuple[list[str], str]] = []

    def add(match: str, extra: list[str] | None = None, name: str = "f.npz", **arrays):
        path = _save(tmp_path, name, **arrays)
        cases.append(([path, *(extra or [])], match))

    cases.append(([str(tmp_path / "missing.npz")], "no such file"))
    text = tmp_path / "text.npz"
    text.write_text("hello")
    cases.append(([str(text)], "not a readable .npz"))
    npy = tmp_path / "single.npy"
    np.save(npy, good["weak"])
    cases.append(([str(npy)], "single array"))
    cases.append(([str(tmp_path)], "directory"))
    add("missing array.*labels", name="a.npz", weak=good["weak"], student=good["student"])
    add("student.*shape", name="b.npz", **{**good, "student": good["student"][:10]})
    add("weak.*\\[0, 1\\]", name="c.npz", **{**good, "weak": good["weak"] * 3})
    rows = np.random.default_rng(0).uniform(size=(30, 3))
    add("weak.*sum to 1", name="d.npz", weak=rows, student=rows, labels=np.zeros(30, int))
    add("labels.*0..1", name="e.npz", **{**good, "labels": good["labels"] + 5})
    add("labels.*whole numbers", name="f.npz", **{**good, "labels": good["labels"] + 0.5})
    add("labels.*one label per row|labels.*1-D", name="g.npz", **{**good, "labels": np.zeros(7)})
    add("f_star.*shape", name="h.npz", **{**good, "f_star": good["f_star"][:5]})
    add("weak.*NaN", name="i.npz", **{**good, "weak": np.full(30, np.nan)})
    add("ceiling", name="j.npz", **{**good, "ceiling": -good["ceiling"]})
    add("cannot read|objects", name="k.npz", **{**good, "weak": np.array([{"a": 1}] * 30)})
    add("gamma", ["--gamma", "0.4"], name="l.npz", **good)
    add("n_bins", ["--n-bins", "0"], name="m.npz", **good)
    add("clip", ["--clip"], name="n.npz", **good)
    return cases


def test_malformed_files_exit_2_with_a_clear_message(tmp_path, capsys):
    for args, match in _malformed_cases(tmp_path):
        rc, out, err = _run_main(["check", *args], capsys)
        assert rc == 2, (args, out, err)
        assert err.startswith("error: "), err
        assert re.search(match, err), (match, err)


def test_check_file_raises_the_documented_exceptions(tmp_path):
    with pytest.raises(FileNotFoundError):
        check.check_file(tmp_path / "nope.npz")
    path = _save(tmp_path, weak=np.ones(3) / 2)
    with pytest.raises(ValueError, match="student, labels"):
        check.check_file(path)
