//! Loading a pipeline file: TOML with spans, every stage checked against its kind, every
//! edge checked for existence and type, and the whole graph checked for cycles — all
//! before anything touches the store. Problems are collected, not thrown one at a time.

use crate::diag::{Diagnostic, Diagnostics, suggest, suggest_name};
use crate::graph::Dag;
use crate::params::{ParamSpec, ParamType, Params, Value};
use crate::registry::{PortSpec, Registry, Signature, StageKind};
use crate::slurm::SlurmSpec;
use crate::types::ArtifactType;
use std::collections::{BTreeMap, BTreeSet};
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use toml::Spanned;
use toml::de::{DeTable, DeValue};

pub const BACKENDS: &[&str] = &["auto", "cpu", "ndarray", "wgpu", "cuda"];

#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub enum InputSource {
    /// Output `port` of stage `stage`.
    Edge { stage: String, port: String },
    /// A file or folder on disk; `rel` as written, `abs` resolved against the pipeline file.
    File { rel: String, abs: PathBuf },
}

impl InputSource {
    /// How provenance records and `plan` name this input.
    pub fn describe(&self) -> String {
        match self {
            InputSource::Edge { stage, port } => format!("{stage}.{port}"),
            InputSource::File { rel, .. } => format!("file:{rel}"),
        }
    }
}

#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Input {
    pub source: InputSource,
    pub ty: ArtifactType,
}

#[derive(Clone)]
pub struct Stage {
    pub name: String,
    pub kind: Arc<dyn StageKind>,
    /// Parameters with defaults filled in (path parameters live in `inputs`).
    pub params: Params,
    pub inputs: BTreeMap<String, Input>,
    pub signature: Signature,
    pub seed: u64,
    /// Where it runs: in this process, or as a Slurm job. Not part of its cache key.
    pub executor: crate::slurm::Executor,
}

impl Stage {
    pub fn output_type(&self, port: &str) -> Option<ArtifactType> {
        self.signature
            .outputs
            .iter()
            .find(|p| p.name == port)
            .map(|p| p.ty)
    }
}

pub struct Pipeline {
    /// The file as given on the command line.
    pub path: PathBuf,
    /// The folder relative paths are resolved against.
    pub dir: PathBuf,
    pub name: String,
    pub seed: u64,
    pub backend: String,
    /// The shared remote cache named in `[pipeline] remote` (`--remote` and `HHI_REMOTE`
    /// override it); not part of any cache key.
    pub remote: Option<crate::remote::RemoteUrl>,
    /// In file order.
    pub stages: Vec<Stage>,
    pub dag: Dag,
    /// Stage indices, inputs before their consumers.
    pub order: Vec<usize>,
}

impl Pipeline {
    pub fn stage_index(&self, name: &str) -> Option<usize> {
        self.stages.iter().position(|s| s.name == name)
    }

    /// `P.lock` beside `P.toml`.
    pub fn lock_path(&self) -> PathBuf {
        self.path.with_extension("lock")
    }

    pub fn load(path: &Path, registry: &Registry) -> anyhow::Result<Pipeline> {
        Self::load_with(path, &[], registry)
    }

    /// Loads the file with `--set` overrides applied to its text (see [`crate::overrides`]):
    /// the result is what loading the file edited that way would give.
    pub fn load_with(
        path: &Path,
        overrides: &[crate::overrides::Override],
        registry: &Registry,
    ) -> anyhow::Result<Pipeline> {
        let bytes = std::fs::read(path).map_err(|e| {
            anyhow::anyhow!("cannot read pipeline {}: {e}\n  = help: check the path; pipelines usually live in pipelines/", path.display())
        })?;
        let src = match String::from_utf8(bytes) {
            Ok(s) => s,
            Err(e) => return Err(not_utf8(path, e.as_bytes(), e.utf8_error()).into()),
        };
        let src = crate::overrides::apply(path, &src, overrides)?;
        Ok(Self::parse(path, &src, registry)?)
    }

    pub fn parse(path: &Path, src: &str, registry: &Registry) -> Result<Pipeline, Diagnostics> {
        Loader {
            file: path,
            src,
            registry,
            diags: Vec::new(),
        }
        .load()
    }
}

/// A pipeline file that is not UTF-8: the line and column of the first bad byte.
fn not_utf8(path: &Path, bytes: &[u8], e: std::str::Utf8Error) -> Diagnostics {
    let at = e.valid_up_to();
    // Lossy decoding keeps the valid prefix byte for byte, so `at` is still its offset.
    let shown = String::from_utf8_lossy(bytes);
    let bad = &bytes[at..at + e.error_len().unwrap_or(bytes.len() - at).max(1)];
    let hex: Vec<String> = bad.iter().map(|b| format!("0x{b:02x}")).collect();
    Diagnostics(vec![
        Diagnostic::new(
            path,
            &shown,
            // The replacement character that stands for the bad byte(s).
            at..at + '\u{FFFD}'.len_utf8(),
            format!(
                "the pipeline file is not valid UTF-8 (byte {})",
                hex.join(" ")
            ),
        )
        .with_hint("pipeline files are UTF-8 TOML; re-save the file as UTF-8"),
    ])
}

