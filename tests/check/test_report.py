"""``w2s check``: the report of :mod:`w2s_utils.check` checked against independent computations
(numpy, the metrics and theory layers called directly), its labels, legend, vacuity and
assumption flags, thresholds, JSON, the saved-predictions format for K = 2 and K > 2, and clear
failures on malformed files."""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import w2s_utils
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


def _multiclass_arrays(n: int = 200, k: int = 3, seed: int = 1) -> dict[str, np.ndarray]:
    """A K-class run as ``run --save-predictions`` writes it (ids, label names included)."""
    rng = np.random.default_rng(seed)
    f_star = rng.dirichlet(np.ones(k), n)
    labels = np.array([rng.choice(k, p=p) for p in f_star])
    weak = 0.7 * f_star + 0.3 * rng.dirichlet(np.ones(k), n)
    return {
        "weak": weak,
        "student": 0.5 * weak + 0.5 * f_star,
        "ceiling": 0.9 * f_star + 0.1 / k,
        "labels": labels,
        "ids": np.array([f"ex{i:05d}" for i in range(n)]),
        "label_names": np.array([f"class {j}" for j in range(k)]),
    }


def _two(p: np.ndarray) -> np.ndarray:
    return np.stack([1 - p, p], -1) if p.ndim == 1 else p


def _save(tmp_path: Path, name: str = "preds.npz", **arrays) -> str:
    path = tmp_path / name
    np.savez(path, **arrays)
    return str(path)


def _run_main(argv: list[str], capsys) -> tuple[int, str, str]:
    rc = cli.main(argv)
    out = capsys.readouterr()
    return rc, out.out, out.err


def _rows(res: dict, truth: str | None = None) -> dict[str, dict]:
    return {r["name"]: r for r in res["results"] if truth is None or r["truth"] == truth}


def _call(a: dict[str, np.ndarray], **kw) -> dict:
    """check_arrays on a dict of arrays (the truth and extras as keywords)."""
    return check.check_arrays(
        a["weak"], a["student"], a.get("ceiling"),
        **{k: a[k] for k in ("labels", "f_star", "ids", "label_names") if k in a}, **kw,
    )  # fmt: skip


# --------------------------------------------------------------------------- metrics
def test_metrics_and_w2s_summary_against_independent_numpy():
    a = _binary_arrays()
    res = _call(a)
    y = a["labels"]
    for m in ("weak", "student", "ceiling"):
        p = _two(a[m])
        got = res["metrics"][m]
        assert got["accuracy"] == pytest.approx(np.mean(p.argmax(1) == y))
        assert got["cross_entropy"] == pytest.approx(-np.mean(np.log(p[np.arange(len(y)), y])))
        assert got["ece"] == pytest.approx(metrics.ece(a[m], y))
        assert got["smooth_ce"] == pytest.approx(metrics.smooth_ce(a[m], y))
        assert got["auroc"] == pytest.approx(metrics.auroc(a[m], y))
        fs = _two(a["f_star"])
        assert got["err"] == pytest.approx(np.mean(np.sum(fs * np.log(fs / p), 1)))
    w, s = _two(a["weak"]), _two(a["student"])
    lab = res["w2s"]["labels"]
    ce = {m: res["metrics"][m]["cross_entropy"] for m in ("weak", "student")}
    assert lab["gain"] == pytest.approx(ce["weak"] - ce["student"])  # the gain convention
    assert lab["eps"] == pytest.approx(np.mean(np.sum(w * np.log(w / s), 1)))
    assert lab["eps_rev"] == pytest.approx(np.mean(np.sum(s * np.log(s / w), 1)))
    assert lab["interaction"] == pytest.approx(lab["gain"] + lab["eps"])
    assert lab["eps"] == pytest.approx(metrics.misfit(a["weak"], a["student"], "kl_weak_student"))
    accs = [res["metrics"][m]["accuracy"] for m in ("weak", "student", "ceiling")]
    assert lab["pgr"] == pytest.approx(metrics.pgr(*accs))
    assert res["w2s"]["f_star"]["gain"] == pytest.approx(
        res["metrics"]["weak"]["err"] - res["metrics"]["student"]["err"]
    )


