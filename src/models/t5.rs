//! T5 (`T5ForConditionalGeneration`): an encoder-decoder with RMS layer norms, no
//! attention scaling, and a learned relative-position bias that block 0 of each stack
//! computes and every block of that stack reuses (bidirectional buckets in the encoder,
//! causal ones in the decoder). Both the original ReLU feed-forward (`wi`, `wo`) and
//! T5 v1.1's gated one (`wi_0`, `wi_1`, `wo`) load.
//!
//! The LM head follows transformers 5: it is `shared.weight` unless the checkpoint holds
//! an `lm_head.weight` that differs from it (or the config says `tie_word_embeddings:
//! false`), and the decoder output is scaled by `d_model^-0.5` before it when
//! `scale_decoder_outputs` is true (absent: when `tie_word_embeddings` is true, the
//! transformers 4 rule).

use super::KvCache;
use super::nn::{
    Dense, Embedding, RmsNorm, attention, causal_mask, key_padding_mask, merge_heads, split_heads,
};
use super::weights::{Export, Key, Weights, read_config};
use anyhow::bail;
use burn::prelude::*;
use burn::tensor::activation;
use serde::{Deserialize, Deserializer};
use std::path::Path;

/// `config.json` of a T5 checkpoint; absent fields take transformers' `T5Config` defaults.
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct T5Config {
    pub vocab_size: usize,
    pub d_model: usize,
    pub d_kv: usize,
    pub d_ff: usize,
    pub num_layers: usize,
    /// Defaults to `num_layers`.
    pub num_decoder_layers: Option<usize>,
    pub num_heads: usize,
    pub relative_attention_num_buckets: usize,
    pub relative_attention_max_distance: usize,
    pub layer_norm_epsilon: f64,
    /// `relu`, `gelu`, `gated-gelu` (T5 v1.1, `gelu_new`), `gated-silu`, …
    pub feed_forward_proj: String,
    pub tie_word_embeddings: bool,
    /// Written by transformers 5 (which always sets `tie_word_embeddings: true`);
    /// absent in older configs, where it equals `tie_word_embeddings`.
    pub scale_decoder_outputs: Option<bool>,
    pub decoder_start_token_id: Option<u32>,
    #[serde(deserialize_with = "first_id")]
    pub eos_token_id: Option<u32>,
    pub pad_token_id: Option<u32>,
}

impl Default for T5Config {
    fn default() -> Self {
        T5Config {
            vocab_size: 32128,
            d_model: 512,
            d_kv: 64,
            d_ff: 2048,
            num_layers: 6,
            num_decoder_layers: None,
            num_heads: 8,
            relative_attention_num_buckets: 32,
            relative_attention_max_distance: 128,
            layer_norm_epsilon: 1e-6,
            feed_forward_proj: "relu".into(),
            tie_word_embeddings: true,
            scale_decoder_outputs: None,
            decoder_start_token_id: None,
            eos_token_id: Some(1),
            pad_token_id: Some(0),
        }
    }
}

/// `eos_token_id` may be one id or a list of them; the first is kept.
fn first_id<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u32>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Ids {
        One(u32),
        Many(Vec<u32>),
    }
    Ok(match Option::<Ids>::deserialize(d)? {
        Some(Ids::One(i)) => Some(i),
        Some(Ids::Many(v)) => v.first().copied(),
        None => None,
    })
}

impl T5Config {
    /// The standard deviation `transformers`' `T5PreTrainedModel._init_weights` gives the
    /// tensor `name` (with `initializer_factor` 1): the shared embeddings and an untied head
    /// 1.0, `q` (d_model·d_kv)^-½, `k`/`v` and the relative bias d_model^-½, `o`
    /// (heads·d_kv)^-½, `wi*` d_model^-½, `wo` d_ff^-½. A model trained from scratch with one
    /// small std everywhere (0.02, as for GPT-2) starts with near-zero logits through the
    /// tied, rescaled head and, measured on the toy summarizer, learned to predict labels
    /// without reading the caption.
    pub fn init_std(&self, name: &str) -> f32 {
        let (d, kv, h, ff) = (
            self.d_model as f32,
            self.d_kv as f32,
            self.num_heads as f32,
            self.d_ff as f32,
        );
        let last = name
            .trim_end_matches(".weight")
            .rsplit('.')
            .next()
            .unwrap_or("");
        match last {
            "q" => (d * kv).powf(-0.5),
            "k" | "v" | "relative_attention_bias" => d.powf(-0.5),
            "o" => (h * kv).powf(-0.5),
            "wi" | "wi_0" | "wi_1" => d.powf(-0.5),
            "wo" => ff.powf(-0.5),
            _ => 1.0, // shared, embed_tokens, lm_head
        }
    }

