//! `pretrain_clip`: a small CLIP learns image ↔ caption matching contrastively on
//! image-caption pairs (the toy world's web-style pairs, as OpenAI's CLIP learned from web
//! alt-text). It stands in for OpenAI's CLIP, which cannot be downloaded here; with a real
//! checkpoint the pipeline wires that checkpoint into `clip_features` instead. Resumable
//! through exact checkpoints in the work folder.

use super::io::{TableItem, read_jsonl, write_jsonl};
use super::train_tokenizer::backend;
use super::training::Run;
use crate::context::StageContext;
use crate::models::clip::{Clip, ClipConfig, contrastive_loss};
use crate::models::generate::pad_right;
use crate::models::init::{ClipSize, clip_config, config_bytes, save_folder};
use crate::models::train::{AdamWOptions, LinearSchedule, adamw, clip_grad_norm};
use crate::models::weights::Weights;
use crate::params::ParamSpec;
use crate::registry::{PortSpec, StageKind};
use crate::text::tokenizer::Tokenizer;
use crate::types::ArtifactType;
use crate::vision::images::{pixels, preprocessor_json};
use crate::vision::preprocess::ClipImageConfig;
use anyhow::{Context, bail};
use burn::module::AutodiffModule;
use burn::optim::{GradientsParams, Optimizer};
use burn::prelude::*;
use burn::tensor::backend::AutodiffBackend;
use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;

pub struct PretrainClip;

impl StageKind for PretrainClip {
    fn name(&self) -> &'static str {
        "pretrain_clip"
    }
    fn version(&self) -> u32 {
        3
    }
    fn about(&self) -> &'static str {
        "trains a small CLIP contrastively on the training split's image-caption pairs (stands in for OpenAI CLIP)"
    }
    fn params(&self) -> Vec<ParamSpec> {
        vec![
            ParamSpec::int("epochs", 10, "passes over the pairs").range(0.0, 10_000.0),
            ParamSpec::int("batch", 64, "pairs per step (the contrastive negatives)")
                .range(2.0, 65_536.0),
            ParamSpec::float("lr", 1e-3, "AdamW learning rate, decayed linearly to 0")
                .range(0.0, 1.0),
            ParamSpec::int("warmup", 100, "linear warmup")
                .range(0.0, 1e9)
                .unit("steps"),
            ParamSpec::float("weight_decay", 0.1, "AdamW weight decay").range(0.0, 10.0),
            ParamSpec::float("clip", 1.0, "global gradient-norm clip (0: none)").range(0.0, 1e6),
            ParamSpec::float(
                "init_std",
                0.0,
                "standard deviation of every initial matrix (0: transformers' per-layer CLIP init)",
            )
            .range(0.0, 10.0),
            ParamSpec::int("image_size", 64, "the vision tower's input side")
                .range(8.0, 1024.0)
                .unit("pixels"),
            ParamSpec::int("patch_size", 8, "ViT patch side")
                .range(1.0, 1024.0)
                .unit("pixels"),
            ParamSpec::int("hidden", 128, "width of both towers").range(8.0, 8192.0),
            ParamSpec::int("layers", 2, "blocks per tower").range(1.0, 96.0),
            ParamSpec::int("heads", 4, "attention heads").range(1.0, 256.0),
            ParamSpec::int(
                "projection_dim",
                64,
                "joint embedding size (the features' size)",
            )
            .range(2.0, 8192.0),
            ParamSpec::int("max_text", 64, "caption tokens kept (with the end token)")
                .range(2.0, 4096.0)
                .unit("tokens"),
            ParamSpec::int(
                "checkpoint_every",
                100,
                "steps between resumable checkpoints",
            )
            .range(1.0, 1e9),
        ]
    }
    fn inputs(&self) -> Vec<PortSpec> {
        vec![
            PortSpec::new(
                "pairs",
                ArtifactType::Table,
                "image-caption pairs: items.jsonl {id, caption, image} and images/ (toy_world's `web`); never the benchmark",
            ),
            PortSpec::new(
                "tokenizer",
                ArtifactType::Tokenizer,
                "the text tower's tokenizer (needs an <|endoftext|> token)",
            ),
        ]
    }
    fn outputs(&self) -> Vec<PortSpec> {
        vec![
            PortSpec::new(
                "model",
                ArtifactType::ImageEncoder,
                "CLIP checkpoint folder (config.json, model.safetensors, tokenizer.json, preprocessor_config.json)",
            ),
            PortSpec::new("curve", ArtifactType::Curve, "JSONL {step, loss, lr}"),
        ]
    }
    fn run(&self, ctx: &mut StageContext) -> anyhow::Result<()> {
        let kind = backend(ctx)?;
        crate::with_backend!(kind, _B, AD => train::<AD>(ctx))
    }
}

fn int(ctx: &StageContext, name: &str) -> usize {
    ctx.params.int(name) as usize
}

