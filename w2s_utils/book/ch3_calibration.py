"""Chapter 3 (calibration): its figures, tables, glue dictionaries and on-disk memo of tables.

Presentation only. The science is computed in the chapter's visible cells by
:mod:`w2s_utils.theory` (the bounds, :func:`~w2s_utils.theory.sweep`, the error-aware interval),
:mod:`w2s_utils.analysis` (tables with intervals over seeds and the shared test set) and the
engine (:func:`~w2s_utils.engine.experiment.run_grid`, :func:`~w2s_utils.engine.heads.run_heads`);
this module turns their frames into what the page shows. Every function says where it is used.

:func:`cached_frame` memoises a computed table on disk (keyed by what it was computed from: the
runs' content, :func:`runs_digest`, and the source of the science packages, :func:`code_digest`)
so that a warm build of the chapter does not recompute thousands of smooth calibration errors.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from w2s_utils.book import plots
from w2s_utils.book.results import verdict
from w2s_utils.book.tables import Table, format_interval, present_table
from w2s_utils.engine import cache

__all__ = [
    "KNOBS",
    "cached_frame",
    "cell_label",
    "change_figure",
    "check_figure",
    "check_glue",
    "code_digest",
    "curves_frame",
    "escape_glue",
    "escape_table",
    "exercise_glue",
    "frame_pieces",
    "headline",
    "heads_pieces",
    "levels_glue",
    "levels_table",
    "multiclass_glue",
    "planted_frame",
    "planted_glue",
    "planted_table",
    "reliability_figure",
    "runs_digest",
    "seconds_text",
    "study_cells",
    "study_calibration_figure",
    "study_error_figure",
    "study_glue",
    "study_table",
    "temperature_figure",
    "temperature_glue",
    "temperature_table",
]

#: The config fields that define a cell of the linear-head study (chapter 3, part 3).
KNOBS = ("weak", "teacher_n", "label_noise", "teacher_temperature")
#: Source folders whose code computes the chapter's cached tables (their text enters the keys).
_SCIENCE = ("metrics", "theory", "analysis")
#: Bump when the stored form of :func:`cached_frame` changes.
_FORMAT = 2
_ROLE_NAMES = {"weak": "teacher", "student": "student", "ceiling": "ceiling"}
_MODEL_NAMES = {"bow": "bag of words", "minilm-l1": "MiniLM-L1", "tiny-transformer": "tiny"}


# ============================================================================ memo of tables
def code_digest() -> str:
    """sha256 of the source of the packages that compute the chapter's tables (``metrics``,
    ``theory``, ``analysis`` and ``_validate``): a change of that code invalidates
    :func:`cached_frame`'s entries even when the library's version string does not change."""
    root = Path(__file__).resolve().parents[1]
    h = hashlib.sha256()
    files = [root / "_validate.py"]
    for name in _SCIENCE:
        files += sorted((root / name).glob("*.py"))
    for f in files:
        h.update(f.relative_to(root).as_posix().encode())
        h.update(f.read_bytes())
    return h.hexdigest()


def runs_digest(runs: Iterable[Any]) -> str:
    """sha256 of what a table of ``runs`` is computed from, in order: each run's config and its
    test arrays (``ids``, ``labels``, ``weak``, ``student``, ``ceiling``; ``f_star`` when the run
    has one). Used in the keys of :func:`cached_frame` (chapter 3, every cached table)."""
    h = hashlib.sha256()
    n = 0
    for r in runs:
        n += 1
        config = r.config if dataclasses.is_dataclass(r.config) else vars(r.config)
        h.update(cache.canonical_json(config).encode())
        h.update("\x00".join(r.ids).encode())
        for name in ("labels", "weak", "student", "ceiling", "f_star"):
            a = getattr(r, name, None)
            if a is not None:
                a = np.ascontiguousarray(a)
                h.update(f"{name}{a.dtype.str}{a.shape}".encode())
                h.update(a.tobytes())
    if n == 0:
        raise ValueError("runs: is empty; pass the runs the table is computed from")
    return h.hexdigest()


def _pack(df: pd.DataFrame, prefix: str) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """A frame as arrays: numeric and boolean columns as they are, other columns as JSON text
    (utf-8 bytes), so that strings, mixed objects (``1.0`` beside ``"fit"``) and NaN survive."""
    arrays: dict[str, np.ndarray] = {}
    kinds = []
    for i, col in enumerate(df.columns):
        if not isinstance(col, str):
            raise ValueError(f"cached_frame: column names must be strings, got {col!r}")
        s = df[col]
        if pd.api.types.is_bool_dtype(s) or pd.api.types.is_numeric_dtype(s):
            arrays[f"{prefix}c{i}"] = s.to_numpy()
            kinds.append("array")
        else:
            values = [v.item() if isinstance(v, np.generic) else v for v in s.tolist()]
            text = json.dumps(values, allow_nan=True)
            arrays[f"{prefix}c{i}"] = np.frombuffer(text.encode("utf-8"), dtype=np.uint8)
            kinds.append("json")
    return arrays, {"columns": [str(c) for c in df.columns], "kinds": kinds}


def _unpack(arrays: Mapping[str, np.ndarray], meta: Mapping[str, Any], prefix: str) -> pd.DataFrame:
    cols = {}
    for i, (name, kind) in enumerate(zip(meta["columns"], meta["kinds"], strict=True)):
        a = np.asarray(arrays[f"{prefix}c{i}"])
        if kind == "json":
            cols[name] = pd.Series(json.loads(a.tobytes().decode("utf-8")), dtype=object)
        else:
            cols[name] = pd.Series(a.copy())
    return pd.DataFrame(cols)


def cached_frame(
    key: Mapping[str, Any], compute: Callable[[], pd.DataFrame | tuple[pd.DataFrame, ...]]
) -> Any:
    """``compute()``'s frame (or tuple of frames), memoised on disk
    (:func:`w2s_utils.engine.cache.cached_arrays`, kind ``"book_tables"``) under ``key`` plus
    :func:`code_digest`.

    ``key`` must name everything the frames depend on besides the code (the runs through
    :func:`runs_digest`, the numbers of instances and resamples). A frame's index is dropped
    (reset it first if it carries data); it comes back with the same columns and values, also on
    the first call (which returns the stored form, so that a cold and a warm build see the same
    dtypes). Each frame's ``attrs`` hold ``cached`` (read from the cache), ``seconds`` (the
    compute time when it was made) and ``entry`` (a short id): :func:`frame_pieces` reads them.
    Used by chapter 3 for its random-instance checks and its tables over seeds and test examples.
    """
    if not isinstance(key, Mapping) or not key:
        raise ValueError("key: give a non-empty mapping naming what the frame depends on")
    full = {"what": "chapter 3 table", "format": _FORMAT, "key": dict(key), "code": code_digest()}
    made: dict[str, float] = {}

    def run() -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        t0 = time.perf_counter()
        out = compute()
        frames = out if isinstance(out, tuple) else (out,)
        if not frames or not all(isinstance(f, pd.DataFrame) for f in frames):
            raise ValueError(
                f"compute: must return a DataFrame or a tuple of them, got {type(out).__name__}"
            )
        arrays: dict[str, np.ndarray] = {}
        metas = []
        for j, f in enumerate(frames):
            a, m = _pack(f.reset_index(drop=True), f"f{j}")
            arrays.update(a)
            metas.append(m)
        made["seconds"] = time.perf_counter() - t0
        meta = {"frames": metas, "tuple": isinstance(out, tuple), "seconds": made["seconds"]}
        return arrays, meta

    arrays, meta = cache.cached_arrays(full, "book_tables", run)
    entry = cache.config_hash(full, 16)
    frames = []
    for j, m in enumerate(meta["frames"]):
        df = _unpack(arrays, m, f"f{j}")
        df.attrs.update(
            cached="seconds" not in made, seconds=float(meta.get("seconds", 0.0)), entry=entry
        )
        frames.append(df)
    return tuple(frames) if meta["tuple"] else frames[0]


def frame_pieces(*frames: pd.DataFrame) -> list[tuple[str, float]]:
    """``(entry, seconds)`` of the frames of :func:`cached_frame` that were read from the cache,
    for :func:`w2s_utils.book.frame.glue_frame` (a warm build still reports the cold time).
    Chapter 3, last cell."""
    seen = {}
    for f in frames:
        if f.attrs.get("cached"):
            seen[f"book_tables/{f.attrs['entry']}"] = float(f.attrs["seconds"])
    return list(seen.items())


# ============================================================================ small helpers
def _interval_text(point: float, lo: float, hi: float, fmt: str = "+.3f") -> str:
    return format_interval(point, lo, hi, fmt)


def _verdict_words(lo: float, hi: float, above: str, below: str, neither: str) -> str:
    v = verdict(lo, hi, above=above, below=below)
    return neither if v.startswith(("not", "undet")) else v


def _legend_below(fig: Figure, axes: Sequence[Any], ncol: int) -> None:
    """One legend under the panels (none inside them), so that no legend covers data."""
    handles, labels = [], []
    for ax in axes:
        for h, lab in zip(*ax.get_legend_handles_labels(), strict=True):
            if lab.startswith("weak"):  # the role's colour, the reader's word
                lab = "teacher" + lab[len("weak") :]
            if lab not in labels and not lab.startswith("_"):
                handles.append(h)
                labels.append(lab)
        if ax.get_legend() is not None:
            ax.get_legend().remove()
    fig.legend(
        handles, labels, loc="lower center", ncol=ncol, frameon=False, bbox_to_anchor=(0.5, -0.01)
    )


# ============================================================================ binned ECE escape
def escape_table(escape: pd.DataFrame) -> Table:
    """Chapter 3, table 'escape': the calibration bound on the escape instances, per delta."""
    return present_table(
        escape,
        {
            "delta": "δ",
            "smce_weak": "smCE teacher",
            "smce_student": "smCE student",
            "bound_abs": "band 2 E|p_sw − p_w|",
            "bound_eps": "√(2ε)",
            "ece_weak": "ECE teacher",
            "ece_student": "ECE student",
        },
        formats={"delta": ".3f", **{c: ".4f" for c in escape.columns if c != "delta"}},
        caption="The escape instance: smooth CE moves by O(δ), binned ECE by about 1/2",
    )


def escape_glue(escape: pd.DataFrame) -> dict[str, Any]:
    """Chapter 3, worked example after {prf:ref}`prp-ece-escape` (rows at δ = 0.05 and 0.001)."""
    row = escape.set_index("delta")
    w, s = row.loc[0.05], row.loc[0.001]
    return {
        "ex_smce_student": float(w.smce_student),
        "ex_bound": float(w.bound_abs),
        "ex_sqrt_2eps": float(w.bound_eps),
        "ex_ece_student": float(w.ece_student),
        "ex_ece_small": float(s.ece_student),
        "ex_bound_small": float(s.bound_abs),
    }


# ============================================================================ random instances
def check_figure(check: pd.DataFrame) -> Figure:
    """Chapter 3, figure 'fig-ch3-check': |change| of smooth CE and of binned ECE against the
    band 2 E|p_sw − p_w| on random binary instances (log-log, one colour per truth)."""
    data = check.assign(
        ece_diff=(check.ece_student - check.ece_weak).abs(),
        truth=check.truth.map({"f_star": "against F*", "labels": "against labels"}),
    )
    fig, axes = plt.subplots(1, 2, figsize=(7.2, 3.9), sharex=True, sharey=True)
    plots.tightness_scatter(
        data,
        x="bound_abs",
        y="diff",
        hue="truth",
        ax=axes[0],
        xlabel="band 2 E|p_sw − p_w|",
        ylabel="|change| between teacher and student",
    )
    plots.tightness_scatter(
        data,
        x="bound_abs",
        y="ece_diff",
        hue="truth",
        ax=axes[1],
        xlabel="band 2 E|p_sw − p_w|",
        ylabel="",
    )
    axes[0].set_title("(a) smooth CE: below the line", fontsize=10)
    axes[1].set_title("(b) binned ECE: escapes above it", fontsize=10)
    _legend_below(fig, axes, ncol=3)
    fig.tight_layout(rect=(0, 0.08, 1, 1))
    plt.close(fig)  # shown once, as the cell's value (not again by the inline backend)
    return fig


def check_glue(check: pd.DataFrame) -> dict[str, Any]:
    """Chapter 3, section 'Numeric check on random instances' (binary part)."""
    ece_diff = (check.ece_student - check.ece_weak).abs()
    used = check["diff"] / check.bound_abs
    escapes = (ece_diff > check.bound_abs).groupby(check.truth).mean()
    return {
        "chk_n": int(check.instance.nunique()),
        "chk_viol": int((~check.holds.astype(bool)).sum()),
        "chk_used_median": float(used.median()),
        "chk_used_max": float(used.max()),
        "chk_escape_fstar": float(escapes["f_star"]),
        "chk_escape_labels": float(escapes["labels"]),
        "chk_ece_ratio_max": float((ece_diff / check.bound_abs).max()),
    }


def multiclass_glue(
    multi: pd.DataFrame,
    bracket: pd.DataFrame,
    ks: Sequence[int],
    n_points: int,
    k: int,
    time_limit: float,
) -> dict[str, Any]:
    """Chapter 3, section 'Numeric check on random instances' (multi-class part: the exact
    instances ``multi`` with ``ks`` classes, and the one time-limited instance ``bracket`` of
    ``n_points`` points and ``k`` classes, ``time_limit`` seconds per smooth CE)."""
    b = bracket.iloc[0]
    return {
        "chk_mc_n": len(multi),
        "chk_mc_viol": int((~multi.holds.astype(bool)).sum()),
        "chk_mc_exact": int(multi.exact.astype(bool).sum()),
        "chk_mc_used": float((multi.lhs / multi.bound_tv).median()),
        "mc_ks": ", ".join(str(int(x)) for x in ks),
        "br_n": int(n_points),
        "br_k": int(k),
        "br_limit": float(time_limit),
        "br_exact": "exact values" if bool(b.exact) else "certified brackets, not exact values",
        "br_weak": f"[{b.smce_weak_lower:.3f}, {b.smce_weak_upper:.3f}]",
        "br_student": f"[{b.smce_student_lower:.3f}, {b.smce_student_upper:.3f}]",
        "br_lhs": float(b.lhs),
        "br_rhs": float(b.rhs),
        "br_holds": "verified" if bool(b.holds) else "not decided (the brackets are too wide)",
    }


# ============================================================================ LM part 1
def _levels_wide(levels: pd.DataFrame) -> pd.DataFrame:
    wide = levels.pivot_table(
        index=["dataset", "weak", "role"],
        columns="metric",
        values=["value", "lo", "hi"],
        sort=False,
    )
    out = pd.DataFrame(index=wide.index)
    for m in ("accuracy", "ce", "smooth_ce", "ece"):
        for part in ("value", "lo", "hi"):
            out[f"{m}_{part}"] = wide[(part, m)]
    return out.reset_index()


def levels_table(levels: pd.DataFrame) -> Table:
    """Chapter 3, table 'LM levels': accuracy, test cross-entropy, smooth CE and binned ECE of
    teacher, student and ceiling per dataset and teacher (of
    :func:`w2s_utils.analysis.calibration_table`), each with its interval."""
    t = _levels_wide(levels)
    t["role"] = t.role.map(_ROLE_NAMES)
    t["weak"] = t.weak.map(lambda w: _MODEL_NAMES.get(w, w))
    return present_table(
        t,
        {
            "dataset": "Dataset",
            "weak": "Teacher model",
            "role": "Predictor",
            "accuracy_value": "Accuracy",
            "ce_value": "Test CE (nats)",
            "smooth_ce_value": "Smooth CE",
            "ece_value": "Binned ECE",
        },
        formats={c: ".3f" for c in ("accuracy_value", "ce_value", "smooth_ce_value", "ece_value")},
        intervals={
            "accuracy_value": ("accuracy_lo", "accuracy_hi"),
            "smooth_ce_value": ("smooth_ce_lo", "smooth_ce_hi"),
            "ece_value": ("ece_lo", "ece_hi"),
        },
        caption="Language-model runs of chapter 1: means over seeds with 95% intervals over "
        "seeds and test examples",
    )


def levels_glue(
    levels: pd.DataFrame, per_run: pd.DataFrame, band: pd.DataFrame, n_resamples: int
) -> dict[str, Any]:
    """Chapter 3, section 'Language models, part 1' (levels, the change inside the band)."""
    t = _levels_wide(levels)
    sm = t.set_index(["dataset", "weak", "role"])
    out: dict[str, Any] = {"lm_resamples": int(n_resamples), "lm_runs": len(per_run)}
    for role in ("weak", "student", "ceiling"):
        sub = sm.xs(role, level="role")
        out[f"lm_smce_{role}"] = float(sub.smooth_ce_value.mean())
        out[f"lm_ece_{role}"] = float(sub.ece_value.mean())
    teach = sm.xs("weak", level="role")
    best = teach.smooth_ce_value.idxmin()
    out["lm_best_teacher"] = f"{_MODEL_NAMES.get(best[1], best[1])} on {best[0]}"
    ceiling_best = 0
    for _, g in t.groupby(["dataset", "weak"], sort=False):
        vals = g.set_index("role").smooth_ce_value
        ceiling_best += int(vals["ceiling"] < min(vals["weak"], vals["student"]))
    out["lm_ceiling_best"] = ceiling_best
    out["lm_pairs"] = len(band)
    worse = band[band.smce_change > 0]
    out["lm_worse"] = len(worse)
    out["lm_worse_which"] = (
        ", ".join(
            f"{_MODEL_NAMES.get(w, w)} on {d}"
            for d, w in zip(worse.dataset, worse.weak, strict=True)
        )
        or "none"
    )
    sig_up = band.smce_change_lo > 0
    sig_down = band.smce_change_hi < 0
    out["lm_sig_up"] = int(sig_up.sum())
    out["lm_sig_down"] = int(sig_down.sum())
    out["lm_holds"] = int(per_run.holds.astype(bool).sum())
    out["lm_used_median"] = float(per_run.used.median())
    out["lm_used_max"] = float(per_run.used.max())
    out["lm_bound_median"] = float(per_run.bound_abs.median())
    out["lm_bound_eps_median"] = float(per_run.bound_eps.median())
    out["lm_ece_out"] = int((band.ece_change.abs() > band.bound_abs).sum())
    return out


def reliability_figure(curves: Mapping[tuple[str, str], Mapping[str, Any]]) -> Figure:
    """Chapter 3, figure 'fig-ch3-reliability': top-label reliability diagrams of teacher,
    student and ceiling per (dataset, teacher), one legend under the panels."""
    ds_list = list(dict.fromkeys(d for d, _ in curves))
    weak_list = list(dict.fromkeys(w for _, w in curves))
    fig, axes = plt.subplots(
        len(ds_list), len(weak_list), squeeze=False, figsize=(7.2, 2.55 * len(ds_list) + 0.6)
    )
    for (ds, weak), cell in curves.items():
        ax = axes[ds_list.index(ds), weak_list.index(weak)]
        plots.reliability_diagram(dict(cell), ax=ax, xlabel="", ylabel="")
        ax.set_xlim(0.45, 1.0)
        ax.set_ylim(0.2, 1.0)
        ax.set_aspect("auto")
        ax.set_title(f"{ds}, teacher {_MODEL_NAMES.get(weak, weak)}", fontsize=9)
        ax.tick_params(labelsize=8)
    for ax in axes[-1]:
        ax.set_xlabel("top-label confidence", fontsize=9)
    for ax in axes[:, 0]:
        ax.set_ylabel("accuracy", fontsize=9)
    _legend_below(fig, axes.ravel(), ncol=4)
    fig.tight_layout(rect=(0, 0.06, 1, 1))
    plt.close(fig)  # shown once, as the cell's value (not again by the inline backend)
    return fig


def change_figure(band: pd.DataFrame) -> Figure:
    """Chapter 3, figure 'fig-ch3-change': the student's change of smooth CE and binned ECE
    (student minus teacher, with the paired interval) inside the band ± 2 E|p_sw − p_w|."""
    long = pd.concat(
        [
            band.assign(
                quantity="smooth CE",
                change=band.smce_change,
                lo=band.smce_change_lo,
                hi=band.smce_change_hi,
            ),
            band.assign(
                quantity="binned ECE",
                change=band.ece_change,
                lo=band.ece_change_lo,
                hi=band.ece_change_hi,
            ),
        ]
    )
    long["pair"] = [
        f"{d}\n{_MODEL_NAMES.get(w, w)}" for d, w in zip(long.dataset, long.weak, strict=True)
    ]
    fig, ax = plt.subplots(figsize=(7.2, 3.9))
    plots.bound_band(
        long,
        x="pair",
        value="change",
        lower="lower_abs",
        upper="upper_abs",
        lo="lo",
        hi="hi",
        hue="quantity",
        ax=ax,
        xlabel="",
        ylabel="student − teacher",
        band_label="band ± 2 E|p_sw − p_w|",
    )
    ax.tick_params(axis="x", labelsize=8)
    _legend_below(fig, [ax], ncol=3)
    fig.tight_layout(rect=(0, 0.08, 1, 1))
    plt.close(fig)  # shown once, as the cell's value (not again by the inline backend)
    return fig


# ============================================================================ LM part 2
def _temp_label(t: Any) -> str:
    return "fitted T" if t == "fit" else f"T = {float(t):g}"


def temperature_table(sweep: pd.DataFrame, t_fit: float) -> Table:
    """Chapter 3, table 'LM temperatures': teacher and student smooth CE, binned ECE and
    accuracy per teacher temperature (of :func:`w2s_utils.analysis.temperature_sweep`)."""
    rows = []
    for lab, g in sweep.groupby("temperature", sort=False):
        v = g.set_index(["role", "metric"])
        row = {"temperature": lab if lab != "fitted T" else f"fitted (T ≈ {t_fit:.2f})"}
        for role in ("weak", "student", "change"):
            for m in ("smooth_ce", "ece", "accuracy"):
                for part in ("value", "lo", "hi"):
                    row[f"{role}_{m}_{part}"] = float(v.loc[(role, m), part])
        rows.append(row)
    t = pd.DataFrame(rows)
    return present_table(
        t,
        {
            "temperature": "Teacher",
            "weak_smooth_ce_value": "Teacher smooth CE",
            "student_smooth_ce_value": "Student smooth CE",
            "change_smooth_ce_value": "Change (student − teacher)",
            "weak_ece_value": "Teacher ECE",
            "student_ece_value": "Student ECE",
            "student_accuracy_value": "Student accuracy",
        },
        formats={"change_smooth_ce_value": "+.3f"},
        intervals={
            "weak_smooth_ce_value": ("weak_smooth_ce_lo", "weak_smooth_ce_hi"),
            "student_smooth_ce_value": ("student_smooth_ce_lo", "student_smooth_ce_hi"),
            "change_smooth_ce_value": ("change_smooth_ce_lo", "change_smooth_ce_hi"),
            "student_accuracy_value": ("student_accuracy_lo", "student_accuracy_hi"),
        },
        caption="Tempered teachers and their students (means over seeds, 95% intervals over "
        "seeds and test examples)",
    )


def temperature_figure(sweep: pd.DataFrame, t_fit: float) -> Figure:
    """Chapter 3, figure 'fig-ch3-temperature': teacher and student smooth CE and accuracy
    against the teacher's temperature (log axis; the fitted temperature marked at its mean)."""
    data = sweep[sweep.role != "change"].copy()
    data.loc[data.temperature == "fitted T", "t"] = t_fit
    fig, axes = plt.subplots(1, 2, figsize=(7.2, 3.5))
    for ax, (metric, label) in zip(
        axes, (("smooth_ce", "smooth CE"), ("accuracy", "accuracy")), strict=True
    ):
        sub = data[(data.metric == metric) & (data.temperature != "fitted T")]
        plots.band_plot(
            sub,
            x="t",
            y="value",
            lo="lo",
            hi="hi",
            hue="role",
            ax=ax,
            logx=True,
            xlabel="teacher temperature T",
            ylabel=label,
        )
        fit = data[(data.metric == metric) & (data.temperature == "fitted T")]
        for _, r in fit.iterrows():
            ax.errorbar(
                [r.t],
                [r.value],
                yerr=[[r.value - r.lo], [r.hi - r.value]],
                fmt="*",
                ms=11,
                capsize=3,
                color=plots.ROLE_COLORS[r.role],
                label=f"{r.role}, fitted T",
            )
        ax.set_xticks([0.5, 1, 2])
        ax.set_xticklabels(["0.5", "1", "2"])
        ax.tick_params(labelsize=8)
    _legend_below(fig, axes, ncol=4)
    fig.tight_layout(rect=(0, 0.1, 1, 1))
    plt.close(fig)  # shown once, as the cell's value (not again by the inline backend)
    return fig


