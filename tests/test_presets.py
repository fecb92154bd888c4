"""Tests for engine.presets: registry, grids, and that chapters build identical configs."""

from __future__ import annotations

import dataclasses

import pytest

from w2s_utils.engine import cache
from w2s_utils.engine.data import DATASET_NAMES
from w2s_utils.engine.experiment import make_config
from w2s_utils.engine.models import MODEL_NAMES, MODES
from w2s_utils.engine.presets import PRESET_NAMES, PRESETS, Preset, get_preset


def test_unknown_preset_lists_names():
    with pytest.raises(ValueError) as err:
        get_preset("gigantic")
    for name in PRESET_NAMES:
        assert name in str(err.value)
    assert get_preset(PRESETS["ci"]) is PRESETS["ci"]


def test_public_presets_and_hidden_test_preset():
    assert {"ci", "paper"} <= set(PRESET_NAMES)
    assert "test" not in PRESET_NAMES and "test" in PRESETS


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_preset_fields_are_valid(name):
    p = get_preset(name)
    assert isinstance(p, Preset)
    assert p.mode in MODES and p.weak_mode in MODES
    assert set(p.ladder_datasets) <= set(DATASET_NAMES)
    assert p.seeds == tuple(sorted(set(p.seeds)))
    for s in (p.weak_settings, p.strong_settings, p.student_settings, p.scratch_settings):
        assert s.loss == "xent"
    if name != "paper":
        assert set(p.ladder_weaks) | {p.strong} <= set(MODEL_NAMES)


def test_ci_grid_matches_the_design():
    p = get_preset("ci")
    assert p.ladder_datasets == ("sarcasm", "rotten_tomatoes")
    assert len(p.ladder_weaks) == 3 and len(p.seeds) == 3
    assert p.strong == "minilm-l6" and p.mode == "cached-trunk"
    assert "bow" in p.ladder_weaks  # a teacher with a different inductive bias
    assert p.weak_settings_for("tiny-transformer") == p.scratch_settings
    paper = get_preset("paper")
    assert paper.mode == "full" and paper.strong.startswith("gpt2")


def test_chapters_build_identical_configs():
    a = make_config("sarcasm", "bow", seed=1, preset="ci")
    b = make_config("sarcasm", "bow", seed=1, preset="ci", loss="xent")
    assert a == b and cache.config_hash(a) == cache.config_hash(b)
    c = make_config("sarcasm", "bow", seed=2, preset="ci")
    assert cache.config_hash(a) != cache.config_hash(c)
    assert a.student_settings.seed == 1 and c.weak_settings.seed == 2
    d = make_config("sarcasm", "bow", seed=1, preset="ci", student_settings={"epochs": 5})
    assert d.student_settings.epochs == 5 and d.strong_settings == a.strong_settings
    e = make_config("sarcasm", "bow", seed=1, preset="ci", loss="reverse_kl")
    assert e.student_settings.loss == "reverse_kl" and e.strong_settings.loss == "xent"
    with pytest.raises(dataclasses.FrozenInstanceError):
        a.seed = 3  # type: ignore[misc]
