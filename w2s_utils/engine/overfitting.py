"""A student that over-fits its teacher's labels, in a model where it provably happens (chapter 4).

The paper's third version names the danger of training too hard on weak labels "overfitting to
the weak supervision". This module is a small, exact model of it that runs with many seeds in
seconds: an over-parameterized logistic student trained by full-batch gradient descent on the soft
labels of a teacher whose errors the student cannot see.

**The model** (binary classes; every draw Gaussian; :class:`OverfittingSetting` holds the sizes):

- an input is ``x = (z, xi, h)``: signal features ``z ~ N(0, I_k)``, bulk features
  ``xi ~ N(0, (bulk_var / d) I_d)`` and a hidden variable ``h ~ N(0, 1)``, all independent;
- the truth is ``F*(x) = sigmoid(a)`` with ``a = <w*, z>`` and ``|w*| = signal`` (``w*`` fixed by
  ``task_seed``): a logistic model in the signal features;
- the teacher is ``F_w(x) = sigmoid(c a + rho h)`` (``c = teacher_scale``,
  ``rho = teacher_noise``): its error has a systematic part (``c != 1``) and an idiosyncratic part
  ``rho h`` that depends on what the student does not see;
- the student sees ``phi(x) = (z, xi)`` (``p = k + d`` features) and is
  ``F_t(x) = sigmoid(<w_t, phi(x)>)``, trained from ``w_0 = 0`` by gradient descent with step
  ``lr = 4 / max_s lambda_max(Phi_s^T Phi_s / n)`` (``1/L`` for the soft-label cross-entropy,
  whose curvature is at most 1/4) on ``L(w) = (1/n) sum_i CE(F_w(x_i), F(x_i))`` over ``n``
  weak-labelled training inputs. With ``aux_alpha > 0`` the target is Burns et al.'s auxiliary
  confidence mix ``(1 - alpha_t) F_w + alpha_t hard_t`` (``hard_t`` the student's own predictions
  thresholded at the teacher's class balance on the training inputs; ``alpha_t`` from
  :func:`w2s_utils.engine.losses.confidence_warmup`).

Gradient descent runs in the kernel form ``w_t = Phi^T alpha_t`` when ``n <= p`` (the same
iterates: ``alpha_{t+1} = alpha_t - (lr/n) (sigmoid(K alpha_t) - targets)``, ``K = Phi Phi^T``) and
in the weight form otherwise. Each seed draws its own training inputs, then ``n_heldout`` held-out
inputs with the teacher's labels (what weak-label early stopping reads), then ``n_gold`` inputs
with gold labels ``y ~ F*(x)`` (what a gold-label oracle reads); the ``n_test`` test inputs are
shared by all seeds (one task), so per-example values of different seeds line up by position
(the layout :func:`w2s_utils.metrics.seeds_and_test_interval` expects). Inputs of a seed are drawn
row by row from one stream, so a setting with ``n' = n + n_heldout`` and ``n_heldout = 0`` trains
on exactly the training and held-out inputs of ``n`` (the remedy "spend the held-out weak labels
on training").

**Exact quantities** (the truth is known, so nothing is estimated from sampled labels on test):
per test input the gain ``KL(F*||F_w) - KL(F*||F_t)`` in nats (gain convention: positive = the
student is better than its teacher); the misfits ``eps`` = mean ``KL(F_w||F_t)`` on the training,
held-out and test inputs; the floor ``eps_floor`` = mean ``KL(F_w||Fbar)`` over the test inputs,
``Fbar(x) = E_h F_w(x)`` (Gauss-Hermite), below which no student that sees only ``phi`` can bring
the misfit on new inputs; and, for ``n < p`` without the auxiliary loss, the limit of gradient
descent, the minimum-norm interpolant ``w_dagger = Phi^T K^{-1} logit(F_w(x_1..n))`` (its test
gain per example, and ``|w_dagger|^2`` for the rate ``eps_train(t) <= |w_dagger|^2 / (2 lr t)``).
:func:`population_projection` gives the ``n -> infinity`` student (the forward-KL projection of
the teacher on the student's class under the input distribution) by quadrature.

:func:`overfitting_curves` computes (and caches) one setting over many seeds;
:func:`select_steps` applies the selection rules.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from typing import Any

import numpy as np
import torch

from w2s_utils import metrics
from w2s_utils._validate import check_int, check_number, check_seeds
from w2s_utils.engine import cache
from w2s_utils.engine.losses import confidence_warmup

__all__ = [
    "OVERFITTING_RULES",
    "OverfittingCurves",
    "OverfittingSetting",
    "PopulationProjection",
    "curves_key",
    "draw_seed",
    "interpolant_weights",
    "overfitting_curves",
    "population_projection",
    "select_steps",
]

#: Bump when what a cached curve means changes.
OVERFITTING_VERSION = 2  # 2: the population student's gain on the test inputs is stored
#: Selection rules of :func:`select_steps`; ``"gold_oracle"`` reads gold labels on its own split,
#: ``"hindsight"`` reads the test inputs it is scored on (optimistic, a reference only).
OVERFITTING_RULES = ("final", "weak_early_stop", "gold_oracle", "hindsight")
_HERMITE_NODES = 64


@dataclass(frozen=True)
class OverfittingSetting:
    """One setting of the over-fitting model (see the module docstring for the roles).

    ``n`` weak-labelled training inputs; ``bulk_dim`` = ``d`` and ``signal_dim`` = ``k`` (the
    student has ``p = k + d`` parameters); ``signal`` = ``|w*|``; ``bulk_var`` the total variance
    ``E |xi|^2`` of the bulk features; ``teacher_noise`` = ``rho`` and ``teacher_scale`` = ``c``;
    ``n_heldout`` weak-labelled and ``n_gold`` gold-labelled inputs per seed for model selection;
    ``n_test`` shared test inputs; ``steps`` gradient steps, evaluated at about ``n_evals``
    log-spaced steps; ``aux_alpha``/``aux_warmup`` the auxiliary confidence loss (0: plain soft
    cross-entropy); ``task_seed`` fixes ``w*`` and the test inputs.
    """

    n: int = 100
    bulk_dim: int = 200
    signal_dim: int = 5
    signal: float = 3.0
    bulk_var: float = 16.0
    teacher_noise: float = 1.5
    teacher_scale: float = 1.0
    n_heldout: int = 50
    n_gold: int = 50
    n_test: int = 2000
    steps: int = 3000
    n_evals: int = 30
    aux_alpha: float = 0.0
    aux_warmup: float = 0.2
    task_seed: int = 0

    def __post_init__(self) -> None:
        for name, low in (("n", 2), ("bulk_dim", 1), ("signal_dim", 1), ("n_heldout", 0),
                          ("n_gold", 0), ("n_test", 2), ("steps", 1), ("n_evals", 2),
                          ("task_seed", 0)):  # fmt: skip
            check_int(getattr(self, name), f"OverfittingSetting.{name}", minimum=low)
        check_number(self.signal, "OverfittingSetting.signal", lo=0.0)
        check_number(self.bulk_var, "OverfittingSetting.bulk_var", lo=0.0, lo_open=True)
        check_number(self.teacher_noise, "OverfittingSetting.teacher_noise", lo=0.0)
        check_number(self.teacher_scale, "OverfittingSetting.teacher_scale")
        check_number(self.aux_alpha, "OverfittingSetting.aux_alpha", lo=0.0, hi=1.0)
        check_number(self.aux_warmup, "OverfittingSetting.aux_warmup", lo=0.0, hi=1.0)

    @property
    def n_params(self) -> int:
        """``p = k + d``: the student's number of parameters."""
        return self.signal_dim + self.bulk_dim