/// The seed a stage derives from the pipeline seed and its name, so that adding a stage
/// never changes another stage's randomness.
pub fn stage_seed(pipeline_seed: u64, stage: &str) -> u64 {
    let h = blake3::hash(format!("hhi-seed\0{pipeline_seed}\0{stage}").as_bytes());
    u64::from_le_bytes(h.as_bytes()[..8].try_into().expect("8 bytes"))
}

fn type_name(v: &DeValue) -> &'static str {
    match v {
        DeValue::String(_) => "a string",
        DeValue::Integer(_) => "an integer",
        DeValue::Float(_) => "a float",
        DeValue::Boolean(_) => "a bool",
        DeValue::Datetime(_) => "a datetime",
        DeValue::Array(_) => "an array",
        DeValue::Table(_) => "a table",
    }
}

/// How a port is named in a process's environment (`$HHI_IN_<this>`, `$HHI_OUT_<this>`):
/// `-` is not allowed in shell variable names, so it becomes `_`. The loader refuses two
/// ports of one stage that this maps to the same name.
pub fn port_env_suffix(port: &str) -> String {
    port.replace('-', "_")
}

/// A map parameter of this name is the environment of a process (the `command` kind's
/// `env`): its names and values are checked as such when the pipeline loads.
pub const ENV_PARAM: &str = "env";

const ENV_COLLISION_HINT: &str =
    "`-` becomes `_` in environment variable names; rename one of them";

/// What a special file is, for a message ("a FIFO", …).
fn special_file_kind(ft: &std::fs::FileType) -> &'static str {
    use std::os::unix::fs::FileTypeExt;
    if ft.is_fifo() {
        "a FIFO (named pipe)"
    } else if ft.is_socket() {
        "a socket"
    } else if ft.is_char_device() {
        "a character device"
    } else if ft.is_block_device() {
        "a block device"
    } else {
        "a special file"
    }
}

/// Why an `env` entry cannot be passed to a process: `(on the key?, message, hint)`.
fn env_var_problem(name: &str, value: &str) -> Option<(bool, String, String)> {
    let shown = name.escape_debug();
    if name.is_empty() {
        return Some((
            true,
            "empty environment variable name in `env`".into(),
            "give each variable a name: env = { NAME = \"value\" }".into(),
        ));
    }
    if name.contains('\0') {
        return Some((
            true,
            format!("environment variable name `{shown}` contains a NUL byte"),
            "a NUL cannot be passed to a program; remove it".into(),
        ));
    }
    if let Some((before, _)) = name.split_once('=') {
        return Some((
            true,
            format!("environment variable name `{shown}` contains `=`"),
            format!("a name cannot contain `=`; did you mean {before} = \"…\"?"),
        ));
    }
    if value.contains('\0') {
        return Some((
            false,
            format!("the value of `{shown}` in `env` contains a NUL byte"),
            "a NUL cannot be passed to a program; remove it".into(),
        ));
    }
    if name == "PATH" && value.is_empty() {
        return Some((
            false,
            "`PATH` is empty: the command could not find any program".into(),
            "remove it to keep hhi's PATH, or list folders, e.g. PATH = \"/usr/local/bin:/usr/bin:/bin\"".into(),
        ));
    }
    None
}

fn valid_stage_name(s: &str) -> bool {
    !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

struct Loader<'a> {
    file: &'a Path,
    src: &'a str,
    registry: &'a Registry,
    diags: Vec<Diagnostic>,
}

/// A stage kind with what the loader asks of it, asked once per stage.
struct KindSpec {
    kind: Arc<dyn StageKind>,
    params: Vec<ParamSpec>,
    inputs: Vec<PortSpec>,
    input_table: Option<&'static str>,
}

impl KindSpec {
    fn new(kind: Arc<dyn StageKind>) -> KindSpec {
        KindSpec {
            params: kind.params(),
            inputs: kind.inputs(),
            input_table: kind.input_table(),
            kind,
        }
    }
}

/// What a stage table's entries add up to while they are read.
#[derive(Default)]
struct StageBody {
    values: BTreeMap<String, Value>,
    inputs: BTreeMap<String, (Input, Range<usize>)>,
    /// Every key the table has, valid or not: a key with a bad value is one problem, not
    /// also a missing one.
    given: BTreeSet<String>,
    /// `port_env_suffix` of each input port → the port.
    input_env: BTreeMap<String, String>,
}

struct Parsed {
    name: String,
    span: Range<usize>,
    kind: Arc<dyn StageKind>,
    params: Params,
    inputs: BTreeMap<String, (Input, Range<usize>)>,
    signature: Signature,
    /// The stage's own `executor` and `slurm`, laid over the pipeline's.
    executor: Option<String>,
    slurm: SlurmSpec,
}

/// `[pipeline]`'s defaults for every stage's executor.
#[derive(Default)]
struct ExecDefaults {
    executor: Option<String>,
    slurm: SlurmSpec,
    remote: Option<crate::remote::RemoteUrl>,
}

const EXECUTORS: [&str; 2] = ["local", "slurm"];

