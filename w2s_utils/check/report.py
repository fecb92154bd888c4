"""The report's text: the legend of every term, what each result states, and the plain-text
rendering of :func:`w2s_utils.check.check_arrays`' dict (:func:`format_report`)."""

from __future__ import annotations

import math
import textwrap
from typing import Any

import numpy as np

from w2s_utils import theory

__all__ = ["EXPLAIN", "LEGEND", "format_report", "json_ready"]

#: Every term of the report, one line each (printed below it).
LEGEND = {
    "gain": "Err(F_w) - Err(F_sw), nats; > 0: the student beats its teacher. [labels]: "
    "CE(F_w) - CE(F_sw) on the test set (H(Y|X) cancels, so in population it is the Err "
    "difference); [F*]: exact, with the given truth",
    "Err, CE": "Err(F) = E_x KL(F*(x) || F(x)); CE = test cross-entropy -log F_y = Err + H(Y|X)",
    "r_j": "student log-ratio log F_sw,j - log F_w,j, per input x and class j; "
    "gain = E sum_j F*_j r_j",
    "eps": "misfit weak->student E KL(F_w || F_sw), the objective of cross-entropy training",
    "eps_rev": "misfit student->weak E KL(F_sw || F_w), the objective of reverse-KL training",
    "interaction": "E sum_j (F*_j - F_w,j) r_j = gain + eps (so gain = interaction - eps)",
    "misfit_sq": "squared-loss misfit E ||F_sw - F_w||^2 (summed over classes)",
    "TV": "total variation 1/2 ||F_w - F_sw||_1 per input; E TV its mean",
    "gamma": "the floor: min over x, j of F_w and F_sw (empirical) or --gamma (then clipped)",
    "osc, M": "osc(x) = max_j r_j - min_j r_j; M = max over x, j of |r_j|",
    "e": "budget on the teacher's error Err(F_w) of the error-aware interval: [labels] the "
    "teacher's test cross-entropy, [F*] its Err",
    "smCE, ECE": "smooth calibration error (exact); binned expected calibration error "
    "(equal-width bins, top label)",
    "PGR": "performance gap recovered (student - weak) / (ceiling - weak)",
    "lhs, rhs, slack": "each result reads lhs <= rhs (= for identities); slack = rhs - lhs, "
    ">= 0 when it holds (to the relative tolerance); an interval lower <= gain <= upper is "
    "written |gain - centre| <= half-width",
    "vacuous": "holds but says nothing new: no tighter than |gain| <= log(1/gamma) (under the "
    "floor) or than the label-free interval (from F_w and F_sw alone)",
    "assumption not met": "the data violate a hypothesis of the result (zero probabilities: "
    "no floor; a conditional result: the student is not the projection it assumes); not a "
    "failure of the result",
}