@dataclass
class OverfittingCurves:
    """One setting over ``S`` seeds, evaluated at ``T`` steps on ``N`` shared test inputs.

    ``steps`` ``[T]`` (gradient steps, increasing, the last one ``setting.steps``); ``gain``
    ``[S, T, N]`` the per-example test gain ``KL(F*||F_w) - KL(F*||F_t)`` (nats, float32) and
    ``acc_gain`` ``[S, T, N]`` the accuracy gain, the student's expected accuracy under the truth
    minus the teacher's (``F*_j(x)`` of the predicted class ``j``, a tie at logit 0 counting
    1/2; float32);
    ``eps_train``, ``eps_heldout``, ``eps_test`` ``[S, T]`` the misfit ``KL(F_w||F_t)`` averaged
    over the training, held-out and test inputs; ``gold_ce`` ``[S, T]`` the cross-entropy of the
    gold labels of the seed's gold split (NaN without one); ``err_weak`` ``[N]`` the teacher's
    ``KL(F*||F_w)`` per test input; ``eps_floor`` the misfit floor (module docstring);
    ``population_gain`` ``[N]`` the gain of the population student of :func:`population_projection`
    (``sigmoid(kappa a)``) on each test input; ``interpolant_gain`` ``[S, N]``,
    ``interpolant_norm2`` ``[S]`` (``|w_dagger|^2``) and
    ``interpolant_leak`` ``[S]`` (the mean over test inputs of ``|K^{-1} k(x)|^2``,
    ``k(x) = Phi phi(x)``: the interpolant's test logit carries the teacher's idiosyncratic
    errors on the training inputs with conditional variance ``rho^2 |K^{-1} k(x)|^2``) for the
    minimum-norm interpolant (``None`` when ``n >= p`` or with the auxiliary loss); ``lr`` the
    step size;
    ``cached`` whether the arrays came from the cache; ``seconds`` the wall time of this call and
    ``train_seconds`` that of the computation when it ran.
    """

    setting: OverfittingSetting
    seeds: tuple[int, ...]
    steps: np.ndarray
    gain: np.ndarray
    acc_gain: np.ndarray
    eps_train: np.ndarray
    eps_heldout: np.ndarray
    eps_test: np.ndarray
    gold_ce: np.ndarray
    err_weak: np.ndarray
    eps_floor: float
    population_gain: np.ndarray
    interpolant_gain: np.ndarray | None
    interpolant_norm2: np.ndarray | None
    interpolant_leak: np.ndarray | None
    lr: float
    cached: bool = False
    seconds: float = 0.0
    train_seconds: float = 0.0

    def mean_gain(self) -> np.ndarray:
        """``[T]``: the gain averaged over seeds and test inputs at every evaluation."""
        return self.gain.mean(axis=(0, 2), dtype=np.float64)

    def at(self, index: Sequence[int] | np.ndarray, quantity: str = "gain") -> np.ndarray:
        """``[S, N]``: each seed's per-example ``quantity`` (``"gain"`` or ``"acc_gain"``) at its
        own evaluation ``index[s]`` (a position in ``steps``, e.g. from :func:`select_steps`)."""
        if quantity not in ("gain", "acc_gain"):
            raise ValueError(f"quantity: must be 'gain' or 'acc_gain', got {quantity!r}")
        idx = np.asarray(index, dtype=np.int64)
        if idx.shape != (len(self.seeds),) or idx.min() < 0 or idx.max() >= len(self.steps):
            raise ValueError(
                f"index: expected {len(self.seeds)} positions in 0..{len(self.steps) - 1} (one "
                f"per seed), got {idx.tolist()}"
            )
        return getattr(self, quantity)[np.arange(len(idx)), idx].astype(np.float64)


