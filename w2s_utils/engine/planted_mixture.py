"""The planted mixture task (chapter 6): real text whose strong class is convex in probability space
and contains the truth, so that the reverse-KL theorem's hypotheses hold exactly.

On ``N`` real texts (:func:`~w2s_utils.engine.planted.planted_texts`) with frozen sentence
features of a strong and a weak model:

1. ``k`` softmax probes on the strong features, each fitted to the gold labels of one of ``k``
   disjoint random parts of the texts and divided by its own temperature, are the components
   ``C_1 .. C_k`` of the strong class (mixtures ``sum_i a_i C_i``, ``a`` in the simplex);
2. ``F* = sum_i a*_i C_i`` with ``a* ~ Dirichlet(1)``; labels ``y ~ F*(x)`` are sampled;
3. the teacher is a probe on the weak features trained on the sampled labels of a weak-train split;
4. students fitted to the teacher's soft labels on a student-train split: the I-projection onto
   the mixtures (reverse KL, :func:`~w2s_utils.theory.i_projection_mixture`), the forward-KL
   projection onto the same mixtures and a forward-KL linear probe on the strong features.

Exact errors ``E KL(F*||.)`` on the student-train split (where the theorem holds for the empirical
distribution) and on the held-out test split (:func:`~w2s_utils.theory.kl_misfit_gain`).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd
import torch

from w2s_utils import metrics, theory
from w2s_utils._validate import as_tensor, check_labels
from w2s_utils.engine.models import get_model
from w2s_utils.engine.planted import check_features, fit_softmax_probe, planted_texts

__all__ = [
    "PlantedMixture",
    "mixture_heads",
    "planted_mixture_from_features",
    "planted_mixture_task",
]


@dataclass(frozen=True)
class PlantedMixture:
    """One planted mixture task (one seed): the class, the truth, the teacher and the students.

    ``components`` ``[k, N, K]`` are ``k`` fixed softmax heads on the strong features of all ``N``
    texts; ``alpha_star`` the true mixture weights (``F* = sum_i alpha_star[i] components[i]``);
    ``weak`` a probe on the weak features trained on labels sampled from ``F*``. ``student_idx`` /
    ``test_idx`` index the student-train and test texts. ``students[name]`` are ``[N, K]``
    predictions of the students (``"reverse KL (mixture)"``, ``"forward KL (mixture)"``: mixture
    weights fitted on the student split; ``"forward KL (linear probe)"``: the logit-linear
    student). ``gap`` is the I-projection's duality gap. ``table``: one row per (student, split)
    with exact ``err_weak``, ``err_student``, ``gain = err_weak - err_student``, ``eps_rev = E
    KL(F_sw||F_w)`` (the disagreement), ``eps = E KL(F_w||F_sw)`` and ``slack = gain - eps_rev``
    (all in nats; the theorem says ``slack >= 0`` for the reverse-KL student on its own split),
    ``min_weight`` (the student's smallest mixture weight; NaN for the linear probe: every weight
    ``> 0`` puts a mixture student in the class's relative interior) and ``gap`` (the
    I-projection's duality gap, the same on every row of a seed).
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


def _gold(labels: Any, n: int) -> torch.Tensor:
    t = as_tensor(labels, "gold_labels", floating=False)
    k = max(int(t.max()) + 1, 2) if t.numel() else 2
    gold = check_labels(t, k, "gold_labels")
    if gold.dim() != 1 or gold.shape[0] != n:
        raise ValueError(
            f"gold_labels: need one label per text ({n}), got shape {tuple(gold.shape)}"
        )
    return gold


def mixture_heads(
    features: Any,
    gold_labels: Any,
    *,
    temperatures: Sequence[float] = (0.5, 1.0, 2.0, 4.0),
    seed: int = 0,
    l2: float = 1e-2,
) -> torch.Tensor:
    """``[k, N, K]`` components of a mixture class on ``features`` ``[N, D]``: probe ``i`` is
    fitted to the gold labels of the ``i``-th of ``k = len(temperatures)`` disjoint random parts
    of the texts (seeded) and divided by ``temperatures[i]``."""
    xs = check_features(features, "features").to(torch.float64)
    gold = _gold(gold_labels, xs.shape[0])
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
    probability space) contains ``F*`` by construction (see the module docstring).

    ``alpha_star`` is Dirichlet(1) and labels ``y ~ F*(x)`` are sampled (all seeded by ``seed``).
    The texts are split into weak-train / student-train / test by ``fractions``. ``components``
    (``[k, N, K]``, from :func:`mixture_heads`) skips fitting the heads: the class is then the
    same for every seed, and only ``alpha_star``, the labels, the splits, the teacher and the
    students change with ``seed``.
    """
    xs = check_features(strong_features, "strong_features").to(torch.float64)
    xw = check_features(weak_features, "weak_features").to(torch.float64)
    gold = _gold(gold_labels, xs.shape[0])
    if xw.shape[0] != xs.shape[0]:
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
            res = theory.kl_misfit_gain(weak[idx], st[idx], f_star=f_star[idx])
            rows.append(
                {
                    "seed": seed,
                    "student": name,
                    "split": split,
                    "err_weak": res.err_weak,
                    "err_student": res.err_student,
                    "gain": res.gain,
                    "eps_rev": res.eps_rev,
                    "eps": float(metrics.kl(weak[idx], st[idx]).mean()),
                    "slack": res.slack,
                    "min_weight": float(weights[name].min()) if name in weights else math.nan,
                    "gap": rev.gap,
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
