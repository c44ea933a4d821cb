//! BART with the sequence-classification head (`BartForSequenceClassification`, as in
//! facebook/bart-large-mnli): shared token embeddings, learned positions with BART's offset
//! of 2, `layernorm_embedding` in both stacks, post-norm layers with biased q/k/v/out
//! projections, and a head on the decoder state at each row's last `</s>`.
//!
//! As in transformers, the decoder reads `input_ids` shifted right behind
//! `decoder_start_token_id` and, with no decoder mask given, masks only the future; the
//! encoder and the cross-attention mask the padding. With right padding the last `</s>`
//! never sees a pad, so a pair scores the same alone as in a padded batch.

use super::nn::{Dense, Embedding, LayerNorm, activation_by_name, causal_mask, positions};
use super::weights::{Export, Key, Weights, read_config};
use burn::prelude::*;
use burn::tensor::activation;
use serde::{Deserialize, Deserializer};
use std::collections::BTreeMap;
use std::path::Path;

/// BART's learned position table starts at row 2 (`offset` in transformers).
const POSITION_OFFSET: usize = 2;
/// `nn.LayerNorm`'s default, which BART does not configure.
const LAYER_NORM_EPS: f64 = 1e-5;

/// `config.json` of a BART checkpoint; absent fields take transformers' `BartConfig`
/// defaults (bart-large).
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct BartConfig {
    pub vocab_size: usize,
    pub d_model: usize,
    pub encoder_layers: usize,
    pub decoder_layers: usize,
    pub encoder_attention_heads: usize,
    pub decoder_attention_heads: usize,
    pub encoder_ffn_dim: usize,
    pub decoder_ffn_dim: usize,
    pub max_position_embeddings: usize,
    /// `gelu` (exact), `relu`, `tanh`, or a tanh-approximated gelu.
    pub activation_function: String,
    /// Multiply token embeddings by `sqrt(d_model)`.
    pub scale_embedding: bool,
    pub pad_token_id: u32,
    #[serde(deserialize_with = "first_id")]
    pub eos_token_id: u32,
    pub bos_token_id: u32,
    pub decoder_start_token_id: u32,
    /// Class names by index (`"0"`, `"1"`, …), in the order of the logits.
    pub id2label: BTreeMap<String, String>,
}

impl Default for BartConfig {
    fn default() -> Self {
        BartConfig {
            vocab_size: 50265,
            d_model: 1024,
            encoder_layers: 12,
            decoder_layers: 12,
            encoder_attention_heads: 16,
            decoder_attention_heads: 16,
            encoder_ffn_dim: 4096,
            decoder_ffn_dim: 4096,
            max_position_embeddings: 1024,
            activation_function: "gelu".into(),
            scale_embedding: false,
            pad_token_id: 1,
            eos_token_id: 2,
            bos_token_id: 0,
            decoder_start_token_id: 2,
            // BartConfig's default `num_labels` is 3.
            id2label: (0..3)
                .map(|i| (i.to_string(), format!("LABEL_{i}")))
                .collect(),
        }
    }
}

/// `eos_token_id` may be one id or a list of them; the first is kept.
fn first_id<'de, D: Deserializer<'de>>(d: D) -> Result<u32, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Ids {
        One(u32),
        Many(Vec<u32>),
    }
    match Ids::deserialize(d)? {
        Ids::One(i) => Ok(i),
        Ids::Many(v) => v
            .first()
            .copied()
            .ok_or_else(|| serde::de::Error::custom("eos_token_id is an empty list")),
    }
}

impl BartConfig {
    pub fn num_labels(&self) -> usize {
        self.id2label.len()
    }

    /// The name of class `i`, if the config names it.
    pub fn label(&self, i: usize) -> Option<&str> {
        self.id2label.get(&i.to_string()).map(|s| s.as_str())
    }

    /// The index of the class named `name` (ASCII case-insensitive).
    pub fn label_index(&self, name: &str) -> Option<usize> {
        self.id2label
            .iter()
            .find(|(_, v)| v.eq_ignore_ascii_case(name))
            .and_then(|(k, _)| k.parse().ok())
    }
}

