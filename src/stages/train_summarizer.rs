//! `train_summarizer`: stage 5. A T5 learns caption → interaction on the filtered
//! synthetic pairs: source `summarize: ` + caption (random real first names), target the
//! `_` label; batches of right-padded, masked sources and targets, AdamW with linear
//! decay, transformers' loss (mean over target tokens). From an `init` checkpoint folder
//! (the paper: t5-base) or from scratch at the size the parameters give, with the
//! `tokenizer` input. Resumable through exact checkpoints in the work folder.

use super::io::{Pair, optional_input, optional_path, read_jsonl, write_jsonl};
use super::train_tokenizer::backend;
use super::training::Run;
use crate::context::StageContext;
use crate::models::generate::pad_right;
use crate::models::init::{config_bytes, save_folder, t5_config};
use crate::models::t5::{T5, T5Config};
use crate::models::train::{AdamWOptions, LinearSchedule, adamw, clip_grad_norm};
use crate::models::weights::Weights;
use crate::params::ParamSpec;
use crate::registry::{PortSpec, StageKind};
use crate::text::tokenizer::Tokenizer;
use crate::types::ArtifactType;
use anyhow::Context;
use burn::module::AutodiffModule;
use burn::optim::{GradientsParams, Optimizer};
use burn::prelude::*;
use burn::tensor::backend::AutodiffBackend;
use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;
use std::path::PathBuf;

pub struct TrainSummarizer;

impl StageKind for TrainSummarizer {
    fn name(&self) -> &'static str {
        "train_summarizer"
    }
    fn version(&self) -> u32 {
        4
    }
    fn about(&self) -> &'static str {
        "stage 5: trains a T5 summarizer caption → interaction on the filtered pairs"
    }
    fn params(&self) -> Vec<ParamSpec> {
        vec![
            ParamSpec::int("epochs", 3, "passes over the pairs").range(0.0, 10_000.0),
            ParamSpec::int("batch", 8, "pairs per step").range(1.0, 4096.0),
            ParamSpec::float("lr", 5e-5, "AdamW learning rate, decayed linearly to 0")
                .range(0.0, 1.0),
            ParamSpec::int("warmup", 0, "linear warmup")
                .range(0.0, 1e9)
                .unit("steps"),
            ParamSpec::float("weight_decay", 0.0, "AdamW weight decay").range(0.0, 10.0),
            ParamSpec::float("clip", 1.0, "global gradient-norm clip (0: none)").range(0.0, 1e6),
            ParamSpec::int("max_source", 1024, "source tokens kept")
                .range(2.0, 1e6)
                .unit("tokens"),
            ParamSpec::int("max_target", 128, "target tokens kept")
                .range(2.0, 1e6)
                .unit("tokens"),
            ParamSpec::string("prefix", "summarize: ", "text put before each caption"),
            ParamSpec::int("layers", 2, "encoder and decoder blocks (scratch only)")
                .range(1.0, 96.0),
            ParamSpec::int("d_model", 128, "model width (scratch only)").range(8.0, 16384.0),
            ParamSpec::int("heads", 4, "attention heads (scratch only)").range(1.0, 256.0),
            ParamSpec::int("d_ff", 512, "feed-forward width (scratch only)").range(8.0, 65536.0),
            ParamSpec::int(
                "checkpoint_every",
                100,
                "steps between resumable checkpoints",
            )
            .range(1.0, 1e9),
            optional_path(
                "init",
                "a T5 checkpoint folder to fine-tune (its config and tokenizer.json are used; the size parameters and the `tokenizer` input are then ignored)",
            ),
        ]
    }
    fn inputs(&self) -> Vec<PortSpec> {
        vec![
            PortSpec::new(
                "pairs",
                ArtifactType::SyntheticPairs,
                "filtered pairs with their `label` (stage 4)",
            ),
            PortSpec::new(
                "tokenizer",
                ArtifactType::Tokenizer,
                "the tokenizer of a model trained from scratch",
            ),
        ]
    }
    fn outputs(&self) -> Vec<PortSpec> {
        vec![
            PortSpec::new(
                "model",
                ArtifactType::Summarizer,
                "checkpoint folder (config.json, model.safetensors, tokenizer.json)",
            ),
            PortSpec::new("curve", ArtifactType::Curve, "JSONL {step, loss, lr}"),
        ]
    }
    fn run(&self, ctx: &mut StageContext) -> anyhow::Result<()> {
        let kind = backend(ctx)?;
        crate::with_backend!(kind, _B, AD => train::<AD>(ctx))
    }
}

/// The tokenizer file and the config bytes of the model to train.
fn start(ctx: &StageContext) -> anyhow::Result<(PathBuf, Vec<u8>)> {
    if let Some(start) = crate::stages::io::init_checkpoint(ctx)? {
        return Ok(start);
    }
    let tok_path = ctx.input("tokenizer")?.join("tokenizer.json");
    let tok = Tokenizer::load(&tok_path)?;
    let id = |t: &str| {
        tok.token_id(t)
            .with_context(|| format!("the tokenizer has no {t} token"))
    };
    let (eos, pad) = (id("<|endoftext|>")?, id("<pad>")?);
    let p = &ctx.params;
    let (d, heads) = (p.int("d_model") as usize, p.int("heads") as usize);
    anyhow::ensure!(
        d % heads == 0,
        "d_model ({d}) must be a multiple of heads ({heads})"
    );
    let cfg = t5_config(
        tok.vocab_size(),
        p.int("layers") as usize,
        d,
        heads,
        p.int("d_ff") as usize,
        pad,
        eos,
    );
    Ok((tok_path, config_bytes(&cfg)))
}

