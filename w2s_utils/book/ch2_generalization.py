"""Chapter 2 (two-sided generalization bounds): its inputs, tables, figures and glued findings.

Presentation only. The science is computed in the chapter's visible cells: the label-free
interval by :func:`w2s_utils.theory.label_free_interval` (its ends attained by
:func:`w2s_utils.theory.worst_case_truth`), the interval that uses the teacher's error by
:func:`w2s_utils.theory.error_aware_interval` and :func:`w2s_utils.theory.error_aware_curve`, the
chain and the two-sided bound by :func:`w2s_utils.theory.generalization_chain`, the oscillation
form by :func:`w2s_utils.theory.oscillation_bound`, all of them on many instances at once by
:func:`w2s_utils.theory.sweep` (memoised on disk by :func:`cached_sweep`); the language-model runs
by :func:`w2s_utils.engine.experiment.run_grid`, the planted runs by
:func:`w2s_utils.engine.heads.run_heads`, their intervals over seeds and test examples by
:func:`w2s_utils.analysis.paired_table` and :func:`w2s_utils.metrics.seeds_and_test_interval`.
This module builds the inputs those calls take (:func:`lm_inputs`, :func:`planted_inputs`,
:func:`random_instances`) and turns their tables into what the chapter shows: presented tables
(:func:`w2s_utils.book.tables.present_table`), figures, and dictionaries for
:func:`w2s_utils.book.glue.glue_all`.

Sign convention (the notation page's): ``gain`` = Err(F_w) - Err(F_sw) in nats (positive: the
student is better), estimated on labelled test data by CE(F_w) - CE(F_sw); the student log-ratio
``r_j = log F_sw,j - log F_w,j``; the label-free interval ``E min_j r_j <= gain <= E max_j r_j``;
the error-aware interval ``L(e) <= gain <= U(e)`` for truths with ``Err(F_w) <= e``; ``eps`` =
E KL(F_w || F_sw) (misfit, weak -> student), ``eps_rev`` = E KL(F_sw || F_w).
"""

from __future__ import annotations

import hashlib
import math
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from matplotlib import pyplot as plt
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

from w2s_utils import theory
from w2s_utils.book.results import names_where, verdict
from w2s_utils.book.tables import Table, format_interval, present_table
from w2s_utils.engine import cache
from w2s_utils.theory import instances

__all__ = [
    "CHAIN",
    "EXAMPLE",
    "K_VALUES",
    "cached_sweep",
    "chain_figure",
    "check_glue",
    "check_table",
    "clip_table",
    "clipped_inputs",
    "correlation_glue",
    "error_aware_check_glue",
    "heads_pieces",
    "error_aware_figure",
    "example_glue",
    "example_table",
    "exercise_glue",
    "group_means",
    "headline_glue",
    "interval_figure",
    "lm_glue",
    "lm_inputs",
    "lm_interval_table",
    "lm_table",
    "no_floor_glue",
    "no_floor_inputs",
    "no_floor_table",
    "per_run_table",
    "planted_glue",
    "planted_inputs",
    "planted_interval_figure",
    "planted_summary",
    "planted_table",
    "positive",
    "random_instances",
    "share_figure",
    "statistics_glue",
    "statistics_table",
    "sweep_pieces",
]

#: Class counts of the random check, cycled over the instances.
K_VALUES = (2, 3, 4, 5, 8)

#: The chain of bounds on |gain|, sharpest first: column of :func:`lm_table` (and of the random
#: check's merged table) and its label. The first two are the two intervals (the larger of their
#: two ends in size); the rest are the links of :func:`w2s_utils.theory.generalization_chain`,
#: ending with the two-sided bound's two forms.
CHAIN = (
    ("ea_bound", "error-aware interval"),
    ("lf_bound", "label-free interval"),
    ("mean_max_abs_log_ratio", "E max|r|"),
    ("mean_log_tv", "E log(1+TV/γ)"),
    ("log_mean_tv", "log(1+E TV/γ)"),
    ("log_pinsker", "log(1+min(1,√(ε/2))/γ)"),
    ("bound_tv", "E TV/γ (two-sided)"),
    ("bound_eps", "√(ε/2)/γ (two-sided)"),
)

#: The chapter's worked example (one input, K = 2): the same three vectors as chapter 1's.
EXAMPLE = {"f_star": (0.9, 0.1), "weak": (0.6, 0.4), "student": (0.8, 0.2)}

_LIFT = 1e-12  # probabilities that underflowed to exactly 0 are lifted to this floor
_CACHE_KIND = "book_ch2"
_THEORY_DIR = Path(theory.__file__).resolve().parent
#: (cache key, seconds to compute, read from the cache) of every cached_sweep call in this process
_SWEEPS: list[tuple[str, float, bool]] = []


def _require(df: pd.DataFrame, columns: Sequence[str], name: str) -> None:
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise ValueError(
            f"{name}: missing columns {missing}; pass the table this chapter builds "
            f"(it has {list(df.columns)})"
        )


def _f64(p: Any) -> torch.Tensor:
    if isinstance(p, torch.Tensor):
        return p.detach().to(dtype=torch.float64, device="cpu")
    return torch.as_tensor(np.array(p, dtype=np.float64))  # a copy: cached arrays are read-only


def positive(p: Any) -> torch.Tensor:
    """``p`` as float64, unchanged if strictly positive, else with its zeros lifted to 1e-12.

    A model's probabilities can underflow to exactly 0; every result of the chapter needs
    positive predictions, and lifting those entries changes nothing else
    (:func:`w2s_utils.theory.ensure_floor` with ``zeros_only=True``: the I-projection onto the
    floor, applied only where a zero occurs). Chapter 2, the language-model inputs.
    """
    return theory.ensure_floor(_f64(p), _LIFT, zeros_only=True)


# ------------------------------------------------------------------------------- inputs
def lm_inputs(runs: Sequence[Any]) -> list[dict[str, torch.Tensor]]:
    """Chapter 2, section 'On language models': one ``{weak, student, labels}`` per run (zeros
    lifted by :func:`positive`): the keyword arguments of the theory results, for
    :func:`w2s_utils.theory.sweep`. The hard test labels are the empirical truth, so every
    ``Err`` is a test cross-entropy and the gain is CE(F_w) - CE(F_sw)."""
    if not runs:
        raise ValueError("runs: is empty; pass the runs of chapter 1's grid (run_grid)")
    return [
        {
            "weak": positive(r.weak),
            "student": positive(r.student),
            "labels": torch.as_tensor(np.array(r.labels)),
        }
        for r in runs
    ]


def clipped_inputs(runs: Sequence[Any], gamma: float) -> list[dict[str, Any]]:
    """Chapter 2, the clipping table: :func:`lm_inputs` with both predictors clipped to the floor
    ``max(gamma, raw floor)`` (:func:`w2s_utils.theory.clip_to_floor`; a run whose raw floor is
    already above ``gamma`` keeps its predictions: clipping below the floor changes nothing),
    and that floor as ``gamma`` (the keyword of :func:`w2s_utils.theory.generalization_chain`)."""
    if not (isinstance(gamma, int | float) and 0 < gamma < 0.5):
        raise ValueError(f"gamma: must be a floor in (0, 0.5), got {gamma!r}")
    out = []
    for d in lm_inputs(runs):
        g = max(float(gamma), float(min(d["weak"].min(), d["student"].min())))
        out.append(
            {
                "weak": theory.clip_to_floor(d["weak"], g),
                "student": theory.clip_to_floor(d["student"], g),
                "labels": d["labels"],
                "gamma": g,
            }
        )
    return out


