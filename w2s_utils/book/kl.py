"""Chapter 6 (the KL extension): the computations behind its tables, figures and glued numbers.

Computing is kept apart from drawing: the ``*_table``/``*_summary`` functions return data frames,
the ``plot_*`` functions only draw them.

- :func:`failure_rates` -- how often the two non-guarantees fail, per construction
  (:func:`w2s_utils.theory.non_guarantee_trial`), and by how much.
- :func:`counterexample_table` -- a counterexample found by search, printed point by point.
- :func:`planted_summary` -- the planted mixture task's table (the task itself is
  :func:`w2s_utils.engine.planted_mixture.planted_mixture_task`) summarised per student and split.
- :func:`interval_table` -- a table of ``point [lo, hi]`` strings, e.g. of the fine-tuned forward-
  vs reverse-KL students (:func:`w2s_utils.analysis.loss_comparison`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
import torch

from w2s_utils import metrics, theory

__all__ = [
    "CONSTRUCTIONS",
    "counterexample_table",
    "failure_rates",
    "gaussian_bridge",
    "interval_table",
    "planted_summary",
    "plot_failure_rates",
    "plot_gain_vs_disagreement",
]

#: Weak-teacher constructions of the random-instance search: name -> ``weak_noise``
#: (``None``: an arbitrary Dirichlet teacher; ``s``: ``softmax(log F* + s z)``, close to the class).
CONSTRUCTIONS: dict[str, float | None] = {
    "arbitrary teacher": None,
    "noisy F*, s = 1": 1.0,
    "noisy F*, s = 0.3": 0.3,
}

_KIND_LABEL = {
    "forward_kl": "forward KL, logit-linear class",
    "reverse_kl_logit": "reverse KL, logit-linear class",
    "reverse_kl_mixture": "reverse KL, mixture class (Theorem)",
    "forward_kl_mixture": "forward KL, mixture class",
}


# ------------------------------------------------------------------ random-instance search
def failure_rates(
    n_trials: int,
    *,
    kinds: Sequence[str] = theory.TRIAL_KINDS,
    constructions: dict[str, float | None] | None = None,
    margin: float = 1e-6,
    progress: bool = True,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Run ``n_trials`` seeded trials of every ``kind`` under every construction.

    Returns ``(trials, rates)``: one row per trial (the :class:`~w2s_utils.theory.TrialOutcome`
    fields plus ``construction``), and per (kind, construction) the number of valid trials (the
    solver reached its optimum), of violations by more than ``margin``, the rate with a Wilson 95%
    interval and the median and largest violation (``misfit - gain``, nats).
    """
    from tqdm.auto import tqdm

    if not isinstance(n_trials, int) or n_trials < 1:
        raise ValueError(f"n_trials: must be a positive integer, got {n_trials!r}")
    cons = CONSTRUCTIONS if constructions is None else constructions
    jobs = [(k, c, s) for k in kinds for c in cons for s in range(n_trials)]
    rows = []
    for kind, con, seed in tqdm(jobs, desc="trials", disable=not progress, leave=False):
        out = theory.non_guarantee_trial(kind, seed, weak_noise=cons[con], margin=margin)
        rows.append({**out.__dict__, "construction": con})
    trials = pd.DataFrame(rows)
    out_rows = []
    for (kind, con), sub in trials.groupby(["kind", "construction"], sort=False):
        valid = sub[sub.valid]
        n, m = len(valid), int(valid.violated.sum())
        lo, hi = metrics.wilson_interval(m, n)
        viol = valid.violation[valid.violated]
        out_rows.append(
            {
                "kind": kind,
                "statement": _KIND_LABEL.get(kind, kind),
                "construction": con,
                "valid": n,
                "violated": m,
                "rate": m / n if n else np.nan,
                "rate_lo": lo,
                "rate_hi": hi,
                "median_violation": float(viol.median()) if m else 0.0,
                "max_violation": float(viol.max()) if m else 0.0,
            }
        )
    return trials, pd.DataFrame(out_rows)


def counterexample_table(cx: Any) -> pd.DataFrame:
    """The points of a :class:`~w2s_utils.theory.Counterexample`: features, ``F*``, teacher and
    student probabilities and each point's contribution to both sides (uniform ``P``)."""
    inst = cx.instance
    k = inst.f_star.shape[1]
    df = pd.DataFrame(
        inst.features.numpy(), columns=[f"phi_{i}" for i in range(inst.features.shape[1])]
    )
    for name, p in (("f_star", inst.f_star), ("weak", inst.weak), ("student", cx.student)):
        for j in range(k):
            df[f"{name}_{j}"] = p[:, j].numpy()
    misfit = (
        metrics.kl(inst.weak, cx.student)
        if cx.kind == "forward_kl"
        else metrics.kl(cx.student, inst.weak)
    )
    df["err_weak"] = metrics.kl(inst.f_star, inst.weak).numpy()
    df["err_student"] = metrics.kl(inst.f_star, cx.student).numpy()
    df["misfit"] = misfit.numpy()
    df.index.name = "x"
    return df


