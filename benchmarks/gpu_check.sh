#!/usr/bin/env bash
# Prepared device check for issue 16 (<= 8 minutes on one H100/H200); run from the repo root:
#   bash benchmarks/gpu_check.sh      (writes its tables to $OUT, default ./gpu_check_out)
# Not run yet: no GPU was lent to the session that wrote it.
set -u
OUT=${OUT:-gpu_check_out}; mkdir -p "$OUT"
PY=${PY:-.venv/bin/python}
export W2S_CACHE_DIR=${W2S_CACHE_DIR:-$OUT/cache} W2S_DEVICE=cuda
nvidia-smi > "$OUT/nvidia-smi.txt" 2>&1
# 1. CUDA tests of the scale work (stacked training under bf16) and the pipeline on CUDA (~1 min)
timeout 90 $PY -m pytest -q -m cuda tests/robustness/test_scale.py tests/engine/test_experiment.py \
  > "$OUT/cuda_tests.txt" 2>&1
# 2. batched vs one at a time, MiniLM-L6 full fine-tune, 8 and 32 runs (~2 min)
for m in 8 32; do
  timeout 100 $PY benchmarks/bench_batched.py --runs $m --steps 20 --batch 64 --device cuda \
    > "$OUT/bench_batched_runs$m.txt" 2>&1
done
# 3. one grid (sarcasm, 3 teachers x 2 seeds, gpu preset sizes), loop vs stacked (~1.5 min)
timeout 100 $PY benchmarks/bench_grid.py --preset gpu --dataset sarcasm --seeds 2 \
  --w2s-train 3000 --device cuda > "$OUT/bench_grid.txt" 2>&1
# 4. as much of the gpu-preset book as fits in the rest (chapter 1 first), timed
start=$(date +%s)
timeout 90 $PY -m w2s_utils book --only 01_pipeline --no-html --preset gpu \
  > "$OUT/book_gpu_01.txt" 2>&1
echo "01_pipeline gpu preset: rc=$? after $(( $(date +%s) - start )) s" >> "$OUT/book_gpu_01.txt"
