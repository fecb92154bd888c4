"""Chapter 6 (the KL extension): the computations behind its tables, figures and glued numbers.

Computing is kept apart from drawing: the ``*_table``/``planted_mixture_*``/``loss_comparison``
functions return data frames, the ``plot_*`` functions only draw them.

- :func:`failure_rates` -- how often the two non-guarantees fail, per construction
  (:func:`w2s_utils.theory.non_guarantee_trial`), and by how much.
- :func:`counterexample_table` -- a counterexample found by search, printed point by point.
- :func:`planted_mixture_from_features` / :func:`planted_mixture_task` -- the planted task of the
  chapter: real MiniLM features, a strong class of mixtures of softmax heads that contains ``F*``,
  reverse- and forward-KL students on it.
- :func:`loss_comparison` -- fine-tuned forward- vs reverse-KL students on the chapter-1 ladder,
  with intervals that hold the seeds' and the test set's noise.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any

import numpy as np
import pandas as pd
import torch

from w2s_utils import metrics, theory
from w2s_utils.engine.models import get_model
from w2s_utils.engine.planted import fit_softmax_probe, planted_texts

__all__ = [
    "CONSTRUCTIONS",
    "PlantedMixture",
    "counterexample_table",
    "failure_rates",
    "gaussian_bridge",
    "interval_table",
    "loss_comparison",
    "paired_accuracy_difference",
    "mixture_heads",
    "planted_mixture_from_features",
    "planted_mixture_task",
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
    interval and the median and largest violation (``Err(F_sw) - (Err(F_w) - misfit)``, nats).
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
        lo, hi = _wilson(m, n)
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


def _wilson(m: int, n: int, z: float = 1.959963984540054) -> tuple[float, float]:
    """Wilson score interval for a binomial rate ``m / n`` (``nan`` for ``n = 0``)."""
    if n == 0:
        return np.nan, np.nan
    p = m / n
    den = 1 + z**2 / n
    mid = (p + z**2 / (2 * n)) / den
    half = z * np.sqrt(p * (1 - p) / n + z**2 / (4 * n**2)) / den
    lo = 0.0 if m == 0 else max(0.0, mid - half)  # exact ends (no rounding residue)
    hi = 1.0 if m == n else min(1.0, mid + half)
    return float(lo), float(hi)


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
@dataclass(frozen=True)
class PlantedMixture:
    """One planted mixture task (one seed): the class, the truth, the teacher and the students.

    ``components`` ``[k, N, K]`` are ``k`` fixed softmax heads on the strong features of all ``N``
    texts; ``alpha_star`` the true mixture weights (``F* = sum_i alpha_star[i] components[i]``);
    ``weak`` a probe on the weak features trained on labels sampled from ``F*``. ``student_idx`` /
    ``test_idx`` index the student-train and test texts. ``students[name]`` are ``[N, K]``
    predictions of the students (``"reverse KL (mixture)"``, ``"forward KL (mixture)"``: mixture
    weights fitted on the student split; ``"forward KL (linear probe)"``: the logit-linear
    student). ``table``: one row per (student, split) with exact ``err_weak``, ``err_student``,
    ``gain``, ``disagreement = E KL(F_sw||F_w)``, ``eps = E KL(F_w||F_sw)`` and
    ``slack = gain - disagreement``.
    """

    components: torch.Tensor
    alpha_star: torch.Tensor
    f_star: torch.Tensor
    weak: torch.Tensor
    students: dict[str, torch.Tensor]
    weights: dict[str, torch.Tensor]
    student_idx: torch.Tensor
    test_idx: torch.Tensor
    gap: float
    table: pd.DataFrame


def mixture_heads(
    features: Any,
    gold_labels: Any,
    *,
    temperatures: Sequence[float] = (0.5, 1.0, 2.0, 4.0),
    seed: int = 0,
    l2: float = 1e-2,
) -> torch.Tensor:
    """``[k, N, K]`` components of a mixture class on ``features``: probe ``i`` is fitted to the
    gold labels of the ``i``-th of ``k = len(temperatures)`` disjoint random parts of the texts
    (seeded) and divided by ``temperatures[i]``."""

    xs = torch.as_tensor(features, dtype=torch.float64)
    gold = torch.as_tensor(gold_labels, dtype=torch.long)
    if len(temperatures) < 2 or any(not (t > 0) for t in temperatures):
        raise ValueError(f"temperatures: need >= 2 positive temperatures, got {temperatures!r}")
    n_classes = max(int(gold.max()) + 1, 2)
    gen = torch.Generator().manual_seed(seed)
    parts = torch.randperm(xs.shape[0], generator=gen).chunk(len(temperatures))
    heads = [
        fit_softmax_probe(xs[idx], gold[idx], n_classes=n_classes, l2=l2).with_temperature(t)
        for idx, t in zip(parts, temperatures, strict=True)
    ]
    return torch.stack([h.predict_proba(xs) for h in heads])


def planted_mixture_from_features(
    strong_features: Any,
    weak_features: Any,
    gold_labels: Any,
    *,
    temperatures: Sequence[float] = (0.5, 1.0, 2.0, 4.0),
    seed: int = 0,
    fractions: tuple[float, float, float] = (0.3, 0.4, 0.3),
    head_l2: float = 1e-2,
    weak_l2: float = 1e-2,
    components: Any = None,
) -> PlantedMixture:
    """A planted task whose strong class (mixtures of ``k = len(temperatures)`` heads, convex in
    probability space) contains ``F*`` by construction.

    Heads: probe ``i`` is fitted to the gold labels of the ``i``-th of ``k`` disjoint random parts
    of the texts and divided by ``temperatures[i]`` (diverse confidence). ``alpha_star`` is
    Dirichlet(1) and labels ``y ~ F*(x)`` are sampled (all seeded by ``seed``). The texts are split
    into weak-train / student-train / test by ``fractions``; the teacher is a probe on
    ``weak_features`` fitted to the sampled weak-train labels; the students are fitted on the
    student-train texts with the teacher's soft labels: the I-projection
    (:func:`~w2s_utils.theory.i_projection_mixture`), the forward-KL projection onto the same
    mixtures (:func:`~w2s_utils.theory.forward_kl_projection_mixture`) and a forward-KL linear
    probe on the strong features (the chapter-2 planted student).

    ``components`` (``[k, N, K]``, from :func:`mixture_heads`) skips fitting the heads: the
    class is then the same for every seed, and only ``alpha_star``, the labels, the splits, the
    teacher and the students change with ``seed``.
    """

    xs = torch.as_tensor(strong_features, dtype=torch.float64)
    xw = torch.as_tensor(weak_features, dtype=torch.float64)
    gold = torch.as_tensor(gold_labels, dtype=torch.long)
    if not (xs.shape[0] == xw.shape[0] == gold.shape[0]):
        raise ValueError("strong_features, weak_features, gold_labels: need one row per text")
    n, n_classes = xs.shape[0], max(int(gold.max()) + 1, 2)
    if components is None:
        comps = mixture_heads(xs, gold, temperatures=temperatures, seed=seed, l2=head_l2)
    else:
        comps = torch.as_tensor(components, dtype=torch.float64)
        if comps.dim() != 3 or comps.shape[1:] != (n, n_classes):
            raise ValueError(f"components: expected [k, {n}, {n_classes}], got {comps.shape}")
    k_heads = comps.shape[0]
    gen = torch.Generator().manual_seed(seed)
    torch.randperm(n, generator=gen)  # the heads' partition draw: same streams either way
    alpha = -torch.log(torch.rand(k_heads, generator=gen, dtype=torch.float64))
    alpha = alpha / alpha.sum()
    f_star = torch.einsum("k,knc->nc", alpha, comps)
    sampled = torch.multinomial(f_star, 1, generator=gen).squeeze(-1)
    perm = torch.randperm(n, generator=gen)
    n_w, n_s = int(round(fractions[0] * n)), int(round(fractions[1] * n))
    i_w, i_s, i_t = perm[:n_w], perm[n_w : n_w + n_s], perm[n_w + n_s :]
    teacher = fit_softmax_probe(xw[i_w], sampled[i_w], n_classes=n_classes, l2=weak_l2)
    weak = teacher.predict_proba(xw)
    rev = theory.i_projection_mixture(weak[i_s], comps[:, i_s])
    fwd = theory.forward_kl_projection_mixture(weak[i_s], comps[:, i_s])
    probe = fit_softmax_probe(xs[i_s], weak[i_s], n_classes=n_classes, l2=1e-6)
    weights = {"reverse KL (mixture)": rev.weights, "forward KL (mixture)": fwd.weights}
    students = {name: torch.einsum("k,knc->nc", a, comps) for name, a in weights.items()}
    students["forward KL (linear probe)"] = probe.predict_proba(xs)
    rows = []
    for name, st in students.items():
        for split, idx in (("student-train", i_s), ("test", i_t)):
            res = theory.kl_misfit_gain(f_star[idx], weak[idx], st[idx])
            eps = float(metrics.kl(weak[idx], st[idx]).mean())
            rows.append(
                {
                    "seed": seed,
                    "student": name,
                    "split": split,
                    "err_weak": res.err_weak,
                    "err_student": res.err_student,
                    "gain": res.gain,
                    "disagreement": res.misfit,
                    "eps": eps,
                    "slack": res.slack,
                }
            )
    return PlantedMixture(
        components=comps,
        alpha_star=alpha,
        f_star=f_star,
        weak=weak,
        students=students,
        weights=weights,
        student_idx=i_s,
        test_idx=i_t,
        gap=rev.gap,
        table=pd.DataFrame(rows),
    )


def planted_mixture_task(
    dataset: str = "sarcasm",
    weak: str = "minilm-l1",
    strong: str = "minilm-l6",
    n: int = 4000,
    seeds: Iterable[int] = (0,),
    **kwargs: Any,
) -> tuple[list[PlantedMixture], pd.DataFrame]:
    """:func:`planted_mixture_from_features` on ``n`` real texts of ``dataset`` (the fixed subset
    :func:`~w2s_utils.engine.planted.planted_texts`) with the frozen, cached sentence features of
    ``weak`` and ``strong``, once per seed, all seeds sharing one class (heads fitted once, with
    :func:`mixture_heads` at seed 0); returns the tasks and their stacked tables."""

    texts, gold = planted_texts(dataset, n)
    k = max(int(gold.max()) + 1, 2)
    xs = get_model(strong, n_classes=k, mode="probe").features(texts)
    xw = get_model(weak, n_classes=k, mode="probe").features(texts)
    head_kw = {a: kwargs.pop(a) for a in ("temperatures", "head_l2") if a in kwargs}
    temps = head_kw.get("temperatures", (0.5, 1.0, 2.0, 4.0))
    comps = mixture_heads(xs, gold, temperatures=temps, seed=0, l2=head_kw.get("head_l2", 1e-2))
    tasks = [
        planted_mixture_from_features(xs, xw, gold, seed=int(s), components=comps, **kwargs)
        for s in seeds
    ]
    return tasks, pd.concat([t.table for t in tasks], ignore_index=True)


def planted_summary(table: pd.DataFrame, tol: float = 1e-9) -> pd.DataFrame:
    """Per (student, split) of stacked :class:`PlantedMixture` tables: number of seeds, how many
    fall below the line gain = disagreement (``slack < -tol``), the smallest slack and the mean
    gain, disagreement and ``eps``."""
    return table.groupby(["student", "split"], sort=False).agg(
        seeds=("slack", "size"),
        below_line=("slack", lambda s: int((s < -tol).sum())),
        min_slack=("slack", "min"),
        gain=("gain", "mean"),
        disagreement=("disagreement", "mean"),
        eps=("eps", "mean"),
    )


# ------------------------------------------------------------------ Gaussian bridge
def gaussian_bridge(f_star: Any, weak: Any, student: Any, sigma: float = 1.0) -> pd.DataFrame:
    """Chapter 5's squared-loss quantities for real outputs ``[N]`` next to the same quantities
    as KL divergences between Gaussians ``N(f(x), sigma^2)`` (computed independently with
    ``torch.distributions``): ``err_weak``, ``err_student``, ``disagreement`` and ``slack``.
    The two columns agree: ``KL(N(a, s^2) || N(b, s^2)) = (a - b)^2 / (2 s^2)``."""
    from torch.distributions import Normal, kl_divergence

    sq = theory.squared_misfit_gain(f_star, weak, student)
    fs, fw, fsw = (torch.as_tensor(v, dtype=torch.float64) for v in (f_star, weak, student))

    def gkl(a: torch.Tensor, b: torch.Tensor) -> float:
        return float(kl_divergence(Normal(a, sigma), Normal(b, sigma)).mean())

    g = {"err_weak": gkl(fs, fw), "err_student": gkl(fs, fsw), "disagreement": gkl(fsw, fw)}
    g["slack"] = g["err_weak"] - g["disagreement"] - g["err_student"]
    half = 1.0 / (2 * sigma**2)
    squared = [sq.err_weak * half, sq.err_student * half, sq.misfit * half, sq.slack * half]
    return pd.DataFrame(
        {"squared loss / (2 sigma^2)": squared, "Gaussian KL": list(g.values())}, index=list(g)
    )


# ------------------------------------------------------------------ fine-tuned students
def _stack(results: Sequence[Any], fn) -> np.ndarray:
    return np.stack([np.asarray(fn(r), dtype=np.float64) for r in results])


def _per_example(results: Sequence[Any]) -> dict[str, np.ndarray]:
    """``[n_seeds, N]`` per-example arrays of one (dataset, weak, loss) cell."""

    def t(a: np.ndarray) -> torch.Tensor:
        return torch.as_tensor(a, dtype=torch.float64)

    def correct(r: Any, p: np.ndarray) -> np.ndarray:
        return (p.argmax(1) == r.labels).astype(np.float64)

    def nll(r: Any, p: np.ndarray) -> np.ndarray:
        return metrics.log_loss_per_example(
            t(p).clamp_min(1e-12), torch.as_tensor(r.labels)
        ).numpy()

    return {
        "c_weak": _stack(results, lambda r: correct(r, r.weak)),
        "c_student": _stack(results, lambda r: correct(r, r.student)),
        "c_ceiling": _stack(results, lambda r: correct(r, r.ceiling)),
        "gain": _stack(results, lambda r: nll(r, r.weak) - nll(r, r.student)),
        "disagreement": _stack(results, lambda r: metrics.kl(t(r.student), t(r.weak)).numpy()),
        "eps": _stack(results, lambda r: metrics.kl(t(r.weak), t(r.student)).numpy()),
    }


def _order(ids: Sequence[str], ref: Sequence[str]) -> np.ndarray:
    """Indices that put a run's test examples (``ids``) in the order of ``ref`` (the same set)."""
    pos = {t: i for i, t in enumerate(ids)}
    if len(pos) != len(ids) or set(pos) != set(ref) or len(ref) != len(ids):
        raise ValueError("results: the runs of one cell have different test sets")
    return np.array([pos[t] for t in ref])