def temperature_glue(
    sweep: pd.DataFrame,
    t_fit: Sequence[float],
    diffs: pd.DataFrame,
    runs: Mapping[Any, Sequence[Any]],
    grid_text: str,
    val_n: int,
) -> dict[str, Any]:
    """Chapter 3, section 'Language models, part 2' (the tempered teachers).

    ``diffs``: one row per comparison (``name``, ``point``, ``lo``, ``hi``) of the fitted
    temperature against T = 1 (teacher and student smooth CE, student accuracy) and of T = 0.5
    against T = 1."""
    v = sweep.set_index(["temperature", "role", "metric"])
    first = next(iter(runs.values()))[0].config
    out: dict[str, Any] = {
        "tw_dataset": first.dataset,
        "tw_weak": _MODEL_NAMES.get(first.weak, first.weak),
        "tw_fit_mean": float(np.mean(t_fit)),
        "tw_fit_min": float(np.min(t_fit)),
        "tw_fit_max": float(np.max(t_fit)),
        "tw_calib_direction": "under-confident" if np.mean(t_fit) < 1 else "over-confident",
        "tw_sharpen_flatten": "sharpens" if np.mean(t_fit) < 1 else "flattens",
        "tw_grid": grid_text,
        "tw_runs": sum(len(r) for r in runs.values()),
        "tw_new": sum(not r.cached for rs in runs.values() for r in rs),
        "tw_val_n": int(val_n),
        "tw_seeds": len(next(iter(runs.values()))),
    }
    for lab in ("T = 0.5", "T = 1", "T = 2", "fitted T"):
        key = {"T = 0.5": "0p5", "T = 1": "1", "T = 2": "2", "fitted T": "fit"}[lab]
        for role in ("weak", "student"):
            out[f"tw_{key}_{role}_smce"] = float(v.loc[(lab, role, "smooth_ce"), "value"])
    for _, d in diffs.iterrows():
        out[f"tw_{d['name']}"] = _interval_text(d.point, d.lo, d.hi, "+.3f")
        words = ("raises", "lowers", "does not clearly change")
        out[f"tw_{d['name']}_verdict"] = _verdict_words(d.lo, d.hi, *words)
    return out


