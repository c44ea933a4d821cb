//! Generation, one implementation for every decoder: greedy, seeded sampling (temperature,
//! top-p, no-repeat-ngram, min/max new tokens, stop token), Hugging Face-compatible beam
//! search, and the paper's captioner beam search.
//!
//! Models plug in through [`Decoder`]: a prefill over the prompt rows, then one token per
//! row per step with a cache, and a way to reorder the cache when beams are reshuffled.
//!
//! Batches are ragged: prompts of different lengths are left-padded with an attention
//! mask and position ids as transformers' `generate` builds them (T5 sources are
//! right-padded and masked by [`Seq2Seq::from_sources`]), so a row of a batch gives the
//! same tokens as its prompt alone. Sampling draws each row from its own RNG stream
//! ([`row_rng`]), so a row's tokens never depend on the other rows. Rows and prompts
//! that have finished leave the batch on the host path; on GPU backends tokens are
//! chosen on the device (`select.rs`, [`Selection`]) and finished rows stay, so that
//! nothing is read back per token. Caller errors (no prompt, an empty prompt, an
//! id outside the vocabulary, too many positions) are returned, never panics.

use super::KvCache;
use super::select;
use anyhow::bail;
use burn::prelude::*;
use burn::tensor::activation::log_softmax;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::collections::HashMap;

pub trait Decoder<B: Backend> {
    type Cache;
    /// Runs the prompt rows `prompt` `[rows, t]`, left-padded: row `i` begins with
    /// `pads[i]` padding positions that no token attends to and that do not count as
    /// positions. Returns the last position's logits `[rows, vocab]`.
    fn prefill(
        &self,
        prompt: Tensor<B, 2, Int>,
        pads: &[usize],
    ) -> anyhow::Result<(Tensor<B, 2>, Self::Cache)>;
    /// Feeds one new token per row (`[rows, 1]`); returns logits `[rows, vocab]`.
    fn step(&self, tokens: Tensor<B, 2, Int>, cache: &mut Self::Cache) -> Tensor<B, 2>;
    /// Keeps cache rows `rows`, in that order (possibly fewer or repeated rows).
    fn reorder(&self, cache: &mut Self::Cache, rows: Tensor<B, 1, Int>);
    /// [`Decoder::reorder`] with rows the host already holds, so that a model can skip
    /// the parts of its cache those rows leave equal.
    fn reorder_rows(&self, cache: &mut Self::Cache, rows: &[usize], dev: &B::Device) {
        self.reorder(cache, rows_tensor::<B>(rows, dev));
    }
    /// Token ids must be below this.
    fn vocab_size(&self) -> usize;
    /// The number of learned positions (a prompt plus its new tokens must fit), if any.
    fn max_positions(&self) -> Option<usize>;
}

fn last<B: Backend>(logits: Tensor<B, 3>) -> Tensor<B, 2> {
    let [b, t, v] = logits.dims();
    logits.narrow(1, t - 1, 1).reshape([b, v])
}

/// The cache of a decoder-only model: its keys/values and, when some prompt row was
/// padded, transformers' `attention_mask` over the cached positions `[rows, cached]`.
#[derive(Clone, Debug)]
pub struct CausalCache<B: Backend> {
    pub kv: KvCache<B>,
    pub mask: Option<Tensor<B, 2, Int>>,
}

/// HF `attention_mask` `[rows, width]` for rows left-padded by `pads`.
fn left_mask<B: Backend>(pads: &[usize], width: usize, dev: &B::Device) -> Tensor<B, 2, Int> {
    let flat: Vec<i64> = pads
        .iter()
        .flat_map(|&p| (0..width).map(move |j| (j >= p) as i64))
        .collect();
    Tensor::from_data(TensorData::new(flat, [pads.len(), width]), dev)
}

macro_rules! causal_decoder {
    ($ty:ty) => {
        impl<B: Backend> Decoder<B> for $ty {
            type Cache = CausalCache<B>;
            fn prefill(
                &self,
                prompt: Tensor<B, 2, Int>,
                pads: &[usize],
            ) -> anyhow::Result<(Tensor<B, 2>, CausalCache<B>)> {
                if self.has_cross_attention() {
                    bail!(
                        "this model has cross-attention layers and needs encoder states: \
                         generate through `EmbedsDecoder::with_memory`"
                    );
                }
                let mut kv = self.new_cache();
                let [_, t] = prompt.dims();
                // Unpadded batches take the plain path (bit-identical to an unmasked pass).
                let mask = pads
                    .iter()
                    .any(|&p| p > 0)
                    .then(|| left_mask::<B>(pads, t, &prompt.device()));
                let logits = self.forward_masked(prompt, mask.clone(), None, Some(&mut kv));
                Ok((last(logits), CausalCache { kv, mask }))
            }
            fn step(&self, tokens: Tensor<B, 2, Int>, cache: &mut CausalCache<B>) -> Tensor<B, 2> {
                if let Some(m) = cache.mask.take() {
                    let ones = Tensor::<B, 2, Int>::ones([m.dims()[0], 1], &m.device());
                    cache.mask = Some(Tensor::cat(vec![m, ones], 1));
                }
                let logits =
                    self.forward_masked(tokens, cache.mask.clone(), None, Some(&mut cache.kv));
                last(logits)
            }
            fn reorder(&self, cache: &mut CausalCache<B>, rows: Tensor<B, 1, Int>) {
                cache.kv.select(rows.clone());
                if let Some(m) = cache.mask.take() {
                    cache.mask = Some(m.select(0, rows));
                }
            }
            fn vocab_size(&self) -> usize {
                self.wte.weight.val().dims()[0]
            }
            fn max_positions(&self) -> Option<usize> {
                Some(self.wpe.weight.val().dims()[0])
            }
        }
    };
}
causal_decoder!(super::gpt2::Gpt2<B>);
causal_decoder!(super::gpt_neo::GptNeo<B>);

/// GPT-2 conditioned on an image, one conditioning per prompt row: a ClipCap prefix of
/// vectors placed before the prompt's token embeddings (transformers'
/// `generate(inputs_embeds=cat(prefix, embed(prompt)))`), or encoder memory that
/// cross-attention layers attend to (`generate(input_ids, encoder_hidden_states=memory)`).
pub struct EmbedsDecoder<'a, B: Backend> {
    pub model: &'a super::gpt2::Gpt2<B>,
    /// `[rows, prefix_len, d]`
    pub prefix: Option<Tensor<B, 3>>,
    /// `[rows, memory_len, d]`
    pub memory: Option<Tensor<B, 3>>,
}

/// [`EmbedsDecoder`]'s cache: the self-attention cache and the memory rows, which follow
/// the beams when they are reordered.
pub struct EmbedsCache<B: Backend> {
    pub causal: CausalCache<B>,
    pub memory: Option<Tensor<B, 3>>,
}

impl<'a, B: Backend> EmbedsDecoder<'a, B> {
    pub fn with_prefix(
        model: &'a super::gpt2::Gpt2<B>,
        prefix: Tensor<B, 3>,
    ) -> anyhow::Result<Self> {
        if model.has_cross_attention() {
            bail!("this GPT-2 has cross-attention layers: give it memory, not a prefix");
        }
        let d = model.wte.weight.val().dims()[1];
        if prefix.dims()[2] != d {
            bail!(
                "prefix vectors have {} values, the model's embeddings {d}",
                prefix.dims()[2]
            );
        }
        Ok(EmbedsDecoder {
            model,
            prefix: Some(prefix),
            memory: None,
        })
    }

