"""Chapter 2 (two-sided generalization bounds): its tables, figures and glued findings.

The results themselves are computed by :mod:`w2s_utils.theory.generalization`
(``label_free_interval``, ``worst_case_truth``, ``generalization_chain``,
``generalization_bound``, ``oscillation_bound``, ``misfit_centred_bound``). This module runs them
on random instances (:func:`w2s_utils.theory.instances.floored_triple`,
:func:`~w2s_utils.theory.instances.unfloored_triple`), on the language-model runs of chapter 1 and
on the planted task, and turns them into the frames, figures and glue values the chapter shows.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
import torch
from matplotlib import pyplot as plt
from matplotlib.figure import Figure
from tqdm.auto import tqdm

from w2s_utils import theory
from w2s_utils.book import plots
from w2s_utils.book.results import fmt_interval, names_where, with_err_change
from w2s_utils.engine.planted import planted_task
from w2s_utils.theory import instances

__all__ = [
    "K_VALUES",
    "LINKS",
    "EXAMPLE",
    "positive",
    "worked_example",
    "random_check",
    "check_summary",
    "check_glue",
    "share_figure",
    "clipping_sweep",
    "sweep_glue",
    "sweep_figure",
    "no_floor_table",
    "no_floor_glue",
    "run_bounds",
    "group_means",
    "interval_figure",
    "chain_figure",
    "lm_glue",
    "statistics_table",
    "statistics_glue",
    "correlation_glue",
    "planted_runs",
    "planted_table",
    "planted_glue",
    "per_run_table",
    "clip_table",
    "planted_interval_figure",
]

#: Class counts of the random check, cycled over the instances.
K_VALUES = (2, 3, 4, 5, 8)

#: The chain's links in order (field of ``GeneralizationChainResult``, short label).
LINKS = (
    ("mean_max_abs_log_ratio", "E max|ℓ|"),
    ("mean_log_tv", "E log(1+TV/γ)"),
    ("log_mean_tv", "log(1+E TV/γ)"),
    ("log_pinsker", "log(1+min(1,√(ε/2))/γ)"),
    ("bound_tv", "E TV/γ"),
    ("bound_eps", "√(ε/2)/γ"),
)

#: The chapter's worked example (one input, K = 2): the same three vectors as chapter 1's.
EXAMPLE = {"f_star": (0.9, 0.1), "weak": (0.6, 0.4), "student": (0.8, 0.2)}

_LIFT = 1e-12  # probabilities that underflowed to exactly 0 are lifted to this floor


@contextlib.contextmanager
def _one_thread() -> Iterator[None]:
    """Thousands of tiny tensors: threading only adds overhead."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def _f64(p: Any) -> torch.Tensor:
    if isinstance(p, torch.Tensor):
        return p.detach().to(dtype=torch.float64, device="cpu")
    return torch.as_tensor(np.array(p, dtype=np.float64))  # a copy: cached arrays are read-only


def positive(p: Any) -> torch.Tensor:
    """``p`` as float64, unchanged if strictly positive, else clipped to the floor 1e-12.

    A model's probabilities can underflow to exactly 0; every result of the chapter needs
    positive predictions, and lifting those entries to 1e-12 changes nothing else
    (:func:`w2s_utils.theory.ensure_floor` with ``zeros_only=True``: the I-projection onto the
    floor, applied only where a zero occurs).
    """
    return theory.ensure_floor(_f64(p), _LIFT, zeros_only=True)


# ------------------------------------------------------------------------- worked example
def worked_example() -> tuple[pd.DataFrame, dict[str, float]]:
    """The K = 2 example traced through the proof: a per-class table and every step's value."""
    f_star, weak, student = (np.array(EXAMPLE[k])[None] for k in ("f_star", "weak", "student"))
    lf = theory.label_free_interval(weak, student, f_star=f_star)
    ch = theory.generalization_chain(weak, student, f_star=f_star)
    osc = theory.oscillation_bound(weak, student, f_star=f_star)
    # ΔErr sign (Err(F_sw) - Err(F_w) = -gain) for the chapter's text until it is rewritten:
    # its upper end is the lower end of the gain, attained by the truth at argmin_j r_j
    top = theory.worst_case_truth(weak, student, "lower")
    attained = -theory.label_free_interval(weak, student, f_star=top).gain
    log_ratio = np.log(weak[0] / student[0])
    table = pd.DataFrame(
        {
            "F*": f_star[0],
            "F_w": weak[0],
            "F_sw": student[0],
            "ℓ_j = log(F_w,j / F_sw,j)": log_ratio,
            "|F_w,j − F_sw,j|": np.abs(weak[0] - student[0]),
        },
        index=pd.Index(["class 1", "class 2"], name="j"),
    )
    values = {
        "wx_l1": float(log_ratio[0]),
        "wx_l2": float(log_ratio[1]),
        "wx_change": -lf.gain,
        "wx_lower": -lf.upper,
        "wx_upper": -lf.lower,
        "wx_attained": attained,
        "wx_share": abs(lf.fraction_used),
        "wx_eps": lf.eps,
        "wx_eps_rev": lf.eps_rev,
        "wx_gamma": ch.gamma,
        "wx_tv": ch.mean_tv,
        "wx_err_weak": osc.loss_weak,
        "wx_interaction": -osc.interaction,
        "wx_osc": osc.mean_osc,
        "wx_osc_mid": osc.mid,
        "wx_osc_rhs": osc.rhs,
        "wx_old_width": osc.old_width,
        "wx_trivial": ch.trivial,
        **{f"wx_{key}": float(getattr(ch, key)) for key, _ in LINKS},
    }
    return table.round(4), values


