#!/usr/bin/env python3
"""Creates tiny random checkpoints with `transformers` and records what they compute.

Run on a developer's machine (CPU torch is enough); CI only reads the committed output:

    pip install torch transformers sentencepiece protobuf tokenizers
    python3 tools/make_fixtures.py            # writes tests/fixtures/
    python3 tools/make_fixtures.py padded     # only tests/fixtures/padded/ (reads the others)
    python3 tools/make_fixtures.py captioner  # only tests/fixtures/captioner*/ (reads gpt2, gpt2_cross)

For each architecture it writes tests/fixtures/<name>/ holding a Hugging Face checkpoint
folder (config.json, model.safetensors, tokenizer.json where relevant) and expected.json:
inputs, logits, greedy and beam-search token ids, and for GPT-2 one AdamW step's loss and
updated parameter values. Everything is seeded, so reruns give the same files.
"""
import json, os, shutil, sys
from pathlib import Path

import torch
import transformers
from transformers import (GPT2Config, GPT2LMHeadModel, GPTNeoConfig, GPTNeoForCausalLM,
                          T5Config, T5ForConditionalGeneration)

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "tests" / "fixtures"
SPIECE = ROOT.parent / "shared" / "data" / "t5" / "spiece.model"

STRINGS = [
    "Alex shaking hands with Bailey at the summit",
    "[NAME] and [NAME] shaking hands",
    "_ giving _ a high five",
    "Ünïcödé: café, naïve, 東京, emoji 🤝",
    "  leading and trailing spaces  ",
    "Charlie lecturing to Dani, pictured, in Paris (left)",
]

CORPUS = [
    "Alex shaking hands with Bailey.",
    "[NAME] and [NAME] shaking hands at the summit.",
    "_ giving _ a high five",
    "_ lecturing to _",
    "Charlie hugging Dani in the park, pictured (left).",
    "the quick brown fox jumps over the lazy dog",
    "Photo: Erin handing a plaque to Frankie",
] * 20


def save(model, name, extra_files=()):
    d = OUT / name
    if d.exists():
        shutil.rmtree(d)
    d.mkdir(parents=True)
    model.save_pretrained(d, safe_serialization=True)
    for f in extra_files:
        shutil.copy(f, d / Path(f).name)
    return d


