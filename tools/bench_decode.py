#!/usr/bin/env python3
"""Generation speed, hhi against transformers.generate on the same shapes and device.

The two shapes of #9's GPU goal, on GPT-2-small with random weights:
  - the paper's decode: beam width 32 over P prompts of 10 positions (a ClipCap prefix's
    length), 20 new tokens, no beam ending early (transformers: min_new_tokens = 20);
  - top-p 0.95 sampling at temperature 1 on 32 prompts of 16 tokens, 32 new tokens.
Prints generated tokens/s for each and the ratios (hhi / transformers; > 1: hhi faster).
The same shapes are in `examples/models_check.rs` (`--bench-decode P`).

    cargo build --release --example models_check                  # CPU
    python3 tools/bench_decode.py --prompts 1
    # on a GPU machine, with a binary built with --features cuda:
    python3 tools/bench_decode.py --device cuda --binary ./models_check --prompts 16
"""
import argparse, json, os, platform, subprocess, sys, time
from pathlib import Path

import torch
from transformers import GPT2Config, GPT2LMHeadModel

ROOT = Path(__file__).resolve().parent.parent


def rows(n, length):
    return torch.tensor([[(r * 977 + i * 31 + 5) % 50257 for i in range(length)] for r in range(n)])


def timed(dev, f):
    f(2)  # warm-up, as models_check does
    if dev == "cuda":
        torch.cuda.synchronize()
    t = time.perf_counter()
    f(None)
    if dev == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - t


def torch_bench(dev, prompts):
    torch.manual_seed(1)
    m = GPT2LMHeadModel(GPT2Config(vocab_size=50257, n_positions=1024, n_embd=768, n_layer=12,
                                   n_head=12)).to(dev).eval()
    out = {}
    ids = rows(prompts, 10).to(dev)
    with torch.no_grad():
        def beam(new):
            n = new or 20
            m.generate(ids, attention_mask=torch.ones_like(ids), num_beams=32, do_sample=False,
                       max_new_tokens=n, min_new_tokens=n, length_penalty=0.0,
                       num_return_sequences=8, early_stopping=False, pad_token_id=0)
        out["beam32_tokens_per_s"] = prompts * 20 / timed(dev, beam)
        ids = rows(32, 16).to(dev)

        def sampled(new):
            n = new or 32
            m.generate(ids, attention_mask=torch.ones_like(ids), do_sample=True, top_p=0.95,
                       top_k=0, temperature=1.0, max_new_tokens=n, min_new_tokens=n,
                       pad_token_id=0)
        out["top_p_batch32_tokens_per_s"] = 32 * 32 / timed(dev, sampled)
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    ap.add_argument("--backend", default=None, help="hhi backend (default: cpu on cpu, cuda on cuda)")
    ap.add_argument("--binary", default=str(ROOT / "target/release/examples/models_check"))
    ap.add_argument("--prompts", type=int, default=16, help="prompts of the beam-32 decode")
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    pt = torch_bench(a.device, a.prompts)
    backend = a.backend or ("cpu" if a.device == "cpu" else "cuda")
    env = dict(os.environ, RAYON_NUM_THREADS=str(a.threads))
    res = subprocess.run([a.binary, "--backend", backend, "--bench-decode", str(a.prompts)],
                         capture_output=True, text=True, env=env)
    if res.returncode != 0:
        sys.exit(res.stderr)
    ours = json.loads(res.stdout)
    gpu = torch.cuda.get_device_name(0) if a.device == "cuda" else None
    cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")),
               platform.machine())
    report = {"device": a.device, "gpu": gpu, "cpu": cpu,
              "threads": a.threads, "torch": torch.__version__, "transformers": __import__("transformers").__version__,
              "prompts": a.prompts, "transformers_generate": pt, "hhi": ours,
              "ratio_hhi_over_transformers": {k: ours[k] / pt[k] for k in pt}}
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
