"""Squared-loss weak-to-strong experiments (chapter 5): synthetic and on real text.

Two experiments, every head an exact least-squares fit (float64 ``lstsq``; ridge for the weak):

- :func:`charikar_synthetic` -- Charikar et al.'s synthetic set-up: ``x ~ N(0, I_8)``, a target
  representation ``h*`` (a random 5-layer ReLU MLP R^8 -> R^16), strong (8-layer) and weak
  (2-layer) ReLU MLP representations *learned* from ``h*`` by multi-task regression (the task
  heads frozen at the true ones, Adam), then many fresh transfer tasks ``F* = theta . h*(x)``:
  weak head on ``h_w`` fitted on gold, student head on ``h_s`` fitted on the weak predictions,
  ceiling head on ``h_s`` fitted on gold, all evaluated on fresh inputs. The same tasks are also
  run with the true representation as the strong one (``h_s = h*``: exactly realizable).
- :func:`text_regressions` -- MiniLM sentence features of real texts (the engine's cached probe
  features, see :func:`w2s_utils.engine.planted.planted_texts`): strong = the last layer, weak =
  a lower layer or TF-IDF bag of words. Targets are either *planted* (``F*`` linear in the strong
  features, labels ``F* + noise``: realizable) or the gold labels (not realizable). As in the
  weak-to-strong pipeline, the teacher is fitted on texts of its own and the student (and the
  ceiling) on other texts, so the teacher's errors on the student's texts are not fitted noise.
- :func:`least_squares_estimation_error` -- what a least-squares student pays on fresh inputs for
  being estimated from a finite sample (it enters both its error and its misfit).

Both return one row per (task, ...) with the squared errors of weak, student and ceiling, the
misfit and the gain (positive = the student is better), per-example arrays for test-set intervals
where there is a shared test set, and a :class:`Timing`. Both results are cached on disk keyed by
the settings they read (and store the seconds their cold computation took).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import nn

from w2s_utils._validate import check_int, check_number, check_seeds
from w2s_utils.engine import cache
from w2s_utils.engine.data import check_dataset_name, dataset_identity
from w2s_utils.engine.models import get_model, model_identity
from w2s_utils.engine.planted import planted_texts
from w2s_utils.engine.presets import SquaredLossGrid
from w2s_utils.theory.instances import random_relu_mlp

__all__ = [
    "SYNTHETIC_FIELDS",
    "TEXT_FIELDS",
    "TEXT_REGRESSIONS_VERSION",
    "Timing",
    "charikar_synthetic",
    "learn_representation",
    "least_squares_estimation_error",
    "lstsq_fit",
    "ridge_fit",
    "text_features",
    "text_regressions",
    "text_splits",
]


def _mlp(d_in: int, width: int, n_layers: int) -> nn.Sequential:
    """A ReLU MLP with He-normal weights and zero biases: the signal keeps its scale through
    the layers (PyTorch's default initialisation shrinks it at every ReLU layer, and an 8-layer
    network of width 16 then trains far more slowly)."""
    layers: list[nn.Module] = []
    for i in range(n_layers):
        lin = nn.Linear(d_in if i == 0 else width, width)
        nn.init.kaiming_normal_(lin.weight, nonlinearity="relu")
        nn.init.zeros_(lin.bias)
        layers += [lin, nn.ReLU()]
    return nn.Sequential(*layers)


def learn_representation(
    x: torch.Tensor,
    y: torch.Tensor,
    heads: torch.Tensor,
    *,
    n_layers: int,
    width: int,
    steps: int,
    batch_size: int,
    lr: float,
    seed: int,
    progress: bool = False,
) -> nn.Sequential:
    """Multi-task regression: a ReLU MLP ``h`` with ``heads[t] . h(x) ~ y[t]`` for every task.

    ``x`` [T, n, d], ``y`` [T, n], ``heads`` [T, r] (frozen, as in Charikar et al.'s reference);
    He initialisation, Adam with a cosine learning-rate schedule, ``batch_size`` inputs per task
    per step, float32.
    Returns the trained representation (``nn.Sequential``, in eval mode).
    """
    if x.dim() != 3 or y.shape != x.shape[:2] or heads.shape != (x.shape[0], width):
        raise ValueError(
            f"learn_representation: want x [T, n, d], y [T, n], heads [T, {width}]; got "
            f"{tuple(x.shape)}, {tuple(y.shape)}, {tuple(heads.shape)}"
        )
    torch.manual_seed(seed)
    net = _mlp(x.shape[-1], width, n_layers)
    xf, yf, hf = x.float(), y.float(), heads.float()
    opt = torch.optim.Adam(net.parameters(), lr=lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, steps)
    gen = torch.Generator().manual_seed(seed)
    it = range(steps)
    if progress:
        from tqdm.auto import tqdm

        it = tqdm(it, desc=f"{n_layers}-layer representation", leave=False, mininterval=5.0)
    for _ in it:
        idx = torch.randint(0, x.shape[1], (batch_size,), generator=gen)
        opt.zero_grad()
        out = torch.einsum("tnr,tr->tn", net(xf[:, idx]), hf)
        loss = (out - yf[:, idx]).square().mean()
        loss.backward()
        opt.step()
        sched.step()
    return net.eval()


def _with_ones(h: np.ndarray) -> np.ndarray:
    return np.hstack([h, np.ones((h.shape[0], 1))])


def lstsq_fit(features: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """Least-squares coefficients of ``targets`` ([n] or [n, k]) on ``[features, 1]`` (an
    intercept column); LAPACK's complete orthogonal factorisation (``gelsy``)."""
    from scipy.linalg import lstsq

    return lstsq(_with_ones(features), targets, lapack_driver="gelsy")[0]


def ridge_fit(features: Any, targets: np.ndarray, alpha: float) -> Any:
    """Ridge regression (scikit-learn, intercept, ``alpha``), dense or sparse ``features``."""
    from sklearn.linear_model import Ridge

    return Ridge(alpha=alpha).fit(features, targets)


def _predict(coef: np.ndarray, h: np.ndarray) -> np.ndarray:
    return _with_ones(h) @ coef


def _synthetic_compute(grid: SquaredLossGrid, progress: bool) -> dict[str, np.ndarray]:

    t0 = time.perf_counter()
    g = grid
    gen = torch.Generator().manual_seed(g.seed)
    widths = (g.width,) * g.target_layers

    def h_star(x: torch.Tensor) -> torch.Tensor:
        return random_relu_mlp(x.reshape(-1, g.d_in), widths=widths, seed=g.seed + 1).reshape(
            *x.shape[:-1], g.width
        )

    shape = (g.n_rep_tasks, g.n_per_task, g.d_in)
    x_rep = torch.randn(shape, generator=gen, dtype=torch.float64)
    rep_heads = torch.randn((g.n_rep_tasks, g.width), generator=gen, dtype=torch.float64)
    rep_heads = rep_heads / g.width**0.5
    y_rep = torch.einsum("tnr,tr->tn", h_star(x_rep), rep_heads)
    kw = dict(width=g.width, steps=g.rep_steps, batch_size=g.rep_batch, lr=g.rep_lr)
    strong = learn_representation(
        x_rep, y_rep, rep_heads, n_layers=g.strong_layers, seed=g.seed + 2, progress=progress, **kw
    )
    weak = learn_representation(
        x_rep, y_rep, rep_heads, n_layers=g.weak_layers, seed=g.seed + 3, progress=progress, **kw
    )
    t_rep = time.perf_counter() - t0
    out: dict[str, list[Any]] = {}
    x_tr = torch.randn((g.n_transfer, g.n_train, g.d_in), generator=gen, dtype=torch.float64)
    x_te = torch.randn((g.n_transfer, g.n_test, g.d_in), generator=gen, dtype=torch.float64)
    theta = torch.randn((g.n_transfer, g.width), generator=gen, dtype=torch.float64) / g.width**0.5
    with torch.no_grad():
        reps = {
            "star": (h_star(x_tr), h_star(x_te)),
            "strong": (strong(x_tr.float()).double(), strong(x_te.float()).double()),
            "weak": (weak(x_tr.float()).double(), weak(x_te.float()).double()),
        }
    y_tr = torch.einsum("tnr,tr->tn", reps["star"][0], theta).numpy()
    y_te = torch.einsum("tnr,tr->tn", reps["star"][1], theta).numpy()
    for t in range(g.n_transfer):
        hw_tr, hw_te = (r[t].numpy() for r in reps["weak"])
        c_w = lstsq_fit(hw_tr, y_tr[t])
        w_tr, w_te = _predict(c_w, hw_tr), _predict(c_w, hw_te)
        for strong_name in ("strong", "star"):
            hs_tr, hs_te = (r[t].numpy() for r in reps[strong_name])
            c_s = lstsq_fit(hs_tr, w_tr)
            s_tr, s_te = _predict(c_s, hs_tr), _predict(c_s, hs_te)
            c_te = _predict(lstsq_fit(hs_tr, y_tr[t]), hs_te)
            row = _row(y_te[t], w_te, s_te, c_te)
            row["train_slack"] = float(
                np.mean((w_tr - y_tr[t]) ** 2)
                - np.mean((s_tr - w_tr) ** 2)
                - np.mean((s_tr - y_tr[t]) ** 2)
            )
            row.update(task=t, strong=strong_name)
            for k, v in row.items():
                out.setdefault(k, []).append(v)
    arrays = {k: np.asarray(v) for k, v in out.items()}
    arrays["strong"] = np.asarray([s == "star" for s in out["strong"]])
    arrays["seconds"] = np.asarray([time.perf_counter() - t0, t_rep])
    return arrays


def _row(target: np.ndarray, weak: np.ndarray, student: np.ndarray, ceiling: np.ndarray):
    err_weak = float(np.mean((weak - target) ** 2))
    err_student = float(np.mean((student - target) ** 2))
    return dict(
        err_weak=err_weak,
        err_student=err_student,
        err_ceiling=float(np.mean((ceiling - target) ** 2)),
        misfit=float(np.mean((student - weak) ** 2)),
        gain=err_weak - err_student,
        var_target=float(np.var(target)),
    )


@dataclass(frozen=True)
class Timing:
    """How long a cached computation took when it ran cold, and whether this call read it.

    ``key``: the cache entry's name (the hash of its key); ``seconds``: wall seconds of the cold
    computation, stored with the result (so a warm build can still report the cold cost);
    ``cached``: this call read the result from the cache (it did not compute it); ``parts``:
    named shares of ``seconds`` (e.g. ``{"representations": ...}``).
    """

    key: str
    seconds: float
    cached: bool
    parts: dict[str, float] = field(default_factory=dict)

    @property
    def pieces(self) -> tuple[tuple[str, float], ...]:
        """``((key, seconds),)``: the form :func:`w2s_utils.book.frame.cold_seconds` counts."""
        return ((self.key, self.seconds),)


#: The grid fields :func:`charikar_synthetic` reads (its cache key holds exactly these).
SYNTHETIC_FIELDS = (
    "seed",
    "d_in",
    "width",
    "target_layers",
    "strong_layers",
    "weak_layers",
    "n_rep_tasks",
    "n_per_task",
    "rep_steps",
    "rep_batch",
    "rep_lr",
    "n_transfer",
    "n_train",
    "n_test",
)


def _check_grid(grid: Any) -> SquaredLossGrid:
    if not isinstance(grid, SquaredLossGrid):
        raise ValueError(
            f"grid: expected a SquaredLossGrid (e.g. get_preset('ci').grid('squared_loss')), got "
            f"{type(grid).__name__}"
        )
    return grid


def _cached(key: dict[str, Any], compute: Any, use_cache: bool) -> tuple[dict, Timing]:
    """``cache.cached_arrays`` under kind ``squared_loss``; ``compute()`` returns arrays with a
    ``seconds`` entry (its cold wall time first); returns the arrays and their :class:`Timing`."""
    ran = []

    def run():
        ran.append(True)
        return compute()

    arrays, _ = cache.cached_arrays(key, "squared_loss", run, refresh=not use_cache)
    name = cache.cache_path(key, "squared_loss").stem
    seconds = np.atleast_1d(arrays["seconds"]).astype(float)
    return arrays, Timing(key=name, seconds=float(seconds[0]), cached=not ran)


def charikar_synthetic(
    grid: SquaredLossGrid, *, use_cache: bool = True, progress: bool = False
) -> tuple[pd.DataFrame, Timing]:
    """Charikar et al.'s synthetic experiment with exact least-squares heads (see module doc).

    Returns ``(table, timing)``: one row per transfer task and strong representation
    (``strong = "learned"`` or ``"true"``) with test-set ``err_weak``, ``err_student``,
    ``err_ceiling``, ``misfit``, ``gain`` (``err_weak - err_student``: positive = the student is
    better), ``var_target`` and ``train_slack`` (gain - misfit on the student's own training
    sample); ``timing`` (:class:`Timing`) holds the cold computation's seconds (its
    ``parts["representations"]``: learning the two representations), also when the result comes
    from the cache. Cached, keyed by the grid's :data:`SYNTHETIC_FIELDS` and torch's version.
    """
    g = _check_grid(grid)
    key = {
        "what": "charikar synthetic",
        "grid": {f: getattr(g, f) for f in SYNTHETIC_FIELDS},
        "torch": torch.__version__,
    }

    def compute():
        # tiny networks: one thread (a second one only waits, and on a busy box much longer)
        from threadpoolctl import threadpool_limits

        threads = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            with threadpool_limits(limits=1, user_api="blas"):
                return _synthetic_compute(g, progress), {"what": "charikar synthetic"}
        finally:
            torch.set_num_threads(threads)

    arrays, timing = _cached(key, compute, use_cache)
    timing = replace(timing, parts={"representations": float(arrays["seconds"][1])})
    cols = [k for k in arrays if k not in ("seconds", "strong")]
    table = pd.DataFrame({k: arrays[k] for k in cols})
    table.insert(0, "strong", np.where(arrays["strong"], "true", "learned"))
    table["task"] = table["task"].astype(int)
    return table, timing


# ------------------------------------------------------------------------------- real text
def text_features(dataset: str, n: int, models: Sequence[str]) -> dict[str, Any]:
    """Texts, gold labels and features of the fixed ``n``-text subset of ``dataset``.

    ``models`` are engine model names: MiniLM ones give their mean-pooled final-layer probe
    features (cached per text by the engine; ``minilm-l1`` is MiniLM's layer 1), ``"bow"`` a
    TF-IDF (1-2-gram, sublinear tf, ``min_df=2``) matrix fitted on all ``n`` texts (unsupervised).
    """

    texts, gold = planted_texts(dataset, n)
    out: dict[str, Any] = {"texts": texts, "gold": gold.numpy().astype(np.float64)}
    for m in models:
        if m == "bow":
            from sklearn.feature_extraction.text import TfidfVectorizer

            vec = TfidfVectorizer(ngram_range=(1, 2), min_df=2, sublinear_tf=True)
            out[m] = vec.fit_transform(texts).tocsr()
        else:
            out[m] = np.asarray(get_model(m, mode="probe").features(texts), dtype=np.float64)
    return out


def _planted_thetas(strong: np.ndarray, gold: np.ndarray, n_random: int, seed: int):
    """The gold-like planted head (least squares of gold on the strong features) and
    ``n_random`` random heads scaled to the same target variance; the noise level."""
    coef = lstsq_fit(strong, gold)
    f_gold = _predict(coef, strong)
    sd, noise = float(np.std(f_gold)), float(np.std(gold - f_gold))
    rng = np.random.default_rng([seed, 17])
    heads = [("planted-gold", coef)]
    for k in range(n_random):
        c = np.r_[rng.normal(size=strong.shape[1]), 0.0]
        f = _predict(c, strong)
        c = c * sd / np.std(f)
        c[-1] = 0.5 - float(np.mean(_predict(c, strong)))
        heads.append((f"planted-random-{k + 1}", c))
    return heads, noise


#: Bump when :func:`text_regressions` computes something else from the same inputs (its cached
#: results then miss). 2: the teacher is fitted on its own split, apart from the student's texts;
#: the student's finite-sample shortfall is stored.
TEXT_REGRESSIONS_VERSION = 2

#: The grid fields :func:`text_regressions` reads (its cache key holds exactly these).
TEXT_FIELDS = (
    "seed",
    "text_n",
    "text_test",
    "text_weak_train",
    "text_train",
    "text_weaks",
    "weak_ridge",
    "text_planted",
)


def text_regressions(
    dataset: str,
    grid: SquaredLossGrid,
    *,
    strong: str,
    seeds: Sequence[int],
    use_cache: bool = True,
    progress: bool = False,
) -> tuple[pd.DataFrame, dict[tuple[str, str], dict[str, np.ndarray]], Timing]:
    """Squared-loss weak-to-strong regressions on the frozen sentence features of ``dataset``.

    Texts: :func:`text_features` with ``n = grid.text_n``; the first ``grid.text_test`` of them
    (the engine's fixed, content-defined order) are the test set, the same for every seed. Each
    seed splits the rest at random into two disjoint parts, as the weak-to-strong pipeline does:
    ``grid.text_weak_train`` texts on which the *teacher* is fitted (ridge with
    ``grid.weak_ridge`` on the weak features, to the labels) and ``grid.text_train`` texts on which
    the *student* is fitted (the least-squares projection of the teacher's predictions onto
    affine heads on the ``strong`` features) and the *ceiling* (least squares of the labels on the
    same strong features). The teacher never sees the student's texts, so its errors there are
    not fitted label noise.

    Tasks: ``"gold"`` (the 0/1 gold labels: ``F*`` unknown, errors measured against the labels,
    which estimates the gain without bias and not the errors themselves) and ``planted-*``
    (``F*`` affine in the strong features, so the strong class is convex and realizable; labels
    ``F* + N(0, noise^2)`` with the gold fit's residual noise; errors measured against ``F*``
    exactly): ``planted-gold`` (the least-squares fit of the gold labels) and
    ``grid.text_planted`` random heads of the same variance.

    Returns ``(table, per_example, timing)``. ``table``: one row per (task, weak, seed) with the
    test-set squared errors ``err_weak``, ``err_student``, ``err_ceiling``, ``misfit``
    (``E(f_sw - f_w)^2``), ``gain`` (``err_weak - err_student``: positive = the student is
    better), ``cross`` and ``projection_term`` (the two terms of ``gain - misfit`` with the
    ceiling in place of the best strong predictor), ``train_slack`` (gain - misfit against
    ``F*`` on the student's own texts: 0 up to rounding for planted tasks, where the theorem is
    an identity; NaN for gold, where ``F*`` is unknown), ``estimation`` (the student's expected
    estimation error on fresh inputs, predicted from its own training texts alone:
    :func:`least_squares_estimation_error` with ``d = strong_dim`` (the strong design's rank
    less the intercept) and ``sigma2 = RSS / (n - d - 1)`` of the student's fit to its teacher;
    on fresh inputs a planted task's ``gain - misfit`` is expected near ``-2 estimation``) and
    ``noise`` (the planted labels' noise sd). ``per_example``: for each
    (task, weak), ``[n_seeds, n_test]`` arrays ``gap`` (per example
    ``(w - t)^2 - (s - t)^2 - (s - w)^2``: its mean is gain - misfit), ``misfit`` and ``gain``,
    the test examples in one order for every seed. ``timing``: :class:`Timing` of the cold
    computation.

    The result is cached, keyed by the dataset's and models' identities, the grid's
    :data:`TEXT_FIELDS`, ``strong`` and ``seeds`` (``use_cache=False`` recomputes).
    """
    g = _check_grid(grid)
    check_dataset_name(dataset)
    seeds = check_seeds(tuple(seeds), "seeds")
    if not isinstance(strong, str) or not strong:
        raise ValueError(f"strong: the strong feature model's name, got {strong!r}")
    for name in ("text_n", "text_test", "text_weak_train", "text_train"):
        check_int(getattr(g, name), f"grid.{name}", minimum=1)
    pool = g.text_n - g.text_test
    if g.text_weak_train + g.text_train > pool:
        raise ValueError(
            f"grid: text_weak_train + text_train = {g.text_weak_train + g.text_train} exceeds the "
            f"{pool} texts outside the test set (text_n - text_test); lower them or raise text_n"
        )
    key = {
        "what": "text regressions",
        "version": TEXT_REGRESSIONS_VERSION,
        "dataset": dataset_identity(dataset),
        "strong": model_identity(strong),
        "weaks": [model_identity(w) for w in g.text_weaks],
        "grid": {f: getattr(g, f) for f in TEXT_FIELDS},
        "seeds": list(seeds),
    }

    def compute():
        from threadpoolctl import threadpool_limits

        t0 = time.perf_counter()
        feats = text_features(dataset, g.text_n, [strong, *g.text_weaks])
        with threadpool_limits(limits=1, user_api="blas"):  # small solves; threads only wait
            table, per = _text_runs(feats, dataset, g, strong, seeds, progress)
        arrays = {f"table:{c}": np.asarray(table[c].tolist()) for c in table.columns}
        for (task, weak), d in per.items():
            arrays.update({f"per:{task}:{weak}:{k}": v for k, v in d.items()})
        arrays["seconds"] = np.asarray([time.perf_counter() - t0])
        return arrays, {"what": "text regressions"}

    arrays, timing = _cached(key, compute, use_cache)
    table = pd.DataFrame(
        {k.split(":", 1)[1]: v for k, v in arrays.items() if k.startswith("table:")}
    )
    for col in ("dataset", "task", "weak"):
        table[col] = table[col].astype(str)
    table["seed"] = table["seed"].astype(int)
    per_example: dict[tuple[str, str], dict[str, np.ndarray]] = {}
    for k, v in arrays.items():
        if k.startswith("per:"):
            _, task, weak, name = k.split(":")
            per_example.setdefault((task, weak), {})[name] = v
    return table, per_example, timing


def least_squares_estimation_error(n: int, d: int, sigma2: float = 1.0) -> float:
    """Expected excess squared error, on a fresh input, of a least-squares fit with an intercept
    and ``d`` features from ``n`` examples: ``sigma2 (1/n + (1 + 1/n) d / (n - d - 2))``.

    Exact when the features are Gaussian (any mean and non-singular covariance) and the targets
    are a linear function of them plus noise of variance ``sigma2`` independent of the features:
    with ``x0`` fresh and ``S`` the centred scatter matrix of the sample (Wishart with ``n - 1``
    degrees of freedom), the excess is ``sigma2 (1/n + (x0 - xbar)' S^-1 (x0 - xbar))`` and
    ``E S^-1 = Sigma^-1 / (n - d - 2)``. Used for the student of chapter 5: the teacher's part
    outside the strong linear class plays the noise, so on fresh inputs the student's error and its
    misfit each exceed their population values by about this much. Needs ``n > d + 2``.
    """
    n = check_int(n, "n", minimum=1)
    d = check_int(d, "d", minimum=0)
    sigma2 = check_number(sigma2, "sigma2", lo=0.0)
    if n <= d + 2:
        raise ValueError(f"n: the formula needs n > d + 2 examples, got n = {n}, d = {d}")
    return sigma2 * (1.0 / n + (1.0 + 1.0 / n) * d / (n - d - 2))


def _splits(n: int, grid: SquaredLossGrid, seed: int):
    """:func:`text_splits` and the seed's generator, positioned after the split (it then draws
    the planted labels' noise)."""
    rng = np.random.default_rng([grid.seed, int(seed), 31])
    perm = rng.permutation(np.arange(grid.text_test, n))
    teacher = np.sort(perm[: grid.text_weak_train])
    student = np.sort(perm[grid.text_weak_train : grid.text_weak_train + grid.text_train])
    return np.arange(grid.text_test), teacher, student, rng


def text_splits(n: int, grid: SquaredLossGrid, seed: int) -> tuple[np.ndarray, ...]:
    """The positions ``(test, teacher, student)`` among ``n`` texts that
    :func:`text_regressions` uses for ``seed``: the first ``grid.text_test`` texts (the same for
    every seed), then ``grid.text_weak_train`` texts for the teacher and ``grid.text_train``
    others for the student and the ceiling, drawn at random (seeded by ``grid.seed`` and
    ``seed``) from the rest; the three parts are disjoint, each sorted."""
    g = _check_grid(grid)
    n = check_int(n, "n", minimum=1)
    seed = check_int(seed, "seed", minimum=0)
    if g.text_test + g.text_weak_train + g.text_train > n:
        raise ValueError(
            f"n: {n} texts cannot hold text_test + text_weak_train + text_train = "
            f"{g.text_test + g.text_weak_train + g.text_train}; lower them or raise n"
        )
    return _splits(n, g, seed)[:3]


def _text_runs(feats, dataset, grid, strong, seeds, progress):
    """Every (task, weak, seed) run; per seed one least-squares solve on the strong design serves
    every student and ceiling (many right-hand sides), its rank gives the head's parameters."""
    from scipy.linalg import lstsq

    g = grid
    xs, gold = feats[strong], feats["gold"]
    n = len(gold)
    heads, noise = _planted_thetas(xs, gold, g.text_planted, g.seed)
    tasks = [("gold", None), *heads]
    f_stars = {name: None if coef is None else _predict(coef, xs) for name, coef in tasks}
    rows, per_ex = [], {}
    it = list(seeds)
    if progress:
        from tqdm.auto import tqdm

        it = tqdm(it, desc=f"{dataset} regressions", leave=False)
    for seed in it:
        test, tr_w, tr, rng = _splits(n, g, seed)
        label_noise = noise * rng.normal(size=n)
        ys = {t: gold if f is None else f + label_noise for t, f in f_stars.items()}
        weak_preds = {
            (t, w): ridge_fit(feats[w][tr_w], ys[t][tr_w], g.weak_ridge).predict(feats[w])
            for t in f_stars
            for w in g.text_weaks
        }
        # students (targets: the teachers' predictions) and ceilings (targets: the labels)
        targets = np.column_stack([*weak_preds.values(), *ys.values()])[tr]
        coef, _, rank, _ = lstsq(_with_ones(xs[tr]), targets, lapack_driver="gelsy")
        fitted = _with_ones(xs) @ coef
        k = len(weak_preds)
        ceilings = {t: fitted[:, k + i] for i, t in enumerate(f_stars)}
        for i, ((task, weak_name), w_all) in enumerate(weak_preds.items()):
            s_all, c_all, f_star = fitted[:, i], ceilings[task], f_stars[task]
            target = ys[task] if f_star is None else f_star
            row = _row(target[test], w_all[test], s_all[test], c_all[test])
            row["train_slack"] = float("nan")
            if f_star is not None:
                ttr = f_star[tr]
                row["train_slack"] = float(
                    np.mean((w_all[tr] - ttr) ** 2)
                    - np.mean((s_all[tr] - w_all[tr]) ** 2)
                    - np.mean((s_all[tr] - ttr) ** 2)
                )
            resid = w_all[tr] - s_all[tr]
            sigma2 = float(resid @ resid) / (len(tr) - rank)
            row["estimation"] = least_squares_estimation_error(len(tr), int(rank) - 1, sigma2)
            row["strong_dim"] = int(rank) - 1
            wt, st, ct, tt = w_all[test], s_all[test], c_all[test], target[test]
            row["cross"] = float(2 * np.mean((wt - st) * (ct - tt)))
            row["projection_term"] = float(2 * np.mean((wt - st) * (st - ct)))
            row.update(dataset=dataset, task=task, weak=weak_name, seed=int(seed), noise=noise)
            rows.append(row)
            d = per_ex.setdefault((task, weak_name), {"gap": [], "misfit": [], "gain": []})
            d["gap"].append((wt - tt) ** 2 - (st - tt) ** 2 - (st - wt) ** 2)
            d["misfit"].append((st - wt) ** 2)
            d["gain"].append((wt - tt) ** 2 - (st - tt) ** 2)
    per_example = {k: {a: np.vstack(b) for a, b in v.items()} for k, v in per_ex.items()}
    order = {(t, w): i for i, (t, w) in enumerate(weak_preds)}
    table = pd.DataFrame(rows)
    table = table.iloc[
        sorted(range(len(table)), key=lambda j: (order[table.task[j], table.weak[j]], j))
    ].reset_index(drop=True)
    return table, per_example
