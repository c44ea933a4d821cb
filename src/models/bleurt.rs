//! BLEURT-20 (`BleurtForSequenceClassification` of the PyTorch port `bleurt-pytorch`, e.g.
//! lucadiliello/BLEURT-20): a RemBERT-style BERT whose token embeddings have their own
//! `embedding_size`, projected to `hidden_size` before the first layer; post-LN layers;
//! BERT's tanh pooler on `[CLS]`; one linear output, the score.
//!
//! A pair is encoded `[CLS] reference [SEP] candidate [SEP]` with token types 0 then 1,
//! the longer side trimmed first when the pair exceeds the model's length (BLEURT's
//! `_truncate_seq_pair`, the tokenizers' `longest_first`), right-padded in a batch.

use super::nn::{
    Dense, Embedding, LayerNorm, activation_by_name, attention, key_padding_mask, merge_heads,
    split_heads,
};
use super::weights::{Key, Weights, read_config};
use crate::text::tokenizer::Tokenizer;
use anyhow::{Context, anyhow};
use burn::prelude::*;
use serde::Deserialize;
use std::path::Path;

/// `config.json` of the port; absent fields take `BleurtConfig`'s defaults.
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct BleurtConfig {
    pub vocab_size: usize,
    /// The token embeddings' width when it differs from `hidden_size` (BLEURT-20: 128).
    pub embedding_size: Option<usize>,
    pub hidden_size: usize,
    pub num_hidden_layers: usize,
    pub num_attention_heads: usize,
    pub intermediate_size: usize,
    pub hidden_act: String,
    pub max_position_embeddings: usize,
    pub type_vocab_size: usize,
    pub layer_norm_eps: f64,
    pub pad_token_id: u32,
    pub num_labels: usize,
}

impl Default for BleurtConfig {
    fn default() -> Self {
        BleurtConfig {
            vocab_size: 30522,
            embedding_size: None,
            hidden_size: 768,
            num_hidden_layers: 12,
            num_attention_heads: 12,
            intermediate_size: 3072,
            hidden_act: "gelu".into(),
            max_position_embeddings: 512,
            type_vocab_size: 2,
            layer_norm_eps: 1e-12,
            pad_token_id: 0,
            num_labels: 1,
        }
    }
}

/// `bleurt.encoder.layer.i`.
#[derive(Module, Debug)]
pub struct Layer<B: Backend> {
    query: Dense<B>,
    key: Dense<B>,
    value: Dense<B>,
    attn_out: Dense<B>,
    attn_norm: LayerNorm<B>,
    intermediate: Dense<B>,
    output: Dense<B>,
    out_norm: LayerNorm<B>,
}

#[derive(Module, Debug)]
pub struct Bleurt<B: Backend> {
    word_embeddings: Embedding<B>,
    position_embeddings: Embedding<B>,
    token_type_embeddings: Embedding<B>,
    embeddings_norm: LayerNorm<B>,
    projection: Option<Dense<B>>,
    layers: Vec<Layer<B>>,
    pooler: Dense<B>,
    classifier: Dense<B>,
    #[module(skip)]
    heads: usize,
    #[module(skip)]
    act: String,
}

impl<B: Backend> Bleurt<B> {
    pub fn load(dir: &Path, dev: &B::Device) -> anyhow::Result<(Self, BleurtConfig)> {
        let cfg: BleurtConfig = read_config(dir)?;
        let w = Weights::from_folder(dir)?;
        Ok((Self::from_weights(&cfg, w, dev)?, cfg))
    }

