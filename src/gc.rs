//! `hhi gc`: removes what nothing references any more.
//!
//! Roots: the records of the `--keep` most recent runs, and everything named by every lock
//! file that ever used this store and still exists (registered under `roots/` by each run,
//! as Nix registers indirect roots; a deleted lock file stops being a root). A kept record
//! keeps its outputs and its inputs. Work folders (checkpoints of unfinished stages) are
//! kept for a week; logs go with their record, or with their work folder for stages that
//! never finished. Deletions go through `Store::discard` (rename out, then delete), so a
//! killed gc never leaves a half-deleted object under its digest.

use crate::lockfile::LockFile;
use crate::store::Store;
use crate::store::fsutil::disk_size;
use crate::store::hash::Digest;
use crate::store::lock::StoreLock;
use crate::store::runs::run_refs;
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
    pub logs_removed: usize,
    pub bytes_freed: u64,
    pub objects_kept: usize,
}

impl GcReport {
    pub fn render(&self, dry_run: bool) -> String {
        format!(
            "{} {} object(s), {} record(s), {} run ref(s), {} work folder(s), {} log(s): {} {}; {} object(s) kept\n",
            if dry_run { "would remove" } else { "removed" },
            self.objects_removed,
            self.records_removed,
            self.runs_forgotten,
            self.work_removed,
            self.logs_removed,
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
    if !dry_run {
        store.clean_tmp()?;
    }
    let refs = run_refs(store);
    let mut keys: HashSet<Digest> = HashSet::new();
    let mut objects: HashSet<Digest> = HashSet::new();
    fn keep_lock(lock: &LockFile, keys: &mut HashSet<Digest>, objects: &mut HashSet<Digest>) {
        for st in lock.stages.values() {
            keys.insert(st.key);
            objects.extend(st.outputs.values().map(|o| o.digest));
        }
    }
    for (n, (path, r)) in refs.iter().enumerate() {
        if n < keep {
            for k in r.stages.values() {
                keys.insert(*k);
            }
        } else {
            report.runs_forgotten += 1;
            if !dry_run {
                std::fs::remove_file(path)?;
            }
        }
        if let Ok(Some(lock)) = LockFile::read(&r.lock) {
            keep_lock(&lock, &mut keys, &mut objects);
        }
    }
    for (root_file, lock_path) in store.roots() {
        match LockFile::read(&lock_path) {
            Ok(Some(lock)) => keep_lock(&lock, &mut keys, &mut objects),
            // The lock file is gone: it no longer protects anything.
            Ok(None) if !dry_run => std::fs::remove_file(&root_file)?,
            Ok(None) => {}
            // Unreadable but present: keep being cautious rather than delete what it names.
            Err(e) => tracing::warn!("cannot read gc root {}: {e:#}", lock_path.display()),
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
            store.discard(&path)?;
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
            store.discard(&path)?;
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
                    store.discard(&e.path())?;
                }
            }
        }
    }
    // A log belongs to a kept record, or to a stage whose work folder is still there (it
    // failed or was killed, and its log explains why); any other log is garbage.
    if let Ok(rd) = std::fs::read_dir(store.root().join("logs")) {
        for e in rd.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            let Some(hex) = name.strip_suffix(".log") else {
                continue;
            };
            let Ok(key) = hex.parse::<Digest>() else {
                continue;
            };
            let recorded = keys.contains(&key) && store.record_path(&key).exists();
            if recorded || store.work_dir(&key).exists() {
                continue;
            }
            report.logs_removed += 1;
            report.bytes_freed += disk_size(&e.path());
            if !dry_run {
                store.discard(&e.path())?;
            }
        }
    }
    // A report's run facts (runs/reports/<digest>.js) go with the report.
    if let Ok(rd) = std::fs::read_dir(store.runs_dir().join("reports")) {
        for e in rd.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            let kept = name
                .strip_suffix(".js")
                .and_then(|h| h.parse::<Digest>().ok())
                .is_some_and(|d| objects.contains(&d));
            if !kept {
                report.bytes_freed += disk_size(&e.path());
                if !dry_run {
                    std::fs::remove_file(e.path())?;
                }
            }
        }
    }
    // Slurm job files (slurm/<key>.{json,sh,jobid}) follow the stage's log: kept while
    // the log is (a failed job's files explain it, a live job's `.jobid` lets a later run
    // attach), removed with it; a job's leftover staging (slurm/tmp/<job id>) only while
    // that job is live.
    let jobs = store.root().join("slurm");
    if let Ok(rd) = std::fs::read_dir(&jobs) {
        for e in rd.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            let Some(key) = name
                .split('.')
                .next()
                .and_then(|h| h.parse::<Digest>().ok())
            else {
                continue;
            };
            let live = jobs.join(format!("{}.jobid", key.hex())).exists();
            if live || store.log_path(&key).exists() {
                continue;
            }
            report.bytes_freed += disk_size(&e.path());
            if !dry_run {
                std::fs::remove_file(e.path())?;
            }
        }
    }
    if let Ok(rd) = std::fs::read_dir(jobs.join("tmp")) {
        for e in rd.flatten() {
            let id = e.file_name().to_string_lossy().into_owned();
            if crate::slurm::job_state(&id).is_some_and(|s| s.live()) {
                continue;
            }
            report.bytes_freed += disk_size(&e.path());
            if !dry_run {
                store.discard(&e.path())?;
            }
        }
    }
    if !dry_run {
        store.stat.prune();
        store.stat.save().ok();
    }
    Ok(report)
}