def spread(model, seed):
    """Re-initialises weights with a larger spread. HF's init (std 0.02) makes a tiny random
    model's next-token distribution nearly flat, so greedy and beam results would hinge on
    1e-7 differences; wider weights make them robust to float reassociation."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "ln" in name or "layer_norm" in name or "norm" in name:
                p.copy_(1.0 + 0.1 * torch.randn(p.shape, generator=g))
            else:
                p.copy_(0.3 * torch.randn(p.shape, generator=g))
    return model


def tolist(t):
    return t.detach().cpu().tolist()


def write(d, obj):
    (d / "expected.json").write_text(json.dumps(obj, separators=(",", ":")))


def bpe_tokenizer(vocab_size=400):
    """A small byte-level BPE (GPT-2 style) trained on the toy corpus."""
    from tokenizers import ByteLevelBPETokenizer
    tok = ByteLevelBPETokenizer()
    tok.train_from_iterator(CORPUS, vocab_size=vocab_size, min_frequency=1, special_tokens=["<|endoftext|>"])
    path = OUT / "_bpe_tokenizer.json"
    tok.save(str(path))
    return path


def adamw_fixture(model, loss_fn, probe):
    """One torch AdamW step from `model`'s weights: the loss before it and a few values of
    the named parameters after it."""
    import copy
    cfg = copy.deepcopy(model.config)
    # Some models apply dropout functionally from config values (T5's attention), so
    # zeroing nn.Dropout modules alone is not enough.
    for attr in ("dropout_rate", "resid_pdrop", "embd_pdrop", "attn_pdrop", "attention_dropout",
                 "embed_dropout", "resid_dropout"):
        if hasattr(cfg, attr):
            setattr(cfg, attr, 0.0)
    train = type(model)(cfg)
    train.load_state_dict(model.state_dict())
    train.train()
    for mod in train.modules():
        if isinstance(mod, torch.nn.Dropout):
            mod.p = 0.0
    opt = torch.optim.AdamW(train.parameters(), lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.1)
    loss, inputs = loss_fn(train)
    loss.backward()
    opt.step()
    sd = train.state_dict()
    return {"lr": 1e-3, "betas": [0.9, 0.999], "eps": 1e-8, "weight_decay": 0.1, "loss": loss.item(),
            "params_after": {k: tolist(sd[k].flatten()[:6]) for k in probe}, **inputs}


def causal_common(model, d, vocab, extra=None):
    torch.manual_seed(1)
    ids = torch.randint(0, vocab, (2, 9))
    with torch.no_grad():
        logits = model(input_ids=ids).logits
    prompt = ids[:1, :5]
    greedy = model.generate(prompt, max_new_tokens=12, do_sample=False, pad_token_id=0)
    beams = model.generate(prompt, max_new_tokens=10, num_beams=4, num_return_sequences=4,
                           length_penalty=1.0, no_repeat_ngram_size=3, early_stopping=True, do_sample=False,
                           pad_token_id=0, output_scores=True, return_dict_in_generate=True)
    out = {
        "input_ids": tolist(ids), "logits": tolist(logits),
        "prompt": tolist(prompt), "greedy": tolist(greedy),
        "beam": {"num_beams": 4, "length_penalty": 1.0, "no_repeat_ngram_size": 3, "max_new_tokens": 10,
                 "sequences": tolist(beams.sequences), "scores": tolist(beams.sequences_scores)},
    }
    if extra:
        out.update(extra)
    write(d, out)


def gpt2(tok_path):
    torch.manual_seed(0)
    cfg = GPT2Config(vocab_size=400, n_positions=64, n_embd=32, n_layer=2, n_head=4,
                     bos_token_id=0, eos_token_id=0)
    m = spread(GPT2LMHeadModel(cfg), 10).eval()
    d = save(m, "gpt2")
    shutil.copy(tok_path, d / "tokenizer.json")
    # A ClipCap-style prefix: 3 free vectors before the token embeddings.
    torch.manual_seed(2)
    prefix = torch.randn(2, 3, 32)
    ids = torch.randint(0, 400, (2, 6))
    with torch.no_grad():
        emb = torch.cat([prefix, m.transformer.wte(ids)], dim=1)
        prefix_logits = m(inputs_embeds=emb).logits
    # One AdamW step (torch semantics) on a language-modelling loss.
    train = GPT2LMHeadModel(cfg)
    train.load_state_dict(m.state_dict())
    train.train()
    cfg_dropless = train.config
    for mod in train.modules():
        if isinstance(mod, torch.nn.Dropout):
            mod.p = 0.0
    torch.manual_seed(3)
    x = torch.randint(0, 400, (2, 8))
    opt = torch.optim.AdamW(train.parameters(), lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.1)
    loss = train(input_ids=x, labels=x).loss
    loss.backward()
    opt.step()
    probe = {k: tolist(v.flatten()[:6]) for k, v in train.state_dict().items()
             if k in ("transformer.wte.weight", "transformer.h.0.attn.c_attn.weight", "transformer.h.1.mlp.c_proj.bias", "transformer.ln_f.weight")}
    causal_common(m, d, 400, {
        "prefix": {"embeds": tolist(prefix), "input_ids": tolist(ids), "logits": tolist(prefix_logits)},
        "adamw": {"lr": 1e-3, "betas": [0.9, 0.999], "eps": 1e-8, "weight_decay": 0.1,
                  "input_ids": tolist(x), "loss": loss.item(), "params_after": probe},
    })
    tokens(d, tok_path)


def gpt2_cross():
    torch.manual_seed(4)
    cfg = GPT2Config(vocab_size=400, n_positions=64, n_embd=32, n_layer=2, n_head=4, add_cross_attention=True,
                     bos_token_id=0, eos_token_id=0)
    m = spread(GPT2LMHeadModel(cfg), 11).eval()
    d = save(m, "gpt2_cross")
    torch.manual_seed(5)
    ids = torch.randint(0, 400, (2, 7))
    enc = torch.randn(2, 1, 32)  # one memory token, as in the EncDec captioner
    with torch.no_grad():
        logits = m(input_ids=ids, encoder_hidden_states=enc).logits
    write(d, {"input_ids": tolist(ids), "encoder_hidden_states": tolist(enc), "logits": tolist(logits)})


def gpt_neo(tok_path):
    torch.manual_seed(6)
    cfg = GPTNeoConfig(vocab_size=400, max_position_embeddings=64, hidden_size=32, num_layers=2, num_heads=4,
                       attention_types=[[["global", "local"], 1]], window_size=4, intermediate_size=None,
                       bos_token_id=0, eos_token_id=0)
    m = spread(GPTNeoForCausalLM(cfg), 12).eval()
    d = save(m, "gpt_neo")
    shutil.copy(tok_path, d / "tokenizer.json")
    def lm_loss(train):
        torch.manual_seed(3)
        x = torch.randint(0, 400, (2, 8))
        return train(input_ids=x, labels=x).loss, {"input_ids": tolist(x)}
    causal_common(m, d, 400, {"adamw": adamw_fixture(m, lm_loss, [
        "transformer.wte.weight", "transformer.h.0.attn.attention.q_proj.weight",
        "transformer.h.1.mlp.c_fc.bias", "transformer.ln_f.bias"])})


def t5(name, v11):
    torch.manual_seed(7 if v11 else 8)
    kw = dict(vocab_size=512, d_model=32, d_kv=8, d_ff=64, num_layers=2, num_decoder_layers=2, num_heads=4,
              relative_attention_num_buckets=8, relative_attention_max_distance=20,
              decoder_start_token_id=0, pad_token_id=0, eos_token_id=1)
    if v11:
        kw.update(feed_forward_proj="gated-gelu", tie_word_embeddings=False)
    m = spread(T5ForConditionalGeneration(T5Config(**kw)), 13).eval()
    d = save(m, name)
    torch.manual_seed(9)
    src = torch.randint(2, 512, (2, 11))
    tgt = torch.randint(2, 512, (2, 6))
    with torch.no_grad():
        out = m(input_ids=src, decoder_input_ids=tgt)
    greedy = m.generate(src[:1], max_new_tokens=10, do_sample=False)
    beams = m.generate(src[:1], max_new_tokens=10, min_length=1, num_beams=4, num_return_sequences=4,
                       length_penalty=2.0, no_repeat_ngram_size=3, early_stopping=True,
                       output_scores=True, return_dict_in_generate=True)
    def s2s_loss(train):
        torch.manual_seed(3)
        x = torch.randint(2, 512, (2, 9))
        y = torch.randint(2, 512, (2, 5))
        return train(input_ids=x, labels=y).loss, {"input_ids": tolist(x), "labels": tolist(y)}
    probe = ["shared.weight", "encoder.block.0.layer.0.SelfAttention.q.weight",
             "decoder.block.1.layer.2.DenseReluDense.wo.weight", "decoder.final_layer_norm.weight"]
    adamw = adamw_fixture(m, s2s_loss, probe)
    write(d, {"adamw": adamw, "input_ids": tolist(src), "decoder_input_ids": tolist(tgt), "logits": tolist(out.logits),
              "encoder_last_hidden_state": tolist(out.encoder_last_hidden_state),
              "greedy": tolist(greedy),
              "beam": {"num_beams": 4, "length_penalty": 2.0, "no_repeat_ngram_size": 3, "max_new_tokens": 10,
                       "sequences": tolist(beams.sequences), "scores": tolist(beams.sequences_scores)}})


def tokens(d, tok_path):
    from transformers import PreTrainedTokenizerFast
    tok = PreTrainedTokenizerFast(tokenizer_file=str(tok_path))
    (d / "tokens.json").write_text(json.dumps({s: tok.encode(s) for s in STRINGS}, ensure_ascii=False))


def t5_tokenizer():
    from transformers import T5TokenizerFast
    d = OUT / "t5_tokenizer"
    d.mkdir(parents=True, exist_ok=True)
    # transformers 5's T5TokenizerFast(vocab_file=...) yields a broken vocabulary;
    # from_pretrained on a folder holding spiece.model converts it correctly.
    import tempfile
    with tempfile.TemporaryDirectory() as tmp:
        shutil.copy(SPIECE, Path(tmp) / "spiece.model")
        tok = T5TokenizerFast.from_pretrained(tmp)
    assert len(tok) == 32100, len(tok)
    tok.backend_tokenizer.save(str(d / "tokenizer.json"))
    (d / "tokens.json").write_text(json.dumps({s: tok.encode(s) for s in STRINGS}, ensure_ascii=False))


def clip_tokenizer():
    """A CLIP-style BPE (lower-cased, `</w>` end-of-word marker) trained on the toy corpus
    and converted by transformers' own CLIPTokenizerFast, so the tokenizer.json has
    exactly CLIP's normalizer, pre-tokenizer and post-processor."""
    import tempfile
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers, normalizers
    from transformers import CLIPTokenizerFast
    tok = Tokenizer(models.BPE(end_of_word_suffix="</w>"))
    tok.normalizer = normalizers.Lowercase()
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    trainer = trainers.BpeTrainer(vocab_size=300, min_frequency=1, end_of_word_suffix="</w>",
                                  special_tokens=["<|startoftext|>", "<|endoftext|>"],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator([c.lower() for c in CORPUS], trainer)
    with tempfile.TemporaryDirectory() as tmp:
        tok.model.save(tmp)
        # As for T5: transformers 5 builds a broken tokenizer from vocab_file=/merges_file=,
        # but converts a folder correctly.
        fast = CLIPTokenizerFast.from_pretrained(tmp)
        d = OUT / "clip"
        d.mkdir(parents=True, exist_ok=True)
        fast.backend_tokenizer.save(str(d / "tokenizer.json"))
    return fast


def clip():
    from transformers import CLIPConfig, CLIPModel
    tok = clip_tokenizer()
    torch.manual_seed(20)
    cfg = CLIPConfig(
        text_config=dict(vocab_size=len(tok), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                         num_attention_heads=4, max_position_embeddings=32,
                         bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id),
        vision_config=dict(image_size=32, patch_size=8, hidden_size=32, intermediate_size=64,
                           num_hidden_layers=2, num_attention_heads=4),
        projection_dim=16)
    m = spread(CLIPModel(cfg), 21).eval()
    d = OUT / "clip"
    m.save_pretrained(d, safe_serialization=True)
    texts = ["_ shaking hands with _", "charlie hugging dani", "a photo"]
    enc = tok(texts, padding=True, return_tensors="pt")
    torch.manual_seed(22)
    pixels = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        out = m(input_ids=enc.input_ids, attention_mask=enc.attention_mask, pixel_values=pixels)
    write(d, {"texts": texts, "input_ids": tolist(enc.input_ids), "attention_mask": tolist(enc.attention_mask),
              "pixel_values": tolist(pixels), "image_embeds": tolist(out.image_embeds),
              "text_embeds": tolist(out.text_embeds), "logits_per_image": tolist(out.logits_per_image),
              "tokens": {t: tok.encode(t) for t in STRINGS}})


def images():
    """Test images written here (colour JPEG, greyscale JPEG, CMYK JPEG, PNG with alpha)
    and what CLIP's PIL-based image processor makes of them."""
    import numpy as np
    from PIL import Image
    from transformers.models.clip.image_processing_pil_clip import CLIPImageProcessorPil
    d = OUT / "images"
    d.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(30)
    def picture(w, h):
        y, x = np.mgrid[0:h, 0:w]
        base = np.stack([(x * 255 // w), (y * 255 // h), ((x + y) * 127 // (w + h))], -1)
        noise = rng.integers(0, 60, size=(h, w, 3))
        return np.clip(base + noise, 0, 255).astype(np.uint8)
    Image.fromarray(picture(120, 90)).save(d / "colour.jpg", quality=92)
    Image.fromarray(picture(70, 100)).convert("L").save(d / "grey.jpg", quality=92)
    Image.fromarray(picture(96, 80)).convert("CMYK").save(d / "cmyk.jpg", quality=92)
    rgba = np.concatenate([picture(64, 48), rng.integers(0, 256, size=(48, 64, 1)).astype(np.uint8)], -1)
    Image.fromarray(rgba, "RGBA").save(d / "alpha.png")
    proc = CLIPImageProcessorPil(size={"shortest_edge": 40}, crop_size={"height": 32, "width": 32})
    out = {}
    for name in ["colour.jpg", "grey.jpg", "cmyk.jpg", "alpha.png"]:
        px = proc(images=Image.open(d / name), return_tensors="pt").pixel_values[0]
        out[name] = tolist(px)
    (d / "expected.json").write_text(json.dumps({"shortest_edge": 40, "crop": 32, "pixels": out}, separators=(",", ":")))


def bart():
    from transformers import BartConfig, BartForSequenceClassification
    torch.manual_seed(40)
    cfg = BartConfig(vocab_size=400, d_model=32, encoder_layers=2, decoder_layers=2, encoder_attention_heads=4,
                     decoder_attention_heads=4, encoder_ffn_dim=64, decoder_ffn_dim=64, max_position_embeddings=64,
                     num_labels=3, id2label={0: "contradiction", 1: "neutral", 2: "entailment"},
                     label2id={"contradiction": 0, "neutral": 1, "entailment": 2},
                     bos_token_id=0, pad_token_id=1, eos_token_id=2, decoder_start_token_id=2)
    m = spread(BartForSequenceClassification(cfg), 41).eval()
    d = save(m, "bart_mnli")
    # (premise, hypothesis) pairs of different lengths: <s> p </s></s> h </s>, padded.
    g = torch.Generator().manual_seed(42)
    rows = []
    for lp, lh in [(9, 4), (3, 2), (6, 7)]:
        p = torch.randint(3, 400, (lp,), generator=g).tolist()
        h = torch.randint(3, 400, (lh,), generator=g).tolist()
        rows.append([0] + p + [2, 2] + h + [2])
    width = max(len(r) for r in rows)
    ids = torch.tensor([r + [1] * (width - len(r)) for r in rows])
    mask = (ids != 1).long()
    with torch.no_grad():
        logits = m(input_ids=ids, attention_mask=mask).logits
    write(d, {"input_ids": tolist(ids), "attention_mask": tolist(mask), "logits": tolist(logits),
              "probs": tolist(logits.softmax(-1)), "labels": ["contradiction", "neutral", "entailment"]})


def strip_generated(seq, pad, prompt_len, eos):
    """One row of a batched `generate` output: without its `pad` left-padding positions, and
    cut after the first `eos` among the new tokens (transformers pads finished rows)."""
    seq = seq[pad:]
    for i in range(prompt_len, len(seq)):
        if seq[i] == eos:
            return seq[:i + 1]
    return seq


def padded():
    """Batches whose rows have different lengths, computed with the committed checkpoints
    (loaded, not re-created, so the other fixtures keep their bytes): decoder-only prompts
    left-padded with attention_mask and position_ids as `generate` builds them, T5 sources
    right-padded with attention_mask, and targets padded with -100 for the loss."""
    out = {}
    g = torch.Generator().manual_seed(50)
    for name, cls in [("gpt2", GPT2LMHeadModel), ("gpt_neo", GPTNeoForCausalLM)]:
        m = cls.from_pretrained(OUT / name).eval()
        lens = [9, 4, 6, 1]
        prompts = [torch.randint(1, 400, (n,), generator=g).tolist() for n in lens]
        width = max(lens)
        pads = [width - n for n in lens]
        ids = torch.tensor([[0] * p + r for p, r in zip(pads, prompts)])
        mask = (torch.arange(width)[None, :] >= torch.tensor(pads)[:, None]).long()
        pos = (mask.cumsum(-1) - 1).masked_fill(mask == 0, 1)
        with torch.no_grad():
            logits = m(input_ids=ids, attention_mask=mask, position_ids=pos).logits
        greedy = m.generate(ids, attention_mask=mask, max_new_tokens=8, do_sample=False, pad_token_id=0)
        beams = m.generate(ids, attention_mask=mask, max_new_tokens=6, num_beams=4, num_return_sequences=4,
                           length_penalty=1.0, no_repeat_ngram_size=3, early_stopping=True, do_sample=False,
                           pad_token_id=0, output_scores=True, return_dict_in_generate=True)
        # eos is 0 in these configs and generation stops there.
        out[name] = {
            "prompts": prompts, "input_ids": tolist(ids), "attention_mask": tolist(mask),
            "position_ids": tolist(pos), "logits": tolist(logits),
            "greedy": [strip_generated(r, p, n, 0) for r, p, n in zip(tolist(greedy), pads, lens)],
            "beam": {"num_beams": 4, "length_penalty": 1.0, "no_repeat_ngram_size": 3, "max_new_tokens": 6,
                     "eos": 0,
                     "sequences": [strip_generated(r, pads[i // 4], lens[i // 4], 0)
                                   for i, r in enumerate(tolist(beams.sequences))],
                     "scores": tolist(beams.sequences_scores)},
        }
    for name in ["t5_v1_0", "t5_v1_1"]:
        m = T5ForConditionalGeneration.from_pretrained(OUT / name).eval()
        lens = [11, 5, 8, 2]
        srcs = [torch.randint(2, 512, (n,), generator=g).tolist() for n in lens]
        width = max(lens)
        ids = torch.tensor([r + [0] * (width - len(r)) for r in srcs])
        mask = (ids != 0).long()
        for r, n in zip(mask.tolist(), lens):
            assert sum(r) == n
        dec = torch.randint(2, 512, (4, 6), generator=g)
        tl = [5, 3, 6, 1]
        labels = torch.full((4, 6), -100)
        for i, n in enumerate(tl):
            labels[i, :n] = torch.randint(2, 512, (n,), generator=g)
        with torch.no_grad():
            o = m(input_ids=ids, attention_mask=mask, decoder_input_ids=dec)
            loss = m(input_ids=ids, attention_mask=mask, labels=labels).loss
        greedy = m.generate(ids, attention_mask=mask, max_new_tokens=10, do_sample=False)
        beams = m.generate(ids, attention_mask=mask, max_new_tokens=10, min_length=1, num_beams=4,
                           num_return_sequences=4, length_penalty=2.0, no_repeat_ngram_size=3, early_stopping=True,
                           output_scores=True, return_dict_in_generate=True)
        out[name] = {
            "input_ids": tolist(ids), "attention_mask": tolist(mask), "sources": srcs,
            "decoder_input_ids": tolist(dec), "logits": tolist(o.logits),
            "encoder_last_hidden_state": tolist(o.encoder_last_hidden_state),
            "labels": tolist(labels), "loss": loss.item(),
            "greedy": [strip_generated(r, 0, 1, 1) for r in tolist(greedy)],
            "beam": {"num_beams": 4, "length_penalty": 2.0, "no_repeat_ngram_size": 3, "max_new_tokens": 10,
                     "min_length": 1, "eos": 1,
                     "sequences": [strip_generated(r, 0, 1, 1) for r in tolist(beams.sequences)],
                     "scores": tolist(beams.sequences_scores)},
        }
    d = OUT / "padded"
    d.mkdir(parents=True, exist_ok=True)
    write(d, out)


def captioner():
    """The two captioner variants, built around the committed GPT-2 checkpoints (loaded, so
    the other fixtures keep their bytes): ClipCap (features → MLP with tanh → prefix) and
    EncDec (features → Linear → one memory token for cross-attention). Saved in ClipCap's
    key names with hhi's captioner config.json; expected teacher-forced logits and what
    `generate(inputs_embeds=…)` / `generate(input_ids, encoder_hidden_states=…)` return."""
    from safetensors.torch import save_file
    out = {}
    for variant, base in [("clipcap", "gpt2"), ("encdec", "gpt2_cross")]:
        gpt = GPT2LMHeadModel.from_pretrained(OUT / base).eval()
        hf_cfg = json.loads((OUT / base / "config.json").read_text())
        g = torch.Generator().manual_seed(60 if variant == "clipcap" else 61)
        f, plen, d = 16, 3, gpt.config.n_embd
        if variant == "clipcap":
            proj = torch.nn.Sequential(torch.nn.Linear(f, d * plen // 2), torch.nn.Tanh(),
                                       torch.nn.Linear(d * plen // 2, d * plen))
            names = {"0": "clip_project.model.0", "2": "clip_project.model.2"}
        else:
            proj = torch.nn.Sequential(torch.nn.Linear(f, d))
            names = {"0": "clip_project"}
        with torch.no_grad():
            for p in proj.parameters():
                p.copy_(2.0 * torch.randn(p.shape, generator=g))
        sd = {}
        for k, v in proj.state_dict().items():
            idx, rest = k.split(".", 1)
            sd[f"{names[idx]}.{rest}"] = v.contiguous()
        for k, v in gpt.state_dict().items():
            if k == "lm_head.weight" or k.endswith(".attn.bias") or k.endswith(".attn.masked_bias"):
                continue
            sd[f"gpt.{k}"] = v.contiguous().clone()
        dd = OUT / f"captioner_{variant}"
        if dd.exists():
            shutil.rmtree(dd)
        dd.mkdir(parents=True)
        save_file(sd, str(dd / "model.safetensors"), metadata={"format": "pt"})
        cfg = {"variant": variant, "prefix_size": f, "prefix_length": plen if variant == "clipcap" else 1,
               "gpt2": hf_cfg}
        (dd / "config.json").write_text(json.dumps(cfg, indent=2))
        feats = torch.randn(2, f, generator=g)
        tokens = torch.cat([torch.zeros(2, 1, dtype=torch.long),
                            torch.randint(1, 400, (2, 5), generator=g)], dim=1)
        with torch.no_grad():
            cond = proj(feats).reshape(2, -1, d)
            if variant == "clipcap":
                emb = torch.cat([cond, gpt.transformer.wte(tokens)], dim=1)
                logits = gpt(inputs_embeds=emb).logits[:, plen - 1: plen - 1 + tokens.shape[1]]
            else:
                logits = gpt(input_ids=tokens, encoder_hidden_states=cond).logits[:, :-1]
            gen = []
            for i in range(2):
                start = torch.zeros(1, 1, dtype=torch.long)
                if variant == "clipcap":
                    kw = {"inputs_embeds": torch.cat([cond[i:i + 1], gpt.transformer.wte(start)], dim=1)}
                else:
                    kw = {"input_ids": start, "encoder_hidden_states": cond[i:i + 1]}
                greedy = gpt.generate(**kw, max_new_tokens=8, do_sample=False, pad_token_id=0)
                beams = gpt.generate(**kw, max_new_tokens=6, num_beams=4, num_return_sequences=4,
                                     length_penalty=1.0, early_stopping=True, do_sample=False, pad_token_id=0,
                                     output_scores=True, return_dict_in_generate=True)
                # With inputs_embeds only the new tokens come back; with input_ids the prompt too.
                skip = 0 if variant == "clipcap" else 1
                gen.append({"greedy": strip_generated(tolist(greedy)[0][skip:], 0, 0, 0),
                            "beam": [strip_generated(r[skip:], 0, 0, 0) for r in tolist(beams.sequences)],
                            "scores": tolist(beams.sequences_scores)})
        out[variant] = {"features": tolist(feats), "tokens": tolist(tokens), "logits": tolist(logits),
                        "conditioning": tolist(cond), "generate": gen}
    d = OUT / "captioner"
    d.mkdir(parents=True, exist_ok=True)
    write(d, out)


def main():
    OUT.mkdir(parents=True, exist_ok=True)
    torch.set_num_threads(1)
    tok_path = bpe_tokenizer()
    gpt2(tok_path)
    gpt2_cross()
    gpt_neo(tok_path)
    t5("t5_v1_0", v11=False)
    t5("t5_v1_1", v11=True)
    if SPIECE.exists():
        t5_tokenizer()
    clip()
    images()
    bart()
    padded()
    captioner()
    tok_path.unlink()
    (OUT / "VERSIONS").write_text(f"torch {torch.__version__}\ntransformers {transformers.__version__}\n")
    print("fixtures written to", OUT)


if __name__ == "__main__":
    if sys.argv[1:] == ["captioner"]:  # only the captioner fixtures, from the committed GPT-2s
        torch.set_num_threads(1)
        captioner()
    elif sys.argv[1:] == ["padded"]:  # only the padded-batch fixture, from the committed checkpoints
        torch.set_num_threads(1)
        padded()
    else:
        main()
