"""Token ids, dynamic padding and pooling, shared by the transformer classifiers."""

from __future__ import annotations

from collections.abc import Sequence

import torch

__all__ = ["Tokenized", "last_token_pool", "mean_pool", "pad_ids", "tokenize"]


class Tokenized:
    """Token ids of one text (``len()`` = number of tokens)."""

    __slots__ = ("ids",)

    def __init__(self, ids: list[int]) -> None:
        self.ids = ids

    def __len__(self) -> int:
        return len(self.ids)


def tokenize(tokenizer, texts: Sequence[str], max_length: int) -> list[Tokenized]:
    """Each text's token ids, truncated to ``max_length`` tokens, unpadded."""
    enc = tokenizer(list(texts), truncation=True, max_length=max_length, padding=False)
    return [Tokenized(list(ids)) for ids in enc["input_ids"]]


def pad_ids(items: list[Tokenized], pad_id: int, device) -> dict[str, torch.Tensor]:
    """Right-pad token ids to the longest item of the batch (dynamic padding)."""
    t = max(len(it) for it in items)
    ids = torch.full((len(items), t), pad_id, dtype=torch.long)
    mask = torch.zeros((len(items), t), dtype=torch.long)
    for i, it in enumerate(items):
        ids[i, : len(it)] = torch.as_tensor(it.ids, dtype=torch.long)
        mask[i, : len(it)] = 1
    return {"input_ids": ids.to(device), "attention_mask": mask.to(device)}


def mean_pool(hidden: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean of the token states over real tokens (sentence-transformers' pooling)."""
    m = mask.unsqueeze(-1).to(hidden.dtype)
    return (hidden * m).sum(1) / m.sum(1).clamp_min(1e-9)


def last_token_pool(hidden: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """State of the last real (non-pad) token of each row, found from the attention mask."""
    pos = torch.arange(mask.shape[1], device=mask.device).unsqueeze(0)
    last = (pos * (mask > 0)).argmax(dim=1)
    return hidden[torch.arange(hidden.shape[0], device=hidden.device), last]
