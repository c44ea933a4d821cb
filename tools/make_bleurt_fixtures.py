#!/usr/bin/env python3
"""BLEURT parity fixtures: a tiny random BLEURT made with `bleurt-pytorch`, and its scores.

bleurt-pytorch 0.0.1 imports with transformers 4.44.2 and fails with 5.x (a removed
helper), so this runs in a venv of its own:

    python3 -m venv --system-site-packages /tmp/bleurt-venv
    /tmp/bleurt-venv/bin/pip install "transformers==4.44.2" bleurt-pytorch sentencepiece protobuf
    /tmp/bleurt-venv/bin/python tools/make_bleurt_fixtures.py

Writes tests/fixtures/bleurt/: the checkpoint as the port lays it out (config.json,
model.safetensors, spm.model), tokenizer.json (the fast tokenizer transformers converts
from spm.model, which is what hhi reads), and expected.json: reference/candidate pairs of
different lengths scored in one padded batch, one pair longer than the model's maximum
length, their input ids and token types, and the scores. Seeded: reruns give the same files.
"""
import json
import shutil
import tempfile
from pathlib import Path

import sentencepiece as spm
import torch
from bleurt_pytorch import BleurtConfig, BleurtForSequenceClassification
from bleurt_pytorch.bleurt.tokenization_bleurt_sp import BleurtSPTokenizer
# BleurtSPTokenizer is a DebertaV2Tokenizer; transformers has no entry for it by name.
from transformers.convert_slow_tokenizer import DebertaV2Converter

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "tests" / "fixtures" / "bleurt"
MAX_LEN = 24  # small, so that one pair is truncated

CORPUS = [
    "person shaking hands with person",
    "person giving person a high five",
    "person hugging person at the summit",
    "person lecturing to person in Paris",
    "person handing a plaque to person",
    "two people are shaking hands at a press conference",
    "a man and a woman hugging in the park",
    "the quick brown fox jumps over the lazy dog",
] * 30

PAIRS = [
    ("person shaking hands with person", "person shaking hands with person"),
    ("person shaking hands with person", "person hugging person"),
    ("person giving person a high five", "person high fiving person at the park"),
    ("person lecturing to person", "person"),
    ("person handing a plaque to person",
     "person handing a plaque to person at the summit in Paris while the quick brown fox "
     "jumps over the lazy dog and two people are shaking hands at a press conference"),
]


def main():
    if OUT.exists():
        shutil.rmtree(OUT)
    OUT.mkdir(parents=True)
    with tempfile.TemporaryDirectory() as tmp:
        corpus = Path(tmp) / "corpus.txt"
        corpus.write_text("\n".join(CORPUS) + "\n")
        # BERT-style special pieces as BLEURT-20's spm.model has them.
        spm.SentencePieceTrainer.train(
            input=str(corpus), model_prefix=str(OUT / "spm"), vocab_size=60,
            model_type="unigram", pad_id=0, pad_piece="[PAD]", unk_id=1, unk_piece="[UNK]",
            bos_id=-1, eos_id=-1, user_defined_symbols=["[CLS]", "[SEP]", "[MASK]"],
            character_coverage=1.0, seed_sentencepiece_size=1000, num_threads=1)
    (OUT / "spm.vocab").unlink()
    tok = BleurtSPTokenizer(vocab_file=str(OUT / "spm.model"), do_lower_case=False,
                          model_max_length=MAX_LEN)
    DebertaV2Converter(tok).converted().save(str(OUT / "tokenizer.json"))

    torch.manual_seed(0)
    cfg = BleurtConfig(vocab_size=len(tok), embedding_size=8, hidden_size=16,
                       num_hidden_layers=2, num_attention_heads=2, intermediate_size=32,
                       max_position_embeddings=MAX_LEN, type_vocab_size=2,
                       pad_token_id=tok.pad_token_id)
    model = BleurtForSequenceClassification(cfg).eval()
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "LayerNorm" in name:
                p.copy_(1.0 + 0.1 * torch.randn(p.shape, generator=g))
            else:
                p.copy_(0.2 * torch.randn(p.shape, generator=g))
    model.save_pretrained(OUT, safe_serialization=True)

    refs = [r for r, _ in PAIRS]
    cands = [c for _, c in PAIRS]
    # As BLEURT does it: [CLS] reference [SEP] candidate [SEP], the longer of the two
    # trimmed first when the pair is too long, padded to the longest in the batch.
    enc = tok(refs, cands, padding="longest", truncation="longest_first",
              max_length=MAX_LEN, return_tensors="pt")
    with torch.no_grad():
        batch = model(**enc).logits.flatten().tolist()
        alone = []
        for r, c in PAIRS:
            e = tok([r], [c], truncation="longest_first", max_length=MAX_LEN, return_tensors="pt")
            alone.append(model(**e).logits.flatten().item())
    (OUT / "expected.json").write_text(json.dumps({
        "max_length": MAX_LEN,
        "pairs": [list(p) for p in PAIRS],
        "input_ids": enc["input_ids"].tolist(),
        "token_type_ids": enc["token_type_ids"].tolist(),
        "attention_mask": enc["attention_mask"].tolist(),
        "scores": batch,
        "scores_alone": alone,
        "versions": {"torch": torch.__version__,
                     "transformers": __import__("transformers").__version__},
    }, indent=1))
    print("written", OUT, "scores", batch)


if __name__ == "__main__":
    main()