    pub fn decoder_layers(&self) -> usize {
        self.num_decoder_layers.unwrap_or(self.num_layers)
    }

    /// The first decoder input: `decoder_start_token_id`, else the pad token, else 0.
    pub fn decoder_start(&self) -> u32 {
        self.decoder_start_token_id
            .or(self.pad_token_id)
            .unwrap_or(0)
    }

    /// Whether the decoder output is multiplied by `d_model^-0.5` before the head.
    pub fn scales_decoder_outputs(&self) -> bool {
        self.scale_decoder_outputs
            .unwrap_or(self.tie_word_embeddings)
    }

    /// `(activation, gated)` from `feed_forward_proj`, as transformers derives them.
    pub fn feed_forward(&self) -> anyhow::Result<(String, bool)> {
        let parts: Vec<&str> = self.feed_forward_proj.split('-').collect();
        let (act, gated) = match parts.as_slice() {
            [act] => (*act, false),
            ["gated", act] => (*act, true),
            _ => bail!(
                "feed_forward_proj `{}` is not `ACT` or `gated-ACT`",
                self.feed_forward_proj
            ),
        };
        let act = if self.feed_forward_proj == "gated-gelu" {
            "gelu_new"
        } else {
            act
        };
        if !SUPPORTED_ACTS.contains(&act) {
            bail!(
                "feed_forward_proj `{}`: activation `{act}` is not supported (supported: {})",
                self.feed_forward_proj,
                SUPPORTED_ACTS.join(", ")
            );
        }
        Ok((act.to_string(), gated))
    }
}

const SUPPORTED_ACTS: [&str; 7] = [
    "relu",
    "gelu",
    "gelu_new",
    "gelu_pytorch_tanh",
    "gelu_fast",
    "silu",
    "swish",
];

/// transformers' `ACT2FN` for the names in [`SUPPORTED_ACTS`].
fn act<B: Backend, const D: usize>(name: &str, x: Tensor<B, D>) -> Tensor<B, D> {
    match name {
        "relu" => activation::relu(x),
        "gelu" => activation::gelu(x),
        "silu" | "swish" => activation::silu(x),
        _ => activation::gelu_approximate(x), // gelu_new and the other tanh approximations
    }
}

/// T5's relative-position bucket for `relative = key_pos - query_pos`, computed the way
/// transformers does (f32 logarithms, truncated), so the buckets match exactly.
pub fn relative_position_bucket(
    relative: i64,
    bidirectional: bool,
    num_buckets: usize,
    max_distance: usize,
) -> usize {
    let mut n = num_buckets as i64;
    let mut bucket = 0;
    let dist = if bidirectional {
        n /= 2;
        if relative > 0 {
            bucket += n;
        }
        relative.abs()
    } else {
        (-relative).max(0)
    };
    let max_exact = n / 2;
    let offset = if dist < max_exact {
        dist
    } else {
        let log_ratio = ((max_distance as f64) / (max_exact as f64)).ln() as f32;
        let large = (dist as f32 / max_exact as f32).ln() / log_ratio * (n - max_exact) as f32;
        (max_exact + large as i64).min(n - 1)
    };
    (bucket + offset) as usize
}

/// `SelfAttention` or `EncDecAttention`: bias-free q, k, v `[d, inner]` and o
/// `[inner, d]`, and in block 0's self-attention the relative-position bias table.
#[derive(Module, Debug)]
pub struct Attention<B: Backend> {
    pub q: Dense<B>,
    pub k: Dense<B>,
    pub v: Dense<B>,
    pub o: Dense<B>,
    /// `[num_buckets, n_heads]`, block 0's self-attention only.
    pub relative_attention_bias: Option<Embedding<B>>,
    pub n_heads: usize,
    pub num_buckets: usize,
    pub max_distance: usize,
    /// Encoder: buckets for both directions. Decoder: causal buckets.
    pub bidirectional: bool,
}

