//! GPT-2 (`GPT2LMHeadModel`): learned positions, pre-norm blocks, `Conv1D` projections
//! stored `[in, out]`, LM head tied to the token embeddings. Also the two captioner
//! variants: a ClipCap prefix (forward from input embeddings) and cross-attention to an
//! encoder's states (`add_cross_attention`).

use super::KvCache;
use super::nn::{
    Dense, Embedding, LayerNorm, activation_by_name, attention, causal_mask, key_padding_mask,
    lm_logits, mask_or, merge_heads, positions, positions_from_mask, split_heads,
};
use super::weights::{Export, Key, Weights, read_config};
use burn::prelude::*;
use serde::{Deserialize, Serialize};
use std::path::Path;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Gpt2Config {
    pub vocab_size: usize,
    pub n_positions: usize,
    pub n_embd: usize,
    pub n_layer: usize,
    pub n_head: usize,
    #[serde(default)]
    pub n_inner: Option<usize>,
    #[serde(default = "default_act")]
    pub activation_function: String,
    #[serde(default = "default_eps")]
    pub layer_norm_epsilon: f64,
    #[serde(default)]
    pub add_cross_attention: bool,
    #[serde(default = "yes")]
    pub scale_attn_weights: bool,
    #[serde(default)]
    pub scale_attn_by_inverse_layer_idx: bool,
    #[serde(default = "yes")]
    pub tie_word_embeddings: bool,
    #[serde(default)]
    pub bos_token_id: Option<u32>,
    #[serde(default)]
    pub eos_token_id: Option<u32>,
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
pub struct Attention<B: Backend> {
    /// Self-attention: fused q,k,v `[d, 3d]`. Cross-attention: k,v `[d, 2d]`.
    pub c_attn: Dense<B>,
    /// Cross-attention only: q `[d, d]`.
    pub q_attn: Option<Dense<B>>,
    pub c_proj: Dense<B>,
    pub n_head: usize,
    pub scale: f64,
}

impl<B: Backend> Attention<B> {
    fn load(
        w: &Weights,
        name: &Key,
        c: &Gpt2Config,
        layer: usize,
        cross: bool,
        dev: &B::Device,
    ) -> Self {
        let d = c.n_embd;
        let mut scale = if c.scale_attn_weights {
            1.0 / ((d / c.n_head) as f64).sqrt()
        } else {
            1.0
        };
        if c.scale_attn_by_inverse_layer_idx {
            scale /= (layer + 1) as f64;
        }
        Attention {
            c_attn: Dense::conv1d(
                w,
                &name.at("c_attn"),
                d,
                if cross { 2 * d } else { 3 * d },
                dev,
            ),
            q_attn: cross.then(|| Dense::conv1d(w, &name.at("q_attn"), d, d, dev)),
            c_proj: Dense::conv1d(w, &name.at("c_proj"), d, d, dev),
            n_head: c.n_head,
            scale,
        }
    }

    /// Causal self-attention; `pad` `[b, 1, 1, keys]` also blocks padding keys.
    fn forward_self(
        &self,
        x: Tensor<B, 3>,
        pad: Option<&Tensor<B, 4, Bool>>,
        cache: Option<(&mut KvCache<B>, usize)>,
    ) -> Tensor<B, 3> {
        let d = x.dims()[2];
        let qkv = self.c_attn.forward(x);
        let q = split_heads(qkv.clone().narrow(2, 0, d), self.n_head);
        let mut k = split_heads(qkv.clone().narrow(2, d, d), self.n_head);
        let mut v = split_heads(qkv.narrow(2, 2 * d, d), self.n_head);
        if let Some((cache, i)) = cache {
            (k, v) = cache.append(i, k, v);
        }
        let (tq, tk) = (q.dims()[2], k.dims()[2]);
        let mut mask = causal_mask::<B>(tq, tk, &q.device());
        if let Some(p) = pad {
            mask = mask_or(mask, p.clone());
        }
        let out = attention(q, k, v, Some(self.scale), Some(mask), None);
        self.c_proj.forward(merge_heads(out))
    }

    fn forward_cross(&self, x: Tensor<B, 3>, enc: Tensor<B, 3>) -> Tensor<B, 3> {
        let d = x.dims()[2];
        let q = split_heads(
            self.q_attn
                .as_ref()
                .expect("cross-attention has q_attn")
                .forward(x),
            self.n_head,
        );
        let kv = self.c_attn.forward(enc);
        let k = split_heads(kv.clone().narrow(2, 0, d), self.n_head);
        let v = split_heads(kv.narrow(2, d, d), self.n_head);
        self.c_proj.forward(merge_heads(attention(
            q,
            k,
            v,
            Some(self.scale),
            None,
            None,
        )))
    }

    fn export(&self, name: &Key, out: &mut Export) {
        self.c_attn.export(&name.at("c_attn"), out);
        if let Some(q) = &self.q_attn {
            q.export(&name.at("q_attn"), out);
        }
        self.c_proj.export(&name.at("c_proj"), out);
    }
}

/// `transformer.h.{i}`: block `i` of GPT-2 and of GPT-Neo, in load and export alike.
pub(crate) fn block_key(i: usize) -> Key {
    Key::from("transformer.h").at(i)
}

#[derive(Module, Debug)]
pub struct Block<B: Backend> {
    pub ln_1: LayerNorm<B>,
    pub attn: Attention<B>,
    pub ln_cross_attn: Option<LayerNorm<B>>,
    pub crossattention: Option<Attention<B>>,
    pub ln_2: LayerNorm<B>,
    pub c_fc: Dense<B>,
    pub c_proj: Dense<B>,
    pub act: String,
}

impl<B: Backend> Block<B> {
    fn load(w: &Weights, name: &Key, c: &Gpt2Config, layer: usize, dev: &B::Device) -> Self {
        let (d, eps) = (c.n_embd, c.layer_norm_epsilon);
        let inner = c.n_inner.unwrap_or(4 * d);
        let cross = c.add_cross_attention;
        Block {
            ln_1: LayerNorm::load(w, &name.at("ln_1"), d, eps, dev),
            attn: Attention::load(w, &name.at("attn"), c, layer, false, dev),
            ln_cross_attn: cross
                .then(|| LayerNorm::load(w, &name.at("ln_cross_attn"), d, eps, dev)),
            crossattention: cross
                .then(|| Attention::load(w, &name.at("crossattention"), c, layer, true, dev)),
            ln_2: LayerNorm::load(w, &name.at("ln_2"), d, eps, dev),
            c_fc: Dense::conv1d(w, &name.at("mlp.c_fc"), d, inner, dev),
            c_proj: Dense::conv1d(w, &name.at("mlp.c_proj"), inner, d, dev),
            act: c.activation_function.clone(),
        }
    }

    fn forward(
        &self,
        h: Tensor<B, 3>,
        enc: Option<&Tensor<B, 3>>,
        pad: Option<&Tensor<B, 4, Bool>>,
        cache: Option<(&mut KvCache<B>, usize)>,
    ) -> Tensor<B, 3> {
        let h = h.clone() + self.attn.forward_self(self.ln_1.forward(h), pad, cache);
        let h = match (&self.crossattention, &self.ln_cross_attn, enc) {
            (Some(ca), Some(ln), Some(e)) => h.clone() + ca.forward_cross(ln.forward(h), e.clone()),
            _ => h,
        };
        let m = self.c_proj.forward(activation_by_name(
            &self.act,
            self.c_fc.forward(self.ln_2.forward(h.clone())),
        ));
        h + m
    }

    fn export(&self, name: &Key, out: &mut Export) {
        self.ln_1.export(&name.at("ln_1"), out);
        self.attn.export(&name.at("attn"), out);
        if let (Some(ln), Some(ca)) = (&self.ln_cross_attn, &self.crossattention) {
            ln.export(&name.at("ln_cross_attn"), out);
            ca.export(&name.at("crossattention"), out);
        }
        self.ln_2.export(&name.at("ln_2"), out);
        self.c_fc.export(&name.at("mlp.c_fc"), out);
        self.c_proj.export(&name.at("mlp.c_proj"), out);
    }
}

#[derive(Module, Debug)]
pub struct Gpt2<B: Backend> {
    pub wte: Embedding<B>,
    pub wpe: Embedding<B>,
    pub h: Vec<Block<B>>,
    pub ln_f: LayerNorm<B>,
    /// Only when the head is not tied to `wte`.
    pub lm_head: Option<Dense<B>>,
}

impl<B: Backend> Gpt2<B> {
    /// Loads a checkpoint folder (`config.json` + safetensors).
    pub fn load(dir: &Path, dev: &B::Device) -> anyhow::Result<(Self, Gpt2Config)> {
        let cfg: Gpt2Config = read_config(dir)?;
        let w = Weights::from_folder(dir)?;
        Ok((Self::from_weights(&cfg, w, dev)?, cfg))
    }

    pub fn from_weights(c: &Gpt2Config, w: Weights, dev: &B::Device) -> anyhow::Result<Self> {
        let model = Self::build(c, &w, dev);
        Self::ignore_buffers(c, &w);
        w.finish()?;
        Ok(model)
    }

    /// The model's tensors from `w`, without checking that `w` holds nothing else (for
    /// composite models such as the captioner, which finish the check themselves).
    pub fn build(c: &Gpt2Config, w: &Weights, dev: &B::Device) -> Self {
        let d = c.n_embd;
        Gpt2 {
            wte: Embedding::load(w, &Key::from("transformer.wte"), c.vocab_size, d, dev),
            wpe: Embedding::load(w, &Key::from("transformer.wpe"), c.n_positions, d, dev),
            h: (0..c.n_layer)
                .map(|i| Block::load(w, &block_key(i), c, i, dev))
                .collect(),
            ln_f: LayerNorm::load(
                w,
                &Key::from("transformer.ln_f"),
                d,
                c.layer_norm_epsilon,
                dev,
            ),
            lm_head: (!c.tie_word_embeddings)
                .then(|| Dense::linear(w, &Key::from("lm_head"), d, c.vocab_size, false, dev)),
        }
    }

    /// Buffers of older checkpoints, and the tied head that some writers store anyway.
    pub fn ignore_buffers(c: &Gpt2Config, w: &Weights) {
        w.ignore(|k| {
            k.ends_with(".attn.bias")
                || k.ends_with(".attn.masked_bias")
                || (c.tie_word_embeddings && k.ends_with("lm_head.weight"))
        });
    }

    /// Whether the blocks have cross-attention layers (then they need encoder states).
    pub fn has_cross_attention(&self) -> bool {
        self.h.iter().any(|b| b.crossattention.is_some())
    }

    pub fn num_layers(&self) -> usize {
        self.h.len()
    }

    pub fn new_cache(&self) -> KvCache<B> {
        KvCache::new(self.h.len())
    }

    /// Token embeddings `[b, t, d]` (to concatenate after a ClipCap prefix).
    pub fn embed(&self, ids: Tensor<B, 2, Int>) -> Tensor<B, 3> {
        self.wte.forward(ids)
    }

    /// Logits `[b, t, vocab]` for token ids.
    pub fn forward(&self, ids: Tensor<B, 2, Int>, cache: Option<&mut KvCache<B>>) -> Tensor<B, 3> {
        self.forward_embeds(self.embed(ids), None, cache)
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
        self.forward_embeds_masked(self.embed(ids), None, attention_mask, position_ids, cache)
    }

    /// Logits from input embeddings (prefix + tokens), optionally attending to encoder
    /// states (cross-attention variant). With a cache, positions continue after it.
    pub fn forward_embeds(
        &self,
        x: Tensor<B, 3>,
        enc: Option<&Tensor<B, 3>>,
        cache: Option<&mut KvCache<B>>,
    ) -> Tensor<B, 3> {
        self.forward_embeds_masked(x, enc, None, None, cache)
    }

    /// [`Self::forward_embeds`] with an attention mask and position ids, as
    /// [`Self::forward_masked`].
    pub fn forward_embeds_masked(
        &self,
        x: Tensor<B, 3>,
        enc: Option<&Tensor<B, 3>>,
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
        for (i, block) in self.h.iter().enumerate() {
            h = block.forward(h, enc, pad.as_ref(), cache.as_deref_mut().map(|c| (c, i)));
        }
        lm_logits(self.ln_f.forward(h), &self.wte, &self.lm_head)
    }

    /// The weights in HF layout and names.
    pub fn export(&self) -> Export {
        let mut out = Export::default();
        self.wte.export(&Key::from("transformer.wte"), &mut out);
        self.wpe.export(&Key::from("transformer.wpe"), &mut out);
        for (i, b) in self.h.iter().enumerate() {
            b.export(&block_key(i), &mut out);
        }
        self.ln_f.export(&Key::from("transformer.ln_f"), &mut out);
        if let Some(l) = &self.lm_head {
            l.export(&Key::from("lm_head"), &mut out);
        }
        out
    }
}
