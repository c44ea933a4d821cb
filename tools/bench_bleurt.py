#!/usr/bin/env python3
"""BLEURT throughput: hhi's burn port against bleurt-pytorch on the CPU, same pairs, same
BLEURT-20-shaped random model (made here, never committed), same thread count.

    /tmp/bleurt-venv/bin/python tools/bench_bleurt.py [--pairs 64] [--batch 16] [--threads 2]

Run in the venv of tools/make_bleurt_fixtures.py, after `cargo build --release --example
bleurt_score`. The tokenizer is the fixtures' tiny one (ids fit any vocabulary); the model
has BLEURT-20's shape: RemBERT-style, 32 layers, hidden 1152, 18 heads, FFN 4608,
input embeddings 256 wide over a 250,300-piece vocabulary (about 575M parameters).
"""
import argparse, json, os, shutil, subprocess, tempfile, time
from pathlib import Path

import torch
from bleurt_pytorch import BleurtConfig, BleurtForSequenceClassification
from bleurt_pytorch.bleurt.tokenization_bleurt_sp import BleurtSPTokenizer

ROOT = Path(__file__).resolve().parent.parent
FIX = ROOT / "tests" / "fixtures" / "bleurt"
SENTS = ["person shaking hands with person", "person hugging person at the summit",
         "person giving person a high five", "person lecturing to person in Paris",
         "two people are shaking hands at a press conference", "person handing a plaque to person"]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--pairs", type=int, default=64)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--threads", type=int, default=2)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    pairs = [(SENTS[i % len(SENTS)], SENTS[(i * 5 + 1) % len(SENTS)]) for i in range(a.pairs)]
    with tempfile.TemporaryDirectory() as d:
        cfg = BleurtConfig(vocab_size=250300, embedding_size=256, hidden_size=1152,
                           num_hidden_layers=32, num_attention_heads=18, intermediate_size=4608,
                           max_position_embeddings=512, type_vocab_size=2)
        torch.manual_seed(0)
        model = BleurtForSequenceClassification(cfg).eval()
        model.save_pretrained(d, safe_serialization=True)
        for f in ["spm.model", "tokenizer.json"]:
            shutil.copy(FIX / f, Path(d) / f)
        tok = BleurtSPTokenizer(vocab_file=str(FIX / "spm.model"), model_max_length=512)
        # bleurt-pytorch, batched like hhi.
        t = time.perf_counter()
        ref = []
        with torch.no_grad():
            for i in range(0, len(pairs), a.batch):
                chunk = pairs[i:i + a.batch]
                enc = tok([p[0] for p in chunk], [p[1] for p in chunk], padding="longest",
                          truncation="longest_first", max_length=512, return_tensors="pt")
                ref += model(**enc).logits.flatten().tolist()
        torch_s = time.perf_counter() - t
        del model
        env = dict(os.environ, RAYON_NUM_THREADS=str(a.threads))
        r = subprocess.run([str(ROOT / "target/release/examples/bleurt_score"), d, str(a.batch)],
                           input="".join(f"{p}\t{c}\n" for p, c in pairs), text=True,
                           capture_output=True, env=env, check=True)
        ours = [float(x) for x in r.stdout.split()]
        stats = json.loads(r.stderr.strip().splitlines()[-1])
    diff = max(abs(x - y) for x, y in zip(ours, ref))
    cpu = open("/proc/cpuinfo").read().split("model name", 1)[1].split("\n", 1)[0].split(":", 1)[1].strip()
    print(json.dumps({
        "cpu": cpu, "threads": a.threads, "pairs": len(pairs), "batch": a.batch,
        "bleurt_pytorch_pairs_per_s": len(pairs) / torch_s,
        "hhi_pairs_per_s": stats["pairs_per_s"],
        "ratio_hhi_over_torch": stats["pairs_per_s"] / (len(pairs) / torch_s),
        "max_abs_score_diff": diff,
        "torch": torch.__version__,
    }, indent=1))


if __name__ == "__main__":
    main()