# --------------------------------------------------------------------------- random check
def _close(a: float, b: float, tol: float) -> bool:
    return math.isclose(a, b, rel_tol=tol, abs_tol=tol)


def _check_row(f_star: torch.Tensor, weak: torch.Tensor, student: torch.Tensor) -> dict:
    """Every result of the chapter on one instance (gain convention: ``gain``, ``lower``,
    ``upper`` of the gain ``Err(F_w) - Err(F_sw)``)."""
    lf = theory.label_free_interval(weak, student, f_star=f_star)
    ends = [
        theory.label_free_interval(
            weak, student, f_star=theory.worst_case_truth(weak, student, side)
        ).gain
        for side in ("upper", "lower")
    ]
    ch = theory.generalization_chain(weak, student, f_star=f_star)
    t1 = theory.generalization_bound(weak, student, f_star=f_star)
    osc = theory.oscillation_bound(weak, student, f_star=f_star)
    alt = theory.misfit_centred_bound(weak, student, f_star=f_star)
    return {
        "K": int(weak.shape[1]),
        "gamma": ch.gamma,
        "gain": lf.gain,
        "lower": lf.lower,
        "upper": lf.upper,
        "eps": lf.eps,
        "eps_rev": lf.eps_rev,
        "share_interval": abs(lf.fraction_used) if lf.fraction_used is not None else math.nan,
        "interval_holds": lf.holds,
        "attained": _close(ends[0], lf.upper, 1e-9) and _close(ends[1], lf.lower, 1e-9),
        **{key: float(getattr(ch, key)) for key, _ in LINKS},
        "trivial": ch.trivial,
        "chain_holds": ch.holds,
        "t1_holds": t1.holds,
        "err_weak": osc.loss_weak,
        "osc_lhs": osc.lhs,
        "osc_width": osc.rhs,
        "old_width": osc.old_width,
        "osc_holds": osc.holds,
        "alt_holds": alt.holds,
    }


def random_check(n_instances: int, *, n_inputs: int = 30) -> pd.DataFrame:
    """Every result of the chapter on ``n_instances`` random instances with a known ``F*``.

    Instance ``i`` is :func:`~w2s_utils.theory.instances.floored_triple` with ``K`` cycling
    through :data:`K_VALUES`, checked with :func:`w2s_utils.theory.sweep`. One row per instance:
    the exact ``gain`` (``Err(F_w) - Err(F_sw)``), the sharp interval of the gain (``lower``,
    ``upper``) and whether it ``attained`` both ends with the point-mass truths of
    ``worst_case_truth``, every link of the chain, Theorem 1, the oscillation form
    (``osc_width``) and the old ``M`` form (``old_width``), and a ``*_holds`` flag per result.
    """
    triples = (
        instances.floored_triple(100_000 * k + i, k, n_inputs=n_inputs)
        for i, k in ((i, K_VALUES[i % len(K_VALUES)]) for i in range(n_instances))
    )
    return theory.sweep(_check_row, triples, n_instances)


_HOLDS = {
    "interval_holds": "sharp interval",
    "attained": "ends attained",
    "chain_holds": "chain",
    "t1_holds": "Theorem 1",
    "osc_holds": "oscillation form",
    "alt_holds": "M form",
}


def check_summary(check: pd.DataFrame) -> Any:
    """Failures of each result by class count (all should be 0) and median shares used."""
    grouped = check.groupby("K")
    out = pd.DataFrame({"instances": grouped.size()})
    for col, name in _HOLDS.items():
        out[f"{name}: fails"] = grouped[col].apply(lambda h: int((~h.astype(bool)).sum()))
    out["median share of the sharp side"] = grouped.share_interval.median()
    out["median share of Theorem 1"] = grouped.apply(
        lambda g: (g.gain.abs() / g.bound_tv).median(), include_groups=False
    )
    out["Theorem 1 > log(1/γ)"] = grouped.apply(
        lambda g: (g.bound_tv > g.trivial).mean(), include_groups=False
    )
    fmt = {c: "{:.1%}" for c in out.columns if c.startswith(("median", "Theorem 1 >"))}
    return out.style.format(fmt).set_caption(
        "Every result on random instances: failures (the ends of the sharp interval count as "
        "attained when the point-mass truth reproduces them to 1e-9), and how much of each "
        "bound the exact change uses"
    )


