//! The command line. Every subcommand is a few lines over the library.

use crate::pipeline::Pipeline;
use crate::registry::Registry;
use crate::scheduler::RunOptions;
use crate::store::Store;
use anyhow::Context;
use clap::{Parser, Subcommand, ValueEnum};
use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

const ABOUT: &str = "hhi runs pipelines of typed stages (TOML), caching every result by content.";

const LONG_ABOUT: &str = "\
hhi runs pipelines of typed stages described in TOML, caching every result in a
content-addressed store (BLAKE3). After you edit a prompt, a parameter or an input
file, `hhi run` reruns exactly the stages that the edit invalidates, in parallel
where the graph allows, and `hhi plan` tells you which and why beforehand.

Every run writes P.lock beside P.toml: each stage's cache key and output digests.
Commit it; `hhi audit` checks that a store holds exactly those artifacts.

Quick start:
  hhi run pipelines/example.toml     run everything that is stale
  hhi plan pipelines/example.toml    what would run, and why
  hhi audit pipelines/example.toml   re-hash every locked artifact
  hhi stages                         the stage kinds and their parameters
  hhi path evaluate.metrics          where an output lies in the store
  hhi run P.toml --set captioner.lr=1e-5,2e-5   a sweep (P.lock left alone)
  hhi runs P.toml                    recent runs, their overrides and metrics
  hhi diff RUN_A RUN_B               parameters, artifacts and metrics that differ
  hhi run P.toml --remote s3://lab/hhi  fetch what the lab computed, upload the rest
  hhi push P.toml / hhi pull P.toml  move what P.lock names to / from the remote