    pub fn from_weights(c: &BleurtConfig, w: Weights, dev: &B::Device) -> anyhow::Result<Self> {
        let (h, e) = (c.hidden_size, c.embedding_size.unwrap_or(c.hidden_size));
        let eps = c.layer_norm_eps;
        let lin = |name: &Key, i: usize, o: usize| Dense::linear(&w, name, i, o, true, dev);
        let layers = (0..c.num_hidden_layers)
            .map(|i| {
                let p = Key::from("bleurt.encoder.layer").at(i);
                Layer {
                    query: lin(&p.at("attention.self.query"), h, h),
                    key: lin(&p.at("attention.self.key"), h, h),
                    value: lin(&p.at("attention.self.value"), h, h),
                    attn_out: lin(&p.at("attention.output.dense"), h, h),
                    attn_norm: LayerNorm::load(
                        &w,
                        &p.at("attention.output.LayerNorm"),
                        h,
                        eps,
                        dev,
                    ),
                    intermediate: lin(&p.at("intermediate.dense"), h, c.intermediate_size),
                    output: lin(&p.at("output.dense"), c.intermediate_size, h),
                    out_norm: LayerNorm::load(&w, &p.at("output.LayerNorm"), h, eps, dev),
                }
            })
            .collect();
        let m = Bleurt {
            word_embeddings: Embedding::load(
                &w,
                &Key::from("bleurt.embeddings.word_embeddings"),
                c.vocab_size,
                e,
                dev,
            ),
            position_embeddings: Embedding::load(
                &w,
                &Key::from("bleurt.embeddings.position_embeddings"),
                c.max_position_embeddings,
                e,
                dev,
            ),
            token_type_embeddings: Embedding::load(
                &w,
                &Key::from("bleurt.embeddings.token_type_embeddings"),
                c.type_vocab_size,
                e,
                dev,
            ),
            embeddings_norm: LayerNorm::load(
                &w,
                &Key::from("bleurt.embeddings.LayerNorm"),
                e,
                eps,
                dev,
            ),
            projection: c
                .embedding_size
                .filter(|&e| e != h)
                .map(|e| lin(&Key::from("bleurt.encoder.embedding_projection"), e, h)),
            layers,
            pooler: lin(&Key::from("bleurt.pooler.dense"), h, h),
            classifier: lin(&Key::from("classifier"), h, c.num_labels),
            heads: c.num_attention_heads,
            act: c.hidden_act.clone(),
        };
        w.ignore(|k| k.ends_with("position_ids") || k.ends_with("token_type_ids"));
        w.finish()?;
        Ok(m)
    }

    /// Scores `[batch]` (the first logit) for right-padded `ids`, `types` and `mask`
    /// `[batch, seq]` (mask 1 = token).
    pub fn forward(
        &self,
        ids: Tensor<B, 2, Int>,
        types: Tensor<B, 2, Int>,
        mask: Tensor<B, 2, Int>,
    ) -> Tensor<B, 1> {
        let [b, t] = ids.dims();
        let dev = ids.device();
        let pos = Tensor::<B, 1, Int>::arange(0..t as i64, &dev)
            .reshape([1, t])
            .expand([b, t]);
        let x = self.word_embeddings.forward(ids)
            + self.token_type_embeddings.forward(types)
            + self.position_embeddings.forward(pos);
        let mut x = self.embeddings_norm.forward(x);
        if let Some(p) = &self.projection {
            x = p.forward(x);
        }
        let blocked = key_padding_mask(mask);
        let dh = x.dims()[2] / self.heads.max(1);
        for l in &self.layers {
            let q = split_heads(l.query.forward(x.clone()), self.heads);
            let k = split_heads(l.key.forward(x.clone()), self.heads);
            let v = split_heads(l.value.forward(x.clone()), self.heads);
            let a = merge_heads(attention(
                q,
                k,
                v,
                Some((dh as f64).powf(-0.5)),
                Some(blocked.clone()),
                None,
            ));
            x = l.attn_norm.forward(l.attn_out.forward(a) + x);
            let ff = l.output.forward(activation_by_name(
                &self.act,
                l.intermediate.forward(x.clone()),
            ));
            x = l.out_norm.forward(ff + x);
        }
        let [_, _, h] = x.dims();
        let cls = x.slice([0..b, 0..1, 0..h]).reshape([b, h]);
        let pooled = self.pooler.forward(cls).tanh();
        self.classifier
            .forward(pooled)
            .slice([0..b, 0..1])
            .reshape([b])
    }
}

/// A BLEURT checkpoint with its tokenizer, ready to score pairs.
pub struct Scorer<B: Backend> {
    model: Bleurt<B>,
    tokenizer: Tokenizer,
    max_len: usize,
    pad: u32,
    cls: u32,
    sep: u32,
    dev: B::Device,
}

