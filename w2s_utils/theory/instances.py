"""Seeded random instances on which the book's theorems can be checked exactly.

Every builder is deterministic in ``seed``, works in float64 and returns a small frozen dataclass of
torch tensors (CPU). The instances make the hypotheses of a result hold by construction, so that the
ground truth ``F*`` is known and ``Err`` is computable exactly:

- :func:`mixture_instance` -- ``F*`` is a convex combination (in probability space) of ``k`` fixed
  softmax heads on random features: the convex class of Theorem 3. The weak teacher is arbitrary.
- :func:`logit_linear_instance` -- ``F* = softmax(W* phi)``: the logit-linear class of the
  forward-KL proposition (and of the reverse-KL counterexample).
- :func:`charikar_instance` -- Charikar et al.'s squared-loss set-up: ``x ~ N(0, I)``, a random
  ReLU MLP strong representation, ``F*`` a linear head on it, and a weaker random representation.

The solvers that produce the student (``F_sw``) live in :mod:`w2s_utils.theory`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
import torch
from torch import Tensor

from w2s_utils.theory.flooring import mix_with_uniform

__all__ = [
    "MixtureInstance",
    "LogitLinearInstance",
    "RegressionInstance",
    "random_simplex",
    "weak_predictions",
    "mixture_instance",
    "logit_linear_instance",
    "random_relu_mlp",
    "charikar_instance",
    "NoFloorInstance",
    "no_floor_instance",
    "dirichlet_triple",
    "TEACHER_NOISE",
    "floored_triple",
    "calibration_instance",
    "multiclass_calibration_instance",
]

_DTYPE = torch.float64


def _generator(seed: int) -> torch.Generator:
    if not isinstance(seed, int) or isinstance(seed, bool):
        raise ValueError(f"seed must be an int, got {seed!r}")
    return torch.Generator().manual_seed(seed)


def _check_positive_int(value: int, name: str, minimum: int = 1) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
        raise ValueError(f"{name} must be an int >= {minimum}, got {value!r}")


def _check_floor(floor: float, n_classes: int) -> None:
    if not 0.0 <= floor < 1.0 / n_classes:
        raise ValueError(
            f"floor must lie in [0, 1/n_classes) = [0, {1.0 / n_classes:.4g}), got {floor!r}"
        )


def random_simplex(
    n: int, n_classes: int, *, concentration: float = 1.0, floor: float = 0.0, seed: int = 0
) -> Tensor:
    """``n`` i.i.d. Dirichlet(``concentration``) rows in the simplex, shape ``[n, n_classes]``.

    With ``floor > 0`` every row is mixed with the uniform distribution,
    ``(1 - K floor) p + floor`` (:func:`~w2s_utils.theory.mix_with_uniform`), so every entry is at
    least ``floor`` (the gamma-floor of the two-sided bound).
    """
    _check_positive_int(n, "n")
    _check_positive_int(n_classes, "n_classes", 2)
    _check_floor(floor, n_classes)
    if not concentration > 0:
        raise ValueError(f"concentration must be > 0, got {concentration!r}")
    rng = np.random.default_rng(seed)
    p = torch.from_numpy(rng.dirichlet(np.full(n_classes, float(concentration)), size=n))
    p = p.clamp_min(0.0)
    p = p / p.sum(-1, keepdim=True)
    return mix_with_uniform(p, floor)


def weak_predictions(
    f_star: Tensor,
    *,
    noise: float | None = None,
    concentration: float = 1.0,
    floor: float = 0.0,
    seed: int = 0,
) -> Tensor:
    """A weak teacher for ``f_star`` ([N, K]).

    ``noise=None``: arbitrary -- i.i.d. Dirichlet rows unrelated to ``F*``.
    ``noise=s``: close to ``F*`` -- ``softmax(log F* + s * N(0, I))``.
    ``floor`` mixes with the uniform distribution (:func:`~w2s_utils.theory.mix_with_uniform`)
    so every entry is ``>= floor``.
    """
    n, k = f_star.shape
    _check_floor(floor, k)
    if noise is None:
        p = random_simplex(n, k, concentration=concentration, seed=seed)
    else:
        if not noise >= 0:
            raise ValueError(f"noise must be >= 0 or None, got {noise!r}")
        gen = _generator(seed)
        eps = torch.randn((n, k), generator=gen, dtype=_DTYPE)
        p = torch.softmax(torch.log(f_star.to(_DTYPE)) + noise * eps, dim=-1)
    return mix_with_uniform(p, floor)


@dataclass(frozen=True)
class MixtureInstance:
    """Theorem 3's set-up: the convex class ``{sum_i a_i C_i : a in simplex}`` contains ``F*``.

    ``components[i]`` are the probability outputs ``softmax(heads[i] phi(x))`` on ``features``.
    """

    features: Tensor  # [N, d]
    heads: Tensor  # [k, K, d]
    components: Tensor  # [k, N, K]
    alpha_star: Tensor  # [k], in the simplex
    f_star: Tensor  # [N, K] = sum_i alpha_star[i] components[i]
    weak: Tensor  # [N, K]


def mixture_instance(
    seed: int,
    *,
    n: int = 200,
    d: int = 5,
    n_classes: int = 3,
    n_components: int = 4,
    scale: float = 2.0,
    weak_noise: float | None = None,
    weak_floor: float = 0.0,
    star_on_boundary: bool = False,
) -> MixtureInstance:
    """``F*`` a random mixture of ``n_components`` random softmax heads on Gaussian features.

    Head weights are ``N(0, scale^2 / d)``; ``alpha_star`` is Dirichlet(1) (or, with
    ``star_on_boundary``, has one zero weight). The weak teacher comes from
    :func:`weak_predictions`.
    """
    _check_positive_int(n, "n")
    _check_positive_int(d, "d")
    _check_positive_int(n_classes, "n_classes", 2)
    _check_positive_int(n_components, "n_components")
    gen = _generator(seed)
    features = torch.randn((n, d), generator=gen, dtype=_DTYPE)
    heads = torch.randn((n_components, n_classes, d), generator=gen, dtype=_DTYPE)
    heads = heads * (scale / d**0.5)
    components = torch.softmax(torch.einsum("kcd,nd->knc", heads, features), dim=-1)
    alpha = -torch.log(torch.rand(n_components, generator=gen, dtype=_DTYPE).clamp_min(1e-300))
    if star_on_boundary and n_components > 1:
        alpha[0] = 0.0
    alpha_star = alpha / alpha.sum()
    f_star = torch.einsum("k,knc->nc", alpha_star, components)
    weak = weak_predictions(f_star, noise=weak_noise, floor=weak_floor, seed=seed + 7919)
    return MixtureInstance(features, heads, components, alpha_star, f_star, weak)


@dataclass(frozen=True)
class LogitLinearInstance:
    """The logit-linear class ``{softmax(W phi)}``, realizable: ``F* = softmax(w_star phi)``."""

    features: Tensor  # [N, d]
    w_star: Tensor  # [K, d]
    f_star: Tensor  # [N, K]
    weak: Tensor  # [N, K]


def logit_linear_instance(
    seed: int,
    *,
    n: int = 50,
    d: int = 3,
    n_classes: int = 3,
    scale: float = 1.0,
    weak_noise: float | None = None,
    weak_floor: float = 0.0,
) -> LogitLinearInstance:
    """Gaussian features, ``W* ~ N(0, scale^2)``, ``F* = softmax(W* phi)``; weak teacher as in
    :func:`weak_predictions` (arbitrary with ``weak_noise=None``, close to the class otherwise)."""
    _check_positive_int(n, "n")
    _check_positive_int(d, "d")
    _check_positive_int(n_classes, "n_classes", 2)
    gen = _generator(seed)
    features = torch.randn((n, d), generator=gen, dtype=_DTYPE)
    w_star = scale * torch.randn((n_classes, d), generator=gen, dtype=_DTYPE)
    f_star = torch.softmax(features @ w_star.T, dim=-1)
    weak = weak_predictions(f_star, noise=weak_noise, floor=weak_floor, seed=seed + 7919)
    return LogitLinearInstance(features, w_star, f_star, weak)


def random_relu_mlp(
    x: Tensor, *, widths: tuple[int, ...], seed: int, final_relu: bool = True
) -> Tensor:
    """A random ReLU MLP with He-normal weights (no biases) applied to ``x`` [N, d_in].

    ``widths`` are the output widths of the successive layers; ReLU after every layer (also the
    last unless ``final_relu=False``).
    """
    if not widths:
        raise ValueError("widths must name at least one layer width")
    gen = _generator(seed)
    h = x.to(_DTYPE)
    for i, width in enumerate(widths):
        _check_positive_int(width, "widths[i]")
        w = torch.randn((h.shape[-1], width), generator=gen, dtype=_DTYPE)
        h = h @ (w * (2.0 / h.shape[-1]) ** 0.5)
        if final_relu or i < len(widths) - 1:
            h = torch.relu(h)
    return h


@dataclass(frozen=True)
class RegressionInstance:
    """Charikar et al.'s squared-loss set-up, realizable for linear heads on ``h_s``."""

    x: Tensor  # [N, d_in]
    h_s: Tensor  # [N, r_s] strong representation
    h_w: Tensor  # [N, r_w] weak representation
    head_star: Tensor  # [r_s]
    f_star: Tensor  # [N] = h_s @ head_star


