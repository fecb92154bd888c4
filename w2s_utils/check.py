"""``python -m w2s_utils check FILE.npz``: every metric and every applicable theorem for saved
predictions.

The file is a numpy ``.npz`` archive (``numpy.savez(path, weak=..., student=..., labels=...)``):

- ``weak``, ``student``: probabilities ``[N]`` (binary, positive class) or ``[N, K]``;
- ``labels``: integer class labels ``[N]``;
- optional ``ceiling`` (the strong model trained on ground truth; same shape) and ``f_star`` (the
  ground-truth conditional ``P(Y | x)``, known on planted tasks; same shape).

For each predictor: accuracy, test cross-entropy, binned ECE, and for binary tasks smooth CE and
AUROC (plus ``Err = E KL(F*||.)`` with ``f_star``); the misfit between student and weak in all
three kinds; PGR (on accuracy and on cross-entropy) with a ceiling. Then both sides and the slack of
every theorem the file allows (:mod:`w2s_utils.theory`): the label versions always, the ``F*``
versions with ``f_star``; Theorem 2 only for binary tasks. Beside Theorem 1 come its sharp forms:
the label-free interval, every link of the generalization chain and the oscillation bound.
Theorem 3, the forward-KL identity and Charikar's inequality are *conditional*: their hypotheses (a
convex class containing ``F*``, the student being the projection) cannot be verified from
predictions, so they are reported apart.

Library entry point: :func:`check_arrays`. Bad input raises ``ValueError`` (the CLI exits with 2);
anything but a regular, readable file (a FIFO, a device such as ``/dev/zero``) is refused before it
is opened. A result whose sides cannot be evaluated (NaN, or both infinite) is listed under
``skipped`` as undefined, never as holding.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import stat
import zipfile
from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from w2s_utils import metrics, theory
from w2s_utils._validate import as_two_class, check_int, check_labels, check_number
from w2s_utils.theory import _base as theory_base

__all__ = [
    "REQUIRED",
    "OPTIONAL",
    "add_check_parser",
    "check_arrays",
    "check_file",
    "format_report",
]

REQUIRED = ("weak", "student", "labels")
OPTIONAL = ("ceiling", "f_star")
_PREDICTORS = ("weak", "student", "ceiling")
#: Most bins of the binned ECE (more leaves nearly every bin empty, and allocates for nothing).
MAX_BINS = 100_000
#: Most elements one array of a checked file may declare (2^27: 1 GiB once read as float64).
MAX_ELEMENTS = 1 << 27


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


def _prepare(
    weak: Any, student: Any, labels: Any, ceiling: Any, f_star: Any
) -> tuple[dict[str, torch.Tensor], torch.Tensor, torch.Tensor | None]:
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
    fs = None
    if f_star is not None:
        fs = _as_probs(f_star, "f_star")
        if fs.shape != ref.shape:
            raise ValueError(
                f"f_star: shape {tuple(fs.shape)} does not match weak's {tuple(ref.shape)}; "
                "save the ground-truth probabilities for the same examples and classes"
            )
    if isinstance(labels, np.ndarray) and labels.dtype == object:
        raise ValueError("labels: holds Python objects; save integer class labels")
    y = check_labels(labels, ref.shape[1], "labels")
    if y.dim() != 1 or y.shape[0] != ref.shape[0]:
        raise ValueError(
            f"labels: shape {tuple(y.shape)} does not match the {ref.shape[0]} prediction rows; "
            "save one integer label per example, a 1-D array [N]"
        )
    return preds, y, fs


# --------------------------------------------------------------------------- metrics
def _finite(x: float) -> float | None:
    return x if math.isfinite(x) else None


def _predictor_metrics(
    p: torch.Tensor,
    y: torch.Tensor,
    fs: torch.Tensor | None,
    n_bins: int,
    notes: list[str],
    name: str,
) -> dict[str, float | None]:
    one_hot = torch.nn.functional.one_hot(y, p.shape[1]).to(p.dtype)
    out: dict[str, float | None] = {
        "accuracy": metrics.accuracy(p, y),
        "cross_entropy": float(metrics.cross_entropy(one_hot, p, validate=False).mean()),
        "ece": metrics.ece(p, y, n_bins),
    }
    if p.shape[1] == 2:
        out["smooth_ce"] = metrics.smooth_ce(p, y)
        try:
            out["auroc"] = metrics.auroc(p, y)
        except ValueError as err:
            out["auroc"] = None
            notes.append(f"AUROC of {name} undefined: {err}")
    if fs is not None:
        out["err"] = float(metrics.kl(fs, p, validate=False).mean())
    return out


_METRIC_LABELS = {
    "accuracy": "accuracy",
    "cross_entropy": "cross-entropy (test)",
    "ece": "ECE ({n_bins} bins, top label)",
    "smooth_ce": "smooth CE",
    "auroc": "AUROC",
    "err": "Err = E KL(F*||.)",
}

_MISFIT_LABELS = {
    "kl_weak_student": "E KL(weak||student)  (eps, the objective)",
    "kl_student_weak": "E KL(student||weak)  (eps_rev)",
    "squared": "E ||student - weak||^2",
}


# --------------------------------------------------------------------------- theorems
_SHARP_FS = ("Label-free interval [F*]", "Generalization chain [F*]", "Oscillation bound [F*]")


def _theorem_rows(
    preds: dict[str, torch.Tensor],
    y: torch.Tensor,
    fs: torch.Tensor | None,
    n_bins: int,
    gamma: float | None,
) -> tuple[list[dict[str, Any]], list[dict[str, str]]]:
    w, s = preds["weak"], preds["student"]
    binary = w.shape[1] == 2
    rows: list[dict[str, Any]] = []
    skipped: list[dict[str, str]] = []
    plans: list[tuple[str, bool, Callable[[], Any] | None, str]] = []

    def plan(name: str, guaranteed: bool, fn: Callable[[], Any] | None, reason: str = "") -> None:
        plans.append((name, guaranteed, fn, reason))

    no_fs = "needs f_star (ground-truth probabilities) in the file"
    plan("Lemma 1 [labels]", True, lambda: theory.error_decomposition(_one_hot(y, w), w, s))
    plan(
        "Theorem 1 [labels]", True, lambda: theory.generalization_bound(w, s, labels=y, gamma=gamma)
    )
    plan("Theorem 1 alt. [labels]", True, lambda: theory.misfit_centred_bound(w, s, labels=y))
    plan("Label-free interval [labels]", True, lambda: theory.label_free_interval(w, s, labels=y))
    plan(
        "Generalization chain [labels]",
        True,
        lambda: theory.generalization_chain(w, s, labels=y, gamma=gamma),
    )
    plan("Oscillation bound [labels]", True, lambda: theory.oscillation_bound(w, s, labels=y))
    if binary:
        plan(
            "Theorem 2 [labels]",
            True,
            lambda: theory.calibration_bound(w, s, labels=y, n_bins=n_bins),
        )
    else:
        plan("Theorem 2", True, None, f"binary tasks only (K = {w.shape[1]})")
    if fs is not None:
        plan("Lemma 1 [F*]", True, lambda: theory.error_decomposition(fs, w, s))
        plan(
            "Theorem 1 [F*]",
            True,
            lambda: theory.generalization_bound(w, s, f_star=fs, gamma=gamma),
        )
        plan("Theorem 1 alt. [F*]", True, lambda: theory.misfit_centred_bound(w, s, f_star=fs))
        plan("Label-free interval [F*]", True, lambda: theory.label_free_interval(w, s, f_star=fs))
        plan(
            "Generalization chain [F*]",
            True,
            lambda: theory.generalization_chain(w, s, f_star=fs, gamma=gamma),
        )
        plan("Oscillation bound [F*]", True, lambda: theory.oscillation_bound(w, s, f_star=fs))
        if binary:
            plan(
                "Theorem 2 [F*]",
                True,
                lambda: theory.calibration_bound(w, s, f_star=fs, n_bins=n_bins),
            )
        for name, p in preds.items():
            plan(
                f"ECE check [{name}]",
                True,
                lambda p=p: theory.ece_bound(p, fs, n_bins=n_bins),
            )
        plan("Theorem 3", False, lambda: theory.kl_misfit_gain(fs, w, s))
        plan("Forward-KL identity", False, lambda: theory.forward_kl_identity(fs, w, s))
        plan("Charikar et al.", False, lambda: theory.squared_misfit_gain(fs, w, s))
    else:
        for name in ("Lemma 1 [F*]", "Theorem 1 [F*]", "Theorem 1 alt. [F*]", *_SHARP_FS):
            plan(name, True, None, no_fs)
        plan("ECE check", True, None, no_fs)
        if binary:
            plan("Theorem 2 [F*]", True, None, no_fs)
        for name in ("Theorem 3", "Forward-KL identity", "Charikar et al."):
            plan(name, False, None, no_fs)

    for name, guaranteed, fn, reason in plans:
        if fn is None:
            skipped.append({"name": name, "reason": reason})
            continue
        try:
            res = fn()
        except ValueError as err:
            msg = str(err)
            if isinstance(err, theory_base.UndefinedResultError):
                skipped.append({"name": name, "reason": f"undefined: {msg}"})
                continue
            if gamma is not None and "gamma" in msg:
                raise  # the user asked for this floor: the data violate it
            if "zero probabilities" not in msg:
                raise
            skipped.append(
                {"name": name, "reason": f"{msg} (or pass --gamma G --clip on the command line)"}
            )
            continue
        row = res.as_dict()
        row["name"] = name
        row["guaranteed"] = guaranteed
        rows.append(row)
    return rows, skipped


def _one_hot(y: torch.Tensor, ref: torch.Tensor) -> torch.Tensor:
    return torch.nn.functional.one_hot(y, ref.shape[1]).to(ref.dtype)


def check_arrays(
    weak: Any,
    student: Any,
    labels: Any,
    ceiling: Any = None,
    f_star: Any = None,
    *,
    n_bins: int = 15,
    gamma: float | None = None,
    clip: bool = False,
) -> dict[str, Any]:
    """All metrics and all applicable theorem checks for one set of predictions, as a dict.

    Keys: ``n``, ``n_classes``, ``binary``, ``arrays`` (which were given), ``metrics`` (per
    predictor), ``misfit`` (student vs weak, three kinds), ``pgr`` (with a ceiling: on accuracy and
    on cross-entropy, ``None`` when the ceiling does not beat the weak model by > 1e-3),
    ``theorems`` (one dict per check: ``name``, ``guaranteed``, ``lhs``, ``rhs``, ``slack``,
    ``holds`` and the quantities used), ``skipped`` (``name``, ``reason``), ``notes``.
    ``gamma`` is Theorem 1's floor (default: the empirical one); with ``clip=True`` the predictors
    are first clipped to it (:func:`w2s_utils.theory.clip_to_floor`). Non-finite values stay
    ``inf``/``nan`` here (:func:`format_report`/JSON render them).
    """
    n_bins = check_int(n_bins, "n_bins", minimum=1, maximum=MAX_BINS)
    if gamma is not None:
        gamma = check_number(gamma, "gamma", lo=0.0, hi=1.0, lo_open=True)
    if clip and gamma is None:
        raise ValueError("clip: needs a floor; pass gamma (--gamma G) together with clip")
    preds, y, fs = _prepare(weak, student, labels, ceiling, f_star)
    notes: list[str] = []
    if clip:
        preds = {k: theory.clip_to_floor(v, gamma) for k, v in preds.items()}
        notes.append(f"weak/student/ceiling clipped to the floor gamma = {gamma:g} before checking")
    elif gamma is not None:
        for name in ("weak", "student"):
            low = float(preds[name].min())
            if low < gamma:
                raise ValueError(
                    f"{name}: has probabilities down to {low:.4g} < gamma = {gamma:g}, so Theorem "
                    "1's floor hypothesis fails; add --clip (clip=True) to clip the predictions "
                    "to the floor first, or pass a smaller --gamma"
                )
    n, k = preds["weak"].shape
    per = {name: _predictor_metrics(p, y, fs, n_bins, notes, name) for name, p in preds.items()}
    misfit = {
        kind: metrics.misfit(preds["student"], preds["weak"], kind) for kind in metrics.MISFIT_KINDS
    }
    out: dict[str, Any] = {
        "n": int(n),
        "n_classes": int(k),
        "binary": k == 2,
        "n_bins": n_bins,
        "arrays": sorted(
            [
                "weak",
                "student",
                "labels",
                *(["ceiling"] if ceiling is not None else []),
                *(["f_star"] if f_star is not None else []),
            ]
        ),
        "metrics": per,
        "misfit": misfit,
    }
    if "ceiling" in preds:
        acc = [per[m]["accuracy"] for m in _PREDICTORS]
        nce = [-per[m]["cross_entropy"] for m in _PREDICTORS]  # higher is better
        pgr = {"accuracy": metrics.pgr(*acc), "cross_entropy": _pgr_or_nan(nce)}
        for key, val in pgr.items():
            if math.isnan(val):
                notes.append(
                    f"PGR on {key} undefined: the ceiling does not beat the weak model by > 1e-3"
                )
        out["pgr"] = {key: (None if math.isnan(v) else v) for key, v in pgr.items()}
    rows, skipped = _theorem_rows(preds, y, fs, n_bins, gamma)
    out["theorems"] = rows
    out["skipped"] = skipped
    out["notes"] = notes
    return out


def _pgr_or_nan(vals: list[float]) -> float:
    if not all(math.isfinite(v) for v in vals):
        return math.nan
    return float(metrics.pgr(*vals))


# --------------------------------------------------------------------------- file / CLI
def _check_regular_file(path: str, how: str) -> None:
    """Reject what is not a readable regular file *before* opening it (a FIFO or a device such as
    /dev/zero would block or never end)."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        raise FileNotFoundError(f"{path}: no such file; check the path") from None
    except OSError as err:
        raise ValueError(
            f"{path}: cannot be inspected ({err.strerror or err}); check the path and its "
            "permissions"
        ) from err
    mode = st.st_mode
    if stat.S_ISDIR(mode):
        raise ValueError(f"{path}: is a directory; pass an .npz file")
    if not stat.S_ISREG(mode):
        kind = (
            "a FIFO (named pipe)"
            if stat.S_ISFIFO(mode)
            else "a character device"
            if stat.S_ISCHR(mode)
            else "a block device"
            if stat.S_ISBLK(mode)
            else "a socket"
            if stat.S_ISSOCK(mode)
            else "not a regular file"
        )
        raise ValueError(f"{path}: is {kind}, not a regular file; save the arrays to a file: {how}")
    if st.st_size == 0:
        raise ValueError(f"{path}: is empty (0 bytes); {how}")