def planted_inputs(results: Sequence[Any]) -> list[dict[str, torch.Tensor]]:
    """Chapter 2, the planted task: one ``{weak, student, f_star}`` per planted run (test split;
    the exact truth ``F*`` of :func:`w2s_utils.engine.heads.run_heads` with ``truth="planted"``)."""
    out = []
    for r in results:
        if getattr(r, "f_star", None) is None:
            raise ValueError(
                "results: a run has no f_star; run the heads with truth='planted' (HeadsConfig)"
            )
        out.append(
            {"weak": positive(r.weak), "student": positive(r.student), "f_star": _f64(r.f_star)}
        )
    return out


def random_instances(n: int, *, n_inputs: int = 30) -> list[dict[str, torch.Tensor]]:
    """Chapter 2, 'A numeric check': ``n`` instances ``{weak, student, f_star}`` of
    :func:`w2s_utils.theory.instances.floored_triple` (seed ``100000 K + i``), ``K`` cycling
    through :data:`K_VALUES`, each on ``n_inputs`` equally likely inputs."""
    if not isinstance(n, int) or isinstance(n, bool) or n < 1:
        raise ValueError(f"n: must be a positive int (number of instances), got {n!r}")
    out = []
    for i in range(n):
        k = K_VALUES[i % len(K_VALUES)]
        f_star, weak, student = instances.floored_triple(100_000 * k + i, k, n_inputs=n_inputs)
        out.append({"weak": weak, "student": student, "f_star": f_star})
    return out


def no_floor_inputs(deltas: Sequence[float]) -> list[dict[str, torch.Tensor]]:
    """Chapter 2, 'Without a floor': ``{weak, student, f_star}`` of
    :func:`w2s_utils.theory.instances.no_floor_instance` at each ``delta``."""
    if not deltas:
        raise ValueError("deltas: give at least one delta in (0, 1)")
    return [dict(instances.no_floor_instance(d)._asdict()) for d in deltas]


# ------------------------------------------------------------------------------ caching
def _theory_digest() -> str:
    """sha256 of the theory package's source: a change to any result recomputes the checks."""
    h = hashlib.sha256()
    for path in sorted(_THEORY_DIR.glob("*.py")):
        h.update(path.name.encode())
        h.update(path.read_bytes())
    return h.hexdigest()


def _draws_digest(draws: Sequence[Mapping[str, Any]]) -> str:
    """sha256 of the instances' contents (names, shapes, dtypes and bytes of every value)."""
    h = hashlib.sha256()
    for d in draws:
        for name in sorted(d):
            value = d[name]
            h.update(name.encode())
            if isinstance(value, torch.Tensor):
                value = value.detach().cpu().numpy()
            arr = np.ascontiguousarray(np.asarray(value))
            h.update(f"{arr.dtype}{arr.shape}".encode())
            h.update(arr.tobytes())
    return h.hexdigest()


def _frame_arrays(table: pd.DataFrame) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """A sweep's table as arrays (numbers, booleans; optional numbers with NaN for None) and
    metadata (its column order; text columns that hold one value)."""
    arrays, constants = {}, {}
    for col in table.columns:
        values = table[col]
        if pd.api.types.is_bool_dtype(values) or pd.api.types.is_numeric_dtype(values):
            arrays[f"col_{col}"] = values.to_numpy()
            continue
        numeric = pd.to_numeric(values, errors="coerce")
        if numeric.notna().sum() == values.notna().sum():  # numbers, None as NaN (or all None)
            arrays[f"col_{col}"] = numeric.to_numpy(dtype=np.float64)
        elif values.astype(str).nunique() == 1:
            constants[str(col)] = str(values.iloc[0])
        else:
            raise ValueError(
                f"column {col!r} holds several texts; a cached sweep keeps numbers, booleans "
                "and constant texts"
            )
    return arrays, {"columns": [str(c) for c in table.columns], "constants": constants}


def cached_sweep(
    result_fn: Callable[..., Any], draws: Sequence[Mapping[str, Any]], *, name: str
) -> pd.DataFrame:
    """``theory.sweep(result_fn, draws, len(draws))``, memoised on disk (chapter 2, every table of
    theory results: random instances, language-model and planted runs).

    The entry (:func:`w2s_utils.engine.cache.cached_arrays`, kind ``"book_ch2"``) is keyed by
    ``name``, the result's qualified name, the *contents* of the instances (every array's bytes)
    and the source code of the whole :mod:`w2s_utils.theory` package, so a changed instance or a
    changed theorem recomputes instead of showing a stale check. Returns the sweep's table (one
    row per instance; numeric, boolean and constant text columns; an optional number that is
    ``None`` comes back as NaN). The call is logged for :func:`sweep_pieces`.
    """
    if not callable(result_fn):
        raise ValueError(f"result_fn: must be callable, got {type(result_fn).__name__}")
    if not isinstance(name, str) or not name.strip():
        raise ValueError("name: give the table a short non-empty name (part of its cache key)")
    if not draws or not all(isinstance(d, Mapping) for d in draws):
        raise ValueError("draws: pass a non-empty list of instances, each a mapping of keywords")
    key = {
        "chapter": 2,
        "name": name,
        "result": f"{result_fn.__module__}.{result_fn.__qualname__}",
        "draws": _draws_digest(draws),
        "theory": _theory_digest(),
    }
    computed: list[float] = []

    def compute() -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        t0 = time.perf_counter()
        table = theory.sweep(result_fn, list(draws), len(draws))
        computed.append(time.perf_counter() - t0)
        arrays, meta = _frame_arrays(table)
        return arrays, {**meta, "seconds": computed[-1]}

    arrays, meta = cache.cached_arrays(key, _CACHE_KIND, compute)
    _SWEEPS.append((cache.config_hash(key), float(meta.get("seconds", 0.0)), not computed))
    return pd.DataFrame(
        {
            col: meta["constants"][col] if col in meta["constants"] else arrays[f"col_{col}"]
            for col in meta["columns"]
        }
    )


def heads_pieces(results: Sequence[Any]) -> list[tuple[str, float]]:
    """Chapter 2, the frame's cold time: ``(key, seconds)`` of every planted run read from the
    cache (:class:`w2s_utils.engine.heads.HeadsResult`: its stored compute seconds), keyed by its
    configuration, for :func:`w2s_utils.book.frame.glue_frame`."""
    return [
        (f"heads-{cache.config_hash(repr(r.config))}", float(r.seconds))
        for r in results
        if r.cached
    ]


def sweep_pieces() -> list[tuple[str, float]]:
    """Chapter 2, the frame's cold time: ``(key, seconds)`` of every :func:`cached_sweep` of this
    process that was read from the cache (its stored compute time), for
    :func:`w2s_utils.book.frame.glue_frame`."""
    return [(f"ch2-sweep-{k}", s) for k, s, was_cached in _SWEEPS if was_cached]