/// `self_attn` or `encoder_attn`: q, k, v, out projections `[d, d]` with biases; q·k is
/// scaled by `head_dim^-0.5`.
/// BART's attention block (q/k/v/out projections with biases, scaled queries).
pub type Attention<B> = super::nn::MultiHeadAttention<B>;

/// `layers.i` of either stack (post-norm): self-attention, in the decoder the
/// cross-attention, then `fc1` → activation → `fc2`, each added back and normalised.
#[derive(Module, Debug)]
pub struct Layer<B: Backend> {
    pub self_attn: Attention<B>,
    pub self_attn_layer_norm: LayerNorm<B>,
    /// Decoder only.
    pub encoder_attn: Option<Attention<B>>,
    /// Decoder only.
    pub encoder_attn_layer_norm: Option<LayerNorm<B>>,
    pub fc1: Dense<B>,
    pub fc2: Dense<B>,
    pub final_layer_norm: LayerNorm<B>,
    pub act: String,
}

impl<B: Backend> Layer<B> {
    fn load(w: &Weights, name: &Key, c: &BartConfig, decoder: bool, dev: &B::Device) -> Self {
        let d = c.d_model;
        let (heads, ffn) = if decoder {
            (c.decoder_attention_heads, c.decoder_ffn_dim)
        } else {
            (c.encoder_attention_heads, c.encoder_ffn_dim)
        };
        let ln = |n: &str| LayerNorm::load(w, &name.at(n), d, LAYER_NORM_EPS, dev);
        Layer {
            self_attn: Attention::load(w, &name.at("self_attn"), d, heads, dev),
            self_attn_layer_norm: ln("self_attn_layer_norm"),
            encoder_attn: decoder
                .then(|| Attention::load(w, &name.at("encoder_attn"), d, heads, dev)),
            encoder_attn_layer_norm: decoder.then(|| ln("encoder_attn_layer_norm")),
            fc1: Dense::linear(w, &name.at("fc1"), d, ffn, true, dev),
            fc2: Dense::linear(w, &name.at("fc2"), ffn, d, true, dev),
            final_layer_norm: ln("final_layer_norm"),
            act: c.activation_function.clone(),
        }
    }

    fn forward(
        &self,
        h: Tensor<B, 3>,
        self_mask: Tensor<B, 4, Bool>,
        cross: Option<(&Tensor<B, 3>, &Tensor<B, 4, Bool>)>,
    ) -> Tensor<B, 3> {
        let a = self
            .self_attn
            .forward(h.clone(), h.clone(), Some(self_mask));
        let mut h = self.self_attn_layer_norm.forward(h + a);
        if let (Some(ca), Some(ln), Some((enc, mask))) =
            (&self.encoder_attn, &self.encoder_attn_layer_norm, cross)
        {
            let a = ca.forward(h.clone(), enc.clone(), Some(mask.clone()));
            h = ln.forward(h + a);
        }
        let m = self
            .fc2
            .forward(activation_by_name(&self.act, self.fc1.forward(h.clone())));
        self.final_layer_norm.forward(h + m)
    }

    fn export(&self, name: &Key, out: &mut Export) {
        self.self_attn.export(&name.at("self_attn"), out);
        self.self_attn_layer_norm
            .export(&name.at("self_attn_layer_norm"), out);
        if let (Some(ca), Some(ln)) = (&self.encoder_attn, &self.encoder_attn_layer_norm) {
            ca.export(&name.at("encoder_attn"), out);
            ln.export(&name.at("encoder_attn_layer_norm"), out);
        }
        self.fc1.export(&name.at("fc1"), out);
        self.fc2.export(&name.at("fc2"), out);
        self.final_layer_norm
            .export(&name.at("final_layer_norm"), out);
    }
}

/// `model.encoder` or `model.decoder` (token embeddings are the model's `shared`).
#[derive(Module, Debug)]
pub struct Stack<B: Backend> {
    /// `[max_position_embeddings + 2, d]`; position p is row p + 2.
    pub embed_positions: Embedding<B>,
    pub layernorm_embedding: LayerNorm<B>,
    pub layers: Vec<Layer<B>>,
}

