//! CLIP (`CLIPModel`): a ViT image tower (patch embedding, class token, pre-norm encoder,
//! `post_layernorm` on the class token) and a causal text tower pooled at the end-of-text
//! token, each projected (no bias) into a shared space where cosine similarity times
//! `exp(logit_scale)` gives the image–text logits.

use super::nn::{Dense, Embedding, LayerNorm, activation_by_name, causal_mask};
use super::weights::{Export, Key, Weights, read_config};
use burn::module::Param;
use burn::prelude::*;
use burn::tensor::activation::{log_softmax, sigmoid};
use serde::Deserialize;
use std::path::Path;

#[derive(Debug, Clone, Deserialize)]
pub struct ClipConfig {
    #[serde(default)]
    pub text_config: ClipTextConfig,
    #[serde(default)]
    pub vision_config: ClipVisionConfig,
    #[serde(default = "default_projection_dim")]
    pub projection_dim: usize,
    #[serde(default = "default_logit_scale")]
    pub logit_scale_init_value: f64,
}

/// `CLIPTextConfig`, with transformers' defaults.
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct ClipTextConfig {
    pub vocab_size: usize,
    pub hidden_size: usize,
    pub intermediate_size: usize,
    pub num_hidden_layers: usize,
    pub num_attention_heads: usize,
    pub max_position_embeddings: usize,
    pub hidden_act: String,
    pub layer_norm_eps: f64,
    pub pad_token_id: Option<u32>,
    pub bos_token_id: Option<u32>,
    pub eos_token_id: u32,
}

impl Default for ClipTextConfig {
    fn default() -> Self {
        ClipTextConfig {
            vocab_size: 49408,
            hidden_size: 512,
            intermediate_size: 2048,
            num_hidden_layers: 12,
            num_attention_heads: 8,
            max_position_embeddings: 77,
            hidden_act: "quick_gelu".into(),
            layer_norm_eps: 1e-5,
            pad_token_id: Some(1),
            bos_token_id: Some(49406),
            eos_token_id: 49407,
        }
    }
}

/// `CLIPVisionConfig`, with transformers' defaults.
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct ClipVisionConfig {
    pub image_size: usize,
    pub patch_size: usize,
    pub num_channels: usize,
    pub hidden_size: usize,
    pub intermediate_size: usize,
    pub num_hidden_layers: usize,
    pub num_attention_heads: usize,
    pub hidden_act: String,
    pub layer_norm_eps: f64,
}

impl Default for ClipVisionConfig {
    fn default() -> Self {
        ClipVisionConfig {
            image_size: 224,
            patch_size: 32,
            num_channels: 3,
            hidden_size: 768,
            intermediate_size: 3072,
            num_hidden_layers: 12,
            num_attention_heads: 12,
            hidden_act: "quick_gelu".into(),
            layer_norm_eps: 1e-5,
        }
    }
}

impl ClipVisionConfig {
    /// Patches per image (the class token comes on top).
    pub fn num_patches(&self) -> usize {
        (self.image_size / self.patch_size).pow(2)
    }
}

impl ClipConfig {
    /// The standard deviation `CLIPPreTrainedModel._init_weights` gives each matrix
    /// (`initializer_factor` 1): embeddings 0.02, the class token d^-½, attention inputs
    /// d^-½·(2·layers)^-½, attention outputs d^-½, the MLP (2d)^-½ in and the attention
    /// input std out, projections d^-½. Measured on the toy world: with 0.02 everywhere
    /// the contrastive loss never left ln(batch).
    pub fn init_std(&self, name: &str) -> f32 {
        let (t, v) = (&self.text_config, &self.vision_config);
        let (d, layers) = if name.starts_with("vision_model") || name.starts_with("visual_") {
            (v.hidden_size as f32, v.num_hidden_layers as f32)
        } else {
            (t.hidden_size as f32, t.num_hidden_layers as f32)
        };
        let in_proj = d.powf(-0.5) * (2.0 * layers).powf(-0.5);
        let leaf = name.trim_end_matches(".weight");
        let last = leaf.rsplit('.').next().unwrap_or("");
        match last {
            "class_embedding" => d.powf(-0.5),
            "q_proj" | "k_proj" | "v_proj" | "fc2" => in_proj,
            "out_proj" => d.powf(-0.5),
            "fc1" => (2.0 * d).powf(-0.5),
            "visual_projection" | "text_projection" => d.powf(-0.5),
            _ => 0.02, // token, position and patch embeddings
        }
    }
}

