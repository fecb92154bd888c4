"""A synthetic text dataset for engine runs without downloads: short sentences whose label is the
sentiment of their adjective, with 10% label noise (used by the ``text_sandbox`` fixture of
``tests/conftest.py`` and by tests that start a subprocess with the same data)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from w2s_utils.engine import data, models

POS = ["great", "lovely", "superb", "fine", "brilliant", "warm", "funny", "smart"]
NEG = ["awful", "boring", "dull", "poor", "terrible", "cold", "weak", "silly"]
NOUNS = ["film", "plot", "cast", "script", "score", "ending", "story", "pace"]


def synthetic_dataset(n: int = 400, seed: int = 0) -> data.TextDataset:
    """``n`` sentences "the <noun> was <adjective> number <i>", labels alternating 0/1 before a
    10% label flip, named "sarcasm" (so that presets and configs accept it); deterministic."""
    rng = np.random.default_rng(seed)
    texts, labels = [], []
    for i in range(n):
        y = i % 2
        adj = rng.choice(POS if y else NEG)
        noun = rng.choice(NOUNS)
        texts.append(f"the {noun} was {adj} number {i}")
        labels.append(y if rng.random() > 0.1 else 1 - y)
    ids = tuple(data.text_id(t) for t in texts)
    return data.TextDataset(name="sarcasm", texts=tuple(texts), labels=np.array(labels), ids=ids)


def planted_mixture_features(seed: int, n: int = 240):
    """Gaussian strong features ``xs`` [n, 6] (float64), weak features ``xw`` [n, 2] = the first
    two strong ones plus noise (sd 0.5), and gold labels from the first feature plus noise (sd
    0.3); deterministic in ``seed``."""
    gen = torch.Generator().manual_seed(seed)
    xs = torch.randn((n, 6), generator=gen, dtype=torch.float64)
    xw = xs[:, :2] + 0.5 * torch.randn((n, 2), generator=gen, dtype=torch.float64)
    gold = (xs[:, 0] + 0.3 * torch.randn(n, generator=gen, dtype=torch.float64) > 0).long()
    return xs, xw, gold


def tiny_bert(folder: Path, *, seed: int = 0, layers: int = 1) -> Path:
    """A width-16 BERT with random weights (``layers`` layers, ``torch.manual_seed(seed)``) and the
    packaged MiniLM's tokenizer, written with save_pretrained (nothing downloaded)."""
    from transformers import AutoTokenizer, BertConfig, BertModel

    torch.manual_seed(seed)
    cfg = BertConfig(
        vocab_size=30522,
        hidden_size=16,
        num_hidden_layers=layers,
        num_attention_heads=2,
        intermediate_size=32,
        max_position_embeddings=64,
    )
    BertModel(cfg).save_pretrained(folder)
    AutoTokenizer.from_pretrained(models.minilm_path()).save_pretrained(folder)
    return folder