# ------------------------------------------------------------------------------ the draws


def _bernoulli_kl(p_logit: torch.Tensor, q_logit: torch.Tensor) -> torch.Tensor:
    """``KL(sigmoid(p) || sigmoid(q))`` elementwise from logits (broadcast), in log space by
    :func:`w2s_utils.metrics.kl_from_logits`."""
    p, q = torch.broadcast_tensors(torch.as_tensor(p_logit), torch.as_tensor(q_logit))
    return metrics.kl_from_logits(p.reshape(-1), q.reshape(-1), validate=False).reshape(p.shape)


def _w_star(s: OverfittingSetting) -> np.ndarray:
    w = np.random.default_rng([s.task_seed, 0]).standard_normal(s.signal_dim)
    return w / np.linalg.norm(w) * s.signal


def _inputs(s: OverfittingSetting, rng: np.random.Generator, m: int) -> dict[str, np.ndarray]:
    """``m`` inputs drawn row by row: features ``phi`` ``[m, p]`` and the truth's and teacher's
    logits ``[m]``."""
    raw = rng.standard_normal((m, s.n_params + 1))
    phi = raw[:, : s.n_params].copy()
    phi[:, s.signal_dim :] *= math.sqrt(s.bulk_var / s.bulk_dim)
    a = phi[:, : s.signal_dim] @ _w_star(s)
    return {"phi": phi, "truth": a, "teacher": s.teacher_scale * a + s.teacher_noise * raw[:, -1]}


