"""What one linear-head run is: :class:`HeadsConfig`, its validation, cache key and grids."""

from __future__ import annotations

import dataclasses
import itertools
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from w2s_utils._validate import check_int, check_number, check_seeds
from w2s_utils.engine import cache, data
from w2s_utils.engine.data import SplitSizes
from w2s_utils.engine.models import MODELS, check_model_name, model_identity

__all__ = [
    "BOW",
    "BOW_C",
    "HEADS_VERSION",
    "LOSSES",
    "POOLED_L2",
    "HeadsConfig",
    "check_heads_config",
    "heads_grid",
    "heads_key",
    "teacher_l2_of",
]

#: Bump when what a cached head result means changes (solvers, stored arrays, label rules).
HEADS_VERSION = 1
#: Student losses: soft cross-entropy (forward KL to the teacher) and E KL(student || teacher).
LOSSES = ("forward", "reverse")
LABEL_TYPES = ("soft", "hard")
TRUTHS = ("gold", "planted")
TEACHER_TARGETS = ("labels", "soft")
#: The weak-feature name of the TF-IDF bag of words (a sparse, unstandardised representation).
BOW = "bow"
#: Default L2 of a teacher on standardised pooled features (and of the ceiling): the best test
#: cross-entropy of MiniLM-L1 teachers with 2,000 examples on rotten_tomatoes among 1e-3 .. 3.
POOLED_L2 = 0.1
#: Default scikit-learn ``C`` of a TF-IDF teacher (``l2 = 1 / (C n)``): the best test
#: cross-entropy at 500 and 2,000 examples on rotten_tomatoes and sarcasm.
BOW_C = 4.0


@dataclass(frozen=True)
class HeadsConfig:
    """One weak-to-strong run with linear heads on frozen features (hashed into the cache key).

    Data: ``dataset`` (a name, reference or path of :func:`w2s_utils.engine.data.load_texts`),
    ``sizes`` of the four splits and ``seed`` (:func:`w2s_utils.engine.data.make_splits`: the
    seed draws weak_train / w2s_train / val; the test split is the same for every seed, sorted by
    id). The splits are cut from the ``pool`` texts of smallest id (0: the whole dataset), the
    rule of the planted tasks' text subset, so that their cached features serve both.

    Representations: ``weak`` (the teacher's features: a pretrained model's mean-pooled
    final-layer features, e.g. ``"minilm-l1"``, or ``"bow"``, TF-IDF fitted on the teacher's
    training texts) and ``strong`` (the student's and the ceiling's pooled features).

    Truth: ``"gold"`` (the dataset's labels) or ``"planted"`` (``F* = softmax(head(phi_s(x)) /
    planted_temperature)``, a logistic head with L2 ``planted_l2`` fitted on the gold labels of the
    whole pool on the strong features; every text's label is then drawn from ``F*`` by a
    content-defined uniform, the same for every seed). With a planted truth ``Err`` is exact.

    Teacher: trained on the first ``teacher_n`` examples of ``weak_train`` (0: all of it), with
    ``teacher_targets = "labels"`` (the truth's labels, a fraction ``label_noise`` of them moved
    to another class, chosen by the seed; the flipped sets are nested in ``label_noise``) or
    ``"soft"`` (planted truth only: ``softmax(log F* + target_noise * xi)``, ``xi ~ N(0, I)`` per
    example and class: the Bernoulli regression reading for two classes), L2 ``teacher_l2``
    (``None``: :func:`teacher_l2_of`). Its probabilities are tempered,
    ``softmax(log p / teacher_temperature)`` (``"fit"``: the temperature that minimises its
    log-loss on the ``val`` labels), and then are ``F_w`` for the student and for every metric.

    Student: a head on ``strong`` features of ``w2s_train`` trained on ``F_w``, ``loss``
    ``"forward"`` (soft cross-entropy, ``label_type`` ``"soft"`` or ``"hard"`` = the argmax) or
    ``"reverse"`` (``E KL(F_sw || F_w)``, soft labels only), L2 ``student_l2``. Ceiling: a head on
    ``strong`` features of ``w2s_train`` trained on the truth's labels, L2 ``ceiling_l2``.
    """

    dataset: str
    sizes: SplitSizes
    seed: int = 0
    pool: int = 8000
    weak: str = "minilm-l1"
    strong: str = "minilm-l6"
    truth: str = "gold"
    planted_temperature: float = 1.0
    planted_l2: float = 1e-2
    teacher_n: int = 0
    label_noise: float = 0.0
    teacher_targets: str = "labels"
    target_noise: float = 0.0
    teacher_temperature: float | str = 1.0
    teacher_l2: float | None = None
    loss: str = "forward"
    label_type: str = "soft"
    student_l2: float = 1e-4
    ceiling_l2: float = POOLED_L2