fn train<AD: AutodiffBackend>(ctx: &mut StageContext) -> anyhow::Result<()> {
    let dev: AD::Device = Default::default();
    let tok_path = ctx.input("tokenizer")?.join("tokenizer.json");
    let tok = Tokenizer::load(&tok_path)?;
    let eos = tok
        .token_id("<|endoftext|>")
        .context("the tokenizer has no <|endoftext|> token (the text tower pools there)")?;
    let size = ClipSize {
        vocab: tok.vocab_size(),
        max_text: int(ctx, "max_text"),
        eos,
        image_size: int(ctx, "image_size"),
        patch_size: int(ctx, "patch_size"),
        hidden: int(ctx, "hidden"),
        layers: int(ctx, "layers"),
        heads: int(ctx, "heads"),
        projection_dim: int(ctx, "projection_dim"),
    };
    if !size.image_size.is_multiple_of(size.patch_size) {
        bail!(
            "image_size ({}) must be a multiple of patch_size ({})",
            size.image_size,
            size.patch_size
        );
    }
    if !size.hidden.is_multiple_of(size.heads) {
        bail!(
            "hidden ({}) must be a multiple of heads ({})",
            size.hidden,
            size.heads
        );
    }
    let config = config_bytes(&clip_config(&size));
    let cfg: ClipConfig = serde_json::from_slice(&config)?;

    let table = ctx.input("pairs")?.to_path_buf();
    let rows: Vec<TableItem> = read_jsonl(&table.join("items.jsonl"))?;
    let pairs: Vec<(std::path::PathBuf, &str)> = rows
        .iter()
        .filter(|r| !r.image.is_empty() && !r.caption.trim().is_empty())
        .map(|r| (table.join(&r.image), r.caption.as_str()))
        .collect();
    let skipped = rows.len() - pairs.len();
    if pairs.len() < 2 {
        bail!(
            "{}: {} pairs with an image and a caption: contrastive training needs at least 2",
            table.display(),
            pairs.len()
        );
    }
    let img_cfg = ClipImageConfig::square(size.image_size);
    ctx.progress().set_message("preprocessing images");
    let paths: Vec<&std::path::Path> = pairs.iter().map(|p| p.0.as_path()).collect();
    let px = pixels(&paths, &img_cfg)?;
    let texts: Vec<Vec<u32>> = pairs
        .iter()
        .map(|p| {
            let mut ids = tok.encode(p.1)?;
            ids.truncate(size.max_text - 1);
            ids.push(eos);
            Ok(ids)
        })
        .collect::<anyhow::Result<_>>()?;
    let n = pairs.len();
    let per_image = 3 * size.image_size * size.image_size;

    let p = ctx.params.clone();
    let batch = int(ctx, "batch").min(n);
    let per_epoch = n / batch; // full batches only: the loss's negatives stay comparable
    let total = (p.int("epochs") as usize * per_epoch) as u64;
    let sched = LinearSchedule {
        lr: p.float("lr"),
        warmup: int(ctx, "warmup"),
        total: total as usize,
    };
    let opts = AdamWOptions {
        weight_decay: p.float("weight_decay") as f32,
        ..AdamWOptions::default()
    };
    let init_std = p.float("init_std") as f32;
    let fresh = || {
        let c = cfg.clone();
        let std = Box::new(move |name: &str| {
            if init_std > 0.0 {
                init_std
            } else {
                c.init_std(name)
            }
        });
        Clip::<AD>::from_weights(&cfg, Weights::random_by(ctx.seed, std), &dev)
    };
    let mut run = Run::start::<AD>(
        ctx,
        "clip",
        total,
        fresh,
        || adamw::<AD, Clip<AD>>(opts),
        &dev,
    )?;
    let clip = p.float("clip");
    let mut perm: (usize, Vec<usize>) = (usize::MAX, Vec::new());
    while run.step < total {
        let epoch = run.step as usize / per_epoch;
        if perm.0 != epoch {
            let mut v: Vec<usize> = (0..n).collect();
            v.shuffle(&mut ChaCha8Rng::seed_from_u64(
                ctx.seed ^ (epoch as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15),
            ));
            perm = (epoch, v);
        }
        let b = run.step as usize % per_epoch;
        let idx = &perm.1[b * batch..(b + 1) * batch];
        let mut flat = Vec::with_capacity(batch * per_image);
        for &i in idx {
            flat.extend_from_slice(&px[i * per_image..(i + 1) * per_image]);
        }
        let images = Tensor::<AD, 4>::from_data(
            TensorData::new(flat, [batch, 3, size.image_size, size.image_size]),
            &dev,
        );
        let rows: Vec<Vec<u32>> = idx.iter().map(|&i| texts[i].clone()).collect();
        let (ids, mask) = pad_right::<AD>(&rows, eos, &dev)?;
        let loss = contrastive_loss(run.model.logits_per_image(images, ids, mask));
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
    std::fs::write(
        out.join("preprocessor_config.json"),
        config_bytes(&preprocessor_json(&img_cfg)),
    )?;
    write_jsonl(ctx.output("curve")?, &run.curve)?;
    if let Some(l) = run.final_loss(per_epoch) {
        ctx.figure("final_loss", l);
    }
    ctx.figure("chance_loss", (batch as f64).ln());
    ctx.figure("steps", total as f64);
    ctx.figure("pairs", n as f64);
    ctx.figure("skipped_rows", skipped as f64);
    Ok(())
}