impl<B: Backend> Attention<B> {
    fn load(
        w: &Weights,
        name: &Key,
        c: &T5Config,
        has_bias: bool,
        bidirectional: bool,
        dev: &B::Device,
    ) -> Self {
        let (d, inner) = (c.d_model, c.num_heads * c.d_kv);
        let nb = c.relative_attention_num_buckets;
        Attention {
            q: Dense::linear(w, &name.at("q"), d, inner, false, dev),
            k: Dense::linear(w, &name.at("k"), d, inner, false, dev),
            v: Dense::linear(w, &name.at("v"), d, inner, false, dev),
            o: Dense::linear(w, &name.at("o"), inner, d, false, dev),
            relative_attention_bias: has_bias.then(|| {
                Embedding::load(w, &name.at("relative_attention_bias"), nb, c.num_heads, dev)
            }),
            n_heads: c.num_heads,
            num_buckets: nb,
            max_distance: c.relative_attention_max_distance,
            bidirectional,
        }
    }

    /// Keys and values `[b, h, s, d_kv]` of `x` `[b, s, d]`.
    fn key_values(&self, x: Tensor<B, 3>) -> (Tensor<B, 4>, Tensor<B, 4>) {
        (
            split_heads(self.k.forward(x.clone()), self.n_heads),
            split_heads(self.v.forward(x), self.n_heads),
        )
    }

    /// Attention of `x`'s queries to `k`, `v` (T5 does not scale the scores).
    fn attend(
        &self,
        x: Tensor<B, 3>,
        k: Tensor<B, 4>,
        v: Tensor<B, 4>,
        bias: Option<Tensor<B, 4>>,
        mask: Option<Tensor<B, 4, Bool>>,
    ) -> Tensor<B, 3> {
        let q = split_heads(self.q.forward(x), self.n_heads);
        self.o
            .forward(merge_heads(attention(q, k, v, None, mask, bias)))
    }

    /// The position bias `[1, h, q, k]` for `q` queries at positions `past..past + q` and
    /// keys at `0..k` (None without a bias table).
    fn position_bias(
        &self,
        q: usize,
        k: usize,
        past: usize,
        dev: &B::Device,
    ) -> Option<Tensor<B, 4>> {
        let table = self.relative_attention_bias.as_ref()?;
        let buckets: Vec<i64> = (0..q)
            .flat_map(|i| {
                (0..k).map(move |j| {
                    let rel = j as i64 - (i + past) as i64;
                    relative_position_bucket(
                        rel,
                        self.bidirectional,
                        self.num_buckets,
                        self.max_distance,
                    ) as i64
                })
            })
            .collect();
        let ids = Tensor::<B, 2, Int>::from_data(TensorData::new(buckets, [q, k]), dev);
        // [q, k, h] → [1, h, q, k]
        Some(table.forward(ids).permute([2, 0, 1]).unsqueeze())
    }

    fn export(&self, name: &Key, out: &mut Export) {
        for (l, n) in [
            (&self.q, "q"),
            (&self.k, "k"),
            (&self.v, "v"),
            (&self.o, "o"),
        ] {
            l.export(&name.at(n), out);
        }
        if let Some(b) = &self.relative_attention_bias {
            b.export(&name.at("relative_attention_bias"), out);
        }
    }
}

/// `layer.N` holding an attention: its pre-norm and the attention (`SelfAttention` or
/// `EncDecAttention`).
#[derive(Module, Debug)]
pub struct AttentionLayer<B: Backend> {
    pub layer_norm: RmsNorm<B>,
    pub attention: Attention<B>,
    /// `SelfAttention` or `EncDecAttention`, for the checkpoint names.
    pub kind: String,
}