def _memory_bytes() -> int | None:
    try:
        return int(os.sysconf("SC_PAGE_SIZE")) * int(os.sysconf("SC_PHYS_PAGES"))
    except (AttributeError, ValueError, OSError):
        return None


def _bound_declared_sizes(path: str, names: set[str]) -> None:
    """Read the shape each member ``names`` declares in its ``.npy`` header (without reading its
    data) and refuse sizes that could not be held, before anything is allocated: more than
    :data:`MAX_ELEMENTS` elements in one array, or more than a quarter of this machine's memory
    for all of them as float64 (a small compressed file can declare terabytes)."""
    how = "check the file; to check more predictions, call check.check_arrays on subsets"
    total = 0
    try:
        with zipfile.ZipFile(path) as zf:
            for info in zf.infolist():
                name = info.filename.removesuffix(".npy")
                if name not in names:
                    continue
                with zf.open(info) as fh:
                    try:
                        version = np.lib.format.read_magic(fh)
                        read = (
                            np.lib.format.read_array_header_1_0
                            if version == (1, 0)
                            else np.lib.format.read_array_header_2_0
                        )
                        shape = read(fh)[0]
                    except ValueError as err:
                        raise ValueError(
                            f"{path}: array {name!r} has no valid .npy header ({err}); {how}"
                        ) from err
                elements = math.prod(int(d) for d in shape)
                if elements > MAX_ELEMENTS:
                    raise ValueError(
                        f"{path}: array {name!r} declares shape {tuple(shape)}, {elements:.3g} "
                        f"elements, more than the {MAX_ELEMENTS:,} allowed per array; {how}"
                    )
                total += 8 * elements
    except (zipfile.BadZipFile, OSError, EOFError) as err:
        raise ValueError(f"{path}: not a readable .npz archive ({err}); {how}") from err
    memory = _memory_bytes()
    if memory is not None and total > memory // 4:
        raise ValueError(
            f"{path}: its arrays declare {total / 2**30:.1f} GiB as float64, more than a quarter "
            f"of this machine's {memory / 2**30:.1f} GiB of memory; {how}"
        )


