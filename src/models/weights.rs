//! Reading and writing Hugging Face checkpoint folders: `config.json` plus
//! `model.safetensors` or a sharded `model.safetensors.index.json`, any of f32/f16/bf16/f64
//! converted to f32.
//!
//! Models are built by asking for each tensor by its HF name and shape. Problems are
//! collected rather than thrown, so a bad checkpoint gives one error listing every missing,
//! unexpected and mis-shaped tensor.

use anyhow::{Context, bail};
use burn::prelude::*;
use safetensors::{Dtype, SafeTensors};
use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::Path;

/// The standard deviation of a randomly initialised tensor, by its HF name.
pub type StdFn = Box<dyn Fn(&str) -> f32>;

pub struct Weights {
    tensors: HashMap<String, (Vec<usize>, Vec<f32>)>,
    /// Set for [`Weights::random`]: every request is answered with fresh values, normal
    /// with the standard deviation this function gives for the tensor's name.
    random: Option<RefCell<(rand_chacha::ChaCha8Rng, StdFn)>>,
    used: RefCell<BTreeSet<String>>,
    missing: RefCell<Vec<String>>,
    misshaped: RefCell<Vec<String>>,
    source: String,
}

fn to_f32(dtype: Dtype, bytes: &[u8], name: &str) -> anyhow::Result<Vec<f32>> {
    Ok(match dtype {
        Dtype::F32 => bytes
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect(),
        Dtype::F16 => bytes
            .chunks_exact(2)
            .map(|c| half::f16::from_le_bytes([c[0], c[1]]).to_f32())
            .collect(),
        Dtype::BF16 => bytes
            .chunks_exact(2)
            .map(|c| half::bf16::from_le_bytes([c[0], c[1]]).to_f32())
            .collect(),
        Dtype::F64 => bytes
            .chunks_exact(8)
            .map(|c| f64::from_le_bytes(c.try_into().unwrap()) as f32)
            .collect(),
        // Integer buffers (BERT's `position_ids`, `token_type_ids`) ride along in some
        // checkpoints; models ignore them by name, but they must not stop the load.
        Dtype::I64 => bytes
            .chunks_exact(8)
            .map(|c| i64::from_le_bytes(c.try_into().unwrap()) as f32)
            .collect(),
        Dtype::I32 => bytes
            .chunks_exact(4)
            .map(|c| i32::from_le_bytes(c.try_into().unwrap()) as f32)
            .collect(),
        other => bail!("tensor `{name}` has dtype {other:?}; only float tensors can be loaded"),
    })
}

impl Weights {
    /// Reads every safetensors file of a checkpoint folder.
    pub fn from_folder(dir: &Path) -> anyhow::Result<Weights> {
        let single = dir.join("model.safetensors");
        let index = dir.join("model.safetensors.index.json");
        let files: Vec<std::path::PathBuf> = if single.exists() {
            vec![single]
        } else if index.exists() {
            let idx: serde_json::Value = serde_json::from_slice(&std::fs::read(&index)?)
                .with_context(|| format!("{} is not valid JSON", index.display()))?;
            let map = idx["weight_map"]
                .as_object()
                .with_context(|| format!("{} has no weight_map", index.display()))?;
            let shards: BTreeSet<&str> = map.values().filter_map(|v| v.as_str()).collect();
            shards.into_iter().map(|s| dir.join(s)).collect()
        } else {
            bail!(
                "{} holds no model.safetensors or model.safetensors.index.json\n  = help: convert PyTorch .bin checkpoints with `save_pretrained(..., safe_serialization=True)`",
                dir.display()
            );
        };
        let mut tensors = HashMap::new();
        for f in &files {
            let bytes = std::fs::read(f).with_context(|| format!("reading {}", f.display()))?;
            Self::add_bytes(&mut tensors, &bytes, &f.display().to_string())?;
        }
        Ok(Weights::new(tensors, dir.display().to_string()))
    }

    pub fn from_bytes(bytes: &[u8], source: &str) -> anyhow::Result<Weights> {
        let mut tensors = HashMap::new();
        Self::add_bytes(&mut tensors, bytes, source)?;
        Ok(Weights::new(tensors, source.to_string()))
    }

    fn new(tensors: HashMap<String, (Vec<usize>, Vec<f32>)>, source: String) -> Weights {
        Weights {
            tensors,
            random: None,
            used: Default::default(),
            missing: Default::default(),
            misshaped: Default::default(),
            source,
        }
    }