impl<B: Backend> AttentionLayer<B> {
    fn load(
        w: &Weights,
        name: &Key,
        kind: &str,
        c: &T5Config,
        has_bias: bool,
        bidirectional: bool,
        dev: &B::Device,
    ) -> Self {
        AttentionLayer {
            layer_norm: RmsNorm::load(
                w,
                &name.at("layer_norm"),
                c.d_model,
                c.layer_norm_epsilon,
                dev,
            ),
            attention: Attention::load(w, &name.at(kind), c, has_bias, bidirectional, dev),
            kind: kind.to_string(),
        }
    }

    /// Self-attention: `h + SelfAttention(layer_norm(h))`. With a cache (the decoder's),
    /// this step's keys and values are appended to layer `i`'s and all of them attended to.
    fn forward_self(
        &self,
        h: Tensor<B, 3>,
        bias: Option<Tensor<B, 4>>,
        mask: Option<Tensor<B, 4, Bool>>,
        cache: Option<(&mut super::KvCache<B>, usize)>,
    ) -> Tensor<B, 3> {
        let x = self.layer_norm.forward(h.clone());
        let (mut k, mut v) = self.attention.key_values(x.clone());
        if let Some((c, i)) = cache {
            (k, v) = c.append(i, k, v);
        }
        h + self.attention.attend(x, k, v, bias, mask)
    }

    /// Cross-attention: `h + EncDecAttention(layer_norm(h))` over the encoder's keys and
    /// values `kv` (see [`AttentionLayer::key_values`]), ignoring masked source positions.
    fn forward_cross(
        &self,
        h: Tensor<B, 3>,
        (k, v): (Tensor<B, 4>, Tensor<B, 4>),
        mask: Option<Tensor<B, 4, Bool>>,
    ) -> Tensor<B, 3> {
        let x = self.layer_norm.forward(h.clone());
        h + self.attention.attend(x, k, v, None, mask)
    }

    /// Keys and values of `x` for this attention (the encoder states, for cross-attention).
    fn key_values(&self, x: Tensor<B, 3>) -> (Tensor<B, 4>, Tensor<B, 4>) {
        self.attention.key_values(x)
    }

    fn export(&self, name: &Key, out: &mut Export) {
        self.layer_norm.export(&name.at("layer_norm"), out);
        self.attention.export(&name.at(&self.kind), out);
    }
}

/// The last `layer.N` of a block: pre-norm and `DenseReluDense` (`wi`, `wo`, or gated
/// `wi_0`, `wi_1`, `wo`).
#[derive(Module, Debug)]
pub struct FeedForward<B: Backend> {
    pub layer_norm: RmsNorm<B>,
    /// Not gated.
    pub wi: Option<Dense<B>>,
    /// Gated: activated branch.
    pub wi_0: Option<Dense<B>>,
    /// Gated: linear branch.
    pub wi_1: Option<Dense<B>>,
    pub wo: Dense<B>,
    pub act: String,
}

impl<B: Backend> FeedForward<B> {
    fn load(
        w: &Weights,
        name: &Key,
        c: &T5Config,
        act: &str,
        gated: bool,
        dev: &B::Device,
    ) -> Self {
        let (d, ff) = (c.d_model, c.d_ff);
        let dense = |n: &str, i: usize, o: usize| {
            Dense::linear(w, &name.at("DenseReluDense").at(n), i, o, false, dev)
        };
        FeedForward {
            layer_norm: RmsNorm::load(w, &name.at("layer_norm"), d, c.layer_norm_epsilon, dev),
            wi: (!gated).then(|| dense("wi", d, ff)),
            wi_0: gated.then(|| dense("wi_0", d, ff)),
            wi_1: gated.then(|| dense("wi_1", d, ff)),
            wo: dense("wo", ff, d),
            act: act.to_string(),
        }
    }

    /// `h + DenseReluDense(layer_norm(h))`.
    fn forward(&self, h: Tensor<B, 3>) -> Tensor<B, 3> {
        let x = self.layer_norm.forward(h.clone());
        let inner = match (&self.wi, &self.wi_0, &self.wi_1) {
            (Some(wi), _, _) => act(&self.act, wi.forward(x)),
            (None, Some(w0), Some(w1)) => act(&self.act, w0.forward(x.clone())) * w1.forward(x),
            _ => unreachable!("a feed-forward is either plain or gated"),
        };
        h + self.wo.forward(inner)
    }