    pub fn with_memory(
        model: &'a super::gpt2::Gpt2<B>,
        memory: Tensor<B, 3>,
    ) -> anyhow::Result<Self> {
        if !model.has_cross_attention() {
            bail!(
                "this GPT-2 has no cross-attention layers (add_cross_attention = false): \
                 it cannot attend to memory"
            );
        }
        let d = model.wte.weight.val().dims()[1];
        if memory.dims()[2] != d {
            bail!(
                "memory vectors have {} values, the model's embeddings {d}",
                memory.dims()[2]
            );
        }
        Ok(EmbedsDecoder {
            model,
            prefix: None,
            memory: Some(memory),
        })
    }

    fn prefix_len(&self) -> usize {
        self.prefix.as_ref().map(|p| p.dims()[1]).unwrap_or(0)
    }
}

impl<B: Backend> Decoder<B> for EmbedsDecoder<'_, B> {
    type Cache = EmbedsCache<B>;
    fn prefill(
        &self,
        prompt: Tensor<B, 2, Int>,
        pads: &[usize],
    ) -> anyhow::Result<(Tensor<B, 2>, EmbedsCache<B>)> {
        let [rows, t] = prompt.dims();
        let given = self
            .prefix
            .as_ref()
            .or(self.memory.as_ref())
            .map(|x| x.dims()[0])
            .unwrap_or(0);
        if given != rows {
            bail!("{rows} prompts but {given} prefixes or memories: give one per prompt");
        }
        let dev = prompt.device();
        let p = self.prefix_len();
        // Padding sits between the prefix and the tokens; positions skip it (cumsum of the
        // mask), as they do in transformers for a mask with holes.
        let mask = pads.iter().any(|&n| n > 0).then(|| {
            let tokens = left_mask::<B>(pads, t, &dev);
            match p {
                0 => tokens,
                _ => Tensor::cat(vec![Tensor::ones([rows, p], &dev), tokens], 1),
            }
        });
        let mut x = self.model.embed(prompt);
        if let Some(prefix) = &self.prefix {
            x = Tensor::cat(vec![prefix.clone(), x], 1);
        }
        let mut kv = self.model.new_cache();
        let logits = self.model.forward_embeds_masked(
            x,
            self.memory.as_ref(),
            mask.clone(),
            None,
            Some(&mut kv),
        );
        Ok((
            last(logits),
            EmbedsCache {
                causal: CausalCache { kv, mask },
                memory: self.memory.clone(),
            },
        ))
    }
    fn step(&self, tokens: Tensor<B, 2, Int>, cache: &mut EmbedsCache<B>) -> Tensor<B, 2> {
        let c = &mut cache.causal;
        if let Some(m) = c.mask.take() {
            let ones = Tensor::<B, 2, Int>::ones([m.dims()[0], 1], &m.device());
            c.mask = Some(Tensor::cat(vec![m, ones], 1));
        }
        let x = self.model.embed(tokens);
        let logits = self.model.forward_embeds_masked(
            x,
            cache.memory.as_ref(),
            c.mask.clone(),
            None,
            Some(&mut c.kv),
        );
        last(logits)
    }
    fn reorder(&self, cache: &mut EmbedsCache<B>, rows: Tensor<B, 1, Int>) {
        cache.causal.kv.select(rows.clone());
        if let Some(m) = cache.causal.mask.take() {
            cache.causal.mask = Some(m.select(0, rows.clone()));
        }
        if let Some(m) = cache.memory.take() {
            cache.memory = Some(m.select(0, rows));
        }
    }
    fn vocab_size(&self) -> usize {
        self.model.wte.weight.val().dims()[0]
    }
    fn max_positions(&self) -> Option<usize> {
        Some(self.model.wpe.weight.val().dims()[0] - self.prefix_len())
    }
}

/// A sequence-to-sequence model bound to encoder states: generation runs its decoder.
/// `enc` holds one source, or one per prompt row (or one per group of `rows / sources`
/// consecutive rows), with `enc_mask` (transformers' `attention_mask`, 1 = token,
/// 0 = padding) when the sources were padded to a common length.
pub struct Seq2Seq<'a, B: Backend> {
    pub model: &'a super::t5::T5<B>,
    pub enc: Tensor<B, 3>,
    pub enc_mask: Option<Tensor<B, 2, Int>>,
}

impl<'a, B: Backend> Seq2Seq<'a, B> {
    /// Encoder states of sources of equal length (no padding).
    pub fn new(model: &'a super::t5::T5<B>, enc: Tensor<B, 3>) -> Self {
        Seq2Seq {
            model,
            enc,
            enc_mask: None,
        }
    }

    /// Encoder states of padded sources and their mask.
    pub fn masked(model: &'a super::t5::T5<B>, enc: Tensor<B, 3>, mask: Tensor<B, 2, Int>) -> Self {
        Seq2Seq {
            model,
            enc,
            enc_mask: Some(mask),
        }
    }

    /// Encodes token-id sources of any lengths (right-padded, masked): prompt row `i` of a
    /// later generation call reads source `i`.
    pub fn from_sources(
        model: &'a super::t5::T5<B>,
        sources: &[Vec<u32>],
        dev: &B::Device,
    ) -> anyhow::Result<Self> {
        let vocab = model.shared.weight.val().dims()[0];
        check_ids(sources, vocab, "source")?;
        if let Some(i) = sources.iter().position(|s| s.is_empty()) {
            bail!("source {i} is empty");
        }
        let (ids, mask) = pad_right::<B>(sources, 0, dev)?;
        let enc = model.encode_masked(ids, mask.clone());
        Ok(Seq2Seq::masked(model, enc, mask))
    }
}

/// The decoder cache of [`Seq2Seq`] and the encoder states (and mask) of its rows.
#[derive(Clone, Debug)]
pub struct Seq2SeqCache<B: Backend> {
    pub t5: super::t5::T5Cache<B>,
    pub enc: Tensor<B, 3>,
    pub enc_mask: Option<Tensor<B, 2, Int>>,
    /// The encoder source each row reads, while the host knows it (not after a reorder
    /// by device rows). A beam search's reorders keep each prompt's beams on their own
    /// source; the encoder states and cross-attention keys of those rows then stay as they
    /// are, and only the self-attention cache is reordered.
    source: Option<Vec<usize>>,
}