# ============================================================================ heads study
def cell_label(weak: str, teacher_n: int, label_noise: float, temperature: Any) -> str:
    """Chapter 3, part 3: a study cell in words, e.g. "MiniLM-L1, 100 ex." or
    "MiniLM-L1, 30% noise, fitted T"."""
    parts = [_MODEL_NAMES.get(weak, weak)]
    parts.append("all ex." if int(teacher_n) == 0 else f"{int(teacher_n)} ex.")
    if float(label_noise) > 0:
        parts.append(f"{float(label_noise):.0%} noise")
    if temperature == "fit":
        parts.append("fitted T")
    elif float(temperature) != 1.0:
        parts.append(f"T = {float(temperature):g}")
    return ", ".join(parts)


def _axis_of(row: Mapping[str, Any]) -> str:
    if row["teacher_temperature"] != 1.0 and row["label_noise"] == 0:
        return "temperature"
    if row["label_noise"] > 0:
        return "label noise"
    return "training size / model"


def study_cells(gains: pd.DataFrame, per_run: pd.DataFrame) -> pd.DataFrame:
    """Chapter 3, part 3: one row per study cell: the paired table's gain (with its interval)
    and accuracies, the seed means of the per-run teacher error ``e`` (test CE), student CE,
    smooth CEs and error-aware ends, a label and the knob it varies."""
    means = (
        per_run.groupby(list(KNOBS), sort=False, dropna=False)
        .agg(
            e=("loss_weak", "mean"),
            ce_student=("loss_student", "mean"),
            ce_ceiling=("loss_ceiling", "mean"),
            smce_weak=("smooth_ce_weak", "mean"),
            smce_student=("smooth_ce_student", "mean"),
            ea_lower=("lower", "mean"),
            ea_upper=("upper", "mean"),
            contains=("contains_gain", "mean"),
            free_lower=("free_lower", "mean"),
            free_upper=("free_upper", "mean"),
        )
        .reset_index()
    )
    merged = gains.merge(means, on=list(KNOBS), how="inner", validate="one_to_one")
    merged["label"] = [cell_label(*r) for r in merged[list(KNOBS)].itertuples(index=False)]
    merged["axis"] = [_axis_of(r) for _, r in merged.iterrows()]
    return merged


