"""Cache keys of the pipeline: what every key holds, the keys of the shared pieces (a teacher's
and a ceiling's predictions) and of a whole result, and which trainer a model goes through.

A key holds the engine version and the device type (:func:`engine_key`) and everything that
determines the stored arrays; datasets and local model folders enter by content
(:func:`w2s_utils.engine.data.dataset_identity`, :func:`w2s_utils.engine.models.model_identity`).
A piece trained by the stacked trainer has a key of its own (``"trainer": "stacked"``): with
dropout it is another draw of the same procedure. Keys of the registered presets are pinned by
``tests/engine/test_experiment.py::test_default_config_key_is_unchanged``.
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any

from w2s_utils.engine import cache, data
from w2s_utils.engine.device import default_device
from w2s_utils.engine.experiment.config import ExperimentConfig
from w2s_utils.engine.models import is_torch_model, model_identity, trains_everything
from w2s_utils.engine.presets import TRAINERS
from w2s_utils.engine.train import TrainSettings

__all__ = [
    "ENGINE_VERSION",
    "PIECES",
    "check_trainer",
    "engine_key",
    "model_spec",
    "piece_key",
    "piece_model",
    "result_key",
    "settings_key",
    "stacks",
]

#: Bump when what a cached result means changes (training code, metrics, stored arrays).
#: 2: fused AdamW (same update rule, different rounding).
#: 3: test splits in one canonical order (sorted by id) and chosen by content, not by name;
#: datasets and local models keyed by content.
ENGINE_VERSION = 3
#: The shared pieces of a run: the teacher (weak model) and the strong ceiling.
PIECES = ("weak", "ceiling")


def engine_key() -> dict[str, object]:
    """What every cache key of the pipeline holds besides the config: the engine version and the
    device type (a GPU run and a CPU run of one config give different numbers)."""
    return {"engine": ENGINE_VERSION, "device": default_device().type}


def check_trainer(trainer: str) -> str:
    """``trainer`` if it is one of :data:`~w2s_utils.engine.presets.TRAINERS`, else ValueError."""
    if trainer not in TRAINERS:
        raise ValueError(f"trainer={trainer!r}: must be one of {', '.join(TRAINERS)}")
    return trainer


def stacks(name: str, trainer: str) -> bool:
    """Whether ``name``'s training goes through the stacked trainer (torch models only)."""
    return trainer == "stacked" and is_torch_model(name)


def settings_key(s: TrainSettings) -> dict[str, Any]:
    """The training settings as a key holds them (``progress``, a display setting, left out)."""
    d = dataclasses.asdict(s)
    d.pop("progress", None)
    return d


def model_spec(name: str, mode: str, trainable_layers: int) -> dict[str, Any]:
    """A model as a key holds it: its identity, and how it trains where that applies."""
    ident = model_identity(name)
    if trains_everything(name):
        return ident
    return {**ident, "mode": mode, "trainable_layers": trainable_layers}


def piece_model(cfg: ExperimentConfig, role: str) -> tuple[tuple[str, str, int], TrainSettings]:
    """``((name, mode, trainable_layers), settings)`` of the piece ``role`` (one of
    :data:`PIECES`): the weak model and its settings, or the strong model and the ceiling's."""
    if role == "weak":
        return (cfg.weak, cfg.weak_mode, cfg.weak_trainable_layers), cfg.weak_settings
    if role == "ceiling":
        return (cfg.strong, cfg.mode, cfg.trainable_layers), cfg.strong_settings
    raise ValueError(f"role={role!r}: must be one of {', '.join(PIECES)}")


def piece_key(cfg: ExperimentConfig, role: str, trainer: str) -> dict[str, Any]:
    """Cache key of the piece ``role`` of ``cfg`` trained by ``trainer``: dataset, sizes, seed,
    model and settings only, so every config sharing them (every student loss, label type and
    teacher temperature of a teacher; every teacher of a ceiling) shares one entry."""
    check_trainer(trainer)
    (name, mode, layers), settings = piece_model(cfg, role)
    key = {
        **engine_key(),
        "dataset": data.dataset_identity(cfg.dataset),
        "sizes": cfg.sizes,
        "seed": cfg.seed,
        "model": model_spec(name, mode, layers),
        "settings": settings_key(settings),
    }
    if stacks(name, trainer):
        key["trainer"] = "stacked"
    return key


def result_key(cfg: ExperimentConfig, trainer: str) -> dict[str, Any]:
    """Cache key of the whole result of ``cfg`` whose student is trained by ``trainer``: the
    whole config (``progress`` and a default ``weak_temperature`` left out, inputs by content)."""
    check_trainer(trainer)
    key = {**engine_key(), "config": cfg}
    key = json.loads(cache.canonical_json(key))
    for name in ("weak_settings", "strong_settings", "student_settings"):
        key["config"][name].pop("progress", None)
    if cfg.weak_temperature == 1.0:  # the default keeps the keys of runs made before the field
        key["config"].pop("weak_temperature")
    # inputs by content: a local data file or model folder is named by its sha256, not its path
    key["config"]["dataset"] = data.dataset_identity(cfg.dataset)
    for name in ("weak", "strong"):
        key["config"][name] = model_identity(getattr(cfg, name))
    if stacks(cfg.strong, trainer):
        key["trainer"] = "stacked"
    return key
