//! `train_lm`: causal-LM training of a GPT-Neo, from scratch at a size given by the
//! parameters (the toy pipeline's stand-in for GPT-Neo 1.3B) or fine-tuning a checkpoint
//! folder given as the `init` input.
//!
//! The corpus is tokenized, each document followed by `<|endoftext|>`, concatenated and
//! cut into blocks of `seq_len` tokens; each epoch visits the blocks in a seeded random
//! order. Every `checkpoint_every` steps the model, the optimizer state and the curve so
//! far go to the work folder, so a killed run resumes at that step and ends with the same
//! bytes as an uninterrupted one.

use super::io::{Doc, optional_input, optional_path, read_jsonl, write_jsonl};
use super::train_tokenizer::backend;
use super::training::Run;
use crate::context::StageContext;
use crate::models::gpt_neo::{GptNeo, GptNeoConfig};
use crate::models::init::{config_bytes, gpt_neo_config, save_folder};
use crate::models::train::{AdamWOptions, LinearSchedule, adamw, causal_lm_loss, clip_grad_norm};
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
use std::path::{Path, PathBuf};

pub struct TrainLm;

impl StageKind for TrainLm {
    fn name(&self) -> &'static str {
        "train_lm"
    }
    fn version(&self) -> u32 {
        3
    }
    fn about(&self) -> &'static str {
        "trains a GPT-Neo causal LM on a corpus: from scratch at a given size, or fine-tuning an `init` checkpoint"
    }
    fn params(&self) -> Vec<ParamSpec> {
        vec![
            ParamSpec::int("layers", 2, "transformer blocks (scratch only)").range(1.0, 96.0),
            ParamSpec::int("hidden", 128, "hidden size (scratch only)").range(8.0, 16384.0),
            ParamSpec::int("heads", 4, "attention heads (scratch only)").range(1.0, 256.0),
            ParamSpec::int("context", 512, "position embeddings (scratch only)")
                .range(16.0, 65536.0)
                .unit("tokens"),
            ParamSpec::int("window", 256, "local attention window (scratch only)")
                .range(1.0, 65536.0)
                .unit("tokens"),
            ParamSpec::int("seq_len", 256, "training block length")
                .range(8.0, 65536.0)
                .unit("tokens"),
            ParamSpec::int("batch", 8, "blocks per step").range(1.0, 4096.0),
            ParamSpec::float("epochs", 1.0, "passes over the corpus").range(0.0, 1000.0),
            ParamSpec::int("max_steps", 0, "stop after this many steps (0: no cap)")
                .range(0.0, 1e9),
            ParamSpec::float("lr", 1e-3, "peak learning rate").range(0.0, 1.0),
            ParamSpec::int("warmup", 30, "linear warmup")
                .range(0.0, 1e9)
                .unit("steps"),
            ParamSpec::float("weight_decay", 0.01, "AdamW weight decay").range(0.0, 10.0),
            ParamSpec::float("clip", 1.0, "global gradient-norm clip (0: none)").range(0.0, 1e6),
            ParamSpec::int("max_docs", 0, "use the first N documents only (0: all)")
                .range(0.0, 1e12),
            ParamSpec::int(
                "checkpoint_every",
                100,
                "steps between resumable checkpoints",
            )
            .range(1.0, 1e9),
            optional_path(
                "init",
                "a GPT-Neo checkpoint folder to fine-tune (its config and tokenizer.json are used; the size parameters and the `tokenizer` input are then ignored)",
            ),
        ]
    }
    fn inputs(&self) -> Vec<PortSpec> {
        vec![
            PortSpec::new(
                "corpus",
                ArtifactType::Corpus,
                "training documents {id, text}",
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
                ArtifactType::CausalLm,
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

/// Where the model starts: a checkpoint folder (`init`) or a fresh model of the given size.
fn start(ctx: &StageContext) -> anyhow::Result<(PathBuf, Vec<u8>)> {
    if let Some(start) = crate::stages::io::init_checkpoint(ctx)? {
        return Ok(start);
    }
    let tok_path = ctx.input("tokenizer")?.join("tokenizer.json");
    let tok = Tokenizer::load(&tok_path)?;
    let eos = tok
        .token_id("<|endoftext|>")
        .context("the tokenizer has no <|endoftext|> token")?;
    let p = &ctx.params;
    let (hidden, heads) = (p.int("hidden") as usize, p.int("heads") as usize);
    anyhow::ensure!(
        hidden % heads == 0,
        "hidden ({hidden}) must be a multiple of heads ({heads})"
    );
    let cfg = gpt_neo_config(
        tok.vocab_size(),
        p.int("layers") as usize,
        hidden,
        heads,
        p.int("context") as usize,
        p.int("window") as usize,
        eos,
        eos,
    );
    Ok((tok_path, config_bytes(&cfg)))
}

/// Token blocks of `seq_len` from the documents, each followed by the end-of-text token.
fn blocks(docs: &[Doc], tok: &Tokenizer, seq_len: usize) -> anyhow::Result<Vec<Vec<u32>>> {
    let eos = tok.token_id("<|endoftext|>");
    let mut stream: Vec<u32> = Vec::new();
    for d in docs {
        stream.extend(tok.encode(&d.text)?);
        stream.extend(eos);
    }
    Ok(stream.chunks_exact(seq_len).map(|c| c.to_vec()).collect())
}

/// The blocks of step `step`: sample `i` is block `perm_e[i mod n]` of epoch `e = i / n`.
fn batch_at(
    seed: u64,
    n: usize,
    batch: usize,
    step: u64,
    perms: &mut Vec<Vec<usize>>,
) -> Vec<usize> {
    (0..batch)
        .map(|j| {
            let i = step as usize * batch + j;
            let e = i / n;
            while perms.len() <= e {
                let mut p: Vec<usize> = (0..n).collect();
                p.shuffle(&mut ChaCha8Rng::seed_from_u64(
                    seed ^ (perms.len() as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15),
                ));
                perms.push(p);
            }
            perms[e][i % n]
        })
        .collect()
}

pub(crate) fn ids_tensor<B: Backend>(rows: &[&Vec<u32>], dev: &B::Device) -> Tensor<B, 2, Int> {
    let t = rows[0].len();
    let flat: Vec<i64> = rows
        .iter()
        .flat_map(|r| r.iter().map(|&x| x as i64))
        .collect();
    Tensor::from_data(TensorData::new(flat, [rows.len(), t]), dev)
}

fn train<AD: AutodiffBackend>(ctx: &mut StageContext) -> anyhow::Result<()> {
    let dev: AD::Device = Default::default();
    let (tok_path, config) = start(ctx)?;
    let cfg: GptNeoConfig = serde_json::from_slice(&config)
        .context("the model's config.json is not a GPT-Neo config")?;
    let tok = Tokenizer::load(&tok_path)?;
    let p = ctx.params.clone();
    let seq_len = (p.int("seq_len") as usize).min(cfg.max_position_embeddings);
    let max_docs = p.int("max_docs") as usize;
    let mut docs: Vec<Doc> = read_jsonl(ctx.input("corpus")?)?;
    if max_docs > 0 {
        docs.truncate(max_docs);
    }
    let data = blocks(&docs, &tok, seq_len)?;
    anyhow::ensure!(
        !data.is_empty(),
        "the corpus is shorter than one block of {seq_len} tokens"
    );
    let batch = p.int("batch") as usize;
    let mut total = ((p.float("epochs") * data.len() as f64) / batch as f64).ceil() as u64;
    if p.int("max_steps") > 0 {
        total = total.min(p.int("max_steps") as u64);
    }
    let total = total.max(1);
    let sched = LinearSchedule {
        lr: p.float("lr"),
        warmup: p.int("warmup") as usize,
        total: total as usize,
    };
    let opts = AdamWOptions {
        weight_decay: p.float("weight_decay") as f32,
        ..AdamWOptions::default()
    };
    let fresh = || -> anyhow::Result<GptNeo<AD>> {
        match optional_input(ctx, "init") {
            Some(init) => Ok(GptNeo::<AD>::load(&init, &dev)?.0),
            None => GptNeo::from_weights(&cfg, Weights::random(ctx.seed, 0.02), &dev),
        }
    };
    let mut run = Run::start::<AD>(
        ctx,
        "lm",
        total,
        fresh,
        || adamw::<AD, GptNeo<AD>>(opts),
        &dev,
    )?;
    let mut perms = Vec::new();
    let clip = p.float("clip");
    while run.step < total {
        let idx = batch_at(ctx.seed, data.len(), batch, run.step, &mut perms);
        let rows: Vec<&Vec<u32>> = idx.iter().map(|&i| &data[i]).collect();
        let x = ids_tensor::<AD>(&rows, &dev);
        let loss = causal_lm_loss(run.model.forward(x.clone(), None), x);
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
    if let Some(l) = run.final_loss(20) {
        ctx.figure("final_loss", l);
    }
    ctx.figure("steps", total as f64);
    ctx.figure("blocks", data.len() as f64);
    ctx.figure("tokens", (data.len() * seq_len) as f64);
    Ok(())
}

/// A checkpoint folder's GPT-Neo, its config and tokenizer (for the generating stages).
pub(crate) fn load_lm<B: Backend>(
    dir: &Path,
    dev: &B::Device,
) -> anyhow::Result<(GptNeo<B>, GptNeoConfig, Tokenizer)> {
    let (model, cfg) = GptNeo::<B>::load(dir, dev)
        .with_context(|| format!("loading the language model in {}", dir.display()))?;
    let tok = Tokenizer::load(dir)?;
    Ok((model, cfg, tok))
}
