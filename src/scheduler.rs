//! `hhi run`: decides each stage as soon as its inputs are known, runs stale ones on a
//! blocking thread pool (up to `--jobs` at once), publishes their outputs, and writes the
//! lock file. A failed stage stops its descendants, never its siblings.

use crate::context::StageContext;
use crate::lockfile::{LockFile, LockedOutput, LockedStage};
use crate::pipeline::{Pipeline, Stage};
use crate::plan::{self, Decision, Known, Reason, Resolved};
use crate::progress::Progress;
use crate::store::Store;
use crate::store::fsutil;
use crate::store::hash::Digest;
use crate::store::lock::StoreLock;
use crate::store::record::{OutputRecord, Record};
use crate::store::runs::{RunInfo, write_run_ref};
pub use crate::store::runs::{RunRef, run_refs};
use anyhow::{Context, anyhow};
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget};
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Instant, SystemTime};

#[derive(Debug, Clone)]
pub struct RunOptions {
    /// Run only these stages and what they depend on (all stages when empty).
    pub targets: Vec<String>,
    /// Rerun these stages even if fresh.
    pub force: Vec<String>,
    pub jobs: usize,
    /// Wait for a store in use by another process (else fail at once).
    pub wait_for_lock: bool,
    /// Draw progress bars (only shown on a terminal).
    pub progress: bool,
    /// The `--set`s the pipeline was loaded with, recorded with the run.
    pub overrides: Vec<String>,
    /// A name for the run (`hhi runs`, `hhi diff`).
    pub name: Option<String>,
    /// Write P.lock. An experiment (a run with overrides) leaves the committed lock alone
    /// unless asked; its keys are in its run ref either way.
    pub write_lock: bool,
    /// Write a run ref (`hhi runs`); off for the merged graph of a sweep, whose variants
    /// are recorded one by one.
    pub record_run: bool,
    /// Count Slurm jobs against `jobs` too (the user gave `--jobs`). Otherwise every ready
    /// Slurm stage is submitted at once: the cluster schedules them, not this machine's
    /// core count.
    pub limit_slurm_jobs: bool,
    /// The shared remote cache: `--remote`/`--no-remote`, else `HHI_REMOTE`, else the
    /// pipeline's `[pipeline] remote`.
    pub remote: crate::remote::RemoteChoice,
    /// Fail instead of warning when the remote cannot be used.
    pub remote_required: bool,
}

/// Threads for the blocking pool: `jobs` local stages, plus one waiting on each Slurm
/// stage (a wait is a thread polling `squeue`, asleep between polls).
fn blocking_threads(pipeline: &Pipeline, opts: &RunOptions) -> usize {
    let slurm = pipeline
        .stages
        .iter()
        .filter(|s| s.executor != crate::slurm::Executor::Local)
        .count();
    opts.jobs.max(1) + slurm
}

impl Default for RunOptions {
    fn default() -> Self {
        RunOptions {
            targets: Vec::new(),
            force: Vec::new(),
            jobs: std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(1),
            wait_for_lock: true,
            progress: false,
            overrides: Vec::new(),
            name: None,
            write_lock: true,
            record_run: true,
            limit_slurm_jobs: false,
            remote: crate::remote::RemoteChoice::Default,
            remote_required: false,
        }
    }
}

#[derive(Debug, Clone, Serialize, PartialEq)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum Outcome {
    Fresh,
    Ran {
        seconds: f64,
    },
    /// Stale here, downloaded from the remote cache (verified) instead of run.
    Fetched {
        seconds: f64,
    },
    Failed {
        error: String,
    },
    Skipped {
        because: String,
    },
    NotSelected,
}

#[derive(Debug, Clone, Serialize)]
pub struct StageReport {
    pub name: String,
    pub key: Option<Digest>,
    pub outcome: Outcome,
    pub reasons: Vec<Reason>,
}

#[derive(Debug, Clone, Serialize)]
pub struct RunReport {
    pub pipeline: String,
    pub stages: Vec<StageReport>,
    pub seconds: f64,
    /// The `index.html` of every report the run produced or found fresh.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub reports: Vec<PathBuf>,
    /// The run's id in `hhi runs` (none for a run on a read-only store).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub run_id: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub overrides: Vec<String>,
    pub wrote_lock: bool,
    /// What the remote cache did in this run, when one was in use.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub remote: Option<crate::remote::Summary>,
}

impl RunReport {
    pub fn success(&self) -> bool {
        !self
            .remote
            .as_ref()
            .is_some_and(crate::remote::Summary::failed_required)
            && !self
                .stages
                .iter()
                .any(|s| matches!(s.outcome, Outcome::Failed { .. } | Outcome::Skipped { .. }))
    }

    pub fn outcome(&self, stage: &str) -> Option<&Outcome> {
        self.stages
            .iter()
            .find(|s| s.name == stage)
            .map(|s| &s.outcome)
    }