def study_table(cells: pd.DataFrame) -> Table:
    """Chapter 3, table 'study': per cell the teacher's accuracy and error e, the student's, the
    gain with its interval and the error-aware interval."""
    return present_table(
        cells,
        {
            "label": "Teacher",
            "acc_weak": "Teacher accuracy",
            "acc_student": "Student accuracy",
            "e": "Teacher CE e",
            "ce_student": "Student CE",
            "gain": "Gain (nats)",
            "ea_lower": "Error-aware L(e)",
            "ea_upper": "Error-aware U(e)",
        },
        formats={"gain": "+.3f", "ea_lower": "+.3f", "ea_upper": "+.3f"},
        intervals={"gain": ("gain_lo", "gain_hi")},
        caption="Linear heads on frozen features (rotten_tomatoes, MiniLM-L6 student): means "
        "over seeds, 95% intervals over seeds and test examples",
    )


_AXIS_STYLE = {
    "training size / model": ("o", "#1b9e77"),
    "label noise": ("s", "#d95f02"),
    "temperature": ("D", "#7570b3"),
}


def study_error_figure(
    cells: pd.DataFrame, curves: pd.DataFrame, own_e: Mapping[str, float]
) -> Figure:
    """Chapter 3, figure 'fig-ch3-study-error': (a) the measured gain against the teacher's
    error e with its interval and the error-aware interval [L(e), U(e)] (grey) per cell;
    (b) U(e) and L(e) of three (teacher, student) pairs as functions of the budget e
    (:func:`w2s_utils.theory.error_aware_curve`), with each pair's own e marked."""
    fig, axes = plt.subplots(1, 2, figsize=(7.2, 3.9))
    ax = axes[0]
    ax.vlines(
        cells.e,
        cells.ea_lower,
        cells.ea_upper,
        color="0.75",
        lw=5,
        zorder=1,
        label="error-aware interval",
    )
    for axis, (marker, color) in _AXIS_STYLE.items():
        sub = cells[cells.axis == axis]
        if sub.empty:
            continue
        yerr = np.vstack([sub.gain - sub.gain_lo, sub.gain_hi - sub.gain]).clip(min=0)
        ax.errorbar(
            sub.e,
            sub.gain,
            yerr=yerr,
            fmt=marker,
            color=color,
            ms=5,
            capsize=2,
            label=f"gain: {axis}",
            zorder=3,
        )
    ax.axhline(0, color="0.3", lw=0.8)
    ax.set_xlabel("teacher's test CE e (nats)", fontsize=9)
    ax.set_ylabel("gain = CE(F_w) − CE(F_sw)", fontsize=9)
    ax.set_title("(a) measured gain inside [L(e), U(e)]", fontsize=10)
    ax = axes[1]
    colors = ("#1b9e77", "#d95f02", "#7570b3")
    names = list(dict.fromkeys(curves.name))
    for name, color in zip(names, colors, strict=False):
        c = curves[curves.name == name]
        ax.plot(c.budget, c.upper, color=color, lw=1.6, label=name)
        ax.plot(c.budget, c.lower, color=color, lw=1.6, ls="--")
        ax.axvline(float(own_e[name]), color=color, lw=0.8, ls=":")
    ax.axhline(0, color="0.3", lw=0.8)
    ax.set_xlabel("budget e on the teacher's error (nats)", fontsize=9)
    ax.set_ylabel("U(e) (solid), L(e) (dashed)", fontsize=9)
    ax.set_title("(b) the ends are monotone in e", fontsize=10)
    for a in axes:
        a.tick_params(labelsize=8)
    _legend_below(fig, axes, ncol=3)
    fig.tight_layout(rect=(0, 0.14, 1, 1))
    plt.close(fig)  # shown once, as the cell's value (not again by the inline backend)
    return fig


