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
  features, labels ``F* + noise``: realizable) or the gold labels (not realizable).

Both return one row per (task, ...) with the squared errors of weak, student and ceiling, the
misfit and the gain, plus per-example arrays for test-set intervals. The synthetic result is
cached on disk keyed by its settings (and stores the seconds its cold computation took).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import asdict
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import nn

from w2s_utils.engine import cache
from w2s_utils.engine.models import get_model
from w2s_utils.engine.planted import planted_texts
from w2s_utils.engine.presets import SquaredLossGrid
from w2s_utils.theory.instances import random_relu_mlp

__all__ = [
    "charikar_synthetic",
    "learn_representation",
    "ridge_fit",
    "lstsq_fit",
    "text_features",
    "text_regressions",
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


def charikar_synthetic(
    grid: SquaredLossGrid, *, use_cache: bool = True, progress: bool = False
) -> tuple[pd.DataFrame, dict[str, float]]:
    """Charikar et al.'s synthetic experiment with exact least-squares heads (see module doc).

    Returns ``(table, seconds)``: one row per transfer task and strong representation
    (``strong = "learned"`` or ``"true"``) with test-set ``err_weak``, ``err_student``,
    ``err_ceiling``, ``misfit``, ``gain``, ``var_target`` and ``train_slack`` (gain - misfit on
    the student's own training sample); ``seconds`` of the cold computation (``total``,
    ``representations``), also when the result comes from the cache.
    """
    key = {"what": "charikar synthetic", "grid": asdict(grid), "torch": torch.__version__}

    def compute():
        # tiny networks: one thread (a second one only waits, and on a busy box much longer)
        from threadpoolctl import threadpool_limits

        threads = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            with threadpool_limits(limits=1, user_api="blas"):
                return _synthetic_compute(grid, progress), {"what": "charikar synthetic"}
        finally:
            torch.set_num_threads(threads)

    arrays, _ = cache.cached_arrays(key, "squared_loss", compute, refresh=not use_cache)
    seconds = {"total": float(arrays["seconds"][0]), "representations": float(arrays["seconds"][1])}
    cols = [k for k in arrays if k not in ("seconds", "strong")]
    table = pd.DataFrame({k: arrays[k] for k in cols})
    table.insert(0, "strong", np.where(arrays["strong"], "true", "learned"))
    table["task"] = table["task"].astype(int)
    return table, seconds


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


def text_regressions(
    dataset: str,
    grid: SquaredLossGrid,
    *,
    strong: str,
    seeds: Sequence[int],
    progress: bool = False,
) -> tuple[pd.DataFrame, dict[tuple[str, str], dict[str, np.ndarray]]]:
    """Squared-loss weak-to-strong regressions on the MiniLM features of ``dataset``.

    Texts: :func:`text_features` with ``n = grid.text_n``; the first ``grid.text_test`` of them
    (by the engine's fixed order) are the test set, the same for every seed; each seed draws
    ``grid.text_train`` training texts from the rest. Per (task, weak, seed): the weak head is
    ridge (``grid.weak_ridge``) on the weak features fitted on the training labels, the student
    the least-squares projection of the weak predictions onto affine heads on the ``strong``
    features (same training texts), the ceiling least squares on the training labels.
    Tasks: ``"gold"`` (the 0/1 gold labels: F* unknown, errors measured against the labels) and
    ``planted-*`` (``F*`` affine in the strong features, labels ``F* + N(0, noise^2)`` with the
    gold fit's residual noise; errors measured against ``F*`` exactly).

    Returns ``(table, per_example)``: one row per (task, weak, seed) with the test-set errors,
    ``misfit``, ``gain`` and ``train_slack`` (gain - misfit against ``F*`` on the training
    texts; planted only), and for each (task, weak) a dict of ``[n_seeds, n_test]`` arrays
    ``gap`` (per-example ``(w - t)^2 - (s - t)^2 - (s - w)^2``: its mean is gain - misfit),
    ``misfit`` and ``gain`` for test-set intervals.
    """
    from threadpoolctl import threadpool_limits

    feats = text_features(dataset, grid.text_n, [strong, *grid.text_weaks])
    with threadpool_limits(limits=1, user_api="blas"):  # small solves; threads only wait
        return _text_runs(feats, dataset, grid, strong, seeds, progress)


def _text_runs(feats, dataset, grid, strong, seeds, progress):
    g = grid
    xs, gold = feats[strong], feats["gold"]
    n = len(gold)
    test = np.arange(g.text_test)
    pool = np.arange(g.text_test, n)
    if g.text_train > len(pool):
        raise ValueError(f"text_train={g.text_train} exceeds the {len(pool)} non-test texts")
    heads, noise = _planted_thetas(xs, gold, g.text_planted, g.seed)
    tasks = [("gold", None), *heads]
    rows, per_ex = [], {}
    it = [(t, w, s) for t in tasks for w in g.text_weaks for s in seeds]
    if progress:
        from tqdm.auto import tqdm

        it = tqdm(it, desc=f"{dataset} regressions", leave=False)
    for (task, coef), weak_name, seed in it:
        rng = np.random.default_rng([g.seed, int(seed), 29])
        tr = np.sort(rng.choice(pool, g.text_train, replace=False))
        f_star = None if coef is None else _predict(coef, xs)
        y = gold if f_star is None else f_star + noise * rng.normal(size=n)
        xw = feats[weak_name]
        weak_model = ridge_fit(xw[tr], y[tr], g.weak_ridge)
        w_all = weak_model.predict(xw)
        both = _predict(lstsq_fit(xs[tr], np.c_[w_all[tr], y[tr]]), xs)
        s_all, c_all = both[:, 0], both[:, 1]
        target = y if f_star is None else f_star
        row = _row(target[test], w_all[test], s_all[test], c_all[test])
        if f_star is not None:
            ttr = f_star[tr]
            row["train_slack"] = float(
                np.mean((w_all[tr] - ttr) ** 2)
                - np.mean((s_all[tr] - w_all[tr]) ** 2)
                - np.mean((s_all[tr] - ttr) ** 2)
            )
        else:
            row["train_slack"] = float("nan")
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
    return pd.DataFrame(rows), per_example