@pytest.mark.slow
def test_every_result_row_is_the_theory_layers_result():
    a = _binary_arrays()
    res = _call(a)
    for truth, kw in (("labels", {"labels": a["labels"]}), ("F*", {"f_star": _two(a["f_star"])})):
        rows = _rows(res, truth)
        w, s = _two(a["weak"]), _two(a["student"])  # [N, K]: the squared misfit sums classes
        direct = {
            theory.DecompositionResult.NAME: theory.error_decomposition(w, s, **kw),
            theory.GeneralizationBoundResult.NAME: theory.generalization_bound(w, s, **kw),
            theory.GeneralizationChainResult.NAME: theory.generalization_chain(w, s, **kw),
            theory.LabelFreeIntervalResult.NAME: theory.label_free_interval(w, s, **kw),
            theory.MisfitCentredBoundResult.NAME: theory.misfit_centred_bound(w, s, **kw),
            theory.OscillationBoundResult.NAME: theory.oscillation_bound(w, s, **kw),
            theory.ErrorAwareIntervalResult.NAME: theory.error_aware_interval(w, s, **kw),
            theory.CalibrationBoundResult.NAME: theory.calibration_bound(w, s, **kw),
            theory.KLMisfitGainResult.NAME: theory.kl_misfit_gain(w, s, **kw),
            theory.SquaredMisfitGainResult.NAME: theory.squared_misfit_gain(w, s, **kw),
        }
        for name, d in direct.items():
            row = rows[name]
            assert row["lhs"] == pytest.approx(d.lhs) and row["rhs"] == pytest.approx(d.rhs)
            assert row["holds"] == d.holds and row["result"] == d.NAME
        assert {r["kind"] for n, r in rows.items() if n in direct} == {"always", "conditional"}
    # the error-aware interval's budget: the teacher's test CE, or its Err with F*
    rows = _rows(res)
    budget = [r["budget"] for r in res["results"] if r["result"] == "error-aware interval"]
    assert budget == pytest.approx(
        [res["metrics"]["weak"]["cross_entropy"], res["metrics"]["weak"]["err"]]
    )
    assert rows[theory.ForwardKLIdentityResult.NAME]["truth"] == "F*"
    ece_rows = [r for r in res["results"] if r["result"] == theory.EceBoundResult.NAME]
    assert len(ece_rows) == 3 and all(r["status"] == "holds" for r in ece_rows)
    assert res["skipped"] == []
    for row in res["results"]:
        if row["kind"] == "always":
            assert row["status"] == "holds", row


@pytest.mark.slow
def test_names_say_what_results_state_never_book_numbers(tmp_path, capsys):
    path = _save(tmp_path, **_binary_arrays())
    rc, out, _ = _run_main(["check", path, "--explain"], capsys)
    assert rc == 0
    assert not re.search(r"\b(Theorem|Lemma|Proposition|Corollary)\b", out)
    for name in (
        "error decomposition",
        "two-sided bound (TV/gamma)",
        "label-free interval",
        "error-aware interval",
        "generalization chain",
        "oscillation bound",
        "two-sided calibration bound (smCE)",
        "gain >= reverse-KL misfit",
        "forward-KL identity",
        "gain >= squared misfit (Charikar et al.)",
    ):
        assert f"{name} [" in out, name
    for term in check.LEGEND:  # every term is defined below the report
        assert f"  {term}  " in out, term
    for name in {r["result"] for r in check.check_file(path)["results"]}:
        assert f"  {name}: " in out  # --explain says what it states


# --------------------------------------------------------------------------- flags
def test_a_bound_wider_than_the_trivial_one_is_vacuous():
    """A tiny floor: the two-sided bound E TV/gamma exceeds log(1/gamma) (marked vacuous); a
    large floor: it does not (not vacuous). Checked against the bound computed by hand."""
    rng = np.random.default_rng(3)
    n = 300
    f_star = rng.uniform(0.3, 0.7, n)
    y = (rng.uniform(size=n) < f_star).astype(int)
    weak = rng.uniform(0.3, 0.7, n)
    for student, vacuous in ((np.clip(weak + 0.2, 1e-6, 1 - 1e-6), True), (weak + 0.001, False)):
        student = student.copy()
        if vacuous:
            student[0] = 1e-6  # one tiny probability: gamma = 1e-6
        res = check.check_arrays(weak, student, labels=y)
        row = _rows(res)["two-sided bound (TV/gamma)"]
        w, s = _two(weak), _two(student)
        gamma = min(w.min(), s.min())
        bound = 0.5 * np.abs(w - s).sum(1).mean() / gamma
        assert row["rhs"] == pytest.approx(bound)
        assert row["vacuous"] is bool(bound >= math.log(1 / gamma)) is vacuous
        assert row["status"] == "holds"
        assert ("log(1/gamma)" in (row["vacuous_because"] or "")) is vacuous
        assert (", VACUOUS" in check.format_report(res)) or not vacuous


