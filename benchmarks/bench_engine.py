"""Engine benchmark: GEMM peak, MiniLM-L6 fine-tuning throughput, cached-trunk speed-up, cache.

Prints one table. Numbers depend on the machine and on anything else running on it (the dev box's
2 cores are shared; say so when you quote them).

    python benchmarks/bench_engine.py [--steps 6] [--threads 2] [--skip-pipeline]

Rows:
- fp32 GEMM rate (torch.mm, 1024^3, measured here): the reference peak;
- MiniLM-L6 full fine-tuning: tokens/s (padded tokens processed) and achieved FLOP/s
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


def gemm_rate(n: int = 1024, reps: int = 20) -> float:
    a, b = torch.randn(n, n), torch.randn(n, n)
    for _ in range(3):
        a @ b
    t = time.perf_counter()
    for _ in range(reps):
        a @ b
    dt = time.perf_counter() - t
    return 2 * n**3 * reps / dt


def _texts(n: int) -> list[str]:
    from w2s_utils import data

    ds = data.load_texts("sarcasm", log=None)
    return list(ds.texts[:n])


def _train_steps(model, items, steps: int, batch: int) -> tuple[float, int]:
    """Seconds per optimizer step (after one warm-up step) and padded tokens per step."""
    params = [p for p in model.trainable_parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=1e-5)
    model.train_mode(True)
    times, tokens = [], []
    for i in range(steps + 1):
        chunk = items[i * batch : (i + 1) * batch]
        t = time.perf_counter()
        b = model.collate(chunk)
        loss = model.forward_batch(b).logsumexp(-1).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        if i:
            times.append(time.perf_counter() - t)
            mask = b["attention_mask"]
            tokens.append(int(mask.shape[0] * mask.shape[1]))
    return float(np.mean(times)), int(np.mean(tokens))


def bench_training(steps: int, batch: int = 32, max_length: int = 32) -> list[tuple[str, str]]:
    from w2s_utils.models import get_model

    rows = []
    peak = gemm_rate()
    rows.append(("fp32 GEMM rate (1024^3, torch.mm)", f"{peak / 1e9:.1f} GFLOP/s"))
    texts = _texts(batch * (steps + 1))
    full = get_model("minilm-l6", mode="full")
    full.max_length = max_length
    full.reset_parameters(0)
    items = full.prepare(texts)
    sec, tok = _train_steps(full, items, steps, batch)
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
            "  achieved FLOP/s / GEMM rate",
            f"{flops / sec / 1e9:.1f} GFLOP/s = {flops / sec / peak:.0%}",
        )
    )
    cached = get_model("minilm-l6", mode="cached-trunk", trainable_layers=1, use_disk_cache=False)
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
    from w2s_utils import cache
    from w2s_utils.experiment import make_config, run_experiment
    from w2s_utils.features import TextFeatureStore

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
    parser.add_argument("--steps", type=int, default=6)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--skip-pipeline", action="store_true")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    rows = [
        ("torch threads", str(torch.get_num_threads())),
        ("load average (1 min)", f"{os.getloadavg()[0]:.1f}"),
    ]
    rows += bench_training(args.steps)
    if not args.skip_pipeline:
        rows += bench_pipeline()
    width = max(len(k) for k, _ in rows)
    print(f"{'measurement':<{width}}  value")
    print(f"{'-' * width}  {'-' * 30}")
    for k, v in rows:
        print(f"{k:<{width}}  {v}")


if __name__ == "__main__":
    main()