impl<B: Backend> Decoder<B> for Seq2Seq<'_, B> {
    type Cache = Seq2SeqCache<B>;
    fn prefill(
        &self,
        prompt: Tensor<B, 2, Int>,
        pads: &[usize],
    ) -> anyhow::Result<(Tensor<B, 2>, Self::Cache)> {
        if pads.iter().any(|&p| p > 0) {
            bail!("decoder prompts of a sequence-to-sequence model must have equal lengths");
        }
        let rows = prompt.dims()[0];
        let eb = self.enc.dims()[0];
        if let Some(m) = &self.enc_mask
            && m.dims() != [eb, self.enc.dims()[1]]
        {
            bail!(
                "the encoder mask is {:?}, the encoder states {:?}",
                m.dims(),
                self.enc.dims()
            );
        }
        let (enc, enc_mask, source) = if eb == rows {
            (self.enc.clone(), self.enc_mask.clone(), (0..rows).collect())
        } else if eb > 0 && rows.is_multiple_of(eb) {
            let per = rows / eb;
            let idx: Vec<i64> = (0..rows).map(|r| (r / per) as i64).collect();
            let idx =
                Tensor::<B, 1, Int>::from_data(TensorData::new(idx, [rows]), &prompt.device());
            (
                self.enc.clone().select(0, idx.clone()),
                self.enc_mask.clone().map(|m| m.select(0, idx)),
                (0..rows).map(|r| r / per).collect(),
            )
        } else {
            bail!("{rows} decoder prompts for {eb} encoded sources");
        };
        let mut t5 = self.model.new_cache();
        let logits = self
            .model
            .decode_masked(prompt, &enc, enc_mask.as_ref(), Some(&mut t5));
        let cache = Seq2SeqCache {
            t5,
            enc,
            enc_mask,
            source: Some(source),
        };
        Ok((last(logits), cache))
    }
    fn step(&self, tokens: Tensor<B, 2, Int>, cache: &mut Self::Cache) -> Tensor<B, 2> {
        last(self.model.decode_masked(
            tokens,
            &cache.enc,
            cache.enc_mask.as_ref(),
            Some(&mut cache.t5),
        ))
    }
    fn reorder(&self, cache: &mut Self::Cache, rows: Tensor<B, 1, Int>) {
        cache.t5.select(rows.clone());
        cache.enc = cache.enc.clone().select(0, rows.clone());
        if let Some(m) = cache.enc_mask.take() {
            cache.enc_mask = Some(m.select(0, rows));
        }
        cache.source = None;
    }
    fn reorder_rows(&self, cache: &mut Self::Cache, rows: &[usize], dev: &B::Device) {
        let moved: Option<Vec<usize>> = cache
            .source
            .as_ref()
            .and_then(|s| rows.iter().map(|&r| s.get(r).copied()).collect());
        match moved {
            // Each row keeps its source: the encoder rows are copies of one another's.
            Some(m) if cache.source.as_ref() == Some(&m) => {
                cache.t5.self_attn.select(rows_tensor::<B>(rows, dev));
            }
            m => {
                self.reorder(cache, rows_tensor::<B>(rows, dev));
                cache.source = m;
            }
        }
    }
    fn vocab_size(&self) -> usize {
        self.model.shared.weight.val().dims()[0]
    }
    fn max_positions(&self) -> Option<usize> {
        None
    }
}

fn pad_rows<B: Backend>(
    rows: &[Vec<u32>],
    pad: u32,
    left: bool,
    dev: &B::Device,
) -> anyhow::Result<(Tensor<B, 2, Int>, Tensor<B, 2, Int>)> {
    let width = rows.iter().map(Vec::len).max().unwrap_or(0);
    if width == 0 {
        bail!("cannot pad an empty batch (no rows, or every row empty)");
    }
    let (mut ids, mut mask) = (Vec::new(), Vec::new());
    for r in rows {
        let n = width - r.len();
        let toks = r.iter().map(|&x| x as i64);
        if left {
            ids.extend(std::iter::repeat_n(pad as i64, n).chain(toks));
            mask.extend(std::iter::repeat_n(0i64, n).chain(std::iter::repeat_n(1, r.len())));
        } else {
            ids.extend(toks.chain(std::iter::repeat_n(pad as i64, n)));
            mask.extend(std::iter::repeat_n(1i64, r.len()).chain(std::iter::repeat_n(0, n)));
        }
    }
    let shape = [rows.len(), width];
    Ok((
        Tensor::from_data(TensorData::new(ids, shape), dev),
        Tensor::from_data(TensorData::new(mask, shape), dev),
    ))
}

/// Rows of different lengths as `(ids, attention_mask)` `[rows, longest]`, padded on the
/// left with `pad` (decoder-only prompts); mask 1 = token, 0 = padding.
pub fn pad_left<B: Backend>(
    rows: &[Vec<u32>],
    pad: u32,
    dev: &B::Device,
) -> anyhow::Result<(Tensor<B, 2, Int>, Tensor<B, 2, Int>)> {
    pad_rows(rows, pad, true, dev)
}

/// Rows of different lengths as `(ids, attention_mask)` `[rows, longest]`, padded on the
/// right with `pad` (encoder inputs, T5 sources and targets); mask 1 = token, 0 = padding.
pub fn pad_right<B: Backend>(
    rows: &[Vec<u32>],
    pad: u32,
    dev: &B::Device,
) -> anyhow::Result<(Tensor<B, 2, Int>, Tensor<B, 2, Int>)> {
    pad_rows(rows, pad, false, dev)
}

fn check_ids(rows: &[Vec<u32>], vocab: usize, what: &str) -> anyhow::Result<()> {
    for (i, r) in rows.iter().enumerate() {
        if let Some(t) = r.iter().find(|&&t| t as usize >= vocab) {
            bail!("{what} {i} holds token id {t}, outside the vocabulary of {vocab}");
        }
    }
    Ok(())
}

/// Checks prompts for generation: at least one, none empty, ids in the vocabulary, and
/// room for `new` tokens in the model's positions.
fn check_prompts<B: Backend, M: Decoder<B>>(
    model: &M,
    prompts: &[Vec<u32>],
    new: usize,
) -> anyhow::Result<()> {
    if prompts.is_empty() {
        bail!("no prompts to generate from");
    }
    if let Some(i) = prompts.iter().position(|p| p.is_empty()) {
        bail!("prompt {i} is empty (a prompt needs at least one token)");
    }
    check_ids(prompts, model.vocab_size(), "prompt")?;
    if let Some(max) = model.max_positions() {
        let longest = prompts.iter().map(Vec::len).max().unwrap_or(0);
        if longest + new > max {
            bail!(
                "a prompt of {longest} tokens plus {new} new tokens exceeds the model's {max} positions"
            );
        }
    }
    Ok(())
}

/// Left-pads `prompts` into one tensor; returns it with each row's padding count.
fn prompt_batch<B: Backend>(
    prompts: &[Vec<u32>],
    dev: &B::Device,
) -> anyhow::Result<(Tensor<B, 2, Int>, Vec<usize>)> {
    let width = prompts.iter().map(Vec::len).max().unwrap_or(0);
    let pads = prompts.iter().map(|p| width - p.len()).collect();
    Ok((pad_left::<B>(prompts, 0, dev)?.0, pads))
}

fn ids_tensor<B: Backend>(tokens: &[u32], dev: &B::Device) -> Tensor<B, 2, Int> {
    let flat: Vec<i64> = tokens.iter().map(|&x| x as i64).collect();
    Tensor::from_data(TensorData::new(flat, [tokens.len(), 1]), dev)
}

fn rows_tensor<B: Backend>(rows: &[usize], dev: &B::Device) -> Tensor<B, 1, Int> {
    let v: Vec<i64> = rows.iter().map(|&r| r as i64).collect();
    Tensor::from_data(TensorData::new(v, [rows.len()]), dev)
}

