//! Reading and writing Hugging Face checkpoint folders: `config.json` plus
//! `model.safetensors` or a sharded `model.safetensors.index.json`, any of f32/f16/bf16/f64
//! converted to f32.
//!
//! Models are built by asking for each tensor by its HF name and shape. Problems are
//! collected rather than thrown, so a bad checkpoint gives one error listing every missing,
//! unexpected and mis-shaped tensor.
//!
//! Files are memory-mapped, not read: a tensor is converted straight from the mapped bytes
//! into the buffer the backend takes over (no intermediate copy), and the pages it came
//! from are released at once (`MADV_DONTNEED`), so the peak resident memory of a load is
//! the model itself plus one tensor, not twice the checkpoint.

use anyhow::{Context, bail};
use burn::prelude::*;
use safetensors::{Dtype, SafeTensors};
use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::Path;

/// The standard deviation of a randomly initialised tensor, by its HF name.
pub type StdFn = Box<dyn Fn(&str) -> f32>;

/// A tensor name in a checkpoint, or the prefix of a module's tensors:
/// `Key::from("encoder").at("block").at(3).at("layer.0")` is `encoder.block.3.layer.0`.
/// Each model's `load` and `export` build their names through the same calls, so a key
/// written on export is the key read on load. Derefs to `&str` for [`Weights::get`].
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Key(String);

impl Key {
    /// `self.part`; the root key (empty) gives `part` alone.
    pub fn at(&self, part: impl std::fmt::Display) -> Key {
        if self.0.is_empty() {
            Key(part.to_string())
        } else {
            Key(format!("{}.{part}", self.0))
        }
    }
}

impl From<&str> for Key {
    fn from(s: &str) -> Key {
        Key(s.to_string())
    }
}

impl std::ops::Deref for Key {
    type Target = str;
    fn deref(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// A checkpoint file's bytes: mapped (read lazily), or owned (handed to `from_bytes`).
enum Blob {
    Mapped(memmap2::Mmap),
    Owned(Vec<u8>),
}

impl Blob {
    fn bytes(&self) -> &[u8] {
        match self {
            Blob::Mapped(m) => m,
            Blob::Owned(v) => v,
        }
    }

    /// Drops the mapped pages of `range` from this process's memory (they stay in the page
    /// cache): a tensor is read once, so keeping them resident only doubles the peak.
    fn release(&self, range: &std::ops::Range<usize>) {
        let Blob::Mapped(m) = self else { return };
        // SAFETY: sysconf has no preconditions.
        let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) }.max(4096) as usize;
        let base = m.as_ptr() as usize;
        let start = (base + range.start).next_multiple_of(page);
        let end = (base + range.end) / page * page;
        if end > start {
            // SAFETY: [start, end) lies inside the mapping, which stays mapped; a private
            // read-only file mapping refaults the same bytes if they are read again.
            unsafe {
                libc::madvise(start as *mut libc::c_void, end - start, libc::MADV_DONTNEED);
            }
        }
    }
}

/// Where one tensor lies: which blob, its dtype and shape, its byte range.
struct Stored {
    blob: usize,
    dtype: Dtype,
    shape: Vec<usize>,
    range: std::ops::Range<usize>,
}

