"""Plotting helpers shared by the chapters: one function per kind of figure.

Every helper takes a tidy :class:`pandas.DataFrame` (one row per plotted quantity, column names
given as arguments) or plain arrays, draws with matplotlib in the book's style and returns the
:class:`~matplotlib.figure.Figure` (facetted helpers) or :class:`~matplotlib.axes.Axes` (helpers
that draw into an ``ax`` you may pass). Nothing here computes a metric: intervals and values come in
precomputed (see :mod:`w2s_utils.metrics`), so the figures show exactly the numbers in the tables.

- :func:`set_style` -- the book's seaborn theme (call once per notebook);
- :func:`accuracy_by_model` -- a value with its interval per model and role (weak / student /
  ceiling), dodged dots with error bars, one panel per dataset;
- :func:`decomposition_bars` -- signed stacked bars of additive terms with their total marked
  (Lemma 1: objective + interaction = change in error);
- :func:`reliability_diagram` -- binned confidence against observed frequency, one curve per model;
- :func:`band_plot` -- lines with shaded bands (intervals over seeds, or both sides of a bound).
"""

from __future__ import annotations

import textwrap
from collections.abc import Mapping, Sequence
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from w2s_utils.book.tables import require_columns

__all__ = [
    "accuracy_by_model",
    "band_plot",
    "decomposition_bars",
    "reliability_diagram",
    "set_style",
]

#: Colours for the roles of the weak-to-strong pipeline, reused by every chapter.
ROLE_COLORS: dict[str, str] = {
    "weak": "#d95f02",
    "student": "#1b9e77",
    "ceiling": "#7570b3",
    "strong": "#7570b3",
}
_MARKERS = ("o", "s", "D", "^", "v", "P", "X", "*")


def set_style(context: str = "notebook", font_scale: float = 1.05) -> None:
    """Apply the book's figure style (seaborn ``whitegrid``, readable fonts, tight layout)."""
    sns.set_theme(style="whitegrid", context=context, font_scale=font_scale)
    plt.rcParams.update(
        {
            "figure.dpi": 110,
            "savefig.dpi": 150,
            "figure.autolayout": False,
            "axes.spines.top": False,
            "axes.spines.right": False,
            "legend.frameon": False,
        }
    )


def _levels(series: pd.Series, order: Sequence[Any] | None) -> list[Any]:
    present = list(pd.unique(series))
    if order is None:
        return present
    return [v for v in order if v in set(present)]


def _facets(
    df: pd.DataFrame, col: str | None, col_order: Sequence[Any] | None, width: float, height: float
) -> tuple[Figure, list[tuple[Any, pd.DataFrame, Axes]]]:
    cols = [None] if col is None else _levels(df[col], col_order)
    fig, axes = plt.subplots(
        1, len(cols), figsize=(width * len(cols), height), sharey=True, squeeze=False
    )
    panels = []
    for level, ax in zip(cols, axes[0], strict=True):
        sub = df if level is None else df[df[col] == level]
        if level is not None:
            ax.set_title(str(level))
        panels.append((level, sub, ax))
    return fig, panels


def _tick_labels(levels: Sequence[Any], width: int = 10) -> list[str]:
    """Category labels wrapped at hyphens/spaces so neighbouring ticks do not overlap."""
    return [
        "\n".join(textwrap.wrap(str(v), width, break_long_words=False)) or str(v) for v in levels
    ]


def _panel_width(width: float, n_x: int) -> float:
    """Panel width: at least ``width``, and about 1.3 inch per category."""
    return max(width, 1.3 * n_x + 0.6)


def _role_color(level: Any, i: int) -> str:
    if isinstance(level, str) and level.lower() in ROLE_COLORS:
        return ROLE_COLORS[level.lower()]
    return sns.color_palette("colorblind")[i % 10]