/// Sets `l[t]` to −∞ if `t` is a valid index.
fn forbid(l: &mut [f32], t: u32) {
    if let Some(x) = l.get_mut(t as usize) {
        *x = f32::NEG_INFINITY;
    }
}

fn rows_f32<B: Backend>(t: Tensor<B, 2>) -> Vec<Vec<f32>> {
    let [r, v] = t.dims();
    let flat = t.into_data().convert::<f32>().to_vec::<f32>().expect("f32");
    (0..r).map(|i| flat[i * v..(i + 1) * v].to_vec()).collect()
}

/// Tokens that would repeat an n-gram already in `seq` (HF's NoRepeatNGramLogitsProcessor).
pub fn banned_by_ngram(seq: &[u32], n: usize) -> Vec<u32> {
    if n == 0 || seq.len() + 1 < n {
        return Vec::new();
    }
    let prefix = &seq[seq.len() + 1 - n..];
    let mut banned = Vec::new();
    for w in seq.windows(n) {
        if &w[..n - 1] == prefix {
            banned.push(w[n - 1]);
        }
    }
    banned
}

#[derive(Debug, Clone)]
pub struct SampleOptions {
    pub max_new_tokens: usize,
    pub min_new_tokens: usize,
    /// 0 means greedy.
    pub temperature: f32,
    pub top_p: f32,
    pub no_repeat_ngram: usize,
    /// A row stops after any of these tokens (it is kept in the output): e.g. a newline
    /// and the document separator, after which a language model starts unrelated text.
    /// `min_new_tokens` forbids them until then.
    pub stop_tokens: Vec<u32>,
    /// Row `i` samples from [`row_rng`]`(seed, stream_i)`.
    pub seed: u64,
    /// Where each token is chosen.
    pub selection: Selection,
}

/// Where [`sample_streams`] chooses the next tokens.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Selection {
    /// On the device for GPU backends, on the host for the CPU ones.
    #[default]
    Auto,
    /// Read every step's logits back and choose on the host: finished rows leave the batch.
    Host,
    /// Choose with tensor ops where the logits are, feed the tokens straight back, and read
    /// back only a "all rows finished" flag every [`SYNC_EVERY`] steps and the tokens at the
    /// end. Finished rows stay in the batch (their extra tokens are dropped).
    Device,
}

impl Selection {
    /// Whether tokens are chosen on the device for backend `B`.
    fn on_device<B: Backend>(self, dev: &B::Device) -> bool {
        match self {
            Selection::Host => false,
            Selection::Device => true,
            Selection::Auto => !select::on_host::<B>(dev),
        }
    }
}

/// Steps between two checks of the device path for rows still generating.
pub const SYNC_EVERY: usize = 8;

impl Default for SampleOptions {
    fn default() -> Self {
        SampleOptions {
            max_new_tokens: 20,
            min_new_tokens: 0,
            temperature: 0.0,
            top_p: 1.0,
            no_repeat_ngram: 0,
            stop_tokens: Vec::new(),
            seed: 0,
            selection: Selection::Auto,
        }
    }
}

/// Greedy decoding or seeded sampling for each prompt row; returns the prompt plus the
/// new tokens (through the stop token, if reached). Prompts may have different lengths
/// (they are left-padded and masked); row `i` draws from RNG stream `i` (see
/// [`sample_streams`]), so a row gives the same tokens as that prompt alone in a call
/// where it is also row `i` — and always the same tokens when greedy.
pub fn sample<B: Backend, M: Decoder<B>>(
    model: &M,
    prompts: &[Vec<u32>],
    opt: &SampleOptions,
    dev: &B::Device,
) -> anyhow::Result<Vec<Vec<u32>>> {
    let streams: Vec<u64> = (0..prompts.len() as u64).collect();
    sample_streams(model, prompts, &streams, opt, dev)
}

/// The RNG of one sampled row: ChaCha8 seeded with `seed`, on stream `stream`.
pub fn row_rng(seed: u64, stream: u64) -> ChaCha8Rng {
    let mut r = ChaCha8Rng::seed_from_u64(seed);
    r.set_stream(stream);
    r
}

/// [`sample`] with each row's RNG stream given: row `i` draws only from
/// [`row_rng`]`(opt.seed, streams[i])`, so its tokens depend on its prompt, the options and
/// its stream, never on the other rows of the batch. Give each item a stable stream (e.g.
/// its index among all the items generated) and outputs do not depend on batch size or on
/// where a resumed run restarts.
pub fn sample_streams<B: Backend, M: Decoder<B>>(
    model: &M,
    prompts: &[Vec<u32>],
    streams: &[u64],
    opt: &SampleOptions,
    dev: &B::Device,
) -> anyhow::Result<Vec<Vec<u32>>> {
    check_prompts(model, prompts, opt.max_new_tokens)?;
    if streams.len() != prompts.len() {
        bail!(
            "{} RNG streams for {} prompts",
            streams.len(),
            prompts.len()
        );
    }
    if opt.temperature.is_nan() || opt.top_p.is_nan() {
        bail!("temperature and top_p must be numbers");
    }
    if opt.selection.on_device::<B>(dev) {
        return sample_on_device(model, prompts, streams, opt, dev);
    }
    let mut rngs: Vec<ChaCha8Rng> = streams.iter().map(|&s| row_rng(opt.seed, s)).collect();
    let mut seqs: Vec<Vec<u32>> = prompts.to_vec();
    let (ids, pads) = prompt_batch::<B>(prompts, dev)?;
    let (mut logits, mut cache) = model.prefill(ids, &pads)?;
    // The prompt rows still generating, in cache order.
    let mut active: Vec<usize> = (0..prompts.len()).collect();
    for step in 0..opt.max_new_tokens {
        let rows = rows_f32(logits);
        let mut next = Vec::with_capacity(active.len());
        let mut keep = Vec::with_capacity(active.len());
        for (pos, (&i, mut l)) in active.iter().zip(rows).enumerate() {
            for b in banned_by_ngram(&seqs[i], opt.no_repeat_ngram) {
                forbid(&mut l, b);
            }
            if step < opt.min_new_tokens {
                for &s in &opt.stop_tokens {
                    forbid(&mut l, s);
                }
            }
            let tok = if opt.temperature <= 0.0 {
                argmax(&l)
            } else {
                draw(&l, opt.temperature, opt.top_p, &mut rngs[i])
            };
            seqs[i].push(tok);
            if !opt.stop_tokens.contains(&tok) {
                next.push(tok);
                keep.push(pos);
            }
        }
        if keep.is_empty() || step + 1 == opt.max_new_tokens {
            break;
        }
        if keep.len() < active.len() {
            // Finished rows leave the batch.
            model.reorder_rows(&mut cache, &keep, dev);
            active = keep.iter().map(|&p| active[p]).collect();
        }
        logits = model.step(ids_tensor::<B>(&next, dev), &mut cache);
    }
    Ok(seqs)
}