# ------------------------------------------------------------------------ worked example
def example_table() -> Table:
    """Chapter 2, the worked example: the three vectors, the log-ratios and ``|F_w - F_sw|``."""
    f_star, weak, student = (np.array(EXAMPLE[k]) for k in ("f_star", "weak", "student"))
    df = pd.DataFrame(
        {
            "j": ["class 1", "class 2"],
            "f_star": f_star,
            "weak": weak,
            "student": student,
            "r": np.log(student) - np.log(weak),
            "diff": np.abs(weak - student),
        }
    )
    return present_table(
        df,
        {
            "j": "class j",
            "f_star": "F*_j",
            "weak": "F_w,j",
            "student": "F_sw,j",
            "r": "r_j = log(F_sw,j / F_w,j)",
            "diff": "|F_w,j − F_sw,j|",
        },
        formats={"f_star": ".1f", "weak": ".1f", "student": ".1f", "r": "+.4f", "diff": ".1f"},
        caption="The worked example: one input, two classes",
    )


def example_glue(lf: Any, reached: float, chain: Any, ea: Any, osc: Any) -> dict[str, Any]:
    """Chapter 2, the worked example's numbers (keys ``wx_*``): the label-free interval ``lf``
    (with the truth), the gain ``reached`` by the point mass of its upper end, the chain
    ``chain``, the error-aware interval ``ea`` at ``e = Err(F_w)`` and the oscillation form
    ``osc``."""
    r = np.log(np.array(EXAMPLE["student"])) - np.log(np.array(EXAMPLE["weak"]))
    out = {
        "wx_r1": float(r[0]),
        "wx_r2": float(r[1]),
        "wx_gain": lf.gain,
        "wx_lower": lf.lower,
        "wx_upper": lf.upper,
        "wx_reached": float(reached),
        "wx_share": abs(lf.fraction_used),
        "wx_eps": lf.eps,
        "wx_eps_rev": lf.eps_rev,
        "wx_gamma": chain.gamma,
        "wx_tv": chain.mean_tv,
        "wx_trivial": chain.trivial,
        "wx_err_weak": ea.budget,
        "wx_ea_lower": ea.lower,
        "wx_ea_upper": ea.upper,
        "wx_ea_s_lower": ea.s_lower,
        "wx_ea_s_upper": ea.s_upper,
        "wx_ea_truth_lower": float(ea.truth_lower[0, 0]),
        "wx_ea_osc": ea.osc_half_width,
        "wx_interaction": osc.interaction,
        "wx_osc": osc.mean_osc,
        "wx_osc_mid": osc.mid,
        "wx_osc_rhs": osc.rhs,
        "wx_old_width": osc.old_width,
    }
    out |= {f"wx_{key}": float(getattr(chain, key)) for key, _ in CHAIN[2:]}
    return out


def exercise_glue(curve: Any, budgets: Sequence[float]) -> dict[str, Any]:
    """Chapter 2, the computational exercise: both ends of the worked example's error-aware
    interval (an :class:`~w2s_utils.theory.ErrorAwareCurve`) at each budget of ``budgets``
    (keys ``ex<i>_e``, ``ex<i>_lower``, ``ex<i>_upper``) and the two budgets above which each end
    is the label-free one (``ex_slack_upper`` = -log F_w at argmax r, ``ex_slack_lower``)."""
    b = curve.budgets.numpy()
    out: dict[str, Any] = {}
    for i, e in enumerate(budgets):
        j = int(np.argmin(np.abs(b - e)))
        if not math.isclose(b[j], e, abs_tol=1e-12):
            raise ValueError(f"budgets: {e} is not one of the curve's budgets")
        out |= {
            f"ex{i}_e": float(e),
            f"ex{i}_lower": float(curve.lower[j]),
            f"ex{i}_upper": float(curve.upper[j]),
        }
    weak, student = np.array(EXAMPLE["weak"]), np.array(EXAMPLE["student"])
    r = np.log(student) - np.log(weak)
    out["ex_slack_upper"] = float(-np.log(weak[np.argmax(r)]))
    out["ex_slack_lower"] = float(-np.log(weak[np.argmin(r)]))
    return out


# ---------------------------------------------------------------------------- the checks
_CHECKED = {
    "lf": "label-free interval",
    "attained_upper": "upper end attained",
    "attained_lower": "lower end attained",
    "chain": "chain and two-sided bound",
    "osc": "oscillation and M forms",
    "ea": "error-aware interval",
}


def _merged(checks: Mapping[str, pd.DataFrame]) -> pd.DataFrame:
    """The random check's tables side by side (one row per instance): ``K``, ``gain``, both
    intervals, every link of the chain, ``trivial`` and each table's ``holds``."""
    for key in ("lf", "chain", "ea"):
        if key not in checks:
            raise ValueError(f"checks: missing the {key!r} table ({_CHECKED[key]})")
    lf, chain, ea = checks["lf"], checks["chain"], checks["ea"]
    _require(lf, ["lower", "upper", "gain", "fraction_used", "holds"], "checks['lf']")
    _require(chain, [k for k, _ in CHAIN[2:]] + ["trivial", "holds"], "checks['chain']")
    _require(ea, ["lower", "upper", "holds"], "checks['ea']")
    if not len(lf) == len(chain) == len(ea):
        raise ValueError("checks: the tables must cover the same instances (one row each)")
    out = pd.DataFrame(
        {
            "K": [K_VALUES[i % len(K_VALUES)] for i in range(len(lf))],
            "gain": lf.gain.to_numpy(),
            "lf_lower": lf.lower.to_numpy(),
            "lf_upper": lf.upper.to_numpy(),
            "ea_lower": ea.lower.to_numpy(),
            "ea_upper": ea.upper.to_numpy(),
            "share": lf.fraction_used.abs().to_numpy(),
            "ea_bound": np.maximum(-ea.lower, ea.upper).to_numpy(),
            "lf_bound": np.maximum(-lf.lower, lf.upper).to_numpy(),
            "trivial": chain.trivial.to_numpy(),
        }
    )
    for key, _ in CHAIN[2:]:
        out[key] = chain[key].to_numpy()
    return out


def _not_attained(table: pd.DataFrame, side: str) -> np.ndarray:
    """Rows of a sweep of the label-free interval under the point-mass truth of ``side`` whose
    gain is not that end to 1e-9 (relative or absolute)."""
    _require(table, ["gain", side], f"checks['attained_{side}']")
    return ~np.isclose(table.gain, table[side], rtol=1e-9, atol=1e-9)


def check_table(checks: Mapping[str, pd.DataFrame]) -> Table:
    """Chapter 2, 'A numeric check': per class count, the instances and the failures of each
    checked result (``checks``: the sweep tables ``lf``, ``attained_upper``, ``attained_lower``
    (the label-free interval under the point-mass truths of
    :func:`w2s_utils.theory.worst_case_truth`), ``chain``, ``osc``, ``ea``; a failure is
    ``holds = False``, and for ``attained_*`` a point-mass truth whose gain is not that end of
    the interval to 1e-9)."""
    merged = _merged(checks)
    df = pd.DataFrame({"K": merged.K})
    for key in _CHECKED:
        if key.startswith("attained"):
            fails = _not_attained(checks[key], key.split("_")[1])
        else:
            fails = ~checks[key].holds.astype(bool)
        df[key] = np.asarray(fails, dtype=int)
    grouped = df.groupby("K", sort=True)
    out = grouped.sum().reset_index()
    out.insert(1, "n", grouped.size().to_numpy())
    return present_table(
        out,
        {"K": "classes K", "n": "instances"} | {k: f"{v}: failures" for k, v in _CHECKED.items()},
        caption="Every result on random instances: failures (all should be 0)",
    )