def charikar_instance(
    seed: int,
    *,
    n: int = 2000,
    d_in: int = 8,
    strong_widths: tuple[int, ...] = (16, 16, 16, 16, 16),
    weak_widths: tuple[int, ...] = (8,),
) -> RegressionInstance:
    """``x ~ N(0, I_d_in)``; ``h_s`` a random 5-layer ReLU MLP (R^8 -> R^16 by default);
    ``F* = h_s @ head_star`` with ``head_star ~ N(0, I / r_s)``; ``h_w`` a different, smaller random
    ReLU MLP of the same ``x``. The weak model is a linear head fitted on ``h_w`` (see
    :func:`w2s_utils.theory.least_squares_projection`)."""
    _check_positive_int(n, "n")
    _check_positive_int(d_in, "d_in")
    gen = _generator(seed)
    x = torch.randn((n, d_in), generator=gen, dtype=_DTYPE)
    h_s = random_relu_mlp(x, widths=strong_widths, seed=seed + 1)
    h_w = random_relu_mlp(x, widths=weak_widths, seed=seed + 2)
    head_star = torch.randn(h_s.shape[-1], generator=gen, dtype=_DTYPE) / h_s.shape[-1] ** 0.5
    return RegressionInstance(x, h_s, h_w, head_star, h_s @ head_star)


