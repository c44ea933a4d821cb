#!/usr/bin/env python3
"""Converts a ClipCap checkpoint (Mokady et al.; a torch state dict such as
`coco_weights.pt`, MLP mapping with prefix length 10 on GPT-2 small) into hhi's captioner
folder: config.json, model.safetensors (ClipCap's own key names) and GPT-2's tokenizer.json.

    pip install torch transformers safetensors
    python3 tools/convert_clipcap.py coco_weights.pt checkpoints/clipcap-coco [--prefix-length 10]

The GPT-2 config and tokenizer come from the `gpt2` model on the Hugging Face hub (or a
local folder given with --gpt2). `train_captioner` then fine-tunes it with `init =`.
"""
import argparse, json
from pathlib import Path

import torch
from safetensors.torch import save_file
from transformers import GPT2Config, GPT2TokenizerFast


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("weights")
    ap.add_argument("out")
    ap.add_argument("--prefix-length", type=int, default=10)
    ap.add_argument("--gpt2", default="gpt2")
    a = ap.parse_args()
    sd = torch.load(a.weights, map_location="cpu")
    if "state_dict" in sd:
        sd = sd["state_dict"]
    keep = {}
    for k, v in sd.items():
        if k.endswith(".attn.bias") or k.endswith(".attn.masked_bias") or k == "gpt.lm_head.weight":
            continue  # buffers, and the head tied to gpt.transformer.wte
        if not (k.startswith("gpt.") or k.startswith("clip_project.")):
            raise SystemExit(f"unexpected key {k}: is this a ClipCap (MLP mapping) checkpoint?")
        keep[k] = v.float().contiguous()
    if "clip_project.model.0.weight" not in keep:
        raise SystemExit("no clip_project.model.0.weight: only ClipCap's MLP mapping is supported")
    prefix_size = keep["clip_project.model.0.weight"].shape[1]
    cfg = GPT2Config.from_pretrained(a.gpt2).to_dict()
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    save_file(keep, str(out / "model.safetensors"), metadata={"format": "pt"})
    (out / "config.json").write_text(json.dumps({
        "model_type": "hhi_captioner", "variant": "clipcap", "prefix_size": prefix_size,
        "prefix_length": a.prefix_length, "gpt2": cfg}, indent=2))
    GPT2TokenizerFast.from_pretrained(a.gpt2).backend_tokenizer.save(str(out / "tokenizer.json"))
    print(f"wrote {out}: prefix_size {prefix_size}, prefix_length {a.prefix_length}, {len(keep)} tensors")


if __name__ == "__main__":
    main()