def check_file(
    path: str | os.PathLike[str],
    *,
    n_bins: int = 15,
    gamma: float | None = None,
    clip: bool = False,
) -> dict[str, Any]:
    """Load an ``.npz`` file (see the module docstring) and run :func:`check_arrays` on it."""
    path = os.fspath(path)
    how = "save one with numpy.savez(path, weak=..., student=..., labels=...)"
    _check_regular_file(path, how)
    try:
        with open(path, "rb") as fh:
            magic = fh.read(6)
    except OSError as err:
        raise ValueError(
            f"{path}: cannot be read ({err.strerror or err}); check its permissions, or copy it "
            "to a readable place"
        ) from err
    if magic == b"\x93NUMPY":
        raise ValueError(f"{path}: holds a single array (.npy), not an .npz archive; {how}")
    if not zipfile.is_zipfile(path):
        raise ValueError(f"{path}: not a readable .npz archive (not a zip file); {how}")
    try:
        archive = np.load(path, allow_pickle=False)
    except (ValueError, OSError, EOFError, zipfile.BadZipFile) as err:
        raise ValueError(
            f"{path}: not a readable .npz archive ({err}); save one with "
            "numpy.savez(path, weak=..., student=..., labels=...)"
        ) from err
    if not isinstance(archive, np.lib.npyio.NpzFile):
        raise ValueError(
            f"{path}: holds a single array (.npy), not an .npz archive; save one with "
            "numpy.savez(path, weak=..., student=..., labels=...)"
        )
    with archive:
        names = set(archive.files)
        _bound_declared_sizes(path, names & {*REQUIRED, *OPTIONAL})
        missing = [k for k in REQUIRED if k not in names]
        if missing:
            raise ValueError(
                f"{path}: missing array(s) {', '.join(missing)}; found "
                f"{', '.join(sorted(names)) or 'none'}. Required: {', '.join(REQUIRED)}; "
                f"optional: {', '.join(OPTIONAL)}"
            )
        try:
            arrays = {k: archive[k] for k in (*REQUIRED, *OPTIONAL) if k in names}
        except (ValueError, OSError, EOFError, zipfile.BadZipFile) as err:
            raise ValueError(f"{path}: cannot read an array ({err})") from err
    out = check_arrays(
        arrays["weak"],
        arrays["student"],
        arrays["labels"],
        arrays.get("ceiling"),
        arrays.get("f_star"),
        n_bins=n_bins,
        gamma=gamma,
        clip=clip,
    )
    extra = sorted(names - set(REQUIRED) - set(OPTIONAL))
    if extra:
        out["notes"].append(f"ignored array(s): {', '.join(extra)}")
    out["file"] = path
    return out