class NoFloorInstance(NamedTuple):
    """One binary input (rows ``[1, 2]``, float64) where a tiny misfit hides a large gain."""

    f_star: Tensor  # [1, 2]
    weak: Tensor  # [1, 2]
    student: Tensor  # [1, 2]


def no_floor_instance(delta: float = 1e-8) -> NoFloorInstance:
    """Without a floor, ``eps -> 0`` does not force the gain ``Err(F_w) - Err(F_sw)`` to 0.

    ``F_w = (1 - delta, delta)``, ``F_sw = (1 - sqrt(delta), sqrt(delta))``,
    ``F* = (1 - a, a)`` with ``a = 1 / log(1/delta)``. Then ``eps = KL(F_w||F_sw) ~ sqrt(delta)``
    while the gain ``Err(F_w) - Err(F_sw) ~ +1/2`` for every ``delta`` (``delta = 1e-8``:
    ``eps ~ 1e-4``, a gain of about 0.50 nats): the smallest entry (the floor) shrinks with
    ``delta``, so the two-sided bound's ``sqrt(eps/2)/gamma`` grows like ``delta^(-3/4)``. Needs
    ``0 < delta < 1/e`` (so that ``a < 1``). Returns ``(f_star, weak, student)`` as a named tuple.
    """
    if not (isinstance(delta, int | float) and 0.0 < delta < math.exp(-1.0)):
        raise ValueError(f"delta: must lie in (0, 1/e) = (0, {math.exp(-1.0):.4g}), got {delta!r}")
    delta = float(delta)
    root = math.sqrt(delta)
    a = 1.0 / math.log(1.0 / delta)

    def row(p: float) -> Tensor:
        return torch.tensor([[1.0 - p, p]], dtype=_DTYPE)

    return NoFloorInstance(row(a), row(delta), row(root))