impl<'a> Loader<'a> {
    fn err(&mut self, span: Range<usize>, msg: impl Into<String>) -> &mut Diagnostic {
        self.diags
            .push(Diagnostic::new(self.file, self.src, span, msg));
        self.diags.last_mut().expect("just pushed")
    }

    fn hint(&mut self, span: Range<usize>, msg: impl Into<String>, hint: impl Into<String>) {
        let d = Diagnostic::new(self.file, self.src, span, msg).with_hint(hint);
        self.diags.push(d);
    }

    fn load(mut self) -> Result<Pipeline, Diagnostics> {
        let root = match DeTable::parse(self.src) {
            Ok(t) => t.into_inner(),
            Err(e) => {
                let span = e.span().unwrap_or(0..0);
                let msg = format!("invalid TOML: {}", e.message().trim());
                self.err(span, msg);
                return Err(Diagnostics(self.diags));
            }
        };
        let dir = self
            .file
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_default();
        let dir = if dir.as_os_str().is_empty() {
            PathBuf::from(".")
        } else {
            dir
        };
        let mut name = self
            .file
            .file_stem()
            .and_then(|s| s.to_str())
            .unwrap_or("pipeline")
            .to_string();
        let mut seed = 0u64;
        let mut backend = "auto".to_string();
        let mut exec = ExecDefaults::default();
        let mut stages_table = None;

        for (k, v) in root.iter() {
            match k.get_ref().as_ref() {
                "pipeline" => {
                    self.pipeline_header(v, &mut name, &mut seed, &mut backend, &mut exec)
                }
                "stages" => stages_table = Some(v),
                other => {
                    let other = other.to_string();
                    let mut d = Diagnostic::new(
                        self.file,
                        self.src,
                        k.span(),
                        format!("unknown top-level table `{other}`"),
                    );
                    d.hint = Some(suggest_name(&other, ["pipeline", "stages"], || {
                        "a pipeline file has a [pipeline] table and [stages.NAME] tables".into()
                    }));
                    self.diags.push(d);
                }
            }
        }

        let mut parsed: Vec<Parsed> = Vec::new();
        match stages_table.map(|v| (v.span(), v.get_ref())) {
            None => self.hint(
                0..0,
                "the pipeline has no stages",
                "add a table such as [stages.data] with kind = \"files\"",
            ),
            Some((_, DeValue::Table(t))) => {
                let mut entries: Vec<_> = t.iter().collect();
                entries.sort_by_key(|(k, _)| k.span().start);
                for (k, v) in entries {
                    if let Some(p) = self.stage(k, v, &dir) {
                        parsed.push(p);
                    }
                }
            }
            Some((span, _)) => {
                self.err(span, "`stages` must be a table of stage tables");
            }
        }

        self.check_edges(&parsed);
        let index: BTreeMap<&str, usize> = parsed
            .iter()
            .enumerate()
            .map(|(i, p)| (p.name.as_str(), i))
            .collect();
        let index = &index;
        let edges: Vec<(usize, usize)> = parsed
            .iter()
            .enumerate()
            .flat_map(|(i, p)| {
                p.inputs
                    .values()
                    .filter_map(move |(inp, _)| match &inp.source {
                        InputSource::Edge { stage, .. } => {
                            index.get(stage.as_str()).map(|&u| (u, i))
                        }
                        InputSource::File { .. } => None,
                    })
            })
            .collect();
        let dag = Dag::new(parsed.len(), edges);
        let order = match dag.topo_order() {
            Ok(o) => o,
            Err(cycles) => {
                for c in cycles {
                    let names: Vec<&str> = c.iter().map(|&i| parsed[i].name.as_str()).collect();
                    let span = parsed[c[0]].span.clone();
                    self.hint(
                        span,
                        format!("cycle between stages {}", names.iter().map(|n| format!("`{n}`")).collect::<Vec<_>>().join(", ")),
                        "a stage cannot depend, directly or not, on its own outputs; break the loop",
                    );
                }
                Vec::new()
            }
        };

        if !self.diags.is_empty() {
            self.diags.sort_by_key(|d| (d.line, d.col));
            return Err(Diagnostics(self.diags));
        }
        let stages = parsed
            .into_iter()
            .map(|p| Stage {
                seed: stage_seed(seed, &p.name),
                executor: match p.executor.as_deref().or(exec.executor.as_deref()) {
                    Some("slurm") => crate::slurm::Executor::Slurm(exec.slurm.merged(&p.slurm)),
                    _ => crate::slurm::Executor::Local,
                },
                name: p.name,
                kind: p.kind,
                params: p.params,
                inputs: p.inputs.into_iter().map(|(k, (i, _))| (k, i)).collect(),
                signature: p.signature,
            })
            .collect();
        Ok(Pipeline {
            path: self.file.to_path_buf(),
            dir,
            name,
            seed,
            backend,
            remote: exec.remote,
            stages,
            dag,
            order,
        })
    }

