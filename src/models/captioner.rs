//! The image captioners of the paper (stage 8): a frozen CLIP image tower's projected
//! features feed GPT-2, either as a ClipCap prefix (`clipcap`: MLP with tanh →
//! `prefix_length` vectors before the tokens) or as one memory token that new
//! cross-attention layers attend to (`encdec`: Linear → memory).
//!
//! The checkpoint folder holds `config.json` (`variant`, `prefix_size`, `prefix_length`
//! and the GPT-2 config under `gpt2`), `model.safetensors` with ClipCap's key names
//! (`clip_project.model.0/2.*` or `clip_project.*`, `gpt.transformer.*`), so a ClipCap
//! checkpoint converted to safetensors loads as it is, and `tokenizer.json`.

use super::generate::EmbedsDecoder;
use super::gpt2::{Gpt2, Gpt2Config};
use super::nn::Dense;
use super::weights::{Export, Key, Weights, read_config};
use anyhow::bail;
use burn::prelude::*;
use serde::{Deserialize, Serialize};
use std::path::Path;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Variant {
    ClipCap,
    EncDec,
}

impl Variant {
    pub fn parse(s: &str) -> anyhow::Result<Variant> {
        match s {
            "clipcap" => Ok(Variant::ClipCap),
            "encdec" => Ok(Variant::EncDec),
            other => bail!("unknown captioner variant `{other}`: use \"clipcap\" or \"encdec\""),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CaptionerConfig {
    pub variant: Variant,
    /// The CLIP feature size (ViT-B/32: 512).
    pub prefix_size: usize,
    /// ClipCap's prefix vectors (the paper: 10); `encdec` always uses one memory token.
    pub prefix_length: usize,
    pub gpt2: Gpt2Config,
}

impl CaptionerConfig {
    fn check(&self) -> anyhow::Result<()> {
        let cross = self.gpt2.add_cross_attention;
        match self.variant {
            Variant::ClipCap if cross => {
                bail!("a clipcap captioner's GPT-2 must not have cross-attention layers")
            }
            Variant::EncDec if !cross => {
                bail!("an encdec captioner's GPT-2 needs add_cross_attention = true")
            }
            Variant::ClipCap if self.prefix_length == 0 => {
                bail!("prefix_length must be at least 1")
            }
            _ => Ok(()),
        }
    }

    /// ClipCap's MLP hidden width: half of the prefix's total size.
    pub fn hidden(&self) -> usize {
        self.gpt2.n_embd * self.prefix_length / 2
    }
}

#[derive(Module, Debug)]
pub struct Captioner<B: Backend> {
    /// `clipcap`: the two Linear layers of the MLP (tanh between them); `encdec`: one.
    pub clip_project: Vec<Dense<B>>,
    pub gpt: Gpt2<B>,
    pub prefix_length: usize,
}

impl<B: Backend> Captioner<B> {
    pub fn load(dir: &Path, dev: &B::Device) -> anyhow::Result<(Self, CaptionerConfig)> {
        let cfg: CaptionerConfig = read_config(dir)?;
        let w = Weights::from_folder(dir)?;
        Ok((Self::from_weights(&cfg, w, dev)?, cfg))
    }

    pub fn from_weights(c: &CaptionerConfig, w: Weights, dev: &B::Device) -> anyhow::Result<Self> {
        c.check()?;
        let w = w.strip_prefix("gpt.");
        let (f, d) = (c.prefix_size, c.gpt2.n_embd);
        let clip_project = match c.variant {
            Variant::ClipCap => vec![
                Dense::linear(
                    &w,
                    &Key::from("clip_project.model.0"),
                    f,
                    c.hidden(),
                    true,
                    dev,
                ),
                Dense::linear(
                    &w,
                    &Key::from("clip_project.model.2"),
                    c.hidden(),
                    d * c.prefix_length,
                    true,
                    dev,
                ),
            ],
            Variant::EncDec => vec![Dense::linear(
                &w,
                &Key::from("clip_project"),
                f,
                d,
                true,
                dev,
            )],
        };
        let gpt = Gpt2::build(&c.gpt2, &w, dev);
        Gpt2::<B>::ignore_buffers(&c.gpt2, &w);
        w.finish()?;
        Ok(Captioner {
            clip_project,
            gpt,
            prefix_length: match c.variant {
                Variant::ClipCap => c.prefix_length,
                Variant::EncDec => 0,
            },
        })
    }

    pub fn variant(&self) -> Variant {
        if self.prefix_length > 0 {
            Variant::ClipCap
        } else {
            Variant::EncDec
        }
    }

    /// The image conditioning `[n, prefix_length or 1, d]` from features `[n, prefix_size]`.
    pub fn conditioning(&self, features: Tensor<B, 2>) -> Tensor<B, 3> {
        let n = features.dims()[0];
        let d = self.gpt.wte.weight.val().dims()[1];
        match self.variant() {
            Variant::ClipCap => {
                let h = self.clip_project[0].forward(features).tanh();
                self.clip_project[1]
                    .forward(h)
                    .reshape([n, self.prefix_length, d])
            }
            Variant::EncDec => self.clip_project[0].forward(features).reshape([n, 1, d]),
        }
    }

    /// Teacher-forced logits `[b, t, vocab]` for targets `tokens` `[b, t]` (each row
    /// `<|endoftext|> text <|endoftext|>` then padding). `clipcap` (ClipCap's training): the
    /// prefix's last position predicts `tokens[0]` and so on, all `t` positions. `encdec`:
    /// `tokens[0]` is the start token and position `i` predicts `tokens[i + 1]`; the last
    /// position predicts nothing and its logits are dropped, so `t - 1` positions come out.
    pub fn logits(&self, features: Tensor<B, 2>, tokens: Tensor<B, 2, Int>) -> Tensor<B, 3> {
        let cond = self.conditioning(features);
        let [_, t] = tokens.dims();
        let x = self.gpt.embed(tokens);
        match self.variant() {
            Variant::ClipCap => {
                let p = self.prefix_length;
                let all = self
                    .gpt
                    .forward_embeds(Tensor::cat(vec![cond, x], 1), None, None);
                all.narrow(1, p - 1, t)
            }
            Variant::EncDec => {
                let all = self.gpt.forward_embeds(x, Some(&cond), None);
                all.narrow(1, 0, t - 1)
            }
        }
    }

    /// The targets that [`Self::logits`] scores, `[b, t]` or `[b, t - 1]`.
    pub fn targets(&self, tokens: Tensor<B, 2, Int>) -> Tensor<B, 2, Int> {
        match self.variant() {
            Variant::ClipCap => tokens,
            Variant::EncDec => {
                let t = tokens.dims()[1];
                tokens.narrow(1, 1, t - 1)
            }
        }
    }

    /// A decoder for generation conditioned on `features` `[n, prefix_size]`, one prompt
    /// row per image.
    pub fn decoder(&self, features: Tensor<B, 2>) -> anyhow::Result<EmbedsDecoder<'_, B>> {
        let cond = self.conditioning(features);
        match self.variant() {
            Variant::ClipCap => EmbedsDecoder::with_prefix(&self.gpt, cond),
            Variant::EncDec => EmbedsDecoder::with_memory(&self.gpt, cond),
        }
    }

    /// The weights in ClipCap's names.
    pub fn export(&self) -> Export {
        let mut out = Export::default();
        match self.variant() {
            Variant::ClipCap => {
                self.clip_project[0].export(&Key::from("clip_project.model.0"), &mut out);
                self.clip_project[1].export(&Key::from("clip_project.model.2"), &mut out);
            }
            Variant::EncDec => self.clip_project[0].export(&Key::from("clip_project"), &mut out),
        }
        for (k, v) in self.gpt.export().tensors {
            out.tensors.insert(format!("gpt.{k}"), v);
        }
        out
    }
}