def draw_seed(setting: OverfittingSetting, seed: int) -> dict[str, np.ndarray]:
    """The inputs seed ``seed`` of ``setting`` trains and selects on, as :func:`overfitting_curves`
    draws them: ``phi`` ``[m, p]`` (the student's features), ``truth`` and ``teacher`` ``[m]``
    (the logits of ``F*`` and ``F_w``) and ``gold`` ``[m]`` (labels ``y ~ F*``), with
    ``m = n + n_heldout + n_gold`` rows in that order (training, held-out, gold)."""
    seed = check_int(seed, "seed", minimum=0)
    rng = np.random.default_rng([setting.task_seed, 2, seed])
    m = setting.n + setting.n_heldout + setting.n_gold
    d = _inputs(setting, rng, m)
    d["gold"] = (rng.random(m) < 1.0 / (1.0 + np.exp(-d["truth"]))).astype(np.float64)
    return d


def _hermite() -> tuple[np.ndarray, np.ndarray]:
    """Nodes and weights of ``E g(h)``, ``h ~ N(0, 1)`` (probabilists' Gauss-Hermite)."""
    x, w = np.polynomial.hermite_e.hermegauss(_HERMITE_NODES)
    return x, w / w.sum()


def _eps_floor(s: OverfittingSetting, truth_logit: np.ndarray, teacher_logit: np.ndarray) -> float:
    """Mean over the inputs of ``KL(F_w(x) || Fbar(x))``, ``Fbar = E_h sigmoid(c a + rho h)``."""
    x, w = _hermite()
    fbar = 1.0 / (1.0 + np.exp(-(s.teacher_scale * truth_logit[:, None] + s.teacher_noise * x)))
    fbar = np.clip(fbar @ w, 1e-300, 1.0 - 1e-16)
    q = torch.as_tensor(teacher_logit)
    kl = _bernoulli_kl(q, torch.logit(torch.as_tensor(fbar)))
    return float(kl.mean())


