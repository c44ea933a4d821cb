//! `hhi push`, `hhi pull` and `hhi audit --remote`: moving or checking the artifacts a
//! lock file names, stage by stage.

use super::{Remote, RemoteError};
use crate::lockfile::{LockFile, LockedStage};
use crate::pipeline::Pipeline;
use crate::store::{ObjectStatus, Store};
use anyhow::bail;
use serde::Serialize;

/// One line per stage, then the problems; exit status 1 when there are any.
#[derive(Debug, Serialize)]
pub struct SyncReport {
    pub remote: String,
    pub stages: Vec<(String, String)>,
    pub problems: Vec<String>,
    /// Transfers (push and pull; none for an audit).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub summary: Option<super::Summary>,
}

impl SyncReport {
    pub fn ok(&self) -> bool {
        self.problems.is_empty()
    }

    pub fn render(&self) -> String {
        let width = self.stages.iter().map(|s| s.0.len()).max().unwrap_or(0);
        let mut out = String::new();
        for (stage, state) in &self.stages {
            out.push_str(&format!("  {stage:width$}  {state}\n"));
        }
        for p in &self.problems {
            out.push_str(&format!("error: {p}\n"));
        }
        match &self.summary {
            Some(s) => out.push_str(&s.render()),
            None => out.push_str(&format!(
                "remote {}: {} stage(s) checked, {} problem(s)",
                self.remote,
                self.stages.len(),
                self.problems.len()
            )),
        }
        out.push('\n');
        out
    }
}

/// The locked stages selected by `targets` (and what they depend on), in pipeline order.
fn locked_stages(
    pipeline: &Pipeline,
    targets: &[String],
) -> anyhow::Result<Vec<(String, LockedStage)>> {
    let path = pipeline.lock_path();
    let Some(lock) = LockFile::read(&path)? else {
        bail!(
            "{} does not exist: it names what to transfer; run `hhi run {}` first (or check out the committed lock)",
            path.display(),
            pipeline.path.display()
        );
    };
    if let Some(t) = targets.iter().find(|t| pipeline.stage_index(t).is_none()) {
        bail!("no stage named `{t}` in {}", pipeline.path.display());
    }
    let selected = crate::scheduler::selected(pipeline, targets);
    let mut out = Vec::new();
    for &i in &pipeline.order {
        let name = &pipeline.stages[i].name;
        if !selected.contains(&i) {
            continue;
        }
        if let Some(st) = lock.stages.get(name) {
            out.push((name.clone(), st.clone()));
        }
    }
    Ok(out)
}

/// Uploads every locked stage the remote lacks (objects, then records).
pub fn push(
    store: &Store,
    pipeline: &Pipeline,
    remote: &Remote,
    targets: &[String],
) -> anyhow::Result<SyncReport> {
    let mut stages = Vec::new();
    let mut problems = Vec::new();
    for (name, st) in locked_stages(pipeline, targets)? {
        let Some(rec) = store.read_record(&st.key)? else {
            problems.push(format!(
                "`{name}` (key {}) is not in this store: run `hhi run {}` first",
                st.key.short(),
                pipeline.path.display()
            ));
            continue;
        };
        let damaged: Vec<String> = rec
            .outputs
            .iter()
            .filter(|(_, o)| store.object_status(&o.digest) != ObjectStatus::Intact)
            .map(|(p, o)| format!("{p} ({})", o.digest.short()))
            .collect();
        if !damaged.is_empty() {
            problems.push(format!(
                "`{name}`: outputs missing or damaged here, not pushed: {}; rerun the stage",
                damaged.join(", ")
            ));
            continue;
        }
        match remote.upload(store, &rec, false) {
            Ok(true) => stages.push((name, "pushed".into())),
            Ok(false) => stages.push((name, "already on the remote".into())),
            Err(e) => {
                if gives_up(&mut problems, &name, e) {
                    break;
                }
            }
        }
    }
    Ok(SyncReport {
        remote: remote.url.to_string(),
        stages,
        problems,
        summary: Some(remote.summary()),
    })
}

/// Downloads every locked stage this store lacks, verifying each digest.
pub fn pull(
    store: &Store,
    pipeline: &Pipeline,
    remote: &Remote,
    targets: &[String],
) -> anyhow::Result<SyncReport> {
    let mut stages = Vec::new();
    let mut problems = Vec::new();
    for (name, st) in locked_stages(pipeline, targets)? {
        let have = store.read_record(&st.key)?.is_some_and(|r| {
            r.outputs
                .values()
                .all(|o| store.object_status(&o.digest) == ObjectStatus::Intact)
        });
        if have {
            stages.push((name, "present".into()));
            continue;
        }
        match remote.pull_stage(store, &st.key) {
            Ok(Some(_)) => stages.push((name, "pulled".into())),
            Ok(None) => problems.push(format!(
                "`{name}`: the remote has no record for key {}; run the stage, or `hhi push` from a store that has it",
                st.key.short()
            )),
            Err(e) => {
                if gives_up(&mut problems, &name, e) {
                    break;
                }
            }
        }
    }
    Ok(SyncReport {
        remote: remote.url.to_string(),
        stages,
        problems,
        summary: Some(remote.summary()),
    })
}

/// Records a stage's transfer error; true when the remote is unreachable, so the
/// remaining stages are not tried one timeout at a time.
fn gives_up(problems: &mut Vec<String>, stage: &str, e: RemoteError) -> bool {
    let stop = matches!(e, RemoteError::Unavailable(_));
    problems.push(format!("`{stage}`: {e}"));
    stop
}

/// Re-hashes what the remote holds for each locked stage: the record must exist and name
/// the locked digests, and every object (every file of a folder) must hash to its name.
pub fn audit_remote(pipeline: &Pipeline, remote: &Remote) -> anyhow::Result<SyncReport> {
    let mut stages = Vec::new();
    let mut problems = Vec::new();
    for (name, st) in locked_stages(pipeline, &[])? {
        let rec = match remote.record(&st.key) {
            Ok(Some(r)) => r,
            Ok(None) => {
                problems.push(format!(
                    "`{name}`: no record on the remote for key {}",
                    st.key.short()
                ));
                continue;
            }
            Err(e) => {
                if gives_up(&mut problems, &name, e) {
                    break;
                }
                continue;
            }
        };
        let mut bad = Vec::new();
        for (port, locked) in &st.outputs {
            match rec.outputs.get(port) {
                Some(o) if o.digest == locked.digest => {
                    if let Err(e) = remote.verify_object(o) {
                        bad.push(format!("output `{port}`: {e}"));
                    }
                }
                Some(o) => bad.push(format!(
                    "output `{port}`: the remote record names {}, the lock {}",
                    o.digest.short(),
                    locked.digest.short()
                )),
                None => bad.push(format!("output `{port}`: not in the remote record")),
            }
        }
        if bad.is_empty() {
            let bytes: u64 = rec.outputs.values().map(|o| o.size).sum();
            stages.push((
                name,
                format!(
                    "ok ({} output(s), {} re-hashed)",
                    rec.outputs.len(),
                    crate::audit::human_bytes(bytes)
                ),
            ));
        } else {
            stages.push((name.clone(), "PROBLEM".into()));
            for b in bad {
                problems.push(format!("`{name}`: {b}"));
            }
        }
    }
    Ok(SyncReport {
        remote: remote.url.to_string(),
        stages,
        problems,
        summary: None,
    })
}