/// Token ids of `text` ending in `eos` (added unless the tokenizer adds it, as T5's does),
/// cut to `max` tokens keeping the `eos`.
pub(crate) fn encode_eos(
    tok: &Tokenizer,
    text: &str,
    eos: Option<u32>,
    max: usize,
) -> anyhow::Result<Vec<u32>> {
    let mut ids = tok.encode(text)?;
    if let Some(e) = eos
        && ids.last() != Some(&e)
    {
        ids.push(e);
    }
    if ids.len() > max {
        let last = ids[ids.len() - 1];
        ids.truncate(max.saturating_sub(1));
        ids.push(last);
    }
    Ok(ids)
}

fn train<AD: AutodiffBackend>(ctx: &mut StageContext) -> anyhow::Result<()> {
    let dev: AD::Device = Default::default();
    let (tok_path, config) = start(ctx)?;
    let cfg: T5Config =
        serde_json::from_slice(&config).context("the model's config.json is not a T5 config")?;
    let tok = Tokenizer::load(&tok_path)?;
    let p = ctx.params.clone();
    let prefix = p.str("prefix").to_string();
    let (max_s, max_t) = (p.int("max_source") as usize, p.int("max_target") as usize);
    let pairs: Vec<Pair> = read_jsonl(ctx.input("pairs")?)?;
    let mut data: Vec<(Vec<u32>, Vec<u32>)> = Vec::new();
    for pair in &pairs {
        let Some(label) = &pair.label else { continue };
        data.push((
            encode_eos(
                &tok,
                &format!("{prefix}{}", pair.caption),
                cfg.eos_token_id,
                max_s,
            )?,
            encode_eos(&tok, label, cfg.eos_token_id, max_t)?,
        ));
    }
    if data.is_empty() {
        anyhow::ensure!(
            pairs.is_empty(),
            "no pair has a `label`: are these pairs the output of filter_pairs?"
        );
        tracing::warn!("train_summarizer: no pairs to train on; the model stays as initialised");
    }
    let batch = p.int("batch") as usize;
    let per_epoch = data.len().div_ceil(batch).max(1);
    let total = (p.int("epochs") as usize * per_epoch) as u64;
    let sched = LinearSchedule {
        lr: p.float("lr"),
        warmup: p.int("warmup") as usize,
        total: total as usize,
    };
    let total = if data.is_empty() { 0 } else { total };
    let opts = AdamWOptions {
        weight_decay: p.float("weight_decay") as f32,
        ..AdamWOptions::default()
    };
    let fresh = || -> anyhow::Result<T5<AD>> {
        match optional_input(ctx, "init") {
            Some(init) => Ok(T5::<AD>::load(&init, &dev)?.0),
            None => {
                let c = cfg.clone();
                let std = Box::new(move |name: &str| c.init_std(name));
                T5::from_weights(&cfg, Weights::random_by(ctx.seed, std), &dev)
            }
        }
    };
    let mut run = Run::start::<AD>(ctx, "t5", total, fresh, || adamw::<AD, T5<AD>>(opts), &dev)?;
    let clip = p.float("clip");
    let start_id = cfg.decoder_start();
    let pad = cfg.pad_token_id.unwrap_or(0);
    let mut perm: (usize, Vec<usize>) = (usize::MAX, Vec::new());
    while run.step < total {
        let epoch = run.step as usize / per_epoch;
        if perm.0 != epoch {
            let mut v: Vec<usize> = (0..data.len()).collect();
            v.shuffle(&mut ChaCha8Rng::seed_from_u64(
                ctx.seed ^ (epoch as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15),
            ));
            perm = (epoch, v);
        }
        let b = run.step as usize % per_epoch;
        let idx = &perm.1[b * batch..((b + 1) * batch).min(data.len())];
        let sources: Vec<Vec<u32>> = idx.iter().map(|&i| data[i].0.clone()).collect();
        let (ids, mask) = pad_right::<AD>(&sources, pad, &dev)?;
        let width = idx.iter().map(|&i| data[i].1.len()).max().unwrap_or(1);
        let labels: Vec<i64> = idx
            .iter()
            .flat_map(|&i| {
                let t = &data[i].1;
                t.iter()
                    .map(|&x| x as i64)
                    .chain(std::iter::repeat_n(-100, width - t.len()))
            })
            .collect();
        let labels =
            Tensor::<AD, 2, Int>::from_data(TensorData::new(labels, [idx.len(), width]), &dev);
        let loss = run.model.loss(ids, mask, labels, start_id, pad);
        let l: f64 = loss.clone().into_scalar().elem();
        let mut grads = GradientsParams::from_grads(loss.backward(), &run.model);
        if clip > 0.0 {
            clip_grad_norm(&run.model, &mut grads, clip);
        }
        let lr = sched.at(run.step as usize);
        run.model = run.optim.step(lr, run.model, grads);
        run.stepped::<AD>(ctx, l, lr)?;
    }
    let out = ctx.output("model")?.to_path_buf();
    save_folder(&out, &config, &run.model.valid().export(), &tok_path)?;
    write_jsonl(ctx.output("curve")?, &run.curve)?;
    if let Some(l) = run.final_loss(per_epoch) {
        ctx.figure("final_loss", l);
    }
    ctx.figure("steps", total as f64);
    ctx.figure("pairs", data.len() as f64);
    Ok(())
}
