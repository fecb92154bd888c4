"""Divergences between probability vectors: KL, cross-entropy, entropy, TV (and from logits).

Conventions: last axis = classes, any leading axes are batch axes; a 1-D tensor ``[N]`` is a binary
predictor given as positive-class probabilities. Natural logs (nats), 0 log 0 = 0. Used by every
chapter; the misfit eps of chapter 1 is :func:`w2s_utils.metrics.misfit`.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from w2s_utils._validate import (
    as_tensor,
    check_logits,
    check_probs,
    check_same_shape,
)


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
