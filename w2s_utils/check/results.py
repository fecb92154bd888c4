"""Every metric and every result the arrays of one run allow (:func:`check_arrays`)."""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from w2s_utils import __version__, metrics, theory
from w2s_utils._validate import as_two_class, check_int, check_labels, check_number
from w2s_utils.check.report import LEGEND

__all__ = ["ARRAYS", "MAX_BINS", "REQUIRED", "SCHEMA", "SMCE_TIME_LIMIT", "check_arrays"]

#: Version of the report's layout (the ``--json`` keys); raised when a key changes meaning.
SCHEMA = 2
#: The arrays a checked file may hold (others are ignored, with a note).
ARRAYS = ("weak", "student", "ceiling", "labels", "f_star", "ids", "label_names")
#: The arrays a checked file must hold, besides a truth (``labels`` and/or ``f_star``).
REQUIRED = ("weak", "student")
#: Most bins of the binned ECE (more leaves nearly every bin empty, and allocates for nothing).
MAX_BINS = 100_000
#: Seconds each predictor's multi-class smooth CE may take (then a certified bracket is used).
SMCE_TIME_LIMIT = 5.0
#: Largest smooth calibration error: ``E<w, y - p>`` with ``|w| <= 1`` is at most ``E||y - p||_1``,
#: so 1 for two classes (on the positive class) and 2 for ``K`` classes.
_SMCE_MAX = {True: 1.0, False: 2.0}
#: The keys of :func:`w2s_utils.metrics.summarize_predictions` that compare the predictors.
_W2S_KEYS = ("gain", "acc_gain", "eps", "eps_rev", "interaction", "misfit_sq", "pgr", "pgr_loss")

_ASSUMPTION = {
    theory.KLMisfitGainResult.NAME: "the student is the reverse-KL projection of the teacher "
    "onto a convex class containing F*",
    theory.ForwardKLIdentityResult.NAME: "F* is logit-linear and the student is the forward-KL "
    "projection of the teacher onto that class",
    theory.SquaredMisfitGainResult.NAME: "the student is the L2 projection of the teacher onto a "
    "convex class containing F*",
}


# --------------------------------------------------------------------------- inputs
def _as_probs(x: Any, name: str) -> torch.Tensor:
    """Validated float64 ``[N, K]`` probabilities (``[N]`` read as binary): rows checked to sum to
    1 at the precision of the saved dtype (:func:`w2s_utils._validate.sum_tolerance`), then
    divided by their sums in float64, a correction within that tolerance (float16 rows are off
    by up to 1e-3, which float64 arithmetic downstream would reject)."""
    if isinstance(x, np.ndarray) and x.dtype == object:
        raise ValueError(f"{name}: holds Python objects; save a numeric array")
    t = as_two_class(x, name)
    if t.dim() != 2:
        raise ValueError(
            f"{name}: expected probabilities [N] (binary) or [N, K], got shape {tuple(t.shape)}"
        )
    t = t.to(torch.float64)
    return t / t.sum(-1, keepdim=True)


def _names(x: Any, name: str, n: int, what: str) -> list[str] | None:
    """``ids``/``label_names`` as a list of ``n`` strings (``None`` stays ``None``)."""
    if x is None:
        return None
    arr = np.asarray(x)
    if arr.dtype == object or arr.ndim != 1 or arr.shape[0] != n:
        raise ValueError(
            f"{name}: expected {n} {what} (a 1-D array of strings or integers), got "
            f"{'Python objects' if arr.dtype == object else f'shape {arr.shape}'}; save them as "
            f"numpy.asarray(values, dtype=str)"
        )
    return [str(v) for v in arr.tolist()]