fn default_projection_dim() -> usize {
    512
}
fn default_logit_scale() -> f64 {
    2.6592
}

/// CLIP's activations: `quick_gelu` (`x·σ(1.702x)`) and the ones the other models share.
fn act<B: Backend, const D: usize>(name: &str, x: Tensor<B, D>) -> Tensor<B, D> {
    match name {
        "quick_gelu" => super::cpu::activation(x, super::cpu::Act::QuickGelu)
            .unwrap_or_else(|x| x.clone() * sigmoid(x * 1.702)),
        other => activation_by_name(other, x),
    }
}

/// Hyper-parameters one encoder needs (the towers differ only in these).
struct Dims<'a> {
    d: usize,
    inner: usize,
    heads: usize,
    layers: usize,
    act: &'a str,
    eps: f64,
}

/// CLIP's attention block: the same layout as BART's.
pub type Attention<B> = super::nn::MultiHeadAttention<B>;

#[derive(Module, Debug)]
pub struct EncoderLayer<B: Backend> {
    pub layer_norm1: LayerNorm<B>,
    pub self_attn: Attention<B>,
    pub layer_norm2: LayerNorm<B>,
    pub fc1: Dense<B>,
    pub fc2: Dense<B>,
    pub act: String,
}

impl<B: Backend> EncoderLayer<B> {
    fn load(w: &Weights, name: &Key, c: &Dims, dev: &B::Device) -> Self {
        EncoderLayer {
            layer_norm1: LayerNorm::load(w, &name.at("layer_norm1"), c.d, c.eps, dev),
            self_attn: Attention::load(w, &name.at("self_attn"), c.d, c.heads, dev),
            layer_norm2: LayerNorm::load(w, &name.at("layer_norm2"), c.d, c.eps, dev),
            fc1: Dense::linear(w, &name.at("mlp.fc1"), c.d, c.inner, true, dev),
            fc2: Dense::linear(w, &name.at("mlp.fc2"), c.inner, c.d, true, dev),
            act: c.act.to_string(),
        }
    }

    fn forward(&self, h: Tensor<B, 3>, mask: Option<Tensor<B, 4, Bool>>) -> Tensor<B, 3> {
        let normed = self.layer_norm1.forward(h.clone());
        let h = h + self.self_attn.forward(normed.clone(), normed, mask);
        let m = self.fc2.forward(act(
            &self.act,
            self.fc1.forward(self.layer_norm2.forward(h.clone())),
        ));
        h + m
    }

    fn export(&self, name: &Key, out: &mut Export) {
        self.layer_norm1.export(&name.at("layer_norm1"), out);
        self.self_attn.export(&name.at("self_attn"), out);
        self.layer_norm2.export(&name.at("layer_norm2"), out);
        self.fc1.export(&name.at("mlp.fc1"), out);
        self.fc2.export(&name.at("mlp.fc2"), out);
    }
}

#[derive(Module, Debug)]
pub struct Encoder<B: Backend> {
    pub layers: Vec<EncoderLayer<B>>,
}

impl<B: Backend> Encoder<B> {
    fn load(w: &Weights, name: &Key, c: &Dims, dev: &B::Device) -> Self {
        Encoder {
            layers: (0..c.layers)
                .map(|i| EncoderLayer::load(w, &name.at("layers").at(i), c, dev))
                .collect(),
        }
    }

    fn forward(&self, mut h: Tensor<B, 3>, mask: Option<Tensor<B, 4, Bool>>) -> Tensor<B, 3> {
        for l in &self.layers {
            h = l.forward(h, mask.clone());
        }
        h
    }

    fn export(&self, name: &Key, out: &mut Export) {
        for (i, l) in self.layers.iter().enumerate() {
            l.export(&name.at("layers").at(i), out);
        }
    }
}

#[derive(Module, Debug)]
pub struct TextEmbeddings<B: Backend> {
    pub token_embedding: Embedding<B>,
    pub position_embedding: Embedding<B>,
}

#[derive(Module, Debug)]
pub struct TextTransformer<B: Backend> {
    pub embeddings: TextEmbeddings<B>,
    pub encoder: Encoder<B>,
    pub final_layer_norm: LayerNorm<B>,
    pub eos_token_id: u32,
}