def check_glue(check: pd.DataFrame) -> dict[str, Any]:
    share_t1 = check.gain.abs() / check.bound_tv
    return {
        "chk_n": len(check),
        "chk_fails": int(sum((~check[c].astype(bool)).sum() for c in _HOLDS)),
        "chk_attained": float(check.attained.mean()),
        "chk_share_interval": float(check.share_interval.median()),
        "chk_share_t1": float(share_t1.median()),
        "chk_share_max_abs": float((check.gain.abs() / check.mean_max_abs_log_ratio).median()),
        "chk_t1_over_trivial": float((check.bound_tv > check.trivial).mean()),
        "chk_t1_over_sharp": float((check.bound_tv / check.mean_max_abs_log_ratio).median()),
        "chk_osc_over_old": float((check.osc_width / check.old_width).median()),
    }


def share_figure(check: pd.DataFrame) -> Figure:
    """How much of each bound the exact change uses, one box per link (linear axis, 0 to 1)."""
    shares = {"sharp side": check.share_interval}
    shares |= {label: check.gain.abs() / check[key] for key, label in LINKS}
    shares["log(1/γ)"] = check.gain.abs() / check.trivial
    fig, ax = plt.subplots(figsize=(9.5, 3.8))
    data = [s.dropna().to_numpy() for s in shares.values()]
    ax.boxplot(data, whis=(5, 95), showfliers=False, widths=0.55)
    ax.set_xticks(range(1, len(shares) + 1), list(shares), rotation=20, ha="right")
    ax.set_ylim(0, 1.02)
    ax.set_ylabel("|gain| / bound  (share used)")
    ax.set_title(
        f"{len(check)} random instances: share of each bound used "
        "(box: quartiles, whiskers: 5%–95%)"
    )
    fig.tight_layout()
    return fig


# ------------------------------------------------------------------------------- clipping
def clipping_sweep(
    n_instances: int = 300, gammas: Sequence[float] = tuple(np.geomspace(1e-4, 0.2, 12))
) -> pd.DataFrame:
    """Clip unfloored instances to each floor ``gamma < 1/K`` and recompute the chain.

    Instance ``i`` is :func:`~w2s_utils.theory.instances.unfloored_triple` with ``K = 2 + i % 4``.
    ``gamma >= 1/K`` is skipped: clipped to ``1/K`` both predictors are uniform, the change is 0
    and its share of every bound is 0/0 (the frame's ``attrs["skipped"]`` counts those pairs).
    Columns: ``instance``, ``K``, ``gamma``, ``raw_gamma``, ``raw_change`` and
    ``clipped_change`` (exact ``|ΔErr|``), ``share_sharp`` (``|ΔErr|`` over its side of the
    sharp interval), the chain links, ``trivial``, ``holds``.
    """
    rows, skipped = [], 0
    with _one_thread():
        for i in tqdm(range(n_instances), desc="clipping sweep", leave=False):
            k = 2 + i % 4
            f_star, weak, student = instances.unfloored_triple(7_000 + i, k)
            raw = theory.label_free_interval(weak, student, f_star=f_star)
            raw_gamma = float(min(weak.min(), student.min()))
            for g in gammas:
                if g >= 1.0 / k:
                    skipped += 1
                    continue
                cw, cs = theory.clip_to_floor(weak, g), theory.clip_to_floor(student, g)
                lf = theory.label_free_interval(cw, cs, f_star=f_star)
                ch = theory.generalization_chain(cw, cs, gamma=float(g), f_star=f_star)
                share = abs(lf.fraction_used) if lf.fraction_used is not None else math.nan
                rows.append(
                    {
                        "instance": i,
                        "K": k,
                        "gamma": float(g),
                        "raw_gamma": raw_gamma,
                        "raw_change": abs(raw.gain),
                        "clipped_change": abs(lf.gain),
                        "share_sharp": share,
                        **{key: float(getattr(ch, key)) for key, _ in LINKS},
                        "trivial": ch.trivial,
                        "holds": lf.holds and ch.holds,
                    }
                )
    out = pd.DataFrame(rows)
    out.attrs["skipped"] = skipped
    return out


def _sweep_medians(sweep: pd.DataFrame) -> pd.DataFrame:
    s = sweep.assign(
        change=(sweep.clipped_change - sweep.raw_change).abs() / sweep.raw_change,
        share_t1=sweep.clipped_change / sweep.bound_tv,
        share_log=sweep.clipped_change / sweep.log_pinsker,
    )
    cols = ["change", "share_t1", "share_log", "share_sharp", "bound_tv", "log_pinsker"]
    return s.groupby("gamma")[cols].median()