    /// One line per stage, then the failures in full, then a total.
    pub fn render(&self) -> String {
        let width = self.stages.iter().map(|s| s.name.len()).max().unwrap_or(0);
        let mut out = String::new();
        let (mut fresh, mut ran, mut failed, mut skipped, mut fetched) = (0, 0, 0, 0, 0);
        for s in &self.stages {
            let line = match &s.outcome {
                Outcome::Fresh => {
                    fresh += 1;
                    format!("  fresh    {}", s.name)
                }
                Outcome::Ran { seconds } => {
                    ran += 1;
                    format!("  ran      {:width$}  in {}", s.name, fmt_secs(*seconds))
                }
                Outcome::Fetched { seconds } => {
                    fetched += 1;
                    format!(
                        "  remote   {:width$}  downloaded and verified in {}",
                        s.name,
                        fmt_secs(*seconds)
                    )
                }
                Outcome::Failed { error } => {
                    failed += 1;
                    format!(
                        "  failed   {:width$}  {}",
                        s.name,
                        error.lines().next().unwrap_or("")
                    )
                }
                Outcome::Skipped { because } => {
                    skipped += 1;
                    format!("  skipped  {:width$}  {because}", s.name)
                }
                Outcome::NotSelected => continue,
            };
            out.push_str(line.trim_end());
            out.push('\n');
        }
        for s in &self.stages {
            if let Outcome::Failed { error } = &s.outcome {
                out.push_str(&format!("\nerror: stage `{}` failed: {error}\n", s.name));
            }
        }
        let fetched = if fetched > 0 || self.remote.is_some() {
            format!(", {fetched} from the remote")
        } else {
            String::new()
        };
        out.push_str(&format!(
            "\n{fresh} fresh, {ran} ran{fetched}, {failed} failed, {skipped} skipped in {}\n",
            fmt_secs(self.seconds)
        ));
        if let Some(r) = &self.remote {
            out.push_str(&r.render());
            out.push('\n');
        }
        for page in &self.reports {
            out.push_str(&format!("report: {}\n", page.display()));
        }
        if let Some(id) = &self.run_id {
            if self.overrides.is_empty() || self.wrote_lock {
                out.push_str(format!("run {id} {}", self.overrides.join(" ")).trim_end());
                out.push('\n');
            } else {
                out.push_str(&format!(
                    "run {id} with {} (P.lock left as the file says; --write-lock to change it)\n",
                    self.overrides.join(" ")
                ));
            }
        }
        out
    }
}

pub fn fmt_secs(s: f64) -> String {
    if s < 1.0 {
        format!("{:.0}ms", s * 1000.0)
    } else if s < 120.0 {
        format!("{s:.1}s")
    } else {
        format!("{:.0}m{:02.0}s", (s / 60.0).floor(), s % 60.0)
    }
}