def accuracy_by_model(
    df: pd.DataFrame,
    *,
    x: str = "weak",
    value: str = "acc",
    lo: str | None = "lo",
    hi: str | None = "hi",
    hue: str | None = "role",
    col: str | None = "dataset",
    order: Sequence[Any] | None = None,
    hue_order: Sequence[Any] | None = None,
    col_order: Sequence[Any] | None = None,
    ylabel: str = "test accuracy",
    xlabel: str | None = None,
    panel_size: tuple[float, float] = (4.2, 3.6),
    connect: bool = True,
) -> Figure:
    """Dots with interval error bars: ``value`` per ``x``, dodged by ``hue``, a panel per ``col``.

    ``df`` is long-form: one row per (col, x, hue) with the point in ``value`` and the interval in
    ``lo``/``hi`` (``None`` for no error bars). With ``connect`` a thin grey line joins the hue
    levels of each ``x`` (weak → student → ceiling reads as a path). Hue levels named ``weak``,
    ``student``, ``ceiling``/``strong`` get the book's role colours. Returns the figure; each panel
    holds one errorbar container per hue level.
    """
    require_columns(df, [x, value, lo, hi, hue, col], "df", nonempty=True)
    xs_all = _levels(df[x], order)
    hues = [None] if hue is None else _levels(df[hue], hue_order)
    fig, panels = _facets(
        df, col, col_order, _panel_width(panel_size[0], len(xs_all)), panel_size[1]
    )
    width = 0.7
    step = width / max(len(hues), 1)
    offsets = {h: (i - (len(hues) - 1) / 2) * step for i, h in enumerate(hues)}
    for _, sub, ax in panels:
        pos = {v: i for i, v in enumerate(xs_all)}
        for i, h in enumerate(hues):
            rows = sub if h is None else sub[sub[hue] == h]
            rows = rows[rows[x].isin(pos)]
            px = np.array([pos[v] + offsets[h] for v in rows[x]], dtype=float)
            py = rows[value].to_numpy(dtype=float)
            yerr = None
            if lo is not None and hi is not None:
                yerr = np.vstack(
                    [
                        py - rows[lo].to_numpy(dtype=float),
                        rows[hi].to_numpy(dtype=float) - py,
                    ]
                )
                yerr = np.where(np.isfinite(yerr), np.clip(yerr, 0, None), 0.0)
            ax.errorbar(
                px,
                py,
                yerr=yerr,
                fmt=_MARKERS[i % len(_MARKERS)],
                color=_role_color(h, i),
                markersize=7,
                capsize=3,
                elinewidth=1.4,
                label=None if h is None else str(h),
                zorder=3,
            )
        if connect and hue is not None and len(hues) > 1:
            for v in xs_all:
                rows = sub[sub[x] == v]
                pts = [
                    (pos[v] + offsets[h], float(rows[rows[hue] == h][value].iloc[0]))
                    for h in hues
                    if (rows[hue] == h).any()
                ]
                if len(pts) > 1:
                    ax.plot(*zip(*pts, strict=True), color="0.7", lw=1, zorder=1)
        ax.set_xticks(range(len(xs_all)))
        ax.set_xticklabels(_tick_labels(xs_all))
        ax.set_xlim(-0.6, len(xs_all) - 0.4)
        ax.set_xlabel(xlabel if xlabel is not None else x)
    panels[0][2].set_ylabel(ylabel)
    if hue is not None:
        handles, labels = panels[0][2].get_legend_handles_labels()
        fig.legend(
            handles,
            labels,
            loc="upper center",
            ncol=len(labels),
            bbox_to_anchor=(0.5, 1.02),
            title=None,
        )
        fig.tight_layout(rect=(0, 0, 1, 0.92))
    else:
        fig.tight_layout()
    return fig


