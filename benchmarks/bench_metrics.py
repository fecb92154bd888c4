"""Benchmark w2s_utils.metrics against plain numpy reference implementations.

Prints a table: op, size, numpy s, torch s, speed-up, GB/s achieved by the torch version (input +
output bytes / time), and beside it the machine's copy bandwidth (a large torch copy: read + write
bytes / time). Times are the best of ``--repeats`` runs. Not a test.

    /work/venv/bin/python benchmarks/bench_metrics.py [--quick] [--device cpu|cuda|all]
    /work/venv/bin/python benchmarks/bench_metrics.py --smce [--smce-time-limit 60]

``--smce``: the multi-class smooth calibration error, before (the all-pairs LP that
``theory.multiclass_smooth_ce`` solved until 2026-12, kept here as ``old_multiclass_smce``) and
after (column generation with a certified bracket), at N = 100, 400, 2,000, 10,000 and K = 5, 10
on miscalibrated Dirichlet predictions against sampled labels. Each cell runs in its own
subprocess: wall seconds and peak resident memory (``resource.getrusage`` maxrss of the child,
which includes the ~0.3 GB of importing torch). The old LP is only run where its dense
constraint matrix fits (it is reported as the allocation it would need otherwise); the new one
runs to exactness below N = 10,000 and under ``--smce-time-limit`` seconds at 10,000 (the
certified bracket is printed); a third cell runs ``method="sinkhorn"`` (its certified bracket).
``--smce-n 2000,10000`` runs only those sizes.

Notes: inputs are float32 (the precision models produce); the torch ops include the input
validation every public function runs; the ``validate=False`` rows time the kernels alone (what
internal hot loops call). ``smooth_ce`` is compared with scipy HiGHS on the same LP
(the numpy-world reference; row 'smooth_ce (highs|dp)': the numpy column is HiGHS, the torch
column our exact DP) up to 10^5 (at 10^6 HiGHS took ~160 s); the DP runs at 10^6 in a few
seconds, 10^7 (pure-Python loop, ~100 s) is left out of the default sizes. The environment
may set OPENBLAS_CORETYPE; this script neither needs nor changes it. On shared machines timings are
noisy: rerun and compare.
"""

from __future__ import annotations

import argparse
import math
import time
from collections.abc import Callable

import numpy as np
import torch

from w2s_utils import metrics as m


def best_time(fn: Callable[[], object], repeats: int, sync: Callable[[], None]) -> float:
    best = float("inf")
    for _ in range(repeats):
        sync()
        t0 = time.perf_counter()
        fn()
        sync()
        best = min(best, time.perf_counter() - t0)
    return best


# ----------------------------------------------------------------------------- numpy references
def np_kl_binary(p: np.ndarray, q: np.ndarray) -> np.ndarray:
    return p * np.log(p / q) + (1 - p) * np.log((1 - p) / (1 - q))


def np_kl(p: np.ndarray, q: np.ndarray) -> np.ndarray:
    return (p * np.log(p / q)).sum(axis=-1)


def np_ece(probs: np.ndarray, labels: np.ndarray, n_bins: int = 15) -> float:
    if probs.ndim == 1:
        conf = np.maximum(probs, 1 - probs)
        pred = (probs > 0.5).astype(np.int64)
    else:
        conf = probs.max(axis=-1)
        pred = probs.argmax(axis=-1)
    hits = (pred == labels).astype(conf.dtype)
    edges = np.linspace(0, 1, n_bins + 1, dtype=conf.dtype)
    idx = np.searchsorted(edges, conf, side="right") - 1
    count = np.bincount(idx, minlength=n_bins + 1)
    conf_sum = np.bincount(idx, weights=conf, minlength=n_bins + 1)
    hit_sum = np.bincount(idx, weights=hits, minlength=n_bins + 1)
    safe = np.maximum(count, 1)
    return float((np.abs(hit_sum / safe - conf_sum / safe) * count).sum() / count.sum())


