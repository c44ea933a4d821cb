//! Loading a pipeline file: TOML with spans, every stage checked against its kind, every
//! edge checked for existence and type, and the whole graph checked for cycles — all
//! before anything touches the store. Problems are collected, not thrown one at a time.

use crate::diag::{Diagnostic, Diagnostics, did_you_mean};
use crate::graph::Dag;
use crate::params::{ParamType, Params, Value};
use crate::registry::{Registry, Signature, StageKind};
use crate::types::ArtifactType;
use std::collections::BTreeMap;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use toml::Spanned;
use toml::de::{DeTable, DeValue};

pub const BACKENDS: &[&str] = &["auto", "ndarray", "wgpu", "cuda"];

#[derive(Debug, Clone, PartialEq)]
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

#[derive(Clone)]
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
        let src = std::fs::read_to_string(path).map_err(|e| {
            anyhow::anyhow!("cannot read pipeline {}: {e}\n  = help: check the path; pipelines usually live in pipelines/", path.display())
        })?;
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

struct Parsed {
    name: String,
    span: Range<usize>,
    kind: Arc<dyn StageKind>,
    params: Params,
    inputs: BTreeMap<String, (Input, Range<usize>)>,
    signature: Signature,
}

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
        let mut stages_table = None;

        for (k, v) in root.iter() {
            match k.get_ref().as_ref() {
                "pipeline" => self.pipeline_header(v, &mut name, &mut seed, &mut backend),
                "stages" => stages_table = Some(v),
                other => {
                    let other = other.to_string();
                    let mut d = Diagnostic::new(
                        self.file,
                        self.src,
                        k.span(),
                        format!("unknown top-level table `{other}`"),
                    );
                    d.hint = Some(match did_you_mean(&other, ["pipeline", "stages"]) {
                        Some(s) => format!("did you mean `{s}`?"),
                        None => {
                            "a pipeline file has a [pipeline] table and [stages.NAME] tables".into()
                        }
                    });
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
    ) {
        let DeValue::Table(t) = v.get_ref() else {
            self.err(v.span(), "`pipeline` must be a table");
            return;
        };
        for (k, v) in t.iter() {
            match (k.get_ref().as_ref(), v.get_ref()) {
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
                    let hint = match did_you_mean(&other, ["name", "seed", "backend"]) {
                        Some(s) => format!("did you mean `{s}`?"),
                        None => "[pipeline] takes name, seed and backend".into(),
                    };
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
        let kind = match t.get("kind").map(|v| (v.span(), v.get_ref())) {
            None => {
                self.hint(
                    span,
                    format!("stage `{name}` has no `kind`"),
                    "add kind = \"…\"; `hhi stages` lists the kinds",
                );
                return None;
            }
            Some((ks, DeValue::String(kname))) => match self.registry.get(kname) {
                Some(kind) => kind.clone(),
                None => {
                    let hint = match did_you_mean(kname, self.registry.names()) {
                        Some(s) => format!("did you mean `{s}`? (`hhi stages` lists every kind)"),
                        None => format!(
                            "known kinds: {}; `hhi stages` describes them",
                            self.registry.names().collect::<Vec<_>>().join(", ")
                        ),
                    };
                    self.hint(ks, format!("unknown stage kind `{kname}`"), hint);
                    return None;
                }
            },
            Some((ks, other)) => {
                let msg = format!("`kind` must be a string, found {}", type_name(other));
                self.err(ks, msg);
                return None;
            }
        };

        let specs = kind.params();
        let static_inputs = kind.inputs();
        let input_table = kind.input_table();
        let mut values: BTreeMap<String, Value> = BTreeMap::new();
        let mut inputs: BTreeMap<String, (Input, Range<usize>)> = BTreeMap::new();
        let mut entries: Vec<_> = t.iter().filter(|(k, _)| k.get_ref() != "kind").collect();
        entries.sort_by_key(|(k, _)| k.span().start);

        for (key, val) in entries {
            let kname = key.get_ref().as_ref();
            if let Some(port) = static_inputs.iter().find(|p| p.name == kname) {
                if let Some(src) = self.input_source(val, dir) {
                    inputs.insert(
                        kname.to_string(),
                        (
                            Input {
                                source: src,
                                ty: port.ty,
                            },
                            val.span(),
                        ),
                    );
                }
            } else if Some(kname) == input_table {
                match val.get_ref() {
                    DeValue::Table(tt) => {
                        for (pk, pv) in tt.iter() {
                            if !valid_stage_name(pk.get_ref()) {
                                self.hint(
                                    pk.span(),
                                    format!("invalid input name `{}`", pk.get_ref()),
                                    "use letters, digits, `_` and `-`",
                                );
                            }
                            if let Some(src) = self.input_source(pv, dir) {
                                inputs.insert(
                                    pk.get_ref().to_string(),
                                    (
                                        Input {
                                            source: src,
                                            ty: ArtifactType::Any,
                                        },
                                        pv.span(),
                                    ),
                                );
                            }
                        }
                    }
                    other => {
                        let msg = format!(
                            "`{kname}` must be a table of inputs, found {}",
                            type_name(other)
                        );
                        self.hint(val.span(), msg, format!("e.g. {kname} = {{ text = \"fetch.data\", script = {{ file = \"x.sh\" }} }}"));
                    }
                }
            } else if let Some(spec) = specs.iter().find(|s| s.name == kname) {
                if spec.ty == ParamType::Path {
                    if let DeValue::String(s) = val.get_ref() {
                        let src = self.file_source(s, val.span(), dir);
                        if let Some(src) = src {
                            inputs.insert(
                                kname.to_string(),
                                (
                                    Input {
                                        source: src,
                                        ty: ArtifactType::Any,
                                    },
                                    val.span(),
                                ),
                            );
                        }
                    } else {
                        let msg = format!(
                            "`{kname}` must be a path string, found {}",
                            type_name(val.get_ref())
                        );
                        self.err(val.span(), msg);
                    }
                } else if let Some(v) = self.param_value(spec, val) {
                    values.insert(kname.to_string(), v);
                }
            } else {
                let mut candidates: Vec<&str> = specs.iter().map(|s| s.name).collect();
                candidates.extend(static_inputs.iter().map(|p| p.name.as_str()));
                candidates.extend(input_table);
                let hint = match did_you_mean(kname, candidates.iter().copied()) {
                    Some(s) => format!("did you mean `{s}`?"),
                    None if candidates.is_empty() => {
                        format!("kind `{}` takes no parameters", kind.name())
                    }
                    None => format!("kind `{}` takes: {}", kind.name(), candidates.join(", ")),
                };
                self.hint(
                    key.span(),
                    format!("unknown parameter `{kname}` for kind `{}`", kind.name()),
                    hint,
                );
            }
        }

        for spec in &specs {
            if values.contains_key(spec.name) || inputs.contains_key(spec.name) {
                continue;
            }
            match &spec.default {
                Some(d) => {
                    values.insert(spec.name.to_string(), d.clone());
                }
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
        for port in &static_inputs {
            if !inputs.contains_key(&port.name) {
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
        let params = Params(values);
        let signature = match kind.signature(&params) {
            Ok(s) => s,
            Err(e) => {
                self.err(span, format!("stage `{name}`: {e}"));
                return None;
            }
        };
        Some(Parsed {
            name,
            span,
            kind,
            params,
            inputs,
            signature,
        })
    }

    fn file_source(&mut self, rel: &str, span: Range<usize>, dir: &Path) -> Option<InputSource> {
        let abs = dir.join(rel);
        if std::fs::symlink_metadata(&abs).is_err() {
            self.hint(
                span,
                format!("file not found: `{rel}`"),
                format!(
                    "paths are relative to the pipeline file; looked for {}",
                    abs.display()
                ),
            );
            return None;
        }
        Some(InputSource::File {
            rel: rel.to_string(),
            abs,
        })
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
                    let hint = match did_you_mean(s, choices.iter().copied()) {
                        Some(c) => format!("did you mean \"{c}\"?"),
                        None => format!("expected one of: {}", choices.join(", ")),
                    };
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
            (ParamType::StrMap, DeValue::Table(t)) => {
                let mut out = BTreeMap::new();
                for (k, it) in t.iter() {
                    match it.get_ref() {
                        DeValue::String(s) => {
                            out.insert(k.get_ref().to_string(), s.to_string());
                        }
                        other => {
                            let msg = format!(
                                "`{}.{}` must be a string, found {}",
                                spec.name,
                                k.get_ref(),
                                type_name(other)
                            );
                            self.err(it.span(), msg);
                            return None;
                        }
                    }
                }
                Value::Map(out)
            }
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

    fn check_edges(&mut self, parsed: &[Parsed]) {
        let names: Vec<&str> = parsed.iter().map(|p| p.name.as_str()).collect();
        for p in parsed {
            for (port, (input, span)) in &p.inputs {
                let InputSource::Edge { stage, port: out } = &input.source else {
                    continue;
                };
                let Some(up) = parsed.iter().find(|q| &q.name == stage) else {
                    let hint = match did_you_mean(stage, names.iter().copied()) {
                        Some(s) => format!("did you mean `{s}.{out}`?"),
                        None => format!("stages in this pipeline: {}", names.join(", ")),
                    };
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
                    let hint = match did_you_mean(out, outs.iter().copied()) {
                        Some(s) => format!("did you mean `{stage}.{s}`?"),
                        None => format!(
                            "`{stage}` ({}) has outputs: {}",
                            up.kind.name(),
                            outs.join(", ")
                        ),
                    };
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
