"""Metrics: divergences, calibration, and weak-to-strong summaries (pure torch, device-agnostic).

Conventions
-----------
- Probabilities: last axis = classes, any leading axes are batch axes. A 1-D tensor ``[N]`` is a
  *binary* predictor given as positive-class probabilities; ``[N]`` and ``[N, 2]`` give the same
  result everywhere. Numpy input is accepted and converted; tensors stay on their device and keep
  a floating dtype (float64 stays float64).
- Divergences use natural logs (nats) and the convention 0 · log 0 = 0 (``torch.xlogy``); the
  ``*_from_logits`` variants work in log space (``log_softmax`` / ``logsigmoid``) and are stable for
  extreme logits.
- Every public function validates its input (see :mod:`w2s_utils._validate`); pass
  ``validate=False`` only from internal hot loops whose input is already checked.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from w2s_utils._validate import (
    as_tensor,
    check_labels,
    check_leading,
    check_logits,
    check_probs,
    check_same_shape,
)

__all__ = [
    "MISFIT_KINDS",
    "Interval",
    "Reliability",
    "accuracy",
    "auroc",
    "bootstrap_ci",
    "ece",
    "misfit",
    "pgr",
    "reliability",
    "seed_interval",
    "smooth_ce",
    "cross_entropy",
    "cross_entropy_from_logits",
    "entropy",
    "entropy_from_logits",
    "kl",
    "kl_from_logits",
    "tv",
]


# --------------------------------------------------------------------------- divergences
def _pair(p: torch.Tensor, q: torch.Tensor, validate: bool) -> tuple[torch.Tensor, torch.Tensor]:
    if validate:
        p = check_probs(p, "p")
        q = check_probs(q, "q")
        check_same_shape((p, "p"), (q, "q"))
    else:
        p, q = as_tensor(p, "p"), as_tensor(q, "q")
    if p.dtype != q.dtype:
        dt = torch.promote_types(p.dtype, q.dtype)
        p, q = p.to(dt), q.to(dt)
    return p, q


def _chunked(p: torch.Tensor) -> bool:
    """Whether a no-grad row kernel runs over ``p`` in cache-sized chunks (large CPU input)."""
    return p.device.type == "cpu" and p.numel() > 4 * CHUNK_ELEMENTS


# CPU evaluation of large inputs in chunks of this many elements, so that the temporaries of the
# elementwise kernels stay in cache (about 2x faster than whole-array ops on a 2-core box). 2^17
# (512 KiB of float32) is also large enough for torch's intra-op threads to split (ECE's binning
# is fastest here); the divergence kernels use 4x this, see :func:`_rowwise`.
CHUNK_ELEMENTS = 1 << 17


# The no-grad kernels come in two tiers. The *interior* kernels below are fast: one pass over cache-
# sized chunks with the fewest elementwise ops (binary KL: 2 logs, 2 divisions, 3 cheap ops, two
# reused scratch buffers). They are exact for inputs inside (0, 1) of normal size, and otherwise
# return a non-finite value (0 · log 0 -> NaN; p / q overflowing for a subnormal q -> inf).
# :func:`_rowwise` redoes every non-finite row with :func:`_xlogy_form` (exact, also for
# genuinely infinite KL), so the rare edge cases cost a second look at a few rows only.


def _binary_interior(
    kind: str, p: torch.Tensor, q: torch.Tensor, out: torch.Tensor, a: torch.Tensor, b: torch.Tensor
) -> None:
    """Binary KL / CE / entropy as lerp(b, a, p) = p a + (1 − p) b, written into ``out``.

    KL: a = log(p/q), b = log((1−p)/(1−q)) (computed as (p−1)/(q−1)); CE: a = −log q,
    b = −log(1−q); entropy: a = −log p, b = −log(1−p). ``a`` and ``b`` are scratch buffers of
    ``p``'s shape (reused across chunks: fresh memory would page-fault on every chunk).
    """
    if kind == "kl":
        torch.div(p, q, out=a).log_()
        torch.sub(p, 1.0, out=b).div_(torch.sub(q, 1.0, out=out)).log_()  # out: scratch
    else:
        x = q if kind == "ce" else p
        torch.log(x, out=a).neg_()
        torch.sub(x, 1.0, out=b).neg_().log_().neg_()
    torch.lerp(b, a, p, out=out)


def _multi_interior(
    kind: str, p: torch.Tensor, q: torch.Tensor, out: torch.Tensor, a: torch.Tensor
) -> None:
    """Σ_k p_k a_k over the last axis with a = log(p/q) (KL), −log q (CE), −log p (entropy)."""
    if kind == "kl":
        torch.div(p, q, out=a).log_()
    else:
        torch.log(q if kind == "ce" else p, out=a).neg_()
    torch.sum(a.mul_(p), dim=-1, out=out)


def _xlogy_form(kind: str, p: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
    """KL / CE / entropy from ``torch.xlogy`` (differentiable; exact at 0, 1 and for tiny q)."""
    if p.dim() == 1:
        pn, qn = 1.0 - p, 1.0 - q
        if kind == "kl":
            return (torch.xlogy(p, p) - torch.xlogy(p, q)) + (
                torch.xlogy(pn, pn) - torch.xlogy(pn, qn)
            )
        return -(torch.xlogy(p, q) + torch.xlogy(pn, qn))
    if kind == "kl":
        return (torch.xlogy(p, p) - torch.xlogy(p, q)).sum(dim=-1)
    return -torch.xlogy(p, q).sum(dim=-1)


_NUMPY_DTYPES = {torch.float32: np.float32, torch.float64: np.float64}


def _new_output(n: int, like: torch.Tensor) -> torch.Tensor:
    """An uninitialised 1-D output of ``n`` elements on ``like``'s device and dtype.

    Large CPU outputs are allocated through numpy, which advises Linux to back them with huge
    pages: the page faults of a fresh 40 MB torch tensor cost ~11 ms on the 2-core dev box, about
    as much as the whole binary-KL arithmetic, against ~3 ms for numpy's memory.
    """
    if like.device.type == "cpu" and n >= 1 << 18 and like.dtype in _NUMPY_DTYPES:
        return torch.from_numpy(np.empty(n, dtype=_NUMPY_DTYPES[like.dtype]))
    return torch.empty(n, dtype=like.dtype, device=like.device)


def _rowwise(kind: str, p: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
    """KL / CE / entropy per row without autograd: interior kernel, non-finite rows redone exactly.

    Large CPU inputs go through the kernel in cache-sized chunks of rows.
    """
    binary = p.dim() == 1
    p2, q2 = (p, q) if binary else (p.reshape(-1, p.shape[-1]), q.reshape(-1, q.shape[-1]))
    n = p2.shape[0]
    out = _new_output(n, p)
    step = n
    if _chunked(p):  # 4 x CHUNK_ELEMENTS (2 MiB of float32, L3-resident): 5-10% faster than 1 x
        chunk = 4 * CHUNK_ELEMENTS
        step = chunk if binary else max(1, chunk // p2.shape[1])
    scratch = [torch.empty_like(p2[:step]) for _ in range(2 if binary else 1)]
    for i in range(0, n, step):
        j = min(n, i + step)
        bufs = [t[: j - i] for t in scratch]
        if binary:
            _binary_interior(kind, p2[i:j], q2[i:j], out[i:j], *bufs)
        else:
            _multi_interior(kind, p2[i:j], q2[i:j], out[i:j], *bufs)
    if not bool(out.sum().isfinite()):  # some row is ±inf or NaN: redo those rows exactly
        bad = ~torch.isfinite(out)
        out[bad] = _xlogy_form(kind, p2[bad], q2[bad])
    return out.reshape(p.shape if binary else p.shape[:-1])


def _needs_grad(*ts: torch.Tensor) -> bool:
    return torch.is_grad_enabled() and any(t.requires_grad for t in ts)


def kl(p, q, *, validate: bool = True) -> torch.Tensor:
    """KL(p ‖ q) = Σ_k p_k log(p_k / q_k) over the last axis (per row; ``inf`` where q_k = 0 < p_k).

    ``[N]`` inputs are binary positive-class probabilities (Bernoulli KL). Differentiable when an
    input requires grad; otherwise a fused, chunked kernel is used on CPU.
    """
    p, q = _pair(p, q, validate)
    if not _needs_grad(p, q):
        return _rowwise("kl", p, q)
    return _xlogy_form("kl", p, q)


def cross_entropy(p, q, *, validate: bool = True) -> torch.Tensor:
    """Cross-entropy H(p, q) = −Σ_k p_k log q_k over the last axis (= H(p) + KL(p ‖ q))."""
    p, q = _pair(p, q, validate)
    if not _needs_grad(p, q):
        return _rowwise("ce", p, q)
    return _xlogy_form("ce", p, q)


def entropy(p, *, validate: bool = True) -> torch.Tensor:
    """Shannon entropy H(p) = −Σ_k p_k log p_k over the last axis (0 · log 0 = 0)."""
    p = check_probs(p, "p") if validate else as_tensor(p, "p")
    if not _needs_grad(p):
        return _rowwise("entropy", p, p)
    return _xlogy_form("entropy", p, p)


def tv(p, q, *, validate: bool = True) -> torch.Tensor:
    """Total variation ½ Σ_k |p_k − q_k| over the last axis (binary ``[N]``: |p − q|)."""
    p, q = _pair(p, q, validate)
    if p.dim() == 1:
        return (p - q).abs()
    return 0.5 * (p - q).abs().sum(dim=-1)


def _log_probs(z: torch.Tensor) -> torch.Tensor:
    """Log-probabilities ``[..., K]`` from logits; 1-D = binary positive-class logit -> [N, 2]."""
    if z.dim() == 1:
        return torch.stack([F.logsigmoid(-z), F.logsigmoid(z)], dim=-1)
    return torch.log_softmax(z, dim=-1)


def _logit_pair(a, b, validate: bool) -> tuple[torch.Tensor, torch.Tensor]:
    if validate:
        a = check_logits(a, "p_logits")
        b = check_logits(b, "q_logits")
        check_same_shape((a, "p_logits"), (b, "q_logits"))
    else:
        a, b = as_tensor(a, "p_logits"), as_tensor(b, "q_logits")
    if a.dtype != b.dtype:
        dt = torch.promote_types(a.dtype, b.dtype)
        a, b = a.to(dt), b.to(dt)
    return _log_probs(a), _log_probs(b)


def kl_from_logits(p_logits, q_logits, *, validate: bool = True) -> torch.Tensor:
    """KL(softmax(p_logits) ‖ softmax(q_logits)) per row, computed in log space.

    1-D logits are binary positive-class logits (sigmoid).
    """
    lp, lq = _logit_pair(p_logits, q_logits, validate)
    return (lp.exp() * (lp - lq)).sum(dim=-1)


def cross_entropy_from_logits(p_logits, q_logits, *, validate: bool = True) -> torch.Tensor:
    """H(softmax(p_logits), softmax(q_logits)) per row, in log space."""
    lp, lq = _logit_pair(p_logits, q_logits, validate)
    return -(lp.exp() * lq).sum(dim=-1)


def entropy_from_logits(logits, *, validate: bool = True) -> torch.Tensor:
    """H(softmax(logits)) per row, in log space."""
    z = check_logits(logits, "logits") if validate else as_tensor(logits, "logits")
    lp = _log_probs(z)
    return -(lp.exp() * lp).sum(dim=-1)


# --------------------------------------------------------------------------- classification
def _predictions(probs: torch.Tensor) -> torch.Tensor:
    if probs.dim() == 1:
        return (probs > 0.5).long()
    return probs.argmax(dim=-1)


def _n_classes(probs: torch.Tensor) -> int:
    return 2 if probs.dim() == 1 else int(probs.shape[-1])


def _probs_rows(probs, validate: bool, name: str = "probs") -> torch.Tensor:
    """``[N]`` or ``[N, K]`` probabilities (checked when ``validate``)."""
    if not validate:
        return as_tensor(probs, name)
    probs = check_probs(probs, name)
    if probs.dim() > 2:
        raise ValueError(
            f"{name}: expected [N] or [N, K], got shape {tuple(probs.shape)}; flatten the "
            "leading axes first"
        )
    return probs


def _probs_labels(
    probs, labels, validate: bool, name: str = "probs"
) -> tuple[torch.Tensor, torch.Tensor]:
    if validate:
        probs = _probs_rows(probs, True, name)
        labels = check_labels(labels, _n_classes(probs), "labels")
        check_leading(probs, labels, (name, "labels"))
    else:
        probs = as_tensor(probs, "probs")
        labels = as_tensor(labels, "labels", floating=False).long()
    return probs, labels.to(probs.device)


def _probs_truth(
    probs, labels, target, validate: bool, name: str = "probs"
) -> tuple[torch.Tensor, torch.Tensor]:
    """``(probs, truth)``: truth is the int labels, or the float ``target`` distribution (F*)."""
    if (labels is None) == (target is None):
        raise ValueError(
            "pass exactly one of labels (class indices) and target (the true class "
            "probabilities, e.g. a known F*, same shape as probs)"
        )
    if labels is not None:
        return _probs_labels(probs, labels, validate, name)
    probs = _probs_rows(probs, validate, name)
    target = check_probs(target, "target") if validate else as_tensor(target, "target")
    if validate:
        check_same_shape((probs, name), (target, "target"))
    return probs, target.to(device=probs.device, dtype=probs.dtype)


def accuracy(probs, labels, *, validate: bool = True) -> float:
    """Fraction of rows whose argmax class equals the label (binary ``[N]``: p > 0.5 means 1)."""
    probs, labels = _probs_labels(probs, labels, validate)
    return float((_predictions(probs) == labels).double().mean())


def auroc(p, labels, *, validate: bool = True) -> float:
    """Area under the ROC curve of a binary predictor (ties count 1/2, as scikit-learn).

    ``p``: ``[N]`` positive-class scores/probabilities or ``[N, 2]`` (column 1 is used). Computed
    with average ranks (Mann–Whitney U). Needs both classes present (else ``ValueError``).
    """
    if validate:
        p = check_probs(p, "p")
        if p.dim() == 2 and p.shape[1] != 2:
            raise ValueError(f"p: auroc is binary, got {p.shape[1]} classes; pass [N] or [N, 2]")
        if p.dim() > 2:
            raise ValueError(f"p: expected [N] or [N, 2], got shape {tuple(p.shape)}")
        labels = check_labels(labels, 2, "labels")
        check_leading(p, labels, ("p", "labels"))
    else:
        p, labels = as_tensor(p, "p"), as_tensor(labels, "labels", floating=False).long()
    s = (p[:, 1] if p.dim() == 2 else p).double()
    y = labels.to(s.device)
    n_pos = int(y.sum())
    n_neg = y.numel() - n_pos
    if n_pos == 0 or n_neg == 0:
        raise ValueError(
            "labels: AUROC needs both classes present, got only class "
            f"{1 if n_neg == 0 else 0}; evaluate on a set with positives and negatives"
        )
    _, inverse, counts = torch.unique(s, sorted=True, return_inverse=True, return_counts=True)
    ends = counts.cumsum(0).double()
    avg_rank = ends - (counts.double() - 1.0) / 2.0  # 1-based average rank of each distinct value
    rank_pos = avg_rank[inverse][y == 1].sum()
    u = float(rank_pos) - n_pos * (n_pos + 1) / 2.0
    return u / (n_pos * n_neg)


# --------------------------------------------------------------------------- calibration
@dataclass(frozen=True)
class Reliability:
    """Per-bin data for a reliability diagram (tensors on the input's device, one entry per bin).

    Bin ``k`` covers ``[lo[k], hi[k])``; see :func:`reliability` for the last bin. ``confidence``
    and ``accuracy`` are the bin means (0 for empty bins, as torchmetrics), ``count`` the number of
    predictions; these three are float64 (accumulated in float64).
    ``ece`` = Σ_k count_k / N · |accuracy_k − confidence_k|.
    """

    lo: torch.Tensor
    hi: torch.Tensor
    confidence: torch.Tensor
    accuracy: torch.Tensor
    count: torch.Tensor
    ece: float


def _confidence_and_hits(
    probs: torch.Tensor, truth: torch.Tensor, confidence: str
) -> tuple[torch.Tensor, torch.Tensor]:
    """Binned confidence and its "hit": 0/1 against labels, the true probability against F*."""
    soft = truth.is_floating_point()
    if confidence == "top":
        if probs.dim() == 1:
            conf = torch.maximum(probs, 1.0 - probs)
            pred = probs > 0.5
            if soft:
                return conf, torch.where(pred, truth, 1.0 - truth)
        else:
            conf, pred = probs.max(dim=-1)  # first maximal index, as argmax and torchmetrics
            if soft:
                return conf, truth.gather(-1, pred[:, None])[:, 0]
        hits = (pred == truth).to(conf.dtype)
    elif confidence == "positive":
        if probs.dim() == 2 and probs.shape[1] != 2:
            raise ValueError(
                f"confidence: 'positive' needs a binary predictor, got {probs.shape[1]} classes; "
                "use confidence='top'"
            )
        conf = probs[:, 1] if probs.dim() == 2 else probs
        hits = (truth[:, 1] if truth.dim() == 2 else truth).to(conf.dtype)
    else:
        raise ValueError(f"confidence: must be 'top' or 'positive', got {confidence!r}")
    return conf, hits


def reliability(
    probs,
    labels=None,
    n_bins: int = 15,
    strategy: str = "uniform",
    *,
    confidence: str = "top",
    target=None,
    validate: bool = True,
) -> Reliability:
    """Binned calibration data (the basis of :func:`ece`).

    ``confidence="top"`` (default) bins the top-label confidence max_k p_k and scores whether the
    argmax is right: this is torchmetrics' ``multiclass_calibration_error`` (also for [N] binary
    input, which is expanded to [N, 2]). ``confidence="positive"`` (binary only) bins the
    positive-class probability against the label: torchmetrics' ``binary_calibration_error`` and
    scikit-learn's ``calibration_curve``.

    ``strategy="uniform"``: ``n_bins`` equal-width bins ``[k/n, (k+1)/n)`` plus, exactly as
    torchmetrics (``bucketize(right=True)`` on ``n_bins + 1`` slots), a last point bin ``[1, 1]``
    holding confidences equal to 1.0; so ``n_bins + 1`` rows are returned.
    ``strategy="quantile"``: ``n_bins`` equal-mass bins whose edges are quantiles of the confidence
    (last bin closed; ties can leave bins empty).

    ``target`` (instead of ``labels``): the true class probabilities F*(x), same shape as
    ``probs``, where they are known (planted tasks, theory checks); a bin's accuracy is then the
    mean true probability of the predicted class. One-hot targets give the labels' result.
    """
    if validate:
        if not isinstance(n_bins, int) or isinstance(n_bins, bool) or n_bins < 1:
            raise ValueError(f"n_bins: must be a positive integer, got {n_bins!r}")
        if strategy not in ("uniform", "quantile"):
            raise ValueError(f"strategy: must be 'uniform' or 'quantile', got {strategy!r}")
    probs, labels = _probs_truth(probs, labels, target, validate)
    if confidence not in ("top", "positive"):
        raise ValueError(f"confidence: must be 'top' or 'positive', got {confidence!r}")
    if strategy not in ("uniform", "quantile"):
        raise ValueError(f"strategy: must be 'uniform' or 'quantile', got {strategy!r}")
    dev = probs.device
    dtype = probs.dtype
    if strategy == "uniform":
        edges = torch.linspace(0, 1, n_bins + 1, dtype=dtype, device=dev)
        lo = edges
        hi = torch.cat([edges[1:], edges[-1:]])
        n_slots = n_bins + 1
        # floor(c · n_bins) is the bin up to rounding; compare with the float edges to land exactly
        # where torch.bucketize(c, edges, right=True) - 1 would (torchmetrics), but ~3x faster.
        ext = torch.cat([edges, torch.full((1,), math.inf, dtype=dtype, device=dev)])

        def index(c: torch.Tensor) -> torch.Tensor:
            i0 = (c * n_bins).long().clamp_(0, n_bins)
            return i0 - (c < ext[i0]).long() + (c >= ext[i0 + 1]).long()

    else:
        conf_all, _ = _confidence_and_hits(probs, labels, confidence)
        srt = conf_all.double().sort().values
        pos = torch.linspace(0, 1, n_bins + 1, dtype=torch.float64, device=dev) * (len(srt) - 1)
        i_lo = pos.floor().long()
        i_hi = pos.ceil().long()
        edges = (srt[i_lo] + (srt[i_hi] - srt[i_lo]) * (pos - i_lo)).to(dtype)  # linear, as numpy
        lo, hi = edges[:-1], edges[1:]
        n_slots = n_bins
        inner = edges[1:-1].contiguous()

        def index(c: torch.Tensor) -> torch.Tensor:
            return torch.bucketize(c, inner, right=True)

    acc = torch.float64
    count = torch.zeros(n_slots, dtype=acc, device=dev)
    conf_sum = torch.zeros(n_slots, dtype=acc, device=dev)
    hit_sum = torch.zeros(n_slots, dtype=acc, device=dev)
    n = probs.shape[0]
    k = 1 if probs.dim() == 1 else probs.shape[1]
    step = n if dev.type != "cpu" else max(1, 2 * CHUNK_ELEMENTS // k)  # cache-sized on CPU
    for i in range(0, n, step):
        c, h = _confidence_and_hits(probs[i : i + step], labels[i : i + step], confidence)
        idx = index(c)
        count += torch.bincount(idx, minlength=n_slots)
        conf_sum += torch.bincount(idx, weights=c.to(acc), minlength=n_slots)
        hit_sum += torch.bincount(idx, weights=h.to(acc), minlength=n_slots)
    safe = count.clamp_min(1)
    mean_conf = conf_sum / safe
    mean_acc = hit_sum / safe
    err = float(((mean_acc - mean_conf).abs() * count).sum() / count.sum())
    return Reliability(lo=lo, hi=hi, confidence=mean_conf, accuracy=mean_acc, count=count, ece=err)


def ece(
    probs,
    labels=None,
    n_bins: int = 15,
    strategy: str = "uniform",
    *,
    confidence: str = "top",
    target=None,
    validate: bool = True,
) -> float:
    """Binned expected calibration error Σ_bins (n_b / N) |acc_b − conf_b| (L1).

    Default: top-label confidence, 15 equal-width bins; numerically the same as torchmetrics'
    ``multiclass_calibration_error(probs, labels, K, n_bins, norm="l1")`` (and, with
    ``confidence="positive"`` on a binary predictor, ``binary_calibration_error``). See
    :func:`reliability` for the binning rules and for ``target`` (F* in place of labels). Not
    Lipschitz in the predictor: report :func:`smooth_ce` beside it.
    """
    return reliability(
        probs, labels, n_bins, strategy, confidence=confidence, target=target, validate=validate
    ).ece


def _smooth_ce_dp(p: np.ndarray, r: np.ndarray) -> float:
    """max Σ_i w_i r_i s.t. |w_i| ≤ 1, |w_i − w_{i+1}| ≤ p_{i+1} − p_i (p sorted). Exact.

    Solved through the LP dual (support function of box ∩ Lipschitz set):
    min over S of Σ_{j=1..n} |S_j − S_{j−1}| + Σ_{j<n} d_j |S_j − R_j|, with S_0 = 0, S_n = R_n,
    R_j = r_1 + … + r_j, d_j = p_{j+1} − p_j. A dynamic programme over the convex piecewise-linear
    cost-to-go g_j ("slope trick"): breakpoints left/right of the argmin live in heaps (plus
    far-end heaps with lazy deletion); adding d_j |s − R_j| moves the argmin across breakpoints of
    total weight ≤ d_j, and the transition min_s' g(s') + |s − s'| clamps the slopes to [−1, 1] by
    dropping weight at the far ends (each breakpoint is dropped at most once). The optimum is
    clamp(g_{n−1})(R_n) = min g + Σ weights · distances past R_n. Strong duality makes it the
    primal value. Measured near-linear (≈1 s at n = 10^5 on calibrated, adversarially
    alternating and tied inputs alike).
    """
    n = len(p)
    if n == 0:
        return 0.0
    cum = np.cumsum(r)
    gaps = np.diff(p)
    pos: list[float] = [0.0, 0.0]
    wt: list[float] = [1.0, 1.0]
    side: list[int] = [1, 2]  # 1: left of the argmin, 2: right of it, 0: dropped
    left = [(-0.0, 0)]  # max-heap on position
    left_far = [(0.0, 0)]  # min-heap on position
    right = [(0.0, 1)]  # min-heap on position
    right_far = [(-0.0, 1)]  # max-heap on position
    w_left = w_right = 1.0  # g_1 before its data term: |s|
    minval = 0.0
    push, pop = heapq.heappush, heapq.heappop

    def add(x: float, w: float, where: int) -> None:
        pos.append(x)
        wt.append(w)
        side.append(where)
        i = len(pos) - 1
        if where == 1:
            push(left, (-x, i))
            push(left_far, (x, i))
        else:
            push(right, (x, i))
            push(right_far, (-x, i))

    def top(h: list[tuple[float, int]], where: int) -> int:
        while side[h[0][1]] != where:
            pop(h)
        return h[0][1]

    for j in range(n - 1):
        d = float(gaps[j])
        if d <= 0.0:  # tied predictions: no data term, and slopes are already clamped
            continue
        x0 = float(cum[j])
        lo, hi = pos[top(left, 1)], pos[top(right, 2)]
        if x0 < lo:  # argmin moves left
            minval += d * (lo - x0)
            add(x0, 2.0 * d, 1)
            w_left += 2.0 * d
            t = d
            while True:
                i = top(left, 1)
                x, w = pos[i], wt[i]
                if w >= t:
                    wt[i] = w - t
                    w_left -= t
                    add(x, t, 2)
                    w_right += t
                    break
                side[i] = 0
                w_left -= w
                add(x, w, 2)
                w_right += w
                t -= w
                minval -= t * (x - pos[top(left, 1)])
        elif x0 > hi:  # argmin moves right
            minval += d * (x0 - hi)
            add(x0, 2.0 * d, 2)
            w_right += 2.0 * d
            t = d
            while True:
                i = top(right, 2)
                x, w = pos[i], wt[i]
                if w >= t:
                    wt[i] = w - t
                    w_right -= t
                    add(x, t, 1)
                    w_left += t
                    break
                side[i] = 0
                w_right -= w
                add(x, w, 1)
                w_left += w
                t -= w
                minval -= t * (pos[top(right, 2)] - x)
        else:
            add(x0, d, 1)
            add(x0, d, 2)
            w_left += d
            w_right += d
        for far, where, total in ((left_far, 1, w_left), (right_far, 2, w_right)):
            excess = total - 1.0
            while excess > 0.0:
                i = top(far, where)
                if wt[i] <= excess:
                    excess -= wt[i]
                    side[i] = 0
                else:
                    wt[i] -= excess
                    excess = 0.0
            if where == 1:
                w_left = min(total, 1.0)
            else:
                w_right = min(total, 1.0)
    end = float(cum[-1])
    pos_a, wt_a, side_a = np.asarray(pos), np.asarray(wt), np.asarray(side)
    val = minval
    val += float((wt_a * np.clip(pos_a - end, 0.0, None))[side_a == 1].sum())
    val += float((wt_a * np.clip(end - pos_a, 0.0, None))[side_a == 2].sum())
    return val


def _smooth_ce_highs(p: np.ndarray, r: np.ndarray) -> float:
    """The same LP solved by scipy's HiGHS on the sparse formulation (for cross-checking)."""
    from scipy import sparse
    from scipy.optimize import linprog

    n = len(p)
    if n == 1:
        return abs(float(r[0]))
    d = np.diff(p)
    rows = np.repeat(np.arange(n - 1), 2)
    cols = np.stack([np.arange(n - 1), np.arange(1, n)], axis=1).ravel()
    vals = np.tile([1.0, -1.0], n - 1)
    diff = sparse.csr_matrix((vals, (rows, cols)), shape=(n - 1, n))
    a_ub = sparse.vstack([diff, -diff], format="csr")
    b_ub = np.concatenate([d, d])
    res = linprog(-r, A_ub=a_ub, b_ub=b_ub, bounds=(-1.0, 1.0), method="highs")
    if res.status != 0:
        raise RuntimeError(f"smooth_ce: HiGHS failed ({res.message})")
    return float(-res.fun)


