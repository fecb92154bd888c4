"""Chapter 1's book module (w2s_utils.book.ch1_pipeline) on fake runs and small sweeps: every
glued number against an independent computation, the tables and figures against the paired
table they present. The paired tables themselves are tested with the analysis layer."""

from __future__ import annotations

import math
from types import SimpleNamespace

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
from scipy import stats

from w2s_utils import analysis, metrics, theory
from w2s_utils.book import ch1_pipeline as ch
from w2s_utils.engine.presets import get_preset
from w2s_utils.theory import instances


def fake_run(seed: int, weak_name: str = "bow", dataset: str = "sarcasm", n: int = 300):
    """A run whose teacher, student and ceiling are right with probability ~0.6 / 0.7 / 0.9;
    every seed holds the same test examples and labels (as the engine's runs do)."""
    y = np.random.default_rng(99).integers(0, 2, n)
    rng = np.random.default_rng(seed)

    def probs(skill):  # noqa: E306 - a tiny predictor that is right with probability ~skill
        p1 = np.clip(np.where(y == 1, skill, 1 - skill) + rng.normal(0, 0.15, n), 0.02, 0.98)
        return np.stack([1 - p1, p1], 1)

    cfg = SimpleNamespace(dataset=dataset, weak=weak_name, seed=seed)
    ids = [f"t{i}" for i in range(n)]
    return SimpleNamespace(
        config=cfg, labels=y, ids=ids, weak=probs(0.6), student=probs(0.7), ceiling=probs(0.9)
    )


@pytest.fixture
def grid():
    """Fake runs for 2 data sets x 2 teachers x 3 seeds (test's preset ladder is one teacher,
    so the setup is a namespace with two)."""
    runs = [
        fake_run(s + 10 * i, w, d)
        for i, (d, w) in enumerate(
            [("sarcasm", "bow"), ("sarcasm", "minilm-l1"), ("rt", "bow"), ("rt", "minilm-l1")]
        )
        for s in range(3)
    ]
    for r in runs:  # seeds 10 * i + s: give each run its cell's seed number s
        r.config.seed = r.config.seed % 10
    setup = SimpleNamespace(ladder_weaks=("bow", "minilm-l1"), strong="minilm-l6", name="fake")
    return runs, setup


# ----------------------------------------------------------- the lemma's random-instance check


def _sweep(n: int) -> pd.DataFrame:
    triples = (instances.dirichlet_triple(i, n_inputs=16) for i in range(n))
    draws = ({"weak": w, "student": s, "f_star": f} for f, w, s in triples)
    return theory.sweep(theory.error_decomposition, draws, n)


def test_cached_frame_round_trips_a_sweep_and_reads_it_back(sandbox):
    calls = []

    def compute():
        calls.append(1)
        return _sweep(12)

    key = {"check": "test", "n": 12}
    deps = [theory.error_decomposition]
    first = ch.cached_frame(key, compute, depends_on=deps)
    second = ch.cached_frame(key, compute, depends_on=deps)
    assert len(calls) == 1  # the second call read the disk
    assert not first.attrs["cached"] and second.attrs["cached"]
    assert first.attrs["entry"] == second.attrs["entry"]
    assert second.attrs["seconds"] == pytest.approx(first.attrs["seconds"])
    assert first.attrs["seconds"] > 0
    # a warm build counts the stored compute time once, a cold one not at all
    entry = f"{second.attrs['kind']}/{second.attrs['entry']}"
    assert ch.frame_pieces(first, second) == [(entry, second.attrs["seconds"])]
    fresh = _sweep(12)
    pd.testing.assert_frame_equal(first, fresh)
    pd.testing.assert_frame_equal(second, fresh)
    # another function in depends_on is another entry (the check runs again)
    ch.cached_frame(key, compute, depends_on=[theory.error_decomposition, theory.sweep])
    assert len(calls) == 2
    texts = ch.cached_frame({"x": 1}, lambda: pd.DataFrame({"a": ["u", "v"]}))  # texts round-trip
    assert texts.a.tolist() == ["u", "v"]
    assert ch.cached_frame({"x": 1}, lambda: pd.DataFrame({"a": ["w"]})).a.tolist() == ["u", "v"]
    with pytest.raises(ValueError, match="non-empty mapping"):
        ch.cached_frame({}, compute)


def test_lemma_check_glue_reads_the_sweep():
    check = _sweep(40)
    glued = ch.lemma_check_glue(check)
    assert glued["lemma_n"] == 40 and check.holds.all()
    assert glued["lemma_max_residual"] < 1e-12
    # independent: the student is better where Err(weak) > Err(student)
    better = np.mean(
        [e_w > e_s for e_w, e_s in zip(check.err_weak, check.err_student, strict=True)]
    )
    assert glued["lemma_student_better"] == pytest.approx(better)
    np.testing.assert_allclose(check.gain, check.interaction - check.eps, atol=1e-12)
    with pytest.raises(ValueError, match="lacks the columns"):
        ch.lemma_check_glue(check.drop(columns="holds"))


