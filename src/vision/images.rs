//! Which images an image set holds, and their pixels as CLIP's input.
//!
//! Two layouts are read: a `Table` folder (benchmark items: `items.jsonl` whose `image`
//! is relative to the folder) and a Who's Waldo tree (`<id>/image.jpg`, source `ww`).

use super::preprocess::{ClipImageConfig, open, preprocess};
use crate::stages::io::{TableItem, read_jsonl};
use anyhow::{Context, Result, bail};
use rayon::prelude::*;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, PartialEq)]
pub struct ImageRef {
    pub source: String,
    pub id: String,
    pub path: PathBuf,
}

/// The images of a Table folder or of a Who's Waldo tree, in the set's own order.
pub fn list_images(root: &Path) -> Result<Vec<ImageRef>> {
    let items = root.join("items.jsonl");
    if items.is_file() {
        let rows: Vec<TableItem> = read_jsonl(&items)?;
        let no_image: Vec<&str> = rows
            .iter()
            .filter(|r| r.image.is_empty())
            .map(|r| r.id.as_str())
            .collect();
        if !no_image.is_empty() {
            bail!(
                "{}: {} items have no image (first: {}); import the benchmark with its images",
                items.display(),
                no_image.len(),
                no_image[..no_image.len().min(5)].join(", ")
            );
        }
        return Ok(rows
            .into_iter()
            .map(|r| ImageRef {
                path: root.join(&r.image),
                source: r.source,
                id: r.id,
            })
            .collect());
    }
    if root.join("splits").is_dir() {
        let dirs = crate::stages::import_whos_waldo::item_dirs(root)?;
        return Ok(dirs
            .into_iter()
            .filter(|d| d.join("image.jpg").is_file())
            .filter_map(|d| {
                let id = d.file_name()?.to_string_lossy().into_owned();
                Some(ImageRef {
                    source: "ww".into(),
                    id,
                    path: d.join("image.jpg"),
                })
            })
            .collect());
    }
    bail!(
        "{} is neither a Table folder (items.jsonl) nor a Who's Waldo tree (splits/, <id>/image.jpg)",
        root.display()
    )
}

/// CLIP inputs `[n, 3, h, w]` (flattened) for `images`, decoded and preprocessed on all
/// cores; the result does not depend on the thread count. A bad image is an error naming it.
pub fn pixels(images: &[&Path], cfg: &ClipImageConfig) -> Result<Vec<f32>> {
    let per: Vec<Vec<f32>> = images
        .par_iter()
        .map(|p| {
            let img = open(p)?;
            Ok(preprocess(&img, cfg))
        })
        .collect::<Result<_>>()?;
    Ok(per.concat())
}

/// The preprocessing a CLIP checkpoint folder asks for: its `preprocessor_config.json`
/// (transformers' `CLIPImageProcessor` fields) when present, else CLIP's defaults at the
/// vision tower's `image_size`.
pub fn image_config(model_dir: &Path, image_size: usize) -> Result<ClipImageConfig> {
    let mut cfg = ClipImageConfig::square(image_size);
    let path = model_dir.join("preprocessor_config.json");
    if !path.is_file() {
        return Ok(cfg);
    }
    let v: serde_json::Value = serde_json::from_slice(&std::fs::read(&path)?)
        .with_context(|| format!("{} is not valid JSON", path.display()))?;
    let num = |v: &serde_json::Value| v.as_u64().map(|x| x as u32);
    match &v["size"] {
        serde_json::Value::Object(m) => {
            if let Some(s) = m.get("shortest_edge").and_then(num) {
                cfg.shortest_edge = s;
            }
        }
        other => {
            if let Some(s) = num(other) {
                cfg.shortest_edge = s;
            }
        }
    }
    match &v["crop_size"] {
        serde_json::Value::Object(m) => {
            if let (Some(h), Some(w)) =
                (m.get("height").and_then(num), m.get("width").and_then(num))
            {
                cfg.crop_height = h;
                cfg.crop_width = w;
            }
        }
        other => {
            if let Some(s) = num(other) {
                cfg.crop_height = s;
                cfg.crop_width = s;
            }
        }
    }
    let triple = |v: &serde_json::Value| -> Option<[f32; 3]> {
        let a = v.as_array()?;
        (a.len() == 3).then(|| {
            [
                a[0].as_f64().unwrap_or(0.0) as f32,
                a[1].as_f64().unwrap_or(0.0) as f32,
                a[2].as_f64().unwrap_or(1.0) as f32,
            ]
        })
    };
    if let Some(m) = triple(&v["image_mean"]) {
        cfg.mean = m;
    }
    if let Some(s) = triple(&v["image_std"]) {
        cfg.std = s;
    }
    if cfg.crop_height as usize != image_size || cfg.crop_width as usize != image_size {
        bail!(
            "{}: crop size {}x{} does not match the vision tower's image_size {image_size}",
            path.display(),
            cfg.crop_width,
            cfg.crop_height
        );
    }
    Ok(cfg)
}

/// `preprocessor_config.json` for a CLIP trained here, in transformers' format.
pub fn preprocessor_json(cfg: &ClipImageConfig) -> serde_json::Value {
    serde_json::json!({
        "crop_size": {"height": cfg.crop_height, "width": cfg.crop_width},
        "do_center_crop": true,
        "do_convert_rgb": true,
        "do_normalize": true,
        "do_rescale": true,
        "do_resize": true,
        "image_mean": cfg.mean,
        "image_processor_type": "CLIPImageProcessor",
        "image_std": cfg.std,
        "resample": 3,
        "rescale_factor": 1.0 / 255.0,
        "size": {"shortest_edge": cfg.shortest_edge},
    })
}
