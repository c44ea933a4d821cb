//! Run refs: what each recent run used, by stage key, and what the run was (when, with
//! which overrides, what ran). `gc --keep N` keeps the records of the N newest; `show
//! STAGE` resolves a stage name through the newest; `runs` lists them and `diff` compares
//! two. Named by content (the short digest of the ref is the run's id).

use super::Store;
use super::fsutil;
use super::hash::Digest;
use crate::lockfile::LockFile;
use serde::Serialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

#[derive(Serialize, serde::Deserialize, Clone, Debug, Default)]
pub struct RunRef {
    pub pipeline: PathBuf,
    pub lock: PathBuf,
    /// Stage name → cache key, as the lock names them after the run.
    pub stages: BTreeMap<String, Digest>,
    /// What the run was (absent in refs written before runs were listed).
    #[serde(default)]
    pub info: RunInfo,
}

/// A run as `hhi runs` lists it.
#[derive(Serialize, serde::Deserialize, Clone, Debug, Default)]
pub struct RunInfo {
    /// RFC 3339, UTC.
    #[serde(default)]
    pub started: String,
    #[serde(default)]
    pub seconds: f64,
    #[serde(default)]
    pub name: Option<String>,
    /// The `--set`s, as given.
    #[serde(default)]
    pub overrides: Vec<String>,
    #[serde(default)]
    pub ran: usize,
    #[serde(default)]
    pub fresh: usize,
    #[serde(default)]
    pub failed: usize,
    /// Whether the run wrote P.lock (an experiment with overrides does not, unless asked).
    #[serde(default)]
    pub wrote_lock: bool,
}

/// Remembers what a run used, for `gc` (its roots), `show STAGE`, `runs` and `diff`;
/// returns the run's id.
pub fn write_run_ref(
    store: &Store,
    pipeline: &Path,
    lock_path: &Path,
    lock: &LockFile,
    info: RunInfo,
) -> anyhow::Result<String> {
    let stages = lock
        .stages
        .iter()
        .map(|(n, s)| (n.clone(), s.key))
        .collect();
    write_run_ref_keys(store, pipeline, lock_path, stages, info)
}

/// [`write_run_ref`] from the stage keys themselves (a sweep's variants have no lock).
pub fn write_run_ref_keys(
    store: &Store,
    pipeline: &Path,
    lock_path: &Path,
    stages: BTreeMap<String, Digest>,
    info: RunInfo,
) -> anyhow::Result<String> {
    let r = RunRef {
        pipeline: std::path::absolute(pipeline)?,
        lock: std::path::absolute(lock_path)?,
        stages,
        info,
    };
    let bytes = serde_json::to_vec_pretty(&r)?;
    let id = Digest::of_bytes(&bytes).short();
    let path = store.runs_dir().join(format!("{id}.json"));
    match std::fs::File::options().write(true).open(&path) {
        Ok(f) => f.set_modified(SystemTime::now())?,
        Err(_) => fsutil::write_atomic(&path, &bytes)?,
    }
    Ok(id)
}

/// A run's id: its ref's file name.
pub fn run_id(path: &Path) -> String {
    path.file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// Run refs, newest first.
pub fn run_refs(store: &Store) -> Vec<(PathBuf, RunRef)> {
    let mut refs: Vec<(SystemTime, PathBuf, RunRef)> = std::fs::read_dir(store.runs_dir())
        .map(|rd| {
            rd.flatten()
                .filter_map(|e| {
                    let t = e.metadata().ok()?.modified().ok()?;
                    let r = serde_json::from_slice(&std::fs::read(e.path()).ok()?).ok()?;
                    Some((t, e.path(), r))
                })
                .collect()
        })
        .unwrap_or_default();
    refs.sort_by_key(|r| std::cmp::Reverse(r.0));
    refs.into_iter().map(|(_, p, r)| (p, r)).collect()
}
