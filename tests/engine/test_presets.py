"""Tests for engine.presets: registry, grids, that chapters build identical configs, and that a
preset is a value (a user's own object runs with its own settings, never looked up by name)."""

from __future__ import annotations

import dataclasses

import pytest

from w2s_utils.engine import cache, data, presets
from w2s_utils.engine.data import DATASET_NAMES, SplitSizes
from w2s_utils.engine.experiment import make_config, result_key, run_grid
from w2s_utils.engine.models import MODEL_NAMES, MODES
from w2s_utils.engine.presets import (
    GRID_NAMES,
    PRESET_NAMES,
    PRESETS,
    TRAINERS,
    KLGrid,
    Preset,
    get_preset,
)


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


# ------------------------------------------------------------------------- a preset is a value


def _mine() -> Preset:
    """A user's own preset: a new name, other sizes and seeds, another student length."""
    ci = get_preset("ci")
    return dataclasses.replace(
        ci,
        name="mine",
        sizes=SplitSizes(weak_train=400, w2s_train=800, val=200, test=600),
        seeds=(4, 7),
        student_settings=dataclasses.replace(ci.student_settings, epochs=3),
    )


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_grids_resolve_the_ladder_in_one_place(name):
    """Every chapter grid comes back with no empty tuple: what was empty is the ladder's, what
    was given stays; remedy teachers/seeds default to the grid's own."""
    p = get_preset(name)
    ladder = {"datasets": p.ladder_datasets, "weaks": p.ladder_weaks, "seeds": p.seeds}
    for chapter in GRID_NAMES:
        raw, g = getattr(p, chapter), p.grid(chapter)
        for part, default in ladder.items():
            if hasattr(raw, part):
                assert getattr(g, part) == (getattr(raw, part) or default), (chapter, part)
                assert getattr(g, part)
    oo, raw = p.grid("overoptimization"), p.overoptimization
    assert oo.remedy_weaks == (raw.remedy_weaks or oo.weaks)
    assert oo.remedy_seeds == (raw.remedy_seeds or oo.seeds)
    with pytest.raises(ValueError, match="calibration, overoptimization"):
        p.grid("ladder")


def test_make_config_uses_the_objects_own_settings(monkeypatch):
    """make_config(preset=obj) reads the object, never the registry: with the registry emptied
    it still works, and a changed copy of ci gives other configs and other cache keys."""
    monkeypatch.setenv("W2S_DEVICE", "cpu")
    mine = _mine()
    monkeypatch.setattr(presets, "PRESETS", {})  # any lookup by name now fails
    cfg = make_config("sarcasm", "bow", seed=4, preset=mine)
    assert cfg.preset == "mine" and cfg.sizes == mine.sizes
    assert cfg.student_settings.epochs == 3 and cfg.student_settings.seed == 4
    with pytest.raises(ValueError, match="unknown"):
        make_config("sarcasm", "bow", preset="ci")
    monkeypatch.undo()
    monkeypatch.setenv("W2S_DEVICE", "cpu")
    ci = get_preset("ci")
    copy = dataclasses.replace(ci, student_settings=mine.student_settings)  # same name "ci"
    a, b = make_config("sarcasm", "bow", preset=ci), make_config("sarcasm", "bow", preset=copy)
    assert (
        a.preset == b.preset == "ci" and b.student_settings.epochs == 3 != a.student_settings.epochs
    )
    for trainer in TRAINERS:
        assert cache.config_hash(result_key(a, trainer)) != cache.config_hash(
            result_key(b, trainer)
        )
    # a copy that changes only the trainer: same configs, the stacked keys of its torch models
    stacked = dataclasses.replace(ci, trainer="stacked")
    c = make_config("sarcasm", "bow", preset=stacked)
    assert c == a and result_key(c, stacked.trainer) != result_key(a, ci.trainer)


