"""Training objectives on logits: soft-label CE, forward/reverse KL, squared, confidence loss.

All losses take ``(logits, target_probs)`` with logits ``[B, K]`` and target probabilities
``[B, K]`` (a binary problem may also be given as ``[B]`` positive-class logits and ``[B]``
positive-class target probabilities), are differentiable in the logits, work in log space
(``log_softmax``), keep the input's device and dtype, and reduce with ``reduction`` in
``"mean" | "sum" | "none"`` (``"none"`` = one value per row).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F

from w2s_utils._validate import as_tensor, check_logits, check_probs

__all__ = [
    "LOSS_NAMES",
    "AuxConfidenceLoss",
    "confidence_warmup",
    "forward_kl",
    "make_loss",
    "reverse_kl",
    "soft_ce",
    "squared_prob",
]

LOSS_NAMES = ("xent", "forward_kl", "reverse_kl", "squared", "aux_conf")
_REDUCTIONS = ("mean", "sum", "none")


def _prepare(logits, target_probs, validate: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """Return (log-probabilities [B, K], target probabilities [B, K])."""
    if validate:
        z = check_logits(logits, "logits")
        t = check_probs(target_probs, "target_probs")
        if z.dim() not in (1, 2):
            raise ValueError(
                f"logits: expected [B, K] (or [B] binary logits), got shape {tuple(z.shape)}"
            )
        if tuple(t.shape) != tuple(z.shape):
            raise ValueError(
                f"target_probs: shape {tuple(t.shape)} does not match logits' shape "
                f"{tuple(z.shape)}; pass one target distribution per row of logits"
            )
    else:
        z, t = as_tensor(logits, "logits"), as_tensor(target_probs, "target_probs")
    t = t.to(device=z.device, dtype=z.dtype)
    if z.dim() == 1:
        logp = torch.stack([F.logsigmoid(-z), F.logsigmoid(z)], dim=-1)
        t = torch.stack([1.0 - t, t], dim=-1)
    else:
        logp = torch.log_softmax(z, dim=-1)
    return logp, t


def _reduce(per_row: torch.Tensor, reduction: str) -> torch.Tensor:
    if reduction == "mean":
        return per_row.mean()
    if reduction == "sum":
        return per_row.sum()
    if reduction == "none":
        return per_row
    raise ValueError(f"reduction: must be one of {', '.join(_REDUCTIONS)}, got {reduction!r}")


def _check_reduction(reduction: str) -> None:
    if reduction not in _REDUCTIONS:
        raise ValueError(f"reduction: must be one of {', '.join(_REDUCTIONS)}, got {reduction!r}")


def soft_ce(
    logits, target_probs, reduction: str = "mean", *, validate: bool = True
) -> torch.Tensor:
    """Soft-label cross-entropy −Σ_k t_k log softmax(z)_k (= H(t) + KL(t ‖ model))."""
    _check_reduction(reduction)
    logp, t = _prepare(logits, target_probs, validate)
    return _reduce(-(t * logp).sum(dim=-1), reduction)


def forward_kl(
    logits, target_probs, reduction: str = "mean", *, validate: bool = True
) -> torch.Tensor:
    """KL(target ‖ model) = soft_ce − H(target): same gradient as soft_ce, zero at a perfect fit."""
    _check_reduction(reduction)
    logp, t = _prepare(logits, target_probs, validate)
    return _reduce((torch.xlogy(t, t) - t * logp).sum(dim=-1), reduction)


def reverse_kl(
    logits, target_probs, reduction: str = "mean", *, validate: bool = True
) -> torch.Tensor:
    """KL(model ‖ target) = Σ_k q_k (log q_k − log t_k), q = softmax(z) (``inf`` where t_k = 0)."""
    _check_reduction(reduction)
    logp, t = _prepare(logits, target_probs, validate)
    q = logp.exp()
    return _reduce((q * (logp - torch.log(t))).sum(dim=-1), reduction)


def squared_prob(
    logits, target_probs, reduction: str = "mean", *, validate: bool = True
) -> torch.Tensor:
    """Squared loss on probabilities Σ_k (softmax(z)_k − t_k)² (binary [B] input: both classes)."""
    _check_reduction(reduction)
    logp, t = _prepare(logits, target_probs, validate)
    return _reduce((logp.exp() - t).square().sum(dim=-1), reduction)


def confidence_warmup(
    step: int, total_steps: int, alpha_max: float = 0.75, warmup_frac: float = 0.2
) -> float:
    """α_t of the auxiliary confidence loss: linear from 0 at step 0 to ``alpha_max`` at step
    ``warmup_frac · total_steps``, constant afterwards (steps past ``total_steps`` included).

    Unlike the reference implementation's warm-up, it ramps smoothly: consecutive steps differ by
    ``alpha_max / (warmup_frac · total_steps)``. ``warmup_frac = 0`` means α_t = alpha_max.
    """
    if not isinstance(total_steps, int) or isinstance(total_steps, bool) or total_steps < 1:
        raise ValueError(f"total_steps: must be a positive integer, got {total_steps!r}")
    if not (0.0 <= warmup_frac <= 1.0):
        raise ValueError(f"warmup_frac: must be in [0, 1], got {warmup_frac!r}")
    if not (0.0 <= alpha_max <= 1.0):
        raise ValueError(f"alpha_max: must be in [0, 1], got {alpha_max!r}")
    if step < 0:
        raise ValueError(f"step: must be >= 0, got {step!r}")
    warm = warmup_frac * total_steps
    if warm <= 0.0:
        return float(alpha_max)
    return float(alpha_max) * min(1.0, step / warm)


class AuxConfidenceLoss:
    """Auxiliary confidence loss of Burns et al. (2023).

    L = (1 − α_t) · CE(f, f_w) + α_t · CE(f, hard(f)), with f the model's prediction, f_w the weak
    soft labels and α_t = :func:`confidence_warmup` (step, total_steps, alpha_max, warmup_frac).
    Binary: hard(f) = 1[f_1 > τ] where τ is the batch quantile of the model's positive-class
    probability at 1 − (mean weak positive probability), so the hardened labels have the weak
    labels' class balance in the batch (as the reference code, which uses the mean soft label).
    K > 2:
    hard(f) = one-hot argmax f. hard(f) is a constant (no gradient flows through the threshold).
    At step 0, α = 0 and L equals :func:`soft_ce`.
    """

    def __init__(
        self,
        alpha_max: float = 0.75,
        warmup_frac: float = 0.2,
        total_steps: int = 1,
        reduction: str = "mean",
        validate: bool = True,
    ) -> None:
        _check_reduction(reduction)
        confidence_warmup(0, total_steps, alpha_max, warmup_frac)  # validates the schedule
        self.alpha_max = float(alpha_max)
        self.warmup_frac = float(warmup_frac)
        self.total_steps = int(total_steps)
        self.reduction = reduction
        self.validate = validate

    def alpha(self, step: int) -> float:
        """α_t at ``step``."""
        return confidence_warmup(step, self.total_steps, self.alpha_max, self.warmup_frac)

    def __call__(self, logits, target_probs, step: int) -> torch.Tensor:
        logp, t = _prepare(logits, target_probs, self.validate)
        alpha = self.alpha(step)
        soft = -(t * logp).sum(dim=-1)
        with torch.no_grad():
            q = logp.exp()
            if q.shape[-1] == 2:
                pos = q[:, 1]
                balance = t[:, 1].mean().clamp(0.0, 1.0)
                tau = torch.quantile(pos, 1.0 - balance)
                hard = (pos > tau).long()
            else:
                hard = q.argmax(dim=-1)
        hard_ce = -logp.gather(-1, hard[:, None]).squeeze(-1)
        per_row = (1.0 - alpha) * soft + alpha * hard_ce
        return _reduce(per_row, self.reduction)


def make_loss(
    name: str, *, total_steps: int, validate: bool = True, **kwargs
) -> Callable[[torch.Tensor, torch.Tensor, int], torch.Tensor]:
    """The training loss ``name`` (one of :data:`LOSS_NAMES`) as ``fn(logits, target_probs, step)``.

    Returns a scalar (``reduction="mean"``). ``"xent"`` = :func:`soft_ce`, ``"forward_kl"``,
    ``"reverse_kl"``, ``"squared"`` = :func:`squared_prob` ignore ``step``; ``"aux_conf"`` =
    :class:`AuxConfidenceLoss` (``kwargs``: alpha_max, warmup_frac).
    """
    if name not in LOSS_NAMES:
        raise ValueError(f"name: unknown loss {name!r}; valid names: {', '.join(LOSS_NAMES)}")
    if not isinstance(total_steps, int) or isinstance(total_steps, bool) or total_steps < 1:
        raise ValueError(f"total_steps: must be a positive integer, got {total_steps!r}")
    if name == "aux_conf":
        return AuxConfidenceLoss(total_steps=total_steps, validate=validate, **kwargs)
    if kwargs:
        raise ValueError(f"kwargs: loss {name!r} takes no options, got {sorted(kwargs)}")
    fn = {
        "xent": soft_ce,
        "forward_kl": forward_kl,
        "reverse_kl": reverse_kl,
        "squared": squared_prob,
    }[name]

    def loss(logits, target_probs, step: int = 0) -> torch.Tensor:
        return fn(logits, target_probs, "mean", validate=validate)

    loss.__name__ = name
    return loss
