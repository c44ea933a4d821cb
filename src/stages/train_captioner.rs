//! `train_captioner`: stage 8. The captioner learns image features → pseudo-label: targets
//! are the labels without their leading `_ `, wrapped as `<|endoftext|> text
//! <|endoftext|>` and padded with `*`, the loss's ignore index; per-token cross-entropy
//! times the sample weight, averaged over every batch × length position; AdamW (lr 1e-5,
//! betas 0.9/0.999, weight decay 0.1), batches of 16 drawn uniformly at random. Both
//! variants (`clipcap`, `encdec`), from an `init` checkpoint (a ClipCap model in hhi's
//! folder layout) or from scratch at the size the parameters give. Resumable: the
//! batches of step `s` depend only on the seed and `s`, and checkpoints hold the
//! optimizer state, so a killed run ends with the same bytes as an uninterrupted one.

use super::io::{PseudoLabel, optional_input, optional_path, read_jsonl, write_jsonl};
use super::train_tokenizer::backend;
use super::training::Run;
use crate::context::StageContext;
use crate::models::captioner::{Captioner, CaptionerConfig, Variant};
use crate::models::init::{config_bytes, gpt2_config, save_folder};
use crate::models::train::{AdamWOptions, adamw, clip_grad_norm, weighted_token_ce};
use crate::models::weights::Weights;
use crate::params::ParamSpec;
use crate::registry::{PortSpec, StageKind};
use crate::text::tokenizer::Tokenizer;
use crate::types::ArtifactType;
use crate::vision::features::Features;
use anyhow::{Context, bail};
use burn::module::AutodiffModule;
use burn::optim::{GradientsParams, Optimizer};
use burn::prelude::*;
use burn::tensor::backend::AutodiffBackend;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::collections::HashMap;
use std::path::PathBuf;

pub struct TrainCaptioner;

/// The padding token of the targets (the authors' choice), ignored by the loss.
pub const PAD: &str = "*";
pub const EOS: &str = "<|endoftext|>";