    fn export(&self, name: &Key, out: &mut Export) {
        self.layer_norm.export(&name.at("layer_norm"), out);
        for (l, n) in [(&self.wi, "wi"), (&self.wi_0, "wi_0"), (&self.wi_1, "wi_1")] {
            if let Some(l) = l {
                l.export(&name.at("DenseReluDense").at(n), out);
            }
        }
        self.wo.export(&name.at("DenseReluDense.wo"), out);
    }
}

/// `block.i`: `layer.0` self-attention, in the decoder `layer.1` cross-attention, then the
/// feed-forward (`layer.1` in the encoder, `layer.2` in the decoder).
#[derive(Module, Debug)]
pub struct Block<B: Backend> {
    pub self_attention: AttentionLayer<B>,
    pub cross_attention: Option<AttentionLayer<B>>,
    pub feed_forward: FeedForward<B>,
}

/// Which `layer.N` of a block holds the feed-forward: after the self-attention, and in the
/// decoder after the cross-attention too. `load` and `export` both ask here.
fn feed_forward_layer(decoder: bool) -> usize {
    if decoder { 2 } else { 1 }
}

impl<B: Backend> Block<B> {
    /// An encoder block: self-attention over every (unpadded) position, then the
    /// feed-forward.
    fn forward_encoder(
        &self,
        h: Tensor<B, 3>,
        bias: Option<Tensor<B, 4>>,
        pad: Option<Tensor<B, 4, Bool>>,
    ) -> Tensor<B, 3> {
        let h = self.self_attention.forward_self(h, bias, pad, None);
        self.feed_forward.forward(h)
    }

    /// A decoder block: causal self-attention (cached in `cache`'s layer if given), cross-
    /// attention over the encoder keys/values `cross`, then the feed-forward.
    fn forward_decoder(
        &self,
        h: Tensor<B, 3>,
        bias: Option<Tensor<B, 4>>,
        mask: Tensor<B, 4, Bool>,
        cross: Option<(Tensor<B, 4>, Tensor<B, 4>)>,
        cross_pad: Option<Tensor<B, 4, Bool>>,
        cache: Option<(&mut super::KvCache<B>, usize)>,
    ) -> Tensor<B, 3> {
        let mut h = self.self_attention.forward_self(h, bias, Some(mask), cache);
        if let (Some(ca), Some(kv)) = (&self.cross_attention, cross) {
            h = ca.forward_cross(h, kv, cross_pad);
        }
        self.feed_forward.forward(h)
    }

    fn load(
        w: &Weights,
        name: &Key,
        c: &T5Config,
        i: usize,
        decoder: bool,
        (act, gated): (&str, bool),
        dev: &B::Device,
    ) -> Self {
        let l = |n: usize| sublayer(name, n);
        Block {
            self_attention: AttentionLayer::load(
                w,
                &l(0),
                "SelfAttention",
                c,
                i == 0,
                !decoder,
                dev,
            ),
            cross_attention: decoder
                .then(|| AttentionLayer::load(w, &l(1), "EncDecAttention", c, false, false, dev)),
            feed_forward: FeedForward::load(w, &l(feed_forward_layer(decoder)), c, act, gated, dev),
        }
    }

    fn export(&self, name: &Key, out: &mut Export) {
        self.self_attention.export(&sublayer(name, 0), out);
        if let Some(ca) = &self.cross_attention {
            ca.export(&sublayer(name, 1), out);
        }
        let n = feed_forward_layer(self.cross_attention.is_some());
        self.feed_forward.export(&sublayer(name, n), out);
    }
}

/// The `n`th sub-layer of a block (`block.3.layer.1`), in load and export alike.
fn sublayer(block: &Key, n: usize) -> Key {
    block.at("layer").at(n)
}

/// `encoder` or `decoder`: the blocks and the final norm (the token embeddings are the
/// model's `shared`).
#[derive(Module, Debug)]
pub struct Stack<B: Backend> {
    pub block: Vec<Block<B>>,
    pub final_layer_norm: RmsNorm<B>,
}

