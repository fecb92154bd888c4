"""The experiment settings in one readable place: ``ci`` (CPU, minutes), ``gpu`` (a GPU,
offline), ``paper`` (GPU, hub models) and ``test`` (unit tests, seconds).

A :class:`Preset` holds the split sizes, the training settings of the weak model, the strong
ceiling and the student, the training modes, how grids train (``trainer``), and the chapter grids
(``ladder_datasets``, ``ladder_weaks``, ``strong``, ``seeds``; one grid per later chapter).
Chapters that use the same preset and grid build the same
:class:`~w2s_utils.engine.experiment.ExperimentConfig` objects and therefore hit the same cache
entries.

A preset is a value: every function that takes ``preset=`` takes a :class:`Preset` object as well
as a registered name, and uses the object's own settings. Bring your own by changing a copy::

    mine = dataclasses.replace(get_preset("ci"), name="mine", seeds=(0, 1),
                               sizes=SplitSizes(weak_train=400, w2s_train=800, val=200, test=600))
    run_grid(preset=mine)

Its configs record the name ``"mine"`` and its settings, so their cache keys are their own. The
chapter grids resolve "empty = the ladder's" in one place, :meth:`Preset.grid`.

``ci`` budget (2 CPU cores): one cold pipeline run (weak, ceiling, student) <= 3 minutes, and the
chapter-1 grid (2 datasets x 3 weak models x 3 seeds) <= 10 minutes cold. It reaches that by
training the strong model (MiniLM-L6) in ``cached-trunk`` mode: its bottom 4 layers run once per
text and are cached; the top 2 layers + head train. (With only the top layer trainable the strong
ceiling on sarcasm was 0.82, no better than a 1-layer teacher, and the bag-of-words teacher left no
room to gain: PGR -0.08 over 3 seeds. Two trainable layers: ceiling 0.87, PGR 0.29 on seed 0.)
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields, replace
from typing import Any

import numpy as np

from w2s_utils._validate import check_int, check_seeds
from w2s_utils.engine.data import SPLIT_NAMES, SplitSizes
from w2s_utils.engine.models import MODES
from w2s_utils.engine.train import TrainSettings

__all__ = [
    "GRID_NAMES",
    "LABEL_TYPES",
    "PRESETS",
    "PRESET_NAMES",
    "TRAINERS",
    "CalibrationGrid",
    "OveroptimizationGrid",
    "OveroptimizationRemedy",
    "SquaredLossGrid",
    "KLGrid",
    "Preset",
    "check_distinct",
    "check_sizes",
    "get_preset",
]

#: How the student sees its teacher: its soft probabilities or their argmax.
LABEL_TYPES = ("soft", "hard")
#: How a run's models are trained: ``"loop"`` one at a time (the reference,
#: :func:`w2s_utils.engine.train.train_classifier`), ``"stacked"`` several runs of one
#: architecture together (:func:`w2s_utils.engine.batched.train_stacked`). Stacked results are
#: cached under their own keys (the key gains ``"trainer": "stacked"``): with dropout they are
#: another draw of the same procedure, not the loop's numbers.
TRAINERS = ("loop", "stacked")
#: The chapter grids a preset holds (attribute names; :meth:`Preset.grid`).
GRID_NAMES = ("calibration", "overoptimization", "squared_loss", "kl")


def check_sizes(sizes: Any, name: str = "sizes") -> SplitSizes:
    """``sizes`` as a :class:`SplitSizes` (a dict of its fields is accepted): whole numbers >= 0,
    ``weak_train``, ``w2s_train`` and ``test`` > 0 (``val`` may be 0: no early stopping, no
    fitted temperature). ``ValueError`` naming the field otherwise."""
    if isinstance(sizes, dict):
        unknown = set(sizes) - set(SPLIT_NAMES)
        if unknown:
            raise ValueError(
                f"{name}: unknown field(s) {sorted(unknown)}; the splits are "
                f"{', '.join(SPLIT_NAMES)}"
            )
        sizes = SplitSizes(**sizes)
    if not isinstance(sizes, SplitSizes):
        raise ValueError(f"{name} must be a SplitSizes (or a dict of its fields), got {sizes!r}")
    for split in SPLIT_NAMES:
        n = getattr(sizes, split)
        if isinstance(n, bool) or not isinstance(n, int | np.integer) or n < 0:
            raise ValueError(f"{name}.{split}={n!r} must be a non-negative integer")
        if split != "val" and n == 0:
            raise ValueError(f"{name}.{split}=0: the pipeline needs a non-empty {split} split")
    return sizes


def check_distinct(values: Any, name: str) -> tuple[Any, ...]:
    """``values`` as a tuple, ``ValueError`` when an entry repeats (a repeated dataset or teacher
    would run one cell twice and count it as two)."""
    items = tuple(values)
    dupes = sorted({str(v) for v in items if items.count(v) > 1})
    if dupes:
        raise ValueError(
            f"{name}: {', '.join(dupes)} given more than once; a repeated entry runs one cell "
            "twice and counts it twice: list each once"
        )
    return items


# ---------------------------------------------------------- per-chapter grids (chapters 3-6)
# Each chapter reads its own grid from the preset; the ci and paper presets fill them in. A grid's
# datasets/weaks/seeds default to the chapter-1 ladder (empty tuple = "the ladder's"), so chapters
# share cached runs.


@dataclass(frozen=True)
class CalibrationGrid:
    """Chapter 3: teachers made over- and under-confident by a temperature on their logits.

    ``temperatures`` act on the teacher's probabilities as ``softmax(log p / T)`` before its
    student trains (``ExperimentConfig.weak_temperature``); ``calibrated`` adds a teacher whose
    temperature is fitted on the gold labels of its own ``val`` split (``weak_temperature="fit"``).
    """

    temperatures: tuple[float, ...] = (0.5, 1.0, 2.0)
    calibrated: bool = True
    datasets: tuple[str, ...] = ()
    weaks: tuple[str, ...] = ()
    seeds: tuple[int, ...] = ()


@dataclass(frozen=True)
class OveroptimizationRemedy:
    """One student run of chapter 4 beside the long soft-label run (``name`` labels it).

    ``label_type`` ``"soft"``/``"hard"`` weak labels; ``loss`` the student loss (``"aux_conf"``:
    Burns et al.'s auxiliary confidence loss with maximum weight ``alpha_max``, reached by a
    linear ramp over the first ``warmup_frac`` of the steps); ``lr_scale`` multiplies the grid's
    learning rate and ``epochs`` (``None``: the grid's) replaces its length.
    """

    name: str
    label_type: str = "soft"
    loss: str = "xent"
    alpha_max: float = 0.75
    warmup_frac: float = 0.2
    lr_scale: float = 1.0
    epochs: float | None = None


@dataclass(frozen=True)
class OveroptimizationGrid:
    """Chapter 4: students trained long on weak labels, evaluated along training.

    Every (dataset, weak, seed) gets one long soft-label student run of ``epochs`` epochs at
    learning rate ``lr`` on the first ``student_train`` weak-labelled ``w2s_train`` texts
    (0: all), evaluated every ``eval_every`` steps (0: every epoch) on the first ``eval_test``
    test examples (0: all). The teachers in ``remedy_weaks`` (empty: all) also get one run per
    entry of ``remedies`` and seed of ``remedy_seeds`` (empty: ``seeds``). Weak-label early
    stopping (``patience`` evaluations) and a fixed shorter budget (the long run's state after
    ``short_epochs``) are read off the long run's curve.
    """

    datasets: tuple[str, ...] = ()
    weaks: tuple[str, ...] = ()
    seeds: tuple[int, ...] = ()
    student_train: int = 0
    eval_test: int = 0
    epochs: float = 10.0
    lr: float = 3e-3
    warmup_frac: float = 0.05
    eval_every: int = 0
    patience: int = 3
    short_epochs: float = 2.0
    remedy_weaks: tuple[str, ...] = ()
    remedy_seeds: tuple[int, ...] = ()
    remedies: tuple[OveroptimizationRemedy, ...] = ()


@dataclass(frozen=True)
class SquaredLossGrid:
    """Chapter 5: Charikar et al.'s synthetic experiment and the feature-space regressions.

    Synthetic (:func:`w2s_utils.engine.regression.charikar_synthetic`): inputs ``N(0, I_d_in)``;
    target representation a random ``target_layers``-layer ReLU MLP of width ``width``; strong and
    weak representations ``strong_layers``/``weak_layers``-layer ReLU MLPs learned on
    ``n_rep_tasks`` tasks of ``n_per_task`` inputs (Adam, ``rep_steps`` steps of ``rep_batch``
    inputs per task, learning rate ``rep_lr``); ``n_transfer`` transfer tasks with ``n_train``
    training and ``n_test`` fresh test inputs. The defaults follow Charikar et al.'s reference
    notebook except the optimiser (it runs minibatch AdamW for 1,000 epochs per network and head,
    from PyTorch's default initialisation; we use He initialisation and 8,000 Adam steps) and the
    number of representation tasks: 32 instead of its 10, so that the tasks constrain all 16
    output directions of the target representation (10 heads fix only 10 of them; the learned
    strong representation's ceiling on fresh tasks is then markedly worse).
    Real text (:func:`w2s_utils.engine.regression.text_regressions`): ``text_n`` texts per dataset,
    the first ``text_test`` the fixed test set; each seed splits the rest into ``text_weak_train``
    texts for the teacher and ``text_train`` (disjoint) for the student and the ceiling, as the
    weak-to-strong pipeline does; weak features ``text_weaks``; weak heads ridge with
    ``weak_ridge``; ``text_planted`` random planted heads besides the gold-like one.
    ``datasets``/``seeds`` empty: the chapter-1 ladder's.
    """

    seed: int = 0
    d_in: int = 8
    width: int = 16
    target_layers: int = 5
    strong_layers: int = 8
    weak_layers: int = 2
    n_rep_tasks: int = 32
    n_per_task: int = 2000
    rep_steps: int = 8000
    rep_batch: int = 100
    rep_lr: float = 1e-2
    n_transfer: int = 100
    n_train: int = 2000
    n_test: int = 2000
    text_n: int = 4000
    text_test: int = 1000
    text_weak_train: int = 1000
    text_train: int = 2000
    text_weaks: tuple[str, ...] = ("minilm-l1", "bow")
    weak_ridge: float = 1.0
    text_planted: int = 2
    datasets: tuple[str, ...] = ()
    seeds: tuple[int, ...] = ()


@dataclass(frozen=True)
class KLGrid:
    """Chapter 6: forward- and reverse-KL students, planted mixture tasks.

    ``datasets``/``weaks``/``seeds``: the reverse-KL student runs (the forward-KL ones are the
    chapter-1 runs of the same cells). ``n_instances``: random instances per numeric check;
    ``n_trials``: trials per (statement, construction) of the non-guarantee search;
    ``planted_n`` texts, ``planted_seeds`` and the weak feature model ``planted_weak`` of the
    planted mixture task (the strong one is the preset's ``strong``).
    """

    datasets: tuple[str, ...] = ()
    weaks: tuple[str, ...] = ()
    seeds: tuple[int, ...] = ()
    n_instances: int = 200
    n_trials: int = 40
    planted_n: int = 4000
    planted_seeds: tuple[int, ...] = (0, 1, 2, 3, 4, 5, 6, 7)
    planted_weak: str = "minilm-l1"


@dataclass(frozen=True)
class Preset:
    """All settings of one experiment scale.

    ``weak_settings`` train pretrained weak models (and ``bow``, which reads only ``seed`` and
    ``loss``); ``scratch_settings`` train ``tiny-transformer``; ``strong_settings`` the strong
    ceiling on gold labels; ``student_settings`` the strong student on weak labels.
    """

    name: str
    description: str
    sizes: SplitSizes
    strong: str
    ladder_weaks: tuple[str, ...]
    ladder_datasets: tuple[str, ...]
    seeds: tuple[int, ...]
    mode: str
    trainable_layers: int
    weak_mode: str
    weak_trainable_layers: int
    weak_settings: TrainSettings
    scratch_settings: TrainSettings
    strong_settings: TrainSettings
    student_settings: TrainSettings
    label_type: str = "soft"
    hidden: bool = False
    extra_weaks: tuple[str, ...] = field(default_factory=tuple)
    calibration: CalibrationGrid = CalibrationGrid()
    overoptimization: OveroptimizationGrid = OveroptimizationGrid()
    squared_loss: SquaredLossGrid = SquaredLossGrid()
    kl: KLGrid = KLGrid()
    #: per-dataset split sizes ((dataset, SplitSizes), ...) where one ``sizes`` does not fit all
    dataset_sizes: tuple[tuple[str, SplitSizes], ...] = ()
    #: how grids train: ``"loop"`` one run at a time (the reference), ``"stacked"`` up to
    #: ``max_stack`` runs of one architecture together (:mod:`w2s_utils.engine.batched`)
    trainer: str = "loop"
    max_stack: int = 16

    def __post_init__(self) -> None:
        """Check the fields a run reads (names of datasets and models are checked when configs
        are built); ``ValueError`` naming the field."""
        if not isinstance(self.name, str) or not self.name.strip():
            raise ValueError(f"Preset.name={self.name!r}: must be a non-empty string")
        where = f"preset {self.name!r}"
        check_sizes(self.sizes, f"{where}: sizes")
        for ds, sizes in self.dataset_sizes:
            check_sizes(sizes, f"{where}: dataset_sizes[{ds!r}]")
        check_distinct([ds for ds, _ in self.dataset_sizes], f"{where}: dataset_sizes")
        for attr in ("ladder_datasets", "ladder_weaks", "extra_weaks"):
            check_distinct(getattr(self, attr), f"{where}: {attr}")
        if not self.ladder_datasets or not self.ladder_weaks:
            raise ValueError(f"{where}: ladder_datasets and ladder_weaks must be non-empty")
        check_seeds(self.seeds, f"{where}: seeds")
        for attr in ("mode", "weak_mode"):
            if getattr(self, attr) not in MODES:
                raise ValueError(
                    f"{where}: {attr}={getattr(self, attr)!r}; valid modes: {', '.join(MODES)}"
                )
        check_int(self.trainable_layers, f"{where}: trainable_layers", minimum=1)
        check_int(self.weak_trainable_layers, f"{where}: weak_trainable_layers", minimum=1)
        for attr in ("weak_settings", "scratch_settings", "strong_settings", "student_settings"):
            if not isinstance(getattr(self, attr), TrainSettings):
                raise ValueError(f"{where}: {attr} must be a TrainSettings")
        if self.label_type not in LABEL_TYPES:
            raise ValueError(
                f"{where}: label_type={self.label_type!r}; use one of {', '.join(LABEL_TYPES)}"
            )
        if self.trainer not in TRAINERS:
            raise ValueError(f"{where}: trainer={self.trainer!r}; use one of {', '.join(TRAINERS)}")
        check_int(self.max_stack, f"{where}: max_stack", minimum=1)
        for attr in GRID_NAMES:
            g = getattr(self, attr)
            for part in ("datasets", "weaks"):
                check_distinct(getattr(g, part, ()), f"{where}: {attr}.{part}")
            if getattr(g, "seeds", ()):
                check_seeds(g.seeds, f"{where}: {attr}.seeds")

    def weak_settings_for(self, weak: str) -> TrainSettings:
        """Training settings of weak model ``weak`` (from-scratch models get their own)."""
        return self.scratch_settings if weak == "tiny-transformer" else self.weak_settings

    def sizes_for(self, dataset: str) -> SplitSizes:
        """Split sizes of ``dataset``: its entry in ``dataset_sizes``, else ``sizes``."""
        return dict(self.dataset_sizes).get(dataset, self.sizes)

    def grid(self, chapter: str) -> Any:
        """The grid of ``chapter`` (one of :data:`GRID_NAMES`) with "empty = the ladder's"
        resolved: empty ``datasets``/``weaks``/``seeds`` become ``ladder_datasets``/
        ``ladder_weaks``/``seeds``; for ``overoptimization`` empty ``remedy_weaks``/
        ``remedy_seeds`` then become the grid's ``weaks``/``seeds``. Every returned tuple is
        non-empty, so callers never resolve defaults themselves."""
        if chapter not in GRID_NAMES:
            raise ValueError(
                f"chapter={chapter!r}: unknown grid; valid grids: {', '.join(GRID_NAMES)}"
            )
        g = getattr(self, chapter)
        ladder = {"datasets": self.ladder_datasets, "weaks": self.ladder_weaks, "seeds": self.seeds}
        names = {f.name for f in fields(g)}
        g = replace(g, **{k: v for k, v in ladder.items() if k in names and not getattr(g, k)})
        if isinstance(g, OveroptimizationGrid):
            g = replace(
                g, remedy_weaks=g.remedy_weaks or g.weaks, remedy_seeds=g.remedy_seeds or g.seeds
            )
        return g


#: Chapter 4's remedies (the same list at every scale).
_REMEDIES = (
    OveroptimizationRemedy("hard labels", label_type="hard"),
    OveroptimizationRemedy("aux. confidence 0.25", loss="aux_conf", alpha_max=0.25),
    OveroptimizationRemedy("aux. confidence 0.75", loss="aux_conf", alpha_max=0.75),
)

_CI_STRONG = TrainSettings(
    epochs=2,
    batch_size=32,
    lr=1e-3,
    weight_decay=0.01,
    warmup_frac=0.1,
    max_length=32,
    eval_every=0,
    train_eps_max=500,
    # no chapter reads the grid runs' test curves: predict the test set once, after training
    eval_test=False,
    progress=False,
)
_CI = Preset(
    name="ci",
    description="CPU (2 cores): MiniLM-L6, top 2 layers trained on cached trunk states",
    sizes=SplitSizes(weak_train=1000, w2s_train=2000, val=500, test=1500),
    strong="minilm-l6",
    ladder_weaks=("bow", "minilm-l1", "tiny-transformer"),
    ladder_datasets=("sarcasm", "rotten_tomatoes"),
    seeds=(0, 1, 2),
    mode="cached-trunk",
    trainable_layers=2,
    weak_mode="cached-trunk",
    weak_trainable_layers=1,
    weak_settings=_CI_STRONG,
    scratch_settings=replace(_CI_STRONG, epochs=4, lr=1e-3, warmup_frac=0.05),
    strong_settings=_CI_STRONG,
    student_settings=_CI_STRONG,
    extra_weaks=("minilm-l2", "minilm-l3"),
    # 9 new student runs (seeds 0-2 x T in {0.5, 2, fitted}; T = 1 is chapter 1's), about 25 s
    # each on an idle box (chapter 3 cold with one seed: 91 s in all)
    calibration=CalibrationGrid(
        temperatures=(0.5, 1.0, 2.0), datasets=("sarcasm",), weaks=("bow",), seeds=(0, 1, 2)
    ),
    # 3 long runs (tiny-transformer x 3 seeds) + 1 remedy run (the confidence loss at 0.75,
    # seed 0: an illustration; chapter 4's over-fitting model carries the remedy comparison with
    # 20 seeds), each 8 epochs of 16 steps on 500 weak-labelled texts (a small set: the student
    # fits its teacher's labels sooner), evaluated every epoch on 1000 test texts; ~30 s per run
    # on an idle box (chapter 4's budget is 200 s cold; the paper preset runs every teacher,
    # seed and remedy, the gpu preset every teacher and seed)
    overoptimization=OveroptimizationGrid(
        datasets=("sarcasm",),
        weaks=("tiny-transformer",),
        seeds=(0, 1, 2),
        student_train=500,
        eval_test=1000,
        epochs=8.0,
        lr=3e-3,
        eval_every=0,
        patience=2,
        short_epochs=2.0,
        remedy_weaks=("tiny-transformer",),
        remedy_seeds=(0,),
        remedies=_REMEDIES[2:],
    ),
    # Charikar et al.'s synthetic set-up (100 transfer tasks) + 2 datasets x 2 weak x 10 seeds of
    # closed-form regressions on cached features (about 5 s per dataset for all 10 seeds)
    squared_loss=SquaredLossGrid(seeds=tuple(range(10))),
    # 4 reverse-KL student runs (sarcasm x the bow and minilm-l1 teachers x 2 seeds; the
    # forward-KL students are chapter 1's cached runs; ~20 s per run on an idle box, estimated
    # from chapter 1's cold timing): illustrative, the chapter's verdict on reverse vs forward KL
    # comes from its linear-head study (engine.heads, 10 seeds per cell in seconds); 6 planted
    # seeds on one shared mixture class
    kl=KLGrid(
        datasets=("sarcasm",),
        weaks=("bow", "minilm-l1"),
        seeds=(0, 1),
        n_instances=120,
        n_trials=25,
        planted_n=4000,
        planted_seeds=(0, 1, 2, 3, 4, 5),
    ),
)

_PAPER_SETTINGS = TrainSettings(
    epochs=2,
    batch_size=32,
    lr=1e-5,
    weight_decay=0.0,
    warmup_frac=0.05,
    max_length=256,
    eval_every=100,
    bf16=True,
    eval_batch_size=64,
    progress=True,
)
_PAPER = Preset(
    name="paper",
    description="GPU: GPT-2 -> GPT-2-medium/-large, full fine-tune, bf16 (needs the HF hub)",
    sizes=SplitSizes(weak_train=5000, w2s_train=5000, val=500, test=2000),
    strong="gpt2-medium",
    ladder_weaks=("gpt2",),
    ladder_datasets=("sciq", "hh_rlhf"),
    seeds=(0, 1, 2),
    mode="full",
    trainable_layers=1,
    weak_mode="full",
    weak_trainable_layers=1,
    weak_settings=replace(_PAPER_SETTINGS, lr=5e-5),
    scratch_settings=replace(_PAPER_SETTINGS, lr=1e-3, epochs=4),
    strong_settings=_PAPER_SETTINGS,
    student_settings=_PAPER_SETTINGS,
    extra_weaks=("gpt2-large",),
    # every ladder teacher, dataset and seed at five temperatures and calibrated
    calibration=CalibrationGrid(temperatures=(0.25, 0.5, 1.0, 2.0, 4.0)),
    # every ladder teacher, dataset and seed; the whole w2s_train and test splits
    overoptimization=OveroptimizationGrid(
        epochs=10.0, lr=3e-5, eval_every=100, patience=3, short_epochs=2.0, remedies=_REMEDIES
    ),
    squared_loss=SquaredLossGrid(
        rep_steps=30_000, rep_batch=200, text_n=6000, text_weak_train=1500, text_train=3500
    ),
    # the whole ladder with both losses; larger random-instance checks
    kl=KLGrid(n_instances=1000, n_trials=200, planted_seeds=tuple(range(20)), planted_weak="gpt2"),
)

# gpu: the paper's scale on what ships offline (no hub). The packaged MiniLM-L6 fine-tuned in
# full (all layers, bf16 autocast), every example of the three offline datasets (each dataset's
# class-balanced maximum, rounded down: sarcasm 27096 balanced examples, rotten_tomatoes 10768,
# quartz 7656; the same split rules as ci), 5 seeds, every chapter's grid at full size. Longest
# texts: 34 / 68 / 84 MiniLM tokens, so max_length=128 truncates nothing; batches are padded to
# their longest text. Not run end to end yet (no GPU was lent when it was written).
_GPU_SETTINGS = TrainSettings(
    epochs=2,
    batch_size=64,
    lr=5e-5,
    weight_decay=0.01,
    warmup_frac=0.06,
    max_length=128,
    eval_every=0,
    bf16=True,
    eval_batch_size=512,
    train_eps_max=2000,
    progress=False,
)
_GPU = Preset(
    name="gpu",
    description="GPU, offline: MiniLM-L6 fine-tuned in full, the full offline datasets, 5 seeds",
    sizes=SplitSizes(weak_train=2000, w2s_train=3600, val=400, test=1600),
    strong="minilm-l6",
    ladder_weaks=("bow", "minilm-l1", "tiny-transformer"),
    ladder_datasets=("sarcasm", "rotten_tomatoes", "quartz"),
    seeds=(0, 1, 2, 3, 4),
    mode="full",
    trainable_layers=6,
    weak_mode="full",
    weak_trainable_layers=1,
    weak_settings=_GPU_SETTINGS,
    scratch_settings=replace(_GPU_SETTINGS, epochs=4, lr=1e-3, warmup_frac=0.05),
    strong_settings=_GPU_SETTINGS,
    student_settings=_GPU_SETTINGS,
    extra_weaks=("minilm-l2", "minilm-l3"),
    calibration=CalibrationGrid(temperatures=(0.25, 0.5, 1.0, 2.0, 4.0)),
    squared_loss=SquaredLossGrid(
        rep_steps=30_000, rep_batch=200, text_n=6000, text_weak_train=1500, text_train=3500
    ),
    dataset_sizes=(
        ("sarcasm", SplitSizes(weak_train=8000, w2s_train=12000, val=1000, test=6000)),
        ("rotten_tomatoes", SplitSizes(weak_train=3000, w2s_train=5000, val=500, test=2200)),
        ("quartz", SplitSizes(weak_train=2000, w2s_train=3600, val=400, test=1600)),
    ),
    # the 5 seeds x 3 teachers of a dataset train as one stack of 15 students (and 5 ceilings,
    # 5 weak models per teacher); MiniLM-L6 in full: ~15 x 0.4 GB of weights, grads and moments
    trainer="stacked",
    max_stack=15,
)

_TEST_SETTINGS = TrainSettings(
    epochs=1,
    batch_size=16,
    lr=1e-3,
    max_length=16,
    eval_every=0,
    progress=False,
    train_eps_max=50,
)
_TEST = Preset(
    name="test",
    description="tiny sizes for the unit tests (seconds); not for results",
    sizes=SplitSizes(weak_train=40, w2s_train=60, val=20, test=40),
    strong="minilm-l2",
    ladder_weaks=("bow",),
    ladder_datasets=("sarcasm",),
    seeds=(0,),
    mode="cached-trunk",
    trainable_layers=1,
    weak_mode="cached-trunk",
    weak_trainable_layers=1,
    weak_settings=_TEST_SETTINGS,
    scratch_settings=_TEST_SETTINGS,
    strong_settings=_TEST_SETTINGS,
    student_settings=_TEST_SETTINGS,
    hidden=True,
    overoptimization=OveroptimizationGrid(
        student_train=40,
        eval_test=30,
        epochs=2.0,
        eval_every=2,
        patience=1,
        short_epochs=1.0,
        remedies=_REMEDIES[:2],
    ),
)

PRESETS: dict[str, Preset] = {p.name: p for p in (_CI, _GPU, _PAPER, _TEST)}
#: Preset names for results (``test``, ``hidden``, is for unit tests and quick trials: tiny sizes,
#: not for results; it is listed apart in ``w2s run --help``).
PRESET_NAMES: tuple[str, ...] = tuple(n for n, p in PRESETS.items() if not p.hidden)


def get_preset(name: str | Preset) -> Preset:
    """The preset called ``name``; a :class:`Preset` object passes through unchanged (its own
    settings, whatever its name). An unknown name raises ``ValueError`` listing the presets."""
    if isinstance(name, Preset):
        return name
    if not isinstance(name, str) or name not in PRESETS:
        raise ValueError(
            f"preset {name!r} is unknown; valid presets: {', '.join(PRESETS)} (or pass a Preset "
            "object, e.g. dataclasses.replace(get_preset('ci'), name='mine', ...))"
        )
    return PRESETS[name]
