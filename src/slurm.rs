//! Stages as Slurm jobs. A stage with `executor = "slurm"` is not run in this process: hhi
//! writes what the stage needs (a [`JobSpec`]) into the store, submits a batch script that
//! runs the hidden `hhi exec-stage` on it with `sbatch --parsable`, and follows the job
//! with `squeue` and `scontrol show job` (`sacct` where the cluster keeps accounting). The
//! job publishes outputs and writes the record exactly as a local stage does (objects
//! first, record last), so a job killed by Slurm leaves nothing partial and a rerun
//! resumes from the stage's checkpoints. Slurm is the scheduler; hhi only submits and
//! waits.

use crate::pipeline::{Input, Stage};
use crate::plan::Resolved;
use crate::progress::Progress;
use crate::registry::Registry;
use crate::scheduler::{Job, execute, fmt_secs};
use crate::store::Store;
use crate::store::hash::Digest;
use crate::store::record::{InputRecord, Record};
use anyhow::{Context, anyhow, bail};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;
use std::time::Duration;

/// Where a stage runs. Not part of any cache key: the same stage on a laptop or on a
/// cluster is the same computation.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub enum Executor {
    #[default]
    Local,
    Slurm(SlurmSpec),
}

/// A job's resources, from `slurm = { … }` in `[pipeline]` and in the stage (the stage's
/// keys win).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SlurmSpec {
    pub partition: Option<String>,
    pub gpus: Option<u32>,
    pub cpus: Option<u32>,
    pub mem: Option<String>,
    pub time: Option<String>,
    pub account: Option<String>,
    /// Free-form `sbatch` flags, e.g. `["--qos=high", "--constraint=a100"]`.
    pub extra: Vec<String>,
}

pub const SPEC_KEYS: [&str; 7] = [
    "partition",
    "gpus",
    "cpus",
    "mem",
    "time",
    "account",
    "extra",
];

impl SlurmSpec {
    /// `self` with `over`'s keys laid on top.
    pub fn merged(&self, over: &SlurmSpec) -> SlurmSpec {
        SlurmSpec {
            partition: over.partition.clone().or_else(|| self.partition.clone()),
            gpus: over.gpus.or(self.gpus),
            cpus: over.cpus.or(self.cpus),
            mem: over.mem.clone().or_else(|| self.mem.clone()),
            time: over.time.clone().or_else(|| self.time.clone()),
            account: over.account.clone().or_else(|| self.account.clone()),
            extra: self.extra.iter().chain(&over.extra).cloned().collect(),
        }
    }

    /// The `#SBATCH` lines.
    fn directives(&self) -> Vec<String> {
        let mut v = Vec::new();
        if let Some(p) = &self.partition {
            v.push(format!("--partition={p}"));
        }
        if let Some(g) = self.gpus {
            v.push(format!("--gpus={g}"));
        }
        if let Some(c) = self.cpus {
            v.push(format!("--cpus-per-task={c}"));
        }
        if let Some(m) = &self.mem {
            v.push(format!("--mem={m}"));
        }
        if let Some(t) = &self.time {
            v.push(format!("--time={t}"));
        }
        if let Some(a) = &self.account {
            v.push(format!("--account={a}"));
        }
        v.extend(self.extra.iter().cloned());
        v
    }
}

/// Everything `hhi exec-stage` needs to run one stage, as decided by the submitting `hhi
/// run`: the stage (by kind name, its parameters and inputs) and its resolved key.
#[derive(Debug, Serialize, Deserialize)]
pub struct JobSpec {
    pub stage: String,
    pub kind: String,
    pub version: u32,
    pub params: crate::params::Params,
    pub inputs: BTreeMap<String, Input>,
    pub seed: u64,
    pub pipeline_name: String,
    pub pipeline_dir: PathBuf,
    pub backend: String,
    pub key: Digest,
    pub resolved_params: BTreeMap<String, String>,
    pub resolved_inputs: BTreeMap<String, InputRecord>,
}

