"""Planted tasks: real text with a *known* ground truth, so that Err is exact (chapter 2).

On ordinary gold-label data only differences of the error ``Err(F) = E_x KL(F*(x) || F(x))`` are
estimable (the conditional entropy ``H(Y|X)`` is unknown). A planted task removes that obstacle:

1. ``F* := softmax(head(phi_s(x)) / temperature)`` -- a fixed linear head on the strong model's
   frozen features of real texts (the head is a logistic probe fitted on the gold labels);
2. labels are re-sampled, ``y ~ F*(x)``, with a seeded generator;
3. the weak teacher ``F_w`` is a probe on a weaker representation trained on sampled labels, the
   student ``F_sw`` a probe on the strong features trained on ``F_w``'s soft labels (forward
   KL = soft cross-entropy), the ceiling ``F_s`` a strong probe trained on sampled labels.

Because ``F*`` is known, ``Err`` of every predictor is computed exactly on the test texts, and
``F*`` lies in the student's class (realizability). Everything here is a convex problem solved to
(numerical) optimality in float64 with Newton's method: seconds on a CPU for thousands of texts.

Public API: :func:`fit_softmax_probe` -> :class:`SoftmaxProbe`, :func:`planted_from_features`
(pure, on feature arrays) and :func:`planted_task` (fetches cached features through the engine,
for the fixed text subset :func:`planted_texts`), both returning a :class:`PlantedResult`. The
planted *mixture* task of chapter 6 (a strong class convex in probability space) is built on these
probes in :mod:`w2s_utils.engine.planted_mixture`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import torch

from w2s_utils._validate import as_tensor, check_labels, check_probs
from w2s_utils.engine.data import load_texts
from w2s_utils.engine.models import MODELS, check_model_name, get_model
from w2s_utils.metrics import kl

__all__ = [
    "PlantedResult",
    "SoftmaxProbe",
    "check_features",
    "fit_softmax_probe",
    "planted_from_features",
    "planted_task",
    "planted_texts",
]


@dataclass(frozen=True)
class SoftmaxProbe:
    """A multinomial logistic head ``softmax((z_standardised @ weight + bias) / temperature)``."""

    mean: torch.Tensor  # [D] feature mean used for standardisation
    scale: torch.Tensor  # [D] feature scale used for standardisation
    weight: torch.Tensor  # [D, K]
    bias: torch.Tensor  # [K]
    temperature: float = 1.0

    def logits(self, features: Any) -> torch.Tensor:
        """Logits ``[N, K]`` (already divided by the temperature) for features ``[N, D]``."""
        x = check_features(features, "features", self.weight.shape[0])
        x = x.to(device=self.weight.device, dtype=self.weight.dtype)
        return ((x - self.mean) / self.scale @ self.weight + self.bias) / self.temperature

    def predict_proba(self, features: Any) -> torch.Tensor:
        """Class probabilities ``[N, K]``."""
        return torch.softmax(self.logits(features), dim=-1)

    def with_temperature(self, temperature: float) -> SoftmaxProbe:
        """The same head with another temperature (``> 0``)."""
        _check_positive(temperature, "temperature")
        return SoftmaxProbe(self.mean, self.scale, self.weight, self.bias, float(temperature))


def _check_positive(value: float, name: str) -> None:
    if not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0):
        raise ValueError(f"{name}: must be a finite number > 0, got {value!r}")


def check_features(x: Any, name: str, dim: int | None = None) -> torch.Tensor:
    """Validated features ``[N, D]`` (finite, non-empty; ``D == dim`` when given), as a tensor
    of the input's floating dtype."""
    t = as_tensor(x, name)
    if t.dim() != 2 or t.shape[0] == 0 or t.shape[1] == 0:
        raise ValueError(
            f"{name}: need a non-empty 2-D array [N, D] of features, got shape {tuple(t.shape)}"
        )
    if dim is not None and t.shape[1] != dim:
        raise ValueError(
            f"{name}: has {t.shape[1]} feature dimensions, the probe was fitted on {dim}; "
            "pass features from the same model"
        )
    if not bool(torch.isfinite(t).all()):
        raise ValueError(f"{name}: contains NaN or inf; check the feature extractor")
    return t