def sweep_glue(sweep: pd.DataFrame) -> dict[str, Any]:
    med = _sweep_medians(sweep)
    return {
        "sw_n": int(sweep.instance.nunique()),
        "sw_fails": int((~sweep.holds).sum()),
        "sw_skipped": int(sweep.attrs.get("skipped", 0)),
        "sw_raw_gamma": float(sweep.drop_duplicates("instance").raw_gamma.median()),
        "sw_gamma_small": float(med.index[0]),
        "sw_gamma_large": float(med.index[-1]),
        "sw_change_small": float(med.change.iloc[0]),
        "sw_change_large": float(med.change.iloc[-1]),
        "sw_share_t1_small": float(med.share_t1.iloc[0]),
        "sw_share_t1_large": float(med.share_t1.iloc[-1]),
        "sw_share_log_small": float(med.share_log.iloc[0]),
        "sw_share_log_large": float(med.share_log.iloc[-1]),
        "sw_share_sharp": float(sweep.share_sharp.median()),
    }


def sweep_figure(sweep: pd.DataFrame) -> Figure:
    """Left: medians of the bounds and of the change against the floor (log-log). Right: the
    share of each bound used and how much clipping moved the change (log-log)."""
    fig, axes = plt.subplots(1, 2, figsize=(11, 3.9))
    med = sweep.groupby("gamma").median(numeric_only=True)
    for col, label in [
        ("clipped_change", "|ΔErr| (clipped predictors)"),
        ("mean_max_abs_log_ratio", "E max|ℓ| (sharp)"),
        ("log_pinsker", "log(1+min(1,√(ε/2))/γ)"),
        ("bound_tv", "Theorem 1: E TV/γ"),
        ("trivial", "log(1/γ)"),
    ]:
        axes[0].plot(med.index, med[col], marker="o", ms=3, label=label)
    axes[0].axhline(med.raw_change.iloc[0], color="0.4", ls=":", label="|ΔErr| (raw)")
    axes[0].set(xscale="log", yscale="log", xlabel="floor γ (both clipped to γ)")
    axes[0].set(ylabel="median over instances [nats]", title="bounds against the floor")
    axes[0].legend(fontsize="x-small")
    m = _sweep_medians(sweep)
    axes[1].plot(m.index, m.share_t1, marker="o", label="share of Theorem 1 used")
    axes[1].plot(m.index, m.share_log, marker="^", label="share of log(1+√(ε/2)/γ) used")
    axes[1].plot(m.index, m.change, marker="s", label="relative change of |ΔErr| by clipping")
    axes[1].set(xscale="log", yscale="log", xlabel="floor γ", title="tightness vs distortion")
    axes[1].legend(fontsize="x-small")
    fig.tight_layout()
    return fig


# ------------------------------------------------------------------------ no-floor example
def no_floor_table(deltas: Sequence[float] = (1e-2, 1e-4, 1e-6, 1e-8)) -> pd.DataFrame:
    """:func:`~w2s_utils.theory.instances.no_floor_instance` at each ``delta``: the misfit, the
    exact change, the floor, the chain's last link, Theorem 1 and the sharp interval."""
    rows = []
    for d in deltas:
        inst = instances.no_floor_instance(d)
        lf = theory.label_free_interval(inst.weak, inst.student, f_star=inst.f_star)
        ch = theory.generalization_chain(inst.weak, inst.student, f_star=inst.f_star)
        rows.append(
            {
                "δ": d,
                "ε": lf.eps,
                "ΔErr": -lf.gain,  # ΔErr sign for the chapter's text (= -gain)
                "γ": ch.gamma,
                "log(1+√(ε/2)/γ)": ch.log_pinsker,
                "√(ε/2)/γ": ch.bound_eps,
                "sharp lower": -lf.upper,
                "sharp upper": -lf.lower,
            }
        )
    return pd.DataFrame(rows).set_index("δ")


def no_floor_glue(table: pd.DataFrame) -> dict[str, float]:
    """The smallest ``delta`` row of :func:`no_floor_table` as plain floats for glue."""
    row = table.iloc[-1]
    return {
        "nf_delta": float(table.index[-1]),
        "nf_eps": float(row["ε"]),
        "nf_change": float(row["ΔErr"]),
        "nf_log": float(row["log(1+√(ε/2)/γ)"]),
        "nf_t1": float(row["√(ε/2)/γ"]),
    }


