//! Tokenizers from a checkpoint's `tokenizer.json` (byte-level BPE for GPT-2, GPT-Neo and
//! BART; SentencePiece unigram for T5), through the Hugging Face `tokenizers` crate so ids
//! match `transformers`; and training a small byte-level BPE on a corpus, for the toy
//! pipeline's small vocabularies.

use anyhow::{Context, anyhow};
use std::path::Path;
use tokenizers::models::bpe::{BPE, BpeTrainerBuilder};
use tokenizers::normalizers::NormalizerWrapper;
use tokenizers::pre_tokenizers::byte_level::ByteLevel;
use tokenizers::{AddedToken, TokenizerBuilder, TokenizerImpl};

pub struct Tokenizer {
    inner: tokenizers::Tokenizer,
}

impl Tokenizer {
    /// Reads `tokenizer.json` (a file, or the checkpoint folder holding it).
    pub fn load(path: &Path) -> anyhow::Result<Tokenizer> {
        let file = if path.is_dir() {
            path.join("tokenizer.json")
        } else {
            path.to_path_buf()
        };
        let inner = tokenizers::Tokenizer::from_file(&file)
            .map_err(|e| anyhow!("cannot read tokenizer {}: {e}", file.display()))?;
        Ok(Tokenizer { inner })
    }

    /// Token ids, with the special tokens the tokenizer's post-processor adds (T5's `</s>`),
    /// as `tokenizer.encode(text)` in transformers.
    pub fn encode(&self, text: &str) -> anyhow::Result<Vec<u32>> {
        let enc = self
            .inner
            .encode(text, true)
            .map_err(|e| anyhow!("tokenizing {text:?}: {e}"))?;
        Ok(enc.get_ids().to_vec())
    }

    /// Token ids without the post-processor's special tokens.
    pub fn encode_plain(&self, text: &str) -> anyhow::Result<Vec<u32>> {
        let enc = self
            .inner
            .encode(text, false)
            .map_err(|e| anyhow!("tokenizing {text:?}: {e}"))?;
        Ok(enc.get_ids().to_vec())
    }

    /// Text for ids, skipping special tokens.
    pub fn decode(&self, ids: &[u32]) -> anyhow::Result<String> {
        self.inner
            .decode(ids, true)
            .map_err(|e| anyhow!("decoding: {e}"))
    }

    pub fn token_id(&self, token: &str) -> Option<u32> {
        self.inner.token_to_id(token)
    }

    pub fn vocab_size(&self) -> usize {
        self.inner.get_vocab_size(true)
    }

    pub fn save(&self, path: &Path) -> anyhow::Result<()> {
        self.inner
            .save(path, false)
            .map_err(|e| anyhow!("writing {}: {e}", path.display()))
    }

    /// Trains a GPT-2-style byte-level BPE of at most `vocab_size` tokens on `texts`, with
    /// `special` tokens (e.g. `<|endoftext|>`) first. Deterministic for the same input.
    pub fn train_bpe(
        texts: &[String],
        vocab_size: usize,
        special: &[&str],
    ) -> anyhow::Result<Tokenizer> {
        let mut trainer = BpeTrainerBuilder::new()
            .vocab_size(vocab_size)
            .min_frequency(1)
            .show_progress(false)
            .special_tokens(
                special
                    .iter()
                    .map(|s| AddedToken::from(s.to_string(), true))
                    .collect(),
            )
            .initial_alphabet(ByteLevel::alphabet().into_iter().collect())
            .build();
        let mut tok: TokenizerImpl<BPE, NormalizerWrapper, ByteLevel, ByteLevel, ByteLevel> =
            TokenizerBuilder::new()
                .with_model(BPE::default())
                .with_normalizer(None)
                .with_pre_tokenizer(Some(ByteLevel::new(false, true, true)))
                .with_post_processor(Some(ByteLevel::new(false, true, true)))
                .with_decoder(Some(ByteLevel::new(false, true, true)))
                .build()
                .map_err(|e| anyhow!("building a tokenizer: {e}"))?;
        tok.train(&mut trainer, texts.iter().cloned())
            .map_err(|e| anyhow!("training BPE: {e}"))?;
        let json = tok.to_string(false).map_err(|e| anyhow!("{e}"))?;
        let inner: tokenizers::Tokenizer = json
            .parse()
            .map_err(|e| anyhow!("{e}"))
            .context("reloading the trained tokenizer")?;
        Ok(Tokenizer { inner })
    }
}
