//! Models built from a size instead of a checkpoint (the toy pipeline's GPT-Neo language
//! model and T5 summarizer), and checkpoint folders written in the Hugging Face layout
//! (`config.json`, `model.safetensors`, `tokenizer.json`) so they open in `transformers`.
//!
//! Configs are built as JSON first and read back through the models' own config types,
//! so the file that is written is exactly the one the model was built from.

use super::weights::Export;
use anyhow::Context;
use serde_json::{Value, json};
use std::path::Path;

/// A GPT-Neo config in transformers' form: `layers` blocks alternating global and local
/// attention (as GPT-Neo 1.3B does), `context` positions, a local window of `window`.
#[allow(clippy::too_many_arguments)]
pub fn gpt_neo_config(
    vocab: usize,
    layers: usize,
    hidden: usize,
    heads: usize,
    context: usize,
    window: usize,
    bos: u32,
    eos: u32,
) -> Value {
    let kinds: Vec<&str> = (0..layers)
        .map(|i| if i % 2 == 0 { "global" } else { "local" })
        .collect();
    // transformers expands `attention_types` ([[pattern, repeats]]) into `attention_layers`.
    let types = if layers.is_multiple_of(2) {
        json!([[["global", "local"], layers / 2]])
    } else {
        json!([[["global", "local"], layers / 2], [["global"], 1]])
    };
    json!({
        "activation_function": "gelu_new",
        "architectures": ["GPTNeoForCausalLM"],
        "attention_dropout": 0.0,
        "attention_layers": kinds,
        "attention_types": types,
        "bos_token_id": bos,
        "embed_dropout": 0.0,
        "eos_token_id": eos,
        "hidden_size": hidden,
        "initializer_range": 0.02,
        "intermediate_size": null,
        "layer_norm_epsilon": 1e-5,
        "max_position_embeddings": context,
        "model_type": "gpt_neo",
        "num_heads": heads,
        "num_layers": layers,
        "resid_dropout": 0.0,
        "tie_word_embeddings": true,
        "use_cache": true,
        "vocab_size": vocab,
        "window_size": window,
    })
}

/// A T5 (v1.0 layout: ReLU feed-forward, tied embeddings) config.
#[allow(clippy::too_many_arguments)]
pub fn t5_config(
    vocab: usize,
    layers: usize,
    d_model: usize,
    heads: usize,
    d_ff: usize,
    pad: u32,
    eos: u32,
) -> Value {
    json!({
        "architectures": ["T5ForConditionalGeneration"],
        "d_ff": d_ff,
        "d_kv": d_model / heads.max(1),
        "d_model": d_model,
        "decoder_start_token_id": pad,
        "dropout_rate": 0.0,
        "eos_token_id": eos,
        "feed_forward_proj": "relu",
        "initializer_factor": 1.0,
        "is_encoder_decoder": true,
        "layer_norm_epsilon": 1e-6,
        "model_type": "t5",
        "num_decoder_layers": layers,
        "num_heads": heads,
        "num_layers": layers,
        "pad_token_id": pad,
        "relative_attention_max_distance": 128,
        "relative_attention_num_buckets": 32,
        "scale_decoder_outputs": true,
        "tie_word_embeddings": true,
        "use_cache": true,
        "vocab_size": vocab,
    })
}

/// The sizes of a CLIP trained from scratch (both towers share width, depth and heads).
#[derive(Debug, Clone, Copy)]
pub struct ClipSize {
    pub vocab: usize,
    pub max_text: usize,
    pub eos: u32,
    pub image_size: usize,
    pub patch_size: usize,
    pub hidden: usize,
    pub layers: usize,
    pub heads: usize,
    pub projection_dim: usize,
}

/// A `CLIPModel` config in transformers' form.
pub fn clip_config(s: &ClipSize) -> Value {
    json!({
        "architectures": ["CLIPModel"],
        "logit_scale_init_value": 2.6592,
        "model_type": "clip",
        "projection_dim": s.projection_dim,
        "text_config": {
            "bos_token_id": s.eos, "eos_token_id": s.eos, "pad_token_id": s.eos,
            "hidden_act": "quick_gelu", "hidden_size": s.hidden,
            "intermediate_size": 4 * s.hidden, "layer_norm_eps": 1e-5,
            "max_position_embeddings": s.max_text, "model_type": "clip_text_model",
            "num_attention_heads": s.heads, "num_hidden_layers": s.layers,
            "projection_dim": s.projection_dim, "vocab_size": s.vocab,
        },
        "vision_config": {
            "hidden_act": "quick_gelu", "hidden_size": s.hidden, "image_size": s.image_size,
            "intermediate_size": 4 * s.hidden, "layer_norm_eps": 1e-5,
            "model_type": "clip_vision_model", "num_attention_heads": s.heads,
            "num_channels": 3, "num_hidden_layers": s.layers, "patch_size": s.patch_size,
            "projection_dim": s.projection_dim,
        },
    })
}

/// A GPT-2 config (`GPT2LMHeadModel`, tied head) with optional cross-attention.
pub fn gpt2_config(
    vocab: usize,
    positions: usize,
    embd: usize,
    layers: usize,
    heads: usize,
    eos: u32,
    cross: bool,
) -> Value {
    json!({
        "activation_function": "gelu_new",
        "add_cross_attention": cross,
        "architectures": ["GPT2LMHeadModel"],
        "attn_pdrop": 0.0,
        "bos_token_id": eos,
        "embd_pdrop": 0.0,
        "eos_token_id": eos,
        "initializer_range": 0.02,
        "layer_norm_epsilon": 1e-5,
        "model_type": "gpt2",
        "n_embd": embd,
        "n_head": heads,
        "n_inner": null,
        "n_layer": layers,
        "n_positions": positions,
        "resid_pdrop": 0.0,
        "tie_word_embeddings": true,
        "vocab_size": vocab,
    })
}

/// Writes a checkpoint folder: `config.json` (the given bytes), `model.safetensors`, and
/// `tokenizer.json` copied from `tokenizer` (a file, or a folder holding one).
pub fn save_folder(
    dir: &Path,
    config: &[u8],
    weights: &Export,
    tokenizer: &Path,
) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    std::fs::write(dir.join("config.json"), config)
        .with_context(|| format!("writing {}/config.json", dir.display()))?;
    weights.save(&dir.join("model.safetensors"))?;
    let tok = if tokenizer.is_dir() {
        tokenizer.join("tokenizer.json")
    } else {
        tokenizer.to_path_buf()
    };
    std::fs::copy(&tok, dir.join("tokenizer.json"))
        .with_context(|| format!("copying {}", tok.display()))?;
    Ok(())
}

/// A config as the bytes written to `config.json` (keys sorted, so equal configs hash
/// equally).
pub fn config_bytes(config: &Value) -> Vec<u8> {
    let mut b = serde_json::to_vec_pretty(config).unwrap_or_default();
    b.push(b'\n');
    b
}
