"""Batched vs one-at-a-time training: steps/s and achieved FLOP/s against the GEMM peak.

Trains the same M runs (seeds 0..M-1 of one model on the same texts and soft targets, the
training loop's settings) twice in one process: one after another with ``model.fit`` (the
reference loop) and all together with :func:`w2s_utils.engine.batched.train_stacked`, and prints
one table side by side. Wall time covers the whole training call (tokenising or loading cached
states, every step, the end-of-epoch evaluation), not model construction.

    python benchmarks/bench_batched.py [--runs 4] [--steps 8] [--batch 32] [--threads 2]
        [--model minilm-l6] [--mode full|cached-trunk] [--device cpu|cuda] [--max-length 64]

Columns: wall and CPU seconds (CPU: all threads of this process, the fairer figure on a shared
machine), run-steps/s (optimizer steps of single runs per wall second, M per stacked step), the
speed-up, and achieved FLOP/s = useful FLOPs / wall time, as a fraction of the measured GEMM rate
(fp32 1024^3 on CPU, bf16 8192^3 on CUDA; ``bench_engine.gemm_rate``). Useful FLOPs count each
run's real (unpadded) tokens: 3 x (2 x trainable-layer parameters x tokens + 4 x layers x
length^2 x hidden) per example and epoch, so padding to the longest text of a batch, or of the M
runs' batches, shows up as lost efficiency rather than as work.
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_engine import _rate, _sync, _texts, gemm_rate  # noqa: E402


def _useful_flops(model, texts: list[str], epochs: float) -> float:
    """Forward + backward FLOPs of one run over ``texts`` on their real token counts."""
    cfg = model.backbone.config
    layers = model.layers if model.mode == "full" else model.layers[model.frozen :]
    params = sum(p.numel() for p in layers.parameters())
    n_layers = len(layers)
    lengths = np.array(
        [
            len(t)
            for t in model.tokenizer(texts, truncation=True, max_length=model.max_length)[
                "input_ids"
            ]
        ]
    )
    fwd = 2 * params * lengths.sum() + 4 * n_layers * (lengths**2).sum() * cfg.hidden_size
    return float(3 * fwd * epochs)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=4)
    ap.add_argument("--steps", type=int, default=8, help="optimizer steps per run")
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--model", default="minilm-l6")
    ap.add_argument("--mode", default="full", choices=("full", "cached-trunk"))
    ap.add_argument("--trainable-layers", type=int, default=2)
    ap.add_argument("--max-length", type=int, default=64)
    ap.add_argument("--device", default=None)
    args = ap.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    from w2s_utils.engine.batched import train_stacked
    from w2s_utils.engine.device import default_device
    from w2s_utils.engine.models import get_model
    from w2s_utils.engine.train import TrainSettings

    device = torch.device(args.device) if args.device else default_device()
    cuda = device.type == "cuda"
    n = args.batch * args.steps
    texts = _texts(n)
    rng = np.random.default_rng(0)
    p1 = rng.uniform(0.05, 0.95, n)
    soft = np.stack([1 - p1, p1], 1)
    s = TrainSettings(
        epochs=1,
        batch_size=args.batch,
        lr=5e-5,
        max_length=args.max_length,
        eval_every=0,
        train_eps_max=0,
        bf16=True,
        progress=False,
    )

    def make():
        return get_model(
            args.model,
            device=device,
            mode=args.mode,
            trainable_layers=args.trainable_layers,
            use_disk_cache=False,
        )

    peak = gemm_rate(device, torch.bfloat16 if cuda else torch.float32)
    warm = make()  # warm-up: loads weights, fills the trunk cache (cached-trunk), JIT paths
    warm.max_length = s.max_length
    warm.prepare(texts)  # the trunk states of every text, before either timing starts
    warm.fit(texts[: 2 * args.batch], soft[: 2 * args.batch], replace(s, seed=99))
    train_stacked(
        [make(), make()],
        [texts[: 2 * args.batch]] * 2,
        [soft[: 2 * args.batch]] * 2,
        [replace(s, seed=98), replace(s, seed=97)],
    )
    flops = _useful_flops(warm, texts, s.epochs) * args.runs

    models = [make() for _ in range(args.runs)]
    _sync(device)
    t, c = time.perf_counter(), time.process_time()
    for seed, m in enumerate(models):
        m.fit(texts, soft, replace(s, seed=seed))
    _sync(device)
    serial_s, serial_cpu = time.perf_counter() - t, time.process_time() - c

    models = [make() for _ in range(args.runs)]
    _sync(device)
    t, c = time.perf_counter(), time.process_time()
    train_stacked(
        models,
        [texts] * args.runs,
        [soft] * args.runs,
        [replace(s, seed=seed) for seed in range(args.runs)],
    )
    _sync(device)
    stacked_s, stacked_cpu = time.perf_counter() - t, time.process_time() - c
    peak = max(peak, gemm_rate(device, torch.bfloat16 if cuda else torch.float32))

    kind = "bf16" if cuda else "fp32"
    run_steps = args.runs * args.steps
    name = torch.cuda.get_device_name(device) if cuda else f"CPU, {torch.get_num_threads()} threads"
    print(
        f"{args.model} ({args.mode}), {args.runs} runs x {args.steps} steps, batch "
        f"{args.batch}, max_length {args.max_length}; {name}; torch {torch.__version__}"
    )
    print(f"{kind} GEMM rate: {_rate(peak)}")
    print()
    print("| training | wall s | CPU s | run-steps/s | speed-up | useful FLOP/s | of GEMM peak |")
    print("|---|---|---|---|---|---|---|")
    rows = (
        ("one at a time (fit)", serial_s, serial_cpu),
        (f"stacked ({args.runs})", stacked_s, stacked_cpu),
    )
    for label, sec, cpu in rows:
        print(
            f"| {label} | {sec:.2f} | {cpu:.2f} | {run_steps / sec:.2f} | {serial_s / sec:.2f}x"
            f" | {_rate(flops / sec)} | {flops / sec / peak:.1%} |"
        )
    if not cuda:
        print(
            f"\nCPU time (all threads; robust when the machine is shared): one at a time "
            f"{run_steps / serial_cpu:.2f} run-steps per CPU s, stacked "
            f"{run_steps / stacked_cpu:.2f} ({serial_cpu / stacked_cpu:.2f}x)"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