impl<B: Backend> TextTransformer<B> {
    fn load(w: &Weights, name: &Key, c: &ClipTextConfig, dev: &B::Device) -> Self {
        let dims = Dims {
            d: c.hidden_size,
            inner: c.intermediate_size,
            heads: c.num_attention_heads,
            layers: c.num_hidden_layers,
            act: &c.hidden_act,
            eps: c.layer_norm_eps,
        };
        let e = name.at("embeddings");
        TextTransformer {
            embeddings: TextEmbeddings {
                token_embedding: Embedding::load(
                    w,
                    &e.at("token_embedding"),
                    c.vocab_size,
                    c.hidden_size,
                    dev,
                ),
                position_embedding: Embedding::load(
                    w,
                    &e.at("position_embedding"),
                    c.max_position_embeddings,
                    c.hidden_size,
                    dev,
                ),
            },
            encoder: Encoder::load(w, &name.at("encoder"), &dims, dev),
            final_layer_norm: LayerNorm::load(
                w,
                &name.at("final_layer_norm"),
                c.hidden_size,
                c.layer_norm_eps,
                dev,
            ),
            eos_token_id: c.eos_token_id,
        }
    }

    /// Where each row is pooled: transformers' rule (the legacy `argmax(ids)` when
    /// `eos_token_id == 2`, else the first `eos_token_id`; position 0 if a row has none,
    /// as torch's argmax of an all-false row).
    fn eos_positions(&self, ids: &Tensor<B, 2, Int>) -> Vec<usize> {
        let [b, t] = ids.dims();
        let flat: Vec<i64> = ids
            .to_data()
            .convert::<i64>()
            .to_vec::<i64>()
            .expect("integer ids");
        flat.chunks(t)
            .take(b)
            .map(|row| {
                if self.eos_token_id == 2 {
                    // torch's argmax: the first maximum.
                    let max = row.iter().copied().max().unwrap_or(0);
                    row.iter().position(|&x| x == max).unwrap_or(0)
                } else {
                    row.iter()
                        .position(|&x| x == self.eos_token_id as i64)
                        .unwrap_or(0)
                }
            })
            .collect()
    }

    /// Pooled states `[b, d]` after `final_layer_norm`.
    fn forward(&self, ids: Tensor<B, 2, Int>, mask: Tensor<B, 2, Int>) -> Tensor<B, 2> {
        let [b, t] = ids.dims();
        let dev = ids.device();
        let pooled_at = self.eos_positions(&ids);
        let pos = self
            .embeddings
            .position_embedding
            .weight
            .val()
            .narrow(0, 0, t);
        let h = self.embeddings.token_embedding.forward(ids) + pos.unsqueeze::<3>();
        // Blocked: future keys, and padding keys (attention_mask 0).
        let causal = causal_mask::<B>(t, t, &dev).expand([b, 1, t, t]);
        let pad = mask
            .equal_elem(0)
            .reshape([b, 1, 1, t])
            .expand([b, 1, t, t]);
        let h = self.encoder.forward(h, Some(causal.bool_or(pad)));
        let h = self.final_layer_norm.forward(h);
        let d = h.dims()[2];
        let rows: Vec<i64> = pooled_at
            .iter()
            .enumerate()
            .map(|(i, &p)| (i * t + p) as i64)
            .collect();
        let rows = Tensor::<B, 1, Int>::from_data(TensorData::new(rows, [b]), &dev);
        h.reshape([b * t, d]).select(0, rows)
    }

    fn export(&self, name: &Key, out: &mut Export) {
        let e = name.at("embeddings");
        self.embeddings
            .token_embedding
            .export(&e.at("token_embedding"), out);
        self.embeddings
            .position_embedding
            .export(&e.at("position_embedding"), out);
        self.encoder.export(&name.at("encoder"), out);
        self.final_layer_norm
            .export(&name.at("final_layer_norm"), out);
    }
}

#[derive(Module, Debug)]
pub struct VisionEmbeddings<B: Backend> {
    pub class_embedding: Param<Tensor<B, 1>>,
    /// The patch convolution's weight in torch's layout `[d, channels, p, p]`.
    pub patch_embedding: Param<Tensor<B, 4>>,
    pub position_embedding: Embedding<B>,
    pub patch_size: usize,
}