def check_glue(checks: Mapping[str, pd.DataFrame]) -> dict[str, Any]:
    """Chapter 2, 'A numeric check': the number of instances, failures in all, and how much of
    each bound the exact gain uses (medians; keys ``chk_*``)."""
    merged = _merged(checks)
    fails = sum(int((~checks[k].holds.astype(bool)).sum()) for k in ("lf", "chain", "osc", "ea"))
    fails += sum(int(_not_attained(checks[f"attained_{s}"], s).sum()) for s in ("upper", "lower"))
    g = merged.gain.abs()
    return {
        "chk_n": len(merged),
        "chk_fails": fails,
        "chk_share_lf": float(merged.share.median()),
        "chk_share_ea": float((g / merged.ea_bound).median()),
        "chk_share_t1": float((g / merged.bound_tv).median()),
        "chk_t1_over_trivial": float((merged.bound_tv > merged.trivial).mean()),
        "chk_t1_over_lf": float((merged.bound_tv / merged.lf_bound).median()),
        "chk_ea_over_lf": float(
            ((merged.ea_upper - merged.ea_lower) / (merged.lf_upper - merged.lf_lower)).median()
        ),
    }


def share_figure(checks: Mapping[str, pd.DataFrame]) -> Figure:
    """Chapter 2, figure 'fig-ch2-shares': the share |gain| / bound of each bound of the chain
    used by the exact gain on the random instances (box: quartiles; whiskers: 5%-95%)."""
    merged = _merged(checks)
    shares = {label: merged.gain.abs() / merged[key] for key, label in CHAIN}
    shares["log(1/γ)"] = merged.gain.abs() / merged.trivial
    fig, ax = plt.subplots(figsize=(7.0, 4.2))
    data = [s.replace([np.inf, -np.inf], np.nan).dropna().to_numpy() for s in shares.values()]
    ax.boxplot(data, whis=(5, 95), showfliers=False, widths=0.55)
    ax.set_xticks(range(1, len(shares) + 1), list(shares), rotation=35, ha="right", fontsize=9)
    ax.set_ylim(0, 1.02)
    ax.set_ylabel("|gain| / bound (share used)")
    fig.tight_layout()
    return fig


def error_aware_check_glue(ea: pd.DataFrame) -> dict[str, Any]:
    """Chapter 2, the error-aware interval's check (keys ``eac_*``) from the sweep ``ea`` of
    :func:`w2s_utils.theory.error_aware_interval` with each instance's own truth (budget
    ``e = Err(F_w)``): instances, failures (``holds``), the share where the budget binds at the
    upper end, and the certificate of sharpness: the largest gap between an end and the gain of
    the truth that attains it (``gap_*``; that truth's gain cannot exceed the end, the dual value
    cannot fall below it) and the largest excess of that truth's ``Err(F_w)`` over the budget."""
    cols = ["holds", "budget", "binds_upper", "gap_upper", "gap_lower", "err_upper", "err_lower"]
    _require(ea, cols, "ea")
    over = np.maximum(ea.err_upper - ea.budget, ea.err_lower - ea.budget).max()
    return {
        "eac_n": len(ea),
        "eac_fails": int((~ea.holds.astype(bool)).sum()),
        "eac_binds": float(ea.binds_upper.astype(bool).mean()),
        "eac_gap": float(np.maximum(ea.gap_upper, ea.gap_lower).max()),
        "eac_over": float(max(over, 0.0)),
    }


def error_aware_figure(panels: Mapping[str, tuple[Any, float, float | None]]) -> Figure:
    """Chapter 2, figure 'fig-ch2-error-aware': per panel (title -> ``(curve, e, gain)``, an
    :class:`~w2s_utils.theory.ErrorAwareCurve`, the budget to mark and the gain there, or
    ``None``) both ends ``L(e)``, ``U(e)`` against the budget ``e``, the label-free ends (dashed),
    the oscillation relaxation ``-eps ± sqrt(e E[osc^2]/2)`` (dotted) and the line ``gain = e``
    (``s = 1``)."""
    if not panels:
        raise ValueError("panels: give at least one (curve, e, gain) panel")
    fig, axes = plt.subplots(1, len(panels), figsize=(7.0, 4.2), squeeze=False)
    for ax, (title, (curve, e_mark, gain)) in zip(axes[0], panels.items(), strict=True):
        b = curve.budgets.numpy()
        lo, up = curve.lower.numpy(), curve.upper.numpy()
        ax.fill_between(b, lo, up, color="#1b9e77", alpha=0.25, lw=0)
        ax.plot(b, up, color="#1b9e77", lw=2, label="error-aware U(e), L(e)")
        ax.plot(b, lo, color="#1b9e77", lw=2)
        ax.axhline(curve.free_upper, color="0.35", ls="--", lw=1, label="label-free ends")
        ax.axhline(curve.free_lower, color="0.35", ls="--", lw=1)
        half = np.sqrt(b * curve.mean_osc_sq / 2.0)
        ax.plot(b, -curve.eps + half, color="#d95f02", ls=":", lw=1.6, label="oscillation form")
        ax.plot(b, -curve.eps - half, color="#d95f02", ls=":", lw=1.6)
        ax.plot(b, b, color="#7570b3", lw=1, ls="-.", label="gain = e (s = 1)")
        ax.axvline(e_mark, color="0.5", lw=0.8)
        if gain is not None:
            ax.plot([e_mark], [gain], "ko", ms=6, label="the truth's gain", zorder=5)
        pad = 0.15 * (curve.free_upper - curve.free_lower)
        ax.set_ylim(curve.free_lower - pad, curve.free_upper + pad)
        ax.set_xlim(0, b.max())
        ax.set_xlabel("budget e (nats)")
        ax.set_title(title, fontsize=10)
    axes[0, 0].set_ylabel("gain (nats)")
    handles, labels = axes[0, 0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=3, fontsize=9, bbox_to_anchor=(0.5, 0))
    fig.tight_layout(rect=(0, 0.12, 1, 1))
    return fig


# ------------------------------------------------------------------------ no-floor example
def no_floor_table(deltas: Sequence[float], lf: pd.DataFrame, chain: pd.DataFrame) -> Table:
    """Chapter 2, 'Without a floor': per ``delta`` the misfit, the exact gain, the floor, the
    label-free interval, the chain's log form and the two-sided bound (``lf``, ``chain``: the
    sweeps of :func:`w2s_utils.theory.label_free_interval` and
    :func:`w2s_utils.theory.generalization_chain` over
    :func:`w2s_utils.theory.instances.no_floor_instance` at each ``delta``)."""
    df = _no_floor_frame(deltas, lf, chain)
    return present_table(
        df,
        {
            "delta": "δ",
            "eps": "misfit ε",
            "gain": "gain (nats)",
            "gamma": "floor γ",
            "lf": "label-free interval",
            "log_pinsker": "log(1+min(1,√(ε/2))/γ)",
            "bound_eps": "√(ε/2)/γ",
        },
        formats={
            "delta": ".0e",
            "eps": ".2e",
            "gain": "+.3f",
            "gamma": ".0e",
            "log_pinsker": ".2f",
            "bound_eps": ".2e",
        },
        caption="Without a floor: a vanishing misfit, a gain of half a nat",
    )