def memory_bandwidth(device: torch.device, sync, nbytes: int = 1 << 29) -> float:
    a = torch.empty(nbytes // 4, dtype=torch.float32, device=device).fill_(1.0)
    b = torch.empty_like(a)
    t = best_time(lambda: b.copy_(a), 5, sync)
    return 2 * nbytes / t / 1e9


def row(op: str, size: str, dev: str, t_np: float, t_t: float, gbs: str, bw: str) -> None:
    print(f"{op:<28}{size:>14}{dev:>8}{t_np:>10.4f}{t_t:>10.4f}{t_np / t_t:>9.1f}x{gbs:>8}{bw:>11}")


def bench_device(dev: torch.device, binary: tuple, multi: tuple, repeats: int) -> None:
    """Time KL and ECE, numpy vs torch, on one device."""
    sync = torch.cuda.synchronize if dev.type == "cuda" else (lambda: None)
    bw = f"{memory_bandwidth(dev, sync):.1f}"
    pb, qb, yb = binary
    pm, qm, ym = multi
    tpb, tqb, tyb = (torch.from_numpy(x).to(dev) for x in binary)
    tpm, tqm, tym = (torch.from_numpy(x).to(dev) for x in multi)
    n_bin, (n_mc, k_mc) = len(pb), pm.shape
    sb, sm = f"{n_bin:.0e}", f"{n_mc:.0e}x{k_mc}"
    f32 = 4
    cases = [
        ("kl binary", sb, lambda: np_kl_binary(pb, qb), lambda: m.kl(tpb, tqb), 3 * n_bin * f32),
        (
            "kl 10-class",
            sm,
            lambda: np_kl(pm, qm),
            lambda: m.kl(tpm, tqm),
            (2 * n_mc * k_mc + n_mc) * f32,
        ),
        (
            "kl binary, validate=False",
            sb,
            lambda: np_kl_binary(pb, qb),
            lambda: m.kl(tpb, tqb, validate=False),
            3 * n_bin * f32,
        ),
        (
            "kl 10-class, validate=False",
            sm,
            lambda: np_kl(pm, qm),
            lambda: m.kl(tpm, tqm, validate=False),
            (2 * n_mc * k_mc + n_mc) * f32,
        ),
        ("ece binary", sb, lambda: np_ece(pb, yb), lambda: m.ece(tpb, tyb), n_bin * (f32 + 8)),
        (
            "ece binary, validate=False",
            sb,
            lambda: np_ece(pb, yb),
            lambda: m.ece(tpb, tyb, validate=False),
            n_bin * (f32 + 8),
        ),
        (
            "ece 10-class",
            sm,
            lambda: np_ece(pm, ym),
            lambda: m.ece(tpm, tym),
            n_mc * (k_mc * f32 + 8),
        ),
    ]
    for op, size, f_np, f_t, nbytes in cases:
        t_np = best_time(f_np, repeats, lambda: None)
        t_t = best_time(f_t, repeats, sync)
        row(op, size, dev.type, t_np, t_t, f"{nbytes / t_t / 1e9:.2f}", bw)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="10x smaller inputs")
    ap.add_argument("--device", default="all", choices=["cpu", "cuda", "all"])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument(
        "--threads",
        type=int,
        default=1,
        help="torch CPU threads (default 1: numpy is single-threaded, and on a shared 2-core box "
        "two OpenMP threads thrash)",
    )
    ap.add_argument("--smooth-n", type=int, nargs="*", default=[10_000, 100_000, 1_000_000])
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    scale = 10 if args.quick else 1
    n_bin, (n_mc, k_mc) = 10_000_000 // scale, (1_000_000 // scale, 10)

    devices = [torch.device("cpu")] if args.device in ("cpu", "all") else []
    if args.device in ("cuda", "all") and torch.cuda.is_available():
        devices.append(torch.device("cuda"))
    rng = np.random.default_rng(0)
    pb = (rng.random(n_bin, dtype=np.float32) * 0.98 + 0.01).astype(np.float32)
    qb = (rng.random(n_bin, dtype=np.float32) * 0.98 + 0.01).astype(np.float32)
    yb = (rng.random(n_bin) < pb).astype(np.int64)
    logits = rng.standard_normal((n_mc, k_mc), dtype=np.float32) * 2
    pm = np.exp(logits - logits.max(-1, keepdims=True))
    pm /= pm.sum(-1, keepdims=True)
    qm = np.roll(pm, 1, axis=-1).copy()
    ym = rng.integers(0, k_mc, n_mc)

    print(f"torch {torch.__version__}, threads {torch.get_num_threads()}, numpy {np.__version__}")
    header = f"{'op':<28}{'size':>14}{'device':>8}{'numpy s':>10}{'torch s':>10}"
    header += f"{'speed-up':>10}{'GB/s':>8}{'copy GB/s':>11}"
    print(header)
    print("-" * len(header))
    for dev in devices:
        bench_device(dev, (pb, qb, yb), (pm, qm, ym), args.repeats)
    # smooth CE: exact DP (ours) vs scipy HiGHS on the sparse LP (the same optimum)
    m.smooth_ce(pb[:100], yb[:100], method="highs")  # warm-up: scipy imports
    for n in args.smooth_n:
        p = rng.random(n)
        y = (rng.random(n) < p**1.5).astype(np.int64)
        t_dp = best_time(lambda p=p, y=y: m.smooth_ce(p, y), 1, lambda: None)
        t_hi = float("nan")
        if n <= 100_000:  # HiGHS took ~160 s at 10^6 on the shared dev box
            t_hi = best_time(lambda p=p, y=y: m.smooth_ce(p, y, method="highs"), 1, lambda: None)
        hi_s = "skipped" if math.isnan(t_hi) else f"{t_hi:.3f}"
        ratio = "" if math.isnan(t_hi) else f"{t_hi / t_dp:.1f}x"
        print(
            f"{'smooth_ce (highs|dp)':<28}{n:>14.0e}{'cpu':>8}{hi_s:>10}{t_dp:>10.3f}"
            f"{ratio:>10}{16 * n / t_dp / 1e9:>8.3f}{'':>11}"
        )