def _choice(value: Any, options: Sequence[str], name: str) -> None:
    if value not in options:
        raise ValueError(f"{name}: must be one of {', '.join(map(repr, options))}, got {value!r}")


def _check_feature_model(name: Any, role: str, allow_bow: bool) -> None:
    if not isinstance(name, str) or not name:
        raise ValueError(f"{role}: must be a model name, got {name!r}")
    if name == BOW and allow_bow:
        return
    if name in MODELS and not MODELS[name].pretrained:
        usable = [m for m, spec in MODELS.items() if spec.pretrained]
        extra = " or 'bow'" if allow_bow else ""
        raise ValueError(
            f"{role}: {name!r} has no frozen pretrained features; pass a pretrained model such as "
            f"{', '.join(usable)}{extra}"
        )
    check_model_name(name)


def check_heads_config(cfg: Any) -> HeadsConfig:
    """``cfg`` if it is a valid :class:`HeadsConfig`, else ``ValueError`` naming the field and
    what to pass. Does not load the dataset (the sizes are checked against it by
    :func:`w2s_utils.engine.data.make_splits`, whose errors name sizes that fit)."""
    if not isinstance(cfg, HeadsConfig):
        raise ValueError(f"config: must be a HeadsConfig, got {type(cfg).__name__}")
    data.check_dataset_name(cfg.dataset)
    if not isinstance(cfg.sizes, SplitSizes):
        raise ValueError(f"sizes: must be a SplitSizes, got {type(cfg.sizes).__name__}")
    for name in data.SPLIT_NAMES:
        minimum = 0 if name == "val" else 1
        check_int(getattr(cfg.sizes, name), f"sizes.{name}", minimum=minimum)
    check_int(cfg.seed, "seed", minimum=0)
    check_int(cfg.pool, "pool", minimum=0)
    _check_feature_model(cfg.weak, "weak", allow_bow=True)
    _check_feature_model(cfg.strong, "strong", allow_bow=False)
    _choice(cfg.truth, TRUTHS, "truth")
    check_number(cfg.planted_temperature, "planted_temperature", lo=0.0, lo_open=True)
    check_number(cfg.planted_l2, "planted_l2", lo=0.0, lo_open=True)
    check_int(cfg.teacher_n, "teacher_n", minimum=0, maximum=cfg.sizes.weak_train)
    check_number(cfg.label_noise, "label_noise", lo=0.0, hi=1.0)
    _choice(cfg.teacher_targets, TEACHER_TARGETS, "teacher_targets")
    check_number(cfg.target_noise, "target_noise", lo=0.0)
    if cfg.teacher_targets == "soft":
        if cfg.truth != "planted":
            raise ValueError(
                "teacher_targets: 'soft' needs truth='planted' (noisy copies of a known F*); with "
                "gold labels use teacher_targets='labels'"
            )
        if cfg.label_noise:
            raise ValueError(
                "label_noise: flips labels, so it needs teacher_targets='labels'; for soft targets "
                "use target_noise"
            )
    elif cfg.target_noise:
        raise ValueError("target_noise: acts on soft targets; pass teacher_targets='soft'")
    t = cfg.teacher_temperature
    if t != "fit":
        check_number(t, "teacher_temperature", lo=0.0, lo_open=True)
    elif cfg.sizes.val == 0:
        raise ValueError(
            "teacher_temperature: 'fit' fits it on the val split's labels, but sizes.val is 0; "
            "give val examples or pass a number"
        )
    if cfg.teacher_l2 is not None:
        check_number(cfg.teacher_l2, "teacher_l2", lo=0.0, lo_open=True)
    _choice(cfg.loss, LOSSES, "loss")
    _choice(cfg.label_type, LABEL_TYPES, "label_type")
    if cfg.loss == "reverse" and cfg.label_type == "hard":
        raise ValueError(
            "label_type: a reverse-KL student needs soft labels (KL(q || one-hot) is infinite for "
            "every q that is not one-hot); pass label_type='soft' or loss='forward'"
        )
    check_number(cfg.student_l2, "student_l2", lo=0.0)
    if cfg.student_l2 == 0 and cfg.label_type == "hard":
        raise ValueError(
            "student_l2: hard labels need student_l2 > 0 (a separable sample has no finite "
            "optimum without it)"
        )
    check_number(cfg.ceiling_l2, "ceiling_l2", lo=0.0, lo_open=True)
    return cfg


