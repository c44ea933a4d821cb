//! What the method's stage kinds share: JSONL reading and writing with errors that name the
//! file and line, the record types of the artifact formats (docs/artifacts.md), optional
//! file inputs, a stage log, and the tally of messy input that importers report.

use crate::context::StageContext;
use crate::params::{ParamSpec, ParamType, Value};
use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize, de::DeserializeOwned};
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};

pub use crate::text::labels::LabelItem as PseudoLabel;

/// A `Corpus` record: one article or pretraining document.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Doc {
    pub id: String,
    pub text: String,
}

/// A `Captions` record: persons masked as `[NAME]`; `persons` = detected people.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Caption {
    pub id: String,
    pub caption: String,
    pub persons: u32,
    pub source: String,
    pub split: String,
}

/// A `Table` record (benchmark item); `image` is relative to the Table folder, or "".
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TableItem {
    pub id: String,
    pub source: String,
    pub label: String,
    pub caption: String,
    pub image: String,
}

/// An `Interactions` record: persons as `[NAME]`; `caption` is the caption it was read from
/// (stage 1) or "" (generated, stage 2).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Interaction {
    pub interaction: String,
    #[serde(default)]
    pub caption: String,
}

/// A `SyntheticPairs` record; `label` is set by `filter_pairs` (the `_` target).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Pair {
    pub caption: String,
    pub interaction: String,
    pub names: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
}

/// A `Curve` record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CurvePoint {
    pub step: u64,
    pub loss: f64,
    pub lr: f64,
}

/// A `Truth` record (toy world only; read by evaluation and diagnostics).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TruthRecord {
    pub id: String,
    pub source: String,
    /// "" for items without an interaction (one person).
    pub label: String,
    pub verb: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub caption_states_interaction: bool,
}

/// Reads a JSONL file: one JSON value per line; blank lines are skipped. An error names the
/// file and the line.
pub fn read_jsonl<T: DeserializeOwned>(path: &Path) -> Result<Vec<T>> {
    let file = std::fs::File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let mut out = Vec::new();
    for (i, line) in BufReader::new(file).split(b'\n').enumerate() {
        let line = line.with_context(|| format!("reading {}", path.display()))?;
        let text = std::str::from_utf8(&line)
            .with_context(|| format!("{}:{}: not UTF-8", path.display(), i + 1))?;
        if text.trim().is_empty() {
            continue;
        }
        out.push(
            serde_json::from_str(text)
                .with_context(|| format!("{}:{}: bad record", path.display(), i + 1))?,
        );
    }
    Ok(out)
}

/// Writes records as JSONL (one compact JSON object per line, `\n`-terminated).
pub fn write_jsonl<T: Serialize>(path: &Path, items: &[T]) -> Result<()> {
    let file =
        std::fs::File::create(path).with_context(|| format!("creating {}", path.display()))?;
    let mut w = BufWriter::new(file);
    for item in items {
        serde_json::to_writer(&mut w, item)?;
        w.write_all(b"\n")?;
    }
    w.flush()
        .with_context(|| format!("writing {}", path.display()))
}

/// Writes one JSON value, pretty-printed (the `Stats` format).
pub fn write_json<T: Serialize>(path: &Path, value: &T) -> Result<()> {
    let mut bytes = serde_json::to_vec_pretty(value)?;
    bytes.push(b'\n');
    std::fs::write(path, bytes).with_context(|| format!("writing {}", path.display()))
}

/// A parameter naming an optional file or folder: hashed by content like any input when
/// given (`ids = "data/ids.txt"`, relative to the pipeline file), absent otherwise. Read it
/// with [`optional_input`].
pub fn optional_path(name: &'static str, doc: &'static str) -> ParamSpec {
    let mut spec = ParamSpec::string(name, "", doc);
    spec.ty = ParamType::Path;
    spec.default = Some(Value::Str(String::new()));
    spec
}

/// The path of an optional input, whether it came as a port or as an [`optional_path`]
/// parameter; `None` when it was not given.
pub fn optional_input(ctx: &StageContext, name: &str) -> Option<PathBuf> {
    ctx.inputs().get(name).cloned()
}