/// [`sample_streams`] with the tokens chosen on the device ([`Selection::Device`]).
/// Greedy is an `argmax`; sampling draws one uniform number per row on the host (from the
/// row's own stream, as the host path does) and picks the token with tensor ops
/// ([`select::draw`]): no sort and nothing read back per token. Probabilities are f32
/// here and f64 on the host, so a sampled row can differ from the host path where a
/// running mass straddles the draw, or the nucleus mass straddles `top_p`, within f32
/// rounding.
fn sample_on_device<B: Backend, M: Decoder<B>>(
    model: &M,
    prompts: &[Vec<u32>],
    streams: &[u64],
    opt: &SampleOptions,
    dev: &B::Device,
) -> anyhow::Result<Vec<Vec<u32>>> {
    let rows = prompts.len();
    let vocab = model.vocab_size();
    let mut rngs: Vec<ChaCha8Rng> = streams.iter().map(|&s| row_rng(opt.seed, s)).collect();
    let (ids, pads) = prompt_batch::<B>(prompts, dev)?;
    let width = ids.dims()[1];
    let (mut logits, mut cache) = model.prefill(ids.clone(), &pads)?;
    // −∞ at the stop tokens, added while `min_new_tokens` forbids them.
    let stop_ban = (!opt.stop_tokens.is_empty() && opt.min_new_tokens > 0).then(|| {
        let mut v = vec![0f32; vocab];
        for &t in &opt.stop_tokens {
            forbid(&mut v, t);
        }
        Tensor::<B, 1>::from_data(TensorData::new(v, [vocab]), dev).unsqueeze::<2>()
    });
    // A stop token outside the vocabulary is never produced (and may not fit the
    // backend's integer type).
    let stops: Vec<i64> = opt
        .stop_tokens
        .iter()
        .filter(|&&t| (t as usize) < vocab)
        .map(|&t| t as i64)
        .collect();
    // Every row's tokens so far (prompt, left-padded, then the new ones), for n-gram bans.
    let mut seq = ids;
    // Position `j` of `seq` is a real token of its row (not padding).
    let real = |len: usize| {
        let v: Vec<bool> = pads
            .iter()
            .flat_map(|&p| (0..len).map(move |j| j >= p))
            .collect();
        Tensor::<B, 2, Bool>::from_data(TensorData::new(v, [rows, len]), dev)
    };
    // Rows that have produced a stop token.
    let mut finished = Tensor::<B, 2, Int>::zeros([rows, 1], dev).equal_elem(1);
    let mut new: Vec<Tensor<B, 2, Int>> = Vec::with_capacity(opt.max_new_tokens);
    for step in 0..opt.max_new_tokens {
        if let Some(b) = &stop_ban
            && step < opt.min_new_tokens
        {
            logits = logits + b.clone();
        }
        if opt.no_repeat_ngram > 0 {
            let len = width + step;
            logits = logits + select::ngram_ban(&seq, &real(len), opt.no_repeat_ngram, vocab);
        }
        let tok = if opt.temperature <= 0.0 {
            logits.argmax(1)
        } else {
            let r: Vec<f32> = rngs.iter_mut().map(|g| g.random::<f64>() as f32).collect();
            let r = Tensor::<B, 2>::from_data(TensorData::new(r, [rows, 1]), dev);
            select::draw(logits, opt.temperature, opt.top_p, r)
        };
        for &s in &stops {
            finished = finished.bool_or(tok.clone().equal_elem(s));
        }
        new.push(tok.clone());
        if step + 1 == opt.max_new_tokens {
            break;
        }
        if !stops.is_empty()
            && (step + 1) % SYNC_EVERY == 0
            && finished.clone().all().into_scalar().to_bool()
        {
            break;
        }
        if opt.no_repeat_ngram > 0 {
            seq = Tensor::cat(vec![seq, tok.clone()], 1);
        }
        logits = model.step(tok, &mut cache);
    }
    let steps = new.len();
    let all = Tensor::cat(new, 1).into_data().convert::<i64>();
    let all = all.to_vec::<i64>().map_err(|e| anyhow::anyhow!("{e:?}"))?;
    Ok(prompts
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let mut out = p.clone();
            for &t in &all[i * steps..(i + 1) * steps] {
                out.push(t as u32);
                if opt.stop_tokens.contains(&(t as u32)) {
                    break;
                }
            }
            out
        })
        .collect())
}

fn argmax(l: &[f32]) -> u32 {
    // First maximum, as torch.argmax.
    let mut best = 0;
    for (i, &x) in l.iter().enumerate() {
        if x > l[best] {
            best = i;
        }
    }
    best as u32
}

/// Samples from softmax(l / t) restricted to the top-p nucleus: the smallest set of most
/// probable tokens with mass ≥ top_p, plus any token tied with its least probable one.
/// The draw walks the kept tokens in vocabulary order (as `torch.multinomial` does over
/// transformers' filtered probabilities), which the device path can follow without a
/// sort ([`select::draw`]).
fn draw(l: &[f32], t: f32, top_p: f32, rng: &mut ChaCha8Rng) -> u32 {
    draw_at(l, t, top_p, rng.random::<f64>())
}

/// [`draw`] with its uniform number `u` in [0, 1) given.
pub(crate) fn draw_at(l: &[f32], t: f32, top_p: f32, u: f64) -> u32 {
    let m = l.iter().cloned().fold(f32::NEG_INFINITY, f32::max);
    let mut p: Vec<f64> = l.iter().map(|&x| (((x - m) / t) as f64).exp()).collect();
    let z: f64 = p.iter().sum();
    p.iter_mut().for_each(|x| *x /= z);
    let floor = if top_p < 1.0 {
        let mut sorted = p.clone();
        sorted.sort_by(|a, b| b.total_cmp(a));
        let mut mass = sorted[0];
        let mut keep = 1;
        while keep < sorted.len() && mass < top_p as f64 {
            mass += sorted[keep];
            keep += 1;
        }
        sorted[keep - 1]
    } else {
        0.0
    };
    let kept = |q: f64| q >= floor && q > 0.0;
    let mass: f64 = p.iter().filter(|&&q| kept(q)).sum();
    let r = u * mass;
    let mut acc = 0.0;
    let mut last = 0;
    for (tok, &q) in p.iter().enumerate() {
        if kept(q) {
            acc += q;
            last = tok;
            if r < acc {
                return tok as u32;
            }
        }
    }
    last as u32
}

#[derive(Debug, Clone)]
pub struct BeamOptions {
    pub num_beams: usize,
    pub max_new_tokens: usize,
    pub min_length: usize,
    pub length_penalty: f32,
    pub no_repeat_ngram: usize,
    pub early_stopping: bool,
    pub eos: Option<u32>,
}

/// One returned hypothesis: tokens (prompt included) and its length-penalised score.
#[derive(Debug, Clone, PartialEq)]
pub struct Hypothesis {
    pub tokens: Vec<u32>,
    pub score: f32,
}

/// One prompt's beam-search state (transformers' `_beam_search` bookkeeping).
struct Beams {
    prompt_len: usize,
    max_len: usize,
    cur_len: usize,
    running: Vec<Vec<u32>>,
    running_scores: Vec<f32>,
    /// (tokens, score, is a real finished hypothesis)
    finished: Vec<(Vec<u32>, f32, bool)>,
    heuristic_unsatisfied: bool,
}