impl<B: Backend> Scorer<B> {
    /// Reads `config.json`, `model.safetensors` and `tokenizer.json` from `dir` (the port's
    /// checkpoint after `tools/convert_bleurt.py`, which adds the last two).
    pub fn load(dir: &Path, dev: &B::Device) -> anyhow::Result<Self> {
        if !dir.is_dir() {
            return Err(anyhow!(
                "BLEURT checkpoint {} is not a folder (expected config.json, model.safetensors and tokenizer.json; tools/convert_bleurt.py makes the last two from the port's files)",
                dir.display()
            ));
        }
        let tok_file = dir.join("tokenizer.json");
        if !tok_file.is_file() {
            return Err(anyhow!(
                "{} is missing: convert the port's spm.model with `python3 tools/convert_bleurt.py {}`",
                tok_file.display(),
                dir.display()
            ));
        }
        let (model, cfg) = Bleurt::load(dir, dev)
            .with_context(|| format!("loading the BLEURT checkpoint {}", dir.display()))?;
        let tokenizer = Tokenizer::load(&tok_file)?;
        let special = |t: &str| {
            tokenizer.token_id(t).ok_or_else(|| {
                anyhow!(
                    "{} has no {t} token: is it BLEURT's tokenizer?",
                    tok_file.display()
                )
            })
        };
        let (cls, sep) = (special("[CLS]")?, special("[SEP]")?);
        Ok(Scorer {
            model,
            tokenizer,
            max_len: cfg.max_position_embeddings,
            pad: cfg.pad_token_id,
            cls,
            sep,
            dev: dev.clone(),
        })
    }

    /// `[CLS] ref [SEP] cand [SEP]` ids and token types, trimmed as BLEURT trims: one
    /// token at a time from the end of the longer side, the candidate's on a tie. (The
    /// `tokenizers` crate's `longest_first` trims the first side on a tie, which is why
    /// this does not use it.)
    pub fn encode(&self, reference: &str, candidate: &str) -> anyhow::Result<(Vec<u32>, Vec<u32>)> {
        let mut a = self.tokenizer.encode_plain(reference)?;
        let mut b = self.tokenizer.encode_plain(candidate)?;
        let room = self.max_len.saturating_sub(3);
        while a.len() + b.len() > room {
            if a.len() > b.len() {
                a.pop();
            } else {
                b.pop();
            }
        }
        let mut ids = Vec::with_capacity(a.len() + b.len() + 3);
        ids.push(self.cls);
        ids.extend(&a);
        ids.push(self.sep);
        let first = ids.len();
        ids.extend(&b);
        ids.push(self.sep);
        let mut types = vec![0; first];
        types.resize(ids.len(), 1);
        Ok((ids, types))
    }

    /// One score per (reference, candidate), `batch` pairs at a time.
    pub fn scores(&self, pairs: &[(&str, &str)], batch: usize) -> anyhow::Result<Vec<f32>> {
        let mut out = Vec::with_capacity(pairs.len());
        for chunk in pairs.chunks(batch.max(1)) {
            let enc: Vec<(Vec<u32>, Vec<u32>)> = chunk
                .iter()
                .map(|(r, c)| self.encode(r, c))
                .collect::<anyhow::Result<_>>()?;
            let t = enc.iter().map(|e| e.0.len()).max().unwrap_or(1).max(1);
            let (mut ids, mut types, mut mask) = (Vec::new(), Vec::new(), Vec::new());
            for (i, ty) in &enc {
                for j in 0..t {
                    ids.push(i.get(j).copied().unwrap_or(self.pad) as i64);
                    types.push(ty.get(j).copied().unwrap_or(0) as i64);
                    mask.push((j < i.len()) as i64);
                }
            }
            let n = enc.len();
            let mk =
                |v: Vec<i64>| Tensor::<B, 2, Int>::from_data(TensorData::new(v, [n, t]), &self.dev);
            let s = self.model.forward(mk(ids), mk(types), mk(mask));
            out.extend(
                s.into_data()
                    .convert::<f32>()
                    .to_vec::<f32>()
                    .map_err(|e| anyhow!("{e:?}"))?,
            );
        }
        Ok(out)
    }
}