def dirichlet_triple(seed: int, *, n_inputs: int = 64) -> tuple[Tensor, Tensor, Tensor]:
    """``(f_star, weak, student)``, each ``[n_inputs, K]``, for the error decomposition's check.

    Instance ``seed``: ``K`` uniform in 2..10; each of the three tables is drawn from a Dirichlet
    with its own concentration, log-uniform in [0.1, 10] (nearly one-hot to nearly uniform);
    ``weak`` and ``student`` are floored at 1e-9 by mixing with the uniform (strictly positive, as
    the decomposition needs).
    """
    _check_positive_int(n_inputs, "n_inputs")
    rng = np.random.default_rng(seed)
    k = int(rng.integers(2, 11))
    conc = 10 ** rng.uniform(-1, 1, size=3)
    f_star = random_simplex(n_inputs, k, concentration=conc[0], seed=3 * seed)
    weak = random_simplex(n_inputs, k, concentration=conc[1], floor=1e-9, seed=3 * seed + 1)
    student = random_simplex(n_inputs, k, concentration=conc[2], floor=1e-9, seed=3 * seed + 2)
    return f_star, weak, student


#: Teacher noise levels of :func:`floored_triple` (``None``: a teacher unrelated to ``F*``).
TEACHER_NOISE = (None, 0.3, 1.0, 2.0)


def floored_triple(
    seed: int, n_classes: int, *, n_inputs: int = 30
) -> tuple[Tensor, Tensor, Tensor]:
    """``(f_star, weak, student)``, each ``[n_inputs, n_classes]``, with a floor on both predictors.

    Chapter 2's random check of the generalization bounds. Instance ``seed``: a floor
    log-uniform in ``[1e-4, 1/(2K)]``; ``F*`` Dirichlet(``c``), ``c`` one of 0.3, 1, 3; the
    teacher one of :data:`TEACHER_NOISE` (unrelated to ``F*``, or ``softmax(log F* + s xi)``);
    the student ``softmax(log F_w + s' xi)`` with ``s'`` uniform in ``[0.05, 2]``. Teacher and
    student are mixed with the uniform distribution, so every entry is at least the floor.
    """
    _check_positive_int(n_classes, "n_classes", 2)
    rng = np.random.default_rng(seed)
    floor = float(10 ** rng.uniform(-4, math.log10(0.5 / n_classes)))
    conc = float(rng.choice([0.3, 1.0, 3.0]))
    f_star = random_simplex(n_inputs, n_classes, concentration=conc, seed=seed)
    noise = TEACHER_NOISE[int(rng.integers(len(TEACHER_NOISE)))]
    weak = weak_predictions(f_star, noise=noise, floor=floor, seed=seed + 1)
    student_noise = float(rng.uniform(0.05, 2.0))
    student = weak_predictions(weak, noise=student_noise, floor=floor, seed=seed + 2)
    return f_star, weak, student


def _check_generator(rng: object) -> np.random.Generator:
    if not isinstance(rng, np.random.Generator):
        raise ValueError(
            f"rng: must be a numpy Generator (numpy.random.default_rng(seed)), got "
            f"{type(rng).__name__}"
        )
    return rng


