#!/usr/bin/env bash
# The GPU checks of issue "Speed" as one prepared run for a lent GPU machine (which has
# CUDA, PyTorch and transformers but no cargo registry): build the binary here, carry it.
#
#   cargo build --release --features cuda --example models_check --target-dir target/cuda
#   # on the GPU machine (the `run` tool, carry target/cuda/release/examples/models_check):
#   tools/gpu_check.sh target/cuda/release/examples/models_check "$OUT"
#
# An optional third argument is a second binary to compare, e.g. one built with burn's
# `fusion` and `autotune` (off in hhi's GPU builds: see docs/benchmarks.md). Either binary
# may be xz-compressed (`name.xz`): one is ~59 MB, so two fit the `run` tool's 64 MiB
# carry only compressed (~8 MB each):
#
#   cargo build --release --features cuda,burn/fusion,burn/autotune --example models_check \
#     --target-dir target/cuda-fusion
#   xz -T2 -k target/cuda/release/examples/models_check \
#     target/cuda-fusion/release/examples/models_check
#   tools/gpu_check.sh target/cuda/release/examples/models_check.xz "$OUT" \
#     target/cuda-fusion/release/examples/models_check.xz
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
second=${3:-}
# A binary given as `name.xz`, unpacked into /tmp; prints the path to run.
unpack() {
  if [[ "$1" == *.xz ]]; then
    xz -dc "$1" > "/tmp/$2" && chmod +x "/tmp/$2" && echo "/tmp/$2"
  else
    echo "$1"
  fi
}
bin=$(unpack "$bin" models_check_first)
[[ -n "$second" ]] && second=$(unpack "$second" models_check_second)
# With a second binary every part gets less time, and its parity and decode run before
# the first binary's model benchmarks (the decode goal matters most).
if [[ -n "$second" ]]; then t_parity=60 t_decode=150 t_models=120; else t_parity=120 t_decode=240 t_models=200; fi
# The fixture parity and the decode benchmark of binary $1, into files named with $2.
parity_and_decode() {
  timeout $t_parity "$1" --backend cuda > "$out/parity-cuda$2.json" 2> "$out/parity-cuda$2.err"
  echo "parity$2 rc $?"
  timeout $t_decode python3 tools/bench_decode.py --device cuda --binary "$1" --prompts 16 \
    > "$out/decode$2.json" 2> "$out/decode$2.err"
  echo "decode$2 rc $?"
}
parity_and_decode "$bin" ""
[[ -n "$second" ]] && parity_and_decode "$second" "-second"
timeout $t_models python3 tools/bench_models.py --device cuda --binary "$bin" --steps 10 \
  > "$out/models.json" 2> "$out/models.err"
echo "models rc $?"
tail -c 2000 "$out"/*.json
