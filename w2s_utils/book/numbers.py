"""The page "How the numbers are made": what an interval covers, and how many seeds and test
examples each chapter's verdicts rest on.

- :func:`interval_coverage` simulates the book's one interval over seeds and a shared test set,
  :func:`w2s_utils.metrics.seeds_and_test_interval`, under the model it is built for
  (``x[s, i] = a_s + b_i + e_si``: seed effects, example effects shared by every seed, noise), and
  reports how often it covers the truth. Cached (``W2S_CACHE_DIR``, kind ``coverage``): a warm
  build reads it.
- :func:`design_table` lists, for a preset, each chapter's runs, seeds and test examples, read
  from the preset's own grids (:meth:`w2s_utils.engine.presets.Preset.grid`), so the page says
  what the chapters of this build used.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from w2s_utils import metrics
from w2s_utils._validate import check_int, check_number
from w2s_utils.book.tables import Table, format_number, present_table
from w2s_utils.engine import cache
from w2s_utils.engine.presets import Preset, get_preset

__all__ = ["coverage_glue", "coverage_table", "design_table", "interval_coverage"]

#: The simulation's example effects and noise (the sizes of per-example accuracy differences):
#: example sd 0.35, noise sd 0.2 around a true mean 0.
EXAMPLE_SD = 0.35
NOISE_SD = 0.2


def _simulate_coverage(
    n_seeds: tuple[int, ...], seed_sds: tuple[float, ...], n_test: int, reps: int, seed: int
) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    rng = np.random.default_rng(seed)
    rows = []
    for s in n_seeds:
        for sd in seed_sds:
            hits = 0
            for _ in range(reps):
                x = (
                    rng.normal(0.0, sd, (s, 1))
                    + rng.normal(0.0, EXAMPLE_SD, (1, n_test))
                    + rng.normal(0.0, NOISE_SD, (s, n_test))
                )
                iv = metrics.seeds_and_test_interval(x)
                hits += bool(iv.lo <= 0.0 <= iv.hi)
            rows.append((s, sd, hits))
    arr = np.array(rows, dtype=float)
    return {"n_seeds": arr[:, 0], "seed_sd": arr[:, 1], "hits": arr[:, 2]}, {}


def interval_coverage(
    n_seeds: tuple[int, ...] = (2, 3, 5),
    seed_sds: tuple[float, ...] = (0.0, 0.1),
    *,
    n_test: int = 1000,
    reps: int = 1000,
    seed: int = 0,
    use_cache: bool = True,
) -> pd.DataFrame:
    """How often the 95% interval of :func:`w2s_utils.metrics.seeds_and_test_interval` covers
    the true mean 0, over ``reps`` simulated data sets per cell.

    One row per (number of seeds, seed sd): ``n_seeds``, ``seed_sd`` (the sd of the seed effects,
    in the units of the per-example values: 0 = only the test set varies; 0.1 = ten times the
    test set's standard error at ``n_test`` = 1000), ``coverage`` (share of intervals that hold
    0) and ``coverage_se`` (its binomial standard error). Cached unless ``use_cache=False``.
    """
    seeds = tuple(check_int(s, "n_seeds", minimum=2) for s in n_seeds)
    sds = tuple(check_number(s, "seed_sds", lo=0.0) for s in seed_sds)
    n = check_int(n_test, "n_test", minimum=10)
    r = check_int(reps, "reps", minimum=10)
    rng_seed = check_int(seed, "seed", minimum=0)
    key = {
        "what": "seeds_and_test_interval coverage",
        "n_seeds": seeds,
        "seed_sds": sds,
        "n_test": n,
        "reps": r,
        "seed": rng_seed,
        "example_sd": EXAMPLE_SD,
        "noise_sd": NOISE_SD,
    }

    def compute() -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        return _simulate_coverage(seeds, sds, n, r, rng_seed)

    if use_cache:
        arrays, _ = cache.cached_arrays(key, "coverage", compute)
    else:
        arrays, _ = compute()
    cov = arrays["hits"] / r
    return pd.DataFrame(
        {
            "n_seeds": arrays["n_seeds"].astype(int),
            "seed_sd": arrays["seed_sd"],
            "coverage": cov,
            "coverage_se": np.sqrt(cov * (1.0 - cov) / r),
        }
    )


def coverage_table(coverage: pd.DataFrame) -> Table:
    """:func:`interval_coverage`'s rows as the page shows them."""
    return present_table(
        coverage,
        {
            "n_seeds": "Seeds",
            "seed_sd": "Seed sd",
            "coverage": "Coverage",
            "coverage_se": "± (simulation)",
        },
        formats={"seed_sd": ".3f", "coverage": ".1%", "coverage_se": ".1%"},
    )