# ------------------------------------------------------------------ planted mixture task
def planted_summary(table: pd.DataFrame, tol: float = 1e-9) -> pd.DataFrame:
    """Per (student, split) of stacked
    :class:`~w2s_utils.engine.planted_mixture.PlantedMixture` tables: number of seeds, how many
    fall below the line gain = disagreement (``slack < -tol``), the smallest slack and the mean
    gain, disagreement ``eps_rev`` and ``eps``."""
    return table.groupby(["student", "split"], sort=False).agg(
        seeds=("slack", "size"),
        below_line=("slack", lambda s: int((s < -tol).sum())),
        min_slack=("slack", "min"),
        gain=("gain", "mean"),
        eps_rev=("eps_rev", "mean"),
        eps=("eps", "mean"),
    )


# ------------------------------------------------------------------ Gaussian bridge
def gaussian_bridge(f_star: Any, weak: Any, student: Any, sigma: float = 1.0) -> pd.DataFrame:
    """Chapter 5's squared-loss quantities for real outputs ``[N]`` next to the same quantities
    as KL divergences between Gaussians ``N(f(x), sigma^2)`` (computed independently with
    ``torch.distributions``): ``err_weak``, ``err_student``, ``disagreement`` and ``slack``.
    The two columns agree: ``KL(N(a, s^2) || N(b, s^2)) = (a - b)^2 / (2 s^2)``."""
    from torch.distributions import Normal, kl_divergence

    sq = theory.squared_misfit_gain(weak, student, f_star=f_star)
    fs, fw, fsw = (torch.as_tensor(v, dtype=torch.float64) for v in (f_star, weak, student))

    def gkl(a: torch.Tensor, b: torch.Tensor) -> float:
        return float(kl_divergence(Normal(a, sigma), Normal(b, sigma)).mean())

    g = {"err_weak": gkl(fs, fw), "err_student": gkl(fs, fsw), "disagreement": gkl(fsw, fw)}
    g["slack"] = g["err_weak"] - g["disagreement"] - g["err_student"]
    half = 1.0 / (2 * sigma**2)
    squared = [sq.err_weak * half, sq.err_student * half, sq.misfit_sq * half, sq.slack * half]
    return pd.DataFrame(
        {"squared loss / (2 sigma^2)": squared, "Gaussian KL": list(g.values())}, index=list(g)
    )


# ------------------------------------------------------------------ fine-tuned students
def interval_table(df: pd.DataFrame, index: Sequence[str], columns: Sequence[str]) -> pd.DataFrame:
    """``"point [lo, hi]"`` strings (3 decimals) for each of ``columns`` (with ``<c>_lo`` /
    ``<c>_hi`` columns in ``df``), indexed by ``index``: a table to read, not to compute with."""
    t = df.set_index(list(index))
    return pd.DataFrame(
        {
            c: [
                f"{m:.3f} [{lo:.3f}, {hi:.3f}]"
                for m, lo, hi in zip(t[c], t[f"{c}_lo"], t[f"{c}_hi"], strict=True)
            ]
            for c in columns
        },
        index=t.index,
    )


# ------------------------------------------------------------------ drawing
def plot_failure_rates(rates: pd.DataFrame, ax: Any = None) -> Any:
    """Horizontal bars: violation rate (Wilson 95% interval) per statement and construction."""
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(8, 3.4))
    labels = [f"{s}\n{c}" for s, c in zip(rates.statement, rates.construction, strict=True)]
    y = np.arange(len(rates))[::-1]
    err = np.vstack([rates.rate - rates.rate_lo, rates.rate_hi - rates.rate])
    colors = ["#1b9e77" if "Theorem" in s else "#d95f02" for s in rates.statement]
    ax.barh(y, rates.rate, xerr=err, color=colors, alpha=0.85, capsize=3)
    ax.set_yticks(y, labels, fontsize="x-small")
    ax.set_xlim(0, 1)
    ax.set_xlabel("share of instances with Err(F_sw) > Err(F_w) - misfit")
    return ax


def plot_gain_vs_disagreement(
    df: pd.DataFrame, hue: str, ax: Any = None, *, x: str = "eps_rev", y: str = "gain"
) -> Any:
    """Scatter of ``y`` against ``x`` coloured by ``hue``, with the line gain = disagreement;
    ``<x>_lo``/``<x>_hi`` (and for ``y``) columns, when present, are drawn as error bars."""
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(5, 4))
    palette = ["#1b9e77", "#d95f02", "#7570b3", "#e7298a"]
    for i, (name, sub) in enumerate(df.groupby(hue, sort=False)):
        xe = ye = None
        if f"{x}_lo" in sub:
            xe = np.vstack([sub[x] - sub[f"{x}_lo"], sub[f"{x}_hi"] - sub[x]])
        if f"{y}_lo" in sub:
            ye = np.vstack([sub[y] - sub[f"{y}_lo"], sub[f"{y}_hi"] - sub[y]])
        ax.errorbar(
            sub[x],
            sub[y],
            xerr=xe,
            yerr=ye,
            fmt="o",
            ms=4,
            alpha=0.8,
            color=palette[i % len(palette)],
            label=str(name),
            capsize=2,
            lw=1,
        )
    lo = min(0.0, float(df[x].min()), float(df[y].min()))
    hi = max(float(df[x].max()), float(df[y].max()))
    ax.plot([lo, hi], [lo, hi], color="0.3", ls="--", lw=1, label="gain = disagreement")
    ax.axhline(0, color="0.7", lw=0.8)
    ax.set_xlabel("disagreement E KL(F_sw || F_w)  [nats]")
    ax.set_ylabel("gain Err(F_w) - Err(F_sw)  [nats]")
    ax.legend(fontsize="x-small")
    return ax
