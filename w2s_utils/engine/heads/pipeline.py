"""Running linear-head configs: features, splits, teacher, student, ceiling; the result object.

:func:`heads_from_features` is the pure core (a dataset and its feature arrays in, results out,
no cache); :func:`run_heads` loads datasets and frozen features through the engine and caches
every result with :func:`w2s_utils.engine.cache.cached_arrays`. Within one call, pieces that
several configs share are computed once: the splits of a (sizes, seed), the planted truth, a
teacher (shared by every temperature, loss and label type), a ceiling (shared by every teacher),
and the forward-KL student, which is also the reverse-KL student's start.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from threadpoolctl import threadpool_limits
from tqdm.auto import tqdm

from w2s_utils import metrics
from w2s_utils._validate import check_int
from w2s_utils.engine import cache, data
from w2s_utils.engine.data import TextDataset
from w2s_utils.engine.heads.config import (
    BOW,
    HeadsConfig,
    check_heads_config,
    heads_key,
    teacher_l2_of,
)
from w2s_utils.engine.heads.result import HeadsResult, result_from_arrays
from w2s_utils.engine.heads.solvers import LinearHead, fit_forward_head, fit_reverse_head
from w2s_utils.engine.models import get_model, model_identity

__all__ = [
    "heads_from_features",
    "pool_dataset",
    "pooled_features",
    "run_heads",
]

#: A head whose largest gradient entry exceeds this did not reach an optimum: the run fails.
GRAD_FAIL = 1e-6
_CACHE_KIND = "heads"
_LABEL_SALT = b"w2s_utils heads: planted label\x00"


# ============================================================================ data and features
def pool_dataset(ds: TextDataset, pool: int) -> TextDataset:
    """The ``pool`` examples of ``ds`` with the smallest ids (:func:`w2s_utils.engine.data.text_id`,
    a hash of the text), in that order, with their labels and groups: the rule of
    :func:`w2s_utils.engine.planted.planted_texts`, so the features those tasks cache serve both.
    ``pool = 0`` or ``pool >= len(ds)`` returns ``ds`` itself."""
    if not isinstance(ds, TextDataset):
        raise ValueError(f"ds: must be a TextDataset, got {type(ds).__name__}")
    pool = check_int(pool, "pool", minimum=0)
    if pool == 0 or pool >= len(ds):
        return ds
    order = sorted(range(len(ds)), key=lambda i: ds.ids[i])[:pool]
    return TextDataset(
        name=ds.name,
        texts=tuple(ds.texts[i] for i in order),
        labels=np.asarray(ds.labels)[order],
        ids=tuple(ds.ids[i] for i in order),
        groups=tuple(ds.groups[i] for i in order),
        n_classes=ds.n_classes,
        cleaning=dict(ds.cleaning),
        label_names=ds.label_names,
    )


#: Feature rows already read in this process: (cache folder, model identity) -> text id -> row.
_FEATURE_ROWS: dict[str, dict[str, np.ndarray]] = {}


def pooled_features(model: str, texts: Sequence[str], n_classes: int = 2) -> np.ndarray:
    """Frozen mean-pooled final-layer features ``[N, D]`` (float64) of ``model`` for ``texts``:
    ``get_model(model, mode="probe").features`` (the engine's per-text feature store, the
    namespace the planted tasks and chapter 5 use; computed once per text, then read). Rows read
    once are kept for the process, so later calls for the same texts build no model at all."""
    if isinstance(texts, str) or not all(isinstance(t, str) for t in texts):
        raise ValueError("texts: pass a list of strings")
    n_classes = check_int(n_classes, "n_classes", minimum=2)
    key = cache.canonical_json([str(cache.cache_dir("features")), model_identity(model)])
    rows = _FEATURE_ROWS.setdefault(key, {})
    ids = [data.text_id(t) for t in texts]
    missing = {i: t for i, t in zip(ids, texts, strict=True) if i not in rows}
    if missing:
        clf = get_model(model, n_classes=n_classes, mode="probe")
        feats = np.asarray(clf.features(list(missing.values())), dtype=np.float64)
        rows.update(zip(missing, feats, strict=True))
    return np.stack([rows[i] for i in ids]) if ids else np.zeros((0, 0))


def _uniform_of(text_ids: Sequence[str]) -> np.ndarray:
    """A content-defined uniform in [0, 1) per text id (the same in every run and seed)."""
    return np.array(
        [
            int.from_bytes(hashlib.sha256(_LABEL_SALT + i.encode()).digest()[:8], "big") / 2.0**64
            for i in text_ids
        ]
    )


def _log_softmax(s: np.ndarray) -> np.ndarray:
    m = s.max(axis=1, keepdims=True)
    return s - m - np.log(np.exp(s - m).sum(axis=1, keepdims=True))


# ============================================================================ the runner
@dataclass
class _Teacher:
    logp: dict[str, np.ndarray]  # split -> untempered log-probabilities
    diag: dict[str, float]


class _Runner:
    """The runs of one dataset: splits, truth, teachers, ceilings and students, memoised."""

    def __init__(self, ds: TextDataset, pool: int, features) -> None:
        self.ds = pool_dataset(ds, pool)
        self.k = self.ds.n_classes
        self.row = {i: r for r, i in enumerate(self.ds.ids)}
        self.features = features  # (model, rows) -> [len(rows), D] float64
        self.memo: dict[tuple, Any] = {}

    def _memo(self, key: tuple, fn):
        if key not in self.memo:
            self.memo[key] = fn()
        return self.memo[key]

    def splits(self, cfg: HeadsConfig) -> dict[str, np.ndarray]:
        """Pool rows of every split (the test split sorted by id)."""

        def make():
            sp = data.make_splits(self.ds, cfg.sizes, cfg.seed)
            return {
                name: np.array([self.row[i] for i in s.ids], dtype=np.int64)
                for name, s in sp.as_dict().items()
            }

        return self._memo(("splits", cfg.sizes, cfg.seed), make)

    def rows_needed(self, cfg: HeadsConfig) -> dict[str, np.ndarray]:
        """Pool rows whose features ``cfg`` reads, per model."""
        sp = self.splits(cfg)
        every = np.concatenate(list(sp.values()))
        strong = np.arange(len(self.ds)) if cfg.truth == "planted" else every
        out = {cfg.strong: strong}
        if cfg.weak != BOW:
            out[cfg.weak] = np.union1d(out.get(cfg.weak, every), every)
        return out

    # -- truth
    def truth(self, cfg: HeadsConfig) -> tuple[np.ndarray, np.ndarray | None, dict[str, float]]:
        """Labels of every pool row, ``F*`` of every pool row (planted only), diagnostics."""
        if cfg.truth == "gold":
            return np.asarray(self.ds.labels), None, {}

        def make():
            x = self.features(cfg.strong, np.arange(len(self.ds)))
            head = fit_forward_head(x, self.ds.labels, n_classes=self.k, l2=cfg.planted_l2)
            _check_converged(head, "planted head")
            f_star = np.exp(_log_softmax(head.log_proba(x) / cfg.planted_temperature))
            cdf = np.cumsum(f_star, axis=1)
            u = _uniform_of(self.ds.ids)
            labels = np.minimum((cdf <= u[:, None]).sum(axis=1), self.k - 1)
            acc = float((f_star.argmax(1) == np.asarray(self.ds.labels)).mean())
            return labels.astype(np.int64), f_star, {"planted_gold_accuracy": acc}

        return self._memo(("truth", cfg.strong, cfg.planted_l2, cfg.planted_temperature), make)

    # -- teacher
    def teacher(self, cfg: HeadsConfig) -> _Teacher:
        key = (
            "teacher", cfg.sizes, cfg.seed, cfg.weak, cfg.truth, cfg.strong, cfg.planted_l2,
            cfg.planted_temperature, cfg.teacher_n, cfg.label_noise, cfg.teacher_targets,
            cfg.target_noise, teacher_l2_of(cfg),
        )  # fmt: skip
        return self._memo(key, lambda: self._fit_teacher(cfg))

    def _teacher_targets(self, cfg: HeadsConfig, rows_all: np.ndarray, n_t: int):
        labels, f_star, _ = self.truth(cfg)
        n_all = len(rows_all)
        flips = 0
        if cfg.teacher_targets == "soft":
            rng = np.random.default_rng([cfg.seed, 2])
            xi = rng.standard_normal((n_all, self.k))[:n_t]
            log_f = np.log(np.maximum(f_star[rows_all[:n_t]], 1e-300))  # no log 0
            logits = log_f + cfg.target_noise * xi
            return np.exp(_log_softmax(logits)), flips
        y = labels[rows_all[:n_t]].copy()
        if cfg.label_noise > 0:
            rng = np.random.default_rng([cfg.seed, 1])
            rank = rng.permutation(n_all)[:n_t]
            shift = rng.integers(1, self.k, n_all)[:n_t]
            flips = int(round(cfg.label_noise * n_t))
            chosen = np.argsort(rank, kind="stable")[:flips]
            y[chosen] = (y[chosen] + shift[chosen]) % self.k
        missing = sorted(set(range(self.k)) - set(y.tolist()))
        if missing:
            raise ValueError(
                f"teacher_n: the teacher's {n_t} training labels miss class(es) {missing}; give "
                "it more examples (teacher_n or sizes.weak_train)"
            )
        return y, flips

    def _fit_teacher(self, cfg: HeadsConfig) -> _Teacher:
        sp = self.splits(cfg)
        rows_all = sp["weak_train"]
        n_t = cfg.teacher_n or len(rows_all)
        targets, flips = self._teacher_targets(cfg, rows_all, n_t)
        l2 = teacher_l2_of(cfg)
        out_splits = ("w2s_train", "val", "test")
        diag = {"teacher_n": float(n_t), "label_flips": float(flips)}
        if cfg.weak == BOW:
            logp, bow_diag = _bow_teacher(
                [self.ds.texts[r] for r in rows_all[:n_t]],
                targets,
                self.k,
                l2,
                {s: [self.ds.texts[r] for r in sp[s]] for s in out_splits},
            )
            return _Teacher(logp, {**diag, **bow_diag})
        x_train = self.features(cfg.weak, rows_all[:n_t])
        head = fit_forward_head(x_train, targets, n_classes=self.k, l2=l2)
        _check_converged(head, "teacher")
        logp = {s: self.predict(head, cfg.weak, sp[s], log=True) for s in out_splits}
        return _Teacher(logp, {**diag, **_head_diag("teacher", head)})

    def predict(self, head: LinearHead, model: str, rows: np.ndarray, log: bool) -> np.ndarray:
        """``head``'s (log-)probabilities on pool ``rows`` of ``model``'s features (an empty split
        gives ``[0, K]``)."""
        if not len(rows):
            return np.zeros((0, self.k))
        x = self.features(model, rows)
        return head.log_proba(x) if log else head.predict_proba(x)

    # -- ceiling and students
    def ceiling(self, cfg: HeadsConfig) -> tuple[np.ndarray, dict[str, float]]:
        def make():
            sp = self.splits(cfg)
            labels, _, _ = self.truth(cfg)
            x = self.features(cfg.strong, sp["w2s_train"])
            head = fit_forward_head(x, labels[sp["w2s_train"]], n_classes=self.k, l2=cfg.ceiling_l2)
            _check_converged(head, "ceiling")
            probs = self.predict(head, cfg.strong, sp["test"], log=False)
            return probs, _head_diag("ceiling", head)

        key = (
            "ceiling", cfg.sizes, cfg.seed, cfg.strong, cfg.truth, cfg.planted_l2,
            cfg.planted_temperature, cfg.ceiling_l2,
        )  # fmt: skip
        return self._memo(key, make)

    def temperature(self, cfg: HeadsConfig, teacher: _Teacher) -> float:
        if cfg.teacher_temperature != "fit":
            return float(cfg.teacher_temperature)
        labels, _, _ = self.truth(cfg)
        y = labels[self.splits(cfg)["val"]]
        return float(metrics.fit_temperature(teacher.logp["val"], y, kind="logits"))

    def forward_student(self, cfg: HeadsConfig, targets: np.ndarray, key: tuple) -> LinearHead:
        def make():
            x = self.features(cfg.strong, self.splits(cfg)["w2s_train"])
            head = fit_forward_head(x, targets, n_classes=self.k, l2=cfg.student_l2)
            _check_converged(head, "forward-KL student")
            return head

        return self._memo(("forward student", *key), make)

    def run(self, cfg: HeadsConfig) -> dict[str, np.ndarray]:
        t0 = time.perf_counter()
        sp = self.splits(cfg)
        labels, f_star, truth_diag = self.truth(cfg)
        teacher = self.teacher(cfg)
        temp = self.temperature(cfg, teacher)
        weak = {s: _log_softmax(lp / temp) for s, lp in teacher.logp.items()}
        probs_w = {s: np.exp(lp) for s, lp in weak.items()}
        teacher_key = (id(teacher), temp, cfg.strong, cfg.student_l2)
        hard = cfg.label_type == "hard"
        targets = probs_w["w2s_train"].argmax(1) if hard else probs_w["w2s_train"]
        diag: dict[str, float] = {**truth_diag, **teacher.diag, "teacher_temperature": temp}
        head = self.forward_student(cfg, targets, (*teacher_key, cfg.label_type))
        if cfg.loss == "reverse":
            x = self.features(cfg.strong, sp["w2s_train"])
            start = head
            head = fit_reverse_head(x, weak["w2s_train"], l2=cfg.student_l2, start=start)
            _check_converged(head, "reverse-KL student")
            diag["reverse_kl_at_start"] = _reverse_kl(start, x, weak["w2s_train"], cfg.student_l2)
        diag.update(_head_diag("student", head))
        diag["student_objective"] = head.objective
        ceiling, ceil_diag = self.ceiling(cfg)
        diag.update(ceil_diag)
        student = {s: self.predict(head, cfg.strong, sp[s], log=False) for s in weak}
        test_ids = [self.ds.ids[r] for r in sp["test"]]
        ids_blob, ids_offsets = cache.pack_texts(test_ids)
        arrays = {
            "labels": labels[sp["test"]],
            "ids_blob": ids_blob,
            "ids_offsets": ids_offsets,
            "weak": probs_w["test"],
            "student": student["test"],
            "ceiling": ceiling,
            "weak_labels_train": probs_w["w2s_train"],
            "student_probs_train": student["w2s_train"],
            "train_labels": labels[sp["w2s_train"]],
            "weak_labels_val": probs_w["val"],
            "student_probs_val": student["val"],
            "val_labels": labels[sp["val"]],
        }
        if f_star is not None:
            arrays["f_star"] = f_star[sp["test"]]
            arrays["f_star_train"] = f_star[sp["w2s_train"]]
            arrays["f_star_val"] = f_star[sp["val"]]
        diag["seconds"] = time.perf_counter() - t0
        names_blob, names_offsets = cache.pack_texts(list(diag))
        arrays["diag_names_blob"] = names_blob
        arrays["diag_names_offsets"] = names_offsets
        arrays["diag_values"] = np.array(list(diag.values()), dtype=np.float64)
        return arrays


def _head_diag(name: str, head: LinearHead) -> dict[str, float]:
    return {
        f"{name}_grad_max": head.grad_max,
        f"{name}_n_iter": float(head.n_iter),
        f"{name}_converged": float(head.converged),
    }


def _check_converged(head: LinearHead, what: str) -> None:
    if not head.grad_max <= GRAD_FAIL:
        raise RuntimeError(
            f"{what}: the solver stopped at a gradient of {head.grad_max:.3g} after "
            f"{head.n_iter} Newton steps, not at an optimum; raise its L2 (the logits may run "
            "off to infinity without it)"
        )


def _reverse_kl(head: LinearHead, x: np.ndarray, logp: np.ndarray, l2: float) -> float:
    """``E KL(q || p) + l2/2 ||W||^2`` of ``head`` (the reverse objective, penalty included)."""
    lq = head.log_proba(x)
    penalty = 0.5 * l2 * float((head.theta[:-1] ** 2).sum())
    return float((np.exp(lq) * (lq - logp)).sum(axis=1).mean()) + penalty


def _bow_teacher(
    texts: list[str],
    targets: np.ndarray,
    k: int,
    l2: float,
    predict: dict[str, list[str]],
) -> tuple[dict[str, np.ndarray], dict[str, float]]:
    """TF-IDF (1-2-grams, sublinear tf, ``min_df = 2``; fitted on the teacher's own texts) and a
    multinomial logistic head, ``mean loss + l2/2 ||w||^2`` (scikit-learn's ``C = 1 / (l2 n)``;
    soft targets by duplicating rows with the class probabilities as weights)."""
    from scipy import sparse
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression

    min_df = 2 if len(texts) >= 50 else 1
    vec = TfidfVectorizer(ngram_range=(1, 2), min_df=min_df, sublinear_tf=True)
    x = vec.fit_transform(texts)
    n = len(texts)
    if targets.ndim == 1:
        xs, ys, ws = x, targets, np.ones(n)
    else:
        xs = sparse.vstack([x] * k).tocsr()
        ys = np.repeat(np.arange(k), n)
        ws = targets.T.reshape(-1)
    keep = ws > 0
    clf = LogisticRegression(C=1.0 / (l2 * n), tol=1e-8, max_iter=10_000)
    clf.fit(xs[keep], ys[keep], sample_weight=ws[keep])
    if list(clf.classes_) != list(range(k)):
        raise ValueError(
            f"teacher_n: the bag-of-words teacher saw classes {list(clf.classes_)} of {k}; give it "
            "more examples"
        )
    out = {}
    for split, split_texts in predict.items():
        if not split_texts:
            out[split] = np.zeros((0, k))
            continue
        s = clf.decision_function(vec.transform(split_texts))
        logits = np.stack([np.zeros_like(s), s], axis=1) if s.ndim == 1 else s
        out[split] = _log_softmax(logits)
    n_iter = float(np.max(clf.n_iter_))
    return out, {
        "teacher_grad_max": float("nan"),
        "teacher_n_iter": n_iter,
        "teacher_converged": float(n_iter < clf.max_iter),
    }


# ============================================================================ entry points
def _check_configs(configs: Any) -> list[HeadsConfig]:
    if isinstance(configs, HeadsConfig):
        configs = [configs]
    if isinstance(configs, str | bytes) or not isinstance(configs, Sequence):
        raise ValueError(
            "configs: pass a HeadsConfig or a list of them (heads_grid), got "
            f"{type(configs).__name__}"
        )
    if not configs:
        raise ValueError("configs: is empty; pass at least one HeadsConfig")
    return [check_heads_config(c) for c in configs]


def heads_from_features(
    configs: Any,
    dataset: TextDataset,
    features: Mapping[str, Any],
    *,
    progress: bool = False,
) -> list[HeadsResult]:
    """Run ``configs`` on a given dataset and feature arrays, without any cache.

    ``dataset``: the :class:`~w2s_utils.engine.data.TextDataset` every config runs on (their
    ``dataset`` fields only label the results; each config's ``pool`` applies to it).
    ``features``: model name -> array ``[len(dataset), D]``, rows in the dataset's order, for
    every ``weak`` (except ``"bow"``) and ``strong`` name of the configs. Returns one
    :class:`HeadsResult` per config, in order (``cached=False``).
    """
    configs = _check_configs(configs)
    if not isinstance(dataset, TextDataset):
        raise ValueError(f"dataset: must be a TextDataset, got {type(dataset).__name__}")
    arrays: dict[str, np.ndarray] = {}
    for cfg in configs:
        for name in sorted({cfg.strong} | ({cfg.weak} - {BOW}) - set(arrays)):
            if name not in features:
                raise ValueError(
                    f"features: has no array for model {name!r}; pass features[{name!r}] "
                    f"[{len(dataset)}, D]"
                )
            a = np.asarray(features[name], dtype=np.float64)
            if a.ndim != 2 or a.shape[0] != len(dataset) or not np.isfinite(a).all():
                raise ValueError(
                    f"features[{name!r}]: need finite [{len(dataset)}, D] (one row per example "
                    f"of the dataset), got shape {a.shape}"
                )
            arrays[name] = a
    runners: dict[int, _Runner] = {}
    out = []
    for cfg in tqdm(configs, desc="linear heads", leave=False, disable=not progress):
        if cfg.pool not in runners:
            position = {i: r for r, i in enumerate(dataset.ids)}
            index = np.array([position[i] for i in pool_dataset(dataset, cfg.pool).ids])

            def feats(model: str, rows: np.ndarray, index=index) -> np.ndarray:
                return arrays[model][index[rows]]

            runners[cfg.pool] = _Runner(dataset, cfg.pool, feats)
        out.append(result_from_arrays(cfg, _limited(runners[cfg.pool].run, cfg), cached=False))
    return out


def _limited(fn, *args):
    """``fn(*args)`` with one BLAS thread: the solves are small, and on a shared 2-core box a
    second thread only waits (measured: 2-10x slower under load)."""
    with threadpool_limits(limits=1, user_api="blas"):
        return fn(*args)


class _StoreFeatures:
    """Features of one (dataset, pool) from the engine's feature store, fetched once per model
    for all the rows a call needs and kept as float64 arrays indexed by pool row."""

    def __init__(self, ds: TextDataset) -> None:
        self.ds = ds
        self.rows: dict[str, np.ndarray] = {}
        self.values: dict[str, np.ndarray] = {}

    def prefetch(self, model: str, rows: np.ndarray) -> None:
        have = self.rows.get(model, np.zeros(0, dtype=np.int64))
        new = np.setdiff1d(rows, have)
        if not len(new):
            return
        x = pooled_features(model, [self.ds.texts[r] for r in new], self.ds.n_classes)
        if model not in self.values:
            self.values[model] = np.full((len(self.ds), x.shape[1]), np.nan)
        self.values[model][new] = x
        self.rows[model] = np.union1d(have, new)

    def __call__(self, model: str, rows: np.ndarray) -> np.ndarray:
        self.prefetch(model, rows)
        return self.values[model][rows]


def run_heads(configs: Any, *, use_cache: bool = True, progress: bool = False) -> list[HeadsResult]:
    """Run (or reload) linear-head configs; one :class:`HeadsResult` per config, in order.

    ``configs``: a :class:`~w2s_utils.engine.heads.config.HeadsConfig` or a list (e.g.
    :func:`~w2s_utils.engine.heads.config.heads_grid`). Every result is cached under its
    :func:`~w2s_utils.engine.heads.config.heads_key` (kind ``"heads"``): a hit is reloaded and
    verified, a miss computed and saved atomically; ``use_cache=False`` recomputes and overwrites.
    For the misses each dataset is loaded once and each model's frozen features are fetched once
    for every row the misses need (:func:`pooled_features`: computed on first use, then read from
    the engine's feature store). ``progress``: a tqdm bar over the misses (off by default).
    """
    configs = _check_configs(configs)
    keys = [heads_key(c) for c in configs]
    out: list[HeadsResult | None] = [None] * len(configs)
    misses = []
    for i, (cfg, key) in enumerate(zip(configs, keys, strict=True)):
        hit = cache.lookup(key, _CACHE_KIND) if use_cache else None
        if hit is None:
            misses.append(i)
        else:
            out[i] = result_from_arrays(cfg, hit, cached=True)
    runners: dict[tuple[str, int], _Runner] = {}
    datasets: dict[str, TextDataset] = {}
    for i in misses:
        cfg = configs[i]
        if cfg.dataset not in datasets:
            datasets[cfg.dataset] = data.load_texts(cfg.dataset)
        rk = (cfg.dataset, cfg.pool)
        if rk not in runners:
            pooled = pool_dataset(datasets[cfg.dataset], cfg.pool)
            runners[rk] = _Runner(pooled, 0, _StoreFeatures(pooled))
    wanted: dict[tuple[tuple[str, int], str], list[np.ndarray]] = {}
    for i in misses:
        rk = (configs[i].dataset, configs[i].pool)
        for model, rows in runners[rk].rows_needed(configs[i]).items():
            wanted.setdefault((rk, model), []).append(rows)
    for (rk, model), rows in wanted.items():
        runners[rk].features.prefetch(model, np.unique(np.concatenate(rows)))
    for i in tqdm(misses, desc="linear heads", leave=False, disable=not progress):
        cfg = configs[i]
        arrays = _limited(runners[(cfg.dataset, cfg.pool)].run, cfg)
        arrays, _ = cache.cached_arrays(
            keys[i], _CACHE_KIND, lambda a=arrays: (a, {"what": "linear heads"}), refresh=True
        )
        out[i] = result_from_arrays(cfg, arrays, cached=False)
    return out  # type: ignore[return-value]