Environment:
  HHI_STORE   the store folder (default: ./artifacts)
  HHI_REMOTE  the shared remote cache (s3://bucket/prefix or file:///folder); S3
              credentials from AWS_* or ~/.aws, never from the pipeline
  HHI_LOG     log filter, e.g. `debug` or `hhi=trace` (default: warn)";

#[derive(Parser)]
#[command(name = "hhi", version, about = ABOUT, long_about = LONG_ABOUT)]
pub struct Cli {
    /// The store folder [default: $HHI_STORE, else ./artifacts]
    #[arg(long, global = true, value_name = "DIR", value_parser = non_empty_path)]
    store: Option<PathBuf>,
    #[command(subcommand)]
    command: Cmd,
}

/// The remote cache options of `run` and `plan`.
#[derive(clap::Args, Clone, Default)]
struct RemoteArgs {
    /// The shared remote cache, s3://bucket/prefix or file:///folder [default:
    /// $HHI_REMOTE, else the pipeline's `remote`]. Credentials come from the AWS_*
    /// variables or ~/.aws, never from here.
    #[arg(long, value_name = "URL")]
    remote: Option<String>,
    /// Use no remote cache, whatever HHI_REMOTE or the pipeline says.
    #[arg(long, conflicts_with = "remote")]
    no_remote: bool,
    /// Fail when the remote cache cannot be used, instead of warning and going on locally.
    #[arg(long)]
    remote_required: bool,
}

impl RemoteArgs {
    fn choice(&self) -> crate::remote::RemoteChoice {
        match (&self.remote, self.no_remote) {
            (_, true) => crate::remote::RemoteChoice::Off,
            (Some(u), _) => crate::remote::RemoteChoice::Url(u.clone()),
            (None, _) => crate::remote::RemoteChoice::Default,
        }
    }
}

/// The remote `push`, `pull` and `audit --remote` talk to (one must be configured).
fn remote_for(
    pipeline: &Pipeline,
    store: &Store,
    url: Option<&str>,
    command: &str,
) -> anyhow::Result<crate::remote::Remote> {
    let choice = match url {
        Some(u) if !u.is_empty() => crate::remote::RemoteChoice::Url(u.to_string()),
        _ => crate::remote::RemoteChoice::Default,
    };
    let url = crate::remote::resolve_url(pipeline, store, &choice, Some(command))?
        .expect("resolve_url fails rather than answer None when a remote is needed");
    crate::remote::Remote::open(&url, true)
}

/// Prints a report (JSON or text) and turns its verdict into the exit status.
fn print_report(
    report: &impl serde::Serialize,
    text: String,
    json: bool,
    ok: bool,
) -> anyhow::Result<ExitCode> {
    if json {
        outln(serde_json::to_string_pretty(report)?)?;
    } else {
        out(text)?;
    }
    Ok(if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// The arguments of `hhi push` and `hhi pull`.
#[derive(clap::Args)]
struct SyncArgs {
    /// The pipeline file (P.toml); its P.lock names what to transfer.
    pipeline: PathBuf,
    /// Only this stage and what it depends on (repeatable).
    #[arg(long, value_name = "STAGE")]
    target: Vec<String>,
    /// The remote [default: $HHI_REMOTE, else the pipeline's `remote`].
    #[arg(long, value_name = "URL")]
    remote: Option<String>,
    /// Print the report as JSON.
    #[arg(long)]
    json: bool,
}

/// `hhi push` (`up`) or `hhi pull`.
fn sync_command(
    store: &Store,
    registry: &Registry,
    args: &SyncArgs,
    up: bool,
) -> anyhow::Result<ExitCode> {
    let (target, json) = (&args.target, args.json);
    let p = &Pipeline::load(&args.pipeline, registry)?;
    let what = if up { "hhi push" } else { "hhi pull" };
    let r = remote_for(p, store, args.remote.as_deref(), what)?;
    // Under the store lock: a push reads objects that `gc` must not remove meanwhile, and
    // a pull writes into the store.
    let _lock = crate::store::lock::StoreLock::acquire(store.root(), true, what)?;
    let report = if up {
        crate::remote::sync::push(store, p, &r, target)?
    } else {
        store
            .init()
            .with_context(|| format!("creating the store {}", store.root().display()))?;
        store.clean_tmp()?;
        crate::remote::sync::pull(store, p, &r, target)?
    };
    print_report(&report, report.render(), json, report.ok())
}

#[derive(Clone, Copy, ValueEnum)]
enum GraphFormat {
    Dot,
    Mermaid,
    /// SVG drawn by Graphviz's `dot` (which must be installed).
    Svg,
}

#[derive(Subcommand)]
enum Cmd {
    /// Run every stale stage (independent ones concurrently) and write P.lock.
    ///
    /// A stage is fresh when the store holds a record for its cache key (kind, version,
    /// canonical parameters, input digests, seed) and all its outputs are intact. A stage
    /// that reruns and produces identical bytes leaves its consumers fresh. A failed stage
    /// stops its descendants; the others finish and keep their results. A killed run loses
    /// only the stages in flight, and those resume from their checkpoints.
    Run {
        /// The pipeline file (P.toml).
        pipeline: PathBuf,
        /// Run only this stage and what it needs (repeatable).
        #[arg(long, value_name = "STAGE")]
        target: Vec<String>,
        /// Rerun this stage even if it is fresh (repeatable).
        #[arg(long, value_name = "STAGE")]
        force: Vec<String>,
        /// Stages to run at once, at least 1 [default: number of cores]; Slurm stages are
        /// submitted all at once unless --jobs is given, which then counts them too.
        #[arg(long, short, value_parser = parse_jobs)]
        jobs: Option<usize>,
        /// Override the pipeline's backend (not part of any cache key).
        #[arg(long, value_parser = ["auto", "cpu", "ndarray", "wgpu", "cuda"])]
        backend: Option<String>,
        /// Fail at once if another hhi process is using the store, instead of waiting.
        #[arg(long)]
        no_wait: bool,
        /// Print the run report as JSON.
        #[arg(long)]
        json: bool,
        /// No progress bars.
        #[arg(long, short)]
        quiet: bool,
        /// Override a parameter for this run: STAGE.PARAM=VALUE, checked like the file
        /// (repeatable; KEY.SUB reaches into a table, e.g. count.env.LANG=C). Several
        /// comma-separated values sweep: every combination of the `--set`s runs.
        #[arg(long = "set", value_name = "STAGE.PARAM=VALUE")]
        set: Vec<String>,
        /// Run one variant per line of FILE (each line: STAGE.PARAM=VALUE …).
        #[arg(long, value_name = "FILE")]
        sweep: Option<PathBuf>,
        /// Name the run (several variants get NAME.1, NAME.2, …), for `hhi runs` and
        /// `hhi diff`.
        #[arg(long)]
        name: Option<String>,
        /// Write P.lock even though --set changed the pipeline (an experiment otherwise
        /// leaves the committed lock as the file describes it).
        #[arg(long)]
        write_lock: bool,
        /// On Ctrl-C, leave submitted Slurm jobs running (a later `hhi run` attaches to
        /// them) instead of cancelling them.
        #[arg(long)]
        detach: bool,
        #[command(flatten)]
        remote: RemoteArgs,
    },
    /// Upload what P.lock names to the remote cache (records last), skipping what is there.
    Push(SyncArgs),
    /// Download what P.lock names from the remote cache, verifying every digest.
    Pull(SyncArgs),
    /// Run one stage from a job file written by `hhi run` (what a Slurm job executes).
    #[command(hide = true)]
    ExecStage {
        /// The job file (the store's slurm/<key>.json).
        job: PathBuf,
    },
    /// Say what `run` would do, per stage: fresh, or run with every reason.
    ///
    /// Reasons name the change: `param lr 1e-5 → 2e-5`, `file prompts/synth.txt changed`,
    /// `input synth.pairs changed`, `no record`, `output out missing`. They are computed
    /// against the records that P.lock names. Exits 0 either way, or 1 with --check when
    /// anything would run.
    Plan {
        /// The pipeline file (P.toml).
        pipeline: PathBuf,
        /// Print the plan as JSON.
        #[arg(long)]
        json: bool,
        /// Exit 1 if anything would run (for CI).
        #[arg(long)]
        check: bool,
        /// Count this stage as forced (repeatable).
        #[arg(long, value_name = "STAGE")]
        force: Vec<String>,
        /// Plan with a parameter overridden, as `run --set` would (repeatable).
        #[arg(long = "set", value_name = "STAGE.PARAM=VALUE")]
        set: Vec<String>,
        #[command(flatten)]
        remote: RemoteArgs,
    },
    /// Re-hash every artifact P.lock names and check the chain of records.
    ///
    /// Exits 1 on any problem, naming the artifact and the stage that produced it.
    Audit {
        /// The pipeline file (P.toml); its P.lock names what to check.
        pipeline: PathBuf,
        /// Also rerun this stage into a scratch store and compare its outputs bit for bit.
        #[arg(long, value_name = "STAGE")]
        reproduce: Option<String>,
        /// Also re-hash every object in the store, referenced or not.
        #[arg(long)]
        all: bool,
        /// Instead, re-hash what the remote cache holds for P.lock (every record and
        /// object downloaded and checked, nothing kept) [URL default: $HHI_REMOTE, else
        /// the pipeline's `remote`].
        #[arg(long, value_name = "URL", num_args = 0..=1, default_missing_value = "")]
        remote: Option<String>,
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
    },
    /// List recent runs, newest first: overrides, what ran, wall time, headline metrics.
    Runs {
        /// Only the runs of this pipeline file.
        pipeline: Option<PathBuf>,
        /// A metric column: `verb_match@1` (the model's score in each evaluate stage) or
        /// any recorded figure as STAGE.FIGURE, e.g. captioner.final_loss (repeatable)
        /// [default: verb_match@1, label_match@1].
        #[arg(long, value_name = "METRIC")]
        metric: Vec<String>,
        /// How many runs.
        #[arg(long, short = 'n', default_value_t = 20)]
        limit: usize,
        /// Print the runs as JSON.
        #[arg(long)]
        json: bool,
        /// Also write an offline page with the runs' metric tables side by side.
        #[arg(long, value_name = "FILE")]
        html: Option<PathBuf>,
    },
    /// Compare two runs: parameters that differ, artifacts that differ, metrics with deltas.
    Diff {
        /// A run id (or a prefix), a run name, or a lock file.
        a: String,
        /// The same, for the other side.
        b: String,
        /// Print the comparison as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Print a provenance record, found by stage name, cache key or output digest.
    Show {
        /// A stage name, or a hex prefix (≥ 6 digits) of a cache key or artifact digest.
        what: String,
        /// Resolve stage names through this pipeline's lock (default: the latest run).
        #[arg(long, value_name = "P.toml")]
        pipeline: Option<PathBuf>,
        /// Print the record as JSON (an array of records when several produced the digest).
        #[arg(long)]
        json: bool,
    },
    /// Print where an output lies in the store (read it there; never write to it).
    Path {
        /// `<stage>.<port>`, e.g. `evaluate.metrics`, or a stage name with one output.
        output: String,
        /// Resolve stage names through this pipeline's lock (default: the latest run).
        #[arg(long, value_name = "P.toml")]
        pipeline: Option<PathBuf>,
    },
    /// Print the DAG with each stage's state.
    Graph {
        /// The pipeline file (P.toml).
        pipeline: PathBuf,
        /// Graphviz dot, Mermaid for Markdown, or SVG (rendered by Graphviz's `dot`).
        #[arg(long, value_enum, default_value = "dot")]
        format: GraphFormat,
    },
    /// Remove objects and records that no lock file or recent run references.
    Gc {
        /// How many recent runs keep everything they used.
        #[arg(long, default_value_t = 5)]
        keep: usize,
        /// Report what would be removed without removing it.
        #[arg(long)]
        dry_run: bool,
        /// Fail at once if another hhi process is using the store, instead of waiting.
        #[arg(long)]
        no_wait: bool,
    },
    /// List the stage kinds with their ports, types, parameters and defaults.
    Stages {
        /// Print the kinds as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Print the BLAKE3 digest of files or folders as the store computes it (b3sum format
    /// for files).
    Hash {
        /// Files or folders to hash.
        #[arg(required = true)]
        paths: Vec<PathBuf>,
    },
}

fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("HHI_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        // Colours only for a person at a terminal, not in a log file or a CI capture.
        .with_ansi(std::io::stderr().is_terminal())
        .with_target(false)
        .try_init();
}

/// `--jobs`: a count of at least 1 (0 used to mean 1 silently).
fn parse_jobs(s: &str) -> Result<usize, String> {
    match s.parse::<usize>() {
        Ok(0) => Err("must be at least 1 (it is how many stages run at once)".into()),
        Ok(n) => Ok(n),
        Err(e) => Err(format!("{e}; give a whole number of stages, at least 1")),
    }
}

/// `--store`: any path but the empty one (which would make the current folder the store).
fn non_empty_path(s: &str) -> Result<PathBuf, String> {
    if s.is_empty() {
        return Err("the store folder cannot be empty; leave --store out for ./artifacts".into());
    }
    Ok(PathBuf::from(s))
}

/// Set once stdout's reader has gone away (`hhi plan | head`).
static STDOUT_GONE: AtomicBool = AtomicBool::new(false);

/// Writes to stdout. A reader that went away is not an error and not a panic (`print!`
/// panics on EPIPE): the rest of the output is dropped and the command finishes and exits
/// as it would have, so `plan --check | head` still says whether anything would run.
fn out(text: impl std::fmt::Display) -> anyhow::Result<()> {
    if STDOUT_GONE.load(Ordering::Relaxed) {
        return Ok(());
    }
    let mut o = std::io::stdout().lock();
    match write!(o, "{text}").and_then(|()| o.flush()) {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => {
            STDOUT_GONE.store(true, Ordering::Relaxed);
            Ok(())
        }
        r => Ok(r?),
    }
}

/// [`out`] and a newline.
fn outln(text: impl std::fmt::Display) -> anyhow::Result<()> {
    out(format_args!("{text}\n"))
}

/// Runs the CLI with the given stage kinds (so that a program built on the library can
/// add its own).
pub fn main(registry: Registry) -> ExitCode {
    init_logging();
    let cli = Cli::parse();
    match dispatch(cli, &registry) {
        Ok(code) => code,
        Err(e) => {
            // Not eprintln!, which panics when stderr is a closed pipe.
            let mut err = std::io::stderr().lock();
            // Diagnostics already carry their own `error:` lines.
            let _ = if e.downcast_ref::<crate::diag::Diagnostics>().is_some() {
                writeln!(err, "{e}")
            } else {
                writeln!(err, "error: {e:#}")
            };
            ExitCode::from(2)
        }
    }
}

fn dispatch(cli: Cli, registry: &Registry) -> anyhow::Result<ExitCode> {
    let store = Arc::new(Store::open(
        // `Store::default_root` treats an empty HHI_STORE as unset.
        &cli.store.clone().unwrap_or_else(Store::default_root),
    ));
    let load = |p: &PathBuf| Pipeline::load(p, registry);
    match cli.command {
        Cmd::Run {
            pipeline,
            target,
            force,
            jobs,
            backend,
            no_wait,
            json,
            quiet,
            set,
            sweep,
            name,
            write_lock,
            detach,
            remote,
        } => {
            let variants = crate::overrides::variants(&set, sweep.as_deref())?;
            if variants.len() > 1 && write_lock {
                anyhow::bail!(
                    "--write-lock with {} variants: which one should P.lock describe? Run the chosen variant alone with --write-lock",
                    variants.len()
                );
            }
            let mut loaded = Vec::new();
            for (i, overrides) in variants.iter().enumerate() {
                let mut p = Pipeline::load_with(&pipeline, overrides, registry)?;
                if let Some(b) = &backend {
                    p.backend = b.clone();
                }
                loaded.push(crate::scheduler::Variant {
                    pipeline: p,
                    overrides: overrides.iter().map(|o| o.to_string()).collect(),
                    name: match (&name, variants.len()) {
                        (Some(n), 1) => Some(n.clone()),
                        (Some(n), _) => Some(format!("{n}.{}", i + 1)),
                        (None, _) => None,
                    },
                });
            }
            let mut opts = RunOptions {
                targets: target.clone(),
                force: force.clone(),
                wait_for_lock: !no_wait,
                write_lock: variants[0].is_empty() || write_lock,
                name: loaded[0].name.clone(),
                overrides: loaded[0].overrides.clone(),
                ..RunOptions::default()
            };
            opts.progress = !quiet && !json && std::io::stderr().is_terminal();
            opts.remote = remote.choice();
            opts.remote_required = remote.remote_required;
            if let Some(j) = jobs {
                opts.jobs = j;
                opts.limit_slurm_jobs = true;
            }
            if loaded.iter().any(|v| {
                v.pipeline
                    .stages
                    .iter()
                    .any(|s| s.executor != crate::slurm::Executor::Local)
            }) {
                crate::slurm::install_interrupt_handler(detach);
            }
            let reports = if loaded.len() == 1 {
                vec![crate::scheduler::run(
                    &loaded[0].pipeline,
                    store.clone(),
                    &opts,
                )?]
            } else {
                crate::scheduler::run_sweep(&loaded, store.clone(), &opts)?
            };
            let ok = reports.iter().all(|r| r.success());
            if !json {
                for (i, report) in reports.iter().enumerate() {
                    if reports.len() > 1 {
                        outln(format_args!(
                            "== variant {}/{}: {}",
                            i + 1,
                            reports.len(),
                            report.overrides.join(" ")
                        ))?;
                    }
                    out(report.render())?;
                }
            }
            if json {
                if let [one] = reports.as_slice() {
                    outln(serde_json::to_string_pretty(one)?)?;
                } else {
                    outln(serde_json::to_string_pretty(&reports)?)?;
                }
            } else if reports.len() > 1 {
                // The sweep as a table: the variants just run, oldest first.
                let ids: Vec<&str> = reports.iter().filter_map(|r| r.run_id.as_deref()).collect();
                let metrics: Vec<String> = crate::experiments::DEFAULT_METRICS
                    .iter()
                    .map(|s| s.to_string())
                    .collect();
                let mut rows = crate::experiments::rows(&store, None, &metrics, usize::MAX)?;
                rows.retain(|r| ids.contains(&r.id.as_str()));
                rows.reverse();
                outln(format_args!("\n{}", crate::experiments::render_rows(&rows)))?;
            }
            Ok(if ok {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            })
        }
        Cmd::Push(args) => sync_command(&store, registry, &args, true),
        Cmd::Pull(args) => sync_command(&store, registry, &args, false),
        Cmd::ExecStage { job } => {
            let rec = crate::slurm::exec_stage(&store, registry, &job)?;
            outln(format_args!("{} {}", rec.stage, rec.key))?;
            Ok(ExitCode::SUCCESS)
        }
        Cmd::Runs {
            pipeline,
            metric,
            limit,
            json,
            html,
        } => {
            let metrics: Vec<String> = if metric.is_empty() {
                crate::experiments::DEFAULT_METRICS
                    .iter()
                    .map(|s| s.to_string())
                    .collect()
            } else {
                metric
            };
            let rows = crate::experiments::rows(&store, pipeline.as_deref(), &metrics, limit)?;
            if let Some(file) = &html {
                std::fs::write(file, crate::experiments::render_html(&store, &rows))
                    .with_context(|| format!("writing {}", file.display()))?;
            }
            if json {
                outln(serde_json::to_string_pretty(&rows)?)?;
            } else {
                out(crate::experiments::render_rows(&rows))?;
            }
            Ok(ExitCode::SUCCESS)
        }
        Cmd::Diff { a, b, json } => {
            let (a, b) = (
                crate::experiments::resolve(&store, &a)?,
                crate::experiments::resolve(&store, &b)?,
            );
            let d = crate::experiments::diff(&store, &a, &b);
            if json {
                outln(serde_json::to_string_pretty(&d)?)?;
            } else {
                out(crate::experiments::render_diff(&d))?;
            }
            Ok(ExitCode::SUCCESS)
        }
        Cmd::Plan {
            pipeline,
            json,
            check,
            force,
            set,
            remote,
        } => {
            let mut overrides = Vec::new();
            for s in &set {
                let mut o = crate::overrides::parse_set(s)?;
                if o.len() != 1 {
                    anyhow::bail!(
                        "--set {s}: `plan` takes one value per parameter; a sweep is for `run`"
                    );
                }
                overrides.push(o.remove(0));
            }
            let p = Pipeline::load_with(&pipeline, &overrides, registry)?;
            let remote =
                crate::remote::for_run(&p, &store, &remote.choice(), remote.remote_required)?;
            let plan = crate::plan::plan_with(&store, &p, &force, remote.as_deref())?;
            if json {
                outln(serde_json::to_string_pretty(&plan)?)?;
            } else {
                let width = plan.stages.iter().map(|s| s.name.len()).max().unwrap_or(0);
                for s in &plan.stages {
                    let reasons = s
                        .reasons
                        .iter()
                        .map(|r| r.to_string())
                        .collect::<Vec<_>>()
                        .join("; ");
                    let reasons = match &s.ran_as {
                        Some(r) if s.state == crate::plan::PlanState::Remote => {
                            format!("{r}; here: {reasons}")
                        }
                        Some(r) if reasons.is_empty() => format!("(ran as {r})"),
                        _ => reasons,
                    };
                    outln(
                        format_args!("{:<6} {:width$}  {reasons}", s.state, s.name)
                            .to_string()
                            .trim_end(),
                    )?;
                }
            }
            if store.exists() {
                store.stat.save().ok();
            }
            Ok(if check && plan.anything_to_run() {
                ExitCode::FAILURE
            } else {
                ExitCode::SUCCESS
            })
        }
        Cmd::Audit {
            pipeline,
            reproduce,
            all,
            json,
            remote,
        } => {
            let p = load(&pipeline)?;
            if let Some(url) = remote {
                if reproduce.is_some() || all {
                    anyhow::bail!(
                        "--remote audits the remote only; run --reproduce or --all without it"
                    );
                }
                let r = remote_for(&p, &store, Some(&url), "hhi audit --remote")?;
                let report = crate::remote::sync::audit_remote(&p, &r)?;
                return print_report(&report, report.render(), json, report.ok());
            }
            let report = crate::audit::audit(&store, &p, all, reproduce.as_deref())?;
            print_report(&report, report.render(), json, report.ok())
        }
        Cmd::Path { output, pipeline } => {
            let p = pipeline.as_ref().map(load).transpose()?;
            let (stage, port) = match output.split_once('.') {
                Some((s, p)) => (s, Some(p)),
                None => (output.as_str(), None),
            };
            let recs = crate::show::find_records(&store, stage, p.as_ref())?;
            let rec = recs
                .last()
                .expect("find_records returns at least one record");
            let out = match port {
                Some(port) => rec.outputs.get(port).ok_or_else(|| {
                    anyhow::anyhow!(
                        "stage `{stage}` has no output `{port}`; its outputs: {}",
                        rec.outputs.keys().cloned().collect::<Vec<_>>().join(", ")
                    )
                })?,
                None if rec.outputs.len() == 1 => rec.outputs.values().next().expect("one"),
                None => anyhow::bail!(
                    "stage `{stage}` has {} outputs: name one, e.g. `{stage}.{}`",
                    rec.outputs.len(),
                    rec.outputs
                        .keys()
                        .next()
                        .map(String::as_str)
                        .unwrap_or("out")
                ),
            };
            outln(store.object_path(&out.digest).display())?;
            Ok(ExitCode::SUCCESS)
        }
        Cmd::Show {
            what,
            pipeline,
            json,
        } => {
            let p = pipeline.as_ref().map(load).transpose()?;
            let recs = crate::show::find_records(&store, &what, p.as_ref())?;
            if !json {
                out(crate::show::render_records(&recs))?;
                for page in crate::show::report_pages(&store, &recs) {
                    outln(format_args!("open      {}", page.display()))?;
                }
            } else if let [one] = recs.as_slice() {
                outln(serde_json::to_string_pretty(one)?)?;
            } else {
                outln(serde_json::to_string_pretty(&recs)?)?;
            }
            Ok(ExitCode::SUCCESS)
        }
        Cmd::Graph { pipeline, format } => {
            let p = load(&pipeline)?;
            let plan = crate::plan::plan(&store, &p, &[])?;
            let text = crate::show::render_graph(&p, &plan, matches!(format, GraphFormat::Mermaid));
            if matches!(format, GraphFormat::Svg) {
                out(crate::show::dot_to_svg(&text)?)?;
            } else {
                out(format_args!("{text}"))?;
            }
            Ok(ExitCode::SUCCESS)
        }
        Cmd::Gc {
            keep,
            dry_run,
            no_wait,
        } => {
            let report = crate::gc::gc(&store, keep, dry_run, !no_wait)?;
            out(report.render(dry_run))?;
            Ok(ExitCode::SUCCESS)
        }
        Cmd::Stages { json } => {
            print_stages(registry, json)?;
            Ok(ExitCode::SUCCESS)
        }
        Cmd::Hash { paths } => {
            for path in paths {
                if STDOUT_GONE.load(Ordering::Relaxed) {
                    break;
                }
                let h = crate::store::hash::hash_path(&path)
                    .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
                outln(format_args!("{}  {}", h.digest, path.display()))?;
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn print_stages(registry: &Registry, json: bool) -> anyhow::Result<()> {
    let mut all = Vec::new();
    for k in registry.kinds() {
        let params: Vec<serde_json::Value> = k
            .params()
            .iter()
            .map(|p| {
                serde_json::json!({
                    "name": p.name, "type": p.ty.describe(),
                    "default": p.default.as_ref().map(|d| d.canonical()),
                    "min": p.min, "max": p.max, "unit": p.unit, "doc": p.doc,
                })
            })
            .collect();
        let ports = |v: Vec<crate::registry::PortSpec>| -> Vec<serde_json::Value> {
            v.iter()
                .map(|p| serde_json::json!({"name": p.name, "type": p.ty.name(), "doc": p.doc, "optional": p.optional}))
                .collect()
        };
        all.push(serde_json::json!({
            "kind": k.name(), "version": k.version(), "about": k.about(),
            "inputs": ports(k.inputs()), "input_table": k.input_table(),
            "outputs": ports(k.outputs()), "params": params,
        }));
    }
    if json {
        outln(serde_json::to_string_pretty(&all)?)?;
        return Ok(());
    }
    for k in registry.kinds() {
        outln(format_args!(
            "{} (v{})\n  {}",
            k.name(),
            k.version(),
            k.about()
        ))?;
        for p in k.inputs() {
            outln(format_args!(
                "  in   {:<16} {:<14} {}{}",
                p.name,
                p.ty.name(),
                if p.optional { "(optional) " } else { "" },
                p.doc
            ))?;
        }
        if let Some(t) = k.input_table() {
            outln(format_args!(
                "  in   {:<16} {:<14} any number of inputs: {t} = {{ name = \"stage.port\" }}",
                format!("{t}.*"),
                "Any"
            ))?;
        }
        for p in k.outputs() {
            outln(format_args!(
                "  out  {:<16} {:<14} {}",
                p.name,
                p.ty.name(),
                p.doc
            ))?;
        }
        for p in k.params() {
            let default = match &p.default {
                Some(d) => format!("= {}", d.canonical()),
                None => "(required)".into(),
            };
            let range = match (p.min, p.max) {
                (Some(a), Some(b)) => format!(
                    " [{a} ..= {b}{}]",
                    p.unit.map(|u| format!(" {u}")).unwrap_or_default()
                ),
                _ => String::new(),
            };
            outln(format_args!(
                "  par  {:<16} {:<14} {default}{range}  {}",
                p.name,
                p.ty.describe(),
                p.doc
            ))?;
        }
        outln("")?;
    }
    outln(format_args!(
        "artifact types: {}",
        crate::types::ArtifactType::NAMES.join(", ")
    ))?;
    Ok(())
}