    fn pipeline_header(
        &mut self,
        v: &Spanned<DeValue>,
        name: &mut String,
        seed: &mut u64,
        backend: &mut String,
        exec: &mut ExecDefaults,
    ) {
        let DeValue::Table(t) = v.get_ref() else {
            self.err(v.span(), "`pipeline` must be a table");
            return;
        };
        for (k, v) in t.iter() {
            match (k.get_ref().as_ref(), v.get_ref()) {
                ("executor", _) => exec.executor = self.executor_value(v),
                ("slurm", _) => exec.slurm = self.slurm_spec(v),
                ("remote", DeValue::String(s)) => match crate::remote::config::parse_url(s) {
                    Ok(u) => exec.remote = Some(u),
                    Err(e) => {
                        let d = self.err(v.span(), "invalid remote");
                        d.hint = Some(e);
                        // `user:password@` of a URL that carries credentials.
                        if let Some(userinfo) = s
                            .split_once("://")
                            .and_then(|(_, rest)| rest.split_once('@'))
                            .map(|(u, _)| u)
                        {
                            d.redact(userinfo);
                        }
                    }
                },
                ("remote", other) => {
                    let msg = format!(
                        "`remote` must be a string (s3://bucket/prefix or file:///folder), found {}",
                        type_name(other)
                    );
                    self.err(v.span(), msg);
                }
                ("name", DeValue::String(s)) => *name = s.to_string(),
                ("seed", DeValue::Integer(i)) => match u64::from_str_radix(i.as_str(), i.radix()) {
                    Ok(s) => *seed = s,
                    Err(_) => self.hint(
                        v.span(),
                        "`seed` is out of range",
                        "use an integer from 0 to 2^64-1",
                    ),
                },
                ("backend", DeValue::String(s)) if BACKENDS.contains(&s.as_ref()) => {
                    *backend = s.to_string();
                    let needs = match s.as_ref() {
                        "wgpu" if !cfg!(feature = "wgpu") => Some("wgpu"),
                        "cuda" if !cfg!(feature = "cuda") => Some("cuda"),
                        _ => None,
                    };
                    if let Some(f) = needs {
                        self.hint(
                            v.span(),
                            format!("backend `{f}` is not compiled into this hhi"),
                            format!("rebuild with `cargo build --release --features {f}`, or use backend = \"auto\""),
                        );
                    }
                }
                ("backend", _) => self.hint(
                    v.span(),
                    "unknown backend",
                    format!("expected one of: {}", BACKENDS.join(", ")),
                ),
                (key @ ("name" | "seed"), other) => {
                    let want = if key == "name" {
                        "a string"
                    } else {
                        "an integer"
                    };
                    let msg = format!("`{key}` must be {want}, found {}", type_name(other));
                    self.err(v.span(), msg);
                }
                (other, _) => {
                    let other = other.to_string();
                    let hint = suggest_name(
                        &other,
                        ["name", "seed", "backend", "executor", "slurm", "remote"],
                        || {
                            "[pipeline] takes name, seed, backend, executor, slurm and remote"
                                .into()
                        },
                    );
                    self.hint(
                        k.span(),
                        format!("unknown key `{other}` in [pipeline]"),
                        hint,
                    );
                }
            }
        }
    }

    fn stage(
        &mut self,
        k: &Spanned<std::borrow::Cow<str>>,
        v: &Spanned<DeValue>,
        dir: &Path,
    ) -> Option<Parsed> {
        let name = k.get_ref().to_string();
        let span = k.span();
        if !valid_stage_name(&name) {
            self.hint(
                span.clone(),
                format!("invalid stage name `{name}`"),
                "use letters, digits, `_` and `-` (a `.` would be read as stage.port)",
            );
        }
        let DeValue::Table(t) = v.get_ref() else {
            self.hint(
                v.span(),
                format!("stage `{name}` must be a table"),
                format!("write it as [stages.{name}] with a `kind`"),
            );
            return None;
        };
        let kind = KindSpec::new(self.stage_kind(&name, &span, t)?);
        let mut body = StageBody::default();
        let mut entries: Vec<_> = t.iter().filter(|(k, _)| k.get_ref() != "kind").collect();
        entries.sort_by_key(|(k, _)| k.span().start);
        let (mut executor, mut slurm) = (None, SlurmSpec::default());
        for (key, val) in entries {
            // Where a stage runs is not a parameter of its kind, and not part of its key.
            match key.get_ref().as_ref() {
                "executor" => executor = self.executor_value(val),
                "slurm" => slurm = self.slurm_spec(val),
                _ => self.stage_entry(&name, &kind, &mut body, key, val, dir),
            }
        }
        self.fill_defaults(&name, &span, &kind, &mut body);

        let params = Params(body.values);
        let signature = match kind.kind.signature(&params) {
            Ok(s) => s,
            Err(e) => {
                self.err(span, format!("stage `{name}`: {e}"));
                return None;
            }
        };
        self.check_output_env_names(&name, &span, t, &signature);
        Some(Parsed {
            name,
            span,
            kind: kind.kind,
            params,
            inputs: body.inputs,
            signature,
            executor,
            slurm,
        })
    }

    /// `executor = "local" | "slurm"`.
    fn executor_value(&mut self, v: &Spanned<DeValue>) -> Option<String> {
        match v.get_ref() {
            DeValue::String(s) if EXECUTORS.contains(&s.as_ref()) => Some(s.to_string()),
            _ => {
                self.hint(
                    v.span(),
                    "unknown executor",
                    "expected \"local\" (this machine) or \"slurm\" (each stage a Slurm job)",
                );
                None
            }
        }
    }