def decomposition_bars(
    df: pd.DataFrame,
    *,
    x: str = "weak",
    parts: Sequence[str] = ("eps", "interaction"),
    total: str | None = "ce_diff",
    total_lo: str | None = None,
    total_hi: str | None = None,
    col: str | None = "dataset",
    order: Sequence[Any] | None = None,
    col_order: Sequence[Any] | None = None,
    part_labels: Mapping[str, str] | None = None,
    total_label: str = "total",
    ylabel: str = "nats",
    xlabel: str | None = None,
    panel_size: tuple[float, float] = (4.2, 3.6),
) -> Figure:
    """Signed stacked bars: the ``parts`` of an additive decomposition per ``x``, ``total`` marked.

    Positive parts stack upwards from zero and negative parts downwards, so a bar's net height is
    the sum of its parts; the ``total`` column (if given) is drawn as a black diamond, optionally
    with an interval from ``total_lo``/``total_hi``, so the reader sees the parts add up. Exactly
    one row of ``df`` per (col, x). Returns the figure; each panel holds one bar container per part.
    """
    parts = list(parts)
    if not parts:
        raise ValueError("parts: pass at least one column name to stack")
    require_columns(df, [x, col, total, total_lo, total_hi, *parts], "df", nonempty=True)
    labels = dict(part_labels or {})
    xs_all = _levels(df[x], order)
    colors = sns.color_palette("Set2", len(parts))
    fig, panels = _facets(
        df, col, col_order, _panel_width(panel_size[0], len(xs_all)), panel_size[1]
    )
    for level, sub, ax in panels:
        if sub[x].duplicated().any():
            where = "" if level is None else f" in panel {col}={level!r}"
            raise ValueError(
                f"df: several rows share the same {x!r} value{where}; decomposition_bars needs one "
                "row per (col, x): aggregate first (e.g. mean over seeds) or pass col="
            )
        sub = sub.set_index(x).reindex(xs_all)
        pos_base = np.zeros(len(xs_all))
        neg_base = np.zeros(len(xs_all))
        for j, part in enumerate(parts):
            vals = sub[part].to_numpy(dtype=float)
            vals = np.where(np.isfinite(vals), vals, 0.0)
            base = np.where(vals >= 0, pos_base, neg_base)
            ax.bar(
                np.arange(len(xs_all)),
                vals,
                bottom=base,
                width=0.6,
                color=colors[j],
                edgecolor="white",
                label=labels.get(part, part),
                zorder=2,
            )
            pos_base = pos_base + np.clip(vals, 0, None)
            neg_base = neg_base + np.clip(vals, None, 0)
        if total is not None:
            tv = sub[total].to_numpy(dtype=float)
            yerr = None
            if total_lo is not None and total_hi is not None:
                yerr = np.vstack(
                    [tv - sub[total_lo].to_numpy(dtype=float), sub[total_hi].to_numpy(float) - tv]
                )
                yerr = np.where(np.isfinite(yerr), np.clip(yerr, 0, None), 0.0)
            ax.errorbar(
                np.arange(len(xs_all)),
                tv,
                yerr=yerr,
                fmt="D",
                color="black",
                markersize=7,
                capsize=3,
                label=total_label,
                zorder=4,
            )
        ax.axhline(0.0, color="0.3", lw=0.8, zorder=1)
        ax.set_xlim(-0.6, len(xs_all) - 0.4)
        ax.set_xticks(range(len(xs_all)))
        ax.set_xticklabels(_tick_labels(xs_all))
        ax.set_xlabel(xlabel if xlabel is not None else x)
    panels[0][2].set_ylabel(ylabel)
    handles, leg_labels = panels[0][2].get_legend_handles_labels()
    fig.legend(
        handles, leg_labels, loc="upper center", ncol=len(leg_labels), bbox_to_anchor=(0.5, 1.02)
    )
    fig.tight_layout(rect=(0, 0, 1, 0.92))
    return fig


_CONF_NAMES = ("confidence", "mean_confidence", "bin_confidence", "mean_pred", "prob_pred", "conf")
_ACC_NAMES = ("accuracy", "bin_accuracy", "frequency", "frac_pos", "prob_true", "acc")
_COUNT_NAMES = ("count", "counts", "bin_count", "bin_counts", "n")


def _field(obj: Any, names: Sequence[str]) -> Any:
    for n in names:
        if isinstance(obj, Mapping) and n in obj:
            return obj[n]
        if not isinstance(obj, Mapping) and hasattr(obj, n):
            return getattr(obj, n)
    return None


