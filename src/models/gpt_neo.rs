//! GPT-Neo (`GPTNeoForCausalLM`): GPT-2's block layout with separate q/k/v projections
//! (`nn.Linear`, no bias), *unscaled* attention, and layers that alternate between global
//! and local (windowed) causal attention as `attention_layers` says.

use super::KvCache;
use super::nn::{
    Dense, Embedding, LayerNorm, activation_by_name, attention, key_padding_mask, lm_logits,
    mask_or, merge_heads, positions, positions_from_mask, split_heads,
};
use super::weights::{Export, Key, Weights, read_config};
use burn::prelude::*;
use serde::Deserialize;
use std::path::Path;

#[derive(Debug, Clone, Deserialize)]
pub struct GptNeoConfig {
    pub vocab_size: usize,
    pub max_position_embeddings: usize,
    pub hidden_size: usize,
    pub num_layers: usize,
    pub num_heads: usize,
    /// One of "global" / "local" per layer (transformers expands `attention_types` into this).
    pub attention_layers: Vec<String>,
    #[serde(default = "default_window")]
    pub window_size: usize,
    #[serde(default)]
    pub intermediate_size: Option<usize>,
    #[serde(default = "default_act")]
    pub activation_function: String,
    #[serde(default = "default_eps")]
    pub layer_norm_epsilon: f64,
    #[serde(default = "yes")]
    pub tie_word_embeddings: bool,
    #[serde(default)]
    pub bos_token_id: Option<u32>,
    #[serde(default)]
    pub eos_token_id: Option<u32>,
}

fn default_window() -> usize {
    256
}
fn default_act() -> String {
    "gelu_new".into()
}
fn default_eps() -> f64 {
    1e-5
}
fn yes() -> bool {
    true
}

#[derive(Module, Debug)]
pub struct SelfAttention<B: Backend> {
    pub q_proj: Dense<B>,
    pub k_proj: Dense<B>,
    pub v_proj: Dense<B>,
    pub out_proj: Dense<B>,
    pub n_head: usize,
    /// Keys further back than this are masked (local layers only).
    pub window: Option<usize>,
}

impl<B: Backend> SelfAttention<B> {
    /// Causal (windowed) self-attention; `pad` `[b, 1, 1, keys]` also blocks padding keys.
    /// The window counts sequence positions, padding included, as transformers does; with
    /// left padding that is the same as counting tokens.
    fn forward(
        &self,
        x: Tensor<B, 3>,
        pad: Option<&Tensor<B, 4, Bool>>,
        cache: Option<(&mut KvCache<B>, usize)>,
    ) -> Tensor<B, 3> {
        let q = split_heads(self.q_proj.forward(x.clone()), self.n_head);
        let mut k = split_heads(self.k_proj.forward(x.clone()), self.n_head);
        let mut v = split_heads(self.v_proj.forward(x), self.n_head);
        if let Some((cache, i)) = cache {
            (k, v) = cache.append(i, k, v);
        }
        let (tq, tk) = (q.dims()[2], k.dims()[2]);
        let mut mask = neo_mask::<B>(tq, tk, self.window, &q.device());
        if let Some(p) = pad {
            mask = mask_or(mask, p.clone());
        }
        self.out_proj
            .forward(merge_heads(attention(q, k, v, None, Some(mask), None)))
    }
}

/// Blocks future keys, and for local layers keys `window` or more positions back.
fn neo_mask<B: Backend>(
    q: usize,
    k: usize,
    window: Option<usize>,
    dev: &B::Device,
) -> Tensor<B, 4, Bool> {
    let past = k - q;
    let mut blocked = Vec::with_capacity(q * k);
    for i in 0..q {
        let qi = past + i;
        for j in 0..k {
            blocked.push(j > qi || window.is_some_and(|w| qi - j >= w));
        }
    }
    Tensor::<B, 2, Bool>::from_data(TensorData::new(blocked, [q, k]), dev).unsqueeze()
}

