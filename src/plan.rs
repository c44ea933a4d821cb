//! Deciding what is stale, and saying why in words (like cargo's fingerprint messages).
//!
//! A stage is fresh when a record exists for its cache key and every output it names is
//! present and intact. Keys depend on input *digests*, so a rerun upstream stage that
//! produces identical bytes leaves its consumers fresh (early cutoff). To explain a rerun,
//! the new key's ingredients are compared with the record the lock file last named.

use crate::key::cache_key;
use crate::lockfile::LockFile;
use crate::pipeline::{InputSource, Pipeline, Stage};
use crate::store::hash::Digest;
use crate::store::record::{InputRecord, OutputRecord, Record};
use crate::store::{ObjectStatus, Store};
use anyhow::Context;
use serde::Serialize;
use std::collections::{BTreeMap, HashMap};
use std::fmt;

/// Why a stage must run.
#[derive(Debug, Clone, Serialize, PartialEq)]
#[serde(tag = "reason", rename_all = "snake_case")]
pub enum Reason {
    NoRecord,
    Forced,
    KindChanged {
        old: String,
        new: String,
    },
    VersionChanged {
        old: u32,
        new: u32,
    },
    Param {
        name: String,
        old: Option<String>,
        new: Option<String>,
    },
    Seed {
        old: u64,
        new: u64,
    },
    File {
        port: String,
        path: String,
        old: Digest,
        new: Digest,
    },
    Input {
        port: String,
        from: String,
        old: Digest,
        new: Digest,
    },
    InputAdded {
        port: String,
        from: String,
    },
    InputRemoved {
        port: String,
        from: String,
    },
    /// A record exists for the stage's previous key, and none of its ingredients that hhi
    /// can compare differ (another hhi version's key scheme, or a record removed by gc).
    NothingObvious,
    UpstreamRuns {
        port: String,
        from: String,
    },
    OutputMissing {
        port: String,
        digest: Digest,
    },
    OutputCorrupt {
        port: String,
        digest: Digest,
    },
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reason::NoRecord => write!(f, "no record (never run with these inputs)"),
            Reason::Forced => write!(f, "forced with --force"),
            Reason::KindChanged { old, new } => write!(f, "kind {old} → {new}"),
            Reason::VersionChanged { old, new } => {
                write!(f, "kind implementation version {old} → {new}")
            }
            Reason::Param {
                name,
                old: Some(o),
                new: Some(n),
            } => write!(f, "param `{name}` {o} → {n}"),
            Reason::Param {
                name,
                old: None,
                new: Some(n),
            } => write!(f, "param `{name}` added ({n})"),
            Reason::Param {
                name,
                old: Some(o),
                new: None,
            } => write!(f, "param `{name}` removed (was {o})"),
            Reason::Param { name, .. } => write!(f, "param `{name}` changed"),
            Reason::Seed { old, new } => write!(f, "seed {old} → {new}"),
            Reason::File { path, old, new, .. } => {
                write!(
                    f,
                    "file `{path}` changed ({} → {})",
                    old.short(),
                    new.short()
                )
            }
            Reason::Input { from, old, new, .. } => {
                write!(
                    f,
                    "input `{from}` changed ({} → {})",
                    old.short(),
                    new.short()
                )
            }
            Reason::InputAdded { port, from } => write!(f, "input `{port}` added (from {from})"),
            Reason::InputRemoved { port, from } => {
                write!(f, "input `{port}` removed (was from {from})")
            }
            Reason::NothingObvious => write!(
                f,
                "no record for this key, though nothing hhi compares changed since the locked \
                 run (its record may have been collected, or written by another hhi version)"
            ),
            Reason::UpstreamRuns { from, .. } => write!(f, "input `{from}` will be rebuilt"),
            Reason::OutputMissing { port, digest } => {
                write!(f, "output `{port}` missing ({})", digest.short())
            }
            Reason::OutputCorrupt { port, digest } => {
                write!(f, "output `{port}` corrupt (expected {})", digest.short())
            }
        }
    }
}