impl Beams {
    fn new(prompt: &[u32], o: &BeamOptions) -> Self {
        let nb = o.num_beams;
        Beams {
            prompt_len: prompt.len(),
            max_len: prompt.len() + o.max_new_tokens,
            cur_len: prompt.len(),
            running: vec![prompt.to_vec(); nb],
            running_scores: (0..nb).map(|i| if i == 0 { 0.0 } else { -1e9 }).collect(),
            finished: vec![(prompt.to_vec(), -1e9, false); nb],
            heuristic_unsatisfied: true,
        }
    }

    /// How many candidates a step keeps (transformers' `2 × num_beams`).
    fn keep(o: &BeamOptions) -> usize {
        2.max(1 + o.eos.is_some() as usize) * o.num_beams
    }

    /// The step's best candidates (score, beam, token), best first, from the log-probs of
    /// the `num_beams` running beams after the logits processors (n-gram bans, the end
    /// token forbidden before `min_length`): [`Beams::keep`] of them, in `torch.topk`'s
    /// order (descending; among equal scores the lower flat index first). Selects before
    /// sorting, so a step sorts 2 × `num_beams` candidates, not `num_beams` × vocabulary.
    fn candidates(&self, rows: Vec<Vec<f32>>, o: &BeamOptions) -> Vec<Candidate> {
        let mut cands: Vec<Candidate> = Vec::with_capacity(o.num_beams * rows[0].len());
        for (b, mut lp) in rows.into_iter().enumerate() {
            for t in banned_by_ngram(&self.running[b], o.no_repeat_ngram) {
                forbid(&mut lp, t);
            }
            if let (Some(e), true) = (o.eos, self.cur_len < o.min_length) {
                forbid(&mut lp, e);
            }
            let score = self.running_scores[b];
            cands.extend(
                lp.into_iter()
                    .enumerate()
                    .map(|(t, x)| (x + score, b, t as u32)),
            );
        }
        let cmp =
            |a: &Candidate, b: &Candidate| b.0.total_cmp(&a.0).then((a.1, a.2).cmp(&(b.1, b.2)));
        let keep = Self::keep(o);
        if keep < cands.len() {
            cands.select_nth_unstable_by(keep, cmp);
            cands.truncate(keep);
        }
        cands.sort_by(cmp);
        cands
    }

    /// One step from its best candidates ([`Beams::candidates`]). Returns the running
    /// beam each new running beam continues (`None` when this prompt is done).
    fn advance(&mut self, cands: Vec<Candidate>, o: &BeamOptions) -> Option<Vec<usize>> {
        let nb = o.num_beams;
        let (cur_len, prompt_len, max_len) = (self.cur_len, self.prompt_len, self.max_len);
        let keep = cands.len();
        let hits: Vec<bool> = cands
            .iter()
            .map(|c| Some(c.2) == o.eos || cur_len + 1 >= max_len)
            .collect();
        let running = &self.running;
        let seq_of = |c: &Candidate| {
            let mut s = running[c.1].clone();
            s.push(c.2);
            s
        };
        // Next running beams: the best candidates that did not stop.
        let mut order: Vec<usize> = (0..keep).collect();
        let adj = |i: usize| cands[i].0 + if hits[i] { -1e9 } else { 0.0 };
        order.sort_by(|&a, &b| adj(b).total_cmp(&adj(a)).then(a.cmp(&b)));
        let chosen: Vec<usize> = order[..nb].to_vec();
        // Finished hypotheses: merge the old ones with the top-nb candidates that stopped.
        let all_done = self.finished.iter().all(|f| f.2) && o.early_stopping;
        let denom = ((cur_len + 1 - prompt_len) as f32).powf(o.length_penalty);
        let mut merged: Vec<(Vec<u32>, f32, bool)> = self.finished.clone();
        for (i, c) in cands.iter().enumerate() {
            let just = hits[i] && i < nb;
            let mut s = c.0 / denom;
            if all_done {
                s += -1e9;
            }
            if !self.heuristic_unsatisfied {
                s += -1e9;
            }
            if !just {
                s += -1e9;
            }
            merged.push((seq_of(c), s, just));
        }
        let mut idx: Vec<usize> = (0..merged.len()).collect();
        idx.sort_by(|&a, &b| merged[b].1.total_cmp(&merged[a].1).then(a.cmp(&b)));
        self.finished = idx[..nb].iter().map(|&i| merged[i].clone()).collect();

        let new_running: Vec<Vec<u32>> = chosen.iter().map(|&i| seq_of(&cands[i])).collect();
        self.running_scores = chosen.iter().map(|&i| adj(i)).collect();
        let from: Vec<usize> = chosen.iter().map(|&i| cands[i].1).collect();
        self.running = new_running;
        self.cur_len += 1;

        if self.heuristic_unsatisfied {
            let best_len = (self.cur_len - prompt_len) as f32;
            let best_possible = self.running_scores[0] / best_len.powf(o.length_penalty);
            let min_finished = self
                .finished
                .iter()
                .map(|f| f.1)
                .fold(f32::INFINITY, f32::min);
            self.heuristic_unsatisfied = self
                .finished
                .iter()
                .any(|f| best_possible > if f.2 { min_finished } else { -1e9 });
        }
        let all_finished_stop = self.finished.iter().all(|f| f.2) && o.early_stopping;
        if !self.heuristic_unsatisfied || all_finished_stop || hits.iter().all(|&h| h) {
            None
        } else {
            Some(from)
        }
    }

    fn hypotheses(self) -> Vec<Hypothesis> {
        self.finished
            .into_iter()
            .map(|(tokens, score, _)| Hypothesis { tokens, score })
            .collect()
    }
}

/// Beam search with Hugging Face's semantics (transformers ≥ 4.50 `_beam_search`): running
/// beams start from the first beam only, `2 × num_beams` candidates per step, finished
/// hypotheses scored `sum_logprobs / generated_len^length_penalty`, the same early-stop
/// heuristic. Returns `num_beams` hypotheses, best first, for one prompt.
pub fn beam_search<B: Backend, M: Decoder<B>>(
    model: &M,
    prompt: &[u32],
    o: &BeamOptions,
    dev: &B::Device,
) -> anyhow::Result<Vec<Hypothesis>> {
    let mut all = beam_search_batch(model, &[prompt.to_vec()], o, dev)?;
    Ok(all.pop().expect("one prompt, one result"))
}

/// [`beam_search`] for several prompts at once (of any lengths: left-padded and masked),
/// one list of `num_beams` hypotheses per prompt, each equal to that prompt's search alone.
/// `min_length` and `max_new_tokens` count each prompt's own length (transformers counts
/// the padded one). A prompt whose search has ended leaves the batch. GPU backends take
/// each step's best candidates on the device ([`beam_search_with`]).
pub fn beam_search_batch<B: Backend, M: Decoder<B>>(
    model: &M,
    prompts: &[Vec<u32>],
    o: &BeamOptions,
    dev: &B::Device,
) -> anyhow::Result<Vec<Vec<Hypothesis>>> {
    beam_search_with(model, prompts, o, Selection::Auto, dev)
}

/// One beam-search candidate: accumulated score, the beam it continues, its token.
type Candidate = (f32, usize, u32);