/// Peak resident memory of this process so far (Linux `VmHWM`).
fn process_peak_rss() -> Option<u64> {
    let s = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = s.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

/// What a stage needs to run on another thread.
pub struct Job {
    pub stage: Stage,
    pub pipeline_name: String,
    pub pipeline_dir: PathBuf,
    pub backend: String,
    pub resolved: Resolved,
}

/// Runs one stage body and publishes its outputs; the record is written last, so a crash
/// at any point leaves the stage either complete or absent. Used by `run` and by
/// `audit --reproduce` (against a scratch store).
pub fn execute(store: &Store, job: Job, progress: Progress) -> anyhow::Result<Record> {
    let Job {
        stage,
        pipeline_name,
        pipeline_dir,
        backend,
        resolved,
    } = job;
    let key = resolved.key;
    let staging = store.staging_path(&stage.name);
    std::fs::create_dir_all(&staging).context("creating a staging folder")?;
    let work = store.work_dir(&key);
    std::fs::create_dir_all(&work).context("creating the work folder")?;
    std::fs::create_dir_all(store.root().join("logs"))?;
    let inputs: BTreeMap<String, PathBuf> = resolved
        .inputs
        .iter()
        .map(|(p, i)| (p.clone(), store.object_path(&i.digest)))
        .collect();
    let outputs: BTreeMap<String, PathBuf> = stage
        .signature
        .outputs
        .iter()
        .map(|o| (o.name.clone(), staging.join(&o.name)))
        .collect();
    let mut ctx = StageContext::new(
        stage.name.clone(),
        stage.params.clone(),
        stage.seed,
        backend.clone(),
        pipeline_dir,
        inputs,
        outputs.clone(),
        work.clone(),
        progress,
    );
    ctx.set_log_path(store.log_path(&key));
    ctx.set_store_objects(store.root().join("objects"));
    let started = SystemTime::now();
    let clock = Instant::now();
    let result = check_inputs(store, &resolved.inputs, InputCheck::Before)
        .and_then(|()| stage.kind.run(&mut ctx))
        .and_then(|()| check_inputs(store, &resolved.inputs, InputCheck::After))
        .and_then(|()| {
            let mut published = BTreeMap::new();
            for spec in &stage.signature.outputs {
                let path = &outputs[&spec.name];
                if std::fs::symlink_metadata(path).is_err() {
                    return Err(anyhow!(
                        "the stage did not write its output `{}`",
                        spec.name
                    ));
                }
                let h = store
                    .publish(path)
                    .with_context(|| format!("publishing output `{}`", spec.name))?;
                published.insert(
                    spec.name.clone(),
                    OutputRecord {
                        digest: h.digest,
                        size: h.size,
                        object: h.kind,
                        ty: spec.ty,
                    },
                );
            }
            // Objects durable before the record that names them: one syncfs for all of them.
            store
                .sync()
                .context("flushing the stage's outputs to disk")?;
            Ok(published)
        });
    let outputs = match result {
        Ok(o) => o,
        Err(e) => {
            let _ = fsutil::remove_all(&staging);
            return Err(e);
        }
    };
    let duration = clock.elapsed().as_secs_f64();
    let rec = Record {
        format: 1,
        key,
        stage: stage.name.clone(),
        pipeline: pipeline_name,
        kind: stage.kind.name().to_string(),
        version: stage.kind.version(),
        params: resolved.params,
        inputs: resolved.inputs,
        outputs,
        seed: stage.seed,
        backend: backend.clone(),
        device: ctx.device().to_string(),
        kernel: ctx.kernel().to_string(),
        hhi_version: env!("CARGO_PKG_VERSION").into(),
        started: humantime::format_rfc3339_millis(started).to_string(),
        finished: humantime::format_rfc3339_millis(SystemTime::now()).to_string(),
        duration_s: duration,
        peak_rss_bytes: ctx.peak_rss_bytes.or_else(process_peak_rss),
        figures: ctx.figures.clone(),
        slurm: crate::slurm::current_job(),
    };
    store.write_record(&rec)?;
    let _ = fsutil::remove_all(&work);
    let _ = fsutil::remove_all(&staging);
    Ok(rec)
}

#[derive(Clone, Copy, PartialEq)]
enum InputCheck {
    Before,
    After,
}

/// Every input object must hold its digest before a stage starts and still hold it when
/// the stage ends: inputs are shared, immutable store objects, and mode 0444 does not stop
/// root (nor a hard link plus an append). Unchanged objects cost a few `stat`s (stat
/// cache); a changed one is re-hashed. A stage that changed an input fails, naming it,
/// and the tampered object is removed from the store, so nothing built from those bytes
/// is recorded and the next run rebuilds (or re-imports) the original.
fn check_inputs(
    store: &Store,
    inputs: &BTreeMap<String, crate::store::record::InputRecord>,
    when: InputCheck,
) -> anyhow::Result<()> {
    use crate::store::ObjectStatus;
    let mut bad = Vec::new();
    for (port, input) in inputs {
        let status = store.object_status(&input.digest);
        if status == ObjectStatus::Intact {
            continue;
        }
        let path = store.object_path(&input.digest);
        if let ObjectStatus::Corrupt { found } = status {
            store
                .discard(&path)
                .with_context(|| format!("removing the tampered object {}", path.display()))?;
            bad.push(format!(
                "input `{port}` (from {}): expected {}, found {}",
                input.from,
                input.digest.short(),
                found.short()
            ));
        } else {
            bad.push(format!(
                "input `{port}` (from {}): object {} is missing",
                input.from,
                input.digest.short()
            ));
        }
    }
    if bad.is_empty() {
        return Ok(());
    }
    let what = match when {
        InputCheck::Before => "an input was changed or removed before the stage started",
        InputCheck::After => "the stage changed its input (inputs are read-only store objects)",
    };
    Err(anyhow!(
        "{what}:\n  {}\n  = note: the damaged object was removed from the store; the next run \
         rebuilds it and reruns what depends on it",
        bad.join("\n  ")
    ))
}

/// Runs what is stale. Takes the store lock for the whole run.
pub fn run(pipeline: &Pipeline, store: Arc<Store>, opts: &RunOptions) -> anyhow::Result<RunReport> {
    for name in opts.targets.iter().chain(&opts.force) {
        if pipeline.stage_index(name).is_none() {
            let names: Vec<&str> = pipeline.stages.iter().map(|s| s.name.as_str()).collect();
            let hint = crate::diag::did_you_mean(name, names.iter().copied())
                .map(|s| format!("did you mean `{s}`?"))
                .unwrap_or_else(|| format!("stages: {}", names.join(", ")));
            anyhow::bail!(
                "no stage named `{name}` in {}\n  = help: {hint}",
                pipeline.path.display()
            );
        }
    }
    if store.exists() && !store.writable() {
        return run_read_only(pipeline, &store, opts);
    }
    let what = format!("hhi run {}", pipeline.path.display());
    let _lock = StoreLock::acquire(store.root(), opts.wait_for_lock, &what)?;
    store
        .init()
        .with_context(|| format!("creating the store {}", store.root().display()))?;
    store.clean_tmp()?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .max_blocking_threads(blocking_threads(pipeline, opts))
        .build()
        .context("starting the scheduler")?;
    // Opened before the scheduler's runtime: the remote has its own.
    let remote = crate::remote::for_run(pipeline, &store, &opts.remote, opts.remote_required)?;
    let mut report = rt.block_on(schedule(pipeline, store.clone(), opts, remote.clone()))?;
    finish_remote(&mut report, remote);
    store.stat.save().ok();
    // The run's facts beside each report are a convenience for the page, not a result: a
    // failure to write them is a warning, never a failed run.
    match crate::report::run::write_facts(pipeline, &report, &store) {
        Ok(pages) => report.reports = pages,
        Err(e) => tracing::warn!("could not write the run's facts beside the report: {e:#}"),
    }
    Ok(report)
}

/// What `hhi runs` lists of a run: when, how long, with which overrides, what ran.
fn run_info(
    stages: &[StageReport],
    started: SystemTime,
    seconds: f64,
    name: Option<String>,
    overrides: &[String],
    wrote_lock: bool,
) -> RunInfo {
    let count = |f: fn(&Outcome) -> bool| stages.iter().filter(|r| f(&r.outcome)).count();
    RunInfo {
        started: humantime::format_rfc3339_seconds(started).to_string(),
        seconds,
        name,
        overrides: overrides.to_vec(),
        ran: count(|o| matches!(o, Outcome::Ran { .. })),
        fresh: count(|o| matches!(o, Outcome::Fresh | Outcome::Fetched { .. })),
        failed: count(|o| matches!(o, Outcome::Failed { .. } | Outcome::Skipped { .. })),
        wrote_lock,
    }
}

/// One variant of a sweep: the pipeline loaded with its overrides, and its record.
pub struct Variant {
    pub pipeline: Pipeline,
    pub overrides: Vec<String>,
    pub name: Option<String>,
}

/// Runs the variants of a sweep as one merged graph ([`crate::sweep`]): concurrently where
/// `opts.jobs` allows, each shared stage once. Each variant is then recorded as a run of
/// its own (`hhi runs`), a stage counted as run by the first variant that has it and as
/// fresh by the others. P.lock is never written: which variant would it describe?
pub fn run_sweep(
    variants: &[Variant],
    store: Arc<Store>,
    opts: &RunOptions,
) -> anyhow::Result<Vec<RunReport>> {
    let pipelines: Vec<&Pipeline> = variants.iter().map(|v| &v.pipeline).collect();
    let merged = crate::sweep::merge(&pipelines)?;
    let first = &variants[0].pipeline;
    for name in opts.targets.iter().chain(&opts.force) {
        if first.stage_index(name).is_none() {
            anyhow::bail!("no stage named `{name}` in {}", first.path.display());
        }
    }
    // Targets and forced stages are names: `--target captioner` is every variant's.
    let mut mopts = opts.clone();
    mopts.write_lock = false;
    mopts.record_run = false;
    if store.exists() && !store.writable() {
        anyhow::bail!(
            "the store {} is read-only: a sweep runs new variants",
            store.root().display()
        );
    }
    let what = format!("hhi run {} (a sweep)", first.path.display());
    let _lock = StoreLock::acquire(store.root(), opts.wait_for_lock, &what)?;
    store
        .init()
        .with_context(|| format!("creating the store {}", store.root().display()))?;
    store.clean_tmp()?;
    let started = SystemTime::now();
    let rt = tokio::runtime::Builder::new_current_thread()
        .max_blocking_threads(blocking_threads(&merged.pipeline, opts))
        .build()
        .context("starting the scheduler")?;
    let remote =
        crate::remote::for_run(&merged.pipeline, &store, &opts.remote, opts.remote_required)?;
    let mut all = rt.block_on(schedule(
        &merged.pipeline,
        store.clone(),
        &mopts,
        remote.clone(),
    ))?;
    finish_remote(&mut all, remote);
    store.stat.save().ok();
    let mut reports = Vec::new();
    for (v, var) in variants.iter().enumerate() {
        let stages: Vec<StageReport> = var
            .pipeline
            .stages
            .iter()
            .enumerate()
            .map(|(i, st)| {
                let c = merged.members[v][i];
                let sr = &all.stages[c];
                let owner = merged.members.iter().position(|m| m.contains(&c));
                let outcome = match &sr.outcome {
                    Outcome::Ran { .. } if owner != Some(v) => Outcome::Fresh,
                    o => o.clone(),
                };
                StageReport {
                    name: st.name.clone(),
                    key: sr.key,
                    outcome,
                    reasons: sr.reasons.clone(),
                }
            })
            .collect();
        let count = |f: fn(&Outcome) -> bool| stages.iter().filter(|r| f(&r.outcome)).count();
        let info = RunInfo {
            started: humantime::format_rfc3339_seconds(started).to_string(),
            seconds: all.seconds,
            name: var.name.clone(),
            overrides: var.overrides.clone(),
            ran: count(|o| matches!(o, Outcome::Ran { .. })),
            fresh: count(|o| matches!(o, Outcome::Fresh | Outcome::Fetched { .. })),
            failed: count(|o| matches!(o, Outcome::Failed { .. } | Outcome::Skipped { .. })),
            wrote_lock: false,
        };
        let keys: BTreeMap<String, Digest> = stages
            .iter()
            .filter_map(|s| s.key.map(|k| (s.name.clone(), k)))
            .collect();
        let id = crate::store::runs::write_run_ref_keys(
            &store,
            &var.pipeline.path,
            &var.pipeline.lock_path(),
            keys,
            info,
        )?;
        let mut report = RunReport {
            pipeline: var.pipeline.name.clone(),
            stages,
            seconds: all.seconds,
            reports: Vec::new(),
            run_id: Some(id),
            overrides: var.overrides.clone(),
            wrote_lock: false,
            // The merged graph's transfers, told once, with the first variant.
            remote: if v == 0 { all.remote.clone() } else { None },
        };
        match crate::report::run::write_facts(&var.pipeline, &report, &store) {
            Ok(pages) => report.reports = pages,
            Err(e) => tracing::warn!("could not write the run's facts beside the report: {e:#}"),
        }
        reports.push(report);
    }
    Ok(reports)
}

/// A run against a store this process cannot write (a read-only mount, a teammate's
/// store): fine when everything selected is fresh, which then only refreshes the lock
/// file; otherwise a clear error naming what would have to run.
fn run_read_only(
    pipeline: &Pipeline,
    store: &Store,
    opts: &RunOptions,
) -> anyhow::Result<RunReport> {
    let clock = Instant::now();
    let plan = plan::plan(store, pipeline, &opts.force)?;
    let selected = selection(pipeline, opts);
    let stale: Vec<String> = plan
        .stages
        .iter()
        .enumerate()
        .filter(|(i, s)| selected.contains(i) && s.state != plan::PlanState::Fresh)
        .map(|(_, s)| s.name.clone())
        .collect();
    if !stale.is_empty() {
        anyhow::bail!(
            "the store {} is read-only for this user, and {} stage(s) would run: {}\n  = help: \
             use a store you can write (--store DIR or HHI_STORE), or `hhi plan` to see why they are stale",
            store.root().display(),
            stale.len(),
            stale.join(", ")
        );
    }
    let old_lock = LockFile::read(&pipeline.lock_path())?;
    let mut lock = LockFile {
        version: 1,
        pipeline: pipeline.name.clone(),
        stages: BTreeMap::new(),
    };
    let mut stages = Vec::new();
    for (i, st) in plan.stages.iter().enumerate() {
        let name = pipeline.stages[i].name.clone();
        let rec = match st.key {
            Some(k) if selected.contains(&i) => store.read_record(&k)?,
            _ => None,
        };
        match rec {
            Some(rec) => {
                lock.stages.insert(
                    name.clone(),
                    locked(&pipeline.stages[i], &rec.outputs, rec.key),
                );
                stages.push(StageReport {
                    name,
                    key: Some(rec.key),
                    outcome: Outcome::Fresh,
                    reasons: vec![],
                });
            }
            None => {
                if let Some(old) = old_lock.as_ref().and_then(|l| l.stages.get(&name)) {
                    lock.stages.insert(name.clone(), old.clone());
                }
                stages.push(StageReport {
                    name,
                    key: None,
                    outcome: Outcome::NotSelected,
                    reasons: vec![],
                });
            }
        }
    }
    if opts.write_lock {
        lock.write(&pipeline.lock_path())?;
    }
    Ok(RunReport {
        pipeline: pipeline.name.clone(),
        stages,
        seconds: clock.elapsed().as_secs_f64(),
        reports: Vec::new(),
        run_id: None,
        overrides: opts.overrides.clone(),
        wrote_lock: opts.write_lock,
        remote: None,
    })
}

/// The stages a run covers: all, or the targets and everything they depend on.
fn selection(pipeline: &Pipeline, opts: &RunOptions) -> BTreeSet<usize> {
    selected(pipeline, &opts.targets)
}

/// The stages `targets` name and everything they depend on; every stage when empty.
pub fn selected(pipeline: &Pipeline, targets: &[String]) -> BTreeSet<usize> {
    if targets.is_empty() {
        (0..pipeline.stages.len()).collect()
    } else {
        // By name, every stage of that name: a sweep's merged graph has one per variant.
        let idx: Vec<usize> = (0..pipeline.stages.len())
            .filter(|&i| targets.contains(&pipeline.stages[i].name))
            .collect();
        pipeline.dag.ancestors(&idx)
    }
}

fn locked(stage: &Stage, outs: &BTreeMap<String, OutputRecord>, key: Digest) -> LockedStage {
    LockedStage {
        kind: stage.kind.name().into(),
        key,
        outputs: outs
            .iter()
            .map(|(p, o)| {
                (
                    p.clone(),
                    LockedOutput {
                        digest: o.digest,
                        size: o.size,
                    },
                )
            })
            .collect(),
    }
}

/// Where a stage is in a run.
#[derive(Clone, Debug)]
enum Status {
    Pending,
    /// Handed to the pool: being decided, then run if stale.
    Dispatched,
    Done(BTreeMap<String, OutputRecord>, Digest),
    Failed,
    Skipped,
}

/// The state of a run, changed only through named transitions, so the scheduling rules
/// can be tested without tokio or threads (see the tests below).
struct RunState {
    status: Vec<Status>,
    reports: Vec<StageReport>,
    selected: BTreeSet<usize>,
}

impl RunState {
    fn new(pipeline: &Pipeline, selected: BTreeSet<usize>) -> RunState {
        RunState {
            status: vec![Status::Pending; pipeline.stages.len()],
            reports: pipeline
                .stages
                .iter()
                .map(|s| StageReport {
                    name: s.name.clone(),
                    key: None,
                    outcome: Outcome::NotSelected,
                    reasons: vec![],
                })
                .collect(),
            selected,
        }
    }

    fn pending(&self, i: usize) -> bool {
        self.selected.contains(&i) && matches!(self.status[i], Status::Pending)
    }

    /// Marks every pending stage below a failed or skipped one as skipped (to a fixed
    /// point); returns how many it marked.
    fn skip_blocked(&mut self, pipeline: &Pipeline) -> usize {
        let mut marked = 0;
        for &i in &pipeline.order {
            if !self.pending(i) {
                continue;
            }
            let bad = pipeline
                .dag
                .upstream(i)
                .into_iter()
                .find(|&u| matches!(self.status[u], Status::Failed | Status::Skipped));
            if let Some(bad) = bad {
                let because = match self.status[bad] {
                    Status::Failed => format!("upstream `{}` failed", pipeline.stages[bad].name),
                    _ => format!("upstream `{}` was skipped", pipeline.stages[bad].name),
                };
                self.status[i] = Status::Skipped;
                self.reports[i].outcome = Outcome::Skipped { because };
                marked += 1;
            }
        }
        marked
    }

    /// Pending stages whose inputs are all known, in pipeline order.
    fn ready(&self, pipeline: &Pipeline) -> Vec<usize> {
        pipeline
            .order
            .iter()
            .copied()
            .filter(|&i| {
                self.pending(i)
                    && pipeline
                        .dag
                        .upstream(i)
                        .iter()
                        .all(|&u| matches!(self.status[u], Status::Done(..)))
            })
            .collect()
    }

    /// The outputs of stage `i`'s upstream stages, for deciding it elsewhere.
    fn known_for(&self, pipeline: &Pipeline, i: usize) -> Known {
        pipeline
            .dag
            .upstream(i)
            .into_iter()
            .filter_map(|u| match &self.status[u] {
                Status::Done(outs, _) => Some((pipeline.stages[u].name.clone(), outs.clone())),
                _ => None,
            })
            .collect()
    }

    fn dispatch(&mut self, i: usize) {
        self.status[i] = Status::Dispatched;
    }

    /// The planner's verdict on a dispatched stage: fresh, to run (with its key and
    /// reasons), or failed to decide.
    fn decide(&mut self, i: usize, verdict: &anyhow::Result<Decision>) {
        match verdict {
            Err(e) => self.fail(i, e),
            Ok(Decision::Fresh(rec)) => {
                self.reports[i].key = Some(rec.key);
                self.reports[i].outcome = Outcome::Fresh;
                self.status[i] = Status::Done(rec.outputs.clone(), rec.key);
            }
            Ok(Decision::Run { resolved, reasons }) => {
                self.reports[i].key = Some(resolved.key);
                self.reports[i].reasons = reasons.clone();
            }
        }
    }

    /// A stage that ran: done with its outputs, or failed.
    fn finish(&mut self, i: usize, result: anyhow::Result<Record>, seconds: f64) {
        match result {
            Ok(rec) => {
                self.reports[i].outcome = Outcome::Ran { seconds };
                self.status[i] = Status::Done(rec.outputs, rec.key);
            }
            Err(e) => self.fail(i, &e),
        }
    }

    /// A stale stage whose results came from the remote cache.
    fn fetched(&mut self, i: usize, rec: Record, seconds: f64) {
        self.reports[i].outcome = Outcome::Fetched { seconds };
        self.status[i] = Status::Done(rec.outputs, rec.key);
    }

    fn fail(&mut self, i: usize, e: &anyhow::Error) {
        self.status[i] = Status::Failed;
        self.reports[i].outcome = Outcome::Failed {
            error: format!("{e:#}"),
        };
    }

    /// The lock after this run: every stage complete now; stages not run this time keep
    /// their previous entries, so a `--target` run does not forget the rest.
    fn lock(&self, pipeline: &Pipeline, old: Option<&LockFile>) -> LockFile {
        let mut lock = LockFile {
            version: 1,
            pipeline: pipeline.name.clone(),
            stages: BTreeMap::new(),
        };
        for (i, st) in pipeline.stages.iter().enumerate() {
            let entry = match &self.status[i] {
                Status::Done(outs, key) => Some(locked(st, outs, *key)),
                _ => old.and_then(|l| l.stages.get(&st.name)).cloned(),
            };
            if let Some(e) = entry {
                lock.stages.insert(st.name.clone(), e);
            }
        }
        lock
    }
}

/// What a dispatched stage came back with.
struct Settled {
    stage: usize,
    verdict: anyhow::Result<Decision>,
    /// Set when the stage was stale and ran.
    ran: Option<(anyhow::Result<Record>, f64)>,
    /// Set when the stage was stale and the remote cache had it.
    fetched: Option<(Record, f64)>,
}

async fn schedule(
    pipeline: &Pipeline,
    store: Arc<Store>,
    opts: &RunOptions,
    remote: Option<Arc<crate::remote::Remote>>,
) -> anyhow::Result<RunReport> {
    let clock = Instant::now();
    let started = SystemTime::now();
    let lock_path = pipeline.lock_path();
    let old_lock = LockFile::read(&lock_path)?;
    let planner = Arc::new(plan::Planner::new(&store, pipeline, &opts.force)?);
    let selected = selection(pipeline, opts);
    let mp = MultiProgress::with_draw_target(if opts.progress {
        ProgressDrawTarget::stderr()
    } else {
        ProgressDrawTarget::hidden()
    });
    let jobs = opts.jobs.max(1);
    // One line over the per-stage spinners: stages settled out of those selected, and an
    // ETA from the pace so far.
    let overall = mp.add(ProgressBar::new(selected.len() as u64));
    if let Ok(style) = indicatif::ProgressStyle::with_template(
        "{prefix:.bold} {pos}/{len} stages [{elapsed_precise}] {wide_bar} ETA {eta}",
    ) {
        overall.set_style(style);
    }
    overall.set_prefix(pipeline.name.clone());
    if let Some(r) = &remote {
        r.attach_bar(mp.add(ProgressBar::new(0)));
    }
    let mut state = RunState::new(pipeline, selected);
    let mut running = tokio::task::JoinSet::new();
    let unlimited = |i: usize| {
        !opts.limit_slurm_jobs && pipeline.stages[i].executor != crate::slurm::Executor::Local
    };
    let mut counted = 0usize;

    loop {
        overall.inc(state.skip_blocked(pipeline) as u64);
        for i in state.ready(pipeline) {
            if !unlimited(i) {
                if counted >= jobs {
                    continue;
                }
                counted += 1;
            }
            state.dispatch(i);
            let known = state.known_for(pipeline, i);
            let (planner, store, mp, remote) =
                (planner.clone(), store.clone(), mp.clone(), remote.clone());
            let job = (
                pipeline.stages[i].clone(),
                pipeline.name.clone(),
                pipeline.dir.clone(),
                pipeline.backend.clone(),
            );
            running.spawn_blocking(move || {
                std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                    settle(i, &planner, &store, &mp, remote.as_deref(), known, job)
                }))
                .unwrap_or_else(|p| Settled {
                    stage: i,
                    verdict: Err(anyhow!("the stage panicked: {}", panic_message(&p))),
                    ran: None,
                    fetched: None,
                })
            });
        }
        let Some(joined) = running.join_next().await else {
            break;
        };
        let settled = joined.context("a stage's thread was lost")?;
        if !unlimited(settled.stage) {
            counted -= 1;
        }
        overall.inc(1);
        state.decide(settled.stage, &settled.verdict);
        if let Some((rec, seconds)) = settled.fetched {
            state.fetched(settled.stage, rec, seconds);
        }
        if let Some((result, seconds)) = settled.ran {
            state.finish(settled.stage, result, seconds);
        }
    }
    overall.finish_and_clear();
    let lock = state.lock(pipeline, old_lock.as_ref());
    if opts.write_lock {
        lock.write(&lock_path)?;
        store.register_root(&lock_path)?;
    }
    let seconds = clock.elapsed().as_secs_f64();
    let info = run_info(
        &state.reports,
        started,
        seconds,
        opts.name.clone(),
        &opts.overrides,
        opts.write_lock,
    );
    let run_id = if opts.record_run {
        Some(write_run_ref(
            &store,
            &pipeline.path,
            &lock_path,
            &lock,
            info,
        )?)
    } else {
        None
    };
    Ok(RunReport {
        pipeline: pipeline.name.clone(),
        stages: state.reports,
        seconds,
        reports: Vec::new(),
        run_id,
        overrides: opts.overrides.clone(),
        wrote_lock: opts.write_lock,
        remote: None,
    })
}

