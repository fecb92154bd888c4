"""Chapter 5's synthetic figure against Charikar et al.'s reference notebook: wall time.

The reference (github.com/chogba/wtsg-regression, ``wts.ipynb``) trains every representation and
every head by minibatch AdamW for 1,000 epochs (about 20 million optimizer steps); the book learns
the two representations by a few thousand Adam steps and fits every head by exact least squares.
This script times the book's figure cold (a fresh cache folder) and prints it beside the
reference's extrapolated full run.

The reference's time is a measurement of *its own code*, run outside this project: its notebook
with ``num_epochs`` cut to a few epochs, each training cell timed, the per-step time extrapolated
to 1,000 epochs. Pass ``--reference PATH/TO/wts.ipynb`` to repeat that measurement here (it
executes the notebook's cells from that path, in this process, with ``--epochs`` epochs); without
it the recorded measurement ``w2s_utils.book.ch5_squared_loss.REFERENCE_TIMING`` is used.

    python benchmarks/bench_charikar_reference.py [--preset ci] [--reference wts.ipynb --epochs 2]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import tempfile
import time
from pathlib import Path

#: the reference notebook's code cells that train (representations x 2, weak heads, strong
#: ceiling heads, student heads) and the optimizer steps each takes per epoch (2,000 inputs in
#: batches of 32 = 63 steps; 10 representation tasks, 100 transfer tasks)
_TRAINING_CELLS = {10: 10 * 63, 12: 10 * 63, 16: 100 * 63, 19: 100 * 63, 25: 100 * 63}
_SKIP = {3, 6, 17, 20, 26, 30}  # prints and plots


def time_reference(path: Path, epochs: int) -> dict[str, float]:
    """Run the reference notebook's code cells with ``num_epochs = epochs``; time its training."""
    import matplotlib

    matplotlib.use("Agg")
    cells = json.loads(path.read_text())["cells"]
    ns: dict[str, object] = {}
    seconds = 0.0
    for i, c in enumerate(cells):
        if c["cell_type"] != "code" or i in _SKIP:
            continue
        src = "".join(c["source"]).replace("num_epochs = 1000", f"num_epochs = {epochs}")
        t = time.perf_counter()
        with contextlib.redirect_stdout(io.StringIO()):
            exec(compile(src, f"{path.name}[{i}]", "exec"), ns)  # noqa: S102 - the point
        if i in _TRAINING_CELLS:
            seconds += time.perf_counter() - t
    steps = sum(_TRAINING_CELLS.values()) * epochs
    return {"steps": steps, "seconds": seconds, "full_steps": sum(_TRAINING_CELLS.values()) * 1000}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--preset", default="ci")
    ap.add_argument("--reference", type=Path, default=None, help="path to the reference wts.ipynb")
    ap.add_argument("--epochs", type=int, default=2, help="reference epochs to time")
    args = ap.parse_args()

    from w2s_utils.book.ch5_squared_loss import REFERENCE_TIMING, reference_extrapolation

    timing = dict(REFERENCE_TIMING)
    if args.reference is not None:
        timing = {**time_reference(args.reference, args.epochs), "measured": "now"}

    with tempfile.TemporaryDirectory() as tmp:
        os.environ["W2S_CACHE_DIR"] = tmp  # cold: nothing cached
        from w2s_utils.engine.presets import get_preset
        from w2s_utils.engine.regression import charikar_synthetic

        grid = get_preset(args.preset).squared_loss
        t = time.perf_counter()
        table, ours_timing = charikar_synthetic(grid)
        ours = time.perf_counter() - t
    ext = reference_extrapolation(ours, timing)
    print(f"load average {os.getloadavg()[0]:.1f}; reference timing: {timing['measured']}")
    print(f"{'':38s} {'steps':>12s} {'seconds':>10s}")
    print(f"{'reference, timed':38s} {timing['steps']:>12,d} {timing['seconds']:>10.1f}")
    print(
        f"{'reference, full run (extrapolated)':38s} {int(ext['full_steps']):>12,d} "
        f"{ext['full_seconds']:>10.0f}"
    )
    print(
        f"{'book figure, cold (' + str(len(table)) + ' task rows)':38s} "
        f"{2 * grid.rep_steps:>12,d} {ours:>10.1f}"
    )
    print(f"  of which representations: {ours_timing.parts['representations']:.1f} s")
    print(f"ratio reference / book: {ext['ratio']:.0f}x")


if __name__ == "__main__":
    main()