def interpolant_weights(phi: Any, teacher_logit: Any) -> torch.Tensor:
    """The minimum-norm ``w`` with ``phi @ w = teacher_logit``: ``phi^T (phi phi^T)^{-1} logit``.

    ``phi`` ``[..., n, p]`` with ``n <= p`` and full row rank; ``teacher_logit`` ``[..., n]``.
    Where gradient descent from 0 on the soft-label cross-entropy converges when ``n <= p``
    (chapter 4's proposition): the student that reproduces its teacher on every training input.
    """
    phi = torch.as_tensor(phi, dtype=torch.float64)
    y = torch.as_tensor(teacher_logit, dtype=torch.float64)
    if phi.ndim < 2 or y.shape != phi.shape[:-1]:
        raise ValueError(
            f"phi/teacher_logit: expected [..., n, p] and [..., n], got {tuple(phi.shape)} and "
            f"{tuple(y.shape)}"
        )
    n, p = phi.shape[-2:]
    if n > p:
        raise ValueError(f"phi: has n = {n} rows > p = {p} columns; no interpolant is unique")
    gram = phi @ phi.transpose(-1, -2)
    alpha = torch.linalg.solve(gram, y[..., None])
    return (phi.transpose(-1, -2) @ alpha)[..., 0]


# -------------------------------------------------------------------------- gradient descent


def _eval_steps(s: OverfittingSetting) -> np.ndarray:
    grid = np.unique(np.round(np.logspace(0.0, math.log10(s.steps), s.n_evals)).astype(np.int64))
    return grid[(grid >= 1) & (grid <= s.steps)]


def _targets(s: OverfittingSetting, q: torch.Tensor, f: torch.Tensor, step: int) -> torch.Tensor:
    """The soft targets at ``step`` (``q`` the teacher's probabilities ``[S, n]``, ``f`` the
    student's training logits): ``q`` itself, or the auxiliary-confidence mix."""
    if s.aux_alpha == 0.0:
        return q
    alpha = confidence_warmup(step, s.steps, s.aux_alpha, s.aux_warmup)
    if alpha == 0.0:
        return q
    pos = torch.sigmoid(f)
    # each seed's quantile of ``pos`` at 1 - (mean teacher probability), interpolated linearly
    # as torch.quantile does (the threshold of engine.losses.AuxConfidenceLoss), for all seeds
    ranked = pos.sort(dim=1).values
    at = (1.0 - q.mean(dim=1).clamp(0.0, 1.0)) * (pos.shape[1] - 1)
    lo = at.floor().long().clamp(0, pos.shape[1] - 1)
    hi = (lo + 1).clamp(max=pos.shape[1] - 1)
    frac = at - lo
    low, high = ranked.gather(1, lo[:, None])[:, 0], ranked.gather(1, hi[:, None])[:, 0]
    tau = low + frac * (high - low)
    hard = (pos > tau[:, None]).to(q.dtype)
    return (1.0 - alpha) * q + alpha * hard


