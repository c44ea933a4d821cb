//! `predict`: stage 9. The paper's beam search over every image of a feature set: width
//! 32, at most 20 tokens, score = sum of token log-probs (no length normalisation), a beam
//! ends at `<|endoftext|>`; the top 8 beams are kept with their scores, each written as
//! `_ ` + text. Images are decoded in batches; each image's beams equal its search alone.

use super::train_captioner::EOS;
use super::train_tokenizer::backend;
use crate::context::StageContext;
use crate::models::captioner::Captioner;
use crate::models::generate::paper_beam_batch;
use crate::params::ParamSpec;
use crate::registry::{PortSpec, StageKind};
use crate::text::eval::{Beam, PredictionRecord};
use crate::text::tokenizer::Tokenizer;
use crate::types::ArtifactType;
use crate::vision::features::Features;
use anyhow::{Context, bail};
use burn::prelude::*;

pub struct Predict;

impl StageKind for Predict {
    fn name(&self) -> &'static str {
        "predict"
    }
    fn version(&self) -> u32 {
        4
    }
    fn about(&self) -> &'static str {
        "stage 9: the paper's beam search for every image: top beams with their summed log-probs"
    }
    fn params(&self) -> Vec<ParamSpec> {
        vec![
            ParamSpec::int("beam", 32, "beam width").range(1.0, 4096.0),
            ParamSpec::int("max_tokens", 20, "new tokens at most")
                .range(1.0, 4096.0)
                .unit("tokens"),
            ParamSpec::int("top", 8, "beams kept per image").range(1.0, 4096.0),
            ParamSpec::int("batch", 16, "images decoded together").range(1.0, 65_536.0),
        ]
    }
    fn inputs(&self) -> Vec<PortSpec> {
        vec![
            PortSpec::new("model", ArtifactType::Captioner, "the trained captioner"),
            PortSpec::new(
                "features",
                ArtifactType::Features,
                "CLIP features of the images to caption (clip_features)",
            ),
        ]
    }
    fn outputs(&self) -> Vec<PortSpec> {
        vec![PortSpec::new(
            "predictions",
            ArtifactType::Predictions,
            "JSONL {source, id, beams: [{text, score}]}, best first, in the features' order",
        )]
    }
    fn run(&self, ctx: &mut StageContext) -> anyhow::Result<()> {
        let kind = backend(ctx)?;
        crate::with_backend!(kind, B, _AD => run::<B>(ctx))
    }
}

fn run<B: Backend>(ctx: &mut StageContext) -> anyhow::Result<()> {
    let dev: B::Device = Default::default();
    let dir = ctx.input("model")?.to_path_buf();
    let (model, cfg) = Captioner::<B>::load(&dir, &dev)?;
    let tok = Tokenizer::load(&dir.join("tokenizer.json"))?;
    let eos = tok
        .token_id(EOS)
        .with_context(|| format!("the captioner's tokenizer has no {EOS} token"))?;
    let feats = Features::read(ctx.input("features")?)?;
    if feats.dim != cfg.prefix_size {
        bail!(
            "the captioner expects {}-d features, these are {}-d: were they made with the same CLIP?",
            cfg.prefix_size,
            feats.dim
        );
    }
    let p = &ctx.params;
    let (width, max_new, top, batch) = (
        p.int("beam") as usize,
        p.int("max_tokens") as usize,
        p.int("top") as usize,
        p.int("batch") as usize,
    );
    let n = feats.keys.len();
    let mut out = Vec::with_capacity(n);
    ctx.progress().start(n as u64, "images");
    let mut ended = 0usize;
    for start in (0..n).step_by(batch) {
        let rows = (n - start).min(batch);
        let f = Tensor::<B, 2>::from_data(
            TensorData::new(
                feats.data[start * feats.dim..(start + rows) * feats.dim].to_vec(),
                [rows, feats.dim],
            ),
            &dev,
        );
        let dec = model.decoder(f)?;
        let prompts = vec![vec![eos]; rows];
        let hyps = paper_beam_batch(&dec, &prompts, width, max_new, eos, top, &dev)?;
        for (k, hs) in feats.keys[start..start + rows].iter().zip(hyps) {
            let beams = hs
                .into_iter()
                .map(|h| {
                    let mut t = h.tokens;
                    if t.last() == Some(&eos) {
                        t.pop();
                        ended += 1;
                    }
                    let text = tok.decode(&t)?;
                    Ok(Beam {
                        text: format!("_ {}", text.trim()),
                        score: Some(h.score),
                    })
                })
                .collect::<anyhow::Result<Vec<_>>>()?;
            out.push(PredictionRecord {
                source: k.source.clone(),
                id: k.id.clone(),
                beams,
            });
        }
        ctx.progress().inc(rows as u64);
    }
    crate::stages::io::write_jsonl(ctx.output("predictions")?, &out)?;
    ctx.figure("images", n as f64);
    ctx.figure(
        "beams_ended_share",
        ended as f64 / (out.iter().map(|r| r.beams.len()).sum::<usize>().max(1)) as f64,
    );
    Ok(())
}
