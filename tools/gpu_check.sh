#!/usr/bin/env bash
# The GPU checks of issue "Speed" as one prepared run for a lent GPU machine (which has
# CUDA, PyTorch and transformers but no cargo registry): build the binary here, carry it.
#
#   cargo build --release --features cuda --example models_check --target-dir target/cuda
#   # on the GPU machine (the `run` tool, carry target/cuda/release/examples/models_check):
#   tools/gpu_check.sh target/cuda/release/examples/models_check "$OUT"
#
# Writes into OUT: the GPU's name, the fixture parity on CUDA (logits, greedy, device
# token selection, device beam searches), tools/bench_decode.py (beam 32 over 16 ClipCap-
# length prompts and top-p on 32 prompts against transformers.generate) and
# tools/bench_models.py (products, training steps, CLIP, greedy generation against
# PyTorch). Each part has its own time limit, so one slow part cannot starve the rest.
set -uo pipefail
cd "$(dirname "$0")/.."
bin=${1:?the models_check binary built with --features cuda}
out=${2:?a directory for the results}
mkdir -p "$out"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv > "$out/gpu.csv" 2>&1
grep -m1 "model name" /proc/cpuinfo > "$out/cpu.txt" 2>&1
python3 -c "import torch, transformers; print(torch.__version__, transformers.__version__)" \
  > "$out/versions.txt" 2>&1
timeout 120 "$bin" --backend cuda > "$out/parity-cuda.json" 2> "$out/parity-cuda.err"
echo "parity rc $?"
timeout 240 python3 tools/bench_decode.py --device cuda --binary "$bin" --prompts 16 \
  > "$out/decode.json" 2> "$out/decode.err"
echo "decode rc $?"
timeout 200 python3 tools/bench_models.py --device cuda --binary "$bin" --steps 10 \
  > "$out/models.json" 2> "$out/models.err"
echo "models rc $?"
tail -c 2000 "$out"/*.json