def _compute(s: OverfittingSetting, seeds: tuple[int, ...]) -> dict[str, np.ndarray]:
    t0 = time.perf_counter()
    test = _inputs(s, np.random.default_rng([s.task_seed, 1]), s.n_test)
    m = s.n + s.n_heldout + s.n_gold
    draws = [draw_seed(s, seed) for seed in seeds]
    stack = {k: torch.as_tensor(np.stack([d[k] for d in draws])) for k in draws[0]}
    tr, ho, go = slice(0, s.n), slice(s.n, s.n + s.n_heldout), slice(s.n + s.n_heldout, m)
    phi = stack["phi"][:, tr]  # [S, n, p]
    q_logit = stack["teacher"][:, tr]
    q = torch.sigmoid(q_logit)
    kernel = s.n <= s.n_params
    gram = phi @ phi.transpose(1, 2) if kernel else phi.transpose(1, 2) @ phi
    lam = float(torch.linalg.eigvalsh(gram / s.n)[:, -1].max())
    lr = 4.0 / lam
    phi_te = torch.as_tensor(test["phi"])
    truth_te, teacher_te = torch.as_tensor(test["truth"]), torch.as_tensor(test["teacher"])
    err_weak = _bernoulli_kl(truth_te, teacher_te)
    evals = _eval_steps(s)
    n_seeds = len(seeds)
    coef = torch.zeros(n_seeds, s.n if kernel else s.n_params, dtype=torch.float64)
    out = {k: np.zeros((n_seeds, len(evals))) for k in ("eps_train", "eps_heldout", "eps_test")}
    out["gold_ce"] = np.full((n_seeds, len(evals)), np.nan)
    gain = np.zeros((n_seeds, len(evals), s.n_test), dtype=np.float32)
    acc_gain = np.zeros_like(gain)
    acc_weak = torch.sigmoid(truth_te * torch.sign(teacher_te))  # expected accuracy under F*
    f = torch.zeros(n_seeds, s.n, dtype=torch.float64)  # training logits
    j = 0
    for step in range(1, s.steps + 1):
        r = torch.sigmoid(f) - _targets(s, q, f, step - 1)
        if kernel:
            coef -= (lr / s.n) * r
            f = (gram @ coef[..., None])[..., 0]
        else:
            coef -= (lr / s.n) * (phi.transpose(1, 2) @ r[..., None])[..., 0]
            f = (phi @ coef[..., None])[..., 0]
        if step != evals[j]:
            continue
        w = (phi.transpose(1, 2) @ coef[..., None])[..., 0] if kernel else coef
        f_te = w @ phi_te.T  # [S, N]
        gain[:, j] = (err_weak[None] - _bernoulli_kl(truth_te[None], f_te)).numpy()
        acc_gain[:, j] = (torch.sigmoid(truth_te * torch.sign(f_te)) - acc_weak).numpy()
        out["eps_test"][:, j] = _bernoulli_kl(teacher_te[None], f_te).mean(1).numpy()
        out["eps_train"][:, j] = _bernoulli_kl(q_logit, f).mean(1).numpy()
        if s.n_heldout:
            f_ho = (stack["phi"][:, ho] @ w[..., None])[..., 0]
            out["eps_heldout"][:, j] = _bernoulli_kl(stack["teacher"][:, ho], f_ho).mean(1).numpy()
        if s.n_gold:
            f_go = (stack["phi"][:, go] @ w[..., None])[..., 0]
            y = stack["gold"][:, go]
            ce = torch.nn.functional.binary_cross_entropy_with_logits(f_go, y, reduction="none")
            out["gold_ce"][:, j] = ce.mean(1).numpy()
        j += 1
    if s.n_heldout == 0:
        out["eps_heldout"][:] = np.nan
    arrays = {"steps": evals, "gain": gain, "acc_gain": acc_gain, "lr": np.array(lr)}
    arrays["err_weak"] = err_weak.numpy()
    arrays |= out
    arrays["eps_floor"] = np.array(_eps_floor(s, test["truth"], test["teacher"]))
    kappa = population_projection(s).kappa
    arrays["population_gain"] = (err_weak - _bernoulli_kl(truth_te, kappa * truth_te)).numpy()
    if s.n < s.n_params and s.aux_alpha == 0.0:
        w_dag = interpolant_weights(phi, q_logit)
        f_dag = w_dag @ phi_te.T
        arrays["interpolant_gain"] = (err_weak[None] - _bernoulli_kl(truth_te[None], f_dag)).numpy()
        arrays["interpolant_norm2"] = (w_dag**2).sum(1).numpy()
        k_te = phi @ phi_te.T  # [S, n, N]
        weights = torch.linalg.solve(phi @ phi.transpose(1, 2), k_te)
        arrays["interpolant_leak"] = (weights**2).sum(1).mean(1).numpy()
    arrays["train_seconds"] = np.array(time.perf_counter() - t0)
    return arrays


def curves_key(setting: OverfittingSetting, seeds: int | Sequence[int]) -> dict[str, Any]:
    """The cache key of :func:`overfitting_curves` for ``setting`` and ``seeds``."""
    seeds = check_seeds(seeds, "seeds")
    return {"overfitting_version": OVERFITTING_VERSION, "setting": asdict(setting),
            "seeds": list(seeds)}  # fmt: skip


