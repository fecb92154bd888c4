"""Classification metrics against hard labels: accuracy, AUROC, log loss, one-hot encoding."""

from __future__ import annotations

import torch

from w2s_utils._validate import (
    as_tensor,
    check_int,
    check_labels,
    check_leading,
    check_probs,
    check_same_shape,
)


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


def one_hot(labels, n_classes: int, *, like=None) -> torch.Tensor:
    """Labels ``[N]`` as one-hot rows ``[N, n_classes]`` (float64, or ``like``'s dtype/device).

    The one-hot rows are the ground truth of the *empirical* distribution of a labelled set: every
    result of the theory layer applied to them holds exactly on that sample.
    """
    n_classes = check_int(n_classes, "n_classes", minimum=2)
    y = check_labels(labels, n_classes, "labels")
    dtype = like.dtype if isinstance(like, torch.Tensor) else torch.float64
    device = like.device if isinstance(like, torch.Tensor) else y.device
    return torch.nn.functional.one_hot(y.to(device), n_classes).to(dtype)


def log_loss_per_example(probs, labels, *, validate: bool = True) -> torch.Tensor:
    """``-log probs[i, labels[i]]`` per row (nats; binary ``[N]`` is read as ``[N, 2]``).

    A zero probability on the true class gives ``inf`` (no silent clipping: clip first with
    :func:`w2s_utils.theory.clip_to_floor` if that is what you mean).
    """
    probs, labels = _probs_labels(probs, labels, validate)
    if probs.dim() == 1:
        p_true = torch.where(labels == 1, probs, 1.0 - probs)
    else:
        p_true = probs.gather(-1, labels.unsqueeze(-1)).squeeze(-1)
    return -torch.log(p_true)


def log_loss(probs, labels, *, validate: bool = True) -> float:
    """Mean test cross-entropy against hard labels, ``E[-log p(y|x)]`` (nats).

    Equals ``Err(F) + H(Y|X)``, so differences of ``log_loss`` between two predictors on one test
    set estimate differences of ``Err`` without bias (the book's ``err_change``).
    """
    return float(log_loss_per_example(probs, labels, validate=validate).mean())
