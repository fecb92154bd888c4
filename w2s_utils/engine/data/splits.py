"""The four weak-to-strong splits: :class:`SplitSizes`, :func:`make_splits`, :func:`max_sizes`."""

from __future__ import annotations

import hashlib
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from w2s_utils._validate import check_number
from w2s_utils.engine.data.records import TextDataset, whole_labels

#: The split names, in the order of :class:`SplitSizes`.
SPLIT_NAMES = ("weak_train", "w2s_train", "val", "test")
#: Default proportions of :func:`max_sizes` (weak_train, w2s_train, val, test): the ``ci``
#: preset's 1000 / 2000 / 500 / 1500.
DEFAULT_FRACTIONS = (0.2, 0.4, 0.1, 0.3)


# ============================================================================================
# containers
# ============================================================================================


@dataclass(frozen=True, eq=False)
class Split:
    """One split: texts, gold labels (int64) and stable ids (the test split sorted by id, the
    others in a seed-shuffled order)."""

    texts: tuple[str, ...]
    labels: np.ndarray
    ids: tuple[str, ...]

    def __post_init__(self) -> None:
        object.__setattr__(self, "texts", tuple(self.texts))
        object.__setattr__(self, "ids", tuple(self.ids))
        object.__setattr__(self, "labels", whole_labels(self.labels))
        if not len(self.texts) == len(self.labels) == len(self.ids):
            raise ValueError("Split: texts, labels and ids must have the same length")

    def __len__(self) -> int:
        return len(self.texts)


@dataclass(frozen=True)
class SplitSizes:
    """Number of examples per split (each a multiple of the number of classes, for balance)."""

    weak_train: int
    w2s_train: int
    val: int
    test: int

    def total(self) -> int:
        return self.weak_train + self.w2s_train + self.val + self.test


@dataclass(frozen=True, eq=False)
class Splits:
    """The four W2S splits of one dataset.

    - ``weak_train``: gold labels, trains the weak model and the strong ceiling.
    - ``w2s_train``: the student trains on the weak model's labels for these texts (the gold labels
      here are for reporting only).
    - ``val``: validation for early stopping / model selection; label it with the weak model at
      train time (never use its gold labels for training decisions); gold kept for reporting.
    - ``test``: fixed held-out set that does not depend on the seed, sorted by example id (one
      canonical order for every seed).
    """

    dataset: str
    seed: int
    sizes: SplitSizes
    weak_train: Split
    w2s_train: Split
    val: Split
    test: Split

    def as_dict(self) -> dict[str, Split]:
        return {
            "weak_train": self.weak_train,
            "w2s_train": self.w2s_train,
            "val": self.val,
            "test": self.test,
        }


# ============================================================================================
# sizes
# ============================================================================================


def _as_fractions(fractions: Sequence[float] | SplitSizes) -> tuple[float, ...]:
    if isinstance(fractions, SplitSizes):
        fractions = tuple(getattr(fractions, nm) for nm in SPLIT_NAMES)
    if isinstance(fractions, str | bytes) or not isinstance(fractions, Sequence):
        raise ValueError(
            f"max_sizes: fractions must be 4 numbers (weak_train, w2s_train, val, test) or a "
            f"SplitSizes, got {type(fractions).__name__}"
        )
    if len(fractions) != 4:
        raise ValueError(
            f"max_sizes: fractions must be 4 numbers (weak_train, w2s_train, val, test), got "
            f"{len(fractions)}"
        )
    out = tuple(
        check_number(f, f"max_sizes: fractions[{i}] ({nm})", lo=0.0)
        for i, (f, nm) in enumerate(zip(fractions, SPLIT_NAMES, strict=True))
    )
    if not sum(out) > 0:
        raise ValueError("max_sizes: fractions must not all be zero; e.g. (0.2, 0.4, 0.1, 0.3)")
    return out