impl StageKind for TrainCaptioner {
    fn name(&self) -> &'static str {
        "train_captioner"
    }
    fn version(&self) -> u32 {
        3
    }
    fn about(&self) -> &'static str {
        "stage 8: trains the captioner (CLIP features → ClipCap prefix or EncDec memory → GPT-2) on the pseudo-labels"
    }
    fn params(&self) -> Vec<ParamSpec> {
        vec![
            ParamSpec::string(
                "variant",
                "clipcap",
                "\"clipcap\" (prefix) or \"encdec\" (cross-attention)",
            ),
            ParamSpec::int("steps", 10_000, "optimizer steps").range(0.0, 1e9),
            ParamSpec::int("batch", 16, "items per step, drawn uniformly at random")
                .range(1.0, 65_536.0),
            ParamSpec::float("lr", 1e-5, "AdamW learning rate (constant after warmup)")
                .range(0.0, 1.0),
            ParamSpec::int("warmup", 0, "linear warmup")
                .range(0.0, 1e9)
                .unit("steps"),
            ParamSpec::float("weight_decay", 0.1, "AdamW weight decay").range(0.0, 10.0),
            ParamSpec::float(
                "clip",
                0.0,
                "global gradient-norm clip (0: none, as the paper)",
            )
            .range(0.0, 1e6),
            ParamSpec::int("prefix_length", 10, "ClipCap prefix vectors (scratch only)")
                .range(1.0, 1024.0),
            ParamSpec::int(
                "max_target",
                32,
                "target tokens kept, both <|endoftext|> included",
            )
            .range(3.0, 1e6)
            .unit("tokens"),
            ParamSpec::int("layers", 2, "GPT-2 blocks (scratch only)").range(1.0, 96.0),
            ParamSpec::int("n_embd", 128, "GPT-2 width (scratch only)").range(8.0, 16384.0),
            ParamSpec::int("heads", 4, "GPT-2 attention heads (scratch only)").range(1.0, 256.0),
            ParamSpec::int(
                "checkpoint_every",
                200,
                "steps between resumable checkpoints",
            )
            .range(1.0, 1e9),
            optional_path(
                "init",
                "a captioner checkpoint folder to fine-tune (the paper: ClipCap's COCO model converted to this layout); its config and tokenizer.json are used and the size parameters and `tokenizer` input ignored",
            ),
        ]
    }
    fn inputs(&self) -> Vec<PortSpec> {
        vec![
            PortSpec::new(
                "features",
                ArtifactType::Features,
                "CLIP features of the training images (clip_features)",
            ),
            PortSpec::new(
                "labels",
                ArtifactType::PseudoLabels,
                "pseudo-labels with sample weights (postprocess_labels)",
            ),
            PortSpec::new(
                "tokenizer",
                ArtifactType::Tokenizer,
                "GPT-2's tokenizer for a model trained from scratch",
            ),
        ]
    }
    fn outputs(&self) -> Vec<PortSpec> {
        vec![
            PortSpec::new(
                "model",
                ArtifactType::Captioner,
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

/// The tokenizer and the config bytes of the model to train.
fn start(ctx: &StageContext, features_dim: usize) -> anyhow::Result<(PathBuf, Vec<u8>)> {
    let variant = Variant::parse(ctx.params.str("variant"))?;
    if let Some(init) = optional_input(ctx, "init") {
        let config = std::fs::read(init.join("config.json"))
            .with_context(|| format!("reading {}/config.json", init.display()))?;
        let c: CaptionerConfig = serde_json::from_slice(&config)
            .with_context(|| format!("{}/config.json is not a captioner config", init.display()))?;
        if c.variant != variant {
            bail!(
                "`init` is a {:?} captioner but variant = \"{}\"",
                c.variant,
                ctx.params.str("variant")
            );
        }
        return Ok((init.join("tokenizer.json"), config));
    }
    let tok_path = ctx.input("tokenizer")?.join("tokenizer.json");
    let tok = Tokenizer::load(&tok_path)?;
    let eos = tok
        .token_id(EOS)
        .with_context(|| format!("the tokenizer has no {EOS} token"))?;
    let p = &ctx.params;
    let (d, heads) = (p.int("n_embd") as usize, p.int("heads") as usize);
    if d % heads != 0 {
        bail!("n_embd ({d}) must be a multiple of heads ({heads})");
    }
    let prefix_length = match variant {
        Variant::ClipCap => p.int("prefix_length") as usize,
        Variant::EncDec => 1,
    };
    let positions = prefix_length + p.int("max_target") as usize;
    let gpt2 = gpt2_config(
        tok.vocab_size(),
        positions,
        d,
        p.int("layers") as usize,
        heads,
        eos,
        variant == Variant::EncDec,
    );
    let cfg = serde_json::json!({
        "model_type": "hhi_captioner",
        "variant": variant,
        "prefix_size": features_dim,
        "prefix_length": prefix_length,
        "gpt2": gpt2,
    });
    Ok((tok_path, config_bytes(&cfg)))
}

/// Token ids of one target: `<|endoftext|> text <|endoftext|>`, `text` the label without
/// its leading `_ `, cut to `max` tokens keeping the final `<|endoftext|>`.
pub fn target_ids(tok: &Tokenizer, label: &str, eos: u32, max: usize) -> anyhow::Result<Vec<u32>> {
    let text = label.strip_prefix("_ ").unwrap_or(label);
    let mut ids = vec![eos];
    ids.extend(tok.encode(text)?);
    ids.truncate(max.saturating_sub(1).max(1));
    ids.push(eos);
    Ok(ids)
}

fn train<AD: AutodiffBackend>(ctx: &mut StageContext) -> anyhow::Result<()> {
    let dev: AD::Device = Default::default();
    let feats = Features::read(ctx.input("features")?)?;
    let (tok_path, config) = start(ctx, feats.dim)?;
    let cfg: CaptionerConfig = serde_json::from_slice(&config)
        .context("the model's config.json is not a captioner config")?;
    if cfg.prefix_size != feats.dim {
        bail!(
            "the captioner expects {}-d features, the features are {}-d",
            cfg.prefix_size,
            feats.dim
        );
    }
    let tok = Tokenizer::load(&tok_path)?;
    let eos = tok
        .token_id(EOS)
        .with_context(|| format!("the tokenizer has no {EOS} token"))?;
    let pad = tok
        .token_id(PAD)
        .with_context(|| format!("the tokenizer has no `{PAD}` token (the padding target)"))?;
    let p = ctx.params.clone();
    let max_t = p.int("max_target") as usize;

    let labels: Vec<PseudoLabel> = read_jsonl(ctx.input("labels")?)?;
    let mut row_of: HashMap<&str, usize> = HashMap::new();
    for (i, k) in feats.keys.iter().enumerate() {
        row_of.insert(k.id.as_str(), i);
    }
    let mut missing = Vec::new();
    let mut data: Vec<(usize, Vec<u32>, f32)> = Vec::new();
    for l in &labels {
        match row_of.get(l.id.as_str()) {
            Some(&r) => data.push((r, target_ids(&tok, &l.label, eos, max_t)?, l.weight as f32)),
            None => missing.push(l.id.as_str()),
        }
    }
    if !missing.is_empty() {
        bail!(
            "{} pseudo-labelled items have no image features (first: {}): were the features computed on the same image set?",
            missing.len(),
            missing[..missing.len().min(10)].join(", ")
        );
    }
    // As train_summarizer: an empty upstream (a tiny smoke run) gives an untrained model
    // and a warning, so that what follows still runs.
    let total = if data.is_empty() {
        tracing::warn!(
            "train_captioner: no pseudo-labels to train on; the model stays as initialised"
        );
        0
    } else {
        p.int("steps") as u64
    };
    let batch = p.int("batch") as usize;
    let (lr0, warmup) = (p.float("lr"), p.int("warmup") as u64);
    let lr_at = |s: u64| {
        if s < warmup {
            lr0 * s as f64 / warmup as f64
        } else {
            lr0
        }
    };
    let opts = AdamWOptions {
        weight_decay: p.float("weight_decay") as f32,
        ..AdamWOptions::default()
    };
    let fresh = || -> anyhow::Result<Captioner<AD>> {
        match optional_input(ctx, "init") {
            Some(init) => Ok(Captioner::<AD>::load(&init, &dev)?.0),
            None => Captioner::from_weights(&cfg, Weights::random(ctx.seed, 0.02), &dev),
        }
    };
    let mut run = Run::start::<AD>(
        ctx,
        "captioner",
        total,
        fresh,
        || adamw::<AD, Captioner<AD>>(opts),
        &dev,
    )?;
    ctx.figure("resumed_from_step", run.step as f64);
    let clip = p.float("clip");
    while run.step < total {
        // Uniform sampling with replacement; run.step `s`'s batch depends only on (seed, s).
        let mut rng = ChaCha8Rng::seed_from_u64(ctx.seed);
        rng.set_stream(run.step);
        let idx: Vec<usize> = (0..batch)
            .map(|_| rng.random_range(0..data.len()))
            .collect();
        let width = idx.iter().map(|&i| data[i].1.len()).max().unwrap_or(1);
        let mut flat_f = Vec::with_capacity(batch * feats.dim);
        let mut flat_t = Vec::with_capacity(batch * width);
        let mut w = Vec::with_capacity(batch);
        for &i in &idx {
            let (row, t, wt) = &data[i];
            flat_f.extend_from_slice(feats.row(*row));
            flat_t.extend(t.iter().map(|&x| x as i64));
            flat_t.extend(std::iter::repeat_n(pad as i64, width - t.len()));
            w.push(*wt);
        }
        let f = Tensor::<AD, 2>::from_data(TensorData::new(flat_f, [batch, feats.dim]), &dev);
        let tokens = Tensor::<AD, 2, Int>::from_data(TensorData::new(flat_t, [batch, width]), &dev);
        let wts = Tensor::<AD, 1>::from_data(TensorData::new(w, [batch]), &dev);
        let logits = run.model.logits(f, tokens.clone());
        let loss = weighted_token_ce(logits, run.model.targets(tokens), wts, pad as i64);
        let l: f64 = loss.clone().into_scalar().elem();
        let mut grads = GradientsParams::from_grads(loss.backward(), &run.model);
        if clip > 0.0 {
            clip_grad_norm(&run.model, &mut grads, clip);
        }
        let lr = lr_at(run.step);
        run.model = run.optim.step(lr, run.model, grads);
        run.stepped::<AD>(ctx, l, lr)?;
    }
    let out = ctx.output("model")?.to_path_buf();
    save_folder(&out, &config, &run.model.valid().export(), &tok_path)?;
    write_jsonl(ctx.output("curve")?, &run.curve)?;
    if let Some(l) = run.final_loss(100) {
        ctx.figure("final_loss", l);
    }
    ctx.figure("steps", total as f64);
    ctx.figure("items", data.len() as f64);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::params::Value;
    use crate::stages::io::testing::run_kind;
    use crate::vision::features::Key;

    /// A captioner checkpoint folder from the transformers fixture, with GPT-2's tokenizer.
    fn init_folder(dir: &std::path::Path, variant: &str) -> PathBuf {
        let fx = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
        let to = dir.join(format!("init_{variant}"));
        std::fs::create_dir_all(&to).unwrap();
        for f in ["config.json", "model.safetensors"] {
            std::fs::copy(fx.join(format!("captioner_{variant}")).join(f), to.join(f)).unwrap();
        }
        std::fs::copy(fx.join("gpt2/tokenizer.json"), to.join("tokenizer.json")).unwrap();
        to
    }

    fn inputs(dir: &std::path::Path) -> (PathBuf, PathBuf) {
        let feats = dir.join("feats");
        Features {
            keys: (0..4)
                .map(|i| Key {
                    source: "ww".into(),
                    id: format!("{i}"),
                })
                .collect(),
            dim: 16,
            data: (0..64).map(|i| (i % 7) as f32 / 7.0).collect(),
        }
        .write(&feats)
        .unwrap();
        let labels = dir.join("labels.jsonl");
        let rows: Vec<PseudoLabel> = (0..4)
            .map(|i| PseudoLabel {
                id: format!("{i}"),
                caption: "c".into(),
                label: if i % 2 == 0 {
                    "_ hugging _"
                } else {
                    "_ shaking hands with _"
                }
                .into(),
                weight: 1.0,
            })
            .collect();
        write_jsonl(&labels, &rows).unwrap();
        (feats, labels)
    }

    #[test]
    fn fine_tunes_from_an_init_checkpoint_and_checks_its_variant() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let (feats, labels) = inputs(d);
        let init = init_folder(d, "clipcap");
        let tok = init.clone();
        let (r, fig, out) = run_kind(
            &TrainCaptioner,
            &d.join("run"),
            &[("steps", Value::Int(3)), ("batch", Value::Int(2))],
            &[
                ("features", feats.clone()),
                ("labels", labels.clone()),
                ("tokenizer", tok.clone()),
                ("init", init.clone()),
            ],
        );
        r.unwrap();
        assert_eq!(fig["steps"], 3.0);
        let dev = Default::default();
        let (m, cfg) = Captioner::<crate::models::Cpu>::load(&out["model"], &dev).unwrap();
        assert_eq!(cfg.variant, Variant::ClipCap);
        assert_eq!(m.prefix_length, 3, "the init checkpoint's config is kept");

        let (r, _, _) = run_kind(
            &TrainCaptioner,
            &d.join("run2"),
            &[("variant", Value::Str("encdec".into()))],
            &[
                ("features", feats),
                ("labels", labels),
                ("tokenizer", tok),
                ("init", init),
            ],
        );
        let e = format!("{:#}", r.unwrap_err());
        assert!(e.contains("variant"), "{e}");
    }

    #[test]
    fn labels_without_features_are_an_error_listing_them() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let (feats, _) = inputs(d);
        let labels = d.join("more.jsonl");
        std::fs::write(
            &labels,
            "{\"id\":\"0\",\"caption\":\"c\",\"label\":\"_ hugging _\",\"weight\":1.0}\n\
             {\"id\":\"77\",\"caption\":\"c\",\"label\":\"_ hugging _\",\"weight\":1.0}\n",
        )
        .unwrap();
        let init = init_folder(d, "encdec");
        let (r, _, _) = run_kind(
            &TrainCaptioner,
            &d.join("run"),
            &[("variant", Value::Str("encdec".into()))],
            &[
                ("features", feats),
                ("labels", labels),
                ("tokenizer", init.clone()),
                ("init", init),
            ],
        );
        let e = format!("{:#}", r.unwrap_err());
        assert!(
            e.contains("1 pseudo-labelled items have no image features") && e.contains("77"),
            "{e}"
        );
    }
}