def _prepare(
    weak: Any, student: Any, ceiling: Any, labels: Any, f_star: Any
) -> tuple[dict[str, torch.Tensor], torch.Tensor | None, torch.Tensor | None]:
    preds = {"weak": _as_probs(weak, "weak"), "student": _as_probs(student, "student")}
    if ceiling is not None:
        preds["ceiling"] = _as_probs(ceiling, "ceiling")
    ref = preds["weak"]
    for name, t in preds.items():
        if t.shape != ref.shape:
            raise ValueError(
                f"{name}: shape {tuple(t.shape)} does not match weak's {tuple(ref.shape)} (binary "
                "[N] is read as [N, 2]); save predictions for the same examples and classes"
            )
    if labels is None and f_star is None:
        raise ValueError(
            "labels, f_star: pass a truth: labels (the test labels [N]) and/or f_star (the true "
            "class probabilities [N, K] of a planted task)"
        )
    fs = y = None
    if f_star is not None:
        fs = _as_probs(f_star, "f_star")
        if fs.shape != ref.shape:
            raise ValueError(
                f"f_star: shape {tuple(fs.shape)} does not match weak's {tuple(ref.shape)}; "
                "save the ground-truth probabilities for the same examples and classes"
            )
    if labels is not None:
        if isinstance(labels, np.ndarray) and labels.dtype == object:
            raise ValueError("labels: holds Python objects; save integer class labels")
        y = check_labels(labels, ref.shape[1], "labels")
        if y.dim() != 1 or y.shape[0] != ref.shape[0]:
            raise ValueError(
                f"labels: shape {tuple(y.shape)} does not match the {ref.shape[0]} prediction "
                "rows; save one integer label per example, a 1-D array [N]"
            )
    return preds, y, fs


# --------------------------------------------------------------------------- metrics
def _predictor_metrics(
    preds: dict[str, torch.Tensor],
    truths: dict[str, Any],
    summaries: dict[str, dict[str, float]],
    notes: list[str],
) -> dict[str, dict[str, float | None]]:
    """Per predictor: the means of :func:`w2s_utils.metrics.summarize_predictions` (and AUROC)."""
    out: dict[str, dict[str, float | None]] = {m: {} for m in preds}
    binary = next(iter(preds.values())).shape[1] == 2
    for m, p in preds.items():
        if "labels" in summaries:
            s = summaries["labels"]
            out[m]["accuracy"] = s[f"acc_{m}"]
            out[m]["cross_entropy"] = s[f"loss_{m}"]
            out[m]["ece"] = s[f"ece_{m}"]
            if binary:
                out[m]["smooth_ce"] = s[f"smooth_ce_{m}"]
                try:
                    out[m]["auroc"] = metrics.auroc(p, truths["labels"])
                except ValueError as err:
                    out[m]["auroc"] = None
                    notes.append(f"AUROC of {m} undefined: {err}")
        if "f_star" in summaries:
            out[m]["err"] = summaries["f_star"][f"loss_{m}"]
            out[m]["expected_accuracy"] = summaries["f_star"][f"acc_{m}"]
    return out


# --------------------------------------------------------------------------- results
#: The results that always hold, in reading order: (function, options it takes). Each is called
#: as ``function(weak, student, <truth>=..., **options)``.
_ALWAYS: tuple[tuple[Callable[..., Any], tuple[str, ...]], ...] = (
    (theory.error_decomposition, ()),
    (theory.generalization_bound, ("gamma",)),
    (theory.generalization_chain, ("gamma",)),
    (theory.label_free_interval, ()),
    (theory.misfit_centred_bound, ()),
    (theory.oscillation_bound, ()),
    (theory.error_aware_interval, ()),
)
#: The conditional results (true only under an assumption predictions cannot show).
_CONDITIONAL: tuple[Callable[..., Any], ...] = (
    theory.kl_misfit_gain,
    theory.forward_kl_identity,  # needs f_star
    theory.squared_misfit_gain,
)
#: The result ``NAME`` of each function (rows are named before they are computed).
_NAMES = {
    theory.error_decomposition: theory.DecompositionResult.NAME,
    theory.generalization_bound: theory.GeneralizationBoundResult.NAME,
    theory.generalization_chain: theory.GeneralizationChainResult.NAME,
    theory.label_free_interval: theory.LabelFreeIntervalResult.NAME,
    theory.misfit_centred_bound: theory.MisfitCentredBoundResult.NAME,
    theory.oscillation_bound: theory.OscillationBoundResult.NAME,
    theory.error_aware_interval: theory.ErrorAwareIntervalResult.NAME,
    theory.calibration_bound: theory.CalibrationBoundResult.NAME,
    theory.multiclass_calibration_bound: theory.MulticlassCalibrationBoundResult.NAME,
    theory.ece_bound: theory.EceBoundResult.NAME,
    theory.kl_misfit_gain: theory.KLMisfitGainResult.NAME,
    theory.forward_kl_identity: theory.ForwardKLIdentityResult.NAME,
    theory.squared_misfit_gain: theory.SquaredMisfitGainResult.NAME,
}

