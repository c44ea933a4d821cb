//! Text handling: tokenizers (and, with the method's stages, name masking and rules).

pub mod tokenizer;
