"""Per-text feature store: frozen-trunk token states and frozen pooled features, computed once.

A frozen bottom of a network gives the same output for a text whatever run, seed or chapter asks
for it, so :class:`TextFeatureStore` keeps one array per text (``[n_tokens, H]`` token states or a
``[1, H]`` pooled vector), keyed by the text's stable id (:func:`~w2s_utils.engine.data.text_id`),
under a namespace that names the model, the layer and the ``max_length``. New texts are computed in
one batch and written as an immutable, verified chunk (:func:`w2s_utils.engine.cache.save_arrays`,
atomic); a later request for any mix of old and new texts loads the chunks it needs. Chunks that
fail verification are reported and ignored (their texts are recomputed). Arrays are stored as
float16 and returned as float16 numpy arrays.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from w2s_utils.engine import cache
from w2s_utils.engine.data import text_id

__all__ = ["TextFeatureStore"]


class TextFeatureStore:
    """Disk + memory store of per-text arrays under ``cache_dir('features')/<namespace hash>``.

    ``compute(texts) -> list[np.ndarray]`` produces the arrays for texts not yet stored.
    ``use_disk=False`` keeps everything in memory (tests, throw-away models).
    """

    _memory: dict[str, dict[str, np.ndarray]] = {}
    _loaded_chunks: dict[str, set[str]] = {}

    def __init__(self, namespace: dict[str, Any], *, use_disk: bool = True) -> None:
        self.namespace = namespace
        self.ns_hash = cache.config_hash(
            {"ns": namespace, "versions": cache.versions_that_matter()}
        )
        self.use_disk = use_disk
        self.mem = TextFeatureStore._memory.setdefault(self.ns_hash, {})
        self.loaded = TextFeatureStore._loaded_chunks.setdefault(self.ns_hash, set())

    @property
    def folder(self) -> Path:
        return cache.cache_dir(f"features/{self.ns_hash}")

    def _load_disk(self) -> None:
        folder = self.folder
        for path in sorted(folder.glob("chunk-*.npz")):
            if path.name in self.loaded:
                continue
            try:
                arrays, _ = cache.load_arrays(path, expect_meta={"namespace": self.namespace})
            except cache.CacheCorruptError as e:
                cache.notice(
                    f"[w2s_utils.engine.features] ignoring and recomputing {path.name}: {e.reason}"
                )
                self.loaded.add(path.name)
                continue
            except FileNotFoundError:  # pragma: no cover - removed concurrently
                continue
            keys = cache.unpack_texts(arrays["keys_blob"], arrays["keys_offsets"])
            offsets = arrays["offsets"]
            values = arrays["values"]
            for i, key in enumerate(keys):
                self.mem.setdefault(key, values[offsets[i] : offsets[i + 1]])
            self.loaded.add(path.name)

    def get(
        self, texts: Sequence[str], compute: Callable[[list[str]], list[np.ndarray]]
    ) -> list[np.ndarray]:
        """Arrays for ``texts`` (in order), computing and storing only the missing ones."""
        keys = [text_id(t) for t in texts]
        missing = {k: t for k, t in zip(keys, texts, strict=True) if k not in self.mem}
        if missing and self.use_disk:
            self._load_disk()
            missing = {k: t for k, t in missing.items() if k not in self.mem}
        if missing:
            new_keys = list(missing)
            new = [np.asarray(a, dtype=np.float16) for a in compute(list(missing.values()))]
            if len(new) != len(new_keys):
                raise RuntimeError("TextFeatureStore: compute returned the wrong number of arrays")
            if self.use_disk:
                blob, koffs = cache.pack_texts(new_keys)
                lengths = np.array([len(a) for a in new], dtype=np.int64)
                offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
                values = np.concatenate(new, axis=0)
                name = f"chunk-{cache.config_hash(new_keys)}.npz"
                cache.save_arrays(
                    self.folder / name,
                    {
                        "keys_blob": blob,
                        "keys_offsets": koffs,
                        "offsets": offsets,
                        "values": values,
                    },
                    {"namespace": self.namespace},
                )
                self.loaded.add(name)
            for key, a in zip(new_keys, new, strict=True):
                self.mem[key] = a
        return [self.mem[k] for k in keys]

    @classmethod
    def clear_memory(cls) -> None:
        """Forget everything held in memory (the disk chunks stay)."""
        cls._memory.clear()
        cls._loaded_chunks.clear()