/// With an `init` checkpoint folder given: its `tokenizer.json` path and its
/// `config.json` bytes (the model to fine-tune); `None` to train from scratch.
pub fn init_checkpoint(ctx: &StageContext) -> Result<Option<(PathBuf, Vec<u8>)>> {
    let Some(init) = optional_input(ctx, "init") else {
        return Ok(None);
    };
    let config = std::fs::read(init.join("config.json"))
        .with_context(|| format!("reading {}/config.json", init.display()))?;
    Ok(Some((init.join("tokenizer.json"), config)))
}

/// Ids from a file: a JSON array of strings, or one id per line (blank lines and lines
/// starting with `#` skipped; surrounding whitespace trimmed).
pub fn read_id_list(path: &Path) -> Result<Vec<String>> {
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    let text = String::from_utf8_lossy(&bytes);
    let t = text.trim_start_matches('\u{feff}').trim_start();
    if t.starts_with('[') {
        let v: Vec<serde_json::Value> = serde_json::from_str(t)
            .with_context(|| format!("{}: not a JSON array of ids", path.display()))?;
        return v
            .into_iter()
            .map(|x| match x {
                serde_json::Value::String(s) => Ok(s.trim().to_string()),
                serde_json::Value::Number(n) => Ok(n.to_string()),
                other => bail!("{}: an id must be a string, found {other}", path.display()),
            })
            .collect();
    }
    Ok(t.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(String::from)
        .collect())
}

/// Lines appended to the stage's log (`logs/<key>.log` in the store, shown by `hhi show`)
/// and to tracing at debug level.
pub struct StageLog {
    file: Option<std::fs::File>,
}

impl StageLog {
    pub fn open(ctx: &StageContext) -> StageLog {
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(ctx.log_path())
            .ok();
        StageLog { file }
    }

    pub fn line(&mut self, text: impl AsRef<str>) {
        let text = text.as_ref();
        tracing::debug!("{text}");
        if let Some(f) = &mut self.file {
            let _ = writeln!(f, "{text}");
        }
    }
}

/// `on_error`: what an importer does with a bad record.
pub fn on_error_param() -> ParamSpec {
    ParamSpec::one_of(
        "on_error",
        &["skip", "fail"],
        "skip",
        "a bad record (bad UTF-8, huge text, missing or corrupt image, duplicate id…): \
         `skip` drops it and reports the count and first examples (figures and log); \
         `fail` stops the stage with that report",
    )
}

/// How many examples of each kind of problem are kept for the report.
pub const EXAMPLES_KEPT: usize = 5;

/// A tally of messy input: per kind of problem, a count and the first examples.
#[derive(Debug, Default)]
pub struct Problems {
    kinds: BTreeMap<&'static str, (usize, Vec<String>)>,
}

impl Problems {
    pub fn add(&mut self, kind: &'static str, example: impl Into<String>) {
        let e = self.kinds.entry(kind).or_default();
        e.0 += 1;
        if e.1.len() < EXAMPLES_KEPT {
            let mut ex: String = example.into();
            if ex.chars().count() > 200 {
                ex = ex.chars().take(200).collect::<String>() + "…";
            }
            e.1.push(ex);
        }
    }

    pub fn total(&self) -> usize {
        self.kinds.values().map(|(n, _)| n).sum()
    }

    pub fn count(&self, kind: &str) -> usize {
        self.kinds.get(kind).map_or(0, |(n, _)| *n)
    }