@pytest.mark.slow
@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 10_000), k=st.integers(2, 4), conc=st.sampled_from([0.3, 1.0, 5.0]))
def test_vacuity_flags_match_their_definition(seed, k, conc):
    """On random instances: a floor-based result is vacuous exactly when its rhs reaches
    log(1/gamma); an interval exactly when it contains [E min r, E max r] (computed here)."""
    rng = np.random.default_rng(seed)
    n = 40
    f_star = rng.dirichlet(np.full(k, conc), n)
    w = theory.mix_with_uniform(rng.dirichlet(np.full(k, conc), n), 1e-3).numpy()
    s = theory.mix_with_uniform(rng.dirichlet(np.full(k, conc), n), 1e-3).numpy()
    y = np.array([rng.choice(k, p=p) for p in f_star])
    res = check.check_arrays(w, s, labels=y, f_star=f_star, smce_time_limit=0)
    r = np.log(s) - np.log(w)
    free = (r.min(1).mean(), r.max(1).mean())
    gamma = min(w.min(), s.min())
    for row in res["results"]:
        assert row["status"] in ("holds", "assumption not met", "within sampling error")
        if row["kind"] == "always":
            assert row["status"] == "holds", row
        name = row["result"]
        if name in ("two-sided bound (TV/gamma)", "generalization chain"):
            assert row["vacuous"] is bool(row["rhs"] >= math.log(1 / gamma))
        elif name in ("misfit-centred bound", "oscillation bound", "error-aware interval"):
            tol = 1e-9  # relative, as theory.DEFAULT_TOL
            contains = bool(
                row["lower"] <= free[0] + tol * max(1.0, abs(free[0]))
                and row["upper"] >= free[1] - tol * max(1.0, abs(free[1]))
            )
            assert row["vacuous"] is contains, (row, free)
        elif name == "label-free interval":
            assert row["vacuous"] is False
            assert (row["lower"], row["upper"]) == pytest.approx(free)


def test_zero_probabilities_mark_the_assumption_not_met_until_clipped(capsys, tmp_path):
    a = _multiclass_arrays(k=4, n=120)
    y = a["labels"]
    a["weak"] = np.eye(4)[y] * 0.5 + np.eye(4)[(y + 1) % 4] * 0.5  # zeros in every row
    res = _call(a, smce_time_limit=0)
    rows = _rows(res, "labels")
    for name in ("two-sided bound (TV/gamma)", "label-free interval", "oscillation bound"):
        row = rows[name]
        assert row["status"] == "assumption not met" and row["holds"] is None
        assert "zero probabilities" in row["why"] and "--clip" in row["why"]
    path = _save(tmp_path, **a)
    rc, out, _ = _run_main(["check", path, "--smce-time-limit", "0"], capsys)
    assert rc == 0 and "assumption not met" in out and "FAILS" not in out
    clipped = _call(a, gamma=0.01, clip=True, smce_time_limit=0)
    row = _rows(clipped, "labels")["two-sided bound (TV/gamma)"]
    assert row["gamma"] == 0.01 and row["status"] == "holds"
    assert any("clipped" in n for n in clipped["notes"])


def test_a_failing_conditional_result_is_an_unmet_assumption_not_a_failure(tmp_path, capsys):
    """A student pushed away from F* by its teacher loses (gain < 0 < eps_rev): the reverse-KL
    result's inequality fails, so its assumption (a projection onto a class containing F*) is
    not met; exit status 0 (nothing that always holds failed)."""
    n = 200
    f_star = np.full(n, 0.8)
    weak = np.full(n, 0.5)
    student = np.full(n, 0.3)
    res = check.check_arrays(weak, student, f_star=f_star, smce_time_limit=0)
    row = _rows(res, "F*")["gain >= reverse-KL misfit"]
    w, s, fs = _two(weak), _two(student), _two(f_star)
    gain = np.mean(np.sum(fs * np.log(s / w), 1))
    eps_rev = np.mean(np.sum(s * np.log(s / w), 1))
    assert gain < 0 < eps_rev and row["rhs"] == pytest.approx(gain)
    assert row["status"] == "assumption not met" and "reverse-KL projection" in row["why"]
    path = _save(tmp_path, weak=weak, student=student, f_star=f_star)
    rc, out, _ = _run_main(["check", path], capsys)
    assert rc == 0 and "assumption not met" in out