def _json_ready(x: Any) -> Any:
    if isinstance(x, dict):
        return {k: _json_ready(v) for k, v in x.items()}
    if isinstance(x, list | tuple):
        return [_json_ready(v) for v in x]
    if isinstance(x, float) and not math.isfinite(x):
        return None
    if isinstance(x, np.generic):
        return _json_ready(x.item())
    return x


def _fmt(x: Any, width: int = 12) -> str:
    """Right-aligned cell, always separated from its left neighbour by at least one space."""
    if x is None:
        text = "-"
    elif isinstance(x, bool):
        text = "yes" if x else "NO"
    elif isinstance(x, float):
        text = f"{x:.5g}"
    else:
        text = str(x)
    return " " + text.rjust(width - 1)


def format_report(result: dict[str, Any]) -> str:
    """Render :func:`check_arrays`' dict as aligned plain-text tables."""
    lines: list[str] = []
    head = f"w2s check: {result['file']}" if "file" in result else "w2s check"
    lines.append(f"{head}  (N = {result['n']}, K = {result['n_classes']})")
    lines.append("")
    names = list(result["metrics"])
    label_w = 34
    lines.append("Metrics".ljust(label_w) + "".join(_fmt(n) for n in names))
    keys: list[str] = []
    for m in result["metrics"].values():
        keys += [k for k in m if k not in keys]
    for key in keys:
        label = _METRIC_LABELS.get(key, key).format(n_bins=result["n_bins"])
        vals = [result["metrics"][n].get(key) for n in names]
        lines.append(("  " + label).ljust(label_w) + "".join(_fmt(v) for v in vals))
    lines.append("")
    lines.append("Misfit (student vs weak)")
    for kind, val in result["misfit"].items():
        lines.append(("  " + _MISFIT_LABELS[kind]).ljust(label_w + 10) + _fmt(val))
    if "pgr" in result:
        lines.append("")
        lines.append("PGR = (student - weak) / (ceiling - weak)")
        for key, val in result["pgr"].items():
            lines.append(f"  on {key}".ljust(label_w + 10) + _fmt(val))
    for guaranteed in (True, False):
        rows = [r for r in result["theorems"] if r["guaranteed"] is guaranteed]
        if not rows:
            continue
        lines.append("")
        if guaranteed:
            lines.append("Theorems (always true under their stated floor; lhs <= rhs)")
        else:
            lines.append(
                "Conditional results (true only if the student is the projection onto a convex "
                "class containing F*;"
            )
            lines.append("  not checkable from predictions: a failure means the hypotheses fail)")
        name_w = max(len(r["name"]) for r in rows) + 2
        lines.append(
            "  "
            + "check".ljust(name_w)
            + _fmt("lhs")
            + _fmt("rhs")
            + _fmt("slack")
            + _fmt("holds", 7)
            + "   relation"
        )
        for r in rows:
            lines.append(
                "  "
                + r["name"].ljust(name_w)
                + _fmt(r["lhs"])
                + _fmt(r["rhs"])
                + _fmt(r["slack"])
                + _fmt(r["holds"], 7)
                + "   "
                + r["relation"]
            )
        if guaranteed:
            lines.append(
                "    [labels]: Err is the test cross-entropy (exact on the sample; differences of "
                "Err equal differences of CE)"
            )
        for r in rows:
            lines += _extra_lines(r)
    if result["skipped"]:
        lines.append("")
        lines.append("Skipped")
        for s in result["skipped"]:
            lines.append(f"  {s['name']}: {s['reason']}")
    if result["notes"]:
        lines.append("")
        lines.append("Notes")
        lines += [f"  {note}" for note in result["notes"]]
    return "\n".join(lines)