    /// Weights for a model trained from scratch, initialised as `transformers` does: normal
    /// with standard deviation `std` for matrices and embeddings, ones for norm scales,
    /// zeros for biases. Deterministic for a seed (models ask in a fixed order).
    pub fn random(seed: u64, std: f32) -> Weights {
        Self::random_by(seed, Box::new(move |_| std))
    }

    /// [`Self::random`] with a standard deviation per tensor name, for models whose
    /// `transformers` init scales each matrix differently (T5: [`crate::models::t5::T5Config::init_std`]).
    pub fn random_by(seed: u64, std: StdFn) -> Weights {
        use rand::SeedableRng;
        let mut w = Weights::new(HashMap::new(), format!("random init (seed {seed})"));
        w.random = Some(RefCell::new((
            rand_chacha::ChaCha8Rng::seed_from_u64(seed),
            std,
        )));
        w
    }

    fn add_bytes(
        into: &mut HashMap<String, (Vec<usize>, Vec<f32>)>,
        bytes: &[u8],
        source: &str,
    ) -> anyhow::Result<()> {
        let st = SafeTensors::deserialize(bytes)
            .map_err(|e| anyhow::anyhow!("{source} is not a valid safetensors file ({e}); is it truncated or still downloading?"))?;
        for (name, view) in st.tensors() {
            let data = to_f32(view.dtype(), view.data(), &name)?;
            into.insert(name.to_string(), (view.shape().to_vec(), data));
        }
        Ok(())
    }

    /// The stored name for `name`: exact, or without its first component (a base model
    /// saved without the `transformer.` prefix of its LM-head wrapper, or the reverse).
    fn resolve(&self, name: &str) -> Option<String> {
        if self.random.is_some() {
            return Some(name.to_string());
        }
        if self.tensors.contains_key(name) {
            return Some(name.to_string());
        }
        if let Some((_, rest)) = name.split_once('.')
            && self.tensors.contains_key(rest)
        {
            return Some(rest.to_string());
        }
        None
    }

    /// Renames stored tensors `prefix…` to `…`, so a sub-model of a composite checkpoint
    /// (ClipCap's `gpt.transformer.…`) loads with the sub-model's own loader. Other names
    /// are kept; a random init is unchanged.
    pub fn strip_prefix(mut self, prefix: &str) -> Weights {
        self.tensors = self
            .tensors
            .into_iter()
            .map(|(k, v)| match k.strip_prefix(prefix) {
                Some(rest) => (rest.to_string(), v),
                None => (k, v),
            })
            .collect();
        self
    }

    pub fn contains(&self, name: &str) -> bool {
        // A random init creates only what is always required; optional tensors stay absent.
        self.random.is_none() && self.resolve(name).is_some()
    }

    /// The tensor `name` with the given shape. A missing or mis-shaped tensor is recorded
    /// (see [`Weights::finish`]) and zeros are returned so loading can go on and report
    /// every problem at once.
    pub fn get<B: Backend, const D: usize>(
        &self,
        name: &str,
        shape: [usize; D],
        device: &B::Device,
    ) -> Tensor<B, D> {
        if let Some(r) = &self.random {
            return Tensor::from_data(
                TensorData::new(random_values(r, name, &shape), shape),
                device,
            );
        }
        let Some(key) = self.resolve(name) else {
            self.missing.borrow_mut().push(format!("{name} {shape:?}"));
            return Tensor::zeros(shape, device);
        };
        self.used.borrow_mut().insert(key.clone());
        let (s, data) = &self.tensors[&key];
        if s.as_slice() != shape.as_slice() {
            self.misshaped
                .borrow_mut()
                .push(format!("{name}: expected {shape:?}, found {s:?}"));
            return Tensor::zeros(shape, device);
        }
        Tensor::from_data(TensorData::new(data.clone(), shape), device)
    }

    /// A 0-D tensor (a scalar such as CLIP's `logit_scale`; burn has no 0-D tensors). A
    /// random init answers `init`; a missing one is recorded like any missing tensor.
    pub fn scalar(&self, name: &str, init: f32) -> f32 {
        if self.random.is_some() {
            return init;
        }
        let Some(key) = self.resolve(name) else {
            self.missing.borrow_mut().push(format!("{name} []"));
            return init;
        };
        self.used.borrow_mut().insert(key.clone());
        let (shape, data) = &self.tensors[&key];
        if data.len() != 1 {
            self.misshaped
                .borrow_mut()
                .push(format!("{name}: expected [], found {shape:?}"));
            return init;
        }
        data[0]
    }

    /// Like [`Weights::get`] for a tensor that may be absent (returns `None` then).
    pub fn get_opt<B: Backend, const D: usize>(
        &self,
        name: &str,
        shape: [usize; D],
        device: &B::Device,
    ) -> Option<Tensor<B, D>> {
        self.contains(name).then(|| self.get(name, shape, device))
    }