/// Where a stage ran, in its record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SlurmRun {
    pub job_id: String,
    pub node: String,
}

/// The Slurm job this process is, if any (set by `slurmd` in a job's environment).
pub fn current_job() -> Option<SlurmRun> {
    let id = std::env::var("SLURM_JOB_ID").ok()?;
    Some(SlurmRun {
        job_id: id,
        node: std::env::var("SLURMD_NODENAME").unwrap_or_default(),
    })
}

fn jobs_dir(store: &Store) -> PathBuf {
    store.root().join("slurm")
}

/// The job file and the file naming the submitted job's id, per cache key: a later `hhi
/// run` finds a job still queued or running for the same key and attaches to it.
fn paths(store: &Store, key: &Digest) -> (PathBuf, PathBuf, PathBuf) {
    let d = jobs_dir(store);
    let k = key.hex();
    (
        d.join(format!("{k}.json")),
        d.join(format!("{k}.sh")),
        d.join(format!("{k}.jobid")),
    )
}

/// Job ids this process submitted and has not seen end: what Ctrl-C cancels.
static SUBMITTED: Mutex<BTreeSet<String>> = Mutex::new(BTreeSet::new());

/// Cancels every job this process submitted that is still live (Ctrl-C, or `hhi run`
/// killed by a signal), unless `detach` (then they run on and a later `hhi run` attaches).
pub fn cancel_submitted() -> Vec<String> {
    let ids: Vec<String> = SUBMITTED
        .lock()
        .map(|s| s.iter().cloned().collect())
        .unwrap_or_default();
    if !ids.is_empty() {
        let _ = Command::new("scancel").args(&ids).status();
    }
    ids
}

/// Installs the handler for SIGINT and SIGTERM: cancel the submitted jobs (or leave them,
/// with `detach`), then exit 130 like an interrupted program.
pub fn install_interrupt_handler(detach: bool) {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let _ = ctrlc::set_handler(move || {
            let live: Vec<String> = SUBMITTED
                .lock()
                .map(|s| s.iter().cloned().collect())
                .unwrap_or_default();
            if detach {
                if !live.is_empty() {
                    eprintln!(
                        "\ninterrupted: Slurm jobs {} keep running (--detach); `hhi run` again attaches to them",
                        live.join(", ")
                    );
                }
            } else {
                let ids = cancel_submitted();
                if !ids.is_empty() {
                    eprintln!("\ninterrupted: cancelled Slurm jobs {}", ids.join(", "));
                }
            }
            std::process::exit(130);
        });
    });
}

fn slurm_cmd(program: &str) -> Command {
    let mut c = Command::new(program);
    c.env_remove("SLURM_JOB_ID");
    c
}

