"""A small transformer trained from scratch: :class:`TinyTransformerClassifier`."""

from __future__ import annotations

import torch
from torch import nn

from w2s_utils.engine.device import default_device
from w2s_utils.engine.models.base import TorchClassifier
from w2s_utils.engine.models.hub import load_tokenizer
from w2s_utils.engine.models.registry import minilm_path
from w2s_utils.engine.models.text import mean_pool, pad_ids, tokenize

__all__ = ["TinyEncoder", "TinyTransformerClassifier"]


class TinyEncoder(nn.Module):
    """Token + position embeddings, ``n_layers`` pre-norm encoder layers, a final norm and a
    linear head over ``k`` classes (mean-pooled over real tokens)."""

    def __init__(
        self, vocab: int, d: int, n_layers: int, n_heads: int, max_len: int, k: int, pad_id: int
    ) -> None:
        super().__init__()
        self.tok = nn.Embedding(vocab, d, padding_idx=pad_id)
        self.pos = nn.Embedding(max_len, d)
        layer = nn.TransformerEncoderLayer(
            d, n_heads, dim_feedforward=2 * d, dropout=0.1, batch_first=True, norm_first=True
        )
        self.encoder = nn.TransformerEncoder(layer, n_layers, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(d)
        self.head = nn.Linear(d, k)

    def pooled(self, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        pos = torch.arange(ids.shape[1], device=ids.device).unsqueeze(0)
        h = self.tok(ids) + self.pos(pos)
        h = self.encoder(h, src_key_padding_mask=mask == 0)
        return mean_pool(self.norm(h), mask)


class TinyTransformerClassifier(TorchClassifier):
    """A small transformer encoder trained from scratch on MiniLM's WordPiece tokenizer."""

    def __init__(
        self,
        n_classes: int = 2,
        device=None,
        d: int = 128,
        n_layers: int = 2,
        n_heads: int = 4,
        max_positions: int = 512,
    ) -> None:
        self.name = "tiny-transformer"
        self.n_classes = n_classes
        self.device = torch.device(device) if device is not None else default_device()
        self.tokenizer = load_tokenizer(minilm_path())
        self.pad_id = self.tokenizer.pad_token_id
        self._dims = (len(self.tokenizer), d, n_layers, n_heads, max_positions, n_classes)
        self.net = TinyEncoder(*self._dims, pad_id=self.pad_id).to(self.device)

    def reset_parameters(self, seed: int) -> None:
        torch.manual_seed(seed)
        self.net = TinyEncoder(*self._dims, pad_id=self.pad_id).to(self.device)

    def trainable_module(self) -> nn.Module:
        return self.net

    def train_mode(self, on: bool) -> None:
        self.net.train(on)

    def prepare(self, texts):
        return tokenize(self.tokenizer, list(texts), min(self.max_length, self._dims[4]))

    def collate(self, items):
        return pad_ids(items, self.pad_id, self.device)

    def pooled_batch(self, batch):
        return self.net.pooled(batch["input_ids"], batch["attention_mask"])

    def forward_batch(self, batch):
        return self.net.head(self.pooled_batch(batch))