impl<B: Backend> VisionEmbeddings<B> {
    /// `[n, c, s, s]` pixels → `[n, 1 + patches, d]`: a stride-`p` convolution with a
    /// `p×p` kernel is one matmul of the flattened patches, in torch's `(c, y, x)` order.
    fn forward(&self, pixels: Tensor<B, 4>) -> Tensor<B, 3> {
        let [n, c, hgt, wid] = pixels.dims();
        let p = self.patch_size;
        let (gh, gw) = (hgt / p, wid / p);
        let weight = self.patch_embedding.val();
        let d = weight.dims()[0];
        let patches = pixels
            .reshape([n, c, gh, p, gw, p])
            .permute([0, 2, 4, 1, 3, 5])
            .reshape([n * gh * gw, c * p * p]);
        let patches =
            super::cpu_matmul::matmul(patches, weight.reshape([d, c * p * p]).transpose())
                .reshape([n, gh * gw, d]);
        let cls = self
            .class_embedding
            .val()
            .reshape([1, 1, d])
            .expand([n, 1, d]);
        let h = Tensor::cat(vec![cls, patches], 1);
        h + self.position_embedding.weight.val().unsqueeze::<3>()
    }
}

#[derive(Module, Debug)]
pub struct VisionTransformer<B: Backend> {
    pub embeddings: VisionEmbeddings<B>,
    pub pre_layrnorm: LayerNorm<B>,
    pub encoder: Encoder<B>,
    pub post_layernorm: LayerNorm<B>,
}

impl<B: Backend> VisionTransformer<B> {
    fn load(w: &Weights, name: &Key, c: &ClipVisionConfig, dev: &B::Device) -> Self {
        let (d, eps, p) = (c.hidden_size, c.layer_norm_eps, c.patch_size);
        let dims = Dims {
            d,
            inner: c.intermediate_size,
            heads: c.num_attention_heads,
            layers: c.num_hidden_layers,
            act: &c.hidden_act,
            eps,
        };
        let e = name.at("embeddings");
        VisionTransformer {
            embeddings: VisionEmbeddings {
                class_embedding: Param::from_tensor(w.get(&e.at("class_embedding"), [d], dev)),
                patch_embedding: Param::from_tensor(w.get(
                    &e.at("patch_embedding.weight"),
                    [d, c.num_channels, p, p],
                    dev,
                )),
                position_embedding: Embedding::load(
                    w,
                    &e.at("position_embedding"),
                    c.num_patches() + 1,
                    d,
                    dev,
                ),
                patch_size: p,
            },
            pre_layrnorm: LayerNorm::load(w, &name.at("pre_layrnorm"), d, eps, dev),
            encoder: Encoder::load(w, &name.at("encoder"), &dims, dev),
            post_layernorm: LayerNorm::load(w, &name.at("post_layernorm"), d, eps, dev),
        }
    }

    /// The class token's state `[n, d]` after `post_layernorm`.
    fn forward(&self, pixels: Tensor<B, 4>) -> Tensor<B, 2> {
        let h = self.pre_layrnorm.forward(self.embeddings.forward(pixels));
        let h = self.encoder.forward(h, None);
        let [n, _, d] = h.dims();
        self.post_layernorm
            .forward(h.narrow(1, 0, 1).reshape([n, d]))
    }

    fn export(&self, name: &Key, out: &mut Export) {
        let e = name.at("embeddings");
        out.put(
            &e.at("class_embedding"),
            &self.embeddings.class_embedding.val(),
        );
        out.put(
            &e.at("patch_embedding.weight"),
            &self.embeddings.patch_embedding.val(),
        );
        self.embeddings
            .position_embedding
            .export(&e.at("position_embedding"), out);
        self.pre_layrnorm.export(&name.at("pre_layrnorm"), out);
        self.encoder.export(&name.at("encoder"), out);
        self.post_layernorm.export(&name.at("post_layernorm"), out);
    }
}

#[derive(Module, Debug)]
pub struct Clip<B: Backend> {
    pub text_model: TextTransformer<B>,
    pub vision_model: VisionTransformer<B>,
    pub visual_projection: Dense<B>,
    pub text_projection: Dense<B>,
    /// The log of the logits' temperature, `[1]` here (a scalar in the checkpoint).
    pub logit_scale: Param<Tensor<B, 1>>,
}

/// Rows divided by their L2 norm.
fn normalise<B: Backend>(x: Tensor<B, 2>) -> Tensor<B, 2> {
    let norm = x.clone().powi_scalar(2).sum_dim(1).sqrt();
    x / norm
}

impl<B: Backend> Clip<B> {
    /// Loads a checkpoint folder (`config.json` + safetensors).
    pub fn load(dir: &Path, dev: &B::Device) -> anyhow::Result<(Self, ClipConfig)> {
        let cfg: ClipConfig = read_config(dir)?;
        let w = Weights::from_folder(dir)?;
        Ok((Self::from_weights(&cfg, w, dev)?, cfg))
    }

