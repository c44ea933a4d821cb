//! The `Features` artifact: one vector per image, `features.safetensors` (`features`
//! `[n, d]`, f32) and `index.jsonl` (`{source, id}` per row, in row order). Kept apart
//! from the captioner so that editing the captioner never recomputes CLIP.

use crate::stages::io::{read_jsonl, write_jsonl};
use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::path::Path;

#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Key {
    pub source: String,
    pub id: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Features {
    pub keys: Vec<Key>,
    pub dim: usize,
    /// Row-major `[keys.len(), dim]`.
    pub data: Vec<f32>,
}

impl Features {
    pub fn row(&self, i: usize) -> &[f32] {
        &self.data[i * self.dim..(i + 1) * self.dim]
    }

    /// Row of each `(source, id)`.
    pub fn index(&self) -> HashMap<(&str, &str), usize> {
        self.keys
            .iter()
            .enumerate()
            .map(|(i, k)| ((k.source.as_str(), k.id.as_str()), i))
            .collect()
    }

    pub fn write(&self, dir: &Path) -> Result<()> {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        let mut e = crate::models::weights::Export::default();
        e.tensors.insert(
            "features".into(),
            (vec![self.keys.len(), self.dim], self.data.clone()),
        );
        e.save(&dir.join("features.safetensors"))?;
        write_jsonl(&dir.join("index.jsonl"), &self.keys)
    }

    pub fn read(dir: &Path) -> Result<Features> {
        let path = dir.join("features.safetensors");
        let bytes = std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
        let st = safetensors::SafeTensors::deserialize(&bytes).map_err(|e| {
            anyhow::anyhow!("{} is not a valid safetensors file ({e})", path.display())
        })?;
        let t = st
            .tensor("features")
            .map_err(|_| anyhow::anyhow!("{} has no `features` tensor", path.display()))?;
        let shape = t.shape().to_vec();
        if shape.len() != 2 || t.dtype() != safetensors::Dtype::F32 {
            bail!(
                "{}: `features` must be a 2-D f32 tensor, found {:?} {shape:?}",
                path.display(),
                t.dtype()
            );
        }
        let data: Vec<f32> = t
            .data()
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect();
        let keys: Vec<Key> = read_jsonl(&dir.join("index.jsonl"))?;
        if keys.len() != shape[0] {
            bail!(
                "{}: {} index rows for {} feature rows",
                dir.display(),
                keys.len(),
                shape[0]
            );
        }
        Ok(Features {
            keys,
            dim: shape[1],
            data,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_errors_name_the_folder() {
        let dir = tempfile::tempdir().unwrap();
        let f = Features {
            keys: vec![
                Key {
                    source: "ww".into(),
                    id: "1".into(),
                },
                Key {
                    source: "cc".into(),
                    id: "2".into(),
                },
            ],
            dim: 3,
            data: vec![1.0, 2.0, 3.0, -1.0, 0.5, 0.25],
        };
        f.write(dir.path()).unwrap();
        let back = Features::read(dir.path()).unwrap();
        assert_eq!(back, f);
        assert_eq!(back.row(1), &[-1.0, 0.5, 0.25]);
        assert_eq!(back.index()[&("cc", "2")], 1);
        // An index that does not match the tensor is an error naming the folder.
        std::fs::write(
            dir.path().join("index.jsonl"),
            "{\"source\":\"ww\",\"id\":\"1\"}\n",
        )
        .unwrap();
        let e = format!("{:#}", Features::read(dir.path()).unwrap_err());
        assert!(e.contains("1 index rows for 2 feature rows"), "{e}");
        let e = format!(
            "{:#}",
            Features::read(&dir.path().join("nope")).unwrap_err()
        );
        assert!(e.contains("features.safetensors"), "{e}");
    }
}
