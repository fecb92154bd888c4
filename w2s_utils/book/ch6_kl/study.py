"""Chapter 6: the linear-head study of forward against reverse KL, the guarantee on held-out and
training inputs, the reading and the headline (tables, figures and glued numbers)."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from w2s_utils.book.ch6_kl.common import ORANGE, PURPLE
from w2s_utils.book.results import verdict
from w2s_utils.book.tables import (
    Table,
    format_interval,
    format_number,
    present_table,
    require_columns,
)

_LOSS_LABEL = {"forward": "forward KL", "reverse": "reverse KL"}
_LOSS_COLOR = {"forward": ORANGE, "reverse": PURPLE}
_SPLIT_LABEL = {"test": "held-out test inputs", "train": "the student's training inputs"}


def _nats(x: float, digits: int = 4) -> str:
    """A signed number of nats as the page prints it (true minus sign, no ``-0.0000``)."""
    return format_number(x, f"+.{digits}f")


def _range(values: pd.Series, digits: int = 4) -> str:
    lo, hi = _nats(float(values.min()), digits), _nats(float(values.max()), digits)
    return f"about {lo}" if lo == hi else f"between {lo} and {hi}"


# ------------------------------------------------------------------------------ the heads study
def datasets_table(why: pd.DataFrame) -> Table:
    """Chapter 6, 'On real text (b)': the gold-label teacher and ceiling accuracy of the frozen
    features on the datasets left out or re-planted (rows: dataset; columns ``acc_weak``,
    ``acc_ceiling``, means over seeds)."""
    require_columns(why, ["acc_weak", "acc_ceiling"], "why")
    df = why.reset_index()
    return present_table(
        df,
        {
            "dataset": "dataset (gold labels)",
            "acc_weak": "MiniLM-L1 teacher accuracy",
            "acc_ceiling": "MiniLM-L6 ceiling accuracy",
        },
        formats={"acc_weak": ".3f", "acc_ceiling": ".3f"},
        caption="Frozen features on gold labels (3 seeds): where the strong features are not "
        "stronger",
    )


def _cell_label(dataset: str, noise: float) -> str:
    return f"{dataset}, noise {noise:.0%}"


def difference_table(diffs: pd.DataFrame, overall: Mapping[str, Any]) -> Table:
    """Chapter 6, table 'reverse minus forward': per cell (dataset × label noise of the teacher)
    the paired differences reverse − forward of the student's accuracy and gain (the rows of
    :func:`w2s_utils.analysis.paired_differences`), and the overall row (``overall``: ``{"d_acc":
    Interval, "d_gain": Interval}`` over every cell)."""
    require_columns(diffs, ["dataset", "label_noise", "n_seeds", "d_acc", "d_gain"], "diffs")
    df = diffs.copy()
    df["cell"] = [_cell_label(d, n) for d, n in zip(df.dataset, df.label_noise, strict=True)]
    total = {"cell": "all cells", "n_seeds": int(df.n_seeds.min())}
    for q in ("d_acc", "d_gain"):
        iv = overall[q]
        total.update({q: iv.point, f"{q}_lo": iv.lo, f"{q}_hi": iv.hi})
    df = pd.concat([df, pd.DataFrame([total])], ignore_index=True)
    for q in ("d_acc", "d_gain"):
        df[f"{q}_says"] = [
            verdict(
                lo,
                hi,
                above="reverse better",
                below="forward better",
            ).replace("not distinguishable from", "no difference")
            for lo, hi in zip(df[f"{q}_lo"], df[f"{q}_hi"], strict=True)
        ]
    return present_table(
        df,
        {
            "cell": "dataset, teacher's label noise",
            "n_seeds": "seeds",
            "d_acc": "accuracy, reverse − forward",
            "d_acc_says": "accuracy verdict",
            "d_gain": "gain (nats), reverse − forward",
            "d_gain_says": "gain verdict",
        },
        formats={"d_acc": "+.4f", "d_gain": "+.5f"},
        intervals={"d_acc": ("d_acc_lo", "d_acc_hi"), "d_gain": ("d_gain_lo", "d_gain_hi")},
        caption="Reverse-KL minus forward-KL students on the same teachers and seeds "
        "(paired; 95% intervals over seeds and test examples)",
    )


def difference_figure(diffs: pd.DataFrame, overall: Mapping[str, Any]) -> Figure:
    """Chapter 6, figure 'fig-ch6-differences': the paired differences reverse − forward of
    accuracy and gain per cell and overall, with 95% intervals."""
    require_columns(diffs, ["dataset", "label_noise", "d_acc", "d_gain"], "diffs")
    labels = [_cell_label(d, n) for d, n in zip(diffs.dataset, diffs.label_noise, strict=True)]
    labels.append("all cells")
    fig, axes = plt.subplots(1, 2, figsize=(7.5, 0.38 * len(labels) + 1.4), sharey=True)
    y = np.arange(len(labels))[::-1]
    for ax, q, title, scale in zip(
        axes,
        ("d_acc", "d_gain"),
        ("student accuracy", "student gain"),
        (100.0, 1.0),
        strict=True,
    ):
        pts = [scale * x for x in (*diffs[q], overall[q].point)]
        los = [scale * x for x in (*diffs[f"{q}_lo"], overall[q].lo)]
        his = [scale * x for x in (*diffs[f"{q}_hi"], overall[q].hi)]
        colors = [PURPLE] * len(diffs) + ["black"]
        for yi, p, lo, hi, c in zip(y, pts, los, his, colors, strict=True):
            ax.errorbar(p, yi, xerr=[[p - lo], [hi - p]], fmt="o", color=c, capsize=3, ms=5)
        ax.axvline(0, color="0.4", lw=1)
        ax.xaxis.set_major_locator(MaxNLocator(4))
        ax.set_title(title, fontsize=10)
        ax.set_xlabel(f"reverse − forward [{'percentage points' if scale != 1 else 'nats'}]")
    axes[0].set_yticks(y, labels, fontsize=9)
    fig.tight_layout()
    return fig


def _noise_text(noises: Sequence[float]) -> str:
    parts = [f"{v:.0%}" if v else "0" for v in noises]
    return parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " or " + parts[-1]


def _count_text(n: int, total: int) -> str:
    if n == 0:
        return "none"
    return "all" if n == total else f"{n}"


def study_glue(
    diffs: pd.DataFrame,
    overall: Mapping[str, Any],
    per_run: pd.DataFrame,
    label_noises: Sequence[float],
) -> dict[str, Any]:
    """Chapter 6, 'On real text (b)': the numbers of the linear-head study (cells, seeds, the
    teachers' and students' accuracies per dataset, the paired differences reverse − forward)
    and ``hs_verdict``, the paragraph that answers whether the lead of reverse-KL students
    reported by Yao et al. (2025b) reproduces here (verdicts only from 95% intervals).
    ``per_run``: :func:`w2s_utils.analysis.per_run_table` of every run, by ``dataset`` and
    ``label_noise``."""
    require_columns(diffs, ["dataset", "label_noise", "n_seeds", "d_acc", "d_gain"], "diffs")
    require_columns(
        per_run,
        ["dataset", "label_noise", "acc_weak", "acc_student", "acc_ceiling", "gain"],
        "per_run",
    )
    n_cells = len(diffs)
    out: dict[str, Any] = {
        "hs_cells": n_cells,
        "hs_seeds": int(diffs.n_seeds.min()),
        "hs_runs": len(per_run),
        "hs_comparisons": 2 * n_cells,
        "hs_noise_text": _noise_text(label_noises),
    }
    for q, name in (("d_acc", "acc"), ("d_gain", "gain")):
        iv = overall[q]
        out[f"hs_{name}_all"] = iv.point
        out[f"hs_{name}_all_lo"] = iv.lo
        out[f"hs_{name}_all_hi"] = iv.hi
        out[f"hs_{name}_all_text"] = format_interval(iv.point, iv.lo, iv.hi, "+.4f")
        out[f"hs_{name}_rev_better"] = int((diffs[f"{q}_lo"] > 0).sum())
        out[f"hs_{name}_fwd_better"] = int((diffs[f"{q}_hi"] < 0).sum())
        out[f"hs_{name}_max_abs"] = float(diffs[q].abs().max())
    summary = per_run.rename(columns={"label_noise": "noise"})
    for ds, sub in summary.groupby("dataset"):
        clean = sub[sub.noise == sub.noise.min()]
        key = ds.replace("_", "")
        out[f"hs_{key}_acc_weak"] = float(clean.acc_weak.mean())
        out[f"hs_{key}_acc_student"] = float(clean.acc_student.mean())
        out[f"hs_{key}_acc_ceiling"] = float(clean.acc_ceiling.mean())
        worst = sub[sub.noise == sub.noise.max()]
        out[f"hs_{key}_acc_weak_noisy"] = float(worst.acc_weak.mean())
    gain_students = summary.groupby(["dataset", "noise"]).gain.mean()
    out["hs_student_gain_max"] = float(gain_students.max())
    acc = overall["d_acc"]
    acc_word = verdict(acc.lo, acc.hi, above="ahead", below="behind")
    acc_rev, acc_fwd = out["hs_acc_rev_better"], out["hs_acc_fwd_better"]
    gain_rev, gain_fwd = out["hs_gain_rev_better"], out["hs_gain_fwd_better"]
    reproduces = acc.lo > 0 and acc_fwd == 0
    lead = "**Does the lead of reverse-KL students reproduce here? " + (
        "Yes, in accuracy.** " if reproduces else "Not in accuracy.** "
    )
    acc_sentence = (
        f"The reverse-KL student is significantly more accurate in "
        f"{_count_text(acc_rev, n_cells)} of the {n_cells} cells and significantly less accurate "
        f"in {_count_text(acc_fwd, n_cells)}; over all cells the difference, reverse − forward, "
        f"is {out['hs_acc_all_text']}"
        + (
            " — not distinguishable from zero, and smaller than a fifth of a percentage point "
            "either way at 95%. "
            if acc_word == "not distinguishable from" and max(abs(acc.lo), abs(acc.hi)) < 0.002
            else (
                " — not distinguishable from zero. "
                if acc_word == "not distinguishable from"
                else f" — the reverse-KL students are {acc_word}. "
            )
        )
    )
    g = overall["d_gain"]
    share = g.point / out["hs_student_gain_max"] if out["hs_student_gain_max"] > 0 else math.nan
    gain_sentence = (
        f"In cross-entropy the reverse-KL students are significantly better in {gain_rev} cells "
        f"and significantly worse in {gain_fwd}, by {out['hs_gain_all_text']} nats over all "
        "cells"
        + (
            f", a small amount: {share:.0%} of the largest mean gain of a student over its teacher "
            f"in the grid ({out['hs_student_gain_max']:.3f} nats). "
            if math.isfinite(share) and g.lo > 0
            else ". "
        )
    )
    noisy = diffs[diffs.label_noise == diffs.label_noise.max()]
    noisy_any = bool(((noisy.d_acc_lo > 0) | (noisy.d_gain_lo > 0)).any())
    noise_sentence = (
        "Nor do the reverse-KL students pull ahead as the teachers get noisier: "
        f"with {noisy.label_noise.iloc[0]:.0%} of the teachers' labels flipped, "
        + (
            "they are ahead in some cell (see the table). "
            if noisy_any
            else "no difference is significant in either quantity. "
        )
    )
    out["hs_verdict"] = (
        lead
        + acc_sentence
        + gain_sentence
        + noise_sentence
        + f"These are {2 * n_cells} per-cell comparisons at 95% without a multiplicity "
        "correction, so about one significant cell in twenty is expected by chance alone. "
        "At this scale — linear heads on frozen MiniLM features, where the reverse-KL student is "
        "a stationary point started from the forward one — the choice of direction hardly "
        "matters; the settings of Yao et al. (2025b: fine-tuned GPT-2, Pythia and Qwen2.5 "
        "on preference data) are far from these, and this result neither refutes nor explains "
        "theirs."
    )
    return out


def guarantee_table(table: pd.DataFrame) -> Table:
    """Chapter 6, table 'does the student beat its teacher by the disagreement?': per cell, loss
    and split (rows of :func:`w2s_utils.analysis.split_table` over
    :func:`w2s_utils.engine.heads.gain_and_disagreement`) the gain, the disagreement in the
    direction of the student's loss and gain − disagreement, with 95% intervals."""
    require_columns(
        table,
        [
            "dataset",
            "label_noise",
            "loss",
            "split",
            "gain",
            "disagreement",
            "gain_minus_disagreement",
        ],
        "table",
    )
    df = table.copy()
    df["cell"] = [_cell_label(d, n) for d, n in zip(df.dataset, df.label_noise, strict=True)]
    df["student"] = df["loss"].map(_LOSS_LABEL)
    df["inputs"] = df["split"].map({"test": "held out", "train": "training"})
    df["says"] = [
        verdict(lo, hi, above="beats it", below="falls short").replace(
            "not distinguishable from", "undecided"
        )
        for lo, hi in zip(df.gain_minus_disagreement_lo, df.gain_minus_disagreement_hi, strict=True)
    ]
    return present_table(
        df,
        {
            "cell": "dataset, teacher's label noise",
            "student": "student",
            "inputs": "inputs",
            "gain": "gain",
            "disagreement": "disagreement",
            "gain_minus_disagreement": "gain − disagreement",
            "says": "says",
        },
        formats={"gain": "+.4f", "disagreement": ".4f", "gain_minus_disagreement": "+.4f"},
        intervals={
            "gain": ("gain_lo", "gain_hi"),
            "disagreement": ("disagreement_lo", "disagreement_hi"),
            "gain_minus_disagreement": ("gain_minus_disagreement_lo", "gain_minus_disagreement_hi"),
        },
        caption="Gain against the disagreement in the direction of the student's loss "
        "(nats; 95% intervals: over seeds and test examples on held-out inputs, over seeds on "
        "the training inputs each seed draws)",
    )