/// [`beam_search_batch`] with the place of each step's candidate selection chosen. On the
/// host every step reads the beams' log-probs back (`num_beams` × vocabulary per prompt);
/// on the device ([`Selection::Device`]) the logits processors run as tensor ops and
/// `argtopk` takes each prompt's 2 × `num_beams` best candidates, the only values read
/// back. transformers' bookkeeping of finished hypotheses stays on the host either way.
pub fn beam_search_with<B: Backend, M: Decoder<B>>(
    model: &M,
    prompts: &[Vec<u32>],
    o: &BeamOptions,
    selection: Selection,
    dev: &B::Device,
) -> anyhow::Result<Vec<Vec<Hypothesis>>> {
    let nb = o.num_beams;
    if nb == 0 {
        bail!("num_beams must be at least 1");
    }
    if o.max_new_tokens == 0 {
        bail!("max_new_tokens must be at least 1 for beam search");
    }
    if 2 * nb > model.vocab_size() {
        bail!(
            "num_beams {nb} is too large for a vocabulary of {}",
            model.vocab_size()
        );
    }
    check_prompts(model, prompts, o.max_new_tokens)?;
    let on_device = selection.on_device::<B>(dev);
    let mut beams: Vec<Beams> = prompts.iter().map(|p| Beams::new(p, o)).collect();
    let mut done: Vec<Option<Vec<Hypothesis>>> = vec![None; prompts.len()];
    // The prompt is run once per prompt; the first step's logits serve all its beams.
    let (ids, pads) = prompt_batch::<B>(prompts, dev)?;
    let (logits, mut cache) = model.prefill(ids, &pads)?;
    let mut lp = log_softmax(logits, 1);
    let mut per_prompt = 1; // cache rows per active prompt
    let mut active: Vec<usize> = (0..prompts.len()).collect();
    loop {
        let cands: Vec<Vec<Candidate>> = if on_device {
            device_candidates(lp, &active, &beams, per_prompt, o)?
        } else {
            let mut rows = rows_f32(lp).into_iter();
            active
                .iter()
                .map(|&p| {
                    let mine: Vec<Vec<f32>> = rows.by_ref().take(per_prompt).collect();
                    let mine = if per_prompt == 1 {
                        vec![mine[0].clone(); nb]
                    } else {
                        mine
                    };
                    beams[p].candidates(mine, o)
                })
                .collect()
        };
        let mut cache_rows = Vec::new();
        let mut still = Vec::new();
        for (pos, (&p, c)) in active.iter().zip(cands).enumerate() {
            match beams[p].advance(c, o) {
                Some(from) => {
                    let base = pos * per_prompt;
                    cache_rows.extend(from.iter().map(|&b| base + b.min(per_prompt - 1)));
                    still.push(p);
                }
                None => {
                    let b = std::mem::replace(&mut beams[p], Beams::new(&[], o));
                    done[p] = Some(b.hypotheses());
                }
            }
        }
        if still.is_empty() {
            break;
        }
        model.reorder_rows(&mut cache, &cache_rows, dev);
        let toks: Vec<u32> = still
            .iter()
            .flat_map(|&p| {
                beams[p]
                    .running
                    .iter()
                    .map(|s| *s.last().expect("non-empty"))
            })
            .collect();
        active = still;
        per_prompt = nb;
        lp = log_softmax(model.step(ids_tensor::<B>(&toks, dev), &mut cache), 1);
    }
    Ok(done
        .into_iter()
        .map(|d| d.expect("every prompt's search ended"))
        .collect())
}

/// [`Beams::candidates`] for every active prompt with tensor ops: n-gram bans and the
/// early end token masked where the log-probs are, the beams' scores added, and the
/// best 2 × `num_beams` of each prompt's `num_beams` × vocabulary taken by `argtopk`.
/// Only those are read back. The running sequences, scores and `min_length` flags go up.
fn device_candidates<B: Backend>(
    lp: Tensor<B, 2>,
    active: &[usize],
    beams: &[Beams],
    per_prompt: usize,
    o: &BeamOptions,
) -> anyhow::Result<Vec<Vec<Candidate>>> {
    let dev = lp.device();
    let nb = o.num_beams;
    let rows = active.len() * nb;
    let vocab = lp.dims()[1];
    let mut lp = if per_prompt == 1 {
        let each: Vec<usize> = (0..rows).map(|r| r / nb).collect();
        lp.select(0, rows_tensor::<B>(&each, &dev))
    } else {
        lp
    };
    if o.no_repeat_ngram > 0 {
        let running: Vec<&Vec<u32>> = active.iter().flat_map(|&p| &beams[p].running).collect();
        let len = running.iter().map(|s| s.len()).max().unwrap_or(0);
        let (mut ids, mut real) = (
            Vec::with_capacity(rows * len),
            Vec::with_capacity(rows * len),
        );
        for s in &running {
            let pad = len - s.len();
            ids.extend(std::iter::repeat_n(0i64, pad).chain(s.iter().map(|&t| t as i64)));
            real.extend((0..len).map(|j| j >= pad));
        }
        let ids = Tensor::<B, 2, Int>::from_data(TensorData::new(ids, [rows, len]), &dev);
        let real = Tensor::<B, 2, Bool>::from_data(TensorData::new(real, [rows, len]), &dev);
        lp = lp + select::ngram_ban(&ids, &real, o.no_repeat_ngram, vocab);
    }
    if let Some(e) = o.eos {
        let early: Vec<bool> = active
            .iter()
            .flat_map(|&p| std::iter::repeat_n(beams[p].cur_len < o.min_length, nb))
            .collect();
        if early.contains(&true) && (e as usize) < vocab {
            let early = Tensor::<B, 2, Bool>::from_data(TensorData::new(early, [rows, 1]), &dev);
            let at_eos = Tensor::<B, 1, Int>::arange(0..vocab as i64, &dev)
                .equal_elem(e as i64)
                .unsqueeze::<2>();
            lp = lp.mask_fill(
                early
                    .expand([rows, vocab])
                    .bool_and(at_eos.expand([rows, vocab])),
                f32::NEG_INFINITY,
            );
        }
    }
    let scores: Vec<f32> = active
        .iter()
        .flat_map(|&p| beams[p].running_scores.iter().copied())
        .collect();
    let scores = Tensor::<B, 2>::from_data(TensorData::new(scores, [rows, 1]), &dev);
    let cand = (lp + scores.expand([rows, vocab])).reshape([active.len(), nb * vocab]);
    let keep = Beams::keep(o);
    let (values, flat) = select::top_k(cand, keep);
    let values = values
        .into_data()
        .convert::<f32>()
        .to_vec::<f32>()
        .map_err(|e| anyhow::anyhow!("reading the beam candidates back: {e:?}"))?;
    let flat = flat
        .into_data()
        .convert::<i64>()
        .to_vec::<i64>()
        .map_err(|e| anyhow::anyhow!("reading the beam candidates back: {e:?}"))?;
    Ok(values
        .chunks(keep)
        .zip(flat.chunks(keep))
        .map(|(v, f)| {
            v.iter()
                .zip(f)
                .map(|(&x, &i)| (x, i as usize / vocab, (i as usize % vocab) as u32))
                .collect()
        })
        .collect())
}