    /// `slurm = { partition = "gpu", gpus = 1, cpus = 8, mem = "64G", time = "12:00:00",
    /// account = "…", extra = ["--qos=high"] }`.
    fn slurm_spec(&mut self, v: &Spanned<DeValue>) -> SlurmSpec {
        let mut spec = SlurmSpec::default();
        let DeValue::Table(t) = v.get_ref() else {
            self.hint(
                v.span(),
                format!("`slurm` must be a table, found {}", type_name(v.get_ref())),
                "e.g. slurm = { partition = \"gpu\", gpus = 1, time = \"12:00:00\" }",
            );
            return spec;
        };
        for (k, val) in t.iter() {
            let key = k.get_ref().as_ref();
            match (key, val.get_ref()) {
                ("partition" | "mem" | "time" | "account", DeValue::String(s)) => {
                    let s = Some(s.to_string());
                    match key {
                        "partition" => spec.partition = s,
                        "mem" => spec.mem = s,
                        "time" => spec.time = s,
                        _ => spec.account = s,
                    }
                }
                ("gpus" | "cpus", DeValue::Integer(i)) => {
                    match u32::from_str_radix(i.as_str(), i.radix()) {
                        Ok(n) if key == "gpus" => spec.gpus = Some(n),
                        Ok(n) if n > 0 => spec.cpus = Some(n),
                        _ => {
                            self.err(val.span(), format!("`{key}` must be a count (cpus ≥ 1)"));
                        }
                    }
                }
                ("extra", DeValue::Array(items)) => {
                    for it in items {
                        match it.get_ref() {
                            DeValue::String(s) => spec.extra.push(s.to_string()),
                            other => {
                                self.err(
                                    it.span(),
                                    format!(
                                        "`extra` lists sbatch flags as strings, found {}",
                                        type_name(other)
                                    ),
                                );
                            }
                        }
                    }
                }
                (
                    k2 @ ("partition" | "mem" | "time" | "account" | "gpus" | "cpus" | "extra"),
                    other,
                ) => {
                    let want = match k2 {
                        "gpus" | "cpus" => "an integer",
                        "extra" => "an array of strings",
                        _ => "a string",
                    };
                    self.err(
                        val.span(),
                        format!("`slurm.{k2}` must be {want}, found {}", type_name(other)),
                    );
                }
                (other, _) => {
                    let other = other.to_string();
                    let hint = suggest_name(&other, crate::slurm::SPEC_KEYS, || {
                        format!("slurm takes: {}", crate::slurm::SPEC_KEYS.join(", "))
                    });
                    self.hint(k.span(), format!("unknown key `{other}` in slurm"), hint);
                }
            }
        }
        spec
    }

    /// The stage's `kind`, looked up in the registry.
    fn stage_kind(
        &mut self,
        name: &str,
        span: &Range<usize>,
        t: &DeTable,
    ) -> Option<Arc<dyn StageKind>> {
        match t.get("kind").map(|v| (v.span(), v.get_ref())) {
            None => {
                self.hint(
                    span.clone(),
                    format!("stage `{name}` has no `kind`"),
                    "add kind = \"…\"; `hhi stages` lists the kinds",
                );
                None
            }
            Some((ks, DeValue::String(kname))) => {
                if let Some(kind) = self.registry.get(kname) {
                    return Some(kind.clone());
                }
                let hint = suggest(
                    kname,
                    self.registry.names(),
                    |s| format!("did you mean `{s}`? (`hhi stages` lists every kind)"),
                    || {
                        format!(
                            "known kinds: {}; `hhi stages` describes them",
                            self.registry.names().collect::<Vec<_>>().join(", ")
                        )
                    },
                );
                self.hint(ks, format!("unknown stage kind `{kname}`"), hint);
                None
            }
            Some((ks, other)) => {
                let msg = format!("`kind` must be a string, found {}", type_name(other));
                self.err(ks, msg);
                None
            }
        }
    }

    /// One `key = value` of a stage table: an input, the table of inputs, a parameter, or
    /// an unknown key.
    fn stage_entry(
        &mut self,
        stage: &str,
        kind: &KindSpec,
        body: &mut StageBody,
        key: &Spanned<std::borrow::Cow<str>>,
        val: &Spanned<DeValue>,
        dir: &Path,
    ) {
        let kname = key.get_ref().as_ref();
        body.given.insert(kname.to_string());
        if let Some(port) = kind.inputs.iter().find(|p| p.name == kname) {
            let input = self.input_source(val, dir).map(|source| Input {
                source,
                ty: port.ty,
            });
            self.add_input(
                stage,
                body,
                kname,
                key.span(),
                input.map(|i| (i, val.span())),
            );
        } else if Some(kname) == kind.input_table {
            self.input_table(stage, kname, body, val, dir);
        } else if let Some(spec) = kind.params.iter().find(|s| s.name == kname) {
            if spec.ty == ParamType::Path {
                self.path_param(stage, kname, body, key, val, dir);
            } else if let Some(v) = self.param_value(spec, val) {
                body.values.insert(kname.to_string(), v);
            }
        } else {
            let mut candidates: Vec<&str> = kind.params.iter().map(|s| s.name).collect();
            candidates.extend(kind.inputs.iter().map(|p| p.name.as_str()));
            candidates.extend(kind.input_table);
            let kind_name = kind.kind.name();
            let hint = suggest_name(kname, candidates.iter().copied(), || {
                if candidates.is_empty() {
                    format!("kind `{kind_name}` takes no parameters")
                } else {
                    format!("kind `{kind_name}` takes: {}", candidates.join(", "))
                }
            });
            self.hint(
                key.span(),
                format!("unknown parameter `{kname}` for kind `{kind_name}`"),
                hint,
            );
        }
    }

