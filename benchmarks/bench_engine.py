"""Engine benchmark: GEMM peak, MiniLM-L6 fine-tuning throughput, cached-trunk speed-up, cache.

Prints one table. Numbers depend on the machine and on anything else running on it (the dev box's
2 cores are shared; say so when you quote them).

    python benchmarks/bench_engine.py [--steps 10] [--threads 2] [--device cpu|cuda]
                                      [--skip-pipeline]

Rows:
- GEMM rate (torch.mm; CPU fp32 1024^3, CUDA bf16 8192^3), best of 5 rounds, measured before
  and after the training rows, the better kept: the reference peak;
- MiniLM-L6 full fine-tuning (the training loop's fused AdamW; bf16 autocast on CUDA): median
  step time after 3 warm-up steps, tokens/s (padded tokens processed) and achieved FLOP/s
  (6 x non-embedding parameters x tokens + attention) as a fraction of the GEMM rate;
- cached-trunk (top layer + head on cached layer-5 states) vs full fine-tuning on the same batches:
  time per step and the speed-up, also counting the one-off trunk computation for one ci run;
- one ci pipeline run (sarcasm, bow -> minilm-l6, seed 0) cold (fresh cache folder, data copied)
  and warm (cache hit).
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from w2s_utils.engine.train import make_optimizer


def gemm_rate(
    device: torch.device, dtype: torch.dtype = torch.float32, reps: int = 10, rounds: int = 5
) -> float:
    """Best of ``rounds`` timings of ``reps`` n^3 products (FLOP/s): the machine's peak.

    n = 1024 on CPU, 8192 on CUDA (fp32 there without TF32).
    """
    n = 1024 if device.type == "cpu" else 8192
    a = torch.randn(n, n, device=device, dtype=dtype)
    b = torch.randn(n, n, device=device, dtype=dtype)
    old = torch.backends.cuda.matmul.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = False
    try:
        for _ in range(3):
            a @ b
        best = float("inf")
        for _ in range(rounds):
            _sync(device)
            t = time.perf_counter()
            for _ in range(reps):
                a @ b
            _sync(device)
            best = min(best, time.perf_counter() - t)
    finally:
        torch.backends.cuda.matmul.allow_tf32 = old
    return 2 * n**3 * reps / best


def _texts(n: int) -> list[str]:
    from w2s_utils.engine import data

    ds = data.load_texts("sarcasm", log=None)
    return list(ds.texts[:n])


def _rate(flops_per_s: float) -> str:
    return (
        f"{flops_per_s / 1e12:.1f} TFLOP/s"
        if flops_per_s >= 1e12
        else f"{flops_per_s / 1e9:.1f} GFLOP/s"
    )


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _train_steps(model, items, steps: int, batch: int, warmup: int = 3) -> tuple[float, int]:
    """Median seconds per optimizer step (after ``warmup`` steps), padded tokens per step.

    On CUDA the forward runs under bf16 autocast, as the training loop does.
    """
    params = [p for p in model.trainable_parameters() if p.requires_grad]
    opt = make_optimizer(params, lr=1e-5, weight_decay=0.01)  # the training loop's optimizer
    model.train_mode(True)
    dev = model.device
    times, tokens = [], []
    for i in range(steps + warmup):
        chunk = items[(i % (len(items) // batch)) * batch :][:batch]
        _sync(dev)
        t = time.perf_counter()
        b = model.collate(chunk)
        with torch.autocast("cuda", dtype=torch.bfloat16, enabled=dev.type == "cuda"):
            logits = model.forward_batch(b)
        loss = logits.float().logsumexp(-1).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        _sync(dev)
        if i >= warmup:
            times.append(time.perf_counter() - t)
            mask = b["attention_mask"]
            tokens.append(int(mask.shape[0] * mask.shape[1]))
    return float(np.median(times)), int(np.mean(tokens))


def bench_training(
    steps: int, device: torch.device, batch: int = 32, max_length: int = 32
) -> list[tuple[str, str]]:
    from w2s_utils.engine.models import get_model

    rows = []
    cuda = device.type == "cuda"
    peak = gemm_rate(device, torch.bfloat16 if cuda else torch.float32)
    texts = _texts(batch * (steps + 3))
    full = get_model("minilm-l6", device=device, mode="full")
    full.max_length = max_length
    full.reset_parameters(0)
    items = full.prepare(texts)
    sec, tok = _train_steps(full, items, steps, batch)
    peak = max(peak, gemm_rate(device, torch.bfloat16 if cuda else torch.float32))
    kind = "bf16" if cuda else "fp32"
    n = "8192^3" if cuda else "1024^3"
    if cuda:
        rows.append(("fp32 GEMM rate (8192^3, no TF32, best)", _rate(gemm_rate(device))))
    rows.append((f"{kind} GEMM rate ({n}, torch.mm, best)", _rate(peak)))
    cfg = full.backbone.config
    n_layer_params = sum(p.numel() for p in full.layers.parameters())
    seq = tok / batch
    attn = 4 * cfg.num_hidden_layers * seq * cfg.hidden_size  # QK^T and AV per token, fwd
    flops = 3 * (2 * n_layer_params + attn) * tok  # fwd + bwd ~ 3x fwd
    rows.append(
        (f"MiniLM-L6 full fine-tune, batch {batch}, ~{seq:.0f} tokens", f"{sec:.3f} s/step")
    )
    rows.append(("  tokens/s (padded)", f"{tok / sec:,.0f}"))
    rows.append(
        (
            f"  achieved FLOP/s / {kind} GEMM rate",
            f"{_rate(flops / sec)} = {flops / sec / peak:.1%}",
        )
    )
    cached = get_model(
        "minilm-l6", device=device, mode="cached-trunk", trainable_layers=1, use_disk_cache=False
    )
    cached.max_length = max_length
    cached.reset_parameters(0)
    t = time.perf_counter()
    citems = cached.prepare(texts)
    trunk_s = time.perf_counter() - t
    csec, _ = _train_steps(cached, citems, steps, batch)
    rows.append(("cached-trunk (top 1 layer + head), same batches", f"{csec:.3f} s/step"))
    rows.append(("  speed-up per step over full fine-tuning", f"{sec / csec:.1f}x"))
    per_text = trunk_s / len(texts)
    # one ci run: 2000 w2s texts x 2 epochs for ceiling and student; trunk over 4000 texts once
    ci_steps = 2 * 2 * 2000 / batch
    full_run = ci_steps * sec
    cached_run = ci_steps * csec + per_text * 4000
    rows.append(("  trunk computation", f"{per_text * 1e3:.1f} ms/text (once per text)"))
    rows.append(
        (
            "  ci run (ceiling+student) incl. trunk",
            f"{full_run:.0f} s full vs {cached_run:.0f} s cached = {full_run / cached_run:.1f}x",
        )
    )
    return rows


def bench_pipeline() -> list[tuple[str, str]]:
    from w2s_utils.engine import cache
    from w2s_utils.engine.experiment import make_config, run_experiment
    from w2s_utils.engine.features import TextFeatureStore

    src = cache.cache_dir("data")
    with tempfile.TemporaryDirectory() as tmp:
        old = os.environ.get("W2S_CACHE_DIR")
        os.environ["W2S_CACHE_DIR"] = tmp
        try:
            shutil.copytree(src, Path(tmp) / "data", dirs_exist_ok=True)
            TextFeatureStore.clear_memory()
            cfg = make_config("sarcasm", "bow", seed=0, preset="ci")
            t = time.perf_counter()
            cold = run_experiment(cfg)
            cold_s = time.perf_counter() - t
            TextFeatureStore.clear_memory()
            t = time.perf_counter()
            warm = run_experiment(cfg)
            warm_s = time.perf_counter() - t
        finally:
            if old is None:
                os.environ.pop("W2S_CACHE_DIR", None)
            else:
                os.environ["W2S_CACHE_DIR"] = old
    assert warm.cached and not cold.cached
    return [
        ("ci pipeline run, cold (sarcasm, bow -> minilm-l6)", f"{cold_s:.1f} s"),
        ("ci pipeline run, warm (verified cache hit)", f"{warm_s:.2f} s"),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--skip-pipeline", action="store_true")
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--max-length", type=int, default=32, help="tokens per text (ci: 32)")
    parser.add_argument("--device", default=None, help="cpu or cuda (default: w2s_utils' choice)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    rows = [
        ("torch threads", str(torch.get_num_threads())),
        ("load average (1 min)", f"{os.getloadavg()[0]:.1f}"),
    ]
    from w2s_utils.engine.device import default_device

    if args.device:
        os.environ["W2S_DEVICE"] = args.device  # the pipeline rows run there too
    device = default_device()
    rows.append(
        (
            "device",
            str(device)
            + (f" ({torch.cuda.get_device_name(device)})" if device.type == "cuda" else ""),
        )
    )
    rows += bench_training(args.steps, device, args.batch, args.max_length)
    if not args.skip_pipeline:
        rows += bench_pipeline()
    width = max(len(k) for k, _ in rows)
    print(f"{'measurement':<{width}}  value")
    print(f"{'-' * width}  {'-' * 30}")
    for k, v in rows:
        print(f"{k:<{width}}  {v}")


if __name__ == "__main__":
    main()