/// The paper's captioner decoding: beam width `width`, score = sum of token log-probs with
/// no length normalisation, a beam ends at `eos`, at most `max_new_tokens`; returns the
/// best `top_n` beams (finished or not), best first, with only the generated tokens.
pub fn paper_beam<B: Backend, M: Decoder<B>>(
    model: &M,
    prompt: &[u32],
    width: usize,
    max_new_tokens: usize,
    eos: u32,
    top_n: usize,
    dev: &B::Device,
) -> anyhow::Result<Vec<Hypothesis>> {
    let mut all = paper_beam_batch(
        model,
        &[prompt.to_vec()],
        width,
        max_new_tokens,
        eos,
        top_n,
        dev,
    )?;
    Ok(all.pop().expect("one prompt, one result"))
}

/// A beam of [`paper_beam_batch`]: generated tokens, summed log-prob, ended at EOS.
type PaperBeamState = (Vec<u32>, f32, bool);

/// The `k` best tokens of one row by (log-prob descending, token ascending), unsorted:
/// no more than `width` continuations of one beam can be among the `width` best overall,
/// so the full vocabulary never has to be sorted.
pub(crate) fn top_tokens(lp: &[f32], k: usize) -> Vec<(f32, u32)> {
    let mut v: Vec<(f32, u32)> = lp.iter().enumerate().map(|(t, &x)| (x, t as u32)).collect();
    let cmp = |a: &(f32, u32), b: &(f32, u32)| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1));
    if k < v.len() {
        v.select_nth_unstable_by(k, cmp);
        v.truncate(k);
    }
    v
}

/// [`paper_beam`] for many prompts at once, one decoder row per prompt (e.g. one image's
/// prefix each); every prompt's result equals its search alone. Prompts whose beams have
/// all ended leave the batch.
pub fn paper_beam_batch<B: Backend, M: Decoder<B>>(
    model: &M,
    prompts: &[Vec<u32>],
    width: usize,
    max_new_tokens: usize,
    eos: u32,
    top_n: usize,
    dev: &B::Device,
) -> anyhow::Result<Vec<Vec<Hypothesis>>> {
    let o = PaperBeam {
        width,
        max_new_tokens,
        eos,
        top_n,
        selection: Selection::Auto,
    };
    paper_beam_with(model, prompts, &o, dev)
}

/// The settings of [`paper_beam_with`].
#[derive(Debug, Clone, Copy)]
pub struct PaperBeam {
    pub width: usize,
    pub max_new_tokens: usize,
    pub eos: u32,
    pub top_n: usize,
    /// Where the beams are kept: on the host, where prompts whose beams have all ended
    /// leave the batch, or on the device ([`Selection::Device`]), where nothing is read back
    /// per step (see `select::paper_beam`). Both give the same hypotheses.
    pub selection: Selection,
}

/// [`paper_beam_batch`] with the bookkeeping's place chosen.
pub fn paper_beam_with<B: Backend, M: Decoder<B>>(
    model: &M,
    prompts: &[Vec<u32>],
    o: &PaperBeam,
    dev: &B::Device,
) -> anyhow::Result<Vec<Vec<Hypothesis>>> {
    let PaperBeam {
        width,
        max_new_tokens,
        eos,
        top_n,
        selection,
    } = *o;
    check_prompts(model, prompts, max_new_tokens)?;
    if width == 0 || width > model.vocab_size() {
        bail!(
            "beam width {width} must be between 1 and the vocabulary size {}",
            model.vocab_size()
        );
    }
    if max_new_tokens == 0 {
        bail!("max_new_tokens must be at least 1");
    }
    let (ids, pads) = prompt_batch::<B>(prompts, dev)?;
    if selection.on_device::<B>(dev) {
        return select::paper_beam(model, ids, &pads, width, max_new_tokens, eos, top_n);
    }
    let (logits, mut cache) = model.prefill(ids, &pads)?;
    let first = rows_f32(log_softmax(logits, 1));
    let cmp = |a: &(f32, usize, Option<u32>), b: &(f32, usize, Option<u32>)| {
        b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)).then(a.2.cmp(&b.2))
    };
    let mut beams: Vec<Vec<PaperBeamState>> = first
        .iter()
        .map(|lp| {
            let mut c: Vec<(f32, usize, Option<u32>)> = top_tokens(lp, width)
                .into_iter()
                .map(|(x, t)| (x, 0, Some(t)))
                .collect();
            c.sort_by(cmp);
            c.into_iter()
                .map(|(x, _, t)| {
                    let t = t.expect("a token");
                    (vec![t], x, t == eos)
                })
                .collect()
        })
        .collect();
    // Every prompt's row, repeated for its beams.
    let rows: Vec<usize> = (0..prompts.len())
        .flat_map(|p| std::iter::repeat_n(p, width))
        .collect();
    let mut active: Vec<usize> = (0..prompts.len()).collect();
    let mut cache_rows = rows;
    for _ in 1..max_new_tokens {
        // Prompts whose beams have all ended leave the batch (with their cache rows).
        let keep: Vec<usize> = (0..active.len())
            .filter(|&i| !beams[active[i]].iter().all(|b| b.2))
            .collect();
        if keep.is_empty() {
            break;
        }
        if keep.len() < active.len() {
            cache_rows = keep
                .iter()
                .flat_map(|&i| cache_rows[i * width..(i + 1) * width].to_vec())
                .collect();
            active = keep.iter().map(|&i| active[i]).collect();
        }
        model.reorder_rows(&mut cache, &cache_rows, dev);
        let toks: Vec<u32> = active
            .iter()
            .flat_map(|&p| beams[p].iter().map(|b| *b.0.last().expect("non-empty")))
            .collect();
        let logp = rows_f32(log_softmax(
            model.step(ids_tensor::<B>(&toks, dev), &mut cache),
            1,
        ));
        let mut next_rows = Vec::with_capacity(cache_rows.len());
        for (i, &p) in active.iter().enumerate() {
            let mine = &beams[p];
            let mut cands: Vec<(f32, usize, Option<u32>)> = Vec::new();
            for (b, beam) in mine.iter().enumerate() {
                if beam.2 {
                    cands.push((beam.1, b, None)); // a finished beam carries over unchanged
                } else {
                    let lp = &logp[i * width + b];
                    cands.extend(
                        top_tokens(lp, width)
                            .into_iter()
                            .map(|(x, t)| (beam.1 + x, b, Some(t))),
                    );
                }
            }
            cands.sort_by(cmp);
            cands.truncate(width);
            next_rows.extend(cands.iter().map(|c| i * width + c.1));
            beams[p] = cands
                .iter()
                .map(|&(s, b, t)| match t {
                    None => mine[b].clone(),
                    Some(t) => {
                        let mut seq = mine[b].0.clone();
                        seq.push(t);
                        (seq, s, t == eos)
                    }
                })
                .collect();
        }
        cache_rows = next_rows;
    }
    Ok(beams
        .into_iter()
        .map(|mut bs| {
            bs.sort_by(|a, b| b.1.total_cmp(&a.1));
            bs.into_iter()
                .take(top_n)
                .map(|(tokens, score, _)| Hypothesis { tokens, score })
                .collect()
        })
        .collect())
}

/// Counts how often each n-gram occurs (a helper for tests of the no-repeat rule).
pub fn ngram_counts(seq: &[u32], n: usize) -> HashMap<Vec<u32>, usize> {
    let mut m = HashMap::new();
    for w in seq.windows(n) {
        *m.entry(w.to_vec()).or_insert(0) += 1;
    }
    m
}