def _g(x: Any) -> str:
    return "-" if x is None else f"{x:.4g}"


def _extra_lines(r: dict[str, Any]) -> list[str]:
    """The quantities behind a Theorem 1 row or one of its sharp forms, one line each."""
    kind, name = r.get("result"), r["name"]
    if kind == theory.GeneralizationBoundResult.NAME:
        return [
            f"    {name}: gamma = {r['gamma']:.4g} ({r['gamma_source']}), E TV = "
            f"{r['mean_tv']:.4g}, eps = {r['eps']:.4g}, eps_rev = {r['eps_rev']:.4g}, "
            f"sqrt(eps/2)/gamma = {r['bound_eps']:.4g}"
        ]
    if kind == theory.LabelFreeIntervalResult.NAME:
        return [
            f"    {name}: gain in [{r['lower']:.4g}, {r['upper']:.4g}], containing [-eps, eps_rev] "
            f"= [{-r['eps']:.4g}, {r['eps_rev']:.4g}]; gain = {_g(r['gain'])}, "
            f"share of its side used = {_g(r['fraction_used'])}"
        ]
    if kind == theory.GeneralizationChainResult.NAME:
        return [
            f"    {name}: |gain| = {_g(r['abs_gain'])} <= {r['mean_max_abs_log_ratio']:.4g} "
            f"<= {r['mean_log_tv']:.4g} <= {r['log_mean_tv']:.4g} <= {r['log_pinsker']:.4g}; "
            f"E TV/gamma = {r['bound_tv']:.4g}, log(1/gamma) = {r['trivial']:.4g} "
            f"(gamma = {r['gamma']:.4g})"
        ]
    if kind == theory.OscillationBoundResult.NAME:
        return [
            f"    {name}: |gain + eps| = {r['lhs']:.4g} <= E[osc TV] = {r['mid']:.4g} <= "
            f"{r['rhs']:.4g} <= M sqrt(2 Err(F_w)) = {r['old_width']:.4g}"
        ]
    return []