def fit_softmax_probe(
    features: Any,
    targets: Any,
    *,
    n_classes: int | None = None,
    l2: float = 1e-3,
    max_iter: int = 100,
) -> SoftmaxProbe:
    """Fit a multinomial logistic probe by minimising soft cross-entropy + ``l2/2 * ||W||^2``.

    ``targets`` are integer labels ``[N]`` (hard labels) or probabilities ``[N, K]`` (soft labels:
    the objective is then ``E_x KL(target || probe) + const``, the forward-KL student objective).
    Features are standardised with their own mean/scale (an affine map, so the class of linear heads
    is unchanged). Solved in float64 by damped Newton steps to a gradient below 1e-10;
    deterministic.
    """
    x = check_features(features, "features").to(torch.float64)
    if not (isinstance(l2, (int, float)) and math.isfinite(l2) and l2 >= 0):
        raise ValueError(f"l2: must be a finite number >= 0, got {l2!r}")
    if not (isinstance(max_iter, int) and max_iter > 0):
        raise ValueError(f"max_iter: must be a positive int, got {max_iter!r}")
    t_raw = as_tensor(targets, "targets", floating=False)
    if t_raw.is_floating_point() and t_raw.dim() == 2:
        target = check_probs(t_raw, "targets").to(device=x.device, dtype=torch.float64)
        if n_classes is not None and target.shape[1] != n_classes:
            raise ValueError(
                f"targets: has {target.shape[1]} classes but n_classes={n_classes}; make them agree"
            )
    else:
        if t_raw.dim() != 1:
            raise ValueError(
                f"targets: need labels [N] or probabilities [N, K], got shape {tuple(t_raw.shape)}"
            )
        k = int(n_classes) if n_classes is not None else int(t_raw.max()) + 1
        if k < 2:
            raise ValueError("n_classes: need at least 2 classes; pass n_classes explicitly")
        labels = check_labels(t_raw, k, "targets").to(x.device)
        target = torch.nn.functional.one_hot(labels, k).to(torch.float64)
    if target.shape[0] != x.shape[0]:
        raise ValueError(
            f"targets: {target.shape[0]} rows but features has {x.shape[0]}; need one per example"
        )
    mean = x.mean(dim=0)
    scale = x.std(dim=0, unbiased=False).clamp_min(1e-12)
    xs = (x - mean) / scale
    theta = _newton_softmax(xs, target, l2, max_iter)
    return SoftmaxProbe(mean, scale, theta[:-1].clone(), theta[-1].clone(), 1.0)


def _newton_softmax(
    xs: torch.Tensor, target: torch.Tensor, l2: float, max_iter: int
) -> torch.Tensor:
    """Damped Newton for ``-mean sum_k t_k log softmax(z W + b)_k + l2/2 ||W||^2``.

    Parametrised with the last class as reference (its logit is 0), which removes softmax's
    invariance to shifting all logits, so the Hessian is positive definite: ``(K-1)(D+1)``
    unknowns, a handful of Newton steps. Returns ``[D + 1, K]`` (weights, then the bias row; the
    last column is zero). Stops when the largest gradient entry is below ``1e-10`` (or after
    ``max_iter`` steps).
    """
    n, d = xs.shape
    k = target.shape[1]
    m = k - 1
    z = torch.cat([xs, torch.ones(n, 1, dtype=xs.dtype, device=xs.device)], dim=1)
    penal = torch.ones(d + 1, 1, dtype=xs.dtype, device=xs.device)
    penal[-1] = 0.0  # the bias is not penalised
    diag = (l2 * penal).expand(d + 1, m).T.reshape(-1) + 1e-12
    theta = torch.zeros(d + 1, m, dtype=xs.dtype, device=xs.device)
    zero = torch.zeros(n, 1, dtype=xs.dtype, device=xs.device)

    def logits(th: torch.Tensor) -> torch.Tensor:
        return torch.cat([z @ th, zero], dim=1)

    def loss_of(th: torch.Tensor) -> float:
        logp = torch.log_softmax(logits(th), dim=-1)
        return float(-(target * logp).sum(-1).mean() + 0.5 * l2 * (penal * th**2).sum())

    loss = loss_of(theta)
    eye_m = torch.eye(m, dtype=xs.dtype, device=xs.device)
    for _ in range(max_iter):
        p = torch.softmax(logits(theta), dim=-1)
        grad = z.T @ (p - target)[:, :m] / n + l2 * penal * theta
        if float(grad.abs().max()) < 1e-10:
            break
        # Hessian blocks H[a, b] = Z^T diag(p_a (delta_ab - p_b)) Z / n, a, b < K - 1
        pm = p[:, :m]
        w = pm[:, :, None] * (eye_m - pm[:, None, :])
        blocks = [[z.T @ (z * w[:, a, b, None]) for b in range(m)] for a in range(m)]
        h = torch.cat([torch.cat(row, dim=1) for row in blocks]) / n + torch.diag(diag)
        step = torch.linalg.solve(h, grad.T.reshape(-1)).reshape(m, d + 1).T
        decrease = float((grad * step).sum())
        t = 1.0
        while True:
            cand = theta - t * step
            new = loss_of(cand)
            if new <= loss - 1e-4 * t * decrease or t < 1e-8:
                break
            t *= 0.5
        if new > loss:
            break
        theta, loss = cand, new
    return torch.cat([theta, torch.zeros(d + 1, 1, dtype=xs.dtype, device=xs.device)], dim=1)