def curves_frame(curves: Mapping[str, Any]) -> pd.DataFrame:
    """Chapter 3, part 3: :func:`w2s_utils.theory.error_aware_curve` results (name -> curve) as
    one tidy frame (``name``, ``budget``, ``lower``, ``upper``) for the figure and the memo."""
    rows = []
    for name, c in curves.items():
        for b, lo, up in zip(c.budgets.tolist(), c.lower.tolist(), c.upper.tolist(), strict=True):
            rows.append({"name": name, "budget": b, "lower": lo, "upper": up})
    return pd.DataFrame(rows)


def study_calibration_figure(cells: pd.DataFrame, changes: pd.DataFrame) -> Figure:
    """Chapter 3, figure 'fig-ch3-study-calibration': (a) the student's smooth CE against its
    teacher's per cell (seed means; y = x dashed); (b) the change student − teacher with its
    interval inside the band ± 2 E|p_sw − p_w| for the calibration cells."""
    fig, axes = plt.subplots(1, 2, figsize=(7.2, 3.9), gridspec_kw={"width_ratios": [1, 1.3]})
    ax = axes[0]
    for axis, (marker, color) in _AXIS_STYLE.items():
        sub = cells[cells.axis == axis]
        ax.scatter(
            sub.smce_weak, sub.smce_student, marker=marker, color=color, s=28, label=axis, zorder=3
        )
    lim = float(max(cells.smce_weak.max(), cells.smce_student.max())) * 1.08
    ax.plot([0, lim], [0, lim], ls="--", color="0.4", lw=1, label="y = x")
    ax.set_xlim(0, lim)
    ax.set_ylim(0, lim)
    ax.set_xlabel("teacher's smooth CE", fontsize=9)
    ax.set_ylabel("student's smooth CE", fontsize=9)
    ax.set_title("(a) every cell (seed means)", fontsize=10)
    ax = axes[1]
    data = changes.assign(
        pair=[
            cell_label(*r).replace(", ", "\n", 1)
            for r in changes[list(KNOBS)].itertuples(index=False)
        ]
    )
    plots.bound_band(
        data,
        x="pair",
        value="smce_change",
        lower="lower_abs",
        upper="upper_abs",
        lo="smce_change_lo",
        hi="smce_change_hi",
        ax=ax,
        xlabel="",
        ylabel="student − teacher smooth CE",
        band_label="band ± 2 E|p_sw − p_w|",
    )
    ax.set_title("(b) calibration cells, with intervals", fontsize=10)
    for a in axes:
        a.tick_params(labelsize=8)
    ax.tick_params(axis="x", labelsize=7)
    _legend_below(fig, axes, ncol=3)
    fig.tight_layout(rect=(0, 0.12, 1, 1))
    plt.close(fig)  # shown once, as the cell's value (not again by the inline backend)
    return fig


