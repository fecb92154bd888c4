"""Chapter 2, section 'On language models': the bounds on chapter 1's runs (tables, figures, the
clipping table, the statistics over seeds and glued numbers)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
from matplotlib import pyplot as plt
from matplotlib.figure import Figure

from w2s_utils.book.ch2_generalization.common import CHAIN, bound_columns, interval_text, widths
from w2s_utils.book.results import names_where, verdict
from w2s_utils.book.tables import Table, format_interval, present_table, require_columns


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
    require_columns(
        lf, ["gain", "lower", "upper", "eps", "eps_rev", "fraction_used", "holds"], "lf"
    )
    require_columns(ea, ["lower", "upper", "budget", "holds"], "ea")
    require_columns(osc, ["lower", "upper", "holds"], "osc")
    require_columns(chain, [k for k, _ in CHAIN[2:]] + ["gamma", "trivial", "holds"], "chain")
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
            **bound_columns(lf, ea, chain),
        }
    )
    holds = [t.holds.astype(bool).to_numpy() for t in tables.values()]
    out["holds"] = np.logical_and.reduce(holds)
    return out


def group_means(table: pd.DataFrame, by: Sequence[str] = ("dataset", "weak")) -> pd.DataFrame:
    """Chapter 2: means over seeds of :func:`lm_table` (or :func:`planted_table`) per ``by``."""
    require_columns(table, list(by), "table")
    return table.groupby(list(by), sort=False).mean(numeric_only=True).reset_index()


def lm_glue(lm: pd.DataFrame, clipped: pd.DataFrame, clip_gamma: float) -> dict[str, Any]:
    """Chapter 2, 'On language models': the numbers the text quotes (keys ``lm_*``); ``clipped``
    is the chain's sweep over :func:`clipped_inputs` at ``clip_gamma``."""
    require_columns(clipped, ["gain", "gamma", "log_pinsker", "bound_tv"], "clipped")
    if len(clipped) != len(lm):
        raise ValueError("clipped: needs one row per run, in the order of lm")
    w = widths(lm)
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
    require_columns(groups, ["dataset", "weak", "gain", "budget", "bound_tv"], "groups")
    df = groups.assign(
        lf=interval_text(groups.lf_lower, groups.lf_upper),
        ea=interval_text(groups.ea_lower, groups.ea_upper),
        osc=interval_text(groups.osc_lower, groups.osc_upper),
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


def interval_figure(
    groups: pd.DataFrame, paired: pd.DataFrame, datasets: Sequence[str], order: Sequence[str]
) -> Figure:
    """Chapter 2, figure 'fig-ch2-intervals': per dataset and teacher (means over seeds), the
    label-free interval (light bar), the error-aware interval (dark bar), the oscillation form
    (bracket) and the measured gain with its 95% interval over seeds and test examples
    (:func:`w2s_utils.analysis.paired_table`), on a linear axis."""
    require_columns(paired, ["dataset", "weak", "gain", "gain_lo", "gain_hi"], "paired")
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
        require_columns(df, ["gain", "trivial", "label", *(k for k, _ in CHAIN)], title)
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
        require_columns(t, ["gain", "gamma", "log_pinsker", "bound_tv", "trivial"], f"clipped[{g}]")
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
        lf=interval_text(lm.lf_lower, lm.lf_upper),
        ea=interval_text(lm.ea_lower, lm.ea_upper),
        osc=interval_text(lm.osc_lower, lm.osc_upper),
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
    require_columns(paired, cols, "paired")
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
    require_columns(paired, ["dataset", "weak", "n_seeds", "gain", "gain_lo", "gain_hi"], "paired")
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
    require_columns(per_run, ["eps", "gain"], "per_run")
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