def _no_floor_frame(deltas: Sequence[float], lf: pd.DataFrame, chain: pd.DataFrame) -> pd.DataFrame:
    _require(lf, ["gain", "lower", "upper", "eps"], "lf")
    _require(chain, ["gamma", "log_pinsker", "bound_eps"], "chain")
    if not len(deltas) == len(lf) == len(chain):
        raise ValueError("deltas, lf, chain: need one row per delta in each")
    lf_text = _interval_text(lf.lower, lf.upper)
    return pd.DataFrame(
        {
            "delta": list(deltas),
            "eps": lf.eps.to_numpy(),
            "gain": lf.gain.to_numpy(),
            "gamma": chain.gamma.to_numpy(),
            "lf": lf_text,
            "log_pinsker": chain.log_pinsker.to_numpy(),
            "bound_eps": chain.bound_eps.to_numpy(),
        }
    )


def no_floor_glue(deltas: Sequence[float], lf: pd.DataFrame, chain: pd.DataFrame) -> dict:
    """Chapter 2, 'Without a floor': the smallest ``delta``'s row (keys ``nf_*``)."""
    df = _no_floor_frame(deltas, lf, chain)
    row = df.iloc[int(np.argmin(df.delta))]
    return {
        "nf_delta": float(row.delta),
        "nf_eps": float(row.eps),
        "nf_gain": float(row.gain),
        "nf_log": float(row.log_pinsker),
        "nf_t1": float(row.bound_eps),
    }


# ------------------------------------------------------------------------- language models
def lm_table(
    runs: Sequence[Any],
    lf: pd.DataFrame,
    ea: pd.DataFrame,
    chain: pd.DataFrame,
    osc: pd.DataFrame,
) -> pd.DataFrame:
    """Chapter 2, 'On language models': one row per run (``dataset``, ``weak``, ``seed``) with
    the gain (CE(F_w) - CE(F_sw)), the label-free interval (``lf_lower``, ``lf_upper``), the
    error-aware interval at ``e`` = the teacher's test cross-entropy (``ea_lower``,
    ``ea_upper``, ``budget``), the oscillation form (``osc_lower``, ``osc_upper``), ``eps``,
    ``eps_rev``, ``share`` (|gain| over its side of the label-free interval), the chain
    (:data:`CHAIN`), ``trivial`` = log(1/γ), ``gamma`` (the raw floor) and ``holds`` (all four
    results hold). ``lf``, ``ea``, ``chain``, ``osc``: the sweeps over :func:`lm_inputs`."""
    tables = {"lf": lf, "ea": ea, "chain": chain, "osc": osc}
    if any(len(t) != len(runs) for t in tables.values()):
        raise ValueError("lf, ea, chain, osc: need one row per run, in the runs' order")
    _require(lf, ["gain", "lower", "upper", "eps", "eps_rev", "fraction_used", "holds"], "lf")
    _require(ea, ["lower", "upper", "budget", "holds"], "ea")
    _require(osc, ["lower", "upper", "holds"], "osc")
    _require(chain, [k for k, _ in CHAIN[2:]] + ["gamma", "trivial", "holds"], "chain")
    out = pd.DataFrame(
        {
            "dataset": [r.config.dataset for r in runs],
            "weak": [r.config.weak for r in runs],
            "seed": [r.config.seed for r in runs],
            "gamma": chain.gamma.to_numpy(),
            "gain": lf.gain.to_numpy(),
            "lf_lower": lf.lower.to_numpy(),
            "lf_upper": lf.upper.to_numpy(),
            "ea_lower": ea.lower.to_numpy(),
            "ea_upper": ea.upper.to_numpy(),
            "budget": ea.budget.to_numpy(),
            "osc_lower": osc.lower.to_numpy(),
            "osc_upper": osc.upper.to_numpy(),
            "eps": lf.eps.to_numpy(),
            "eps_rev": lf.eps_rev.to_numpy(),
            "share": lf.fraction_used.abs().to_numpy(),
            "ea_bound": np.maximum(-ea.lower, ea.upper).to_numpy(),
            "lf_bound": np.maximum(-lf.lower, lf.upper).to_numpy(),
            "trivial": chain.trivial.to_numpy(),
        }
    )
    for key, _ in CHAIN[2:]:
        out[key] = chain[key].to_numpy()
    holds = [t.holds.astype(bool).to_numpy() for t in tables.values()]
    out["holds"] = np.logical_and.reduce(holds)
    return out


def group_means(table: pd.DataFrame, by: Sequence[str] = ("dataset", "weak")) -> pd.DataFrame:
    """Chapter 2: means over seeds of :func:`lm_table` (or :func:`planted_table`) per ``by``."""
    _require(table, list(by), "table")
    return table.groupby(list(by), sort=False).mean(numeric_only=True).reset_index()


def _widths(t: pd.DataFrame) -> dict[str, pd.Series]:
    return {
        "lf": t.lf_upper - t.lf_lower,
        "ea": t.ea_upper - t.ea_lower,
        "osc": t.osc_upper - t.osc_lower,
    }


def lm_glue(lm: pd.DataFrame, clipped: pd.DataFrame, clip_gamma: float) -> dict[str, Any]:
    """Chapter 2, 'On language models': the numbers the text quotes (keys ``lm_*``); ``clipped``
    is the chain's sweep over :func:`clipped_inputs` at ``clip_gamma``."""
    _require(clipped, ["gain", "gamma", "log_pinsker", "bound_tv"], "clipped")
    if len(clipped) != len(lm):
        raise ValueError("clipped: needs one row per run, in the order of lm")
    w = _widths(lm)
    half = (lm.lf_upper - lm.lf_lower) / 2
    gain = lm.gain
    required = 2 * lm.gamma**2 * np.expm1(gain.clip(lower=0)) ** 2
    best = int(np.argmax(gain.to_numpy()))
    return {
        "lm_n": len(lm),
        "lm_fails": int((~lm.holds).sum()),
        "lm_lf_width": float(w["lf"].median()),
        "lm_ea_width": float(w["ea"].median()),
        "lm_osc_width": float(w["osc"].median()),
        "lm_ea_over_lf": float((w["ea"] / w["lf"]).median()),
        "lm_budget_min": float(lm.budget.min()),
        "lm_budget_max": float(lm.budget.max()),
        "lm_lf_lower_min": float(lm.lf_lower.min()),
        "lm_lf_upper_max": float(lm.lf_upper.max()),
        "lm_ea_lower_min": float(lm.ea_lower.min()),
        "lm_ea_upper_max": float(lm.ea_upper.max()),
        "lm_lower_slack": int(((lm.ea_lower - lm.lf_lower).abs() <= 1e-9).sum()),
        "lm_half_median": float(half.median()),
        "lm_share_median": float(lm.share.median()),
        "lm_share_min": float(lm.share.min()),
        "lm_share_max": float(lm.share.max()),
        "lm_abs_gain_min": float(gain.abs().min()),
        "lm_abs_gain_max": float(gain.abs().max()),
        "lm_gain_max": float(gain.max()),
        "lm_gamma_raw": float(lm.gamma.median()),
        "lm_t1_raw": float(lm.bound_tv.median()),
        "lm_t1_raw_max": float(lm.bound_tv.max()),
        "lm_t1_over_trivial": int((lm.bound_tv > lm.trivial).sum()),
        "lm_trivial_raw": float(lm.trivial.median()),
        "lm_t1_over_half": float((lm.bound_tv / half).median()),
        "lm_required_eps": float(required.iloc[best]),
        "lm_eps_min": float(lm.eps.min()),
        "lm_eps_max": float(lm.eps.max()),
        "lm_clip_gamma": float(clip_gamma),
        "lm_clipped_runs": int((lm.gamma < clip_gamma).sum()),
        "lm_t1_clip": float(clipped.bound_tv.median()),
        "lm_log_pinsker_clip": float(clipped.log_pinsker.median()),
        "lm_clip_moved": float((clipped.gain.to_numpy() - gain.to_numpy()).__abs__().max()),
    }