def coverage_glue(coverage: pd.DataFrame, reps: int = 1000, n_test: int = 1000) -> dict[str, Any]:
    """The page's glued numbers: the lowest and highest simulated coverage, the repetitions and
    the test size."""
    return {
        "cov_min": format_number(float(coverage["coverage"].min()), ".1%"),
        "cov_max": format_number(float(coverage["coverage"].max()), ".1%"),
        "cov_reps": int(reps),
        "cov_n_test": int(n_test),
    }


def _seed_text(seeds: tuple[int, ...]) -> str:
    return f"{len(seeds)} ({', '.join(str(s) for s in seeds)})"


def design_table(preset: str | Preset) -> Table:
    """For each chapter: what it trains or simulates, how many seeds, which test examples."""
    p = get_preset(preset)
    ladder = len(p.ladder_datasets) * len(p.ladder_weaks)
    test = {ds: p.sizes_for(ds).test for ds in p.ladder_datasets}
    test_text = ", ".join(f"{n:,} ({ds})" for ds, n in test.items())
    cal, over = p.grid("calibration"), p.grid("overoptimization")
    sq, kl = p.grid("squared_loss"), p.grid("kl")
    rows = [
        (
            "1. The pipeline",
            f"{ladder} teacher–student–ceiling cells",
            _seed_text(p.seeds),
            f"the test split of each data set: {test_text}",
        ),
        (
            "2. Two-sided bounds",
            "chapter 1's runs (no new training)",
            _seed_text(p.seeds),
            "as chapter 1",
        ),
        (
            "3. Calibration",
            f"{len(cal.weaks)} teacher{'s' if len(cal.weaks) != 1 else ''} at "
            f"{len(cal.temperatures)} temperatures"
            + (", and with a temperature fitted on held-out labels" if cal.calibrated else ""),
            _seed_text(cal.seeds),
            "as chapter 1",
        ),
        (
            "4. Over-optimization",
            f"one long student per cell; {len(over.remedies)} remedies",
            f"{_seed_text(over.seeds)}; remedies {_seed_text(over.remedy_seeds)}",
            f"the first {over.eval_test:,} test examples" if over.eval_test else "as chapter 1",
        ),
        (
            "5. Squared loss",
            f"{sq.n_transfer} synthetic transfer tasks; real-text regressions",
            f"synthetic: 1 ({sq.seed}); text: {_seed_text(sq.seeds)}",
            f"synthetic: {sq.n_test:,} fresh inputs per task; text: a fixed set of "
            f"{sq.text_test:,} texts",
        ),
        (
            "6. The KL extension",
            "reverse-KL students beside chapter 1's; planted tasks",
            f"{_seed_text(kl.seeds)}; planted {_seed_text(kl.planted_seeds)}",
            "as chapter 1",
        ),
    ]
    frame = pd.DataFrame(rows, columns=["chapter", "runs", "seeds", "test"])
    return present_table(
        frame,
        {
            "chapter": "Chapter",
            "runs": "What is trained",
            "seeds": "Seeds",
            "test": "Test examples (shared by every seed)",
        },
    )