def _as_numpy(values: Any) -> np.ndarray:
    if hasattr(values, "detach"):  # torch tensor on any device
        values = values.detach().cpu().numpy()
    return np.asarray(values, dtype=float).ravel()


def _curve_arrays(curve: Any, label: str) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    if isinstance(curve, tuple | list) and len(curve) in (2, 3):
        conf, acc = curve[0], curve[1]
        count = curve[2] if len(curve) == 3 else None
    else:
        conf, acc, count = (
            _field(curve, names) for names in (_CONF_NAMES, _ACC_NAMES, _COUNT_NAMES)
        )
        if conf is None or acc is None:
            raise ValueError(
                f"curves[{label!r}]: need per-bin confidence and accuracy; pass a "
                "metrics.Reliability, a mapping/object with fields like 'confidence' and "
                "'accuracy', or a tuple (confidence, accuracy[, count])"
            )
    conf_a, acc_a = _as_numpy(conf), _as_numpy(acc)
    if conf_a.shape != acc_a.shape:
        raise ValueError(
            f"curves[{label!r}]: confidence has {conf_a.size} bins but accuracy {acc_a.size}; "
            "pass one value per bin for both"
        )
    count_a = None if count is None else _as_numpy(count)
    if count_a is not None and count_a.shape != conf_a.shape:
        raise ValueError(f"curves[{label!r}]: count must have one entry per bin")
    keep = np.isfinite(conf_a) & np.isfinite(acc_a)
    if count_a is not None:
        keep &= count_a > 0
    return conf_a[keep], acc_a[keep], None if count_a is None else count_a[keep]


def reliability_diagram(
    curves: Mapping[str, Any] | Any,
    *,
    ax: Axes | None = None,
    size_by_count: bool = True,
    xlabel: str = "mean predicted probability (bin)",
    ylabel: str = "observed frequency (bin)",
) -> Axes:
    """Reliability diagram: per-bin confidence against observed frequency, with the diagonal.

    ``curves`` maps a label to one model's bins -- a :class:`w2s_utils.metrics.Reliability`, any
    object or mapping with confidence/accuracy(/count) fields, or a tuple ``(confidence, accuracy[,
    count])`` -- or is a single such curve. Empty bins (count 0 or NaN) are skipped; with
    ``size_by_count`` marker areas grow with the bin's share of examples. Returns the axes (one line
    per curve plus the diagonal).
    """
    if ax is None:
        _, ax = plt.subplots(figsize=(4.4, 4.2))
    if not isinstance(curves, Mapping) or any(k in curves for k in _CONF_NAMES):
        curves = {"model": curves}
    if not curves:
        raise ValueError("curves: is empty; pass at least one reliability curve")
    ax.plot([0, 1], [0, 1], ls="--", color="0.5", lw=1, label="perfect calibration", zorder=1)
    for i, (label, curve) in enumerate(curves.items()):
        conf, acc, count = _curve_arrays(curve, str(label))
        color = _role_color(label, i)
        ax.plot(conf, acc, "-", color=color, lw=1.5, label=str(label), zorder=2)
        sizes = 30.0
        if size_by_count and count is not None and count.sum() > 0:
            sizes = 15.0 + 250.0 * count / count.sum()
        ax.scatter(conf, acc, s=sizes, color=color, edgecolor="white", zorder=3)
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_aspect("equal")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.legend(loc="upper left", fontsize="small")
    return ax