    /// `inputs = { port = "stage.port", other = { file = "…" } }`: inputs the stage names.
    fn input_table(
        &mut self,
        stage: &str,
        kname: &str,
        body: &mut StageBody,
        val: &Spanned<DeValue>,
        dir: &Path,
    ) {
        let DeValue::Table(tt) = val.get_ref() else {
            let msg = format!(
                "`{kname}` must be a table of inputs, found {}",
                type_name(val.get_ref())
            );
            self.hint(
                val.span(),
                msg,
                format!(
                    "e.g. {kname} = {{ text = \"fetch.data\", script = {{ file = \"x.sh\" }} }}"
                ),
            );
            return;
        };
        let mut entries: Vec<_> = tt.iter().collect();
        entries.sort_by_key(|(k, _)| k.span().start);
        for (pk, pv) in entries {
            let port = pk.get_ref().as_ref();
            if !valid_stage_name(port) {
                self.hint(
                    pk.span(),
                    format!("invalid input name `{port}`"),
                    "use letters, digits, `_` and `-`",
                );
            }
            let input = self.input_source(pv, dir).map(|source| Input {
                source,
                ty: ArtifactType::Any,
            });
            self.add_input(stage, body, port, pk.span(), input.map(|i| (i, pv.span())));
        }
    }

    /// A `path` parameter: a file or folder read as an input.
    fn path_param(
        &mut self,
        stage: &str,
        kname: &str,
        body: &mut StageBody,
        key: &Spanned<std::borrow::Cow<str>>,
        val: &Spanned<DeValue>,
        dir: &Path,
    ) {
        let DeValue::String(s) = val.get_ref() else {
            let msg = format!(
                "`{kname}` must be a path string, found {}",
                type_name(val.get_ref())
            );
            self.err(val.span(), msg);
            return;
        };
        let input = self.file_source(s, val.span(), dir).map(|source| Input {
            source,
            ty: ArtifactType::Any,
        });
        self.add_input(
            stage,
            body,
            kname,
            key.span(),
            input.map(|i| (i, val.span())),
        );
    }

    /// Adds an input port (`None` when its source was bad and already reported), refusing
    /// a name that differs from an earlier one only by `-` and `_`: both would be the same
    /// `$HHI_IN_…` variable, one silently shadowing the other.
    fn add_input(
        &mut self,
        stage: &str,
        body: &mut StageBody,
        port: &str,
        key_span: Range<usize>,
        input: Option<(Input, Range<usize>)>,
    ) {
        let env = port_env_suffix(port);
        match body.input_env.get(&env) {
            Some(first) if first != port => {
                let msg = format!(
                    "inputs `{first}` and `{port}` of stage `{stage}` would both be $HHI_IN_{env}"
                );
                self.hint(key_span, msg, ENV_COLLISION_HINT);
                return;
            }
            Some(_) => {}
            None => {
                body.input_env.insert(env, port.to_string());
            }
        }
        if let Some(i) = input {
            body.inputs.insert(port.to_string(), i);
        }
    }

    /// Defaults for the parameters not given, and a problem for each required parameter or
    /// input that is absent. A key that was given with a bad value has been reported
    /// already; it is not reported again as missing.
    fn fill_defaults(
        &mut self,
        name: &str,
        span: &Range<usize>,
        kind: &KindSpec,
        body: &mut StageBody,
    ) {
        for spec in &kind.params {
            if body.values.contains_key(spec.name) || body.inputs.contains_key(spec.name) {
                continue;
            }
            match &spec.default {
                Some(d) => {
                    body.values.insert(spec.name.to_string(), d.clone());
                }
                None if body.given.contains(spec.name) => {}
                None => self.hint(
                    span.clone(),
                    format!(
                        "stage `{name}` is missing required parameter `{}` ({})",
                        spec.name,
                        spec.ty.describe()
                    ),
                    format!("add {} = … under [stages.{name}]: {}", spec.name, spec.doc),
                ),
            }
        }
        for port in &kind.inputs {
            if !port.optional
                && !body.inputs.contains_key(&port.name)
                && !body.given.contains(&port.name)
            {
                self.hint(
                    span.clone(),
                    format!(
                        "stage `{name}` is missing required input `{}` ({})",
                        port.name, port.ty
                    ),
                    format!("connect it: {} = \"<stage>.<port>\"", port.name),
                );
            }
        }
    }