def overfitting_curves(
    setting: OverfittingSetting | None = None,
    seeds: int | Sequence[int] = 20,
    *,
    use_cache: bool = True,
    **changes: Any,
) -> OverfittingCurves:
    """Train the student of ``setting`` (default :class:`OverfittingSetting`, with ``changes``
    applied, e.g. ``n=50``) for every seed of ``seeds`` (a count or a list) and return the curves.

    The arrays are cached on disk, keyed by the setting, the seeds and :data:`OVERFITTING_VERSION`;
    ``use_cache=False`` recomputes them. Torch runs in float64 on the CPU with one thread (restored
    afterwards).
    """
    s = replace(setting or OverfittingSetting(), **changes)
    seeds = check_seeds(seeds, "seeds")
    t0 = time.perf_counter()
    key = curves_key(s, seeds)
    computed = {"flag": False}

    def compute() -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        computed["flag"] = True
        threads = torch.get_num_threads()
        torch.set_num_threads(1)  # thousands of small steps: more threads only add overhead
        try:
            return _compute(s, seeds), {"what": "over-fitting curves"}
        finally:
            torch.set_num_threads(threads)

    arrays, _ = cache.cached_arrays(key, "overfitting", compute, refresh=not use_cache)
    return OverfittingCurves(
        setting=s,
        seeds=seeds,
        steps=arrays["steps"],
        gain=arrays["gain"],
        acc_gain=arrays["acc_gain"],
        eps_train=arrays["eps_train"],
        eps_heldout=arrays["eps_heldout"],
        eps_test=arrays["eps_test"],
        gold_ce=arrays["gold_ce"],
        err_weak=arrays["err_weak"],
        eps_floor=float(arrays["eps_floor"]),
        population_gain=arrays["population_gain"],
        interpolant_gain=arrays.get("interpolant_gain"),
        interpolant_norm2=arrays.get("interpolant_norm2"),
        interpolant_leak=arrays.get("interpolant_leak"),
        lr=float(arrays["lr"]),
        cached=not computed["flag"],
        seconds=time.perf_counter() - t0,
        train_seconds=float(arrays["train_seconds"]),
    )


def select_steps(curves: OverfittingCurves, rule: str) -> np.ndarray:
    """``[S]``: the evaluation (position in ``curves.steps``) that ``rule`` picks for each seed.

    - ``"final"``: the last step (training to the end);
    - ``"weak_early_stop"``: the lowest misfit to the teacher on the seed's held-out weak-labelled
      inputs (equivalently the lowest cross-entropy against the teacher's soft labels there: the
      teacher's entropy does not depend on the step), over all evaluations; no gold label;
    - ``"gold_oracle"``: the lowest gold-label cross-entropy on the seed's own gold split, which
      the test inputs are not part of (an honest oracle with ``n_gold`` gold labels);
    - ``"hindsight"``: the best gain on the test inputs themselves (selected on what it is scored
      on: optimistic, a reference only).

    Ties go to the earliest evaluation.
    """
    if rule not in OVERFITTING_RULES:
        raise ValueError(f"rule: {rule!r} is unknown; valid rules: {', '.join(OVERFITTING_RULES)}")
    n_seeds, n_evals = len(curves.seeds), len(curves.steps)
    if rule == "final":
        return np.full(n_seeds, n_evals - 1, dtype=np.int64)
    if rule == "hindsight":
        return np.argmax(curves.gain.mean(axis=2, dtype=np.float64), axis=1)
    values = curves.eps_heldout if rule == "weak_early_stop" else curves.gold_ce
    if np.isnan(values).any():
        need = "n_heldout" if rule == "weak_early_stop" else "n_gold"
        raise ValueError(f"rule: {rule!r} needs a setting with {need} > 0")
    return np.argmin(values, axis=1)


# --------------------------------------------------------------- the n -> infinity student