# ------------------------------------------------------------------------- the worked example


def test_example_table_shows_the_log_ratio_and_the_mistakes():
    table = ch.example_table([0.9, 0.1], [0.6, 0.4], [0.8, 0.2])
    frame = table.frame.set_index("Class j")
    assert frame.loc["class 1", "Log-ratio r = log(F_sw/F_w)"] == f"+{math.log(0.8 / 0.6):.4f}"
    assert frame.loc["class 2", "Log-ratio r = log(F_sw/F_w)"] == f"\u2212{math.log(2):.4f}"
    assert frame.loc["class 2", "Teacher's mistake F* − F_w"] == "\u22120.3"
    with pytest.raises(ValueError, match="same K"):
        ch.example_table([1.0], [1.0], [1.0])


def test_exercise_numbers_against_the_issue_and_closed_forms():
    g = ch.exercise_glue()

    def gain(s):  # exercise 3: KL(F*||F_w) - KL(F*||(s, 1-s)), written from the definition of KL
        f, w, q = np.array([0.9, 0.1]), np.array([0.6, 0.4]), np.array([s, 1 - s])
        return float(np.sum(f * np.log(f / w)) - np.sum(f * np.log(f / q)))

    assert g["ex3_upper"] == pytest.approx(0.9958, abs=5e-5)  # issue 21: not "about 0.98"
    assert abs(gain(g["ex3_upper"])) < 1e-10
    assert gain(g["ex3_upper"] - 1e-4) > 0 > gain(g["ex3_upper"] + 1e-4)
    assert gain(0.6) == pytest.approx(0.0, abs=1e-15)  # the lower root is the teacher
    assert g["ex3_gain_098"] == pytest.approx(gain(0.98)) and g["ex3_gain_098"] == pytest.approx(
        0.142, abs=5e-4
    )
    # at s = 0.9 the student is the truth, so the gain is the teacher's whole error
    assert g["ex3_gain_max"] == pytest.approx(0.9 * math.log(1.5) + 0.1 * math.log(0.25))
    assert g["ex3_threshold"] == pytest.approx(-0.5514, abs=5e-5)
    # exercise 5: a factor 6.4 (p = 0.9), 13 (p = 0.95), not ten
    assert g["ex5_ratio_09"] == pytest.approx(6.39, abs=5e-3)
    assert g["ex5_ratio_095"] == pytest.approx(13.13, abs=5e-3)
    assert g["ex5_ratio_09"] == pytest.approx(g["ex5_loss_051"] / g["ex5_loss_09"])


# ------------------------------------------------------------------------------- the real runs


def test_one_run_glue_agrees_with_the_library():
    run = fake_run(0)
    onehot = np.eye(2)[run.labels]
    r = np.log(run.student) - np.log(run.weak)
    by_hand = {
        "gain": (onehot * r).sum(1).mean(),
        "eps": -(run.weak * r).sum(1).mean(),
        "interaction": ((onehot - run.weak) * r).sum(1).mean(),
    }
    per_ex = metrics.per_example(run.weak, run.student, run.ceiling, labels=run.labels)
    lemma = theory.error_decomposition(run.weak, run.student, labels=run.labels)
    glued = ch.one_run_glue(run, by_hand, per_ex, lemma)
    assert glued["run_max_diff"] < 1e-12
    # the gain is the difference of the two test cross-entropies
    ce = [
        -np.log(p[np.arange(len(run.labels)), run.labels]).mean() for p in (run.weak, run.student)
    ]
    assert glued["run_gain"] == pytest.approx(ce[0] - ce[1])
    assert glued["run_gain"] == pytest.approx(glued["run_iota"] - glued["run_eps"])
    with pytest.raises(ValueError, match="missing"):
        ch.one_run_glue(run, {"gain": 0.0}, per_ex, lemma)


def test_setup_glue_and_roles_table():
    setup = get_preset("test")
    runs = [SimpleNamespace(cached=True), SimpleNamespace(cached=False)]
    glued = ch.setup_glue(setup, [0, 1, 2], runs, 3.5)
    assert glued["t_quantile"] == pytest.approx(4.302653, abs=1e-6)
    assert glued["n_runs"] == 2 and glued["n_runs_cached"] == 1
    assert glued["n_test"] == setup.sizes.test
    frame = ch.roles_table(setup).frame
    assert list(frame["Model"]) == [*setup.ladder_weaks, setup.strong]
    with pytest.raises(ValueError, match="empty"):
        ch.setup_glue(setup, [0], [], 1.0)