def test_with_labels_a_small_shortfall_is_sampling_error():
    """kl_misfit_gain with labels is an estimate: a shortfall within 2 standard errors of the
    test gain (computed here) is reported as sampling error."""
    rng = np.random.default_rng(0)
    n = 50
    weak = rng.uniform(0.3, 0.7, n)
    student = weak + 0.01
    y = rng.integers(0, 2, n)
    row = _rows(check.check_arrays(weak, student, labels=y), "labels")["gain >= reverse-KL misfit"]
    w, s = _two(weak), _two(student)
    d = -np.log(w[np.arange(n), y]) + np.log(s[np.arange(n), y])
    assert row["gain_se"] == pytest.approx(d.std(ddof=1) / np.sqrt(n))
    if not row["holds"]:
        expected = row["lhs"] - row["rhs"] <= 2 * row["gain_se"]
        assert (row["status"] == "within sampling error") is expected


def test_thresholds_are_printed_as_the_code_uses_them(capsys, tmp_path):
    a = _binary_arrays(n=60)
    a["ceiling"] = a["weak"]  # no gap: PGR undefined
    res = _call(a)
    assert res["thresholds"]["pgr_min_gap"] == metrics.PGR_MIN_GAP
    assert res["thresholds"]["tol"] == theory.DEFAULT_TOL
    assert res["w2s"]["labels"]["pgr"] != res["w2s"]["labels"]["pgr"]  # NaN
    note = next(n for n in res["notes"] if n.startswith("pgr [labels]"))
    assert f"PGR_MIN_GAP = {metrics.PGR_MIN_GAP:g}" in note
    text = check.format_report(res)
    assert f"> {metrics.PGR_MIN_GAP:g} (metrics.PGR_MIN_GAP)" in text and "1e-3" not in text
    assert f"{theory.DEFAULT_TOL:g} (theory.DEFAULT_TOL)" in text


# --------------------------------------------------------------------------- files
@pytest.mark.slow
@pytest.mark.parametrize("k", [2, 3])
def test_saved_predictions_round_trip_for_k_classes(tmp_path, capsys, k):
    """The format ``run --save-predictions`` writes (weak, student, ceiling [N, K] float64,
    labels int64, ids, label_names): read whole, names carried into the report, K = 2 and 3."""
    a = _multiclass_arrays(k=k)
    path = _save(tmp_path, **a)
    res = check.check_file(path, smce_time_limit=1)
    assert res["n"] == 200 and res["n_classes"] == k and res["binary"] is (k == 2)
    assert res["label_names"] == [f"class {j}" for j in range(k)] and res["n_ids"] == 200
    assert set(res["arrays"]) == set(check.ARRAYS) - {"f_star"}
    assert not any("ignored" in note for note in res["notes"])
    calib = "two-sided calibration bound (smCE)" if k == 2 else "multi-class calibration bound"
    assert any(r["name"].startswith(calib) for r in res["results"])
    for row in res["results"]:
        if row["kind"] == "always":
            assert row["status"] in ("holds", "undetermined"), row
    rc, out, _ = _run_main(["check", path, "--smce-time-limit", "1"], capsys)
    assert rc == 0 and "class 0, class 1" in out and "ids given" in out
    rc, out, _ = _run_main(["check", path, "--json", "--smce-time-limit", "1"], capsys)
    data = json.loads(out)
    assert data["n_classes"] == k and data["label_names"] == res["label_names"]


def test_the_format_is_the_one_run_writes():
    """Every array ``engine.experiment.save_predictions`` writes is one check reads."""
    from w2s_utils.engine import experiment  # the engine is a test-time dependency only here

    assert set(experiment.PREDICTION_ARRAYS) <= set(check.ARRAYS)


