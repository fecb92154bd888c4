"""The result of a linear-head run (:func:`w2s_utils.engine.heads.run_heads`) and its table."""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from w2s_utils import metrics
from w2s_utils.engine import cache
from w2s_utils.engine.heads.config import HeadsConfig

__all__ = ["HeadsResult", "result_from_arrays", "results_table"]


@dataclass(frozen=True, eq=False)
class HeadsResult:
    """One run's predictions, with the attributes the analysis layer reads from an
    :class:`~w2s_utils.engine.experiment.ExperimentResult`.

    Test split (sorted by id, the same for every seed): ``labels`` ``[N]`` (the truth's labels:
    gold, or drawn from the planted ``F*``), ``ids``, and the probabilities ``[N, K]`` (float64) of
    ``weak`` (the tempered teacher ``F_w``), ``student`` and ``ceiling``. ``w2s_train`` (the
    student's own inputs): ``weak_labels_train`` (what the student fitted, before any argmax),
    ``student_probs_train``, ``train_labels``. Held-out ``val``: ``weak_labels_val``,
    ``student_probs_val``, ``val_labels``. Planted truth only (else ``None``): ``f_star``,
    ``f_star_train``, ``f_star_val``, the exact ``F*`` on the three splits.
    ``diagnostics``: solver reports (``<head>_grad_max``, ``<head>_n_iter``, ``<head>_converged``
    for ``teacher``, ``student``, ``ceiling``; ``student_objective``; for a reverse student
    ``reverse_kl_at_start``, the objective at its forward-KL start; ``teacher_temperature``
    applied; ``teacher_n``; ``label_flips``; ``planted_gold_accuracy``), ``seconds`` the wall
    time of the run's own computation (pieces shared with earlier configs of one call counted
    once), ``cached`` whether it came from the cache.
    """

    config: HeadsConfig
    labels: np.ndarray
    ids: list[str]
    weak: np.ndarray
    student: np.ndarray
    ceiling: np.ndarray
    weak_labels_train: np.ndarray
    student_probs_train: np.ndarray
    train_labels: np.ndarray
    weak_labels_val: np.ndarray
    student_probs_val: np.ndarray
    val_labels: np.ndarray
    f_star: np.ndarray | None
    f_star_train: np.ndarray | None
    f_star_val: np.ndarray | None
    diagnostics: dict[str, float]
    seconds: float
    cached: bool = False

    @functools.cached_property
    def summary(self) -> dict[str, float]:
        """Test means (:func:`w2s_utils.metrics.summarize_predictions` against ``labels``: accuracy,
        cross-entropy ``loss_<m>``, ``gain``, ``eps``, ``eps_rev``, PGR, ECE, smooth CE); with a
        planted truth also ``err_<m>``, the exact ``E KL(F* || F)``."""
        out = metrics.summarize_predictions(
            self.weak, self.student, self.ceiling, labels=self.labels
        )
        if self.f_star is not None:
            exact = metrics.summarize_predictions(
                self.weak, self.student, self.ceiling, f_star=self.f_star
            )
            out.update({f"err_{m}": exact[f"loss_{m}"] for m in ("weak", "student", "ceiling")})
        return out

    def row(self) -> dict[str, Any]:
        """Flat record for tables: every config field, the summary, ``cached`` and ``seconds``."""
        out = {f.name: getattr(self.config, f.name) for f in dataclasses.fields(self.config)}
        out["sizes"] = str(tuple(dataclasses.astuple(self.config.sizes)))
        out.update(self.summary)
        out["cached"] = self.cached
        out["seconds"] = self.seconds
        return out


_PLANTED_ARRAYS = ("f_star", "f_star_train", "f_star_val")
_ARRAYS = (
    "labels",
    "weak",
    "student",
    "ceiling",
    "weak_labels_train",
    "student_probs_train",
    "train_labels",
    "weak_labels_val",
    "student_probs_val",
    "val_labels",
)


def result_from_arrays(
    cfg: HeadsConfig, arrays: Mapping[str, np.ndarray], cached: bool
) -> HeadsResult:
    """A :class:`HeadsResult` from the arrays a run stores (:func:`run_heads` and the cache)."""
    names = cache.unpack_texts(arrays["diag_names_blob"], arrays["diag_names_offsets"])
    diag = {n: float(v) for n, v in zip(names, arrays["diag_values"], strict=True)}
    planted = {k: (np.asarray(arrays[k]) if k in arrays else None) for k in _PLANTED_ARRAYS}
    return HeadsResult(
        config=cfg,
        ids=cache.unpack_texts(arrays["ids_blob"], arrays["ids_offsets"]),
        **{k: np.asarray(arrays[k]) for k in _ARRAYS},
        **planted,
        diagnostics=diag,
        seconds=diag["seconds"],
        cached=cached,
    )


def results_table(results: Sequence[HeadsResult]) -> pd.DataFrame:
    """One row per result (:meth:`HeadsResult.row`)."""
    if isinstance(results, HeadsResult):
        results = [results]
    bad = [type(r).__name__ for r in results if not isinstance(r, HeadsResult)]
    if bad or not results:
        raise ValueError("results: pass a non-empty list of HeadsResult (from run_heads)")
    return pd.DataFrame([r.row() for r in results])