impl<B: Backend> Stack<B> {
    fn load(w: &Weights, name: &Key, c: &BartConfig, decoder: bool, dev: &B::Device) -> Self {
        let n = if decoder {
            c.decoder_layers
        } else {
            c.encoder_layers
        };
        Stack {
            embed_positions: Embedding::load(
                w,
                &name.at("embed_positions"),
                c.max_position_embeddings + POSITION_OFFSET,
                c.d_model,
                dev,
            ),
            layernorm_embedding: LayerNorm::load(
                w,
                &name.at("layernorm_embedding"),
                c.d_model,
                LAYER_NORM_EPS,
                dev,
            ),
            layers: (0..n)
                .map(|i| Layer::load(w, &name.at("layers").at(i), c, decoder, dev))
                .collect(),
        }
    }

    /// Token embeddings `x` `[b, t, d]` plus positions, normalised.
    fn embed(&self, x: Tensor<B, 3>) -> Tensor<B, 3> {
        let [b, t, _] = x.dims();
        let pos = positions::<B>(POSITION_OFFSET, b, t, &x.device());
        self.layernorm_embedding
            .forward(x + self.embed_positions.forward(pos))
    }

    fn export(&self, name: &Key, out: &mut Export) {
        self.embed_positions
            .export(&name.at("embed_positions"), out);
        self.layernorm_embedding
            .export(&name.at("layernorm_embedding"), out);
        for (i, l) in self.layers.iter().enumerate() {
            l.export(&name.at("layers").at(i), out);
        }
    }
}

/// `model`: `BartModel`.
#[derive(Module, Debug)]
pub struct BartModel<B: Backend> {
    /// Token embeddings of both stacks (`model.shared.weight`; `encoder.embed_tokens` and
    /// `decoder.embed_tokens` are aliases).
    pub shared: Embedding<B>,
    pub encoder: Stack<B>,
    pub decoder: Stack<B>,
    /// `sqrt(d_model)` with `scale_embedding`, else 1.
    pub embed_scale: f64,
}

impl<B: Backend> BartModel<B> {
    fn tokens(&self, ids: Tensor<B, 2, Int>) -> Tensor<B, 3> {
        let x = self.shared.forward(ids);
        if self.embed_scale != 1.0 {
            x * self.embed_scale
        } else {
            x
        }
    }

    /// Encoder states `[b, s, d]`; `pad` `[b, s]` true at padding.
    pub fn encode(&self, ids: Tensor<B, 2, Int>, pad: Tensor<B, 2, Bool>) -> Tensor<B, 3> {
        let [b, s] = ids.dims();
        let mut h = self.encoder.embed(self.tokens(ids));
        for l in &self.encoder.layers {
            let mask = pad
                .clone()
                .reshape([b, 1, 1, s])
                .expand([b, l.self_attn.n_heads, s, s]);
            h = l.forward(h, mask, None);
        }
        h
    }

    /// Decoder states `[b, t, d]` for decoder ids `[b, t]` (causal self-attention only, as
    /// transformers does without a decoder mask), attending to `enc` `[b, s, d]` except
    /// where `pad` `[b, s]` is true.
    pub fn decode(
        &self,
        dec_ids: Tensor<B, 2, Int>,
        enc: &Tensor<B, 3>,
        pad: Tensor<B, 2, Bool>,
    ) -> Tensor<B, 3> {
        let [b, t] = dec_ids.dims();
        let s = enc.dims()[1];
        let mut h = self.decoder.embed(self.tokens(dec_ids));
        let causal = causal_mask::<B>(t, t, &h.device());
        for l in &self.decoder.layers {
            let heads = l.self_attn.n_heads;
            let self_mask = causal.clone().expand([b, heads, t, t]);
            let cross_heads = l.encoder_attn.as_ref().map_or(heads, |a| a.n_heads);
            let cross_mask = pad
                .clone()
                .reshape([b, 1, 1, s])
                .expand([b, cross_heads, t, s]);
            h = l.forward(h, self_mask, Some((enc, &cross_mask)));
        }
        h
    }
}

/// `classification_head`: `dense` → tanh → `out_proj`.
#[derive(Module, Debug)]
pub struct ClassificationHead<B: Backend> {
    pub dense: Dense<B>,
    pub out_proj: Dense<B>,
}

