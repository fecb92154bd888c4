"""The cleaned dataset: :class:`TextDataset`, its cleaning step and its example ids."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from w2s_utils.engine.data.labels import class_index

#: The most classes a dataset may declare. Class counts are allocated per class, so this bound is
#: checked before any allocation (a weak-to-strong split needs examples of every class anyway).
MAX_CLASSES = 1 << 20


def text_id(text: str) -> str:
    """Stable example id: the first 16 hex digits of sha256 of the utf-8 text."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def whole_labels(labels: Any, name: str = "labels") -> np.ndarray:
    """Labels as a read-only int64 ``[N]`` array of class indices, never truncated.

    Integer arrays pass as they are; other values go through
    :func:`~w2s_utils.engine.data.labels.class_index`, so a float label such as 0.7, a string
    such as ``"1_0"`` or a negative index raises ``ValueError`` naming ``name[i]``.
    """
    raw = np.asarray(labels)
    if raw.dtype.kind in "iub":
        arr = raw.astype(np.int64).reshape(-1)
    else:
        flat = raw.reshape(-1)
        arr = np.asarray([class_index(v, f"{name}[{i}]") for i, v in enumerate(flat)], np.int64)
    arr.setflags(write=False)
    return arr


@dataclass(frozen=True, eq=False)
class TextDataset:
    """A cleaned text classification dataset with ``n_classes`` classes (K >= 2).

    ``ids`` are :func:`text_id` of each text (stable across runs and machines). ``labels`` are
    class indices ``0..n_classes-1`` (int64, read-only). ``groups`` holds a group key per example:
    examples sharing a key (the two options of one quartz question) always land in the same split;
    by default each example is its own group. ``cleaning`` reports the counts of the cleaning step;
    ``label_names[c]`` names class ``c`` where known (string labels: the names in sorted order,
    see :mod:`w2s_utils.engine.data.labels`). ``n_classes`` must be an int in
    ``2..MAX_CLASSES``, checked before anything is allocated per class.
    """

    name: str
    texts: tuple[str, ...]
    labels: np.ndarray
    ids: tuple[str, ...]
    groups: tuple[str, ...] = ()
    n_classes: int = 2
    cleaning: dict[str, int] = field(default_factory=dict)
    label_names: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "texts", tuple(self.texts))
        object.__setattr__(self, "ids", tuple(self.ids))
        object.__setattr__(self, "labels", whole_labels(self.labels))
        groups = tuple(self.groups) if len(self.groups) else self.ids
        object.__setattr__(self, "groups", groups)
        object.__setattr__(self, "label_names", tuple(str(n) for n in self.label_names))
        k = self.n_classes
        if isinstance(k, bool) or not isinstance(k, int | np.integer) or not 2 <= k <= MAX_CLASSES:
            raise ValueError(
                f"TextDataset {self.name!r}: n_classes={k!r} must be an int in 2..{MAX_CLASSES}"
            )
        object.__setattr__(self, "n_classes", int(k))
        n = len(self.texts)
        if not (len(self.labels) == len(self.ids) == len(self.groups) == n):
            raise ValueError(
                f"TextDataset {self.name!r}: texts ({n}), labels ({len(self.labels)}), ids "
                f"({len(self.ids)}) and groups ({len(self.groups)}) must have the same length"
            )
        if n and (self.labels.min() < 0 or self.labels.max() >= self.n_classes):
            raise ValueError(
                f"TextDataset {self.name!r}: labels must lie in [0, {self.n_classes}), got "
                f"[{self.labels.min()}, {self.labels.max()}]"
            )
        if self.label_names and len(self.label_names) != self.n_classes:
            raise ValueError(
                f"TextDataset {self.name!r}: {len(self.label_names)} label_names for "
                f"n_classes={self.n_classes}; give one name per class or none"
            )

    def __len__(self) -> int:
        return len(self.texts)

    def class_counts(self) -> list[int]:
        """Number of examples per class (a list of ``n_classes`` ints)."""
        return np.bincount(self.labels, minlength=self.n_classes).tolist()

    @classmethod
    def from_records(
        cls,
        name: str,
        texts: Sequence[str],
        labels: Sequence[int] | np.ndarray,
        groups: Sequence[str] | None = None,
        n_classes: int = 2,
        label_names: Sequence[str] = (),
    ) -> TextDataset:
        """Clean raw ``(text, label[, group])`` records (:func:`clean_records`) into a dataset."""
        texts2, labels2, groups2, report = clean_records(texts, labels, groups)
        return cls(
            name=name,
            texts=tuple(texts2),
            labels=np.asarray(labels2, dtype=np.int64),
            ids=tuple(text_id(t) for t in texts2),
            groups=tuple(groups2) if groups is not None else (),
            n_classes=n_classes,
            cleaning=report,
            label_names=tuple(label_names),
        )


def clean_records(
    texts: Sequence[str],
    labels: Sequence[int] | np.ndarray,
    groups: Sequence[str] | None = None,
) -> tuple[list[str], list[int], list[str], dict[str, int]]:
    """Strip texts, drop empty ones, de-duplicate by text; return kept records and counts.

    A text seen several times with one label is kept once (first occurrence, and its group); a
    text whose copies disagree on the label is dropped entirely. Texts must be strings (a
    ``None`` or a number raises ``ValueError`` naming ``texts[i]``).
    """
    labels = whole_labels(labels).tolist()
    if len(labels) != len(texts) or (groups is not None and len(groups) != len(texts)):
        raise ValueError("clean_records: texts, labels and groups must have the same length")
    for i, t in enumerate(texts):
        if not isinstance(t, str):
            raise ValueError(
                f"clean_records: texts[{i}] is a {type(t).__name__} ({t!r:.40}), not a string; "
                "store texts as strings (a missing text is never read as 'None')"
            )
    stripped = [t.strip() for t in texts]
    label_sets: dict[str, set[int]] = {}
    counts: dict[str, int] = {}
    n_empty = 0
    for t, y in zip(stripped, labels, strict=True):
        if not t:
            n_empty += 1
            continue
        label_sets.setdefault(t, set()).add(y)
        counts[t] = counts.get(t, 0) + 1
    conflicting = {t for t, s in label_sets.items() if len(s) > 1}
    out_t: list[str] = []
    out_y: list[int] = []
    out_g: list[str] = []
    seen: set[str] = set()
    for i, (t, y) in enumerate(zip(stripped, labels, strict=True)):
        if not t or t in conflicting or t in seen:
            continue
        seen.add(t)
        out_t.append(t)
        out_y.append(y)
        out_g.append(str(groups[i]) if groups is not None else "")
    n_dup_removed = sum(c - 1 for t, c in counts.items() if t not in conflicting)
    report = {
        "raw": len(texts),
        "empty_dropped": n_empty,
        "duplicates_removed": n_dup_removed,
        "conflicting_texts_dropped": len(conflicting),
        "conflicting_records_dropped": sum(counts[t] for t in conflicting),
        "kept": len(out_t),
    }
    return out_t, out_y, out_g, report
