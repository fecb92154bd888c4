"""Smoke tests for w2s_utils.book.plots: each helper draws the artists its data asks for."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

from dataclasses import dataclass  # noqa: E402

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402
from matplotlib.collections import PolyCollection  # noqa: E402
from matplotlib.container import BarContainer, ErrorbarContainer  # noqa: E402

from w2s_utils.book import plots  # noqa: E402


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def _acc_frame() -> pd.DataFrame:
    rows = []
    for ds in ("sarcasm", "rotten_tomatoes"):
        for w, base in (("bow", 0.70), ("L1", 0.72), ("L2", 0.75)):
            for role, gain in (("weak", 0.0), ("student", 0.03), ("ceiling", 0.10)):
                acc = base + gain
                rows.append(
                    dict(dataset=ds, weak=w, role=role, acc=acc, lo=acc - 0.01, hi=acc + 0.02)
                )
    return pd.DataFrame(rows)


def test_set_style_sets_whitegrid():
    plots.set_style()
    assert plt.rcParams["axes.grid"] is True
    assert plt.rcParams["axes.spines.top"] is False


def test_accuracy_by_model_panels_errorbars_and_labels():
    df = _acc_frame()
    fig = plots.accuracy_by_model(df, hue_order=["weak", "student", "ceiling"])
    axes = fig.axes
    assert len(axes) == 2
    assert [ax.get_title() for ax in axes] == ["sarcasm", "rotten_tomatoes"]
    for ax in axes:
        containers = [c for c in ax.containers if isinstance(c, ErrorbarContainer)]
        assert len(containers) == 3  # one per role
        assert [t.get_text() for t in ax.get_xticklabels()] == ["bow", "L1", "L2"]
        # the student dots sit at the student accuracies (dodged x, exact y)
        line = containers[1].lines[0]
        np.testing.assert_allclose(
            line.get_ydata(), df[(df.dataset == ax.get_title()) & (df.role == "student")].acc
        )
        # error bar extents equal the intervals: lower end at lo, upper at hi
        segs = containers[0].lines[2][0].get_segments()
        weak = df[(df.dataset == ax.get_title()) & (df.role == "weak")]
        np.testing.assert_allclose([s[0][1] for s in segs], weak.lo)
        np.testing.assert_allclose([s[1][1] for s in segs], weak.hi)
    assert axes[0].get_ylabel() == "test accuracy"
    legend_texts = [t.get_text() for t in fig.legends[0].get_texts()]
    assert legend_texts == ["weak", "student", "ceiling"]
    # role colours are the book's
    assert matplotlib.colors.to_hex(containers[0].lines[0].get_color()) == plots.ROLE_COLORS["weak"]


def test_accuracy_by_model_without_hue_col_or_interval():
    df = pd.DataFrame({"model": ["a", "b"], "pgr": [0.4, np.nan]})
    fig = plots.accuracy_by_model(
        df, x="model", value="pgr", lo=None, hi=None, hue=None, col=None, ylabel="PGR"
    )
    (ax,) = fig.axes
    assert len([c for c in ax.containers if isinstance(c, ErrorbarContainer)]) == 1
    assert ax.get_ylabel() == "PGR"
    assert fig.legends == []


def test_accuracy_by_model_rejects_missing_column():
    with pytest.raises(ValueError, match="missing column"):
        plots.accuracy_by_model(_acc_frame(), value="accuracy")
    with pytest.raises(ValueError, match="empty"):
        plots.accuracy_by_model(_acc_frame().iloc[:0])


def _decomp_frame() -> pd.DataFrame:
    df = pd.DataFrame(
        dict(
            dataset=["sarcasm"] * 3 + ["rt"] * 3,
            weak=["bow", "L1", "L2"] * 2,
            eps=[0.05, 0.01, 0.02, 0.06, 0.02, 0.03],
            interaction=[-0.12, -0.01, 0.01, -0.08, 0.00, -0.05],
        )
    )
    df["ce_diff"] = df.eps + df.interaction
    return df


def test_decomposition_bars_stack_signed_parts_and_mark_total():
    df = _decomp_frame()
    fig = plots.decomposition_bars(df, part_labels={"eps": "objective ε"})
    assert len(fig.axes) == 2
    ax = fig.axes[0]
    bars = [c for c in ax.containers if isinstance(c, BarContainer)]
    assert len(bars) == 2 and all(len(b) == 3 for b in bars)
    sub = df[df.dataset == "sarcasm"]
    eps_bars, int_bars = bars
    np.testing.assert_allclose([r.get_height() for r in eps_bars], sub.eps)
    np.testing.assert_allclose([r.get_y() for r in eps_bars], 0.0)
    # negative interaction hangs from zero; positive interaction stacks on top of eps
    int_y = [r.get_y() for r in int_bars]
    assert int_y[0] == pytest.approx(0.0) and int_bars[0].get_height() == pytest.approx(-0.12)
    assert int_y[2] == pytest.approx(0.02)
    totals = [c for c in ax.containers if isinstance(c, ErrorbarContainer)]
    assert len(totals) == 1
    np.testing.assert_allclose(totals[0].lines[0].get_ydata(), sub.ce_diff)
    texts = [t.get_text() for t in fig.legends[0].get_texts()]
    assert texts == ["objective ε", "interaction", "total"]


def test_decomposition_bars_total_interval_and_errors():
    df = _decomp_frame().assign(lo=lambda d: d.ce_diff - 0.01, hi=lambda d: d.ce_diff + 0.01)
    with pytest.raises(ValueError, match="one row per"):
        plots.decomposition_bars(df, col=None)
    one = df[df.dataset == "rt"]
    fig = plots.decomposition_bars(one, total_lo="lo", total_hi="hi", col=None, order=["L2", "bow"])
    (ax,) = fig.axes
    assert [t.get_text() for t in ax.get_xticklabels()] == ["L2", "bow"]
    total = [c for c in ax.containers if isinstance(c, ErrorbarContainer)][0]
    segs = total.lines[2][0].get_segments()
    np.testing.assert_allclose(
        [s[0][1] for s in segs], one.set_index("weak").loc[["L2", "bow"], "lo"]
    )
    with pytest.raises(ValueError, match="parts"):
        plots.decomposition_bars(df, parts=())
    with pytest.raises(ValueError, match="missing column"):
        plots.decomposition_bars(df, parts=("eps", "nope"))


@dataclass
class _Rel:
    confidence: np.ndarray
    accuracy: np.ndarray
    count: np.ndarray


def test_reliability_diagram_curves_and_empty_bins():
    rel = _Rel(
        np.array([0.1, 0.5, np.nan, 0.9]),
        np.array([0.2, 0.5, np.nan, 0.8]),
        np.array([5, 10, 0, 5]),
    )
    ax = plots.reliability_diagram(
        {"weak": rel, "student": (np.array([0.2, 0.8]), np.array([0.25, 0.7]))}
    )
    lines = ax.get_lines()
    assert len(lines) == 3  # diagonal + two curves
    np.testing.assert_allclose(lines[1].get_xdata(), [0.1, 0.5, 0.9])  # empty bin dropped
    assert len(ax.collections) == 2
    sizes = ax.collections[0].get_sizes()
    assert sizes[1] > sizes[0]  # bigger bin, bigger marker
    assert ax.get_xlim() == (0.0, 1.0)
    assert [t.get_text() for t in ax.get_legend().get_texts()][1:] == ["weak", "student"]


def test_reliability_diagram_accepts_metrics_reliability():
    import torch

    from w2s_utils import metrics

    probs = torch.tensor([0.1, 0.15, 0.6, 0.65, 0.9, 0.95])
    labels = torch.tensor([0, 0, 1, 0, 1, 1])
    rel = metrics.reliability(probs, labels, n_bins=5)
    ax = plots.reliability_diagram({"weak": rel})
    line = ax.get_lines()[1]
    kept = rel.count.numpy() > 0
    np.testing.assert_allclose(line.get_xdata(), rel.confidence.numpy()[kept])
    np.testing.assert_allclose(line.get_ydata(), rel.accuracy.numpy()[kept])


def test_reliability_diagram_single_curve_and_bad_input():
    ax = plots.reliability_diagram({"confidence": [0.3, 0.7], "accuracy": [0.4, 0.6]})
    assert len(ax.get_lines()) == 2
    with pytest.raises(ValueError, match="confidence"):
        plots.reliability_diagram({"m": object()})
    with pytest.raises(ValueError, match="bins"):
        plots.reliability_diagram({"m": ([0.1, 0.2], [0.3])})


def test_band_plot_lines_and_bands_per_hue():
    df = pd.DataFrame(
        dict(
            n=[100, 300, 1000] * 2,
            model=["a"] * 3 + ["b"] * 3,
            acc=[0.6, 0.7, 0.8, 0.55, 0.6, 0.7],
        )
    )
    df["lo"], df["hi"] = df.acc - 0.05, df.acc + 0.05
    ax = plots.band_plot(df, x="n", y="acc", lo="lo", hi="hi", hue="model", logx=True)
    assert len(ax.get_lines()) == 2
    assert len([c for c in ax.collections if isinstance(c, PolyCollection)]) == 2
    assert ax.get_xscale() == "log"
    assert ax.get_ylabel() == "acc"
    np.testing.assert_allclose(ax.get_lines()[1].get_ydata(), [0.55, 0.6, 0.7])


def test_band_plot_without_band_and_bad_args():
    df = pd.DataFrame(dict(x=[3, 1, 2], y=[0.3, 0.1, 0.2]))
    ax = plots.band_plot(df, x="x", y="y", ylabel="value")
    np.testing.assert_allclose(ax.get_lines()[0].get_xdata(), [1, 2, 3])  # sorted by x
    assert not [c for c in ax.collections if isinstance(c, PolyCollection)]
    with pytest.raises(ValueError, match="lo/hi"):
        plots.band_plot(df, x="x", y="y", lo="y")


def test_bound_band_draws_one_bar_per_row_and_points_per_hue():
    df = pd.DataFrame(
        dict(
            pair=["a", "b", "c"],
            data=["s", "s", "r"],
            diff=[-0.05, 0.01, -0.2],
            lo=[-0.07, 0.0, -0.25],
            hi=[-0.03, 0.02, -0.15],
            lower=[-1.0, -0.5, -3.0],
            upper=[1.0, 0.5, 3.0],
        )
    )
    ax = plots.bound_band(
        df,
        x="pair",
        value="diff",
        lower="lower",
        upper="upper",
        lo="lo",
        hi="hi",
        hue="data",
        symlog=0.1,
    )
    bars = [c for c in ax.containers if isinstance(c, BarContainer)]
    assert len(bars) == 1 and len(bars[0]) == 3
    np.testing.assert_allclose([r.get_y() for r in bars[0]], [-1.0, -0.5, -3.0])
    np.testing.assert_allclose([r.get_height() for r in bars[0]], [2.0, 1.0, 6.0])
    assert len([c for c in ax.containers if isinstance(c, ErrorbarContainer)]) == 2
    assert ax.get_yscale() == "symlog"
    lo_lim, hi_lim = ax.get_ylim()
    assert lo_lim < -3.0 and hi_lim > 3.0  # every band is fully visible
    assert [t.get_text() for t in ax.get_xticklabels()] == ["a", "b", "c"]
    with pytest.raises(ValueError, match="lo/hi"):
        plots.bound_band(df, x="pair", value="diff", lower="lower", upper="upper", lo="lo")
    with pytest.raises(ValueError, match="symlog"):
        plots.bound_band(df, x="pair", value="diff", lower="lower", upper="upper", symlog=0)
    with pytest.raises(ValueError, match="missing"):
        plots.bound_band(df, x="pair", value="nope", lower="lower", upper="upper")
    plt.close("all")


def test_tightness_scatter_log_drops_nonpositive_and_draws_diagonal():
    df = pd.DataFrame(dict(bound=[1.0, 2.0, 4.0, 3.0], gap=[0.1, 0.0, 1.0, 0.5], k=[2, 2, 3, 3]))
    ax = plots.tightness_scatter(df, x="bound", y="gap", hue="k")
    assert len(ax.collections) == 2  # one scatter per hue level
    assert sum(len(c.get_offsets()) for c in ax.collections) == 3  # gap = 0 dropped
    diag = [ln for ln in ax.get_lines() if ln.get_label() == "y = x"]
    assert len(diag) == 1
    np.testing.assert_allclose(diag[0].get_xdata(), diag[0].get_ydata())
    assert ax.get_xscale() == "log" and ax.get_yscale() == "log"
    assert any("1 rows" in t.get_text() for t in ax.get_legend().get_texts())
    lin = plots.tightness_scatter(df, x="bound", y="gap", log=False, diagonal=False)
    assert sum(len(c.get_offsets()) for c in lin.collections) == 4 and not lin.get_lines()
    with pytest.raises(ValueError, match="log=False"):
        plots.tightness_scatter(df.assign(gap=0.0), x="bound", y="gap")
    plt.close("all")


def test_long_category_labels_wrap_and_panels_widen():
    df = pd.DataFrame(
        dict(weak=["bow", "minilm-l1", "tiny-transformer", "x4", "x5"], eps=0.1, interaction=-0.2)
    ).assign(ce_diff=lambda d: d.eps + d.interaction)
    fig = plots.decomposition_bars(df, col=None)
    labels = [t.get_text() for t in fig.axes[0].get_xticklabels()]
    assert labels[2] == "tiny-\ntransformer" and labels[0] == "bow"
    assert fig.get_figwidth() >= 1.3 * 5