impl<B: Backend> ClassificationHead<B> {
    fn forward(&self, x: Tensor<B, 2>) -> Tensor<B, 2> {
        self.out_proj.forward(self.dense.forward(x).tanh())
    }
}

#[derive(Module, Debug)]
pub struct BartClassifier<B: Backend> {
    pub model: BartModel<B>,
    pub classification_head: ClassificationHead<B>,
    pub pad_token_id: u32,
    pub eos_token_id: u32,
    pub decoder_start_token_id: u32,
}

impl<B: Backend> BartClassifier<B> {
    /// Loads a checkpoint folder (`config.json` + safetensors).
    pub fn load(dir: &Path, dev: &B::Device) -> anyhow::Result<(Self, BartConfig)> {
        let cfg: BartConfig = read_config(dir)?;
        let w = Weights::from_folder(dir)?;
        Ok((Self::from_weights(&cfg, w, dev)?, cfg))
    }

    pub fn from_weights(c: &BartConfig, w: Weights, dev: &B::Device) -> anyhow::Result<Self> {
        let d = c.d_model;
        // The shared embeddings under whichever of their tied names the file kept.
        let shared_name = w.first_module(&[
            "model.shared",
            "model.encoder.embed_tokens",
            "model.decoder.embed_tokens",
        ]);
        let model = BartModel {
            shared: Embedding::load(&w, &shared_name, c.vocab_size, d, dev),
            encoder: Stack::load(&w, &Key::from("model.encoder"), c, false, dev),
            decoder: Stack::load(&w, &Key::from("model.decoder"), c, true, dev),
            embed_scale: if c.scale_embedding {
                (d as f64).sqrt()
            } else {
                1.0
            },
        };
        let classification_head = ClassificationHead {
            dense: Dense::linear(&w, &Key::from("classification_head.dense"), d, d, true, dev),
            out_proj: Dense::linear(
                &w,
                &Key::from("classification_head.out_proj"),
                d,
                c.num_labels(),
                true,
                dev,
            ),
        };
        // Tied aliases of `shared`, and fairseq's version buffers.
        w.ignore(|k| {
            k.ends_with("encoder.embed_tokens.weight")
                || k.ends_with("decoder.embed_tokens.weight")
                || k.ends_with("encoder.version")
                || k.ends_with("decoder.version")
        });
        w.finish()?;
        Ok(BartClassifier {
            model,
            classification_head,
            pad_token_id: c.pad_token_id,
            eos_token_id: c.eos_token_id,
            decoder_start_token_id: c.decoder_start_token_id,
        })
    }

    /// Logits `[batch, num_labels]`; `ids` right-padded with `pad_token_id`, `mask` 1 =
    /// token. Each row is classified from the decoder state at its last `eos_token_id`
    /// (its last token when it has none).
    pub fn forward(&self, ids: Tensor<B, 2, Int>, mask: Tensor<B, 2, Int>) -> Tensor<B, 2> {
        let [b, s] = ids.dims();
        let dev = ids.device();
        let host: Vec<i64> = ids
            .to_data()
            .convert::<i64>()
            .to_vec()
            .expect("integer ids");
        let keep: Vec<i64> = mask
            .clone()
            .to_data()
            .convert::<i64>()
            .to_vec()
            .expect("integer mask");
        let (eos, pad) = (self.eos_token_id as i64, self.pad_token_id as i64);
        // shift_tokens_right: decoder_start, then the ids but the last; -100 → pad.
        let mut dec = Vec::with_capacity(b * s);
        let mut rows = Vec::with_capacity(b);
        for (r, row) in host.chunks(s.max(1)).enumerate() {
            dec.push(self.decoder_start_token_id as i64);
            dec.extend(
                row[..s - 1]
                    .iter()
                    .map(|&x| if x == -100 { pad } else { x }),
            );
            let last = row.iter().rposition(|&x| x == eos).unwrap_or_else(|| {
                keep[r * s..(r + 1) * s]
                    .iter()
                    .rposition(|&m| m != 0)
                    .unwrap_or(0)
            });
            rows.push((r * s + last) as i64);
        }
        let dec = Tensor::<B, 2, Int>::from_data(TensorData::new(dec, [b, s]), &dev);
        let blocked = mask.equal_elem(0);
        let enc = self.model.encode(ids, blocked.clone());
        let h = self.model.decode(dec, &enc, blocked);
        let d = h.dims()[2];
        let rows = Tensor::<B, 1, Int>::from_data(TensorData::new(rows, [b]), &dev);
        self.classification_head
            .forward(h.reshape([b * s, d]).select(0, rows))
    }