@dataclass(frozen=True)
class PlantedResult:
    """A planted weak-to-strong run: test-set predictions of every model and their exact errors.

    ``f_star``, ``weak``, ``student``, ``ceiling``: probabilities ``[N_test, K]`` (float64) of the
    planted
    truth, the weak teacher, the student and the strong ceiling; ``labels``: labels sampled from
    ``f_star`` on the test texts. ``err[name]`` = exact ``E_x KL(F* || F)`` over the test texts,
    ``ce[name]`` = cross-entropy on the sampled test labels (the hard-label estimate), ``accuracy``
    on the sampled labels; ``bayes_entropy`` = ``E_x H(F*(x))``; ``eps`` = the student's objective
    ``E_x KL(F_w || F_sw)`` on the test texts. ``gold_accuracy`` = accuracy of ``F*`` against the
    original gold labels (how close the planted truth is to the real task).
    """

    f_star: torch.Tensor
    weak: torch.Tensor
    student: torch.Tensor
    ceiling: torch.Tensor
    labels: torch.Tensor
    err: dict[str, float]
    ce: dict[str, float]
    accuracy: dict[str, float]
    bayes_entropy: float
    eps: float
    gold_accuracy: float
    config: dict[str, Any] = field(default_factory=dict)

    def predictions(self) -> dict[str, torch.Tensor]:
        """``{"weak": ..., "student": ..., "ceiling": ...}`` (the three predictors by role)."""
        return {"weak": self.weak, "student": self.student, "ceiling": self.ceiling}

    def exact_err(self, probs: Any) -> float:
        """Exact ``Err(F) = E_x KL(F*(x) || F(x))`` on the test texts for any predictor ``F``."""
        p = check_probs(probs, "probs")
        if p.dim() == 1:
            p = torch.stack([1 - p, p], dim=-1)
        if tuple(p.shape) != tuple(self.f_star.shape):
            raise ValueError(
                f"probs: shape {tuple(p.shape)} does not match the test set "
                f"{tuple(self.f_star.shape)}; pass predictions for the test texts"
            )
        return float(kl(self.f_star, p.to(self.f_star)).mean())


def _split_sizes(n: int, fractions: tuple[float, float, float]) -> tuple[int, int, int]:
    if len(fractions) != 3 or any(not (f > 0) for f in fractions) or abs(sum(fractions) - 1) > 1e-9:
        raise ValueError(
            f"fractions: need three positive fractions (weak-train, student-train, test) summing "
            f"to 1, got {fractions!r}"
        )
    n_weak = int(round(fractions[0] * n))
    n_student = int(round(fractions[1] * n))
    n_test = n - n_weak - n_student
    if min(n_weak, n_student, n_test) < 2:
        raise ValueError(
            f"n: {n} examples give splits of {n_weak}/{n_student}/{n_test}; need >= 2 in each, "
            "pass more examples"
        )
    return n_weak, n_student, n_test


