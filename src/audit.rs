//! `hhi audit`: does the store hold exactly what the lock file names, and do the records
//! chain together? Every artifact is re-read in full (no stat cache): this is the check a
//! teammate runs after cloning, or anyone runs before trusting a result.

use crate::key::cache_key;
use crate::lockfile::LockFile;
use crate::pipeline::{InputSource, Pipeline};
use crate::plan::Resolved;
use crate::progress::Progress;
use crate::scheduler::{Job, execute};
use crate::store::hash::{self, Digest, Entry};
use crate::store::{ObjectStatus, Store};
use anyhow::{Context, bail};
use serde::Serialize;
use std::collections::BTreeMap;

#[derive(Debug, Clone, Serialize)]
pub struct Problem {
    pub stage: String,
    /// What the artifact is to the stage: `output`, `input`, `file input` or `object`.
    pub role: &'static str,
    pub artifact: Option<String>,
    pub digest: Option<Digest>,
    pub message: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct Reproduction {
    pub stage: String,
    pub identical: bool,
    pub outputs: BTreeMap<String, String>,
    /// The kernel class of the recorded run and of the rerun (`backend::kernel_class`;
    /// empty for stages without tensor code).
    pub kernel_recorded: String,
    pub kernel_rerun: String,
    /// Whether bit-equality is to be expected: the same kernel class (or no tensor code).
    pub bits_expected: bool,
    /// The scratch store holding the rerun's outputs, kept when they differ so the
    /// difference can be inspected.
    pub scratch: Option<std::path::PathBuf>,
}

impl Reproduction {
    /// Whether this machine should reproduce the recorded bits, in words.
    pub fn kernel_line(&self) -> String {
        match (self.kernel_recorded.as_str(), self.kernel_rerun.as_str()) {
            ("", _) if self.bits_expected => "no tensor code: bit-equality expected".to_string(),
            (a, _) if self.bits_expected => {
                format!("kernels `{a}` here as when recorded: bit-equality expected")
            }
            ("", b) => format!(
                "the record predates kernel classes; rerun on `{b}`: bit-equality not guaranteed"
            ),
            (a, b) => format!(
                "recorded on `{a}` kernels, rerun on `{b}`: bit-equality not expected \
                 (kernel classes round differently in the last bits)"
            ),
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct AuditReport {
    pub pipeline: String,
    pub stages: usize,
    pub artifacts: usize,
    pub bytes: u64,
    pub problems: Vec<Problem>,
    pub reproduction: Option<Reproduction>,
    /// With `--all`: every object in the store, re-hashed (count, bytes).
    pub objects_checked: Option<(usize, u64)>,
}

impl AuditReport {
    pub fn ok(&self) -> bool {
        self.problems.is_empty() && self.reproduction.as_ref().is_none_or(|r| r.identical)
    }

    pub fn render(&self) -> String {
        let mut s = String::new();
        for p in &self.problems {
            let what = match (&p.artifact, &p.digest) {
                (Some(a), Some(d)) => {
                    format!("stage `{}`, {} `{a}` ({}): ", p.stage, p.role, d.short())
                }
                (Some(a), None) => format!("stage `{}`, {} `{a}`: ", p.stage, p.role),
                _ => format!("stage `{}`: ", p.stage),
            };
            s.push_str(&format!("problem: {what}{}\n", p.message));
        }
        if let Some(r) = &self.reproduction {
            s.push_str(&format!(
                "reproduce `{}`: {}\n",
                r.stage,
                if r.identical {
                    "bitwise identical"
                } else {
                    "DIFFERENT"
                }
            ));
            s.push_str(&format!("  {}\n", r.kernel_line()));
            for (port, verdict) in &r.outputs {
                s.push_str(&format!("  output `{port}`: {verdict}\n"));
            }
            if let Some(dir) = &r.scratch {
                s.push_str(&format!(
                    "  the rerun's outputs are kept in {} (its objects/) for inspection\n",
                    dir.display()
                ));
            }
        }
        if let Some((n, b)) = self.objects_checked {
            s.push_str(&format!(
                "every object in the store: {n} object(s), {} re-hashed\n",
                human_bytes(b)
            ));
        }
        let different = self.reproduction.as_ref().is_some_and(|r| !r.identical);
        let count = self.problems.len() + usize::from(different);
        s.push_str(&format!(
            "audit: {} stage(s), {} artifact(s), {} checked; {}\n",
            self.stages,
            self.artifacts,
            human_bytes(self.bytes),
            if count == 0 {
                "no problems".to_string()
            } else {
                format!("{count} problem(s)")
            }
        ));
        s
    }
}

pub fn human_bytes(b: u64) -> String {
    let units = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut x = b as f64;
    let mut u = 0;
    while x >= 1024.0 && u + 1 < units.len() {
        x /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{b} B")
    } else {
        format!("{x:.1} {}", units[u])
    }
}

pub fn audit(
    store: &Store,
    pipeline: &Pipeline,
    all_objects: bool,
    reproduce: Option<&str>,
) -> anyhow::Result<AuditReport> {
    let lock_path = pipeline.lock_path();
    let Some(lock) = LockFile::read(&lock_path)? else {
        bail!(
            "no lock file at {}\n  = help: `hhi run {}` writes it",
            lock_path.display(),
            pipeline.path.display()
        );
    };
    let mut problems = Vec::new();
    let mut artifacts = 0;
    let mut bytes = 0;
    let problem =
        |stage: &str, artifact: Option<&str>, digest: Option<Digest>, message: String| Problem {
            stage: stage.to_string(),
            role: "output",
            artifact: artifact.map(str::to_string),
            digest,
            message,
        };
    for name in lock.stages.keys() {
        if pipeline.stage_index(name).is_none() {
            problems.push(problem(
                name,
                None,
                None,
                "named by the lock but not in the pipeline".into(),
            ));
        }
    }
    for &i in &pipeline.order {
        let st = &pipeline.stages[i];
        let Some(entry) = lock.stages.get(&st.name) else {
            problems.push(problem(
                &st.name,
                None,
                None,
                "not in the lock file (never run, or the pipeline changed)".into(),
            ));
            continue;
        };
        let rec = match store.read_record(&entry.key)? {
            Some(r) => r,
            None => {
                problems.push(problem(
                    &st.name,
                    None,
                    None,
                    format!("no record for key {} in the store", entry.key.short()),
                ));
                continue;
            }
        };
        let recomputed = cache_key(
            &rec.kind,
            rec.version,
            &rec.params,
            rec.inputs.iter().map(|(k, v)| (k.as_str(), &v.digest)),
            rec.seed,
        );
        if recomputed != rec.key {
            problems.push(problem(
                &st.name,
                None,
                None,
                "record does not hash to its key (edited or corrupt)".into(),
            ));
        }
        for (port, locked) in &entry.outputs {
            artifacts += 1;
            bytes += locked.size;
            match rec.outputs.get(port) {
                Some(o) if o.digest == locked.digest => {}
                _ => problems.push(problem(
                    &st.name,
                    Some(port),
                    Some(locked.digest),
                    "the record names a different digest than the lock".into(),
                )),
            }
            match store.object_status_full(&locked.digest) {
                ObjectStatus::Intact => {}
                ObjectStatus::Missing => problems.push(problem(
                    &st.name,
                    Some(port),
                    Some(locked.digest),
                    "missing from the store".into(),
                )),
                ObjectStatus::Corrupt { found } => problems.push(problem(
                    &st.name,
                    Some(port),
                    Some(locked.digest),
                    format!("corrupt: its content hashes to {}", found.short()),
                )),
            }
        }
        // The chain: each input must be exactly what the upstream stage's locked output is.
        for (port, input) in &st.inputs {
            let Some(used) = rec.inputs.get(port) else {
                problems.push(Problem {
                    role: "input",
                    ..problem(
                        &st.name,
                        Some(port),
                        None,
                        "input missing from the record".into(),
                    )
                });
                continue;
            };
            match &input.source {
                InputSource::Edge {
                    stage: up,
                    port: out,
                } => {
                    let expected = lock
                        .stages
                        .get(up)
                        .and_then(|u| u.outputs.get(out))
                        .map(|o| o.digest);
                    if expected != Some(used.digest) {
                        problems.push(Problem {
                            role: "input",
                            ..problem(
                                &st.name,
                                Some(port),
                                Some(used.digest),
                                format!(
                                    "was built from a `{up}.{out}` other than the one the lock names"
                                ),
                            )
                        });
                    }
                }
                InputSource::File { rel, .. } => {
                    artifacts += 1;
                    if store.object_status_full(&used.digest) != ObjectStatus::Intact {
                        problems.push(Problem {
                            role: "file input",
                            ..problem(
                                &st.name,
                                Some(rel),
                                Some(used.digest),
                                "the stored copy of this file input is missing or corrupt".into(),
                            )
                        });
                    }
                }
            }
        }
    }
    let objects_checked = if all_objects {
        let (found, n, b) = check_every_object(store);
        problems.extend(found);
        Some((n, b))
    } else {
        None
    };
    let reproduction = match reproduce {
        Some(s) => Some(reproduce_stage(store, pipeline, &lock, s)?),
        None => None,
    };
    Ok(AuditReport {
        pipeline: pipeline.name.clone(),
        stages: lock.stages.len(),
        artifacts,
        bytes,
        problems,
        reproduction,
        objects_checked,
    })
}

/// Every entry under `objects/` must be named by the digest of its content. Returns the
/// problems, and how many objects and bytes were checked.
fn check_every_object(store: &Store) -> (Vec<Problem>, usize, u64) {
    let mut out = Vec::new();
    let (mut n, mut bytes) = (0, 0);
    let Ok(shards) = std::fs::read_dir(store.root().join("objects")) else {
        return (out, n, bytes);
    };
    for shard in shards.flatten() {
        let Ok(objs) = std::fs::read_dir(shard.path()) else {
            continue;
        };
        for obj in objs.flatten() {
            let name = format!(
                "{}{}",
                shard.file_name().to_string_lossy(),
                obj.file_name().to_string_lossy()
            );
            let hashed = hash::hash_path(&obj.path());
            n += 1;
            if let Ok(h) = &hashed {
                bytes += h.size;
            }
            let verdict = match (name.parse::<Digest>(), hashed) {
                (Ok(d), Ok(h)) if h.digest == d => continue,
                (Ok(d), Ok(h)) => (
                    Some(d),
                    format!("corrupt: its content hashes to {}", h.digest.short()),
                ),
                (Err(_), _) => (
                    None,
                    format!("stray entry {} (not a digest)", obj.path().display()),
                ),
                (Ok(d), Err(e)) => (Some(d), format!("unreadable: {e}")),
            };
            out.push(Problem {
                stage: "(store)".into(),
                role: "object",
                artifact: Some(name),
                digest: verdict.0,
                message: verdict.1,
            });
        }
    }
    (out, n, bytes)
}

fn reproduce_stage(
    store: &Store,
    pipeline: &Pipeline,
    lock: &LockFile,
    name: &str,
) -> anyhow::Result<Reproduction> {
    let i = pipeline
        .stage_index(name)
        .with_context(|| format!("no stage named `{name}` in the pipeline"))?;
    let st = &pipeline.stages[i];
    let entry = lock
        .stages
        .get(name)
        .with_context(|| format!("`{name}` is not in the lock; run it first"))?;
    let rec = store
        .read_record(&entry.key)?
        .with_context(|| format!("no record for `{name}` in the store"))?;
    if rec.params != st.params.canonical()
        || rec.kind != st.kind.name()
        || rec.version != st.kind.version()
    {
        bail!("the pipeline's `{name}` differs from the locked run; `hhi plan` shows how");
    }
    let scratch_dir = tempfile::tempdir().context("creating a scratch store")?;
    let scratch = Store::open(scratch_dir.path());
    scratch.init()?;
    for inp in rec.inputs.values() {
        scratch
            .import(&store.object_path(&inp.digest))
            .context("copying an input into the scratch store")?;
    }
    let resolved = Resolved {
        key: rec.key,
        params: rec.params.clone(),
        inputs: rec.inputs.clone(),
    };
    let job = Job {
        stage: st.clone(),
        pipeline_name: pipeline.name.clone(),
        pipeline_dir: pipeline.dir.clone(),
        backend: pipeline.backend.clone(),
        resolved,
    };
    let again = execute(&scratch, job, Progress::hidden())
        .with_context(|| format!("rerunning `{name}`"))?;
    let mut outputs = BTreeMap::new();
    let mut identical = true;
    for (port, o) in &rec.outputs {
        let new = &again.outputs[port];
        let verdict = if new.digest == o.digest {
            "bitwise identical".to_string()
        } else {
            identical = false;
            describe_difference(
                &store.object_path(&o.digest),
                &scratch.object_path(&new.digest),
            )
        };
        outputs.insert(port.clone(), verdict);
    }
    let bits_expected = rec.kernel == again.kernel;
    Ok(Reproduction {
        stage: name.to_string(),
        identical,
        outputs,
        kernel_recorded: rec.kernel.clone(),
        kernel_rerun: again.kernel.clone(),
        bits_expected,
        scratch: (!identical).then(|| scratch_dir.keep()),
    })
}

/// Which files differ between two versions of an output.
fn describe_difference(a: &std::path::Path, b: &std::path::Path) -> String {
    let (Ok(ma), Ok(mb)) = (hash::manifest(a), hash::manifest(b)) else {
        let (sa, sb) = (
            crate::store::fsutil::disk_size(a),
            crate::store::fsutil::disk_size(b),
        );
        return format!("differs ({sa} vs {sb} bytes)");
    };
    let files = |m: Vec<Entry>| -> BTreeMap<String, Digest> {
        m.into_iter()
            .filter_map(|e| {
                if let Entry::File { path, digest, .. } = e {
                    Some((path, digest))
                } else {
                    None
                }
            })
            .collect()
    };
    let (fa, fb) = (files(ma), files(mb));
    let mut diffs: Vec<String> = fa
        .iter()
        .filter(|(p, d)| fb.get(*p) != Some(d))
        .map(|(p, _)| p.clone())
        .chain(fb.keys().filter(|p| !fa.contains_key(*p)).cloned())
        .collect();
    diffs.dedup();
    format!("differs in {} file(s): {}", diffs.len(), diffs.join(", "))
}