    /// The weights in HF layout and names (the tied `embed_tokens` aliases are not
    /// written, as transformers does not write them).
    pub fn export(&self) -> Export {
        let mut out = Export::default();
        self.model
            .shared
            .export(&Key::from("model.shared"), &mut out);
        self.model
            .encoder
            .export(&Key::from("model.encoder"), &mut out);
        self.model
            .decoder
            .export(&Key::from("model.decoder"), &mut out);
        self.classification_head
            .dense
            .export(&Key::from("classification_head.dense"), &mut out);
        self.classification_head
            .out_proj
            .export(&Key::from("classification_head.out_proj"), &mut out);
        out
    }
}

/// NLI class probabilities of one (premise, hypothesis) pair.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct NliScores {
    pub contradiction: f32,
    pub neutral: f32,
    pub entailment: f32,
}

/// Pairs run per forward pass in [`nli_scores`].
const NLI_BATCH: usize = 16;

/// Entailment/neutral/contradiction probabilities for (premise, hypothesis) pairs, given
/// as token ids without special tokens. Each pair becomes `<s> p </s></s> h </s>` (the
/// premise, then if need be the hypothesis, cut from the end to fit
/// `max_position_embeddings`); pairs are batched with right padding and the logits
/// softmaxed. Labels are found by name in `id2label`; a config without those names is
/// read in bart-large-mnli's order (contradiction, neutral, entailment).
pub fn nli_scores<B: Backend>(
    model: &BartClassifier<B>,
    cfg: &BartConfig,
    pairs: &[(Vec<u32>, Vec<u32>)],
    dev: &B::Device,
) -> Vec<NliScores> {
    let idx = |name: &str, fallback: usize| cfg.label_index(name).unwrap_or(fallback);
    let (ic, in_, ie) = (
        idx("contradiction", 0),
        idx("neutral", 1),
        idx("entailment", 2),
    );
    let (bos, eos, pad) = (
        cfg.bos_token_id as i64,
        cfg.eos_token_id as i64,
        cfg.pad_token_id as i64,
    );
    let budget = cfg.max_position_embeddings.saturating_sub(4);
    let mut out = Vec::with_capacity(pairs.len());
    for chunk in pairs.chunks(NLI_BATCH) {
        let rows: Vec<Vec<i64>> = chunk
            .iter()
            .map(|(p, h)| {
                let h_len = h.len().min(budget);
                let p_len = p.len().min(budget - h_len);
                let mut r = vec![bos];
                r.extend(p[..p_len].iter().map(|&x| x as i64));
                r.extend([eos, eos]);
                r.extend(h[..h_len].iter().map(|&x| x as i64));
                r.push(eos);
                r
            })
            .collect();
        let width = rows.iter().map(|r| r.len()).max().unwrap_or(0);
        let (mut ids, mut mask) = (Vec::new(), Vec::new());
        for r in &rows {
            ids.extend(r.iter().copied());
            ids.extend(std::iter::repeat_n(pad, width - r.len()));
            mask.extend(std::iter::repeat_n(1i64, r.len()));
            mask.extend(std::iter::repeat_n(0i64, width - r.len()));
        }
        let n = rows.len();
        let ids = Tensor::<B, 2, Int>::from_data(TensorData::new(ids, [n, width]), dev);
        let mask = Tensor::<B, 2, Int>::from_data(TensorData::new(mask, [n, width]), dev);
        let probs = activation::softmax(model.forward(ids, mask), 1);
        let k = probs.dims()[1];
        let probs: Vec<f32> = probs
            .to_data()
            .convert::<f32>()
            .to_vec()
            .expect("f32 probabilities");
        let at = |row: &[f32], i: usize| row.get(i).copied().unwrap_or(0.0);
        out.extend(probs.chunks(k.max(1)).map(|row| NliScores {
            contradiction: at(row, ic),
            neutral: at(row, in_),
            entailment: at(row, ie),
        }));
    }
    out
}