#[derive(Module, Debug)]
pub struct Block<B: Backend> {
    pub ln_1: LayerNorm<B>,
    pub attn: SelfAttention<B>,
    pub ln_2: LayerNorm<B>,
    pub c_fc: Dense<B>,
    pub c_proj: Dense<B>,
    pub act: String,
}

#[derive(Module, Debug)]
pub struct GptNeo<B: Backend> {
    pub wte: Embedding<B>,
    pub wpe: Embedding<B>,
    pub h: Vec<Block<B>>,
    pub ln_f: LayerNorm<B>,
    pub lm_head: Option<Dense<B>>,
}

impl<B: Backend> GptNeo<B> {
    pub fn load(dir: &Path, dev: &B::Device) -> anyhow::Result<(Self, GptNeoConfig)> {
        let cfg: GptNeoConfig = read_config(dir)?;
        let w = Weights::from_folder(dir)?;
        Ok((Self::from_weights(&cfg, w, dev)?, cfg))
    }

    pub fn from_weights(c: &GptNeoConfig, w: Weights, dev: &B::Device) -> anyhow::Result<Self> {
        if c.attention_layers.len() != c.num_layers {
            anyhow::bail!(
                "config: attention_layers has {} entries for {} layers",
                c.attention_layers.len(),
                c.num_layers
            );
        }
        let (d, eps) = (c.hidden_size, c.layer_norm_epsilon);
        let inner = c.intermediate_size.unwrap_or(4 * d);
        let block = |i: usize| {
            let n = super::gpt2::block_key(i);
            let a = n.at("attn.attention");
            Block {
                ln_1: LayerNorm::load(&w, &n.at("ln_1"), d, eps, dev),
                attn: SelfAttention {
                    q_proj: Dense::linear(&w, &a.at("q_proj"), d, d, false, dev),
                    k_proj: Dense::linear(&w, &a.at("k_proj"), d, d, false, dev),
                    v_proj: Dense::linear(&w, &a.at("v_proj"), d, d, false, dev),
                    out_proj: Dense::linear(&w, &a.at("out_proj"), d, d, true, dev),
                    n_head: c.num_heads,
                    window: (c.attention_layers[i] == "local").then_some(c.window_size),
                },
                ln_2: LayerNorm::load(&w, &n.at("ln_2"), d, eps, dev),
                c_fc: Dense::linear(&w, &n.at("mlp.c_fc"), d, inner, true, dev),
                c_proj: Dense::linear(&w, &n.at("mlp.c_proj"), inner, d, true, dev),
                act: c.activation_function.clone(),
            }
        };
        let model = GptNeo {
            wte: Embedding::load(&w, &Key::from("transformer.wte"), c.vocab_size, d, dev),
            wpe: Embedding::load(
                &w,
                &Key::from("transformer.wpe"),
                c.max_position_embeddings,
                d,
                dev,
            ),
            h: (0..c.num_layers).map(block).collect(),
            ln_f: LayerNorm::load(&w, &Key::from("transformer.ln_f"), d, eps, dev),
            lm_head: (!c.tie_word_embeddings)
                .then(|| Dense::linear(&w, &Key::from("lm_head"), d, c.vocab_size, false, dev)),
        };
        w.ignore(|k| {
            k.ends_with(".attn.attention.bias")
                || k.ends_with(".attn.attention.masked_bias")
                || (c.tie_word_embeddings && k == "lm_head.weight")
        });
        w.finish()?;
        Ok(model)
    }

    /// GPT-Neo has no cross-attention (for the decoders' check shared with GPT-2).
    pub fn has_cross_attention(&self) -> bool {
        false
    }

    pub fn new_cache(&self) -> KvCache<B> {
        KvCache::new(self.h.len())
    }

    pub fn embed(&self, ids: Tensor<B, 2, Int>) -> Tensor<B, 3> {
        self.wte.forward(ids)
    }