def _run_check(args: argparse.Namespace) -> int:
    result = check_file(args.file, n_bins=args.n_bins, gamma=args.gamma, clip=args.clip)
    if args.json:
        print(json.dumps(_json_ready(result), indent=2, allow_nan=False))
    else:
        print(format_report(result))
    failed = [r["name"] for r in result["theorems"] if r["guaranteed"] and not r["holds"]]
    return 1 if failed else 0


def add_check_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Register ``check FILE.npz [--json] [--n-bins 15] [--gamma G] [--clip]``.

    Exit status: 0 when every guaranteed check holds, 1 if one fails (a bug: they are theorems),
    2 for unusable input (raised as ``ValueError``/``FileNotFoundError``, mapped by the CLI).
    """
    p = subparsers.add_parser(
        "check",
        help="metrics and theorem checks for saved predictions (.npz)",
        description=(
            "Print every metric and every applicable theorem's two sides and slack for the "
            "predictions in FILE.npz: arrays weak, student ([N] or [N, K] probabilities), labels "
            "([N] ints); optional ceiling, f_star."
        ),
    )
    p.add_argument("file", metavar="FILE.npz", help="numpy .npz archive with the predictions")
    p.add_argument("--json", action="store_true", help="print machine-readable JSON")
    p.add_argument(
        "--n-bins", type=int, default=15, help="bins for the binned ECE, 1..100000 (default 15)"
    )
    p.add_argument(
        "--gamma",
        type=float,
        default=None,
        help="Theorem 1's floor (default: the empirical min of weak and student)",
    )
    p.add_argument(
        "--clip",
        action="store_true",
        help="clip the predictions to the floor --gamma first (keeps ratios above it)",
    )
    p.set_defaults(func=_run_check)
    return p