def _spearman(x: Sequence[float], y: Sequence[float]) -> float:
    rx = pd.Series(list(x)).rank().to_numpy()
    ry = pd.Series(list(y)).rank().to_numpy()
    return float(np.corrcoef(rx, ry)[0, 1])


def study_glue(
    cells: pd.DataFrame,
    changes: pd.DataFrame,
    diffs: pd.DataFrame,
    n_seeds: int,
    n_resamples: int,
    n_runs: int,
) -> dict[str, Any]:
    """Chapter 3, part 3 (the controlled study): counts of decided comparisons, rank
    correlations (descriptions over the cells, not tests) and the headline numbers.

    ``diffs``: one row per paired comparison between cells (``name``, ``point``, ``lo``,
    ``hi``)."""
    q = cells[cells.axis == "training size / model"].sort_values("e")
    out: dict[str, Any] = {
        "st_seeds": int(n_seeds),
        "st_resamples": int(n_resamples),
        "st_runs": int(n_runs),
        "st_cells": len(cells),
        "st_quality_cells": len(q),
        "st_gain_pos": int((cells.gain_lo > 0).sum()),
        "st_gain_neg": int((cells.gain_hi < 0).sum()),
        "st_contains": int((cells.contains >= 1.0).sum()),
        "st_rho_e_gain": _spearman(q.e, q.gain),
        "st_rho_e_ce_student": _spearman(cells.e, cells.ce_student),
        "st_rho_e_width": _spearman(q.e, q.ea_upper - q.ea_lower),
        "st_rho_smce": _spearman(cells.smce_weak, cells.smce_student),
        "st_width_min": float((q.ea_upper - q.ea_lower).min()),
        "st_width_max": float((q.ea_upper - q.ea_lower).max()),
    }
    worst, best = q.iloc[-1], q.iloc[0]
    out["st_worst_label"] = worst.label
    out["st_worst_gain"] = _interval_text(worst.gain, worst.gain_lo, worst.gain_hi)
    out["st_worst_e"] = float(worst.e)
    out["st_best_label"] = best.label
    out["st_best_gain"] = _interval_text(best.gain, best.gain_lo, best.gain_hi)
    out["st_best_e"] = float(best.e)
    out["st_headline_gain"] = float(worst.gain)
    out["st_chg_cells"] = len(changes)
    out["st_chg_up"] = int((changes.smce_change_lo > 0).sum())
    out["st_chg_down"] = int((changes.smce_change_hi < 0).sum())
    out["st_chg_holds"] = int(changes.all_hold.astype(bool).sum())
    out["st_n_diffs"] = len(diffs)
    for _, d in diffs.iterrows():
        out[f"st_{d['name']}"] = _interval_text(d.point, d.lo, d.hi, "+.3f")
        out[f"st_{d['name']}_verdict"] = _verdict_words(
            d.lo, d.hi, "raises", "lowers", "does not clearly change"
        )
    return out