pub struct Weights {
    blobs: Vec<Blob>,
    tensors: HashMap<String, Stored>,
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
        // The common case, and most of a load's time: one copy from the mapped file into
        // the tensor's buffer (safetensors aligns data, so this is a plain memcpy).
        Dtype::F32 if cfg!(target_endian = "little") => match bytemuck::try_cast_slice(bytes) {
            Ok(floats) => floats.to_vec(),
            Err(_) => bytes
                .chunks_exact(4)
                .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                .collect(),
        },
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
        let mut w = Weights::new(dir.display().to_string());
        for f in &files {
            let file =
                std::fs::File::open(f).with_context(|| format!("reading {}", f.display()))?;
            // SAFETY: the map is read-only and private. A checkpoint truncated or rewritten
            // while it is being loaded could fault; that is the usual caveat of mapping a
            // file, accepted by safetensors' own loaders, for loading without a copy.
            let map = unsafe { memmap2::Mmap::map(&file) }
                .with_context(|| format!("mapping {}", f.display()))?;
            w.add_blob(Blob::Mapped(map), &f.display().to_string())?;
        }
        Ok(w)
    }

    pub fn from_bytes(bytes: &[u8], source: &str) -> anyhow::Result<Weights> {
        let mut w = Weights::new(source.to_string());
        w.add_blob(Blob::Owned(bytes.to_vec()), source)?;
        Ok(w)
    }

    fn new(source: String) -> Weights {
        Weights {
            blobs: Vec::new(),
            tensors: HashMap::new(),
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
        let mut w = Weights::new(format!("random init (seed {seed})"));
        w.random = Some(RefCell::new((
            rand_chacha::ChaCha8Rng::seed_from_u64(seed),
            std,
        )));
        w
    }

    /// Indexes a safetensors file's tensors (nothing is converted yet).
    fn add_blob(&mut self, blob: Blob, source: &str) -> anyhow::Result<()> {
        let index = self.blobs.len();
        {
            let bytes = blob.bytes();
            let st = SafeTensors::deserialize(bytes)
                .map_err(|e| anyhow::anyhow!("{source} is not a valid safetensors file ({e}); is it truncated or still downloading?"))?;
            for (name, view) in st.tensors() {
                // Unsupported dtypes fail here, naming the tensor, not halfway through a load.
                to_f32(view.dtype(), &[], &name)?;
                let start = view.data().as_ptr() as usize - bytes.as_ptr() as usize;
                self.tensors.insert(
                    name.to_string(),
                    Stored {
                        blob: index,
                        dtype: view.dtype(),
                        shape: view.shape().to_vec(),
                        range: start..start + view.data().len(),
                    },
                );
            }
        }
        self.blobs.push(blob);
        Ok(())
    }

    /// A stored tensor's values as f32, its pages released afterwards.
    fn values(&self, name: &str, s: &Stored) -> anyhow::Result<Vec<f32>> {
        let blob = &self.blobs[s.blob];
        let v = to_f32(s.dtype, &blob.bytes()[s.range.clone()], name);
        blob.release(&s.range);
        v
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
        let stored = &self.tensors[&key];
        if stored.shape.as_slice() != shape.as_slice() {
            self.misshaped.borrow_mut().push(format!(
                "{name}: expected {shape:?}, found {:?}",
                stored.shape
            ));
            return Tensor::zeros(shape, device);
        }
        match self.values(&key, stored) {
            // `TensorData::new` takes the vector's buffer, and burn-flex keeps it as the
            // tensor's storage: one allocation per tensor, no copy.
            Ok(v) => Tensor::from_data(TensorData::new(v, shape), device),
            Err(e) => {
                self.misshaped.borrow_mut().push(format!("{name}: {e}"));
                Tensor::zeros(shape, device)
            }
        }
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
        let stored = &self.tensors[&key];
        match self.values(&key, stored) {
            Ok(v) if v.len() == 1 => v[0],
            _ => {
                self.misshaped
                    .borrow_mut()
                    .push(format!("{name}: expected [], found {:?}", stored.shape));
                init
            }
        }
    }

    /// The first of `names` whose `.weight` the checkpoint holds (tied tensors are saved
    /// under any one of their names), else the first.
    pub fn first_module(&self, names: &[&str]) -> Key {
        let keys: Vec<Key> = names.iter().map(|&n| Key::from(n)).collect();
        keys.iter()
            .find(|k| self.contains(&k.at("weight")))
            .unwrap_or(&keys[0])
            .clone()
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
            .map(|(k, s)| format!("{k} {:?}", s.shape))
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

#[cfg(test)]
mod tests {
    use super::*;
    type B = crate::models::Cpu;

    #[test]
    fn keys_join_their_parts_with_dots() {
        let block = Key::from("encoder.block").at(3);
        assert_eq!(&*block.at("layer").at(1), "encoder.block.3.layer.1");
        assert_eq!(block.to_string(), "encoder.block.3");
        assert_eq!(&*Key::from("").at("shared"), "shared");
    }

    #[test]
    fn a_mapped_checkpoint_reads_each_tensor_again_after_its_pages_are_released() {
        let dir = tempfile::tempdir().unwrap();
        let dev = Default::default();
        // Large enough to span many pages, so releasing them is exercised.
        let values: Vec<f32> = (0..300_000).map(|i| i as f32 * 0.5 - 7.0).collect();
        let t = Tensor::<B, 2>::from_data(TensorData::new(values.clone(), [600, 500]), &dev);
        let mut ex = Export::default();
        ex.put("a.weight", &t);
        ex.put("b.bias", &Tensor::<B, 1>::from_data([1.5f32, -2.0], &dev));
        ex.save(&dir.path().join("model.safetensors")).unwrap();
        let w = Weights::from_folder(dir.path()).unwrap();
        for _ in 0..2 {
            let got = w.get::<B, 2>("a.weight", [600, 500], &dev);
            assert_eq!(got.into_data().to_vec::<f32>().unwrap(), values);
        }
        let _ = w.get::<B, 1>("b.bias", [3], &dev);
        let e = w.finish().unwrap_err().to_string();
        assert!(e.contains("b.bias: expected [3], found [2]"), "{e}");
    }

    #[test]
    fn half_precision_and_integer_tensors_convert_and_unsupported_dtypes_are_named() {
        assert_eq!(
            to_f32(Dtype::F16, &half::f16::from_f32(1.5).to_le_bytes(), "x").unwrap(),
            vec![1.5]
        );
        assert_eq!(
            to_f32(Dtype::I64, &7i64.to_le_bytes(), "x").unwrap(),
            vec![7.0]
        );
        let e = to_f32(Dtype::BOOL, &[1], "mask").unwrap_err().to_string();
        assert!(e.contains("`mask`"), "{e}");
    }
}