def test_interval_table_nests_the_seed_only_interval(grid):
    runs, _ = grid
    paired = analysis.paired_table(runs)
    # the book's interval adds a test-set term to the seed-only one, so it contains it
    assert (paired.gain_lo <= paired.gain_seed_lo + 1e-15).all()
    assert (paired.gain_hi >= paired.gain_seed_hi - 1e-15).all()
    frame = ch.interval_table(paired).frame
    assert list(frame["Teacher on data set"]) == [
        f"{w} on {d}" for d, w in zip(paired.dataset, paired.weak, strict=True)
    ]
    for row, (_, p) in zip(frame.itertuples(index=False), paired.iterrows(), strict=True):
        expected = (
            "gain > 0"
            if p.gain_lo > 0
            else "gain < 0"
            if p.gain_hi < 0
            else ("not distinguishable")
        )
        assert row[4] == expected


def test_tables_print_what_the_paired_table_holds(grid):
    runs, _ = grid
    paired = analysis.paired_table(runs)
    paired.loc[0, ["pgr", "pgr_lo", "pgr_hi"]] = np.nan  # one cell without a gap to recover
    acc = ch.accuracy_table(paired, "fake").frame
    assert acc.loc[0, "PGR"] == "—" and "nan" not in acc.to_string().lower()
    lo, hi = paired.acc_gain_lo[1], paired.acc_gain_hi[1]
    assert f"{abs(lo):.3f}" in acc.loc[1, "Accuracy gain"]
    assert f"{abs(hi):.3f}" in acc.loc[1, "Accuracy gain"]
    lemma = ch.lemma_table(paired).frame
    assert lemma.columns.tolist() == [
        "Data set",
        "Teacher",
        "Gain (nats)",
        "Interaction ι",
        "Misfit ε",
    ]
    with pytest.raises(ValueError, match="lacks the columns"):
        ch.lemma_table(paired.drop(columns="eps_lo"))


@pytest.mark.slow
def test_decomposition_figure_stacks_iota_and_minus_eps(grid):
    runs, setup = grid
    paired = analysis.paired_table(runs)
    fig = ch.decomposition_figure(paired, setup, ["sarcasm", "rt"])
    try:
        ax = fig.axes[0]
        bars = [c for c in ax.containers if hasattr(c, "patches")]
        heights = [[b.get_height() for b in c.patches] for c in bars[:2]]
        sub = paired[paired.dataset == "sarcasm"].set_index("weak").loc[list(setup.ladder_weaks)]
        np.testing.assert_allclose(heights[0], sub.interaction)
        np.testing.assert_allclose(heights[1], -sub.eps)
        # the diamond (the gain) sits at the sum of the two bars: gain = iota - eps
        np.testing.assert_allclose(sub.gain, sub.interaction - sub.eps, atol=1e-12)
    finally:
        plt.close(fig)


@pytest.mark.slow
def test_findings_glue_verdicts_follow_the_intervals(grid):
    runs, setup = grid
    paired, per_run = analysis.paired_table(runs), analysis.per_run_table(runs)
    found = ch.findings_glue(paired, per_run, setup)
    assert found["n_comparisons"] == len(paired) == 4
    cells = zip(paired.dataset, paired.weak, paired.gain_lo, strict=True)
    up = [f"{w} on {d}" for d, w, lo in cells if lo > 0]
    assert found["gain_up"] == (", ".join(up) or "none")
    assert found["n_gain_up"] == len(up)
    assert found["n_gain_undecided"] == int(((paired.gain_lo <= 0) & (paired.gain_hi >= 0)).sum())
    assert found["corr_eps_gain"] == pytest.approx(stats.pearsonr(per_run.eps, per_run.gain)[0])
    assert found["n_runs_iota_positive"] == int((per_run.interaction > 0).sum())
    assert found["eps_min"] == pytest.approx(paired.eps.min())
    assert "bow" in found["findings"] and "minilm-l1" in found["findings"]
    assert found["headline"].startswith("The student's gain")
    assert f"in {len(up)} of 4" in found["headline"]
    assert "PGR is defined everywhere" in found["room_text"]


@pytest.mark.slow
def test_seeds_exercise_glue_against_the_t_quantiles(grid):
    runs, _ = grid
    paired = analysis.paired_table(runs)
    fewer = analysis.paired_table([r for r in runs if r.config.seed < 2])
    glued = ch.seeds_exercise_glue(paired, fewer)
    # t_{0.975, 1} / sqrt(2) over t_{0.975, 2} / sqrt(3): 12.706 / 1.414 / (4.303 / 1.732)
    assert glued["exs_seed_factor"] == pytest.approx(
        12.7062 / math.sqrt(2) / (4.3027 / math.sqrt(3)), rel=1e-4
    )
    width = (fewer.gain_hi - fewer.gain_lo) / (paired.gain_hi - paired.gain_lo)
    assert glued["exs_ratio_max"] == pytest.approx(width.max())
    assert 0 < glued["exs_seed_share_min"] <= glued["exs_seed_share_max"] <= 1
    assert ch.seeds_exercise_glue(paired, paired)["exs_ratio_median"] == pytest.approx(1.0)
    with pytest.raises(ValueError, match="more than"):
        ch.seeds_exercise_glue(fewer, paired)