_Plan = tuple[str, str, str, Callable[[], Any]]


def _plans(
    preds: dict[str, torch.Tensor],
    truths: dict[str, Any],
    options: dict[str, Any],
) -> tuple[list[_Plan], list[dict[str, str]]]:
    """``(name, truth, kind, call)`` for every result the arrays allow, and what was skipped."""
    w, s = preds["weak"], preds["student"]
    binary = w.shape[1] == 2
    always = list(_ALWAYS)
    if binary:
        always.append((theory.calibration_bound, ("n_bins",)))
    elif options["time_limit"] > 0:
        always.append((theory.multiclass_calibration_bound, ("time_limit",)))
    plans: list[_Plan] = []
    skipped: list[dict[str, str]] = []
    for truth, key in (("labels", "labels"), ("F*", "f_star")):
        if key not in truths:
            continue
        kw = {key: truths[key]}
        for fn, opts in always:
            call = functools.partial(fn, w, s, **kw, **{o: options[o] for o in opts})
            plans.append((_NAMES[fn], truth, "always", call))
        if key == "f_star":
            for m, p in preds.items():
                call = functools.partial(
                    theory.ece_bound, p, kw["f_star"], n_bins=options["n_bins"]
                )
                plans.append((f"{_NAMES[theory.ece_bound]} ({m})", truth, "always", call))
        for fn in _CONDITIONAL:
            if key == "f_star" or fn is not theory.forward_kl_identity:
                plans.append((_NAMES[fn], truth, "conditional", functools.partial(fn, w, s, **kw)))
    if not binary and options["time_limit"] == 0:
        name = _NAMES[theory.multiclass_calibration_bound]
        skipped.append({"name": name, "reason": "turned off (--smce-time-limit 0)"})
    if "f_star" not in truths:
        for fn in (theory.ece_bound, theory.forward_kl_identity):
            skipped.append(
                {"name": _NAMES[fn], "reason": "needs f_star (the true class probabilities)"}
            )
    return plans, skipped


def _le(a: float, b: float) -> bool:
    """``a <= b`` up to the relative tolerance of the theory layer's comparisons."""
    return a <= b + theory.DEFAULT_TOL * max(1.0, abs(a), abs(b))


def _vacuity(row: dict[str, Any], free: tuple[float, float] | None, binary: bool) -> str | None:
    """Why a result that holds says nothing new (``None``: it does say something)."""
    name = row["result"]
    if name in (theory.GeneralizationBoundResult.NAME, theory.GeneralizationChainResult.NAME):
        trivial = math.log(1.0 / row["gamma"])
        if row["rhs"] >= trivial:
            return (
                f"rhs = {row['rhs']:.4g} >= log(1/gamma) = {trivial:.4g}, the trivial bound "
                "under the floor"
            )
    elif name in (
        theory.MisfitCentredBoundResult.NAME,
        theory.OscillationBoundResult.NAME,
        theory.ErrorAwareIntervalResult.NAME,
    ):
        if free is not None and _le(row["lower"], free[0]) and _le(free[1], row["upper"]):
            return (
                f"[{row['lower']:.4g}, {row['upper']:.4g}] contains the label-free interval "
                f"[{free[0]:.4g}, {free[1]:.4g}] that F_w and F_sw alone give"
            )
    elif name in (theory.CalibrationBoundResult.NAME, theory.MulticlassCalibrationBoundResult.NAME):
        top, weak = _SMCE_MAX[binary], row["smce_weak"]
        if math.isfinite(weak) and row["rhs"] >= max(weak, top - weak):
            return f"smCE(weak) +- rhs covers every possible smCE, [0, {top:g}]"
    elif name == theory.EceBoundResult.NAME and row["rhs"] >= 1.0:
        return f"rhs = {row['rhs']:.4g} >= 1, the largest ECE"
    return None