# ----------------------------------------------------------------- multi-class smooth CE (--smce)
def old_multiclass_smce(pts: np.ndarray, resid: np.ndarray) -> float:
    """The pre-2026-12 ``theory.multiclass_smooth_ce``: one dense all-pairs LP per class."""
    from scipy.optimize import linprog

    n = pts.shape[0]
    dist = np.abs(pts[:, None, :] - pts[None, :, :]).sum(-1)
    i, j = np.triu_indices(n, 1)
    rows = np.arange(len(i))
    a = np.zeros((2 * len(i), n))
    a[rows, i], a[rows, j] = 1.0, -1.0
    a[len(i) + rows, i], a[len(i) + rows, j] = -1.0, 1.0
    b = np.concatenate([dist[i, j], dist[i, j]])
    total = 0.0
    for k in range(pts.shape[1]):
        res = linprog(-resid[:, k], A_ub=a, b_ub=b, bounds=(-1.0, 1.0), method="highs")
        total += -float(res.fun)
    return total / n


def smce_instance(n: int, k: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Miscalibrated Dirichlet predictions (over-confident, noisy) and labels drawn from F*."""
    rng = np.random.default_rng(seed)
    f_star = rng.dirichlet(np.full(k, 0.5), size=n)
    y = (f_star.cumsum(1) > rng.uniform(size=(n, 1))).argmax(1)
    z = np.log(np.clip(f_star, 1e-12, 1.0)) * 2.0 + rng.normal(0, 0.5, (n, k))
    p = np.exp(z - z.max(1, keepdims=True))
    return p / p.sum(1, keepdims=True), y


def _smce_cell(which: str, n: int, k: int, time_limit: float) -> None:
    """Child process: run one cell, print 'seconds result' on the last line."""
    import resource

    from w2s_utils import theory

    p, y = smce_instance(n, k)
    t0 = time.perf_counter()
    if which == "old":
        out = f"{old_multiclass_smce(p, np.eye(k)[y] - p):.6f}"
    elif which == "sinkhorn":
        r = theory.multiclass_smooth_ce(torch.tensor(p), labels=torch.tensor(y), method="sinkhorn")
        out = f"{r.value:.6f}" if r.exact else f"[{r.lower:.5f}, {r.upper:.5f}]"
        out += f" ({100 * r.width / r.upper:.2f}% wide)"
    else:
        big = n >= 10_000  # the column generation under a time limit, as measured before
        r = theory.multiclass_smooth_ce(
            torch.tensor(p),
            labels=torch.tensor(y),
            method="colgen" if big else "auto",
            time_limit=time_limit if big else None,
        )
        out = f"{r.value:.6f}" if r.exact else f"[{r.lower:.4f}, {r.upper:.4f}]"
    dt = time.perf_counter() - t0
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # KiB -> GiB
    print(f"{dt:.2f} {rss:.2f} {out}")


def bench_smce(time_limit: float, sizes: tuple[int, ...] = (100, 400, 2_000, 10_000)) -> None:
    import subprocess
    import sys

    print(
        f"{'N':>7}{'K':>4}{'before s':>10}{'before GiB':>14}{'after s':>9}{'after GiB':>11}"
        f"{'sinkhorn s':>12}{'sinkhorn GiB':>14}  result (old -> colgen; sinkhorn)"
    )
    for n in sizes:
        for k in (5, 10):
            cells = {}
            for which in ("old", "new", "sinkhorn"):
                need = 2 * (n * (n - 1) // 2) * n * 8 / 2**30  # the old dense constraint matrix
                if which == "old" and (need > 8 or n > 400):
                    cells[which] = ("-", f"needs {need:.1f}", "MemoryError")
                    continue
                cmd = [
                    sys.executable,
                    __file__,
                    "--smce-cell",
                    which,
                    str(n),
                    str(k),
                    str(time_limit),
                ]
                last = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
                sec, gib, res = last.strip().splitlines()[-1].split(" ", 2)
                cells[which] = (sec, gib, res)
            (ob, om, ores), (nb, nm, nres) = cells["old"], cells["new"]
            sb, sm, sres = cells["sinkhorn"]
            print(
                f"{n:>7}{k:>4}{ob:>10}{om:>14}{nb:>9}{nm:>11}{sb:>12}{sm:>14}"
                f"  {ores} -> {nres}; {sres}"
            )


if __name__ == "__main__":
    import sys

    if len(sys.argv) > 1 and sys.argv[1] == "--smce-cell":
        _smce_cell(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), float(sys.argv[5]))
    elif "--smce" in sys.argv:
        i = sys.argv.index("--smce-time-limit") if "--smce-time-limit" in sys.argv else -1
        j = sys.argv.index("--smce-n") if "--smce-n" in sys.argv else -1
        sizes = tuple(int(x) for x in sys.argv[j + 1].split(",")) if j > 0 else None
        bench_smce(float(sys.argv[i + 1]) if i > 0 else 60.0, *([sizes] if sizes else []))
    else:
        main()