def calibration_instance(
    rng: np.random.Generator, *, n_points: int = 200, truth: str = "f_star"
) -> dict[str, Tensor]:
    """One binary instance for the calibration bound (chapter 3), drawn from ``rng``.

    ``F*`` (the probability of class 1) is uniform on [0, 1] raised to a power log-uniform in
    [0.3, 3] (clipped to [1e-4, 1 - 1e-4]); the teacher's log-odds are ``F*``'s plus Gaussian
    noise of sd uniform in [0.05, 2], divided by a temperature uniform in [0.3, 3] (so teachers
    range from over- to under-confident); the student's log-odds are the teacher's plus Gaussian
    noise of sd log-uniform in [1e-3, 10^0.5]. Returns ``{"weak", "student", truth}`` with
    ``[n_points, 2]`` float64 tensors and ``truth`` ``"f_star"`` (``F*`` itself, ``[n_points,
    2]``) or ``"labels"`` (``[n_points]`` int64 labels drawn from ``F*``). The labels are drawn
    last, so both truths of one ``rng`` state share the teacher and the student: the keyword
    arguments of :func:`w2s_utils.theory.calibration_bound`, for :func:`w2s_utils.theory.sweep`.
    """
    rng = _check_generator(rng)
    _check_positive_int(n_points, "n_points", 2)
    if truth not in ("f_star", "labels"):
        raise ValueError(f"truth: must be 'f_star' or 'labels', got {truth!r}")
    f = np.clip(rng.uniform(size=n_points) ** rng.uniform(0.3, 3.0), 1e-4, 1 - 1e-4)
    logit = np.log(f) - np.log1p(-f)
    w_logit = (logit + rng.normal(0, rng.uniform(0.05, 2.0), n_points)) / rng.uniform(0.3, 3.0)
    s_logit = w_logit + rng.normal(0, 10 ** rng.uniform(-3, 0.5), n_points)

    def two(logits: np.ndarray) -> Tensor:
        p = torch.from_numpy(1.0 / (1.0 + np.exp(-logits)))
        return torch.stack([1.0 - p, p], dim=1)

    out = {"weak": two(w_logit), "student": two(s_logit)}
    if truth == "f_star":
        out["f_star"] = two(logit)
    else:
        out["labels"] = torch.from_numpy((rng.uniform(size=n_points) < f).astype(np.int64))
    return out


def multiclass_calibration_instance(
    rng: np.random.Generator, *, n_points: int = 60, ks: tuple[int, ...] = (3, 4, 5, 8)
) -> dict[str, Tensor]:
    """One ``K``-class instance for the multi-class calibration bound (chapter 3).

    ``K`` drawn from ``ks``; ``F*`` Dirichlet(1) rows; the teacher ``softmax(log F* + s xi)`` with
    ``s`` uniform in [0.2, 2]; the student ``softmax(log F_w + s' xi)`` with ``s'`` uniform in
    [0.05, 1.5] (:func:`weak_predictions`). Returns ``{"weak", "student", "f_star"}``, each
    ``[n_points, K]`` float64: the keyword arguments of
    :func:`w2s_utils.theory.multiclass_calibration_bound`.
    """
    rng = _check_generator(rng)
    _check_positive_int(n_points, "n_points", 1)
    if not ks or any(not isinstance(k, int) or isinstance(k, bool) or k < 2 for k in ks):
        raise ValueError(f"ks: pass a non-empty tuple of class counts >= 2, got {ks!r}")
    k = int(ks[int(rng.integers(len(ks)))])
    s = int(rng.integers(1 << 30))
    f_star = random_simplex(n_points, k, concentration=1.0, seed=s)
    weak = weak_predictions(f_star, noise=float(rng.uniform(0.2, 2.0)), seed=s + 1)
    student = weak_predictions(weak, noise=float(rng.uniform(0.05, 1.5)), seed=s + 2)
    return {"weak": weak, "student": student, "f_star": f_star}