def max_sizes(
    ds: TextDataset, fractions: Sequence[float] | SplitSizes = DEFAULT_FRACTIONS
) -> SplitSizes:
    """The largest class-balanced :class:`SplitSizes` that ``ds`` allows, in given proportions.

    Rule: with ``m`` = the size of the smallest class (after cleaning), ``K = ds.n_classes`` and
    the four ``fractions`` (weak_train, w2s_train, val, test; any non-negative numbers, normalised
    by their sum; a :class:`SplitSizes` is read as proportions), split ``s`` gets
    ``floor(m * f_s / sum(f))`` examples per class, so its size is ``K`` times that: every size
    is a multiple of K and their sum is at most ``K * m``, the most a class-balanced cut can use
    (:func:`make_splits` never takes more than ``m`` examples of a class). The default fractions
    are the ``ci`` preset's proportions (1000 / 2000 / 500 / 1500). Grouped data (quartz) may
    need somewhat smaller sizes when groups do not fit a split's quotas; :func:`make_splits`
    then says so. ``ValueError`` when a split with a positive fraction would be empty.
    """
    if not isinstance(ds, TextDataset):
        raise ValueError(f"max_sizes: ds must be a TextDataset, got {type(ds).__name__}")
    fr = _as_fractions(fractions)
    k, counts = ds.n_classes, ds.class_counts()
    m = min(counts)
    total = sum(fr)
    per_class = [math.floor(m * f / total) for f in fr]
    empty = [nm for nm, f, c in zip(SPLIT_NAMES, fr, per_class, strict=True) if f > 0 and c == 0]
    if empty:
        smallest = counts.index(m)
        name = ds.label_names[smallest] if ds.label_names else smallest
        raise ValueError(
            f"max_sizes: dataset {ds.name!r} has class counts {counts}; its smallest class "
            f"({name!r}, {m} example{'s' if m != 1 else ''}) is too small to give split(s) "
            f"{', '.join(empty)} one example per class at these fractions; add examples of that "
            "class or give those splits a larger fraction"
        )
    return SplitSizes(*(k * c for c in per_class))


def _sizes_that_fit(ds: TextDataset, sizes: SplitSizes, counts: list[int]) -> str:
    """What to ask for instead of ``sizes``: the rule, and the largest sizes in the same
    proportions (else in the default ones) when the smallest class allows them."""
    k, m = ds.n_classes, min(counts)
    like = ""
    for fractions, call in ((sizes, "max_sizes(ds, sizes)"), (DEFAULT_FRACTIONS, "max_sizes(ds)")):
        try:
            like = f", e.g. {max_sizes(ds, fractions)} ({call})"
            break
        except ValueError:
            continue
    return (
        f"sizes that fit are multiples of n_classes={k} per split summing to at most "
        f"{k} x {m} = {k * m}{like}"
    )


# ============================================================================================
# the cut
# ============================================================================================


def _rank(keys: Iterable[str], salt: str) -> list[str]:
    """Order keys by sha256(salt + key): a fixed pseudo-random order independent of any seed."""
    return sorted(keys, key=lambda k: hashlib.sha256(f"{salt}\x00{k}".encode()).digest())