def guarantee_figure(table: pd.DataFrame) -> Figure:
    """Chapter 6, figure 'fig-ch6-guarantee': gain − disagreement with 95% intervals per cell and
    student, on held-out inputs (left) and on the student's training inputs (right)."""
    require_columns(
        table, ["dataset", "label_noise", "loss", "split", "gain_minus_disagreement"], "table"
    )
    cells = table.drop_duplicates(["dataset", "label_noise"])[["dataset", "label_noise"]]
    labels = [_cell_label(d, n) for d, n in zip(cells.dataset, cells.label_noise, strict=True)]
    y = np.arange(len(labels))[::-1].astype(float)
    fig, axes = plt.subplots(1, 2, figsize=(7.5, 0.42 * len(labels) + 1.6), sharey=True)
    q = "gain_minus_disagreement"
    for ax, split in zip(axes, ("test", "train"), strict=True):
        for off, loss in ((0.14, "forward"), (-0.14, "reverse")):
            sub = table[(table.split == split) & (table.loss == loss)]
            sub = cells.merge(sub, on=["dataset", "label_noise"], how="left")
            err = np.vstack([sub[q] - sub[f"{q}_lo"], sub[f"{q}_hi"] - sub[q]])
            ax.errorbar(
                sub[q],
                y + off,
                xerr=err,
                fmt="o",
                ms=4,
                capsize=2,
                color=_LOSS_COLOR[loss],
                label=f"{_LOSS_LABEL[loss]} student",
            )
        ax.axvline(0, color="0.3", lw=1)
        ax.set_title(_SPLIT_LABEL[split], fontsize=10)
        ax.set_xlabel("gain − disagreement [nats]")
    axes[0].set_yticks(y, labels, fontsize=9)
    handles, names = axes[0].get_legend_handles_labels()
    fig.legend(handles, names, loc="lower center", ncol=2, fontsize=9, bbox_to_anchor=(0.5, 0))
    fig.tight_layout(rect=(0, 0.1, 1, 1))
    return fig