@pytest.mark.slow
def test_run_grid_builds_configs_from_the_object(monkeypatch):
    """run_grid(preset=obj): the object's ladder, seeds, sizes and trainer, with no lookup by
    name (the registry is emptied); the executor receives the object's trainer."""
    seen = []

    class Recorder:
        def submit(self, fn, cfg, **kwargs):
            seen.append(kwargs)

            class F:
                def result(self):
                    return cfg

            return F()

    mine = dataclasses.replace(_mine(), ladder_weaks=("bow", "minilm-l1"), trainer="loop")
    monkeypatch.setattr(presets, "PRESETS", {})
    out = run_grid(preset=mine, executor=Recorder(), progress=False)
    assert [(c.dataset, c.seed, c.weak) for c in out] == [
        (d, s, w) for d in mine.ladder_datasets for s in mine.seeds for w in mine.ladder_weaks
    ]
    assert {c.sizes for c in out} == {mine.sizes} and {c.preset for c in out} == {"mine"}
    assert {c.student_settings.epochs for c in out} == {3}
    assert all(kw["trainer"] == "loop" for kw in seen)


@pytest.mark.parametrize(
    "change,match",
    [
        ({"trainer": "fast"}, "trainer"),
        ({"max_stack": 0}, "max_stack"),
        ({"ladder_weaks": ("bow", "bow")}, "ladder_weaks: bow given more than once"),
        ({"seeds": (0, 0)}, "duplicate seed"),
        ({"sizes": SplitSizes(10, 0, 5, 5)}, "w2s_train"),
        ({"mode": "lora"}, "mode"),
        ({"label_type": "fuzzy"}, "label_type"),
        ({"name": " "}, "name"),
    ],
)
def test_a_bad_preset_is_refused_when_built(change, match):
    with pytest.raises(ValueError, match=match):
        dataclasses.replace(get_preset("ci"), **change)


@pytest.mark.parametrize(
    "kwargs,match",
    [
        ({"weaks": ["bow", "bow"]}, "weaks: bow given more than once"),
        ({"datasets": ["sarcasm", "sarcasm"]}, "datasets: sarcasm given more than once"),
        ({"seeds": [1, 1]}, "duplicate seed"),
        ({"weaks": []}, "weaks is empty"),
    ],
)
def test_run_grid_refuses_repeated_entries(monkeypatch, kwargs, match):
    def boom(*a, **k):
        raise AssertionError("work started before validation")

    monkeypatch.setattr(data, "load_texts", boom)
    args = {"datasets": "sarcasm", "weaks": "bow", "seeds": 1, **kwargs}
    with pytest.raises(ValueError, match=match):
        run_grid(preset="test", progress=False, **args)


def test_calibration_grid_in_presets():
    ci = get_preset("ci").calibration
    assert 1.0 in ci.temperatures and min(ci.temperatures) < 1 < max(ci.temperatures)
    assert ci.calibrated and ci.datasets and ci.weaks and ci.seeds
    paper = get_preset("paper").calibration
    assert len(paper.temperatures) >= len(ci.temperatures)


def test_presets_fill_the_squared_loss_grid():
    ci, paper = get_preset("ci").grid("squared_loss"), get_preset("paper").grid("squared_loss")
    assert ci.n_transfer == 100 and ci.target_layers == 5 and ci.d_in == 8 and ci.width == 16
    assert paper.rep_steps > ci.rep_steps and len(ci.seeds) >= 10 and ci.datasets
    for g in (ci, paper, get_preset("gpu").grid("squared_loss")):
        assert g.text_test + g.text_weak_train + g.text_train <= g.text_n


@pytest.mark.parametrize("name", ["ci", "paper", "gpu"])
def test_kl_grid_in_presets(name):
    p = get_preset(name)
    g = p.grid("kl")
    assert isinstance(g, KLGrid)
    assert g.n_instances >= 1 and g.n_trials >= 1 and g.planted_n >= 10
    assert len(g.planted_seeds) >= 1 and g.datasets and g.weaks and g.seeds
    for w in g.weaks:
        assert w in p.ladder_weaks + p.extra_weaks
    for d in g.datasets:
        assert d in p.ladder_datasets
