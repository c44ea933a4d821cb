//! `clip_features`: the frozen CLIP image tower's pooled, projected features (the paper's
//! 512-d ViT-B/32 features) for every image of an image set, as their own artifact, so
//! that editing the captioner never recomputes them.

use super::train_tokenizer::backend;
use crate::context::StageContext;
use crate::models::clip::Clip;
use crate::params::ParamSpec;
use crate::registry::{PortSpec, StageKind};
use crate::types::ArtifactType;
use crate::vision::features::{Features, Key};
use crate::vision::images::{image_config, list_images, pixels};
use anyhow::bail;
use burn::prelude::*;

pub struct ClipFeatures;

impl StageKind for ClipFeatures {
    fn name(&self) -> &'static str {
        "clip_features"
    }
    fn version(&self) -> u32 {
        4
    }
    fn about(&self) -> &'static str {
        "the frozen CLIP image tower's projected features for every image of an image set"
    }
    fn params(&self) -> Vec<ParamSpec> {
        vec![ParamSpec::int("batch", 64, "images per forward pass").range(1.0, 65_536.0)]
    }
    fn inputs(&self) -> Vec<PortSpec> {
        vec![
            PortSpec::new(
                "model",
                ArtifactType::ImageEncoder,
                "a CLIP checkpoint folder (pretrain_clip's, or openai/clip-vit-base-patch32)",
            ),
            PortSpec::new(
                "images",
                ArtifactType::Any,
                "a Table folder (items.jsonl + images/) or a Who's Waldo tree (<id>/image.jpg)",
            ),
        ]
    }
    fn outputs(&self) -> Vec<PortSpec> {
        vec![PortSpec::new(
            "features",
            ArtifactType::Features,
            "features.safetensors [n, projection_dim] and index.jsonl {source, id}",
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
    let (clip, cfg) = Clip::<B>::load(&dir, &dev)?;
    let size = cfg.vision_config.image_size;
    let pre = image_config(&dir, size)?;
    let refs = list_images(ctx.input("images")?)?;
    if refs.is_empty() {
        bail!("the image set holds no images");
    }
    let batch = ctx.params.int("batch") as usize;
    let dim = cfg.projection_dim;
    let mut data = Vec::with_capacity(refs.len() * dim);
    ctx.progress().start(refs.len() as u64, "images");
    for chunk in refs.chunks(batch) {
        let paths: Vec<&std::path::Path> = chunk.iter().map(|r| r.path.as_path()).collect();
        let px = pixels(&paths, &pre)?;
        let x = Tensor::<B, 4>::from_data(TensorData::new(px, [chunk.len(), 3, size, size]), &dev);
        let f = clip.image_features(x);
        data.extend(f.into_data().convert::<f32>().to_vec::<f32>().expect("f32"));
        ctx.progress().inc(chunk.len() as u64);
    }
    let keys: Vec<Key> = refs
        .into_iter()
        .map(|r| Key {
            source: r.source,
            id: r.id,
        })
        .collect();
    let n = keys.len();
    Features { keys, dim, data }.write(ctx.output("features")?)?;
    ctx.figure("images", n as f64);
    ctx.figure("dim", dim as f64);
    Ok(())
}