impl<B: Backend> Stack<B> {
    fn load(
        w: &Weights,
        name: &Key,
        c: &T5Config,
        layers: usize,
        decoder: bool,
        ff: (&str, bool),
        dev: &B::Device,
    ) -> Self {
        Stack {
            block: (0..layers)
                .map(|i| Block::load(w, &name.at("block").at(i), c, i, decoder, ff, dev))
                .collect(),
            final_layer_norm: RmsNorm::load(
                w,
                &name.at("final_layer_norm"),
                c.d_model,
                c.layer_norm_epsilon,
                dev,
            ),
        }
    }

    /// Block 0's position bias, shared by every block of the stack.
    fn position_bias(
        &self,
        q: usize,
        k: usize,
        past: usize,
        dev: &B::Device,
    ) -> Option<Tensor<B, 4>> {
        self.block
            .first()?
            .self_attention
            .attention
            .position_bias(q, k, past, dev)
    }

    fn export(&self, name: &Key, out: &mut Export) {
        for (i, b) in self.block.iter().enumerate() {
            b.export(&name.at("block").at(i), out);
        }
        self.final_layer_norm
            .export(&name.at("final_layer_norm"), out);
    }
}

/// The decoder's cached self-attention keys/values and, per layer, the keys/values of the
/// encoder states (computed on the first cached step).
#[derive(Clone, Debug)]
pub struct T5Cache<B: Backend> {
    pub self_attn: KvCache<B>,
    pub cross_attn: Vec<Option<(Tensor<B, 4>, Tensor<B, 4>)>>,
}

impl<B: Backend> T5Cache<B> {
    pub fn new(layers: usize) -> Self {
        T5Cache {
            self_attn: KvCache::new(layers),
            cross_attn: vec![None; layers],
        }
    }

    /// Decoder positions already cached.
    pub fn len(&self) -> usize {
        self.self_attn.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Keeps batch rows `rows` in that order (beam search reordering), in both caches.
    pub fn select(&mut self, rows: Tensor<B, 1, Int>) {
        self.self_attn.select(rows.clone());
        for l in self.cross_attn.iter_mut().flatten() {
            l.0 = l.0.clone().select(0, rows.clone());
            l.1 = l.1.clone().select(0, rows.clone());
        }
    }
}

#[derive(Module, Debug)]
pub struct T5<B: Backend> {
    /// Token embeddings of both stacks (`shared.weight`; `encoder.embed_tokens` and
    /// `decoder.embed_tokens` are aliases).
    pub shared: Embedding<B>,
    pub encoder: Stack<B>,
    pub decoder: Stack<B>,
    /// Only when the head is not `shared`.
    pub lm_head: Option<Dense<B>>,
    /// Multiply the decoder output by `d_model^-0.5` before the head.
    pub scale_decoder_outputs: bool,
    pub d_model: usize,
}

impl<B: Backend> T5<B> {
    /// Loads a checkpoint folder (`config.json` + safetensors).
    pub fn load(dir: &Path, dev: &B::Device) -> anyhow::Result<(Self, T5Config)> {
        let cfg: T5Config = read_config(dir)?;
        let w = Weights::from_folder(dir)?;
        Ok((Self::from_weights(&cfg, w, dev)?, cfg))
    }

    pub fn from_weights(c: &T5Config, w: Weights, dev: &B::Device) -> anyhow::Result<Self> {
        let (act, gated) = c.feed_forward()?;
        let ff = (act.as_str(), gated);
        let (d, vocab) = (c.d_model, c.vocab_size);
        // The shared embeddings under whichever of their tied names the file kept.
        let shared_name =
            w.first_module(&["shared", "encoder.embed_tokens", "decoder.embed_tokens"]);
        let shared = Embedding::load(&w, &shared_name, vocab, d, dev);
        // transformers 5 ties the head to `shared` unless the file holds a different one.
        let lm_head = if !c.tie_word_embeddings || w.contains("lm_head.weight") {
            let head = Dense::linear(&w, &Key::from("lm_head"), d, vocab, false, dev);
            let same = head.weight.val().transpose().to_data().to_vec::<f32>().ok()
                == shared.weight.val().to_data().to_vec::<f32>().ok();
            (!c.tie_word_embeddings || !same).then_some(head)
        } else {
            None
        };
        let model = T5 {
            shared,
            encoder: Stack::load(&w, &Key::from("encoder"), c, c.num_layers, false, ff, dev),
            decoder: Stack::load(
                &w,
                &Key::from("decoder"),
                c,
                c.decoder_layers(),
                true,
                ff,
                dev,
            ),
            lm_head,
            scale_decoder_outputs: c.scales_decoder_outputs(),
            d_model: d,
        };
        w.ignore(|k| {
            k == "encoder.embed_tokens.weight"
                || k == "decoder.embed_tokens.weight"
                || k == "decoder.block.0.layer.1.EncDecAttention.relative_attention_bias.weight"
        });
        w.finish()?;
        Ok(model)
    }