/// Waits for the uploads still in flight, which finish before the run ends (and before
/// the store lock is released, so `gc` cannot take an object from under them), and adds
/// the remote's summary to the report.
fn finish_remote(report: &mut RunReport, remote: Option<Arc<crate::remote::Remote>>) {
    report.remote = remote.map(|r| r.finish());
}

/// On the blocking pool: decide a stage (hashing and importing its file inputs) and, if
/// it is stale, run it.
fn settle(
    i: usize,
    planner: &plan::Planner,
    store: &Arc<Store>,
    mp: &MultiProgress,
    remote: Option<&crate::remote::Remote>,
    known: Known,
    (stage, pipeline_name, pipeline_dir, backend): (Stage, String, PathBuf, String),
) -> Settled {
    let verdict = planner
        .judge(store, &stage, &known, true)
        .and_then(|v| match v {
            plan::Verdict::Decided(d) => Ok(d),
            plan::Verdict::Waiting(_) => Err(anyhow!("inputs of `{}` are not ready", stage.name)),
        });
    let Ok(Decision::Run { resolved, reasons }) = &verdict else {
        if let Ok(Decision::Fresh(rec)) = &verdict {
            tracing::debug!("`{}` is fresh (key {})", stage.name, rec.key.short());
            // A stage computed here whose upload never finished (a killed run) goes up now;
            // for one the remote has, this costs one HEAD request.
            if let Some(r) = remote {
                r.spawn_upload(store.clone(), (**rec).clone());
            }
        }
        return Settled {
            stage: i,
            verdict,
            ran: None,
            fetched: None,
        };
    };
    if let Some(r) = remote.filter(|_| reasons.first() != Some(&Reason::Forced)) {
        let started = Instant::now();
        match r.fetch(store, &resolved.key, &stage.name) {
            Ok(Some(rec)) => {
                tracing::info!("`{}`: fetched from the remote cache", stage.name);
                return Settled {
                    stage: i,
                    verdict,
                    ran: None,
                    fetched: Some((rec, started.elapsed().as_secs_f64())),
                };
            }
            Ok(None) => {}
            Err(e) => {
                return Settled {
                    stage: i,
                    verdict,
                    ran: Some((Err(e), started.elapsed().as_secs_f64())),
                    fetched: None,
                };
            }
        }
    }
    tracing::info!(
        "running `{}`: {}",
        stage.name,
        reasons
            .iter()
            .map(|r| r.to_string())
            .collect::<Vec<_>>()
            .join("; ")
    );
    let bar = mp.add(ProgressBar::new_spinner());
    bar.set_prefix(stage.name.clone());
    let progress = Progress::from_bar(bar);
    let started = Instant::now();
    let job = Job {
        stage,
        pipeline_name,
        pipeline_dir,
        backend,
        resolved: resolved.clone(),
    };
    let result = match job.stage.executor.clone() {
        crate::slurm::Executor::Local => execute(store, job, progress.clone()),
        crate::slurm::Executor::Slurm(spec) => crate::slurm::run_job(store, job, &spec, &progress),
    };
    progress.finish();
    if let (Some(r), Ok(rec)) = (remote, &result) {
        r.spawn_upload(store.clone(), rec.clone());
    }
    Settled {
        stage: i,
        verdict,
        ran: Some((result, started.elapsed().as_secs_f64())),
        fetched: None,
    }
}