def headline_glue(lm_values: Mapping[str, Any]) -> dict[str, str]:
    """Chapter 2, the frame's main result as one sentence with its numbers (key ``headline``),
    from :func:`lm_glue`'s values."""
    v = lm_values
    return {
        "headline": (
            f"On chapter 1's {v['lm_n']} language-model runs the two-sided bound is a median "
            f"{v['lm_t1_over_half']:.0f} times wider "
            "than the sharp label-free interval, and wider than the trivial log(1/γ) in "
            f"{v['lm_t1_over_trivial']} of {v['lm_n']} runs: correct, and vacuous. The sharp "
            f"interval has median width {v['lm_lf_width']:.2f} nats; knowing the teacher's "
            f"error narrows it to {v['lm_ea_width']:.2f}"
        )
    }


def lm_interval_table(groups: pd.DataFrame) -> Table:
    """Chapter 2, table 'the intervals per teacher': means over seeds per dataset and teacher of
    the gain, the teacher's test cross-entropy ``e``, the three intervals and the two-sided
    bound's half-width."""
    _require(groups, ["dataset", "weak", "gain", "budget", "bound_tv"], "groups")
    df = groups.assign(
        lf=_interval_text(groups.lf_lower, groups.lf_upper),
        ea=_interval_text(groups.ea_lower, groups.ea_upper),
        osc=_interval_text(groups.osc_lower, groups.osc_upper),
    )
    return present_table(
        df,
        {
            "dataset": "data set",
            "weak": "teacher",
            "gain": "gain (nats)",
            "budget": "e = CE(F_w)",
            "ea": "error-aware interval",
            "lf": "label-free interval",
            "osc": "oscillation form",
            "bound_tv": "two-sided bound ±",
        },
        formats={"gain": "+.3f", "budget": ".3f", "bound_tv": ".1f"},
        caption="Means over seeds (nats): every interval contains the gain",
    )


def _interval_text(lo: pd.Series, hi: pd.Series, fmt: str = "+.3f") -> list[str]:
    return [format_interval(0.0, a, b, fmt).split(" ", 1)[1] for a, b in zip(lo, hi, strict=True)]


def interval_figure(
    groups: pd.DataFrame, paired: pd.DataFrame, datasets: Sequence[str], order: Sequence[str]
) -> Figure:
    """Chapter 2, figure 'fig-ch2-intervals': per dataset and teacher (means over seeds), the
    label-free interval (light bar), the error-aware interval (dark bar), the oscillation form
    (bracket) and the measured gain with its 95% interval over seeds and test examples
    (:func:`w2s_utils.analysis.paired_table`), on a linear axis."""
    _require(paired, ["dataset", "weak", "gain", "gain_lo", "gain_hi"], "paired")
    df = groups.merge(
        paired[["dataset", "weak", "gain_lo", "gain_hi"]], on=["dataset", "weak"], how="left"
    )
    fig, axes = plt.subplots(1, len(datasets), figsize=(7.0, 4.0), squeeze=False, sharey=True)
    for ax, ds in zip(axes[0], datasets, strict=True):
        sub = df[df.dataset == ds].set_index("weak").reindex(list(order)).dropna(subset=["gain"])
        xs = np.array([list(order).index(w) for w in sub.index], dtype=float)
        ax.bar(xs, sub.lf_upper - sub.lf_lower, bottom=sub.lf_lower, width=0.6, color="0.85",
               edgecolor="0.6", label="label-free interval")  # fmt: skip
        ax.bar(xs, sub.ea_upper - sub.ea_lower, bottom=sub.ea_lower, width=0.36,
               color="#1b9e77", alpha=0.55, label="error-aware, e = CE(F_w)")  # fmt: skip
        ax.errorbar(xs + 0.38, (sub.osc_upper + sub.osc_lower) / 2,
                    yerr=(sub.osc_upper - sub.osc_lower) / 2, fmt="none", ecolor="#d95f02",
                    capsize=4, lw=1.4, label="oscillation form")  # fmt: skip
        yerr = np.vstack([sub.gain - sub.gain_lo, sub.gain_hi - sub.gain]).clip(min=0)
        ax.errorbar(xs, sub.gain, yerr=yerr, fmt="o", color="k", ms=5, capsize=3,
                    label="measured gain (95% interval)", zorder=5)  # fmt: skip
        ax.axhline(0, color="0.3", lw=0.8)
        ax.set_xticks(range(len(order)), list(order), rotation=20, ha="right", fontsize=9)
        ax.set_title(ds, fontsize=10)
    axes[0, 0].set_ylabel("gain (nats)")
    handles, labels = axes[0, 0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=2, fontsize=9, bbox_to_anchor=(0.5, 0))
    fig.tight_layout(rect=(0, 0.16, 1, 1))
    return fig


def chain_figure(panels: Mapping[str, pd.DataFrame]) -> Figure:
    """Chapter 2, figures 'fig-ch2-chain' and 'fig-ch2-chain-planted': one panel per table
    (title -> rows with the :data:`CHAIN` columns, ``gain``, ``trivial`` and a ``label``), one
    line per row through |gain| and every bound of the chain on a log axis (a ratio axis: one
    gridline is a factor of 10), and the trivial log(1/γ) as a cross at the right. The panels are
    stacked, each the full width, with the legend below."""
    if not panels:
        raise ValueError("panels: give at least one table")
    n = len(panels)
    fig, axes = plt.subplots(n, 1, figsize=(7.0, 4.8 * n), squeeze=False)
    labels = ["|gain|", *(lab for _, lab in CHAIN), "log(1/γ) (trivial)"]
    for ax, (title, df) in zip(axes[:, 0], panels.items(), strict=True):
        _require(df, ["gain", "trivial", "label", *(k for k, _ in CHAIN)], title)
        for _, row in df.iterrows():
            vals = [abs(row.gain), *(row[key] for key, _ in CHAIN)]
            line = ax.plot(range(len(vals)), vals, marker="o", ms=4, lw=1.2, label=row.label)
            ax.scatter([len(vals)], [row.trivial], marker="x", s=45, color=line[0].get_color())
        ax.set_yscale("log")
        ax.set_xticks(range(len(labels)), labels, rotation=35, ha="right", fontsize=9)
        ax.set_ylabel("nats (log scale)")
        ax.set_title(title, fontsize=10)
        ax.grid(True, which="major", axis="y", alpha=0.4)
        ax.legend(fontsize=9, ncol=2, loc="upper center", bbox_to_anchor=(0.5, -0.42))
    fig.tight_layout()
    return fig