    pub fn num_decoder_layers(&self) -> usize {
        self.decoder.block.len()
    }

    pub fn new_cache(&self) -> T5Cache<B> {
        T5Cache::new(self.decoder.block.len())
    }

    /// Encoder states `[b, s, d_model]` for token ids `[b, s]` (no padding mask: every
    /// position is attended to).
    pub fn encode(&self, ids: Tensor<B, 2, Int>) -> Tensor<B, 3> {
        self.encode_opt(ids, None)
    }

    /// Encoder states `[b, s, d_model]` for token ids `[b, s]` with transformers'
    /// `attention_mask` `[b, s]` (1 = token, 0 = padding): no position attends to padding.
    /// The states at padded positions are computed but meaningless; pass the same mask to
    /// [`Self::decode_masked`].
    pub fn encode_masked(&self, ids: Tensor<B, 2, Int>, mask: Tensor<B, 2, Int>) -> Tensor<B, 3> {
        self.encode_opt(ids, Some(mask))
    }

    fn encode_opt(&self, ids: Tensor<B, 2, Int>, mask: Option<Tensor<B, 2, Int>>) -> Tensor<B, 3> {
        let s = ids.dims()[1];
        let mut h = self.shared.forward(ids);
        let bias = self.encoder.position_bias(s, s, 0, &h.device());
        let pad = mask.map(key_padding_mask);
        for b in &self.encoder.block {
            h = b.forward_encoder(h, bias.clone(), pad.clone());
        }
        self.encoder.final_layer_norm.forward(h)
    }

    /// Logits `[b, t, vocab]` for decoder ids `[b, t]` attending to encoder states `enc`
    /// `[b, s, d_model]`. With a cache, only the new positions are passed and positions
    /// continue after the cached ones; the encoder's keys/values are computed on the first
    /// cached call and reused (recomputed if `enc`'s batch or length no longer match).
    pub fn decode(
        &self,
        dec_ids: Tensor<B, 2, Int>,
        enc: &Tensor<B, 3>,
        cache: Option<&mut T5Cache<B>>,
    ) -> Tensor<B, 3> {
        self.decode_masked(dec_ids, enc, None, cache)
    }

    /// [`Self::decode`] with the encoder's `attention_mask` `[b, s]` (1 = token, 0 =
    /// padding): the cross-attention ignores padded source positions, as transformers'
    /// `encoder_attention_mask`. The decoder itself is causal only (right-padded targets
    /// need no mask: padding comes after every real position).
    pub fn decode_masked(
        &self,
        dec_ids: Tensor<B, 2, Int>,
        enc: &Tensor<B, 3>,
        enc_mask: Option<&Tensor<B, 2, Int>>,
        mut cache: Option<&mut T5Cache<B>>,
    ) -> Tensor<B, 3> {
        let t = dec_ids.dims()[1];
        let cross_pad = enc_mask.map(|m| key_padding_mask(m.clone()));
        let [eb, es, _] = enc.dims();
        let past = cache.as_ref().map(|c| c.len()).unwrap_or(0);
        let mut h = self.shared.forward(dec_ids);
        let dev = h.device();
        let bias = self.decoder.position_bias(t, past + t, past, &dev);
        let mask = causal_mask::<B>(t, past + t, &dev);
        for (i, b) in self.decoder.block.iter().enumerate() {
            // The encoder's keys/values: computed on a cache's first step and kept (again
            // if `enc`'s batch or length changed), or computed for this call.
            let cross = b
                .cross_attention
                .as_ref()
                .map(|ca| match cache.as_deref_mut() {
                    Some(c) => {
                        let stale = match &c.cross_attn[i] {
                            Some((k, _)) => k.dims()[0] != eb || k.dims()[2] != es,
                            None => true,
                        };
                        if stale {
                            c.cross_attn[i] = Some(ca.key_values(enc.clone()));
                        }
                        c.cross_attn[i]
                            .clone()
                            .expect("cross-attention cache filled")
                    }
                    None => ca.key_values(enc.clone()),
                });
            let self_cache = cache.as_deref_mut().map(|c| (&mut c.self_attn, i));
            h = b.forward_decoder(
                h,
                bias.clone(),
                mask.clone(),
                cross,
                cross_pad.clone(),
                self_cache,
            );
        }
        self.head(self.decoder.final_layer_norm.forward(h))
    }