def planted_from_features(
    strong_features: Any,
    weak_features: Any,
    gold_labels: Any,
    *,
    temperature: float = 1.0,
    seed: int = 0,
    fractions: tuple[float, float, float] = (0.3, 0.4, 0.3),
    head_l2: float = 1e-2,
    weak_l2: float = 1e-2,
    student_l2: float = 1e-4,
    ceiling_l2: float = 1e-2,
    n_classes: int | None = None,
) -> PlantedResult:
    """Build a planted task on given features and run weak teacher, student and ceiling.

    ``strong_features [N, D_s]`` and ``weak_features [N, D_w]`` describe the same ``N`` texts;
    ``gold_labels [N]`` are only used to fit the planted head ``F*`` (a probe on the strong
    features, L2 ``head_l2``, divided by ``temperature``: > 1 softer, < 1 sharper). With a generator
    seeded by ``seed`` the texts are permuted into weak-train / student-train / test splits
    (``fractions``) and labels ``y ~ F*(x)`` are sampled. Teacher: weak-feature probe on the weak
    split's sampled labels (L2 ``weak_l2``). Student: strong probe on the teacher's soft labels on
    the student split (L2 ``student_l2``, small, so it nearly attains the forward-KL projection).
    Ceiling: strong probe on the student split's sampled labels (L2 ``ceiling_l2``: hard labels
    need more regularisation than soft ones).
    """
    _check_positive(temperature, "temperature")
    if not isinstance(seed, int) or isinstance(seed, bool):
        raise ValueError(f"seed: must be an int, got {seed!r}")
    xs = check_features(strong_features, "strong_features").to(torch.float64)
    xw = check_features(weak_features, "weak_features").to(device=xs.device, dtype=torch.float64)
    if xw.shape[0] != xs.shape[0]:
        raise ValueError(
            f"weak_features: {xw.shape[0]} rows but strong_features has {xs.shape[0]}; "
            "pass features of the same texts"
        )
    gold_raw = as_tensor(gold_labels, "gold_labels", floating=False)
    if n_classes is not None:
        k = int(n_classes)
    else:
        k = int(gold_raw.max()) + 1 if gold_raw.numel() else 0
    if k < 2:
        raise ValueError("gold_labels: need at least 2 classes (or pass n_classes >= 2)")
    gold = check_labels(gold_raw, k, "gold_labels").to(xs.device)
    if gold.dim() != 1 or gold.shape[0] != xs.shape[0]:
        raise ValueError(
            f"gold_labels: shape {tuple(gold.shape)} does not match {xs.shape[0]} texts; "
            "need one label per text"
        )
    n = xs.shape[0]
    n_weak, n_student, _ = _split_sizes(n, tuple(fractions))

    head = fit_softmax_probe(xs, gold, n_classes=k, l2=head_l2).with_temperature(temperature)
    f_star_all = head.predict_proba(xs)
    gold_accuracy = float((f_star_all.argmax(-1) == gold).double().mean())

    gen = torch.Generator(device="cpu").manual_seed(seed)
    perm = torch.randperm(n, generator=gen).to(xs.device)
    sampled = torch.multinomial(f_star_all.cpu(), 1, generator=gen).squeeze(-1).to(xs.device)
    i_w, i_s, i_t = perm[:n_weak], perm[n_weak : n_weak + n_student], perm[n_weak + n_student :]

    teacher = fit_softmax_probe(xw[i_w], sampled[i_w], n_classes=k, l2=weak_l2)
    student = fit_softmax_probe(xs[i_s], teacher.predict_proba(xw[i_s]), n_classes=k, l2=student_l2)
    ceiling = fit_softmax_probe(xs[i_s], sampled[i_s], n_classes=k, l2=ceiling_l2)

    f_star = f_star_all[i_t]
    labels = sampled[i_t]
    preds = {
        "weak": teacher.predict_proba(xw[i_t]),
        "student": student.predict_proba(xs[i_t]),
        "ceiling": ceiling.predict_proba(xs[i_t]),
    }
    rows = torch.arange(labels.shape[0], device=labels.device)
    err = {name: float(kl(f_star, p).mean()) for name, p in preds.items()}
    ce = {name: float(-torch.log(p[rows, labels]).mean()) for name, p in preds.items()}
    acc = {name: float((p.argmax(-1) == labels).double().mean()) for name, p in preds.items()}
    bayes_entropy = float(-(f_star * torch.log(f_star.clamp_min(1e-300))).sum(-1).mean())
    eps = float(kl(preds["weak"], preds["student"]).mean())
    config = {
        "temperature": float(temperature),
        "seed": seed,
        "n": n,
        "fractions": tuple(float(f) for f in fractions),
        "n_classes": k,
        "head_l2": head_l2,
        "weak_l2": weak_l2,
        "student_l2": student_l2,
        "ceiling_l2": ceiling_l2,
    }
    return PlantedResult(
        f_star=f_star,
        weak=preds["weak"],
        student=preds["student"],
        ceiling=preds["ceiling"],
        labels=labels,
        err=err,
        ce=ce,
        accuracy=acc,
        bayes_entropy=bayes_entropy,
        eps=eps,
        gold_accuracy=gold_accuracy,
        config=config,
    )