def band_plot(
    df: pd.DataFrame,
    *,
    x: str,
    y: str,
    lo: str | None = None,
    hi: str | None = None,
    hue: str | None = None,
    hue_order: Sequence[Any] | None = None,
    ax: Axes | None = None,
    xlabel: str | None = None,
    ylabel: str | None = None,
    logx: bool = False,
    markers: bool = True,
    alpha: float = 0.2,
) -> Axes:
    """Lines of ``y`` against ``x`` with a shaded band between ``lo`` and ``hi``, one per ``hue``.

    Use it for a metric with its across-seed interval, or for a measured quantity between the two
    sides of a bound (``lo`` = lower side, ``hi`` = upper side). Rows are sorted by ``x``. Returns
    the axes: one line per hue level and, when ``lo``/``hi`` are given, one band per hue level.
    """
    require_columns(df, [x, y, lo, hi, hue], "df", nonempty=True)
    if (lo is None) != (hi is None):
        raise ValueError("lo/hi: give both column names for a band, or neither")
    if ax is None:
        _, ax = plt.subplots(figsize=(5.2, 3.6))
    hues = [None] if hue is None else _levels(df[hue], hue_order)
    for i, h in enumerate(hues):
        rows = (df if h is None else df[df[hue] == h]).sort_values(x)
        color = _role_color(h, i)
        xv = rows[x].to_numpy(dtype=float)
        ax.plot(
            xv,
            rows[y].to_numpy(dtype=float),
            marker=_MARKERS[i % len(_MARKERS)] if markers else None,
            color=color,
            lw=1.8,
            label=y if h is None else str(h),
        )
        if lo is not None and hi is not None:
            ax.fill_between(
                xv,
                rows[lo].to_numpy(dtype=float),
                rows[hi].to_numpy(dtype=float),
                color=color,
                alpha=alpha,
                lw=0,
            )
    if logx:
        ax.set_xscale("log")
    ax.set_xlabel(xlabel if xlabel is not None else x)
    ax.set_ylabel(ylabel if ylabel is not None else y)
    if hue is not None:
        ax.legend(fontsize="small")
    return ax


# --------------------------------------------------------------------------- chapter 2 (bounds)
# bound_band: a measured value (with its interval) inside a two-sided bound, per category;
# tightness_scatter: one quantity against another (e.g. against its bound) with y = x.
__all__ += ["bound_band", "tightness_scatter"]


def bound_band(
    df: pd.DataFrame,
    *,
    x: str,
    value: str,
    lower: str,
    upper: str,
    lo: str | None = None,
    hi: str | None = None,
    hue: str | None = None,
    hue_order: Sequence[Any] | None = None,
    order: Sequence[Any] | None = None,
    ax: Axes | None = None,
    xlabel: str | None = None,
    ylabel: str | None = None,
    symlog: float | None = None,
    band_label: str = "two-sided bound",
) -> Axes:
    """A measured value inside the two sides of a bound, one column per row of ``df``.

    For every row (one category ``x``, e.g. a teacher/dataset pair) a grey bar spans
    ``[lower, upper]`` and a dot marks ``value`` with error bars ``[lo, hi]`` (e.g. an interval
    across seeds), coloured by ``hue``. ``symlog=t`` uses a symmetric-log y axis, linear within
    ``[-t, t]``: bounds are often orders of magnitude wider than what they bound. Returns the axes.
    """
    require_columns(df, [x, value, lower, upper, lo, hi, hue], "df", nonempty=True)
    if (lo is None) != (hi is None):
        raise ValueError("lo/hi: give both column names for error bars, or neither")
    if symlog is not None and not symlog > 0:
        raise ValueError(f"symlog: must be a positive linear threshold or None, got {symlog!r}")
    if ax is None:
        _, ax = plt.subplots(figsize=(max(4.0, 0.6 * len(df) + 1.5), 3.8))
    cats = _levels(df[x], order)
    pos = {c: i for i, c in enumerate(cats)}
    rows = df[df[x].isin(pos)]
    xs = rows[x].map(pos).to_numpy(dtype=float)
    low = rows[lower].to_numpy(dtype=float)
    up = rows[upper].to_numpy(dtype=float)
    ax.bar(
        xs,
        up - low,
        bottom=low,
        width=0.55,
        color="0.82",
        edgecolor="0.55",
        lw=0.8,
        label=band_label,
        zorder=1,
    )
    ax.axhline(0.0, color="0.3", lw=0.8, zorder=2)
    hues = [None] if hue is None else _levels(rows[hue], hue_order)
    for i, h in enumerate(hues):
        sub = rows if h is None else rows[rows[hue] == h]
        xv = sub[x].map(pos).to_numpy(dtype=float)
        yv = sub[value].to_numpy(dtype=float)
        yerr = None
        if lo is not None and hi is not None:
            yerr = np.vstack(
                [yv - sub[lo].to_numpy(dtype=float), sub[hi].to_numpy(dtype=float) - yv]
            ).clip(min=0.0)
        ax.errorbar(
            xv,
            yv,
            yerr=yerr,
            fmt=_MARKERS[i % len(_MARKERS)],
            ms=6,
            capsize=3,
            color=_role_color(h, i),
            label=value if h is None else str(h),
            zorder=3,
        )
    extra = [rows[c].to_numpy(dtype=float) for c in (value, lo, hi) if c is not None]
    vals = np.concatenate([low, up, *extra])
    vals = vals[np.isfinite(vals)]
    if symlog is not None:
        ax.set_yscale("symlog", linthresh=float(symlog))
    if vals.size:
        a, b = min(float(vals.min()), 0.0), max(float(vals.max()), 0.0)
        if symlog is not None:  # pad by a factor (a fixed share of a decade on the log part)
            a = a * 1.6 if a < -symlog else a - 0.3 * symlog
            b = b * 1.6 if b > symlog else b + 0.3 * symlog
        else:
            pad = 0.06 * (b - a) if b > a else 1.0
            a, b = a - pad, b + pad
        ax.set_ylim(a, b)
    ax.set_xticks(range(len(cats)))
    ax.set_xticklabels(
        [str(c) for c in cats],
        rotation=30 if len(cats) > 4 else 0,
        ha="right" if len(cats) > 4 else "center",
    )
    ax.set_xlim(-0.6, len(cats) - 0.4)
    ax.set_xlabel(xlabel if xlabel is not None else x)
    ax.set_ylabel(ylabel if ylabel is not None else value)
    ax.legend(fontsize="small", framealpha=0.9)
    return ax


