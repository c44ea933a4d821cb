//! What a running stage sees: its inputs (read-only paths inside the store), where to write
//! its outputs, its parameters and seed, a work folder that survives a killed run, and a
//! progress reporter.

use crate::params::Params;
use crate::progress::Progress;
use crate::registry::Figures;
use crate::store::fsutil::write_atomic;
use anyhow::{Context as _, anyhow};
use serde::{Serialize, de::DeserializeOwned};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

pub struct StageContext {
    /// The stage's name in the pipeline.
    pub stage: String,
    pub params: Params,
    /// This stage's seed, derived from the pipeline seed and the stage name.
    pub seed: u64,
    /// The backend the pipeline asked for (`auto`, `cpu`, `ndarray`, `wgpu`, `cuda`).
    pub backend: String,
    /// The directory of the pipeline file, for kinds that need to resolve user paths.
    pub pipeline_dir: PathBuf,
    inputs: BTreeMap<String, PathBuf>,
    outputs: BTreeMap<String, PathBuf>,
    work_dir: PathBuf,
    progress: Progress,
    pub(crate) figures: Figures,
    pub(crate) peak_rss_bytes: Option<u64>,
    log_path: PathBuf,
    store_objects: Option<PathBuf>,
    device: String,
    kernel: String,
}

impl StageContext {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        stage: String,
        params: Params,
        seed: u64,
        backend: String,
        pipeline_dir: PathBuf,
        inputs: BTreeMap<String, PathBuf>,
        outputs: BTreeMap<String, PathBuf>,
        work_dir: PathBuf,
        progress: Progress,
    ) -> Self {
        StageContext {
            stage,
            params,
            seed,
            backend,
            pipeline_dir,
            inputs,
            outputs,
            work_dir,
            progress,
            figures: Figures::new(),
            peak_rss_bytes: None,
            log_path: PathBuf::from("/dev/null"),
            store_objects: None,
            device: "cpu".into(),
            kernel: String::new(),
        }
    }

    /// The path of an input artifact: a read-only file or folder in the store.
    pub fn input(&self, port: &str) -> anyhow::Result<&Path> {
        self.inputs
            .get(port)
            .map(PathBuf::as_path)
            .ok_or_else(|| anyhow!("stage `{}` has no input `{port}`", self.stage))
    }

    pub fn inputs(&self) -> &BTreeMap<String, PathBuf> {
        &self.inputs
    }

    /// Where to write an output: the stage creates a file or a folder at exactly this path.
    /// It is published into the store only after the stage returns successfully.
    pub fn output(&self, port: &str) -> anyhow::Result<&Path> {
        self.outputs
            .get(port)
            .map(PathBuf::as_path)
            .ok_or_else(|| anyhow!("stage `{}` has no output `{port}`", self.stage))
    }

    pub fn outputs(&self) -> &BTreeMap<String, PathBuf> {
        &self.outputs
    }

    /// A folder private to this stage's cache key. It survives a failed or killed run and
    /// is removed once the stage succeeds, so checkpoints written here let a rerun resume.
    pub fn work_dir(&self) -> &Path {
        &self.work_dir
    }

    /// Saves a checkpoint atomically (temp file, fsync, rename): a kill at any moment
    /// leaves either the previous checkpoint or this one, never a torn file.
    pub fn save_checkpoint<T: Serialize>(&self, name: &str, state: &T) -> anyhow::Result<()> {
        let bytes = serde_json::to_vec(state)?;
        write_atomic(&self.work_dir.join(format!("{name}.ckpt.json")), &bytes)
            .with_context(|| format!("saving checkpoint `{name}` of stage `{}`", self.stage))
    }

    /// The last checkpoint saved under `name` by a run with the same cache key, if any.
    pub fn load_checkpoint<T: DeserializeOwned>(&self, name: &str) -> anyhow::Result<Option<T>> {
        let path = self.work_dir.join(format!("{name}.ckpt.json"));
        match std::fs::read(&path) {
            Ok(bytes) => {
                Ok(Some(serde_json::from_slice(&bytes).with_context(|| {
                    format!("reading checkpoint {}", path.display())
                })?))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e).with_context(|| format!("reading checkpoint {}", path.display())),
        }
    }

    /// Where a kind that runs child processes should send their output; kept in the store
    /// (`logs/<key>.log`) after the stage ends, and quoted when it fails.
    pub fn log_path(&self) -> &Path {
        &self.log_path
    }

    pub fn set_log_path(&mut self, path: PathBuf) {
        self.log_path = path;
    }

    /// The store's `objects/` folder, for kinds that isolate child processes from it.
    pub fn store_objects(&self) -> Option<&Path> {
        self.store_objects.as_deref()
    }

    pub fn set_store_objects(&mut self, path: PathBuf) {
        self.store_objects = Some(path);
    }

    /// The device the stage computed on (`cpu`, `cuda:0`, `wgpu`…), for its record.
    pub fn device(&self) -> &str {
        &self.device
    }

    /// Model stages call this with the device `with_backend!` chose.
    pub fn set_device(&mut self, device: impl Into<String>) {
        self.device = device.into();
    }

    /// The kernel class of the stage's tensor code (`backend::kernel_class`), for its record.
    pub fn kernel(&self) -> &str {
        &self.kernel
    }

    pub fn set_kernel(&mut self, kernel: impl Into<String>) {
        self.kernel = kernel.into();
    }

    pub fn progress(&self) -> &Progress {
        &self.progress
    }

    /// Records a summary figure (e.g. `final_loss`, `items_in`) in the provenance record.
    pub fn figure(&mut self, name: &str, value: f64) {
        self.figures.insert(name.to_string(), value);
    }

    /// For kinds that run the work in a child process: the child's peak memory, which the
    /// record then reports instead of this process's.
    pub fn set_peak_rss(&mut self, bytes: u64) {
        self.peak_rss_bytes = Some(bytes);
    }
}