# ============================================================================ planted truth
def planted_table(planted: pd.DataFrame) -> Table:
    """Chapter 3, table 'planted': per seed the exact smooth CEs against F*, the change inside the
    band, the ECE check and the error-aware interval with the exact teacher error."""
    return present_table(
        planted,
        {
            "seed": "Seed",
            "smce_weak": "smCE teacher",
            "smce_student": "smCE student",
            "bound_abs": "band 2 E|p_sw − p_w|",
            "ece_weak": "ECE teacher (vs F*)",
            "tv_weak": "E TV(F*, F_w)",
            "err_weak": "Err(F_w)",
            "gain": "Gain (exact)",
            "lower": "L(Err)",
            "upper": "U(Err)",
        },
        formats={
            "seed": "d",
            "gain": "+.4f",
            "lower": "+.4f",
            "upper": "+.4f",
            **{
                c: ".4f"
                for c in (
                    "smce_weak",
                    "smce_student",
                    "bound_abs",
                    "ece_weak",
                    "tv_weak",
                    "err_weak",
                )
            },
        },
        caption="Planted truth: everything against F* itself (no label noise)",
    )


def planted_glue(planted: pd.DataFrame) -> dict[str, Any]:
    """Chapter 3, section 'A planted truth, where nothing is estimated'."""
    change = planted.smce_student - planted.smce_weak
    return {
        "pl_runs": len(planted),
        "pl_holds": int(planted.holds.astype(bool).sum()),
        "pl_ece_checks": int(planted.ece_checks.astype(bool).sum()),
        "pl_contains": int(planted.contains_gain.astype(bool).sum()),
        "pl_smce_weak": float(planted.smce_weak.mean()),
        "pl_smce_student": float(planted.smce_student.mean()),
        "pl_change": float(change.mean()),
        "pl_bound": float(planted.bound_abs.mean()),
        "pl_used": float((change.abs() / planted.bound_abs).mean()),
        "pl_ece_weak": float(planted.ece_weak.mean()),
        "pl_ece_student": float(planted.ece_student.mean()),
        "pl_tv_weak": float(planted.tv_weak.mean()),
        "pl_tv_student": float(planted.tv_student.mean()),
        "pl_err": float(planted.err_weak.mean()),
        "pl_gain": float(planted.gain.mean()),
        "pl_lower": float(planted.lower.mean()),
        "pl_upper": float(planted.upper.mean()),
    }


