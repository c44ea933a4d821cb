#!/usr/bin/env python3
"""Makes a bleurt-pytorch checkpoint folder readable by hhi (e.g. lucadiliello/BLEURT-20).

    python3 tools/convert_bleurt.py DIR

Adds to DIR, beside the port's config.json and spm.model:
  - tokenizer.json: the fast tokenizer that transformers' DebertaV2Converter makes from
    spm.model (BleurtSPTokenizer is a DebertaV2Tokenizer), which the `tokenizers` crate reads;
  - model.safetensors, from pytorch_model.bin when the folder has only that.
Needs `pip install torch transformers sentencepiece protobuf safetensors` (any recent
transformers: the conversion does not import bleurt-pytorch).
"""
import sys
from pathlib import Path

import torch
from safetensors.torch import save_file
from transformers import DebertaV2Tokenizer
from transformers.convert_slow_tokenizer import DebertaV2Converter


def main(d: Path):
    spm = d / "spm.model"
    if not spm.exists():
        sys.exit(f"{spm} is missing: is {d} a bleurt-pytorch checkpoint?")
    tok = DebertaV2Tokenizer(vocab_file=str(spm), do_lower_case=False)
    DebertaV2Converter(tok).converted().save(str(d / "tokenizer.json"))
    print("wrote", d / "tokenizer.json")
    st, binf = d / "model.safetensors", d / "pytorch_model.bin"
    if not st.exists():
        if not binf.exists():
            sys.exit(f"{d} has neither model.safetensors nor pytorch_model.bin")
        state = torch.load(binf, map_location="cpu", weights_only=True)
        save_file({k: v.contiguous() for k, v in state.items()}, str(st))
        print("wrote", st)


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    main(Path(sys.argv[1]))