    pub fn forward(&self, ids: Tensor<B, 2, Int>, cache: Option<&mut KvCache<B>>) -> Tensor<B, 3> {
        self.forward_embeds(self.embed(ids), cache)
    }

    /// Logits `[b, t, vocab]` for token ids with transformers' `attention_mask` `[b, past +
    /// t]` (1 = token, 0 = padding, e.g. left padding of prompts of different lengths) and
    /// `position_ids` `[b, t]`. Without position ids they are derived from the mask as
    /// transformers' `generate` does (`cumsum(mask) - 1`), or count on from the cache
    /// without a mask.
    pub fn forward_masked(
        &self,
        ids: Tensor<B, 2, Int>,
        attention_mask: Option<Tensor<B, 2, Int>>,
        position_ids: Option<Tensor<B, 2, Int>>,
        cache: Option<&mut KvCache<B>>,
    ) -> Tensor<B, 3> {
        self.forward_embeds_masked(self.embed(ids), attention_mask, position_ids, cache)
    }

    pub fn forward_embeds(&self, x: Tensor<B, 3>, cache: Option<&mut KvCache<B>>) -> Tensor<B, 3> {
        self.forward_embeds_masked(x, None, None, cache)
    }

    /// [`Self::forward_embeds`] with an attention mask and position ids, as
    /// [`Self::forward_masked`].
    pub fn forward_embeds_masked(
        &self,
        x: Tensor<B, 3>,
        attention_mask: Option<Tensor<B, 2, Int>>,
        position_ids: Option<Tensor<B, 2, Int>>,
        mut cache: Option<&mut KvCache<B>>,
    ) -> Tensor<B, 3> {
        let [b, t, _] = x.dims();
        let past = cache.as_ref().map(|c| c.len()).unwrap_or(0);
        let pos = match (position_ids, &attention_mask) {
            (Some(p), _) => p,
            (None, Some(m)) => positions_from_mask(m.clone(), t),
            (None, None) => positions::<B>(past, b, t, &x.device()),
        };
        let pad = attention_mask.map(key_padding_mask);
        let mut h = x + self.wpe.forward(pos);
        for (i, blk) in self.h.iter().enumerate() {
            let a = blk.attn.forward(
                blk.ln_1.forward(h.clone()),
                pad.as_ref(),
                cache.as_deref_mut().map(|c| (c, i)),
            );
            h = h + a;
            let m = blk.c_proj.forward(activation_by_name(
                &blk.act,
                blk.c_fc.forward(blk.ln_2.forward(h.clone())),
            ));
            h = h + m;
        }
        lm_logits(self.ln_f.forward(h), &self.wte, &self.lm_head)
    }

    pub fn export(&self) -> Export {
        let mut out = Export::default();
        self.wte.export(&Key::from("transformer.wte"), &mut out);
        self.wpe.export(&Key::from("transformer.wpe"), &mut out);
        for (i, b) in self.h.iter().enumerate() {
            let n = super::gpt2::block_key(i);
            b.ln_1.export(&n.at("ln_1"), &mut out);
            let a = n.at("attn.attention");
            b.attn.q_proj.export(&a.at("q_proj"), &mut out);
            b.attn.k_proj.export(&a.at("k_proj"), &mut out);
            b.attn.v_proj.export(&a.at("v_proj"), &mut out);
            b.attn.out_proj.export(&a.at("out_proj"), &mut out);
            b.ln_2.export(&n.at("ln_2"), &mut out);
            b.c_fc.export(&n.at("mlp.c_fc"), &mut out);
            b.c_proj.export(&n.at("mlp.c_proj"), &mut out);
        }
        self.ln_f.export(&Key::from("transformer.ln_f"), &mut out);
        if let Some(l) = &self.lm_head {
            l.export(&Key::from("lm_head"), &mut out);
        }
        out
    }
}