def planted_frame(
    runs: Sequence[Any],
    bound: pd.DataFrame,
    ece: Mapping[str, pd.DataFrame],
    error_aware: pd.DataFrame,
) -> pd.DataFrame:
    """Chapter 3, part 4: one row per planted run from the sweeps of
    :func:`w2s_utils.theory.calibration_bound` (``bound``), :func:`w2s_utils.theory.ece_bound`
    per role (``ece``) and :func:`w2s_utils.theory.error_aware_interval` (``error_aware``), all
    against F*, in the order of ``runs``."""
    out = pd.DataFrame({"seed": [r.config.seed for r in runs]})
    for c in ("smce_weak", "smce_student", "bound_abs", "bound_eps", "holds"):
        out[c] = bound[c].to_numpy()
    for role, frame in ece.items():
        out[f"ece_{role}"] = frame.ece.to_numpy()
        out[f"tv_{role}"] = frame.mean_tv.to_numpy()
    out["ece_checks"] = np.all([f.holds.to_numpy(dtype=bool) for f in ece.values()], axis=0)
    out["err_weak"] = error_aware.budget.to_numpy()
    for c in ("gain", "lower", "upper", "contains_gain"):
        out[c] = error_aware[c].to_numpy()
    return out


def headline(values: Mapping[str, Any]) -> str:
    """Chapter 3, the frame's main result: one sentence from :func:`study_glue`'s values."""
    return (
        f"A student's smooth calibration error stays within 2 E|p_sw − p_w| of its teacher's; "
        f"in a controlled study with {values['st_seeds']} seeds per cell, the student's gain "
        f"over its teacher falls from {values['st_worst_gain']} nats for the weakest teacher to "
        f"{values['st_best_gain']} for the best, and the sharp error-aware interval for the gain "
        f"narrows with the teacher's error: a better teacher leaves a better student, but less "
        f"room to gain (and to fall)."
    )


def heads_pieces(results: Iterable[Any]) -> list[tuple[str, float]]:
    """``(entry, seconds)`` of the linear-head runs read from the cache, for
    :func:`w2s_utils.book.frame.glue_frame`. Chapter 3, last cell."""
    return [
        (f"heads/{cache.config_hash(r.config, 16)}", float(r.seconds))
        for r in results
        if r.cached and math.isfinite(float(r.seconds))
    ]


def exercise_glue(
    ex4: Any, ex7: Any, e0: float, first3: pd.DataFrame, gains: pd.DataFrame
) -> dict[str, Any]:
    """Chapter 3, solutions 4, 7 and 8: the bin-edge example (a calibration-bound result), the
    error-aware curve at budgets ``[0, e0/2, e0, 2 e0]``, and the gain verdicts of the study on
    its first three seeds (``first3``) against all seeds (``gains``)."""
    up = np.asarray(ex7.upper, dtype=float)
    low = np.asarray(ex7.lower, dtype=float)

    def decided(t: pd.DataFrame) -> int:
        return int(((t.gain_lo > 0) | (t.gain_hi < 0)).sum())

    return {
        "ex4_ece_before": float(ex4.ece_weak),
        "ex4_ece_after": float(ex4.ece_student),
        "ex4_smce_before": float(ex4.smce_weak),
        "ex4_smce_after": float(ex4.smce_student),
        "ex4_band": float(ex4.bound_abs),
        "ex7_eps": float(ex7.eps),
        "ex7_u0": float(up[0]),
        "ex7_l0": float(low[0]),
        "ex7_e0": float(e0),
        "ex7_inc1": float(up[2] - up[1]),
        "ex7_inc2": float(up[3] - up[2]),
        "ex7_ue0": float(up[2]),
        "ex8_decided3": decided(first3),
        "ex8_decided10": decided(gains),
    }


def seconds_text(seconds: float) -> str:
    """A duration for the text ("12 s", "3.4 min"). Chapter 3, time budget."""
    s = float(seconds)
    return f"{s:.0f} s" if s < 120 else f"{s / 60:.1f} min"