#: What each result states and assumes (``--explain``), by the theory result's ``NAME``.
EXPLAIN = {
    theory.DecompositionResult.NAME: "An identity, exact for every input: gain = interaction - "
    "eps. The student's gain over its teacher is what the interaction pays beyond the misfit. "
    "Needs strictly positive F_w, F_sw.",
    theory.GeneralizationBoundResult.NAME: "Under the floor gamma: |gain| <= E TV(F_w, F_sw) / "
    "gamma <= sqrt(eps/2) / gamma (and with eps_rev). Upper side: the student is never much "
    "worse than its teacher; lower side: at a fixed floor it gains at most that much. With a "
    "tiny gamma it is wider than the trivial log(1/gamma): vacuous.",
    theory.MisfitCentredBoundResult.NAME: "|gain + eps| <= M sqrt(2 Err(F_w)): the gain lies "
    "within M sqrt(2 Err(F_w)) of -eps. Vacuous when that interval contains the label-free one.",
    theory.LabelFreeIntervalResult.NAME: "E min_j r_j <= gain <= E max_j r_j for every ground "
    "truth: the sharp interval from the two predictors alone (both ends attained by point-mass "
    "truths); it contains [-eps, eps_rev]. No floor and no labels needed. The reference for "
    "vacuity of the bounds that use more.",
    theory.GeneralizationChainResult.NAME: "The two-sided bound's proof in its sharp form: "
    "|gain| <= E max|r| <= E log(1+TV/gamma) <= log(1+E TV/gamma) <= log(1+min(1,sqrt(eps/2))"
    "/gamma); each link is never worse than the next. Vacuous when its last link reaches "
    "log(1/gamma).",
    theory.OscillationBoundResult.NAME: "|gain + eps| <= E[osc TV(F*, F_w)] <= sqrt(E[osc^2] "
    "Err(F_w) / 2): the misfit-centred bound with osc in place of 2M, never wider.",
    theory.ErrorAwareIntervalResult.NAME: "The sharp interval for the gain over all truths whose "
    "teacher error is at most e: lower <= gain <= upper, attained by tilted truths. e = 0 gives "
    "gain = -eps; a large e gives the label-free interval (then it is vacuous: the budget never "
    "binds). [labels]: e is the teacher's test cross-entropy, which includes H(Y|X).",
    theory.CalibrationBoundResult.NAME: "Two classes: |smCE(F_sw) - smCE(F_w)| <= 2 E|p_sw - "
    "p_w| <= sqrt(2 eps): a student close to its teacher inherits its calibration.",
    theory.MulticlassCalibrationBoundResult.NAME: "K classes: |smCE_K(F_sw) - smCE_K(F_w)| <= "
    "6 E TV(F_w, F_sw). smCE_K is exact or a certified bracket; 'undetermined' when the "
    "brackets are too wide to decide.",
    theory.EceBoundResult.NAME: "Needs F*: ECE(p) <= E TV(F*, p) <= sqrt(Err(p)/2) for each "
    "predictor.",
    theory.KLMisfitGainResult.NAME: "Conditional: if the student is the reverse-KL "
    "(I-)projection of the teacher onto a class convex in probability space that contains F*, "
    "then gain >= eps_rev. [labels]: the test gain estimates the population gain (standard "
    "error gain_se).",
    theory.ForwardKLIdentityResult.NAME: "Conditional, needs F*: if F* is logit-linear in "
    "features phi and the student is the forward-KL projection of the teacher onto that class, "
    "E KL(F_w||F*) = E KL(F_sw||F*) + eps exactly.",
    theory.SquaredMisfitGainResult.NAME: "Conditional (squared loss, Charikar et al. 2024): if "
    "the student is the L2 projection of the teacher onto a convex class containing F*, then "
    "gain_sq >= misfit_sq, with errors measured in squared loss on the probability vectors.",
}


_METRIC_LABELS = {
    "accuracy": "accuracy",
    "cross_entropy": "cross-entropy CE (test, nats)",
    "ece": "ECE ({n_bins} bins, top label)",
    "smooth_ce": "smooth CE (smCE)",
    "auroc": "AUROC",
    "err": "Err = E KL(F*||.) (nats)",
    "expected_accuracy": "expected accuracy under F*",
}

_W2S_LABELS = {
    "gain": "gain = {loss}(weak) - {loss}(student)",
    "acc_gain": "accuracy gain = acc(student) - acc(weak)",
    "eps": "eps = E KL(weak||student) (misfit, weak->student)",
    "eps_rev": "eps_rev = E KL(student||weak) (misfit, student->weak)",
    "interaction": "interaction = gain + eps",
    "misfit_sq": "misfit_sq = E ||student - weak||^2",
    "pgr": "PGR on accuracy",
    "pgr_loss": "PGR on {loss} (on -{loss})",
}


# --------------------------------------------------------------------------- rendering
def json_ready(x: Any) -> Any:
    """``x`` with NaN/inf as ``None`` and numpy scalars as Python ones (strict JSON)."""
    if isinstance(x, dict):
        return {k: json_ready(v) for k, v in x.items()}
    if isinstance(x, list | tuple):
        return [json_ready(v) for v in x]
    if isinstance(x, float) and not math.isfinite(x):
        return None
    if isinstance(x, np.generic):
        return json_ready(x.item())
    return x


def _fmt(x: Any, width: int = 12) -> str:
    """Right-aligned cell, always separated from its left neighbour by at least one space."""
    if x is None or (isinstance(x, float) and math.isnan(x)):
        text = "-"
    elif isinstance(x, bool):
        text = "yes" if x else "no"
    elif isinstance(x, float):
        text = f"{x:.5g}"
    else:
        text = str(x)
    return " " + text.rjust(width - 1)


def _g(x: Any) -> str:
    return "-" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.4g}"