fn run_cmd(mut c: Command, what: &str) -> anyhow::Result<String> {
    let out = c.output().map_err(|e| {
        if e.kind() == std::io::ErrorKind::NotFound {
            anyhow!(
                "`{what}` was not found: executor = \"slurm\" needs Slurm's client commands on PATH (Debian: apt install slurm-client), or use executor = \"local\""
            )
        } else {
            anyhow!("could not run `{what}`: {e}")
        }
    })?;
    if !out.status.success() {
        bail!(
            "`{what}` failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// A job's state as Slurm reports it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct JobState {
    pub state: String,
    pub node: String,
    pub elapsed: String,
    pub exit_code: String,
    pub time_limit: String,
    pub reason: String,
}

impl JobState {
    /// Queued or running: not ended yet.
    pub fn live(&self) -> bool {
        matches!(
            self.state.as_str(),
            "PENDING"
                | "RUNNING"
                | "CONFIGURING"
                | "COMPLETING"
                | "SUSPENDED"
                | "REQUEUED"
                | "RESIZING"
                | "SIGNALING"
                | "STAGE_OUT"
        )
    }
}

/// `scontrol show job ID`, parsed; `None` when Slurm no longer knows the job.
fn scontrol(id: &str) -> Option<JobState> {
    let out = slurm_cmd("scontrol")
        .args(["show", "job", id, "--oneliner"])
        .output()
        .ok()?;
    if !out.status.success() {
        return None;
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let field = |name: &str| -> String {
        text.split_whitespace()
            .find_map(|w| w.strip_prefix(&format!("{name}=")))
            .unwrap_or("")
            .to_string()
    };
    let st = field("JobState");
    if st.is_empty() {
        return None;
    }
    Some(JobState {
        state: st,
        node: field("NodeList"),
        elapsed: field("RunTime"),
        exit_code: field("ExitCode"),
        time_limit: field("TimeLimit"),
        reason: field("Reason"),
    })
}

/// `sacct`, for clusters with accounting, once `scontrol` has forgotten a job.
fn sacct(id: &str) -> Option<JobState> {
    let out = slurm_cmd("sacct")
        .args([
            "-n",
            "-P",
            "-X",
            "-j",
            id,
            "-o",
            "State,NodeList,Elapsed,ExitCode,Timelimit",
        ])
        .output()
        .ok()?;
    if !out.status.success() {
        return None;
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text.lines().next()?;
    let f: Vec<&str> = line.split('|').collect();
    Some(JobState {
        // "CANCELLED by 0" → "CANCELLED"
        state: f.first()?.split_whitespace().next()?.to_string(),
        node: f.get(1).unwrap_or(&"").to_string(),
        elapsed: f.get(2).unwrap_or(&"").to_string(),
        exit_code: f.get(3).unwrap_or(&"").to_string(),
        time_limit: f.get(4).unwrap_or(&"").to_string(),
        reason: String::new(),
    })
}

pub fn job_state(id: &str) -> Option<JobState> {
    scontrol(id).or_else(|| sacct(id))
}

/// The batch script: the job runs this very hhi binary against the same store.
fn script(
    store: &Store,
    stage: &str,
    key: &Digest,
    spec: &SlurmSpec,
    job_file: &Path,
) -> anyhow::Result<String> {
    let exe = std::env::current_exe().context("locating the hhi binary for the job")?;
    let log = store.log_path(key);
    let q = |p: &Path| shell_quote(&p.display().to_string());
    let mut s = String::from("#!/bin/sh\n");
    s.push_str(&format!("#SBATCH --job-name=hhi-{stage}\n"));
    s.push_str(&format!("#SBATCH --output={}\n", log.display()));
    s.push_str(&format!("#SBATCH --error={}\n", log.display()));
    s.push_str("#SBATCH --open-mode=append\n");
    for d in spec.directives() {
        s.push_str(&format!("#SBATCH {d}\n"));
    }
    s.push_str(&format!(
        "exec {} --store {} exec-stage {}\n",
        q(&exe),
        q(&std::path::absolute(store.root())?),
        q(job_file)
    ));
    Ok(s)
}

fn shell_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

/// Runs `job` as a Slurm job and waits for it: submits (or attaches to a live job a
/// detached run left for the same key), follows its state on `progress`, and returns the
/// record the job wrote, or an error that names the job and its final state.
pub fn run_job(
    store: &Store,
    job: Job,
    spec: &SlurmSpec,
    progress: &Progress,
) -> anyhow::Result<Record> {
    let key = job.resolved.key;
    let (job_file, script_file, id_file) = paths(store, &key);
    std::fs::create_dir_all(jobs_dir(store))?;
    std::fs::create_dir_all(store.root().join("logs"))?;
    let attached = std::fs::read_to_string(&id_file)
        .ok()
        .map(|s| s.trim().to_string())
        .filter(|id| job_state(id).is_some_and(|s| s.live()));
    let id = match attached {
        Some(id) => {
            tracing::info!(
                "`{}`: attaching to Slurm job {id}, still live",
                job.stage.name
            );
            id
        }
        None => {
            let spec_json = JobSpec {
                stage: job.stage.name.clone(),
                kind: job.stage.kind.name().to_string(),
                version: job.stage.kind.version(),
                params: job.stage.params.clone(),
                inputs: job.stage.inputs.clone(),
                seed: job.stage.seed,
                pipeline_name: job.pipeline_name.clone(),
                pipeline_dir: std::path::absolute(&job.pipeline_dir)?,
                backend: job.backend.clone(),
                key,
                resolved_params: job.resolved.params.clone(),
                resolved_inputs: job.resolved.inputs.clone(),
            };
            crate::store::fsutil::write_atomic(&job_file, &serde_json::to_vec_pretty(&spec_json)?)?;
            let text = script(store, &job.stage.name, &key, spec, &job_file)?;
            crate::store::fsutil::write_atomic(&script_file, text.as_bytes())?;
            let mut c = slurm_cmd("sbatch");
            c.arg("--parsable").arg(&script_file);
            let out = run_cmd(c, "sbatch")?;
            // `--parsable` prints `id` or `id;cluster`.
            let id = out.trim().split(';').next().unwrap_or("").to_string();
            if id.is_empty() {
                bail!("sbatch printed no job id");
            }
            crate::store::fsutil::write_atomic(&id_file, id.as_bytes())?;
            id
        }
    };
    if let Ok(mut s) = SUBMITTED.lock() {
        s.insert(id.clone());
    }
    let result = wait(store, &job.stage, &key, &id, spec, progress);
    if let Ok(mut s) = SUBMITTED.lock() {
        s.remove(&id);
    }
    let _ = std::fs::remove_file(&id_file);
    let _ = crate::store::fsutil::remove_all(&job_staging(store, &id));
    if result.is_ok() {
        // Kept after a failure, for reading; a completed job's are of no further use.
        let _ = std::fs::remove_file(&job_file);
        let _ = std::fs::remove_file(&script_file);
    }
    result
}

fn wait(
    store: &Store,
    stage: &Stage,
    key: &Digest,
    id: &str,
    spec: &SlurmSpec,
    progress: &Progress,
) -> anyhow::Result<Record> {
    let mut pause = Duration::from_millis(200);
    let mut last = JobState::default();
    loop {
        match job_state(id) {
            Some(s) if s.live() => {
                progress.set_message(format!(
                    "slurm job {id} {}{}",
                    s.state.to_lowercase(),
                    if s.node.is_empty() || s.node == "(null)" {
                        String::new()
                    } else {
                        format!(" on {} ({})", s.node, s.elapsed)
                    }
                ));
                last = s;
            }
            Some(s) => {
                last = s;
                break;
            }
            None => {
                // Forgotten by Slurm (no accounting, MinJobAge passed): the record tells.
                if store.read_record(key)?.is_some() {
                    last.state = "COMPLETED".into();
                } else if last.state.is_empty() {
                    last.state = "UNKNOWN".into();
                }
                break;
            }
        }
        std::thread::sleep(pause);
        pause = (pause * 2).min(Duration::from_secs(1));
    }
    let log = store.log_path(key);
    let where_ = if last.node.is_empty() || last.node == "(null)" {
        String::new()
    } else {
        format!(" on {}", last.node)
    };
    let elapsed = if last.elapsed.is_empty() {
        String::new()
    } else {
        format!(" after {}", last.elapsed)
    };
    match last.state.as_str() {
        "COMPLETED" => store.read_record(key)?.ok_or_else(|| {
            anyhow!(
                "Slurm job {id} completed{where_} but wrote no record for `{}`; its log: {}",
                stage.name,
                log.display()
            )
        }),
        "TIMEOUT" => Err(anyhow!(
            "timed out: Slurm job {id} ran past its time limit ({}){where_}{elapsed} and was killed; raise `slurm.time` (now {}); a rerun resumes from the stage's checkpoints",
            if last.time_limit.is_empty() {
                "?".to_string()
            } else {
                last.time_limit.clone()
            },
            spec.time.as_deref().unwrap_or("the partition's default")
        )),
        "CANCELLED" => Err(anyhow!(
            "Slurm job {id} was cancelled (state CANCELLED){where_}{elapsed}; a rerun resumes from the stage's checkpoints"
        )),
        "OUT_OF_MEMORY" => Err(anyhow!(
            "Slurm job {id} ran out of memory (state OUT_OF_MEMORY){where_}{elapsed}; raise `slurm.mem` (now {})",
            spec.mem.as_deref().unwrap_or("the partition's default")
        )),
        "PREEMPTED" | "NODE_FAIL" | "BOOT_FAIL" | "DEADLINE" => Err(anyhow!(
            "Slurm job {id} ended in state {}{where_}{elapsed}; a rerun resumes from the stage's checkpoints",
            last.state
        )),
        state => Err(anyhow!(
            "Slurm job {id} ended in state {state}{where_} (exit code {}): {}",
            if last.exit_code.is_empty() {
                "?"
            } else {
                &last.exit_code
            },
            last_error(&log).unwrap_or_else(|| format!("see its log {}", log.display()))
        )),
    }
}

/// The last `error:` line of a job's log (what `exec-stage` printed), if any.
fn last_error(log: &Path) -> Option<String> {
    let text = std::fs::read_to_string(log).ok()?;
    text.lines()
        .rev()
        .find(|l| l.starts_with("error:"))
        .map(|l| l.trim_start_matches("error:").trim().to_string())
}

/// A job's own staging folder, `slurm/tmp/<job id>/`: outside `tmp/`, which the next `hhi
/// run` empties on start even while a detached job still writes; removed by the waiting
/// run once the job has ended, whatever its state.
fn job_staging(store: &Store, id: &str) -> PathBuf {
    jobs_dir(store).join("tmp").join(id)
}

/// `hhi exec-stage JOBFILE`, inside the Slurm job: rebuilds the stage from the job file and
/// runs it exactly as `hhi run` would locally.
pub fn exec_stage(store: &Store, registry: &Registry, job_file: &Path) -> anyhow::Result<Record> {
    let staging = job_staging(
        store,
        &current_job()
            .map(|j| j.job_id)
            .unwrap_or_else(|| "local".into()),
    );
    std::fs::create_dir_all(&staging)?;
    let store = &Store::open(store.root()).with_staging(staging);
    let text = std::fs::read_to_string(job_file)
        .with_context(|| format!("reading the job file {}", job_file.display()))?;
    let spec: JobSpec = serde_json::from_str(&text)
        .with_context(|| format!("{}: not an hhi job file", job_file.display()))?;
    let kind = registry
        .get(&spec.kind)
        .ok_or_else(|| anyhow!("this hhi has no stage kind `{}`", spec.kind))?
        .clone();
    if kind.version() != spec.version {
        bail!(
            "stage kind `{}` is version {} in this hhi but was planned at version {}: submit from the same hhi the job runs",
            spec.kind,
            kind.version(),
            spec.version
        );
    }
    let signature = kind
        .signature(&spec.params)
        .map_err(|e| anyhow!("stage `{}`: {e}", spec.stage))?;
    if let Some(rec) = store.read_record(&spec.key)? {
        // Another run finished it meanwhile: nothing to do.
        return Ok(rec);
    }
    let stage = Stage {
        name: spec.stage,
        kind,
        params: spec.params,
        inputs: spec.inputs,
        signature,
        seed: spec.seed,
        executor: Executor::Local,
    };
    let job = Job {
        stage,
        pipeline_name: spec.pipeline_name,
        pipeline_dir: spec.pipeline_dir,
        backend: spec.backend,
        resolved: Resolved {
            key: spec.key,
            params: spec.resolved_params,
            inputs: spec.resolved_inputs,
        },
    };
    let elapsed = std::time::Instant::now();
    let rec = execute(store, job, Progress::hidden())?;
    tracing::info!("ran in {}", fmt_secs(elapsed.elapsed().as_secs_f64()));
    Ok(rec)
}