def _check_feature_model(name: str, role: str) -> None:
    if name in MODELS and not MODELS[name].pretrained:
        raise ValueError(
            f"{role}: {name!r} has no frozen pretrained features; pass a pretrained model such as "
            f"{', '.join(m for m, spec in MODELS.items() if spec.pretrained)}"
        )
    check_model_name(name)


def _feature_model(name: str, role: str, n_classes: int) -> Any:
    _check_feature_model(name, role)
    return get_model(name, n_classes=n_classes, mode="probe")


def planted_texts(dataset: str, n: int) -> tuple[list[str], torch.Tensor]:
    """A fixed, content-defined subset of ``n`` texts of ``dataset`` and their gold labels.

    The texts with the smallest stable ids (:func:`~w2s_utils.engine.data.text_id`,
    a hash of the text):
    the same ``n`` always gives the same texts, whatever the seed, so their features are computed
    once and then read from the engine's feature cache.
    """
    if not isinstance(n, int) or isinstance(n, bool) or n < 10:
        raise ValueError(f"n: must be an int >= 10 (number of texts), got {n!r}")
    ds = load_texts(dataset, log=None)
    if n > len(ds):
        raise ValueError(f"n: {dataset!r} has {len(ds)} texts, asked for {n}; pass a smaller n")
    order = sorted(range(len(ds)), key=lambda i: ds.ids[i])[:n]
    texts = [ds.texts[i] for i in order]
    labels = torch.as_tensor(np.asarray(ds.labels)[order], dtype=torch.long)
    return texts, labels


def planted_task(
    dataset: str = "sarcasm",
    weak: str = "minilm-l1",
    strong: str = "minilm-l6",
    n: int = 4000,
    seed: int = 0,
    temperature: float = 1.0,
    **kwargs: Any,
) -> PlantedResult:
    """Planted task on ``n`` real texts of ``dataset`` with frozen ``weak``/``strong`` features.

    The features are the models' mean-pooled final-layer sentence embeddings
    (``get_model(name, mode="probe").features``, cached per text by the engine); ``kwargs`` go to
    :func:`planted_from_features`. ``bow``/``tiny-transformer`` have no frozen features: use a
    pretrained model (e.g. ``minilm-l1`` as the weak and ``minilm-l6`` as the strong model).
    """
    _check_positive(temperature, "temperature")
    _check_feature_model(weak, "weak")
    _check_feature_model(strong, "strong")
    texts, gold = planted_texts(dataset, n)
    k = int(gold.max()) + 1
    xs = _feature_model(strong, "strong", max(k, 2)).features(texts)
    xw = _feature_model(weak, "weak", max(k, 2)).features(texts)
    res = planted_from_features(
        xs, xw, gold, temperature=temperature, seed=seed, n_classes=max(k, 2), **kwargs
    )
    config = {**res.config, "dataset": dataset, "weak": weak, "strong": strong}
    return replace(res, config=config)