def _status(row: dict[str, Any], kind: str) -> tuple[str, str | None]:
    """The row's status and, for a conditional result, what its failure means."""
    if row["result"] == theory.MulticlassCalibrationBoundResult.NAME and not row["determined"]:
        return "undetermined", "the smCE brackets are too wide to decide (raise --smce-time-limit)"
    if row["holds"]:
        return "holds", (None if kind == "always" else "its assumption is not checkable here")
    if kind == "always":
        return "FAILS", None
    se = row.get("gain_se")
    if se is not None and math.isfinite(se) and row["rhs"] >= row["lhs"] - 2.0 * se:
        return "within sampling error", (
            f"short by {row['lhs'] - row['rhs']:.3g} < 2 se = {2.0 * se:.3g} of the test gain"
        )
    assumption = _ASSUMPTION.get(row["result"], "its assumption")
    return "assumption not met", f"so it is not true here that {assumption}"


def _rows(
    preds: dict[str, torch.Tensor],
    truths: dict[str, Any],
    options: dict[str, Any],
) -> tuple[list[dict[str, Any]], list[dict[str, str]]]:
    plans, skipped = _plans(preds, truths, options)
    gamma = options["gamma"]
    binary = preds["weak"].shape[1] == 2
    try:
        free = theory.label_free_interval(preds["weak"], preds["student"])
        free_ends: tuple[float, float] | None = (free.lower, free.upper)
    except ValueError:
        free_ends = None  # zero probabilities: the label-free interval is not defined
    rows: list[dict[str, Any]] = []
    for name, truth, kind, call in plans:
        base = {"name": name, "truth": truth, "kind": kind}
        try:
            res = call()
        except theory.UndefinedResultError as err:
            skipped.append({"name": f"{name} [{truth}]", "reason": f"undefined: {err}"})
            continue
        except ValueError as err:
            msg = str(err)
            if gamma is not None and "gamma" in msg:
                raise  # the user asked for this floor: the data violate it
            if "zero probabilities" not in msg:
                raise
            who = msg.split(":")[0]
            why = (
                f"{who} has zero probabilities, so the log-ratio r is infinite and there is no "
                "floor gamma > 0; rerun with --gamma G --clip to clip to a floor first"
            )
            rows.append(
                {
                    **base,
                    "status": "assumption not met",
                    "why": why,
                    "holds": None,
                    "vacuous": None,
                    "lhs": None,
                    "rhs": None,
                    "slack": None,
                }
            )
            continue
        row = {**base, **res.as_dict()}
        row["status"], row["why"] = _status(row, kind)
        vac = _vacuity(row, free_ends, binary) if row["status"] == "holds" else None
        row["vacuous"] = vac is not None
        row["vacuous_because"] = vac
        rows.append(row)
    return rows, skipped