fn panic_message(p: &Box<dyn std::any::Any + Send>) -> String {
    p.downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| p.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown panic".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn diamond() -> Pipeline {
        let src = r#"
[stages.a]
kind = "command"
outputs = ["o"]
run = "true"

[stages.b]
kind = "command"
inputs = { x = "a.o" }
outputs = ["o"]
run = "true"

[stages.c]
kind = "command"
inputs = { x = "a.o" }
outputs = ["o"]
run = "true"

[stages.d]
kind = "command"
inputs = { x = "b.o", y = "c.o" }
outputs = ["o"]
run = "true"
"#;
        Pipeline::parse(
            std::path::Path::new("p.toml"),
            src,
            &crate::stages::builtin(),
        )
        .unwrap()
    }

    fn idx(p: &Pipeline, n: &str) -> usize {
        p.stage_index(n).unwrap()
    }

    fn done(outs: &str) -> anyhow::Result<Record> {
        Err(anyhow!("{outs}"))
    }

    #[test]
    fn only_stages_with_known_inputs_are_ready_and_a_failure_skips_exactly_its_descendants() {
        let p = diamond();
        let mut st = RunState::new(&p, (0..4).collect());
        assert_eq!(st.ready(&p), vec![idx(&p, "a")]);
        st.dispatch(idx(&p, "a"));
        assert!(
            st.ready(&p).is_empty(),
            "a dispatched stage is not ready again"
        );
        // `a` fails: b, c and d are skipped, each naming the stage that blocked it.
        st.finish(idx(&p, "a"), done("boom"), 0.1);
        assert_eq!(st.skip_blocked(&p), 3);
        assert!(matches!(
            &st.reports[idx(&p, "d")].outcome,
            Outcome::Skipped { because } if because.contains("was skipped")
        ));
        assert!(matches!(
            &st.reports[idx(&p, "b")].outcome,
            Outcome::Skipped { because } if because == "upstream `a` failed"
        ));
        assert!(st.ready(&p).is_empty());
        assert_eq!(st.skip_blocked(&p), 0, "a fixed point");
    }

    #[test]
    fn a_failed_sibling_does_not_stop_the_other_branch() {
        let p = diamond();
        let mut st = RunState::new(&p, (0..4).collect());
        let a = idx(&p, "a");
        st.status[a] = Status::Done(BTreeMap::new(), Digest([0; 32]));
        let ready = st.ready(&p);
        assert_eq!(ready, vec![idx(&p, "b"), idx(&p, "c")]);
        st.dispatch(idx(&p, "b"));
        st.dispatch(idx(&p, "c"));
        st.finish(idx(&p, "b"), done("b broke"), 0.0);
        st.skip_blocked(&p);
        assert!(
            matches!(st.status[idx(&p, "c")], Status::Dispatched),
            "c keeps running"
        );
        assert!(matches!(st.status[idx(&p, "d")], Status::Skipped));
        // The lock keeps only what is complete (plus old entries, none here).
        let lock = st.lock(&p, None);
        assert_eq!(lock.stages.keys().collect::<Vec<_>>(), vec!["a"]);
    }

    #[test]
    fn unselected_stages_are_never_ready() {
        let p = diamond();
        let st = RunState::new(&p, [idx(&p, "a")].into_iter().collect());
        assert_eq!(st.ready(&p), vec![idx(&p, "a")]);
        let mut st = RunState::new(&p, BTreeSet::new());
        assert!(st.ready(&p).is_empty());
        assert_eq!(st.skip_blocked(&p), 0);
    }
}