def test_bad_ids_and_label_names_are_refused():
    a = _multiclass_arrays(n=20)
    with pytest.raises(ValueError, match="ids: 1 duplicate"):
        _call({**a, "ids": np.array(["a"] * 2 + [f"b{i}" for i in range(18)])})
    with pytest.raises(ValueError, match="label_names: expected 3 class names"):
        _call({**a, "label_names": np.array(["x", "y"])})
    with pytest.raises(ValueError, match="labels, f_star: pass a truth"):
        check.check_arrays(a["weak"], a["student"])


@pytest.mark.slow
def test_torch_inputs_and_binary_two_column_agree():
    a = _binary_arrays(n=120)
    two = {k: (_two(v) if k != "labels" else v) for k, v in a.items()}
    r1 = _call({k: torch.from_numpy(v) for k, v in a.items()})
    r2 = _call(two)
    assert r1["metrics"] == r2["metrics"]
    assert [r["slack"] for r in r1["results"]] == pytest.approx([r["slack"] for r in r2["results"]])


# --------------------------------------------------------------------------- CLI
def test_cli_json_is_strict_and_carries_the_versions(tmp_path, capsys):
    a = _binary_arrays(n=50)
    a["labels"] = np.zeros(50, dtype=np.int64)
    a["weak"] = np.where(np.arange(50) < 25, 0.0, a["weak"])  # log 0: infinite cross-entropy
    path = _save(tmp_path, **a)
    rc, out, _ = _run_main(["check", path, "--json"], capsys)
    assert rc == 0
    data = json.loads(out)  # strict JSON: NaN/inf became null
    assert "NaN" not in out and "Infinity" not in out
    assert data["schema"] == check.SCHEMA and data["w2s_utils"] == w2s_utils.__version__
    assert data["file"] == path and data["metrics"]["weak"]["auroc"] is None
    assert set(data) >= {
        "schema", "w2s_utils", "n", "n_classes", "truths", "thresholds", "metrics", "w2s",
        "results", "skipped", "notes", "legend",
    }  # fmt: skip
    assert data["legend"] == check.LEGEND


@pytest.mark.slow
def test_exit_code_1_only_when_a_result_that_always_holds_fails(tmp_path, capsys, monkeypatch):
    path = _save(tmp_path, **_binary_arrays(n=60))
    real = check.check_file

    def broken(*args, **kwargs):
        res = real(*args, **kwargs)
        res["results"][1]["status"] = "FAILS"
        return res

    monkeypatch.setattr(check, "check_file", broken)
    rc, out, _ = _run_main(["check", path], capsys)
    assert rc == 1 and "FAILS" in out


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
    add("missing array.*labels \\(or f_star\\)", name="a.npz", weak=good["weak"],
        student=good["student"])  # fmt: skip
    add("student.*shape", name="b.npz", **{**good, "student": good["student"][:10]})
    add("weak.*\\[0, 1\\]", name="c.npz", **{**good, "weak": good["weak"] * 3})
    rows = np.random.default_rng(0).uniform(size=(30, 3))
    add("weak.*sum to 1", name="d.npz", weak=rows, student=rows, labels=np.zeros(30, int))
    add("labels.*0..1", name="e.npz", **{**good, "labels": good["labels"] + 5})
    add("labels.*whole numbers", name="f.npz", **{**good, "labels": good["labels"] + 0.5})
    add("labels.*1-D", name="g.npz", **{**good, "labels": np.zeros(7)})
    add("f_star.*shape", name="h.npz", **{**good, "f_star": good["f_star"][:5]})
    add("weak.*NaN", name="i.npz", **{**good, "weak": np.full(30, np.nan)})
    add("ceiling", name="j.npz", **{**good, "ceiling": -good["ceiling"]})
    add("cannot read|objects", name="k.npz", **{**good, "weak": np.array([{"a": 1}] * 30)})
    add("gamma", ["--gamma", "0.4"], name="l.npz", **good)
    add("n_bins", ["--n-bins", "0"], name="m.npz", **good)
    add("clip", ["--clip"], name="n.npz", **good)
    add("smce_time_limit", ["--smce-time-limit", "-1"], name="o.npz", **good)
    add("ids: expected 30", name="p.npz", **{**good, "ids": np.arange(3)})
    return cases


def test_malformed_files_exit_2_with_a_clear_message(tmp_path, capsys):
    for args, match in _malformed_cases(tmp_path):
        rc, out, err = _run_main(["check", *args], capsys)
        assert rc == 2, (args, out, err)
        assert err.startswith("error: ") and out == "", err
        assert re.search(match, err), (match, err)