def check_arrays(
    weak: Any,
    student: Any,
    ceiling: Any = None,
    *,
    labels: Any = None,
    f_star: Any = None,
    ids: Any = None,
    label_names: Any = None,
    n_bins: int = 15,
    gamma: float | None = None,
    clip: bool = False,
    smce_time_limit: float = SMCE_TIME_LIMIT,
) -> dict[str, Any]:
    """All metrics and every result the arrays allow, for one run's test predictions, as a dict.

    ``weak``, ``student``, ``ceiling``: probabilities ``[N]`` (binary) or ``[N, K]`` (numpy or
    torch, any float dtype); the truth as a keyword, at least one of ``labels`` (class indices
    ``[N]``) and ``f_star`` (true class probabilities, shaped like ``weak``); ``ids``
    (``[N]``, unique) and ``label_names`` (``[K]``) are carried into the report.
    ``n_bins``: bins of the binned ECE (1 .. :data:`MAX_BINS`). ``gamma``: the floor of the
    floor-based results (default: the empirical one); with ``clip=True`` the predictors are first
    clipped to it (:func:`w2s_utils.theory.clip_to_floor`), without it a ``gamma`` above the data's
    floor is an error. ``smce_time_limit``: seconds per predictor for the multi-class smooth CE
    (0 turns the multi-class calibration bound off).

    Keys (schema :data:`SCHEMA`): ``schema``, ``w2s_utils`` (the library version), ``n``,
    ``n_classes``, ``binary``, ``n_bins``, ``arrays`` (the inputs given), ``truths``,
    ``label_names``, ``n_ids``, ``thresholds`` (``pgr_min_gap``, ``tol``, ``ece_bins``,
    ``gamma``, ``smce_time_limit``), ``metrics`` (per predictor), ``w2s`` (per truth: the
    means of :func:`w2s_utils.metrics.summarize_predictions` that compare the predictors),
    ``results`` (one dict per result and truth: ``name``, ``truth`` (``"labels"``/``"F*"``),
    ``kind`` (``"always"`` or ``"conditional"``), ``status`` (``"holds"``, ``"FAILS"``,
    ``"assumption not met"``, ``"within sampling error"``, ``"undetermined"``), ``why``,
    ``vacuous``, ``vacuous_because``, ``lhs``, ``rhs``, ``slack``, ``holds``, ``relation`` and
    the result's own quantities), ``skipped`` (``name``, ``reason``), ``notes`` and ``legend``.
    Non-finite values stay ``inf``/``nan`` here (:func:`format_report` and ``--json`` render
    them).
    """
    n_bins = check_int(n_bins, "n_bins", minimum=1, maximum=MAX_BINS)
    smce_time_limit = check_number(smce_time_limit, "smce_time_limit", lo=0.0, hi=3600.0)
    if gamma is not None:
        gamma = check_number(gamma, "gamma", lo=0.0, hi=1.0, lo_open=True)
    if clip and gamma is None:
        raise ValueError("clip: needs a floor; pass gamma (--gamma G) together with clip")
    preds, y, fs = _prepare(weak, student, ceiling, labels, f_star)
    n, k = preds["weak"].shape
    names = _names(label_names, "label_names", k, "class names")
    id_list = _names(ids, "ids", n, "test ids")
    if id_list is not None and len(set(id_list)) != n:
        raise ValueError(f"ids: {n - len(set(id_list))} duplicate test ids; save one id per row")
    notes: list[str] = []
    if clip:
        preds = {m: theory.clip_to_floor(v, gamma) for m, v in preds.items()}
        notes.append(f"weak/student/ceiling clipped to the floor gamma = {gamma:g} before checking")
    elif gamma is not None:
        for name in ("weak", "student"):
            low = float(preds[name].min())
            if low < gamma:
                raise ValueError(
                    f"{name}: has probabilities down to {low:.4g} < gamma = {gamma:g}, so the "
                    "floor assumption fails; add --clip (clip=True) to clip the predictions to "
                    "the floor first, or pass a smaller --gamma"
                )
    truths = {key: v for key, v in (("labels", y), ("f_star", fs)) if v is not None}
    summaries = {
        key: metrics.summarize_predictions(
            preds["weak"], preds["student"], preds.get("ceiling"), n_bins=n_bins, **{key: v}
        )
        for key, v in truths.items()
    }
    per = _predictor_metrics(preds, truths, summaries, notes)
    w2s = {key: {m: s[m] for m in _W2S_KEYS if m in s} for key, s in summaries.items()}
    if "ceiling" in preds:
        for key, s in w2s.items():
            for m in ("pgr", "pgr_loss"):
                if math.isnan(s[m]):
                    notes.append(
                        f"{m} [{key}] undefined: the ceiling does not beat the weak model by more "
                        f"than metrics.PGR_MIN_GAP = {metrics.PGR_MIN_GAP:g}"
                    )
    options = {"gamma": gamma, "n_bins": n_bins, "time_limit": smce_time_limit}
    rows, skipped = _rows(preds, truths, options)
    given = {"ceiling": ceiling, "labels": labels, "f_star": f_star, "ids": ids}
    return {
        "schema": SCHEMA,
        "w2s_utils": __version__,
        "n": int(n),
        "n_classes": int(k),
        "binary": k == 2,
        "n_bins": n_bins,
        "arrays": sorted(
            ["weak", "student", *(a for a, v in given.items() if v is not None)]
            + (["label_names"] if names is not None else [])
        ),
        "truths": list(truths),
        "label_names": names,
        "n_ids": None if id_list is None else len(id_list),
        "thresholds": {
            "pgr_min_gap": metrics.PGR_MIN_GAP,
            "tol": theory.DEFAULT_TOL,
            "ece_bins": n_bins,
            "gamma": gamma,
            "smce_time_limit": smce_time_limit,
        },
        "metrics": per,
        "w2s": w2s,
        "results": rows,
        "skipped": skipped,
        "notes": notes,
        "legend": dict(LEGEND),
    }