# ------------------------------------------------------------------------- language models
def _bound_row(weak: torch.Tensor, student: torch.Tensor, gamma: float | None, **truth) -> dict:
    """One run's interval and chain in the ΔErr sign the chapter's text reads today:
    ``err_change = -gain``, ``lower``/``upper`` the ends of ``-gain`` (the theory's gain
    interval turned over), ``position`` from the ΔErr side."""
    lf = theory.label_free_interval(weak, student, **truth)
    ch = theory.generalization_chain(weak, student, gamma=gamma, **truth)
    share = lf.fraction_used
    return {
        "gamma": ch.gamma,
        "err_change": -lf.gain,
        "lower": -lf.upper,
        "upper": -lf.lower,
        "eps": lf.eps,
        "eps_rev": lf.eps_rev,
        "share": abs(share) if share is not None else math.nan,
        "position": None if lf.position is None else 1.0 - lf.position,
        **{key: float(getattr(ch, key)) for key, _ in LINKS},
        "trivial": ch.trivial,
        "holds": lf.holds and ch.holds,
    }


def run_bounds(runs: Sequence[Any], clip_gammas: Sequence[float] = ()) -> pd.DataFrame:
    """One row per run and floor: the sharp interval and the chain from the hard test labels.

    ``floor="raw"`` uses the predictions themselves (see :func:`positive`), the floor their
    smallest entry; each ``gamma`` of ``clip_gammas`` clips both predictors to ``gamma``, or,
    where the raw floor is already above ``gamma`` (clipping would change nothing), uses the raw
    floor (``clipped=False``), never a ``gamma`` below the floor the predictions have.
    """
    rows = []
    for r in runs:
        weak, student = positive(r.weak), positive(r.student)
        raw_gamma = float(min(weak.min(), student.min()))
        labels = torch.as_tensor(np.array(r.labels))
        base = {"dataset": r.config.dataset, "weak": r.config.weak, "seed": r.config.seed}
        rows.append({**base, "floor": "raw", "clipped": False,
                     **_bound_row(weak, student, None, labels=labels)})  # fmt: skip
        for g in clip_gammas:
            g_eff = max(float(g), raw_gamma)
            cw, cs = theory.clip_to_floor(weak, g_eff), theory.clip_to_floor(student, g_eff)
            row = _bound_row(cw, cs, g_eff, labels=labels)
            rows.append({**base, "floor": f"γ = {g:g}", "clipped": g > raw_gamma, **row})
    return pd.DataFrame(rows)


def group_means(table: pd.DataFrame, floor: str = "raw") -> pd.DataFrame:
    """Means over seeds per (dataset, weak) of one floor's rows of :func:`run_bounds`."""
    sub = table[table["floor"] == floor]
    return sub.groupby(["dataset", "weak"], sort=False).mean(numeric_only=True).reset_index()


def interval_figure(
    groups: pd.DataFrame, paired: pd.DataFrame, datasets: Sequence[str], order: Sequence[str]
) -> Figure:
    """Per dataset: the sharp interval (grey), ``[-eps_rev, eps]`` (dark ticks) and the measured
    ΔCE with its interval over seeds and test examples (dot), on a linear axis."""
    keys = ["dataset", "weak"]
    cols = [*keys, "err_change_lo", "err_change_hi"]
    measured = with_err_change(paired)[cols]
    df = groups.merge(measured, on=keys).assign(neg_eps_rev=lambda d: -d.eps_rev)
    fig, axes = plt.subplots(1, len(datasets), figsize=(5.0 * len(datasets), 3.9), squeeze=False)
    for ax, ds in zip(axes[0], datasets, strict=True):
        sub = df[df.dataset == ds].rename(columns={"err_change": "measured ΔCE"})
        plots.bound_band(
            sub, x="weak", value="measured ΔCE", lower="lower", upper="upper",
            lo="err_change_lo", hi="err_change_hi", order=list(order), ax=ax, xlabel="teacher",
            ylabel="nats" if ax is axes[0, 0] else "", band_label="sharp interval",
        )  # fmt: skip
        pos = {w: i for i, w in enumerate(order)}
        xs = sub.weak.map(pos).to_numpy(dtype=float)
        for col in ("eps", "neg_eps_rev"):
            ax.scatter(xs, sub[col], marker="_", s=300, color="0.2", zorder=4)
        ax.scatter([], [], marker="_", s=200, color="0.2", label="ε and −ε_rev")
        ax.legend(fontsize="x-small", loc="lower left")
        ax.set_title(ds)
    fig.suptitle(
        "Measured change in error (dot; 95% interval over seeds and test set) inside the sharp "
        "label-free interval (grey), which contains [−ε_rev, ε]",
        y=1.03,
    )
    fig.tight_layout()
    return fig


