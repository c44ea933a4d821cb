//! Run refs: what each recent run used, by stage key. `gc --keep N` keeps the records of
//! the N newest; `show STAGE` resolves a stage name through the newest. Named by content,
//! so a no-op run only refreshes the mtime of the ref it would write.

use super::Store;
use super::fsutil;
use super::hash::Digest;
use crate::lockfile::LockFile;
use serde::Serialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

#[derive(Serialize, serde::Deserialize)]
pub struct RunRef {
    pub pipeline: PathBuf,
    pub lock: PathBuf,
    /// Stage name → cache key, as the lock names them after the run.
    pub stages: BTreeMap<String, Digest>,
}

/// Remembers what a run used, for `gc` (its roots) and `show STAGE`.
pub fn write_run_ref(
    store: &Store,
    pipeline: &Path,
    lock_path: &Path,
    lock: &LockFile,
) -> anyhow::Result<()> {
    let r = RunRef {
        pipeline: std::path::absolute(pipeline)?,
        lock: std::path::absolute(lock_path)?,
        stages: lock
            .stages
            .iter()
            .map(|(n, s)| (n.clone(), s.key))
            .collect(),
    };
    let bytes = serde_json::to_vec_pretty(&r)?;
    let path = store
        .runs_dir()
        .join(format!("{}.json", Digest::of_bytes(&bytes).short()));
    match std::fs::File::options().write(true).open(&path) {
        Ok(f) => f.set_modified(SystemTime::now())?,
        Err(_) => fsutil::write_atomic(&path, &bytes)?,
    }
    Ok(())
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
