"""Hugging Face transformers as classifiers: :class:`HFClassifier` (a backbone, optionally
truncated, + pooling + a linear head over ``n_classes`` classes) in three training modes.

- ``full``: fine-tune everything;
- ``probe``: frozen final-layer pooled features (computed once, cached per text) + a linear head;
- ``cached-trunk``: freeze all but the top ``trainable_layers`` layers, compute the frozen layers'
  token states once per (model, text, max_length) and cache them (float16 on disk), then train
  the top layers + head on the cached states. Supported for BERT-style encoders (MiniLM) and
  GPT-2.

Decoder models are pooled at the last non-pad token found from the attention mask (right
padding; ``pad_token = eos`` when missing), encoders by the mean over real tokens.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from w2s_utils.engine.device import default_device
from w2s_utils.engine.features import TextFeatureStore
from w2s_utils.engine.models.base import TorchClassifier
from w2s_utils.engine.models.hub import hub_error, load_backbone, load_tokenizer
from w2s_utils.engine.models.registry import DECODER_TYPES, check_mode, model_identity
from w2s_utils.engine.models.text import last_token_pool, mean_pool, pad_ids, tokenize

__all__ = ["HFClassifier", "layer_list"]


class HFClassifier(TorchClassifier):
    """A Hugging Face transformer (optionally truncated to ``n_layers``) + pooling + linear head."""

    def __init__(
        self,
        source: str,
        *,
        name: str | None = None,
        n_classes: int = 2,
        device: torch.device | str | None = None,
        mode: str = "full",
        trainable_layers: int = 1,
        n_layers: int | None = None,
        pooling: str | None = None,
        use_disk_cache: bool = True,
    ) -> None:
        check_mode(mode)
        self.source = source
        self.name = name or source
        self.n_classes = n_classes
        self.device = torch.device(device) if device is not None else default_device()
        self.mode = mode
        self.use_disk_cache = use_disk_cache
        try:
            self.tokenizer = load_tokenizer(source)
            backbone = load_backbone(source)
        except (OSError, ValueError) as e:
            if not Path(source).is_dir():
                raise hub_error(source, f"loading it failed ({type(e).__name__}: {e})") from e
            if isinstance(e, ValueError):
                raise  # a local folder's own problem, already named with the folder
            raise ValueError(
                f"model folder {source}: cannot be loaded ({type(e).__name__}: {e}); save a "
                "model and its tokenizer into it with save_pretrained(folder)"
            ) from e
        cfg = backbone.config
        self.model_type = getattr(cfg, "model_type", "")
        self.layers = layer_list(backbone)
        if n_layers is not None:
            if self.layers is None or not 1 <= n_layers <= len(self.layers):
                raise ValueError(f"n_layers={n_layers} is invalid for {source!r}")
            del self.layers[n_layers:]
            cfg.num_hidden_layers = n_layers
        self.n_layers = len(self.layers) if self.layers is not None else cfg.num_hidden_layers
        self.pooling = pooling or ("last" if self.model_type in DECODER_TYPES else "mean")
        if self.pooling not in ("mean", "last"):
            raise ValueError(f"pooling={self.pooling!r}; use 'mean' or 'last'")
        if mode == "cached-trunk":
            if self.model_type not in ("bert", "gpt2") or self.layers is None:
                raise ValueError(
                    f"mode='cached-trunk' supports BERT-style encoders (MiniLM) and GPT-2, not "
                    f"model_type={self.model_type!r}; use mode='full' or 'probe'"
                )
            if not 1 <= trainable_layers <= self.n_layers:
                raise ValueError(
                    f"trainable_layers={trainable_layers} must lie in 1..{self.n_layers}"
                )
        self.trainable_layers = trainable_layers
        self.frozen = self.n_layers - trainable_layers if mode == "cached-trunk" else 0
        if self.device.type == "cpu" and self.model_type == "bert":
            # eager attention: its probability dropout is a FastDropout module, and for short
            # sequences it ran 2-4% faster than SDPA's math path on the 2-core box
            backbone.set_attn_implementation("eager")
        self.backbone = backbone.to(self.device)
        hidden = cfg.hidden_size if hasattr(cfg, "hidden_size") else cfg.n_embd
        self.head = nn.Linear(hidden, n_classes).to(self.device)
        self.pad_id = self.tokenizer.pad_token_id
        if mode != "full":
            self.backbone.requires_grad_(False)
        if mode == "cached-trunk":
            for layer in self.layers[self.frozen :]:
                layer.requires_grad_(True)
            if self.model_type == "gpt2":
                self.backbone.ln_f.requires_grad_(True)
        self._top = nn.ModuleDict({"head": self.head})
        if mode == "cached-trunk":
            self._top["layers"] = nn.ModuleList(self.layers[self.frozen :])
            if self.model_type == "gpt2":
                self._top["ln_f"] = self.backbone.ln_f
        elif mode == "full":
            self._top["backbone"] = self.backbone

    # -- identity of the frozen part (cache namespace)
    def _namespace(self, what: str) -> dict[str, Any]:
        return {
            "what": what,
            "source": (
                self.source if not Path(self.source).is_dir() else model_identity(self.source)
            ),
            "name": self.name,
            "layer": self.frozen if what == "trunk" else self.n_layers,
            "max_length": self.max_length,
            "pooling": self.pooling,
        }

    def trainable_module(self) -> nn.Module:
        return self._top

    def train_mode(self, on: bool) -> None:
        self.backbone.eval()
        self._top.train(on)
        if self.mode == "probe":
            self.backbone.eval()

    def reset_parameters(self, seed: int) -> None:
        torch.manual_seed(seed)
        nn.init.normal_(self.head.weight, std=0.02)
        nn.init.zeros_(self.head.bias)

    # -- frozen computations
    def _embed(self, b: dict[str, torch.Tensor]) -> torch.Tensor:
        """Input embeddings (layer 0 of ``hidden_states``)."""
        if self.model_type == "bert":
            return self.backbone.embeddings(input_ids=b["input_ids"])
        ids = b["input_ids"]
        pos = torch.arange(ids.shape[1], device=ids.device).unsqueeze(0)
        return self.backbone.drop(self.backbone.wte(ids) + self.backbone.wpe(pos))

    def _run_layers(self, h: torch.Tensor, mask: torch.Tensor, lo: int, hi: int) -> torch.Tensor:
        """Run blocks ``lo .. hi-1`` on states ``h`` exactly as the model's own forward does."""
        if lo >= hi:
            return h
        if self.model_type == "bert":
            from transformers.masking_utils import create_bidirectional_mask

            m4 = create_bidirectional_mask(
                config=self.backbone.config, inputs_embeds=h, attention_mask=mask
            )
            for layer in self.layers[lo:hi]:
                h = layer(h, m4)
            return h
        from transformers.masking_utils import create_causal_mask

        pos = torch.arange(h.shape[1], device=h.device).unsqueeze(0)
        # positional: the 4th parameter (no KV cache) is `past_key_values` up to transformers 5.17
        # and `cache` from 5.24 on
        m4 = create_causal_mask(self.backbone.config, h, mask, None, pos)
        for layer in self.layers[lo:hi]:
            h = layer(h, attention_mask=m4, position_ids=pos)
            if isinstance(h, tuple):
                h = h[0]
        return h

    @torch.no_grad()
    def _frozen_batches(self, texts: list[str], fn, batch_size: int = 128) -> list[np.ndarray]:
        """Apply ``fn(batch) -> [B, T, H] or [B, H]`` to length-sorted batches; unpad per text."""
        self.backbone.eval()
        toks = tokenize(self.tokenizer, texts, self.max_length)
        order = np.argsort([len(t) for t in toks], kind="stable")
        out: list[np.ndarray | None] = [None] * len(texts)
        for start in range(0, len(toks), batch_size):
            idx = order[start : start + batch_size]
            b = pad_ids([toks[i] for i in idx], self.pad_id, self.device)
            h = fn(b).float().cpu().numpy()
            for j, i in enumerate(idx):
                out[i] = h[j, : len(toks[i])] if h.ndim == 3 else h[j][None, :]
        return out  # type: ignore[return-value]

    def _trunk_items(self, texts: Sequence[str]) -> list[np.ndarray]:
        store = TextFeatureStore(self._namespace("trunk"), use_disk=self.use_disk_cache)

        def compute(t: list[str]) -> list[np.ndarray]:
            return self._frozen_batches(
                t, lambda b: self._run_layers(self._embed(b), b["attention_mask"], 0, self.frozen)
            )

        return store.get(texts, compute)

    def _probe_items(self, texts: Sequence[str]) -> list[np.ndarray]:
        store = TextFeatureStore(self._namespace("probe"), use_disk=self.use_disk_cache)

        def pooled(b: dict[str, torch.Tensor]) -> torch.Tensor:
            return self._pool(self.backbone(**b).last_hidden_state, b["attention_mask"])

        return store.get(texts, lambda t: self._frozen_batches(t, pooled))

    def prepare(self, texts: Sequence[str]) -> list[Any]:
        texts = list(texts)
        if self.mode == "full":
            return tokenize(self.tokenizer, texts, self.max_length)
        if self.mode == "cached-trunk":
            return self._trunk_items(texts)
        return self._probe_items(texts)

    def collate(self, items: list[Any]) -> dict[str, torch.Tensor]:
        if self.mode == "full":
            return pad_ids(items, self.pad_id, self.device)
        if self.mode == "probe":
            x = torch.as_tensor(np.concatenate(items, axis=0), dtype=torch.float32)
            return {"features": x.to(self.device)}
        t = max(len(a) for a in items)
        h = torch.zeros((len(items), t, items[0].shape[1]), dtype=torch.float32)
        mask = torch.zeros((len(items), t), dtype=torch.long)
        for i, a in enumerate(items):
            h[i, : len(a)] = torch.from_numpy(a.astype(np.float32))
            mask[i, : len(a)] = 1
        return {"hidden": h.to(self.device), "attention_mask": mask.to(self.device)}

    def _pool(self, h: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return mean_pool(h, mask) if self.pooling == "mean" else last_token_pool(h, mask)

    def _run_top(self, h: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Run the trainable top layers on cached states ``h`` (as the full model would)."""
        h = self._run_layers(h, mask, self.frozen, self.n_layers)
        return self.backbone.ln_f(h) if self.model_type == "gpt2" else h

    def pooled_batch(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        if self.mode == "probe":
            return batch["features"]
        if self.mode == "cached-trunk":
            return self._pool(
                self._run_top(batch["hidden"], batch["attention_mask"]), batch["attention_mask"]
            )
        out = self.backbone(**batch)
        return self._pool(out.last_hidden_state, batch["attention_mask"])

    def forward_batch(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        return self.head(self.pooled_batch(batch))

    def full_forward_logits(self, texts: Sequence[str]) -> np.ndarray:
        """Logits of the whole network run end to end (no cache): a reference for tests."""
        self.train_mode(False)
        with torch.no_grad():
            b = pad_ids(
                tokenize(self.tokenizer, list(texts), self.max_length), self.pad_id, self.device
            )
            out = self.backbone(**b)
            return self.head(self._pool(out.last_hidden_state, b["attention_mask"])).cpu().numpy()


def layer_list(backbone: nn.Module) -> nn.ModuleList | None:
    """The stack of transformer blocks (BERT ``encoder.layer``, GPT-2 ``h``, others ``layers``)."""
    for path in ("encoder.layer", "h", "layers", "gpt_neox.layers", "model.layers"):
        obj: Any = backbone
        for part in path.split("."):
            obj = getattr(obj, part, None)
            if obj is None:
                break
        if isinstance(obj, nn.ModuleList):
            return obj
    return None
