#!/usr/bin/env python3
"""Model speed, hhi against PyTorch on the same machine, device and thread count.

Measures forward+backward tokens/s on the GPT-2-small (12x768) and T5-small shapes and
greedy generation tokens/s (KV cache) for GPT-2-small, and CLIP ViT-B/32 image-tower
images/s, first with PyTorch, then with
`examples/models_check --bench`, and prints the ratios (hhi / PyTorch; > 1 means hhi is
faster). Shapes and step counts match those in examples/models_check.rs.

    cargo build --release --example models_check            # CPU
    python3 tools/bench_models.py
    python3 tools/bench_models.py --repeat 5   # on a shared VM: medians of 5 alternated runs
    # on a GPU machine, with a binary built with --features cuda:
    python3 tools/bench_models.py --device cuda --binary ./models_check
"""
import argparse, json, os, subprocess, sys, time
from statistics import median
from pathlib import Path

import torch
from transformers import GPT2Config, GPT2LMHeadModel, T5Config, T5ForConditionalGeneration

ROOT = Path(__file__).resolve().parent.parent


def sync(dev):
    if dev == "cuda":
        torch.cuda.synchronize()


def torch_bench(dev, steps):
    out = {}
    a = torch.ones(1024, 1024, device=dev)
    (a @ a).sum().item()
    # Seven rounds of 20 products, the median reported, as models_check does.
    rounds = []
    for _ in range(7):
        t = time.perf_counter()
        for _ in range(20):
            (a @ a).sum().item()
        rounds.append(20 * 2 * 1024**3 / (time.perf_counter() - t) / 1e9)
    rounds.sort()
    out["matmul_1024_gflops"] = rounds[3]
    out["matmul_1024_best_gflops"] = rounds[6]
    # The model-shaped products of models_check (`_ta`/`_t`: the left/right operand is a
    # transposed view); the same list as its MATMUL_SHAPES.
    for m, k, n, ta, tb in [(400, 768, 3072, False, False), (400, 768, 3072, False, True),
                            (400, 3072, 768, False, False), (400, 3072, 768, False, True),
                            (512, 512, 2048, False, True), (512, 2048, 512, False, False),
                            (2048, 512, 512, True, False), (128, 512, 512, False, True),
                            (32, 768, 2304, False, False), (32, 768, 768, False, False),
                            (32, 768, 3072, False, False), (32, 3072, 768, False, False),
                            (32, 768, 50257, False, True), (8, 768, 50257, False, True)]:
        x = torch.ones(k, m, device=dev).t() if ta else torch.ones(m, k, device=dev)
        w = torch.ones(n, k, device=dev).t() if tb else torch.ones(k, n, device=dev)
        (x @ w).sum().item()
        flops = 2 * m * k * n
        reps = int(min(200, max(5, 2e10 / flops)))
        t = time.perf_counter()
        for _ in range(reps):
            (x @ w).sum().item()
        key = f"matmul_{m}x{k}x{n}{'_ta' if ta else ''}{'_t' if tb else ''}_gflops"
        out[key] = reps * flops / (time.perf_counter() - t) / 1e9

    torch.manual_seed(1)
    m = GPT2LMHeadModel(GPT2Config(vocab_size=50257, n_positions=1024, n_embd=768, n_layer=12, n_head=12,
                                   resid_pdrop=0, embd_pdrop=0, attn_pdrop=0)).to(dev)
    m.config._attn_implementation = "eager"
    b, t_len = 4, 128
    ids = (torch.arange(b * t_len) * 7919 % 50257).view(b, t_len).to(dev)

    def step():
        loss = m(input_ids=ids, labels=ids).loss
        loss.backward()
        m.zero_grad(set_to_none=True)

    step(); sync(dev)
    t = time.perf_counter()
    for _ in range(steps):
        step()
    sync(dev)
    secs = (time.perf_counter() - t) / steps
    out["gpt2_small_fwd_bwd_tokens_per_s"] = b * t_len / secs
    out["gpt2_small_fwd_bwd_gflops"] = 6 * 124_439_808 * b * t_len / secs / 1e9

    m.eval()
    prompt = torch.tensor([[i * 31 + 5 for i in range(16)]], device=dev)
    with torch.no_grad():
        m.generate(prompt, max_new_tokens=4, min_new_tokens=4, do_sample=False, pad_token_id=0)
        sync(dev)
        t = time.perf_counter()
        m.generate(prompt, max_new_tokens=32, min_new_tokens=32, do_sample=False, pad_token_id=0)
        sync(dev)
    out["gpt2_small_generate_tokens_per_s"] = 32 / (time.perf_counter() - t)

    from transformers import CLIPConfig, CLIPModel
    clip = CLIPModel(CLIPConfig(text_config=dict(num_hidden_layers=1),
                                vision_config=dict(image_size=224, patch_size=32, hidden_size=768,
                                                   intermediate_size=3072, num_hidden_layers=12,
                                                   num_attention_heads=12),
                                projection_dim=512)).to(dev).eval()
    images = torch.ones(8, 3, 224, 224, device=dev)
    with torch.no_grad():
        clip.get_image_features(pixel_values=images); sync(dev)
        t = time.perf_counter()
        for _ in range(steps):
            clip.get_image_features(pixel_values=images)
        sync(dev)
    out["clip_vit_b32_images_per_s"] = 8 * steps / (time.perf_counter() - t)

    t5 = T5ForConditionalGeneration(T5Config(vocab_size=32128, d_model=512, d_kv=64, d_ff=2048, num_layers=6,
                                             num_heads=8, dropout_rate=0.0, decoder_start_token_id=0,
                                             pad_token_id=0)).to(dev)
    b, s, tt = 4, 128, 32
    src = ((torch.arange(b * s) * 31 % 32000) + 2).view(b, s).to(dev)
    tgt = ((torch.arange(b * tt) * 17 % 32000) + 2).view(b, tt).to(dev)

    def t5_step():
        logits = t5(input_ids=src, decoder_input_ids=tgt).logits
        loss = torch.nn.functional.cross_entropy(logits[:, :-1].reshape(-1, logits.shape[-1]), tgt[:, 1:].reshape(-1))
        loss.backward()
        t5.zero_grad(set_to_none=True)

    t5_step(); sync(dev)
    t = time.perf_counter()
    for _ in range(steps):
        t5_step()
    sync(dev)
    out["t5_small_fwd_bwd_tokens_per_s"] = b * (s + tt) / ((time.perf_counter() - t) / steps)
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    ap.add_argument("--backend", default=None, help="hhi backend (default: cpu, i.e. burn-flex, on cpu; cuda on cuda)")
    ap.add_argument("--binary", default=str(ROOT / "target/release/examples/models_check"))
    ap.add_argument("--steps", type=int, default=3)
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--repeat", type=int, default=1,
                    help="run PyTorch and hhi alternately this many times and report medians: on a shared "
                         "VM one run's figures move by 15%% or more with the neighbours' load")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    backend = a.backend or ("cpu" if a.device == "cpu" else "cuda")
    env = dict(os.environ, RAYON_NUM_THREADS=str(a.threads))
    runs = []
    for i in range(a.repeat):
        pt = torch_bench(a.device, a.steps)
        res = subprocess.run([a.binary, "--backend", backend, "--bench", "--steps", str(a.steps),
                              "--fixtures", str(ROOT / "tests/fixtures")], capture_output=True, text=True, env=env)
        if res.returncode != 0:
            sys.exit(res.stderr)
        ours = json.loads(res.stdout)
        runs.append((pt, ours))
        if a.repeat > 1:
            print(f"run {i + 1}/{a.repeat} done", file=sys.stderr)
    pt_keys = [k for k in runs[0][0]]
    our_keys = [k for k in runs[0][1]["bench"]]
    pt = {k: median([r[0][k] for r in runs]) for k in pt_keys}
    hhi = {k: median([r[1]["bench"][k] for r in runs]) for k in our_keys}
    # Ratios within each run (both sides met the same neighbours), then their median.
    pairs = {k: [r[1]["bench"][k] / r[0][k] for r in runs] for k in pt_keys if k in our_keys}
    ours = runs[-1][1]
    cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), None)
    report = {"device": a.device, "cpu": cpu, "threads": a.threads, "torch": torch.__version__, "runs": a.repeat,
              "pytorch": pt, "hhi": hhi, "parity": ours["parity"], "backend": ours["backend"],
              "ratio_hhi_over_pytorch": {k: median(v) for k, v in pairs.items()}}
    if a.repeat > 1:
        report["ratio_range"] = {k: [min(v), max(v)] for k, v in pairs.items()}
    if "fma_peak_gflops" in our_keys:
        # The goal's "theoretical peak measured in the same run": models_check's FMA probe.
        peaks = [r[1]["bench"]["fma_peak_gflops"] for r in runs]
        report["matmul_1024_of_fma_peak"] = {
            "hhi": median([r[1]["bench"]["matmul_1024_gflops"] / p for r, p in zip(runs, peaks)]),
            "pytorch": median([r[0]["matmul_1024_gflops"] / p for r, p in zip(runs, peaks)])}
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