    /// One line per kind: `missing_image: 2 (e.g. 000012: …; 000040: …)`.
    pub fn summary(&self) -> String {
        self.kinds
            .iter()
            .map(|(k, (n, ex))| format!("{k}: {n} (e.g. {})", ex.join("; ")))
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// Records figures `bad_<kind>` and `bad_total`, logs the summary, and with
    /// `on_error = "fail"` turns any problem into the stage's error.
    pub fn finish(&self, ctx: &mut StageContext, log: &mut StageLog, what: &str) -> Result<()> {
        ctx.figure("bad_total", self.total() as f64);
        for (k, (n, _)) in &self.kinds {
            ctx.figure(&format!("bad_{k}"), *n as f64);
        }
        if self.total() == 0 {
            return Ok(());
        }
        let summary = self.summary();
        log.line(format!("{} bad {what}:\n{summary}", self.total()));
        if ctx.params.get("on_error").and_then(|v| match v {
            Value::Str(s) => Some(s.as_str()),
            _ => None,
        }) == Some("fail")
        {
            bail!(
                "{} bad {what} (on_error = \"fail\"; set it to \"skip\" to drop them):\n{summary}",
                self.total()
            );
        }
        tracing::warn!(
            "stage `{}`: skipped {} bad {what}:\n{summary}",
            ctx.stage,
            self.total()
        );
        Ok(())
    }
}

/// Moves a file or folder (rename, or copy then remove across filesystems).
pub fn move_path(from: &Path, to: &Path) -> Result<()> {
    if std::fs::rename(from, to).is_ok() {
        return Ok(());
    }
    crate::store::fsutil::copy_all(from, to)
        .with_context(|| format!("copying {} to {}", from.display(), to.display()))?;
    crate::store::fsutil::remove_all(from).with_context(|| format!("removing {}", from.display()))
}

/// Text of a file as UTF-8, with a BOM removed; `Err` names the file.
pub fn read_text(path: &Path) -> Result<String> {
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    let text = String::from_utf8(bytes)
        .map_err(|e| anyhow::anyhow!("{}: not UTF-8 ({e})", path.display()))?;
    Ok(text.trim_start_matches('\u{feff}').to_string())
}

/// `check_images`: how deeply importers check image files.
pub fn check_images_param() -> ParamSpec {
    ParamSpec::one_of(
        "check_images",
        &["header", "decode", "none"],
        "header",
        "how each image is checked: `header` (JPEG start/end markers and header; other \
         formats: that they decode), `decode` (full decode), `none` (only that it exists)",
    )
}

/// What is wrong with an image file, if anything: (`missing_image` | `corrupt_image`,
/// detail), checked as deep as `level` (the `check_images` parameter) says.
pub fn image_problem(path: &Path, level: &str) -> Option<(&'static str, String)> {
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Some(("missing_image", String::new()));
        }
        Err(e) => return Some(("corrupt_image", e.to_string())),
    };
    match level {
        "none" => None,
        "decode" => crate::vision::preprocess::open(path)
            .err()
            .map(|e| ("corrupt_image", format!("{e:#}"))),
        _ if bytes.starts_with(&[0xFF, 0xD8]) || bytes.is_empty() => {
            jpeg_header_problem(&bytes).map(|m| ("corrupt_image", m))
        }
        _ => crate::vision::preprocess::open(path)
            .err()
            .map(|e| ("corrupt_image", format!("{e:#}"))),
    }
}

/// A cheap check of a JPEG: start and end markers, and a header that parses to a size.
pub fn jpeg_header_problem(bytes: &[u8]) -> Option<String> {
    if bytes.is_empty() {
        return Some("empty file".into());
    }
    if !bytes.starts_with(&[0xFF, 0xD8, 0xFF]) {
        return Some("not a JPEG (no start marker)".into());
    }
    // A truncated file lacks the end marker; some writers pad a few bytes after it.
    let tail = &bytes[bytes.len().saturating_sub(64)..];
    if !tail.windows(2).any(|w| w == [0xFF, 0xD9]) {
        return Some("truncated JPEG (no end marker)".into());
    }
    match std::panic::catch_unwind(|| {
        mozjpeg::Decompress::new_mem(bytes).map(|d| (d.width(), d.height()))
    }) {
        Ok(Ok((w, h))) if w > 0 && h > 0 => None,
        Ok(Ok(_)) => Some("JPEG of size 0".into()),
        Ok(Err(e)) => Some(format!("bad JPEG header: {e}")),
        Err(_) => Some("bad JPEG header".into()),
    }
}

/// Helpers for testing stage kinds without a store: a context over temporary folders.
#[cfg(test)]
pub(crate) mod testing {
    use crate::context::StageContext;
    use crate::params::{Params, Value};
    use crate::progress::Progress;
    use crate::registry::{Figures, StageKind};
    use std::collections::BTreeMap;
    use std::path::{Path, PathBuf};

