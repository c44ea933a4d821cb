//! `train_tokenizer`: a small byte-level BPE for the toy models, trained on a Corpus.
//!
//! Besides `<|endoftext|>` (the LM's document separator and the summarizer's end of
//! sequence) and `<pad>`, a newline is its own token and never part of a merge: stages 2
//! and 3 stop generating at a newline, and a merged `\n\n` token would hide it.

use super::io::{Doc, read_jsonl};
use crate::context::StageContext;
use crate::params::ParamSpec;
use crate::registry::{PortSpec, StageKind};
use crate::text::tokenizer::Tokenizer;
use crate::types::ArtifactType;

/// The special tokens of a toy tokenizer, in id order.
pub const SPECIAL_TOKENS: [&str; 3] = ["<|endoftext|>", "<pad>", "\n"];

pub struct TrainTokenizer;

impl StageKind for TrainTokenizer {
    fn name(&self) -> &'static str {
        "train_tokenizer"
    }
    fn version(&self) -> u32 {
        1
    }
    fn about(&self) -> &'static str {
        "trains a small byte-level BPE tokenizer on a corpus (deterministic)"
    }
    fn params(&self) -> Vec<ParamSpec> {
        vec![
            ParamSpec::int(
                "vocab_size",
                1500,
                "vocabulary size, special tokens included",
            )
            .range(300.0, 200_000.0),
            ParamSpec::int(
                "max_docs",
                0,
                "train on the first N documents only (0: all)",
            )
            .range(0.0, 1e12),
        ]
    }
    fn inputs(&self) -> Vec<PortSpec> {
        vec![PortSpec::new(
            "corpus",
            ArtifactType::Corpus,
            "JSONL documents {id, text}",
        )]
    }
    fn outputs(&self) -> Vec<PortSpec> {
        vec![PortSpec::new(
            "tokenizer",
            ArtifactType::Tokenizer,
            "a folder with tokenizer.json",
        )]
    }
    fn run(&self, ctx: &mut StageContext) -> anyhow::Result<()> {
        let docs: Vec<Doc> = read_jsonl(ctx.input("corpus")?)?;
        let max = ctx.params.int("max_docs") as usize;
        let texts: Vec<String> = docs
            .into_iter()
            .take(if max == 0 { usize::MAX } else { max })
            .map(|d| d.text)
            .collect();
        anyhow::ensure!(!texts.is_empty(), "the corpus holds no documents");
        let vocab = ctx.params.int("vocab_size") as usize;
        let tok = Tokenizer::train_bpe(&texts, vocab, &SPECIAL_TOKENS)?;
        let out = ctx.output("tokenizer")?.to_path_buf();
        std::fs::create_dir_all(&out)?;
        tok.save(&out.join("tokenizer.json"))?;
        ctx.figure("vocab_size", tok.vocab_size() as f64);
        ctx.figure("docs", texts.len() as f64);
        Ok(())
    }
}

// ------------------------------------------------------------ helpers for the model stages

/// Resolves the pipeline's backend and records the device in the stage's record.
pub(crate) fn backend(ctx: &mut StageContext) -> anyhow::Result<crate::backend::BackendKind> {
    let kind = crate::backend::resolve(&ctx.backend)?;
    ctx.set_device(kind.device());
    ctx.set_kernel(crate::backend::kernel_class(kind));
    Ok(kind)
}

/// The token that ends a generated line: the tokenizer's own newline token, else GPT-2's
/// byte-level `Ċ`.
pub(crate) fn newline_token(tok: &Tokenizer) -> Option<u32> {
    tok.token_id("\n").or_else(|| tok.token_id("Ċ"))
}

/// The tokens that end a generated line: the newline, and the document separator
/// `<|endoftext|>` (transformers' `generate` also stops at the model's EOS; without it a
/// small LM runs on into the next pretraining document, and that text, decoded without its
/// special tokens, joins the line).
pub(crate) fn line_stops(tok: &Tokenizer) -> Vec<u32> {
    newline_token(tok)
        .into_iter()
        .chain(tok.token_id("<|endoftext|>"))
        .collect()
}

/// The text of generated tokens up to the first stop token (or newline inside a token).
pub(crate) fn generated_line(
    tok: &Tokenizer,
    new: &[u32],
    stops: &[u32],
) -> anyhow::Result<String> {
    let end = new
        .iter()
        .position(|t| stops.contains(t))
        .unwrap_or(new.len());
    let text = tok.decode(&new[..end])?;
    Ok(text.split('\n').next().unwrap_or("").to_string())
}