def teacher_l2_of(cfg: HeadsConfig) -> float:
    """The teacher's L2 (on a mean loss): ``cfg.teacher_l2``, or when ``None`` the representation's
    default: :data:`POOLED_L2` on standardised pooled features, ``1 / (BOW_C n)`` on TF-IDF rows
    (``n`` = the teacher's training examples; a constant scikit-learn ``C``, as the engine's
    bag-of-words classifier has)."""
    check_heads_config(cfg)
    if cfg.teacher_l2 is not None:
        return float(cfg.teacher_l2)
    if cfg.weak == BOW:
        return 1.0 / (BOW_C * (cfg.teacher_n or cfg.sizes.weak_train))
    return POOLED_L2


def heads_key(cfg: HeadsConfig) -> dict[str, Any]:
    """The cache key of a run: every field of ``cfg`` (the dataset by content,
    :func:`w2s_utils.engine.data.dataset_identity`; the models by
    :func:`w2s_utils.engine.models.model_identity`) and :data:`HEADS_VERSION`.
    :func:`w2s_utils.engine.cache.cached_arrays` adds the versions of the packages that change
    numbers."""
    check_heads_config(cfg)
    config = json.loads(cache.canonical_json(cfg))
    config["dataset"] = data.dataset_identity(cfg.dataset)
    config["strong"] = model_identity(cfg.strong)
    if cfg.weak != BOW:
        config["weak"] = model_identity(cfg.weak)
    return {"what": "linear heads", "version": HEADS_VERSION, "config": config}


def heads_grid(base: HeadsConfig, seeds: Any, **axes: Sequence[Any]) -> list[HeadsConfig]:
    """Every combination of ``axes`` (field name -> values) applied to ``base``, for every seed.

    Example: ``heads_grid(base, 10, label_noise=(0.0, 0.2), loss=("forward", "reverse"))`` gives
    40 configs, ordered by the axes (first axis slowest) and then by seed. ``seeds``: a count or a
    list of distinct seeds (:func:`w2s_utils._validate.check_seeds`). Each config is validated.
    """
    check_heads_config(base)
    seeds = check_seeds(seeds)
    names = {f.name for f in dataclasses.fields(HeadsConfig)}
    for name, values in axes.items():
        if name not in names or name == "seed":
            raise ValueError(
                f"{name}: is not a field of HeadsConfig to vary (seeds go in seeds=); fields: "
                f"{', '.join(sorted(names - {'seed'}))}"
            )
        if isinstance(values, str | bytes) or not isinstance(values, Sequence) or not values:
            raise ValueError(f"{name}: pass a non-empty list of values, got {values!r}")
    out = []
    for combo in itertools.product(*axes.values()):
        changed = dict(zip(axes, combo, strict=True))
        for s in seeds:
            out.append(check_heads_config(dataclasses.replace(base, **changed, seed=s)))
    return out