def _detail(r: dict[str, Any]) -> str | None:
    """The quantities behind a result, one line."""
    kind, loss = r["result"], ("CE" if r["truth"] == "labels" else "Err")
    if kind == theory.DecompositionResult.NAME:
        return (
            f"gain = {_g(r['gain'])} = interaction {_g(r['interaction'])} - eps {_g(r['eps'])}; "
            f"{loss}(weak) = {_g(r['err_weak'])}, {loss}(student) = {_g(r['err_student'])}"
        )
    if kind == theory.GeneralizationBoundResult.NAME:
        return (
            f"gain = {_g(r['gain'])}; gamma = {_g(r['gamma'])} ({r['gamma_source']}); E TV = "
            f"{_g(r['mean_tv'])}; sqrt(eps/2)/gamma = {_g(r['bound_eps'])}, "
            f"sqrt(eps_rev/2)/gamma = {_g(r['bound_eps_rev'])}"
        )
    if kind == theory.GeneralizationChainResult.NAME:
        return (
            f"|gain| = {_g(r['abs_gain'])} <= E max|r| {_g(r['mean_max_abs_log_ratio'])} <= "
            f"E log(1+TV/gamma) {_g(r['mean_log_tv'])} <= log(1+E TV/gamma) "
            f"{_g(r['log_mean_tv'])} <= {_g(r['log_pinsker'])}; log(1/gamma) = "
            f"{_g(r['trivial'])}"
        )
    if kind == theory.LabelFreeIntervalResult.NAME:
        return (
            f"gain = {_g(r['gain'])} in [{_g(r['lower'])}, {_g(r['upper'])}] = [E min r, E max r], "
            f"which contains [-eps, eps_rev] = [{_g(-r['eps'])}, {_g(r['eps_rev'])}]; share of "
            f"its side used: {_g(r['fraction_used'])}"
        )
    if kind == theory.MisfitCentredBoundResult.NAME:
        return (
            f"gain = {_g(r['gain'])} in [{_g(r['lower'])}, {_g(r['upper'])}] = -eps +- M "
            f"sqrt(2 Err(F_w)); M = {_g(r['m'])}, Err(F_w) = {_g(r['loss_weak'])}"
        )
    if kind == theory.OscillationBoundResult.NAME:
        return (
            f"|gain + eps| = {_g(r['lhs'])} <= E[osc TV] = {_g(r['mid'])} <= {_g(r['rhs'])} <= "
            f"M sqrt(2 Err(F_w)) = {_g(r['old_width'])}; gain in [{_g(r['lower'])}, "
            f"{_g(r['upper'])}]"
        )
    if kind == theory.ErrorAwareIntervalResult.NAME:
        binds = {True: "binds", False: "slack"}
        return (
            f"e = {_g(r['budget'])}: gain = {_g(r['gain'])} in [{_g(r['lower'])}, "
            f"{_g(r['upper'])}] (budget {binds[r['binds_lower']]} below, "
            f"{binds[r['binds_upper']]} above); label-free [{_g(r['free_lower'])}, "
            f"{_g(r['free_upper'])}]"
        )
    if kind in (theory.CalibrationBoundResult.NAME, theory.MulticlassCalibrationBoundResult.NAME):
        return f"smCE(weak) = {_g(r['smce_weak'])}, smCE(student) = {_g(r['smce_student'])}"
    if kind == theory.KLMisfitGainResult.NAME:
        se = f"; 2 se of the test gain = {_g(2 * r['gain_se'])}" if r.get("gain_se") else ""
        return f"gain = {_g(r['gain'])} vs eps_rev = {_g(r['eps_rev'])}{se}"
    if kind == theory.ForwardKLIdentityResult.NAME:
        return (
            f"residual = {_g(r['residual'])}; the remark gain >= eps (not guaranteed): "
            f"{_g(r['gain'])} >= {_g(r['eps'])}"
        )
    if kind == theory.SquaredMisfitGainResult.NAME:
        return f"squared-loss gain = {_g(r['gain'])} vs misfit_sq = {_g(r['misfit_sq'])}"
    return None


def _status_cell(r: dict[str, Any]) -> str:
    return f"{r['status']}, VACUOUS" if r.get("vacuous") else r["status"]


#: How a truth is shown (the ``--json`` keys are ``labels`` and ``f_star``).
_TRUTH = {"labels": "labels", "f_star": "F*"}