def clip_table(lm: pd.DataFrame, clipped: Mapping[float, pd.DataFrame]) -> Table:
    """Chapter 2, table 'clipping': medians over the runs at the raw floor and at each clipping
    floor (``clipped``: floor -> the chain's sweep over :func:`clipped_inputs`): the floor, how
    many runs were clipped, E max|r|, the log form, the two-sided bound, log(1/γ) and the largest
    change of the measured gain."""
    rows = [_clip_row("raw floor", lm, lm.gain, 0)]
    for g, t in clipped.items():
        _require(t, ["gain", "gamma", "log_pinsker", "bound_tv", "trivial"], f"clipped[{g}]")
        rows.append(_clip_row(f"γ = {g:g}", t, lm.gain, int((lm.gamma < g).sum())))
    return present_table(
        pd.DataFrame(rows),
        {
            "floor": "floor",
            "gamma": "median γ",
            "clipped": "runs clipped",
            "first": "E max|r|",
            "log_pinsker": "log(1+min(1,√(ε/2))/γ)",
            "bound_tv": "E TV/γ (two-sided)",
            "trivial": "log(1/γ)",
            "moved": "largest |gain change|",
        },
        formats={"gamma": ".1e", "bound_tv": ".1f", "moved": ".4f"},
        caption="Language-model runs at each floor (medians over runs, nats)",
    )


def _clip_row(name: str, t: pd.DataFrame, raw_gain: pd.Series, clipped: int) -> dict:
    return {
        "floor": name,
        "gamma": float(t.gamma.median()),
        "clipped": clipped,
        "first": float(t.mean_max_abs_log_ratio.median()),
        "log_pinsker": float(t.log_pinsker.median()),
        "bound_tv": float(t.bound_tv.median()),
        "trivial": float(t.trivial.median()),
        "moved": float(np.abs(t.gain.to_numpy() - raw_gain.to_numpy()).max()),
    }


def per_run_table(lm: pd.DataFrame) -> Table:
    """Chapter 2, 'Every run': one row per language-model run with the gain, the three intervals,
    the share of its side of the label-free interval used, the raw floor and the two-sided
    bound."""
    df = lm.assign(
        lf=_interval_text(lm.lf_lower, lm.lf_upper),
        ea=_interval_text(lm.ea_lower, lm.ea_upper),
        osc=_interval_text(lm.osc_lower, lm.osc_upper),
    )
    return present_table(
        df,
        {
            "dataset": "data set",
            "weak": "teacher",
            "seed": "seed",
            "gain": "gain",
            "budget": "e = CE(F_w)",
            "ea": "error-aware",
            "lf": "label-free",
            "osc": "oscillation form",
            "share": "share used",
            "gamma": "raw floor γ",
            "bound_tv": "E TV/γ",
        },
        formats={
            "gain": "+.4f",
            "budget": ".3f",
            "share": ".0%",
            "gamma": ".1e",
            "bound_tv": ".1f",
        },
        caption="Every language-model run (nats; hard test labels as the truth)",
    )


# ----------------------------------------------------------------------------- statistics
def statistics_table(paired: pd.DataFrame) -> Table:
    """Chapter 2, table 'which differences are significant': per dataset and teacher the gain
    and the accuracy gain with the seed-only interval and the interval over seeds and test
    examples (:func:`w2s_utils.analysis.paired_table` with ``seed_only=True``)."""
    cols = ["dataset", "weak", "n_seeds"]
    for q in ("gain", "acc_gain"):
        cols += [q, f"{q}_lo", f"{q}_hi", f"{q}_seed_lo", f"{q}_seed_hi"]
    _require(paired, cols, "paired")
    df = paired.assign(gain_s=paired.gain, acc_gain_s=paired.acc_gain)
    return present_table(
        df,
        {
            "dataset": "data set",
            "weak": "teacher",
            "n_seeds": "seeds",
            "gain_s": "gain, seeds only",
            "gain": "gain, seeds × test",
            "acc_gain_s": "accuracy gain, seeds only",
            "acc_gain": "accuracy gain, seeds × test",
        },
        formats={"gain_s": "+.3f", "gain": "+.3f", "acc_gain_s": "+.3f", "acc_gain": "+.3f"},
        intervals={
            "gain_s": ("gain_seed_lo", "gain_seed_hi"),
            "gain": ("gain_lo", "gain_hi"),
            "acc_gain_s": ("acc_gain_seed_lo", "acc_gain_seed_hi"),
            "acc_gain": ("acc_gain_lo", "acc_gain_hi"),
        },
        caption="Gain (CE(F_w) − CE(F_sw), nats) and accuracy gain with 95% intervals",
    )


def _excludes_zero(lo: pd.Series, hi: pd.Series) -> pd.Series:
    return (lo > 0) | (hi < 0)


def statistics_glue(
    paired: pd.DataFrame, example: tuple[str, str] = ("sarcasm", "tiny-transformer")
) -> dict[str, Any]:
    """Chapter 2, 'Which differences are significant' (keys ``st_*``): the cells whose gain and
    accuracy gain are above or below zero by the interval over seeds and test examples, the
    claims a seed-only interval would add, the number of comparisons, and the ``example`` cell
    (dataset, teacher) with both intervals and its verdict."""
    _require(paired, ["dataset", "weak", "n_seeds", "gain", "gain_lo", "gain_hi"], "paired")
    out: dict[str, Any] = {"st_n": len(paired), "n_comparisons": 2 * len(paired)}
    out["st_expected_false"] = 0.05 * out["n_comparisons"]
    out["st_seeds"] = int(paired.n_seeds.min())
    for q, tag in (("gain", "ce"), ("acc_gain", "acc")):
        both = _excludes_zero(paired[f"{q}_lo"], paired[f"{q}_hi"])
        seed = _excludes_zero(paired[f"{q}_seed_lo"], paired[f"{q}_seed_hi"])
        out[f"st_{tag}_up"] = names_where(paired, paired[f"{q}_lo"] > 0)
        out[f"st_{tag}_down"] = names_where(paired, paired[f"{q}_hi"] < 0)
        out[f"st_{tag}_lost"] = names_where(paired, seed & ~both)
        out[f"st_{tag}_n_seed"] = int(seed.sum())
        out[f"st_{tag}_n_both"] = int(both.sum())
    ds, weak = example
    row = paired[(paired.dataset == ds) & (paired.weak == weak)]
    if len(row) != 1:
        raise ValueError(f"example: no single cell {weak} on {ds} in paired")
    r = row.iloc[0]
    out["st_ex_name"] = f"{weak} on {ds}"
    out["st_ex_seed"] = format_interval(r.gain, r.gain_seed_lo, r.gain_seed_hi, "+.3f")
    out["st_ex_both"] = format_interval(r.gain, r.gain_lo, r.gain_hi, "+.3f")
    out["st_ex_verdict"] = verdict(r.gain_lo, r.gain_hi, above="above", below="below")
    out["st_ex_seed_verdict"] = verdict(
        r.gain_seed_lo, r.gain_seed_hi, above="above", below="below"
    )
    return out


