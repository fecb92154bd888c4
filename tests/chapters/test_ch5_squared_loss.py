"""Chapter 5 (misfit-gain under squared loss): the book helpers (summaries, tables, figures,
glue). The theory and projections are tested in tests/theory/test_squared_loss.py, the engine in
tests/engine/test_regression.py."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from w2s_utils.book import ch5_squared_loss as ch
from w2s_utils.metrics import bootstrap_ci, seeds_and_test_interval
from w2s_utils.theory import squared_loss as S
from w2s_utils.theory import sweep

# --------------------------------------------------------------------------- the theorem


# --------------------------------------------------------------------------- projections


# --------------------------------------------------------------------------- engine


# --------------------------------------------------------------------------- finite samples


# --------------------------------------------------------------------------- real text


# --------------------------------------------------------------------------- book helpers
def test_reference_extrapolation():
    r = ch.reference_extrapolation(10.0, {"steps": 100, "seconds": 2.0, "full_steps": 1000})
    assert r["seconds_per_step"] == pytest.approx(0.02) and r["full_seconds"] == pytest.approx(20)
    assert r["ratio"] == pytest.approx(2.0)
    with pytest.raises(ValueError, match="our_seconds"):
        ch.reference_extrapolation(0.0)


def _table_text(t) -> str:
    return t.frame.to_string() + " ".join(t.frame.columns)


def test_trial_summary_from_sweeps():
    trials = {k: [S.squared_trial(k, s) for s in range(30)] for k in S.SQUARED_TRIAL_KINDS}
    plain = {
        k: sweep(
            S.squared_misfit_gain,
            (dict(weak=t.weak, student=t.student, f_star=t.f_star) for t in ts),
            30,
        )
        for k, ts in trials.items()
    }
    agn = {
        k: sweep(
            S.squared_misfit_gain_agnostic,
            (
                dict(
                    weak=t.weak,
                    student=t.student,
                    f_star=t.f_star,
                    best=S.project_onto_class(t.features, t.f_star, t.cls).predictions,
                )
                for t in ts
            ),
            30,
        )
        for k, ts in trials.items()
    }
    tab = ch.trial_table(plain, agn).set_index("kind")
    for k, ts in trials.items():  # the sweep's verdicts are squared_trial's own
        assert tab.loc[k, "plain_fails"] == sum(not t.result.holds for t in ts)
    assert tab.loc["realizable", "plain_fails"] == 0
    assert tab.loc["nonrealizable", "agnostic_holds"] == 30
    # where F* is in the class (approx = 0) the agnostic check is the plain one
    assert tab.loc["nonconvex", "agnostic_holds"] == tab.loc["nonconvex", "plain_holds"]
    view = _table_text(ch.trial_view(ch.trial_table(plain, agn)))
    assert "nan" not in view.lower() and "-0.0" not in view and "_" not in view
    glue = ch.trial_glue(ch.trial_table(plain, agn))
    assert glue["tr_fail_realizable"] == 0 and glue["tr_n_nonconvex"] == 30


def _synthetic_fake() -> pd.DataFrame:
    return pd.DataFrame(
        dict(
            strong=["learned"] * 3 + ["true"] * 3,
            task=[0, 1, 2] * 2,
            gain=[2.0, 1.0, 0.5, 1.0, 1.0, 1.0],
            misfit=[1.0, 2.0, 1.0, 1.0, 1.0, 1.0],
            var_target=[4.0] * 6,
            err_weak=[0.8] * 6,
            err_ceiling=[0.4, 0.4, 0.4, 0.0, 0.0, 0.0],
            train_slack=[0.0, -0.4, 0.0, 0.0, 0.0, 0.0],
        )
    )


def test_synthetic_summary_table_and_figure():
    import matplotlib

    matplotlib.use("Agg")
    tab = _synthetic_fake()
    ci = {
        s: bootstrap_ci(
            lambda r: r.quantile(0.5, dim=-1), (d.gain / d.misfit).to_numpy(), n_resamples=200
        )
        for s, d in tab.groupby("strong")
    }
    s = ch.synthetic_summary(tab, ci, 0.9)
    assert s.loc["learned", "ratio"] == pytest.approx(0.5) and s.loc["true", "ratio"] == 1.0
    assert s.loc["learned", "above"] == pytest.approx(1 / 3)
    assert s.loc["learned", "train_rel_max"] == pytest.approx(0.1)
    assert (s.predicted == 0.9).all()
    bad = {"learned": ci["true"], "true": ci["true"]}
    with pytest.raises(ValueError, match="ratio_ci"):
        ch.synthetic_summary(tab, bad, 0.9)
    text = _table_text(ch.synthetic_table(s))
    assert "nan" not in text.lower() and "_" not in text
    fig = ch.synthetic_figure(tab, 0.9)
    ax = fig.axes[0]
    assert [ln.get_ydata()[0] for ln in ax.lines] == [1.0, 0.9]


def test_text_summary_tables_and_glue():
    gap = np.array([[1.0, -1.0, 3.0], [1.0, 1.0, 1.0]])
    rows = []
    for task in ("gold", "planted-gold"):
        for seed in (0, 1):
            rows.append(
                dict(
                    dataset="d",
                    task=task,
                    weak="bow",
                    seed=seed,
                    misfit=1.0,
                    gain=2.0,
                    train_slack=np.nan if task == "gold" else -1e-17,
                    estimation=0.25,
                    cross=-0.00001,
                    projection_term=0.0,
                )
            )
    txt = pd.DataFrame(rows)
    iv = {
        ("d", t, "bow"): {
            "gap": seeds_and_test_interval(gap),
            "corrected": seeds_and_test_interval(gap + 0.5),
        }
        for t in ("gold", "planted-gold")
    }
    out = ch.text_summary(txt, iv)
    assert out.gap[0] == pytest.approx(1.0) and out.gap_lo[0] <= 1.0 <= out.gap_hi[0]
    assert out.corrected[0] == pytest.approx(1.5) and out.predicted[0] == pytest.approx(-0.5)
    planted, gold = ch.text_tables(out)
    for t in (planted, gold):
        text = _table_text(t)
        assert "nan" not in text.lower() and "-0.0000" not in text and "−0.0000" not in text
        assert "_" not in " ".join(t.frame.columns)
    assert "In-sample |gain − misfit|" in planted.frame.columns
    assert "In-sample |gain − misfit|" not in gold.frame.columns  # no NaN column for gold
    with pytest.raises(ValueError, match="intervals"):
        ch.text_summary(txt, {})
    g = ch.text_glue(out, ["d"], [0, 1])
    assert g["tx_cells_planted"] == 1 and g["tx_cells_gold"] == 1 and g["tx_seeds"] == 2


def test_gain_misfit_figure_draws_the_diagonal_and_the_prediction():
    import matplotlib

    matplotlib.use("Agg")
    fig = ch.gain_misfit_figure(
        [("p", [("a", [0.1, 0.2], [0.2, 0.1])]), ("q", [("b", [1], [1])])], predicted=[0.5, None]
    )
    ax = fig.axes[0]
    assert len(ax.collections) == 1 and ax.lines[0].get_linestyle() == "--"
    x, y = ax.lines[0].get_data()
    np.testing.assert_allclose(x, y)
    x2, y2 = ax.lines[1].get_data()
    np.testing.assert_allclose(np.asarray(y2), 0.5 * np.asarray(x2))
    assert len(fig.axes[1].lines) == 1 and fig.legends  # one legend, below the panels
    with pytest.raises(ValueError, match="predicted"):
        ch.gain_misfit_figure([("p", [("a", [0.1], [0.1])])], predicted=[0.5, 0.5])
