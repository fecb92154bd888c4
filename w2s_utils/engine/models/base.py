"""The classifier interface every model of the ladder has: :class:`Classifier`, and
:class:`TorchClassifier` for the ones :func:`w2s_utils.engine.train.train_classifier` trains."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import nn

from w2s_utils.engine.train import TrainSettings, train_classifier

__all__ = ["Classifier", "TorchClassifier"]


class Classifier(ABC):
    """Common interface: ``fit`` on hard or soft targets, ``predict_proba``, ``features``.

    ``n_classes`` (K >= 2) is fixed when the model is built; targets are class indices in
    ``0..K-1`` or probabilities ``[N, K]``, predictions are ``[N, K]``.
    """

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