    /// Runs `kind` with its defaults overridden by `params`, the given inputs, and outputs
    /// under `dir/out/<port>`; returns the result, the figures and the output paths.
    pub fn run_kind(
        kind: &dyn StageKind,
        dir: &Path,
        params: &[(&str, Value)],
        inputs: &[(&str, PathBuf)],
    ) -> (anyhow::Result<()>, Figures, BTreeMap<String, PathBuf>) {
        let mut values = BTreeMap::new();
        for spec in kind.params() {
            if let Some(d) = spec.default {
                values.insert(spec.name.to_string(), d);
            }
        }
        for (k, v) in params {
            values.insert(k.to_string(), v.clone());
        }
        let params = Params(values);
        let sig = kind.signature(&params).expect("signature");
        let out = dir.join("out");
        std::fs::create_dir_all(&out).unwrap();
        let outputs: BTreeMap<String, PathBuf> = sig
            .outputs
            .iter()
            .map(|o| (o.name.clone(), out.join(&o.name)))
            .collect();
        let work = dir.join("work");
        std::fs::create_dir_all(&work).unwrap();
        let mut ctx = StageContext::new(
            "test".into(),
            params,
            7,
            "cpu".into(),
            dir.to_path_buf(),
            inputs
                .iter()
                .map(|(k, p)| (k.to_string(), p.clone()))
                .collect(),
            outputs.clone(),
            work,
            Progress::hidden(),
        );
        ctx.set_log_path(dir.join("stage.log"));
        let r = kind.run(&mut ctx);
        (r, ctx.figures.clone(), outputs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jsonl_round_trip_and_errors_name_the_line() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("a.jsonl");
        let docs = vec![
            Doc {
                id: "1".into(),
                text: "a\nb \"q\"".into(),
            },
            Doc {
                id: "2".into(),
                text: "é".into(),
            },
        ];
        write_jsonl(&p, &docs).unwrap();
        let text = std::fs::read_to_string(&p).unwrap();
        assert_eq!(text.lines().count(), 2);
        assert_eq!(read_jsonl::<Doc>(&p).unwrap(), docs);
        std::fs::write(&p, "{\"id\":\"1\",\"text\":\"x\"}\n\n{\"id\":2}\n").unwrap();
        let e = format!("{:#}", read_jsonl::<Doc>(&p).unwrap_err());
        assert!(e.contains("a.jsonl:3"), "{e}");
    }

    #[test]
    fn id_lists_in_both_forms() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("ids");
        std::fs::write(&p, "\u{feff}a\n\n# note\n b \n").unwrap();
        assert_eq!(read_id_list(&p).unwrap(), ["a", "b"]);
        std::fs::write(&p, "[\"a\", 12]").unwrap();
        assert_eq!(read_id_list(&p).unwrap(), ["a", "12"]);
        std::fs::write(&p, "[{}]").unwrap();
        assert!(read_id_list(&p).is_err());
    }

    #[test]
    fn problems_keep_counts_and_first_examples() {
        let mut p = Problems::default();
        for i in 0..8 {
            p.add("missing_image", format!("id{i}"));
        }
        p.add("bad_utf8", "x");
        assert_eq!(p.total(), 9);
        assert_eq!(p.count("missing_image"), 8);
        let s = p.summary();
        assert!(
            s.contains("missing_image: 8 (e.g. id0; id1; id2; id3; id4)"),
            "{s}"
        );
        assert!(!s.contains("id5"));
    }

    #[test]
    fn jpeg_checks() {
        let img = crate::toy::write::encode_jpeg(&[128u8; 16 * 16 * 3], 16, 16).unwrap();
        assert!(jpeg_header_problem(&img).is_none());
        assert!(jpeg_header_problem(&[]).is_some());
        assert!(jpeg_header_problem(b"GIF89a").is_some());
        assert!(jpeg_header_problem(&img[..img.len() - 10]).is_some());
        let mut garbage = vec![0xFF, 0xD8, 0xFF, 0x00, 0x01];
        garbage.extend([0xFF, 0xD9]);
        assert!(jpeg_header_problem(&garbage).is_some());
    }
}