/// A stage's identity once its inputs are known.
#[derive(Debug, Clone)]
pub struct Resolved {
    pub key: Digest,
    pub params: BTreeMap<String, String>,
    pub inputs: BTreeMap<String, InputRecord>,
}

#[derive(Debug, Clone)]
pub enum Decision {
    Fresh(Box<Record>),
    Run {
        resolved: Resolved,
        reasons: Vec<Reason>,
    },
}

/// Output digests of stages already decided, by stage name.
pub type Known = HashMap<String, BTreeMap<String, OutputRecord>>;

/// Computes a stage's key. Returns the pending-input reasons instead when an upstream stage
/// has not been decided (it will rerun). With `import`, file inputs are copied into the
/// store so the stage reads an immutable copy.
pub fn resolve(
    store: &Store,
    stage: &Stage,
    known: &Known,
    import: bool,
) -> anyhow::Result<Result<Resolved, Vec<Reason>>> {
    let mut inputs = BTreeMap::new();
    let mut pending = Vec::new();
    for (port, input) in &stage.inputs {
        let from = input.source.describe();
        match &input.source {
            InputSource::Edge {
                stage: up,
                port: out,
            } => match known.get(up).and_then(|o| o.get(out)) {
                Some(o) => {
                    inputs.insert(
                        port.clone(),
                        InputRecord {
                            digest: o.digest,
                            from,
                        },
                    );
                }
                None => pending.push(Reason::UpstreamRuns {
                    port: port.clone(),
                    from,
                }),
            },
            InputSource::File { abs, rel } => {
                let hashed = if import {
                    store.import(abs)?
                } else {
                    store
                        .stat
                        .hash(abs)
                        .with_context(|| format!("hashing {rel}"))?
                };
                inputs.insert(
                    port.clone(),
                    InputRecord {
                        digest: hashed.digest,
                        from,
                    },
                );
            }
        }
    }
    if !pending.is_empty() {
        return Ok(Err(pending));
    }
    let params = stage.params.canonical();
    let key = cache_key(
        stage.kind.name(),
        stage.kind.version(),
        &params,
        inputs.iter().map(|(k, v)| (k.as_str(), &v.digest)),
        stage.seed,
    );
    Ok(Ok(Resolved {
        key,
        params,
        inputs,
    }))
}

/// Fresh or run, with reasons. `previous` is the record the lock last named for this stage.
pub fn decide(
    store: &Store,
    stage: &Stage,
    resolved: Resolved,
    previous: Option<&Record>,
    forced: bool,
) -> anyhow::Result<Decision> {
    if let Some(rec) = store.read_record(&resolved.key)? {
        let mut reasons = Vec::new();
        for (port, out) in &rec.outputs {
            match store.object_status(&out.digest) {
                ObjectStatus::Intact => {}
                ObjectStatus::Missing => reasons.push(Reason::OutputMissing {
                    port: port.clone(),
                    digest: out.digest,
                }),
                ObjectStatus::Corrupt { .. } => reasons.push(Reason::OutputCorrupt {
                    port: port.clone(),
                    digest: out.digest,
                }),
            }
        }
        if forced {
            reasons.insert(0, Reason::Forced);
        }
        if reasons.is_empty() {
            return Ok(Decision::Fresh(Box::new(rec)));
        }
        return Ok(Decision::Run { resolved, reasons });
    }
    let mut reasons = explain(stage, &resolved, previous);
    if forced {
        reasons.insert(0, Reason::Forced);
    }
    Ok(Decision::Run { resolved, reasons })
}

