"""A whole grid, trained run by run and stacked: wall time side by side (``run_grid``).

Runs one weak-to-strong grid (one dataset, the preset's teachers, ``--seeds`` seeds) twice in
this process, each time into a fresh cache folder: ``trainer="loop"`` (every weak model,
ceiling and student trained on its own, the reference) and ``trainer="stacked"`` (the seeds of
each teacher stacked, the ceilings stacked, all students of the grid in one stack). The data and
the frozen trunk states (cached-trunk modes) are prepared once beforehand and shared by both, so
the two timings hold training and prediction only. Prints one table; the same grid's student
accuracies (mean over seeds and teachers) show the two give the same results up to dropout's
draws.

    python benchmarks/bench_grid.py [--preset ci] [--dataset sarcasm] [--seeds 2]
        [--w2s-train 600] [--device cpu|cuda]
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch


def _grid(args, trainer: str):
    from w2s_utils.engine.experiment import run_grid
    from w2s_utils.engine.presets import get_preset

    p = get_preset(args.preset)
    sizes = p.sizes_for(args.dataset)
    if args.w2s_train:
        sizes = replace(sizes, w2s_train=args.w2s_train, weak_train=args.w2s_train // 2)
    return run_grid(
        args.dataset,
        seeds=args.seeds,
        preset=args.preset,
        sizes=sizes,
        trainer=trainer,
        progress=False,
    )


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--preset", default="ci")
    ap.add_argument("--dataset", default="sarcasm")
    ap.add_argument("--seeds", type=int, default=2)
    ap.add_argument("--w2s-train", type=int, default=600, help="0: the preset's sizes")
    ap.add_argument("--device", default=None)
    args = ap.parse_args(argv)
    if args.device:
        os.environ["W2S_DEVICE"] = args.device
    root = Path(tempfile.mkdtemp(prefix="bench-grid-"))
    try:
        # shared preparation: data and trunk states, computed by a throwaway loop run
        os.environ["W2S_CACHE_DIR"] = str(root / "warm")
        t = time.perf_counter()
        _grid(args, "loop")
        warm = time.perf_counter() - t
        rows = []
        for trainer in ("loop", "stacked"):
            folder = root / trainer
            folder.mkdir()
            for shared in ("data", "features", "wheels"):
                if (root / "warm" / shared).exists():
                    (folder / shared).symlink_to(root / "warm" / shared)
            os.environ["W2S_CACHE_DIR"] = str(folder)
            cpu, t = time.process_time(), time.perf_counter()
            runs = _grid(args, trainer)
            wall, cpu = time.perf_counter() - t, time.process_time() - cpu
            acc = np.mean([r.summary["acc_student"] for r in runs])
            rows.append((trainer, len(runs), wall, cpu, acc))
    finally:
        shutil.rmtree(root, ignore_errors=True)
    dev = os.environ.get("W2S_DEVICE") or ("cuda" if torch.cuda.is_available() else "cpu")
    print(
        f"grid: {args.dataset}, preset {args.preset}, {args.seeds} seeds, "
        f"w2s_train {args.w2s_train or 'preset'}; device {dev}, {torch.get_num_threads()} "
        f"threads; load average {os.getloadavg()[0]:.1f}; shared preparation {warm:.1f} s"
    )
    print(
        f"{'trainer':<9} {'runs':>5} {'wall s':>8} {'CPU s':>8} {'speed-up':>9} {'student acc':>12}"
    )
    for trainer, n, wall, cpu, acc in rows:
        print(
            f"{trainer:<9} {n:>5} {wall:>8.1f} {cpu:>8.1f} {rows[0][2] / wall:>8.2f}x {acc:>12.4f}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