    /// The model from named tensors (a random init starts `logit_scale` at
    /// `logit_scale_init_value`).
    pub fn from_weights(c: &ClipConfig, w: Weights, dev: &B::Device) -> anyhow::Result<Self> {
        let (t, v, p) = (&c.text_config, &c.vision_config, c.projection_dim);
        let text_model = TextTransformer::load(&w, &Key::from("text_model"), t, dev);
        let vision_model = VisionTransformer::load(&w, &Key::from("vision_model"), v, dev);
        let visual_projection = Dense::linear(
            &w,
            &Key::from("visual_projection"),
            v.hidden_size,
            p,
            false,
            dev,
        );
        let text_projection = Dense::linear(
            &w,
            &Key::from("text_projection"),
            t.hidden_size,
            p,
            false,
            dev,
        );
        let scale = Tensor::from_floats(
            [w.scalar("logit_scale", c.logit_scale_init_value as f32)],
            dev,
        );
        // Buffers that older checkpoints store.
        w.ignore(|k| k.ends_with("embeddings.position_ids"));
        w.finish()?;
        Ok(Clip {
            text_model,
            vision_model,
            visual_projection,
            text_projection,
            logit_scale: Param::from_tensor(scale),
        })
    }

    /// Projected image features `[n, projection_dim]`, before normalisation.
    pub fn image_features(&self, pixels: Tensor<B, 4>) -> Tensor<B, 2> {
        self.visual_projection
            .forward(self.vision_model.forward(pixels))
    }

    /// Projected text features `[b, projection_dim]`, before normalisation.
    pub fn text_features(&self, ids: Tensor<B, 2, Int>, mask: Tensor<B, 2, Int>) -> Tensor<B, 2> {
        self.text_projection
            .forward(self.text_model.forward(ids, mask))
    }

    /// L2-normalised image embeddings `[n, projection_dim]`.
    pub fn image_embeds(&self, pixels: Tensor<B, 4>) -> Tensor<B, 2> {
        normalise(self.image_features(pixels))
    }

    /// L2-normalised text embeddings `[b, projection_dim]` for right- or left-padded ids.
    pub fn text_embeds(&self, ids: Tensor<B, 2, Int>, mask: Tensor<B, 2, Int>) -> Tensor<B, 2> {
        normalise(self.text_features(ids, mask))
    }

    /// `exp(logit_scale) · image_embeds · text_embedsᵀ`, `[n_images, n_texts]`.
    pub fn logits_from_embeds(&self, image: Tensor<B, 2>, text: Tensor<B, 2>) -> Tensor<B, 2> {
        image.matmul(text.transpose()) * self.logit_scale.val().exp().unsqueeze::<2>()
    }

    /// `[n_images, n_texts]` (its transpose is `logits_per_text`).
    pub fn logits_per_image(
        &self,
        pixels: Tensor<B, 4>,
        ids: Tensor<B, 2, Int>,
        mask: Tensor<B, 2, Int>,
    ) -> Tensor<B, 2> {
        self.logits_from_embeds(self.image_embeds(pixels), self.text_embeds(ids, mask))
    }

    /// The weights in HF layout and names.
    pub fn export(&self) -> Export {
        let mut out = Export::default();
        self.text_model.export(&Key::from("text_model"), &mut out);
        self.vision_model
            .export(&Key::from("vision_model"), &mut out);
        self.visual_projection
            .export(&Key::from("visual_projection"), &mut out);
        self.text_projection
            .export(&Key::from("text_projection"), &mut out);
        // 0-D in the checkpoint (burn has no 0-D tensors).
        let scale = self.logit_scale.val().into_data().convert::<f32>();
        let scale = scale.to_vec::<f32>().expect("f32 data");
        out.tensors
            .insert("logit_scale".to_string(), (Vec::new(), scale));
        out
    }
}

/// CLIP's symmetric contrastive loss for matched pairs (image `i` goes with text `i`): the
/// mean of the cross-entropies over the rows of `logits_per_image` and of its transpose.
pub fn contrastive_loss<B: Backend>(logits_per_image: Tensor<B, 2>) -> Tensor<B, 1> {
    let [n, m] = logits_per_image.dims();
    assert_eq!(n, m, "contrastive loss needs as many texts as images");
    let dev = logits_per_image.device();
    let target = Tensor::<B, 1, Int>::arange(0..n as i64, &dev).reshape([n, 1]);
    let ce = |l: Tensor<B, 2>| log_softmax(l, 1).gather(1, target.clone()).mean().neg();
    (ce(logits_per_image.clone()) + ce(logits_per_image.transpose())) / 2.0
}