def chain_figure(panels: Mapping[str, pd.DataFrame]) -> Figure:
    """Each panel: one line per row (a group of runs) through |ΔErr| and the chain's links, on a
    log axis (a ratio axis: one gridline is a factor of 10); log(1/γ) as a cross."""
    fig, axes = plt.subplots(1, len(panels), figsize=(6.0 * len(panels), 4.2), squeeze=False)
    labels = ["|ΔErr|", *(lab for _, lab in LINKS)]
    for ax, (title, df) in zip(axes[0], panels.items(), strict=True):
        for _, row in df.iterrows():
            vals = [abs(row.err_change), *(row[key] for key, _ in LINKS)]
            name = row.get("label", f"{row.weak} / {row.get('dataset', '')}")
            line = ax.plot(range(len(vals)), vals, marker="o", ms=4, lw=1.2, label=name)
            ax.scatter([4.5], [row.trivial], marker="x", s=40, color=line[0].get_color())
        ax.set_yscale("log")
        ax.set_xticks(range(len(labels)), labels, rotation=30, ha="right")
        ax.set_ylabel("nats (log scale)")
        ax.set_title(title)
        ax.grid(True, which="major", axis="y", alpha=0.4)
        ax.legend(fontsize="x-small", ncol=2, loc="lower right")
    fig.suptitle("The chain, link by link (×: the trivial log(1/γ), for comparison)")
    fig.tight_layout()
    return fig


def lm_glue(table: pd.DataFrame, clip_gamma: float) -> dict[str, Any]:
    """The numbers the language-model section quotes (``clip_gamma``: the clipped rows shown)."""
    raw = table[table["floor"] == "raw"]
    big = table[table["floor"] == f"γ = {clip_gamma:g}"]
    half = (raw.upper - raw.lower) / 2
    key = ["dataset", "weak", "seed"]
    moved = (big.set_index(key).err_change - raw.set_index(key).err_change).abs()
    gain = -raw.err_change
    required = 2 * raw.gamma**2 * np.expm1(gain.clip(lower=0)) ** 2
    return {
        "lm_n": len(raw),
        "lm_required_eps": float(required[gain == gain.max()].iloc[0]) if len(raw) else math.nan,
        "lm_eps_min": float(raw.eps.min()),
        "lm_eps_max": float(raw.eps.max()),
        "lm_fails": int((~table.holds).sum()),
        "lm_gamma_raw": float(raw.gamma.median()),
        "lm_t1_raw": float(raw.bound_tv.median()),
        "lm_t1_raw_max": float(raw.bound_tv.max()),
        "lm_t1_over_trivial": int((raw.bound_tv > raw.trivial).sum()),
        "lm_trivial_raw": float(raw.trivial.median()),
        "lm_lower_min": float(raw.lower.min()),
        "lm_upper_max": float(raw.upper.max()),
        "lm_half_median": float(half.median()),
        "lm_t1_over_half": float((raw.bound_tv / half).median()),
        "lm_share_median": float(raw.share.median()),
        "lm_share_min": float(raw.share.min()),
        "lm_share_max": float(raw.share.max()),
        "lm_abs_change_min": float(raw.err_change.abs().min()),
        "lm_abs_change_max": float(raw.err_change.abs().max()),
        "lm_max_abs_median": float(raw.mean_max_abs_log_ratio.median()),
        "lm_log_pinsker_median": float(raw.log_pinsker.median()),
        "lm_clip_gamma": float(clip_gamma),
        "lm_clipped_runs": int(big.clipped.sum()),
        "lm_t1_clip": float(big.bound_tv.median()),
        "lm_log_pinsker_clip": float(big.log_pinsker.median()),
        "lm_clip_moved": float(moved.median()),
    }


# ----------------------------------------------------------------------------- statistics
def statistics_table(paired: pd.DataFrame) -> pd.DataFrame:
    """ΔCE and accuracy gain per (dataset, teacher): the interval over seeds only next to the
    one over seeds and test examples (:func:`w2s_utils.analysis.paired_table`)."""
    paired = with_err_change(paired)
    rows = []
    for _, r in paired.iterrows():
        row = {"dataset": r.dataset, "teacher": r.weak}
        for q, name, digits in (("err_change", "ΔCE", 4), ("acc_gain", "accuracy gain", 3)):
            row[f"{name}, seeds only"] = fmt_interval(
                r[q], r[f"{q}_seed_lo"], r[f"{q}_seed_hi"], digits, True
            )
            row[f"{name}, seeds × test"] = fmt_interval(
                r[q], r[f"{q}_lo"], r[f"{q}_hi"], digits, True
            )
        rows.append(row)
    return pd.DataFrame(rows).set_index(["dataset", "teacher"])


def _excludes_zero(lo: pd.Series, hi: pd.Series) -> pd.Series:
    return (lo > 0) | (hi < 0)