def make_splits(ds: TextDataset, sizes: SplitSizes, seed: int) -> Splits:
    """Cut ``ds`` into disjoint, class-balanced, group-aware splits.

    Each split of size ``n`` holds ``n / K`` examples of every class, ``K = ds.n_classes`` (the
    larger classes are down-sampled), so every size must be a multiple of K and their sum at most
    K times the smallest class count (:func:`max_sizes` gives the largest such sizes; the errors
    name the sizes that fit). The test split depends only on the dataset and ``sizes.test``:
    groups are ranked by a fixed hash, so every seed is compared on the same test set (and a
    smaller test set is a subset of a larger one), not on its name, and its examples come in one
    canonical order, sorted by example id, for every seed: per-example arrays of different seeds
    line up position by position. The other splits are drawn, in the order weak_train, w2s_train,
    val, from the remaining groups shuffled by ``numpy.random.default_rng(seed)``; within them
    the order is shuffled too. Members of one group never land in different splits; a group is
    taken only while it fits every class quota of the split (the rest of a partly fitting group is
    discarded). Deterministic given (dataset contents, sizes, seed).
    """
    if not isinstance(sizes, SplitSizes):
        raise ValueError(f"make_splits: sizes must be a SplitSizes, got {type(sizes).__name__}")
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer):
        raise ValueError(f"make_splits: seed must be an int, got {seed!r}")
    k = ds.n_classes
    names = SPLIT_NAMES
    for nm in names:
        n = getattr(sizes, nm)
        if isinstance(n, bool) or not isinstance(n, int | np.integer) or n < 0:
            raise ValueError(f"make_splits: sizes.{nm}={n!r} must be a non-negative int")
        if n % k:
            raise ValueError(
                f"make_splits: sizes.{nm}={n} must be a multiple of n_classes={k} so the split "
                f"can be class-balanced; use {n - n % k} or {n - n % k + k}"
            )
    counts = ds.class_counts()
    per_class_needed = sizes.total() // k
    if per_class_needed > min(counts):
        raise ValueError(
            f"make_splits: sizes {sizes} ask for {per_class_needed} examples per class "
            f"({sizes.total()} in total) but dataset {ds.name!r} has class counts {counts} after "
            f"cleaning, so at most {min(counts)} per class, {k * min(counts)} balanced examples, "
            f"are available: {_sizes_that_fit(ds, sizes, counts)}"
        )

    members: dict[str, list[int]] = {}
    for i, g in enumerate(ds.groups):
        members.setdefault(g, []).append(i)
    used: set[str] = set()
    labels = ds.labels.tolist()
    rng = np.random.default_rng(int(seed))

    def fill(order: list[str], n: int, nm: str) -> list[int]:
        quota = [n // k] * k
        taken: list[int] = []
        # pass 1 takes whole groups that fit; pass 2 may take the fitting part of a group (the
        # rest of that group is discarded, never placed in another split)
        for allow_partial in (False, True):
            for g in order:
                if not any(quota):
                    return taken
                if g in used:
                    continue
                idx = members[g]
                if len(idx) == 1:
                    if not quota[labels[idx[0]]]:
                        continue
                else:
                    need = [0] * k
                    for i in idx:
                        need[labels[i]] += 1
                    fits = all(need[c] <= quota[c] for c in range(k))
                    partial_ok = allow_partial and any(need[c] and quota[c] for c in range(k))
                    if not fits and not partial_ok:
                        continue
                used.add(g)
                for i in idx:
                    if quota[labels[i]] > 0:
                        quota[labels[i]] -= 1
                        taken.append(i)
            if not any(quota):
                return taken
        raise ValueError(
            f"make_splits: could not fill split {nm!r} with {n} class-balanced examples from "
            f"dataset {ds.name!r} (class counts {counts}) while keeping groups together; "
            "use smaller sizes (members of a group that do not fit a split's class quotas are "
            "discarded, so grouped data fill less than their class counts)"
        )

    # the salt is fixed: the test split depends on the content only, not on the dataset's name
    test_idx = fill(_rank(members, "w2s-test-split"), sizes.test, "test")
    rest = sorted(g for g in members if g not in used)
    order = [rest[j] for j in rng.permutation(len(rest))]
    chosen = {"test": test_idx}
    for nm in ("weak_train", "w2s_train", "val"):
        chosen[nm] = fill(order, getattr(sizes, nm), nm)

    def build(idx: list[int], canonical: bool = False) -> Split:
        if canonical:  # the test split: sorted by example id, whatever the seed
            idx = sorted(idx, key=lambda i: ds.ids[i])
        else:
            idx = [idx[j] for j in rng.permutation(len(idx))] if idx else []
        return Split(
            texts=tuple(ds.texts[i] for i in idx),
            labels=np.asarray([ds.labels[i] for i in idx], dtype=np.int64),
            ids=tuple(ds.ids[i] for i in idx),
        )

    return Splits(
        dataset=ds.name,
        seed=int(seed),
        sizes=sizes,
        **{nm: build(chosen[nm], canonical=nm == "test") for nm in names},
    )