def tightness_scatter(
    df: pd.DataFrame,
    *,
    x: str,
    y: str,
    hue: str | None = None,
    hue_order: Sequence[Any] | None = None,
    ax: Axes | None = None,
    xlabel: str | None = None,
    ylabel: str | None = None,
    log: bool = True,
    diagonal: bool = True,
    alpha: float = 0.5,
) -> Axes:
    """Scatter ``y`` against ``x`` with the line ``y = x`` (log-log by default), one colour per hue.

    Use it for a measured quantity against its bound (points below the line: the bound holds) or
    for two bounds against each other (below the line: ``y`` is the tighter one). With ``log``
    non-positive values cannot be drawn and are dropped (their count is given in the legend).
    """
    require_columns(df, [x, y, hue], "df", nonempty=True)
    if ax is None:
        _, ax = plt.subplots(figsize=(4.6, 4.2))
    data = df
    dropped = 0
    if log:
        keep = (df[x] > 0) & (df[y] > 0)
        dropped = int((~keep).sum())
        data = df[keep]
        if data.empty:
            raise ValueError(f"{x}/{y}: no row has both values > 0; pass log=False")
    hues = [None] if hue is None else _levels(data[hue], hue_order)
    for i, h in enumerate(hues):
        sub = data if h is None else data[data[hue] == h]
        ax.scatter(
            sub[x].to_numpy(dtype=float),
            sub[y].to_numpy(dtype=float),
            s=10,
            alpha=alpha,
            color=_role_color(h, i),
            lw=0,
            label=None if h is None else f"{hue} = {h}",
        )
    if log:
        ax.set_xscale("log")
        ax.set_yscale("log")
    if diagonal:
        both = np.concatenate([data[x].to_numpy(dtype=float), data[y].to_numpy(dtype=float)])
        a, b = float(np.nanmin(both)), float(np.nanmax(both))
        ax.plot([a, b], [a, b], color="0.25", lw=1.0, ls="--", label="y = x", zorder=0)
    if dropped:
        ax.plot([], [], " ", label=f"{dropped} rows <= 0 not shown")
    ax.set_xlabel(xlabel if xlabel is not None else x)
    ax.set_ylabel(ylabel if ylabel is not None else y)
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize="small", markerscale=1.5)
    return ax