    /// Two outputs whose names differ only by `-` and `_` would share one `$HHI_OUT_…`.
    fn check_output_env_names(
        &mut self,
        stage: &str,
        span: &Range<usize>,
        t: &DeTable,
        signature: &Signature,
    ) {
        let mut seen: BTreeMap<String, &str> = BTreeMap::new();
        for out in &signature.outputs {
            let env = port_env_suffix(&out.name);
            let Some(first) = seen.insert(env.clone(), &out.name) else {
                continue;
            };
            // The output's name as written in the stage table, else the stage's name.
            let at = t
                .values()
                .filter_map(|v| match v.get_ref() {
                    DeValue::Array(items) => Some(items),
                    _ => None,
                })
                .flat_map(|items| items.iter())
                .find(|it| matches!(it.get_ref(), DeValue::String(s) if *s == out.name))
                .map(|it| it.span())
                .unwrap_or_else(|| span.clone());
            self.hint(
                at,
                format!(
                    "outputs `{first}` and `{}` of stage `{stage}` would both be $HHI_OUT_{env}",
                    out.name
                ),
                ENV_COLLISION_HINT,
            );
        }
    }

    fn file_source(&mut self, rel: &str, span: Range<usize>, dir: &Path) -> Option<InputSource> {
        let abs = dir.join(rel);
        // `metadata` follows symlinks: a link is read as what it points to (as DVC does).
        let meta = match std::fs::metadata(&abs) {
            Ok(m) => m,
            Err(e) => {
                self.missing_file(rel, &abs, span, e);
                return None;
            }
        };
        if !meta.is_file() && !meta.is_dir() {
            self.hint(
                span,
                format!(
                    "`{rel}` is {}, not a file or folder",
                    special_file_kind(&meta.file_type())
                ),
                "inputs are hashed by content; give a regular file or a folder",
            );
            return None;
        }
        let is_link = std::fs::symlink_metadata(&abs).is_ok_and(|m| m.file_type().is_symlink());
        let abs = if is_link {
            std::fs::canonicalize(&abs).unwrap_or(abs)
        } else {
            abs
        };
        Some(InputSource::File {
            rel: rel.to_string(),
            abs,
        })
    }

    fn missing_file(&mut self, rel: &str, abs: &Path, span: Range<usize>, e: std::io::Error) {
        if let Ok(target) = std::fs::read_link(abs) {
            self.hint(
                span,
                format!("`{rel}` is a symlink to a missing file"),
                format!(
                    "{} points to {}, which does not exist",
                    abs.display(),
                    target.display()
                ),
            );
        } else if e.kind() == std::io::ErrorKind::NotFound {
            self.hint(
                span,
                format!("file not found: `{rel}`"),
                format!(
                    "paths are relative to the pipeline file; looked for {}",
                    abs.display()
                ),
            );
        } else {
            self.hint(
                span,
                format!("cannot read `{rel}`: {e}"),
                format!("looked at {}", abs.display()),
            );
        }
    }

    fn input_source(&mut self, v: &Spanned<DeValue>, dir: &Path) -> Option<InputSource> {
        const HINT: &str = "an input is \"<stage>.<port>\" or { file = \"path\" }";
        match v.get_ref() {
            DeValue::String(s) => match s.split_once('.') {
                Some((st, port)) if !st.is_empty() && !port.is_empty() && !port.contains('.') => {
                    Some(InputSource::Edge {
                        stage: st.to_string(),
                        port: port.to_string(),
                    })
                }
                _ => {
                    self.hint(v.span(), format!("`{s}` is not a stage output"), HINT);
                    None
                }
            },
            DeValue::Table(t) => match (t.len(), t.get("file").map(|f| (f.span(), f.get_ref()))) {
                (1, Some((fs, DeValue::String(rel)))) => self.file_source(rel, fs, dir),
                _ => {
                    self.hint(v.span(), "malformed input table", HINT);
                    None
                }
            },
            other => {
                let msg = format!("expected an input, found {}", type_name(other));
                self.hint(v.span(), msg, HINT);
                None
            }
        }
    }