fn explain(stage: &Stage, new: &Resolved, prev: Option<&Record>) -> Vec<Reason> {
    let Some(prev) = prev else {
        return vec![Reason::NoRecord];
    };
    let mut reasons = Vec::new();
    if prev.kind != stage.kind.name() {
        reasons.push(Reason::KindChanged {
            old: prev.kind.clone(),
            new: stage.kind.name().into(),
        });
    } else if prev.version != stage.kind.version() {
        reasons.push(Reason::VersionChanged {
            old: prev.version,
            new: stage.kind.version(),
        });
    }
    let names: std::collections::BTreeSet<&String> =
        prev.params.keys().chain(new.params.keys()).collect();
    for name in names {
        let (o, n) = (prev.params.get(name), new.params.get(name));
        if o != n {
            reasons.push(Reason::Param {
                name: name.clone(),
                old: o.cloned(),
                new: n.cloned(),
            });
        }
    }
    if prev.seed != stage.seed {
        reasons.push(Reason::Seed {
            old: prev.seed,
            new: stage.seed,
        });
    }
    for (port, inp) in &new.inputs {
        let Some(old) = prev.inputs.get(port) else {
            reasons.push(Reason::InputAdded {
                port: port.clone(),
                from: inp.from.clone(),
            });
            continue;
        };
        if old.digest == inp.digest {
            continue;
        }
        reasons.push(match stage.inputs.get(port).map(|i| &i.source) {
            Some(InputSource::File { rel, .. }) => Reason::File {
                port: port.clone(),
                path: rel.clone(),
                old: old.digest,
                new: inp.digest,
            },
            _ => Reason::Input {
                port: port.clone(),
                from: inp.from.clone(),
                old: old.digest,
                new: inp.digest,
            },
        });
    }
    for (port, old) in &prev.inputs {
        if !new.inputs.contains_key(port) {
            reasons.push(Reason::InputRemoved {
                port: port.clone(),
                from: old.from.clone(),
            });
        }
    }
    if reasons.is_empty() {
        reasons.push(Reason::NothingObvious);
    }
    reasons
}

/// A stage's state in a plan: serialised as `"fresh"` or `"run"`, as it always was.
#[derive(Debug, Clone, Copy, Serialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum PlanState {
    Fresh,
    Run,
    /// Stale here, but the remote cache has a record for its key: `run` downloads it.
    Remote,
}

impl PlanState {
    pub fn as_str(self) -> &'static str {
        match self {
            PlanState::Fresh => "fresh",
            PlanState::Run => "run",
            PlanState::Remote => "remote",
        }
    }
}

impl fmt::Display for PlanState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.as_str())
    }
}

/// One stage's line in a plan.
#[derive(Debug, Clone, Serialize)]
pub struct PlannedStage {
    pub name: String,
    pub kind: String,
    pub state: PlanState,
    pub key: Option<Digest>,
    pub reasons: Vec<Reason>,
    /// For a fresh stage that ran as a Slurm job: where (job id, node, elapsed, state); for
    /// a remote hit: where the remote's record says it ran.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ran_as: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Plan {
    pub pipeline: String,
    pub stages: Vec<PlannedStage>,
}

impl Plan {
    pub fn anything_to_run(&self) -> bool {
        self.stages.iter().any(|s| s.state != PlanState::Fresh)
    }
}

/// The records the lock file names, by stage — what reasons are computed against.
pub fn previous_records(store: &Store, lock: Option<&LockFile>) -> HashMap<String, Record> {
    let mut out = HashMap::new();
    if let Some(lock) = lock {
        for (name, st) in &lock.stages {
            if let Ok(Some(r)) = store.read_record(&st.key) {
                out.insert(name.clone(), r);
            }
        }
    }
    out
}

/// What the planner concludes about one stage, given the outputs known so far.
#[derive(Debug, Clone)]
pub enum Verdict {
    /// An upstream stage has not been decided (it will rerun); these say which.
    Waiting(Vec<Reason>),
    Decided(Decision),
}