def statistics_glue(paired: pd.DataFrame) -> dict[str, Any]:
    """Which ΔCE and accuracy-gain claims each interval supports, and which ones changed."""
    paired = with_err_change(paired)
    out: dict[str, Any] = {"st_n": len(paired)}
    for q, tag in (("err_change", "ce"), ("acc_gain", "acc")):
        both = _excludes_zero(paired[f"{q}_lo"], paired[f"{q}_hi"])
        seed = _excludes_zero(paired[f"{q}_seed_lo"], paired[f"{q}_seed_hi"])
        out[f"st_{tag}_up"] = names_where(paired, paired[f"{q}_lo"] > 0)
        out[f"st_{tag}_down"] = names_where(paired, paired[f"{q}_hi"] < 0)
        out[f"st_{tag}_lost"] = names_where(paired, seed & ~both)
        out[f"st_{tag}_gained"] = names_where(paired, both & ~seed)
        out[f"st_{tag}_n_seed"] = int(seed.sum())
        out[f"st_{tag}_n_both"] = int(both.sum())
    return out


def correlation_glue(per_run: pd.DataFrame, n_permutations: int = 2000, seed: int = 0) -> dict:
    """Across runs: corr(ε, ΔCE), corr(ε, ι), and corr(ε, ι) with ΔCE permuted across runs
    (mean over permutations): how much of the second is mechanical, since ι = ΔCE − ε."""
    eps, change = per_run.eps.to_numpy(), -per_run.gain.to_numpy()  # ΔCE = -gain
    rng = np.random.default_rng(seed)
    perm = [np.corrcoef(eps, rng.permutation(change) - eps)[0, 1] for _ in range(n_permutations)]
    return {
        "corr_n": len(per_run),
        "corr_eps_change": float(np.corrcoef(eps, change)[0, 1]),
        "corr_eps_iota": float(np.corrcoef(eps, change - eps)[0, 1]),
        "corr_eps_iota_perm": float(np.mean(perm)),
    }


# --------------------------------------------------------------------------------- planted
def planted_runs(
    dataset: str,
    weaks: Sequence[str],
    strong: str,
    seeds: Sequence[int],
    *,
    n: int = 4000,
    temperature: float = 1.0,
) -> dict[tuple[str, int], Any]:
    """:func:`w2s_utils.engine.planted.planted_task` for every teacher and seed (with tqdm)."""
    grid = [(w, s) for w in weaks for s in seeds]
    return {
        (w, s): planted_task(dataset, w, strong, n=n, seed=s, temperature=temperature)
        for w, s in tqdm(grid, desc="planted runs", leave=False)
    }


def planted_table(planted: Mapping[tuple[str, int], Any]) -> pd.DataFrame:
    """One row per planted run: exact errors, the sharp interval, the chain, the oscillation
    form and the ``M`` form, all against the known ``F*``."""
    rows = []
    for (weak_name, seed), p in planted.items():
        weak, student = positive(p.weak), positive(p.student)
        f_star = _f64(p.f_star)
        row = _bound_row(weak, student, None, f_star=f_star)
        osc = theory.oscillation_bound(weak, student, f_star=f_star)
        t1 = theory.generalization_bound(weak, student, f_star=f_star)
        rows.append(
            {
                "weak": weak_name,
                "seed": seed,
                "err_weak": p.err["weak"],
                "err_student": p.err["student"],
                "err_ceiling": p.err["ceiling"],
                "ce_change": p.ce["student"] - p.ce["weak"],
                **row,
                "osc_lhs": osc.lhs,
                "osc_width": osc.rhs,
                "old_width": osc.old_width,
                "holds": row["holds"] and osc.holds and t1.holds,
                "gold_accuracy": p.gold_accuracy,
                "bayes_entropy": p.bayes_entropy,
            }
        )
    return pd.DataFrame(rows)


def planted_glue(pl: pd.DataFrame) -> dict[str, Any]:
    half = (pl.upper - pl.lower) / 2
    return {
        "pl_runs": len(pl),
        "pl_fails": int((~pl.holds).sum()),
        "pl_err_w": float(pl.err_weak.mean()),
        "pl_err_sw": float(pl.err_student.mean()),
        "pl_err_s": float(pl.err_ceiling.mean()),
        "pl_change": float(pl.err_change.mean()),
        "pl_improved": int((pl.err_change < 0).sum()),
        "pl_eps": float(pl.eps.mean()),
        "pl_ce_gap": float((pl.ce_change - pl.err_change).abs().max()),
        "pl_lower": float(pl.lower.mean()),
        "pl_upper": float(pl.upper.mean()),
        "pl_half": float(half.median()),
        "pl_share": float(pl.share.median()),
        "pl_gamma": float(pl.gamma.median()),
        "pl_t1": float(pl.bound_tv.median()),
        "pl_trivial": float(pl.trivial.median()),
        "pl_t1_over_trivial": int((pl.bound_tv > pl.trivial).sum()),
        "pl_osc": float(pl.osc_width.median()),
        "pl_old": float(pl.old_width.median()),
        "pl_osc_lhs": float(pl.osc_lhs.median()),
        "pl_gold_acc": float(pl.gold_accuracy.mean()),
        "pl_bayes": float(pl.bayes_entropy.mean()),
    }