def _header(result: dict[str, Any]) -> list[str]:
    head = f"w2s check: {result['file']}" if "file" in result else "w2s check"
    classes = f"K = {result['n_classes']} classes"
    if result["label_names"]:
        classes += f" ({', '.join(result['label_names'])})"
    ids = " (ids given)" if result["n_ids"] is not None else ""
    truths = " and ".join(_TRUTH[t] for t in result["truths"])
    t = result["thresholds"]
    gamma = "the empirical floor" if t["gamma"] is None else f"{t['gamma']:g} (given)"
    thresholds = (
        f"thresholds: PGR needs ceiling - weak > {t['pgr_min_gap']:g} (metrics.PGR_MIN_GAP); "
        f"comparisons to a relative tolerance of {t['tol']:g} (theory.DEFAULT_TOL); ECE with "
        f"{t['ece_bins']} equal-width bins; gamma = {gamma}"
    )
    if not result["binary"]:
        thresholds += f"; multi-class smCE: at most {t['smce_time_limit']:g} s per predictor"
    return [
        head,
        f"  N = {result['n']} test examples{ids}; {classes}; truth: {truths}",
        f"  w2s_utils {result['w2s_utils']}, report schema {result['schema']}",
        *textwrap.wrap(thresholds, 100, initial_indent="  ", subsequent_indent="    "),
    ]


def format_report(result: dict[str, Any], *, explain: bool = False) -> str:
    """Render :func:`check_arrays`' dict as aligned plain text: tables, then the legend (with
    ``explain=True`` also what each result states and assumes, :data:`EXPLAIN`)."""
    lines = _header(result)
    names = list(result["metrics"])
    label_w = 36
    lines += ["", "Predictors".ljust(label_w) + "".join(_fmt(n) for n in names)]
    keys: list[str] = []
    for m in result["metrics"].values():
        keys += [k for k in m if k not in keys]
    for key in keys:
        label = _METRIC_LABELS.get(key, key).format(n_bins=result["n_bins"])
        vals = [result["metrics"][n].get(key) for n in names]
        lines.append(("  " + label).ljust(label_w) + "".join(_fmt(v) for v in vals))
    w2s = [
        (_W2S_LABELS[key].format(loss="CE" if truth == "labels" else "Err"), val, _TRUTH[truth])
        for truth, vals in result["w2s"].items()
        for key, val in vals.items()
        if truth == "labels" or key not in ("eps", "eps_rev", "misfit_sq") or len(vals) == 1
    ]  # eps, eps_rev, misfit_sq need no truth: listed once
    text_w = max(len(t) for t, _, _ in w2s) + 4
    lines += ["", "Weak to strong (student vs weak)".ljust(text_w + 12) + "  [truth]"]
    lines += [("  " + t).ljust(text_w) + _fmt(v) + f"  [{truth}]" for t, v, truth in w2s]
    for kind, title in (
        ("always", "Results that always hold (under their stated floor)"),
        (
            "conditional",
            "Conditional results (true only under an assumption that predictions cannot show)",
        ),
    ):
        rows = [r for r in result["results"] if r["kind"] == kind]
        if not rows:
            continue
        name_w = max(len(f"{r['name']} [{r['truth']}]") for r in rows) + 2
        lines += ["", title]
        lines.append(
            "  " + "result".ljust(name_w) + _fmt("lhs") + _fmt("rhs") + _fmt("slack") + "  status"
        )
        for r in rows:
            label = f"{r['name']} [{r['truth']}]"
            lines.append(
                "  "
                + label.ljust(name_w)
                + _fmt(r["lhs"])
                + _fmt(r["rhs"])
                + _fmt(r["slack"])
                + "  "
                + _status_cell(r)
            )
            detail = _detail(r) if r.get("result") else None
            for text in (detail, r.get("vacuous_because"), r.get("why")):
                if text:
                    lines += textwrap.wrap(
                        text, 100, initial_indent=" " * 6, subsequent_indent=" " * 8
                    )
    if result["skipped"]:
        lines += ["", "Not computed"]
        lines += [f"  {s['name']}: {s['reason']}" for s in result["skipped"]]
    if result["notes"]:
        lines += ["", "Notes"]
        lines += [f"  {note}" for note in result["notes"]]
    lines += ["", "Legend"]
    width = max(len(k) for k in result["legend"]) + 4
    for key, text in result["legend"].items():
        wrapped = textwrap.wrap(text, 100 - width)
        lines.append(f"  {key.ljust(width - 2)}{wrapped[0]}")
        lines += [" " * width + more for more in wrapped[1:]]
    if explain:
        lines += ["", "What each result states"]
        seen = []
        for r in result["results"]:
            name = r.get("result") or r["name"]
            if name in EXPLAIN and name not in seen:
                seen.append(name)
                lines += textwrap.wrap(
                    f"{name}: {EXPLAIN[name]}", 100, initial_indent="  ", subsequent_indent="    "
                )
    else:
        lines.append("  (--explain: what each result states and assumes)")
    return "\n".join(lines)