def smooth_ce(p, labels=None, *, target=None, method: str = "dp", validate: bool = True) -> float:
    """Exact empirical smooth calibration error of a binary predictor (THEORY.md §4).

    smCE = max (1/n) Σ_i w_i (y_i − p_i) over w: [0, 1] → [−1, 1] 1-Lipschitz, i.e. the LP over
    w_i = w(p_(i)) (sorted) with |w_i| ≤ 1 and |w_i − w_{i+1}| ≤ p_(i+1) − p_(i). Tied predictions
    share one w (their gap is 0).

    ``method="dp"`` (default): an exact dynamic programme on the LP dual (see ``_smooth_ce_dp``),
    pure Python + heapq, O(n log n) in every case we measured (calibrated, miscalibrated,
    adversarially alternating residuals, heavy ties). ``method="highs"``: scipy HiGHS on the sparse
    primal LP. The two agree to ~1e-9 and match an independent dense LP in the tests. The input
    may live on any device; the computation runs on the CPU (it is sequential).

    Cost (measured on the shared 2-core dev box, one thread, load ≈ 9 from other jobs):
    n = 10^4: dp ≈ 0.06–0.25 s, highs ≈ 0.35 s; n = 10^5: dp ≈ 0.6–1.0 s, highs 4–12 s (120 s on
    a near-degenerate input); n = 10^6: dp ≈ 7–10 s. Sorting adds O(n log n).
    See ``benchmarks/bench_metrics.py``.

    ``p``: ``[N]`` positive-class probabilities or ``[N, 2]``; ``labels`` in {0, 1}, or instead
    ``target``: the true positive-class probabilities F*(x) (``[N]`` or ``[N, 2]`` like ``p``),
    which replace the labels in the residuals y − p.
    """
    p = as_tensor(p, "p")
    if validate and (p.dim() > 2 or (p.dim() == 2 and p.shape[1] != 2)):
        raise ValueError(
            f"p: smooth_ce is for binary predictors, got shape {tuple(p.shape)}; pass [N] or [N, 2]"
        )
    p, truth = _probs_truth(p, labels, target, validate, name="p")
    s = (p[:, 1] if p.dim() == 2 else p).detach().double().cpu().numpy()
    y = (truth[:, 1] if truth.dim() == 2 else truth).detach().double().cpu().numpy()
    order = np.argsort(s, kind="stable")
    s, y = s[order], y[order]
    r = y - s
    if method == "dp":
        val = _smooth_ce_dp(s, r)
    elif method == "highs":
        val = _smooth_ce_highs(s, r)
    else:
        raise ValueError(f"method: must be 'dp' or 'highs', got {method!r}")
    return val / len(s)