def _aligned(results: Sequence[Any]) -> list[Any]:
    """The runs with their test arrays in one order, that of the sorted test ids (runs of
    different seeds share one test set, not necessarily in one order)."""
    ref = sorted(results[0].ids)
    out = []
    for r in results:
        o = _order(r.ids, ref)
        out.append(
            SimpleNamespace(
                config=r.config,
                ids=list(ref),
                labels=np.asarray(r.labels)[o],
                weak=np.asarray(r.weak)[o],
                student=np.asarray(r.student)[o],
                ceiling=np.asarray(r.ceiling)[o],
            )
        )
    return out


def loss_comparison(
    results: Sequence[Any], *, n_resamples: int = 1000, level: float = 0.95
) -> pd.DataFrame:
    """Per (dataset, weak, loss): accuracies, PGR, gain ``CE(F_w) - CE(F_sw)`` (= the estimate of
    ``Err(F_w) - Err(F_sw)`` from hard labels), the disagreement ``E KL(F_sw||F_w)``, ``eps`` and
    ``slack = gain - disagreement``, each with a
    :func:`~w2s_utils.metrics.seeds_and_test_interval` (columns ``<m>``, ``<m>_lo``, ``<m>_hi``).
    The runs of a cell must share one test set (they do: the test split is seed-independent).
    """
    groups: dict[tuple[str, str, str], list[Any]] = {}
    for r in results:
        c = r.config
        groups.setdefault((c.dataset, c.weak, c.loss), []).append(r)
    rows = []
    for (ds, weak, loss), rs in groups.items():
        a = _per_example(_aligned(rs))
        kw = {"level": level}
        ivs = {
            "weak_acc": metrics.seeds_and_test_interval(a["c_weak"], **kw),
            "student_acc": metrics.seeds_and_test_interval(a["c_student"], **kw),
            "ceiling_acc": metrics.seeds_and_test_interval(a["c_ceiling"], **kw),
            "pgr": metrics.seeds_and_test_interval(
                a["c_student"] - a["c_weak"], a["c_ceiling"] - a["c_weak"], **kw
            ),
            "gain": metrics.seeds_and_test_interval(a["gain"], **kw),
            "disagreement": metrics.seeds_and_test_interval(a["disagreement"], **kw),
            "eps": metrics.seeds_and_test_interval(a["eps"], **kw),
            "slack": metrics.seeds_and_test_interval(a["gain"] - a["disagreement"], **kw),
        }
        row: dict[str, Any] = {"dataset": ds, "weak": weak, "loss": loss, "n_seeds": len(rs)}
        for m, iv in ivs.items():
            row[m], row[f"{m}_lo"], row[f"{m}_hi"] = iv.point, iv.lo, iv.hi
        rows.append(row)
    return pd.DataFrame(rows)


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