/// The one place that decides fresh or run, shared by `plan` and `run` so that they can
/// never disagree. Holds what a decision needs besides the store: the records the lock
/// last named (for reasons) and the `--force` list. `Send + Sync`: `run` decides on its
/// blocking pool, so hashing and importing file inputs never stall the scheduler.
pub struct Planner {
    previous: HashMap<String, Record>,
    forced: Vec<String>,
}

impl Planner {
    pub fn new(store: &Store, pipeline: &Pipeline, forced: &[String]) -> anyhow::Result<Planner> {
        let lock = LockFile::read(&pipeline.lock_path())?;
        Ok(Planner {
            previous: previous_records(store, lock.as_ref()),
            forced: forced.to_vec(),
        })
    }

    /// Resolves a stage's key from `known` and decides it. With `import`, file inputs are
    /// copied into the store (a run); without, only hashed (a plan).
    pub fn judge(
        &self,
        store: &Store,
        stage: &Stage,
        known: &Known,
        import: bool,
    ) -> anyhow::Result<Verdict> {
        Ok(match resolve(store, stage, known, import)? {
            Err(pending) => Verdict::Waiting(pending),
            Ok(resolved) => Verdict::Decided(decide(
                store,
                stage,
                resolved,
                self.previous.get(&stage.name),
                self.forced.contains(&stage.name),
            )?),
        })
    }
}

/// What `run` would do, without running or writing anything.
pub fn plan(store: &Store, pipeline: &Pipeline, forced: &[String]) -> anyhow::Result<Plan> {
    plan_with(store, pipeline, forced, None)
}

/// [`plan`], looking stale stages up in a remote cache: a stage whose key the remote has
/// is a remote hit, and its outputs (from the remote record) let the stages below it be
/// looked up too. Only records are read; objects are verified when `run` downloads them.
pub fn plan_with(
    store: &Store,
    pipeline: &Pipeline,
    forced: &[String],
    remote: Option<&crate::remote::Remote>,
) -> anyhow::Result<Plan> {
    let planner = Planner::new(store, pipeline, forced)?;
    let mut known = Known::new();
    let mut stages = Vec::new();
    for &i in &pipeline.order {
        let st = &pipeline.stages[i];
        let mut ran_as = None;
        let (state, key, reasons) = match planner.judge(store, st, &known, false)? {
            Verdict::Waiting(pending) => (PlanState::Run, None, pending),
            Verdict::Decided(Decision::Fresh(rec)) => {
                known.insert(st.name.clone(), rec.outputs.clone());
                ran_as = rec.slurm.as_ref().map(|j| {
                    format!(
                        "slurm job {} on {}, {}, COMPLETED",
                        j.job_id,
                        j.node,
                        crate::scheduler::fmt_secs(rec.duration_s)
                    )
                });
                (PlanState::Fresh, Some(rec.key), vec![])
            }
            Verdict::Decided(Decision::Run { resolved, reasons }) => {
                let hit = match remote {
                    Some(r) if reasons.first() != Some(&Reason::Forced) => {
                        r.lookup(&resolved.key)?
                    }
                    _ => None,
                };
                match hit {
                    Some(rec) => {
                        known.insert(st.name.clone(), rec.outputs.clone());
                        let size: u64 = rec.outputs.values().map(|o| o.size).sum();
                        ran_as = Some(format!(
                            "remote hit: {} to download, computed in {} on {}",
                            crate::audit::human_bytes(size),
                            crate::scheduler::fmt_secs(rec.duration_s),
                            if rec.device.is_empty() {
                                "?"
                            } else {
                                &rec.device
                            }
                        ));
                        (PlanState::Remote, Some(resolved.key), reasons)
                    }
                    None => (PlanState::Run, Some(resolved.key), reasons),
                }
            }
        };
        stages.push(PlannedStage {
            name: st.name.clone(),
            kind: st.kind.name().into(),
            state,
            key,
            reasons,
            ran_as,
        });
    }
    Ok(Plan {
        pipeline: pipeline.name.clone(),
        stages,
    })
}