# --------------------------------------------------------------------------- W2S summaries
def pgr(weak, student, ceiling, *, min_gap: float = 1e-3):
    """Performance gap recovered (student − weak) / (ceiling − weak) (Burns et al. 2023).

    Undefined when the ceiling does not beat the weak model by more than ``min_gap``: the result is
    ``nan`` there (no division is performed). Scalars give a ``float``; arrays/tensors are handled
    elementwise (broadcasting) and give a numpy array.
    """
    w, s, c = (
        np.asarray(as_tensor(v, n).cpu(), dtype=np.float64)
        for v, n in ((weak, "weak"), (student, "student"), (ceiling, "ceiling"))
    )
    if not (np.isfinite(min_gap) and min_gap >= 0):
        raise ValueError(f"min_gap: must be a finite number >= 0, got {min_gap!r}")
    gap = c - w
    ok = gap > min_gap
    out = np.where(ok, (s - w) / np.where(ok, gap, 1.0), np.nan)
    if out.ndim == 0:
        return float(out)
    return out


@dataclass(frozen=True)
class Interval:
    """A point estimate with a two-sided interval at confidence ``level``."""

    point: float
    lo: float
    hi: float
    level: float = 0.95

    def __str__(self) -> str:
        return f"{self.point:.4g} [{self.lo:.4g}, {self.hi:.4g}]"


