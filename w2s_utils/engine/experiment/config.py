"""What one run is: :class:`ExperimentConfig`, :func:`validate_config` and :func:`make_config`."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field, replace
from typing import Any

from w2s_utils._validate import check_int
from w2s_utils.engine import data
from w2s_utils.engine.data import SplitSizes
from w2s_utils.engine.losses import LOSS_NAMES
from w2s_utils.engine.models import MODES, check_model_name
from w2s_utils.engine.presets import LABEL_TYPES, Preset, check_sizes, get_preset
from w2s_utils.engine.train import TrainSettings

__all__ = ["ExperimentConfig", "make_config", "validate_config"]

_SETTINGS = ("weak_settings", "strong_settings", "student_settings")


@dataclass(frozen=True)
class ExperimentConfig:
    """Everything that determines one weak-to-strong run (hashed into the cache key).

    ``mode``/``trainable_layers`` set how the strong model (ceiling and student) trains,
    ``weak_mode``/``weak_trainable_layers`` the weak model (ignored by ``bow`` and
    ``tiny-transformer``). ``loss`` is the student's loss; ``label_type`` whether it sees the weak
    model's soft probabilities or their argmax. ``preset`` records the name of the preset the
    config was built from (the settings themselves are the other fields, so a changed copy of a
    preset gives other configs and other keys). The number of classes is the dataset's. Build
    one with :func:`make_config`.
    """

    dataset: str
    weak: str
    strong: str
    sizes: SplitSizes
    seed: int = 0
    loss: str = "xent"
    label_type: str = "soft"
    mode: str = "cached-trunk"
    trainable_layers: int = 1
    weak_mode: str = "cached-trunk"
    weak_trainable_layers: int = 1
    weak_settings: TrainSettings = field(default_factory=TrainSettings)
    strong_settings: TrainSettings = field(default_factory=TrainSettings)
    student_settings: TrainSettings = field(default_factory=TrainSettings)
    preset: str = "ci"
    #: Temperature on the weak model's probabilities, ``softmax(log p / T)``, before the student
    #: (and the metrics) see them: a positive number, or ``"fit"`` for the temperature that
    #: minimises the weak model's log-loss on the gold labels of its own ``val`` split (which the
    #: student never sees). Left out of the cache key at its default 1.0, so older keys still hold.
    weak_temperature: float | str = 1.0


def validate_config(cfg: ExperimentConfig) -> None:
    """Raise ``ValueError`` for anything wrong with ``cfg`` before any work is done (the
    dataset's own checks, class count and sizes, come when it is loaded, still before training)."""
    if not isinstance(cfg, ExperimentConfig):
        raise ValueError(f"expected an ExperimentConfig (make_config builds one), got {cfg!r}")
    data.check_dataset_name(cfg.dataset)
    check_model_name(cfg.weak)
    check_model_name(cfg.strong)
    if cfg.loss not in LOSS_NAMES:
        raise ValueError(f"loss {cfg.loss!r} is unknown; valid losses: {', '.join(LOSS_NAMES)}")
    if cfg.label_type not in LABEL_TYPES:
        raise ValueError(f"label_type {cfg.label_type!r}; use one of {', '.join(LABEL_TYPES)}")
    for name in ("mode", "weak_mode"):
        if getattr(cfg, name) not in MODES:
            raise ValueError(f"{name}={getattr(cfg, name)!r}; valid modes: {', '.join(MODES)}")
    check_int(cfg.trainable_layers, "trainable_layers", minimum=1)
    check_int(cfg.weak_trainable_layers, "weak_trainable_layers", minimum=1)
    check_int(cfg.seed, "seed", minimum=0)
    if not isinstance(cfg.preset, str) or not cfg.preset.strip():
        raise ValueError(f"preset={cfg.preset!r}: must be the (non-empty) name of a preset")
    if cfg.strong == "bow" and cfg.loss != "xent":
        raise ValueError("strong='bow' trains only with loss='xent'")
    check_sizes(cfg.sizes)
    t = cfg.weak_temperature
    if t == "fit":
        if cfg.sizes.val == 0:
            raise ValueError("weak_temperature='fit' needs a non-empty val split (sizes.val > 0)")
    elif isinstance(t, bool) or not isinstance(t, int | float) or not (0 < t < math.inf):
        raise ValueError(f"weak_temperature={t!r}: must be a positive finite number or 'fit'")
    for name in _SETTINGS:
        if not isinstance(getattr(cfg, name), TrainSettings):
            raise ValueError(f"{name} must be a TrainSettings")


def make_config(
    dataset: str,
    weak: str,
    strong: str | None = None,
    seed: int = 0,
    preset: str | Preset = "ci",
    **overrides: Any,
) -> ExperimentConfig:
    """The :class:`ExperimentConfig` of ``preset`` for (dataset, weak, strong, seed).

    ``preset`` is a registered name or a :class:`~w2s_utils.engine.presets.Preset` object, whose
    own settings are used (sizes, training settings, modes, label type, strong model) and whose
    name is recorded. ``overrides`` replace config fields (``loss``, ``label_type``, ``sizes``,
    ``mode``, ...); a dict given for ``weak_settings``/``strong_settings``/``student_settings``
    updates only the named :class:`TrainSettings` fields. Seeds of all three settings are set to
    ``seed``.
    """
    p = get_preset(preset)
    names = {f.name for f in dataclasses.fields(ExperimentConfig)}
    unknown = set(overrides) - names
    if unknown:
        raise ValueError(
            f"unknown override(s) {sorted(unknown)}; valid: {', '.join(sorted(names))}"
        )
    seed = check_int(seed, "seed", minimum=0)
    base = {
        "weak_settings": p.weak_settings_for(weak),
        "strong_settings": p.strong_settings,
        "student_settings": p.student_settings,
    }
    for name, default in base.items():
        value = overrides.pop(name, None)
        if isinstance(value, dict):
            base[name] = replace(default, **value)
        elif value is not None:
            base[name] = value
    if "sizes" in overrides:
        overrides["sizes"] = check_sizes(overrides["sizes"])
    cfg_kwargs: dict[str, Any] = {
        "dataset": dataset,
        "weak": weak,
        "strong": strong or p.strong,
        "sizes": p.sizes_for(dataset),
        "seed": seed,
        "mode": p.mode,
        "trainable_layers": p.trainable_layers,
        "weak_mode": p.weak_mode,
        "weak_trainable_layers": p.weak_trainable_layers,
        "label_type": p.label_type,
        "preset": p.name,
    }
    cfg_kwargs.update(overrides)
    for name, s in base.items():
        if not isinstance(s, TrainSettings):
            raise ValueError(f"{name} must be a TrainSettings or a dict of its fields")
        s = replace(s, seed=seed)
        loss = cfg_kwargs.get("loss", "xent") if name == "student_settings" else "xent"
        cfg_kwargs[name] = replace(s, loss=loss)
    cfg = ExperimentConfig(**cfg_kwargs)
    validate_config(cfg)
    return cfg