    /// Logits `[b, t, vocab]`: encode `ids`, decode `dec_ids` (teacher forcing).
    pub fn forward(&self, ids: Tensor<B, 2, Int>, dec_ids: Tensor<B, 2, Int>) -> Tensor<B, 3> {
        let enc = self.encode(ids);
        self.decode(dec_ids, &enc, None)
    }

    /// [`Self::forward`] for a padded source batch: `mask` `[b, s]` is transformers'
    /// `attention_mask` (1 = token, 0 = padding), applied in the encoder's self-attention
    /// and the decoder's cross-attention.
    pub fn forward_masked(
        &self,
        ids: Tensor<B, 2, Int>,
        mask: Tensor<B, 2, Int>,
        dec_ids: Tensor<B, 2, Int>,
    ) -> Tensor<B, 3> {
        let enc = self.encode_masked(ids, mask.clone());
        self.decode_masked(dec_ids, &enc, Some(&mask), None)
    }

    /// transformers' `model(input_ids, attention_mask, labels).loss`: the decoder reads
    /// `labels` `[b, t]` shifted right behind `decoder_start` (ignored labels read as
    /// `pad`), and the loss is the mean cross-entropy over the labels that are not
    /// `-100` (right padding of targets of different lengths).
    pub fn loss(
        &self,
        ids: Tensor<B, 2, Int>,
        mask: Tensor<B, 2, Int>,
        labels: Tensor<B, 2, Int>,
        decoder_start: u32,
        pad: u32,
    ) -> Tensor<B, 1> {
        let [b, t] = labels.dims();
        let dev = labels.device();
        let ignored = labels.clone().equal_elem(-100);
        let start = Tensor::<B, 2, Int>::full([b, 1], decoder_start as i64, &dev);
        let shifted = if t > 1 {
            Tensor::cat(vec![start, labels.clone().narrow(1, 0, t - 1)], 1)
        } else {
            start
        };
        let dec_ids = shifted
            .clone()
            .mask_fill(shifted.equal_elem(-100), pad as i64);
        let logits = self.forward_masked(ids, mask, dec_ids);
        let v = logits.dims()[2];
        let keep = ignored.bool_not().float();
        let lp = super::train::target_log_probs(
            logits.reshape([b * t, v]),
            labels.reshape([b * t]),
            -100,
        );
        lp.sum().neg() / keep.sum().clamp_min(1.0)
    }

    fn head(&self, h: Tensor<B, 3>) -> Tensor<B, 3> {
        let h = if self.scale_decoder_outputs {
            h * (self.d_model as f64).powf(-0.5)
        } else {
            h
        };
        // The shared helper flattens the rows: a batched product against the broadcast
        // `[1, d, vocab]` view made autodiff compute the tied weight's gradient per batch
        // row (`[b, d, vocab]`, 263 MB for T5-small at batch 4) and then sum it.
        super::nn::lm_logits(h, &self.shared, &self.lm_head)
    }

    /// The weights in HF layout and names (the tied aliases are not written, as
    /// transformers does not write them).
    pub fn export(&self) -> Export {
        let mut out = Export::default();
        self.shared.export(&Key::from("shared"), &mut out);
        self.encoder.export(&Key::from("encoder"), &mut out);
        self.decoder.export(&Key::from("decoder"), &mut out);
        if let Some(l) = &self.lm_head {
            l.export(&Key::from("lm_head"), &mut out);
        }
        out
    }
}