    fn param_value(
        &mut self,
        spec: &crate::params::ParamSpec,
        v: &Spanned<DeValue>,
    ) -> Option<Value> {
        let span = v.span();
        let found = type_name(v.get_ref());
        let value = match (&spec.ty, v.get_ref()) {
            (ParamType::Int, DeValue::Integer(i)) => {
                match i64::from_str_radix(i.as_str(), i.radix()) {
                    Ok(x) => Value::Int(x),
                    Err(_) => {
                        self.err(
                            span,
                            format!("`{}` does not fit in a 64-bit integer", spec.name),
                        );
                        return None;
                    }
                }
            }
            (ParamType::Float, DeValue::Integer(i)) => {
                match i64::from_str_radix(i.as_str(), i.radix()) {
                    Ok(x) => Value::Float(x as f64),
                    Err(_) => {
                        self.err(span, format!("`{}` is out of range", spec.name));
                        return None;
                    }
                }
            }
            (ParamType::Float, DeValue::Float(f)) => match f.as_str().parse::<f64>() {
                Ok(x) if x.is_finite() => Value::Float(x),
                _ => {
                    self.hint(
                        span,
                        format!("`{}` must be a finite number", spec.name),
                        "nan and inf are not valid parameter values",
                    );
                    return None;
                }
            },
            (ParamType::Bool, DeValue::Boolean(b)) => Value::Bool(*b),
            (ParamType::Str, DeValue::String(s)) => Value::Str(s.to_string()),
            (ParamType::Enum(choices), DeValue::String(s)) => {
                if !choices.contains(&s.as_ref()) {
                    let hint = suggest(
                        s,
                        choices.iter().copied(),
                        |c| format!("did you mean \"{c}\"?"),
                        || format!("expected one of: {}", choices.join(", ")),
                    );
                    self.hint(span, format!("bad value \"{s}\" for `{}`", spec.name), hint);
                    return None;
                }
                Value::Str(s.to_string())
            }
            (ParamType::StrList, DeValue::Array(items)) => {
                let mut out = Vec::new();
                for it in items.iter() {
                    match it.get_ref() {
                        DeValue::String(s) => out.push(s.to_string()),
                        other => {
                            let msg = format!(
                                "`{}` must hold strings, found {}",
                                spec.name,
                                type_name(other)
                            );
                            self.err(it.span(), msg);
                            return None;
                        }
                    }
                }
                Value::List(out)
            }
            (ParamType::StrMap, DeValue::Table(t)) => Value::Map(self.map_value(spec, t)?),
            (ty, _) => {
                let msg = format!(
                    "bad value for `{}`: expected {}, found {found}",
                    spec.name,
                    ty.describe()
                );
                self.hint(span, msg, spec.doc);
                return None;
            }
        };
        if let Err(msg) = spec.check_range(&value) {
            self.hint(span, msg, spec.doc);
            return None;
        }
        Some(value)
    }

    /// A table of strings; an `env` table also has every name and value checked, and all
    /// of its problems reported at once.
    fn map_value(&mut self, spec: &ParamSpec, t: &DeTable) -> Option<BTreeMap<String, String>> {
        let mut entries: Vec<_> = t.iter().collect();
        entries.sort_by_key(|(k, _)| k.span().start);
        let mut out = BTreeMap::new();
        let mut ok = true;
        for (k, it) in entries {
            let DeValue::String(s) = it.get_ref() else {
                let msg = format!(
                    "`{}.{}` must be a string, found {}",
                    spec.name,
                    k.get_ref(),
                    type_name(it.get_ref())
                );
                self.err(it.span(), msg);
                return None;
            };
            if spec.name == ENV_PARAM
                && let Some((on_key, msg, hint)) = env_var_problem(k.get_ref(), s)
            {
                let at = if on_key { k.span() } else { it.span() };
                self.hint(at, msg, hint);
                ok = false;
            }
            out.insert(k.get_ref().to_string(), s.to_string());
        }
        ok.then_some(out)
    }

    fn check_edges(&mut self, parsed: &[Parsed]) {
        let names: Vec<&str> = parsed.iter().map(|p| p.name.as_str()).collect();
        for p in parsed {
            for (port, (input, span)) in &p.inputs {
                let InputSource::Edge { stage, port: out } = &input.source else {
                    continue;
                };
                let Some(up) = parsed.iter().find(|q| &q.name == stage) else {
                    let hint = suggest(
                        stage,
                        names.iter().copied(),
                        |s| format!("did you mean `{s}.{out}`?"),
                        || format!("stages in this pipeline: {}", names.join(", ")),
                    );
                    self.hint(
                        span.clone(),
                        format!(
                            "input `{port}` of `{}` refers to unknown stage `{stage}`",
                            p.name
                        ),
                        hint,
                    );
                    continue;
                };
                let Some(out_port) = up.signature.outputs.iter().find(|o| &o.name == out) else {
                    let outs: Vec<&str> = up
                        .signature
                        .outputs
                        .iter()
                        .map(|o| o.name.as_str())
                        .collect();
                    let hint = suggest(
                        out,
                        outs.iter().copied(),
                        |s| format!("did you mean `{stage}.{s}`?"),
                        || {
                            format!(
                                "`{stage}` ({}) has outputs: {}",
                                up.kind.name(),
                                outs.join(", ")
                            )
                        },
                    );
                    self.hint(
                        span.clone(),
                        format!("stage `{stage}` has no output port `{out}`"),
                        hint,
                    );
                    continue;
                };
                if !input.ty.accepts(out_port.ty) {
                    let hint = if out_port.ty == ArtifactType::Blob {
                        format!(
                            "`{stage}.{out}` is untyped; import typed data with kind = \"files\" and as = \"{}\"",
                            input.ty
                        )
                    } else {
                        format!(
                            "input `{port}` of kind `{}` expects {}",
                            p.kind.name(),
                            input.ty
                        )
                    };
                    self.hint(
                        span.clone(),
                        format!("type mismatch: `{stage}.{out}` is {} but input `{port}` of `{}` expects {}", out_port.ty, p.name, input.ty),
                        hint,
                    );
                }
            }
        }
    }
}