def _split_counts(table: pd.DataFrame, prefix: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    q = "gain_minus_disagreement"
    for loss in ("forward", "reverse"):
        for split in ("test", "train"):
            sub = table[(table.loss == loss) & (table.split == split)]
            key = f"{prefix}_{loss}_{split}"
            out[f"{key}_n"] = len(sub)
            out[f"{key}_below"] = int((sub[f"{q}_hi"] < 0).sum())
            out[f"{key}_above"] = int((sub[f"{q}_lo"] > 0).sum())
            out[f"{key}_min"] = float(sub[q].min())
            out[f"{key}_max"] = float(sub[q].max())
            out[f"{key}_gain_min"] = float(sub["gain"].min())
            out[f"{key}_gain_max"] = float(sub["gain"].max())
    return out


def guarantee_glue(table: pd.DataFrame, realizable: Sequence[str] = ("sarcasm",)) -> dict[str, Any]:
    """Chapter 6, the guarantee check of the linear-head study: per student and split, how many
    cells fall significantly short of / above gain = disagreement and the range of the margin,
    and ``gc_sentence``, the paragraph that reads them (``realizable``: the datasets whose truth
    is planted on the strong features, so that the students' class contains it)."""
    out = _split_counts(table, "gc")
    q = "gain_minus_disagreement"
    test, train = table[table.split == "test"], table[table.split == "train"]
    real = train[train.dataset.isin(realizable)]
    gold = train[~train.dataset.isin(realizable)]
    n_test, short = len(test), int((test[f"{q}_hi"] < 0).sum())
    out["gc_test_short"] = short
    out["gc_test_n"] = n_test
    above = int((test[f"{q}_lo"] > 0).sum())
    text = (
        "On held-out texts no student beats its teacher by the full disagreement: "
        if above == 0
        else f"On held-out texts {above} of the {n_test} (cell, loss) pairs lie above the line: "
    )
    text += (
        f"gain − disagreement is significantly negative in {_count_text(short, n_test)} of the "
        f"{n_test} (cell, loss) pairs, {_range(test[q])} nats. "
    )
    if len(real):
        worst = float(real[q].abs().max())
        out["gc_real_train_max"] = worst
        rev = real[real.loss == "reverse"]
        text += (
            f"On their own training texts the students of the planted cells, whose class "
            f"contains the truth, come within {worst:.4f} nats of equality (the reverse-KL "
            f"students within {float(rev[q].abs().max()):.4f}), as the second-order "
            "propositions above predict"
        )
        if len(gold):
            text += (
                "; the students of the gold-label cells, whose class need not contain the truth, "
                f"fall short by {-float(gold[q].max()):.4f} to {-float(gold[q].min()):.4f} nats "
                "even there: without realizability the miss is not of second order. "
            )
        else:
            text += ". "
    text += (
        "The reverse-KL students' margins are not better than the forward-KL students' on "
        "held-out texts: the direction of the loss changes the in-sample miss, not the "
        "out-of-sample one."
        if _margins_close(test)
        else "The two losses leave different margins on held-out texts (see the table)."
    )
    out["gc_sentence"] = text
    return out


def _margins_close(test: pd.DataFrame) -> bool:
    """Whether on every cell the two students' held-out margins have overlapping intervals."""
    q = "gain_minus_disagreement"
    keys = ["dataset", "label_noise"]
    r, f = test[test.loss == "reverse"], test[test.loss == "forward"]
    both = r.merge(f, on=keys, suffixes=("_r", "_f"), how="inner")
    overlap = (both[f"{q}_lo_r"] <= both[f"{q}_hi_f"]) & (both[f"{q}_lo_f"] <= both[f"{q}_hi_r"])
    return bool(overlap.all())


def headline_glue(
    mix: pd.DataFrame,
    overall: Mapping[str, Any],
    guarantee: pd.DataFrame,
    n_cells: int,
    n_seeds: int,
) -> dict[str, Any]:
    """Chapter 6, the frame's main result (``headline``): the theorem's check and the verdict of
    the linear-head study in one sentence, every number from the build."""
    acc, g = overall["d_acc"], overall["d_gain"]
    test = guarantee[guarantee.split == "test"]
    short = int((test.gain_minus_disagreement_hi < 0).sum())
    holds = int(mix.holds.sum())
    text = (
        "Under its hypotheses the student beats its teacher by at least their disagreement "
        f"(in {holds} of {len(mix)} random instances, with equality in the class's relative "
        "interior). On softmax heads over frozen features, where a last-layer guarantee is "
        "invoked, reverse- and forward-KL students are equally accurate — accuracy, reverse − "
        f"forward, {format_interval(acc.point, acc.lo, acc.hi, '+.4f')} over {n_cells} cells × "
        f"{n_seeds} seeds; the reverse ones are {format_interval(g.point, g.lo, g.hi, '+.4f')} "
        f"nats better in cross-entropy — and in {short} of {len(test)} (cell, loss) pairs the "
        "students fall significantly short of the disagreement on held-out texts."
    )
    return {"headline": text}


# ------------------------------------------------------------------------------ regression reading
def reading_table(table: pd.DataFrame) -> Table:
    """Chapter 6, table of the Bernoulli reading: per target noise, student and split (rows of
    :func:`w2s_utils.analysis.split_table`), exact gain, disagreement and their difference."""
    require_columns(
        table,
        ["target_noise", "loss", "split", "gain", "disagreement", "gain_minus_disagreement"],
        "table",
    )
    df = table.copy()
    df["student"] = df["loss"].map(_LOSS_LABEL)
    df["inputs"] = df["split"].map({"test": "held out", "train": "training"})
    return present_table(
        df,
        {
            "target_noise": "noise σ of the teacher's targets",
            "student": "student",
            "inputs": "inputs",
            "gain": "exact gain",
            "disagreement": "disagreement",
            "gain_minus_disagreement": "gain − disagreement",
        },
        formats={
            "target_noise": ".1f",
            "gain": "+.4f",
            "disagreement": ".4f",
            "gain_minus_disagreement": "+.4f",
        },
        intervals={
            "gain": ("gain_lo", "gain_hi"),
            "disagreement": ("disagreement_lo", "disagreement_hi"),
            "gain_minus_disagreement": ("gain_minus_disagreement_lo", "gain_minus_disagreement_hi"),
        },
        caption="The regression reading: Bernoulli targets, binary KL (exact errors, nats; 95% "
        "intervals as in the study)",
    )


def reading_glue(table: pd.DataFrame) -> dict[str, Any]:
    """Chapter 6, 'The regression reading': the counts of :func:`guarantee_glue` per student and
    split, the target noises, and ``rd_sentence``, the paragraph that reads them."""
    out = _split_counts(table, "rd")
    out["rd_noises"] = " and ".join(f"{v:g}" for v in sorted(table.target_noise.unique()))
    out["rd_seeds"] = int(table.n_seeds.min())
    q = "gain_minus_disagreement"
    test, train = table[table.split == "test"], table[table.split == "train"]
    rev_train = train[train.loss == "reverse"]
    fwd_train = train[train.loss == "forward"]
    gain_pos = int((test.gain_lo > 0).sum())
    out["rd_sentence"] = (
        f"With target noise σ = {out['rd_noises']} and {out['rd_seeds']} seeds, every student "
        f"gains on held-out texts: exact gains {_range(test.gain)} nats ({gain_pos} of "
        f"{len(test)} significantly positive). But the gain stays below the disagreement: "
        f"gain − disagreement is {_range(test[q])} nats on held-out texts "
        f"({int((test[f'{q}_hi'] < 0).sum())} of {len(test)} significantly negative). On the "
        "students' own training texts the margin nearly closes, for the reverse-KL students "
        f"most: theirs is {_range(rev_train[q])} nats, the forward-KL students' "
        f"{_range(fwd_train[q])}."
    )
    return out