def bootstrap_ci(
    fn: Callable[..., Any],
    *arrays,
    n_resamples: int = 1000,
    level: float = 0.95,
    seed: int = 0,
    chunk: int | None = None,
) -> Interval:
    """Percentile bootstrap interval of a statistic, vectorised over resamples.

    Contract for ``fn``: it receives the arrays with a *leading batch axis* — ``fn(*batched)`` where
    each ``batched[j]`` has shape ``[B, N, ...]`` (row-resampled copies of ``arrays[j]``, all
    resampled with the same indices) — and returns ``B`` values (tensor/array ``[B]``). The point
    estimate is ``fn`` on the data itself (B = 1). Resample indices are one ``[B, N]`` tensor drawn
    from a seeded ``torch.Generator`` (``chunk`` rows at a time to bound memory; by default chunks
    of ~2^24 index entries). Example: ``bootstrap_ci(lambda p, y: (p.argmax(-1) == y).float()
    .mean(-1), probs, labels)``.
    """
    if not arrays:
        raise ValueError("arrays: pass at least one array to resample")
    if not (0.0 < level < 1.0):
        raise ValueError(f"level: must be in (0, 1), got {level!r}")
    if not isinstance(n_resamples, int) or n_resamples < 1:
        raise ValueError(f"n_resamples: must be a positive integer, got {n_resamples!r}")
    ts = [as_tensor(a, f"arrays[{j}]", floating=False) for j, a in enumerate(arrays)]
    n = ts[0].shape[0] if ts[0].dim() else 0
    for j, t in enumerate(ts):
        if t.dim() == 0 or t.shape[0] != n or n == 0:
            raise ValueError(
                f"arrays[{j}]: need non-empty arrays with the same first (row) axis, got shapes "
                f"{[tuple(x.shape) for x in ts]}"
            )

    def call(batched: list[torch.Tensor]) -> np.ndarray:
        out = fn(*batched)
        out = out.detach().cpu() if isinstance(out, torch.Tensor) else out
        return np.asarray(out, dtype=np.float64).reshape(-1)

    point = call([t.unsqueeze(0) for t in ts])
    if point.size != 1:
        raise ValueError(f"fn: must return one value per batch row, got {point.size} for B = 1")
    gen = torch.Generator().manual_seed(seed)
    chunk = chunk or max(1, min(n_resamples, (1 << 24) // max(n, 1)))
    stats = []
    for start in range(0, n_resamples, chunk):
        b = min(chunk, n_resamples - start)
        idx = torch.randint(0, n, (b, n), generator=gen)
        vals = call([t[idx.to(t.device)] for t in ts])
        if vals.size != b:
            raise ValueError(f"fn: must return one value per batch row, got {vals.size} for {b}")
        stats.append(vals)
    all_stats = np.concatenate(stats)
    alpha = (1.0 - level) / 2.0
    lo, hi = np.nanquantile(all_stats, [alpha, 1.0 - alpha])
    return Interval(point=float(point[0]), lo=float(lo), hi=float(hi), level=level)


def seed_interval(values, level: float = 0.95) -> Interval:
    """Mean across seeds with a Student-t interval: mean ± t_{(1+level)/2, n−1} · s / sqrt(n).

    With a single value the interval is undefined: ``lo = hi = nan``. NaN values are rejected.
    """
    from scipy import stats

    v = np.asarray(as_tensor(values, "values").detach().cpu(), dtype=np.float64).reshape(-1)
    if v.size == 0:
        raise ValueError("values: is empty; pass one metric value per seed")
    if not np.all(np.isfinite(v)):
        raise ValueError("values: contains NaN or inf; drop failed seeds explicitly first")
    if not (0.0 < level < 1.0):
        raise ValueError(f"level: must be in (0, 1), got {level!r}")
    mean = float(v.mean())
    if v.size == 1:
        return Interval(point=mean, lo=math.nan, hi=math.nan, level=level)
    half = float(stats.t.ppf(0.5 + level / 2.0, df=v.size - 1) * v.std(ddof=1) / math.sqrt(v.size))
    return Interval(point=mean, lo=mean - half, hi=mean + half, level=level)


MISFIT_KINDS = ("kl_weak_student", "kl_student_weak", "squared")


def misfit(student, weak, kind: str = "kl_weak_student", *, validate: bool = True) -> float:
    """Average disagreement between student and weak predictions (mean over rows).

    - ``"kl_weak_student"``: E_x KL(weak ‖ student), the objective ε of forward-KL / soft-CE
      training;
    - ``"kl_student_weak"``: E_x KL(student ‖ weak) (reverse misfit, Theorem 3);
    - ``"squared"``: E_x ‖student − weak‖² summed over all classes; binary ``[N]`` input is read as
      ``[N, 2]`` like everywhere else, giving 2 (p_s − p_w)² per row (for a scalar regression
      output compute ((s − w) ** 2).mean() directly).
    """
    if kind not in MISFIT_KINDS:
        raise ValueError(
            f"kind: unknown misfit kind {kind!r}; valid kinds: {', '.join(MISFIT_KINDS)}"
        )
    if validate:
        student = check_probs(student, "student")
        weak = check_probs(weak, "weak")
        check_same_shape((student, "student"), (weak, "weak"))
    if kind == "kl_weak_student":
        vals = kl(weak, student, validate=False)
    elif kind == "kl_student_weak":
        vals = kl(student, weak, validate=False)
    else:
        diff = as_tensor(student, "student") - as_tensor(weak, "weak")
        vals = 2.0 * diff.square() if diff.dim() == 1 else diff.square().sum(dim=-1)
    return float(vals.mean())