def per_run_table(lm: pd.DataFrame, pl: pd.DataFrame) -> Any:
    """Every run (raw floor) and every planted run: ΔErr, the sharp interval, the share of it
    used, each link of the chain and Theorem 1's half-width (styled)."""
    raw = lm[lm["floor"] == "raw"].assign(task=lambda d: d.dataset)
    both = pd.concat([raw, pl.assign(task="planted")], ignore_index=True)
    cols = ["err_change", "lower", "upper", "share", *(k for k, _ in LINKS), "trivial", "gamma"]
    shown = both.set_index(["task", "weak", "seed"])[cols]
    names = {"err_change": "ΔErr", "share": "share used", "trivial": "log(1/γ)", "gamma": "γ"}
    shown = shown.rename(columns={**names, **dict(LINKS)})
    fmt = {c: "{:.4f}" for c in shown.columns} | {"share used": "{:.0%}", "γ": "{:.1e}"}
    fmt |= {"E TV/γ": "{:.3g}", "√(ε/2)/γ": "{:.3g}", "ΔErr": "{:+.4f}"}
    return shown.style.format(fmt).set_caption(
        "Per run (language models: raw floor, ΔErr = test ΔCE; planted: exact ΔErr): the sharp "
        "interval, the share of its side used, every link and Theorem 1"
    )


def clip_table(lm: pd.DataFrame) -> Any:
    """Medians over the runs per floor of :func:`run_bounds`: the floor, how many runs were
    actually clipped, the sharp first link, the log form, Theorem 1, log(1/γ), and how far
    clipping moved the measured change."""
    key = ["dataset", "weak", "seed"]
    raw = lm[lm["floor"] == "raw"].set_index(key).err_change
    moved = (lm.set_index(key).err_change - raw).abs().to_numpy()
    df = lm.assign(moved=moved)
    out = df.groupby("floor", sort=False).agg(
        gamma=("gamma", "median"),
        clipped=("clipped", "sum"),
        sharp=("mean_max_abs_log_ratio", "median"),
        log_form=("log_pinsker", "median"),
        theorem1=("bound_tv", "median"),
        trivial=("trivial", "median"),
        moved=("moved", "median"),
    )
    out.columns = [
        "median γ", "runs clipped", "E max|ℓ|", "log(1+√(ε/2)/γ)", "E TV/γ", "log(1/γ)",
        "|ΔCE − raw ΔCE|",
    ]  # fmt: skip
    fmt = {c: "{:.4f}" for c in out.columns} | {"median γ": "{:.1e}", "runs clipped": "{:d}"}
    fmt |= {"E TV/γ": "{:.3g}"}
    return out.style.format(fmt).set_caption(
        "The language-model runs at each floor (medians over runs). A γ below a run's raw floor "
        "would change nothing: such a run keeps its raw floor"
    )


def planted_interval_figure(pl: pd.DataFrame) -> Figure:
    """Planted task, per teacher (means over seeds): the exact ΔErr inside the sharp interval
    (left) and ΔErr − ε inside the oscillation form and the M form (right), linear axes."""
    g = pl.groupby("weak", sort=False).mean(numeric_only=True).reset_index()
    g = g.assign(
        **{"exact ΔErr": g.err_change, "ι = ΔErr − ε": g.err_change - g.eps},
        osc_lo=-g.osc_width, osc_hi=g.osc_width,
        old_lo=-g.old_width, old_hi=g.old_width,
    )  # fmt: skip
    fig, axes = plt.subplots(1, 2, figsize=(10.5, 3.9))
    plots.bound_band(
        g, x="weak", value="exact ΔErr", lower="lower", upper="upper", ax=axes[0],
        xlabel="teacher", ylabel="nats", band_label="sharp interval",
    )  # fmt: skip
    axes[0].set_title("exact ΔErr in the sharp interval")
    plots.bound_band(
        g, x="weak", value="ι = ΔErr − ε", lower="old_lo", upper="old_hi", ax=axes[1],
        xlabel="teacher", ylabel="", band_label="M form: ± M √(2 Err(F_w))",
    )  # fmt: skip
    xs = np.arange(len(g))
    axes[1].bar(
        xs, 2 * g.osc_width, bottom=g.osc_lo, width=0.3, color="0.55", label="oscillation form",
        zorder=2,
    )  # fmt: skip
    axes[0].legend(fontsize="x-small", loc="lower right")
    axes[1].legend(fontsize="x-small", loc="lower right")
    axes[1].set_title("ΔErr − ε in the two misfit-centred forms")
    fig.tight_layout()
    return fig
