//! `hhi gc`: removes what nothing references any more.
//!
//! Roots: the records of the `--keep` most recent runs, and everything named by the lock
//! files of every run the store remembers (a committed lock keeps its artifacts alive even
//! after many newer runs). A kept record keeps its outputs and its inputs. Work folders
//! (checkpoints of unfinished stages) are kept for a week.

use crate::lockfile::LockFile;
use crate::scheduler::run_refs;
use crate::store::Store;
use crate::store::fsutil::{disk_size, remove_all};
use crate::store::hash::Digest;
use crate::store::lock::StoreLock;
use serde::Serialize;
use std::collections::HashSet;
use std::time::{Duration, SystemTime};

const WORK_TTL: Duration = Duration::from_secs(7 * 24 * 3600);

#[derive(Debug, Clone, Serialize, Default)]
pub struct GcReport {
    pub objects_removed: usize,
    pub records_removed: usize,
    pub runs_forgotten: usize,
    pub work_removed: usize,
    pub bytes_freed: u64,
    pub objects_kept: usize,
}

impl GcReport {
    pub fn render(&self, dry_run: bool) -> String {
        format!(
            "{} {} object(s), {} record(s), {} run ref(s), {} work folder(s): {} {}; {} object(s) kept\n",
            if dry_run { "would remove" } else { "removed" },
            self.objects_removed,
            self.records_removed,
            self.runs_forgotten,
            self.work_removed,
            crate::audit::human_bytes(self.bytes_freed),
            if dry_run { "would be freed" } else { "freed" },
            self.objects_kept
        )
    }
}

fn sharded(store: &Store, dir: &str) -> Vec<(String, std::path::PathBuf)> {
    let mut out = Vec::new();
    let Ok(shards) = std::fs::read_dir(store.root().join(dir)) else {
        return out;
    };
    for shard in shards.flatten() {
        let Ok(rd) = std::fs::read_dir(shard.path()) else {
            continue;
        };
        for e in rd.flatten() {
            let name = e
                .file_name()
                .to_string_lossy()
                .trim_end_matches(".json")
                .to_string();
            out.push((
                format!("{}{name}", shard.file_name().to_string_lossy()),
                e.path(),
            ));
        }
    }
    out
}

pub fn gc(store: &Store, keep: usize, dry_run: bool, wait: bool) -> anyhow::Result<GcReport> {
    let mut report = GcReport::default();
    if !store.exists() {
        return Ok(report);
    }
    let _lock = StoreLock::acquire(store.root(), wait, "hhi gc")?;
    let refs = run_refs(store);
    let mut keys: HashSet<Digest> = HashSet::new();
    let mut objects: HashSet<Digest> = HashSet::new();
    for (n, (path, r)) in refs.iter().enumerate() {
        if n < keep {
            keys.extend(r.stages.values().copied());
        } else {
            report.runs_forgotten += 1;
            if !dry_run {
                std::fs::remove_file(path)?;
            }
        }
        if let Ok(Some(lock)) = LockFile::read(&r.lock) {
            for st in lock.stages.values() {
                keys.insert(st.key);
                objects.extend(st.outputs.values().map(|o| o.digest));
            }
        }
    }
    for key in &keys {
        if let Ok(Some(rec)) = store.read_record(key) {
            objects.extend(rec.outputs.values().map(|o| o.digest));
            objects.extend(rec.inputs.values().map(|i| i.digest));
        }
    }
    for (name, path) in sharded(store, "records") {
        if name
            .parse::<Digest>()
            .map(|k| keys.contains(&k))
            .unwrap_or(false)
        {
            continue;
        }
        report.records_removed += 1;
        report.bytes_freed += disk_size(&path);
        if !dry_run {
            remove_all(&path)?;
            let log = store.root().join("logs").join(format!("{name}.log"));
            report.bytes_freed += disk_size(&log);
            remove_all(&log)?;
        }
    }
    for (name, path) in sharded(store, "objects") {
        if name
            .parse::<Digest>()
            .map(|d| objects.contains(&d))
            .unwrap_or(false)
        {
            report.objects_kept += 1;
            continue;
        }
        report.objects_removed += 1;
        report.bytes_freed += disk_size(&path);
        if !dry_run {
            remove_all(&path)?;
        }
    }
    if let Ok(rd) = std::fs::read_dir(store.root().join("work")) {
        let now = SystemTime::now();
        for e in rd.flatten() {
            let old = e
                .metadata()
                .and_then(|m| m.modified())
                .map(|t| now.duration_since(t).unwrap_or_default() > WORK_TTL)
                .unwrap_or(false);
            if old {
                report.work_removed += 1;
                report.bytes_freed += disk_size(&e.path());
                if !dry_run {
                    remove_all(&e.path())?;
                }
            }
        }
    }
    if !dry_run {
        store.stat.prune();
        store.stat.save().ok();
    }
    Ok(report)
}