def correlation_glue(per_run: pd.DataFrame, n_permutations: int = 2000, seed: int = 0) -> dict:
    """Chapter 2, 'Correlations across runs' (keys ``corr_*``): corr(eps, gain) and corr(eps,
    interaction) across runs (:func:`w2s_utils.analysis.per_run_table`), the second also with
    the gains permuted across runs (mean over permutations), since interaction = gain + eps is
    correlated with eps by construction; and how many correlations the text reports."""
    _require(per_run, ["eps", "gain"], "per_run")
    eps, gain = per_run.eps.to_numpy(), per_run.gain.to_numpy()
    rng = np.random.default_rng(seed)
    perm = [np.corrcoef(eps, rng.permutation(gain) + eps)[0, 1] for _ in range(n_permutations)]
    return {
        "corr_n": len(per_run),
        "corr_n_comparisons": 2,
        "corr_eps_gain": float(np.corrcoef(eps, gain)[0, 1]),
        "corr_eps_iota": float(np.corrcoef(eps, gain + eps)[0, 1]),
        "corr_eps_iota_perm": float(np.mean(perm)),
    }


# --------------------------------------------------------------------------------- planted
def planted_table(
    results: Sequence[Any],
    lf: pd.DataFrame,
    ea: pd.DataFrame,
    ea_ce: pd.DataFrame,
    osc: pd.DataFrame,
    chain: pd.DataFrame,
) -> pd.DataFrame:
    """Chapter 2, the planted task: :func:`lm_table`'s columns for each planted run (every
    ``Err`` exact against ``F*``; ``budget`` = the exact ``Err(F_w)``), with the teacher
    (``weak``, ``teacher_n``, ``label`` = "weak, n = ...") and the error-aware interval at the
    budget a gold-label test set would give, the teacher's test cross-entropy (``ce_lower``,
    ``ce_upper``, ``ce_budget``; ``ea_ce``)."""
    out = lm_table(results, lf, ea, chain, osc)
    _require(ea_ce, ["lower", "upper", "budget", "holds"], "ea_ce")
    if len(ea_ce) != len(results):
        raise ValueError("ea_ce: needs one row per run")
    out = out.drop(columns="dataset")
    out.insert(1, "teacher_n", [r.config.teacher_n for r in results])
    out.insert(2, "label", [_teacher_label(r.config) for r in results])
    out["ce_lower"] = ea_ce.lower.to_numpy()
    out["ce_upper"] = ea_ce.upper.to_numpy()
    out["ce_budget"] = ea_ce.budget.to_numpy()
    out["holds"] = out.holds & ea_ce.holds.astype(bool).to_numpy()
    return out


def _teacher_label(cfg: Any) -> str:
    n = cfg.teacher_n if cfg.teacher_n else cfg.sizes.weak_train
    return f"{cfg.weak}, {n} examples"


def planted_summary(pl: pd.DataFrame, exact: Mapping[tuple, Any]) -> Table:
    """Chapter 2, table 'planted': per teacher (means over seeds) the exact ``Err(F_w)``, the
    exact gain with its 95% interval over seeds and test examples (``exact``: (weak,
    teacher_n) -> :class:`w2s_utils.metrics.Interval`), the error-aware interval at the exact
    ``e`` and at ``e`` = the teacher's test cross-entropy, the label-free interval and the
    oscillation form."""
    g = group_means(pl, ("weak", "teacher_n", "label"))
    lo, hi = [], []
    for w, n in zip(g.weak, g.teacher_n, strict=True):
        if (w, n) not in exact:
            raise ValueError(f"exact: no interval for the teacher ({w!r}, {n})")
        lo.append(exact[(w, n)].lo)
        hi.append(exact[(w, n)].hi)
    df = g.assign(
        gain_lo=lo,
        gain_hi=hi,
        ea=_interval_text(g.ea_lower, g.ea_upper),
        ce=_interval_text(g.ce_lower, g.ce_upper),
        lf=_interval_text(g.lf_lower, g.lf_upper),
        osc=_interval_text(g.osc_lower, g.osc_upper),
    )
    return present_table(
        df,
        {
            "label": "teacher",
            "budget": "Err(F_w)",
            "gain": "exact gain",
            "ea": "error-aware, e = Err(F_w)",
            "ce": "error-aware, e = CE(F_w)",
            "lf": "label-free",
            "osc": "oscillation form",
        },
        formats={"budget": ".3f", "gain": "+.3f"},
        intervals={"gain": ("gain_lo", "gain_hi")},
        caption="Planted task, means over seeds (nats); the gain with its 95% interval",
    )


def planted_glue(pl: pd.DataFrame, exact: Mapping[tuple, Any]) -> dict[str, Any]:
    """Chapter 2, the planted task's numbers (keys ``pl_*``)."""
    w = _widths(pl)
    ce_width = pl.ce_upper - pl.ce_lower
    above = [k for k, iv in exact.items() if iv.lo > 0]
    return {
        "pl_runs": len(pl),
        "pl_teachers": pl.label.nunique(),
        "pl_seeds": int(pl.groupby("label").size().min()),
        "pl_fails": int((~pl.holds).sum()),
        "pl_err_min": float(pl.groupby("label").budget.mean().min()),
        "pl_err_max": float(pl.groupby("label").budget.mean().max()),
        "pl_improved": len(above),
        "pl_lf_width": float(w["lf"].median()),
        "pl_ea_width": float(w["ea"].median()),
        "pl_ce_width": float(ce_width.median()),
        "pl_osc_width": float(w["osc"].median()),
        "pl_ea_lower": float(pl.ea_lower.median()),
        "pl_ea_upper": float(pl.ea_upper.median()),
        "pl_lf_lower": float(pl.lf_lower.median()),
        "pl_lf_upper": float(pl.lf_upper.median()),
        "pl_share": float(pl.share.median()),
        "pl_gamma": float(pl.gamma.median()),
        "pl_t1": float(pl.bound_tv.median()),
        "pl_t1_over_trivial": int((pl.bound_tv > pl.trivial).sum()),
        "pl_corr_width_err": float(np.corrcoef(pl.budget, w["ea"])[0, 1]),
    }


def planted_interval_figure(pl: pd.DataFrame) -> Figure:
    """Chapter 2, figure 'fig-ch2-planted': every planted run's error-aware interval width
    (filled circle) and label-free interval width (open triangle) against the teacher's exact
    error ``Err(F_w)``, one colour per teacher; the legends below the axes."""
    _require(pl, ["label", "budget", "lf_lower", "lf_upper", "ea_lower", "ea_upper"], "pl")
    w = _widths(pl)
    fig, ax = plt.subplots(figsize=(7.0, 4.6))
    teachers = []
    for i, (label, idx) in enumerate(pl.groupby("label", sort=False).groups.items()):
        color = plt.get_cmap("Dark2")(i)
        ax.scatter(pl.budget[idx], w["ea"][idx], color=color, marker="o", s=24)
        ax.scatter(pl.budget[idx], w["lf"][idx], edgecolors=color, marker="^", s=24,
                   facecolors="none")  # fmt: skip
        teachers.append(Patch(color=color, label=label))
    kinds = [
        Line2D([], [], ls="", marker="o", color="0.3", label="error-aware, e = Err(F_w)"),
        Line2D([], [], ls="", marker="^", mfc="none", color="0.3", label="label-free"),
    ]
    ax.set_xlabel("teacher's exact error Err(F_w) (nats)")
    ax.set_ylabel("interval width (nats)")
    ax.set_ylim(bottom=0)
    ax.legend(handles=teachers + kinds, fontsize=9, ncol=3, loc="upper center",
              bbox_to_anchor=(0.5, -0.16))  # fmt: skip
    fig.tight_layout()
    return fig