def paired_accuracy_difference(
    results_a: Sequence[Any], results_b: Sequence[Any], *, n_resamples: int = 1000
) -> pd.DataFrame:
    """Per (dataset, weak): student accuracy of ``results_a`` minus that of ``results_b`` (same
    configs but the loss, matched by seed), paired over seeds and test examples (the runs' test
    examples are matched by id)."""

    def key(r: Any) -> tuple[str, str, int]:
        return (r.config.dataset, r.config.weak, r.config.seed)

    def correct(r: Any, ref: Sequence[str]) -> np.ndarray:
        o = _order(r.ids, ref)
        return (np.asarray(r.student)[o].argmax(1) == np.asarray(r.labels)[o]).astype(float)

    b_by = {key(r): r for r in results_b}
    refs: dict[tuple[str, str], list[str]] = {}
    cells: dict[tuple[str, str], list[np.ndarray]] = {}
    for r in results_a:
        if key(r) not in b_by:
            continue
        ref = refs.setdefault(key(r)[:2], sorted(r.ids))
        diff = correct(r, ref) - correct(b_by[key(r)], ref)
        cells.setdefault(key(r)[:2], []).append(diff)
    rows = []
    for (ds, weak), diffs in cells.items():
        iv = metrics.seeds_and_test_interval(np.stack(diffs))
        rows.append(
            {
                "dataset": ds,
                "weak": weak,
                "n_seeds": len(diffs),
                "diff": iv.point,
                "diff_lo": iv.lo,
                "diff_hi": iv.hi,
            }
        )
    return pd.DataFrame(rows)


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
    df: pd.DataFrame, hue: str, ax: Any = None, *, x: str = "disagreement", y: str = "gain"
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
