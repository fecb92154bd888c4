"""Misfit-gain for squared loss (Charikar et al. 2024; chapter 5)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
from torch import Tensor

from w2s_utils._validate import as_tensor, check_labels
from w2s_utils.theory._base import (
    DEFAULT_TOL,
    _check_tol,
    _features,
    _gain_at_least,
    _le,
    _mean,
    _real,
    _Result,
    _same,
)


@dataclass(frozen=True)
class SquaredMisfitGainResult(_Result):
    """Charikar et al.: ``gain >= misfit_sq``, i.e. ``E(f_sw - F*)^2 <= E(f_w - F*)^2 -
    E(f_sw - f_w)^2``, with ``gain = err_weak - err_student`` (squared errors) and the squared-loss
    misfit ``misfit_sq = E(f_sw - f_w)^2``.

    ``lhs = misfit_sq``, ``rhs = gain``; ``slack = gain - misfit_sq = 2 E<f_w - f_sw, f_sw - F*>``
    >= 0 for a projection onto a convex class containing ``F*``; it is 0 (Pythagoras) for least
    squares onto a linear class on the same sample. ``source``: ``"f_star"`` (exact) or
    ``"labels"`` (errors against observed targets: an estimate, with ``gain_se`` the standard
    error of the test gain over the examples; ``None`` with ``f_star``).
    """

    NAME: ClassVar[str] = "gain >= squared misfit (Charikar et al.)"
    RELATION: ClassVar[str] = "gain = E(f_w - F*)^2 - E(f_sw - F*)^2 >= E(f_sw - f_w)^2"

    source: str
    err_weak: float
    err_student: float
    misfit_sq: float
    gain_se: float | None
    gain: float
    lhs: float
    rhs: float
    slack: float
    holds: bool
    tol: float


def squared_misfit_gain(
    weak: Any,
    student: Any,
    *,
    f_star: Any = None,
    labels: Any = None,
    tol: float = DEFAULT_TOL,
) -> SquaredMisfitGainResult:
    """Charikar et al. 2024, squared loss on real-valued outputs ``[N]`` or ``[N, m]`` (``m``
    outputs: squared Euclidean norm per row): ``gain >= misfit_sq``.

    Hypotheses (not checkable from the arrays): ``F*`` lies in a convex class and ``student`` is the
    L2 projection of ``weak`` onto it (e.g. :func:`least_squares_projection` on the strong
    representation, evaluated on the sample it was fitted on).

    Pass exactly one truth: ``f_star`` (the regression function, shaped like the predictions:
    the statement itself) or ``labels``, observed targets ``y`` with ``E[y|x] = F*(x)``: real
    values shaped like the predictions, or, for ``[N, K]`` probability vectors, class indices
    ``[N]`` (read as one-hot rows). With labels ``err_*`` are the test mean squared errors
    against ``y`` and ``gain`` is an unbiased estimate of the population gain (the noise variance
    cancels), compared with the label-free ``misfit_sq``: an estimate of the population
    statement, with sampling error.
    """
    tol = _check_tol(tol)
    if (f_star is None) == (labels is None):
        raise ValueError(
            "f_star/labels: pass exactly one: f_star (the regression function F*, exact) or "
            "labels (observed targets with mean F*, an estimate)"
        )
    weak = _real(weak, "weak")
    if f_star is not None:
        truth_name, fs = "f_star", _real(f_star, "f_star")
    elif weak.dim() == 2 and as_tensor(labels, "labels").dim() == 1:
        y = check_labels(labels, weak.shape[1], "labels")
        truth_name, fs = "labels", torch.nn.functional.one_hot(y, weak.shape[1]).to(weak.dtype)
    else:
        truth_name, fs = "labels", _real(labels, "labels")
    weak = _same(fs, truth_name, weak, "weak")
    student = _same(fs, truth_name, _real(student, "student"), "student")

    def rows(a: Tensor) -> Tensor:
        return a.square() if a.dim() == 1 else a.square().sum(-1)

    loss_weak, loss_student = rows(weak - fs), rows(student - fs)
    err_weak, err_student, mis = _mean(loss_weak), _mean(loss_student), _mean(rows(student - weak))
    gain_se = None
    if truth_name == "labels":
        diff = loss_weak - loss_student
        n = diff.shape[0]
        gain_se = float(diff.std(correction=1)) / math.sqrt(n) if n > 1 else math.nan
    return SquaredMisfitGainResult(
        source=truth_name,
        err_weak=err_weak,
        err_student=err_student,
        misfit_sq=mis,
        gain_se=gain_se,
        **_gain_at_least(err_weak, err_student, mis, tol),
    )


# --------------------------------------------------------------------------- non-realizable
@dataclass(frozen=True)
class SquaredMisfitGainAgnosticResult(_Result):
    """``gain >= misfit_sq - 2 sqrt(misfit_sq * approx)``, ``approx = E(best - F*)^2`` (F* outside
    the class), squared errors, ``gain = err_weak - err_student``.

    ``best`` is the projection of ``F*`` onto the convex class (the best predictor in it),
    ``student`` the projection of ``weak``. ``cross = 2 E<weak - student, best - F*>`` is the
    term that the realizable proof drops (0 when ``F* = best``); ``projection_term =
    2 E<weak - student, student - best>`` >= 0 (the obtuse angle), and ``gain - misfit_sq =
    projection_term + cross`` exactly. ``lhs = misfit_sq - 2 sqrt(misfit_sq approx)``,
    ``rhs = gain``, ``slack = rhs - lhs``.
    """

    NAME: ClassVar[str] = "gain >= squared misfit, F* outside the class"
    RELATION: ClassVar[str] = "gain >= misfit_sq - 2 sqrt(misfit_sq * approx)"

    err_weak: float
    err_student: float
    misfit_sq: float
    gain: float
    approx: float
    projection_term: float
    cross: float
    lhs: float
    rhs: float
    slack: float
    holds: bool
    tol: float


def _sq(a: Tensor) -> float:
    return _mean(a.square() if a.dim() == 1 else a.square().sum(-1))


def _dot(a: Tensor, b: Tensor) -> float:
    return _mean(a * b if a.dim() == 1 else (a * b).sum(-1))


def squared_misfit_gain_agnostic(
    weak: Any,
    student: Any,
    best: Any,
    *,
    f_star: Any = None,
    labels: Any = None,
    tol: float = DEFAULT_TOL,
) -> SquaredMisfitGainAgnosticResult:
    """The misfit-gain inequality without realizability, for ``[N]`` or ``[N, m]`` outputs.

    Hypotheses (not checkable from the arrays): one convex class of predictors contains
    ``student`` and ``best``; ``student`` is the L2 projection of ``weak`` onto it and ``best``
    that of ``f_star`` (on the same distribution: on a sample, both fitted on it). Then
    ``gain >= misfit_sq - 2 sqrt(misfit_sq * approx)`` with ``approx = E(best - F*)^2``, which is
    the realizable result (:func:`squared_misfit_gain`) when ``approx = 0``. Needs ``f_star``
    (keyword): ``labels`` are refused with a ``ValueError``, since ``approx`` measured against
    noisy targets is biased upwards by the noise variance.
    """
    tol = _check_tol(tol)
    if labels is not None or f_star is None:
        raise ValueError(
            "f_star: the agnostic misfit-gain inequality needs f_star, the regression function "
            "itself: approx = E(best - F*)^2 measured against noisy labels is biased by the noise "
            "variance; pass f_star=..., or use squared_misfit_gain(weak, student, labels=y) for "
            "an estimate of the realizable statement"
        )
    fs = _real(f_star, "f_star")
    weak = _same(fs, "f_star", _real(weak, "weak"), "weak")
    student = _same(fs, "f_star", _real(student, "student"), "student")
    best = _same(fs, "f_star", _real(best, "best"), "best")
    err_weak, err_student, mis = _sq(weak - fs), _sq(student - fs), _sq(student - weak)
    approx = _sq(best - fs)
    gain = err_weak - err_student
    lower = mis - 2.0 * (mis * approx) ** 0.5
    return SquaredMisfitGainAgnosticResult(
        err_weak=err_weak,
        err_student=err_student,
        misfit_sq=mis,
        gain=gain,
        approx=approx,
        projection_term=2.0 * _dot(weak - student, student - best),
        cross=2.0 * _dot(weak - student, best - fs),
        lhs=lower,
        rhs=gain,
        slack=gain - lower,
        holds=_le(lower, gain, tol),
        tol=tol,
    )


# --------------------------------------------------------------------------- projections
_CLASSES = ("linear", "box", "cone", "one_sparse")


@dataclass(frozen=True)
class ClassProjection:
    """The L2 (least-squares) projection of ``targets`` onto ``{features @ b : b in B}``.

    ``kind`` names ``B``: ``"linear"`` (all of R^d), ``"box"`` (``|b_j| <= radius``), ``"cone"``
    (``b >= 0``) -- all convex -- or ``"one_sparse"`` (at most one non-zero coefficient: a union
    of ``d`` lines, *not* convex). ``objective = mean (predictions - targets)^2``.
    """

    kind: str
    coef: Tensor
    predictions: Tensor
    objective: float


def project_onto_class(
    features: Any, targets: Any, kind: str = "linear", *, radius: float = 1.0
) -> ClassProjection:
    """Exact L2 projection of ``targets`` [N] onto a class of linear heads on ``features`` [N, d].

    ``"linear"``: ``numpy.linalg.lstsq``; ``"box"``: ``scipy.optimize.lsq_linear`` with bounds
    ``[-radius, radius]``; ``"cone"``: ``scipy.optimize.nnls``; ``"one_sparse"``: the best of the
    ``d`` one-feature least-squares fits (exact, by enumeration). float64 throughout.
    """
    import numpy as np
    import torch
    from scipy.optimize import lsq_linear, nnls

    if kind not in _CLASSES:
        raise ValueError(f"kind: must be one of {', '.join(_CLASSES)}, got {kind!r}")
    y_t = _real(targets, "targets")
    if y_t.dim() != 1:
        raise ValueError(f"targets: expected one output per row [N], got {tuple(y_t.shape)}")
    if not (isinstance(radius, int | float) and radius > 0):
        raise ValueError(f"radius: must be > 0, got {radius!r}")
    x = _features(features, y_t.shape[0])
    y = y_t.detach().cpu().numpy()
    if kind == "linear":
        coef = np.linalg.lstsq(x, y, rcond=None)[0]
    elif kind == "box":
        coef = lsq_linear(x, y, bounds=(-radius, radius), method="bvls", tol=1e-14).x
    elif kind == "cone":
        coef = nnls(x, y, maxiter=50 * x.shape[1] + 1000)[0]
    else:
        norms = (x * x).sum(0)
        c = np.where(norms > 0, x.T @ y / np.where(norms > 0, norms, 1.0), 0.0)
        sse = ((y[:, None] - x * c[None, :]) ** 2).sum(0)
        j = int(np.argmin(sse))
        coef = np.zeros(x.shape[1])
        coef[j] = c[j]
    pred = x @ coef
    return ClassProjection(
        kind=kind,
        coef=torch.from_numpy(coef).to(y_t.device),
        predictions=torch.from_numpy(pred).to(y_t.device),
        objective=float(((pred - y) ** 2).mean()),
    )


# --------------------------------------------------------------------------- counterexamples
SQUARED_TRIAL_KINDS = ("realizable", "nonrealizable", "nonconvex")


@dataclass(frozen=True)
class SquaredTrial:
    """One small random instance tested against gain >= misfit (on its own sample).

    ``kind``: ``"realizable"`` (``F*`` in a convex class: the theorem, never violated),
    ``"nonrealizable"`` (``F*`` off the linear class) or ``"nonconvex"`` (``F*`` in the union of
    ``d`` lines, student = the projection onto that union). ``violation = misfit_sq - gain``;
    ``violated`` when it exceeds ``margin``. ``result`` is the :class:`SquaredMisfitGainResult`.
    """

    kind: str
    seed: int
    cls: str
    features: Tensor
    f_star: Tensor
    weak: Tensor
    student: Tensor
    result: SquaredMisfitGainResult
    violation: float
    violated: bool


def squared_trial(kind: str, seed: int, *, margin: float = 1e-9) -> SquaredTrial:
    """Draw one instance of ``kind`` (seeded) and test ``gain >= misfit`` on it.

    Instance: ``n`` in 3..12 points (uniform distribution), ``d`` in 1..4 (``"nonconvex"``: 2..4)
    Gaussian features, the weak teacher ``F* + N(0, s^2)`` with ``s`` log-uniform in
    [0.1, 3]. ``"realizable"``: a class drawn from linear / box (radius 1) / cone with
    ``F* = features @ b*`` and ``b*`` inside the class; ``"nonrealizable"``: the linear class,
    ``F* = features @ b* + u`` with ``u`` Gaussian noise orthogonal to nothing in particular;
    ``"nonconvex"``: the one-sparse class, ``F* = b* features[:, 0]``.
    """
    import numpy as np
    import torch

    if kind not in SQUARED_TRIAL_KINDS:
        raise ValueError(f"kind: must be one of {', '.join(SQUARED_TRIAL_KINDS)}, got {kind!r}")
    rng = np.random.default_rng([seed, 5 + SQUARED_TRIAL_KINDS.index(kind)])
    n = int(rng.integers(3, 13))
    d = int(rng.integers(2 if kind == "nonconvex" else 1, 5))
    d = min(d, n - 1)
    x = rng.normal(size=(n, d))
    b = rng.normal(size=d)
    cls = "linear"
    if kind == "realizable":
        cls = str(rng.choice(["linear", "box", "cone"]))
        if cls == "box":
            b = rng.uniform(-1.0, 1.0, size=d)
        elif cls == "cone":
            b = np.abs(b) * (rng.random(d) < 0.7)
    elif kind == "nonconvex":
        cls, b = "one_sparse", np.r_[rng.normal(), np.zeros(d - 1)]
    f_star = x @ b
    if kind == "nonrealizable":
        f_star = f_star + rng.normal(size=n)
    weak = f_star + 10 ** rng.uniform(-1, np.log10(3.0)) * rng.normal(size=n)
    proj = project_onto_class(x, weak, cls)
    res = squared_misfit_gain(
        torch.from_numpy(weak), proj.predictions, f_star=torch.from_numpy(f_star)
    )
    violation = res.misfit_sq - res.gain
    return SquaredTrial(
        kind=kind,
        seed=seed,
        cls=cls,
        features=torch.from_numpy(x),
        f_star=torch.from_numpy(f_star),
        weak=torch.from_numpy(weak),
        student=proj.predictions,
        result=res,
        violation=float(violation),
        violated=bool(violation > margin * max(1.0, res.err_weak)),
    )


def find_squared_counterexample(
    kind: str, *, seed: int = 0, max_tries: int = 1000, margin: float = 1e-9
) -> SquaredTrial:
    """The first of seeds ``seed, seed + 1, ...`` whose :func:`squared_trial` is violated.

    ``kind`` is ``"nonrealizable"`` or ``"nonconvex"`` (for ``"realizable"`` none exists: the
    theorem). Raises ``RuntimeError`` if ``max_tries`` trials find none.
    """
    if kind == "realizable":
        raise ValueError("kind: 'realizable' is the theorem; it has no counterexample to find")
    for s in range(seed, seed + max_tries):
        t = squared_trial(kind, s, margin=margin)
        if t.violated:
            return t
    raise RuntimeError(f"no {kind} counterexample in seeds {seed}..{seed + max_tries - 1}")
