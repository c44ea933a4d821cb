#!/usr/bin/env python3
"""Opens hhi's exported checkpoints with transformers and compares their logits with the
fixtures: proof that hhi's saved weights are real HF checkpoints.

    cargo test --release --test gpt2 exports_for_transformers
    python3 tools/check_exports.py
"""
import json, sys
from pathlib import Path
import torch
from transformers import AutoModelForCausalLM, CLIPModel, BartForSequenceClassification, T5ForConditionalGeneration

ROOT = Path(__file__).resolve().parent.parent
worst = 0.0
for name in ["gpt2", "gpt2_cross", "gpt_neo", "t5_v1_0", "t5_v1_1", "bart_mnli", "clip"]:
    d = ROOT / "target/exported" / name
    e = json.loads((ROOT / "tests/fixtures" / name / "expected.json").read_text())
    with torch.no_grad():
        if name == "clip":
            m = CLIPModel.from_pretrained(d).eval()
            logits = m(input_ids=torch.tensor(e["input_ids"]), attention_mask=torch.tensor(e["attention_mask"]),
                       pixel_values=torch.tensor(e["pixel_values"])).logits_per_image
            e = {"logits": e["logits_per_image"]}
        elif name == "bart_mnli":
            m = BartForSequenceClassification.from_pretrained(d).eval()
            logits = m(input_ids=torch.tensor(e["input_ids"]), attention_mask=torch.tensor(e["attention_mask"])).logits
        elif name.startswith("t5"):
            m = T5ForConditionalGeneration.from_pretrained(d).eval()
            logits = m(input_ids=torch.tensor(e["input_ids"]), decoder_input_ids=torch.tensor(e["decoder_input_ids"])).logits
        else:
            m = AutoModelForCausalLM.from_pretrained(d).eval()
            kw = {"encoder_hidden_states": torch.tensor(e["encoder_hidden_states"])} if name == "gpt2_cross" else {}
            logits = m(input_ids=torch.tensor(e["input_ids"]), **kw).logits
    diff = (logits - torch.tensor(e["logits"])).abs().max().item()
    worst = max(worst, diff)
    print(f"{name}: loads in transformers, max |Δ logits| = {diff:.2e}")
sys.exit(0 if worst <= 1e-5 else 1)
