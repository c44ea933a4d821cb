#!/usr/bin/env python3
"""Peak memory of loading a checkpoint (issue "Speed", point 5): hhi against PyTorch.

Makes a random checkpoint shaped like GPT-Neo 1.3B (f32, ~5.3 GB; written here with numpy,
deleted afterwards, never committed), then loads it in a fresh process with
`examples/load_rss` (hhi's CPU backend) and, if torch and transformers are importable,
with `GPTNeoForCausalLM.from_pretrained`. Each process reports its peak resident memory
(VmHWM); the table gives it as a multiple of the file's size.

    cargo build --release --example load_rss
    python3 tools/bench_load.py [--layers 24] [--hidden 2048] [--keep DIR]
"""
import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def write_safetensors(path, tensors):
    """safetensors by hand (8-byte header length, JSON header, raw little-endian data), so
    the script needs only numpy; tensors are generated one at a time."""
    header, offset = {}, 0
    for name, shape, _ in tensors:
        n = int(np.prod(shape)) * 4
        header[name] = {"dtype": "F32", "shape": list(shape), "data_offsets": [offset, offset + n]}
        offset += n
    header["__metadata__"] = {"format": "pt"}
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * (-len(h) % 8)
    rng = np.random.default_rng(0)
    with open(path, "wb") as f:
        f.write(len(h).to_bytes(8, "little"))
        f.write(h)
        for name, shape, kind in tensors:
            if kind == "ones":
                a = np.ones(shape, dtype=np.float32)
            elif kind == "zeros":
                a = np.zeros(shape, dtype=np.float32)
            else:
                a = rng.standard_normal(shape, dtype=np.float32) * np.float32(0.02)
            f.write(a.astype("<f4").tobytes())


def gpt_neo(dir, layers, d, vocab=50257, positions=2048):
    tensors = [("transformer.wte.weight", (vocab, d), "rand"),
               ("transformer.wpe.weight", (positions, d), "rand")]
    for i in range(layers):
        n = f"transformer.h.{i}"
        a = f"{n}.attn.attention"
        tensors += [
            (f"{n}.ln_1.weight", (d,), "ones"), (f"{n}.ln_1.bias", (d,), "zeros"),
            (f"{a}.q_proj.weight", (d, d), "rand"), (f"{a}.k_proj.weight", (d, d), "rand"),
            (f"{a}.v_proj.weight", (d, d), "rand"),
            (f"{a}.out_proj.weight", (d, d), "rand"), (f"{a}.out_proj.bias", (d,), "zeros"),
            (f"{n}.ln_2.weight", (d,), "ones"), (f"{n}.ln_2.bias", (d,), "zeros"),
            (f"{n}.mlp.c_fc.weight", (4 * d, d), "rand"), (f"{n}.mlp.c_fc.bias", (4 * d,), "zeros"),
            (f"{n}.mlp.c_proj.weight", (d, 4 * d), "rand"), (f"{n}.mlp.c_proj.bias", (d,), "zeros"),
        ]
    tensors += [("transformer.ln_f.weight", (d,), "ones"), ("transformer.ln_f.bias", (d,), "zeros")]
    os.makedirs(dir, exist_ok=True)
    write_safetensors(os.path.join(dir, "model.safetensors"), tensors)
    cfg = {
        "architectures": ["GPTNeoForCausalLM"], "model_type": "gpt_neo",
        "vocab_size": vocab, "max_position_embeddings": positions, "hidden_size": d,
        "num_layers": layers, "num_heads": 16, "intermediate_size": None,
        "attention_types": [[["global", "local"], layers // 2]],
        "attention_layers": ["global", "local"] * (layers // 2),
        "window_size": 256, "activation_function": "gelu_new", "layer_norm_epsilon": 1e-5,
        "tie_word_embeddings": True, "bos_token_id": 50256, "eos_token_id": 50256,
        "torch_dtype": "float32",
    }
    with open(os.path.join(dir, "config.json"), "w") as f:
        json.dump(cfg, f)


TORCH_LOAD = r"""
import json, sys, time
t = time.perf_counter()
import torch, transformers
from transformers import GPTNeoForCausalLM
t = time.perf_counter()
m = GPTNeoForCausalLM.from_pretrained(sys.argv[1], torch_dtype=torch.float32)
secs = time.perf_counter() - t
hwm = [l for l in open('/proc/self/status') if l.startswith('VmHWM')][0].split()[1]
print(json.dumps({"peak_rss_bytes": int(hwm) * 1024, "seconds": secs,
                  "params": sum(p.numel() for p in m.parameters()),
                  "torch": torch.__version__, "transformers": transformers.__version__}))
"""


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--layers", type=int, default=24)
    ap.add_argument("--hidden", type=int, default=2048)
    ap.add_argument("--keep", help="write the checkpoint here and keep it")
    ap.add_argument("--python", default=sys.executable, help="a Python with torch, for the reference")
    args = ap.parse_args()
    exe = os.path.join(ROOT, "target/release/examples/load_rss")
    if not os.path.exists(exe):
        sys.exit("build it first: cargo build --release --example load_rss")
    dir = args.keep or tempfile.mkdtemp(prefix="hhi-neo-")
    try:
        gpt_neo(dir, args.layers, args.hidden)
        size = os.path.getsize(os.path.join(dir, "model.safetensors"))
        # Out of the page cache, so both loaders read from disk alike.
        subprocess.run(["sync"])
        r = subprocess.run([exe, "gpt_neo", dir], capture_output=True, text=True)
        if r.returncode != 0:
            sys.exit(r.stderr)
        hhi = json.loads(r.stdout)
        rows = [("hhi (burn-flex, mmap)", hhi["peak_rss_bytes"], hhi["seconds"])]
        t = subprocess.run([args.python, "-c", TORCH_LOAD, dir], capture_output=True, text=True)
        if t.returncode == 0:
            torch = json.loads(t.stdout.strip().splitlines()[-1])
            rows.append((f"PyTorch {torch['torch']}, transformers {torch['transformers']}",
                         torch["peak_rss_bytes"], torch["seconds"]))
        else:
            print(f"(no PyTorch reference: {t.stderr.strip().splitlines()[-1] if t.stderr else '?'})")
        print(f"checkpoint: GPT-Neo shape, {args.layers} layers, hidden {args.hidden}, "
              f"{hhi['params'] / 1e9:.2f} B parameters, {size / 1e9:.2f} GB (f32)")
        print()
        print("| loader | peak RSS | peak / file | load time |")
        print("|---|---|---|---|")
        for name, peak, secs in rows:
            print(f"| {name} | {peak / 1e9:.2f} GB | {peak / size:.2f}x | {secs:.1f} s |")
    finally:
        if not args.keep:
            shutil.rmtree(dir, ignore_errors=True)


if __name__ == "__main__":
    main()