    /// Marks tensors the model deliberately ignores (buffers such as GPT-2's `attn.bias`).
    pub fn ignore(&self, pred: impl Fn(&str) -> bool) {
        let names: Vec<String> = self.tensors.keys().filter(|k| pred(k)).cloned().collect();
        self.used.borrow_mut().extend(names);
    }

    /// Fails with one message listing every missing, mis-shaped and unexpected tensor.
    pub fn finish(self) -> anyhow::Result<()> {
        let used = self.used.into_inner();
        let mut unexpected: Vec<String> = self
            .tensors
            .iter()
            .filter(|(k, _)| !used.contains(*k))
            .map(|(k, (s, _))| format!("{k} {s:?}"))
            .collect();
        unexpected.sort();
        let (missing, misshaped) = (self.missing.into_inner(), self.misshaped.into_inner());
        if missing.is_empty() && misshaped.is_empty() && unexpected.is_empty() {
            return Ok(());
        }
        let mut msg = format!(
            "the checkpoint {} does not match the model's configuration:",
            self.source
        );
        for (title, list) in [
            ("missing", &missing),
            ("wrong shape", &misshaped),
            ("unexpected", &unexpected),
        ] {
            if !list.is_empty() {
                msg.push_str(&format!("\n  {title} ({}):", list.len()));
                for item in list.iter().take(20) {
                    msg.push_str(&format!("\n    {item}"));
                }
                if list.len() > 20 {
                    msg.push_str(&format!("\n    … and {} more", list.len() - 20));
                }
            }
        }
        msg.push_str("\n  = help: check that config.json belongs to these weights");
        bail!(msg)
    }
}

fn random_values(
    r: &RefCell<(rand_chacha::ChaCha8Rng, StdFn)>,
    name: &str,
    shape: &[usize],
) -> Vec<f32> {
    use rand_distr::Distribution;
    let n: usize = shape.iter().product();
    let is_norm = name.contains("ln_") || name.contains("layer_norm") || name.contains("norm.");
    if name.ends_with(".bias") {
        vec![0.0; n]
    } else if is_norm && name.ends_with(".weight") {
        vec![1.0; n]
    } else {
        let mut r = r.borrow_mut();
        let std = (r.1)(name);
        let normal = rand_distr::Normal::new(0.0f32, std).expect("a valid standard deviation");
        (0..n).map(|_| normal.sample(&mut r.0)).collect()
    }
}

/// Named tensors in HF layout, collected for saving.
#[derive(Default)]
pub struct Export {
    pub tensors: BTreeMap<String, (Vec<usize>, Vec<f32>)>,
}

impl Export {
    pub fn put<B: Backend, const D: usize>(&mut self, name: &str, t: &Tensor<B, D>) {
        let data = t.to_data().convert::<f32>();
        let values = data.to_vec::<f32>().expect("f32 data");
        self.tensors
            .insert(name.to_string(), (t.dims().to_vec(), values));
    }

    /// Writes a `model.safetensors` that `transformers` can load. The bytes depend only on
    /// the tensors (names sorted, fixed metadata), so the store can hash checkpoints.
    pub fn save(&self, path: &Path) -> anyhow::Result<()> {
        let bytes: Vec<(String, Vec<usize>, Vec<u8>)> = self
            .tensors
            .iter()
            .map(|(k, (s, v))| {
                (
                    k.clone(),
                    s.clone(),
                    v.iter().flat_map(|x| x.to_le_bytes()).collect(),
                )
            })
            .collect();
        let views: Vec<(String, safetensors::tensor::TensorView)> = bytes
            .iter()
            .map(|(k, s, b)| {
                Ok((
                    k.clone(),
                    safetensors::tensor::TensorView::new(Dtype::F32, s.clone(), b)?,
                ))
            })
            .collect::<Result<_, safetensors::SafeTensorError>>()?;
        let meta = std::collections::HashMap::from([("format".to_string(), "pt".to_string())]);
        let out = safetensors::serialize(views, Some(meta))?;
        crate::store::fsutil::write_atomic(path, &out)
            .with_context(|| format!("writing {}", path.display()))
    }
}

/// Reads a checkpoint's `config.json` into a model config.
pub fn read_config<C: serde::de::DeserializeOwned>(dir: &Path) -> anyhow::Result<C> {
    let path = dir.join("config.json");
    let text =
        std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    serde_json::from_str(&text)
        .with_context(|| format!("{} is not a config this model understands", path.display()))
}