@dataclass(frozen=True)
class PopulationProjection:
    """The student of infinitely many weak labels, computed by quadrature (no sampling).

    ``kappa``: the projection is ``sigmoid(kappa a)`` (``a = <w*, z>``); ``err_weak`` =
    ``Err(F_w)``; ``err_student`` = ``Err(F_pop)``; ``gain`` = their difference (nats);
    ``eps`` = ``E KL(F_w||F_pop)``; ``reverse_err_weak`` = ``E KL(F_w||F*)`` and
    ``reverse_err_student`` = ``E KL(F_pop||F*)`` (the "turned-around" errors of chapter 6's
    forward-KL identity, which says ``reverse_err_weak = reverse_err_student + eps`` when the
    class holds ``F*``: ``identity_residual`` is the difference); ``eps_floor`` =
    ``E KL(F_w||Fbar)``.
    """

    kappa: float
    err_weak: float
    err_student: float
    gain: float
    eps: float
    reverse_err_weak: float
    reverse_err_student: float
    identity_residual: float
    eps_floor: float


def population_projection(setting: OverfittingSetting | None = None) -> PopulationProjection:
    """The forward-KL projection of the teacher on the student's class ``{sigmoid(<w, phi>)}``
    under the input distribution: the limit of the fully trained student as ``n -> infinity``.

    By the symmetries of the model (``xi`` and the part of ``z`` orthogonal to ``w*`` are
    symmetric and independent of the rest) and strict convexity, the minimiser is
    ``w = (kappa w*, 0)``, i.e. ``<w, phi> = kappa a``; ``kappa`` solves the one-dimensional
    moment equation ``E[(sigmoid(kappa a) - F_w) a] = 0`` (Newton), every expectation over
    ``a ~ N(0, signal^2)`` and ``h ~ N(0, 1)`` by Gauss-Hermite quadrature.
    """
    s = setting or OverfittingSetting()
    x, w = _hermite()
    a = s.signal * x[:, None]  # [A, 1]
    wa = w[:, None]
    t_logit = s.teacher_scale * a + s.teacher_noise * x[None, :]  # [A, H]
    weight = wa * w[None, :]  # joint weights
    fw = 1.0 / (1.0 + np.exp(-t_logit))
    fbar = (fw * w[None, :]).sum(1, keepdims=True)  # [A, 1]
    kappa = 0.5
    for _ in range(100):
        p = 1.0 / (1.0 + np.exp(-kappa * a))
        g = float((wa * (p - fbar) * a).sum())
        h = float((wa * p * (1 - p) * a * a).sum())
        if h <= 0.0:
            break
        step = g / h
        kappa -= step
        if abs(step) < 1e-15:
            break
    a_t, t_t = torch.as_tensor(np.broadcast_to(a, t_logit.shape).copy()), torch.as_tensor(t_logit)
    pop = torch.as_tensor(np.broadcast_to(kappa * a, t_logit.shape).copy())
    wt = torch.as_tensor(weight)

    def mean(v: torch.Tensor) -> float:
        return float((wt * v).sum())

    err_weak, err_student = mean(_bernoulli_kl(a_t, t_t)), mean(_bernoulli_kl(a_t, pop))
    eps = mean(_bernoulli_kl(t_t, pop))
    rev_w, rev_s = mean(_bernoulli_kl(t_t, a_t)), mean(_bernoulli_kl(pop, a_t))
    fbar = np.broadcast_to(np.clip(fbar, 1e-300, 1 - 1e-16), t_logit.shape).copy()
    fbar_t = torch.logit(torch.as_tensor(fbar))
    return PopulationProjection(
        kappa=float(kappa),
        err_weak=err_weak,
        err_student=err_student,
        gain=err_weak - err_student,
        eps=eps,
        reverse_err_weak=rev_w,
        reverse_err_student=rev_s,
        identity_residual=rev_w - (rev_s + eps),
        eps_floor=mean(_bernoulli_kl(t_t, fbar_t)),
    )
